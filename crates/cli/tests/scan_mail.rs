//! `kizuna scan mail --indicators` on an mbox of several batches: hits come out in mbox order,
//! in load order within a message, whether the messages are matched on every core (no loaded
//! pattern binds several observations) or one by one by the in-order stream (one does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::kizuna;
use serde_json::{Value, json};

const MESSAGES: usize = 150;

fn indicator(n: usize, pattern: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
        "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
        "pattern": pattern, "pattern_type": "stix", "valid_from": "2000-01-01T00:00:00Z",
    })
}

/// `MESSAGES` messages, one second apart, message `i` from `a{i}@example.org` with subject
/// `message {i}`.
fn write_mbox(path: &Path) {
    let mut text = String::new();
    for i in 1..=MESSAGES {
        text.push_str(&format!(
            "From a{i}@example.org Mon Apr 15 10:00:00 2024\n\
             From: a{i}@example.org\nTo: b@example.jp\nSubject: message {i}\n\
             Date: Mon, 15 Apr 2024 10:{:02}:{:02} +0000\nMessage-ID: <{i}@example.org>\n\n\
             body {i}\n\n",
            i / 60,
            i % 60
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// Per-message indicators: subject of every 7th message, sender of every 5th; the expected
/// `(message, indicator number)` hits, in mbox order then load order.
fn per_message() -> (Vec<Value>, Vec<(usize, usize)>) {
    let mut inds = Vec::new();
    for i in (7..=MESSAGES).step_by(7) {
        inds.push((i, format!("[email-message:subject = 'message {i}']")));
    }
    for i in (5..=MESSAGES).step_by(5) {
        inds.push((
            i,
            format!("[email-message:from_ref.value = 'a{i}@example.org']"),
        ));
    }
    let mut expected = Vec::new();
    for i in 1..=MESSAGES {
        for (n, (m, _)) in inds.iter().enumerate() {
            if *m == i {
                expected.push((i, n + 1));
            }
        }
    }
    let values = inds
        .iter()
        .enumerate()
        .map(|(n, (_, p))| indicator(n + 1, p))
        .collect();
    (values, expected)
}

fn scan(dir: &Path, inds: &[Value]) -> Vec<(usize, usize)> {
    let mbox = dir.join("mail.mbox");
    write_mbox(&mbox);
    let file = dir.join("indicators.json");
    std::fs::write(&file, Value::Array(inds.to_vec()).to_string()).unwrap();
    let (code, out, err) = kizuna(
        &dir.join("data"),
        &[
            "scan",
            "mail",
            mbox.to_str().unwrap(),
            "--indicators",
            file.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    out.lines()
        .map(|l| {
            let hit: Value = serde_json::from_str(l).unwrap();
            let source = hit["source"].as_str().unwrap();
            let message = source.rsplit_once('#').unwrap().1.parse().unwrap();
            let id = hit["indicator"].as_str().unwrap();
            let n = id.rsplit_once('-').unwrap().1.parse().unwrap();
            (message, n)
        })
        .collect()
}

#[test]
fn hits_follow_mbox_order_when_matched_on_every_core() {
    let dir = tempfile::tempdir().unwrap();
    let (inds, expected) = per_message();
    assert!(expected.len() > 40);
    assert_eq!(scan(dir.path(), &inds), expected);
}

#[test]
fn a_pattern_binding_several_messages_is_still_matched_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut inds, mut expected) = per_message();
    let n = inds.len() + 1;
    inds.push(indicator(
        n,
        "[email-message:subject = 'message 10'] FOLLOWEDBY [email-message:subject = 'message 120']",
    ));
    // Message 120's own hits first, then the stream's.
    let at = expected.iter().rposition(|(m, _)| *m == 120).unwrap();
    expected.insert(at + 1, (120, n));
    assert_eq!(scan(dir.path(), &inds), expected);
}
