//! Uploads to Google Cloud Storage through the JSON API; everything else through
//! `object_store`'s GCS client.
//!
//! `object_store` uploads to GCS with the XML API (its S3-compatible dialect). Outpost uses
//! the JSON API instead: it is the upload API Google documents first, and it is the one
//! fake-gcs-server implements, so the GCS path is tested against a real emulator rather than
//! trusted blind (fake-gcs-server has no XML upload without a signed URL:
//! fsouza/fake-gcs-server#1164). Reads, listings and deletes stay with `object_store`,
//! which the emulator serves.
//!
//! Credentials are `object_store`'s own resolution (workload identity through the metadata
//! server, a service-account key file, application default credentials): the bearer token
//! comes from the wrapped store's provider.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::gcp::GoogleCloudStorage;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, MultipartUpload, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, UploadPart,
};
use rand::RngExt;
use reqwest::StatusCode;

const STORE: &str = "GCS";

/// GCS resumable uploads take chunks in multiples of 256 KiB (all but the last).
pub const CHUNK_GRANULE: usize = 256 * 1024;

/// A GCS bucket: JSON API uploads, `object_store` for the rest.
#[derive(Debug)]
pub struct GcsStore {
    inner: Arc<GoogleCloudStorage>,
    uploads: Arc<JsonUploads>,
}

#[derive(Debug)]
struct JsonUploads {
    http: reqwest::Client,
    /// `https://storage.googleapis.com` or an emulator's address.
    base_url: String,
    bucket: String,
    inner: Arc<GoogleCloudStorage>,
    retry_timeout: Duration,
    /// Longest time one request may take, answer included.
    request_timeout: Duration,
}

/// Largest success answer read (an object resource is about 1 KiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A success answer's JSON, read within [`MAX_ANSWER_BYTES`].
async fn answer_json(response: reqwest::Response) -> Result<serde_json::Value, String> {
    let bytes = crate::bounded::body_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| match e {
            crate::bounded::CappedError::TooLarge(cap) => format!("answer over {cap} bytes"),
            crate::bounded::CappedError::Transport(e) => e.without_url().to_string(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("answer is not JSON: {e}"))
}

impl GcsStore {
    /// Wraps `inner`; uploads go to `base_url` with `http`.
    pub fn new(
        inner: Arc<GoogleCloudStorage>,
        http: reqwest::Client,
        base_url: &str,
        bucket: &str,
        retry_timeout: Duration,
    ) -> Self {
        Self {
            uploads: Arc::new(JsonUploads {
                http,
                base_url: base_url.trim_end_matches('/').to_owned(),
                bucket: bucket.to_owned(),
                inner: inner.clone(),
                retry_timeout,
                request_timeout: Duration::from_secs(300),
            }),
            inner,
        }
    }

    /// Bounds each upload request (body and answer included) to `timeout`; default 5
    /// minutes, like the store's other requests.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        if let Some(uploads) = Arc::get_mut(&mut self.uploads) {
            uploads.request_timeout = timeout;
        }
        self
    }
}

impl std::fmt::Display for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GcsStore({})", self.uploads.bucket)
    }
}

fn error(message: impl Into<String>) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: message.into().into(),
    }
}

/// The object resource of an upload: name, content type, user metadata.
fn resource(location: &ObjectPath, attributes: &Attributes) -> serde_json::Value {
    let mut metadata = serde_json::Map::new();
    let mut content_type = None;
    for (key, value) in attributes.iter() {
        match key {
            Attribute::ContentType => content_type = Some(value.as_ref().to_owned()),
            Attribute::Metadata(name) => {
                metadata.insert(name.to_string(), value.as_ref().into());
            }
            _ => {}
        }
    }
    let mut object = serde_json::json!({ "name": location.as_ref() });
    if let Some(content_type) = content_type {
        object["contentType"] = content_type.into();
    }
    if !metadata.is_empty() {
        object["metadata"] = metadata.into();
    }
    object
}

/// What an attempt's failure means.
enum Failure {
    Transient(String),
    Permanent(object_store::Error),
}

