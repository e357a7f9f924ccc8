//! Job admission: the only door through which the control plane's intent enters the cluster.
//!
//! A job may choose a connector, a connection, a transfer mode and values for the
//! parameters that connector's descriptor declares — nothing else. Every problem with a job
//! is collected (not just the first), so the control plane gets the whole reason back.
//! Rules:
//! - only the fields of [`JOB_FIELDS`]; anything else (`image`, `command`, `serviceAccountName`,
//!   `template`, `podSpecPatch` …) rejects the job, naming the field;
//! - ids are path segments and labels: `connection` a DNS label (it names the connection's
//!   Secret), job and run ids letters, digits, `.`, `_`, `-`;
//! - the connector is one the agent has a descriptor for, and the transfer mode one the
//!   descriptor declares and the agent can serve;
//! - each parameter is declared, not reserved, of the declared JSON type (a string is never
//!   taken for a number), within its pattern, bounds and length, and free of `{{`/`}}`;
//! - the whole job is at most [`MAX_JOB_BYTES`];
//! - when the agent pins a public key, the job carries a valid Ed25519 signature over its
//!   canonical form (see [`canonical_bytes`]), is for this agent, unexpired, and carries a
//!   nonce ([`crate::signing`]).

use std::collections::BTreeMap;

use connector_descriptor::{ParameterType, TransferMode};
use connector_descriptor::{RESERVED_PARAMETERS, ValidatedDescriptor};
use serde_json::Value;

/// The fields a job may have.
pub const JOB_FIELDS: [&str; 10] = [
    "id",
    "runId",
    "connector",
    "connection",
    "transferMode",
    "parameters",
    "signature",
    "agentId",
    "notAfter",
    "nonce",
];

/// Largest accepted job, serialized.
pub const MAX_JOB_BYTES: usize = 64 * 1024;

/// What the agent can do, beyond its descriptors.
#[derive(Clone, Debug, Default)]
pub struct AdmissionPolicy {
    /// Whether a relay bucket is configured (else bucket relay cannot be served).
    pub relay_configured: bool,
    /// When set, every job must be signed with the matching private key, for this agent,
    /// unexpired, with a nonce.
    pub signing: Option<crate::signing::SigningPolicy>,
    /// Whether jobs run on this machine (`outpost run --control-plane`) rather than in a
    /// cluster: only then are `localOnly` connectors (SQLite) admitted.
    pub local: bool,
}

/// A job that passed every check: what the orchestrator may submit.
#[derive(Clone, Debug, PartialEq)]
pub struct AdmittedJob {
    /// The control plane's job id.
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// The connector (a descriptor name).
    pub connector: String,
    /// The connection (a DNS label).
    pub connection: String,
    /// How the run leaves the cluster.
    pub transfer_mode: TransferMode,
    /// Every declared parameter with its value (defaults filled in), as Argo arguments.
    pub arguments: BTreeMap<String, String>,
}

/// Why a job was refused; sent back to the control plane as the job's status message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The job's id when it had a readable one.
    pub job_id: Option<String>,
    /// Every problem found.
    pub reasons: Vec<String>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "job {} rejected: {}",
            self.job_id.as_deref().unwrap_or("(no id)"),
            self.reasons.join("; ")
        )
    }
}

impl std::error::Error for Rejection {}

