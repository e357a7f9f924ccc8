//! The agent's own entrypoints: `orchestrate` (one tick), `heartbeat`, `report` (the exit
//! handler), and `control-plane` (the reference server and its operator commands).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agent::argo_config::ControllerConfigMap;
use agent::kubernetes::Namespace;
use agent::tick::{TickConfig, TickError};
use base64::Engine as _;
use connector_descriptor::ValidatedDescriptor;
use control_plane::{ClientConfig, ControlPlaneClient, ControlPlaneError};
use delivery::exit;

/// How every agent entrypoint reaches the control plane.
#[derive(clap::Args, Debug, Clone)]
pub struct ControlPlaneFlags {
    /// Base URL of the control plane.
    #[arg(long, value_name = "URL", env = "OUTPOST_CONTROL_PLANE_URL")]
    pub control_plane_url: String,
    /// File holding the bearer token; re-read on every request, so rotation needs no
    /// restart.
    #[arg(long, value_name = "FILE", env = "OUTPOST_TOKEN_FILE")]
    pub token_file: PathBuf,
    /// Extra CA bundle (PEM) trusted beside the system roots (also `SSL_CERT_FILE`).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Allow a plain-http control-plane URL that is not loopback: the bearer token then
    /// crosses the network in clear text. Logged as a warning on every run.
    #[arg(long)]
    pub insecure_plain_http: bool,
}

/// The control plane's base URL: https, or http to loopback only (the token would otherwise
/// cross a network in clear text), unless `insecure_plain_http` says otherwise, loudly.
pub fn control_plane_base(
    url: &str,
    insecure_plain_http: bool,
) -> Result<url::Url, ControlPlaneError> {
    let base = url::Url::parse(url)
        .map_err(|e| ControlPlaneError::Config(format!("control-plane URL `{url}`: {e}")))?;
    let loopback = match base.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match base.scheme() {
        "https" => Ok(base),
        "http" if loopback => Ok(base),
        "http" if insecure_plain_http => {
            tracing::warn!(
                url = %base,
                "INSECURE: the control plane is reached over plain http (--insecure-plain-http): the agent's token crosses the network in clear text"
            );
            Ok(base)
        }
        "http" => Err(ControlPlaneError::Config(format!(
            "control-plane URL `{url}` is plain http: the agent's token would cross the network in clear text; use https:// (or, knowingly, --insecure-plain-http)"
        ))),
        other => Err(ControlPlaneError::Config(format!(
            "control-plane URL `{url}`: scheme `{other}` is not https"
        ))),
    }
}

/// Job signing is required: without a key, only `--insecure-unsigned-jobs` lets jobs run,
/// and then every tick says so.
pub fn require_job_signing(key: Option<&str>, insecure_unsigned_jobs: bool) -> Result<(), String> {
    match (key, insecure_unsigned_jobs) {
        (Some(_), _) => Ok(()),
        (None, true) => {
            tracing::warn!(
                "INSECURE: jobs are admitted without a signature (--insecure-unsigned-jobs): whoever controls the control plane, or its token, chooses what runs within the descriptors"
            );
            Ok(())
        }
        (None, false) => Err(
            "job signing is required: pass --job-signing-key (agent option controlPlane.jobSigningKey: the control plane's Ed25519 public key), or, knowingly, --insecure-unsigned-jobs (controlPlane.insecureUnsignedJobs: true)".to_owned(),
        ),
    }
}

impl ControlPlaneFlags {
    /// The client these flags describe.
    pub fn client(&self) -> Result<ControlPlaneClient, ControlPlaneError> {
        let base = control_plane_base(&self.control_plane_url, self.insecure_plain_http)?;
        let mut config = ClientConfig::new(base, &self.token_file);
        config.ca_bundle = self.ca_bundle.clone();
        ControlPlaneClient::new(config)
    }
}

