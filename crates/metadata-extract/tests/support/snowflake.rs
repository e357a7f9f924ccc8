//! A conformance layer in front of fakesnow: an HTTP proxy on loopback that makes the
//! emulator behave as Snowflake documents where fakesnow 0.12 does not. Each rule names the
//! gap it closes:
//!
//! - **Login checks credentials.** fakesnow accepts any login. The proxy verifies a key-pair
//!   JWT as Snowflake does (RS256 signature by the registered public key; `iss` =
//!   `ACCOUNT.USER.SHA256:<fingerprint>`, `sub` = `ACCOUNT.USER`, upper-cased; at most an
//!   hour from `iat` to `exp`; not expired), and compares OAuth tokens and passwords with the
//!   registered ones. A refusal is Snowflake's: HTTP 200, `success: false`, code `390144`
//!   (JWT), `390303` (OAuth) or `390100` (password).
//! - **`SHOW … LIMIT n FROM 'name'` pages.** fakesnow parses `FROM` and ignores it (every page
//!   would be page 1) and does not sort. The proxy sorts the rows by name, starts at the first
//!   row whose name begins with the `FROM` string, and applies `LIMIT`.
//! - **`SHOW` answers at most 10,000 rows.** fakesnow has no cap; the proxy answers more than
//!   `show_cap` rows without `LIMIT` with Snowflake's error 090153.
//! - **Large results come in chunks.** fakesnow sends one inline Arrow batch, whatever its
//!   size. Past `chunk_rows` rows the proxy keeps the first part inline and serves the rest
//!   as gzipped Arrow chunks whose GET requires the `chunkHeaders` it sends (403 without).
//! - **Faults:** HTTP 429 and 503 bursts, a connection dropped mid-answer, a session that
//!   expires (`390112`), a query answered asynchronously (`333334` and `getResultUrl`), a
//!   schema the role may not read (`002003`), 090030 for a database-wide columns query, and
//!   a database shared with the account (fakesnow has no shares).
//!
//! Every SQL text it forwards is logged: the row canary's evidence.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The credential the proxy accepts.
#[derive(Clone, Debug)]
pub enum Accept {
    /// A JWT signed by this key (PKCS#1 `RSAPublicKey` DER) for `account.user`, with this
    /// fingerprint (`SHA256:…`).
    KeyPair {
        public_key: Vec<u8>,
        fingerprint: String,
        account: String,
        user: String,
    },
    /// This OAuth token.
    OAuth(String),
    /// This password.
    Password(String),
}

/// A scripted fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer the next `n` requests to a path containing `path` with this status.
    Status { path: String, status: u16, n: u32 },
    /// Drop the connection of the next `n` query requests after reading them.
    Drop { n: u32 },
    /// Answer the `k`-th query request from now with `390112` (session expired) once.
    ExpireSession { k: u32 },
    /// Answer queries whose text contains `needle` with `333334`, then serve the result at
    /// `getResultUrl` on the second poll.
    Async { needle: String },
    /// Answer queries whose text contains `needle` with this SQL error code.
    SqlError { needle: String, code: String },
    /// Add a row for a database shared with the account to `SHOW DATABASES`.
    ImportedDatabase { name: String },
}

#[derive(Default)]
struct Script {
    faults: Vec<Fault>,
    queries_seen: u32,
}

struct State {
    scheme: &'static str,
    upstream: String,
    addr: SocketAddr,
    accept: Accept,
    show_cap: usize,
    chunk_rows: usize,
    client: reqwest::Client,
    script: Mutex<Script>,
    log: Mutex<Vec<String>>,
    requests: Mutex<Vec<(String, u16)>>,
    chunks: Mutex<HashMap<String, (String, Bytes)>>,
    pending: Mutex<HashMap<String, (u32, Value)>>,
    next_id: AtomicU64,
    heartbeats: AtomicU64,
    aborts: AtomicU64,
    logouts: AtomicU64,
}

