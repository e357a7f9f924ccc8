//! The agent's in-cluster entrypoints, one function each: what `outpost orchestrate`,
//! `heartbeat` and `report` call once their flags are parsed. Each connects the
//! [`AgentContext`] (control plane, Kubernetes), does its work, logs what it did, and
//! answers one error type that knows its exit code.

use connector_descriptor::TransferMode;
use control_plane::{ControlPlaneClient, ControlPlaneError};
use delivery::DeliveryError;
use delivery::bucket::{Bucket, BucketUrl, StoreSettings};
use outpost_core::ExitCode;

use crate::context::{AgentContext, NoKubernetes};
use crate::heartbeat::HeartbeatConfig;
use crate::report::{LogDestination, ReportError, Reported, RunReport};
use crate::tick::{TickConfig, TickError, TickSummary};

/// Why an entrypoint failed; each cause knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum EntrypointError {
    /// The Kubernetes API cannot be configured.
    #[error(transparent)]
    NoKubernetes(#[from] NoKubernetes),
    /// The tick could not start.
    #[error(transparent)]
    Tick(#[from] TickError),
    /// The report could not be sent.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The control plane did not answer as it should.
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
    /// The relay bucket for a run's logs cannot be used.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// Some jobs failed on the way (each logged) and are left for a later tick or poll:
    /// temporary (75), so the step is retried and the problem seen.
    #[error("{0} jobs left for the next tick or poll")]
    JobsLeft(usize),
}

impl EntrypointError {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::NoKubernetes(e) => e.exit_code(),
            Self::Tick(e) => e.exit_code(),
            Self::Report(e) => e.exit_code(),
            Self::ControlPlane(e) => e.exit_code(),
            Self::Delivery(e) => e.exit_code(),
            Self::JobsLeft(_) => ExitCode::Temporary,
        }
    }
}

outpost_core::exit_coded!(EntrypointError);

impl TickSummary {
    /// Logs each job left on the way; [`EntrypointError::JobsLeft`] when there was one.
    pub fn check_left(self) -> Result<Self, EntrypointError> {
        for problem in &self.failures {
            tracing::error!("{problem}");
        }
        match self.failures.len() {
            0 => Ok(self),
            left => Err(EntrypointError::JobsLeft(left)),
        }
    }
}

/// `outpost orchestrate`: one tick in `namespace`.
pub async fn orchestrate(
    control_plane: ControlPlaneClient,
    namespace: &str,
    config: &TickConfig,
) -> Result<TickSummary, EntrypointError> {
    let context = AgentContext::connect(control_plane, Some(namespace)).await?;
    let summary = crate::tick::tick(&context.control_plane, &context.namespace, config).await?;
    tracing::info!(
        submitted = summary.submitted,
        already_submitted = summary.already_submitted,
        rejected = summary.rejected,
        skipped = summary.skipped,
        failed = summary.failures.len(),
        "tick done"
    );
    summary.check_left()
}

/// `outpost heartbeat`: one heartbeat for the agent in `namespace`.
pub async fn heartbeat(
    control_plane: ControlPlaneClient,
    namespace: &str,
    config: &HeartbeatConfig,
) -> Result<(), EntrypointError> {
    let context = AgentContext::connect(control_plane, Some(namespace)).await?;
    let observed =
        crate::heartbeat::send(&context.control_plane, &context.namespace, config).await?;
    let beat = &observed.heartbeat;
    // Whether Argo restricts Workflows to WorkflowTemplate references is in the heartbeat
    // sent, and logged here too.
    tracing::info!(
        kubernetes = beat.kubernetes_reachable,
        argo = beat.argo_reachable,
        running = ?beat.running_workflows,
        argo_restricts_templates = observed.argo_restricts_templates(),
        "heartbeat sent"
    );
    Ok(())
}

/// Where a finished run's logs go: the relay bucket `to` for a bucket-relay run (the run's
/// logs stay in the customer's bucket, beside its metadata), the control plane otherwise.
pub fn log_destination(
    to: Option<&str>,
    mode: Option<TransferMode>,
    store: &StoreSettings,
) -> Result<LogDestination, EntrypointError> {
    Ok(match (to, mode) {
        (Some(to), Some(TransferMode::BucketRelay)) => {
            LogDestination::Bucket(Bucket::open(&BucketUrl::parse(to)?, store)?)
        }
        _ => LogDestination::ControlPlane,
    })
}

/// `outpost report`: a run's final status and logs (each connector Workflow's exit handler);
/// `namespace` defaults to the pod's own.
pub async fn report(
    control_plane: ControlPlaneClient,
    namespace: Option<&str>,
    run: &RunReport,
    logs: &LogDestination,
) -> Result<Reported, EntrypointError> {
    let context = AgentContext::connect(control_plane, namespace).await?;
    let reported =
        crate::report::report(&context.control_plane, &context.namespace, run, logs).await?;
    tracing::info!(
        connector = %run.run.connector,
        connection = run.run.connection.as_deref().unwrap_or_default(),
        state = reported.state.as_str(),
        log_bytes = reported.log_bytes,
        logs = %reported.logs_at,
        "reported"
    );
    Ok(reported)
}
