//! Compiles Outpost connector descriptors and agent options into Argo objects: one
//! WorkflowTemplate per connector, the orchestrator's and the heartbeat's WorkflowTemplates
//! and the CronWorkflows that only reference them (as Argo's `templateReferencing: Strict`
//! requires), and the ConfigMap of per-connector concurrency limits.
//!
//! [`render`] is a pure function of its inputs: same descriptors, options and overlays, same
//! bytes. Reading inputs from disk and writing `workflow-templates/` live in [`files`], at
//! the edge.

pub mod argo_schema;
pub mod chart;
mod compile;
pub mod files;
pub mod hardening;
pub mod options;
pub mod overlay;

use std::collections::BTreeMap;

use argo_workflows::AnyWorkflowObject;
use connector_descriptor::{Diagnostics, ValidatedDescriptor};
use outpost_core::ids::{is_dns_label, is_go_duration};
use serde_json::Value;

pub use compile::*;
pub use options::AgentOptions;
pub use overlay::Overlay;

/// Why compilation failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The agent options break one or more rules; every problem is listed.
    #[error("invalid agent options ({source_name}):\n{}", problems.join("\n"))]
    Options {
        /// Where the options came from (a file, or `defaults`).
        source_name: String,
        /// One line per problem, naming the field.
        problems: Vec<String>,
    },
    /// Two descriptors declare the same connector name.
    #[error("connector `{name}` is declared twice: {first} and {second}")]
    DuplicateConnector {
        /// The connector name.
        name: String,
        /// The first descriptor.
        first: String,
        /// The second descriptor.
        second: String,
    },
    /// A connector's WorkflowTemplate would take the name of one of the agent's own
    /// (`outpost-orchestrator`, `outpost-heartbeat`).
    #[error(
        "{file}: connector `{connector}` would compile to WorkflowTemplate `{template}`, the agent's own; rename the connector"
    )]
    ReservedConnectorName {
        /// The connector.
        connector: String,
        /// Its descriptor.
        file: String,
        /// The WorkflowTemplate name it would take.
        template: String,
    },
    /// A connector supports no transfer mode this agent can use.
    #[error(
        "{file}: connector `{connector}` supports only bucket relay, and the agent options set no `relay` bucket"
    )]
    NoTransferMode {
        /// The connector.
        connector: String,
        /// Its descriptor.
        file: String,
    },
    /// An overlay could not be read or applied; every failed patch is listed.
    #[error("{diagnostics}")]
    Overlay {
        /// Where and what.
        diagnostics: Diagnostics,
    },
    /// After overlays, an object no longer reads as the Argo object it was.
    #[error("{object} no longer reads as an Argo object after overlays: {message}")]
    Reparse {
        /// `Kind name`.
        object: String,
        /// What failed.
        message: String,
    },
    /// An object misses the security baseline. Only reachable through a compiler bug or an
    /// overlay, which is why it is checked after both.
    #[error("{object} misses the security baseline:\n{}", problems.join("\n"))]
    Hardening {
        /// `Kind name`.
        object: String,
        /// One line per violation.
        problems: Vec<String>,
    },
    /// An object could not be written as YAML.
    #[error("{object} could not be written as YAML")]
    Yaml {
        /// `Kind name`.
        object: String,
        /// The serialiser's error.
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

/// Everything one render reads.
#[derive(Clone, Copy, Debug)]
pub struct RenderInput<'a> {
    /// The connectors, in any order (output is sorted by name).
    pub descriptors: &'a [ValidatedDescriptor],
    /// Site-wide options.
    pub options: &'a AgentOptions,
    /// Where the options came from, for headers and errors (`defaults`, a file path).
    pub options_source: &'a str,
    /// Overlays, applied in order after compilation.
    pub overlays: &'a [Overlay],
}

/// One generated file of `workflow-templates/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name inside the output folder.
    pub name: String,
    /// The file's bytes.
    pub contents: String,
}

struct Generated {
    /// The compiled object.
    typed: Typed,
    /// The object as a JSON tree after overlays changed it; `None` without overlays.
    overlaid: Option<Value>,
    /// What it was made from, for the file header.
    inputs: Vec<String>,
}

