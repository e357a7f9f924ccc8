//! A reference server on a loopback port for tests, with its token files in a temporary
//! folder, and (optionally) a layer recording every exchange.

#![allow(dead_code, missing_docs)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use control_plane::server::{ServerConfig, router, serve};
use control_plane::store::Store;
use control_plane::{ClientConfig, ControlPlaneClient};

pub const AGENT: &str = "agent-1";
pub const AGENT_TOKEN: &str = "agent-token-0123456789";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";

/// One request and its answer, bodies included.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub request_type: Option<String>,
    pub request_body: Vec<u8>,
    pub status: u16,
    pub response_type: Option<String>,
    pub response_body: Vec<u8>,
}

/// Faults switched on and off while a test runs.
#[derive(Default)]
pub struct Faults {
    /// Requests whose path contains one of these answer 503 (before taking effect).
    pub fail_paths: Vec<String>,
    /// Every agent request waits this long before it is handled.
    pub delay: std::time::Duration,
}

pub struct TestServer {
    pub faults: Arc<Mutex<Faults>>,
    pub dir: tempfile::TempDir,
    pub url: url::Url,
    pub exchanges: Arc<Mutex<Vec<Exchange>>>,
    pub database: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
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
            url_lifetime: std::time::Duration::from_secs(900),
            limits: control_plane::server::Limits::default(),
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

    pub fn agent_token_file(&self) -> PathBuf {
        self.dir.path().join("agent-token")
    }

    pub fn client(&self) -> ControlPlaneClient {
        let mut config = ClientConfig::new(self.url.clone(), self.agent_token_file());
        config.initial_backoff = std::time::Duration::from_millis(20);
        ControlPlaneClient::new(config).expect("client")
    }

    /// An admin call; answers status and body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
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

    pub async fn enqueue(&self, job: serde_json::Value) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "admin/v1/jobs",
                Some(serde_json::json!({ "agentId": AGENT, "job": job })),
            )
            .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }

    pub async fn records(&self) -> control_plane::api::JobRecords {
        let (status, body) = self
            .admin(reqwest::Method::GET, "admin/v1/jobs", None)
            .await;
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("records")
    }

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
