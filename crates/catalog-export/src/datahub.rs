//! DataHub: metadata change proposals (MCPs) as `datahub ingest`'s `file` source reads them, a
//! JSON array with one proposal per line.
//!
//! The names follow DataHub's own SQL sources (`datahub.ingestion.source.sql`), so that a run
//! of Outpost and a run of DataHub's source over the same database describe the same
//! entities:
//!
//! - datasets `urn:li:dataset:(urn:li:dataPlatform:<platform>,[<instance>.]<database>.<schema>.<table>,<env>)`
//!   (`<schema>.<table>` on MySQL, which has no level above schemas);
//! - database and schema containers `urn:li:container:<guid>`, the guid being the MD5 of the
//!   container's key as Python's `json.dumps(sort_keys=True, separators=(",", ":"))` writes
//!   it, the environment standing in for a missing platform instance (DataHub's
//!   `backcompat_env_as_instance`, kept by its SQL sources);
//! - `schemaMetadata` with SQLAlchemy's spelling of the native type where DataHub's source
//!   gets its types from SQLAlchemy (PostgreSQL, MySQL).
//!
//! What Outpost does not produce, and why, is listed in `crates/catalog-export/README.md`.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use md5::{Digest, Md5};
use outpost_core::output::{
    Column, Constraint, ConstraintKind, Database, EntityKind, Lineage, Manifest, Schema, Table,
    TableKind, ViewDefinition,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{ExportError, Lines, Options, Platform, Summary, epoch_millis};

/// The environment DataHub's sources use when none is configured.
pub const DEFAULT_ENV: &str = "PROD";

/// How the run's objects are named in DataHub.
#[derive(Clone, Debug)]
pub struct Naming {
    platform: Platform,
    env: String,
    instance: Option<String>,
}

/// A table's place: database, schema, name.
type TableKey = (String, String, String);

impl Naming {
    /// The naming of `platform` under `options`.
    pub fn new(platform: Platform, options: &Options) -> Result<Self, ExportError> {
        let env = options.env.clone().unwrap_or_else(|| DEFAULT_ENV.into());
        // A URN's parts are separated by `,` and `(`/`)`; an env or instance holding them would
        // make URNs that name something else.
        for (what, value) in [
            ("env", Some(&env)),
            ("platform instance", options.platform_instance.as_ref()),
        ] {
            if let Some(v) = value
                && (v.is_empty()
                    || v.contains([',', '(', ')', '.'])
                    || v.chars().any(char::is_whitespace))
            {
                return Err(ExportError::Option(format!(
                    "DataHub {what} `{v}` may not be empty or hold `,`, `(`, `)`, `.` or spaces"
                )));
            }
        }
        Ok(Self {
            platform,
            env,
            instance: options.platform_instance.clone(),
        })
    }

    fn platform_urn(&self) -> String {
        format!("urn:li:dataPlatform:{}", self.platform.name)
    }

    fn instance_urn(&self) -> Option<String> {
        self.instance
            .as_ref()
            .map(|i| format!("urn:li:dataPlatformInstance:({},{i})", self.platform_urn()))
    }

    /// An identifier as DataHub's source for this platform writes it in URNs.
    fn ident(&self, s: &str) -> String {
        if self.platform.lowercase_urns {
            s.to_lowercase()
        } else {
            s.to_owned()
        }
    }

    /// The dataset name without the platform instance (`schemaMetadata.schemaName`).
    fn schema_name(&self, database: &str, schema: &str, table: &str) -> String {
        if self.platform.three_level {
            format!(
                "{}.{}.{}",
                self.ident(database),
                self.ident(schema),
                self.ident(table)
            )
        } else {
            format!("{}.{}", self.ident(schema), self.ident(table))
        }
    }

    /// A dataset's URN.
    pub fn dataset_urn(&self, database: &str, schema: &str, table: &str) -> String {
        let name = self.schema_name(database, schema, table);
        let name = match &self.instance {
            Some(i) => format!("{i}.{name}"),
            None => name,
        };
        format!(
            "urn:li:dataset:({},{name},{})",
            self.platform_urn(),
            self.env
        )
    }

    /// A column's URN.
    fn field_urn(&self, dataset: &str, field: &str) -> String {
        format!("urn:li:schemaField:({dataset},{field})")
    }

    /// A field path as DataHub's source writes it.
    /// Borrowed where nothing changes: it is written for every column.
    fn field_path<'a>(&self, column: &'a str) -> std::borrow::Cow<'a, str> {
        if self.platform.lowercase_urns {
            column.to_lowercase().into()
        } else {
            column.into()
        }
    }

    /// The key of a container: the database's (`schema` `None`) or a schema's. On MySQL the
    /// schema is DataHub's database.
    fn key(&self, database: &str, schema: Option<&str>) -> Vec<(&'static str, String)> {
        let mut key = vec![("platform", self.platform.name.to_owned())];
        if let Some(i) = &self.instance {
            key.push(("instance", i.clone()));
        }
        key.push(("env", self.env.clone()));
        match (self.platform.three_level, schema) {
            (true, Some(s)) => {
                key.push(("database", self.ident(database)));
                key.push(("schema", self.ident(s)));
            }
            (false, Some(s)) => key.push(("database", self.ident(s))),
            (_, None) => key.push(("database", self.ident(database))),
        }
        key
    }

    /// A container's URN: the MD5 of its key as DataHub's `datahub_guid` writes it.
    pub fn container_urn(&self, database: &str, schema: Option<&str>) -> String {
        let mut guid: Vec<(&str, String)> = self
            .key(database, schema)
            .into_iter()
            .filter(|(k, _)| *k != "env")
            .collect();
        if self.instance.is_none() {
            guid.push(("instance", self.env.clone()));
        }
        container_urn(guid)
    }

    /// The container a dataset of `schema` is in: the schema's, or on MySQL the database's.
    fn dataset_container(&self, database: &str, schema: &str) -> String {
        self.container_urn(database, Some(schema))
    }

    /// The browse path of something inside these containers (outermost first).
    fn browse_path(&self, containers: &[String]) -> Value {
        let mut path: Vec<Value> = Vec::new();
        if let Some(i) = self.instance_urn() {
            path.push(json!({"id": i, "urn": i}));
        }
        path.extend(containers.iter().map(|c| json!({"id": c, "urn": c})));
        json!({ "path": path })
    }

    fn platform_instance_aspect(&self) -> Value {
        match self.instance_urn() {
            Some(i) => json!({"platform": self.platform_urn(), "instance": i}),
            None => json!({"platform": self.platform_urn()}),
        }
    }
}

