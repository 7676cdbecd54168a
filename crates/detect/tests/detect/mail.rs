//! The mail corpus (`testdata/mail/`) against observables written by hand
//! (`testdata/mail/expected/*.json`, format in its README), compared field by field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use std::path::{Path, PathBuf};

use kizuna_detect::{MailOptions, MailSource, Observation, scan_message};
use kizuna_stix::Timestamp;
use serde_json::{Value, json};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mail")
}

fn options() -> MailOptions {
    MailOptions {
        now: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
        ..MailOptions::default()
    }
}

fn scan(input: &str) -> Vec<Observation> {
    MailSource::new([corpus().join(input)], options())
        .map(|r| r.unwrap_or_else(|e| panic!("{input}: {e}")))
        .collect()
}

fn objects(obs: &Observation) -> &Vec<Value> {
    obs.bundle["objects"].as_array().unwrap()
}

fn by_id<'a>(obs: &'a Observation, id: &str) -> &'a Value {
    objects(obs)
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("{}: dangling reference {id}", obs.source))
}

/// The object with the expected object's type and key (`value`, `name` or `subject`).
fn find<'a>(obs: &'a Observation, want: &Value) -> Option<&'a Value> {
    let key = ["value", "name", "subject"]
        .into_iter()
        .find(|k| want.get(*k).is_some())
        .unwrap();
    objects(obs)
        .iter()
        .find(|o| o["type"] == want["type"] && o[key] == want[key])
}

fn addr_value(obs: &Observation, id: &Value) -> Value {
    by_id(obs, id.as_str().unwrap())["value"].clone()
}

