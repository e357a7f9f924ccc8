//! Extraction from Snowflake's driver protocol, against fakesnow (started by
//! `scripts/services.sh`: `OUTPOST_TEST_SNOWFLAKE_URL`) behind the conformance layer of
//! `support/snowflake.rs`, which closes fakesnow's gaps with Snowflake's documented
//! behaviour (credential checks, `SHOW` paging and its 10,000-row cap, result chunks, faults).
//!
//! Deviations of fakesnow that the fixture works around, named here:
//! - database names go unquoted into DuckDB's `ATTACH`: they are plain upper-case;
//! - DuckDB names are case-insensitive: `"Ab"` and `"AB"` cannot both exist;
//! - the `SHOW` transforms put names in `'…'` unescaped: no `'` in names;
//! - column comments are always NULL, `SHOW TABLES` reports `comment = ''` and `rows = 0`;
//! - `SHOW IMPORTED KEYS` answers primary keys with empty `pk_*` columns (the connector reads
//!   a row without the table it references as no foreign key), and `SHOW UNIQUE KEYS` answers
//!   no rows;
//! - every session shares one in-memory DuckDB: names are unique per test process, and the
//!   extraction is filtered to them.

#[path = "support/snowflake.rs"]
mod conformance;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use conformance::{Accept, Conformance, Fault, Options};
use metadata_extract::filter::Filters;
use metadata_extract::http::Retry;
use metadata_extract::sources::ServerConfig;
use metadata_extract::sources::snowflake::auth::{Credential, KeyPair};
use metadata_extract::sources::snowflake::client::{Connection, Session};
use metadata_extract::sources::snowflake::{CatalogSource, ImportedDatabases, SnowflakeConfig};
use metadata_extract::tls::SslMode;
use metadata_extract::writer::{read_stream, verify};
use metadata_extract::{
    EntityKind, ExtractError, Manifest, OutputWriter, RunIdentity, Silent, SourceSecret,
};
use serde_json::Value;
use support::{env, scratch};
use tempfile::TempDir;

const CANARY_ROW: &str = "CANARY-ROW-5f3e1a";
const PASSPHRASE: &str = "CANARY-PASSPHRASE-77d1";
const OAUTH_TOKEN: &str = "CANARY-OAUTH-TOKEN-19ab";
const PASSWORD: &str = "CANARY-PASSWORD-c4e0";
const ACCOUNT: &str = "xy12345.us-east-1";
const USER: &str = "outpost_reader";
/// A schema name of 255 characters.
fn long_name() -> String {
    format!("L{}", "o".repeat(254))
}

/// The keys made by `openssl`, and what `openssl` says their fingerprint is.
struct Keys {
    plain: String,
    aes: String,
    des3: String,
    other: String,
    pkcs1: String,
    fingerprint: String,
    public_pkcs1: Vec<u8>,
}

fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (these tests need the openssl command)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = scratch("snowflake-keys");
        let d = dir.path();
        let read = |name: &str| std::fs::read_to_string(d.join(name)).expect("key file");
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "plain.p8",
            ],
            d,
        );
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "other.p8",
            ],
            d,
        );
        let pass = format!("pass:{PASSPHRASE}");
        openssl(
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                "plain.p8",
                "-out",
                "aes.p8",
                "-passout",
                &pass,
            ],
            d,
        );
        // Snowflake's documentation makes keys this way.
        openssl(
            &[
                "pkcs8", "-topk8", "-v2", "des3", "-in", "plain.p8", "-out", "des3.p8", "-passout",
                &pass,
            ],
            d,
        );
        openssl(
            &[
                "pkey",
                "-in",
                "plain.p8",
                "-traditional",
                "-out",
                "pkcs1.pem",
            ],
            d,
        );
        // The fingerprint as Snowflake's documentation computes it.
        let der = openssl(
            &["pkey", "-in", "plain.p8", "-pubout", "-outform", "DER"],
            d,
        );
        std::fs::write(d.join("pub.der"), &der).expect("pub.der");
        let digest = openssl(&["dgst", "-sha256", "-binary", "pub.der"], d);
        std::fs::write(d.join("digest"), &digest).expect("digest");
        let b64 =
            String::from_utf8(openssl(&["base64", "-A", "-in", "digest"], d)).expect("base64");
        let public_pkcs1 = openssl(
            &[
                "rsa",
                "-in",
                "plain.p8",
                "-RSAPublicKey_out",
                "-outform",
                "DER",
            ],
            d,
        );
        // Read into memory: a static is never dropped, so the folder goes now, not at exit.
        let keys = Keys {
            plain: read("plain.p8"),
            aes: read("aes.p8"),
            des3: read("des3.p8"),
            other: read("other.p8"),
            pkcs1: read("pkcs1.pem"),
            fingerprint: format!("SHA256:{}", b64.trim()),
            public_pkcs1,
        };
        drop(dir);
        keys
    })
}

struct Fixture {
    database: String,
    second: String,
    /// Schemas of `database` (INFORMATION_SCHEMA aside) and their tables and views.
    expected: BTreeMap<(String, String), Vec<String>>,
}

fn upstream() -> String {
    env("OUTPOST_TEST_SNOWFLAKE_URL")
}

fn server(port: u16) -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port,
        user: USER.into(),
        password: None,
        ssl_mode: SslMode::Disable,
        ca_bundle: None,
        connect_timeout: Duration::from_secs(5),
    }
}

fn fast_retry() -> Retry {
    Retry {
        attempts: 4,
        first: Duration::from_millis(20),
        max: Duration::from_millis(200),
        budget: Duration::from_secs(10),
    }
}

/// A session straight on fakesnow (which checks no credential), for building the fixture.
async fn admin() -> Session {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = upstream();
    Session::open(Arc::new(Connection {
        base_url: url,
        account: ACCOUNT.into(),
        user: "admin".into(),
        role: None,
        warehouse: None,
        credential: Credential::Password(SourceSecret::new("unused")),
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        query_timeout: Duration::from_secs(60),
        retry: fast_retry(),
        heartbeat: None,
        audit: Default::default(),
    }))
    .await
    .expect("fakesnow answers a login")
}

