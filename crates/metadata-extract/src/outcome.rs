//! The extract step's outcome, handed to the connector pod's `main` container.
//!
//! Argo reads a pod's exit code only from its container named `main` (the upload step), so
//! `extract --outcome-file` records its exit code and message here and exits 0, and
//! `upload --extract-outcome` exits with that code when extract failed. The file lives in an
//! `emptyDir` of the pod and never leaves it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What extract ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outcome {
    /// The exit code extract would have exited with (0 on success).
    pub exit_code: u8,
    /// The error message (already free of secrets), when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Outcome {
    /// An outcome.
    pub fn new(exit_code: u8, message: Option<String>) -> Self {
        Self { exit_code, message }
    }

    /// Writes the outcome (a temporary file renamed into place, so a reader never sees half).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string(self).map_err(|e| e.to_string())?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| format!("cannot write the outcome file {}: {e}", path.display()))
    }

    /// Reads the outcome extract left; an error when there is none (extract did not finish).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "the extract step left no outcome at {} ({e}): it did not finish",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| format!("the outcome file {} is unreadable: {e}", path.display()))
    }
}
