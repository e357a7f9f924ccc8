//! `outpost extract`: the connector pod's first step.

use std::path::PathBuf;

use connector_descriptor::load;
use metadata_extract::outcome::Outcome;
use metadata_extract::{ExtractRequest, RunIdentity};
use outpost_core::ExitCode;

use crate::Failure;

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// The connector (`postgres`, `mysql`, `sqlite`).
    #[arg(long)]
    connector: String,
    /// A parameter as `name=value`; repeat for each. Checked against the descriptor.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = name_value)]
    params: Vec<(String, String)>,
    /// Folder with one file per declared secret, named after it (`password`).
    #[arg(long)]
    secrets_dir: Option<PathBuf>,
    /// Output folder; must be missing or empty.
    #[arg(long)]
    out: PathBuf,
    /// Connection id, recorded in the manifest.
    #[arg(long)]
    connection: Option<String>,
    /// Control-plane job id, recorded in the manifest.
    #[arg(long)]
    job_id: Option<String>,
    /// Run id, recorded in the manifest.
    #[arg(long)]
    run_id: Option<String>,
    /// Read descriptors from this folder instead of the ones built in.
    #[arg(long)]
    connectors: Option<PathBuf>,
    /// Largest uncompressed size of one output part, in MiB.
    #[arg(long, default_value_t = 64)]
    part_size_mib: u64,
    /// Record the outcome (exit code and message) in FILE and exit 0, for the connector pod's
    /// `main` container (`upload --extract-outcome`) to report: Argo reads a pod's exit code
    /// only from the container named `main`.
    #[arg(long, value_name = "FILE")]
    outcome_file: Option<PathBuf>,
}

/// `NAME=VALUE`, split at the first `=`.
pub fn name_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{raw}` is not NAME=VALUE"))
}

pub fn run(args: ExtractArgs, show_progress: bool) -> Result<ExitCode, Failure> {
    let Some(outcome_file) = args.outcome_file.clone() else {
        return extract(args, show_progress);
    };
    // In a connector pod: the outcome, failure or not, is recorded for the `main` container,
    // which exits with its code (usage errors included); it is printed for this one's log.
    let outcome = match extract(args, show_progress) {
        Ok(_) => Outcome::new(0, None),
        Err(failure) => {
            eprintln!(
                "error: {} (exit code {})",
                failure.message(),
                failure.code()
            );
            Outcome::new(failure.code().code(), Some(failure.message()))
        }
    };
    outcome
        .write(&outcome_file)
        .map_err(|e| Failure::new(ExitCode::Io, e))?;
    Ok(ExitCode::Success)
}

fn extract(args: ExtractArgs, show_progress: bool) -> Result<ExitCode, Failure> {
    let descriptors = load::from_dir_or_builtin(args.connectors.as_deref())?;
    let descriptor = load::find(&descriptors, &args.connector)?;
    let request = ExtractRequest {
        descriptor: &descriptor,
        parameters: args.params,
        secrets_dir: args.secrets_dir,
        ca_bundle: agent::steps::source_ca_bundle(),
        out: args.out.clone(),
        identity: RunIdentity {
            connector: descriptor.name().to_owned(),
            connection: args.connection,
            job_id: args.job_id,
            run_id: args.run_id,
        },
        part_bytes: args.part_size_mib.max(1) << 20,
    };
    let progress = crate::progress::ExtractProgress::new(show_progress);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                ExitCode::Software,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    let manifest = runtime.block_on(metadata_extract::run(request, &progress))?;
    tracing::info!(
        out = %args.out.display(),
        files = manifest.files.len(),
        records = manifest.totals.values().sum::<u64>(),
        skipped = manifest.skipped.len(),
        "extraction complete"
    );
    Ok(ExitCode::Success)
}
