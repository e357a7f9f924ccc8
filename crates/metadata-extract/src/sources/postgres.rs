//! PostgreSQL ≥ 12, read from `pg_catalog` (not `information_schema`: it is slower and
//! hides what the role does not own).
//!
//! One connection per database, one streamed query per entity kind, every query ordered so
//! the same catalog gives the same records in the same order. Never a query on a user
//! table: only catalog relations and catalog functions.
//!
//! Columns, the bulk of any catalog, are read with `COPY (…) TO STDOUT`: the server sends
//! each row as one line of text, which costs the client far less to take apart than a typed
//! row (no per-row allocation, one UTF-8 check per line).

use std::borrow::Cow;
use std::cell::RefCell;

use futures_util::{TryStreamExt, pin_mut};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::Progress;
use crate::error::{BoxError, ExtractError};
use crate::filter::Filters;
use crate::record::{
    ColumnRef, Constraint, ConstraintKind, Database, EntityKind, Generated, Index, Lineage, Schema,
    Table, TableKind, TableRef, ViewDefinition,
};
use crate::sources::ServerConfig;
use crate::tls::{SslMode, client_config};
use crate::writer::{OutputWriter, Skipped, WriteError};

/// Schemas that are never extracted.
const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast"];

/// How to reach the server, and where to start.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// The server and login.
    pub server: ServerConfig,
    /// Database to connect to first; the others are discovered from `pg_database`.
    pub database: String,
}

fn is_system_schema(name: &str) -> bool {
    SYSTEM_SCHEMAS.contains(&name)
        || name.starts_with("pg_temp_")
        || name.starts_with("pg_toast_temp_")
}

/// Classifies a connection error: unreachable (retry may help), refused login, TLS.
fn connect_error(config: &PostgresConfig, error: tokio_postgres::Error) -> ExtractError {
    let target = config.server.target();
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        let message = db.message().to_owned();
        if *code == SqlState::INVALID_PASSWORD {
            return ExtractError::Authentication {
                target,
                user: config.server.user.clone(),
                source: error.into(),
            };
        }
        if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
        {
            // pg_hba.conf refusals share this code; one that names encryption means TLS.
            if message.contains("no encryption") || message.contains("SSL off") {
                return ExtractError::TlsRequired {
                    target,
                    source: error.into(),
                };
            }
            return ExtractError::Authentication {
                target,
                user: config.server.user.clone(),
                source: error.into(),
            };
        }
        if *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::TOO_MANY_CONNECTIONS {
            return ExtractError::Unreachable {
                target,
                source: error.into(),
            };
        }
        return ExtractError::Query {
            target,
            what: "the login",
            connection_lost: false,
            source: error.into(),
        };
    }
    let text = error.to_string();
    if text.contains("TLS")
        || text.contains("tls")
        || text.contains("certificate")
        || text.contains("server does not support TLS")
    {
        return ExtractError::Tls {
            target,
            mode: config.server.ssl_mode.as_str().to_owned(),
            source: error.into(),
        };
    }
    ExtractError::Unreachable {
        target,
        source: error.into(),
    }
}

/// The session every extraction connection runs in: catalog reads only, each statement
/// bounded in time, sorts given room, and no parallel workers.
///
/// No parallel workers: a metadata agent should not take workers from a production
/// database, and for the bulk of a catalog they do not pay. Measured on 100,000 tables x 20
/// columns (PostgreSQL 15, 2 cores), the columns query in its order took 2.08-2.10 s and 3.6 s
/// of server CPU with two workers (a parallel sort of every column, spilled to disk, and a
/// merge), 1.86-1.90 s and 2.0-2.1 s of CPU without (pg_attribute read in its index's order,
/// merge-joined: no sort of the columns at all).
///
/// The extraction benchmark's baseline runs in this same session (`benches/postgres.sh`;
/// `the_benchmark_baseline_runs_in_the_same_session` keeps them equal), and
/// `tests/postgres.rs` checks that a server applies every setting.
pub const SESSION_OPTIONS: &str = "-c default_transaction_read_only=on -c statement_timeout=300000 -c work_mem=64MB -c max_parallel_workers_per_gather=0";

