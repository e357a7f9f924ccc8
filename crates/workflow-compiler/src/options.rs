//! Agent options: the site-wide knobs platform teams set once (usually through the Helm
//! chart's values) and the compiler applies to every generated object.
//!
//! Each field's doc comment gives its meaning, default and an example. Options are read from
//! YAML with unknown fields rejected, so a typo is an error rather than a silently ignored
//! setting.

use std::collections::BTreeMap;

use argo_workflows::core::{Affinity, Toleration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Everything the compiler needs besides the descriptors. `AgentOptions::default()` is a
/// working configuration for a namespace named `outpost`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentOptions {
    /// Namespace the objects are installed in. Default: `outpost`.
    pub namespace: String,
    /// Image pulling.
    pub images: ImageOptions,
    /// Outbound HTTP(S) proxy, injected into every container. Default: none.
    pub proxy: Option<ProxyOptions>,
    /// A custom CA bundle trusted by every container. Default: none (the image's roots).
    pub ca_bundle: Option<CaBundle>,
    /// Sign every run's manifest with the agent's Ed25519 key (`outpost keygen`), held in a
    /// Secret mounted into connector pods' extract step only; readers check runs with
    /// `outpost verify --key` and the public key. Default: none (manifests are unsigned).
    /// Example: `{secret: outpost-manifest-signing-key}`.
    pub manifest_signing: Option<ManifestSigning>,
    /// Write every run in catalogs' own formats too (`datahub`, `openlineage`), into
    /// `exports/` beside its streams: listed and signed in its manifest and delivered with it,
    /// so a catalog reads it from the bucket directly. OpenLineage datasets are named in each
    /// connection's server namespace (`postgres://host:port`). Default: none.
    /// Example: `{formats: [datahub], datahubEnv: PROD}`.
    pub exports: Option<ExportOptions>,
    /// Where pods are scheduled, applied to every template.
    pub scheduling: Scheduling,
    /// CPU and memory of connector pods, replacing each descriptor's defaults. Default: none.
    #[schemars(with = "Option<serde_json::Value>")]
    pub connector_resources: Option<argo_workflows::core::ResourceRequirements>,
    /// CPU and memory of the agent's own containers (upload, report, orchestrator,
    /// heartbeat). Default: requests `cpu: 10m, memory: 32Mi`, limits `cpu: 200m, memory: 64Mi`.
    #[schemars(with = "Option<serde_json::Value>")]
    pub agent_resources: Option<argo_workflows::core::ResourceRequirements>,
    /// Retry policy of connector runs, replacing each descriptor's defaults. Default: none.
    pub retry: Option<RetryOptions>,
    /// When finished pods are deleted.
    pub pod_gc: PodGcOptions,
    /// When finished Workflow objects are deleted.
    pub ttl: TtlOptions,
    /// How many runs of one connector may go at once.
    pub concurrency: ConcurrencyOptions,
    /// Service accounts, one per role. Their RBAC comes with the Helm chart.
    pub service_accounts: ServiceAccounts,
    /// The SaaS control plane.
    pub control_plane: ControlPlaneOptions,
    /// Argo's workflow controller: where its configuration is, which the orchestrator checks
    /// restricts Workflows to WorkflowTemplate references.
    pub argo: ArgoOptions,
    /// Where bucket relay writes. Default: none (only direct ingestion can run).
    pub relay: Option<RelayOptions>,
    /// Schedules of the agent's own CronWorkflows.
    pub schedules: Schedules,
    /// Extra labels put on every generated object and pod. Default: none.
    pub labels: BTreeMap<String, String>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            namespace: "outpost".to_owned(),
            images: ImageOptions::default(),
            proxy: None,
            ca_bundle: None,
            manifest_signing: None,
            exports: None,
            scheduling: Scheduling::default(),
            connector_resources: None,
            agent_resources: None,
            retry: None,
            pod_gc: PodGcOptions::default(),
            ttl: TtlOptions::default(),
            concurrency: ConcurrencyOptions::default(),
            service_accounts: ServiceAccounts::default(),
            control_plane: ControlPlaneOptions::default(),
            argo: ArgoOptions::default(),
            relay: None,
            schedules: Schedules::default(),
            labels: BTreeMap::new(),
        }
    }
}

