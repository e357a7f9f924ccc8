//! Which pre-signed URLs direct ingestion may use. The control plane chooses the URLs and
//! their headers, and nothing signs them, so they are checked against the agent's own
//! configuration before anything is sent:
//! - only `https` to a host on the ingest allow-list (exact names, or `*.suffix` for any
//!   name under a suffix of at least two labels);
//! - never an IP literal, nor a loopback, private, link-local or otherwise non-public
//!   address: an upload URL must not make the agent reach into its own network (the API
//!   server, the cloud's metadata service at 169.254.169.254, other pods). The one
//!   exception, for tests and local use, is loopback (`127.0.0.0/8`, `::1`, `localhost`),
//!   over http or https, when explicitly allowed, and it is logged loudly;
//! - no user info in the URL (an HTTP client would turn it into an `Authorization` header);
//! - no credential or routing header: `Authorization`, `Proxy-Authorization`, `Cookie`,
//!   `Host` (any case) are refused by name, and only the headers object stores take with a
//!   PUT are accepted (`Content-*`, `Cache-Control`, `Expires`, `If-Match`, `If-None-Match`,
//!   `x-amz-*`, `x-ms-*`, `x-goog-*`). Pre-signed URLs carry their authorization in the
//!   query string (S3 `X-Amz-*`, Azure SAS, GCS `X-Goog-*`), so a store never needs more.
//!
//! One URL that breaks a rule refuses the whole set, with every problem named, before the
//! first byte is sent; a refreshed URL is checked the same way. Host names are not resolved
//! here: the allow-list is the trust boundary, and a listed name is trusted to resolve to
//! the store it names.

use std::net::IpAddr;

use crate::DeliveryError;
use crate::direct::{UploadUrl, UrlSet, UrlSource};

/// Headers refused by name: credentials and the request's target.
pub const REFUSED_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "host"];

/// Headers accepted by name (compared without case), besides the `x-amz-`, `x-ms-` and
/// `x-goog-` families and every `content-*` header but `content-length`.
const STORE_HEADERS: [&str; 4] = ["cache-control", "expires", "if-match", "if-none-match"];

/// The store header families.
const STORE_HEADER_PREFIXES: [&str; 3] = ["x-amz-", "x-ms-", "x-goog-"];

/// One entry of the ingest allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// This name exactly.
    Exact(String),
    /// Any name ending in this suffix (stored with its leading dot), not the suffix itself.
    Suffix(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => host == name,
            Self::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// The agent's rules for upload URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestPolicy {
    hosts: Vec<HostPattern>,
    allow_loopback: bool,
}

impl IngestPolicy {
    /// A policy allowing `hosts` (`storage.example.com`, `*.blob.core.windows.net`), and
    /// loopback when `allow_loopback`. Every malformed entry is named in the error: IP
    /// literals, schemes, ports, paths, a `*` anywhere but a leading `*.`, a wildcard over
    /// a single label (`*.com`).
    pub fn new(hosts: &[String], allow_loopback: bool) -> Result<Self, DeliveryError> {
        let mut patterns = Vec::new();
        let mut problems = Vec::new();
        for entry in hosts {
            match parse_pattern(entry) {
                Ok(pattern) => patterns.push(pattern),
                Err(problem) => problems.push(format!("`{entry}`: {problem}")),
            }
        }
        if !problems.is_empty() {
            return Err(DeliveryError::Config(format!(
                "ingest hosts: {}",
                problems.join("; ")
            )));
        }
        if allow_loopback {
            tracing::warn!(
                "LOOPBACK INGEST URLS ALLOWED: direct ingestion will send to 127.0.0.0/8, ::1 and localhost, over http too; for tests and local use only, never in a cluster"
            );
        }
        Ok(Self {
            hosts: patterns,
            allow_loopback,
        })
    }

