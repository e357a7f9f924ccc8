//! Direct ingestion through pre-signed URLs against stores that check them: S3 (s3s-fs) and
//! Azure Blob SAS (Azurite) reject expired, tampered and re-targeted URLs with 403, and the
//! delivery must fail cleanly with nothing of the run visible. fake-gcs-server checks no
//! signature, so GCS V4 URLs get the happy path only.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use delivery::bucket::{Bucket, StoreKind};
use delivery::direct::{
    DirectLimits, UploadUrl, UrlFile, UrlSet, UrlSource, deliver_direct, http_client,
};
use delivery::presign::presign_run;
use delivery::run::LocalRun;
use delivery::{DeliveryError, NoProgress};
use outpost_core::run::RunIdentity;
use support::*;

struct Case {
    _backend: Backend,
    bucket: Bucket,
    signer: Bucket,
    work: tempfile::TempDir,
    key: RunIdentity,
    files: Vec<(String, Vec<u8>)>,
    run: LocalRun,
}

impl Case {
    fn new(kind: StoreKind, test: &str) -> Self {
        let mut backend = Backend::open(kind, test);
        let bucket = backend.bucket();
        let signer = backend.signing_bucket();
        let work = tempfile::tempdir().expect("tempdir");
        let key = key();
        let files = small_files(6, 21);
        let dir = write_run(&work.path().join("run"), &key, &files);
        let run = LocalRun::open(&dir).expect("run");
        Self {
            _backend: backend,
            bucket,
            signer,
            work,
            key,
            files,
            run,
        }
    }

    fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.files.iter().map(|(p, _)| p.clone()).collect();
        paths.push("manifest.json".to_owned());
        paths
    }

    async fn sign(&self, expires_in: Duration) -> UrlSet {
        presign_run(&self.signer, &self.key, &self.paths(), expires_in)
            .await
            .expect("signed")
    }

    fn url_file(&self, urls: &UrlSet) -> UrlFile {
        let path = self.work.path().join("urls.json");
        std::fs::write(&path, serde_json::to_vec_pretty(urls).expect("json")).expect("write");
        UrlFile::new(path)
    }

    async fn deliver(&self, source: &dyn UrlSource) -> Result<(), DeliveryError> {
        let limits = DirectLimits {
            retry_budget: Duration::from_secs(5),
            ..DirectLimits::default()
        };
        deliver_direct(
            &http_client(None).expect("client"),
            source,
            &self.run,
            limits,
            &NoProgress,
        )
        .await
        .map(|_| ())
    }

    async fn stored(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        read_back(&self.bucket, &self.key).await
    }

    /// Delivers through `urls`, whose URL for `victim` was `spoiled` ("tampered"…): the
    /// store refuses it, the upload is not stored and the run never becomes visible.
    async fn assert_refused(&self, urls: &UrlSet, victim: &str, spoiled: &str) {
        let error = self.deliver(&self.url_file(urls)).await.expect_err(spoiled);
        assert_rejected(&error);
        let stored = self.stored().await;
        assert!(
            !stored.contains_key(victim),
            "the {spoiled} upload was stored"
        );
        assert!(
            !stored.contains_key("manifest.json"),
            "the run became visible"
        );
    }
}

fn happy_path(kind: StoreKind) {
    let case = Case::new(kind, "signed-ok");
    runtime().block_on(async {
        let urls = case.sign(Duration::from_secs(600)).await;
        if kind == StoreKind::Azure {
            assert_eq!(urls["manifest.json"].headers["x-ms-blob-type"], "BlockBlob");
        }
        case.deliver(&case.url_file(&urls))
            .await
            .expect("delivered");
        assert_delivered(&case.stored().await, &case.run.dir);
    });
}