async fn run(session: &Session, sql: &str) {
    session
        .query(sql, |_| Ok(()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let id = std::process::id();
        let database = format!("OUTPOST_SF_{id}");
        let second = format!("OUTPOST_SF_{id}_B");
        let mut expected: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        support::runtime().block_on(async {
            let s = admin().await;
            for db in [&database, &second] {
                run(&s, &format!("CREATE OR REPLACE DATABASE {db}")).await;
            }
            let d = &database;
            run(&s, &format!("CREATE SCHEMA IF NOT EXISTS {d}.PUBLIC")).await;
            run(&s, &format!(
                "CREATE TABLE {d}.PUBLIC.CUSTOMERS (ID NUMBER(38,0) NOT NULL PRIMARY KEY, EMAIL VARCHAR(255) NOT NULL UNIQUE, \
                 NOTE TEXT DEFAULT 'none', {} INT, CREATED TIMESTAMP_NTZ)", q("quote\"d"))).await;
            run(&s, &format!(
                "CREATE TABLE {d}.PUBLIC.ORDERS (ID INT PRIMARY KEY, CUSTOMER_ID INT REFERENCES {d}.PUBLIC.CUSTOMERS (ID), AMOUNT NUMBER(12,2))")).await;
            run(&s, &format!("COMMENT ON TABLE {d}.PUBLIC.CUSTOMERS IS 'people who buy'")).await;
            run(&s, &format!("CREATE VIEW {d}.PUBLIC.RECENT AS SELECT ID, EMAIL FROM {d}.PUBLIC.CUSTOMERS")).await;
            run(&s, &format!("INSERT INTO {d}.PUBLIC.CUSTOMERS (ID, EMAIL, NOTE) VALUES (1, '{CANARY_ROW}', '{CANARY_ROW}')")).await;
            expected.insert((d.clone(), "PUBLIC".into()), vec!["CUSTOMERS".into(), "ORDERS".into(), "RECENT".into()]);

            for (schema, table, column) in [
                ("Mixed Case", "Odd Table ünï", "Col With Space"),
                ("ünï cödé 表", "表 table", "ünï"),
            ] {
                run(&s, &format!("CREATE SCHEMA {d}.{}", q(schema))).await;
                run(&s, &format!("CREATE TABLE {d}.{}.{} ({} VARCHAR, {} INT)", q(schema), q(table), q(column), q("quote\"d"))).await;
                expected.insert((d.clone(), schema.into()), vec![table.into()]);
            }
            let long = long_name();
            run(&s, &format!("CREATE SCHEMA {d}.{}", q(&long))).await;
            run(&s, &format!("CREATE TABLE {d}.{}.{} (C1 INT, C2 INT)", q(&long), q(&long))).await;
            expected.insert((d.clone(), long.clone()), vec![long.clone()]);

            // 25 tables: paged at 10 per page by the tests.
            run(&s, &format!("CREATE SCHEMA {d}.PAGED")).await;
            let mut paged = Vec::new();
            for t in 0..25 {
                let name = format!("T{t:02}");
                run(&s, &format!("CREATE TABLE {d}.PAGED.{name} (C1 INT, C2 INT)")).await;
                paged.push(name);
            }
            expected.insert((d.clone(), "PAGED".into()), paged);

            run(&s, &format!("CREATE SCHEMA IF NOT EXISTS {second}.S")).await;
            run(&s, &format!("CREATE TABLE {second}.S.ONLY_ONE (C1 INT, C2 INT)")).await;
            s.close().await;
        });
        Fixture { database, second, expected }
    })
}

/// A conformance layer that accepts `accept`, caps unpaged `SHOW`s at 10 rows, and sends no
/// chunks.
fn accepting(accept: Accept) -> Options {
    Options {
        accept,
        show_cap: 10,
        chunk_rows: 1_000_000,
        tls: None,
    }
}

fn key_pair_proxy_options() -> Options {
    let keys = keys();
    accepting(Accept::KeyPair {
        public_key: keys.public_pkcs1.clone(),
        fingerprint: keys.fingerprint.clone(),
        account: "XY12345".into(),
        user: USER.into(),
    })
}

fn filters(f: &Fixture) -> Filters {
    let mut parameters = BTreeMap::new();
    parameters.insert(
        "include-databases".to_owned(),
        Value::String(format!("^{}(_B)?$", f.database)),
    );
    Filters::from_parameters(&parameters).expect("filters")
}

fn config(port: u16, credential: Credential) -> SnowflakeConfig {
    SnowflakeConfig {
        server: server(port),
        account: ACCOUNT.into(),
        role: Some("CATALOG_READER".into()),
        warehouse: Some("CATALOG_WH".into()),
        credential,
        imported: ImportedDatabases::Skip,
        source: CatalogSource::InformationSchema,
        query_timeout: Duration::from_secs(60),
        show_page: 10,
        retry: fast_retry(),
        heartbeat: None,
    }
}

/// One extraction with `config` into a fresh folder.
async fn extract_with(
    config: SnowflakeConfig,
    filters: &Filters,
) -> (TempDir, Result<Manifest, ExtractError>) {
    let out = scratch("snowflake-out");
    let dir = out.path().join("run");
    let mut writer = OutputWriter::create(
        &dir,
        RunIdentity {
            connector: "snowflake".into(),
            ..Default::default()
        },
        1 << 20,
    )
    .expect("writer");
    let result =
        match metadata_extract::sources::snowflake::extract(config, filters, &mut writer, &Silent)
            .await
        {
            Ok(()) => writer.finish().map_err(ExtractError::from),
            Err(e) => Err(e),
        };
    (out, result)
}

/// A conformance layer that accepts the test key pair, with these faults scripted, and one
/// key-pair extraction of the fixture through it.
async fn extract_through(
    options: Options,
    faults: Vec<Fault>,
) -> (Conformance, TempDir, Result<Manifest, ExtractError>) {
    let proxy = Conformance::start(&upstream(), options).await;
    for fault in faults {
        proxy.script(fault);
    }
    let (out, result) = extract_with(config(proxy.port(), key_pair()), &filters(fixture())).await;
    (proxy, out, result)
}

fn key_pair() -> Credential {
    Credential::KeyPair(Box::new(
        KeyPair::from_pem(&keys().plain, None).expect("key"),
    ))
}

fn records(out: &TempDir, kind: EntityKind) -> Vec<Value> {
    let dir = out.path().join("run");
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("manifest json");
    verify(&dir, &manifest).expect("output verifies");
    read_stream(&dir, &manifest, kind).expect("stream")
}

fn all_output_bytes(out: &TempDir) -> Vec<u8> {
    let mut all = Vec::new();
    for kind in EntityKind::ALL {
        for record in records(out, kind) {
            all.extend_from_slice(record.to_string().as_bytes());
        }
    }
    all.extend(std::fs::read(out.path().join("run/manifest.json")).expect("manifest"));
    all
}

