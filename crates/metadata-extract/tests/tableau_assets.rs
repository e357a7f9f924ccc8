//! Tableau's own recorded answers: every REST answer of a kind the source reads, parsed by the
//! Tableau source's XML models; and the Metadata API's recorded pages and time-limit answer,
//! replayed to the source's GraphQL client by a server that answers with them alone.
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

// ---------------------------------------------------------------------------------------
// The Metadata API's recorded answers, replayed to the source's client
// ---------------------------------------------------------------------------------------

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use metadata_extract::SourceSecret;
use metadata_extract::http::Retry;
use metadata_extract::sources::tableau::graphql::Metadata;
use metadata_extract::sources::tableau::queries::{self, DatasourceNode};
use metadata_extract::sources::tableau::rest::{Connection, Rest};

/// A server answering with Tableau's recorded documents only: sign-in with
/// `auth_sign_in.xml`; the Metadata API with `metadata_query_error.json` (the time limit, as
/// a Tableau server words it) once, then `metadata_paged_{1,2,3}.json` by the cursor asked
/// (none: the first; each page's `endCursor`: the next). Answers the URL and the bodies seen.
async fn recorded_server(dir: &Path) -> (String, Arc<Mutex<Vec<String>>>) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("asset");
    let sign_in = read("auth_sign_in.xml");
    let time_limit = read("metadata_query_error.json");
    let pages: Vec<(Option<String>, String)> = (1..=3)
        .scan(None, |cursor: &mut Option<String>, n| {
            let text = read(&format!("metadata_paged_{n}.json"));
            let value: serde_json::Value = serde_json::from_str(&text).expect("json");
            let asked = cursor.clone();
            *cursor = value["data"]["publishedDatasourcesConnection"]["pageInfo"]["endCursor"]
                .as_str()
                .map(str::to_owned);
            Some((asked, text))
        })
        .collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let state = Arc::new((sign_in, time_limit, pages, seen.clone(), Mutex::new(false)));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let (sign_in, time_limit, pages, seen, timed_out) = &*state;
                            let path = request.uri().path().to_owned();
                            let body = request.into_body().collect().await?.to_bytes();
                            let text = String::from_utf8_lossy(&body).into_owned();
                            seen.lock().expect("seen").push(format!("{path} {text}"));
                            let answer = if path.ends_with("/auth/signin") {
                                sign_in.clone()
                            } else if path == "/api/metadata/graphql" {
                                let asked: serde_json::Value =
                                    serde_json::from_str(&text).expect("a GraphQL request");
                                let after = asked["variables"]["after"].as_str().map(str::to_owned);
                                let mut first = timed_out.lock().expect("once");
                                if !*first {
                                    *first = true;
                                    time_limit.clone()
                                } else {
                                    pages
                                        .iter()
                                        .find(|(cursor, _)| *cursor == after)
                                        .map(|(_, page)| page.clone())
                                        .unwrap_or_else(|| {
                                            panic!("no recorded page after {after:?}")
                                        })
                                }
                            } else {
                                String::new()
                            };
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(
                                answer,
                            ))))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

/// Tableau's recorded `publishedDatasourcesConnection` pages (base64 JSON cursors, as the
/// server makes them) and its recorded time-limit answer (`extensions: null`), replayed: the
/// time limit is waited out, every page's nodes are read once in order, each cursor is sent
/// back as it came, and paging stops where the last page says.
#[tokio::test]
async fn recorded_metadata_api_pages_are_followed_to_the_end_after_a_recorded_time_limit() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = assets();
    let (url, seen) = recorded_server(&dir).await;
    let fast = Retry {
        attempts: 5,
        first: Duration::from_millis(1),
        max: Duration::from_millis(5),
        budget: Duration::from_secs(10),
    };
    let rest = Rest::new(
        Connection {
            server: url,
            site: String::new(),
            token_name: "recorded".into(),
            token_secret: SourceSecret::new("recorded-secret"),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            retry: fast,
        },
        "3.23".into(),
    );
    let mut ids = Vec::new();
    let report = Metadata::new(&rest, fast)
        .each(queries::PUBLISHED_DATASOURCES, 1, |node: DatasourceNode| {
            ids.push(node.id);
            Ok(())
        })
        .await
        .expect("the recorded pages are read");
    let expected: Vec<String> = (1..=3)
        .flat_map(|n| {
            let text = std::fs::read_to_string(dir.join(format!("metadata_paged_{n}.json")))
                .expect("asset");
            let value: serde_json::Value = serde_json::from_str(&text).expect("json");
            value["data"]["publishedDatasourcesConnection"]["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|n| n["id"].as_str().expect("id").to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(report.nodes, 3);
    let graphql = seen
        .lock()
        .expect("seen")
        .iter()
        .filter(|s| s.starts_with("/api/metadata/graphql"))
        .count();
    assert_eq!(graphql, 4, "the time limit once, then three pages");
    println!(
        "replayed Tableau's recorded Metadata API answers: metadata_query_error.json, then \
         metadata_paged_1..3.json ({} nodes)",
        ids.len()
    );
}
