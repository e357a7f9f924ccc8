//! `outpost run --control-plane URL`: local mode for sites without Kubernetes. Polls the
//! control plane, admits each job exactly as the orchestrator does (same descriptors, same
//! rules, same signature check), runs it in-process (extract, then deliver), ships its
//! logs (redacted) and reports its final status. Leases keep two local runners off the
//! same job; a runner that dies mid-job leaves a lapsed lease, and the job runs again under
//! the same run id, which delivery treats as a no-op or a clean replacement.
//!
//! With a signing key, a job must be signed for this runner's agent id, unexpired, with a
//! nonce not seen before: the nonces are kept in the state folder
//! ([`crate::nonce_store`]), so a job copied to another queue or control plane, or handed
//! out again after it ran, is rejected with its reason reported.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agent::redact::redact;
use agent::report::{LogDestination, ReportError, RunIds, ship_logs};
use connector_descriptor::{TransferMode, ValidatedDescriptor};
use control_plane::api::{Heartbeat, JobState, StatusReport, rfc3339};
use control_plane::{Claim, ControlPlaneClient, ControlPlaneError};
use orchestrator::signing::{self, SigningPolicy};
use orchestrator::{AdmissionPolicy, AdmittedJob, Rejection, admit};
use serde_json::Value;

use crate::extract::{ExtractArgs, cause_chain, extract};
use crate::nonce_store::NonceStore;
use crate::upload::{DeliveryFlags, RunIdentityArgs, upload};

/// How the local runner behaves.
pub struct LocalAgent {
    pub client: ControlPlaneClient,
    pub descriptors: Arc<Vec<ValidatedDescriptor>>,
    pub signing_key: Option<ed25519_dalek::VerifyingKey>,
    /// Where the nonces of signed jobs are kept; set whenever `signing_key` is.
    pub nonces: Option<NonceStore>,
    pub secrets_root: Option<PathBuf>,
    pub delivery: DeliveryFlags,
    pub agent_id: String,
    /// The `insecure…` options this runner was started with, reported in its heartbeats.
    pub insecure_options: Vec<String>,
    pub claimant: String,
    pub lease: Duration,
}

/// What one poll did.
#[derive(Debug, Default)]
pub struct PollSummary {
    pub succeeded: usize,
    pub failed: usize,
    pub rejected: usize,
    pub skipped: usize,
}

impl LocalAgent {
    /// One heartbeat and one poll; every pending job is handled before it returns.
    pub async fn poll_once(
        &self,
        last_poll: Option<SystemTime>,
    ) -> Result<PollSummary, ControlPlaneError> {
        self.client
            .heartbeat(&Heartbeat {
                agent_id: self.agent_id.clone(),
                version: agent::version(),
                kubernetes_reachable: false,
                argo_reachable: false,
                running_workflows: None,
                last_successful_poll: last_poll.map(rfc3339),
                sent_at: rfc3339(SystemTime::now()),
                // No Argo here: nothing could run an inline template.
                argo_restricts_templates: None,
                insecure_options: self.insecure_options.clone(),
            })
            .await?;
        let mut summary = PollSummary::default();
        let mut seen = std::collections::HashSet::new();
        loop {
            let jobs = self.client.pending_jobs(100).await?;
            let fresh: Vec<Value> = jobs
                .into_iter()
                .filter(|j| seen.insert(j.to_string()))
                .collect();
            if fresh.is_empty() {
                return Ok(summary);
            }
            for job in fresh {
                self.handle(job, &mut summary).await?;
            }
        }
    }

