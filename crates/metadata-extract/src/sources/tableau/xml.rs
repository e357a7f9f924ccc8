//! The REST API's XML documents, as serde models read by quick-xml.
//!
//! Every answer is a `tsResponse` in the namespace `http://tableau.com/api`, written with a
//! default namespace by some servers and with a prefix (`ns0:`) by others: quick-xml's
//! deserializer matches elements by local name, so both read alike. Elements and attributes
//! a model does not name are ignored, so a newer server's additions are harmless.

use serde::Deserialize;

/// A document that could not be read as the answer expected.
#[derive(Debug, thiserror::Error)]
#[error("{what}: not the XML answer expected: {detail}")]
pub struct XmlError {
    /// The request it answered.
    pub what: &'static str,
    /// What was wrong (quick-xml's message).
    pub detail: String,
}

/// Reads `text` as `T`.
pub fn parse<T: for<'de> Deserialize<'de>>(what: &'static str, text: &str) -> Result<T, XmlError> {
    quick_xml::de::from_str(text).map_err(|e| XmlError {
        what,
        detail: e.to_string(),
    })
}

/// `<error code="401002"><summary>…</summary><detail>…</detail></error>`.
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    /// The six-digit code: the HTTP status and three more digits.
    #[serde(rename = "@code", default)]
    pub code: String,
    /// Short text.
    #[serde(default)]
    pub summary: String,
    /// Longer text.
    #[serde(default)]
    pub detail: String,
}

/// A `tsResponse` that carries an `error`.
#[derive(Debug, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ApiError,
}

/// `<pagination pageNumber="1" pageSize="100" totalAvailable="3"/>`.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Pagination {
    /// 1-based page number.
    #[serde(rename = "@pageNumber")]
    pub page_number: u32,
    /// Page size.
    #[serde(rename = "@pageSize")]
    pub page_size: u32,
    /// Items in all pages.
    #[serde(rename = "@totalAvailable")]
    pub total_available: u64,
}

/// The sign-in answer.
#[derive(Debug, Deserialize)]
pub struct SignInResponse {
    /// The session.
    pub credentials: Credentials,
}

/// `<credentials token="…"><site id="…" contentUrl="…"/><user id="…"/></credentials>`.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The session token (`X-Tableau-Auth`).
    #[serde(rename = "@token")]
    pub token: String,
    /// The site signed in to.
    pub site: SiteRef,
    /// The signed-in user.
    pub user: Option<IdRef>,
}

/// `<site id="…" contentUrl="…" name="…"/>`.
#[derive(Debug, Deserialize)]
pub struct SiteRef {
    /// LUID.
    #[serde(rename = "@id")]
    pub id: String,
    /// Content URL.
    #[serde(rename = "@contentUrl", default)]
    pub content_url: String,
    /// Name (in a site's own GET).
    #[serde(rename = "@name")]
    pub name: Option<String>,
}

/// The answer to `GET /sites/{id}`.
#[derive(Debug, Deserialize)]
pub struct SiteResponse {
    /// The site.
    pub site: SiteRef,
}

/// An element that only points at something by id (`<owner id="…"/>`).
#[derive(Clone, Debug, Deserialize)]
pub struct IdRef {
    /// LUID.
    #[serde(rename = "@id")]
    pub id: String,
    /// Name, where the server adds it.
    #[serde(rename = "@name")]
    pub name: Option<String>,
}

/// The serverinfo answer.
#[derive(Debug, Deserialize)]
pub struct ServerInfoResponse {
    /// The server.
    #[serde(rename = "serverInfo")]
    pub server_info: ServerInfo,
}

/// `<serverInfo><productVersion build="…">2024.2.1</productVersion><restApiVersion>3.23</restApiVersion></serverInfo>`.
#[derive(Debug, Deserialize)]
pub struct ServerInfo {
    /// The product version.
    #[serde(rename = "productVersion")]
    pub product_version: Option<Text>,
    /// The newest REST API version it speaks.
    #[serde(rename = "restApiVersion")]
    pub rest_api_version: Text,
}

