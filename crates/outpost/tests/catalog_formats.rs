//! `outpost export` judged by the catalogs' own tools, on real extractions through the built
//! binary:
//!
//! - DataHub's CLI (`acryl-datahub`, in the venv `scripts/install-tools.sh` makes; its path in
//!   `OUTPOST_TEST_DATAHUB`): `datahub check metadata-file` accepts the export of every
//!   database connector's test catalog, and `datahub check metadata-diff` between our export
//!   and DataHub's own postgres source over the same PostgreSQL database finds only the
//!   differences `crates/catalog-export/README.md` lists and justifies;
//! - the OpenLineage spec and facet schemas, vendored and pinned in
//!   `crates/catalog-export/openlineage-spec/`: every event validates.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{env, outpost, scratch};

/// The DataHub CLI the test script installed.
fn datahub() -> Command {
    let mut command = Command::new(env("OUTPOST_TEST_DATAHUB"));
    // Its usage reports would go outside: tests send nothing there.
    command.env("DATAHUB_TELEMETRY_ENABLED", "false");
    command
}

/// Runs `command`; it must succeed. Answers its stdout and stderr together.
fn run(mut command: Command) -> String {
    let out = command.output().expect("the command starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?} failed: {text}");
    text
}

/// `outpost export` of the run in `run_dir` in `format`, into `out`.
fn export(run_dir: &Path, format: &str, out: &Path) -> String {
    let mut command = outpost();
    command.arg("export").arg("--from").arg(run_dir);
    command.args(["--format", format]).arg("--out").arg(out);
    run(command)
}

/// `outpost extract --connector=CONNECTOR` with `params` (`name=value`) and `extra`
/// arguments, the connection's files in `secrets`, into `out`; it must succeed.
fn extract(connector: &str, params: &[String], secrets: &Path, out: &Path, extra: &[&str]) {
    let mut command = outpost();
    command
        .arg("extract")
        .arg(format!("--connector={connector}"))
        .args(extra);
    command.args(params.iter().map(|p| format!("--param={p}")));
    command
        .arg("--secrets-dir")
        .arg(secrets)
        .arg("--out")
        .arg(out);
    run(command);
}

/// DataHub's own check of a metadata file: every proposal must be valid.
fn datahub_accepts(file: &Path) {
    let mut command = datahub();
    command.args(["check", "metadata-file"]).arg(file);
    let text = run(command);
    let proposals = serde_json::from_slice::<Vec<Value>>(&std::fs::read(file).expect("export"))
        .expect("a JSON array")
        .len();
    assert!(proposals > 0, "{} holds proposals", file.display());
    assert!(
        text.contains(&format!("{proposals} MCEs found - all valid")),
        "datahub check metadata-file {}: {text}",
        file.display()
    );
}

/// The vendored OpenLineage schemas, by their `$id`.
struct OpenLineageSpec(HashMap<String, Value>);

impl jsonschema::Retrieve for OpenLineageSpec {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .get(uri.as_str())
            .cloned()
            .ok_or_else(|| format!("{uri} is not vendored").into())
    }
}

/// Every line of `file` is an OpenLineage DatasetEvent valid against the pinned spec and,
/// for each of its facets, that facet's schema; a facet without a vendored schema fails.
/// Answers the events.
fn openlineage_valid(file: &Path) -> Vec<Value> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog-export/openlineage-spec");
    let mut schemas = HashMap::new();
    for entry in std::fs::read_dir(&folder).expect("the vendored spec") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let schema: Value =
                serde_json::from_slice(&std::fs::read(&path).expect("schema")).expect("JSON");
            schemas.insert(schema["$id"].as_str().expect("$id").to_owned(), schema);
        }
    }
    let build = |schema: &Value| {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .with_retriever(OpenLineageSpec(schemas.clone()))
            .build(schema)
            .expect("the vendored schema compiles")
    };
    let core = build(&schemas["https://openlineage.io/spec/2-0-2/OpenLineage.json"]);
    // Each facet file's root describes the `facets` object under the facet's key.
    let facets: BTreeMap<String, jsonschema::Validator> = schemas
        .values()
        .filter(|s| s["$id"].as_str().is_some_and(|id| id.contains("/facets/")))
        .map(|s| {
            let key = s["properties"]
                .as_object()
                .and_then(|p| p.keys().next())
                .expect("a facet key")
                .clone();
            (key, build(s))
        })
        .collect();
    let text = std::fs::read_to_string(file).expect("events");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(!events.is_empty(), "{} holds events", file.display());
    for event in &events {
        let errors: Vec<String> = core.iter_errors(event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?} in {event}");
        assert!(
            event.get("run").is_none() && event.get("job").is_none(),
            "a DatasetEvent"
        );
        let present = event["dataset"]["facets"].as_object().expect("facets");
        for key in present.keys() {
            let validator = facets
                .get(key)
                .unwrap_or_else(|| panic!("facet `{key}` has no vendored schema"));
            let errors: Vec<String> = validator
                .iter_errors(&event["dataset"]["facets"])
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "facet {key}: {errors:?} in {event}");
        }
    }
    events
}

