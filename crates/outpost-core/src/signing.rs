//! Ed25519 signatures over JSON documents, and the key codec: one owner for what the control
//! plane's job signatures (`orchestrator::signing`) and the agent's manifest signatures share.
//!
//! A document is signed over its [`canonical_bytes`]: the JSON without its signature member,
//! object keys sorted, no whitespace. So key order and formatting in transit or on disk do
//! not matter, and a reader verifies the document as it finds it, fields it does not know
//! included. Keys travel as base64 of their 32 bytes: a public key in options and flags, a
//! private key's seed in a file.

use base64::Engine as _;
use serde_json::Value;

use crate::output::{Manifest, ManifestSignature};

pub use ed25519_dalek::{SigningKey, VerifyingKey};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The bytes a signature covers: `document` without its member `without`, as JSON with
/// object keys sorted at every level and no whitespace.
pub fn canonical_bytes(document: &Value, without: &str) -> Vec<u8> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut unsigned = document.clone();
    if let Some(map) = unsigned.as_object_mut() {
        map.remove(without);
    }
    serde_json::to_vec(&sorted(&unsigned)).unwrap_or_default()
}

/// The key codec.
pub mod keys {
    use super::BASE64;
    use base64::Engine as _;

    /// A public key (base64 of 32 bytes); `None` for an absent or blank text. `what` names
    /// the key in errors (`job-signing key`).
    pub fn parse_verifying_key(
        what: &str,
        text: Option<&str>,
    ) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let bytes = BASE64
            .decode(text)
            .map_err(|e| format!("{what} is not base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{what} must be 32 bytes (an Ed25519 public key)"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| format!("{what}: {e}"))
    }

    /// A signing key from the text of its seed file (base64 of 32 bytes); `file` names it in
    /// errors.
    pub fn parse_signing_key(file: &str, text: &str) -> Result<ed25519_dalek::SigningKey, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| format!("{file}: not base64: {e}"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{file}: an Ed25519 seed is 32 bytes"))?;
        Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A public key's text, as options, flags and manifests carry it.
    pub fn public_text(key: &ed25519_dalek::VerifyingKey) -> String {
        BASE64.encode(key.to_bytes())
    }

    /// A fresh key pair: the seed's text (for the private key file) and the public key's text.
    pub fn generate() -> (String, String) {
        let seed: [u8; 32] = rand::random();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        (BASE64.encode(seed), public_text(&key.verifying_key()))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_generated_pair_parses_back_and_matches() {
            let (seed, public) = generate();
            let signing = parse_signing_key("key", &format!("{seed}\n")).expect("seed");
            let verifying = parse_verifying_key("key", Some(&public))
                .expect("public")
                .expect("some");
            assert_eq!(signing.verifying_key(), verifying);
            assert_eq!(parse_verifying_key("key", Some("  ")), Ok(None));
            let short = parse_verifying_key("manifest key", Some("AAAA")).expect_err("short");
            assert!(short.starts_with("manifest key"), "{short}");
            assert!(parse_signing_key("key", "not base64!").is_err());
        }
    }
}

/// The one signature algorithm: what a manifest's `signature.algorithm` says.
pub const ALGORITHM: &str = "ed25519";

/// Signs `manifest` with `key`: its `signature` holds the public key and the signature over
/// the manifest's canonical bytes (without `signature`). A signature already there is
/// replaced.
pub fn sign_manifest(manifest: &mut Manifest, key: &ed25519_dalek::SigningKey) {
    use ed25519_dalek::Signer as _;
    manifest.signature = None;
    let value = serde_json::to_value(&*manifest).unwrap_or(Value::Null);
    let signature = key.sign(&canonical_bytes(&value, "signature"));
    manifest.signature = Some(ManifestSignature {
        algorithm: ALGORITHM.to_owned(),
        key: keys::public_text(&key.verifying_key()),
        value: BASE64.encode(signature.to_bytes()),
    });
}

/// Why a manifest did not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not JSON, or not a manifest.
    #[error("the manifest is not a manifest: {0}")]
    NotAManifest(String),
    /// No `signature`.
    #[error("the manifest is not signed (its agent holds no manifest-signing key)")]
    Unsigned,
    /// A `signature` that is not one this reader can check.
    #[error("the manifest's signature is malformed: {0}")]
    Malformed(String),
    /// Signed, but by another key than the one pinned.
    #[error("the manifest is signed by key {found}, not by the pinned key {pinned}")]
    OtherKey {
        /// The key the manifest names.
        found: String,
        /// The key the reader trusts.
        pinned: String,
    },
    /// The signature does not match the manifest: it was changed after signing.
    #[error(
        "the manifest's signature does not match its content: the manifest or its signature was changed after signing"
    )]
    Mismatch,
}

