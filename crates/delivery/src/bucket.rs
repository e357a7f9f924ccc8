//! Bucket URLs (`s3://`, `az://`, `gs://`, `file://`) and the object stores behind them.
//!
//! Credentials are found the cloud-native way by `object_store`'s own resolution, from the
//! environment the pod gets: AWS web identity (IRSA), EKS pod identity and instance roles;
//! Azure workload identity, managed identity and service principals; GCP workload identity
//! (the metadata server) and `GOOGLE_APPLICATION_CREDENTIALS`. Static credentials come from
//! files in a mounted folder (`--credentials-dir`), never from arguments, so they never
//! appear in a Workflow's spec or a process listing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{BackoffConfig, Certificate, ClientOptions, ObjectStore, RetryConfig};

use crate::DeliveryError;

/// The kind of store a bucket URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Amazon S3 or an S3-compatible store (`s3://bucket/prefix`).
    S3,
    /// Azure Blob Storage (`az://container/prefix`).
    Azure,
    /// Google Cloud Storage (`gs://bucket/prefix`).
    Gcs,
    /// A folder on this machine (`file:///path`).
    Local,
}

impl StoreKind {
    /// A short name for logs and test output.
    pub fn name(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Azure => "azure",
            Self::Gcs => "gcs",
            Self::Local => "local",
        }
    }
}

/// A parsed bucket URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketUrl {
    /// Which store.
    pub kind: StoreKind,
    /// Bucket or container name; for `file://`, the folder.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl BucketUrl {
    /// Parses `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix` or
    /// `file:///absolute/folder`.
    pub fn parse(url: &str) -> Result<Self, DeliveryError> {
        let bad = |reason: &str| DeliveryError::Destination {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected s3://, az://, gs:// or file:///"))?;
        let kind = match scheme {
            "s3" | "s3a" => StoreKind::S3,
            "az" | "azure" => StoreKind::Azure,
            "gs" => StoreKind::Gcs,
            "file" => StoreKind::Local,
            _ => {
                return Err(bad(&format!(
                    "unknown scheme `{scheme}`; expected s3, az, gs or file"
                )));
            }
        };
        if rest.contains(['?', '#']) {
            return Err(bad(
                "query strings and fragments are not allowed; credentials go in --credentials-dir",
            ));
        }
        if kind == StoreKind::Local {
            let folder = rest.strip_prefix("localhost").unwrap_or(rest);
            if !folder.starts_with('/') {
                return Err(bad(
                    "file URLs need an absolute path: file:///absolute/folder",
                ));
            }
            return Ok(Self {
                kind,
                bucket: folder.trim_end_matches('/').to_owned(),
                prefix: String::new(),
            });
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("missing bucket name"));
        }
        if bucket.contains('@') {
            return Err(bad(
                "user info is not allowed in a bucket URL; credentials go in --credentials-dir",
            ));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            ObjectPath::parse(&prefix).map_err(|e| bad(&format!("invalid prefix: {e}")))?;
        }
        Ok(Self {
            kind,
            bucket: bucket.to_owned(),
            prefix,
        })
    }
}

