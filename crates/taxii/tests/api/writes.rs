//! Adding objects (negotiation, size limits, validation, duplicates) and deleting them.

use super::*;

// ----- content negotiation (body limits are the middleware's: see tests/security.rs) -----

#[tokio::test]
async fn accept_header_negotiation() {
    let hub = hub();
    for (accept, expected) in [
        (Some(TAXII_JSON), StatusCode::OK),
        (Some("application/taxii+json"), StatusCode::OK),
        (Some("*/*"), StatusCode::OK),
        (Some("text/html, application/*;q=0.1"), StatusCode::OK),
        (None, StatusCode::OK),
        (Some("application/json"), StatusCode::NOT_ACCEPTABLE),
        (
            Some("application/taxii+json;version=2.0"),
            StatusCode::NOT_ACCEPTABLE,
        ),
        (
            Some("application/stix+json;version=2.1"),
            StatusCode::NOT_ACCEPTABLE,
        ),
    ] {
        for uri in ["/taxii2/", &objects_url(MAIN)] {
            let mut b = Request::get(uri);
            if let Some(a) = accept {
                b = b.header(header::ACCEPT, a);
            }
            let r = hub.send("reader", b.body(Body::empty()).unwrap()).await;
            assert_eq!(r.status, expected, "{accept:?} {uri}");
            assert_eq!(r.header("content-type"), Some(TAXII_JSON));
        }
    }
}

