//! Zero loss under faults: 200 files delivered to S3 (s3s-fs) through a proxy that drops
//! connections mid-body, answers bursts of 503 and answers slowly. Every file must arrive
//! with the manifest's checksum, and the manifest must be the last write the store accepted.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use delivery::bucket::{Bucket, BucketUrl, StoreKind, StoreSettings};
use delivery::direct::{DirectLimits, UrlFile, deliver_direct, http_client};
use delivery::presign::presign_run;
use delivery::relay::{DeliveryReport, UploadLimits, relay};
use delivery::run::LocalRun;
use delivery::{DeliveryError, NoProgress};
use support::fault_proxy::{Exchange, Fault, FaultPlan, FaultProxy};
use support::*;

fn plan(seed: u64) -> FaultPlan {
    FaultPlan {
        drop_per_mille: 80,
        burst_per_mille: 40,
        burst_len: 3,
        slow_per_mille: 40,
        slow: Duration::from_millis(300),
        seed,
        rewrite_host: false,
    }
}

/// 200 files: small ones and `large` of 10 MiB that go up in parts.
fn two_hundred_files(large: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = small_files(200 - large, 11);
    for i in 0..large as u64 {
        files.push((
            format!("columns/part-9{i:04}.ndjson.zst"),
            bytes(100 + i, (10 << 20) + i as usize * 4099),
        ));
    }
    files
}

/// A run folder of [`two_hundred_files`] (`large` of them large) in a temporary folder:
/// that folder (removed when dropped), the run's folder and its files.
fn run_of_two_hundred_files(large: usize) -> (tempfile::TempDir, PathBuf, Vec<(String, Vec<u8>)>) {
    let work = tempfile::tempdir().expect("tempdir");
    let files = two_hundred_files(large);
    let dir = write_run(&work.path().join("run"), &key(), &files);
    (work, dir, files)
}

/// After a delivery of such a run through `proxy` that reported `delivered` files: faults
/// were injected, and the store holds the run (read back straight from it, not through the
/// proxy).
async fn assert_delivered_despite_faults(
    delivered: usize,
    proxy: &FaultProxy,
    backend: &Backend,
    dir: &Path,
) {
    assert_eq!(delivered, 200);
    assert_faults_happened(proxy);
    assert_delivered(&read_back(&backend.bucket(), &key()).await, dir);
}

/// A run of 200 files (4 of them large) delivered to S3 by `deliver` through a proxy that
/// injects the faults of `plan(seed)`: nothing is lost, and the manifest is the last write the
/// store accepted. `deliver` gets the bucket as reached through the proxy, the run, its files
/// and a folder for files of its own.
fn s3_loses_nothing_under_faults(
    test: &str,
    seed: u64,
    deliver: impl AsyncFnOnce(
        Bucket,
        &LocalRun,
        &[(String, Vec<u8>)],
        &Path,
    ) -> Result<DeliveryReport, DeliveryError>,
) {
    let backend = Backend::open(StoreKind::S3, test);
    let (work, dir, files) = run_of_two_hundred_files(4);
    runtime().block_on(async {
        let proxy = FaultProxy::start(&env("OUTPOST_TEST_S3_ENDPOINT"), plan(seed)).await;
        let run = LocalRun::open(&dir).expect("run");
        let report = deliver(through(&backend, &proxy), &run, &files, work.path())
            .await
            .expect("delivered despite faults");
        assert_manifest_committed_last(&proxy.log());
        assert_delivered_despite_faults(report.files, &proxy, &backend, &dir).await;
    });
}

/// The S3 bucket of `backend`, reached through `proxy`.
fn through(backend: &Backend, proxy: &FaultProxy) -> Bucket {
    let settings = StoreSettings {
        endpoint: Some(proxy.url()),
        ..backend.settings.clone()
    };
    Bucket::open(&backend.url, &settings).expect("bucket opens")
}

fn assert_manifest_committed_last(log: &[Exchange]) {
    let writes: Vec<&Exchange> = log.iter().filter(|e| e.is_accepted_write()).collect();
    let last = writes.last().expect("writes reached the store");
    assert!(
        last.path.ends_with("/manifest.json") && last.method == "PUT",
        "the last accepted write is {} {}",
        last.method,
        last.path
    );
    let manifests = writes
        .iter()
        .filter(|e| e.path.ends_with("/manifest.json"))
        .count();
    assert_eq!(manifests, 1, "the manifest was written {manifests} times");
}

