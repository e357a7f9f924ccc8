//! A small client of Snowflake's driver protocol: the REST protocol every official driver
//! (Python, JDBC, Go, ODBC) speaks, chosen over the SQL API v2 because it is the one that
//! returns Arrow result chunks, needs no warehouse for `SHOW`, and is the one emulators speak
//! (fakesnow has no SQL API).
//!
//! What it does:
//! - login (`POST /session/v1/login-request`) with a JWT, an OAuth token or a password, and
//!   logout (`POST /session?delete=true`);
//! - queries (`POST /queries/v1/query-request`), one statement each, answered inline
//!   (`rowsetBase64` Arrow, or a JSON `rowset`) and in result chunks fetched from their URLs
//!   with the headers the response names (they carry the chunk's decryption key: never
//!   logged);
//! - asynchronous answers (`333333`/`333334`): polled at `getResultUrl`;
//! - a session that expired mid-run (`390112`): logged in again, the statement resent once;
//! - keep-alive (`POST /session/heartbeat`) while a session is open;
//! - a per-query deadline, after which the query is cancelled
//!   (`POST /queries/v1/abort-request`);
//! - retries with jittered exponential backoff on HTTP 408, 429 (honouring `Retry-After`),
//!   500, 502, 503, 504 and dropped connections, keeping the request's `requestId` so the
//!   server can tell a retry from a new statement; never on an SQL error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arrow_buffer::Buffer;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use super::auth::{Credential, KeyError};
use super::rowset::{Batch, each_arrow_batch, each_arrow_batch_in, json_batch};
use crate::http::{self, HttpFailure, Retry};