    async fn handle(&self, job: Value, summary: &mut PollSummary) -> Result<(), ControlPlaneError> {
        let Some(id) = job.get("id").and_then(Value::as_str).map(str::to_owned) else {
            summary.skipped += 1;
            return Ok(());
        };
        let run_id = job
            .get("runId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Claim::Refused { .. } = self.client.claim(&id, &self.claimant, self.lease).await? {
            summary.skipped += 1;
            return Ok(());
        }
        let policy = AdmissionPolicy {
            relay_configured: self.delivery.to.is_some(),
            signing: self
                .signing_key
                .map(|key| SigningPolicy::new(key, &self.agent_id, SystemTime::now())),
            local: true,
        };
        let admitted = match admit(&job, &self.descriptors, &policy) {
            Ok(admitted) => admitted,
            Err(rejection) => return self.reject(&id, run_id, &rejection, summary).await,
        };
        let runner = format!("local:{}", self.claimant);
        // A signed job's nonce is recorded before it runs; one seen before rejects it.
        let nonce = policy
            .signing
            .as_ref()
            .and_then(|_| signing::nonce_of(&job));
        if let Some(nonce) = &nonce {
            let recorded = match &self.nonces {
                Some(store) => {
                    store.begin(nonce, &admitted.id, &admitted.run_id, SystemTime::now())
                }
                None => Err("no state folder to record nonces in".to_owned()),
            };
            let problem = match recorded {
                Ok(None) => None,
                Ok(Some(replay)) => {
                    let rejection = Rejection {
                        job_id: Some(id.clone()),
                        reasons: vec![replay],
                    };
                    return self.reject(&id, run_id, &rejection, summary).await;
                }
                Err(problem) => Some(problem),
            };
            if let Some(problem) = problem {
                // Not the job's fault, but it cannot run without its nonce on record.
                tracing::error!(job = %id, "cannot record the job's nonce: {problem}");
                self.client
                    .report_status(
                        &id,
                        &StatusReport {
                            run_id: admitted.run_id.clone(),
                            state: JobState::Failed,
                            workflow: Some(runner),
                            message: Some(redact(
                                &format!("the runner cannot record the job's nonce: {problem}"),
                                &[],
                            )),
                        },
                    )
                    .await?;
                summary.failed += 1;
                return Ok(());
            }
        }
        self.client
            .report_status(
                &id,
                &StatusReport {
                    run_id: admitted.run_id.clone(),
                    state: JobState::Running,
                    workflow: Some(runner.clone()),
                    message: None,
                },
            )
            .await?;
        tracing::info!(job = %id, connector = %admitted.connector, connection = %admitted.connection, "running job");
        let mut log = JobLog::default();
        log.line(format!(
            "job {id} run {} connector {} connection {} mode {}",
            admitted.run_id,
            admitted.connector,
            admitted.connection,
            admitted.transfer_mode.as_str()
        ));
        let secrets_dir = self
            .secrets_root
            .as_ref()
            .map(|root| root.join(&admitted.connection));
        // The lease is renewed while the job runs: a `running` job keeps its runner's lease,
        // and one that lapses is taken for a dead runner's and offered to other runners.
        let renew = async {
            let every = (self.lease / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                match self.client.claim(&id, &self.claimant, self.lease).await {
                    Ok(Claim::Granted(_)) => {}
                    Ok(Claim::Refused { message, .. }) => {
                        tracing::warn!(job = %id, "lease not renewed: {message}");
                    }
                    Err(e) => tracing::warn!(job = %id, "lease not renewed: {e}"),
                }
            }
        };
        let outcome = tokio::select! {
            outcome = self.run_job(&admitted, secrets_dir.clone(), &mut log) => outcome,
            _ = renew => unreachable!("renewing a lease never ends"),
        };
        let known_secrets = secret_values(secrets_dir.as_deref());
        let (state, message) = match outcome {
            Ok(text) => {
                log.line(text);
                summary.succeeded += 1;
                (JobState::Succeeded, None)
            }
            Err(problem) => {
                log.line(format!("failed: {problem}"));
                summary.failed += 1;
                (JobState::Failed, Some(redact(&problem, &known_secrets)))
            }
        };
        let logs = redact(&log.text, &known_secrets);
        // Bucket relay: the run's logs stay in the customer's bucket, beside its metadata.
        let destination = match self.relay_bucket(&admitted) {
            Some(Ok(bucket)) => Some(LogDestination::Bucket(bucket)),
            Some(Err(e)) => {
                tracing::error!(job = %id, "the relay bucket cannot be opened for the run's logs: {e}");
                None
            }
            None => Some(LogDestination::ControlPlane),
        };
        if let Some(destination) = destination {
            let ids = RunIds {
                connection: &admitted.connection,
                job_id: &id,
                run_id: &admitted.run_id,
            };
            let name = format!("local-{}", self.claimant);
            match ship_logs(&self.client, &destination, ids, &name, logs).await {
                Ok(_) => {}
                Err(ReportError::ControlPlane(e)) => return Err(e),
                Err(ReportError::Bucket(e)) => {
                    tracing::error!(job = %id, "the run's logs could not be written to the relay bucket: {e}");
                }
            }
        }
        self.client
            .report_status(
                &id,
                &StatusReport {
                    run_id: admitted.run_id.clone(),
                    state,
                    workflow: Some(runner),
                    message,
                },
            )
            .await?;
        if let (Some(nonce), Some(store)) = (&nonce, &self.nonces)
            && let Err(problem) = store.finish(nonce, SystemTime::now())
        {
            // The job ran and was reported; only a second copy of it could now run again.
            tracing::error!(job = %id, "cannot mark the job's nonce as used: {problem}");
        }
        Ok(())
    }

