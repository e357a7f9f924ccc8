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

use std::collections::HashMap;
use std::io::Write;

use outpost_core::output::{Column, EntityKind, Manifest, Table, TableKind};
use serde_json::{Value, json};

use crate::{ExportError, Options, Platform, Records, Summary};

/// The OpenLineage spec the events follow (`openlineage-spec/OpenLineage.json`).
pub const SCHEMA_URL: &str =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent";
/// The facets' schema URLs, as their vendored `$id`s give them.
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const DOCUMENTATION_FACET: &str = "https://openlineage.io/spec/facets/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet";
const DATASET_TYPE_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json#/$defs/DatasetTypeDatasetFacet";

/// The producer URI every event and facet carries: Outpost, at the version that wrote the
/// run.
pub fn producer(outpost_version: &str) -> String {
    format!("https://github.com/outpost-agent/outpost/tree/v{outpost_version}")
}

/// The dataset namespace: the one given, or `<platform>://<connection>`.
pub fn namespace(
    manifest: &Manifest,
    platform: Platform,
    options: &Options,
) -> Result<String, ExportError> {
    match options.namespace.as_deref() {
        Some("") => Err(ExportError::Option(
            "the OpenLineage namespace may not be empty".into(),
        )),
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
    records: &mut impl Records,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ExportError> {
    let events = Events {
        namespace: namespace(manifest, platform, options)?,
        producer: producer(&manifest.outpost_version),
        time: manifest.finished_at.clone(),
        platform,
    };
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
        let event = json!({
            "eventTime": self.time,
            "producer": self.producer,
            "schemaURL": SCHEMA_URL,
            "dataset": {
                "namespace": self.namespace,
                "name": dataset_name(self.platform, database, schema, table),
                "facets": facets,
            },
        });
        serde_json::to_writer(&mut *out, &event).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        Ok(())
    }
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
