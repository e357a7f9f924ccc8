//! The argv contract: every container command line that a rendered object makes Argo run is one
//! the `outpost` binary accepts.
//!
//! For every container of every Argo object of four renders (the committed
//! `workflow-templates/`, the committed chart copy, the compiler's every-option fixture and the
//! chart's every-option values), each `{{…}}` reference is replaced by each value it may take
//! (every enum value, the default, a representative value for free strings), one reference at a
//! time, and the resulting `command + args` is parsed by the binary's own parser
//! ([`outpost::Cli`]). `outpost extract`'s `--param`s are also resolved against the connector's
//! descriptor, as the step itself does before connecting anywhere. A reference this test cannot
//! resolve fails it: Argo would fail the Workflow on it too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use workflow_compiler::{AgentOptions, RenderInput, RenderedFile};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A render's Argo objects (with the file each came from).
struct Render {
    name: &'static str,
    objects: Vec<(String, Value)>,
    /// `image:` keys in the YAML text: an independent count of the containers.
    images: usize,
}

/// Counts `image:` keys (block style, as rendered) in YAML text.
fn image_keys(text: &str) -> usize {
    text.lines()
        .map(|line| line.trim_start().trim_start_matches("- "))
        .filter(|line| line.starts_with("image: "))
        .count()
}

fn read_dir_objects(dir: &Path) -> (Vec<(String, Value)>, usize) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    let mut images = 0;
    let objects = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("rendered file");
            images += image_keys(&text);
            let value: Value =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), value)
        })
        .collect();
    (objects, images)
}

fn rendered_objects(files: Vec<RenderedFile>) -> (Vec<(String, Value)>, usize) {
    let images = files.iter().map(|f| image_keys(&f.contents)).sum();
    let objects = files
        .into_iter()
        .filter(|f| f.name != "kustomization.yaml")
        .map(|f| {
            let value: Value = serde_saphyr::from_str(&f.contents).expect("rendered YAML");
            (f.name, value)
        })
        .collect();
    (objects, images)
}

fn render_with(options: &AgentOptions) -> (Vec<(String, Value)>, usize) {
    let descriptors = connector_descriptor::load::read_dir(&repo_root().join("connectors"))
        .expect("shipped descriptors are valid");
    rendered_objects(
        workflow_compiler::render(RenderInput {
            descriptors: &descriptors,
            options,
            options_source: "test",
            overlays: &[],
        })
        .expect("render succeeds"),
    )
}

fn renders() -> Vec<Render> {
    let root = repo_root();
    let every_option = workflow_compiler::files::read_options(
        &root.join("crates/workflow-compiler/tests/fixtures/every-option.yaml"),
    )
    .expect("every-option.yaml");
    let chart = root.join("charts/outpost");
    let chart_every_option = workflow_compiler::files::read_chart_values(
        &chart,
        &[chart.join("ci/every-option-values.yaml")],
    )
    .expect("chart values");
    let render = |name, (objects, images)| Render {
        name,
        objects,
        images,
    };
    vec![
        render(
            "workflow-templates/ (committed default render)",
            read_dir_objects(&root.join("workflow-templates")),
        ),
        render(
            "charts/outpost/files/argo/ (committed chart render)",
            read_dir_objects(&chart.join(workflow_compiler::chart::CHART_ARGO_DIR)),
        ),
        render("every-option agent options", render_with(&every_option)),
        render(
            "chart with ci/every-option-values.yaml",
            render_with(&chart_every_option.options),
        ),
    ]
}

/// The workflow spec of an Argo object (a CronWorkflow's is nested).
fn workflow_spec(object: &Value) -> Option<&Value> {
    match object.get("kind")?.as_str()? {
        "WorkflowTemplate" | "ClusterWorkflowTemplate" | "Workflow" => object.get("spec"),
        "CronWorkflow" => object.get("spec")?.get("workflowSpec"),
        _ => None,
    }
}

/// Every container of a template: `container`, `script`, `containerSet.containers`,
/// `initContainers`, `sidecars`.
fn containers(template: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    for key in ["container", "script"] {
        found.extend(template.get(key));
    }
    if let Some(list) = template
        .get("containerSet")
        .and_then(|c| c.get("containers"))
        .and_then(Value::as_array)
    {
        found.extend(list);
    }
    for key in ["initContainers", "sidecars"] {
        if let Some(list) = template.get(key).and_then(Value::as_array) {
            found.extend(list);
        }
    }
    found
}

