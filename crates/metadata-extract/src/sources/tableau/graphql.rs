//! Tableau's Metadata API (GraphQL at `/api/metadata/graphql`): connection queries paged
//! with `first`/`after` in a stable order, each page small enough for the server's node limit.
//!
//! How each answer is taken, as Tableau documents its errors (`extensions.code`):
//! - `NODE_LIMIT_EXCEEDED` (a warning, with partial data): the page is dropped and asked
//!   again at half the size, down to one node; the smallest size reached is reported.
//! - `RATE_EXCEEDED`, HTTP 429 (with `Retry-After`), `TIME_LIMIT_EXCEEDED`, a timeout
//!   message, and transient 5xx: asked again with backoff, within a total time budget; past
//!   it the run fails with exit 75.
//! - `BACKFILL_RUNNING` (a warning): the data is kept, and the run is marked incomplete.
//! - `FEATURE_DISABLED`: the Metadata API is off on this Tableau Server; the error names the
//!   `tsm` command that turns it on.
//! - Any other error fails the run; any other warning is logged and the data kept.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::rest::{Rest, TableauError};
use crate::http::{self, HttpFailure, Retry};

/// The Metadata API's own failures, beside the transport's.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The REST side (sign-in, transport).
    #[error(transparent)]
    Rest(#[from] TableauError),
    /// The Metadata API is turned off on the server: exit 78.
    #[error(
        "the Metadata API is not enabled on this Tableau Server ({0}); an administrator turns it on with `tsm maintenance metadata-services enable`"
    )]
    Disabled(String),
    /// The signed-in user may not use the Metadata API: exit 77.
    #[error("the Metadata API refused this user: {0}")]
    AccessDenied(String),
    /// The server kept limiting or timing out past the time budget: exit 75.
    #[error("{connection}: still {reason} after {waited:?} (the time budget); try again later")]
    Exhausted {
        /// The connection queried.
        connection: &'static str,
        /// The last reason (`rate limited`, `timing out`).
        reason: String,
        /// How long it was tried.
        waited: Duration,
    },
    /// A single node is over the node limit: the query must be split.
    #[error("{connection}: one node alone exceeds the server's node limit: {message}")]
    NodeTooLarge {
        /// The connection queried.
        connection: &'static str,
        /// The server's message.
        message: String,
    },
    /// The server answered an error the protocol does not let us get past.
    #[error("{connection}: {message}")]
    Query {
        /// The connection queried.
        connection: &'static str,
        /// The errors, joined.
        message: String,
    },
    /// The answer is not what the query asks for.
    #[error("{connection}: unexpected answer: {detail}")]
    Protocol {
        /// The connection queried.
        connection: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The consumer of the nodes failed.
    #[error(transparent)]
    Consumer(Box<dyn std::error::Error + Send + Sync>),
}

/// One connection query: the root field, and the fields asked of each node.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    /// The root connection field (`workbooksConnection`).
    pub connection: &'static str,
    /// The selection of each node, in GraphQL (`id luid name`).
    pub selection: &'static str,
}

impl Query {
    /// The query text: one page, ordered by `ID` (unique, so the order is total and a
    /// cursor never skips or repeats a node).
    pub fn text(&self) -> String {
        format!(
            "query OutpostPage($first: Int!, $after: String) {{ {}(first: $first, after: $after, orderBy: {{field: ID, direction: ASC}}) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }}",
            self.connection, self.selection
        )
    }
}

#[derive(Deserialize)]
struct Answer<T> {
    #[serde(default = "Option::default")]
    data: Option<BTreeMap<String, Option<Page<T>>>>,
    #[serde(default, deserialize_with = "super::queries::list")]
    errors: Vec<GraphqlError>,
}

/// An answer's errors alone, for an answer whose data cannot be read.
#[derive(Deserialize)]
struct ErrorsOnly {
    #[serde(default, deserialize_with = "super::queries::list")]
    errors: Vec<GraphqlError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    #[serde(
        deserialize_with = "super::queries::list",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    nodes: Vec<T>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GraphqlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Debug, Default, Deserialize)]
