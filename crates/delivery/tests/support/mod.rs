//! Shared by the delivery tests: the four real backends (started by `scripts/services.sh`),
//! synthetic run folders, and a store wrapper that records the order writes complete in.

#![allow(dead_code, missing_docs)]

pub mod fault_proxy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use delivery::bucket::{Bucket, BucketUrl, StoreKind, StoreSettings};
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, PutResult, UploadPart,
};
use outpost_core::output::{EntityKind, FileEntry, Manifest};
use outpost_core::run::RunIdentity;

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the storage emulators; run scripts/test.sh, or `eval \"$(scripts/services.sh start)\"` first"
        )
    })
}

pub fn runtime() -> tokio::runtime::Runtime {
    delivery::install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A fresh, unique prefix per test, so tests share one bucket without seeing each other.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("t-{test}-{nanos}-{}", std::process::id())
}

/// One of the four backends, with the settings a test needs to open it. `keep` holds the
/// temporary folders (credentials, local bucket) alive.
pub struct Backend {
    pub kind: StoreKind,
    pub url: BucketUrl,
    pub settings: StoreSettings,
    pub keep: Vec<tempfile::TempDir>,
}

impl Backend {
    pub fn open(kind: StoreKind, test: &str) -> Self {
        delivery::install_crypto_provider();
        let prefix = unique_prefix(test);
        let credentials = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, value: &str| {
            std::fs::write(credentials.path().join(name), format!("{value}\n")).expect("write")
        };
        let (url, settings) = match kind {
            StoreKind::Local => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url =
                    BucketUrl::parse(&format!("file://{}", dir.path().display())).expect("valid");
                let backend = Self {
                    kind,
                    url,
                    settings: StoreSettings::default(),
                    keep: vec![dir],
                };
                return backend;
            }
            StoreKind::S3 => {
                // Static keys from a mounted folder, as a Kubernetes Secret delivers them.
                write("access-key-id", &env("OUTPOST_TEST_S3_ACCESS_KEY"));
                write("secret-access-key", &env("OUTPOST_TEST_S3_SECRET_KEY"));
                (
                    format!("s3://{}/{prefix}", env("OUTPOST_TEST_S3_BUCKET")),
                    StoreSettings {
                        endpoint: Some(env("OUTPOST_TEST_S3_ENDPOINT")),
                        region: Some(env("OUTPOST_TEST_S3_REGION")),
                        credentials_dir: Some(credentials.path().to_owned()),
                        ..Default::default()
                    },
                )
            }
            StoreKind::Azure => {
                write("account-name", &env("OUTPOST_TEST_AZURE_ACCOUNT"));
                write("account-key", &env("OUTPOST_TEST_AZURE_KEY"));
                (
                    format!("az://{}/{prefix}", env("OUTPOST_TEST_AZURE_CONTAINER")),
                    StoreSettings {
                        endpoint: Some(env("OUTPOST_TEST_AZURE_ENDPOINT")),
                        credentials_dir: Some(credentials.path().to_owned()),
                        ..Default::default()
                    },
                )
            }
            StoreKind::Gcs => {
                // fake-gcs-server takes no OAuth; object_store reads the endpoint from the
                // service-account file, as its own integration tests do.
                let key = serde_json::json!({
                    "type": "service_account",
                    "gcs_base_url": env("OUTPOST_TEST_GCS_ENDPOINT"),
                    "disable_oauth": true,
                    "client_email": "outpost-test@example.iam.gserviceaccount.com",
                    "private_key": test_rsa_key(),
                    "private_key_id": "outpost-test"
                });
                write("service-account.json", &key.to_string());
                (
                    format!("gs://{}/{prefix}", env("OUTPOST_TEST_GCS_BUCKET")),
                    StoreSettings {
                        credentials_dir: Some(credentials.path().to_owned()),
                        endpoint: Some(env("OUTPOST_TEST_GCS_ENDPOINT")),
                        ..Default::default()
                    },
                )
            }
        };
        Self {
            kind,
            url: BucketUrl::parse(&url).expect("valid"),
            settings,
            keep: vec![credentials],
        }
    }

    pub fn bucket(&self) -> Bucket {
        Bucket::open(&self.url, &self.settings).expect("bucket opens")
    }

    /// The bucket as a URL signer. GCS V4 signing needs the service account's private key,
    /// which object_store ignores when OAuth is disabled (the emulator setting), so GCS gets
    /// a key file with OAuth on: signing is local and never calls Google.
    pub fn signing_bucket(&mut self) -> Bucket {
        if self.kind != StoreKind::Gcs {
            return self.bucket();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let key = serde_json::json!({
            "type": "service_account",
            "gcs_base_url": env("OUTPOST_TEST_GCS_ENDPOINT"),
            "client_email": "outpost-test@example.iam.gserviceaccount.com",
            "private_key": test_rsa_key(),
            "private_key_id": "outpost-test"
        });
        std::fs::write(dir.path().join("service-account.json"), key.to_string()).expect("write");
        let settings = StoreSettings {
            credentials_dir: Some(dir.path().to_owned()),
            ..self.settings.clone()
        };
        self.keep.push(dir);
        Bucket::open(&self.url, &settings).expect("bucket opens")
    }

    /// The same bucket with every write recorded in completion order.
    pub fn recorded_bucket(&self) -> (Bucket, Arc<Mutex<Vec<String>>>) {
        recorded(self.bucket())
    }
}

