//! Snowflake, read with `SHOW` commands and each database's `INFORMATION_SCHEMA.COLUMNS`, over
//! Snowflake's driver protocol ([`client`]).
//!
//! Why this shape (the failures of other agents it avoids):
//! - **`SHOW … IN SCHEMA`, paged per schema** with `LIMIT n FROM '<last name>'`. `SHOW` needs
//!   no warehouse and costs no warehouse credits. One `SHOW` answers at most 10,000 rows
//!   (error 090153 past that); paging across a whole database with `FROM` drops, repeats or
//!   loops over objects in different schemas, so a pager only ever pages one schema. A page
//!   that brings no new name is an error, never a loop or a silent truncation.
//! - **Columns: one streamed query per database** on `INFORMATION_SCHEMA.COLUMNS`, on a second
//!   session while the first runs the `SHOW`s. When Snowflake answers 090030 ("too much
//!   data"), the database's columns are read again one schema at a time.
//! - **Nothing that could not be read looks empty.** A database whose schemas cannot be listed,
//!   or a schema that cannot be read, is listed in the manifest as skipped, with the reason; a
//!   catalog must not infer deletions inside it.
//! - **Catalog facts only.** Row counts and bytes are the catalog's (`SHOW TABLES`), never
//!   counted; no statement reads a table.

mod account_usage;
pub mod auth;
pub mod client;
pub mod rowset;
pub mod sql;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::ExtractError;
use crate::filter::Filters;
use crate::record::{
    ColumnRef, Constraint, ConstraintKind, Database, EntityKind, Generated, Schema, Table,
    ViewDefinition,
};
use crate::sources::ServerConfig;
use crate::writer::{OutputWriter, Skipped, WriteError};
use crate::{Progress, SourceSecret};

use crate::http::Retry;
use auth::Credential;
use client::{Connection, Session, SnowflakeError};
use rowset::Batch;

/// The most rows one `SHOW` returns (Snowflake's documented cap).
pub const SHOW_PAGE_MAX: u32 = 10_000;

/// What to do with databases shared with the account (`kind = IMPORTED DATABASE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportedDatabases {
    /// List them in the manifest as skipped.
    Skip,
    /// Extract them like the account's own.
    Include,
}

/// Where the catalog is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogSource {
    /// `SHOW` per schema and `INFORMATION_SCHEMA.COLUMNS` per database: current, and needs
    /// `USAGE` on each database and schema.
    InformationSchema,
    /// `SNOWFLAKE.ACCOUNT_USAGE`: one grant, tags, policies and view dependencies included,
    /// up to about three hours behind the account, no keys.
    AccountUsage,
}

/// Everything a Snowflake extraction needs.
#[derive(Debug)]
pub struct SnowflakeConfig {
    /// Host, port, user, TLS policy and CA (the password, if any, is in `credential`).
    pub server: ServerConfig,
    /// The account identifier (`myorg-myaccount`, or a locator `xy12345.us-east-1`).
    pub account: String,
    /// The role, or the user's default.
    pub role: Option<String>,
    /// The warehouse for `INFORMATION_SCHEMA` queries, or the user's default.
    pub warehouse: Option<String>,
    /// How to log in.
    pub credential: Credential,
    /// Shared databases.
    pub imported: ImportedDatabases,
    /// Where the catalog is read from.
    pub source: CatalogSource,
    /// The longest one statement may run before it is cancelled.
    pub query_timeout: Duration,
    /// Rows per `SHOW` page (at most [`SHOW_PAGE_MAX`]).
    pub show_page: u32,
    /// Retries of failed requests.
    pub retry: Retry,
    /// Keep-alive interval; `None`: as the server asks.
    pub heartbeat: Option<Duration>,
}

