//! Shared by the compiler's integration tests: inputs, rendering, Argo schema validation.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

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
    workflow_compiler::files::read_connectors(&repo_root().join("connectors"))
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

pub use workflow_compiler::argo_schema::ArgoSchema;

fn load_schema(release: &'static str) -> ArgoSchema {
    let path = repo_root().join(format!("../shared/argo/schema-v{release}.json"));
    ArgoSchema::from_json(release, &read(&path)).expect("schema is JSON")
}

/// The reference schemas in `../shared/argo/` (strict: unknown fields are errors).
pub static ARGO_SCHEMAS: LazyLock<[ArgoSchema; 2]> =
    LazyLock::new(|| [load_schema("4.1.2"), load_schema("3.7.18")]);

pub fn is_argo_kind(object: &Value) -> bool {
    matches!(
        object.get("kind").and_then(Value::as_str),
        Some("Workflow" | "WorkflowTemplate" | "ClusterWorkflowTemplate" | "CronWorkflow")
    )
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
