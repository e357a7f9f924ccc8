//! The exit handler: a run's final status and its logs, redacted, to the control plane.

use control_plane::api::{JobState, StatusReport};
use control_plane::{ControlPlaneClient, ControlPlaneError};
use serde_json::Value;

use crate::kubernetes::Namespace;
use crate::redact::redact;

/// Most log bytes kept per container (the end of the log, where failures are).
pub const LOG_BYTES_PER_CONTAINER: i64 = 1 << 20;

/// The run being reported.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The control plane's job id.
    pub job_id: String,
    /// The run id.
    pub run_id: String,
    /// The Workflow's name.
    pub workflow: String,
    /// Argo's `{{workflow.status}}`: `Succeeded`, `Failed` or `Error`.
    pub argo_status: String,
}

/// What was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The final state.
    pub state: JobState,
    /// The message sent with it.
    pub message: Option<String>,
    /// Bytes of logs shipped.
    pub log_bytes: usize,
}

/// Collects the Workflow's failure details and its containers' logs, redacts them, ships
/// the logs, then reports the final status (so a final status always has its logs).
/// Kubernetes problems do not stop the report: they are noted in the message and logs.
pub async fn report(
    control_plane: &ControlPlaneClient,
    namespace: &Namespace,
    run: &RunReport,
) -> Result<Reported, ControlPlaneError> {
    let state = if run.argo_status == "Succeeded" {
        JobState::Succeeded
    } else {
        JobState::Failed
    };
    let mut logs = String::new();
    let mut message = None;
    match namespace.workflow(&run.workflow).await {
        Ok(workflow) if state == JobState::Failed => message = Some(failure_message(&workflow)),
        Ok(_) => {}
        Err(e) => {
            logs.push_str(&format!("(cannot read Workflow {}: {e})\n", run.workflow));
            if state == JobState::Failed {
                message = Some(format!(
                    "Workflow {} ended {}",
                    run.workflow, run.argo_status
                ));
            }
        }
    }
    match namespace.workflow_containers(&run.workflow).await {
        Ok(containers) => {
            for (pod, container) in containers {
                logs.push_str(&format!("===== {pod}/{container} =====\n"));
                match namespace
                    .container_log(&pod, &container, LOG_BYTES_PER_CONTAINER)
                    .await
                {
                    Ok(text) => logs.push_str(&text),
                    Err(e) => logs.push_str(&format!("(log unavailable: {e})")),
                }
                if !logs.ends_with('\n') {
                    logs.push('\n');
                }
            }
        }
        Err(e) => logs.push_str(&format!("(cannot list the Workflow's pods: {e})\n")),
    }
    let logs = redact(&logs, &[]);
    let message = message.map(|m| redact(&m, &[]));
    control_plane
        .upload_logs(&run.job_id, &run.run_id, &logs)
        .await?;
    control_plane
        .report_status(
            &run.job_id,
            &StatusReport {
                run_id: run.run_id.clone(),
                state,
                workflow: Some(run.workflow.clone()),
                message: message.clone(),
            },
        )
        .await?;
    Ok(Reported {
        state,
        message,
        log_bytes: logs.len(),
    })
}

/// The Workflow's message and each failed step's, in one line each.
fn failure_message(workflow: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(message) = workflow.pointer("/status/message").and_then(Value::as_str) {
        lines.push(message.to_owned());
    }
    if let Some(nodes) = workflow.pointer("/status/nodes").and_then(Value::as_object) {
        let mut failed: Vec<(&str, &str)> = nodes
            .values()
            .filter(|n| {
                matches!(
                    n.get("phase").and_then(Value::as_str),
                    Some("Failed" | "Error")
                ) && n.get("type").and_then(Value::as_str) == Some("Pod")
            })
            .filter_map(|n| {
                Some((
                    n.get("displayName").and_then(Value::as_str)?,
                    n.get("message").and_then(Value::as_str).unwrap_or(""),
                ))
            })
            .collect();
        failed.sort_unstable();
        lines.extend(
            failed
                .into_iter()
                .map(|(step, why)| format!("{step}: {why}")),
        );
    }
    if lines.is_empty() {
        "the Workflow failed without a message".to_owned()
    } else {
        lines.join("\n")
    }
}
