//! `outpost extract`: the connector pod's first step.

use std::path::PathBuf;

use agent::steps::ExtractStep;
use metadata_extract::outcome::Outcome;
use outpost_core::ExitCode;

use outpost_core::Failure;

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
    /// The agent's manifest-signing key (a file holding its seed, as `outpost keygen` writes
    /// it): the manifest is signed, and `outpost verify` checks runs against its public key.
    #[arg(long, env = "OUTPOST_MANIFEST_SIGNING_KEY", value_name = "FILE")]
    manifest_signing_key: Option<PathBuf>,
    #[command(flatten)]
    exports: crate::flags::ExportFlags,
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
        Err(failure) => Outcome::new(crate::show(&failure).code(), Some(failure.message())),
    };
    (outcome.write(&outcome_file)).map_err(|e| Failure::new(ExitCode::Io, e))?;
    Ok(ExitCode::Success)
}

fn extract(args: ExtractArgs, show_progress: bool) -> Result<ExitCode, Failure> {
    let step = ExtractStep {
        connector: args.connector,
        connectors_dir: args.connectors,
        parameters: args.params,
        secrets_dir: args.secrets_dir,
        out: args.out,
        ids: [args.connection, args.job_id, args.run_id],
        part_bytes: args.part_size_mib.max(1) << 20,
        signing_key_file: args.manifest_signing_key,
        exports: args.exports.exports(),
    };
    let progress = crate::progress::ExtractProgress::new(show_progress);
    // One thread: extraction streams one source, and the pod's CPU limit is small.
    let runtime = crate::built(&mut tokio::runtime::Builder::new_current_thread())?;
    runtime.block_on(agent::steps::extract(step, &progress))?;
    Ok(ExitCode::Success)
}
