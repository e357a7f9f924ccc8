//! Regression tests of the security review's findings on the control-plane API (issue 13),
//! each named after its finding and running its reproduction against the reference server
//! (in-process, on a loopback port) and the typed client: L1 (heartbeats), L2 (the tokens
//! file), L3 (final states and lease holders), L7 (error answers), M5 (a runner that died
//! while `running`) and M4 (the client's reads of hostile answers). The server's connection
//! limits (M3) are tested against the `outpost control-plane serve` process in
//! `crates/outpost/tests/control_plane_limits.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use control_plane::api::{
    CLAIMANT_HEADER, ErrorAnswer, Heartbeat, JobState, StatusReport, rfc3339,
};
use control_plane::test_support::{self, AGENT, AGENT_TOKEN, TestServer, raw_http_server};
use control_plane::{Claim, ClientConfig, ControlPlaneClient, ControlPlaneError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One raw agent call: status, content type and body.
async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, String, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .request(method, server.url.join(path).expect("path"))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, kind, response.bytes().await.expect("body").to_vec())
}

/// `GET /v1/jobs` with `token`: status, content type and body.
async fn list_jobs(server: &TestServer, token: &str) -> (u16, String, Vec<u8>) {
    call(server, reqwest::Method::GET, "v1/jobs", token, &[], None).await
}

/// One request over a raw connection, for bodies the server refuses before reading them
/// (an HTTP client may fail writing such a body before it reads the answer): the body is
/// written while the answer is read, and write errors are ignored. Answers status, content
/// type and body.
async fn raw(server: &TestServer, head: String, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let address = format!(
        "{}:{}",
        server.url.host_str().expect("host"),
        server.url.port().expect("port")
    );
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
        writer
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer)).await;
    writing.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let kind = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, kind, body.as_bytes().to_vec())
}

/// The documented error JSON's code, or a panic saying what came instead.
fn error_code(status: u16, kind: &str, body: &[u8]) -> String {
    assert!(
        kind.starts_with("application/json"),
        "HTTP {status} answered `{kind}`, not the error JSON: {}",
        String::from_utf8_lossy(body)
    );
    let answer: ErrorAnswer = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "HTTP {status}: not the error JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    answer.error.code
}

fn job(id: &str) -> Value {
    json!({
        "id": id, "runId": format!("run-{id}"), "connector": "postgres", "connection": "pg-prod",
        "transferMode": "direct-ingestion", "parameters": { "include-schemas": "^app$" }
    })
}

fn report(id: &str, state: JobState) -> StatusReport {
    StatusReport {
        run_id: format!("run-{id}"),
        state,
        workflow: Some(format!("local:{id}")),
        message: None,
    }
}

/// `client`'s report of `state` for job `id`, its answer dropped.
async fn reported(
    client: &ControlPlaneClient,
    id: &str,
    state: JobState,
) -> Result<(), ControlPlaneError> {
    client.report_status(id, &report(id, state)).await.map(drop)
}

/// Each of `answers` is a 409 with `code`; otherwise it was taken `when`.
fn assert_conflicts(
    answers: impl IntoIterator<Item = Result<(), ControlPlaneError>>,
    code: &str,
    when: &str,
) {
    for answer in answers {
        match answer {
            Err(ControlPlaneError::Answer {
                status: 409,
                code: refused,
                ..
            }) => assert_eq!(refused, code),
            other => panic!("taken {when}: {other:?}"),
        }
    }
}

/// The jobs offered to [`AGENT`] (ten at the most).
async fn offered(server: &TestServer) -> Vec<Value> {
    server.client().pending_jobs(10).await.expect("list")
}

/// `claim` was refused with `code`.
fn assert_claim_refused(claim: Claim, code: &str) {
    match claim {
        Claim::Refused { code: refused, .. } => assert_eq!(refused, code),
        other => panic!("{other:?}"),
    }
}

fn beat(agent: &str, sent_at: SystemTime) -> Heartbeat {
    Heartbeat {
        agent_id: agent.to_owned(),
        version: "test".to_owned(),
        kubernetes_reachable: true,
        argo_reachable: true,
        running_workflows: Some(0),
        last_successful_poll: None,
        sent_at: rfc3339(sent_at),
        argo_restricts_templates: None,
        insecure_options: Vec::new(),
    }
}

