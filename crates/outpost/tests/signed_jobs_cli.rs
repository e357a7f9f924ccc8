//! Finding M1 (security issue 13) in local mode, every part a real process: control plane A
//! (`outpost control-plane serve --signing-key`) signs its jobs; control plane B, a copy
//! run by whoever holds the jobs, signs nothing and serves what it is given; `outpost run
//! --control-plane` pins A's public key. A job signed for one agent and queued on B for
//! another used to be admitted and run. Now it is rejected with its reason reported to B,
//! as are an expired job and a job whose nonce already ran here (the nonce record lives in
//! `--state-dir`, so it outlives each `run --once` process). Needs no test server: the
//! jobs read a SQLite file and deliver into a folder.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use support::{AGENT_ID, Server, outpost, serve_with, sqlite_file};

/// A scratch folder with the key pair, both control planes, a SQLite source, a bucket
/// folder and the runner's state folder.
struct Sites {
    dir: support::Scratch,
    public_key: String,
    a: Server,
    b: Server,
}

impl Sites {
    fn new(name: &str) -> Self {
        let dir = support::scratch(name);
        let key = dir.path().join("signing.key");
        let out = outpost()
            .args(["keygen", "--out"])
            .arg(&key)
            .output()
            .expect("keygen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public_key = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
        for site in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(site)).expect("site dir");
        }
        let a = serve_with(
            &dir.path().join("a"),
            "127.0.0.1:0",
            &["--signing-key".to_owned(), key.display().to_string()],
        );
        let b = serve_with(&dir.path().join("b"), "127.0.0.1:0", &[]);
        // The source: a SQLite file, named by the connection's secrets folder (where a
        // connection's fixed parameters live) and by the job.
        let db = dir.path().join("catalog.db");
        sqlite_file(&db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
        let secrets = dir.path().join("secrets").join("local-db");
        std::fs::create_dir_all(&secrets).expect("secrets");
        std::fs::write(secrets.join("path"), db.display().to_string()).expect("path");
        Self {
            dir,
            public_key,
            a,
            b,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// One poll of `server` by the local runner of agent `AGENT_ID`, pinning A's key.
    fn run_once(&self, server: &Server) -> Output {
        self.run_once_with(server, &self.state_dir())
    }

    /// [`Sites::run_once`] against B, which hands out one job it was given: the poll
    /// succeeds, and rejects it.
    fn run_once_rejecting_bs_job(&self) {
        let out = self.run_once(&self.b);
        assert!(out.status.success(), "{}", stdout(&out));
        assert!(
            stdout(&out).contains("0 succeeded, 0 failed, 1 rejected"),
            "{}",
            stdout(&out)
        );
    }

    /// [`Sites::run_once`] recording the nonces it saw in `state_dir`.
    fn run_once_with(&self, server: &Server, state_dir: &Path) -> Output {
        server
            .run_once()
            .arg("--secrets-root")
            .arg(self.dir.path().join("secrets"))
            .arg(format!(
                "--to=file://{}",
                self.dir.path().join("bucket").display()
            ))
            .arg(format!("--job-signing-key={}", self.public_key))
            .arg("--agent-id")
            .arg(AGENT_ID)
            .arg("--state-dir")
            .arg(state_dir)
            .output()
            .expect("run")
    }
}

fn job(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "runId": "r1", "connector": "sqlite", "connection": "local-db",
        "transferMode": "bucket-relay", "parameters": {}
    })
}

