//! The flag groups, one per concern, shared by every subcommand that needs it; each turns
//! itself into the settings of the library that owns the concern, in one place.

use std::path::PathBuf;

use agent::argo_config::ControllerConfigMap;
use connector_descriptor::TransferMode;
use control_plane::ControlPlaneClient;
use delivery::bucket::StoreSettings;
use delivery::deliver::DeliverySettings;

use outpost_core::Failure;

/// How an entrypoint reaches the control plane.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ControlPlaneFlags {
    /// Base URL of the control plane: https, or http to loopback only.
    #[arg(long, value_name = "URL", env = "OUTPOST_CONTROL_PLANE_URL")]
    pub control_plane_url: Option<String>,
    /// File holding the bearer token, re-read on every request (rotation needs no restart).
    #[arg(long, value_name = "FILE", env = "OUTPOST_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Allow a plain-http control-plane URL that is not loopback: the bearer token then
    /// crosses the network in clear text. Logged as a warning on every run.
    #[arg(long)]
    pub insecure_plain_http: bool,
}

/// Extra trust for TLS, to the control plane, buckets and upload URLs alike.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TrustFlags {
    /// PEM bundle of extra CA certificates trusted beside the system roots (default: the
    /// file SSL_CERT_FILE names).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
}

impl ControlPlaneFlags {
    /// The client, when a URL and a token file are given; `None` when neither is.
    pub fn client(&self, trust: &TrustFlags) -> Result<Option<ControlPlaneClient>, Failure> {
        let url = self.control_plane_url.as_deref();
        let insecure = self.insecure_plain_http;
        ControlPlaneClient::from_flags(
            url,
            self.token_file.as_deref(),
            insecure,
            trust.ca_bundle.as_deref(),
        )
    }

    /// The client, which this subcommand cannot do without.
    pub fn required(&self, trust: &TrustFlags) -> Result<ControlPlaneClient, Failure> {
        self.client(trust)?.ok_or_else(|| {
            Failure::usage("the control plane is required: --control-plane-url and --token-file (or OUTPOST_CONTROL_PLANE_URL and OUTPOST_TOKEN_FILE)")
        })
    }
}

/// A relay bucket: where bucket relay delivers, and where a relayed run's logs go.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BucketFlags {
    /// Bucket relay destination (`s3://bucket/prefix`, `az://…`, `gs://…`, `file:///…`); the
    /// run lands under `<prefix>/<connection>/<job-id>/<run-id>/`.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    #[command(flatten)]
    pub store: StoreFlags,
}

/// How a bucket is reached: its endpoint, region, account and credentials.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreFlags {
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
    /// Folder of static bucket credentials, one value per file: S3 `access-key-id`,
    /// `secret-access-key`, `session-token`; Azure `account-name`, `account-key` or
    /// `sas-token` or `client-id`/`client-secret`/`tenant-id`; GCS `service-account.json`.
    /// Without it, the cloud's workload identity (IRSA, EKS pod identity, Azure workload or
    /// managed identity, GCP metadata server) or the usual environment variables.
    #[arg(long, value_name = "DIR")]
    pub credentials_dir: Option<PathBuf>,
}

impl StoreFlags {
    /// How the bucket is reached.
    pub fn settings(&self, trust: &TrustFlags) -> StoreSettings {
        StoreSettings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            azure_account: self.azure_account.clone(),
            credentials_dir: self.credentials_dir.clone(),
            sse_kms_key_id: self.sse_kms_key_id.clone(),
            ca_bundle: trust.ca_bundle.clone(),
            ..StoreSettings::default()
        }
    }
}

/// How a run is delivered: the mode, direct ingestion's URLs and their allow-list, and the
/// upload's limits.
#[derive(clap::Args, Debug, Clone)]
pub struct TransferFlags {
    /// `bucket-relay` (into the bucket --to names) or `direct-ingestion` (through pre-signed
    /// URLs). Default: `bucket-relay` with --to, `direct-ingestion` with --urls.
    #[arg(long, value_enum)]
    pub transfer_mode: Option<TransferMode>,
    /// Same as --transfer-mode=direct-ingestion.
    #[arg(long, conflicts_with = "transfer_mode")]
    pub direct: bool,
    /// Direct ingestion: a JSON file mapping each run path to `{"url", "method", "headers",
    /// "expiresAt"}`, re-read to refresh a URL. Without it, the control plane gives the URLs.
    #[arg(long, value_name = "FILE")]
    pub urls: Option<PathBuf>,
    /// Direct ingestion: a host upload URLs may point at, exactly (`storage.googleapis.com`)
    /// or as `*.suffix` (`*.blob.core.windows.net`); repeat for each. Only https URLs to
    /// these hosts are used; IP addresses never are. Without any, every URL is refused.
    #[arg(long = "ingest-host", value_name = "HOST")]
    pub ingest_hosts: Vec<String>,
    /// Direct ingestion: also allow loopback URLs (127.0.0.0/8, ::1, localhost), over http
    /// too. For tests and local use only; logged as a warning.
    #[arg(long)]
    pub allow_loopback_ingest: bool,
    /// Files uploaded at once.
    #[arg(long, default_value_t = delivery::relay::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Files above this size (MiB) go up in parts of this size (at least 5).
    #[arg(long, default_value_t = delivery::relay::DEFAULT_PART_SIZE >> 20)]
    pub part_size_mib: usize,
    /// Most file content held in memory at once (MiB); the default keeps peak RSS near 40 MiB.
    #[arg(long, default_value_t = delivery::relay::DEFAULT_MEMORY_BUDGET >> 20)]
    pub memory_mib: usize,
}

