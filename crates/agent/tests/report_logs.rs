//! Review finding L5: the reporter shipped the first 1 MiB of each container log, although
//! the failure is at the end. It now ships the last.

mod support;

use agent::kubernetes::Namespace;
use agent::report::LOG_BYTES_PER_CONTAINER;
use support::fake_kube::FakeKube;

#[tokio::test]
async fn l5_the_reporter_ships_the_end_of_a_long_log() {
    let fake = FakeKube::default();
    let mut log = String::from("FIRST-LINE of a long extraction\n");
    while log.len() < 3 * LOG_BYTES_PER_CONTAINER {
        log.push_str("extracting table public.orders_2026: 1 of 1 parts written\n");
    }
    log.push_str("error: cannot reach db:5432: connection refused (exit code 75)\nLAST-LINE\n");
    fake.add_pod("wf-1", "wf-1-run-123", &[("extract", log.as_str())]);
    let namespace = Namespace::new(fake.client("outpost"), "outpost");
    let shipped = namespace
        .container_log("wf-1-run-123", "extract", LOG_BYTES_PER_CONTAINER)
        .await
        .expect("log");
    assert!(
        shipped.ends_with("(exit code 75)\nLAST-LINE\n"),
        "the end is kept"
    );
    assert!(!shipped.contains("FIRST-LINE"), "the beginning is cut");
    assert!(
        shipped.starts_with("(earlier output cut"),
        "and the cut is said"
    );
    assert!(
        shipped.len() <= LOG_BYTES_PER_CONTAINER + 100,
        "{} bytes shipped",
        shipped.len()
    );
    // A short log is shipped whole, with no note.
    fake.add_pod("wf-2", "wf-2-run-456", &[("main", "all good\n")]);
    let short = namespace
        .container_log("wf-2-run-456", "main", LOG_BYTES_PER_CONTAINER)
        .await
        .expect("log");
    assert_eq!(short, "all good\n");
}
