//! Tableau's own recorded REST answers, parsed by the Tableau source's XML models.
//!
//! The answers come from the test assets of Tableau's Python client (`tableauserverclient`,
//! MIT), which `scripts/install-tools.sh tableau-assets` fetches from PyPI into `.tools/` and
//! `scripts/test.sh` names in `OUTPOST_TEST_TABLEAU_ASSETS`. Every asset of a kind the source
//! reads is parsed, and each list must yield as many items as the document has elements: a
//! model that read nothing, or dropped items, fails here.

use std::path::{Path, PathBuf};

use metadata_extract::sources::tableau::xml::{
    self, DatasourcesResponse, ErrorResponse, ProjectsResponse, ServerInfoResponse, SignInResponse,
    SiteResponse, ViewsResponse, WorkbooksResponse,
};

fn assets() -> PathBuf {
    if let Some(dir) = std::env::var_os("OUTPOST_TEST_TABLEAU_ASSETS") {
        return PathBuf::from(dir);
    }
    // Where scripts/install-tools.sh puts them, for a `cargo test` run by hand.
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/tableau-assets/assets");
    assert!(
        installed.is_dir(),
        "Tableau's recorded answers are not installed: run scripts/install-tools.sh tableau-assets \
         (scripts/test.sh does), or point OUTPOST_TEST_TABLEAU_ASSETS at a folder of them"
    );
    installed
}

/// Elements named `local` (any prefix) in `text`, counted by an XML reader.
fn elements(text: &str, local: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut count = 0;
    loop {
        match reader.read_event().expect("well-formed") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.local_name().as_ref() == local.as_bytes() =>
            {
                count += 1;
            }
            quick_xml::events::Event::Eof => return count,
            _ => {}
        }
    }
}

/// What the source reads, by asset name: the model, and the list element it must count.
#[derive(Clone, Copy, Debug)]
enum Kind {
    SignIn,
    Error,
    ServerInfo,
    Site,
    Projects,
    Workbooks,
    Views,
    Datasources,
}

fn kind(name: &str) -> Option<Kind> {
    let stem = name.strip_suffix(".xml")?;
    Some(match stem {
        "auth_sign_in" | "auth_sign_in_impersonate" => Kind::SignIn,
        "auth_sign_in_error" | "server_info_404" => Kind::Error,
        "server_info_get" | "server_info_25" => Kind::ServerInfo,
        "site_get_by_id" | "site_get_by_name" => Kind::Site,
        "workbook_populate_views" | "workbook_populate_views_usage" => Kind::Views,
        s if s == "project_get" || s.starts_with("project_get_") => Kind::Projects,
        s if s == "workbook_get"
            || s == "workbook_get_all_fields"
            || s == "workbook_get_empty"
            || s == "workbook_get_invalid_date"
            || s.starts_with("workbook_get_page_") =>
        {
            Kind::Workbooks
        }
        "view_get" | "view_get_all_fields" | "view_get_usage" => Kind::Views,
        s if s == "datasource_get"
            || s == "datasource_get_all_fields"
            || s == "datasource_get_empty"
            || s == "datasource_get_no_owner" =>
        {
            Kind::Datasources
        }
        _ => return None,
    })
}

#[test]
fn every_recorded_answer_the_source_reads_parses_whole() {
    let dir = assets();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut parsed = Vec::new();
    for name in &names {
        let Some(kind) = kind(name) else { continue };
        let text = std::fs::read_to_string(dir.join(name)).expect("read");
        let (items, element) = match kind {
            Kind::SignIn => {
                let r: SignInResponse = xml::parse("sign-in", &text).expect(name);
                assert!(
                    !r.credentials.token.is_empty() && !r.credentials.site.id.is_empty(),
                    "{name}"
                );
                (1, "credentials")
            }
            Kind::Error => {
                let r: ErrorResponse = xml::parse("error", &text).expect(name);
                assert_eq!(r.error.code.len(), 6, "{name}: {:?}", r.error);
                (1, "error")
            }
            Kind::ServerInfo => {
                let r: ServerInfoResponse = xml::parse("serverinfo", &text).expect(name);
                assert!(r.server_info.rest_api_version.text.contains('.'), "{name}");
                (1, "serverInfo")
            }
            Kind::Site => {
                let r: SiteResponse = xml::parse("site", &text).expect(name);
                assert!(!r.site.id.is_empty(), "{name}");
                (1, "site")
            }
            Kind::Projects => {
                let r: ProjectsResponse = xml::parse("projects", &text).expect(name);
                (r.projects.items.len(), "project")
            }
            Kind::Workbooks => {
                let r: WorkbooksResponse = xml::parse("workbooks", &text).expect(name);
                (r.workbooks.items.len(), "workbook")
            }
            Kind::Views => {
                let r: ViewsResponse = xml::parse("views", &text).expect(name);
                (r.views.items.len(), "view")
            }
            Kind::Datasources => {
                let r: DatasourcesResponse = xml::parse("datasources", &text).expect(name);
                (r.datasources.items.len(), "datasource")
            }
        };
        assert_eq!(
            items,
            elements(&text, element),
            "{name}: parsed {items} <{element}> of {}",
            elements(&text, element)
        );
        parsed.push(name.clone());
    }
    println!(
        "parsed {} of Tableau's recorded REST answers ({} assets in all): {}",
        parsed.len(),
        names.len(),
        parsed.join(", ")
    );
    // Every kind the source reads is among them (an asset renamed upstream would drop out).
    assert!(
        parsed.len() >= 30,
        "only {} assets matched: {parsed:?}",
        parsed.len()
    );
}