/// Why a Snowflake call failed.
#[derive(Debug, thiserror::Error)]
pub enum SnowflakeError {
    /// The login was refused (wrong key, user, role or token): exit 77.
    #[error("login refused: {code} {message}")]
    Login {
        /// Snowflake's error code (`390144`: JWT invalid; `390100`: wrong password).
        code: String,
        /// Its message.
        message: String,
    },
    /// The key could not be read: exit 78.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The OAuth token file could not be read: exit 78.
    #[error("cannot read the OAuth token file {path}: {source}")]
    TokenFile {
        /// Its path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No answer: TLS refused, or the service unreachable after every retry.
    #[error(transparent)]
    Transport(#[from] http::TransportError),
    /// The service answered an HTTP status no retry can help.
    #[error("{what}: HTTP {status}")]
    Http {
        /// The request.
        what: &'static str,
        /// The status.
        status: u16,
    },
    /// A statement failed (never retried).
    #[error("SQL error {code} ({sql_state}): {message}")]
    Sql {
        /// Snowflake's error code (`002003`: does not exist or not authorized).
        code: String,
        /// The SQL state.
        sql_state: String,
        /// Its message.
        message: String,
    },
    /// A statement ran past the query deadline and was cancelled: exit 75.
    #[error("a query ran longer than {0:?} and was cancelled")]
    Timeout(Duration),
    /// An answer that does not follow the protocol.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The consumer of the rows failed.
    #[error(transparent)]
    Consumer(Box<dyn std::error::Error + Send + Sync>),
}

impl SnowflakeError {
    /// The SQL error code, for a failed statement.
    pub fn sql_code(&self) -> Option<&str> {
        match self {
            Self::Sql { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Where to log in, and as whom.
#[derive(Debug)]
pub struct Connection {
    /// `https://host:port` (or `http://` for an emulator).
    pub base_url: String,
    /// The account identifier.
    pub account: String,
    /// The login name.
    pub user: String,
    /// The role to use, or the user's default.
    pub role: Option<String>,
    /// The warehouse (needed for `INFORMATION_SCHEMA` queries, not for `SHOW`).
    pub warehouse: Option<String>,
    /// The credential.
    pub credential: Credential,
    /// The HTTP client (TLS, proxy and CA already set).
    pub http: reqwest::Client,
    /// The longest one statement may run.
    pub query_timeout: Duration,
    /// Retries.
    pub retry: Retry,
    /// How often an open session says it is alive; `None`: as the server asks (at most
    /// hourly).
    pub heartbeat: Option<Duration>,
    /// Where every statement sent is listed (the manifest's query audit).
    pub audit: crate::audit::Audit,
}

/// One logged-in session. Statements on one session run one at a time.
pub struct Session {
    connection: Arc<Connection>,
    token: Arc<Mutex<String>>,
    sequence: AtomicU64,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// The JSON every service answer is wrapped in; `data` is typed by the caller, so a query's
/// result is parsed once, straight into its fields.
#[derive(Deserialize)]
struct Envelope<D = Value> {
    #[serde(default = "Option::default")]
    data: Option<D>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    success: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    #[serde(default)]
    rowtype: Vec<RowType>,
    #[serde(default)]
    rowset: Option<Value>,
    /// The inline part, decoded from base64 while the answer is parsed: the answer's text
    /// and the Arrow bytes are never both kept once parsing is done.
    #[serde(default, deserialize_with = "base64_bytes")]
    rowset_base64: Option<Vec<u8>>,
    #[serde(default)]
    query_result_format: Option<String>,
    #[serde(default)]
    chunks: Vec<Chunk>,
    #[serde(default)]
    chunk_headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    qrmk: Option<String>,
    #[serde(default)]
    sql_state: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    /// Where a statement that is still running is polled.
    #[serde(default)]
    get_result_url: Option<String>,
}

/// `rowsetBase64`, decoded as it is read (borrowed from the answer's text where JSON allows).
fn base64_bytes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<u8>>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Option<Vec<u8>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a base64 string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            STANDARD
                .decode(text.as_bytes())
                .map(Some)
                .map_err(|e| E::custom(format!("rowsetBase64: {e}")))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Visitor)
}

#[derive(Deserialize)]
struct RowType {
    name: String,
}

#[derive(Deserialize, Clone)]
struct Chunk {
    url: String,
}

/// The codes that mean "still running; ask again at `getResultUrl`".
const IN_PROGRESS: [&str; 2] = ["333333", "333334"];
/// "Your session has expired. Please login again."
const SESSION_EXPIRED: &str = "390112";

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

impl Connection {
    /// Sends a request built by `build` (called once per attempt, with the retry's query
    /// parameters) until it succeeds, fails for good, or the retries run out; returns the body.
    async fn send(
        &self,
        what: &'static str,
        build: impl Fn(&[(&str, String)]) -> reqwest::RequestBuilder,
    ) -> Result<Bytes, SnowflakeError> {
        // A retry says so, as the official drivers do: Snowflake dedupes by requestId and
        // counts retries in its query history.
        let start_ms = now_ms().to_string();
        http::send(&self.retry, what, |attempt| {
            let mut extra = Vec::new();
            if attempt > 0 {
                extra.push(("retryCount", attempt.to_string()));
                extra.push(("clientStartTime", start_ms.clone()));
            }
            build(&extra)
        })
        .await
        .map_err(|failure| match failure {
            HttpFailure::Transport(error) => SnowflakeError::Transport(error),
            HttpFailure::Status { status, .. } => SnowflakeError::Http {
                what,
                status: status.as_u16(),
            },
        })
    }

    /// A POST of JSON to `path`, with a fresh `requestId` kept across retries.
    async fn post<D: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        query: &[(&str, String)],
        token: Option<&str>,
        body: &Value,
    ) -> Result<Envelope<D>, SnowflakeError> {
        let request_id = new_id();
        let url = format!("{}{path}", self.base_url);
        let body = serde_json::to_vec(body).map_err(|e| SnowflakeError::Protocol(e.to_string()))?;
        let bytes = self
            .send(what, |extra| {
                let mut request = self
                    .http
                    .post(&url)
                    .query(&[("requestId", &request_id), ("request_guid", &new_id())])
                    .query(query)
                    .query(extra)
                    .header(reqwest::header::ACCEPT, "application/snowflake")
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                if let Some(token) = token {
                    request = request.header(
                        reqwest::header::AUTHORIZATION,
                        format!("Snowflake Token=\"{token}\""),
                    );
                }
                request
            })
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SnowflakeError::Protocol(format!("{what}: not a JSON answer: {e}")))
    }

    /// Logs in; returns the session token and the heartbeat interval the server asks for.
    async fn login(&self) -> Result<(String, Option<Duration>), SnowflakeError> {
        let version = env!("CARGO_PKG_VERSION");
        let mut data = json!({
            "CLIENT_APP_ID": "Outpost",
            "CLIENT_APP_VERSION": version,
            "ACCOUNT_NAME": super::auth::jwt_account(&self.account),
            "LOGIN_NAME": self.user,
            "CLIENT_ENVIRONMENT": {"APPLICATION": "Outpost"},
            "SESSION_PARAMETERS": {
                "CLIENT_SESSION_KEEP_ALIVE": true,
                "STATEMENT_TIMEOUT_IN_SECONDS": self.query_timeout.as_secs(),
                "QUERY_TAG": "outpost",
            },
        });
        let fields = data
            .as_object_mut()
            .ok_or_else(|| SnowflakeError::Protocol("login body".into()))?;
        if let Some(authenticator) = self.credential.authenticator() {
            fields.insert("AUTHENTICATOR".into(), authenticator.into());
        }
        match &self.credential {
            Credential::KeyPair(key) => {
                fields.insert(
                    "TOKEN".into(),
                    key.jwt(&self.account, &self.user, SystemTime::now())?
                        .into(),
                );
            }
            Credential::OAuth(path) => {
                let token =
                    std::fs::read_to_string(path).map_err(|source| SnowflakeError::TokenFile {
                        path: path.display().to_string(),
                        source,
                    })?;
                fields.insert("TOKEN".into(), token.trim().into());
            }
            Credential::Password(password) => {
                fields.insert("PASSWORD".into(), password.expose().into());
            }
        }
        let mut query = Vec::new();
        if let Some(warehouse) = &self.warehouse {
            query.push(("warehouse", warehouse.clone()));
        }
        if let Some(role) = &self.role {
            query.push(("roleName", role.clone()));
        }
        let envelope: Envelope = match self
            .post(
                "login",
                "/session/v1/login-request",
                &query,
                None,
                &json!({ "data": data }),
            )
            .await
        {
            Err(SnowflakeError::Http { status, .. }) if status == 401 || status == 403 => {
                return Err(SnowflakeError::Login {
                    code: format!("HTTP {status}"),
                    message: "the service refused the login".into(),
                });
            }
            other => other?,
        };
        if !envelope.success {
            return Err(SnowflakeError::Login {
                code: envelope.code.unwrap_or_default(),
                message: envelope.message.unwrap_or_default(),
            });
        }
        let data = envelope.data.unwrap_or_default();
        let token = data
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| SnowflakeError::Protocol("the login answer has no token".into()))?
            .to_owned();
        let frequency = data
            .get("parameters")
            .and_then(Value::as_array)
            .and_then(|parameters| {
                parameters.iter().find(|p| {
                    p.get("name").and_then(Value::as_str)
                        == Some("CLIENT_SESSION_KEEP_ALIVE_HEARTBEAT_FREQUENCY")
                })
            })
            .and_then(|p| p.get("value"))
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        Ok((token, frequency))
    }
}

impl Session {
    /// Logs in and starts the keep-alive.
    pub async fn open(connection: Arc<Connection>) -> Result<Self, SnowflakeError> {
        let (token, frequency) = connection.login().await?;
        let token = Arc::new(Mutex::new(token));
        let interval = connection
            .heartbeat
            .or(frequency)
            .unwrap_or(Duration::from_secs(3600))
            .clamp(Duration::from_millis(50), Duration::from_secs(3600));
        let heartbeat = tokio::spawn({
            let connection = connection.clone();
            let token = token.clone();
            async move {
                loop {
                    tokio::time::sleep(interval).await;
                    let current = token.lock().map(|t| t.clone()).unwrap_or_default();
                    if let Err(error) = connection
                        .post::<IgnoredAny>(
                            "heartbeat",
                            "/session/heartbeat",
                            &[],
                            Some(&current),
                            &json!({}),
                        )
                        .await
                    {
                        tracing::debug!(%error, "Snowflake heartbeat failed");
                    }
                }
            }
        });
        Ok(Self {
            connection,
            token,
            sequence: AtomicU64::new(0),
            heartbeat,
        })
    }

    fn token(&self) -> String {
        self.token.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Ends the session (best effort: it expires on its own otherwise).
    pub async fn close(self) {
        let token = self.token();
        if let Err(error) = self
            .connection
            .post::<IgnoredAny>(
                "logout",
                "/session",
                &[("delete", "true".into())],
                Some(&token),
                &json!({}),
            )
            .await
        {
            tracing::debug!(%error, "Snowflake logout failed");
        }
    }

    /// Runs `sql` and calls `each` on every batch of its result, in order, as it arrives.
    /// The statement is cancelled past the query deadline.
    pub async fn query(
        &self,
        sql: &str,
        mut each: impl FnMut(Batch) -> Result<(), SnowflakeError>,
    ) -> Result<(), SnowflakeError> {
        let request_id = new_id();
        let deadline = self.connection.query_timeout;
        let mut sent = self.connection.audit.start(sql);
        let mut each = |batch: Batch| {
            sent.rows(batch.len() as u64);
            each(batch)
        };
        match tokio::time::timeout(deadline, self.run(sql, &request_id, &mut each)).await {
            Ok(result) => result,
            Err(_) => {
                let token = self.token();
                let body = json!({"sqlText": sql, "requestId": request_id});
                if let Err(error) = self
                    .connection
                    .post::<IgnoredAny>(
                        "abort",
                        "/queries/v1/abort-request",
                        &[],
                        Some(&token),
                        &body,
                    )
                    .await
                {
                    tracing::debug!(%error, "cancelling a Snowflake query failed");
                }
                Err(SnowflakeError::Timeout(deadline))
            }
        }
    }

    async fn run(
        &self,
        sql: &str,
        request_id: &str,
        each: &mut impl FnMut(Batch) -> Result<(), SnowflakeError>,
    ) -> Result<(), SnowflakeError> {
        let mut relogged = false;
        let data = loop {
            let body = json!({
                "sqlText": sql,
                "asyncExec": false,
                "sequenceId": self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
                "querySubmissionTime": now_ms(),
                "isInternal": false,
                "queryContextDTO": {},
            });
            let token = self.token();
            let mut envelope: Envelope<QueryData> = self
                .connection
                .post(
                    "query",
                    "/queries/v1/query-request",
                    &[("requestId", request_id.to_owned())],
                    Some(&token),
                    &body,
                )
                .await?;
            // Still running: poll its result URL, backing off from 0.5 s to 5 s.
            let mut wait = Duration::from_millis(500);
            while envelope
                .code
                .as_deref()
                .is_some_and(|c| IN_PROGRESS.contains(&c))
            {
                let url = envelope
                    .data
                    .and_then(|d| d.get_result_url)
                    .ok_or_else(|| {
                        SnowflakeError::Protocol("a running query without getResultUrl".into())
                    })?;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                envelope = self.get_json("result", &url).await?;
            }
            if envelope.code.as_deref() == Some(SESSION_EXPIRED) && !relogged {
                // The session expired (a long run, or an idle one): a new login, with a new
                // JWT or a re-read OAuth token, and the statement once more.
                let (token, _) = self.connection.login().await?;
                if let Ok(mut current) = self.token.lock() {
                    *current = token;
                }
                relogged = true;
                continue;
            }
            if !envelope.success {
                let data = envelope.data.unwrap_or_default();
                return Err(SnowflakeError::Sql {
                    code: envelope.code.or(data.error_code).unwrap_or_default(),
                    sql_state: data.sql_state.unwrap_or_default(),
                    message: envelope.message.unwrap_or_default(),
                });
            }
            break envelope.data.unwrap_or_default();
        };
        self.read_result(data, each).await
    }

    /// A GET of a path on the service that answers the JSON envelope.
    async fn get_json<D: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
    ) -> Result<Envelope<D>, SnowflakeError> {
        let token = self.token();
        let url = format!("{}{path}", self.connection.base_url);
        let bytes = self
            .connection
            .send(what, |extra| {
                self.connection
                    .http
                    .get(&url)
                    .query(extra)
                    .header(reqwest::header::ACCEPT, "application/snowflake")
                    .header(
                        reqwest::header::AUTHORIZATION,
                        format!("Snowflake Token=\"{token}\""),
                    )
            })
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SnowflakeError::Protocol(format!("{what}: not a JSON answer: {e}")))
    }

    /// The inline part, then each chunk in order (the next one fetched while the current one
    /// is decoded).
    async fn read_result(
        &self,
        data: QueryData,
        each: &mut impl FnMut(Batch) -> Result<(), SnowflakeError>,
    ) -> Result<(), SnowflakeError> {
        let arrow = data
            .query_result_format
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case("arrow"));
        let names: Vec<String> = data.rowtype.into_iter().map(|r| r.name).collect();
        let headers = chunk_headers(data.chunk_headers, data.qrmk.as_deref());
        let fetch = |url: String| {
            let connection = self.connection.clone();
            let headers = headers.clone();
            tokio::spawn(async move { connection.chunk(&url, &headers).await })
        };
        // The first chunk is on its way while the inline part is decoded.
        let mut chunks = data.chunks.into_iter();
        let mut next = chunks.next().map(|c| fetch(c.url));
        if arrow {
            if let Some(bytes) = data.rowset_base64.filter(|b| !b.is_empty()) {
                each_arrow_batch_in(
                    Buffer::from_vec(bytes),
                    &mut *each,
                    SnowflakeError::Protocol,
                )?;
            }
        } else if let Some(rowset) = data.rowset {
            each(json_batch(names.clone(), rowset).map_err(SnowflakeError::Protocol)?)?;
        }
        while let Some(current) = next.take() {
            next = chunks.next().map(|c| fetch(c.url));
            let body = current
                .await
                .map_err(|e| SnowflakeError::Protocol(format!("chunk task: {e}")))??;
            let gzipped = body.starts_with(&[0x1f, 0x8b]);
            if arrow && gzipped {
                // Unzipped as it is decoded: only the batch is ever whole in memory.
                each_arrow_batch(
                    flate2::read::GzDecoder::new(&body[..]),
                    &mut *each,
                    SnowflakeError::Protocol,
                )?;
            } else if arrow {
                each_arrow_batch_in(Buffer::from(body), &mut *each, SnowflakeError::Protocol)?;
            } else {
                // A JSON chunk is the rows without the enclosing brackets.
                let body = gunzip_if_needed(body)?;
                let mut text = Vec::with_capacity(body.len() + 2);
                text.push(b'[');
                text.extend_from_slice(&body);
                text.push(b']');
                drop(body);
                let rowset = serde_json::from_slice(&text)
                    .map_err(|e| SnowflakeError::Protocol(format!("JSON chunk: {e}")))?;
                each(json_batch(names.clone(), rowset).map_err(SnowflakeError::Protocol)?)?;
            }
        }
        Ok(())
    }
}

