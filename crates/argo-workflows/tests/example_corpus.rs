//! Every Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow among Argo's own
//! examples (vendored in `testdata/argo/examples-v4.1.2/`) reads into the typed model and writes back to the
//! same JSON value.

use std::path::PathBuf;

use argo_workflows::AnyWorkflowObject;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/argo/examples-v4.1.2")
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
    assert!(
        files.len() > 200,
        "corpus looks incomplete: {} files",
        files.len()
    );

    let (mut in_scope, mut out_of_scope) = (0usize, 0usize);
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read example");
        // One example (k8s-patch-json-workflow.yaml) repeats a key; Kubernetes' YAML-to-JSON
        // decoding keeps the last value, and so do we.
        let options =
            serde_saphyr::options! { duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins };
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple_with_options(&text, options)
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
                let mut paths = Vec::new();
                differences(&original, &written, String::new(), &mut paths);
                failures.push(format!(
                    "{}: changed on round trip at {}",
                    file.display(),
                    paths.join(", ")
                ));
            }
        }
    }
    println!(
        "Argo example corpus: {} of {in_scope} in-scope objects round-trip ({out_of_scope} objects of other kinds skipped)",
        in_scope - failures.len()
    );
    assert!(
        in_scope >= 200,
        "expected at least 200 in-scope objects, found {in_scope}"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The JSON pointers where two values differ.
fn differences(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => differences(p, q, format!("{at}/{key}"), out),
                    (p, _) => out.push(format!(
                        "{at}/{key} ({})",
                        if p.is_some() { "lost" } else { "added" }
                    )),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, format!("{at}/{i}"), out);
            }
        }
        (p, q) if p == q => {}
        (p, q) => out.push(format!("{at} ({p} -> {q})")),
    }
}

/// Typed fields land in typed places, and only unknown ones in `other`.
#[test]
fn fields_outpost_emits_are_typed() {
    let text = std::fs::read_to_string(corpus_dir().join("cron-workflow-multiple-schedules.yaml"))
        .expect("example");
    let cron: argo_workflows::CronWorkflow = serde_saphyr::from_str(&text).expect("reads");
    assert_eq!(cron.spec.schedules.len(), 2, "schedules are typed");
    let template = &cron
        .spec
        .workflow_spec
        .templates
        .as_ref()
        .expect("templates")[0];
    assert!(
        template
            .container
            .as_ref()
            .and_then(|c| c.image.as_ref())
            .is_some(),
        "container image is typed"
    );
    assert!(
        cron.spec.other.is_empty() && template.other.is_empty(),
        "nothing falls back to `other`"
    );
}
