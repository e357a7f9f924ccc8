//! The typed client agents use. Every call re-reads the bearer token from its file (so a
//! rotated Secret is used at once), goes through the proxy the environment names, trusts the
//! CA bundle given (or `SSL_CERT_FILE`) beside the system roots, and retries what may pass:
//! transport errors, timeouts, 429 and 5xx. Every operation of the API is idempotent (claims
//! per claimant, forward-only status, replace-on-write logs), so a retry never does harm.
//!
//! Every answer is bounded: one attempt has a total deadline (`timeout`, 30 s by default,
//! body included); an error answer's body is read for at most 16 KiB and 10 s; a success
//! answer is read whole only up to a cap per operation (1 MiB, more for upload URLs in
//! proportion to the paths asked for); and the job list is read as a stream, keeping at
//! most the page asked for (see `joblist`), so a hostile or broken control plane cannot
//! make the agent hold a 300 MB answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use delivery::DeliveryError;
use delivery::direct::{UploadUrl, UrlSet, UrlSource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{
    CLAIMANT_HEADER, ClaimRequest, ErrorAnswer, Heartbeat, JobStatus, Lease, StatusReport,
    UploadUrlRequest, UploadUrls,
};
use crate::error::ControlPlaneError;
use crate::joblist::{self, Feed, JobPage, Left, ListLimits, Scanner};

/// Largest success answer read, for every operation but the job list and upload URLs: a
/// lease or a job status is well under 1 KiB (a status message at most 16 KiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Bytes allowed per requested path in an upload-URL answer: a pre-signed URL is about
/// 1.5 KiB.
const UPLOAD_URL_ANSWER_BYTES_PER_PATH: usize = 16 << 10;
/// Bytes of an error answer read: the documented error JSON is a few hundred bytes.
const MAX_ERROR_BYTES: usize = 16 << 10;

/// How the client reaches the control plane.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL; API paths are appended (`https://catalog.example.com/outpost`).
    pub base_url: url::Url,
    /// File holding the bearer token; read on every request.
    pub token_file: PathBuf,
    /// Extra CA bundle (PEM) trusted beside the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// First wait between attempts; doubled each time, with jitter.
    pub initial_backoff: Duration,
}

impl ClientConfig {
    /// Defaults: 30 s per answer, 4 attempts, 250 ms first backoff.
    pub fn new(base_url: url::Url, token_file: impl Into<PathBuf>) -> Self {
        Self {
            base_url,
            token_file: token_file.into(),
            ca_bundle: None,
            timeout: Duration::from_secs(30),
            attempts: 4,
            initial_backoff: Duration::from_millis(250),
        }
    }

    /// The configuration for `url`, which must be https, or http to loopback only: the
    /// bearer token would otherwise cross a network in clear text. `insecure_plain_http`
    /// allows plain http anywhere, and says so in a warning.
    pub fn checked(
        url: &str,
        token_file: impl Into<PathBuf>,
        insecure_plain_http: bool,
    ) -> Result<Self, ControlPlaneError> {
        let base = url::Url::parse(url)
            .map_err(|e| ControlPlaneError::Config(format!("control-plane URL `{url}`: {e}")))?;
        let loopback = match base.host() {
            Some(url::Host::Domain(host)) => host == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match base.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" if insecure_plain_http => tracing::warn!(
                url = %base,
                "INSECURE: the control plane is reached over plain http (--insecure-plain-http): the agent's token crosses the network in clear text"
            ),
            "http" => {
                return Err(ControlPlaneError::Config(format!(
                    "control-plane URL `{url}` is plain http: the agent's token would cross the network in clear text; use https:// (or, knowingly, --insecure-plain-http)"
                )));
            }
            other => {
                return Err(ControlPlaneError::Config(format!(
                    "control-plane URL `{url}`: scheme `{other}` is not https"
                )));
            }
        }
        Ok(Self::new(base, token_file))
    }
}

