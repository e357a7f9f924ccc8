//! The descriptor as written in `connectors/<name>/connector.yaml`.
//!
//! Every doc comment here is the user manual of a descriptor field: it ends up in the JSON
//! Schema editors use to validate and complete descriptors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// The only descriptor format version this release reads.
pub const API_VERSION: &str = "outpost.dev/v1";

/// A connector descriptor: everything Outpost needs to know to extract metadata from one
/// kind of source, and nothing the control plane may change at run time.
///
/// Example: `connectors/postgres/connector.yaml`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Outpost connector descriptor")]
pub struct ConnectorDescriptor {
    /// Version of the descriptor format. Always `outpost.dev/v1`.
    #[schemars(with = "String")]
    pub api_version: Spanned<String>,
    /// The connector's name: a lowercase DNS label (`postgres`, `mysql`). It names the
    /// WorkflowTemplate (`outpost-<name>`) and must equal the descriptor's folder name.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The connector's own version, as semantic version `MAJOR.MINOR.PATCH` (`1.0.0`).
    #[schemars(with = "String")]
    pub version: Spanned<String>,
    /// One or two sentences for people choosing a connector.
    pub description: String,
    /// The container image that runs the connector's extract and upload steps.
    pub image: Image,
    /// How the extract step is started.
    pub extract: Extract,
    /// Parameters a job may set. Only these reach the container, each as one argument.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Secrets the connector reads (a password, a private key). Each is delivered as a file
    /// named after the secret in the extract step's secrets folder, never as an environment
    /// variable or an argument.
    #[serde(default)]
    pub secrets: Vec<SecretRequirement>,
    /// Default CPU and memory of the connector's pod. Agent options may override them.
    #[serde(default)]
    #[schemars(with = "Option<Resources>")]
    pub resources: Option<Spanned<Resources>>,
    /// Time limits.
    #[serde(default)]
    #[schemars(with = "Option<Timeouts>")]
    pub timeouts: Option<Spanned<Timeouts>>,
    /// Default retry policy. Agent options may override it.
    #[serde(default)]
    #[schemars(with = "Option<Retries>")]
    pub retries: Option<Spanned<Retries>>,
    /// The transfer modes the connector supports: `bucket-relay`, `direct-ingestion`.
    #[schemars(with = "Vec<TransferMode>")]
    pub transfer_modes: Spanned<Vec<TransferMode>>,
    /// Which parameters name the source's network address, so that egress policy can allow
    /// exactly that address. Omit for sources without one (a SQLite file).
    #[serde(default)]
    pub egress: Egress,
    /// Runs only in local mode (`outpost run`), never in a cluster: the source is a file on
    /// the machine (SQLite), and connector pods mount no volume a file could be on. Such a
    /// connector gets no WorkflowTemplate, and the in-cluster orchestrator rejects its jobs.
    #[serde(default)]
    pub local_only: bool,
}

impl ConnectorDescriptor {
    /// The declared resources, or none.
    pub fn resources(&self) -> Resources {
        self.resources
            .as_ref()
            .map(|r| r.value.clone())
            .unwrap_or_default()
    }

    /// The declared time limits, or the defaults.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts.as_ref().map(|t| t.value).unwrap_or_default()
    }

    /// The declared retry policy, or the defaults.
    pub fn retries(&self) -> Retries {
        self.retries
            .as_ref()
            .map(|r| r.value.clone())
            .unwrap_or_default()
    }
}

/// A container image, pinned by tag or digest.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    /// Repository, with its registry host (`ghcr.io/outpost-agent/outpost`). The agent's
    /// registry option replaces the host to pull through a mirror.
    #[schemars(with = "String")]
    pub repository: Spanned<String>,
    /// A fixed tag (`0.1.0`). Never `latest`. Give `tag` or `digest`, not both.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tag: Option<Spanned<String>>,
    /// A content digest (`sha256:` and 64 hex digits). Give `tag` or `digest`, not both.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub digest: Option<Spanned<String>>,
}

/// How the extract step is started.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Extract {
    /// The command that starts extraction, as separate arguments (`[outpost, extract]`).
    /// The compiler appends `--connector <name>`, one `--param name=value` per declared
    /// parameter, `--secrets-dir` and `--out`. No shell is involved.
    #[schemars(with = "Vec<String>")]
    pub command: Spanned<Vec<String>>,
}

/// The type of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ParameterType {
    /// Any string, optionally constrained by `pattern` and `maxLength`.
    String,
    /// A whole number, optionally bounded by `minimum` and `maximum`.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// One of the strings listed in `values`.
    Enum,
}

impl std::fmt::Display for ParameterType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Enum => "enum",
        })
    }
}

