//! TLS to sources, with libpq's `sslmode` semantics.
//!
//! | mode | encrypted | certificate chain checked | host name checked |
//! |---|---|---|---|
//! | `disable` | no | – | – |
//! | `prefer` | if the server offers it | no | no |
//! | `require` | yes | no | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! Trusted roots are the CA bundle given (the agent's custom CA bundle, `SSL_CERT_FILE`) or,
//! without one, the Mozilla roots compiled in (`webpki-roots`).

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a connection to a source uses TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text.
    Disable,
    /// TLS when the server offers it, without verification.
    Prefer,
    /// TLS, without verification.
    Require,
    /// TLS, certificate chain verified, any host name.
    VerifyCa,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

impl SslMode {
    /// Reads a mode from its parameter value.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The CA bundle could not be read or holds no certificate.
    #[error("cannot use CA bundle {path}: {reason}")]
    CaBundle {
        /// The bundle's path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The roots to trust: the CA bundle when given, else the compiled-in Mozilla roots.
pub fn root_store(ca_bundle: Option<&Path>) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            let shown = path.display().to_string();
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| TlsConfigError::CaBundle {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsConfigError::CaBundle {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
            let (added, _ignored) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(TlsConfigError::CaBundle {
                    path: shown,
                    reason: "no usable certificate".into(),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// A rustls client configuration for `mode` (not for [`SslMode::Disable`]).
pub fn client_config(
    mode: SslMode,
    ca_bundle: Option<&Path>,
) -> Result<ClientConfig, TlsConfigError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = match mode {
        SslMode::VerifyFull => builder
            .with_root_certificates(root_store(ca_bundle)?)
            .with_no_client_auth(),
        SslMode::VerifyCa => {
            let inner = WebPkiServerVerifier::builder_with_provider(
                Arc::new(root_store(ca_bundle)?),
                provider(),
            )
            .build()
            .map_err(|e| TlsConfigError::Rustls(rustls::Error::General(e.to_string())))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient::ChainOnly(inner)))
                .with_no_client_auth()
        }
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient::Unverified(
                provider()
                    .signature_verification_algorithms
                    .supported_schemes(),
            )))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// A verifier for the modes that check less than `verify-full`.
#[derive(Debug)]
enum Lenient {
    /// `verify-ca`: the chain must lead to a trusted root; the host name may differ.
    ChainOnly(Arc<WebPkiServerVerifier>),
    /// `prefer` and `require`: encryption without authentication, as libpq does without a
    /// root certificate. Documented as such; `verify-full` is the default. Holds the
    /// signature schemes offered.
    Unverified(Vec<SignatureScheme>),
}

impl Lenient {
    /// A handshake signature, as the chain's verifier checks it (none is checked without one).
    fn signature(
        &self,
        check: impl FnOnce(&WebPkiServerVerifier) -> Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match self {
            Self::ChainOnly(inner) => check(inner),
            Self::Unverified(_) => Ok(HandshakeSignatureValid::assertion()),
        }
    }
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Self::ChainOnly(inner) = self else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(|inner| inner.verify_tls12_signature(message, cert, dss))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(|inner| inner.verify_tls13_signature(message, cert, dss))
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match self {
            Self::ChainOnly(inner) => inner.supported_verify_schemes(),
            Self::Unverified(schemes) => schemes.clone(),
        }
    }
}