/// A second agent, `agent-b`, with its own token; answers its client.
fn add_agent_b(server: &TestServer) -> ControlPlaneClient {
    let tokens = server.dir.path().join("tokens");
    let mut text = std::fs::read_to_string(&tokens).expect("tokens");
    text.push_str("agent-b agent-b-token-0123456789\n");
    std::fs::write(&tokens, text).expect("tokens");
    let token_file = server.dir.path().join("agent-b-token");
    std::fs::write(&token_file, "agent-b-token-0123456789\n").expect("token");
    let mut config = ClientConfig::new(server.url.clone(), token_file);
    config.initial_backoff = Duration::from_millis(20);
    ControlPlaneClient::new(config).expect("client")
}

#[tokio::test]
async fn l1_a_heartbeat_for_another_agent_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let agent_b = add_agent_b(&server);
    // The reproduction: agent-b posts a heartbeat as agent-1.
    let forged = agent_b.heartbeat(&beat(AGENT, SystemTime::now())).await;
    assert!(
        matches!(
            forged,
            Err(ControlPlaneError::Unauthorized { status: 403, .. })
        ),
        "{forged:?}"
    );
    // Each agent may speak for itself.
    agent_b
        .heartbeat(&beat("agent-b", SystemTime::now()))
        .await
        .expect("agent-b as itself");
    server
        .client()
        .heartbeat(&beat(AGENT, SystemTime::now()))
        .await
        .expect("agent-1 as itself");
    let recorded: Vec<String> = server
        .heartbeats()
        .await
        .into_iter()
        .map(|b| b.agent_id)
        .collect();
    assert_eq!(recorded, ["agent-b", AGENT]);
    server.stop().await;
}