/// A compiled object, typed until an overlay needs it as a JSON tree.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Typed {
    Workflow(AnyWorkflowObject),
    ConfigMap(Box<argo_workflows::core::ConfigMap>),
}

impl Typed {
    fn generated(self, inputs: Vec<String>) -> Generated {
        Generated {
            typed: self,
            overlaid: None,
            inputs,
        }
    }

    fn metadata(&self) -> &argo_workflows::ObjectMeta {
        match self {
            Self::Workflow(AnyWorkflowObject::Workflow(o)) => &o.metadata,
            Self::Workflow(AnyWorkflowObject::WorkflowTemplate(o)) => &o.metadata,
            Self::Workflow(AnyWorkflowObject::ClusterWorkflowTemplate(o)) => &o.metadata,
            Self::Workflow(AnyWorkflowObject::CronWorkflow(o)) => &o.metadata,
            Self::ConfigMap(o) => &o.metadata,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Workflow(AnyWorkflowObject::Workflow(_)) => "Workflow",
            Self::Workflow(AnyWorkflowObject::WorkflowTemplate(_)) => "WorkflowTemplate",
            Self::Workflow(AnyWorkflowObject::ClusterWorkflowTemplate(_)) => {
                "ClusterWorkflowTemplate"
            }
            Self::Workflow(AnyWorkflowObject::CronWorkflow(_)) => "CronWorkflow",
            Self::ConfigMap(_) => "ConfigMap",
        }
    }
}

