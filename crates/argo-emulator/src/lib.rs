//! # argo-emulator
//!
//! Test support: runs an Argo Workflow on one machine the way the Argo controller (v3.7 and
//! v4.x; read from v4.1.2, the same in v3.7.18) does, with every container executed as a
//! local process. Tests give it WorkflowTemplates, a fake store of Secrets and ConfigMaps and a
//! map from command names to local executables, then submit Workflows and assert on the nodes.
//!
//! ## What it emulates, and where each rule comes from in Argo
//!
//! - **Submission** (`workflow/validate/validate.go`): a name over 63 characters is refused;
//!   `workflowTemplateRef` takes the template's spec, the Workflow's own spec fields win, and
//!   `spec.arguments.parameters` merge with the Workflow's values first (`util.MergeParameters`).
//!   A parameter without a value is `spec.arguments.X.value or spec.arguments.X.valueFrom is
//!   required`; a value outside `enum` is `spec.arguments.X.value should be present in
//!   spec.arguments.X.enum list`. *Stricter than Argo*: the enum check uses the template's
//!   `enum` even when the Workflow supplies the value (Argo's merge drops the template's
//!   parameter, enum included). `generateName` gets 5 characters of Kubernetes' alphabet.
//! - **Workflow restrictions** (`workflow/controller/operator.go` `setExecWorkflow`,
//!   `workflow/util/merge.go` `ValidateUserOverrides`), with [`Emulator::template_referencing`]
//!   `Strict` or `Secure` (reference mode): a Workflow without `workflowTemplateRef` ends in
//!   phase Error with `workflows must use workflowTemplateRef to be executed when the
//!   controller is in reference mode`, and one setting a spec field outside Argo's allow-list
//!   (`arguments`, `entrypoint`, `shutdown`, `suspend`, `activeDeadlineSeconds`, `priority`,
//!   `ttlStrategy`, `podGC`, `volumeClaimGC`, `archiveLogs`, `workflowMetadata`,
//!   `workflowTemplateRef`, `metrics`, `artifactGC` without its pod fields) with `fields [F]
//!   are not permitted when using workflowTemplateRef with templateReferencing restriction`.
//!   `Secure`'s refusal of a WorkflowTemplate changed while its Workflow runs is not emulated
//!   (templates do not change during a run here).
//! - **Variables** (`util/template/simple_template.go`): `workflow.{name,namespace,uid,
//!   parameters.X,status,duration,creationTimestamp,failures}`, `inputs.parameters.X`,
//!   `pod.name`, `node.name`, `retries` (with a retryStrategy) and `steps.S.{outputs.result,
//!   exitCode,status,id}` are substituted in the whole template (command, args, env, volumes,
//!   metadata, script source, retry expression). Outside the exit handler `workflow.status` is
//!   `Running`, as Argo's global scope; `workflow.failures` exists only in the exit handler and
//!   is Go-quoted JSON, as `operator.go` sets it with `strconv.Quote`. An unresolved tag is
//!   [`EmulatorError::Unresolved`] (`failed to resolve {{X}}`). `{{=expr}}` is not emulated.
//! - **Pods** (`workflow/controller/operator.go` `assessNodeStatus`, `inferFailedReason`,
//!   `getExitCode`; `cmd/argoexec/commands/emissary.go`): `container`, `script` (the source is
//!   written to a file passed as the last argument) and `containerSet` (containers run one at a
//!   time in dependency order; a container whose dependency exited non-zero does not run and
//!   exits 64 with `dependency "a" exited with non-zero code: 75`, which the emissary also
//!   prints). The node's exit code comes only from a container named `main`. Container nodes
//!   (containerSet only, as in Argo) are Succeeded (0), Error (64) or Failed, with message
//!   `c: Error (exit code N): <termination message>`. The pod fails if any container exited
//!   non-zero, with the message `c: Error (exit code N)` of the first failed container **by
//!   name**: the kubelet sorts container statuses by name before `inferFailedReason` reads
//!   them (all of a containerSet's containers rank as main), so declaration order does not
//!   matter. A deadline kills the container's process group (exit 137).
//! - **Retries** (`operator.go` `processNodeRetries`, `buildRetryStrategyLocalScope`): retry
//!   node `N` with attempts `N(0)`, `N(1)`…, for the template's `retryStrategy` or else
//!   `spec.retryStrategy` (`woc.retryStrategy`); checks in Argo's order: workflow deadline
//!   (`retry exceeded workflow deadline …`), backoff (`duration × factor^(attempts-1)`, `cap`,
//!   `maxDuration`; like Argo it only waits when `limit` is set and not yet used up, and waits
//!   before deciding), policy (`Always`, `OnFailure`, `OnError`; `OnTransientError` never
//!   retries here: no failure of this emulator is a transient Kubernetes error), `limit`
//!   (`No more retries left`), `expression` (`retryStrategy.expression evaluated to false`).
//!   The expression sees strings only: `lastRetry.exitCode` (`-1` without `main`),
//!   `lastRetry.status`, `lastRetry.duration` (whole seconds: Kubernetes timestamps have
//!   second precision, which is why Argo's own example can `asInt` it), `lastRetry.message`.
//!   Expressions support literals, `== != < <= > >=`, `&& || !`, `and or not`, parentheses,
//!   `matches` (RE2 via the `regex` crate), `in [..]`, `contains`, `startsWith`, `endsWith`,
//!   `asInt`, `asFloat`; anything else is an error naming it.
//! - **Deadlines**: a pod gets Kubernetes' `activeDeadlineSeconds` as Argo sets it
//!   (`workflowpod.go`): the least of the template's `activeDeadlineSeconds`, what is left of
//!   the template's `timeout` (counted from node creation) and of `backoff.maxDuration`; when it
//!   passes the processes are killed and the node fails with `Pod was active on the node longer
//!   than the specified deadline`. The kubelet counts from when it acknowledged the pod, which
//!   includes waiting for volumes, so a pod stuck on a missing Secret is failed by these too.
//!   The workflow's `activeDeadlineSeconds` counts from the workflow's start (after its
//!   semaphore) and fails pending and running pods with `Step exceeded its deadline`
//!   (`exec_control.go`, `failNodesWithoutCreatedPodsAfterDeadlineOrShutdown`); exit-handler
//!   pods are exempt (`workflowpod.go`), its retries are not (`processNodeRetries`).
//! - **Volumes and environment**: `emptyDir` (fresh per attempt), `secret`, `configMap` and
//!   `projected` secret/configMap sources with `items`, `mode`, `defaultMode`, `optional`
//!   (file modes as given, decimal 288 = 0o440). A missing non-optional Secret/ConfigMap or key
//!   keeps the pod Pending like the kubelet (the store is polled, so a test may add it); with
//!   no deadline that could end it, [`Emulator::run`] returns phase Pending with the kubelet's
//!   message instead of hanging. Mount paths are remapped to host folders in every argument and
//!   environment value (longest mount first, whole path segments only). `env` (with
//!   Kubernetes' `$(VAR)` expansion), `envFrom` and `valueFrom` (`secretKeyRef`,
//!   `configMapKeyRef`, `fieldRef` of `metadata.name`/`metadata.namespace`) are honoured.
//!   Processes get a cleared environment plus `PATH`, the container's env, `TMPDIR` (the host
//!   folder of a `/tmp` mount) and the caller's [`Emulator::env`] values (which win).
//! - **Synchronization**: `synchronization.semaphores[].configMapKeyRef` (and the older
//!   `semaphore`) at workflow and template level; the template lock is held across all retries
//!   of the node, as Argo keys it by the retry node. Workflows run one at a time per call, so a
//!   full semaphore is [`EmulatorError::SemaphoreFull`] instead of a wait.
//! - **Exit handler** (`operator.go` `operate`): `spec.onExit` runs after the entry node, even
//!   after deadline failures, as node `<wf>.onExit`. A failed exit handler fails a Succeeded
//!   workflow; the workflow's message is otherwise the entry node's.
//! - **Steps** (`workflow/controller/steps.go`): sequential groups (parallel steps of a group run one after another), `when`
//!   evaluated like govaluate (bare words are strings), `arguments.parameters`,
//!   `continueOn`, skipped steps (`when '…' evaluated false`), `child '<id>' failed`.
//! - **Names** (`workflow/util/pod_name.go`, `Workflow.NodeID`): v2 pod names
//!   `<workflow>-<template>-<fnv32a(node name)>`, or the workflow's name when the node is the
//!   workflow's root node; node ids `<workflow>-<fnv32a(node name)>`.
//!
//! A container's `command[0]` is looked up in the caller's binaries map (a name not in it
//! exits 127 with `executable not found`); a container without `command` runs the image's
//! entrypoint, looked up in the same map by image reference.
//!
//! ## What it does not emulate
//!
//! No scheduling, resource requests or limits, security contexts, real network or filesystem
//! isolation (processes see the host; only mount paths are remapped), artifacts, output
//! parameters, init/wait containers, sidecars, daemons, DAG, resource/suspend/HTTP templates,
//! `templateRef`, `templateDefaults`, lifecycle hooks, memoization, mutexes, pod GC, or a real
//! kubelet. Unix only (file modes, process groups). One workflow runs at a time per
//! [`Emulator::run`] call, synchronously. Times are emulated: [`Emulator::time_scale`] is
//! emulated seconds per real second, and node times are emulated seconds since the workflow's
//! start.