/// Image pulling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageOptions {
    /// Registry (and path) that replaces the registry host of every image, to pull through
    /// a mirror (`registry.example.com/mirror`). Default: none.
    pub registry: Option<String>,
    /// Names of `kubernetes.io/dockerconfigjson` Secrets used to pull. Default: none.
    pub pull_secrets: Vec<String>,
    /// `IfNotPresent` or `Always`. Default: `IfNotPresent` (images are pinned).
    pub pull_policy: Option<String>,
    /// Image of the agent's own steps (orchestrator, heartbeat, reporter), as
    /// `repository:tag` or `repository@digest`. Default:
    /// `ghcr.io/outpost-agent/outpost:<version of this compiler>`.
    pub agent_image: Option<String>,
}

/// Outbound proxy settings, set as `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (and their
/// lowercase forms, which some clients read instead).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyOptions {
    /// Proxy for `http://` URLs (`http://proxy.example.com:3128`).
    pub http_proxy: Option<String>,
    /// Proxy for `https://` URLs.
    pub https_proxy: Option<String>,
    /// Hosts, domains and CIDRs reached directly (`.svc`, `10.0.0.0/8`). The Kubernetes
    /// service domain `.svc.cluster.local` is always added.
    pub no_proxy: Vec<String>,
}

/// A CA bundle mounted into every container, with `SSL_CERT_FILE` pointing at it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CaBundle {
    /// Where the bundle is stored.
    pub source: CaBundleSource,
    /// Name of the ConfigMap or Secret (`corporate-ca`).
    pub name: String,
    /// Key holding the PEM bundle. Default: `ca.crt`.
    #[serde(default = "default_ca_key")]
    pub key: String,
}

/// The catalog formats every run is also written in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExportOptions {
    /// The formats (`datahub`, `openlineage`).
    pub formats: Vec<outpost_core::output::ExportFormat>,
    /// DataHub's environment, as the DataHub source's `env`. Default: `PROD`.
    #[serde(default)]
    pub datahub_env: Option<String>,
    /// DataHub's platform instance, as the DataHub source's `platform_instance`. Default:
    /// none.
    #[serde(default)]
    pub datahub_platform_instance: Option<String>,
}

/// Where the manifest-signing key is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestSigning {
    /// Name of the Secret holding the private key's seed (`outpost-manifest-signing-key`).
    pub secret: String,
    /// Key of the Secret holding it. Default: `key`.
    #[serde(default = "default_signing_key")]
    pub key: String,
}

fn default_signing_key() -> String {
    "key".to_owned()
}

fn default_ca_key() -> String {
    "ca.crt".to_owned()
}

/// The kind of object holding a CA bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CaBundleSource {
    /// A ConfigMap (CA certificates are public).
    ConfigMap,
    /// A Secret.
    Secret,
}

/// Scheduling constraints applied to every template (not only at workflow level: Argo
/// ignores some workflow-level fields when a Workflow runs through `workflowTemplateRef`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Scheduling {
    /// Node labels pods must match (`kubernetes.io/os: linux`). Default: none.
    pub node_selector: BTreeMap<String, String>,
    /// Taints pods tolerate. Default: none.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub tolerations: Vec<Toleration>,
    /// Node and pod affinity. Default: none.
    #[schemars(with = "Option<serde_json::Value>")]
    pub affinity: Option<Affinity>,
}

/// Retry policy of connector runs. Only failures that may pass are retried (a pod lost by
/// Kubernetes, or a step exiting with code 75 for a network error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryOptions {
    /// Retries after the first attempt (`3`).
    pub limit: u32,
    /// First wait, as a Go duration (`30s`).
    pub backoff_duration: String,
    /// Factor each later wait is multiplied by (`2`).
    pub backoff_factor: u32,
    /// Longest single wait, as a Go duration (`10m`).
    pub backoff_cap: String,
}

