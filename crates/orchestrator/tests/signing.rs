//! Finding M1 (security issue 13), the pure half: what a signed job must prove besides a
//! valid signature. The orchestrator's and local mode's end-to-end versions, with real
//! control planes, are `crates/agent/tests/signed_jobs.rs` and
//! `crates/outpost/tests/signed_jobs_cli.rs`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use connector_descriptor::ValidatedDescriptor;
use ed25519_dalek::Signer as _;
use orchestrator::signing::{
    CLOCK_SKEW, DEFAULT_MAX_LIFETIME, canonical_bytes, mark_workflow, new_nonce, nonce_of,
    replay_conflict, rfc3339, sign,
};
use orchestrator::{AdmissionPolicy, SigningPolicy, admit, workflow_for};
use serde_json::{Value, json};

fn descriptors() -> Vec<ValidatedDescriptor> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    connector_descriptor::load::read_dir(&dir).expect("the shipped connectors")
}

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[3u8; 32])
}

/// A fixed clock, so expiry is tested to the second.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn job(id: &str) -> Value {
    json!({
        "id": id, "runId": "r1", "connector": "postgres", "connection": "pg-prod",
        "transferMode": "direct-ingestion", "parameters": { "include-schemas": "^public$" }
    })
}

fn signed(id: &str, agent: &str, not_after: SystemTime, nonce: &str) -> Value {
    let mut job = job(id);
    sign(&mut job, &key(), agent, not_after, nonce);
    job
}

/// Signs `job` as it is, without adding any field.
fn resign(job: &mut Value) {
    let signature = key().sign(&canonical_bytes(job));
    job["signature"] =
        json!(base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()));
}

fn policy(agent: &str) -> AdmissionPolicy {
    AdmissionPolicy {
        signing: Some(SigningPolicy::new(key().verifying_key(), agent, now())),
        ..AdmissionPolicy::default()
    }
}

fn reasons(job: &Value, policy: &AdmissionPolicy) -> String {
    match admit(job, &descriptors(), policy) {
        Ok(admitted) => panic!("admitted: {admitted:?}"),
        Err(rejection) => rejection.to_string(),
    }
}

#[test]
fn m1_a_job_signed_for_another_agent_is_rejected() {
    let job = signed(
        "j1",
        "agent-a",
        now() + Duration::from_secs(600),
        &new_nonce(),
    );
    let text = reasons(&job, &policy("agent-b"));
    assert!(
        text.contains("signed for agent `agent-a`, and this agent is `agent-b`"),
        "{text}"
    );
    // Re-addressing the copy breaks the signature: `agentId` is covered by it.
    let mut readdressed = job.clone();
    readdressed["agentId"] = json!("agent-b");
    assert!(
        reasons(&readdressed, &policy("agent-b")).contains("signature does not match"),
        "agentId is signed"
    );
    // Control: the agent it was signed for admits it.
    admit(&job, &descriptors(), &policy("agent-a")).expect("admitted by agent-a");
}

#[test]
fn m1_an_expired_job_is_rejected() {
    let at = |offset: i64| {
        if offset >= 0 {
            now() + Duration::from_secs(offset.unsigned_abs())
        } else {
            now() - Duration::from_secs(offset.unsigned_abs())
        }
    };
    let skew = i64::try_from(CLOCK_SKEW.as_secs()).expect("small");
    let max = i64::try_from(DEFAULT_MAX_LIFETIME.as_secs()).expect("small");
    let expired = signed("j1", "agent-a", at(-skew - 1), &new_nonce());
    let text = reasons(&expired, &policy("agent-a"));
    assert!(text.contains("the job expired at"), "{text}");
    assert!(
        text.contains("5m of clock skew"),
        "the skew is stated: {text}"
    );
    // Moving notAfter on a copy breaks the signature: it is covered by it.
    let mut extended = expired.clone();
    extended["notAfter"] = json!(rfc3339(at(600)));
    assert!(reasons(&extended, &policy("agent-a")).contains("signature does not match"));
    // Past notAfter but within the clock skew: admitted.
    let late = signed("j1", "agent-a", at(-skew + 1), &new_nonce());
    admit(&late, &descriptors(), &policy("agent-a")).expect("within the skew");
    // Valid for longer than the agent remembers nonces: refused.
    let far = signed("j1", "agent-a", at(max - skew + 1), &new_nonce());
    assert!(reasons(&far, &policy("agent-a")).contains("remembers a job's nonce only that long"));
    let longest = signed("j1", "agent-a", at(max - skew), &new_nonce());
    admit(&longest, &descriptors(), &policy("agent-a")).expect("at the limit");
}