mod expr;
pub mod kube_api;
mod pod;
mod run;
mod util;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

/// The fake Kubernetes objects pods read: Secrets and ConfigMaps of the namespace, by name.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Secret name → key → bytes.
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// ConfigMap name → key → value.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Store {
    /// Sets one key of a Secret, creating the Secret.
    pub fn put_secret(&mut self, name: &str, key: &str, value: impl Into<Vec<u8>>) {
        self.secrets
            .entry(name.to_owned())
            .or_default()
            .insert(key.to_owned(), value.into());
    }
    /// Sets one key of a ConfigMap, creating the ConfigMap.
    pub fn put_config_map(&mut self, name: &str, key: &str, value: impl Into<String>) {
        self.config_maps
            .entry(name.to_owned())
            .or_default()
            .insert(key.to_owned(), value.into());
    }
}

/// An Argo node phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Created, not started (a pod waiting for a volume).
    Pending,
    /// Started, not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully (the user's code failed, or a deadline).
    Failed,
    /// Finished unsuccessfully because of the system (exit code 64, a bad expression).
    Error,
    /// A step whose `when` was false.
    Skipped,
}

impl Phase {
    /// Argo's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
            Phase::Skipped => "Skipped",
        }
    }
    /// Failed or Error.
    pub fn is_failure(self) -> bool {
        matches!(self, Phase::Failed | Phase::Error)
    }
    /// Finished one way or another.
    pub fn is_fulfilled(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Argo's node types, for the ones emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// The parent of a template's attempts (`retryStrategy`).
    Retry,
    /// One pod.
    Pod,
    /// One container of a containerSet pod.
    Container,
    /// A steps template.
    Steps,
    /// One group of a steps template.
    StepGroup,
    /// A step not run (`when` false).
    Skipped,
}

