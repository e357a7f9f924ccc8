//! Overlays: allowed customisations apply (Argo's own expressions untouched); anything that
//! touches a compiler-owned path is rejected with the file, line and path.

mod support;

use workflow_compiler::{AgentOptions, Overlay, RenderInput};

fn overlay(fixture: &str) -> Overlay {
    Overlay::parse(
        &format!("fixtures/{fixture}"),
        &support::read(&support::fixture(fixture)),
    )
    .expect("overlay parses")
}

fn render_with(
    fixture: &str,
) -> Result<Vec<workflow_compiler::RenderedFile>, workflow_compiler::CompileError> {
    workflow_compiler::render(RenderInput {
        descriptors: &support::descriptors(),
        options: &AgentOptions::default(),
        options_source: "test",
        overlays: &[overlay(fixture)],
    })
}

fn error_report(fixture: &str) -> String {
    let report = match Overlay::parse(
        &format!("fixtures/{fixture}"),
        &support::read(&support::fixture(fixture)),
    ) {
        Err(error) => error.to_string(),
        Ok(_) => render_with(fixture)
            .err()
            .unwrap_or_else(|| panic!("{fixture} should be rejected"))
            .to_string(),
    };
    assert!(
        report.contains(&format!("fixtures/{fixture}:")),
        "report must name the file: {report}"
    );
    report
}

#[test]
fn allowed_overlay_applies_and_keeps_argo_expressions() {
    let files = render_with("overlay-allowed.yaml").expect("allowed overlay renders");
    let objects = support::objects(&files);
    let postgres = &objects
        .iter()
        .find(|(n, _)| n == "workflowtemplate-outpost-postgres.yaml")
        .expect("postgres")
        .1;
    let annotations = &postgres["spec"]["templates"][0]["metadata"]["annotations"];
    assert_eq!(annotations["example.com/team"], "data-platform");
    assert_eq!(annotations["example.com/connector"], "postgres");
    assert_eq!(
        annotations["example.com/run"], "{{workflow.name}}",
        "Argo's expression passes through"
    );
    assert_eq!(
        postgres["spec"]["templates"][0]["containerSet"]["containers"][0]["resources"]["limits"]["memory"],
        "1Gi"
    );
    assert_eq!(
        postgres["spec"]["templates"][0]["priorityClassName"],
        "high-priority"
    );
    assert_eq!(
        postgres["metadata"]["labels"]["example.com/owner"],
        "data-platform"
    );
    let cron = &objects
        .iter()
        .find(|(n, _)| n == "cronworkflow-outpost-orchestrator.yaml")
        .expect("cron")
        .1;
    assert_eq!(
        cron["spec"]["schedules"],
        serde_json::json!(["*/15 * * * *"])
    );
    for (name, object) in objects.iter().filter(|(_, o)| support::is_argo_kind(o)) {
        assert!(
            workflow_compiler::hardening::check(object).is_empty(),
            "{name}"
        );
    }
    let header = &files
        .iter()
        .find(|f| f.name == "workflowtemplate-outpost-postgres.yaml")
        .expect("file")
        .contents;
    assert!(
        header.contains("# Input: overlay fixtures/overlay-allowed.yaml"),
        "the header names the overlay"
    );
}

fn snapshot(fixture: &str) {
    let report = error_report(fixture);
    support::snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            format!(
                "overlay-error-{}",
                fixture
                    .trim_start_matches("overlay-")
                    .trim_end_matches(".yaml")
            ),
            report
        )
    });
}

#[test]
fn overlay_on_security_context_is_rejected() {
    snapshot("overlay-forbidden-security-context.yaml");
}

#[test]
fn overlay_on_image_is_rejected() {
    snapshot("overlay-forbidden-image.yaml");
}

#[test]
fn overlay_on_command_is_rejected() {
    snapshot("overlay-forbidden-command.yaml");
}

#[test]
fn overlay_on_service_account_is_rejected() {
    snapshot("overlay-forbidden-service-account.yaml");
}

#[test]
fn overlay_matching_nothing_is_rejected() {
    snapshot("overlay-unmatched-target.yaml");
}

#[test]
fn overlay_with_unknown_field_is_rejected() {
    snapshot("overlay-unknown-field.yaml");
}

#[test]
fn overlay_with_undefined_variable_is_rejected() {
    let overlay = Overlay::parse(
        "inline.yaml",
        "patches:\n  - path: /metadata/labels\n    merge:\n      team: \"[[ vars.missing ]]\"\n",
    )
    .expect("parses");
    let error = workflow_compiler::render(RenderInput {
        descriptors: &support::descriptors(),
        options: &AgentOptions::default(),
        options_source: "test",
        overlays: &[overlay],
    })
    .expect_err("an undefined variable is an error, not an empty string");
    assert!(
        error.to_string().contains("inline.yaml:2:5: patches[0]"),
        "{error}"
    );
}

#[test]
fn overlay_setting_pod_affecting_or_compiler_owned_keys_is_rejected() {
    snapshot("overlay-forbidden-annotations.yaml");
}

#[test]
fn overlay_deleting_or_replacing_what_the_compiler_owns_is_rejected() {
    snapshot("overlay-forbidden-deletions.yaml");
}

#[test]
fn concurrency_limits_may_be_raised_by_an_overlay() {
    let overlay = Overlay::parse(
        "inline.yaml",
        "patches:\n  - target: {kind: ConfigMap}\n    path: /data\n    merge: {postgres: \"8\"}\n",
    )
    .expect("parses");
    let files = workflow_compiler::render(RenderInput {
        descriptors: &support::descriptors(),
        options: &AgentOptions::default(),
        options_source: "test",
        overlays: &[overlay],
    })
    .expect("raising a limit is allowed");
    let config_map = files
        .iter()
        .find(|f| f.name == "configmap-outpost-concurrency.yaml")
        .expect("config map");
    assert!(
        config_map.contents.contains("postgres: \"8\""),
        "{}",
        config_map.contents
    );
}