#[tokio::test]
async fn post_content_type_must_be_taxii() {
    let hub = hub();
    let body = serde_json::to_vec(&json!({"objects": [indicator(1, 0, None)]})).unwrap();
    for (ct, expected) in [
        (Some("application/json"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            Some("application/taxii+json;version=2.0"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Some("application/taxii+json"), StatusCode::ACCEPTED),
        (
            Some("application/taxii+json; version=2.1; charset=utf-8"),
            StatusCode::ACCEPTED,
        ),
    ] {
        let mut b = Request::post(objects_url(MAIN)).header(header::ACCEPT, TAXII_JSON);
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let r = hub
            .send("writer", b.body(Body::from(body.clone())).unwrap())
            .await;
        assert_eq!(r.status, expected, "{ct:?}");
    }
}

// ----- adding objects -----

#[tokio::test]
async fn partially_invalid_envelope_stores_the_valid_objects() {
    let hub = hub();
    let envelope = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/taxii/mixed-envelope.json"
    ))
    .unwrap();
    let r = hub
        .post("writer", &objects_url(MAIN), envelope.clone())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let status = r.json();
    assert_eq!(status["status"], "complete");
    assert_eq!(status["total_count"], 7);
    assert_eq!(status["success_count"], 5, "{status}");
    assert_eq!(status["failure_count"], 2, "{status}");
    assert_eq!(status["pending_count"], 0);
    let failures = status["failures"].as_array().unwrap();
    let failed: Vec<&str> = failures.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert!(failed.contains(&"indicator--1e5f2f2c-1b59-4b53-8d8e-6a1f4e4bd0a1"));
    assert!(failed.contains(&"malware--6b9a5a8c-2f1e-4c5d-9a7b-3e2f1d0c9b8a"));
    for f in failures {
        assert!(!f["message"].as_str().unwrap().is_empty());
        assert!(f["version"].is_string());
    }
    let bad_pattern = failures
        .iter()
        .find(|f| f["id"] == "indicator--1e5f2f2c-1b59-4b53-8d8e-6a1f4e4bd0a1")
        .unwrap();
    assert!(
        bad_pattern["message"].as_str().unwrap().contains("pattern"),
        "{bad_pattern}"
    );

    // The status resource is kept.
    let id = status["id"].as_str().unwrap();
    let again = hub.get("reader", &format!("/api1/status/{id}/")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), status);
    assert_eq!(
        hub.get(
            "reader",
            "/api1/status/00000000-0000-4000-8000-000000000000/"
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // The valid objects are served byte for byte as sent.
    let all = hub.get("reader", &objects_url(MAIN)).await;
    assert_eq!(all.ids().len(), 5);
    let sent: Value = serde_json::from_slice(&envelope).unwrap();
    let text = String::from_utf8(all.body.clone()).unwrap();
    assert!(
        text.contains(r#""x_kizuna_note": {"nested": [1, 2.50, "kept as sent"]}"#),
        "{text}"
    );
    assert_eq!(all.objects()[1], sent["objects"][1]);

    // Writes are audited.
    let writes = hub
        .store
        .audit_events(&AuditQuery {
            action: Some(AuditAction::Write),
            limit: 100,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(writes.len(), 5);
    assert!(
        writes
            .iter()
            .all(|w| w.account.as_deref() == Some("writer"))
    );
}

#[tokio::test]
async fn all_invalid_envelope_is_422_with_failures() {
    let hub = hub();
    let mut bad = indicator(1, 0, None);
    bad["created"] = json!("not a time");
    let r = hub
        .post(
            "writer",
            &objects_url(MAIN),
            serde_json::to_vec(&json!({"objects": [bad, {"type": "x"}]})).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = r.json();
    assert_eq!(e["http_status"], "422");
    let details = &e["details"];
    assert_eq!(details["failure_count"], 2);
    assert_eq!(details["success_count"], 0);
    let status_id = details["id"].as_str().unwrap();
    let kept = hub
        .get("writer", &format!("/api1/status/{status_id}/"))
        .await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.json()["failure_count"], 2);
    assert!(hub.get("writer", &objects_url(MAIN)).await.ids().is_empty());
}

#[tokio::test]
async fn malformed_bodies() {
    let hub = hub();
    let url = objects_url(MAIN);
    assert_eq!(
        hub.post("writer", &url, "{not json").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        hub.post("writer", &url, "[1, 2]").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        hub.post("writer", &url, r#"{"objects": 5}"#).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = hub.post("writer", &url, deep).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let empty = hub.post("writer", &url, r#"{}"#).await;
    assert_eq!(empty.status, StatusCode::ACCEPTED);
    assert_eq!(empty.json()["total_count"], 0);
}

#[tokio::test]
async fn exact_duplicates_are_not_errors() {
    let hub = hub();
    let objects: Vec<Value> = (0..3).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    let again = hub.post_objects(MAIN, &objects).await.json();
    assert_eq!(again["success_count"], 3);
    assert_eq!(again["failure_count"], 0);
    // The same object twice in one envelope.
    let twice = hub
        .post_objects(MAIN, &[indicator(5, 0, None), indicator(5, 0, None)])
        .await
        .json();
    assert_eq!(twice["success_count"], 2);
    assert_eq!(twice["failure_count"], 0);
    // Same id and version, different content: a failure, not a silent overwrite.
    let mut changed = indicator(0, 0, None);
    changed["name"] = json!("changed");
    let r = hub
        .post(
            "writer",
            &objects_url(MAIN),
            serde_json::to_vec(&json!({"objects": [changed, indicator(9, 0, None)]})).unwrap(),
        )
        .await
        .json();
    assert_eq!(r["success_count"], 1);
    assert_eq!(r["failure_count"], 1);
    let all = hub
        .get(
            "reader",
            &format!("{}?match[version]=all", objects_url(MAIN)),
        )
        .await;
    assert_eq!(all.ids().len(), 5);
}

#[tokio::test]
async fn delete_an_object() {
    let hub = hub();
    for v in 0..3 {
        hub.post_objects(MAIN, &[indicator(1, v, None)]).await;
    }
    hub.post_objects(MAIN, &[indicator(2, 0, None)]).await;
    let url = format!("{}{}/", objects_url(MAIN), indicator_id(1));

    // Permissions: read-only 403, invisible 404.
    assert_eq!(
        hub.delete("reader", &url).await.status,
        StatusCode::FORBIDDEN
    );

    // One version.
    let one = format!("{url}?match[version]=2024-01-01T00:00:01.000Z");
    let r = hub.delete("writer", &one).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(hub.get("reader", &one).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.delete("writer", &one).await.status,
        StatusCode::NOT_FOUND
    );
    let left = hub
        .get("reader", &format!("{url}?match[version]=all"))
        .await;
    assert_eq!(left.objects().len(), 2);

    // Every version.
    assert_eq!(hub.delete("writer", &url).await.status, StatusCode::OK);
    assert_eq!(hub.get("reader", &url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.delete("writer", &url).await.status,
        StatusCode::NOT_FOUND
    );
    let manifest = hub
        .get("reader", &format!("/api1/collections/{MAIN}/manifest/"))
        .await;
    assert_eq!(manifest.ids(), vec![indicator_id(2)]);

    let deletes = hub
        .store
        .audit_events(&AuditQuery {
            action: Some(AuditAction::Delete),
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(deletes.len(), 2);
}

#[tokio::test]
async fn delete_cannot_touch_what_the_writer_may_not_read() {
    let hub = hub();
    hub.post(
        "admin",
        &objects_url(MAIN),
        serde_json::to_vec(&json!({"objects": [indicator(1, 0, Some(Tlp::Red))]})).unwrap(),
    )
    .await;
    hub.store
        .set_permission("reader", &permission(ROOT, MAIN, true, true))
        .unwrap();
    let url = format!("{}{}/", objects_url(MAIN), indicator_id(1));
    assert_eq!(
        hub.delete("reader", &url).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(hub.get("admin", &url).await.status, StatusCode::OK);

    // An object with one version the writer may read and one it may not.
    hub.post_objects(
        MAIN,
        &[
            indicator(2, 0, Some(Tlp::Green)),
            indicator(2, 1, Some(Tlp::Red)),
        ],
    )
    .await;
    let url = format!("{}{}/", objects_url(MAIN), indicator_id(2));
    assert_eq!(
        hub.delete("reader", &url).await.status,
        StatusCode::FORBIDDEN
    );
    let green = format!("{url}?match[version]=2024-01-01T00:00:00.000Z");
    assert_eq!(hub.delete("reader", &green).await.status, StatusCode::OK);
    let left = hub.get("admin", &format!("{url}?match[version]=all")).await;
    assert_eq!(left.objects().len(), 1);
    assert_eq!(left.objects()[0]["modified"], "2024-01-01T00:00:01.000Z");
}

/// Envelopes large enough to be validated on several threads keep their order and verdicts.
#[tokio::test]
async fn large_envelope_is_judged_in_order() {
    let hub = hub();
    let mut objects: Vec<Value> = (0..600).map(|n| indicator(n, 0, None)).collect();
    for n in [7usize, 300, 599] {
        objects[n]["pattern"] = json!("[broken");
    }
    let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
    let status = hub.post("writer", &objects_url(MAIN), body).await.json();
    assert_eq!(status["success_count"], 597);
    assert_eq!(status["failure_count"], 3);
    let failed: Vec<&str> = status["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        vec![indicator_id(7), indicator_id(300), indicator_id(599)]
    );
    let successes = status["successes"].as_array().unwrap();
    assert_eq!(successes[0]["id"], indicator_id(0));
    assert_eq!(successes[596]["id"], indicator_id(598));
}
