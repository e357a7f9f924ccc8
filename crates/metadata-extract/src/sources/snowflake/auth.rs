//! How Outpost proves who it is to Snowflake: a key pair (the default), an OAuth access
//! token, or a password.
//!
//! Key-pair login sends a JWT signed with the user's RSA private key (RS256). Snowflake finds
//! the public key by the fingerprint in the `iss` claim, laid out as its documentation says
//! ("Using key-pair authentication", and every official driver):
//! `iss = ACCOUNT.USER.SHA256:<base64 of the SHA-256 of the DER public key>`,
//! `sub = ACCOUNT.USER`, both upper-cased, the account without its region or cloud suffix.
//!
//! Errors never carry key material: their messages are fixed texts.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use pkcs8::der::Encode as _;
use pkcs8::der::asn1::{AnyRef, BitStringRef};
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use ring::rand::SystemRandom;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use sha2::{Digest, Sha256};

use crate::SourceSecret;

/// How long a JWT is valid. Snowflake refuses one valid for more than an hour.
pub const JWT_LIFETIME: Duration = Duration::from_secs(59 * 60);

/// Why a private key could not be used. Fixed texts: never key bytes or the passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, or PEM of something other than a PKCS#8 private key.
    #[error(
        "not a PEM PKCS#8 private key (`-----BEGIN PRIVATE KEY-----` or `-----BEGIN ENCRYPTED PRIVATE KEY-----`); convert a PKCS#1 key with `openssl pkcs8 -topk8`"
    )]
    NotPkcs8,
    /// An encrypted key and no passphrase secret.
    #[error("the private key is encrypted and no `private-key-passphrase` secret is given")]
    NoPassphrase,
    /// The passphrase does not open the key, or its cipher is not supported.
    #[error(
        "cannot decrypt the private key: wrong passphrase, or a cipher other than PBES2 with AES or 3DES"
    )]
    Decrypt,
    /// A key ring refuses (not RSA, shorter than 2048 bits, malformed).
    #[error("the private key is not an RSA key of at least 2048 bits")]
    NotRsa,
}

/// An RSA private key ready to sign, and its public key's fingerprint.
pub struct KeyPair {
    key: RsaKeyPair,
    fingerprint: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Reads a PEM PKCS#8 key, encrypted (with `passphrase`) or not.
    pub fn from_pem(pem: &str, passphrase: Option<&SourceSecret>) -> Result<Self, KeyError> {
        let (label, document) =
            pkcs8::SecretDocument::from_pem(pem.trim()).map_err(|_| KeyError::NotPkcs8)?;
        let plain = match label {
            "PRIVATE KEY" => document,
            "ENCRYPTED PRIVATE KEY" => {
                let passphrase = passphrase.ok_or(KeyError::NoPassphrase)?;
                pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
                    .map_err(|_| KeyError::NotPkcs8)?
                    .decrypt(passphrase.expose())
                    .map_err(|_| KeyError::Decrypt)?
            }
            _ => return Err(KeyError::NotPkcs8),
        };
        let key = RsaKeyPair::from_pkcs8(plain.as_bytes()).map_err(|_| KeyError::NotRsa)?;
        let fingerprint = fingerprint(key.public_key().as_ref()).ok_or(KeyError::NotRsa)?;
        Ok(Self { key, fingerprint })
    }

    /// `SHA256:<base64>` of the DER SubjectPublicKeyInfo, as `DESC USER` shows it in
    /// `RSA_PUBLIC_KEY_FP`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A JWT for `account` and `user`, issued at `now`.
    pub fn jwt(&self, account: &str, user: &str, now: SystemTime) -> Result<String, KeyError> {
        let issued = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| KeyError::NotRsa)?
            .as_secs();
        let subject = format!("{}.{}", jwt_account(account), user.to_uppercase());
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": format!("{subject}.{}", self.fingerprint),
            "sub": subject,
            "iat": issued,
            "exp": issued + JWT_LIFETIME.as_secs(),
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::NotRsa)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// `SHA256:` and the base64 SHA-256 of the DER SubjectPublicKeyInfo wrapping the PKCS#1
/// `RSAPublicKey` that ring gives (rsaEncryption, NULL parameters: what `openssl pkey -pubout`
/// writes).
fn fingerprint(pkcs1_public_key: &[u8]) -> Option<String> {
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
            parameters: Some(AnyRef::NULL),
        },
        subject_public_key: BitStringRef::from_bytes(pkcs1_public_key).ok()?,
    };
    let der = info.to_der().ok()?;
    Some(format!("SHA256:{}", STANDARD.encode(Sha256::digest(der))))
}

/// The account as JWT claims name it: upper-cased, up to its first `.` (`xy12345.us-east-1`
/// is `XY12345`; an organization's `myorg-myaccount` stays whole), as the drivers do.
pub fn jwt_account(account: &str) -> String {
    account.split('.').next().unwrap_or(account).to_uppercase()
}

/// The credential a login presents.
pub enum Credential {
    /// A JWT signed with this key (`AUTHENTICATOR=SNOWFLAKE_JWT`).
    KeyPair(Box<KeyPair>),
    /// An OAuth access token, read from this file at every login: whatever refreshes the
    /// token (a sidecar, a CSI driver) replaces the file.
    OAuth(PathBuf),
    /// A password (discouraged: Snowflake is phasing out single-factor password logins).
    Password(SourceSecret),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KeyPair(key) => f.debug_tuple("KeyPair").field(key).finish(),
            Self::OAuth(path) => f.debug_tuple("OAuth").field(path).finish(),
            Self::Password(_) => f.write_str("Password([redacted])"),
        }
    }
}

impl Credential {
    /// The `AUTHENTICATOR` login field, when one is sent.
    pub fn authenticator(&self) -> Option<&'static str> {
        match self {
            Self::KeyPair(_) => Some("SNOWFLAKE_JWT"),
            Self::OAuth(_) => Some("OAUTH"),
            Self::Password(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_loses_its_region_and_is_upper_cased() {
        assert_eq!(jwt_account("xy12345.us-east-1"), "XY12345");
        assert_eq!(jwt_account("xy12345.east-us-2.azure"), "XY12345");
        assert_eq!(jwt_account("myorg-myaccount"), "MYORG-MYACCOUNT");
        assert_eq!(jwt_account("Acct"), "ACCT");
    }

    #[test]
    fn garbage_is_not_pkcs8_and_the_error_shows_no_input() {
        let secret =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----";
        let error = KeyPair::from_pem(secret, None).expect_err("fails");
        assert_eq!(error, KeyError::NotPkcs8);
        assert!(!error.to_string().contains("c2Vj"));
        assert_eq!(
            KeyPair::from_pem("not a key", None).expect_err("fails"),
            KeyError::NotPkcs8
        );
        let pkcs1 = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            KeyPair::from_pem(pkcs1, None).expect_err("fails"),
            KeyError::NotPkcs8
        );
    }
}
