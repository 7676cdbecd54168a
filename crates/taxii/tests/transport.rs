//! The transport over real sockets: TLS versions and ALPN, the self-signed certificate, plain
//! HTTP only on request, deadlines against silent clients, graceful shutdown.

// Helpers outside `#[test]` functions unwrap too: a test fails loudly on bad setup.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Hub;
use kizuna_store::Store as _;
use kizuna_taxii::server::{self, ServerConfig, TlsMode};
use kizuna_taxii::tls::Fingerprint;
use kizuna_taxii::{AppState, ServiceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn handshake(
    hub: &Hub,
    config: rustls::ClientConfig,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(hub.server.local_addr()).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_preferred_tls12_accepted_alpn_h2() {
    let hub = Hub::start().await;
    let cert = hub.cert_path();

    let tls = handshake(&hub, common::client_tls(&cert, None, &[b"h2", b"http/1.1"]))
        .await
        .unwrap();
    let (_, session) = tls.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));

    let tls12 = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_root_certificates({
            let mut roots = rustls::RootCertStore::empty();
            for c in kizuna_taxii::tls::read_certs(&cert).unwrap() {
                roots.add(c).unwrap();
            }
            roots
        })
        .with_no_client_auth();
    let tls = handshake(&hub, tls12).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    // HTTP/2 through ALPN, HTTP/1.1 when only that is offered.
    let r = hub.client().get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "ok");
    let h1 = reqwest::Client::builder()
        .use_preconfigured_tls(common::client_tls(&cert, None, &[b"http/1.1"]))
        .build()
        .unwrap();
    let r = h1.get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_11);
    assert_eq!(r.status(), 200);
}

/// A ClientHello without the supported_versions extension, claiming `version` (so TLS 1.3 is not
/// offered), with suites, groups and signature schemes the server supports.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut hello = version.to_vec();
    hello.extend([0x42; 32]); // random
    hello.push(0); // session id
    hello.extend([0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]); // ECDHE-{ECDSA,RSA}-AES128-GCM-SHA256
    hello.extend([0x01, 0x00]); // null compression
    let extensions: Vec<u8> = [
        // supported_groups: x25519, secp256r1
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17][..],
        // ec_point_formats: uncompressed
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00][..],
        // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256
        &[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04][..],
    ]
    .concat();
    hello.extend(u16::try_from(extensions.len()).unwrap().to_be_bytes());
    hello.extend(extensions);
    let mut handshake = vec![0x01, 0x00, 0x00, u8::try_from(hello.len()).unwrap()];
    handshake.extend(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend(&handshake);
    record
}

/// The first bytes the server answers a raw ClientHello with (empty if it just closes).
async fn answer_to(hub: &Hub, record: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(hub.server.local_addr()).await.unwrap();
    tcp.write_all(record).await.unwrap();
    let mut answer = [0u8; 7];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer))
        .await
        .unwrap()
        .unwrap_or(0);
    answer[..n].to_vec()
}

