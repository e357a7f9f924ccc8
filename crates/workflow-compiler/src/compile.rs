//! Descriptor + agent options → typed Argo objects. A pure function: no environment, clock or
//! randomness; the same inputs give the same objects.
//!
//! # Why a container set
//! Extract and upload run as two containers of one pod (`containerSet`), handing files over
//! through a shared `emptyDir`. The alternative, two pods sharing a workflow-scoped
//! `volumeClaimTemplates` volume, needs a storage class on every cluster, a ReadWriteMany or
//! same-node volume, and leaves extracted metadata on a persistent disk after the run. A
//! container set needs none of that: the output never leaves the pod except through the
//! upload step, is bounded by the `emptyDir` size limit, and vanishes with the pod. Upload
//! starts only once extract has exited 0 (`dependencies`), so a partial output is never sent.
//!
//! # Why the upload container is named `main`
//! Argo reads a pod's exit code (`lastRetry.exitCode` in a retry expression) only from a
//! container named `main` (`getExitCode` in the controller; the emissary saves outputs for
//! `main` only). So the upload container is `main`, and extract hands its outcome to it: with
//! `--outcome-file`, extract records its exit code and message in a small shared folder and
//! exits 0; upload (`--extract-outcome`) reads it first and, when extract failed, exits with
//! extract's code without uploading. The pod's exit code is then always the step's own
//! (75 retried, 77 and 78 not), and the retry expression never depends on message text.

use std::collections::BTreeMap;

use argo_workflows::core::{
    ConfigMap, ConfigMapKeySelector, ConfigMapVolumeSource, Container, EmptyDirVolumeSource,
    EnvVar, KeyToPath, LocalObjectReference, ProjectedVolumeSource, ResourceRequirements,
    SecretProjection, SecretVolumeSource, Volume, VolumeMount, VolumeProjection,
};
use argo_workflows::{
    Arguments, Backoff, ContainerNode, ContainerSetTemplate, CronWorkflow, CronWorkflowSpec,
    ExecutorConfig, Metadata, ObjectMeta, Parameter, PodGc, RetryStrategy, SemaphoreRef,
    Synchronization, Template, TtlStrategy, WorkflowMetadata, WorkflowSpec, WorkflowTemplate,
    WorkflowTemplateRef, int_or_string,
};
use connector_descriptor::{ParameterScope, ParameterType, TransferMode, ValidatedDescriptor};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use outpost_core::ExitCode;
use outpost_core::ids::go_duration_seconds;
use serde_json::Value;

use crate::hardening::{container_security_context, pod_security_context};
use crate::options::{AgentOptions, CaBundleSource};

/// Version of this compiler, written into every generated file's header and used as the
/// default agent image tag.
pub const COMPILER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Name of the ConfigMap holding per-connector concurrency limits.
pub const CONCURRENCY_CONFIG_MAP: &str = "outpost-concurrency";

/// Where extract writes and upload reads, inside the connector pod.
pub const OUTPUT_DIR: &str = "/outpost/output";
/// Where a connection's source secrets are mounted, one file per declared secret and per
/// `scope: connection` parameter.
pub const SOURCE_SECRETS_DIR: &str = "/var/run/secrets/outpost/source";
/// Where the extract step finds the agent's manifest-signing key (`manifestSigning`).
pub const MANIFEST_SIGNING_DIR: &str = "/var/run/secrets/outpost/manifest-signing";
pub use connector_descriptor::CONNECTION_CA_KEY;
/// Where the control-plane token is mounted (file `token`).
pub const CONTROL_PLANE_TOKEN_DIR: &str = "/var/run/secrets/outpost/control-plane";
/// Where static relay-bucket credentials are mounted, when configured.
pub const RELAY_CREDENTIALS_DIR: &str = "/var/run/secrets/outpost/relay";
/// Where the custom CA bundle is mounted.
pub const CA_BUNDLE_DIR: &str = "/etc/outpost/ca";
/// Largest extraction output a connector pod may hold.
pub const OUTPUT_SIZE_LIMIT: &str = "2Gi";
/// Where extract leaves its outcome for the `main` container (see the module docs).
pub const OUTCOME_DIR: &str = "/outpost/outcome";
/// The outcome file extract writes and upload reads.
pub const EXTRACT_OUTCOME_FILE: &str = "/outpost/outcome/extract.json";
/// Name of the container whose exit code Argo reads (`common.MainContainerName`).
pub const MAIN_CONTAINER: &str = "main";

const WORKFLOW_PARAMETERS: [(&str, &str); 3] = [
    (
        "connection",
        "Id of the connection (source + credentials) this run extracts; names its Secret `outpost-source-<connection>`.",
    ),
    ("job-id", "Id of the control-plane job this run belongs to."),
    (
        "run-id",
        "Id of this run, unique per job; names the run's folder in the destination.",
    ),
];

