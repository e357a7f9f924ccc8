//! The Metadata API queries the Tableau source sends, and the nodes they answer.
//!
//! Each query is shaped to stay well under Tableau's default node limit (20,000 objects per
//! answer) at its default page size: a node's nested lists are short (a workbook's sheets, a
//! field's upstream columns), and the long lists are read from their own side (sheet→field
//! edges from each field's `sheets`, not from each sheet). Tables are named inline where an
//! edge needs them, so no table map is held while a site is read.

use serde::Deserialize;

use super::graphql::Query;

/// Workbooks with their sheets and dashboards.
pub const WORKBOOKS: Query = Query {
    connection: "workbooksConnection",
    selection: "id luid name description projectName projectLuid vizportalUrlId \
                owner { luid username } \
                createdAt updatedAt tags { name } sheets { id luid name path } \
                dashboards { id luid name path sheets { id } }",
};

/// Published data sources and what they read.
pub const PUBLISHED_DATASOURCES: Query = Query {
    connection: "publishedDatasourcesConnection",
    selection: "id luid name description projectName owner { username } hasExtracts \
                isCertified upstreamDatabases { name connectionType } \
                upstreamTables { id name schema fullName connectionType database { name } }",
};

/// Embedded data sources, their workbook, and what they read.
pub const EMBEDDED_DATASOURCES: Query = Query {
    connection: "embeddedDatasourcesConnection",
    selection: "id name hasExtracts workbook { luid } upstreamDatabases { name connectionType } \
                upstreamTables { id name schema fullName connectionType database { name } } \
                upstreamDatasources { id }",
};

/// Fields of every data source, the sheets that show them, and what they read.
pub const FIELDS: Query = Query {
    connection: "fieldsConnection",
    selection: "__typename id name description isHidden folderName datasource { id } \
                sheets { id } upstreamFields { id } \
                upstreamColumns { name table { __typename id name \
                  ... on DatabaseTable { schema fullName connectionType database { name } } } } \
                ... on ColumnField { dataType role } \
                ... on CalculatedField { dataType role formula } \
                ... on GroupField { dataType role }",
};

/// Custom SQL queries and the tables they read.
pub const CUSTOM_SQL: Query = Query {
    connection: "customSQLTablesConnection",
    selection: "id name query connectionType database { name } \
                tables { id name schema fullName connectionType database { name } }",
};

/// A value that may be `null` (Tableau's schema lets most fields be): its default then.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A list that may be `null`, or hold `null`s (Tableau's schema lets both be): the
/// elements that are there.
pub(crate) fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let list = Option::<Vec<Option<T>>>::deserialize(deserializer)?;
    Ok(list.into_iter().flatten().flatten().collect())
}

/// An object known by its id.
#[derive(Debug, Deserialize)]
pub struct IdNode {
    /// Its id.
    pub id: String,
}

/// A user.
#[derive(Debug, Default, Deserialize)]
pub struct UserNode {
    /// LUID.
    #[serde(default)]
    pub luid: Option<String>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
}

/// An object known by its LUID (an embedded data source's workbook).
#[derive(Debug, Default, Deserialize)]
pub struct LuidNode {
    /// LUID.
    #[serde(default)]
    pub luid: Option<String>,
}

/// A tag.
#[derive(Debug, Deserialize)]
pub struct TagNode {
    /// Its text.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// A sheet or dashboard.
#[derive(Debug, Deserialize)]
pub struct ViewNode {
    /// Metadata API id.
    pub id: String,
    /// LUID; empty for a hidden one.
    #[serde(default)]
    pub luid: Option<String>,
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// URL path.
    #[serde(default)]
    pub path: Option<String>,
    /// A dashboard's sheets.
    #[serde(default, deserialize_with = "list")]
    pub sheets: Vec<IdNode>,
}

/// A node of [`WORKBOOKS`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkbookNode {
    /// Metadata API id.
    pub id: String,
    /// LUID.
    #[serde(default, deserialize_with = "nullable")]
    pub luid: String,
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Project name.
    #[serde(default)]
    pub project_name: Option<String>,
    /// Project LUID.
    #[serde(default)]
    pub project_luid: Option<String>,
    /// The number in its web page's URL.
    #[serde(default)]
    pub vizportal_url_id: Option<String>,
    /// Owner.
    #[serde(default)]
    pub owner: Option<UserNode>,
    /// Created.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Updated.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Tags.
    #[serde(default, deserialize_with = "list")]
    pub tags: Vec<TagNode>,
    /// Sheets.
    #[serde(default, deserialize_with = "list")]
    pub sheets: Vec<ViewNode>,
    /// Dashboards.
    #[serde(default, deserialize_with = "list")]
    pub dashboards: Vec<ViewNode>,
}

/// A database as a data source names it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseNode {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Connection type.
    #[serde(default)]
    pub connection_type: Option<String>,
}

/// A database table (or, through a column, a custom SQL table: `typename`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableNode {
    /// `DatabaseTable` or `CustomSQLTable`, where asked.
    #[serde(rename = "__typename", default)]
    pub typename: Option<String>,
    /// Metadata API id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Schema.
    #[serde(default)]
    pub schema: Option<String>,
    /// Fully qualified name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// Connection type.
    #[serde(default)]
    pub connection_type: Option<String>,
    /// Its database.
    #[serde(default)]
    pub database: Option<DatabaseNode>,
}

