//! The reference control plane: `openapi.yaml` over HTTP, state in SQLite. It is what tests
//! and local mode talk to, and a starting point for a SaaS implementing the API.
//!
//! Tokens: `tokens` is a file of `<agent-id> <token>` lines (`#` starts a comment), re-read
//! on every request so tokens can be added or rotated without a restart; the admin token is
//! read the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path as UrlPath, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use delivery::bucket::Bucket;
use delivery::run::RunKey;
use ed25519_dalek::Signer as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{
    ClaimRequest, EnqueueRequest, ErrorAnswer, ErrorBody, Heartbeat, Heartbeats, JobList,
    JobRecords, StatusReport, UploadUrlRequest, UploadUrls,
};
use crate::store::{self, Store, StoreError};

/// Largest request body: logs may be up to 8 MiB.
const MAX_BODY: usize = 8 << 20;

/// What the reference server needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// `<agent-id> <token>` lines.
    pub tokens_file: PathBuf,
    /// The operator's token.
    pub admin_token_file: PathBuf,
    /// Signs queued jobs when set (agents pin the matching public key).
    pub signing_key: Option<ed25519_dalek::SigningKey>,
    /// The bucket direct-ingestion URLs are signed for; without it, upload URLs are refused.
    pub ingest_bucket: Option<Arc<Bucket>>,
    /// How long a signed upload URL lives.
    pub url_lifetime: Duration,
}

#[derive(Clone)]
struct AppState {
    store: Store,
    config: Arc<ServerConfig>,
}

/// The HTTP routes of `openapi.yaml`, over `store`.
pub fn router(store: Store, config: ServerConfig) -> Router {
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
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "not-found", "no such operation") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
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

impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            StoreError::Leased { .. } => (StatusCode::CONFLICT, "leased"),
            StoreError::NotPending { .. } => (StatusCode::CONFLICT, "not-pending"),
            StoreError::Exists(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            StoreError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(problem = %self, "control-plane store failed");
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
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The agent a request's token belongs to. Tokens are compared as SHA-256 digests, so the
/// comparison time says nothing about how much of a token matched.
fn agent_of(headers: &HeaderMap, tokens_file: &Path) -> Result<String, Problem> {
    let given = bearer(headers).ok_or_else(unauthorized)?;
    let given = digest(given);
    let text = std::fs::read_to_string(tokens_file).map_err(|e| {
        tracing::error!(file = %tokens_file.display(), problem = %e, "cannot read the tokens file");
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "tokens unavailable",
        )
    })?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(char::is_whitespace))
        .find(|(_, token)| digest(token.trim()) == given)
        .map(|(agent, _)| agent.to_owned())
        .ok_or_else(unauthorized)
}

fn admin(headers: &HeaderMap, admin_token_file: &Path) -> Result<(), Problem> {
    let given = bearer(headers).ok_or_else(unauthorized)?;
    let expected = crate::client::read_token(admin_token_file).map_err(|e| {
        tracing::error!(problem = %e, "cannot read the admin token");
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
/// answered 401 before its handler runs.
struct Agent(String);

impl FromRequestParts<AppState> for Agent {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        agent_of(&parts.headers, &state.config.tokens_file).map(Agent)
    }
}

/// The reference server's operator (the admin token), for `/admin/v1`.
struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        admin(&parts.headers, &state.config.admin_token_file).map(|()| Operator)
    }
}

