//! The streaming output writer: newline-delimited JSON, zstd-compressed, one stream per
//! entity kind, split into parts of bounded size, each file hashed as it is written, and
//! `manifest.json` written last (atomically) so that a folder with a manifest is complete.
//!
//! Memory does not grow with the catalog: a record is serialised straight into its part's
//! bounded batch of lines, and each batch is compressed, hashed and written; only per-file
//! counters are kept.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::record::{EntityKind, FORMAT_VERSION, Record};

// The manifest's model is `outpost_core::output`; re-exported so these paths keep working.
pub use outpost_core::output::{FileEntry, MANIFEST, Manifest, RunIdentity, Skipped, hex};
/// Default largest uncompressed size of one part (64 MiB).
pub const DEFAULT_PART_BYTES: u64 = 64 * 1024 * 1024;
/// Fast compression: metadata compresses ~10x even at level 1, and extraction time matters
/// more than a few percent of size.
const ZSTD_LEVEL: i32 = 1;
/// Lines are handed to the compressor in batches of about this many bytes: one call per
/// record (a column is ~200 bytes) cost more than the compression of it.
const BATCH_BYTES: usize = 128 * 1024;

/// Why output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output folder already holds files: a run never mixes with an earlier one.
    #[error("output folder {} is not empty; give a new or empty folder", path.display())]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The run could not be written in a catalog's format (`--export`).
    #[error("exporting the run: {0}")]
    Export(#[source] catalog_export::ExportError),
    /// A record could not be serialised (a bug: records are plain data).
    #[error("cannot serialise a {kind:?} record")]
    Serialize {
        /// The record's kind.
        kind: EntityKind,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// A writer that hashes and counts the bytes passing through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Hashing<BufWriter<File>> {
    /// Flushes and syncs the file at `path`; answers its SHA-256 (hex) and size.
    fn sync(self, path: &Path) -> Result<(String, u64), WriteError> {
        let Hashing {
            mut inner,
            hasher,
            bytes,
        } = self;
        inner.flush().map_err(io_error(path))?;
        let file = inner
            .into_inner()
            .map_err(|e| io_error(path)(e.into_error()))?;
        file.sync_all().map_err(io_error(path))?;
        Ok((hex(&hasher.finalize()), bytes))
    }
}

struct Part {
    relative: String,
    path: PathBuf,
    encoder: zstd::Encoder<'static, Hashing<BufWriter<File>>>,
    /// Lines not yet handed to the encoder (at most about [`BATCH_BYTES`]).
    batch: Vec<u8>,
    records: u64,
    uncompressed: u64,
}

struct Stream {
    kind: EntityKind,
    next_part: u32,
    open: Option<Part>,
    /// Records written, every part included.
    records: u64,
}

/// Writes one run's output folder.
pub struct OutputWriter {
    dir: PathBuf,
    part_limit: u64,
    identity: RunIdentity,
    started_at: SystemTime,
    /// One per kind, in `EntityKind::ALL`'s order, indexed by the kind: a map lookup per
    /// record cost more than the record's hashing.
    streams: Vec<Stream>,
    files: Vec<FileEntry>,
    skipped: Vec<Skipped>,
    incomplete: Vec<String>,
    signing_key: Option<outpost_core::signing::SigningKey>,
    audit: crate::audit::Audit,
    /// Catalog formats to write the run in, before the manifest.
    exports: Vec<catalog_export::Format>,
    export_options: catalog_export::Options,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_owned(),
        source,
    }
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

impl OutputWriter {
    /// Starts a run in `dir`, which must be missing or empty. `part_limit` bounds the
    /// uncompressed bytes of one part.
    pub fn create(dir: &Path, identity: RunIdentity, part_limit: u64) -> Result<Self, WriteError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        if std::fs::read_dir(dir)
            .map_err(io_error(dir))?
            .next()
            .is_some()
        {
            return Err(WriteError::NotEmpty {
                path: dir.to_owned(),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            part_limit: part_limit.max(1),
            identity,
            started_at: SystemTime::now(),
            streams: (EntityKind::ALL.iter())
                .map(|&kind| Stream {
                    kind,
                    next_part: 0,
                    open: None,
                    records: 0,
                })
                .collect(),
            files: Vec::new(),
            skipped: Vec::new(),
            incomplete: Vec::new(),
            signing_key: None,
            audit: crate::audit::Audit::default(),
            exports: Vec::new(),
            export_options: catalog_export::Options::default(),
        })
    }

    /// Appends one record to its stream. The record is written straight into its part's
    /// batch, and moved only in the rare case that it starts the next part.
    ///
    /// An error ends the run: the writer may hold a part opened for the failed record, and
    /// only [`finish`](Self::finish) writes a manifest, which a failed run never reaches
    /// (every source returns the error).
    pub fn write<R: Record>(&mut self, record: &R) -> Result<(), WriteError> {
        let stream = &mut self.streams[R::KIND as usize];
        let part = match &mut stream.open {
            Some(part) => part,
            None => stream
                .open
                .insert(open_part(&self.dir, stream.kind, &mut stream.next_part)?),
        };
        let start = part.batch.len();
        let written = record.write_json(&mut part.batch);
        if let Err(source) = written {
            part.batch.truncate(start);
            return Err(WriteError::Serialize {
                kind: R::KIND,
                source,
            });
        }
        part.batch.push(b'\n');
        let length = (part.batch.len() - start) as u64;
        if part.uncompressed + length > self.part_limit && part.records > 0 {
            // The line starts the next part: the parts before it keep their bound.
            let line = part.batch.split_off(start);
            let full = stream.open.take().expect("open");
            self.files.push(close(full, stream.kind)?);
            let next = open_part(&self.dir, stream.kind, &mut stream.next_part)?;
            let next = stream.open.insert(next);
            next.batch.extend_from_slice(&line);
        }
        let part = stream.open.as_mut().expect("open");
        if part.batch.len() >= BATCH_BYTES {
            part.encoder
                .write_all(&part.batch)
                .map_err(io_error(&part.path))?;
            part.batch.clear();
        }
        part.records += 1;
        part.uncompressed += length;
        stream.records += 1;
        Ok(())
    }

    /// Records something visible that was not extracted.
    pub fn skip(&mut self, skipped: Skipped) {
        self.skipped.push(skipped);
    }

    /// Marks the run incomplete, with the source's reason (once per reason): its manifest
    /// then says nothing may be inferred from what is absent.
    pub fn incomplete(&mut self, reason: &str) {
        if !self.incomplete.iter().any(|r| r == reason) {
            self.incomplete.push(reason.to_owned());
        }
    }

    /// The run's query audit: a source records every statement it sends here, and the
    /// manifest lists them (`queries`).
    pub fn audit(&self) -> crate::audit::Audit {
        self.audit.clone()
    }

    /// Signs the manifest with `key` when the run finishes (`outpost_core::signing`).
    pub fn sign_with(&mut self, key: outpost_core::signing::SigningKey) {
        self.signing_key = Some(key);
    }

    /// Writes the run in these catalog formats too (`exports/<file>`), after its streams and
    /// before its manifest, which lists each with its SHA-256 so it is signed, delivered and
    /// verified with the run.
    pub fn export_with(
        &mut self,
        formats: Vec<catalog_export::Format>,
        options: catalog_export::Options,
    ) {
        // Each format once: a repeated one would be listed twice in the manifest.
        let mut formats = formats;
        let mut seen = Vec::new();
        formats.retain(|f| {
            let first = !seen.contains(f);
            seen.push(*f);
            first
        });
        self.exports = formats;
        self.export_options = options;
    }

    /// Records written so far, per kind (every kind listed).
    pub fn totals(&self) -> BTreeMap<EntityKind, u64> {
        self.streams.iter().map(|s| (s.kind, s.records)).collect()
    }

    /// Closes every stream, then writes `manifest.json` (through a temporary file renamed
    /// into place, after the data files are synced to disk).
    pub fn finish(mut self) -> Result<Manifest, WriteError> {
        let totals = self.totals();
        for stream in &mut self.streams {
            if let Some(part) = stream.open.take() {
                self.files.push(close(part, stream.kind)?);
            }
        }
        self.files
            .sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
        let mut manifest = Manifest {
            format_version: FORMAT_VERSION.to_owned(),
            outpost_version: env!("CARGO_PKG_VERSION").to_owned(),
            identity: self.identity,
            started_at: rfc3339(self.started_at),
            finished_at: rfc3339(SystemTime::now()),
            files: self.files,
            totals,
            skipped: self.skipped,
            incomplete: self.incomplete,
            signature: None,
            queries: self.audit.statements(),
            exports: Vec::new(),
        };
        manifest.exports = export(&self.dir, &manifest, &self.exports, &self.export_options)?;
        if let Some(key) = &self.signing_key {
            outpost_core::signing::sign_manifest(&mut manifest, key);
        }
        let temporary = self.dir.join(".manifest.json.partial");
        let mut text =
            serde_json::to_vec_pretty(&manifest).map_err(|source| WriteError::Serialize {
                kind: EntityKind::Database,
                source,
            })?;
        text.push(b'\n');
        let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
        file.write_all(&text).map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        let path = self.dir.join(MANIFEST);
        std::fs::rename(&temporary, &path).map_err(io_error(&path))?;
        Ok(manifest)
    }
}

fn open_part(dir: &Path, kind: EntityKind, next_part: &mut u32) -> Result<Part, WriteError> {
    let folder = dir.join(kind.stream());
    std::fs::create_dir_all(&folder).map_err(io_error(&folder))?;
    let name = format!("part-{:05}.ndjson.zst", *next_part);
    *next_part += 1;
    let path = folder.join(&name);
    let file = File::create(&path).map_err(io_error(&path))?;
    let hashing = Hashing {
        inner: BufWriter::with_capacity(64 * 1024, file),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let encoder = zstd::Encoder::new(hashing, ZSTD_LEVEL).map_err(io_error(&path))?;
    Ok(Part {
        relative: format!("{}/{name}", kind.stream()),
        path,
        encoder,
        batch: Vec::with_capacity(BATCH_BYTES + 4096),
        records: 0,
        uncompressed: 0,
    })
}

fn close(part: Part, kind: EntityKind) -> Result<FileEntry, WriteError> {
    let Part {
        relative,
        path,
        mut encoder,
        batch,
        records,
        ..
    } = part;
    encoder.write_all(&batch).map_err(io_error(&path))?;
    let hashing = encoder.finish().map_err(io_error(&path))?;
    let (sha256, bytes) = hashing.sync(&path)?;
    Ok(FileEntry {
        path: relative,
        kind,
        sha256,
        bytes,
        records,
    })
}

/// Writes the run described by `manifest` (its streams closed, the manifest not yet written)
/// in each of `formats`, into `exports/` in `dir`, each file synced.
fn export(
    dir: &Path,
    manifest: &Manifest,
    formats: &[catalog_export::Format],
    options: &catalog_export::Options,
) -> Result<Vec<outpost_core::output::ExportEntry>, WriteError> {
    let mut entries = Vec::new();
    if formats.is_empty() {
        return Ok(entries);
    }
    let folder = dir.join("exports");
    std::fs::create_dir_all(&folder).map_err(io_error(&folder))?;
    let mut reader = crate::read::RunReader::from_manifest(dir, manifest.clone());
    for format in formats {
        let relative = format!("exports/{}", format.file_name());
        let path = dir.join(&relative);
        let file = File::create(&path).map_err(io_error(&path))?;
        let mut hashing = Hashing {
            inner: BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let summary = catalog_export::export(manifest, &mut reader, *format, options, &mut hashing)
            .map_err(WriteError::Export)?;
        let (sha256, bytes) = hashing.sync(&path)?;
        entries.push(outpost_core::output::ExportEntry {
            path: relative,
            format: format.name().to_owned(),
            sha256,
            bytes,
            objects: summary.written,
        });
    }
    Ok(entries)
}

/// Reads back every record of one stream (all parts, in order), for tests and tools.
pub fn read_stream(
    dir: &Path,
    manifest: &Manifest,
    kind: EntityKind,
) -> io::Result<Vec<serde_json::Value>> {
    let mut records = Vec::new();
    for file in manifest.files.iter().filter(|f| f.kind == kind) {
        let bytes = zstd::decode_all(File::open(dir.join(&file.path))?)?;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            records.push(serde_json::from_slice(line).map_err(io::Error::other)?);
        }
    }
    Ok(records)
}

/// Checks every file the manifest lists against its size and SHA-256.
pub fn verify(dir: &Path, manifest: &Manifest) -> Result<(), String> {
    crate::verify::check_files(dir, manifest).map_err(|e| e.to_string())
}