/// TLS 1.0 and 1.1 are refused with an alert, while the same hello claiming TLS 1.2 gets a
/// ServerHello.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_below_12_is_refused() {
    let hub = Hub::start().await;
    let tls12 = answer_to(&hub, &legacy_client_hello([0x03, 0x03])).await;
    assert_eq!(
        tls12.first(),
        Some(&0x16),
        "TLS 1.2 hello should get a ServerHello: {tls12:?}"
    );
    for old in [[0x03, 0x01], [0x03, 0x02]] {
        let answer = answer_to(&hub, &legacy_client_hello(old)).await;
        // An alert record (content type 21), or nothing; never a handshake record.
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "TLS {old:?} should be refused, got {answer:?}"
        );
        if answer.len() == 7 {
            assert_eq!(answer[6], 70, "alert should be protocol_version");
        }
    }
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_is_reused_across_restarts() {
    kizuna_taxii::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let store = common::store(dir.path());
    let config = || {
        ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            TlsMode::SelfSigned {
                dir: dir.path().to_path_buf(),
                client_ca: None,
            },
        )
    };
    let state = AppState::new(store.clone(), ServiceConfig::default()).unwrap();
    let first = server::start(config(), state.clone()).await.unwrap();
    let fingerprint = first.certificate_fingerprint().unwrap();
    let cert_path = first.certificate_path().unwrap().to_path_buf();
    assert_eq!(cert_path, dir.path().join("tls").join("cert.pem"));
    let der = kizuna_taxii::tls::read_certs(&cert_path).unwrap();
    assert_eq!(Fingerprint::of(&der[0]), fingerprint);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = dir.path().join("tls").join("key.pem");
        let mode = std::fs::metadata(key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "private key must be readable by its owner only"
        );
    }
    first.shutdown().await;

    let second = server::start(config(), state).await.unwrap();
    assert_eq!(second.certificate_fingerprint(), Some(fingerprint));
    let client = common::client(&cert_path, None);
    let r = client
        .get(format!("{}/healthz", second.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_unless_danger_flag() {
    let hub = Hub::start().await;
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let addr = hub.server.local_addr();
    let r = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(
        r.is_err(),
        "plain HTTP must not be served on a TLS port: {r:?}"
    );
    hub.assert_serving().await;

    kizuna_taxii::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let store = common::store(dir.path());
    let state = AppState::new(store, ServiceConfig::default()).unwrap();
    let server = server::start(
        ServerConfig::new("127.0.0.1:0".parse().unwrap(), TlsMode::DangerPlaintextHttp),
        state,
    )
    .await
    .unwrap();
    assert!(server.certificate_fingerprint().is_none());
    assert!(server.url().starts_with("http://"));
    let r = plain
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), http::Version::HTTP_11);
    // HTTP/2 with prior knowledge is recognised by its preface.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2c
        .get(format!("{}/taxii2/", server.url()))
        .basic_auth("alice", Some(common::PASSWORD))
        .header("Accept", "application/taxii+json;version=2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    server.shutdown().await;
    assert!(
        !dir.path().join("tls").exists(),
        "no certificate made in plaintext mode"
    );
}

/// Clients that connect and stall (before the handshake, or halfway through their headers) hold
/// a connection slot only until their deadline; a real client then gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_cannot_exhaust_connections() {
    let hub = Hub::start_with(
        |_| {},
        |c| {
            c.max_connections = 2;
            c.handshake_timeout = Duration::from_millis(300);
            c.header_read_timeout = Duration::from_millis(300);
        },
    )
    .await;
    // One silent TCP connection…
    let silent = TcpStream::connect(hub.server.local_addr()).await.unwrap();
    // …and one that completes TLS, then sends half a request.
    let mut slow = handshake(
        &hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    slow.flush().await.unwrap();

    let started = std::time::Instant::now();
    let r = hub.client().get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(30));

    // The server ended the stalled exchange (closed, or answered an error) by its deadline.
    let mut buf = [0u8; 64];
    let ended = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf)).await;
    assert!(ended.is_ok(), "stalled TLS client still held open");
    drop(silent);
    let metrics = hub.state.metrics.render();
    assert!(
        metrics.contains("kizuna_connections_dropped_total{reason=\"handshake_timeout\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting() {
    let hub = Hub::start().await;
    hub.assert_serving().await;
    let addr = hub.server.local_addr();
    hub.server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

/// Read audit events are committed off the request path; a graceful shutdown waits for them:
/// after N reads of M objects, exactly N×M serve events are in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_commits_the_audit_events_of_every_read() {
    let hub = Hub::start().await;
    let client = hub.client();
    let objects = format!(
        "/{}/collections/{}/objects/",
        common::ROOT,
        common::COLLECTION
    );
    let indicators: Vec<serde_json::Value> = (0..12)
        .map(|n| {
            serde_json::json!({
                "type": "indicator",
                "spec_version": "2.1",
                "id": format!("indicator--00000000-0000-4000-8000-{n:012x}"),
                "created": "2024-01-01T00:00:00.000Z",
                "modified": "2024-01-01T00:00:00.000Z",
                "pattern": format!("[ipv4-addr:value = '198.51.100.{n}']"),
                "pattern_type": "stix",
                "valid_from": "2024-01-01T00:00:00Z",
            })
        })
        .collect();
    let r = client
        .post(hub.url(&objects))
        .basic_auth("alice", Some(common::PASSWORD))
        .header("Accept", "application/taxii+json;version=2.1")
        .header("Content-Type", "application/taxii+json;version=2.1")
        .body(serde_json::to_vec(&serde_json::json!({ "objects": indicators })).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let reads = 9;
    for _ in 0..reads {
        let r = client
            .get(hub.url(&objects))
            .basic_auth("bob", Some(common::PASSWORD))
            .header("Accept", "application/taxii+json;version=2.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["objects"].as_array().map(Vec::len), Some(12));
    }
    hub.server.shutdown().await;
    let served = hub
        .store
        .audit_events(&kizuna_store::AuditQuery {
            account: Some("bob".to_owned()),
            action: Some(kizuna_store::AuditAction::Serve),
            ..kizuna_store::AuditQuery::default()
        })
        .unwrap();
    assert_eq!(served.len(), reads * 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_connection_limit() {
    let hub = Hub::start_with(
        |_| {},
        |c| {
            c.max_connections_per_ip = 1;
        },
    )
    .await;
    let held = handshake(
        &hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    // A second connection from the same address is closed at once.
    let second = handshake(
        &hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await;
    assert!(second.is_err());
    drop(held);
    // Once the first is gone, the slot is free again (the server notices the close promptly).
    let mut ok = false;
    for _ in 0..50 {
        if handshake(
            &hub,
            common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
        )
        .await
        .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok);
}

/// An HTTP/2 connection that never sends a request (its pings would be answered forever) is
/// closed after the idle timeout; so is an idle HTTP/1 keep-alive connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let hub = Hub::start_with(
        |_| {},
        |c| {
            c.idle_timeout = Duration::from_millis(300);
            c.shutdown_grace = Duration::from_secs(1);
        },
    )
    .await;
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let mut tls = handshake(&hub, common::client_tls(&hub.cert_path(), None, &[alpn]))
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            let mut buf = [0u8; 1024];
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {} // HTTP/2 SETTINGS, GOAWAY
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "idle {alpn:?} connection still open");
    }
    hub.assert_serving().await;
}

/// Sends raw HTTP/1.1 bytes over TLS and returns everything the server answers until it closes
/// or `wait` passes.
async fn raw_exchange(hub: &Hub, parts: &[&[u8]], wait: Duration) -> String {
    let mut tls = handshake(
        hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    for part in parts {
        tls.write_all(part).await.unwrap();
        tls.flush().await.unwrap();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, tls.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn basic_alice() -> String {
    use base64::Engine as _;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", common::PASSWORD));
    format!("Authorization: Basic {token}\r\n")
}

/// A client that declares a body and then stalls gets an error at the request deadline instead
/// of holding its connection and a handler forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_upload_times_out() {
    let hub = Hub::start_with(|_| {}, |c| c.request_timeout = Duration::from_millis(500)).await;
    let head = format!(
        "POST /{}/collections/{}/objects/ HTTP/1.1\r\nHost: localhost\r\n{}\
         Content-Type: application/taxii+json;version=2.1\r\n\
         Accept: application/taxii+json;version=2.1\r\nContent-Length: 1000\r\n\r\n{{\"obj",
        common::ROOT,
        common::COLLECTION,
        basic_alice()
    );
    let started = std::time::Instant::now();
    let answer = raw_exchange(&hub, &[head.as_bytes()], Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("did not complete"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(20));
    hub.assert_serving().await;
}

/// A chunked body (no Content-Length) is cut off as soon as it crosses the API root's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_limit_gets_413() {
    let hub = Hub::start().await;
    let head = format!(
        "POST /{}/collections/{}/objects/ HTTP/1.1\r\nHost: localhost\r\n{}\
         Content-Type: application/taxii+json;version=2.1\r\n\
         Accept: application/taxii+json;version=2.1\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n",
        common::SMALL_ROOT,
        common::COLLECTION,
        basic_alice()
    );
    let chunk = format!("{:x}\r\n{}\r\n", 800, " ".repeat(800));
    let answer = raw_exchange(
        &hub,
        &[
            head.as_bytes(),
            chunk.as_bytes(),
            chunk.as_bytes(),
            b"0\r\n\r\n",
        ],
        Duration::from_secs(20),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_content_length"), "{answer}");
    hub.assert_serving().await;
}

/// Shutdown lets requests in flight finish, but a client that never finishes its request cannot
/// hold the server up beyond the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_by_the_grace_period() {
    let hub = Hub::start_with(|_| {}, |c| c.shutdown_grace = Duration::from_millis(500)).await;
    let mut tls = handshake(
        &hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let head = format!(
        "POST /{}/collections/{}/objects/ HTTP/1.1\r\nHost: localhost\r\n{}\
         Content-Type: application/taxii+json;version=2.1\r\nContent-Length: 1000\r\n\r\n{{",
        common::ROOT,
        common::COLLECTION,
        basic_alice()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    hub.server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the stalled connection should be closed");
}

/// The head of a POST of `length` bytes to the small API root (limit 1000 bytes), as alice.
fn oversized_post_head(length: usize, extra: &str) -> String {
    format!(
        "POST /{}/collections/{}/objects/ HTTP/1.1\r\nHost: localhost\r\n{}\
         Content-Type: application/taxii+json;version=2.1\r\n\
         Accept: application/taxii+json;version=2.1\r\nContent-Length: {length}\r\n{extra}\r\n",
        common::SMALL_ROOT,
        common::COLLECTION,
        basic_alice()
    )
}

/// Reads one HTTP/1 response with a Content-Length body (or up to EOF).
async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(usize::MAX);
            if answer.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return text;
        }
        answer.extend(&buf[..n]);
    }
}

/// A plain client (as Python `requests` does) writes its whole body before it reads anything:
/// the server answers 413 as soon as it sees Content-Length, and must then keep reading and
/// discarding the body (a lingering close) instead of closing at once, whose reset would destroy
/// the 413 before the client reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_writing_its_whole_body_first_reads_the_413() {
    let hub = Hub::start().await;
    // Far more than the socket buffers of both sides hold.
    let length = 32 << 20;
    let mut tls = handshake(
        &hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let exchange = async {
        tls.write_all(oversized_post_head(length, "").as_bytes())
            .await
            .unwrap();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..length / chunk.len() {
            tls.write_all(&chunk)
                .await
                .expect("the server must read the body it refused, not reset the connection");
        }
        tls.flush().await.unwrap();
        read_response(&mut tls).await
    };
    let answer = tokio::time::timeout(Duration::from_secs(120), exchange)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        error["description"]
            .as_str()
            .unwrap()
            .contains("max_content_length"),
        "{error}"
    );
    hub.assert_serving().await;
}

/// With `Expect: 100-continue` the server answers 413 at once, without asking for the body
/// (no `100 Continue`), and closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_gets_413_without_sending_the_body() {
    let hub = Hub::start().await;
    let mut tls = handshake(
        &hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    tls.write_all(oversized_post_head(32 << 20, "Expect: 100-continue\r\n").as_bytes())
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), read_response(&mut tls))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_content_length"), "{answer}");
    // Then EOF: the server half-closed after its answer.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    hub.assert_serving().await;
}

/// The lingering close is bounded: past `lingering_bytes` the server closes, and a client that
/// keeps sending sees its connection fail instead of being read forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_close_is_bounded_in_bytes() {
    let hub = Hub::start_with(|_| {}, |c| c.lingering_bytes = 1 << 20).await;
    let length = 256 << 20;
    let mut tls = handshake(
        &hub,
        common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let send = async {
        tls.write_all(oversized_post_head(length, "").as_bytes())
            .await?;
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..length / chunk.len() {
            tls.write_all(&chunk).await?;
        }
        tls.flush().await
    };
    let sent = tokio::time::timeout(Duration::from_secs(120), send)
        .await
        .unwrap();
    assert!(
        sent.is_err(),
        "256 MiB were accepted past a 1 MiB lingering bound"
    );
    hub.assert_serving().await;
}
