//! Local mode's executor in the tick's loop, against the reference control plane, with a
//! fake in-process runner: the loop admits, rejects and counts as the cluster's does, and
//! the executor reports `running` then the final status, ships logs with the connection's
//! secret values masked, admits `localOnly` connectors, and keeps signed jobs' nonces in its
//! state folder. A job that fails on the way is left for a later poll, as a tick leaves it.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use agent::local::{JobLog, JobRunner, LocalExecutor, RunFuture};
use agent::nonce_store::NonceStore;
use connector_descriptor::ValidatedDescriptor;
use control_plane::api::JobState;
use control_plane::server::JobSigner;
use control_plane::test_support::{AGENT, TestServer};
use orchestrator::AdmittedJob;
use serde_json::{Value, json};

/// A secret value in the failing connection's folder, which the fake runner's error quotes.
const CANARY: &str = "canary-5f1d0c-secret";

/// Succeeds, except for `job-fails`, whose error quotes the connection's password file.
struct FakeRunner;

impl JobRunner for FakeRunner {
    fn run<'a>(
        &'a self,
        job: &'a AdmittedJob,
        descriptor: &'a ValidatedDescriptor,
        secrets_dir: Option<PathBuf>,
        log: &'a mut JobLog,
    ) -> RunFuture<'a> {
        Box::pin(async move {
            log.line(format!("fake run of {} ({})", job.id, descriptor.name()));
            if job.id == "job-fails" {
                let dir = secrets_dir.ok_or("no secrets folder")?;
                let value = std::fs::read_to_string(dir.join("password"))
                    .map_err(|e| format!("reading the password: {e}"))?;
                return Err(format!("the source answered `{}`", value.trim()));
            }
            Ok("delivered 1 file".to_owned())
        })
    }
}

fn executor(server: &TestServer, secrets_root: PathBuf) -> LocalExecutor {
    LocalExecutor {
        client: server.client(),
        claimant: "laptop-1".to_owned(),
        lease: Duration::from_secs(60),
        descriptors: support::descriptors(),
        signing_key: None,
        agent_id: AGENT.to_owned(),
        insecure_options: vec!["insecureUnsignedJobs".to_owned()],
        nonces: None,
        secrets_root: Some(secrets_root),
        relay: None,
        runner: Box::new(FakeRunner),
    }
}

fn job(id: &str, connector: &str, connection: &str, mode: &str) -> Value {
    json!({
        "id": id, "runId": "run-1", "connector": connector, "connection": connection,
        "transferMode": mode, "parameters": {}
    })
}

/// Every job's state and message, by id.
async fn states(server: &TestServer) -> BTreeMap<String, (JobState, Option<String>)> {
    let records = server.records().await.jobs;
    records
        .into_iter()
        .map(|r| (r.status.job_id, (r.status.state, r.status.message)))
        .collect()
}

#[tokio::test]
async fn one_poll_runs_rejects_and_reports_each_job_once() {
    let server = TestServer::start(|_| {}).await;
    let secrets = tempfile::tempdir().expect("secrets");
    let failing = secrets.path().join("pg-failing");
    std::fs::create_dir_all(&failing).expect("connection folder");
    std::fs::write(failing.join("password"), format!("{CANARY}\n")).expect("password");

    server
        .enqueue(job("job-ok", "postgres", "pg-prod", "direct-ingestion"))
        .await;
    server
        .enqueue(job(
            "job-fails",
            "postgres",
            "pg-failing",
            "direct-ingestion",
        ))
        .await;
    // A connector that runs only on this machine: admitted here, unlike in a cluster.
    server
        .enqueue(job("job-sqlite", "sqlite", "local-db", "direct-ingestion"))
        .await;
    // No relay bucket is configured, so bucket relay cannot be served.
    server
        .enqueue(job("job-relay", "postgres", "pg-prod", "bucket-relay"))
        .await;
    let mut injected = job("job-injected", "postgres", "pg-prod", "direct-ingestion");
    injected["image"] = json!("evil/image:latest");
    server.enqueue(injected).await;

    let local = executor(&server, secrets.path().to_owned());
    let summary = local.poll_once(None).await.expect("poll");
    assert_eq!(
        (
            summary.succeeded,
            summary.failed,
            summary.rejected,
            summary.skipped
        ),
        (2, 1, 2, 0),
        "{summary:?}"
    );
    assert!(summary.failures.is_empty(), "{summary:?}");
    assert_eq!((summary.submitted, summary.already_submitted), (0, 0));

    let states = states(&server).await;
    let state = |id: &str| states.get(id).cloned().expect("the job");
    assert_eq!(state("job-ok").0, JobState::Succeeded);
    assert_eq!(state("job-sqlite").0, JobState::Succeeded);
    let (failed, message) = state("job-fails");
    assert_eq!(failed, JobState::Failed);
    let message = message.expect("the problem is reported");
    assert!(
        message.contains("the source answered") && !message.contains(CANARY),
        "the secret value is masked: {message}"
    );
    let (relay, message) = state("job-relay");
    assert_eq!(relay, JobState::Rejected, "{message:?}");
    let (injected, message) = state("job-injected");
    assert_eq!(injected, JobState::Rejected);
    assert!(message.is_some_and(|m| m.contains("`image`")));

    // Logs go to the control plane (no relay bucket), masked by value too.
    let (code, logs) = server.logs("job-fails", "run-1").await;
    assert_eq!(code, 200);
    let logs = String::from_utf8_lossy(&logs);
    assert!(
        logs.contains("fake run of job-fails") && logs.contains("failed:"),
        "{logs}"
    );
    assert!(!logs.contains(CANARY), "{logs}");
    let heartbeats = server.heartbeats().await;
    assert_eq!(heartbeats.len(), 1, "a heartbeat before the poll");
    assert_eq!(heartbeats[0].insecure_options, ["insecureUnsignedJobs"]);

    // A second poll finds nothing left to do.
    let again = local.poll_once(None).await.expect("poll");
    assert_eq!(again, agent::tick::TickSummary::default());
}

#[tokio::test]
async fn a_signed_job_whose_nonce_cannot_be_recorded_is_left_for_a_later_poll() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let server =
        TestServer::start(|config| config.signing_key = Some(JobSigner::new(key.clone()))).await;
    server
        .enqueue(job("job-signed", "postgres", "pg-prod", "direct-ingestion"))
        .await;
    let secrets = tempfile::tempdir().expect("secrets");
    let mut local = executor(&server, secrets.path().to_owned());
    local.signing_key = Some(key.verifying_key());
    local.lease = Duration::from_secs(1);

    // No state folder: the job cannot run without its nonce on record, and nothing is
    // reported for it (its lease lapses, or this claimant takes it again).
    let summary = local.poll_once(None).await.expect("poll");
    assert_eq!(summary.failures.len(), 1, "{summary:?}");
    assert!(
        summary.failures[0].contains("no state folder"),
        "{summary:?}"
    );
    assert_eq!(states(&server).await["job-signed"].0, JobState::Claimed);

    // With one, the next poll (once the lease lapsed) runs it and records its nonce as
    // finished.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let state = tempfile::tempdir().expect("state");
    local.nonces = Some(NonceStore::open(state.path()).expect("store"));
    let summary = local.poll_once(None).await.expect("poll");
    assert_eq!(summary.succeeded, 1, "{summary:?}");
    assert_eq!(states(&server).await["job-signed"].0, JobState::Succeeded);
    let record =
        std::fs::read_to_string(state.path().join("seen-nonces.json")).expect("nonce record");
    assert!(record.contains("\"finished\": true"), "{record}");
}