#[test]
fn m1_a_replayed_nonce_is_rejected() {
    let nonce = new_nonce();
    let not_after = now() + Duration::from_secs(600);
    let first = signed("j1", "agent-a", not_after, &nonce);
    let admitted = admit(&first, &descriptors(), &policy("agent-a")).expect("admitted");
    let recorded = nonce_of(&first).expect("a nonce");
    let mut workflow = workflow_for(&admitted, "outpost");
    mark_workflow(&mut workflow, &recorded);
    let existing = vec![serde_json::to_value(&workflow).expect("json")];

    // Another job with the nonce of a job that has a Workflow: refused, naming the first.
    let second = signed("j2", "agent-a", not_after, &nonce);
    let again = admit(&second, &descriptors(), &policy("agent-a")).expect("well-formed");
    let reason =
        replay_conflict(&existing, &again, &nonce_of(&second).expect("nonce")).expect("a replay");
    assert!(
        reason.contains("replayed nonce") && reason.contains("already used by job `j1` run `r1`"),
        "{reason}"
    );
    // Another run of the same job id too.
    let mut other_run = job("j1");
    other_run["runId"] = json!("r2");
    sign(&mut other_run, &key(), "agent-a", not_after, &nonce);
    let rerun = admit(&other_run, &descriptors(), &policy("agent-a")).expect("well-formed");
    assert!(replay_conflict(&existing, &rerun, &recorded).is_some());
    // The same job and run meets its own Workflow: not a replay here (`AlreadyExists`
    // keeps it from running twice).
    assert_eq!(replay_conflict(&existing, &admitted, &recorded), None);
    // A fresh nonce is not on any Workflow.
    let fresh = signed("j3", "agent-a", not_after, &new_nonce());
    let fresh_job = admit(&fresh, &descriptors(), &policy("agent-a")).expect("admitted");
    assert_eq!(
        replay_conflict(&existing, &fresh_job, &nonce_of(&fresh).expect("nonce")),
        None
    );
}

#[test]
fn a_signed_job_must_name_its_agent_expiry_and_nonce() {
    // Signed the way jobs were signed before: a valid signature over a job without the
    // three fields. No compatibility mode: it is refused, naming each missing field.
    let mut old_style = job("j1");
    resign(&mut old_style);
    let text = reasons(&old_style, &policy("agent-a"));
    for part in [
        "`agentId` is missing",
        "`notAfter` is missing",
        "`nonce` is missing",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    assert!(!text.contains("signature does not match"), "{text}");
    // Malformed fields, each named.
    for (field, value, reason) in [
        (
            "notAfter",
            json!("2027-01-15T08:00:00+01:00"),
            "not an RFC 3339 UTC time",
        ),
        (
            "notAfter",
            json!(1_800_000_600),
            "`notAfter` must be a string",
        ),
        ("nonce", json!("short"), "base64url characters"),
        (
            "nonce",
            json!("has spaces and is long enough!"),
            "base64url characters",
        ),
        ("agentId", json!(7), "`agentId` must be a string"),
    ] {
        // Signed as a careless signer would: the malformed field under a valid signature.
        let mut bad = signed(
            "j1",
            "agent-a",
            now() + Duration::from_secs(60),
            &new_nonce(),
        );
        bad[field] = value;
        resign(&mut bad);
        let text = reasons(&bad, &policy("agent-a"));
        assert!(
            text.contains(reason),
            "{field}: expected `{reason}` in: {text}"
        );
    }
}

#[test]
fn without_a_signing_key_the_new_fields_are_accepted_as_they_come() {
    // The fields belong to a job (JOB_FIELDS); without a key nothing vouches for them, and
    // unsigned jobs are admitted as before.
    let job = signed(
        "j1",
        "agent-a",
        now() - Duration::from_secs(86_400),
        &new_nonce(),
    );
    admit(&job, &descriptors(), &AdmissionPolicy::default()).expect("admitted");
    for field in ["agentId", "notAfter", "nonce"] {
        assert!(
            orchestrator::admission::JOB_FIELDS.contains(&field),
            "{field}"
        );
    }
}
