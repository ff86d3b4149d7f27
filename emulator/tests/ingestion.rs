//! Ingestion: dedup, per-event rules, limits, gzip, batch context.

mod common;

use common::*;
use serde_json::{json, Value};

fn setup() -> (Emulator, String, String) {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    (emu, owner, sk)
}

#[test]
fn dedup_within_and_across_requests() {
    let (emu, owner, sk) = setup();
    let m = mid();
    let r = emu.track(&sk, &[event(&m), event(&m), event(&mid())]);
    let b = r.ok();
    assert_eq!(
        (b["accepted"].clone(), b["duplicates"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(b["rejected"], json!([]));
    let r = emu.track(&sk, &[event(&m)]);
    assert_eq!(
        (r.body["accepted"].clone(), r.body["duplicates"].clone()),
        (json!(0), json!(1))
    );
    // Also across credentials of the same tenant.
    let pk = emu.public_key(&owner, &["https://a.com"], false);
    let s = emu.session(
        pk["key"].as_str().unwrap(),
        "https://a.com",
        &json!({"user_id": "u"}),
    );
    let r = emu.track(&s, &[event(&m)]);
    assert_eq!(r.ok()["duplicates"], 1);
    let events = emu.events(&owner);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["message_id"] == m.as_str())
            .count(),
        1
    );
    assert_eq!(events.len(), 2);
}

#[test]
fn each_invalid_event_is_rejected_alone() {
    let (emu, owner, sk) = setup();
    let with = |f: &str, v: Value| {
        let mut e = event(&mid());
        e[f] = v;
        e
    };
    let without = |f: &str| {
        let mut e = event(&mid());
        e.as_object_mut().unwrap().remove(f);
        e
    };
    let no_identity = {
        let mut e = event(&mid());
        e["user_id"] = Value::Null;
        e["anonymous_id"] = Value::Null;
        e
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (without("message_id"), "invalid_event", "message_id"),
        (with("message_id", json!("")), "invalid_event", "message_id"),
        (
            with("message_id", json!("m".repeat(129))),
            "invalid_event",
            "message_id",
        ),
        (with("message_id", json!(7)), "invalid_event", "message_id"),
        (without("type"), "invalid_event", "type"),
        (with("type", json!("alias")), "invalid_event", "type"),
        (without("event_type"), "invalid_event", "event_type"),
        (with("event_type", json!("")), "invalid_event", "event_type"),
        (
            with("event_type", json!("e".repeat(201))),
            "invalid_event",
            "event_type",
        ),
        (with("user_id", json!("")), "invalid_event", "user_id"),
        (
            with("user_id", json!("u".repeat(257))),
            "invalid_event",
            "user_id",
        ),
        (with("user_id", json!(42)), "invalid_event", "user_id"),
        (
            with("anonymous_id", json!("")),
            "invalid_event",
            "anonymous_id",
        ),
        (
            with("anonymous_id", json!(["a"])),
            "invalid_event",
            "anonymous_id",
        ),
        (without("timestamp"), "invalid_event", "timestamp"),
        (
            with("timestamp", json!("yesterday")),
            "invalid_event",
            "timestamp",
        ),
        (
            with("timestamp", json!("2026-02-30T00:00:00Z")),
            "invalid_event",
            "timestamp",
        ),
        (
            with("timestamp", json!(1_700_000_000)),
            "invalid_event",
            "timestamp",
        ),
        (
            with("properties", json!([1])),
            "invalid_event",
            "properties",
        ),
        (with("traits", json!("t")), "invalid_event", "traits"),
        (with("context", json!(5)), "invalid_event", "context"),
        (with("unexpected", json!(1)), "invalid_event", "unexpected"),
        (no_identity, "missing_identity", ""),
    ];
    let valid = vec![
        event(&mid()),
        with("message_id", json!("m".repeat(128))),
        with("event_type", json!("e".repeat(200))),
        with("user_id", json!("ü".repeat(256))),
        {
            let mut e = with("user_id", Value::Null);
            e["anonymous_id"] = json!("anon");
            e
        },
        {
            let mut e = without("user_id");
            e["anonymous_id"] = json!("anon");
            e
        },
        with("type", json!("identify")),
        with("type", json!("page")),
        with("timestamp", json!("2026-11-24T04:01:16+01:00")),
        with("properties", Value::Null),
        with("traits", json!({"plan": "pro"})),
        without("context"),
    ];
    // Interleave: bad ones at odd indexes.
    let mut batch = Vec::new();
    let mut expect = Vec::new();
    let mut valid_iter = valid.iter();
    for (bad, code, field) in &cases {
        if let Some(v) = valid_iter.next() {
            batch.push(v.clone());
        }
        expect.push((batch.len(), *code, *field));
        batch.push(bad.clone());
    }
    batch.extend(valid_iter.cloned());
    let r = emu.track(&sk, &batch);
    let b = r.ok();
    assert_eq!(b["accepted"], valid.len(), "{}", r.text);
    let rejected = b["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), cases.len(), "{}", r.text);
    for (got, (index, code, field)) in rejected.iter().zip(&expect) {
        assert_eq!(got["index"], *index, "{got}");
        assert_eq!(got["code"], *code, "{got}");
        let msg = got["message"].as_str().unwrap();
        assert!(msg.starts_with(field), "message names {field}: {msg}");
    }
    assert_eq!(emu.events(&owner).len(), valid.len());
    let stats = emu.stats(&owner);
    assert_eq!(stats["rejected"], cases.len());
    assert_eq!(stats["events_stored"], valid.len());
}

/// An event whose compact JSON is exactly `size` bytes.
fn event_of_size(size: usize) -> Value {
    let mut e = event(&mid());
    e["properties"] = json!({"pad": ""});
    let base = serde_json::to_vec(&e).unwrap().len();
    e["properties"]["pad"] = json!("p".repeat(size - base));
    assert_eq!(serde_json::to_vec(&e).unwrap().len(), size);
    e
}

#[test]
fn per_event_size_limit() {
    let (emu, _owner, sk) = setup();
    let r = emu.track(
        &sk,
        &[event_of_size(32_768), event_of_size(32_769), event(&mid())],
    );
    let b = r.ok();
    assert_eq!(b["accepted"], 2, "{}", r.text);
    assert_eq!(b["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(b["rejected"][0]["index"], 1);
    assert_eq!(b["rejected"][0]["code"], "event_too_large");
}

/// A `{"events": [...]}` body of exactly `size` bytes, of events under 32 KiB each.
fn body_of_size(size: usize) -> (Vec<u8>, usize) {
    let overhead = r#"{"events":[]}"#.len();
    let k = (size - overhead).div_ceil(32_000);
    let total = size - overhead - (k - 1);
    let events: Vec<Value> = (0..k)
        .map(|i| event_of_size(total / k + usize::from(i < total % k)))
        .collect();
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    assert_eq!(body.len(), size);
    (body, k)
}

#[test]
fn request_size_limit_raw_and_gzip() {
    let (emu, owner, sk) = setup();
    let origin = "https://app.example";
    let headers = |extra: Option<(&'static str, &'static str)>| {
        let mut h = vec![("Authorization", sk.as_str()), ("Origin", origin)];
        h.extend(extra);
        h
    };
    let (exact, n) = body_of_size(512 * 1024);
    let r = emu.req("POST", "/api/ingestion/track/", &headers(None), Some(exact));
    assert_eq!(r.ok()["accepted"], n);

    let (over, _) = body_of_size(512 * 1024 + 1);
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &headers(None),
        Some(over.clone()),
    );
    r.expect(413, "payload_too_large");
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(origin)
    );
    // Gzip: small on the wire, too large inflated.
    let gz = gzip(&over);
    assert!(gz.len() < 64 * 1024);
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &headers(Some(("Content-Encoding", "gzip"))),
        Some(gz),
    );
    r.expect(413, "payload_too_large");
    // A huge body of whitespace, gzipped.
    let mut ws = b"{\"events\": [".to_vec();
    ws.extend(std::iter::repeat_n(b' ', 4 * 1024 * 1024));
    ws.extend(b"]}");
    emu.req(
        "POST",
        "/api/ingestion/track/",
        &headers(Some(("Content-Encoding", "gzip"))),
        Some(gzip(&ws)),
    )
    .expect(413, "payload_too_large");
    // A much bigger raw body still gets a readable 413.
    emu.req(
        "POST",
        "/api/ingestion/track/",
        &headers(None),
        Some(vec![b' '; 3 * 1024 * 1024]),
    )
    .expect(413, "payload_too_large");
    // Nothing of the refused bodies was stored.
    assert_eq!(emu.events(&owner).len(), n);
}

#[test]
fn gzip_bodies() {
    let (emu, owner, sk) = setup();
    let m = mid();
    let body = json!({"events": [event(&m)]}).to_string();
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &[("Authorization", &sk), ("Content-Encoding", "gzip")],
        Some(gzip(body.as_bytes())),
    );
    assert_eq!(r.ok()["accepted"], 1);
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &[("Authorization", &sk), ("Content-Encoding", "GZIP")],
        Some(gzip(body.as_bytes())),
    );
    assert_eq!(r.ok()["duplicates"], 1);
    // Not gzip at all, or cut short.
    emu.req(
        "POST",
        "/api/ingestion/track/",
        &[("Authorization", &sk), ("Content-Encoding", "gzip")],
        Some(body.clone().into_bytes()),
    )
    .expect(400, "invalid_json");
    let gz = gzip(body.as_bytes());
    emu.req(
        "POST",
        "/api/ingestion/track/",
        &[("Authorization", &sk), ("Content-Encoding", "gzip")],
        Some(gz[..gz.len() / 2].to_vec()),
    )
    .expect(400, "invalid_json");
    // Gzip works on other endpoints too.
    let r = emu.req(
        "POST",
        "/api/auth/login/",
        &[("Content-Encoding", "gzip")],
        Some(gzip(
            json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
                .to_string()
                .as_bytes(),
        )),
    );
    r.expect(200, "");
    assert_eq!(emu.events(&owner).len(), 1);
}

