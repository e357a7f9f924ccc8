//! Finding M1 (security issue 13), in the cluster: a job signed for one agent, copied to
//! another control plane and queued for another agent, was admitted and run, because the
//! signature covered no agent, no expiry and no nonce. Each test replays the reproduction
//! with two real reference control planes (A signs its jobs; B, a copy made by whoever
//! holds the jobs, signs nothing and serves what it is given) and the orchestrator's tick
//! against the fake Kubernetes API, and shows the job is now rejected, with its reason
//! reported to the control plane that handed it out, and no Workflow created. Each has a
//! control case showing a properly signed job for this agent still runs.

mod support;

use std::time::{Duration, SystemTime};

use agent::kubernetes::Namespace;
use agent::tick::{TickConfig, tick};
use control_plane::api::JobState;
use control_plane::server::JobSigner;
use control_plane::test_support::{AGENT, TestServer};
use serde_json::{Value, json};
use support::fake_kube::FakeKube;

fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[11u8; 32])
}

fn job(id: &str) -> Value {
    json!({
        "id": id, "runId": "run-1", "connector": "postgres", "connection": "pg-prod",
        "transferMode": "direct-ingestion",
        "parameters": { "include-schemas": "^public$" }
    })
}

/// Control plane A: signs every job it queues.
async fn signing_server() -> TestServer {
    TestServer::start(|config| config.signing_key = Some(JobSigner::new(signing_key()))).await
}

/// Queues `job` on `server` for `agent` through the operator API.
async fn enqueue_for(server: &TestServer, agent: &str, job: Value) {
    let (status, body) = server
        .admin(
            reqwest::Method::POST,
            "admin/v1/jobs",
            Some(json!({ "agentId": agent, "job": job })),
        )
        .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
}

/// The job `id` as `server` hands it out (signed, when the server signs).
async fn queued(server: &TestServer, id: &str) -> Value {
    server
        .records()
        .await
        .jobs
        .into_iter()
        .find(|r| r.status.job_id == id)
        .map(|r| r.job)
        .unwrap_or_else(|| panic!("no job {id}"))
}

async fn status(server: &TestServer, id: &str) -> (JobState, Option<String>) {
    let record = server
        .records()
        .await
        .jobs
        .into_iter()
        .find(|r| r.status.job_id == id)
        .unwrap_or_else(|| panic!("no job {id}"));
    (record.status.state, record.status.message)
}

fn fake() -> FakeKube {
    let fake = FakeKube::default();
    fake.install_template(support::committed_template("postgres"));
    support::restrict_templates(&fake);
    fake
}

/// The tick of the agent `AGENT`, pinning A's public key.
fn config() -> TickConfig {
    let mut config = TickConfig::new("tick-1", support::descriptors());
    config.signing_key = Some(signing_key().verifying_key());
    config.agent_id = Some(AGENT.to_owned());
    config
}

async fn run_tick(server: &TestServer, fake: &FakeKube) -> agent::tick::TickSummary {
    tick(
        &server.client(),
        &Namespace::new(fake.client("outpost"), "outpost"),
        &config(),
    )
    .await
    .expect("tick")
}

