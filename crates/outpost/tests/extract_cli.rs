//! `outpost extract` as the WorkflowTemplate runs it: arguments, output, exit codes.

mod support;

use support::{extract_sqlite, scratch, sqlite_file};

use std::process::Command;

/// Every file of a run's output folder as text, compressed parts decompressed, for canary
/// searches.
fn output_text(out: &std::path::Path) -> String {
    let mut text = String::new();
    let mut folders = vec![out.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("out").flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("file");
            let bytes = if path.extension().is_some_and(|e| e == "zst") {
                zstd::decode_all(bytes.as_slice()).expect("zstd")
            } else {
                bytes
            };
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

/// `outpost extract --connector=CONNECTOR PARAM` as the WorkflowTemplate runs it (job `j1`,
/// run `r1`, the connection's files in `connection`) with every log level on; it must
/// succeed. Answers its logs (stdout and stderr), which must hold the trace lines a canary
/// search needs, and its manifest.
fn traced_extract(
    connector: &str,
    param: &str,
    connection: &std::path::Path,
    out: &std::path::Path,
) -> (String, serde_json::Value) {
    let run = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("extract")
        .arg(format!("--connector={connector}"))
        .args(["--job-id=j1", "--run-id=r1", param])
        .arg(format!("--secrets-dir={}", connection.display()))
        .arg(format!("--out={}", out.display()))
        .env("RUST_LOG", "trace")
        .output()
        .expect("runs");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(run.status.code(), Some(0), "{logs}");
    // Every level is on: the HTTP clients' own trace lines are there to be searched.
    assert!(logs.lines().count() > 10, "trace logs are on: {logs}");
    let manifest = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    (logs, manifest)
}

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

/// `outpost extract --connector=snowflake` with an encrypted key pair, as the WorkflowTemplate
/// runs it, against the emulator (fakesnow, which takes any login: the login checks are the
/// metadata-extract tests'), with every log level on: neither the key, its passphrase nor
/// the JWT made from it appears in the output or the logs.
#[test]
fn a_snowflake_key_pair_run_logs_no_key_passphrase_or_token() {
    let dir = scratch("snowflake-secrets");
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).expect("keys");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&keys)
            .output()
            .expect("openssl runs (this test needs the openssl command)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let passphrase = format!("CANARY-PASSPHRASE-{}", std::process::id());
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "plain.p8",
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        "plain.p8",
        "-out",
        "key.p8",
        "-passout",
        &format!("pass:{passphrase}"),
    ]);
    let key = std::fs::read_to_string(keys.join("key.p8")).expect("key");
    let plain = std::fs::read_to_string(keys.join("plain.p8")).expect("key");

    let database = format!("OUTPOST_CLI_{}", std::process::id());
    support::snowflake(&[
        &format!("CREATE OR REPLACE DATABASE {database}"),
        &format!("CREATE SCHEMA {database}.APP"),
        &format!("CREATE TABLE {database}.APP.ORDERS (ID INT, NOTE TEXT)"),
    ]);
    let url = support::env("OUTPOST_TEST_SNOWFLAKE_URL");
    let connection = dir.join("connection");
    std::fs::create_dir_all(&connection).expect("connection");
    for (name, value) in [
        ("account", "xy12345.us-east-1"),
        ("host", "127.0.0.1"),
        ("port", url.rsplit(':').next().expect("port")),
        ("user", "outpost_reader"),
        ("ssl-mode", "disable"),
        ("private-key", &key),
        ("private-key-passphrase", &passphrase),
    ] {
        std::fs::write(connection.join(name), value).expect("connection value");
    }
    let out = dir.join("out");
    let (logs, manifest) = traced_extract(
        "snowflake",
        &format!("--param=include-databases=^{database}$"),
        &connection,
        &out,
    );
    assert_eq!(manifest["totals"]["table"], 1, "{manifest}");
    let text = logs + &output_text(&out);
    assert!(!text.contains(&passphrase), "the passphrase leaked");
    for pem in [&key, &plain] {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!text.contains(&body[..48]), "key material leaked");
    }
    // A JWT starts with its base64url header, {"alg":"RS256","typ":"JWT"}.
    assert!(
        !text.contains("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"),
        "a JWT leaked"
    );
}

/// `outpost extract --connector=tableau` as the WorkflowTemplate runs it, against the Tableau
/// fake, with every log level on: the Personal Access Token's secret and the session token
/// signed in with it appear nowhere in the output or the logs, and the run signs out.
#[test]
fn a_tableau_run_logs_no_token_secret_nor_session_and_signs_out() {
    use std::sync::atomic::Ordering;
    let dir = scratch("tableau-secrets");
    let secret = format!("CANARY-PAT-SECRET-{}-c0de", std::process::id());
    let site = tableau_fake::SiteModel::generate(
        "cli-ünï",
        tableau_fake::Scale {
            workbooks: 8,
            sheets_per_workbook: 3,
            published: 4,
            fields_per_datasource: 6,
            tables: 10,
        },
    );
    let workbooks = site.workbooks.len();
    let (_runtime, fake, connection) =
        support::tableau_site(dir.path(), "cli-ünï", site, "cli-token", &secret);
    let out = dir.join("out");
    let (logs, manifest) =
        traced_extract("tableau", "--param=metadata-page-size=5", &connection, &out);
    assert_eq!(manifest["totals"]["workbook"], workbooks, "{manifest}");
    let text = logs + &output_text(&out);
    // The search finds what is there.
    assert!(text.contains("cli-ünï"), "the site is in the output");
    assert!(!text.contains(&secret), "the token's secret leaked");
    // The session tokens the server handed out (`X-Tableau-Auth`), each of them.
    let sessions: Vec<String> = fake
        .counters
        .seen
        .lock()
        .expect("seen")
        .iter()
        .filter_map(|line| {
            let start = line.find("Some(\"")? + 6;
            let end = start + line[start..].find('"')?;
            Some(line[start..end].to_owned())
        })
        .collect();
    assert!(!sessions.is_empty(), "requests carried a session");
    for session in &sessions {
        assert!(!text.contains(session.as_str()), "a session token leaked");
    }
    assert_eq!(fake.counters.sign_ins.load(Ordering::SeqCst), 1);
    assert_eq!(fake.counters.sign_outs.load(Ordering::SeqCst), 1);
}