fn stdout(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The job ran (whatever its outcome): it was admitted, not rejected.
fn ran(server: &Server, id: &str) {
    let (state, message) = server.state(id);
    assert!(
        state == "succeeded" || state == "failed",
        "job {id} did not run: {state} {message:?}"
    );
}

fn rejected_for(server: &Server, id: &str, reason: &str) {
    let (state, message) = server.state(id);
    assert_eq!(state, "rejected", "{message:?}");
    let message = message.expect("the reason is reported");
    assert!(
        message.contains(reason),
        "expected `{reason}` in: {message}"
    );
}

#[test]
fn m1_a_job_signed_for_another_agent_is_rejected() {
    let sites = Sites::new("m1-agent");
    // The reproduction: A signs a job for agent-a; the signed job is queued on B for us.
    sites.a.enqueue_for("agent-a", "for-a", &job("job-for-a"));
    let signed = sites.a.job("job-for-a");
    assert_eq!(signed["agentId"], "agent-a");
    assert!(signed["signature"].is_string() && signed["nonce"].is_string());
    sites.b.enqueue("copied", &signed);
    sites.run_once_rejecting_bs_job();
    rejected_for(
        &sites.b,
        "job-for-a",
        &format!("signed for agent `agent-a`, and this agent is `{AGENT_ID}`"),
    );
    assert!(
        !sites.dir.path().join("bucket/local-db/job-for-a").exists(),
        "nothing was delivered"
    );

    // Control: a job A signed for this agent runs.
    sites.a.enqueue("mine", &job("job-mine"));
    let out = sites.run_once(&sites.a);
    assert!(out.status.success(), "{}", stdout(&out));
    ran(&sites.a, "job-mine");
}

#[test]
fn m1_an_expired_job_is_rejected() {
    let sites = Sites::new("m1-expired");
    // The reproduction: a job whose validity ended an hour ago, handed out now.
    let mut old = job("job-old");
    old["notAfter"] = serde_json::json!(
        humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(3600))
            .to_string()
    );
    sites.a.enqueue("old", &old);
    sites.a.enqueue("fresh", &job("job-fresh"));
    let out = sites.run_once(&sites.a);
    assert!(out.status.success(), "{}", stdout(&out));
    rejected_for(&sites.a, "job-old", "the job expired at");
    ran(&sites.a, "job-fresh");
}

#[test]
fn m1_a_replayed_nonce_is_rejected() {
    let sites = Sites::new("m1-replay");
    sites.a.enqueue("first", &job("job-1"));
    let out = sites.run_once(&sites.a);
    assert!(out.status.success(), "{}", stdout(&out));
    ran(&sites.a, "job-1");
    let record = std::fs::read_to_string(sites.state_dir().join("seen-nonces.json"))
        .expect("the nonce record");
    let signed = sites.a.job("job-1");
    let nonce = signed["nonce"].as_str().expect("nonce");
    assert!(record.contains(nonce), "{record}");

    // The reproduction: the same signed job, handed out again by B, to a new runner
    // process (the record is on disk, not in memory).
    sites.b.enqueue("replayed", &signed);
    sites.run_once_rejecting_bs_job();
    rejected_for(&sites.b, "job-1", "replayed nonce");
    rejected_for(&sites.b, "job-1", "already ran on this agent");

    // Without the record (another state folder), the replay would have run: the record is
    // what refuses it.
    let fresh_state = sites.dir.path().join("state-elsewhere");
    let c_dir = sites.dir.path().join("c");
    std::fs::create_dir_all(&c_dir).expect("dir");
    let c = serve_with(&c_dir, "127.0.0.1:0", &[]);
    c.enqueue("replayed", &signed);
    let out = sites.run_once_with(&c, &fresh_state);
    assert!(out.status.success(), "{}", stdout(&out));
    ran(&c, "job-1");
}

/// `--state-dir` is needed with a signing key, and must be usable.
#[test]
fn a_signing_key_needs_a_usable_state_folder() {
    let sites = Sites::new("m1-state");
    let file = sites.dir.path().join("not-a-folder");
    std::fs::write(&file, "x").expect("file");
    let out = sites
        .a
        .run_once()
        .arg(format!("--job-signing-key={}", sites.public_key))
        .arg("--state-dir")
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78), "{}", stdout(&out));
    assert!(stdout(&out).contains("state folder"), "{}", stdout(&out));
}
