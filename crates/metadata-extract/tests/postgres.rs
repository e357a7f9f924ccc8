//! Extraction from a real PostgreSQL server (started by `scripts/test.sh`, see
//! `scripts/services.sh`), over a fixture with every oddity the catalog allows.
//!
//! The server's address comes from `OUTPOST_TEST_PG_*`; without them the tests fail with a
//! message saying how to start the server, never pass silently.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use metadata_extract::writer::{read_stream, verify};
use metadata_extract::{EntityKind, ExtractError, Manifest, RunIdentity};
use serde_json::{Value, json};
use support::{env, find, runtime, scratch};
use tempfile::TempDir;

const CANARY_ROW: &str = "CANARY-ROW-4b1d9c";

struct Fixture {
    database: String,
    second_database: String,
    reader: String,
    reader_password: String,
}

fn superuser_config(database: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(env("OUTPOST_TEST_PG_HOST"))
        .port(env("OUTPOST_TEST_PG_PORT").parse().expect("port"))
        .user(env("OUTPOST_TEST_PG_SUPERUSER"))
        .password(env("OUTPOST_TEST_PG_PASSWORD"))
        .dbname(database);
    config
}

async fn superuser(database: &str) -> tokio_postgres::Client {
    let (client, connection) = superuser_config(database)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("superuser connects");
    tokio::spawn(connection);
    client
}

/// Creates the fixture databases once per test binary.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let id = std::process::id();
        let fixture = Fixture {
            database: format!("outpost_fx_{id}"),
            second_database: format!("outpost_fx_{id}_b"),
            reader: format!("outpost_reader_{id}"),
            reader_password: format!("CANARY-PASSWORD-{id}-9e2f"),
        };
        runtime().block_on(async {
            let admin = superuser("postgres").await;
            for db in [&fixture.database, &fixture.second_database] {
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\""))
                    .await
                    .expect("drop database");
                admin
                    .batch_execute(&format!("CREATE DATABASE \"{db}\""))
                    .await
                    .expect("create database");
            }
            admin
                .batch_execute(&format!(
                    "DROP ROLE IF EXISTS {r}; CREATE ROLE {r} LOGIN PASSWORD '{p}'",
                    r = fixture.reader,
                    p = fixture.reader_password
                ))
                .await
                .expect("create role");
            let sql = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/postgres.sql"),
            )
            .expect("fixture");
            superuser(&fixture.database)
                .await
                .batch_execute(&sql.replace("{reader}", &fixture.reader))
                .await
                .expect("load fixture");
            superuser(&fixture.second_database)
                .await
                .batch_execute("CREATE TABLE public.only_here (id int PRIMARY KEY)")
                .await
                .expect("second db");
        });
        fixture
    })
}

/// A secrets folder with `password`, a newline after it as `kubectl create secret
/// --from-file` leaves one.
fn secrets_dir(password: &str) -> TempDir {
    support::secrets(&format!("{password}\n"))
}

fn parameters(fixture: &Fixture, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut parameters = vec![
        ("host".to_owned(), env("OUTPOST_TEST_PG_HOST")),
        ("port".to_owned(), env("OUTPOST_TEST_PG_PORT")),
        ("database".to_owned(), fixture.database.clone()),
        ("user".to_owned(), fixture.reader.clone()),
        ("ssl-mode".to_owned(), "disable".to_owned()),
        (
            "include-databases".to_owned(),
            format!("^{}$", fixture.database),
        ),
    ];
    for (name, value) in extra {
        parameters.retain(|(n, _)| n != name);
        parameters.push(((*name).to_owned(), (*value).to_owned()));
    }
    parameters
}

fn extract(
    out: &Path,
    parameters: Vec<(String, String)>,
    password: &str,
) -> Result<Manifest, ExtractError> {
    let secrets = secrets_dir(password);
    support::extract("postgres", out, parameters, |request| {
        request.secrets_dir = Some(secrets.path().to_owned());
        request.identity = RunIdentity {
            connector: "postgres".into(),
            connection: Some("fixture".into()),
            job_id: Some("job-1".into()),
            run_id: Some("run-1".into()),
        };
        request.part_bytes = 64 * 1024 * 1024;
    })
}