fn assert_faults_happened(proxy: &FaultProxy) {
    let drops = proxy.count(Fault::DropMidBody);
    let unavailable = proxy.count(Fault::Unavailable);
    let slow = proxy.count(Fault::Slow);
    eprintln!("injected: {drops} dropped mid-body, {unavailable} answered 503, {slow} slow");
    assert!(drops >= 5, "only {drops} drops injected");
    assert!(unavailable >= 5, "only {unavailable} 503s injected");
    assert!(slow >= 2, "only {slow} slow answers injected");
}

#[test]
fn relay_loses_nothing_under_faults() {
    s3_loses_nothing_under_faults("faults-relay", 7, async |bucket, run, _, _| {
        relay(&bucket, &key(), run, UploadLimits::default(), &NoProgress).await
    });
}

/// GCS through the JSON API: single uploads and resumable sessions, whose chunks resume
/// from what the server says it persisted.
#[test]
fn gcs_relay_loses_nothing_under_faults() {
    let backend = Backend::open(StoreKind::Gcs, "faults-gcs");
    let key = key();
    // Enough resumable sessions (two chunks each) that faults hit them.
    let (_work, dir, _) = run_of_two_hundred_files(16);
    runtime().block_on(async {
        let proxy = FaultProxy::start(
            &env("OUTPOST_TEST_GCS_ENDPOINT"),
            FaultPlan {
                rewrite_host: true,
                ..plan(29)
            },
        )
        .await;
        let run = LocalRun::open(&dir).expect("run");
        let (bucket, writes) = recorded(through(&backend, &proxy));
        let report = relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect("delivered despite faults");
        let session_faults = proxy
            .log()
            .iter()
            .filter(|e| e.query.contains("upload_id") && e.fault.is_some())
            .count();
        eprintln!("faults injected into resumable sessions: {session_faults}");
        assert!(session_faults >= 1, "no fault hit a resumable session");
        // The JSON API names objects in request bodies, so the order is taken at the client:
        // each write is logged when the store has acknowledged it.
        let writes = writes.lock().expect("log").clone();
        assert_eq!(writes.len(), 201, "each object acknowledged once");
        assert!(writes.last().expect("writes").ends_with("/manifest.json"));
        assert_delivered_despite_faults(report.files, &proxy, &backend, &dir).await;
    });
}

#[test]
fn direct_ingestion_loses_nothing_under_faults() {
    s3_loses_nothing_under_faults("faults-direct", 13, async |bucket, run, files, work| {
        // URLs signed for the proxy's address, as a SaaS signs them for its own host.
        let mut paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
        paths.push("manifest.json".to_owned());
        let urls = presign_run(&bucket, &key(), &paths, Duration::from_secs(900))
            .await
            .expect("signed");
        let url_file = work.join("urls.json");
        std::fs::write(&url_file, serde_json::to_vec(&urls).expect("json")).expect("write");
        let limits = DirectLimits {
            initial_backoff: Duration::from_millis(20),
            ..DirectLimits::default()
        };
        deliver_direct(
            &http_client(None).expect("client"),
            &UrlFile::new(&url_file),
            run,
            limits,
            &NoProgress,
        )
        .await
    });
}

#[test]
fn a_store_that_never_recovers_fails_with_the_retry_exit_code() {
    let backend = Backend::open(StoreKind::S3, "faults-down");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let dir = write_run(&work.path().join("run"), &key, &small_files(3, 12));
    runtime().block_on(async {
        let always_down = FaultPlan {
            drop_per_mille: 0,
            burst_per_mille: 1000,
            burst_len: 1,
            slow_per_mille: 0,
            slow: Duration::ZERO,
            seed: 1,
            rewrite_host: false,
        };
        let proxy = FaultProxy::start(&env("OUTPOST_TEST_S3_ENDPOINT"), always_down).await;
        let settings = StoreSettings {
            endpoint: Some(proxy.url()),
            retry_timeout: Some(Duration::from_secs(3)),
            ..backend.settings.clone()
        };
        let bucket = Bucket::open(
            &BucketUrl::parse(&backend.url.to_string()).expect("url"),
            &settings,
        )
        .expect("opens");
        let run = LocalRun::open(&dir).expect("run");
        let error = relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect_err("the store is down");
        assert_eq!(
            error.exit_code(),
            outpost_core::ExitCode::Temporary,
            "{error}"
        );
        assert!(read_back(&backend.bucket(), &key).await.is_empty());
    });
}
