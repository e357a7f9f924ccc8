//! Fault tests, each deterministic: a crash between submitting and reporting, control-plane
//! timeouts, a name conflict with another job's Workflow; and the heartbeat and the exit
//! handler against a reachable and an unreachable API server.

mod support;

use std::time::Duration;

use agent::heartbeat::HeartbeatConfig;
use agent::kubernetes::Namespace;
use agent::report::{LogDestination, Reported, RunReport, report};
use agent::tick::{TickConfig, TickError, tick};
use control_plane::api::JobState;
use control_plane::test_support::{TestServer, job};
use control_plane::{ClientConfig, ControlPlaneClient, ControlPlaneError};
use outpost_core::RunIdentity;
use serde_json::{Value, json};
use support::fake_kube::FakeKube;

fn fake() -> FakeKube {
    let fake = FakeKube::default();
    fake.install_template(support::committed_template("postgres"));
    support::restrict_templates(&fake);
    fake
}

fn quick_client(server: &TestServer, timeout: Duration) -> ControlPlaneClient {
    let mut config = ClientConfig::new(server.url.clone(), server.agent_token_file());
    config.attempts = 2;
    config.initial_backoff = Duration::from_millis(10);
    config.timeout = timeout;
    ControlPlaneClient::new(config).expect("client")
}

