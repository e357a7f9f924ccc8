//! Outpost's control-plane API (`openapi.yaml`, OpenAPI 3.1): the typed [`client`] agents
//! use, and the reference [`server`] with durable SQLite storage ([`store`]) that tests and
//! local mode run against.

pub mod api;
pub mod client;
mod error;
pub mod server;
pub mod store;

pub use client::{Claim, ClientConfig, ControlPlaneClient};
pub use error::ControlPlaneError;
