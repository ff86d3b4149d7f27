//! Bad input through the real HTTP server (issue 8, "Bad input", Rust side): generated request
//! bodies with wrong types, mutated bytes and invalid UTF-8, nesting at the parser's limit, and
//! tampered session tokens. Whatever arrives, the answer is a documented status and code, never
//! a 500 or a dropped connection, nothing of a refused request is stored, and the accounting of
//! an accepted one is exact. (The parsers' own properties are in emulator/src: origin.rs,
//! sign.rs, auth.rs.)

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

const ORIGIN: &str = "https://bodies.test";

/// One emulator per test: an emulator in a static would never be dropped, so never stopped, and
/// would outlive the test process.
struct Env {
    emu: Emulator,
    owner: String,
    sk: String,
    pk: String,
}

/// A fresh emulator with an owner, a secret key and a public key for [`ORIGIN`].
fn env() -> Env {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let pk = emu.public_key(&owner, &[ORIGIN], false)["key"]
        .as_str()
        .unwrap()
        .to_string();
    Env { emu, owner, sk, pk }
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Events stored so far (dev stats).
fn stored(e: &Env) -> u64 {
    e.emu.stats(&e.owner)["events_stored"].as_u64().unwrap()
}

/// Any JSON value: scalars of every type (odd strings included), arrays and objects.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        "[\\u{0}-\\u{1f}\\u{7f}-\\u{9f}\\u{202e}\\u{feff}\\u{10ffff}]{0,8}".prop_map(Value::String),
        (0usize..300).prop_map(|n| Value::String("x".repeat(n))),
        Just(json!("2026-11-24T03:01:16.123Z")),
        Just(json!("track")),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "message_id",
    "type",
    "event_type",
    "user_id",
    "anonymous_id",
    "timestamp",
    "properties",
    "traits",
    "context",
];

/// A change to one event: a field set to any value, a field removed, or an unknown field.
#[derive(Debug, Clone)]
enum Change {
    Set(usize, Value),
    Remove(usize),
    Unknown(String, Value),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (0..FIELDS.len(), any_json()).prop_map(|(f, v)| Change::Set(f, v)),
        1 => (0..FIELDS.len()).prop_map(Change::Remove),
        1 => ("[a-z_]{1,8}", any_json()).prop_map(|(k, v)| Change::Unknown(k, v)),
    ]
}

#[test]
fn events_with_wrong_types_are_answered_one_by_one() {
    let e = &env();
    let batch = proptest::collection::vec(proptest::collection::vec(change(), 0..3), 1..6);
    TestRunner::new(config(160))
        .run(&batch, |changes| {
            let mut untouched = Vec::new();
            let events: Vec<Value> = changes
                .iter()
                .enumerate()
                .map(|(i, cs)| {
                    let mut ev = event(&mid());
                    let obj = ev.as_object_mut().unwrap();
                    for c in cs {
                        match c {
                            Change::Set(f, v) => {
                                obj.insert(FIELDS[*f].into(), v.clone());
                            }
                            Change::Remove(f) => {
                                obj.remove(FIELDS[*f]);
                            }
                            Change::Unknown(k, v) if !FIELDS.contains(&k.as_str()) => {
                                obj.insert(k.clone(), v.clone());
                            }
                            Change::Unknown(..) => {}
                        }
                    }
                    if cs.is_empty() {
                        untouched.push(i);
                    }
                    ev
                })
                .collect();
            let before = stored(e);
            let r = e.emu.track(&e.sk, &events);
            prop_assert_eq!(r.status, 200, "{}", r.text);
            let b = &r.body;
            let rejected = b["rejected"].as_array().unwrap();
            let (accepted, duplicates) = (
                b["accepted"].as_u64().unwrap(),
                b["duplicates"].as_u64().unwrap(),
            );
            prop_assert_eq!(
                accepted + duplicates + rejected.len() as u64,
                events.len() as u64,
                "{}",
                r.text
            );
            let mut indices = Vec::new();
            for rej in rejected {
                let code = rej["code"].as_str().unwrap_or("");
                prop_assert!(
                    ["invalid_event", "missing_identity", "event_too_large"].contains(&code),
                    "{}",
                    rej
                );
                prop_assert!(rej["message"].is_string());
                indices.push(rej["index"].as_u64().unwrap() as usize);
            }
            for i in &untouched {
                prop_assert!(
                    !indices.contains(i),
                    "an untouched event was refused: {}",
                    r.text
                );
            }
            prop_assert_eq!(stored(e) - before, accepted);
            Ok(())
        })
        .unwrap();
}

