//! SQLite: a database file, opened read-only, read from `sqlite_schema` and the `pragma_*`
//! table-valued functions. Never a query on a user table.
//!
//! SQLite has one schema per file (`main`); the database record is named after the file.
//! Not available from SQLite's catalog, and so `null` or absent: owners, comments, check
//! constraints, partial-index predicates and view lineage.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use crate::Progress;
use crate::error::ExtractError;
use crate::filter::Filters;
use crate::record::{
    Column, Constraint, ConstraintKind, Database, EntityKind, Generated, Index, Schema, Table,
    TableKind, TableRef, ViewDefinition,
};
use crate::writer::OutputWriter;

const SCHEMA: &str = "main";

fn query_error<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(rusqlite::Error) -> ExtractError + 'a {
    move |error| ExtractError::Query {
        target: path.display().to_string(),
        what,
        connection_lost: false,
        source: error.into(),
    }
}

thread_local! {
    /// The query audit of the SQLite extraction running on this thread: rusqlite's trace hook
    /// is a plain function, so the audit it records into is found here.
    static TRACED: std::cell::RefCell<Option<Traced>> = const { std::cell::RefCell::new(None) };
}

struct Traced {
    audit: crate::audit::Audit,
    /// Rows read so far per statement still running.
    rows: std::collections::HashMap<String, u64>,
}

/// SQLite's trace events: each row counted, each finished statement recorded.
fn trace(event: rusqlite::trace::TraceEvent<'_>) {
    use rusqlite::trace::TraceEvent;
    TRACED.with(|traced| {
        let mut traced = traced.borrow_mut();
        let Some(traced) = traced.as_mut() else {
            return;
        };
        // SQLite's own statements (its schema read) have no SQL text: `StmtRef::sql` would
        // read a null pointer. Only those have no expanded text either.
        let ours = |statement: &rusqlite::trace::StmtRef<'_>| statement.expanded_sql().is_some();
        match event {
            TraceEvent::Row(statement) if ours(&statement) => {
                let sql = statement.sql();
                match traced.rows.get_mut(sql.as_ref()) {
                    Some(rows) => *rows += 1,
                    None => {
                        traced.rows.insert(sql.into_owned(), 1);
                    }
                }
            }
            TraceEvent::Profile(statement, elapsed) if ours(&statement) => {
                let sql = statement.sql();
                let rows = traced.rows.remove(sql.as_ref()).unwrap_or(0);
                traced.audit.record(&sql, rows, elapsed);
            }
            _ => {}
        }
    });
}

/// Lists every statement sent on this thread into `audit` until dropped.
struct TraceGuard;

impl TraceGuard {
    fn install(audit: crate::audit::Audit) -> Self {
        TRACED.with(|traced| {
            *traced.borrow_mut() = Some(Traced {
                audit,
                rows: std::collections::HashMap::new(),
            });
        });
        Self
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        TRACED.with(|traced| traced.borrow_mut().take());
    }
}