/// How many column records name `database`.
fn columns_in(out: &TempDir, database: &str) -> usize {
    records(out, EntityKind::Column)
        .iter()
        .filter(|c| c["database"] == database)
        .count()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn the_output_equals_the_catalog_with_paging_and_odd_names() {
    let f = fixture();
    support::runtime().block_on(async {
        let (proxy, out, result) = extract_through(key_pair_proxy_options(), vec![]).await;
        let manifest = result.expect("extraction succeeds");
        assert!(manifest.skipped.is_empty(), "{:?}", manifest.skipped);
        // The query audit lists every statement, each a catalog read (parsed).
        support::audit::assert_catalog_only(support::audit::Catalog::Snowflake, &manifest);

        let databases: Vec<String> = records(&out, EntityKind::Database)
            .iter()
            .map(|r| r["name"].as_str().expect("present").to_owned())
            .collect();
        assert_eq!(databases, [f.database.clone(), f.second.clone()]);

        let schemas: Vec<(String, String)> = records(&out, EntityKind::Schema)
            .iter()
            .map(|r| {
                (
                    r["database"].as_str().expect("present").to_owned(),
                    r["name"].as_str().expect("present").to_owned(),
                )
            })
            .filter(|(d, _)| *d == f.database)
            .collect();
        let expected_schemas: Vec<(String, String)> = f.expected.keys().cloned().collect();
        let mut sorted = schemas.clone();
        sorted.sort();
        assert_eq!(
            sorted, expected_schemas,
            "every schema once, odd names intact"
        );
        assert_eq!(schemas.len(), expected_schemas.len(), "no duplicates");

        let tables = records(&out, EntityKind::Table);
        let mut seen: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for t in tables
            .iter()
            .filter(|t| t["database"] == f.database.as_str())
        {
            seen.entry((
                f.database.clone(),
                t["schema"].as_str().expect("present").to_owned(),
            ))
            .or_default()
            .push(t["name"].as_str().expect("present").to_owned());
        }
        assert_eq!(
            seen, f.expected,
            "every table and view exactly once (25 tables paged 10 at a time)"
        );
        let view = tables.iter().find(|t| t["name"] == "RECENT").expect("view");
        assert_eq!(view["kind"], "view");

        let columns = records(&out, EntityKind::Column);
        let in_db: Vec<&Value> = columns
            .iter()
            .filter(|c| c["database"] == f.database.as_str())
            .collect();
        // 5 + 3 + 2 (view) + 2 + 2 + 2 + 25 × 2
        assert_eq!(in_db.len(), 5 + 3 + 2 + 2 + 2 + 2 + 50, "every column once");
        let odd = in_db
            .iter()
            .find(|c| c["name"] == "Col With Space")
            .expect("odd column");
        assert_eq!(odd["table"], "Odd Table ünï");
        assert_eq!(odd["schema"], "Mixed Case");
        assert!(
            in_db
                .iter()
                .any(|c| c["name"] == "quote\"d" && c["schema"] == "ünï cödé 表")
        );
        assert!(
            in_db
                .iter()
                .any(|c| c["schema"] == long_name().as_str() && c["table"] == long_name().as_str())
        );
        let email = in_db
            .iter()
            .find(|c| c["table"] == "CUSTOMERS" && c["name"] == "EMAIL")
            .expect("EMAIL");
        assert_eq!(email["dataType"], "VARCHAR(255)");
        assert_eq!(email["nullable"], false);
        let amount = in_db
            .iter()
            .find(|c| c["name"] == "AMOUNT")
            .expect("AMOUNT");
        assert_eq!(amount["dataType"], "NUMBER(12,2)");
        let ordinals: Vec<i64> = in_db
            .iter()
            .filter(|c| c["table"] == "CUSTOMERS")
            .map(|c| c["ordinal"].as_i64().expect("present"))
            .collect();
        assert_eq!(ordinals, [1, 2, 3, 4, 5]);

        let constraints = records(&out, EntityKind::Constraint);
        let pk = constraints
            .iter()
            .find(|c| c["table"] == "CUSTOMERS" && c["kind"] == "primaryKey")
            .expect("primary key");
        assert_eq!(pk["columns"], serde_json::json!(["ID"]));
        // fakesnow answers SHOW UNIQUE KEYS with no rows and SHOW IMPORTED KEYS with primary
        // keys (named deviations): unique and foreign keys are checked by the unit tests of
        // `sql::group_keys` on Snowflake's documented columns.
        assert!(
            !constraints.iter().any(|c| c["kind"] == "foreignKey"),
            "no foreign key made of fakesnow's primary-key rows"
        );

        let definitions = records(&out, EntityKind::ViewDefinition);
        assert!(definitions.iter().any(|d| d["view"] == "RECENT"));

        // Every SHOW was paged (the layer caps an unpaged SHOW at 10 rows, and PAGED has 25).
        let queries = proxy.queries();
        assert!(
            queries.iter().any(|q| q.contains("SHOW TABLES IN SCHEMA")
                && q.contains("\"PAGED\" LIMIT 10 FROM 'T09'")),
            "{queries:#?}"
        );
        assert!(proxy.logouts() >= 2, "both sessions log out");
    });
}

#[test]
fn the_same_catalog_gives_the_same_records_in_the_same_order() {
    let f = fixture();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        let (a, first) = extract_with(config(proxy.port(), key_pair()), &filters(f)).await;
        let (b, second) = extract_with(config(proxy.port(), key_pair()), &filters(f)).await;
        first.expect("first");
        second.expect("second");
        for kind in EntityKind::ALL {
            assert_eq!(records(&a, kind), records(&b, kind), "{kind:?}");
        }
    });
}

#[test]
fn no_row_data_and_no_secret_ever_reaches_the_output_or_the_statements() {
    let f = fixture();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        let credential = Credential::KeyPair(Box::new(
            KeyPair::from_pem(&keys().aes, Some(&SourceSecret::new(PASSPHRASE))).expect("key"),
        ));
        let (out, result) = extract_with(config(proxy.port(), credential), &filters(f)).await;
        result.expect("extraction");
        let bytes = all_output_bytes(&out);
        assert!(
            !contains(&bytes, CANARY_ROW),
            "a table row reached the output"
        );
        assert!(!contains(&bytes, PASSPHRASE));
        let key_body: String = keys()
            .plain
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(!contains(&bytes, &key_body[..40]));
        // Only catalog statements ran: SHOW, or a SELECT from a database's INFORMATION_SCHEMA.
        for query in proxy.queries() {
            let upper = query.to_uppercase();
            assert!(
                upper.starts_with("SHOW ") || upper.contains(".INFORMATION_SCHEMA.COLUMNS"),
                "not a catalog statement: {query}"
            );
        }
    });
}

