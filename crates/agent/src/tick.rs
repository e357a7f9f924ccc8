//! One tick: poll the control plane, and for each pending job claim it, admit it against
//! the descriptors ([`orchestrator::admit`]), refuse a replayed nonce, hand it to an
//! executor, and report what happened.
//!
//! One loop, two executors. Jobs run in two places: in Kubernetes, where the orchestrator
//! submits a Workflow that only references its connector's WorkflowTemplate ([`tick`]), and
//! in local mode (`outpost run --control-plane`), where the job runs in this process
//! ([`crate::local`]). They used to be two copies of this loop, and copies drift: a check
//! added to one is missing from the other. So what decides whether and how a job may run is
//! here, once: paging through pending jobs, claiming (the lease), the admission policy's
//! common part (the signing policy: this agent's id, now, the longest job lifetime),
//! admission, the nonce replay check, rejecting with a redacted reason, and the
//! [`TickSummary`]. What differs is behind [`Executor`], and each executor owns it:
//! - the placement half of the admission policy: whether bucket relay is configured and
//!   whether jobs run locally (`localOnly` connectors are admitted only then). The cluster
//!   reads the first from the installed WorkflowTemplate (cached per tick); local mode from
//!   whether a relay bucket is configured;
//! - the nonce record: the cluster's is on its Workflows, local mode's a file in its state
//!   folder ([`crate::nonce_store`]);
//! - executing an admitted job: the cluster creates the Workflow and reports `submitted`;
//!   local mode reports `running`, runs the job while renewing its lease, ships the run's
//!   redacted logs and reports `succeeded` or `failed`.
//!
//! Preflight (the cluster's), before anything is claimed: the API server answers, and Argo's
//! workflow controller runs only Workflows that reference a WorkflowTemplate
//! ([`crate::argo_config`], security review finding M6). Otherwise the orchestrator's
//! account, which may create Workflows, could run any pod: the tick refuses
//! ([`TickError::UnrestrictedTemplates`]) unless
//! [`TickConfig::insecure_allow_unrestricted_templates`] says to run anyway, which every tick
//! logs as a warning. Local mode runs no pods; it sends its heartbeat before polling.
//!
//! Exactly once: the Workflow's name is derived from the job and run ids, so the API server
//! itself refuses a second one (`AlreadyExists`, counted as submitted, after checking the
//! existing Workflow is this job's). Leases keep overlapping ticks off each other's jobs; a
//! tick that crashes after submitting and before reporting leaves a lapsed lease, and the
//! next tick finds the Workflow and reports it. Status reports only move forward, so a
//! repeated report changes nothing. In local mode the lease is renewed while the job runs;
//! a runner that dies mid-job leaves a lapsed lease, and the job runs again under the same
//! run id, which delivery treats as a no-op or a clean replacement. A job that fails on the
//! way (a claim, a lookup or a report that did not go through) is left for a later tick,
//! its lease lapsing, and listed in [`TickSummary::failures`].
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
//! `concurrencyPolicy: Forbid`). Local mode records a nonce in its state folder before the
//! job runs and marks it finished once the final status was reported: a nonce of another
//! job, or of a job that finished, is rejected; a job that started and never finished runs
//! again under the same run id.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use connector_descriptor::ValidatedDescriptor;
use control_plane::api::{JobState, StatusReport};
use control_plane::{Claim, ControlPlaneClient, ControlPlaneError};
use futures_util::StreamExt as _;
use orchestrator::signing::{self, JobNonce, SigningPolicy};
use orchestrator::{AdmissionPolicy, AdmittedJob, Rejection, admit};
use serde_json::Value;

use crate::argo_config::{self, ControllerConfigMap, Restrictions};
use crate::cluster::ClusterExecutor;
use crate::kubernetes::Namespace;
use outpost_core::redact::redact;

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

