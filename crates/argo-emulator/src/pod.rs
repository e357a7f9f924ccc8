//! One pod attempt: volumes and environment (the kubelet's part), containers as local
//! processes (the emissary's part), and the node's outcome (the controller's part).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::run::Run;
use crate::util::{self, int_or_string, list_of, str_of, substitute_value};
use crate::{ContainerRun, EmulatorError, NodeKind, Phase, PodEvent, Store};

/// The kubelet's message when a pod's `activeDeadlineSeconds` passes.
const POD_DEADLINE: &str = "Pod was active on the node longer than the specified deadline";
/// The controller's message for pods past the workflow's deadline (`exec_control.go`).
const WORKFLOW_DEADLINE: &str = "Step exceeded its deadline";

/// `GeneratePodName`, v2 (`workflow/util/pod_name.go`).
pub(crate) fn pod_name(workflow: &str, node: &str, template: &str) -> String {
    if workflow == node {
        return workflow.to_owned();
    }
    let mut prefix = if template.is_empty() {
        workflow.to_owned()
    } else {
        format!("{workflow}-{template}")
    };
    // maxK8sResourceNameLength (253) - k8sNamingHashLength (10) - 1.
    while prefix.len() > 242 {
        prefix.pop();
    }
    format!("{prefix}-{}", util::fnv32a(node))
}

/// A container as the emissary sees it.
struct Ctr {
    name: String,
    spec: Value,
    deps: Vec<String>,
    script: Option<String>,
}

/// How a container ended.
#[derive(Default)]
struct Outcome {
    exit: Option<i32>,
    /// What the emissary writes to `/var/run/argo/ctr/<name>/exitcode`, which dependents read:
    /// a container skipped for its dependency exits 64 but writes the dependency's code.
    file_code: i32,
    message: String,
    log: String,
    stdout: String,
    started: f64,
    finished: f64,
    killed: bool,
}

impl Outcome {
    /// A container that failed without running its command; the message is also its log, as
    /// the emissary prints its error.
    fn failed(now: f64, code: i32, message: String) -> Self {
        let log = format!("{message}\n");
        Outcome {
            exit: Some(code),
            file_code: code,
            message,
            log,
            started: now,
            finished: now,
            ..Outcome::default()
        }
    }
}

/// Why a pod cannot start yet (the kubelet retries), or cannot run at all.
enum Prep {
    Missing(String),
    Fatal(EmulatorError),
}

impl From<EmulatorError> for Prep {
    fn from(e: EmulatorError) -> Self {
        Prep::Fatal(e)
    }
}