#[test]
fn a_server_that_ignores_from_is_an_error_not_a_loop() {
    let f = fixture();
    support::runtime().block_on(async {
        // Straight on fakesnow, which ignores `FROM`: page 2 repeats page 1.
        let port: u16 = upstream()
            .rsplit(':')
            .next()
            .expect("present")
            .parse()
            .expect("port");
        let (_out, result) = extract_with(
            config(port, Credential::Password(SourceSecret::new("x"))),
            &filters(f),
        )
        .await;
        let error = result.expect_err("a pager that never advances fails");
        let text = format!("{error:?}");
        assert!(text.contains("ignored `FROM`"), "{text}");
    });
}

#[test]
fn show_without_limit_hits_090153_and_the_pager_never_does() {
    let f = fixture();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        let session = Session::open(Arc::new(connection(proxy.port(), key_pair())))
            .await
            .expect("login");
        let error = session
            .query(
                &format!("SHOW TABLES IN SCHEMA \"{}\".\"PAGED\"", f.database),
                |_| Ok(()),
            )
            .await
            .expect_err("25 rows over a cap of 10");
        assert_eq!(error.sql_code(), Some("090153"));
        session.close().await;
    });
}

fn connection(port: u16, credential: Credential) -> Connection {
    Connection {
        base_url: format!("http://127.0.0.1:{port}"),
        account: ACCOUNT.into(),
        user: USER.into(),
        role: None,
        warehouse: None,
        credential,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        query_timeout: Duration::from_secs(30),
        retry: fast_retry(),
        heartbeat: None,
        audit: Default::default(),
    }
}

#[test]
fn the_fingerprint_equals_openssls_and_the_jwt_follows_snowflakes_layout() {
    let keys = keys();
    let key = KeyPair::from_pem(&keys.plain, None).expect("key");
    assert_eq!(key.fingerprint(), keys.fingerprint);
    for (pem, passphrase) in [
        (&keys.aes, Some(PASSPHRASE)),
        (&keys.des3, Some(PASSPHRASE)),
    ] {
        let other = KeyPair::from_pem(pem, passphrase.map(SourceSecret::new).as_ref())
            .expect("encrypted key opens");
        assert_eq!(other.fingerprint(), keys.fingerprint);
    }
    let now = std::time::SystemTime::now();
    let jwt = key
        .jwt("xy12345.us-east-1", "Outpost_Reader", now)
        .expect("jwt");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine as _;
    let decode = |p: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .expect("b64"),
        )
        .expect("json")
    };
    assert_eq!(
        decode(parts[0]),
        serde_json::json!({"alg": "RS256", "typ": "JWT"})
    );
    let claims = decode(parts[1]);
    assert_eq!(claims["sub"], "XY12345.OUTPOST_READER");
    assert_eq!(
        claims["iss"],
        format!("XY12345.OUTPOST_READER.{}", keys.fingerprint)
    );
    let (iat, exp) = (
        claims["iat"].as_u64().expect("present"),
        claims["exp"].as_u64().expect("present"),
    );
    assert!(exp > iat && exp - iat <= 3600, "valid for at most an hour");
    // The signature verifies with the public key openssl wrote.
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("sig");
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &keys.public_pkcs1,
    )
    .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
    .expect("RS256 signature verifies");
}

/// One extraction through the shipped descriptor and `metadata_extract::run`, as the
/// `outpost extract` step runs it: the connection's values and secrets as files.
fn run_descriptor(port: u16, files: &[(&str, &str)]) -> (TempDir, Result<Manifest, ExtractError>) {
    let f = fixture();
    let secrets = scratch("snowflake-secrets");
    for (name, value) in [
        ("account", ACCOUNT),
        ("host", "127.0.0.1"),
        ("user", USER),
        ("ssl-mode", "disable"),
    ] {
        std::fs::write(secrets.path().join(name), value).expect("connection value");
    }
    std::fs::write(secrets.path().join("port"), port.to_string()).expect("port");
    for (name, value) in files {
        std::fs::write(secrets.path().join(name), value).expect("secret");
    }
    let out = scratch("snowflake-run");
    let result = support::extract(
        "snowflake",
        &out.path().join("run"),
        vec![
            ("include-databases".into(), format!("^{}$", f.second)),
            ("query-timeout-seconds".into(), "30".into()),
        ],
        |request| request.secrets_dir = Some(secrets.path().to_owned()),
    );
    drop(secrets);
    (out, result)
}

fn exit(result: &Result<Manifest, ExtractError>) -> i32 {
    result
        .as_ref()
        .map(|_| 0)
        .unwrap_or_else(|e| e.exit_code() as i32)
}

#[test]
fn key_pair_logins_work_encrypted_and_plain_through_the_descriptor() {
    let keys = keys();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        let port = proxy.port();
        let outcomes = tokio::task::spawn_blocking(move || {
            let keys = keys;
            vec![
                run_descriptor(port, &[("private-key", &keys.plain)]),
                run_descriptor(
                    port,
                    &[
                        ("private-key", &keys.aes),
                        ("private-key-passphrase", PASSPHRASE),
                    ],
                ),
                run_descriptor(
                    port,
                    &[
                        ("private-key", &keys.des3),
                        ("private-key-passphrase", &format!("{PASSPHRASE}\n")),
                    ],
                ),
            ]
        })
        .await
        .expect("join");
        for (out, result) in &outcomes {
            result.as_ref().unwrap_or_else(|e| panic!("{e:?}"));
            let tables = records(out, EntityKind::Table);
            assert_eq!(tables.len(), 1);
            assert_eq!(tables[0]["name"], "ONLY_ONE");
        }
    });
}

