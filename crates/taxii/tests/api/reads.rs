//! Reading: filters, paging, next tokens, one object, versions, manifest, TLP clearance.

use super::*;

// ----- reading: filters, paging, headers -----

#[tokio::test]
async fn filters_on_objects() {
    let hub = hub();
    let mut objects = vec![malware(1)];
    for v in 0..3 {
        objects.push(indicator(1, v, None));
    }
    objects.push(indicator(2, 0, None));
    hub.post_objects(MAIN, &objects).await;
    let later = indicator(3, 0, None);
    let posted = hub.post_objects(MAIN, &[later]).await.json();
    let _ = posted;
    let url = objects_url(MAIN);
    let q = |query: &str| format!("{url}?{query}");

    // Default: last version of each object, in date_added order.
    let r = hub.get("reader", &url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.ids(),
        vec![
            malware(1)["id"].as_str().unwrap().to_owned(),
            indicator_id(1),
            indicator_id(2),
            indicator_id(3)
        ]
    );
    assert_eq!(r.objects()[1]["modified"], "2024-01-01T00:00:02.000Z");
    assert!(r.header("x-taxii-date-added-first").is_some());
    assert!(r.header("x-taxii-date-added-last").is_some());
    assert_eq!(r.json()["more"], false);

    let types = hub.get("reader", &q("match[type]=malware")).await;
    assert_eq!(types.ids().len(), 1);
    let ids = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={},{}",
                indicator_id(2),
                indicator_id(3)
            )),
        )
        .await;
    assert_eq!(ids.ids(), vec![indicator_id(2), indicator_id(3)]);
    let all = hub
        .get(
            "reader",
            &q(&format!("match[id]={}&match[version]=all", indicator_id(1))),
        )
        .await;
    assert_eq!(all.ids().len(), 3);
    let first = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={}&match[version]=first",
                indicator_id(1)
            )),
        )
        .await;
    assert_eq!(first.objects()[0]["modified"], "2024-01-01T00:00:00.000Z");
    let exact = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={}&match[version]=2024-01-01T00:00:01.000Z",
                indicator_id(1)
            )),
        )
        .await;
    assert_eq!(exact.objects().len(), 1);
    assert_eq!(exact.objects()[0]["modified"], "2024-01-01T00:00:01.000Z");
    let first_last = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={}&match[version]=first,last",
                indicator_id(1)
            )),
        )
        .await;
    assert_eq!(first_last.objects().len(), 2);
    let spec = hub.get("reader", &q("match[spec_version]=2.1")).await;
    assert_eq!(spec.ids().len(), 4);
    let spec20 = hub.get("reader", &q("match[spec_version]=2.0")).await;
    assert!(spec20.ids().is_empty());
    assert_eq!(spec20.json()["more"], false);
    // An empty page still carries the date-added headers.
    assert_eq!(
        spec20.header("x-taxii-date-added-first"),
        Some("0001-01-01T00:00:00.000000Z")
    );
    assert_eq!(
        spec20.header("x-taxii-date-added-last"),
        Some("0001-01-01T00:00:00.000000Z")
    );
    let none_after = hub
        .get(
            "reader",
            &q("match[spec_version]=2.0&added_after=2030-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(
        none_after.header("x-taxii-date-added-last"),
        Some("2030-01-01T00:00:00.000000Z")
    );

    // added_after: strictly after the first POST's date_added.
    let first_added = r.header("x-taxii-date-added-first").unwrap().to_owned();
    let after = hub
        .get("reader", &q(&format!("added_after={first_added}")))
        .await;
    assert_eq!(after.ids(), vec![indicator_id(3)]);

    let limited = hub.get("reader", &q("limit=2")).await.json();
    assert_eq!(limited["objects"].as_array().unwrap().len(), 2);
    assert_eq!(limited["more"], true);
    assert!(limited["next"].is_string());

    // Unknown match fields are ignored; malformed parameters are 400.
    assert_eq!(
        hub.get("reader", &q("match[x_foo]=bar")).await.ids().len(),
        4
    );
    for bad in [
        "limit=0",
        "added_after=yesterday",
        "match[version]=all,first",
        "limit=1&limit=2",
        "match[id]=bogus",
    ] {
        let r = hub.get("reader", &q(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json()["http_status"], "400");
    }
}

/// Every object of one POST shares one date_added: paging must follow the sequence.
#[tokio::test]
async fn paging_many_objects_sharing_date_added_no_skips_no_repeats() {
    let hub = hub();
    let objects: Vec<Value> = (0..257).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    for endpoint in ["objects", "manifest"] {
        let base = format!("/api1/collections/{MAIN}/{endpoint}/?limit=10&match[type]=indicator");
        let mut seen = Vec::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            let uri = match &next {
                Some(n) => format!("{base}&next={n}"),
                None => base.clone(),
            };
            let r = hub.get("reader", &uri).await;
            assert_eq!(r.status, StatusCode::OK, "{endpoint}");
            let page = r.json();
            let ids = r.ids();
            assert!(ids.len() <= 10);
            if !ids.is_empty() {
                assert!(r.header("x-taxii-date-added-first").is_some());
                assert!(r.header("x-taxii-date-added-last").is_some());
            }
            seen.extend(ids);
            pages += 1;
            if page["more"] == true {
                next = Some(page["next"].as_str().unwrap().to_owned());
            } else {
                assert!(page.get("next").is_none());
                break;
            }
        }
        assert_eq!(pages, 26, "{endpoint}");
        let expected: Vec<String> = (0..257).map(indicator_id).collect();
        assert_eq!(seen, expected, "{endpoint}");
    }
}