fn check_message(obs: &Observation, want: &Value) {
    let ctx = format!("{} message {:?}", obs.source, want["subject"]);
    let msg = find(
        obs,
        &json!({"type": "email-message", "subject": want["subject"]}),
    )
    .unwrap_or_else(|| panic!("{ctx}: not found"));
    for (key, expected) in want.as_object().unwrap() {
        match key.as_str() {
            "from" | "sender" => {
                let r = &msg[format!("{key}_ref")];
                assert_eq!(&addr_value(obs, r), expected, "{ctx}: {key}");
            }
            "to" | "cc" | "bcc" => {
                let refs = msg[format!("{key}_refs")]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let got: Vec<Value> = refs.iter().map(|r| addr_value(obs, r)).collect();
                assert_eq!(&Value::Array(got), expected, "{ctx}: {key}");
            }
            "received_count" => assert_eq!(
                msg["received_lines"].as_array().map(Vec::len),
                expected.as_u64().map(|n| n as usize),
                "{ctx}: received_lines"
            ),
            "received_first_prefix" => {
                let first = msg["received_lines"][0].as_str().unwrap_or("");
                assert!(
                    first.starts_with(expected.as_str().unwrap()),
                    "{ctx}: {first:?}"
                );
            }
            "headers" => {
                for (h, v) in expected.as_object().unwrap() {
                    assert_eq!(&msg["additional_header_fields"][h], v, "{ctx}: header {h}");
                }
            }
            "body_contains" => {
                let body = msg["body"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{ctx}: no body"));
                assert!(
                    body.contains(expected.as_str().unwrap()),
                    "{ctx}: body {body:?}"
                );
            }
            "parts" => check_parts(obs, msg, expected, &ctx),
            _ => assert_eq!(&msg[key], expected, "{ctx}: {key}"),
        }
    }
}

fn check_parts(obs: &Observation, msg: &Value, want: &Value, ctx: &str) {
    let parts = msg["body_multipart"]
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: no parts"));
    let want = want.as_array().unwrap();
    assert_eq!(
        parts.len(),
        want.len(),
        "{ctx}: number of parts: {parts:#?}"
    );
    for (i, (part, w)) in parts.iter().zip(want).enumerate() {
        for (key, expected) in w.as_object().unwrap() {
            let e = expected.as_str().unwrap();
            match key.as_str() {
                "content_type_prefix" => {
                    let ct = part["content_type"].as_str().unwrap_or("");
                    assert!(ct.starts_with(e), "{ctx} part {i}: content_type {ct:?}");
                }
                "body_contains" => {
                    let b = part["body"].as_str().unwrap_or("");
                    assert!(b.contains(e), "{ctx} part {i}: body {b:?}");
                }
                "file" | "raw_mime_type" => {
                    let r = part["body_raw_ref"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{ctx} part {i}: no body_raw_ref"));
                    let file = by_id(obs, r);
                    assert_eq!(file["type"], "file", "{ctx} part {i}");
                    let prop = if key == "file" { "name" } else { "mime_type" };
                    assert_eq!(file[prop], e, "{ctx} part {i}: {prop}");
                }
                _ => assert_eq!(&part[key], expected, "{ctx} part {i}: {key}"),
            }
        }
    }
}

fn check_object(obs: &Observation, want: &Value) {
    let ctx = format!("{} {}", obs.source, want);
    let got = find(obs, want).unwrap_or_else(|| panic!("{ctx}: not found"));
    for (key, expected) in want.as_object().unwrap() {
        match key.as_str() {
            "contains" => {
                let refs = got["extensions"]["archive-ext"]["contains_refs"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{ctx}: no archive-ext"));
                let names: Vec<Value> = refs
                    .iter()
                    .map(|r| by_id(obs, r.as_str().unwrap())["name"].clone())
                    .collect();
                assert_eq!(&Value::Array(names), expected, "{ctx}: members");
            }
            "note_contains" => {
                let note = got["x_kizuna_note"].as_str().unwrap_or("");
                assert!(
                    note.contains(expected.as_str().unwrap()),
                    "{ctx}: note {note:?}"
                );
            }
            "no_hashes" => assert!(got.get("hashes").is_none(), "{ctx}: has hashes"),
            "hashes" => {
                for (alg, h) in expected.as_object().unwrap() {
                    assert_eq!(&got["hashes"][alg], h, "{ctx}: {alg}");
                }
            }
            _ => assert_eq!(&got[key], expected, "{ctx}: {key}"),
        }
    }
}

fn check_observation(obs: &Observation, want: &Value) {
    let suffix = want["source_suffix"].as_str().unwrap();
    assert!(
        obs.source.ends_with(suffix),
        "{} should end with {suffix}",
        obs.source
    );
    let od = obs.observed_data().expect("observed-data");
    assert_eq!(od["number_observed"], 1);
    let refs = od["object_refs"].as_array().unwrap();
    assert_eq!(
        refs.len() + 1,
        objects(obs).len(),
        "{}: object_refs",
        obs.source
    );
    for r in refs {
        by_id(obs, r.as_str().unwrap());
    }
    if let Some(t) = want.get("first_observed") {
        assert_eq!(&od["first_observed"], t, "{}: first_observed", obs.source);
    }
    for m in want["messages"].as_array().into_iter().flatten() {
        check_message(obs, m);
    }
    for o in want["objects"].as_array().into_iter().flatten() {
        check_object(obs, o);
    }
    for a in want["absent"].as_array().into_iter().flatten() {
        assert!(
            find(obs, a).is_none(),
            "{}: {a} should be absent",
            obs.source
        );
    }
    for (kind, n) in want["counts"].as_object().into_iter().flatten() {
        let got = objects(obs).iter().filter(|o| o["type"] == *kind).count();
        assert_eq!(
            Some(got as u64),
            n.as_u64(),
            "{}: number of {kind}",
            obs.source
        );
    }
    match want.get("notes").and_then(Value::as_array) {
        Some(notes) if notes.is_empty() => {
            assert!(
                obs.notes.is_empty(),
                "{}: unexpected notes {:?}",
                obs.source,
                obs.notes
            )
        }
        Some(notes) => {
            for n in notes {
                let n = n.as_str().unwrap();
                assert!(
                    obs.notes.iter().any(|have| have.contains(n)),
                    "{}: no note containing {n:?} in {:?}",
                    obs.source,
                    obs.notes
                );
            }
        }
        None => {}
    }
}

fn check(expected_file: &str) {
    let path = corpus().join("expected").join(expected_file);
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let got = scan(want["input"].as_str().unwrap());
    let want_obs = want["observations"].as_array().unwrap();
    assert_eq!(
        got.len(),
        want_obs.len(),
        "{expected_file}: number of observations"
    );
    for (g, w) in got.iter().zip(want_obs) {
        check_observation(g, w);
    }
}

#[test]
fn plain_utf8_headers_addresses_received_urls() {
    check("plain-utf8.json");
}

#[test]
fn iso_2022_jp_and_rfc_2231_filenames() {
    check("iso2022jp.json");
}

#[test]
fn shift_jis_quoted_printable_and_html() {
    check("shift-jis.json");
}

#[test]
fn raw_8bit_headers() {
    check("raw-8bit-headers.json");
}

#[test]
fn text_attachments_hash_the_bytes_sent_and_raw_address_headers() {
    check("text-attachments.json");
}

#[test]
fn zip_members_are_archive_ext_contains_refs() {
    check("zip-members.json");
}

#[test]
fn encrypted_zip_members_are_named_but_unknown() {
    check("zip-encrypted.json");
}

#[test]
fn zip_bomb_hits_limits_not_memory() {
    check("zip-bomb.json");
}

#[test]
fn truncated_attachment_and_missing_boundary() {
    check("truncated.json");
}

#[test]
fn forwarded_rfc822_message() {
    check("forwarded.json");
}

#[test]
fn deep_nesting_stops_at_the_limit() {
    check("deep-nesting.json");
}

#[test]
fn quoted_printable_html_and_defanged_urls() {
    check("qp-html.json");
}

#[test]
fn mbox_messages_are_numbered() {
    check("mailbox.json");
}

#[test]
fn maildir_new_then_cur_and_tmp_skipped() {
    check("maildir.json");
}

#[test]
fn same_input_same_ids() {
    let a = scan("forwarded.eml");
    let b = scan("forwarded.eml");
    assert_eq!(a[0].bundle, b[0].bundle);
}

#[test]
fn garbage_is_reported_not_a_crash() {
    let opts = options();
    for raw in [
        &b""[..],
        b"\xff\xfe\x00garbage",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n",
        b"From: a\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
    ] {
        // Either an observation or an error naming the message; never a panic.
        match scan_message(raw, "x.eml", &opts) {
            Ok(obs) => assert_eq!(obs.source, "x.eml"),
            Err(e) => assert!(e.to_string().contains("x.eml")),
        }
    }
}

#[test]
fn json_line_is_to_json() {
    for obs in scan("truncated.eml") {
        let mut line = Vec::new();
        obs.write_json_line(&mut line).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let parsed: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, obs.to_json());
        assert!(parsed["notes"].is_array());
    }
}

#[test]
fn a_message_stuffed_with_links_stops_at_the_url_limit() {
    let mut raw = b"From: a@example.org\r\nSubject: links\r\n\r\n".to_vec();
    for i in 0..50 {
        raw.extend_from_slice(format!("http://l{i}.example.com/\r\n").as_bytes());
    }
    let mut opts = options();
    opts.limits.max_urls = 10;
    let obs = scan_message(&raw, "links.eml", &opts).unwrap();
    let urls = objects(&obs).iter().filter(|o| o["type"] == "url").count();
    assert_eq!(urls, 10);
    assert_eq!(obs.notes.len(), 1, "{:?}", obs.notes);
    assert!(obs.notes[0].contains("more than 10 distinct URLs"));
}

#[test]
fn mbox_batches_on_several_threads_keep_order_and_content() {
    // More messages than one batch, of every kind in the corpus, so that batches are split
    // between threads unevenly.
    let mut mbox = Vec::new();
    let kinds = [
        "plain-utf8.eml",
        "forwarded.eml",
        "zip-members.eml",
        "iso2022jp.eml",
        "truncated.eml",
        "qp-html.eml",
    ];
    for i in 0..150 {
        let raw = std::fs::read(corpus().join(kinds[i % kinds.len()])).unwrap();
        mbox.extend_from_slice(b"From sender@example.org Mon Mar  2 10:00:00 2026\n");
        mbox.extend_from_slice(&raw);
        if !raw.ends_with(b"\n") {
            mbox.push(b'\n');
        }
        mbox.push(b'\n');
    }
    let path = std::env::temp_dir().join(format!("kizuna-batches-{}.mbox", std::process::id()));
    std::fs::write(&path, &mbox).unwrap();
    let run = |jobs: usize| -> Vec<(String, Value, Vec<String>)> {
        MailSource::new([path.clone()], options())
            .jobs(jobs)
            .map(|r| {
                let o = r.unwrap();
                (o.source, o.bundle, o.notes)
            })
            .collect()
    };
    let one = run(1);
    let three = run(3);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(one.len(), 150);
    assert!(one[149].0.ends_with("#150"), "{}", one[149].0);
    assert!(one == three, "the threads changed the output");
}
