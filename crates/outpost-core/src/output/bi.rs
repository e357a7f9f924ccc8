//! Records of BI sites (Tableau): the site, its projects, workbooks, sheets, dashboards,
//! data sources, fields and custom SQL, and the lineage from each down to database tables
//! and columns.
//!
//! Every record names its site by content URL (`site`; empty for a Tableau Server's Default
//! site) and itself by the BI tool's own identifiers, so each stream can be read alone. A
//! database table is named as the database connectors name it ([`UpstreamTable`]:
//! database, schema and table as the BI tool reports them), so a catalog can join a BI
//! site's output to a database's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::{EntityKind, Record};

/// A site: the tenant every other BI record belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    /// Content URL (`marketing`; empty for a Tableau Server's Default site): the `site` of
    /// every other BI record.
    pub content_url: String,
    /// The site's identifier (Tableau's LUID).
    pub id: String,
    /// Display name; null when the server did not say.
    pub name: Option<String>,
    /// The server's address, as the connection gives it (`https://tableau.example.com`).
    pub server_url: String,
    /// The server's product version (`2024.2.1`), where it says.
    pub product_version: Option<String>,
}
record!(Site, Site);

/// A project (a folder of workbooks and data sources; projects nest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Project {
    /// Site (content URL).
    pub site: String,
    /// Identifier (LUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// The enclosing project's identifier; null for a top-level project.
    pub parent_id: Option<String>,
    /// Names from the top-level project down to this one (`["Finance", "Reports"]`).
    pub path: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Owner's user identifier (LUID).
    pub owner_id: Option<String>,
}
record!(Project, Project);

/// A workbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workbook {
    /// Site (content URL).
    pub site: String,
    /// Identifier (LUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Project identifier; null for content in a personal space.
    pub project_id: Option<String>,
    /// The project's path ([`Project::path`]); empty when it has no project.
    pub project_path: Vec<String>,
    /// Owner's user identifier (LUID).
    pub owner_id: Option<String>,
    /// Owner's user name, where the server says.
    pub owner: Option<String>,
    /// The workbook's URL part (`Superstore`).
    pub content_url: Option<String>,
    /// Its page in the BI tool's web interface.
    pub webpage_url: Option<String>,
    /// When it was created (RFC 3339, as the server writes it).
    pub created_at: Option<String>,
    /// When it was last changed.
    pub updated_at: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
}
record!(Workbook, Workbook);

/// A sheet (a worksheet) of a workbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sheet {
    /// Site (content URL).
    pub site: String,
    /// Identifier (the Metadata API's id: hidden sheets have no LUID).
    pub id: String,
    /// LUID, for a sheet published as a view; null for a hidden sheet.
    pub luid: Option<String>,
    /// Workbook identifier (LUID).
    pub workbook_id: String,
    /// Name.
    pub name: String,
    /// Its URL path within the site (`Superstore/Overview`), when published.
    pub path: Option<String>,
}
record!(Sheet, Sheet);

/// A dashboard of a workbook, with the sheets it shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dashboard {
    /// Site (content URL).
    pub site: String,
    /// Identifier (the Metadata API's id).
    pub id: String,
    /// LUID, for a dashboard published as a view; null when hidden.
    pub luid: Option<String>,
    /// Workbook identifier (LUID).
    pub workbook_id: String,
    /// Name.
    pub name: String,
    /// Its URL path within the site, when published.
    pub path: Option<String>,
    /// The sheets it shows ([`Sheet::id`]), sorted.
    pub sheet_ids: Vec<String>,
}
record!(Dashboard, Dashboard);

/// Whether a data source is published on its own or embedded in one workbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DatasourceKind {
    /// Published to the site; workbooks connect to it.
    Published,
    /// Part of one workbook.
    Embedded,
}

/// A database a data source connects to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamDatabase {
    /// The BI tool's connection type (`postgres`, `snowflake`, `sqlserver`, `excel-direct`).
    pub connection_type: Option<String>,
    /// The database's name.
    pub name: String,
}

/// A data source: a published one, or one embedded in a workbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Datasource {
    /// Site (content URL).
    pub site: String,
    /// Identifier (the Metadata API's id; embedded data sources have no LUID).
    pub id: String,
    /// LUID of a published data source.
    pub luid: Option<String>,
    /// Published or embedded.
    pub kind: DatasourceKind,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// For an embedded data source: its workbook's identifier (LUID).
    pub workbook_id: Option<String>,
    /// For a published data source: its project's name.
    pub project_name: Option<String>,
    /// Owner's user name.
    pub owner: Option<String>,
    /// Whether it holds an extract (a copy of the data) rather than a live connection.
    pub has_extracts: Option<bool>,
    /// Whether it is certified.
    pub certified: Option<bool>,
    /// The databases it connects to, sorted.
    pub upstream_databases: Vec<UpstreamDatabase>,
}
record!(Datasource, Datasource);

