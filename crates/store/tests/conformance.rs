//! The store conformance suite.
//!
//! Every behaviour is a function of `suite` that takes a fresh, empty `&dyn Store`, so that any
//! backend can run the same suite: the `conformance!` macro turns each into a test for SQLite,
//! and a PostgreSQL backend only needs one more invocation with its own constructor. Behaviours
//! that depend on a backend's files (reopening, two handles on one database) are below the suite.

// The suite's helpers are test code outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use kizuna_stix::{ObjectMeta, TLP2_MARKING_IDS, Timestamp, Tlp};
use kizuna_store::*;

/// Test data and the behaviours, independent of any backend.
mod suite {
    use std::collections::HashSet;

    use super::*;

    pub const ROOT: &str = "api1";
    pub const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
    pub const OTHER: &str = "472c94ae-3113-4e3e-a4dd-a9f4ac7471d4";

    /// Creates the API root and two collections; returns the first.
    pub fn setup(store: &dyn Store) -> CollectionRef {
        store
            .create_api_root(&ApiRoot {
                name: ROOT.into(),
                title: "Test root".into(),
                description: None,
                max_content_length: 10_000_000,
            })
            .unwrap();
        for (id, alias) in [(COLLECTION, "main"), (OTHER, "other")] {
            store
                .create_collection(&Collection {
                    api_root: ROOT.into(),
                    id: id.into(),
                    title: format!("collection {alias}"),
                    description: Some("for tests".into()),
                    alias: Some(alias.into()),
                    media_types: vec!["application/stix+json;version=2.1".into()],
                })
                .unwrap();
        }
        CollectionRef {
            api_root: ROOT.into(),
            id: COLLECTION.into(),
        }
    }

    pub fn uuid(n: u32) -> String {
        format!("{n:08x}-0000-4000-8000-{n:012x}")
    }

    pub fn object(json: serde_json::Value) -> NewObject {
        NewObject {
            meta: ObjectMeta::from_value(&json).unwrap(),
            json: json.to_string(),
        }
    }