#[test]
fn exit_codes_77_refused_78_bad_or_missing_secret_75_unreachable() {
    let keys = keys();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        let port = proxy.port();
        let codes = tokio::task::spawn_blocking(move || {
            let keys = keys;
            let wrong_key = run_descriptor(port, &[("private-key", &keys.other)]);
            let missing = run_descriptor(port, &[]);
            let wrong_passphrase = run_descriptor(
                port,
                &[
                    ("private-key", &keys.aes),
                    ("private-key-passphrase", "nope"),
                ],
            );
            let no_passphrase = run_descriptor(port, &[("private-key", &keys.aes)]);
            let pkcs1 = run_descriptor(port, &[("private-key", &keys.pkcs1)]);
            // The secret the connection's authenticator needs is missing.
            let no_token = run_descriptor(port, &[("authenticator", "oauth")]);
            let no_password = run_descriptor(port, &[("authenticator", "password")]);
            for (name, r) in [("oauth-token", &no_token), ("password", &no_password)] {
                let text = r.1.as_ref().expect_err("refused").to_string();
                assert!(
                    text.contains(name),
                    "the error names the missing secret: {text}"
                );
            }
            for (_, r) in [
                &wrong_key,
                &missing,
                &wrong_passphrase,
                &no_passphrase,
                &pkcs1,
            ] {
                let text = format!(
                    "{:?} {}",
                    r.as_ref().err(),
                    r.as_ref().err().map(|e| e.to_string()).unwrap_or_default()
                );
                assert!(
                    !text.contains(PASSPHRASE) && !text.contains(&keys.plain[40..80]),
                    "{text}"
                );
            }
            [
                exit(&wrong_key.1),
                exit(&missing.1),
                exit(&wrong_passphrase.1),
                exit(&no_passphrase.1),
                exit(&pkcs1.1),
                exit(&no_token.1),
                exit(&no_password.1),
            ]
        })
        .await
        .expect("join");
        assert_eq!(codes, [77, 78, 78, 78, 78, 78, 78]);
        // Nothing listens on this port: 75 once the retries run out.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let (_out, result) = extract_with(config(closed, key_pair()), &Filters::default()).await;
        assert_eq!(exit(&result), 75, "{result:?}");
    });
}

#[test]
fn oauth_tokens_are_reread_at_each_login_and_passwords_work() {
    let f = fixture();
    support::runtime().block_on(async {
        let proxy =
            Conformance::start(&upstream(), accepting(Accept::OAuth(OAUTH_TOKEN.into()))).await;
        let dir = scratch("snowflake-oauth");
        let token = dir.path().join("oauth-token");
        std::fs::write(&token, "stale-token\n").expect("token");
        let (_out, refused) = extract_with(
            config(proxy.port(), Credential::OAuth(token.clone())),
            &filters(f),
        )
        .await;
        assert_eq!(exit(&refused), 77);
        // The file was replaced (a sidecar refreshed it): the next login reads the new one.
        std::fs::write(&token, format!("{OAUTH_TOKEN}\n")).expect("token");
        let (out, result) =
            extract_with(config(proxy.port(), Credential::OAuth(token)), &filters(f)).await;
        result.expect("a fresh token logs in");
        assert!(!contains(&all_output_bytes(&out), OAUTH_TOKEN));

        let proxy =
            Conformance::start(&upstream(), accepting(Accept::Password(PASSWORD.into()))).await;
        let (_out, result) = extract_with(
            config(
                proxy.port(),
                Credential::Password(SourceSecret::new(PASSWORD)),
            ),
            &filters(f),
        )
        .await;
        result.expect("password login");
        let (_out, wrong) = extract_with(
            config(
                proxy.port(),
                Credential::Password(SourceSecret::new("wrong")),
            ),
            &filters(f),
        )
        .await;
        assert_eq!(exit(&wrong), 77);
        assert!(!format!("{wrong:?}").contains("wrong"));
    });
}

fn count(proxy: &Conformance, path: &str, status: u16) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|(p, s)| p == path && *s == status)
        .count()
}

#[test]
fn bursts_of_429_and_503_and_dropped_connections_are_retried_sql_errors_never() {
    support::runtime().block_on(async {
        let (proxy, _out, result) = extract_through(
            key_pair_proxy_options(),
            vec![
                Fault::Status {
                    path: "/queries/v1/query-request".into(),
                    status: 429,
                    n: 2,
                },
                Fault::Status {
                    path: "/session/v1/login-request".into(),
                    status: 503,
                    n: 1,
                },
                Fault::Drop { n: 1 },
            ],
        )
        .await;
        result.expect("retried through the faults");
        assert_eq!(count(&proxy, "/queries/v1/query-request", 429), 2);
        assert_eq!(count(&proxy, "/session/v1/login-request", 503), 1);
        assert_eq!(count(&proxy, "/queries/v1/query-request", 0), 1);

        let (proxy, _out, result) = extract_through(
            key_pair_proxy_options(),
            vec![Fault::SqlError {
                needle: "SHOW DATABASES".into(),
                code: "001003".into(),
            }],
        )
        .await;
        assert_eq!(exit(&result), 70, "{result:?}");
        let shows = proxy
            .queries()
            .iter()
            .filter(|q| q.starts_with("SHOW DATABASES"))
            .count();
        assert_eq!(shows, 1, "an SQL error is not retried");
    });
}

#[test]
fn an_expired_session_logs_in_again_and_async_answers_are_polled() {
    let f = fixture();
    support::runtime().block_on(async {
        let (proxy, out, result) = extract_through(
            key_pair_proxy_options(),
            vec![
                Fault::ExpireSession { k: 3 },
                Fault::Async {
                    needle: "INFORMATION_SCHEMA.COLUMNS".into(),
                },
            ],
        )
        .await;
        result.expect("extraction goes on after a new login");
        let logins = count(&proxy, "/session/v1/login-request", 200);
        assert_eq!(
            logins, 3,
            "two sessions, and one new login after the expiry"
        );
        assert!(
            proxy
                .requests()
                .iter()
                .any(|(p, _)| p.starts_with("/queries/result/")),
            "polled"
        );
        let columns = records(&out, EntityKind::Column);
        assert!(
            columns
                .iter()
                .filter(|c| c["database"] == f.database.as_str())
                .count()
                > 60
        );
    });
}

#[test]
fn chunked_results_are_read_with_their_headers() {
    let f = fixture();
    support::runtime().block_on(async {
        let mut options = key_pair_proxy_options();
        options.chunk_rows = 7;
        let proxy = Conformance::start(&upstream(), options).await;
        let (out, result) = extract_with(config(proxy.port(), key_pair()), &filters(f)).await;
        result.expect("extraction");
        let chunks = proxy
            .requests()
            .iter()
            .filter(|(p, s)| p.starts_with("/chunk/") && *s == 200)
            .count();
        assert!(chunks >= 9, "the 64 columns came in chunks of 7: {chunks}");
        assert_eq!(
            proxy
                .requests()
                .iter()
                .filter(|(p, s)| p.starts_with("/chunk/") && *s == 403)
                .count(),
            0
        );
        assert_eq!(columns_in(&out, &f.database), 66);
    });
}

