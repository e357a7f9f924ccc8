//! Bucket relay: one run's files into the customer's bucket, `manifest.json` last.
//!
//! The commit protocol, which makes a re-run idempotent and a partial run invisible:
//! 1. If the bucket already holds this run's manifest byte for byte, the run was delivered:
//!    nothing is sent. If it holds a different manifest, that one is deleted first, so no
//!    reader sees it next to files it does not describe.
//! 2. Every data file is uploaded (in parallel, under a concurrency and a memory limit;
//!    requests are retried by the store client, whole files again after a broken session),
//!    each checked against the manifest's SHA-256 while it is read: a file that changed
//!    since extraction is never committed (a multipart upload is aborted, a small file is
//!    never sent). S3 also verifies each request body against its SHA-256.
//! 3. Objects under the run's folder that the manifest does not list (left by an earlier,
//!    different attempt) are deleted.
//! 4. `manifest.json` is written, only after every file above succeeded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::bucket::Bucket;
use outpost_core::run::RunIdentity;

use crate::run::{LocalRun, MANIFEST, RunFile};
use crate::{DeliveryError, Progress};

/// Limits of one delivery.
#[derive(Clone, Copy, Debug)]
pub struct UploadLimits {
    /// Files uploaded at once.
    pub concurrency: usize,
    /// Files larger than this go up in parts of this size (at least 5 MiB, S3's minimum).
    pub part_size: usize,
    /// Bytes of file content held in memory at once, over all uploads.
    pub memory_budget: usize,
}

/// Files uploaded at once, unless told otherwise (relay and direct ingestion alike).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Part size (and the size above which a file goes up in parts), unless told otherwise.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
/// File content held in memory at once, unless told otherwise: peak memory stays near
/// 40 MiB at full speed (measured by benches/upload.sh).
pub const DEFAULT_MEMORY_BUDGET: usize = 16 << 20;

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            part_size: DEFAULT_PART_SIZE,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl UploadLimits {
    fn checked(self) -> Self {
        // S3 takes parts of at least 5 MiB; GCS chunks in multiples of 256 KiB.
        let part_size = self
            .part_size
            .max(5 << 20)
            .next_multiple_of(crate::gcs::CHUNK_GRANULE);
        Self {
            concurrency: self.concurrency.max(1),
            part_size,
            memory_budget: self.memory_budget.max(part_size),
        }
    }
}

/// What a delivery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Where the manifest is (a bucket URL or a pre-signed URL without its query).
    pub manifest: String,
    /// Data files sent.
    pub files: usize,
    /// Bytes sent, manifest included.
    pub bytes: u64,
    /// Objects of an earlier, different attempt that were deleted.
    pub stale_deleted: usize,
    /// True when the destination already held this exact run: nothing was sent.
    pub already_delivered: bool,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl DeliveryReport {
    /// The report of a delivery that has just stored `run`'s manifest, after `files_bytes`
    /// of data files; tells `progress` about the manifest.
    pub(crate) fn committed(
        run: &LocalRun,
        progress: &dyn Progress,
        manifest: String,
        files_bytes: u64,
        stale_deleted: usize,
        started: Instant,
    ) -> Self {
        let manifest_bytes = run.manifest_bytes.len() as u64;
        progress.file_done(MANIFEST, manifest_bytes);
        Self {
            manifest,
            files: run.files.len(),
            bytes: files_bytes + manifest_bytes,
            stale_deleted,
            already_delivered: false,
            elapsed: started.elapsed(),
        }
    }
}

