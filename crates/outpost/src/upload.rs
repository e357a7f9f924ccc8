//! `outpost upload`: the connector pod's second step.

use std::path::PathBuf;

use agent::steps::UploadStep;
use outpost_core::{ExitCode, RunIdentity};

use crate::Failure;
use crate::flags::{BucketFlags, ControlPlaneFlags, TransferFlags, TrustFlags};

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
    /// The connector that produced the run; must match the manifest.
    #[arg(long)]
    connector: String,
    /// Connection id (a DNS label); must match the manifest.
    #[arg(long)]
    connection: String,
    /// Control-plane job id; must match the manifest.
    #[arg(long)]
    job_id: String,
    /// Run id; must match the manifest.
    #[arg(long)]
    run_id: String,
    #[command(flatten)]
    bucket: BucketFlags,
    #[command(flatten)]
    transfer: TransferFlags,
    /// Direct ingestion without --urls asks this control plane for upload URLs.
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
    #[command(flatten)]
    trust: TrustFlags,
}

pub fn run(args: UploadArgs, show_progress: bool) -> Result<ExitCode, Failure> {
    let settings = crate::flags::delivery_settings(&args.bucket, &args.transfer, &args.trust);
    let run = RunIdentity::new(
        &args.connector,
        &args.connection,
        &args.job_id,
        &args.run_id,
    )
    .map_err(|e| Failure::usage(e.to_string()))?;
    let runtime = crate::runtime()?;
    let control_plane = args.control_plane.client(&args.trust)?;
    let step = UploadStep {
        from: &args.from,
        extract_outcome: args.extract_outcome.as_deref(),
        run,
        settings: &settings,
        control_plane: control_plane.as_ref(),
    };
    let progress = crate::progress::UploadProgress::new(show_progress);
    let report = runtime.block_on(agent::steps::upload(step, &progress))?;
    if report.already_delivered {
        tracing::info!(manifest = %report.manifest, "already delivered; nothing sent");
    } else {
        let seconds = report.elapsed.as_secs_f64().max(1e-3);
        tracing::info!(
            manifest = %report.manifest,
            files = report.files,
            bytes = report.bytes,
            stale_deleted = report.stale_deleted,
            seconds = format!("{seconds:.2}"),
            mib_per_second = format!("{:.1}", report.bytes as f64 / seconds / 1048576.0),
            "delivered"
        );
    }
    Ok(ExitCode::Success)
}
