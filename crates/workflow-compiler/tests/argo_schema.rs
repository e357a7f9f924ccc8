//! Every generated Argo object validates against Argo's published JSON Schemas of 4.1.2 and
//! 3.7.18, both as published and in a strict form that rejects fields a release does not
//! know.

mod support;

use serde_json::Value;
use support::{ARGO_SCHEMAS, is_argo_kind};
use workflow_compiler::{AgentOptions, Overlay};

fn assert_valid(label: &str, files: &[workflow_compiler::RenderedFile]) -> usize {
    let mut checked = 0;
    let mut errors = Vec::new();
    for (name, object) in support::objects(files) {
        if !is_argo_kind(&object) {
            continue;
        }
        for schema in ARGO_SCHEMAS.iter() {
            checked += 1;
            errors.extend(
                schema
                    .errors(&object)
                    .into_iter()
                    .map(|e| format!("{label} {name}: {e}")),
            );
        }
    }
    assert!(
        errors.is_empty(),
        "{} schema errors:\n{}",
        errors.len(),
        errors.join("\n")
    );
    checked
}

/// Object-schema pairs a full render checks: one WorkflowTemplate per cluster connector (a
/// `localOnly` one such as sqlite has none), the orchestrator's and the heartbeat's
/// WorkflowTemplates and their two CronWorkflows, each against two Argo releases.
fn expected_pairs() -> usize {
    let connectors = connector_descriptor::load::builtin()
        .expect("built-in descriptors")
        .iter()
        .filter(|d| !d.local_only)
        .count();
    assert!(connectors >= 3, "postgres, mysql and snowflake at least");
    2 * (connectors + 4)
}

#[test]
fn default_render_validates_against_both_argo_schemas() {
    let checked = assert_valid("defaults", &support::render(&AgentOptions::default(), &[]));
    assert_eq!(checked, expected_pairs());
}

#[test]
fn render_with_every_option_validates_against_both_argo_schemas() {
    let checked = assert_valid(
        "every option",
        &support::render(&support::every_option(), &[]),
    );
    assert_eq!(checked, expected_pairs());
}

#[test]
fn render_with_an_overlay_validates_against_both_argo_schemas() {
    let overlay = Overlay::parse(
        "overlay.yaml",
        &support::read(&support::fixture("overlay-allowed.yaml")),
    )
    .expect("overlay parses");
    assert_valid(
        "overlay",
        &support::render(&AgentOptions::default(), &[overlay]),
    );
}

#[test]
fn committed_workflow_templates_validate_against_both_argo_schemas() {
    let dir = support::repo_root().join("workflow-templates");
    let committed: Vec<workflow_compiler::RenderedFile> =
        workflow_compiler::files::read_output_dir(&dir)
            .expect("read workflow-templates")
            .into_iter()
            .map(|(name, contents)| workflow_compiler::RenderedFile { name, contents })
            .collect();
    let checked = assert_valid("workflow-templates/", &committed);
    println!("workflow-templates/: {checked} object-schema pairs checked, 0 errors");
    assert_eq!(checked, expected_pairs());
}

/// The strict check is what catches removed fields: prove it would.
#[test]
fn strict_schema_rejects_fields_argo_4_removed() {
    let mut cron = serde_json::to_value(workflow_compiler::orchestrator_cron(
        &AgentOptions::default(),
    ))
    .expect("json");
    cron["spec"]["schedule"] = Value::from("*/5 * * * *");
    let [v4, v3] = &*ARGO_SCHEMAS;
    assert!(
        v4.errors(&cron).iter().any(|e| e.contains("schedule")),
        "Argo 4 must reject the singular `schedule`"
    );
    assert!(
        v3.errors(&cron).is_empty(),
        "Argo 3.7 still accepts `schedule`"
    );
}

/// `outpost render` validates overlaid objects against its vendored copies of the schemas;
/// they must stay Argo's files unchanged. The digests are those of `api/jsonschema/schema.json`
/// at the two tags (see `argo-schemas/README.md`).
#[test]
fn vendored_schemas_are_argos_unchanged() {
    use sha2::Digest;
    for (release, digest) in [
        (
            "4.1.2",
            "3f84c5722c48a5aa815fe69119a9375fc3635114f8046da20ede55a8596529f5",
        ),
        (
            "3.7.18",
            "7121a93025875991aa5372aa0c3f922797ba9af4899d9ed33c5b99d85aa6eb37",
        ),
    ] {
        let vendored = support::read(&support::repo_root().join(format!(
            "crates/workflow-compiler/argo-schemas/schema-v{release}.json"
        )));
        let actual = sha2::Sha256::digest(vendored.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        assert_eq!(
            actual, digest,
            "argo-schemas/schema-v{release}.json is not Argo's v{release} schema"
        );
    }
}
