//! Extraction from a real MariaDB server (started by `scripts/test.sh`, see
//! `scripts/services.sh`). The server's address comes from `OUTPOST_TEST_MYSQL_*`; without
//! them the tests fail with a message saying how to start it, never pass silently.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use metadata_extract::writer::{read_stream, verify};
use metadata_extract::{EntityKind, ExtractError, Manifest};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};
use support::{env, find, runtime, scratch};

const CANARY_ROW: &str = "CANARY-ROW-mysql-0c4e";

struct Fixture {
    prefix: String,
    reader: String,
    password: String,
}

async fn admin() -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(env("OUTPOST_TEST_MYSQL_HOST"))
        .tcp_port(env("OUTPOST_TEST_MYSQL_PORT").parse().expect("port"))
        .user(Some(env("OUTPOST_TEST_MYSQL_ADMIN")))
        .pass(Some(env("OUTPOST_TEST_MYSQL_PASSWORD")))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.expect("admin connects")
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let id = std::process::id();
        let fixture = Fixture {
            prefix: format!("fx{id}_"),
            reader: format!("outpost_reader_{id}"),
            password: format!("CANARY-PASSWORD-{id}-mysql"),
        };
        let reader = format!("'{}'@'127.0.0.1'", fixture.reader);
        runtime().block_on(async {
            let mut admin = admin().await;
            admin
                .query_drop(format!("DROP USER IF EXISTS {reader}"))
                .await
                .expect("drop user");
            admin
                .query_drop(format!(
                    "CREATE USER {reader} IDENTIFIED BY '{}'",
                    fixture.password
                ))
                .await
                .expect("create user");
            let sql = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mysql.sql"),
            )
            .expect("fixture");
            let sql = sql
                .replace("{p}", &fixture.prefix)
                .replace("{reader}", &reader);
            let statements: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            for statement in statements
                .split(";\n")
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                admin
                    .query_drop(statement.trim_end_matches(';'))
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
            admin
                .query_drop(
                    "ANALYZE TABLE ".to_owned() + &format!("`{}shop`.customers", fixture.prefix),
                )
                .await
                .expect("analyze");
        });
        fixture
    })
}

fn extract(out: &Path, extra: &[(&str, &str)], password: &str) -> Result<Manifest, ExtractError> {
    let fixture = fixture();
    let secrets = support::secrets(password);
    let mut parameters = vec![
        ("host".to_owned(), env("OUTPOST_TEST_MYSQL_HOST")),
        ("port".to_owned(), env("OUTPOST_TEST_MYSQL_PORT")),
        ("user".to_owned(), fixture.reader.clone()),
        ("ssl-mode".to_owned(), "disable".to_owned()),
        ("include-schemas".to_owned(), format!("^{}", fixture.prefix)),
    ];
    for (name, value) in extra {
        parameters.retain(|(n, _)| n != name);
        parameters.push(((*name).to_owned(), (*value).to_owned()));
    }
    support::extract("mysql", out, parameters, |request| {
        request.secrets_dir = Some(secrets.path().to_owned());
        request.part_bytes = 64 * 1024 * 1024;
    })
}

/// The server's own counts over the schemas the reader may see, by the administrator.
fn catalog_counts() -> BTreeMap<EntityKind, u64> {
    let p = &fixture().prefix;
    let visible = format!("IN ('{p}shop', '{p}Mixed Case ünï', '{p}empty')");
    let queries = [
        (
            EntityKind::Schema,
            format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME {visible}"),
        ),
        (
            EntityKind::Table,
            format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA {visible}"),
        ),
        (
            EntityKind::Column,
            format!("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA {visible}"),
        ),
        (
            EntityKind::Constraint,
            format!(
                "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA {visible}"
            ),
        ),
        (
            EntityKind::Index,
            format!(
                "SELECT COUNT(DISTINCT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA {visible}"
            ),
        ),
        (
            EntityKind::ViewDefinition,
            format!("SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA {visible}"),
        ),
    ];
    runtime().block_on(async {
        let mut admin = admin().await;
        let mut counts = BTreeMap::new();
        for (kind, sql) in queries {
            let count: Option<u64> = admin.query_first(sql).await.expect("count");
            counts.insert(kind, count.expect("a count"));
        }
        counts
    })
}

