//! Why a delivery failed, and whether a retry may help.

use std::path::PathBuf;

/// Exit codes of `outpost upload` (sysexits.h), read by the WorkflowTemplate's retry policy:
/// only [`exit::TEMPORARY`] is retried.
pub mod exit {
    /// Bad arguments: an unknown bucket scheme, an invalid run id.
    pub const USAGE: u8 = 64;
    /// The output folder is inconsistent: a file differs from its manifest entry.
    pub const DATA: u8 = 65;
    /// The output folder has no manifest: extraction did not finish.
    pub const NO_INPUT: u8 = 66;
    /// An answer the protocol does not define (a control plane off its API document).
    pub const PROTOCOL: u8 = 76;
    /// A failure a retry may cure: the store kept answering 5xx, timing out, dropping.
    pub const TEMPORARY: u8 = 75;
    /// The store or a pre-signed URL refused the request (403, expired, tampered).
    pub const NO_PERMISSION: u8 = 77;
    /// Configuration that cannot work: missing credentials, an unreadable CA bundle.
    pub const CONFIG: u8 = 78;
}

/// Why a delivery failed. No variant carries a credential or a pre-signed URL's query string.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The destination URL cannot be used.
    #[error("destination `{url}`: {reason}")]
    Destination {
        /// The URL as given (bucket URLs carry no credentials).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A run identifier cannot be used as a path segment.
    #[error("{field} `{value}`: {reason}")]
    RunId {
        /// `connection`, `job-id` or `run-id`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The output folder has no `manifest.json`: extraction did not finish, nothing is sent.
    #[error("{}: no manifest.json; extraction did not finish, so nothing is delivered", dir.display())]
    NoManifest {
        /// The output folder.
        dir: PathBuf,
    },
    /// The output folder's manifest or files do not agree; nothing more is sent.
    #[error("{}: {problem}", path.display())]
    Inconsistent {
        /// The file concerned.
        path: PathBuf,
        /// What disagrees.
        problem: String,
    },
    /// The manifest belongs to another run than the arguments name.
    #[error("manifest.json belongs to {field} `{found}`, but the arguments name `{expected}`")]
    WrongRun {
        /// The identity field that differs.
        field: &'static str,
        /// What the arguments say.
        expected: String,
        /// What the manifest says.
        found: String,
    },
    /// A local file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Credentials or other configuration are missing or unreadable.
    #[error("{0}")]
    Config(String),
    /// The object store refused the request: wrong credentials, no permission.
    #[error(
        "{location}: the store refused the request (check the credentials and the bucket policy): {detail}"
    )]
    Refused {
        /// The object (bucket-relative).
        location: String,
        /// The store's answer, with every URL's query string removed.
        detail: String,
    },
    /// The object store kept failing after every retry.
    #[error("{location}: {detail}")]
    Store {
        /// The object (bucket-relative).
        location: String,
        /// The last answer, with every URL's query string removed.
        detail: String,
    },
    /// A pre-signed URL was rejected and refreshing it did not help (expired, tampered,
    /// signed for another object).
    #[error(
        "{path}: the upload URL for {target} was rejected with {status}{}",
        detail_suffix(detail)
    )]
    UrlRejected {
        /// The run-relative path of the file.
        path: String,
        /// `scheme://host/path` of the URL, never its query (the signature).
        target: String,
        /// The HTTP status.
        status: u16,
        /// The store's error code, if it gave one (`AccessDenied`, `AuthenticationFailed`).
        detail: Option<String>,
    },
    /// The upload URLs on hand cannot be used; nothing was uploaded.
    #[error("upload URLs: {0}")]
    Urls(String),
    /// A pre-signed upload kept failing transiently until its retry budget ran out.
    #[error("{path}: upload to {target} kept failing until the retry budget ran out: {last}")]
    UrlRetriesExhausted {
        /// The run-relative path of the file.
        path: String,
        /// `scheme://host/path` of the URL.
        target: String,
        /// The last failure.
        last: String,
    },
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

impl DeliveryError {
    /// The process exit code for this failure (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Destination { .. } | Self::RunId { .. } | Self::WrongRun { .. } => exit::USAGE,
            Self::Inconsistent { .. } => exit::DATA,
            Self::NoManifest { .. } | Self::Read { .. } => exit::NO_INPUT,
            Self::Config(_) | Self::Urls(_) => exit::CONFIG,
            Self::Refused { .. } | Self::UrlRejected { .. } => exit::NO_PERMISSION,
            Self::Store { .. } | Self::UrlRetriesExhausted { .. } => exit::TEMPORARY,
        }
    }

    /// Classifies an object-store error for `location`.
    pub fn from_store(location: impl Into<String>, error: object_store::Error) -> Self {
        let location = location.into();
        let detail = redact_urls(&chain(&error));
        match &error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Self::Refused { location, detail },
            _ if is_refusal(&detail) => Self::Refused { location, detail },
            _ => Self::Store { location, detail },
        }
    }
}

/// An error and its causes, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// Removes the query string of every `http(s)://` URL in `text`: a SAS token or a pre-signed
/// URL's signature is a credential, and stores' error messages quote request URLs.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Schemes are case-insensitive (`HTTPS://…?X-Amz-Signature=…` is as live as lowercase);
    // ASCII lowercasing keeps byte offsets, so positions found in the copy hold in `rest`.
    while let Some(start) = rest.to_ascii_lowercase().find("http") {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let lower = from.get(..8).unwrap_or(from).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            out.push_str(&from[..4]);
            rest = &from[4..];
            continue;
        }
        let end = from
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
            .unwrap_or(from.len());
        let url = &from[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?<redacted>");
            }
            None => out.push_str(url),
        }
        rest = &from[end..];
    }
    out.push_str(rest);
    out
}

/// Object stores report some 403s as generic errors; the text is the only clue.
fn is_refusal(text: &str) -> bool {
    text.contains("403 Forbidden")
        || text.contains("401 Unauthorized")
        || text.contains("AccessDenied")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("AuthenticationFailed")
        || text.contains("InvalidAccessKeyId")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_cut_from_quoted_urls() {
        let text = "Error performing PUT https://acct.blob.core.windows.net/c/x?sv=2022&sig=SECRET in 1s: 'http://h:1/p?X-Amz-Signature=SECRET2' then http://plain/path";
        let shown = redact_urls(text);
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("https://acct.blob.core.windows.net/c/x?<redacted> in 1s"),
            "{shown}"
        );
        assert!(shown.contains("http://plain/path"), "{shown}");
        assert_eq!(redact_urls("no urls, just httpd"), "no urls, just httpd");
    }
}