#[tokio::test]
async fn m1_a_job_signed_for_another_agent_is_rejected() {
    let a = signing_server().await;
    let b = TestServer::start(|_| {}).await;
    // The reproduction: A signs a job for agent-a; the signed job is copied to B and
    // queued there for this agent.
    enqueue_for(&a, "agent-a", job("job-for-a")).await;
    let signed = queued(&a, "job-for-a").await;
    assert_eq!(signed["agentId"], "agent-a", "A signed it for agent-a");
    b.enqueue(signed).await;

    let fake = fake();
    let summary = run_tick(&b, &fake).await;
    assert_eq!((summary.rejected, summary.submitted), (1, 0), "{summary:?}");
    assert!(fake.workflows().is_empty(), "nothing was submitted");
    let (state, message) = status(&b, "job-for-a").await;
    assert_eq!(state, JobState::Rejected);
    let message = message.expect("the reason is reported");
    assert!(
        message.contains("signed for agent `agent-a`, and this agent is `agent-1`"),
        "{message}"
    );

    // Changing `agentId` on the copy breaks the signature: the field is signed.
    let mut retargeted = queued(&a, "job-for-a").await;
    retargeted["id"] = json!("job-retargeted");
    retargeted["agentId"] = json!(AGENT);
    b.enqueue(retargeted).await;
    run_tick(&b, &fake).await;
    let (state, message) = status(&b, "job-retargeted").await;
    assert_eq!(state, JobState::Rejected);
    assert!(
        message
            .as_deref()
            .unwrap_or_default()
            .contains("signature does not match"),
        "{message:?}"
    );

    // Control: the same kind of job, signed by A for this agent, runs.
    enqueue_for(&a, AGENT, job("job-for-me")).await;
    let summary = run_tick(&a, &fake).await;
    assert_eq!(summary.submitted, 1, "{summary:?}");
    assert_eq!(fake.workflows().len(), 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn m1_an_expired_job_is_rejected() {
    let a = signing_server().await;
    // The reproduction: a job signed long ago (its notAfter an hour past) handed out now.
    let mut old = job("job-old");
    old["notAfter"] = json!(orchestrator::signing::rfc3339(
        SystemTime::now() - Duration::from_secs(3600)
    ));
    enqueue_for(&a, AGENT, old).await;
    // Within the clock skew: still admitted.
    let mut recent = job("job-just-expired");
    recent["notAfter"] = json!(orchestrator::signing::rfc3339(
        SystemTime::now() - Duration::from_secs(60)
    ));
    enqueue_for(&a, AGENT, recent).await;
    // Beyond what the agent remembers nonces for: refused too.
    let mut far = job("job-far");
    far["notAfter"] = json!(orchestrator::signing::rfc3339(
        SystemTime::now() + Duration::from_secs(7 * 24 * 3600)
    ));
    enqueue_for(&a, AGENT, far).await;

    let fake = fake();
    let summary = run_tick(&a, &fake).await;
    assert_eq!((summary.rejected, summary.submitted), (2, 1), "{summary:?}");
    let (state, message) = status(&a, "job-old").await;
    assert_eq!(state, JobState::Rejected);
    let message = message.expect("the reason is reported");
    assert!(
        message.contains("the job expired at") && message.contains("clock skew"),
        "{message}"
    );
    let (state, message) = status(&a, "job-far").await;
    assert_eq!(state, JobState::Rejected);
    assert!(
        message
            .as_deref()
            .unwrap_or_default()
            .contains("remembers a job's nonce only that long"),
        "{message:?}"
    );
    assert_eq!(status(&a, "job-just-expired").await.0, JobState::Submitted);
    assert_eq!(fake.workflows().len(), 1);
    a.stop().await;
}

#[tokio::test]
async fn m1_a_replayed_nonce_is_rejected() {
    let a = signing_server().await;
    let b = TestServer::start(|_| {}).await;
    let fake = fake();
    enqueue_for(&a, AGENT, job("job-1")).await;
    let first = run_tick(&a, &fake).await;
    assert_eq!(first.submitted, 1, "{first:?}");
    let signed = queued(&a, "job-1").await;
    let nonce = signed["nonce"].as_str().expect("a nonce").to_owned();
    // The nonce is on the Workflow: the durable record of what ran.
    let workflows = fake.workflows();
    assert_eq!(workflows.len(), 1);
    assert_eq!(
        workflows[0]["metadata"]["annotations"]["outpost.dev/nonce"],
        nonce.as_str()
    );
    assert!(
        workflows[0]["metadata"]["labels"]["outpost.dev/nonce-sha256"].is_string(),
        "{:#}",
        workflows[0]["metadata"]
    );

    // The reproduction, once: the very same signed job handed out again (by a copy of the
    // control plane) meets its own Workflow, and nothing runs a second time.
    b.enqueue(signed.clone()).await;
    let again = run_tick(&b, &fake).await;
    assert_eq!(
        (again.submitted, again.already_submitted),
        (0, 1),
        "{again:?}"
    );
    assert_eq!(fake.workflows().len(), 1, "still one Workflow");

    // And twice: another job carrying that nonce (a signer reusing nonces) is refused.
    let mut reuse = job("job-2");
    orchestrator::signing::sign(
        &mut reuse,
        &signing_key(),
        AGENT,
        SystemTime::now() + Duration::from_secs(600),
        &nonce,
    );
    b.enqueue(reuse).await;
    let replayed = run_tick(&b, &fake).await;
    assert_eq!(
        (replayed.rejected, replayed.submitted),
        (1, 0),
        "{replayed:?}"
    );
    assert_eq!(fake.workflows().len(), 1, "nothing more was submitted");
    let (state, message) = status(&b, "job-2").await;
    assert_eq!(state, JobState::Rejected);
    let message = message.expect("the reason is reported");
    assert!(
        message.contains("replayed nonce") && message.contains("already used by job `job-1`"),
        "{message}"
    );

    // Two jobs with one nonce in the same poll: the second is refused before either
    // Workflow exists.
    let c = TestServer::start(|_| {}).await;
    let shared = orchestrator::signing::new_nonce();
    for id in ["job-3", "job-4"] {
        let mut twin = job(id);
        orchestrator::signing::sign(
            &mut twin,
            &signing_key(),
            AGENT,
            SystemTime::now() + Duration::from_secs(600),
            &shared,
        );
        c.enqueue(twin).await;
    }
    // Both are handled at once (the tick's default concurrency).
    let twins = run_tick(&c, &fake).await;
    assert_eq!((twins.submitted, twins.rejected), (1, 1), "{twins:?}");
    assert_eq!(fake.workflows().len(), 2);
    a.stop().await;
    b.stop().await;
    c.stop().await;
}
