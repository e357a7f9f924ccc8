//! Tableau (issue 15, in progress): a site's workbooks, sheets, dashboards, data sources,
//! fields and custom SQL, with their lineage down to database tables, read through
//! Tableau's REST API (XML) and its Metadata API (GraphQL).
//!
//! Landed so far: the REST API's documents ([`xml`]), proven on Tableau's own recorded
//! answers (`tests/tableau_assets.rs`); the REST client ([`rest`]: one session per token,
//! paged lists) and the Metadata API client ([`graphql`]: cursor paging, the node limit,
//! rate and time limits, backfill), tested against a Tableau server fake with a real
//! GraphQL engine (`tests/tableau.rs`). The records and the connector follow; no descriptor
//! names this module yet.

pub mod graphql;
pub mod queries;
pub mod rest;
pub mod xml;