async fn connect(config: &PostgresConfig, database: &str) -> Result<Client, ExtractError> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.server.host)
        .port(config.server.port)
        .dbname(database)
        .user(&config.server.user)
        .application_name("outpost")
        .connect_timeout(config.server.connect_timeout)
        .options(SESSION_OPTIONS);
    if let Some(password) = &config.server.password {
        pg.password(password.expose());
    }
    let client = if config.server.ssl_mode == SslMode::Disable {
        pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let (client, connection) = pg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| connect_error(config, e))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "PostgreSQL connection ended with an error");
            }
        });
        client
    } else {
        pg.ssl_mode(if config.server.ssl_mode == SslMode::Prefer {
            tokio_postgres::config::SslMode::Prefer
        } else {
            tokio_postgres::config::SslMode::Require
        });
        let tls_config = client_config(config.server.ssl_mode, config.server.ca_bundle.as_deref())
            .map_err(|e| ExtractError::Tls {
                target: config.server.target(),
                mode: config.server.ssl_mode.as_str().to_owned(),
                source: e.into(),
            })?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
        let (client, connection) = pg
            .connect(tls)
            .await
            .map_err(|e| connect_error(config, e))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "PostgreSQL connection ended with an error");
            }
        });
        client
    };
    Ok(client)
}

struct Reader<'a> {
    client: &'a Client,
    target: String,
    /// Where every statement sent is listed (the manifest's query audit).
    audit: crate::audit::Audit,
}

impl Reader<'_> {
    /// Streams the rows of `sql`, calling `each` on every row, without collecting them.
    async fn each(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        mut each: impl FnMut(Row) -> Result<(), WriteError>,
    ) -> Result<(), ExtractError> {
        let failed = self.failed(what);
        let mut sent = self.audit.start(sql);
        let rows = self
            .client
            .query_raw(sql, params.iter().copied())
            .await
            .map_err(failed)?;
        pin_mut!(rows);
        while let Some(row) = rows.try_next().await.map_err(failed)? {
            sent.row();
            each(row)?;
        }
        sent.done();
        Ok(())
    }
}

impl Reader<'_> {
    /// How a failed query of `what` is reported: with the target, and whether the connection
    /// itself was lost (no database error: the socket closed or timed out).
    fn failed(
        &self,
        what: &'static str,
    ) -> impl Fn(tokio_postgres::Error) -> ExtractError + Copy + '_ {
        move |error| ExtractError::Query {
            target: self.target.clone(),
            what,
            connection_lost: error.is_closed() || error.as_db_error().is_none(),
            source: BoxError::from(error),
        }
    }

    /// Streams the rows of `COPY (query) TO STDOUT` in text format, calling `each` on every
    /// row's bytes (one CopyData message each), without collecting them. A COPY takes no
    /// parameters: values go into `query` as literals ([`name_array`]).
    async fn copy_each(
        &self,
        what: &'static str,
        query: &str,
        mut each: impl FnMut(&[u8]) -> Result<(), ExtractError>,
    ) -> Result<(), ExtractError> {
        let failed = self.failed(what);
        let statement = format!("COPY ({query}) TO STDOUT");
        let mut sent = self.audit.start(&statement);
        let lines = self
            .client
            .copy_out(statement.as_str())
            .await
            .map_err(failed)?;
        pin_mut!(lines);
        while let Some(line) = lines.try_next().await.map_err(failed)? {
            sent.row();
            each(&line)?;
        }
        Ok(())
    }
}

/// The columns stream, one COPY row at a time: ordinals count visible columns (dropped ones
/// leave gaps in attnum); rows arrive grouped by table, so a running count per table is
/// enough, and the table filter is asked once per table, not once per column.
struct ColumnRows<'a> {
    target: &'a str,
    database: &'a str,
    filters: &'a Filters,
    /// The table of the last row: schema, name, visible columns so far, and whether the
    /// filter keeps it.
    current: (String, String, i32, bool),
}

