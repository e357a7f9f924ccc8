//! A Tableau server for the tests: the REST API (XML, namespaced, paged) and the Metadata
//! API, served by a real GraphQL engine (async-graphql) over a schema that mirrors the part
//! of Tableau's we query, so our queries are validated by an engine, not by string matching.
//! No Tableau server can run here; this one follows Tableau's documented protocol:
//!
//! - **Sign-in with a Personal Access Token** (`POST /api/{v}/auth/signin`, XML); one
//!   session per token: signing in again ends the session before (its token then gets 401
//!   with `401002`), as Tableau documents. Sign-out ends the session (204).
//! - **`serverinfo`** without a session; REST lists paged with `pageSize` (at most 1000,
//!   else `403014`) and `pageNumber`, with a `pagination` element, in the namespace
//!   `http://tableau.com/api` (with an `ns0:` prefix when [`Faults::prefixed_xml`] is set, as
//!   some servers write it).
//! - **The Metadata API** at `/api/metadata/graphql`, `X-Tableau-Auth`: connection queries
//!   with `first` (default 100, at most 1000: more is clamped, with `MAX_PAGE_SIZE_EXCEEDED`),
//!   `after` (a cursor: the last node's id) and `orderBy` (ID or NAME); ties and the default
//!   order are by ID.
//! - **The node limit.** An answer with more objects than [`Faults::node_limit`] keeps the
//!   nodes that fit, and carries Tableau's `NODE_LIMIT_EXCEEDED` warning with partial data.
//! - **Injected faults** ([`Faults`]): HTTP 429 with `Retry-After`, `RATE_EXCEEDED`, the time
//!   limit (`Reached time limit …`, `extensions: null`, as Tableau's own recorded answer has
//!   it), `BACKFILL_RUNNING`, the Metadata API turned off (`FEATURE_DISABLED`), sessions that
//!   expire after some requests, slow answers.

// The GraphQL objects are Tableau's (documented in its Metadata API reference) and the model's
// fields name themselves; item docs would repeat the names.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, ID, InputObject, Interface, Object, Schema,
    SimpleObject,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The site model
// ---------------------------------------------------------------------------------------

/// A project.
#[derive(Clone, Debug)]
pub struct ProjectM {
    pub luid: String,
    pub name: String,
    pub parent: Option<String>,
    pub owner: String,
}

/// A workbook with its sheets, dashboards and embedded data sources.
#[derive(Clone, Debug)]
pub struct WorkbookM {
    pub id: String,
    pub luid: String,
    pub name: String,
    pub project: String,
    pub owner: String,
    pub tags: Vec<String>,
    pub sheets: Vec<SheetM>,
    pub dashboards: Vec<DashboardM>,
}

/// A sheet; a hidden one has an empty LUID.
#[derive(Clone, Debug)]
pub struct SheetM {
    pub id: String,
    pub luid: String,
    pub name: String,
}

/// A dashboard and the sheets it shows.
#[derive(Clone, Debug)]
pub struct DashboardM {
    pub id: String,
    pub luid: String,
    pub name: String,
    pub sheets: Vec<String>,
}

/// A data source: published (with a LUID and a project) or embedded in a workbook.
#[derive(Clone, Debug)]
pub struct DatasourceM {
    pub id: String,
    pub luid: String,
    pub name: String,
    pub workbook: Option<String>,
    pub project: Option<String>,
    pub owner: String,
    pub has_extracts: bool,
    pub tables: Vec<String>,
    pub custom_sql: Vec<String>,
    pub upstream_datasources: Vec<String>,
}

/// What a field is, as Tableau's `__typename` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKindM {
    Column,
    Calculated,
    Group,
    Bin,
}

/// A field of a data source, the sheets that show it, and what it reads.
#[derive(Clone, Debug)]
pub struct FieldM {
    pub id: String,
    pub name: String,
    pub datasource: String,
    pub kind: FieldKindM,
    pub data_type: &'static str,
    pub role: &'static str,
    pub formula: Option<String>,
    pub hidden: bool,
    pub sheets: Vec<String>,
    /// (table id, column name).
    pub columns: Vec<(String, String)>,
    pub upstream_fields: Vec<String>,
}

/// A database table.
#[derive(Clone, Debug)]
pub struct TableM {
    pub id: String,
    pub name: String,
    pub schema: String,
    pub database: String,
    pub connection_type: &'static str,
}

/// A custom SQL query and the tables it reads.
#[derive(Clone, Debug)]
pub struct CustomSqlM {
    pub id: String,
    pub name: String,
    pub query: String,
    pub database: String,
    pub connection_type: &'static str,
    pub tables: Vec<String>,
}

/// A whole site.
#[derive(Clone, Debug, Default)]
pub struct SiteModel {
    pub content_url: String,
    pub site_luid: String,
    pub projects: Vec<ProjectM>,
    pub workbooks: Vec<WorkbookM>,
    pub published: Vec<DatasourceM>,
    pub embedded: Vec<DatasourceM>,
    pub fields: Vec<FieldM>,
    pub tables: Vec<TableM>,
    pub custom_sql: Vec<CustomSqlM>,
}

/// How big a generated site is.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub workbooks: usize,
    pub sheets_per_workbook: usize,
    pub published: usize,
    pub fields_per_datasource: usize,
    pub tables: usize,
}

/// Odd names: quotes, brackets, markup characters, unicode, and a long one now and then.
fn odd(kind: &str, i: usize) -> String {
    match i % 5 {
        0 => format!("{kind} {i}"),
        1 => format!("Ünïcødé {kind} №{i} — 数据"),
        2 => format!("{kind} \"quoted\" <&> [{i}]"),
        3 => format!("{kind}.with.dots {i}"),
        _ => format!("{kind} {i} {}", "long".repeat(20)),
    }
}

fn luid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

