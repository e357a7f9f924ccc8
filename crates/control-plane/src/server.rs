//! The reference control plane: `openapi.yaml` over HTTP, state in SQLite. It is what tests
//! and local mode talk to, and a starting point for a SaaS implementing the API.
//!
//! Tokens: `tokens` is a file of `<agent-id> <token>` lines (see [`crate::tokens`] for the
//! exact rules), re-read on every request so tokens can be added or rotated without a
//! restart; the admin token is read the same way.
//!
//! Every network edge is bounded ([`Limits`]): how long headers and bodies may take to
//! arrive, how long a request may take as a whole, how many connections are served at
//! once, and how large each operation's body may be. A client without a valid token is
//! answered before a byte of its body is read. Every error, including those of the HTTP
//! layer (an unknown path, a wrong method, a bad query string, an oversize or slow body),
//! is the documented error JSON, and none names the ingestion bucket or its prefix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path as UrlPath, Query, Request,
    State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use delivery::bucket::Bucket;
use http_body_util::BodyExt as _;
use outpost_core::run::RunIdentity;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::api::{
    CLAIMANT_HEADER, ClaimRequest, EnqueueRequest, ErrorAnswer, ErrorBody, Heartbeat, Heartbeats,
    JobList, JobRecords, StatusReport, UploadUrlRequest, UploadUrls,
};
pub use crate::limits::Limits;
use crate::store::{self, Store, StoreError};
use crate::tokens::{Tokens, digest};

/// How long a job the server signs stays valid by default: an agent polling every five
/// minutes has twelve chances; after that the job is refused as expired and must be queued
/// again. Agents accept at most 24 hours by default.
pub const DEFAULT_JOB_LIFETIME: Duration = Duration::from_secs(3600);

/// How the server signs the jobs it queues: each job gets the queue's `agentId`, a
/// `notAfter` and a fresh random `nonce`, then a signature over all of it
/// ([`orchestrator::signing::sign`]), so it is valid for one agent, for a while, once.
#[derive(Clone)]
pub struct JobSigner {
    /// The private key.
    pub key: ed25519_dalek::SigningKey,
    /// How long a job stays valid when it does not say (`notAfter`).
    pub lifetime: Duration,
}

impl JobSigner {
    /// Signing with `key`, jobs valid for [`DEFAULT_JOB_LIFETIME`].
    pub fn new(key: ed25519_dalek::SigningKey) -> Self {
        Self {
            key,
            lifetime: DEFAULT_JOB_LIFETIME,
        }
    }
}

/// What the reference server needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// `<agent-id> <token>` lines.
    pub tokens_file: PathBuf,
    /// The operator's token.
    pub admin_token_file: PathBuf,
    /// Signs queued jobs when set (agents pin the matching public key).
    pub signing_key: Option<JobSigner>,
    /// The bucket direct-ingestion URLs are signed for; without it, upload URLs are refused.
    pub ingest_bucket: Option<Arc<Bucket>>,
    /// How long a signed upload URL lives.
    pub url_lifetime: Duration,
    /// What the server allows a client.
    pub limits: Limits,
}

impl ServerConfig {
    /// Checks the token files as requests will read them, so a server with a broken tokens
    /// file (a comment taken for a token, a short token) refuses to start. Answers how many
    /// agent tokens there are.
    pub fn check_tokens(&self) -> Result<usize, crate::tokens::TokensError> {
        crate::tokens::read_admin_token(&self.admin_token_file)?;
        Ok(Tokens::read(&self.tokens_file)?.len())
    }
}

#[derive(Clone)]
struct AppState {
    store: Store,
    config: Arc<ServerConfig>,
}

/// The HTTP routes of `openapi.yaml`, over `store`.
pub fn router(store: Store, config: ServerConfig) -> Router {
    let request_timeout = config.limits.request_timeout;
    let state = AppState {
        store,
        config: Arc::new(config),
    };
    Router::new()
        .route("/v1/jobs", get(list_pending))
        .route("/v1/jobs/{job}/claim", post(claim))
        .route("/v1/jobs/{job}/status", post(report_status))
        .route("/v1/jobs/{job}/runs/{run}/upload-urls", post(upload_urls))
        .route("/v1/jobs/{job}/runs/{run}/logs", put(upload_logs))
        .route("/v1/heartbeat", post(heartbeat))
        .route("/admin/v1/jobs", post(enqueue).get(list_records))
        .route("/admin/v1/jobs/{job}/runs/{run}/logs", get(read_logs))
        .route("/admin/v1/heartbeats", get(list_heartbeats))
        .route("/openapi.yaml", get(|| async { crate::api::OPENAPI_YAML }))
        // Authentication, then the route's body cap and body deadline, before any handler.
        .route_layer(middleware::from_fn_with_state(state.clone(), admit_request))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "not-found", "no such operation") })
        .method_not_allowed_fallback(|| async {
            problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this path does not take that method",
            )
        })
        // The bodies are already capped per route by `admit_request`; this only lifts
        // axum's own 2 MB default for the largest routes.
        .layer(DefaultBodyLimit::max(crate::limits::body::LOGS))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(request_timeout, deadline))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, within `limits`: each
