//! Overlays: how platform teams customise generated objects without forking.
//!
//! An overlay is a YAML file of patches applied after compilation:
//!
//! ```yaml
//! vars:
//!   team: data-platform
//! patches:
//!   - target: {kind: WorkflowTemplate, name: "outpost-*"}  # optional; `*` is a wildcard
//!     path: /spec/templates/*/metadata                      # JSON pointer; `*` = every item
//!     merge:                                                # JSON merge patch (RFC 7386)
//!       annotations:
//!         example.com/team: "[[ vars.team ]]"
//!         example.com/connector: "[[ object.connector ]]"
//! ```
//!
//! Strings in `merge` are minijinja templates with `[[ … ]]`, `[% … %]` and `[# … #]`
//! delimiters, so Argo's own `{{…}}` expressions pass through untouched. They see `vars`
//! and `object` (`kind`, `name`, `connector`).
//!
//! Every value an overlay changes is checked against an allow-list of paths (labels,
//! annotations, scheduling, resources, retries, deadlines, garbage collection, schedules).
//! Images, commands, arguments, environment, volumes, security contexts and service
//! accounts are fixed by the compiler: an overlay touching them is rejected, naming the
//! overlay file, the patch's line and the path.

use std::collections::BTreeMap;

use connector_descriptor::{Diagnostic, Diagnostics, yaml};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::CompileError;

/// A parsed overlay file.
#[derive(Clone, Debug)]
pub struct Overlay {
    file: String,
    document: OverlayDocument,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayDocument {
    #[serde(default)]
    vars: BTreeMap<String, Value>,
    #[serde(default)]
    patches: Vec<Spanned<Patch>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    #[serde(default)]
    target: Target,
    #[serde(default)]
    path: String,
    merge: Value,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    kind: Option<String>,
    name: Option<String>,
}

const ANY: &[&str] = &["WorkflowTemplate", "CronWorkflow", "ConfigMap"];
const WORKFLOWS: &[&str] = &["WorkflowTemplate", "CronWorkflow"];
const TEMPLATES: &[&str] = &["WorkflowTemplate"];
const CRON: &[&str] = &["CronWorkflow"];
const CONFIG_MAP: &[&str] = &["ConfigMap"];

/// Paths an overlay may change (JSON pointers; `*` matches any one key or index), and the
/// kinds each applies to. A change is allowed when its path starts with an entry for its
/// object's kind. `{spec}` stands for `/spec` and, in a CronWorkflow, `/spec/workflowSpec`.
/// A CronWorkflow's Workflow only references the agent's WorkflowTemplate, and under Argo's
/// `templateReferencing: Strict` may set only a few fields over it (`ValidateUserOverrides`):
/// pod settings go on the WorkflowTemplate.
const ALLOWED: &[(&[&str], &str)] = &[
    (ANY, "/metadata/labels"),
    (ANY, "/metadata/annotations"),
    (TEMPLATES, "{spec}/podMetadata"),
    (WORKFLOWS, "{spec}/workflowMetadata"),
    (TEMPLATES, "{spec}/nodeSelector"),
    (TEMPLATES, "{spec}/tolerations"),
    (TEMPLATES, "{spec}/affinity"),
    (WORKFLOWS, "{spec}/priority"),
    (TEMPLATES, "{spec}/podPriorityClassName"),
    (TEMPLATES, "{spec}/schedulerName"),
    (WORKFLOWS, "{spec}/activeDeadlineSeconds"),
    (WORKFLOWS, "{spec}/podGC"),
    (WORKFLOWS, "{spec}/ttlStrategy"),
    (TEMPLATES, "{spec}/parallelism"),
    (TEMPLATES, "{spec}/templates/*/metadata"),
    (TEMPLATES, "{spec}/templates/*/nodeSelector"),
    (TEMPLATES, "{spec}/templates/*/tolerations"),
    (TEMPLATES, "{spec}/templates/*/affinity"),
    (TEMPLATES, "{spec}/templates/*/priorityClassName"),
    (TEMPLATES, "{spec}/templates/*/schedulerName"),
    (TEMPLATES, "{spec}/templates/*/retryStrategy"),
    (TEMPLATES, "{spec}/templates/*/activeDeadlineSeconds"),
    (TEMPLATES, "{spec}/templates/*/timeout"),
    (TEMPLATES, "{spec}/templates/*/container/resources"),
    (
        TEMPLATES,
        "{spec}/templates/*/containerSet/containers/*/resources",
    ),
    (CRON, "/spec/schedules"),
    (CRON, "/spec/suspend"),
    (CRON, "/spec/startingDeadlineSeconds"),
    (CRON, "/spec/successfulJobsHistoryLimit"),
    (CRON, "/spec/failedJobsHistoryLimit"),
    (CONFIG_MAP, "/data/*"),
];

/// Label and annotation prefixes that change how Kubernetes or a mutating webhook treats a
/// pod (AppArmor and seccomp annotations, service-mesh sidecar injection, cloud workload
/// identity token projection, secret injectors) or that the compiler owns. Overlays may not
/// set them.
const RESERVED_KEY_DOMAINS: &[&str] = &[
    "kubernetes.io",
    "k8s.io",
    "outpost.dev",
    "argoproj.io",
    "istio.io",
    "linkerd.io",
    "vault.hashicorp.com",
    "azure.workload.identity",
    "eks.amazonaws.com",
    "iam.gke.io",
    "opentelemetry.io",
    "dapr.io",
    "consul.hashicorp.com",
];

/// Why an overlay may not set this label or annotation key, if it may not.
fn reserved_key(key: &str) -> Option<&'static str> {
    let (prefix, _) = key.rsplit_once('/')?;
    RESERVED_KEY_DOMAINS
        .iter()
        .find(|domain| prefix == **domain || prefix.ends_with(&format!(".{domain}")))
        .map(|_| "keys under this prefix change how the pod runs or are owned by the compiler")
}

