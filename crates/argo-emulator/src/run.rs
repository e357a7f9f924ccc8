//! The controller: submission, templates, steps, retries, the exit handler.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::util::{self, int_or_string, list_of, str_of, substitute, substitute_value};
use crate::{Emulator, EmulatorError, Node, NodeKind, Phase, WorkflowRun, expr, pod};

/// Kubernetes' `generateName` alphabet (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Emulated time: seconds since the workflow started, `scale` emulated seconds per real one.
pub(crate) struct Clock {
    start: Instant,
    scale: f64,
    /// Unix time of the start, whole seconds, so emulated times truncate like `metav1.Time`.
    pub(crate) epoch: f64,
}

impl Clock {
    pub(crate) fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.scale
    }
    /// Real time until the emulated time `t` (zero when past).
    pub(crate) fn until(&self, t: f64) -> Duration {
        Duration::from_secs_f64(((t - self.now()) / self.scale).clamp(0.0, 1e9))
    }
    pub(crate) fn sleep_until(&self, t: f64) {
        std::thread::sleep(self.until(t));
    }
}

/// One workflow being run.
pub(crate) struct Run<'e> {
    pub(crate) emu: &'e Emulator,
    pub(crate) name: String,
    templates: BTreeMap<String, Value>,
    pub(crate) wf_volumes: Vec<Value>,
    /// `spec.retryStrategy`: the default of templates without one (`woc.retryStrategy`).
    default_retry: Option<Value>,
    globals: BTreeMap<String, String>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) clock: Clock,
    /// `spec.activeDeadlineSeconds`, as emulated seconds since the start.
    pub(crate) deadline: Option<f64>,
    /// `backoff.maxDuration` of the retry node being run (Argo's `executionDeadline`).
    pub(crate) execution_deadline: Option<f64>,
    pub(crate) dir: PathBuf,
    pub(crate) on_exit: bool,
    /// Why the run cannot go on (a pod that can never start).
    pub(crate) stuck: Option<String>,
}

