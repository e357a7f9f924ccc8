//! Shared by the binary's integration tests: the built binary, the servers
//! `scripts/services.sh` started, the reference control plane as a process.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A variable `scripts/services.sh` exports; a clear panic when the tests run without it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through ./scripts/test.sh, which starts the servers and exports it")
    })
}

/// The built `outpost` binary.
pub fn outpost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
}

/// A SQLite file at `path` holding what `sql` creates.
pub fn sqlite_file(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .and_then(|c| c.execute_batch(sql))
        .expect("the SQLite fixture");
}

/// `outpost extract` of the SQLite file `db` into `out` as job `j1`, run `r1` of
/// `connection`, with `extra` arguments; it must succeed.
pub fn extract_sqlite(db: &Path, out: &Path, connection: &str, extra: &[&str]) {
    let run = outpost()
        .args(["extract", "--connector=sqlite"])
        .arg(format!("--param=path={}", db.display()))
        .args(extra)
        .arg(format!("--connection={connection}"))
        .args(["--job-id=j1", "--run-id=r1"])
        .arg(format!("--out={}", out.display()))
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// A scratch folder, removed when dropped (a failing test's too); usable as a `Path`.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    /// The folder.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh scratch folder named after the test (`outpost-<prefix>-…` in the temp folder).
pub fn scratch(prefix: &str) -> Scratch {
    Scratch(
        tempfile::Builder::new()
            .prefix(&format!("outpost-{prefix}-"))
            .tempdir()
            .expect("scratch folder"),
    )
}

/// The reference control plane, `outpost control-plane serve`, as a process.
pub struct Server {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// Its SQLite database.
    pub database: PathBuf,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent id and token `serve` registers.
pub const AGENT_ID: &str = "local-1";
const AGENT_TOKEN: &str = "agent-token-abcdef0123";

/// Serves the reference control plane from `dir` (tokens, database), signing direct-ingestion
/// URLs for the test S3 store (s3s-fs, which checks every signature). `listen` is
/// `127.0.0.1:0` for any port, or the address of a server being restarted.
pub fn serve_on(dir: &Path, listen: &str) -> Server {
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
    let mut ingest = vec![
        format!(
            "--ingest-bucket=s3://{}/ingest-{}",
            env("OUTPOST_TEST_S3_BUCKET"),
            std::process::id()
        ),
        format!("--ingest-endpoint={}", env("OUTPOST_TEST_S3_ENDPOINT")),
        "--ingest-region=us-east-1".to_owned(),
        "--ingest-credentials-dir".to_owned(),
    ];
    ingest.push(credentials.display().to_string());
    serve_with(dir, listen, &ingest)
}

/// Serves the reference control plane from `dir` on `listen` with `extra` arguments (no
/// ingestion bucket unless they name one; no test server needed).
pub fn serve_with(dir: &Path, listen: &str, extra: &[String]) -> Server {
    std::fs::write(dir.join("tokens"), format!("{AGENT_ID} {AGENT_TOKEN}\n")).expect("tokens");
    std::fs::write(dir.join("admin-token"), "admin-token-abcdef0123\n").expect("admin");
    std::fs::write(dir.join("agent-token"), format!("{AGENT_TOKEN}\n")).expect("agent token");
    let database = dir.join("control-plane.db");
    let mut child = outpost()
        .args(["control-plane", "serve", "--listen", listen, "--tokens"])
        .arg(dir.join("tokens"))
        .arg("--admin-token-file")
        .arg(dir.join("admin-token"))
        .arg("--database")
        .arg(&database)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let url = listening_url(&mut child);
    Server {
        child,
        url,
        database,
        dir: dir.to_owned(),
    }
}

/// The URL `outpost control-plane serve` prints first (`listening on http://…`).
pub fn listening_url(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line `{line}`"))
        .to_owned()
}

/// [`serve_on`] any free port.
pub fn serve(dir: &Path) -> Server {
    serve_on(dir, "127.0.0.1:0")
}

impl Server {
    /// The agent token's file.
    pub fn agent_token(&self) -> PathBuf {
        self.dir.join("agent-token")
    }

    /// `outpost run --once` against this control plane, with the agent token.
    pub fn run_once(&self) -> Command {
        let mut command = outpost();
        command
            .args(["run", "--once", "--control-plane", &self.url])
            .arg("--token-file")
            .arg(self.agent_token());
        command
    }

    /// [`Server::run_once`] taking unsigned jobs, knowingly (signing has its own tests,
    /// signed_jobs_cli.rs), with the connections' folders in `secrets` and relaying to the
    /// folder `bucket`.
    pub fn run_unsigned(&self, secrets: &Path, bucket: &Path) -> Command {
        let mut command = self.run_once();
        command
            .arg("--insecure-unsigned-jobs")
            .arg("--secrets-root")
            .arg(secrets)
            .arg(format!("--to=file://{}", bucket.display()));
        command
    }

    /// Stops the server (the database stays).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same address, with the same database.
    pub fn restart(&mut self) {
        self.stop();
        let listen = self
            .url
            .strip_prefix("http://")
            .expect("an http URL")
            .to_owned();
        // The port was just freed; binding it again can race the kernel for a moment.
        for _ in 0..50 {
            let server = std::panic::catch_unwind(|| serve_on(&self.dir, &listen));
            if let Ok(mut server) = server {
                std::mem::swap(self, &mut server);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the control plane did not restart on {listen}");
    }

    /// Queues `job` for [`AGENT_ID`] with `outpost control-plane enqueue`.
    pub fn enqueue(&self, name: &str, job: &serde_json::Value) {
        self.enqueue_for(AGENT_ID, name, job);
    }

    /// Queues `job` for `agent` with `outpost control-plane enqueue`.
    pub fn enqueue_for(&self, agent: &str, name: &str, job: &serde_json::Value) {
        let file = self.dir.join(format!("{name}.json"));
        std::fs::write(&file, job.to_string()).expect("job file");
        let out = outpost()
            .args([
                "control-plane",
                "enqueue",
                "--url",
                &self.url,
                "--agent-id",
                agent,
            ])
            .arg("--admin-token-file")
            .arg(self.dir.join("admin-token"))
            .arg(&file)
            .output()
            .expect("enqueue runs");
        assert!(
            out.status.success(),
            "enqueue: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The job `id` as the control plane hands it out (signed, when it signs).
    pub fn job(&self, id: &str) -> serde_json::Value {
        let connection = rusqlite::Connection::open(&self.database).expect("open");
        let body: String = connection
            .query_row("SELECT body FROM jobs WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .unwrap_or_else(|e| panic!("no job `{id}`: {e}"));
        serde_json::from_str(&body).expect("JSON job")
    }

    /// Every job's (id, state, message), read from the database.
    pub fn states(&self) -> Vec<(String, String, Option<String>)> {
        let connection = rusqlite::Connection::open(&self.database).expect("open");
        let mut statement = connection
            .prepare("SELECT id, state, message FROM jobs ORDER BY seq")
            .expect("query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("rows")
            .map(|row| row.expect("row"))
            .collect()
    }

    /// One job's state and message.
    pub fn state(&self, id: &str) -> (String, Option<String>) {
        self.states()
            .into_iter()
            .find(|s| s.0 == id)
            .map(|(_, state, message)| (state, message))
            .unwrap_or_else(|| panic!("no job `{id}`"))
    }

    /// Every log body the control plane received.
    pub fn logs(&self) -> Vec<String> {
        let connection = rusqlite::Connection::open(&self.database).expect("open");
        let mut statement = connection.prepare("SELECT body FROM logs").expect("q");
        statement
            .query_map([], |r| r.get(0))
            .expect("rows")
            .map(|row| row.expect("row"))
            .collect()
    }

    /// The bytes of the control plane's files (database and WAL): everything it holds.
    pub fn files(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(&self.dir)
            .expect("dir")
            .filter_map(Result::ok)
        {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("control-plane.db")
            {
                bytes.extend(std::fs::read(entry.path()).expect("read"));
            }
        }
        bytes
    }
}

/// Runs SQL on the test PostgreSQL as its superuser.
pub fn psql(sql: &str) {
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

/// Whether `needle` occurs in `haystack`, byte for byte.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Runs statements on the Snowflake emulator (fakesnow, `OUTPOST_TEST_SNOWFLAKE_URL`), one at
/// a time, through Outpost's own Snowflake client (fakesnow checks no credential).
pub fn snowflake(statements: &[&str]) {
    use metadata_extract::http::Retry;
    use metadata_extract::sources::snowflake::auth::Credential;
    use metadata_extract::sources::snowflake::client::{Connection, Session};
    delivery::install_crypto_provider();
    let connection = Connection {
        base_url: env("OUTPOST_TEST_SNOWFLAKE_URL"),
        account: "outpost-e2e".into(),
        user: "admin".into(),
        role: None,
        warehouse: None,
        credential: Credential::Password(metadata_extract::SourceSecret::new("unused")),
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("HTTP client"),
        query_timeout: std::time::Duration::from_secs(60),
        retry: Retry::default(),
        heartbeat: None,
        audit: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let session = Session::open(std::sync::Arc::new(connection))
            .await
            .expect("fakesnow answers a login");
        for sql in statements {
            session
                .query(sql, |_| Ok(()))
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        session.close().await;
    });
}

/// Runs SQL on the test MariaDB as its admin user (the `mariadb` client of scripts/services.sh).
pub fn mysql(sql: &str) {
    let out = Command::new("mariadb")
        .args([
            "--protocol=tcp",
            "-h",
            &env("OUTPOST_TEST_MYSQL_HOST"),
            "-P",
            &env("OUTPOST_TEST_MYSQL_PORT"),
            "-u",
            &env("OUTPOST_TEST_MYSQL_ADMIN"),
            "-e",
            sql,
        ])
        .env("MYSQL_PWD", env("OUTPOST_TEST_MYSQL_PASSWORD"))
        .output()
        .expect("mariadb runs");
    assert!(
        out.status.success(),
        "mariadb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Tableau fake serving `model` (the site `site`), signed into with the token `token`
/// and `secret`, and the connection folder (`connection/` under `dir`) a WorkflowTemplate
/// would mount for it. Keep the runtime: the fake serves on it.
pub fn tableau_site(
    dir: &Path,
    site: &str,
    model: tableau_fake::SiteModel,
    token: &str,
    secret: &str,
) -> (tokio::runtime::Runtime, tableau_fake::TableauFake, PathBuf) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(tableau_fake::TableauFake::start(
        model,
        token,
        secret,
        tableau_fake::Faults::default(),
    ));
    let connection = dir.join("connection");
    std::fs::create_dir_all(&connection).expect("connection");
    for (name, value) in [
        ("host", "127.0.0.1"),
        ("port", fake.url.rsplit(':').next().expect("port")),
        ("site", site),
        ("ssl-mode", "disable"),
        ("pat-name", token),
        ("pat-secret", secret),
    ] {
        std::fs::write(connection.join(name), value).expect("connection value");
    }
    (runtime, fake, connection)
}