/// connection's request headers must arrive within `header_read_timeout` (which also ends
/// idle keep-alive connections), and at most `max_connections` are served at once; one
/// more is answered `503 busy` and closed. On shutdown, connections finish their requests
/// for up to `request_timeout`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused = Refusals::default();
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pass, instead of spinning.
                    tracing::warn!(problem = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refuse(stream, limits.max_connections, &mut refused);
            continue;
        };
        let app = router.clone();
        let service = hyper::service::service_fn(move |request| app.clone().oneshot(request));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let mut stopping = stopping.clone();
        let grace = limits.request_timeout;
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let stopped = tokio::select! {
                _ = connection.as_mut() => false,
                _ = stopping.wait_for(|stop| *stop) => true,
            };
            if stopped {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(grace, connection).await;
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back means every connection closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        limits.request_timeout + Duration::from_secs(1),
        slots.acquire_many(all),
    )
    .await;
    Ok(())
}

/// Connections refused since the last warning (a flood is logged every 10 s, not once per
/// connection), and the refusals still being answered.
struct Refusals {
    since_warning: u64,
    warned: Option<std::time::Instant>,
    answering: Arc<tokio::sync::Semaphore>,
}

impl Default for Refusals {
    fn default() -> Self {
        Self {
            since_warning: 0,
            warned: None,
            answering: Arc::new(tokio::sync::Semaphore::new(REFUSALS_ANSWERED_AT_ONCE)),
        }
    }
}

/// Refused connections answered at once; beyond it a refused connection is just closed.
const REFUSALS_ANSWERED_AT_ONCE: usize = 64;

/// Answers a connection beyond the cap `503 busy` and closes it. The answer is written at
/// once, then the request is read and dropped for up to a second (64 KiB at most), so that
/// the close does not turn into a reset that would discard the answer; with 64 refusals
/// already being answered, the connection is closed at once instead. Either way the client
/// knows at once, and the agent's client retries both.
fn refuse(stream: tokio::net::TcpStream, max: usize, refused: &mut Refusals) {
    refused.since_warning += 1;
    if refused
        .warned
        .is_none_or(|at| at.elapsed() >= Duration::from_secs(10))
    {
        tracing::warn!(
            refused = refused.since_warning,
            max_connections = max,
            "connections refused: the server is at its connection cap"
        );
        refused.since_warning = 0;
        refused.warned = Some(std::time::Instant::now());
    }
    let Ok(answering) = Arc::clone(&refused.answering).try_acquire_owned() else {
        return;
    };
    let body = serde_json::to_string(&ErrorAnswer {
        error: ErrorBody {
            code: "busy".to_owned(),
            message: format!("the server is serving {max} connections; try again"),
        },
    })
    .unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = stream;
        let answered = async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            let mut drained = 0;
            let mut buffer = [0u8; 4096];
            while drained < 64 << 10 {
                match stream.read(&mut buffer).await? {
                    0 => break,
                    n => drained += n,
                }
            }
            Ok::<_, std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answered).await;
        drop(answering);
    });
}

/// An error answer as the API document defines it.
struct Problem {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ErrorAnswer {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

fn problem(status: StatusCode, code: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        status,
        code,
        message: message.into(),
    }
}

/// 400 `invalid`: the request breaks the API's rules.
fn invalid(message: impl Into<String>) -> Problem {
    problem(StatusCode::BAD_REQUEST, "invalid", message)
}

/// `response` with `Connection: close`: for answers given before the request's body was
/// read whole, so the connection is not kept for a body nobody will read.
fn closing(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            StoreError::Leased { .. } | StoreError::NotLeaseHolder(_) => {
                (StatusCode::CONFLICT, "leased")
            }
            StoreError::NotPending { .. } => (StatusCode::CONFLICT, "not-pending"),
            StoreError::Exists(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::Final { .. } => (StatusCode::CONFLICT, "final"),
            StoreError::NotClaimed(_) => (StatusCode::CONFLICT, "not-claimed"),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            StoreError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            // The details stay in the server's log: they name files and SQL.
            tracing::error!(problem = %self, "control-plane store failed");
            return problem(
                status,
                code,
                "internal error; the server's log has the details",
            )
            .into_response();
        }
        problem(status, code, self.to_string()).into_response()
    }
}

