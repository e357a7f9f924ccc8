//! Why a control-plane call failed. No variant carries the token or a URL's query string.

use std::path::PathBuf;

use delivery::DeliveryError;
use outpost_core::ExitCode;

/// A failed control-plane call.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// The token file cannot be used.
    #[error("control-plane token {}: {problem}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The client cannot be set up (bad URL, unreadable CA bundle).
    #[error("control plane: {0}")]
    Config(String),
    /// Every attempt failed with a transport error, a timeout, 429 or 5xx.
    #[error("control plane {url} did not answer {operation} after {attempts} attempts: {problem}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The OpenAPI operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last problem.
        problem: String,
    },
    /// The control plane refused the token.
    #[error("control plane refused the agent's token (HTTP {status}): {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The server's words.
        message: String,
    },
    /// A 4xx answer other than 401/403.
    #[error("control plane answered {operation} with HTTP {status} `{code}`: {message}")]
    Answer {
        /// The OpenAPI operation.
        operation: &'static str,
        /// The status.
        status: u16,
        /// The error code.
        code: String,
        /// The server's words.
        message: String,
    },
    /// The answer did not match the API document.
    #[error("control plane answered {operation} with something the API does not define: {message}")]
    Protocol {
        /// The OpenAPI operation.
        operation: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl ControlPlaneError {
    /// The process exit code (the same table as every other entrypoint).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Token { .. } | Self::Config(_) => ExitCode::Config,
            Self::Unreachable { .. } => ExitCode::Temporary,
            Self::Unauthorized { .. } => ExitCode::NoPermission,
            Self::Answer { .. } => ExitCode::Data,
            Self::Protocol { .. } => ExitCode::Protocol,
        }
    }

    /// As a delivery error, for the URL source of direct ingestion.
    pub fn into_delivery(self) -> DeliveryError {
        match self {
            Self::Unreachable { .. } => DeliveryError::UrlRetriesExhausted {
                path: "(upload URLs)".to_owned(),
                target: "the control plane".to_owned(),
                last: self.to_string(),
            },
            other => DeliveryError::Urls(other.to_string()),
        }
    }
}

outpost_core::exit_coded!(ControlPlaneError);
