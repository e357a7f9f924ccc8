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

/// Argo's published schema for one release, plus a strict copy in which every object that
/// lists its properties accepts no others: Argo's schema allows unknown fields, so only the
/// strict copy catches a field a release does not know (one Argo 4 removed, or one 3.7
/// lacks).
pub struct ArgoSchema {
    pub release: &'static str,
    document: Value,
    strict: Value,
}

fn load_schema(release: &'static str) -> ArgoSchema {
    let path = repo_root().join(format!("../shared/argo/schema-v{release}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let document: Value = serde_json::from_str(&text).expect("schema is JSON");
    let mut strict = document.clone();
    if let Some(Value::Object(definitions)) = strict.get_mut("definitions") {
        for definition in definitions.values_mut() {
            if let Value::Object(map) = definition
                && map.contains_key("properties")
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
    }
    ArgoSchema {
        release,
        document,
        strict,
    }
}

pub static ARGO_SCHEMAS: LazyLock<[ArgoSchema; 2]> =
    LazyLock::new(|| [load_schema("4.1.2"), load_schema("3.7.18")]);

impl ArgoSchema {
    /// Every error of `object` against the definition of its kind, plain and strict.
    pub fn errors(&self, object: &Value) -> Vec<String> {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .expect("object has a kind");
        let mut found = Vec::new();
        for (mode, document) in [("schema", &self.document), ("strict schema", &self.strict)] {
            let mut root = serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("#/definitions/io.argoproj.workflow.v1alpha1.{kind}"),
            });
            root["definitions"] = document["definitions"].clone();
            let validator = jsonschema::draft202012::new(&root).expect("Argo's schema compiles");
            for error in validator.iter_errors(object) {
                found.push(format!(
                    "Argo {} {mode}: {}: {error}",
                    self.release,
                    error.instance_path()
                ));
            }
        }
        found
    }
}

pub fn is_argo_kind(object: &Value) -> bool {
    matches!(
        object.get("kind").and_then(Value::as_str),
        Some("Workflow" | "WorkflowTemplate" | "ClusterWorkflowTemplate" | "CronWorkflow")
    )
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
