//! Direct ingestion: each file PUT to a short-lived pre-signed URL, `manifest.json` last.
//!
//! Works with S3 pre-signed PUTs, Azure SAS URLs (with `x-ms-blob-type: BlockBlob`) and GCS
//! V4 signed URLs: the URL set says which headers each PUT needs.
//!
//! Reliability rules:
//! - Only transient failures are retried (5xx, 429, 408, timeouts, dropped connections),
//!   with exponential backoff and full jitter, and never past the URL's expiry.
//! - A URL the store rejects (401/403, or 400 naming an expired request) is refreshed once
//!   from its source; a second rejection, or a refresh that returns the same URL, fails the
//!   file. Nothing is retried blindly.
//! - Every URL is checked before the first byte is sent: a missing or already-expired URL
//!   fails the delivery with nothing uploaded.
//! - The manifest goes up only after every data file succeeded.
//! - Every attempt is bounded in time, answer included ([`DirectLimits::attempt_timeout`]
//!   plus the file's bytes at [`DirectLimits::min_throughput`]), and an error answer's body
//!   is read for at most 16 KiB and 10 s ([`crate::bounded`]): a host that answers 403 and
//!   then trickles its body cannot hold the upload.
//!
//! A pre-signed URL's query string is a credential: it is never logged or put in an error;
//! messages name `scheme://host/path` only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use rand::RngExt;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::relay::DeliveryReport;
use crate::run::{LocalRun, MANIFEST};
use crate::{DeliveryError, Progress};

/// Where to PUT one file, as the control plane (or a URL file) hands it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadUrl {
    /// The pre-signed URL.
    pub url: url::Url,
    /// The HTTP method; only `PUT` is supported.
    #[serde(default = "put")]
    pub method: String,
    /// Headers the signature requires (`x-ms-blob-type: BlockBlob` for Azure).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// When the URL stops working (RFC 3339).
    #[serde(alias = "expires_at", with = "rfc3339")]
    pub expires_at: SystemTime,
}

fn put() -> String {
    "PUT".to_owned()
}

mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(*time).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))
    }
}

impl UploadUrl {
    /// A `PUT` URL that requires `headers`, valid for ten minutes: what the tests hand out.
    #[doc(hidden)]
    pub fn put_for_tests(url: &str, headers: &[(&str, &str)]) -> Self {
        Self {
            url: url::Url::parse(url).expect("a valid URL"),
            method: "PUT".to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            expires_at: SystemTime::now() + Duration::from_secs(600),
        }
    }

    /// `scheme://host/path`: the URL without its query (which carries the signature).
    pub fn redacted(&self) -> String {
        outpost_core::redact::redact_url(&self.url)
    }

    fn check(&self, path: &str) -> Result<(), DeliveryError> {
        let problem = |what: String| DeliveryError::Urls(format!("`{path}`: {what}"));
        if !self.method.eq_ignore_ascii_case("PUT") {
            return Err(problem(format!(
                "method `{}` is not supported; only PUT",
                self.method
            )));
        }
        let loopback = matches!(
            self.url.host(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback()
        ) || matches!(self.url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            || self.url.host_str() == Some("localhost");
        match self.url.scheme() {
            "https" => {}
            "http" if loopback => {}
            scheme => {
                return Err(problem(format!(
                    "{} uses `{scheme}`; upload URLs must use https",
                    self.redacted()
                )));
            }
        }
        for name in self.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection"
            ) || reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            {
                return Err(problem(format!("header `{name}` may not be set")));
            }
        }
        Ok(())
    }
}

/// A run's upload URLs: run-relative path (`tables/part-00000.ndjson.zst`, `manifest.json`)
/// to where it goes.
pub type UrlSet = BTreeMap<String, UploadUrl>;

/// Where upload URLs come from: the control plane, or a file.
#[async_trait::async_trait]
pub trait UrlSource: Send + Sync {
    /// URLs for `paths` (the data files and `manifest.json`).
    async fn urls(&self, paths: &[String]) -> Result<UrlSet, DeliveryError>;
    /// A fresh URL for one path whose URL expired or was rejected.
    async fn refresh(&self, path: &str) -> Result<UploadUrl, DeliveryError>;
}

/// A JSON file mapping each path to its [`UploadUrl`]; read again on refresh, so an operator
/// (or a test) can replace it.
#[derive(Clone, Debug)]
pub struct UrlFile {
    path: PathBuf,
}

impl UrlFile {
    /// A source reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn read(&self) -> Result<UrlSet, DeliveryError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| DeliveryError::Read {
            path: self.path.clone(),
            source,
        })?;
        let mut deserializer = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            DeliveryError::Urls(format!(
                "{}: line {}: {}: {}",
                self.path.display(),
                e.inner().line(),
                e.path(),
                e.inner()
            ))
        })
    }
}

