//! The `ACCOUNT_USAGE` mode: the whole account's catalog from the views of
//! `SNOWFLAKE.ACCOUNT_USAGE`, one streamed query per view, instead of `SHOW` per schema and
//! `INFORMATION_SCHEMA` per database.
//!
//! Why a second mode: it needs one grant (`IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE`, or the
//! `SNOWFLAKE.OBJECT_VIEWER` and `GOVERNANCE_VIEWER` database roles) instead of `USAGE` on
//! every database and schema, and it is the only place tags (`TAG_REFERENCES`), masking and
//! row access policies (`POLICY_REFERENCES`) and view dependencies (`OBJECT_DEPENDENCIES`)
//! can be read for a whole account at once: asking `TAG_REFERENCES()` per object is what
//! makes other agents take ten hours. The price is Snowflake's documented latency: these views
//! lag the account by up to about three hours (45 minutes for most), so an object created or
//! dropped since then is not seen yet. Keys are not in `ACCOUNT_USAGE`: this mode extracts
//! none (the information-schema mode reads them with `SHOW … KEYS`).
//!
//! Dropped objects stay in these views with `DELETED` set: every query keeps only live ones.

use std::cell::RefCell;

use super::client::{Session, SnowflakeError};
use super::rowset::Batch;
use super::sql::{number, text};
use super::{Flow, consumer, extract_error, sql, write_column};
use crate::Progress;
use crate::error::ExtractError;
use crate::filter::Filters;
use crate::record::{
    Database, EntityKind, Lineage, ObjectRef, Persistence, PolicyAssignment, PolicyKind, Schema,
    Table, TableKind, TableRef, TagAssignment, ViewDefinition,
};
use crate::writer::OutputWriter;

const VIEWS: &str = "SNOWFLAKE.ACCOUNT_USAGE";

/// `IN ('A', 'B')` of the databases to read.
fn in_list(databases: &[Database]) -> String {
    let names: Vec<String> = databases.iter().map(|d| sql::literal(&d.name)).collect();
    format!("IN ({})", names.join(", "))
}

