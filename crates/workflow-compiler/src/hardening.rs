//! The security baseline every generated pod meets, and the check that proves it.
//!
//! The compiler builds every pod from [`pod_security_context`] and every container from
//! [`container_security_context`]. [`check`] re-verifies the result from the serialised
//! object after overlays, so no later step can weaken it unnoticed.

use argo_workflows::core::{Capabilities, PodSecurityContext, SeccompProfile, SecurityContext};
use serde_json::Value;

/// User and group every container runs as (the `nonroot` user of distroless images).
pub const RUN_AS_ID: i64 = 65_532;

fn seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

/// Pod-level security context of every generated pod.
pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_ID),
        run_as_group: Some(RUN_AS_ID),
        fs_group: Some(RUN_AS_ID),
        seccomp_profile: Some(seccomp()),
        ..Default::default()
    }
}

/// Container-level security context of every generated container.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_ID),
        run_as_group: Some(RUN_AS_ID),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(seccomp()),
        ..Default::default()
    }
}

/// Checks a serialised Argo object (WorkflowTemplate, CronWorkflow …) against the baseline.
/// Returns one line per violation, naming the JSON path; empty when the object complies.
pub fn check(object: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let spec = match object.get("kind").and_then(Value::as_str) {
        Some("CronWorkflow") => object.pointer("/spec/workflowSpec"),
        Some(_) => object.get("spec"),
        None => None,
    };
    let Some(spec) = spec else {
        return vec!["object has no workflow spec".to_owned()];
    };
    let spec_path = if object.get("kind").and_then(Value::as_str) == Some("CronWorkflow") {
        "/spec/workflowSpec"
    } else {
        "/spec"
    };
    check_pod_fields(spec_path, spec, &mut problems);
    if spec.get("templateDefaults").is_some() {
        problems.push(format!(
            "{spec_path}/templateDefaults must not be set: its fields reach every pod unchecked"
        ));
    }
    let templates = spec
        .get("templates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, template) in templates.iter().enumerate() {
        let base = format!("{spec_path}/templates/{i}");
        let containers: Vec<(String, &Value)> = if let Some(c) = template.get("container") {
            vec![(format!("{base}/container"), c)]
        } else if let Some(set) = template
            .pointer("/containerSet/containers")
            .and_then(Value::as_array)
        {
            set.iter()
                .enumerate()
                .map(|(j, c)| (format!("{base}/containerSet/containers/{j}"), c))
                .collect()
        } else {
            // DAG and steps templates run no pod of their own.
            continue;
        };
        check_pod(&base, template, spec, &mut problems);
        for (path, container) in containers {
            check_container(&path, container, &mut problems);
        }
    }
    problems
}

fn expect(problems: &mut Vec<String>, value: Option<&Value>, wanted: &Value, path: &str) {
    if value != Some(wanted) {
        let found = value.map_or("nothing".to_owned(), Value::to_string);
        problems.push(format!("{path} must be {wanted}, found {found}"));
    }
}

/// Pod-spec fields that would undo the baseline, wherever a pod's settings are given (the
/// workflow spec or a template).
fn check_pod_fields(base: &str, fields: &Value, problems: &mut Vec<String>) {
    for field in [
        "initContainers",
        "sidecars",
        "podSpecPatch",
        "hostNetwork",
        "hostPID",
        "hostIPC",
    ] {
        if fields
            .get(field)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        {
            problems.push(format!("{base}/{field} must not be set"));
        }
    }
    let volumes = fields
        .get("volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, volume) in volumes.iter().enumerate() {
        if volume.get("hostPath").is_some() {
            problems.push(format!(
                "{base}/volumes/{i}: hostPath volumes are not allowed"
            ));
        }
    }
    for id in ["runAsUser", "runAsGroup"] {
        if let Some(value) = fields.pointer(&format!("/securityContext/{id}"))
            && value.as_i64().is_none_or(|v| v <= 0)
        {
            problems.push(format!(
                "{base}/securityContext/{id} must be a fixed non-zero id, found {value}"
            ));
        }
    }
}

