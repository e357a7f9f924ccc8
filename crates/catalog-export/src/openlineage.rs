//! OpenLineage: one `DatasetEvent` per table or view (OpenLineage 2-0-2), as JSON Lines,
//! with the `schema`, `documentation` and `datasetType` facets.
//!
//! Datasets are named as OpenLineage's naming conventions say: namespace
//! `<scheme>://<host>:<port>` (given with [`Options::namespace`]), name
//! `<database>.<schema>.<table>` (`<database>.<table>` on MySQL, whose database is Outpost's
//! schema). The spec and facet schemas the events follow are vendored in `openlineage-spec/`
//! and every event is validated against them by the tests.
//!
//! View lineage is not written here: a `DatasetEvent` has no facet for table-level lineage
//! (`columnLineage` names columns, which the catalogs' dependency records do not), and an
//! edge guessed from equal column names would be a claim the source never made.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use outpost_core::output::{
    BiLineage, BiLineageKind, Column, Datasource, EntityKind, Field, Manifest, Table, TableKind,
    UpstreamTable,
};
use serde_json::{Value, json};

use crate::{ExportError, Lines, Options, Platform, Summary};

/// The OpenLineage spec the events follow (`openlineage-spec/OpenLineage.json`).
pub const SCHEMA_URL: &str =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent";
/// The facets' schema URLs, as their vendored `$id`s give them.
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const DOCUMENTATION_FACET: &str = "https://openlineage.io/spec/facets/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet";
const COLUMN_LINEAGE_FACET: &str = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
const DATASET_TYPE_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json#/$defs/DatasetTypeDatasetFacet";

/// The producer URI every event and facet carries: Outpost, at the version that wrote the
/// run.
pub fn producer(outpost_version: &str) -> String {
    format!("https://github.com/outpost-agent/outpost/tree/v{outpost_version}")
}

/// A namespace given must not be empty.
pub(crate) fn check_namespace(options: &Options) -> Result<(), ExportError> {
    if options.namespace.as_deref() == Some("") {
        return Err(ExportError::Option(
            "the OpenLineage namespace may not be empty".into(),
        ));
    }
    Ok(())
}

/// The dataset namespace: the one given, or `<platform>://<connection>`.
pub fn namespace(
    manifest: &Manifest,
    platform: Platform,
    options: &Options,
) -> Result<String, ExportError> {
    check_namespace(options)?;
    match options.namespace.as_deref() {
        Some(n) => Ok(n.to_owned()),
        None => Ok(format!(
            "{}://{}",
            platform.name,
            manifest
                .identity
                .connection
                .as_deref()
                .unwrap_or(&manifest.identity.connector)
        )),
    }
}

/// A dataset's name in OpenLineage's convention for its platform.
pub fn dataset_name(platform: Platform, database: &str, schema: &str, table: &str) -> String {
    if platform.three_level {
        format!("{database}.{schema}.{table}")
    } else {
        format!("{schema}.{table}")
    }
}

/// What an event needs from a table record.
struct TableFacts {
    kind: TableKind,
    comment: Option<String>,
}

