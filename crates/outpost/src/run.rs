//! `outpost run`: one job end to end on this machine, or local mode polling a control plane;
//! no Kubernetes either way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agent::local::{LocalExecutor, RelayBucket};
use agent::nonce_store::{NonceStore, default_state_dir};
use agent::steps::{InProcessRunner, LocalJob};
use connector_descriptor::load;
use outpost_core::{ExitCode, RunIdentity};

use crate::Failure;
use crate::flags::{BucketFlags, ControlPlaneFlags, SigningFlags, TransferFlags, TrustFlags};

/// Where the default run delivers: a local bucket in the current folder.
const DEFAULT_OUTPUT: &str = "outpost-output";

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The connector. Without it, the bundled sample catalog (SQLite) is extracted.
    #[arg(long)]
    connector: Option<String>,
    /// A connector parameter as `name=value`; repeat for each.
    #[arg(long = "param", value_name = "NAME=VALUE", requires = "connector", value_parser = crate::extract::name_value)]
    params: Vec<(String, String)>,
    /// Folder with one file per declared secret, named after it (`password`).
    #[arg(long, value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// Connection id (a DNS label). Default: `sample` for the sample, else `local`.
    #[arg(long)]
    connection: Option<String>,
    /// Job id. Default: `local`.
    #[arg(long, default_value = "local")]
    job_id: String,
    /// Run id. Default: the start time, `20261126T051245Z`.
    #[arg(long)]
    run_id: Option<String>,
    /// Read descriptors from this folder instead of the ones built in.
    #[arg(long, value_name = "DIR")]
    connectors: Option<PathBuf>,
    /// Poll this control plane and run its jobs locally (sites without Kubernetes).
    /// With --token-file (and --to for bucket relay). Jobs are admitted exactly as the
    /// orchestrator admits them; each job's logs (redacted) and final status go back to the
    /// control plane.
    #[arg(long = "control-plane", value_name = "URL", conflicts_with_all = ["connector", "params"])]
    poll: Option<String>,
    /// With --control-plane: folder holding one folder per connection, named after it, with
    /// that connection's secret files (`<DIR>/pg-prod/password`).
    #[arg(long, value_name = "DIR", requires = "poll")]
    secrets_root: Option<PathBuf>,
    /// With --control-plane: poll once, run what is pending, and exit.
    #[arg(long, requires = "poll")]
    once: bool,
    /// With --control-plane: time between polls.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// With --job-signing-key: folder where the nonces of signed jobs are kept until they
    /// expire (`seen-nonces.json`). Default: `$XDG_STATE_HOME/outpost`, else
    /// `~/.local/state/outpost`.
    #[arg(long, value_name = "DIR", env = "OUTPOST_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    signing: SigningFlags,
    #[command(flatten)]
    bucket: BucketFlags,
    #[command(flatten)]
    transfer: TransferFlags,
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
    #[command(flatten)]
    trust: TrustFlags,
}

pub fn run(mut args: RunArgs, quiet: bool, show_progress: bool) -> Result<ExitCode, Failure> {
    let runtime = crate::runtime()?;
    if args.poll.is_some() {
        return runtime.block_on(poll(args, quiet));
    }
    if args.bucket.to.is_none() && args.transfer.urls.is_none() && !args.transfer.direct {
        let cwd = std::env::current_dir().map_err(|e| {
            Failure::new(ExitCode::Io, format!("cannot read the current folder: {e}"))
        })?;
        args.bucket.to = Some(format!("file://{}", cwd.join(DEFAULT_OUTPUT).display()));
    }
    let descriptors = load::from_dir_or_builtin(args.connectors.as_deref())?;
    // The sample: a SQLite catalog built into a folder removed when the run ends.
    let sample = match &args.connector {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("outpost-sample-")
                .tempdir()
                .map_err(|e| {
                    Failure::new(ExitCode::Io, format!("cannot create a staging folder: {e}"))
                })?,
        ),
    };
    let (connector, parameters) = match (&args.connector, &sample) {
        (Some(connector), _) => (connector.clone(), args.params.clone()),
        (None, Some(folder)) => {
            let db = folder.path().join("sample-catalog.db");
            metadata_extract::sample::build(&db)?;
            (
                "sqlite".to_owned(),
                vec![("path".to_owned(), db.display().to_string())],
            )
        }
        (None, None) => unreachable!("a sample folder exists without a connector"),
    };
    let descriptor = load::find(&descriptors, &connector)?;
    let connection = args
        .connection
        .clone()
        .unwrap_or_else(|| if sample.is_some() { "sample" } else { "local" }.to_owned());
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        // `20261126T051245Z`: sortable, and a valid path segment.
        humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(['-', ':'], "")
    });
    let run = RunIdentity::new(descriptor.name(), &connection, &args.job_id, &run_id)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let settings = crate::flags::delivery_settings(&args.bucket, &args.transfer, &args.trust);
    let control_plane = args.control_plane.client(&args.trust)?;
    let job = LocalJob {
        descriptor: &descriptor,
        parameters,
        secrets_dir: args.secrets_dir.clone(),
        run,
        settings: &settings,
        control_plane: control_plane.as_ref(),
    };
    let extract_progress = crate::progress::ExtractProgress::new(show_progress);
    let upload_progress = crate::progress::UploadProgress::new(show_progress);
    let summary = runtime.block_on(agent::steps::run_local(
        job,
        &extract_progress,
        &upload_progress,
    ))?;
    if !quiet {
        let source = match sample {
            Some(_) => "the sample catalog".to_owned(),
            None => format!("`{}`", descriptor.name()),
        };
        println!("{}", summary.describe(&source));
    }
    Ok(ExitCode::Success)
}