/// The URN of a container whose key is `key`: the MD5 of the key as DataHub's
/// `datahub_guid` writes it (Python's `json.dumps`, keys sorted, no spaces).
pub(crate) fn container_urn(mut key: Vec<(&str, String)>) -> String {
    key.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::from("{");
    for (i, (k, v)) in key.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        python_json_string(&mut text, k);
        text.push(':');
        python_json_string(&mut text, v);
    }
    text.push('}');
    let digest = Md5::digest(text.as_bytes());
    format!("urn:li:container:{}", outpost_core::output::hex(&digest))
}

/// `s` as a JSON string the way Python's `json.dumps` writes it by default (`ensure_ascii`):
/// everything outside printable ASCII escaped as `\uXXXX`, UTF-16 surrogate pairs beyond the
/// basic plane. DataHub hashes that text, so the escapes must be Python's exactly.
fn python_json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A column's native type as DataHub's source writes it. DataHub's PostgreSQL and MySQL
/// sources read types through SQLAlchemy and write its spelling (`VARCHAR(200)`,
/// `NUMERIC(12, 2)`, `TIMESTAMP WITH TIME ZONE`); a type SQLAlchemy does not know (an enum, a
/// domain, an extension's type) keeps the catalog's name. Other platforms keep the
/// catalog's spelling, as their DataHub sources do.
pub fn native_type(platform: Platform, data_type: &str) -> String {
    match platform.name {
        "postgres" => postgres_native_type(data_type),
        "mysql" => mysql_native_type(data_type),
        _ => data_type.to_owned(),
    }
}