/// What a tick did, with either executor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// Workflows created (cluster).
    pub submitted: usize,
    /// Jobs whose Workflow existed already (an earlier tick submitted and did not report;
    /// cluster).
    pub already_submitted: usize,
    /// Jobs run here that succeeded, reported so (local mode).
    pub succeeded: usize,
    /// Jobs run here that failed, reported so with their problem (local mode).
    pub failed: usize,
    /// Jobs refused, each reported with its reasons.
    pub rejected: usize,
    /// Jobs another claimant holds, or that moved on meanwhile.
    pub skipped: usize,
    /// Jobs that failed on the way (left for a later tick): their problems.
    pub failures: Vec<String>,
    /// What the tick ran despite, each also logged as a warning (the insecure override).
    pub warnings: Vec<String>,
}

impl TickSummary {
    /// A local-mode poll's outcome, for a person: `2 succeeded, 0 failed, 1 rejected, 0 left
    /// to other runners`.
    pub fn describe_local(&self) -> String {
        format!(
            "{} succeeded, {} failed, {} rejected, {} left to other runners",
            self.succeeded, self.failed, self.rejected, self.skipped
        )
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Submitted => self.submitted += 1,
            Outcome::AlreadySubmitted => self.already_submitted += 1,
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Left(problem) => self.failures.push(problem),
        }
    }
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

impl TickError {
    /// The process exit code: an API server that did not answer may answer next time (75);
    /// an Argo that would run inline templates is fixed by configuration, not by retrying
    /// (78).
    pub fn exit_code(&self) -> outpost_core::ExitCode {
        match self {
            Self::ControlPlane(e) => e.exit_code(),
            Self::Kubernetes { .. } => outpost_core::ExitCode::Temporary,
            Self::UnrestrictedTemplates(_) => outpost_core::ExitCode::Config,
        }
    }
}

outpost_core::exit_coded!(TickError);

/// Runs one tick of the orchestrator: the cluster's preflight, then the loop with the
/// cluster's executor.
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
    let jobs = Jobs {
        control_plane: &control_plane.with_claimant(&config.claimant),
        claimant: &config.claimant,
        lease: config.lease,
        concurrency: config.concurrency,
        page_size: config.page_size,
        descriptors: &config.descriptors,
        signing_key: config.signing_key,
        agent_id: config.agent_id.as_deref().unwrap_or(namespace.name()),
        max_job_lifetime: config.max_job_lifetime,
    };
    jobs.run(
        &ClusterExecutor::new(namespace, &config.descriptors),
        &mut summary,
    )
    .await?;
    Ok(summary)
}

/// What happened to one job.
pub(crate) enum Outcome {
    /// Its Workflow was created and reported (cluster).
    Submitted,
    /// Its Workflow existed already, and was reported (cluster).
    AlreadySubmitted,
    /// It ran here and succeeded, and was reported so (local).
    Succeeded,
    /// It ran here and failed, and was reported so (local).
    Failed,
    /// It was refused, and reported so.
    Rejected,
    /// Another claimant holds it, or it moved on.
    Skipped,
    /// Something failed on the way: left for a later tick, its lease lapsing.
    Left(String),
}

/// What differs between running jobs in a cluster and in this process; the loop
/// ([`Jobs::run`]) does the rest, the same for both.
pub(crate) trait Executor: Sync {
    /// The admission policy's `local`: whether jobs run on this machine rather than in a
    /// cluster.
    const LOCAL: bool;

    /// The admission policy's `relay_configured`: whether bucket relay can serve `job`
    /// (not yet admitted: its connector may be missing or unknown). An error leaves the job
    /// for a later tick.
    async fn relay_configured(&self, job: &Value) -> Result<bool, String>;

    /// Checks `nonce` against the record: answers why `job` replays it, else records it as
    /// `job`'s (now, or when the job is executed). An error leaves the job for a later tick.
    async fn seen_nonce(
        &self,
        job: &AdmittedJob,
        nonce: &JobNonce,
    ) -> Result<Option<String>, String>;

    /// Executes an admitted job (with its nonce, when signed) and reports it to
    /// `control_plane`, as the lease holder.
    async fn execute(
        &self,
        control_plane: &ControlPlaneClient,
        job: &AdmittedJob,
        nonce: Option<&JobNonce>,
    ) -> Outcome;
}