    /// Whether loopback URLs are allowed.
    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Why `url` (for the run-relative `path`) may not be used, or `Ok`.
    pub fn check_url(&self, path: &str, url: &UploadUrl) -> Result<(), String> {
        let target = url.redacted();
        let problem = |what: String| Err(format!("`{path}` ({target}): {what}"));
        if !url.url.username().is_empty() || url.url.password().is_some() {
            return problem("the URL carries user info (credentials)".to_owned());
        }
        let scheme = url.url.scheme();
        let loopback = match url.url.host() {
            None => return problem("the URL has no host".to_owned()),
            Some(url::Host::Ipv4(ip)) => {
                let ip = IpAddr::V4(ip);
                if !ip.is_loopback() {
                    return problem(format!(
                        "{} address {ip}: IP addresses are never used, only allowed host names",
                        address_class(ip)
                    ));
                }
                true
            }
            Some(url::Host::Ipv6(ip)) => {
                let ip = IpAddr::V6(ip);
                if !ip.is_loopback() {
                    return problem(format!(
                        "{} address {ip}: IP addresses are never used, only allowed host names",
                        address_class(ip)
                    ));
                }
                true
            }
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    true
                } else {
                    if scheme != "https" {
                        return problem(format!("uses `{scheme}`; only https is allowed"));
                    }
                    if !self.hosts.iter().any(|p| p.matches(&name)) {
                        return problem(if self.hosts.is_empty() {
                            format!(
                                "host `{name}` is not allowed: no ingest host is configured (agent option `controlPlane.ingestHosts`, `--ingest-host`)"
                            )
                        } else {
                            format!("host `{name}` is not on the ingest allow-list")
                        });
                    }
                    false
                }
            }
        };
        if loopback {
            if !self.allow_loopback {
                return problem(
                    "a loopback address; allowed only with the explicit loopback opt-in (`--allow-loopback-ingest`), for tests and local use"
                        .to_owned(),
                );
            }
            if !matches!(scheme, "http" | "https") {
                return problem(format!("uses `{scheme}`; only https (or http to loopback)"));
            }
        }
        for name in url.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if REFUSED_HEADERS.contains(&lower.as_str()) {
                return problem(format!(
                    "header `{name}` may not come from the control plane: pre-signed URLs carry their authorization in the query string"
                ));
            }
            let store_header = STORE_HEADERS.contains(&lower.as_str())
                || (lower.starts_with("content-") && lower != "content-length")
                || STORE_HEADER_PREFIXES.iter().any(|p| lower.starts_with(p));
            if !store_header {
                return problem(format!(
                    "header `{name}` is not one an object store takes with a PUT (`Content-*`, `Cache-Control`, `Expires`, `If-Match`, `If-None-Match`, `x-amz-*`, `x-ms-*`, `x-goog-*`)"
                ));
            }
        }
        Ok(())
    }

    /// Checks every URL of `set`; the error names each refused one.
    pub fn check_set(&self, set: &UrlSet) -> Result<(), DeliveryError> {
        let problems: Vec<String> = set
            .iter()
            .filter_map(|(path, url)| self.check_url(path, url).err())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DeliveryError::Urls(format!(
                "the upload URLs were refused, nothing was uploaded: {}",
                problems.join("; ")
            )))
        }
    }
}

/// A [`UrlSource`] whose every answer is checked against an [`IngestPolicy`].
pub struct CheckedSource {
    inner: Box<dyn UrlSource>,
    policy: IngestPolicy,
}

impl CheckedSource {
    /// `inner`, checked by `policy`.
    pub fn new(inner: Box<dyn UrlSource>, policy: IngestPolicy) -> Self {
        Self { inner, policy }
    }
}

#[async_trait::async_trait]
impl UrlSource for CheckedSource {
    async fn urls(&self, paths: &[String]) -> Result<UrlSet, DeliveryError> {
        let set = self.inner.urls(paths).await?;
        self.policy.check_set(&set)?;
        Ok(set)
    }

