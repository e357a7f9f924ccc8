//! Shared by the compiler's integration tests: inputs, rendering, Argo schema validation.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use connector_descriptor::ValidatedDescriptor;
use serde_json::Value;
use workflow_compiler::{AgentOptions, Overlay, RenderInput, RenderedFile};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn descriptors() -> Vec<ValidatedDescriptor> {
    connector_descriptor::load::read_dir(&repo_root().join("connectors"))
        .expect("shipped descriptors are valid")
}

pub fn every_option() -> AgentOptions {
    workflow_compiler::files::read_options(&fixture("every-option.yaml"))
        .expect("every-option.yaml is valid")
}

pub fn render(options: &AgentOptions, overlays: &[Overlay]) -> Vec<RenderedFile> {
    workflow_compiler::render(RenderInput {
        descriptors: &descriptors(),
        options,
        options_source: "test",
        overlays,
    })
    .expect("render succeeds")
}

/// The objects of a render (without the header comments), as JSON values.
pub fn objects(files: &[RenderedFile]) -> Vec<(String, Value)> {
    files
        .iter()
        .filter(|f| f.name != "kustomization.yaml")
        .map(|f| {
            (
                f.name.clone(),
                serde_saphyr::from_str::<Value>(&f.contents).expect("rendered YAML reads back"),
            )
        })
        .collect()
}

/// An insta settings block writing to the top-level `snapshots/` folder.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

#[allow(unused_imports)]
pub use workflow_compiler::argo_schema::ArgoSchema;

/// The schemas vendored in `argo-schemas/` (strict: unknown fields are errors), the ones
/// `outpost render` itself validates against.
#[allow(unused_imports)]
pub use workflow_compiler::argo_schema::EMBEDDED as ARGO_SCHEMAS;

pub fn is_argo_kind(object: &Value) -> bool {
    matches!(
        object.get("kind").and_then(Value::as_str),
        Some("Workflow" | "WorkflowTemplate" | "ClusterWorkflowTemplate" | "CronWorkflow")
    )
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