/// Exports `run_dir` in both formats and has each checked by its own tool. Answers the
/// DataHub file and the OpenLineage events.
fn export_and_check(run_dir: &Path, dir: &Path) -> (PathBuf, Vec<Value>) {
    let datahub_file = dir.join("datahub.json");
    export(run_dir, "datahub", &datahub_file);
    datahub_accepts(&datahub_file);
    export(run_dir, "openlineage", dir);
    let events = openlineage_valid(&dir.join("openlineage.jsonl"));
    (datahub_file, events)
}

fn psql(database: &str) -> Command {
    let mut command = Command::new(Path::new(&env("OUTPOST_TEST_PG_BIN")).join("psql"));
    command
        .args([
            "-h",
            &env("OUTPOST_TEST_PG_HOST"),
            "-p",
            &env("OUTPOST_TEST_PG_PORT"),
        ])
        .args(["-U", &env("OUTPOST_TEST_PG_SUPERUSER"), "-d", database])
        .args(["-v", "ON_ERROR_STOP=1", "-q"])
        .env("PGPASSWORD", env("OUTPOST_TEST_PG_PASSWORD"));
    command
}

/// A fresh PostgreSQL database loaded with the extraction tests' catalog of oddities.
fn postgres_fixture(dir: &Path) -> String {
    let id = std::process::id();
    let database = format!("outpost_formats_{id}");
    let reader = format!("outpost_formats_reader_{id}");
    let mut admin = psql("postgres");
    admin.args(["-c", &format!("DROP DATABASE IF EXISTS {database}")]);
    admin.args(["-c", &format!("CREATE DATABASE {database}")]);
    admin.args(["-c", &format!("DROP ROLE IF EXISTS {reader}")]);
    admin.args(["-c", &format!("CREATE ROLE {reader}")]);
    run(admin);
    let sql = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../metadata-extract/tests/fixtures/postgres.sql"),
    )
    .expect("fixture");
    let file = dir.join("fixture.sql");
    // Every built-in type family beside the oddities: DataHub's source spells and classes
    // each its own way (SQLAlchemy's names, its type classes), and the export must agree.
    let sql = format!("{}\n{TYPE_ZOO}", sql.replace("{reader}", &reader));
    std::fs::write(&file, sql).expect("fixture");
    let mut load = psql(&database);
    load.arg("-f").arg(&file);
    run(load);
    database
}

/// A table with a column of each PostgreSQL type family.
const TYPE_ZOO: &str = "CREATE TABLE public.type_zoo (
    a smallint, b integer, c bigint, d real, e double precision, f numeric, g numeric(10,3),
    h boolean, i text, j varchar, k varchar(20), l char(3), m character, n bytea,
    o date, p time, q time with time zone, r timestamp, s timestamp(3), t timestamptz,
    u timestamp(6) with time zone, v interval, w json, x jsonb, y uuid, z inet, aa cidr,
    ab macaddr, ac money, ad oid, ae tsvector, af xml, ag integer[], ah varchar(10)[],
    ai bit(3), aj bit varying(5), ak serial, al bigserial, am name, an \"char\", ao point,
    ap int4range, aq numrange, ar tstzrange, \"ÄÖÜ Spaß\" text NOT NULL
);";

/// `outpost extract --connector=postgres` of `database` alone, as the superuser.
fn extract_postgres(database: &str, dir: &Path) -> PathBuf {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets");
    std::fs::write(secrets.join("password"), env("OUTPOST_TEST_PG_PASSWORD")).expect("secret");
    let out = dir.join("run");
    let params = [
        format!("host={}", env("OUTPOST_TEST_PG_HOST")),
        format!("port={}", env("OUTPOST_TEST_PG_PORT")),
        format!("database={database}"),
        format!("user={}", env("OUTPOST_TEST_PG_SUPERUSER")),
        "ssl-mode=disable".to_owned(),
        format!("include-databases=^{database}$"),
    ];
    // Exported at extraction too: OpenLineage then names the server as its convention says.
    extract(
        "postgres",
        &params,
        &secrets,
        &out,
        &["--export=openlineage"],
    );
    out
}