/// Compiles everything and renders each object as a YAML file with a header, plus
/// `kustomization.yaml` listing them. Files are sorted by name.
pub fn render(input: RenderInput<'_>) -> Result<Vec<RenderedFile>, CompileError> {
    let RenderInput {
        descriptors,
        options,
        options_source,
        overlays,
    } = input;
    validate_options(options, options_source)?;
    let mut sorted: Vec<&ValidatedDescriptor> = descriptors.iter().collect();
    sorted.sort_by(|a, b| a.name().cmp(b.name()));
    for pair in sorted.windows(2) {
        if pair[0].name() == pair[1].name() {
            return Err(CompileError::DuplicateConnector {
                name: pair[0].name().to_owned(),
                first: pair[0].file().to_owned(),
                second: pair[1].file().to_owned(),
            });
        }
    }

    let unknown: Vec<&String> = options
        .concurrency
        .overrides
        .keys()
        .filter(|name| !sorted.iter().any(|d| d.name() == name.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(CompileError::Options {
            source_name: options_source.to_owned(),
            problems: unknown
                .iter()
                .map(|n| format!("concurrency.overrides: no connector named `{n}`"))
                .collect(),
        });
    }
    // Local-only connectors (a SQLite file) have nothing to run in a cluster.
    sorted.retain(|d| !d.local_only);
    let options_input = format!("agent options ({options_source})");
    let mut generated: Vec<Generated> = Vec::new();
    for descriptor in &sorted {
        let template = connector_descriptor::template_name(descriptor.name());
        if AGENT_TEMPLATES.contains(&template.as_str()) {
            return Err(CompileError::ReservedConnectorName {
                connector: descriptor.name().to_owned(),
                file: descriptor.file().to_owned(),
                template,
            });
        }
    }
    for descriptor in &sorted {
        if usable_transfer_modes(descriptor, options).is_empty() {
            return Err(CompileError::NoTransferMode {
                connector: descriptor.name().to_owned(),
                file: descriptor.file().to_owned(),
            });
        }
    }
    // Connectors compile independently: spread them over the cores.
    let templates = connector_descriptor::parallel::map(&sorted, |descriptor| {
        let inputs = vec![descriptor.file().to_owned(), options_input.clone()];
        let template =
            AnyWorkflowObject::WorkflowTemplate(Box::new(connector_template(descriptor, options)));
        Typed::Workflow(template).generated(inputs)
    });
    generated.extend(templates);
    for template in [orchestrator_template(options), heartbeat_template(options)] {
        let template = Typed::Workflow(AnyWorkflowObject::WorkflowTemplate(Box::new(template)));
        generated.push(template.generated(vec![options_input.clone()]));
    }
    for cron in [orchestrator_cron(options), heartbeat_cron(options)] {
        let cron = Typed::Workflow(AnyWorkflowObject::CronWorkflow(Box::new(cron)));
        generated.push(cron.generated(vec![options_input.clone()]));
    }
    let mut concurrency_inputs: Vec<String> = sorted.iter().map(|d| d.file().to_owned()).collect();
    concurrency_inputs.push(options_input.clone());
    let concurrency = concurrency_config_map(&sorted, options);
    generated.push(Typed::ConfigMap(Box::new(concurrency)).generated(concurrency_inputs));

    if !overlays.is_empty() {
        let mut objects: Vec<Value> = generated.iter().map(|g| to_value(&g.typed)).collect();
        for overlay in overlays {
            overlay.apply(&mut objects)?;
        }
        for (g, object) in generated.iter_mut().zip(objects) {
            g.overlaid = Some(object);
            g.inputs
                .extend(overlays.iter().map(|o| format!("overlay {}", o.file())));
        }
    }

    let rendered = connector_descriptor::parallel::map(
        &generated,
        |g| -> Result<RenderedFile, CompileError> {
            let kind = g.typed.kind();
            let name = g.typed.metadata().name.as_deref().unwrap_or("unnamed");
            let object = format!("{kind} {name}");
            let yaml = match &g.overlaid {
                Some(value) => {
                    recheck_overlaid(value, &object)?;
                    serde_saphyr::to_string(value)
                }
                None => {
                    if let Typed::Workflow(workflow) = &g.typed {
                        let problems = hardening::check_typed(workflow);
                        if !problems.is_empty() {
                            return Err(CompileError::Hardening { object, problems });
                        }
                    }
                    serde_saphyr::to_string(&g.typed)
                }
            }
            .map_err(|source| CompileError::Yaml {
                object: object.clone(),
                source,
            })?;
            Ok(RenderedFile {
                name: format!("{}-{name}.yaml", kind.to_lowercase()),
                contents: header(&g.inputs) + &yaml,
            })
        },
    );
    let mut files = rendered.into_iter().collect::<Result<Vec<_>, _>>()?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files.push(kustomization(&files, &options_input));
    Ok(files)
}

/// Serialising our own typed objects to JSON cannot fail: every map key is a string.
fn to_value(object: &impl serde::Serialize) -> Value {
    serde_json::to_value(object).expect("typed objects serialise to JSON")
}

/// After overlays, re-reads an Argo object as its typed kind, validates it against both
/// Argo schemas (strict) and re-checks the security baseline, so an overlay cannot leave a
/// shape Argo would reject or weaken a pod.
fn recheck_overlaid(object: &Value, name: &str) -> Result<(), CompileError> {
    let reparse = |message: String| CompileError::Reparse {
        object: name.to_owned(),
        message,
    };
    let typed = match AnyWorkflowObject::from_value(object.clone()) {
        Ok(Some(typed)) => typed,
        Ok(None) => return Ok(()),
        Err(e) => return Err(reparse(e.to_string())),
    };
    if &to_value(&typed) != object {
        return Err(reparse(
            "a value does not fit the Argo object model".to_owned(),
        ));
    }
    let errors: Vec<String> = argo_schema::EMBEDDED
        .iter()
        .flat_map(|schema| schema.errors(object))
        .collect();
    if !errors.is_empty() {
        return Err(reparse(errors.join("; ")));
    }
    let problems = hardening::check_typed(&typed);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CompileError::Hardening {
            object: name.to_owned(),
            problems,
        })
    }
}

fn header(inputs: &[String]) -> String {
    let mut text = format!(
        "# Generated by `outpost render` (workflow-compiler {COMPILER_VERSION}). Do not edit:\n# change the inputs and run `outpost render`; CI runs `outpost render --check`.\n"
    );
    for input in inputs {
        text.push_str(&format!("# Input: {input}\n"));
    }
    text
}

