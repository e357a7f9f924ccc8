//! Local mode's executor for the loop of [`crate::tick`] (`outpost run --control-plane`),
//! for sites without Kubernetes: jobs are polled, claimed, admitted and checked for replays
//! exactly as the orchestrator does (same loop, same descriptors, same rules, same
//! signature check), and each admitted job runs in this process. The heartbeat goes first,
//! before every poll.
//!
//! What this executor owns:
//! - placement: bucket relay is possible when a relay bucket is configured
//!   ([`LocalExecutor::relay`]), and `localOnly` connectors are admitted;
//! - the nonce record: a file in the state folder ([`NonceStore`]); a signed job's nonce is
//!   recorded before the job runs and marked finished once its final status was reported;
//! - running a job: it is reported `running`, run by a [`JobRunner`] (extract, then
//!   deliver) while its lease is renewed every third of the lease, its logs (redacted,
//!   the connection's secret values masked by value) go to the relay bucket for bucket
//!   relay or to the control plane otherwise ([`crate::report::ship_logs`]), and it is
//!   reported `succeeded` or `failed`.
//!
//! Leases keep two local runners off the same job; a runner that dies mid-job leaves a
//! lapsed lease, and the job runs again under the same run id, which delivery treats as a
//! no-op or a clean replacement.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use connector_descriptor::ValidatedDescriptor;
use control_plane::api::{Heartbeat, JobState, StatusReport, rfc3339};
use control_plane::{Claim, ControlPlaneClient, ControlPlaneError};
use futures_util::future::LocalBoxFuture;
use orchestrator::AdmittedJob;
use orchestrator::signing::{self, JobNonce};
use serde_json::Value;

use crate::nonce_store::NonceStore;
use crate::report::{LogDestination, ReportError, ship_logs};
use crate::tick::{Executor, Jobs, Outcome, TickSummary};
use outpost_core::redact::redact;

/// What a [`JobRunner`] answers: a line saying what it did, or the problem (redacted before
/// it is shipped). Not `Send`: local mode runs one job at a time, on the polling task.
pub type RunFuture<'a> = LocalBoxFuture<'a, Result<String, String>>;

/// Runs one admitted job in this process: extract, then deliver.
pub trait JobRunner: Send + Sync {
    /// Runs `job` with its connector's `descriptor`, reading the connection's secrets from
    /// `secrets_dir`; lines worth keeping go to `log`, which is shipped (redacted).
    fn run<'a>(
        &'a self,
        job: &'a AdmittedJob,
        descriptor: &'a ValidatedDescriptor,
        secrets_dir: Option<PathBuf>,
        log: &'a mut JobLog,
    ) -> RunFuture<'a>;
}

/// What the runner writes about one job: shipped as the job's logs.
#[derive(Debug, Default)]
pub struct JobLog {
    text: String,
}

impl JobLog {
    /// Adds a line, stamped with the time.
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(&rfc3339(SystemTime::now()));
        self.text.push(' ');
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }
}

/// The relay bucket (`--to`), which also takes the logs of bucket-relay runs.
#[derive(Clone, Debug)]
pub struct RelayBucket {
    /// Its URL (`s3://bucket/prefix`, `az://…`, `gs://…`, `file:///…`).
    pub url: String,
    /// How to reach it.
    pub settings: delivery::bucket::StoreSettings,
}

/// Local mode: one heartbeat and one poll at a time, each job run in this process.
pub struct LocalExecutor {
    /// The control plane.
    pub client: ControlPlaneClient,
    /// Who claims (host and process): reports and logs are sent as the lease holder.
    pub claimant: String,
    /// How long a claim holds; renewed every third of it while a job runs.
    pub lease: Duration,
    /// The descriptors jobs are admitted against.
    pub descriptors: Arc<Vec<ValidatedDescriptor>>,
    /// When set, only jobs signed with the matching key are admitted.
    pub signing_key: Option<ed25519_dalek::VerifyingKey>,
    /// This runner's id in heartbeats, and the agent a signed job must be signed for.
    pub agent_id: String,
    /// The `insecure…` options this runner was started with, reported in its heartbeats.
    pub insecure_options: Vec<String>,
    /// Where the nonces of signed jobs are kept; needed whenever `signing_key` is set.
    pub nonces: Option<NonceStore>,
    /// Folder holding one folder of secret files per connection, named after it.
    pub secrets_root: Option<PathBuf>,
    /// The relay bucket, when one is configured.
    pub relay: Option<RelayBucket>,
    /// Runs each admitted job.
    pub runner: Box<dyn JobRunner>,
}