    pub fn marking(tlp: Tlp) -> &'static str {
        TLP2_MARKING_IDS
            .iter()
            .find(|(level, _)| *level == tlp)
            .map(|(_, id)| *id)
            .unwrap()
    }

    /// An indicator `n` at version `modified`, optionally marked.
    pub fn indicator(n: u32, modified: &str, tlp: Option<Tlp>) -> NewObject {
        let mut json = serde_json::json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": format!("indicator--{}", uuid(n)),
            "created": "2020-01-01T00:00:00.000Z",
            "modified": modified,
            "pattern": format!("[ipv4-addr:value = '10.0.{}.{}']", n / 256, n % 256),
            "pattern_type": "stix",
            "valid_from": "2020-01-01T00:00:00Z",
        });
        if let Some(tlp) = tlp {
            json["object_marking_refs"] = serde_json::json!([marking(tlp)]);
        }
        object(json)
    }

    pub fn malware(n: u32) -> NewObject {
        object(serde_json::json!({
            "type": "malware",
            "spec_version": "2.1",
            "id": format!("malware--{}", uuid(n)),
            "created": "2021-01-01T00:00:00.000Z",
            "modified": "2021-01-01T00:00:00.000Z",
            "name": format!("malware {n}"),
            "is_family": false,
        }))
    }

    pub fn ipv4(n: u32, extra: Option<&str>) -> NewObject {
        let mut json = serde_json::json!({
            "type": "ipv4-addr",
            "spec_version": "2.1",
            "id": format!("ipv4-addr--{}", uuid(n)),
            "value": format!("192.0.2.{n}"),
        });
        if let Some(extra) = extra {
            json["x_note"] = extra.into();
        }
        object(json)
    }

    pub fn reader(limit: usize) -> ObjectQuery {
        ObjectQuery {
            limit,
            clearance: Tlp::Red,
            unmarked_as: Tlp::Clear,
            versions: VersionFilter::All,
            ..ObjectQuery::default()
        }
    }

    /// Reads every page of `query` (with `after_seq` from each page's last record).
    pub fn read_all(
        store: &dyn Store,
        c: &CollectionRef,
        query: &ObjectQuery,
    ) -> Vec<ObjectRecord> {
        let mut all = Vec::new();
        let mut query = query.clone();
        loop {
            let page = store.objects(c, &query).unwrap();
            assert!(page.records.len() <= query.limit);
            if page.more {
                assert_eq!(
                    page.records.len(),
                    query.limit,
                    "pages before the last are full"
                );
            }
            let last = page.records.last().map(|r| r.seq);
            all.extend(page.records);
            if !page.more {
                return all;
            }
            query.after_seq = last;
        }
    }

    fn versions_of(records: &[ObjectRecord]) -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| (r.id.clone(), r.version.to_string()))
            .collect()
    }

    pub fn roots_and_collections(store: &dyn Store) {
        let c = setup(store);
        assert_eq!(store.api_roots().unwrap().len(), 1);
        assert_eq!(store.api_root(ROOT).unwrap().unwrap().title, "Test root");
        assert!(store.api_root("nope").unwrap().is_none());
        let dup = store.create_api_root(&store.api_root(ROOT).unwrap().unwrap());
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        let bad = store.create_api_root(&ApiRoot {
            name: "a/b".into(),
            title: String::new(),
            description: None,
            max_content_length: 1,
        });
        assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
        // The server's own top-level paths would shadow an API root of that name, and dot
        // segments are no path segment at all.
        for name in ["taxii2", "healthz", "metrics", "Metrics", ".", ".."] {
            let reserved = store.create_api_root(&ApiRoot {
                name: name.into(),
                title: String::new(),
                description: None,
                max_content_length: 1,
            });
            match reserved {
                Err(StoreError::Invalid(why)) => {
                    assert!(why.contains("reserved"), "{why}");
                    assert!(why.contains(&format!("{name:?}")), "{why}");
                }
                other => panic!("API root {name:?}: {other:?}"),
            }
        }
        assert!(RESERVED_API_ROOT_NAMES.contains(&"healthz"));
        assert_eq!(store.api_roots().unwrap().len(), 1);

        let all = store.collections(ROOT).unwrap();
        assert_eq!(
            all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [COLLECTION, OTHER]
        );
        assert_eq!(store.collection(ROOT, "main").unwrap().unwrap().as_ref(), c);
        assert_eq!(store.collection(ROOT, COLLECTION).unwrap().unwrap(), all[0]);
        assert!(store.collection(ROOT, "missing").unwrap().is_none());
        assert!(store.collection("nope", COLLECTION).unwrap().is_none());

        let mut again = all[0].clone();
        again.alias = None;
        assert!(matches!(
            store.create_collection(&again),
            Err(StoreError::Conflict(_))
        ));
        again.id = "1b3f0e6c-2b35-4d56-9a4c-0ad0f6c2f5a1".into();
        again.alias = Some("other".into());
        assert!(matches!(
            store.create_collection(&again),
            Err(StoreError::Conflict(_))
        ));
        again.api_root = "nope".into();
        again.alias = None;
        assert!(matches!(
            store.create_collection(&again),
            Err(StoreError::NotFound(_))
        ));
        let missing = CollectionRef {
            api_root: ROOT.into(),
            id: "1b3f0e6c-2b35-4d56-9a4c-0ad0f6c2f5a1".into(),
        };
        assert!(matches!(
            store.objects(&missing, &reader(10)),
            Err(StoreError::NotFound(_))
        ));
    }

    pub fn paging_never_skips_or_repeats(store: &dyn Store) {
        let c = setup(store);
        let mut expected = Vec::new();
        let mut n = 0;
        for batch in [1000, 1000, 500] {
            let objects: Vec<_> = (0..batch)
                .map(|_| {
                    n += 1;
                    indicator(n, "2020-01-01T00:00:00.000Z", None)
                })
                .collect();
            expected.extend(objects.iter().map(|o| o.meta.id.to_string()));
            let report = store.add_objects(&c, objects).unwrap();
            assert!(report.outcomes.iter().all(|o| *o == AddOutcome::Added));
        }
        // Objects in another collection must not appear.
        store
            .add_objects(
                &CollectionRef {
                    api_root: ROOT.into(),
                    id: OTHER.into(),
                },
                vec![indicator(99_999, "2020-01-01T00:00:00.000Z", None)],
            )
            .unwrap();
        assert_eq!(store.count_objects(&c).unwrap(), 2500);

        let all = read_all(store, &c, &reader(7));
        let ids: Vec<_> = all.iter().map(|r| r.id.clone()).collect();
        assert_eq!(
            ids, expected,
            "insertion order, nothing skipped or repeated"
        );
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(all.windows(2).all(|w| w[0].date_added <= w[1].date_added));
        let distinct: HashSet<_> = all.iter().map(|r| r.date_added).collect();
        assert_eq!(distinct.len(), 3, "one date_added per add call");

        // Same with the default version filter and a page size that divides the total.
        let mut q = reader(500);
        q.versions = VersionFilter::Last;
        assert_eq!(read_all(store, &c, &q).len(), 2500);
        let mut q = reader(2500);
        let page = store.objects(&c, &q).unwrap();
        assert_eq!((page.records.len(), page.more), (2500, false));
        q.limit = 0;
        let page = store.objects(&c, &q).unwrap();
        assert_eq!((page.records.len(), page.more), (0, true));

        // The JSON comes back byte for byte.
        let first = indicator(1, "2020-01-01T00:00:00.000Z", None);
        assert_eq!(all[0].json, first.json);
        assert_eq!(all[0].object_type, "indicator");
        assert_eq!(all[0].spec_version, "2.1");
        assert_eq!(all[0].version.to_string(), "2020-01-01T00:00:00.000Z");
    }

    pub fn version_filters(store: &dyn Store) {
        let c = setup(store);
        let (v1, v2, v3) = (
            "2020-01-01T00:00:00.000Z",
            "2020-06-01T00:00:00.000Z",
            "2021-01-01T00:00:00.000Z",
        );
        // Added out of order, over several calls and within one.
        store.add_objects(&c, vec![indicator(1, v2, None)]).unwrap();
        store
            .add_objects(&c, vec![indicator(1, v1, None), indicator(2, v1, None)])
            .unwrap();
        store.add_objects(&c, vec![indicator(1, v3, None)]).unwrap();

        let a = format!("indicator--{}", uuid(1));
        let b = format!("indicator--{}", uuid(2));
        let run = |versions: VersionFilter| {
            let mut q = reader(2);
            q.versions = versions;
            let mut got = versions_of(&read_all(store, &c, &q));
            got.sort();
            got
        };
        let pair = |id: &str, v: &str| (id.to_owned(), v.to_owned());
        assert_eq!(run(VersionFilter::Last), [pair(&a, v3), pair(&b, v1)]);
        assert_eq!(run(VersionFilter::First), [pair(&a, v1), pair(&b, v1)]);
        assert_eq!(run(VersionFilter::All).len(), 4);
        let at = |v: &str| Timestamp::parse(v).unwrap();
        assert_eq!(
            run(VersionFilter::Set {
                last: false,
                first: false,
                at: vec![at(v2)]
            }),
            [pair(&a, v2)]
        );
        assert_eq!(
            run(VersionFilter::Set {
                last: true,
                first: false,
                at: vec![at(v1)]
            }),
            [pair(&a, v1), pair(&a, v3), pair(&b, v1)]
        );
        assert_eq!(
            run(VersionFilter::Set {
                last: false,
                first: false,
                at: vec![]
            }),
            []
        );
        // Versions are in sequence (date_added) order, not version order.
        let mut q = reader(10);
        q.ids = vec![a.clone()];
        let order: Vec<_> = store
            .objects(&c, &q)
            .unwrap()
            .records
            .iter()
            .map(|r| r.version.to_string())
            .collect();
        assert_eq!(order, [v2, v1, v3]);
    }

    pub fn spec_version_filter(store: &dyn Store) {
        let c = setup(store);
        let mut old = serde_json::json!({
            "type": "indicator",
            "id": format!("indicator--{}", uuid(7)),
            "created": "2016-01-01T00:00:00.000Z",
            "modified": "2016-01-01T00:00:00.000Z",
            "spec_version": "2.0",
        });
        store
            .add_objects(&c, vec![object(old.clone()), malware(1)])
            .unwrap();
        let mut q = reader(10);
        q.spec_versions = vec!["2.0".into()];
        let got = store.objects(&c, &q).unwrap().records;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].spec_version, "2.0");
        q.spec_versions = vec!["2.1".into()];
        assert_eq!(
            store.objects(&c, &q).unwrap().records[0].object_type,
            "malware"
        );
        q.spec_versions = vec!["2.0".into(), "2.1".into()];
        assert_eq!(store.objects(&c, &q).unwrap().records.len(), 2);
        q.spec_versions = vec![];
        assert_eq!(store.objects(&c, &q).unwrap().records.len(), 2);
        // Deleting by spec_version touches only that one.
        old["modified"] = "2017-01-01T00:00:00.000Z".into();
        store.add_objects(&c, vec![object(old)]).unwrap();
        let mut d = reader(0);
        d.spec_versions = vec!["2.1".into()];
        let id = format!("indicator--{}", uuid(7));
        assert_eq!(store.delete_object(&c, &id, &d).unwrap(), 0);
        d.spec_versions = vec!["2.0".into()];
        assert_eq!(store.delete_object(&c, &id, &d).unwrap(), 2);
    }

    pub fn type_and_id_filters(store: &dyn Store) {
        let c = setup(store);
        let mut objects = Vec::new();
        for n in 0..30 {
            objects.push(indicator(n, "2020-01-01T00:00:00.000Z", None));
            objects.push(malware(n));
            if n % 3 == 0 {
                objects.push(ipv4(n, None));
            }
        }
        store.add_objects(&c, objects).unwrap();
        let count = |q: &ObjectQuery| read_all(store, &c, q).len();
        let mut q = reader(4);
        q.types = vec!["malware".into()];
        assert_eq!(count(&q), 30);
        assert!(
            read_all(store, &c, &q)
                .iter()
                .all(|r| r.object_type == "malware")
        );
        q.types = vec!["malware".into(), "ipv4-addr".into()];
        assert_eq!(count(&q), 40);
        q.types = vec!["nothing".into()];
        assert_eq!(count(&q), 0);
        q.versions = VersionFilter::Last;
        q.types = vec!["ipv4-addr".into()];
        assert_eq!(count(&q), 10);

        let mut q = reader(2);
        q.ids = vec![
            format!("malware--{}", uuid(3)),
            format!("indicator--{}", uuid(4)),
            format!("indicator--{}", uuid(999)),
        ];
        let got = read_all(store, &c, &q);
        assert_eq!(
            got.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            [q.ids[0].clone(), q.ids[1].clone()]
        );
        q.types = vec!["malware".into()];
        assert_eq!(count(&q), 1);
        q.versions = VersionFilter::Last;
        assert_eq!(count(&q), 1);
    }

    pub fn added_after(store: &dyn Store) {
        let c = setup(store);
        let first = store
            .add_objects(&c, (0..5).map(malware).collect())
            .unwrap();
        let second = store
            .add_objects(&c, (5..8).map(malware).collect())
            .unwrap();
        assert!(second.date_added > first.date_added, "each call is later");
        let mut q = reader(2);
        q.added_after = Some(first.date_added);
        let got = read_all(store, &c, &q);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.date_added == second.date_added));
        q.added_after = Some(second.date_added);
        assert!(read_all(store, &c, &q).is_empty());
        q.added_after = Some(Timestamp::parse("2000-01-01T00:00:00Z").unwrap());
        assert_eq!(read_all(store, &c, &q).len(), 8);
        // Combined with a cursor further on than the date.
        let page = store.objects(&c, &reader(6)).unwrap();
        q.after_seq = page.records.last().map(|r| r.seq);
        assert_eq!(store.objects(&c, &q).unwrap().records.len(), 2);
    }

    pub fn clearance(store: &dyn Store) {
        let c = setup(store);
        let levels = [
            Tlp::Clear,
            Tlp::Green,
            Tlp::Amber,
            Tlp::AmberStrict,
            Tlp::Red,
        ];
        let mut objects: Vec<_> = levels
            .iter()
            .zip(1..)
            .map(|(tlp, n)| indicator(n, "2020-01-01T00:00:00.000Z", Some(*tlp)))
            .collect();
        objects.push(indicator(0, "2020-01-01T00:00:00.000Z", None));
        store.add_objects(&c, objects).unwrap();
        let seen = |clearance: Tlp, unmarked_as: Tlp| {
            let mut q = reader(1);
            q.clearance = clearance;
            q.unmarked_as = unmarked_as;
            read_all(store, &c, &q)
                .iter()
                .map(|r| r.tlp)
                .collect::<Vec<_>>()
        };
        let amber = seen(Tlp::Amber, Tlp::Green);
        assert_eq!(
            amber,
            [Some(Tlp::Clear), Some(Tlp::Green), Some(Tlp::Amber), None]
        );
        assert!(!amber.contains(&Some(Tlp::Red)));
        assert!(!amber.contains(&Some(Tlp::AmberStrict)));
        assert_eq!(
            seen(Tlp::Amber, Tlp::Red).len(),
            3,
            "unmarked as RED is hidden"
        );
        assert_eq!(seen(Tlp::Clear, Tlp::Clear).len(), 2);
        assert_eq!(seen(Tlp::AmberStrict, Tlp::Amber).len(), 5);
        assert_eq!(seen(Tlp::Red, Tlp::Red).len(), 6);
        // The default query is the most restrictive.
        let q = ObjectQuery {
            limit: 10,
            ..ObjectQuery::default()
        };
        let got = store.objects(&c, &q).unwrap().records;
        assert_eq!(
            got.iter().map(|r| r.tlp).collect::<Vec<_>>(),
            [Some(Tlp::Clear)]
        );
        // Filtering keeps pages full.
        let mut q = reader(2);
        q.clearance = Tlp::Green;
        let page = store.objects(&c, &q).unwrap();
        assert_eq!(page.records.len(), 2);
        assert!(page.more);
    }

    pub fn duplicates_and_conflicts(store: &dyn Store) {
        let c = setup(store);
        let v = "2020-01-01T00:00:00.000Z";
        let report = store
            .add_objects(&c, vec![indicator(1, v, None), indicator(1, v, None)])
            .unwrap();
        assert_eq!(report.outcomes, [AddOutcome::Added, AddOutcome::Duplicate]);
        let report = store
            .add_objects(&c, vec![indicator(1, v, None), indicator(2, v, None)])
            .unwrap();
        assert_eq!(report.outcomes, [AddOutcome::Duplicate, AddOutcome::Added]);

        let mut changed = indicator(1, v, Some(Tlp::Green));
        changed.json.push(' ');
        let report = store
            .add_objects(&c, vec![changed, indicator(3, v, None)])
            .unwrap();
        assert!(matches!(report.outcomes[0], AddOutcome::Rejected(_)));
        assert_eq!(report.outcomes[1], AddOutcome::Added);
        assert_eq!(store.count_objects(&c).unwrap(), 3);
        let stored = store.objects(&c, &reader(10)).unwrap().records;
        assert_eq!(
            stored[0].json,
            indicator(1, v, None).json,
            "the first one stays"
        );

        // Unversioned objects (SCOs): a repeat is a duplicate, a change is a new version.
        let report = store.add_objects(&c, vec![ipv4(1, None)]).unwrap();
        assert_eq!(report.outcomes, [AddOutcome::Added]);
        let report = store
            .add_objects(&c, vec![ipv4(1, None), ipv4(1, Some("seen again"))])
            .unwrap();
        assert_eq!(report.outcomes, [AddOutcome::Duplicate, AddOutcome::Added]);
        let mut q = reader(10);
        q.types = vec!["ipv4-addr".into()];
        let scos = store.objects(&c, &q).unwrap().records;
        assert_eq!(scos.len(), 2);
        assert_eq!(
            scos[0].version, scos[0].date_added,
            "SCOs are versioned by date_added"
        );
        q.versions = VersionFilter::Last;
        let last = store.objects(&c, &q).unwrap().records;
        assert_eq!(last.len(), 1);
        assert!(last[0].json.contains("seen again"));
        // Two different bodies of one SCO in one call: the first wins.
        let report = store
            .add_objects(&c, vec![ipv4(5, None), ipv4(5, Some("other"))])
            .unwrap();
        assert_eq!(report.outcomes[0], AddOutcome::Added);
        assert!(matches!(report.outcomes[1], AddOutcome::Rejected(_)));
        // The same id in another collection is independent.
        let other = CollectionRef {
            api_root: ROOT.into(),
            id: OTHER.into(),
        };
        let report = store
            .add_objects(&other, vec![indicator(1, v, None)])
            .unwrap();
        assert_eq!(report.outcomes, [AddOutcome::Added]);
    }

    /// Ids are found however many objects were added since (a backend may file them in stages,
    /// as the SQLite one does): in batches, thousands of objects, then each one again is a
    /// duplicate, a new version of each moves its flags, and an id filter finds both versions.
    pub fn ids_found_after_many_adds(store: &dyn Store) {
        let c = setup(store);
        let v1 = "2020-01-01T00:00:00.000Z";
        let v2 = "2020-06-01T00:00:00.000Z";
        let n = 4500u32;
        for start in (0..n).step_by(500) {
            let report = store
                .add_objects(
                    &c,
                    (start..start + 500)
                        .map(|i| indicator(i, v1, None))
                        .collect(),
                )
                .unwrap();
            assert!(report.outcomes.iter().all(|o| *o == AddOutcome::Added));
        }
        for start in (0..n).step_by(1500) {
            let report = store
                .add_objects(
                    &c,
                    (start..start + 1500)
                        .map(|i| indicator(i, v1, None))
                        .collect(),
                )
                .unwrap();
            assert!(
                report.outcomes.iter().all(|o| *o == AddOutcome::Duplicate),
                "from {start}"
            );
        }
        let report = store
            .add_objects(
                &c,
                (0..n).step_by(7).map(|i| indicator(i, v2, None)).collect(),
            )
            .unwrap();
        assert!(report.outcomes.iter().all(|o| *o == AddOutcome::Added));
        let ids: Vec<String> = [0u32, 7, 2002, 4494, 3]
            .iter()
            .map(|i| format!("indicator--{}", uuid(*i)))
            .collect();
        let mut q = reader(100);
        q.ids = ids.clone();
        let found = store.objects(&c, &q).unwrap().records;
        assert_eq!(found.len(), 4 * 2 + 1, "{found:?}");
        q.versions = VersionFilter::Last;
        let last = store.objects(&c, &q).unwrap().records;
        assert_eq!(last.len(), 5);
        for record in &last {
            let expected = if record.id == ids[4] { v1 } else { v2 };
            assert_eq!(
                record.version.unix_micros(),
                Timestamp::parse(expected).unwrap().unix_micros(),
                "{}",
                record.id
            );
        }
        assert_eq!(
            store.count_objects(&c).unwrap(),
            u64::from(n + n.div_ceil(7))
        );
    }

    /// A delete limited to a clearance checks and deletes in one step: all matching versions
    /// within it, or nothing.
    pub fn delete_if_cleared(store: &dyn Store) {
        let c = setup(store);
        let (v1, v2, v3) = (
            "2021-01-01T00:00:00.000Z",
            "2021-02-01T00:00:00.000Z",
            "2021-03-01T00:00:00.000Z",
        );
        store
            .add_objects(
                &c,
                vec![
                    indicator(1, v1, Some(Tlp::Green)),
                    indicator(1, v2, Some(Tlp::Red)),
                    indicator(1, v3, None),
                    indicator(2, v1, Some(Tlp::Red)),
                ],
            )
            .unwrap();
        let id = |n: u32| format!("indicator--{}", uuid(n));
        let amber = |versions: VersionFilter| ObjectQuery {
            versions,
            clearance: Tlp::Amber,
            unmarked_as: Tlp::Green,
            ..ObjectQuery::default()
        };
        let at = |v: &str| VersionFilter::Set {
            last: false,
            first: false,
            at: vec![Timestamp::parse(v).unwrap()],
        };
        let del = |n: u32, q: &ObjectQuery| store.delete_object_if_cleared(&c, &id(n), q).unwrap();
        // A RED version among the matches: nothing is deleted.
        assert_eq!(
            del(1, &amber(VersionFilter::All)),
            ClearedDelete::AboveClearance
        );
        assert_eq!(
            del(1, &amber(VersionFilter::First)),
            ClearedDelete::Deleted(1)
        );
        assert_eq!(store.count_objects(&c).unwrap(), 3);
        // Only RED versions match: to this caller there is nothing.
        assert_eq!(del(1, &amber(at(v2))), ClearedDelete::NoneVisible);
        assert_eq!(
            del(2, &amber(VersionFilter::All)),
            ClearedDelete::NoneVisible
        );
        assert_eq!(
            del(9, &amber(VersionFilter::All)),
            ClearedDelete::NoneVisible
        );
        // Unmarked versions count at `unmarked_as`.
        let mut strict = amber(at(v3));
        strict.unmarked_as = Tlp::Red;
        assert_eq!(del(1, &strict), ClearedDelete::NoneVisible);
        assert_eq!(del(1, &amber(at(v3))), ClearedDelete::Deleted(1));
        assert_eq!(store.count_objects(&c).unwrap(), 2);
        // Cleared for RED: everything left goes, and the flags are repaired as by delete_object.
        let mut red = amber(VersionFilter::All);
        red.clearance = Tlp::Red;
        assert_eq!(del(1, &red), ClearedDelete::Deleted(1));
        assert_eq!(del(2, &red), ClearedDelete::Deleted(1));
        assert_eq!(store.count_objects(&c).unwrap(), 0);
    }

    /// Every version deleted, by either delete, is logged in its collection's deletion log, in
    /// commit order, with its version and whether it was the object's own; paging never skips or
    /// repeats, and nothing is logged for a delete that deletes nothing or is refused.
    pub fn deletion_log(store: &dyn Store) {
        let c = setup(store);
        let other = CollectionRef {
            api_root: ROOT.into(),
            id: OTHER.into(),
        };
        let (v1, v2) = ("2021-01-01T00:00:00.000Z", "2021-02-01T00:00:00.5Z");
        store
            .add_objects(
                &c,
                vec![
                    indicator(1, v1, Some(Tlp::Green)),
                    indicator(1, v2, Some(Tlp::Green)),
                    indicator(2, v1, Some(Tlp::Red)),
                    ipv4(3, None),
                ],
            )
            .unwrap();
        store
            .add_objects(&other, vec![indicator(1, v1, None)])
            .unwrap();
        assert!(store.deletions(&c, None, 10).unwrap().records.is_empty());
        let id = |kind: &str, n: u32| format!("{kind}--{}", uuid(n));
        let at = |v: &str| ObjectQuery {
            versions: VersionFilter::Set {
                last: false,
                first: false,
                at: vec![Timestamp::parse(v).unwrap()],
            },
            ..ObjectQuery::default()
        };
        let all = ObjectQuery {
            versions: VersionFilter::All,
            clearance: Tlp::Green,
            unmarked_as: Tlp::Red,
            ..ObjectQuery::default()
        };
        let before = Timestamp::now();
        assert_eq!(
            store
                .delete_object(&c, &id("indicator", 1), &at(v2))
                .unwrap(),
            1
        );
        // Nothing matches, or a matching version is above the clearance: nothing is logged.
        assert_eq!(
            store.delete_object(&c, &id("indicator", 9), &all).unwrap(),
            0
        );
        assert_eq!(
            store
                .delete_object_if_cleared(&c, &id("indicator", 2), &all)
                .unwrap(),
            ClearedDelete::NoneVisible
        );
        assert_eq!(
            store
                .delete_object_if_cleared(&c, &id("indicator", 1), &all)
                .unwrap(),
            ClearedDelete::Deleted(1)
        );
        assert_eq!(
            store.delete_object(&c, &id("ipv4-addr", 3), &all).unwrap(),
            1
        );
        let log = store.deletions(&c, None, 10).unwrap();
        assert!(!log.more);
        let seen: Vec<(String, String, bool)> = log
            .records
            .iter()
            .map(|r| (r.id.clone(), r.version.to_string(), r.versioned))
            .collect();
        assert_eq!(seen[0], (id("indicator", 1), v2.to_owned(), true));
        assert_eq!(seen[1], (id("indicator", 1), v1.to_owned(), true));
        assert_eq!(
            (seen[2].0.as_str(), seen[2].2),
            (id("ipv4-addr", 3).as_str(), false)
        );
        assert_eq!(seen.len(), 3);
        for w in log.records.windows(2) {
            assert!(w[0].seq < w[1].seq);
        }
        assert!(
            log.records
                .iter()
                .all(|r| r.time.unix_micros() >= before.unix_micros())
        );
        // Paging: one at a time, resuming after the last seq, gives the same records.
        let mut after = None;
        let mut paged = Vec::new();
        loop {
            let page = store.deletions(&c, after, 1).unwrap();
            after = page.records.last().map(|r| r.seq);
            paged.extend(page.records);
            if !page.more {
                break;
            }
        }
        assert_eq!(paged, log.records);
        let last = log.records.last().map(|r| r.seq);
        assert!(store.deletions(&c, last, 10).unwrap().records.is_empty());
        // Another collection's log is its own.
        assert!(
            store
                .deletions(&other, None, 10)
                .unwrap()
                .records
                .is_empty()
        );
        store
            .delete_object(&other, &id("indicator", 1), &all)
            .unwrap();
        let theirs = store.deletions(&other, None, 10).unwrap().records;
        assert_eq!(theirs.len(), 1);
        assert!(theirs[0].seq > last.unwrap());
        // A version re-added and deleted again is logged again.
        store
            .add_objects(&c, vec![indicator(1, v2, Some(Tlp::Green))])
            .unwrap();
        store
            .delete_object(&c, &id("indicator", 1), &at(v2))
            .unwrap();
        assert_eq!(store.deletions(&c, last, 10).unwrap().records.len(), 1);
        let missing = CollectionRef {
            api_root: ROOT.into(),
            id: "no-such-collection".into(),
        };
        assert!(matches!(
            store.deletions(&missing, None, 10),
            Err(StoreError::NotFound(_))
        ));
    }

    /// Objects added with their audit events: one write event per version added, none for a
    /// duplicate or a rejection, in the same call.
    pub fn add_with_audit(store: &dyn Store) {
        let c = setup(store);
        let v = "2022-01-01T00:00:00.000Z";
        store.add_objects(&c, vec![indicator(1, v, None)]).unwrap();
        let mut conflicting = indicator(2, v, None);
        conflicting.json = conflicting.json.replace("10.0.", "10.9.");
        store.add_objects(&c, vec![indicator(2, v, None)]).unwrap();
        let report = store
            .add_objects_audited(
                &c,
                vec![
                    indicator(1, v, None),
                    indicator(3, v, None),
                    conflicting,
                    ipv4(4, None),
                ],
                "alice",
            )
            .unwrap();
        assert_eq!(report.outcomes[0], AddOutcome::Duplicate);
        assert_eq!(report.outcomes[1], AddOutcome::Added);
        assert!(matches!(report.outcomes[2], AddOutcome::Rejected(_)));
        assert_eq!(report.outcomes[3], AddOutcome::Added);
        let events = store
            .audit_events(&AuditQuery {
                action: Some(AuditAction::Write),
                ..AuditQuery::default()
            })
            .unwrap();
        let got: Vec<(Option<&str>, Option<&str>, Option<&str>)> = events
            .iter()
            .map(|e| {
                (
                    e.account.as_deref(),
                    e.object_id.as_deref(),
                    e.collection.as_deref(),
                )
            })
            .collect();
        let (three, four) = (
            format!("indicator--{}", uuid(3)),
            ipv4(4, None).meta.id.as_str().to_owned(),
        );
        assert_eq!(
            got,
            [
                (Some("alice"), Some(three.as_str()), Some(COLLECTION)),
                (Some("alice"), Some(four.as_str()), Some(COLLECTION)),
            ]
        );
        assert!(events.iter().all(|e| e.time == report.date_added));
        assert_eq!(
            events[0]
                .version
                .as_deref()
                .map(|t| Timestamp::parse(t).unwrap()),
            Some(Timestamp::parse(v).unwrap())
        );
        // The unversioned SCO takes date_added as its version.
        assert_eq!(
            events[1]
                .version
                .as_deref()
                .map(|t| Timestamp::parse(t).unwrap()),
            Some(report.date_added)
        );
        // Every version added is found by its object id, whichever add (envelope) listed it
        // and however many others it listed; duplicates are not writes.
        let v2 = "2023-01-01T00:00:00.000Z";
        let later = store
            .add_objects_audited(
                &c,
                vec![indicator(5, v, None), indicator(3, v2, None), malware(6)],
                "bob",
            )
            .unwrap();
        assert!(later.outcomes.iter().all(|o| *o == AddOutcome::Added));
        let by_object = |id: &str| {
            store
                .audit_events(&AuditQuery {
                    object_id: Some(id.to_owned()),
                    ..AuditQuery::default()
                })
                .unwrap()
        };
        let threes: Vec<(Option<String>, Timestamp, Timestamp)> = by_object(&three)
            .into_iter()
            .map(|e| {
                assert_eq!(e.action, AuditAction::Write);
                assert_eq!(e.object_id.as_deref(), Some(three.as_str()));
                let version = Timestamp::parse(e.version.as_deref().unwrap()).unwrap();
                (e.account, version, e.time)
            })
            .collect();
        assert_eq!(
            threes,
            [
                (
                    Some("alice".to_owned()),
                    Timestamp::parse(v).unwrap(),
                    report.date_added
                ),
                (
                    Some("bob".to_owned()),
                    Timestamp::parse(v2).unwrap(),
                    later.date_added
                ),
            ]
        );
        assert_eq!(by_object(&four).len(), 1);
        assert_eq!(by_object(&format!("indicator--{}", uuid(5))).len(), 1);
        assert!(by_object(&format!("indicator--{}", uuid(1))).is_empty());
        let writes = |account: Option<&str>, limit: usize| {
            store
                .audit_events(&AuditQuery {
                    account: account.map(str::to_owned),
                    action: Some(AuditAction::Write),
                    limit,
                    ..AuditQuery::default()
                })
                .unwrap()
                .len()
        };
        assert_eq!(writes(Some("bob"), 0), 3);
        assert_eq!(writes(None, 0), 5);
        assert_eq!(writes(None, 4), 4);
    }

    pub fn delete_repairs_flags(store: &dyn Store) {
        let c = setup(store);
        let vs = [
            "2020-01-01T00:00:00.000Z",
            "2020-02-01T00:00:00.000Z",
            "2020-03-01T00:00:00.000Z",
            "2020-04-01T00:00:00.000Z",
        ];
        store
            .add_objects(&c, vs.iter().map(|v| indicator(1, v, None)).collect())
            .unwrap();
        store
            .add_objects(&c, vec![indicator(2, vs[0], None)])
            .unwrap();
        let id = format!("indicator--{}", uuid(1));
        let only = |versions: VersionFilter| {
            let mut q = reader(10);
            q.ids = vec![id.clone()];
            q.versions = versions;
            versions_of(&store.objects(&c, &q).unwrap().records)
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        let del = |versions: VersionFilter| {
            let mut q = reader(0);
            q.versions = versions;
            store.delete_object(&c, &id, &q).unwrap()
        };
        assert_eq!(del(VersionFilter::Last), 1);
        assert_eq!(only(VersionFilter::Last), [vs[2]]);
        assert_eq!(del(VersionFilter::First), 1);
        assert_eq!(only(VersionFilter::First), [vs[1]]);
        assert_eq!(only(VersionFilter::All), [vs[1], vs[2]]);
        assert_eq!(
            del(VersionFilter::Set {
                last: false,
                first: false,
                at: vec![Timestamp::parse(vs[2]).unwrap()]
            }),
            1
        );
        assert_eq!(only(VersionFilter::Last), [vs[1]]);
        assert_eq!(only(VersionFilter::First), [vs[1]]);
        assert_eq!(store.count_objects(&c).unwrap(), 2);
        // A new version older than every stored one becomes the first.
        store
            .add_objects(&c, vec![indicator(1, vs[0], None)])
            .unwrap();
        assert_eq!(only(VersionFilter::First), [vs[0]]);
        assert_eq!(only(VersionFilter::Last), [vs[1]]);
        assert_eq!(del(VersionFilter::All), 2);
        assert!(only(VersionFilter::All).is_empty());
        assert_eq!(del(VersionFilter::All), 0);
        assert_eq!(store.count_objects(&c).unwrap(), 1);
        // The other object is untouched; the id can be added again.
        store
            .add_objects(&c, vec![indicator(1, vs[3], None)])
            .unwrap();
        assert_eq!(only(VersionFilter::First), [vs[3]]);
        assert_eq!(read_all(store, &c, &reader(1)).len(), 2);
    }

    /// An add that stores its own status resource: the status, completed from the outcomes
    /// (added, already present, rejected after the caller's own failures, an unversioned object
    /// named by date_added), is returned and readable right after, audited as a plain add is.
    pub fn add_with_status(store: &dyn Store) {
        let c = setup(store);
        let v = "2022-01-01T00:00:00.000Z";
        store.add_objects(&c, vec![indicator(1, v, None)]).unwrap();
        let mut conflicting = indicator(1, v, None);
        conflicting.json = conflicting.json.replace("10.0.", "10.9.");
        let one = format!("indicator--{}", uuid(1));
        let two = format!("indicator--{}", uuid(2));
        let sco = ipv4(3, None);
        let sco_id = sco.meta.id.as_str().to_owned();
        let refused = StatusDetail {
            id: "objects[4]".into(),
            version: "2025-01-01T00:00:00.000000Z".into(),
            message: Some("not a JSON object".into()),
        };
        let draft = StatusDraft {
            api_root: ROOT.into(),
            id: "0b8a3f86-3e6e-4d8c-9d4b-5b9d8d1b2c3a".into(),
            request_timestamp: Timestamp::parse("2025-01-01T00:00:00Z").unwrap(),
            total_count: 5,
            failures: vec![refused.clone()],
            submitted: vec![
                (one.clone(), Some(v.to_owned())),
                (two.clone(), Some(v.to_owned())),
                (one.clone(), Some(v.to_owned())),
                (sco_id.clone(), None),
            ],
        };
        let (report, status) = store
            .add_objects_audited_with_status(
                &c,
                vec![
                    indicator(1, v, None),
                    indicator(2, v, None),
                    conflicting,
                    sco,
                ],
                "alice",
                draft.clone(),
            )
            .unwrap();
        assert_eq!(report.outcomes[0], AddOutcome::Duplicate);
        assert_eq!(report.outcomes[1], AddOutcome::Added);
        assert!(matches!(report.outcomes[2], AddOutcome::Rejected(_)));
        assert_eq!(report.outcomes[3], AddOutcome::Added);
        assert_eq!(status, draft.complete(&report));
        assert_eq!(store.status(ROOT, &draft.id).unwrap(), Some(status.clone()));
        assert_eq!(status.status, StatusState::Complete);
        assert_eq!(status.total_count, 5);
        let date_added = report.date_added.to_micros().to_string();
        let named: Vec<(&str, &str, Option<&str>)> = status
            .successes
            .iter()
            .map(|d| (d.id.as_str(), d.version.as_str(), d.message.as_deref()))
            .collect();
        assert_eq!(
            named,
            [
                (one.as_str(), v, Some("already present")),
                (two.as_str(), v, None),
                (sco_id.as_str(), date_added.as_str(), None),
            ]
        );
        assert_eq!(status.failures.len(), 2);
        assert_eq!(status.failures[0], refused);
        assert_eq!(status.failures[1].id, one);
        assert!(status.failures[1].message.is_some());
        let writes = store
            .audit_events(&AuditQuery {
                action: Some(AuditAction::Write),
                account: Some("alice".into()),
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(writes.len(), 2);
        // An add that fails stores no status.
        let missing = CollectionRef {
            api_root: ROOT.into(),
            id: "no-such-collection".into(),
        };
        let mut lost = draft.clone();
        lost.id = "5f0e7c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b".into();
        lost.submitted.truncate(1);
        assert!(matches!(
            store.add_objects_audited_with_status(
                &missing,
                vec![indicator(9, v, None)],
                "alice",
                lost.clone()
            ),
            Err(StoreError::NotFound(_))
        ));
        assert!(store.status(ROOT, &lost.id).unwrap().is_none());
    }

    pub fn status_round_trip_and_expiry(store: &dyn Store) {
        setup(store);
        let status = Status {
            api_root: ROOT.into(),
            id: "2d086da7-4bdc-4f91-900e-d77486753710".into(),
            status: StatusState::Complete,
            request_timestamp: Timestamp::parse("2025-01-01T00:00:00.123456Z").unwrap(),
            total_count: 3,
            successes: vec![StatusDetail {
                id: format!("indicator--{}", uuid(1)),
                version: "2020-01-01T00:00:00.000Z".into(),
                message: None,
            }],
            failures: vec![StatusDetail {
                id: format!("indicator--{}", uuid(2)),
                version: "2020-01-01T00:00:00.000Z".into(),
                message: Some("bad".into()),
            }],
            pendings: vec![],
        };
        store.put_status(&status).unwrap();
        assert_eq!(
            store.status(ROOT, &status.id).unwrap(),
            Some(status.clone())
        );
        assert!(store.status("other", &status.id).unwrap().is_none());
        let mut later = status.clone();
        later.id = "6a1c7a1e-4a36-4b33-9b43-0f3f3a0a2b11".into();
        later.request_timestamp = Timestamp::parse("2025-01-02T00:00:00Z").unwrap();
        later.status = StatusState::Pending;
        store.put_status(&later).unwrap();
        later.status = StatusState::Complete;
        store.put_status(&later).unwrap();
        assert_eq!(store.status(ROOT, &later.id).unwrap(), Some(later.clone()));
        let cut = Timestamp::parse("2025-01-01T12:00:00Z").unwrap();
        assert_eq!(store.expire_statuses(cut).unwrap(), 1);
        assert!(store.status(ROOT, &status.id).unwrap().is_none());
        assert!(store.status(ROOT, &later.id).unwrap().is_some());
    }

    pub fn accounts_and_credentials(store: &dyn Store) {
        let c = setup(store);
        let phc = hash_password("s3cret").unwrap();
        let alice = store
            .create_account(&NewAccount {
                name: "alice".into(),
                password_hash: Some(phc.clone()),
                tlp_clearance: Tlp::Amber,
                admin: false,
            })
            .unwrap();
        assert!(!alice.revoked && !alice.admin);
        let dup = store.create_account(&NewAccount {
            name: "alice".into(),
            password_hash: None,
            tlp_clearance: Tlp::Clear,
            admin: true,
        });
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        store
            .create_account(&NewAccount {
                name: "admin".into(),
                password_hash: None,
                tlp_clearance: Tlp::Red,
                admin: true,
            })
            .unwrap();
        let names: Vec<_> = store
            .accounts()
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"admin".to_owned()));

        let got = store.account("alice").unwrap().unwrap();
        assert_eq!(got, alice);
        assert!(verify_password(
            got.password_hash.as_deref().unwrap(),
            "s3cret"
        ));
        assert!(store.account("bob").unwrap().is_none());
        store
            .set_password_hash("alice", &hash_password("new").unwrap())
            .unwrap();
        let got = store.account("alice").unwrap().unwrap();
        assert!(verify_password(
            got.password_hash.as_deref().unwrap(),
            "new"
        ));
        assert!(matches!(
            store.set_password_hash("bob", &phc),
            Err(StoreError::NotFound(_))
        ));

        let key = sha256(b"api key of alice");
        store.add_api_key("alice", &key).unwrap();
        assert!(matches!(
            store.add_api_key("alice", &key),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.add_api_key("bob", &sha256(b"x")),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(
            store.account_by_api_key(&key).unwrap().unwrap().name,
            "alice"
        );
        assert!(
            store
                .account_by_api_key(&sha256(b"other"))
                .unwrap()
                .is_none()
        );
        let cert = sha256(b"DER of alice's certificate");
        store.add_client_cert("alice", &cert).unwrap();
        assert_eq!(
            store.account_by_client_cert(&cert).unwrap().unwrap().name,
            "alice"
        );
        assert!(store.account_by_client_cert(&key).unwrap().is_none());
        assert!(store.account_by_api_key(&cert).unwrap().is_none());

        let read_only = Permission {
            api_root: ROOT.into(),
            collection: COLLECTION.into(),
            read: true,
            write: false,
        };
        store.set_permission("alice", &read_only).unwrap();
        let got = store.account("alice").unwrap().unwrap();
        assert_eq!((got.api_keys, got.client_certs), (1, 1));
        assert_eq!(got.permissions, std::slice::from_ref(&read_only));
        assert!(got.can_read(ROOT, &c.id) && !got.can_write(ROOT, &c.id));
        assert!(!got.can_read(ROOT, OTHER));
        store
            .set_permission(
                "alice",
                &Permission {
                    write: true,
                    ..read_only.clone()
                },
            )
            .unwrap();
        let got = store.account_by_api_key(&key).unwrap().unwrap();
        assert!(got.can_write(ROOT, &c.id));
        assert_eq!(got.permissions.len(), 1);
        // By credential, an account is what it is by name: every permission (in order) and its
        // credential counts.
        let other = Permission {
            collection: OTHER.into(),
            ..read_only.clone()
        };
        store.set_permission("alice", &other).unwrap();
        let by_name = store.account("alice").unwrap().unwrap();
        assert_eq!(by_name.permissions.len(), 2);
        assert_eq!(
            store.account_by_api_key(&key).unwrap().as_ref(),
            Some(&by_name)
        );
        assert_eq!(
            store.account_by_client_cert(&cert).unwrap().as_ref(),
            Some(&by_name)
        );
        store
            .set_permission(
                "alice",
                &Permission {
                    read: false,
                    write: false,
                    ..other
                },
            )
            .unwrap();
        store
            .set_permission(
                "alice",
                &Permission {
                    read: false,
                    write: false,
                    ..read_only.clone()
                },
            )
            .unwrap();
        assert!(
            store
                .account("alice")
                .unwrap()
                .unwrap()
                .permissions
                .is_empty()
        );
        assert_eq!(
            store.account_by_api_key(&key).unwrap(),
            store.account("alice").unwrap()
        );
        assert!(matches!(
            store.set_permission("bob", &read_only),
            Err(StoreError::NotFound(_))
        ));
        let unknown = Permission {
            collection: "1b3f0e6c-2b35-4d56-9a4c-0ad0f6c2f5a1".into(),
            ..read_only.clone()
        };
        assert!(matches!(
            store.set_permission("alice", &unknown),
            Err(StoreError::NotFound(_))
        ));
        let admin = store.account("admin").unwrap().unwrap();
        assert!(admin.can_read(ROOT, OTHER) && admin.can_write(ROOT, OTHER));

        assert!(store.revoke_account("alice").unwrap());
        assert!(!store.revoke_account("bob").unwrap());
        assert!(store.account("alice").unwrap().unwrap().revoked);
        assert!(store.account_by_api_key(&key).unwrap().is_none());
        assert!(store.account_by_client_cert(&cert).unwrap().is_none());
    }

    pub fn audit_log(store: &dyn Store) {
        setup(store);
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let event =
            |time: &str, account: &str, action: AuditAction, object: Option<&str>| AuditEvent {
                time: t(time),
                account: Some(account.into()),
                action,
                collection: Some(COLLECTION.into()),
                object_id: object.map(Into::into),
                version: object.map(|_| "2020-01-01T00:00:00.000Z".into()),
                detail: None,
            };
        let obj = format!("indicator--{}", uuid(1));
        store
            .audit(&[
                event(
                    "2025-01-01T00:00:00Z",
                    "alice",
                    AuditAction::Write,
                    Some(&obj),
                ),
                event(
                    "2025-01-01T00:00:01Z",
                    "bob",
                    AuditAction::Serve,
                    Some(&obj),
                ),
                AuditEvent {
                    detail: Some("from 192.0.2.1".into()),
                    collection: None,
                    ..event(
                        "2025-01-01T00:00:02Z",
                        "mallory",
                        AuditAction::LoginFailed,
                        None,
                    )
                },
            ])
            .unwrap();
        store
            .audit(&[event(
                "2025-01-02T00:00:00Z",
                "alice",
                AuditAction::Delete,
                Some(&obj),
            )])
            .unwrap();
        store.audit(&[]).unwrap();
        let all = store.audit_events(&AuditQuery::default()).unwrap();
        assert_eq!(all.len(), 4, "limit 0 means no limit");
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(all[2].detail.as_deref(), Some("from 192.0.2.1"));
        assert_eq!(all[2].action, AuditAction::LoginFailed);
        assert_eq!(all[0].time, t("2025-01-01T00:00:00Z"));
        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            store
                .audit_events(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.action)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(|q| q.account = Some("alice".into())),
            [AuditAction::Write, AuditAction::Delete]
        );
        assert_eq!(
            q(|q| q.action = Some(AuditAction::Serve)),
            [AuditAction::Serve]
        );
        assert_eq!(
            q(|q| q.object_id = Some(format!("indicator--{}", uuid(1)))).len(),
            3
        );
        assert_eq!(
            q(|q| q.since = Some(Timestamp::parse("2025-01-01T00:00:01Z").unwrap())).len(),
            3
        );
        assert_eq!(q(|q| q.limit = 2), [AuditAction::Write, AuditAction::Serve]);
    }

    /// Reads are logged one event per response (`audit_served`), listing the seqs of the rows
    /// served, and still found one record per version served, named by object id and version: by
    /// object, by account, by time, by action, with `limit` counting versions; also once a version
    /// served has been deleted. An add's write audit (`add_objects_audited`) reads the same way.
    pub fn audit_of_reads(store: &dyn Store) {
        let c = setup(store);
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let id = |n: u32| format!("indicator--{}", uuid(n));
        let v1 = "2020-01-01T00:00:00.000Z".to_owned();
        let v2 = "2021-06-01T12:00:00.123456Z".to_owned();
        // A write of its own, before: one row for the version, as before.
        store
            .audit(&[AuditEvent {
                time: t("2025-01-01T00:00:00Z"),
                account: Some("alice".into()),
                action: AuditAction::Write,
                collection: Some(COLLECTION.into()),
                object_id: Some(id(1)),
                version: Some(v1.clone()),
                detail: None,
            }])
            .unwrap();
        store
            .add_objects(
                &c,
                vec![
                    indicator(1, &v1, None),
                    indicator(2, &v1, None),
                    indicator(1, &v2, None),
                    indicator(2, &v2, None),
                ],
            )
            .unwrap();
        let seq = |n: u32, v: &str| {
            store
                .objects(&c, &reader(100))
                .unwrap()
                .records
                .iter()
                .find(|r| r.id == id(n) && r.version == t(v))
                .map(|r| r.seq)
                .unwrap()
        };
        let (s1v1, s2v1, s1v2, s2v2) = (seq(1, &v1), seq(2, &v1), seq(1, &v2), seq(2, &v2));
        let served = |time: &str, account: &str, endpoint: &str, seqs: &[i64]| {
            let mut list = ServedList::default();
            for &seq in seqs {
                list.push(seq);
            }
            ServedEvent {
                time: t(time),
                account: Some(account.into()),
                collection: Some(COLLECTION.into()),
                endpoint: Some(endpoint.into()),
                versions: list,
            }
        };
        store
            .audit_served(&[
                served(
                    "2025-01-01T00:00:01Z",
                    "bob",
                    "objects",
                    &[s1v1, s2v1, s1v2],
                ),
                served("2025-01-01T00:00:02Z", "bob", "objects", &[]),
            ])
            .unwrap();
        store
            .audit_served(&[served(
                "2025-01-02T00:00:00Z",
                "carol",
                &format!("object:{}", id(2)),
                &[s2v2],
            )])
            .unwrap();
        store.audit_served(&[]).unwrap();

        let all = store.audit_events(&AuditQuery::default()).unwrap();
        let rows: Vec<_> = all
            .iter()
            .map(|r| {
                (
                    r.action,
                    r.account.as_deref().unwrap(),
                    r.object_id.as_deref().unwrap(),
                    r.version.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (AuditAction::Write, "alice", id(1).as_str(), v1.as_str()),
                (AuditAction::Serve, "bob", id(1).as_str(), v1.as_str()),
                (AuditAction::Serve, "bob", id(2).as_str(), v1.as_str()),
                (AuditAction::Serve, "bob", id(1).as_str(), v2.as_str()),
                (AuditAction::Serve, "carol", id(2).as_str(), v2.as_str()),
            ],
            "a response that served nothing logs nothing"
        );
        assert_eq!(all[1].time, t("2025-01-01T00:00:01Z"));
        assert_eq!(all[1].collection.as_deref(), Some(COLLECTION));
        assert_eq!(all[1].detail.as_deref(), Some("objects"));
        assert_eq!(all[1].seq, all[3].seq, "one event per response");
        assert!(
            all.windows(2).all(|w| w[0].time <= w[1].time),
            "in time order"
        );

        let q = |f: &dyn Fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            store
                .audit_events(&q)
                .unwrap()
                .into_iter()
                .map(|r| (r.account.unwrap(), r.object_id.unwrap(), r.version.unwrap()))
                .collect::<Vec<_>>()
        };
        let rec = |account: &str, n: u32, v: &str| (account.to_owned(), id(n), v.to_owned());
        // By object: every time it was served, and only its own versions.
        assert_eq!(
            q(&|q| {
                q.object_id = Some(id(1));
                q.action = Some(AuditAction::Serve);
            }),
            [rec("bob", 1, &v1), rec("bob", 1, &v2)]
        );
        assert_eq!(
            q(&|q| q.object_id = Some(id(2))),
            [rec("bob", 2, &v1), rec("carol", 2, &v2)]
        );
        assert_eq!(q(&|q| q.object_id = Some(id(3))), []);
        // A prefix of a served id is not that id.
        assert_eq!(q(&|q| q.object_id = Some("indicator--0000".into())), []);
        // By account and by time.
        assert_eq!(
            q(&|q| q.account = Some("bob".into())),
            [rec("bob", 1, &v1), rec("bob", 2, &v1), rec("bob", 1, &v2)]
        );
        assert_eq!(
            q(&|q| q.since = Some(t("2025-01-01T12:00:00Z"))),
            [rec("carol", 2, &v2)]
        );
        assert_eq!(
            q(&|q| {
                q.account = Some("carol".into());
                q.object_id = Some(id(2));
                q.since = Some(t("2025-01-01T00:00:01Z"));
            }),
            [rec("carol", 2, &v2)]
        );
        // The limit counts versions, even inside one response, with or without an object.
        assert_eq!(
            q(&|q| {
                q.action = Some(AuditAction::Serve);
                q.limit = 2;
            }),
            [rec("bob", 1, &v1), rec("bob", 2, &v1)]
        );
        assert_eq!(q(&|q| q.limit = 1).len(), 1);
        assert_eq!(
            q(&|q| {
                q.object_id = Some(id(2));
                q.limit = 1;
            }),
            [rec("bob", 2, &v1)]
        );

        // Deleted versions are still named, in every record that served them, and found by
        // object.
        let before = store.audit_events(&AuditQuery::default()).unwrap();
        store
            .delete_object(
                &c,
                &id(2),
                &ObjectQuery {
                    versions: VersionFilter::All,
                    ..reader(10)
                },
            )
            .unwrap();
        store
            .delete_object(
                &c,
                &id(1),
                &ObjectQuery {
                    versions: VersionFilter::All,
                    ..reader(10)
                },
            )
            .unwrap();
        assert_eq!(store.audit_events(&AuditQuery::default()).unwrap(), before);
        assert_eq!(
            q(&|q| q.object_id = Some(id(2))),
            [rec("bob", 2, &v1), rec("carol", 2, &v2)]
        );

        // An add's write audit: one row, one record per version added (not the duplicate),
        // found by object.
        let report = store
            .add_objects_audited(
                &c,
                vec![
                    indicator(3, &v1, None),
                    indicator(3, &v1, None),
                    indicator(4, &v2, None),
                ],
                "dave",
            )
            .unwrap();
        assert_eq!(
            report.outcomes,
            [AddOutcome::Added, AddOutcome::Duplicate, AddOutcome::Added]
        );
        let writes = store
            .audit_events(&AuditQuery {
                account: Some("dave".into()),
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(
            writes
                .iter()
                .map(|r| (
                    r.action,
                    r.object_id.clone().unwrap(),
                    r.version.clone().unwrap(),
                    r.time
                ))
                .collect::<Vec<_>>(),
            [
                (AuditAction::Write, id(3), v1.clone(), report.date_added),
                (AuditAction::Write, id(4), v2.clone(), report.date_added),
            ]
        );
        assert_eq!(writes[0].seq, writes[1].seq, "one row per add");
        assert_eq!(q(&|q| q.object_id = Some(id(4))), [rec("dave", 4, &v2)]);
    }

    /// The list of rows served round-trips through the bytes the log stores, runs of consecutive
    /// seqs and gaps either way alike, and bytes it did not write are refused, not misread.
    pub fn served_list_encoding(_store: &dyn Store) {
        let cases: Vec<Vec<i64>> = vec![
            vec![],
            vec![1],
            vec![5, 6, 7, 8],
            vec![1, 2, 3, 10, 11, 4, 0, i64::MAX - 1, i64::MAX, 1],
            (1_000_000..1_000_100).collect(),
            (0..100).map(|i| i * 3).collect(),
        ];
        for seqs in cases {
            let mut list = ServedList::default();
            for &seq in &seqs {
                list.push(seq);
            }
            assert_eq!(list.len(), seqs.len());
            assert_eq!(list.is_empty(), seqs.is_empty());
            assert_eq!(list.iter().collect::<Vec<_>>(), seqs);
            let bytes = list.to_bytes();
            let back = ServedList::from_bytes(&bytes).unwrap();
            assert_eq!(back.iter().collect::<Vec<_>>(), seqs);
            assert_eq!(back.len(), seqs.len());
        }
        let mut page = ServedList::default();
        for seq in 1_000_000..1_000_100 {
            page.push(seq);
        }
        assert!(page.to_bytes().len() <= 6, "a page without gaps is one run");
        for bad in [
            &[][..],
            &[2, 0, 0],
            &[1, 0x80],
            &[1, 2],
            &[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0,
            ],
            &[
                1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x05,
            ],
        ] {
            assert!(ServedList::from_bytes(bad).is_err(), "{bad:?}");
        }
    }

    /// One snapshot answers what the separate calls answer: accounts by credential, collections,
    /// pages whole or row by row (the same records, `more` alike). An error inside it ends it
    /// and leaves the store usable.
    pub fn snapshot_reads(store: &dyn Store) {
        let c = setup(store);
        store
            .add_objects(
                &c,
                (0..25)
                    .map(|n| indicator(n, "2020-01-01T00:00:00Z", None))
                    .collect(),
            )
            .unwrap();
        store
            .create_account(&NewAccount {
                name: "robot".into(),
                password_hash: None,
                tlp_clearance: Tlp::Green,
                admin: false,
            })
            .unwrap();
        store.add_api_key("robot", &sha256(b"key")).unwrap();
        let key = |r: &ObjectRecord| (r.seq, r.id.clone(), r.version, r.json.clone(), r.tlp);
        let query = reader(10);
        let whole = store.objects(&c, &query).unwrap();
        let (account, collection, page, rows, more, envelope_rows) = in_snapshot(store, |s| {
            let mut rows = Vec::new();
            let more = s.each_object(&c, &query, &mut |r| {
                rows.push(r.to_record()?);
                Ok(())
            })?;
            let mut envelope_rows = Vec::new();
            let envelope_more = s.each_envelope_row(&c, &query, &mut |r| {
                envelope_rows.push((r.seq, r.date_added, r.json.to_vec()));
                Ok(())
            })?;
            Ok((
                s.account_by_api_key(&sha256(b"key"))?,
                s.collection(ROOT, "main")?,
                s.objects(&c, &query)?,
                rows,
                more && envelope_more,
                envelope_rows,
            ))
        })
        .unwrap();
        assert_eq!(account.map(|a| a.name).as_deref(), Some("robot"));
        assert_eq!(collection.map(|c| c.id).as_deref(), Some(COLLECTION));
        assert!(whole.more && page.more && more);
        let keys = |rs: &[ObjectRecord]| rs.iter().map(key).collect::<Vec<_>>();
        assert_eq!(keys(&page.records), keys(&whole.records));
        assert_eq!(keys(&rows), keys(&whole.records));
        assert_eq!(
            envelope_rows,
            whole
                .records
                .iter()
                .map(|r| (r.seq, r.date_added, r.json.clone().into_bytes()))
                .collect::<Vec<_>>()
        );
        // A sink's error ends the page with it.
        let failed = in_snapshot(store, |s| {
            s.each_object(&c, &query, &mut |_| Err(StoreError::Invalid("stop".into())))
        });
        assert!(matches!(failed, Err(StoreError::Invalid(_))));
        // The store still reads and writes after the failed snapshot.
        assert_eq!(store.objects(&c, &query).unwrap().records.len(), 10);
        store.revoke_account("robot").unwrap();
        assert!(
            in_snapshot(store, |s| s.account_by_api_key(&sha256(b"key")))
                .unwrap()
                .is_none()
        );
    }

    pub fn secrets(store: &dyn Store) {
        let a = store.secret("paging").unwrap();
        assert_eq!(store.secret("paging").unwrap(), a);
        let b = store.secret("other").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }
}

/// Runs each named behaviour of `suite` on a fresh SQLite store in a temporary directory.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = kizuna_store::SqliteStore::open(dir.path()).unwrap();
                    super::suite::$name(&store);
                }
            )*
        }
        mod sqlite_in_memory {
            $(
                #[test]
                fn $name() {
                    let store = kizuna_store::SqliteStore::open_in_memory().unwrap();
                    super::suite::$name(&store);
                }
            )*
        }
    };
}