struct Extensions {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    severity: Option<String>,
}

impl GraphqlError {
    fn code(&self) -> &str {
        self.extensions
            .as_ref()
            .and_then(|e| e.code.as_deref())
            .unwrap_or_default()
    }
    fn is_warning(&self) -> bool {
        self.extensions
            .as_ref()
            .and_then(|e| e.severity.as_deref())
            .is_some_and(|s| s.eq_ignore_ascii_case("warning"))
    }
    /// A time limit, by code or by the messages Tableau servers send without one.
    fn is_time_limit(&self) -> bool {
        self.code() == "TIME_LIMIT_EXCEEDED"
            || self.message.starts_with("Reached time limit")
            || self
                .message
                .starts_with("Execution canceled because timeout")
    }
}

/// What reading one connection took.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Pages read (the ones asked again included).
    pub requests: u32,
    /// Nodes passed on.
    pub nodes: u64,
    /// The smallest page size the node limit forced, if it forced one.
    pub smallest_page: Option<u32>,
    /// Whether the server said its metadata was still being built (`BACKFILL_RUNNING`).
    pub backfill_running: bool,
}

/// The Metadata API client, on the REST client's session.
pub struct Metadata<'a> {
    rest: &'a Rest,
    /// Backoff and the total time budget for rate limits and time limits.
    pub retry: Retry,
    /// Where every query sent is listed (the manifest's query audit), with the nodes it
    /// returned.
    pub audit: crate::audit::Audit,
}

impl<'a> Metadata<'a> {
    /// A client on `rest`'s session.
    pub fn new(rest: &'a Rest, retry: Retry) -> Self {
        Self {
            rest,
            retry,
            audit: crate::audit::Audit::default(),
        }
    }