/// What the compiler owns, named in the error so the user knows why.
const FORBIDDEN_REASONS: &[(&str, &str)] = &[
    (
        "securityContext",
        "security contexts are fixed by the compiler",
    ),
    ("image", "images come from connector descriptors"),
    ("command", "commands come from connector descriptors"),
    ("args", "arguments come from connector descriptors"),
    (
        "serviceAccountName",
        "service accounts come from agent options",
    ),
    (
        "automountServiceAccountToken",
        "token mounting is fixed by the compiler",
    ),
    (
        "executor",
        "the executor's service account comes from agent options",
    ),
    ("env", "the environment comes from agent options"),
    ("volumes", "volumes are fixed by the compiler"),
    ("volumeMounts", "volume mounts are fixed by the compiler"),
    (
        "podSpecPatch",
        "pod spec patches could undo the security baseline",
    ),
];

impl Overlay {
    /// Parses an overlay. `file` names it in every diagnostic.
    pub fn parse(file: &str, text: &str) -> Result<Self, CompileError> {
        let document: OverlayDocument =
            yaml::from_str(file, text).map_err(|diagnostic| CompileError::Overlay {
                diagnostics: Diagnostics(vec![*diagnostic]),
            })?;
        Ok(Self {
            file: file.to_owned(),
            document,
        })
    }

    /// The file this overlay was read from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Applies every patch to the objects it targets, or reports every patch that failed.
    pub fn apply(&self, objects: &mut [Value]) -> Result<(), CompileError> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = SyntaxConfig::builder()
            .block_delimiters("[%", "%]")
            .variable_delimiters("[[", "]]")
            .comment_delimiters("[#", "#]")
            .build()
            .expect("the overlay delimiters are valid");
        environment.set_syntax(syntax);