#[derive(clap::Args, Debug)]
pub struct OrchestrateArgs {
    /// Namespace Workflows are submitted in (the agent's own).
    #[arg(long)]
    namespace: String,
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
    /// Who claims jobs; default: this pod's name (`HOSTNAME`).
    #[arg(long, env = "HOSTNAME", default_value = "outpost-orchestrator")]
    claimant: String,
    /// Jobs handled at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// How long a claim keeps other ticks off a job, as a duration (`10m`).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// Accept only jobs signed with this Ed25519 public key (base64 of its 32 bytes), for
    /// --agent-id, unexpired, and whose nonce is on no Workflow of another job.
    #[arg(long, value_name = "BASE64", env = "OUTPOST_JOB_SIGNING_KEY")]
    job_signing_key: Option<String>,
    /// Admit unsigned jobs when no --job-signing-key is given (refused otherwise). Logged as a
    /// warning on every tick.
    #[arg(long)]
    insecure_unsigned_jobs: bool,
    /// This agent's id: a signed job must be signed for it. Default: the namespace (as
    /// `outpost heartbeat` reports it).
    #[arg(long, env = "OUTPOST_AGENT_ID")]
    agent_id: Option<String>,
    /// Furthest ahead a signed job's `notAfter` may lie, as a duration (`24h`). A job's
    /// nonce is remembered on its Workflow, so this must not exceed how long finished
    /// Workflows are kept (the rendered template passes the shorter TTL).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    max_job_lifetime: Duration,
    /// Admit jobs against the descriptors in this folder instead of the ones built in.
    #[arg(long, value_name = "DIR")]
    connectors: Option<PathBuf>,
    #[command(flatten)]
    argo: ArgoFlags,
}

/// Argo's workflow controller, which must run only Workflows that reference a
/// WorkflowTemplate (security review finding M6).
#[derive(clap::Args, Debug, Clone)]
pub struct ArgoFlags {
    /// The workflow controller's ConfigMap, whose `workflowRestrictions.templateReferencing`
    /// must be `Strict` or `Secure` (read before every tick; the heartbeat logs it).
    #[arg(long, value_name = "NAMESPACE/NAME", default_value_t = ControllerConfigMap::default())]
    argo_controller_config_map: ControllerConfigMap,
    /// Run even when Argo does not enforce that, or its ConfigMap cannot be read: a
    /// compromised orchestrator could then run pods of any image. Insecure; logged as a
    /// warning on every tick and heartbeat.
    #[arg(long)]
    insecure_allow_unrestricted_templates: bool,
}

#[derive(clap::Args, Debug)]
pub struct HeartbeatArgs {
    /// The agent's namespace.
    #[arg(long)]
    namespace: String,
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
    /// The agent's id in heartbeats; default: the namespace.
    #[arg(long, env = "OUTPOST_AGENT_ID")]
    agent_id: Option<String>,
    #[command(flatten)]
    argo: ArgoFlags,
    /// The orchestrator admits unsigned jobs (its own flag): reported in every heartbeat, so
    /// the control plane's operators see it.
    #[arg(long)]
    insecure_unsigned_jobs: bool,
}

/// The `insecure…` options a heartbeat reports (`insecureAllowUnrestrictedTemplates` is
/// added by the heartbeat itself).
pub fn insecure_options(unsigned_jobs: bool, plain_http: bool) -> Vec<String> {
    [
        (unsigned_jobs, "insecureUnsignedJobs"),
        (plain_http, "insecurePlainHttp"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name.to_owned())
    .collect()
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The connector of the run.
    #[arg(long)]
    connector: String,
    /// The connection of the run.
    #[arg(long)]
    connection: String,
    /// The control plane's job id.
    #[arg(long)]
    job_id: String,
    /// The run id.
    #[arg(long)]
    run_id: String,
    /// The Workflow's name (`{{workflow.name}}`).
    #[arg(long)]
    workflow: String,
    /// Argo's `{{workflow.status}}`: `Succeeded`, `Failed` or `Error`.
    #[arg(long, value_enum)]
    status: WorkflowStatus,
    /// Namespace of the Workflow; default: the pod's own.
    #[arg(long)]
    namespace: Option<String>,
    /// The run's transfer mode (`bucket-relay` or `direct-ingestion`): with bucket relay and
    /// --to, the logs go to the relay bucket (`<prefix>/_logs/<connection>/<job>/<run>/`),
    /// otherwise to the control plane.
    #[arg(long, value_enum)]
    transfer_mode: Option<connector_descriptor::TransferMode>,
    /// The relay bucket (`s3://bucket/prefix`, `az://…`, `gs://…`, `file:///…`).
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// Custom endpoint of the relay bucket.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Region of the relay bucket.
    #[arg(long)]
    region: Option<String>,
    /// Azure storage account of the relay bucket.
    #[arg(long)]
    azure_account: Option<String>,
    /// S3 SSE-KMS key for the log object.
    #[arg(long, value_name = "KEY_ID")]
    sse_kms_key_id: Option<String>,
    /// Folder of the relay bucket's static credential files.
    #[arg(long, value_name = "DIR")]
    credentials_dir: Option<PathBuf>,
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
}

/// The values Argo gives `{{workflow.status}}` in an exit handler (the entry node's phase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum WorkflowStatus {
    #[value(name = "Succeeded")]
    Succeeded,
    #[value(name = "Failed")]
    Failed,
    #[value(name = "Error")]
    Error,
}