/// The headers a chunk GET needs: the ones the response names, or else the SSE-C headers
/// built from `qrmk` (the chunk's encryption key on the stage).
fn chunk_headers(
    named: Option<BTreeMap<String, String>>,
    qrmk: Option<&str>,
) -> Vec<(String, String)> {
    match (named, qrmk) {
        (Some(named), _) if !named.is_empty() => named.into_iter().collect(),
        (_, Some(qrmk)) => vec![
            (
                "x-amz-server-side-encryption-customer-algorithm".into(),
                "AES256".into(),
            ),
            (
                "x-amz-server-side-encryption-customer-key".into(),
                qrmk.to_owned(),
            ),
        ],
        _ => Vec::new(),
    }
}

fn gunzip_if_needed(body: Bytes) -> Result<Vec<u8>, SnowflakeError> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(body.len() * 4);
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .map_err(|e| SnowflakeError::Protocol(format!("gzip chunk: {e}")))?;
        Ok(out)
    } else {
        Ok(body.to_vec())
    }
}

impl Connection {
    /// One result chunk. Its URL is pre-signed: it goes to the stage, with no session token.
    async fn chunk(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Bytes, SnowflakeError> {
        // A retried chunk keeps its URL as is: its query string is signed.
        self.send("result chunk", |_| {
            let mut request = self.http.get(url);
            for (name, value) in headers {
                request = request.header(name.as_str(), value.as_str());
            }
            request
        })
        .await
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base_url", &self.connection.base_url)
            .finish_non_exhaustive()
    }
}