/// Parses a JSON body against its type, answering 400 with the field on mismatch.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("request body: {}: {}", e.path(), e.inner()),
        )
    })
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list_pending(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid",
            "limit must be 1 to 1000",
        )
        .into_response();
    }
    let now = SystemTime::now();
    match state
        .store
        .run(move |tx| store::pending(tx, &agent, limit, now))
        .await
    {
        Ok(jobs) => axum::Json(JobList { jobs }).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn claim(
    State(state): State<AppState>,
    Agent(agent): Agent,
    UrlPath(job): UrlPath<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let request: ClaimRequest = match body(&bytes) {
        Ok(request) => request,
        Err(problem) => return problem.into_response(),
    };
    if request.claimant.is_empty() || !(1..=3600).contains(&request.lease_seconds) {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid",
            "claimant must be non-empty and leaseSeconds 1 to 3600",
        )
        .into_response();
    }
    let lease = Duration::from_secs(u64::from(request.lease_seconds));
    let now = SystemTime::now();
    match state
        .store
        .run(move |tx| store::claim(tx, &agent, &job, &request.claimant, lease, now))
        .await
    {
        Ok(lease) => axum::Json(lease).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn report_status(
    State(state): State<AppState>,
    Agent(agent): Agent,
    UrlPath(job): UrlPath<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let report: StatusReport = match body(&bytes) {
        Ok(report) => report,
        Err(problem) => return problem.into_response(),
    };
    let now = SystemTime::now();
    match state
        .store
        .run(move |tx| store::report(tx, &agent, &job, &report, now))
        .await
    {
        Ok(status) => axum::Json(status).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn upload_urls(
    State(state): State<AppState>,
    Agent(agent): Agent,
    UrlPath((job, run)): UrlPath<(String, String)>,
    bytes: axum::body::Bytes,
) -> Response {
    let request: UploadUrlRequest = match body(&bytes) {
        Ok(request) => request,
        Err(problem) => return problem.into_response(),
    };
    let Some(bucket) = state.config.ingest_bucket.clone() else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-configured",
            "this control plane has no ingestion bucket (start it with --ingest-bucket)",
        )
        .into_response();
    };
    if request.paths.is_empty() || request.paths.len() > 10_000 {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid",
            "paths: 1 to 10000 entries",
        )
        .into_response();
    }
    let (job_id, run_id) = (job.clone(), run.clone());
    let connection = match state
        .store
        .run(move |tx| store::run_connection(tx, &agent, &job_id, &run_id))
        .await
    {
        Ok(connection) => connection,
        Err(e) => return e.into_response(),
    };
    let key = match RunKey::new(&connection, &job, &run) {
        Ok(key) => key,
        Err(e) => {
            return problem(StatusCode::BAD_REQUEST, "invalid", e.to_string()).into_response();
        }
    };
    match delivery::presign::presign_run(&bucket, &key, &request.paths, state.config.url_lifetime)
        .await
    {
        Ok(urls) => axum::Json(UploadUrls { urls }).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid", e.to_string()).into_response(),
    }
}

async fn upload_logs(
    State(state): State<AppState>,
    Agent(agent): Agent,
    UrlPath((job, run)): UrlPath<(String, String)>,
    text: String,
) -> Response {
    let now = SystemTime::now();
    match state
        .store
        .run(move |tx| store::put_logs(tx, &agent, &job, &run, &text, now))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn heartbeat(
    State(state): State<AppState>,
    Agent(agent): Agent,
    bytes: axum::body::Bytes,
) -> Response {
    let beat: Heartbeat = match body(&bytes) {
        Ok(beat) => beat,
        Err(problem) => return problem.into_response(),
    };
    match state
        .store
        .run(move |tx| store::heartbeat(tx, &agent, &beat))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn enqueue(
    State(state): State<AppState>,
    _operator: Operator,
    bytes: axum::body::Bytes,
) -> Response {
    let request: EnqueueRequest = match body(&bytes) {
        Ok(request) => request,
        Err(problem) => return problem.into_response(),
    };
    let mut job = request.job;
    if let (Some(key), Some(fields)) = (&state.config.signing_key, job.as_object_mut()) {
        fields.remove("signature");
        let signature = key.sign(&orchestrator::admission::canonical_bytes(&job));
        if let Some(fields) = job.as_object_mut() {
            fields.insert(
                "signature".to_owned(),
                Value::String(
                    base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
                ),
            );
        }
    }
    let agent = request.agent_id.unwrap_or_else(|| "default".to_owned());
    let now = SystemTime::now();
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
    match result {
        Ok(record) => (StatusCode::CREATED, axum::Json(record)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list_records(State(state): State<AppState>, _operator: Operator) -> Response {
    match state.store.run(store::records).await {
        Ok(jobs) => axum::Json(JobRecords { jobs }).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn read_logs(
    State(state): State<AppState>,
    _operator: Operator,
    UrlPath((job, run)): UrlPath<(String, String)>,
) -> Response {
    match state.store.run(move |tx| store::logs(tx, &job, &run)).await {
        Ok(text) => text.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list_heartbeats(State(state): State<AppState>, _operator: Operator) -> Response {
    match state.store.run(store::heartbeats).await {
        Ok(heartbeats) => axum::Json(Heartbeats { heartbeats }).into_response(),
        Err(e) => e.into_response(),
    }
}
