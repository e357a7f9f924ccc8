//! The security baseline every generated pod meets, and the check that proves it.
//!
//! The compiler builds every pod from [`pod_security_context`] and every container from
//! [`container_security_context`]. [`check`] re-verifies the result from the serialised
//! object after overlays, so no later step can weaken it unnoticed.

use argo_workflows::core::{Capabilities, PodSecurityContext, SeccompProfile, SecurityContext};
use argo_workflows::core::{Container, Volume};
use argo_workflows::{AnyWorkflowObject, OtherFields, Template, WorkflowSpec};
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
    match AnyWorkflowObject::from_value(object.clone()) {
        Ok(Some(typed)) => check_typed(&typed),
        Ok(None) => vec!["not a workflow object".to_owned()],
        Err(e) => vec![format!("not a valid workflow object: {e}")],
    }
}

/// [`check`] on a typed object, without serialising it.
pub fn check_typed(object: &AnyWorkflowObject) -> Vec<String> {
    let (spec, spec_path) = match object {
        AnyWorkflowObject::Workflow(w) => (&w.spec, "/spec"),
        AnyWorkflowObject::WorkflowTemplate(w) => (&w.spec, "/spec"),
        AnyWorkflowObject::ClusterWorkflowTemplate(w) => (&w.spec, "/spec"),
        AnyWorkflowObject::CronWorkflow(c) => (&c.spec.workflow_spec, "/spec/workflowSpec"),
    };
    let mut problems = Vec::new();
    check_pod_fields(
        spec_path,
        &spec.other,
        spec.volumes.as_deref(),
        spec.security_context.as_ref(),
        &mut problems,
    );
    if spec.template_defaults.is_some() {
        problems.push(format!(
            "{spec_path}/templateDefaults must not be set: its fields reach every pod unchecked"
        ));
    }
    for (i, template) in spec
        .templates
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let base = format!("{spec_path}/templates/{i}");
        let containers: Vec<(String, &Container, &OtherFields)> =
            if let Some(c) = &template.container {
                vec![(format!("{base}/container"), &c.0, &EMPTY)]
            } else if let Some(set) = &template.container_set {
                set.containers
                    .iter()
                    .enumerate()
                    .map(|(j, node)| {
                        (
                            format!("{base}/containerSet/containers/{j}"),
                            &node.container,
                            &node.other,
                        )
                    })
                    .collect()
            } else {
                // DAG and steps templates run no pod of their own; anything else runs a pod
                // this check cannot vouch for.
                if template.dag.is_none() && template.steps.is_none() {
                    problems.push(format!(
                        "{base} runs a pod that is neither a container nor a container set"
                    ));
                }
                continue;
            };
        check_pod(&base, template, spec, &mut problems);
        for (path, container, other) in containers {
            check_container(&path, container, other, &mut problems);
        }
    }
    problems
}

static EMPTY: OtherFields = OtherFields::new();

fn expect<T: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    value: Option<&T>,
    wanted: &T,
    path: &str,
) {
    if value != Some(wanted) {
        let found = value.map_or("nothing".to_owned(), |v| format!("{v:?}"));
        problems.push(format!("{path} must be {wanted:?}, found {found}"));
    }
}

/// A pod's or a container's seccomp profile (at `path`) must be the baseline's.
fn expect_runtime_default(
    problems: &mut Vec<String>,
    profile: Option<&SeccompProfile>,
    path: &str,
) {
    expect(problems, profile.map(|p| &p.type_), &seccomp().type_, path);
}

/// Pod-spec fields that would undo the baseline, wherever a pod's settings are given (the
/// workflow spec or a template).
fn check_pod_fields(
    base: &str,
    other: &OtherFields,
    volumes: Option<&[Volume]>,
    context: Option<&PodSecurityContext>,
    problems: &mut Vec<String>,
) {
    for field in [
        "initContainers",
        "sidecars",
        "podSpecPatch",
        "hostNetwork",
        "hostPID",
        "hostIPC",
    ] {
        if other
            .get(field)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        {
            problems.push(format!("{base}/{field} must not be set"));
        }
    }
    for (i, volume) in volumes.unwrap_or_default().iter().enumerate() {
        if volume.host_path.is_some() {
            problems.push(format!(
                "{base}/volumes/{i}: hostPath volumes are not allowed"
            ));
        }
    }
    for (id, value) in [
        ("runAsUser", context.and_then(|c| c.run_as_user)),
        ("runAsGroup", context.and_then(|c| c.run_as_group)),
    ] {
        if let Some(value) = value
            && value <= 0
        {
            problems.push(format!(
                "{base}/securityContext/{id} must be a fixed non-zero id, found {value}"
            ));
        }
    }
}