/// Checks `job` (as received) against the agent's descriptors and policy.
pub fn admit(
    job: &Value,
    descriptors: &[ValidatedDescriptor],
    policy: &AdmissionPolicy,
) -> Result<AdmittedJob, Rejection> {
    let mut reasons = Vec::new();
    let Some(fields) = job.as_object() else {
        return Err(Rejection {
            job_id: None,
            reasons: vec!["a job must be a JSON object".to_owned()],
        });
    };
    let job_id = fields.get("id").and_then(Value::as_str).map(str::to_owned);
    let size = serde_json::to_vec(job).map_or(usize::MAX, |b| b.len());
    if size > MAX_JOB_BYTES {
        return Err(Rejection {
            job_id: job_id.filter(|id| id.len() <= 128),
            reasons: vec![format!(
                "the job is {size} bytes; at most {MAX_JOB_BYTES} are accepted"
            )],
        });
    }

    for name in fields.keys() {
        if !JOB_FIELDS.contains(&name.as_str()) {
            reasons.push(format!(
                "field `{name}` is not accepted: a job may only choose a connector, a connection, a transfer mode and declared parameters"
            ));
        }
    }
    if let Some(signing) = &policy.signing {
        reasons.extend(signing.check(job));
    }

    let text = |name: &str| -> Result<String, String> {
        match fields.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("`{name}` must be a string, found {}", kind(other))),
            None => Err(format!("`{name}` is missing")),
        }
    };
    let id = text("id").and_then(|v| segment("id", v));
    let run_id = text("runId").and_then(|v| segment("runId", v));
    let connection = text("connection").and_then(dns_label);
    let connector = text("connector");
    let mode = text("transferMode");
    for result in [&id, &run_id, &connection, &connector, &mode] {
        if let Err(problem) = result {
            reasons.push(problem.clone());
        }
    }

    let descriptor = connector.as_ref().ok().and_then(|name| {
        let found = descriptors.iter().find(|d| d.name() == name);
        if found.is_none() {
            let known: Vec<&str> = descriptors.iter().map(|d| d.name()).collect();
            reasons.push(format!(
                "unknown connector `{}` (this agent has: {})",
                truncate(name),
                known.join(", ")
            ));
        }
        found
    });
    if let Some(descriptor) = descriptor
        && descriptor.local_only
        && !policy.local
    {
        reasons.push(format!(
            "connector `{}` runs only in local mode (`outpost run`): connector pods mount no volume its source file could be on",
            descriptor.name()
        ));
    }

    let transfer_mode = match (&mode, descriptor) {
        (Ok(mode), Some(descriptor)) => {
            let declared = &descriptor.transfer_modes.value;
            match declared.iter().find(|m| m.as_str() == mode) {
                None => {
                    reasons.push(format!(
                        "transfer mode `{}` is not one connector `{}` offers ({})",
                        truncate(mode),
                        descriptor.name(),
                        declared
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    None
                }
                Some(TransferMode::BucketRelay) if !policy.relay_configured => {
                    reasons.push(
                        "transfer mode `bucket-relay` needs a relay bucket, and this agent has none"
                            .to_owned(),
                    );
                    None
                }
                Some(mode) => Some(*mode),
            }
        }
        _ => None,
    };

    let arguments = match (fields.get("parameters"), descriptor) {
        (None, Some(descriptor)) => parameters(&serde_json::Map::new(), descriptor, &mut reasons),
        (Some(Value::Object(given)), Some(descriptor)) => {
            parameters(given, descriptor, &mut reasons)
        }
        (Some(other), _) if !other.is_object() => {
            reasons.push(format!(
                "`parameters` must be an object, found {}",
                kind(other)
            ));
            None
        }
        _ => None,
    };

    match (id, run_id, connection, connector, transfer_mode, arguments) {
        (
            Ok(id),
            Ok(run_id),
            Ok(connection),
            Ok(connector),
            Some(transfer_mode),
            Some(arguments),
        ) if reasons.is_empty() => Ok(AdmittedJob {
            id,
            run_id,
            connector,
            connection,
            transfer_mode,
            arguments,
        }),
        _ => Err(Rejection {
            job_id: job_id.filter(|id| id.len() <= 128),
            reasons,
        }),
    }
}

/// Checks each given parameter's type, then lets the descriptor resolve the values (pattern,
/// bounds, length, defaults, required, `{{`).
fn parameters(
    given: &serde_json::Map<String, Value>,
    descriptor: &ValidatedDescriptor,
    reasons: &mut Vec<String>,
) -> Option<BTreeMap<String, String>> {
    let before = reasons.len();
    let mut raw = Vec::new();
    for (name, value) in given {
        if RESERVED_PARAMETERS.contains(&name.as_str()) {
            reasons.push(format!(
                "parameter `{name}` is set by the agent, not by a job"
            ));
            continue;
        }
        let Some(parameter) = descriptor.parameter(name) else {
            // resolve_parameters names it (with a suggestion); keep the raw pair for that.
            raw.push((name.clone(), String::new()));
            continue;
        };
        let text = match (parameter.kind.value, value) {
            (ParameterType::String | ParameterType::Enum, Value::String(s)) => s.clone(),
            (ParameterType::Integer, Value::Number(n)) if n.is_i64() => n.to_string(),
            (ParameterType::Boolean, Value::Bool(b)) => b.to_string(),
            (expected, other) => {
                reasons.push(format!(
                    "parameter `{name}` must be {}, found {}",
                    match expected {
                        ParameterType::String | ParameterType::Enum => "a string",
                        ParameterType::Integer => "a whole number",
                        ParameterType::Boolean => "true or false",
                    },
                    kind(other)
                ));
                continue;
            }
        };
        raw.push((name.clone(), text));
    }
    match descriptor.resolve_job_parameters(&raw) {
        Ok(resolved) => (reasons.len() == before).then(|| {
            resolved
                .into_iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (name, text)
                })
                .collect()
        }),
        Err(problems) => {
            reasons.extend(problems);
            None
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most 64 characters of untrusted text in a message.
fn truncate(text: &str) -> String {
    let mut shown: String = text.chars().take(64).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

fn segment(field: &str, value: String) -> Result<String, String> {
    if outpost_core::ids::is_path_segment(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`{field}` `{}` must be 1-128 letters, digits, `.`, `_` or `-`",
            truncate(&value)
        ))
    }
}

fn dns_label(value: String) -> Result<String, String> {
    if outpost_core::ids::is_dns_label(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`connection` `{}` must be a DNS label (1-63 lowercase letters, digits or `-`)",
            truncate(&value)
        ))
    }
}

pub use crate::signing::canonical_bytes;