/// The loop, whichever executor runs the jobs.
pub(crate) struct Jobs<'a> {
    /// The control plane, as the claimant: reports are the lease holder's.
    pub control_plane: &'a ControlPlaneClient,
    /// Who claims.
    pub claimant: &'a str,
    /// How long a claim holds off other ticks.
    pub lease: Duration,
    /// Jobs handled at once.
    pub concurrency: usize,
    /// Jobs asked for per poll.
    pub page_size: u32,
    /// The descriptors jobs are admitted against.
    pub descriptors: &'a [ValidatedDescriptor],
    /// When set, only jobs signed with the matching key are admitted.
    pub signing_key: Option<ed25519_dalek::VerifyingKey>,
    /// The agent a signed job must be signed for.
    pub agent_id: &'a str,
    /// Furthest ahead a signed job's `notAfter` may lie.
    pub max_job_lifetime: Duration,
}

impl Jobs<'_> {
    /// Handles every pending job with `executor`, counting them in `summary`. Fails only
    /// when the control plane cannot be polled.
    pub(crate) async fn run<E: Executor>(
        &self,
        executor: &E,
        summary: &mut TickSummary,
    ) -> Result<(), ControlPlaneError> {
        let mut seen = HashSet::new();
        // Each page holds jobs still pending; handled jobs leave the list (submitted,
        // rejected, or leased to us), so polling stops when a page brings nothing new.
        for _page in 0..1000 {
            let jobs = self.control_plane.pending_jobs(self.page_size).await?;
            let fresh: Vec<Value> = jobs
                .into_iter()
                .filter(|job| seen.insert(job_key(job)))
                .collect();
            if fresh.is_empty() {
                break;
            }
            let outcomes: Vec<Outcome> = futures_util::stream::iter(fresh)
                .map(|job| self.handle(executor, job))
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
            for outcome in outcomes {
                summary.count(outcome);
            }
        }
        Ok(())
    }

    async fn handle<E: Executor>(&self, executor: &E, job: Value) -> Outcome {
        let control_plane = self.control_plane;
        let Some(id) = job.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return Outcome::Left(
                "a job without a string id cannot be claimed or answered".to_owned(),
            );
        };
        let run_id = job
            .get("runId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match control_plane.claim(&id, self.claimant, self.lease).await {
            Ok(Claim::Granted(_)) => {}
            Ok(Claim::Refused { .. }) => return Outcome::Skipped,
            Err(e) => return Outcome::Left(format!("job {id}: claim: {e}")),
        }

        let relay_configured = match executor.relay_configured(&job).await {
            Ok(configured) => configured,
            Err(problem) => return Outcome::Left(format!("job {id}: {problem}")),
        };
        let policy = AdmissionPolicy {
            relay_configured,
            signing: self.signing_key.map(|key| {
                let mut signing = SigningPolicy::new(key, self.agent_id, SystemTime::now());
                signing.max_lifetime = self.max_job_lifetime;
                signing
            }),
            local: E::LOCAL,
        };
        let admitted = match admit(&job, self.descriptors, &policy) {
            Ok(admitted) => admitted,
            Err(rejection) => return reject(control_plane, &id, run_id, &rejection).await,
        };

        // A signed job's nonce: refused when another job or run used it, else recorded.
        // (Admission made sure a signed job has a well-formed one.)
        let nonce = policy
            .signing
            .as_ref()
            .and_then(|_| signing::nonce_of(&job));
        if let Some(nonce) = &nonce {
            match executor.seen_nonce(&admitted, nonce).await {
                Ok(None) => {}
                Ok(Some(reason)) => {
                    let rejection = Rejection {
                        job_id: Some(id.clone()),
                        reasons: vec![reason],
                    };
                    return reject(control_plane, &id, run_id, &rejection).await;
                }
                Err(problem) => return Outcome::Left(format!("job {id}: {problem}")),
            }
        }
        executor
            .execute(control_plane, &admitted, nonce.as_ref())
            .await
    }
}

fn job_key(job: &Value) -> String {
    match job.get("id").and_then(Value::as_str) {
        Some(id) => format!("id:{id}"),
        None => format!("raw:{job}"),
    }
}

/// Reports `rejection` as the job's final status, redacted.
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
        Err(e) => Outcome::Left(format!("job {id}: reporting its rejection: {e}")),
    }
}
