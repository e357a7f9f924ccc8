//! One module per kind of source.

pub mod postgres;
pub mod sqlite;