#[tokio::test]
async fn a_crash_between_submit_and_report_is_healed_by_the_next_tick() {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job("job-1")).await;
    let fake = fake();
    // First tick: the Workflow is created, then every status report fails — as if the pod
    // died right after submitting.
    server.faults.lock().expect("lock").fail_paths = vec!["/status".to_owned()];
    let mut config = TickConfig::new("tick-1", support::descriptors());
    config.lease = Duration::from_secs(1);
    let first = tick(
        &quick_client(&server, Duration::from_secs(5)),
        &Namespace::new(fake.client("outpost"), "outpost"),
        &config,
    )
    .await
    .expect("tick runs");
    assert_eq!(first.failures.len(), 1, "{first:?}");
    assert_eq!(fake.workflows().len(), 1);
    assert_eq!(
        server.records().await.jobs[0].status.state,
        JobState::Claimed
    );

    // The control plane recovers; once the lease lapses another tick finds the Workflow.
    server.faults.lock().expect("lock").fail_paths.clear();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let config = TickConfig::new("tick-2", support::descriptors());
    let second = tick(
        &server.client(),
        &Namespace::new(fake.client("outpost"), "outpost"),
        &config,
    )
    .await
    .expect("tick");
    assert_eq!(
        (second.submitted, second.already_submitted),
        (0, 1),
        "{second:?}"
    );
    assert_eq!(fake.workflows().len(), 1, "still one Workflow");
    let record = &server.records().await.jobs[0];
    assert_eq!(record.status.state, JobState::Submitted);
    assert_eq!(record.claims, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_control_plane_that_times_out_gets_nothing_submitted() {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job("job-1")).await;
    server.faults.lock().expect("lock").delay = Duration::from_millis(500);
    let fake = fake();
    let config = TickConfig::new("tick-1", support::descriptors());
    let result = tick(
        &quick_client(&server, Duration::from_millis(100)),
        &Namespace::new(fake.client("outpost"), "outpost"),
        &config,
    )
    .await;
    match result {
        Err(TickError::ControlPlane(e @ ControlPlaneError::Unreachable { .. })) => {
            assert_eq!(e.exit_code(), outpost_core::ExitCode::Temporary);
            assert!(e.to_string().contains("timed out"), "{e}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(fake.workflows().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_workflow_of_the_same_name_from_another_job_is_not_taken_for_ours() {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job("job-1")).await;
    let fake = fake();
    let config = TickConfig::new("tick-1", support::descriptors());
    let namespace = Namespace::new(fake.client("outpost"), "outpost");
    // A stranger's Workflow already holds the name this job's Workflow would get.
    let admitted = orchestrator::admit(
        &job("job-1"),
        &support::descriptors(),
        &orchestrator::AdmissionPolicy::default(),
    )
    .expect("admitted");
    let name = orchestrator::workflow_name(&admitted);
    fake.seed_workflow(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": { "name": name, "namespace": "outpost", "annotations": { "outpost.dev/job-id": "someone-else", "outpost.dev/run-id": "run-9" } },
        "spec": {}
    }));
    let summary = tick(&server.client(), &namespace, &config)
        .await
        .expect("tick");
    assert_eq!(
        summary.submitted + summary.already_submitted,
        0,
        "{summary:?}"
    );
    assert_eq!(summary.failures.len(), 1);
    assert!(
        summary.failures[0].contains("belongs to another job"),
        "{:?}",
        summary.failures
    );
    assert_eq!(
        server.records().await.jobs[0].status.state,
        JobState::Claimed,
        "not reported as submitted"
    );
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_say_what_the_agent_can_reach() {
    let server = TestServer::start(|_| {}).await;
    let fake = fake();
    for (name, component, phase, finished) in [
        ("outpost-postgres-1", "connector", "Running", None),
        ("outpost-postgres-2", "connector", "Running", None),
        (
            "outpost-orchestrator-a",
            "orchestrator",
            "Succeeded",
            Some("2026-11-26T07:00:00Z"),
        ),
        (
            "outpost-orchestrator-b",
            "orchestrator",
            "Succeeded",
            Some("2026-11-26T07:05:00Z"),
        ),
    ] {
        fake.seed_workflow(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": { "name": name, "namespace": "outpost", "labels": {
                "app.kubernetes.io/managed-by": "outpost", "app.kubernetes.io/component": component,
                "workflows.argoproj.io/phase": phase } },
            "status": { "phase": phase, "finishedAt": finished }
        }));
    }
    let observed = agent::heartbeat::send(
        &server.client(),
        &Namespace::new(fake.client("outpost"), "outpost"),
        &HeartbeatConfig::new("agent-1"),
    )
    .await
    .expect("sent");
    let beat = &observed.heartbeat;
    assert!(beat.kubernetes_reachable && beat.argo_reachable);
    // The fake's Argo enforces template referencing (M6): observed, nothing to warn about.
    assert_eq!(observed.argo_restricts_templates(), "true");
    assert!(observed.warnings.is_empty(), "{:?}", observed.warnings);
    assert_eq!(beat.running_workflows, Some(2));
    assert_eq!(
        beat.last_successful_poll.as_deref(),
        Some("2026-11-26T07:05:00Z")
    );

    let mut down = FakeKube::default();
    down.down = true;
    let observed = agent::heartbeat::send(
        &server.client(),
        &Namespace::new(down.client("outpost"), "outpost"),
        &HeartbeatConfig::new("agent-1"),
    )
    .await
    .expect("a heartbeat is sent even when the API server is down");
    let beat = &observed.heartbeat;
    assert!(!beat.kubernetes_reachable && !beat.argo_reachable);
    assert_eq!(observed.argo_restricts_templates(), "unknown");
    assert_eq!(observed.warnings.len(), 1, "{:?}", observed.warnings);
    assert_eq!(beat.running_workflows, None);
    assert_eq!(server.heartbeats().await.len(), 2);
    server.stop().await;
}

/// What the exit handler finds: job-1 claimed (the orchestrator claimed it before it
/// submitted the Workflow being reported), its Workflow `outpost-postgres-abc` with `status`,
/// and one pod of it whose containers logged `logs`.
async fn finished_run(status: Value, logs: &[(&str, &str)]) -> (TestServer, FakeKube) {
    let server = TestServer::start(|_| {}).await;
    server.enqueue_claimed(job("job-1"), "tick-a").await;
    let fake = fake();
    fake.seed_workflow(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": { "name": "outpost-postgres-abc", "namespace": "outpost" },
        "status": status
    }));
    fake.add_pod("outpost-postgres-abc", "outpost-postgres-abc-run-1", logs);
    (server, fake)
}