fn kustomization(files: &[RenderedFile], options_input: &str) -> RenderedFile {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Kustomization<'a> {
        api_version: &'a str,
        kind: &'a str,
        resources: Vec<&'a str>,
    }
    let body = Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources: files.iter().map(|f| f.name.as_str()).collect(),
    };
    let yaml = serde_saphyr::to_string(&body).expect("a list of names serialises");
    RenderedFile {
        name: "kustomization.yaml".to_owned(),
        contents: header(&[options_input.to_owned()]) + &yaml,
    }
}

/// The host of the control plane's URL (`outpost-control-plane`, `catalog.example.com`).
pub(crate) fn control_plane_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next()?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// A ConfigMap or Secret key: letters, digits, `-`, `.` and `_`.
fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// A Kubernetes object name (DNS subdomain).
fn is_object_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A label or annotation key: an optional DNS-subdomain prefix and a name.
pub(crate) fn is_label_key(key: &str) -> bool {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    prefix.is_none_or(is_object_name)
        && !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

fn is_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= 63 && is_label_key(value) && !value.contains('/'))
}

/// Every string inside the options, with its path, so none can smuggle an Argo expression.
fn option_strings(value: &Value, at: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(text) => out.push((at, text.clone())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| option_strings(v, format!("{at}[{i}]"), out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            option_strings(&Value::String(k.clone()), format!("{at}.{k} (key)"), out);
            option_strings(
                v,
                if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                },
                out,
            );
        }),
        _ => {}
    }
}

