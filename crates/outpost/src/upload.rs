//! `outpost upload`: the connector pod's second step.

use std::path::PathBuf;

use agent::steps::UploadStep;
use outpost_core::ExitCode;

use crate::flags::{DeliveryFlags, RunFlags};
use outpost_core::Failure;

#[derive(clap::Args, Debug)]
pub struct UploadArgs {
    /// The run's output folder, as `outpost extract` left it (with manifest.json).
    #[arg(long)]
    from: PathBuf,
    /// The outcome file `extract --outcome-file` wrote. When extract failed, nothing is
    /// uploaded and upload exits with extract's code, so the pod's `main` container carries
    /// the step's outcome to Argo's retry policy.
    #[arg(long, value_name = "FILE")]
    extract_outcome: Option<PathBuf>,
    /// The run, checked against the manifest.
    #[command(flatten)]
    run: RunFlags,
    /// Direct ingestion without --urls asks the control plane for upload URLs.
    #[command(flatten)]
    delivery: DeliveryFlags,
}

pub fn run(args: UploadArgs, show_progress: bool) -> Result<ExitCode, Failure> {
    let settings = args.delivery.settings();
    let run = args.run.identity()?;
    let runtime = agent::context::runtime()?;
    let control_plane = args.delivery.control_plane.client(&args.delivery.trust)?;
    let step = UploadStep {
        from: &args.from,
        extract_outcome: args.extract_outcome.as_deref(),
        run,
        settings: &settings,
        control_plane: control_plane.as_ref(),
    };
    let progress = agent::console::Progress::bytes(show_progress);
    runtime.block_on(agent::steps::upload(step, &progress))?;
    Ok(ExitCode::Success)
}