pub(crate) fn run(emu: &Emulator, workflow: &Value) -> Result<WorkflowRun, EmulatorError> {
    let meta = workflow.get("metadata").unwrap_or(&Value::Null);
    let name = match str_of(meta, "name") {
        "" if !str_of(meta, "generateName").is_empty() => {
            // Kubernetes' SimpleNameGenerator keeps the prefix to 58 characters.
            let prefix: String = str_of(meta, "generateName").chars().take(58).collect();
            format!("{prefix}{}", util::random_chars(NAME_ALPHABET, 5))
        }
        "" => {
            return Err(EmulatorError::Invalid(
                "metadata.name or metadata.generateName is required".into(),
            ));
        }
        name => name.to_owned(),
    };
    if name.len() > 63 {
        return Err(EmulatorError::Invalid(format!(
            "workflow name {name:?} must not be more than 63 characters long (currently {})",
            name.len()
        )));
    }
    // The controller checks its workflow restrictions before anything runs, and marks the
    // Workflow Error (`setExecWorkflow`, `markWorkflowError`): no node, no exit handler.
    if let Some(message) = restricted(emu, workflow.get("spec").unwrap_or(&Value::Null)) {
        return Ok(WorkflowRun {
            name,
            uid: util::uuid(),
            phase: Phase::Error,
            message,
            nodes: Vec::new(),
            duration: 0.0,
        });
    }
    let spec = resolve_spec(emu, workflow.get("spec").unwrap_or(&Value::Null))?;
    let params = parameters(emu, &spec)?;
    let entrypoint = str_of(&spec, "entrypoint").to_owned();
    if entrypoint.is_empty() {
        return Err(EmulatorError::Invalid("spec.entrypoint is required".into()));
    }
    let templates: BTreeMap<String, Value> = list_of(&spec, "templates")
        .iter()
        .map(|t| (str_of(t, "name").to_owned(), t.clone()))
        .collect();

    let uid = util::uuid();
    let mut globals = BTreeMap::from([
        ("workflow.name".to_owned(), name.clone()),
        ("workflow.namespace".to_owned(), emu.namespace.clone()),
        ("workflow.uid".to_owned(), uid.clone()),
    ]);
    for (k, v) in &params {
        globals.insert(format!("workflow.parameters.{k}"), v.clone());
    }
    // The workflow's own lock is taken before it starts, so its wait is not part of any deadline.
    let _workflow_lock = emu.acquire(spec.get("synchronization"))?;
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0);
    globals.insert("workflow.creationTimestamp".into(), util::rfc3339(epoch));
    let deadline = int_or_string(spec.get("activeDeadlineSeconds"))
        .map_err(EmulatorError::Invalid)?
        .map(|s| s as f64);
    let dir = emu.work_dir.join(&name);
    let mut run = Run {
        emu,
        name: name.clone(),
        templates,
        wf_volumes: list_of(&spec, "volumes").to_vec(),
        default_retry: spec.get("retryStrategy").cloned(),
        globals,
        nodes: Vec::new(),
        clock: Clock {
            start: Instant::now(),
            scale: emu.time_scale,
            epoch,
        },
        deadline,
        execution_deadline: None,
        dir,
        on_exit: false,
        stuck: None,
    };
    std::fs::create_dir_all(&run.dir)
        .map_err(|e| EmulatorError::Io(format!("create {}", run.dir.display()), e))?;

    // Argo passes the workflow's arguments to the entrypoint (and to the exit handler).
    let entry = run.execute(&name, &name, &entrypoint, &params)?;
    let end = |run: &Run, phase: Phase, message: String| WorkflowRun {
        name: name.clone(),
        uid: uid.clone(),
        phase,
        message,
        nodes: run.nodes.clone(),
        duration: run.clock.now(),
    };
    if let Some(stuck) = run.stuck.clone() {
        return Ok(end(&run, Phase::Pending, stuck));
    }
    let entry = run.nodes[entry].clone();
    let status = match entry.phase {
        Phase::Skipped => Phase::Succeeded,
        p => p,
    };
    let failures: Vec<Value> = run
        .nodes
        .iter()
        .filter(|n| n.phase.is_failure())
        .map(|n| {
            json!({
                "displayName": n.display_name,
                "message": n.message,
                "templateName": n.template,
                "phase": n.phase.as_str(),
                "podName": pod::pod_name(&run.name, &n.name, &n.template),
                "finishedAt": util::rfc3339(run.clock.epoch + n.finished),
            })
        })
        .collect();
    run.globals
        .insert("workflow.status".into(), status.as_str().into());
    run.globals.insert(
        "workflow.failures".into(),
        util::go_quote(&Value::Array(failures).to_string()),
    );
    run.globals.insert(
        "workflow.duration".into(),
        format!("{:.6}", run.clock.now()),
    );

    let on_exit = str_of(&spec, "onExit").to_owned();
    let mut exit_node = None;
    if !on_exit.is_empty() {
        run.on_exit = true;
        let node = run.execute(
            &format!("{name}.onExit"),
            &format!("{name}.onExit"),
            &on_exit,
            &params,
        )?;
        if let Some(stuck) = run.stuck.clone() {
            return Ok(end(&run, Phase::Pending, stuck));
        }
        exit_node = Some(run.nodes[node].clone());
    }
    Ok(match (status, exit_node) {
        (Phase::Succeeded, Some(exit)) if exit.phase.is_failure() => {
            end(&run, exit.phase, exit.message)
        }
        (Phase::Succeeded, _) => end(&run, Phase::Succeeded, String::new()),
        (phase, _) => end(&run, phase, entry.message),
    })
}