#[test]
fn too_much_data_falls_back_to_columns_per_schema() {
    let f = fixture();
    support::runtime().block_on(async {
        let (proxy, out, result) = extract_through(
            key_pair_proxy_options(),
            vec![Fault::SqlError {
                needle: "TABLE_SCHEMA <> 'INFORMATION_SCHEMA'".into(),
                code: "090030".into(),
            }],
        )
        .await;
        result.expect("extraction");
        let per_schema = proxy
            .queries()
            .iter()
            .filter(|q| q.contains("TABLE_SCHEMA = '"))
            .count();
        assert_eq!(
            per_schema,
            f.expected.len() + 1,
            "one per schema of both databases"
        );
        assert_eq!(columns_in(&out, &f.database), 66);
    });
}

#[test]
fn unreadable_schemas_and_shared_databases_are_listed_as_skipped_never_empty() {
    let f = fixture();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        proxy.script(Fault::SqlError {
            needle: "\"Mixed Case\"".into(),
            code: "002003".into(),
        });
        proxy.script(Fault::SqlError {
            needle: format!("SHOW SCHEMAS IN DATABASE \"{}\"", f.second),
            code: "002003".into(),
        });
        let shared = format!("{}_SHARED", f.database);
        proxy.script(Fault::ImportedDatabase {
            name: shared.clone(),
        });
        let mut filters_with_shared = BTreeMap::new();
        filters_with_shared.insert(
            "include-databases".to_owned(),
            Value::String(format!("^{}", f.database)),
        );
        let filters = Filters::from_parameters(&filters_with_shared).expect("filters");
        let (out, result) = extract_with(config(proxy.port(), key_pair()), &filters).await;
        let manifest = result.expect("extraction");
        let skipped: Vec<(String, String)> = manifest
            .skipped
            .iter()
            .map(|s| (format!("{:?}", s.kind), s.name.clone()))
            .collect();
        assert!(
            skipped.contains(&("Schema".into(), format!("{}.Mixed Case", f.database))),
            "{skipped:?}"
        );
        assert!(
            skipped.contains(&("Database".into(), f.second.clone())),
            "{skipped:?}"
        );
        assert!(
            skipped.contains(&("Database".into(), shared.clone())),
            "{skipped:?}"
        );
        let reason = &manifest
            .skipped
            .iter()
            .find(|s| s.name == shared)
            .expect("present")
            .reason;
        assert!(reason.contains("imported-databases=include"), "{reason}");
        let tables = records(&out, EntityKind::Table);
        assert!(!tables.iter().any(|t| t["schema"] == "Mixed Case"));
        let columns = records(&out, EntityKind::Column);
        assert!(
            !columns.iter().any(|c| c["schema"] == "Mixed Case"),
            "no columns of a skipped schema"
        );
        let databases = records(&out, EntityKind::Database);
        assert!(
            !databases.iter().any(|d| d["name"] == f.second.as_str()),
            "an unlisted database is not written as empty"
        );
    });
}

#[test]
fn heartbeats_are_sent_and_a_query_past_its_deadline_is_cancelled_75() {
    let f = fixture();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        let session = Session::open(Arc::new(Connection {
            heartbeat: Some(Duration::from_millis(100)),
            audit: Default::default(),
            ..connection(proxy.port(), key_pair())
        }))
        .await
        .expect("login");
        // Three beats at 100 ms take 300 ms; a loaded machine gets up to 10 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while proxy.heartbeats() < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            proxy.heartbeats() >= 3,
            "heartbeats: {}",
            proxy.heartbeats()
        );
        session.close().await;

        // An answer that never comes in time: polled past the deadline, then cancelled.
        proxy.script(Fault::Async {
            needle: "SHOW DATABASES".into(),
        });
        let mut slow = config(proxy.port(), key_pair());
        slow.query_timeout = Duration::from_millis(300);
        let (_out, result) = extract_with(slow, &filters(f)).await;
        assert_eq!(exit(&result), 75, "{result:?}");
        assert!(proxy.aborts() >= 1, "the query was cancelled");
    });
}

/// A test CA, and a certificate it signs for 127.0.0.1 (PEM chain, PEM key), made by
/// `openssl`.
struct TestCa {
    ca: std::path::PathBuf,
    chain: String,
    key: String,
    _dir: TempDir,
}

fn test_ca() -> TestCa {
    let dir = scratch("snowflake-tls");
    let d = dir.path();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=outpost-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
        d,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=snowflake.test",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        d,
    );
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
        d,
    );
    let read = |name: &str| std::fs::read_to_string(d.join(name)).expect("pem");
    TestCa {
        ca: d.join("ca.crt"),
        chain: read("server.crt"),
        key: read("server.key"),
        _dir: dir,
    }
}

/// The path every real account takes: HTTPS, the certificate verified against the
/// connection's CA (verify-full, the default), result chunks over HTTPS too. Without that CA
/// the certificate is not trusted: exit 78 at once, never retried as if the service were down.
#[test]
fn https_with_the_connections_ca_and_an_untrusted_certificate_is_78() {
    let f = fixture();
    let ca = test_ca();
    support::runtime().block_on(async {
        let mut options = key_pair_proxy_options();
        options.tls = Some((ca.chain.clone(), ca.key.clone()));
        options.chunk_rows = 20;
        let proxy = Conformance::start(&upstream(), options).await;
        let mut trusted = config(proxy.port(), key_pair());
        trusted.server.ssl_mode = SslMode::VerifyFull;
        trusted.server.ca_bundle = Some(ca.ca.clone());
        let (out, result) = extract_with(trusted, &filters(f)).await;
        result.expect("HTTPS extraction with the connection's CA");
        assert_eq!(columns_in(&out, &f.database), 66);
        assert!(
            proxy
                .requests()
                .iter()
                .any(|(p, s)| p.starts_with("/chunk/") && *s == 200),
            "chunks over HTTPS"
        );

        let mut untrusted = config(proxy.port(), key_pair());
        untrusted.server.ssl_mode = SslMode::VerifyFull;
        let started = std::time::Instant::now();
        let (_out, result) = extract_with(untrusted, &filters(f)).await;
        assert_eq!(exit(&result), 78, "{result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not retried: {:?}",
            started.elapsed()
        );
    });
}