/// DataHub's own `source` (`postgres`, `mysql`) over `database` of the server at
/// `host:port`, written with its `file` sink and unpacked into proposals (`metadata-file
/// --unpack-mces`), as metadata-diff compares best.
fn datahub_source(
    source: &str,
    [host, port, user, password]: [String; 4],
    database: &str,
    dir: &Path,
) -> PathBuf {
    let file = dir.join(format!("datahub-{source}.json"));
    let recipe = dir.join(format!("{source}.yml"));
    let recipe_text = format!(
        "source:\n  type: {source}\n  config:\n    host_port: \"{host}:{port}\"\n    database: \"{database}\"\n    username: \"{user}\"\n    password: \"${{OUTPOST_DATAHUB_PASSWORD}}\"\n    include_view_lineage: true\n    profiling:\n      enabled: false\nsink:\n  type: file\n  config:\n    filename: \"{}\"\n",
        file.display()
    );
    std::fs::write(&recipe, recipe_text).expect("recipe");
    let mut ingest = datahub();
    ingest.args(["ingest", "-c"]).arg(&recipe);
    // DataHub expands `${VAR}` in recipes: the password stays out of the file.
    ingest.env("OUTPOST_DATAHUB_PASSWORD", password);
    run(ingest);
    let mut unpack = datahub();
    unpack
        .args(["check", "metadata-file", "--unpack-mces", "--rewrite"])
        .arg(&file);
    run(unpack);
    file
}

/// One difference `datahub check metadata-diff` reports: the entity, and the aspect and
/// detail where it is one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Difference {
    change: String,
    urn: String,
    aspect: Option<String>,
    detail: Option<String>,
}

/// Reads metadata-diff's report (for files of proposals): `Urn added, U`, `Urn removed, U`,
/// and under `Urn changed, U:` lines `<aspect> added|removed|changed:` (`2nd <aspect> …` for
/// a second aspect of one name), each change followed by tab-indented details whose values
/// may run over several lines. Any other line fails the test: nothing it reports goes
/// unjudged.
fn parse_metadata_diff(report: &str) -> Vec<Difference> {
    let mut found = Vec::new();
    let mut urn = String::new();
    let mut aspect: Option<String> = None;
    // Whether the last line opened a value that may run over lines (a detail).
    let mut in_detail = false;
    let mut aspects_in_block = 0;
    let close_block = |urn: &str, count: &mut usize| {
        assert!(
            urn.is_empty() || *count > 0,
            "metadata-diff changed {urn} without an aspect:\n{report}"
        );
        *count = 0;
    };
    for line in report.lines() {
        let header = line
            .split_once(' ')
            .filter(|(ordinal, rest)| {
                rest.starts_with('<')
                    && ordinal.len() > 2
                    && ordinal[..ordinal.len() - 2]
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                    && ["st", "nd", "rd", "th"].contains(&&ordinal[ordinal.len() - 2..])
            })
            .map_or(line, |(_, rest)| rest);
        if let Some(rest) = line.strip_prefix("Urn added, ") {
            found.push(Difference {
                change: "urn added".into(),
                urn: rest.into(),
                aspect: None,
                detail: None,
            });
            in_detail = false;
        } else if let Some(rest) = line.strip_prefix("Urn removed, ") {
            found.push(Difference {
                change: "urn removed".into(),
                urn: rest.into(),
                aspect: None,
                detail: None,
            });
            in_detail = false;
        } else if let Some(rest) = line.strip_prefix("Urn changed, ") {
            close_block(&urn, &mut aspects_in_block);
            urn = rest.trim_end_matches(':').to_owned();
            aspect = None;
            in_detail = false;
        } else if let Some(rest) = header.strip_prefix('<')
            && let Some((name, change)) = rest.split_once("> ")
            && ["added", "removed", "changed:"].contains(&change)
        {
            aspect = Some(name.to_owned());
            aspects_in_block += 1;
            found.push(Difference {
                change: format!("aspect {}", change.trim_end_matches(':')),
                urn: urn.clone(),
                aspect: aspect.clone(),
                detail: None,
            });
            in_detail = false;
        } else if let (Some(detail), Some(a)) = (line.strip_prefix('\t'), &aspect)
            && !detail.starts_with('\t')
        {
            found.push(Difference {
                change: "detail".into(),
                urn: urn.clone(),
                aspect: Some(a.clone()),
                detail: Some(detail.to_owned()),
            });
            in_detail = true;
        } else if line.is_empty() {
            in_detail = false;
        } else if line.starts_with('[') && line.contains("] INFO ") {
            // DataHub's own log lines (stderr).
        } else {
            assert!(
                in_detail,
                "a line of metadata-diff's report this test does not know: {line:?}\n{report}"
            );
        }
    }
    close_block(&urn, &mut aspects_in_block);
    found
}

