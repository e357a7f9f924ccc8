//! The Tableau clients against the Tableau fake (`crates/tableau-fake`): REST sign-in, one
//! session per token, paged lists; the Metadata API's paging, node limit, rate and time
//! limits, backfill and a disabled API. The queries are the source's own
//! (`sources::tableau::queries`), validated by the fake's GraphQL engine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use metadata_extract::SourceSecret;
use metadata_extract::http::Retry;
use metadata_extract::sources::tableau::graphql::{Metadata, MetadataError, Query};
use metadata_extract::sources::tableau::queries::{self, FieldNode, WorkbookNode};
use metadata_extract::sources::tableau::rest::{self, Connection, Rest, TableauError};
use metadata_extract::sources::tableau::xml::{ProjectsResponse, WorkbooksResponse};
use tableau_fake::{Faults, Scale, SiteModel, TableauFake};

const TOKEN_NAME: &str = "outpost-pat";
const TOKEN_SECRET: &str = "pat-secret-5e3f \"<&>\"";

fn small() -> Scale {
    Scale {
        workbooks: 23,
        sheets_per_workbook: 6,
        published: 5,
        fields_per_datasource: 9,
        tables: 17,
    }
}

fn fast() -> Retry {
    Retry {
        attempts: 8,
        first: Duration::from_millis(1),
        max: Duration::from_millis(5),
        budget: Duration::from_secs(10),
    }
}

async fn server(faults: Faults) -> (TableauFake, SiteModel) {
    let site = SiteModel::generate("finance-ünï", small());
    (
        TableauFake::start(site.clone(), TOKEN_NAME, TOKEN_SECRET, faults).await,
        site,
    )
}

/// An HTTP client as the source builds one (rustls with ring), without proxies.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

fn client(url: &str, site: &str, secret: &str) -> Rest {
    Rest::new(
        Connection {
            server: url.to_owned(),
            site: site.to_owned(),
            token_name: TOKEN_NAME.into(),
            token_secret: SourceSecret::new(secret.to_owned()),
            http: http(),
            retry: fast(),
        },
        "3.23".into(),
    )
}

async fn project_names(rest: &Rest, page: u32) -> Result<Vec<String>, TableauError> {
    let mut names = Vec::new();
    rest.each::<ProjectsResponse>("projects", "projects", page, |p| {
        names.push(p.name);
        Ok(())
    })
    .await?;
    Ok(names)
}

