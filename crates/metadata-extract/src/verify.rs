//! `outpost verify`: a run as a reader finds it, checked against the agent's public key: the
//! manifest's signature, then every file it lists (present, its size, its SHA-256). The
//! manifest is the commit point: what it does not list is not part of the run.

use std::path::{Path, PathBuf};

use outpost_core::ExitCode;
use outpost_core::output::{MANIFEST, Manifest};
use outpost_core::signing::{SignatureError, VerifyingKey};

/// Why a run did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No manifest: the run is not complete (or this is not a run folder).
    #[error("{}: no {MANIFEST}: not a complete run", .0.display())]
    NoManifest(PathBuf),
    /// A file could not be read for another reason than being absent.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest's signature does not hold.
    #[error("{}: {source}", path.display())]
    Signature {
        /// The manifest.
        path: PathBuf,
        /// Why.
        source: SignatureError,
    },
    /// A listed file is missing or differs from what the signed manifest says of it.
    #[error("{path}: {problem}; the signed manifest does not describe this file")]
    File {
        /// Its path in the run.
        path: String,
        /// How it differs.
        problem: String,
    },
}

impl VerifyError {
    /// Tampering, or anything the manifest contradicts, is `Data` (65); a missing manifest
    /// `NoInput` (66); a file that cannot be read `Io` (74).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::NoManifest(_) => ExitCode::NoInput,
            Self::Read { .. } => ExitCode::Io,
            Self::Signature { .. } | Self::File { .. } => ExitCode::Data,
        }
    }
}

outpost_core::exit_coded!(VerifyError);

/// A run that verified.
#[derive(Debug)]
pub struct Verified {
    /// Its manifest.
    pub manifest: Manifest,
    /// Files in the folder that the manifest does not list (ignored, as every reader does).
    pub unlisted: Vec<String>,
}

impl Verified {
    /// What `outpost verify` prints: the run, the key, and what was checked.
    pub fn describe(&self, run: &str, key: &str) -> String {
        let records: u64 = self.manifest.files.iter().map(|f| f.records).sum();
        let mut text = format!(
            "{run}: verified: the manifest is signed by {key} and its {} files ({records} records) match it",
            self.manifest.files.len(),
        );
        if !self.unlisted.is_empty() {
            text.push_str(&format!(
                "\n{} files the manifest does not list are not part of the run: {}",
                self.unlisted.len(),
                self.unlisted.join(", ")
            ));
        }
        text
    }
}

/// Verifies the run in `dir` against the agent's public `key`.
pub fn verify_run(dir: &Path, key: &VerifyingKey) -> Result<Verified, VerifyError> {
    let manifest_path = dir.join(MANIFEST);
    let text = std::fs::read(&manifest_path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => VerifyError::NoManifest(dir.to_owned()),
        _ => VerifyError::Read {
            path: manifest_path.clone(),
            source,
        },
    })?;
    let manifest = outpost_core::signing::verify_manifest(&text, key).map_err(|source| {
        VerifyError::Signature {
            path: manifest_path.clone(),
            source,
        }
    })?;
    check_files(dir, &manifest)?;
    let listed: std::collections::HashSet<&str> = manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(manifest.exports.iter().map(|e| e.path.as_str()))
        .collect();
    let mut unlisted = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| VerifyError::Read {
            path: folder.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if relative != MANIFEST && !listed.contains(relative.as_str()) {
                unlisted.push(relative);
            }
        }
    }
    unlisted.sort();
    Ok(Verified { manifest, unlisted })
}

/// Every file `manifest` lists is in `dir`, with its size and SHA-256: the one check of a
/// run's files, for `outpost verify` and the extraction's own tests (`writer::verify`).
pub fn check_files(dir: &Path, manifest: &Manifest) -> Result<(), VerifyError> {
    // The run's exports in catalog formats are checked as its parts are.
    let parts = manifest.files.iter().map(|f| (&f.path, f.bytes, &f.sha256));
    let exports = manifest
        .exports
        .iter()
        .map(|e| (&e.path, e.bytes, &e.sha256));
    for (relative, size, sha256) in parts.chain(exports) {
        if !outpost_core::ids::is_safe_relative(relative) {
            return Err(VerifyError::File {
                path: relative.clone(),
                problem: "not a plain relative path in the run".to_owned(),
            });
        }
        let path = dir.join(relative);
        let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => VerifyError::File {
                path: relative.clone(),
                problem: "missing".to_owned(),
            },
            _ => VerifyError::Read {
                path: path.clone(),
                source,
            },
        })?;
        if bytes.len() as u64 != size {
            return Err(VerifyError::File {
                path: relative.clone(),
                problem: format!("{} bytes, the manifest says {}", bytes.len(), size),
            });
        }
        let digest = outpost_core::output::sha256_hex(&bytes);
        if digest != *sha256 {
            return Err(VerifyError::File {
                path: relative.clone(),
                problem: format!("SHA-256 {digest}, the manifest says {}", sha256),
            });
        }
    }
    Ok(())
}