impl std::fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.kind {
            StoreKind::S3 => "s3",
            StoreKind::Azure => "az",
            StoreKind::Gcs => "gs",
            StoreKind::Local => return write!(f, "file://{}", self.bucket),
        };
        if self.prefix.is_empty() {
            write!(f, "{scheme}://{}", self.bucket)
        } else {
            write!(f, "{scheme}://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// How to reach and authenticate to a bucket, beyond what its URL says.
#[derive(Clone, Debug, Default)]
pub struct StoreSettings {
    /// A custom endpoint: an S3-compatible store, a private endpoint, an emulator.
    /// `http://` endpoints are allowed (for stores on the same network).
    pub endpoint: Option<String>,
    /// The S3 region; default from `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// The Azure storage account; default from `AZURE_STORAGE_ACCOUNT_NAME`.
    pub azure_account: Option<String>,
    /// A folder of static credential files (see [`credential_files`]).
    pub credentials_dir: Option<PathBuf>,
    /// S3 server-side encryption with this KMS key id.
    pub sse_kms_key_id: Option<String>,
    /// PEM bundle of extra CA certificates (default: the file named by `SSL_CERT_FILE`).
    pub ca_bundle: Option<PathBuf>,
    /// Longest time one request may take; default 5 minutes.
    pub request_timeout: Option<Duration>,
    /// Longest time transient failures of one request are retried; default 3 minutes.
    pub retry_timeout: Option<Duration>,
}

/// The files a `--credentials-dir` may hold, per store. Each holds one value, trailing
/// whitespace ignored.
pub fn credential_files(kind: StoreKind) -> &'static [&'static str] {
    match kind {
        StoreKind::S3 => &["access-key-id", "secret-access-key", "session-token"],
        StoreKind::Azure => &[
            "account-name",
            "account-key",
            "sas-token",
            "client-id",
            "client-secret",
            "tenant-id",
        ],
        StoreKind::Gcs => &["service-account.json"],
        StoreKind::Local => &[],
    }
}

/// An opened bucket: the store, the URL it came from, and its signer where the store can
/// pre-sign URLs (S3, Azure, GCS).
#[derive(Clone, Debug)]
pub struct Bucket {
    /// The parsed URL.
    pub url: BucketUrl,
    /// The store, rooted at the bucket (the URL's prefix is not applied).
    pub store: Arc<dyn ObjectStore>,
    /// The same store as a URL signer, where it has one.
    pub signer: Option<Arc<dyn Signer>>,
}

impl Bucket {
    /// Opens the bucket `url` names with `settings`. Nothing is contacted yet.
    pub fn open(url: &BucketUrl, settings: &StoreSettings) -> Result<Self, DeliveryError> {
        let config = |e: object_store::Error| {
            DeliveryError::Config(format!("{}: {e}", url.to_string().trim_end_matches('/')))
        };
        let files = CredentialFiles::read(url.kind, settings.credentials_dir.as_deref())?;
        let (store, signer): (Arc<dyn ObjectStore>, Option<Arc<dyn Signer>>) = match url.kind {
            StoreKind::Local => {
                std::fs::create_dir_all(&url.bucket).map_err(|e| {
                    DeliveryError::Config(format!("cannot create folder {}: {e}", url.bucket))
                })?;
                let store = LocalFileSystem::new_with_prefix(&url.bucket).map_err(config)?;
                (Arc::new(store), None)
            }
            StoreKind::S3 => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&url.bucket)
                    .with_client_options(client_options(settings)?)
                    .with_http_connector(BoundedErrorBodies)
                    .with_retry(retry_config(settings))
                    // The store checks each request body against this digest.
                    .with_checksum_algorithm(Checksum::SHA256);
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let region = settings
                    .region
                    .clone()
                    .or_else(|| std::env::var("AWS_REGION").ok())
                    .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                    .unwrap_or_else(|| "us-east-1".to_owned());
                builder = builder.with_region(region);
                if let Some(key) = &settings.sse_kms_key_id {
                    builder = builder.with_sse_kms_encryption(key);
                }
                match (files.get("access-key-id"), files.get("secret-access-key")) {
                    (Some(id), Some(secret)) => {
                        builder = builder
                            .with_access_key_id(id)
                            .with_secret_access_key(secret);
                        if let Some(token) = files.get("session-token") {
                            builder = builder.with_token(token);
                        }
                    }
                    (None, None) => {}
                    _ => {
                        return Err(files.incomplete("access-key-id and secret-access-key"));
                    }
                }
                let store = Arc::new(builder.build().map_err(config)?);
                (store.clone(), Some(store))
            }
            StoreKind::Azure => {
                let mut builder = MicrosoftAzureBuilder::from_env()
                    .with_container_name(&url.bucket)
                    .with_client_options(client_options(settings)?)
                    .with_http_connector(BoundedErrorBodies)
                    .with_retry(retry_config(settings));
                if let Some(account) = settings
                    .azure_account
                    .clone()
                    .or_else(|| files.get("account-name"))
                {
                    builder = builder.with_account(account);
                }
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                if let Some(key) = files.get("account-key") {
                    builder = builder.with_access_key(key);
                } else if let Some(sas) = files.get("sas-token") {
                    builder = builder.with_config(
                        object_store::azure::AzureConfigKey::SasKey,
                        sas.trim_start_matches('?'),
                    );
                } else {
                    match (
                        files.get("client-id"),
                        files.get("client-secret"),
                        files.get("tenant-id"),
                    ) {
                        (Some(id), Some(secret), Some(tenant)) => {
                            builder = builder
                                .with_client_id(id)
                                .with_client_secret(secret)
                                .with_tenant_id(tenant);
                        }
                        (None, None, None) => {}
                        _ => {
                            return Err(files.incomplete("client-id, client-secret and tenant-id"));
                        }
                    }
                }
                let store = Arc::new(builder.build().map_err(config)?);
                (store.clone(), Some(store))
            }
            StoreKind::Gcs => {
                let mut builder = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&url.bucket)
                    .with_client_options(client_options(settings)?)
                    .with_http_connector(BoundedErrorBodies)
                    .with_retry(retry_config(settings));
                let key = files.get("service-account.json");
                if let Some(key) = &key {
                    builder = builder.with_service_account_key(key);
                }
                // Where uploads go: the endpoint setting, else the key file's `gcs_base_url`
                // (how emulators are configured), else Google's.
                let base_url = settings
                    .endpoint
                    .clone()
                    .or_else(|| {
                        let key: serde_json::Value = serde_json::from_str(key.as_deref()?).ok()?;
                        key["gcs_base_url"].as_str().map(str::to_owned)
                    })
                    .unwrap_or_else(|| "https://storage.googleapis.com".to_owned());
                if settings.endpoint.is_some() {
                    builder = builder.with_config(
                        object_store::gcp::GoogleConfigKey::BaseUrl,
                        base_url.trim_end_matches('/'),
                    );
                }
                let inner = Arc::new(builder.build().map_err(config)?);
                let http = crate::direct::http_client(settings.ca_bundle.as_deref())?;
                let store = Arc::new(
                    crate::gcs::GcsStore::new(
                        inner.clone(),
                        http,
                        &base_url,
                        &url.bucket,
                        settings.retry_timeout.unwrap_or(Duration::from_secs(180)),
                    )
                    .with_request_timeout(request_timeout(settings)),
                );
                (store, Some(inner))
            }
        };
        Ok(Self {
            url: url.clone(),
            store,
            signer,
        })
    }

    /// Whether the store keeps user metadata and content types (the local folder does not).
    pub fn keeps_attributes(&self) -> bool {
        self.url.kind != StoreKind::Local
    }

    /// The object path of `relative` inside the run folder `run` (`<connection>/<job>/<run>`).
    pub fn location(&self, run: &str, relative: &str) -> Result<ObjectPath, DeliveryError> {
        let joined = [self.url.prefix.as_str(), run, relative]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        ObjectPath::parse(&joined).map_err(|e| DeliveryError::Destination {
            url: self.url.to_string(),
            reason: format!("invalid object path `{joined}`: {e}"),
        })
    }
}

