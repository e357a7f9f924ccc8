//! `outpost upload`: the connector pod's second step, and local mode's delivery.

use control_plane::{ClientConfig, ControlPlaneClient, ControlPlaneError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use delivery::bucket::{Bucket, BucketUrl, StoreSettings};
use delivery::direct::{DirectLimits, UrlFile};
use delivery::relay::{DeliveryReport, UploadLimits};
use delivery::run::{LocalRun, RunKey};
use delivery::{DeliveryError, Progress};

use connector_descriptor::TransferMode;

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
    delivery: DeliveryFlags,
}

/// Where and how a run is delivered: shared by `upload` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct DeliveryFlags {
    /// Bucket relay destination: `s3://bucket/prefix`, `az://container/prefix`,
    /// `gs://bucket/prefix` or `file:///folder`. The run lands under
    /// `<prefix>/<connection>/<job-id>/<run-id>/`.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Transfer mode, spelled as in descriptors and WorkflowTemplates: `bucket-relay` (into
    /// the bucket --to names) or `direct-ingestion` (through pre-signed URLs). Default:
    /// `bucket-relay` with --to, `direct-ingestion` with --urls.
    #[arg(long, value_enum)]
    pub transfer_mode: Option<TransferMode>,
    /// Same as --transfer-mode=direct-ingestion.
    #[arg(long, conflicts_with = "transfer_mode")]
    pub direct: bool,
    /// Direct ingestion: a JSON file mapping each run-relative path (and `manifest.json`) to
    /// `{"url", "method", "headers", "expiresAt"}`. Read again when a URL must be refreshed.
    #[arg(long, value_name = "FILE")]
    pub urls: Option<PathBuf>,
    /// Control plane, for upload URLs in direct mode.
    #[arg(long, value_name = "URL")]
    pub control_plane_url: Option<String>,
    /// File holding the control plane's bearer token (read on every request).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Direct ingestion: a host upload URLs may point at, exactly (`storage.googleapis.com`)
    /// or as `*.suffix` (`*.blob.core.windows.net`); repeat for each. Only https URLs to
    /// these hosts are used; IP addresses never are. Without any, every URL is refused.
    #[arg(long = "ingest-host", value_name = "HOST")]
    pub ingest_hosts: Vec<String>,
    /// Direct ingestion: also allow loopback URLs (127.0.0.0/8, ::1, localhost), over http
    /// too. For tests and local use only; logged as a warning.
    #[arg(long)]
    pub allow_loopback_ingest: bool,
    /// Folder of static bucket credentials, one value per file: S3 `access-key-id`,
    /// `secret-access-key`, `session-token`; Azure `account-name`, `account-key` or
    /// `sas-token` or `client-id`/`client-secret`/`tenant-id`; GCS `service-account.json`.
    /// Without it, the cloud's workload identity (IRSA, EKS pod identity, Azure workload or
    /// managed identity, GCP metadata server) or the usual environment variables.
    #[arg(long, value_name = "DIR")]
    pub credentials_dir: Option<PathBuf>,
    /// Custom endpoint: an S3-compatible store, a private endpoint, an emulator.
    #[arg(long, value_name = "URL", env = "OUTPOST_BUCKET_ENDPOINT")]
    pub endpoint: Option<String>,
    /// S3 region (default: AWS_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Azure storage account (default: AZURE_STORAGE_ACCOUNT_NAME or the credentials folder).
    #[arg(long)]
    pub azure_account: Option<String>,
    /// S3 server-side encryption with this KMS key id.
    #[arg(long, value_name = "KEY_ID")]
    pub sse_kms_key_id: Option<String>,
    /// PEM bundle of extra CA certificates (default: the file SSL_CERT_FILE names).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Allow a plain-http --control-plane-url that is not loopback (the token then crosses
    /// the network in clear text). Logged as a warning.
    #[arg(long)]
    pub insecure_plain_http: bool,
    /// Files uploaded at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Files above this size (MiB) go up in parts of this size (at least 5).
    #[arg(long, default_value_t = 8)]
    pub part_size_mib: usize,
    /// Most file content held in memory at once (MiB). The default keeps peak memory near
    /// 40 MiB at full speed (measured by crates/delivery/benches/upload.sh).
    #[arg(long, default_value_t = 16)]
    pub memory_mib: usize,
}

/// Counts what has gone up, for the log and the summary; a byte bar on a terminal.
pub struct UploadProgress {
    files: AtomicU64,
    bytes: AtomicU64,
    bar: Option<indicatif::ProgressBar>,
}

impl UploadProgress {
    /// A progress for `total` bytes; the bar shows only on a terminal and when not quiet.
    pub fn new(total: u64, show_bar: bool) -> Self {
        use std::io::IsTerminal;
        let bar = (show_bar && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} uploading {bytes}/{total_bytes} {wide_bar} {bytes_per_sec}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bar,
        }
    }
}

impl Progress for UploadProgress {
    fn file_done(&self, relative: &str, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        tracing::debug!(file = relative, bytes, "stored");
    }
}