pub struct Conformance {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conformance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the proxy is set up.
pub struct Options {
    pub accept: Accept,
    pub show_cap: usize,
    pub chunk_rows: usize,
    /// Serve HTTPS with this certificate chain and key (PEM), as Snowflake does; plain HTTP
    /// when `None`.
    pub tls: Option<(String, String)>,
}

impl Conformance {
    /// Starts a proxy in front of fakesnow at `upstream`.
    pub async fn start(upstream: &str, options: Options) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let acceptor = options.tls.as_ref().map(|(chain, key)| {
            use rustls::pki_types::pem::PemObject;
            let chain = rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate chain");
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let state = Arc::new(State {
            scheme,
            upstream: upstream.trim_end_matches('/').to_owned(),
            addr,
            accept: options.accept,
            show_cap: options.show_cap,
            chunk_rows: options.chunk_rows,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            script: Mutex::new(Script::default()),
            log: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            chunks: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            heartbeats: AtomicU64::new(0),
            aborts: AtomicU64::new(0),
            logouts: AtomicU64::new(0),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move {
                            let answer = handle(request, state).await;
                            if let Err(error) = &answer
                                && !error.0.starts_with("injected")
                            {
                                eprintln!("conformance layer: {error}");
                            }
                            answer
                        }
                    });
                    match acceptor {
                        Some(acceptor) => {
                            // A client that does not trust the certificate hangs up here.
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        None => {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, state, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Adds a fault to the script.
    pub fn script(&self, fault: Fault) {
        self.state.script.lock().expect("script").faults.push(fault);
    }

    /// Every SQL text forwarded to fakesnow, in order.
    pub fn queries(&self) -> Vec<String> {
        self.state.log.lock().expect("log").clone()
    }

    /// Every request: path and the status answered (0: dropped).
    pub fn requests(&self) -> Vec<(String, u16)> {
        self.state.requests.lock().expect("requests").clone()
    }

    pub fn heartbeats(&self) -> u64 {
        self.state.heartbeats.load(Ordering::Relaxed)
    }

    pub fn aborts(&self) -> u64 {
        self.state.aborts.load(Ordering::Relaxed)
    }

    pub fn logouts(&self) -> u64 {
        self.state.logouts.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct ProxyError(String);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProxyError {}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn failure(code: &str, message: &str) -> Value {
    json!({"success": false, "code": code, "message": message,
           "data": {"errorCode": code, "sqlState": "42000"}})
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|e| ProxyError(e.to_string()))?
        .to_bytes();
    let record = |status: u16| {
        state
            .requests
            .lock()
            .expect("requests")
            .push((path.clone(), status))
    };

    // Scripted HTTP statuses.
    let scripted_status = {
        let mut script = state.script.lock().expect("script");
        let mut status = None;
        for fault in script.faults.iter_mut() {
            if let Fault::Status {
                path: p,
                status: s,
                n,
            } = fault
                && path.contains(p.as_str())
                && *n > 0
            {
                *n -= 1;
                status = Some(*s);
                break;
            }
        }
        status
    };
    if let Some(status) = scripted_status {
        record(status);
        return Ok(Response::builder()
            .status(status)
            .header("retry-after", "0")
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("response"));
    }

    if let Some(rest) = path.strip_prefix("/chunk/") {
        let stored = state.chunks.lock().expect("chunks").get(rest).cloned();
        let Some((key, bytes)) = stored else {
            record(404);
            return Ok(json_response(StatusCode::NOT_FOUND, &json!({})));
        };
        // S3's SSE-C: the chunk is readable only with its key.
        let given = headers
            .get("x-amz-server-side-encryption-customer-key")
            .and_then(|v| v.to_str().ok());
        if given != Some(key.as_str()) {
            record(403);
            return Ok(json_response(StatusCode::FORBIDDEN, &json!({})));
        }
        record(200);
        return Ok(Response::new(Full::new(bytes)));
    }

    match path.as_str() {
        "/session/v1/login-request" => {
            let parsed: Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Err((code, message)) = check_login(&state.accept, &parsed["data"]) {
                record(200);
                return Ok(json_response(StatusCode::OK, &failure(code, message)));
            }
        }
        "/session/heartbeat" => {
            state.heartbeats.fetch_add(1, Ordering::Relaxed);
        }
        "/queries/v1/abort-request" => {
            state.aborts.fetch_add(1, Ordering::Relaxed);
        }
        "/session" => {
            state.logouts.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    if let Some(id) = path.strip_prefix("/queries/result/") {
        let mut pending = state.pending.lock().expect("pending");
        let Some((polls, answer)) = pending.get_mut(id) else {
            record(404);
            return Ok(json_response(StatusCode::NOT_FOUND, &json!({})));
        };
        *polls += 1;
        if *polls < 2 {
            record(200);
            return Ok(json_response(StatusCode::OK, &in_progress(id)));
        }
        let answer = answer.clone();
        pending.remove(id);
        record(200);
        return Ok(json_response(StatusCode::OK, &answer));
    }

    let sql = if path == "/queries/v1/query-request" {
        let parsed: Value = serde_json::from_slice(&maybe_gunzip(&body)).unwrap_or_default();
        parsed["sqlText"].as_str().map(str::to_owned)
    } else {
        None
    };
    let mut forwarded_body = body.clone();
    let mut show: Option<Show> = None;
    if let Some(sql) = &sql {
        state.log.lock().expect("log").push(sql.clone());
        // Scripted query faults.
        let (answer, drop_it, go_async) = {
            let mut script = state.script.lock().expect("script");
            script.queries_seen += 1;
            let mut answer: Option<Value> = None;
            let mut drop_it = false;
            let mut go_async = false;
            for fault in script.faults.iter_mut() {
                match fault {
                    Fault::ExpireSession { k } if *k > 0 => {
                        *k -= 1;
                        if *k == 0 {
                            answer = Some(failure(
                                "390112",
                                "Your session has expired. Please login again.",
                            ));
                            break;
                        }
                    }
                    Fault::Drop { n } if *n > 0 => {
                        *n -= 1;
                        drop_it = true;
                        break;
                    }
                    Fault::SqlError { needle, code } if sql.contains(needle.as_str()) => {
                        answer = Some(failure(
                            code,
                            "SQL compilation error: scripted by the conformance layer",
                        ));
                        break;
                    }
                    Fault::Async { needle } if sql.contains(needle.as_str()) => {
                        go_async = true;
                    }
                    _ => {}
                }
            }
            (answer, drop_it, go_async)
        };
        if drop_it {
            record(0);
            return Err(ProxyError("injected: connection dropped".into()));
        }
        if let Some(answer) = answer {
            record(200);
            return Ok(json_response(StatusCode::OK, &answer));
        }
        if let Some(parsed) = Show::parse(sql) {
            let mut body: Value = serde_json::from_slice(&maybe_gunzip(&body)).unwrap_or_default();
            body["sqlText"] = Value::String(parsed.statement.clone());
            forwarded_body = Bytes::from(body.to_string());
            show = Some(parsed);
        }
        if go_async {
            let response = forward(&state, &path, &query, &headers, forwarded_body).await?;
            let answer = shape(&state, response, show.as_ref(), sql)?;
            let id = format!("q{}", state.next_id.fetch_add(1, Ordering::Relaxed));
            state
                .pending
                .lock()
                .expect("pending")
                .insert(id.clone(), (0, answer));
            record(200);
            return Ok(json_response(StatusCode::OK, &in_progress(&id)));
        }
    }
    let response = forward(&state, &path, &query, &headers, forwarded_body).await?;
    record(200);
    match &sql {
        Some(sql) => Ok(json_response(
            StatusCode::OK,
            &shape(&state, response, show.as_ref(), sql)?,
        )),
        None => Ok(json_response(StatusCode::OK, &response)),
    }
}

fn in_progress(id: &str) -> Value {
    json!({"success": true, "code": "333334", "message": "Asynchronous execution in progress.",
           "data": {"queryId": id, "getResultUrl": format!("/queries/result/{id}")}})
}

fn maybe_gunzip(body: &[u8]) -> Vec<u8> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out)
            .expect("gzip");
        out
    } else {
        body.to_vec()
    }
}

async fn forward(
    state: &State,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: Bytes,
) -> Result<Value, ProxyError> {
    let url = if query.is_empty() {
        format!("{}{path}", state.upstream)
    } else {
        format!("{}{path}?{query}", state.upstream)
    };
    let mut request = state.client.post(url).body(body);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| ProxyError(e.to_string()))?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ProxyError(e.to_string()))?;
    Ok(serde_json::from_slice(&bytes).unwrap_or_else(
        |_| json!({"success": false, "code": "261000", "message": String::from_utf8_lossy(&bytes)}),
    ))
}

/// Applies the SHOW, cap, imported-database and chunking rules to fakesnow's answer.
fn shape(
    state: &State,
    mut answer: Value,
    show: Option<&Show>,
    sql: &str,
) -> Result<Value, ProxyError> {
    if answer["success"] != json!(true) {
        return Ok(answer);
    }
    let format = answer["data"]["queryResultFormat"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if format != "arrow" {
        return Ok(answer);
    }
    let base64 = answer["data"]["rowsetBase64"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if base64.is_empty() {
        // fakesnow answers an empty result with an empty rowset (no schema message).
        return Ok(answer);
    }
    let mut batch = decode(&base64)?;
    if let Some(show) = show {
        if sql
            .trim_start()
            .to_uppercase()
            .starts_with("SHOW DATABASES")
        {
            batch = add_imported(state, batch);
        }
        batch = page(&batch, show)?;
        if show.limit.is_none() && batch.num_rows() > state.show_cap {
            return Ok(failure(
                "090153",
                "The result set size exceeded the max number of rows(10000) supported for SHOW statements. Use LIMIT option to limit result set to a smaller number.",
            ));
        }
    }
    // Chunks: the first `chunk_rows` inline, the rest in chunks of `chunk_rows`.
    let rows = batch.num_rows();
    if rows > state.chunk_rows {
        let inline = batch.slice(0, state.chunk_rows);
        answer["data"]["rowsetBase64"] = Value::String(STANDARD.encode(encode(&[inline])?));
        let key = format!("qrmk-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
        let mut chunks = Vec::new();
        let mut offset = state.chunk_rows;
        let mut index = 0;
        while offset < rows {
            let length = state.chunk_rows.min(rows - offset);
            let ipc = encode(&[batch.slice(offset, length)])?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&ipc).map_err(|e| ProxyError(e.to_string()))?;
            let gz = gz.finish().map_err(|e| ProxyError(e.to_string()))?;
            let id = format!("{key}/{index}");
            chunks.push(json!({"url": format!("{}://{}/chunk/{id}", state.scheme, state.addr),
                               "rowCount": length, "uncompressedSize": ipc.len(), "compressedSize": gz.len()}));
            state
                .chunks
                .lock()
                .expect("chunks")
                .insert(id, (key.clone(), Bytes::from(gz)));
            offset += length;
            index += 1;
        }
        answer["data"]["chunks"] = Value::Array(chunks);
        answer["data"]["chunkHeaders"] = json!({
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": key,
        });
    } else {
        answer["data"]["rowsetBase64"] = Value::String(STANDARD.encode(encode(&[batch])?));
    }
    Ok(answer)
}

fn decode(base64: &str) -> Result<RecordBatch, ProxyError> {
    let bytes = STANDARD
        .decode(base64)
        .map_err(|e| ProxyError(e.to_string()))?;
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes.as_slice(), None)
        .map_err(|e| ProxyError(e.to_string()))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| ProxyError(e.to_string()))?;
    arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| ProxyError(e.to_string()))
}

fn encode(batches: &[RecordBatch]) -> Result<Vec<u8>, ProxyError> {
    let mut out = Vec::new();
    {
        let schema = batches[0].schema();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema)
            .map_err(|e| ProxyError(e.to_string()))?;
        for batch in batches {
            writer.write(batch).map_err(|e| ProxyError(e.to_string()))?;
        }
        writer.finish().map_err(|e| ProxyError(e.to_string()))?;
    }
    Ok(out)
}

fn names(batch: &RecordBatch) -> Vec<String> {
    let Some(index) = batch
        .schema()
        .fields()
        .iter()
        .position(|f| f.name() == "name")
    else {
        return Vec::new();
    };
    let column = batch.column(index);
    let strings = column
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("name is Utf8");
    (0..strings.len())
        .map(|i| strings.value(i).to_owned())
        .collect()
}

/// Sorted by name; from the first name starting with `from`; at most `limit` rows.
fn page(batch: &RecordBatch, show: &Show) -> Result<RecordBatch, ProxyError> {
    if batch.schema().fields().iter().all(|f| f.name() != "name") {
        // SHOW … KEYS: no `name`, no paging.
        return Ok(batch.clone());
    }
    let names = names(batch);
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by(|a, b| names[*a as usize].cmp(&names[*b as usize]));
    if let Some(from) = &show.from {
        let start = order
            .iter()
            .position(|i| {
                names[*i as usize].starts_with(from.as_str())
                    || names[*i as usize].as_str() > from.as_str()
            })
            .unwrap_or(order.len());
        order.drain(..start);
    }
    if let Some(limit) = show.limit {
        order.truncate(limit);
    }
    arrow_select::take::take_record_batch(batch, &UInt32Array::from(order))
        .map_err(|e| ProxyError(e.to_string()))
}

/// `SHOW DATABASES` plus the scripted shared databases: a row copied from the first, with
/// `kind = IMPORTED DATABASE` and an `origin`.
fn add_imported(state: &State, batch: RecordBatch) -> RecordBatch {
    let shared: Vec<String> = state
        .script
        .lock()
        .expect("script")
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::ImportedDatabase { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    if shared.is_empty() || batch.num_rows() == 0 {
        return batch;
    }
    let schema = batch.schema();
    let mut columns = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let column = batch.column(i);
        let extra: Vec<Option<String>> = shared
            .iter()
            .map(|name| match field.name().as_str() {
                "name" => Some(name.clone()),
                "kind" => Some("IMPORTED DATABASE".into()),
                "origin" => Some("PARTNER_ORG.PARTNER_ACCOUNT.SHARE_1".into()),
                _ => None,
            })
            .collect();
        let merged: Arc<dyn Array> = match column.as_any().downcast_ref::<StringArray>() {
            Some(strings) => {
                let mut values: Vec<Option<String>> = (0..strings.len())
                    .map(|r| strings.is_valid(r).then(|| strings.value(r).to_owned()))
                    .collect();
                values.extend(extra);
                Arc::new(StringArray::from(values))
            }
            None => {
                let nulls = arrow_array::new_null_array(column.data_type(), shared.len());
                arrow_select::concat::concat(&[column.as_ref(), nulls.as_ref()]).expect("concat")
            }
        };
        columns.push(merged);
    }
    // Non-string columns may be declared not nullable; make the schema allow the new nulls.
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let schema = Arc::new(arrow_schema::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ));
    RecordBatch::try_new(schema, columns).expect("batch")
}

/// A `SHOW` statement split into its text without paging, and its `LIMIT` and `FROM`.
struct Show {
    statement: String,
    limit: Option<usize>,
    from: Option<String>,
}

impl Show {
    fn parse(sql: &str) -> Option<Self> {
        let pattern = regex::Regex::new(
            r"(?is)^\s*(SHOW\s.*?)(?:\s+LIMIT\s+(\d+)(?:\s+FROM\s+'((?:[^'\\]|''|\\.)*)')?)?\s*;?\s*$",
        )
        .expect("regex");
        let captures = pattern.captures(sql)?;
        let statement = captures.get(1)?.as_str().to_owned();
        let limit = captures.get(2).and_then(|m| m.as_str().parse().ok());
        let from = captures.get(3).map(|m| unescape(m.as_str()));
        Some(Self {
            statement,
            limit,
            from,
        })
    }
}

/// A Snowflake string literal's body: `''` is a quote, `\x` is `x`.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out
}

