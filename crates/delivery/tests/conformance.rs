//! One conformance suite, run against every backend: a local folder, S3 (s3s-fs, which
//! checks signatures), Azure Blob (Azurite) and GCS (fake-gcs-server). Each test's name
//! carries its backend (`s3::large_multipart`).

mod support;

use delivery::NoProgress;
use delivery::bucket::StoreKind;
use delivery::relay::{UploadLimits, relay};
use delivery::run::LocalRun;
use object_store::ObjectStoreExt;
use support::*;

fn put_and_read_back(kind: StoreKind) {
    let backend = Backend::open(kind, "put");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let mut files = small_files(11, 1);
    files.push(("lineage/part-00000.ndjson.zst".to_owned(), Vec::new()));
    let dir = write_run(&work.path().join("run"), &key, &files);
    runtime().block_on(async {
        let bucket = backend.bucket();
        let run = LocalRun::open(&dir).expect("run");
        let report = relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect("delivered");
        assert_eq!(report.files, 12);
        assert!(!report.already_delivered);
        assert!(
            report
                .manifest
                .ends_with("pg-prod/job-0001/run-0001/manifest.json")
        );
        assert_delivered(&read_back(&bucket, &key).await, &dir);
    });
}

fn overwrite(kind: StoreKind) {
    let backend = Backend::open(kind, "overwrite");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let first = vec![
        ("tables/part-00000.ndjson.zst".to_owned(), bytes(1, 1000)),
        ("columns/part-00000.ndjson.zst".to_owned(), bytes(2, 2000)),
        ("columns/part-00001.ndjson.zst".to_owned(), bytes(3, 3000)),
    ];
    // The same run extracted again: one file changed, two gone, one new.
    let second = vec![
        ("tables/part-00000.ndjson.zst".to_owned(), bytes(4, 1500)),
        ("indexes/part-00000.ndjson.zst".to_owned(), bytes(5, 500)),
    ];
    let first_dir = write_run(&work.path().join("first"), &key, &first);
    let second_dir = write_run(&work.path().join("second"), &key, &second);
    runtime().block_on(async {
        let bucket = backend.bucket();
        for dir in [&first_dir, &second_dir] {
            let run = LocalRun::open(dir).expect("run");
            let report = relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
                .await
                .expect("delivered");
            if dir == &second_dir {
                assert_eq!(report.stale_deleted, 2, "the two files the new run lacks");
            }
        }
        assert_delivered(&read_back(&bucket, &key).await, &second_dir);
    });
}

fn large_multipart(kind: StoreKind) {
    let backend = Backend::open(kind, "multipart");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let files = vec![
        // Three parts of 8 MiB, the last one short.
        (
            "columns/part-00000.ndjson.zst".to_owned(),
            bytes(7, (21 << 20) + 123),
        ),
        ("tables/part-00000.ndjson.zst".to_owned(), bytes(8, 4096)),
    ];
    let dir = write_run(&work.path().join("run"), &key, &files);
    runtime().block_on(async {
        let (bucket, log) = backend.recorded_bucket();
        let run = LocalRun::open(&dir).expect("run");
        let limits = UploadLimits {
            concurrency: 2,
            part_size: 8 << 20,
            memory_budget: 24 << 20,
        };
        relay(&bucket, &key, &run, limits, &NoProgress)
            .await
            .expect("delivered");
        assert_delivered(&read_back(&bucket, &key).await, &dir);
        assert_eq!(
            log.lock().expect("log").len(),
            3,
            "two files and the manifest"
        );
    });
}

/// More multipart files at once than the memory budget holds parts: uploads must wait for
/// memory without holding it hostage (this deadlocked once).
fn many_large_files_in_little_memory(kind: StoreKind) {
    let backend = Backend::open(kind, "budget");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("columns/part-{i:05}.ndjson.zst"),
                bytes(40 + i, (11 << 20) + i as usize),
            )
        })
        .collect();
    let dir = write_run(&work.path().join("run"), &key, &files);
    runtime().block_on(async {
        let bucket = backend.bucket();
        let run = LocalRun::open(&dir).expect("run");
        let limits = UploadLimits {
            concurrency: 6,
            part_size: 8 << 20,
            memory_budget: 16 << 20,
        };
        tokio::time::timeout(
            std::time::Duration::from_secs(120),
            relay(&bucket, &key, &run, limits, &NoProgress),
        )
        .await
        .expect("no deadlock")
        .expect("delivered");
        assert_delivered(&read_back(&bucket, &key).await, &dir);
    });
}