/// Delivers `run` into `bucket` under `<prefix>/<connection>/<job>/<run>/`.
pub async fn relay(
    bucket: &Bucket,
    identity: &RunIdentity,
    run: &LocalRun,
    limits: UploadLimits,
    progress: &dyn Progress,
) -> Result<DeliveryReport, DeliveryError> {
    let started = Instant::now();
    let limits = limits.checked();
    let run_folder = identity.folder()?;
    let manifest_location = bucket.location(&run_folder, MANIFEST)?;
    let manifest_url = format!("{}/{}", bucket.url, strip(bucket, &manifest_location));
    let store = &bucket.store;

    // 1. An identical manifest means this run is already delivered.
    match store.get(&manifest_location).await {
        Ok(existing) => {
            let existing = existing
                .bytes()
                .await
                .map_err(|e| DeliveryError::from_store(manifest_location.as_ref(), e))?;
            if existing.as_ref() == run.manifest_bytes.as_slice() {
                tracing::info!(manifest = %manifest_url, "already delivered; nothing to send");
                return Ok(DeliveryReport {
                    manifest: manifest_url,
                    files: 0,
                    bytes: 0,
                    stale_deleted: 0,
                    already_delivered: true,
                    elapsed: started.elapsed(),
                });
            }
            tracing::warn!(manifest = %manifest_url, "replacing a different earlier delivery of this run");
            store
                .delete(&manifest_location)
                .await
                .map_err(|e| DeliveryError::from_store(manifest_location.as_ref(), e))?;
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(DeliveryError::from_store(manifest_location.as_ref(), e)),
    }

    // 2. Every data file, checked against the manifest while read.
    let budget = MemoryBudget::new(limits.memory_budget);
    let mut uploads = futures_util::stream::iter(run.files.iter().map(|file| {
        let location = bucket.location(&run_folder, &file.relative);
        let budget = &budget;
        async move {
            let location = location?;
            upload_file_with_retries(bucket, &location, file, limits, budget).await?;
            progress.file_done(&file.relative, file.bytes);
            Ok::<u64, DeliveryError>(file.bytes)
        }
    }))
    .buffer_unordered(limits.concurrency);
    let mut bytes = 0;
    while let Some(sent) = uploads.next().await {
        bytes += sent?;
    }

    // 3. Leftovers of an earlier attempt that this manifest does not list.
    let run_prefix = bucket.location(&run_folder, "")?;
    let wanted: std::collections::BTreeSet<ObjectPath> = run
        .files
        .iter()
        .map(|f| bucket.location(&run_folder, &f.relative))
        .collect::<Result<_, _>>()?;
    let stale: Vec<ObjectPath> = store
        .list(Some(&run_prefix))
        .map_ok(|meta| meta.location)
        .try_filter(|location| {
            std::future::ready(!wanted.contains(location) && *location != manifest_location)
        })
        .try_collect()
        .await
        .map_err(|e| DeliveryError::from_store(run_prefix.as_ref(), e))?;
    for location in &stale {
        tracing::warn!(object = %location, "deleting an object the manifest does not list");
        store
            .delete(location)
            .await
            .map_err(|e| DeliveryError::from_store(location.as_ref(), e))?;
    }

    // 4. The commit.
    let mut options = PutOptions::default();
    if bucket.keeps_attributes() {
        options.attributes = attributes("application/json", None);
    }
    store
        .put_opts(
            &manifest_location,
            PutPayload::from(run.manifest_bytes.clone()),
            options,
        )
        .await
        .map_err(|e| DeliveryError::from_store(manifest_location.as_ref(), e))?;
    Ok(DeliveryReport::committed(
        run,
        progress,
        manifest_url,
        bytes,
        stale.len(),
        started,
    ))
}

fn strip<'a>(bucket: &Bucket, location: &'a ObjectPath) -> &'a str {
    let full = location.as_ref();
    if bucket.url.prefix.is_empty() {
        full
    } else {
        full.strip_prefix(bucket.url.prefix.as_str())
            .map(|s| s.trim_start_matches('/'))
            .unwrap_or(full)
    }
}