/// Workflow-spec fields a Workflow may set over its WorkflowTemplate in reference mode, as
/// JSON names (`workflow/util/merge.go`, `allowedUserOverrideFields`; the same in 3.7.18 and
/// 4.1.2, without the `WORKFLOW_USER_OVERRIDE_ALLOWLIST` additions).
const USER_OVERRIDE_FIELDS: &[&str] = &[
    "arguments",
    "entrypoint",
    "shutdown",
    "suspend",
    "activeDeadlineSeconds",
    "priority",
    "ttlStrategy",
    "podGC",
    "volumeClaimGC",
    "archiveLogs",
    "workflowMetadata",
    "workflowTemplateRef",
    "metrics",
    "artifactGC",
];

/// Why the controller, in reference mode (`templateReferencing: Strict` or `Secure`), errors
/// this Workflow (`operator.go` `setExecWorkflow`, `util.ValidateUserOverrides`): it does
/// not reference a WorkflowTemplate, or it sets a field outside [`USER_OVERRIDE_FIELDS`]
/// (named as Argo names them, by their Go names) or one of `artifactGC`'s pod fields.
fn restricted(emu: &Emulator, spec: &Value) -> Option<String> {
    let mode = emu.template_referencing.as_deref()?;
    if mode != "Strict" && mode != "Secure" {
        return None;
    }
    if spec.get("workflowTemplateRef").is_none() {
        return Some(
            "workflows must use workflowTemplateRef to be executed when the controller is in reference mode"
                .to_owned(),
        );
    }
    // Set means not Go's zero value: null, "", false and 0 are unset; `{}` and `[]` are set.
    let set = |v: &Value| {
        !matches!(v, Value::Null | Value::Bool(false)) && *v != json!("") && *v != json!(0)
    };
    let mut violations: Vec<String> = spec
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| !USER_OVERRIDE_FIELDS.contains(&key.as_str()) && set(value))
        .map(|(key, _)| go_field_name(key))
        .collect();
    if let Some(gc) = spec.get("artifactGC") {
        for (key, go) in [
            ("podSpecPatch", "ArtifactGC.PodSpecPatch"),
            ("serviceAccountName", "ArtifactGC.ServiceAccountName"),
            ("podMetadata", "ArtifactGC.PodMetadata"),
        ] {
            if gc.get(key).is_some_and(set) {
                violations.push(go.to_owned());
            }
        }
    }
    if violations.is_empty() {
        return None;
    }
    violations.sort();
    Some(format!(
        "fields [{}] are not permitted when using workflowTemplateRef with templateReferencing restriction",
        violations.join(" ")
    ))
}