conformance!(
    roots_and_collections,
    paging_never_skips_or_repeats,
    version_filters,
    spec_version_filter,
    type_and_id_filters,
    added_after,
    clearance,
    duplicates_and_conflicts,
    ids_found_after_many_adds,
    delete_repairs_flags,
    delete_if_cleared,
    deletion_log,
    add_with_audit,
    add_with_status,
    status_round_trip_and_expiry,
    accounts_and_credentials,
    audit_log,
    audit_of_reads,
    served_list_encoding,
    snapshot_reads,
    secrets,
);

// ----- SQLite files -----

#[test]
fn data_and_secrets_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, c) = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let c = suite::setup(&store);
        store
            .add_objects(&c, (0..10).map(suite::malware).collect())
            .unwrap();
        store
            .create_account(&NewAccount {
                name: "alice".into(),
                password_hash: None,
                tlp_clearance: Tlp::Green,
                admin: false,
            })
            .unwrap();
        (store.secret("paging").unwrap(), c)
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(dir.path().join(DB_FILE).exists());
    assert_eq!(store.secret("paging").unwrap(), secret);
    assert_eq!(store.count_objects(&c).unwrap(), 10);
    assert_eq!(suite::read_all(&store, &c, &suite::reader(3)).len(), 10);
    assert_eq!(
        store.account("alice").unwrap().unwrap().tlp_clearance,
        Tlp::Green
    );
    // The sequence continues after the reopen.
    store.add_objects(&c, vec![suite::malware(10)]).unwrap();
    let all = suite::read_all(&store, &c, &suite::reader(100));
    assert_eq!(all.len(), 11);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[test]