impl SnowflakeConfig {
    /// The configuration from resolved parameters and the secrets read: the credential is
    /// the one `authenticator` names, and its secret is required (exit 78 when missing or
    /// unreadable).
    pub fn from_parameters(
        parameters: &BTreeMap<String, Value>,
        secrets: &mut BTreeMap<String, SourceSecret>,
        secrets_dir: Option<&Path>,
        mut server: ServerConfig,
    ) -> Result<Self, ExtractError> {
        let text = |name: &str| {
            parameters
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let number = |name: &str| parameters.get(name).and_then(Value::as_u64);
        let target = server.target();
        let bad = |problem: String| ExtractError::Parameters {
            connector: "snowflake".into(),
            problems: vec![problem],
        };
        let missing = |name: &str, authenticator: &str| ExtractError::Secret {
            name: name.to_owned(),
            path: secrets_dir
                .map(|d| d.join(name))
                .unwrap_or_else(|| PathBuf::from("(no --secrets-dir given)")),
            hint: format!(" (the `{authenticator}` authenticator needs it)"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such secret"),
        };
        let authenticator = text("authenticator").unwrap_or_else(|| "key-pair".into());
        let credential = match authenticator.as_str() {
            "key-pair" => {
                let pem = secrets
                    .remove("private-key")
                    .ok_or_else(|| missing("private-key", "key-pair"))?;
                let passphrase = secrets.remove("private-key-passphrase");
                Credential::KeyPair(Box::new(
                    auth::KeyPair::from_pem(pem.expose(), passphrase.as_ref()).map_err(
                        |problem| ExtractError::Config {
                            target: target.clone(),
                            problem: format!("secret `private-key`: {problem}"),
                        },
                    )?,
                ))
            }
            "oauth" => {
                let path = secrets_dir
                    .map(|d| d.join("oauth-token"))
                    .filter(|p| p.is_file())
                    .ok_or_else(|| missing("oauth-token", "oauth"))?;
                Credential::OAuth(path)
            }
            // Taken, not copied: the credential is its one holder.
            "password" => Credential::Password(
                server
                    .password
                    .take()
                    .ok_or_else(|| missing("password", "password"))?,
            ),
            other => return Err(bad(format!("unknown authenticator `{other}`"))),
        };
        let imported = match text("imported-databases").as_deref() {
            None | Some("skip") => ImportedDatabases::Skip,
            Some("include") => ImportedDatabases::Include,
            Some(other) => return Err(bad(format!("unknown imported-databases `{other}`"))),
        };
        let source = match text("catalog-source").as_deref() {
            None | Some("information-schema") => CatalogSource::InformationSchema,
            Some("account-usage") => CatalogSource::AccountUsage,
            Some(other) => return Err(bad(format!("unknown catalog-source `{other}`"))),
        };
        Ok(Self {
            source,
            account: text("account")
                .ok_or_else(|| bad("parameter `account` is required".into()))?,
            role: text("role"),
            warehouse: text("warehouse"),
            credential,
            imported,
            query_timeout: Duration::from_secs(number("query-timeout-seconds").unwrap_or(600)),
            show_page: number("show-page-size")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(SHOW_PAGE_MAX),
            retry: Retry::default(),
            heartbeat: None,
            server,
        })
    }
}

/// Classifies a Snowflake failure as the extraction reports it.
fn extract_error(config: &Flow, what: &'static str, error: SnowflakeError) -> ExtractError {
    let target = config.server.target();
    match error {
        SnowflakeError::Login { .. } => ExtractError::Authentication {
            target,
            user: config.server.user.clone(),
            source: error.into(),
        },
        SnowflakeError::Key(problem) => ExtractError::Config {
            target,
            problem: format!("secret `private-key`: {problem}"),
        },
        SnowflakeError::TokenFile { path, source } => ExtractError::Secret {
            name: "oauth-token".into(),
            path: path.into(),
            hint: String::new(),
            source,
        },
        SnowflakeError::Transport(error) => error.into_extract(&config.server),
        SnowflakeError::Timeout(_) => ExtractError::Query {
            target,
            what,
            connection_lost: true,
            source: error.into(),
        },
        SnowflakeError::Sql { ref code, .. } if code == "000606" => ExtractError::Config {
            target,
            problem: format!(
                "reading {what} needs a warehouse: set the connection's `warehouse`, or give the user a default one ({error})"
            ),
        },
        SnowflakeError::Consumer(inner) => match inner.downcast::<WriteError>() {
            Ok(write) => ExtractError::Write(*write),
            Err(inner) => ExtractError::Query {
                target,
                what,
                connection_lost: false,
                source: inner,
            },
        },
        other => ExtractError::Query {
            target,
            what,
            connection_lost: false,
            source: other.into(),
        },
    }
}

fn consumer(error: WriteError) -> SnowflakeError {
    SnowflakeError::Consumer(Box::new(error))
}

/// Codes meaning "does not exist or not authorized" and "insufficient privileges": what a
/// role that may not read an object gets.
fn is_not_authorized(error: &SnowflakeError) -> bool {
    matches!(error.sql_code(), Some("002003" | "003001" | "002043"))
}

/// Runs a paged `SHOW` over one scope, calling `each` on every row exactly once.
///
/// `statement` is the `SHOW` without `LIMIT`; pages are `LIMIT page [FROM '<last name>']`.
/// A page shorter than `page` is the last. Whether `FROM` starts at the named row or after it,
/// names already seen are dropped; a full page with no new name means the server ignored
/// `FROM`: an error, never an endless loop or a silent truncation.
async fn show_paged(
    session: &Session,
    statement: &str,
    page: u32,
    mut each: impl FnMut(&Batch, usize) -> Result<(), SnowflakeError>,
) -> Result<(), SnowflakeError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut marker: Option<String> = None;
    loop {
        let sql = sql::show_page(statement, page, marker.as_deref());
        let (mut rows, mut new, mut last) = (0u64, 0u64, None);
        session
            .query(&sql, |batch| {
                let name = batch.col("name").ok_or_else(|| {
                    SnowflakeError::Protocol(format!("`{statement}` has no `name` column"))
                })?;
                for row in 0..batch.len() {
                    rows += 1;
                    let Some(value) = batch.str(row, name) else {
                        continue;
                    };
                    last = Some(value.to_string());
                    if seen.insert(value.into_owned()) {
                        new += 1;
                        each(&batch, row)?;
                    }
                }
                Ok(())
            })
            .await?;
        if rows < u64::from(page) {
            return Ok(());
        }
        if new == 0 {
            return Err(SnowflakeError::Protocol(format!(
                "paging `{statement}` from {:?} brought no new row: the server ignored `FROM`",
                marker.unwrap_or_default()
            )));
        }
        marker = last;
    }
}

/// What the extraction flow needs once the session's settings went to the [`Connection`].
struct Flow {
    server: ServerConfig,
    imported: ImportedDatabases,
    source: CatalogSource,
    show_page: u32,
}

/// Extracts every included database the role can see.
pub async fn extract(
    config: SnowflakeConfig,
    filters: &Filters,
    writer: &mut OutputWriter,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    let http = crate::http::client(&config.server)?;
    let scheme = if config.server.ssl_mode == crate::tls::SslMode::Disable {
        "http"
    } else {
        "https"
    };
    let connection = Arc::new(Connection {
        base_url: format!("{scheme}://{}:{}", config.server.host, config.server.port),
        account: config.account,
        user: config.server.user.clone(),
        role: config.role,
        warehouse: config.warehouse,
        credential: config.credential,
        http,
        query_timeout: config.query_timeout,
        retry: config.retry,
        heartbeat: config.heartbeat,
        audit: writer.audit(),
    });
    let flow = Flow {
        server: config.server,
        imported: config.imported,
        source: config.source,
        show_page: config.show_page.clamp(1, SHOW_PAGE_MAX),
    };
    let config = &flow;
    let fail = |what| move |e| extract_error(config, what, e);
    let shows = Session::open(connection.clone())
        .await
        .map_err(fail("the login"))?;
    let columns = Session::open(connection).await.map_err(fail("the login"))?;
    let result = extract_all(config, &shows, &columns, filters, writer, progress).await;
    shows.close().await;
    columns.close().await;
    result
}

async fn extract_all(
    config: &Flow,
    shows: &Session,
    columns: &Session,
    filters: &Filters,
    writer: &mut OutputWriter,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    let fail = |what| move |e| extract_error(config, what, e);
    let mut databases = Vec::new();
    show_paged(shows, "SHOW DATABASES", config.show_page, |batch, row| {
        let get = |name: &str| {
            batch
                .col(name)
                .and_then(|c| batch.str(row, c))
                .map(|v| v.into_owned())
        };
        let name = get("name").unwrap_or_default();
        let imported = get("kind").is_some_and(|k| k.eq_ignore_ascii_case("IMPORTED DATABASE"));
        databases.push((
            Database {
                name,
                owner: get("owner").filter(|v| !v.is_empty()),
                comment: get("comment").filter(|v| !v.is_empty()),
                encoding: None,
                shared_from: None,
            },
            imported,
            get("origin").filter(|v| !v.is_empty()),
        ));
        Ok(())
    })
    .await
    .map_err(fail("databases"))?;
    // Byte order: the same catalog gives the same records in the same order.
    databases.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let writer = RefCell::new(writer);
    let mut included = Vec::new();
    for (database, imported, origin) in databases {
        if !filters.databases.allows(&database.name) {
            continue;
        }
        if imported && config.imported == ImportedDatabases::Skip {
            writer.borrow_mut().skip(Skipped {
                kind: EntityKind::Database,
                name: database.name.clone(),
                reason: format!(
                    "imported (shared) database{}; set the parameter imported-databases=include to extract it",
                    origin.map(|o| format!(" from {o}")).unwrap_or_default()
                ),
            });
            continue;
        }
        included.push(Database {
            shared_from: if imported { origin } else { None },
            ..database
        });
    }
    if config.source == CatalogSource::AccountUsage {
        for database in &included {
            progress.database(&database.name);
            writer.borrow_mut().write(database)?;
        }
        return account_usage::extract(
            config, shows, columns, &included, filters, &writer, progress,
        )
        .await;
    }
    let mut pending: Option<(String, Vec<String>)> = None;
    for database in included {
        progress.database(&database.name);
        // A pipeline over two sessions: this database's SHOWs while the previous one's
        // columns stream. Columns are read only once the SHOWs said which schemas the role
        // can read, so no column of a schema listed as skipped is ever written.
        let previous = pending.take();
        let column_stream = async {
            if let Some((name, schemas)) = &previous {
                read_columns(config, columns, name, schemas, filters, &writer).await?;
                progress.stage(name, EntityKind::Column);
            }
            Ok::<(), ExtractError>(())
        };
        let name = database.name.clone();
        let (readable, ()) = tokio::try_join!(
            read_database(config, shows, database, filters, &writer, progress),
            column_stream
        )?;
        pending = readable.map(|schemas| (name, schemas));
    }
    if let Some((name, schemas)) = &pending {
        read_columns(config, columns, name, schemas, filters, &writer).await?;
        progress.stage(name, EntityKind::Column);
    }
    Ok(())
}

/// A database's schemas, then each schema's tables, views and keys. Answers the schemas
/// that could be read, or `None` when the database's schemas cannot be listed.
async fn read_database(
    config: &Flow,
    shows: &Session,
    database: Database,
    filters: &Filters,
    writer: &RefCell<&mut OutputWriter>,
    progress: &dyn Progress,
) -> Result<Option<Vec<String>>, ExtractError> {
    let fail = |what| move |e| extract_error(config, what, e);
    let name = database.name.clone();
    let mut schemas = Vec::new();
    let listed = show_paged(
        shows,
        &format!("SHOW SCHEMAS IN DATABASE {}", sql::ident(&name)),
        config.show_page,
        |batch, row| {
            let get = |c: &str| {
                batch
                    .col(c)
                    .and_then(|c| batch.str(row, c))
                    .map(|v| v.into_owned())
            };
            let schema = get("name").unwrap_or_default();
            if schema.eq_ignore_ascii_case("INFORMATION_SCHEMA") || !filters.schemas.allows(&schema)
            {
                return Ok(());
            }
            schemas.push(Schema {
                database: name.clone(),
                name: schema,
                owner: get("owner").filter(|v| !v.is_empty()),
                comment: get("comment").filter(|v| !v.is_empty()),
            });
            Ok(())
        },
    )
    .await;
    match listed {
        Ok(()) => {}
        Err(error) if is_not_authorized(&error) => {
            // Never written as an empty database: listed as skipped, with the reason.
            writer.borrow_mut().skip(Skipped {
                kind: EntityKind::Database,
                name: name.clone(),
                reason: format!("cannot list its schemas: {error}"),
            });
            return Ok(None);
        }
        Err(error) => return Err(fail("schemas")(error)),
    }
    schemas.sort_by(|a, b| a.name.cmp(&b.name));
    writer.borrow_mut().write(&database)?;
    for schema in &schemas {
        writer.borrow_mut().write(schema)?;
    }
    let keep = |schema: &str, table: &str| filters.allows_table(schema, table);
    let mut readable = Vec::with_capacity(schemas.len());
    for schema in schemas {
        match read_schema(config, shows, &name, &schema.name, &keep, writer).await {
            Ok(()) => readable.push(schema.name),
            Err(error) if is_not_authorized(&error) => {
                writer.borrow_mut().skip(Skipped {
                    kind: EntityKind::Schema,
                    name: format!("{name}.{}", schema.name),
                    reason: format!("cannot read it: {error}"),
                });
            }
            Err(error) => return Err(fail("tables")(error)),
        }
    }
    progress.stage(&name, EntityKind::Table);
    Ok(Some(readable))
}

/// One schema's tables and views (sorted by name), view definitions, and keys.
async fn read_schema(
    config: &Flow,
    session: &Session,
    database: &str,
    schema: &str,
    keep: &impl Fn(&str, &str) -> bool,
    writer: &RefCell<&mut OutputWriter>,
) -> Result<(), SnowflakeError> {
    let scope = format!("{}.{}", sql::ident(database), sql::ident(schema));
    let mut tables: Vec<(Table, Option<String>)> = Vec::new();
    show_paged(
        session,
        &format!("SHOW TABLES IN SCHEMA {scope}"),
        config.show_page,
        |batch, row| {
            let table = sql::table_row(batch, row, database, schema);
            if keep(schema, &table.name) {
                tables.push((table, None));
            }
            Ok(())
        },
    )
    .await?;
    show_paged(
        session,
        &format!("SHOW VIEWS IN SCHEMA {scope}"),
        config.show_page,
        |batch, row| {
            let (view, text) = sql::view_row(batch, row, database, schema);
            if keep(schema, &view.name) {
                tables.push((view, text));
            }
            Ok(())
        },
    )
    .await?;
    tables.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut definitions = Vec::new();
    for (table, text) in tables {
        writer.borrow_mut().write(&table).map_err(consumer)?;
        if let Some(definition) = text.filter(|t| !t.is_empty()) {
            definitions.push(ViewDefinition {
                database: database.to_owned(),
                schema: schema.to_owned(),
                view: table.name,
                definition,
            });
        }
    }
    for definition in &definitions {
        writer.borrow_mut().write(definition).map_err(consumer)?;
    }
    // Keys: SHOW … KEYS has no paging; a schema's keys fit well under its 10,000-row cap
    // unless it has that many key columns (then: 090153, reported).
    let mut constraints: Vec<Constraint> = Vec::new();
    for (statement, kind) in [
        ("SHOW PRIMARY KEYS", ConstraintKind::PrimaryKey),
        ("SHOW UNIQUE KEYS", ConstraintKind::Unique),
        ("SHOW IMPORTED KEYS", ConstraintKind::ForeignKey),
    ] {
        let mut rows: Vec<sql::KeyRow> = Vec::new();
        session
            .query(&format!("{statement} IN SCHEMA {scope}"), |batch| {
                for row in 0..batch.len() {
                    if let Some(key) = sql::key_row(&batch, row, kind) {
                        rows.push(key);
                    }
                }
                Ok(())
            })
            .await?;
        constraints.extend(
            sql::group_keys(rows, database, schema, kind)
                .into_iter()
                .filter(|c| keep(schema, &c.table)),
        );
    }
    constraints.sort_by(|a, b| (&a.table, &a.name).cmp(&(&b.table, &b.name)));
    for constraint in &constraints {
        writer.borrow_mut().write(constraint).map_err(consumer)?;
    }
    Ok(())
}

/// The database's columns: one query for the database, or one per schema when the
/// database's answer is too large (090030).
async fn read_columns(
    config: &Flow,
    session: &Session,
    database: &str,
    schemas: &[String],
    filters: &Filters,
    writer: &RefCell<&mut OutputWriter>,
) -> Result<(), ExtractError> {
    let fail = |what| move |e| extract_error(config, what, e);
    let keep = &|schema: &str, table: &str| filters.allows_table(schema, table);
    let listed: HashSet<&str> = schemas.iter().map(String::as_str).collect();
    let whole = sql::columns(database, None);
    match stream_columns(session, &whole, database, &listed, keep, writer).await {
        Ok(()) => return Ok(()),
        Err(error) if error.sql_code() == Some("090030") => {
            tracing::info!(
                database,
                "the database's columns are too many for one answer (090030); reading them per schema"
            );
        }
        Err(error) if is_not_authorized(&error) => {
            writer.borrow_mut().skip(Skipped {
                kind: EntityKind::Database,
                name: database.to_owned(),
                reason: format!("cannot read its columns: {error}"),
            });
            return Ok(());
        }
        Err(error) => return Err(fail("columns")(error)),
    }
    for schema in schemas {
        let statement = sql::columns(database, Some(schema));
        match stream_columns(session, &statement, database, &listed, keep, writer).await {
            Ok(()) => {}
            Err(error) if is_not_authorized(&error) => {
                writer.borrow_mut().skip(Skipped {
                    kind: EntityKind::Schema,
                    name: format!("{database}.{schema}"),
                    reason: format!("cannot read its columns: {error}"),
                });
            }
            Err(error) => return Err(fail("columns")(error)),
        }
    }
    Ok(())
}

async fn stream_columns(
    session: &Session,
    statement: &str,
    database: &str,
    listed: &HashSet<&str>,
    keep: &impl Fn(&str, &str) -> bool,
    writer: &RefCell<&mut OutputWriter>,
) -> Result<(), SnowflakeError> {
    // Rows arrive grouped by table: the filters are asked once per table.
    let mut current: (String, String, bool) = (String::new(), String::new(), false);
    session
        .query(statement, |batch| {
            let cols = sql::ColumnCols::find(&batch)?;
            for row in 0..batch.len() {
                let (Some(schema), Some(table), Some(name)) = (
                    batch.str(row, cols.schema),
                    batch.str(row, cols.table),
                    batch.str(row, cols.name),
                ) else {
                    return Err(SnowflakeError::Protocol(
                        "a column row without its schema, table or name".into(),
                    ));
                };
                if current.0 != schema || current.1 != table {
                    let included = listed.contains(schema.as_ref()) && keep(&schema, &table);
                    current = (schema.into_owned(), table.into_owned(), included);
                }
                if !current.2 {
                    continue;
                }
                write_column(
                    &batch,
                    row,
                    &cols,
                    (database, &current.0, &current.1),
                    &name,
                    writer,
                )?;
            }
            Ok(())
        })
        .await
}

/// Writes the column in `row` of an `INFORMATION_SCHEMA.COLUMNS`-shaped answer (the
/// information schema's, or `ACCOUNT_USAGE.COLUMNS`) as a record of `table`.
fn write_column(
    batch: &Batch,
    row: usize,
    cols: &sql::ColumnCols,
    (database, schema, table): (&str, &str, &str),
    name: &str,
    writer: &RefCell<&mut OutputWriter>,
) -> Result<(), SnowflakeError> {
    let data_type = sql::data_type(batch, row, cols);
    let default = batch.str(row, cols.default);
    let identity = cols
        .identity
        .and_then(|c| batch.bool(row, c))
        .unwrap_or(false);
    let comment = cols.comment.and_then(|c| batch.str(row, c));
    writer
        .borrow_mut()
        .write(&ColumnRef {
            database,
            schema,
            table,
            name,
            ordinal: batch
                .i64(row, cols.ordinal)
                .and_then(|o| i32::try_from(o).ok())
                .unwrap_or_default(),
            data_type: &data_type,
            nullable: batch.bool(row, cols.nullable).unwrap_or(true),
            default: default.as_deref(),
            generated: identity.then_some(Generated::IdentityByDefault),
            generation_expression: None,
            comment: comment.as_deref(),
        })
        .map_err(consumer)
}
