//! Same inputs, same bytes.

mod support;

use workflow_compiler::{AgentOptions, RenderInput};

#[test]
fn two_renders_are_byte_identical() {
    for options in [AgentOptions::default(), support::every_option()] {
        assert_eq!(
            support::render(&options, &[]),
            support::render(&options, &[])
        );
    }
}

#[test]
fn descriptor_order_does_not_change_the_output() {
    let options = AgentOptions::default();
    let mut descriptors = support::descriptors();
    let forward = workflow_compiler::render(RenderInput {
        descriptors: &descriptors,
        options: &options,
        options_source: "test",
        overlays: &[],
    })
    .expect("render");
    descriptors.reverse();
    let backward = workflow_compiler::render(RenderInput {
        descriptors: &descriptors,
        options: &options,
        options_source: "test",
        overlays: &[],
    })
    .expect("render");
    assert_eq!(forward, backward);
}

#[test]
fn the_committed_folder_is_the_default_render() {
    let committed =
        workflow_compiler::files::read_output_dir(&support::repo_root().join("workflow-templates"))
            .expect("read");
    let fresh = workflow_compiler::render(RenderInput {
        descriptors: &support::descriptors(),
        options: &AgentOptions::default(),
        options_source: "defaults",
        overlays: &[],
    })
    .expect("render");
    let stale = workflow_compiler::staleness(&committed, &fresh);
    assert!(
        stale.is_empty(),
        "workflow-templates/ is stale; run `cargo run -p outpost -- render`:\n{}",
        stale
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn staleness_reports_changed_missing_and_extra_files() {
    let fresh = support::render(&AgentOptions::default(), &[]);
    let mut committed: std::collections::BTreeMap<String, String> = fresh
        .iter()
        .map(|f| (f.name.clone(), f.contents.clone()))
        .collect();
    assert!(workflow_compiler::staleness(&committed, &fresh).is_empty());
    committed
        .get_mut("kustomization.yaml")
        .expect("kustomization")
        .push_str("# hand edit\n");
    committed.remove("cronworkflow-outpost-heartbeat.yaml");
    committed.insert("old.yaml".into(), String::new());
    let stale = workflow_compiler::staleness(&committed, &fresh);
    let text: Vec<String> = stale.iter().map(ToString::to_string).collect();
    assert_eq!(stale.len(), 3, "{text:?}");
    assert!(
        text.iter()
            .any(|t| t.starts_with("stale: kustomization.yaml") && t.contains("-# hand edit"))
    );
    assert!(
        text.iter()
            .any(|t| t == "missing: cronworkflow-outpost-heartbeat.yaml")
    );
    assert!(
        text.iter()
            .any(|t| t == "not generated (delete it): old.yaml")
    );
}
