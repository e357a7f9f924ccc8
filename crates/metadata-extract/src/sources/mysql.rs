//! MySQL 8 and MariaDB ≥ 10.6, read from `information_schema` (their catalog).
//!
//! MySQL has no level above schemas ("databases" in MySQL's words): the server is the
//! database record, named `host:port`, and each MySQL database is a schema. One streamed,
//! byte-ordered query per entity kind; never a query on a user table. The server shows a
//! role only the schemas it holds some privilege on, so an unreadable schema is invisible
//! rather than skipped. Lineage comes from `VIEW_TABLE_USAGE` where the server has it
//! (MySQL 8.0.13+); MariaDB gives none cheaply.

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, SslOpts};

use crate::Progress;
use crate::error::{BoxError, ExtractError};
use crate::filter::Filters;
use crate::record::{
    Column, Constraint, ConstraintKind, Database, EntityKind, Generated, Index, Lineage, Schema,
    Table, TableKind, TableRef, ViewDefinition,
};
use crate::sources::ServerConfig;
use crate::tls::SslMode;
use crate::writer::{OutputWriter, Skipped, WriteError};

const SYSTEM_SCHEMAS: &str = "('mysql', 'information_schema', 'performance_schema', 'sys')";

/// How to reach the server: MySQL needs nothing beyond the server and login.
pub type MysqlConfig = ServerConfig;

fn connect_error(config: &MysqlConfig, error: mysql_async::Error) -> ExtractError {
    let target = config.target();
    match &error {
        mysql_async::Error::Server(server) => match server.code {
            // Access denied (user or database).
            1044 | 1045 | 1698 => ExtractError::Authentication {
                target,
                user: config.user.clone(),
                source: error.into(),
            },
            // Insecure transport prohibited (MySQL 3159; MariaDB reports it as 1045 with a message).
            3159 => ExtractError::TlsRequired {
                target,
                source: error.into(),
            },
            1040 | 1203 => ExtractError::Unreachable {
                target,
                source: error.into(),
            },
            _ => ExtractError::Query {
                target,
                what: "the login",
                connection_lost: false,
                source: error.into(),
            },
        },
        mysql_async::Error::Io(io)
            if io.to_string().to_lowercase().contains("tls")
                || io.to_string().contains("certificate") =>
        {
            ExtractError::Tls {
                target,
                mode: config.ssl_mode.as_str().to_owned(),
                source: error.into(),
            }
        }
        mysql_async::Error::Driver(driver)
            if driver.to_string().contains("TLS") || driver.to_string().contains("SSL") =>
        {
            ExtractError::Tls {
                target,
                mode: config.ssl_mode.as_str().to_owned(),
                source: error.into(),
            }
        }
        _ => ExtractError::Unreachable {
            target,
            source: error.into(),
        },
    }
}

