//! A typed model of the Argo Workflows objects Outpost emits, lossless for the ones it reads.
//!
//! The model is pinned to the Argo `v1alpha1` API as published by Argo 3.7 and 4.x. Every field
//! Outpost writes is typed. Every other field Argo defines is kept verbatim in the `other` map
//! of the struct it belongs to, so reading a manifest and writing it back loses nothing (proved
//! by a test over Argo's own example corpus). Core Kubernetes types (containers, volumes,
//! affinity, security contexts …) come from `k8s-openapi`.
//!
//! Fields that Argo 4 removed (`CronWorkflowSpec.schedule`, `synchronization.semaphore` and
//! `.mutex`, `podPriority`) have no typed field here: a reader keeps them in `other`, a writer
//! cannot set them by accident.
//!
//! Argo types `IntOrString` fields (`retryStrategy.limit`, `backoff.factor`,
//! `activeDeadlineSeconds` on a template) as strings in its JSON Schema; they are
//! [`IntOrString`] here, and Outpost always emits the string form.
//!
//! This crate does no I/O: values in, values out.

use std::collections::BTreeMap;

pub use k8s_openapi::api::core::v1 as core;
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
pub use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

/// The API version of every Argo Workflows object.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// A ConfigMap of Argo's workflow controller (its `--configmap`), written
/// `<namespace>/<name>` on command lines. Default: `argo/workflow-controller-configmap`, as
/// Argo's install manifests name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ControllerConfigMap {
    /// Namespace of the controller. Default: `argo`.
    pub namespace: String,
    /// Name of the ConfigMap. Default: `workflow-controller-configmap`.
    pub name: String,
}

impl Default for ControllerConfigMap {
    fn default() -> Self {
        Self {
            namespace: "argo".to_owned(),
            name: "workflow-controller-configmap".to_owned(),
        }
    }
}

impl std::fmt::Display for ControllerConfigMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl std::str::FromStr for ControllerConfigMap {
    type Err = String;

    /// `<namespace>/<name>`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(Self {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(format!(
                "`{text}` is not <namespace>/<name> (`argo/workflow-controller-configmap`)"
            )),
        }
    }
}

/// Fields of an object that this model does not type, kept verbatim (sorted by name).
pub type OtherFields = BTreeMap<String, serde_json::Value>;