/// Checks a login as Snowflake does: `Ok` to forward it, or the refusal's code and message.
fn check_login(accept: &Accept, data: &Value) -> Result<(), (&'static str, &'static str)> {
    let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
    match accept {
        Accept::KeyPair {
            public_key,
            fingerprint,
            account,
            user,
        } => {
            const REFUSED: (&str, &str) = ("390144", "JWT token is invalid.");
            if field("AUTHENTICATOR") != "SNOWFLAKE_JWT" {
                return Err(REFUSED);
            }
            let token = field("TOKEN");
            let parts: Vec<&str> = token.split('.').collect();
            let [header, claims, signature] = parts[..] else {
                return Err(REFUSED);
            };
            let key = ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                public_key,
            );
            let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| REFUSED)?;
            key.verify(format!("{header}.{claims}").as_bytes(), &signature)
                .map_err(|_| REFUSED)?;
            let header: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|_| REFUSED)?)
                    .map_err(|_| REFUSED)?;
            if header["alg"] != "RS256" {
                return Err(REFUSED);
            }
            let claims: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).map_err(|_| REFUSED)?)
                    .map_err(|_| REFUSED)?;
            let subject = format!("{}.{}", account.to_uppercase(), user.to_uppercase());
            if claims["sub"] != json!(subject)
                || claims["iss"] != json!(format!("{subject}.{fingerprint}"))
            {
                return Err(REFUSED);
            }
            let (iat, exp) = (
                claims["iat"].as_u64().unwrap_or(0),
                claims["exp"].as_u64().unwrap_or(0),
            );
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            if exp <= iat || exp - iat > 3600 || exp <= now || iat > now + 60 {
                return Err(REFUSED);
            }
            if field("LOGIN_NAME").to_uppercase() != user.to_uppercase() {
                return Err(REFUSED);
            }
            Ok(())
        }
        Accept::OAuth(expected) => {
            if field("AUTHENTICATOR") == "OAUTH" && field("TOKEN") == *expected {
                Ok(())
            } else {
                Err(("390303", "Invalid OAuth access token."))
            }
        }
        Accept::Password(expected) => {
            if field("PASSWORD") == *expected {
                Ok(())
            } else {
                Err(("390100", "Incorrect username or password was specified."))
            }
        }
    }
}