/// Writes the run as OpenLineage dataset events.
pub(crate) fn export(
    manifest: &Manifest,
    platform: Platform,
    records: &mut dyn Lines,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ExportError> {
    let events = Events {
        namespace: namespace(manifest, platform, options)?,
        producer: producer(&manifest.outpost_version),
        time: manifest.finished_at.clone(),
        platform,
    };
    if platform.is_bi() {
        return export_tableau(&events, records, options, out);
    }
    // An event carries both the table's facts and its columns, which come in two streams:
    // the tables' facts are held (small), the columns flow through grouped by table.
    let mut tables: HashMap<(String, String, String), TableFacts> = HashMap::new();
    let mut order = Vec::new();
    records.each(EntityKind::Table, &mut |t: Table| {
        let key = (t.database, t.schema, t.name);
        order.push(key.clone());
        tables.insert(
            key,
            TableFacts {
                kind: t.kind,
                comment: t.comment,
            },
        );
        Ok(())
    })?;
    let mut written = 0u64;
    crate::each_group(
        records,
        EntityKind::Column,
        |c: &Column| (c.database.clone(), c.schema.clone(), c.table.clone()),
        &mut |group: &[Column]| {
            let first = &group[0];
            let key = (
                first.database.clone(),
                first.schema.clone(),
                first.table.clone(),
            );
            let facts = tables.remove(&key);
            events.write(out, &key, facts.as_ref(), group)?;
            written += 1;
            Ok(())
        },
    )?;
    // Tables without a column still are datasets.
    for key in order {
        if let Some(facts) = tables.get(&key) {
            events.write(out, &key, Some(facts), &[])?;
            written += 1;
        }
    }
    Ok(Summary { written })
}

struct Events {
    namespace: String,
    producer: String,
    time: String,
    platform: Platform,
}

impl Events {
    fn facet(&self, schema_url: &str, body: Value) -> Value {
        let mut facet = json!({"_producer": self.producer, "_schemaURL": schema_url});
        if let (Value::Object(f), Value::Object(b)) = (&mut facet, body) {
            f.extend(b);
        }
        facet
    }

    fn write(
        &self,
        out: &mut dyn Write,
        (database, schema, table): &(String, String, String),
        facts: Option<&TableFacts>,
        columns: &[Column],
    ) -> Result<(), ExportError> {
        let fields: Vec<Value> = columns
            .iter()
            .map(|c| {
                let mut f =
                    json!({"name": c.name, "type": c.data_type, "ordinal_position": c.ordinal});
                if let Some(d) = c.comment.as_deref().filter(|d| !d.is_empty()) {
                    f["description"] = json!(d);
                }
                f
            })
            .collect();
        let mut facets = serde_json::Map::new();
        facets.insert(
            "schema".into(),
            self.facet(SCHEMA_FACET, json!({"fields": fields})),
        );
        if let Some(facts) = facts {
            if let Some(c) = facts.comment.as_deref().filter(|c| !c.is_empty()) {
                facets.insert(
                    "documentation".into(),
                    self.facet(DOCUMENTATION_FACET, json!({"description": c})),
                );
            }
            let (kind, sub) = dataset_type(facts.kind);
            let mut body = json!({"datasetType": kind});
            if let Some(sub) = sub {
                body["subType"] = json!(sub);
            }
            facets.insert("datasetType".into(), self.facet(DATASET_TYPE_FACET, body));
        }
        self.event(
            out,
            &dataset_name(self.platform, database, schema, table),
            facets,
        )
    }

    /// One dataset event.
    fn event(
        &self,
        out: &mut dyn Write,
        name: &str,
        facets: serde_json::Map<String, Value>,
    ) -> Result<(), ExportError> {
        let event = json!({
            "eventTime": self.time,
            "producer": self.producer,
            "schemaURL": SCHEMA_URL,
            "dataset": {"namespace": self.namespace, "name": name, "facets": facets},
        });
        serde_json::to_writer(&mut *out, &event).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        Ok(())
    }
}

/// The OpenLineage dataset a Tableau edge's database table is: the namespace given for its
/// platform (`--openlineage-upstream-namespace postgres=postgres://db:5432`), or
/// `<platform>://<database>`; the name `database.schema.table` as Tableau names it
/// (`database.table` where the platform has no schemas).
fn upstream_dataset(table: &UpstreamTable, options: &Options) -> (String, String) {
    let platform =
        crate::datahub_tableau::upstream_platform(table.connection_type.as_deref().unwrap_or(""));
    let parts: Vec<&str> = [
        table.database.as_deref(),
        table.schema.as_deref(),
        Some(table.name.as_str()),
    ]
    .into_iter()
    .flatten()
    .filter(|p| !p.is_empty())
    .collect();
    let namespace = options
        .upstream_namespaces
        .iter()
        .find(|(p, _)| *p == platform)
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| {
            format!(
                "{platform}://{}",
                table.database.as_deref().unwrap_or("unknown")
            )
        });
    (namespace, parts.join("."))
}

/// What a Tableau data source's event needs, gathered from the streams.
#[derive(Default)]
struct DatasourceFacts {
    name: String,
    description: Option<String>,
    /// Field name, data type, description.
    fields: Vec<(String, Option<String>, Option<String>)>,
    /// Field name → the database columns it reads (namespace, dataset, column).
    lineage: BTreeMap<String, BTreeSet<(String, String, String)>>,
}

