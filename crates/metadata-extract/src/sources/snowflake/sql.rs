//! Statements, quoting, and the mapping of result rows to records (no I/O).

use std::collections::BTreeMap;

use super::client::SnowflakeError;
use super::rowset::{Batch, Col};
use crate::record::{
    Constraint, ConstraintKind, Persistence, StorageFormat, Table, TableKind, TableRef,
};

/// A quoted identifier: `"` doubled, case and every other character kept.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal. In Snowflake a backslash inside `'…'` is an escape, so it is doubled
/// as well as the quote.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// One page of a `SHOW`: `LIMIT page`, from the row named `marker` on when given.
pub fn show_page(statement: &str, page: u32, marker: Option<&str>) -> String {
    match marker {
        Some(marker) => format!("{statement} LIMIT {page} FROM {}", literal(marker)),
        None => format!("{statement} LIMIT {page}"),
    }
}

/// The columns of a database (or one of its schemas), grouped by table in a stable order.
/// `DATETIME_PRECISION` is left out: the emulator lacks it, and the type name carries the
/// facts a catalog shows.
pub fn columns(database: &str, schema: Option<&str>) -> String {
    let filter = match schema {
        Some(schema) => format!("TABLE_SCHEMA = {}", literal(schema)),
        None => "TABLE_SCHEMA <> 'INFORMATION_SCHEMA'".to_owned(),
    };
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, \
         CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, COLUMN_DEFAULT, \
         IS_IDENTITY, COMMENT \
         FROM {}.INFORMATION_SCHEMA.COLUMNS WHERE {filter} \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        ident(database)
    )
}

/// The columns of an `INFORMATION_SCHEMA.COLUMNS` answer, found once per batch.
pub struct ColumnCols {
    pub(crate) schema: Col,
    pub(crate) table: Col,
    pub(crate) name: Col,
    pub(crate) ordinal: Col,
    pub(crate) data_type: Col,
    pub(crate) length: Option<Col>,
    pub(crate) precision: Option<Col>,
    pub(crate) scale: Option<Col>,
    pub(crate) nullable: Col,
    pub(crate) default: Col,
    pub(crate) identity: Option<Col>,
    pub(crate) comment: Option<Col>,
}

impl ColumnCols {
    /// Finds them; a missing required one is a protocol error.
    pub fn find(batch: &Batch) -> Result<Self, SnowflakeError> {
        let need = |name: &str| {
            batch.col(name).ok_or_else(|| {
                SnowflakeError::Protocol(format!("the columns answer has no {name}"))
            })
        };
        Ok(Self {
            schema: need("TABLE_SCHEMA")?,
            table: need("TABLE_NAME")?,
            name: need("COLUMN_NAME")?,
            ordinal: need("ORDINAL_POSITION")?,
            data_type: need("DATA_TYPE")?,
            length: batch.col("CHARACTER_MAXIMUM_LENGTH"),
            precision: batch.col("NUMERIC_PRECISION"),
            scale: batch.col("NUMERIC_SCALE"),
            nullable: need("IS_NULLABLE")?,
            default: need("COLUMN_DEFAULT")?,
            identity: batch.col("IS_IDENTITY"),
            comment: batch.col("COMMENT"),
        })
    }
}

/// The column's type as Snowflake's DDL writes it: `VARCHAR(16777216)`, `NUMBER(38,0)`,
/// `BINARY(8388608)`; other types by name (`TIMESTAMP_NTZ`, `VARIANT`, `BOOLEAN`).
pub fn data_type(batch: &Batch, row: usize, cols: &ColumnCols) -> String {
    let name = batch
        .str(row, cols.data_type)
        .unwrap_or_default()
        .to_uppercase();
    let number = |c: Option<Col>| c.and_then(|c| batch.i64(row, c));
    match name.as_str() {
        "TEXT" | "VARCHAR" => match number(cols.length) {
            Some(length) => format!("VARCHAR({length})"),
            None => "VARCHAR".into(),
        },
        "BINARY" => match number(cols.length) {
            Some(length) => format!("BINARY({length})"),
            None => name,
        },
        "NUMBER" | "DECIMAL" | "NUMERIC" => match (number(cols.precision), number(cols.scale)) {
            (Some(precision), Some(scale)) => format!("NUMBER({precision},{scale})"),
            _ => "NUMBER".into(),
        },
        _ => name,
    }
}

