//! Finding M2 (security issue 13): direct-ingestion URLs had no host allow-list, loopback
//! and private addresses were accepted, and the control plane's headers (an
//! `Authorization` header included) were sent as given. Each test replays the reproduction
//! against a real listener on loopback and shows nothing reaches it any more; each has a
//! control case showing the listener does receive what is allowed, so a refusal is the
//! policy's doing and not a broken listener.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use delivery::direct::{DirectLimits, UploadUrl, UrlSet, UrlSource, deliver_direct, http_client};
use delivery::ingest::{CheckedSource, IngestPolicy};
use delivery::run::LocalRun;
use delivery::{DeliveryError, NoProgress};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// One request the listener received: its request line and headers (lowercased names).
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

/// A plain HTTP/1.1 server on 127.0.0.1 answering every request with `status`, recording it.
struct Listener {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut headers = Vec::new();
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':') {
                                let name = name.trim().to_ascii_lowercase();
                                if name == "content-length" {
                                    length = value.trim().parse().unwrap_or(0);
                                }
                                headers.push((name, value.trim().to_owned()));
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        recorded.lock().expect("lock").push(Seen {
                            line: line.trim_end().to_owned(),
                            headers,
                        });
                        let answer =
                            format!("HTTP/1.1 {status} Status\r\ncontent-length: 0\r\n\r\n");
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A run of three small files in a temporary folder.
struct Run {
    _dir: tempfile::TempDir,
    run: LocalRun,
}

fn run() -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = support::key();
    let path = support::write_run(&dir.path().join("run"), &key, &support::small_files(3, 5));
    let run = LocalRun::open(&path).expect("run");
    Run { _dir: dir, run }
}

fn paths(run: &LocalRun) -> Vec<String> {
    let mut paths: Vec<String> = run.files.iter().map(|f| f.relative.clone()).collect();
    paths.push("manifest.json".to_owned());
    paths
}

/// What a control plane hands out: every path to `base` + path, with `headers`.
fn url_set(run: &LocalRun, base: &str, headers: &[(&str, &str)]) -> UrlSet {
    paths(run)
        .into_iter()
        .map(|path| {
            let url =
                UploadUrl::put_for_tests(&format!("{base}/{path}?X-Amz-Signature=abc"), headers);
            (path, url)
        })
        .collect()
}

/// A control plane answering with fixed URL sets: `urls` first, `refreshed` on refresh.
struct FixedSource {
    urls: UrlSet,
    refreshed: Option<UrlSet>,
}

#[async_trait::async_trait]
impl UrlSource for FixedSource {
    async fn urls(&self, paths: &[String]) -> Result<UrlSet, DeliveryError> {
        Ok(paths
            .iter()
            .filter_map(|p| self.urls.get(p).map(|u| (p.clone(), u.clone())))
            .collect())
    }

    async fn refresh(&self, path: &str) -> Result<UploadUrl, DeliveryError> {
        self.refreshed
            .as_ref()
            .and_then(|set| set.get(path).cloned())
            .ok_or_else(|| DeliveryError::Urls(format!("no fresh URL for {path}")))
    }
}

fn checked(source: FixedSource, hosts: &[&str], loopback: bool) -> CheckedSource {
    let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
    CheckedSource::new(
        Box::new(source),
        IngestPolicy::new(&hosts, loopback).expect("policy"),
    )
}

async fn deliver(source: &dyn UrlSource, run: &LocalRun) -> Result<(), DeliveryError> {
    delivery::install_crypto_provider();
    let client = http_client(None).expect("client");
    let limits = DirectLimits {
        retry_budget: Duration::from_secs(2),
        ..DirectLimits::default()
    };
    deliver_direct(&client, source, run, limits, &NoProgress)
        .await
        .map(drop)
}

