//! Regression tests of the security review (issue 13), one per finding about what a job may
//! carry: each runs the review's reproduction and shows it is rejected, with its reason.

use connector_descriptor::ValidatedDescriptor;
use orchestrator::{AdmissionPolicy, admit};
use serde_json::{Value, json};

fn descriptors() -> Vec<ValidatedDescriptor> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    connector_descriptor::load::read_dir(&dir).expect("the shipped connectors")
}

fn job(connector: &str, parameters: Value) -> Value {
    json!({
        "id": "job-1", "runId": "r1", "connector": connector, "connection": "pg-prod",
        "transferMode": "direct-ingestion", "parameters": parameters
    })
}

fn reasons(job: &Value, policy: &AdmissionPolicy) -> String {
    match admit(job, &descriptors(), policy) {
        Ok(admitted) => panic!("admitted: {admitted:?}"),
        Err(rejection) => rejection.to_string(),
    }
}

/// The review's reproduction: a job chose connection `pg-prod` and, independently, `host`,
/// `port` and `ssl-mode`, so `pg-prod`'s password went in cleartext to a server of the job's
/// choosing. Every parameter that says where a connection's credentials go is now the
/// connection's (`scope: connection`), and a job naming any of them is rejected.
#[test]
fn credentials_cannot_be_pointed_elsewhere_by_a_job() {
    let policy = AdmissionPolicy::default();
    for (connector, parameters) in [
        (
            "postgres",
            json!({"host": "127.0.0.1", "port": 15433, "ssl-mode": "disable"}),
        ),
        ("postgres", json!({"database": "other", "user": "admin"})),
        (
            "mysql",
            json!({"host": "attacker.example.com", "port": 443}),
        ),
    ] {
        let why = reasons(&job(connector, parameters.clone()), &policy);
        for name in parameters.as_object().expect("object").keys() {
            assert!(
                why.contains(&format!("parameter `{name}` is fixed by the connection")),
                "{connector} `{name}`: {why}"
            );
        }
    }
    // Local mode admits with the same rules.
    let local = AdmissionPolicy {
        local: true,
        ..AdmissionPolicy::default()
    };
    let why = reasons(
        &json!({
            "id": "job-1", "runId": "r1", "connector": "sqlite", "connection": "local",
            "transferMode": "direct-ingestion", "parameters": {"path": "/etc/shadow"}
        }),
        &local,
    );
    assert!(
        why.contains("parameter `path` is fixed by the connection"),
        "{why}"
    );
}

/// What a job may still choose: filters. The connection supplies the rest at extraction.
#[test]
fn a_job_with_only_filters_is_admitted_without_the_connections_values() {
    let admitted = admit(
        &job("postgres", json!({"include-schemas": "^public$"})),
        &descriptors(),
        &AdmissionPolicy::default(),
    )
    .expect("admitted");
    for bound in ["host", "port", "database", "user", "ssl-mode"] {
        assert!(
            !admitted.arguments.contains_key(bound),
            "`{bound}` became a Workflow argument"
        );
    }
    assert_eq!(admitted.arguments["include-schemas"], "^public$");
}

/// Review finding L8: regex parameters were compiled only at extraction, so
/// `exclude-tables: "{"` passed admission.
#[test]
fn l8_a_regex_that_does_not_compile_is_rejected_at_admission() {
    let why = reasons(
        &job("postgres", json!({"exclude-tables": "{"})),
        &AdmissionPolicy::default(),
    );
    assert!(
        why.contains("parameter `exclude-tables`") && why.contains("is not a regular expression"),
        "{why}"
    );
}

/// Review finding (newlines in paths): a value with a newline was admitted (the SQLite
/// `path` = `<file>\n--to=file:///tmp/pwn`). Control characters are refused in every string.
#[test]
fn control_characters_are_rejected_in_every_string_parameter() {
    for value in [
        "^public$\n--to=file:///tmp/pwn",
        "tab\there",
        "nul\u{0}",
        "del\u{7f}",
        "esc\u{1b}[31m",
    ] {
        let why = reasons(
            &job("postgres", json!({"include-tables": value})),
            &AdmissionPolicy::default(),
        );
        assert!(why.contains("control characters"), "{value:?}: {why}");
    }
}
