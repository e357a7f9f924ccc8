//! Extraction from a real SQLite file built by the test.

mod support;

use std::path::{Path, PathBuf};

use metadata_extract::writer::{read_stream, verify};
use metadata_extract::{EntityKind, ExtractError, Manifest};
use serde_json::json;
use support::{find, scratch};

const CANARY: &str = "CANARY-ROW-sqlite-51e0";

fn fixture(dir: &Path) -> PathBuf {
    let path = dir.join("shop.db");
    let db = rusqlite::Connection::open(&path).expect("create");
    db.execute_batch(&format!(
        r#"
        PRAGMA foreign_keys = ON;
        CREATE TABLE customers (id INTEGER PRIMARY KEY, "Full Name" TEXT NOT NULL, email TEXT UNIQUE, created TEXT DEFAULT CURRENT_TIMESTAMP);
        CREATE TABLE orders (id INTEGER, line INTEGER, customer_id INTEGER REFERENCES customers(id) ON DELETE CASCADE,
                             amount REAL CHECK (amount > 0), with_tax REAL GENERATED ALWAYS AS (amount * 1.2) STORED,
                             PRIMARY KEY (id, line));
        CREATE TABLE order_notes (order_id INTEGER, order_line INTEGER, note TEXT,
                                  FOREIGN KEY (order_id, order_line) REFERENCES orders(id, line));
        CREATE TABLE employees (id INTEGER PRIMARY KEY, manager_id INTEGER REFERENCES employees(id));
        CREATE TABLE "select" ("from" TEXT, "ünïcödé" TEXT, v TEXT GENERATED ALWAYS AS (upper("from")) VIRTUAL);
        CREATE INDEX orders_amount ON orders (amount);
        CREATE INDEX customers_lower_email ON customers (lower(email));
        CREATE VIEW customer_orders AS SELECT c."Full Name", o.amount FROM customers c JOIN orders o ON o.customer_id = c.id;
        INSERT INTO customers ("Full Name", email) VALUES ('{CANARY}', '{CANARY}@example.invalid');
        INSERT INTO orders (id, line, customer_id, amount) VALUES (1, 1, 1, 9.5);
        INSERT INTO order_notes VALUES (1, 1, '{CANARY}');
        INSERT INTO "select" ("from", "ünïcödé") VALUES ('{CANARY}', '{CANARY}');
        ANALYZE;
        "#
    ))
    .expect("fixture");
    path
}

fn extract(db: &Path, out: &Path, extra: &[(&str, &str)]) -> Result<Manifest, ExtractError> {
    let mut parameters = vec![("path".to_owned(), db.display().to_string())];
    parameters.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    support::extract("sqlite", out, parameters, |_| {})
}

