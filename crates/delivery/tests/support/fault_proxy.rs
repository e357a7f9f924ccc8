//! A fault-injecting HTTP proxy on loopback, in front of a real store: it drops connections
//! in the middle of request bodies, answers bursts of 503, and delays answers; everything
//! else is forwarded unchanged (Host header included, so signatures still verify). It logs
//! every exchange, so tests can check what the store actually received and in which order.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the proxy did to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read part of the body, then closed the connection without an answer.
    DropMidBody,
    /// Answered 503 without forwarding.
    Unavailable,
    /// Forwarded, but answered late.
    Slow,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The status returned to the client; 0 when the connection was dropped.
    pub status: u16,
    pub fault: Option<Fault>,
}

impl Exchange {
    /// A write the store accepted: a PUT (object or part) or a POST (multipart create or
    /// complete) answered 2xx by the store itself.
    pub fn is_accepted_write(&self) -> bool {
        (self.method == "PUT" || self.method == "POST")
            && (200..300).contains(&self.status)
            && self.fault != Some(Fault::Unavailable)
    }
}

/// How often each fault happens, out of 1000 requests.
#[derive(Clone, Copy, Debug)]
pub struct FaultPlan {
    pub drop_per_mille: u32,
    pub burst_per_mille: u32,
    /// Requests answered 503 in a row once a burst starts.
    pub burst_len: u32,
    pub slow_per_mille: u32,
    pub slow: Duration,
    pub seed: u64,
    /// Send the upstream's own Host header (for stores that route by host, like
    /// fake-gcs-server) instead of the client's (which S3 signatures cover).
    pub rewrite_host: bool,
}

struct State {
    upstream: String,
    addr: SocketAddr,
    plan: FaultPlan,
    rng: Mutex<(u64, u32)>,
    log: Mutex<Vec<Exchange>>,
    client: reqwest::Client,
}

impl State {
    /// The next fault, from a seeded xorshift (reproducible per seed), and the burst count.
    fn decide(&self, has_body: bool) -> Option<Fault> {
        let mut guard = self.rng.lock().expect("rng");
        let (state, burst_left) = &mut *guard;
        if *burst_left > 0 {
            *burst_left -= 1;
            return Some(Fault::Unavailable);
        }
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let roll = (*state % 1000) as u32;
        let plan = self.plan;
        if has_body && roll < plan.drop_per_mille {
            Some(Fault::DropMidBody)
        } else if roll < plan.drop_per_mille + plan.burst_per_mille {
            *burst_left = plan.burst_len.saturating_sub(1);
            Some(Fault::Unavailable)
        } else if roll < plan.drop_per_mille + plan.burst_per_mille + plan.slow_per_mille {
            Some(Fault::Slow)
        } else {
            None
        }
    }
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`http://127.0.0.1:59000`).
    pub async fn start(upstream: &str, plan: FaultPlan) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            addr,
            plan,
            rng: Mutex::new((plan.seed | 1, 0)),
            log: Mutex::new(Vec::new()),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { handle(request, state).await }
                    });
                    // An injected drop ends the connection with an error: expected.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> Vec<Exchange> {
        self.state.log.lock().expect("log").clone()
    }

    pub fn count(&self, fault: Fault) -> usize {
        self.log().iter().filter(|e| e.fault == Some(fault)).count()
    }
}

/// An injected or forwarding failure; hyper closes the connection on it.
#[derive(Debug)]
struct ProxyError(String);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProxyError {}

fn fail(e: impl std::fmt::Display) -> ProxyError {
    ProxyError(e.to_string())
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body_len: u64 = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fault = state.decide(body_len > 0);
    let record = |status: u16| {
        state.log.lock().expect("log").push(Exchange {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status,
            fault,
        });
    };
    let (parts, mut body) = request.into_parts();
    match fault {
        Some(Fault::DropMidBody) => {
            // Take about half the body, then hang up.
            let mut seen = 0u64;
            while seen < body_len / 2 {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        seen += frame.data_ref().map(|d| d.len() as u64).unwrap_or(0);
                    }
                    _ => break,
                }
            }
            record(0);
            return Err(ProxyError(
                "injected: connection dropped mid-body".to_owned(),
            ));
        }
        Some(Fault::Unavailable) => {
            // Drain the body so the client sees the answer, not a reset.
            let _ = body.collect().await;
            record(503);
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>";
            return Response::builder()
                .status(503)
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from_static(xml.as_bytes())))
                .map_err(fail);
        }
        Some(Fault::Slow) => tokio::time::sleep(state.plan.slow).await,
        None => {}
    }
    let content = body.collect().await.map_err(fail)?.to_bytes();
    let target = match parts.uri.query() {
        Some(q) => format!("{}{}?{q}", state.upstream, parts.uri.path()),
        None => format!("{}{}", state.upstream, parts.uri.path()),
    };
    let mut forward = state
        .client
        .request(parts.method.clone(), target)
        .body(content);
    for (name, value) in &parts.headers {
        let skip = name == hyper::header::CONTENT_LENGTH
            || name == hyper::header::TRANSFER_ENCODING
            || (state.plan.rewrite_host && name == hyper::header::HOST);
        if !skip {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.send().await.map_err(fail)?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(fail)?;
    record(status.as_u16());
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name == hyper::header::LOCATION {
            // Resumable-upload session URIs name the store: keep them on the proxy.
            let rewritten = value
                .to_str()
                .unwrap_or_default()
                .replace(&state.upstream, &format!("http://{}", state.addr));
            response = response.header(name, rewritten);
        } else if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING
        {
            response = response.header(name, value);
        }
    }
    response.body(Full::new(bytes)).map_err(fail)
}