fn open_creates_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    let store = SqliteStore::open_with(&nested, Durability::PowerLoss).unwrap();
    assert_eq!(store.path(), Some(nested.join(DB_FILE).as_path()));
    store.secret("x").unwrap();
}

#[test]
fn two_handles_on_one_file_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open(dir.path()).unwrap();
    let b = SqliteStore::open(dir.path()).unwrap();
    let c = suite::setup(&a);
    assert!(b.collection(suite::ROOT, "main").unwrap().is_some());
    assert_eq!(a.secret("paging").unwrap(), b.secret("paging").unwrap());

    // Interleaved writers keep one sequence and non-decreasing date_added.
    for round in 0..5 {
        let (w, n) = if round % 2 == 0 {
            (&a, round)
        } else {
            (&b, round)
        };
        let objects = (n * 100..n * 100 + 100).map(suite::malware).collect();
        w.add_objects(&c, objects).unwrap();
    }
    for store in [&a, &b] {
        let all = suite::read_all(store, &c, &suite::reader(33));
        assert_eq!(all.len(), 500);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(all.windows(2).all(|w| w[0].date_added <= w[1].date_added));
        assert_eq!(store.count_objects(&c).unwrap(), 500);
    }
    b.create_account(&NewAccount {
        name: "bob".into(),
        password_hash: None,
        tlp_clearance: Tlp::Clear,
        admin: false,
    })
    .unwrap();
    let key = sha256(b"bob's key");
    b.add_api_key("bob", &key).unwrap();
    assert_eq!(a.account_by_api_key(&key).unwrap().unwrap().name, "bob");
    a.revoke_account("bob").unwrap();
    assert!(b.account_by_api_key(&key).unwrap().is_none());
    // A delete through one handle repairs flags seen by the other.
    let id = format!("malware--{}", suite::uuid(0));
    assert_eq!(a.delete_object(&c, &id, &suite::reader(0)).unwrap(), 1);
    assert_eq!(b.count_objects(&c).unwrap(), 499);
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open(dir.path()).unwrap();
    let b = SqliteStore::open(dir.path()).unwrap();
    let c = suite::setup(&a);
    std::thread::scope(|s| {
        for (t, store) in [&a, &b, &a, &b].into_iter().enumerate() {
            let c = c.clone();
            s.spawn(move || {
                for i in 0..20u32 {
                    let base = u32::try_from(t).unwrap() * 10_000 + i * 10;
                    store
                        .add_objects(&c, (base..base + 10).map(suite::malware).collect())
                        .unwrap();
                    store.objects(&c, &suite::reader(50)).unwrap();
                }
            });
        }
    });
    let all = suite::read_all(&b, &c, &suite::reader(77));
    assert_eq!(all.len(), 800);
    assert!(all.windows(2).all(|w| w[0].date_added <= w[1].date_added));
}