/// The exit handler's report of that run, ended `argo_status`, its logs to `destination`.
async fn report_run(
    server: &TestServer,
    fake: &FakeKube,
    argo_status: &str,
    destination: &LogDestination,
) -> Reported {
    let run = RunReport {
        run: RunIdentity::new("postgres", "pg-prod", "job-1", "run-1").expect("ids"),
        workflow: "outpost-postgres-abc".to_owned(),
        argo_status: argo_status.to_owned(),
    };
    report(
        &server.client(),
        &Namespace::new(fake.client("outpost"), "outpost"),
        &run,
        destination,
    )
    .await
    .expect("reported")
}

#[tokio::test]
async fn the_exit_handler_ships_redacted_logs_then_the_final_status() {
    let (server, fake) = finished_run(
        json!({ "phase": "Failed", "message": "child 'outpost-postgres-abc-1' failed",
            "nodes": { "n1": { "type": "Pod", "phase": "Failed", "displayName": "run(0)",
                "message": "exit code 77: login refused for postgres://reader:CANARY-S3CRET@db/app" } } }),
        &[
            (
                "extract",
                "connecting to db.internal\nerror: password=CANARY-S3CRET rejected\n",
            ),
            (
                "upload",
                "uploading to https://bucket.s3.amazonaws.com/x?X-Amz-Signature=CANARY-SIG\n",
            ),
        ],
    )
    .await;
    let reported = report_run(&server, &fake, "Failed", &LogDestination::ControlPlane).await;
    assert_eq!(reported.state, JobState::Failed);
    let (status, logs) = server.logs("job-1", "run-1").await;
    assert_eq!(status, 200);
    let logs = String::from_utf8(logs).expect("utf-8");
    assert!(
        logs.contains("===== outpost-postgres-abc-run-1/extract =====")
            && logs.contains("connecting to db.internal"),
        "{logs}"
    );
    assert!(
        !logs.contains("wait"),
        "Argo's wait container is not shipped: {logs}"
    );
    let record = &server.records().await.jobs[0];
    let message = record.status.message.clone().expect("message");
    assert!(message.contains("run(0): exit code 77"), "{message}");
    for canary in ["CANARY-S3CRET", "CANARY-SIG"] {
        assert!(!logs.contains(canary), "{canary} in logs: {logs}");
        assert!(!message.contains(canary), "{canary} in message: {message}");
    }
    assert_eq!(record.status.state, JobState::Failed);
    server.stop().await;
}

#[tokio::test]
async fn in_bucket_relay_mode_the_logs_go_to_the_relay_bucket() {
    delivery::install_crypto_provider();
    let (server, fake) = finished_run(
        json!({ "phase": "Succeeded" }),
        &[("extract", "extracted 3 tables; token=CANARY-T0KEN\n")],
    )
    .await;
    let folder = tempfile::tempdir().expect("dir");
    let url =
        delivery::bucket::BucketUrl::parse(&format!("file://{}/relay", folder.path().display()))
            .expect("url");
    let bucket = delivery::bucket::Bucket::open(&url, &delivery::bucket::StoreSettings::default())
        .expect("bucket");
    let reported = report_run(&server, &fake, "Succeeded", &LogDestination::Bucket(bucket)).await;
    assert_eq!(reported.state, JobState::Succeeded);
    let file = folder
        .path()
        .join("relay/_logs/pg-prod/job-1/run-1/outpost-postgres-abc.log");
    let logs = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        logs.contains("extracted 3 tables") && !logs.contains("CANARY-T0KEN"),
        "{logs}"
    );
    // The control plane got the status, not the logs.
    let (status, _) = server.logs("job-1", "run-1").await;
    assert_eq!(status, 404);
    assert_eq!(
        server.records().await.jobs[0].status.state,
        JobState::Succeeded
    );
    server.stop().await;
}