/// An element's text.
#[derive(Debug, Default, Deserialize)]
pub struct Text {
    /// The text.
    #[serde(rename = "$text", default)]
    pub text: String,
}

/// `<tags><tag label="…"/></tags>`.
#[derive(Debug, Default, Deserialize)]
pub struct Tags {
    /// The tags.
    #[serde(rename = "tag", default)]
    pub tags: Vec<Tag>,
}

/// One tag.
#[derive(Debug, Deserialize)]
pub struct Tag {
    /// Its text.
    #[serde(rename = "@label")]
    pub label: String,
}

/// A page of a list (`GET /sites/{id}/projects` …): its `pagination`, and the list element
/// holding one element per item. Workbooks' own lists of views carry no `pagination`.
macro_rules! page {
    ($page:ident, $list:ident, $field:ident, $element:literal, $item:ident, $what:literal) => {
        #[doc = concat!("A page of ", $what, ".")]
        #[derive(Debug, Deserialize)]
        pub struct $page {
            /// Where the page stands.
            pub pagination: Option<Pagination>,
            #[doc = concat!("The `<", stringify!($field), ">` element.")]
            #[serde(default)]
            pub $field: $list,
        }

        #[doc = concat!("`<", stringify!($field), ">`: one `<", $element, ">` per item.")]
        #[derive(Debug, Default, Deserialize)]
        pub struct $list {
            /// Each item, in the server's order.
            #[serde(rename = $element, default)]
            pub items: Vec<$item>,
        }
    };
}

page!(
    ProjectsResponse,
    Projects,
    projects,
    "project",
    ProjectXml,
    "projects"
);
page!(
    WorkbooksResponse,
    Workbooks,
    workbooks,
    "workbook",
    WorkbookXml,
    "workbooks"
);
page!(
    ViewsResponse,
    Views,
    views,
    "view",
    ViewXml,
    "views (sheets, dashboards, stories)"
);
page!(
    DatasourcesResponse,
    Datasources,
    datasources,
    "datasource",
    DatasourceXml,
    "published data sources"
);

/// `<project id name description parentProjectId><owner id/></project>`.
#[derive(Debug, Deserialize)]
pub struct ProjectXml {
    /// LUID.
    #[serde(rename = "@id")]
    pub id: String,
    /// Name (missing: empty, rather than losing the page).
    #[serde(rename = "@name", default)]
    pub name: String,
    /// Description.
    #[serde(rename = "@description")]
    pub description: Option<String>,
    /// The enclosing project; absent at the top level.
    #[serde(rename = "@parentProjectId")]
    pub parent_project_id: Option<String>,
    /// Owner.
    pub owner: Option<IdRef>,
}

