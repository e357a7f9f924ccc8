//! Tableau (issue 15, in progress): a site's workbooks, sheets, dashboards, data sources,
//! fields and custom SQL, with their lineage down to database tables, read through
//! Tableau's REST API (XML) and its Metadata API (GraphQL).
//!
//! The parts: the REST API's documents ([`xml`], proven on Tableau's own recorded answers
//! by `tests/tableau_assets.rs`); the REST client ([`rest`]: one session per token, paged
//! lists); the Metadata API client ([`graphql`]: cursor paging, the node limit, rate and
//! time limits, backfill); the queries ([`queries`]); and [`extract`], which writes the BI
//! records (`outpost_core::output::bi`) as pages arrive. `tests/tableau.rs` runs them against
//! the Tableau server fake (`crates/tableau-fake`, with a real GraphQL engine), and
//! `outpost/tests/emulated_e2e.rs` runs `connectors/tableau` through Argo's path against it.

pub mod graphql;
pub mod queries;
pub mod rest;
pub mod xml;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use outpost_core::output::{
    BiLineage, BiLineageKind, CustomSql, Dashboard, Datasource, DatasourceKind, Field, FieldKind,
    Project, Sheet, Site, UpstreamDatabase, UpstreamTable, Workbook,
};

use crate::http::Retry;
use crate::sources::ServerConfig;
use crate::writer::{OutputWriter, WriteError};
use crate::{EntityKind, ExtractError, Progress, SourceSecret};
use graphql::{Metadata, MetadataError};
use queries::{DatabaseNode, TableNode};
use rest::{Rest, TableauError};

/// The oldest REST API version the source speaks: signing in with a Personal Access Token
/// needs 3.6 (Tableau 2019.4).
pub const MIN_VERSION: &str = "3.6";

/// The oldest server the source reads, by the REST API version it answers in `serverinfo`:
/// 3.17 is Tableau Server 2022.3 (Tableau Cloud since June 2022), whose Metadata API has the
/// fields the queries ask (a workbook's `projectLuid`). An older server would refuse every
/// query as invalid; this says why before signing in.
pub const MIN_SERVER_VERSION: &str = "3.17";

/// Everything a Tableau extraction needs.
#[derive(Debug)]
pub struct TableauConfig {
    /// Where the server is (host, port, TLS policy, CA).
    pub server: ServerConfig,
    /// The site's content URL (empty: the Default site).
    pub site: String,
    /// Which projects to extract, matched against each project's path (names from the top
    /// level down, joined by `/`): `include-projects` and `exclude-projects`.
    pub projects: crate::filter::Rule,
    /// The REST API version to speak; `None`: the server's own, from `serverinfo`.
    pub api_version: Option<String>,
    /// The Personal Access Token's name.
    pub token_name: SourceSecret,
    /// Its secret.
    pub token_secret: SourceSecret,
    /// Items per REST page (at most 1,000).
    pub rest_page: u32,
    /// Nodes per Metadata API page to start with (halved on the node limit).
    pub metadata_page: u32,
    /// Retries of REST requests.
    pub retry: Retry,
    /// Backoff and the total time budget for the Metadata API's rate and time limits.
    pub metadata_retry: Retry,
}