impl JsonUploads {
    async fn bearer(&self) -> object_store::Result<Option<String>> {
        let credential = self.inner.credentials().get_credential().await?;
        Ok((!credential.bearer.is_empty()).then(|| credential.bearer.clone()))
    }

    fn upload_url(&self, upload_type: &str) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o?uploadType={upload_type}",
            self.base_url, self.bucket
        )
    }

    /// Runs `attempt` until it succeeds, fails permanently, or transient failures outlast the
    /// retry budget; waits grow exponentially with full jitter.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> object_store::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Transient(last)) => {
                    let wait = rand::rng().random_range(Duration::ZERO..=backoff);
                    if started.elapsed() + wait > self.retry_timeout {
                        return Err(error(format!(
                            "{what}: still failing after {:.0?}: {last}",
                            started.elapsed()
                        )));
                    }
                    tracing::debug!(what, %last, "transient GCS failure; retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(15));
                }
            }
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        let request = match self.bearer().await {
            Ok(Some(token)) => request.bearer_auth(token),
            Ok(None) => request,
            Err(e) => return Err(Failure::Permanent(e)),
        };
        match request.timeout(self.request_timeout).send().await {
            Ok(response) => Ok(response),
            Err(e) => Err(Failure::Transient(e.without_url().to_string())),
        }
    }

    async fn classify(response: reqwest::Response, location: &str) -> Failure {
        let status = response.status();
        // Within bounds: a store that trickles an endless error body must not hold the
        // upload.
        let body = crate::bounded::error_text(response).await;
        let excerpt: String = body.chars().take(300).collect();
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            return Failure::Transient(format!("{status}: {excerpt}"));
        }
        let source = format!("{location}: {status}: {excerpt}").into();
        Failure::Permanent(match status {
            StatusCode::UNAUTHORIZED => object_store::Error::Unauthenticated {
                path: location.to_owned(),
                source,
            },
            StatusCode::FORBIDDEN => object_store::Error::PermissionDenied {
                path: location.to_owned(),
                source,
            },
            StatusCode::NOT_FOUND => object_store::Error::NotFound {
                path: location.to_owned(),
                source,
            },
            _ => object_store::Error::Generic {
                store: STORE,
                source,
            },
        })
    }

    async fn put(
        &self,
        location: &ObjectPath,
        payload: Bytes,
        attributes: &Attributes,
    ) -> object_store::Result<PutResult> {
        // One multipart/related request: the object's resource, then its bytes.
        let boundary = format!("outpost-{:016x}", rand::rng().random::<u64>());
        let resource = resource(location, attributes).to_string();
        let media_type = attributes
            .get(&Attribute::ContentType)
            .map(|v| v.as_ref().to_owned())
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let mut body = Vec::with_capacity(payload.len() + resource.len() + 256);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{resource}\r\n--{boundary}\r\nContent-Type: {media_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&payload);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let body = Bytes::from(body);
        let url = self.upload_url("multipart");
        let name = location.as_ref();
        let response: serde_json::Value = self
            .with_retries(name, || {
                let request = self
                    .http
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        format!("multipart/related; boundary={boundary}"),
                    )
                    .body(body.clone());
                async move {
                    let response = self.send(request).await?;
                    if !response.status().is_success() {
                        return Err(Self::classify(response, name).await);
                    }
                    answer_json(response).await.map_err(Failure::Transient)
                }
            })
            .await?;
        Ok(put_result(&response))
    }

    async fn start_resumable(
        &self,
        location: &ObjectPath,
        attributes: &Attributes,
    ) -> object_store::Result<String> {
        let url = self.upload_url("resumable");
        let resource = resource(location, attributes).to_string();
        let name = location.as_ref();
        self.with_retries(name, || {
            let request = self
                .http
                .post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=UTF-8",
                )
                .body(resource.clone());
            async move {
                let response = self.send(request).await?;
                if !response.status().is_success() {
                    return Err(Self::classify(response, name).await);
                }
                response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Failure::Permanent(error(format!(
                            "{name}: resumable upload started without a session URI"
                        )))
                    })
            }
        })
        .await
    }

    /// Sends `chunk`, which starts at `start` of the object; `total` is set on the last one.
    /// One attempt: after a failure the server may hold part of the chunk, and asking it
    /// (a `bytes */*` status query) is not something every GCS implementation answers the
    /// same way (fake-gcs-server completes the object instead), so the whole file is sent
    /// again in a new session by the caller's file-level retry.
    async fn send_chunk(
        &self,
        session: &str,
        name: &str,
        start: u64,
        chunk: Bytes,
        total: Option<u64>,
    ) -> object_store::Result<Option<serde_json::Value>> {
        let end = start + chunk.len() as u64;
        let range = match (chunk.is_empty(), total) {
            (true, Some(total)) => format!("bytes */{total}"),
            (true, None) => return Ok(None),
            (false, Some(total)) => format!("bytes {start}-{}/{total}", end - 1),
            (false, None) => format!("bytes {start}-{}/*", end - 1),
        };
        let request = self
            .http
            .put(session)
            .header(reqwest::header::CONTENT_RANGE, range)
            .body(chunk);
        let response = match self.send(request).await {
            Ok(response) => response,
            Err(Failure::Permanent(e)) => return Err(e),
            Err(Failure::Transient(last)) => return Err(error(format!("{name}: {last}"))),
        };
        match response.status().as_u16() {
            200 | 201 => Ok(Some(
                answer_json(response)
                    .await
                    .unwrap_or(serde_json::Value::Null),
            )),
            308 if total.is_none() => Ok(None),
            _ => match Self::classify(response, name).await {
                Failure::Permanent(e) => Err(e),
                Failure::Transient(last) => Err(error(format!("{name}: {last}"))),
            },
        }
    }
}

