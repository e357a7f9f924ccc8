//! The agent's recurring work, with I/O: one orchestrator [`tick`], the [`heartbeat`], the
//! exit handler's [`report`], and [`redact`]ion of everything shipped. What may run is
//! decided by the pure `orchestrator` crate; this crate only carries it out against the
//! Kubernetes API ([`kubernetes`]) and the control plane (`control-plane`).

pub mod argo_config;
pub mod heartbeat;
pub mod kubernetes;
pub mod redact;
pub mod report;
pub mod tick;

/// This agent's version and commit, as heartbeats report it.
pub fn version() -> String {
    format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        option_env!("OUTPOST_COMMIT").unwrap_or("unknown commit")
    )
}
