//! A partner's reading account under its egress policy: objects, object, versions and manifest
//! serve only what the policy lets out, redacted; other accounts are unaffected.

use std::collections::HashMap;

use kizuna_policy::{EgressPolicy, Redaction};

use super::*;

/// The partner's reading account: cleared for RED and allowed to read `MAIN`, so everything it
/// misses below is the policy's doing, not clearance or permissions.
const PARTNER: &str = "other";

/// Not an AMBER client (so AMBER and unmarked objects stay), no malware, internal properties
/// dropped.
fn partner_policy() -> EgressPolicy {
    EgressPolicy {
        deny_types: vec!["malware".to_owned()],
        redaction: Redaction {
            drop_custom_properties: true,
            ..Redaction::default()
        },
        ..EgressPolicy::default()
    }
}

fn partner_hub() -> Hub {
    hub_with(ServiceConfig {
        egress: HashMap::from([(PARTNER.to_owned(), partner_policy())]),
        ..ServiceConfig::default()
    })
}

fn malware_id(n: u32) -> String {
    malware(n)["id"].as_str().unwrap().to_owned()
}

/// GREEN indicator 1, GREEN malware 1, AMBER indicator 2, unmarked indicator 3, GREEN indicator 4
/// carrying `x_internal`. The partner may have indicators 1 and 4 (redacted).
async fn seeded() -> Hub {
    let hub = partner_hub();
    let mut internal = indicator(4, 0, Some(Tlp::Green));
    internal["x_internal"] = json!("ticket INC-1234, analyst notes");
    hub.post_objects(
        MAIN,
        &[
            indicator(1, 0, Some(Tlp::Green)),
            malware(1),
            indicator(2, 0, Some(Tlp::Amber)),
            indicator(3, 0, None),
            internal,
        ],
    )
    .await;
    hub
}

fn everything() -> Vec<String> {
    vec![
        indicator_id(1),
        malware_id(1),
        indicator_id(2),
        indicator_id(3),
        indicator_id(4),
    ]
}

fn assert_no_internal(reply: &Reply) {
    let body = String::from_utf8_lossy(&reply.body);
    assert!(
        !body.contains("x_internal") && !body.contains("INC-1234"),
        "internal property served: {body}"
    );
}

#[tokio::test]
async fn objects_serve_only_what_the_policy_lets_out_redacted() {
    let hub = seeded().await;
    let url = objects_url(MAIN);
    let r = hub.get(PARTNER, &url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ids(), vec![indicator_id(1), indicator_id(4)]);
    assert_eq!(r.json()["more"], false);
    assert_no_internal(&r);
    // Redaction removes the property and nothing else.
    let served = &r.objects()[1];
    let mut expected = indicator(4, 0, Some(Tlp::Green));
    expected.as_object_mut().unwrap().remove("x_internal");
    assert_eq!(*served, expected);
    // The same by alias.
    let by_alias = hub.get(PARTNER, &objects_url("main")).await;
    assert_eq!(by_alias.ids(), vec![indicator_id(1), indicator_id(4)]);

    let admin = hub.get("admin", &url).await;
    assert_eq!(admin.ids(), everything());
    assert_eq!(
        admin.objects()[4]["x_internal"],
        "ticket INC-1234, analyst notes"
    );
    // An account without a policy is unaffected (within its clearance).
    let writer = hub.get("writer", &url).await;
    assert_eq!(writer.ids(), everything());
}

