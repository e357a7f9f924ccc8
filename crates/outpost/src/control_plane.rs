//! `outpost control-plane`: the reference control plane and its operator commands.

use std::path::PathBuf;
use std::time::Duration;

use agent::context::runtime;
use control_plane::run::ServeSettings;
use outpost_core::ExitCode;

use outpost_core::Failure;

#[derive(clap::Subcommand, Debug)]
pub enum ControlPlaneCommand {
    /// Serve the reference control plane (openapi.yaml) with state in a SQLite file.
    Serve(ServeArgs),
    /// Queue a job (JSON file) on a reference control plane.
    Enqueue {
        /// Base URL of the control plane.
        #[arg(long, value_name = "URL")]
        url: url::Url,
        /// File holding the admin token.
        #[arg(long, value_name = "FILE")]
        admin_token_file: PathBuf,
        /// Whose queue.
        #[arg(long, default_value = "default")]
        agent_id: String,
        /// The job, as JSON.
        job: PathBuf,
    },
    /// Print the API's OpenAPI 3.1 document.
    Openapi,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "outpost-control-plane.db")]
    database: PathBuf,
    /// File of `<agent-id> <token>` lines; re-read on every request.
    #[arg(long, value_name = "FILE")]
    tokens: PathBuf,
    /// File holding the operator's token (for /admin/v1).
    #[arg(long, value_name = "FILE")]
    admin_token_file: PathBuf,
    /// Sign queued jobs with this Ed25519 private key (base64 of its 32-byte seed, in a file).
    /// Each job is signed for its queue's agent (`agentId`), with a fresh `nonce` and a
    /// `notAfter`.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// With --signing-key: how long a signed job stays valid, unless the queued job gives its
    /// own `notAfter`. Agents accept at most 24 hours by default.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    job_lifetime: Duration,
    /// Bucket that direct-ingestion URLs are signed for (`s3://bucket/prefix` …).
    #[arg(long, value_name = "URL")]
    ingest_bucket: Option<String>,
    /// Custom endpoint of the ingestion bucket.
    #[arg(long, value_name = "URL")]
    ingest_endpoint: Option<String>,
    /// Region of the ingestion bucket.
    #[arg(long)]
    ingest_region: Option<String>,
    /// Folder of credential files for the ingestion bucket.
    #[arg(long, value_name = "DIR")]
    ingest_credentials_dir: Option<PathBuf>,
    /// Lifetime of signed upload URLs.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    url_lifetime: Duration,
}

pub fn run(command: ControlPlaneCommand) -> Result<ExitCode, Failure> {
    match command {
        ControlPlaneCommand::Openapi => print!("{}", control_plane::api::OPENAPI_YAML),
        ControlPlaneCommand::Serve(args) => serve(args)?,
        ControlPlaneCommand::Enqueue {
            url,
            admin_token_file,
            agent_id,
            job,
        } => {
            let enqueue =
                control_plane::client::enqueue_file(&url, &admin_token_file, &agent_id, &job);
            println!("{}", runtime()?.block_on(enqueue)?);
        }
    }
    Ok(ExitCode::Success)
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    let settings = ServeSettings {
        listen: args.listen,
        database: args.database,
        tokens_file: args.tokens,
        admin_token_file: args.admin_token_file,
        signing_key_file: args.signing_key,
        job_lifetime: args.job_lifetime,
        ingest_bucket: args.ingest_bucket,
        ingest_store: delivery::bucket::StoreSettings {
            endpoint: args.ingest_endpoint,
            region: args.ingest_region,
            credentials_dir: args.ingest_credentials_dir,
            ..Default::default()
        },
        url_lifetime: args.url_lifetime,
    };
    // Scripts and tests read this line for the port the system chose.
    let listening = |address| println!("listening on http://{address}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Ok(runtime()?.block_on(control_plane::run::run(settings, listening, shutdown))?)
}