fn io(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> EmulatorError {
    let context = format!("{context} {}", path.display());
    move |e| EmulatorError::Io(context, e)
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    list_of(value, key)
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect()
}

/// A pod attempt: its node, its containers' nodes (containerSet only) and its host folder.
struct Pod {
    node: usize,
    ctr_nodes: Vec<usize>,
    containers: Vec<Ctr>,
    /// The template, substituted.
    t: Value,
    dir: PathBuf,
}

pub(crate) fn run_pod(
    run: &mut Run,
    name: &str,
    display: &str,
    tmpl: &Value,
    mut vars: BTreeMap<String, String>,
) -> Result<usize, EmulatorError> {
    let tname = str_of(tmpl, "name").to_owned();
    let pod_name = pod_name(&run.name, name, &tname);
    vars.insert("pod.name".into(), pod_name.clone());
    let t = substitute_value(tmpl, &vars)?;
    let containers = containers_of(&t)?;
    let order = topological(&containers)?;
    let mut ctr_nodes = Vec::new();
    let node = run.add_node(name, display, &tname, NodeKind::Pod, Phase::Pending);
    if t.get("containerSet").is_some() {
        for c in &containers {
            let cname = format!("{name}.{}", c.name);
            ctr_nodes.push(run.add_node(
                &cname,
                &c.name,
                &tname,
                NodeKind::Container,
                Phase::Pending,
            ));
        }
    }
    for &i in ctr_nodes.iter().chain([&node]) {
        run.nodes[i].pod_name = Some(pod_name.clone());
    }
    let dir = run.dir.join(&pod_name);
    let pod = Pod {
        node,
        ctr_nodes,
        containers,
        t,
        dir,
    };

    // The pod's activeDeadlineSeconds as workflowpod.go computes it (the least of the
    // template's, its `timeout` and the retry's maxDuration), and the workflow's deadline
    // (exit-handler pods are exempt from it).
    let created = run.nodes[node].started;
    let field = |key: &str| {
        match pod.t.get(key) {
            Some(Value::String(s)) if key == "timeout" => util::parse_duration(s).map(Some),
            v => int_or_string(v).map(|s| s.map(|s| s as f64)),
        }
        .map(|s| s.map(|s| created + s))
        .map_err(EmulatorError::Invalid)
    };
    let candidates = [
        (
            if run.on_exit { None } else { run.deadline },
            WORKFLOW_DEADLINE,
        ),
        (field("activeDeadlineSeconds")?, POD_DEADLINE),
        (field("timeout")?, POD_DEADLINE),
        (run.execution_deadline, POD_DEADLINE),
    ];
    let deadline = candidates
        .into_iter()
        .filter_map(|(at, message)| at.map(|at| (at, message)))
        .reduce(|a, b| if b.0 < a.0 { b } else { a });

    // Pending: the kubelet retries mounting until the volumes exist or a deadline passes.
    let prepared = loop {
        if let Some((d, message)) = deadline
            && run.clock.now() >= d
        {
            conclude(run, &pod, BTreeMap::new(), Some(message));
            return Ok(node);
        }
        match prepare(run, &pod, &pod_name) {
            Ok(p) => break p,
            Err(Prep::Fatal(e)) => return Err(e),
            Err(Prep::Missing(message)) => {
                run.nodes[node].message.clone_from(&message);
                let Some((d, _)) = deadline else {
                    run.stuck = Some(message);
                    return Ok(node);
                };
                std::thread::sleep(run.clock.until(d).min(Duration::from_millis(10)));
            }
        }
    };

    run.nodes[node].phase = Phase::Running;
    run.nodes[node].message.clear();
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    for &i in &order {
        let c = &pod.containers[i];
        // The emissary waits for each dependency's exit code file, in order, and gives up on
        // the first non-zero one without running the command.
        let failed_dep = c.deps.iter().find_map(|d| {
            outcomes
                .get(d)
                .filter(|o| o.file_code != 0)
                .map(|o| (d, o.file_code))
        });
        let outcome = match failed_dep {
            Some((dep, code)) => {
                let message = format!("dependency {dep:?} exited with non-zero code: {code}");
                Outcome {
                    file_code: code,
                    ..Outcome::failed(run.clock.now(), 64, message)
                }
            }
            None => exec(run, &pod, i, &prepared[i], deadline.map(|d| d.0))?,
        };
        let killed = outcome.killed;
        outcomes.insert(c.name.clone(), outcome);
        if killed {
            conclude(run, &pod, outcomes, deadline.map(|d| d.1));
            return Ok(node);
        }
    }
    conclude(run, &pod, outcomes, None);
    Ok(node)
}

/// The containers of a pod template; Argo names a `container`/`script` template's one `main`.
fn containers_of(t: &Value) -> Result<Vec<Ctr>, EmulatorError> {
    if let Some(spec) = t.get("container") {
        return Ok(vec![Ctr {
            name: "main".into(),
            spec: spec.clone(),
            deps: Vec::new(),
            script: None,
        }]);
    }
    if let Some(spec) = t.get("script") {
        let source = str_of(spec, "source").to_owned();
        return Ok(vec![Ctr {
            name: "main".into(),
            spec: spec.clone(),
            deps: Vec::new(),
            script: Some(source),
        }]);
    }
    let set = t.get("containerSet").unwrap_or(&Value::Null);
    Ok(list_of(set, "containers")
        .iter()
        .map(|c| Ctr {
            name: str_of(c, "name").to_owned(),
            spec: c.clone(),
            deps: strings(c, "dependencies"),
            script: None,
        })
        .collect())
}

/// Dependency order; among ready containers, declaration order.
fn topological(containers: &[Ctr]) -> Result<Vec<usize>, EmulatorError> {
    for c in containers {
        if let Some(d) = c
            .deps
            .iter()
            .find(|d| !containers.iter().any(|o| &o.name == *d))
        {
            return Err(EmulatorError::Invalid(format!(
                "containerSet: container {:?} depends on unknown {d:?}",
                c.name
            )));
        }
    }
    let mut order: Vec<usize> = Vec::new();
    while order.len() < containers.len() {
        let ready = (0..containers.len()).find(|i| {
            !order.contains(i)
                && containers[*i]
                    .deps
                    .iter()
                    .all(|d| order.iter().any(|o| &containers[*o].name == d))
        });
        order.push(
            ready.ok_or_else(|| EmulatorError::Invalid("containerSet: dependency cycle".into()))?,
        );
    }
    Ok(order)
}

/// A container's mounts: container path → host folder, longest path first.
type Mounts = Vec<(String, PathBuf)>;
/// Per container: mounts and environment.
type Prepared = Vec<(Mounts, Vec<(String, String)>)>;

/// What the kubelet does before starting containers: volumes and environment.
fn prepare(run: &Run, pod: &Pod, pod_name: &str) -> Result<Prepared, Prep> {
    let (t, containers, dir) = (&pod.t, &pod.containers, pod.dir.as_path());
    // A snapshot, so tests can change the store while the pod waits.
    let store = run.emu.store().clone();
    let set_mounts = t
        .pointer("/containerSet/volumeMounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mounts_of = |c: &Ctr| {
        list_of(&c.spec, "volumeMounts")
            .iter()
            .chain(&set_mounts)
            .cloned()
            .collect::<Vec<_>>()
    };
    // The template's volumes, plus the workflow's that a container mounts (Argo adds only those).
    let mut volumes = list_of(t, "volumes").to_vec();
    for v in &run.wf_volumes {
        let vname = str_of(v, "name");
        let mounted = containers
            .iter()
            .any(|c| mounts_of(c).iter().any(|m| str_of(m, "name") == vname));
        if mounted && !volumes.iter().any(|o| str_of(o, "name") == vname) {
            volumes.push(v.clone());
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io("remove", dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let mut hosts = BTreeMap::new();
    for v in &volumes {
        let host = dir.join("volumes").join(str_of(v, "name"));
        std::fs::create_dir_all(&host).map_err(io("create", &host))?;
        fill_volume(&store, v, &host)?;
        hosts.insert(str_of(v, "name").to_owned(), host);
    }
    let mut out = Vec::new();
    for c in containers {
        let mut mounts = Vec::new();
        for m in mounts_of(c) {
            let host = hosts.get(str_of(&m, "name")).ok_or_else(|| {
                EmulatorError::Invalid(format!(
                    "container {:?}: volumeMount {:?} names no volume",
                    c.name,
                    str_of(&m, "name")
                ))
            })?;
            let path = str_of(&m, "mountPath").trim_end_matches('/').to_owned();
            let sub = str_of(&m, "subPath");
            mounts.push((
                path,
                if sub.is_empty() {
                    host.clone()
                } else {
                    host.join(sub)
                },
            ));
        }
        // Longest first, so /a/b wins over /a.
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        let env = env_of(&store, &c.spec, pod_name, &run.emu.namespace)?;
        out.push((mounts, env));
    }
    Ok(out)
}

fn fill_volume(store: &Store, v: &Value, host: &Path) -> Result<(), Prep> {
    let vname = str_of(v, "name");
    let mode = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_u64)
            .map_or(0o644, |m| m as u32)
    };
    let optional = |v: &Value| v.get("optional").and_then(Value::as_bool).unwrap_or(false);
    if v.get("emptyDir").is_some() {
        return Ok(());
    }
    if let Some(s) = v.get("secret") {
        let source = (
            true,
            str_of(s, "secretName"),
            list_of(s, "items"),
            optional(s),
        );
        return project(store, source, mode(s, "defaultMode"), host, vname);
    }
    if let Some(c) = v.get("configMap") {
        let source = (false, str_of(c, "name"), list_of(c, "items"), optional(c));
        return project(store, source, mode(c, "defaultMode"), host, vname);
    }
    if let Some(p) = v.get("projected") {
        for src in list_of(p, "sources") {
            let (secret, s) = match (src.get("secret"), src.get("configMap")) {
                (Some(s), _) => (true, s),
                (_, Some(c)) => (false, c),
                _ => {
                    return Err(EmulatorError::Unsupported(format!(
                        "projected source {src} of volume {vname:?}"
                    ))
                    .into());
                }
            };
            let source = (secret, str_of(s, "name"), list_of(s, "items"), optional(s));
            project(store, source, mode(p, "defaultMode"), host, vname)?;
        }
        return Ok(());
    }
    Err(EmulatorError::Unsupported(format!(
        "volume {v} (emptyDir, secret, configMap and projected only)"
    ))
    .into())
}

/// Writes a Secret's or ConfigMap's keys as files, with the kubelet's messages when it can't.
fn project(
    store: &Store,
    (secret, name, items, optional): (bool, &str, &[Value], bool),
    default_mode: u32,
    host: &Path,
    volume: &str,
) -> Result<(), Prep> {
    let data: Option<BTreeMap<String, Vec<u8>>> = if secret {
        store.secrets.get(name).cloned()
    } else {
        store.config_maps.get(name).map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect()
        })
    };
    let setup_failed = |what: String| {
        Prep::Missing(format!(
            "MountVolume.SetUp failed for volume {volume:?} : {what}"
        ))
    };
    let Some(data) = data else {
        return if optional {
            Ok(())
        } else {
            Err(setup_failed(format!(
                "{} {name:?} not found",
                if secret { "secret" } else { "configmap" }
            )))
        };
    };
    let files: Vec<(String, String, u32)> = if items.is_empty() {
        data.keys()
            .map(|k| (k.clone(), k.clone(), default_mode))
            .collect()
    } else {
        let item_mode = |i: &Value| {
            i.get("mode")
                .and_then(Value::as_u64)
                .map_or(default_mode, |m| m as u32)
        };
        items
            .iter()
            .map(|i| {
                (
                    str_of(i, "path").to_owned(),
                    str_of(i, "key").to_owned(),
                    item_mode(i),
                )
            })
            .collect()
    };
    for (path, key, mode) in files {
        let Some(bytes) = data.get(&key) else {
            if optional {
                continue;
            }
            return Err(setup_failed(if secret {
                format!("references non-existent secret key: {key}")
            } else {
                format!("configmap references non-existent config key: {key}")
            }));
        };
        let file = host.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::write(&file, bytes).map_err(io("write", &file))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
            .map_err(io("chmod", &file))?;
    }
    Ok(())
}