/// What local mode is started with (`outpost run --control-plane`); [`LocalExecutor::new`]
/// adds its defaults.
pub struct LocalMode {
    /// The control plane polled.
    pub client: ControlPlaneClient,
    /// The descriptors jobs are admitted against.
    pub descriptors: Vec<ValidatedDescriptor>,
    /// Where and how runs are delivered; its bucket (`to`) is also the relay bucket.
    pub delivery: delivery::deliver::DeliverySettings,
    /// When set, only jobs signed with the matching key are admitted.
    pub signing_key: Option<ed25519_dalek::VerifyingKey>,
    /// Where signed jobs' nonces are kept (default: the user's state folder).
    pub state_dir: Option<PathBuf>,
    /// Folder holding one folder of secret files per connection, named after it.
    pub secrets_root: Option<PathBuf>,
    /// This runner's id; default `local`.
    pub agent_id: Option<String>,
    /// The `insecure…` options reported in heartbeats.
    pub insecure_options: Vec<String>,
    /// The agent's manifest-signing key file: each run's manifest is signed when given.
    pub manifest_signing_key: Option<PathBuf>,
    /// Catalog formats each run is also written in.
    pub exports: catalog_export::Exports,
}

impl LocalExecutor {
    /// Local mode as configured: runs jobs in this process, claims as
    /// [`LocalExecutor::default_claimant`] for an hour at a time, and keeps the nonces of
    /// signed jobs in the state folder (an error when it cannot be opened).
    pub fn new(mode: LocalMode) -> Result<Self, String> {
        let nonces =
            crate::nonce_store::for_signed_jobs(mode.signing_key.is_some(), mode.state_dir)?;
        let relay = (mode.delivery.to.clone()).map(|url| RelayBucket {
            url,
            settings: mode.delivery.store.clone(),
        });
        Ok(Self {
            runner: Box::new(crate::steps::InProcessRunner {
                settings: mode.delivery,
                control_plane: Some(mode.client.clone()),
                signing_key_file: mode.manifest_signing_key,
                exports: mode.exports,
            }),
            client: mode.client,
            claimant: Self::default_claimant(),
            lease: Duration::from_secs(3600),
            descriptors: Arc::new(mode.descriptors),
            signing_key: mode.signing_key,
            agent_id: mode.agent_id.unwrap_or_else(|| "local".to_owned()),
            insecure_options: mode.insecure_options,
            nonces,
            secrets_root: mode.secrets_root,
            relay,
        })
    }