/// `bucket` with every write recorded in completion order.
pub fn recorded(bucket: Bucket) -> (Bucket, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::new(RecordingStore {
        inner: bucket.store.clone(),
        log: log.clone(),
    });
    (Bucket { store, ..bucket }, log)
}

/// A 2048-bit RSA key, made once per test process with openssl: GCS V4 URL signing needs a
/// real private key, even though fake-gcs-server checks no signature.
pub fn test_rsa_key() -> String {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let output = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl runs");
        assert!(output.status.success(), "openssl genpkey failed");
        String::from_utf8(output.stdout).expect("PEM is text")
    })
    .clone()
}

pub fn key() -> RunIdentity {
    RunIdentity::new("postgres", "pg-prod", "job-0001", "run-0001").expect("valid")
}

/// Deterministic bytes: a xorshift stream seeded by `seed`.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256(data: &[u8]) -> String {
    outpost_core::output::sha256_hex(data)
}

/// Writes a run folder with `files` (relative path, content) and a manifest listing them.
pub fn write_run(dir: &Path, key: &RunIdentity, files: &[(String, Vec<u8>)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut entries = Vec::new();
    for (relative, content) in files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        entries.push(FileEntry {
            path: relative.clone(),
            kind: EntityKind::Table,
            sha256: sha256(content),
            bytes: content.len() as u64,
            records: 1,
        });
    }
    let manifest = Manifest {
        format_version: "1".to_owned(),
        outpost_version: "test".to_owned(),
        identity: key.clone(),
        started_at: "2026-11-26T00:00:00Z".to_owned(),
        finished_at: "2026-11-26T00:00:01Z".to_owned(),
        files: entries,
        totals: BTreeMap::new(),
        skipped: Vec::new(),
        incomplete: Vec::new(),
        signature: None,
        queries: Vec::new(),
        exports: Vec::new(),
    };
    let mut text = serde_json::to_vec_pretty(&manifest).expect("json");
    text.push(b'\n');
    std::fs::write(dir.join("manifest.json"), text).expect("write manifest");
    dir.to_owned()
}

/// `count` small files spread over a few streams, with sizes from 0 bytes up.
pub fn small_files(count: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let stream = ["tables", "columns", "constraints", "indexes"][i % 4];
            let len = (i * 997 + seed as usize * 13) % 70_000;
            (
                format!("{stream}/part-{i:05}.ndjson.zst"),
                bytes(seed * 1000 + i as u64, len),
            )
        })
        .collect()
}

/// Everything under the run's folder: relative path → bytes.
pub async fn read_back(bucket: &Bucket, key: &RunIdentity) -> BTreeMap<String, Vec<u8>> {
    let prefix = bucket
        .location(&key.folder().expect("ids"), "")
        .expect("path");
    let metas: Vec<ObjectMeta> = bucket
        .store
        .list(Some(&prefix))
        .map(|m| m.expect("list"))
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for meta in metas {
        let data = bucket
            .store
            .get(&meta.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        let relative = meta
            .location
            .as_ref()
            .strip_prefix(prefix.as_ref())
            .expect("under prefix")
            .trim_start_matches('/')
            .to_owned();
        out.insert(relative, data.to_vec());
    }
    out
}

/// What a delivered run must look like: exactly the manifest's files with its checksums,
/// plus the manifest itself, byte for byte.
pub fn assert_delivered(objects: &BTreeMap<String, Vec<u8>>, run_dir: &Path) {
    let manifest_bytes = std::fs::read(run_dir.join("manifest.json")).expect("manifest");
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).expect("manifest");
    assert_eq!(
        objects.get("manifest.json").map(Vec::as_slice),
        Some(manifest_bytes.as_slice()),
        "the stored manifest differs from the local one"
    );
    let mut expected: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    expected.push("manifest.json");
    expected.sort_unstable();
    let stored: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(stored, expected, "stored objects differ from the manifest");
    for file in &manifest.files {
        let data = &objects[&file.path];
        assert_eq!(data.len() as u64, file.bytes, "{}: size", file.path);
        assert_eq!(sha256(data), file.sha256, "{}: sha256", file.path);
    }
}

/// Records the location of each write as it completes (single PUTs and completed multipart
/// uploads), to prove the manifest is the last.
#[derive(Debug)]
pub struct RecordingStore {
    inner: Arc<dyn ObjectStore>,
    log: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Display for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recording({})", self.inner)
    }
}

delivery::forwarding_object_store! {
    RecordingStore, to inner, writing {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let result = self.inner.put_opts(location, payload, opts).await?;
            self.log.lock().expect("log").push(location.to_string());
            Ok(result)
        }

        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            let inner = self.inner.put_multipart_opts(location, opts).await?;
            Ok(Box::new(RecordingUpload {
                inner,
                location: location.to_string(),
                log: self.log.clone(),
            }))
        }
    }
}

#[derive(Debug)]
struct RecordingUpload {
    inner: Box<dyn MultipartUpload>,
    location: String,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl MultipartUpload for RecordingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let result = self.inner.complete().await?;
        self.log.lock().expect("log").push(self.location.clone());
        Ok(result)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}