/// Representative values of free-string parameters, by name: a value a real site would pass.
/// A parameter that has neither a default, an enum nor an entry here fails the test, so a new
/// connector's parameters are covered when it is added.
fn representative(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "connection" => &["pg-prod"],
        "job-id" => &["job-01HZX3"],
        "run-id" => &["r-20261130T060000Z"],
        "host" => &["db.internal.example.com", "10.0.0.7", "[fd00::7]"],
        "port" => &["15432"],
        "database" => &["app"],
        "user" => &["catalog_reader"],
        "path" => &["/data/app.db"],
        "account" => &["myorg-prod", "xy12345.us-east-1"],
        "role" => &["CATALOG_READER"],
        "warehouse" => &["CATALOG_WH"],
        "site" => &["finance", "Ünïcødé site"],
        _ if name.starts_with("include-") || name.starts_with("exclude-") => &["^(tmp|staging)_"],
        _ => return None,
    })
}

/// What each `{{…}}` reference may become, for one workflow spec.
fn candidates(spec: &Value, reference: &str) -> Result<Vec<String>, String> {
    let fixed: &[&str] = match reference {
        "workflow.name" => &["outpost-postgres-0123456789abcdef"],
        "workflow.namespace" => &["outpost"],
        "workflow.uid" => &["0b9f5a4e-8c0e-4d8e-9a43-2f1f0f5f7a11"],
        // What Argo sets for the exit handler.
        "workflow.status" => &["Succeeded", "Failed", "Error"],
        "workflow.failures" => &["[]"],
        "pod.name" => &["outpost-postgres-0123456789abcdef-run-1234567890"],
        "retries" => &["0", "3"],
        _ => &[],
    };
    if !fixed.is_empty() {
        return Ok(fixed.iter().map(|s| (*s).to_owned()).collect());
    }
    let Some(name) = reference.strip_prefix("workflow.parameters.") else {
        return Err(format!(
            "`{{{{{reference}}}}}` is not a reference this test knows"
        ));
    };
    let parameter = spec
        .pointer("/arguments/parameters")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        })
        .ok_or_else(|| format!("`{{{{{reference}}}}}` names no workflow parameter"))?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut values: Vec<String> = Vec::new();
    if let Some(allowed) = parameter.get("enum").and_then(Value::as_array) {
        values.extend(allowed.iter().map(text));
    } else {
        values.extend(parameter.get("value").map(text));
        values.extend(
            representative(name)
                .unwrap_or_default()
                .iter()
                .map(|s| (*s).to_owned()),
        );
    }
    values.dedup();
    if values.is_empty() {
        return Err(format!(
            "workflow parameter `{name}` has no default, no enum and no representative value in this test"
        ));
    }
    Ok(values)
}

/// The `{{…}}` references in one string.
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        found.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    found
}

fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (reference, value) in values {
        out = out.replace(&format!("{{{{{reference}}}}}"), value);
    }
    out
}

