#![allow(dead_code, missing_docs)]
/// The fake Kubernetes API, shared with the emulated end-to-end tests.
#[allow(unused_imports)]
pub use argo_emulator::kube_api as fake_kube;

/// The connector descriptors shipped in connectors/.
pub fn descriptors() -> std::sync::Arc<Vec<connector_descriptor::ValidatedDescriptor>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    std::sync::Arc::new(connector_descriptor::load::read_dir(&dir).expect("descriptors"))
}

/// A committed WorkflowTemplate from workflow-templates/, as JSON.
pub fn committed_template(connector: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../workflow-templates/workflowtemplate-outpost-{connector}.yaml"
    ));
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("template")).expect("yaml")
}

/// Argo's controller ConfigMap where the agent looks for it by default, with
/// `workflowRestrictions.templateReferencing: Strict`: without it the orchestrator refuses
/// to tick (security review finding M6).
pub fn restrict_templates(fake: &argo_emulator::kube_api::FakeKube) {
    fake.put_config_map(
        "argo",
        "workflow-controller-configmap",
        &[("workflowRestrictions", "templateReferencing: Strict\n")],
    );
}