/// Verifies a manifest as read (`text`, the file's bytes) against the pinned `key`, and
/// answers it parsed. The whole document is covered, fields this release does not know
/// included.
pub fn verify_manifest(
    text: &[u8],
    key: &ed25519_dalek::VerifyingKey,
) -> Result<Manifest, SignatureError> {
    let value: Value =
        serde_json::from_slice(text).map_err(|e| SignatureError::NotAManifest(e.to_string()))?;
    let signature = match value.get("signature") {
        None | Some(Value::Null) => return Err(SignatureError::Unsigned),
        Some(signature) => serde_json::from_value::<ManifestSignature>(signature.clone())
            .map_err(|e| SignatureError::Malformed(e.to_string()))?,
    };
    if signature.algorithm != ALGORITHM {
        return Err(SignatureError::Malformed(format!(
            "algorithm `{}`, not `{ALGORITHM}`",
            signature.algorithm
        )));
    }
    let pinned = keys::public_text(key);
    if signature.key != pinned {
        return Err(SignatureError::OtherKey {
            found: signature.key,
            pinned,
        });
    }
    let bytes: [u8; 64] = BASE64
        .decode(&signature.value)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignatureError::Malformed("`value` is not base64 of 64 bytes".to_owned()))?;
    key.verify_strict(
        &canonical_bytes(&value, "signature"),
        &ed25519_dalek::Signature::from_bytes(&bytes),
    )
    .map_err(|_| SignatureError::Mismatch)?;
    serde_json::from_value(value).map_err(|e| SignatureError::NotAManifest(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        serde_json::from_value(serde_json::json!({
            "formatVersion": "1.3", "outpostVersion": "0.1.0", "connector": "sqlite",
            "startedAt": "2026-11-30T00:00:00Z", "finishedAt": "2026-11-30T00:00:01Z",
            "files": [{"path": "tables/part-00000.ndjson.zst", "kind": "table",
                       "sha256": "00", "bytes": 1, "records": 1}],
            "totals": {"table": 1}, "skipped": []
        }))
        .expect("manifest")
    }

    fn key(byte: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn a_signed_manifest_verifies_as_written_and_reformatted() {
        let mut m = manifest();
        sign_manifest(&mut m, &key(1));
        let pretty = serde_json::to_vec_pretty(&m).expect("json");
        assert_eq!(
            verify_manifest(&pretty, &key(1).verifying_key()),
            Ok(m.clone())
        );
        // Key order and whitespace do not matter.
        let value = serde_json::to_value(&m).expect("json");
        let sorted_compact = canonical_bytes(&value, "no such member");
        assert!(verify_manifest(&sorted_compact, &key(1).verifying_key()).is_ok());
    }

    #[test]
    fn every_change_and_every_other_key_is_refused() {
        let mut m = manifest();
        sign_manifest(&mut m, &key(1));
        let pinned = key(1).verifying_key();
        // A changed total.
        let mut changed = m.clone();
        changed.totals.insert(crate::output::EntityKind::Table, 2);
        let text = serde_json::to_vec(&changed).expect("json");
        assert_eq!(
            verify_manifest(&text, &pinned),
            Err(SignatureError::Mismatch)
        );
        // A field this release does not know, added after signing, is covered too.
        let mut value = serde_json::to_value(&m).expect("json");
        value["addedLater"] = Value::from(1);
        let text = serde_json::to_vec(&value).expect("json");
        assert_eq!(
            verify_manifest(&text, &pinned),
            Err(SignatureError::Mismatch)
        );
        // Signed by another key, or re-signed by one after a change.
        let mut other = changed.clone();
        sign_manifest(&mut other, &key(2));
        let text = serde_json::to_vec(&other).expect("json");
        assert!(matches!(
            verify_manifest(&text, &pinned),
            Err(SignatureError::OtherKey { .. })
        ));
        // Unsigned.
        let mut unsigned = m.clone();
        unsigned.signature = None;
        let text = serde_json::to_vec(&unsigned).expect("json");
        assert_eq!(
            verify_manifest(&text, &pinned),
            Err(SignatureError::Unsigned)
        );
    }
}
