//! Outpost's control-plane API (`openapi.yaml`, OpenAPI 3.1): the typed [`client`] agents
//! use, and the reference [`server`] with durable SQLite storage ([`store`]) that tests and
//! local mode run against. Every bound the server puts on a peer is in [`limits`]; the
//! client's bounds on what it reads are in [`client`].

pub mod api;
pub mod client;
mod error;
mod joblist;
pub mod limits;
pub mod run;
pub mod server;
pub mod store;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod tokens;

pub use client::{Claim, ClientConfig, ControlPlaneClient};
pub use error::ControlPlaneError;
