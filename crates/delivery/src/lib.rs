//! Delivery: one run's output folder, as `outpost extract` left it, to where the SaaS reads it.
//!
//! Two transfer modes:
//! - **bucket relay** ([`relay::relay`]): into the customer's own bucket (S3, Azure Blob, GCS,
//!   or a local folder), under `<prefix>/<connection>/<job>/<run>/`;
//! - **direct ingestion** ([`direct::deliver_direct`]): straight to the SaaS through
//!   short-lived pre-signed URLs.
//!
//! Both upload `manifest.json` last, after every data file succeeded and matched the
//! manifest's SHA-256, so a reader that sees a manifest sees a complete run.

pub mod bounded;
pub mod bucket;
pub mod deliver;
pub mod direct;
mod error;
pub mod fetch;
pub mod gcs;
pub mod ingest;
pub mod presign;
pub mod relay;
pub mod run;

pub use error::DeliveryError;

/// Told about each file as it finishes.
pub trait Progress: Sync {
    /// A delivery of `total` bytes (manifest included) starts.
    fn start(&self, total: u64) {
        let _ = total;
    }
    /// `relative` (run-relative path) is stored, `bytes` long.
    fn file_done(&self, relative: &str, bytes: u64);
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn file_done(&self, _relative: &str, _bytes: u64) {}
}

/// Installs ring as the process's TLS crypto provider. Outpost builds rustls with ring only
/// (one crypto stack for TLS and request signing), so HTTP clients need it installed once
/// before the first connection; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
