//! Any bytes as one mail message: extraction never panics and stays within its limits, and
//! the extracted observation matches the same indicators through the index as exhaustively.
#![no_main]

use libfuzzer_sys::fuzz_target;

use std::sync::OnceLock;

use kizuna_detect::{IndicatorSet, MailOptions, Observation};

/// Indicators of every index family, so that fuzzed observations exercise the index too.
const INDICATORS: &str = r#"[
 {"type": "indicator", "id": "indicator--1", "pattern_type": "stix", "pattern": "[file:hashes.'SHA-256' = 'aa' OR file:hashes.MD5 = 'bb']"},
 {"type": "indicator", "id": "indicator--2", "pattern_type": "stix", "pattern": "[email-message:from_ref.value = 'a@example.com' AND email-message:subject LIKE '%invoice%']"},
 {"type": "indicator", "id": "indicator--3", "pattern_type": "stix", "pattern": "[ipv4-addr:value ISSUBSET '10.0.0.0/8'] OR [ipv6-addr:value ISSUBSET '2001:db8::/32']"},
 {"type": "indicator", "id": "indicator--4", "pattern_type": "stix", "pattern": "[url:value MATCHES '^https?://evil\\.example/'] OR [domain-name:value IN ('evil.example', 'x.test')]"},
 {"type": "indicator", "id": "indicator--5", "pattern_type": "stix", "pattern": "[network-traffic:dst_port = 443 AND network-traffic:dst_ref.value = '10.0.0.1']"},
 {"type": "indicator", "id": "indicator--6", "pattern_type": "stix", "pattern": "[file:name NOT LIKE '%.pdf'] AND [file:size > 100]"}
]"#;

fn fixture() -> &'static (IndicatorSet, MailOptions) {
    static SET: OnceLock<(IndicatorSet, MailOptions)> = OnceLock::new();
    SET.get_or_init(|| {
        let options = MailOptions::default();
        let (set, _) = IndicatorSet::from_json(INDICATORS, "identity--1", options.now)
            .expect("fixed indicators");
        (set, options)
    })
}

/// Matching never panics, and the index finds exactly what evaluating every pattern finds.
fn check(set: &IndicatorSet, obs: &Observation) {
    let fast = set
        .matches(obs)
        .map(|h| h.into_iter().map(|h| h.indicator).collect::<Vec<_>>());
    let slow = set
        .matches_exhaustive(obs)
        .map(|h| h.into_iter().map(|h| h.indicator).collect::<Vec<_>>());
    match (fast, slow) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "index and exhaustive evaluation differ"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("index {a:?} and exhaustive evaluation {b:?} differ"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (set, options) = fixture();
    if let Ok(obs) = kizuna_detect::scan_message(data, "fuzz.eml", options) {
        check(set, &obs);
    }
});
