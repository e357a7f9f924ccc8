//! Why an extraction failed, and whether a retry may help.

use std::path::PathBuf;

use outpost_core::ExitCode;

use crate::writer::WriteError;

/// A boxed source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// The agent's manifest-signing key cannot be used (unreadable, not a key).
    #[error("manifest-signing key {}: {problem}", path.display())]
    SigningKey {
        /// Its file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The connection's settings cannot work (a key that cannot be read, a missing
    /// warehouse): fixing the configuration is the only cure.
    #[error("{target}: {problem}")]
    Config {
        /// `host:port`.
        target: String,
        /// What is wrong and what to set.
        problem: String,
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
    /// The process exit code for this failure: only [`ExitCode::Temporary`] is retried.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Parameters { .. } | Self::UnsupportedConnector { .. } => ExitCode::Usage,
            Self::Secret { .. }
            | Self::TlsRequired { .. }
            | Self::Tls { .. }
            | Self::Config { .. }
            | Self::SigningKey { .. } => ExitCode::Config,
            Self::Unreachable { .. } => ExitCode::Temporary,
            Self::Authentication { .. } => ExitCode::NoPermission,
            Self::Query {
                connection_lost: true,
                ..
            } => ExitCode::Temporary,
            Self::Query { .. } => ExitCode::Software,
            Self::Write(_) => ExitCode::Io,
        }
    }

    /// Whether a retry may help.
    pub fn is_temporary(&self) -> bool {
        self.exit_code() == ExitCode::Temporary
    }
}

outpost_core::exit_coded!(ExtractError);