#[tokio::test]
async fn m2_private_and_loopback_ingest_urls_are_refused() {
    let listener = Listener::start(200).await;
    let run = run();
    let loopback = format!("http://127.0.0.1:{}/ingest", listener.port);
    // The reproduction: loopback over http, the API server, the metadata service, private
    // and link-local addresses, each handed out as the upload URLs of a run.
    let cases = [
        (loopback.clone(), "loopback"),
        (
            format!("http://localhost:{}/ingest", listener.port),
            "loopback",
        ),
        (
            "https://kubernetes.default.svc/api/v1/namespaces".to_owned(),
            "not on the ingest allow-list",
        ),
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "link-local address 169.254.169.254",
        ),
        ("https://10.0.0.7/bucket".to_owned(), "private address"),
        ("https://192.168.1.20/bucket".to_owned(), "private address"),
        (
            "https://[fd00::1]/bucket".to_owned(),
            "unique-local address",
        ),
        ("https://[fe80::1]/bucket".to_owned(), "link-local address"),
        (
            "https://[::ffff:127.0.0.1]/bucket".to_owned(),
            "IP addresses are never used",
        ),
        ("https://0x7f000001/bucket".to_owned(), "loopback"),
        (
            "http://ingest.example.com/bucket".to_owned(),
            "only https is allowed",
        ),
        (
            "https://user:pw@ingest.example.com/bucket".to_owned(),
            "user info",
        ),
    ];
    for (base, why) in &cases {
        let source = checked(
            FixedSource {
                urls: url_set(&run.run, base, &[]),
                refreshed: None,
            },
            &["ingest.example.com", "*.blob.core.windows.net"],
            false,
        );
        let error = deliver(&source, &run.run).await.expect_err(base);
        assert_eq!(
            error.exit_code(),
            outpost_core::ExitCode::Config,
            "{base}: {error}"
        );
        let text = error.to_string();
        assert!(text.contains(why), "{base}: expected `{why}` in: {text}");
        assert!(text.contains("nothing was uploaded"), "{text}");
        assert!(
            !text.contains("X-Amz-Signature"),
            "the query (a credential) is never shown: {text}"
        );
    }
    // Even with loopback allowed, a private address stays refused.
    let source = checked(
        FixedSource {
            urls: url_set(&run.run, "http://10.1.2.3:9000/b", &[]),
            refreshed: None,
        },
        &[],
        true,
    );
    let error = deliver(&source, &run.run).await.expect_err("private");
    assert!(error.to_string().contains("private address"), "{error}");
    assert!(
        listener.seen().is_empty(),
        "a refused URL was requested: {:?}",
        listener.seen()
    );

    // Control: with the explicit loopback opt-in, the same loopback URLs are used.
    let source = checked(
        FixedSource {
            urls: url_set(&run.run, &loopback, &[]),
            refreshed: None,
        },
        &[],
        true,
    );
    deliver(&source, &run.run).await.expect("delivered");
    assert_eq!(listener.seen().len(), paths(&run.run).len());
}

#[tokio::test]
async fn m2_an_authorization_header_from_the_control_plane_is_refused() {
    let listener = Listener::start(200).await;
    let run = run();
    let loopback = format!("http://127.0.0.1:{}/ingest", listener.port);
    // The reproduction: the control plane asks for credentials and routing headers.
    for header in [
        ("Authorization", "Bearer agent-token-stolen"),
        ("authorization", "Basic dXNlcjpwdw=="),
        ("Proxy-Authorization", "Basic dXNlcjpwdw=="),
        ("Cookie", "session=1"),
        ("HOST", "kubernetes.default.svc"),
    ] {
        let source = checked(
            FixedSource {
                urls: url_set(&run.run, &loopback, &[header, ("Content-Type", "x")]),
                refreshed: None,
            },
            &[],
            true,
        );
        let error = deliver(&source, &run.run).await.expect_err(header.0);
        let text = error.to_string();
        assert!(
            text.contains(&format!(
                "header `{}` may not come from the control plane",
                header.0
            )),
            "{text}"
        );
        assert!(
            !text.contains(header.1),
            "the header's value is not repeated: {text}"
        );
    }
    assert!(listener.seen().is_empty(), "{:?}", listener.seen());

    // A refreshed URL is checked too: the store rejects the first URL (403), and the
    // refresh brings one with an Authorization header.
    let rejecting = Listener::start(403).await;
    let first = format!("http://127.0.0.1:{}/ingest", rejecting.port);
    let source = checked(
        FixedSource {
            urls: url_set(&run.run, &first, &[]),
            refreshed: Some(url_set(
                &run.run,
                &loopback,
                &[("Authorization", "Bearer agent-token-stolen")],
            )),
        },
        &[],
        true,
    );
    let error = deliver(&source, &run.run)
        .await
        .expect_err("refresh refused");
    assert!(
        error
            .to_string()
            .contains("refreshed upload URL was refused"),
        "{error}"
    );
    assert!(listener.seen().is_empty(), "{:?}", listener.seen());

    // Control: the store headers the URL set needs are sent as given.
    let source = checked(
        FixedSource {
            urls: url_set(&run.run, &loopback, &[("x-ms-blob-type", "BlockBlob")]),
            refreshed: None,
        },
        &[],
        true,
    );
    deliver(&source, &run.run).await.expect("delivered");
    let seen = listener.seen();
    assert_eq!(seen.len(), paths(&run.run).len());
    for request in &seen {
        assert!(request.line.starts_with("PUT /ingest/"), "{request:?}");
        assert!(
            request
                .headers
                .contains(&("x-ms-blob-type".to_owned(), "BlockBlob".to_owned())),
            "{request:?}"
        );
        assert!(
            !request
                .headers
                .iter()
                .any(|(name, _)| name == "authorization"),
            "{request:?}"
        );
    }
}