/// A text value by column name; empty text is `None` (`SHOW` writes `''` for "none").
pub(super) fn text(batch: &Batch, row: usize, name: &str) -> Option<String> {
    batch
        .col(name)
        .and_then(|c| batch.str(row, c))
        .map(|v| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// An integer value by column name.
pub(super) fn number(batch: &Batch, row: usize, name: &str) -> Option<i64> {
    batch.col(name).and_then(|c| batch.i64(row, c))
}

fn yes(batch: &Batch, row: usize, name: &str) -> bool {
    batch
        .col(name)
        .and_then(|c| batch.bool(row, c))
        .unwrap_or(false)
}

/// A `SHOW TABLES` or `SHOW VIEWS` row: `kind` when the yes/no column `flag` says yes,
/// `otherwise` when not. Columns are read by name: their order differs between Snowflake
/// releases (and in the emulator).
fn relation(
    batch: &Batch,
    row: usize,
    scope: (&str, &str),
    flag: &str,
    (kind, otherwise): (TableKind, TableKind),
) -> Table {
    let mut record = Table::new(
        scope.0,
        scope.1,
        text(batch, row, "name").unwrap_or_default(),
        if yes(batch, row, flag) {
            kind
        } else {
            otherwise
        },
    );
    record.owner = text(batch, row, "owner");
    record.comment = text(batch, row, "comment");
    record
}

/// A `SHOW TABLES` row: its kind (dynamic, external or a table), persistence (`kind`:
/// `TRANSIENT`, `TEMPORARY`), storage (Iceberg, hybrid), clustering key, and the catalog's row
/// count and bytes.
pub fn table_row(batch: &Batch, row: usize, database: &str, schema: &str) -> Table {
    let kinds = (TableKind::ForeignTable, TableKind::Table);
    let mut record = relation(batch, row, (database, schema), "is_external", kinds);
    if yes(batch, row, "is_dynamic") {
        record.kind = TableKind::DynamicTable;
    }
    record.persistence = Some(
        match text(batch, row, "kind")
            .map(|k| k.to_ascii_uppercase())
            .as_deref()
        {
            Some("TRANSIENT") => Persistence::Transient,
            Some("TEMPORARY" | "LOCAL TEMPORARY") => Persistence::Temporary,
            _ => Persistence::Permanent,
        },
    );
    record.storage_format = Some(if yes(batch, row, "is_iceberg") {
        StorageFormat::Iceberg
    } else if yes(batch, row, "is_hybrid") {
        StorageFormat::Hybrid
    } else {
        StorageFormat::Native
    });
    record.clustering_key = text(batch, row, "cluster_by");
    record.row_count_estimate = number(batch, row, "rows");
    record.size_bytes = number(batch, row, "bytes");
    record
}

/// A `SHOW VIEWS` row and its definition (`text`; empty for a secure view the role does not
/// own).
pub fn view_row(
    batch: &Batch,
    row: usize,
    database: &str,
    schema: &str,
) -> (Table, Option<String>) {
    let kinds = (TableKind::MaterializedView, TableKind::View);
    let record = relation(batch, row, (database, schema), "is_materialized", kinds);
    (record, text(batch, row, "text"))
}

/// One row of `SHOW PRIMARY KEYS`, `UNIQUE KEYS` or `IMPORTED KEYS`.
#[derive(Debug)]
pub struct KeyRow {
    table: String,
    name: String,
    column: String,
    sequence: i64,
    referenced: Option<(String, String, String)>,
    on_update: Option<String>,
    on_delete: Option<String>,
}

/// Reads a key row; `None` for a row that is not a key of this kind (an imported key without
/// the table it references).
pub fn key_row(batch: &Batch, row: usize, kind: ConstraintKind) -> Option<KeyRow> {
    let t = |name: &str| text(batch, row, name);
    let sequence = number(batch, row, "key_sequence").unwrap_or(1);
    if kind == ConstraintKind::ForeignKey {
        return Some(KeyRow {
            table: t("fk_table_name")?,
            name: t("fk_name")?,
            column: t("fk_column_name")?,
            sequence,
            referenced: Some((
                t("pk_schema_name")?,
                t("pk_table_name")?,
                t("pk_column_name")?,
            )),
            on_update: t("update_rule"),
            on_delete: t("delete_rule"),
        });
    }
    Some(KeyRow {
        table: t("table_name")?,
        name: t("constraint_name")?,
        column: t("column_name")?,
        sequence,
        referenced: None,
        on_update: None,
        on_delete: None,
    })
}

/// Key rows grouped into constraints (by table and name), columns in key order.
pub fn group_keys(
    rows: Vec<KeyRow>,
    database: &str,
    schema: &str,
    kind: ConstraintKind,
) -> Vec<Constraint> {
    let mut grouped: BTreeMap<(String, String), Vec<KeyRow>> = BTreeMap::new();
    for row in rows {
        grouped
            .entry((row.table.clone(), row.name.clone()))
            .or_default()
            .push(row);
    }
    grouped
        .into_iter()
        .map(|((table_name, name), mut rows)| {
            rows.sort_by_key(|r| r.sequence);
            let referenced = rows.first().and_then(|r| r.referenced.clone());
            let (on_update, on_delete) = rows
                .first()
                .map(|r| (r.on_update.clone(), r.on_delete.clone()))
                .unwrap_or_default();
            Constraint {
                database: database.to_owned(),
                schema: schema.to_owned(),
                table: table_name,
                name,
                kind,
                columns: rows.iter().map(|r| r.column.clone()).collect(),
                referenced_table: referenced.as_ref().map(|(s, t, _)| TableRef {
                    schema: s.clone(),
                    name: t.clone(),
                }),
                referenced_columns: referenced.is_some().then(|| {
                    rows.iter()
                        .filter_map(|r| r.referenced.as_ref().map(|(_, _, c)| c.clone()))
                        .collect()
                }),
                on_update,
                on_delete,
                definition: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::rowset::json_batch;
    use super::*;

    /// `SHOW IMPORTED KEYS` as Snowflake documents its columns: one row per key column.
    #[test]
    fn foreign_keys_group_by_name_in_key_order() {
        let names = [
            "pk_database_name",
            "pk_schema_name",
            "pk_table_name",
            "pk_column_name",
            "fk_database_name",
            "fk_schema_name",
            "fk_table_name",
            "fk_column_name",
            "key_sequence",
            "update_rule",
            "delete_rule",
            "fk_name",
            "pk_name",
        ]
        .map(str::to_owned)
        .to_vec();
        let batch = json_batch(
            names,
            serde_json::json!([
                [
                    "D",
                    "S",
                    "PARENT",
                    "B",
                    "D",
                    "S",
                    "CHILD",
                    "PB",
                    "2",
                    "NO ACTION",
                    "CASCADE",
                    "FK_P",
                    "PK_P"
                ],
                [
                    "D",
                    "S",
                    "PARENT",
                    "A",
                    "D",
                    "S",
                    "CHILD",
                    "PA",
                    "1",
                    "NO ACTION",
                    "CASCADE",
                    "FK_P",
                    "PK_P"
                ],
                [
                    "",
                    "",
                    "",
                    "",
                    "D",
                    "S",
                    "CHILD",
                    "X",
                    "1",
                    "NO ACTION",
                    "NO ACTION",
                    "NOT_AN_FK",
                    ""
                ]
            ]),
        )
        .expect("batch");
        let rows: Vec<KeyRow> = (0..batch.len())
            .filter_map(|r| key_row(&batch, r, ConstraintKind::ForeignKey))
            .collect();
        let keys = group_keys(rows, "D", "S", ConstraintKind::ForeignKey);
        assert_eq!(
            keys.len(),
            1,
            "a row without the table it references is no foreign key"
        );
        let fk = &keys[0];
        assert_eq!((fk.table.as_str(), fk.name.as_str()), ("CHILD", "FK_P"));
        assert_eq!(fk.columns, ["PA", "PB"]);
        assert_eq!(
            fk.referenced_columns.as_deref(),
            Some(&["A".to_owned(), "B".to_owned()][..])
        );
        assert_eq!(
            fk.referenced_table.as_ref().map(|t| t.name.as_str()),
            Some("PARENT")
        );
        assert_eq!(fk.on_delete.as_deref(), Some("CASCADE"));
    }

    /// `SHOW TABLES` as Snowflake documents its columns (fakesnow has no transient, dynamic,
    /// Iceberg or clustered tables).
    #[test]
    fn show_tables_rows_carry_type_storage_clustering_and_catalog_sizes() {
        let names = [
            "name",
            "kind",
            "owner",
            "comment",
            "cluster_by",
            "rows",
            "bytes",
            "is_external",
            "is_dynamic",
            "is_iceberg",
            "is_hybrid",
        ]
        .map(str::to_owned)
        .to_vec();
        let batch = json_batch(
            names,
            serde_json::json!([
                [
                    "EVENTS",
                    "TRANSIENT",
                    "SYSADMIN",
                    "raw events",
                    "LINEAR(DAY, ID)",
                    "120",
                    "4096",
                    "N",
                    "N",
                    "N",
                    "N"
                ],
                [
                    "DAILY", "TABLE", "SYSADMIN", "", "", "7", "512", "N", "Y", "N", "N"
                ],
                [
                    "LAKE", "TABLE", "SYSADMIN", "", "", null, null, "N", "N", "Y", "N"
                ],
                [
                    "S3_FILES", "TABLE", "SYSADMIN", "", "", null, null, "Y", "N", "N", "N"
                ]
            ]),
        )
        .expect("batch");
        let tables: Vec<Table> = (0..batch.len())
            .map(|r| table_row(&batch, r, "D", "S"))
            .collect();
        let events = &tables[0];
        assert_eq!(events.kind, TableKind::Table);
        assert_eq!(events.persistence, Some(Persistence::Transient));
        assert_eq!(events.storage_format, Some(StorageFormat::Native));
        assert_eq!(events.clustering_key.as_deref(), Some("LINEAR(DAY, ID)"));
        assert_eq!(
            (events.row_count_estimate, events.size_bytes),
            (Some(120), Some(4096))
        );
        assert_eq!(events.comment.as_deref(), Some("raw events"));
        assert_eq!(tables[1].kind, TableKind::DynamicTable);
        assert_eq!(
            tables[1].clustering_key, None,
            "an empty cluster_by is no clustering key"
        );
        assert_eq!(tables[2].storage_format, Some(StorageFormat::Iceberg));
        assert_eq!(tables[2].row_count_estimate, None);
        assert_eq!(tables[3].kind, TableKind::ForeignTable);
    }

    #[test]
    fn unique_keys_group_by_constraint() {
        let names = [
            "table_name",
            "column_name",
            "key_sequence",
            "constraint_name",
        ]
        .map(str::to_owned)
        .to_vec();
        let batch = json_batch(
            names,
            serde_json::json!([
                ["T", "B", "2", "UQ"],
                ["T", "A", "1", "UQ"],
                ["U", "C", "1", "UQ"]
            ]),
        )
        .expect("batch");
        let rows = (0..batch.len())
            .filter_map(|r| key_row(&batch, r, ConstraintKind::Unique))
            .collect();
        let keys = group_keys(rows, "D", "S", ConstraintKind::Unique);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].columns, ["A", "B"]);
        assert_eq!(keys[1].table, "U");
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident(r#"My "odd" name"#), r#""My ""odd"" name""#);
        assert_eq!(literal(r"it's a \ path"), r"'it''s a \\ path'");
        assert_eq!(
            show_page("SHOW TABLES IN SCHEMA \"D\".\"S\"", 10, Some("t'9")),
            "SHOW TABLES IN SCHEMA \"D\".\"S\" LIMIT 10 FROM 't''9'"
        );
        assert_eq!(
            show_page("SHOW DATABASES", 10000, None),
            "SHOW DATABASES LIMIT 10000"
        );
    }
}
