//! `outpost upload` as the WorkflowTemplate runs it: extract, then deliver; arguments,
//! exit codes, and no secret in any message.

mod support;

use support::{extract_sqlite, scratch, sqlite_file};

use std::path::{Path, PathBuf};
use std::process::Command;

fn outpost(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

/// A real run folder: a small SQLite catalog extracted by `outpost extract`.
fn extracted(dir: &Path) -> PathBuf {
    let db = dir.join("shop.db");
    sqlite_file(
        &db,
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total NUMERIC); CREATE VIEW big AS SELECT * FROM orders WHERE total > 100",
    );
    let out = dir.join("out");
    extract_sqlite(&db, &out, "shop", &[]);
    out
}

fn upload(from: &Path, extra: &[&str]) -> std::process::Output {
    upload_as(from, ("j1", "r1"), extra)
}

fn upload_as(from: &Path, (job, run): (&str, &str), extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "upload".to_owned(),
        format!("--from={}", from.display()),
        "--connector=sqlite".to_owned(),
        "--connection=shop".to_owned(),
        format!("--job-id={job}"),
        format!("--run-id={run}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    outpost(&args)
}

#[test]
fn relay_to_a_folder_lands_under_connection_job_and_run_manifest_included() {
    let dir = scratch("folder");
    let out = extracted(&dir);
    let bucket = dir.join("bucket");
    let to = format!("--to=file://{}/outpost", bucket.display());
    let first = upload(&out, &[&to]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let landed = bucket.join("outpost/shop/j1/r1");
    let local = std::fs::read(out.join("manifest.json")).expect("manifest");
    assert_eq!(
        std::fs::read(landed.join("manifest.json")).expect("landed"),
        local
    );
    let manifest: serde_json::Value = serde_json::from_slice(&local).expect("json");
    for file in manifest["files"].as_array().expect("files") {
        let path = file["path"].as_str().expect("path");
        assert_eq!(
            std::fs::read(landed.join(path)).expect("file landed"),
            std::fs::read(out.join(path)).expect("file")
        );
    }
    // A second delivery of the same run sends nothing and still succeeds.
    let second = upload(&out, &[&to]);
    assert!(second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already delivered"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
}

/// What is wrong, (job id, run id), extra arguments, expected exit code, expected message.
type Case<'a> = (&'a str, (&'a str, &'a str), Vec<String>, u8, &'a str);

#[test]
fn exit_codes_name_the_problem() {
    let dir = scratch("codes");
    let out = extracted(&dir);
    let to = format!("--to=file://{}/bucket", dir.display());
    let cases: [Case; 6] = [
        (
            "bad bucket URL",
            ("j1", "r1"),
            vec!["--to=ftp://host/x".to_owned()],
            64,
            "unknown scheme `ftp`",
        ),
        (
            "manifest of another run",
            ("j1", "r2"),
            vec![to.clone()],
            64,
            "manifest.json belongs to run-id `r1`",
        ),
        (
            "run id not a path segment",
            ("../etc", "r1"),
            vec![to.clone()],
            64,
            "job-id `../etc`",
        ),
        (
            "no relay bucket",
            ("j1", "r1"),
            vec!["--transfer-mode=bucket-relay".to_owned()],
            64,
            "needs --to",
        ),
        (
            "direct without URLs",
            ("j1", "r1"),
            vec!["--direct".to_owned()],
            78,
            "direct ingestion needs upload URLs",
        ),
        (
            "credentials folder missing",
            ("j1", "r1"),
            vec![
                "--to=s3://bucket/x".to_owned(),
                format!("--credentials-dir={}/nope", dir.display()),
            ],
            78,
            "does not exist",
        ),
    ];
    for (what, ids, extra, code, message) in cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let run = upload_as(&out, ids, &extra);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(code as i32), "{what}: {stderr}");
        assert!(stderr.contains(message), "{what}: {stderr}");
    }

    // Extraction that did not finish: no manifest, nothing delivered.
    std::fs::remove_file(out.join("manifest.json")).expect("remove");
    let run = upload(&out, &[&to]);
    assert_eq!(run.status.code(), Some(66));
    assert!(!dir.join("bucket").join("shop").exists());
}

/// A wrong secret key makes the store refuse the upload; the message says so and never
/// shows the key. Needs s3s-fs (started by scripts/services.sh).
#[test]
fn refused_credentials_exit_77_without_showing_the_secret() {
    let env = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: this test needs s3s-fs; run scripts/test.sh, or `eval \"$(scripts/services.sh start)\"` first")
        })
    };
    let dir = scratch("refused");
    let out = extracted(&dir);
    let credentials = dir.join("credentials");
    std::fs::create_dir_all(&credentials).expect("mkdir");
    let secret = "canary-secret-7f3a9c";
    std::fs::write(
        credentials.join("access-key-id"),
        env("OUTPOST_TEST_S3_ACCESS_KEY"),
    )
    .expect("write");
    std::fs::write(credentials.join("secret-access-key"), secret).expect("write");
    let run = upload(
        &out,
        &[
            &format!("--to=s3://{}/cli-refused", env("OUTPOST_TEST_S3_BUCKET")),
            &format!("--endpoint={}", env("OUTPOST_TEST_S3_ENDPOINT")),
            &format!("--credentials-dir={}", credentials.display()),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(77), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains(secret), "the secret leaked: {stderr}");
}