impl TableauConfig {
    /// The configuration from resolved parameters and the secrets read (`pat-name` and
    /// `pat-secret`, both required: exit 78 when missing).
    pub fn from_parameters(
        descriptor: &connector_descriptor::ValidatedDescriptor,
        parameters: &BTreeMap<String, serde_json::Value>,
        secrets: &mut BTreeMap<String, SourceSecret>,
        ca_bundle: Option<std::path::PathBuf>,
    ) -> Result<Self, ExtractError> {
        let bad = |problem: String| ExtractError::Parameters {
            connector: "tableau".into(),
            problems: vec![problem],
        };
        let server =
            crate::server_config(descriptor, parameters, secrets, ca_bundle).map_err(bad)?;
        let text = |name: &str| {
            parameters
                .get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let number = |name: &str, default: u32| {
            parameters
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(default)
        };
        let secret = |secrets: &mut BTreeMap<String, SourceSecret>, name: &str| {
            secrets.remove(name).ok_or_else(|| ExtractError::Secret {
                name: name.to_owned(),
                path: std::path::PathBuf::from(name),
                hint: " (a Tableau connection needs its Personal Access Token)".into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such secret"),
            })
        };
        let mut problems = Vec::new();
        let projects = crate::filter::Rule::read(parameters, "projects", &mut problems);
        if !problems.is_empty() {
            return Err(ExtractError::Parameters {
                connector: "tableau".into(),
                problems,
            });
        }
        let (retry, metadata_retry) = Self::default_retries();
        Ok(Self {
            site: text("site").unwrap_or_default(),
            projects,
            api_version: text("api-version"),
            token_name: secret(secrets, "pat-name")?,
            token_secret: secret(secrets, "pat-secret")?,
            rest_page: number("rest-page-size", rest::PAGE_MAX),
            metadata_page: number("metadata-page-size", 100),
            retry,
            metadata_retry,
            server,
        })
    }

    /// The retry policies the source ships with: REST as the other sources; the Metadata
    /// API waits rate limits out for up to ten minutes.
    pub fn default_retries() -> (Retry, Retry) {
        (
            Retry::default(),
            Retry {
                attempts: 40,
                first: Duration::from_secs(1),
                max: Duration::from_secs(60),
                budget: Duration::from_secs(600),
            },
        )
    }
}

/// Maps a REST failure to the extraction's error (and so its exit code).
fn rest_error(config: &TableauConfig, error: TableauError) -> ExtractError {
    let target = config.server.target();
    match error {
        TableauError::Login { .. } => ExtractError::Authentication {
            target,
            user: "(the Personal Access Token)".into(),
            source: error.into(),
        },
        TableauError::Transport(error) => error.into_extract(&config.server),
        TableauError::Http { status: 403, .. } => ExtractError::Authentication {
            target,
            user: "(the Personal Access Token)".into(),
            source: error.into(),
        },
        TableauError::Version { .. } => ExtractError::Config {
            target,
            problem: error.to_string(),
        },
        TableauError::Http { .. } | TableauError::Xml(_) => ExtractError::Query {
            target,
            what: "the REST API",
            connection_lost: false,
            source: error.into(),
        },
    }
}

/// Maps a Metadata API failure to the extraction's error.
fn metadata_error(
    config: &TableauConfig,
    what: &'static str,
    error: MetadataError,
) -> ExtractError {
    let target = config.server.target();
    match error {
        MetadataError::Rest(error) => rest_error(config, error),
        MetadataError::Disabled(_) => ExtractError::Config {
            target,
            problem: error.to_string(),
        },
        MetadataError::AccessDenied(_) => ExtractError::Authentication {
            target,
            user: "(the Personal Access Token)".into(),
            source: error.into(),
        },
        MetadataError::Exhausted { .. } => ExtractError::Unreachable {
            target,
            source: error.into(),
        },
        MetadataError::Consumer(inner) => match inner.downcast::<WriteError>() {
            Ok(write) => ExtractError::Write(*write),
            Err(inner) => ExtractError::Query {
                target,
                what,
                connection_lost: false,
                source: inner,
            },
        },
        MetadataError::NodeTooLarge { .. }
        | MetadataError::Query { .. }
        | MetadataError::Protocol { .. } => ExtractError::Query {
            target,
            what,
            connection_lost: false,
            source: error.into(),
        },
    }
}

fn consumer(error: WriteError) -> MetadataError {
    MetadataError::Consumer(Box::new(error))
}

/// A table as the database connectors name it, from the Metadata API's `DatabaseTable`.
fn upstream_table(table: &TableNode) -> Option<UpstreamTable> {
    Some(UpstreamTable {
        id: table.id.clone(),
        connection_type: table
            .connection_type
            .clone()
            .or_else(|| table.database.as_ref()?.connection_type.clone()),
        database: table.database.as_ref().and_then(|d| d.name.clone()),
        schema: table.schema.clone().filter(|s| !s.is_empty()),
        name: table.name.clone()?,
        full_name: table.full_name.clone(),
    })
}

fn upstream_databases(databases: &[DatabaseNode]) -> Vec<UpstreamDatabase> {
    let mut out: Vec<UpstreamDatabase> = databases
        .iter()
        .filter_map(|d| {
            Some(UpstreamDatabase {
                connection_type: d.connection_type.clone(),
                name: d.name.clone()?,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A workbook's web page, as Tableau writes it (the Default site has no `/site/` part), for
/// a workbook the REST API did not list.
fn workbook_page(server_url: &str, site: &str, vizportal_url_id: &str) -> String {
    if site.is_empty() {
        format!("{server_url}/#/workbooks/{vizportal_url_id}")
    } else {
        format!("{server_url}/#/site/{site}/workbooks/{vizportal_url_id}")
    }
}

fn empty_none(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn field_kind(typename: &str) -> FieldKind {
    match typename {
        "ColumnField" => FieldKind::Column,
        "CalculatedField" => FieldKind::Calculated,
        "GroupField" => FieldKind::Group,
        "BinField" => FieldKind::Bin,
        "SetField" | "CombinedSetField" => FieldKind::Set,
        "CombinedField" => FieldKind::Combined,
        "HierarchyField" => FieldKind::Hierarchy,
        "DatasourceField" => FieldKind::Datasource,
        _ => FieldKind::Other,
    }
}

/// What the Metadata API's answers said across the run.
#[derive(Default)]
struct Reports {
    backfill_running: bool,
    /// The smallest page the node limit forced, per connection.
    smallest: BTreeMap<&'static str, u32>,
}

impl Reports {
    fn add(&mut self, connection: &'static str, report: &graphql::Report) {
        self.backfill_running |= report.backfill_running;
        if let Some(n) = report.smallest_page {
            self.smallest.insert(connection, n);
        }
    }
}

/// Writes a record and the lineage edges that follow it.
fn emit<R: crate::record::Record>(
    writer: &std::cell::RefCell<&mut OutputWriter>,
    record: &R,
    edges: &[BiLineage],
) -> Result<(), MetadataError> {
    let mut out = writer.borrow_mut();
    out.write(record).map_err(consumer)?;
    for edge in edges {
        out.write(edge).map_err(consumer)?;
    }
    Ok(())
}

/// What the project filters kept, for the objects that name no project themselves: embedded
/// data sources (by their workbook), fields (by their data source) and custom SQL (by the
/// fields that read it). Held only when a filter is set: ids, not records.
#[derive(Default)]
struct Kept {
    project_ids: HashSet<String>,
    project_names: HashSet<String>,
    workbooks: HashSet<String>,
    datasources: HashSet<String>,
    custom_sql: HashSet<String>,
}

/// Projects by LUID: name and parent, for each workbook's project path.
struct Projects(HashMap<String, (String, Option<String>)>);

impl Projects {
    /// Names from the top-level project down to `luid` (a cycle, which Tableau does not
    /// allow, stops the walk).
    fn path(&self, luid: &str) -> Vec<String> {
        let mut path = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(luid.to_owned());
        while let Some(current) = next {
            if !seen.insert(current.clone()) {
                break;
            }
            let Some((name, parent)) = self.0.get(&current) else {
                break;
            };
            path.push(name.clone());
            next = parent.clone();
        }
        path.reverse();
        path
    }
}

/// Extracts the site: projects and workbooks' URLs by REST, everything else by the Metadata
/// API, each page written as it arrives.
pub async fn extract(
    config: TableauConfig,
    writer: &mut OutputWriter,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    let http = crate::http::client(&config.server)?;
    let scheme = if config.server.ssl_mode == crate::tls::SslMode::Disable {
        "http"
    } else {
        "https"
    };
    let server_url = format!("{scheme}://{}:{}", config.server.host, config.server.port);
    let info = rest::server_info(&http, &server_url, &config.retry)
        .await
        .map_err(|e| rest_error(&config, e))?;
    let server_version = info.rest_api_version.text.trim().to_owned();
    if rest::version_number(&server_version) < rest::version_number(MIN_SERVER_VERSION) {
        return Err(rest_error(
            &config,
            TableauError::Version {
                what: "the server answers",
                found: server_version,
                needed: MIN_SERVER_VERSION,
                why: "Tableau Server 2022.3 or Tableau Cloud, whose Metadata API has the fields read",
            },
        ));
    }
    let version = config.api_version.clone().unwrap_or(server_version);
    if rest::version_number(&version) < rest::version_number(MIN_VERSION) {
        return Err(rest_error(
            &config,
            TableauError::Version {
                what: "`api-version` asks for",
                found: version,
                needed: MIN_VERSION,
                why: "signing in with a Personal Access Token",
            },
        ));
    }
    let rest = Rest::new(
        rest::Connection {
            server: server_url.clone(),
            site: config.site.clone(),
            token_name: config.token_name.expose().to_owned(),
            token_secret: config.token_secret.clone(),
            http,
            retry: config.retry,
        },
        version,
    );
    let result = extract_site(&config, &rest, &server_url, info, writer, progress).await;
    rest.sign_out().await;
    result
}

async fn extract_site(
    config: &TableauConfig,
    rest: &Rest,
    server_url: &str,
    info: xml::ServerInfo,
    writer: &mut OutputWriter,
    progress: &dyn Progress,
) -> Result<(), ExtractError> {
    let site_name = config.site.clone();
    let site = &site_name;
    progress.database(if site.is_empty() {
        "(default site)"
    } else {
        site
    });
    let fail_rest = |e| rest_error(config, e);
    let signed = rest.site().await.map_err(fail_rest)?;
    writer.write(&Site {
        content_url: site.clone(),
        id: signed.id.clone(),
        name: signed.name.clone(),
        server_url: server_url.to_owned(),
        product_version: info
            .product_version
            .map(|p| p.text)
            .filter(|t| !t.is_empty()),
    })?;

    // Projects: few, and a workbook's path needs all of them.
    let mut listed = Vec::new();
    rest.each::<xml::ProjectsResponse>("projects", "projects", config.rest_page, |p| {
        listed.push(p);
        Ok(())
    })
    .await
    .map_err(fail_rest)?;
    let projects = Projects(
        listed
            .iter()
            .map(|p| (p.id.clone(), (p.name.clone(), p.parent_project_id.clone())))
            .collect(),
    );
    let mut records: Vec<Project> = listed
        .into_iter()
        .map(|p| Project {
            site: site.clone(),
            path: projects.path(&p.id),
            id: p.id,
            name: p.name,
            parent_id: empty_none(p.parent_project_id),
            description: empty_none(p.description),
            owner_id: p.owner.map(|o| o.id),
        })
        .collect();
    records.sort_by(|a, b| (&a.path, &a.id).cmp(&(&b.path, &b.id)));
    let mut kept = config.projects.is_set().then(Kept::default);
    if let Some(kept) = &mut kept {
        records.retain(|p| config.projects.allows(&p.path.join("/")));
        kept.project_ids = records.iter().map(|p| p.id.clone()).collect();
        kept.project_names = records.iter().map(|p| p.name.clone()).collect();
        tracing::info!(
            projects = records.len(),
            of = projects.0.len(),
            "the project filters keep these projects"
        );
    }
    for project in &records {
        writer.write(project)?;
    }
    progress.stage(site, EntityKind::Project);

    // Workbooks' URLs, which only the REST API has (the Metadata API has neither the content
    // URL nor the web page's): a few REST pages, one small entry per workbook.
    let mut urls: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    rest.each::<xml::WorkbooksResponse>("workbooks", "workbooks", config.rest_page, |w| {
        let kept_project = match (&kept, &w.project) {
            (None, _) => true,
            (Some(kept), Some(project)) => kept.project_ids.contains(&project.id),
            (Some(_), None) => false,
        };
        if kept_project {
            urls.insert(w.id, (empty_none(w.content_url), empty_none(w.webpage_url)));
        }
        Ok(())
    })
    .await
    .map_err(fail_rest)?;

    let mut metadata = Metadata::new(rest, config.metadata_retry);
    metadata.audit = writer.audit();
    let mut reports = Reports::default();
    let writer = std::cell::RefCell::new(writer);

    // Workbooks, their sheets and dashboards.
    let report = metadata
        .each(
            queries::WORKBOOKS,
            config.metadata_page,
            |w: queries::WorkbookNode| {
                if let Some(kept) = &mut kept {
                    // By LUID; a server before 2022.3 gives only the project's name.
                    let in_kept = match (&w.project_luid, &w.project_name) {
                        (Some(luid), _) if !luid.is_empty() => kept.project_ids.contains(luid),
                        (_, Some(name)) => kept.project_names.contains(name),
                        _ => false,
                    };
                    if !in_kept {
                        return Ok(());
                    }
                    kept.workbooks.insert(w.luid.clone());
                }
                let mut sheets: Vec<Sheet> = w
                    .sheets
                    .into_iter()
                    .map(|s| Sheet {
                        site: site.clone(),
                        id: s.id,
                        luid: empty_none(s.luid),
                        workbook_id: w.luid.clone(),
                        name: s.name,
                        path: empty_none(s.path),
                    })
                    .collect();
                sheets.sort_by(|a, b| a.id.cmp(&b.id));
                let mut dashboards: Vec<Dashboard> = w
                    .dashboards
                    .into_iter()
                    .map(|d| {
                        let mut sheet_ids: Vec<String> =
                            d.sheets.into_iter().map(|s| s.id).collect();
                        sheet_ids.sort();
                        Dashboard {
                            site: site.clone(),
                            id: d.id,
                            luid: empty_none(d.luid),
                            workbook_id: w.luid.clone(),
                            name: d.name,
                            path: empty_none(d.path),
                            sheet_ids,
                        }
                    })
                    .collect();
                dashboards.sort_by(|a, b| a.id.cmp(&b.id));
                let mut tags: Vec<String> = w.tags.into_iter().map(|t| t.name).collect();
                tags.sort();
                let owner = w.owner.unwrap_or_default();
                let (content_url, web) = urls.remove(&w.luid).unwrap_or_default();
                let workbook = Workbook {
                    site: site.clone(),
                    project_path: w
                        .project_luid
                        .as_deref()
                        .map(|p| projects.path(p))
                        .unwrap_or_default(),
                    project_id: empty_none(w.project_luid),
                    webpage_url: web.or_else(|| {
                        let n = w.vizportal_url_id.as_deref()?;
                        Some(workbook_page(server_url, site, n))
                    }),
                    id: w.luid,
                    name: w.name,
                    description: empty_none(w.description),
                    owner_id: empty_none(owner.luid),
                    owner: empty_none(owner.username),
                    content_url,
                    created_at: w.created_at,
                    updated_at: w.updated_at,
                    tags,
                };
                emit(&writer, &workbook, &[])?;
                let mut out = writer.borrow_mut();
                for sheet in &sheets {
                    out.write(sheet).map_err(consumer)?;
                }
                for dashboard in &dashboards {
                    out.write(dashboard).map_err(consumer)?;
                }
                Ok(())
            },
        )
        .await
        .map_err(|e| metadata_error(config, "workbooks", e))?;
    reports.add("workbooks", &report);
    progress.stage(site, EntityKind::Workbook);

    // Data sources, published and embedded, and the tables and sources they read.
    for (query, kind) in [
        (queries::PUBLISHED_DATASOURCES, DatasourceKind::Published),
        (queries::EMBEDDED_DATASOURCES, DatasourceKind::Embedded),
    ] {
        let report = metadata
            .each(query, config.metadata_page, |d: queries::DatasourceNode| {
                if let Some(kept) = &mut kept {
                    // A published source by its project's name (the Metadata API gives no
                    // project LUID for one), an embedded one by its workbook.
                    let in_kept = match (&d.workbook, &d.project_name) {
                        (Some(workbook), _) => workbook
                            .luid
                            .as_ref()
                            .is_some_and(|l| kept.workbooks.contains(l)),
                        (None, Some(name)) => kept.project_names.contains(name),
                        (None, None) => false,
                    };
                    if !in_kept {
                        return Ok(());
                    }
                    kept.datasources.insert(d.id.clone());
                }
                let mut edges: Vec<BiLineage> = d
                    .upstream_tables
                    .iter()
                    .filter_map(upstream_table)
                    .map(|table| {
                        BiLineage::to_table(
                            site,
                            BiLineageKind::DatasourceToTable,
                            &d.id,
                            table,
                            None,
                        )
                    })
                    .collect();
                edges.extend(d.upstream_datasources.iter().map(|u| {
                    BiLineage::to_record(site, BiLineageKind::DatasourceToDatasource, &d.id, &u.id)
                }));
                let record = Datasource {
                    site: site.clone(),
                    luid: empty_none(d.luid),
                    kind,
                    name: d.name,
                    description: empty_none(d.description),
                    workbook_id: d.workbook.and_then(|w| empty_none(w.luid)),
                    project_name: empty_none(d.project_name),
                    owner: d.owner.and_then(|o| empty_none(o.username)),
                    has_extracts: d.has_extracts,
                    certified: d.is_certified,
                    upstream_databases: upstream_databases(&d.upstream_databases),
                    id: d.id,
                };
                emit(&writer, &record, &edges)
            })
            .await
            .map_err(|e| metadata_error(config, "data sources", e))?;
        reports.add(query.connection, &report);
    }
    progress.stage(site, EntityKind::Datasource);

    // Fields, and what they read and where they are shown. A data source reading through
    // custom SQL is told once per pair.
    let mut through_sql: HashSet<(String, String)> = HashSet::new();
    let report = metadata
        .each(
            queries::FIELDS,
            config.metadata_page,
            |f: queries::FieldNode| {
                let datasource_id = f
                    .datasource
                    .as_ref()
                    .map(|d| d.id.clone())
                    .unwrap_or_default();
                if let Some(kept) = &kept
                    && !kept.datasources.contains(&datasource_id)
                {
                    return Ok(());
                }
                let mut edges = Vec::new();
                for column in &f.upstream_columns {
                    let Some(table) = &column.table else { continue };
                    if table.typename.as_deref() == Some("CustomSQLTable") {
                        if let Some(kept) = &mut kept {
                            kept.custom_sql.insert(table.id.clone());
                        }
                        if through_sql.insert((datasource_id.clone(), table.id.clone())) {
                            edges.push(BiLineage::to_record(
                                site,
                                BiLineageKind::DatasourceToCustomSql,
                                &datasource_id,
                                &table.id,
                            ));
                        }
                        continue;
                    }
                    if let Some(upstream) = upstream_table(table) {
                        edges.push(BiLineage::to_table(
                            site,
                            BiLineageKind::FieldToColumn,
                            &f.id,
                            upstream,
                            Some(column.name.clone()),
                        ));
                    }
                }
                for upstream in &f.upstream_fields {
                    edges.push(BiLineage::to_record(
                        site,
                        BiLineageKind::FieldToField,
                        &f.id,
                        &upstream.id,
                    ));
                }
                for sheet in &f.sheets {
                    edges.push(BiLineage::to_record(
                        site,
                        BiLineageKind::SheetToField,
                        &sheet.id,
                        &f.id,
                    ));
                }
                let record = Field {
                    site: site.clone(),
                    kind: field_kind(&f.typename),
                    id: f.id,
                    datasource_id,
                    name: f.name,
                    data_type: f.data_type,
                    role: f.role,
                    formula: f.formula,
                    description: empty_none(f.description),
                    hidden: f.is_hidden,
                    folder: empty_none(f.folder_name),
                };
                emit(&writer, &record, &edges)
            },
        )
        .await
        .map_err(|e| metadata_error(config, "fields", e))?;
    reports.add("fields", &report);
    progress.stage(site, EntityKind::Field);

    // Custom SQL and the tables it reads.
    let report = metadata
        .each(
            queries::CUSTOM_SQL,
            config.metadata_page,
            |c: queries::CustomSqlNode| {
                if let Some(kept) = &kept
                    && !kept.custom_sql.contains(&c.id)
                {
                    return Ok(());
                }
                let edges: Vec<BiLineage> = c
                    .tables
                    .iter()
                    .filter_map(upstream_table)
                    .map(|table| {
                        BiLineage::to_table(
                            site,
                            BiLineageKind::CustomSqlToTable,
                            &c.id,
                            table,
                            None,
                        )
                    })
                    .collect();
                let record = CustomSql {
                    site: site.clone(),
                    name: c.name,
                    query: c.query.unwrap_or_default(),
                    connection_type: c.connection_type,
                    database: c.database.and_then(|d| d.name),
                    id: c.id,
                };
                emit(&writer, &record, &edges)
            },
        )
        .await
        .map_err(|e| metadata_error(config, "custom SQL", e))?;
    reports.add("customSQLTablesConnection", &report);
    progress.stage(site, EntityKind::CustomSql);

    let writer = writer.into_inner();
    if reports.backfill_running {
        writer.incomplete(
            "Tableau's Metadata API is still building its store (BACKFILL_RUNNING): some \
             objects and lineage may be missing",
        );
    }
    for (connection, n) in reports.smallest {
        tracing::info!(
            connection,
            page = n,
            "the node limit made pages smaller; a smaller starting page size would save requests"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_workbook_page_on_the_default_site_has_no_site_part() {
        assert_eq!(
            super::workbook_page("https://t.example.com:443", "", "42"),
            "https://t.example.com:443/#/workbooks/42"
        );
        assert_eq!(
            super::workbook_page("https://t.example.com:443", "finance", "42"),
            "https://t.example.com:443/#/site/finance/workbooks/42"
        );
    }
}
