//! Every Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow among Argo's own
//! examples (`../shared/argo/examples-v4.1.2/`) reads into the typed model and writes back to the
//! same JSON value.

use std::path::PathBuf;

use argo_workflows::AnyWorkflowObject;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/argo/examples-v4.1.2")
}

#[test]
fn argo_example_corpus_round_trips() {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the Argo example corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() > 200, "corpus looks incomplete: {} files", files.len());

    let (mut in_scope, mut out_of_scope) = (0usize, 0usize);
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read example");
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
        for original in documents.into_iter().filter(|d| !d.is_null()) {
            let typed = match AnyWorkflowObject::from_value(original.clone()) {
                Ok(Some(typed)) => typed,
                Ok(None) => {
                    out_of_scope += 1;
                    continue;
                }
                Err(e) => {
                    in_scope += 1;
                    failures.push(format!("{}: does not read: {e}", file.display()));
                    continue;
                }
            };
            in_scope += 1;
            let written = serde_json::to_value(&typed).expect("serialise");
            if written != original {
                failures.push(format!(
                    "{}: changed on round trip\n--- read\n{}\n--- written\n{}",
                    file.display(),
                    serde_json::to_string_pretty(&original).expect("json"),
                    serde_json::to_string_pretty(&written).expect("json"),
                ));
            }
        }
    }
    println!(
        "Argo example corpus: {} of {in_scope} in-scope objects round-trip ({out_of_scope} objects of other kinds skipped)",
        in_scope - failures.len()
    );
    assert!(in_scope >= 200, "expected at least 200 in-scope objects, found {in_scope}");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
