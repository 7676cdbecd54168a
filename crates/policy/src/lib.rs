//! Kizuna's egress policy: which object versions may leave the hub for a given partner, and in
//! what form.
//!
//! # What this crate owns
//!
//! One policy engine for every exit of the hub, so that each asks the same question and gets the
//! same answer, with reasons:
//!
//! - **TAXII reads by partner accounts** (`kizuna-taxii`: Get Objects, Get an Object, Get Object
//!   Versions, Get Manifest drop what a reading partner's policy refuses and serve the redacted
//!   bytes);
//! - **push** (`kizuna-sync` decides every version before it is queued);
//! - **export** (`kizuna export --partner`).
//!
//! Rules, in the order they are checked (the first that refuses decides, every rule is reported):
//!
//! 1. **TLP 2.0** on the object's effective marking ([`kizuna_stix::effective_tlp`], granular
//!    markings included): RED never leaves; AMBER+STRICT never leaves the organisation (a partner is
//!    another organisation); AMBER only to partners marked `amber_client`; GREEN and CLEAR go.
//!    Unmarked objects are treated as [`EgressPolicy::unmarked_as`] (AMBER unless configured).
//! 2. **Deny lists** (type, label, collection): a match refuses.
//! 3. **Allow lists** (type, label, collection): when a list is non-empty the object must match it;
//!    an object whose collection is unknown fails a collection allow list (fail closed).
//!
//! Redaction ([`Redaction`]) is applied after the decision, to what is allowed.
//!
//! The [`ledger`] module is the other half of "one engine at every exit": the hash-chained record
//! each exit writes of what it let out (its record type, hashing, chaining and verification; the
//! storage is the caller's, behind [`ledger::LedgerStorage`]).
//!
//! # What it must never do
//!
//! - **Let RED or AMBER+STRICT out**, whatever a partner's allow lists say: TLP is checked first
//!   and cannot be configured away.
//! - **Do I/O, keep state or read the clock.** It is pure (STIX JSON in, a [`Decision`] and bytes
//!   out; for the ledger, callers give the time and keep the records), so that the TAXII server, the sync engine and the command line can all call it, tests
//!   can drive it exhaustively, and an answer given by `kizuna policy explain` is the answer every
//!   exit gives. It depends on `kizuna-stix` (markings) and nothing async.
//! - **Re-serialise what it does not change.** [`EgressPolicy::egress_bytes`] hands back the
//!   stored bytes themselves unless a redaction actually rewrote the object.

use std::borrow::Cow;

use kizuna_stix::{Tlp, effective_tlp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub mod ledger;

/// One partner's egress policy (`[partner.policy]` in `kizuna.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressPolicy {
    /// The partner is one of our clients in the TLP sense: AMBER may go to it.
    pub amber_client: bool,
    /// The level unmarked objects are treated as.
    pub unmarked_as: Tlp,
    /// Only these object types (empty: any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_types: Vec<String>,
    /// Never these object types.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_types: Vec<String>,
    /// Only objects carrying one of these labels (empty: any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_labels: Vec<String>,
    /// Never objects carrying one of these labels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_labels: Vec<String>,
    /// Only objects from these local collections, by id or alias (empty: any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_collections: Vec<String>,
    /// Never objects from these local collections, by id or alias.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_collections: Vec<String>,
    /// How allowed objects are rewritten before they leave.
    #[serde(skip_serializing_if = "Redaction::is_default")]
    pub redaction: Redaction,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            amber_client: false,
            unmarked_as: Tlp::Amber,
            allow_types: Vec::new(),
            deny_types: Vec::new(),
            allow_labels: Vec::new(),
            deny_labels: Vec::new(),
            allow_collections: Vec::new(),
            deny_collections: Vec::new(),
            redaction: Redaction::default(),
        }
    }
}

