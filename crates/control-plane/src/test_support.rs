//! Test support, behind the `test-support` feature (for this crate's tests and those of
//! crates that test against the control plane): the reference server on a loopback port,
//! with its token files in a temporary folder, a layer recording every exchange and faults
//! switched on and off; and a raw loopback HTTP server for answers no real server gives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use crate::api::{Heartbeat, Heartbeats, JobRecords};
use crate::server::{Limits, ServerConfig, router, serve};
use crate::store::Store;
use crate::{Claim, ClientConfig, ControlPlaneClient};

/// The agent the test server knows.
pub const AGENT: &str = "agent-1";
/// [`AGENT`]'s token.
pub const AGENT_TOKEN: &str = "agent-token-0123456789";
/// The operator's token.
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";

/// A postgres job `id` of run `run-1`, over the schema `app`, delivered by direct ingestion.
pub fn job(id: &str) -> Value {
    json!({
        "id": id, "runId": "run-1", "connector": "postgres", "connection": "pg-prod",
        "transferMode": "direct-ingestion",
        "parameters": { "include-schemas": "^app$" }
    })
}

/// One request and its answer, bodies included.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The request's content type.
    pub request_type: Option<String>,
    /// The request's body.
    pub request_body: Vec<u8>,
    /// The answer's status.
    pub status: u16,
    /// The answer's content type.
    pub response_type: Option<String>,
    /// The answer's body.
    pub response_body: Vec<u8>,
}

/// Faults switched on and off while a test runs.
#[derive(Default)]
pub struct Faults {
    /// Requests whose path contains one of these answer 503 (before taking effect).
    pub fail_paths: Vec<String>,
    /// Every agent request waits this long before it is handled.
    pub delay: Duration,
}

/// The reference server on a loopback port, its files in a temporary folder.
pub struct TestServer {
    /// Faults to switch on and off.
    pub faults: Arc<Mutex<Faults>>,
    /// The folder of its tokens files and database.
    pub dir: tempfile::TempDir,
    /// Its base URL.
    pub url: url::Url,
    /// Every exchange so far.
    pub exchanges: Arc<Mutex<Vec<Exchange>>>,
    /// Its SQLite database.
    pub database: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// A server with the configuration `configure` makes of the default one.
    pub async fn start(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_with_faults(configure, 0.0).await
    }