/// [`enqueue`] with the job read from a JSON file: an unreadable file is a usage error
/// (64), one that is not JSON a data error (65), each naming the file (and the line).
pub async fn enqueue_file(
    base_url: &url::Url,
    admin_token_file: &Path,
    agent_id: &str,
    job_file: &Path,
) -> Result<String, outpost_core::Failure> {
    use outpost_core::{ExitCode, Failure};
    let text = std::fs::read_to_string(job_file)
        .map_err(|e| Failure::usage(format!("{}: {e}", job_file.display())))?;
    let job: Value = serde_json::from_str(&text).map_err(|e| {
        let at = format!("{}: line {}: {e}", job_file.display(), e.line());
        Failure::new(ExitCode::Data, at)
    })?;
    Ok(enqueue(base_url, admin_token_file, agent_id, &job).await?)
}

/// The operator's side of the reference control plane (`/admin/v1`): queues `job` for
/// `agent_id`, and answers the queued job as the server returns it.
pub async fn enqueue(
    base_url: &url::Url,
    admin_token_file: &Path,
    agent_id: &str,
    job: &Value,
) -> Result<String, ControlPlaneError> {
    let token = read_token(admin_token_file)?;
    let endpoint = base_url
        .join("admin/v1/jobs")
        .map_err(|e| ControlPlaneError::Config(format!("`{base_url}`: {e}")))?;
    delivery::install_crypto_provider();
    let http = delivery::direct::http_client(None)
        .map_err(|e| ControlPlaneError::Config(e.to_string()))?;
    let unreachable = |problem: String| ControlPlaneError::Unreachable {
        url: base_url.to_string(),
        operation: "enqueueJob",
        attempts: 1,
        problem,
    };
    let response = http
        .post(endpoint)
        .bearer_auth(token)
        .json(&serde_json::json!({ "agentId": agent_id, "job": job }))
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(text)
    } else {
        Err(ControlPlaneError::Answer {
            operation: "enqueueJob",
            status: status.as_u16(),
            code: String::new(),
            message: text,
        })
    }
}

/// What a claim came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The lease is ours.
    Granted(Lease),
    /// Someone else holds a live lease, or the job is past claiming: leave it.
    Refused {
        /// `leased` or `not-pending`.
        code: String,
        /// The server's words.
        message: String,
    },
}

/// A control-plane client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ControlPlaneClient {
    config: ClientConfig,
    http: reqwest::Client,
    claimant: Option<String>,
}

impl ControlPlaneClient {
    /// A client for `config`. Fails only when the CA bundle cannot be read.
    pub fn new(config: ClientConfig) -> Result<Self, ControlPlaneError> {
        if config.base_url.cannot_be_a_base()
            || !matches!(config.base_url.scheme(), "http" | "https")
        {
            return Err(ControlPlaneError::Config(format!(
                "control-plane URL `{}` must be an http(s) URL",
                config.base_url
            )));
        }
        delivery::install_crypto_provider();
        let http = delivery::direct::http_client(config.ca_bundle.as_deref())
            .map_err(|e| ControlPlaneError::Config(e.to_string()))?;
        Ok(Self {
            config,
            http,
            claimant: None,
        })
    }

    /// The client an entrypoint's flags describe: the control plane's URL, the bearer
    /// token's file, whether plain http may leave loopback, and extra CA certificates. `None`
    /// when neither the URL nor the token file is given; a usage error (64) naming the other
    /// flag when only one is, since half a configuration is a typo, not a choice.
    pub fn from_flags(
        url: Option<&str>,
        token_file: Option<&Path>,
        insecure_plain_http: bool,
        ca_bundle: Option<&Path>,
    ) -> Result<Option<Self>, outpost_core::Failure> {
        use outpost_core::Failure;
        match (url, token_file) {
            (None, None) => Ok(None),
            (Some(url), Some(token_file)) => {
                let mut config = ClientConfig::checked(url, token_file, insecure_plain_http)?;
                config.ca_bundle = ca_bundle.map(Path::to_path_buf);
                Ok(Some(Self::new(config)?))
            }
            (Some(_), None) => Err(Failure::usage("--control-plane-url needs --token-file")),
            (None, Some(_)) => Err(Failure::usage("--token-file needs --control-plane-url")),
        }
    }

