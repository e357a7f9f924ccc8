//! Security review finding M6, through the built binary: `outpost orchestrate` exits 78,
//! naming Argo's ConfigMap and the fix, and claims nothing, unless Argo's workflow controller
//! runs only Workflows that reference a WorkflowTemplate; with
//! `--insecure-allow-unrestricted-templates` it runs and warns; `outpost heartbeat` logs what
//! it found. The cluster side is the fake Kubernetes API over HTTP (a kubeconfig), the
//! control plane the reference server; no other server is needed.

mod support;

use std::path::Path;
use std::process::Output;

use argo_emulator::kube_api::{FakeKube, HttpServer};
use serde_json::json;
use support::{Scratch, Server, outpost, scratch, serve_with};

/// A control plane with one queued job, and a fake API server holding the postgres template
/// and, when given, Argo's ConfigMap.
struct Cluster {
    dir: Scratch,
    server: Server,
    kube: FakeKube,
    _api: HttpServer,
}

impl Cluster {
    fn new(name: &str, argo_config: Option<&[(&str, &str)]>) -> Self {
        let dir = scratch(&format!("m6-{name}"));
        let server = serve_with(dir.path(), "127.0.0.1:0", &[]);
        server.enqueue(
            "job-1",
            &json!({
                "id": "job-1", "runId": "r1", "connector": "postgres", "connection": "pg-prod",
                "transferMode": "direct-ingestion", "parameters": {}
            }),
        );
        let kube = FakeKube::default();
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../workflow-templates/workflowtemplate-outpost-postgres.yaml"),
        )
        .expect("template");
        kube.install_template(serde_saphyr::from_str(&template).expect("YAML"));
        if let Some(data) = argo_config {
            kube.put_config_map("argo", "workflow-controller-configmap", data);
        }
        let api = kube
            .serve_http(&dir.path().join("kubeconfig"), "outpost")
            .expect("fake API server");
        Self {
            dir,
            server,
            kube,
            _api: api,
        }
    }

    /// `outpost <subcommand>` as its CronWorkflow runs it, plus `extra`.
    fn run(&self, subcommand: &str, extra: &[&str]) -> Output {
        let mut command = outpost();
        command
            .args([subcommand, "--namespace", "outpost", "--control-plane-url"])
            .arg(&self.server.url)
            .arg("--token-file")
            .arg(self.server.agent_token())
            .arg("--agent-id")
            .arg(support::AGENT_ID)
            .args(extra)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOSTNAME", "orchestrator-m6")
            .env("RUST_LOG", "info");
        if subcommand == "orchestrate" {
            // Unsigned jobs, knowingly: signing is not what this test is about.
            command.arg("--insecure-unsigned-jobs");
        }
        command.output().expect("outpost runs")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const STRICT: &[(&str, &str)] = &[("workflowRestrictions", "templateReferencing: Strict\n")];
const UNRESTRICTED: &[(&str, &str)] = &[("parallelism", "10")];

#[test]
fn m6_orchestrate_exits_78_and_claims_nothing_when_argo_allows_inline_templates() {
    for (name, config) in [
        ("no-restriction", Some(UNRESTRICTED)),
        ("no-config-map", None),
    ] {
        let cluster = Cluster::new(name, config);
        let out = cluster.run("orchestrate", &[]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{name}: {text}");
        for needle in [
            "argo/workflow-controller-configmap",
            "templateReferencing: Strict",
            "charts/outpost-stack",
            "(exit code 78)",
        ] {
            assert!(text.contains(needle), "{name}: `{needle}` in {text}");
        }
        assert_eq!(
            cluster.server.state("job-1").0,
            "pending",
            "{name}: not claimed"
        );
        assert!(cluster.kube.workflows().is_empty(), "{name}");
    }
}

#[test]
fn m6_orchestrate_runs_when_argo_enforces_strict() {
    let cluster = Cluster::new("strict", Some(STRICT));
    let out = cluster.run("orchestrate", &[]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        !text.contains("--insecure-allow-unrestricted-templates"),
        "no override, no warning: {text}"
    );
    assert_eq!(cluster.server.state("job-1").0, "submitted");
    assert_eq!(cluster.kube.workflows().len(), 1);
}

#[test]
fn m6_the_insecure_override_runs_and_warns_on_every_tick_and_heartbeat() {
    let cluster = Cluster::new("insecure", Some(UNRESTRICTED));
    let out = cluster.run("orchestrate", &["--insecure-allow-unrestricted-templates"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("INSECURE")
            && l.contains("--insecure-allow-unrestricted-templates")
            && l.contains("argo/workflow-controller-configmap")),
        "{text}"
    );
    assert_eq!(cluster.server.state("job-1").0, "submitted");

    let out = cluster.run("heartbeat", &["--insecure-allow-unrestricted-templates"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("INSECURE")
            && l.contains("--insecure-allow-unrestricted-templates")),
        "{text}"
    );
}

#[test]
fn m6_the_heartbeat_logs_whether_argo_enforces_template_referencing() {
    for (name, config, restricts, warns) in [
        (
            "heartbeat-strict",
            Some(STRICT),
            "argo_restricts_templates=\"true\"",
            false,
        ),
        (
            "heartbeat-open",
            Some(UNRESTRICTED),
            "argo_restricts_templates=\"false\"",
            true,
        ),
    ] {
        let cluster = Cluster::new(name, config);
        let out = cluster.run("heartbeat", &[]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {text}");
        let sent = text
            .lines()
            .find(|l| l.contains("heartbeat sent"))
            .unwrap_or_else(|| panic!("{name}: no `heartbeat sent` line in {text}"));
        assert!(sent.contains(restricts), "{name}: {sent}");
        assert_eq!(
            text.lines()
                .any(|l| l.contains("WARN") && l.contains("runs any Workflow")),
            warns,
            "{name}: {text}"
        );
    }
}
