//! `outpost extract`: the connector pod's first step.

use std::path::PathBuf;

use agent::steps::ExtractStep;
use outpost_core::{ExitCode, Failure};

use crate::flags::{IdFlags, SourceFlags};

#[derive(clap::Args, Debug)]
#[command(mut_arg("connector", crate::flags::required))]
pub struct ExtractArgs {
    #[command(flatten)]
    source: SourceFlags,
    /// Output folder; must be missing or empty.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    ids: IdFlags,
    /// Largest uncompressed size of one output part, in MiB.
    #[arg(long, default_value_t = 64)]
    part_size_mib: u64,
    /// Record the outcome (exit code and message) in FILE and exit 0, for the connector pod's
    /// `main` container (`upload --extract-outcome`) to report: Argo reads a pod's exit code
    /// only from the container named `main`.
    #[arg(long, value_name = "FILE")]
    outcome_file: Option<PathBuf>,
}

pub fn run(args: ExtractArgs, show_progress: bool) -> Result<ExitCode, Failure> {
    match args.outcome_file.clone() {
        None => extract(args, show_progress),
        Some(file) => agent::steps::record_outcome(extract(args, show_progress), &file),
    }
}

fn extract(args: ExtractArgs, show_progress: bool) -> Result<ExitCode, Failure> {
    let source = args.source;
    let step = ExtractStep {
        connector: source.connector.unwrap_or_default(),
        connectors_dir: source.connectors,
        parameters: source.params,
        secrets_dir: source.secrets_dir,
        out: args.out,
        ids: [args.ids.connection, args.ids.job_id, args.ids.run_id],
        part_bytes: args.part_size_mib.max(1) << 20,
        signing_key_file: source.manifest_signing_key,
        exports: source.exports.exports(),
    };
    let progress = agent::console::Progress::spinner(show_progress);
    let runtime = agent::context::extract_runtime()?;
    runtime.block_on(agent::steps::extract(step, &progress))?;
    Ok(ExitCode::Success)
}