fn labels(
    options: &AgentOptions,
    component: &str,
    connector: Option<&str>,
) -> BTreeMap<String, String> {
    let mut labels = options.labels.clone();
    for (key, value) in [
        ("app.kubernetes.io/name", "outpost"),
        ("app.kubernetes.io/part-of", "outpost"),
        ("app.kubernetes.io/managed-by", "outpost-render"),
        ("app.kubernetes.io/component", component),
        ("app.kubernetes.io/version", COMPILER_VERSION),
    ] {
        labels.insert(key.to_owned(), value.to_owned());
    }
    if let Some(connector) = connector {
        labels.insert("outpost.dev/connector".to_owned(), connector.to_owned());
    }
    labels
}

fn object_meta(
    name: String,
    options: &AgentOptions,
    labels: BTreeMap<String, String>,
    description: &str,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(options.namespace.clone()),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(
            "workflows.argoproj.io/description".to_owned(),
            description.trim().to_owned(),
        )])),
        ..Default::default()
    }
}

fn env_vars(options: &AgentOptions) -> Option<Vec<EnvVar>> {
    let mut env = Vec::new();
    let mut set = |name: &str, value: &str| {
        env.push(EnvVar {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            value_from: None,
        });
    };
    if let Some(proxy) = &options.proxy {
        for (name, value) in [
            ("HTTP_PROXY", &proxy.http_proxy),
            ("HTTPS_PROXY", &proxy.https_proxy),
        ] {
            if let Some(value) = value {
                set(name, value);
                set(&name.to_lowercase(), value);
            }
        }
        let mut no_proxy = proxy.no_proxy.clone();
        // In-cluster traffic never goes through the proxy: the API server (by the IP its
        // clients use, which Kubernetes expands from the service environment), services,
        // loopback, and an in-cluster control plane.
        let mut always = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "$(KUBERNETES_SERVICE_HOST)".to_owned(),
            ".svc".to_owned(),
            ".svc.cluster.local".to_owned(),
        ];
        if let Some(host) = crate::control_plane_host(&options.control_plane.url)
            && !host.contains('.')
        {
            always.push(host.to_owned());
        }
        for host in always {
            if !no_proxy.contains(&host) {
                no_proxy.push(host);
            }
        }
        let joined = no_proxy.join(",");
        set("NO_PROXY", &joined);
        set("no_proxy", &joined);
    }
    if let Some(ca) = &options.ca_bundle {
        set("SSL_CERT_FILE", &format!("{CA_BUNDLE_DIR}/{}", ca.key));
    }
    (!env.is_empty()).then_some(env)
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn empty_dir(name: &str, size_limit: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(size_limit.to_owned())),
            medium: None,
        }),
        ..Default::default()
    }
}

fn secret_volume(name: &str, secret: &str, items: Option<Vec<KeyToPath>>) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            default_mode: Some(0o440),
            items,
            optional: Some(false),
        }),
        ..Default::default()
    }
}

/// The connection's Secret `outpost-source-<connection>`, projecting only the declared keys
/// (the secrets, the `scope: connection` parameters and the connection's CA, `ca.crt`), so a
/// Secret holding more keys exposes no more. The source is optional even for required keys:
/// a missing Secret or key then fails `outpost extract` at once with exit 78 (not retried),
/// where a required one would leave the pod Pending until its deadline (Kubernetes retries
/// the mount forever) and hold its connector's concurrency slot meanwhile.
fn source_secrets_volume(descriptor: &ValidatedDescriptor) -> Volume {
    let mut keys: Vec<&str> = descriptor
        .secrets
        .iter()
        .map(|s| s.name.value.as_str())
        .collect();
    let bound: Vec<&str> = descriptor
        .parameters
        .iter()
        .filter(|p| p.scope == ParameterScope::Connection)
        .map(|p| p.name.value.as_str())
        .collect();
    if !bound.is_empty() {
        keys.extend(bound);
        keys.push(CONNECTION_CA_KEY);
    }
    let items: Vec<KeyToPath> = keys
        .into_iter()
        .map(|key| KeyToPath {
            key: key.to_owned(),
            path: key.to_owned(),
            mode: None,
        })
        .collect();
    Volume {
        name: "source-secrets".to_owned(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o440),
            sources: Some(vec![VolumeProjection {
                secret: Some(SecretProjection {
                    name: format!("outpost-source-{}", workflow_parameter("connection")),
                    items: Some(items),
                    optional: Some(true),
                }),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    }
}

/// Volumes and mounts every pod gets: a writable `/tmp` (the root filesystem is read-only)
/// and the CA bundle when one is configured.
fn common_volumes(options: &AgentOptions) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = vec![empty_dir("tmp", "64Mi")];
    let mut mounts = vec![mount("tmp", "/tmp", false)];
    if let Some(ca) = &options.ca_bundle {
        let items = Some(vec![KeyToPath {
            key: ca.key.clone(),
            path: ca.key.clone(),
            mode: None,
        }]);
        volumes.push(match ca.source {
            CaBundleSource::ConfigMap => Volume {
                name: "ca-bundle".to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: ca.name.clone(),
                    items,
                    default_mode: Some(0o444),
                    optional: Some(false),
                }),
                ..Default::default()
            },
            CaBundleSource::Secret => secret_volume("ca-bundle", &ca.name, items),
        });
        mounts.push(mount("ca-bundle", CA_BUNDLE_DIR, true));
    }
    (volumes, mounts)
}

