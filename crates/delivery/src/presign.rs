//! Pre-signed upload URLs for one run, signed with a bucket's own credentials: what the
//! control plane hands out for direct ingestion, and what tests use against real emulators.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use outpost_core::run::RunIdentity;

use crate::DeliveryError;
use crate::bucket::{Bucket, StoreKind};
use crate::direct::{UploadUrl, UrlSet};

/// Signs a PUT URL, valid for `expires_in`, for each of `paths` (run-relative) under
/// `<prefix>/<connection>/<job>/<run>/`.
pub async fn presign_run(
    bucket: &Bucket,
    identity: &RunIdentity,
    paths: &[String],
    expires_in: Duration,
) -> Result<UrlSet, DeliveryError> {
    let signer = bucket
        .signer
        .as_ref()
        .ok_or_else(|| DeliveryError::Config(format!("{} cannot sign URLs", bucket.url)))?;
    let expires_at = SystemTime::now() + expires_in;
    let headers = match bucket.url.kind {
        // A raw PUT to Azure Blob must say which kind of blob it creates.
        StoreKind::Azure => BTreeMap::from([("x-ms-blob-type".to_owned(), "BlockBlob".to_owned())]),
        _ => BTreeMap::new(),
    };
    let folder = identity.folder()?;
    let mut urls = UrlSet::new();
    for path in paths {
        let location = bucket.location(&folder, path)?;
        let url = signer
            .signed_url(reqwest::Method::PUT, &location, expires_in)
            .await
            .map_err(|e| DeliveryError::from_store(location.as_ref(), e))?;
        urls.insert(
            path.clone(),
            UploadUrl {
                url,
                method: "PUT".to_owned(),
                headers: headers.clone(),
                expires_at,
            },
        );
    }
    Ok(urls)
}