        let mut problems = Vec::new();
        for (i, patch) in self.document.patches.iter().enumerate() {
            let at = |message: String| {
                Diagnostic::new(
                    &self.file,
                    patch.referenced,
                    format!("patches[{i}]"),
                    message,
                )
            };
            let (mut targeted, mut resolved_any) = (0, false);
            for object in objects.iter_mut() {
                if !patch.value.target.matches(object) {
                    continue;
                }
                targeted += 1;
                match self.apply_one(&environment, &patch.value, object) {
                    Ok(Some(patched)) => {
                        *object = patched;
                        resolved_any = true;
                    }
                    // The path does not exist in this object; others may have it.
                    Ok(None) => {}
                    Err(message) => {
                        problems.push(at(message));
                        resolved_any = true;
                    }
                }
            }
            if targeted == 0 {
                problems.push(at("matches no generated object".to_owned()).with_help(
                    "check `target.kind` and `target.name` against the files in workflow-templates/",
                ));
            } else if !resolved_any {
                problems.push(at(format!(
                    "path `{}` matches nothing in the {targeted} targeted objects",
                    patch.value.path
                )));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CompileError::Overlay {
                diagnostics: Diagnostics(problems),
            })
        }
    }

    /// The patched object, `None` when the patch's path exists nowhere in it, or why the
    /// patch may not apply.
    fn apply_one(
        &self,
        environment: &Environment<'_>,
        patch: &Patch,
        object: &Value,
    ) -> Result<Option<Value>, String> {
        let field = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let context = minijinja::context! {
            vars => minijinja::Value::from(minijinja::value::Serde(&self.document.vars)),
            object => minijinja::context! {
                kind => field("/kind"),
                name => field("/metadata/name"),
                connector => field("/metadata/labels/outpost.dev~1connector"),
            },
        };
        let merge = render_strings(environment, &patch.merge, &context)?;
        let mut patched = object.clone();
        if !(patch.path.is_empty() || patch.path.starts_with('/')) {
            return Err(format!(
                "path `{}` is not a JSON pointer (it must start with `/`)",
                patch.path
            ));
        }
        let pointers = resolve(&patched, &patch.path);
        if pointers.is_empty() {
            return Ok(None);
        }
        for pointer in pointers {
            merge_patch(location_mut(&mut patched, &pointer), &merge);
        }
        let mut changed = Vec::new();
        changed_paths(object, &patched, String::new(), &mut changed);
        let spec = if object.get("kind").and_then(Value::as_str) == Some("CronWorkflow") {
            "/spec/workflowSpec"
        } else {
            "/spec"
        };
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for path in changed {
            if let Err(reason) = change_allowed(kind, &path, &patched) {
                return Err(format!(
                    "may not change `{path}` in {}: {reason}",
                    describe(object)
                ));
            }
            if !allowed(kind, &path, spec) {
                let reason = path
                    .split('/')
                    .find_map(|segment| {
                        FORBIDDEN_REASONS
                            .iter()
                            .find(|(name, _)| *name == segment)
                            .map(|(_, why)| *why)
                    })
                    .unwrap_or("it is not in the overlay allow-list");
                return Err(format!(
                    "may not change `{path}` in {}: {reason}",
                    describe(object)
                ));
            }
        }
        Ok(Some(patched))
    }
}

impl Target {
    fn matches(&self, object: &Value) -> bool {
        let field = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        self.kind
            .as_deref()
            .is_none_or(|kind| kind == field("/kind"))
            && self
                .name
                .as_deref()
                .is_none_or(|pattern| glob(pattern, field("/metadata/name")))
    }
}

