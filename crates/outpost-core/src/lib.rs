//! `outpost-core`: the concepts every Outpost crate shares, each defined once.
//!
//! - [`exit`]: the process exit codes (sysexits.h) of every entrypoint, which Argo's retry
//!   policy and CI read;
//! - [`redact`]: what is masked in anything shipped or printed (secret values and shapes,
//!   URL query strings and user info);
//! - [`run`]: which run an output belongs to, and the checks its ids pass before they
//!   become path segments;
//! - [`ids`]: the shapes of identifiers and values taken from outside (DNS labels, path
//!   segments, ingest host patterns, Go durations);
//! - [`output`]: the output-format model: records, the manifest, and its SHA-256 hashing.
//!
//! The rule: no I/O, no async, no network, and few dependencies (serde, serde_json, sha2,
//! regex, url, thiserror, schemars). It sits at the bottom of the crate graph, so anything
//! here can be used everywhere without pulling a runtime, a driver or a client in.

pub mod exit;
pub mod ids;
pub mod output;
pub mod redact;
pub mod run;
pub mod signing;

pub use exit::{ExitCode, ExitCoded, Failure};
pub use run::RunIdentity;
