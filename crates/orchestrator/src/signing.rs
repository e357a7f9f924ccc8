//! Signed jobs: what a signature covers, and what a signed job must prove besides a valid
//! signature so that it cannot be replayed.
//!
//! A signature alone says "the control plane meant this job", not "for this agent, now,
//! once". So a signed job also carries, inside what the signature covers:
//! - `agentId`: the agent it was queued for. A job copied to another agent's queue (or to
//!   another control plane) is refused by every agent but that one;
//! - `notAfter`: an RFC 3339 UTC time after which it is refused, allowing
//!   [`CLOCK_SKEW`] between the signer's clock and the agent's. With that skew added, it
//!   may lie at most [`SigningPolicy::max_lifetime`] ahead, because the agent is sure to
//!   keep its record of a job's nonce only that long (see below);
//! - `nonce`: at least 128 random bits, base64url. The agent refuses a nonce it has seen for
//!   a job that already ran. Recording nonces is I/O, so it is left to the callers: local
//!   mode keeps them in a file, the orchestrator on the Workflows it creates
//!   ([`mark_workflow`], [`replay_conflict`]).
//!
//! Signing covers the job's canonical form ([`canonical_bytes`]): every field but
//! `signature`, so these fields, like the connector, connection and parameters, cannot be
//! changed without breaking the signature. A signing key admits no job without them: there
//! is no compatibility mode for jobs signed before they existed.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::admission::AdmittedJob;

/// How far the agent's clock may be behind or ahead of the signer's: a job is still
/// admitted this long after its `notAfter`. Five minutes, as Kerberos allows by default;
/// NTP keeps cluster clocks well within it.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The longest a signed job may stay valid by default (24 hours), which is also the shortest
/// time a finished Workflow is kept by default (`ttl.secondsAfterSuccess`).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Fewest characters of a nonce: 22 base64url characters are 128 bits.
pub const MIN_NONCE_CHARS: usize = 22;
/// Most characters of a nonce.
pub const MAX_NONCE_CHARS: usize = 128;

/// Label on a Workflow created for a signed job: a digest of the job's nonce (a label value
/// is 63 characters of a restricted alphabet, which a nonce need not fit), so the
/// orchestrator can find a Workflow by nonce with a label selector.
pub const NONCE_LABEL: &str = "outpost.dev/nonce-sha256";
/// Annotation holding the nonce itself, compared exactly after the label matched.
pub const NONCE_ANNOTATION: &str = "outpost.dev/nonce";
/// Annotation holding the job's `notAfter`: how long the record must outlive the run.
pub const NOT_AFTER_ANNOTATION: &str = "outpost.dev/not-after";

/// What a signed job must satisfy on this agent, now.
#[derive(Clone, Debug)]
pub struct SigningPolicy {
    /// The control plane's public key.
    pub key: ed25519_dalek::VerifyingKey,
    /// This agent's id: a job's `agentId` must equal it.
    pub agent_id: String,
    /// The agent's clock at admission.
    pub now: SystemTime,
    /// Allowed difference between the signer's clock and ours.
    pub clock_skew: Duration,
    /// Furthest a job's `notAfter` plus the clock skew may lie ahead of `now`: the time the
    /// agent is sure to remember the job's nonce.
    pub max_lifetime: Duration,
}