    /// This client, reporting and uploading as `claimant`, the holder of the jobs' leases
    /// (the `Outpost-Claimant` header on status reports, upload-URL requests and logs). An
    /// orchestrator tick and a local runner use it; a run's exit handler and upload step,
    /// which do not hold the lease, do not.
    pub fn with_claimant(&self, claimant: &str) -> Self {
        Self {
            claimant: Some(claimant.to_owned()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &url::Url {
        &self.config.base_url
    }

    /// Pending jobs, oldest first, raw (admit each before acting on it): at most `limit`,
    /// read as a stream. Jobs beyond the page, over the size limits, or past the bytes read
    /// are left for the next poll, and logged.
    pub async fn pending_jobs(&self, limit: u32) -> Result<Vec<Value>, ControlPlaneError> {
        let mut url = self.url(&["v1", "jobs"]);
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        let limits = ListLimits {
            max_jobs: usize::try_from(limit).unwrap_or(usize::MAX).max(1),
            max_job_bytes: joblist::MAX_JOB_BYTES,
            max_kept_bytes: joblist::MAX_KEPT_BYTES,
            max_read_bytes: joblist::MAX_READ_BYTES,
        };
        let page = self
            .exchange(
                "listPendingJobs",
                reqwest::Method::GET,
                url,
                Body::None,
                move |response| read_job_list(response, limits),
            )
            .await?;
        for (position, bytes) in &page.skipped {
            tracing::warn!(
                position = position + 1,
                bytes,
                limit = limits.max_job_bytes,
                "a listed job is over the size limit and was skipped; it stays pending on the control plane"
            );
        }
        match page.left {
            Some(Left::PageFull) => tracing::warn!(
                kept = page.jobs.len(),
                asked = limit,
                "the control plane listed more jobs than asked for; the rest are left for the next poll"
            ),
            Some(Left::KeptBytes) => tracing::info!(
                kept = page.jobs.len(),
                bytes = limits.max_kept_bytes,
                "the listed jobs are large; those beyond the first ones are left for the next poll"
            ),
            Some(Left::ReadBytes) => tracing::warn!(
                kept = page.jobs.len(),
                bytes = limits.max_read_bytes,
                "the job list answer is longer than allowed; the jobs after the first ones are left for the next poll"
            ),
            None => {}
        }
        Ok(page.jobs)
    }

    /// Claims `job_id` for `claimant` for `lease`.
    pub async fn claim(
        &self,
        job_id: &str,
        claimant: &str,
        lease: Duration,
    ) -> Result<Claim, ControlPlaneError> {
        let url = self.url(&["v1", "jobs", job_id, "claim"]);
        let body = ClaimRequest {
            claimant: claimant.to_owned(),
            lease_seconds: u32::try_from(lease.as_secs().clamp(1, 3600)).unwrap_or(3600),
        };
        match self
            .call::<Lease>("claimJob", reqwest::Method::POST, url, Body::json(&body)?)
            .await
        {
            Ok(lease) => Ok(Claim::Granted(lease)),
            Err(ControlPlaneError::Answer {
                status: 409,
                code,
                message,
                ..
            }) => Ok(Claim::Refused { code, message }),
            Err(other) => Err(other),
        }
    }

    /// Reports a job's status; answers the status the server holds afterwards.
    pub async fn report_status(
        &self,
        job_id: &str,
        report: &StatusReport,
    ) -> Result<JobStatus, ControlPlaneError> {
        let url = self.url(&["v1", "jobs", job_id, "status"]);
        self.call(
            "reportStatus",
            reqwest::Method::POST,
            url,
            Body::json(report)?,
        )
        .await
    }

    /// Pre-signed upload URLs for `paths` of a run.
    pub async fn upload_urls(
        &self,
        job_id: &str,
        run_id: &str,
        paths: &[String],
    ) -> Result<UrlSet, ControlPlaneError> {
        let url = self.url(&["v1", "jobs", job_id, "runs", run_id, "upload-urls"]);
        let body = UploadUrlRequest {
            paths: paths.to_vec(),
        };
        let cap = MAX_ANSWER_BYTES
            .saturating_add(paths.len().saturating_mul(UPLOAD_URL_ANSWER_BYTES_PER_PATH));
        let answer: UploadUrls = self
            .call_capped(
                "requestUploadUrls",
                reqwest::Method::POST,
                url,
                Body::json(&body)?,
                cap,
            )
            .await?;
        Ok(answer.urls)
    }

    /// Ships a run's logs (already redacted), replacing earlier ones.
    pub async fn upload_logs(
        &self,
        job_id: &str,
        run_id: &str,
        logs: &str,
    ) -> Result<(), ControlPlaneError> {
        let url = self.url(&["v1", "jobs", job_id, "runs", run_id, "logs"]);
        self.call_empty(
            "uploadRunLogs",
            reqwest::Method::PUT,
            url,
            Body::Text(logs.to_owned()),
        )
        .await
    }

    /// Sends a heartbeat.
    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), ControlPlaneError> {
        let url = self.url(&["v1", "heartbeat"]);
        self.call_empty(
            "sendHeartbeat",
            reqwest::Method::POST,
            url,
            Body::json(heartbeat)?,
        )
        .await
    }

    /// A [`UrlSource`] handing out this control plane's URLs for one run.
    pub fn url_source(&self, job_id: &str, run_id: &str) -> ControlPlaneUrls {
        ControlPlaneUrls {
            client: self.clone(),
            job_id: job_id.to_owned(),
            run_id: run_id.to_owned(),
        }
    }

    /// `base` + `segments`, each percent-encoded as one path segment (an id can never add
    /// a path level or a query).
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.config.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn token(&self) -> Result<String, ControlPlaneError> {
        read_token(&self.config.token_file)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        url: url::Url,
        body: Body,
    ) -> Result<T, ControlPlaneError> {
        self.call_capped(operation, method, url, body, MAX_ANSWER_BYTES)
            .await
    }

    async fn call_capped<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        url: url::Url,
        body: Body,
        cap: usize,
    ) -> Result<T, ControlPlaneError> {
        self.exchange(operation, method, url, body, move |response| async move {
            let bytes = read_answer(response, cap).await?;
            serde_json::from_slice(&bytes)
                .map_err(|e| Read::Invalid(format!("answer is not the documented JSON: {e}")))
        })
        .await
    }

    async fn call_empty(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        url: url::Url,
        body: Body,
    ) -> Result<(), ControlPlaneError> {
        self.exchange(operation, method, url, body, |response| async move {
            read_answer(response, MAX_ANSWER_BYTES).await.map(drop)
        })
        .await
    }

    /// One operation with retries; `read` reads a success answer.
    async fn exchange<T, F, Fut>(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        url: url::Url,
        body: Body,
        read: F,
    ) -> Result<T, ControlPlaneError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: std::future::Future<Output = Result<T, Read>>,
    {
        let attempts = self.config.attempts.max(1);
        let mut backoff = self.config.initial_backoff;
        let mut last_problem = String::new();
        // Only the operations a lease holder's claimant governs carry it.
        let claimant = self.claimant.as_deref().filter(|_| {
            matches!(
                operation,
                "reportStatus" | "requestUploadUrls" | "uploadRunLogs"
            )
        });
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            let token = self.token()?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token)
                .timeout(self.config.timeout);
            if let Some(claimant) = claimant {
                request = request.header(CLAIMANT_HEADER, claimant);
            }
            request = match &body {
                Body::None => request,
                Body::Json(bytes) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone()),
                Body::Text(text) => request
                    .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(text.clone()),
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    last_problem = describe(&error);
                    tracing::debug!(operation, attempt, problem = %last_problem, "control plane unreachable");
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                match read(response).await {
                    Ok(value) => return Ok(value),
                    Err(Read::Transient(problem)) => {
                        last_problem = problem;
                        continue;
                    }
                    Err(Read::Invalid(message)) => {
                        return Err(ControlPlaneError::Protocol { operation, message });
                    }
                }
            }
            let bytes = delivery::bounded::body_prefix(
                response,
                MAX_ERROR_BYTES,
                delivery::bounded::ERROR_BODY_WAIT,
            )
            .await;
            let (code, message) = match serde_json::from_slice::<ErrorAnswer>(&bytes) {
                Ok(answer) => (answer.error.code, answer.error.message),
                Err(_) => (
                    "unknown".to_owned(),
                    String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
                ),
            };
            let message = outpost_core::redact::redact_urls(&message);
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                last_problem = format!("HTTP {} {code}: {message}", status.as_u16());
                tracing::debug!(operation, attempt, problem = %last_problem, "control plane busy");
                continue;
            }
            if matches!(status.as_u16(), 401 | 403) {
                return Err(ControlPlaneError::Unauthorized {
                    status: status.as_u16(),
                    message,
                });
            }
            return Err(ControlPlaneError::Answer {
                operation,
                status: status.as_u16(),
                code,
                message,
            });
        }
        Err(ControlPlaneError::Unreachable {
            url: outpost_core::redact::redact_urls(self.config.base_url.as_str()),
            operation,
            attempts,
            problem: last_problem,
        })
    }
}