/// The URL expired at the store, though the URL set claims otherwise: the store says 403,
/// the one refresh returns the same URL, and the delivery stops.
fn expired_at_the_store(kind: StoreKind) {
    let case = Case::new(kind, "signed-expired");
    runtime().block_on(async {
        let mut urls = case.sign(Duration::from_secs(1)).await;
        for url in urls.values_mut() {
            url.expires_at = SystemTime::now() + Duration::from_secs(3600);
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let error = case
            .deliver(&case.url_file(&urls))
            .await
            .expect_err("expired");
        assert_rejected(&error);
        assert!(case.stored().await.is_empty(), "something was stored");
    });
}

/// URLs known to be expired are refused before a single byte is sent.
fn expired_before_sending(kind: StoreKind) {
    let case = Case::new(kind, "signed-stale");
    runtime().block_on(async {
        let urls = case.sign(Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let error = case
            .deliver(&case.url_file(&urls))
            .await
            .expect_err("expired");
        assert!(
            matches!(error, DeliveryError::Urls(_))
                && error.to_string().contains("nothing was uploaded"),
            "{error}"
        );
        assert!(case.stored().await.is_empty(), "something was stored");
    });
}

fn tampered(kind: StoreKind) {
    let case = Case::new(kind, "signed-tampered");
    runtime().block_on(async {
        let mut urls = case.sign(Duration::from_secs(600)).await;
        let victim = case.files[2].0.clone();
        let url = &mut urls.get_mut(&victim).expect("url").url;
        let query = url.query().expect("signed").to_owned();
        let signature_key = if kind == StoreKind::Azure {
            "sig="
        } else {
            "X-Amz-Signature="
        };
        let at = query.find(signature_key).expect("signature") + signature_key.len();
        let mut bytes = query.into_bytes();
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        url.set_query(Some(&String::from_utf8(bytes).expect("ascii")));
        case.assert_refused(&urls, &victim, "tampered").await;
    });
}

/// A URL signed for one object, pointed at another: the signature no longer matches.
fn retargeted(kind: StoreKind) {
    let case = Case::new(kind, "signed-retargeted");
    runtime().block_on(async {
        let mut urls = case.sign(Duration::from_secs(600)).await;
        let (a, b) = (case.files[0].0.clone(), case.files[1].0.clone());
        let mut for_a = urls[&a].url.clone();
        let path_b = urls[&b].url.path().to_owned();
        for_a.set_path(&path_b);
        urls.get_mut(&b).expect("url").url = for_a;
        case.assert_refused(&urls, &b, "re-targeted").await;
    });
}

/// A rejected URL is refreshed exactly once, and a good refresh completes the delivery.
fn refreshed_once(kind: StoreKind) {
    let case = Case::new(kind, "signed-refresh");
    runtime().block_on(async {
        let good = case.sign(Duration::from_secs(600)).await;
        let victim = case.files[3].0.clone();
        let mut bad = good.clone();
        let url = &mut bad.get_mut(&victim).expect("url").url;
        url.set_query(Some("X-Amz-Signature=0&sig=0"));
        let source = Refreshing {
            first: bad,
            fresh: good,
            refreshes: AtomicUsize::new(0),
        };
        case.deliver(&source)
            .await
            .expect("delivered after one refresh");
        assert_eq!(source.refreshes.load(Ordering::SeqCst), 1);
        assert_delivered(&case.stored().await, &case.run.dir);
    });
}

fn assert_rejected(error: &DeliveryError) {
    assert!(
        matches!(error, DeliveryError::UrlRejected { status: 403, .. }),
        "expected a 403 rejection, got: {error}"
    );
    assert_eq!(error.exit_code(), outpost_core::ExitCode::NoPermission);
    let text = error.to_string();
    assert!(
        !text.contains("X-Amz-") && !text.contains("sig=") && !text.contains('?'),
        "the error shows the URL's query: {text}"
    );
}

/// Hands out `first`; refreshes come from `fresh`.
struct Refreshing {
    first: UrlSet,
    fresh: UrlSet,
    refreshes: AtomicUsize,
}

#[async_trait::async_trait]
impl UrlSource for Refreshing {
    async fn urls(&self, _paths: &[String]) -> Result<UrlSet, DeliveryError> {
        Ok(self.first.clone())
    }
    async fn refresh(&self, path: &str) -> Result<UploadUrl, DeliveryError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        Ok(self.fresh[path].clone())
    }
}

macro_rules! signed_urls {
    ($backend:ident, $kind:expr) => {
        mod $backend {
            #[test]
            fn happy_path() {
                super::happy_path($kind)
            }
            #[test]
            fn expired_at_the_store() {
                super::expired_at_the_store($kind)
            }
            #[test]
            fn expired_before_sending() {
                super::expired_before_sending($kind)
            }
            #[test]
            fn tampered() {
                super::tampered($kind)
            }
            #[test]
            fn retargeted() {
                super::retargeted($kind)
            }
            #[test]
            fn refreshed_once() {
                super::refreshed_once($kind)
            }
        }
    };
}

signed_urls!(s3, delivery::bucket::StoreKind::S3);
signed_urls!(azure, delivery::bucket::StoreKind::Azure);

mod gcs {
    /// fake-gcs-server accepts any signature: the V4 URL's happy path only.
    #[test]
    fn happy_path() {
        super::happy_path(delivery::bucket::StoreKind::Gcs)
    }
}