/// One node of the workflow's status.
#[derive(Clone, Debug)]
pub struct Node {
    /// Argo's node name (`wf(0)`, `wf[0].notify`, `wf(0).extract`).
    pub name: String,
    /// Argo's node id (`<wf>-<fnv32a(name)>`, or the workflow name for the root).
    pub id: String,
    /// Argo's display name (`wf(0)`, `notify`, `extract`).
    pub display_name: String,
    /// The template the node runs.
    pub template: String,
    /// The node's type.
    pub kind: NodeKind,
    /// The node's phase.
    pub phase: Phase,
    /// The node's message.
    pub message: String,
    /// `outputs.exitCode`: only from a container named `main`.
    pub exit_code: Option<i32>,
    /// `outputs.result`: the `main` container's stdout, one trailing newline trimmed.
    pub result: Option<String>,
    /// The pod's name (pod and container nodes).
    pub pod_name: Option<String>,
    /// Combined stdout and stderr: a container's, or for a pod node all its containers' in
    /// the order they ran.
    pub log: String,
    /// Emulated seconds since the workflow started.
    pub started: f64,
    /// Emulated seconds since the workflow started (0 until finished).
    pub finished: f64,
    /// Part of the exit handler.
    pub on_exit: bool,
}

/// The end state of one workflow.
#[derive(Clone, Debug)]
pub struct WorkflowRun {
    /// The workflow's name (generated from `generateName` when needed).
    pub name: String,
    /// `{{workflow.uid}}`.
    pub uid: String,
    /// The workflow's phase: Succeeded, Failed, Error, or Pending when a pod could never start.
    pub phase: Phase,
    /// The workflow's message.
    pub message: String,
    /// Every node, in creation order, the exit handler's included.
    pub nodes: Vec<Node>,
    /// Emulated seconds from start to end.
    pub duration: f64,
}