fn open(path: &Path) -> Result<Connection, ExtractError> {
    if !path.is_file() {
        return Err(ExtractError::Unreachable {
            target: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such database file")
                .into(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection =
        Connection::open_with_flags(path, flags).map_err(query_error(path, "the database file"))?;
    // Every statement is listed in the query audit (see `TRACED`).
    connection.trace_v2(
        rusqlite::trace::TraceEventCodes::SQLITE_TRACE_ROW
            | rusqlite::trace::TraceEventCodes::SQLITE_TRACE_PROFILE,
        Some(trace),
    );
    // Fail now, clearly, if the file is not a database.
    connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
            row.get::<_, i64>(0)
        })
        .map_err(query_error(path, "the database file"))?;
    Ok(connection)
}

struct Relation {
    name: String,
    kind: TableKind,
    sql: Option<String>,
}

/// Extracts one SQLite file.
pub fn extract(
    path: &Path,
    filters: &Filters,
    writer: &mut OutputWriter,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    let _traced = TraceGuard::install(writer.audit());
    let connection = open(path)?;
    let database = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "main".into());
    let encoding: Option<String> = connection
        .query_row("PRAGMA encoding", [], |row| row.get(0))
        .ok();
    writer.write(&Database {
        name: database.clone(),
        owner: None,
        comment: None,
        encoding,
        shared_from: None,
    })?;
    progress.database(&database);
    writer.write(&Schema {
        database: database.clone(),
        name: SCHEMA.into(),
        owner: None,
        comment: None,
    })?;

    let mut statement = connection
        .prepare(
            "SELECT name, type, sql FROM sqlite_schema
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY name",
        )
        .map_err(query_error(path, "tables"))?;
    let relations: Vec<Relation> = statement
        .query_map([], |row| {
            let kind: String = row.get(1)?;
            Ok(Relation {
                name: row.get(0)?,
                kind: if kind == "view" {
                    TableKind::View
                } else {
                    TableKind::Table
                },
                sql: row.get(2)?,
            })
        })
        .map_err(query_error(path, "tables"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(query_error(path, "tables"))?
        .into_iter()
        .filter(|r| filters.allows_table(SCHEMA, &r.name))
        .collect();
    let has_stats: bool = connection
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(query_error(path, "statistics"))?
        > 0;
    let estimate = |table: &str| -> Option<i64> {
        if !has_stats {
            return None;
        }
        // sqlite_stat1's `stat` begins with the row count ANALYZE saw: an estimate, never a count.
        connection
            .query_row(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = ?1 ORDER BY idx IS NOT NULL LIMIT 1",
                params![table],
                |row| row.get::<_, String>(0),
            )
            .ok()
            .and_then(|stat| stat.split_whitespace().next().and_then(|n| n.parse().ok()))
    };
    for relation in &relations {
        writer.write(&Table {
            row_count_estimate: if relation.kind == TableKind::Table {
                estimate(&relation.name)
            } else {
                None
            },
            ..Table::new(&database, SCHEMA, relation.name.clone(), relation.kind)
        })?;
    }
    progress.stage(&database, EntityKind::Table);

    let mut columns = connection
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")
        .map_err(query_error(path, "columns"))?;
    for relation in &relations {
        let rows = columns
            .query_map(params![relation.name], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })
            .map_err(query_error(path, "columns"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error(path, "columns"))?;
        let mut ordinal = 0;
        for (name, data_type, not_null, default, _pk, hidden) in rows {
            // hidden: 1 = hidden column of a virtual table (not part of the table's shape).
            if hidden == 1 {
                continue;
            }
            ordinal += 1;
            writer.write(&Column {
                database: database.clone(),
                schema: SCHEMA.into(),
                table: relation.name.clone(),
                name,
                ordinal,
                data_type,
                nullable: not_null == 0,
                default,
                generated: match hidden {
                    2 => Some(Generated::Virtual),
                    3 => Some(Generated::Stored),
                    _ => None,
                },
                generation_expression: None,
                comment: None,
            })?;
        }
        if relation.kind == TableKind::View
            && let Some(sql) = &relation.sql
        {
            writer.write(&ViewDefinition {
                database: database.clone(),
                schema: SCHEMA.into(),
                view: relation.name.clone(),
                definition: sql.clone(),
            })?;
        }
    }
    progress.stage(&database, EntityKind::Column);

    for relation in relations.iter().filter(|r| r.kind == TableKind::Table) {
        constraints_and_indexes(&connection, path, &database, &relation.name, writer)?;
    }
    progress.stage(&database, EntityKind::Index);
    Ok(())
}

fn constraints_and_indexes(
    connection: &Connection,
    path: &Path,
    database: &str,
    table: &str,
    writer: &mut OutputWriter,
) -> Result<(), ExtractError> {
    let constraint = |name: String, kind: ConstraintKind, columns: Vec<String>| Constraint {
        database: database.to_owned(),
        schema: SCHEMA.into(),
        table: table.to_owned(),
        name,
        kind,
        columns,
        referenced_table: None,
        referenced_columns: None,
        on_update: None,
        on_delete: None,
        definition: None,
    };
    // Primary key: the columns with pk > 0, in key order.
    let mut statement = connection
        .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
        .map_err(query_error(path, "primary keys"))?;
    let key: Vec<String> = statement
        .query_map(params![table], |row| row.get(0))
        .map_err(query_error(path, "primary keys"))?
        .collect::<Result<_, _>>()
        .map_err(query_error(path, "primary keys"))?;
    if !key.is_empty() {
        writer.write(&constraint(
            format!("{table}_pkey"),
            ConstraintKind::PrimaryKey,
            key,
        ))?;
    }

    // Foreign keys, grouped by id, columns in key order. Unnamed in SQLite: `<table>_fkey_<id>`.
    let mut statement = connection
        .prepare("SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
        .map_err(query_error(path, "foreign keys"))?;
    let rows: Vec<(i64, String, String, Option<String>, String, String)> = statement
        .query_map(params![table], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .map_err(query_error(path, "foreign keys"))?
        .collect::<Result<_, _>>()
        .map_err(query_error(path, "foreign keys"))?;
    let mut at = 0;
    while at < rows.len() {
        let id = rows[at].0;
        let group: Vec<_> = rows[at..].iter().take_while(|r| r.0 == id).collect();
        at += group.len();
        let first = group[0];
        let mut foreign = constraint(
            format!("{table}_fkey_{id}"),
            ConstraintKind::ForeignKey,
            group.iter().map(|r| r.2.clone()).collect(),
        );
        foreign.referenced_table = Some(TableRef {
            schema: SCHEMA.into(),
            name: first.1.clone(),
        });
        // A missing `to` means the referenced table's primary key.
        foreign.referenced_columns = group
            .iter()
            .map(|r| r.3.clone())
            .collect::<Option<Vec<_>>>();
        foreign.on_update = Some(first.4.clone());
        foreign.on_delete = Some(first.5.clone());
        writer.write(&foreign)?;
    }

    // Indexes (and the unique constraints they back).
    let mut statement = connection
        .prepare(
            "SELECT il.name, il.\"unique\", il.origin, s.sql FROM pragma_index_list(?1) il
             LEFT JOIN sqlite_schema s ON s.type = 'index' AND s.name = il.name ORDER BY il.name",
        )
        .map_err(query_error(path, "indexes"))?;
    let indexes: Vec<(String, i64, String, Option<String>)> = statement
        .query_map(params![table], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .map_err(query_error(path, "indexes"))?
        .collect::<Result<_, _>>()
        .map_err(query_error(path, "indexes"))?;
    let mut index_columns = connection
        .prepare("SELECT name FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno")
        .map_err(query_error(path, "index columns"))?;
    for (name, unique, origin, sql) in indexes {
        let columns: Vec<String> = index_columns
            .query_map(params![name], |row| row.get::<_, Option<String>>(0))
            .map_err(query_error(path, "index columns"))?
            .map(|c| c.map(|c| c.unwrap_or_else(|| "<expression>".into())))
            .collect::<Result<_, _>>()
            .map_err(query_error(path, "index columns"))?;
        if origin == "u" {
            writer.write(&constraint(
                name.clone(),
                ConstraintKind::Unique,
                columns.clone(),
            ))?;
        }
        writer.write(&Index {
            database: database.to_owned(),
            schema: SCHEMA.into(),
            table: table.to_owned(),
            name,
            unique: unique != 0,
            primary: origin == "pk",
            columns,
            method: Some("btree".into()),
            predicate: None,
            definition: sql,
        })?;
    }
    Ok(())
}
