//! Reading a run back: its manifest, then the records of one stream at a time, part by part
//! and line by line, never a whole part in memory. What `outpost export` reads.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use outpost_core::ExitCode;
use outpost_core::output::{EntityKind, MANIFEST, Manifest};

/// Why a run could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No manifest: the run is not complete (or this is not a run folder).
    #[error("{}: no {MANIFEST}: not a complete run", .0.display())]
    NoManifest(PathBuf),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest lists a file outside the run (an absolute or `..` path).
    #[error("{}: lists `{listed}`, which is not a plain relative path in the run", path.display())]
    Unsafe {
        /// The manifest.
        path: PathBuf,
        /// The path it lists.
        listed: String,
    },
    /// The manifest, or a record, is not what the format says.
    #[error("{}{}: {source}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Record {
        /// The file.
        path: PathBuf,
        /// The record's line, for a part.
        line: Option<u64>,
        /// What is wrong, with the column and field serde names.
        source: serde_json::Error,
    },
}

impl ReadError {
    /// A missing manifest is `NoInput` (66), an unreadable file `Io` (74), a record that is
    /// not what its stream says `Data` (65).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::NoManifest(_) => ExitCode::NoInput,
            Self::Io { .. } => ExitCode::Io,
            Self::Record { .. } | Self::Unsafe { .. } => ExitCode::Data,
        }
    }
}

outpost_core::exit_coded!(ReadError);

/// A complete run in a folder.
#[derive(Debug)]
pub struct RunReader {
    dir: PathBuf,
    manifest: Manifest,
}

impl RunReader {
    /// Opens the run in `dir`: its manifest must be there.
    pub fn open(dir: &Path) -> Result<Self, ReadError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ReadError::NoManifest(dir.to_owned()),
            _ => ReadError::Io {
                path: path.clone(),
                source,
            },
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|source| ReadError::Record {
                path: path.clone(),
                line: None,
                source,
            })?;
        // Nothing outside the run is opened, whatever an unverified manifest lists.
        let listed = manifest.files.iter().map(|f| &f.path);
        if let Some(unsafe_path) = listed
            .chain(manifest.exports.iter().map(|e| &e.path))
            .find(|p| !outpost_core::ids::is_safe_relative(p))
        {
            return Err(ReadError::Unsafe {
                path,
                listed: unsafe_path.clone(),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            manifest,
        })
    }

    /// The run in `dir` as `manifest` describes it, before the manifest is written: what
    /// the extract step exports its run from.
    pub fn from_manifest(dir: &Path, manifest: Manifest) -> Self {
        Self {
            dir: dir.to_owned(),
            manifest,
        }
    }

    /// The run's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Calls `each` with every line (record) of `kind`'s stream, part by part in the
    /// manifest's order, until it answers `Ok(false)`; its error (the line is not a record
    /// of the stream) is returned naming the part and the line.
    pub fn each_line(
        &self,
        kind: EntityKind,
        each: &mut dyn FnMut(&str) -> Result<bool, serde_json::Error>,
    ) -> Result<(), ReadError> {
        for file in self.manifest.files.iter().filter(|f| f.kind == kind) {
            let path = self.dir.join(&file.path);
            let io = |source| ReadError::Io {
                path: path.clone(),
                source,
            };
            let part = std::fs::File::open(&path).map_err(io)?;
            let mut lines = std::io::BufReader::new(zstd::Decoder::new(part).map_err(io)?);
            let mut line = String::new();
            let mut number = 0u64;
            loop {
                line.clear();
                if lines.read_line(&mut line).map_err(io)? == 0 {
                    break;
                }
                number += 1;
                let more = each(&line).map_err(|source| ReadError::Record {
                    path: path.clone(),
                    line: Some(number),
                    source,
                })?;
                if !more {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The run as the catalog formats' source of records (which parse each line themselves).
impl catalog_export::Lines for RunReader {
    fn each_line(
        &mut self,
        kind: EntityKind,
        each: &mut dyn FnMut(&str) -> Result<bool, serde_json::Error>,
    ) -> Result<(), catalog_export::ExportError> {
        RunReader::each_line(self, kind, each).map_err(catalog_export::ExportError::read)
    }
}