#[async_trait::async_trait]
impl UrlSource for UrlFile {
    async fn urls(&self, paths: &[String]) -> Result<UrlSet, DeliveryError> {
        let mut all = self.read()?;
        Ok(paths.iter().filter_map(|p| all.remove_entry(p)).collect())
    }

    async fn refresh(&self, path: &str) -> Result<UploadUrl, DeliveryError> {
        self.read()?.remove(path).ok_or_else(|| {
            DeliveryError::Urls(format!("{} has no URL for `{path}`", self.path.display()))
        })
    }
}

/// Limits of a direct delivery.
#[derive(Clone, Copy, Debug)]
pub struct DirectLimits {
    /// Files uploaded at once.
    pub concurrency: usize,
    /// Longest time one file's transient failures are retried (also bounded by its URL's
    /// expiry).
    pub retry_budget: Duration,
    /// A URL closer than this to its expiry counts as expired.
    pub expiry_margin: Duration,
    /// First backoff; each next one doubles, up to `max_backoff`, with full jitter.
    pub initial_backoff: Duration,
    /// Longest single backoff.
    pub max_backoff: Duration,
    /// Bytes of file content held in memory at once. Each file is sent whole (a pre-signed
    /// URL takes one PUT), so a file larger than the budget is sent alone.
    pub memory_budget: usize,
    /// Time one PUT may take beyond its bytes at `min_throughput`, answer included; past it
    /// the attempt fails as a timeout (transient, so retried within `retry_budget`).
    pub attempt_timeout: Duration,
    /// Slowest upload allowed, in bytes per second: a 64 MiB part may take 17 minutes at the
    /// default 64 KiB/s, on top of `attempt_timeout`.
    pub min_throughput: u64,
}

impl DirectLimits {
    /// The deadline of one attempt sending `bytes`.
    pub fn attempt_deadline(&self, bytes: usize) -> Duration {
        let transfer = bytes as f64 / self.min_throughput.max(1) as f64;
        self.attempt_timeout + Duration::from_secs_f64(transfer)
    }
}

impl Default for DirectLimits {
    fn default() -> Self {
        Self {
            concurrency: crate::relay::DEFAULT_CONCURRENCY,
            retry_budget: Duration::from_secs(120),
            expiry_margin: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            memory_budget: crate::relay::DEFAULT_MEMORY_BUDGET,
            attempt_timeout: Duration::from_secs(60),
            min_throughput: 64 << 10,
        }
    }
}

