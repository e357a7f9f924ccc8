//! The Workflow the orchestrator submits for an admitted job: a reference to the connector's
//! WorkflowTemplate and the job's validated arguments — no template, image, command, service
//! account or pod patch of its own, so the template (and the descriptor it was compiled
//! from) decides everything that runs.

use std::collections::BTreeMap;

use argo_workflows::{
    Arguments, ObjectMeta, Parameter, Workflow, WorkflowSpec, WorkflowTemplateRef,
};
use sha2::{Digest, Sha256};

use crate::admission::AdmittedJob;

/// The Workflow's name: the same for the same job and run, so a second submission is
/// answered `AlreadyExists` by the API server and counts as "already submitted".
pub fn workflow_name(job: &AdmittedJob) -> String {
    let digest = Sha256::digest(format!("{}/{}", job.id, job.run_id));
    let hex = outpost_core::output::hex(&digest[..8]);
    // `outpost-<connector>-<16 hex>`: at most 8 + 63 + 17 characters, a valid object name.
    format!("outpost-{}-{hex}", job.connector)
}

/// A label value, or `None` when the id cannot be one (longer than 63 or other characters).
fn label_value(value: &str) -> Option<String> {
    let ok = value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    ok.then(|| value.to_owned())
}

/// The Workflow for `job` in `namespace`.
pub fn workflow_for(job: &AdmittedJob, namespace: &str) -> Workflow {
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "outpost".to_owned(),
        ),
        ("outpost.dev/connector".to_owned(), job.connector.clone()),
        ("outpost.dev/connection".to_owned(), job.connection.clone()),
    ]);
    for (key, value) in [
        ("outpost.dev/job-id", &job.id),
        ("outpost.dev/run-id", &job.run_id),
    ] {
        if let Some(value) = label_value(value) {
            labels.insert(key.to_owned(), value);
        }
    }
    let annotations = BTreeMap::from([
        ("outpost.dev/job-id".to_owned(), job.id.clone()),
        ("outpost.dev/run-id".to_owned(), job.run_id.clone()),
    ]);
    let mut parameters = vec![
        parameter("connection", &job.connection),
        parameter("job-id", &job.id),
        parameter("run-id", &job.run_id),
        parameter("transfer-mode", job.transfer_mode.as_str()),
    ];
    parameters.extend(
        job.arguments
            .iter()
            .map(|(name, value)| parameter(name, value)),
    );
    let spec = WorkflowSpec {
        workflow_template_ref: Some(WorkflowTemplateRef {
            name: Some(connector_descriptor::template_name(&job.connector)),
            ..Default::default()
        }),
        arguments: Some(Arguments {
            parameters: Some(parameters),
            ..Default::default()
        }),
        ..Default::default()
    };
    Workflow::new(
        ObjectMeta {
            name: Some(workflow_name(job)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec,
    )
}

fn parameter(name: &str, value: &str) -> Parameter {
    Parameter {
        name: name.to_owned(),
        value: Some(serde_json::Value::String(value.to_owned())),
        ..Default::default()
    }
}
