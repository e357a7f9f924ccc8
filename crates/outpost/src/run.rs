//! `outpost run`: one job end to end on this machine, or local mode polling a control plane;
//! no Kubernetes either way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent::local::{LocalExecutor, RelayBucket};
use agent::nonce_store;
use agent::steps::{InProcessRunner, LocalSource, OneRun, run_one};
use connector_descriptor::load;
use outpost_core::ExitCode;

use crate::flags::{ControlPlaneFlags, DeliveryFlags, SigningFlags};
use outpost_core::Failure;

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
    /// The agent's manifest-signing key (a file holding its seed, as `outpost keygen` writes
    /// it): every run's manifest is signed; check runs with `outpost verify --key`.
    #[arg(long, env = "OUTPOST_MANIFEST_SIGNING_KEY", value_name = "FILE")]
    manifest_signing_key: Option<PathBuf>,
    #[command(flatten)]
    exports: crate::flags::ExportFlags,
    #[command(flatten)]
    signing: SigningFlags,
    #[command(flatten)]
    delivery: DeliveryFlags,
}

pub fn run(args: RunArgs, quiet: bool, show_progress: bool) -> Result<ExitCode, Failure> {
    let runtime = crate::runtime()?;
    if args.poll.is_some() {
        return runtime.block_on(poll(args, quiet));
    }
    let descriptors = load::from_dir_or_builtin(args.connectors.as_deref())?;
    let source = match args.connector {
        Some(name) => LocalSource::Connector {
            name,
            parameters: args.params,
        },
        None => LocalSource::Sample,
    };
    let control_plane = args.delivery.control_plane.client(&args.delivery.trust)?;
    let one = OneRun {
        source: source.clone(),
        descriptors: &descriptors,
        secrets_dir: args.secrets_dir,
        connection: args.connection,
        job_id: args.job_id,
        run_id: args.run_id,
        settings: args.delivery.settings(),
        control_plane: control_plane.as_ref(),
        signing_key_file: args.manifest_signing_key,
        exports: args.exports.exports(),
    };
    let extract_progress = crate::progress::ExtractProgress::new(show_progress);
    let upload_progress = crate::progress::UploadProgress::new(show_progress);
    let summary = runtime.block_on(run_one(one, &extract_progress, &upload_progress))?;
    if !quiet {
        println!("{}", summary.describe(&source.label()));
    }
    Ok(ExitCode::Success)
}

/// Local mode against a control plane: poll, run, report; once or every --interval.
async fn poll(args: RunArgs, quiet: bool) -> Result<ExitCode, Failure> {
    let url = args.poll.clone().unwrap_or_default();
    // Local mode's own configuration, as the token file is in the cluster: exit 78.
    let delivery = &args.delivery;
    if delivery.control_plane.token_file.is_none() {
        return Err(Failure::config("--control-plane needs --token-file"));
    }
    let flags = ControlPlaneFlags {
        control_plane_url: Some(url.clone()),
        ..delivery.control_plane.clone()
    };
    let client = flags.required(&delivery.trust)?;
    let descriptors = load::from_dir_or_builtin(args.connectors.as_deref())
        .map_err(|e| Failure::config(e.to_string()))?;
    let signing_key = args.signing.key()?;
    let nonces = nonce_store::for_signed_jobs(signing_key.is_some(), args.state_dir.clone())
        .map_err(Failure::config)?;
    let settings = delivery.settings();
    let executor = LocalExecutor {
        relay: delivery.bucket.to.clone().map(|url| RelayBucket {
            url,
            settings: settings.store.clone(),
        }),
        runner: Box::new(InProcessRunner {
            settings,
            control_plane: Some(client.clone()),
            signing_key_file: args.manifest_signing_key.clone(),
            exports: args.exports.exports(),
        }),
        client,
        descriptors: Arc::new(descriptors),
        signing_key,
        nonces,
        secrets_root: args.secrets_root.clone(),
        agent_id: (args.signing.agent_id.clone()).unwrap_or_else(|| "local".to_owned()),
        insecure_options: args.signing.insecure_options(&delivery.control_plane),
        claimant: LocalExecutor::default_claimant(),
        lease: Duration::from_secs(3600),
    };
    let on_poll = |summary: &agent::tick::TickSummary| {
        if !quiet {
            println!(
                "Polled {url}: {} succeeded, {} failed, {} rejected, {} left to other runners.",
                summary.succeeded, summary.failed, summary.rejected, summary.skipped
            );
        }
    };
    executor.run(args.interval, args.once, on_poll).await?;
    Ok(ExitCode::Success)
}
