//! The output records: one type per entity kind, one stream per kind.
//!
//! Every record names its place in the catalog by value (database, schema, table), so each
//! stream can be read on its own. Field names are camelCase in the JSON. Optional facts a
//! source does not have are `null`, never guessed. The JSON Schema of each record type is
//! generated from these types and committed under `crates/metadata-extract/output-format/`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kinds of entity, one output stream each.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum EntityKind {
    /// [`Database`] records.
    Database,
    /// [`Schema`] records.
    Schema,
    /// [`Table`] records (tables, views, materialized views, foreign tables, partitions).
    Table,
    /// [`Column`] records.
    Column,
    /// [`Constraint`] records.
    Constraint,
    /// [`Index`] records.
    Index,
    /// [`ViewDefinition`] records.
    ViewDefinition,
    /// [`Lineage`] records.
    Lineage,
    /// [`TagAssignment`] records.
    Tag,
    /// [`PolicyAssignment`] records.
    Policy,
    /// [`Site`](super::bi::Site) records (BI sites).
    Site,
    /// [`Project`](super::bi::Project) records.
    Project,
    /// [`Workbook`](super::bi::Workbook) records.
    Workbook,
    /// [`Sheet`](super::bi::Sheet) records.
    Sheet,
    /// [`Dashboard`](super::bi::Dashboard) records.
    Dashboard,
    /// [`Datasource`](super::bi::Datasource) records.
    Datasource,
    /// [`Field`](super::bi::Field) records.
    Field,
    /// [`CustomSql`](super::bi::CustomSql) records.
    CustomSql,
    /// [`BiLineage`](super::bi::BiLineage) records.
    BiLineage,
}

// `ALL` is in declaration order, so `kind as usize` is the kind's place in it: the output
// writer keeps its streams in an array indexed so (`a_kind_is_its_place_in_all` checks that
// every kind is listed).
const _: () = {
    let mut i = 0;
    while i < EntityKind::ALL.len() {
        assert!(
            EntityKind::ALL[i] as usize == i,
            "EntityKind::ALL is out of order"
        );
        i += 1;
    }
};

impl EntityKind {
    /// Every kind, in output order (which is declaration order).
    pub const ALL: [EntityKind; 19] = [
        Self::Database,
        Self::Schema,
        Self::Table,
        Self::Column,
        Self::Constraint,
        Self::Index,
        Self::ViewDefinition,
        Self::Lineage,
        Self::Tag,
        Self::Policy,
        Self::Site,
        Self::Project,
        Self::Workbook,
        Self::Sheet,
        Self::Dashboard,
        Self::Datasource,
        Self::Field,
        Self::CustomSql,
        Self::BiLineage,
    ];

    /// The stream's folder name in the output (`tables`, `view-definitions`).
    pub fn stream(self) -> &'static str {
        match self {
            Self::Database => "databases",
            Self::Schema => "schemas",
            Self::Table => "tables",
            Self::Column => "columns",
            Self::Constraint => "constraints",
            Self::Index => "indexes",
            Self::ViewDefinition => "view-definitions",
            Self::Lineage => "lineage",
            Self::Tag => "tags",
            Self::Policy => "policies",
            Self::Site => "sites",
            Self::Project => "projects",
            Self::Workbook => "workbooks",
            Self::Sheet => "sheets",
            Self::Dashboard => "dashboards",
            Self::Datasource => "datasources",
            Self::Field => "fields",
            Self::CustomSql => "custom-sql",
            Self::BiLineage => "bi-lineage",
        }
    }
}

impl EntityKind {
    /// How a person counts it: `1 table or view`, `30 tables and views`, `40 indexes`.
    pub fn noun(self, n: u64) -> &'static str {
        let (one, many) = match self {
            Self::Database => ("database", "databases"),
            Self::Schema => ("schema", "schemas"),
            Self::Table => ("table or view", "tables and views"),
            Self::Column => ("column", "columns"),
            Self::Constraint => ("constraint", "constraints"),
            Self::Index => ("index", "indexes"),
            Self::ViewDefinition => ("view definition", "view definitions"),
            Self::Lineage => ("lineage edge", "lineage edges"),
            Self::Tag => ("tag assignment", "tag assignments"),
            Self::Policy => ("policy assignment", "policy assignments"),
            Self::Site => ("site", "sites"),
            Self::Project => ("project", "projects"),
            Self::Workbook => ("workbook", "workbooks"),
            Self::Sheet => ("sheet", "sheets"),
            Self::Dashboard => ("dashboard", "dashboards"),
            Self::Datasource => ("data source", "data sources"),
            Self::Field => ("field", "fields"),
            Self::CustomSql => ("custom SQL query", "custom SQL queries"),
            Self::BiLineage => ("BI lineage edge", "BI lineage edges"),
        };
        if n == 1 { one } else { many }
    }
}