impl ColumnRows<'_> {
    /// One row of the columns query, parsed and written.
    ///
    /// A named function, not a closure in the async fn that streams the rows: the state
    /// machines of async fns (and the closures in them) are compiled in the crate that polls
    /// them, the size-optimised binary; this is compiled here, at full speed. Profiled on
    /// 2,000,000 columns (with `ColumnRef::write_json` already in), the whole extraction took
    /// 1.2 s of CPU with this as a closure, 0.75 s with it here.
    #[inline(never)]
    fn row(&mut self, line: &[u8], writer: &mut OutputWriter) -> Result<(), ExtractError> {
        let malformed = |problem: String| ExtractError::Query {
            target: self.target.to_owned(),
            what: "columns",
            connection_lost: false,
            source: problem.into(),
        };
        let fields = copy_fields::<9>(line).map_err(malformed)?;
        let [
            schema,
            table,
            name,
            data_type,
            nullable,
            expression,
            attgenerated,
            identity,
            comment,
        ] = &fields;
        let (Some(schema), Some(table), Some(name), Some(data_type), Some(nullable)) = (
            schema.as_deref(),
            table.as_deref(),
            name.as_deref(),
            data_type.as_deref(),
            nullable.as_deref(),
        ) else {
            return Err(malformed(
                "a column row has NULL where the catalog has none".into(),
            ));
        };
        let current = &mut self.current;
        if current.0 != schema || current.1 != table {
            let keep = self.filters.allows_table(schema, table);
            *current = (schema.to_owned(), table.to_owned(), 0, keep);
        }
        if !current.3 {
            return Ok(());
        }
        current.2 += 1;
        let expression = expression.as_deref();
        let (generated, default, generation_expression) =
            match (attgenerated.as_deref(), identity.as_deref()) {
                (Some("s"), _) => (Some(Generated::Stored), None, expression),
                (Some("v"), _) => (Some(Generated::Virtual), None, expression),
                (_, Some("a")) => (Some(Generated::IdentityAlways), expression, None),
                (_, Some("d")) => (Some(Generated::IdentityByDefault), expression, None),
                _ => (None, expression, None),
            };
        writer.write(&ColumnRef {
            database: self.database,
            schema,
            table,
            name,
            ordinal: current.2,
            data_type,
            nullable: nullable == "t",
            default,
            generated,
            generation_expression,
            comment: comment.as_deref(),
        })?;
        Ok(())
    }
}

/// The `N` fields of one row of `COPY … TO STDOUT` (text format): tab-separated, `\N` for
/// NULL, backslash escapes in values. A field without a backslash is borrowed from the line.
fn copy_fields<const N: usize>(line: &[u8]) -> Result<[Option<Cow<'_, str>>; N], String> {
    let line = line
        .strip_suffix(b"\n")
        .ok_or("a COPY row does not end with a newline")?;
    let line = std::str::from_utf8(line).map_err(|e| format!("a COPY row is not UTF-8: {e}"))?;
    let mut fields: [Option<Cow<'_, str>>; N] = std::array::from_fn(|_| None);
    // One pass over the bytes finds the tabs and whether a field holds an escape (a tab ends a
    // field: data tabs are sent as `\t`). Fields are short: a search call per field (memchr)
    // cost more than this loop.
    let bytes = line.as_bytes();
    let (mut count, mut start, mut escaped) = (0, 0, false);
    let mut end = 0;
    while end <= bytes.len() {
        match bytes.get(end) {
            Some(b'\t') | None => {
                let field = fields
                    .get_mut(count)
                    .ok_or_else(|| format!("a COPY row has more than {N} fields"))?;
                let raw = &line[start..end];
                *field = match raw {
                    "\\N" => None,
                    raw if escaped => Some(Cow::Owned(copy_unescape(raw)?)),
                    raw => Some(Cow::Borrowed(raw)),
                };
                (count, start, escaped) = (count + 1, end + 1, false);
            }
            Some(b'\\') => escaped = true,
            Some(_) => {}
        }
        end += 1;
    }
    if count < N {
        return Err(format!("a COPY row has fewer than {N} fields"));
    }
    Ok(fields)
}

/// Undoes COPY's text escapes: `\b \f \n \r \t \v`, octal `\ooo`, hex `\xhh`, and a
/// backslash before any other character (`\\`) standing for that character.
fn copy_unescape(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&c) = bytes.get(i) else {
            return Err("a COPY field ends with a lone backslash".into());
        };
        i += 1;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'x' if bytes.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match bytes.get(i).and_then(|d| char::from(*d).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|e| format!("an unescaped COPY field is not UTF-8: {e}"))
}