fn unauthorized() -> Problem {
    problem(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or unknown bearer token",
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The agent a request's token belongs to. Tokens are compared as SHA-256 digests, so the
/// comparison time says nothing about how much of a token matched.
fn agent_of(headers: &HeaderMap, tokens_file: &Path) -> Result<String, Problem> {
    let given = bearer(headers).ok_or_else(unauthorized)?;
    let tokens = Tokens::read(tokens_file).map_err(|e| {
        // Fail closed: a broken file grants nothing until it is fixed.
        tracing::error!(problem = %e, "the tokens file cannot be used");
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "tokens unavailable",
        )
    })?;
    tokens
        .agent_of(given)
        .map(str::to_owned)
        .ok_or_else(unauthorized)
}

fn admin(headers: &HeaderMap, admin_token_file: &Path) -> Result<(), Problem> {
    let given = bearer(headers).ok_or_else(unauthorized)?;
    let expected = crate::tokens::read_admin_token(admin_token_file).map_err(|e| {
        tracing::error!(problem = %e, "cannot use the admin token");
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "admin token unavailable",
        )
    })?;
    if digest(given) == digest(&expected) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// The agent a request's bearer token belongs to; a request without a known token is
/// answered 401 before its body is read or its handler runs.
#[derive(Clone)]
struct Agent(String);

impl FromRequestParts<AppState> for Agent {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        if let Some(agent) = parts.extensions.get::<Agent>() {
            return Ok(agent.clone());
        }
        agent_of(&parts.headers, &state.config.tokens_file).map(Agent)
    }
}

/// The reference server's operator (the admin token), for `/admin/v1`.
#[derive(Clone, Copy)]
struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        if parts.extensions.get::<Operator>().is_some() {
            return Ok(Operator);
        }
        admin(&parts.headers, &state.config.admin_token_file).map(|()| Operator)
    }
}

/// Path parameters, with a malformed one answered as the documented error JSON.
struct Ids<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Ids<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        UrlPath::<T>::from_request_parts(parts, state)
            .await
            .map(|UrlPath(ids)| Ids(ids))
            .map_err(|e| invalid(e.body_text()))
    }
}

/// The `Outpost-Claimant` header, when sent.
struct Claimant(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Claimant {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get(CLAIMANT_HEADER) else {
            return Ok(Claimant(None));
        };
        match value.to_str().map(str::trim) {
            Ok(name) if (1..=253).contains(&name.len()) => Ok(Claimant(Some(name.to_owned()))),
            _ => Err(invalid(format!(
                "{CLAIMANT_HEADER} must be 1 to 253 visible ASCII characters"
            ))),
        }
    }
}

/// Before any handler: who asks (a request without a valid token is answered before a byte
/// of its body is read, so it costs no memory), then the route's body, read whole within
/// the body cap and the body deadline. Handlers get the body already in memory.
async fn admit_request(
    State(state): State<AppState>,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let template = matched.as_str().to_owned();
    let (mut parts, body) = request.into_parts();
    if template.starts_with("/v1/") {
        match agent_of(&parts.headers, &state.config.tokens_file) {
            Ok(agent) => {
                parts.extensions.insert(Agent(agent));
            }
            Err(refused) => return closing(refused),
        }
    } else if template.starts_with("/admin/") {
        if let Err(refused) = admin(&parts.headers, &state.config.admin_token_file) {
            return closing(refused);
        }
        parts.extensions.insert(Operator);
    }
    let cap = crate::limits::body_cap(&parts.method, &template);
    let too_large = || {
        closing(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the request body is over {cap} bytes, this operation's limit"),
        ))
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > cap as u64) {
        return too_large();
    }
    let wait = state.config.limits.body_read_timeout;
    let read = tokio::time::timeout(wait, http_body_util::Limited::new(body, cap).collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(_)) => {
            return closing(invalid("the request body could not be read"));
        }
        Err(_) => {
            return closing(problem(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request body did not arrive within {} s",
                    wait.as_secs_f64()
                ),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The whole request, body and handler included, within `limit`; a later answer has no one
/// waiting for it.
async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => closing(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s; try again",
                limit.as_secs_f64()
            ),
        )),
    }
}