impl Drop for UploadProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn run(args: UploadArgs, show_progress: bool) -> ExitCode {
    if let Some(path) = &args.extract_outcome {
        match crate::outcome::Outcome::read(path) {
            Ok(outcome) if outcome.exit_code == 0 => {}
            Ok(outcome) => {
                eprintln!(
                    "error: the extract step failed ({}); nothing is uploaded (exit code {})",
                    outcome.message.as_deref().unwrap_or("no message"),
                    outcome.exit_code
                );
                return ExitCode::from(outcome.exit_code);
            }
            Err(error) => {
                eprintln!(
                    "error: {error}; nothing is uploaded (exit code {})",
                    delivery::exit::NO_INPUT
                );
                return ExitCode::from(delivery::exit::NO_INPUT);
            }
        }
    }
    delivery::install_crypto_provider();
    let runtime = match crate::delivery_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let identity = RunIdentityArgs {
        connector: &args.connector,
        connection: &args.connection,
        job_id: &args.job_id,
        run_id: &args.run_id,
    };
    match runtime.block_on(upload(&args.from, identity, &args.delivery, show_progress)) {
        Ok(report) => {
            let seconds = report.elapsed.as_secs_f64().max(1e-3);
            if report.already_delivered {
                tracing::info!(manifest = %report.manifest, "already delivered; nothing sent");
            } else {
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
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "error: {} (exit code {})",
                delivery::redact_urls(&error.to_string()),
                error.exit_code()
            );
            ExitCode::from(error.exit_code())
        }
    }
}

/// Which run is delivered.
#[derive(Clone, Copy, Debug)]
pub struct RunIdentityArgs<'a> {
    pub connector: &'a str,
    pub connection: &'a str,
    pub job_id: &'a str,
    pub run_id: &'a str,
}

/// Resolves the transfer mode from the flags: explicit mode, `--direct`, or what the given
/// destination implies.
fn transfer_mode(args: &DeliveryFlags) -> Result<TransferMode, DeliveryError> {
    let usage = |m: &str| DeliveryError::Destination {
        url: args.to.clone().unwrap_or_default(),
        reason: m.to_owned(),
    };
    let mode = match (args.transfer_mode, args.direct) {
        (Some(mode), _) => mode,
        (None, true) => TransferMode::DirectIngestion,
        (None, false) if args.urls.is_some() && args.to.is_none() => TransferMode::DirectIngestion,
        (None, false) => TransferMode::BucketRelay,
    };
    match mode {
        TransferMode::BucketRelay if args.to.is_none() => Err(usage(
            "bucket relay needs --to=<bucket URL>; the agent has no relay bucket configured",
        )),
        TransferMode::DirectIngestion
            if args.urls.is_none()
                && (args.control_plane_url.is_none() || args.token_file.is_none()) =>
        {
            Err(DeliveryError::Config(
                "direct ingestion needs upload URLs: --urls=<file>, or --control-plane-url with --token-file to ask the control plane".to_owned(),
            ))
        }
        mode => Ok(mode),
    }
}

/// Delivers the run in `from`: checks the manifest against the identity, then relays or
/// uploads directly.
pub async fn upload(
    from: &std::path::Path,
    identity: RunIdentityArgs<'_>,
    args: &DeliveryFlags,
    show_progress: bool,
) -> Result<DeliveryReport, DeliveryError> {
    let mode = transfer_mode(args)?;
    let key = RunKey::new(identity.connection, identity.job_id, identity.run_id)?;
    let run = LocalRun::open(from)?;
    run.check_identity(identity.connector, &key)?;
    tracing::info!(
        from = %from.display(),
        files = run.files.len(),
        bytes = run.data_bytes(),
        mode = ?mode,
        "delivering run {}",
        key.relative()
    );
    let progress = UploadProgress::new(
        run.data_bytes() + run.manifest_bytes.len() as u64,
        show_progress,
    );
    match mode {
        TransferMode::BucketRelay => {
            let url = BucketUrl::parse(args.to.as_deref().unwrap_or_default())?;
            let settings = StoreSettings {
                endpoint: args.endpoint.clone(),
                region: args.region.clone(),
                azure_account: args.azure_account.clone(),
                credentials_dir: args.credentials_dir.clone(),
                sse_kms_key_id: args.sse_kms_key_id.clone(),
                ca_bundle: args.ca_bundle.clone(),
                request_timeout: None,
                retry_timeout: None,
            };
            let bucket = Bucket::open(&url, &settings)?;
            let limits = UploadLimits {
                concurrency: args.concurrency,
                part_size: args.part_size_mib << 20,
                memory_budget: args.memory_mib << 20,
            };
            delivery::relay::relay(&bucket, &key, &run, limits, &progress).await
        }
        TransferMode::DirectIngestion => {
            let client = delivery::direct::http_client(args.ca_bundle.as_deref())?;
            // The control plane (or whoever wrote the URL file) chooses the URLs: each is
            // checked against the agent's own allow-list before it is used.
            let policy = delivery::ingest::IngestPolicy::new(
                &args.ingest_hosts,
                args.allow_loopback_ingest,
            )?;
            let source: Box<dyn delivery::direct::UrlSource> = match &args.urls {
                Some(path) => Box::new(UrlFile::new(path)),
                None => Box::new(
                    control_plane_client(args)
                        .map_err(ControlPlaneError::into_delivery)?
                        .url_source(identity.job_id, identity.run_id),
                ),
            };
            let limits = DirectLimits {
                concurrency: args.concurrency,
                retry_budget: Duration::from_secs(120),
                memory_budget: args.memory_mib << 20,
                ..DirectLimits::default()
            };
            let source = delivery::ingest::CheckedSource::new(source, policy);
            delivery::direct::deliver_direct(&client, &source, &run, limits, &progress).await
        }
    }
}

/// The control-plane client the delivery flags name (`--control-plane-url`, `--token-file`,
/// `--ca-bundle`).
pub fn control_plane_client(args: &DeliveryFlags) -> Result<ControlPlaneClient, ControlPlaneError> {
    let url = args.control_plane_url.as_deref().unwrap_or_default();
    let base = crate::agent::control_plane_base(url, args.insecure_plain_http)?;
    let mut config = ClientConfig::new(base, args.token_file.clone().unwrap_or_default());
    config.ca_bundle = args.ca_bundle.clone();
    ControlPlaneClient::new(config)
}
