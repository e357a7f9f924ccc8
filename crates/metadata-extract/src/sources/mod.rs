//! One module per kind of source.

pub mod mysql;
pub mod postgres;
pub mod sqlite;
