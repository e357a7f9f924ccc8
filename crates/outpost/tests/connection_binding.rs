//! Credentials are bound to their connection (security review, issue 13): a job chose the
//! connection (so which password is mounted) and, independently, `host`, `port` and
//! `ssl-mode`, and `pg-prod`'s password went in cleartext to a fake PostgreSQL server on
//! loopback. Now where a connection's credentials may go is fixed by the connection itself
//! (its Secret in a cluster, its folder in local mode); a job naming any of it is rejected.
//!
//! The fake server asks for a cleartext password (PostgreSQL's `AuthenticationCleartextPassword`)
//! and records every byte it receives, so it would catch the password if it were sent.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use support::{contains, env, psql, serve};

/// A fake PostgreSQL server that asks every client for its password in cleartext.
struct FakePostgres {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
}

impl FakePostgres {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let received: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let read_message = |stream: &mut std::net::TcpStream, typed: bool| {
                        let mut head = vec![0u8; if typed { 5 } else { 4 }];
                        stream.read_exact(&mut head).ok()?;
                        let length = u32::from_be_bytes(head[head.len() - 4..].try_into().ok()?);
                        let mut body = vec![0u8; (length as usize).saturating_sub(4)];
                        stream.read_exact(&mut body).ok()?;
                        let mut all = sink.lock().expect("lock");
                        all.extend(&head);
                        all.extend(&body);
                        Some(body)
                    };
                    // Startup, or first an SSLRequest (answered "no TLS").
                    let Some(mut startup) = read_message(&mut stream, false) else {
                        return;
                    };
                    if startup.get(..4) == Some(&[0x04, 0xd2, 0x16, 0x2f]) {
                        let _ = stream.write_all(b"N");
                        let Some(next) = read_message(&mut stream, false) else {
                            return;
                        };
                        startup = next;
                    }
                    drop(startup);
                    // AuthenticationCleartextPassword: the client answers with the password.
                    let _ = stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
                    let _ = read_message(&mut stream, true);
                });
            }
        });
        Self { port, received }
    }

    fn received(&self) -> Vec<u8> {
        self.received.lock().expect("lock").clone()
    }
}

/// A connection's folder: its password and where the password may go.
fn connection(dir: &Path, host: &str, port: &str, user: &str, password: &str, ssl: &str) {
    std::fs::create_dir_all(dir).expect("connection folder");
    for (key, value) in [
        ("host", host),
        ("port", port),
        ("database", "postgres"),
        ("user", user),
        ("ssl-mode", ssl),
        ("password", password),
    ] {
        std::fs::write(dir.join(key), value).expect("connection value");
    }
}

#[test]
fn a_fake_source_receives_no_password_unless_the_connection_itself_points_to_it() {
    let scratch = support::scratch("binding");
    let dir = scratch.path();
    let pid = std::process::id();
    let role = format!("binding_{pid}");
    let password = format!("CANARY-PG-PROD-{pid}-5e1f");
    let decoy_password = format!("CANARY-DECOY-{pid}-9b0c");
    psql(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
    ));
    let fake = FakePostgres::start();
    let fake_port = fake.port.to_string();
    let secrets = dir.join("connections");
    // pg-prod is bound to the real server; pg-decoy is a connection whose own folder points
    // at the fake (the positive control: the fake does catch a password sent to it).
    connection(
        &secrets.join("pg-prod"),
        &env("OUTPOST_TEST_PG_HOST"),
        &env("OUTPOST_TEST_PG_PORT"),
        &role,
        &password,
        "require",
    );
    connection(
        &secrets.join("pg-decoy"),
        "127.0.0.1",
        &fake_port,
        "decoy",
        &decoy_password,
        "disable",
    );
    let server = serve(dir);
    // The review's reproduction: pg-prod's credentials pointed at the fake by the job.
    server.enqueue(
        "redirect",
        &serde_json::json!({
            "id": "job-redirect", "runId": "r1", "connector": "postgres", "connection": "pg-prod",
            "transferMode": "bucket-relay",
            "parameters": { "host": "127.0.0.1", "port": fake.port, "ssl-mode": "disable" }
        }),
    );
    // The same connection, as a job may use it: only filters.
    server.enqueue(
        "legit",
        &serde_json::json!({
            "id": "job-legit", "runId": "r1", "connector": "postgres", "connection": "pg-prod",
            "transferMode": "bucket-relay", "parameters": { "include-schemas": "^public$" }
        }),
    );
    server.enqueue(
        "decoy",
        &serde_json::json!({
            "id": "job-decoy", "runId": "r1", "connector": "postgres", "connection": "pg-decoy",
            "transferMode": "bucket-relay", "parameters": {}
        }),
    );
    let run = server
        .run_unsigned(&secrets, &dir.join("bucket"))
        .env("OUTPOST_AGENT_ID", support::AGENT_ID)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);

    let (state, message) = server.state("job-redirect");
    assert_eq!(state, "rejected", "{stdout}\n{stderr}");
    let message = message.unwrap_or_default();
    for field in ["host", "port", "ssl-mode"] {
        assert!(
            message.contains(&format!("parameter `{field}` is fixed by the connection")),
            "the reason names `{field}`: {message}"
        );
    }
    assert_eq!(
        server.state("job-legit").0,
        "succeeded",
        "{stdout}\n{stderr}"
    );
    // The decoy connection's own folder points at the fake, so the fake gets its password…
    let received = fake.received();
    assert!(
        contains(&received, &decoy_password),
        "the fake catches a password sent to it ({} bytes received)",
        received.len()
    );
    // …and never pg-prod's.
    assert!(
        !contains(&received, &password),
        "pg-prod's password reached the fake"
    );
    assert!(
        !contains(&received, &role),
        "pg-prod's login reached the fake"
    );
    psql(&format!("DROP ROLE IF EXISTS {role}"));
}