/// An extraction of the fixture into a scratch folder: the folder and the manifest.
fn extract_fixture(name: &str) -> (TempDir, Manifest) {
    let fixture = fixture();
    let out = scratch(&format!("pg-{name}"));
    let manifest = extract(
        out.path(),
        parameters(fixture, &[]),
        &fixture.reader_password,
    )
    .unwrap_or_else(|e| panic!("extract failed: {e:?}"));
    (out, manifest)
}

/// The catalog's own counts over what the reader may use, by the superuser.
fn catalog_counts(database: &str) -> BTreeMap<EntityKind, u64> {
    let visible = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'secret_schema') AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'";
    let queries = [
        (
            EntityKind::Schema,
            format!("SELECT count(*) FROM pg_namespace n WHERE {visible}"),
        ),
        (
            EntityKind::Table,
            format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','v','m','f','p') AND {visible}"
            ),
        ),
        (
            EntityKind::Column,
            format!(
                "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','f','p') AND {visible}"
            ),
        ),
        (
            EntityKind::Constraint,
            format!(
                "SELECT count(*) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE k.contype IN ('p','u','f','c','x') AND {visible}"
            ),
        ),
        (
            EntityKind::Index,
            format!(
                "SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','m','p','f') AND {visible}"
            ),
        ),
        (
            EntityKind::ViewDefinition,
            format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v','m') AND {visible}"
            ),
        ),
    ];
    runtime().block_on(async {
        let client = superuser(database).await;
        let mut counts = BTreeMap::new();
        for (kind, sql) in queries {
            let count: i64 = client.query_one(&sql, &[]).await.expect("count").get(0);
            counts.insert(kind, count as u64);
        }
        counts
    })
}

fn records(out: &Path, manifest: &Manifest, kind: EntityKind) -> Vec<Value> {
    read_stream(out, manifest, kind).expect("read stream")
}

/// The query audit lists every statement of a whole run, each a catalog read (parsed).
#[test]
fn the_query_audit_lists_only_catalog_reads() {
    let (_out, manifest) = extract_fixture("audit");
    support::audit::assert_catalog_only(support::audit::Catalog::Postgres, &manifest);
    // Rows are counted: the columns query returns one per column of the catalog.
    let columns = manifest.totals[&EntityKind::Column];
    assert!(
        manifest
            .queries
            .iter()
            .any(|q| q.rows >= columns && columns > 0),
        "{columns} columns, but no statement returned as many rows: {:?}",
        manifest.queries
    );
}

#[test]
fn counts_equal_the_catalogs_own_counts() {
    let (out, manifest) = extract_fixture("counts");
    verify(out.path(), &manifest).expect("every checksum matches");
    let expected = catalog_counts(&fixture().database);
    for (kind, count) in &expected {
        assert_eq!(
            manifest.totals[kind], *count,
            "{kind:?}: output {} vs catalog {count}",
            manifest.totals[kind]
        );
    }
    assert_eq!(
        manifest.totals[&EntityKind::Database],
        1,
        "only the included database"
    );
    assert!(
        manifest.totals[&EntityKind::Lineage] >= 3,
        "views read customers and orders"
    );
    println!("catalog counts matched: {expected:?}");
}

