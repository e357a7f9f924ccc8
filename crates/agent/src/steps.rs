//! The steps a job runs, shared by the connector pod's containers (`outpost extract`, then
//! `outpost upload`), a single local run (`outpost run`) and local mode's in-process
//! executor, so that the three deliver the same way.
//!
//! Data flows one way: source → [`metadata_extract::run`] → output folder (parts, then
//! manifest) → [`delivery::deliver::deliver`] → store.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use connector_descriptor::{TransferMode, ValidatedDescriptor};
use control_plane::{ControlPlaneClient, ControlPlaneError};
use delivery::deliver::{DeliverySettings, Destination};
use delivery::relay::DeliveryReport;
use delivery::{DeliveryError, Progress};
use metadata_extract::outcome::Outcome;
use metadata_extract::{EntityKind, ExtractError, ExtractRequest, Manifest};
use outpost_core::{ExitCode, RunIdentity};

/// Why a step failed; each cause knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Extraction failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// Delivery failed.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The control plane could not give upload URLs.
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
    /// The extract step of this pod failed, so nothing is uploaded: its exit code is the
    /// pod's (Argo reads only `main`'s).
    #[error("the extract step failed ({message}); nothing is uploaded")]
    ExtractStepFailed {
        /// Extract's message.
        message: String,
        /// Extract's exit code.
        code: u8,
    },
    /// The extract step left no outcome (it did not finish): nothing is uploaded.
    #[error("{0}; nothing is uploaded")]
    NoOutcome(String),
    /// A staging folder could not be made.
    #[error("cannot create a staging folder: {0}")]
    Staging(std::io::Error),
    /// The connector is unknown, or its descriptor folder cannot be used: the command line
    /// named it.
    #[error(transparent)]
    Connector(#[from] connector_descriptor::load::LoadError),
    /// A connection, job or run id that is not a DNS label: the command line gave it.
    #[error("{0}")]
    Identity(String),
    /// A run did not verify against the agent's key.
    #[error(transparent)]
    Verify(#[from] metadata_extract::verify::VerifyError),
    /// A run could not be exported in a catalog's format.
    #[error(transparent)]
    Export(#[from] catalog_export::ExportError),
}

impl StepError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Extract(e) => e.exit_code(),
            Self::Delivery(e) => e.exit_code(),
            Self::ControlPlane(e) => e.exit_code(),
            // Extract only records codes of the table; anything else is a bug.
            Self::ExtractStepFailed { code, .. } => {
                ExitCode::from_code(*code).unwrap_or(ExitCode::Software)
            }
            Self::NoOutcome(_) => ExitCode::NoInput,
            Self::Staging(_) => ExitCode::Io,
            Self::Connector(_) | Self::Identity(_) => ExitCode::Usage,
            Self::Verify(e) => e.exit_code(),
            Self::Export(e) => export_exit_code(e),
        }
    }
}

outpost_core::exit_coded!(StepError);

/// The CA bundle a connector pod trusts for its source: the agent's custom CA, mounted by the
/// WorkflowTemplate and named by `SSL_CERT_FILE`.
pub fn source_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE").map(PathBuf::from)
}

/// The run an upload names, and where its direct-ingestion URLs may come from.
pub struct UploadStep<'a> {
    /// The run's output folder.
    pub from: &'a Path,
    /// The outcome file extract wrote, in a connector pod.
    pub extract_outcome: Option<&'a Path>,
    /// The connector that produced the run, and its connection, job and run ids (checked:
    /// [`RunIdentity::new`]).
    pub run: RunIdentity,
    /// Where and how to deliver.
    pub settings: &'a DeliverySettings,
    /// The control plane, to ask for upload URLs in direct ingestion without a URL file.
    pub control_plane: Option<&'a ControlPlaneClient>,
}

/// `outpost upload`: delivers an extracted run, unless the pod's extract step failed.
pub async fn upload(
    step: UploadStep<'_>,
    progress: &dyn Progress,
) -> Result<DeliveryReport, StepError> {
    if let Some(path) = step.extract_outcome {
        let outcome = Outcome::read(path).map_err(StepError::NoOutcome)?;
        if outcome.exit_code != 0 {
            return Err(StepError::ExtractStepFailed {
                message: outcome.message.unwrap_or_else(|| "no message".to_owned()),
                code: outcome.exit_code,
            });
        }
    }
    let destination = destination(step.settings, step.control_plane, &step.run)?;
    let report =
        delivery::deliver::deliver(step.from, &step.run, destination, step.settings, progress)
            .await?;
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
    Ok(report)
}