impl WorkflowRun {
    /// How many pods ran (or were created) for a template.
    pub fn attempts(&self, template: &str) -> usize {
        self.pods().filter(|n| n.template == template).count()
    }
    /// The first node with this display name.
    pub fn node(&self, display_name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.display_name == display_name)
    }
    /// The node with this (full) node name.
    pub fn node_named(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
    /// The pod nodes, in creation order.
    pub fn pods(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.kind == NodeKind::Pod)
    }
}

/// One container of a finished pod attempt.
#[derive(Clone, Debug)]
pub struct ContainerRun {
    /// The container's name.
    pub name: String,
    /// Its exit code; None when it never ran.
    pub exit_code: Option<i32>,
    /// Its termination message (the emissary's error, `executable not found`, …).
    pub message: String,
    /// Its combined stdout and stderr.
    pub log: String,
}

/// A pod attempt that finished, for tests that mirror pods and logs into a fake Kubernetes API.
#[derive(Clone, Debug)]
pub struct PodEvent {
    /// The workflow's name.
    pub workflow: String,
    /// The namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The node's name.
    pub node_name: String,
    /// The template's name.
    pub template: String,
    /// The pod node's phase.
    pub phase: Phase,
    /// The pod node's message.
    pub message: String,
    /// The `main` container's exit code.
    pub exit_code: Option<i32>,
    /// The pod's labels: the template's `metadata.labels` plus Argo's
    /// `workflows.argoproj.io/workflow` (and `…/on-exit` in the exit handler).
    pub labels: BTreeMap<String, String>,
    /// The pod's annotations: the template's plus `workflows.argoproj.io/node-name` and
    /// `…/node-id`.
    pub annotations: BTreeMap<String, String>,
    /// The containers, in declaration order.
    pub containers: Vec<ContainerRun>,
    /// Part of the exit handler.
    pub on_exit: bool,
    /// The pod's host folder (volumes under `volumes/<name>`).
    pub dir: PathBuf,
}

/// Why a workflow could not be run.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Refused at submission or when a template is resolved (Argo's message).
    #[error("{0}")]
    Invalid(String),
    /// A `{{…}}` with no value (Argo's message).
    #[error("failed to resolve {{{{{0}}}}}")]
    Unresolved(String),
    /// A semaphore has no free slot.
    #[error("semaphore {0} is full")]
    SemaphoreFull(String),
    /// Something Argo can do but this emulator does not.
    #[error("not emulated: {0}")]
    Unsupported(String),
    /// A host file system operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

type Observer = Box<dyn Fn(&PodEvent) + Send + Sync>;

/// Runs Workflows. Construct with [`Emulator::new`] and the builder methods.
pub struct Emulator {
    templates: BTreeMap<String, Value>,
    store: Mutex<Store>,
    work_dir: PathBuf,
    binaries: BTreeMap<String, PathBuf>,
    time_scale: f64,
    extra_env: BTreeMap<String, String>,
    namespace: String,
    semaphores: Mutex<BTreeMap<(String, String), usize>>,
    observer: Option<Observer>,
    /// The controller's `workflowRestrictions.templateReferencing`.
    template_referencing: Option<String>,
}