/// A record of one entity kind.
pub trait Record: Serialize {
    /// The stream it belongs to.
    const KIND: EntityKind;

    /// Appends the record as one line of compact JSON, without the newline: serde_json's
    /// bytes. Overridden only where a profile showed serde_json's generic path to be the
    /// cost ([`ColumnRef`]: columns are the bulk of a catalog).
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

/// Implements [`Record`] for a record type.
macro_rules! record {
    ($name:ty, $kind:ident) => {
        impl Record for $name {
            const KIND: EntityKind = EntityKind::$kind;
        }
    };
}

/// A database (PostgreSQL database; the SQLite file's `main`). MySQL has no level above
/// schemas: its records use the server's host as `database`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Database {
    /// Name.
    pub name: String,
    /// Owning role, where the source has one.
    pub owner: Option<String>,
    /// Comment.
    pub comment: Option<String>,
    /// Character encoding (`UTF8`).
    pub encoding: Option<String>,
    /// For a database shared with the account (a Snowflake share): where it comes from
    /// (`ORG.ACCOUNT.SHARE`). Null for the account's own databases.
    pub shared_from: Option<String>,
}
record!(Database, Database);

/// A schema (a MySQL database).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schema {
    /// Database it belongs to.
    pub database: String,
    /// Name.
    pub name: String,
    /// Owning role.
    pub owner: Option<String>,
    /// Comment.
    pub comment: Option<String>,
}
record!(Schema, Schema);

/// What kind of relation a [`Table`] record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TableKind {
    /// An ordinary table.
    Table,
    /// A view.
    View,
    /// A materialized view.
    MaterializedView,
    /// A foreign table.
    ForeignTable,
    /// A partitioned table (the parent; it holds no rows itself).
    PartitionedTable,
    /// A partition of a partitioned table.
    Partition,
    /// A table kept up to date from a query by the source (a Snowflake dynamic table).
    DynamicTable,
}

/// How long a table's data lives, where the source says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Persistence {
    /// Kept, with the source's recovery guarantees.
    Permanent,
    /// Kept, without fail-safe recovery (Snowflake transient tables).
    Transient,
    /// Gone with the session that made it.
    Temporary,
}

/// How a table's data is stored, where the source has more than one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StorageFormat {
    /// The source's own storage.
    Native,
    /// Apache Iceberg.
    Iceberg,
    /// Row and column storage together (Snowflake hybrid tables).
    Hybrid,
}

/// A table, view, materialized view, foreign table, partitioned table or partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Table {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Kind of relation.
    pub kind: TableKind,
    /// Owning role.
    pub owner: Option<String>,
    /// Comment.
    pub comment: Option<String>,
    /// The catalog's row-count estimate (never a count of rows); null when unknown.
    pub row_count_estimate: Option<i64>,
    /// For a partition: its parent table, as `schema.name` parts.
    pub partition_of: Option<TableRef>,
    /// For a partition: its bound (`FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`).
    pub partition_bound: Option<String>,
    /// How long its data lives; null where the source does not say.
    pub persistence: Option<Persistence>,
    /// How its data is stored; null where the source has one way only.
    pub storage_format: Option<StorageFormat>,
    /// Its clustering key as the source writes it (`LINEAR(ID, CREATED)`); null when none.
    pub clustering_key: Option<String>,
    /// The catalog's size in bytes (never measured by reading); null when unknown.
    pub size_bytes: Option<i64>,
}
record!(Table, Table);