    async fn refresh(&self, path: &str) -> Result<UploadUrl, DeliveryError> {
        let url = self.inner.refresh(path).await?;
        self.policy.check_url(path, &url).map_err(|problem| {
            DeliveryError::Urls(format!("the refreshed upload URL was refused: {problem}"))
        })?;
        Ok(url)
    }
}

fn parse_pattern(entry: &str) -> Result<HostPattern, String> {
    let (wildcard, name) = outpost_core::ids::ingest_host_pattern(entry)?;
    Ok(if wildcard {
        HostPattern::Suffix(format!(".{name}"))
    } else {
        HostPattern::Exact(name)
    })
}

/// What kind of address `ip` is, for messages.
fn address_class(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) if v4.is_private() => "private",
        IpAddr::V4(v4) if v4.is_link_local() => "link-local",
        IpAddr::V4(v4) if v4.is_unspecified() => "unspecified",
        IpAddr::V4(v4) if v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 => {
            "carrier-grade NAT"
        }
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => "unique-local",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => "link-local",
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => "IPv4-mapped",
        _ => "an",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], loopback: bool) -> IngestPolicy {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        IngestPolicy::new(&hosts, loopback).expect("a valid allow-list")
    }

    #[test]
    fn exact_hosts_and_wildcards_match_as_documented() {
        let p = policy(
            &["storage.googleapis.com", "*.blob.core.windows.net"],
            false,
        );
        for ok in [
            "https://storage.googleapis.com/b/o?X-Goog-Signature=1",
            "https://acct.blob.core.windows.net/c/b?sig=1",
            "https://ACCT.Blob.Core.Windows.Net./c/b?sig=1",
        ] {
            assert_eq!(
                p.check_url("f", &UploadUrl::put_for_tests(ok, &[])),
                Ok(()),
                "{ok}"
            );
        }
        for (bad, why) in [
            (
                "https://blob.core.windows.net/c",
                "not on the ingest allow-list",
            ),
            (
                "https://evilblob.core.windows.net/c",
                "not on the ingest allow-list",
            ),
            (
                "https://x.storage.googleapis.com/c",
                "not on the ingest allow-list",
            ),
            ("http://storage.googleapis.com/b/o", "only https"),
        ] {
            let error = p
                .check_url("f", &UploadUrl::put_for_tests(bad, &[]))
                .expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn malformed_allow_list_entries_are_refused() {
        for (entry, why) in [
            ("10.0.0.1", "IP address"),
            ("[::1]", "IP address"),
            ("*.com", "top-level"),
            ("*", "not a host name"),
            ("https://s3.amazonaws.com", "not a host name"),
            ("s3.amazonaws.com:443", "not a host name"),
            ("a.*.example.com", "not a host name"),
            ("localhost", "loopback"),
            ("0x7f.1", "numeric"),
        ] {
            let error = IngestPolicy::new(&[entry.to_owned()], false)
                .expect_err(entry)
                .to_string();
            assert!(error.contains(why), "{entry}: {error}");
        }
    }

    #[test]
    fn store_headers_pass_and_other_headers_do_not() {
        let p = policy(&["h.example.com"], false);
        let ok = UploadUrl::put_for_tests(
            "https://h.example.com/p",
            &[
                ("x-ms-blob-type", "BlockBlob"),
                ("Content-Type", "application/zstd"),
                ("content-md5", "x"),
                ("X-Amz-Server-Side-Encryption", "aws:kms"),
                ("x-goog-content-length-range", "0,1"),
                ("If-None-Match", "*"),
            ],
        );
        assert_eq!(p.check_url("f", &ok), Ok(()));
        for header in [
            "X-Forwarded-For",
            "Content-Length",
            "X-Api-Key",
            "Forwarded",
        ] {
            let error = p
                .check_url(
                    "f",
                    &UploadUrl::put_for_tests("https://h.example.com/p", &[(header, "x")]),
                )
                .expect_err(header);
            assert!(error.contains("not one an object store takes"), "{error}");
        }
    }
}
