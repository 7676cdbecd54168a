//! TLS for the server: rustls with the *ring* provider, TLS 1.3 and 1.2 only (rustls has nothing
//! older, and negotiates 1.3 whenever the client offers it), ALPN `h2` and `http/1.1`, optional
//! client certificates, and a self-signed certificate made on first start when none is configured.

use std::fmt;
use std::fs;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest, Sha256};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Only one of the self-signed certificate and its key exists; refusing to replace either.
    #[error(
        "{present} exists but {missing} does not; remove the first or restore the second \
         (refusing to overwrite a certificate or key)"
    )]
    Incomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// Certificate generation failed.
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration (key not matching the certificate, bad CA bundle).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA bundle could not be used.
    #[error("client CA bundle: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

/// SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    /// Upper-case hex pairs separated by colons, as `openssl x509 -fingerprint -sha256` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Installs *ring* as the process-wide rustls crypto provider. Safe to call more than once; a
/// provider installed earlier (by anyone) is kept.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where the self-signed certificate lives in a data directory.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The self-signed certificate of a data directory: `tls/cert.pem` and `tls/key.pem`, made on
/// first use for `localhost`, `127.0.0.1` and `::1` (key file mode 0600) and reused afterwards.
/// Returns the two paths and whether they were just generated.
pub fn load_or_generate_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    let (cert, key) = self_signed_paths(data_dir);
    match (cert.exists(), key.exists()) {
        (true, true) => return Ok((cert, key, false)),
        (true, false) => {
            return Err(TlsError::Incomplete {
                present: cert,
                missing: key,
            });
        }
        (false, true) => {
            return Err(TlsError::Incomplete {
                present: key,
                missing: cert,
            });
        }
        (false, false) => {}
    }
    let dir = data_dir.join("tls");
    fs::create_dir_all(&dir).map_err(|source| TlsError::Io {
        path: dir.clone(),
        source,
    })?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Kizuna self-signed (localhost)");
    let signing_key = rcgen::KeyPair::generate()?;
    let generated = params.self_signed(&signing_key)?;
    // Key first, then certificate: a crash in between leaves an `Incomplete` error, never a
    // certificate without its key. Each file appears atomically (written aside, then renamed).
    write_atomically(&key, signing_key.serialize_pem().as_bytes(), true)?;
    write_atomically(&cert, generated.pem().as_bytes(), false)?;
    Ok((cert, key, true))
}

fn write_atomically(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)
}

/// Reads every certificate of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file = fs::File::open(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let file = fs::File::open(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|source| TlsError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::Pem {
            path: path.to_path_buf(),
            what: "no PRIVATE KEY block".to_owned(),
        })
}

/// A loaded server TLS configuration and the fingerprint of its (leaf) certificate.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The rustls configuration for the acceptor.
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the server certificate.
    pub fingerprint: Fingerprint,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
}

/// Builds the rustls server configuration from a certificate chain and key in PEM files, with
/// client certificates verified against `client_ca` when given. Clients without a certificate
/// are still admitted (they authenticate with a password or an API key instead); a client that
/// presents a certificate not issued by the CA fails the handshake.
pub fn server_tls(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTls, TlsError> {
    let chain = read_certs(cert)?;
    let fingerprint = Fingerprint::of(&chain[0]);
    let key = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        fingerprint,
        cert_path: cert.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_reused() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, made) = load_or_generate_self_signed(dir.path()).unwrap();
        assert!(made);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let first = server_tls(&cert, &key, None).unwrap().fingerprint;
        let (cert2, key2, made) = load_or_generate_self_signed(dir.path()).unwrap();
        assert!(!made);
        assert_eq!(server_tls(&cert2, &key2, None).unwrap().fingerprint, first);
        assert_eq!(first.to_string().len(), 32 * 3 - 1);
    }

    #[test]
    fn refuses_half_a_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = load_or_generate_self_signed(dir.path()).unwrap();
        fs::remove_file(&key).unwrap();
        assert!(matches!(
            load_or_generate_self_signed(dir.path()),
            Err(TlsError::Incomplete { .. })
        ));
        assert!(cert.exists());
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pem");
        fs::write(&p, "not pem").unwrap();
        assert!(matches!(read_certs(&p), Err(TlsError::Pem { .. })));
        assert!(matches!(read_key(&p), Err(TlsError::Pem { .. })));
        assert!(matches!(
            read_certs(&dir.path().join("missing.pem")),
            Err(TlsError::Io { .. })
        ));
    }
}
