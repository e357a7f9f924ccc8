//! Snapshots of descriptor error reports: each names file, line, column and field. One
//! fixture per kind of mistake, named after it.

use std::path::PathBuf;

fn report(fixture: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let text = std::fs::read_to_string(&path).expect("fixture");
    let name = format!("fixtures/{fixture}");
    match connector_descriptor::parse(&name, &text) {
        Ok(_) => panic!("{fixture} should be rejected"),
        Err(error) => {
            for diagnostic in error.diagnostics() {
                assert!(
                    diagnostic.line > 0 && diagnostic.column > 0,
                    "{fixture}: no position in {diagnostic}"
                );
                assert!(
                    !diagnostic.field.is_empty(),
                    "{fixture}: no field in {diagnostic}"
                );
            }
            error.to_string()
        }
    }
}

fn check(fixture: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::assert_snapshot!(
            format!("descriptor-error-{}", fixture.trim_end_matches(".yaml")),
            report(fixture)
        )
    });
}

#[test]
fn missing_field() {
    check("missing-field.yaml");
}

#[test]
fn unknown_field_with_did_you_mean() {
    check("unknown-field-did-you-mean.yaml");
}

#[test]
fn unknown_type_with_did_you_mean() {
    check("unknown-type-did-you-mean.yaml");
}

#[test]
fn wrong_type() {
    check("wrong-type.yaml");
}

#[test]
fn bad_pattern() {
    check("bad-pattern.yaml");
}

#[test]
fn duplicate_parameter() {
    check("duplicate-parameter.yaml");
}

#[test]
fn every_rule_broken_is_reported_at_once() {
    check("many-problems-at-once.yaml");
}

#[test]
fn shipped_descriptors_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    for name in ["postgres", "mysql", "sqlite"] {
        let file = dir.join(name).join("connector.yaml");
        let text = std::fs::read_to_string(&file).expect("descriptor");
        let descriptor =
            connector_descriptor::parse(&format!("connectors/{name}/connector.yaml"), &text)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(descriptor.name(), name);
    }
}

/// Editors validate descriptors with the committed schema; it must match the Rust types.
#[test]
fn committed_json_schema_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/connector-descriptor.schema.json");
    let committed = std::fs::read_to_string(&path).expect("committed schema");
    assert!(
        committed == connector_descriptor::json_schema(),
        "connectors/connector-descriptor.schema.json is stale; run `cargo run -p outpost -- schema descriptor > connectors/connector-descriptor.schema.json`"
    );
}

#[test]
fn name_too_long_for_workflow_names() {
    check("name-too-long-for-workflow-names.yaml");
}

#[test]
fn egress_parameters_a_job_could_set() {
    check("egress-parameters-a-job-could-set.yaml");
}