/// Reads the catalog of `databases` (already filtered, sorted, and written by the caller)
/// from `ACCOUNT_USAGE`, over two sessions: columns on one, everything else on the other.
pub(super) async fn extract(
    config: &Flow,
    first: &Session,
    second: &Session,
    databases: &[Database],
    filters: &Filters,
    writer: &RefCell<&mut OutputWriter>,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    if databases.is_empty() {
        return Ok(());
    }
    let fail = |what| {
        move |error: SnowflakeError| {
            if matches!(error.sql_code(), Some("002003" | "003001")) {
                return ExtractError::Config {
                    target: config.server.target(),
                    problem: format!(
                        "the role cannot read {VIEWS} ({error}): grant it IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE, or the SNOWFLAKE.OBJECT_VIEWER and SNOWFLAKE.GOVERNANCE_VIEWER database roles, or use catalog-source=information-schema"
                    ),
                };
            }
            extract_error(config, what, error)
        }
    };
    let within = in_list(databases);
    let schema_ok = |schema: &str| {
        !schema.eq_ignore_ascii_case("INFORMATION_SCHEMA") && filters.schemas.allows(schema)
    };
    let keep = |schema: &str, table: &str| schema_ok(schema) && filters.allows_table(schema, table);

    let columns = async {
        let statement = format!(
            "SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, \
             CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, COLUMN_DEFAULT, \
             IS_IDENTITY, COMMENT FROM {VIEWS}.COLUMNS WHERE DELETED IS NULL AND TABLE_CATALOG {within} \
             ORDER BY TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
        );
        let mut current = (String::new(), String::new(), String::new(), false);
        second
            .query(&statement, |batch| {
                let cols = sql::ColumnCols::find(&batch)?;
                let catalog = batch.col("TABLE_CATALOG").ok_or_else(|| {
                    SnowflakeError::Protocol("the columns answer has no TABLE_CATALOG".into())
                })?;
                for row in 0..batch.len() {
                    let (Some(database), Some(schema), Some(table), Some(name)) = (
                        batch.str(row, catalog),
                        batch.str(row, cols.schema),
                        batch.str(row, cols.table),
                        batch.str(row, cols.name),
                    ) else {
                        return Err(SnowflakeError::Protocol(
                            "a column row without its database, schema, table or name".into(),
                        ));
                    };
                    if current.0 != database || current.1 != schema || current.2 != table {
                        let included = keep(&schema, &table);
                        current = (
                            database.into_owned(),
                            schema.into_owned(),
                            table.into_owned(),
                            included,
                        );
                    }
                    if !current.3 {
                        continue;
                    }
                    write_column(
                        &batch,
                        row,
                        &cols,
                        (&current.0, &current.1, &current.2),
                        &name,
                        writer,
                    )?;
                }
                Ok(())
            })
            .await
            .map_err(fail("columns"))?;
        for database in databases {
            progress.stage(&database.name, EntityKind::Column);
        }
        Ok::<(), ExtractError>(())
    };

    let others = async {
        each_row(
            first,
            &format!(
                "SELECT CATALOG_NAME, SCHEMA_NAME, SCHEMA_OWNER, COMMENT FROM {VIEWS}.SCHEMATA \
                 WHERE DELETED IS NULL AND CATALOG_NAME {within} ORDER BY CATALOG_NAME, SCHEMA_NAME"
            ),
            |batch, row| {
                let (Some(database), Some(name)) = (
                    text(batch, row, "CATALOG_NAME"),
                    text(batch, row, "SCHEMA_NAME"),
                ) else {
                    return Ok(());
                };
                if !schema_ok(&name) {
                    return Ok(());
                }
                writer
                    .borrow_mut()
                    .write(&Schema {
                        database,
                        name,
                        owner: text(batch, row, "SCHEMA_OWNER"),
                        comment: text(batch, row, "COMMENT"),
                    })
                    .map_err(consumer)
            },
        )
        .await
        .map_err(fail("schemas"))?;
        each_row(
            first,
            &format!(
                "SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, TABLE_OWNER, TABLE_TYPE, IS_TRANSIENT, \
                 CLUSTERING_KEY, ROW_COUNT, BYTES, COMMENT FROM {VIEWS}.TABLES \
                 WHERE DELETED IS NULL AND TABLE_CATALOG {within} ORDER BY TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME"
            ),
            |batch, row| {
                let (Some(database), Some(schema), Some(name)) =
                    (text(batch, row, "TABLE_CATALOG"), text(batch, row, "TABLE_SCHEMA"), text(batch, row, "TABLE_NAME"))
                else {
                    return Ok(());
                };
                if !keep(&schema, &name) {
                    return Ok(());
                }
                let kind_text = text(batch, row, "TABLE_TYPE").unwrap_or_default().to_ascii_uppercase();
                let kind = match kind_text.as_str() {
                    "VIEW" => TableKind::View,
                    "MATERIALIZED VIEW" => TableKind::MaterializedView,
                    "EXTERNAL TABLE" => TableKind::ForeignTable,
                    "DYNAMIC TABLE" => TableKind::DynamicTable,
                    _ => TableKind::Table,
                };
                let mut record = Table::new(&database, &schema, name, kind);
                record.owner = text(batch, row, "TABLE_OWNER");
                record.comment = text(batch, row, "COMMENT");
                if !matches!(kind, TableKind::View | TableKind::MaterializedView) {
                    let transient = batch.col("IS_TRANSIENT").and_then(|c| batch.bool(row, c)).unwrap_or(false);
                    record.persistence = Some(if kind_text.contains("TEMPORARY") {
                        Persistence::Temporary
                    } else if transient {
                        Persistence::Transient
                    } else {
                        Persistence::Permanent
                    });
                    record.clustering_key = text(batch, row, "CLUSTERING_KEY");
                    record.row_count_estimate = number(batch, row, "ROW_COUNT");
                    record.size_bytes = number(batch, row, "BYTES");
                }
                writer.borrow_mut().write(&record).map_err(consumer)
            },
        )
        .await
        .map_err(fail("tables"))?;
        for database in databases {
            progress.stage(&database.name, EntityKind::Table);
        }
        each_row(
            first,
            &format!(
                "SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM {VIEWS}.VIEWS \
                 WHERE DELETED IS NULL AND TABLE_CATALOG {within} ORDER BY TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME"
            ),
            |batch, row| {
                let (Some(database), Some(schema), Some(view), Some(definition)) = (
                    text(batch, row, "TABLE_CATALOG"),
                    text(batch, row, "TABLE_SCHEMA"),
                    text(batch, row, "TABLE_NAME"),
                    text(batch, row, "VIEW_DEFINITION"),
                ) else {
                    return Ok(());
                };
                if !keep(&schema, &view) {
                    return Ok(());
                }
                writer.borrow_mut().write(&ViewDefinition { database, schema, view, definition }).map_err(consumer)
            },
        )
        .await
        .map_err(fail("view definitions"))?;
        each_row(
            first,
            &format!(
                "SELECT REFERENCING_DATABASE, REFERENCING_SCHEMA, REFERENCING_OBJECT_NAME, REFERENCED_DATABASE, \
                 REFERENCED_SCHEMA, REFERENCED_OBJECT_NAME FROM {VIEWS}.OBJECT_DEPENDENCIES \
                 WHERE REFERENCING_DATABASE {within} AND REFERENCING_OBJECT_DOMAIN IN ('VIEW', 'MATERIALIZED VIEW') \
                 ORDER BY REFERENCING_DATABASE, REFERENCING_SCHEMA, REFERENCING_OBJECT_NAME, REFERENCED_DATABASE, \
                 REFERENCED_SCHEMA, REFERENCED_OBJECT_NAME"
            ),
            |batch, row| {
                let t = |name: &str| text(batch, row, name);
                let (Some(database), Some(schema), Some(view), Some(source_database), Some(source_schema), Some(source)) = (
                    t("REFERENCING_DATABASE"),
                    t("REFERENCING_SCHEMA"),
                    t("REFERENCING_OBJECT_NAME"),
                    t("REFERENCED_DATABASE"),
                    t("REFERENCED_SCHEMA"),
                    t("REFERENCED_OBJECT_NAME"),
                ) else {
                    return Ok(());
                };
                if !keep(&schema, &view) {
                    return Ok(());
                }
                let source_database = (source_database != database).then_some(source_database);
                writer
                    .borrow_mut()
                    .write(&Lineage {
                        database,
                        view: TableRef { schema, name: view },
                        source: TableRef { schema: source_schema, name: source },
                        source_database,
                    })
                    .map_err(consumer)
            },
        )
        .await
        .map_err(fail("lineage"))?;
        each_row(
            first,
            &format!(
                "SELECT TAG_DATABASE, TAG_SCHEMA, TAG_NAME, TAG_VALUE, OBJECT_DATABASE, OBJECT_SCHEMA, OBJECT_NAME, \
                 DOMAIN, COLUMN_NAME FROM {VIEWS}.TAG_REFERENCES \
                 WHERE OBJECT_DELETED IS NULL AND OBJECT_DATABASE {within} \
                 ORDER BY OBJECT_DATABASE, OBJECT_SCHEMA, OBJECT_NAME, COLUMN_NAME, TAG_DATABASE, TAG_SCHEMA, TAG_NAME"
            ),
            |batch, row| {
                let t = |name: &str| text(batch, row, name);
                let (Some(database), Some(tag)) = (t("OBJECT_DATABASE"), tag_ref(batch, row, "TAG_DATABASE", "TAG_SCHEMA", "TAG_NAME")) else {
                    return Ok(());
                };
                let domain = t("DOMAIN").unwrap_or_default().to_ascii_uppercase();
                let (schema, table, column) = match domain.as_str() {
                    "DATABASE" => (None, None, None),
                    "SCHEMA" => (t("OBJECT_NAME"), None, None),
                    "COLUMN" => (t("OBJECT_SCHEMA"), t("OBJECT_NAME"), t("COLUMN_NAME")),
                    "TABLE" | "VIEW" | "MATERIALIZED VIEW" | "EXTERNAL TABLE" | "DYNAMIC TABLE" => (t("OBJECT_SCHEMA"), t("OBJECT_NAME"), None),
                    // Roles, warehouses, users, stages …: not catalog objects.
                    _ => return Ok(()),
                };
                if let Some(schema) = &schema
                    && (!schema_ok(schema) || table.as_deref().is_some_and(|t| !keep(schema, t)))
                {
                    return Ok(());
                }
                writer
                    .borrow_mut()
                    .write(&TagAssignment { database, schema, table, column, tag, value: t("TAG_VALUE") })
                    .map_err(consumer)
            },
        )
        .await
        .map_err(fail("tags"))?;
        each_row(
            first,
            &format!(
                "SELECT POLICY_DB, POLICY_SCHEMA, POLICY_NAME, POLICY_KIND, REF_DATABASE_NAME, REF_SCHEMA_NAME, \
                 REF_ENTITY_NAME, REF_COLUMN_NAME FROM {VIEWS}.POLICY_REFERENCES \
                 WHERE REF_DATABASE_NAME {within} AND POLICY_KIND IN ('MASKING_POLICY', 'ROW_ACCESS_POLICY') \
                 ORDER BY REF_DATABASE_NAME, REF_SCHEMA_NAME, REF_ENTITY_NAME, REF_COLUMN_NAME, POLICY_DB, POLICY_SCHEMA, POLICY_NAME"
            ),
            |batch, row| {
                let t = |name: &str| text(batch, row, name);
                let (Some(database), Some(schema), Some(table), Some(policy)) = (
                    t("REF_DATABASE_NAME"),
                    t("REF_SCHEMA_NAME"),
                    t("REF_ENTITY_NAME"),
                    tag_ref(batch, row, "POLICY_DB", "POLICY_SCHEMA", "POLICY_NAME"),
                ) else {
                    return Ok(());
                };
                if !keep(&schema, &table) {
                    return Ok(());
                }
                let kind = match t("POLICY_KIND").as_deref() {
                    Some("ROW_ACCESS_POLICY") => PolicyKind::RowAccessPolicy,
                    _ => PolicyKind::MaskingPolicy,
                };
                writer
                    .borrow_mut()
                    .write(&PolicyAssignment { database, schema, table, column: t("REF_COLUMN_NAME"), kind, policy })
                    .map_err(consumer)
            },
        )
        .await
        .map_err(fail("policies"))?;
        Ok::<(), ExtractError>(())
    };
    tokio::try_join!(columns, others)?;
    Ok(())
}

/// Runs `statement` on `session`, calling `row_fn` on every row of its answer.
async fn each_row(
    session: &Session,
    statement: &str,
    mut row_fn: impl FnMut(&Batch, usize) -> Result<(), SnowflakeError>,
) -> Result<(), SnowflakeError> {
    session
        .query(statement, |batch| {
            for row in 0..batch.len() {
                row_fn(&batch, row)?;
            }
            Ok(())
        })
        .await
}

/// A tag's or policy's own database, schema and name.
fn tag_ref(
    batch: &Batch,
    row: usize,
    database: &str,
    schema: &str,
    name: &str,
) -> Option<ObjectRef> {
    Some(ObjectRef {
        database: text(batch, row, database)?,
        schema: text(batch, row, schema)?,
        name: text(batch, row, name)?,
    })
}