#[tokio::test]
async fn l1_a_heartbeat_sent_far_from_the_servers_clock_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let client = server.client();
    let now = SystemTime::now();
    for (sent_at, why) in [
        (now + Duration::from_secs(6 * 60), "ahead"),
        (now + Duration::from_secs(365 * 24 * 3600), "ahead"),
        (now - Duration::from_secs(11 * 60), "behind"),
        (SystemTime::UNIX_EPOCH, "behind"),
    ] {
        match client.heartbeat(&beat(AGENT, sent_at)).await {
            Err(ControlPlaneError::Answer {
                status: 400,
                code,
                message,
                ..
            }) => {
                assert_eq!(code, "invalid");
                assert!(message.contains(why), "{message}");
            }
            other => panic!("sentAt {} was taken: {other:?}", rfc3339(sent_at)),
        }
    }
    // Within the documented skew (5 minutes ahead, 10 behind) it is recorded.
    for sent_at in [
        now + Duration::from_secs(4 * 60),
        now - Duration::from_secs(9 * 60),
    ] {
        client
            .heartbeat(&beat(AGENT, sent_at))
            .await
            .expect("within the skew");
    }
    assert_eq!(server.heartbeats().await.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn l1_heartbeats_are_pruned_to_the_newest_per_agent() {
    let server = TestServer::start(|config| config.limits.heartbeats_kept = 3).await;
    let agent_b = add_agent_b(&server);
    let client = server.client();
    agent_b
        .heartbeat(&beat("agent-b", SystemTime::now()))
        .await
        .expect("agent-b");
    let mut sent = Vec::new();
    for i in 0..7u64 {
        let mut heartbeat = beat(AGENT, SystemTime::now());
        heartbeat.running_workflows = Some(i as u32);
        client.heartbeat(&heartbeat).await.expect("heartbeat");
        sent.push(heartbeat);
    }
    let kept = server.heartbeats().await;
    // agent-b's one heartbeat is not pruned by agent-1's; agent-1 keeps its newest three.
    assert_eq!(kept.len(), 4, "{kept:?}");
    assert_eq!(kept[0].agent_id, "agent-b");
    assert_eq!(kept[1..], sent[4..]);
    // And in the database itself, not only in the answer.
    let connection = rusqlite::Connection::open(&server.database).expect("db");
    let rows: i64 = connection
        .query_row("SELECT COUNT(*) FROM heartbeats", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 4);
    server.stop().await;
}

#[tokio::test]
async fn l2_a_comment_in_the_tokens_file_is_not_a_token() {
    let server = TestServer::start(|_| {}).await;
    // The reproduction: a disabled agent's line with a comment after it.
    std::fs::write(
        server.dir.path().join("tokens"),
        format!("{AGENT} {AGENT_TOKEN}\nagent-c  # disabled until onboarding\n"),
    )
    .expect("tokens");
    for token in ["# disabled until onboarding", "#"] {
        let (status, kind, body) = list_jobs(&server, token).await;
        assert_ne!(status, 200, "`{token}` was taken as a token");
        assert_eq!(error_code(status, &kind, &body), "unavailable");
    }
    // The broken line breaks the file: nobody is let in on a guess until it is fixed.
    let (status, _, _) = list_jobs(&server, AGENT_TOKEN).await;
    assert_eq!(status, 503);
    std::fs::write(
        server.dir.path().join("tokens"),
        format!("{AGENT} {AGENT_TOKEN}\n# agent-c is disabled until onboarding\n"),
    )
    .expect("tokens");
    let (status, _, _) = list_jobs(&server, AGENT_TOKEN).await;
    assert_eq!(status, 200);
    let (status, kind, body) = list_jobs(&server, "# agent-c is disabled until onboarding").await;
    assert_eq!(error_code(status, &kind, &body), "unauthorized");
    server.stop().await;
}

#[tokio::test]
async fn l2_a_short_token_in_the_tokens_file_is_refused_naming_the_file_and_line() {
    let server = TestServer::start(|_| {}).await;
    let tokens = server.dir.path().join("tokens");
    std::fs::write(&tokens, format!("{AGENT} {AGENT_TOKEN}\n\nagent-d short\n")).expect("tokens");
    let (status, _, _) = list_jobs(&server, "short").await;
    assert_eq!(status, 503, "a five-character token was taken");
    let config = control_plane::server::ServerConfig {
        tokens_file: tokens.clone(),
        admin_token_file: server.dir.path().join("admin-token"),
        signing_key: None,
        ingest_bucket: None,
        url_lifetime: Duration::from_secs(60),
        limits: Default::default(),
    };
    let error = config.check_tokens().expect_err("short token").to_string();
    assert!(
        error.starts_with(&format!("{}: line 3: ", tokens.display())),
        "{error}"
    );
    assert!(error.contains("at least 16"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn l3_reports_logs_and_upload_urls_are_refused_after_a_final_state() {
    let scratch = tempfile::tempdir().expect("dir");
    let bucket = Arc::new(signing_bucket(scratch.path()));
    let server = TestServer::start(|config| config.ingest_bucket = Some(bucket)).await;
    server.enqueue(job("job-1")).await;
    let client = server.client().with_claimant("runner-a");
    assert!(matches!(
        client
            .claim("job-1", "runner-a", Duration::from_secs(60))
            .await
            .expect("claim"),
        Claim::Granted(_)
    ));
    reported(&client, "job-1", JobState::Running)
        .await
        .expect("running");
    reported(&client, "job-1", JobState::Succeeded)
        .await
        .expect("succeeded");
    // A retried final report (its answer lost) is answered with the status, as before.
    let again = client
        .report_status("job-1", &report("job-1", JobState::Succeeded))
        .await
        .expect("the same final report");
    assert_eq!(again.state, JobState::Succeeded);
    // The reproduction: after the final state, everything else was still taken.
    let refusals = [
        reported(&client, "job-1", JobState::Failed).await,
        reported(&client, "job-1", JobState::Running).await,
        client.upload_logs("job-1", "run-job-1", "late logs").await,
        client
            .upload_urls("job-1", "run-job-1", &["manifest.json".to_owned()])
            .await
            .map(drop),
        // A run's own steps (no claimant) are refused the same way.
        server
            .client()
            .upload_logs("job-1", "run-job-1", "late logs")
            .await,
    ];
    assert_conflicts(refusals, "final", "after the final state");
    let record = &server.records().await.jobs[0];
    assert_eq!(record.status.state, JobState::Succeeded);
    let states: Vec<JobState> = record.history.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            JobState::Pending,
            JobState::Claimed,
            JobState::Running,
            JobState::Succeeded
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn l3_only_the_claimant_holding_the_lease_may_report_or_upload() {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job("job-1")).await;
    server.enqueue(job("job-2")).await;
    let holder = server.client().with_claimant("tick-a");
    let other = server.client().with_claimant("tick-b");
    let run = server.client();
    // Nobody claimed job-2: nothing may report on it, a run's step included.
    assert_conflicts(
        [
            reported(&other, "job-2", JobState::Submitted).await,
            reported(&run, "job-2", JobState::Succeeded).await,
            run.upload_logs("job-2", "run-job-2", "logs").await,
        ],
        "not-claimed",
        "for an unclaimed job",
    );
    holder
        .claim("job-1", "tick-a", Duration::from_secs(60))
        .await
        .expect("claim");
    // The reproduction: another claimant reports on a job it does not hold.
    assert_conflicts(
        [
            reported(&other, "job-1", JobState::Submitted).await,
            reported(&other, "job-1", JobState::Failed).await,
            other.upload_logs("job-1", "run-job-1", "logs").await,
        ],
        "leased",
        "from a claimant without the lease",
    );
    // The lease holder's decisions need the claimant: without one they are refused.
    assert!(matches!(
        run.report_status("job-1", &report("job-1", JobState::Submitted))
            .await,
        Err(ControlPlaneError::Answer { status: 400, .. })
    ));
    let submitted = holder
        .report_status("job-1", &report("job-1", JobState::Submitted))
        .await
        .expect("the holder reports");
    assert_eq!(submitted.state, JobState::Submitted);
    // The run's exit handler, which does not know the claimant, ships logs and the final
    // status.
    run.upload_logs("job-1", "run-job-1", "logs")
        .await
        .expect("exit handler's logs");
    let done = run
        .report_status("job-1", &report("job-1", JobState::Succeeded))
        .await
        .expect("exit handler's report");
    assert_eq!(done.state, JobState::Succeeded);
    server.stop().await;
}

/// An S3 bucket that signs URLs offline, named so that a leak is easy to spot.
fn signing_bucket(dir: &std::path::Path) -> delivery::bucket::Bucket {
    test_support::signing_bucket(dir, "s3://secret-ingest-bucket/hidden-prefix")
}

#[tokio::test]
async fn l7_every_error_is_the_documented_json_and_names_no_bucket() {
    let scratch = tempfile::tempdir().expect("dir");
    let bucket = Arc::new(signing_bucket(scratch.path()));
    let server = TestServer::start(|config| config.ingest_bucket = Some(bucket)).await;
    server.enqueue_claimed(job("job-1"), "tick-a").await;
    let json = |value: Value| Some(serde_json::to_vec(&value).expect("json"));
    let claimant = [(CLAIMANT_HEADER, "tick-a")];
    /// Method, path, headers, body, expected status and code.
    type Case<'a> = (
        reqwest::Method,
        String,
        Vec<(&'a str, &'a str)>,
        Option<Vec<u8>>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        // The reproduction: a path that cannot be an object name answered with the bucket
        // and its prefix.
        (
            reqwest::Method::POST,
            "v1/jobs/job-1/runs/run-job-1/upload-urls".to_owned(),
            claimant.to_vec(),
            json(json!({ "paths": ["tables//../x"] })),
            400,
            "invalid",
        ),
        // 413: over the operation's body cap (plain text before).
        (
            reqwest::Method::POST,
            "v1/heartbeat".to_owned(),
            vec![],
            Some(vec![b' '; 17 << 10]),
            413,
            "too-large",
        ),
        // A bad query string (plain text before).
        (
            reqwest::Method::GET,
            "v1/jobs?limit=lots".to_owned(),
            vec![],
            None,
            400,
            "invalid",
        ),
        (
            reqwest::Method::GET,
            "v1/jobs?limit=0".to_owned(),
            vec![],
            None,
            400,
            "invalid",
        ),
        // A path parameter that is not UTF-8, a wrong method, an unknown path, logs that
        // are not text, an empty claimant.
        (
            reqwest::Method::POST,
            "v1/jobs/%FF/claim".to_owned(),
            vec![],
            json(json!({ "claimant": "x", "leaseSeconds": 5 })),
            400,
            "invalid",
        ),
        (
            reqwest::Method::DELETE,
            "v1/jobs".to_owned(),
            vec![],
            None,
            405,
            "method-not-allowed",
        ),
        (
            reqwest::Method::GET,
            "v1/nothing-here".to_owned(),
            vec![],
            None,
            404,
            "not-found",
        ),
        (
            reqwest::Method::PUT,
            "v1/jobs/job-1/runs/run-job-1/logs".to_owned(),
            claimant.to_vec(),
            Some(vec![0xff, 0xfe]),
            400,
            "invalid",
        ),
        (
            reqwest::Method::POST,
            "v1/jobs/job-1/status".to_owned(),
            vec![(CLAIMANT_HEADER, "")],
            json(json!({ "runId": "run-job-1", "state": "running" })),
            400,
            "invalid",
        ),
        (
            reqwest::Method::POST,
            "v1/jobs/job-1/status".to_owned(),
            vec![],
            Some(b"{not json".to_vec()),
            400,
            "invalid",
        ),
    ];
    for (method, path, headers, body, expected, code) in cases {
        let (status, kind, answer) =
            call(&server, method.clone(), &path, AGENT_TOKEN, &headers, body).await;
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status, expected, "{method} {path}: {text}");
        assert_eq!(error_code(status, &kind, &answer), code, "{method} {path}");
        for secret in ["secret-ingest-bucket", "hidden-prefix"] {
            assert!(
                !text.contains(secret),
                "{method} {path} names `{secret}`: {text}"
            );
        }
    }
    // Over the cap, announced or not (plain text before): refused, as the error JSON.
    let logs = "PUT /v1/jobs/job-1/runs/run-job-1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\noutpost-claimant: tick-a";
    for (framing, body) in [
        (
            format!("content-length: {}", (8 << 20) + 1),
            vec![b'x'; (8 << 20) + 1],
        ),
        (
            "transfer-encoding: chunked".to_owned(),
            [
                format!("{:x}\r\n", (8 << 20) + 1).into_bytes(),
                vec![b'x'; (8 << 20) + 1],
                b"\r\n0\r\n\r\n".to_vec(),
            ]
            .concat(),
        ),
    ] {
        let head = format!("{logs}\r\nauthorization: Bearer {AGENT_TOKEN}\r\n{framing}\r\n\r\n");
        let (status, kind, answer) = raw(&server, head, body).await;
        assert_eq!(status, 413, "{framing}");
        assert_eq!(error_code(status, &kind, &answer), "too-large", "{framing}");
    }
    // Without a token, a body is not even read: the answer is the JSON 401.
    let head = format!(
        "{logs}\r\nauthorization: Bearer not-a-token-at-all\r\ncontent-length: {}\r\n\r\n",
        1 << 20
    );
    let (status, kind, answer) = raw(&server, head, vec![b'x'; 1 << 20]).await;
    assert_eq!(error_code(status, &kind, &answer), "unauthorized");
    server.stop().await;
}

#[tokio::test]
async fn m5_a_running_job_whose_runner_died_is_offered_again() {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job("job-1")).await;
    let lease = Duration::from_secs(1);
    let dead = server.client().with_claimant("runner-dead");
    assert!(matches!(
        dead.claim("job-1", "runner-dead", lease)
            .await
            .expect("claim"),
        Claim::Granted(_)
    ));
    reported(&dead, "job-1", JobState::Running)
        .await
        .expect("running");
    // Its runner renews the lease while the job runs, by claiming again.
    assert!(matches!(
        dead.claim("job-1", "runner-dead", lease)
            .await
            .expect("renew"),
        Claim::Granted(_)
    ));
    // While its lease is live, the running job is nobody else's.
    assert!(offered(&server).await.is_empty());
    let alive = server.client().with_claimant("runner-alive");
    assert_claim_refused(
        alive
            .claim("job-1", "runner-alive", lease)
            .await
            .expect("claim"),
        "leased",
    );
    // The reproduction: the runner dies; before, the job stayed `running` forever.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let offered = offered(&server).await;
    assert_eq!(
        offered.len(),
        1,
        "the running job with a lapsed lease is offered again"
    );
    assert_eq!(offered[0]["id"], "job-1");
    assert!(matches!(
        alive
            .claim("job-1", "runner-alive", Duration::from_secs(60))
            .await
            .expect("claim"),
        Claim::Granted(_)
    ));
    // Exactly once: the dead runner, should it come back, can no longer report; the new
    // one finishes the job.
    assert_conflicts(
        [reported(&dead, "job-1", JobState::Succeeded).await],
        "leased",
        "from the lapsed runner",
    );
    reported(&alive, "job-1", JobState::Running)
        .await
        .expect("running again");
    reported(&alive, "job-1", JobState::Succeeded)
        .await
        .expect("succeeded");
    let record = &server.records().await.jobs[0];
    assert_eq!(record.status.state, JobState::Succeeded);
    assert_eq!(record.claims, 2);
    assert!(
        record
            .history
            .iter()
            .any(|e| e.message.as_deref().is_some_and(|m| m.contains("lapsed"))),
        "{:?}",
        record.history
    );
    server.stop().await;
}

#[tokio::test]
async fn m5_a_running_job_whose_runners_keep_dying_is_failed_after_a_bound() {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job("job-1")).await;
    let lease = Duration::from_secs(1);
    let lapses = control_plane::limits::MAX_RUNNING_LEASE_LAPSES;
    for runner in 0..=lapses {
        let name = format!("runner-{runner}");
        let client = server.client().with_claimant(&name);
        assert!(
            matches!(
                client.claim("job-1", &name, lease).await.expect("claim"),
                Claim::Granted(_)
            ),
            "{name}"
        );
        reported(&client, "job-1", JobState::Running)
            .await
            .expect("running");
        tokio::time::sleep(lease + Duration::from_millis(200)).await;
    }
    // One more lapse than allowed: the job is failed instead of offered again.
    assert!(offered(&server).await.is_empty());
    assert_claim_refused(
        server
            .client()
            .claim("job-1", "runner-last", lease)
            .await
            .expect("claim"),
        "not-pending",
    );
    let record = &server.records().await.jobs[0];
    assert_eq!(record.status.state, JobState::Failed);
    assert!(
        record
            .status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("lapsed 4 times")),
        "{:?}",
        record.status.message
    );
    server.stop().await;
}

