//! The heartbeat: the agent is alive, what it can reach, what it runs, and when the
//! orchestrator last polled successfully (the newest succeeded orchestrator Workflow).

use std::time::SystemTime;

use control_plane::api::{Heartbeat, rfc3339};
use control_plane::{ControlPlaneClient, ControlPlaneError};
use serde_json::Value;

use crate::kubernetes::Namespace;

/// Label selector of the agent's running connector Workflows.
pub const RUNNING: &str =
    "app.kubernetes.io/managed-by=outpost,workflows.argoproj.io/phase=Running";
/// Label selector of the orchestrator's succeeded Workflows.
pub const SUCCEEDED_POLLS: &str =
    "app.kubernetes.io/component=orchestrator,workflows.argoproj.io/phase=Succeeded";

/// What the agent sees of its cluster now.
pub async fn observe(namespace: &Namespace, agent_id: &str) -> Heartbeat {
    let kubernetes_reachable = namespace.client().apiserver_version().await.is_ok();
    let running = namespace.workflows_labelled(RUNNING).await;
    let argo_reachable = running.is_ok();
    let running_workflows = running
        .ok()
        .map(|list| u32::try_from(list.len()).unwrap_or(u32::MAX));
    let last_successful_poll = namespace
        .workflows_labelled(SUCCEEDED_POLLS)
        .await
        .ok()
        .and_then(|list| {
            list.iter()
                .filter_map(|w| w.pointer("/status/finishedAt").and_then(Value::as_str))
                .max()
                .map(str::to_owned)
        });
    Heartbeat {
        agent_id: agent_id.to_owned(),
        version: crate::version(),
        kubernetes_reachable,
        argo_reachable,
        running_workflows,
        last_successful_poll,
        sent_at: rfc3339(SystemTime::now()),
    }
}

/// Observes and sends one heartbeat; answers what was sent.
pub async fn send(
    control_plane: &ControlPlaneClient,
    namespace: &Namespace,
    agent_id: &str,
) -> Result<Heartbeat, ControlPlaneError> {
    let beat = observe(namespace, agent_id).await;
    control_plane.heartbeat(&beat).await?;
    Ok(beat)
}
