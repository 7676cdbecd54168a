//! Authentication and limits over real HTTPS: each hostile or wrong request gets a clear error
//! (TAXII error JSON), and the server keeps serving afterwards.

// Helpers outside `#[test]` functions unwrap too: a test fails loudly on bad setup.
#![allow(clippy::unwrap_used)]

mod common;

use common::{API_KEY, COLLECTION, Hub, PASSWORD, ROOT, SMALL_LIMIT, SMALL_ROOT};
use kizuna_store::{AuditAction, AuditQuery, Store};
use kizuna_taxii::media::TAXII_JSON;
use kizuna_taxii::server::TlsMode;
use serde_json::Value;

const ACCEPT: &str = "application/taxii+json;version=2.1";

fn objects_path(root: &str) -> String {
    format!("/{root}/collections/{COLLECTION}/objects/")
}

async fn discovery(hub: &Hub, request: reqwest::RequestBuilder) -> reqwest::Response {
    let _ = hub;
    request.header("Accept", ACCEPT).send().await.unwrap()
}

/// Checks a TAXII error answer and returns its body.
async fn taxii_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        TAXII_JSON
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["http_status"], status.to_string());
    assert!(body["title"].is_string());
    body
}

fn login_failures(hub: &Hub) -> Vec<kizuna_store::AuditRecord> {
    hub.store
        .audit_events(&AuditQuery {
            action: Some(AuditAction::LoginFailed),
            limit: 100,
            ..AuditQuery::default()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_get_401_with_challenges() {
    let hub = Hub::start().await;
    let c = hub.client();
    let r = discovery(&hub, c.get(hub.url("/taxii2/"))).await;
    let challenges: Vec<String> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenges.contains(&r#"Basic realm="kizuna", charset="UTF-8""#.to_owned()),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer")),
        "{challenges:?}"
    );
    taxii_error(r, 401).await;
    // Every TAXII path is protected, the API root's too.
    for path in [format!("/{ROOT}/"), objects_path(ROOT)] {
        let r = discovery(&hub, c.get(hub.url(&path))).await;
        taxii_error(r, 401).await;
    }
    // Missing credentials are not a failed login.
    assert!(login_failures(&hub).is_empty());
    hub.assert_serving().await;
}

/// Over HTTP/1, a 401 that leaves the request's body unread says `Connection: close`: the server
/// closes such a connection after the answer, and a client told so does not send its next request
/// on it. An answer to a request without a body keeps the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_closes_the_http1_connection_and_says_so() {
    let hub = Hub::start().await;
    let c = reqwest::Client::builder()
        .use_preconfigured_tls(common::client_tls(&hub.cert_path(), None, &[b"http/1.1"]))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let post = c
        .post(hub.url(&objects_path(ROOT)))
        .header("Accept", ACCEPT)
        .header("Content-Type", ACCEPT)
        .body(vec![b' '; 256 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(post.version(), reqwest::Version::HTTP_11);
    assert_eq!(post.headers()["connection"], "close");
    taxii_error(post, 401).await;
    let get = discovery(&hub, c.get(hub.url("/taxii2/"))).await;
    assert!(get.headers().get("connection").is_none());
    taxii_error(get, 401).await;
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_get_the_same_401_and_are_audited() {
    let hub = Hub::start().await;
    let c = hub.client();
    let wrong = discovery(
        &hub,
        c.get(hub.url("/taxii2/")).basic_auth("alice", Some("nope")),
    )
    .await;
    let wrong = taxii_error(wrong, 401).await;
    let unknown = discovery(
        &hub,
        c.get(hub.url("/taxii2/"))
            .basic_auth("mallory", Some("nope")),
    )
    .await;
    let unknown = taxii_error(unknown, 401).await;
    assert_eq!(wrong, unknown, "answers must not tell which accounts exist");

    let failures = login_failures(&hub);
    let names: Vec<_> = failures.iter().map(|f| f.account.as_deref()).collect();
    assert_eq!(names, [Some("alice"), Some("mallory")]);
    assert!(failures[0].detail.as_deref().unwrap().contains("127.0.0.1"));
    // Both cost one argon2 verification.
    assert_eq!(hub.state.metrics.password_verifications(), 2);
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_password_is_not_rehashed_on_every_request() {
    let hub = Hub::start().await;
    let c = hub.client();
    for _ in 0..20 {
        let r = discovery(
            &hub,
            c.get(hub.url("/taxii2/"))
                .basic_auth("alice", Some(PASSWORD)),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(hub.state.metrics.password_verifications(), 1);
    // A wrong password for a cached account is still verified and refused.
    let r = discovery(
        &hub,
        c.get(hub.url("/taxii2/")).basic_auth("alice", Some("x")),
    )
    .await;
    taxii_error(r, 401).await;
    assert_eq!(hub.state.metrics.password_verifications(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_account_is_refused_at_once() {
    let hub = Hub::start().await;
    let c = hub.client();
    let r = discovery(
        &hub,
        c.get(hub.url("/taxii2/")).basic_auth("bob", Some(PASSWORD)),
    )
    .await;
    assert_eq!(r.status(), 200);
    hub.store.revoke_account("bob").unwrap();
    // Even though bob's password verification is cached.
    let r = discovery(
        &hub,
        c.get(hub.url("/taxii2/")).basic_auth("bob", Some(PASSWORD)),
    )
    .await;
    taxii_error(r, 401).await;
    hub.store.revoke_account("robot").unwrap();
    let r = discovery(&hub, c.get(hub.url("/taxii2/")).bearer_auth(API_KEY)).await;
    taxii_error(r, 401).await;
    let failures = login_failures(&hub);
    assert!(failures.iter().any(|f| f.account.as_deref() == Some("bob")));
    hub.assert_serving().await;
}

/// Adding objects with a remembered Basic password: no new argon2 verification per POST, a
/// password set again to the same value still accepted (verified afresh), revocation refused on
/// the very next POST and read, each audited with the name tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_with_a_remembered_password_keep_the_middleware_semantics() {
    let hub = Hub::start().await;
    let c = hub.client();
    let post = |n: u32| {
        let body = serde_json::json!({"objects": [{
            "type": "malware", "spec_version": "2.1",
            "id": format!("malware--{n:08x}-0000-4000-8000-000000000000"),
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": "x", "is_family": false,
        }]});
        c.post(hub.url(&objects_path(ROOT)))
            .basic_auth("alice", Some(PASSWORD))
            .header("Accept", ACCEPT)
            .header("Content-Type", ACCEPT)
            .body(body.to_string())
    };
    for n in 0..3 {
        let r = post(n).send().await.unwrap();
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
    }
    assert_eq!(hub.state.metrics.password_verifications(), 1);
    // The same password hashed again (a new salt): the remembered hash no longer matches, the
    // password is verified afresh and accepted, then remembered again.
    hub.store
        .set_password_hash("alice", &kizuna_store::hash_password(PASSWORD).unwrap())
        .unwrap();
    for n in 3..5 {
        let r = post(n).send().await.unwrap();
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
    }
    assert_eq!(hub.state.metrics.password_verifications(), 2);
    assert_eq!(
        hub.store
            .count_objects(&kizuna_store::CollectionRef {
                api_root: ROOT.into(),
                id: COLLECTION.into(),
            })
            .unwrap(),
        5
    );
    hub.store.revoke_account("alice").unwrap();
    let r = post(5).send().await.unwrap();
    taxii_error(r, 401).await;
    let r = c
        .get(hub.url(&objects_path(ROOT)))
        .basic_auth("alice", Some(PASSWORD))
        .header("Accept", ACCEPT)
        .send()
        .await
        .unwrap();
    taxii_error(r, 401).await;
    let failures = login_failures(&hub);
    assert_eq!(
        failures
            .iter()
            .filter(|f| f.account.as_deref() == Some("alice"))
            .count(),
        2
    );
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_api_key() {
    let hub = Hub::start().await;
    let c = hub.client();
    let r = discovery(&hub, c.get(hub.url("/taxii2/")).bearer_auth(API_KEY)).await;
    assert_eq!(r.status(), 200);
    let r = discovery(&hub, c.get(hub.url("/taxii2/")).bearer_auth("kz_wrong")).await;
    taxii_error(r, 401).await;
    // A malformed Authorization header is a 401 too, not a 400 or a crash.
    let r = discovery(
        &hub,
        c.get(hub.url("/taxii2/"))
            .header("Authorization", "Basic %%%"),
    )
    .await;
    taxii_error(r, 401).await;
    assert_eq!(hub.state.metrics.password_verifications(), 0);
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_maps_to_its_account() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = common::test_pki(pki_dir.path(), "partners");
    let stranger = common::test_pki(pki_dir.path(), "strangers");
    let ca = pki.ca_path.clone();
    let hub = Hub::start_with(
        |_| {},
        |c| {
            if let TlsMode::SelfSigned { client_ca, .. } = &mut c.tls {
                *client_ca = Some(ca);
            }
        },
    )
    .await;
    let identity = || Some((vec![pki.client_cert.clone()], pki.client_key.clone_key()));

    // Not yet mapped: the handshake succeeds, authentication does not.
    let c = common::client(&hub.cert_path(), identity());
    let r = discovery(&hub, c.get(hub.url("/taxii2/"))).await;
    taxii_error(r, 401).await;

    hub.store
        .add_client_cert("partner", &kizuna_store::sha256(&pki.client_cert))
        .unwrap();
    let c = common::client(&hub.cert_path(), identity());
    let r = discovery(&hub, c.get(hub.url("/taxii2/"))).await;
    assert_eq!(r.status(), 200);
    // It is `partner`: not an administrator, so no metrics.
    let r = c.get(hub.url("/metrics")).send().await.unwrap();
    taxii_error(r, 403).await;

    // Without a certificate, passwords still work on the same server.
    let r = discovery(
        &hub,
        hub.client()
            .get(hub.url("/taxii2/"))
            .basic_auth("alice", Some(PASSWORD)),
    )
    .await;
    assert_eq!(r.status(), 200);

    // A certificate from a CA the server does not trust fails the handshake.
    let c = common::client(
        &hub.cert_path(),
        Some((
            vec![stranger.client_cert.clone()],
            stranger.client_key.clone_key(),
        )),
    );
    assert!(c.get(hub.url("/healthz")).send().await.is_err());
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_account_answers_429_with_retry_after() {
    let hub = Hub::start_with(
        |s| {
            s.rate_per_second = 0.001;
            s.rate_burst = 3.0;
        },
        |_| {},
    )
    .await;
    let c = hub.client();
    for _ in 0..3 {
        let r = discovery(&hub, c.get(hub.url("/taxii2/")).bearer_auth(API_KEY)).await;
        assert_eq!(r.status(), 200);
    }
    let r = discovery(&hub, c.get(hub.url("/taxii2/")).bearer_auth(API_KEY)).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body = taxii_error(r, 429).await;
    assert!(body["description"].as_str().unwrap().contains("rate limit"));
    // Other accounts have their own budget.
    let r = discovery(
        &hub,
        c.get(hub.url("/taxii2/"))
            .basic_auth("alice", Some(PASSWORD)),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = c.get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_from_one_address_get_429() {
    let hub = Hub::start_with(
        |s| {
            s.auth.failure_burst = 3.0;
            s.auth.failure_rate = 0.001;
        },
        |_| {},
    )
    .await;
    let c = hub.client();
    for _ in 0..3 {
        let r = discovery(
            &hub,
            c.get(hub.url("/taxii2/"))
                .basic_auth("alice", Some("guess")),
        )
        .await;
        taxii_error(r, 401).await;
    }
    // Now refused before any password is verified, even the right one.
    let r = discovery(
        &hub,
        c.get(hub.url("/taxii2/"))
            .basic_auth("alice", Some(PASSWORD)),
    )
    .await;
    assert!(r.headers().contains_key("retry-after"));
    taxii_error(r, 429).await;
    assert_eq!(hub.state.metrics.password_verifications(), 3);
    let r = c.get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_gets_413() {
    let hub = Hub::start().await;
    let c = hub.client();
    let mut body = br#"{"objects":[{"type":"x-pad","pad":""#.to_vec();
    body.extend(std::iter::repeat_n(
        b'a',
        usize::try_from(SMALL_LIMIT).unwrap() * 2,
    ));
    body.extend(br#""}]}"#);
    let r = c
        .post(hub.url(&objects_path(SMALL_ROOT)))
        .basic_auth("alice", Some(PASSWORD))
        .header("Accept", ACCEPT)
        .header("Content-Type", TAXII_JSON)
        .body(body)
        .send()
        .await
        .unwrap();
    let body = taxii_error(r, 413).await;
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains(&SMALL_LIMIT.to_string())
    );
    // Over the global hard cap, whatever the API root allows.
    let hub2 = Hub::start_with(|s| s.max_body_bytes = 4096, |_| {}).await;
    let r = hub2
        .client()
        .post(hub2.url(&objects_path(ROOT)))
        .basic_auth("alice", Some(PASSWORD))
        .header("Accept", ACCEPT)
        .header("Content-Type", TAXII_JSON)
        .body(vec![b' '; 10_000])
        .send()
        .await
        .unwrap();
    taxii_error(r, 413).await;
    hub.assert_serving().await;
    hub2.assert_serving().await;
}

async fn post_envelope(hub: &Hub, body: Vec<u8>) -> reqwest::Response {
    hub.client()
        .post(hub.url(&objects_path(ROOT)))
        .basic_auth("alice", Some(PASSWORD))
        .header("Accept", ACCEPT)
        .header("Content-Type", TAXII_JSON)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_nested_100000_deep_gets_a_clear_400() {
    let hub = Hub::start().await;
    let mut body = br#"{"objects":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', 100_000));
    body.extend(std::iter::repeat_n(b']', 100_000));
    body.push(b'}');
    let started = std::time::Instant::now();
    let r = post_envelope(&hub, body).await;
    let body = taxii_error(r, 400).await;
    let description = body["description"].as_str().unwrap();
    assert!(description.contains("nesting"), "{description}");
    assert!(description.contains("byte offset"), "{description}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_string_gets_a_clear_error() {
    let hub = Hub::start().await;
    let mut body = br#"{"objects":[{"type":"indicator","name":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 10 << 20));
    body.extend(br#""}]}"#);
    let r = post_envelope(&hub, body).await;
    let body = taxii_error(r, 413).await;
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains("longer than the limit"),
        "{description}"
    );
    assert!(description.contains("byte offset"), "{description}");
    // Nothing was stored.
    let page = hub
        .store
        .objects(
            &kizuna_store::CollectionRef {
                api_root: ROOT.to_owned(),
                id: COLLECTION.to_owned(),
            },
            &kizuna_store::ObjectQuery {
                limit: 10,
                clearance: kizuna_stix::Tlp::Red,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(page.records.is_empty());
    hub.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_for_administrators_and_count_requests() {
    let hub = Hub::start().await;
    let c = hub.client();
    let _ = discovery(
        &hub,
        c.get(hub.url("/taxii2/")).basic_auth("alice", Some("bad")),
    )
    .await;
    let r = c.get(hub.url("/metrics")).send().await.unwrap();
    taxii_error(r, 401).await;
    let r = c
        .get(hub.url("/metrics"))
        .basic_auth("alice", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    taxii_error(r, 403).await;
    let r = c
        .get(hub.url("/metrics"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            r#"kizuna_http_requests_total{route="/taxii2/",method="GET",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"kizuna_auth_failures_total{reason="bad_password"} 1"#));
    assert!(text.contains("kizuna_http_request_duration_seconds_bucket"));
    assert!(text.contains("kizuna_objects_stored_total"));
}

/// A request body that never arrives; it says when it is first read (the server reserves its
/// share of the body budget before reading).
struct Stalled {
    first_read: Option<tokio::sync::oneshot::Sender<()>>,
}

impl axum::body::HttpBody for Stalled {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Some(tx) = self.get_mut().first_read.take() {
            let _ = tx.send(());
        }
        std::task::Poll::Pending
    }
}

/// Bodies being read are reserved in a global memory budget: while a stalled upload holds all of
/// it, another upload waits; when the first goes away, the second proceeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_memory_budget_is_shared() {
    use tower::ServiceExt as _;
    let hub = Hub::start_with(|s| s.max_buffered_bytes = 4096, |_| {}).await;
    let app = kizuna_taxii::router(hub.state.clone());
    let post = |body: axum::body::Body| {
        http::Request::post(objects_path(ROOT))
            .header("Authorization", format!("Bearer {API_KEY}"))
            .header("Accept", ACCEPT)
            .header("Content-Type", TAXII_JSON)
            .body(body)
            .unwrap()
    };
    let (first_read, read) = tokio::sync::oneshot::channel();
    let stalled = tokio::spawn(app.clone().oneshot(post(axum::body::Body::new(Stalled {
        first_read: Some(first_read),
    }))));
    // The stalled upload is being read: it holds the whole budget.
    read.await.expect("the stalled body is read");
    assert_eq!(hub.state.body_budget.available_permits(), 0);
    let small = || post(axum::body::Body::from(r#"{"objects":[]}"#));
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        app.clone().oneshot(small()),
    )
    .await;
    // A bound, not a synchronisation: the second upload must still be waiting after it.
    assert!(waited.is_err(), "the second upload should wait for budget");
    stalled.abort();
    let _ = stalled.await;
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), app.oneshot(small()))
        .await
        .expect("budget released")
        .unwrap();
    assert_ne!(r.status(), 413);
    assert!(
        r.status().is_client_error() || r.status().is_success(),
        "{}",
        r.status()
    );
}

/// A body without a known length (as a chunked upload has): `map_frame` hides the size hint.
fn chunked(bytes: Vec<u8>) -> axum::body::Body {
    use http_body_util::BodyExt as _;
    axum::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(bytes)).map_frame(|f| f))
}

/// The body-limit middleware is the one place that enforces `max_content_length` and the JSON
/// caps, for declared and chunked bodies alike, before the handler parses anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limits_and_json_caps_are_enforced_once_in_the_middleware() {
    use tower::ServiceExt as _;
    let hub = Hub::start_with(
        |s| {
            s.max_json_depth = 8;
            s.max_json_string = 64;
        },
        |_| {},
    )
    .await;
    let app = kizuna_taxii::router(hub.state.clone());
    let send = |root: &str, body: axum::body::Body, length: Option<usize>| {
        let mut request = http::Request::post(objects_path(root))
            .header("Authorization", format!("Bearer {API_KEY}"))
            .header("Accept", ACCEPT)
            .header("Content-Type", TAXII_JSON);
        if let Some(length) = length {
            request = request.header("Content-Length", length);
        }
        app.clone().oneshot(request.body(body).unwrap())
    };
    let pad = |n: usize| format!(r#"{{"objects":[],"x":"{}"}}"#, "a".repeat(n)).into_bytes();
    let over = pad(usize::try_from(SMALL_LIMIT).unwrap());
    // Over max_content_length: declared, and found while reading a chunked body.
    let r = send(SMALL_ROOT, over.clone().into(), Some(over.len()))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = send(SMALL_ROOT, chunked(over), None).await.unwrap();
    assert_eq!(r.status(), 413);
    // JSON caps, on a chunked body too.
    let deep = format!(r#"{{"objects":[{}{}]}}"#, "[".repeat(20), "]".repeat(20)).into_bytes();
    let r = send(ROOT, chunked(deep), None).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = send(ROOT, chunked(pad(65)), None).await.unwrap();
    assert_eq!(r.status(), 413);
    // Within every limit: accepted (an empty envelope).
    let r = send(SMALL_ROOT, chunked(pad(64)), None).await.unwrap();
    assert_eq!(r.status(), 202);
}

/// The read endpoints look a bearer key's or a client certificate's account up in the read
/// transaction that serves the page, not in the authentication middleware: a revoked account,
/// or a permission taken away, must still fail on the very next request, with the failed login
/// audited as anywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_reads_see_a_revocation_on_the_next_request() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = common::test_pki(pki_dir.path(), "partners");
    let ca = pki.ca_path.clone();
    let hub = Hub::start_with(
        |_| {},
        |c| {
            if let TlsMode::SelfSigned { client_ca, .. } = &mut c.tls {
                *client_ca = Some(ca);
            }
        },
    )
    .await;
    hub.store
        .add_client_cert("partner", &kizuna_store::sha256(&pki.client_cert))
        .unwrap();
    let c = hub.client();
    let reads = [
        objects_path(ROOT),
        format!("/{ROOT}/collections/{COLLECTION}/manifest/"),
        format!(
            "/{ROOT}/collections/{COLLECTION}/objects/indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f/versions/"
        ),
    ];
    for path in &reads {
        let r = discovery(&hub, c.get(hub.url(path)).bearer_auth(API_KEY)).await;
        assert!(
            [200, 404].contains(&r.status().as_u16()),
            "{path}: {}",
            r.status()
        );
        // 404 only for the versions of an object that is not there: never a 401.
        assert!(r.status() == 200 || path.ends_with("/versions/"));
    }
    hub.store.revoke_account("robot").unwrap();
    for path in &reads {
        let r = discovery(&hub, c.get(hub.url(path)).bearer_auth(API_KEY)).await;
        taxii_error(r, 401).await;
    }
    let failures = login_failures(&hub);
    assert_eq!(failures.len(), reads.len());
    assert!(
        failures.iter().all(|f| f
            .detail
            .as_deref()
            .unwrap()
            .contains("unknown API key from 127.0.0.1")),
        "{failures:?}"
    );
    assert_eq!(hub.state.metrics.password_verifications(), 0);

    let cert = common::client(
        &hub.cert_path(),
        Some((vec![pki.client_cert.clone()], pki.client_key.clone_key())),
    );
    let r = discovery(&hub, cert.get(hub.url(&objects_path(ROOT)))).await;
    assert_eq!(r.status(), 200);
    // A permission taken away: the collection is invisible at once.
    hub.store
        .set_permission(
            "partner",
            &kizuna_store::Permission {
                api_root: ROOT.to_owned(),
                collection: COLLECTION.to_owned(),
                read: false,
                write: false,
            },
        )
        .unwrap();
    let r = discovery(&hub, cert.get(hub.url(&objects_path(ROOT)))).await;
    taxii_error(r, 404).await;
    let r = discovery(&hub, cert.get(hub.url(&objects_path(SMALL_ROOT)))).await;
    assert_eq!(r.status(), 200);
    hub.store.revoke_account("partner").unwrap();
    let r = discovery(&hub, cert.get(hub.url(&objects_path(SMALL_ROOT)))).await;
    taxii_error(r, 401).await;
    assert_eq!(login_failures(&hub).len(), reads.len() + 1);
    hub.assert_serving().await;
}

/// The per-account rate limit applies to the page reads too, where the account is known only
/// inside the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_applies_to_page_reads_by_api_key() {
    let hub = Hub::start_with(
        |s| {
            s.rate_per_second = 0.001;
            s.rate_burst = 2.0;
        },
        |_| {},
    )
    .await;
    let c = hub.client();
    for _ in 0..2 {
        let r = discovery(
            &hub,
            c.get(hub.url(&objects_path(ROOT))).bearer_auth(API_KEY),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let r = discovery(
        &hub,
        c.get(hub.url(&objects_path(ROOT))).bearer_auth(API_KEY),
    )
    .await;
    assert!(r.headers().contains_key("retry-after"));
    taxii_error(r, 429).await;
    // The discovery endpoint shares the same budget.
    let r = discovery(&hub, c.get(hub.url("/taxii2/")).bearer_auth(API_KEY)).await;
    taxii_error(r, 429).await;
}