#[tokio::test]
async fn limit_above_maximum_is_lowered() {
    let hub = hub_with(ServiceConfig {
        max_page_size: 5,
        default_page_size: 3,
        ..ServiceConfig::default()
    });
    let objects: Vec<Value> = (0..8).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    let r = hub
        .get("reader", &format!("{}?limit=1000", objects_url(MAIN)))
        .await;
    assert_eq!(r.ids().len(), 5);
    assert_eq!(r.json()["more"], true);
    let d = hub.get("reader", &objects_url(MAIN)).await;
    assert_eq!(d.ids().len(), 3);
}

#[tokio::test]
async fn next_tokens_are_bound_to_query_account_and_integrity() {
    let hub = hub();
    let objects: Vec<Value> = (0..5).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    let url = objects_url(MAIN);
    let first = hub
        .get("reader", &format!("{url}?limit=2&match[type]=indicator"))
        .await
        .json();
    let next = first["next"].as_str().unwrap().to_owned();

    // The same query, any page size: fine.
    let ok = hub
        .get(
            "reader",
            &format!("{url}?limit=3&match[type]=indicator&next={next}"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.ids(),
        vec![indicator_id(2), indicator_id(3), indicator_id(4)]
    );

    // Tampered.
    let mut bytes = next.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = hub
        .get(
            "reader",
            &format!("{url}?limit=2&match[type]=indicator&next={tampered}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["http_status"], "400");
    for garbage in ["x", "%00", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let r = hub
            .get(
                "reader",
                &format!("{url}?match[type]=indicator&next={garbage}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{garbage}");
    }
    // Another account.
    let r = hub
        .get(
            "other",
            &format!("{url}?limit=2&match[type]=indicator&next={next}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another query.
    let r = hub
        .get(
            "reader",
            &format!("{url}?limit=2&match[type]=malware&next={next}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = hub
        .get("reader", &format!("{url}?limit=2&next={next}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another endpoint.
    let r = hub
        .get(
            "reader",
            &format!(
                "/api1/collections/{MAIN}/manifest/?limit=2&match[type]=indicator&next={next}"
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Same collection by alias: same token works.
    let r = hub
        .get(
            "reader",
            &format!("/api1/collections/main/objects/?match[type]=indicator&next={next}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn next_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token;
    {
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let state = AppState::new(store, ServiceConfig::default()).unwrap();
        token = state.tokens.seal(
            &kizuna_taxii::token::TokenScope {
                account: "a",
                api_root: "r",
                collection: "c",
                endpoint: "objects",
                filters: "f",
            },
            17,
        );
    }
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let state = AppState::new(store, ServiceConfig::default()).unwrap();
    let opened = state.tokens.open(
        &kizuna_taxii::token::TokenScope {
            account: "a",
            api_root: "r",
            collection: "c",
            endpoint: "objects",
            filters: "f",
        },
        &token,
    );
    assert_eq!(opened.unwrap(), 17);
}

// ----- one object, versions, manifest, delete -----

#[tokio::test]
async fn get_an_object_and_its_versions() {
    let hub = hub();
    for v in 0..3 {
        hub.post_objects(MAIN, &[indicator(1, v, None)]).await;
    }
    let url = format!("{}{}/", objects_url(MAIN), indicator_id(1));
    let r = hub.get("reader", &url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.objects().len(), 1);
    assert_eq!(r.objects()[0]["modified"], "2024-01-01T00:00:02.000Z");
    assert!(r.header("x-taxii-date-added-first").is_some());
    let all = hub
        .get("reader", &format!("{url}?match[version]=all"))
        .await;
    assert_eq!(all.objects().len(), 3);
    let no_slash = hub.get("reader", url.trim_end_matches('/')).await;
    assert_eq!(no_slash.status, StatusCode::OK);

    let versions = hub.get("reader", &format!("{url}versions/")).await;
    assert_eq!(versions.status, StatusCode::OK);
    assert_eq!(
        versions.json()["versions"],
        json!([
            "2024-01-01T00:00:00.000Z",
            "2024-01-01T00:00:01.000Z",
            "2024-01-01T00:00:02.000Z"
        ])
    );
    assert!(versions.header("x-taxii-date-added-first").is_some());
    assert_ne!(
        versions.header("x-taxii-date-added-first"),
        versions.header("x-taxii-date-added-last")
    );
    // Filters that leave no version of an existing object: an empty list, not 404.
    let none = hub
        .get("reader", &format!("{url}versions/?match[spec_version]=2.0"))
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.json().get("versions").is_none());
    let paged = hub
        .get("reader", &format!("{url}versions/?limit=2"))
        .await
        .json();
    assert_eq!(paged["more"], true);
    let rest = hub
        .get(
            "reader",
            &format!(
                "{url}versions/?limit=2&next={}",
                paged["next"].as_str().unwrap()
            ),
        )
        .await
        .json();
    assert_eq!(rest["versions"], json!(["2024-01-01T00:00:02.000Z"]));

    let missing = format!("{}{}/", objects_url(MAIN), indicator_id(99));
    assert_eq!(
        hub.get("reader", &missing).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hub.get("reader", &format!("{missing}versions/"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hub.get("reader", &format!("{}not-an-id/", objects_url(MAIN)))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn manifest_records() {
    let hub = hub();
    hub.post_objects(
        MAIN,
        &[indicator(1, 0, None), indicator(1, 1, None), malware(1)],
    )
    .await;
    let r = hub
        .get("reader", &format!("/api1/collections/{MAIN}/manifest/"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let objects = r.objects();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["id"], indicator_id(1));
    assert_eq!(objects[0]["version"], "2024-01-01T00:00:01.000Z");
    assert_eq!(
        objects[0]["media_type"],
        "application/stix+json;version=2.1"
    );
    let added = objects[0]["date_added"].as_str().unwrap();
    assert_eq!(added.len(), "2024-01-01T00:00:00.000000Z".len(), "{added}");
    assert_eq!(r.header("x-taxii-date-added-first"), Some(added));
    let all = hub
        .get(
            "reader",
            &format!("/api1/collections/{MAIN}/manifest/?match[version]=all&match[type]=indicator"),
        )
        .await;
    assert_eq!(all.objects().len(), 2);
}

// ----- TLP clearance -----

#[tokio::test]
async fn amber_cleared_reader_never_sees_amber_strict_or_red() {
    let hub = hub();
    let levels = [
        (10, Some(Tlp::Clear)),
        (11, Some(Tlp::Green)),
        (12, Some(Tlp::Amber)),
        (13, Some(Tlp::AmberStrict)),
        (14, Some(Tlp::Red)),
        (15, None),
    ];
    let objects: Vec<Value> = levels.iter().map(|(n, t)| indicator(*n, 0, *t)).collect();
    hub.post_objects(MAIN, &objects).await;
    let visible = vec![
        indicator_id(10),
        indicator_id(11),
        indicator_id(12),
        indicator_id(15),
    ];

    let r = hub
        .get(
            "reader",
            &format!("{}?match[version]=all", objects_url(MAIN)),
        )
        .await;
    assert_eq!(r.ids(), visible);
    let m = hub
        .get("reader", &format!("/api1/collections/{MAIN}/manifest/"))
        .await;
    assert_eq!(m.ids(), visible);
    for hidden in [13, 14] {
        let url = format!("{}{}/", objects_url(MAIN), indicator_id(hidden));
        assert_eq!(hub.get("reader", &url).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            hub.get("reader", &format!("{url}?match[version]=all"))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            hub.get("reader", &format!("{url}versions/")).await.status,
            StatusCode::NOT_FOUND
        );
        let by_id = hub
            .get(
                "reader",
                &format!("{}?match[id]={}", objects_url(MAIN), indicator_id(hidden)),
            )
            .await;
        assert!(by_id.ids().is_empty());
        // The RED-cleared writer sees it.
        assert_eq!(hub.get("writer", &url).await.status, StatusCode::OK);
    }
    // A newer version marked RED hides only itself: `last` for the reader is the older one? No:
    // the reader sees the newest version it is cleared for, or nothing; never the RED one.
    hub.post_objects(MAIN, &[indicator(12, 1, Some(Tlp::Red))])
        .await;
    let r = hub
        .get(
            "reader",
            &format!(
                "{}{}/?match[version]=all",
                objects_url(MAIN),
                indicator_id(12)
            ),
        )
        .await;
    for o in r.objects() {
        assert_ne!(o["object_marking_refs"], json!([Tlp::Red.marking_id()]));
    }

    // Reads are audited, one event per version served (committed by the audit writer; flush
    // waits for it).
    hub.state.audit.flush();
    let served = hub
        .store
        .audit_events(&AuditQuery {
            account: Some("reader".to_owned()),
            action: Some(AuditAction::Serve),
            limit: 1000,
            ..AuditQuery::default()
        })
        .unwrap();
    assert!(served.len() >= visible.len());
    assert!(served.iter().all(|e| {
        let id = e.object_id.as_deref().unwrap_or("");
        id != indicator_id(13) && id != indicator_id(14)
    }));
}

/// Regression (read audit moved off the request path): after the audit writer is flushed, the
/// log holds exactly one serve event per object version served, no more, no fewer.
#[tokio::test]
async fn every_version_served_is_audited_once_after_flush() {
    let hub = hub();
    let objects: Vec<Value> = (0..25).map(|n| indicator(n, 1, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    let reads = 7;
    for _ in 0..reads {
        let r = hub.get("reader", &objects_url(MAIN)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.objects().len(), 25);
    }
    let r = hub
        .get(
            "reader",
            &format!("{}{}/", objects_url(MAIN), indicator_id(3)),
        )
        .await;
    assert_eq!(r.objects().len(), 1);
    // Manifests serve no object content: not audited one by one.
    let r = hub
        .get("reader", &format!("/{ROOT}/collections/{MAIN}/manifest/"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    hub.state.audit.flush();
    assert_eq!(hub.state.audit.pending(), 0);
    let served = hub
        .store
        .audit_events(&AuditQuery {
            account: Some("reader".to_owned()),
            action: Some(AuditAction::Serve),
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(served.len(), reads * 25 + 1);
    assert_eq!(
        served
            .iter()
            .filter(|e| e.object_id.as_deref() == Some(indicator_id(3).as_str()))
            .count(),
        reads + 1
    );
}