/// A mutation of a body's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at (position per mille) with this byte.
    Byte(u16, u8),
    Truncate(u16),
    Insert(u16, Vec<u8>),
    /// Repeat a span, as a confused proxy might.
    Repeat(u16, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0u16..1000, any::<u8>()).prop_map(|(p, b)| Mutation::Byte(p, b)),
        (0u16..1000).prop_map(Mutation::Truncate),
        (
            0u16..1000,
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..6),
                Just(b"\xc0\x80".to_vec()),         // overlong NUL
                Just(b"\xed\xa0\x80".to_vec()),     // a UTF-16 surrogate in UTF-8
                Just(b"\xf4\x90\x80\x80".to_vec()), // above U+10FFFF
                Just(b"\\ud800".to_vec()),          // a lone surrogate escape
                Just(b"{\"a\":".to_vec()),
            ]
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (0u16..1000, 1u8..40).prop_map(|(p, n)| Mutation::Repeat(p, n)),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    let at = |p: u16, len: usize| (p as usize * len) / 1000;
    match m {
        Mutation::Byte(p, b) => {
            let i = at(*p, body.len());
            body[i] = *b;
        }
        Mutation::Truncate(p) => body.truncate(at(*p, body.len())),
        Mutation::Insert(p, bytes) => {
            let i = at(*p, body.len());
            body.splice(i..i, bytes.iter().copied());
        }
        Mutation::Repeat(p, n) => {
            let i = at(*p, body.len());
            let end = (i + *n as usize).min(body.len());
            let span = body[i..end].to_vec();
            body.splice(i..i, span);
        }
    }
}

#[test]
fn mutated_bodies_get_a_documented_answer_and_store_nothing_when_refused() {
    let e = &env();
    let strategy = (proptest::collection::vec(mutation(), 1..4), 1usize..4);
    TestRunner::new(config(256))
        .run(&strategy, |(mutations, n)| {
            let events: Vec<Value> = (0..n).map(|_| event(&mid())).collect();
            let mut body = json!({"events": events, "sent_at": "2026-11-24T03:01:17.000Z"})
                .to_string()
                .into_bytes();
            for m in &mutations {
                if !body.is_empty() {
                    apply(&mut body, m);
                }
            }
            let before = stored(e);
            let r = e.emu.req(
                "POST",
                "/api/ingestion/track/",
                &[("Authorization", &e.sk)],
                Some(body.clone()),
            );
            let shown = String::from_utf8_lossy(&body).into_owned();
            match r.status {
                200 => {
                    let b = &r.body;
                    let total = b["accepted"].as_u64().unwrap()
                        + b["duplicates"].as_u64().unwrap()
                        + b["rejected"].as_array().unwrap().len() as u64;
                    let sent = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| {
                            v.get("events")
                                .and_then(Value::as_array)
                                .map(|a| a.len() as u64)
                                .or(Some(1))
                        })
                        .unwrap();
                    prop_assert_eq!(total, sent, "{} -> {}", shown, r.text);
                    prop_assert_eq!(stored(e) - before, b["accepted"].as_u64().unwrap());
                }
                400 => {
                    prop_assert!(
                        ["invalid_json", "invalid_request"].contains(&r.code()),
                        "{} -> {}",
                        shown,
                        r.text
                    );
                    prop_assert_eq!(stored(e), before, "a refused body stored events");
                }
                _ => prop_assert!(false, "{} -> {} {}", shown, r.status, r.text),
            }
            Ok(())
        })
        .unwrap();
    e.emu.get("/healthz", None).expect(200, "");
}

