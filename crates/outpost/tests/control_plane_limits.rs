//! The reference server's network edges, against the `outpost control-plane serve` process
//! (security review, issue 13): slow clients are cut off while others are served (M3), the
//! connection cap refuses at once rather than hanging (M3), and a tokens file whose comment
//! would have been a token stops the server at start, naming the file and line (L2). No
//! external services are needed: the server runs without an ingestion bucket.

mod support;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{outpost, scratch};

const AGENT_TOKEN: &str = "agent-token-limits-0123";

/// `outpost control-plane serve` on a free loopback port; killed when dropped.
struct Serve {
    child: Child,
    address: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_tokens(dir: &Path, tokens: &str) {
    std::fs::write(dir.join("tokens"), tokens).expect("tokens");
    std::fs::write(dir.join("admin-token"), "admin-token-limits-0123\n").expect("admin");
}

fn serve_command(dir: &Path) -> std::process::Command {
    let mut command = outpost();
    command
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
        .arg(dir.join("control-plane.db"));
    command
}

fn serve(dir: &Path) -> Serve {
    write_tokens(dir, &format!("# agents\nlocal-1 {AGENT_TOKEN}\n"));
    let mut child = serve_command(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let address = support::listening_url(&mut child)
        .strip_prefix("http://")
        .expect("an http URL")
        .to_owned();
    Serve { child, address }
}

/// One complete request on a fresh connection: the status line and body.
fn request(address: &str, head: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(head.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn list_jobs(address: &str) -> std::io::Result<(String, String)> {
    request(
        address,
        &format!(
            "GET /v1/jobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {AGENT_TOKEN}\r\nconnection: close\r\n\r\n"
        ),
    )
}

/// What a slow client saw: how long the server kept it, and what it answered.
struct Cut {
    after: Duration,
    answer: String,
}

/// Connects, sends `head` at once, then trickles `trickle` one byte per second, until the
/// server closes the connection (or `give_up` passes: then the server never cut it).
fn trickle(address: &str, head: &str, trickle: &[u8], give_up: Duration) -> Cut {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("head");
    let mut answer = Vec::new();
    let mut next = trickle.iter().cycle();
    let mut last_byte = Instant::now() - Duration::from_secs(1);
    while started.elapsed() < give_up {
        if last_byte.elapsed() >= Duration::from_secs(1) {
            last_byte = Instant::now();
            if stream.write_all(&[*next.next().expect("cycle")]).is_err() {
                break;
            }
        }
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    Cut {
        after: started.elapsed(),
        answer: String::from_utf8_lossy(&answer).into_owned(),
    }
}

#[test]
fn m3_slow_trickle_clients_are_cut_off_and_others_are_served() {
    let dir = scratch("cp-limits");
    let server = serve(dir.path());
    // The defaults under test (crates/control-plane/src/limits.rs): headers within 10 s,
    // a body within 20 s.
    let give_up = Duration::from_secs(90);
    let address = server.address.clone();
    // The reproduction: one client trickles its headers, without a token …
    let headers = std::thread::spawn(move || {
        trickle(
            &address,
            "GET /v1/jobs HTTP/1.1\r\nhost: x\r\nx-slow: ",
            b"abcdefgh",
            give_up,
        )
    });
    // … and one, with a token, trickles a heartbeat's body.
    let address = server.address.clone();
    let body = std::thread::spawn(move || {
        trickle(
            &address,
            &format!(
                "POST /v1/heartbeat HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {AGENT_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 2000\r\n\r\n"
            ),
            b" ",
            give_up,
        )
    });
    // Meanwhile another client is served, every half second.
    let started = Instant::now();
    let (mut served, mut slowest) = (0, Duration::ZERO);
    while !(headers.is_finished() && body.is_finished()) {
        let asked = Instant::now();
        let (status, answer) = list_jobs(&server.address).expect("served");
        assert_eq!(status, "HTTP/1.1 200 OK", "{answer}");
        slowest = slowest.max(asked.elapsed());
        served += 1;
        std::thread::sleep(Duration::from_millis(500));
        assert!(started.elapsed() < give_up + Duration::from_secs(10));
    }
    let headers = headers.join().expect("headers thread");
    let body = body.join().expect("body thread");
    eprintln!(
        "slow clients cut: trickled headers after {:.1} s, trickled body after {:.1} s (answered `{}`); meanwhile {served} other requests served, the slowest in {} ms",
        headers.after.as_secs_f64(),
        body.after.as_secs_f64(),
        body.answer.lines().next().unwrap_or(""),
        slowest.as_millis()
    );
    assert!(
        headers.after < Duration::from_secs(20),
        "the header trickler stayed {:?}",
        headers.after
    );
    assert!(
        body.after < Duration::from_secs(30),
        "the body trickler stayed {:?}",
        body.after
    );
    assert!(body.answer.starts_with("HTTP/1.1 408"), "{}", body.answer);
    assert!(
        body.answer.contains("\"code\":\"timeout\""),
        "{}",
        body.answer
    );
    assert!(served >= 10, "{served} requests served");
}

#[test]
fn m3_connections_beyond_the_cap_are_refused_at_once_and_served_after() {
    let dir = scratch("cp-cap");
    let server = serve(dir.path());
    // The default cap: 256 connections. Each of these says nothing (a slowloris).
    let mut idle: Vec<TcpStream> = (0..256)
        .map(|_| TcpStream::connect(&server.address).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let refused = list_jobs(&server.address);
    let waited = asked.elapsed();
    // Refused at once with the error JSON, not left waiting for the idle connections'
    // timeouts.
    let (status, body) = refused.as_ref().expect("an answer");
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable", "{body}");
    assert!(body.contains("\"code\":\"busy\""), "{body}");
    assert!(waited < Duration::from_secs(5), "refusal took {waited:?}");
    // Slots come back as connections close.
    idle.truncate(200);
    let mut served = None;
    for _ in 0..50 {
        if let Ok((status, _)) = list_jobs(&server.address)
            && status == "HTTP/1.1 200 OK"
        {
            served = Some(());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "connection 257 refused in {} ms ({}); served again once connections closed",
        waited.as_millis(),
        match &refused {
            Ok((status, _)) => status.clone(),
            Err(e) => e.to_string(),
        }
    );
    assert!(served.is_some(), "not served after connections closed");
    drop(idle);
}

#[test]
fn l2_serve_refuses_to_start_when_a_comment_would_be_a_token() {
    let dir = scratch("cp-tokens");
    for (tokens, line, why) in [
        (
            format!("local-1 {AGENT_TOKEN}\nagent-c  # disabled until onboarding\n"),
            2,
            "agent `agent-c` has no token",
        ),
        (
            format!("# agents\n\nlocal-1 {AGENT_TOKEN}\nagent-d short-token\n"),
            4,
            "at least 16 are required",
        ),
    ] {
        write_tokens(dir.path(), &tokens);
        let out = serve_command(dir.path()).output().expect("serve runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        let expected = format!("{}: line {line}: ", dir.path().join("tokens").display());
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(
            !stderr.contains("short-token"),
            "the token is never shown: {stderr}"
        );
        assert!(out.stdout.is_empty(), "it did not start listening");
    }
}
