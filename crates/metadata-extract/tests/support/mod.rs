//! Shared by the extraction tests: scratch folders (removed when dropped, a failing test's
//! too), secrets folders, one extraction by a shipped descriptor, finding records.

#![allow(dead_code)]

pub mod audit;

use std::path::{Path, PathBuf};

use metadata_extract::{ExtractError, ExtractRequest, Manifest, RunIdentity, Silent};
use serde_json::Value;

/// A variable `scripts/services.sh` exports (`OUTPOST_TEST_PG_*` for the PostgreSQL server,
/// `OUTPOST_TEST_MYSQL_*` for MariaDB), or a panic saying how to start the servers: the tests
/// never pass silently without them.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need the servers scripts/services.sh starts; run scripts/test.sh, or `eval \"$(scripts/services.sh start)\"` first")
    })
}

/// A fresh, empty scratch folder, `outpost-<prefix>-…` in the temporary folder.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("outpost-{prefix}-"))
        .tempdir()
        .expect("scratch folder")
}

/// A secrets folder, as a Secret is mounted: one file, `password`, holding `content`.
pub fn secrets(content: &str) -> tempfile::TempDir {
    let dir = scratch("secrets");
    std::fs::write(dir.path().join("password"), content).expect("password file");
    dir
}

/// A runtime for one test's async calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The descriptor shipped in `connectors/<connector>/connector.yaml`.
pub fn descriptor(connector: &str) -> connector_descriptor::ValidatedDescriptor {
    let file = format!("connectors/{connector}/connector.yaml");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(&file);
    connector_descriptor::parse(&file, &std::fs::read_to_string(path).expect("descriptor"))
        .expect("valid")
}

/// One extraction by `connector`'s shipped descriptor with `parameters` into `out`: no
/// secrets, no CA bundle, only the connector for identity, 1 MiB parts, unless `configure`
/// says otherwise.
pub fn extract(
    connector: &str,
    out: &Path,
    parameters: Vec<(String, String)>,
    configure: impl FnOnce(&mut ExtractRequest<'_>),
) -> Result<Manifest, ExtractError> {
    let descriptor = descriptor(connector);
    let mut request = ExtractRequest {
        descriptor: &descriptor,
        parameters,
        secrets_dir: None,
        ca_bundle: None,
        out: out.to_owned(),
        identity: RunIdentity {
            connector: connector.into(),
            ..Default::default()
        },
        part_bytes: 1024 * 1024,
        signing_key_file: None,
        exports: Default::default(),
    };
    configure(&mut request);
    runtime().block_on(metadata_extract::run(request, &Silent))
}

/// TLS modes against the test server's certificate for 127.0.0.1, signed by the test CA
/// (`OUTPOST_TEST_PG_CA`), through `extract_tls(name, ssl-mode, CA bundle)`: `require`
/// encrypts without checking the certificate; with the CA bundle, `verify-full` verifies the
/// chain and the name, `verify-ca` the chain. Answers the error of `verify-full` without the
/// bundle, whose certificate is then not trusted.
pub fn untrusted_after_tls_modes(
    extract_tls: impl Fn(&str, &str, Option<PathBuf>) -> Result<Manifest, ExtractError>,
) -> ExtractError {
    let ca = PathBuf::from(env("OUTPOST_TEST_PG_CA"));
    extract_tls("tls-require", "require", None).unwrap_or_else(|e| panic!("require: {e:?}"));
    extract_tls("tls-verify-full", "verify-full", Some(ca.clone()))
        .unwrap_or_else(|e| panic!("verify-full: {e:?}"));
    extract_tls("tls-verify-ca", "verify-ca", Some(ca))
        .unwrap_or_else(|e| panic!("verify-ca: {e:?}"));
    extract_tls("tls-untrusted", "verify-full", None).expect_err("untrusted certificate")
}

/// The record whose `fields` have these values, or a panic naming them.
pub fn find<'a>(records: &'a [Value], fields: &[(&str, &str)]) -> &'a Value {
    records
        .iter()
        .find(|r| fields.iter().all(|(k, v)| r[*k] == *v))
        .unwrap_or_else(|| panic!("no record with {fields:?} in {records:?}"))
}