/// A part of an Argo object, declared as every part is: `Clone`, `Debug`, `Default`,
/// `PartialEq`, serde in camelCase, and every `Option` field (written `Option<…>`) read as
/// `None` when missing and left out when `None`. A field's own attributes are kept.
macro_rules! argo_struct {
    ($(#[$attr:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        argo_struct!(@field [$(#[$attr])* pub struct $name] [] $($fields)*);
    };
    (@field $head:tt [$($done:tt)*]
        $(#[$field_attr:meta])* pub $field:ident: Option<$ty:ty>, $($rest:tt)*) => {
        argo_struct!(@field $head [$($done)*
            $(#[$field_attr])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub $field: Option<$ty>,
        ] $($rest)*);
    };
    (@field $head:tt [$($done:tt)*]
        $(#[$field_attr:meta])* pub $field:ident: $ty:ty, $($rest:tt)*) => {
        argo_struct!(@field $head [$($done)* $(#[$field_attr])* pub $field: $ty,] $($rest)*);
    };
    (@field [$($head:tt)*] [$($done:tt)*]) => {
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        $($head)* { $($done)* }
    };
}

macro_rules! argo_object {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $spec:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// Always [`API_VERSION`].
            pub api_version: String,
            #[doc = concat!("Always `", $kind, "`.")]
            pub kind: String,
            /// Name, namespace, labels and annotations.
            pub metadata: ObjectMeta,
            /// What the object does.
            pub spec: $spec,
            /// Fields not typed here (`status` on a read object), kept verbatim.
            #[serde(flatten)]
            pub other: OtherFields,
        }

        impl $name {
            /// The `kind` of this object.
            pub const KIND: &'static str = $kind;

            /// A new object with `apiVersion` and `kind` set.
            pub fn new(metadata: ObjectMeta, spec: $spec) -> Self {
                Self {
                    api_version: API_VERSION.to_owned(),
                    kind: $kind.to_owned(),
                    metadata,
                    spec,
                    other: OtherFields::new(),
                }
            }
        }
    };
}

argo_object!(
    /// A `Workflow`: one run.
    Workflow,
    "Workflow",
    WorkflowSpec
);
argo_object!(
    /// A `WorkflowTemplate`: a namespaced, reusable workflow definition.
    WorkflowTemplate,
    "WorkflowTemplate",
    WorkflowSpec
);
argo_object!(
    /// A `ClusterWorkflowTemplate`: a cluster-scoped workflow definition.
    ClusterWorkflowTemplate,
    "ClusterWorkflowTemplate",
    WorkflowSpec
);
argo_object!(
    /// A `CronWorkflow`: a workflow submitted on a schedule.
    CronWorkflow,
    "CronWorkflow",
    CronWorkflowSpec
);

/// Any of the four workflow kinds, told apart by `kind` (see [`AnyWorkflowObject::from_value`];
/// Workflow and WorkflowTemplate have the same shape, so only `kind` can tell them apart).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnyWorkflowObject {
    /// A `Workflow`.
    Workflow(Box<Workflow>),
    /// A `WorkflowTemplate`.
    WorkflowTemplate(Box<WorkflowTemplate>),
    /// A `ClusterWorkflowTemplate`.
    ClusterWorkflowTemplate(Box<ClusterWorkflowTemplate>),
    /// A `CronWorkflow`.
    CronWorkflow(Box<CronWorkflow>),
}

impl AnyWorkflowObject {
    /// Reads a JSON value as the workflow kind its `kind` field names.
    ///
    /// Returns `Ok(None)` for any other kind.
    pub fn from_value(value: serde_json::Value) -> Result<Option<Self>, serde_json::Error> {
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        Ok(Some(match kind {
            Workflow::KIND => Self::Workflow(Box::new(serde_json::from_value(value)?)),
            WorkflowTemplate::KIND => {
                Self::WorkflowTemplate(Box::new(serde_json::from_value(value)?))
            }
            ClusterWorkflowTemplate::KIND => {
                Self::ClusterWorkflowTemplate(Box::new(serde_json::from_value(value)?))
            }
            CronWorkflow::KIND => Self::CronWorkflow(Box::new(serde_json::from_value(value)?)),
            _ => return Ok(None),
        }))
    }
}

argo_struct! {
    /// `spec` of a Workflow, WorkflowTemplate or ClusterWorkflowTemplate.
    pub struct WorkflowSpec {
        /// Name of the template the workflow starts with.
        pub entrypoint: Option<String>,
        /// Parameters and artifacts passed to the entrypoint; the workflow's inputs.
        pub arguments: Option<Arguments>,
        /// The templates the workflow may run.
        pub templates: Option<Vec<Template>>,
        /// Runs this workflow's templates from a (Cluster)WorkflowTemplate instead.
        pub workflow_template_ref: Option<WorkflowTemplateRef>,
        /// Template run when the workflow ends, whatever its outcome.
        pub on_exit: Option<String>,
        /// Service account the workflow's pods run as.
        pub service_account_name: Option<String>,
        /// Whether pods get a service-account token mounted.
        pub automount_service_account_token: Option<bool>,
        /// The executor's own settings (its service account when pods mount no token).
        pub executor: Option<ExecutorConfig>,
        /// Pod-level security context applied to every pod of the workflow.
        pub security_context: Option<core::PodSecurityContext>,
        /// Volumes every template may mount.
        pub volumes: Option<Vec<core::Volume>>,
        /// Node selector applied to every pod.
        pub node_selector: Option<BTreeMap<String, String>>,
        /// Tolerations applied to every pod.
        pub tolerations: Option<Vec<core::Toleration>>,
        /// Affinity applied to every pod.
        pub affinity: Option<core::Affinity>,
        /// Secrets used to pull images.
        pub image_pull_secrets: Option<Vec<core::LocalObjectReference>>,
        /// Labels and annotations put on every pod.
        pub pod_metadata: Option<Metadata>,
        /// Labels and annotations put on the Workflow object itself.
        pub workflow_metadata: Option<WorkflowMetadata>,
        /// When pods are deleted.
        #[serde(rename = "podGC")]
        pub pod_gc: Option<PodGc>,
        /// When the finished Workflow object is deleted.
        pub ttl_strategy: Option<TtlStrategy>,
        /// Upper bound, in seconds, on the whole workflow's run time.
        pub active_deadline_seconds: Option<i64>,
        /// Semaphores and mutexes the workflow must hold to run.
        pub synchronization: Option<Synchronization>,
        /// Maximum number of pods running at once.
        pub parallelism: Option<i64>,
        /// Retry policy for every template that sets none.
        pub retry_strategy: Option<RetryStrategy>,
        /// Defaults merged into every template.
        pub template_defaults: Option<Box<Template>>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// `spec` of a CronWorkflow.
    pub struct CronWorkflowSpec {
        /// Cron schedules (the plural form: Argo 4 removed the singular `schedule`).
        #[serde(default)]
        pub schedules: Vec<String>,
        /// IANA time zone the schedules are read in.
        pub timezone: Option<String>,
        /// `Allow`, `Forbid` or `Replace`: what to do when a run is still going at the next tick.
        pub concurrency_policy: Option<String>,
        /// How late, in seconds, a missed tick may still start.
        pub starting_deadline_seconds: Option<i64>,
        /// Finished successful Workflows kept.
        pub successful_jobs_history_limit: Option<i32>,
        /// Finished failed Workflows kept.
        pub failed_jobs_history_limit: Option<i32>,
        /// Stops scheduling while true.
        pub suspend: Option<bool>,
        /// Labels and annotations of the Workflows it creates.
        pub workflow_metadata: Option<ObjectMeta>,
        /// The Workflow to create at each tick.
        pub workflow_spec: WorkflowSpec,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// A reference to a WorkflowTemplate whose templates a Workflow runs.
    pub struct WorkflowTemplateRef {
        /// The template's name.
        pub name: Option<String>,
        /// True for a ClusterWorkflowTemplate.
        pub cluster_scope: Option<bool>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// Settings of Argo's executor.
    pub struct ExecutorConfig {
        /// Service account whose token only the executor (not the main container) receives.
        pub service_account_name: Option<String>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// Labels and annotations.
    pub struct Metadata {
        /// Labels.
        pub labels: Option<BTreeMap<String, String>>,
        /// Annotations.
        pub annotations: Option<BTreeMap<String, String>>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// Labels and annotations of a Workflow object, possibly computed from expressions.
    pub struct WorkflowMetadata {
        /// Labels.
        pub labels: Option<BTreeMap<String, String>>,
        /// Annotations.
        pub annotations: Option<BTreeMap<String, String>>,
        /// Fields not typed here (`labelsFrom`), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// When Argo deletes a workflow's pods.
    pub struct PodGc {
        /// `OnPodCompletion`, `OnPodSuccess`, `OnWorkflowCompletion` or `OnWorkflowSuccess`.
        pub strategy: Option<String>,
        /// How long to wait before deleting, as a Go duration (`30s`, `5m`).
        pub delete_delay_duration: Option<String>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// When Argo deletes a finished Workflow object.
    pub struct TtlStrategy {
        /// Seconds after the workflow completes, whatever its outcome.
        pub seconds_after_completion: Option<i32>,
        /// Seconds after the workflow succeeds.
        pub seconds_after_success: Option<i32>,
        /// Seconds after the workflow fails.
        pub seconds_after_failure: Option<i32>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// Semaphores and mutexes (plural forms: Argo 4 removed the singular ones).
    pub struct Synchronization {
        /// Semaphores to hold.
        pub semaphores: Option<Vec<SemaphoreRef>>,
        /// Mutexes to hold.
        pub mutexes: Option<Vec<Mutex>>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// A semaphore whose limit is read from a ConfigMap key.
    pub struct SemaphoreRef {
        /// The ConfigMap key holding the semaphore's limit.
        pub config_map_key_ref: Option<core::ConfigMapKeySelector>,
        /// Namespace of the ConfigMap.
        pub namespace: Option<String>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// A named mutex.
    pub struct Mutex {
        /// The mutex's name.
        pub name: Option<String>,
        /// Namespace the mutex lives in.
        pub namespace: Option<String>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// How a failed step is retried.
    pub struct RetryStrategy {
        /// Maximum number of retries (emitted as a string: Argo types it IntOrString).
        pub limit: Option<IntOrString>,
        /// `Always`, `OnFailure`, `OnError` or `OnTransientError`.
        pub retry_policy: Option<String>,
        /// An expression that must be true for a retry to happen.
        pub expression: Option<String>,
        /// Waiting time between retries.
        pub backoff: Option<Backoff>,
        /// Fields not typed here (`affinity`), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// Exponential backoff between retries.
    pub struct Backoff {
        /// First wait, as a Go duration (`10s`).
        pub duration: Option<String>,
        /// Multiplier applied to each following wait (IntOrString).
        pub factor: Option<IntOrString>,
        /// Upper bound on the total time spent retrying, as a Go duration.
        pub max_duration: Option<String>,
        /// Upper bound on one wait, as a Go duration.
        pub cap: Option<String>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// Parameters and artifacts passed to a workflow or template.
    pub struct Arguments {
        /// Parameters.
        pub parameters: Option<Vec<Parameter>>,
        /// Fields not typed here (`artifacts`), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// A template's declared inputs.
    pub struct Inputs {
        /// Parameters.
        pub parameters: Option<Vec<Parameter>>,
        /// Fields not typed here (`artifacts`), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// A named string parameter.
    pub struct Parameter {
        /// The parameter's name.
        pub name: String,
        /// Its value (an argument), if given.
        pub value: Option<serde_json::Value>,
        /// Its default when no value is passed.
        pub default: Option<serde_json::Value>,
        /// The allowed values; Argo rejects a submission with any other.
        #[serde(rename = "enum")]
        pub allowed_values: Option<Vec<serde_json::Value>>,
        /// What the parameter means.
        pub description: Option<String>,
        /// Fields not typed here (`valueFrom`, `globalName`), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// One template: a unit of work (container, container set, DAG, steps …).
    pub struct Template {
        /// The template's name, unique within its workflow.
        pub name: Option<String>,
        /// Declared inputs.
        pub inputs: Option<Inputs>,
        /// Labels and annotations of the template's pod.
        pub metadata: Option<Metadata>,
        /// A single-container pod.
        pub container: Option<TemplateContainer>,
        /// Several containers in one pod, ordered by dependencies.
        pub container_set: Option<ContainerSetTemplate>,
        /// A DAG of tasks.
        pub dag: Option<DagTemplate>,
        /// Sequential groups of parallel steps.
        pub steps: Option<Vec<Vec<WorkflowStep>>>,
        /// Volumes of this template's pod.
        pub volumes: Option<Vec<core::Volume>>,
        /// Node selector of this template's pod.
        pub node_selector: Option<BTreeMap<String, String>>,
        /// Tolerations of this template's pod.
        pub tolerations: Option<Vec<core::Toleration>>,
        /// Affinity of this template's pod.
        pub affinity: Option<core::Affinity>,
        /// Pod-level security context of this template's pod.
        pub security_context: Option<core::PodSecurityContext>,
        /// Service account of this template's pod.
        pub service_account_name: Option<String>,
        /// Whether this template's pod gets a service-account token.
        pub automount_service_account_token: Option<bool>,
        /// Executor settings of this template's pod.
        pub executor: Option<ExecutorConfig>,
        /// How this template is retried.
        pub retry_strategy: Option<RetryStrategy>,
        /// Upper bound, in seconds, on the pod's run time (IntOrString).
        pub active_deadline_seconds: Option<IntOrString>,
        /// Semaphores and mutexes this template must hold to run.
        pub synchronization: Option<Synchronization>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

/// The container of a container template. Unlike a Kubernetes container, Argo's needs no
/// `name` (Argo calls it `main`): an empty name is left out when written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateContainer(pub core::Container);

impl std::ops::Deref for TemplateContainer {
    type Target = core::Container;
    fn deref(&self) -> &core::Container {
        &self.0
    }
}

impl std::ops::DerefMut for TemplateContainer {
    fn deref_mut(&mut self) -> &mut core::Container {
        &mut self.0
    }
}

impl Serialize for TemplateContainer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        if self.0.name.is_empty()
            && let Some(map) = value.as_object_mut()
        {
            map.remove("name");
        }
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TemplateContainer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = serde_json::Value::deserialize(deserializer)?;
        if let Some(map) = value.as_object_mut() {
            map.entry("name")
                .or_insert_with(|| serde_json::Value::from(""));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

argo_struct! {
    /// Several containers in one pod.
    pub struct ContainerSetTemplate {
        /// The containers, each started once its dependencies have succeeded.
        pub containers: Vec<ContainerNode>,
        /// Volume mounts added to every container of the set.
        pub volume_mounts: Option<Vec<core::VolumeMount>>,
        /// Fields not typed here (`retryStrategy`), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// One container of a container set.
    pub struct ContainerNode {
        /// The container.
        #[serde(flatten)]
        pub container: core::Container,
        /// Names of the containers that must succeed before this one starts.
        pub dependencies: Option<Vec<String>>,
        /// Fields not typed here, kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// A DAG of tasks.
    pub struct DagTemplate {
        /// The tasks.
        pub tasks: Vec<DagTask>,
        /// Fields not typed here (`target`, `failFast`), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// One task of a DAG.
    pub struct DagTask {
        /// The task's name.
        pub name: String,
        /// The template it runs.
        pub template: Option<String>,
        /// Arguments passed to the template.
        pub arguments: Option<Arguments>,
        /// Tasks that must finish first.
        pub dependencies: Option<Vec<String>>,
        /// Fields not typed here (`depends`, `when`, `templateRef` …), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

argo_struct! {
    /// One step of a steps template.
    pub struct WorkflowStep {
        /// The step's name.
        pub name: Option<String>,
        /// The template it runs.
        pub template: Option<String>,
        /// Arguments passed to the template.
        pub arguments: Option<Arguments>,
        /// Fields not typed here (`when`, `withItems`, `templateRef` …), kept verbatim.
        #[serde(flatten)]
        pub other: OtherFields,
    }
}

/// The string form of an IntOrString field, as Argo's JSON Schema expects it (`"3"`).
pub fn int_or_string(value: impl std::fmt::Display) -> IntOrString {
    IntOrString::String(value.to_string())
}