impl SigningPolicy {
    /// A policy for `agent_id` at `now`, with [`CLOCK_SKEW`] and [`DEFAULT_MAX_LIFETIME`].
    pub fn new(key: ed25519_dalek::VerifyingKey, agent_id: &str, now: SystemTime) -> Self {
        Self {
            key,
            agent_id: agent_id.to_owned(),
            now,
            clock_skew: CLOCK_SKEW,
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }

    /// Every reason `job` may not be admitted under this policy (none when it may): its
    /// signature, the agent it is for, its validity window and its nonce's form. Whether
    /// the nonce was seen before is the caller's check ([`replay_conflict`]).
    pub fn check(&self, job: &Value) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Err(problem) = verify_signature(job, &self.key) {
            reasons.push(problem);
        }
        match job.get("agentId") {
            Some(Value::String(id)) if *id == self.agent_id => {}
            Some(Value::String(id)) => reasons.push(format!(
                "the job is signed for agent `{}`, and this agent is `{}`",
                shown(id),
                shown(&self.agent_id)
            )),
            Some(_) => reasons.push("`agentId` must be a string".to_owned()),
            None => reasons.push(
                "`agentId` is missing: a signed job must name the agent it is for".to_owned(),
            ),
        }
        match job.get("notAfter") {
            Some(Value::String(text)) => match parse_utc(text) {
                Some(not_after) => {
                    if self.now > not_after + self.clock_skew {
                        reasons.push(format!(
                            "the job expired at {text} (this agent's clock says {}, and allows {} of clock skew)",
                            rfc3339(self.now),
                            humantime::format_duration(self.clock_skew)
                        ));
                    } else if not_after + self.clock_skew > self.now + self.max_lifetime {
                        // Admitted until notAfter plus the skew, which must end before the
                        // nonce's record may: `max_lifetime` from now.
                        reasons.push(format!(
                            "`notAfter` {text} is too far ahead: with {} of clock skew the job would stay valid for more than {}, and this agent remembers a job's nonce only that long",
                            humantime::format_duration(self.clock_skew),
                            humantime::format_duration(self.max_lifetime)
                        ));
                    }
                }
                None => reasons.push(format!(
                    "`notAfter` `{}` is not an RFC 3339 UTC time (`2026-01-31T12:00:00Z`)",
                    shown(text)
                )),
            },
            Some(_) => reasons.push("`notAfter` must be a string".to_owned()),
            None => reasons.push(
                "`notAfter` is missing: a signed job must say until when it is valid".to_owned(),
            ),
        }
        match job.get("nonce") {
            Some(Value::String(nonce)) if well_formed_nonce(nonce) => {}
            Some(Value::String(nonce)) => reasons.push(format!(
                "`nonce` `{}` must be {MIN_NONCE_CHARS} to {MAX_NONCE_CHARS} base64url characters (at least 128 random bits)",
                shown(nonce)
            )),
            Some(_) => reasons.push("`nonce` must be a string".to_owned()),
            None => reasons.push(
                "`nonce` is missing: a signed job must carry a nonce, so it runs only once"
                    .to_owned(),
            ),
        }
        reasons
    }
}

/// A job's nonce and validity, read after it was admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobNonce {
    /// The nonce, as signed.
    pub nonce: String,
    /// Until when the job may be admitted (without the clock skew).
    pub not_after: SystemTime,
}

impl JobNonce {
    /// `notAfter` as RFC 3339 UTC, rounded up to the second, so a record kept until then
    /// never ends before the job stops being admitted.
    pub fn not_after_text(&self) -> String {
        let fraction = self
            .not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let rounded = match fraction {
            0 => self.not_after,
            nanos => self.not_after + Duration::from_nanos(u64::from(1_000_000_000 - nanos)),
        };
        rfc3339(rounded)
    }

    /// The nonce's digest as a label value: 32 lowercase hex characters.
    pub fn label_value(&self) -> String {
        outpost_core::output::hex(&Sha256::digest(self.nonce.as_bytes())[..16])
    }
}

/// The nonce of `job` when it has a well-formed `nonce` and `notAfter` (as every job a
/// [`SigningPolicy`] admitted has).
pub fn nonce_of(job: &Value) -> Option<JobNonce> {
    let nonce = job.get("nonce")?.as_str()?;
    let not_after = parse_utc(job.get("notAfter")?.as_str()?)?;
    well_formed_nonce(nonce).then(|| JobNonce {
        nonce: nonce.to_owned(),
        not_after,
    })
}