/// The audit of reads goes to a database file of its own: serving (and auditing) pages leaves
/// the objects' database unchanged, so its readers keep their memory map and cache; the records
/// are read back merged with the main log's, in time order, also after the store is reopened.
#[test]
fn reads_are_audited_apart_from_the_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let c = suite::setup(&store);
    store
        .add_objects_audited(
            &c,
            vec![suite::indicator(1, "2021-01-01T00:00:00.000Z", None)],
            "alice",
        )
        .unwrap();
    let seq = store.objects(&c, &suite::reader(10)).unwrap().records[0].seq;
    let main = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap()
    };
    let before = version(&main);
    let mut list = ServedList::default();
    list.push(seq);
    store
        .audit_served(&[ServedEvent {
            time: Timestamp::now(),
            account: Some("bob".into()),
            collection: Some(suite::COLLECTION.into()),
            endpoint: Some("objects".into()),
            versions: list,
        }])
        .unwrap();
    assert_eq!(
        version(&main),
        before,
        "kizuna.db unchanged by the read audit"
    );
    assert!(dir.path().join(READ_LOG_FILE).exists());
    let read_back = |store: &SqliteStore| {
        store
            .audit_events(&AuditQuery::default())
            .unwrap()
            .into_iter()
            .map(|r| (r.action, r.account.unwrap(), r.object_id.unwrap()))
            .collect::<Vec<_>>()
    };
    let id = format!("indicator--{}", suite::uuid(1));
    let expected = vec![
        (AuditAction::Write, "alice".to_owned(), id.clone()),
        (AuditAction::Serve, "bob".to_owned(), id.clone()),
    ];
    assert_eq!(read_back(&store), expected);
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(read_back(&store), expected);
    assert_eq!(
        store
            .audit_events(&AuditQuery {
                action: Some(AuditAction::Serve),
                object_id: Some(id.clone()),
                ..AuditQuery::default()
            })
            .unwrap()
            .len(),
        1
    );
}