/// Local mode against a control plane: poll, run, report; once or every --interval.
async fn poll(args: RunArgs, quiet: bool) -> Result<ExitCode, Failure> {
    let url = args.poll.clone().unwrap_or_default();
    // Local mode's own configuration, as the token file is in the cluster: exit 78.
    if args.control_plane.token_file.is_none() {
        return Err(Failure::config("--control-plane needs --token-file"));
    }
    let flags = ControlPlaneFlags {
        control_plane_url: Some(url.clone()),
        ..args.control_plane.clone()
    };
    let client = flags.required(&args.trust)?;
    let descriptors = load::from_dir_or_builtin(args.connectors.as_deref())
        .map_err(|e| Failure::config(e.to_string()))?;
    let signing_key = args.signing.key()?;
    // Signed jobs are run once: their nonces must be kept somewhere that outlives us.
    let nonces = match (
        &signing_key,
        args.state_dir.clone().or_else(default_state_dir),
    ) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Failure::config(
                "--job-signing-key needs --state-dir (no XDG_STATE_HOME or HOME to default to)",
            ));
        }
        (Some(_), Some(dir)) => Some(NonceStore::open(&dir).map_err(Failure::config)?),
    };
    let claimant = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned()),
        std::process::id()
    );
    let settings = crate::flags::delivery_settings(&args.bucket, &args.transfer, &args.trust);
    let executor = LocalExecutor {
        relay: args.bucket.to.clone().map(|url| RelayBucket {
            url,
            settings: settings.store.clone(),
        }),
        runner: Box::new(InProcessRunner {
            settings,
            control_plane: Some(client.clone()),
        }),
        client,
        descriptors: Arc::new(descriptors),
        signing_key,
        nonces,
        secrets_root: args.secrets_root.clone(),
        agent_id: args
            .signing
            .agent_id
            .clone()
            .unwrap_or_else(|| "local".to_owned()),
        insecure_options: agent::heartbeat::insecure_options(
            args.signing.job_signing_key.is_none() && args.signing.insecure_unsigned_jobs,
            args.control_plane.insecure_plain_http,
        ),
        claimant,
        lease: Duration::from_secs(3600),
    };
    let mut last_poll = None;
    loop {
        match executor.poll_once(last_poll).await {
            Ok(summary) => {
                last_poll = Some(SystemTime::now());
                if !quiet {
                    println!(
                        "Polled {url}: {} succeeded, {} failed, {} rejected, {} left to other runners.",
                        summary.succeeded, summary.failed, summary.rejected, summary.skipped
                    );
                }
                // Jobs that failed on the way are left for the next poll, as a tick leaves
                // them for the next tick.
                for problem in &summary.failures {
                    tracing::error!("{problem}");
                }
                if args.once && !summary.failures.is_empty() {
                    return Err(Failure::new(
                        ExitCode::Temporary,
                        format!("{} jobs left for the next poll", summary.failures.len()),
                    ));
                }
            }
            Err(e) if args.once => return Err(e.into()),
            Err(e) => tracing::error!("poll failed, trying again in {:?}: {e}", args.interval),
        }
        if args.once {
            return Ok(ExitCode::Success);
        }
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::Success),
        }
    }
}
