//! The exit handler: a run's final status to the control plane, and its logs, redacted, to
//! the control plane (direct ingestion) or to the relay bucket beside the run's metadata
//! (bucket relay: what the agent extracted and logged stays in the customer's
//! infrastructure).

use control_plane::api::{JobState, StatusReport};
use control_plane::{ControlPlaneClient, ControlPlaneError};
use object_store::ObjectStoreExt as _;
use outpost_core::ExitCode;
use outpost_core::run::RunIdentity;
use serde_json::Value;

use crate::kubernetes::Namespace;
use outpost_core::redact::redact;

/// Most log bytes kept per container (the end of the log, where failures are).
pub const LOG_BYTES_PER_CONTAINER: usize = 1 << 20;

/// Where a run's logs go.
#[derive(Clone, Debug)]
pub enum LogDestination {
    /// `PUT /v1/jobs/{job}/runs/{run}/logs`.
    ControlPlane,
    /// `<prefix>/_logs/<connection>/<job>/<run>/<workflow>.log` in the relay bucket.
    Bucket(delivery::bucket::Bucket),
}

/// The run-relative folder of a run's logs in the relay bucket: outside the run's own
/// folder, whose contents the manifest governs.
pub fn log_folder(connection: &str, job_id: &str, run_id: &str) -> String {
    format!("_logs/{connection}/{job_id}/{run_id}")
}

/// The run being reported.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run: its connector (logged) and every id.
    pub run: RunIdentity,
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
    /// Where they went: `control plane` or the object's URL.
    pub logs_at: String,
}

/// Why a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The control plane did not take the logs or the status.
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
    /// The relay bucket did not take the logs.
    #[error("shipping logs to the relay bucket: {0}")]
    Bucket(#[from] delivery::DeliveryError),
    /// The run lacks an id, or has one that is not usable.
    #[error("the run to report: {0}")]
    Identity(#[from] outpost_core::run::RunIdError),
}

impl ReportError {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::ControlPlane(e) => e.exit_code(),
            Self::Bucket(e) => e.exit_code(),
            Self::Identity(_) => ExitCode::Usage,
        }
    }
}

outpost_core::exit_coded!(ReportError);

/// Collects the Workflow's failure details and its containers' logs, redacts them, ships
/// the logs, then reports the final status (so a final status always has its logs).
/// Kubernetes problems do not stop the report: they are noted in the message and logs.
pub async fn report(
    control_plane: &ControlPlaneClient,
    namespace: &Namespace,
    run: &RunReport,
    destination: &LogDestination,
) -> Result<Reported, ReportError> {
    let (_, job_id, run_id) = run.run.ids()?;
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
    let shipped = ship_logs(
        control_plane,
        destination,
        &run.run,
        &run.workflow,
        logs.clone(),
    )
    .await;
    let logs_at = match shipped {
        Ok(at) => at,
        // An earlier attempt of this exit handler reported the final status and died before
        // it finished: the job takes no more logs, and the status report below is answered
        // as the same final report.
        Err(ReportError::ControlPlane(ControlPlaneError::Answer {
            status: 409, code, ..
        })) if code == "final" => "control plane (kept from an earlier attempt)".to_owned(),
        Err(e) => return Err(e),
    };
    control_plane
        .report_status(
            job_id,
            &StatusReport {
                run_id: run_id.to_owned(),
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
        logs_at,
    })
}

/// Ships a run's logs (already redacted) to `destination`; in the bucket they are
/// `<log_folder>/<name>.log`. Answers where they went.
pub async fn ship_logs(
    control_plane: &ControlPlaneClient,
    destination: &LogDestination,
    run: &RunIdentity,
    name: &str,
    logs: String,
) -> Result<String, ReportError> {
    let (connection, job_id, run_id) = run.ids().map_err(delivery::DeliveryError::from)?;
    match destination {
        LogDestination::ControlPlane => {
            control_plane.upload_logs(job_id, run_id, &logs).await?;
            Ok("control plane".to_owned())
        }
        LogDestination::Bucket(bucket) => {
            let folder = log_folder(connection, job_id, run_id);
            let location = bucket.location(&folder, &format!("{name}.log"))?;
            bucket
                .store
                .put(&location, logs.into_bytes().into())
                .await
                .map_err(|e| delivery::DeliveryError::from_store(location.as_ref(), e))?;
            Ok(format!("{}/{location}", bucket.url.kind.name()))
        }
    }
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