/// Checks the options' rules; every problem is reported.
pub fn validate_options(options: &AgentOptions, source_name: &str) -> Result<(), CompileError> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| problems.push(format!("{field}: {message}"));

    let mut strings = Vec::new();
    option_strings(&to_value(options), String::new(), &mut strings);
    for (field, text) in &strings {
        if text.contains("{{") || text.contains("}}") {
            problem(
                field,
                format!("`{text}` contains an Argo expression (`{{{{` or `}}}}`)"),
            );
        }
    }
    if !is_dns_label(&options.namespace) {
        problem(
            "namespace",
            format!("`{}` is not a DNS label", options.namespace),
        );
    }
    let argo_config = &options.argo.controller_config_map;
    if !is_dns_label(&argo_config.namespace) {
        problem(
            "argo.controllerConfigMap.namespace",
            format!("`{}` is not a DNS label", argo_config.namespace),
        );
    }
    if !is_object_name(&argo_config.name) {
        problem(
            "argo.controllerConfigMap.name",
            format!("`{}` is not a ConfigMap name", argo_config.name),
        );
    }
    for (field, schedule) in [
        ("schedules.orchestrator", &options.schedules.orchestrator),
        ("schedules.heartbeat", &options.schedules.heartbeat),
    ] {
        if schedule.split_whitespace().count() != 5 {
            problem(
                field,
                format!("`{schedule}` is not a five-field cron expression"),
            );
        }
    }
    const STRATEGIES: &[&str] = &[
        "OnPodCompletion",
        "OnPodSuccess",
        "OnWorkflowCompletion",
        "OnWorkflowSuccess",
    ];
    if !STRATEGIES.contains(&options.pod_gc.strategy.as_str()) {
        problem(
            "podGc.strategy",
            format!(
                "`{}` is not one of {}",
                options.pod_gc.strategy,
                STRATEGIES.join(", ")
            ),
        );
    } else if options.pod_gc.strategy.starts_with("OnPod")
        && options.pod_gc.delete_delay_duration.is_none()
    {
        problem(
            "podGc.deleteDelayDuration",
            format!(
                "`{}` deletes a run's pod as soon as it ends, before the exit handler ships its logs; set a delay (`5m`)",
                options.pod_gc.strategy
            ),
        );
    }
    if let Some(delay) = &options.pod_gc.delete_delay_duration
        && !is_go_duration(delay)
    {
        problem(
            "podGc.deleteDelayDuration",
            format!("`{delay}` is not a Go duration (`5m`)"),
        );
    }
    if let Some(retry) = &options.retry {
        for (field, duration) in [
            ("retry.backoffDuration", &retry.backoff_duration),
            ("retry.backoffCap", &retry.backoff_cap),
        ] {
            if !is_go_duration(duration) {
                problem(field, format!("`{duration}` is not a Go duration (`30s`)"));
            }
        }
        if retry.backoff_factor == 0 {
            problem("retry.backoffFactor", "must be at least 1".to_owned());
        }
    }
    if let Some(policy) = &options.images.pull_policy
        && !["IfNotPresent", "Always", "Never"].contains(&policy.as_str())
    {
        problem(
            "images.pullPolicy",
            format!("`{policy}` is not IfNotPresent, Always or Never"),
        );
    }
    if let Some(registry) = &options.images.registry
        && (registry.contains("://")
            || registry.is_empty()
            || registry.contains(char::is_whitespace))
    {
        problem(
            "images.registry",
            format!("`{registry}` must be a host and optional path, without a scheme"),
        );
    }
    if let Some(image) = &options.images.agent_image
        && (image.ends_with(":latest") || !(image.contains(':') || image.contains('@')))
    {
        problem(
            "images.agentImage",
            format!("`{image}` must be pinned to a tag (not `latest`) or a digest"),
        );
    }
    if options.concurrency.per_connector == 0
        || options.concurrency.overrides.values().any(|v| *v == 0)
    {
        problem("concurrency", "limits must be at least 1".to_owned());
    }
    let url = &options.control_plane.url;
    match control_plane_host(url) {
        None => problem("controlPlane.url", format!("`{url}` is not an http(s) URL")),
        Some(host) if url.starts_with("http://") => {
            // The bearer token must not cross a network in clear text, in-cluster ones
            // included (security review L9): plain HTTP only to loopback, or knowingly.
            let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
            if !(loopback || options.control_plane.insecure_plain_http) {
                problem(
                    "controlPlane.url",
                    format!(
                        "`{url}` would send the agent's token in clear text; use https://, or set controlPlane.insecurePlainHttp: true knowingly"
                    ),
                );
            }
        }
        Some(_) if !url.starts_with("https://") => {
            problem("controlPlane.url", format!("`{url}` is not an http(s) URL"))
        }
        Some(_) => {}
    }
    if let Some(key) = &options.control_plane.job_signing_key {
        // Base64 of 32 bytes: 43 characters of the alphabet and one `=`.
        let well_formed = key.len() == 44
            && key.ends_with('=')
            && key[..43]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !well_formed {
            problem(
                "controlPlane.jobSigningKey",
                "must be an Ed25519 public key as base64 of its 32 bytes (44 characters)"
                    .to_owned(),
            );
        }
    }
    if let Some(id) = &options.control_plane.agent_id
        && (id.is_empty()
            || id.len() > 253
            || id.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        problem(
            "controlPlane.agentId",
            format!("`{id}` must be 1-253 characters without whitespace"),
        );
    }
    for host in &options.control_plane.ingest_hosts {
        if let Err(reason) = outpost_core::ids::ingest_host_pattern(host) {
            problem("controlPlane.ingestHosts", format!("`{host}`: {reason}"));
        }
    }
    if let Some(relay) = &options.relay
        && !["s3://", "az://", "gs://", "file://"]
            .iter()
            .any(|scheme| relay.url.starts_with(scheme))
    {
        problem(
            "relay.url",
            format!(
                "`{}` must start with s3://, az://, gs:// or file://",
                relay.url
            ),
        );
    }
    if let Some(relay) = &options.relay {
        if let Some(endpoint) = &relay.endpoint
            && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        {
            problem(
                "relay.endpoint",
                format!("`{endpoint}` is not an http(s) URL"),
            );
        }
        // Values become container arguments: no Argo expressions, no whitespace.
        for (field, value) in [
            ("relay.url", Some(&relay.url)),
            ("relay.endpoint", relay.endpoint.as_ref()),
            ("relay.region", relay.region.as_ref()),
            ("relay.azureAccount", relay.azure_account.as_ref()),
            ("relay.sseKmsKeyId", relay.sse_kms_key_id.as_ref()),
        ] {
            if let Some(value) = value
                && (value.contains("{{")
                    || value.chars().any(char::is_whitespace)
                    || value.is_empty())
            {
                problem(
                    field,
                    format!("`{value}` may not be empty or contain whitespace or `{{{{`"),
                );
            }
        }
    }
    for (name, value) in &options.labels {
        if name.starts_with("app.kubernetes.io/") || name.starts_with("outpost.dev/") {
            problem("labels", format!("`{name}` is set by the compiler"));
        } else if !is_label_key(name) {
            problem("labels", format!("`{name}` is not a valid label key"));
        } else if !is_label_value(value) {
            problem(
                &format!("labels.{name}"),
                format!("`{value}` is not a valid label value"),
            );
        }
    }
    let mut names = vec![
        (
            "serviceAccounts.connector",
            &options.service_accounts.connector,
        ),
        (
            "serviceAccounts.executor",
            &options.service_accounts.executor,
        ),
        (
            "serviceAccounts.orchestrator",
            &options.service_accounts.orchestrator,
        ),
        (
            "serviceAccounts.heartbeat",
            &options.service_accounts.heartbeat,
        ),
        (
            "serviceAccounts.reporter",
            &options.service_accounts.reporter,
        ),
        (
            "controlPlane.tokenSecret",
            &options.control_plane.token_secret,
        ),
    ];
    if let Some(ca) = &options.ca_bundle {
        names.push(("caBundle.name", &ca.name));
        if !is_secret_key(&ca.key) {
            problem(
                "caBundle.key",
                format!("`{}` is not a valid ConfigMap or Secret key", ca.key),
            );
        }
    }
    if let Some(signing) = &options.manifest_signing {
        names.push(("manifestSigning.secret", &signing.secret));
        if !is_secret_key(&signing.key) {
            problem(
                "manifestSigning.key",
                format!("`{}` is not a valid Secret key", signing.key),
            );
        }
    }
    if let Some(exports) = &options.exports {
        // They become URN parts: DataHub's `,`/`(`/`)`/`.` separators and anything Argo
        // would substitute are refused here, not at run time.
        let named = [
            ("exports.datahubEnv", &exports.datahub_env),
            (
                "exports.datahubPlatformInstance",
                &exports.datahub_platform_instance,
            ),
        ];
        for (field, value) in named {
            if let Some(v) = value
                && !is_dns_label(&v.to_ascii_lowercase())
            {
                problem(
                    field,
                    format!("`{v}` must be letters, digits and `-` (at most 63)"),
                );
            }
        }
        if exports.formats.is_empty() {
            problem("exports.formats", "name at least one format".to_owned());
        }
        let distinct: std::collections::BTreeSet<&str> =
            exports.formats.iter().map(|f| f.name()).collect();
        if distinct.len() != exports.formats.len() {
            problem("exports.formats", "name each format once".to_owned());
        }
    }
    if let Some(secret) = options
        .relay
        .as_ref()
        .and_then(|r| r.credentials_secret.as_ref())
    {
        names.push(("relay.credentialsSecret", secret));
    }
    for secret in &options.images.pull_secrets {
        names.push(("images.pullSecrets", secret));
    }
    for (field, name) in names {
        if !is_object_name(name) {
            problem(field, format!("`{name}` is not a valid object name"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CompileError::Options {
            source_name: source_name.to_owned(),
            problems,
        })
    }
}

/// One difference between the committed output folder and a fresh render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// A file that should exist does not.
    Missing(String),
    /// A file exists that the render does not produce.
    Extra(String),
    /// A file's contents differ; the unified diff, committed → fresh.
    Changed {
        /// The file name.
        name: String,
        /// A unified diff.
        diff: String,
    },
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(name) => write!(f, "missing: {name}"),
            Self::Extra(name) => write!(f, "not generated (delete it): {name}"),
            Self::Changed { name, diff } => write!(f, "stale: {name}\n{diff}"),
        }
    }
}