fn token_volume(options: &AgentOptions) -> Volume {
    let items = Some(vec![KeyToPath {
        key: "token".to_owned(),
        path: "token".to_owned(),
        mode: None,
    }]);
    secret_volume(
        "control-plane-token",
        &options.control_plane.token_secret,
        items,
    )
}

fn hardened_container(
    name: &str,
    image: String,
    command: Vec<String>,
    args: Vec<String>,
    options: &AgentOptions,
) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(image),
        image_pull_policy: Some(
            options
                .images
                .pull_policy
                .clone()
                .unwrap_or_else(|| "IfNotPresent".to_owned()),
        ),
        command: Some(command),
        args: Some(args),
        env: env_vars(options),
        security_context: Some(container_security_context()),
        ..Default::default()
    }
}

fn resources(
    requests: &BTreeMap<String, String>,
    limits: &BTreeMap<String, String>,
) -> Option<ResourceRequirements> {
    let quantities = |m: &BTreeMap<String, String>| {
        (!m.is_empty()).then(|| {
            m.iter()
                .map(|(k, v)| (k.clone(), Quantity(v.clone())))
                .collect()
        })
    };
    let requirements = ResourceRequirements {
        requests: quantities(requests),
        limits: quantities(limits),
        claims: None,
    };
    (requirements.requests.is_some() || requirements.limits.is_some()).then_some(requirements)
}

/// Resources of the agent's own containers (upload, report, orchestrator, heartbeat).
fn agent_resources(options: &AgentOptions) -> Option<ResourceRequirements> {
    options.agent_resources.clone().or_else(small_resources)
}

fn small_resources() -> Option<ResourceRequirements> {
    resources(
        &BTreeMap::from([
            ("cpu".into(), "10m".into()),
            ("memory".into(), "32Mi".into()),
        ]),
        &BTreeMap::from([
            ("cpu".into(), "200m".into()),
            ("memory".into(), "64Mi".into()),
        ]),
    )
}

