//! The agent's in-cluster entrypoints: `orchestrate` (one tick), `heartbeat`, and `report`
//! (each connector Workflow's exit handler).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent::context::AgentContext;
use agent::report::{LogDestination, RunReport};
use connector_descriptor::TransferMode;
use outpost_core::ExitCode;

use crate::Failure;
use crate::flags::{ArgoFlags, BucketFlags, ControlPlaneFlags, SigningFlags, TrustFlags};

#[derive(clap::Args, Debug)]
pub struct OrchestrateArgs {
    /// Namespace Workflows are submitted in (the agent's own).
    #[arg(long)]
    namespace: String,
    /// Who claims jobs; default: this pod's name (`HOSTNAME`).
    #[arg(long, env = "HOSTNAME", default_value = "outpost-orchestrator")]
    claimant: String,
    /// Jobs handled at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// How long a claim keeps other ticks off a job, as a duration (`10m`).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// Furthest ahead a signed job's `notAfter` may lie, as a duration (`24h`). A job's
    /// nonce is remembered on its Workflow, so this must not exceed how long finished
    /// Workflows are kept (the rendered template passes the shorter TTL).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    max_job_lifetime: Duration,
    /// Admit jobs against the descriptors in this folder instead of the ones built in.
    #[arg(long, value_name = "DIR")]
    connectors: Option<PathBuf>,
    #[command(flatten)]
    signing: SigningFlags,
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
    #[command(flatten)]
    trust: TrustFlags,
    #[command(flatten)]
    argo: ArgoFlags,
}

#[derive(clap::Args, Debug)]
pub struct HeartbeatArgs {
    /// The agent's namespace.
    #[arg(long)]
    namespace: String,
    /// The orchestrator's signing flags: the heartbeat reports whether it admits unsigned
    /// jobs, and the agent id (default: the namespace).
    #[command(flatten)]
    signing: SigningFlags,
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
    #[command(flatten)]
    trust: TrustFlags,
    #[command(flatten)]
    argo: ArgoFlags,
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
    transfer_mode: Option<TransferMode>,
    #[command(flatten)]
    bucket: BucketFlags,
    #[command(flatten)]
    control_plane: ControlPlaneFlags,
    #[command(flatten)]
    trust: TrustFlags,
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

impl From<agent::context::NoKubernetes> for Failure {
    fn from(error: agent::context::NoKubernetes) -> Self {
        Failure::new(error.exit_code(), error)
    }
}

pub fn orchestrate(args: OrchestrateArgs) -> Result<ExitCode, Failure> {
    // A descriptor folder the agent cannot use is its configuration, not the job's.
    let descriptors = connector_descriptor::load::from_dir_or_builtin(args.connectors.as_deref())
        .map_err(|e| Failure::config(e.to_string()))?;
    let signing_key = args.signing.key()?;
    let client = args.control_plane.required(&args.trust)?;
    let mut config = agent::tick::TickConfig::new(&args.claimant, Arc::new(descriptors));
    config.concurrency = args.concurrency;
    config.lease = args.lease;
    config.signing_key = signing_key;
    config.agent_id = args.signing.agent_id.clone();
    config.max_job_lifetime = args.max_job_lifetime;
    config.argo_config_map = args.argo.argo_controller_config_map.clone();
    config.insecure_allow_unrestricted_templates = args.argo.insecure_allow_unrestricted_templates;
    crate::runtime()?.block_on(async {
        let context = AgentContext::connect(client, Some(&args.namespace)).await?;
        let summary =
            agent::tick::tick(&context.control_plane, &context.namespace, &config).await?;
        tracing::info!(
            submitted = summary.submitted,
            already_submitted = summary.already_submitted,
            rejected = summary.rejected,
            skipped = summary.skipped,
            failed = summary.failures.len(),
            "tick done"
        );
        for problem in &summary.failures {
            tracing::error!("{problem}");
        }
        if summary.failures.is_empty() {
            Ok(ExitCode::Success)
        } else {
            Err(Failure::new(
                ExitCode::Temporary,
                format!("{} jobs left for the next tick", summary.failures.len()),
            ))
        }
    })
}

pub fn heartbeat(args: HeartbeatArgs) -> Result<ExitCode, Failure> {
    let client = args.control_plane.required(&args.trust)?;
    let config = agent::heartbeat::HeartbeatConfig {
        agent_id: args
            .signing
            .agent_id
            .clone()
            .unwrap_or_else(|| args.namespace.clone()),
        argo_config_map: args.argo.argo_controller_config_map.clone(),
        insecure_allow_unrestricted_templates: args.argo.insecure_allow_unrestricted_templates,
        insecure_options: agent::heartbeat::insecure_options(
            args.signing.job_signing_key.is_none() && args.signing.insecure_unsigned_jobs,
            args.control_plane.insecure_plain_http,
        ),
    };
    crate::runtime()?.block_on(async {
        let context = AgentContext::connect(client, Some(&args.namespace)).await?;
        let observed =
            agent::heartbeat::send(&context.control_plane, &context.namespace, &config).await?;
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
        Ok(ExitCode::Success)
    })
}

pub fn report(args: ReportArgs) -> Result<ExitCode, Failure> {
    let client = args.control_plane.required(&args.trust)?;
    // Bucket relay: the run's logs stay in the customer's bucket, beside its metadata.
    let destination = match (&args.bucket.to, args.transfer_mode) {
        (Some(to), Some(TransferMode::BucketRelay)) => {
            let url = delivery::bucket::BucketUrl::parse(to)?;
            LogDestination::Bucket(delivery::bucket::Bucket::open(
                &url,
                &args.bucket.store(&args.trust),
            )?)
        }
        _ => LogDestination::ControlPlane,
    };
    let run = RunReport {
        connection: args.connection.clone(),
        job_id: args.job_id.clone(),
        run_id: args.run_id.clone(),
        workflow: args.workflow.clone(),
        argo_status: format!("{:?}", args.status),
    };
    crate::runtime()?.block_on(async {
        let context = AgentContext::connect(client, args.namespace.as_deref()).await?;
        let reported = agent::report::report(
            &context.control_plane,
            &context.namespace,
            &run,
            &destination,
        )
        .await?;
        tracing::info!(
            connector = %args.connector,
            connection = %args.connection,
            state = reported.state.as_str(),
            log_bytes = reported.log_bytes,
            logs = %reported.logs_at,
            "reported"
        );
        Ok(ExitCode::Success)
    })
}