/// Every error answer as the documented error JSON: what the handlers answer already is;
/// this turns the HTTP layer's own answers (axum's rejections, a body over a limit) into it
/// too, keeping their headers.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::UNAUTHORIZED => ("unauthorized", "missing or unknown bearer token"),
        StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
        StatusCode::NOT_FOUND => ("not-found", "no such operation"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method-not-allowed", "this path does not take that method")
        }
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request did not arrive in time"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "the request body is too large"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("invalid", "the request is malformed"),
    };
    let (parts, _) = response.into_parts();
    let mut answer = problem(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// Parses a JSON body against its type, answering 400 with the field on mismatch.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| invalid(format!("request body: {}: {}", e.path(), e.inner())))
}

/// A JSON request body, parsed against its type as [`body`] does: a mismatch is answered
/// before the handler runs.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        body(&bytes)
            .map(JsonBody)
            .map_err(IntoResponse::into_response)
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list_pending(
    State(state): State<AppState>,
    Agent(agent): Agent,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => {
            return invalid(e.body_text()).into_response();
        }
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return invalid("limit must be 1 to 1000").into_response();
    }
    let now = SystemTime::now();
    state
        .store
        .run(move |tx| store::pending(tx, &agent, limit, now))
        .await
        .map(|jobs| axum::Json(JobList { jobs }))
        .into_response()
}

async fn claim(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Ids(job): Ids<String>,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> Response {
    if request.claimant.is_empty() || !(1..=3600).contains(&request.lease_seconds) {
        return invalid("claimant must be non-empty and leaseSeconds 1 to 3600").into_response();
    }
    let lease = Duration::from_secs(u64::from(request.lease_seconds));
    let now = SystemTime::now();
    state
        .store
        .run(move |tx| store::claim(tx, &agent, &job, &request.claimant, lease, now))
        .await
        .map(axum::Json)
        .into_response()
}

async fn report_status(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Ids(job): Ids<String>,
    Claimant(claimant): Claimant,
    JsonBody(report): JsonBody<StatusReport>,
) -> Response {
    let now = SystemTime::now();
    state
        .store
        .run(move |tx| store::report(tx, &agent, &job, &report, claimant.as_deref(), now))
        .await
        .map(axum::Json)
        .into_response()
}

async fn upload_urls(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Ids((job, run)): Ids<(String, String)>,
    Claimant(claimant): Claimant,
    JsonBody(request): JsonBody<UploadUrlRequest>,
) -> Response {
    let Some(bucket) = state.config.ingest_bucket.clone() else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-configured",
            "this control plane has no ingestion bucket (start it with --ingest-bucket)",
        )
        .into_response();
    };
    if request.paths.is_empty() || request.paths.len() > 10_000 {
        return invalid("paths: 1 to 10000 entries").into_response();
    }
    let (job_id, run_id) = (job.clone(), run.clone());
    let connection = match state
        .store
        .run(move |tx| store::run_connection(tx, &agent, &job_id, &run_id, claimant.as_deref()))
        .await
    {
        Ok(connection) => connection,
        Err(e) => return e.into_response(),
    };
    // Errors below name the job's own values at most: the bucket and its prefix are the
    // server's business (its log has them), not the agent's.
    // The connector is no part of the folder, so it is left unknown.
    let (key, folder) = match RunIdentity::new("", &connection, &job, &run)
        .and_then(|key| key.folder().map(|folder| (key, folder)))
    {
        Ok(found) => found,
        Err(_) => {
            return invalid(format!(
                "job `{job}`: its connection `{connection}` cannot name an upload folder"
            ))
            .into_response();
        }
    };
    if let Some(path) = request
        .paths
        .iter()
        .find(|path| bucket.location(&folder, path).is_err())
    {
        return invalid(format!("paths: `{path}` is not a run-relative object path"))
            .into_response();
    }
    match delivery::presign::presign_run(&bucket, &key, &request.paths, state.config.url_lifetime)
        .await
    {
        Ok(urls) => axum::Json(UploadUrls { urls }).into_response(),
        Err(e) => {
            tracing::error!(job = %job, run = %run, problem = %e, "cannot sign upload URLs");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "cannot sign upload URLs; the server's log has the details",
            )
            .into_response()
        }
    }
}

async fn upload_logs(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Ids((job, run)): Ids<(String, String)>,
    Claimant(claimant): Claimant,
    bytes: axum::body::Bytes,
) -> Response {
    let Ok(text) = String::from_utf8(bytes.to_vec()) else {
        return invalid("logs must be UTF-8 text").into_response();
    };
    let now = SystemTime::now();
    state
        .store
        .run(move |tx| store::put_logs(tx, &agent, &job, &run, claimant.as_deref(), &text, now))
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .into_response()
}