/// The connector pod's extract step (`outpost extract`), with the ids recorded in the
/// manifest.
pub struct ExtractStep {
    /// The connector's name.
    pub connector: String,
    /// Read descriptors from this folder instead of the ones built in.
    pub connectors_dir: Option<PathBuf>,
    /// Raw `name=value` parameters, checked against the descriptor.
    pub parameters: Vec<(String, String)>,
    /// The connection's secret files.
    pub secrets_dir: Option<PathBuf>,
    /// The output folder; must be missing or empty.
    pub out: PathBuf,
    /// Connection, job and run ids, when known.
    pub ids: [Option<String>; 3],
    /// Largest uncompressed size of one output part, in bytes.
    pub part_bytes: u64,
    /// The agent's manifest-signing key file: the manifest is signed when given.
    pub signing_key_file: Option<PathBuf>,
    /// Catalog formats the run is also written in, listed in its manifest.
    pub exports: catalog_export::Exports,
}

/// `outpost extract`: the source's metadata into the output folder, manifest last.
pub async fn extract(
    step: ExtractStep,
    progress: &dyn metadata_extract::Progress,
) -> Result<Manifest, StepError> {
    let descriptors =
        connector_descriptor::load::from_dir_or_builtin(step.connectors_dir.as_deref())?;
    let descriptor = connector_descriptor::load::find(&descriptors, &step.connector)?;
    let [connection, job_id, run_id] = step.ids;
    let request = ExtractRequest {
        descriptor: &descriptor,
        parameters: step.parameters,
        secrets_dir: step.secrets_dir,
        ca_bundle: source_ca_bundle(),
        out: step.out.clone(),
        identity: metadata_extract::RunIdentity {
            connector: descriptor.name().to_owned(),
            connection,
            job_id,
            run_id,
        },
        part_bytes: step.part_bytes,
        signing_key_file: step.signing_key_file,
        exports: step.exports,
    };
    let manifest = metadata_extract::run(request, progress).await?;
    tracing::info!(
        out = %step.out.display(),
        files = manifest.files.len(),
        records = manifest.totals.values().sum::<u64>(),
        skipped = manifest.skipped.len(),
        "extraction complete"
    );
    Ok(manifest)
}

/// The extract step in a connector pod (`extract --outcome-file`): its outcome, failure or
/// not, is recorded in `file` for the pod's `main` container (`upload --extract-outcome`),
/// which exits with its code (usage errors included), since Argo reads a pod's exit code only
/// from the container named `main`. A failure is also printed for this container's log; the
/// step itself succeeds once the outcome is recorded.
pub fn record_outcome(
    result: Result<ExitCode, outpost_core::Failure>,
    file: &Path,
) -> Result<ExitCode, outpost_core::Failure> {
    let outcome = match result {
        Ok(_) => Outcome::new(0, None),
        Err(failure) => {
            let code = crate::console::show(&failure).code();
            Outcome::new(code, Some(failure.message()))
        }
    };
    (outcome.write(file)).map_err(|e| outpost_core::Failure::new(ExitCode::Io, e))?;
    Ok(ExitCode::Success)
}

/// Where a run goes: the relay bucket, the URL file, or the control plane's URLs.
fn destination(
    settings: &DeliverySettings,
    control_plane: Option<&ControlPlaneClient>,
    run: &RunIdentity,
) -> Result<Destination, StepError> {
    // `mode` refuses a mode whose destination is missing, so the fallbacks below are
    // defensive only.
    let missing =
        |what: &str| StepError::from(DeliveryError::Config(format!("{what} is not configured")));
    Ok(match settings.mode(control_plane.is_some())? {
        TransferMode::BucketRelay => Destination::Relay(
            settings
                .relay_bucket()
                .ok_or_else(|| missing("a relay bucket"))??,
        ),
        TransferMode::DirectIngestion => match (settings.url_file(), control_plane) {
            (Some(file), _) => Destination::Direct(file),
            (None, Some(client)) => {
                let (_, job_id, run_id) = run.ids().map_err(DeliveryError::from)?;
                Destination::Direct(Box::new(client.url_source(job_id, run_id)))
            }
            (None, None) => return Err(missing("a source of upload URLs")),
        },
    })
}

/// One job run in-process: extract into a staging folder, then deliver.
pub struct LocalJob<'a> {
    /// The connector's descriptor.
    pub descriptor: &'a ValidatedDescriptor,
    /// Raw `name=value` parameters.
    pub parameters: Vec<(String, String)>,
    /// The connection's secret files.
    pub secrets_dir: Option<PathBuf>,
    /// Connection, job and run ids (checked: [`RunIdentity::new`]); the connector is the
    /// descriptor's.
    pub run: RunIdentity,
    /// Where and how to deliver.
    pub settings: &'a DeliverySettings,
    /// The control plane, for direct-ingestion URLs.
    pub control_plane: Option<&'a ControlPlaneClient>,
    /// The agent's manifest-signing key file: the manifest is signed when given.
    pub signing_key_file: Option<PathBuf>,
    /// Catalog formats the run is also written in, listed in its manifest.
    pub exports: catalog_export::Exports,
}