/// Why a success answer could not be read.
enum Read {
    /// The transfer failed; the call is retried.
    Transient(String),
    /// The answer is not what the API defines.
    Invalid(String),
}

/// A success answer, whole, if it is at most `cap` bytes.
async fn read_answer(response: reqwest::Response, cap: usize) -> Result<bytes::Bytes, Read> {
    delivery::bounded::body_capped(response, cap)
        .await
        .map_err(|e| match e {
            delivery::bounded::CappedError::TooLarge(cap) => {
                Read::Invalid(format!("the answer is over {cap} bytes"))
            }
            delivery::bounded::CappedError::Transport(e) => Read::Transient(describe(&e)),
        })
}

/// The job list, scanned as it arrives; reading stops once the page is full.
async fn read_job_list(
    mut response: reqwest::Response,
    limits: ListLimits,
) -> Result<JobPage, Read> {
    let mut scanner = Scanner::new(limits);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Read::Transient(describe(&e)))?
    {
        if scanner.feed(&chunk).map_err(Read::Invalid)? == Feed::Stop {
            // The rest is never read: dropping the response closes the connection.
            break;
        }
    }
    scanner.finish().map_err(Read::Invalid)
}

enum Body {
    None,
    Json(Vec<u8>),
    Text(String),
}

impl Body {
    fn json(value: &impl Serialize) -> Result<Self, ControlPlaneError> {
        serde_json::to_vec(value)
            .map(Self::Json)
            .map_err(|e| ControlPlaneError::Config(format!("cannot encode request: {e}")))
    }
}

