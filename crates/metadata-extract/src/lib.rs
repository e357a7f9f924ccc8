//! Outpost's metadata extraction: one module per source, one output model, and a streaming
//! writer that produces the documented, checksummed output format.
//!
//! The output of one run is a folder: one stream per entity kind (`tables/part-00000.ndjson.zst`
//! …), newline-delimited JSON compressed with zstd, split into parts of bounded size, and a
//! `manifest.json` written last, so a folder without a manifest is never mistaken for a
//! complete run.

pub mod record;
pub mod writer;

pub use record::*;
pub use writer::{FileEntry, Manifest, OutputWriter, RunIdentity, Skipped, WriteError};
