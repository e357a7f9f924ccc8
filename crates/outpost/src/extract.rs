//! `outpost extract`: the connector pod's first step.

use std::path::PathBuf;
use std::process::ExitCode;

use connector_descriptor::ValidatedDescriptor;
use metadata_extract::{EntityKind, ExtractRequest, Progress, RunIdentity};

/// The descriptors shipped with this binary. The image runs exactly these, so the control
/// plane can never make a step run a connector the image does not declare.
const BUILTIN_DESCRIPTORS: &[(&str, &str)] = &[
    (
        "connectors/mysql/connector.yaml",
        include_str!("../../../connectors/mysql/connector.yaml"),
    ),
    (
        "connectors/postgres/connector.yaml",
        include_str!("../../../connectors/postgres/connector.yaml"),
    ),
    (
        "connectors/sqlite/connector.yaml",
        include_str!("../../../connectors/sqlite/connector.yaml"),
    ),
];

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// The connector (`postgres`, `mysql`, `sqlite`).
    #[arg(long)]
    pub connector: String,
    /// A parameter as `name=value`; repeat for each. Checked against the descriptor.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Folder with one file per declared secret, named after it (`password`).
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Output folder; must be missing or empty.
    #[arg(long)]
    pub out: PathBuf,
    /// Connection id, recorded in the manifest.
    #[arg(long)]
    pub connection: Option<String>,
    /// Control-plane job id, recorded in the manifest.
    #[arg(long)]
    pub job_id: Option<String>,
    /// Run id, recorded in the manifest.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Read descriptors from this folder instead of the ones built in.
    #[arg(long)]
    pub connectors: Option<PathBuf>,
    /// Largest uncompressed size of one output part, in MiB.
    #[arg(long, default_value_t = 64)]
    pub part_size_mib: u64,
    /// Record the outcome (exit code and message) in FILE and exit 0, for the connector pod's
    /// `main` container (`upload --extract-outcome`) to report: Argo reads a pod's exit code
    /// only from the container named `main`.
    #[arg(long, value_name = "FILE")]
    pub outcome_file: Option<PathBuf>,
}

/// The descriptors this binary ships (and admits jobs against).
pub fn builtin_descriptors() -> anyhow::Result<Vec<ValidatedDescriptor>> {
    Ok(BUILTIN_DESCRIPTORS
        .iter()
        .map(|(file, text)| connector_descriptor::parse(file, text))
        .collect::<Result<Vec<_>, _>>()?)
}

fn descriptor(args: &ExtractArgs) -> anyhow::Result<ValidatedDescriptor> {
    let descriptors = match &args.connectors {
        Some(dir) => workflow_compiler::files::read_connectors(dir)?,
        None => builtin_descriptors()?,
    };
    let names: Vec<&str> = descriptors.iter().map(|d| d.name()).collect();
    descriptors
        .iter()
        .find(|d| d.name() == args.connector)
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unknown connector `{}` (known: {})",
                args.connector,
                names.join(", ")
            )
        })
}

/// Progress as structured log events, plus a spinner naming the current stage when stderr
/// is a terminal.
struct LogProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl LogProgress {
    fn new(show: bool) -> Self {
        use std::io::IsTerminal;
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Self { bar }
    }
}

impl Progress for LogProgress {
    fn database(&self, name: &str) {
        tracing::info!(database = name, "extracting database");
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{name}: tables"));
        }
    }
    fn stage(&self, database: &str, kind: EntityKind) {
        tracing::info!(database, stage = kind.stream(), "stage done");
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{database}: {} done", kind.stream()));
        }
    }
}

impl Drop for LogProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Resolves the connector's descriptor and splits `--param NAME=VALUE`; a failure is a usage
/// error (exit 64).
pub fn prepare(args: &ExtractArgs) -> anyhow::Result<(ValidatedDescriptor, Vec<(String, String)>)> {
    let descriptor = descriptor(args)?;
    let mut parameters = Vec::new();
    for raw in &args.params {
        match raw.split_once('=') {
            Some((name, value)) => parameters.push((name.to_owned(), value.to_owned())),
            None => anyhow::bail!("--param `{raw}` is not NAME=VALUE"),
        }
    }
    Ok((descriptor, parameters))
}

/// Extracts into `args.out`; the manifest on success.
pub async fn extract(
    args: &ExtractArgs,
    descriptor: &ValidatedDescriptor,
    parameters: Vec<(String, String)>,
    show_progress: bool,
) -> Result<metadata_extract::Manifest, metadata_extract::ExtractError> {
    let request = ExtractRequest {
        descriptor,
        parameters,
        secrets_dir: args.secrets_dir.clone(),
        // The agent's custom CA bundle, mounted by the WorkflowTemplate.
        ca_bundle: std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
        out: args.out.clone(),
        identity: RunIdentity {
            connector: descriptor.name().to_owned(),
            connection: args.connection.clone(),
            job_id: args.job_id.clone(),
            run_id: args.run_id.clone(),
        },
        part_bytes: args.part_size_mib.max(1) * 1024 * 1024,
    };
    metadata_extract::run(request, &LogProgress::new(show_progress)).await
}

pub fn run(args: ExtractArgs, show_progress: bool) -> ExitCode {
    let (code, message) = run_step(&args, show_progress);
    if let Some(message) = &message {
        eprintln!("error: {message}");
    }
    match &args.outcome_file {
        None => ExitCode::from(code),
        Some(path) => match crate::outcome::Outcome::new(code, message).write(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(metadata_extract::exit::IO)
            }
        },
    }
}

/// Extracts; the exit code, and the error message on failure.
fn run_step(args: &ExtractArgs, show_progress: bool) -> (u8, Option<String>) {
    let (descriptor, parameters) = match prepare(args) {
        Ok(prepared) => prepared,
        Err(error) => return (metadata_extract::exit::USAGE, Some(format!("{error:#}"))),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return (
                metadata_extract::exit::SOFTWARE,
                Some(format!("cannot start the async runtime: {error}")),
            );
        }
    };
    match runtime.block_on(extract(args, &descriptor, parameters, show_progress)) {
        Ok(manifest) => {
            let records: u64 = manifest.totals.values().sum();
            tracing::info!(
                out = %args.out.display(),
                files = manifest.files.len(),
                records,
                skipped = manifest.skipped.len(),
                "extraction complete"
            );
            (0, None)
        }
        Err(error) => (
            error.exit_code(),
            Some(format!(
                "{} (exit code {})",
                cause_chain(&error),
                error.exit_code()
            )),
        ),
    }
}

/// The error's whole cause chain, as one message (`cannot reach …: connection refused`).
pub fn cause_chain(error: &metadata_extract::ExtractError) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}