/// PostgreSQL's built-in types, as `format_type` names them, that SQLAlchemy spells in
/// capitals.
const POSTGRES_BUILTINS: &[&str] = &[
    "bigint",
    "bit",
    "bit varying",
    "boolean",
    "bytea",
    "character",
    "character varying",
    "cidr",
    "date",
    "daterange",
    "double precision",
    "inet",
    "int4range",
    "int8range",
    "integer",
    "interval",
    "json",
    "jsonb",
    "macaddr",
    "money",
    "numeric",
    "numrange",
    "oid",
    "point",
    "real",
    "smallint",
    "text",
    "time",
    "timestamp",
    "tsrange",
    "tstzrange",
    "tsvector",
    "uuid",
    "xml",
];

fn postgres_native_type(data_type: &str) -> String {
    if let Some(element) = data_type.strip_suffix("[]") {
        return format!("{}[]", postgres_native_type(element));
    }
    let base_end = data_type.find('(').unwrap_or(data_type.len());
    let base = data_type[..base_end].trim_end();
    let base = base
        .strip_suffix(" with time zone")
        .or_else(|| base.strip_suffix(" without time zone"))
        .unwrap_or(base);
    // PostgreSQL's internal string types, which SQLAlchemy reads as VARCHAR.
    if base == "name" || base == "\"char\"" {
        return "VARCHAR".to_owned();
    }
    if !POSTGRES_BUILTINS.contains(&base) {
        return data_type.to_owned();
    }
    let upper = data_type.to_uppercase().replace(',', ", ");
    if let Some(rest) = upper.strip_prefix("CHARACTER VARYING") {
        format!("VARCHAR{rest}")
    } else if let Some(rest) = upper.strip_prefix("CHARACTER") {
        format!("CHAR{rest}")
    } else {
        upper
    }
}

fn mysql_native_type(data_type: &str) -> String {
    // An ENUM's or SET's values keep their case and spacing, as SQLAlchemy prints them.
    if let Some(open) = data_type.find('(') {
        let keyword = data_type[..open].to_ascii_lowercase();
        if keyword == "enum" || keyword == "set" {
            return format!("{}{}", keyword.to_uppercase(), &data_type[open..]);
        }
    }
    let upper = data_type.to_uppercase().replace(',', ", ");
    // SQLAlchemy's MySQL dialect spells `int` in full.
    match upper.strip_prefix("INT") {
        Some(rest) if rest.is_empty() || rest.starts_with(['(', ' ']) => format!("INTEGER{rest}"),
        _ => upper,
    }
}

