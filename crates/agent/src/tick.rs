//! One orchestrator tick: poll the control plane, and for each pending job claim it, admit
//! it against the descriptors ([`orchestrator::admit`]), submit the Workflow that only
//! references its connector's WorkflowTemplate, and report what happened.
//!
//! Exactly once: the Workflow's name is derived from the job and run ids, so the API server
//! itself refuses a second one (`AlreadyExists`, counted as submitted, after checking the
//! existing Workflow is this job's). Leases keep overlapping ticks off each other's jobs; a
//! tick that crashes after submitting and before reporting leaves a lapsed lease, and the
//! next tick finds the Workflow and reports it. Status reports only move forward, so a
//! repeated report changes nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use connector_descriptor::ValidatedDescriptor;
use control_plane::api::{JobState, StatusReport};
use control_plane::{Claim, ControlPlaneClient, ControlPlaneError};
use futures_util::StreamExt as _;
use orchestrator::{AdmissionPolicy, admit, workflow_for, workflow_name};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::kubernetes::{Created, Namespace};
use crate::redact::redact;

/// How a tick behaves.
#[derive(Clone)]
pub struct TickConfig {
    /// Who claims (the orchestrator pod's name): the same claimant may re-claim its jobs.
    pub claimant: String,
    /// How long a claim holds off other ticks.
    pub lease: Duration,
    /// Jobs handled at once.
    pub concurrency: usize,
    /// Jobs asked for per poll.
    pub page_size: u32,
    /// The descriptors jobs are admitted against (the ones the image ships).
    pub descriptors: Arc<Vec<ValidatedDescriptor>>,
    /// When set, only jobs signed with the matching key are admitted.
    pub signing_key: Option<ed25519_dalek::VerifyingKey>,
}

impl TickConfig {
    /// Defaults: 10-minute leases, 8 jobs at once, pages of 100.
    pub fn new(claimant: &str, descriptors: Arc<Vec<ValidatedDescriptor>>) -> Self {
        Self {
            claimant: claimant.to_owned(),
            lease: Duration::from_secs(600),
            concurrency: 8,
            page_size: 100,
            descriptors,
            signing_key: None,
        }
    }
}

/// What a tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// Workflows created.
    pub submitted: usize,
    /// Jobs whose Workflow existed already (an earlier tick submitted and did not report).
    pub already_submitted: usize,
    /// Jobs refused, each reported with its reasons.
    pub rejected: usize,
    /// Jobs another claimant holds, or that moved on meanwhile.
    pub skipped: usize,
    /// Jobs that failed on the way (left for a later tick): their problems.
    pub failures: Vec<String>,
}

/// Why a tick could not start. Nothing was submitted.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The Kubernetes API (or Argo's Workflow API in it) did not answer.
    #[error("Kubernetes API unreachable in namespace {namespace}: {problem}")]
    Kubernetes {
        /// The namespace.
        namespace: String,
        /// What failed.
        problem: String,
    },
    /// The control plane could not be polled.
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
}

/// Per tick: each connector's WorkflowTemplate, fetched once.
type Templates = Mutex<BTreeMap<String, Result<Option<Value>, String>>>;

/// Runs one tick.
pub async fn tick(
    control_plane: &ControlPlaneClient,
    namespace: &Namespace,
    config: &TickConfig,
) -> Result<TickSummary, TickError> {
    // Preflight: a tick that cannot reach the API server submits nothing (and claims
    // nothing, so no lease holds a job back for nothing).
    namespace
        .workflows_labelled("app.kubernetes.io/managed-by=outpost,outpost.dev/preflight=none")
        .await
        .map_err(|e| TickError::Kubernetes {
            namespace: namespace.name().to_owned(),
            problem: e.to_string(),
        })?;

    let templates: Templates = Mutex::new(BTreeMap::new());
    let mut summary = TickSummary::default();
    let mut seen = HashSet::new();
    // Each page holds jobs still pending; handled jobs leave the list (submitted, rejected,
    // or leased to us), so polling stops when a page brings nothing new.
    for _page in 0..1000 {
        let jobs = control_plane.pending_jobs(config.page_size).await?;
        let fresh: Vec<Value> = jobs
            .into_iter()
            .filter(|job| seen.insert(job_key(job)))
            .collect();
        if fresh.is_empty() {
            break;
        }
        let outcomes: Vec<Outcome> = futures_util::stream::iter(fresh)
            .map(|job| handle(control_plane, namespace, config, &templates, job))
            .buffer_unordered(config.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Outcome::Submitted => summary.submitted += 1,
                Outcome::AlreadySubmitted => summary.already_submitted += 1,
                Outcome::Rejected => summary.rejected += 1,
                Outcome::Skipped => summary.skipped += 1,
                Outcome::Failed(problem) => summary.failures.push(problem),
            }
        }
    }
    Ok(summary)
}

fn job_key(job: &Value) -> String {
    match job.get("id").and_then(Value::as_str) {
        Some(id) => format!("id:{id}"),
        None => format!("raw:{job}"),
    }
}

