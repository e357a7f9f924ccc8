//! Tableau (issue 15, in progress): a site's workbooks, sheets, dashboards, data sources,
//! fields and custom SQL, with their lineage down to database tables, read through
//! Tableau's REST API (XML) and its Metadata API (GraphQL).
//!
//! Landed so far: the REST API's documents ([`xml`]), proven on Tableau's own recorded
//! answers (`tests/tableau_assets.rs`). The REST and Metadata API clients, the records and
//! the connector follow; nothing runs this module yet, and no descriptor names it.

pub mod xml;
