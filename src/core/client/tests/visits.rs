//! Visits in a browser: the session id and attribution on every event, one referral per visit,
//! and reset().

use super::*;

/// Mints the token the pending events need, then returns what the client sends.
fn deliver(c: &mut Client, now: f64) -> Vec<Value> {
    c.flush().unwrap();
    let mut events = Vec::new();
    for _ in 0..10 {
        let out = c.poll(now);
        if out.requests.is_empty() {
            break;
        }
        for r in &out.requests {
            if r.url.ends_with("/api/auth/session/") {
                let uid = parse(&r.body).unwrap();
                let uid = s(&uid, "user_id")
                    .or(s(&uid, "anonymous_id"))
                    .unwrap()
                    .to_string();
                c.answer(
                    r.id,
                    200.0,
                    None,
                    format!(r#"{{"token":"t-{uid}","expires_in":900,"uid":"{uid}"}}"#),
                    now,
                );
            } else {
                let body = parse(&c.pipeline().body_of(r.id).unwrap()).unwrap();
                events.extend(
                    body.get("events")
                        .unwrap()
                        .as_array()
                        .unwrap()
                        .iter()
                        .cloned(),
                );
                c.answer(r.id, 200.0, None, r#"{"accepted":1}"#.into(), now);
            }
        }
    }
    events
}

fn quote(text: &str) -> String {
    let mut out = String::new();
    crate::core::json::write_str(&mut out, text);
    out
}

fn ctx<'a>(e: &'a Value, k: &str) -> Option<&'a Value> {
    e.get("context").and_then(|c| c.get(k))
}

#[test]
fn browser_events_carry_the_visit_and_its_attribution() {
    let mut c = browser("");
    c.record(
        &call("track", "a", Some(r#"{"eventType":"x"}"#), PAGE),
        T0,
        HOOK,
    )
    .unwrap();
    c.record(
        &call("pageView", "p", None, &format!(r#","j":"r"{PAGE}"#)),
        T0,
        HOOK,
    )
    .unwrap();
    let events = deliver(&mut c, T0);
    let names: Vec<_> = events.iter().map(|e| s(e, "event_type").unwrap()).collect();
    assert_eq!(names, ["x", "page_viewed", "ai_referral_session"]);
    let id = ctx(&events[0], "session_id")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 36);
    for e in &events {
        assert_eq!(
            ctx(e, "session_id").and_then(Value::as_str),
            Some(id.as_str())
        );
        let a = ctx(e, "attribution").unwrap();
        assert_eq!(s(a, "source_provider"), Some("chatgpt"));
        assert_eq!(s(a, "utm_source"), Some("chatgpt.com"));
        assert_eq!(s(a, "referrer_host"), Some("chatgpt.com"));
        assert_eq!(
            s(a, "landing_url"),
            Some("https://shop.example/p?utm_source=chatgpt.com")
        );
    }
    assert_eq!(
        s(events[2].get("properties").unwrap(), "session_id"),
        Some(id.as_str())
    );
    assert_eq!(c.session_id("{}", T0 + 1.0), id, "client.sessionId");
    // Node: no visit.
    let mut n = server();
    n.record(
        &call("track", "n", Some(r#"{"eventType":"x"}"#), ""),
        T0,
        HOOK,
    )
    .unwrap();
    assert_eq!(n.session_id("{}", T0), "");
}

#[test]
fn a_reload_in_the_same_visit_sends_no_second_referral() {
    let mut first = browser("");
    first
        .record(
            &call("pageView", "p1", None, &format!(r#","j":"r1"{PAGE}"#)),
            T0,
            HOOK,
        )
        .unwrap();
    let stored = first.poll(T0).visit.expect("the new visit is written");
    // The next page load (a reload keeps the referrer) starts from what was stored.
    let mut next = open_with(
        r#"{"apiUrl":"http://api.test","apiKey":"pk_test"}"#,
        &format!(
            r#"{{"browser":true,"consent":"granted","anon":"anon-1","seed":"43","visit":{}}}"#,
            quote(&stored)
        ),
    )
    .unwrap();
    next.record(
        &call("pageView", "p2", None, &format!(r#","j":"r2"{PAGE}"#)),
        T0 + 5_000.0,
        HOOK,
    )
    .unwrap();
    let events = deliver(&mut next, T0 + 5_000.0);
    let names: Vec<_> = events.iter().map(|e| s(e, "event_type").unwrap()).collect();
    assert_eq!(names, ["page_viewed"], "no second ai_referral_session");
    let id = first.session_id("{}", T0);
    assert_eq!(
        ctx(&events[0], "session_id").and_then(Value::as_str),
        Some(id.as_str())
    );
    // Under consent pending nothing is written; denied keeps no stored visit.
    let mut denied = open_with(
        r#"{"apiUrl":"http://api.test","apiKey":"pk_test"}"#,
        &format!(
            r#"{{"browser":true,"consent":"denied","seed":"44","visit":{}}}"#,
            quote(&stored)
        ),
    )
    .unwrap();
    assert_ne!(denied.session_id("{}", T0), id);
    assert_eq!(denied.poll(T0).visit, None);
}

#[test]
fn reset_delivers_what_came_before_under_the_old_identity_and_starts_afresh() {
    let mut c = browser("");
    let old_session = c.session_id(&PAGE[5..], T0);
    c.record(
        &call(
            "track",
            "before",
            Some(r#"{"eventType":"logged_out"}"#),
            PAGE,
        ),
        T0,
        HOOK,
    )
    .unwrap();
    c.reset(T0); // in the same tick
    c.record(
        &call("track", "after", Some(r#"{"eventType":"browse"}"#), PAGE),
        T0 + 1.0,
        HOOK,
    )
    .unwrap();
    c.record(
        &call("pageView", "view", None, &format!(r#","j":"r"{PAGE}"#)),
        T0 + 2.0,
        HOOK,
    )
    .unwrap();
    let events = deliver(&mut c, T0 + 3.0);
    let names: Vec<_> = events.iter().map(|e| s(e, "event_type").unwrap()).collect();
    assert_eq!(
        names,
        ["logged_out", "browse", "page_viewed"],
        "no referral in the new visit"
    );
    assert_eq!(s(&events[0], "anonymous_id"), Some("anon-1"));
    assert_eq!(
        ctx(&events[0], "session_id").and_then(Value::as_str),
        Some(old_session.as_str())
    );
    let new_anon = c.anonymous_id().to_string();
    assert_ne!(new_anon, "anon-1");
    for e in &events[1..] {
        assert_eq!(s(e, "anonymous_id"), Some(new_anon.as_str()));
        assert_ne!(
            ctx(e, "session_id").and_then(Value::as_str),
            Some(old_session.as_str())
        );
        assert!(
            ctx(e, "attribution").is_none(),
            "a new visit without attribution"
        );
    }
    // Both identities had a token; the old one's is gone now that its event is out.
    let mints = c.pipeline().stats().mints;
    assert_eq!(mints, 2);
    c.record(
        &call("track", "later", Some(r#"{"eventType":"later"}"#), PAGE),
        T0 + 4.0,
        HOOK,
    )
    .unwrap();
    assert_eq!(deliver(&mut c, T0 + 4.0).len(), 1);
    assert_eq!(
        c.pipeline().stats().mints,
        2,
        "the new identity's token serves"
    );
    assert!(
        c.pipeline().token_for_uid("anon-1").is_none(),
        "the old identity's token was dropped"
    );
}
