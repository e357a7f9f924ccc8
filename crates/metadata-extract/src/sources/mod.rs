//! One module per kind of source.

use std::path::PathBuf;
use std::time::Duration;

use crate::SourceSecret;
use crate::tls::SslMode;

pub mod mysql;
pub mod postgres;
pub mod snowflake;
pub mod sqlite;
pub mod tableau;

/// How to reach a database server over the network (PostgreSQL, MySQL).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Login role or user.
    pub user: String,
    /// Its password, if any.
    pub password: Option<SourceSecret>,
    /// TLS policy.
    pub ssl_mode: SslMode,
    /// CA bundle to trust instead of the compiled-in roots.
    pub ca_bundle: Option<PathBuf>,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
}

impl ServerConfig {
    /// `host:port`, as errors name the server (never with credentials).
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}