impl WorkflowStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Error => "Error",
        }
    }
}

impl ReportArgs {
    /// Where the run's logs go.
    fn log_destination(&self) -> Result<agent::report::LogDestination, delivery::DeliveryError> {
        match (&self.to, self.transfer_mode) {
            (Some(to), Some(connector_descriptor::TransferMode::BucketRelay)) => {
                let settings = delivery::bucket::StoreSettings {
                    endpoint: self.endpoint.clone(),
                    region: self.region.clone(),
                    azure_account: self.azure_account.clone(),
                    credentials_dir: self.credentials_dir.clone(),
                    sse_kms_key_id: self.sse_kms_key_id.clone(),
                    ca_bundle: self.control_plane.ca_bundle.clone(),
                    ..Default::default()
                };
                let url = delivery::bucket::BucketUrl::parse(to)?;
                Ok(agent::report::LogDestination::Bucket(
                    delivery::bucket::Bucket::open(&url, &settings)?,
                ))
            }
            _ => Ok(agent::report::LogDestination::ControlPlane),
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum ControlPlaneCommand {
    /// Serve the reference control plane (openapi.yaml) with state in a SQLite file.
    Serve(ServeArgs),
    /// Queue a job (JSON file) on a reference control plane.
    Enqueue {
        /// Base URL of the control plane.
        #[arg(long, value_name = "URL")]
        url: String,
        /// File holding the admin token.
        #[arg(long, value_name = "FILE")]
        admin_token_file: PathBuf,
        /// Whose queue.
        #[arg(long, default_value = "default")]
        agent_id: String,
        /// The job, as JSON.
        job: PathBuf,
    },
    /// Print the API's OpenAPI 3.1 document.
    Openapi,
    /// Make a job-signing key pair: the private seed goes to a file (mode 0600) for
    /// `serve --signing-key`, the public key is printed for the agent option
    /// `controlPlane.jobSigningKey`.
    Keygen {
        /// Where to write the private key (base64 of its 32-byte seed).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "outpost-control-plane.db")]
    database: PathBuf,
    /// File of `<agent-id> <token>` lines; re-read on every request.
    #[arg(long, value_name = "FILE")]
    tokens: PathBuf,
    /// File holding the operator's token (for /admin/v1).
    #[arg(long, value_name = "FILE")]
    admin_token_file: PathBuf,
    /// Sign queued jobs with this Ed25519 private key (base64 of its 32-byte seed, in a file).
    /// Each job is signed for its queue's agent (`agentId`), with a fresh `nonce` and a
    /// `notAfter`.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// With --signing-key: how long a signed job stays valid, unless the queued job gives its
    /// own `notAfter`. Agents accept at most 24 hours by default.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    job_lifetime: Duration,
    /// Bucket that direct-ingestion URLs are signed for (`s3://bucket/prefix` …).
    #[arg(long, value_name = "URL")]
    ingest_bucket: Option<String>,
    /// Custom endpoint of the ingestion bucket.
    #[arg(long, value_name = "URL")]
    ingest_endpoint: Option<String>,
    /// Region of the ingestion bucket.
    #[arg(long)]
    ingest_region: Option<String>,
    /// Folder of credential files for the ingestion bucket.
    #[arg(long, value_name = "DIR")]
    ingest_credentials_dir: Option<PathBuf>,
    /// Lifetime of signed upload URLs.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    url_lifetime: Duration,
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    crate::delivery_runtime()
}

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("error: {message} (exit code {code})");
    ExitCode::from(code)
}

/// The descriptors jobs are admitted against.
pub fn descriptors(dir: Option<&Path>) -> anyhow::Result<Vec<ValidatedDescriptor>> {
    match dir {
        Some(dir) => Ok(workflow_compiler::files::read_connectors(dir)?),
        None => crate::extract::builtin_descriptors(),
    }
}

/// Parses a pinned job-signing public key (base64 of 32 bytes).
pub fn signing_key(text: Option<&str>) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("job-signing key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "job-signing key must be 32 bytes (an Ed25519 public key)".to_owned())?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| format!("job-signing key: {e}"))
}

async fn kube_client() -> Result<kube::Client, String> {
    kube::Client::try_default()
        .await
        .map_err(|e| format!("no Kubernetes configuration (in-cluster or kubeconfig): {e}"))
}

pub fn orchestrate(args: OrchestrateArgs) -> ExitCode {
    delivery::install_crypto_provider();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let descriptors = match descriptors(args.connectors.as_deref()) {
        Ok(d) => Arc::new(d),
        Err(e) => return fail(format!("{e:#}"), exit::CONFIG),
    };
    if let Err(e) =
        require_job_signing(args.job_signing_key.as_deref(), args.insecure_unsigned_jobs)
    {
        return fail(e, exit::CONFIG);
    }
    let signing_key = match signing_key(args.job_signing_key.as_deref()) {
        Ok(key) => key,
        Err(e) => return fail(e, exit::CONFIG),
    };
    let client = match args.control_plane.client() {
        Ok(client) => client,
        Err(e) => return fail(&e, e.exit_code()),
    };
    runtime.block_on(async {
        let kube = match kube_client().await {
            Ok(kube) => kube,
            Err(e) => return fail(e, exit::CONFIG),
        };
        let namespace = Namespace::new(kube, &args.namespace);
        let mut config = TickConfig::new(&args.claimant, descriptors);
        config.concurrency = args.concurrency;
        config.lease = args.lease;
        config.signing_key = signing_key;
        config.agent_id = args.agent_id.clone();
        config.max_job_lifetime = args.max_job_lifetime;
        config.argo_config_map = args.argo.argo_controller_config_map.clone();
        config.insecure_allow_unrestricted_templates =
            args.argo.insecure_allow_unrestricted_templates;
        match agent::tick::tick(&client, &namespace, &config).await {
            Ok(summary) => {
                tracing::info!(
                    submitted = summary.submitted,
                    already_submitted = summary.already_submitted,
                    rejected = summary.rejected,
                    skipped = summary.skipped,
                    failed = summary.failures.len(),
                    "tick done"
                );
                if summary.failures.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    for problem in &summary.failures {
                        tracing::error!("{problem}");
                    }
                    fail(
                        format!("{} jobs left for the next tick", summary.failures.len()),
                        exit::TEMPORARY,
                    )
                }
            }
            Err(TickError::ControlPlane(e)) => fail(&e, e.exit_code()),
            Err(e @ TickError::Kubernetes { .. }) => fail(e, exit::TEMPORARY),
            // Argo would run inline templates (M6): fixed by configuration, not by retrying.
            Err(e @ TickError::UnrestrictedTemplates(_)) => fail(e, exit::CONFIG),
        }
    })
}

pub fn heartbeat(args: HeartbeatArgs) -> ExitCode {
    delivery::install_crypto_provider();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let client = match args.control_plane.client() {
        Ok(client) => client,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let agent_id = args
        .agent_id
        .clone()
        .unwrap_or_else(|| args.namespace.clone());
    runtime.block_on(async {
        let kube = match kube_client().await {
            Ok(kube) => kube,
            Err(e) => return fail(e, exit::CONFIG),
        };
        let namespace = Namespace::new(kube, &args.namespace);
        let config = agent::heartbeat::HeartbeatConfig {
            agent_id: agent_id.clone(),
            argo_config_map: args.argo.argo_controller_config_map.clone(),
            insecure_allow_unrestricted_templates: args.argo.insecure_allow_unrestricted_templates,
            insecure_options: insecure_options(
                args.insecure_unsigned_jobs,
                args.control_plane.insecure_plain_http,
            ),
        };
        match agent::heartbeat::send(&client, &namespace, &config).await {
            Ok(observed) => {
                let beat = &observed.heartbeat;
                // Whether Argo restricts Workflows to WorkflowTemplate references is in the
                // heartbeat sent, and logged here too.
                tracing::info!(
                    kubernetes = beat.kubernetes_reachable,
                    argo = beat.argo_reachable,
                    running = ?beat.running_workflows,
                    argo_restricts_templates = observed.argo_restricts_templates(),
                    "heartbeat sent"
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e, e.exit_code()),
        }
    })
}

pub fn report(args: ReportArgs) -> ExitCode {
    delivery::install_crypto_provider();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let client = match args.control_plane.client() {
        Ok(client) => client,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let destination = match args.log_destination() {
        Ok(destination) => destination,
        Err(e) => return fail(&e, e.exit_code()),
    };
    runtime.block_on(async {
        let kube = match kube_client().await {
            Ok(kube) => kube,
            Err(e) => return fail(e, exit::CONFIG),
        };
        let namespace_name = args
            .namespace
            .clone()
            .unwrap_or_else(|| kube.default_namespace().to_owned());
        let namespace = Namespace::new(kube, &namespace_name);
        let run = agent::report::RunReport {
            connection: args.connection.clone(),
            job_id: args.job_id.clone(),
            run_id: args.run_id.clone(),
            workflow: args.workflow.clone(),
            argo_status: args.status.as_str().to_owned(),
        };
        match agent::report::report(&client, &namespace, &run, &destination).await {
            Ok(reported) => {
                tracing::info!(
                    connector = %args.connector,
                    connection = %args.connection,
                    state = reported.state.as_str(),
                    log_bytes = reported.log_bytes,
                    logs = %reported.logs_at,
                    "reported"
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e, e.exit_code()),
        }
    })
}

pub fn control_plane(command: ControlPlaneCommand) -> ExitCode {
    delivery::install_crypto_provider();
    match command {
        ControlPlaneCommand::Openapi => {
            print!("{}", control_plane::api::OPENAPI_YAML);
            ExitCode::SUCCESS
        }
        ControlPlaneCommand::Serve(args) => serve(args),
        ControlPlaneCommand::Keygen { out } => keygen(&out),
        ControlPlaneCommand::Enqueue {
            url,
            admin_token_file,
            agent_id,
            job,
        } => enqueue(&url, &admin_token_file, &agent_id, &job),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let signing_key = match &args.signing_key {
        None => None,
        Some(path) => match read_signing_key(path) {
            Ok(key) => Some(control_plane::server::JobSigner {
                key,
                lifetime: args.job_lifetime,
            }),
            Err(e) => return fail(e, exit::CONFIG),
        },
    };
    let ingest_bucket = match &args.ingest_bucket {
        None => None,
        Some(url) => {
            let settings = delivery::bucket::StoreSettings {
                endpoint: args.ingest_endpoint.clone(),
                region: args.ingest_region.clone(),
                credentials_dir: args.ingest_credentials_dir.clone(),
                ..Default::default()
            };
            match delivery::bucket::BucketUrl::parse(url)
                .and_then(|u| delivery::bucket::Bucket::open(&u, &settings))
            {
                Ok(bucket) => Some(Arc::new(bucket)),
                Err(e) => return fail(&e, e.exit_code()),
            }
        }
    };
    let store = match control_plane::store::Store::open(&args.database) {
        Ok(store) => store,
        Err(e) => return fail(format!("{}: {e}", args.database.display()), exit::CONFIG),
    };
    let config = control_plane::server::ServerConfig {
        tokens_file: args.tokens.clone(),
        admin_token_file: args.admin_token_file.clone(),
        signing_key,
        ingest_bucket,
        url_lifetime: args.url_lifetime,
        limits: control_plane::server::Limits::default(),
    };
    // A broken tokens file (a comment read as a token, a short token) stops the server here,
    // naming the file and the line.
    if let Err(e) = config.check_tokens() {
        return fail(e, exit::CONFIG);
    }
    let limits = config.limits.clone();
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(&args.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                return fail(
                    format!("cannot listen on {}: {e}", args.listen),
                    exit::CONFIG,
                );
            }
        };
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| args.listen.clone());
        tracing::info!(%address, database = %args.database.display(), "control plane serving");
        println!("listening on http://{address}");
        let router = control_plane::server::router(store, config);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match control_plane::server::serve(listener, router, &limits, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("server stopped: {e}"), exit::TEMPORARY),
        }
    })
}

fn keygen(out: &Path) -> ExitCode {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let seed: [u8; 32] = rand::random();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let engine = base64::engine::general_purpose::STANDARD;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .and_then(|mut file| writeln!(file, "{}", engine.encode(seed)));
    if let Err(e) = written {
        return fail(format!("{}: {e}", out.display()), exit::CONFIG);
    }
    println!("{}", engine.encode(key.verifying_key().to_bytes()));
    ExitCode::SUCCESS
}

fn read_signing_key(path: &Path) -> Result<ed25519_dalek::SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("{}: not base64: {e}", path.display()))?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("{}: an Ed25519 seed is 32 bytes", path.display()))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn enqueue(url: &str, admin_token_file: &Path, agent_id: &str, job: &Path) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result: Result<String, String> = runtime.block_on(async {
        let job: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(job).map_err(|e| format!("{}: {e}", job.display()))?,
        )
        .map_err(|e| format!("{}: line {}: {e}", job.display(), e.line()))?;
        let token =
            control_plane::client::read_token(admin_token_file).map_err(|e| e.to_string())?;
        let base = url::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
        let endpoint = base
            .join("admin/v1/jobs")
            .map_err(|e| format!("`{url}`: {e}"))?;
        let http = delivery::direct::http_client(None).map_err(|e| e.to_string())?;
        let response = http
            .post(endpoint)
            .bearer_auth(token)
            .json(&serde_json::json!({ "agentId": agent_id, "job": job }))
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("HTTP {status}: {text}"))
        }
    });
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e, exit::DATA),
    }
}