impl Table {
    /// A relation known by its place and kind only: every optional fact null, for the
    /// source to fill in what it has (`Table { owner, ..Table::new(…) }`).
    pub fn new(database: &str, schema: &str, name: String, kind: TableKind) -> Self {
        Self {
            database: database.to_owned(),
            schema: schema.to_owned(),
            name,
            kind,
            owner: None,
            comment: None,
            row_count_estimate: None,
            partition_of: None,
            partition_bound: None,
            persistence: None,
            storage_format: None,
            clustering_key: None,
            size_bytes: None,
        }
    }
}

/// A reference to a table by schema and name (within the record's database).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableRef {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
}

/// How a column's value is generated, if it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Generated {
    /// Computed from other columns and stored.
    Stored,
    /// Computed from other columns when read.
    Virtual,
    /// An identity column, always generated.
    IdentityAlways,
    /// An identity column, generated unless given.
    IdentityByDefault,
}

/// A column of a table or view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Column {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Table or view.
    pub table: String,
    /// Name.
    pub name: String,
    /// 1-based position among the table's visible columns.
    pub ordinal: i32,
    /// The type as declared (`character varying(40)`, `integer[]`, `mood`).
    pub data_type: String,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// Default expression, as text.
    pub default: Option<String>,
    /// How the value is generated, if it is.
    pub generated: Option<Generated>,
    /// Generation expression of a generated column.
    pub generation_expression: Option<String>,
    /// Comment.
    pub comment: Option<String>,
}
record!(Column, Column);

/// A borrowed [`Column`] that serialises to exactly the same JSON. Columns are the bulk of a
/// catalog; a source writes them straight from its driver's row buffer with this, without
/// allocating every field.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnRef<'a> {
    /// Database.
    pub database: &'a str,
    /// Schema.
    pub schema: &'a str,
    /// Table or view.
    pub table: &'a str,
    /// Name.
    pub name: &'a str,
    /// 1-based position among the table's visible columns.
    pub ordinal: i32,
    /// The type as declared.
    pub data_type: &'a str,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// Default expression, as text.
    pub default: Option<&'a str>,
    /// How the value is generated, if it is.
    pub generated: Option<Generated>,
    /// Generation expression of a generated column.
    pub generation_expression: Option<&'a str>,
    /// Comment.
    pub comment: Option<&'a str>,
}

impl Record for ColumnRef<'_> {
    const KIND: EntityKind = EntityKind::Column;

    /// The derived `Serialize`'s bytes, written directly: serde_json escapes every key and
    /// scans every value through layers of generic calls, which took a third of an
    /// extraction's CPU. Keys here are literals; a value that needs no escaping (no `"`, `\`
    /// or control character: nearly every catalog name) is copied as it is, any other goes
    /// through serde_json. `a_borrowed_column_writes_the_derived_json` holds it to the
    /// derive, field by field. Inline, so that it is compiled with the extraction's
    /// optimisation level, not this crate's (size-optimised in release builds).
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"database\":");
        json_str(out, self.database)?;
        out.extend_from_slice(b",\"schema\":");
        json_str(out, self.schema)?;
        out.extend_from_slice(b",\"table\":");
        json_str(out, self.table)?;
        out.extend_from_slice(b",\"name\":");
        json_str(out, self.name)?;
        out.extend_from_slice(b",\"ordinal\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.ordinal).as_bytes());
        out.extend_from_slice(b",\"dataType\":");
        json_str(out, self.data_type)?;
        out.extend_from_slice(match self.nullable {
            true => b",\"nullable\":true,\"default\":",
            false => b",\"nullable\":false,\"default\":",
        });
        json_opt_str(out, self.default)?;
        out.extend_from_slice(b",\"generated\":");
        match self.generated {
            None => out.extend_from_slice(b"null"),
            Some(generated) => serde_json::to_writer(&mut *out, &generated)?,
        }
        out.extend_from_slice(b",\"generationExpression\":");
        json_opt_str(out, self.generation_expression)?;
        out.extend_from_slice(b",\"comment\":");
        json_opt_str(out, self.comment)?;
        out.push(b'}');
        Ok(())
    }
}

/// A JSON string as serde_json writes it: copied between quotes when nothing in it needs
/// escaping (serde_json escapes `"`, `\` and bytes below 0x20, nothing else), else by
/// serde_json itself.
#[inline]
fn json_str(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text)
    }
}

