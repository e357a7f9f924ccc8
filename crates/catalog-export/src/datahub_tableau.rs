//! DataHub proposals of a Tableau site, named as DataHub's own Tableau source names them
//! (`datahub.ingestion.source.tableau`, default configuration):
//!
//! - projects: containers keyed `{platform: tableau, project_id: <LUID>}`, sub-type `Project`,
//!   nested as the projects are;
//! - workbooks: containers keyed `{platform: tableau, workbook_id: <id>}`, sub-type
//!   `Workbook`, in their project;
//! - sheets: charts `urn:li:chart:(tableau,<id>)`; dashboards
//!   `urn:li:dashboard:(tableau,<id>)` listing their sheets' charts; both in their workbook;
//! - data sources: datasets `urn:li:dataset:(urn:li:dataPlatform:tableau,<id>,PROD)` with
//!   their fields as `schemaMetadata`, sub-type `Embedded Data Source` or `Published Data
//!   Source`, and `upstreamLineage` to the database tables they read (the database's own URN,
//!   as the database's export names it) and to published data sources, with the fields'
//!   column lineage as `fineGrainedLineages`.
//!
//! Outpost's records carry LUIDs for what Tableau's REST API knows (workbooks, published data
//! sources), where DataHub's source keys those two by the Metadata API's id: their URNs
//! differ from a DataHub run's (README, *Tableau*).
//!
//! Held in memory: the projects, each workbook's project, each data source's kind, and the
//! fields (id, data source, name, type, description) until their data source's schema is
//! written, since fields are not grouped by data source in the run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use outpost_core::output::{
    BiLineage, BiLineageKind, Dashboard, Datasource, DatasourceKind, EntityKind, Field, Manifest,
    Project, Sheet, UpstreamTable, Workbook,
};
use serde_json::{Value, json};

use crate::datahub::{ContainerFacts, Proposals, TypeUnion, container_urn};
use crate::{ExportError, Lines, Options, Summary};

const PLATFORM: &str = "urn:li:dataPlatform:tableau";

/// Where a Tableau asset sits: its containers, outermost first.
struct Places {
    instance: Option<String>,
    env: String,
    /// Project LUID → parent LUID.
    parents: HashMap<String, Option<String>>,
    /// Project name → LUID, for names that are unique (published data sources name their
    /// project only by name).
    by_name: HashMap<String, Option<String>>,
    /// Workbook id → project LUID.
    workbooks: HashMap<String, Option<String>>,
}

impl Places {
    fn key(&self, field: &'static str, id: &str) -> Vec<(&'static str, String)> {
        let mut key = vec![("platform", "tableau".to_owned()), (field, id.to_owned())];
        if let Some(i) = &self.instance {
            key.push(("instance", i.clone()));
        }
        key
    }

    fn project(&self, luid: &str) -> String {
        container_urn(self.key("project_id", luid))
    }

    fn workbook(&self, id: &str) -> String {
        container_urn(self.key("workbook_id", id))
    }

    /// The containers of a project, outermost first, itself included.
    fn project_path(&self, luid: &str) -> Vec<String> {
        let mut path = Vec::new();
        let mut next = Some(luid.to_owned());
        // A cycle in a broken answer must not loop forever.
        while let Some(id) = next.take().filter(|_| path.len() < 64) {
            path.push(self.project(&id));
            next = self.parents.get(&id).cloned().flatten();
        }
        path.reverse();
        path
    }

    /// The containers of a workbook, outermost first, itself included.
    fn workbook_path(&self, id: &str) -> Vec<String> {
        let mut path = match self.workbooks.get(id).cloned().flatten() {
            Some(project) => self.project_path(&project),
            None => Vec::new(),
        };
        path.push(self.workbook(id));
        path
    }

    fn dataset_urn(&self, id: &str) -> String {
        let name = match &self.instance {
            Some(i) => format!("{i}.{id}"),
            None => id.to_owned(),
        };
        format!("urn:li:dataset:({PLATFORM},{name},{})", self.env)
    }

    fn instance_aspect(&self) -> Value {
        match &self.instance {
            Some(i) => {
                json!({"platform": PLATFORM, "instance": format!("urn:li:dataPlatformInstance:({PLATFORM},{i})")})
            }
            None => json!({"platform": PLATFORM}),
        }
    }

