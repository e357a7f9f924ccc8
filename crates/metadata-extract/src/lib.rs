//! Outpost's metadata extraction: one module per source and a streaming writer that produces
//! the documented, checksummed output format (its model is `outpost_core::output`, re-exported
//! here as [`record`] and [`writer`]).
//!
//! The output of one run is a folder: one stream per entity kind (`tables/part-00000.ndjson.zst`
//! …), newline-delimited JSON compressed with zstd, split into parts of bounded size, and a
//! `manifest.json` written last, so a folder without a manifest is never mistaken for a
//! complete run. Extractors read catalogs only: no query ever selects from a user table.

pub mod audit;
pub mod error;
pub mod filter;
pub mod http;
pub mod outcome;
pub mod read;
pub mod record;
pub mod sample;
pub mod sources;
pub mod tls;
pub mod verify;
pub mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use connector_descriptor::ValidatedDescriptor;
use serde_json::Value;

pub use error::ExtractError;
pub use record::*;
pub use writer::{FileEntry, Manifest, OutputWriter, RunIdentity, Skipped, WriteError};

/// A secret read from the secrets folder. Its `Debug` form never shows the value.
#[derive(Clone)]
pub struct SourceSecret(String);

impl SourceSecret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SourceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceSecret([redacted])")
    }
}

/// Receives progress as extraction goes (log events, a progress bar).
pub trait Progress: Sync {
    /// A database is starting.
    fn database(&self, name: &str);
    /// A stage of a database finished.
    fn stage(&self, database: &str, kind: EntityKind);
}

/// A [`Progress`] that reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn database(&self, _: &str) {}
    fn stage(&self, _: &str, _: EntityKind) {}
}

/// Everything one extraction needs.
#[derive(Debug)]
pub struct ExtractRequest<'a> {
    /// The connector's descriptor: parameters are checked against it.
    pub descriptor: &'a ValidatedDescriptor,
    /// Raw `name=value` parameters.
    pub parameters: Vec<(String, String)>,
    /// Folder holding one file per declared secret, named after it.
    pub secrets_dir: Option<PathBuf>,
    /// CA bundle to trust for TLS to the source (the agent's custom CA).
    pub ca_bundle: Option<PathBuf>,
    /// Output folder (missing or empty).
    pub out: PathBuf,
    /// Who runs it, for the manifest.
    pub identity: RunIdentity,
    /// Largest uncompressed size of one output part.
    pub part_bytes: u64,
    /// The agent's manifest-signing key file (base64 of an Ed25519 seed): when given, the
    /// manifest is signed (`outpost_core::signing`).
    pub signing_key_file: Option<PathBuf>,
    /// Catalog formats the run is also written in (`exports/`, listed in the manifest).
    pub exports: catalog_export::Exports,
}

/// A host as a URI writes it: an IPv6 address in brackets.
fn uri_host(host: &str) -> std::borrow::Cow<'_, str> {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]").into()
    } else {
        host.into()
    }
}

