//! `outpost control-plane serve`: the reference server set up from plain settings, checked
//! before it listens (a broken tokens file, signing key or ingestion bucket stops it at
//! once, naming the file), then served until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use delivery::bucket::{Bucket, BucketUrl, StoreSettings};

use crate::server::{JobSigner, Limits, ServerConfig};
use crate::store::Store;

/// What the server is started with.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    /// Address to listen on.
    pub listen: String,
    /// SQLite database file (created if missing).
    pub database: PathBuf,
    /// File of `<agent-id> <token>` lines.
    pub tokens_file: PathBuf,
    /// File holding the operator's token.
    pub admin_token_file: PathBuf,
    /// File holding the job-signing key's seed, to sign queued jobs.
    pub signing_key_file: Option<PathBuf>,
    /// How long a signed job stays valid unless it says.
    pub job_lifetime: Duration,
    /// The bucket direct-ingestion URLs are signed for.
    pub ingest_bucket: Option<String>,
    /// How that bucket is reached.
    pub ingest_store: StoreSettings,
    /// Lifetime of signed upload URLs.
    pub url_lifetime: Duration,
}

/// Why the server could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The settings cannot work (an unreadable key, tokens file or database, a bad bucket,
    /// an address that cannot be bound).
    #[error("{0}")]
    Config(String),
    /// The server stopped on an I/O error.
    #[error("server stopped: {0}")]
    Stopped(std::io::Error),
}

impl ServeError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> outpost_core::ExitCode {
        match self {
            Self::Config(_) => outpost_core::ExitCode::Config,
            Self::Stopped(_) => outpost_core::ExitCode::Temporary,
        }
    }
}

outpost_core::exit_coded!(ServeError);

/// `outpost keygen`, for job signing and manifest signing alike: writes a new Ed25519 key
/// pair's private seed to `out` (created, never overwritten, mode 0600), for `serve
/// --signing-key` (or `extract --manifest-signing-key`), and answers the public key, for the
/// agent option `controlPlane.jobSigningKey` (or `verify --key`).
pub fn keygen(out: &std::path::Path) -> Result<String, ServeError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let (seed, public) = orchestrator::signing::keys::generate();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .and_then(|mut file| writeln!(file, "{seed}"))
        .map_err(|e| ServeError::Config(format!("{}: {e}", out.display())))?;
    Ok(public)
}

/// Serves until `shutdown` resolves; `listening` is told the bound address first (tests
/// and scripts read it to find a port chosen by the system).
pub async fn run(
    settings: ServeSettings,
    listening: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = |e: String| ServeError::Config(e);
    let signing_key = match &settings.signing_key_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| config(format!("{}: {e}", path.display())))?;
            let key =
                orchestrator::signing::keys::parse_signing_key(&path.display().to_string(), &text)
                    .map_err(config)?;
            Some(JobSigner {
                key,
                lifetime: settings.job_lifetime,
            })
        }
    };
    let ingest_bucket = match &settings.ingest_bucket {
        None => None,
        Some(url) => Some(Arc::new(
            BucketUrl::parse(url)
                .and_then(|u| Bucket::open(&u, &settings.ingest_store))
                .map_err(|e| config(e.to_string()))?,
        )),
    };
    let store = Store::open(&settings.database)
        .map_err(|e| config(format!("{}: {e}", settings.database.display())))?;
    let server = ServerConfig {
        tokens_file: settings.tokens_file.clone(),
        admin_token_file: settings.admin_token_file.clone(),
        signing_key,
        ingest_bucket,
        url_lifetime: settings.url_lifetime,
        limits: Limits::default(),
    };
    // A broken tokens file (a comment read as a token, a short token) stops the server here,
    // naming the file and the line.
    server.check_tokens().map_err(|e| config(e.to_string()))?;
    let limits = server.limits.clone();
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| config(format!("cannot listen on {}: {e}", settings.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| config(format!("cannot listen on {}: {e}", settings.listen)))?;
    tracing::info!(%address, database = %settings.database.display(), "control plane serving");
    listening(address);
    let router = crate::server::router(store, server);
    crate::server::serve(listener, router, &limits, shutdown)
        .await
        .map_err(ServeError::Stopped)
}