impl SiteModel {
    /// A deterministic site of `scale`: three levels of projects; each workbook with sheets,
    /// two dashboards and one embedded data source that reads a published one; fields of
    /// every kind, each shown on sheets and reading database columns, custom SQL included.
    pub fn generate(content_url: &str, scale: Scale) -> Self {
        let mut site = SiteModel {
            content_url: content_url.to_owned(),
            site_luid: luid(0x5175, 1),
            ..SiteModel::default()
        };
        let connection_types = ["postgres", "snowflake", "mysql"];
        for i in 0..scale.tables {
            site.tables.push(TableM {
                id: format!("tbl-{i:07}"),
                name: odd("table", i),
                schema: format!("schema_{}", i % 7),
                database: format!("DB_{}", i % 3),
                connection_type: connection_types[i % 3],
            });
        }
        for i in 0..(scale.tables / 3).max(1) {
            site.custom_sql.push(CustomSqlM {
                id: format!("csql-{i:07}"),
                name: format!("Custom SQL Query {i}"),
                query: format!("SELECT a.\"x\" FROM t{i} a WHERE a.y < 3 AND a.z > 'é'"),
                database: format!("DB_{}", i % 3),
                connection_type: connection_types[i % 3],
                tables: vec![site.tables[i % scale.tables.max(1)].id.clone()],
            });
        }
        for i in 0..12 {
            site.projects.push(ProjectM {
                luid: luid(0x9e0, i),
                name: odd("Project", i),
                parent: (i >= 3).then(|| luid(0x9e0, (i - 3) / 3)),
                owner: luid(0x05e, i % 4),
            });
        }
        for i in 0..scale.published {
            site.published.push(DatasourceM {
                id: format!("pds-{i:07}"),
                luid: luid(0xd5, i),
                name: odd("Published source", i),
                workbook: None,
                project: Some(site.projects[i % 12].name.clone()),
                owner: format!("owner{}", i % 4),
                has_extracts: i % 2 == 0,
                tables: (0..3)
                    .map(|k| site.tables[(i * 3 + k) % scale.tables.max(1)].id.clone())
                    .collect(),
                custom_sql: if i % 4 == 0 {
                    vec![site.custom_sql[i % site.custom_sql.len()].id.clone()]
                } else {
                    Vec::new()
                },
                upstream_datasources: Vec::new(),
            });
        }
        for w in 0..scale.workbooks {
            let wb_id = format!("wb-{w:07}");
            let sheets: Vec<SheetM> = (0..scale.sheets_per_workbook)
                .map(|s| SheetM {
                    id: format!("sh-{w:07}-{s:03}"),
                    // Every seventh sheet is hidden: no LUID, as Tableau answers.
                    luid: if s % 7 == 6 {
                        String::new()
                    } else {
                        luid(0x5ee7, w * 1000 + s)
                    },
                    name: odd("Sheet", s),
                })
                .collect();
            let dashboards = (0..2)
                .map(|d| DashboardM {
                    id: format!("db-{w:07}-{d}"),
                    luid: luid(0xdb, w * 10 + d),
                    name: odd("Dashboard", d),
                    sheets: sheets
                        .iter()
                        .skip(d)
                        .step_by(2)
                        .map(|s| s.id.clone())
                        .collect(),
                })
                .collect();
            let published =
                (scale.published > 0).then(|| site.published[w % scale.published].id.clone());
            site.embedded.push(DatasourceM {
                id: format!("eds-{w:07}"),
                luid: String::new(),
                name: odd("Embedded source", w),
                workbook: Some(luid(0x3b, w)),
                project: None,
                owner: format!("owner{}", w % 4),
                has_extracts: false,
                tables: vec![site.tables[w % scale.tables.max(1)].id.clone()],
                custom_sql: Vec::new(),
                upstream_datasources: published.into_iter().collect(),
            });
            site.workbooks.push(WorkbookM {
                id: wb_id,
                luid: luid(0x3b, w),
                name: odd("Workbook", w),
                project: site.projects[w % 12].luid.clone(),
                owner: luid(0x05e, w % 4),
                tags: if w % 3 == 0 {
                    vec!["certified".into(), format!("tag-{}", w % 5)]
                } else {
                    Vec::new()
                },
                sheets,
                dashboards,
            });
        }
        // Fields: those of each embedded data source are shown on its workbook's sheets.
        let kinds = [
            (FieldKindM::Column, "STRING", "DIMENSION"),
            (FieldKindM::Calculated, "REAL", "MEASURE"),
            (FieldKindM::Column, "INTEGER", "MEASURE"),
            (FieldKindM::Group, "STRING", "DIMENSION"),
            (FieldKindM::Bin, "INTEGER", "DIMENSION"),
        ];
        type Source = (String, Option<usize>, Vec<String>, Vec<String>);
        let datasources: Vec<Source> = site
            .published
            .iter()
            .map(|d| (d.id.clone(), None, d.tables.clone(), d.custom_sql.clone()))
            .chain(
                site.embedded
                    .iter()
                    .enumerate()
                    .map(|(w, d)| (d.id.clone(), Some(w), d.tables.clone(), Vec::new())),
            )
            .collect();
        for (ds, workbook, tables, custom_sql) in datasources {
            for f in 0..scale.fields_per_datasource {
                let (kind, data_type, role) = kinds[f % kinds.len()];
                let id = format!("fld-{ds}-{f:04}");
                let sheets = match workbook {
                    Some(w) => {
                        let sheets = &site.workbooks[w].sheets;
                        if sheets.is_empty() {
                            Vec::new()
                        } else {
                            vec![sheets[f % sheets.len()].id.clone()]
                        }
                    }
                    None => Vec::new(),
                };
                // A source reading through custom SQL has every other column field read
                // one of the query's columns.
                let through_sql = custom_sql.first().filter(|_| f % 2 == 0);
                let columns = match (kind, through_sql) {
                    (FieldKindM::Column, Some(sql)) => vec![(sql.clone(), odd("col", f))],
                    (FieldKindM::Column, None) if !tables.is_empty() => {
                        vec![(tables[f % tables.len()].clone(), odd("col", f))]
                    }
                    _ => Vec::new(),
                };
                let upstream_fields = match kind {
                    FieldKindM::Calculated | FieldKindM::Group | FieldKindM::Bin if f > 0 => {
                        vec![format!("fld-{ds}-{:04}", f - 1)]
                    }
                    _ => Vec::new(),
                };
                site.fields.push(FieldM {
                    id,
                    name: odd("Field", f),
                    datasource: ds.clone(),
                    kind,
                    data_type,
                    role,
                    formula: (kind == FieldKindM::Calculated)
                        .then(|| format!("SUM([{}]) / 2 // ünï", odd("col", f))),
                    hidden: f % 11 == 10,
                    sheets,
                    columns,
                    upstream_fields,
                });
            }
        }
        site
    }
}

/// The site with its lookups: the server answers pages of 200,000 fields without scanning.
pub struct Indexed {
    pub site: SiteModel,
    sheets: HashMap<String, (usize, usize)>,
    tables: HashMap<String, usize>,
    fields: HashMap<String, usize>,
    published: HashMap<String, usize>,
    embedded: HashMap<String, usize>,
    workbooks: HashMap<String, usize>,
    custom_sql: HashMap<String, usize>,
}