/// Where and how a run is delivered, and the control plane that may give its upload URLs.
#[derive(clap::Args, Debug, Clone)]
pub struct DeliveryFlags {
    #[command(flatten)]
    pub bucket: BucketFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
    #[command(flatten)]
    pub control_plane: ControlPlaneFlags,
    #[command(flatten)]
    pub trust: TrustFlags,
}

impl DeliveryFlags {
    /// The delivery settings the flags describe.
    pub fn settings(&self) -> DeliverySettings {
        let transfer = &self.transfer;
        DeliverySettings {
            to: self.bucket.to.clone(),
            transfer_mode: match (transfer.transfer_mode, transfer.direct) {
                (None, true) => Some(TransferMode::DirectIngestion),
                (mode, _) => mode,
            },
            urls: transfer.urls.clone(),
            store: self.bucket.store.settings(&self.trust),
            ingest_hosts: transfer.ingest_hosts.clone(),
            allow_loopback_ingest: transfer.allow_loopback_ingest,
            concurrency: transfer.concurrency,
            part_size: transfer.part_size_mib << 20,
            memory_budget: transfer.memory_mib << 20,
        }
    }
}

/// The agent in its namespace: how it reaches the control plane and Argo, and which jobs it
/// admits (`orchestrate`, `heartbeat`).
#[derive(clap::Args, Debug, Clone)]
pub struct AgentFlags {
    /// The agent's namespace, where Workflows are submitted.
    #[arg(long)]
    pub namespace: String,
    #[command(flatten)]
    pub signing: SigningFlags,
    #[command(flatten)]
    pub control_plane: ControlPlaneFlags,
    #[command(flatten)]
    pub trust: TrustFlags,
    #[command(flatten)]
    pub argo: ArgoFlags,
}

/// What a run extracts: the connector, its parameters and secrets, the descriptors, and how
/// the run is signed and also written (`extract`, `run`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SourceFlags {
    /// The connector (`postgres`, `mysql`, `sqlite`, `snowflake`, `tableau`); `run` without
    /// it extracts the bundled sample catalog.
    #[arg(long)]
    pub connector: Option<String>,
    /// A connector parameter as `name=value`; repeat for each. Checked against the descriptor.
    #[arg(long = "param", value_name = "NAME=VALUE", requires = "connector", value_parser = name_value)]
    pub params: Vec<(String, String)>,
    /// Folder with one file per declared secret, named after it (`password`).
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Read descriptors from this folder instead of the ones built in.
    #[arg(long, value_name = "DIR")]
    pub connectors: Option<PathBuf>,
    /// The agent's manifest-signing key (a file holding its seed, as `outpost keygen` writes
    /// it): the manifest is signed, and `outpost verify --key` checks runs against it.
    #[arg(long, env = "OUTPOST_MANIFEST_SIGNING_KEY", value_name = "FILE")]
    pub manifest_signing_key: Option<PathBuf>,
    #[command(flatten)]
    pub exports: ExportFlags,
}

/// `NAME=VALUE`, split at the first `=`.
pub fn name_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{raw}` is not NAME=VALUE"))
}

/// A run's ids, as its manifest records them (`extract`, `run`; required by [`RunFlags`]).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct IdFlags {
    /// The connection id (a DNS label).
    #[arg(long)]
    pub connection: Option<String>,
    /// The control plane's job id.
    #[arg(long)]
    pub job_id: Option<String>,
    /// The run id.
    #[arg(long)]
    pub run_id: Option<String>,
}

/// The run a connector pod's step or exit handler works on: its connector and every id.
// Clippy reads the three `required`s as one attribute repeated; they are three arguments.
#[allow(clippy::duplicated_attributes)]
#[derive(clap::Args, Debug, Clone)]
#[command(
    mut_arg("connection", required),
    mut_arg("job_id", required),
    mut_arg("run_id", required)
)]
pub struct RunFlags {
    /// The connector of the run.
    #[arg(long)]
    pub connector: String,
    #[command(flatten)]
    pub ids: IdFlags,
}

impl RunFlags {
    /// The run's identity, each id checked.
    pub fn identity(&self) -> Result<outpost_core::RunIdentity, Failure> {
        let [connection, job, run] = [&self.ids.connection, &self.ids.job_id, &self.ids.run_id]
            .map(|id| id.as_deref().unwrap_or_default());
        outpost_core::RunIdentity::new(&self.connector, connection, job, run)
            .map_err(|e| Failure::usage(e.to_string()))
    }
}

/// Makes a flag a shared group declares optional required where it is flattened
/// (`#[command(mut_arg("connector", required))]`).
pub fn required(arg: clap::Arg) -> clap::Arg {
    arg.required(true)
}