/// Records `nonce` on the Workflow submitted for its job: the nonce's digest as a label
/// (to find it), the nonce and `notAfter` as annotations (to compare exactly).
pub fn mark_workflow(workflow: &mut argo_workflows::Workflow, nonce: &JobNonce) {
    let metadata = &mut workflow.metadata;
    metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(NONCE_LABEL.to_owned(), nonce.label_value());
    let annotations = metadata.annotations.get_or_insert_with(Default::default);
    annotations.insert(NONCE_ANNOTATION.to_owned(), nonce.nonce.clone());
    annotations.insert(NOT_AFTER_ANNOTATION.to_owned(), nonce.not_after_text());
}

/// The label selector of the Workflows that may carry `nonce`.
pub fn nonce_selector(nonce: &JobNonce) -> String {
    format!(
        "app.kubernetes.io/managed-by=outpost,{NONCE_LABEL}={}",
        nonce.label_value()
    )
}

/// Why `job` is a replay, given the Workflows found with [`nonce_selector`]: one of them
/// carries the same nonce for another job or run. The same job and run is not a replay
/// but the same submission again, which the Workflow's name already makes a no-op
/// (`AlreadyExists`).
pub fn replay_conflict(existing: &[Value], job: &AdmittedJob, nonce: &JobNonce) -> Option<String> {
    existing.iter().find_map(|workflow| {
        let annotation = |key: &str| {
            workflow
                .pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
                .and_then(Value::as_str)
        };
        // The label is a digest; only the exact nonce counts (a different nonce with the
        // same digest prefix would be a 2^-128 accident, not a replay).
        if annotation(NONCE_ANNOTATION) != Some(nonce.nonce.as_str()) {
            return None;
        }
        let job_id = annotation("outpost.dev/job-id").unwrap_or("?");
        let run_id = annotation("outpost.dev/run-id").unwrap_or("?");
        if job_id == job.id && run_id == job.run_id {
            return None;
        }
        let name = workflow
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        Some(format!(
            "replayed nonce: nonce `{}` was already used by job `{}` run `{}` (Workflow {name}); a nonce is accepted once",
            shown(&nonce.nonce),
            shown(job_id),
            shown(run_id)
        ))
    })
}

/// Adds `agentId`, `notAfter` and `nonce` to `job` and signs it: what the control plane
/// does before it hands a job out. A `signature` already present is replaced.
pub fn sign(
    job: &mut Value,
    key: &ed25519_dalek::SigningKey,
    agent_id: &str,
    not_after: SystemTime,
    nonce: &str,
) {
    use ed25519_dalek::Signer as _;
    let Some(fields) = job.as_object_mut() else {
        return;
    };
    fields.remove("signature");
    fields.insert("agentId".to_owned(), Value::String(agent_id.to_owned()));
    fields.insert("notAfter".to_owned(), Value::String(rfc3339(not_after)));
    fields.insert("nonce".to_owned(), Value::String(nonce.to_owned()));
    let signature = key.sign(&canonical_bytes(job));
    if let Some(fields) = job.as_object_mut() {
        fields.insert(
            "signature".to_owned(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())),
        );
    }
}

/// A fresh nonce: 128 random bits, base64url without padding (22 characters).
pub fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes a job's signature covers: the job without `signature`, as JSON with object keys
/// sorted and no whitespace (so key order and formatting in transit do not matter).
pub fn canonical_bytes(job: &Value) -> Vec<u8> {
    outpost_core::signing::canonical_bytes(job, "signature")
}

/// Checks `job`'s `signature` over its [`canonical_bytes`] against `key`.
pub fn verify_signature(job: &Value, key: &ed25519_dalek::VerifyingKey) -> Result<(), String> {
    let Some(encoded) = job.get("signature").and_then(Value::as_str) else {
        return Err("the job is not signed, and this agent accepts only signed jobs".to_owned());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "`signature` is not base64".to_owned())?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| "`signature` is not an Ed25519 signature (64 bytes)".to_owned())?;
    let signature = ed25519_dalek::Signature::from_bytes(&bytes);
    key.verify_strict(&canonical_bytes(job), &signature)
        .map_err(|_| "the signature does not match the pinned control-plane key".to_owned())
}