#[test]
fn oddities_are_extracted_exactly() {
    let (scratch, manifest) = extract_fixture("oddities");
    let out = scratch.path();
    let db = fixture().database.as_str();
    let schemas = records(out, &manifest, EntityKind::Schema);
    for name in [
        "public",
        "MixedCase",
        "ünïcödé 📦",
        "select",
        "empty_schema",
        "it's a \\ schema",
    ] {
        find(&schemas, &[("database", db), ("name", name)]);
    }
    assert_eq!(
        find(&schemas, &[("name", "empty_schema")])["comment"],
        "Nothing here yet"
    );

    let tables = records(out, &manifest, EntityKind::Table);
    let kind = |schema: &str, name: &str| {
        find(&tables, &[("schema", schema), ("name", name)])["kind"].clone()
    };
    assert_eq!(kind("public", "customers"), "table");
    assert_eq!(kind("public", "customer_orders"), "view");
    assert_eq!(kind("public", "order_totals"), "materializedView");
    assert_eq!(kind("public", "events"), "partitionedTable");
    assert_eq!(kind("public", "events_2024"), "partition");
    assert_eq!(kind("MixedCase", "Quoted Table"), "table");
    assert_eq!(kind("ünïcödé 📦", "tàble"), "table");
    assert_eq!(kind("select", "from"), "table");
    assert_eq!(kind("it's a \\ schema", "tab\tand\nnewline"), "table");
    let partition = find(&tables, &[("name", "events_2024")]);
    assert_eq!(
        partition["partitionOf"],
        json!({"schema": "public", "name": "events"})
    );
    assert_eq!(
        partition["partitionBound"],
        "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
    );
    let customers = find(&tables, &[("name", "customers")]);
    assert_eq!(customers["comment"], "Customer master data");
    assert_eq!(
        customers["rowCountEstimate"], 1,
        "estimate from ANALYZE, not a count"
    );
    assert!(find(&tables, &[("name", "customer_orders")])["rowCountEstimate"].is_null());
    assert!(
        !tables.iter().any(|t| t["schema"] == "secret_schema"),
        "an unusable schema is not extracted"
    );

    let columns = records(out, &manifest, EntityKind::Column);
    let column =
        |table: &str, name: &str| find(&columns, &[("table", table), ("name", name)]).clone();
    assert_eq!(column("customers", "id")["generated"], "identityAlways");
    assert_eq!(column("customers", "tags")["dataType"], "text[]");
    assert_eq!(
        column("customers", "email")["dataType"],
        "character varying(200)"
    );
    assert_eq!(
        column("customers", "email")["comment"],
        "Primary e-mail address"
    );
    assert_eq!(column("customers", "mood")["dataType"], "mood");
    assert_eq!(column("customers", "mood")["default"], "'ok'::mood");
    assert_eq!(column("customers", "score")["dataType"], "positive_int");
    assert_eq!(column("customers", "Name")["nullable"], false);
    assert_eq!(column("orders", "amount_with_tax")["generated"], "stored");
    assert_eq!(
        column("orders", "amount_with_tax")["generationExpression"],
        "(amount * 1.2)"
    );
    assert_eq!(column("Quoted Table", "Column With Space")["ordinal"], 1);
    assert_eq!(column("Quoted Table", "ÄÖÜ")["ordinal"], 3);
    // Read through COPY's text format: every escape undone.
    let odd = find(
        &columns,
        &[
            ("schema", "it's a \\ schema"),
            ("table", "tab\tand\nnewline"),
            ("name", "back\\slash"),
        ],
    );
    assert_eq!(odd["ordinal"], 1);
    assert!(
        odd["default"]
            .as_str()
            .is_some_and(|d| d.contains("a\\b\tc")),
        "{odd}"
    );
    assert_eq!(odd["comment"], "line one\nline two\\ with\ttab");
    assert_eq!(column("tab\tand\nnewline", "quote'd")["ordinal"], 2);
    assert_eq!(
        column("with_dropped", "c")["ordinal"],
        2,
        "ordinals skip dropped columns"
    );

    let constraints = records(out, &manifest, EntityKind::Constraint);
    let composite = find(&constraints, &[("name", "order_notes_order_fk")]);
    assert_eq!(composite["kind"], "foreignKey");
    assert_eq!(composite["columns"], json!(["order_id", "order_line"]));
    assert_eq!(
        composite["referencedTable"],
        json!({"schema": "public", "name": "orders"})
    );
    assert_eq!(composite["referencedColumns"], json!(["id", "line"]));
    let self_reference = constraints
        .iter()
        .find(|c| c["table"] == "employees" && c["kind"] == "foreignKey")
        .expect("self-referencing key");
    assert_eq!(
        self_reference["referencedTable"],
        json!({"schema": "public", "name": "employees"})
    );
    let cascade = constraints
        .iter()
        .find(|c| c["table"] == "orders" && c["kind"] == "foreignKey")
        .expect("orders fk");
    assert_eq!(cascade["onDelete"], "CASCADE");
    assert!(constraints.iter().any(|c| c["table"] == "orders"
        && c["kind"] == "check"
        && c["definition"] == "CHECK (amount > 0::numeric)"));
    let primary = constraints
        .iter()
        .find(|c| c["table"] == "orders" && c["kind"] == "primaryKey")
        .expect("pk");
    assert_eq!(primary["columns"], json!(["id", "line"]));

    let indexes = records(out, &manifest, EntityKind::Index);
    let partial = find(&indexes, &[("name", "orders_big_amount_idx")]);
    assert_eq!(partial["predicate"], "amount > 100::numeric");
    assert_eq!(
        find(&indexes, &[("name", "customers_lower_email_idx")])["columns"],
        json!(["lower(email::text)"])
    );

    let lineage = records(out, &manifest, EntityKind::Lineage);
    for source in ["customers", "orders"] {
        lineage
            .iter()
            .find(|l| l["view"]["name"] == "customer_orders" && l["source"]["name"] == source)
            .unwrap_or_else(|| panic!("customer_orders reads {source}"));
    }
    let views = records(out, &manifest, EntityKind::ViewDefinition);
    assert!(
        find(&views, &[("view", "order_totals")])["definition"]
            .as_str()
            .expect("text")
            .contains("sum(orders.amount)"),
        "{views:?}"
    );

    assert!(
        manifest
            .skipped
            .iter()
            .any(|s| s.name == format!("{db}.secret_schema") && s.reason == "no USAGE privilege"),
        "skipped: {:?}",
        manifest.skipped
    );
}