/// The container's environment: `envFrom`, then `env` (with `$(VAR)` expansion).
fn env_of(
    store: &Store,
    spec: &Value,
    pod: &str,
    namespace: &str,
) -> Result<Vec<(String, String)>, Prep> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| match env
        .iter_mut()
        .find(|(n, _)| *n == k)
    {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    let lookup = |secret: bool, name: &str| -> Option<BTreeMap<String, String>> {
        if secret {
            store.secrets.get(name).map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect()
            })
        } else {
            store.config_maps.get(name).cloned()
        }
    };
    let kind = |secret: bool| {
        if secret {
            ("secret", "Secret")
        } else {
            ("configmap", "ConfigMap")
        }
    };
    let optional = |v: &Value| v.get("optional").and_then(Value::as_bool).unwrap_or(false);
    for from in list_of(spec, "envFrom") {
        let (secret, r) = match (from.get("secretRef"), from.get("configMapRef")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => continue,
        };
        match lookup(secret, str_of(r, "name")) {
            Some(data) => data
                .into_iter()
                .for_each(|(k, v)| set(&mut env, format!("{}{k}", str_of(from, "prefix")), v)),
            None if optional(r) => {}
            None => {
                return Err(Prep::Missing(format!(
                    "{} {:?} not found",
                    kind(secret).0,
                    str_of(r, "name")
                )));
            }
        }
    }
    for e in list_of(spec, "env") {
        let name = str_of(e, "name").to_owned();
        let value = if let Some(from) = e.get("valueFrom") {
            if let Some(field) = from.get("fieldRef") {
                match str_of(field, "fieldPath") {
                    "metadata.name" => pod.to_owned(),
                    "metadata.namespace" => namespace.to_owned(),
                    other => {
                        return Err(EmulatorError::Unsupported(format!(
                            "env {name}: fieldRef {other}"
                        ))
                        .into());
                    }
                }
            } else {
                let (secret, r) = match (from.get("secretKeyRef"), from.get("configMapKeyRef")) {
                    (Some(r), _) => (true, r),
                    (_, Some(r)) => (false, r),
                    _ => {
                        return Err(EmulatorError::Unsupported(format!(
                            "env {name}: valueFrom {from}"
                        ))
                        .into());
                    }
                };
                let (rname, key) = (str_of(r, "name"), str_of(r, "key"));
                match lookup(secret, rname).map(|d| d.get(key).cloned()) {
                    Some(Some(v)) => v,
                    _ if optional(r) => continue,
                    None => {
                        return Err(Prep::Missing(format!(
                            "{} {rname:?} not found",
                            kind(secret).0
                        )));
                    }
                    Some(None) => {
                        return Err(Prep::Missing(format!(
                            "couldn't find key {key} in {} {namespace}/{rname}",
                            kind(secret).1
                        )));
                    }
                }
            }
        } else {
            let known: BTreeMap<String, String> = env.iter().cloned().collect();
            expand(str_of(e, "value"), &known)
        };
        set(&mut env, name, value);
    }
    Ok(env)
}