fn client_options(settings: &StoreSettings) -> Result<ClientOptions, DeliveryError> {
    let mut options = ClientOptions::new()
        .with_user_agent(object_store::HeaderValue::from_static(concat!(
            "outpost/",
            env!("CARGO_PKG_VERSION")
        )))
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(request_timeout(settings));
    if settings
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
    {
        options = options.with_allow_http(true);
    }
    for certificate in extra_certificates(settings.ca_bundle.as_deref())? {
        options = options.with_root_certificate(certificate);
    }
    Ok(options)
}

/// Longest time one request may take, answer included: the settings' value, else 5
/// minutes (a 64 MiB part at 256 KB/s).
fn request_timeout(settings: &StoreSettings) -> Duration {
    settings.request_timeout.unwrap_or(Duration::from_secs(300))
}

/// `object_store`'s reqwest client, with every error answer's body read within
/// [`crate::bounded`]'s bounds before `object_store` sees it: `object_store` reads an error
/// body whole, for its message, under the request's timeout only, so a store that answers
/// 403 and trickles its body would otherwise hold every upload for the whole timeout.
#[derive(Debug, Default)]
struct BoundedErrorBodies;

impl object_store::client::HttpConnector for BoundedErrorBodies {
    fn connect(
        &self,
        options: &ClientOptions,
    ) -> object_store::Result<object_store::client::HttpClient> {
        let inner = object_store::client::ReqwestConnector::default().connect(options)?;
        Ok(object_store::client::HttpClient::new(BoundedErrors(inner)))
    }
}

#[derive(Debug)]
struct BoundedErrors(object_store::client::HttpClient);

#[async_trait::async_trait]
impl object_store::client::HttpService for BoundedErrors {
    async fn call(
        &self,
        request: object_store::client::HttpRequest,
    ) -> Result<object_store::client::HttpResponse, object_store::client::HttpError> {
        use futures_util::StreamExt as _;
        let response = self.0.execute(request).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let mut stream = body.bytes_stream();
        let deadline = tokio::time::Instant::now() + crate::bounded::ERROR_BODY_WAIT;
        let mut kept = Vec::new();
        while kept.len() < crate::bounded::ERROR_BODY_BYTES {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let take = (crate::bounded::ERROR_BODY_BYTES - kept.len()).min(chunk.len());
                    kept.extend_from_slice(&chunk[..take]);
                }
                _ => break,
            }
        }
        // `object_store` parses the body as text: keep it valid UTF-8 where it was cut.
        let text = String::from_utf8_lossy(&kept).into_owned();
        Ok(object_store::client::HttpResponse::from_parts(
            parts,
            text.into(),
        ))
    }
}

