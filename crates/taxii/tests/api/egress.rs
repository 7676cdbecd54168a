//! A partner's reading account under its egress policy: objects, object, versions and manifest
//! serve only what the policy lets out, redacted; other accounts are unaffected. What objects and
//! object serve such an account is in the egress ledger first (exit `taxii`, SHA-256 of the bytes
//! served), and nothing is served when that fails. The policy map is live.

use std::collections::HashMap;
use std::sync::Arc;

use kizuna_policy::ledger::{
    Exit, Head, LedgerEntry, LedgerError, LedgerRecord, LedgerStorage, MemoryLedger, sha256_hex,
    verify,
};
use kizuna_policy::{EgressPolicy, Redaction};
use kizuna_taxii::{EgressMap, PartnerEgress};

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

/// The partner `PARTNER` belongs to, as the ledger names it.
const PARTNER_NAME: &str = "allied-cert";

fn partner_map(policy: EgressPolicy) -> HashMap<String, PartnerEgress> {
    HashMap::from([(
        PARTNER.to_owned(),
        PartnerEgress {
            partner: PARTNER_NAME.to_owned(),
            policy,
        },
    )])
}

fn partner_hub() -> Hub {
    partner_hub_with_ledger(Some(Arc::new(MemoryLedger::new())))
}

fn partner_hub_with_ledger(ledger: Option<Arc<dyn LedgerStorage>>) -> Hub {
    hub_with(ServiceConfig {
        egress: EgressMap::new(partner_map(partner_policy())),
        ledger,
        ..ServiceConfig::default()
    })
}

fn ledger_records(hub: &Hub) -> Vec<LedgerRecord> {
    hub.state
        .config
        .ledger
        .as_ref()
        .unwrap()
        .records(0, 1000)
        .unwrap()
}

/// The exact text of each object in an envelope, as the client received it.
fn raw_objects(reply: &Reply) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, default)]
        objects: Vec<&'a serde_json::value::RawValue>,
    }
    let envelope: Envelope<'_> = serde_json::from_slice(&reply.body).unwrap();
    envelope
        .objects
        .iter()
        .map(|o| o.get().to_owned())
        .collect()
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

/// What Get Objects and Get an Object serve a partner's account is in the ledger: exactly those
/// versions, exit `taxii`, the partner's name, the marking and the SHA-256 of the bytes received
/// (after redaction). What is withheld, what other accounts read, and what manifests and version
/// lists reveal are not.
#[tokio::test]
async fn what_a_partner_reads_is_ledgered_with_the_bytes_it_received() {
    let hub = seeded().await;
    let r = hub.get(PARTNER, &objects_url(MAIN)).await;
    assert_eq!(r.status, StatusCode::OK);
    let raw = raw_objects(&r);
    assert_eq!(raw.len(), 2);
    assert!(
        !raw[1].contains("x_internal"),
        "the redacted bytes were served"
    );
    let records = ledger_records(&hub);
    let got: Vec<(Exit, &str, &str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r.entry.exit,
                r.entry.partner.as_str(),
                r.entry.object_id.as_str(),
                r.entry.marking.as_str(),
                r.entry.sha256.as_str(),
            )
        })
        .collect();
    let (h1, h4) = (sha256_hex(raw[0].as_bytes()), sha256_hex(raw[1].as_bytes()));
    let (i1, i4) = (indicator_id(1), indicator_id(4));
    assert_eq!(
        got,
        vec![
            (Exit::Taxii, PARTNER_NAME, i1.as_str(), "green", h1.as_str()),
            (Exit::Taxii, PARTNER_NAME, i4.as_str(), "green", h4.as_str()),
        ]
    );
    assert_eq!(records[0].entry.version, "2024-01-01T00:00:00.000Z");

    // Other accounts, manifests, version lists and withheld objects leave no record.
    hub.get("admin", &objects_url(MAIN)).await;
    hub.get(PARTNER, &format!("/{ROOT}/collections/{MAIN}/manifest/"))
        .await;
    let versions = format!("{}{}/versions/", objects_url(MAIN), indicator_id(1));
    assert_eq!(hub.get(PARTNER, &versions).await.status, StatusCode::OK);
    let withheld = format!("{}{}/", objects_url(MAIN), malware_id(1));
    assert_eq!(
        hub.get(PARTNER, &withheld).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ledger_records(&hub).len(), 2);

    // Get an Object is ledgered too.
    let one = hub
        .get(
            PARTNER,
            &format!("{}{}/", objects_url(MAIN), indicator_id(4)),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    let records = ledger_records(&hub);
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].entry.object_id, indicator_id(4));
    assert_eq!(
        records[2].entry.sha256,
        sha256_hex(raw_objects(&one)[0].as_bytes())
    );
    let v = verify(hub.state.config.ledger.as_deref().unwrap(), None).unwrap();
    assert!(v.is_intact(), "{:?}", v.problems);
}