/// What a local run did.
#[derive(Debug)]
pub struct LocalRunSummary {
    /// The manifest extraction wrote.
    pub manifest: Manifest,
    /// How long extraction took.
    pub extracted_in: Duration,
    /// What delivery did.
    pub delivery: DeliveryReport,
    /// How long the whole run took.
    pub elapsed: Duration,
}

/// Runs a job in-process: extract, then deliver; the staging folder is removed after.
pub async fn run_local(
    job: LocalJob<'_>,
    extract_progress: &dyn metadata_extract::Progress,
    delivery_progress: &dyn Progress,
) -> Result<LocalRunSummary, StepError> {
    let started = Instant::now();
    let staging = tempfile::Builder::new()
        .prefix("outpost-run-")
        .tempdir()
        .map_err(StepError::Staging)?;
    let out = staging.path().join("out");
    let run = RunIdentity {
        connector: job.descriptor.name().to_owned(),
        ..job.run
    };
    let request = ExtractRequest {
        descriptor: job.descriptor,
        parameters: job.parameters,
        secrets_dir: job.secrets_dir,
        ca_bundle: source_ca_bundle(),
        out: out.clone(),
        identity: run.clone(),
        part_bytes: 64 << 20,
        signing_key_file: job.signing_key_file,
        exports: job.exports,
    };
    let manifest = metadata_extract::run(request, extract_progress).await?;
    let extracted_in = started.elapsed();
    let delivery = upload(
        UploadStep {
            from: &out,
            extract_outcome: None,
            run,
            settings: job.settings,
            control_plane: job.control_plane,
        },
        delivery_progress,
    )
    .await?;
    Ok(LocalRunSummary {
        manifest,
        extracted_in,
        delivery,
        elapsed: started.elapsed(),
    })
}

/// What `outpost run` extracts: the bundled sample catalog, or a connector's source.
#[derive(Clone, Debug)]
pub enum LocalSource {
    /// The sample catalog (`samples/sample-catalog.sql`), built into a SQLite database that
    /// is removed when the run ends.
    Sample,
    /// A connector, with raw `name=value` parameters.
    Connector {
        /// The connector's name.
        name: String,
        /// Its parameters.
        parameters: Vec<(String, String)>,
    },
}

impl LocalSource {
    /// How a summary names it: `the sample catalog`, or the connector's name.
    pub fn label(&self) -> String {
        match self {
            Self::Sample => "the sample catalog".to_owned(),
            Self::Connector { name, .. } => format!("`{name}`"),
        }
    }
}

/// One run on this machine (`outpost run` without a control plane), with its defaults
/// still to apply.
pub struct OneRun<'a> {
    /// What to extract.
    pub source: LocalSource,
    /// The descriptors the connector is found in.
    pub descriptors: &'a [ValidatedDescriptor],
    /// The connection's secret files.
    pub secrets_dir: Option<PathBuf>,
    /// Connection id; default `sample` for the sample, else `local`.
    pub connection: Option<String>,
    /// Job id; default `local`.
    pub job_id: Option<String>,
    /// Run id; default the start time, `20261126T051245Z` (sortable, a valid path segment).
    pub run_id: Option<String>,
    /// Where and how to deliver; with neither a bucket nor direct ingestion, a local bucket
    /// in `./outpost-output/`.
    pub settings: DeliverySettings,
    /// The control plane, for direct-ingestion URLs.
    pub control_plane: Option<&'a ControlPlaneClient>,
    /// The agent's manifest-signing key file: the manifest is signed when given.
    pub signing_key_file: Option<PathBuf>,
    /// Catalog formats the run is also written in, listed in its manifest.
    pub exports: catalog_export::Exports,
}

/// Where a run without a destination goes: a local bucket in the current folder.
pub const DEFAULT_OUTPUT: &str = "outpost-output";