/// When Argo deletes finished pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PodGcOptions {
    /// `OnPodCompletion`, `OnPodSuccess`, `OnWorkflowCompletion` or `OnWorkflowSuccess`.
    /// Default: `OnWorkflowSuccess` (failed runs keep their pods for debugging).
    pub strategy: String,
    /// Delay before deletion, as a Go duration. Default: none.
    pub delete_delay_duration: Option<String>,
}

impl Default for PodGcOptions {
    fn default() -> Self {
        Self {
            strategy: "OnWorkflowSuccess".to_owned(),
            delete_delay_duration: None,
        }
    }
}

/// When Argo deletes finished Workflow objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TtlOptions {
    /// Seconds a succeeded Workflow is kept. Default: 86400 (one day).
    pub seconds_after_success: Option<i32>,
    /// Seconds a failed Workflow is kept. Default: 604800 (one week).
    pub seconds_after_failure: Option<i32>,
}

impl Default for TtlOptions {
    fn default() -> Self {
        Self {
            seconds_after_success: Some(86_400),
            seconds_after_failure: Some(604_800),
        }
    }
}

/// How many runs of one connector may go at once, enforced with an Argo semaphore whose
/// limits live in the ConfigMap `outpost-concurrency` (one key per connector).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ConcurrencyOptions {
    /// Limit for every connector without its own. Default: 2.
    pub per_connector: u32,
    /// Limits for named connectors (`postgres: 4`). Default: none.
    pub overrides: BTreeMap<String, u32>,
}

impl Default for ConcurrencyOptions {
    fn default() -> Self {
        Self {
            per_connector: 2,
            overrides: BTreeMap::new(),
        }
    }
}

/// Service accounts, one per role, so each gets only the RBAC it needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceAccounts {
    /// Connector pods (extract + upload). They mount no token. Default: `outpost-connector`.
    pub connector: String,
    /// Argo's executor in pods that mount no token; may only create and patch
    /// `workflowtaskresults`. Default: `outpost-executor`.
    pub executor: String,
    /// The orchestrator; may create, get and list Workflows. Default: `outpost-orchestrator`.
    pub orchestrator: String,
    /// The heartbeat. Default: `outpost-heartbeat`.
    pub heartbeat: String,
    /// The exit handler that reports a run's status and ships its logs; may read the logs
    /// of pods in its namespace. Default: `outpost-reporter`.
    pub reporter: String,
}

impl Default for ServiceAccounts {
    fn default() -> Self {
        Self {
            connector: "outpost-connector".to_owned(),
            executor: "outpost-executor".to_owned(),
            orchestrator: "outpost-orchestrator".to_owned(),
            heartbeat: "outpost-heartbeat".to_owned(),
            reporter: "outpost-reporter".to_owned(),
        }
    }
}