    /// A project's or workbook's proposals, inside `path` (outermost first).
    fn container(
        &self,
        p: &mut Proposals,
        urn: &str,
        properties: Value,
        sub_type: &'static str,
        path: &[String],
    ) -> Result<(), ExportError> {
        let facts = ContainerFacts {
            properties,
            instance: self.instance_aspect(),
            sub_type,
            browse: self.browse(path),
        };
        p.container(urn, &facts, path.last().map(String::as_str))
    }

    fn browse(&self, path: &[String]) -> Value {
        let path: Vec<Value> = path.iter().map(|c| json!({"id": c, "urn": c})).collect();
        json!({ "path": path })
    }
}

/// The DataHub platform of a Tableau connection type, as DataHub's Tableau source maps it
/// (`get_platform`).
pub(crate) fn upstream_platform(connection_type: &str) -> String {
    match connection_type {
        "textscan" | "textclean" | "excel-direct" | "excel" | "csv" => "external".into(),
        "hadoophive" | "hive" | "hortonworkshadoophive" | "maprhadoophive" | "awshadoophive" => {
            "hive".into()
        }
        "mysql_odbc" | "mysql" => "mysql".into(),
        "webdata-direct:oracle-eloqua" | "oracle" => "oracle".into(),
        "tbio" | "teradata" => "teradata".into(),
        "sqlserver" => "mssql".into(),
        "googlebigquery" => "bigquery".into(),
        other => other.strip_suffix("_jdbc").unwrap_or(other).into(),
    }
}

/// Platforms where Tableau's database names what the schema does: `schema.table`.
const TWO_TIER_DB_STRIP: &[&str] = &["athena", "hive", "mysql", "teradata"];
/// Platforms whose names keep two parts.
const TWO_TIER: &[&str] = &["athena", "hive", "mysql", "teradata", "clickhouse"];

/// The URN of a database table a data source reads, as DataHub's Tableau source builds it
/// (`TableauUpstreamReference`, `get_fully_qualified_table_name`): Tableau's full name
/// overriding the parts it gives, lower-cased, brackets, quotes and backticks stripped, the
/// last three parts kept (two on platforms without databases, whose database is dropped).
pub fn upstream_table_urn(table: &UpstreamTable, env: &str) -> String {
    let platform = upstream_platform(table.connection_type.as_deref().unwrap_or(""));
    let mut database = table.database.clone().unwrap_or_default();
    let mut schema = table.schema.clone().unwrap_or_default();
    let mut name = table.name.clone();
    if let Some(full) = &table.full_name {
        let parts: Vec<String> = full
            .replace(['[', ']'], "")
            .split('.')
            .map(str::to_owned)
            .collect();
        match parts.as_slice() {
            [d, s, t] => (database, schema, name) = (d.clone(), s.clone(), t.clone()),
            [s, t] => (schema, name) = (s.clone(), t.clone()),
            _ => {}
        }
        // DataHub's rule for Redshift: the schema already inside the table's name.
        if !schema.is_empty() && *full == table.name && table.name.contains(&schema) {
            schema.clear();
        }
    }
    if TWO_TIER_DB_STRIP.contains(&platform.as_str()) {
        database.clear();
    }
    let mut qualified = String::new();
    for part in [&database, &schema] {
        if !part.is_empty() {
            qualified.push_str(part);
            qualified.push('.');
        }
    }
    qualified.push_str(&name.replace(['[', ']'], ""));
    let qualified = qualified
        .to_lowercase()
        .replace("\\\"", "")
        .replace(['"', '\\', '`'], "");
    let keep = if TWO_TIER.contains(&platform.as_str()) {
        2
    } else {
        3
    };
    let tokens: Vec<&str> = qualified.split('.').collect();
    let name = tokens[tokens.len().saturating_sub(keep)..].join(".");
    format!("urn:li:dataset:(urn:li:dataPlatform:{platform},{name},{env})")
}

/// DataHub's type class of a Tableau field's data type.
fn field_type_class(data_type: Option<&str>) -> &'static str {
    match data_type.unwrap_or("").to_uppercase().as_str() {
        "INTEGER" | "REAL" => "NumberType",
        "STRING" => "StringType",
        "DATETIME" => "TimeType",
        "DATE" => "DateType",
        "BOOLEAN" => "BooleanType",
        "TUPLE" | "TABLE" => "ArrayType",
        _ => "NullType",
    }
}

/// What is kept of a field until its data source's schema is written.
struct FieldFacts {
    datasource: String,
    name: String,
    data_type: Option<String>,
    description: Option<String>,
}