impl Indexed {
    /// Sorts every list by id (the Metadata API's default order) and indexes it.
    pub fn new(mut site: SiteModel) -> Self {
        site.workbooks.sort_by(|a, b| a.id.cmp(&b.id));
        site.published.sort_by(|a, b| a.id.cmp(&b.id));
        site.embedded.sort_by(|a, b| a.id.cmp(&b.id));
        site.fields.sort_by(|a, b| a.id.cmp(&b.id));
        site.tables.sort_by(|a, b| a.id.cmp(&b.id));
        site.custom_sql.sort_by(|a, b| a.id.cmp(&b.id));
        let mut sheets = HashMap::new();
        for (w, workbook) in site.workbooks.iter().enumerate() {
            for (s, sheet) in workbook.sheets.iter().enumerate() {
                sheets.insert(sheet.id.clone(), (w, s));
            }
        }
        let by_id = |ids: Vec<&String>| -> HashMap<String, usize> {
            ids.into_iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect()
        };
        Self {
            tables: by_id(site.tables.iter().map(|t| &t.id).collect()),
            fields: by_id(site.fields.iter().map(|f| &f.id).collect()),
            published: by_id(site.published.iter().map(|d| &d.id).collect()),
            embedded: by_id(site.embedded.iter().map(|d| &d.id).collect()),
            workbooks: by_id(site.workbooks.iter().map(|w| &w.luid).collect()),
            custom_sql: by_id(site.custom_sql.iter().map(|c| &c.id).collect()),
            sheets,
            site,
        }
    }

    fn sheet(&self, id: &str) -> Option<Sheet> {
        let &(w, s) = self.sheets.get(id)?;
        let workbook = &self.site.workbooks[w];
        Some(Sheet(workbook.sheets[s].clone()))
    }

    fn table(&self, id: &str) -> Option<&TableM> {
        self.tables.get(id).map(|&i| &self.site.tables[i])
    }
}

// ---------------------------------------------------------------------------------------
// Faults and counters
// ---------------------------------------------------------------------------------------