/// A ledger that refuses every append.
#[derive(Debug)]
struct BrokenLedger;

impl LedgerStorage for BrokenLedger {
    fn append(&self, _: &[LedgerEntry]) -> Result<Vec<LedgerRecord>, LedgerError> {
        Err(LedgerError::storage("disk full"))
    }
    fn records(&self, _: u64, _: usize) -> Result<Vec<LedgerRecord>, LedgerError> {
        Ok(Vec::new())
    }
    fn head(&self) -> Result<Option<Head>, LedgerError> {
        Ok(None)
    }
}

/// When the ledger cannot record what a partner's account would be served, or there is no
/// ledger, nothing is served (503 with a TAXII error); accounts without a policy are unaffected.
#[tokio::test]
async fn nothing_is_served_to_a_partner_unless_the_ledger_records_it() {
    for ledger in [Some(Arc::new(BrokenLedger) as Arc<dyn LedgerStorage>), None] {
        let hub = partner_hub_with_ledger(ledger);
        hub.post_objects(MAIN, &[indicator(1, 0, Some(Tlp::Green))])
            .await;
        let r = hub.get(PARTNER, &objects_url(MAIN)).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.json()["title"].is_string(), "a TAXII error body");
        assert!(!String::from_utf8_lossy(&r.body).contains(&indicator_id(1)));
        let one = hub
            .get(
                PARTNER,
                &format!("{}{}/", objects_url(MAIN), indicator_id(1)),
            )
            .await;
        assert_eq!(one.status, StatusCode::SERVICE_UNAVAILABLE);
        // Nothing to serve, nothing to record: an empty page is fine.
        let none = hub
            .get(
                PARTNER,
                &format!("{}?match[type]=malware", objects_url(MAIN)),
            )
            .await;
        assert_eq!(none.status, StatusCode::OK);
        // The manifest reveals no object and needs no record.
        let manifest = hub
            .get(PARTNER, &format!("/{ROOT}/collections/{MAIN}/manifest/"))
            .await;
        assert_eq!(manifest.status, StatusCode::OK);
        let admin = hub.get("admin", &objects_url(MAIN)).await;
        assert_eq!(admin.ids(), vec![indicator_id(1)]);
    }
}

/// Replacing the map changes what the next request is served, without a new server.
#[tokio::test]
async fn a_replaced_policy_applies_to_the_next_request() {
    let hub = seeded().await;
    let r = hub.get(PARTNER, &objects_url(MAIN)).await;
    assert_eq!(r.ids(), vec![indicator_id(1), indicator_id(4)]);
    let mut stricter = partner_policy();
    stricter.deny_types.push("indicator".to_owned());
    hub.state.config.egress.replace(partner_map(stricter));
    let r = hub.get(PARTNER, &objects_url(MAIN)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.ids().is_empty(), "{:?}", r.ids());
    // Dropping the account from the map lifts the policy (and its ledger) altogether.
    hub.state.config.egress.replace(HashMap::new());
    let r = hub.get(PARTNER, &objects_url(MAIN)).await;
    assert_eq!(r.ids(), everything());
    assert_eq!(
        ledger_records(&hub).len(),
        2,
        "only the first read was a partner's"
    );
}
