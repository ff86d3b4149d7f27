//! The client driven as the platform layer drives it: records in, outputs out, a fake clock.

use super::*;
use crate::core::json::{parse, Value};

const T0: f64 = 1_764_000_000_000.0;

/// `{"a": json}`: how the loader records a value JSON can carry.
fn ser(json: &str) -> String {
    format!(r#"{{"a":{json}}}"#)
}

fn open_with(config: &str, env: &str) -> Result<Client, Error> {
    Client::open(&format!(r#"{{"v":{},"env":{env}}}"#, ser(config)))
}

fn server() -> Client {
    open_with(
        r#"{"apiUrl":"http://api.test","apiKey":"sk_test"}"#,
        r#"{"browser":false,"seed":"0123456789abcdef"}"#,
    )
    .unwrap()
}

fn browser(extra: &str) -> Client {
    open_with(
        &format!(r#"{{"apiUrl":"http://api.test","apiKey":"pk_test"{extra}}}"#),
        r#"{"browser":true,"consent":"granted","anon":"anon-1","seed":"42"}"#,
    )
    .unwrap()
}

fn call(m: &str, id: &str, arg: Option<&str>, extra: &str) -> String {
    let v = arg.map_or("{}".to_string(), ser);
    format!(r#"{{"m":"{m}","i":"{id}","t":{T0},"v":{v}{extra}}}"#)
}

const PAGE: &str = r#","p":{"url":"https://shop.example/p?utm_source=chatgpt.com","path":"/p","search":"?utm_source=chatgpt.com","title":"P","referrer":"https://chatgpt.com/"}"#;

/// The events of every request the client asks for now, as parsed JSON.
fn sent(c: &mut Client, now: f64) -> Vec<Value> {
    let out = c.poll(now);
    let mut events = Vec::new();
    for r in &out.requests {
        if r.url.ends_with("/track/") {
            let body = parse(&c.pipeline().body_of(r.id).unwrap()).unwrap();
            events.extend(
                body.get("events")
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned(),
            );
        }
    }
    events
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

#[test]
fn config_errors_name_the_field() {
    let env = r#"{"browser":false}"#;
    let e = open_with(r#"{"apiKey":"sk_x"}"#, env).err().unwrap();
    assert_eq!((e.code(), e.field()), ("invalid_config", Some("apiUrl")));
    let e = open_with(r#"{"apiUrl":"http://a.test","apiKey":"mk_x"}"#, env)
        .err()
        .unwrap();
    assert_eq!(e.code(), "mcp_key_not_allowed");
    let e = open_with(
        r#"{"apiUrl":"http://a.test","apiKey":"sk_x","flushAt":"20"}"#,
        env,
    )
    .err()
    .unwrap();
    assert_eq!(e.field(), Some("flushAt"));
    assert!(
        e.message().contains("expected a number, got a string"),
        "{e}"
    );
    let e = open_with(
        r#"{"apiUrl":"http://a.test","apiKey":"sk_x","flushAt":2.5}"#,
        env,
    )
    .err()
    .unwrap();
    assert!(e.message().contains("a fractional number"), "{e}");
    let e = open_with(
        r#"{"apiUrl":"http://a.test","apiKey":"sk_x","nope":1}"#,
        env,
    )
    .err()
    .unwrap();
    assert_eq!(e.field(), Some("nope"));
    // getUser must be a function: the loader records one as the code "function".
    let text = r#"{"v":{"a":{"apiUrl":"http://a.test","apiKey":"sk_x","getUser":"me"}},"env":{}}"#;
    let e = Client::open(text).err().unwrap();
    assert_eq!(e.field(), Some("getUser"));
    assert!(e.message().contains("got a string"), "{e}");
    let text = r#"{"v":{"a":{"apiUrl":"http://a.test","apiKey":"sk_x"},"x":{"getUser":"function","beforeSend":"function"}},"env":{}}"#;
    assert!(Client::open(text).unwrap().has_hook);
    let e = Client::open(r#"{"v":{"x":{"":"keys"}},"env":{}}"#)
        .err()
        .unwrap();
    assert_eq!(e.field(), Some("(config)"));
    let e = Client::open(r#"{"v":{"a":[1]},"env":{}}"#).err().unwrap();
    assert!(e.message().contains("got an array"), "{e}");
    let e = open_with(
        r#"{"apiUrl":"http://a.test","apiKey":"sk_x","aiProviders":[{"name":"X","hosts":[1]}]}"#,
        env,
    )
    .err()
    .unwrap();
    assert_eq!(e.field(), Some("aiProviders[0].hosts"));
}

#[test]
fn a_track_call_is_queued_with_its_call_time_id_and_identity() {
    let mut c = server();
    let r = c
        .record(
            &call(
                "track",
                "id-1",
                Some(r#"{"eventType":"paid","userId":"alice","properties":{"n":1}}"#),
                "",
            ),
            T0 + 5_000.0,
            HOOK,
        )
        .unwrap();
    assert_eq!(r, Recorded::Done);
    c.flush().unwrap();
    let events = sent(&mut c, T0 + 5_000.0);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(s(e, "message_id"), Some("id-1"));
    assert_eq!(s(e, "event_type"), Some("paid"));
    assert_eq!(s(e, "user_id"), Some("alice"));
    // The call's time, not the time it reached the core.
    assert_eq!(s(e, "timestamp"), Some("2025-11-24T16:00:00.000Z"));
    assert_eq!(
        e.get("properties").unwrap().get("n").unwrap().as_u64(),
        Some(1)
    );
}

#[test]
fn bad_calls_name_the_field_and_queue_nothing() {
    let mut c = server();
    for (arg, field) in [
        (r#"{"eventType":""}"#, "track.eventType"),
        (r#"{"eventType":7}"#, "track.eventType"),
        (r#"{"eventType":"x","properties":[1]}"#, "track.properties"),
        (
            r#"{"eventType":"x","timestamp":"yesterday"}"#,
            "track.timestamp",
        ),
        (r#"{"eventType":"x","extra":1}"#, "track.extra"),
        ("\"x\"", "track"),
    ] {
        let e = c
            .record(&call("track", "i", Some(arg), ""), T0, HOOK)
            .unwrap_err();
        assert_eq!(e.field(), Some(field), "{arg}: {e}");
    }
    let e = c
        .record(&call("track", "i", None, ""), T0, HOOK)
        .unwrap_err();
    assert_eq!(e.field(), Some("track"));
    // A field JSON could not carry, as the loader records it.
    let text = format!(
        r#"{{"m":"track","i":"i","t":{T0},"v":{{"a":{{"eventType":"x"}},"x":{{"properties":"cycle"}}}}}}"#
    );
    let e = c.record(&text, T0, HOOK).unwrap_err();
    assert_eq!(e.field(), Some("track.properties"));
    assert!(e.message().contains("cycle"), "{e}");
    assert_eq!(c.pipeline().stats().recorded, 0);
}

#[test]
fn get_user_at_call_time_and_identify_decide_the_identity() {
    let mut c = server();
    let u = r#","u":{"a":{"userId":"bob"}}"#;
    c.record(
        &call("track", "a", Some(r#"{"eventType":"x"}"#), u),
        T0,
        HOOK,
    )
    .unwrap();
    c.record(
        &call("identify", "b", Some(r#"{"userId":"carol"}"#), ""),
        T0,
        HOOK,
    )
    .unwrap();
    // getUser() returning null: identify()'s user.
    c.record(
        &call(
            "track",
            "c",
            Some(r#"{"eventType":"y"}"#),
            r#","u":{"a":null}"#,
        ),
        T0,
        HOOK,
    )
    .unwrap();
    let e = c
        .record(
            &call(
                "track",
                "d",
                Some(r#"{"eventType":"y"}"#),
                r#","u":{"e":"boom"}"#,
            ),
            T0,
            HOOK,
        )
        .unwrap_err();
    assert_eq!(e.field(), Some("getUser"));
    c.flush().unwrap();
    let events = sent(&mut c, T0);
    let users: Vec<_> = events.iter().map(|e| s(e, "user_id")).collect();
    assert_eq!(users, [Some("bob"), Some("carol"), Some("carol")]);
}

#[test]
fn saved_calls_keep_their_own_identity() {
    let mut c = server();
    c.record(
        &call("identify", "a", Some(r#"{"userId":"old"}"#), ""),
        T0,
        HOOK | SAVED | FIRST,
    )
    .unwrap();
    c.record(
        &call("track", "b", Some(r#"{"eventType":"x"}"#), ""),
        T0,
        HOOK | SAVED,
    )
    .unwrap();
    c.record(
        &call("track", "c", Some(r#"{"eventType":"x"}"#), ""),
        T0,
        HOOK,
    )
    .unwrap();
    c.flush().unwrap();
    let events = sent(&mut c, T0);
    assert_eq!(s(&events[1], "user_id"), Some("old"));
    assert_eq!(
        s(&events[2], "user_id"),
        None,
        "the client's own user is untouched"
    );
}

#[test]
fn a_page_view_carries_the_page_and_one_referral_per_load() {
    let mut c = browser("");
    c.record(
        &call("pageView", "p1", None, &format!(r#","j":"r1"{PAGE}"#)),
        T0,
        HOOK,
    )
    .unwrap();
    c.record(
        &call("pageView", "p2", None, &format!(r#","j":"r2"{PAGE}"#)),
        T0,
        HOOK,
    )
    .unwrap();
    c.record(
        &call("track", "t", Some(r#"{"eventType":"x"}"#), PAGE),
        T0,
        HOOK,
    )
    .unwrap();
    // No token yet: the mint comes first.
    c.flush().unwrap();
    let out = c.poll(T0);
    assert_eq!(out.requests.len(), 1);
    assert!(out.requests[0].url.ends_with("/api/auth/session/"));
    c.answer(
        out.requests[0].id,
        200.0,
        None,
        r#"{"token":"t","expires_in":900,"uid":"anon-1"}"#.into(),
        T0,
    );
    let events = sent(&mut c, T0);
    let names: Vec<_> = events.iter().map(|e| s(e, "event_type").unwrap()).collect();
    assert_eq!(
        names,
        ["page_viewed", "ai_referral_session", "page_viewed", "x"]
    );
    assert_eq!(s(&events[1], "message_id"), Some("r1"));
    let props = events[0].get("properties").unwrap();
    assert_eq!(s(props, "path"), Some("/p"));
    assert_eq!(s(props, "utm_source"), Some("chatgpt.com"));
    for e in &events {
        let page = e.get("context").unwrap().get("page").unwrap();
        assert_eq!(s(page, "title"), Some("P"));
        assert_eq!(s(e, "anonymous_id"), Some("anon-1"));
    }
}

#[test]
fn a_page_view_outside_a_browser_does_nothing() {
    let mut c = server();
    c.record(&call("pageView", "p", None, ""), T0, HOOK)
        .unwrap();
    assert_eq!(c.pipeline().stats().recorded, 0);
}

#[test]
fn a_public_key_outside_a_browser_sends_and_logs_nothing() {
    let mut c = open_with(
        r#"{"apiUrl":"http://api.test","apiKey":"pk_test"}"#,
        r#"{"browser":false}"#,
    )
    .unwrap();
    c.record(
        &call("track", "a", Some(r#"{"eventType":"x"}"#), ""),
        T0,
        HOOK,
    )
    .unwrap();
    // Bad input is still an error.
    assert!(c
        .record(&call("track", "a", Some("{}"), ""), T0, HOOK)
        .is_err());
    let t = c.flush().unwrap();
    let out = c.poll(T0);
    assert!(out.requests.is_empty() && out.logs.is_empty());
    assert!(c.is_flushed(t));
    assert!(c.hidden(T0).is_empty());
    assert_eq!(c.snapshot(), "");
    let stats = parse(&c.stats(T0)).unwrap();
    assert_eq!(
        stats
            .get("dropped")
            .unwrap()
            .get("not_in_browser")
            .unwrap()
            .as_u64(),
        Some(1)
    );
}

#[test]
fn a_secret_key_in_a_browser_is_warned_about_once() {
    let mut c = open_with(
        r#"{"apiUrl":"http://api.test","apiKey":"sk_test"}"#,
        r#"{"browser":true}"#,
    )
    .unwrap();
    let out = c.poll(T0);
    assert_eq!(out.logs.len(), 1);
    assert!(out.logs[0].message.contains("secret sk_ key"));
    assert!(c.poll(T0).logs.is_empty());
}

fn hooked_client() -> Client {
    Client::open(
        r#"{"v":{"a":{"apiUrl":"http://api.test","apiKey":"sk_test"},"x":{"beforeSend":"function"}},"env":{}}"#,
    )
    .unwrap()
}

#[test]
fn before_send_edits_drops_or_is_ignored_when_broken() {
    let mut c = hooked_client();
    let Recorded::Hook(events) = c
        .record(
            &call("track", "a", Some(r#"{"eventType":"x","userId":"u"}"#), ""),
            T0,
            HOOK,
        )
        .unwrap()
    else {
        panic!("the hook must run");
    };
    let shown = parse(&events).unwrap();
    let e = &shown.as_array().unwrap()[0];
    assert_eq!(s(e, "type"), Some("track"));
    assert_eq!(s(e, "userId"), Some("u"));
    c.hooked(
        r#"[{"a":{"type":"track","eventType":"renamed","userId":"u","timestamp":"2026-01-01T00:00:00Z"}}]"#,
        T0,
    )
    .unwrap();
    // Dropped.
    c.record(
        &call("track", "b", Some(r#"{"eventType":"x"}"#), ""),
        T0,
        HOOK,
    )
    .unwrap();
    c.hooked(r#"[{"a":null}]"#, T0).unwrap();
    // Broken: threw, returned undefined, changed the type. Kept unchanged, first one logged.
    for answer in [
        r#"[{"e":"boom"}]"#,
        "[{}]",
        r#"[{"a":{"type":"page","eventType":"x","anonymousId":"a"}}]"#,
        r#"[{"x":{"":"promise"}}]"#,
    ] {
        c.record(
            &call("track", "k", Some(r#"{"eventType":"kept"}"#), ""),
            T0,
            HOOK,
        )
        .unwrap();
        c.hooked(answer, T0).unwrap();
    }
    // Events the hook records itself skip it.
    assert_eq!(
        c.record(
            &call("track", "h", Some(r#"{"eventType":"inner"}"#), ""),
            T0,
            0
        )
        .unwrap(),
        Recorded::Done
    );
    let logs = c.poll(T0).logs;
    assert_eq!(logs.len(), 1);
    assert!(
        logs[0].message.contains("beforeSend threw (boom)"),
        "{}",
        logs[0].message
    );
    c.flush().unwrap();
    let events = sent(&mut c, T0);
    let names: Vec<_> = events.iter().map(|e| s(e, "event_type").unwrap()).collect();
    assert_eq!(names, ["renamed", "kept", "kept", "kept", "kept", "inner"]);
    let stats = parse(&c.stats(T0)).unwrap();
    assert_eq!(stats.get("beforeSendErrors").unwrap().as_u64(), Some(4));
    assert_eq!(
        stats
            .get("dropped")
            .unwrap()
            .get("before_send")
            .unwrap()
            .as_u64(),
        Some(1)
    );
}

#[test]
fn consent_denied_discards_and_renews_the_anonymous_id() {
    let mut c = browser("");
    assert_eq!(c.anonymous_id(), "anon-1");
    c.record(
        &call("track", "a", Some(r#"{"eventType":"x"}"#), ""),
        T0,
        HOOK,
    )
    .unwrap();
    assert_eq!(c.set_consent(r#"{"a":"denied"}"#).unwrap(), Consent::Denied);
    assert_ne!(c.anonymous_id(), "anon-1");
    assert!(c.poll(T0).requests.is_empty());
    let e = c.set_consent(r#"{"a":"maybe"}"#).unwrap_err();
    assert_eq!(e.field(), Some("setConsent"));
    let e = c.set_consent(r#"{"x":{"":"symbol"}}"#).unwrap_err();
    assert!(e.message().contains("got a symbol"), "{e}");
    // A client that starts denied never uses the stored id.
    let c = open_with(
        r#"{"apiUrl":"http://api.test","apiKey":"pk_test"}"#,
        r#"{"browser":true,"consent":"denied","anon":"anon-1"}"#,
    )
    .unwrap();
    assert_ne!(c.anonymous_id(), "anon-1");
}

#[test]
fn shutdown_refuses_later_calls() {
    let mut c = server();
    c.shutdown();
    let e = c
        .record(
            &call("track", "a", Some(r#"{"eventType":"x"}"#), ""),
            T0,
            HOOK,
        )
        .unwrap_err();
    assert_eq!(e.code(), "client_shut_down");
    assert!(c.flush().is_err());
    // A consent choice is always recorded.
    assert!(c.set_consent(r#"{"a":"denied"}"#).is_ok());
}

#[test]
fn the_output_is_a_header_with_the_bodies_apart() {
    let mut c = server();
    c.record(
        &call("track", "a", Some(r#"{"eventType":"x"}"#), ""),
        T0,
        HOOK,
    )
    .unwrap();
    c.flush().unwrap();
    let out = c.poll(T0);
    let header = parse(&out.encode()).unwrap();
    let mut bodies = out.into_bodies();
    assert_eq!(bodies.len(), 1);
    // The body comes in parts; "" ends it.
    let mut body = String::new();
    loop {
        let part = c.body_part(&mut bodies[0]);
        if part.is_empty() {
            break;
        }
        body.push_str(&part);
    }
    let r = &header.get("r").unwrap().as_array().unwrap()[0];
    let r = r.as_array().unwrap();
    assert_eq!(r[1].as_str(), Some("http://api.test/api/ingestion/track/"));
    assert_eq!(r[2].as_str(), Some("ApiKey sk_test"));
    assert!(parse(&body).unwrap().get("events").is_some());
    assert_eq!(
        header.get("w").unwrap().as_u64(),
        None,
        "-1: nothing to wake for"
    );
}

#[test]
fn stats_are_json_with_every_field() {
    let c = server();
    let v = parse(&c.stats(T0)).unwrap();
    for k in [
        "recorded",
        "queued",
        "pending",
        "sent",
        "duplicates",
        "retried",
        "requests",
        "bytesSent",
        "mints",
        "remints",
        "keepaliveRequests",
        "restored",
        "unsaved",
        "tokenExpiresInMs",
        "dropped",
        "droppedTotal",
        "consent",
        "truncated",
        "truncatedBy",
        "beforeSendErrors",
        "lastError",
        "halted",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
}

#[test]
fn numbers_are_read_without_float_parsing() {
    for (text, want) in [
        ("20", 20.0),
        ("-1", -1.0),
        ("0.5", 0.5),
        ("19.9", 19.9),
        ("1e3", 1000.0),
        ("1764000000000", 1_764_000_000_000.0),
        ("2.5e-1", 0.25),
    ] {
        let Value::Number(n) = parse(text).unwrap() else {
            panic!()
        };
        assert_eq!(n.approx_f64(), want, "{text}");
    }
}

mod visits;