/// `names` as an SQL `name[]` literal, for a statement that takes no parameters (COPY).
/// Escape-string syntax (`E'…'`) reads the same whatever `standard_conforming_strings` is.
fn name_array(names: &[String]) -> String {
    let mut sql = String::from("ARRAY[");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("E'");
        for c in name.chars() {
            match c {
                '\'' => sql.push_str("''"),
                '\\' => sql.push_str("\\\\"),
                c => sql.push(c),
            }
        }
        sql.push('\'');
    }
    sql.push_str("]::pg_catalog.name[]");
    sql
}

fn text(row: &Row, index: usize) -> Option<String> {
    row.get::<_, Option<String>>(index)
}

/// Extracts every visible, included database.
pub async fn extract(
    config: &PostgresConfig,
    filters: &Filters,
    writer: &mut OutputWriter,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    let first = connect(config, &config.database).await?;
    let audit = writer.audit();
    let reader = Reader {
        client: &first,
        target: format!("{}/{}", config.server.target(), config.database),
        audit: audit.clone(),
    };
    let mut databases = Vec::new();
    reader
        .each(
            "databases",
            "SELECT d.datname, pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.shobj_description(d.oid, 'pg_database'),
                    pg_catalog.pg_encoding_to_char(d.encoding), pg_catalog.has_database_privilege(d.oid, 'CONNECT')
             FROM pg_catalog.pg_database d
             WHERE d.datallowconn AND NOT d.datistemplate
             ORDER BY d.datname COLLATE \"C\"",
            &[],
            |row| {
                databases.push((
                    Database { name: row.get(0), owner: text(&row, 1), comment: text(&row, 2), encoding: text(&row, 3), shared_from: None },
                    row.get::<_, bool>(4),
                ));
                Ok(())
            },
        )
        .await?;
    for (database, can_connect) in databases {
        if !filters.databases.allows(&database.name) {
            continue;
        }
        if !can_connect {
            writer.skip(Skipped {
                kind: EntityKind::Database,
                name: database.name.clone(),
                reason: "no CONNECT privilege".into(),
            });
            continue;
        }
        let name = database.name.clone();
        writer.write(&database)?;
        progress.database(&name);
        let client = if name == config.database {
            None
        } else {
            Some(connect(config, &name).await?)
        };
        let client = client.as_ref().unwrap_or(&first);
        let other = connect(config, &name).await?;
        let target = format!("{}/{name}", config.server.target());
        let reader = Reader {
            client,
            target: target.clone(),
            audit: audit.clone(),
        };
        let second = Reader {
            client: &other,
            target,
            audit: audit.clone(),
        };
        extract_database(
            &reader,
            &second,
            &name,
            filters,
            &RefCell::new(&mut *writer),
            progress,
        )
        .await?;
    }
    Ok(())
}