/// `<workbook id name description contentUrl webpageUrl createdAt updatedAt>` with its
/// project, owner and tags.
#[derive(Debug, Deserialize)]
pub struct WorkbookXml {
    /// LUID.
    #[serde(rename = "@id")]
    pub id: String,
    /// Name (missing: empty, rather than losing the page).
    #[serde(rename = "@name", default)]
    pub name: String,
    /// Description.
    #[serde(rename = "@description")]
    pub description: Option<String>,
    /// URL part.
    #[serde(rename = "@contentUrl")]
    pub content_url: Option<String>,
    /// Web page.
    #[serde(rename = "@webpageUrl")]
    pub webpage_url: Option<String>,
    /// Created (as written; one of Tableau's own samples holds an impossible date).
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    /// Updated.
    #[serde(rename = "@updatedAt")]
    pub updated_at: Option<String>,
    /// Its project; absent in a personal space.
    pub project: Option<IdRef>,
    /// Owner.
    pub owner: Option<IdRef>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

/// `<view id name contentUrl sheetType>` with its workbook.
#[derive(Debug, Deserialize)]
pub struct ViewXml {
    /// LUID.
    #[serde(rename = "@id")]
    pub id: String,
    /// Name (missing: empty, rather than losing the page).
    #[serde(rename = "@name", default)]
    pub name: String,
    /// URL path (`Superstore/sheets/Overview`).
    #[serde(rename = "@contentUrl")]
    pub content_url: Option<String>,
    /// `view` (a worksheet), `dashboard` or `story`; absent on old servers.
    #[serde(rename = "@sheetType")]
    pub sheet_type: Option<String>,
    /// Its workbook (absent in a workbook's own list).
    pub workbook: Option<IdRef>,
}

/// `<datasource id name type contentUrl>` with its project and owner.
#[derive(Debug, Deserialize)]
pub struct DatasourceXml {
    /// LUID.
    #[serde(rename = "@id")]
    pub id: String,
    /// Name (missing: empty, rather than losing the page).
    #[serde(rename = "@name", default)]
    pub name: String,
    /// Connection type (`postgres`, `excel-direct`).
    #[serde(rename = "@type")]
    pub connection_type: Option<String>,
    /// Its project (absent on some servers' answers).
    pub project: Option<IdRef>,
    /// Owner (absent when it has none).
    pub owner: Option<IdRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefixed_and_a_default_namespace_read_alike_and_unknown_parts_are_ignored() {
        let default = r#"<?xml version='1.0' encoding='UTF-8'?>
<tsResponse xmlns="http://tableau.com/api" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <pagination pageNumber="1" pageSize="100" totalAvailable="2"/>
  <projects>
    <project id="p1" name="Fïnance &amp; Ops" description="" contentPermissions="ManagedByOwner">
      <owner id="u1"/><contentsCounts projectCount="1" workbookCount="0"/>
    </project>
    <project id="p2" name="Reports" parentProjectId="p1" newerAttribute="x"><owner id="u1"/></project>
  </projects>
  <somethingNewer/>
</tsResponse>"#;
        let prefixed = default
            .replace("<tsResponse xmlns=", "<ns0:tsResponse xmlns:ns0=")
            .replace("</tsResponse>", "</ns0:tsResponse>")
            .replace("<pagination", "<ns0:pagination")
            .replace("<projects>", "<ns0:projects>")
            .replace("</projects>", "</ns0:projects>")
            .replace("<project ", "<ns0:project ")
            .replace("</project>", "</ns0:project>")
            .replace("<owner", "<ns0:owner");
        for text in [default, prefixed.as_str()] {
            let page: ProjectsResponse = parse("projects", text).expect("parses");
            let pagination = page.pagination.expect("pagination");
            assert_eq!(
                (
                    pagination.page_number,
                    pagination.page_size,
                    pagination.total_available
                ),
                (1, 100, 2)
            );
            let names: Vec<_> = page
                .projects
                .items
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            assert_eq!(names, ["Fïnance & Ops", "Reports"]);
            assert_eq!(
                page.projects.items[1].parent_project_id.as_deref(),
                Some("p1")
            );
            assert_eq!(page.projects.items[0].parent_project_id, None);
        }
    }

    #[test]
    fn an_empty_list_has_no_items_and_a_wrong_document_is_an_error() {
        let empty = r#"<tsResponse xmlns="http://tableau.com/api"><pagination pageNumber="1" pageSize="100" totalAvailable="0"/><workbooks/></tsResponse>"#;
        let page: WorkbooksResponse = parse("workbooks", empty).expect("parses");
        assert!(page.workbooks.items.is_empty());
        let error = parse::<SignInResponse>("sign-in", "<html>rate limited</html>")
            .expect_err("not a sign-in answer");
        assert!(
            error
                .to_string()
                .starts_with("sign-in: not the XML answer expected"),
            "{error}"
        );
    }
}
