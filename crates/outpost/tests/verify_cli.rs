//! Signed manifests through the binary: `outpost keygen` makes the key pair, `outpost extract
//! --manifest-signing-key` signs the run, and `outpost verify` accepts it untouched and
//! refuses every tampering with its reason and exit 65: a flipped bit in a part, in the
//! manifest or in its signature; a manifest re-signed by another key; a removed part; an
//! unsigned manifest. A file the manifest does not list is not part of the run. A run
//! delivered by bucket relay verifies where it landed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{extract_sqlite, outpost, scratch, sqlite_file};

/// `outpost keygen --out FILE`: the private key's file and the printed public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let out = outpost()
        .args(["keygen", "--out"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    (file, public)
}

fn verify(run: &Path, key: &str) -> Output {
    outpost()
        .arg("verify")
        .arg(run)
        .arg(format!("--key={key}"))
        .output()
        .expect("runs")
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A signed run of a small SQLite catalog, copied fresh for each case.
struct Signed {
    dir: support::Scratch,
    public: String,
}

impl Signed {
    fn new() -> Self {
        let dir = scratch("verify");
        let (private, public) = keygen(dir.path(), "manifest-key");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&private).expect("key file").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the private key is the owner's alone");
        let db = dir.join("tiny.db");
        sqlite_file(
            &db,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE u (id INTEGER, note TEXT);
             CREATE VIEW v AS SELECT id FROM t;",
        );
        extract_sqlite(
            &db,
            &dir.join("run"),
            "c1",
            &[&format!("--manifest-signing-key={}", private.display())],
        );
        Self { dir, public }
    }

    /// A copy of the signed run, to tamper with.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.dir.join(name);
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(self.dir.join("run"))
            .arg(&to)
            .status()
            .expect("cp");
        assert!(status.success());
        to
    }

    fn manifest(&self, run: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).expect("manifest"))
            .expect("json")
    }
}

fn flip_bit(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

fn refused(out: &Output, reason: &str) {
    assert_eq!(out.status.code(), Some(65), "{}", said(out));
    assert!(
        said(out).contains(reason),
        "`{reason}` not in: {}",
        said(out)
    );
}

#[test]
fn a_signed_run_verifies_and_every_tampering_is_refused_with_its_reason() {
    let signed = Signed::new();
    let run = signed.dir.join("run");
    let manifest = signed.manifest(&run);
    assert_eq!(manifest["formatVersion"], "1.4");
    assert_eq!(manifest["signature"]["algorithm"], "ed25519");
    assert_eq!(manifest["signature"]["key"], signed.public.as_str());

    // Untouched: verified, every file named in the count.
    let out = verify(&run, &signed.public);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let files = manifest["files"].as_array().expect("files").len();
    assert!(files >= 3, "{manifest}");
    assert!(
        said(&out).contains(&format!("its {files} files")),
        "{}",
        said(&out)
    );

    // A flipped bit in a part.
    let part = manifest["files"][0]["path"]
        .as_str()
        .expect("path")
        .to_owned();
    let tampered = signed.copy("part-bit");
    flip_bit(&tampered.join(&part), 40);
    refused(
        &verify(&tampered, &signed.public),
        &format!("{part}: SHA-256"),
    );

    // A removed part.
    let tampered = signed.copy("part-gone");
    std::fs::remove_file(tampered.join(&part)).expect("remove");
    refused(
        &verify(&tampered, &signed.public),
        &format!("{part}: missing"),
    );

    // A flipped bit in the manifest: a record count one off, and a digest that matches a
    // changed part (what a forger would write).
    let tampered = signed.copy("manifest-bit");
    let text = std::fs::read_to_string(tampered.join("manifest.json")).expect("manifest");
    let records = manifest["files"][0]["records"].as_u64().expect("records");
    let changed = text.replacen(
        &format!("\"records\": {records}"),
        &format!("\"records\": {}", records ^ 1),
        1,
    );
    assert_ne!(changed, text, "the count was found");
    std::fs::write(tampered.join("manifest.json"), changed).expect("write");
    refused(
        &verify(&tampered, &signed.public),
        "does not match its content",
    );

    // A flipped bit in the signature.
    let tampered = signed.copy("signature-bit");
    let mut value = signed.manifest(&tampered);
    let signature = value["signature"]["value"]
        .as_str()
        .expect("signature")
        .to_owned();
    let mut chars: Vec<char> = signature.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    value["signature"]["value"] = serde_json::Value::from(chars.into_iter().collect::<String>());
    std::fs::write(
        tampered.join("manifest.json"),
        serde_json::to_vec_pretty(&value).expect("json"),
    )
    .expect("write");
    refused(
        &verify(&tampered, &signed.public),
        "does not match its content",
    );

    // Re-signed by another key after a change: refused, naming both keys.
    let (other_private, other_public) = keygen(signed.dir.path(), "other-key");
    let db = signed.dir.join("forged.db");
    sqlite_file(&db, "CREATE TABLE forged (id INTEGER)");
    let forged = signed.dir.join("forged");
    extract_sqlite(
        &db,
        &forged,
        "c1",
        &[&format!(
            "--manifest-signing-key={}",
            other_private.display()
        )],
    );
    let out = verify(&forged, &signed.public);
    refused(&out, &format!("signed by key {other_public}"));
    assert!(said(&out).contains(&signed.public), "{}", said(&out));

    // Unsigned.
    let unsigned = signed.dir.join("unsigned");
    extract_sqlite(&db, &unsigned, "c1", &[]);
    refused(&verify(&unsigned, &signed.public), "not signed");

    // Not a run at all: 66.
    let out = verify(&signed.dir.join("nothing"), &signed.public);
    assert_eq!(out.status.code(), Some(66), "{}", said(&out));

    // Delivered by bucket relay (a folder bucket), the run verifies where it landed: the
    // manifest travels as signed.
    let bucket = signed.dir.join("bucket");
    let delivered = outpost()
        .arg("upload")
        .arg(format!("--from={}", run.display()))
        .args([
            "--connector=sqlite",
            "--connection=c1",
            "--job-id=j1",
            "--run-id=r1",
        ])
        .arg(format!("--to=file://{}/outpost", bucket.display()))
        .output()
        .expect("runs");
    assert!(delivered.status.success(), "{}", said(&delivered));
    let landed = bucket.join("outpost/c1/j1/r1");
    let out = verify(&landed, &signed.public);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    // …and by its bucket URL, read back through the store.
    let url = format!("file://{}", landed.display());
    let out = verify(Path::new(&url), &signed.public);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    // A part changed in the bucket is named by its path in the run.
    flip_bit(&landed.join(&part), 40);
    refused(
        &verify(Path::new(&url), &signed.public),
        &format!("{part}: SHA-256"),
    );
    // No run at that URL: 66.
    let out = verify(Path::new(&format!("{url}-not-there")), &signed.public);
    assert_eq!(out.status.code(), Some(66), "{}", said(&out));

    // A file the manifest does not list is not part of the run: verified, and named.
    let extra = signed.copy("extra-file");
    std::fs::write(extra.join("tables/part-99999.ndjson.zst"), b"not listed").expect("write");
    let out = verify(&extra, &signed.public);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("tables/part-99999.ndjson.zst"),
        "{}",
        said(&out)
    );
}