/// Kubernetes' `$(VAR)` expansion: `$$` is `$`, an undefined `$(VAR)` stays as written.
fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(end) = rest.strip_prefix("$(").and_then(|r| r.find(')')) {
            let name = &rest[2..2 + end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[..3 + end]),
            }
            rest = &rest[3 + end..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Replaces mount paths (whole path segments, longest first) with their host folders.
fn remap(text: &str, mounts: &[(String, PathBuf)]) -> String {
    let path_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    let mut out = String::new();
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < text.len() {
        if !prev.is_some_and(path_char) {
            let hit = mounts.iter().find(|(m, _)| {
                !m.is_empty()
                    && text[i..].starts_with(m.as_str())
                    && text[i + m.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c == '/' || !path_char(c))
            });
            if let Some((m, host)) = hit {
                out.push_str(&host.to_string_lossy());
                i += m.len();
                prev = m.chars().last();
                continue;
            }
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        out.push(c);
        prev = Some(c);
        i += c.len_utf8();
    }
    out
}

/// Runs one container as a process, killed at the deadline.
fn exec(
    run: &Run,
    pod: &Pod,
    i: usize,
    (mounts, env): &(Mounts, Vec<(String, String)>),
    deadline: Option<f64>,
) -> Result<Outcome, EmulatorError> {
    let (c, dir) = (&pod.containers[i], &pod.dir);
    let started = run.clock.now();
    let failed = |code: i32, message: String| Outcome::failed(started, code, message);
    let vars: BTreeMap<String, String> = env
        .iter()
        .cloned()
        .chain(run.emu.extra_env.clone())
        .collect();
    let mut argv: Vec<String> = strings(&c.spec, "command")
        .iter()
        .chain(&strings(&c.spec, "args"))
        .map(|a| expand(a, &vars))
        .collect();
    // No command: the image's entrypoint, looked up by image reference.
    let program = if strings(&c.spec, "command").is_empty() {
        str_of(&c.spec, "image").to_owned()
    } else {
        argv.remove(0)
    };
    let Some(binary) = run.emu.binaries.get(&program) else {
        return Ok(failed(
            127,
            format!("executable not found: {program:?} is not in the emulator's binaries"),
        ));
    };
    let mut args: Vec<String> = argv.iter().map(|a| remap(a, mounts)).collect();
    if let Some(source) = &c.script {
        // Argo writes the source to /argo/staging/script and appends that path.
        let file = dir.join(format!("{}.script", c.name));
        std::fs::write(&file, source).map_err(io("write", &file))?;
        args.push(file.to_string_lossy().into_owned());
    }
    let working_dir = remap(str_of(&c.spec, "workingDir"), mounts);
    let cwd = if !working_dir.is_empty() && Path::new(&working_dir).is_dir() {
        PathBuf::from(working_dir)
    } else {
        dir.join("cwd")
    };
    std::fs::create_dir_all(&cwd).map_err(io("create", &cwd))?;

    let mut cmd = Command::new(binary);
    cmd.args(&args)
        .env_clear()
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a deadline kills the children a shell started too.
    cmd.process_group(0);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, remap(v, mounts));
    }
    if let Some((_, tmp)) = mounts.iter().find(|(m, _)| m == "/tmp")
        && !env.iter().any(|(k, _)| k == "TMPDIR")
    {
        cmd.env("TMPDIR", tmp);
    }
    cmd.envs(&run.emu.extra_env);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        // The emissary's wording when it cannot start the command.
        Err(e) => return Ok(failed(64, format!("failed to start command: {e}"))),
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        child
            .stdout
            .take()
            .map(|r| reader(r, vec![log.clone(), stdout.clone()])),
        child.stderr.take().map(|r| reader(r, vec![log.clone()])),
    ];
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if deadline.is_some_and(|d| run.clock.now() >= d) {
            killed = true;
            kill(&mut child);
            break child.wait().ok();
        }
        let pause = deadline.map_or(Duration::from_millis(2), |d| {
            run.clock.until(d).min(Duration::from_millis(2))
        });
        std::thread::sleep(pause.max(Duration::from_micros(200)));
    };
    // When a container's main process ends, Kubernetes ends everything else in it: processes
    // still holding the output open are killed; readers are then given a moment, not forever.
    let readers: Vec<JoinHandle<()>> = readers.into_iter().flatten().collect();
    let waited = Instant::now();
    while readers.iter().any(|r| !r.is_finished()) && waited.elapsed() < Duration::from_secs(2) {
        if waited.elapsed() > Duration::from_millis(100) {
            kill_group(child.id());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let code = status.map_or(137, |s| {
        s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
    });
    let text = |b: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&b.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    };
    Ok(Outcome {
        exit: Some(code),
        file_code: code,
        message: String::new(),
        log: text(&log),
        stdout: text(&stdout),
        started,
        finished: run.clock.now(),
        killed,
    })
}