#[test]
fn batch_context_is_merged_one_level_deep() {
    let (emu, owner, sk) = setup();
    let batch_ctx = json!({"library": {"name": "@segops/sdk", "version": "0.1.0"},
                           "locale": "en-GB", "page": {"path": "/batch", "title": "B"}});
    let mut e1 = event("ctx-1");
    e1["context"] = json!({"page": {"path": "/cart"}});
    let mut e2 = event("ctx-2");
    e2.as_object_mut().unwrap().remove("context");
    let mut e3 = event("ctx-3");
    e3["context"] = json!({"locale": "fr-FR"});
    let mut e4 = event("ctx-4");
    e4["context"] = Value::Null;
    let r = emu.post(
        "/api/ingestion/track/",
        Some(&sk),
        &json!({"events": [e1, e2, e3, e4], "context": batch_ctx,
                "sent_at": "2026-11-24T03:01:17.000Z"}),
    );
    assert_eq!(r.ok()["accepted"], 4);
    let events = emu.events(&owner);
    let ctx = |m: &str| events.iter().find(|e| e["message_id"] == m).unwrap()["context"].clone();
    assert_eq!(
        ctx("ctx-1"),
        json!({"page": {"path": "/cart"}, "library": {"name": "@segops/sdk", "version": "0.1.0"},
               "locale": "en-GB"})
    );
    assert_eq!(ctx("ctx-2"), batch_ctx);
    assert_eq!(
        ctx("ctx-3"),
        json!({"locale": "fr-FR", "library": {"name": "@segops/sdk", "version": "0.1.0"},
               "page": {"path": "/batch", "title": "B"}})
    );
    assert_eq!(ctx("ctx-4"), batch_ctx);
    // Without a batch context, the event's own context is kept as sent.
    emu.track(&sk, &[event("ctx-5")]).expect(200, "");
    let events = emu.events(&owner);
    let e5 = events.iter().find(|e| e["message_id"] == "ctx-5").unwrap();
    assert_eq!(e5["context"], json!({"page": {"path": "/cart"}}));
}