    /// Every node of `query`, in `ID` order, `first` at a time (halved on the node limit),
    /// each passed to `each` once, as pages arrive.
    pub async fn each<T: DeserializeOwned>(
        &self,
        query: Query,
        first: u32,
        mut each: impl FnMut(T) -> Result<(), MetadataError>,
    ) -> Result<Report, MetadataError> {
        let text = query.text();
        let mut report = Report::default();
        let mut first = first.max(1);
        let mut after: Option<String> = None;
        // Set when the server limits or times out; cleared by a page that succeeds.
        let mut waiting: Option<(Instant, u32)> = None;
        loop {
            report.requests += 1;
            let variables = json!({ "first": first, "after": after });
            let mut sent = self.audit.start(&text);
            let body = self.post(query.connection, &text, &variables).await?;
            // An answer is judged by its errors before its data: one that carries errors may
            // hold data of another shape, or none (Tableau's recorded time-limit answer holds
            // a list where the query asked for a connection).
            let mut unreadable = None;
            let answer: Answer<T> = match serde_json::from_slice(&body) {
                Ok(answer) => answer,
                Err(error) => match serde_json::from_slice::<ErrorsOnly>(&body) {
                    Ok(ErrorsOnly { errors }) if !errors.is_empty() => {
                        unreadable = Some(error.to_string());
                        Answer { data: None, errors }
                    }
                    _ => {
                        return Err(MetadataError::Protocol {
                            connection: query.connection,
                            detail: error.to_string(),
                        });
                    }
                },
            };
            drop(body);
            let mut partial = false;
            let mut failures = Vec::new();
            let mut retry_reason = None;
            for error in &answer.errors {
                match error.code() {
                    "NODE_LIMIT_EXCEEDED" => partial = true,
                    "BACKFILL_RUNNING" => report.backfill_running = true,
                    "RATE_EXCEEDED" => retry_reason = Some("rate limited"),
                    "FEATURE_DISABLED" => {
                        return Err(MetadataError::Disabled(error.message.clone()));
                    }
                    "ACCESS_DENIED" => {
                        return Err(MetadataError::AccessDenied(error.message.clone()));
                    }
                    _ if error.is_time_limit() => retry_reason = Some("timing out"),
                    _ if error.is_warning() => {
                        tracing::warn!(connection = query.connection, code = error.code(), message = %error.message, "Metadata API warning");
                    }
                    _ => failures.push(format!("{} {}", error.code(), error.message)),
                }
            }
            if !failures.is_empty() {
                return Err(MetadataError::Query {
                    connection: query.connection,
                    message: failures.join("; "),
                });
            }
            if partial {
                // A partial page is never used: the same page, at half the size.
                if first == 1 {
                    return Err(MetadataError::NodeTooLarge {
                        connection: query.connection,
                        message: "NODE_LIMIT_EXCEEDED at a page of 1".into(),
                    });
                }
                first = (first / 2).max(1);
                report.smallest_page = Some(first);
                tracing::info!(
                    connection = query.connection,
                    first,
                    "node limit: asking again with a smaller page"
                );
                continue;
            }
            if let Some(reason) = retry_reason {
                self.wait(query.connection, &mut waiting, reason.into())
                    .await?;
                continue;
            }
            waiting = None;
            let page = answer
                .data
                .and_then(|mut data| data.remove(query.connection))
                .flatten()
                .ok_or_else(|| MetadataError::Protocol {
                    connection: query.connection,
                    detail: unreadable.unwrap_or_else(|| "no data for the connection".into()),
                })?;
            sent.rows(page.nodes.len() as u64);
            sent.done();
            for node in page.nodes {
                report.nodes += 1;
                each(node)?;
            }
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(cursor)) => {
                    if after.as_deref() == Some(cursor.as_str()) {
                        return Err(MetadataError::Protocol {
                            connection: query.connection,
                            detail: "the next page's cursor is the current one".into(),
                        });
                    }
                    after = Some(cursor);
                }
                (true, None) => {
                    return Err(MetadataError::Protocol {
                        connection: query.connection,
                        detail: "hasNextPage without an endCursor".into(),
                    });
                }
                (false, _) => return Ok(report),
            }
        }
    }

    /// Waits before asking again, or fails once the time budget is spent.
    async fn wait(
        &self,
        connection: &'static str,
        waiting: &mut Option<(Instant, u32)>,
        reason: String,
    ) -> Result<(), MetadataError> {
        let (since, attempt) = waiting.get_or_insert((Instant::now(), 0));
        *attempt += 1;
        let waited = since.elapsed();
        if waited >= self.retry.budget {
            return Err(MetadataError::Exhausted {
                connection,
                reason,
                waited,
            });
        }
        let wait = self
            .retry
            .backoff(*attempt, None)
            .min(self.retry.budget.saturating_sub(waited));
        tracing::debug!(connection, %reason, ?wait, "Metadata API: waiting before asking again");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Posts one query on the session (renewed once on 401).
    async fn post(
        &self,
        connection: &'static str,
        text: &str,
        variables: &serde_json::Value,
    ) -> Result<bytes::Bytes, MetadataError> {
        let url = format!("{}/api/metadata/graphql", self.rest.server());
        let body =
            serde_json::to_vec(&json!({ "query": text, "variables": variables })).map_err(|e| {
                MetadataError::Protocol {
                    connection,
                    detail: e.to_string(),
                }
            })?;
        let mut session = self.rest.session().await?;
        let mut renewed = false;
        loop {
            let token = session.token.clone();
            // HTTP 429 (with its Retry-After) and 5xx are retried here, within the
            // Metadata API's own budget; past it, exit 75.
            let sent = http::send(&self.retry, connection, |_| {
                self.rest
                    .http()
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("X-Tableau-Auth", &token)
                    .body(body.clone())
            })
            .await;
            match sent {
                Ok(bytes) => return Ok(bytes),
                Err(HttpFailure::Status { status, .. })
                    if status == StatusCode::UNAUTHORIZED && !renewed =>
                {
                    session = self.rest.renew(&session).await?;
                    renewed = true;
                }
                Err(HttpFailure::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                    return Err(MetadataError::Disabled(
                        "HTTP 404 from /api/metadata/graphql".into(),
                    ));
                }
                Err(other) => {
                    return Err(MetadataError::Rest(super::rest::failure(connection, other)));
                }
            }
        }
    }
}