    /// Who claims when no name is given: `<host>-<pid>`, unique among runners on one host.
    pub fn default_claimant() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
        format!("{host}-{}", std::process::id())
    }

    /// Polls every `interval` until interrupted (Ctrl-C), or once with `once`; `on_poll`
    /// sees each poll's summary. Jobs that fail on the way are logged and left for the next
    /// poll, as a tick leaves them for the next tick; with `once`, that is an error (75), as
    /// a failed poll is.
    pub async fn run(
        &self,
        interval: Duration,
        once: bool,
        on_poll: impl Fn(&TickSummary),
    ) -> Result<(), crate::entrypoints::EntrypointError> {
        let mut last_poll = None;
        loop {
            match self.poll_once(last_poll).await {
                Ok(summary) => {
                    last_poll = Some(SystemTime::now());
                    on_poll(&summary);
                    let checked = summary.check_left();
                    if once {
                        return checked.map(drop);
                    }
                }
                Err(e) if once => return Err(e.into()),
                Err(e) => tracing::error!("poll failed, trying again in {interval:?}: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }

    /// One heartbeat and one poll; every pending job is handled before it returns. Fails
    /// only when the heartbeat or the poll does; a job that fails on the way is left for a
    /// later poll and listed in [`TickSummary::failures`].
    pub async fn poll_once(
        &self,
        last_poll: Option<SystemTime>,
    ) -> Result<TickSummary, ControlPlaneError> {
        self.client
            .heartbeat(&Heartbeat {
                agent_id: self.agent_id.clone(),
                version: crate::version(),
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
        let mut summary = TickSummary::default();
        let jobs = Jobs {
            // Reports and logs are the lease holder's.
            control_plane: &self.client.with_claimant(&self.claimant),
            claimant: &self.claimant,
            lease: self.lease,
            // One job at a time: each runs in this process.
            concurrency: 1,
            page_size: 100,
            descriptors: &self.descriptors,
            signing_key: self.signing_key,
            agent_id: &self.agent_id,
            max_job_lifetime: signing::DEFAULT_MAX_LIFETIME,
        };
        jobs.run(self, &mut summary).await?;
        Ok(summary)
    }

    /// Where the run's logs go: beside its metadata in the relay bucket for bucket relay
    /// (they stay in the customer's infrastructure), else to the control plane. `None` when
    /// the relay bucket cannot be opened (logged).
    fn log_destination(&self, job: &AdmittedJob) -> Option<LogDestination> {
        let Some(relay) = &self.relay else {
            return Some(LogDestination::ControlPlane);
        };
        crate::entrypoints::log_destination(Some(&relay.url), Some(job.transfer_mode), &relay.settings)
            .inspect_err(|e| tracing::error!(job = %job.id, "the relay bucket cannot be opened for the run's logs: {e}"))
            .ok()
    }

    /// Runs `job`, renewing its lease meanwhile: a `running` job keeps its runner's lease,
    /// and one that lapses is taken for a dead runner's and offered to other runners.
    async fn run_renewing(
        &self,
        control_plane: &ControlPlaneClient,
        job: &AdmittedJob,
        secrets_dir: Option<PathBuf>,
        log: &mut JobLog,
    ) -> Result<String, String> {
        let Some(descriptor) = self.descriptors.iter().find(|d| d.name() == job.connector) else {
            return Err(format!("unknown connector `{}`", job.connector));
        };
        let renew = async {
            let every = (self.lease / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                match control_plane
                    .claim(&job.id, &self.claimant, self.lease)
                    .await
                {
                    Ok(Claim::Granted(_)) => {}
                    Ok(Claim::Refused { message, .. }) => {
                        tracing::warn!(job = %job.id, "lease not renewed: {message}");
                    }
                    Err(e) => tracing::warn!(job = %job.id, "lease not renewed: {e}"),
                }
            }
        };
        tokio::select! {
            outcome = self.runner.run(job, descriptor, secrets_dir, log) => outcome,
            _ = renew => unreachable!("renewing a lease never ends"),
        }
    }
}

impl Executor for LocalExecutor {
    const LOCAL: bool = true;

    async fn relay_configured(&self, _job: &Value) -> Result<bool, String> {
        Ok(self.relay.is_some())
    }

    /// Records the nonce in the state folder before the job runs; one of another job, or of
    /// a job that finished, is a replay.
    async fn seen_nonce(
        &self,
        job: &AdmittedJob,
        nonce: &JobNonce,
    ) -> Result<Option<String>, String> {
        let Some(store) = &self.nonces else {
            return Err("no state folder to record the job's nonce in".to_owned());
        };
        store
            .begin(nonce, &job.id, &job.run_id, SystemTime::now())
            .map_err(|problem| format!("cannot record the job's nonce: {problem}"))
    }

    /// Reports the job `running`, runs it, ships its logs and reports its final status;
    /// then marks its nonce finished.
    async fn execute(
        &self,
        control_plane: &ControlPlaneClient,
        job: &AdmittedJob,
        nonce: Option<&JobNonce>,
    ) -> Outcome {
        let id = &job.id;
        let runner = format!("local:{}", self.claimant);
        let report = |state, message| StatusReport {
            run_id: job.run_id.clone(),
            state,
            workflow: Some(runner.clone()),
            message,
        };
        if let Err(e) = control_plane
            .report_status(id, &report(JobState::Running, None))
            .await
        {
            return Outcome::Left(format!("job {id}: reporting it running: {e}"));
        }
        tracing::info!(job = %id, connector = %job.connector, connection = %job.connection, "running job");
        let mut log = JobLog::default();
        log.line(format!(
            "job {id} run {} connector {} connection {} mode {}",
            job.run_id,
            job.connector,
            job.connection,
            job.transfer_mode.as_str()
        ));
        let secrets_dir = self
            .secrets_root
            .as_ref()
            .map(|root| root.join(&job.connection));
        let outcome = self
            .run_renewing(control_plane, job, secrets_dir.clone(), &mut log)
            .await;
        let known_secrets = secret_values(secrets_dir.as_deref());
        let (state, message, counted) = match outcome {
            Ok(text) => {
                log.line(text);
                (JobState::Succeeded, None, Outcome::Succeeded)
            }
            Err(problem) => {
                log.line(format!("failed: {problem}"));
                let message = redact(&problem, &known_secrets);
                (JobState::Failed, Some(message), Outcome::Failed)
            }
        };
        let logs = redact(&log.text, &known_secrets);
        if let Some(destination) = self.log_destination(job) {
            let run = outpost_core::RunIdentity {
                connector: job.connector.clone(),
                connection: Some(job.connection.clone()),
                job_id: Some(id.to_owned()),
                run_id: Some(job.run_id.clone()),
            };
            let name = format!("local-{}", self.claimant);
            match ship_logs(control_plane, &destination, &run, &name, logs).await {
                Ok(_) => {}
                Err(ReportError::Bucket(e)) => {
                    tracing::error!(job = %id, "the run's logs could not be written to the relay bucket: {e}");
                }
                // A final status always has its logs: the job is left for a later poll.
                Err(e) => return Outcome::Left(format!("job {id}: shipping its logs: {e}")),
            }
        }
        if let Err(e) = control_plane
            .report_status(id, &report(state, message))
            .await
        {
            return Outcome::Left(format!("job {id}: reporting it {}: {e}", state.as_str()));
        }
        if let (Some(nonce), Some(store)) = (nonce, &self.nonces)
            && let Err(problem) = store.finish(nonce, SystemTime::now())
        {
            // The job ran and was reported; only a second copy of it could now run again.
            tracing::error!(job = %id, "cannot mark the job's nonce as used: {problem}");
        }
        counted
    }
}

/// The values of the files in a connection's secrets folder, to mask by value.
fn secret_values(dir: Option<&Path>) -> Vec<String> {
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
