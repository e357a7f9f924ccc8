//! The output records. Their model is `outpost_core::output`, shared with delivery and the
//! tests that read output; re-exported here so the sources name them as before.

pub use outpost_core::output::record::*;
pub use outpost_core::output::{FORMAT_VERSION, json_schemas};
