//! One run's output folder as delivery sees it, and where it lands: `<connection>/<job>/<run>/`.

use std::path::{Path, PathBuf};

pub use outpost_core::output::MANIFEST;
use outpost_core::output::Manifest;
use outpost_core::run::RunIdentity;

use crate::DeliveryError;

/// One data file of a run, as its manifest lists it.
#[derive(Clone, Debug)]
pub struct RunFile {
    /// Path relative to the run folder, `/`-separated (`tables/part-00000.ndjson.zst`).
    pub relative: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// Size the manifest records.
    pub bytes: u64,
    /// SHA-256 the manifest records, lowercase hex.
    pub sha256: String,
}

/// A finished run's output folder: its manifest (bytes and parsed) and its data files.
#[derive(Clone, Debug)]
pub struct LocalRun {
    /// The folder.
    pub dir: PathBuf,
    /// `manifest.json` exactly as on disk: what is uploaded last.
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Every data file the manifest lists, in manifest order.
    pub files: Vec<RunFile>,
}

impl LocalRun {
    /// Reads `dir/manifest.json` and checks that every file it lists exists with the recorded
    /// size and is a safe relative path. Checksums are verified while each file is read for
    /// upload, so a file that changed after extraction is never committed.
    pub fn open(dir: &Path) -> Result<Self, DeliveryError> {
        let manifest_path = dir.join(MANIFEST);
        let manifest_bytes = match std::fs::read(&manifest_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DeliveryError::NoManifest {
                    dir: dir.to_owned(),
                });
            }
            Err(source) => {
                return Err(DeliveryError::Read {
                    path: manifest_path,
                    source,
                });
            }
        };
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| DeliveryError::Inconsistent {
                path: manifest_path.clone(),
                problem: format!("not a valid manifest: line {}: {e}", e.line()),
            })?;
        let mut files = Vec::with_capacity(manifest.files.len() + manifest.exports.len());
        let mut seen = std::collections::BTreeSet::new();
        // The run's exports in catalog formats travel with it, before its manifest too.
        let parts = manifest.files.iter().map(|f| Listed {
            path: &f.path,
            sha256: &f.sha256,
            bytes: f.bytes,
        });
        let exports = manifest.exports.iter().map(|e| Listed {
            path: &e.path,
            sha256: &e.sha256,
            bytes: e.bytes,
        });
        for entry in parts.chain(exports) {
            let inconsistent = |problem: String| DeliveryError::Inconsistent {
                path: manifest_path.clone(),
                problem,
            };
            if !outpost_core::ids::is_safe_relative(entry.path) {
                return Err(inconsistent(format!(
                    "file path `{}` is not a plain relative path",
                    entry.path
                )));
            }
            if entry.path == MANIFEST || !seen.insert(entry.path) {
                return Err(inconsistent(format!(
                    "file path `{}` is listed twice or shadows the manifest",
                    entry.path
                )));
            }
            if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(inconsistent(format!(
                    "file `{}`: sha256 `{}` is not 64 hex digits",
                    entry.path, entry.sha256
                )));
            }
            let path = dir.join(entry.path);
            let metadata = std::fs::metadata(&path).map_err(|source| DeliveryError::Read {
                path: path.clone(),
                source,
            })?;
            if metadata.len() != entry.bytes {
                return Err(DeliveryError::Inconsistent {
                    path,
                    problem: format!(
                        "{} bytes on disk, the manifest says {}",
                        metadata.len(),
                        entry.bytes
                    ),
                });
            }
            files.push(RunFile {
                relative: entry.path.to_owned(),
                path,
                bytes: entry.bytes,
                sha256: entry.sha256.to_ascii_lowercase(),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            manifest_bytes,
            manifest,
            files,
        })
    }

    /// Total bytes of the data files.
    pub fn data_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Refuses a manifest written for another run than `expected` (or another connector), so
    /// a mixed-up volume can never be delivered under the wrong name.
    pub fn check_identity(&self, expected: &RunIdentity) -> Result<(), DeliveryError> {
        Ok(expected.check_matches(&self.manifest.identity)?)
    }
}

/// A file the manifest lists: a data part or an export.
struct Listed<'a> {
    path: &'a str,
    sha256: &'a str,
    bytes: u64,
}

#[cfg(test)]
mod tests {

    #[test]
    fn manifest_paths_must_stay_inside_the_run() {
        assert!(outpost_core::ids::is_safe_relative(
            "tables/part-00000.ndjson.zst"
        ));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a\\b",
            "./a",
            "a\n",
        ] {
            assert!(
                !outpost_core::ids::is_safe_relative(bad),
                "{bad:?} accepted"
            );
        }
    }
}
