//! `outpost run`: one job end to end on this machine, or local mode polling a control plane;
//! no Kubernetes either way.

use std::path::PathBuf;
use std::time::Duration;

use agent::local::{LocalExecutor, LocalMode};
use agent::steps::{LocalSource, OneRun, run_one};
use connector_descriptor::load;
use outpost_core::{ExitCode, Failure};

use crate::flags::{DeliveryFlags, IdFlags, SigningFlags, SourceFlags};
use agent::console::Progress;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    source: SourceFlags,
    #[command(flatten)]
    ids: IdFlags,
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
    delivery: DeliveryFlags,
}

pub fn run(args: RunArgs, quiet: bool, show_progress: bool) -> Result<ExitCode, Failure> {
    let runtime = agent::context::runtime()?;
    if args.poll.is_some() {
        return runtime.block_on(poll(args, quiet));
    }
    let source = args.source;
    let descriptors = load::from_dir_or_builtin(source.connectors.as_deref())?;
    let what = match source.connector {
        Some(name) => LocalSource::Connector {
            name,
            parameters: source.params,
        },
        None => LocalSource::Sample,
    };
    let control_plane = args.delivery.control_plane.client(&args.delivery.trust)?;
    let one = OneRun {
        source: what.clone(),
        descriptors: &descriptors,
        secrets_dir: source.secrets_dir,
        connection: args.ids.connection,
        job_id: args.ids.job_id,
        run_id: args.ids.run_id,
        settings: args.delivery.settings(),
        control_plane: control_plane.as_ref(),
        signing_key_file: source.manifest_signing_key,
        exports: source.exports.exports(),
    };
    let extracting = Progress::spinner(show_progress);
    let summary = runtime.block_on(run_one(one, &extracting, &Progress::bytes(show_progress)))?;
    if !quiet {
        println!("{}", summary.describe(&what.label()));
    }
    Ok(ExitCode::Success)
}

/// Local mode against a control plane: poll, run, report; once or every --interval.
async fn poll(args: RunArgs, quiet: bool) -> Result<ExitCode, Failure> {
    let (delivery, url) = (args.delivery, args.poll.unwrap_or_default());
    let mut flags = delivery.control_plane.clone();
    flags.control_plane_url = Some(url.clone());
    // Local mode's own configuration, as the token file is in the cluster: exit 78.
    if flags.token_file.is_none() {
        return Err(Failure::config("--control-plane needs --token-file"));
    }
    let client = flags.required(&delivery.trust)?;
    let executor = LocalExecutor::new(LocalMode {
        client,
        descriptors: load::from_dir_or_builtin(args.source.connectors.as_deref())
            .map_err(|e| Failure::config(e.to_string()))?,
        delivery: delivery.settings(),
        signing_key: args.signing.key()?,
        state_dir: args.state_dir,
        secrets_root: args.secrets_root,
        agent_id: args.signing.agent_id.clone(),
        insecure_options: args.signing.insecure_options(&delivery.control_plane),
        manifest_signing_key: args.source.manifest_signing_key,
        exports: args.source.exports.exports(),
    })
    .map_err(Failure::config)?;
    let on_poll = |summary: &agent::tick::TickSummary| {
        if !quiet {
            println!("Polled {url}: {}.", summary.describe_local());
        }
    };
    executor.run(args.interval, args.once, on_poll).await?;
    Ok(ExitCode::Success)
}