/// A store written before the id index changed (schema version 3: `objects_id` on
/// `(coll, id_hash, version)`) is migrated on open, and its objects are found by id as before:
/// duplicates are recognised, a new version moves the first/last flags, an id filter and a
/// delete find the old versions. Its audit of reads (`<id> <version>` lines) reads as before.
#[test]
fn store_from_schema_3_keeps_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let c = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let c = suite::setup(&store);
        let mut objects: Vec<NewObject> = (0..300)
            .map(|n| suite::indicator(n, "2021-01-01T00:00:00.000Z", None))
            .collect();
        objects.extend((0..50).map(|n| suite::ipv4(n, None)));
        let report = store.add_objects(&c, objects).unwrap();
        assert!(report.outcomes.iter().all(|o| *o == AddOutcome::Added));
        c
    };
    // Back to exactly what schema version 3 had for objects: its id index and nothing newer.
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let mut names = conn
            .prepare(
                "SELECT type, name FROM sqlite_schema
                 WHERE name = 'objects_id' OR name LIKE 'id_keys%'",
            )
            .unwrap()
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        names.retain(|(kind, _)| kind == "index" || kind == "table");
        for (kind, name) in names {
            if !name.starts_with("sqlite_autoindex") {
                conn.execute_batch(&format!("DROP {kind} IF EXISTS {name}"))
                    .unwrap();
            }
        }
        conn.execute_batch(
            "DELETE FROM counters WHERE name <> 'objects';
             CREATE INDEX objects_id ON objects(coll, id_hash, version);
             DROP INDEX deletions_object_seq;
             ALTER TABLE deletions DROP COLUMN object_seq;
             ALTER TABLE audit DROP COLUMN seqs;
             DELETE FROM schema_version WHERE version > 3;",
        )
        .unwrap();
        // A read audited as schema 3 did: `<id> <version>` lines.
        conn.execute(
            "INSERT INTO audit (time, account, action, collection, detail, served)
             VALUES (1, 'bob', 'serve', ?1, 'objects', ?2)",
            rusqlite::params![
                suite::COLLECTION,
                format!(
                    "indicator--{} 2021-01-01T00:00:00.000Z\nipv4-addr--{} 2021-01-01T00:00:00.000000Z",
                    suite::uuid(1),
                    suite::uuid(2)
                )
            ],
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    // The old row reads as it did, by object too.
    let old = store
        .audit_events(&AuditQuery {
            object_id: Some(format!("ipv4-addr--{}", suite::uuid(2))),
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(
        old.iter()
            .map(|r| (r.account.as_deref(), r.version.as_deref()))
            .collect::<Vec<_>>(),
        [(Some("bob"), Some("2021-01-01T00:00:00.000000Z"))]
    );
    assert_eq!(store.audit_events(&AuditQuery::default()).unwrap().len(), 2);
    let mut again: Vec<NewObject> = (0..300)
        .map(|n| suite::indicator(n, "2021-01-01T00:00:00.000Z", None))
        .collect();
    again.extend((0..50).map(|n| suite::ipv4(n, None)));
    let report = store.add_objects(&c, again).unwrap();
    assert!(
        report.outcomes.iter().all(|o| *o == AddOutcome::Duplicate),
        "{:?}",
        report.outcomes
    );
    let changed = store
        .add_objects(
            &c,
            vec![suite::indicator(7, "2021-01-01T00:00:00.001Z", None)],
        )
        .unwrap();
    assert_eq!(changed.outcomes, vec![AddOutcome::Added]);
    let newer = store
        .add_objects(
            &c,
            vec![suite::indicator(7, "2022-01-01T00:00:00.000Z", None)],
        )
        .unwrap();
    assert_eq!(newer.outcomes, vec![AddOutcome::Added]);
    let id = format!("indicator--{}", suite::uuid(7));
    let by_id = |versions| ObjectQuery {
        ids: vec![id.clone()],
        versions,
        ..suite::reader(10)
    };
    let last = store.objects(&c, &by_id(VersionFilter::Last)).unwrap();
    assert_eq!(last.records.len(), 1);
    let micros = |t: &str| Timestamp::parse(t).unwrap().unix_micros();
    assert_eq!(
        last.records[0].version.unix_micros(),
        micros("2022-01-01T00:00:00Z")
    );
    let first = store.objects(&c, &by_id(VersionFilter::First)).unwrap();
    assert_eq!(first.records.len(), 1);
    assert_eq!(
        first.records[0].version.unix_micros(),
        micros("2021-01-01T00:00:00Z")
    );
    let all_versions = store.objects(&c, &by_id(VersionFilter::All)).unwrap();
    assert_eq!(all_versions.records.len(), 3);
    assert_eq!(
        store
            .delete_object(&c, &id, &by_id(VersionFilter::All))
            .unwrap(),
        3
    );
    assert!(
        store
            .objects(&c, &by_id(VersionFilter::All))
            .unwrap()
            .records
            .is_empty()
    );
    assert_eq!(store.count_objects(&c).unwrap(), 350 + 2 - 3);
}

// ----- other processes -----

/// Set in the environment of the child process started by `killed_writer_loses_nothing_acked`.
const CHILD_DIR: &str = "KIZUNA_STORE_TEST_CHILD_DIR";

/// Not a test of its own: the body of the child process of `killed_writer_loses_nothing_acked`
/// (this test binary run again with [`CHILD_DIR`] set). Without it, it returns at once.
#[test]
fn child_process_writer() {
    use std::io::Write;
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&dir)).unwrap();
    let c = CollectionRef {
        api_root: suite::ROOT.into(),
        id: suite::COLLECTION.into(),
    };
    let mut stdout = std::io::stdout().lock();
    for batch in 0u32.. {
        let objects = (batch * 50..batch * 50 + 50).map(suite::malware).collect();
        store.add_objects(&c, objects).unwrap();
        // Printed only once the call has returned, like a 202 after the commit.
        writeln!(stdout, "acked {}", (batch + 1) * 50).unwrap();
        stdout.flush().unwrap();
    }
}

/// Another process writes continuously while this one reads the same store; then it is killed
/// (SIGKILL on Unix) and every object whose add had returned is still there.
#[test]
fn killed_writer_loses_nothing_acked() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let c = suite::setup(&store);
    /// Kills the child if this test fails half-way (it would also die of a broken pipe).
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Child(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut acked = 0;
    let mut seen_while_writing = 0;
    while acked < 2000 {
        let line = lines.next().expect("the writer exited early").unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            // Reads in this process run alongside the other's writes and never see less than
            // what it acknowledged.
            let count = store.count_objects(&c).unwrap();
            assert!(count >= acked, "{count} < {acked}");
            if acked % 500 == 0 {
                seen_while_writing = suite::read_all(&store, &c, &suite::reader(997)).len();
                assert!(seen_while_writing >= usize::try_from(acked).unwrap());
            }
        }
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    let all = suite::read_all(&store, &c, &suite::reader(1000));
    assert!(all.len() >= usize::try_from(acked).unwrap());
    assert!(all.len() >= seen_while_writing);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        store.count_objects(&c).unwrap(),
        u64::try_from(all.len()).unwrap()
    );
}
