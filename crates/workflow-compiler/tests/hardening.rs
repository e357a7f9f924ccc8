//! Every container of every generated object meets the security baseline, whatever the
//! options; and the baseline check itself catches each kind of weakening.

mod support;

use serde_json::{Value, json};
use workflow_compiler::{AgentOptions, hardening};

/// The Argo objects of two renders (default options, every option), counted: a test over
/// them cannot pass on an empty list.
fn all_objects() -> Vec<(String, Value)> {
    let mut objects = support::objects(&support::render(&AgentOptions::default(), &[]));
    objects.extend(support::objects(&support::render(
        &support::every_option(),
        &[],
    )));
    let objects: Vec<(String, Value)> = objects
        .into_iter()
        .filter(|(_, o)| support::is_argo_kind(o))
        .collect();
    // postgres, mysql, snowflake and tableau (sqlite is localOnly), the orchestrator's and
    // the heartbeat's WorkflowTemplates, × 2 renders; and the two CronWorkflows of each render.
    let kinds = |kind: &str| objects.iter().filter(|(_, o)| o["kind"] == kind).count();
    assert_eq!(kinds("WorkflowTemplate"), 12, "WorkflowTemplates found");
    assert_eq!(kinds("CronWorkflow"), 4, "CronWorkflows found");
    objects
}

#[test]
fn every_generated_pod_and_container_meets_the_baseline() {
    let objects = all_objects();
    // postgres, mysql, snowflake and tableau (sqlite is localOnly), the orchestrator's and
    // heartbeat's WorkflowTemplates and their two CronWorkflows, × 2 renders.
    assert_eq!(objects.len(), 16);
    let mut containers = 0;
    for (name, object) in &objects {
        let problems = hardening::check(object);
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        let text = object.to_string();
        containers += text.matches("\"readOnlyRootFilesystem\":true").count();
    }
    // extract + upload + report per connector (4 × 3), one per agent WorkflowTemplate (2; the
    // CronWorkflows only reference them), × 2 renders.
    assert_eq!(containers, 2 * (4 * 3 + 2), "every container was looked at");
}

#[test]
fn connector_pods_mount_no_token_and_name_the_executor_account() {
    let mut checked = 0;
    for (name, object) in all_objects() {
        if !is_connector_template(&object) {
            continue;
        }
        checked += 1;
        let run = &object["spec"]["templates"][0];
        assert_eq!(run["automountServiceAccountToken"], json!(false), "{name}");
        assert!(
            run["executor"]["serviceAccountName"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        assert_eq!(
            object["spec"]["automountServiceAccountToken"],
            json!(false),
            "{name}"
        );
    }
    // postgres, mysql, snowflake and tableau, × 2 renders: the filter above did not skip
    // them all.
    assert_eq!(checked, 8);
}

#[test]
fn secrets_are_referenced_by_name_and_mounted_as_files_only() {
    for (name, object) in all_objects() {
        let text = serde_json::to_string(&object).expect("json");
        assert!(
            !text.contains("secretKeyRef"),
            "{name}: a secret reaches the environment"
        );
        assert!(!text.contains("envFrom"), "{name}: envFrom is set");
        assert!(
            !text.contains("stringData") && !text.contains("\"data\""),
            "{name}: secret data inline"
        );
    }
}

#[test]
fn parameters_reach_containers_as_separate_arguments_never_through_a_shell() {
    let mut connector_templates = 0;
    for (name, object) in all_objects() {
        let text = serde_json::to_string(&object).expect("json");
        for shell in ["\"sh\"", "\"bash\"", "\"/bin/sh\"", "\"-c\""] {
            assert!(!text.contains(shell), "{name}: {shell} found");
        }
        assert!(!text.contains("\"script\""), "{name}: a script template");
        if is_connector_template(&object) {
            connector_templates += 1;
            let declared: Vec<String> = object["spec"]["arguments"]["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .map(|p| p["name"].as_str().expect("name").to_owned())
                .collect();
            let args = object["spec"]["templates"][0]["containerSet"]["containers"][0]["args"]
                .as_array()
                .expect("args");
            let mut references = 0;
            for arg in args {
                let arg = arg.as_str().expect("string");
                // Each expression stands alone in its argument and names a declared parameter.
                for (i, _) in arg.match_indices("{{workflow.parameters.") {
                    references += 1;
                    let rest = &arg[i + "{{workflow.parameters.".len()..];
                    let parameter = &rest[..rest.find("}}").expect("closed")];
                    assert!(
                        declared.iter().any(|d| d == parameter),
                        "{name}: {parameter} is not declared"
                    );
                }
            }
            assert!(references > 0, "{name}: no parameter reaches the container");
        }
    }
    // postgres, mysql, snowflake and tableau, × 2 renders: the filter above did not skip
    // them all.
    assert_eq!(connector_templates, 8);
}

/// A connector's WorkflowTemplate (not the orchestrator's or the heartbeat's).
fn is_connector_template(object: &Value) -> bool {
    object["kind"] == "WorkflowTemplate"
        && object["metadata"]["labels"]["app.kubernetes.io/component"] == "connector"
}

/// The orchestrator's WorkflowTemplate with one value replaced, checked against the baseline.
fn weakened(pointer: &str, value: Value) -> Vec<String> {
    let mut object = serde_json::to_value(workflow_compiler::orchestrator_template(
        &AgentOptions::default(),
    ))
    .expect("json");
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a key");
    let parent = object
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{parent} exists"));
    parent[key] = value;
    hardening::check(&object)
}

#[test]
fn the_baseline_check_catches_each_weakening() {
    let pod = "/spec/templates/0";
    let context = format!("{pod}/container/securityContext");
    let cases = [
        ("root user", format!("{context}/runAsUser"), json!(0)),
        (
            "writable root filesystem",
            format!("{context}/readOnlyRootFilesystem"),
            json!(false),
        ),
        (
            "privilege escalation",
            format!("{context}/allowPrivilegeEscalation"),
            json!(true),
        ),
        (
            "added capability",
            format!("{context}/capabilities/add"),
            json!(["NET_ADMIN"]),
        ),
        (
            "capabilities kept",
            format!("{context}/capabilities/drop"),
            json!([]),
        ),
        (
            "unconfined seccomp",
            format!("{context}/seccompProfile/type"),
            json!("Unconfined"),
        ),
        ("privileged", format!("{context}/privileged"), json!(true)),
        ("root group", format!("{context}/runAsGroup"), json!(0)),
        (
            "latest image",
            format!("{pod}/container/image"),
            json!("outpost:latest"),
        ),
        (
            "unpinned image",
            format!("{pod}/container/image"),
            json!("outpost"),
        ),
        (
            "secret in env",
            format!("{pod}/container/env"),
            json!([{"name": "P", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        ),
        (
            "envFrom",
            format!("{pod}/container/envFrom"),
            json!([{"secretRef": {"name": "s"}}]),
        ),
        (
            "pod may run as root",
            format!("{pod}/securityContext/runAsNonRoot"),
            json!(false),
        ),
        ("no labels", format!("{pod}/metadata"), json!({})),
        (
            "no token and no executor account",
            format!("{pod}/automountServiceAccountToken"),
            json!(false),
        ),
    ];
    for (label, pointer, value) in cases {
        assert!(
            !weakened(&pointer, value).is_empty(),
            "the check missed: {label}"
        );
    }
    assert!(
        weakened(&format!("{pod}/name"), json!("orchestrate")).is_empty(),
        "an unchanged object passes"
    );
}
