//! M4 of the security review (issue 13): a 300 MB `/v1/jobs` answer drove `outpost
//! orchestrate` to 697 MB of memory; its pod's limit is 64 Mi. Here the built binary runs
//! one tick against a hostile control plane on loopback (a fake Kubernetes API serves the
//! cluster side) and its peak resident memory is measured by `/usr/bin/time -v` (or, where
//! that is missing, by sampling the process's `VmHWM`), printed, and held under 64 MiB.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use argo_emulator::kube_api::FakeKube;
use control_plane::test_support::raw_http_server;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const LIMIT_MIB: f64 = 64.0;

/// What the hostile control plane sends for `GET /v1/jobs`.
#[derive(Clone, Copy)]
enum Hostile {
    /// A million jobs of 300 bytes each.
    ManyJobs,
    /// One job with a 300 MB string in it.
    OneHugeJob,
    /// No job: the baseline the figures compare with.
    Empty,
}

const TOTAL: u64 = 300_000_000;

/// Answers `GET /v1/jobs` with 300 MB, every claim with `409 leased` (so the tick leaves
/// each job), anything else with 404; counts the list bytes it got out.
async fn hostile_control_plane(kind: Hostile) -> (String, Arc<AtomicU64>) {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let address = raw_http_server(move |mut stream, head| {
        let counter = Arc::clone(&counter);
        async move {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
            if head.starts_with("GET /v1/jobs") {
                let _ = send_list(&mut stream, kind, &counter).await;
            } else {
                let (status, code) = if head.contains("/claim ") {
                    ("409 Conflict", "leased")
                } else {
                    ("404 Not Found", "not-found")
                };
                let body = format!(
                    "{{\"error\":{{\"code\":\"{code}\",\"message\":\"hostile test server\"}}}}"
                );
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        }
    })
    .await;
    (format!("http://{address}"), sent)
}

async fn send_list(
    stream: &mut tokio::net::TcpStream,
    kind: Hostile,
    counter: &AtomicU64,
) -> std::io::Result<()> {
    if let Hostile::Empty = kind {
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"jobs\":[]}";
        return stream.write_all(answer.as_bytes()).await;
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {TOTAL}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut left = TOTAL;
    let mut i = 0u64;
    let mut first = true;
    while left > 0 {
        let mut chunk = Vec::with_capacity(64 << 10);
        if first {
            first = false;
            chunk.extend_from_slice(match kind {
                Hostile::ManyJobs => b"{\"jobs\":[".as_slice(),
                Hostile::OneHugeJob | Hostile::Empty => {
                    b"{\"jobs\":[{\"id\":\"huge\",\"pad\":\"".as_slice()
                }
            });
        }
        match kind {
            Hostile::ManyJobs => {
                while chunk.len() < 64 << 10 {
                    chunk.extend_from_slice(
                        format!(
                            "{}{{\"id\":\"job-{i:08}\",\"runId\":\"run-{i:08}\",\"connector\":\"postgres\",\"connection\":\"pg-prod\",\"transferMode\":\"direct-ingestion\",\"parameters\":{{}},\"pad\":\"{}\"}}",
                            if i == 0 { "" } else { "," },
                            "p".repeat(150)
                        )
                        .as_bytes(),
                    );
                    i += 1;
                }
            }
            Hostile::OneHugeJob | Hostile::Empty => chunk.resize(64 << 10, b'x'),
        }
        // The answer is cut at its announced length; the client stops long before.
        chunk.truncate(left.min(chunk.len() as u64) as usize);
        left -= chunk.len() as u64;
        stream.write_all(&chunk).await?;
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Runs `outpost orchestrate` against `control_plane`; answers its exit code, peak RSS in
/// KiB, and how it was measured.
fn orchestrate(
    dir: &Path,
    control_plane: &str,
    kubeconfig: &Path,
) -> (Option<i32>, u64, &'static str) {
    let token = dir.join("token");
    std::fs::write(&token, "agent-token-memory-0123\n").expect("token");
    let args = |command: &mut Command| {
        command
            .args([
                "orchestrate",
                "--namespace",
                "outpost",
                "--control-plane-url",
            ])
            .arg(control_plane)
            .arg("--token-file")
            .arg(&token)
            // Unsigned, knowingly: without a key (or this) the tick would refuse to poll.
            .arg("--insecure-unsigned-jobs")
            .env("KUBECONFIG", kubeconfig)
            .env("HOSTNAME", "orchestrator-memory-test")
            .stdout(Stdio::null());
    };
    let time = Path::new("/usr/bin/time");
    if time.exists() {
        let mut command = Command::new(time);
        command.arg("-v").arg(env!("CARGO_BIN_EXE_outpost"));
        args(&mut command);
        let out = command.stderr(Stdio::piped()).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let kib = stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes):")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or_else(|| panic!("no peak RSS in /usr/bin/time's report: {stderr}"));
        return (out.status.code(), kib, "/usr/bin/time -v");
    }
    // Without GNU time: VmHWM (the peak so far) read until the process exits.
    let mut command = Command::new(env!("CARGO_BIN_EXE_outpost"));
    args(&mut command);
    let mut child = command.stderr(Stdio::null()).spawn().expect("runs");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code(), peak, "VmHWM sampled every 2 ms");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn m4_orchestrate_stays_under_64_mib_against_a_300_mb_job_list() {
    let dir = support::scratch("orchestrate-memory");
    let kubeconfig = dir.path().join("kubeconfig");
    let kube = FakeKube::default();
    // Argo runs only Workflows that reference a WorkflowTemplate: without that the tick
    // refuses to run at all (review finding M6).
    kube.put_config_map(
        "argo",
        "workflow-controller-configmap",
        &[("workflowRestrictions", "templateReferencing: Strict\n")],
    );
    let _api = kube
        .serve_http(&kubeconfig, "outpost")
        .expect("fake API server");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (url, _) = runtime.block_on(hostile_control_plane(Hostile::Empty));
    let (code, baseline, how) = orchestrate(dir.path(), &url, &kubeconfig);
    assert_eq!(code, Some(0), "an empty list");
    eprintln!(
        "outpost orchestrate against an empty job list: peak RSS {:.1} MiB ({how})",
        baseline as f64 / 1024.0
    );
    for (kind, name) in [
        (Hostile::ManyJobs, "a million 300-byte jobs"),
        (Hostile::OneHugeJob, "one 300 MB job"),
    ] {
        let (url, sent) = runtime.block_on(hostile_control_plane(kind));
        let (code, kib, how) = orchestrate(dir.path(), &url, &kubeconfig);
        std::thread::sleep(Duration::from_millis(200));
        let mib = kib as f64 / 1024.0;
        let bytes = sent.load(Ordering::Relaxed);
        eprintln!(
            "outpost orchestrate against a 300 MB job list ({name}): peak RSS {mib:.1} MiB ({how}; limit {LIMIT_MIB} MiB); the server got {:.1} MB out before the client stopped reading",
            bytes as f64 / 1e6
        );
        // Every listed job was left (each claim refused), so the tick succeeds.
        assert_eq!(code, Some(0), "{name}");
        assert!(mib < LIMIT_MIB, "{name}: peak RSS {mib:.1} MiB");
        assert!(bytes < TOTAL / 2, "{name}: {bytes} bytes were read");
    }
}