/// Why a difference from DataHub's own source is expected: the justification
/// `crates/catalog-export/README.md` gives, or `None` for one it does not explain. `views`
/// are the export's views: some differences are only expected of them.
fn justified(d: &Difference, views: &BTreeSet<String>, platform: &str) -> Option<&'static str> {
    let aspect = d.aspect.as_deref().unwrap_or("");
    let detail = d.detail.as_deref().unwrap_or("");
    let view = views.contains(&d.urn);
    let (postgres, mysql) = (platform == "postgres", platform == "mysql");
    if d.change == "urn removed" && d.urn.starts_with("urn:li:query:") {
        return Some(QUERY_ENTITIES);
    }
    match (d.change.as_str(), aspect) {
        // An aspect that changed: its details are judged one by one. An aspect added or
        // removed whole must be explained itself.
        ("aspect changed", _) => Some("see its details"),
        ("aspect removed", "upstreamLineage") if view && mysql => Some(NO_VIEW_DEPENDENCIES),
        ("detail", "containerProperties")
            if detail == "Item aspect['description'] added to dictionary." =>
        {
            Some("container descriptions: Outpost carries database and schema comments")
        }
        ("detail", "viewProperties") if detail.starts_with("Value of aspect['viewLogic'] changed") => {
            Some(VIEW_TEXT)
        }
        ("detail", "datasetProperties")
            if detail.starts_with("Value of aspect['customProperties']['view_definition'] changed") =>
        {
            Some(VIEW_TEXT)
        }
        ("detail", "viewProperties")
            if postgres && detail == "Value of aspect['materialized'] changed from False to True." =>
        {
            Some("materialized views: DataHub's source marks them not materialized")
        }
        ("detail", "schemaMetadata")
            if postgres && detail.contains("['type']['type'] changed from {'com.linkedin.schema.EnumType': {}} to {'com.linkedin.schema.NullType': {}}") =>
        {
            Some("enum type class: records name a user-defined type without saying it is an enum")
        }
        ("detail", "schemaMetadata")
            if mysql && detail.contains("['nativeDataType'] changed from \"LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin\" to \"LONGTEXT\"") =>
        {
            Some(MARIADB_JSON)
        }
        ("detail", "schemaMetadata")
            if view
                && mysql
                && (detail.ends_with("['nullable'] changed from True to False.")
                    || detail.ends_with("['description'] added to dictionary.")) =>
        {
            Some(VIEW_COLUMNS)
        }
        // The aspect as a whole (metadata-diff shows no path): upstreams are compared below.
        ("detail", "upstreamLineage") if detail.starts_with("Value of root[0] changed from") => {
            Some("lineage stamps and column lineage: compared dataset by dataset below")
        }
        _ => None,
    }
}

const QUERY_ENTITIES: &str = "query entities: DataHub parses view SQL into query entities; Outpost reports the catalog's own dependencies";
const VIEW_TEXT: &str = "view text: as the catalog gives it";
const NO_VIEW_DEPENDENCIES: &str =
    "view lineage: MariaDB's catalog records no view dependencies; DataHub parses the SQL";
const MARIADB_JSON: &str = "MariaDB's JSON: a LONGTEXT whose collation the record does not carry";
const VIEW_COLUMNS: &str = "view columns: the catalog's own nullability and comment";

/// The datasets of a file of proposals that are views.
fn views(file: &Path) -> BTreeSet<String> {
    let proposals: Vec<Value> =
        serde_json::from_slice(&std::fs::read(file).expect("file")).expect("JSON array");
    proposals
        .iter()
        .filter(|p| p["aspectName"] == "viewProperties")
        .map(|p| p["entityUrn"].as_str().expect("urn").to_owned())
        .collect()
}

/// metadata-diff between `ours` and `theirs`: every difference must be justified, and the
/// `expected` reasons must be among them (so the report was read). Answers the report.
fn only_justified_differences(
    ours: &Path,
    theirs: &Path,
    platform: &str,
    expected: &[&str],
) -> String {
    let mut diff = datahub();
    diff.args(["check", "metadata-diff"]).arg(ours).arg(theirs);
    let report = run(diff);
    let differences = parse_metadata_diff(&report);
    let views = views(ours);
    let unexplained: Vec<&Difference> = differences
        .iter()
        .filter(|d| justified(d, &views, platform).is_none())
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained differences: {unexplained:#?}\n{report}"
    );
    let reasons: BTreeSet<&str> = differences
        .iter()
        .filter_map(|d| justified(d, &views, platform))
        .collect();
    for reason in expected {
        assert!(
            reasons.contains(reason),
            "the report was read: {reason}\n{report}"
        );
    }
    report
}

/// The upstream datasets of every view in a file of proposals.
fn upstreams(file: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let proposals: Vec<Value> =
        serde_json::from_slice(&std::fs::read(file).expect("file")).expect("JSON array");
    proposals
        .iter()
        .filter(|p| p["aspectName"] == "upstreamLineage")
        .map(|p| {
            let datasets = p["aspect"]["json"]["upstreams"]
                .as_array()
                .expect("upstreams")
                .iter()
                .map(|u| u["dataset"].as_str().expect("dataset").to_owned())
                .collect();
            (p["entityUrn"].as_str().expect("urn").to_owned(), datasets)
        })
        .collect()
}