/// Extracts one database over two connections: the columns (the bulk of any catalog) on
/// one while the other kinds are read on the other, so the server's work on both overlaps
/// the client's. Each stream still gets its records in its own query's order.
async fn extract_database(
    reader: &Reader<'_>,
    second: &Reader<'_>,
    database: &str,
    filters: &Filters,
    writer: &RefCell<&mut OutputWriter>,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    // Schemas: visible and included ones are extracted; ones without USAGE are listed as
    // skipped (their relations are visible in the catalog, but the role may not use them).
    let mut schemas: Vec<String> = Vec::new();
    reader
        .each(
            "schemas",
            "SELECT n.nspname, pg_catalog.pg_get_userbyid(n.nspowner), pg_catalog.obj_description(n.oid, 'pg_namespace'),
                    pg_catalog.has_schema_privilege(n.oid, 'USAGE')
             FROM pg_catalog.pg_namespace n
             ORDER BY n.nspname COLLATE \"C\"",
            &[],
            |row| {
                let name: String = row.get(0);
                if is_system_schema(&name) || !filters.schemas.allows(&name) {
                    return Ok(());
                }
                if !row.get::<_, bool>(3) {
                    writer.borrow_mut().skip(Skipped { kind: EntityKind::Schema, name: format!("{database}.{name}"), reason: "no USAGE privilege".into() });
                    return Ok(());
                }
                writer.borrow_mut().write(&Schema { database: database.to_owned(), name: name.clone(), owner: text(&row, 1), comment: text(&row, 2) })?;
                schemas.push(name);
                Ok(())
            },
        )
        .await?;
    let visible: &(dyn ToSql + Sync) = &schemas;
    let keep = |schema: &str, table: &str| filters.allows_table(schema, table);

    let columns = async {
        // Columns are the bulk of a catalog: ordered by table in the catalog's object order
        // (the order of pg_attribute's own index) rather than by name, which costs the server a
        // sort of every column by text keys (twice the time of the whole query). The same catalog
        // still gives the same order.
        let query = format!(
            "SELECT n.nspname, c.relname, a.attname,
                    pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                    pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text, a.attidentity::text,
                    ds.description
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             LEFT JOIN pg_catalog.pg_description ds
                  ON ds.objoid = a.attrelid AND ds.classoid = 'pg_catalog.pg_class'::regclass AND ds.objsubid = a.attnum
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
               AND n.nspname = ANY({})
             ORDER BY a.attrelid, a.attnum",
            name_array(&schemas)
        );
        let mut rows = ColumnRows {
            target: &reader.target,
            database,
            filters,
            current: (String::new(), String::new(), 0, false),
        };
        reader
            .copy_each("columns", &query, |line| {
                rows.row(line, &mut writer.borrow_mut())
            })
            .await?;
        progress.stage(database, EntityKind::Column);
        Ok::<(), ExtractError>(())
    };
    let others = async {
        second
            .each(
                "tables",
                "SELECT n.nspname, c.relname, c.relkind::text, c.relispartition, pg_catalog.pg_get_userbyid(c.relowner),
                        ds.description,
                        CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') AND c.reltuples >= 0 THEN c.reltuples::int8 END,
                        pn.nspname, p.relname,
                        CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END
                 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
                 LEFT JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                 LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
                 LEFT JOIN pg_catalog.pg_description ds
                      ON ds.objoid = c.oid AND ds.classoid = 'pg_catalog.pg_class'::regclass AND ds.objsubid = 0
                 WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND n.nspname = ANY($1)
                 ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
                &[visible],
                |row| {
                    let (schema, name): (String, String) = (row.get(0), row.get(1));
                    if !keep(&schema, &name) {
                        return Ok(());
                    }
                    let relkind: String = row.get(2);
                    let kind = match (relkind.as_str(), row.get::<_, bool>(3)) {
                        (_, true) => TableKind::Partition,
                        ("v", _) => TableKind::View,
                        ("m", _) => TableKind::MaterializedView,
                        ("f", _) => TableKind::ForeignTable,
                        ("p", _) => TableKind::PartitionedTable,
                        _ => TableKind::Table,
                    };
                    let partition_of = match (text(&row, 7), text(&row, 8)) {
                        (Some(schema), Some(name)) => Some(TableRef { schema, name }),
                        _ => None,
                    };
                    writer.borrow_mut().write(&Table {
                        owner: text(&row, 4),
                        comment: text(&row, 5),
                        row_count_estimate: row.get(6),
                        partition_of,
                        partition_bound: text(&row, 9),
                        ..Table::new(database, &schema, name, kind)
                    })
                },
            )
            .await?;
        progress.stage(database, EntityKind::Table);
        second
            .each(
                "constraints",
                "SELECT n.nspname, c.relname, con.conname, con.contype::text,
                        ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, pos)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.pos),
                        rn.nspname, r.relname,
                        CASE WHEN con.contype = 'f' THEN ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, pos)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.pos) END,
                        CASE WHEN con.contype = 'f' THEN con.confupdtype::text END,
                        CASE WHEN con.contype = 'f' THEN con.confdeltype::text END,
                        pg_catalog.pg_get_constraintdef(con.oid, true)
                 FROM pg_catalog.pg_constraint con
                 JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
                 LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
                 WHERE con.contype IN ('p', 'u', 'f', 'c', 'x') AND n.nspname = ANY($1)
                 ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\", con.conname COLLATE \"C\"",
                &[visible],
                |row| {
                    let (schema, table): (String, String) = (row.get(0), row.get(1));
                    if !keep(&schema, &table) {
                        return Ok(());
                    }
                    let contype: String = row.get(3);
                    let kind = match contype.as_str() {
                        "p" => ConstraintKind::PrimaryKey,
                        "u" => ConstraintKind::Unique,
                        "f" => ConstraintKind::ForeignKey,
                        "x" => ConstraintKind::Exclusion,
                        _ => ConstraintKind::Check,
                    };
                    let referenced_table = match (text(&row, 5), text(&row, 6)) {
                        (Some(schema), Some(name)) if kind == ConstraintKind::ForeignKey => Some(TableRef { schema, name }),
                        _ => None,
                    };
                    writer.borrow_mut().write(&Constraint {
                        database: database.to_owned(),
                        schema,
                        table,
                        name: row.get(2),
                        kind,
                        columns: row.get::<_, Option<Vec<String>>>(4).unwrap_or_default(),
                        referenced_table,
                        referenced_columns: row.get(7),
                        on_update: text(&row, 8).map(|a| foreign_key_action(&a)),
                        on_delete: text(&row, 9).map(|a| foreign_key_action(&a)),
                        definition: text(&row, 10),
                    })
                },
            )
            .await?;

        second
            .each(
                "indexes",
                "SELECT n.nspname, t.relname, i.relname, x.indisunique, x.indisprimary,
                        ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) k),
                        am.amname, pg_catalog.pg_get_expr(x.indpred, x.indrelid, true), pg_catalog.pg_get_indexdef(x.indexrelid)
                 FROM pg_catalog.pg_index x
                 JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
                 JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
                 JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
                 JOIN pg_catalog.pg_am am ON am.oid = i.relam
                 WHERE n.nspname = ANY($1) AND t.relkind IN ('r', 'm', 'p', 'f')
                 ORDER BY n.nspname COLLATE \"C\", t.relname COLLATE \"C\", i.relname COLLATE \"C\"",
                &[visible],
                |row| {
                    let (schema, table): (String, String) = (row.get(0), row.get(1));
                    if !keep(&schema, &table) {
                        return Ok(());
                    }
                    writer.borrow_mut().write(&Index {
                        database: database.to_owned(),
                        schema,
                        table,
                        name: row.get(2),
                        unique: row.get(3),
                        primary: row.get(4),
                        columns: row.get::<_, Option<Vec<String>>>(5).unwrap_or_default(),
                        method: text(&row, 6),
                        predicate: text(&row, 7),
                        definition: text(&row, 8),
                    })
                },
            )
            .await?;

        second
            .each(
                "view definitions",
                "SELECT n.nspname, c.relname, pg_catalog.pg_get_viewdef(c.oid, true)
                 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($1)
                 ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
                &[visible],
                |row| {
                    let (schema, view): (String, String) = (row.get(0), row.get(1));
                    if !keep(&schema, &view) {
                        return Ok(());
                    }
                    let Some(definition) = text(&row, 2) else {
                        return Ok(());
                    };
                    writer.borrow_mut().write(&ViewDefinition {
                        database: database.to_owned(),
                        schema,
                        view,
                        definition,
                    })
                },
            )
            .await?;

        // Lineage: the relations each view's rewrite rule depends on.
        second
            .each(
                "lineage",
                "SELECT l.view_schema, l.view_name, l.source_schema, l.source_name FROM (
                 SELECT DISTINCT vn.nspname AS view_schema, v.relname AS view_name, sn.nspname AS source_schema, s.relname AS source_name
                 FROM pg_catalog.pg_rewrite r
                 JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
                 JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
                 JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'n'
                 JOIN pg_catalog.pg_class s ON s.oid = d.refobjid
                 JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
                 WHERE v.relkind IN ('v', 'm') AND s.oid <> v.oid AND vn.nspname = ANY($1)) l
                 ORDER BY l.view_schema COLLATE \"C\", l.view_name COLLATE \"C\", l.source_schema COLLATE \"C\", l.source_name COLLATE \"C\"",
                &[visible],
                |row| {
                    let (schema, view): (String, String) = (row.get(0), row.get(1));
                    if !keep(&schema, &view) {
                        return Ok(());
                    }
                    writer.borrow_mut().write(&Lineage {
                        database: database.to_owned(),
                        view: TableRef { schema, name: view },
                        source: TableRef { schema: row.get(2), name: row.get(3) },
                        source_database: None,
                    })
                },
            )
            .await?;
        Ok::<(), ExtractError>(())
    };
    tokio::try_join!(columns, others)?;
    progress.stage(database, EntityKind::Lineage);
    Ok(())
}