/// Reads a bearer token file: trimmed, non-empty, one line.
pub fn read_token(path: &Path) -> Result<String, ControlPlaneError> {
    let text = std::fs::read_to_string(path).map_err(|source| ControlPlaneError::Token {
        path: path.to_owned(),
        problem: source.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() || token.contains(['\n', '\r']) {
        return Err(ControlPlaneError::Token {
            path: path.to_owned(),
            problem: "it must hold one non-empty line".to_owned(),
        });
    }
    Ok(token.to_owned())
}

/// A transport error as one line, without URLs' query strings.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    outpost_core::redact::redact_urls(&text)
}

/// `base` scaled by a random factor in [0.5, 1.5), so many agents do not retry in step.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(0.5 + rand::random::<f64>())
}

/// The control plane as a [`UrlSource`] for one run's direct ingestion.
#[derive(Clone, Debug)]
pub struct ControlPlaneUrls {
    client: ControlPlaneClient,
    job_id: String,
    run_id: String,
}

#[async_trait::async_trait]
impl UrlSource for ControlPlaneUrls {
    async fn urls(&self, paths: &[String]) -> Result<UrlSet, DeliveryError> {
        self.client
            .upload_urls(&self.job_id, &self.run_id, paths)
            .await
            .map_err(ControlPlaneError::into_delivery)
    }

    async fn refresh(&self, path: &str) -> Result<UploadUrl, DeliveryError> {
        let mut urls = self
            .client
            .upload_urls(&self.job_id, &self.run_id, &[path.to_owned()])
            .await
            .map_err(ControlPlaneError::into_delivery)?;
        urls.remove(path).ok_or_else(|| {
            DeliveryError::Urls(format!("the control plane sent no URL for `{path}`"))
        })
    }
}
