//! M4 of the security review (issue 13): a store that answers 403 and then trickles its
//! error body, one byte every 2 seconds here (every 20 s in the review), kept `outpost
//! upload` alive until it was killed at 170 s. Both upload paths now read an error body for
//! at most 16 KiB and 10 s: pre-signed URL uploads (direct ingestion) and `object_store`'s
//! requests (bucket relay, S3 here). The trickling server goes on for 10 minutes; each
//! delivery must fail with the store's refusal well before that. No external services are
//! needed: the store is a loopback socket.

mod support;

use std::time::{Duration, Instant, SystemTime};

use control_plane::test_support::raw_http_server;
use delivery::NoProgress;
use delivery::bucket::{Bucket, BucketUrl, StoreSettings};
use delivery::direct::{DirectLimits, UploadUrl, UrlFile, UrlSet, deliver_direct, http_client};
use delivery::relay::{UploadLimits, relay};
use delivery::run::LocalRun;
use support::{key, small_files, write_run};
use tokio::io::AsyncWriteExt as _;

/// How long the store trickles before it gives up: far beyond any bound under test.
const TRICKLE_FOR: Duration = Duration::from_secs(600);
/// How long a delivery may take here: the 10 s error-body bound, a refresh, and margin.
const BOUND: Duration = Duration::from_secs(60);

/// A loopback "store" answering every request `403 AccessDenied` with a 100,000-byte body
/// of which it sends the first line at once and then one byte every 2 s.
async fn trickling_store() -> std::net::SocketAddr {
    raw_http_server(|mut stream, _head| async move {
        let start = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>";
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: 100000\r\n\r\n{}",
            String::from_utf8_lossy(start)
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        let started = Instant::now();
        while started.elapsed() < TRICKLE_FOR {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if stream.write_all(b"x").await.is_err() {
                return;
            }
        }
    })
    .await
}

#[tokio::test]
async fn m4_a_url_host_that_answers_403_and_trickles_does_not_hold_a_direct_upload() {
    delivery::install_crypto_provider();
    let address = trickling_store().await;
    let work = tempfile::tempdir().expect("dir");
    let key = key();
    let dir = write_run(&work.path().join("run"), &key, &small_files(3, 7));
    let run = LocalRun::open(&dir).expect("run");
    let mut urls = UrlSet::new();
    for path in run
        .files
        .iter()
        .map(|f| f.relative.clone())
        .chain(["manifest.json".to_owned()])
    {
        urls.insert(
            path.clone(),
            UploadUrl {
                url: url::Url::parse(&format!("http://{address}/ingest/{path}?X-Amz-Signature=s"))
                    .expect("url"),
                method: "PUT".to_owned(),
                headers: Default::default(),
                expires_at: SystemTime::now() + Duration::from_secs(3600),
            },
        );
    }
    let url_file = work.path().join("urls.json");
    std::fs::write(&url_file, serde_json::to_vec(&urls).expect("json")).expect("urls");
    let started = Instant::now();
    let delivered = tokio::time::timeout(
        BOUND,
        deliver_direct(
            &http_client(None).expect("client"),
            &UrlFile::new(&url_file),
            &run,
            DirectLimits::default(),
            &NoProgress,
        ),
    )
    .await;
    let took = started.elapsed();
    eprintln!(
        "direct upload against a 403 that trickles its body: gave up after {:.1} s",
        took.as_secs_f64()
    );
    let error = delivered
        .unwrap_or_else(|_| panic!("the upload was still held after {BOUND:?}"))
        .expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("403"), "{text}");
    assert!(text.contains("AccessDenied"), "{text}");
}

#[tokio::test]
async fn m4_a_store_that_answers_403_and_trickles_does_not_hold_a_relay_upload() {
    delivery::install_crypto_provider();
    let address = trickling_store().await;
    let work = tempfile::tempdir().expect("dir");
    let credentials = work.path().join("credentials");
    std::fs::create_dir_all(&credentials).expect("dir");
    std::fs::write(credentials.join("access-key-id"), "bounded-test-key").expect("key");
    std::fs::write(credentials.join("secret-access-key"), "bounded-test-secret").expect("secret");
    let bucket = Bucket::open(
        &BucketUrl::parse("s3://relay/prefix").expect("url"),
        &StoreSettings {
            endpoint: Some(format!("http://{address}")),
            region: Some("us-east-1".to_owned()),
            credentials_dir: Some(credentials),
            // Short, so that this test fails fast should a request not be bounded by the
            // error-body bound but by this one: the default is 5 minutes.
            request_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        },
    )
    .expect("bucket");
    let key = key();
    let dir = write_run(&work.path().join("run"), &key, &small_files(3, 7));
    let run = LocalRun::open(&dir).expect("run");
    let started = Instant::now();
    let delivered = tokio::time::timeout(
        BOUND,
        relay(&bucket, &key, &run, UploadLimits::default(), &NoProgress),
    )
    .await;
    let took = started.elapsed();
    eprintln!(
        "bucket relay (S3) against a 403 that trickles its body: gave up after {:.1} s",
        took.as_secs_f64()
    );
    let error = delivered
        .unwrap_or_else(|_| panic!("the relay was still held after {BOUND:?}"))
        .expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("403") || text.contains("AccessDenied") || text.contains("ermission"),
        "{text}"
    );
}
