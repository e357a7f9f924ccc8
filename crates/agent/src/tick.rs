//! One orchestrator tick: poll the control plane, and for each pending job claim it, admit
//! it against the descriptors ([`orchestrator::admit`]), submit the Workflow that only
//! references its connector's WorkflowTemplate, and report what happened.
//!
//! Preflight, before anything is claimed: the API server answers, and Argo's workflow
//! controller runs only Workflows that reference a WorkflowTemplate
//! ([`crate::argo_config`], security review finding M6). Otherwise the orchestrator's
//! account, which may create Workflows, could run any pod: the tick refuses
//! ([`TickError::UnrestrictedTemplates`]) unless
//! [`TickConfig::insecure_allow_unrestricted_templates`] says to run anyway, which every tick
//! logs as a warning.
//!
//! Exactly once: the Workflow's name is derived from the job and run ids, so the API server
//! itself refuses a second one (`AlreadyExists`, counted as submitted, after checking the
//! existing Workflow is this job's). Leases keep overlapping ticks off each other's jobs; a
//! tick that crashes after submitting and before reporting leaves a lapsed lease, and the
//! next tick finds the Workflow and reports it. Status reports only move forward, so a
//! repeated report changes nothing.
//!
//! Replays: with a signing key, every job names this agent, expires and carries a nonce
//! ([`orchestrator::signing`]). The nonces seen are kept on the Workflows themselves: each
//! Workflow of a signed job is labelled with its nonce's digest and annotated with the
//! nonce, and a job whose nonce is on a Workflow of another job or run is rejected. The same
//! job and run presented again (a replay of the very same job, or a retry after a crash)
//! meets its own Workflow and is not run twice (`AlreadyExists`). The record lasts as long
//! as the Workflow, so jobs may not be valid for longer than finished Workflows are kept
//! ([`TickConfig::max_job_lifetime`]); a Workflow deleted by hand takes its record with it.
//! Looking a nonce up and creating the Workflow are two calls, so two jobs carrying the same
//! nonce in one tick are told apart in memory, and ticks do not overlap (the CronWorkflow's
//! `concurrencyPolicy: Forbid`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use connector_descriptor::ValidatedDescriptor;
use control_plane::api::{JobState, StatusReport};
use control_plane::{Claim, ControlPlaneClient, ControlPlaneError};
use futures_util::StreamExt as _;
use orchestrator::signing::{self, SigningPolicy};
use orchestrator::{AdmissionPolicy, Rejection, admit, workflow_for, workflow_name};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::argo_config::{self, ControllerConfigMap, Restrictions};
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
    /// This agent's id, which a signed job's `agentId` must equal; default: the namespace's
    /// name (as `outpost heartbeat` reports it).
    pub agent_id: Option<String>,
    /// Furthest ahead a signed job's `notAfter` may lie. The nonce record lives on the
    /// Workflow, so this must not exceed how long finished Workflows are kept (the
    /// compiler passes the shorter of the two TTLs).
    pub max_job_lifetime: Duration,
    /// The ConfigMap of Argo's workflow controller, read before every tick: without
    /// `workflowRestrictions.templateReferencing: Strict` or `Secure` the tick does not run.
    pub argo_config_map: ControllerConfigMap,
    /// Run anyway when Argo does not (or may not) restrict Workflows to WorkflowTemplate
    /// references, logging a warning every tick. Insecure.
    pub insecure_allow_unrestricted_templates: bool,
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
            agent_id: None,
            max_job_lifetime: signing::DEFAULT_MAX_LIFETIME,
            argo_config_map: ControllerConfigMap::default(),
            insecure_allow_unrestricted_templates: false,
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
    /// What the tick ran despite, each also logged as a warning (the insecure override).
    pub warnings: Vec<String>,
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
    /// Argo's controller would run Workflows carrying their own templates, or whether it
    /// would is unknown (security review finding M6). Nothing was claimed. A configuration
    /// problem: exit 78.
    #[error("{}", .0.refusal())]
    UnrestrictedTemplates(Box<Restrictions>),
}

/// Per tick: each connector's WorkflowTemplate, fetched once.
type Templates = Mutex<BTreeMap<String, Result<Option<Value>, String>>>;

