//! The orchestrator's decisions, without I/O: which jobs the control plane sends may run
//! ([`admission::admit`]), and the Argo Workflow each admitted job becomes
//! ([`workflow::workflow_for`]). Polling the control plane and talking to the Kubernetes API
//! live in the `outpost orchestrate` entrypoint; everything that decides what runs is here,
//! pure and tested.

pub mod admission;
pub mod signing;
pub mod workflow;

pub use admission::{AdmissionPolicy, AdmittedJob, Rejection, admit};
pub use signing::SigningPolicy;
pub use workflow::{workflow_for, workflow_name};