/// Runs [`OneRun`]: applies its defaults, then [`run_local`].
pub async fn run_one(
    run: OneRun<'_>,
    extract_progress: &dyn metadata_extract::Progress,
    delivery_progress: &dyn Progress,
) -> Result<LocalRunSummary, StepError> {
    let mut settings = run.settings;
    let direct = settings.transfer_mode == Some(TransferMode::DirectIngestion);
    if settings.to.is_none() && settings.urls.is_none() && !direct {
        let cwd = std::env::current_dir().map_err(StepError::Staging)?;
        settings.to = Some(format!("file://{}", cwd.join(DEFAULT_OUTPUT).display()));
    }
    // The sample's database lives in a folder removed when the run ends (held here).
    let mut _sample = None;
    let (connector, parameters, connection) = match run.source {
        LocalSource::Connector { name, parameters } => (name, parameters, "local"),
        LocalSource::Sample => {
            let folder = tempfile::Builder::new()
                .prefix("outpost-sample-")
                .tempdir()
                .map_err(StepError::Staging)?;
            let db = folder.path().join("sample-catalog.db");
            metadata_extract::sample::build(&db)?;
            _sample = Some(folder);
            let path = vec![("path".to_owned(), db.display().to_string())];
            ("sqlite".to_owned(), path, "sample")
        }
    };
    let descriptor = connector_descriptor::load::find(run.descriptors, &connector)?;
    let run_id = run.run_id.unwrap_or_else(|| {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(['-', ':'], "")
    });
    let connection = run.connection.as_deref().unwrap_or(connection);
    let job_id = run.job_id.as_deref().unwrap_or("local");
    let identity = RunIdentity::new(descriptor.name(), connection, job_id, &run_id)
        .map_err(|e| StepError::Identity(e.to_string()))?;
    let job = LocalJob {
        descriptor: &descriptor,
        parameters,
        secrets_dir: run.secrets_dir,
        run: identity,
        settings: &settings,
        control_plane: run.control_plane,
        signing_key_file: run.signing_key_file,
        exports: run.exports,
    };
    run_local(job, extract_progress, delivery_progress).await
}

impl LocalRunSummary {
    /// `Extracted 3 tables and views, 12 columns.` and what was delivered, for a person.
    pub fn describe(&self, source: &str) -> String {
        let counts: Vec<String> = EntityKind::ALL
            .iter()
            .filter_map(|kind| {
                let n = self.manifest.totals.get(kind).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {}", kind.noun(n)))
            })
            .collect();
        let mut text = format!(
            "Extracted {source} in {:.2} s: {}.\n",
            self.extracted_in.as_secs_f64(),
            counts.join(", ")
        );
        if !self.manifest.skipped.is_empty() {
            text.push_str(&format!(
                "Skipped {} (listed in the manifest with the reason).\n",
                self.manifest.skipped.len()
            ));
        }
        text.push_str(&format!(
            "Delivered {} files and the manifest, {}, in {:.2} s.\nManifest: {}",
            self.delivery.files,
            HumanBytes(self.delivery.bytes),
            self.elapsed.as_secs_f64(),
            self.delivery.manifest
        ));
        if self.delivery.already_delivered {
            text.push_str(" (already delivered; nothing sent)");
        }
        text
    }
}

struct HumanBytes(u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b if b < 1024 => write!(f, "{b} B"),
            b if b < 1 << 20 => write!(f, "{:.1} KiB", b as f64 / 1024.0),
            b if b < 1 << 30 => write!(f, "{:.1} MiB", b as f64 / 1048576.0),
            b => write!(f, "{:.2} GiB", b as f64 / 1073741824.0),
        }
    }
}

/// Local mode's [`crate::local::JobRunner`]: each admitted job extracted into a staging
/// folder and delivered in its transfer mode, in this process.
pub struct InProcessRunner {
    /// Where and how to deliver (the job's transfer mode replaces the one given).
    pub settings: DeliverySettings,
    /// The control plane, for direct-ingestion URLs.
    pub control_plane: Option<ControlPlaneClient>,
    /// The agent's manifest-signing key file: each run's manifest is signed when given.
    pub signing_key_file: Option<PathBuf>,
    /// Catalog formats each run is also written in, listed in its manifest.
    pub exports: catalog_export::Exports,
}

/// Extraction progress nobody watches: local mode logs per job instead.
struct Quiet;

impl metadata_extract::Progress for Quiet {
    fn database(&self, _name: &str) {}
    fn stage(&self, _database: &str, _kind: EntityKind) {}
}