#[test]
fn no_row_data_and_no_secret_ever_reaches_the_output() {
    let (scratch, manifest) = extract_fixture("canary");
    let out = scratch.path();
    let mut scanned = 0;
    for entry in &manifest.files {
        let bytes = zstd::decode_all(std::fs::File::open(out.join(&entry.path)).expect("open"))
            .expect("zstd");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(
            !text.contains(CANARY_ROW),
            "{} carries row data",
            entry.path
        );
        assert!(
            !text.contains(&fixture().reader_password),
            "{} carries the password",
            entry.path
        );
        assert!(!text.contains("424242"), "{} carries a salary", entry.path);
        scanned += text.len();
    }
    let manifest_text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest");
    assert!(
        !manifest_text.contains(CANARY_ROW) && !manifest_text.contains(&fixture().reader_password)
    );
    assert!(
        scanned > 10_000,
        "the output was actually scanned ({scanned} bytes)"
    );
}

#[test]
fn the_same_catalog_gives_the_same_records_in_the_same_order() {
    let (first_out, first) = extract_fixture("same-1");
    let (second_out, second) = extract_fixture("same-2");
    for kind in EntityKind::ALL {
        assert_eq!(
            records(first_out.path(), &first, kind),
            records(second_out.path(), &second, kind),
            "{kind:?}"
        );
    }
    let hashes = |m: &Manifest| {
        m.files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(hashes(&first), hashes(&second), "byte-identical files");
}

#[test]
fn every_database_is_extracted_unless_filtered() {
    let fixture = fixture();
    let scratch = scratch("pg-all-dbs");
    let out = scratch.path();
    let include = format!("^{}(_b)?$", fixture.database);
    let manifest = extract(
        out,
        parameters(
            fixture,
            &[
                ("include-databases", &include),
                ("exclude-tables", "^public\\.(customers|orders)$"),
            ],
        ),
        &fixture.reader_password,
    )
    .expect("extract");
    assert_eq!(manifest.totals[&EntityKind::Database], 2);
    let tables = records(out, &manifest, EntityKind::Table);
    find(
        &tables,
        &[
            ("database", fixture.second_database.as_str()),
            ("name", "only_here"),
        ],
    );
    assert!(
        !tables
            .iter()
            .any(|t| t["name"] == "customers" || t["name"] == "orders"),
        "excluded tables are gone"
    );
    let columns = records(out, &manifest, EntityKind::Column);
    assert!(
        !columns.iter().any(|c| c["table"] == "customers"),
        "and so are their columns"
    );
}

#[test]
fn a_wrong_password_is_refused_and_not_retried() {
    let fixture = fixture();
    let scratch = scratch("pg-wrong-password");
    let out = scratch.path();
    let error = extract(out, parameters(fixture, &[]), "not-the-password").expect_err("refused");
    assert!(
        matches!(error, ExtractError::Authentication { .. }),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), outpost_core::ExitCode::NoPermission);
    assert!(!out.join("manifest.json").exists());
    let message = format!("{error}");
    assert!(
        !message.contains("not-the-password"),
        "the password never appears in errors: {message}"
    );
}

#[test]
fn an_unreachable_server_is_a_temporary_failure() {
    let fixture = fixture();
    let scratch = scratch("pg-unreachable");
    let out = scratch.path();
    let error = extract(
        out,
        parameters(fixture, &[("port", "1")]),
        &fixture.reader_password,
    )
    .expect_err("unreachable");
    assert!(
        matches!(error, ExtractError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), outpost_core::ExitCode::Temporary);
    assert!(
        !out.join("manifest.json").exists(),
        "a failed run leaves no manifest"
    );
}