/// A data source's lineage, gathered from the edges.
#[derive(Default)]
struct Upstreams {
    datasets: BTreeSet<String>,
    /// (downstream field URN, upstream column URN).
    columns: BTreeSet<(String, String)>,
}

/// Writes a Tableau run as DataHub proposals.
pub(crate) fn export(
    manifest: &Manifest,
    records: &mut dyn Lines,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ExportError> {
    let env = options
        .env
        .clone()
        .unwrap_or_else(|| crate::datahub::DEFAULT_ENV.into());
    let mut p = Proposals::for_run(manifest, out);
    let mut places = Places {
        instance: options.platform_instance.clone(),
        env: env.clone(),
        parents: HashMap::new(),
        by_name: HashMap::new(),
        workbooks: HashMap::new(),
    };
    let mut projects: Vec<Project> = Vec::new();
    records.each(EntityKind::Project, &mut |project: Project| {
        places
            .parents
            .insert(project.id.clone(), project.parent_id.clone());
        places
            .by_name
            .entry(project.name.clone())
            .and_modify(|v| *v = None)
            .or_insert_with(|| Some(project.id.clone()));
        projects.push(project);
        Ok(())
    })?;
    let unknown = json!({"time": 0, "actor": "urn:li:corpuser:unknown"});
    for project in &projects {
        let urn = places.project(&project.id);
        let mut properties = json!({
            "customProperties": {"platform": "tableau", "project_id": project.id},
            "name": project.name,
        });
        if let Some(d) = project.description.as_deref().filter(|d| !d.is_empty()) {
            properties["description"] = json!(d);
        }
        let mut path = places.project_path(&project.id);
        path.pop();
        places.container(&mut p, &urn, properties, "Project", &path)?;
    }
    drop(projects);

    records.each(EntityKind::Workbook, &mut |w: Workbook| {
        places.workbooks.insert(w.id.clone(), w.project_id.clone());
        let urn = places.workbook(&w.id);
        let mut properties = json!({
            "customProperties": {"platform": "tableau", "workbook_id": w.id},
            "name": w.name,
        });
        if let Some(d) = w.description.as_deref().filter(|d| !d.is_empty()) {
            properties["description"] = json!(d);
        }
        if let Some(u) = &w.webpage_url {
            properties["externalUrl"] = json!(u);
        }
        let mut path = places.workbook_path(&w.id);
        path.pop();
        places.container(&mut p, &urn, properties, "Workbook", &path)
    })?;

    let chart_urn = |id: &str| format!("urn:li:chart:(tableau,{id})");
    let luid_properties = |luid: &Option<String>| match luid {
        Some(l) if !l.is_empty() => json!({"luid": l}),
        _ => json!({}),
    };
    records.each(EntityKind::Sheet, &mut |s: Sheet| {
        let urn = chart_urn(&s.id);
        let info = json!({
            "customProperties": luid_properties(&s.luid),
            "title": s.name,
            "description": "",
            "lastModified": {"created": unknown, "lastModified": unknown},
        });
        in_workbook(
            &mut p,
            &places,
            "chart",
            &urn,
            &s.workbook_id,
            "chartInfo",
            info,
        )
    })?;
    records.each(EntityKind::Dashboard, &mut |d: Dashboard| {
        let urn = format!("urn:li:dashboard:(tableau,{})", d.id);
        let charts: Vec<String> = d.sheet_ids.iter().map(|id| chart_urn(id)).collect();
        let info = json!({
            "customProperties": luid_properties(&d.luid),
            "title": d.name,
            "description": "",
            "charts": charts,
            "lastModified": {"created": unknown, "lastModified": unknown},
        });
        in_workbook(
            &mut p,
            &places,
            "dashboard",
            &urn,
            &d.workbook_id,
            "dashboardInfo",
            info,
        )
    })?;

    let mut datasources: Vec<String> = Vec::new();
    records.each(EntityKind::Datasource, &mut |d: Datasource| {
        let urn = places.dataset_urn(&d.id);
        let mut custom = serde_json::Map::new();
        if let Some(l) = d.luid.as_deref().filter(|l| !l.is_empty()) {
            custom.insert("luid".into(), json!(l));
        }
        if d.has_extracts == Some(true) {
            custom.insert("hasExtracts".into(), json!("True"));
        }
        let mut properties = json!({"customProperties": custom, "name": d.name, "tags": []});
        if let Some(desc) = d.description.as_deref().filter(|d| !d.is_empty()) {
            properties["description"] = json!(desc);
        }
        let (sub_type, path) = match d.kind {
            DatasourceKind::Embedded => (
                "Embedded Data Source",
                d.workbook_id
                    .as_deref()
                    .map(|w| places.workbook_path(w))
                    .unwrap_or_default(),
            ),
            DatasourceKind::Published => (
                "Published Data Source",
                d.project_name
                    .as_ref()
                    .and_then(|n| places.by_name.get(n).cloned().flatten())
                    .map(|luid| places.project_path(&luid))
                    .unwrap_or_default(),
            ),
        };
        p.emit("dataset", &urn, "status", json!({"removed": false}))?;
        p.emit("dataset", &urn, "datasetProperties", properties)?;
        p.emit(
            "dataset",
            &urn,
            "dataPlatformInstance",
            places.instance_aspect(),
        )?;
        p.emit(
            "dataset",
            &urn,
            "subTypes",
            json!({"typeNames": [sub_type]}),
        )?;
        if let Some(container) = path.last() {
            p.emit(
                "dataset",
                &urn,
                "container",
                json!({"container": container}),
            )?;
        }
        p.emit("dataset", &urn, "browsePathsV2", places.browse(&path))?;
        datasources.push(d.id);
        Ok(())
    })?;

    // Fields are in the Metadata API's order, not grouped by data source: they are held
    // (what a schema needs of them) and written per data source.
    let mut fields: HashMap<String, FieldFacts> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    records.each(EntityKind::Field, &mut |f: Field| {
        order.push(f.id.clone());
        fields.insert(
            f.id,
            FieldFacts {
                datasource: f.datasource_id,
                name: f.name,
                data_type: f.data_type,
                description: f.description,
            },
        );
        Ok(())
    })?;
    let mut by_datasource: BTreeMap<&str, Vec<&FieldFacts>> = BTreeMap::new();
    for id in &order {
        let f = &fields[id];
        by_datasource.entry(&f.datasource).or_default().push(f);
    }
    for id in &datasources {
        let Some(list) = by_datasource.get(id.as_str()) else {
            continue;
        };
        let schema_fields: Vec<crate::datahub::Field> = list
            .iter()
            .map(|f| crate::datahub::Field {
                field_path: std::borrow::Cow::Borrowed(&f.name),
                nullable: false,
                description: f.description.as_deref().filter(|d| !d.is_empty()),
                type_: TypeUnion(field_type_class(f.data_type.as_deref())),
                native_data_type: f.data_type.as_deref().unwrap_or("UNKNOWN"),
                recursive: false,
                is_part_of_key: false,
            })
            .collect();
        let aspect = json!({
            "schemaName": id,
            "platform": PLATFORM,
            "version": 0,
            "created": unknown,
            "lastModified": unknown,
            "hash": "",
            "platformSchema": {"com.linkedin.schema.OtherSchema": {"rawSchema": ""}},
            "fields": schema_fields,
        });
        p.emit("dataset", &places.dataset_urn(id), "schemaMetadata", aspect)?;
    }

    let mut upstreams: BTreeMap<String, Upstreams> = BTreeMap::new();
    records.each(EntityKind::BiLineage, &mut |edge: BiLineage| {
        match (edge.kind, &edge.to_id, &edge.table, &edge.column) {
            (BiLineageKind::DatasourceToTable, _, Some(table), _) => {
                upstreams
                    .entry(edge.from_id)
                    .or_default()
                    .datasets
                    .insert(upstream_table_urn(table, &env));
            }
            (BiLineageKind::DatasourceToDatasource, Some(to), _, _) => {
                upstreams
                    .entry(edge.from_id)
                    .or_default()
                    .datasets
                    .insert(places.dataset_urn(to));
            }
            (BiLineageKind::FieldToColumn, _, Some(table), Some(column)) => {
                if let Some(field) = fields.get(&edge.from_id) {
                    let downstream = format!(
                        "urn:li:schemaField:({},{})",
                        places.dataset_urn(&field.datasource),
                        field.name
                    );
                    let upstream = format!(
                        "urn:li:schemaField:({},{column})",
                        upstream_table_urn(table, &env)
                    );
                    upstreams
                        .entry(field.datasource.clone())
                        .or_default()
                        .columns
                        .insert((downstream, upstream));
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    for (datasource, up) in &upstreams {
        let list: Vec<Value> = up
            .datasets
            .iter()
            .map(|d| json!({"auditStamp": unknown, "dataset": d, "type": "TRANSFORMED"}))
            .collect();
        let fine: Vec<Value> = up
            .columns
            .iter()
            .map(|(down, upstream)| {
                json!({
                    "upstreamType": "FIELD_SET",
                    "upstreams": [upstream],
                    "downstreamType": "FIELD",
                    "downstreams": [down],
                    "confidenceScore": 1.0,
                })
            })
            .collect();
        let mut aspect = json!({ "upstreams": list });
        if !fine.is_empty() {
            aspect["fineGrainedLineages"] = json!(fine);
        }
        p.emit(
            "dataset",
            &places.dataset_urn(datasource),
            "upstreamLineage",
            aspect,
        )?;
    }
    Ok(Summary {
        written: p.finish()?,
    })
}

/// A chart's or dashboard's proposals: its info, in its workbook.
fn in_workbook(
    p: &mut Proposals,
    places: &Places,
    entity: &str,
    urn: &str,
    workbook: &str,
    info_aspect: &str,
    info: Value,
) -> Result<(), ExportError> {
    let path = places.workbook_path(workbook);
    p.emit(entity, urn, info_aspect, info)?;
    p.emit(entity, urn, "status", json!({"removed": false}))?;
    p.emit(
        entity,
        urn,
        "dataPlatformInstance",
        places.instance_aspect(),
    )?;
    if let Some(container) = path.last() {
        p.emit(entity, urn, "container", json!({"container": container}))?;
    }
    p.emit(entity, urn, "browsePathsV2", places.browse(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        Places {
            instance: None,
            env: "PROD".into(),
            parents: HashMap::new(),
            by_name: HashMap::new(),
            workbooks: HashMap::new(),
        }
    }

    /// The project container URN DataHub 1.7's Tableau source computes for this key
    /// (`ProjectKey(platform="tableau", project_id="abc-123").as_urn()`).
    #[test]
    fn project_containers_are_datahubs() {
        assert_eq!(
            places().project("abc-123"),
            "urn:li:container:af0d0c1e3ca48528a226cec842e0c2db"
        );
    }

    #[test]
    fn upstream_tables_are_named_as_datahubs_tableau_source_names_them() {
        let table =
            |connection: &str, database: &str, schema: &str, name: &str, full: Option<&str>| {
                UpstreamTable {
                    id: "t".into(),
                    connection_type: Some(connection.into()),
                    database: Some(database.into()),
                    schema: Some(schema.into()),
                    name: name.into(),
                    full_name: full.map(str::to_owned),
                }
            };
        assert_eq!(
            upstream_table_urn(
                &table(
                    "postgres",
                    "Shop",
                    "public",
                    "Orders",
                    Some("[public].[Orders]")
                ),
                "PROD"
            ),
            "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.orders,PROD)"
        );
        assert_eq!(
            upstream_table_urn(&table("sqlserver", "db", "dbo", "t", None), "PROD"),
            "urn:li:dataset:(urn:li:dataPlatform:mssql,db.dbo.t,PROD)"
        );
        assert_eq!(
            upstream_table_urn(&table("mysql", "host", "shop", "orders", None), "PROD"),
            "urn:li:dataset:(urn:li:dataPlatform:mysql,shop.orders,PROD)"
        );
        // DataHub drops the database on two-tier platforms, keeps the last tokens of names
        // with dots, takes `_jdbc` off a connection type, and drops a schema Redshift's
        // table name already holds. Every URN here is what DataHub 1.7.0.17's own
        // `TableauUpstreamReference.create(…).make_dataset_urn("PROD", None)` gives.
        assert_eq!(
            upstream_table_urn(&table("athena", "cat", "db", "t", None), "PROD"),
            "urn:li:dataset:(urn:li:dataPlatform:athena,db.t,PROD)"
        );
        assert_eq!(
            upstream_table_urn(&table("clickhouse", "db", "", "t", None), "PROD"),
            "urn:li:dataset:(urn:li:dataPlatform:clickhouse,db.t,PROD)"
        );
        assert_eq!(
            upstream_table_urn(&table("trino_jdbc", "c", "s", "a.b", None), "PROD"),
            "urn:li:dataset:(urn:li:dataPlatform:trino,s.a.b,PROD)"
        );
        assert_eq!(
            upstream_table_urn(
                &table("redshift", "dev", "public", "public.t", Some("public.t")),
                "PROD"
            ),
            "urn:li:dataset:(urn:li:dataPlatform:redshift,dev.t,PROD)"
        );
    }
}
