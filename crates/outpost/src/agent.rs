//! The agent's in-cluster entrypoints: `orchestrate` (one tick), `heartbeat`, and `report`
//! (each connector Workflow's exit handler).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent::context::runtime;
use agent::entrypoints;
use agent::report::RunReport;
use connector_descriptor::TransferMode;
use outpost_core::ExitCode;

use crate::flags::{AgentFlags, BucketFlags, ControlPlaneFlags, RunFlags, TrustFlags};
use outpost_core::Failure;

#[derive(clap::Args, Debug)]
pub struct OrchestrateArgs {
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
    agent: AgentFlags,
}

#[derive(clap::Args, Debug)]
pub struct HeartbeatArgs {
    /// The orchestrator's flags: the heartbeat reports whether it admits unsigned jobs, and
    /// the agent id (default: the namespace).
    #[command(flatten)]
    agent: AgentFlags,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    run: RunFlags,
    /// The Workflow's name (`{{workflow.name}}`).
    #[arg(long)]
    workflow: String,
    /// Argo's `{{workflow.status}}` in an exit handler (the entry node's phase).
    #[arg(long, value_parser = ["Succeeded", "Failed", "Error"])]
    status: String,
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

pub fn orchestrate(args: OrchestrateArgs) -> Result<ExitCode, Failure> {
    // A descriptor folder the agent cannot use is its configuration, not the job's.
    let descriptors = connector_descriptor::load::from_dir_or_builtin(args.connectors.as_deref())
        .map_err(|e| Failure::config(e.to_string()))?;
    let agent = &args.agent;
    let client = agent.control_plane.required(&agent.trust)?;
    let mut config = agent::tick::TickConfig::new(&args.claimant, Arc::new(descriptors));
    config.concurrency = args.concurrency;
    config.lease = args.lease;
    config.signing_key = agent.signing.key()?;
    config.agent_id = agent.signing.agent_id.clone();
    config.max_job_lifetime = args.max_job_lifetime;
    config.argo_config_map = agent.argo.argo_controller_config_map.clone();
    config.insecure_allow_unrestricted_templates = agent.argo.insecure_allow_unrestricted_templates;
    runtime()?.block_on(entrypoints::orchestrate(client, &agent.namespace, &config))?;
    Ok(ExitCode::Success)
}

pub fn heartbeat(HeartbeatArgs { agent }: HeartbeatArgs) -> Result<ExitCode, Failure> {
    let client = agent.control_plane.required(&agent.trust)?;
    let config = agent::heartbeat::HeartbeatConfig {
        agent_id: (agent.signing.agent_id.clone()).unwrap_or_else(|| agent.namespace.clone()),
        argo_config_map: agent.argo.argo_controller_config_map.clone(),
        insecure_allow_unrestricted_templates: agent.argo.insecure_allow_unrestricted_templates,
        insecure_options: agent.signing.insecure_options(&agent.control_plane),
    };
    runtime()?.block_on(entrypoints::heartbeat(client, &agent.namespace, &config))?;
    Ok(ExitCode::Success)
}

pub fn report(args: ReportArgs) -> Result<ExitCode, Failure> {
    let client = args.control_plane.required(&args.trust)?;
    let store = args.bucket.store.settings(&args.trust);
    let logs = entrypoints::log_destination(args.bucket.to.as_deref(), args.transfer_mode, &store)?;
    let run = RunReport {
        run: args.run.identity()?,
        workflow: args.workflow,
        argo_status: args.status,
    };
    let namespace = args.namespace.as_deref();
    runtime()?.block_on(entrypoints::report(client, namespace, &run, &logs))?;
    Ok(ExitCode::Success)
}
