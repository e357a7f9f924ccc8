//! The tests' Snowflake conformance layer (`tests/support/snowflake.rs`) as a process, for the
//! benchmark (`benches/snowflake.sh`): it restores Snowflake's result chunking in front of
//! fakesnow, which answers every result as one inline Arrow batch however large.
//!
//! `snowflake_conformance UPSTREAM PASSWORD CHUNK_ROWS` prints `port <n>` once listening,
//! then serves until killed. It accepts password logins with PASSWORD.

#[path = "../tests/support/snowflake.rs"]
mod conformance;

use conformance::{Accept, Conformance, Options};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, upstream, password, chunk_rows] = &args[..] else {
        eprintln!("usage: snowflake_conformance UPSTREAM PASSWORD CHUNK_ROWS");
        std::process::exit(64);
    };
    let Ok(chunk_rows) = chunk_rows.parse() else {
        eprintln!("CHUNK_ROWS is not a number: {chunk_rows}");
        std::process::exit(64);
    };
    let proxy = Conformance::start(
        upstream,
        Options {
            accept: Accept::Password(password.clone()),
            show_cap: 10_000,
            chunk_rows,
            tls: None,
        },
    )
    .await;
    println!("port {}", proxy.port());
    // The benchmark reads the port from this line, then kills the process when done.
    std::future::pending::<()>().await;
}