#[tokio::test]
async fn serverinfo_sign_in_paged_lists_and_sign_out_in_either_namespace_form() {
    for prefixed in [false, true] {
        let (fake, site) = server(Faults {
            prefixed_xml: prefixed,
            ..Faults::default()
        })
        .await;
        let info = rest::server_info(&http(), &fake.url, &fast())
            .await
            .expect("serverinfo");
        assert_eq!(info.rest_api_version.text, "3.23");
        let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
        let names = project_names(&rest, 5).await.expect("projects");
        let expected: Vec<String> = site.projects.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, expected, "every project once, in order");
        let mut workbooks = Vec::new();
        let pages = rest
            .each::<WorkbooksResponse>("workbooks", "workbooks", 4, |w| {
                workbooks.push((w.id, w.tags.tags.len()));
                Ok(())
            })
            .await
            .expect("workbooks");
        assert_eq!(pages, 6, "23 workbooks, 4 a page");
        assert_eq!(workbooks.len(), site.workbooks.len());
        rest.sign_out().await;
        assert_eq!(
            fake.counters.sign_ins.load(Ordering::SeqCst),
            1,
            "one session"
        );
        assert_eq!(fake.counters.sign_outs.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_wrong_token_is_a_refused_sign_in_naming_tableaus_code() {
    let (fake, site) = server(Faults::default()).await;
    let rest = client(&fake.url, &site.content_url, "not the secret");
    let error = project_names(&rest, 100).await.expect_err("refused");
    assert!(
        matches!(&error, TableauError::Login { code, .. } if code == "401001"),
        "{error:?}"
    );
    assert!(!error.to_string().contains("not the secret"), "{error}");
    // The wrong site too.
    let rest = client(&fake.url, "another-site", TOKEN_SECRET);
    let error = project_names(&rest, 100).await.expect_err("refused");
    assert!(matches!(error, TableauError::Login { .. }), "{error:?}");
}

#[tokio::test]
async fn a_session_ended_by_another_sign_in_or_by_expiry_is_renewed_once_per_failure() {
    // Sessions end after 3 requests: 12 projects at 2 a page take 6 requests, one renewal.
    let (fake, site) = server(Faults {
        session_requests: Some(3),
        ..Faults::default()
    })
    .await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    assert_eq!(project_names(&rest, 2).await.expect("projects").len(), 12);
    assert_eq!(fake.counters.sign_ins.load(Ordering::SeqCst), 2);
    assert_eq!(fake.counters.refused.load(Ordering::SeqCst), 1);

    // A second sign-in with the same token (another client) ends the first session.
    let (fake, site) = server(Faults::default()).await;
    let first = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let second = client(&fake.url, &site.content_url, TOKEN_SECRET);
    project_names(&first, 100).await.expect("first");
    project_names(&second, 100).await.expect("second");
    assert_eq!(project_names(&first, 100).await.expect("renewed").len(), 12);
    assert_eq!(fake.counters.sign_ins.load(Ordering::SeqCst), 3);
    assert_eq!(fake.counters.refused.load(Ordering::SeqCst), 1);
}

async fn every<T: serde::de::DeserializeOwned>(
    rest: &Rest,
    retry: Retry,
    query: Query,
    first: u32,
) -> Result<(Vec<T>, metadata_extract::sources::tableau::graphql::Report), MetadataError> {
    let metadata = Metadata::new(rest, retry);
    let mut nodes = Vec::new();
    let report = metadata
        .each(query, first, |node| {
            nodes.push(node);
            Ok(())
        })
        .await?;
    Ok((nodes, report))
}

#[tokio::test]
async fn every_query_of_the_source_is_accepted_and_pages_every_node_once_in_id_order() {
    let (fake, site) = server(Faults::default()).await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let (fields, report) = every::<FieldNode>(&rest, fast(), queries::FIELDS, 7)
        .await
        .expect("fields");
    let ids: Vec<&str> = fields.iter().map(|f| f.id.as_str()).collect();
    let mut expected: Vec<&str> = site.fields.iter().map(|f| f.id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "every field once, by id");
    assert_eq!(report.nodes, site.fields.len() as u64);
    assert_eq!(report.requests, (site.fields.len() as u32).div_ceil(7));
    assert!(
        fields
            .iter()
            .any(|f| f.typename == "CalculatedField" && f.formula.is_some())
    );
    assert!(fields.iter().any(|f| f.upstream_columns.iter().any(|c| {
        c.table
            .as_ref()
            .is_some_and(|t| t.schema.is_some() && t.database.is_some())
    })));
    let (workbooks, _) = every::<WorkbookNode>(&rest, fast(), queries::WORKBOOKS, 10)
        .await
        .expect("workbooks");
    assert_eq!(workbooks.len(), site.workbooks.len());
    assert!(workbooks.iter().all(|w| w.dashboards.len() == 2));
    for query in [
        queries::PUBLISHED_DATASOURCES,
        queries::EMBEDDED_DATASOURCES,
        queries::CUSTOM_SQL,
    ] {
        let (nodes, _) = every::<serde_json::Value>(&rest, fast(), query, 100)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", query.connection));
        assert!(!nodes.is_empty(), "{}", query.connection);
    }
    assert_eq!(fake.counters.sign_ins.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_query_the_engine_rejects_fails_with_its_message() {
    let (fake, site) = server(Faults::default()).await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let wrong = Query {
        connection: "workbooksConnection",
        selection: "id noSuchField",
    };
    let error = every::<serde_json::Value>(&rest, fast(), wrong, 10)
        .await
        .expect_err("rejected");
    assert!(
        matches!(&error, MetadataError::Query { message, .. } if message.contains("noSuchField")),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_node_limit_halves_the_page_until_it_fits_and_nothing_is_lost() {
    // About 30 objects a workbook: a page of 40 is over a 200-object limit; 5 fits.
    let (fake, site) = server(Faults {
        node_limit: 200,
        ..Faults::default()
    })
    .await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let (workbooks, report) = every::<WorkbookNode>(&rest, fast(), queries::WORKBOOKS, 40)
        .await
        .expect("workbooks");
    let ids: BTreeSet<&str> = workbooks.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids.len(), site.workbooks.len(), "none lost or repeated");
    assert_eq!(workbooks.len(), site.workbooks.len());
    let smallest = report.smallest_page.expect("the limit was hit");
    assert!((1..40).contains(&smallest), "{smallest}");
    assert!(fake.counters.node_limit_hits.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn rate_limits_and_time_limits_are_waited_out_and_nothing_is_lost() {
    let (fake, site) = server(Faults {
        http_429_every: Some(3),
        rate_exceeded_every: Some(4),
        time_limit_every: Some(5),
        ..Faults::default()
    })
    .await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let (fields, report) = every::<FieldNode>(&rest, fast(), queries::FIELDS, 10)
        .await
        .expect("fields");
    assert_eq!(fields.len(), site.fields.len());
    let pages = (site.fields.len() as u32).div_ceil(10);
    assert!(
        report.requests > pages,
        "{} requests for {pages} pages",
        report.requests
    );
    assert!(fake.counters.graphql_requests.load(Ordering::SeqCst) > report.requests);
}

#[tokio::test]
async fn a_rate_limit_past_the_time_budget_fails_and_says_so() {
    let (fake, site) = server(Faults {
        rate_exceeded_every: Some(1),
        ..Faults::default()
    })
    .await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let budget = Retry {
        budget: Duration::from_millis(200),
        ..fast()
    };
    let error = every::<FieldNode>(&rest, budget, queries::FIELDS, 10)
        .await
        .expect_err("exhausted");
    assert!(
        matches!(error, MetadataError::Exhausted { .. }),
        "{error:?}"
    );
    // HTTP 429 on every request: the transport's retries run out the same way.
    let (fake, site) = server(Faults {
        http_429_every: Some(1),
        ..Faults::default()
    })
    .await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let error = every::<FieldNode>(&rest, fast(), queries::FIELDS, 10)
        .await
        .expect_err("exhausted");
    assert!(
        matches!(&error, MetadataError::Rest(TableauError::Transport(metadata_extract::http::TransportError::Unreachable { detail, .. })) if detail.contains("429")),
        "{error:?}"
    );
    drop(fake);
}

#[tokio::test]
async fn backfill_is_reported_and_the_data_kept() {
    let (fake, site) = server(Faults::default()).await;
    fake.set_backfill(true);
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let (workbooks, report) = every::<WorkbookNode>(&rest, fast(), queries::WORKBOOKS, 100)
        .await
        .expect("workbooks");
    assert_eq!(workbooks.len(), site.workbooks.len());
    assert!(report.backfill_running);
}

#[tokio::test]
async fn a_disabled_metadata_api_names_the_tsm_command() {
    let (fake, site) = server(Faults {
        disabled: true,
        ..Faults::default()
    })
    .await;
    let rest = client(&fake.url, &site.content_url, TOKEN_SECRET);
    let error = every::<WorkbookNode>(&rest, fast(), queries::WORKBOOKS, 100)
        .await
        .expect_err("disabled");
    assert!(matches!(error, MetadataError::Disabled(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("tsm maintenance metadata-services enable"),
        "{error}"
    );
    drop(fake);
}

// ---------------------------------------------------------------------------------------
// The source: a whole site extracted, compared with the site model
// ---------------------------------------------------------------------------------------

use metadata_extract::filter::Rule;
use metadata_extract::sources::ServerConfig;
use metadata_extract::sources::tableau::{self, TableauConfig};
use metadata_extract::tls::SslMode;
use metadata_extract::writer::{read_stream, verify};
use metadata_extract::{EntityKind, ExtractError, Manifest, OutputWriter, RunIdentity, Silent};
use serde_json::Value;

fn config(url: &str, site: &str, secret: &str) -> TableauConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let address = url.trim_start_matches("http://");
    let (host, port) = address.rsplit_once(':').expect("host:port");
    TableauConfig {
        server: ServerConfig {
            host: host.to_owned(),
            port: port.parse().expect("port"),
            user: String::new(),
            password: None,
            ssl_mode: SslMode::Disable,
            ca_bundle: None,
            connect_timeout: Duration::from_secs(5),
        },
        site: site.to_owned(),
        api_version: None,
        token_name: SourceSecret::new(TOKEN_NAME),
        token_secret: SourceSecret::new(secret),
        projects: Rule::default(),
        rest_page: 5,
        metadata_page: 50,
        retry: fast(),
        metadata_retry: fast(),
    }
}

/// Extracts into a fresh folder; the manifest, and every record by kind.
async fn extract(
    config: TableauConfig,
) -> Result<
    (
        Manifest,
        BTreeMap<EntityKind, Vec<Value>>,
        tempfile::TempDir,
    ),
    ExtractError,
> {
    let out = tempfile::Builder::new()
        .prefix("outpost-tableau-")
        .tempdir()
        .expect("scratch");
    let dir = out.path().join("run");
    let mut writer = OutputWriter::create(
        &dir,
        RunIdentity {
            connector: "tableau".into(),
            connection: None,
            job_id: None,
            run_id: None,
        },
        1 << 20,
    )?;
    tableau::extract(config, &mut writer, &Silent).await?;
    let manifest = writer.finish()?;
    verify(&dir, &manifest).expect("output verifies");
    // Every record follows its kind's JSON Schema, and the manifest its own.
    let schemas: BTreeMap<String, Value> = metadata_extract::json_schemas()
        .into_iter()
        .map(|(name, text)| (name, serde_json::from_str(&text).expect("schema")))
        .collect();
    let valid = |schema: &str, value: &Value| {
        let validator = jsonschema::draft202012::new(&schemas[schema]).expect("compiles");
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{schema}: {errors:?} in {value}");
    };
    valid(
        "manifest.schema.json",
        &serde_json::to_value(&manifest).expect("json"),
    );
    let mut records = BTreeMap::new();
    for kind in EntityKind::ALL {
        let stream = read_stream(&dir, &manifest, kind).expect("stream");
        for record in &stream {
            valid(kind.schema_file(), record);
        }
        records.insert(kind, stream);
    }
    Ok((manifest, records, out))
}

fn ids(records: &BTreeMap<EntityKind, Vec<Value>>, kind: EntityKind) -> Vec<String> {
    let mut ids: Vec<String> = records[&kind]
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids
}

/// The lineage edges the model holds, as `kind from to` lines.
fn model_edges(site: &SiteModel) -> Vec<String> {
    let mut edges = Vec::new();
    for d in site.published.iter().chain(&site.embedded) {
        for t in &d.tables {
            edges.push(format!("datasourceToTable {} {t}", d.id));
        }
        for u in &d.upstream_datasources {
            edges.push(format!("datasourceToDatasource {} {u}", d.id));
        }
    }
    let mut through_sql = BTreeSet::new();
    for f in &site.fields {
        for (table, column) in &f.columns {
            if table.starts_with("csql-") {
                // Told once per data source and query, not per column.
                through_sql.insert(format!("datasourceToCustomSql {} {table}", f.datasource));
            } else {
                edges.push(format!("fieldToColumn {} {table}.{column}", f.id));
            }
        }
        for u in &f.upstream_fields {
            edges.push(format!("fieldToField {} {u}", f.id));
        }
        for s in &f.sheets {
            edges.push(format!("sheetToField {s} {}", f.id));
        }
    }
    for c in &site.custom_sql {
        for t in &c.tables {
            edges.push(format!("customSqlToTable {} {t}", c.id));
        }
    }
    edges.extend(through_sql);
    edges.sort();
    edges
}

fn output_edges(records: &BTreeMap<EntityKind, Vec<Value>>) -> Vec<String> {
    let mut edges: Vec<String> = records[&EntityKind::BiLineage]
        .iter()
        .map(|e| {
            let to = match (&e["toId"], &e["table"], &e["column"]) {
                (Value::String(id), _, _) => id.clone(),
                (_, table, Value::String(column)) => {
                    format!("{}.{column}", table["id"].as_str().expect("table id"))
                }
                (_, table, _) => table["id"].as_str().expect("table id").to_owned(),
            };
            format!(
                "{} {} {to}",
                e["kind"].as_str().expect("kind"),
                e["fromId"].as_str().expect("from")
            )
        })
        .collect();
    edges.sort();
    edges
}

/// Every workbook, sheet, dashboard, data source, field, custom SQL query and lineage edge of
/// the model, once; names and odd characters intact.
fn assert_output_equals_site(site: &SiteModel, records: &BTreeMap<EntityKind, Vec<Value>>) {
    assert_output_equals(site, records, 5);
}

/// As [`assert_output_equals_site`], with at least `min_edges` edges of every kind.
fn assert_output_equals(
    site: &SiteModel,
    records: &BTreeMap<EntityKind, Vec<Value>>,
    min_edges: usize,
) {
    // A model with every kind of edge, so that no comparison below is of empty lists.
    let edges = model_edges(site);
    for kind in [
        "datasourceToTable",
        "datasourceToDatasource",
        "fieldToColumn",
        "fieldToField",
        "sheetToField",
        "customSqlToTable",
    ] {
        assert!(
            edges.iter().filter(|e| e.starts_with(kind)).count() >= min_edges,
            "{kind}"
        );
    }
    assert_eq!(records[&EntityKind::Site].len(), 1);
    assert_eq!(
        ids(records, EntityKind::Project),
        sorted(site.projects.iter().map(|p| p.luid.clone()))
    );
    assert_eq!(
        ids(records, EntityKind::Workbook),
        sorted(site.workbooks.iter().map(|w| w.luid.clone()))
    );
    assert_eq!(
        ids(records, EntityKind::Sheet),
        sorted(
            site.workbooks
                .iter()
                .flat_map(|w| w.sheets.iter().map(|s| s.id.clone()))
        )
    );
    assert_eq!(
        ids(records, EntityKind::Dashboard),
        sorted(
            site.workbooks
                .iter()
                .flat_map(|w| w.dashboards.iter().map(|d| d.id.clone()))
        )
    );
    assert_eq!(
        ids(records, EntityKind::Datasource),
        sorted(
            site.published
                .iter()
                .chain(&site.embedded)
                .map(|d| d.id.clone())
        )
    );
    assert_eq!(
        ids(records, EntityKind::Field),
        sorted(site.fields.iter().map(|f| f.id.clone()))
    );
    assert_eq!(
        ids(records, EntityKind::CustomSql),
        sorted(site.custom_sql.iter().map(|c| c.id.clone()))
    );
    assert_eq!(output_edges(records), model_edges(site));
    // Workbooks' URLs are the REST API's.
    for w in &site.workbooks {
        let record = records[&EntityKind::Workbook]
            .iter()
            .find(|r| r["id"] == w.luid.as_str())
            .expect("workbook");
        assert_eq!(record["contentUrl"], format!("wb{}", w.id), "{record}");
        let page = record["webpageUrl"].as_str().expect("webpageUrl");
        assert!(
            page.ends_with(&format!("/workbooks/{}", w.id.trim_start_matches("wb-"))),
            "{page}"
        );
    }
    // Odd names round-trip.
    let names: BTreeSet<&str> = records[&EntityKind::Workbook]
        .iter()
        .map(|w| w["name"].as_str().expect("name"))
        .collect();
    for w in &site.workbooks {
        assert!(names.contains(w.name.as_str()), "{:?} lost", w.name);
    }
    // A project's path runs from the top level down.
    let child = site
        .projects
        .iter()
        .find(|p| p.parent.is_some())
        .expect("a child project");
    let record = records[&EntityKind::Project]
        .iter()
        .find(|p| p["id"] == child.luid.as_str())
        .expect("child");
    let path: Vec<&str> = record["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|v| v.as_str().expect("name"))
        .collect();
    assert_eq!(path.last(), Some(&child.name.as_str()));
    assert!(path.len() >= 2, "{path:?}");
}

#[tokio::test]
async fn the_output_equals_the_site_with_and_without_injected_limits() {
    for faults in [
        Faults::default(),
        Faults {
            node_limit: 300,
            http_429_every: Some(4),
            rate_exceeded_every: Some(5),
            time_limit_every: Some(7),
            prefixed_xml: true,
            ..Faults::default()
        },
    ] {
        let (fake, site) = server(faults).await;
        let (manifest, records, _out) = extract(config(&fake.url, &site.content_url, TOKEN_SECRET))
            .await
            .expect("extracts");
        assert_output_equals_site(&site, &records);
        assert!(manifest.incomplete.is_empty());
        // The query audit lists the five Metadata API queries, and the nodes they returned
        // (retries counted as sent, with no nodes).
        assert_eq!(manifest.queries.len(), 5, "{:?}", manifest.queries);
        assert!(
            manifest
                .queries
                .iter()
                .all(|q| q.statement.starts_with("query OutpostPage"))
        );
        let nodes = site.workbooks.len()
            + site.published.len()
            + site.embedded.len()
            + site.fields.len()
            + site.custom_sql.len();
        let rows: u64 = manifest.queries.iter().map(|q| q.rows).sum();
        assert_eq!(rows, nodes as u64);
        assert_eq!(
            fake.counters.sign_ins.load(Ordering::SeqCst),
            1,
            "one session"
        );
        assert_eq!(fake.counters.sign_outs.load(Ordering::SeqCst), 1);
        // The token's secret appears nowhere in the output.
        let all: String = records.values().flatten().map(Value::to_string).collect();
        assert!(!all.contains(TOKEN_SECRET), "secret in the output");
        assert!(
            !serde_json::to_string(&manifest)
                .expect("json")
                .contains(TOKEN_SECRET)
        );
    }
}

#[tokio::test]
async fn a_backfill_marks_the_run_incomplete_and_a_refused_token_is_exit_77() {
    let (fake, site) = server(Faults::default()).await;
    fake.set_backfill(true);
    let (manifest, records, _out) = extract(config(&fake.url, &site.content_url, TOKEN_SECRET))
        .await
        .expect("extracts");
    assert_output_equals_site(&site, &records);
    assert_eq!(manifest.incomplete.len(), 1, "{:?}", manifest.incomplete);
    assert!(manifest.incomplete[0].contains("BACKFILL_RUNNING"));

    let error = extract(config(&fake.url, &site.content_url, "wrong"))
        .await
        .expect_err("refused");
    assert_eq!(
        error.exit_code(),
        outpost_core::ExitCode::NoPermission,
        "{error}"
    );
    let (fake, site) = server(Faults {
        disabled: true,
        ..Faults::default()
    })
    .await;
    let error = extract(config(&fake.url, &site.content_url, TOKEN_SECRET))
        .await
        .expect_err("disabled");
    assert_eq!(error.exit_code(), outpost_core::ExitCode::Config, "{error}");
    assert!(
        error
            .to_string()
            .contains("tsm maintenance metadata-services enable"),
        "{error}"
    );
    let (fake, site) = server(Faults {
        rate_exceeded_every: Some(1),
        ..Faults::default()
    })
    .await;
    let mut limited = config(&fake.url, &site.content_url, TOKEN_SECRET);
    limited.metadata_retry.budget = Duration::from_millis(100);
    let error = extract(limited).await.expect_err("exhausted");
    assert_eq!(
        error.exit_code(),
        outpost_core::ExitCode::Temporary,
        "{error}"
    );
}

/// The model as the project filters see it: the projects whose path passes `keep`, their
/// workbooks and published data sources (by project name), the embedded sources of those
/// workbooks, the fields of every kept source, and the custom SQL those fields read.
fn filtered(site: &SiteModel, keep: impl Fn(&str) -> bool) -> SiteModel {
    let path = |luid: &str| {
        let mut names = Vec::new();
        let mut next = Some(luid.to_owned());
        while let Some(id) = next {
            let project = site
                .projects
                .iter()
                .find(|p| p.luid == id)
                .expect("project");
            names.insert(0, project.name.clone());
            next = project.parent.clone();
        }
        names.join("/")
    };
    let mut out = site.clone();
    out.projects.retain(|p| keep(&path(&p.luid)));
    let luids: BTreeSet<&str> = out.projects.iter().map(|p| p.luid.as_str()).collect();
    let names: BTreeSet<&str> = out.projects.iter().map(|p| p.name.as_str()).collect();
    out.workbooks.retain(|w| luids.contains(w.project.as_str()));
    out.published
        .retain(|d| d.project.as_deref().is_some_and(|p| names.contains(p)));
    let workbooks: BTreeSet<&str> = out.workbooks.iter().map(|w| w.luid.as_str()).collect();
    out.embedded
        .retain(|d| d.workbook.as_deref().is_some_and(|w| workbooks.contains(w)));
    let sources: BTreeSet<&str> = out
        .published
        .iter()
        .chain(&out.embedded)
        .map(|d| d.id.as_str())
        .collect();
    out.fields
        .retain(|f| sources.contains(f.datasource.as_str()));
    let read: BTreeSet<&str> = out
        .fields
        .iter()
        .flat_map(|f| f.columns.iter().map(|(table, _)| table.as_str()))
        .collect();
    out.custom_sql.retain(|c| read.contains(c.id.as_str()));
    out
}

#[tokio::test]
async fn project_filters_keep_the_projects_paths_and_what_is_in_them() {
    let (fake, site) = server(Faults {
        node_limit: 300,
        ..Faults::default()
    })
    .await;
    // Two top-level projects with their subtrees, less the projects named with dots.
    let first = &site.projects[0].name;
    let second = &site.projects[1].name;
    let parameters: BTreeMap<String, Value> = [
        (
            "include-projects".to_owned(),
            Value::from(format!(
                "^({}|{})(/|$)",
                regex::escape(first),
                regex::escape(second)
            )),
        ),
        ("exclude-projects".to_owned(), Value::from("dots")),
    ]
    .into();
    let mut problems = Vec::new();
    let mut config = config(&fake.url, &site.content_url, TOKEN_SECRET);
    config.projects = Rule::read(&parameters, "projects", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let (_manifest, records, _out) = extract(config).await.expect("extracts");
    let expected = filtered(&site, |path| {
        (path.starts_with(first.as_str()) || path.starts_with(second.as_str()))
            && !path.contains("dots")
    });
    // The filter keeps some and drops some of every kind.
    assert_eq!(expected.projects.len(), 6, "{:?}", expected.projects);
    for (kept, all) in [
        (expected.workbooks.len(), site.workbooks.len()),
        (expected.published.len(), site.published.len()),
        (expected.embedded.len(), site.embedded.len()),
        (expected.fields.len(), site.fields.len()),
        (expected.custom_sql.len(), site.custom_sql.len()),
    ] {
        assert!(0 < kept && kept < all, "{kept} of {all}");
    }
    assert_output_equals(&expected, &records, 2);

    // A bad expression is named.
    let bad: BTreeMap<String, Value> = [("exclude-projects".to_owned(), Value::from("(("))].into();
    let mut problems = Vec::new();
    let _ = Rule::read(&bad, "projects", &mut problems);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("`exclude-projects`"), "{problems:?}");
}

#[tokio::test]
async fn a_server_or_api_version_too_old_is_a_configuration_error_saying_why() {
    // Tableau Server 2022.1 answers REST API 3.15: its Metadata API lacks fields the queries ask.
    let (fake, site) = server(Faults {
        rest_api_version: "3.15",
        ..Faults::default()
    })
    .await;
    let error = extract(config(&fake.url, &site.content_url, TOKEN_SECRET))
        .await
        .expect_err("too old");
    assert_eq!(error.exit_code(), outpost_core::ExitCode::Config, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("3.15") && text.contains("3.17") && text.contains("2022.3"),
        "{text}"
    );
    assert_eq!(
        fake.counters.sign_ins.load(Ordering::SeqCst),
        0,
        "no sign-in"
    );

    // A current server, asked to speak a version before Personal Access Tokens.
    let (fake, site) = server(Faults::default()).await;
    let mut old = config(&fake.url, &site.content_url, TOKEN_SECRET);
    old.api_version = Some("3.5".into());
    let error = extract(old).await.expect_err("too old");
    assert_eq!(error.exit_code(), outpost_core::ExitCode::Config, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("api-version")
            && text.contains("3.6")
            && text.contains("Personal Access Token"),
        "{text}"
    );
    // The version asked is spoken: 3.17 on a 3.23 server.
    let mut chosen = config(&fake.url, &site.content_url, TOKEN_SECRET);
    chosen.api_version = Some("3.17".into());
    extract(chosen).await.expect("3.17 is spoken");
    assert!(
        fake.counters
            .seen
            .lock()
            .expect("seen")
            .iter()
            .any(|line| line.contains("/api/3.17/auth/signin")),
        "signed in with 3.17"
    );
}