/// A parameter a job may set.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Parameter {
    /// Lowercase name with dashes (`host`, `ssl-mode`). Passed as `--param <name>=<value>`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// `string`, `integer`, `boolean` or `enum`.
    #[serde(rename = "type")]
    #[schemars(with = "ParameterType")]
    pub kind: Spanned<ParameterType>,
    /// What the parameter means, for people writing jobs.
    pub description: String,
    /// Whether a job must set it. A required parameter has no default. Default: false.
    #[serde(default)]
    pub required: bool,
    /// Value used when a job does not set it; must satisfy the parameter's own constraints.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<Spanned<serde_json::Value>>,
    /// Regular expression a `string` value must match in full (Rust `regex` syntax).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pattern: Option<Spanned<String>>,
    /// Longest `string` value accepted, in characters. Default: 1024.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_length: Option<Spanned<u32>>,
    /// Smallest `integer` value accepted.
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub minimum: Option<Spanned<i64>>,
    /// Largest `integer` value accepted.
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub maximum: Option<Spanned<i64>>,
    /// The values an `enum` accepts.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub values: Option<Spanned<Vec<String>>>,
    /// Who sets it: `job` (default: a job may choose it, like a filter) or `connection`
    /// (fixed per connection, in the connection's Secret under a key named after the
    /// parameter, like the host a password may be sent to). A job that sets a
    /// `connection` parameter is rejected.
    #[serde(default)]
    pub scope: ParameterScope,
    /// What a `string` holds beyond its pattern: `regex` values are compiled when checked
    /// (at admission, not only at extraction).
    #[serde(default)]
    pub format: Option<StringFormat>,
}

/// Who sets a parameter's value.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ParameterScope {
    /// A job may set it (filters, options that cannot redirect credentials).
    #[default]
    Job,
    /// Fixed by the connection's Secret: everything that says where the connection's
    /// credentials may go (host, port, database, user, TLS mode).
    Connection,
}

/// The format of a `string` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StringFormat {
    /// A regular expression (Rust `regex` syntax).
    Regex,
}

/// A secret the connector needs, delivered as a mounted file.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRequirement {
    /// The key in the connection's Kubernetes Secret, and the file name the extract step
    /// reads (`password`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the secret holds.
    pub description: String,
    /// Whether the connector can run without it. Default: false (the secret is required).
    #[serde(default)]
    pub optional: bool,
}

/// CPU and memory, as Kubernetes quantities.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// What the scheduler reserves (`cpu: 100m`, `memory: 128Mi`).
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    /// The most the pod may use (`memory: 256Mi`).
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

/// Time limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Timeouts {
    /// Longest a run (extract and upload together) may take, in seconds. Default: 3600.
    #[serde(default = "default_run_seconds")]
    pub run_seconds: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            run_seconds: default_run_seconds(),
        }
    }
}

fn default_run_seconds() -> u32 {
    3600
}

/// How often a failed run is retried, and how long to wait in between.
///
/// Only failures that may pass are retried: a pod lost by Kubernetes, or a step that exits
/// with code 75 (`EX_TEMPFAIL`, used by Outpost for network errors). Bad parameters and
/// refused credentials are never retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retries {
    /// Retries after the first attempt. Default: 3.
    #[serde(default = "default_retry_limit")]
    pub limit: u32,
    /// First wait, as a Go duration. Default: `30s`.
    #[serde(default = "default_backoff_duration")]
    pub backoff_duration: String,
    /// Factor each later wait is multiplied by. Default: 2.
    #[serde(default = "default_backoff_factor")]
    pub backoff_factor: u32,
    /// Longest single wait, as a Go duration. Default: `10m`.
    #[serde(default = "default_backoff_cap")]
    pub backoff_cap: String,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            limit: default_retry_limit(),
            backoff_duration: default_backoff_duration(),
            backoff_factor: default_backoff_factor(),
            backoff_cap: default_backoff_cap(),
        }
    }
}

fn default_retry_limit() -> u32 {
    3
}
fn default_backoff_duration() -> String {
    "30s".to_owned()
}
fn default_backoff_factor() -> u32 {
    2
}
fn default_backoff_cap() -> String {
    "10m".to_owned()
}

/// How extracted metadata leaves the cluster.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
// The CLI parses `--transfer-mode` with this very enum (clap's kebab-case is serde's), so what
// the compiler emits is what the binary accepts.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TransferMode {
    /// Written to the customer's own bucket, where the SaaS reads it.
    BucketRelay,
    /// Uploaded to the SaaS through short-lived pre-signed URLs.
    DirectIngestion,
}

impl TransferMode {
    /// The name used in descriptors and arguments.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BucketRelay => "bucket-relay",
            Self::DirectIngestion => "direct-ingestion",
        }
    }
}

/// Which parameters name the source's network address.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Egress {
    /// The `string` parameter holding the source's host name or address.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub host_parameter: Option<Spanned<String>>,
    /// The `integer` parameter holding the source's port.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub port_parameter: Option<Spanned<String>>,
}