fn reader(
    mut source: impl Read + Send + 'static,
    sinks: Vec<Arc<Mutex<Vec<u8>>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = source.read(&mut buf) {
            for sink in &sinks {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        }
    })
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    kill_group(child.id());
}

/// SIGKILL to the container's process group (std has no killpg; unsafe code is forbidden).
fn kill_group(pgid: u32) {
    let _ = Command::new("/bin/sh")
        .args([
            "-c",
            "kill -s KILL -- -\"$0\" 2>/dev/null",
            &pgid.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The controller's view of the finished pod (`assessNodeStatus`, `inferFailedReason`).
fn conclude(run: &mut Run, pod: &Pod, outcomes: BTreeMap<String, Outcome>, killed: Option<&str>) {
    let Pod {
        node,
        ctr_nodes,
        containers,
        t,
        dir,
    } = pod;
    let node = *node;
    for (c, &i) in containers.iter().zip(ctr_nodes) {
        // 0 is Succeeded, 64 (the emissary's own failure) Error, others Failed; a container
        // that never ended fails with its pod.
        let (phase, message) = match outcomes.get(&c.name).and_then(|o| o.exit.map(|e| (e, o))) {
            Some((0, _)) => (Phase::Succeeded, String::new()),
            Some((code, o)) => {
                let phase = if code == 64 {
                    Phase::Error
                } else {
                    Phase::Failed
                };
                (
                    phase,
                    format!("{}: Error (exit code {code}): {}", c.name, o.message),
                )
            }
            None => (
                Phase::Failed,
                "Pod Failed whilst container running".to_owned(),
            ),
        };
        run.finish(i, phase, message);
        if let Some(o) = outcomes.get(&c.name) {
            let n = &mut run.nodes[i];
            (n.exit_code, n.log, n.started, n.finished) =
                (o.exit, o.log.clone(), o.started, o.finished);
        }
    }
    // A pod status message (the deadline) wins; else kubelet's container statuses, sorted by
    // name, give the first failed container.
    let first_failed = outcomes
        .iter()
        .find_map(|(name, o)| o.exit.filter(|c| *c != 0).map(|c| (name, c, o)));
    let (phase, message) = match (killed, first_failed) {
        (Some(message), _) => (Phase::Failed, message.to_owned()),
        (None, Some((name, code, o))) if o.message.is_empty() => {
            (Phase::Failed, format!("{name}: Error (exit code {code})"))
        }
        (None, Some((name, code, o))) => (
            Phase::Failed,
            format!("{name}: Error (exit code {code}): {}", o.message),
        ),
        (None, None) => (Phase::Succeeded, String::new()),
    };
    let mut ran: Vec<&Outcome> = outcomes.values().filter(|o| o.exit.is_some()).collect();
    ran.sort_by(|a, b| a.started.total_cmp(&b.started));
    let main = outcomes.get("main");
    {
        let n = &mut run.nodes[node];
        n.exit_code = main.and_then(|o| o.exit);
        n.result = main
            .filter(|o| o.exit.is_some())
            .map(|o| o.stdout.strip_suffix('\n').unwrap_or(&o.stdout).to_owned());
        n.log = ran.iter().map(|o| o.log.as_str()).collect();
    }
    run.finish(node, phase, message);

    let Some(observer) = &run.emu.observer else {
        return;
    };
    let n = &run.nodes[node];
    let text_map = |v: Option<&Value>| -> BTreeMap<String, String> {
        v.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut labels = text_map(t.pointer("/metadata/labels"));
    labels.insert("workflows.argoproj.io/workflow".into(), run.name.clone());
    if run.on_exit {
        labels.insert("workflows.argoproj.io/on-exit".into(), "true".into());
    }
    let mut annotations = text_map(t.pointer("/metadata/annotations"));
    annotations.insert("workflows.argoproj.io/node-name".into(), n.name.clone());
    annotations.insert("workflows.argoproj.io/node-id".into(), n.id.clone());
    observer(&PodEvent {
        workflow: run.name.clone(),
        namespace: run.emu.namespace.clone(),
        pod_name: n.pod_name.clone().unwrap_or_default(),
        node_name: n.name.clone(),
        template: n.template.clone(),
        phase: n.phase,
        message: n.message.clone(),
        exit_code: n.exit_code,
        labels,
        annotations,
        containers: containers
            .iter()
            .map(|c| {
                let o = outcomes.get(&c.name);
                ContainerRun {
                    name: c.name.clone(),
                    exit_code: o.and_then(|o| o.exit),
                    message: o.map(|o| o.message.clone()).unwrap_or_default(),
                    log: o.map(|o| o.log.clone()).unwrap_or_default(),
                }
            })
            .collect(),
        on_exit: run.on_exit,
        dir: dir.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaps_whole_segments_longest_first() {
        let mounts = vec![
            ("/var/run/secrets/x".to_owned(), PathBuf::from("/tmp/h/x")),
            ("/tmp".to_owned(), PathBuf::from("/tmp/h/tmp")),
        ];
        assert_eq!(
            remap("--dir=/var/run/secrets/x/token", &mounts),
            "--dir=/tmp/h/x/token"
        );
        assert_eq!(
            remap("/tmp /tmpfoo /var/tmp", &mounts),
            "/tmp/h/tmp /tmpfoo /var/tmp"
        );
    }

    #[test]
    fn expands_like_kubernetes() {
        let vars = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_eq!(expand("$(A),$(B),$$(A),$x", &vars), "1,$(B),$(A),$x");
    }

    #[test]
    fn pod_names_are_v2() {
        assert_eq!(pod_name("wf", "wf", "main"), "wf");
        assert_eq!(
            pod_name("wf", "wf(0)", "run"),
            format!("wf-run-{}", util::fnv32a("wf(0)"))
        );
    }
}