/// DataHub's type class of a native type (`com.linkedin.schema.<Class>`), as its SQL
/// sources map them. A type whose kind the record does not tell (an enum or a domain is
/// only a name) is `NullType`, as DataHub writes a type it does not know.
pub fn type_class(data_type: &str) -> &'static str {
    let t = data_type.trim().to_lowercase();
    if t.ends_with("[]") || t.starts_with("array") {
        return "ArrayType";
    }
    let base = t.split(['(', ' ']).next().unwrap_or("");
    match base {
        "smallint" | "integer" | "int" | "bigint" | "int2" | "int4" | "int8" | "tinyint"
        | "mediumint" | "numeric" | "decimal" | "real" | "double" | "float" | "float4"
        | "float8" | "number" | "money" | "serial" | "bigserial" | "byteint" | "fixed" => {
            "NumberType"
        }
        // As DataHub's postgres source classes them (checked against it: `oid`, the network
        // types and ranges are strings there).
        "text" | "character" | "char" | "varchar" | "nchar" | "nvarchar" | "bpchar" | "uuid"
        | "citext" | "name" | "string" | "tinytext" | "mediumtext" | "longtext" | "clob"
        | "oid" | "inet" | "cidr" | "macaddr" | "xml" | "int4range" | "int8range" | "numrange"
        | "tsrange" | "tstzrange" | "daterange" | "set" => "StringType",
        "boolean" | "bool" => "BooleanType",
        "date" => "DateType",
        "timestamp" | "timestamptz" | "time" | "timetz" | "datetime" | "timestamp_ntz"
        | "timestamp_ltz" | "timestamp_tz" | "interval" => "TimeType",
        "bytea" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "binary" | "varbinary"
        | "tsvector" | "bit" | "point" => "BytesType",
        "json" | "jsonb" | "variant" | "object" => "RecordType",
        "enum" => "EnumType",
        _ => "NullType",
    }
}

/// Writes proposals as the elements of one JSON array, one per line.
pub(crate) struct Proposals<'a> {
    out: &'a mut dyn Write,
    written: u64,
    system: Value,
}

impl<'a> Proposals<'a> {
    /// Proposals of the run of `manifest`, stamped with its end and its id.
    pub(crate) fn for_run(manifest: &Manifest, out: &'a mut dyn Write) -> Self {
        let run_id = manifest.identity.run_id.clone().unwrap_or_else(|| {
            format!(
                "outpost-{}-{}",
                manifest.identity.connector, manifest.started_at
            )
        });
        Proposals {
            out,
            written: 0,
            system: json!({"lastObserved": epoch_millis(&manifest.finished_at), "runId": run_id}),
        }
    }

    pub(crate) fn emit(
        &mut self,
        entity: &str,
        urn: &str,
        aspect: &str,
        value: impl Serialize,
    ) -> Result<(), ExportError> {
        self.out
            .write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
        let mcp = Envelope {
            entity_type: entity,
            entity_urn: urn,
            change_type: "UPSERT",
            aspect_name: aspect,
            aspect: AspectJson { json: value },
            system_metadata: &self.system,
        };
        serde_json::to_writer(&mut *self.out, &mcp).map_err(std::io::Error::from)?;
        self.written += 1;
        Ok(())
    }

    /// A container's proposals, in the order DataHub's `gen_containers` writes them.
    pub(crate) fn container(
        &mut self,
        urn: &str,
        facts: &ContainerFacts,
        parent: Option<&str>,
    ) -> Result<(), ExportError> {
        if let Some(parent) = parent {
            self.emit("container", urn, "container", json!({"container": parent}))?;
        }
        self.emit("container", urn, "containerProperties", &facts.properties)?;
        self.emit("container", urn, "status", json!({"removed": false}))?;
        self.emit("container", urn, "dataPlatformInstance", &facts.instance)?;
        self.emit(
            "container",
            urn,
            "subTypes",
            json!({"typeNames": [facts.sub_type]}),
        )?;
        self.emit("container", urn, "browsePathsV2", &facts.browse)
    }

    pub(crate) fn finish(self) -> Result<u64, ExportError> {
        self.out
            .write_all(if self.written == 0 { b"[]\n" } else { b"\n]\n" })?;
        Ok(self.written)
    }
}

/// One proposal as DataHub's file source reads it. Typed, not a `Value`: a catalog's
/// columns are most of the proposals' bytes, and building maps for them cost more than
/// extracting them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, A> {
    entity_type: &'a str,
    entity_urn: &'a str,
    change_type: &'static str,
    aspect_name: &'a str,
    aspect: AspectJson<A>,
    system_metadata: &'a Value,
}

#[derive(Serialize)]
struct AspectJson<A> {
    json: A,
}

