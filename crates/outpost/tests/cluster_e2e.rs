//! End to end on a real cluster (k3d + Argo Workflows): the chart installed, the reference
//! control plane on the host reached through a selector-less Service, a PostgreSQL source in
//! the cluster, one job queued, one orchestrator tick, the connector Workflow run by Argo,
//! its exit handler reporting. Needs a cluster, so it is ignored by `cargo test`;
//! `.github/workflows/cluster-e2e.yml` runs it where one can be created:
//!
//!   OUTPOST_E2E_HOST_IP=<host address pods reach> cargo test -p outpost --test cluster_e2e -- --ignored
//!
//! Preconditions (the workflow file sets them up): `kubectl` pointing at a cluster with
//! Argo Workflows 3.7+ installed cluster-wide in namespace `argo` with
//! `workflowRestrictions.templateReferencing: Strict` in `workflow-controller-configmap`
//! (without it the orchestrator refuses to tick, review finding M6), `helm` on PATH, and the image
//! `ghcr.io/outpost-agent/outpost:<version>` loaded into the cluster's nodes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "outpost";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply(manifest: &str) {
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kubectl");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), manifest.as_bytes())
        .expect("write");
    assert!(
        child.wait().expect("wait").success(),
        "kubectl apply:\n{manifest}"
    );
}

/// Applies the object `kubectl <args> --dry-run=client -o yaml` makes: created, or updated
/// where it exists.
fn apply_made(args: &[&str]) {
    let mut args = args.to_vec();
    args.extend(["--dry-run=client", "-o", "yaml"]);
    apply(&run("kubectl", &args));
}

/// Applies the generic Secret `name` in the namespace, from `--from-literal` arguments.
fn apply_secret(name: &str, literals: &[&str]) {
    let mut args = vec!["-n", NAMESPACE, "create", "secret", "generic", name];
    args.extend(literals);
    apply_made(&args);
}

/// The reference server's process, stopped however the test ends.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn admin_get(url: &str, token: &str, path: &str) -> serde_json::Value {
    let out = run(
        "curl",
        &[
            "-fsS",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{url}{path}"),
        ],
    );
    serde_json::from_str(&out).expect("JSON")
}