/// A loopback server answering every request with `status`, a `Content-Length` of
/// `length`, and that many bytes of `fill` (or until the client goes away); counts the
/// bytes it got to send.
async fn flooding_server(status: u16, length: u64, fill: u8) -> (url::Url, Arc<AtomicU64>) {
    raw_server(move |mut stream, counter| async move {
        let answer = format!(
            "HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![fill; 64 << 10];
        let mut left = length;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if stream.write_all(&chunk[..n]).await.is_err() {
                return;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
            left -= n as u64;
        }
    })
    .await
}

/// A loopback server that reads each request's head, then lets `answer` write whatever it
/// likes, counting the body bytes it got out in the counter it is given.
async fn raw_server<F, Fut>(answer: F) -> (url::Url, Arc<AtomicU64>)
where
    F: Fn(tokio::net::TcpStream, Arc<AtomicU64>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let address = raw_http_server(move |stream, _head| answer(stream, Arc::clone(&counter))).await;
    let url = url::Url::parse(&format!("http://{address}/")).expect("url");
    (url, sent)
}

fn client_of(url: url::Url, dir: &std::path::Path) -> ControlPlaneClient {
    let token = dir.join("token");
    std::fs::write(&token, "agent-token-0123456789\n").expect("token");
    let mut config = ClientConfig::new(url, token);
    config.attempts = 1;
    ControlPlaneClient::new(config).expect("client")
}

#[tokio::test]
async fn m4_error_answers_are_read_within_a_cap() {
    // The reproduction's shape: an error answer that does not end (300 MB of it).
    let dir = tempfile::tempdir().expect("dir");
    let (url, sent) = flooding_server(403, 300 << 20, b'x').await;
    let client = client_of(url, dir.path());
    let answer = client.pending_jobs(10).await;
    match answer {
        Err(ControlPlaneError::Unauthorized {
            status: 403,
            message,
        }) => assert!(message.len() <= 512, "{}", message.len()),
        other => panic!("{other:?}"),
    }
    // Give the server a moment to notice the closed connection, then count: 16 KiB read,
    // plus what the sockets' buffers took, never the 300 MB.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bytes = sent.load(Ordering::Relaxed);
    eprintln!("403 with a 300 MB body: the server got {bytes} bytes out before the client closed");
    assert!(bytes < 32 << 20, "{bytes} bytes of an error body were read");
}

#[tokio::test]
async fn m4_success_answers_over_their_cap_are_refused_unread() {
    let dir = tempfile::tempdir().expect("dir");
    let (url, sent) = flooding_server(200, 300 << 20, b' ').await;
    let client = client_of(url, dir.path());
    let answer = client
        .claim("job-1", "tick-a", Duration::from_secs(60))
        .await;
    match answer {
        Err(ControlPlaneError::Protocol { message, .. }) => {
            assert!(message.contains("over 1048576 bytes"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bytes = sent.load(Ordering::Relaxed);
    assert!(bytes < 32 << 20, "{bytes} bytes of a lease were read");
}

/// A loopback server answering `GET /v1/jobs` with `{"jobs": [...]}` of `jobs` jobs
/// (`pad` bytes of padding each) and counting the bytes it got out.
async fn job_list_server(jobs: u64, pad: usize) -> (url::Url, Arc<AtomicU64>) {
    raw_server(move |mut stream, counter| async move {
        let padding = "p".repeat(pad);
        let job = |i: u64| {
            format!(
                "{{\"id\":\"job-{i:08}\",\"runId\":\"run-{i:08}\",\"connector\":\"postgres\",\"pad\":\"{padding}\"}}"
            )
        };
        let mut body_len = 10 + 1; // `{"jobs":[` and `]}` less the first comma
        for i in 0..jobs {
            body_len += job(i).len() as u64 + 1;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"jobs\":[",
            body_len - 1
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut buffer = String::new();
        for i in 0..jobs {
            if i > 0 {
                buffer.push(',');
            }
            buffer.push_str(&job(i));
            if buffer.len() >= 64 << 10 || i + 1 == jobs {
                if i + 1 == jobs {
                    buffer.push_str("]}");
                }
                if stream.write_all(buffer.as_bytes()).await.is_err() {
                    return;
                }
                counter.fetch_add(buffer.len() as u64, Ordering::Relaxed);
                buffer.clear();
            }
        }
    })
    .await
}

#[tokio::test]
async fn m4_a_huge_job_list_is_read_as_a_stream_up_to_the_page() {
    let dir = tempfile::tempdir().expect("dir");
    // About 300 MB: a million jobs of 300 bytes.
    let (url, sent) = job_list_server(1_000_000, 230).await;
    let client = client_of(url, dir.path());
    let jobs = client.pending_jobs(100).await.expect("the first page");
    assert_eq!(jobs.len(), 100);
    assert_eq!(jobs[0]["id"], "job-00000000");
    assert_eq!(jobs[99]["id"], "job-00000099");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bytes = sent.load(Ordering::Relaxed);
    eprintln!("a 300 MB job list: the server got {bytes} bytes out before the client closed");
    assert!(bytes < 32 << 20, "{bytes} bytes of the list were read");
    // A list that fits is read whole, as before.
    let (url, _) = job_list_server(3, 10).await;
    let jobs = client_of(url, dir.path())
        .pending_jobs(100)
        .await
        .expect("list");
    assert_eq!(jobs.len(), 3);
}