/// The argument vectors of one container: the base (every reference at its first value), then
/// one vector per other value of each reference.
fn argument_vectors(spec: &Value, argv: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut options: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for element in argv {
        for reference in references(element) {
            if let std::collections::btree_map::Entry::Vacant(entry) = options.entry(reference) {
                let values = candidates(spec, entry.key())?;
                entry.insert(values);
            }
        }
    }
    let base: BTreeMap<String, String> = options
        .iter()
        .map(|(r, v)| (r.clone(), v[0].clone()))
        .collect();
    let mut assignments = vec![base.clone()];
    for (reference, values) in &options {
        for value in &values[1..] {
            let mut assignment = base.clone();
            assignment.insert(reference.clone(), value.clone());
            assignments.push(assignment);
        }
    }
    Ok(assignments
        .iter()
        .map(|a| argv.iter().map(|e| substitute(e, a)).collect())
        .collect())
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|v| v.as_str().expect("argv elements are strings").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `outpost extract`'s parameters, resolved against the connector's descriptor as the step does.
fn check_extract_parameters(argv: &[String]) -> Result<(), String> {
    let connector = argv
        .iter()
        .find_map(|a| a.strip_prefix("--connector="))
        .ok_or("no --connector")?;
    let path = repo_root().join(format!("connectors/{connector}/connector.yaml"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let descriptor = connector_descriptor::parse(&path.display().to_string(), &text)
        .map_err(|e| e.to_string())?;
    let mut raw: Vec<(String, String)> = argv
        .iter()
        .filter_map(|a| a.strip_prefix("--param="))
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    // A connection's own parameters never travel as arguments (a Workflow parameter would let
    // a job choose where the credentials go); extract reads them from the connection's
    // Secret, modelled here by representative values.
    for parameter in &descriptor.parameters {
        let name = &parameter.name.value;
        if parameter.scope != connector_descriptor::ParameterScope::Connection {
            continue;
        }
        if raw.iter().any(|(given, _)| given == name) {
            return Err(format!(
                "`{name}` is the connection's, yet passed as --param"
            ));
        }
        let value = match &parameter.values {
            Some(values) => values.value.last().cloned(),
            None => representative(name).map(|v| v[0].to_owned()),
        }
        .ok_or_else(|| format!("connection parameter `{name}` has no representative value"))?;
        raw.push((name.clone(), value));
    }
    descriptor
        .resolve_parameters(&raw)
        .map(|_| ())
        .map_err(|problems| problems.join("; "))
}

#[test]
fn every_rendered_container_command_line_is_accepted_by_the_binary() {
    let mut containers_checked = 0usize;
    let mut vectors_checked = 0usize;
    let mut objects_checked = 0usize;
    let mut per_subcommand: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut images = 0usize;
    for render in renders() {
        images += render.images;
        for (file, object) in &render.objects {
            let Some(spec) = workflow_spec(object) else {
                continue;
            };
            objects_checked += 1;
            let Some(templates) = spec.get("templates").and_then(Value::as_array) else {
                // A CronWorkflow that only references the agent's own WorkflowTemplate (as
                // Argo's `templateReferencing: Strict` requires): its containers are checked
                // there, so that template must be in the same render.
                let reference = spec
                    .pointer("/workflowTemplateRef/name")
                    .and_then(Value::as_str)
                    .expect("a workflow spec has templates or references a WorkflowTemplate");
                assert!(
                    render.objects.iter().any(|(_, o)| {
                        o["kind"] == "WorkflowTemplate" && o["metadata"]["name"] == reference
                    }),
                    "{}: {file} references WorkflowTemplate {reference}, which is not rendered",
                    render.name
                );
                continue;
            };
            for template in templates {
                let template_name = template.get("name").and_then(Value::as_str).unwrap_or("?");
                for container in containers(template) {
                    containers_checked += 1;
                    let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
                    let at = format!(
                        "{}: {file}: template `{template_name}`, container `{name}`",
                        render.name
                    );
                    let mut argv = strings(container.get("command"));
                    argv.extend(strings(container.get("args")));
                    if argv.first().map(String::as_str) != Some("outpost") || argv.len() < 2 {
                        failures.push(format!("{at}: runs {argv:?}, not an `outpost` subcommand"));
                        continue;
                    }
                    let vectors = match argument_vectors(spec, &argv) {
                        Ok(vectors) => vectors,
                        Err(problem) => {
                            failures.push(format!("{at}: {problem}"));
                            continue;
                        }
                    };
                    *per_subcommand.entry(argv[1].clone()).or_default() += 1;
                    for vector in vectors {
                        vectors_checked += 1;
                        if let Err(error) = outpost::Cli::try_parse_from(&vector) {
                            failures.push(format!(
                                "{at}: the binary rejects {vector:?}:\n{}",
                                error.render()
                            ));
                            continue;
                        }
                        if vector[1] == "extract"
                            && let Err(problem) = check_extract_parameters(&vector)
                        {
                            failures.push(format!(
                                "{at}: `outpost extract` would reject {vector:?}: {problem}"
                            ));
                        }
                    }
                }
            }
        }
    }
    println!(
        "argv contract: {containers_checked} of {images} containers in {objects_checked} Argo objects of 4 renders, {vectors_checked} argument vectors parsed by outpost::Cli; per subcommand: {per_subcommand:?}"
    );
    assert!(
        failures.is_empty(),
        "{} argument vectors are rejected:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 100% coverage: the walk above found every container the YAML text declares.
    assert_eq!(
        containers_checked, images,
        "the walk found {containers_checked} containers, the rendered YAML has {images} `image:` keys"
    );
    for subcommand in ["extract", "upload", "report", "orchestrate", "heartbeat"] {
        assert!(
            per_subcommand.contains_key(subcommand),
            "no rendered container runs `outpost {subcommand}`"
        );
    }
}

/// The contract is only as good as its parser: the pre-fix spelling of the transfer mode is
/// rejected, so a template emitting it would fail this test.
#[test]
fn the_parser_rejects_a_transfer_mode_spelled_otherwise() {
    for wrong in ["relay", "direct", "Direct-Ingestion"] {
        let argv = [
            "outpost",
            "upload",
            "--from=/outpost/output",
            &format!("--transfer-mode={wrong}"),
            "--connector=postgres",
            "--connection=c",
            "--job-id=j",
            "--run-id=r",
        ];
        assert!(
            outpost::Cli::try_parse_from(argv).is_err(),
            "`--transfer-mode={wrong}` was accepted"
        );
    }
}