/// Builds the HTTP client for direct uploads: proxies from the environment, the CA bundle
/// named by `ca_bundle` or `SSL_CERT_FILE` added to the system roots.
pub fn http_client(ca_bundle: Option<&std::path::Path>) -> Result<reqwest::Client, DeliveryError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("outpost/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        // A backstop for requests that set no deadline of their own (every upload and
        // control-plane call does): the read timeout alone lets a peer that sends one byte
        // a minute hold a request forever.
        .timeout(Duration::from_secs(30 * 60))
        .redirect(reqwest::redirect::Policy::none());
    let path = ca_bundle.map(PathBuf::from).or_else(|| {
        std::env::var_os("SSL_CERT_FILE")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = path {
        let pem = std::fs::read(&path).map_err(|e| {
            DeliveryError::Config(format!("cannot read CA bundle {}: {e}", path.display()))
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| DeliveryError::Config(format!("CA bundle {}: {e}", path.display())))?;
        builder = builder.tls_certs_merge(certificates);
    }
    builder
        .build()
        .map_err(|e| DeliveryError::Config(format!("HTTP client: {}", e.without_url())))
}

/// Delivers `run` through the URLs `source` hands out.
pub async fn deliver_direct(
    client: &reqwest::Client,
    source: &dyn UrlSource,
    run: &LocalRun,
    limits: DirectLimits,
    progress: &dyn Progress,
) -> Result<DeliveryReport, DeliveryError> {
    let started = Instant::now();
    let mut paths: Vec<String> = run.files.iter().map(|f| f.relative.clone()).collect();
    paths.push(MANIFEST.to_owned());
    let mut urls = source.urls(&paths).await?;

    // Every URL is usable before anything is sent.
    let missing: Vec<&str> = paths
        .iter()
        .filter(|p| !urls.contains_key(*p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(DeliveryError::Urls(format!(
            "no URL for {}; nothing was uploaded",
            missing.join(", ")
        )));
    }
    for path in &paths {
        let url = urls.get(path).expect("checked above");
        url.check(path)?;
        if expires_soon(url, limits.expiry_margin) {
            let fresh = source.refresh(path).await?;
            fresh.check(path)?;
            if expires_soon(&fresh, limits.expiry_margin) {
                return Err(DeliveryError::Urls(format!(
                    "`{path}`: the URL for {} expired at {} and its refresh too; nothing was uploaded",
                    fresh.redacted(),
                    humantime::format_rfc3339_seconds(fresh.expires_at)
                )));
            }
            urls.insert(path.clone(), fresh);
        }
    }

    let budget = crate::relay::MemoryBudget::new(limits.memory_budget);
    let mut uploads = futures_util::stream::iter(run.files.iter().map(|file| {
        let url = urls.get(&file.relative).cloned().expect("checked above");
        let budget = &budget;
        async move {
            let _memory = budget.acquire(file.bytes as usize).await;
            let body = Body::File {
                path: file.path.clone(),
                bytes: file.bytes,
                sha256: file.sha256.clone(),
            };
            put_with_retries(client, source, &file.relative, url, &body, limits).await?;
            progress.file_done(&file.relative, file.bytes);
            Ok::<u64, DeliveryError>(file.bytes)
        }
    }))
    .buffer_unordered(limits.concurrency.max(1));
    let mut bytes = 0;
    while let Some(sent) = uploads.next().await {
        bytes += sent?;
    }
    drop(uploads);

    let manifest_url = urls.remove(MANIFEST).expect("checked above");
    let shown = manifest_url.redacted();
    let body = Body::Memory(bytes::Bytes::from(run.manifest_bytes.clone()));
    put_with_retries(client, source, MANIFEST, manifest_url, &body, limits).await?;
    Ok(DeliveryReport::committed(
        run, progress, shown, bytes, 0, started,
    ))
}

fn expires_soon(url: &UploadUrl, margin: Duration) -> bool {
    url.expires_at
        .duration_since(SystemTime::now())
        .map(|left| left <= margin)
        .unwrap_or(true)
}

enum Body {
    /// A data file, checked against its manifest digest while read.
    File {
        path: PathBuf,
        bytes: u64,
        sha256: String,
    },
    Memory(bytes::Bytes),
}

impl Body {
    /// The request body. A file is read whole (data files are bounded by the extractor's
    /// part size) and checked against the manifest before it is sent.
    async fn load(&self) -> Result<bytes::Bytes, DeliveryError> {
        match self {
            Self::Memory(bytes) => Ok(bytes.clone()),
            Self::File {
                path,
                bytes,
                sha256,
            } => {
                let mut file =
                    tokio::fs::File::open(path)
                        .await
                        .map_err(|source| DeliveryError::Read {
                            path: path.clone(),
                            source,
                        })?;
                let mut buffer = Vec::with_capacity(*bytes as usize);
                file.read_to_end(&mut buffer)
                    .await
                    .map_err(|source| DeliveryError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let digest = outpost_core::output::sha256_hex(&buffer);
                if buffer.len() as u64 != *bytes || digest != *sha256 {
                    return Err(DeliveryError::Inconsistent {
                        path: path.clone(),
                        problem: format!(
                            "{} bytes with sha256 {digest}, the manifest says {bytes} bytes with {sha256}; the file changed after extraction",
                            buffer.len()
                        ),
                    });
                }
                Ok(bytes::Bytes::from(buffer))
            }
        }
    }
}

/// What one attempt's answer means.
enum Outcome {
    Done,
    Transient(String),
    Rejected { status: u16, detail: Option<String> },
}

async fn put_with_retries(
    client: &reqwest::Client,
    source: &dyn UrlSource,
    path: &str,
    mut url: UploadUrl,
    body: &Body,
    limits: DirectLimits,
) -> Result<(), DeliveryError> {
    let content = body.load().await?;
    let started = Instant::now();
    let mut refreshed = false;
    let mut backoff = limits.initial_backoff;
    loop {
        match attempt(client, &url, content.clone(), &limits).await {
            Outcome::Done => return Ok(()),
            Outcome::Rejected { status, detail } => {
                if refreshed {
                    return Err(DeliveryError::UrlRejected {
                        path: path.to_owned(),
                        target: url.redacted(),
                        status,
                        detail,
                    });
                }
                refreshed = true;
                tracing::warn!(file = path, target = %url.redacted(), status, "upload URL rejected; asking for a fresh one");
                let fresh = source.refresh(path).await?;
                fresh.check(path)?;
                if fresh.url == url.url {
                    return Err(DeliveryError::UrlRejected {
                        path: path.to_owned(),
                        target: url.redacted(),
                        status,
                        detail: Some(format!(
                            "{}; the refreshed URL is the same",
                            detail.unwrap_or_else(|| "rejected".to_owned())
                        )),
                    });
                }
                url = fresh;
                backoff = limits.initial_backoff;
            }
            Outcome::Transient(last) => {
                // Full jitter: a random wait up to the current backoff.
                let wait = rand::rng().random_range(Duration::ZERO..=backoff);
                let deadline_by_budget = started + limits.retry_budget;
                let by_budget = Instant::now() + wait < deadline_by_budget;
                let by_expiry = url
                    .expires_at
                    .duration_since(SystemTime::now())
                    .is_ok_and(|left| left > wait + limits.expiry_margin);
                if !(by_budget && by_expiry) {
                    return Err(DeliveryError::UrlRetriesExhausted {
                        path: path.to_owned(),
                        target: url.redacted(),
                        last,
                    });
                }
                tracing::debug!(file = path, wait_ms = wait.as_millis() as u64, %last, "transient upload failure; retrying");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(limits.max_backoff);
            }
        }
    }
}

async fn attempt(
    client: &reqwest::Client,
    url: &UploadUrl,
    content: bytes::Bytes,
    limits: &DirectLimits,
) -> Outcome {
    let deadline = limits.attempt_deadline(content.len());
    let mut request = client.put(url.url.clone()).timeout(deadline).body(content);
    for (name, value) in &url.headers {
        request = request.header(name, value);
    }
    let response = match request.send().await {
        Ok(response) => response,
        // Timeouts, refused and dropped connections, bodies cut short.
        Err(e) => return Outcome::Transient(e.without_url().to_string()),
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Done;
    }
    // Only the error code is wanted: read a bounded prefix, for a bounded time.
    let text = crate::bounded::error_text(response).await;
    let code = error_code(&text);
    let expired = code.as_deref().is_some_and(|c| {
        matches!(
            c,
            "ExpiredToken" | "RequestExpired" | "AuthenticationFailed"
        )
    }) || text.contains("Request has expired");
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
            Outcome::Transient(status.to_string())
        }
        s if s.is_server_error() => Outcome::Transient(status.to_string()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Outcome::Rejected {
            status: status.as_u16(),
            detail: code,
        },
        StatusCode::BAD_REQUEST if expired => Outcome::Rejected {
            status: status.as_u16(),
            detail: code,
        },
        _ => Outcome::Rejected {
            status: status.as_u16(),
            detail: code.or_else(|| Some("not retried".to_owned())),
        },
    }
}

/// The `<Code>` of an S3/Azure/GCS XML error body; the rest of the body is not repeated.
fn error_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    let code = &body[start..end];
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        .then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_files_parse_with_either_expiry_spelling() {
        let json = r#"{"manifest.json": {"url": "https://h/p?sig=1", "headers": {"x-ms-blob-type": "BlockBlob"}, "expires_at": "2026-11-26T05:00:00Z"},
                       "tables/part-00000.ndjson.zst": {"url": "https://h/q?sig=2", "method": "PUT", "expiresAt": "2026-11-26T05:00:00Z"}}"#;
        let set: UrlSet = serde_json::from_str(json).expect("valid");
        assert_eq!(set.len(), 2);
        assert_eq!(set["manifest.json"].method, "PUT");
        assert_eq!(set["manifest.json"].headers["x-ms-blob-type"], "BlockBlob");
    }

    #[test]
    fn unsafe_urls_are_refused_before_any_upload() {
        let far = SystemTime::now() + Duration::from_secs(3600);
        let make = |url: &str, method: &str, header: Option<(&str, &str)>| UploadUrl {
            url: url::Url::parse(url).expect("valid"),
            method: method.to_owned(),
            headers: header
                .map(|(k, v)| BTreeMap::from([(k.to_owned(), v.to_owned())]))
                .unwrap_or_default(),
            expires_at: far,
        };
        assert!(make("https://h/p", "PUT", None).check("f").is_ok());
        assert!(
            make("http://127.0.0.1:9000/p", "PUT", None)
                .check("f")
                .is_ok()
        );
        for (url, why) in [
            (make("http://example.com/p", "PUT", None), "must use https"),
            (make("https://h/p", "DELETE", None), "only PUT"),
            (
                make("https://h/p", "PUT", Some(("Host", "evil"))),
                "may not be set",
            ),
            (make("file:///etc/passwd", "PUT", None), "must use https"),
        ] {
            let error = url.check("f").expect_err(why).to_string();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn error_codes_are_read_from_xml_bodies() {
        assert_eq!(
            error_code("<?xml?><Error><Code>AccessDenied</Code><Message>x</Message></Error>")
                .as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(error_code("no xml"), None);
    }
}