fn describe(object: &Value) -> String {
    let field = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    format!("{} {}", field("/kind"), field("/metadata/name"))
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn render_strings(
    environment: &Environment<'_>,
    value: &Value,
    context: &minijinja::Value,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(
            environment
                .render_str(text, context)
                .map_err(|e| format!("template `{text}` failed: {e}"))?,
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_strings(environment, v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_strings(environment, v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Every JSON pointer that `path` (with `*` wildcards) selects in `value`. Segments that do
/// not exist yet are created as objects when they are the last, so a patch can add a map.
fn resolve(value: &Value, path: &str) -> Vec<String> {
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut found = Vec::new();
    walk(value, &segments, String::new(), true, &mut found);
    found
}

/// `create`: whether a missing last segment may be created. It may not right after a `*`
/// over an object's keys, which would add the field under every key of, say, `/spec`.
fn walk(value: &Value, segments: &[String], at: String, create: bool, found: &mut Vec<String>) {
    let Some((first, rest)) = segments.split_first() else {
        found.push(at);
        return;
    };
    match (value, first.as_str()) {
        (Value::Array(items), "*") => {
            for (i, item) in items.iter().enumerate() {
                walk(item, rest, format!("{at}/{i}"), true, found);
            }
        }
        (Value::Object(map), "*") => {
            for (key, item) in map {
                walk(item, rest, format!("{at}/{}", escape(key)), false, found);
            }
        }
        (Value::Array(items), index) => {
            if let Some(item) = index.parse::<usize>().ok().and_then(|i| items.get(i)) {
                walk(item, rest, format!("{at}/{index}"), true, found);
            }
        }
        (Value::Object(map), key) => match map.get(key) {
            Some(item) => walk(item, rest, format!("{at}/{}", escape(key)), true, found),
            // A missing last segment is created by the merge.
            None if rest.is_empty() && create => found.push(format!("{at}/{}", escape(key))),
            None => {}
        },
        _ => {}
    }
}

/// The value at `pointer`, created (as null) when only its last segment is missing.
fn location_mut<'a>(value: &'a mut Value, pointer: &str) -> &'a mut Value {
    if value.pointer(pointer).is_none() {
        let (parent, key) = pointer
            .rsplit_once('/')
            .expect("a resolved pointer has a segment");
        let key = key.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = value.pointer_mut(parent) {
            map.insert(key, Value::Null);
        }
    }
    value.pointer_mut(pointer).expect("resolved pointer exists")
}

/// RFC 7386 JSON merge patch. A pointer to a missing key (see [`resolve`]) is created.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let map = target.as_object_mut().expect("just made an object");
    for (key, value) in patch_map {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The leaf paths where `before` and `after` differ.
fn changed_paths(before: &Value, after: &Value, at: String, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = format!("{at}/{}", escape(key));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => changed_paths(x, y, path, out),
                    // An added subtree is checked leaf by leaf (its keys may be reserved).
                    (None, Some(y)) => added_paths(y, path, out),
                    _ => out.push(path),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                changed_paths(x, y, format!("{at}/{i}"), out);
            }
        }
        (x, y) if x == y => {}
        // A replaced object's keys are checked one by one, as if added.
        (_, Value::Object(map)) if !map.is_empty() => added_paths(after, at, out),
        _ => out.push(if at.is_empty() { "/".to_owned() } else { at }),
    }
}

/// Every leaf path of a value that did not exist before.
fn added_paths(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                added_paths(item, format!("{at}/{}", escape(key)), out);
            }
        }
        _ => out.push(at),
    }
}

fn allowed(kind: &str, path: &str, spec: &str) -> bool {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    ALLOWED
        .iter()
        .filter(|(kinds, _)| kinds.contains(&kind))
        .any(|(_, pattern)| {
            let pattern = pattern.replace("{spec}", spec);
            let wanted: Vec<&str> = pattern.split('/').skip(1).collect();
            wanted.len() <= segments.len()
                && wanted
                    .iter()
                    .zip(&segments)
                    .all(|(w, s)| *w == "*" || w == s)
        })
}

/// Value-level rules on top of the path allow-list: label and annotation keys outside the
/// reserved prefixes, and concurrency limits that stay positive whole numbers.
fn change_allowed(kind: &str, path: &str, patched: &Value) -> Result<(), String> {
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    if let Some(at) = segments
        .iter()
        .position(|s| s == "labels" || s == "annotations")
        && let Some(key) = segments.get(at + 1)
        && (at == 0 || segments[at - 1] == "metadata" || segments[at - 1].ends_with("Metadata"))
    {
        if let Some(reason) = reserved_key(key) {
            return Err(format!("`{key}`: {reason}"));
        }
        if !crate::is_label_key(key) {
            return Err(format!("`{key}` is not a valid label or annotation key"));
        }
    }
    if kind == "ConfigMap" && segments.first().is_some_and(|s| s == "data") {
        let limit = patched.pointer(path).and_then(Value::as_str);
        if limit
            .and_then(|l| l.parse::<u32>().ok())
            .is_none_or(|n| n == 0)
        {
            return Err("a concurrency limit must stay a whole number of at least 1".to_owned());
        }
    }
    Ok(())
}