#[inline]
fn json_opt_str(out: &mut Vec<u8>, text: Option<&str>) -> serde_json::Result<()> {
    match text {
        Some(text) => json_str(out, text),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// The kind of a [`Constraint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConstraintKind {
    /// Primary key.
    PrimaryKey,
    /// Unique constraint.
    Unique,
    /// Foreign key.
    ForeignKey,
    /// Check constraint.
    Check,
    /// Exclusion constraint (PostgreSQL).
    Exclusion,
}

/// A table constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constraint {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
    /// Name (SQLite's unnamed constraints get a stable generated one).
    pub name: String,
    /// Kind.
    pub kind: ConstraintKind,
    /// Constrained columns, in key order.
    pub columns: Vec<String>,
    /// For a foreign key: the referenced table.
    pub referenced_table: Option<TableRef>,
    /// For a foreign key: the referenced columns, in key order.
    pub referenced_columns: Option<Vec<String>>,
    /// For a foreign key: the `ON UPDATE` action (`NO ACTION`, `CASCADE` …).
    pub on_update: Option<String>,
    /// For a foreign key: the `ON DELETE` action.
    pub on_delete: Option<String>,
    /// The constraint's definition as the source prints it (`CHECK ((price > 0))`).
    pub definition: Option<String>,
}
record!(Constraint, Constraint);

/// An index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Index {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
    /// Name.
    pub name: String,
    /// Whether the index enforces uniqueness.
    pub unique: bool,
    /// Whether it is the primary key's index.
    pub primary: bool,
    /// Indexed columns in order; an expression is given as its text.
    pub columns: Vec<String>,
    /// Access method (`btree`, `gin`, `BTREE`).
    pub method: Option<String>,
    /// Partial-index predicate.
    pub predicate: Option<String>,
    /// The full definition as the source prints it.
    pub definition: Option<String>,
}
record!(Index, Index);

/// The SQL text of a view or materialized view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ViewDefinition {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// View.
    pub view: String,
    /// The definition (the `SELECT`), as the source stores it.
    pub definition: String,
}
record!(ViewDefinition, ViewDefinition);

/// A lineage edge: a view reads a table (or another view).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lineage {
    /// Database.
    pub database: String,
    /// The view.
    pub view: TableRef,
    /// A relation it reads.
    pub source: TableRef,
    /// The source's database, when it is not the view's (Snowflake views may read other
    /// databases); null when it is the same.
    pub source_database: Option<String>,
}
record!(Lineage, Lineage);

/// A named object in the source's own namespace (a tag, a policy): database, schema, name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
}

/// A tag set on a database, schema, table or column (Snowflake object tagging), with its
/// value. The most specific of `schema`, `table` and `column` that is set names the object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagAssignment {
    /// Database of the tagged object.
    pub database: String,
    /// Schema of the tagged object; null for a database.
    pub schema: Option<String>,
    /// Table or view tagged (or holding the tagged column); null for a schema or database.
    pub table: Option<String>,
    /// Column tagged; null for a table, schema or database.
    pub column: Option<String>,
    /// The tag.
    pub tag: ObjectRef,
    /// Its value on this object.
    pub value: Option<String>,
}
record!(TagAssignment, Tag);

/// What a policy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PolicyKind {
    /// Masks a column's values for some roles.
    MaskingPolicy,
    /// Filters a table's rows for some roles.
    RowAccessPolicy,
}

/// A policy attached to a table or column (Snowflake masking and row access policies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyAssignment {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Table or view.
    pub table: String,
    /// Column, for a masking policy.
    pub column: Option<String>,
    /// What the policy does.
    pub kind: PolicyKind,
    /// The policy.
    pub policy: ObjectRef,
}
record!(PolicyAssignment, Policy);