/// `SNOWFLAKE.ACCOUNT_USAGE` rows about the fixture database: fakesnow has no
/// `ACCOUNT_USAGE` (a named deviation), so the test makes its views as tables with the
/// columns Snowflake documents for them, holding live and dropped (`DELETED` set) objects.
fn account_usage_fixture() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    let f = fixture();
    DONE.get_or_init(|| {
        let d = f.database.as_str();
        let views = "SNOWFLAKE.ACCOUNT_USAGE";
        let statements = vec![
            "CREATE DATABASE IF NOT EXISTS SNOWFLAKE".to_owned(),
            format!("CREATE SCHEMA IF NOT EXISTS {views}"),
            format!("CREATE OR REPLACE TABLE {views}.SCHEMATA (SCHEMA_ID NUMBER, SCHEMA_NAME TEXT, CATALOG_NAME TEXT, SCHEMA_OWNER TEXT, COMMENT TEXT, CREATED TIMESTAMP_LTZ, DELETED TIMESTAMP_LTZ)"),
            format!("CREATE OR REPLACE TABLE {views}.TABLES (TABLE_CATALOG TEXT, TABLE_SCHEMA TEXT, TABLE_NAME TEXT, TABLE_OWNER TEXT, TABLE_TYPE TEXT, IS_TRANSIENT TEXT, CLUSTERING_KEY TEXT, ROW_COUNT NUMBER, BYTES NUMBER, COMMENT TEXT, DELETED TIMESTAMP_LTZ)"),
            format!("CREATE OR REPLACE TABLE {views}.COLUMNS (TABLE_CATALOG TEXT, TABLE_SCHEMA TEXT, TABLE_NAME TEXT, COLUMN_NAME TEXT, ORDINAL_POSITION NUMBER, COLUMN_DEFAULT TEXT, IS_NULLABLE TEXT, DATA_TYPE TEXT, CHARACTER_MAXIMUM_LENGTH NUMBER, NUMERIC_PRECISION NUMBER, NUMERIC_SCALE NUMBER, IS_IDENTITY TEXT, COMMENT TEXT, DELETED TIMESTAMP_LTZ)"),
            format!("CREATE OR REPLACE TABLE {views}.VIEWS (TABLE_CATALOG TEXT, TABLE_SCHEMA TEXT, TABLE_NAME TEXT, VIEW_DEFINITION TEXT, DELETED TIMESTAMP_LTZ)"),
            format!("CREATE OR REPLACE TABLE {views}.OBJECT_DEPENDENCIES (REFERENCED_DATABASE TEXT, REFERENCED_SCHEMA TEXT, REFERENCED_OBJECT_NAME TEXT, REFERENCED_OBJECT_DOMAIN TEXT, REFERENCING_DATABASE TEXT, REFERENCING_SCHEMA TEXT, REFERENCING_OBJECT_NAME TEXT, REFERENCING_OBJECT_DOMAIN TEXT, DEPENDENCY_TYPE TEXT)"),
            format!("CREATE OR REPLACE TABLE {views}.TAG_REFERENCES (TAG_DATABASE TEXT, TAG_SCHEMA TEXT, TAG_NAME TEXT, TAG_VALUE TEXT, OBJECT_DATABASE TEXT, OBJECT_SCHEMA TEXT, OBJECT_NAME TEXT, OBJECT_DELETED TIMESTAMP_LTZ, DOMAIN TEXT, COLUMN_NAME TEXT)"),
            format!("CREATE OR REPLACE TABLE {views}.POLICY_REFERENCES (POLICY_DB TEXT, POLICY_SCHEMA TEXT, POLICY_NAME TEXT, POLICY_KIND TEXT, REF_DATABASE_NAME TEXT, REF_SCHEMA_NAME TEXT, REF_ENTITY_NAME TEXT, REF_ENTITY_DOMAIN TEXT, REF_COLUMN_NAME TEXT, POLICY_STATUS TEXT)"),
            format!("INSERT INTO {views}.SCHEMATA VALUES (1, 'PUBLIC', '{d}', 'SYSADMIN', 'main', NULL, NULL), (2, 'Mixed Case', '{d}', 'SYSADMIN', NULL, NULL, NULL), (3, 'INFORMATION_SCHEMA', '{d}', NULL, NULL, NULL, NULL), (4, 'OLD', '{d}', 'SYSADMIN', NULL, NULL, CURRENT_TIMESTAMP())"),
            format!("INSERT INTO {views}.TABLES VALUES ('{d}', 'PUBLIC', 'CUSTOMERS', 'SYSADMIN', 'BASE TABLE', 'NO', 'LINEAR(ID)', 1, 1024, 'people who buy', NULL), ('{d}', 'PUBLIC', 'RECENT', 'SYSADMIN', 'VIEW', 'NO', NULL, NULL, NULL, NULL, NULL), ('{d}', 'PUBLIC', 'DROPPED', 'SYSADMIN', 'BASE TABLE', 'NO', NULL, 5, 5, NULL, CURRENT_TIMESTAMP()), ('{d}', 'Mixed Case', 'Odd Table ünï', 'SYSADMIN', 'BASE TABLE', 'YES', NULL, 0, 0, NULL, NULL)"),
            format!("INSERT INTO {views}.COLUMNS VALUES ('{d}', 'PUBLIC', 'CUSTOMERS', 'ID', 1, NULL, 'NO', 'NUMBER', NULL, 38, 0, 'NO', NULL, NULL), ('{d}', 'PUBLIC', 'CUSTOMERS', 'EMAIL', 2, NULL, 'NO', 'TEXT', 255, NULL, NULL, 'NO', 'contact', NULL), ('{d}', 'PUBLIC', 'CUSTOMERS', 'OLD_NOTE', 3, NULL, 'YES', 'TEXT', 100, NULL, NULL, 'NO', NULL, CURRENT_TIMESTAMP()), ('{d}', 'PUBLIC', 'RECENT', 'ID', 1, NULL, 'YES', 'NUMBER', NULL, 38, 0, 'NO', NULL, NULL), ('{d}', 'Mixed Case', 'Odd Table ünï', 'Col With Space', 1, NULL, 'YES', 'TEXT', 16777216, NULL, NULL, 'NO', NULL, NULL)"),
            format!("INSERT INTO {views}.VIEWS VALUES ('{d}', 'PUBLIC', 'RECENT', 'create view RECENT as select ID from CUSTOMERS', NULL)"),
            format!("INSERT INTO {views}.OBJECT_DEPENDENCIES VALUES ('{d}', 'PUBLIC', 'CUSTOMERS', 'TABLE', '{d}', 'PUBLIC', 'RECENT', 'VIEW', 'BY_NAME'), ('OTHERDB', 'S', 'T', 'TABLE', '{d}', 'PUBLIC', 'RECENT', 'VIEW', 'BY_NAME')"),
            format!("INSERT INTO {views}.TAG_REFERENCES VALUES ('GOVERNANCE', 'TAGS', 'PII', 'email', '{d}', 'PUBLIC', 'CUSTOMERS', NULL, 'COLUMN', 'EMAIL'), ('GOVERNANCE', 'TAGS', 'COST_CENTER', '42', '{d}', 'PUBLIC', 'CUSTOMERS', NULL, 'TABLE', NULL), ('GOVERNANCE', 'TAGS', 'COST_CENTER', '7', '{d}', 'PUBLIC', 'DROPPED', CURRENT_TIMESTAMP(), 'TABLE', NULL), ('GOVERNANCE', 'TAGS', 'COST_CENTER', '9', '{d}', NULL, 'LOADING_WH', NULL, 'WAREHOUSE', NULL)"),
            format!("INSERT INTO {views}.POLICY_REFERENCES VALUES ('GOVERNANCE', 'POLICIES', 'MASK_EMAIL', 'MASKING_POLICY', '{d}', 'PUBLIC', 'CUSTOMERS', 'TABLE', 'EMAIL', 'ACTIVE'), ('GOVERNANCE', 'POLICIES', 'REGION_ROWS', 'ROW_ACCESS_POLICY', '{d}', 'PUBLIC', 'CUSTOMERS', 'TABLE', NULL, 'ACTIVE')"),
        ];
        support::runtime().block_on(async {
            let s = admin().await;
            for statement in &statements {
                run(&s, statement).await;
            }
            s.close().await;
        });
    });
    &f.database
}

