//! Outpost connector descriptors: the model, parsing with source locations, pure validation,
//! and the JSON Schema editors use.
//!
//! A descriptor (`connectors/<name>/connector.yaml`) declares everything a connector may do:
//! its image, its extract command, the typed parameters a job may set, the secrets it reads,
//! its resources, time limits, retries, transfer modes and the parameters that name the
//! source's address. The workflow compiler turns it into an Argo WorkflowTemplate; the
//! orchestrator checks every job against it. Nothing outside a descriptor can reach a
//! connector's container.
//!
//! Text in, a [`ValidatedDescriptor`] or every problem found out. The one module that reads
//! files is [`load`]: the built-in descriptors, or a folder of them.
//!
//! ```
//! let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../connectors/sqlite/connector.yaml")).unwrap();
//! let descriptor = connector_descriptor::parse("connectors/sqlite/connector.yaml", &text).unwrap();
//! assert_eq!(descriptor.name(), "sqlite");
//! ```

mod error;
pub mod load;
mod model;
pub mod parallel;
mod validate;
pub mod yaml;

pub use error::{DescriptorError, Diagnostic, Diagnostics};
pub use model::*;
pub use validate::{ValidatedDescriptor, ValueError};

/// Longest connector name. Every run's Workflow is named `outpost-<name>-<16 hex digits>`
/// (`orchestrator::workflow_name`), and Argo rejects Workflow names over 63 characters
/// (`workflow/validate`: names are used as label values): 63 - 8 - 17 = 38.
pub const MAX_CONNECTOR_NAME_LEN: usize = 63 - "outpost-".len() - 17;

/// The name of a connector's WorkflowTemplate: the compiler names it so, and the orchestrator
/// references it by this name.
pub fn template_name(connector: &str) -> String {
    format!("outpost-{connector}")
}

/// The key of a connection's Secret (and file of its folder) holding the CA certificates its
/// source's TLS is verified against, instead of the agent's bundle (the Kubernetes TLS Secret
/// convention).
pub const CONNECTION_CA_KEY: &str = "ca.crt";

/// Compiler-owned workflow parameters that a descriptor may not declare.
pub const RESERVED_PARAMETERS: &[&str] = &["connection", "job-id", "run-id", "transfer-mode"];

/// Parses and validates a descriptor. `file` names the source in every diagnostic.
pub fn parse(file: &str, text: &str) -> Result<ValidatedDescriptor, DescriptorError> {
    let descriptor: ConnectorDescriptor =
        yaml::from_str(file, text).map_err(|diagnostic| DescriptorError::Parse { diagnostic })?;
    descriptor.validate(file)
}

/// The JSON Schema of a descriptor, generated from the Rust types, as pretty JSON with a
/// trailing newline (the form committed as `connectors/connector-descriptor.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ConnectorDescriptor);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is always JSON");
    text.push('\n');
    text
}