/// The SaaS control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneOptions {
    /// Base URL (`https://catalog.example.com/outpost/v1`): https, or http to loopback only,
    /// unless `insecurePlainHttp`. Default: `https://outpost-control-plane:8443` (a control
    /// plane served in the same namespace).
    pub url: String,
    /// Secret holding the agent's bearer token under the key `token`, mounted as a file
    /// and re-read on every request. Default: `outpost-control-plane-token`.
    pub token_secret: String,
    /// Ed25519 public key (base64 of its 32 bytes) the control plane signs jobs with. When
    /// set, the orchestrator admits only jobs carrying a valid signature by it. Default:
    /// none (jobs are still checked against the descriptors, but not for a signature).
    /// A signed job must also be signed for this agent (`agentId`), unexpired (`notAfter`,
    /// plus 5 minutes of clock skew, at most the shorter of the two `ttl`s and 24 hours
    /// ahead) and carry a nonce no Workflow of another job carries.
    pub job_signing_key: Option<String>,
    /// This agent's id at the control plane: what heartbeats report, and the `agentId` a
    /// signed job must carry (`outpost-prod-eu`). Default: none (the namespace).
    pub agent_id: Option<String>,
    /// Hosts that direct-ingestion upload URLs may point at: exact names
    /// (`storage.googleapis.com`) or `*.` and a suffix of at least two labels
    /// (`*.blob.core.windows.net`, `*.s3.eu-central-1.amazonaws.com`). Only https URLs to
    /// these hosts are used, never an IP address, and the control plane may not set
    /// `Authorization`, `Cookie`, `Host` or other non-store headers. Default: none, which
    /// refuses every upload URL: direct ingestion needs it.
    pub ingest_hosts: Vec<String>,
    /// Also accept loopback upload URLs (`127.0.0.0/8`, `::1`, `localhost`), over http too.
    /// For tests and local use only; a connector pod's loopback serves nothing. Logged as a
    /// warning by every upload. Default: `false`.
    pub allow_loopback_ingest: bool,
    /// Allow a plain-http `url` that is not loopback: the agent's token then crosses the
    /// network in clear text. Every step logs a warning. Default: `false`.
    pub insecure_plain_http: bool,
    /// Admit unsigned jobs when `jobSigningKey` is not set (the orchestrator refuses to run
    /// otherwise). Every tick logs a warning. Default: `false`.
    pub insecure_unsigned_jobs: bool,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            url: "https://outpost-control-plane:8443".to_owned(),
            token_secret: "outpost-control-plane-token".to_owned(),
            job_signing_key: None,
            agent_id: None,
            ingest_hosts: Vec::new(),
            allow_loopback_ingest: false,
            insecure_plain_http: false,
            insecure_unsigned_jobs: false,
        }
    }
}

/// The customer's bucket for bucket relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RelayOptions {
    /// Bucket URL: `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`.
    pub url: String,
    /// Secret with static bucket credentials, mounted as files; leave empty to use the
    /// cloud's workload identity. Default: none.
    #[serde(default)]
    pub credentials_secret: Option<String>,
    /// Custom endpoint: an S3-compatible store, a private endpoint. Default: the cloud's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 region. Default: the pod's `AWS_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Azure storage account (for `az://` URLs). Default: from the credentials Secret.
    #[serde(default)]
    pub azure_account: Option<String>,
    /// S3 server-side encryption with this KMS key id. Default: the bucket's own setting.
    #[serde(default)]
    pub sse_kms_key_id: Option<String>,
}

/// Schedules of the agent's CronWorkflows, as cron expressions in UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Schedules {
    /// When the orchestrator polls the control plane. Default: `*/5 * * * *`.
    pub orchestrator: String,
    /// When the agent reports it is alive. Default: `*/5 * * * *`.
    pub heartbeat: String,
}

impl Default for Schedules {
    fn default() -> Self {
        Self {
            orchestrator: "*/5 * * * *".to_owned(),
            heartbeat: "*/5 * * * *".to_owned(),
        }
    }
}

/// Argo's workflow controller, as the agent relies on it.
///
/// The orchestrator's account may create Workflows; only Argo's
/// `workflowRestrictions.templateReferencing: Strict` (or `Secure`) makes the controller run
/// nothing but Workflows that reference a WorkflowTemplate. So the orchestrator reads the
/// controller's configuration before every tick and refuses to run without it, and the
/// heartbeat reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ArgoOptions {
    /// The workflow controller's ConfigMap (its `--configmap`). The chart lets the
    /// orchestrator and heartbeat `get` this one ConfigMap. Default: `{namespace: argo, name:
    /// workflow-controller-configmap}`, as Argo's install manifests name it.
    pub controller_config_map: argo_workflows::ControllerConfigMap,
    /// Run ticks even when the controller does not enforce `templateReferencing: Strict` or
    /// `Secure` (or its configuration cannot be read): a compromised orchestrator could then
    /// run pods of any image. Every tick and heartbeat logs a warning. Default: `false`.
    pub insecure_allow_unrestricted_templates: bool,
}
