//! The client against partners that misbehave (garbage, errors, stalls, cut connections, oversized
//! bodies, redirects) and against TLS servers (pinned certificate, CA bundle, client certificate).
//! Every server here is a scripted one on 127.0.0.1:0. And the engine against a partner whose
//! `DELETE`s fail: the deletion watermark moves only over deletions the partner answered.

#![allow(clippy::unwrap_used)] // a test fails loudly on bad test data

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kizuna_sync::Error;
use kizuna_sync::client::{Auth, ClientCert, ClientConfig, Secret, TaxiiClient, Trust, base_url};
use kizuna_sync::retry::RetryPolicy;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DISCOVERY: &str = r#"{"title":"scripted","api_roots":[]}"#;

/// Reads a request head (bounded), returns its path.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut byte).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1).map(str::to_owned)
}

fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const TAXII: &str = "application/taxii+json;version=2.1";

/// Serves scripted misbehaviour by path; `/flaky/` answers 429 with Retry-After twice, then
/// answers.
async fn scripted() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let flaky = Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let flaky = flaky.clone();
            tokio::spawn(async move {
                let Some(path) = read_head(&mut s).await else {
                    return;
                };
                let out = match path.as_str() {
                    "/ok/" => response("200 OK", TAXII, DISCOVERY),
                    "/garbage/" => response("200 OK", TAXII, "{not json at all"),
                    "/html/" => response("200 OK", "text/html", "<html>login</html>"),
                    "/error/" => response(
                        "500 Internal Server Error",
                        TAXII,
                        r#"{"title":"database on fire","description":"try later","http_status":"500"}"#,
                    ),
                    "/redirect/" => b"HTTP/1.1 302 Found\r\nLocation: http://example.invalid/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    "/declared-huge/" => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {TAXII}\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n{{"
                    )
                    .into_bytes(),
                    "/streamed-huge/" => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: {TAXII}\r\nConnection: close\r\n\r\n{{\"objects\":["
                        );
                        if s.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = vec![b' '; 64 * 1024];
                        // At most 64 MiB, but the client should stop after its 1 MiB cap.
                        for _ in 0..1024 {
                            if s.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                        return;
                    }
                    "/cut/" => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: {TAXII}\r\nContent-Length: 5000\r\n\r\n{{\"objects\":["
                        );
                        let _ = s.write_all(head.as_bytes()).await;
                        return;
                    }
                    "/stall/" => {
                        tokio::time::sleep(Duration::from_secs(20)).await;
                        return;
                    }
                    "/flaky/" => {
                        if flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
                        } else {
                            response("200 OK", TAXII, DISCOVERY)
                        }
                    }
                    _ => response("404 Not Found", TAXII, r#"{"title":"not found"}"#),
                };
                let _ = s.write_all(&out).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

fn plain_client(max: u64, timeout: Duration) -> TaxiiClient {
    TaxiiClient::new(&ClientConfig {
        auth: Auth::Bearer(Secret::new("token")),
        danger_plaintext_http: true,
        max_response_bytes: max,
        request_timeout: timeout,
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_partners_give_typed_errors() {
    let addr = scripted().await;
    let c = plain_client(1024 * 1024, Duration::from_secs(2));
    let url = |p: &str| base_url(&format!("http://{addr}{p}")).unwrap();

    assert_eq!(c.discovery(&url("/ok/")).await.unwrap().title, "scripted");

    let e = c.discovery(&url("/garbage/")).await.unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
    let e = c.discovery(&url("/html/")).await.unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("text/html"));

    let e = c.discovery(&url("/error/")).await.unwrap_err();
    match &e {
        Error::Status {
            status: 500,
            message,
            ..
        } => {
            assert!(message.contains("database on fire"), "{message}")
        }
        other => panic!("{other}"),
    }
    assert!(e.is_retryable());

    let e = c.discovery(&url("/redirect/")).await.unwrap_err();
    assert!(
        matches!(e, Error::Status { status: 302, .. }),
        "redirects are not followed: {e}"
    );

    let e = c.discovery(&url("/nothing/")).await.unwrap_err();
    assert!(matches!(e, Error::Status { status: 404, .. }));
    assert!(!e.is_retryable());

    let e = c.discovery(&url("/declared-huge/")).await.unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    let e = c.discovery(&url("/streamed-huge/")).await.unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 1048576, .. }), "{e}");

    let e = c.discovery(&url("/cut/")).await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e}");
    assert!(e.is_retryable());

    let started = std::time::Instant::now();
    let e = c.discovery(&url("/stall/")).await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout bounds a stalled partner"
    );

    // Nothing listens on a port we just released: refused, retryable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = c
        .discovery(&base_url(&format!("http://127.0.0.1:{port}/")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_)) && e.is_retryable(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_with_backoff() {
    let addr = scripted().await;
    let c = plain_client(1024 * 1024, Duration::from_secs(2));
    let url = base_url(&format!("http://{addr}/flaky/")).unwrap();
    let policy = RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    let first = c.discovery(&url).await.unwrap_err();
    assert_eq!(first.retry_after(), Some(Duration::from_secs(1)), "{first}");
    assert!(first.is_retryable());
    let started = std::time::Instant::now();
    let d = policy.run("discovery", || c.discovery(&url)).await.unwrap();
    assert_eq!(d.title, "scripted");
    // One more 429 with Retry-After: 1, capped by the policy's largest delay (100 ms).
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

// ----- TLS -----

struct Pki {
    ca_pem: String,
    leaf_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
    client_cert: ClientCert,
}

fn make_pki(require_client_cert: bool) -> Pki {
    let provider = kizuna_sync::client::tls::provider();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["partner-mod".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();

    let key_der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let server = builder
        .with_single_cert(vec![leaf.der().clone()], key_der)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_der: leaf.der().to_vec(),
        server: Arc::new(server),
        client_cert: ClientCert {
            chain_pem: client.pem().into_bytes(),
            key_pem: client_key.serialize_pem().into_bytes(),
        },
    }
}

async fn tls_server(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                if read_head(&mut tls).await.is_some() {
                    let _ = tls.write_all(&response("200 OK", TAXII, DISCOVERY)).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

fn tls_client(trust: Trust, client_cert: Option<ClientCert>) -> TaxiiClient {
    TaxiiClient::new(&ClientConfig {
        trust: Some(trust),
        client_cert,
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap()
}

async fn try_discovery(c: &TaxiiClient, url: &str) -> Result<String, Error> {
    c.discovery(&base_url(url).unwrap()).await.map(|d| d.title)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_certificates_and_ca_bundles() {
    let pki = make_pki(false);
    let addr = tls_server(pki.server.clone()).await;
    let by_ip = format!("https://127.0.0.1:{}/taxii2/", addr.port());
    let by_name = format!("https://localhost:{}/taxii2/", addr.port());

    let pin: [u8; 32] = Sha256::digest(&pki.leaf_der).into();
    let pinned = tls_client(Trust::PinnedSha256(pin), None);
    assert_eq!(
        try_discovery(&pinned, &by_ip).await.unwrap(),
        "scripted",
        "the pin is the identity: no name check"
    );
    let wrong = tls_client(Trust::PinnedSha256([7; 32]), None);
    let e = try_discovery(&wrong, &by_ip).await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e}");

    let ca = tls_client(Trust::CaBundle(pki.ca_pem.clone().into_bytes()), None);
    assert_eq!(try_discovery(&ca, &by_name).await.unwrap(), "scripted");
    let e = try_discovery(&ca, &by_ip).await.unwrap_err();
    assert!(
        matches!(e, Error::Transport(_)),
        "name mismatch must fail: {e}"
    );
    let other = make_pki(false);
    let stranger = tls_client(Trust::CaBundle(other.ca_pem.into_bytes()), None);
    assert!(try_discovery(&stranger, &by_name).await.is_err());

    // Without trust configured, https fails instead of trusting anything.
    let none = TaxiiClient::new(&ClientConfig::default()).unwrap();
    assert!(try_discovery(&none, &by_name).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_authenticate() {
    let pki = make_pki(true);
    let addr = tls_server(pki.server.clone()).await;
    let url = format!("https://localhost:{}/taxii2/", addr.port());
    let trust = Trust::CaBundle(pki.ca_pem.clone().into_bytes());
    let with = tls_client(trust.clone(), Some(pki.client_cert.clone()));
    assert_eq!(try_discovery(&with, &url).await.unwrap(), "scripted");
    let without = tls_client(trust, None);
    assert!(try_discovery(&without, &url).await.is_err());
}

/// An API root whose `DELETE`s answer 503 until `accept` is set, then 200; every `DELETE` target
/// is recorded.
async fn deleting_partner(
    accept: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (accept, seen) = (accept.clone(), seen.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut byte = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut byte).await {
                        Ok(n) if n > 0 && buf.len() < 64 * 1024 => {
                            buf.extend_from_slice(&byte[..n])
                        }
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let out = match (method, path) {
                    ("GET", "/api/") => response(
                        "200 OK",
                        TAXII,
                        r#"{"title":"scripted","versions":["application/taxii+json;version=2.1"],"max_content_length":100000}"#,
                    ),
                    ("DELETE", _) => {
                        seen.lock().unwrap().push(path.to_owned());
                        if accept.load(Ordering::SeqCst) {
                            response("200 OK", TAXII, "")
                        } else {
                            response(
                                "503 Service Unavailable",
                                TAXII,
                                r#"{"title":"down for maintenance"}"#,
                            )
                        }
                    }
                    _ => response("404 Not Found", TAXII, r#"{"title":"not found"}"#),
                };
                let _ = s.write_all(&out).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// The deletion watermark moves only over deletions the partner answered: a 503 (after the
/// retries) fails the run and leaves it, so the next run sends the same `DELETE` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_advance_only_once_the_partner_answered() {
    use kizuna_stix::{ObjectMeta, Timestamp, Tlp};
    use kizuna_store::{
        ApiRoot, Collection, NewObject, ObjectQuery, SqliteStore, Store, VersionFilter,
    };
    use kizuna_sync::ledger::LedgerEntry;
    use kizuna_sync::state::SyncDb;
    use kizuna_sync::{PartnerConfig, PushMapping, SyncEngine, SyncOptions};

    let accept = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = deleting_partner(accept.clone(), seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store
        .create_api_root(&ApiRoot {
            name: "hub".into(),
            title: "hub".into(),
            description: None,
            max_content_length: 1 << 20,
        })
        .unwrap();
    store
        .create_collection(&Collection {
            api_root: "hub".into(),
            id: "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e01".into(),
            title: "shared".into(),
            description: None,
            alias: Some("shared".into()),
            media_types: vec![],
        })
        .unwrap();
    let shared = store.collection("hub", "shared").unwrap().unwrap();
    let id = "indicator--7a1c0000-0000-4000-8000-000000000001";
    let version = "2026-01-01T00:00:00.000Z";
    let indicator = serde_json::json!({"type": "indicator", "spec_version": "2.1", "id": id,
        "created": version, "modified": version, "pattern": "[ipv4-addr:value = '192.0.2.1']",
        "pattern_type": "stix", "valid_from": version,
        "object_marking_refs": [Tlp::Green.marking_id()]});
    store
        .add_objects(
            &shared.as_ref(),
            vec![NewObject {
                meta: ObjectMeta::from_value(&indicator).unwrap(),
                json: indicator.to_string(),
            }],
        )
        .unwrap();
    // It went to the partner in an earlier run: the ledger says so, the watermark is past it.
    let db = Arc::new(SyncDb::open(dir.path()).unwrap());
    let sent = LedgerEntry {
        time: Timestamp::now(),
        exit: kizuna_sync::ledger::Exit::Push,
        partner: "scripted".into(),
        object_id: id.into(),
        version: version.into(),
        marking: "green".into(),
        sha256: kizuna_sync::ledger::sha256_hex(indicator.to_string().as_bytes()),
    };
    db.commit_push("scripted", &shared.id, "remote", 1_000, &[sent])
        .unwrap();
    let all = ObjectQuery {
        versions: VersionFilter::All,
        ..Default::default()
    };
    assert_eq!(store.delete_object(&shared.as_ref(), id, &all).unwrap(), 1);

    let mut partner = PartnerConfig::new("scripted", format!("http://{addr}/api/"));
    partner.danger_plaintext_http = true;
    partner.push.push(PushMapping {
        local: "shared".into(),
        remote: "remote".into(),
        local_api_root: None,
    });
    let options = SyncOptions {
        retry: RetryPolicy {
            attempts: 2,
            base: Duration::from_millis(1),
            max: Duration::from_millis(1),
        },
        ..SyncOptions::default()
    };
    let engine = SyncEngine::new(store.clone(), db.clone(), options);
    let e = engine.sync_partner(&partner).await.unwrap_err();
    assert!(e.to_string().contains("503"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 2, "retried, then given up");
    assert_eq!(
        db.deletion_watermark("scripted", &shared.id, "remote")
            .unwrap(),
        None
    );

    accept.store(true, Ordering::SeqCst);
    let r = engine.sync_partner(&partner).await.unwrap();
    assert_eq!(r.pushes[0].1.deleted, 1, "{r:?}");
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert!(
        last.starts_with(&format!(
            "/api/collections/remote/objects/{id}/?match%5Bversion%5D=2026-01-01T00"
        )) || last.starts_with(&format!(
            "/api/collections/remote/objects/{id}/?match[version]=2026-01-01T00"
        )),
        "{last}"
    );
    assert!(
        db.deletion_watermark("scripted", &shared.id, "remote")
            .unwrap()
            .is_some()
    );
    let r = engine.sync_partner(&partner).await.unwrap();
    assert_eq!(r.pushes[0].1.deleted, 0, "sent once: {r:?}");
    assert_eq!(seen.lock().unwrap().len(), 3);
}
