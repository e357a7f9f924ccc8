//! `outpost extract` as the WorkflowTemplate runs it: arguments, output, exit codes.

mod support;

use support::{extract_sqlite, scratch, sqlite_file};

use std::process::Command;

fn outpost(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn extract_writes_the_output_and_manifest_and_exits_zero() {
    let dir = scratch("ok");
    let db = dir.join("tiny.db");
    sqlite_file(&db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
    let out = dir.join("out");
    extract_sqlite(&db, &out, "c1", &["--param=include-tables="]);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["connector"], "sqlite");
    assert_eq!(manifest["jobId"], "j1");
    assert_eq!(manifest["totals"]["table"], 1);
    assert_eq!(manifest["totals"]["column"], 2);
}

#[test]
fn exit_codes_tell_retryable_from_pointless() {
    let dir = scratch("codes");
    let out = dir.join("out").display().to_string();
    let unknown = outpost(&["extract", "--connector=oracle", "--out", &out]);
    assert_eq!(unknown.status.code(), Some(64), "unknown connector");
    let bad = outpost(&[
        "extract",
        "--connector=postgres",
        "--param=port=x",
        "--param=hots=db",
        "--out",
        &out,
    ]);
    assert_eq!(bad.status.code(), Some(64), "bad parameters");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("did you mean `host`") && stderr.contains("parameter `port`"),
        "{stderr}"
    );
    let no_secret = outpost(&[
        "extract",
        "--connector=postgres",
        "--param=host=127.0.0.1",
        "--param=database=d",
        "--param=user=u",
        "--out",
        &out,
    ]);
    assert_eq!(
        no_secret.status.code(),
        Some(78),
        "missing secret: {}",
        String::from_utf8_lossy(&no_secret.stderr)
    );
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("mkdir");
    std::fs::write(secrets.join("password"), "CANARY-SECRET-77aa").expect("write");
    let unreachable = outpost(&[
        "extract",
        "--connector=postgres",
        "--param=host=127.0.0.1",
        "--param=port=1",
        "--param=database=d",
        "--param=user=u",
        "--param=ssl-mode=disable",
        &format!("--secrets-dir={}", secrets.display()),
        "--out",
        &out,
    ]);
    assert_eq!(
        unreachable.status.code(),
        Some(75),
        "unreachable is retryable: {}",
        String::from_utf8_lossy(&unreachable.stderr)
    );
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(!stderr.contains("CANARY-SECRET-77aa"), "no secret in logs");
    assert!(!dir.join("out/manifest.json").exists());
}