impl EntityKind {
    /// The file name of this kind's record schema in the output-format folder.
    pub fn schema_file(self) -> &'static str {
        match self {
            Self::Database => "database.schema.json",
            Self::Schema => "schema.schema.json",
            Self::Table => "table.schema.json",
            Self::Column => "column.schema.json",
            Self::Constraint => "constraint.schema.json",
            Self::Index => "index.schema.json",
            Self::ViewDefinition => "view-definition.schema.json",
            Self::Lineage => "lineage.schema.json",
            Self::Tag => "tag.schema.json",
            Self::Policy => "policy.schema.json",
            Self::Site => "site.schema.json",
            Self::Project => "project.schema.json",
            Self::Workbook => "workbook.schema.json",
            Self::Sheet => "sheet.schema.json",
            Self::Dashboard => "dashboard.schema.json",
            Self::Datasource => "datasource.schema.json",
            Self::Field => "field.schema.json",
            Self::CustomSql => "custom-sql.schema.json",
            Self::BiLineage => "bi-lineage.schema.json",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_column_serialises_like_an_owned_one() {
        let owned = Column {
            database: "d".into(),
            schema: "s".into(),
            table: "t".into(),
            name: "n".into(),
            ordinal: 3,
            data_type: "integer".into(),
            nullable: true,
            default: Some("0".into()),
            generated: Some(Generated::Stored),
            generation_expression: Some("a + 1".into()),
            comment: None,
        };
        let borrowed = ColumnRef {
            database: "d",
            schema: "s",
            table: "t",
            name: "n",
            ordinal: 3,
            data_type: "integer",
            nullable: true,
            default: Some("0"),
            generated: Some(Generated::Stored),
            generation_expression: Some("a + 1"),
            comment: None,
        };
        assert_eq!(
            serde_json::to_string(&owned).unwrap_or_default(),
            serde_json::to_string(&borrowed).unwrap_or_default()
        );
    }

    /// Every kind is in `ALL`, at its own place: the JSON Schema (derived from the enum)
    /// lists every variant.
    #[test]
    fn a_kind_is_its_place_in_all() {
        let schema = serde_json::to_value(schemars::schema_for!(EntityKind)).expect("schema");
        // Documented variants are listed as `oneOf` items, each a `const` (or a one-value
        // `enum`); undocumented ones in one `enum`.
        let mut variants = Vec::new();
        for item in (schema["oneOf"].as_array().into_iter().flatten()).chain([&schema]) {
            let names = item["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(item.get("const"));
            variants.extend(names.filter_map(|v| v.as_str().map(str::to_owned)));
        }
        let listed: Vec<String> = (EntityKind::ALL.iter())
            .map(|kind| {
                serde_json::to_value(kind)
                    .expect("name")
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(listed, variants);
        for (i, kind) in EntityKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
    }

    /// Every field, each `Option` both ways, every `Generated`, and strings that need each
    /// kind of escape or none: [`ColumnRef::write_json`] writes the derive's bytes.
    #[test]
    fn a_borrowed_column_writes_the_derived_json() {
        let texts = [
            "",
            "plain_name",
            "Ünïcödé 名前 🦀",
            "quote\"d",
            "back\\slash",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}\u{7f}",
            "nextval('s.\"Seq\"'::regclass)",
        ];
        let generated = [
            None,
            Some(Generated::Stored),
            Some(Generated::Virtual),
            Some(Generated::IdentityAlways),
            Some(Generated::IdentityByDefault),
        ];
        let mut checked = 0;
        for (i, text) in texts.iter().enumerate() {
            for (j, generated) in generated.iter().enumerate() {
                let other = texts[(i + j + 1) % texts.len()];
                let some = |k: usize| (!(i + j + k).is_multiple_of(3)).then_some(*text);
                let column = ColumnRef {
                    database: text,
                    schema: other,
                    table: text,
                    name: other,
                    ordinal: [0, 1, -7, i32::MAX, i32::MIN][j],
                    data_type: text,
                    nullable: j.is_multiple_of(2),
                    default: some(0),
                    generated: *generated,
                    generation_expression: some(1),
                    comment: some(2),
                };
                let mut fast = Vec::new();
                column.write_json(&mut fast).expect("writes");
                let derived = serde_json::to_vec(&column).expect("serialises");
                assert_eq!(
                    fast,
                    derived,
                    "{column:?}: {} != {}",
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&derived)
                );
                checked += 1;
            }
        }
        assert_eq!(checked, texts.len() * generated.len());
    }
}