/// On the same PostgreSQL database, DataHub reads Outpost's export as it reads its own
/// source's output: the same dataset and container URNs, field paths, native types,
/// nullability, keys and view lineage. Every difference metadata-diff reports is one the docs
/// justify, and the known ones are there (so the report was read).
#[test]
fn datahub_finds_our_postgres_export_equal_to_its_own_source() {
    let dir = scratch("formats-postgres");
    let database = postgres_fixture(dir.path());
    let ours_run = extract_postgres(&database, dir.path());
    let (ours, _) = export_and_check(&ours_run, dir.path());
    let at_extraction = openlineage_valid(&ours_run.join("exports/openlineage.jsonl"));
    let server = format!(
        "postgres://{}:{}",
        env("OUTPOST_TEST_PG_HOST"),
        env("OUTPOST_TEST_PG_PORT")
    );
    assert!(
        at_extraction
            .iter()
            .all(|e| e["dataset"]["namespace"] == server.as_str()),
        "{} against {server}",
        at_extraction[0]["dataset"]["namespace"]
    );
    let login = [
        env("OUTPOST_TEST_PG_HOST"),
        env("OUTPOST_TEST_PG_PORT"),
        env("OUTPOST_TEST_PG_SUPERUSER"),
        env("OUTPOST_TEST_PG_PASSWORD"),
    ];
    let theirs = datahub_source("postgres", login, &database, dir.path());

    only_justified_differences(
        &ours,
        &theirs,
        "postgres",
        &[
            QUERY_ENTITIES,
            "container descriptions: Outpost carries database and schema comments",
            VIEW_TEXT,
        ],
    );
    // metadata-diff shows a changed lineage aspect whole: the upstream datasets must agree.
    let (ours_up, theirs_up) = (upstreams(&ours), upstreams(&theirs));
    assert_eq!(ours_up, theirs_up);
    assert_eq!(ours_up.len(), 2, "both views have lineage: {ours_up:?}");
}