fn put_result(object: &serde_json::Value) -> PutResult {
    PutResult {
        e_tag: object["etag"].as_str().map(str::to_owned),
        version: object["generation"].as_str().map(str::to_owned),
        extensions: Default::default(),
    }
}

/// `impl ObjectStore for $store` that writes with the methods given (`put_opts` and
/// `put_multipart_opts`) and hands reads, listings, deletes and copies to the store in field
/// `$inner` unchanged. For [`GcsStore`] and the tests' wrapping stores; the calling crate
/// needs `async-trait`, `futures-util` and `object_store`.
#[doc(hidden)]
#[macro_export]
macro_rules! forwarding_object_store {
    ($store:ty, to $inner:ident, writing { $($writes:tt)* }) => {
        #[::async_trait::async_trait]
        impl ::object_store::ObjectStore for $store {
            $($writes)*

            async fn get_opts(
                &self,
                location: &::object_store::path::Path,
                options: ::object_store::GetOptions,
            ) -> ::object_store::Result<::object_store::GetResult> {
                self.$inner.get_opts(location, options).await
            }

            fn delete_stream(
                &self,
                locations: ::futures_util::stream::BoxStream<
                    'static,
                    ::object_store::Result<::object_store::path::Path>,
                >,
            ) -> ::futures_util::stream::BoxStream<
                'static,
                ::object_store::Result<::object_store::path::Path>,
            > {
                self.$inner.delete_stream(locations)
            }

            fn list(
                &self,
                prefix: Option<&::object_store::path::Path>,
            ) -> ::futures_util::stream::BoxStream<
                'static,
                ::object_store::Result<::object_store::ObjectMeta>,
            > {
                self.$inner.list(prefix)
            }

            async fn list_with_delimiter(
                &self,
                prefix: Option<&::object_store::path::Path>,
            ) -> ::object_store::Result<::object_store::ListResult> {
                self.$inner.list_with_delimiter(prefix).await
            }

            async fn copy_opts(
                &self,
                from: &::object_store::path::Path,
                to: &::object_store::path::Path,
                options: ::object_store::CopyOptions,
            ) -> ::object_store::Result<()> {
                self.$inner.copy_opts(from, to, options).await
            }
        }
    };
}

