//! Contract test: the typed client and the reference server, checked against
//! `openapi.yaml`. Every operation of the document is exercised (success and refusal
//! answers), and every request the client sent and every answer the server gave must
//! validate against the document's schema for that path, method, status and content type.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use control_plane::api::{Heartbeat, JobState, StatusReport, rfc3339};
use control_plane::test_support::{self, Exchange, TestServer};
use control_plane::{Claim, ControlPlaneError};
use serde_json::{Value, json};

fn document() -> Value {
    let yaml: Value =
        serde_saphyr::from_str(control_plane::api::OPENAPI_YAML).expect("openapi.yaml parses");
    assert_eq!(yaml["openapi"], "3.1.0");
    yaml
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Validates `instance` against the schema at `pointer` in `doc` (refs resolve in `doc`).
fn check(doc: &Value, pointer: &str, instance: &Value) -> Result<(), String> {
    let mut schema = doc.clone();
    schema.as_object_mut().expect("object").insert(
        "$ref".to_owned(),
        json!(format!(
            "#{}",
            pointer.replace('{', "%7B").replace('}', "%7D")
        )),
    );
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| format!("schema {pointer}: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The document's path template matching `path`.
fn template_of<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let actual: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == actual.len()
                && parts
                    .iter()
                    .zip(&actual)
                    .all(|(t, a)| t.starts_with('{') || t == a)
        })
}

fn body_value(content_type: Option<&str>, bytes: &[u8]) -> (String, Value) {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let value = if media == "application/json" {
        serde_json::from_slice(bytes).expect("JSON body")
    } else {
        Value::String(String::from_utf8_lossy(bytes).into_owned())
    };
    (media, value)
}

/// Checks one exchange; answers its operationId.
fn check_exchange(doc: &Value, exchange: &Exchange) -> Result<String, String> {
    let template = template_of(doc, &exchange.path).ok_or_else(|| {
        format!(
            "{} {} is not in the document",
            exchange.method, exchange.path
        )
    })?;
    let method = exchange.method.to_lowercase();
    let base = format!("/paths/{}/{method}", escape(template));
    let operation = doc
        .pointer(&base)
        .ok_or_else(|| format!("{} {template} is not in the document", exchange.method))?;
    let id = operation["operationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if operation.get("requestBody").is_some() && exchange.status != 401 {
        let (media, value) = body_value(exchange.request_type.as_deref(), &exchange.request_body);
        let pointer = format!("{base}/requestBody/content/{}/schema", escape(&media));
        doc.pointer(&pointer)
            .ok_or_else(|| format!("{id}: request type `{media}` not documented"))?;
        check(doc, &pointer, &value).map_err(|e| format!("{id}: request: {e}"))?;
    }
    let status = exchange.status.to_string();
    let (key, mut response) = match operation["responses"].get(&status) {
        Some(r) => (status.clone(), r.clone()),
        None => (
            "default".to_owned(),
            operation["responses"]
                .get("default")
                .cloned()
                .ok_or_else(|| format!("{id}: status {status} not documented"))?,
        ),
    };
    if key == "default" && exchange.status < 400 {
        return Err(format!("{id}: success status {status} not documented"));
    }
    let mut response_pointer = format!("{base}/responses/{key}");
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        response_pointer = reference.trim_start_matches('#').to_owned();
        response = doc
            .pointer(&response_pointer)
            .cloned()
            .expect("ref resolves");
    }
    match response.get("content") {
        None => {
            if !exchange.response_body.is_empty() {
                return Err(format!("{id}: {status} must have no body"));
            }
        }
        Some(_) => {
            let (media, value) =
                body_value(exchange.response_type.as_deref(), &exchange.response_body);
            let pointer = format!("{response_pointer}/content/{}/schema", escape(&media));
            doc.pointer(&pointer).ok_or_else(|| {
                format!("{id}: answer type `{media}` for {status} not documented")
            })?;
            check(doc, &pointer, &value).map_err(|e| format!("{id}: {status} answer: {e}"))?;
        }
    }
    Ok(id)
}