/// Per tick: the nonces of the signed jobs handled so far, with their job and run ids, so
/// two jobs carrying one nonce are told apart even before either Workflow exists.
type Nonces = Mutex<HashMap<String, (String, String)>>;

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
    // Preflight: Argo runs only Workflows that reference a WorkflowTemplate, so the
    // orchestrator's account cannot run a pod of its choosing (M6). Checked before anything
    // is claimed, so a refused tick holds no job back.
    let mut summary = TickSummary::default();
    let restrictions = argo_config::read(namespace.client(), &config.argo_config_map)
        .await
        .map_err(|e| TickError::Kubernetes {
            namespace: config.argo_config_map.namespace.clone(),
            problem: format!("reading Argo's ConfigMap {}: {e}", config.argo_config_map),
        });
    if config.insecure_allow_unrestricted_templates {
        // Knowingly insecure: whatever the check found, say so loudly, every tick.
        let warning = match &restrictions {
            Ok(restrictions) => restrictions.insecure_warning(),
            Err(e) => format!("{}. Now: {e}", argo_config::INSECURE),
        };
        tracing::warn!("{warning}");
        summary.warnings.push(warning);
    } else {
        // An API server that did not answer is exit 75, as for the first call.
        let restrictions = restrictions?;
        if !restrictions.is_enforced() {
            return Err(TickError::UnrestrictedTemplates(Box::new(restrictions)));
        }
        tracing::debug!("{}", restrictions.finding());
    }

    // Reports are the lease holder's: the control plane refuses `submitted` and `rejected`
    // from anyone but the claimant holding the job's lease.
    let control_plane = &control_plane.with_claimant(&config.claimant);
    let templates: Templates = Mutex::new(BTreeMap::new());
    let nonces: Nonces = Mutex::new(HashMap::new());
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
            .map(|job| handle(control_plane, namespace, config, &templates, &nonces, job))
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
    nonces: &Nonces,
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
        Err(rejection) => return reject(control_plane, &id, run_id, &rejection).await,
    };

    let mut workflow = workflow_for(&admitted, namespace.name());
    // A signed job's nonce: refused when another job or run used it, else recorded on the
    // Workflow. (Admission made sure a signed job has a well-formed one.)
    let nonce = policy
        .signing
        .as_ref()
        .and_then(|_| signing::nonce_of(&job));
    if let Some(nonce) = &nonce {
        let replay = match seen_nonce(namespace, nonces, &admitted, nonce).await {
            Ok(replay) => replay,
            Err(problem) => return Outcome::Failed(format!("job {id}: {problem}")),
        };
        if let Some(reason) = replay {
            let rejection = Rejection {
                job_id: Some(id.clone()),
                reasons: vec![reason],
            };
            return reject(control_plane, &id, run_id, &rejection).await;
        }
        signing::mark_workflow(&mut workflow, nonce);
    }
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

/// Reports `rejection` as the job's final status.
async fn reject(
    control_plane: &ControlPlaneClient,
    id: &str,
    run_id: String,
    rejection: &Rejection,
) -> Outcome {
    tracing::warn!(job = %id, reasons = %rejection, "job rejected");
    let report = StatusReport {
        run_id,
        state: JobState::Rejected,
        workflow: None,
        message: Some(redact(&rejection.to_string(), &[])),
    };
    match control_plane.report_status(id, &report).await {
        Ok(_) => Outcome::Rejected,
        Err(e) => Outcome::Failed(format!("job {id}: reporting its rejection: {e}")),
    }
}

/// Whether `nonce` was used by another job or run: in this tick, or on a Workflow in the
/// namespace (found by the nonce's label). Answers the reason to reject the job.
async fn seen_nonce(
    namespace: &Namespace,
    nonces: &Nonces,
    job: &orchestrator::AdmittedJob,
    nonce: &signing::JobNonce,
) -> Result<Option<String>, String> {
    {
        let mut seen = nonces.lock().await;
        let ids = (job.id.clone(), job.run_id.clone());
        match seen.get(&nonce.nonce) {
            Some(other) if *other != ids => {
                return Ok(Some(format!(
                    "replayed nonce: job `{}` run `{}` carries the same nonce in this poll; a nonce is accepted once",
                    other.0, other.1
                )));
            }
            Some(_) => {}
            None => {
                seen.insert(nonce.nonce.clone(), ids);
            }
        }
    }
    let existing = namespace
        .workflows_labelled(&signing::nonce_selector(nonce))
        .await
        .map_err(|e| format!("looking up Workflows by the job's nonce: {e}"))?;
    Ok(signing::replay_conflict(&existing, job, nonce))
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
        signing: config.signing_key.map(|key| {
            let agent_id = config.agent_id.as_deref().unwrap_or(namespace.name());
            let mut signing = SigningPolicy::new(key, agent_id, SystemTime::now());
            signing.max_lifetime = config.max_job_lifetime;
            signing
        }),
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