/// Compares committed files (name → contents) with a fresh render. Pure.
pub fn staleness(committed: &BTreeMap<String, String>, fresh: &[RenderedFile]) -> Vec<Staleness> {
    let mut found = Vec::new();
    for file in fresh {
        match committed.get(&file.name) {
            None => found.push(Staleness::Missing(file.name.clone())),
            Some(old) if *old != file.contents => {
                let diff = similar::TextDiff::from_lines(old.as_str(), file.contents.as_str())
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("committed/{}", file.name),
                        &format!("generated/{}", file.name),
                    )
                    .to_string();
                found.push(Staleness::Changed {
                    name: file.name.clone(),
                    diff,
                });
            }
            Some(_) => {}
        }
    }
    for name in committed.keys() {
        if !fresh.iter().any(|f| &f.name == name) {
            found.push(Staleness::Extra(name.clone()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argo_controller_config_map_is_checked() {
        let mut options = AgentOptions::default();
        options.argo.controller_config_map = argo_workflows::ControllerConfigMap {
            namespace: "Argo_System".to_owned(),
            name: "not/a-name".to_owned(),
        };
        let error = validate_options(&options, "values.yaml")
            .expect_err("invalid")
            .to_string();
        for field in [
            "argo.controllerConfigMap.namespace",
            "argo.controllerConfigMap.name",
        ] {
            assert!(error.contains(field), "{field} missing from: {error}");
        }
    }

    #[test]
    fn the_manifest_signing_secret_and_key_are_checked() {
        let mut options = AgentOptions::default();
        options.manifest_signing = Some(crate::options::ManifestSigning {
            secret: "Not_A_Name".to_owned(),
            key: "a key".to_owned(),
        });
        let error = validate_options(&options, "values.yaml")
            .expect_err("invalid")
            .to_string();
        for field in ["manifestSigning.secret", "manifestSigning.key"] {
            assert!(error.contains(field), "{field} missing from: {error}");
        }
    }

    /// A connector named `orchestrator` would compile to the orchestrator's own
    /// WorkflowTemplate, `outpost-orchestrator`: one would replace the other.
    #[test]
    fn no_connector_takes_the_name_of_an_agent_template() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../connectors/postgres/connector.yaml"),
        )
        .expect("descriptor");
        for name in ["orchestrator", "heartbeat"] {
            let renamed = text.replacen("name: postgres", &format!("name: {name}"), 1);
            let descriptor = connector_descriptor::parse("renamed.yaml", &renamed).expect("valid");
            let error = render(RenderInput {
                descriptors: &[descriptor],
                options: &AgentOptions::default(),
                options_source: "defaults",
                overlays: &[],
            })
            .expect_err("refused");
            assert!(
                matches!(error, CompileError::ReservedConnectorName { .. }),
                "{error}"
            );
            assert!(
                error.to_string().contains(&format!("outpost-{name}")),
                "{error}"
            );
        }
    }

    #[test]
    fn relay_settings_are_checked_all_at_once() {
        let mut options = AgentOptions::default();
        options.relay = Some(options::RelayOptions {
            url: "ftp://bucket".to_owned(),
            credentials_secret: None,
            endpoint: Some("minio:9000".to_owned()),
            region: Some("{{workflow.parameters.region}}".to_owned()),
            azure_account: None,
            sse_kms_key_id: Some("key with spaces".to_owned()),
        });
        let error = validate_options(&options, "values.yaml")
            .expect_err("invalid")
            .to_string();
        for field in [
            "relay.url",
            "relay.endpoint",
            "relay.region",
            "relay.sseKmsKeyId",
        ] {
            assert!(error.contains(field), "{field} missing from: {error}");
        }
    }

    #[test]
    fn ingest_hosts_and_the_agent_id_are_checked() {
        let mut options = AgentOptions::default();
        options.control_plane.ingest_hosts = vec![
            "*.blob.core.windows.net".to_owned(),
            "storage.googleapis.com".to_owned(),
        ];
        options.control_plane.agent_id = Some("outpost-prod-eu".to_owned());
        validate_options(&options, "values.yaml").expect("valid");
        options.control_plane.ingest_hosts = vec![
            "10.0.0.1".to_owned(),
            "*.com".to_owned(),
            "https://s3.amazonaws.com".to_owned(),
        ];
        options.control_plane.agent_id = Some("two words".to_owned());
        let error = validate_options(&options, "values.yaml")
            .expect_err("invalid")
            .to_string();
        for part in [
            "`10.0.0.1`: an IP address",
            "`*.com` would allow a whole top-level domain",
            "`https://s3.amazonaws.com`: not a host name",
            "controlPlane.agentId",
        ] {
            assert!(error.contains(part), "{part} missing from: {error}");
        }
    }
}