enum Outcome {
    Submitted,
    AlreadySubmitted,
    Rejected,
    Skipped,
    Failed(String),
}

async fn handle(
    control_plane: &ControlPlaneClient,
    namespace: &Namespace,
    config: &TickConfig,
    templates: &Templates,
    job: Value,
) -> Outcome {
    let Some(id) = job.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return Outcome::Failed(
            "a job without a string id cannot be claimed or answered".to_owned(),
        );
    };
    let run_id = job
        .get("runId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match control_plane
        .claim(&id, &config.claimant, config.lease)
        .await
    {
        Ok(Claim::Granted(_)) => {}
        Ok(Claim::Refused { .. }) => return Outcome::Skipped,
        Err(e) => return Outcome::Failed(format!("job {id}: claim: {e}")),
    }

    let policy = match policy_for(namespace, config, templates, &job).await {
        Ok(policy) => policy,
        Err(problem) => return Outcome::Failed(format!("job {id}: {problem}")),
    };
    let admitted = match admit(&job, &config.descriptors, &policy) {
        Ok(admitted) => admitted,
        Err(rejection) => {
            tracing::warn!(job = %id, reasons = %rejection, "job rejected");
            let report = StatusReport {
                run_id,
                state: JobState::Rejected,
                workflow: None,
                message: Some(redact(&rejection.to_string(), &[])),
            };
            return match control_plane.report_status(&id, &report).await {
                Ok(_) => Outcome::Rejected,
                Err(e) => Outcome::Failed(format!("job {id}: reporting its rejection: {e}")),
            };
        }
    };

    let workflow = workflow_for(&admitted, namespace.name());
    let name = workflow_name(&admitted);
    let outcome = match namespace.create_workflow(&workflow).await {
        Ok(Created::New) => Outcome::Submitted,
        Ok(Created::Existed) => match same_job(namespace, &name, &admitted).await {
            Ok(()) => Outcome::AlreadySubmitted,
            Err(problem) => return Outcome::Failed(format!("job {id}: {problem}")),
        },
        Err(e) => return Outcome::Failed(format!("job {id}: creating Workflow {name}: {e}")),
    };
    let report = StatusReport {
        run_id: admitted.run_id.clone(),
        state: JobState::Submitted,
        workflow: Some(name.clone()),
        message: None,
    };
    match control_plane.report_status(&id, &report).await {
        Ok(_) => {
            tracing::info!(job = %id, workflow = %name, "submitted");
            outcome
        }
        // The Workflow exists; the next tick finds it and reports again.
        Err(e) => Outcome::Failed(format!("job {id}: reporting Workflow {name}: {e}")),
    }
}

/// The admission policy for `job`'s connector: bucket relay is possible when the installed
/// WorkflowTemplate offers it (the compiler lists `bucket-relay` only when a relay bucket is
/// configured). Templates are fetched only for connectors the agent has descriptors for, so
/// a job cannot make the agent look up arbitrary names.
async fn policy_for(
    namespace: &Namespace,
    config: &TickConfig,
    templates: &Templates,
    job: &Value,
) -> Result<AdmissionPolicy, String> {
    let mut policy = AdmissionPolicy {
        relay_configured: false,
        signing_key: config.signing_key,
        local: false,
    };
    let Some(connector) = job.get("connector").and_then(Value::as_str) else {
        return Ok(policy);
    };
    if !config.descriptors.iter().any(|d| d.name() == connector) {
        return Ok(policy);
    }
    let template = {
        let mut cache = templates.lock().await;
        if !cache.contains_key(connector) {
            let name = workflow_compiler::connector_template_name(connector);
            let fetched = namespace
                .workflow_template(&name)
                .await
                .map_err(|e| format!("reading WorkflowTemplate {name}: {e}"));
            cache.insert(connector.to_owned(), fetched);
        }
        cache.get(connector).cloned().unwrap_or(Ok(None))?
    };
    policy.relay_configured = template
        .as_ref()
        .and_then(|t| t.pointer("/spec/arguments/parameters"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some("transfer-mode"))
        .filter_map(|p| p.get("enum").and_then(Value::as_array))
        .flatten()
        .any(|mode| mode.as_str() == Some("bucket-relay"));
    if template.is_none() {
        return Err(format!(
            "WorkflowTemplate {} is not installed in namespace {}",
            workflow_compiler::connector_template_name(connector),
            namespace.name()
        ));
    }
    Ok(policy)
}

/// Checks that the existing Workflow `name` was submitted for this job and run.
async fn same_job(
    namespace: &Namespace,
    name: &str,
    job: &orchestrator::AdmittedJob,
) -> Result<(), String> {
    let existing = namespace
        .workflow(name)
        .await
        .map_err(|e| format!("reading existing Workflow {name}: {e}"))?;
    let annotation = |key: &str| {
        existing
            .pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if annotation("outpost.dev/job-id").as_deref() == Some(job.id.as_str())
        && annotation("outpost.dev/run-id").as_deref() == Some(job.run_id.as_str())
    {
        Ok(())
    } else {
        Err(format!(
            "Workflow {name} exists but belongs to another job; refusing to count it as this one"
        ))
    }
}