/// A node of [`PUBLISHED_DATASOURCES`] or [`EMBEDDED_DATASOURCES`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceNode {
    /// Metadata API id.
    pub id: String,
    /// LUID (published only).
    #[serde(default)]
    pub luid: Option<String>,
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Project name (published only).
    #[serde(default)]
    pub project_name: Option<String>,
    /// Owner (published only).
    #[serde(default)]
    pub owner: Option<UserNode>,
    /// Whether it holds an extract.
    #[serde(default)]
    pub has_extracts: Option<bool>,
    /// Whether it is certified (published only).
    #[serde(default)]
    pub is_certified: Option<bool>,
    /// Its workbook (embedded only).
    #[serde(default)]
    pub workbook: Option<LuidNode>,
    /// Databases it reads.
    #[serde(default, deserialize_with = "list")]
    pub upstream_databases: Vec<DatabaseNode>,
    /// Tables it reads.
    #[serde(default, deserialize_with = "list")]
    pub upstream_tables: Vec<TableNode>,
    /// Published data sources it reads (embedded only).
    #[serde(default, deserialize_with = "list")]
    pub upstream_datasources: Vec<IdNode>,
}

/// A column a field reads.
#[derive(Debug, Deserialize)]
pub struct ColumnNode {
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Its table.
    pub table: Option<TableNode>,
}

/// A node of [`FIELDS`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldNode {
    /// `ColumnField`, `CalculatedField` …
    #[serde(rename = "__typename")]
    pub typename: String,
    /// Metadata API id.
    pub id: String,
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Hidden.
    #[serde(default)]
    pub is_hidden: Option<bool>,
    /// Folder.
    #[serde(default)]
    pub folder_name: Option<String>,
    /// Its data source.
    #[serde(default)]
    pub datasource: Option<IdNode>,
    /// Sheets that show it.
    #[serde(default, deserialize_with = "list")]
    pub sheets: Vec<IdNode>,
    /// Fields it is computed from.
    #[serde(default, deserialize_with = "list")]
    pub upstream_fields: Vec<IdNode>,
    /// Columns it reads.
    #[serde(default, deserialize_with = "list")]
    pub upstream_columns: Vec<ColumnNode>,
    /// Data type (data fields only).
    #[serde(default)]
    pub data_type: Option<String>,
    /// Role (data fields only).
    #[serde(default)]
    pub role: Option<String>,
    /// Formula (calculated fields only).
    #[serde(default)]
    pub formula: Option<String>,
}

/// A node of [`CUSTOM_SQL`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomSqlNode {
    /// Metadata API id.
    pub id: String,
    /// Name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The query text.
    #[serde(default)]
    pub query: Option<String>,
    /// Connection type.
    #[serde(default)]
    pub connection_type: Option<String>,
    /// Its database.
    #[serde(default)]
    pub database: Option<DatabaseNode>,
    /// Tables it reads.
    #[serde(default, deserialize_with = "list")]
    pub tables: Vec<TableNode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tableau's schema lets names, lists and list elements be `null`: a node holding them
    /// all parses, keeping what is there.
    #[test]
    fn nulls_where_tableaus_schema_allows_them_parse() {
        let workbook: WorkbookNode = serde_json::from_value(serde_json::json!({
            "id": "w1", "luid": null, "name": null, "description": null,
            "projectName": null, "owner": null, "tags": null,
            "sheets": [null, {"id": "s1", "luid": "", "name": null, "path": null, "sheets": null}],
            "dashboards": [{"id": "d1", "name": "D", "sheets": [null, {"id": "s1"}]}]
        }))
        .expect("parses");
        assert_eq!((workbook.luid.as_str(), workbook.name.as_str()), ("", ""));
        assert!(workbook.tags.is_empty());
        assert_eq!(workbook.sheets.len(), 1);
        assert_eq!(workbook.dashboards[0].sheets.len(), 1);

        let field: FieldNode = serde_json::from_value(serde_json::json!({
            "__typename": "ColumnField", "id": "f1", "name": null, "datasource": null,
            "sheets": null, "upstreamFields": [null],
            "upstreamColumns": [{"name": null, "table": null}, null],
            "dataType": null, "role": null
        }))
        .expect("parses");
        assert_eq!(field.name, "");
        assert!(field.sheets.is_empty() && field.upstream_fields.is_empty());
        assert_eq!(field.upstream_columns.len(), 1);

        let source: DatasourceNode = serde_json::from_value(serde_json::json!({
            "id": "ds1", "name": null, "upstreamTables": [null, {"id": "t1", "name": null}],
            "upstreamDatabases": null, "upstreamDatasources": null
        }))
        .expect("parses");
        assert_eq!(source.upstream_tables.len(), 1);

        let sql: CustomSqlNode = serde_json::from_value(serde_json::json!({
            "id": "c1", "name": null, "query": null, "tables": null
        }))
        .expect("parses");
        assert!(sql.tables.is_empty());
    }
}