fn all_operations(doc: &Value) -> BTreeSet<String> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .filter_map(|op| {
            op.get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn client_and_server_follow_the_openapi_document() {
    let doc = document();
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let scratch = tempfile::tempdir().expect("dir");
    let bucket = std::sync::Arc::new(test_support::signing_bucket(
        scratch.path(),
        "s3://ingest/outpost",
    ));
    let server = TestServer::start(|config| {
        config.signing_key = Some(control_plane::server::JobSigner::new(signing.clone()));
        config.ingest_bucket = Some(bucket);
    })
    .await;
    // The lease holder reports and uploads (its `Outpost-Claimant` is `tick-a`).
    let client = server.client().with_claimant("tick-a");

    let job = json!({
        "id": "job-1", "runId": "run-1", "connector": "postgres", "connection": "pg-prod",
        "transferMode": "direct-ingestion", "parameters": { "include-schemas": "^app$" }
    });
    server.enqueue(job.clone()).await;
    let (status, _) = server
        .admin(
            reqwest::Method::POST,
            "admin/v1/jobs",
            Some(json!({ "agentId": test_support::AGENT, "job": job })),
        )
        .await;
    assert_eq!(status, 409, "a second job with the same id is refused");

    let pending = client.pending_jobs(10).await.expect("list");
    assert_eq!(pending.len(), 1);
    // The server signed the job; the agent's own check accepts it with the pinned key.
    let signature = pending[0]["signature"].as_str().expect("signed");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .expect("base64");
    let signature = ed25519_dalek::Signature::from_slice(&bytes).expect("64 bytes");
    signing
        .verifying_key()
        .verify_strict(
            &orchestrator::admission::canonical_bytes(&pending[0]),
            &signature,
        )
        .expect("signature verifies");
    // Signed for the queue's agent, for a while, once (security issue 13, M1): the agent's
    // own checks accept it for that agent only.
    assert_eq!(pending[0]["agentId"], test_support::AGENT);
    let nonce = orchestrator::signing::nonce_of(&pending[0]).expect("a nonce and notAfter");
    let lifetime = nonce
        .not_after
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(
        lifetime <= control_plane::server::DEFAULT_JOB_LIFETIME,
        "{lifetime:?}"
    );
    let now = std::time::SystemTime::now();
    let policy =
        |agent: &str| orchestrator::SigningPolicy::new(signing.verifying_key(), agent, now);
    assert_eq!(
        policy(test_support::AGENT).check(&pending[0]),
        Vec::<String>::new()
    );
    assert_eq!(policy("agent-2").check(&pending[0]).len(), 1);

    let lease = Duration::from_secs(60);
    assert!(matches!(
        client.claim("job-1", "tick-a", lease).await.expect("claim"),
        Claim::Granted(_)
    ));
    assert!(
        matches!(
            client
                .claim("job-1", "tick-a", lease)
                .await
                .expect("reclaim"),
            Claim::Granted(_)
        ),
        "same claimant re-claims"
    );
    match client.claim("job-1", "tick-b", lease).await.expect("claim") {
        Claim::Refused { code, .. } => assert_eq!(code, "leased"),
        other => panic!("another claimant got {other:?}"),
    }
    assert!(
        client.pending_jobs(10).await.expect("list").is_empty(),
        "a leased job is not listed"
    );

    let submitted = StatusReport {
        run_id: "run-1".to_owned(),
        state: JobState::Submitted,
        workflow: Some("outpost-postgres-0123456789abcdef".to_owned()),
        message: None,
    };
    assert_eq!(
        client
            .report_status("job-1", &submitted)
            .await
            .expect("report")
            .state,
        JobState::Submitted
    );
    let running = StatusReport {
        state: JobState::Running,
        workflow: None,
        ..submitted.clone()
    };
    client
        .report_status("job-1", &running)
        .await
        .expect("running");
    let late = client
        .report_status("job-1", &submitted)
        .await
        .expect("late report");
    assert_eq!(late.state, JobState::Running, "status never moves back");
    assert_eq!(
        late.workflow.as_deref(),
        Some("outpost-postgres-0123456789abcdef")
    );
    match client.claim("job-1", "tick-b", lease).await.expect("claim") {
        Claim::Refused { code, .. } => assert_eq!(code, "not-pending"),
        other => panic!("a submitted job was claimed: {other:?}"),
    }
    let wrong_run = StatusReport {
        run_id: "run-2".to_owned(),
        ..running.clone()
    };
    assert!(matches!(
        client.report_status("job-1", &wrong_run).await,
        Err(ControlPlaneError::Answer { status: 400, .. })
    ));
    assert!(matches!(
        client.report_status("no-such-job", &running).await,
        Err(ControlPlaneError::Answer { status: 404, .. })
    ));

    let urls = client
        .upload_urls(
            "job-1",
            "run-1",
            &[
                "tables/part-00000.ndjson.zst".to_owned(),
                "manifest.json".to_owned(),
            ],
        )
        .await
        .expect("urls");
    assert_eq!(urls.len(), 2);
    let manifest_url = urls["manifest.json"].url.as_str();
    assert!(
        manifest_url.contains("/ingest/outpost/pg-prod/job-1/run-1/manifest.json?"),
        "{manifest_url}"
    );

    client
        .upload_logs("job-1", "run-1", "line one\nline two\n")
        .await
        .expect("logs");
    let (status, logs) = server.logs("job-1", "run-1").await;
    assert_eq!(
        (status, logs.as_slice()),
        (200, b"line one\nline two\n".as_slice())
    );

    let beat = Heartbeat {
        agent_id: "agent-1".to_owned(),
        version: "0.1.0 (test)".to_owned(),
        kubernetes_reachable: true,
        argo_reachable: true,
        running_workflows: Some(1),
        last_successful_poll: Some(rfc3339(std::time::SystemTime::now())),
        sent_at: rfc3339(std::time::SystemTime::now()),
        // Both new fields on the wire, so the document's schema for them is exercised.
        argo_restricts_templates: Some(true),
        insecure_options: vec!["insecureUnsignedJobs".to_owned()],
    };
    client.heartbeat(&beat).await.expect("heartbeat");
    let (status, _) = server
        .admin(reqwest::Method::GET, "admin/v1/heartbeats", None)
        .await;
    assert_eq!(status, 200);

    let finished = StatusReport {
        state: JobState::Succeeded,
        ..running.clone()
    };
    client
        .report_status("job-1", &finished)
        .await
        .expect("final");
    // After the final state, nothing but the same final report is taken (409 `final`).
    assert!(matches!(
        client.upload_logs("job-1", "run-1", "late").await,
        Err(ControlPlaneError::Answer { status: 409, .. })
    ));
    let records = server.records().await;
    let states: Vec<JobState> = records.jobs[0].history.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            JobState::Pending,
            JobState::Claimed,
            JobState::Submitted,
            JobState::Running,
            JobState::Succeeded
        ]
    );
    assert_eq!(records.jobs[0].claims, 1);

    // A wrong token is refused, as documented.
    std::fs::write(server.agent_token_file(), "not-the-token\n").expect("rotate");
    assert!(matches!(
        client.pending_jobs(10).await,
        Err(ControlPlaneError::Unauthorized { status: 401, .. })
    ));
    // The token is re-read on every request: rotating it back works at once.
    std::fs::write(
        server.agent_token_file(),
        format!("{}\n", test_support::AGENT_TOKEN),
    )
    .expect("rotate");
    client.pending_jobs(10).await.expect("rotated token works");

    let exchanges = server.exchanges.lock().expect("lock").clone();
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for exchange in &exchanges {
        match check_exchange(&doc, exchange) {
            Ok(id) => {
                seen.insert(id);
            }
            Err(problem) => problems.push(problem),
        }
    }
    assert!(
        problems.is_empty(),
        "off the document:\n{}",
        problems.join("\n")
    );
    let missing: Vec<_> = all_operations(&doc).difference(&seen).cloned().collect();
    assert!(
        missing.is_empty(),
        "operations never exercised: {missing:?}"
    );
    assert!(
        exchanges.len() >= 20,
        "{} exchanges checked",
        exchanges.len()
    );
    eprintln!(
        "{} exchanges over {} operations validated against openapi.yaml",
        exchanges.len(),
        seen.len()
    );
    server.stop().await;
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_shape() {
    let doc = document();
    // Every $ref resolves, every operation has an id and a documented answer.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().expect("string ref").to_owned());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for reference in &all {
        assert!(
            doc.pointer(reference.trim_start_matches('#')).is_some(),
            "{reference} does not resolve"
        );
    }
    let ids = all_operations(&doc);
    assert_eq!(ids.len(), 10, "{ids:?}");
    // Every schema compiles as JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    for name in doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&{
                let mut s = doc.clone();
                s.as_object_mut()
                    .expect("object")
                    .insert("$ref".into(), json!(format!("#/components/schemas/{name}")));
                s
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