/// Behaviour injected into the server.
#[derive(Debug)]
pub struct Faults {
    /// Objects in one answer beyond which it is cut, with `NODE_LIMIT_EXCEEDED`.
    pub node_limit: usize,
    /// Every n-th Metadata API request answers HTTP 429 with `Retry-After: 0`.
    pub http_429_every: Option<u32>,
    /// Every n-th Metadata API request answers `RATE_EXCEEDED`.
    pub rate_exceeded_every: Option<u32>,
    /// Every n-th Metadata API request answers the time limit.
    pub time_limit_every: Option<u32>,
    /// Every Metadata API answer carries `BACKFILL_RUNNING`.
    pub backfill: AtomicBool,
    /// The Metadata API is turned off (`FEATURE_DISABLED`).
    pub disabled: bool,
    /// A session ends after this many requests made with it.
    pub session_requests: Option<u64>,
    /// Every answer waits this long.
    pub delay: Duration,
    /// Write REST answers with an `ns0:` prefix instead of a default namespace.
    pub prefixed_xml: bool,
    /// Keep every request in [`Counters::seen`] (the tests' leak checks).
    pub keep_requests: bool,
    /// The REST API version `serverinfo` answers (`3.23`: Tableau 2024.2).
    pub rest_api_version: &'static str,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            node_limit: 20_000,
            http_429_every: None,
            rate_exceeded_every: None,
            time_limit_every: None,
            backfill: AtomicBool::new(false),
            disabled: false,
            session_requests: None,
            delay: Duration::ZERO,
            prefixed_xml: false,
            keep_requests: true,
            rest_api_version: "3.23",
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Counters {
    pub sign_ins: AtomicU32,
    pub sign_outs: AtomicU32,
    pub rest_requests: AtomicU32,
    pub graphql_requests: AtomicU32,
    pub node_limit_hits: AtomicU32,
    /// Metadata API answers that carried data (pages served).
    pub pages: AtomicU32,
    /// Metadata API requests answered with a rate limit (HTTP 429 or `RATE_EXCEEDED`).
    pub throttled: AtomicU32,
    /// Requests refused because their session had ended.
    pub refused: AtomicU32,
    /// The largest `first` asked.
    pub largest_first: AtomicU64,
    /// Every request's `X-Tableau-Auth`, body and query, for leak checks.
    pub seen: Mutex<Vec<String>>,
}

struct Sessions {
    /// The one live token per Personal Access Token name, and requests made with it.
    live: HashMap<String, (String, u64)>,
    next: u64,
}

struct State {
    site: Arc<Indexed>,
    token_name: String,
    token_secret: String,
    faults: Faults,
    counters: Arc<Counters>,
    sessions: Mutex<Sessions>,
    schema: Schema<QueryRoot, EmptyMutation, EmptySubscription>,
    /// Where each Metadata API request answered with data is written, one JSON line each.
    record: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
}

/// A running server; stopped when dropped.
pub struct TableauFake {
    pub url: String,
    pub counters: Arc<Counters>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TableauFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TableauFake {
    /// Starts a server for `site`, accepting the token `token_name`/`token_secret`.
    pub async fn start(
        site: SiteModel,
        token_name: &str,
        token_secret: &str,
        faults: Faults,
    ) -> Self {
        let site = Arc::new(Indexed::new(site));
        let schema = Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
            .data(site.clone())
            .finish();
        let counters = Arc::new(Counters::default());
        let state = Arc::new(State {
            site,
            token_name: token_name.to_owned(),
            token_secret: token_secret.to_owned(),
            faults,
            counters: counters.clone(),
            sessions: Mutex::new(Sessions {
                live: HashMap::new(),
                next: 1,
            }),
            schema,
            record: Mutex::new(None),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://{addr}"),
            counters,
            state,
            task,
        }
    }

    /// Writes every Metadata API request answered with data (each page) to `path`, one
    /// request body per line: the benchmark replays them as its baseline.
    pub fn record_pages(&self, path: &std::path::Path) -> std::io::Result<()> {
        let file = std::fs::File::create(path)?;
        *self.state.record.lock().expect("record") = Some(std::io::BufWriter::new(file));
        Ok(())
    }

    /// Flushes the pages recorded so far.
    pub fn flush_record(&self) -> std::io::Result<()> {
        use std::io::Write;
        match self.state.record.lock().expect("record").as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    /// Turns `BACKFILL_RUNNING` on or off.
    pub fn set_backfill(&self, on: bool) {
        self.state.faults.backfill.store(on, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

const NS: &str = "http://tableau.com/api";

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("response")
}

fn esc(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// A `tsResponse` holding `inner`, namespaced as the faults say.
fn ts_response(state: &State, inner: &str) -> String {
    if state.faults.prefixed_xml {
        // Every element in the prefix: rewrite `<x` and `</x` to `<ns0:x`.
        let prefixed = inner
            .replace("</", "\u{1}")
            .replace('<', "<ns0:")
            .replace('\u{1}', "</ns0:");
        format!(
            r#"<?xml version='1.0' encoding='UTF-8'?><ns0:tsResponse xmlns:ns0="{NS}">{prefixed}</ns0:tsResponse>"#
        )
    } else {
        format!(
            r#"<?xml version='1.0' encoding='UTF-8'?><tsResponse xmlns="{NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{inner}</tsResponse>"#
        )
    }
}

fn api_error(
    state: &State,
    status: StatusCode,
    code: &str,
    summary: &str,
    detail: &str,
) -> Response<Full<Bytes>> {
    let body = ts_response(
        state,
        &format!(
            r#"<error code="{code}"><summary>{}</summary><detail>{}</detail></error>"#,
            esc(summary),
            esc(detail)
        ),
    );
    respond(status, "application/xml", body)
}

/// The session a request's `X-Tableau-Auth` names, counting the request; `None` when it has
/// ended or never was.
fn authorize(state: &State, headers: &hyper::HeaderMap) -> Option<()> {
    let token = headers.get("x-tableau-auth")?.to_str().ok()?;
    let mut sessions = state.sessions.lock().expect("sessions");
    let (live, used) = sessions.live.get_mut(&state.token_name)?;
    if live != token {
        return None;
    }
    *used += 1;
    if let Some(limit) = state.faults.session_requests
        && *used > limit
    {
        sessions.live.remove(&state.token_name);
        return None;
    }
    Some(())
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if !state.faults.delay.is_zero() {
        tokio::time::sleep(state.faults.delay).await;
    }
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    if state.faults.keep_requests {
        state.counters.seen.lock().expect("seen").push(format!(
            "{} {path}?{query} {:?} {}",
            parts.method,
            parts.headers.get("x-tableau-auth"),
            String::from_utf8_lossy(&body)
        ));
    }
    if path == "/api/metadata/graphql" {
        return graphql(&state, &parts.headers, &body).await;
    }
    let Some(rest) = path.strip_prefix("/api/") else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found");
    };
    let (_version, rest) = rest.split_once('/').unwrap_or((rest, ""));
    state.counters.rest_requests.fetch_add(1, Ordering::SeqCst);
    match (parts.method.as_str(), rest) {
        ("GET", "serverinfo") => respond(
            StatusCode::OK,
            "application/xml",
            ts_response(
                &state,
                &format!(
                    r#"<serverInfo><productVersion build="20242.24.0711.1636">2024.2.1</productVersion><restApiVersion>{}</restApiVersion></serverInfo>"#,
                    state.faults.rest_api_version
                ),
            ),
        ),
        ("POST", "auth/signin") => sign_in(&state, &body),
        ("POST", "auth/signout") => {
            let token = parts
                .headers
                .get("x-tableau-auth")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let mut sessions = state.sessions.lock().expect("sessions");
            if sessions
                .live
                .get(&state.token_name)
                .is_some_and(|(t, _)| t == token)
            {
                sessions.live.remove(&state.token_name);
            }
            state.counters.sign_outs.fetch_add(1, Ordering::SeqCst);
            respond(StatusCode::NO_CONTENT, "application/xml", Bytes::new())
        }
        ("GET", site_path) => {
            if authorize(&state, &parts.headers).is_none() {
                state.counters.refused.fetch_add(1, Ordering::SeqCst);
                return api_error(
                    &state,
                    StatusCode::UNAUTHORIZED,
                    "401002",
                    "Unauthorized Access",
                    "Invalid authentication credentials were provided.",
                );
            }
            list(&state, site_path, &query)
        }
        _ => respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "no"),
    }
}

/// The sign-in request's credentials, read as Tableau reads them.
#[derive(serde::Deserialize)]
struct SignInRequest {
    credentials: SignInCredentials,
}

#[derive(serde::Deserialize)]
struct SignInCredentials {
    #[serde(rename = "@personalAccessTokenName")]
    name: String,
    #[serde(rename = "@personalAccessTokenSecret")]
    secret: String,
    site: SignInSite,
}

#[derive(serde::Deserialize)]
struct SignInSite {
    #[serde(rename = "@contentUrl", default)]
    content_url: String,
}

fn sign_in(state: &State, body: &[u8]) -> Response<Full<Bytes>> {
    state.counters.sign_ins.fetch_add(1, Ordering::SeqCst);
    let Ok(request) = quick_xml::de::from_str::<SignInRequest>(&String::from_utf8_lossy(body))
    else {
        return api_error(
            state,
            StatusCode::BAD_REQUEST,
            "400000",
            "Bad Request",
            "The sign-in request is not valid XML.",
        );
    };
    let c = request.credentials;
    if c.name != state.token_name
        || c.secret != state.token_secret
        || c.site.content_url != state.site.site.content_url
    {
        return api_error(
            state,
            StatusCode::UNAUTHORIZED,
            "401001",
            "Signin Error",
            "Error signing in to Tableau Server",
        );
    }
    let mut sessions = state.sessions.lock().expect("sessions");
    let token = format!("session-{}|{}", sessions.next, state.site.site.site_luid);
    sessions.next += 1;
    // One session per token: this one ends the one before.
    sessions.live.insert(c.name, (token.clone(), 0));
    respond(
        StatusCode::OK,
        "application/xml",
        ts_response(
            state,
            &format!(
                r#"<credentials token="{}" estimatedTimeToExpiration="365:00:00"><site id="{}" contentUrl="{}"/><user id="{}"/></credentials>"#,
                esc(&token),
                state.site.site.site_luid,
                esc(&state.site.site.content_url),
                luid(0x05e, 0)
            ),
        ),
    )
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

fn list(state: &State, site_path: &str, query: &str) -> Response<Full<Bytes>> {
    let site = &state.site.site;
    if site_path == format!("sites/{}", site.site_luid) {
        return respond(
            StatusCode::OK,
            "application/xml",
            ts_response(
                state,
                &format!(
                    r#"<site id="{}" name="{}" contentUrl="{}" adminMode="ContentAndUsers" state="Active"/>"#,
                    site.site_luid,
                    esc(&format!("Site {}", site.content_url)),
                    esc(&site.content_url)
                ),
            ),
        );
    }
    let Some(rest) = site_path.strip_prefix(&format!("sites/{}/", site.site_luid)) else {
        return api_error(
            state,
            StatusCode::NOT_FOUND,
            "404000",
            "Site not found",
            site_path,
        );
    };
    let size: usize = param(query, "pageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let number: usize = param(query, "pageNumber")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if size > 1000 {
        return api_error(
            state,
            StatusCode::FORBIDDEN,
            "403014",
            "Page Size Limit Exceeded",
            "The page size is over 1000.",
        );
    }
    if size == 0 || number == 0 {
        return api_error(
            state,
            StatusCode::BAD_REQUEST,
            "400007",
            "Invalid page size",
            "pageSize and pageNumber start at 1.",
        );
    }
    let items: Vec<String> = match rest {
        "projects" => site
            .projects
            .iter()
            .map(|p| {
                format!(
                    r#"<project id="{}" name="{}" description="" contentPermissions="ManagedByOwner"{}><owner id="{}"/></project>"#,
                    p.luid,
                    esc(&p.name),
                    p.parent.as_ref().map(|x| format!(r#" parentProjectId="{x}""#)).unwrap_or_default(),
                    p.owner
                )
            })
            .collect(),
        "workbooks" => site
            .workbooks
            .iter()
            .map(|w| {
                let project = site.projects.iter().find(|p| p.luid == w.project);
                let tags: String = w.tags.iter().map(|t| format!(r#"<tag label="{}"/>"#, esc(t))).collect();
                format!(
                    r#"<workbook id="{}" name="{}" contentUrl="wb{}" webpageUrl="https://tableau.example.com/#/site/{}/workbooks/{}" showTabs="true" size="1" createdAt="2024-01-02T03:04:05Z" updatedAt="2024-06-07T08:09:10Z"><project id="{}" name="{}"/><owner id="{}"/><tags>{tags}</tags></workbook>"#,
                    w.luid,
                    esc(&w.name),
                    w.id,
                    esc(&site.content_url),
                    w.id.trim_start_matches("wb-"),
                    w.project,
                    esc(project.map(|p| p.name.as_str()).unwrap_or_default()),
                    w.owner
                )
            })
            .collect(),
        _ => return api_error(state, StatusCode::NOT_FOUND, "404001", "Resource not found", rest),
    };
    let total = items.len();
    let page: String = items
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    respond(
        StatusCode::OK,
        "application/xml",
        ts_response(
            state,
            &format!(
                r#"<pagination pageNumber="{number}" pageSize="{size}" totalAvailable="{total}"/><{rest}>{page}</{rest}>"#
            ),
        ),
    )
}

fn graphql_error(message: &str, code: Option<&str>, severity: &str) -> Value {
    match code {
        Some(code) => {
            json!({"message": message, "extensions": {"severity": severity, "code": code, "properties": {}}})
        }
        None => json!({"message": message, "path": null, "extensions": null}),
    }
}

fn every(n: Option<u32>, count: u32) -> bool {
    n.is_some_and(|n| n > 0 && count.is_multiple_of(n))
}

/// Objects in a JSON answer: what Tableau's node limit counts.
fn objects(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(objects).sum::<usize>(),
        Value::Array(items) => items.iter().map(objects).sum(),
        _ => 0,
    }
}

async fn graphql(state: &State, headers: &hyper::HeaderMap, body: &[u8]) -> Response<Full<Bytes>> {
    let count = state
        .counters
        .graphql_requests
        .fetch_add(1, Ordering::SeqCst)
        + 1;
    if authorize(state, headers).is_none() {
        state.counters.refused.fetch_add(1, Ordering::SeqCst);
        return respond(
            StatusCode::UNAUTHORIZED,
            "application/json",
            r#"{"timestamp":"2024-01-01T00:00:00.000+00:00","status":401,"error":"Unauthorized","path":"/relationship-service-war/graphql"}"#,
        );
    }
    let json_answer = |value: Value| respond(StatusCode::OK, "application/json", value.to_string());
    if state.faults.disabled {
        return json_answer(json!({"data": null, "errors": [graphql_error(
            "Can't run the query because the Metadata API has not been enabled yet. Run the 'tsm maintenance metadata-services enable' command, and try again.",
            Some("FEATURE_DISABLED"), "ERROR")]}));
    }
    if every(state.faults.http_429_every, count) {
        state.counters.throttled.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", "0")
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(
                b"<html><body>Too Many Requests</body></html>",
            )))
            .expect("response");
    }
    if every(state.faults.rate_exceeded_every, count) {
        state.counters.throttled.fetch_add(1, Ordering::SeqCst);
        return json_answer(
            json!({"data": null, "errors": [graphql_error("Rate limit exceeded.", Some("RATE_EXCEEDED"), "ERROR")]}),
        );
    }
    if every(state.faults.time_limit_every, count) {
        return json_answer(
            json!({"data": null, "errors": [graphql_error("Reached time limit of PT5S for query execution.", None, "")]}),
        );
    }
    let Ok(request) = serde_json::from_slice::<async_graphql::Request>(body) else {
        return respond(
            StatusCode::BAD_REQUEST,
            "application/json",
            r#"{"errors":[{"message":"not a GraphQL request"}]}"#,
        );
    };
    if let Some(first) = request
        .variables
        .get("first")
        .and_then(|v| v.clone().into_json().ok())
        .and_then(|v| v.as_u64())
    {
        state
            .counters
            .largest_first
            .fetch_max(first, Ordering::SeqCst);
    }
    let response = state.schema.execute(request).await;
    state.counters.pages.fetch_add(1, Ordering::SeqCst);
    if let Some(file) = state.record.lock().expect("record").as_mut() {
        use std::io::Write;
        // Bodies are JSON: one line each, whatever their query text holds.
        let line: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let _ = writeln!(file, "{line}");
    }
    let mut answer = serde_json::to_value(&response).expect("answer");
    let mut warnings = Vec::new();
    if objects(&answer["data"]) > state.faults.node_limit {
        state
            .counters
            .node_limit_hits
            .fetch_add(1, Ordering::SeqCst);
        // Partial data: the nodes that fit, as Tableau answers.
        if let Some(data) = answer["data"].as_object_mut() {
            for connection in data.values_mut() {
                if let Some(nodes) = connection.get_mut("nodes").and_then(Value::as_array_mut) {
                    let mut kept = 0;
                    let mut used = 0;
                    for node in nodes.iter() {
                        used += objects(node);
                        if used > state.faults.node_limit {
                            break;
                        }
                        kept += 1;
                    }
                    nodes.truncate(kept);
                }
            }
        }
        warnings.push(graphql_error(
            &format!("Showing partial results. The request exceeded the {} node limit. Use pagination, additional filtering, or both in the query to adjust results.", state.faults.node_limit),
            Some("NODE_LIMIT_EXCEEDED"),
            "WARNING",
        ));
    }
    if state.faults.backfill.load(Ordering::SeqCst) {
        warnings.push(graphql_error(
            "Still creating the Metadata API Store. Results from the query may be incomplete at this time.",
            Some("BACKFILL_RUNNING"),
            "WARNING",
        ));
    }
    if !warnings.is_empty() {
        let errors = answer
            .as_object_mut()
            .expect("object")
            .entry("errors")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(errors) = errors.as_array_mut() {
            errors.extend(warnings);
        }
    }
    json_answer(answer)
}

// ---------------------------------------------------------------------------------------
// The Metadata API's schema: the part we query, as Tableau names it
// ---------------------------------------------------------------------------------------

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

macro_rules! order {
    ($input:ident, $field:ident, [$($value:ident),*]) => {
        #[derive(Enum, Copy, Clone, Eq, PartialEq)]
        pub enum $field { $($value),* }
        #[derive(InputObject)]
        pub struct $input {
            pub field: $field,
            pub direction: OrderDirection,
        }
        impl $input {
            /// `Some(descending)` when ordered by name; `None`: by ID.
            fn by_name(&self) -> Option<bool> {
                (self.field == $field::Name).then_some(self.direction == OrderDirection::Desc)
            }
        }
    };
}
order!(
    WorkbookSortOrder,
    WorkbookOrderField,
    [Id, Luid, Name, ProjectName]
);
order!(
    PublishedDatasourceSortOrder,
    PublishedDatasourceOrderField,
    [Id, Luid, Name, ProjectName]
);
order!(
    EmbeddedDatasourceSortOrder,
    EmbeddedDatasourceOrderField,
    [Id, Name]
);
order!(FieldSortOrder, FieldOrderField, [Id, Name, IsHidden]);
order!(
    DatabaseTableSortOrder,
    DatabaseTableOrderField,
    [Id, Name, Schema, FullName]
);
order!(
    CustomSqlTableSortOrder,
    CustomSqlTableOrderField,
    [Id, Name]
);

#[derive(SimpleObject)]
pub struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// What a connection pages by.
trait Named {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
}

macro_rules! named {
    ($($model:ty),*) => {$(
        impl Named for $model {
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
        }
    )*};
}
named!(WorkbookM, DatasourceM, FieldM, TableM, CustomSqlM);

/// One page of `items` (kept in ID order), after the cursor, `first` long; ordered by name
/// instead when `by_name` says so (ties by ID, as Tableau orders them).
fn page<T: Clone + Named>(
    items: &[T],
    by_name: Option<bool>,
    first: Option<i32>,
    after: Option<String>,
) -> (Vec<T>, PageInfo, usize) {
    let first = usize::try_from(first.unwrap_or(100)).unwrap_or(0).min(1000);
    let ordered: Vec<&T> = match by_name {
        Some(descending) => {
            let mut ordered: Vec<&T> = items.iter().collect();
            ordered.sort_by(|a, b| (a.name(), a.id()).cmp(&(b.name(), b.id())));
            if descending {
                ordered.reverse();
            }
            ordered
        }
        None => items.iter().collect(),
    };
    let start = match (&after, by_name) {
        (None, _) => 0,
        (Some(cursor), None) => ordered.partition_point(|t| t.id() <= cursor.as_str()),
        (Some(cursor), Some(_)) => ordered
            .iter()
            .position(|t| t.id() == cursor)
            .map_or(ordered.len(), |i| i + 1),
    };
    let slice: Vec<T> = ordered
        .iter()
        .skip(start)
        .take(first)
        .map(|t| (*t).clone())
        .collect();
    let has_next_page = start + slice.len() < ordered.len();
    let end_cursor = slice.last().map(|t| t.id().to_owned());
    (
        slice,
        PageInfo {
            has_next_page,
            end_cursor,
        },
        items.len(),
    )
}

macro_rules! connection {
    ($name:ident, $node:ty) => {
        pub struct $name {
            nodes: Vec<$node>,
            page_info: PageInfo,
            total: usize,
        }
        impl $name {
            fn of<T: Clone + Named>(
                items: &[T],
                by_name: Option<bool>,
                first: Option<i32>,
                after: Option<String>,
                wrap: fn(T) -> $node,
            ) -> Self {
                let (nodes, page_info, total) = page(items, by_name, first, after);
                Self {
                    nodes: nodes.into_iter().map(wrap).collect(),
                    page_info,
                    total,
                }
            }
        }
        #[Object]
        impl $name {
            async fn nodes(&self) -> &[$node] {
                &self.nodes
            }
            async fn page_info(&self) -> &PageInfo {
                &self.page_info
            }
            async fn total_count(&self) -> i32 {
                i32::try_from(self.total).unwrap_or(i32::MAX)
            }
        }
    };
}

#[derive(Clone, SimpleObject)]
pub struct TableauUser {
    id: ID,
    luid: String,
    username: String,
    name: String,
}

fn user(luid: &str, username: String) -> TableauUser {
    TableauUser {
        id: ID(format!("user-{luid}")),
        luid: luid.to_owned(),
        name: username.clone(),
        username,
    }
}

#[derive(Clone, SimpleObject)]
pub struct Tag {
    id: ID,
    name: String,
}

fn model<'a>(ctx: &Context<'a>) -> &'a Indexed {
    ctx.data_unchecked::<Arc<Indexed>>()
}

#[derive(Clone)]
pub struct Workbook(WorkbookM);

#[Object]
impl Workbook {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn luid(&self) -> &str {
        &self.0.luid
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        None
    }
    async fn project_name(&self, ctx: &Context<'_>) -> Option<String> {
        model(ctx)
            .site
            .projects
            .iter()
            .find(|p| p.luid == self.0.project)
            .map(|p| p.name.clone())
    }
    async fn project_luid(&self) -> &str {
        &self.0.project
    }
    async fn vizportal_url_id(&self) -> String {
        self.0
            .id
            .trim_start_matches("wb-")
            .trim_start_matches('0')
            .to_owned()
    }
    async fn owner(&self) -> TableauUser {
        user(
            &self.0.owner,
            format!("user-{}", &self.0.owner[self.0.owner.len() - 2..]),
        )
    }
    async fn created_at(&self) -> &str {
        "2024-01-02T03:04:05Z"
    }
    async fn updated_at(&self) -> &str {
        "2024-06-07T08:09:10Z"
    }
    async fn tags(&self) -> Vec<Tag> {
        self.0
            .tags
            .iter()
            .map(|t| Tag {
                id: ID(format!("tag-{t}")),
                name: t.clone(),
            })
            .collect()
    }
    async fn sheets(&self) -> Vec<Sheet> {
        self.0.sheets.iter().map(|s| Sheet(s.clone())).collect()
    }
    async fn dashboards(&self) -> Vec<Dashboard> {
        self.0
            .dashboards
            .iter()
            .map(|d| Dashboard(d.clone()))
            .collect()
    }
    async fn embedded_datasources(&self, ctx: &Context<'_>) -> Vec<EmbeddedDatasource> {
        let site = &model(ctx).site;
        site.embedded
            .iter()
            .filter(|d| d.workbook.as_deref() == Some(self.0.luid.as_str()))
            .map(|d| EmbeddedDatasource(d.clone()))
            .collect()
    }
}

#[derive(Clone)]
pub struct Sheet(SheetM);

#[Object]
impl Sheet {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn luid(&self) -> &str {
        &self.0.luid
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn path(&self) -> Option<String> {
        (!self.0.luid.is_empty()).then(|| format!("wb/{}", self.0.id))
    }
}

#[derive(Clone)]
pub struct Dashboard(DashboardM);

#[Object]
impl Dashboard {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn luid(&self) -> &str {
        &self.0.luid
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn path(&self) -> Option<String> {
        Some(format!("wb/{}", self.0.id))
    }
    async fn sheets(&self, ctx: &Context<'_>) -> Vec<Sheet> {
        let site = model(ctx);
        self.0
            .sheets
            .iter()
            .filter_map(|id| site.sheet(id))
            .collect()
    }
}

#[derive(Clone, SimpleObject)]
pub struct Database {
    id: ID,
    name: String,
    connection_type: String,
}

fn database(name: &str, connection_type: &str) -> Database {
    Database {
        id: ID(format!("database-{name}")),
        name: name.to_owned(),
        connection_type: connection_type.to_owned(),
    }
}

#[derive(Clone)]
pub struct DatabaseTable(TableM);

#[Object]
impl DatabaseTable {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn luid(&self) -> &str {
        &self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn schema(&self) -> &str {
        &self.0.schema
    }
    async fn full_name(&self) -> String {
        format!("[{}].[{}]", self.0.schema, self.0.name)
    }
    async fn connection_type(&self) -> &str {
        self.0.connection_type
    }
    async fn database(&self) -> Database {
        database(&self.0.database, self.0.connection_type)
    }
}

#[derive(Clone)]
pub struct CustomSqlTable(CustomSqlM);

#[Object(name = "CustomSQLTable")]
impl CustomSqlTable {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn query(&self) -> &str {
        &self.0.query
    }
    async fn connection_type(&self) -> &str {
        self.0.connection_type
    }
    async fn database(&self) -> Database {
        database(&self.0.database, self.0.connection_type)
    }
    async fn tables(&self, ctx: &Context<'_>) -> Vec<DatabaseTable> {
        tables(model(ctx), &self.0.tables)
    }
}

fn tables(site: &Indexed, ids: &[String]) -> Vec<DatabaseTable> {
    ids.iter()
        .filter_map(|id| site.table(id))
        .map(|t| DatabaseTable(t.clone()))
        .collect()
}

fn databases(site: &Indexed, ids: &[String]) -> Vec<Database> {
    let mut seen: Vec<Database> = Vec::new();
    for t in ids.iter().filter_map(|id| site.table(id)) {
        if !seen.iter().any(|d| d.name == t.database) {
            seen.push(database(&t.database, t.connection_type));
        }
    }
    seen
}

/// `Table`: what a column belongs to.
#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "ID"), field(name = "name", ty = "&str"))]
pub enum Table {
    DatabaseTable(DatabaseTable),
    #[graphql(name = "CustomSQLTable")]
    CustomSqlTable(CustomSqlTable),
}

#[derive(Clone, SimpleObject)]
pub struct Column {
    id: ID,
    name: String,
    table: Table,
}

#[derive(Clone)]
pub struct PublishedDatasource(DatasourceM);

#[Object]
impl PublishedDatasource {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn luid(&self) -> &str {
        &self.0.luid
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        None
    }
    async fn project_name(&self) -> Option<&str> {
        self.0.project.as_deref()
    }
    async fn owner(&self) -> TableauUser {
        user(&luid(0x05e, 0), self.0.owner.clone())
    }
    async fn has_extracts(&self) -> bool {
        self.0.has_extracts
    }
    async fn is_certified(&self) -> bool {
        false
    }
    async fn upstream_tables(&self, ctx: &Context<'_>) -> Vec<DatabaseTable> {
        tables(model(ctx), &self.0.tables)
    }
    async fn upstream_databases(&self, ctx: &Context<'_>) -> Vec<Database> {
        databases(model(ctx), &self.0.tables)
    }
}

#[derive(Clone)]
pub struct EmbeddedDatasource(DatasourceM);

#[Object]
impl EmbeddedDatasource {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn has_extracts(&self) -> bool {
        self.0.has_extracts
    }
    async fn workbook(&self, ctx: &Context<'_>) -> Option<Workbook> {
        let luid = self.0.workbook.as_deref()?;
        let site = model(ctx);
        site.workbooks
            .get(luid)
            .map(|&i| Workbook(site.site.workbooks[i].clone()))
    }
    async fn upstream_tables(&self, ctx: &Context<'_>) -> Vec<DatabaseTable> {
        tables(model(ctx), &self.0.tables)
    }
    async fn upstream_databases(&self, ctx: &Context<'_>) -> Vec<Database> {
        databases(model(ctx), &self.0.tables)
    }
    async fn upstream_datasources(&self, ctx: &Context<'_>) -> Vec<PublishedDatasource> {
        let site = model(ctx);
        self.0
            .upstream_datasources
            .iter()
            .filter_map(|id| site.published.get(id))
            .map(|&i| PublishedDatasource(site.site.published[i].clone()))
            .collect()
    }
}

/// `Datasource`: what a field belongs to.
#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "ID"), field(name = "name", ty = "&str"))]
pub enum Datasource {
    PublishedDatasource(PublishedDatasource),
    EmbeddedDatasource(EmbeddedDatasource),
}

fn datasource(site: &Indexed, id: &str) -> Option<Datasource> {
    if let Some(&i) = site.published.get(id) {
        return Some(Datasource::PublishedDatasource(PublishedDatasource(
            site.site.published[i].clone(),
        )));
    }
    site.embedded
        .get(id)
        .map(|&i| Datasource::EmbeddedDatasource(EmbeddedDatasource(site.site.embedded[i].clone())))
}

/// The fields every `Field` implementation has, and `$extra`: what only some have.
macro_rules! field_type {
    ($name:ident, $graphql:literal, { $($extra:tt)* }) => {
        #[derive(Clone)]
        pub struct $name(FieldM);

        #[Object(name = $graphql)]
        impl $name {
            async fn id(&self) -> ID {
                ID(self.0.id.clone())
            }
            async fn name(&self) -> &str {
                &self.0.name
            }
            async fn description(&self) -> Option<&str> {
                None
            }
            async fn is_hidden(&self) -> bool {
                self.0.hidden
            }
            async fn folder_name(&self) -> Option<&str> {
                None
            }
            async fn datasource(&self, ctx: &Context<'_>) -> Option<Datasource> {
                datasource(model(ctx), &self.0.datasource)
            }
            async fn sheets(&self, ctx: &Context<'_>) -> Vec<Sheet> {
                let site = model(ctx);
                self.0.sheets.iter().filter_map(|id| site.sheet(id)).collect()
            }
            async fn upstream_columns(&self, ctx: &Context<'_>) -> Vec<Column> {
                let site = model(ctx);
                self.0
                    .columns
                    .iter()
                    .filter_map(|(table, name)| {
                        let id = ID(format!("column-{table}-{name}"));
                        if let Some(&i) = site.custom_sql.get(table) {
                            return Some(Column {
                                id,
                                name: name.clone(),
                                table: Table::CustomSqlTable(CustomSqlTable(
                                    site.site.custom_sql[i].clone(),
                                )),
                            });
                        }
                        site.table(table).map(|t| Column {
                            id,
                            name: name.clone(),
                            table: Table::DatabaseTable(DatabaseTable(t.clone())),
                        })
                    })
                    .collect()
            }
            async fn upstream_fields(&self, ctx: &Context<'_>) -> Vec<Field> {
                let site = model(ctx);
                self.0
                    .upstream_fields
                    .iter()
                    .filter_map(|id| site.fields.get(id))
                    .map(|&i| field(site.site.fields[i].clone()))
                    .collect()
            }
            $($extra)*
        }
    };
}

field_type!(ColumnField, "ColumnField", {
    async fn data_type(&self) -> &str {
        self.0.data_type
    }
    async fn role(&self) -> &str {
        self.0.role
    }
});
field_type!(CalculatedField, "CalculatedField", {
    async fn data_type(&self) -> &str {
        self.0.data_type
    }
    async fn role(&self) -> &str {
        self.0.role
    }
    async fn formula(&self) -> Option<&str> {
        self.0.formula.as_deref()
    }
});
field_type!(GroupField, "GroupField", {
    async fn data_type(&self) -> &str {
        self.0.data_type
    }
    async fn role(&self) -> &str {
        self.0.role
    }
});
field_type!(BinField, "BinField", {});

/// `Field`, with the fields every implementation has. (The variants are Tableau's type
/// names; clippy reads the derive's repeated `ty = …` as duplicated attributes.)
#[allow(clippy::duplicated_attributes, clippy::enum_variant_names)]
#[derive(Interface, Clone)]
#[graphql(
    field(name = "id", ty = "ID"),
    field(name = "name", ty = "&str"),
    field(name = "description", ty = "Option<&str>"),
    field(name = "is_hidden", ty = "bool"),
    field(name = "folder_name", ty = "Option<&str>"),
    field(name = "datasource", ty = "Option<Datasource>"),
    field(name = "sheets", ty = "Vec<Sheet>"),
    field(name = "upstream_columns", ty = "Vec<Column>"),
    field(name = "upstream_fields", ty = "Vec<Field>")
)]
pub enum Field {
    ColumnField(ColumnField),
    CalculatedField(CalculatedField),
    GroupField(GroupField),
    BinField(BinField),
}

fn field(f: FieldM) -> Field {
    match f.kind {
        FieldKindM::Column => Field::ColumnField(ColumnField(f)),
        FieldKindM::Calculated => Field::CalculatedField(CalculatedField(f)),
        FieldKindM::Group => Field::GroupField(GroupField(f)),
        FieldKindM::Bin => Field::BinField(BinField(f)),
    }
}

connection!(WorkbooksConnection, Workbook);
connection!(PublishedDatasourcesConnection, PublishedDatasource);
connection!(EmbeddedDatasourcesConnection, EmbeddedDatasource);
connection!(FieldsConnection, Field);
connection!(DatabaseTablesConnection, DatabaseTable);
connection!(CustomSqlTablesConnection, CustomSqlTable);

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    async fn workbooks_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        order_by: Option<WorkbookSortOrder>,
    ) -> WorkbooksConnection {
        let by_name = order_by.and_then(|o| o.by_name());
        WorkbooksConnection::of(&model(ctx).site.workbooks, by_name, first, after, Workbook)
    }
    async fn published_datasources_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        order_by: Option<PublishedDatasourceSortOrder>,
    ) -> PublishedDatasourcesConnection {
        let by_name = order_by.and_then(|o| o.by_name());
        PublishedDatasourcesConnection::of(
            &model(ctx).site.published,
            by_name,
            first,
            after,
            PublishedDatasource,
        )
    }
    async fn embedded_datasources_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        order_by: Option<EmbeddedDatasourceSortOrder>,
    ) -> EmbeddedDatasourcesConnection {
        let by_name = order_by.and_then(|o| o.by_name());
        EmbeddedDatasourcesConnection::of(
            &model(ctx).site.embedded,
            by_name,
            first,
            after,
            EmbeddedDatasource,
        )
    }
    async fn fields_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        order_by: Option<FieldSortOrder>,
    ) -> FieldsConnection {
        let by_name = order_by.and_then(|o| o.by_name());
        FieldsConnection::of(&model(ctx).site.fields, by_name, first, after, field)
    }
    async fn database_tables_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        order_by: Option<DatabaseTableSortOrder>,
    ) -> DatabaseTablesConnection {
        let by_name = order_by.and_then(|o| o.by_name());
        DatabaseTablesConnection::of(
            &model(ctx).site.tables,
            by_name,
            first,
            after,
            DatabaseTable,
        )
    }
    #[graphql(name = "customSQLTablesConnection")]
    async fn custom_sql_tables_connection(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        order_by: Option<CustomSqlTableSortOrder>,
    ) -> CustomSqlTablesConnection {
        let by_name = order_by.and_then(|o| o.by_name());
        CustomSqlTablesConnection::of(
            &model(ctx).site.custom_sql,
            by_name,
            first,
            after,
            CustomSqlTable,
        )
    }
}