fn check_pod(base: &str, template: &Value, spec: &Value, problems: &mut Vec<String>) {
    check_pod_fields(base, template, problems);
    let pod = format!("{base}/securityContext");
    let context = template.get("securityContext");
    expect(
        problems,
        context.and_then(|c| c.get("runAsNonRoot")),
        &Value::Bool(true),
        &format!("{pod}/runAsNonRoot"),
    );
    expect(
        problems,
        context.and_then(|c| c.pointer("/seccompProfile/type")),
        &Value::from("RuntimeDefault"),
        &format!("{pod}/seccompProfile/type"),
    );
    let automount = template
        .get("automountServiceAccountToken")
        .or_else(|| spec.get("automountServiceAccountToken"));
    if automount == Some(&Value::Bool(false)) {
        let executor = template
            .pointer("/executor/serviceAccountName")
            .or_else(|| spec.pointer("/executor/serviceAccountName"));
        if executor.and_then(Value::as_str).is_none_or(str::is_empty) {
            problems.push(format!(
                "{base}: a pod without a token needs executor.serviceAccountName"
            ));
        }
    }
    let labels = template.pointer("/metadata/labels");
    for key in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/component",
        "app.kubernetes.io/part-of",
    ] {
        if labels.and_then(|l| l.get(key)).is_none() {
            problems.push(format!("{base}/metadata/labels is missing {key}"));
        }
    }
}

fn check_container(path: &str, container: &Value, problems: &mut Vec<String>) {
    let context = container.get("securityContext");
    let at = |field: &str| format!("{path}/securityContext/{field}");
    let field = |name: &str| context.and_then(|c| c.pointer(name));
    expect(
        problems,
        field("/runAsNonRoot"),
        &Value::Bool(true),
        &at("runAsNonRoot"),
    );
    expect(
        problems,
        field("/readOnlyRootFilesystem"),
        &Value::Bool(true),
        &at("readOnlyRootFilesystem"),
    );
    expect(
        problems,
        field("/allowPrivilegeEscalation"),
        &Value::Bool(false),
        &at("allowPrivilegeEscalation"),
    );
    expect(
        problems,
        field("/capabilities/drop"),
        &serde_json::json!(["ALL"]),
        &at("capabilities/drop"),
    );
    expect(
        problems,
        field("/seccompProfile/type"),
        &Value::from("RuntimeDefault"),
        &at("seccompProfile/type"),
    );
    if field("/capabilities/add").is_some() {
        problems.push(format!("{} must not be set", at("capabilities/add")));
    }
    if field("/privileged") == Some(&Value::Bool(true)) {
        problems.push(format!("{} must not be true", at("privileged")));
    }
    match field("/runAsUser").and_then(Value::as_i64) {
        Some(uid) if uid > 0 => {}
        other => problems.push(format!(
            "{} must be a fixed non-zero uid, found {other:?}",
            at("runAsUser")
        )),
    }
    match field("/runAsGroup").and_then(Value::as_i64) {
        Some(gid) if gid > 0 => {}
        other => problems.push(format!(
            "{} must be a fixed non-zero gid, found {other:?}",
            at("runAsGroup")
        )),
    }
    if let Some(image) = container.get("image").and_then(Value::as_str)
        && (image.ends_with(":latest") || !(image.contains(':') || image.contains('@')))
    {
        problems.push(format!(
            "{path}/image `{image}` is not pinned to a tag or digest"
        ));
    }
    let env = container
        .get("env")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (k, var) in env.iter().enumerate() {
        if var.pointer("/valueFrom/secretKeyRef").is_some() {
            problems.push(format!(
                "{path}/env/{k}: secrets must be mounted as files, not passed in the environment"
            ));
        }
    }
    if container.get("envFrom").is_some() {
        problems.push(format!("{path}/envFrom must not be set"));
    }
}