/// A batch of two events whose first event_type is `raw` (bytes spliced into the JSON text).
fn batch_with_raw_event_type(raw: &[u8]) -> Vec<u8> {
    let mut first = event(&mid());
    first["event_type"] = json!("@@RAW@@");
    let text = json!({"events": [first, event(&mid())]}).to_string();
    let (a, b) = text.split_once("@@RAW@@").unwrap();
    [a.as_bytes(), raw, b.as_bytes()].concat()
}

#[test]
fn invalid_utf8_or_a_lone_surrogate_refuses_the_whole_batch() {
    let e = &env();
    let refused: &[&[u8]] = &[
        b"\xff",
        b"ab\x80cd",         // a lone continuation byte
        b"\xc0\x80",         // overlong NUL
        b"\xe0\x80\xaf",     // overlong '/'
        b"\xed\xa0\x80",     // U+D800 encoded as UTF-8 (CESU-8)
        b"\xf4\x90\x80\x80", // above U+10FFFF
        b"\xe2\x82",         // truncated sequence
        b"\\ud800",          // a lone high surrogate escape (JSON.stringify writes these)
        b"\\udc00x",         // a lone low surrogate escape
        b"\\ud800\\u0041",   // a high surrogate followed by a non-surrogate
    ];
    for raw in refused {
        let before = stored(e);
        let r = e.emu.req(
            "POST",
            "/api/ingestion/track/",
            &[("Authorization", &e.sk)],
            Some(batch_with_raw_event_type(raw)),
        );
        r.expect(400, "invalid_json");
        assert_eq!(stored(e), before, "{raw:?}: nothing of the batch is stored");
    }
    // Well-formed text of every width, escaped pairs included, is stored and read back as sent.
    let fine: &[(&[u8], &str)] = &[
        ("é€😀".as_bytes(), "é€😀"),
        (b"\\ud83d\\ude00", "😀"),
        (b"\\u0000\\u001f", "\u{0}\u{1f}"),
        (
            "\u{10ffff}\u{feff}\u{202e}".as_bytes(),
            "\u{10ffff}\u{feff}\u{202e}",
        ),
    ];
    for (raw, text) in fine {
        let body = batch_with_raw_event_type(raw);
        let id = serde_json::from_slice::<Value>(&body).unwrap()["events"][0]["message_id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = e.emu.req(
            "POST",
            "/api/ingestion/track/",
            &[("Authorization", &e.sk)],
            Some(body),
        );
        assert_eq!(r.ok()["accepted"], 2, "{}", r.text);
        let events = e.emu.events(&e.owner);
        let got = events
            .iter()
            .find(|ev| ev["message_id"] == id.as_str())
            .unwrap();
        assert_eq!(got["event_type"], *text);
    }
}

/// An event whose properties nest `depth` arrays.
fn nested_event(depth: usize) -> (String, Vec<u8>) {
    let id = mid();
    let mut ev = event(&id);
    ev["properties"] = json!({"deep": "@@DEEP@@"});
    let text = json!({ "events": [ev] }).to_string();
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    (id, text.replace("\"@@DEEP@@\"", &deep).into_bytes())
}

#[test]
fn nesting_up_to_the_parser_limit_is_stored_and_read_back_deeper_is_invalid_json() {
    let e = &env();
    let mut deepest_ok = None;
    for depth in (100..=140).chain([1_000, 100_000]) {
        let (id, body) = nested_event(depth);
        let before = stored(e);
        let r = e.emu.req(
            "POST",
            "/api/ingestion/track/",
            &[("Authorization", &e.sk)],
            Some(body),
        );
        match r.status {
            200 => {
                assert!(
                    deepest_ok.as_ref().is_none_or(|(d, _)| *d == depth - 1),
                    "depth {depth} accepted after a shallower one was refused"
                );
                assert_eq!(r.body["accepted"], 1);
                deepest_ok = Some((depth, id));
            }
            _ => {
                r.expect(400, "invalid_json");
                assert_eq!(stored(e), before);
            }
        }
    }
    let (depth, id) = deepest_ok.expect("some depth over 100 is accepted");
    assert!(depth < 1_000);
    // The event reader returns it (its own answer nests deeper still) as it was sent.
    let events = e.emu.events(&e.owner);
    let got = events
        .iter()
        .find(|ev| ev["message_id"] == id.as_str())
        .unwrap();
    let mut v = &got["properties"]["deep"];
    let mut levels = 0;
    while let Some(inner) = v.as_array().and_then(|a| a.first()) {
        v = inner;
        levels += 1;
    }
    assert_eq!(levels + 1, depth, "the stored value keeps its depth");
}