async fn heartbeat(
    State(state): State<AppState>,
    Agent(agent): Agent,
    JsonBody(beat): JsonBody<Heartbeat>,
) -> Response {
    // The token names the agent; a heartbeat speaks for that agent only.
    if beat.agent_id != agent {
        return problem(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "agentId `{}` is not the agent this token belongs to",
                beat.agent_id
            ),
        )
        .into_response();
    }
    let limits = &state.config.limits;
    let Ok(sent) = humantime::parse_rfc3339_weak(&beat.sent_at) else {
        return invalid("sentAt is not an RFC 3339 time").into_response();
    };
    let now = SystemTime::now();
    let skew = match sent.duration_since(now) {
        Ok(ahead) if ahead > limits.max_clock_ahead => Some(format!(
            "sentAt is {} s ahead of the server's clock; at most {} s are allowed",
            ahead.as_secs(),
            limits.max_clock_ahead.as_secs()
        )),
        Ok(_) => None,
        Err(behind) if behind.duration() > limits.max_clock_behind => Some(format!(
            "sentAt is {} s behind the server's clock; at most {} s are allowed",
            behind.duration().as_secs(),
            limits.max_clock_behind.as_secs()
        )),
        Err(_) => None,
    };
    if let Some(skew) = skew {
        return invalid(skew).into_response();
    }
    let keep = limits.heartbeats_kept;
    state
        .store
        .run(move |tx| store::heartbeat(tx, &agent, &beat, keep))
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .into_response()
}

async fn enqueue(
    State(state): State<AppState>,
    _operator: Operator,
    JsonBody(request): JsonBody<EnqueueRequest>,
) -> Response {
    let mut job = request.job;
    let agent = request.agent_id.unwrap_or_else(|| "default".to_owned());
    let now = SystemTime::now();
    if let Some(signer) = &state.config.signing_key {
        match signing_fields(&job, &agent, now, signer.lifetime) {
            Ok(not_after) => {
                let nonce = orchestrator::signing::new_nonce();
                orchestrator::signing::sign(&mut job, &signer.key, &agent, not_after, &nonce);
            }
            Err(message) => {
                return invalid(message).into_response();
            }
        }
    }
    let id = job
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let result = state
        .store
        .run(move |tx| {
            store::enqueue(tx, &agent, &job, now)?;
            let records = store::records(tx)?;
            records
                .into_iter()
                .find(|r| r.status.job_id == id)
                .ok_or_else(|| StoreError::Database("queued job vanished".to_owned()))
        })
        .await;
    result
        .map(|record| (StatusCode::CREATED, axum::Json(record)))
        .into_response()
}

/// The `notAfter` a job queued for `agent` is signed with: its own, when the operator gave
/// one (an RFC 3339 UTC time), else `lifetime` from `now`. A job naming another agent than
/// its queue's is refused rather than signed for either.
fn signing_fields(
    job: &Value,
    agent: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<SystemTime, String> {
    match job.get("agentId") {
        None => {}
        Some(Value::String(given)) if given == agent => {}
        Some(_) => {
            return Err(format!(
                "job.agentId must be the queue's agent `{agent}` (or absent): a signed job is valid for that agent only"
            ));
        }
    }
    match job.get("notAfter") {
        None => Ok(now + lifetime),
        Some(Value::String(text)) => orchestrator::signing::parse_utc(text).ok_or_else(|| {
            format!("job.notAfter `{text}` is not an RFC 3339 UTC time (`2026-01-31T12:00:00Z`)")
        }),
        Some(_) => Err("job.notAfter must be an RFC 3339 UTC time".to_owned()),
    }
}

async fn list_records(State(state): State<AppState>, _operator: Operator) -> Response {
    state
        .store
        .run(store::records)
        .await
        .map(|jobs| axum::Json(JobRecords { jobs }))
        .into_response()
}

async fn read_logs(
    State(state): State<AppState>,
    _operator: Operator,
    Ids((job, run)): Ids<(String, String)>,
) -> Response {
    state
        .store
        .run(move |tx| store::logs(tx, &job, &run))
        .await
        .into_response()
}

async fn list_heartbeats(State(state): State<AppState>, _operator: Operator) -> Response {
    state
        .store
        .run(store::heartbeats)
        .await
        .map(|heartbeats| axum::Json(Heartbeats { heartbeats }))
        .into_response()
}