impl crate::local::JobRunner for InProcessRunner {
    fn run<'a>(
        &'a self,
        job: &'a orchestrator::AdmittedJob,
        descriptor: &'a ValidatedDescriptor,
        secrets_dir: Option<PathBuf>,
        log: &'a mut crate::local::JobLog,
    ) -> crate::local::RunFuture<'a> {
        Box::pin(async move {
            let settings = DeliverySettings {
                transfer_mode: Some(job.transfer_mode),
                ..self.settings.clone()
            };
            let run = RunIdentity::new(&job.connector, &job.connection, &job.id, &job.run_id)
                .map_err(|e| e.to_string())?;
            let local = LocalJob {
                descriptor,
                parameters: job.arguments.clone().into_iter().collect(),
                secrets_dir,
                run,
                settings: &settings,
                control_plane: self.control_plane.as_ref(),
                signing_key_file: self.signing_key_file.clone(),
                exports: self.exports.clone(),
            };
            let summary = run_local(local, &Quiet, &delivery::NoProgress)
                .await
                .map_err(|e| {
                    let step = if matches!(e, StepError::Extract(_)) {
                        "extract"
                    } else {
                        "deliver"
                    };
                    format!(
                        "{step}: {} (exit code {})",
                        outpost_core::redact::error_chain(&e),
                        e.exit_code()
                    )
                })?;
            log.line(format!("extracted: {:?}", summary.manifest.totals));
            Ok(format!(
                "delivered {} files, {} bytes; manifest {}",
                summary.delivery.files, summary.delivery.bytes, summary.delivery.manifest
            ))
        })
    }
}

/// `outpost verify`: a run's folder, or a delivered run's bucket URL (read back into a
/// staging folder first, `delivery::fetch`), checked against the agent's public key.
pub async fn verify(
    target: &str,
    key: &outpost_core::signing::VerifyingKey,
    store: &delivery::bucket::StoreSettings,
) -> Result<metadata_extract::verify::Verified, StepError> {
    use metadata_extract::verify::{VerifyError, verify_run};
    if !target.contains("://") {
        return Ok(verify_run(std::path::Path::new(target), key)?);
    }
    let staging = tempfile::Builder::new()
        .prefix("outpost-verify-")
        .tempdir()
        .map_err(StepError::Staging)?;
    let target = target.trim_end_matches('/');
    if !delivery::fetch::fetch_run(target, store, staging.path()).await? {
        return Err(VerifyError::NoManifest(PathBuf::from(target)).into());
    }
    // Errors name the bucket's objects, not the staging copies.
    let in_bucket = |relative: &str| PathBuf::from(format!("{target}/{relative}"));
    let mut verified = verify_run(staging.path(), key).map_err(|e| match e {
        VerifyError::Signature { source, .. } => VerifyError::Signature {
            path: in_bucket(outpost_core::output::MANIFEST),
            source,
        },
        other => other,
    })?;
    // Only listed files were read back: what else the bucket holds is not looked at.
    verified.unlisted.clear();
    Ok(verified)
}

/// An export's exit code: the run reader's own for a run that cannot be read, 64 for an
/// option or a connector the format cannot take, 74 for an output that cannot be written.
fn export_exit_code(e: &catalog_export::ExportError) -> ExitCode {
    use catalog_export::ExportError;
    match e {
        ExportError::Read(e) => e
            .downcast_ref::<metadata_extract::read::ReadError>()
            .map_or(ExitCode::Data, metadata_extract::read::ReadError::exit_code),
        ExportError::Write(_) => ExitCode::Io,
        ExportError::Unsupported { .. } | ExportError::Option(_) => ExitCode::Usage,
    }
}

/// `outpost export`: the complete run in `from` written in a catalog's `format` to `out` (a
/// file, or a folder that gets the format's file name). The file appears whole or not at
/// all: it is written beside its place and renamed into it. Answers where it went and what
/// was written.
pub fn export(
    from: &Path,
    format: catalog_export::Format,
    options: &catalog_export::Options,
    out: &Path,
) -> Result<(PathBuf, catalog_export::Summary), StepError> {
    let mut reader =
        metadata_extract::read::RunReader::open(from).map_err(catalog_export::ExportError::read)?;
    let target = if out.is_dir() {
        out.join(format.file_name())
    } else {
        out.to_owned()
    };
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let write_error = |e: std::io::Error| {
        catalog_export::ExportError::Write(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", target.display()),
        ))
    };
    let staged = tempfile::Builder::new()
        .prefix(".outpost-export-")
        .tempfile_in(&folder)
        .map_err(write_error)?;
    let mut writer = std::io::BufWriter::with_capacity(256 * 1024, staged);
    let manifest = reader.manifest().clone();
    let summary = catalog_export::export(&manifest, &mut reader, format, options, &mut writer)?;
    let staged = writer
        .into_inner()
        .map_err(|e| write_error(e.into_error()))?;
    staged.as_file().sync_all().map_err(write_error)?;
    staged.persist(&target).map_err(|e| write_error(e.error))?;
    Ok((target, summary))
}