/// The CA bundle named by the settings or `SSL_CERT_FILE`, added to the system's roots.
fn extra_certificates(explicit: Option<&Path>) -> Result<Vec<Certificate>, DeliveryError> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => match std::env::var_os("SSL_CERT_FILE") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => return Ok(Vec::new()),
        },
    };
    let pem = std::fs::read(&path).map_err(|e| {
        DeliveryError::Config(format!("cannot read CA bundle {}: {e}", path.display()))
    })?;
    Certificate::from_pem_bundle(&pem)
        .map_err(|e| DeliveryError::Config(format!("CA bundle {}: {e}", path.display())))
}

fn retry_config(settings: &StoreSettings) -> RetryConfig {
    RetryConfig {
        // Exponential backoff with jitter (each wait drawn between 100 ms and twice the last).
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: settings.retry_timeout.unwrap_or(Duration::from_secs(180)),
    }
}

/// The static credentials found in a `--credentials-dir`.
struct CredentialFiles {
    dir: Option<PathBuf>,
    values: std::collections::BTreeMap<&'static str, String>,
}

impl CredentialFiles {
    fn read(kind: StoreKind, dir: Option<&Path>) -> Result<Self, DeliveryError> {
        let mut values = std::collections::BTreeMap::new();
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(DeliveryError::Config(format!(
                    "credentials folder {} does not exist",
                    dir.display()
                )));
            }
            for name in credential_files(kind) {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let value = text.trim_end().to_owned();
                        if !value.is_empty() {
                            values.insert(*name, value);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(DeliveryError::Config(format!(
                            "cannot read {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
            if values.is_empty() && kind != StoreKind::Local {
                return Err(DeliveryError::Config(format!(
                    "credentials folder {} holds none of {}",
                    dir.display(),
                    credential_files(kind).join(", ")
                )));
            }
        }
        Ok(Self {
            dir: dir.map(Path::to_owned),
            values,
        })
    }

    fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    fn incomplete(&self, needed: &str) -> DeliveryError {
        DeliveryError::Config(format!(
            "credentials folder {} must hold all of {needed}, or none of them",
            self.dir
                .as_deref()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_parse() {
        let url = BucketUrl::parse("s3://acme-meta/outpost/prod/").expect("valid");
        assert_eq!(
            (url.kind, url.bucket.as_str(), url.prefix.as_str()),
            (StoreKind::S3, "acme-meta", "outpost/prod")
        );
        assert_eq!(url.to_string(), "s3://acme-meta/outpost/prod");
        let url = BucketUrl::parse("az://catalog").expect("valid");
        assert_eq!((url.kind, url.prefix.as_str()), (StoreKind::Azure, ""));
        let url = BucketUrl::parse("gs://b/p").expect("valid");
        assert_eq!(url.kind, StoreKind::Gcs);
        let url = BucketUrl::parse("file:///tmp/out/").expect("valid");
        assert_eq!(
            (url.kind, url.bucket.as_str()),
            (StoreKind::Local, "/tmp/out")
        );
    }

    #[test]
    fn bad_bucket_urls_say_why() {
        for (url, why) in [
            ("acme-meta/prefix", "expected s3://"),
            ("ftp://host/x", "unknown scheme `ftp`"),
            ("s3://", "missing bucket"),
            ("s3://key:secret@bucket/x", "user info"),
            ("s3://bucket/x?X-Amz-Signature=abc", "query strings"),
            ("file://relative/path", "absolute path"),
            ("s3://bucket/a/../b", "invalid prefix"),
        ] {
            let error = BucketUrl::parse(url).expect_err(url).to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
    }

    #[test]
    fn partial_static_credentials_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("access-key-id"), "AKIA\n").expect("write");
        let url = BucketUrl::parse("s3://b").expect("valid");
        let settings = StoreSettings {
            credentials_dir: Some(dir.path().to_owned()),
            ..Default::default()
        };
        let error = Bucket::open(&url, &settings)
            .expect_err("incomplete")
            .to_string();
        assert!(
            error.contains("access-key-id and secret-access-key"),
            "{error}"
        );
    }
}
