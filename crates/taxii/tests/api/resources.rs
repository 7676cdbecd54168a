//! Discovery, API roots, collections, access to collections, negotiation, unknown routes.

use super::*;

// ----- discovery, API root, collections -----

#[tokio::test]
async fn discovery_lists_api_roots_with_and_without_trailing_slash() {
    let hub = hub();
    for uri in ["/taxii2/", "/taxii2"] {
        let r = hub.get("reader", uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), Some(TAXII_JSON));
        let d = r.json();
        assert_eq!(d["title"], "Kizuna TAXII 2.1 hub");
        let roots = d["api_roots"].as_array().unwrap();
        assert!(roots.contains(&json!("/api1/")), "{d}");
    }
}

#[tokio::test]
async fn api_root_information() {
    let hub = hub();
    let r = hub.get("reader", "/api1/").await;
    assert_eq!(r.status, StatusCode::OK);
    let a = r.json();
    assert_eq!(a["versions"], json!([TAXII_JSON]));
    assert_eq!(a["max_content_length"], 10 << 20);
    assert_eq!(hub.get("reader", "/api1").await.status, StatusCode::OK);
    let missing = hub.get("reader", "/nope/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("content-type"), Some(TAXII_JSON));
    assert_eq!(missing.json()["http_status"], "404");
}

#[tokio::test]
async fn collections_show_only_visible_ones_with_permissions_of_the_caller() {
    let hub = hub();
    let r = hub.get("reader", "/api1/collections/").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json()["collections"].as_array().unwrap().clone();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![MAIN, DROPBOX]);
    assert_eq!(list[0]["can_read"], true);
    assert_eq!(list[0]["can_write"], false);
    assert_eq!(list[0]["alias"], "main");
    assert_eq!(list[1]["can_read"], false);
    assert_eq!(list[1]["can_write"], true);

    let w = hub
        .get("writer", &format!("/api1/collections/{MAIN}/"))
        .await
        .json();
    assert_eq!(
        (w["can_read"].clone(), w["can_write"].clone()),
        (json!(true), json!(true))
    );
    let by_alias = hub.get("reader", "/api1/collections/main").await;
    assert_eq!(by_alias.status, StatusCode::OK);
    assert_eq!(by_alias.json()["id"], MAIN);

    let admin = hub.get("admin", "/api1/collections/").await.json();
    assert_eq!(admin["collections"].as_array().unwrap().len(), 3);
    assert_eq!(
        hub.get("reader", "/nope/collections/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn invisible_collection_is_404_everywhere() {
    let hub = hub();
    hub.post(
        "admin",
        &objects_url(PRIVATE),
        serde_json::to_vec(&json!({"objects": [indicator(1, 0, None)]})).unwrap(),
    )
    .await;
    let id = indicator_id(1);
    for uri in [
        format!("/api1/collections/{PRIVATE}/"),
        format!("/api1/collections/{PRIVATE}/objects/"),
        format!("/api1/collections/{PRIVATE}/manifest/"),
        format!("/api1/collections/{PRIVATE}/objects/{id}/"),
        format!("/api1/collections/{PRIVATE}/objects/{id}/versions/"),
    ] {
        let r = hub.get("reader", &uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let post = hub
        .post("reader", &objects_url(PRIVATE), r#"{"objects":[]}"#)
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    let del = hub
        .delete(
            "reader",
            &format!("/api1/collections/{PRIVATE}/objects/{id}/"),
        )
        .await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    // Still there for those who may see it.
    assert_eq!(
        hub.get("admin", &objects_url(PRIVATE)).await.ids(),
        vec![id]
    );
}

#[tokio::test]
async fn read_only_account_gets_403_on_post_and_write_only_on_get() {
    let hub = hub();
    let body = serde_json::to_vec(&json!({"objects": [indicator(1, 0, None)]})).unwrap();
    let r = hub.post("reader", &objects_url(MAIN), body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["http_status"], "403");
    assert!(hub.get("writer", &objects_url(MAIN)).await.ids().is_empty());
    // Write-only: may POST, may not read.
    assert_eq!(
        hub.post("reader", &objects_url(DROPBOX), body).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        hub.get("reader", &objects_url(DROPBOX)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        hub.get("reader", &format!("/api1/collections/{DROPBOX}/manifest/"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn method_not_allowed_and_unknown_paths() {
    let hub = hub();
    let r = hub
        .send(
            "writer",
            Request::builder()
                .method(Method::PUT)
                .uri(objects_url(MAIN))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("content-type"), Some(TAXII_JSON));
    assert_eq!(r.json()["http_status"], "405");
    let r = hub.get("writer", "/api1/collections/x/y/z/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["http_status"], "404");
}

/// The whole stack of `kizuna_taxii::router`: authentication puts the `Principal` these handlers
/// read, and a paged read and a write work through it.
#[tokio::test]
async fn through_the_full_router_with_an_api_key() {
    use sha2::{Digest, Sha256};
    let hub = hub();
    let key = "kizuna-test-key-0123456789";
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    hub.store.add_api_key("writer", &digest).unwrap();
    let state = AppState::new(hub.store.clone(), ServiceConfig::default()).unwrap();
    let app = kizuna_taxii::router(state);
    let send = |request: Request<Body>| {
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        }
    };
    let body = serde_json::to_vec(&json!({"objects": [indicator(1, 0, None)]})).unwrap();
    let (status, _) = send(
        Request::post(objects_url(MAIN))
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, TAXII_JSON)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = send(
        Request::get(objects_url(MAIN))
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::ACCEPT, TAXII_JSON)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["objects"][0]["id"], indicator_id(1));
    let (status, _) = send(Request::get(objects_url(MAIN)).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