/// Rewrites applied to objects that are allowed to leave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redaction {
    /// Drop every property whose name starts with `x_` (internal custom properties), at any depth
    /// except inside `extensions`, whose keys are extension ids.
    pub drop_custom_properties: bool,
    /// Replace email addresses (`email-addr` objects, and those embedded in `observed-data`'s
    /// `objects`) by `<sha256>@redacted.invalid` and drop their `display_name`.
    pub hash_email_addresses: bool,
    /// Prefixed to each address before hashing, so that a partner cannot confirm a guess without
    /// it. Empty: plain SHA-256 of the lower-cased address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email_hash_salt: String,
}

impl Redaction {
    fn is_default(&self) -> bool {
        *self == Redaction::default()
    }

    /// Whether this redaction changes anything at all.
    pub fn is_active(&self) -> bool {
        self.drop_custom_properties || self.hash_email_addresses
    }
}

/// The outcome of [`EgressPolicy::explain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the object may go to the partner.
    pub allowed: bool,
    /// The TLP level the decision used (the object's, or the default for unmarked objects).
    pub tlp: Tlp,
    /// Whether the object carries a TLP marking (false: `tlp` is the configured default).
    pub marked: bool,
    /// Every rule checked, in order, with its outcome; the refusing one (if any) is last.
    pub reasons: Vec<String>,
}

impl Decision {
    /// The marking as the egress ledger records it: the effective TLP level (`green`,
    /// `amber`, ...), or `unmarked (as LEVEL)` for an object without a TLP marking.
    pub fn marking_label(&self) -> String {
        if self.marked {
            self.tlp.as_str().to_owned()
        } else {
            format!("unmarked (as {})", self.tlp.as_str())
        }
    }

    /// The reason the object was refused, if it was.
    pub fn refusal(&self) -> Option<&str> {
        if self.allowed {
            None
        } else {
            self.reasons.last().map(String::as_str)
        }
    }
}

impl EgressPolicy {
    /// Decides whether `object`, held in the local collection named by any of `collection_names`
    /// (its id and alias; empty when unknown), may go to the partner this policy belongs to.
    pub fn explain(&self, object: &Value, collection_names: &[&str]) -> Decision {
        let mut reasons = Vec::new();
        let marking = effective_tlp(object);
        let tlp = marking.unwrap_or(self.unmarked_as);
        let marked = marking.is_some();
        let refuse = |mut reasons: Vec<String>, why: String| Decision {
            allowed: false,
            tlp,
            marked,
            reasons: {
                reasons.push(why);
                reasons
            },
        };
        let Some(object_type) = object.get("type").and_then(Value::as_str) else {
            return refuse(reasons, "not a STIX object: no type".to_owned());
        };
        let source = if marked {
            "marked".to_owned()
        } else {
            format!("unmarked, treated as {}", tlp.as_str().to_ascii_uppercase())
        };
        let level = format!("TLP:{} ({source})", tlp.as_str().to_ascii_uppercase());
        match tlp {
            Tlp::Red => return refuse(reasons, format!("{level}: RED never leaves the hub")),
            Tlp::AmberStrict => {
                return refuse(
                    reasons,
                    format!("{level}: AMBER+STRICT never leaves the organisation"),
                );
            }
            Tlp::Amber if !self.amber_client => {
                return refuse(
                    reasons,
                    format!(
                        "{level}: AMBER goes only to partners marked amber_client, and this one is not"
                    ),
                );
            }
            Tlp::Amber => reasons.push(format!("{level}: allowed, the partner is an AMBER client")),
            Tlp::Green | Tlp::Clear => reasons.push(format!("{level}: allowed to partners")),
        }

        let labels: Vec<&str> = object
            .get("labels")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();

        if self.deny_types.iter().any(|t| t == object_type) {
            return refuse(reasons, format!("type {object_type} is denied"));
        }
        if let Some(l) = labels
            .iter()
            .find(|l| self.deny_labels.iter().any(|d| d == *l))
        {
            return refuse(reasons, format!("label {l:?} is denied"));
        }
        if let Some(c) = collection_names
            .iter()
            .find(|c| self.deny_collections.iter().any(|d| d == *c))
        {
            return refuse(reasons, format!("collection {c} is denied"));
        }

        if !self.allow_types.is_empty() {
            if self.allow_types.iter().any(|t| t == object_type) {
                reasons.push(format!("type {object_type} is in the allow list"));
            } else {
                return refuse(
                    reasons,
                    format!("type {object_type} is not in the allow list"),
                );
            }
        }
        if !self.allow_labels.is_empty() {
            match labels
                .iter()
                .find(|l| self.allow_labels.iter().any(|a| a == *l))
            {
                Some(l) => reasons.push(format!("label {l:?} is in the allow list")),
                None => return refuse(reasons, "no label in the allow list".to_owned()),
            }
        }
        if !self.allow_collections.is_empty() {
            match collection_names
                .iter()
                .find(|c| self.allow_collections.iter().any(|a| a == *c))
            {
                Some(c) => reasons.push(format!("collection {c} is in the allow list")),
                None if collection_names.is_empty() => {
                    return refuse(
                        reasons,
                        "collection unknown and an allow list of collections is set".to_owned(),
                    );
                }
                None => {
                    return refuse(
                        reasons,
                        format!(
                            "collection {} is not in the allow list",
                            collection_names[0]
                        ),
                    );
                }
            }
        }
        if self.redaction.is_active() {
            reasons.push("allowed, with redaction".to_owned());
        }
        Decision {
            allowed: true,
            tlp,
            marked,
            reasons,
        }
    }