/// A `schemaMetadata` field.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Field<'a> {
    pub(crate) field_path: std::borrow::Cow<'a, str>,
    pub(crate) nullable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
    #[serde(rename = "type")]
    pub(crate) type_: TypeUnion,
    pub(crate) native_data_type: &'a str,
    pub(crate) recursive: bool,
    pub(crate) is_part_of_key: bool,
}

/// The `schemaMetadata` aspect.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SchemaMetadata<'a> {
    schema_name: String,
    platform: String,
    version: u32,
    created: &'a Value,
    last_modified: &'a Value,
    hash: &'static str,
    platform_schema: Value,
    fields: Vec<Field<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    foreign_keys: Option<Vec<Value>>,
}

/// `{"type": {"com.linkedin.schema.<Class>": {}}}`: DataHub's type union.
pub(crate) struct TypeUnion(pub(crate) &'static str);

impl Serialize for TypeUnion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Class(&'static str);
        impl Serialize for Class {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(&format_args!("com.linkedin.schema.{}", self.0), &Empty {})?;
                m.end()
            }
        }
        #[derive(Serialize)]
        struct Empty {}
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("type", &Class(self.0))?;
        m.end()
    }
}

/// What a container's proposals say of it.
pub(crate) struct ContainerFacts {
    /// `containerProperties`.
    pub(crate) properties: Value,
    /// `dataPlatformInstance`.
    pub(crate) instance: Value,
    /// Its one sub-type.
    pub(crate) sub_type: &'static str,
    /// `browsePathsV2`.
    pub(crate) browse: Value,
}