#[test]
fn body_shapes() {
    let (emu, owner, sk) = setup();
    // A single event object is a batch of one.
    let r = emu.post("/api/ingestion/track/", Some(&sk), &event("single"));
    assert_eq!(r.ok()["accepted"], 1);
    // An empty batch.
    let r = emu.post("/api/ingestion/track/", Some(&sk), &json!({"events": []}));
    assert_eq!(r.ok()["accepted"], 0);
    // Requests refused whole: nothing stored.
    let good = event(&mid());
    let refused: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "invalid_json"),
        (b"".to_vec(), "invalid_json"),
        (vec![b'{', 0xff, b'}'], "invalid_json"),
        (b"{\"events\": [".to_vec(), "invalid_json"),
        (b"[]".to_vec(), "invalid_request"),
        (
            json!({"events": {}}).to_string().into_bytes(),
            "invalid_request",
        ),
        (
            json!({"events": [good.clone(), 1]})
                .to_string()
                .into_bytes(),
            "invalid_request",
        ),
        (
            json!({"events": [good.clone(), null]})
                .to_string()
                .into_bytes(),
            "invalid_request",
        ),
        (
            json!({"events": [good.clone()], "extra": 1})
                .to_string()
                .into_bytes(),
            "invalid_request",
        ),
        (
            json!({"events": [good.clone()], "context": "x"})
                .to_string()
                .into_bytes(),
            "invalid_request",
        ),
        (
            json!({"events": [good.clone()], "sent_at": 5})
                .to_string()
                .into_bytes(),
            "invalid_request",
        ),
        (
            json!({"batch": [good.clone()]}).to_string().into_bytes(),
            "invalid_request",
        ),
    ];
    for (body, code) in refused {
        emu.req(
            "POST",
            "/api/ingestion/track/",
            &[("Authorization", &sk)],
            Some(body),
        )
        .expect(400, code);
    }
    // Content-Type is optional, and other types are not checked.
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &[("Authorization", &sk), ("Content-Type", "text/plain")],
        Some(json!({"events": [event(&mid())]}).to_string().into_bytes()),
    );
    assert_eq!(r.ok()["accepted"], 1);
    assert_eq!(emu.events(&owner).len(), 2);
}