/// Every database connector's test catalog: DataHub accepts the export, and every
/// OpenLineage event validates against the pinned spec. PostgreSQL is above; SQLite's
/// sample catalog, MariaDB's and Snowflake's (the emulator) are here.
#[test]
fn every_database_connectors_export_is_valid_for_datahub_and_openlineage() {
    let dir = scratch("formats-all");

    // SQLite: the sample catalog `outpost run` extracts.
    let sqlite = dir.join("sqlite");
    std::fs::create_dir_all(&sqlite).expect("dir");
    let db = sqlite.join("sample.db");
    support::sqlite_file(
        &db,
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample-catalog.sql"),
        )
        .expect("sample"),
    );
    let run_dir = sqlite.join("run");
    support::extract_sqlite(&db, &run_dir, "sample", &[]);
    let (_, events) = export_and_check(&run_dir, &sqlite);
    assert!(events.len() >= 30, "{} events", events.len());
    assert!(
        events
            .iter()
            .all(|e| e["dataset"]["namespace"] == "sqlite://sample")
    );

    // MariaDB: a schema with a table, a key and a view.
    let mysql = dir.join("mysql");
    std::fs::create_dir_all(&mysql).expect("dir");
    let schema = format!("outpost_formats_{}", std::process::id());
    let mut admin = Command::new("mysql");
    admin.args([
        "-h",
        &env("OUTPOST_TEST_MYSQL_HOST"),
        "-P",
        &env("OUTPOST_TEST_MYSQL_PORT"),
    ]);
    admin.args(["-u", &env("OUTPOST_TEST_MYSQL_ADMIN")]);
    admin.env("MYSQL_PWD", env("OUTPOST_TEST_MYSQL_PASSWORD"));
    admin.args(["-e", &format!(
        "DROP DATABASE IF EXISTS {schema}; CREATE DATABASE {schema}; \
         CREATE TABLE {schema}.customers (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL COMMENT 'Full name', \
             mood ENUM('sad','Ok','happy'), amount DECIMAL(12,2), small TINYINT, flag TINYINT(1), b BOOLEAN, i INT, ui INT UNSIGNED, \
             m MEDIUMINT, si SMALLINT, f FLOAT, d DOUBLE, dt DATETIME, ts TIMESTAMP NULL, da DATE, t TIME, y YEAR, c CHAR(3), \
             tx TEXT, lt LONGTEXT, bl BLOB, vb VARBINARY(10), bi BIT(3), j JSON, st SET('a','B')) COMMENT='Customers'; \
         CREATE TABLE {schema}.orders (id INT PRIMARY KEY, customer_id BIGINT, FOREIGN KEY (customer_id) REFERENCES {schema}.customers (id)); \
         CREATE VIEW {schema}.named AS SELECT name FROM {schema}.customers;"
    )]);
    run(admin);
    let secrets = mysql.join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets");
    std::fs::write(secrets.join("password"), env("OUTPOST_TEST_MYSQL_PASSWORD")).expect("secret");
    let run_dir = mysql.join("run");
    extract(
        "mysql",
        &[
            format!("host={}", env("OUTPOST_TEST_MYSQL_HOST")),
            format!("port={}", env("OUTPOST_TEST_MYSQL_PORT")),
            format!("user={}", env("OUTPOST_TEST_MYSQL_ADMIN")),
            "ssl-mode=disable".into(),
            format!("include-schemas=^{schema}$"),
        ],
        &secrets,
        &run_dir,
        &[],
    );
    let (datahub_file, events) = export_and_check(&run_dir, &mysql);
    // DataHub's own mysql source over the same schema finds the same URNs, field paths,
    // native types (SQLAlchemy's spelling), nullability and keys.
    let login = [
        env("OUTPOST_TEST_MYSQL_HOST"),
        env("OUTPOST_TEST_MYSQL_PORT"),
        env("OUTPOST_TEST_MYSQL_ADMIN"),
        env("OUTPOST_TEST_MYSQL_PASSWORD"),
    ];
    let theirs = datahub_source("mysql", login, &schema, &mysql);
    only_justified_differences(
        &datahub_file,
        &theirs,
        "mysql",
        &[
            QUERY_ENTITIES,
            NO_VIEW_DEPENDENCIES,
            VIEW_TEXT,
            MARIADB_JSON,
        ],
    );
    // MySQL has no level above schemas: DataHub's `schema.table`, OpenLineage's too.
    let text = std::fs::read_to_string(&datahub_file).expect("export");
    assert!(
        text.contains(&format!(
            "urn:li:dataset:(urn:li:dataPlatform:mysql,{schema}.customers,PROD)"
        )),
        "{text}"
    );
    let names: BTreeSet<&str> = events
        .iter()
        .map(|e| e["dataset"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            format!("{schema}.customers"),
            format!("{schema}.named"),
            format!("{schema}.orders")
        ]
        .iter()
        .map(String::as_str)
        .collect()
    );

    // Snowflake: the emulator.
    let snowflake = dir.join("snowflake");
    std::fs::create_dir_all(&snowflake).expect("dir");
    let database = format!("OUTPOST_FORMATS_{}", std::process::id());
    support::snowflake(&[
        &format!("CREATE OR REPLACE DATABASE {database}"),
        &format!("CREATE SCHEMA {database}.APP"),
        &format!("CREATE TABLE {database}.APP.ORDERS (ID INT PRIMARY KEY, NOTE TEXT)"),
        &format!("CREATE VIEW {database}.APP.RECENT AS SELECT ID FROM {database}.APP.ORDERS"),
    ]);
    let url = env("OUTPOST_TEST_SNOWFLAKE_URL");
    let connection = snowflake.join("connection");
    std::fs::create_dir_all(&connection).expect("connection");
    for (name, value) in [
        ("account", "outpost-e2e"),
        ("host", "127.0.0.1"),
        ("port", url.rsplit(':').next().expect("port")),
        ("user", "admin"),
        ("authenticator", "password"),
        ("ssl-mode", "disable"),
        ("password", "unused"),
    ] {
        std::fs::write(connection.join(name), value).expect("connection value");
    }
    let run_dir = snowflake.join("run");
    extract(
        "snowflake",
        &[format!("include-databases=^{database}$")],
        &connection,
        &run_dir,
        &[],
    );
    let (datahub_file, events) = export_and_check(&run_dir, &snowflake);
    // DataHub's Snowflake source lower-cases URNs by default; the export does too.
    let text = std::fs::read_to_string(&datahub_file).expect("export");
    let lower = database.to_lowercase();
    assert!(
        text.contains(&format!(
            "urn:li:dataset:(urn:li:dataPlatform:snowflake,{lower}.app.orders,PROD)"
        )),
        "{text}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["dataset"]["name"] == format!("{database}.APP.RECENT")
                && e["dataset"]["facets"]["datasetType"]["datasetType"] == "VIEW"),
        "{events:#?}"
    );
}