#[test]
fn tls_to_a_server_without_tls_fails_clearly() {
    let fixture = fixture();
    let scratch = scratch("pg-tls");
    let out = scratch.path();
    let error = extract(
        out,
        parameters(fixture, &[("ssl-mode", "verify-full")]),
        &fixture.reader_password,
    )
    .expect_err("no TLS on the server");
    assert_eq!(
        error.exit_code(),
        outpost_core::ExitCode::Config,
        "{error:?}"
    );
    let prefer = extract(
        support::scratch("pg-tls-prefer").path(),
        parameters(fixture, &[("ssl-mode", "prefer")]),
        &fixture.reader_password,
    );
    assert!(
        prefer.is_ok(),
        "prefer falls back to plain text: {prefer:?}"
    );
}

#[test]
fn bad_parameters_are_all_reported_and_not_retried() {
    let fixture = fixture();
    let scratch = scratch("pg-bad-parameters");
    let out = scratch.path();
    let error = extract(
        out,
        parameters(
            fixture,
            &[
                ("port", "70000"),
                ("ssl-mode", "sometimes"),
                ("include-tables", "(["),
                ("hots", "x"),
            ],
        ),
        &fixture.reader_password,
    )
    .expect_err("bad parameters");
    let ExtractError::Parameters { problems, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(problems.len() >= 3, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("did you mean `host`")),
        "{problems:?}"
    );
    assert_eq!(error.exit_code(), outpost_core::ExitCode::Usage);
    assert!(!out.exists() || !out.join("manifest.json").exists());
}

/// A role the server accepts only over TLS (see scripts/services.sh), against the server's
/// self-signed certificate for 127.0.0.1.
fn extract_tls(
    name: &str,
    ssl_mode: &str,
    ca_bundle: Option<PathBuf>,
) -> Result<Manifest, ExtractError> {
    let parameters = vec![
        ("host".to_owned(), env("OUTPOST_TEST_PG_HOST")),
        ("port".to_owned(), env("OUTPOST_TEST_PG_PORT")),
        ("database".to_owned(), "postgres".to_owned()),
        ("user".to_owned(), env("OUTPOST_TEST_PG_TLS_USER")),
        ("ssl-mode".to_owned(), ssl_mode.to_owned()),
        ("include-databases".to_owned(), "^postgres$".to_owned()),
    ];
    let secrets = secrets_dir(&env("OUTPOST_TEST_PG_TLS_PASSWORD"));
    let out = scratch(&format!("pg-{name}"));
    support::extract("postgres", out.path(), parameters, |request| {
        request.secrets_dir = Some(secrets.path().to_owned());
        request.ca_bundle = ca_bundle;
    })
}

#[test]
fn a_server_that_requires_tls_is_reported_as_such() {
    let error =
        extract_tls("tls-required", "disable", None).expect_err("the role may only use TLS");
    assert!(
        matches!(error, ExtractError::TlsRequired { .. }),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), outpost_core::ExitCode::Config);
    assert!(error.to_string().contains("requires TLS"), "{error}");
}

#[test]
fn tls_modes_verify_what_they_promise() {
    let error = support::untrusted_after_tls_modes(extract_tls);
    assert!(matches!(error, ExtractError::Tls { .. }), "{error:?}");
    assert_eq!(error.exit_code(), outpost_core::ExitCode::Config);
}

/// The extraction session as the server sees it: read-only, each statement bounded, sorts
/// given room, and no parallel workers (`SESSION_OPTIONS`, which every extraction connection
/// and the benchmark's baseline use).
#[test]
fn the_extraction_session_is_read_only_bounded_and_serial() {
    runtime().block_on(async {
        let mut config = superuser_config("postgres");
        config.options(metadata_extract::sources::postgres::SESSION_OPTIONS);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("the server accepts the session options");
        tokio::spawn(connection);
        for (setting, expected) in [
            ("transaction_read_only", "on"),
            ("statement_timeout", "5min"),
            ("work_mem", "64MB"),
            ("max_parallel_workers_per_gather", "0"),
        ] {
            let row = client
                .query_one(&format!("SHOW {setting}"), &[])
                .await
                .expect("show");
            assert_eq!(row.get::<_, String>(0), expected, "{setting}");
        }
    });
}
