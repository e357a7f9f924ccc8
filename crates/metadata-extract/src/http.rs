//! Retries for the sources that speak HTTP (Snowflake, Tableau): which failures another
//! attempt may cure, how long to wait before it, and the loop that sends until it succeeds,
//! fails for good, or runs out of attempts or time. Each source maps an [`HttpFailure`]
//! to its own error (and so to its exit code).

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use crate::ExtractError;
use crate::sources::ServerConfig;

/// How failed requests are retried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; each next one doubles, with full jitter.
    pub first: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured.
    pub max: Duration,
    /// No retry starts later than this after the first attempt.
    pub budget: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 7,
            first: Duration::from_millis(500),
            max: Duration::from_secs(16),
            budget: Duration::from_secs(120),
        }
    }
}

impl Retry {
    /// The wait before attempt `attempt` (1-based, counting the retries), with full jitter;
    /// a server's `Retry-After` wins, up to `max`.
    pub fn backoff(&self, attempt: u32, after: Option<Duration>) -> Duration {
        if let Some(after) = after {
            return after.min(self.max);
        }
        let ceiling = self
            .first
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=ms))
    }
}

/// Why a request failed for good.
#[derive(Debug)]
pub enum HttpFailure {
    /// No answer could be had: TLS refused, or the server unreachable.
    Transport(TransportError),
    /// The server answered a status no retry can help, with its body.
    Status {
        /// The status.
        status: StatusCode,
        /// The body (an error document, where the service sends one).
        body: Bytes,
    },
}

/// A request that got no answer, whichever HTTP source sent it: each source's error holds
/// it, and [`TransportError::into_extract`] gives the one extraction error (and exit code)
/// for it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TLS failed (an untrusted certificate, a name mismatch): exit 78, never retried.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server could not be reached, or kept failing, after every retry: exit 75.
    #[error("{what}: {detail} (after {attempts} attempts)")]
    Unreachable {
        /// The request.
        what: &'static str,
        /// The last failure.
        detail: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl TransportError {
    /// The extraction's error for this failure of a request to `server`.
    pub fn into_extract(self, server: &crate::sources::ServerConfig) -> crate::ExtractError {
        let target = server.target();
        match self {
            Self::Tls(_) => crate::ExtractError::Tls {
                target,
                mode: server.ssl_mode.as_str().to_owned(),
                source: self.into(),
            },
            Self::Unreachable { .. } => crate::ExtractError::Unreachable {
                target,
                source: self.into(),
            },
        }
    }
}

/// The statuses another attempt may cure: a timeout, a rate limit, an overloaded or
/// restarting server.
pub fn is_retried_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A `Retry-After` given in seconds (the HTTP-date form is not honoured: backoff applies).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A transport error's text, without the URL (it may carry a signed query string).
pub fn transport_detail(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "connection dropped".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The most of a body reserved up front from its `Content-Length`; past it, the buffer grows.
const PRESIZE_LIMIT: u64 = 256 << 20;

/// A whole body, in one buffer sized from its `Content-Length`. Gathering the pieces first
/// and joining them after (`Response::bytes`) holds a large answer twice at its peak.
pub async fn read_body(mut response: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let presize = response.content_length().unwrap_or(0).min(PRESIZE_LIMIT);
    let mut body = Vec::with_capacity(usize::try_from(presize).unwrap_or(0));
    while let Some(piece) = response.chunk().await? {
        body.extend_from_slice(&piece);
    }
    Ok(Bytes::from(body))
}

/// Sends the request `build` makes for each attempt (0 first, then 1, 2 … for the retries)
/// until one succeeds, one fails for good, or the attempts or the time budget run out;
/// returns the successful answer's body. `what` names the request in the debug log.
pub async fn send(
    retry: &Retry,
    what: &'static str,
    build: impl Fn(u32) -> reqwest::RequestBuilder,
) -> Result<Bytes, HttpFailure> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let (detail, after) = match build(attempt).send().await {
            Ok(response) if response.status().is_success() => match read_body(response).await {
                Ok(body) => return Ok(body),
                Err(error) => (transport_detail(&error), None),
            },
            Ok(response) if is_retried_status(response.status()) => (
                format!("HTTP {}", response.status()),
                retry_after(response.headers()),
            ),
            Ok(response) => {
                let status = response.status();
                let body = read_body(response).await.unwrap_or_default();
                return Err(HttpFailure::Status { status, body });
            }
            Err(error) => {
                let detail = transport_detail(&error);
                // A certificate the client does not trust stays untrusted: no retry.
                let lower = detail.to_ascii_lowercase();
                if lower.contains("certificate") || lower.contains("handshake") {
                    return Err(HttpFailure::Transport(TransportError::Tls(detail)));
                }
                (detail, None)
            }
        };
        attempt += 1;
        if attempt >= retry.attempts || started.elapsed() >= retry.budget {
            return Err(HttpFailure::Transport(TransportError::Unreachable {
                what,
                detail,
                attempts: attempt,
            }));
        }
        let wait = retry.backoff(attempt, after);
        tracing::debug!(what, %detail, attempt, ?wait, "request failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

/// The HTTP client for one source: its TLS policy and CA (a connection's own CA pins it),
/// proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`), Outpost's user agent.
pub fn client(server: &ServerConfig) -> Result<reqwest::Client, ExtractError> {
    let target = server.target();
    // Plain HTTP (`disable`, emulators only) still gets a TLS configuration: reqwest needs one
    // to build, and this one names its provider rather than relying on a process default.
    let mode = match server.ssl_mode {
        crate::tls::SslMode::Disable => crate::tls::SslMode::VerifyFull,
        mode => mode,
    };
    let tls = crate::tls::client_config(mode, server.ca_bundle.as_deref()).map_err(|e| {
        ExtractError::Tls {
            target: target.clone(),
            mode: server.ssl_mode.as_str().to_owned(),
            source: e.into(),
        }
    })?;
    reqwest::Client::builder()
        .user_agent(concat!("outpost/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(server.connect_timeout)
        .read_timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::limited(3))
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| ExtractError::Config {
            target,
            problem: format!("HTTP client: {}", e.without_url()),
        })
}