#[tokio::test]
async fn paging_past_withheld_records_neither_repeats_nor_skips() {
    let hub = seeded().await;
    let mut seen = Vec::new();
    let mut url = format!("{}?limit=1", objects_url(MAIN));
    let mut pages = 0;
    loop {
        let r = hub.get(PARTNER, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        assert_no_internal(&r);
        assert!(r.objects().len() <= 1);
        seen.extend(r.ids());
        pages += 1;
        assert!(pages <= 5, "paging does not end");
        match r.json()["next"].as_str() {
            Some(next) => url = format!("{}?limit=1&next={next}", objects_url(MAIN)),
            None => {
                assert_eq!(r.json()["more"], false);
                break;
            }
        }
    }
    assert_eq!(seen, vec![indicator_id(1), indicator_id(4)]);

    let mut manifest = Vec::new();
    let mut url = format!("/{ROOT}/collections/{MAIN}/manifest/?limit=2");
    loop {
        let r = hub.get(PARTNER, &url).await;
        assert_eq!(r.status, StatusCode::OK);
        manifest.extend(r.ids());
        match r.json()["next"].as_str() {
            Some(next) => url = format!("/{ROOT}/collections/{MAIN}/manifest/?limit=2&next={next}"),
            None => break,
        }
    }
    assert_eq!(manifest, vec![indicator_id(1), indicator_id(4)]);
}

#[tokio::test]
async fn one_object_is_served_only_when_allowed() {
    let hub = seeded().await;
    let object_url = |id: &str| format!("{}{id}/", objects_url(MAIN));
    for withheld in [malware_id(1), indicator_id(2), indicator_id(3)] {
        let r = hub.get(PARTNER, &object_url(&withheld)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{withheld}");
        let admin = hub.get("admin", &object_url(&withheld)).await;
        assert_eq!(admin.status, StatusCode::OK, "{withheld}");
        assert_eq!(admin.ids(), vec![withheld]);
    }
    let r = hub.get(PARTNER, &object_url(&indicator_id(1))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ids(), vec![indicator_id(1)]);
    let r = hub.get(PARTNER, &object_url(&indicator_id(4))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ids(), vec![indicator_id(4)]);
    assert_no_internal(&r);
    let admin = hub.get("admin", &object_url(&indicator_id(4))).await;
    assert!(String::from_utf8_lossy(&admin.body).contains("x_internal"));
}

#[tokio::test]
async fn versions_and_manifest_list_only_allowed_versions() {
    let hub = seeded().await;
    // Indicator 5: a GREEN first version, then an AMBER one.
    hub.post_objects(
        MAIN,
        &[
            indicator(5, 0, Some(Tlp::Green)),
            indicator(5, 1, Some(Tlp::Amber)),
        ],
    )
    .await;
    let versions_url = |id: &str| format!("{}{id}/versions/", objects_url(MAIN));

    let r = hub.get(PARTNER, &versions_url(&indicator_id(5))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["versions"], json!(["2024-01-01T00:00:00.000Z"]));
    let admin = hub.get("admin", &versions_url(&indicator_id(5))).await;
    assert_eq!(admin.json()["versions"].as_array().unwrap().len(), 2);
    for withheld in [malware_id(1), indicator_id(2), indicator_id(3)] {
        let r = hub.get(PARTNER, &versions_url(&withheld)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{withheld}");
        let admin = hub.get("admin", &versions_url(&withheld)).await;
        assert_eq!(admin.status, StatusCode::OK, "{withheld}");
    }

    // The latest version of indicator 5 is AMBER: Get Objects has nothing of it to serve, and
    // does not fall back to an older version.
    let r = hub.get(PARTNER, &objects_url(MAIN)).await;
    assert_eq!(r.ids(), vec![indicator_id(1), indicator_id(4)]);
    let all = hub
        .get(
            PARTNER,
            &format!("{}?match[version]=all", objects_url(MAIN)),
        )
        .await;
    assert_eq!(
        all.ids(),
        vec![indicator_id(1), indicator_id(4), indicator_id(5)]
    );
    assert_eq!(all.objects()[2]["modified"], "2024-01-01T00:00:00.000Z");

    let manifest_url = format!("/{ROOT}/collections/{MAIN}/manifest/?match[version]=all");
    let r = hub.get(PARTNER, &manifest_url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.ids(),
        vec![indicator_id(1), indicator_id(4), indicator_id(5)]
    );
    let admin = hub.get("admin", &manifest_url).await;
    let mut expected = everything();
    expected.extend([indicator_id(5), indicator_id(5)]);
    assert_eq!(admin.ids(), expected);
}

#[tokio::test]
async fn a_page_of_withheld_records_moves_added_after_paging_on() {
    let hub = seeded().await;
    let r = hub
        .get(
            PARTNER,
            &format!("{}?match[type]=malware", objects_url(MAIN)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.objects().is_empty());
    assert_eq!(r.json()["more"], false);
    let admin = hub
        .get(
            "admin",
            &format!("{}?match[type]=malware", objects_url(MAIN)),
        )
        .await;
    assert_eq!(
        r.header("x-taxii-date-added-last"),
        admin.header("x-taxii-date-added-last"),
        "the last date_added read, so added_after paging moves past the withheld records"
    );
}
