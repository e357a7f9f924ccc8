//! Why a delivery failed, and whether a retry may help.

use std::path::PathBuf;

use outpost_core::ExitCode;
use outpost_core::redact::redact_urls;
use outpost_core::run::{RunIdError, RunIdMismatch};

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
    /// The process exit code for this failure: only [`ExitCode::Temporary`] is retried.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Destination { .. } | Self::RunId { .. } | Self::WrongRun { .. } => {
                ExitCode::Usage
            }
            Self::Inconsistent { .. } => ExitCode::Data,
            Self::NoManifest { .. } | Self::Read { .. } => ExitCode::NoInput,
            Self::Config(_) | Self::Urls(_) => ExitCode::Config,
            Self::Refused { .. } | Self::UrlRejected { .. } => ExitCode::NoPermission,
            Self::Store { .. } | Self::UrlRetriesExhausted { .. } => ExitCode::Temporary,
        }
    }

    /// Classifies an object-store error for `location`.
    pub fn from_store(location: impl Into<String>, error: object_store::Error) -> Self {
        let location = location.into();
        let detail = redact_urls(&outpost_core::redact::error_chain(&error));
        match &error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Self::Refused { location, detail },
            _ if is_refusal(&detail) => Self::Refused { location, detail },
            _ => Self::Store { location, detail },
        }
    }
}

outpost_core::exit_coded!(DeliveryError);

impl From<RunIdError> for DeliveryError {
    fn from(e: RunIdError) -> Self {
        Self::RunId {
            field: e.field,
            value: e.value,
            reason: e.reason,
        }
    }
}

impl From<RunIdMismatch> for DeliveryError {
    fn from(e: RunIdMismatch) -> Self {
        Self::WrongRun {
            field: e.field,
            expected: e.expected,
            found: e.found,
        }
    }
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