#[test]
fn sqlite_catalog_is_extracted_exactly_and_without_row_data() {
    let scratch = scratch("sqlite-exact");
    let dir = scratch.path();
    let db = fixture(dir);
    let out = dir.join("out");
    let manifest = extract(&db, &out, &[]).expect("extract");
    verify(&out, &manifest).expect("checksums");
    // The query audit lists every statement, each a catalog read (parsed).
    support::audit::assert_catalog_only(support::audit::Catalog::Sqlite, &manifest);
    let stream = |kind| read_stream(&out, &manifest, kind).expect("read");

    assert_eq!(
        stream(EntityKind::Database),
        vec![
            json!({"name": "shop.db", "owner": null, "comment": null, "encoding": "UTF-8", "sharedFrom": null})
        ]
    );
    let tables = stream(EntityKind::Table);
    assert_eq!(tables.len(), 6, "5 tables and a view");
    assert_eq!(
        find(&tables, &[("name", "customer_orders")])["kind"],
        "view"
    );
    assert_eq!(
        find(&tables, &[("name", "customers")])["rowCountEstimate"],
        1
    );
    let columns = stream(EntityKind::Column);
    assert_eq!(columns.len(), 4 + 5 + 3 + 2 + 3 + 2);
    assert_eq!(
        find(&columns, &[("table", "orders"), ("name", "with_tax")])["generated"],
        "stored"
    );
    assert_eq!(
        find(&columns, &[("table", "select"), ("name", "v")])["generated"],
        "virtual"
    );
    assert_eq!(
        find(&columns, &[("table", "select"), ("name", "ünïcödé")])["ordinal"],
        2
    );
    assert_eq!(
        find(&columns, &[("table", "customers"), ("name", "Full Name")])["nullable"],
        false
    );
    assert_eq!(
        find(&columns, &[("table", "customers"), ("name", "created")])["default"],
        "CURRENT_TIMESTAMP"
    );

    let constraints = stream(EntityKind::Constraint);
    let composite = find(
        &constraints,
        &[("table", "order_notes"), ("kind", "foreignKey")],
    );
    assert_eq!(composite["columns"], json!(["order_id", "order_line"]));
    assert_eq!(composite["referencedColumns"], json!(["id", "line"]));
    let self_key = find(
        &constraints,
        &[("table", "employees"), ("kind", "foreignKey")],
    );
    assert_eq!(
        self_key["referencedTable"],
        json!({"schema": "main", "name": "employees"})
    );
    assert_eq!(
        find(&constraints, &[("table", "orders"), ("kind", "foreignKey")])["onDelete"],
        "CASCADE"
    );
    assert_eq!(
        find(&constraints, &[("table", "orders"), ("kind", "primaryKey")])["columns"],
        json!(["id", "line"])
    );
    find(&constraints, &[("table", "customers"), ("kind", "unique")]);
    let indexes = stream(EntityKind::Index);
    assert_eq!(
        find(&indexes, &[("name", "customers_lower_email")])["columns"],
        json!(["<expression>"])
    );
    assert!(
        stream(EntityKind::ViewDefinition)[0]["definition"]
            .as_str()
            .expect("sql")
            .starts_with("CREATE VIEW customer_orders")
    );

    for entry in &manifest.files {
        let text = String::from_utf8(
            zstd::decode_all(std::fs::File::open(out.join(&entry.path)).expect("open"))
                .expect("zstd"),
        )
        .expect("utf-8");
        assert!(!text.contains(CANARY), "{} carries row data", entry.path);
    }
    let again = extract(&db, &dir.join("again"), &[]).expect("extract again");
    assert_eq!(
        manifest.files.iter().map(|f| &f.sha256).collect::<Vec<_>>(),
        again.files.iter().map(|f| &f.sha256).collect::<Vec<_>>(),
        "same file, same bytes"
    );
}

#[test]
fn table_filters_apply_to_every_stream() {
    let scratch = scratch("sqlite-filters");
    let dir = scratch.path();
    let db = fixture(dir);
    let out = dir.join("out");
    let manifest = extract(&db, &out, &[("exclude-tables", "^main\\.orders$")]).expect("extract");
    for kind in [
        EntityKind::Table,
        EntityKind::Column,
        EntityKind::Constraint,
        EntityKind::Index,
    ] {
        let records = read_stream(&out, &manifest, kind).expect("read");
        assert!(
            !records
                .iter()
                .any(|r| r["name"] == "orders" || r["table"] == "orders"),
            "{kind:?} still has orders"
        );
    }
}

#[test]
fn a_missing_or_invalid_file_fails_clearly_without_a_manifest() {
    let scratch = scratch("sqlite-missing");
    let dir = scratch.path();
    let out = dir.join("out");
    let error = extract(&dir.join("nope.db"), &out, &[]).expect_err("missing file");
    assert!(error.to_string().contains("nope.db"), "{error}");
    std::fs::write(dir.join("text.db"), "not a database").expect("write");
    let error = extract(&dir.join("text.db"), &dir.join("out2"), &[]).expect_err("not a database");
    assert!(
        !dir.join("out2/manifest.json").exists() && !out.join("manifest.json").exists(),
        "{error}"
    );
}