#[test]
fn counts_equal_the_servers_own_counts_and_records_follow_the_schemas() {
    let scratch = scratch("mysql-counts");
    let out = scratch.path();
    let manifest = extract(out, &[], &fixture().password).unwrap_or_else(|e| panic!("{e:?}"));
    verify(out, &manifest).expect("checksums");
    // The query audit lists every statement, each a catalog read (parsed).
    support::audit::assert_catalog_only(support::audit::Catalog::Mysql, &manifest);
    let mut expected = catalog_counts();
    // View texts the server hides from this user are listed as skipped, not written empty.
    let hidden = manifest
        .skipped
        .iter()
        .filter(|s| s.kind == EntityKind::ViewDefinition)
        .count() as u64;
    *expected
        .get_mut(&EntityKind::ViewDefinition)
        .expect("views") -= hidden;
    for (kind, count) in &expected {
        assert_eq!(manifest.totals[kind], *count, "{kind:?}");
    }
    assert!(
        !read_stream(out, &manifest, EntityKind::Schema)
            .expect("read")
            .iter()
            .any(|s| s["name"].as_str().is_some_and(|n| n.ends_with("secret")))
    );
    for (kind, (name, text)) in EntityKind::ALL.iter().zip(metadata_extract::json_schemas()) {
        let validator =
            jsonschema::draft202012::new(&serde_json::from_str::<Value>(&text).expect("schema"))
                .expect("compiles");
        for record in read_stream(out, &manifest, *kind).expect("read") {
            assert!(
                validator.is_valid(&record),
                "{kind:?} record {record} breaks {name}"
            );
        }
    }
    println!("server counts matched: {expected:?}");
}

#[test]
fn mysql_oddities_are_extracted_exactly() {
    let scratch = scratch("mysql-oddities");
    let out = scratch.path();
    let manifest = extract(out, &[], &fixture().password).expect("extract");
    let p = fixture().prefix.clone();
    let shop = format!("{p}shop");
    let stream = |kind| read_stream(out, &manifest, kind).expect("read");
    let tables = stream(EntityKind::Table);
    assert_eq!(
        find(&tables, &[("schema", &shop), ("name", "customer_orders")])["kind"],
        "view"
    );
    assert_eq!(
        find(&tables, &[("schema", &shop), ("name", "events")])["kind"],
        "partitionedTable"
    );
    assert_eq!(
        find(&tables, &[("schema", &shop), ("name", "customers")])["comment"],
        "Customer master data"
    );
    find(
        &tables,
        &[
            ("schema", &format!("{p}Mixed Case ünï")),
            ("name", "Table With Space"),
        ],
    );
    find(&tables, &[("schema", &shop), ("name", "select")]);

    let columns = stream(EntityKind::Column);
    let column = |table: &str, name: &str| {
        find(
            &columns,
            &[("schema", &shop), ("table", table), ("name", name)],
        )
        .clone()
    };
    assert_eq!(column("customers", "id")["generated"], "identityByDefault");
    assert_eq!(
        column("customers", "mood")["dataType"],
        "enum('sad','ok','happy')"
    );
    assert_eq!(column("customers", "Name")["comment"], "Full name");
    assert_eq!(column("customers", "Name")["nullable"], false);
    assert_eq!(column("orders", "amount_with_tax")["generated"], "stored");
    assert!(
        column("orders", "amount_with_tax")["generationExpression"]
            .as_str()
            .expect("expression")
            .contains("1.2")
    );
    assert_eq!(column("select", "v")["generated"], "virtual");
    assert_eq!(column("select", "ünïcödé col")["ordinal"], 2);

    let constraints = stream(EntityKind::Constraint);
    let composite = find(&constraints, &[("name", "order_notes_order_fk")]);
    assert_eq!(composite["columns"], json!(["order_id", "order_line"]));
    assert_eq!(composite["referencedColumns"], json!(["id", "line"]));
    assert_eq!(
        composite["referencedTable"],
        json!({"schema": shop, "name": "orders"})
    );
    assert_eq!(
        find(&constraints, &[("name", "employees_manager_fk")])["referencedTable"]["name"],
        "employees"
    );
    assert_eq!(
        find(&constraints, &[("name", "orders_customer_fk")])["onDelete"],
        "CASCADE"
    );
    assert!(
        find(&constraints, &[("name", "amount_positive")])["definition"]
            .as_str()
            .expect("check")
            .contains("amount")
    );
    assert_eq!(
        find(&constraints, &[("table", "orders"), ("kind", "primaryKey")])["columns"],
        json!(["id", "line"])
    );

    let indexes = stream(EntityKind::Index);
    assert_eq!(
        find(&indexes, &[("name", "orders_amount_idx")])["columns"],
        json!(["amount", "customer_id"])
    );
    assert_eq!(
        find(&indexes, &[("table", "orders"), ("name", "PRIMARY")])["primary"],
        true
    );
    // The metadata-only user has no SELECT on the view, so MariaDB hides its text.
    assert!(stream(EntityKind::ViewDefinition).is_empty());
    assert!(
        manifest
            .skipped
            .iter()
            .any(|s| s.name == format!("{shop}.customer_orders")
                && s.reason.contains("SHOW VIEW and SELECT")),
        "{:?}",
        manifest.skipped
    );
}

