//! Why an extraction failed, and whether a retry may help.

use std::path::PathBuf;

use crate::writer::WriteError;

/// A boxed source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Exit codes of `outpost extract` (sysexits.h), read by the WorkflowTemplate's retry policy:
/// only [`exit::TEMPORARY`] is retried.
pub mod exit {
    /// Bad parameters or an unknown connector.
    pub const USAGE: u8 = 64;
    /// A failure a retry may cure: the source is unreachable, the connection dropped.
    pub const TEMPORARY: u8 = 75;
    /// The source refused the credentials or a privilege.
    pub const NO_PERMISSION: u8 = 77;
    /// Configuration that cannot work: a missing secret, TLS required or refused.
    pub const CONFIG: u8 = 78;
    /// The output could not be written.
    pub const IO: u8 = 74;
    /// The source answered something unexpected (a bug or an unsupported version).
    pub const SOFTWARE: u8 = 70;
}

/// Why an extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The parameters do not fit the connector's descriptor; every problem is listed.
    #[error("invalid parameters for connector `{connector}`:\n  {}", problems.join("\n  "))]
    Parameters {
        /// The connector.
        connector: String,
        /// One line per problem.
        problems: Vec<String>,
    },
    /// No extractor exists for this connector.
    #[error("connector `{connector}` has no extractor in this build")]
    UnsupportedConnector {
        /// The connector.
        connector: String,
    },
    /// A declared secret could not be read from the secrets folder.
    #[error("cannot read secret `{name}` from {}{hint}", path.display())]
    Secret {
        /// The secret's name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// What the operator should check, or empty.
        hint: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The source could not be reached (DNS, refused or dropped connection, timeout).
    #[error("cannot reach {target}")]
    Unreachable {
        /// `host:port` (never credentials).
        target: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The source refused the login.
    #[error("{target} refused the login of `{user}` (check the password secret and the role)")]
    Authentication {
        /// `host:port`.
        target: String,
        /// The login role.
        user: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The source requires TLS and the connection's `ssl-mode` disables it.
    #[error("{target} requires TLS; set the `ssl-mode` parameter to `require` or stricter")]
    TlsRequired {
        /// `host:port`.
        target: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The TLS handshake failed (certificate not trusted, name mismatch, no TLS offered).
    #[error("TLS to {target} failed (with `ssl-mode` {mode})")]
    Tls {
        /// `host:port`.
        target: String,
        /// The `ssl-mode` in force.
        mode: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A catalog query failed.
    #[error("reading {what} from {target} failed")]
    Query {
        /// `host:port/database`.
        target: String,
        /// What was being read (`columns`).
        what: &'static str,
        /// Whether the connection was lost (a retry may help).
        connection_lost: bool,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The output could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ExtractError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Parameters { .. } | Self::UnsupportedConnector { .. } => exit::USAGE,
            Self::Secret { .. } | Self::TlsRequired { .. } | Self::Tls { .. } => exit::CONFIG,
            Self::Unreachable { .. } => exit::TEMPORARY,
            Self::Authentication { .. } => exit::NO_PERMISSION,
            Self::Query {
                connection_lost: true,
                ..
            } => exit::TEMPORARY,
            Self::Query { .. } => exit::SOFTWARE,
            Self::Write(_) => exit::IO,
        }
    }

    /// Whether a retry may help.
    pub fn is_temporary(&self) -> bool {
        self.exit_code() == exit::TEMPORARY
    }
}
