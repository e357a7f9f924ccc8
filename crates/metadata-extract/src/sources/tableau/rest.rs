//! Tableau's REST API: the server's version, sign-in with a Personal Access Token, one
//! session for the whole run, and paged lists.
//!
//! A Personal Access Token holds one session at a time: signing in again ends the session
//! before. So the client signs in once, shares that session with the Metadata API client,
//! and signs in again only when the server says the session is gone (401), once, and only
//! if no other request has already done so.

use std::collections::HashSet;

use bytes::Bytes;
use reqwest::StatusCode;
use serde::Deserialize;

use super::xml::{self, ApiError, ErrorResponse, Pagination, ServerInfo, XmlError};
use crate::SourceSecret;
use crate::http::{self, HttpFailure, Retry};

/// The REST API version asked for the server's own version: `serverinfo` exists from 2.4
/// (Tableau Server 10.1) on.
const DISCOVERY_VERSION: &str = "2.4";
/// The largest page the REST API serves.
pub const PAGE_MAX: u32 = 1000;

/// Why a Tableau call failed.
#[derive(Debug, thiserror::Error)]
pub enum TableauError {
    /// The sign-in was refused (a wrong, expired or revoked token, or a wrong site): exit 77.
    #[error("sign-in refused ({code}): {summary}: {detail}")]
    Login {
        /// Tableau's error code (`401001`).
        code: String,
        /// Its summary.
        summary: String,
        /// Its detail.
        detail: String,
    },
    /// No answer: TLS refused, or the server unreachable after every retry.
    #[error(transparent)]
    Transport(#[from] http::TransportError),
    /// The server answered an error no retry can help.
    #[error("{what}: HTTP {status}{}", api.as_ref().map(|e| format!(" ({}): {}: {}", e.code, e.summary, e.detail)).unwrap_or_default())]
    Http {
        /// The request.
        what: &'static str,
        /// The status.
        status: u16,
        /// Tableau's error document, when the answer held one.
        api: Option<ApiError>,
    },
    /// A REST API version too old for this connector.
    #[error("{what} REST API {found}; the Tableau source needs {needed} or later ({why})")]
    Version {
        /// Whose version (`the server answers`, `` `api-version` asks for ``).
        what: &'static str,
        /// The version.
        found: String,
        /// What is needed.
        needed: &'static str,
        /// Why.
        why: &'static str,
    },
    /// An answer that is not the document expected.
    #[error(transparent)]
    Xml(#[from] XmlError),
}

/// Where and as whom to sign in.
#[derive(Debug)]
pub struct Connection {
    /// `https://host[:port]`, without a trailing `/`.
    pub server: String,
    /// The site's content URL (empty: a Tableau Server's Default site).
    pub site: String,
    /// The Personal Access Token's name.
    pub token_name: String,
    /// Its secret.
    pub token_secret: SourceSecret,
    /// The HTTP client (TLS, proxy and CA set).
    pub http: reqwest::Client,
    /// Retries.
    pub retry: Retry,
}

/// One signed-in session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token (`X-Tableau-Auth`).
    pub token: String,
    /// The site's LUID.
    pub site_id: String,
    /// Counts sign-ins: a request that failed on session `n` signs in again only if the
    /// session is still `n`.
    generation: u64,
}

/// The REST client: one connection, one version, one session at a time.
pub struct Rest {
    connection: Connection,
    version: String,
    session: tokio::sync::Mutex<Option<Session>>,
}

/// Maps a failure of the retry loop, reading Tableau's error document where there is one.
pub(super) fn failure(what: &'static str, failure: HttpFailure) -> TableauError {
    match failure {
        HttpFailure::Transport(error) => TableauError::Transport(error),
        HttpFailure::Status { status, body } => TableauError::Http {
            what,
            status: status.as_u16(),
            api: api_error(&body),
        },
    }
}

fn api_error(body: &Bytes) -> Option<ApiError> {
    let text = std::str::from_utf8(body).ok()?;
    xml::parse::<ErrorResponse>("error", text)
        .ok()
        .map(|e| e.error)
}

/// The body as text, borrowed: an answer is parsed where it lies, not copied first.
fn text<'b>(what: &'static str, body: &'b Bytes) -> Result<&'b str, TableauError> {
    std::str::from_utf8(body).map_err(|e| {
        TableauError::Xml(XmlError {
            what,
            detail: e.to_string(),
        })
    })
}

/// A version as numbers (`3.21` → `[3, 21]`), for comparing.
pub fn version_number(version: &str) -> Vec<u32> {
    version
        .trim()
        .split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

/// The server's product and newest REST API version, asked without signing in.
pub async fn server_info(
    http: &reqwest::Client,
    server: &str,
    retry: &Retry,
) -> Result<ServerInfo, TableauError> {
    let what = "serverinfo";
    let url = format!("{server}/api/{DISCOVERY_VERSION}/serverinfo");
    let body = http::send(retry, what, |_| http.get(&url))
        .await
        .map_err(|f| failure(what, f))?;
    let answer: xml::ServerInfoResponse = xml::parse(what, text(what, &body)?)?;
    Ok(answer.server_info)
}

/// A page of a REST list: where it stands, and its items.
pub trait Page: for<'de> Deserialize<'de> {
    /// One item.
    type Item;
    /// Where the page stands, when the list is paged.
    fn pagination(&self) -> Option<Pagination>;
    /// The items.
    fn into_items(self) -> Vec<Self::Item>;
    /// An item's identifier (a list that shifts while it is paged must not repeat one).
    fn id(item: &Self::Item) -> &str;
}

macro_rules! page {
    ($page:ty, $field:ident, $item:ty) => {
        impl Page for $page {
            type Item = $item;
            fn pagination(&self) -> Option<Pagination> {
                self.pagination
            }
            fn into_items(self) -> Vec<$item> {
                self.$field.items
            }
            fn id(item: &$item) -> &str {
                &item.id
            }
        }
    };
}
page!(xml::ProjectsResponse, projects, xml::ProjectXml);
page!(xml::WorkbooksResponse, workbooks, xml::WorkbookXml);
page!(xml::ViewsResponse, views, xml::ViewXml);
page!(xml::DatasourcesResponse, datasources, xml::DatasourceXml);

impl Rest {
    /// A client speaking REST API `version` (from [`server_info`], or the connection's).
    pub fn new(connection: Connection, version: String) -> Self {
        Self {
            connection,
            version,
            session: tokio::sync::Mutex::new(None),
        }
    }

    /// The REST API version in use.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's address.
    pub fn server(&self) -> &str {
        &self.connection.server
    }

    /// The HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.connection.http
    }

    /// The retry policy.
    pub fn retry(&self) -> &Retry {
        &self.connection.retry
    }

    /// The current session, signing in if there is none.
    pub async fn session(&self) -> Result<Session, TableauError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref() {
            return Ok(session.clone());
        }
        let session = self.sign_in(0).await?;
        *current = Some(session.clone());
        Ok(session)
    }