crate::forwarding_object_store! {
    GcsStore, to inner, writing {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            if !matches!(opts.mode, PutMode::Overwrite) {
                return self.inner.put_opts(location, payload, opts).await;
            }
            self.uploads
                .put(location, Bytes::from(payload), &opts.attributes)
                .await
        }

        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            let session = self
                .uploads
                .start_resumable(location, &opts.attributes)
                .await?;
            Ok(Box::new(ResumableUpload {
                uploads: self.uploads.clone(),
                name: location.to_string(),
                session: Arc::new(session),
                state: Arc::new(tokio::sync::Mutex::new(Resumable::default())),
                order: Arc::new(tokio::sync::watch::channel(0).0),
                next_part: 0,
            }))
        }
    }
}

/// The bytes the session has taken so far, and the part held back: a chunk can only be sent
/// once it is known not to be the last (the last one carries the total size).
#[derive(Default)]
struct Resumable {
    sent: u64,
    held: Option<Bytes>,
    failed: bool,
}

/// A GCS resumable upload behind `object_store`'s multipart interface. Parts may be handed
/// in concurrently but go to the server strictly in order.
#[derive(Debug)]
struct ResumableUpload {
    uploads: Arc<JsonUploads>,
    name: String,
    session: Arc<String>,
    state: Arc<tokio::sync::Mutex<Resumable>>,
    /// The number of the part whose turn it is.
    order: Arc<tokio::sync::watch::Sender<usize>>,
    next_part: usize,
}

impl std::fmt::Debug for Resumable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumable")
            .field("sent", &self.sent)
            .field("held", &self.held.as_ref().map(Bytes::len))
            .finish()
    }
}

#[async_trait::async_trait]
impl MultipartUpload for ResumableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let turn = self.next_part;
        self.next_part += 1;
        let uploads = self.uploads.clone();
        let session = self.session.clone();
        let state = self.state.clone();
        let order = self.order.clone();
        let name = self.name.clone();
        Box::pin(async move {
            let mut watch = order.subscribe();
            watch
                .wait_for(|current| *current == turn)
                .await
                .map_err(|_| error("upload order lost"))?;
            let result = async {
                let mut state = state.lock().await;
                if state.failed {
                    return Err(error(format!("{name}: an earlier part failed")));
                }
                let data = Bytes::from(data);
                if let Some(previous) = state.held.replace(data) {
                    if previous.len() % CHUNK_GRANULE != 0 {
                        state.failed = true;
                        return Err(error(format!(
                            "{name}: only the last part may be other than a multiple of 256 KiB"
                        )));
                    }
                    let start = state.sent;
                    let sent = uploads
                        .send_chunk(&session, &name, start, previous.clone(), None)
                        .await;
                    match sent {
                        Ok(_) => state.sent = start + previous.len() as u64,
                        Err(e) => {
                            state.failed = true;
                            return Err(e);
                        }
                    }
                }
                Ok(())
            }
            .await;
            order.send_modify(|current| *current += 1);
            result
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts = self.next_part;
        let mut watch = self.order.subscribe();
        watch
            .wait_for(|current| *current == parts)
            .await
            .map_err(|_| error("upload order lost"))?;
        let mut state = self.state.lock().await;
        if state.failed {
            return Err(error(format!("{}: a part failed", self.name)));
        }
        let last = state.held.take().unwrap_or_default();
        let total = state.sent + last.len() as u64;
        let object = self
            .uploads
            .send_chunk(&self.session, &self.name, state.sent, last, Some(total))
            .await?;
        state.sent = total;
        Ok(put_result(&object.unwrap_or(serde_json::Value::Null)))
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        // Cancelling a session is a DELETE on its URI (answered 499).
        let request = self.uploads.http.delete(self.session.as_str());
        let _ = self.uploads.send(request).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_carries_name_type_and_metadata() {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "application/zstd".into());
        attributes.insert(Attribute::Metadata("sha256".into()), "ab".into());
        let object = resource(&ObjectPath::from("a/b.zst"), &attributes);
        assert_eq!(
            object,
            serde_json::json!({"name": "a/b.zst", "contentType": "application/zstd", "metadata": {"sha256": "ab"}})
        );
    }
}