fn check_pod(base: &str, template: &Template, spec: &WorkflowSpec, problems: &mut Vec<String>) {
    check_pod_fields(
        base,
        &template.other,
        template.volumes.as_deref(),
        template.security_context.as_ref(),
        problems,
    );
    let pod = format!("{base}/securityContext");
    let context = template.security_context.as_ref();
    expect(
        problems,
        context.and_then(|c| c.run_as_non_root.as_ref()),
        &true,
        &format!("{pod}/runAsNonRoot"),
    );
    expect_runtime_default(
        problems,
        context.and_then(|c| c.seccomp_profile.as_ref()),
        &format!("{pod}/seccompProfile/type"),
    );
    let automount = template
        .automount_service_account_token
        .or(spec.automount_service_account_token);
    if automount == Some(false) {
        let executor = template
            .executor
            .as_ref()
            .and_then(|e| e.service_account_name.as_deref())
            .or_else(|| {
                spec.executor
                    .as_ref()
                    .and_then(|e| e.service_account_name.as_deref())
            });
        if executor.is_none_or(str::is_empty) {
            problems.push(format!(
                "{base}: a pod without a token needs executor.serviceAccountName"
            ));
        }
    }
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    for key in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/component",
        "app.kubernetes.io/part-of",
    ] {
        if labels.is_none_or(|l| !l.contains_key(key)) {
            problems.push(format!("{base}/metadata/labels is missing {key}"));
        }
    }
}

fn check_container(
    path: &str,
    container: &Container,
    other: &OtherFields,
    problems: &mut Vec<String>,
) {
    let context = container.security_context.as_ref();
    let at = |field: &str| format!("{path}/securityContext/{field}");
    expect(
        problems,
        context.and_then(|c| c.run_as_non_root.as_ref()),
        &true,
        &at("runAsNonRoot"),
    );
    expect(
        problems,
        context.and_then(|c| c.read_only_root_filesystem.as_ref()),
        &true,
        &at("readOnlyRootFilesystem"),
    );
    expect(
        problems,
        context.and_then(|c| c.allow_privilege_escalation.as_ref()),
        &false,
        &at("allowPrivilegeEscalation"),
    );
    let capabilities = context.and_then(|c| c.capabilities.as_ref());
    expect(
        problems,
        capabilities.and_then(|c| c.drop.as_ref()),
        &vec!["ALL".to_owned()],
        &at("capabilities/drop"),
    );
    if capabilities.and_then(|c| c.add.as_ref()).is_some() {
        problems.push(format!("{} must not be set", at("capabilities/add")));
    }
    expect_runtime_default(
        problems,
        context.and_then(|c| c.seccomp_profile.as_ref()),
        &at("seccompProfile/type"),
    );
    if context.and_then(|c| c.privileged) == Some(true) {
        problems.push(format!("{} must not be true", at("privileged")));
    }
    for (id, value) in [
        ("runAsUser", context.and_then(|c| c.run_as_user)),
        ("runAsGroup", context.and_then(|c| c.run_as_group)),
    ] {
        if value.is_none_or(|v| v <= 0) {
            problems.push(format!(
                "{} must be a fixed non-zero id, found {value:?}",
                at(id)
            ));
        }
    }
    match container.image.as_deref() {
        Some(image)
            if !image.ends_with(":latest") && (image.contains(':') || image.contains('@')) => {}
        image => problems.push(format!(
            "{path}/image {image:?} is not pinned to a tag or digest"
        )),
    }
    for (k, var) in container
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if var
            .value_from
            .as_ref()
            .is_some_and(|v| v.secret_key_ref.is_some())
        {
            problems.push(format!(
                "{path}/env/{k}: secrets must be mounted as files, not passed in the environment"
            ));
        }
    }
    if container.env_from.is_some() {
        problems.push(format!("{path}/envFrom must not be set"));
    }
    if !other.is_empty() {
        let fields: Vec<&String> = other.keys().collect();
        problems.push(format!("{path}: unexpected fields {fields:?}"));
    }
}