/// Which jobs an agent admits: signed for it, or (knowingly) unsigned.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SigningFlags {
    /// Accept only jobs signed with this Ed25519 public key (base64 of its 32 bytes), for
    /// --agent-id, unexpired, and whose nonce was never seen.
    #[arg(long, value_name = "BASE64", env = "OUTPOST_JOB_SIGNING_KEY")]
    pub job_signing_key: Option<String>,
    /// Admit unsigned jobs when no --job-signing-key is given (refused otherwise). Logged as a
    /// warning every time, and reported in heartbeats.
    #[arg(long)]
    pub insecure_unsigned_jobs: bool,
    /// This agent's id: the id in heartbeats, and the agent a signed job must be signed for.
    /// Default: the namespace (local mode: `local`).
    #[arg(long, env = "OUTPOST_AGENT_ID")]
    pub agent_id: Option<String>,
}

impl SigningFlags {
    /// The pinned key; an error when there is none and unsigned jobs are not allowed.
    pub fn key(&self) -> Result<Option<ed25519_dalek::VerifyingKey>, Failure> {
        let (text, insecure) = (self.job_signing_key.as_deref(), self.insecure_unsigned_jobs);
        let key = orchestrator::signing::pinned_key(text, insecure).map_err(Failure::config)?;
        if key.is_none() {
            tracing::warn!("{}", orchestrator::signing::INSECURE_UNSIGNED);
        }
        Ok(key)
    }

    /// The `insecure…` options heartbeats report, besides Argo's.
    pub fn insecure_options(&self, control_plane: &ControlPlaneFlags) -> Vec<String> {
        agent::heartbeat::insecure_options(
            self.job_signing_key.is_none() && self.insecure_unsigned_jobs,
            control_plane.insecure_plain_http,
        )
    }
}

/// Argo's workflow controller, which must run only Workflows that reference a
/// WorkflowTemplate (security review finding M6).
#[derive(clap::Args, Debug, Clone)]
pub struct ArgoFlags {
    /// The workflow controller's ConfigMap, whose `workflowRestrictions.templateReferencing`
    /// must be `Strict` or `Secure` (read before every tick; the heartbeat logs it).
    #[arg(long, value_name = "NAMESPACE/NAME", default_value_t = ControllerConfigMap::default())]
    pub argo_controller_config_map: ControllerConfigMap,
    /// Run even when Argo does not enforce that, or its ConfigMap cannot be read: a
    /// compromised orchestrator could then run pods of any image. Insecure; logged as a
    /// warning on every tick and heartbeat.
    #[arg(long)]
    pub insecure_allow_unrestricted_templates: bool,
}

/// How a catalog format names the run's objects (`outpost export`, and `--export`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CatalogFlags {
    /// DataHub's environment, as the DataHub source's `env` (default `PROD`).
    #[arg(long, value_name = "ENV")]
    datahub_env: Option<String>,
    /// DataHub's platform instance, as the DataHub source's `platform_instance`.
    #[arg(long, value_name = "INSTANCE")]
    datahub_platform_instance: Option<String>,
    /// OpenLineage's dataset namespace, as other producers name the server
    /// (`postgres://db.example.com:5432`); without it, `<platform>://<connection>`.
    #[arg(long, value_name = "NAMESPACE")]
    openlineage_namespace: Option<String>,
    /// For a BI site's OpenLineage column lineage: the namespace of the database server a
    /// platform's tables are on (`postgres=postgres://db.example.com:5432`); repeat per
    /// platform. Without it, `<platform>://<database>`.
    #[arg(long, value_name = "PLATFORM=NAMESPACE", value_parser = name_value)]
    openlineage_upstream_namespace: Vec<(String, String)>,
}

impl CatalogFlags {
    pub fn options(&self) -> catalog_export::Options {
        catalog_export::Options {
            env: self.datahub_env.clone(),
            platform_instance: self.datahub_platform_instance.clone(),
            namespace: self.openlineage_namespace.clone(),
            upstream_namespaces: self.openlineage_upstream_namespace.clone(),
        }
    }
}

/// The catalog formats the extract step also writes the run in, listed in its manifest.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ExportFlags {
    /// Also write the run in a catalog's format (`datahub`, `openlineage`), into `exports/`
    /// beside its streams, listed (and signed) in its manifest and delivered with it; repeat
    /// for both.
    #[arg(long = "export", value_name = "FORMAT", value_parser = |s: &str| s.parse::<catalog_export::Format>())]
    formats: Vec<catalog_export::Format>,
    #[command(flatten)]
    catalog: CatalogFlags,
}

impl ExportFlags {
    pub fn exports(&self) -> catalog_export::Exports {
        catalog_export::Exports {
            formats: self.formats.clone(),
            options: self.catalog.options(),
        }
    }
}