/// Scheduling, security and service account of one pod-running template.
fn pod_template(
    name: &str,
    options: &AgentOptions,
    labels: BTreeMap<String, String>,
    service_account: &str,
    automount: bool,
) -> Template {
    let scheduling = &options.scheduling;
    Template {
        name: Some(name.to_owned()),
        metadata: Some(Metadata {
            labels: Some(labels),
            ..Default::default()
        }),
        node_selector: (!scheduling.node_selector.is_empty())
            .then(|| scheduling.node_selector.clone()),
        tolerations: (!scheduling.tolerations.is_empty()).then(|| scheduling.tolerations.clone()),
        affinity: scheduling.affinity.clone(),
        security_context: Some(pod_security_context()),
        service_account_name: Some(service_account.to_owned()),
        automount_service_account_token: Some(automount),
        executor: (!automount).then(|| ExecutorConfig {
            service_account_name: Some(options.service_accounts.executor.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Workflow-level settings shared by every generated workflow spec. Pod-level settings are
/// repeated here because some Argo versions read them only at this level.
fn workflow_spec(
    options: &AgentOptions,
    labels: &BTreeMap<String, String>,
    service_account: &str,
    automount: bool,
    deadline: Option<i64>,
) -> WorkflowSpec {
    let scheduling = &options.scheduling;
    WorkflowSpec {
        service_account_name: Some(service_account.to_owned()),
        automount_service_account_token: Some(automount),
        executor: (!automount).then(|| ExecutorConfig {
            service_account_name: Some(options.service_accounts.executor.clone()),
            ..Default::default()
        }),
        security_context: Some(pod_security_context()),
        node_selector: (!scheduling.node_selector.is_empty())
            .then(|| scheduling.node_selector.clone()),
        tolerations: (!scheduling.tolerations.is_empty()).then(|| scheduling.tolerations.clone()),
        affinity: scheduling.affinity.clone(),
        image_pull_secrets: (!options.images.pull_secrets.is_empty()).then(|| {
            options
                .images
                .pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        // Pod labels are on every template's metadata; `podMetadata` would only repeat them.
        workflow_metadata: Some(WorkflowMetadata {
            labels: Some(labels.clone()),
            ..Default::default()
        }),
        pod_gc: Some(PodGc {
            strategy: Some(options.pod_gc.strategy.clone()),
            delete_delay_duration: options.pod_gc.delete_delay_duration.clone(),
            ..Default::default()
        }),
        ttl_strategy: Some(TtlStrategy {
            seconds_after_success: options.ttl.seconds_after_success,
            seconds_after_failure: options.ttl.seconds_after_failure,
            ..Default::default()
        }),
        active_deadline_seconds: deadline,
        ..Default::default()
    }
}

/// The image of the agent's own steps.
pub fn agent_image(options: &AgentOptions) -> String {
    let image = options
        .images
        .agent_image
        .clone()
        .unwrap_or_else(|| format!("ghcr.io/outpost-agent/outpost:{COMPILER_VERSION}"));
    match &options.images.registry {
        Some(registry) => match image.split_once('/') {
            Some((host, rest))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                format!("{}/{rest}", registry.trim_end_matches('/'))
            }
            _ => format!("{}/{image}", registry.trim_end_matches('/')),
        },
        None => image,
    }
}

fn workflow_parameter(name: &str) -> String {
    format!("{{{{workflow.parameters.{name}}}}}")
}

/// How a step reaches the control plane: its URL, the token's file and, only when the
/// options say so, the loud `--insecure-plain-http`.
fn control_plane_args(options: &AgentOptions) -> Vec<String> {
    let mut args = vec![
        format!("--control-plane-url={}", options.control_plane.url),
        format!("--token-file={CONTROL_PLANE_TOKEN_DIR}/token"),
    ];
    if options.control_plane.insecure_plain_http {
        args.push("--insecure-plain-http".to_owned());
    }
    args
}

/// The transfer modes a connector can use on this agent: bucket relay needs a relay bucket.
pub fn usable_transfer_modes(
    descriptor: &ValidatedDescriptor,
    options: &AgentOptions,
) -> Vec<TransferMode> {
    let mut modes: Vec<TransferMode> = descriptor
        .transfer_modes
        .value
        .iter()
        .copied()
        .filter(|mode| *mode != TransferMode::BucketRelay || options.relay.is_some())
        .collect();
    modes.sort();
    modes
}

fn argument(name: &str, description: &str) -> Parameter {
    Parameter {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        ..Default::default()
    }
}

/// The string form Argo passes for a parameter's default.
fn default_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The WorkflowTemplate of one connector.
pub fn connector_template(
    descriptor: &ValidatedDescriptor,
    options: &AgentOptions,
) -> WorkflowTemplate {
    let connector = descriptor.name();
    let labels = labels(options, "connector", Some(connector));
    let image = descriptor.image_reference(options.images.registry.as_deref());
    let modes = usable_transfer_modes(descriptor, options);

    let mut parameters: Vec<Parameter> = WORKFLOW_PARAMETERS
        .iter()
        .map(|(name, description)| argument(name, description))
        .collect();
    parameters.push(Parameter {
        value: modes.first().map(|m| Value::from(m.as_str())),
        allowed_values: Some(modes.iter().map(|m| Value::from(m.as_str())).collect()),
        ..argument("transfer-mode", "How the metadata leaves the cluster.")
    });
    let mut extract_args = vec![format!("--connector={connector}")];
    // A connection's own parameters (where its credentials may go) are not the Workflow's to
    // set: they reach extract as files of the connection's Secret, never as arguments.
    for p in descriptor
        .parameters
        .iter()
        .filter(|p| p.scope == ParameterScope::Job)
    {
        let name = &p.name.value;
        let mut parameter = argument(name, p.description.trim());
        if !p.required {
            parameter.value = Some(Value::from(
                p.default
                    .as_ref()
                    .map(|d| default_text(&d.value))
                    .unwrap_or_default(),
            ));
        }
        if p.kind.value == ParameterType::Enum {
            parameter.allowed_values = p
                .values
                .as_ref()
                .map(|v| v.value.iter().map(|s| Value::from(s.as_str())).collect());
        }
        if p.kind.value == ParameterType::Boolean {
            parameter.allowed_values = Some(vec![Value::from("true"), Value::from("false")]);
        }
        parameters.push(parameter);
        // One argv element per parameter; Argo substitutes the value into it, no shell runs.
        extract_args.push(format!("--param={name}={}", workflow_parameter(name)));
    }
    let run_ids = [
        format!("--connection={}", workflow_parameter("connection")),
        format!("--job-id={}", workflow_parameter("job-id")),
        format!("--run-id={}", workflow_parameter("run-id")),
    ];
    extract_args.extend(run_ids.iter().cloned());
    extract_args.push(format!("--secrets-dir={SOURCE_SECRETS_DIR}"));
    if let Some(signing) = &options.manifest_signing {
        extract_args.push(format!(
            "--manifest-signing-key={MANIFEST_SIGNING_DIR}/{}",
            signing.key
        ));
    }
    if let Some(exports) = &options.exports {
        extract_args.extend(
            exports
                .formats
                .iter()
                .map(|f| format!("--export={}", f.name())),
        );
        if let Some(env) = &exports.datahub_env {
            extract_args.push(format!("--datahub-env={env}"));
        }
        if let Some(instance) = &exports.datahub_platform_instance {
            extract_args.push(format!("--datahub-platform-instance={instance}"));
        }
    }
    extract_args.push(format!("--out={OUTPUT_DIR}"));
    extract_args.push(format!("--outcome-file={EXTRACT_OUTCOME_FILE}"));

    let (mut volumes, mut shared_mounts) = common_volumes(options);
    volumes.push(empty_dir("output", OUTPUT_SIZE_LIMIT));
    shared_mounts.push(mount("output", OUTPUT_DIR, false));
    volumes.push(empty_dir("outcome", "1Mi"));
    shared_mounts.push(mount("outcome", OUTCOME_DIR, false));

    let mut extract = hardened_container(
        "extract",
        image.clone(),
        descriptor.extract.command.value.clone(),
        extract_args,
        options,
    );
    let descriptor_resources = descriptor.resources();
    extract.resources = options
        .connector_resources
        .clone()
        .or_else(|| resources(&descriptor_resources.requests, &descriptor_resources.limits));
    if !descriptor.secrets.is_empty()
        || descriptor
            .parameters
            .iter()
            .any(|p| p.scope == ParameterScope::Connection)
    {
        volumes.push(source_secrets_volume(descriptor));
        extract.volume_mounts = Some(vec![mount("source-secrets", SOURCE_SECRETS_DIR, true)]);
    }
    if let Some(signing) = &options.manifest_signing {
        // The extract step alone holds the key: it signs what it wrote; upload only sends.
        // Optional, as the source's Secret: a missing Secret fails extract at once (exit
        // 78) rather than leaving the pod Pending until its deadline.
        let mut volume = secret_volume(
            "manifest-signing-key",
            &signing.secret,
            Some(vec![KeyToPath {
                key: signing.key.clone(),
                path: signing.key.clone(),
                mode: None,
            }]),
        );
        if let Some(secret) = &mut volume.secret {
            secret.optional = Some(true);
        }
        volumes.push(volume);
        extract
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(mount("manifest-signing-key", MANIFEST_SIGNING_DIR, true));
    }

    let mut upload_args = vec![
        format!("--from={OUTPUT_DIR}"),
        format!("--extract-outcome={EXTRACT_OUTCOME_FILE}"),
        format!("--transfer-mode={}", workflow_parameter("transfer-mode")),
        format!("--connector={connector}"),
    ];
    upload_args.extend(run_ids.iter().cloned());
    upload_args.extend(control_plane_args(options));
    // The upload URLs the control plane hands out are checked against the agent's own
    // allow-list (security issue 13, M2).
    upload_args.extend(
        options
            .control_plane
            .ingest_hosts
            .iter()
            .map(|host| format!("--ingest-host={host}")),
    );
    if options.control_plane.allow_loopback_ingest {
        upload_args.push("--allow-loopback-ingest".to_owned());
    }
    volumes.push(token_volume(options));
    let mut upload_mounts = vec![mount("control-plane-token", CONTROL_PLANE_TOKEN_DIR, true)];
    let relay = relay_access(options);
    upload_args.extend(relay.args);
    volumes.extend(relay.volume);
    upload_mounts.extend(relay.mount);
    let mut upload = hardened_container(
        MAIN_CONTAINER,
        image,
        vec!["outpost".into(), "upload".into()],
        upload_args,
        options,
    );
    upload.resources = agent_resources(options);
    upload.volume_mounts = Some(upload_mounts);

    let retries = descriptor.retries();
    let retry = options.retry.clone().map_or(
        (
            retries.limit,
            retries.backoff_duration,
            retries.backoff_factor,
            retries.backoff_cap,
        ),
        |r| (r.limit, r.backoff_duration, r.backoff_factor, r.backoff_cap),
    );
    let run_seconds = descriptor.timeouts().run_seconds;

    let mut run = pod_template(
        "run",
        options,
        labels.clone(),
        &options.service_accounts.connector,
        false,
    );
    run.volumes = Some(volumes);
    run.container_set = Some(ContainerSetTemplate {
        containers: vec![
            ContainerNode {
                container: extract,
                ..Default::default()
            },
            ContainerNode {
                container: upload,
                dependencies: Some(vec!["extract".to_owned()]),
                ..Default::default()
            },
        ],
        volume_mounts: Some(shared_mounts),
        ..Default::default()
    });
    run.retry_strategy = Some(transient_retry(
        retry.0,
        retry.1.clone(),
        retry.2,
        retry.3.clone(),
    ));
    // Each attempt's running time (Kubernetes counts it from the pod's start).
    run.active_deadline_seconds = Some(int_or_string(run_seconds));

    let report = report_template(options, connector, labels.clone());
    // The controller-enforced bound on the whole run, Pending pods included: every attempt's
    // deadline plus the backoffs between them. It counts from the Workflow's start, which Argo
    // sets only once the workflow-level semaphore below is acquired, so time queued for a
    // concurrency slot does not count (a template-level semaphore's wait would count, and a
    // template `timeout` under a retryStrategy never fails a Pending attempt).
    let deadline = Some(total_deadline_seconds(
        run_seconds,
        retry.0,
        &retry.1,
        retry.2,
        &retry.3,
    ));
    let mut spec = workflow_spec(
        options,
        &labels,
        &options.service_accounts.connector,
        false,
        deadline,
    );
    spec.entrypoint = Some("run".to_owned());
    spec.on_exit = Some("report".to_owned());
    // Workflow-level, so that waiting for the slot counts against no deadline, and the slot is
    // held until the exit handler has reported.
    spec.synchronization = Some(Synchronization {
        semaphores: Some(vec![SemaphoreRef {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: CONCURRENCY_CONFIG_MAP.to_owned(),
                key: connector.to_owned(),
                optional: None,
            }),
            ..Default::default()
        }]),
        ..Default::default()
    });
    spec.arguments = Some(Arguments {
        parameters: Some(parameters),
        ..Default::default()
    });
    spec.templates = Some(vec![run, report]);

    WorkflowTemplate::new(
        object_meta(
            connector_descriptor::template_name(connector),
            options,
            labels,
            &descriptor.description,
        ),
        spec,
    )
}

/// Every attempt's deadline plus Argo's backoff before each retry
/// (`duration * factor^n`, capped), rounded up to a whole minute.
fn total_deadline_seconds(
    run_seconds: u32,
    limit: u32,
    backoff_duration: &str,
    factor: u32,
    cap: &str,
) -> i64 {
    let (duration, cap) = (
        // Validation rejects a malformed duration earlier.
        go_duration_seconds(backoff_duration).unwrap_or(0),
        go_duration_seconds(cap).unwrap_or(0),
    );
    let mut total = u64::from(run_seconds) * (u64::from(limit) + 1);
    let mut wait = duration;
    for _ in 0..limit {
        total += if cap > 0 { wait.min(cap) } else { wait };
        wait = wait.saturating_mul(u64::from(factor.max(1)));
    }
    i64::try_from(total.div_ceil(60) * 60).unwrap_or(i64::MAX)
}

/// Retries only failures that may pass: a pod Kubernetes lost (`Error`), or a step that
/// exited with [`ExitCode::Temporary`]. Bad parameters and refused credentials fail at once.
fn transient_retry(limit: u32, duration: String, factor: u32, cap: String) -> RetryStrategy {
    RetryStrategy {
        limit: Some(int_or_string(limit)),
        retry_policy: Some("Always".to_owned()),
        // `lastRetry.exitCode` is the `main` container's, which carries the step's outcome
        // (see the module docs); Argo makes it "-1" when no exit code is known.
        expression: Some(format!(
            "lastRetry.status == \"Error\" || (lastRetry.status == \"Failed\" && asInt(lastRetry.exitCode) == {code})",
            code = ExitCode::Temporary.code()
        )),
        backoff: Some(Backoff {
            duration: Some(duration),
            factor: Some(int_or_string(factor)),
            cap: Some(cap),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The exit handler: reports the run's final status and ships its logs.
fn report_template(
    options: &AgentOptions,
    connector: &str,
    mut labels: BTreeMap<String, String>,
) -> Template {
    labels.insert(
        "app.kubernetes.io/component".to_owned(),
        "reporter".to_owned(),
    );
    let args = vec![
        format!("--connector={connector}"),
        format!("--connection={}", workflow_parameter("connection")),
        format!("--job-id={}", workflow_parameter("job-id")),
        format!("--run-id={}", workflow_parameter("run-id")),
        "--workflow={{workflow.name}}".to_owned(),
        "--status={{workflow.status}}".to_owned(),
        format!("--transfer-mode={}", workflow_parameter("transfer-mode")),
    ];
    let mut args = args;
    args.extend(control_plane_args(options));
    // In bucket-relay mode the run's logs go to the relay bucket beside its metadata.
    agent_step(
        "report",
        "report",
        args,
        options,
        labels,
        &options.service_accounts.reporter,
        Some(relay_access(options)),
    )
}

/// What a step needs to write to the relay bucket: its arguments, and the credentials
/// Secret's volume and mount when static credentials are configured. Empty without a relay.
struct RelayAccess {
    args: Vec<String>,
    volume: Option<Volume>,
    mount: Option<VolumeMount>,
}

fn relay_access(options: &AgentOptions) -> RelayAccess {
    let mut access = RelayAccess {
        args: Vec::new(),
        volume: None,
        mount: None,
    };
    let Some(relay) = &options.relay else {
        return access;
    };
    access.args.push(format!("--to={}", relay.url));
    for (flag, value) in [
        ("endpoint", &relay.endpoint),
        ("region", &relay.region),
        ("azure-account", &relay.azure_account),
        ("sse-kms-key-id", &relay.sse_kms_key_id),
    ] {
        if let Some(value) = value {
            access.args.push(format!("--{flag}={value}"));
        }
    }
    if let Some(secret) = &relay.credentials_secret {
        access.volume = Some(secret_volume("relay-credentials", secret, None));
        access.mount = Some(mount("relay-credentials", RELAY_CREDENTIALS_DIR, true));
        access
            .args
            .push(format!("--credentials-dir={RELAY_CREDENTIALS_DIR}"));
    }
    access
}

/// A pod running one of the agent's own subcommands with the control-plane token (and, for
/// the reporter in bucket-relay mode, the relay bucket's access).
fn agent_step(
    name: &str,
    subcommand: &str,
    args: Vec<String>,
    options: &AgentOptions,
    labels: BTreeMap<String, String>,
    service_account: &str,
    relay: Option<RelayAccess>,
) -> Template {
    let (mut volumes, mut mounts) = common_volumes(options);
    volumes.push(token_volume(options));
    mounts.push(mount("control-plane-token", CONTROL_PLANE_TOKEN_DIR, true));
    let mut args = args;
    if let Some(relay) = relay {
        args.extend(relay.args);
        volumes.extend(relay.volume);
        mounts.extend(relay.mount);
    }
    let mut container = hardened_container(
        "main",
        agent_image(options),
        vec!["outpost".into(), subcommand.into()],
        args,
        options,
    );
    container.resources = agent_resources(options);
    container.volume_mounts = Some(mounts);
    // These steps talk to the Kubernetes API (Workflows, pod logs) as their own least-privilege
    // service account, so they mount its token.
    let mut template = pod_template(name, options, labels, service_account, true);
    template.volumes = Some(volumes);
    template.container = Some(argo_workflows::TemplateContainer(container));
    template.retry_strategy = Some(RetryStrategy {
        limit: Some(int_or_string(2)),
        retry_policy: Some("Always".to_owned()),
        backoff: Some(Backoff {
            duration: Some("10s".to_owned()),
            factor: Some(int_or_string(2)),
            ..Default::default()
        }),
        ..Default::default()
    });
    template.active_deadline_seconds = Some(int_or_string(180));
    template
}

/// One of the agent's own scheduled steps.
struct AgentCron<'a> {
    /// `outpost-<role>`.
    name: &'a str,
    /// The `app.kubernetes.io/component` label.
    component: &'a str,
    /// Cron expression, in UTC.
    schedule: &'a str,
    /// The object's description annotation.
    description: &'a str,
    /// The `outpost` subcommand the step runs.
    subcommand: &'a str,
    /// The role's service account.
    service_account: &'a str,
}

/// The WorkflowTemplate holding one of the agent's own steps, and the CronWorkflow that only
/// references it. Argo's `templateReferencing: Strict`, which the orchestrator requires (M6),
/// runs no Workflow that carries its own templates, the ones a CronWorkflow creates included.
fn cron_workflow(cron: &AgentCron<'_>, options: &AgentOptions) -> (WorkflowTemplate, CronWorkflow) {
    let labels = labels(options, cron.component, None);
    let mut args = vec![format!("--namespace={}", options.namespace)];
    args.extend(control_plane_args(options));
    if let Some(id) = &options.control_plane.agent_id {
        args.push(format!("--agent-id={id}"));
    }
    // Both check that Argo runs only Workflows referencing a WorkflowTemplate (M6): the
    // orchestrator refuses to tick without it, the heartbeat reports it.
    let argo_config = &options.argo.controller_config_map;
    args.push(format!(
        "--argo-controller-config-map={}/{}",
        argo_config.namespace, argo_config.name
    ));
    if options.argo.insecure_allow_unrestricted_templates {
        args.push("--insecure-allow-unrestricted-templates".to_owned());
    }
    // The orchestrator acts on it; the heartbeat reports it to the control plane.
    if options.control_plane.job_signing_key.is_none()
        && options.control_plane.insecure_unsigned_jobs
    {
        args.push("--insecure-unsigned-jobs".to_owned());
    }
    if cron.subcommand == "orchestrate"
        && let Some(key) = &options.control_plane.job_signing_key
    {
        args.push(format!("--job-signing-key={key}"));
        args.push(format!(
            "--max-job-lifetime={}s",
            max_job_lifetime_seconds(options)
        ));
    }
    let mut step = agent_step(
        cron.subcommand,
        cron.subcommand,
        args,
        options,
        labels.clone(),
        cron.service_account,
        None,
    );
    // A tick that fails is not retried: the next tick comes in five minutes, and overlapping
    // retries would only compete with it.
    step.retry_strategy = None;
    let mut spec = workflow_spec(options, &labels, cron.service_account, true, Some(240));
    spec.entrypoint = Some(cron.subcommand.to_owned());
    spec.templates = Some(vec![step]);
    let template = WorkflowTemplate::new(
        object_meta(
            cron.name.to_owned(),
            options,
            labels.clone(),
            cron.description,
        ),
        spec,
    );
    // Only fields Argo lets a Workflow set over its WorkflowTemplate under `Strict`: the
    // reference, and the labels the heartbeat finds the orchestrator's Workflows by.
    let reference = WorkflowSpec {
        workflow_template_ref: Some(WorkflowTemplateRef {
            name: Some(cron.name.to_owned()),
            ..Default::default()
        }),
        workflow_metadata: Some(WorkflowMetadata {
            labels: Some(labels.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let cron = CronWorkflow::new(
        object_meta(cron.name.to_owned(), options, labels, cron.description),
        CronWorkflowSpec {
            schedules: vec![cron.schedule.to_owned()],
            timezone: Some("UTC".to_owned()),
            concurrency_policy: Some("Forbid".to_owned()),
            starting_deadline_seconds: Some(120),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(3),
            workflow_spec: reference,
            ..Default::default()
        },
    );
    (template, cron)
}

/// How far ahead a signed job's `notAfter` may lie: the orchestrator remembers a job's nonce
/// on its Workflow, which Argo deletes after the TTL, so no job may outlive the shorter TTL
/// (nor 24 hours, the agent's default).
fn max_job_lifetime_seconds(options: &AgentOptions) -> u64 {
    [
        options.ttl.seconds_after_success,
        options.ttl.seconds_after_failure,
    ]
    .into_iter()
    .flatten()
    .map(|seconds| u64::try_from(seconds).unwrap_or(0))
    .fold(24 * 3600, u64::min)
}

/// The agent's own WorkflowTemplates (and CronWorkflows), named like a connector's
/// (`outpost-<name>`): no connector may take these names.
pub const AGENT_TEMPLATES: [&str; 2] = [ORCHESTRATOR_TEMPLATE, HEARTBEAT_TEMPLATE];
/// The orchestrator's WorkflowTemplate and CronWorkflow.
pub const ORCHESTRATOR_TEMPLATE: &str = "outpost-orchestrator";
/// The heartbeat's WorkflowTemplate and CronWorkflow.
pub const HEARTBEAT_TEMPLATE: &str = "outpost-heartbeat";

/// The orchestrator's CronWorkflow, which references [`orchestrator_template`].
pub fn orchestrator_cron(options: &AgentOptions) -> CronWorkflow {
    orchestrator(options).1
}

/// The orchestrator's WorkflowTemplate: polls the control plane and submits Workflows.
pub fn orchestrator_template(options: &AgentOptions) -> WorkflowTemplate {
    orchestrator(options).0
}

fn orchestrator(options: &AgentOptions) -> (WorkflowTemplate, CronWorkflow) {
    let cron = AgentCron {
        name: ORCHESTRATOR_TEMPLATE,
        component: "orchestrator",
        schedule: &options.schedules.orchestrator,
        description: "Polls the control plane for jobs, validates each against its connector descriptor and submits a Workflow that references the connector's WorkflowTemplate.",
        subcommand: "orchestrate",
        service_account: &options.service_accounts.orchestrator,
    };
    cron_workflow(&cron, options)
}

/// The heartbeat's CronWorkflow, which references [`heartbeat_template`].
pub fn heartbeat_cron(options: &AgentOptions) -> CronWorkflow {
    heartbeat(options).1
}

/// The heartbeat's WorkflowTemplate: tells the control plane the agent is alive.
pub fn heartbeat_template(options: &AgentOptions) -> WorkflowTemplate {
    heartbeat(options).0
}

fn heartbeat(options: &AgentOptions) -> (WorkflowTemplate, CronWorkflow) {
    let cron = AgentCron {
        name: HEARTBEAT_TEMPLATE,
        component: "heartbeat",
        schedule: &options.schedules.heartbeat,
        description: "Reports to the control plane that the agent is alive: its version, Argo and Kubernetes reachability, running workflows.",
        subcommand: "heartbeat",
        service_account: &options.service_accounts.heartbeat,
    };
    cron_workflow(&cron, options)
}

/// The ConfigMap holding each connector's concurrency limit (the semaphores' source).
pub fn concurrency_config_map(
    descriptors: &[&ValidatedDescriptor],
    options: &AgentOptions,
) -> ConfigMap {
    let data = descriptors
        .iter()
        .map(|d| {
            let limit = options
                .concurrency
                .overrides
                .get(d.name())
                .copied()
                .unwrap_or(options.concurrency.per_connector);
            (d.name().to_owned(), limit.to_string())
        })
        .collect();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONCURRENCY_CONFIG_MAP.to_owned()),
            namespace: Some(options.namespace.clone()),
            labels: Some(labels(options, "concurrency", None)),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}