fn permits(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

fn attributes(content_type: &'static str, sha256: Option<&str>) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, content_type.into());
    if let Some(sha256) = sha256 {
        // Readers can check an object against the manifest without downloading it.
        attributes.insert(
            Attribute::Metadata("sha256".into()),
            sha256.to_owned().into(),
        );
    }
    attributes
}

fn content_type(relative: &str) -> &'static str {
    if relative.ends_with(".zst") {
        "application/zstd"
    } else if relative.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// Whole-file attempts after a transient failure that the store client's own request
/// retries did not cure (a multipart or resumable session broken half-way). Each attempt
/// reads the file again and starts a new upload. Six, not four: a GCS resumable chunk is
/// sent once (see `gcs::JsonUploads::send_chunk`), so on a network that drops one request in
/// eight, four attempts of a two-chunk file all failed in one of five runs of the GCS faults
/// test here; the waits (0.5 s doubling, 15.5 s in all) stay well inside a step's deadline.
const FILE_ATTEMPTS: u32 = 6;

async fn upload_file_with_retries(
    bucket: &Bucket,
    location: &ObjectPath,
    file: &RunFile,
    limits: UploadLimits,
    budget: &MemoryBudget,
) -> Result<(), DeliveryError> {
    let mut attempt = 1;
    loop {
        match upload_file(bucket, location, file, limits, budget).await {
            Err(DeliveryError::Store { detail, .. }) if attempt < FILE_ATTEMPTS => {
                let wait = Duration::from_millis(250 * 2u64.pow(attempt));
                tracing::warn!(file = %file.relative, attempt, error = %detail, "upload failed; sending the whole file again");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn upload_file(
    bucket: &Bucket,
    location: &ObjectPath,
    file: &RunFile,
    limits: UploadLimits,
    budget: &MemoryBudget,
) -> Result<(), DeliveryError> {
    let store = &bucket.store;
    let object_attributes = if bucket.keeps_attributes() {
        attributes(content_type(&file.relative), Some(&file.sha256))
    } else {
        Attributes::new()
    };
    let mut reader = ChunkReader::open(file)?;
    let store_error = |e: object_store::Error| DeliveryError::from_store(location.as_ref(), e);

    if file.bytes <= limits.part_size as u64 {
        let permit = budget.acquire(file.bytes as usize).await;
        let chunk = reader.next(file, file.bytes as usize + 1).await?;
        reader.check(file)?;
        store
            .put_opts(location, PutPayload::from(chunk), object_attributes.into())
            .await
            .map_err(store_error)?;
        drop(permit);
        return Ok(());
    }

    let mut upload = store
        .put_multipart_opts(location, object_attributes.into())
        .await
        .map_err(store_error)?;
    let mut in_flight = FuturesUnordered::new();
    let result: Result<(), DeliveryError> = async {
        loop {
            // While waiting for memory, keep this file's parts moving: they hold memory the
            // other uploads may be waiting for (and their futures only progress when polled).
            let permit = loop {
                tokio::select! {
                    permit = budget.acquire(limits.part_size) => break permit,
                    Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                        let result: object_store::Result<()> = result;
                        result.map_err(store_error)?;
                    }
                }
            };
            let chunk = reader.next(file, limits.part_size).await?;
            if chunk.is_empty() {
                break;
            }
            let part = upload.put_part(PutPayload::from(chunk));
            in_flight.push(async move {
                let result = part.await;
                drop(permit);
                result
            });
            // Parts of one file go up two at a time; the memory budget bounds the rest.
            while in_flight.len() >= 2 {
                if let Some(result) = in_flight.next().await {
                    result.map_err(store_error)?;
                }
            }
        }
        while let Some(result) = in_flight.next().await {
            result.map_err(store_error)?;
        }
        reader.check(file)
    }
    .await;
    match result {
        Ok(()) => {
            upload.complete().await.map_err(store_error)?;
            Ok(())
        }
        Err(error) => {
            drop(in_flight);
            // Nothing becomes visible; a failed abort only leaves parts the bucket's
            // lifecycle rule cleans up.
            if let Err(abort) = upload.abort().await {
                tracing::warn!(object = %location, error = %abort, "could not abort a multipart upload");
            }
            Err(error)
        }
    }
}

/// Bytes of file content in memory at once, over every upload of a delivery, counted in KiB
/// permits (a `Semaphore` counts in `u32`s).
pub(crate) struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total_permits: usize,
}

impl MemoryBudget {
    pub(crate) fn new(bytes: usize) -> Self {
        let total_permits = permits(bytes);
        Self {
            semaphore: Arc::new(Semaphore::new(total_permits)),
            total_permits,
        }
    }

    /// Waits until `bytes` fit; the memory counts as used until the permit is dropped.
    pub(crate) async fn acquire(&self, bytes: usize) -> tokio::sync::OwnedSemaphorePermit {
        // Never ask for more than the whole budget, or the request could wait forever.
        let wanted = permits(bytes).min(self.total_permits);
        self.semaphore
            .clone()
            .acquire_many_owned(u32::try_from(wanted).unwrap_or(u32::MAX))
            .await
            .expect("the budget semaphore is never closed")
    }
}

/// Reads a file in chunks on the blocking pool, hashing as it goes. Each chunk is read
/// straight into its own buffer (no intermediate copy), so the memory budget counts what
/// is really held.
struct ChunkReader {
    file: Option<std::fs::File>,
    hasher: Option<Sha256>,
    read: u64,
}

impl ChunkReader {
    fn open(file: &RunFile) -> Result<Self, DeliveryError> {
        let handle = std::fs::File::open(&file.path).map_err(|source| read_error(file, source))?;
        Ok(Self {
            file: Some(handle),
            hasher: Some(Sha256::new()),
            read: 0,
        })
    }

    /// Up to `limit` bytes; empty at the end of the file.
    async fn next(&mut self, file: &RunFile, limit: usize) -> Result<Bytes, DeliveryError> {
        use std::io::Read as _;
        let (Some(mut handle), Some(mut hasher)) = (self.file.take(), self.hasher.take()) else {
            return Ok(Bytes::new());
        };
        let (handle, hasher, chunk) = tokio::task::spawn_blocking(move || {
            let mut chunk = vec![0u8; limit];
            let mut filled = 0;
            while filled < limit {
                match handle.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            chunk.truncate(filled);
            hasher.update(&chunk);
            Ok((handle, hasher, chunk))
        })
        .await
        .map_err(|e| read_error(file, std::io::Error::other(e)))?
        .map_err(|source| read_error(file, source))?;
        self.file = Some(handle);
        self.hasher = Some(hasher);
        self.read += chunk.len() as u64;
        Ok(Bytes::from(chunk))
    }

    /// Checks what was read against the manifest entry.
    fn check(&mut self, file: &RunFile) -> Result<(), DeliveryError> {
        let hasher = self.hasher.take().unwrap_or_default();
        check_digest(file, hasher, self.read)
    }
}

fn read_error(file: &RunFile, source: std::io::Error) -> DeliveryError {
    DeliveryError::Read {
        path: file.path.clone(),
        source,
    }
}

fn check_digest(file: &RunFile, hasher: Sha256, read: u64) -> Result<(), DeliveryError> {
    if read != file.bytes {
        return Err(DeliveryError::Inconsistent {
            path: file.path.clone(),
            problem: format!("{read} bytes read, the manifest says {}", file.bytes),
        });
    }
    let digest = outpost_core::output::hex(&hasher.finalize());
    if digest != file.sha256 {
        return Err(DeliveryError::Inconsistent {
            path: file.path.clone(),
            problem: format!(
                "sha256 {digest}, the manifest says {}; the file changed after extraction",
                file.sha256
            ),
        });
    }
    Ok(())
}