    /// Signs in again after `failed` was refused, unless another request already has.
    pub async fn renew(&self, failed: &Session) -> Result<Session, TableauError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref()
            && session.generation != failed.generation
        {
            return Ok(session.clone());
        }
        let session = self.sign_in(failed.generation + 1).await?;
        *current = Some(session.clone());
        Ok(session)
    }

    async fn sign_in(&self, generation: u64) -> Result<Session, TableauError> {
        let what = "sign-in";
        let c = &self.connection;
        // Attribute values are escaped: a token name or site may hold any character.
        let body = format!(
            r#"<tsRequest><credentials personalAccessTokenName="{}" personalAccessTokenSecret="{}"><site contentUrl="{}"/></credentials></tsRequest>"#,
            quick_xml::escape::escape(c.token_name.as_str()),
            quick_xml::escape::escape(c.token_secret.expose()),
            quick_xml::escape::escape(c.site.as_str()),
        );
        let url = format!("{}/api/{}/auth/signin", c.server, self.version);
        let answer = http::send(&c.retry, what, |_| {
            c.http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/xml")
                .body(body.clone())
        })
        .await;
        let body = match answer {
            Ok(body) => body,
            Err(HttpFailure::Status { status, body })
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::NOT_FOUND =>
            {
                // 401001: a wrong, expired or revoked token; 404000: no such site.
                let api = api_error(&body).unwrap_or_default();
                return Err(TableauError::Login {
                    code: if api.code.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        api.code
                    },
                    summary: api.summary,
                    detail: api.detail,
                });
            }
            Err(other) => return Err(failure(what, other)),
        };
        let answer: xml::SignInResponse = xml::parse(what, text(what, &body)?)?;
        tracing::debug!(site = %answer.credentials.site.id, "signed in to Tableau");
        Ok(Session {
            token: answer.credentials.token,
            site_id: answer.credentials.site.id,
            generation,
        })
    }

    /// Ends the session (best effort: it expires on its own otherwise).
    pub async fn sign_out(&self) {
        let Some(session) = self.session.lock().await.take() else {
            return;
        };
        let c = &self.connection;
        let url = format!("{}/api/{}/auth/signout", c.server, self.version);
        let once = Retry {
            attempts: 1,
            ..c.retry
        };
        if let Err(error) = http::send(&once, "sign-out", |_| {
            c.http.post(&url).header("X-Tableau-Auth", &session.token)
        })
        .await
        {
            tracing::debug!(error = %failure("sign-out", error), "Tableau sign-out failed");
        }
    }

    /// `GET /api/{version}/sites/{site}/{path}` with the session; on 401 the session is
    /// renewed once and the request sent again.
    pub async fn get_site(
        &self,
        what: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Bytes, TableauError> {
        let c = &self.connection;
        let mut session = self.session().await?;
        let mut renewed = false;
        loop {
            let url = if path.is_empty() {
                format!(
                    "{}/api/{}/sites/{}",
                    c.server, self.version, session.site_id
                )
            } else {
                format!(
                    "{}/api/{}/sites/{}/{path}",
                    c.server, self.version, session.site_id
                )
            };
            let token = session.token.clone();
            match http::send(&c.retry, what, |_| {
                c.http
                    .get(&url)
                    .query(query)
                    .header("X-Tableau-Auth", &token)
            })
            .await
            {
                Ok(body) => return Ok(body),
                Err(HttpFailure::Status { status, .. })
                    if status == StatusCode::UNAUTHORIZED && !renewed =>
                {
                    tracing::info!(what, "the Tableau session ended; signing in again");
                    session = self.renew(&session).await?;
                    renewed = true;
                }
                Err(other) => return Err(failure(what, other)),
            }
        }
    }

    /// The signed-in site (`GET /sites/{id}`): its name, where the server gives it.
    pub async fn site(&self) -> Result<xml::SiteRef, TableauError> {
        let what = "site";
        let body = self.get_site(what, "", &[]).await?;
        let answer: xml::SiteResponse = xml::parse(what, text(what, &body)?)?;
        Ok(answer.site)
    }

    /// Every item of a paged list (`projects`, `workbooks`, `views`, `datasources`), in the
    /// server's order, `page_size` at a time (at most [`PAGE_MAX`]), each passed to `each`
    /// once: an item that a shifting list serves twice is passed once.
    pub async fn each<P: Page>(
        &self,
        what: &'static str,
        path: &str,
        page_size: u32,
        mut each: impl FnMut(P::Item) -> Result<(), TableauError>,
    ) -> Result<u32, TableauError> {
        let page_size = page_size.clamp(1, PAGE_MAX);
        let mut seen = HashSet::new();
        let mut number = 1_u32;
        loop {
            let body = self
                .get_site(
                    what,
                    path,
                    &[
                        ("pageSize", page_size.to_string()),
                        ("pageNumber", number.to_string()),
                    ],
                )
                .await?;
            let page: P = xml::parse(what, text(what, &body)?)?;
            drop(body);
            let pagination = page.pagination();
            let items = page.into_items();
            let empty = items.is_empty();
            for item in items {
                if seen.insert(P::id(&item).to_owned()) {
                    each(item)?;
                }
            }
            let Some(pagination) = pagination else {
                return Ok(number);
            };
            let served = u64::from(number) * u64::from(pagination.page_size.max(1));
            if empty || served >= pagination.total_available {
                return Ok(number);
            }
            number += 1;
        }
    }
}