fn foreign_key_action(code: &str) -> String {
    match code {
        "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_borrow_plain_values_and_unescape_the_others() {
        let fields = copy_fields::<4>(b"public\tit's a \\\\ name\t\\N\ttab\\there\\nand\\rthere\n")
            .expect("a valid row");
        assert!(matches!(fields[0], Some(Cow::Borrowed("public"))));
        assert_eq!(fields[1].as_deref(), Some("it's a \\ name"));
        assert_eq!(fields[2], None);
        assert_eq!(fields[3].as_deref(), Some("tab\there\nand\rthere"));
        // `\N` inside a value is escaped by the server; only a whole field of `\N` is NULL.
        let fields = copy_fields::<2>(b"\\\\N\t\n").expect("a valid row");
        assert_eq!(fields[0].as_deref(), Some("\\N"));
        assert_eq!(fields[1].as_deref(), Some(""), "an empty field is not NULL");
    }

    #[test]
    fn copy_unescape_reads_every_form_the_text_format_allows() {
        assert_eq!(
            copy_unescape("\\b\\f\\v\\101\\x42\\7\\q\\\\").as_deref(),
            Ok("\u{8}\u{c}\u{b}AB\u{7}q\\")
        );
        assert_eq!(copy_unescape("\\xzz").as_deref(), Ok("xzz"));
        assert_eq!(copy_unescape("ünï\\tcödé").as_deref(), Ok("ünï\tcödé"));
        assert!(copy_unescape("lone\\").is_err());
        assert!(
            copy_unescape("\\377").is_err(),
            "a lone 0xff byte is not UTF-8"
        );
    }

    #[test]
    fn malformed_copy_rows_are_errors_not_panics() {
        assert!(copy_fields::<2>(b"a\tb").is_err(), "no newline");
        assert!(copy_fields::<2>(b"a\n").is_err(), "too few fields");
        assert!(copy_fields::<2>(b"a\tb\tc\n").is_err(), "too many fields");
        assert!(copy_fields::<1>(b"\xff\n").is_err(), "not UTF-8");
    }

    #[test]
    fn the_benchmark_baseline_runs_in_the_same_session() {
        let bench = include_str!("../../benches/postgres.sh");
        let options = format!("PGOPTIONS=\"{SESSION_OPTIONS}\"");
        assert!(
            bench.contains(&options),
            "benches/postgres.sh's psql baseline must run with outpost's session: {options}"
        );
    }

    #[test]
    fn name_arrays_quote_every_name() {
        assert_eq!(name_array(&[]), "ARRAY[]::pg_catalog.name[]");
        assert_eq!(
            name_array(&["public".into(), "it's \\ odd".into()]),
            "ARRAY[E'public', E'it''s \\\\ odd']::pg_catalog.name[]"
        );
    }
}
