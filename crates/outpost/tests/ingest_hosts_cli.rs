//! Finding M2 (security issue 13) through the binary: `outpost upload` took whatever upload
//! URLs and headers the control plane handed out, loopback over http included. Now only
//! https to `--ingest-host` names is used, loopback only with `--allow-loopback-ingest`,
//! and credential headers never. The first test replays the reproduction with the real
//! reference control plane signing URLs for s3s-fs on 127.0.0.1 (scripts/services.sh); the
//! second with a URL file and a loopback listener that records what reaches it.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use metadata_extract::EntityKind;
use metadata_extract::writer::{FileEntry, Manifest, RunIdentity};
use sha2::Digest as _;
use support::{env, outpost, serve};

/// A run folder of `pg-prod/j1/r1` with two small data files and their manifest.
fn write_run(dir: &Path, job: &str) -> PathBuf {
    let run = dir.join("run");
    let mut files = Vec::new();
    for (i, name) in [
        "tables/part-00000.ndjson.zst",
        "columns/part-00000.ndjson.zst",
    ]
    .iter()
    .enumerate()
    {
        let content = format!("{{\"n\":{i}}}\n").repeat(50);
        let path = run.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &content).expect("write");
        files.push(FileEntry {
            path: (*name).to_owned(),
            kind: EntityKind::Table,
            sha256: metadata_extract::writer::hex(&sha2::Sha256::digest(content.as_bytes())),
            bytes: content.len() as u64,
            records: 50,
        });
    }
    let manifest = Manifest {
        format_version: "1".to_owned(),
        outpost_version: "test".to_owned(),
        identity: RunIdentity {
            connector: "postgres".to_owned(),
            connection: Some("pg-prod".to_owned()),
            job_id: Some(job.to_owned()),
            run_id: Some("r1".to_owned()),
        },
        started_at: "2026-11-26T00:00:00Z".to_owned(),
        finished_at: "2026-11-26T00:00:01Z".to_owned(),
        files,
        totals: BTreeMap::new(),
        skipped: Vec::new(),
        incomplete: Vec::new(),
        signature: None,
        queries: Vec::new(),
        exports: Vec::new(),
    };
    std::fs::write(
        run.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("manifest");
    run
}

fn upload(run: &Path, job: &str) -> std::process::Command {
    let mut command = outpost();
    command
        .args([
            "upload",
            "--direct",
            "--connector=postgres",
            "--connection=pg-prod",
        ])
        .arg(format!("--job-id={job}"))
        .arg("--run-id=r1")
        .arg("--from")
        .arg(run);
    command
}

#[test]
fn m2_private_and_loopback_ingest_urls_are_refused() {
    let scratch = support::scratch("m2-loopback");
    let server = serve(scratch.path());
    // The control plane hands out URLs for its ingestion bucket: s3s-fs on 127.0.0.1, http.
    let job = format!("m2-job-{}", std::process::id());
    server.enqueue(
        "m2",
        &serde_json::json!({
            "id": job, "runId": "r1", "connector": "postgres", "connection": "pg-prod",
            "transferMode": "direct-ingestion", "parameters": {}
        }),
    );
    // The agent's claim, as the orchestrator makes before a run is submitted.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let url = url::Url::parse(&server.url).expect("url");
            let config = control_plane::ClientConfig::new(url, server.agent_token());
            control_plane::ControlPlaneClient::new(config)
                .expect("client")
                .claim(&job, "m2-test", std::time::Duration::from_secs(600))
                .await
                .expect("claim")
        });
    let run = write_run(scratch.path(), &job);
    let delivered = PathBuf::from(env("OUTPOST_TEST_S3_DIR"))
        .join(env("OUTPOST_TEST_S3_BUCKET"))
        .join(format!("ingest-{}", std::process::id()))
        .join("pg-prod")
        .join(&job)
        .join("r1");
    let through_control_plane = |extra: &[&str]| {
        upload(&run, &job)
            .arg(format!("--control-plane-url={}", server.url))
            .arg("--token-file")
            .arg(server.agent_token())
            .args(extra)
            .output()
            .expect("upload runs")
    };

    // The reproduction: loopback http URLs from the control plane, no opt-in.
    let out = through_control_plane(&["--ingest-host=ingest.catalog.example.com"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("a loopback address") && stderr.contains("nothing was uploaded"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("X-Amz-Signature"),
        "no credential shown: {stderr}"
    );
    assert!(!delivered.exists(), "something reached the store");

    // Control: with the explicit opt-in (as the test suites run), the same URLs work, and
    // the opt-in is logged loudly.
    let out = through_control_plane(&["--allow-loopback-ingest"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("LOOPBACK INGEST URLS ALLOWED"), "{stderr}");
    assert!(
        delivered.join("manifest.json").is_file(),
        "delivered to s3s-fs"
    );
}

/// A loopback HTTP server answering 200 to everything, recording each request's head.
fn listener() -> (u16, Arc<Mutex<Vec<String>>>) {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in socket.incoming() {
            let Ok(stream) = stream else { return };
            let recorded = Arc::clone(&recorded);
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut head = String::new();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim().is_empty() {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    recorded.lock().expect("lock").push(head);
                    if writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

#[test]
fn m2_an_authorization_header_from_the_control_plane_is_refused() {
    let scratch = support::scratch("m2-headers");
    let run = write_run(scratch.path(), "j1");
    let (port, seen) = listener();
    // An upload through a URL file whose every URL asks for `headers`.
    let upload_with = |headers: serde_json::Value| {
        let expires = humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() + std::time::Duration::from_secs(600),
        )
        .to_string();
        let set: serde_json::Map<String, serde_json::Value> = [
            "tables/part-00000.ndjson.zst",
            "columns/part-00000.ndjson.zst",
            "manifest.json",
        ]
        .iter()
        .map(|path| {
            (
                (*path).to_owned(),
                serde_json::json!({
                    "url": format!("http://127.0.0.1:{port}/ingest/{path}?X-Amz-Signature=1"),
                    "method": "PUT", "headers": headers, "expiresAt": expires
                }),
            )
        })
        .collect();
        let file = scratch.path().join("urls.json");
        std::fs::write(&file, serde_json::Value::Object(set).to_string()).expect("urls");
        upload(&run, "j1")
            .arg("--urls")
            .arg(&file)
            .arg("--allow-loopback-ingest")
            .output()
            .expect("upload runs")
    };

    // The reproduction: the URL set asks for the agent's token as a header.
    let out = upload_with(serde_json::json!({ "Authorization": "Bearer agent-token-abcdef0123" }));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("header `Authorization` may not come from the control plane"),
        "{stderr}"
    );
    assert!(!stderr.contains("agent-token-abcdef0123"), "{stderr}");
    assert!(seen.lock().expect("lock").is_empty(), "a request was sent");

    // Control: a store header is fine, and every file reaches the listener.
    let out = upload_with(serde_json::json!({ "x-ms-blob-type": "BlockBlob" }));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|head| head.contains("x-ms-blob-type: BlockBlob")
                && !head.to_ascii_lowercase().contains("authorization")),
        "{seen:?}"
    );
}
