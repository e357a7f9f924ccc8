//! The agent's recurring work, with I/O: one [`tick`] (one loop over the control plane's
//! jobs, whose admitted jobs the cluster submits as Workflows and local mode runs in-process,
//! [`local`], keeping its [`nonce_store`]), the [`heartbeat`], the exit handler's [`report`],
//! and redaction (`outpost_core::redact`) of everything shipped. What may run is decided by
//! the pure `orchestrator` crate; this crate only carries it out against the Kubernetes API
//! ([`kubernetes`]) and the control plane (`control-plane`).

pub mod argo_config;
mod cluster;
pub mod console;
pub mod context;
pub mod entrypoints;
pub mod heartbeat;
pub mod kubernetes;
pub mod local;
pub mod nonce_store;
pub mod report;
pub mod steps;
pub mod tick;

/// This agent's version and commit, as heartbeats report it.
pub fn version() -> String {
    format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        option_env!("OUTPOST_COMMIT").unwrap_or("unknown commit")
    )
}
