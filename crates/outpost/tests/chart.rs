//! The Helm chart (`charts/outpost`) as CI checks it: `helm lint`; `helm template` with the
//! default values and with a values file setting every option (plus one per secrets mode);
//! every rendered object validated (`kubernetes-validate --strict` for core kinds, Argo's
//! schemas for Argo kinds); `checkov` with zero failed checks; the chart's Argo objects byte
//! for byte those of `outpost render`; least-privilege RBAC and egress.
//!
//! These need helm, kubernetes-validate and checkov (`scripts/install-tools.sh k8s chart`,
//! which `scripts/test.sh` runs); a missing tool fails the test, it never skips it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{Scratch, scratch};

/// Kubernetes release the core kinds are validated against (kubernetes-validate ships
/// schemas up to 1.37; 1.33 is the kubectl this repository installs and k8s-openapi's
/// feature).
const KUBERNETES_VERSION: &str = "1.33.0";
/// The cloud metadata service no agent pod may reach.
const METADATA_CIDR: &str = "169.254.169.254/32";
/// Argo kinds the chart carries.
const ARGO_KINDS: [&str; 2] = ["WorkflowTemplate", "CronWorkflow"];
/// Custom resources of other operators, for which no schema is available here: parsed and
/// checked by the assertions below, not schema-validated.
const OPERATOR_KINDS: [&str; 3] = ["ExternalSecret", "SecretStore", "SecretProviderClass"];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn chart_dir() -> PathBuf {
    repo_root().join("charts/outpost")
}

/// A tool from `.tools/bin` (where `scripts/install-tools.sh` puts it) or the PATH; a
/// missing one fails loudly.
fn tool(name: &str) -> PathBuf {
    let local = repo_root().join(".tools/bin").join(name);
    if local.is_file() {
        return local;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run `scripts/install-tools.sh k8s chart`")
        })
}

fn run(program: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from)
        .expect("read dir")
        .map(|e| e.expect("entry"))
    {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

/// One object of `helm template`'s output: the template it came from, its bytes (without
/// Helm's `---` and `# Source:` lines) and its parsed form.
struct Rendered {
    source: String,
    bytes: String,
    object: Value,
}

impl Rendered {
    fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }
    fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
}

fn helm_template(chart: &Path, values: &[&Path], namespace: &str) -> Vec<Rendered> {
    let mut args = vec!["template", "outpost", ".", "--namespace", namespace];
    let values: Vec<String> = values.iter().map(|p| p.display().to_string()).collect();
    for file in &values {
        args.extend(["-f", file]);
    }
    let out = run(&tool("helm"), &args, chart);
    assert!(
        out.status.success(),
        "helm template {values:?} failed:\n{}",
        text(&out.stderr)
    );
    split_helm_output(&text(&out.stdout))
}

fn split_helm_output(output: &str) -> Vec<Rendered> {
    let mut documents = Vec::new();
    for chunk in output.split("---\n").filter(|c| !c.trim().is_empty()) {
        let (source, bytes) = chunk
            .strip_prefix("# Source: ")
            .and_then(|rest| rest.split_once('\n'))
            .unwrap_or_else(|| panic!("a document without `# Source:`:\n{chunk}"));
        documents.push(Rendered {
            source: source.to_owned(),
            bytes: bytes.to_owned(),
            object: yaml(bytes),
        });
    }
    documents
}

/// Every generated file of an `outpost render` output folder but `kustomization.yaml`, by
/// name.
fn generated_objects(dir: &Path) -> BTreeMap<String, String> {
    workflow_compiler::files::read_output_dir(dir)
        .expect("read output folder")
        .into_iter()
        .filter(|(name, _)| name != "kustomization.yaml")
        .collect()
}

/// The chart's Argo objects are the generated files, byte for byte, each exactly once.
fn assert_byte_identical(label: &str, rendered: &[Rendered], generated: &BTreeMap<String, String>) {
    let from_files: Vec<&Rendered> = rendered
        .iter()
        .filter(|r| r.source.ends_with("templates/argo.yaml"))
        .collect();
    assert_eq!(
        from_files.len(),
        generated.len(),
        "{label}: the chart emits {} compiled objects, the render {}",
        from_files.len(),
        generated.len()
    );
    for (name, contents) in generated {
        let matches = from_files.iter().filter(|r| &r.bytes == contents).count();
        assert_eq!(
            matches, 1,
            "{label}: {name} appears {matches} times byte-identical in helm template's output"
        );
    }
}

/// The Argo schemas vendored with the compiler (`crates/workflow-compiler/argo-schemas/`).
use workflow_compiler::argo_schema::EMBEDDED as ARGO_SCHEMAS;

/// What one validated `helm template` run held.
#[derive(Debug, Default)]
struct Validated {
    core: usize,
    argo: usize,
    operator: usize,
}

