//! A hub on a real SQLite store behind the real server (TLS on 127.0.0.1:0), and HTTPS clients
//! that trust its self-signed certificate; shared by `transport.rs` and `security.rs`.

#![allow(dead_code)] // Each test binary uses its own part of the helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kizuna_stix::Tlp;
use kizuna_store::{ApiRoot, Collection, NewAccount, Permission, SqliteStore, Store};
use kizuna_taxii::server::{self, RunningServer, ServerConfig, TlsMode};
use kizuna_taxii::{AppState, ServiceConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// API root with a large `max_content_length` (the JSON guards must trigger before it).
pub const ROOT: &str = "api1";
/// API root with a `max_content_length` of [`SMALL_LIMIT`].
pub const SMALL_ROOT: &str = "small";
/// `max_content_length` of [`SMALL_ROOT`].
pub const SMALL_LIMIT: u64 = 1000;
/// A collection in each root, readable and writable by `alice`.
pub const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
/// Passwords of the password accounts (`admin`, `alice`, `bob`).
pub const PASSWORD: &str = "correct horse battery staple";
/// The API key of account `robot`.
pub const API_KEY: &str = "kz_test_0123456789abcdef0123456789abcdef";

/// A store with two API roots, one collection each, and accounts: `admin` (administrator),
/// `alice` and `bob` (read/write), `robot` (API key only), `partner` (client certificate, mapped
/// by the caller).
pub fn store(dir: &Path) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(dir).unwrap());
    for (name, max) in [(ROOT, 64u64 << 20), (SMALL_ROOT, SMALL_LIMIT)] {
        store
            .create_api_root(&ApiRoot {
                name: name.to_owned(),
                title: format!("root {name}"),
                description: None,
                max_content_length: max,
            })
            .unwrap();
        store
            .create_collection(&Collection {
                api_root: name.to_owned(),
                id: COLLECTION.to_owned(),
                title: "main".to_owned(),
                description: None,
                alias: None,
                media_types: vec!["application/stix+json;version=2.1".to_owned()],
            })
            .unwrap();
    }
    let hash = kizuna_store::hash_password(PASSWORD).unwrap();
    for (name, admin, password) in [
        ("admin", true, true),
        ("alice", false, true),
        ("bob", false, true),
        ("robot", false, false),
        ("partner", false, false),
    ] {
        store
            .create_account(&NewAccount {
                name: name.to_owned(),
                password_hash: password.then(|| hash.clone()),
                tlp_clearance: Tlp::Amber,
                admin,
            })
            .unwrap();
        if !admin {
            for root in [ROOT, SMALL_ROOT] {
                store
                    .set_permission(
                        name,
                        &Permission {
                            api_root: root.to_owned(),
                            collection: COLLECTION.to_owned(),
                            read: true,
                            write: true,
                        },
                    )
                    .unwrap();
            }
        }
    }
    store
        .add_api_key("robot", &kizuna_store::sha256(API_KEY.as_bytes()))
        .unwrap();
    store
}

/// A running hub and what tests need to reach it.
pub struct Hub {
    /// Holds the data directory (store and self-signed certificate).
    pub dir: tempfile::TempDir,
    /// The store, for arranging and inspecting.
    pub store: Arc<SqliteStore>,
    /// The server's state (shares metrics and caches with the server).
    pub state: AppState,
    /// The server.
    pub server: RunningServer,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
}

impl Hub {
    /// Starts a hub with self-signed TLS, changing the service and server settings with the
    /// given functions.
    pub async fn start_with(
        service: impl FnOnce(&mut ServiceConfig),
        transport: impl FnOnce(&mut ServerConfig),
    ) -> Hub {
        kizuna_taxii::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut config = ServiceConfig::default();
        service(&mut config);
        let state = AppState::new(store.clone(), config).unwrap();
        let mut server_config = ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            TlsMode::SelfSigned {
                dir: dir.path().to_path_buf(),
                client_ca: None,
            },
        );
        transport(&mut server_config);
        let server = server::start(server_config, state.clone()).await.unwrap();
        let base = server.url();
        Hub {
            dir,
            store,
            state,
            server,
            base,
        }
    }

    /// Starts a hub with default settings.
    pub async fn start() -> Hub {
        Self::start_with(|_| {}, |_| {}).await
    }

    /// The self-signed certificate's path.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls").join("cert.pem")
    }

    /// A client trusting the hub's certificate.
    pub fn client(&self) -> reqwest::Client {
        client(&self.cert_path(), None)
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Asserts the server still answers: `/healthz` without credentials, and discovery for
    /// `admin`.
    pub async fn assert_serving(&self) {
        let c = self.client();
        let r = c.get(self.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "ok");
        let r = c
            .get(self.url("/taxii2/"))
            .basic_auth("admin", Some(PASSWORD))
            .header("Accept", "application/taxii+json;version=2.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// A rustls client configuration trusting the PEM certificates in `roots`, with an optional
/// client certificate, offering `alpn`.
pub fn client_tls(
    roots: &Path,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    kizuna_taxii::tls::install_crypto_provider();
    let mut store = rustls::RootCertStore::empty();
    for cert in kizuna_taxii::tls::read_certs(roots).unwrap() {
        store.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(store);
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// An HTTPS client trusting the PEM certificates in `roots`, offering h2 and http/1.1.
pub fn client(
    roots: &Path,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_tls(roots, identity, &[b"h2", b"http/1.1"]))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A test PKI: a CA and a client certificate it issued.
pub struct TestPki {
    /// The CA certificate, PEM, written to a file.
    pub ca_path: PathBuf,
    /// The client certificate's DER.
    pub client_cert: CertificateDer<'static>,
    /// The client key.
    pub client_key: PrivateKeyDer<'static>,
}

/// Makes a CA (written to `dir/NAME-ca.pem`) and one client certificate issued by it.
pub fn test_pki(dir: &Path, name: &str) -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_path = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} client"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&client_key, &issuer).unwrap();
    TestPki {
        ca_path,
        client_cert: cert.der().clone(),
        client_key: PrivateKeyDer::Pkcs8(client_key.serialize_der().into()),
    }
}