    /// A server where each request fails with 503 with probability `fault_rate`: half of
    /// them before the request takes effect, half after (the change is made, the answer
    /// lost), which is what a flaky load balancer in front of a control plane does.
    pub async fn start_with_faults(
        configure: impl FnOnce(&mut ServerConfig),
        fault_rate: f64,
    ) -> Self {
        delivery::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, format!("# agent tokens\n{AGENT} {AGENT_TOKEN}\n"))
            .expect("tokens");
        let admin = dir.path().join("admin-token");
        std::fs::write(&admin, format!("{ADMIN_TOKEN}\n")).expect("admin token");
        std::fs::write(dir.path().join("agent-token"), format!("{AGENT_TOKEN}\n"))
            .expect("agent token");
        let database = dir.path().join("control-plane.db");
        let store = Store::open(&database).expect("store");
        let mut config = ServerConfig {
            tokens_file: tokens,
            admin_token_file: admin,
            signing_key: None,
            ingest_bucket: None,
            url_lifetime: Duration::from_secs(900),
            limits: Limits::default(),
        };
        configure(&mut config);
        let limits = config.limits.clone();
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&exchanges);
        let faults = Arc::new(Mutex::new(Faults::default()));
        let switched = Arc::clone(&faults);
        let app = router(store, config)
            .layer(axum::middleware::from_fn(move |request, next| {
                record(Arc::clone(&recorded), request, next)
            }))
            .layer(axum::middleware::from_fn(move |request, next| {
                inject_faults(fault_rate, Arc::clone(&switched), request, next)
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().expect("addr")))
            .expect("url");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, app, &limits, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Self {
            faults,
            dir,
            url,
            exchanges,
            database,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The file holding [`AGENT_TOKEN`].
    pub fn agent_token_file(&self) -> PathBuf {
        self.dir.path().join("agent-token")
    }

    /// A client of [`AGENT`], retrying quickly.
    pub fn client(&self) -> ControlPlaneClient {
        let mut config = ClientConfig::new(self.url.clone(), self.agent_token_file());
        config.initial_backoff = Duration::from_millis(20);
        ControlPlaneClient::new(config).expect("client")
    }

    /// An admin call; answers status and body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Vec<u8>) {
        let http = reqwest::Client::new();
        let mut request = http
            .request(method, self.url.join(path).expect("path"))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).expect("json"));
        }
        let response = request.send().await.expect("admin call");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    /// Queues `job` for [`AGENT`].
    pub async fn enqueue(&self, job: Value) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "admin/v1/jobs",
                Some(json!({ "agentId": AGENT, "job": job })),
            )
            .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }

    /// Queues `job` for [`AGENT`] and claims it for `claimant` for a minute, as the
    /// orchestrator does before it submits the job's Workflow.
    pub async fn enqueue_claimed(&self, job: Value, claimant: &str) {
        let id = job["id"].as_str().expect("the job's id").to_owned();
        self.enqueue(job).await;
        let claim = self
            .client()
            .claim(&id, claimant, Duration::from_secs(60))
            .await
            .expect("claim");
        assert!(matches!(claim, Claim::Granted(_)), "{claim:?}");
    }

    /// Every job's record, by the admin API.
    pub async fn records(&self) -> JobRecords {
        let (status, body) = self
            .admin(reqwest::Method::GET, "admin/v1/jobs", None)
            .await;
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("records")
    }

    /// Every heartbeat kept, by the admin API.
    pub async fn heartbeats(&self) -> Vec<Heartbeat> {
        let (status, body) = self
            .admin(reqwest::Method::GET, "admin/v1/heartbeats", None)
            .await;
        assert_eq!(status, 200);
        serde_json::from_slice::<Heartbeats>(&body)
            .expect("heartbeats")
            .heartbeats
    }

    /// The logs of one run, by the admin API: status and body.
    pub async fn logs(&self, job: &str, run: &str) -> (u16, Vec<u8>) {
        self.admin(
            reqwest::Method::GET,
            &format!("admin/v1/jobs/{job}/runs/{run}/logs"),
            None,
        )
        .await
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn inject_faults(
    rate: f64,
    faults: Arc<Mutex<Faults>>,
    request: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse as _;
    // The operator's calls stay reliable: the faults are for what agents see.
    if request.uri().path().starts_with("/admin/") {
        return next.run(request).await;
    }
    let (fail, delay) = {
        let faults = faults.lock().expect("lock");
        let path = request.uri().path();
        (
            faults.fail_paths.iter().any(|p| path.contains(p.as_str())),
            faults.delay,
        )
    };
    if fail {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "switched off").into_response();
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let roll = rand::random::<f64>();
    if roll < rate / 2.0 {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "injected: before",
        )
            .into_response();
    }
    let response = next.run(request).await;
    if roll < rate {
        return (axum::http::StatusCode::BAD_GATEWAY, "injected: after").into_response();
    }
    response
}

async fn record(exchanges: Arc<Mutex<Vec<Exchange>>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let request_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let content_type = |headers: &axum::http::HeaderMap| {
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_type = content_type(&parts.headers);
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let response = next
        .run(Request::from_parts(parts, Body::from(request_body.clone())))
        .await;
    let (parts, body) = response.into_parts();
    let response_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    exchanges.lock().expect("lock").push(Exchange {
        method,
        path,
        request_type,
        request_body: request_body.to_vec(),
        status: parts.status.as_u16(),
        response_type: content_type(&parts.headers),
        response_body: response_body.to_vec(),
    });
    Response::from_parts(parts, Body::from(response_body))
}

/// An S3 bucket at `url` (`s3://bucket/prefix`) that signs URLs offline, as the server's
/// ingestion bucket: signing needs no connection (its endpoint is a closed port); its static
/// keys are written to `dir`.
pub fn signing_bucket(dir: &std::path::Path, url: &str) -> delivery::bucket::Bucket {
    delivery::install_crypto_provider();
    let credentials = dir.join("ingest-credentials");
    std::fs::create_dir_all(&credentials).expect("dir");
    std::fs::write(credentials.join("access-key-id"), "test-signing-key").expect("key");
    std::fs::write(credentials.join("secret-access-key"), "test-signing-secret").expect("secret");
    let url = delivery::bucket::BucketUrl::parse(url).expect("url");
    let settings = delivery::bucket::StoreSettings {
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        region: Some("us-east-1".to_owned()),
        credentials_dir: Some(credentials),
        ..Default::default()
    };
    delivery::bucket::Bucket::open(&url, &settings).expect("bucket")
}

/// A raw HTTP server on a loopback port, for answers no well-behaved server gives: for each
/// connection it reads the request's head (up to the blank line) and hands the stream and
/// the head, as text, to `answer`, which writes whatever it likes. A connection closed before
/// its head ends is dropped. Answers the server's address.
pub async fn raw_http_server<F, Fut>(answer: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                answer(stream, String::from_utf8_lossy(&head).into_owned()).await;
            });
        }
    });
    address
}