/// What the dataset proposals need from the streams read before the columns: keys per
/// table, view definitions and which views are materialized. Small next to the columns.
#[derive(Default)]
struct Joins {
    primary_keys: HashMap<TableKey, HashSet<String>>,
    foreign_keys: HashMap<TableKey, Vec<Constraint>>,
    view_definitions: HashMap<TableKey, String>,
    /// Native type and type class per catalog type: a catalog has few distinct types.
    types: HashMap<String, (String, &'static str)>,
}

/// Writes the run as DataHub proposals.
pub(crate) fn export(
    manifest: &Manifest,
    platform: Platform,
    records: &mut dyn Lines,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ExportError> {
    let naming = Naming::new(platform, options)?;
    if platform.is_bi() {
        return crate::datahub_tableau::export(manifest, records, options, out);
    }
    let mut p = Proposals::for_run(manifest, out);

    let mut joins = Joins::default();
    records.each(EntityKind::Constraint, &mut |c: Constraint| {
        let key = (c.database.clone(), c.schema.clone(), c.table.clone());
        match c.kind {
            ConstraintKind::PrimaryKey => {
                joins.primary_keys.entry(key).or_default().extend(c.columns);
            }
            ConstraintKind::ForeignKey if c.referenced_table.is_some() => {
                joins.foreign_keys.entry(key).or_default().push(c);
            }
            _ => {}
        }
        Ok(())
    })?;
    records.each(EntityKind::ViewDefinition, &mut |v: ViewDefinition| {
        joins
            .view_definitions
            .insert((v.database, v.schema, v.view), v.definition);
        Ok(())
    })?;

    if platform.three_level {
        records.each(EntityKind::Database, &mut |d: Database| {
            container(
                &mut p,
                &naming,
                &d.name,
                None,
                &d.name,
                d.comment.as_deref(),
            )
        })?;
    }
    records.each(EntityKind::Schema, &mut |s: Schema| {
        container(
            &mut p,
            &naming,
            &s.database,
            Some(&s.name),
            &s.name,
            s.comment.as_deref(),
        )
    })?;
    records.each(EntityKind::Table, &mut |t: Table| {
        dataset(&mut p, &naming, &joins, &t)
    })?;

    // Columns come grouped by table: one schemaMetadata per group.
    crate::each_group(
        records,
        EntityKind::Column,
        |c: &Column| (c.database.clone(), c.schema.clone(), c.table.clone()),
        &mut |group| schema_metadata(&mut p, &naming, &mut joins, group),
    )?;

    // Lineage comes sorted by view: one upstreamLineage per view.
    crate::each_group(
        records,
        EntityKind::Lineage,
        |l: &Lineage| (l.database.clone(), l.view.clone()),
        &mut |edges| upstream_lineage(&mut p, &naming, edges),
    )?;
    Ok(Summary {
        written: p.finish()?,
    })
}

/// A database's or schema's container.
fn container(
    p: &mut Proposals,
    naming: &Naming,
    database: &str,
    schema: Option<&str>,
    name: &str,
    comment: Option<&str>,
) -> Result<(), ExportError> {
    let urn = naming.container_urn(database, schema);
    let custom: serde_json::Map<String, Value> = naming
        .key(database, schema)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    let mut properties = json!({"customProperties": custom, "name": name, "env": naming.env});
    if let Some(c) = comment.filter(|c| !c.is_empty()) {
        properties["description"] = json!(c);
    }
    let is_schema = schema.is_some() && naming.platform.three_level;
    let parents = if is_schema {
        vec![naming.container_urn(database, None)]
    } else {
        Vec::new()
    };
    p.container(
        &urn,
        &ContainerFacts {
            properties,
            instance: naming.platform_instance_aspect(),
            sub_type: if is_schema { "Schema" } else { "Database" },
            browse: naming.browse_path(&parents),
        },
        parents.last().map(String::as_str),
    )
}

/// A table's or view's proposals, its schema aside.
fn dataset(
    p: &mut Proposals,
    naming: &Naming,
    joins: &Joins,
    t: &Table,
) -> Result<(), ExportError> {
    let urn = naming.dataset_urn(&t.database, &t.schema, &t.name);
    let is_view = matches!(t.kind, TableKind::View | TableKind::MaterializedView);
    let definition =
        joins
            .view_definitions
            .get(&(t.database.clone(), t.schema.clone(), t.name.clone()));
    let mut custom = serde_json::Map::new();
    if is_view {
        custom.insert("is_view".into(), json!("True"));
        if let Some(d) = definition {
            custom.insert("view_definition".into(), json!(d));
        }
    }
    let mut properties = json!({"customProperties": custom, "name": t.name, "tags": []});
    if let Some(c) = t.comment.as_deref().filter(|c| !c.is_empty()) {
        properties["description"] = json!(c);
    }
    p.emit("dataset", &urn, "status", json!({"removed": false}))?;
    p.emit("dataset", &urn, "datasetProperties", properties)?;
    let sub_type = if is_view { "View" } else { "Table" };
    p.emit(
        "dataset",
        &urn,
        "subTypes",
        json!({"typeNames": [sub_type]}),
    )?;
    let schema_container = naming.dataset_container(&t.database, &t.schema);
    p.emit(
        "dataset",
        &urn,
        "container",
        json!({"container": schema_container}),
    )?;
    let path = if naming.platform.three_level {
        vec![naming.container_urn(&t.database, None), schema_container]
    } else {
        vec![schema_container]
    };
    p.emit("dataset", &urn, "browsePathsV2", naming.browse_path(&path))?;
    if naming.instance.is_some() {
        p.emit(
            "dataset",
            &urn,
            "dataPlatformInstance",
            naming.platform_instance_aspect(),
        )?;
    }
    if let (true, Some(d)) = (is_view, definition) {
        p.emit(
            "dataset",
            &urn,
            "viewProperties",
            json!({
                "materialized": t.kind == TableKind::MaterializedView,
                "viewLogic": d,
                "viewLanguage": "SQL",
            }),
        )?;
    }
    Ok(())
}

/// One table's `schemaMetadata`, from its columns (in order) and its keys.
fn schema_metadata(
    p: &mut Proposals,
    naming: &Naming,
    joins: &mut Joins,
    columns: &[Column],
) -> Result<(), ExportError> {
    let first = &columns[0];
    let key = (
        first.database.clone(),
        first.schema.clone(),
        first.table.clone(),
    );
    let urn = naming.dataset_urn(&first.database, &first.schema, &first.table);
    let primary = joins.primary_keys.get(&key);
    for c in columns {
        if !joins.types.contains_key(&c.data_type) {
            let native = native_type(naming.platform, &c.data_type);
            let class = type_class(&native);
            joins.types.insert(c.data_type.clone(), (native, class));
        }
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let (native, class) = &joins.types[&c.data_type];
            Field {
                field_path: naming.field_path(&c.name),
                nullable: c.nullable,
                description: c.comment.as_deref().filter(|d| !d.is_empty()),
                type_: TypeUnion(class),
                native_data_type: native,
                recursive: false,
                is_part_of_key: primary.is_some_and(|k| k.contains(&c.name)),
            }
        })
        .collect();
    let unknown = json!({"time": 0, "actor": "urn:li:corpuser:unknown"});
    let mut aspect = SchemaMetadata {
        schema_name: naming.schema_name(&first.database, &first.schema, &first.table),
        platform: naming.platform_urn(),
        version: 0,
        created: &unknown,
        last_modified: &unknown,
        hash: "",
        platform_schema: json!({"com.linkedin.schema.MySqlDDL": {"tableSchema": ""}}),
        fields,
        foreign_keys: None,
    };
    if let Some(fks) = joins.foreign_keys.get(&key) {
        let fks: Vec<Value> = fks
            .iter()
            .filter_map(|fk| {
                let to = fk.referenced_table.as_ref()?;
                let foreign = naming.dataset_urn(&fk.database, &to.schema, &to.name);
                let referenced = fk.referenced_columns.as_deref().unwrap_or_default();
                Some(json!({
                    "name": fk.name,
                    "foreignFields": referenced.iter().map(|c| naming.field_urn(&foreign, &naming.field_path(c))).collect::<Vec<_>>(),
                    "sourceFields": fk.columns.iter().map(|c| naming.field_urn(&urn, &naming.field_path(c))).collect::<Vec<_>>(),
                    "foreignDataset": foreign,
                }))
            })
            .collect();
        aspect.foreign_keys = Some(fks);
    }
    p.emit("dataset", &urn, "schemaMetadata", aspect)
}

/// One view's `upstreamLineage`: the relations it reads.
fn upstream_lineage(
    p: &mut Proposals,
    naming: &Naming,
    edges: &[Lineage],
) -> Result<(), ExportError> {
    let first = &edges[0];
    let urn = naming.dataset_urn(&first.database, &first.view.schema, &first.view.name);
    // DataHub's SQL sources stamp view lineage as their ingestion's.
    let stamp = json!({"time": 0, "actor": "urn:li:corpuser:_ingestion"});
    let upstreams: Vec<Value> = edges
        .iter()
        .map(|l| {
            let database = l.source_database.as_deref().unwrap_or(&l.database);
            json!({
                "auditStamp": stamp,
                "created": stamp,
                "dataset": naming.dataset_urn(database, &l.source.schema, &l.source.name),
                "type": "VIEW",
            })
        })
        .collect();
    p.emit(
        "dataset",
        &urn,
        "upstreamLineage",
        json!({"upstreams": upstreams}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres() -> Naming {
        Naming::new(
            Platform::of("postgres").expect("known"),
            &Options::default(),
        )
        .expect("valid")
    }

    /// The container URNs DataHub 1.7's postgres source gave these very names (its output
    /// over `tests/fixtures/postgres.sql`): the escapes must be Python's, byte for byte.
    #[test]
    fn container_urns_are_datahubs() {
        let n = postgres();
        assert_eq!(
            n.container_urn("dh_fx", None),
            "urn:li:container:7fe770095da87b04aee558a163157762"
        );
        assert_eq!(
            n.container_urn("dh_fx", Some("MixedCase")),
            "urn:li:container:9c88ba8835bcd5e5e248c0484413ad2c"
        );
        assert_eq!(
            n.container_urn("dh_fx", Some("ünïcödé 📦")),
            "urn:li:container:ad78ac4b20016941b000c3f2471a4af8"
        );
        assert_eq!(
            n.container_urn("dh_fx", Some("it's a \\ schema")),
            "urn:li:container:05091053e700824e898b94b9dcfa4618"
        );
    }

    #[test]
    fn dataset_urns_follow_the_platform() {
        let n = postgres();
        assert_eq!(
            n.dataset_urn("db", "public", "Orders"),
            "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.Orders,PROD)"
        );
        let mysql = Naming::new(
            Platform::of("mysql").expect("known"),
            &Options {
                env: Some("DEV".into()),
                platform_instance: Some("eu1".into()),
                ..Options::default()
            },
        )
        .expect("valid");
        assert_eq!(
            mysql.dataset_urn("host", "shop", "orders"),
            "urn:li:dataset:(urn:li:dataPlatform:mysql,eu1.shop.orders,DEV)"
        );
        let snowflake = Naming::new(
            Platform::of("snowflake").expect("known"),
            &Options::default(),
        )
        .expect("valid");
        assert_eq!(
            snowflake.dataset_urn("DB", "PUBLIC", "T"),
            "urn:li:dataset:(urn:li:dataPlatform:snowflake,db.public.t,PROD)"
        );
    }

    #[test]
    fn an_option_that_would_break_a_urn_is_refused() {
        for bad in ["", "a,b", "x)", "two words", "a.b"] {
            let options = Options {
                platform_instance: Some(bad.into()),
                ..Options::default()
            };
            assert!(
                Naming::new(Platform::of("postgres").expect("known"), &options).is_err(),
                "{bad:?}"
            );
        }
    }

    /// SQLAlchemy's spelling, as DataHub's postgres source wrote these types.
    #[test]
    fn postgres_types_are_spelled_as_sqlalchemy_does() {
        let pg = Platform::of("postgres").expect("known");
        for (ours, theirs) in [
            ("bigint", "BIGINT"),
            ("text", "TEXT"),
            ("character varying(200)", "VARCHAR(200)"),
            ("text[]", "TEXT[]"),
            ("mood", "mood"),
            ("positive_int", "positive_int"),
            ("timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
            ("numeric(12,2)", "NUMERIC(12, 2)"),
            ("numeric", "NUMERIC"),
            ("date", "DATE"),
            ("character(3)", "CHAR(3)"),
        ] {
            assert_eq!(native_type(pg, ours), theirs);
        }
        let mysql = Platform::of("mysql").expect("known");
        assert_eq!(
            native_type(mysql, "int(11) unsigned"),
            "INTEGER(11) UNSIGNED"
        );
        assert_eq!(native_type(mysql, "decimal(12,2)"), "DECIMAL(12, 2)");
        assert_eq!(native_type(mysql, "enum('sad','Ok')"), "ENUM('sad','Ok')");
        assert_eq!(
            native_type(Platform::of("snowflake").expect("known"), "NUMBER(38,0)"),
            "NUMBER(38,0)"
        );
    }

    #[test]
    fn type_classes_follow_datahubs_sql_sources() {
        for (native, class) in [
            ("BIGINT", "NumberType"),
            ("VARCHAR(200)", "StringType"),
            ("TEXT[]", "ArrayType"),
            ("TIMESTAMP WITH TIME ZONE", "TimeType"),
            ("DATE", "DateType"),
            ("positive_int", "NullType"),
            ("BOOLEAN", "BooleanType"),
            ("NUMBER(38,0)", "NumberType"),
            ("TIMESTAMP_NTZ", "TimeType"),
            ("VARIANT", "RecordType"),
        ] {
            assert_eq!(type_class(native), class, "{native}");
        }
    }
}