#[test]
fn account_usage_mode_reads_live_objects_tags_policies_and_dependencies_in_one_pass() {
    let database = account_usage_fixture();
    support::runtime().block_on(async {
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        let mut usage = config(proxy.port(), key_pair());
        usage.source = CatalogSource::AccountUsage;
        let mut only = BTreeMap::new();
        only.insert(
            "include-databases".to_owned(),
            Value::String(format!("^{database}$")),
        );
        let (out, result) =
            extract_with(usage, &Filters::from_parameters(&only).expect("filters")).await;
        let manifest = result.expect("extraction");
        support::audit::assert_catalog_only(support::audit::Catalog::Snowflake, &manifest);
        let names = |kind, field: &str| -> Vec<String> {
            records(&out, kind)
                .iter()
                .map(|r| r[field].as_str().expect("text").to_owned())
                .collect()
        };
        assert_eq!(
            names(EntityKind::Schema, "name"),
            ["Mixed Case", "PUBLIC"],
            "live schemas only, no INFORMATION_SCHEMA"
        );
        assert_eq!(
            names(EntityKind::Table, "name"),
            ["Odd Table ünï", "CUSTOMERS", "RECENT"],
            "no dropped table"
        );
        let tables = records(&out, EntityKind::Table);
        let customers = tables
            .iter()
            .find(|t| t["name"] == "CUSTOMERS")
            .expect("CUSTOMERS");
        assert_eq!(customers["clusteringKey"], "LINEAR(ID)");
        assert_eq!(customers["sizeBytes"], 1024);
        assert_eq!(customers["persistence"], "permanent");
        assert_eq!(tables[0]["persistence"], "transient");
        assert_eq!(tables[2]["kind"], "view");
        let columns = records(&out, EntityKind::Column);
        assert_eq!(columns.len(), 4, "no dropped column: {columns:?}");
        assert_eq!(
            columns
                .iter()
                .find(|c| c["name"] == "EMAIL")
                .expect("EMAIL")["dataType"],
            "VARCHAR(255)"
        );
        assert_eq!(records(&out, EntityKind::ViewDefinition).len(), 1);
        let lineage = records(&out, EntityKind::Lineage);
        assert_eq!(lineage.len(), 2);
        // Ordered by the referenced database: OTHERDB sorts before OUTPOST_SF_….
        assert_eq!(
            lineage[0]["sourceDatabase"], "OTHERDB",
            "a view reading another database"
        );
        assert_eq!(lineage[1]["sourceDatabase"], Value::Null);
        assert_eq!(lineage[1]["source"]["name"], "CUSTOMERS");
        let tags = records(&out, EntityKind::Tag);
        assert_eq!(
            tags.len(),
            2,
            "live catalog objects only (no dropped table, no warehouse): {tags:?}"
        );
        let pii = tags
            .iter()
            .find(|t| t["column"] == "EMAIL")
            .expect("column tag");
        assert_eq!(
            (pii["tag"]["name"].as_str(), pii["value"].as_str()),
            (Some("PII"), Some("email"))
        );
        let policies = records(&out, EntityKind::Policy);
        assert_eq!(policies.len(), 2);
        assert!(
            policies
                .iter()
                .any(|p| p["kind"] == "maskingPolicy" && p["column"] == "EMAIL")
        );
        assert!(
            policies
                .iter()
                .any(|p| p["kind"] == "rowAccessPolicy" && p["column"].is_null())
        );
        assert!(
            records(&out, EntityKind::Constraint).is_empty(),
            "ACCOUNT_USAGE has no keys"
        );
        // One statement per view, never one per schema or per object.
        for query in proxy.queries() {
            assert!(
                query.starts_with("SHOW DATABASES")
                    || query.contains("FROM SNOWFLAKE.ACCOUNT_USAGE."),
                "{query}"
            );
        }
        let per_view = proxy
            .queries()
            .iter()
            .filter(|q| q.contains("FROM SNOWFLAKE.ACCOUNT_USAGE."))
            .count();
        assert_eq!(
            per_view,
            7,
            "schemata, tables, columns, views, dependencies, tags, policies: {:#?}",
            proxy.queries()
        );

        // A role without the grant: a configuration error naming the grant, not a retry.
        let proxy = Conformance::start(&upstream(), key_pair_proxy_options()).await;
        proxy.script(Fault::SqlError {
            needle: "SNOWFLAKE.ACCOUNT_USAGE".into(),
            code: "002003".into(),
        });
        let mut usage = config(proxy.port(), key_pair());
        usage.source = CatalogSource::AccountUsage;
        let (_out, result) =
            extract_with(usage, &Filters::from_parameters(&only).expect("filters")).await;
        assert_eq!(exit(&result), 78);
        assert!(format!("{}", result.expect_err("refused")).contains("IMPORTED PRIVILEGES"));
    });
}
