//! The rustls configuration a partner connection uses: trust (CA bundle or pinned certificate)
//! and the optional client certificate.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How the partner's server certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates chaining to one of these PEM-encoded CA certificates, with the host name
    /// checked against the URL.
    CaBundle(Vec<u8>),
    /// Exactly the certificate whose DER encoding has this SHA-256 (what `kizuna serve` logs for
    /// its self-signed certificate). The pin *is* the identity: chain and host name are not
    /// checked, validity dates neither; the handshake signature is.
    PinnedSha256([u8; 32]),
}

/// A client certificate chain and its private key, PEM-encoded.
#[derive(Clone)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub chain_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("chain_pem", &format_args!("{} bytes", self.chain_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The ring provider, installed as the process default when none is (tolerating one already
/// installed by another crate), and returned for explicit use.
pub fn provider() -> Arc<CryptoProvider> {
    // An error here only means another provider is already the process default; we never rely on
    // the default ourselves, we pass this provider explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for one partner.
pub fn client_config(
    trust: &Trust,
    client_cert: Option<&ClientCert>,
) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match trust {
        Trust::CaBundle(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            let mut count = 0usize;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| Error::Tls(format!("CA bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("CA bundle: {e}")))?;
                count += 1;
            }
            if count == 0 {
                return Err(Error::Tls("CA bundle holds no certificate".into()));
            }
            builder.with_root_certificates(roots)
        }
        Trust::PinnedSha256(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertVerifier {
                pin: *pin,
                algorithms: provider.signature_verification_algorithms,
            })),
    };
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some(cc) => {
            let chain = rustls_pemfile::certs(&mut cc.chain_pem.as_slice())
                .collect::<Result<Vec<CertificateDer<'static>>, _>>()
                .map_err(|e| Error::Tls(format!("client certificate: {e}")))?;
            if chain.is_empty() {
                return Err(Error::Tls(
                    "client certificate file holds no certificate".into(),
                ));
            }
            let key: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut cc.key_pem.as_slice())
                    .map_err(|e| Error::Tls(format!("client key: {e}")))?
                    .ok_or_else(|| Error::Tls("client key file holds no private key".into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(format!("client certificate: {e}")))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A configuration that trusts nothing: for clients meant for plain HTTP only, so that an
/// `https` URL fails at the handshake instead of being trusted by accident.
pub fn client_config_without_trust() -> Result<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Parses a SHA-256 fingerprint written as 64 hex digits, optionally separated by colons
/// (`AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints it).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32]> {
    let hex_digits: String = text
        .trim()
        .trim_start_matches("sha256:")
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let bytes = hex::decode(&hex_digits)
        .map_err(|_| Error::Config(format!("invalid SHA-256 fingerprint {text:?}")))?;
    bytes
        .try_into()
        .map_err(|_| Error::Config(format!("a SHA-256 fingerprint has 32 bytes: {text:?}")))
}

/// Accepts exactly one end-entity certificate, by the SHA-256 of its DER encoding.
#[derive(Debug)]
struct PinnedCertVerifier {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex64 = "ab".repeat(32);
        assert_eq!(parse_fingerprint(&hex64).unwrap(), [0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }

    #[test]
    fn empty_ca_bundle_is_refused() {
        assert!(client_config(&Trust::CaBundle(Vec::new()), None).is_err());
    }
}