/// What a field is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FieldKind {
    /// A column of the data.
    Column,
    /// Computed by a formula.
    Calculated,
    /// Groups values of another field.
    Group,
    /// Bins a measure.
    Bin,
    /// A set of members.
    Set,
    /// Combines fields.
    Combined,
    /// A hierarchy of fields.
    Hierarchy,
    /// A published data source's field as a workbook sees it.
    Datasource,
    /// A kind this release does not know.
    Other,
}

/// A field of a data source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Field {
    /// Site (content URL).
    pub site: String,
    /// Identifier (the Metadata API's id).
    pub id: String,
    /// The data source it belongs to ([`Datasource::id`]).
    pub datasource_id: String,
    /// Name.
    pub name: String,
    /// What it is.
    pub kind: FieldKind,
    /// Data type as the BI tool names it (`STRING`, `INTEGER`, `DATETIME`).
    pub data_type: Option<String>,
    /// `DIMENSION` or `MEASURE`.
    pub role: Option<String>,
    /// A calculated field's formula.
    pub formula: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Whether it is hidden from the data source's users.
    pub hidden: Option<bool>,
    /// The folder it is shown in.
    pub folder: Option<String>,
}
record!(Field, Field);

/// A database table a BI record reads, named as the database connectors name tables.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTable {
    /// The BI tool's identifier of the table.
    pub id: String,
    /// The BI tool's connection type (`postgres`, `snowflake`).
    pub connection_type: Option<String>,
    /// Database, as the BI tool reports it (a database connector's `Table.database`).
    pub database: Option<String>,
    /// Schema (`Table.schema`).
    pub schema: Option<String>,
    /// Table name (`Table.name`).
    pub name: String,
    /// The fully qualified name as the BI tool writes it (`[public].[orders]`).
    pub full_name: Option<String>,
}

/// A custom SQL query a data source reads through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomSql {
    /// Site (content URL).
    pub site: String,
    /// Identifier (the Metadata API's id).
    pub id: String,
    /// Name.
    pub name: String,
    /// The query text, as the user wrote it.
    pub query: String,
    /// The connection type it runs on.
    pub connection_type: Option<String>,
    /// The database it runs in.
    pub database: Option<String>,
}
record!(CustomSql, CustomSql);

/// What a BI lineage edge connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BiLineageKind {
    /// A field reads a database column (`table` and `column`).
    FieldToColumn,
    /// A field is computed from another field (`toId`).
    FieldToField,
    /// A data source reads a database table (`table`).
    DatasourceToTable,
    /// An embedded data source reads a published one (`toId`).
    DatasourceToDatasource,
    /// A data source reads through a custom SQL query (`toId`).
    DatasourceToCustomSql,
    /// A custom SQL query reads a database table (`table`).
    CustomSqlToTable,
    /// A sheet shows a field (`toId`).
    SheetToField,
}

/// A lineage edge of a BI site: `fromId` reads (or shows) what `toId`, or `table` and
/// `column`, name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BiLineage {
    /// Site (content URL).
    pub site: String,
    /// What it connects.
    pub kind: BiLineageKind,
    /// The reading side: a field, data source, custom SQL query or sheet identifier.
    pub from_id: String,
    /// The read side, when it is a BI record (a field, data source or custom SQL query).
    pub to_id: Option<String>,
    /// The read side, when it is a database table (or holds the column read).
    pub table: Option<UpstreamTable>,
    /// The database column read, for `fieldToColumn`.
    pub column: Option<String>,
}
record!(BiLineage, BiLineage);

impl BiLineage {
    /// An edge from `from_id` to another BI record.
    pub fn to_record(site: &str, kind: BiLineageKind, from_id: &str, to_id: &str) -> Self {
        Self {
            site: site.to_owned(),
            kind,
            from_id: from_id.to_owned(),
            to_id: Some(to_id.to_owned()),
            table: None,
            column: None,
        }
    }

    /// An edge from `from_id` to a database table, or to one of its columns.
    pub fn to_table(
        site: &str,
        kind: BiLineageKind,
        from_id: &str,
        table: UpstreamTable,
        column: Option<String>,
    ) -> Self {
        Self {
            site: site.to_owned(),
            kind,
            from_id: from_id.to_owned(),
            to_id: None,
            table: Some(table),
            column,
        }
    }
}