/// A Tableau run as OpenLineage events: one per data source, its fields as the `schema`
/// facet, and the database columns each field reads as the `columnLineage` facet. Data
/// sources are named by their id (names are not unique on a site); the name leads the
/// `documentation` facet. Held: the data sources with their fields and edges, as fields
/// are not grouped by data source in the run.
fn export_tableau(
    events: &Events,
    records: &mut dyn Lines,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ExportError> {
    let mut sources: BTreeMap<String, DatasourceFacts> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    records.each(EntityKind::Datasource, &mut |d: Datasource| {
        order.push(d.id.clone());
        sources.insert(
            d.id,
            DatasourceFacts {
                name: d.name,
                description: d.description,
                ..DatasourceFacts::default()
            },
        );
        Ok(())
    })?;
    // Field id → (data source, name): lineage edges name fields by id.
    let mut fields: HashMap<String, (String, String)> = HashMap::new();
    records.each(EntityKind::Field, &mut |f: Field| {
        if let Some(source) = sources.get_mut(&f.datasource_id) {
            source
                .fields
                .push((f.name.clone(), f.data_type, f.description));
        }
        fields.insert(f.id, (f.datasource_id, f.name));
        Ok(())
    })?;
    records.each(EntityKind::BiLineage, &mut |edge: BiLineage| {
        if let (BiLineageKind::FieldToColumn, Some(table), Some(column)) =
            (edge.kind, &edge.table, &edge.column)
            && let Some((source, field)) = fields.get(&edge.from_id)
            && let Some(facts) = sources.get_mut(source)
        {
            let (namespace, name) = upstream_dataset(table, options);
            facts.lineage.entry(field.clone()).or_default().insert((
                namespace,
                name,
                column.clone(),
            ));
        }
        Ok(())
    })?;
    let mut written = 0;
    for id in order {
        let Some(source) = sources.remove(&id) else {
            continue;
        };
        let mut facets = serde_json::Map::new();
        let schema: Vec<Value> = source
            .fields
            .iter()
            .map(|(name, data_type, description)| {
                let mut f = json!({"name": name});
                if let Some(t) = data_type {
                    f["type"] = json!(t);
                }
                if let Some(d) = description.as_deref().filter(|d| !d.is_empty()) {
                    f["description"] = json!(d);
                }
                f
            })
            .collect();
        facets.insert(
            "schema".into(),
            events.facet(SCHEMA_FACET, json!({"fields": schema})),
        );
        let documentation = match source.description.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => format!("{}\n\n{d}", source.name),
            None => source.name.clone(),
        };
        facets.insert(
            "documentation".into(),
            events.facet(DOCUMENTATION_FACET, json!({"description": documentation})),
        );
        if !source.lineage.is_empty() {
            let lineage: serde_json::Map<String, Value> = source
                .lineage
                .iter()
                .map(|(field, inputs)| {
                    let inputs: Vec<Value> = inputs
                        .iter()
                        .map(|(namespace, name, column)| {
                            json!({
                                "namespace": namespace,
                                "name": name,
                                "field": column,
                                "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                            })
                        })
                        .collect();
                    (field.clone(), json!({"inputFields": inputs}))
                })
                .collect();
            facets.insert(
                "columnLineage".into(),
                events.facet(COLUMN_LINEAGE_FACET, json!({"fields": lineage})),
            );
        }
        events.event(out, &id, facets)?;
        written += 1;
    }
    Ok(Summary { written })
}

/// The `datasetType` facet's type and subtype of a table kind.
fn dataset_type(kind: TableKind) -> (&'static str, Option<&'static str>) {
    match kind {
        TableKind::Table => ("TABLE", None),
        TableKind::View => ("VIEW", None),
        TableKind::MaterializedView => ("VIEW", Some("MATERIALIZED")),
        TableKind::ForeignTable => ("TABLE", Some("EXTERNAL")),
        TableKind::PartitionedTable => ("TABLE", Some("PARTITIONED")),
        TableKind::Partition => ("TABLE", Some("PARTITION")),
        TableKind::DynamicTable => ("TABLE", Some("DYNAMIC")),
    }
}