impl Emulator {
    /// An emulator keeping pod folders under `work_dir` (one folder per workflow, one per pod).
    pub fn new(work_dir: &Path) -> Self {
        Emulator {
            templates: BTreeMap::new(),
            store: Mutex::new(Store::default()),
            work_dir: work_dir.to_owned(),
            binaries: BTreeMap::new(),
            time_scale: 1.0,
            extra_env: BTreeMap::new(),
            namespace: "default".to_owned(),
            semaphores: Mutex::new(BTreeMap::new()),
            observer: None,
            template_referencing: None,
        }
    }
    /// Maps a command name (`command[0]`, or an image reference for containers without
    /// `command`) to a local executable.
    pub fn with_binary(mut self, name: &str, path: impl Into<PathBuf>) -> Self {
        self.binaries.insert(name.to_owned(), path.into());
        self
    }
    /// Emulated seconds per real second (1000.0: a 3600 s deadline fires after 3.6 s).
    pub fn time_scale(mut self, scale: f64) -> Self {
        assert!(
            scale.is_finite() && scale > 0.0,
            "time_scale must be a positive number, not {scale}"
        );
        self.time_scale = scale;
        self
    }
    /// An environment variable given to every process (it wins over the container's).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.insert(key.to_owned(), value.to_owned());
        self
    }
    /// The namespace (`{{workflow.namespace}}`, semaphore names); default `default`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        self
    }
    /// The controller's `workflowRestrictions.templateReferencing` (default: none). `Strict`
    /// and `Secure` put it in reference mode: a Workflow without `workflowTemplateRef`, or
    /// setting fields Argo does not let it set over its WorkflowTemplate, ends in phase Error.
    pub fn template_referencing(mut self, mode: &str) -> Self {
        self.template_referencing = Some(mode.to_owned());
        self
    }
    /// Installs a WorkflowTemplate object (by `metadata.name`), replacing one of the same name.
    pub fn install_template(&mut self, template: Value) {
        let name =
            util::str_of(template.get("metadata").unwrap_or(&Value::Null), "name").to_owned();
        self.templates.insert(name, template);
    }
    /// The fake Secrets and ConfigMaps; tests may change them, even while a workflow runs.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// Called each time a pod attempt finishes.
    pub fn on_pod(&mut self, f: impl Fn(&PodEvent) + Send + Sync + 'static) {
        self.observer = Some(Box::new(f));
    }
    /// How many holders a ConfigMap-keyed semaphore has now.
    pub fn semaphore_holders(&self, config_map: &str, key: &str) -> usize {
        let held = self
            .semaphores
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.get(&(config_map.to_owned(), key.to_owned()))
            .copied()
            .unwrap_or(0)
    }
    /// Runs a Workflow object to its end. Submission errors (and what the emulator cannot do)
    /// are `Err`; a workflow that fails is `Ok` with phase Failed or Error.
    pub fn run(&self, workflow: &Value) -> Result<WorkflowRun, EmulatorError> {
        run::run(self, workflow)
    }

    fn acquire(&self, sync: Option<&Value>) -> Result<SemaphoreGuard<'_>, EmulatorError> {
        let mut guard = SemaphoreGuard {
            emulator: self,
            keys: Vec::new(),
        };
        let Some(sync) = sync else { return Ok(guard) };
        let refs = util::list_of(sync, "semaphores")
            .iter()
            .chain(sync.get("semaphore"));
        for semaphore in refs {
            let Some(cm) = semaphore.get("configMapKeyRef") else {
                return Err(EmulatorError::Unsupported(format!(
                    "semaphore {semaphore} (only configMapKeyRef)"
                )));
            };
            let (name, key) = (util::str_of(cm, "name"), util::str_of(cm, "key"));
            let limit = self
                .store()
                .config_maps
                .get(name)
                .and_then(|m| m.get(key))
                .cloned();
            let limit: usize = limit.as_deref().and_then(|l| l.trim().parse().ok()).ok_or_else(|| {
                EmulatorError::Invalid(format!("failed to get semaphore limit from ConfigMap {name:?} key {key:?}: {limit:?}"))
            })?;
            let mut held = self
                .semaphores
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let holders = held.entry((name.to_owned(), key.to_owned())).or_default();
            if *holders >= limit {
                // Argo's lock name, as `kubectl get workflow -o yaml` shows it.
                return Err(EmulatorError::SemaphoreFull(format!(
                    "{}/ConfigMap/{name}/{key} (limit {limit})",
                    self.namespace
                )));
            }
            *holders += 1;
            guard.keys.push((name.to_owned(), key.to_owned()));
        }
        Ok(guard)
    }
}

/// Holds semaphore slots; dropping it frees them, however the run ends.
struct SemaphoreGuard<'e> {
    emulator: &'e Emulator,
    keys: Vec<(String, String)>,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let mut held = self
            .emulator
            .semaphores
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            if let Some(n) = held.get_mut(key) {
                *n = n.saturating_sub(1);
            }
        }
    }
}