    /// Reports `rejection` as the job's final status.
    async fn reject(
        &self,
        id: &str,
        run_id: String,
        rejection: &Rejection,
        summary: &mut PollSummary,
    ) -> Result<(), ControlPlaneError> {
        tracing::warn!(job = %id, "{rejection}");
        self.client
            .report_status(
                id,
                &StatusReport {
                    run_id,
                    state: JobState::Rejected,
                    workflow: None,
                    message: Some(redact(&rejection.to_string(), &[])),
                },
            )
            .await?;
        summary.rejected += 1;
        Ok(())
    }

    /// The relay bucket, when the job is delivered by bucket relay.
    fn relay_bucket(
        &self,
        job: &AdmittedJob,
    ) -> Option<Result<delivery::bucket::Bucket, delivery::DeliveryError>> {
        let to = self.delivery.to.as_deref()?;
        if job.transfer_mode != TransferMode::BucketRelay {
            return None;
        }
        let settings = delivery::bucket::StoreSettings {
            endpoint: self.delivery.endpoint.clone(),
            region: self.delivery.region.clone(),
            azure_account: self.delivery.azure_account.clone(),
            credentials_dir: self.delivery.credentials_dir.clone(),
            sse_kms_key_id: self.delivery.sse_kms_key_id.clone(),
            ca_bundle: self.delivery.ca_bundle.clone(),
            ..Default::default()
        };
        Some(
            delivery::bucket::BucketUrl::parse(to)
                .and_then(|url| delivery::bucket::Bucket::open(&url, &settings)),
        )
    }

    async fn run_job(
        &self,
        job: &AdmittedJob,
        secrets_dir: Option<PathBuf>,
        log: &mut JobLog,
    ) -> Result<String, String> {
        let staging = tempfile::Builder::new()
            .prefix("outpost-job-")
            .tempdir()
            .map_err(|e| format!("cannot create a staging folder: {e}"))?;
        let out = staging.path().join("out");
        let descriptor = self
            .descriptors
            .iter()
            .find(|d| d.name() == job.connector)
            .cloned()
            .ok_or_else(|| format!("unknown connector `{}`", job.connector))?;
        let extract_args = ExtractArgs {
            connector: job.connector.clone(),
            params: Vec::new(),
            secrets_dir,
            out: out.clone(),
            connection: Some(job.connection.clone()),
            job_id: Some(job.id.clone()),
            run_id: Some(job.run_id.clone()),
            connectors: None,
            part_size_mib: 64,
            outcome_file: None,
        };
        let parameters: Vec<(String, String)> = job.arguments.clone().into_iter().collect();
        let manifest = extract(&extract_args, &descriptor, parameters, false)
            .await
            .map_err(|e| format!("extract: {} (exit code {})", cause_chain(&e), e.exit_code()))?;
        log.line(format!("extracted: {:?}", manifest.totals));
        let mut delivery = self.delivery.clone();
        delivery.transfer_mode = Some(job.transfer_mode);
        delivery.direct = false;
        let identity = RunIdentityArgs {
            connector: &job.connector,
            connection: &job.connection,
            job_id: &job.id,
            run_id: &job.run_id,
        };
        let report = upload(&out, identity, &delivery, false)
            .await
            .map_err(|e| {
                format!(
                    "deliver: {} (exit code {})",
                    delivery::redact_urls(&e.to_string()),
                    e.exit_code()
                )
            })?;
        Ok(format!(
            "delivered {} files, {} bytes; manifest {}",
            report.files, report.bytes, report.manifest
        ))
    }
}

/// What the runner writes about one job: shipped as the job's logs.
#[derive(Default)]
struct JobLog {
    text: String,
}

impl JobLog {
    fn line(&mut self, line: String) {
        self.text.push_str(&rfc3339(SystemTime::now()));
        self.text.push(' ');
        self.text.push_str(&line);
        self.text.push('\n');
    }
}

/// The values of the files in a connection's secrets folder, to mask by value.
fn secret_values(dir: Option<&std::path::Path>) -> Vec<String> {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}