#[test]
fn session_bodies_of_any_shape_are_answered_as_documented() {
    let e = &env();
    let key = prop_oneof![
        Just("user_id".to_string()),
        Just("anonymous_id".to_string()),
        Just("user_id_sig".to_string()),
        Just("user_id_ts".to_string()),
        "[a-z]{1,6}",
    ];
    let body = prop_oneof![
        4 => proptest::collection::btree_map(key, any_json(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        1 => any_json(),
    ];
    let allowed = ["user_id", "anonymous_id", "user_id_sig", "user_id_ts"];
    TestRunner::new(config(200))
        .run(&body, |body| {
            let r = e.emu.mint(&e.pk, Some(ORIGIN), &body);
            // The model: an object of known fields with exactly one id of 1 to 256
            // characters (null counts as absent) mints; anything else is 400.
            let id_ok = |v: Option<&Value>| match v {
                None | Some(Value::Null) => Some(false),
                Some(Value::String(s)) if (1..=256).contains(&s.chars().count()) => Some(true),
                Some(_) => None,
            };
            let mints = body.as_object().is_some_and(|o| {
                o.keys().all(|k| allowed.contains(&k.as_str()))
                    && matches!(
                        (id_ok(o.get("user_id")), id_ok(o.get("anonymous_id"))),
                        (Some(true), Some(false)) | (Some(false), Some(true))
                    )
            });
            if mints {
                prop_assert_eq!(r.status, 200, "{} -> {}", body, r.text);
                prop_assert!(r.body["token"].is_string());
            } else {
                prop_assert_eq!(
                    (r.status, r.code()),
                    (400, "invalid_request"),
                    "{} -> {}",
                    body,
                    r.text
                );
            }
            Ok(())
        })
        .unwrap();
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[test]
fn any_change_to_a_session_token_is_refused() {
    let e = &env();
    let token = e
        .emu
        .mint(&e.pk, Some(ORIGIN), &json!({"user_id": "alice"}))
        .ok()["token"]
        .as_str()
        .unwrap()
        .to_string();
    e.emu
        .track(&bearer(&token), &[event(&mid())])
        .expect(200, "");
    #[derive(Debug, Clone)]
    enum Edit {
        Replace(u16, u8),
        Swap(u16, u16),
        Drop(u16),
        Truncate(u16),
    }
    let edit = prop_oneof![
        (0u16..1000, 0u8..64).prop_map(|(p, c)| Edit::Replace(p, c)),
        (0u16..1000, 0u16..1000).prop_map(|(a, b)| Edit::Swap(a, b)),
        (0u16..1000).prop_map(Edit::Drop),
        (0u16..1000).prop_map(Edit::Truncate),
    ];
    TestRunner::new(config(200))
        .run(&edit, |edit| {
            let mut t = token.clone().into_bytes();
            let at = |p: u16| (p as usize * t.len()) / 1000;
            match edit {
                Edit::Replace(p, c) => {
                    let i = at(p);
                    t[i] = B64URL[c as usize];
                }
                Edit::Swap(a, b) => {
                    let (i, j) = (at(a), at(b));
                    t.swap(i, j);
                }
                Edit::Drop(p) => {
                    let i = at(p);
                    t.remove(i);
                }
                Edit::Truncate(p) => t.truncate(at(p)),
            }
            let t = String::from_utf8(t).unwrap();
            let r = e.emu.track(&bearer(&t), &[event(&mid())]);
            if t == token {
                prop_assert_eq!(r.status, 200);
            } else if t.is_empty() {
                prop_assert_eq!(
                    (r.status, r.code()),
                    (401, "missing_credentials"),
                    "{}",
                    r.text
                );
            } else {
                prop_assert_eq!(
                    (r.status, r.code()),
                    (401, "invalid_token"),
                    "{} -> {}",
                    t,
                    r.text
                );
            }
            Ok(())
        })
        .unwrap();
}