/// A WorkflowSpec field's Go name, from its JSON name.
fn go_field_name(json_name: &str) -> String {
    match json_name {
        "ttlStrategy" => "TTLStrategy".to_owned(),
        "dnsPolicy" => "DNSPolicy".to_owned(),
        "dnsConfig" => "DNSConfig".to_owned(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

/// The spec that runs: a `workflowTemplateRef`'s spec with the Workflow's fields on top.
fn resolve_spec(emu: &Emulator, spec: &Value) -> Result<Value, EmulatorError> {
    let Some(reference) = spec.get("workflowTemplateRef") else {
        return Ok(spec.clone());
    };
    let name = str_of(reference, "name");
    let template = emu.templates.get(name).ok_or_else(|| {
        EmulatorError::Invalid(format!("workflowtemplates.argoproj.io {name:?} not found"))
    })?;
    let mut merged = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    let template_params = merged
        .pointer("/arguments/parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let (Some(target), Some(fields)) = (merged.as_object_mut(), spec.as_object()) {
        for (k, v) in fields {
            if k != "workflowTemplateRef" && k != "arguments" {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    // util.MergeParameters(workflow's, template's): the first of a name wins. The template's
    // `enum` is kept on the merged parameter (stricter than Argo, see the crate docs).
    let mut params: Vec<Value> = Vec::new();
    let workflow_params = spec
        .pointer("/arguments/parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for p in workflow_params
        .into_iter()
        .chain(template_params.iter().cloned())
    {
        if params
            .iter()
            .any(|q| str_of(q, "name") == str_of(&p, "name"))
        {
            continue;
        }
        let mut p = p;
        let from_template = template_params
            .iter()
            .find(|t| str_of(t, "name") == str_of(&p, "name"));
        if let (Some(enum_), Some(obj)) =
            (from_template.and_then(|t| t.get("enum")), p.as_object_mut())
        {
            obj.entry("enum").or_insert_with(|| enum_.clone());
        }
        params.push(p);
    }
    merged["arguments"] = json!({ "parameters": params });
    Ok(merged)
}

/// Argo's `validateArgumentsValues` with the prefix `spec.arguments.`, then the values.
fn parameters(emu: &Emulator, spec: &Value) -> Result<BTreeMap<String, String>, EmulatorError> {
    let mut out = BTreeMap::new();
    for p in spec
        .pointer("/arguments/parameters")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let name = str_of(p, "name");
        let mut value = p.get("value").and_then(scalar);
        if value.is_none()
            && let Some(cm) = p.pointer("/valueFrom/configMapKeyRef")
        {
            let store = emu.store();
            value = store
                .config_maps
                .get(str_of(cm, "name"))
                .and_then(|m| m.get(str_of(cm, "key")))
                .cloned();
            value = value.or_else(|| p.pointer("/valueFrom/default").and_then(scalar));
        }
        if let Some(choices) = p.get("enum").and_then(Value::as_array) {
            let Some(v) = &value else {
                return Err(EmulatorError::Invalid(format!(
                    "spec.arguments.{name}.value is required"
                )));
            };
            if !choices.iter().filter_map(scalar).any(|c| &c == v) {
                return Err(EmulatorError::Invalid(format!(
                    "spec.arguments.{name}.value should be present in spec.arguments.{name}.enum list"
                )));
            }
        }
        let value = value.ok_or_else(|| {
            EmulatorError::Invalid(format!(
                "spec.arguments.{name}.value or spec.arguments.{name}.valueFrom is required"
            ))
        })?;
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// A parameter value as text (Argo's `AnyString` accepts numbers and booleans).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Run<'_> {
    pub(crate) fn add_node(
        &mut self,
        name: &str,
        display: &str,
        template: &str,
        kind: NodeKind,
        phase: Phase,
    ) -> usize {
        let id = if name == self.name {
            name.to_owned()
        } else {
            format!("{}-{}", self.name, util::fnv32a(name))
        };
        self.nodes.push(Node {
            name: name.to_owned(),
            id,
            display_name: display.to_owned(),
            template: template.to_owned(),
            kind,
            phase,
            message: String::new(),
            exit_code: None,
            result: None,
            pod_name: None,
            log: String::new(),
            started: self.clock.now(),
            finished: 0.0,
            on_exit: self.on_exit,
        });
        self.nodes.len() - 1
    }

    pub(crate) fn finish(&mut self, node: usize, phase: Phase, message: impl Into<String>) {
        let now = self.clock.now();
        let n = &mut self.nodes[node];
        n.phase = phase;
        n.message = message.into();
        n.finished = now;
    }

    /// The global variables now (`workflow.duration` moves).
    fn globals(&self) -> BTreeMap<String, String> {
        let mut vars = self.globals.clone();
        vars.entry("workflow.status".into())
            .or_insert_with(|| "Running".into());
        vars.entry("workflow.duration".into())
            .or_insert_with(|| format!("{:.6}", self.clock.now()));
        vars
    }

    /// `executeTemplate`: one template invocation, returning its node.
    pub(crate) fn execute(
        &mut self,
        name: &str,
        display: &str,
        template: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<usize, EmulatorError> {
        let tmpl =
            self.templates.get(template).cloned().ok_or_else(|| {
                EmulatorError::Invalid(format!("template {template:?} not found"))
            })?;
        let mut vars = self.globals();
        for p in list_of(tmpl.get("inputs").unwrap_or(&Value::Null), "parameters") {
            let pname = str_of(p, "name");
            let value = args
                .get(pname)
                .cloned()
                .or_else(|| p.get("value").and_then(scalar))
                .or_else(|| p.get("default").and_then(scalar));
            let value = value.ok_or_else(|| {
                EmulatorError::Invalid(format!(
                    "inputs.parameters.{pname} was not supplied (template {template:?})"
                ))
            })?;
            vars.insert(format!("inputs.parameters.{pname}"), value);
        }
        vars.insert("node.name".into(), name.to_owned());
        // Argo keys a template's lock by the node that runs it: a retry node holds it across
        // every attempt and backoff.
        let emu = self.emu;
        let _lock = emu.acquire(tmpl.get("synchronization"))?;
        match tmpl
            .get("retryStrategy")
            .or(self.default_retry.as_ref())
            .cloned()
        {
            Some(strategy) => self.retry(name, display, &tmpl, &vars, &strategy),
            None => self.once(name, display, &tmpl, vars),
        }
    }

    fn once(
        &mut self,
        name: &str,
        display: &str,
        tmpl: &Value,
        vars: BTreeMap<String, String>,
    ) -> Result<usize, EmulatorError> {
        if ["container", "containerSet", "script"]
            .iter()
            .any(|k| tmpl.get(*k).is_some())
        {
            pod::run_pod(self, name, display, tmpl, vars)
        } else if tmpl.get("steps").is_some() {
            self.steps(name, display, tmpl, vars)
        } else {
            let kind = ["dag", "resource", "suspend", "http", "plugin", "data"]
                .into_iter()
                .find(|k| tmpl.get(*k).is_some());
            Err(EmulatorError::Unsupported(format!(
                "template {:?} of type {}",
                str_of(tmpl, "name"),
                kind.unwrap_or("unknown")
            )))
        }
    }

    /// `processNodeRetries`, in Argo's order of checks.
    fn retry(
        &mut self,
        name: &str,
        display: &str,
        tmpl: &Value,
        vars: &BTreeMap<String, String>,
        strategy: &Value,
    ) -> Result<usize, EmulatorError> {
        let strategy = substitute_value(strategy, vars)?;
        let invalid = |e: String| EmulatorError::Invalid(format!("retryStrategy: {e}"));
        let limit = int_or_string(strategy.get("limit")).map_err(invalid)?;
        let expression = str_of(&strategy, "expression").to_owned();
        if !expression.is_empty() {
            expr::check(&expression).map_err(|e| {
                EmulatorError::Unsupported(format!("retryStrategy.expression {expression:?}: {e}"))
            })?;
        }
        let policy = match str_of(&strategy, "retryPolicy") {
            "" if expression.is_empty() => "OnFailure",
            "" => "Always",
            p @ ("Always" | "OnFailure" | "OnError" | "OnTransientError") => p,
            p => {
                return Err(EmulatorError::Invalid(format!(
                    "{p} is not a valid RetryPolicy"
                )));
            }
        };
        let node = self.add_node(
            name,
            display,
            str_of(tmpl, "name"),
            NodeKind::Retry,
            Phase::Running,
        );
        let mut attempts: Vec<usize> = Vec::new();
        loop {
            let mut attempt_vars = vars.clone();
            attempt_vars.insert("retries".into(), attempts.len().to_string());
            let (child_name, child_display) = (
                format!("{name}({})", attempts.len()),
                format!("{display}({})", attempts.len()),
            );
            let child = self.once(&child_name, &child_display, tmpl, attempt_vars)?;
            attempts.push(child);
            let last = self.nodes[child].clone();
            if !last.phase.is_fulfilled() {
                return Ok(node);
            }
            if !last.phase.is_failure() {
                self.nodes[node].exit_code = last.exit_code;
                self.nodes[node].result = last.result.clone();
                self.finish(node, Phase::Succeeded, "");
                return Ok(node);
            }
            if let Some((phase, message)) =
                self.retry_decision(&strategy, policy, limit, &expression, &attempts)?
            {
                self.finish(node, phase, message);
                self.execution_deadline = None;
                return Ok(node);
            }
        }
    }

    /// None: run another attempt. Some: the retry node's final phase and message.
    fn retry_decision(
        &mut self,
        strategy: &Value,
        policy: &str,
        limit: Option<i64>,
        expression: &str,
        attempts: &[usize],
    ) -> Result<Option<(Phase, String)>, EmulatorError> {
        let last = self.nodes[attempts[attempts.len() - 1]].clone();
        let n = attempts.len() as i64;
        let past_deadline = |run: &Run| run.deadline.filter(|d| run.clock.now() > *d);
        if let Some(d) = past_deadline(self) {
            return Ok(Some((last.phase, self.deadline_message(d))));
        }
        if let Some(backoff) = strategy.get("backoff") {
            let seconds = |key: &str| -> Result<Option<f64>, EmulatorError> {
                match backoff.get(key) {
                    None => Ok(None),
                    Some(v) => {
                        let text = scalar(v).unwrap_or_default();
                        util::parse_duration(&text).map(Some).map_err(|e| {
                            EmulatorError::Invalid(format!("retryStrategy.backoff.{key}: {e}"))
                        })
                    }
                }
            };
            let max_deadline = seconds("maxDuration")?.map(|m| self.nodes[attempts[0]].started + m);
            if max_deadline.is_some_and(|m| self.clock.now() > m) {
                return Ok(Some((last.phase, "Max duration limit exceeded".into())));
            }
            let Some(base) = seconds("duration")? else {
                return Ok(Some((
                    Phase::Error,
                    "no base duration specified for retryStrategy".into(),
                )));
            };
            let factor = int_or_string(backoff.get("factor"))
                .map_err(EmulatorError::Invalid)?
                .filter(|f| *f > 0);
            let mut wait = factor.map_or(base, |f| base * (f as f64).powi((n - 1) as i32));
            if let Some(cap) = seconds("cap")? {
                wait = wait.min(cap);
            }
            let until = last.finished + wait;
            if max_deadline.is_some_and(|m| until > m) {
                return Ok(Some((
                    last.phase,
                    "Backoff would exceed max duration limit".into(),
                )));
            }
            // Argo only waits out the backoff while the limit is set and not used up.
            if self.clock.now() < until && limit.is_some_and(|l| n <= l) {
                self.clock
                    .sleep_until(self.deadline.map_or(until, |d| until.min(d + 1e-3)));
                if let Some(d) = past_deadline(self) {
                    return Ok(Some((last.phase, self.deadline_message(d))));
                }
            }
            self.execution_deadline = max_deadline;
        }
        let (on_failed, on_error) = match policy {
            "Always" => (true, true),
            "OnFailure" => (true, false),
            "OnError" => (false, true),
            _ => (false, false),
        };
        if (last.phase == Phase::Failed && !on_failed) || (last.phase == Phase::Error && !on_error)
        {
            return Ok(Some((last.phase, last.message)));
        }
        if limit.is_some_and(|l| n > l) {
            return Ok(Some((last.phase, "No more retries left".into())));
        }
        if !expression.is_empty() {
            let scope = BTreeMap::from([
                ("retries".to_owned(), (n - 1).to_string()),
                (
                    "lastRetry.exitCode".to_owned(),
                    last.exit_code.map_or("-1".to_owned(), |c| c.to_string()),
                ),
                (
                    "lastRetry.status".to_owned(),
                    last.phase.as_str().to_owned(),
                ),
                // Kubernetes times have whole seconds, so Argo's durations do too.
                (
                    "lastRetry.duration".to_owned(),
                    (last.finished.floor() - last.started.floor())
                        .max(0.0)
                        .to_string(),
                ),
                ("lastRetry.message".to_owned(), last.message.clone()),
            ]);
            match expr::eval_bool(expression, &scope) {
                Ok(true) => {}
                Ok(false) => {
                    return Ok(Some((
                        last.phase,
                        "retryStrategy.expression evaluated to false".into(),
                    )));
                }
                Err(e) => {
                    return Ok(Some((
                        Phase::Error,
                        format!("unable to evaluate expression '{expression}': {e}"),
                    )));
                }
            }
        }
        Ok(None)
    }

    fn deadline_message(&self, deadline: f64) -> String {
        format!(
            "retry exceeded workflow deadline {}",
            util::rfc3339(self.clock.epoch + deadline)
        )
    }

    /// `executeSteps`: groups one after another, each group's steps one after another.
    fn steps(
        &mut self,
        name: &str,
        display: &str,
        tmpl: &Value,
        vars: BTreeMap<String, String>,
    ) -> Result<usize, EmulatorError> {
        let tname = str_of(tmpl, "name").to_owned();
        let node = self.add_node(name, display, &tname, NodeKind::Steps, Phase::Running);
        let mut scope = vars;
        for (i, group) in list_of(tmpl, "steps").iter().enumerate() {
            let group_name = format!("{name}[{i}]");
            let group_node = self.add_node(
                &group_name,
                &format!("[{i}]"),
                &tname,
                NodeKind::StepGroup,
                Phase::Running,
            );
            let mut failed = None;
            for step in group.as_array().map_or(&[][..], Vec::as_slice) {
                let (step_name, step_template) = (str_of(step, "name"), str_of(step, "template"));
                if step.get("templateRef").is_some() {
                    return Err(EmulatorError::Unsupported(format!(
                        "step {step_name:?}: templateRef"
                    )));
                }
                let child_name = format!("{group_name}.{step_name}");
                let when = substitute(str_of(step, "when"), &scope)?;
                let proceed = if when.is_empty() {
                    Ok(true)
                } else {
                    expr::eval_when(&when)
                };
                match proceed {
                    Ok(true) => {}
                    Ok(false) => {
                        let skipped = self.add_node(
                            &child_name,
                            step_name,
                            step_template,
                            NodeKind::Skipped,
                            Phase::Skipped,
                        );
                        self.finish(
                            skipped,
                            Phase::Skipped,
                            format!("when '{when}' evaluated false"),
                        );
                        continue;
                    }
                    Err(e) => {
                        let bad = self.add_node(
                            &child_name,
                            step_name,
                            step_template,
                            NodeKind::Skipped,
                            Phase::Error,
                        );
                        self.finish(bad, Phase::Error, e.clone());
                        self.finish(group_node, Phase::Error, e.clone());
                        self.finish(node, Phase::Error, e);
                        return Ok(node);
                    }
                }
                let mut args = BTreeMap::new();
                for p in list_of(step.get("arguments").unwrap_or(&Value::Null), "parameters") {
                    let value = p.get("value").and_then(scalar).unwrap_or_default();
                    args.insert(str_of(p, "name").to_owned(), substitute(&value, &scope)?);
                }
                let child = self.execute(&child_name, step_name, step_template, &args)?;
                let phase = self.nodes[child].phase;
                if !phase.is_fulfilled() {
                    return Ok(node);
                }
                let continues = |key: &str| {
                    step.pointer(&format!("/continueOn/{key}"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                };
                let tolerated = (phase == Phase::Failed && continues("failed"))
                    || (phase == Phase::Error && continues("error"));
                if phase.is_failure() && !tolerated {
                    failed.get_or_insert(self.nodes[child].id.clone());
                }
                let child = self.nodes[child].clone();
                let prefix = format!("steps.{step_name}");
                scope.insert(format!("{prefix}.id"), child.id.clone());
                scope.insert(format!("{prefix}.status"), child.phase.as_str().into());
                if let Some(result) = child.result {
                    scope.insert(format!("{prefix}.outputs.result"), result);
                }
                if let Some(code) = child.exit_code {
                    scope.insert(format!("{prefix}.exitCode"), code.to_string());
                }
            }
            if let Some(id) = failed {
                let message = format!("child '{id}' failed");
                self.finish(group_node, Phase::Failed, message.clone());
                self.finish(node, Phase::Failed, message);
                return Ok(node);
            }
            self.finish(group_node, Phase::Succeeded, "");
        }
        self.finish(node, Phase::Succeeded, "");
        Ok(node)
    }
}