#[test]
fn an_unusable_signing_key_fails_extraction_before_the_source_is_read() {
    let dir = scratch("bad-key");
    let db = dir.join("tiny.db");
    sqlite_file(&db, "CREATE TABLE t (id INTEGER)");
    let key = dir.join("key");
    std::fs::write(&key, "not a key").expect("write");
    let out = dir.join("out");
    let run = outpost()
        .args(["extract", "--connector=sqlite"])
        .arg(format!("--param=path={}", db.display()))
        .arg(format!("--manifest-signing-key={}", key.display()))
        .arg(format!("--out={}", out.display()))
        .output()
        .expect("runs");
    assert_eq!(run.status.code(), Some(78), "{}", said(&run));
    assert!(
        said(&run).contains("manifest-signing key"),
        "{}",
        said(&run)
    );
    assert!(!out.join("manifest.json").exists());
}

/// Local mode signs too: `outpost run` of the bundled sample with the key, delivered to a
/// folder bucket, verifies where it landed.
#[test]
fn a_local_run_is_signed_and_verifies_where_it_landed() {
    let dir = scratch("verify-local");
    let (private, public) = keygen(dir.path(), "manifest-key");
    let bucket = dir.join("bucket");
    let run = outpost()
        .args(["run", "--run-id=r1"])
        .arg(format!("--manifest-signing-key={}", private.display()))
        .arg(format!("--to=file://{}/outpost", bucket.display()))
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(run.status.success(), "{}", said(&run));
    let landed = bucket.join("outpost/sample/local/r1");
    let out = verify(&landed, &public);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
}

/// A run relayed to S3 (s3s-fs, which `scripts/services.sh` starts) verifies by its URL, read
/// back with the store flags `upload` takes.
#[test]
fn a_run_relayed_to_s3_verifies_by_its_url() {
    let signed = Signed::new();
    let credentials = signed.dir.join("s3-credentials");
    std::fs::create_dir_all(&credentials).expect("credentials");
    std::fs::write(
        credentials.join("access-key-id"),
        support::env("OUTPOST_TEST_S3_ACCESS_KEY"),
    )
    .expect("write");
    std::fs::write(
        credentials.join("secret-access-key"),
        support::env("OUTPOST_TEST_S3_SECRET_KEY"),
    )
    .expect("write");
    let store = [
        format!("--endpoint={}", support::env("OUTPOST_TEST_S3_ENDPOINT")),
        "--region=us-east-1".to_owned(),
        format!("--credentials-dir={}", credentials.display()),
    ];
    let prefix = format!(
        "s3://{}/verify-{}",
        support::env("OUTPOST_TEST_S3_BUCKET"),
        std::process::id()
    );
    let delivered = outpost()
        .arg("upload")
        .arg(format!("--from={}", signed.dir.join("run").display()))
        .args([
            "--connector=sqlite",
            "--connection=c1",
            "--job-id=j1",
            "--run-id=r1",
        ])
        .arg(format!("--to={prefix}"))
        .args(&store)
        .output()
        .expect("runs");
    assert!(delivered.status.success(), "{}", said(&delivered));
    let verified = outpost()
        .args(["verify", &format!("{prefix}/c1/j1/r1")])
        .arg(format!("--key={}", signed.public))
        .args(&store)
        .output()
        .expect("runs");
    assert_eq!(verified.status.code(), Some(0), "{}", said(&verified));
    assert!(said(&verified).contains("verified"), "{}", said(&verified));
    let missing = outpost()
        .args(["verify", &format!("{prefix}/c1/j1/no-such-run")])
        .arg(format!("--key={}", signed.public))
        .args(&store)
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(66), "{}", said(&missing));
}