/// What the binary says of a run it cannot export: a missing run, and a connector the format
/// has no mapping for, each with its exit code and the reason.
#[test]
fn export_errors_name_the_run_and_the_reason() {
    let dir = scratch("formats-errors");
    let out = outpost()
        .args(["export", "--format", "datahub", "--out"])
        .arg(dir.join("x.json"))
        .arg("--from")
        .arg(dir.join("no-run"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no manifest.json"));
    let out = outpost()
        .args(["export", "--format", "xml", "--out", "x", "--from", "y"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format `xml`"));

    // A record that is not what its stream says: the file and line are named, nothing is
    // written.
    let db = dir.join("c.db");
    support::sqlite_file(&db, "CREATE TABLE t (a int);");
    let run_dir = dir.join("run");
    support::extract_sqlite(&db, &run_dir, "c1", &[]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let columns = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["kind"] == "column")
        .expect("a column part");
    let part = run_dir.join(columns["path"].as_str().expect("path"));
    let mut encoder =
        zstd::Encoder::new(std::fs::File::create(&part).expect("part"), 3).expect("zstd");
    std::io::Write::write_all(&mut encoder, b"{\"database\":\"main\"}\n").expect("write");
    encoder.finish().expect("finish");
    let target = dir.join("out.json");
    let out = outpost()
        .args(["export", "--format", "datahub", "--from"])
        .arg(&run_dir)
        .arg("--out")
        .arg(&target)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("part-00000.ndjson.zst, line 1: missing field"),
        "{stderr}"
    );
    assert!(!target.exists(), "nothing is written");
}

/// A Tableau site (the fake, after Tableau's documented APIs): DataHub accepts the export, with
/// a chart per sheet, a dashboard per dashboard, a dataset per data source, and lineage from
/// data sources to the database tables they read; and OpenLineage events with column
/// lineage from fields to database columns, valid against the pinned spec.
#[test]
fn datahub_accepts_a_tableau_sites_export() {
    let dir = scratch("formats-tableau");
    let secret = format!("CANARY-PAT-SECRET-{}-f0f0", std::process::id());
    let site = tableau_fake::SiteModel::generate(
        "formats",
        tableau_fake::Scale {
            workbooks: 6,
            sheets_per_workbook: 3,
            published: 3,
            fields_per_datasource: 5,
            tables: 8,
        },
    );
    let (_runtime, _fake, connection) =
        support::tableau_site(dir.path(), "formats", site, "formats-token", &secret);
    let run_dir = dir.join("run");
    extract("tableau", &[], &connection, &run_dir, &[]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let file = dir.join("datahub.json");
    export(&run_dir, "datahub", &file);
    datahub_accepts(&file);
    let proposals: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&file).expect("export")).expect("JSON array");
    let count = |aspect: &str, prefix: &str| {
        proposals
            .iter()
            .filter(|p| {
                p["aspectName"] == aspect
                    && p["entityUrn"]
                        .as_str()
                        .is_some_and(|u| u.starts_with(prefix))
            })
            .count() as u64
    };
    let totals = &manifest["totals"];
    assert_eq!(
        count("chartInfo", "urn:li:chart:(tableau,"),
        totals["sheet"]
    );
    assert_eq!(
        count("dashboardInfo", "urn:li:dashboard:(tableau,"),
        totals["dashboard"]
    );
    assert_eq!(
        count(
            "datasetProperties",
            "urn:li:dataset:(urn:li:dataPlatform:tableau,"
        ),
        totals["datasource"]
    );
    let workbooks = proposals
        .iter()
        .filter(|p| {
            p["aspectName"] == "subTypes" && p["aspect"]["json"]["typeNames"][0] == "Workbook"
        })
        .count() as u64;
    assert_eq!(workbooks, totals["workbook"]);
    // Lineage reaches the database tables, named as the database's own export names them.
    let to_tables = proposals
        .iter()
        .filter(|p| p["aspectName"] == "upstreamLineage")
        .flat_map(|p| {
            p["aspect"]["json"]["upstreams"]
                .as_array()
                .expect("upstreams")
                .clone()
        })
        .filter(|u| {
            u["dataset"]
                .as_str()
                .is_some_and(|d| !d.starts_with("urn:li:dataset:(urn:li:dataPlatform:tableau,"))
        })
        .count();
    assert!(to_tables > 0, "lineage to database tables");
    assert!(
        proposals
            .iter()
            .any(|p| p["aspectName"] == "upstreamLineage"
                && p["aspect"]["json"]["fineGrainedLineages"].is_array()),
        "field-to-column lineage"
    );
    assert!(
        !std::fs::read_to_string(&file)
            .expect("export")
            .contains(&secret)
    );

    // OpenLineage: one event per data source, its fields' database columns as column
    // lineage, the database's namespace as given for its platform.
    let mut command = outpost();
    command
        .args(["export", "--format", "openlineage", "--from"])
        .arg(&run_dir);
    command.args([
        "--openlineage-upstream-namespace",
        "postgres=postgres://db.example:5432",
    ]);
    command.arg("--out").arg(dir.path());
    run(command);
    let events = openlineage_valid(&dir.join("openlineage.jsonl"));
    assert_eq!(
        events.len() as u64,
        totals["datasource"].as_u64().expect("count")
    );
    let inputs: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["dataset"]["facets"]["columnLineage"]["fields"].as_object())
        .flat_map(|fields| fields.values())
        .flat_map(|f| f["inputFields"].as_array().expect("inputFields"))
        .collect();
    assert!(!inputs.is_empty(), "column lineage");
    assert!(
        inputs
            .iter()
            .any(|i| i["namespace"] == "postgres://db.example:5432"),
        "{inputs:?}"
    );
}

/// `--export` at extraction: the run is also written in both formats, into `exports/`
/// beside its streams, listed in its signed manifest, delivered with it (to a folder bucket
/// by `outpost run`, to S3 by `outpost upload`) and verified with it; a changed export is
/// refused like a changed part. What lands is what DataHub and the OpenLineage spec accept.
#[test]
fn exports_written_at_extraction_are_signed_delivered_and_verified_with_the_run() {
    let dir = scratch("formats-delivered");
    let key = dir.join("manifest-key");
    let public = run({
        let mut keygen = outpost();
        keygen.args(["keygen", "--out"]).arg(&key);
        keygen
    })
    .trim()
    .to_owned();
    let bucket = dir.join("bucket");
    let mut local = outpost();
    local.args([
        "run",
        "--run-id=r1",
        "--export=datahub",
        "--export=openlineage",
    ]);
    local.arg(format!("--manifest-signing-key={}", key.display()));
    local.arg(format!("--to=file://{}/outpost", bucket.display()));
    local.current_dir(dir.path());
    run(local);
    let landed = bucket.join("outpost/sample/local/r1");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(landed.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let exports = manifest["exports"].as_array().expect("exports listed");
    let formats: Vec<&str> = exports
        .iter()
        .map(|e| e["format"].as_str().expect("format"))
        .collect();
    assert_eq!(formats, ["datahub", "openlineage"]);
    assert!(exports.iter().all(|e| e["objects"].as_u64() > Some(0)));
    datahub_accepts(&landed.join("exports/datahub.json"));
    let events = openlineage_valid(&landed.join("exports/openlineage.jsonl"));
    assert_eq!(
        Some(events.len() as u64),
        exports[1]["objects"].as_u64(),
        "the manifest counts the events"
    );
    let verify = |run_dir: &Path| {
        outpost()
            .arg("verify")
            .arg(run_dir)
            .arg(format!("--key={public}"))
            .output()
            .expect("runs")
    };
    let verified = verify(&landed);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    // A changed export is refused, named.
    let export = landed.join("exports/datahub.json");
    let mut bytes = std::fs::read(&export).expect("export");
    bytes[10] ^= 1;
    std::fs::write(&export, bytes).expect("tamper");
    let refused = verify(&landed);
    assert_eq!(refused.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("exports/datahub.json"),
        "{refused:?}"
    );

    // Relayed to S3 by `outpost upload`, the exports go with the run and verify by its URL.
    let db = dir.join("c.db");
    support::sqlite_file(
        &db,
        "CREATE TABLE t (a int PRIMARY KEY); CREATE VIEW v AS SELECT a FROM t;",
    );
    let run_dir = dir.join("run");
    let mut extract = outpost();
    extract.args(["extract", "--connector=sqlite", "--export=datahub"]);
    extract.arg(format!("--param=path={}", db.display()));
    extract.arg(format!("--manifest-signing-key={}", key.display()));
    extract.arg("--out").arg(&run_dir);
    run(extract);
    let credentials = dir.join("s3-credentials");
    std::fs::create_dir_all(&credentials).expect("credentials");
    std::fs::write(
        credentials.join("access-key-id"),
        env("OUTPOST_TEST_S3_ACCESS_KEY"),
    )
    .expect("write");
    std::fs::write(
        credentials.join("secret-access-key"),
        env("OUTPOST_TEST_S3_SECRET_KEY"),
    )
    .expect("write");
    let store = [
        format!("--endpoint={}", env("OUTPOST_TEST_S3_ENDPOINT")),
        "--region=us-east-1".to_owned(),
        format!("--credentials-dir={}", credentials.display()),
    ];
    let prefix = format!(
        "s3://{}/formats-{}",
        env("OUTPOST_TEST_S3_BUCKET"),
        std::process::id()
    );
    let mut upload = outpost();
    upload
        .arg("upload")
        .arg(format!("--from={}", run_dir.display()));
    upload.args([
        "--connector=sqlite",
        "--connection=c1",
        "--job-id=j1",
        "--run-id=r1",
    ]);
    upload.arg(format!("--to={prefix}")).args(&store);
    run(upload);
    let object = Path::new(&env("OUTPOST_TEST_S3_DIR"))
        .join(env("OUTPOST_TEST_S3_BUCKET"))
        .join(format!(
            "formats-{}/c1/j1/r1/exports/datahub.json",
            std::process::id()
        ));
    assert!(
        object.exists(),
        "the export was delivered: {}",
        object.display()
    );
    let mut by_url = outpost();
    by_url.args(["verify", &format!("{prefix}/c1/j1/r1")]);
    by_url.arg(format!("--key={public}")).args(&store);
    run(by_url);
}