#[test]
fn no_row_data_or_secret_reaches_the_output_and_runs_repeat_exactly() {
    let fixture = fixture();
    let (first_scratch, second_scratch) = (scratch("mysql-canary"), scratch("mysql-canary"));
    let (first_out, second_out) = (first_scratch.path(), second_scratch.path());
    let first = extract(first_out, &[], &fixture.password).expect("extract");
    let second = extract(second_out, &[], &fixture.password).expect("extract");
    for entry in &first.files {
        let text = String::from_utf8(
            zstd::decode_all(std::fs::File::open(first_out.join(&entry.path)).expect("open"))
                .expect("zstd"),
        )
        .expect("utf-8");
        for forbidden in [CANARY_ROW, fixture.password.as_str(), "987654", "4242"] {
            assert!(
                !text.contains(forbidden),
                "{} carries `{forbidden}`",
                entry.path
            );
        }
    }
    for kind in EntityKind::ALL {
        assert_eq!(
            read_stream(first_out, &first, kind).expect("read"),
            read_stream(second_out, &second, kind).expect("read"),
            "{kind:?}"
        );
    }
}

#[test]
fn a_wrong_password_is_refused_and_an_unreachable_server_is_temporary() {
    let error =
        extract(scratch("mysql-wrong").path(), &[], "not-the-password").expect_err("refused");
    assert!(
        matches!(error, ExtractError::Authentication { .. }),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), outpost_core::ExitCode::NoPermission);
    assert!(!format!("{error}").contains("not-the-password"));
    let scratch = scratch("mysql-unreachable");
    let out = scratch.path();
    let error = extract(out, &[("port", "1")], &fixture().password).expect_err("unreachable");
    assert_eq!(
        error.exit_code(),
        outpost_core::ExitCode::Temporary,
        "{error:?}"
    );
    assert!(!out.join("manifest.json").exists());
}

/// A user the server accepts only over TLS (see scripts/services.sh), against the server's
/// certificate for 127.0.0.1, signed by the test CA.
fn extract_tls(
    name: &str,
    ssl_mode: &str,
    ca_bundle: Option<PathBuf>,
) -> Result<Manifest, ExtractError> {
    let secrets = support::secrets("outpost-tls-only");
    let out = scratch(&format!("mysql-{name}"));
    let parameters = vec![
        ("host".to_owned(), env("OUTPOST_TEST_MYSQL_HOST")),
        ("port".to_owned(), env("OUTPOST_TEST_MYSQL_PORT")),
        ("user".to_owned(), "outpost_tls_only".to_owned()),
        ("ssl-mode".to_owned(), ssl_mode.to_owned()),
    ];
    support::extract("mysql", out.path(), parameters, |request| {
        request.secrets_dir = Some(secrets.path().to_owned());
        request.ca_bundle = ca_bundle;
    })
}

#[test]
fn mysql_tls_modes_verify_what_they_promise() {
    let error = support::untrusted_after_tls_modes(extract_tls);
    assert_eq!(
        error.exit_code(),
        outpost_core::ExitCode::Config,
        "{error:?}"
    );
    // Without TLS the server refuses this user; MariaDB reports it as a refused login.
    let error = extract_tls("tls-disabled", "disable", None).expect_err("TLS-only user");
    assert_ne!(
        error.exit_code(),
        outpost_core::ExitCode::Temporary,
        "never retried: {error:?}"
    );
}
