//! A delivered run, read back from its bucket into a folder: the manifest and every file it
//! lists, as stored (`outpost verify URL` then checks the folder as it checks a local run).

use std::path::Path;

use futures_util::StreamExt as _;
use object_store::ObjectStoreExt as _;
use tokio::io::AsyncWriteExt as _;

use crate::DeliveryError;
use crate::bucket::{Bucket, BucketUrl, StoreSettings};
use crate::run::MANIFEST;
use outpost_core::ids::is_safe_relative;

/// Copies the run at `url` (its folder: `s3://bucket/prefix/<connection>/<job>/<run>`) into
/// `into`: `manifest.json`, then each file it lists that the bucket holds (a listed file the
/// bucket lacks is left for the verifier to name). Answers `false` when the bucket has no
/// manifest there. A listed path that is not a plain relative path is refused, never
/// written outside `into`.
pub async fn fetch_run(
    url: &str,
    settings: &StoreSettings,
    into: &Path,
) -> Result<bool, DeliveryError> {
    let bucket = Bucket::open(&BucketUrl::parse(url)?, settings)?;
    let Some(manifest) = get(&bucket, MANIFEST, into).await? else {
        return Ok(false);
    };
    let listed: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| DeliveryError::Inconsistent {
            path: into.join(MANIFEST),
            problem: format!("{url}/{MANIFEST} is not JSON: {e}"),
        })?;
    // Data parts and the run's exports in catalog formats.
    let paths = ["files", "exports"]
        .into_iter()
        .filter_map(|list| listed[list].as_array())
        .flatten()
        .filter_map(|f| f["path"].as_str());
    for path in paths {
        if !is_safe_relative(path) {
            return Err(DeliveryError::Inconsistent {
                path: into.join(MANIFEST),
                problem: format!("lists `{path}`, which is not a plain relative path"),
            });
        }
        let _ = get(&bucket, path, into).await?;
    }
    Ok(true)
}

/// Writes the object `relative` of the run into `into`, streamed; `None` when there is none.
/// The manifest is also answered whole (it is small).
async fn get(
    bucket: &Bucket,
    relative: &str,
    into: &Path,
) -> Result<Option<Vec<u8>>, DeliveryError> {
    let location = bucket.location("", relative)?;
    let answer = match bucket.store.get(&location).await {
        Ok(answer) => answer,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(DeliveryError::from_store(location.as_ref(), e)),
    };
    let path = into.join(relative);
    let write = |source| DeliveryError::Read {
        path: path.clone(),
        source,
    };
    if let Some(folder) = path.parent() {
        tokio::fs::create_dir_all(folder).await.map_err(write)?;
    }
    let mut file = tokio::fs::File::create(&path).await.map_err(write)?;
    let mut kept = Vec::new();
    let mut stream = answer.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| DeliveryError::from_store(location.as_ref(), e))?;
        if relative == MANIFEST {
            kept.extend_from_slice(&chunk);
        }
        file.write_all(&chunk).await.map_err(write)?;
    }
    file.flush().await.map_err(write)?;
    Ok(Some(kept))
}