#[test]
#[ignore = "needs cluster"]
fn a_job_runs_through_argo_and_reports_back() {
    let host_ip = std::env::var("OUTPOST_E2E_HOST_IP")
        .expect("OUTPOST_E2E_HOST_IP: the host address pods can reach");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("dir");
    let (agent_token, admin_token) = ("e2e-agent-token-0123456789", "e2e-admin-token-0123456789");
    std::fs::write(
        dir.path().join("tokens"),
        format!("{NAMESPACE} {agent_token}\n"),
    )
    .expect("tokens");
    std::fs::write(dir.path().join("admin"), format!("{admin_token}\n")).expect("admin");

    // The reference control plane, on the host.
    let _server = ServerProcess(
        Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args([
                "control-plane",
                "serve",
                "--listen",
                "0.0.0.0:18080",
                "--tokens",
            ])
            .arg(dir.path().join("tokens"))
            .arg("--admin-token-file")
            .arg(dir.path().join("admin"))
            .arg("--database")
            .arg(dir.path().join("cp.db"))
            .stdout(Stdio::null())
            .spawn()
            .expect("server"),
    );
    let url = "http://127.0.0.1:18080/";

    apply_made(&["create", "namespace", NAMESPACE]);
    apply_secret(
        "outpost-control-plane-token",
        &[&format!("--from-literal=token={agent_token}")],
    );
    apply_secret(
        "outpost-source-pg-e2e",
        &[
            "--from-literal=password=e2e-source-password",
            // Where the password may go is the connection's, not the job's.
            "--from-literal=host=pg-e2e",
            "--from-literal=database=postgres",
            "--from-literal=user=postgres",
            "--from-literal=ssl-mode=disable",
        ],
    );
    // The control plane's default URL is http://outpost-control-plane:8080: a Service whose
    // endpoint is the host.
    apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: outpost-control-plane, namespace: {NAMESPACE}}}\nspec: {{ports: [{{port: 8080, targetPort: 18080}}]}}\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {{name: outpost-control-plane, namespace: {NAMESPACE}}}\nsubsets: [{{addresses: [{{ip: {host_ip}}}], ports: [{{port: 18080}}]}}]\n"
    ));
    // A PostgreSQL source in the cluster.
    apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: pg-e2e, namespace: {NAMESPACE}, labels: {{app: pg-e2e}}}}\nspec:\n  containers:\n  - name: pg\n    image: postgres:15\n    env: [{{name: POSTGRES_PASSWORD, value: e2e-source-password}}]\n    ports: [{{containerPort: 5432}}]\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: pg-e2e, namespace: {NAMESPACE}}}\nspec: {{selector: {{app: pg-e2e}}, ports: [{{port: 5432}}]}}\n"
    ));
    run(
        "kubectl",
        &[
            "-n",
            NAMESPACE,
            "wait",
            "--for=condition=Ready",
            "pod/pg-e2e",
            "--timeout=180s",
        ],
    );
    // The chart, with egress opened to the in-cluster source and the host's control plane.
    let chart = root.join("charts/outpost");
    let values = dir.path().join("e2e-values.yaml");
    std::fs::write(
        &values,
        serde_json::json!({ "networkPolicy": {
            "controlPlane": [{ "cidr": format!("{host_ip}/32"), "ports": [{ "port": 18080 }] }],
            "sources": [{ "podSelector": { "matchLabels": { "app": "pg-e2e" } }, "ports": [{ "port": 5432 }] }]
        }})
        .to_string(),
    )
    .expect("values");
    run(
        "helm",
        &[
            "upgrade",
            "--install",
            "outpost",
            chart.to_str().expect("path"),
            "-n",
            NAMESPACE,
            "-f",
            values.to_str().expect("path"),
        ],
    );

    let job = serde_json::json!({
        "agentId": NAMESPACE,
        "job": {
            "id": "e2e-job-1", "runId": "e2e-run-1", "connector": "postgres", "connection": "pg-e2e",
            "transferMode": "direct-ingestion",
            "parameters": { "include-schemas": "^public$" }
        }
    });
    run(
        "curl",
        &[
            "-fsS",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {admin_token}"),
            "-H",
            "content-type: application/json",
            "-d",
            &job.to_string(),
            &format!("{url}admin/v1/jobs"),
        ],
    );

    // One orchestrator tick now, rather than waiting for the schedule.
    let cron: serde_json::Value = serde_json::from_str(&run(
        "kubectl",
        &[
            "-n",
            NAMESPACE,
            "get",
            "cronworkflow",
            "outpost-orchestrator",
            "-o",
            "json",
        ],
    ))
    .expect("json");
    let tick = serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": { "generateName": "outpost-orchestrator-e2e-", "namespace": NAMESPACE,
                      "labels": cron["spec"]["workflowSpec"]["workflowMetadata"]["labels"] },
        "spec": cron["spec"]["workflowSpec"]
    });
    let mut create = Command::new("kubectl")
        .args(["create", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kubectl");
    std::io::Write::write_all(
        create.stdin.as_mut().expect("stdin"),
        tick.to_string().as_bytes(),
    )
    .expect("write");
    assert!(create.wait().expect("wait").success());

    // The job goes pending → claimed → submitted → running? → succeeded or failed, with logs.
    let deadline = Instant::now() + Duration::from_secs(600);
    let record = loop {
        let records = admin_get(url, admin_token, "admin/v1/jobs");
        let record = records["jobs"][0].clone();
        let state = record["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ["succeeded", "failed", "rejected"].contains(&state.as_str())
            || Instant::now() > deadline
        {
            break record;
        }
        std::thread::sleep(Duration::from_secs(5));
    };
    assert_eq!(record["status"]["state"], "succeeded", "{record:#}");
    let workflow = record["status"]["workflow"]
        .as_str()
        .expect("workflow name");
    assert!(workflow.starts_with("outpost-postgres-"));
    // Exactly one connector Workflow exists for the job.
    let workflows = run(
        "kubectl",
        &[
            "-n",
            NAMESPACE,
            "get",
            "workflows",
            "-l",
            "outpost.dev/job-id=e2e-job-1",
            "-o",
            "name",
        ],
    );
    assert_eq!(workflows.lines().count(), 1, "{workflows}");
}