    /// The bytes to send for an allowed object: `raw` itself, unchanged, when redaction changes
    /// nothing, else the re-serialised redacted object (property order preserved).
    pub fn egress_bytes<'a>(&self, raw: &'a str, object: &Value) -> Cow<'a, str> {
        match self.redaction.apply(object) {
            None => Cow::Borrowed(raw),
            Some(v) => Cow::Owned(v.to_string()),
        }
    }
}

impl Redaction {
    /// The redacted object, or `None` when nothing had to change.
    pub fn apply(&self, object: &Value) -> Option<Value> {
        if !self.is_active() {
            return None;
        }
        let mut out = object.clone();
        let mut changed = false;
        if self.drop_custom_properties {
            changed |= drop_custom(&mut out);
        }
        if self.hash_email_addresses {
            changed |= self.hash_emails(&mut out);
        }
        changed.then_some(out)
    }

    fn hash_emails(&self, object: &mut Value) -> bool {
        let mut changed = false;
        match object.get("type").and_then(Value::as_str) {
            Some("email-addr") => changed |= self.hash_email_addr(object),
            Some("observed-data") => {
                if let Some(Value::Object(embedded)) = object.get_mut("objects") {
                    for o in embedded.values_mut() {
                        if o.get("type").and_then(Value::as_str) == Some("email-addr") {
                            changed |= self.hash_email_addr(o);
                        }
                    }
                }
            }
            _ => {}
        }
        changed
    }

    fn hash_email_addr(&self, object: &mut Value) -> bool {
        let Some(map) = object.as_object_mut() else {
            return false;
        };
        let mut changed = map.remove("display_name").is_some();
        if let Some(Value::String(addr)) = map.get("value") {
            let hashed = self.hash_address(addr);
            if *addr != hashed {
                map.insert("value".to_owned(), Value::String(hashed));
                changed = true;
            }
        }
        changed
    }

    /// `<hex SHA-256 of salt + lower-cased address>@redacted.invalid`; idempotent on its output.
    pub fn hash_address(&self, addr: &str) -> String {
        if addr.ends_with("@redacted.invalid") {
            return addr.to_owned();
        }
        let mut h = Sha256::new();
        h.update(self.email_hash_salt.as_bytes());
        h.update(addr.trim().to_lowercase().as_bytes());
        format!("{}@redacted.invalid", hex::encode(h.finalize()))
    }
}