/// Reads the manifest-signing key, before the source is touched: a key that cannot be used
/// fails the run at once (exit 78), not after a whole extraction.
fn read_signing_key(
    path: &std::path::Path,
) -> Result<outpost_core::signing::SigningKey, ExtractError> {
    let problem = |problem: String| ExtractError::SigningKey {
        path: path.to_owned(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    outpost_core::signing::keys::parse_signing_key(&path.display().to_string(), &text)
        .map_err(problem)
}

/// Reads the declared secrets: a missing required one is an error, a missing optional one
/// is absent. Trailing newlines (as `kubectl create secret --from-file` leaves) are removed.
fn read_secrets(
    request: &ExtractRequest<'_>,
) -> Result<BTreeMap<String, SourceSecret>, ExtractError> {
    let mut secrets = BTreeMap::new();
    for declared in &request.descriptor.secrets {
        let name = &declared.name.value;
        let Some(dir) = &request.secrets_dir else {
            if declared.optional {
                continue;
            }
            return Err(ExtractError::Secret {
                name: name.clone(),
                path: PathBuf::from("(no --secrets-dir given)"),
                hint: String::new(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the connector declares this secret",
                ),
            });
        };
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(value) => {
                secrets.insert(
                    name.clone(),
                    SourceSecret::new(value.trim_end_matches(['\n', '\r'])),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && declared.optional => {}
            Err(source) => {
                // In a cluster the connection's Secret is mounted optional, so that a missing
                // one fails here at once (exit 78, not retried) instead of leaving the pod
                // Pending until its deadline.
                let hint = match (&request.identity.connection, source.kind()) {
                    (Some(connection), std::io::ErrorKind::NotFound) => format!(
                        " (the Secret of connection `{connection}` is missing or has no key `{name}`)"
                    ),
                    _ => String::new(),
                };
                return Err(ExtractError::Secret {
                    name: name.clone(),
                    path,
                    hint,
                    source,
                });
            }
        }
    }
    Ok(secrets)
}

/// The parameters plus the connection's own values: each `scope: connection` parameter from
/// the file named after it in the secrets folder (the connection's Secret), and the
/// connection's CA bundle (`ca.crt`) when there is one. A value given both ways is an error:
/// which one wins must never be a surprise.
fn with_connection_values(request: &ExtractRequest<'_>) -> Result<WithConnection, ExtractError> {
    let mut raw = request.parameters.clone();
    let Some(dir) = &request.secrets_dir else {
        return Ok(WithConnection {
            parameters: raw,
            ca_bundle: None,
        });
    };
    for parameter in request
        .descriptor
        .parameters
        .iter()
        .filter(|p| p.scope == connector_descriptor::ParameterScope::Connection)
    {
        let name = &parameter.name.value;
        let path = dir.join(name);
        let value = match std::fs::read_to_string(&path) {
            Ok(value) => value.trim_end_matches(['\n', '\r']).to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ExtractError::Secret {
                    name: name.clone(),
                    path,
                    hint: String::new(),
                    source,
                });
            }
        };
        if raw.iter().any(|(given, _)| given == name) {
            return Err(ExtractError::Parameters {
                connector: request.descriptor.name().to_owned(),
                problems: vec![format!(
                    "parameter `{name}` is given twice: as --param and by the connection ({})",
                    path.display()
                )],
            });
        }
        raw.push((name.clone(), value));
    }
    let ca = dir.join(connector_descriptor::CONNECTION_CA_KEY);
    Ok(WithConnection {
        parameters: raw,
        ca_bundle: ca.is_file().then_some(ca),
    })
}

/// The raw parameters with the connection's own values, and the connection's CA bundle.
struct WithConnection {
    parameters: Vec<(String, String)>,
    ca_bundle: Option<PathBuf>,
}

fn string(parameters: &BTreeMap<String, Value>, name: &str) -> Option<String> {
    parameters
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Longest wait for a connection to a source.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A resolved parameter's value: the descriptor applied its default or required it, so a
/// missing one means a descriptor that does not declare what its source needs.
fn required(parameters: &BTreeMap<String, Value>, name: &str) -> Result<Value, String> {
    parameters
        .get(name)
        .filter(|v| v.as_str() != Some(""))
        .cloned()
        .ok_or_else(|| {
            format!("parameter `{name}` has no value, and the descriptor gives it no default")
        })
}

/// The server's address and login. Where the source is comes from the parameters the
/// descriptor's `egress` names (`hostParameter`, `portParameter`): the same ones the egress
/// policy and connection binding are built on, so the credentials go where the descriptor
/// says the source is. Every default is the descriptor's.
pub(crate) fn server_config(
    descriptor: &ValidatedDescriptor,
    parameters: &BTreeMap<String, Value>,
    secrets: &mut BTreeMap<String, SourceSecret>,
    ca_bundle: Option<PathBuf>,
) -> Result<sources::ServerConfig, String> {
    let egress = &descriptor.egress;
    let named = |name: Option<String>, what: &str| {
        name.ok_or_else(|| format!("the descriptor declares no `egress.{what}`"))
    };
    let host_name = named(
        egress.host_parameter.as_ref().map(|n| n.value.clone()),
        "hostParameter",
    )?;
    let host = required(parameters, &host_name)?;
    let port_name = named(
        egress.port_parameter.as_ref().map(|n| n.value.clone()),
        "portParameter",
    )?;
    let port = required(parameters, &port_name)?;
    let ssl_mode = required(parameters, "ssl-mode")?;
    let ssl_mode = ssl_mode.as_str().unwrap_or_default();
    Ok(sources::ServerConfig {
        host: host.as_str().unwrap_or_default().to_owned(),
        port: port
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("parameter `{port_name}` is not a TCP port"))?,
        // Tableau signs in with a token, not a user: its descriptor declares no `user`.
        user: match descriptor.parameter("user") {
            Some(_) => string(parameters, "user").ok_or("parameter `user` is required")?,
            None => String::new(),
        },
        password: secrets.remove("password"),
        ssl_mode: tls::SslMode::parse(ssl_mode).ok_or(format!("unknown ssl-mode `{ssl_mode}`"))?,
        ca_bundle,
        connect_timeout: CONNECT_TIMEOUT,
    })
}

/// A source, configured and ready to extract.
enum Source {
    Postgres(sources::postgres::PostgresConfig),
    Mysql(sources::mysql::MysqlConfig),
    Sqlite(PathBuf),
    Snowflake(Box<sources::snowflake::SnowflakeConfig>),
    Tableau(Box<sources::tableau::TableauConfig>),
}

/// Runs one extraction: validates the parameters, reads the secrets, extracts, and writes
/// the output with its manifest last. On any error no manifest is written.
pub async fn run(
    request: ExtractRequest<'_>,
    progress: &dyn Progress,
) -> Result<Manifest, ExtractError> {
    let connector = request.descriptor.name().to_owned();
    let WithConnection {
        parameters: raw,
        ca_bundle: connection_ca,
    } = with_connection_values(&request)?;
    let parameters = match request.descriptor.resolve_parameters(&raw) {
        Ok(parameters) => parameters,
        Err(problems) => {
            // A connection whose Secret is missing altogether lacks its values too: name the
            // Secret, the cause (exit 78), rather than each value it would have held.
            if request.secrets_dir.is_some() {
                read_secrets(&request)?;
            }
            return Err(ExtractError::Parameters {
                connector: connector.clone(),
                problems,
            });
        }
    };
    let mut secrets = read_secrets(&request)?;
    let filters = filter::Filters::from_parameters(&parameters).map_err(|problems| {
        ExtractError::Parameters {
            connector: connector.clone(),
            problems,
        }
    })?;
    let bad = |problem: String| ExtractError::Parameters {
        connector: connector.clone(),
        problems: vec![problem],
    };
    // A connection's own CA pins its source: the agent's bundle and public roots do not count.
    let ca_bundle = connection_ca.or_else(|| request.ca_bundle.clone());
    let source = match connector.as_str() {
        "postgres" => Source::Postgres(sources::postgres::PostgresConfig {
            database: string(&parameters, "database")
                .ok_or_else(|| bad("parameter `database` is required".into()))?,
            server: server_config(request.descriptor, &parameters, &mut secrets, ca_bundle)
                .map_err(bad)?,
        }),
        "mysql" => Source::Mysql(
            server_config(request.descriptor, &parameters, &mut secrets, ca_bundle).map_err(bad)?,
        ),
        "snowflake" => {
            let server = server_config(request.descriptor, &parameters, &mut secrets, ca_bundle)
                .map_err(bad)?;
            Source::Snowflake(Box::new(
                sources::snowflake::SnowflakeConfig::from_parameters(
                    &parameters,
                    &mut secrets,
                    request.secrets_dir.as_deref(),
                    server,
                )?,
            ))
        }
        "tableau" => Source::Tableau(Box::new(sources::tableau::TableauConfig::from_parameters(
            request.descriptor,
            &parameters,
            &mut secrets,
            ca_bundle,
        )?)),
        "sqlite" => Source::Sqlite(PathBuf::from(
            string(&parameters, "path")
                .ok_or_else(|| bad("parameter `path` is required".into()))?,
        )),
        _ => return Err(ExtractError::UnsupportedConnector { connector }),
    };
    let signing_key = request
        .signing_key_file
        .as_deref()
        .map(read_signing_key)
        .transpose()?;
    // Export options are checked before the source is touched, as parameters are.
    catalog_export::check(
        &connector,
        &request.exports.formats,
        &request.exports.options,
    )
    .map_err(|e| ExtractError::Parameters {
        connector: connector.clone(),
        problems: vec![e.to_string()],
    })?;
    let mut writer =
        OutputWriter::create(&request.out, request.identity.clone(), request.part_bytes)?;
    if let Some(key) = signing_key {
        writer.sign_with(key);
    }
    let mut export_options = request.exports.options.clone();
    if export_options.namespace.is_none() {
        // OpenLineage names a server `<scheme>://<host>:<port>` (Snowflake: its account),
        // which only the connection knows: named here, other producers' events meet ours.
        export_options.namespace = match &source {
            Source::Postgres(config) => Some(format!(
                "postgres://{}:{}",
                uri_host(&config.server.host),
                config.server.port
            )),
            Source::Mysql(server) => Some(format!(
                "mysql://{}:{}",
                uri_host(&server.host),
                server.port
            )),
            Source::Snowflake(config) => Some(format!("snowflake://{}", config.account)),
            Source::Sqlite(_) | Source::Tableau(_) => None,
        };
    }
    writer.export_with(request.exports.formats.clone(), export_options);
    match source {
        Source::Postgres(config) => {
            sources::postgres::extract(&config, &filters, &mut writer, progress).await?
        }
        Source::Mysql(config) => {
            sources::mysql::extract(&config, &filters, &mut writer, progress).await?
        }
        Source::Sqlite(path) => sources::sqlite::extract(&path, &filters, &mut writer, progress)?,
        Source::Snowflake(config) => {
            sources::snowflake::extract(*config, &filters, &mut writer, progress).await?
        }
        Source::Tableau(config) => {
            sources::tableau::extract(*config, &mut writer, progress).await?
        }
    }
    Ok(writer.finish()?)
}