fn ssl_opts(config: &MysqlConfig) -> Option<SslOpts> {
    let mut opts = SslOpts::default();
    if let Some(bundle) = &config.ca_bundle {
        opts = opts.with_root_certs(vec![bundle.clone().into()]);
    }
    match config.ssl_mode {
        SslMode::Disable => None,
        SslMode::Prefer | SslMode::Require => Some(
            opts.with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        SslMode::VerifyCa => Some(opts.with_danger_skip_domain_validation(true)),
        SslMode::VerifyFull => Some(opts),
    }
}

async fn connect(config: &MysqlConfig, audit: &crate::audit::Audit) -> Result<Conn, ExtractError> {
    let base = OptsBuilder::default()
        .ip_or_hostname(config.host.clone())
        .tcp_port(config.port)
        .user(Some(config.user.clone()))
        .pass(config.password.as_ref().map(|p| p.expose().to_owned()))
        .prefer_socket(false)
        .conn_ttl(None::<Duration>);
    let attempt = |tls: Option<SslOpts>| {
        let opts = base.clone().ssl_opts(tls);
        async move {
            tokio::time::timeout(config.connect_timeout, Conn::new(opts))
                .await
                .unwrap_or_else(|_| {
                    Err(mysql_async::Error::Io(mysql_async::IoError::Io(
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
                    )))
                })
        }
    };
    let mut conn = match attempt(ssl_opts(config)).await {
        Ok(conn) => conn,
        // `prefer`: fall back to plain text when the server offers no TLS.
        Err(error)
            if config.ssl_mode == SslMode::Prefer
                && !matches!(error, mysql_async::Error::Server(_)) =>
        {
            tracing::info!(%error, "TLS not available; ssl-mode prefer falls back to plain text");
            attempt(None).await.map_err(|e| connect_error(config, e))?
        }
        Err(error) => return Err(connect_error(config, error)),
    };
    // Catalog reads only.
    let read_only = "SET SESSION TRANSACTION READ ONLY";
    let sent = audit.start(read_only);
    conn.query_drop(read_only)
        .await
        .map_err(|e| connect_error(config, e))?;
    sent.done();
    Ok(conn)
}

fn text(row: &Row, index: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(index)
        .and_then(Result::ok)
        .flatten()
}

fn number(row: &Row, index: usize) -> Option<i64> {
    row.get_opt::<Option<i64>, usize>(index)
        .and_then(Result::ok)
        .flatten()
}

struct Reader {
    target: String,
    /// Where every statement sent is listed (the manifest's query audit).
    audit: crate::audit::Audit,
}

impl Reader {
    async fn each(
        &self,
        conn: &mut Conn,
        what: &'static str,
        sql: &str,
        mut each: impl FnMut(Row) -> Result<(), WriteError>,
    ) -> Result<(), ExtractError> {
        let failed = |error: mysql_async::Error| {
            let connection_lost = !matches!(error, mysql_async::Error::Server(_));
            ExtractError::Query {
                target: self.target.clone(),
                what,
                connection_lost,
                source: BoxError::from(error),
            }
        };
        let mut sent = self.audit.start(sql);
        let mut result = conn.query_iter(sql).await.map_err(failed)?;
        while let Some(row) = result.next().await.map_err(failed)? {
            sent.row();
            each(row)?;
        }
        sent.done();
        Ok(())
    }
}

/// Extracts every visible, included schema of the server.
pub async fn extract(
    config: &MysqlConfig,
    filters: &Filters,
    writer: &mut OutputWriter,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    let audit = writer.audit();
    let mut conn = connect(config, &audit).await?;
    let reader = Reader {
        target: config.target(),
        audit: audit.clone(),
    };
    let mut sent = audit.start("SELECT VERSION()");
    let version: String = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| connect_error(config, e))?
        .unwrap_or_default();
    sent.row();
    sent.done();
    let mariadb = version.contains("MariaDB");
    let database = config.target();
    writer.write(&Database {
        name: database.clone(),
        owner: None,
        comment: Some(format!("server {version}")),
        encoding: None,
        shared_from: None,
    })?;
    progress.database(&database);

    let mut schemas = BTreeSet::new();
    reader
        .each(
            &mut conn,
            "schemas",
            &format!("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN {SYSTEM_SCHEMAS} ORDER BY BINARY SCHEMA_NAME"),
            |row| {
                let Some(name) = text(&row, 0) else { return Ok(()) };
                if filters.schemas.allows(&name) {
                    writer.write(&Schema { database: database.clone(), name: name.clone(), owner: None, comment: None })?;
                    schemas.insert(name);
                }
                Ok(())
            },
        )
        .await?;
    let keep =
        |schema: &str, table: &str| schemas.contains(schema) && filters.allows_table(schema, table);

    reader
        .each(
            &mut conn,
            "tables",
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_COMMENT, TABLE_ROWS, CREATE_OPTIONS
                 FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN {SYSTEM_SCHEMAS}
                 ORDER BY BINARY TABLE_SCHEMA, BINARY TABLE_NAME"
            ),
            |row| {
                let (Some(schema), Some(name)) = (text(&row, 0), text(&row, 1)) else { return Ok(()) };
                if !keep(&schema, &name) {
                    return Ok(());
                }
                let view = text(&row, 2).is_some_and(|t| t.contains("VIEW"));
                let partitioned = text(&row, 5).is_some_and(|o| o.contains("partitioned"));
                let kind = match (view, partitioned) {
                    (true, _) => TableKind::View,
                    (false, true) => TableKind::PartitionedTable,
                    _ => TableKind::Table,
                };
                writer.write(&Table {
                    // Views carry the comment `VIEW`; that is not a comment.
                    comment: text(&row, 3).filter(|c| !(c.is_empty() || (view && c == "VIEW"))),
                    row_count_estimate: if view { None } else { number(&row, 4) },
                    ..Table::new(&database, &schema, name, kind)
                })
            },
        )
        .await?;
    progress.stage(&database, EntityKind::Table);

    reader
        .each(
            &mut conn,
            "columns",
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT,
                        EXTRA, GENERATION_EXPRESSION, COLUMN_COMMENT
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN {SYSTEM_SCHEMAS}
                 ORDER BY BINARY TABLE_SCHEMA, BINARY TABLE_NAME, ORDINAL_POSITION"
            ),
            |row| {
                let (Some(schema), Some(table)) = (text(&row, 0), text(&row, 1)) else { return Ok(()) };
                if !keep(&schema, &table) {
                    return Ok(());
                }
                let extra = text(&row, 7).unwrap_or_default().to_uppercase();
                let generated = if extra.contains("VIRTUAL GENERATED") {
                    Some(Generated::Virtual)
                } else if extra.contains("STORED GENERATED") || extra.contains("PERSISTENT GENERATED") {
                    Some(Generated::Stored)
                } else if extra.contains("AUTO_INCREMENT") {
                    Some(Generated::IdentityByDefault)
                } else {
                    None
                };
                let is_expression = matches!(generated, Some(Generated::Virtual | Generated::Stored));
                writer.write(&Column {
                    database: database.clone(),
                    schema,
                    table,
                    name: text(&row, 2).unwrap_or_default(),
                    ordinal: number(&row, 3).and_then(|n| i32::try_from(n).ok()).unwrap_or(0),
                    data_type: text(&row, 4).unwrap_or_default(),
                    nullable: text(&row, 5).as_deref() == Some("YES"),
                    default: if is_expression { None } else { text(&row, 6) },
                    generated,
                    generation_expression: if is_expression { text(&row, 8).filter(|e| !e.is_empty()) } else { None },
                    comment: text(&row, 9).filter(|c| !c.is_empty()),
                })
            },
        )
        .await?;
    progress.stage(&database, EntityKind::Column);

    // Constraints: one row per key column, grouped by constraint.
    let check_join = if mariadb {
        "AND cc.TABLE_NAME = tc.TABLE_NAME"
    } else {
        ""
    };
    let mut pending: Option<Constraint> = None;
    reader
        .each(
            &mut conn,
            "constraints",
            &format!(
                "SELECT tc.TABLE_SCHEMA, tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE, k.COLUMN_NAME,
                        k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME,
                        rc.UPDATE_RULE, rc.DELETE_RULE, cc.CHECK_CLAUSE
                 FROM information_schema.TABLE_CONSTRAINTS tc
                 LEFT JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA
                      AND k.TABLE_NAME = tc.TABLE_NAME AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
                 LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS rc ON rc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA
                      AND rc.TABLE_NAME = tc.TABLE_NAME AND rc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
                 LEFT JOIN information_schema.CHECK_CONSTRAINTS cc ON tc.CONSTRAINT_TYPE = 'CHECK'
                      AND cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME {check_join}
                 WHERE tc.TABLE_SCHEMA NOT IN {SYSTEM_SCHEMAS}
                 ORDER BY BINARY tc.TABLE_SCHEMA, BINARY tc.TABLE_NAME, BINARY tc.CONSTRAINT_NAME, k.ORDINAL_POSITION"
            ),
            |row| {
                let (Some(schema), Some(table), Some(name)) = (text(&row, 0), text(&row, 1), text(&row, 2)) else { return Ok(()) };
                if !keep(&schema, &table) {
                    return Ok(());
                }
                let same = pending.as_ref().is_some_and(|c| c.schema == schema && c.table == table && c.name == name);
                if !same {
                    if let Some(done) = pending.take() {
                        writer.write(&done)?;
                    }
                    let kind = match text(&row, 3).as_deref() {
                        Some("PRIMARY KEY") => ConstraintKind::PrimaryKey,
                        Some("UNIQUE") => ConstraintKind::Unique,
                        Some("FOREIGN KEY") => ConstraintKind::ForeignKey,
                        _ => ConstraintKind::Check,
                    };
                    let foreign = kind == ConstraintKind::ForeignKey;
                    pending = Some(Constraint {
                        database: database.clone(),
                        schema,
                        table,
                        name,
                        kind,
                        columns: Vec::new(),
                        referenced_table: match (text(&row, 5), text(&row, 6)) {
                            (Some(schema), Some(name)) if foreign => Some(TableRef { schema, name }),
                            _ => None,
                        },
                        referenced_columns: foreign.then(Vec::new),
                        on_update: text(&row, 8),
                        on_delete: text(&row, 9),
                        definition: text(&row, 10).map(|clause| format!("CHECK ({clause})")),
                    });
                }
                let constraint = pending.as_mut().expect("set above");
                if let Some(column) = text(&row, 4) {
                    constraint.columns.push(column);
                }
                if let (Some(referenced), Some(columns)) = (text(&row, 7), constraint.referenced_columns.as_mut()) {
                    columns.push(referenced);
                }
                Ok(())
            },
        )
        .await?;
    if let Some(done) = pending.take() {
        writer.write(&done)?;
    }

    let mut pending: Option<Index> = None;
    reader
        .each(
            &mut conn,
            "indexes",
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, INDEX_TYPE
                 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA NOT IN {SYSTEM_SCHEMAS}
                 ORDER BY BINARY TABLE_SCHEMA, BINARY TABLE_NAME, BINARY INDEX_NAME, SEQ_IN_INDEX"
            ),
            |row| {
                let (Some(schema), Some(table), Some(name)) =
                    (text(&row, 0), text(&row, 1), text(&row, 2))
                else {
                    return Ok(());
                };
                if !keep(&schema, &table) {
                    return Ok(());
                }
                if !pending
                    .as_ref()
                    .is_some_and(|i| i.schema == schema && i.table == table && i.name == name)
                {
                    if let Some(done) = pending.take() {
                        writer.write(&done)?;
                    }
                    pending = Some(Index {
                        database: database.clone(),
                        primary: name == "PRIMARY",
                        schema,
                        table,
                        name,
                        unique: number(&row, 3) == Some(0),
                        columns: Vec::new(),
                        method: text(&row, 5),
                        predicate: None,
                        definition: None,
                    });
                }
                // A functional key part has no column name.
                let column = text(&row, 4).unwrap_or_else(|| "<expression>".to_owned());
                pending.as_mut().expect("set above").columns.push(column);
                Ok(())
            },
        )
        .await?;
    if let Some(done) = pending.take() {
        writer.write(&done)?;
    }

    reader
        .each(
            &mut conn,
            "view definitions",
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS
                 WHERE TABLE_SCHEMA NOT IN {SYSTEM_SCHEMAS} ORDER BY BINARY TABLE_SCHEMA, BINARY TABLE_NAME"
            ),
            |row| {
                let (Some(schema), Some(view)) = (text(&row, 0), text(&row, 1)) else { return Ok(()) };
                if !keep(&schema, &view) {
                    return Ok(());
                }
                match text(&row, 2).filter(|d| !d.is_empty()) {
                    Some(definition) => writer.write(&ViewDefinition { database: database.clone(), schema, view, definition }),
                    // The server shows a view's text only to its definer or to a user with
                    // SHOW VIEW and SELECT on it; say so rather than write an empty text.
                    None => {
                        writer.skip(Skipped {
                            kind: EntityKind::ViewDefinition,
                            name: format!("{schema}.{view}"),
                            reason: "definition hidden: needs SHOW VIEW and SELECT on the view".into(),
                        });
                        Ok(())
                    }
                }
            },
        )
        .await?;

    if !mariadb {
        reader
            .each(
                &mut conn,
                "lineage",
                &format!(
                    "SELECT VIEW_SCHEMA, VIEW_NAME, TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEW_TABLE_USAGE
                     WHERE VIEW_SCHEMA NOT IN {SYSTEM_SCHEMAS}
                     ORDER BY BINARY VIEW_SCHEMA, BINARY VIEW_NAME, BINARY TABLE_SCHEMA, BINARY TABLE_NAME"
                ),
                |row| {
                    let (Some(schema), Some(view), Some(source_schema), Some(source)) = (text(&row, 0), text(&row, 1), text(&row, 2), text(&row, 3)) else {
                        return Ok(());
                    };
                    if !keep(&schema, &view) {
                        return Ok(());
                    }
                    writer.write(&Lineage {
                        database: database.clone(),
                        view: TableRef { schema, name: view },
                        source: TableRef { schema: source_schema, name: source },
                        source_database: None,
                    })
                },
            )
            .await?;
    }
    progress.stage(&database, EntityKind::Lineage);
    conn.disconnect().await.ok();
    Ok(())
}