fn listing(kind: StoreKind) {
    let backend = Backend::open(kind, "listing");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let files = small_files(9, 3);
    let dir = write_run(&work.path().join("run"), &key, &files);
    runtime().block_on(async {
        let bucket = backend.bucket();
        let run = LocalRun::open(&dir).expect("run");
        relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect("delivered");
        // One level down: the stream folders and the manifest, nothing else.
        let prefix = bucket
            .location(&key.folder().expect("ids"), "")
            .expect("path");
        let listed = bucket
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .expect("list");
        let folders: Vec<String> = listed
            .common_prefixes
            .iter()
            .map(|p| p.filename().expect("name").to_owned())
            .collect();
        assert_eq!(folders, ["columns", "constraints", "indexes", "tables"]);
        let objects: Vec<(String, u64)> = listed
            .objects
            .iter()
            .map(|m| (m.location.filename().expect("name").to_owned(), m.size))
            .collect();
        assert_eq!(
            objects,
            [(
                "manifest.json".to_owned(),
                std::fs::metadata(dir.join("manifest.json"))
                    .expect("manifest")
                    .len()
            )]
        );
        // Sizes in the listing agree with the manifest.
        for (relative, content) in &files {
            let meta = bucket
                .store
                .head(
                    &bucket
                        .location(&key.folder().expect("ids"), relative)
                        .expect("path"),
                )
                .await
                .expect("head");
            assert_eq!(meta.size, content.len() as u64, "{relative}");
        }
    });
}

fn manifest_last(kind: StoreKind) {
    let backend = Backend::open(kind, "order");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let mut files = small_files(30, 4);
    files.push((
        "columns/part-99999.ndjson.zst".to_owned(),
        bytes(9, 9 << 20),
    ));
    let dir = write_run(&work.path().join("run"), &key, &files);
    runtime().block_on(async {
        let (bucket, log) = backend.recorded_bucket();
        let run = LocalRun::open(&dir).expect("run");
        relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect("delivered");
        let log = log.lock().expect("log").clone();
        assert_eq!(
            log.len(),
            files.len() + 1,
            "each object written once: {log:?}"
        );
        let last = log.last().expect("writes");
        assert!(last.ends_with("/manifest.json"), "last write: {last}");
        assert_eq!(
            log.iter().filter(|l| l.ends_with("/manifest.json")).count(),
            1
        );
    });
}

fn idempotent_rerun(kind: StoreKind) {
    let backend = Backend::open(kind, "rerun");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let files = small_files(8, 5);
    let dir = write_run(&work.path().join("run"), &key, &files);
    runtime().block_on(async {
        let (bucket, log) = backend.recorded_bucket();
        // An attempt that fails half-way: a file changed after extraction.
        let victim = dir.join(&files[5].0);
        let original = std::fs::read(&victim).expect("read");
        let mut changed = original.clone();
        changed[0] ^= 0xff;
        std::fs::write(&victim, &changed).expect("write");
        let run = LocalRun::open(&dir).expect("run");
        let error = relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect_err("a changed file is refused");
        assert_eq!(error.exit_code(), outpost_core::ExitCode::Data, "{error}");
        let partial = read_back(&bucket, &key).await;
        assert!(
            !partial.contains_key("manifest.json"),
            "a failed run must not be visible"
        );
        assert!(
            !partial.contains_key(&files[5].0),
            "the changed file was sent"
        );

        // The retry completes it, with no duplicates.
        std::fs::write(&victim, &original).expect("restore");
        let run = LocalRun::open(&dir).expect("run");
        relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect("delivered");
        assert_delivered(&read_back(&bucket, &key).await, &dir);

        // Running it once more sends nothing.
        log.lock().expect("log").clear();
        let report = relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress)
            .await
            .expect("delivered");
        assert!(report.already_delivered);
        assert!(log.lock().expect("log").is_empty(), "a re-run wrote again");
        assert_delivered(&read_back(&bucket, &key).await, &dir);
    });
}

fn unfinished_run_is_refused(kind: StoreKind) {
    let backend = Backend::open(kind, "unfinished");
    let work = tempfile::tempdir().expect("tempdir");
    let key = key();
    let dir = write_run(&work.path().join("run"), &key, &small_files(3, 6));
    std::fs::remove_file(dir.join("manifest.json")).expect("remove");
    let error = LocalRun::open(&dir).expect_err("no manifest");
    assert_eq!(error.exit_code(), outpost_core::ExitCode::NoInput);
    runtime().block_on(async {
        assert!(read_back(&backend.bucket(), &key).await.is_empty());
    });
}

macro_rules! conformance {
    ($backend:ident, $kind:expr) => {
        mod $backend {
            #[test]
            fn put_and_read_back() {
                super::put_and_read_back($kind)
            }
            #[test]
            fn overwrite() {
                super::overwrite($kind)
            }
            #[test]
            fn large_multipart() {
                super::large_multipart($kind)
            }
            #[test]
            fn many_large_files_in_little_memory() {
                super::many_large_files_in_little_memory($kind)
            }
            #[test]
            fn listing() {
                super::listing($kind)
            }
            #[test]
            fn manifest_last() {
                super::manifest_last($kind)
            }
            #[test]
            fn idempotent_rerun() {
                super::idempotent_rerun($kind)
            }
            #[test]
            fn unfinished_run_is_refused() {
                super::unfinished_run_is_refused($kind)
            }
        }
    };
}

conformance!(local, delivery::bucket::StoreKind::Local);
conformance!(s3, delivery::bucket::StoreKind::S3);
conformance!(azure, delivery::bucket::StoreKind::Azure);
conformance!(gcs, delivery::bucket::StoreKind::Gcs);
