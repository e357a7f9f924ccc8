//! Secure defaults (security review, finding L9: "defaults are plain-HTTP control-plane URLs
//! with job signing off"). The rendered control-plane URL is https; plain http is refused
//! except to loopback or behind an explicit, loud `insecure…` option; the orchestrator and the
//! local runner refuse unsigned jobs unless told otherwise, loudly.

mod support;

use std::net::TcpListener;

use support::outpost;
use workflow_compiler::AgentOptions;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback listener that counts the connections it gets, so a refusal can be shown to
/// have sent nothing.
fn counting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    (url, count)
}

#[test]
fn l9_the_default_render_speaks_https_and_requires_signed_jobs() {
    let options = AgentOptions::default();
    assert!(
        options.control_plane.url.starts_with("https://"),
        "{}",
        options.control_plane.url
    );
    assert!(
        !options.control_plane.insecure_plain_http && !options.control_plane.insecure_unsigned_jobs
    );
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        // The orchestrator's step (its CronWorkflow only references this WorkflowTemplate).
        .join("../../workflow-templates/workflowtemplate-outpost-orchestrator.yaml");
    let orchestrator =
        std::fs::read_to_string(committed).expect("committed orchestrator WorkflowTemplate");
    assert!(
        orchestrator.contains("--control-plane-url=https://"),
        "{orchestrator}"
    );
    assert!(!orchestrator.contains("--insecure"), "{orchestrator}");

    // A plain-http URL that is not loopback does not compile, unless knowingly allowed.
    let mut options = AgentOptions::default();
    options.control_plane.url = "http://control-plane.outpost.svc:8080".to_owned();
    let descriptors = connector_descriptor::load::read_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors"),
    )
    .expect("descriptors");
    let render = |options: &AgentOptions| {
        workflow_compiler::render(workflow_compiler::RenderInput {
            descriptors: &descriptors,
            options,
            options_source: "test",
            overlays: &[],
        })
    };
    let error = render(&options)
        .expect_err("plain http refused")
        .to_string();
    assert!(error.contains("clear text"), "{error}");
    options.control_plane.insecure_plain_http = true;
    let files = render(&options).expect("allowed knowingly");
    assert!(
        files
            .iter()
            .any(|f| f.contents.contains("--insecure-plain-http")),
        "the steps are told, so that they warn"
    );
}

#[test]
fn l9_plain_http_to_a_network_address_is_refused_by_every_client() {
    let dir = support::scratch("plain-http");
    let token = dir.path().join("token");
    std::fs::write(&token, "agent-token-0123456789").expect("token");
    // 192.0.2.1 (TEST-NET-1) is never contacted: the URL is refused before any request.
    for args in [
        vec!["heartbeat", "--namespace=outpost"],
        vec![
            "report",
            "--connector=postgres",
            "--connection=c",
            "--job-id=j",
            "--run-id=r",
            "--workflow=w",
            "--status=Failed",
        ],
    ] {
        let out = outpost()
            .args(&args)
            .arg("--control-plane-url=http://192.0.2.1:8080")
            .arg("--token-file")
            .arg(&token)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(78),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("clear text"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn l9_the_orchestrator_refuses_unsigned_jobs_unless_told_otherwise() {
    let dir = support::scratch("unsigned");
    let token = dir.path().join("token");
    std::fs::write(&token, "agent-token-0123456789").expect("token");
    let (url, connections) = counting_server();
    let out = outpost()
        .args(["orchestrate", "--namespace=outpost"])
        .arg(format!("--control-plane-url={url}"))
        .arg("--token-file")
        .arg(&token)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("job signing is required"),
        "{}",
        text(&out.stderr)
    );
    // The same for local mode.
    let out = outpost()
        .args(["run", "--once", "--control-plane", &url])
        .arg("--token-file")
        .arg(&token)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("job signing is required"));
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was asked of the control plane"
    );
    // Told otherwise, it goes on, and says so.
    let out = outpost()
        .args([
            "run",
            "--once",
            "--insecure-unsigned-jobs",
            "--control-plane",
            &url,
        ])
        .arg("--token-file")
        .arg(&token)
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output()
        .expect("runs");
    assert!(
        text(&out.stderr).contains("INSECURE"),
        "{}",
        text(&out.stderr)
    );
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

/// "That option is loud in logs and in the heartbeat": a runner started with
/// `--insecure-unsigned-jobs` says so in every heartbeat the control plane stores.
#[test]
fn l9_insecure_options_are_reported_in_the_heartbeat() {
    let dir = support::scratch("insecure-heartbeat");
    let server = support::serve(dir.path());
    let run = |insecure: bool| {
        let mut command = outpost();
        command
            .args(["run", "--once", "--control-plane", &server.url])
            .arg("--token-file")
            .arg(server.agent_token())
            .env("OUTPOST_AGENT_ID", support::AGENT_ID)
            .env("XDG_STATE_HOME", dir.path().join("state"));
        if insecure {
            command.arg("--insecure-unsigned-jobs");
        } else {
            command.arg("--job-signing-key=5zDD7HtpQnKpmnv9eMi0zpN0EtNs2Pid/ntIGOIU6U0=");
        }
        let out = command.output().expect("runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    let heartbeats = || -> Vec<String> {
        let connection = rusqlite::Connection::open(&server.database).expect("open");
        let mut statement = connection
            .prepare("SELECT body FROM heartbeats ORDER BY seq")
            .expect("query");
        statement
            .query_map([], |r| r.get(0))
            .expect("rows")
            .map(|row| row.expect("row"))
            .collect()
    };
    run(false);
    let signed = heartbeats();
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert!(!signed[0].contains("insecure"), "{}", signed[0]);
    run(true);
    let all = heartbeats();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[1].contains(r#""insecureOptions":["insecureUnsignedJobs"]"#),
        "{}",
        all[1]
    );
}
