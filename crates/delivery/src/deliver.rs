//! `deliver(run, destination)`: what `outpost upload`, `outpost run` and local mode share.
//! Choosing the transfer mode from the settings, opening the destination, checking the run's
//! manifest against its identity, and sending.
//!
//! Where direct-ingestion URLs come from is the caller's choice (a file, or the control
//! plane, which this crate does not know): it passes a [`UrlSource`]. Every URL is checked
//! against the agent's own allow-list ([`IngestPolicy`]) before it is used, whoever chose it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use connector_descriptor::TransferMode;
use outpost_core::run::RunIdentity;

use crate::bucket::{Bucket, BucketUrl, StoreSettings};
use crate::direct::{DirectLimits, UrlFile, UrlSource};
use crate::ingest::{CheckedSource, IngestPolicy};
use crate::relay::{DeliveryReport, UploadLimits};
use crate::run::LocalRun;
use crate::{DeliveryError, Progress};

/// Where and how runs are delivered: plain values, as an entrypoint's flags give them. The
/// default delivers nowhere yet, with the upload limits' defaults.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// The relay bucket (`s3://bucket/prefix`, `az://…`, `gs://…`, `file:///…`), if any.
    pub to: Option<String>,
    /// The transfer mode asked for; default: what the destination given implies.
    pub transfer_mode: Option<TransferMode>,
    /// A file of pre-signed upload URLs (direct ingestion), if any.
    pub urls: Option<PathBuf>,
    /// How the relay bucket is reached.
    pub store: StoreSettings,
    /// Hosts direct-ingestion URLs may point at (`host` or `*.suffix`).
    pub ingest_hosts: Vec<String>,
    /// Also allow loopback direct-ingestion URLs (tests and local use).
    pub allow_loopback_ingest: bool,
    /// Files uploaded at once.
    pub concurrency: usize,
    /// Relay: files larger than this go up in parts of this size.
    pub part_size: usize,
    /// Most file content held in memory at once.
    pub memory_budget: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let limits = UploadLimits::default();
        Self {
            to: None,
            transfer_mode: None,
            urls: None,
            store: StoreSettings::default(),
            ingest_hosts: Vec::new(),
            allow_loopback_ingest: false,
            concurrency: limits.concurrency,
            part_size: limits.part_size,
            memory_budget: limits.memory_budget,
        }
    }
}

impl DeliverySettings {
    /// The transfer mode: the one asked for, else direct ingestion when only a URL file is
    /// given, else bucket relay. `control_plane_urls` says whether the control plane can be
    /// asked for upload URLs. An error when the mode's destination is missing.
    pub fn mode(&self, control_plane_urls: bool) -> Result<TransferMode, DeliveryError> {
        let mode = match self.transfer_mode {
            Some(mode) => mode,
            None if self.urls.is_some() && self.to.is_none() => TransferMode::DirectIngestion,
            None => TransferMode::BucketRelay,
        };
        match mode {
            TransferMode::BucketRelay if self.to.is_none() => Err(DeliveryError::Destination {
                url: String::new(),
                reason: "bucket relay needs --to=<bucket URL>; the agent has no relay bucket configured"
                    .to_owned(),
            }),
            TransferMode::DirectIngestion if self.urls.is_none() && !control_plane_urls => {
                Err(DeliveryError::Config(
                    "direct ingestion needs upload URLs: --urls=<file>, or --control-plane-url with --token-file to ask the control plane".to_owned(),
                ))
            }
            mode => Ok(mode),
        }
    }

    /// The relay bucket, opened; `None` when none is configured.
    pub fn relay_bucket(&self) -> Option<Result<Bucket, DeliveryError>> {
        let to = self.to.as_deref()?;
        Some(BucketUrl::parse(to).and_then(|url| Bucket::open(&url, &self.store)))
    }

    /// The URL file's source, when a URL file is configured.
    pub fn url_file(&self) -> Option<Box<dyn UrlSource>> {
        self.urls
            .as_ref()
            .map(|path| Box::new(UrlFile::new(path)) as Box<dyn UrlSource>)
    }
}

/// Where one run goes.
pub enum Destination {
    /// Bucket relay into this bucket.
    Relay(Bucket),
    /// Direct ingestion through the URLs this source gives.
    Direct(Box<dyn UrlSource>),
}

/// Delivers the run in `from`: checks its manifest against `run` (the connector that
/// produced it, and the ids that name where its files land), then relays it or uploads it
/// directly; `manifest.json` last.
pub async fn deliver(
    from: &Path,
    run: &RunIdentity,
    destination: Destination,
    settings: &DeliverySettings,
    progress: &dyn Progress,
) -> Result<DeliveryReport, DeliveryError> {
    crate::install_crypto_provider();
    let local = LocalRun::open(from)?;
    let folder = run.folder()?;
    local.check_identity(run)?;
    tracing::info!(
        from = %from.display(),
        files = local.files.len(),
        bytes = local.data_bytes(),
        mode = match destination { Destination::Relay(_) => "bucket-relay", Destination::Direct(_) => "direct-ingestion" },
        "delivering run {folder}"
    );
    progress.start(local.data_bytes() + local.manifest_bytes.len() as u64);
    match destination {
        Destination::Relay(bucket) => {
            let limits = UploadLimits {
                concurrency: settings.concurrency,
                part_size: settings.part_size,
                memory_budget: settings.memory_budget,
            };
            crate::relay::relay(&bucket, run, &local, limits, progress).await
        }
        Destination::Direct(source) => {
            let client = crate::direct::http_client(settings.store.ca_bundle.as_deref())?;
            // The control plane (or whoever wrote the URL file) chooses the URLs: each is
            // checked against the agent's own allow-list before it is used.
            let policy = IngestPolicy::new(&settings.ingest_hosts, settings.allow_loopback_ingest)?;
            let limits = DirectLimits {
                concurrency: settings.concurrency,
                retry_budget: Duration::from_secs(120),
                memory_budget: settings.memory_budget,
                ..DirectLimits::default()
            };
            let source = CheckedSource::new(source, policy);
            crate::direct::deliver_direct(&client, &source, &local, limits, progress).await
        }
    }
}