/// An RFC 3339 UTC time (`Z`, optional fractional seconds); no other offset is accepted, so
/// a time has one spelling per instant in what is signed.
pub fn parse_utc(text: &str) -> Option<SystemTime> {
    if !text.ends_with('Z') {
        return None;
    }
    humantime::parse_rfc3339(text).ok()
}

/// `time` as RFC 3339 UTC, to the second.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn well_formed_nonce(nonce: &str) -> bool {
    (MIN_NONCE_CHARS..=MAX_NONCE_CHARS).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// At most 64 characters of untrusted text in a message, escaped.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_128_bits_of_base64url() {
        let a = new_nonce();
        assert_eq!(a.len(), MIN_NONCE_CHARS);
        assert!(well_formed_nonce(&a), "{a}");
        assert_ne!(a, new_nonce());
    }

    #[test]
    fn only_utc_rfc3339_times_are_read() {
        assert!(parse_utc("2026-01-31T12:00:00Z").is_some());
        assert!(parse_utc("2026-01-31T12:00:00.250Z").is_some());
        for bad in [
            "2026-01-31T12:00:00+01:00",
            "2026-01-31 12:00:00Z",
            "2026-01-31T12:00:00",
            "tomorrow",
        ] {
            assert!(parse_utc(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn not_after_is_recorded_rounded_up_to_the_second() {
        let at = |text: &str| JobNonce {
            nonce: new_nonce(),
            not_after: parse_utc(text).expect("time"),
        };
        assert_eq!(
            at("2026-01-31T12:00:00.250Z").not_after_text(),
            "2026-01-31T12:00:01Z"
        );
        assert_eq!(
            at("2026-01-31T12:00:00Z").not_after_text(),
            "2026-01-31T12:00:00Z"
        );
    }

    #[test]
    fn the_nonce_label_is_a_valid_label_value() {
        let nonce = JobNonce {
            nonce: "-_-_-_-_-_-_-_-_-_-_-_".to_owned(),
            not_after: SystemTime::UNIX_EPOCH,
        };
        let value = nonce.label_value();
        assert_eq!(value.len(), 32);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()), "{value}");
    }
}

/// The key codec (`outpost_core::signing::keys`), with the job-signing key named in errors.
pub mod keys {
    pub use outpost_core::signing::keys::{generate, parse_signing_key};

    /// The control plane's job-signing public key (base64 of 32 bytes); `None` for an absent
    /// or blank text.
    pub fn parse_verifying_key(
        text: Option<&str>,
    ) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
        outpost_core::signing::keys::parse_verifying_key("job-signing key", text)
    }
}

/// The job-signing key an agent pins, from its option's text. Job signing is required:
/// without a key, only `insecure_unsigned_jobs` lets jobs run (`Ok(None)`, which the caller
/// logs as [`INSECURE_UNSIGNED`]). The error names both ways out.
pub fn pinned_key(
    text: Option<&str>,
    insecure_unsigned_jobs: bool,
) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
    let key = keys::parse_verifying_key(text)?;
    if key.is_some() || insecure_unsigned_jobs {
        Ok(key)
    } else {
        Err("job signing is required: pass --job-signing-key (agent option controlPlane.jobSigningKey: the control plane's Ed25519 public key), or, knowingly, --insecure-unsigned-jobs (controlPlane.insecureUnsignedJobs: true)".to_owned())
    }
}

/// What an agent that admits unsigned jobs logs.
pub const INSECURE_UNSIGNED: &str = "INSECURE: jobs are admitted without a signature (--insecure-unsigned-jobs): whoever controls the control plane, or its token, chooses what runs within the descriptors";