fn drop_custom(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => drop_custom_in(map),
        Value::Array(items) => items.iter_mut().fold(false, |c, v| drop_custom(v) | c),
        _ => false,
    }
}

fn drop_custom_in(map: &mut Map<String, Value>) -> bool {
    let before = map.len();
    map.retain(|k, _| !k.starts_with("x_"));
    let mut changed = map.len() != before;
    for (k, v) in map.iter_mut() {
        if k == "extensions" {
            // Keys here are extension ids, not properties; look inside each extension.
            if let Value::Object(exts) = v {
                for ext in exts.values_mut() {
                    changed |= drop_custom(ext);
                }
            }
        } else {
            changed |= drop_custom(v);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn marked(tlp: Tlp) -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '1.2.3.4']", "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
            "object_marking_refs": [tlp.marking_id()],
            "labels": ["phishing"]
        })
    }

    fn unmarked() -> Value {
        let mut v = marked(Tlp::Clear);
        v.as_object_mut().unwrap().remove("object_marking_refs");
        v
    }

    #[test]
    fn tlp_matrix_for_clients_and_non_clients() {
        let plain = EgressPolicy::default();
        let client = EgressPolicy {
            amber_client: true,
            ..Default::default()
        };
        let expect = [
            (Tlp::Clear, true, true),
            (Tlp::Green, true, true),
            (Tlp::Amber, false, true),
            (Tlp::AmberStrict, false, false),
            (Tlp::Red, false, false),
        ];
        for (tlp, to_plain, to_client) in expect {
            let o = marked(tlp);
            let d = plain.explain(&o, &[]);
            assert_eq!(
                d.allowed, to_plain,
                "{tlp} to plain partner: {:?}",
                d.reasons
            );
            assert_eq!(d.tlp, tlp);
            assert!(d.marked);
            assert_eq!(
                client.explain(&o, &[]).allowed,
                to_client,
                "{tlp} to client"
            );
        }
    }

    #[test]
    fn red_never_leaves_whatever_the_lists_say() {
        let p = EgressPolicy {
            amber_client: true,
            unmarked_as: Tlp::Clear,
            allow_types: vec!["indicator".into()],
            allow_labels: vec!["phishing".into()],
            ..Default::default()
        };
        let d = p.explain(&marked(Tlp::Red), &["c"]);
        assert!(!d.allowed);
        assert!(d.refusal().unwrap().contains("RED never leaves"));
        let d = p.explain(&marked(Tlp::AmberStrict), &["c"]);
        assert!(d.refusal().unwrap().contains("organisation"));
    }

    #[test]
    fn granular_red_makes_the_whole_object_red() {
        let mut o = marked(Tlp::Green);
        o["granular_markings"] =
            json!([{"marking_ref": Tlp::Red.marking_id(), "selectors": ["description"]}]);
        assert!(!EgressPolicy::default().explain(&o, &[]).allowed);
    }

    #[test]
    fn tlp1_markings_count() {
        let mut o = marked(Tlp::Clear);
        o["object_marking_refs"] =
            json!(["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]);
        let d = EgressPolicy::default().explain(&o, &[]);
        assert!(!d.allowed);
        assert_eq!(d.tlp, Tlp::Red);
    }

    #[test]
    fn unmarked_objects_take_the_default() {
        let o = unmarked();
        let d = EgressPolicy::default().explain(&o, &[]);
        assert!(!d.allowed, "AMBER by default, and not a client");
        assert_eq!(d.tlp, Tlp::Amber);
        assert!(!d.marked);
        assert!(d.refusal().unwrap().contains("unmarked"));
        for (default, allowed) in [
            (Tlp::Clear, true),
            (Tlp::Green, true),
            (Tlp::Amber, false),
            (Tlp::AmberStrict, false),
            (Tlp::Red, false),
        ] {
            let p = EgressPolicy {
                unmarked_as: default,
                ..Default::default()
            };
            assert_eq!(p.explain(&o, &[]).allowed, allowed, "{default}");
        }
    }

    #[test]
    fn tlp_marking_definitions_themselves_are_public() {
        let d = EgressPolicy::default().explain(&Tlp::Red.marking_definition(), &[]);
        assert!(d.allowed, "{:?}", d.reasons);
    }

    #[test]
    fn deny_lists_refuse() {
        let o = marked(Tlp::Green);
        let by_type = EgressPolicy {
            deny_types: vec!["indicator".into()],
            ..Default::default()
        };
        assert!(
            by_type
                .explain(&o, &[])
                .refusal()
                .unwrap()
                .contains("type indicator")
        );
        let by_label = EgressPolicy {
            deny_labels: vec!["phishing".into()],
            ..Default::default()
        };
        assert!(
            by_label
                .explain(&o, &[])
                .refusal()
                .unwrap()
                .contains("phishing")
        );
        let by_collection = EgressPolicy {
            deny_collections: vec!["internal".into()],
            ..Default::default()
        };
        assert!(!by_collection.explain(&o, &["1234", "internal"]).allowed);
        assert!(by_collection.explain(&o, &["shared"]).allowed);
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = EgressPolicy {
            allow_types: vec!["indicator".into()],
            deny_labels: vec!["phishing".into()],
            ..Default::default()
        };
        assert!(!p.explain(&marked(Tlp::Green), &[]).allowed);
    }

    #[test]
    fn allow_lists_restrict() {
        let o = marked(Tlp::Green);
        let types = EgressPolicy {
            allow_types: vec!["malware".into()],
            ..Default::default()
        };
        assert!(!types.explain(&o, &[]).allowed);
        let types = EgressPolicy {
            allow_types: vec!["malware".into(), "indicator".into()],
            ..Default::default()
        };
        assert!(types.explain(&o, &[]).allowed);
        let labels = EgressPolicy {
            allow_labels: vec!["apt".into()],
            ..Default::default()
        };
        assert!(!labels.explain(&o, &[]).allowed);
        let mut no_labels = o.clone();
        no_labels.as_object_mut().unwrap().remove("labels");
        assert!(!labels.explain(&no_labels, &[]).allowed);
        let labels = EgressPolicy {
            allow_labels: vec!["phishing".into()],
            ..Default::default()
        };
        assert!(labels.explain(&o, &[]).allowed);
        let colls = EgressPolicy {
            allow_collections: vec!["shared".into()],
            ..Default::default()
        };
        assert!(colls.explain(&o, &["id-1", "shared"]).allowed);
        assert!(!colls.explain(&o, &["id-1"]).allowed);
        let d = colls.explain(&o, &[]);
        assert!(
            d.refusal().unwrap().contains("unknown"),
            "fail closed: {:?}",
            d.reasons
        );
    }

    #[test]
    fn non_objects_are_refused() {
        let p = EgressPolicy {
            unmarked_as: Tlp::Clear,
            ..Default::default()
        };
        assert!(!p.explain(&json!([1, 2]), &[]).allowed);
        assert!(!p.explain(&json!({"id": "x"}), &[]).allowed);
    }

    #[test]
    fn reasons_list_every_rule_passed() {
        let p = EgressPolicy {
            amber_client: true,
            allow_types: vec!["indicator".into()],
            allow_labels: vec!["phishing".into()],
            allow_collections: vec!["shared".into()],
            redaction: Redaction {
                drop_custom_properties: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let d = p.explain(&marked(Tlp::Amber), &["shared"]);
        assert!(d.allowed);
        assert_eq!(d.reasons.len(), 5, "{:?}", d.reasons);
        assert!(d.refusal().is_none());
    }

    #[test]
    fn without_redaction_the_bytes_are_untouched() {
        let raw = r#"{"type":"indicator",  "x_internal":1}"#;
        let v: Value = serde_json::from_str(raw).unwrap();
        let p = EgressPolicy::default();
        assert!(matches!(p.egress_bytes(raw, &v), Cow::Borrowed(b) if b == raw));
    }

    #[test]
    fn custom_properties_are_dropped_at_every_depth_but_extension_ids_stay() {
        let raw = r#"{"type":"indicator","id":"indicator--1","x_internal":"secret","name":"n",
            "external_references":[{"source_name":"s","x_ticket":"T-1"}],
            "extensions":{"x-acme-ext":{"extension_type":"property-extension","x_note":"n","keep":1}}}"#;
        let v: Value = serde_json::from_str(raw).unwrap();
        let p = EgressPolicy {
            redaction: Redaction {
                drop_custom_properties: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let out: Value = serde_json::from_str(&p.egress_bytes(raw, &v)).unwrap();
        assert_eq!(
            out,
            json!({"type":"indicator","id":"indicator--1","name":"n",
                "external_references":[{"source_name":"s"}],
                "extensions":{"x-acme-ext":{"extension_type":"property-extension","keep":1}}})
        );
        let clean = r#"{"type":"indicator"}"#;
        let cv: Value = serde_json::from_str(clean).unwrap();
        assert!(
            matches!(p.egress_bytes(clean, &cv), Cow::Borrowed(_)),
            "nothing to drop: same bytes"
        );
    }

    #[test]
    fn email_addresses_are_hashed_in_sco_and_observed_data() {
        let r = Redaction {
            hash_email_addresses: true,
            ..Default::default()
        };
        let sco = json!({"type":"email-addr","id":"email-addr--2d77a846-6264-5d51-b586-e43822ea1ea3",
            "value":"John@Example.com","display_name":"John"});
        let out = r.apply(&sco).unwrap();
        let hashed = out["value"].as_str().unwrap();
        assert!(hashed.ends_with("@redacted.invalid"));
        assert!(!hashed.to_lowercase().contains("john"));
        assert!(out.get("display_name").is_none());
        assert_eq!(out["id"], sco["id"], "the id stays so references hold");
        assert_eq!(
            r.hash_address("john@example.com"),
            hashed,
            "case-insensitive"
        );
        assert!(r.apply(&out).is_none(), "idempotent");

        let od = json!({"type":"observed-data","objects":{"0":{"type":"email-addr","value":"a@b.c"},"1":{"type":"ipv4-addr","value":"1.2.3.4"}}});
        let out = r.apply(&od).unwrap();
        assert!(
            out["objects"]["0"]["value"]
                .as_str()
                .unwrap()
                .ends_with("@redacted.invalid")
        );
        assert_eq!(out["objects"]["1"]["value"], "1.2.3.4");

        let salted = Redaction {
            hash_email_addresses: true,
            email_hash_salt: "pepper".into(),
            ..Default::default()
        };
        assert_ne!(salted.hash_address("a@b.c"), r.hash_address("a@b.c"));
        assert!(
            r.apply(&json!({"type":"indicator","value":"a@b.c"}))
                .is_none()
        );
    }

    #[test]
    fn policy_parses_from_toml_with_defaults_and_rejects_typos() {
        let p: EgressPolicy = toml::from_str("amber_client = true\ndeny_types = [\"note\"]\n[redaction]\nhash_email_addresses = true").unwrap();
        assert!(p.amber_client);
        assert_eq!(p.unmarked_as, Tlp::Amber);
        assert!(p.redaction.hash_email_addresses);
        assert!(toml::from_str::<EgressPolicy>("amber_clients = true").is_err());
        let p: EgressPolicy = toml::from_str("unmarked_as = \"green\"").unwrap();
        assert_eq!(p.unmarked_as, Tlp::Green);
    }
}