/// Validates every object: core kinds with `kubernetes-validate --strict`, Argo kinds
/// against both Argo schemas (strict), operator kinds by their API group only (no schema
/// here). Writes each object into `dir` as its own file, for checkov.
fn validate(label: &str, rendered: &[Rendered], dir: &Path) -> Validated {
    std::fs::create_dir_all(dir).expect("dir");
    let mut counts = Validated::default();
    let mut core_files = Vec::new();
    let mut errors = Vec::new();
    for (index, r) in rendered.iter().enumerate() {
        let file = dir.join(format!(
            "{index:02}-{}-{}.yaml",
            r.kind().to_lowercase(),
            r.name()
        ));
        std::fs::write(&file, &r.bytes).expect("write");
        let api_version = r.object["apiVersion"].as_str().unwrap_or_default();
        if ARGO_KINDS.contains(&r.kind()) {
            assert_eq!(api_version, "argoproj.io/v1alpha1");
            counts.argo += 1;
            for schema in ARGO_SCHEMAS.iter() {
                errors.extend(
                    schema
                        .errors(&r.object)
                        .into_iter()
                        .map(|e| format!("{label} {} {}: {e}", r.kind(), r.name())),
                );
            }
        } else if OPERATOR_KINDS.contains(&r.kind()) {
            assert!(
                api_version == "external-secrets.io/v1"
                    || api_version == "secrets-store.csi.x-k8s.io/v1",
                "{label}: {} {} has apiVersion {api_version}",
                r.kind(),
                r.name()
            );
            counts.operator += 1;
        } else {
            counts.core += 1;
            core_files.push(file.display().to_string());
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let mut args = vec!["--strict", "-k", KUBERNETES_VERSION];
    args.extend(core_files.iter().map(String::as_str));
    let out = run(&tool("kubernetes-validate"), &args, dir);
    let report = text(&out.stdout) + &text(&out.stderr);
    let passed = report.matches(" passed for resource ").count();
    assert!(
        out.status.success() && passed == core_files.len(),
        "{label}: kubernetes-validate passed {passed} of {} core objects:\n{report}",
        core_files.len()
    );
    println!(
        "{label}: {} objects: {} core kinds valid (kubernetes-validate --strict, Kubernetes {KUBERNETES_VERSION}), {} Argo objects valid against Argo 4.1.2 and 3.7.18 (strict), {} operator custom resources (no schema available)",
        rendered.len(),
        counts.core,
        counts.argo,
        counts.operator
    );
    counts
}

/// Runs checkov over every object file under `dir` (Kubernetes and Argo Workflows
/// frameworks); fails on any failed check, parsing error, or skip without a justification.
fn checkov(dir: &Path) -> (u64, u64, u64) {
    let out = run(
        &tool("checkov"),
        &[
            "--directory",
            ".",
            "--framework",
            "kubernetes",
            "argo_workflows",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
        ],
        dir,
    );
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov printed no JSON ({e}):\n{}", text(&out.stderr)));
    let reports = match report {
        Value::Array(items) => items,
        single => vec![single],
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut problems = Vec::new();
    for report in &reports {
        let summary = &report["summary"];
        passed += summary["passed"].as_u64().unwrap_or(0);
        failed += summary["failed"].as_u64().unwrap_or(0);
        skipped += summary["skipped"].as_u64().unwrap_or(0);
        if summary["parsing_errors"].as_u64() != Some(0) {
            problems.push(format!(
                "{}: parsing errors {summary}",
                report["check_type"]
            ));
        }
        for check in report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            problems.push(format!(
                "FAILED {} {} on {} ({})",
                check["check_id"], check["check_name"], check["resource"], check["file_path"]
            ));
        }
        for check in report["results"]["skipped_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let why = check["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or("");
            if why.trim().len() < 20 {
                problems.push(format!(
                    "skip of {} on {} has no justification",
                    check["check_id"], check["resource"]
                ));
            }
        }
    }
    // A report with nothing checked would pass anything.
    assert!(
        reports.len() == 2 && passed > 0,
        "checkov checked nothing: {reports:?}"
    );
    assert!(problems.is_empty(), "checkov:\n{}", problems.join("\n"));
    (passed, failed, skipped)
}

fn lint(chart: &Path, values: &[&Path]) {
    let mut args = vec!["lint", ".", "--strict"];
    let values: Vec<String> = values.iter().map(|p| p.display().to_string()).collect();
    for file in &values {
        args.extend(["-f", file]);
    }
    let out = run(&tool("helm"), &args, chart);
    let report = text(&out.stdout) + &text(&out.stderr);
    assert!(
        out.status.success()
            && report.contains("1 chart(s) linted, 0 chart(s) failed")
            && !report.contains("[WARNING]")
            && !report.contains("[ERROR]")
            && !report.contains("[INFO]")
            && !report.contains("funcMap fail"),
        "helm lint {values:?} is not clean:\n{report}"
    );
    println!("helm lint --strict {values:?}: clean");
}

fn outpost(args: &[&str], cwd: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("outpost runs");
    assert!(
        out.status.success(),
        "outpost {args:?} failed:\n{}",
        text(&out.stderr)
    );
    out
}

/// A copy of the chart compiled with `values` (`outpost render --chart --values`), and the
/// render's own output folder, both in the scratch folder answered first.
fn compiled_copy(name: &str, values: &Path) -> (Scratch, PathBuf, PathBuf) {
    let dir = scratch(&format!("chart-{name}"));
    let chart = dir.join("outpost");
    copy_dir(&chart_dir(), &chart);
    let out = dir.join("workflow-templates");
    let connectors = repo_root().join("connectors");
    outpost(
        &[
            "render",
            "--connectors",
            &connectors.display().to_string(),
            "--chart",
            &chart.display().to_string(),
            "--values",
            &values.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        &dir,
    );
    (dir, chart, out)
}

fn every_option_values() -> PathBuf {
    chart_dir().join("ci/every-option-values.yaml")
}

/// The values files of the secrets modes besides the default and every-option ones.
fn secrets_mode_values() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .expect("ci folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("secrets-") && n.ends_with("-values.yaml"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn lint_template_validate_and_scan_with_default_and_every_option_values() {
    let scan = scratch("chart-scan");
    let mut totals = Validated::default();
    let mut add = |v: Validated| {
        totals.core += v.core;
        totals.argo += v.argo;
        totals.operator += v.operator;
    };

    // Defaults: the committed chart, against the committed workflow-templates/.
    lint(&chart_dir(), &[]);
    let defaults = helm_template(&chart_dir(), &[], "outpost");
    assert_byte_identical(
        "default values",
        &defaults,
        &generated_objects(&repo_root().join("workflow-templates")),
    );
    add(validate(
        "default values",
        &defaults,
        &scan.join("defaults"),
    ));

    // Every option: a copy of the chart compiled from the every-option values file.
    let values = every_option_values();
    let (_copy, chart, out) = compiled_copy("every-option", &values);
    lint(&chart, &[&values]);
    let every = helm_template(&chart, &[&values], "data-catalog");
    assert_byte_identical("every-option values", &every, &generated_objects(&out));
    add(validate(
        "every-option values",
        &every,
        &scan.join("every-option"),
    ));

    // Each secrets mode (with the committed chart: they change no `agent:` value).
    for values in secrets_mode_values() {
        let label = values
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        lint(&chart_dir(), &[&values]);
        let rendered = helm_template(&chart_dir(), &[&values], "outpost");
        add(validate(
            &label,
            &rendered,
            &scan.join(label.trim_end_matches(".yaml")),
        ));
    }

    let (passed, failed, skipped) = checkov(&scan);
    println!(
        "validated {} core, {} Argo and {} operator objects; checkov: {passed} passed, {failed} failed, {skipped} skipped",
        totals.core, totals.argo, totals.operator
    );
}

#[test]
fn every_option_values_compile_to_the_fixture_options_render() {
    // The values file's `agent:` is the compiler's every-option fixture...
    let values = yaml(&read(&every_option_values()));
    let fixture = yaml(&read(
        &repo_root().join("crates/workflow-compiler/tests/fixtures/every-option.yaml"),
    ));
    assert_eq!(values["agent"], fixture);
    // ...so compiling through the chart gives the fixture's render: the same bytes but for
    // the header line naming where the options were read.
    let (copy, _, through_chart) = compiled_copy("every-option-render", &every_option_values());
    let direct = copy.join("direct");
    let fixture_path =
        repo_root().join("crates/workflow-compiler/tests/fixtures/every-option.yaml");
    outpost(
        &[
            "render",
            "--connectors",
            &repo_root().join("connectors").display().to_string(),
            "--options",
            &fixture_path.display().to_string(),
            "--out",
            &direct.display().to_string(),
        ],
        &repo_root(),
    );
    let strip = |files: BTreeMap<String, String>| -> BTreeMap<String, String> {
        files
            .into_iter()
            .map(|(name, contents)| {
                let kept: Vec<&str> = contents
                    .lines()
                    .filter(|l| !l.starts_with("# Input: agent options ("))
                    .collect();
                (name, kept.join("\n"))
            })
            .collect()
    };
    let a = strip(generated_objects(&through_chart));
    let b = strip(generated_objects(&direct));
    // Four connector WorkflowTemplates (postgres, mysql, snowflake, tableau; sqlite is
    // localOnly), the orchestrator's and the heartbeat's WorkflowTemplates and their
    // CronWorkflows, the ConfigMap.
    assert_eq!(a.len(), 9);
    assert_eq!(a, b);
}

#[test]
fn the_chart_refuses_agent_values_it_was_not_compiled_from() {
    let out = run(
        &tool("helm"),
        &[
            "template",
            "outpost",
            ".",
            "--set",
            "agent.schedules.heartbeat=*/1 * * * *",
        ],
        &chart_dir(),
    );
    assert!(
        !out.status.success(),
        "rendered with uncompiled agent values"
    );
    let error = text(&out.stderr);
    assert!(error.contains("`agent:` is compile-time"), "{error}");
    assert!(error.contains("outpost render --chart"), "{error}");

    // And a copy compiled from other values refuses the chart's defaults.
    let (_copy, chart, _) = compiled_copy("refuse", &every_option_values());
    let out = run(&tool("helm"), &["template", "outpost", "."], &chart);
    assert!(
        !out.status.success(),
        "rendered defaults into a chart compiled otherwise"
    );
}

/// One grant: (namespace, apiGroup, resource, resource name or `*` for every object, verb).
type Grant = (String, String, String, String, String);

/// The rules granted to each service account, wherever its Roles are.
fn granted(rendered: &[Rendered]) -> BTreeMap<String, BTreeSet<Grant>> {
    let namespace_of = |r: &Rendered| {
        r.object["metadata"]["namespace"]
            .as_str()
            .expect("namespace")
            .to_owned()
    };
    let roles: BTreeMap<(String, &str), &Value> = rendered
        .iter()
        .filter(|r| r.kind() == "Role")
        .map(|r| ((namespace_of(r), r.name()), &r.object))
        .collect();
    let mut grants: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for binding in rendered.iter().filter(|r| r.kind() == "RoleBinding") {
        assert_eq!(binding.object["roleRef"]["kind"], "Role");
        let namespace = namespace_of(binding);
        let role = roles[&(
            namespace.clone(),
            binding.object["roleRef"]["name"].as_str().expect("role"),
        )];
        for subject in binding.object["subjects"].as_array().expect("subjects") {
            assert_eq!(subject["kind"], "ServiceAccount");
            let entry = grants
                .entry(subject["name"].as_str().expect("name").to_owned())
                .or_default();
            for rule in role["rules"].as_array().expect("rules") {
                let names: Vec<&str> = match rule.get("resourceNames") {
                    Some(names) => names
                        .as_array()
                        .expect("resourceNames")
                        .iter()
                        .map(|n| n.as_str().expect("name"))
                        .collect(),
                    None => vec!["*"],
                };
                for group in rule["apiGroups"].as_array().expect("groups") {
                    for resource in rule["resources"].as_array().expect("resources") {
                        for verb in rule["verbs"].as_array().expect("verbs") {
                            for name in &names {
                                entry.insert((
                                    namespace.clone(),
                                    group.as_str().expect("group").to_owned(),
                                    resource.as_str().expect("resource").to_owned(),
                                    (*name).to_owned(),
                                    verb.as_str().expect("verb").to_owned(),
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    grants
}

/// Grants on every object of a resource in `namespace`.
fn grants(namespace: &str, items: &[(&str, &str, &str)]) -> BTreeSet<Grant> {
    items
        .iter()
        .map(|(g, r, v)| {
            (
                namespace.to_owned(),
                (*g).to_owned(),
                (*r).to_owned(),
                "*".to_owned(),
                (*v).to_owned(),
            )
        })
        .collect()
}

/// Every `serviceAccountName` anywhere inside an object.
fn service_account_names(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "serviceAccountName"
                    && let Some(name) = item.as_str()
                {
                    found.insert(name.to_owned());
                }
                service_account_names(item, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| service_account_names(i, found)),
        _ => {}
    }
}

#[test]
fn rbac_is_least_privilege_namespaced_and_matches_the_templates() {
    let values = every_option_values();
    let (_copy, chart, _) = compiled_copy("rbac", &values);
    // Each: the rendered chart, the agent's namespace, the service accounts' prefix, and
    // Argo's controller ConfigMap (`agent.argo.controllerConfigMap`).
    for (rendered, namespace, prefix, (argo_namespace, argo_config_map)) in [
        (
            helm_template(&chart_dir(), &[], "outpost"),
            "outpost",
            "outpost",
            ("argo", "workflow-controller-configmap"),
        ),
        (
            helm_template(&chart, &[&values], "data-catalog"),
            "data-catalog",
            "catalog",
            ("argo-system", "argo-workflows-controller-config"),
        ),
    ] {
        // Nothing cluster-scoped; every object in the agent's namespace but the Role (and its
        // binding) that lets the agent read Argo's controller ConfigMap, in the controller's.
        let read_argo_config = format!("outpost-{namespace}-argo-controller-config");
        for r in &rendered {
            assert!(
                !r.kind().starts_with("Cluster") || r.kind() == "ClusterSecretStore",
                "cluster-scoped {}",
                r.kind()
            );
            let expected =
                if ["Role", "RoleBinding"].contains(&r.kind()) && r.name() == read_argo_config {
                    argo_namespace
                } else {
                    namespace
                };
            assert_eq!(
                r.object["metadata"]["namespace"],
                expected,
                "{} {}",
                r.kind(),
                r.name()
            );
        }
        // Exactly the service accounts the compiled objects reference.
        let mut referenced = BTreeSet::new();
        for r in rendered.iter().filter(|r| ARGO_KINDS.contains(&r.kind())) {
            service_account_names(&r.object, &mut referenced);
        }
        let created: BTreeSet<String> = rendered
            .iter()
            .filter(|r| r.kind() == "ServiceAccount")
            .map(|r| r.name().to_owned())
            .collect();
        assert_eq!(created, referenced);
        let account = |role: &str| format!("{prefix}-{role}");
        for r in rendered.iter().filter(|r| r.kind() == "ServiceAccount") {
            let mounts = r.object["automountServiceAccountToken"].as_bool();
            let expected = !(r.name() == account("connector") || r.name() == account("executor"));
            assert_eq!(mounts, Some(expected), "{}", r.name());
        }
        let task_results = [
            ("argoproj.io", "workflowtaskresults", "create"),
            ("argoproj.io", "workflowtaskresults", "patch"),
        ];
        let with_task_results = |more: &[(&'static str, &'static str, &'static str)]| {
            let mut all = task_results.to_vec();
            all.extend_from_slice(more);
            grants(namespace, &all)
        };
        // Review finding M6: the orchestrator and the heartbeat read whether Argo runs only
        // Workflows that reference a WorkflowTemplate: `get` on that one ConfigMap, no other.
        let read_argo_config_map = (
            argo_namespace.to_owned(),
            String::new(),
            "configmaps".to_owned(),
            argo_config_map.to_owned(),
            "get".to_owned(),
        );
        let and_argo_config = |mut grants: BTreeSet<Grant>| {
            grants.insert(read_argo_config_map.clone());
            grants
        };
        let expected = BTreeMap::from([
            (account("executor"), with_task_results(&[])),
            (
                account("orchestrator"),
                and_argo_config(with_task_results(&[
                    ("argoproj.io", "workflows", "create"),
                    ("argoproj.io", "workflows", "get"),
                    ("argoproj.io", "workflows", "list"),
                    ("argoproj.io", "workflowtemplates", "get"),
                ])),
            ),
            (
                account("heartbeat"),
                and_argo_config(with_task_results(&[("argoproj.io", "workflows", "list")])),
            ),
            (
                account("reporter"),
                with_task_results(&[
                    ("argoproj.io", "workflows", "get"),
                    ("", "pods", "list"),
                    ("", "pods/log", "get"),
                ]),
            ),
        ]);
        // The connector has no binding at all, and nobody touches Secrets.
        assert_eq!(granted(&rendered), expected);
        // The executor's token Secret carries no data: Kubernetes fills it.
        for secret in rendered.iter().filter(|r| r.kind() == "Secret") {
            assert_eq!(secret.object["type"], "kubernetes.io/service-account-token");
            assert!(
                secret.object.get("data").is_none() && secret.object.get("stringData").is_none()
            );
        }
    }
}

fn egress_rules(rendered: &[Rendered]) -> Vec<(String, Value)> {
    rendered
        .iter()
        .filter(|r| r.kind() == "NetworkPolicy")
        .flat_map(|r| {
            r.object["spec"]["egress"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|rule| (r.name().to_owned(), rule))
        })
        .collect()
}

#[test]
fn network_policies_deny_by_default_and_never_reach_the_metadata_service() {
    let values = every_option_values();
    let (copy, chart, _) = compiled_copy("netpol", &values);
    let every = helm_template(&chart, &[&values], "data-catalog");
    let deny = every
        .iter()
        .find(|r| r.name() == "outpost-default-deny")
        .expect("default deny");
    assert_eq!(
        deny.object["spec"]["policyTypes"],
        json!(["Ingress", "Egress"])
    );
    assert!(
        deny.object["spec"].get("ingress").is_none() && deny.object["spec"].get("egress").is_none()
    );
    // No policy allows ingress.
    for r in every.iter().filter(|r| r.kind() == "NetworkPolicy") {
        assert!(r.object["spec"].get("ingress").is_none(), "{}", r.name());
    }
    let rules = egress_rules(&every);
    let mut wide = 0;
    for (policy, rule) in &rules {
        assert!(
            rule["ports"].as_array().is_some_and(|p| !p.is_empty()),
            "{policy}: a rule without ports"
        );
        for peer in rule["to"].as_array().expect("to") {
            let Some(block) = peer.get("ipBlock") else {
                continue;
            };
            let cidr = block["cidr"].as_str().expect("cidr");
            assert_ne!(cidr, METADATA_CIDR);
            if cidr == "0.0.0.0/0" || cidr == "169.254.0.0/16" {
                wide += 1;
                assert!(
                    block["except"]
                        .as_array()
                        .is_some_and(|e| e.contains(&json!(METADATA_CIDR))),
                    "{policy}: {cidr} without the metadata address excepted"
                );
            }
        }
    }
    // The every-option values open 169.254.0.0/16 for the bucket, whose rules appear for
    // connector and reporter pods: both had the metadata address excepted.
    assert_eq!(wide, 2);
    // DNS only to kube-dns, on 53.
    let dns = rules
        .iter()
        .find(|(_, rule)| rule["ports"][0]["port"] == 53)
        .expect("DNS rule");
    assert_eq!(
        dns.1["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    // Sources and bucket only for connector pods.
    let connector = every
        .iter()
        .find(|r| r.name() == "outpost-egress-connector")
        .expect("connector egress");
    assert_eq!(
        connector.object["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "connector"
    );
    // Connector pods hold a connection's credentials: no rule that reaches them opens the
    // whole internet, and the API-server rules (`kubernetesApi`) select only the agent's own
    // pods (the orchestrator, heartbeat and reporter).
    for (policy, rule) in rules
        .iter()
        .filter(|(p, _)| p == "outpost-egress-connector")
    {
        for peer in rule["to"].as_array().expect("to") {
            let cidr = peer["ipBlock"]["cidr"].as_str().unwrap_or("");
            assert!(cidr != "0.0.0.0/0" && cidr != "::/0", "{policy}: {cidr}");
        }
    }
    let agent = every
        .iter()
        .find(|r| r.name() == "outpost-egress-agent")
        .expect("agent egress");
    assert_eq!(
        agent.object["spec"]["podSelector"]["matchExpressions"],
        json!([{ "key": "app.kubernetes.io/component", "operator": "In",
                 "values": ["orchestrator", "heartbeat", "reporter"] }])
    );
    // The review's path: a 0.0.0.0/0 destination for connector pods is refused at render.
    let open = copy.join("open.yaml");
    std::fs::write(
        &open,
        "networkPolicy:\n  sources:\n    - {cidr: 0.0.0.0/0, ports: [{port: 443}]}\n",
    )
    .expect("write");
    let out = run(
        &tool("helm"),
        &[
            "template",
            "outpost",
            ".",
            "-f",
            &open.display().to_string(),
        ],
        &chart_dir(),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reach the whole internet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The reporter reaches the relay bucket (a relay run's logs), and nothing else of it.
    let reporter = every
        .iter()
        .find(|r| r.name() == "outpost-egress-reporter")
        .expect("reporter egress");
    assert_eq!(
        reporter.object["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "reporter"
    );
    assert_eq!(
        reporter.object["spec"]["egress"].as_array().map(Vec::len),
        Some(2),
        "the every-option values name two relay-bucket destinations"
    );

    // A destination that is the metadata address itself is refused.
    let bad = copy.join("metadata.yaml");
    std::fs::write(
        &bad,
        "networkPolicy:\n  sources:\n    - {cidr: 169.254.169.254/32, ports: [{port: 80}]}\n",
    )
    .expect("write");
    let out = run(
        &tool("helm"),
        &["template", "outpost", ".", "-f", &bad.display().to_string()],
        &chart_dir(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cloud metadata service"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn secrets_come_from_the_chosen_provider_and_no_value_is_rendered() {
    // Kubernetes mode (default): the chart makes no Secret but the executor's token.
    let defaults = helm_template(&chart_dir(), &[], "outpost");
    assert!(defaults.iter().all(|r| !OPERATOR_KINDS.contains(&r.kind())));
    let expected_targets = ["outpost-control-plane-token", "outpost-source-pg-prod"];
    for values in secrets_mode_values() {
        let rendered = helm_template(&chart_dir(), &[&values], "outpost");
        let name = values.display().to_string();
        let targets: BTreeSet<String> = if name.contains("-csi-") {
            let class = rendered
                .iter()
                .find(|r| r.kind() == "SecretProviderClass")
                .expect("SecretProviderClass");
            let sync = rendered
                .iter()
                .find(|r| r.kind() == "Deployment")
                .expect("sync pod");
            let pod = &sync.object["spec"]["template"]["spec"];
            assert_eq!(pod["automountServiceAccountToken"], false);
            // Review finding M7: the sync pod ran as the connector's account, so the cloud
            // identity that reads every connection's secret was the connector pods' too.
            // It has its own account now, with no RBAC and no token.
            assert_eq!(pod["serviceAccountName"], "outpost-secrets-sync");
            let account = rendered
                .iter()
                .find(|r| r.kind() == "ServiceAccount" && r.name() == "outpost-secrets-sync")
                .expect("the sync pod's own ServiceAccount");
            assert_eq!(account.object["automountServiceAccountToken"], false);
            assert!(
                !rendered.iter().any(|r| r.kind() == "RoleBinding"
                    && r.object["subjects"]
                        .to_string()
                        .contains("outpost-secrets-sync")),
                "the sync account has no RBAC"
            );
            class.object["spec"]["secretObjects"]
                .as_array()
                .expect("secretObjects")
                .iter()
                .map(|o| o["secretName"].as_str().expect("name").to_owned())
                .collect()
        } else {
            rendered
                .iter()
                .filter(|r| r.kind() == "ExternalSecret")
                .map(|r| {
                    r.object["spec"]["target"]["name"]
                        .as_str()
                        .expect("target")
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(
            targets,
            expected_targets.iter().map(|s| (*s).to_owned()).collect(),
            "{name}"
        );
        for r in &rendered {
            assert!(
                r.object.get("data").is_none() || r.kind() == "ConfigMap",
                "{name}: {} {} carries data",
                r.kind(),
                r.name()
            );
            assert!(r.object.get("stringData").is_none());
        }
    }
}

#[test]
fn the_values_schema_holds_the_agent_options_schema() {
    let schema: Value =
        serde_json::from_str(&read(&chart_dir().join("values.schema.json"))).expect("JSON");
    let out = outpost(&["schema", "options"], &repo_root());
    let mut options: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let object = options.as_object_mut().expect("object");
    let defs = object.remove("$defs").expect("$defs");
    object.remove("$schema");
    let mut agent = schema["properties"]["agent"].clone();
    let agent_object = agent.as_object_mut().expect("object");
    // The chart's description says the section is compile-time; the rest is the options'.
    let description = agent_object.remove("description").expect("description");
    assert!(
        description
            .as_str()
            .expect("text")
            .starts_with("COMPILE-TIME")
    );
    object.remove("description");
    assert_eq!(
        agent, options,
        "values.schema.json `properties.agent` differs from `outpost schema options`"
    );
    for (name, definition) in defs.as_object().expect("defs") {
        assert_eq!(&schema["$defs"][name], definition, "$defs/{name} differs");
    }
}

#[test]
fn the_image_recipe_is_distroless_and_non_root() {
    let dockerfile = read(&repo_root().join("Dockerfile"));
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.trim_start().to_uppercase().starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "a multi-stage build");
    let last = stages.last().expect("final stage");
    assert!(
        last.contains("gcr.io/distroless/cc-debian12:nonroot"),
        "final base: {last}"
    );
    let user = dockerfile
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("USER "))
        .expect("USER");
    assert_eq!(user.trim(), "USER 65532:65532");
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/outpost\"]"));
    assert!(dockerfile.contains("--locked"));
    let ignore = read(&repo_root().join(".dockerignore"));
    for entry in ["target", ".tools", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim_matches('/') == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

#[test]
fn the_argo_cd_applications_point_at_the_chart_and_the_kustomization() {
    // Argo CD's Application is a custom resource; no schema for it is available here, so
    // the checks are structural.
    let root = repo_root();
    let chart = yaml(&read(&root.join("gitops/argocd/outpost-chart.yaml")));
    let templates = yaml(&read(
        &root.join("gitops/argocd/outpost-workflow-templates.yaml"),
    ));
    for app in [&chart, &templates] {
        assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1");
        assert_eq!(app["kind"], "Application");
        assert_eq!(app["spec"]["destination"]["namespace"], "outpost");
        let path = app["spec"]["source"]["path"].as_str().expect("path");
        assert!(root.join(path).is_dir(), "{path}");
    }
    assert_eq!(chart["spec"]["source"]["path"], "charts/outpost");
    let chart_values = &chart["spec"]["source"]["helm"]["valueFiles"];
    assert!(
        chart_values
            .as_array()
            .is_some_and(|v| v.contains(&json!("values.yaml")))
    );
    assert_eq!(templates["spec"]["source"]["path"], "workflow-templates");
    assert!(templates["spec"]["source"].get("kustomize").is_some());
    assert!(root.join("workflow-templates/kustomization.yaml").is_file());
}

#[test]
fn render_check_covers_the_charts_compiled_files() {
    let dir = scratch("chart-check");
    let chart = dir.join("outpost");
    copy_dir(&chart_dir(), &chart);
    let args = |chart: &Path| {
        vec![
            "render".to_owned(),
            "--connectors".to_owned(),
            repo_root().join("connectors").display().to_string(),
            "--chart".to_owned(),
            chart.display().to_string(),
            "--out".to_owned(),
            repo_root().join("workflow-templates").display().to_string(),
            "--check".to_owned(),
        ]
    };
    let check = |chart: &Path| {
        let args = args(chart);
        Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(&args)
            .output()
            .expect("outpost runs")
    };
    let fresh = check(&chart);
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));

    // A hand edit of a compiled file, and a changed `agent:` value, are both stale.
    let edited = chart.join("files/argo/workflowtemplate-outpost-mysql.yaml");
    let original = read(&edited);
    std::fs::write(
        &edited,
        original.replace("OnWorkflowSuccess", "OnPodCompletion"),
    )
    .expect("write");
    let stale = check(&chart);
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale.stderr).contains("stale: workflowtemplate-outpost-mysql.yaml"));
    std::fs::write(&edited, original).expect("write");
    let values = chart.join("values.yaml");
    std::fs::write(
        &values,
        read(&values).replace("perConnector: 2", "perConnector: 3"),
    )
    .expect("write");
    let stale = check(&chart);
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        text(&stale.stderr).contains("stale: compiled-values.json"),
        "{}",
        text(&stale.stderr)
    );

    // So is a hand edit of the options' part of the values schema.
    std::fs::write(
        &values,
        read(&values).replace("perConnector: 3", "perConnector: 2"),
    )
    .expect("write");
    assert!(check(&chart).status.success());
    let schema = chart.join("values.schema.json");
    std::fs::write(
        &schema,
        read(&schema).replace("Namespace the objects are installed in", "Namespace"),
    )
    .expect("write");
    let stale = check(&chart);
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        text(&stale.stderr).contains("stale: values.schema.json"),
        "{}",
        text(&stale.stderr)
    );
}

#[test]
fn argo_workflows_is_an_optional_dependency_off_by_default() {
    // In charts/outpost-stack, not charts/outpost: Helm refuses to render a chart whose
    // dependencies are not downloaded, even disabled ones (see its README).
    let stack = repo_root().join("charts/outpost-stack");
    let chart = yaml(&read(&stack.join("Chart.yaml")));
    let values = yaml(&read(&stack.join("values.yaml")));
    let dependencies = chart["dependencies"].as_array().expect("dependencies");
    let argo = dependencies
        .iter()
        .find(|d| d["name"] == "argo-workflows")
        .expect("argo-workflows dependency");
    assert_eq!(argo["condition"], "argo-workflows.enabled");
    assert_eq!(values["argo-workflows"]["enabled"], false);
    // Review finding M6: with Argo installed here, its controller runs only Workflows that
    // reference a WorkflowTemplate, and its ConfigMap is where the outpost chart's default
    // `agent.argo.controllerConfigMap` looks (what `get` the chart grants, and on which).
    let argo_values = &values["argo-workflows"];
    assert_eq!(
        argo_values["controller"]["workflowRestrictions"]["templateReferencing"],
        "Strict"
    );
    let outpost_values = yaml(&read(&chart_dir().join("values.yaml")));
    let config_map = &outpost_values["agent"]["argo"]["controllerConfigMap"];
    assert_eq!(argo_values["namespaceOverride"], config_map["namespace"]);
    assert_eq!(
        argo_values["controller"]["configMap"]["name"],
        config_map["name"]
    );
    let outpost = dependencies
        .iter()
        .find(|d| d["name"] == "outpost")
        .expect("outpost dependency");
    assert_eq!(outpost["repository"], "file://../outpost");
    assert_eq!(
        outpost["version"],
        yaml(&read(&chart_dir().join("Chart.yaml")))["version"]
    );
    // charts/outpost itself has no dependency, so it renders offline.
    assert!(
        yaml(&read(&chart_dir().join("Chart.yaml")))
            .get("dependencies")
            .is_none()
    );
}

#[test]
fn chart_options_come_only_from_chart_values() {
    let root = repo_root();
    let fixture = root.join("crates/workflow-compiler/tests/fixtures/every-option.yaml");
    let run_outpost = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(args)
            .current_dir(&root)
            .output()
            .expect("outpost runs")
    };
    // --options and --chart would be two sources of the same options.
    let both = run_outpost(&[
        "render",
        "--check",
        "--chart",
        "charts/outpost",
        "--options",
        &fixture.display().to_string(),
    ]);
    // Two flags that cannot go together are a usage error (64), from clap.
    assert_eq!(both.status.code(), Some(64), "{}", text(&both.stderr));
    assert!(
        text(&both.stderr).contains("--options"),
        "{}",
        text(&both.stderr)
    );
    // --values without a chart has nothing to apply to.
    let dir = scratch("chart-no-chart");
    let orphan = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args([
            "render",
            "--connectors",
            &root.join("connectors").display().to_string(),
            "--values",
            &every_option_values().display().to_string(),
            "--out",
            "out",
        ])
        .current_dir(&dir)
        .output()
        .expect("outpost runs");
    assert_eq!(orphan.status.code(), Some(2), "{}", text(&orphan.stderr));
    assert!(text(&orphan.stderr).contains("--values needs a chart"));
    // A typo under `agent:` is named with its path.
    std::fs::write(
        dir.join("typo.yaml"),
        "agent:\n  proxy:\n    httpsProxyy: http://p:3128\n",
    )
    .expect("write");
    let typo = run_outpost(&[
        "render",
        "--check",
        "--values",
        &dir.join("typo.yaml").display().to_string(),
    ]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("agent.proxy"),
        "{}",
        text(&typo.stderr)
    );
}
