//! The pipeline driven with a fake clock and scripted answers.

use super::*;
use crate::core::config::ConfigInput;
use crate::core::event::encode;
use crate::core::event::EventKind;
use crate::core::json::{parse, Value};

fn config(f: impl FnOnce(&mut ConfigInput)) -> Config {
    let mut i = ConfigInput {
        api_url: Some("http://api.test".into()),
        api_key: Some("sk_live_test".into()),
        ..Default::default()
    };
    f(&mut i);
    Config::from_input(i).unwrap()
}

fn pipeline(f: impl FnOnce(&mut ConfigInput)) -> Pipeline {
    Pipeline::new(config(f), r#"{"library":{"name":"t"}}"#.into(), 42)
}

fn ev(name: &str) -> EventInput {
    EventInput {
        kind: EventKind::Track,
        event_type: name.into(),
        identity: Identity::User {
            user_id: "u1".into(),
            anonymous_id: None,
        },
        timestamp: "2026-11-24T00:00:00.000Z".into(),
        properties: Some(r#"{"k":1}"#.into()),
        traits: None,
        context: None,
    }
}

fn ok(accepted: usize) -> HttpResult {
    HttpResult::Response {
        status: 200,
        retry_after: None,
        body: format!(r#"{{"accepted":{accepted},"duplicates":0,"rejected":[]}}"#),
    }
}

fn status(s: u16, body: &str) -> HttpResult {
    HttpResult::Response {
        status: s,
        retry_after: None,
        body: body.into(),
    }
}

fn ids(req: &Request) -> Vec<String> {
    let v = parse(&req.body).unwrap();
    v.get("events")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|e| {
            e.get("message_id")
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect()
}

fn record(p: &mut Pipeline, n: usize, now: f64) {
    for i in 0..n {
        let id = format!("m{}", p.stats().recorded + 1);
        p.enqueue(&id, ev(&format!("e{i}")), None, now).unwrap();
    }
}

#[test]
fn sends_when_flush_at_is_reached() {
    let mut p = pipeline(|c| c.flush_at = Some(3.0));
    record(&mut p, 2, 0.0);
    assert_eq!(p.poll_full(0.0), None);
    record(&mut p, 1, 0.0);
    let r = p.poll_full(0.0).unwrap();
    assert_eq!(ids(&r), ["m1", "m2", "m3"]);
    assert_eq!(r.url, "http://api.test/api/ingestion/track/");
    assert_eq!(r.authorization, "ApiKey sk_live_test");
    assert!(!r.keepalive);
    assert_eq!(r.timeout_ms, 10_000);
    let body = parse(&r.body).unwrap();
    assert_eq!(
        body.get("context")
            .and_then(|c| c.get("library"))
            .and_then(|l| l.get("name"))
            .and_then(Value::as_str),
        Some("t")
    );
    assert!(body.get("sent_at").and_then(Value::as_str).is_some());
    assert_eq!(p.stats().requests, 1);
    assert_eq!(p.stats().bytes_sent, r.body.len() as u64);
}

#[test]
fn sends_when_the_interval_is_up() {
    let mut p = pipeline(|c| c.flush_interval_ms = Some(500.0));
    record(&mut p, 1, 1_000.0);
    assert_eq!(p.poll_full(1_000.0), None);
    assert_eq!(p.next_wake(1_000.0), Some(1_500.0));
    assert_eq!(p.poll_full(1_499.0), None);
    let r = p.poll_full(1_500.0).unwrap();
    assert_eq!(ids(&r), ["m1"]);
    assert_eq!(p.next_wake(1_500.0), None, "nothing to do while in flight");
    p.on_result(r.id, ok(1), 1_510.0);
    assert_eq!(p.next_wake(1_510.0), None, "idle when empty");
}

#[test]
fn one_batch_in_flight_and_a_burst_goes_in_few_batches() {
    let mut p = pipeline(|_| {});
    record(&mut p, 1_000, 0.0);
    let r = p.poll_full(0.0).unwrap();
    assert_eq!(ids(&r).len(), 1_000, "a burst fits one 512 KiB batch");
    assert_eq!(p.poll_full(0.0), None, "one in flight");
    record(&mut p, 5, 1.0);
    assert_eq!(p.poll_full(1.0), None, "still one in flight");
    p.on_result(r.id, ok(1_000), 2.0);
    assert_eq!(p.stats().sent, 1_000);
    // The 5 newer events wait for the interval (fewer than flushAt).
    assert_eq!(p.poll_full(2.0), None);
    assert_eq!(p.next_wake(2.0), Some(2_001.0));
}

#[test]
fn batches_respect_the_byte_limit() {
    let mut p = pipeline(|c| {
        c.max_batch_bytes = Some(2_048.0);
        c.flush_at = Some(1.0);
    });
    record(&mut p, 40, 0.0);
    let mut seen = Vec::new();
    let mut now = 0.0;
    while let Some(r) = p.poll_full(now) {
        assert!(r.body.len() <= 2_048, "{}", r.body.len());
        let got = ids(&r);
        assert!(!got.is_empty());
        seen.extend(got.clone());
        now += 1.0;
        p.on_result(r.id, ok(got.len()), now);
    }
    let expected: Vec<String> = (1..=40).map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected, "each event once, in order");
    assert!(p.stats().requests > 1);
    assert!(p.is_flushed(40));
}

#[test]
fn flush_sends_at_once_and_settles() {
    let mut p = pipeline(|_| {});
    record(&mut p, 2, 0.0);
    let target = p.request_flush();
    assert!(!p.is_flushed(target));
    let r = p.poll_full(0.0).unwrap();
    record(&mut p, 1, 0.0); // recorded after flush(): not waited for
    assert!(!p.is_flushed(target));
    p.on_result(r.id, ok(2), 1.0);
    assert!(p.is_flushed(target));
    assert!(!p.is_flushed(target + 1));
}

#[test]
fn retries_keep_message_ids_and_back_off() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 3, 0.0);
    let first = p.poll_full(0.0).unwrap();
    p.on_result(first.id, status(503, ""), 10.0);
    assert_eq!(p.stats().last_error.as_ref().unwrap().0, "delivery_retry");
    let wake = p.next_wake(10.0).unwrap();
    assert!((10.0..10.0 + 1_000.0).contains(&wake), "{wake}");
    assert_eq!(p.poll_full(wake - 0.5), None);
    let second = p.poll_full(wake).unwrap();
    assert_eq!(ids(&first), ids(&second));
    assert_eq!(p.stats().retried, 3);
    p.on_result(second.id, ok(3), wake + 1.0);
    assert_eq!(p.stats().sent, 3);
    assert_eq!(p.stats().dropped_total(), 0);
}

#[test]
fn retry_after_is_honoured() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 1, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(
        r.id,
        HttpResult::Response {
            status: 429,
            retry_after: Some("5".into()),
            body: String::new(),
        },
        100.0,
    );
    assert_eq!(p.next_wake(100.0), Some(5_100.0));
}

#[test]
fn gives_up_after_max_attempts_and_counts() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 2, 0.0);
    let target = p.request_flush();
    let mut now = 0.0;
    let mut attempts = 0;
    while let Some(r) = p.poll_full(now) {
        attempts += 1;
        p.on_result(r.id, HttpResult::Network("offline".into()), now);
        now = p.next_wake(now).unwrap_or(now);
        assert!(attempts <= MAX_ATTEMPTS);
    }
    assert_eq!(attempts, MAX_ATTEMPTS);
    assert_eq!(p.stats().dropped(reason::RETRIES_EXHAUSTED), 2);
    assert!(p.is_flushed(target));
    assert_eq!(
        p.take_logs()
            .iter()
            .filter(|l| l.level == Level::Warn)
            .count(),
        1
    );
}

#[test]
fn too_large_splits_then_drops_single_events() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 4, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(r.id, status(413, ""), 1.0);
    let a = p.poll_full(1.0).unwrap();
    assert_eq!(ids(&a), ["m1", "m2"]);
    p.on_result(a.id, ok(2), 2.0);
    let b = p.poll_full(2.0).unwrap();
    assert_eq!(ids(&b), ["m3", "m4"]);
    p.on_result(b.id, status(413, ""), 3.0);
    let c = p.poll_full(3.0).unwrap();
    assert_eq!(ids(&c), ["m3"]);
    p.on_result(c.id, status(413, ""), 4.0);
    assert_eq!(p.stats().dropped(reason::TOO_LARGE), 1);
    let d = p.poll_full(4.0).unwrap();
    assert_eq!(ids(&d), ["m4"]);
    p.on_result(d.id, ok(1), 5.0);
    assert_eq!(p.stats().sent, 3);
    assert_eq!(p.pending(), 0);
}

#[test]
fn bad_request_drops_only_the_named_events() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 3, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(
        r.id,
        status(
            400,
            r#"{"code":"invalid_request","rejected":[{"index":1,"code":"invalid_event"}]}"#,
        ),
        1.0,
    );
    let again = p.poll_full(1.0).unwrap();
    assert_eq!(ids(&again), ["m1", "m3"]);
    p.on_result(
        again.id,
        status(400, r#"{"code":"invalid_json","message":"?"}"#),
        2.0,
    );
    assert_eq!(p.stats().dropped("invalid_event"), 1);
    assert_eq!(p.stats().dropped(reason::BAD_REQUEST), 2);
    assert_eq!(p.pending(), 0);
}

#[test]
fn per_event_rejections_in_a_2xx_are_counted_by_code() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 3, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(
        r.id,
        status(
            200,
            r#"{"accepted":1,"duplicates":1,"rejected":[{"index":2,"code":"missing_identity","message":"x"},{"index":99,"code":"bogus"}]}"#,
        ),
        1.0,
    );
    assert_eq!(p.stats().sent, 2);
    assert_eq!(p.stats().duplicates, 1);
    assert_eq!(p.stats().dropped("missing_identity"), 1);
    assert_eq!(
        p.stats().dropped("bogus"),
        0,
        "out-of-range indices are ignored"
    );
}

#[test]
fn a_refused_key_stops_sending_keeps_the_queue_and_reports_once() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 2, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(
        r.id,
        status(401, r#"{"code":"api_key_revoked","message":"gone"}"#),
        1.0,
    );
    let logs = p.take_logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].level, Level::Error);
    assert!(
        logs[0].message.contains("api_key_revoked"),
        "{}",
        logs[0].message
    );
    assert_eq!(p.halted().unwrap().code, "api_key_revoked");
    record(&mut p, 3, 2.0);
    let target = p.request_flush();
    assert!(p.is_flushed(target), "flush() does not hang on a dead key");
    assert_eq!(p.poll_full(1e12), None, "no hot loop");
    assert_eq!(p.next_wake(3.0), None);
    assert_eq!(p.pending(), 5);
    assert_eq!(p.stats().dropped_total(), 0);
    assert!(p.take_logs().is_empty());
}

#[test]
fn other_client_errors_drop_the_batch() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 2, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(
        r.id,
        status(404, r#"{"code":"not_found","message":"?"}"#),
        1.0,
    );
    assert_eq!(p.stats().dropped("http_404"), 2);
    assert_eq!(p.take_logs()[0].level, Level::Error);
}

#[test]
fn overflow_drops_the_oldest_by_count_and_by_bytes() {
    let mut p = pipeline(|c| c.max_queue_events = Some(3.0));
    record(&mut p, 5, 0.0);
    assert_eq!(p.queued(), 3);
    assert_eq!(p.stats().dropped(reason::QUEUE_OVERFLOW), 2);
    assert_eq!(p.take_logs().len(), 1, "warned once");
    p.request_flush();
    let r = p.poll_full(0.0).unwrap();
    assert_eq!(ids(&r), ["m3", "m4", "m5"]);

    let one = encode("m1", &ev("e0")).len();
    let mut p = pipeline(|c| {
        c.max_queue_bytes = Some((one * 2 + one / 2) as f64);
        c.max_event_bytes = Some(256.0);
        assert!(one < 256 && one * 2 + one / 2 >= 256);
    });
    record(&mut p, 4, 0.0);
    assert_eq!(p.queued(), 2);
    assert!(p.queued_bytes() <= one * 2 + one / 2);
    assert_eq!(p.stats().dropped(reason::QUEUE_OVERFLOW), 2);
}

#[test]
fn an_oversized_event_is_refused_and_nothing_is_lost() {
    let mut p = pipeline(|c| c.max_event_bytes = Some(300.0));
    record(&mut p, 1, 0.0);
    let mut big = ev("big");
    big.properties = Some(format!(r#"{{"s":"{}"}}"#, "x".repeat(400)));
    let e = p.enqueue("m2", big, None, 0.0).unwrap_err();
    assert_eq!(e.code(), "event_too_large");
    assert_eq!(p.queued(), 1);
    assert_eq!(p.stats().recorded, 1);
}

#[test]
fn stale_answers_are_ignored() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 1, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(r.id + 7, ok(1), 1.0);
    assert_eq!(p.stats().sent, 0);
    assert_eq!(p.poll_full(1.0), None, "still in flight");
    p.on_result(r.id, ok(1), 2.0);
    assert_eq!(p.stats().sent, 1);
}

#[test]
fn shutdown_sends_without_waiting() {
    let mut p = pipeline(|_| {});
    record(&mut p, 1, 0.0);
    let target = p.begin_shutdown();
    let r = p.poll_full(0.0).unwrap();
    p.on_result(r.id, ok(1), 1.0);
    assert!(p.is_flushed(target));
}

#[test]
fn debug_logs_only_when_asked() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 1, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(r.id, ok(1), 1.0);
    assert!(p.take_logs().is_empty());
    let mut p = pipeline(|c| {
        c.flush_at = Some(1.0);
        c.debug = Some(true);
    });
    record(&mut p, 1, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(r.id, ok(1), 1.0);
    let logs = p.take_logs();
    assert!(logs.iter().all(|l| l.level == Level::Debug));
    assert!(logs[0].message.contains("sending 1 events"), "{logs:?}");
}

// ---- public keys: sessions -----------------------------------------------------------

fn public(f: impl FnOnce(&mut ConfigInput)) -> Pipeline {
    pipeline(|c| {
        c.api_key = Some("pk_live_test".into());
        f(c)
    })
}

fn user_ev(name: &str, uid: &str) -> EventInput {
    let mut e = ev(name);
    e.identity = Identity::User {
        user_id: uid.into(),
        anonymous_id: Some("anon-1".into()),
    };
    e
}

fn anon_ev(name: &str) -> EventInput {
    let mut e = ev(name);
    e.identity = Identity::Anonymous {
        anonymous_id: "anon-1".into(),
    };
    e
}

fn token(uid: &str, n: u32, expires_in: u32) -> HttpResult {
    HttpResult::Response {
        status: 200,
        retry_after: None,
        body: format!(
            r#"{{"token":"tok-{uid}-{n}","expires_at":"2000-01-01T00:00:00Z","expires_in":{expires_in},"uid":"{uid}","uid_kind":"user"}}"#
        ),
    }
}

fn is_mint(r: &Request) -> bool {
    r.url.ends_with("/api/auth/session/")
}

#[test]
fn a_hundred_events_cause_exactly_one_mint() {
    let mut p = public(|c| c.flush_at = Some(10.0));
    let mut n = 0;
    let mut requests = Vec::new();
    for i in 0..100 {
        n += 1;
        p.enqueue(
            &format!("m{n}"),
            user_ev(&format!("e{i}"), "alice"),
            None,
            0.0,
        )
        .unwrap();
        p.request_flush();
        while let Some(r) = p.poll_full(0.0) {
            requests.push(r);
        }
    }
    let mints: Vec<&Request> = requests.iter().filter(|r| is_mint(r)).collect();
    assert_eq!(mints.len(), 1, "single flight while the mint is pending");
    assert_eq!(mints[0].authorization, "ApiKey pk_live_test");
    assert_eq!(mints[0].body, r#"{"user_id":"alice"}"#);
    assert_eq!(requests.len(), 1, "no ingestion before the token");
    p.on_result(mints[0].id, token("alice", 1, 900), 5.0);
    let mut sent = 0;
    let mut now = 5.0;
    while let Some(r) = p.poll_full(now) {
        assert!(!is_mint(&r));
        assert_eq!(r.authorization, "Bearer tok-alice-1");
        sent += ids(&r).len();
        now += 1.0;
        p.on_result(r.id, ok(ids(&r).len()), now);
    }
    assert_eq!(sent, 100);
    assert_eq!(p.stats().mints, 1);
    assert!(p.is_flushed(100));
}

#[test]
fn the_token_is_renewed_ahead_of_expiry_from_its_arrival_whatever_the_clock() {
    // A client clock years off: only differences between its readings matter.
    let t0 = 4_102_444_800_000.0;
    let mut p = public(|c| c.flush_at = Some(1.0));
    p.enqueue("m1", user_ev("a", "alice"), None, t0).unwrap();
    let mint = p.poll_full(t0).unwrap();
    assert!(is_mint(&mint));
    p.on_result(mint.id, token("alice", 1, 8), t0 + 100.0);
    let r = p.poll_full(t0 + 100.0).unwrap();
    p.on_result(r.id, ok(1), t0 + 110.0);
    assert_eq!(
        p.next_wake(t0 + 110.0),
        None,
        "no activity since the token arrived"
    );
    p.enqueue("m1b", user_ev("a", "alice"), None, t0 + 120.0)
        .unwrap();
    let r = p.poll_full(t0 + 120.0).unwrap();
    p.on_result(r.id, ok(1), t0 + 130.0);
    // Renewal is due half-way through an 8 s lifetime, counted from the arrival.
    assert_eq!(p.next_wake(t0 + 130.0), Some(t0 + 100.0 + 4_000.0));
    assert_eq!(p.poll_full(t0 + 4_099.0), None);
    let renew = p.poll_full(t0 + 4_100.0).unwrap();
    assert!(is_mint(&renew));
    // While the renewal is in flight, events still go out with the old token.
    p.enqueue("m2", user_ev("b", "alice"), None, t0 + 4_200.0)
        .unwrap();
    let r = p.poll_full(t0 + 4_200.0).unwrap();
    assert_eq!(r.authorization, "Bearer tok-alice-1");
    p.on_result(r.id, ok(1), t0 + 4_210.0);
    p.on_result(renew.id, token("alice", 2, 8), t0 + 4_300.0);
    p.enqueue("m3", user_ev("c", "alice"), None, t0 + 4_400.0)
        .unwrap();
    let r = p.poll_full(t0 + 4_400.0).unwrap();
    assert_eq!(r.authorization, "Bearer tok-alice-2");
    p.on_result(r.id, ok(1), t0 + 4_410.0);
    assert_eq!(p.stats().mints, 2);
    // Without new activity, the token is left to lapse: an idle tab does not mint all day.
    let wake = p.next_wake(t0 + 4_410.0).unwrap();
    let renew = p.poll_full(wake).unwrap();
    p.on_result(renew.id, token("alice", 3, 8), wake + 10.0);
    assert_eq!(p.next_wake(wake + 10.0), None);
    assert_eq!(p.poll_full(wake + 60_000.0), None);
}

#[test]
fn a_401_re_mints_once_and_retries_once_then_stops() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    p.enqueue("m1", user_ev("a", "alice"), None, 0.0).unwrap();
    let mint = p.poll_full(0.0).unwrap();
    p.on_result(mint.id, token("alice", 1, 900), 1.0);
    let r = p.poll_full(1.0).unwrap();
    p.on_result(
        r.id,
        status(401, r#"{"code":"token_expired","message":"x"}"#),
        2.0,
    );
    let remint = p.poll_full(2.0).unwrap();
    assert!(is_mint(&remint));
    p.on_result(remint.id, token("alice", 2, 900), 3.0);
    let again = p.poll_full(3.0).unwrap();
    assert_eq!(again.authorization, "Bearer tok-alice-2");
    assert_eq!(ids(&again), ["m1"], "same message id");
    p.on_result(again.id, ok(1), 4.0);
    assert_eq!(p.stats().sent, 1);
    assert_eq!(p.stats().remints, 1);

    // A second 401 for the same batch is final for that identity.
    p.enqueue("m2", user_ev("b", "alice"), None, 5.0).unwrap();
    let r = p.poll_full(5.0).unwrap();
    p.on_result(
        r.id,
        status(401, r#"{"code":"api_key_revoked","message":"x"}"#),
        6.0,
    );
    let remint = p.poll_full(6.0).unwrap();
    p.on_result(remint.id, token("alice", 3, 900), 7.0);
    let r = p.poll_full(7.0).unwrap();
    p.take_logs();
    p.on_result(
        r.id,
        status(401, r#"{"code":"api_key_revoked","message":"x"}"#),
        8.0,
    );
    let logs = p.take_logs();
    assert_eq!(logs.iter().filter(|l| l.level == Level::Error).count(), 1);
    assert_eq!(p.halted().unwrap().code, "api_key_revoked");
    assert_eq!(p.poll_full(1e9), None, "no hot loop");
    assert_eq!(p.next_wake(9.0), None);
    assert_eq!(p.pending(), 1, "kept queued");
    assert!(p.is_flushed(2));
    assert_eq!(p.stats().mints, 3);
}

#[test]
fn a_refused_mint_is_terminal_and_reported_once() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    for i in 0..3 {
        p.enqueue(&format!("m{i}"), anon_ev("a"), None, 0.0)
            .unwrap();
    }
    let mint = p.poll_full(0.0).unwrap();
    assert_eq!(mint.body, r#"{"anonymous_id":"anon-1"}"#);
    p.on_result(
        mint.id,
        status(
            403,
            r#"{"code":"origin_not_allowed","message":"https://x.test is not allowed"}"#,
        ),
        1.0,
    );
    let logs = p.take_logs();
    assert_eq!(logs.len(), 1);
    assert!(logs[0].message.contains("origin_not_allowed"));
    assert!(logs[0].message.contains("allowed origins"));
    assert_eq!(p.halted().unwrap().code, "origin_not_allowed");
    assert_eq!(
        p.stats().last_error.as_ref().unwrap().0,
        "origin_not_allowed"
    );
    p.enqueue("m9", anon_ev("b"), None, 2.0).unwrap();
    let target = p.request_flush();
    assert_eq!(p.poll_full(1e9), None);
    assert_eq!(p.next_wake(3.0), None);
    assert!(p.is_flushed(target));
    assert_eq!(p.pending(), 4);
    assert!(p.take_logs().is_empty());
}

#[test]
fn mint_failures_back_off() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    p.enqueue("m1", anon_ev("a"), None, 0.0).unwrap();
    let mint = p.poll_full(0.0).unwrap();
    p.on_result(mint.id, HttpResult::Network("refused".into()), 10.0);
    assert_eq!(p.poll_full(10.0), None);
    let wake = p.next_wake(10.0).unwrap();
    assert!(wake > 10.0 && wake <= 1_010.0, "{wake}");
    let again = p.poll_full(wake).unwrap();
    assert!(is_mint(&again));
    p.on_result(again.id, token("anon-1", 1, 900), wake + 1.0);
    let r = p.poll_full(wake + 1.0).unwrap();
    assert_eq!(r.authorization, "Bearer tok-anon-1-1");
}

#[test]
fn each_event_goes_under_the_identity_it_was_recorded_with() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    p.enqueue("a1", anon_ev("browse"), None, 0.0).unwrap();
    p.enqueue("a2", anon_ev("browse"), None, 0.0).unwrap();
    // The visitor logs in: later events are alice's, the earlier ones stay anonymous.
    p.enqueue("u1", user_ev("buy", "alice"), None, 0.0).unwrap();
    p.enqueue("a3", anon_ev("late_anon"), None, 0.0).unwrap();
    let mut now = 0.0;
    let mut by_token: Vec<(String, Vec<String>)> = Vec::new();
    while let Some(r) = p.poll_full(now) {
        now += 1.0;
        if is_mint(&r) {
            let uid = if r.body.contains("anonymous_id") {
                "anon-1"
            } else {
                "alice"
            };
            p.on_result(r.id, token(uid, 1, 900), now);
        } else {
            by_token.push((r.authorization.clone(), ids(&r)));
            let n = ids(&r).len();
            p.on_result(r.id, ok(n), now);
        }
    }
    assert_eq!(
        by_token,
        [
            (
                "Bearer tok-anon-1-1".to_string(),
                vec!["a1".to_string(), "a2".into(), "a3".into()]
            ),
            ("Bearer tok-alice-1".to_string(), vec!["u1".to_string()]),
        ]
    );
    assert_eq!(p.stats().mints, 2);
}

#[test]
fn an_earlier_identity_with_a_stale_signature_is_dropped_with_its_own_reason() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    let sig = |s: &str| {
        Some(Signature {
            sig: s.into(),
            ts: 1,
        })
    };
    p.enqueue("al1", user_ev("a", "alice"), sig("old"), 0.0)
        .unwrap();
    p.enqueue("al2", user_ev("a", "alice"), sig("old"), 0.0)
        .unwrap();
    p.enqueue("bo1", user_ev("b", "bob"), sig("bob"), 0.0)
        .unwrap();
    let mint = p.poll_full(0.0).unwrap();
    assert_eq!(
        mint.body,
        r#"{"user_id":"alice","user_id_sig":"old","user_id_ts":1}"#
    );
    p.on_result(
        mint.id,
        status(403, r#"{"code":"signature_expired","message":"stale"}"#),
        1.0,
    );
    assert_eq!(p.stats().dropped(reason::STALE_IDENTITY), 2);
    assert!(p.halted().is_none(), "bob, the current identity, is fine");
    let mint = p.poll_full(1.0).unwrap();
    assert!(mint.body.contains("bob"));
    p.on_result(mint.id, token("bob", 1, 900), 2.0);
    let r = p.poll_full(2.0).unwrap();
    assert_eq!(ids(&r), ["bo1"]);
}

#[test]
fn a_fresh_signature_revives_a_refused_identity() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    let sig = |s: &str| {
        Some(Signature {
            sig: s.into(),
            ts: 1,
        })
    };
    p.enqueue("m1", user_ev("a", "alice"), None, 0.0).unwrap();
    let mint = p.poll_full(0.0).unwrap();
    p.on_result(
        mint.id,
        status(403, r#"{"code":"signature_required"}"#),
        1.0,
    );
    assert_eq!(p.halted().unwrap().code, "signature_required");
    assert_eq!(p.poll_full(2.0), None);
    p.enqueue("m2", user_ev("a", "alice"), sig("fresh"), 3.0)
        .unwrap();
    let mint = p.poll_full(3.0).unwrap();
    assert!(mint.body.contains("fresh"));
    p.on_result(mint.id, token("alice", 1, 900), 4.0);
    let r = p.poll_full(4.0).unwrap();
    assert_eq!(ids(&r), ["m1", "m2"], "nothing was lost while refused");
}

// ---- page lifecycle ------------------------------------------------------------------

#[test]
fn hiding_sends_everything_with_keepalive_at_once() {
    let mut p = pipeline(|_| {});
    record(&mut p, 3, 0.0);
    assert_eq!(p.poll_full(0.0), None, "not due yet");
    let reqs = p.hidden_full(1.0);
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].keepalive);
    assert_eq!(ids(&reqs[0]), ["m1", "m2", "m3"]);
    assert_eq!(p.stats().keepalive_requests, 1);
    assert_eq!(p.pending(), 3, "in flight until answered");
    p.on_result(reqs[0].id, ok(3), 2.0);
    assert_eq!(p.stats().sent, 3);
    assert_eq!(p.pending(), 0);
    assert_eq!(p.snapshot(), "");
}

#[test]
fn keepalive_bodies_stay_within_the_budget_and_the_rest_is_saved() {
    let mut p = pipeline(|_| {});
    let pad = "x".repeat(300);
    for i in 0..400 {
        let mut e = ev("big");
        e.properties = Some(format!(r#"{{"pad":"{pad}","i":{i}}}"#));
        p.enqueue(&format!("m{i}"), e, None, 0.0).unwrap();
    }
    let reqs = p.hidden_full(0.0);
    let total: usize = reqs.iter().map(|r| r.body.len()).sum();
    assert!(total <= KEEPALIVE_BUDGET_BYTES, "{total}");
    assert!(
        total > KEEPALIVE_BUDGET_BYTES - 1_000,
        "the budget is used: {total}"
    );
    let sent: usize = reqs.iter().map(|r| ids(r).len()).sum();
    assert!(sent > 100 && sent < 400, "{sent}");
    // A second hide while those are in flight has no budget left.
    assert!(p.hidden_full(1.0).is_empty());
    // The snapshot holds everything not known delivered, keepalive in flight included.
    let snap = p.snapshot();
    let saved = parse(&snap).unwrap();
    let saved = saved.get("events").and_then(Value::as_array).unwrap();
    assert_eq!(saved.len(), 400);
    assert_eq!(p.stats().unsaved, 0);
    // Once the keepalive answers arrive, they are no longer saved.
    for r in &reqs {
        p.on_result(r.id, ok(ids(r).len()), 2.0);
    }
    let after = parse(&p.snapshot()).unwrap();
    assert_eq!(
        after.get("events").and_then(Value::as_array).unwrap().len(),
        400 - sent
    );
}

#[test]
fn hiding_ignores_backoff_and_resume_ends_it() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 2, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.on_result(r.id, status(503, ""), 1.0);
    assert_eq!(p.poll_full(1.0), None, "backing off");
    let reqs = p.hidden_full(1.0);
    assert_eq!(reqs.len(), 1);
    assert_eq!(ids(&reqs[0]), ["m1", "m2"], "same message ids");
    p.on_result(reqs[0].id, status(503, ""), 2.0);
    assert_eq!(p.poll_full(2.0), None);
    p.resume(2.0);
    let again = p.poll_full(2.0).unwrap();
    assert_eq!(ids(&again), ["m1", "m2"]);
}

#[test]
fn hiding_with_a_public_key_sends_only_identities_with_a_token() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    p.enqueue("a1", anon_ev("x"), None, 0.0).unwrap();
    let mint = p.poll_full(0.0).unwrap();
    p.on_result(mint.id, token("anon-1", 1, 900), 1.0);
    let r = p.poll_full(1.0).unwrap();
    p.on_result(r.id, ok(1), 2.0);
    p.enqueue("u1", user_ev("y", "alice"), None, 3.0).unwrap();
    p.enqueue("a2", anon_ev("x"), None, 3.0).unwrap();
    let reqs = p.hidden_full(3.0);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].authorization, "Bearer tok-anon-1-1");
    assert_eq!(ids(&reqs[0]), ["a2"]);
    let snap = p.snapshot();
    assert!(snap.contains("u1") && snap.contains("a2"), "{snap}");
}

#[test]
fn a_snapshot_restores_into_a_new_page_with_the_same_message_ids() {
    let mut first = public(|_| {});
    first.enqueue("a1", anon_ev("x"), None, 0.0).unwrap();
    first
        .enqueue("u1", user_ev("y", "alice"), None, 0.0)
        .unwrap();
    let snap = first.snapshot();
    let mut next = public(|c| c.flush_at = Some(1.0));
    assert_eq!(next.restore(&snap, 10.0), 2);
    assert_eq!(next.stats().restored, 2);
    let mut seen = Vec::new();
    let mut now = 10.0;
    while let Some(r) = next.poll_full(now) {
        now += 1.0;
        if is_mint(&r) {
            let uid = if r.body.contains("anonymous_id") {
                "anon-1"
            } else {
                "alice"
            };
            next.on_result(r.id, token(uid, 1, 900), now);
        } else {
            seen.push((r.authorization.clone(), ids(&r)));
            next.on_result(r.id, ok(1), now);
        }
    }
    assert_eq!(
        seen,
        [
            ("Bearer tok-anon-1-1".to_string(), vec!["a1".to_string()]),
            ("Bearer tok-alice-1".to_string(), vec!["u1".to_string()])
        ]
    );
    for bad in [
        "",
        "[]",
        "{\"v\":2,\"events\":[]}",
        "{\"v\":1,\"events\":[1,\"{}\",\"nope\",\"{\\\"message_id\\\":\\\"m\\\"}\"]}",
    ] {
        assert_eq!(next.restore(bad, 0.0), 0, "{bad}");
    }
}

#[test]
fn a_snapshot_over_its_bound_keeps_the_newest() {
    let mut p = pipeline(|c| c.max_queue_bytes = Some(64.0 * 1024.0 * 1024.0));
    // 21,000 bytes an event, in strings within the caps.
    let pad = "y".repeat(7_000);
    for i in 0..80 {
        let mut e = ev("big");
        e.properties = Some(format!(r#"{{"a":"{pad}","b":"{pad}","c":"{pad}"}}"#));
        p.enqueue(&format!("m{i}"), e, None, 0.0).unwrap();
    }
    let snap = p.snapshot();
    assert!(snap.len() <= MAX_PERSIST_BYTES);
    let kept = parse(&snap).unwrap();
    let kept = kept.get("events").and_then(Value::as_array).unwrap();
    assert!(p.stats().unsaved > 0);
    assert_eq!(kept.len() as u64 + p.stats().unsaved, 80);
    assert!(kept.last().unwrap().as_str().unwrap().contains("\"m79\""));
}

/// Sends everything `p` has due from `now` on, answering each request 200; the message ids sent.
fn deliver_all(p: &mut Pipeline, mut now: f64) -> Vec<String> {
    let mut sent = Vec::new();
    while let Some(r) = p.poll_full(now) {
        now += 1.0;
        sent.extend(ids(&r));
        p.on_result(r.id, ok(1), now);
    }
    sent
}

#[test]
fn a_snapshot_another_page_took_is_not_sent_again_and_later_events_are() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    for i in 0..3 {
        p.enqueue(&format!("old{i}"), ev("x"), None, 0.0).unwrap();
    }
    // Hidden: the queue goes with keepalive (answered 503: the page froze) and is saved.
    let hidden = p.hidden_full(1.0);
    assert_eq!(hidden.len(), 1);
    p.on_result(hidden[0].id, status(503, ""), 2.0);
    let snap = p.snapshot();
    assert!(snap.contains("old2"));
    // Recorded after the snapshot (say by a timer before the page froze).
    p.enqueue("new0", ev("x"), None, 3.0).unwrap();
    // Back from the back/forward cache: another page took the snapshot.
    assert_eq!(p.hand_over(true, false), 3);
    assert_eq!(p.stats().handed_over, 3);
    assert_eq!(p.stats().dropped_total(), 0, "handed over is not dropped");
    p.resume(10.0); // shown again: no waiting out the backoff of the frozen page's 503
    assert_eq!(deliver_all(&mut p, 10.0), ["new0"]);
    assert_eq!(p.hand_over(true, false), 0, "once");
}

#[test]
fn a_snapshot_found_untaken_keeps_every_event() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    p.enqueue("a", ev("x"), None, 0.0).unwrap();
    p.snapshot();
    assert_eq!(p.hand_over(false, false), 0, "found untaken");
    assert_eq!(
        p.hand_over(true, false),
        0,
        "and forgotten: nothing is known to be taken"
    );
    assert_eq!(deliver_all(&mut p, 10.0), ["a"]);
}

#[test]
fn hand_over_leaves_what_the_snapshot_left_out_by_its_bound() {
    let mut p = pipeline(|c| {
        c.max_queue_bytes = Some(64.0 * 1024.0 * 1024.0);
        c.flush_at = Some(1.0);
    });
    let pad = "y".repeat(7_000);
    for i in 0..80 {
        let mut e = ev("big");
        e.properties = Some(format!(r#"{{"a":"{pad}","b":"{pad}","c":"{pad}"}}"#));
        p.enqueue(&format!("m{i}"), e, None, 0.0).unwrap();
    }
    p.snapshot();
    let unsaved = p.stats().unsaved as usize;
    assert!(unsaved > 0);
    assert_eq!(p.hand_over(true, false), 80 - unsaved);
    let sent = deliver_all(&mut p, 10.0);
    let want: Vec<String> = (0..unsaved).map(|i| format!("m{i}")).collect();
    assert_eq!(
        sent, want,
        "the oldest, which no snapshot held, are still sent"
    );
}

#[test]
fn a_racy_hand_over_gives_up_only_what_both_snapshots_held() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    p.enqueue("a", ev("x"), None, 0.0).unwrap();
    p.snapshot();
    p.enqueue("b", ev("x"), None, 1.0).unwrap();
    // Written over the first while another page may have been taking it.
    p.snapshot();
    assert_eq!(p.hand_over(true, true), 1);
    assert_eq!(deliver_all(&mut p, 10.0), ["b"]);
}

#[test]
fn a_batch_in_flight_that_was_taken_is_forgotten_and_its_answer_ignored() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    p.enqueue("a", ev("x"), None, 0.0).unwrap();
    p.enqueue("b", ev("x"), None, 0.0).unwrap();
    let r = p.poll_full(1.0).unwrap();
    p.snapshot();
    assert_eq!(p.hand_over(true, false), 2);
    assert_eq!(p.pending(), 0);
    p.on_result(r.id, ok(2), 2.0);
    assert_eq!(p.stats().sent, 0, "the other page counts them");
    assert_eq!(p.poll_full(3.0), None);
}

// ---- consent and caps ----------------------------------------------------------------

#[test]
fn pending_buffers_in_memory_and_granting_sends_each_event_once() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    p.set_consent(Consent::Pending);
    record(&mut p, 3, 0.0);
    assert_eq!(p.poll_full(0.0), None, "nothing sent while pending");
    assert_eq!(p.poll_full(1e9), None, "however long it waits");
    assert_eq!(p.next_wake(0.0), None, "no timer while pending");
    assert!(p.hidden_full(1.0).is_empty(), "no keepalive either");
    assert_eq!(p.snapshot(), "", "nothing to persist");
    let target = p.request_flush();
    assert!(p.is_flushed(target), "flush() does not wait for a choice");
    assert_eq!(p.pending(), 3);
    assert_eq!(p.stats().recorded, 3);
    p.set_consent(Consent::Granted);
    assert_eq!(p.consent(), Consent::Granted);
    assert!(!p.is_flushed(target));
    assert_eq!(
        p.next_wake(2.0),
        Some(2.0),
        "the buffered events go at once"
    );
    let r = p.poll_full(2.0).unwrap();
    assert_eq!(ids(&r), ["m1", "m2", "m3"]);
    p.on_result(r.id, ok(3), 3.0);
    assert!(p.is_flushed(target));
    assert_eq!(p.poll_full(3.0), None, "each event once");
    assert_eq!(p.stats().sent, 3);
    assert_eq!(p.stats().dropped_total(), 0);
}

#[test]
fn pending_keeps_the_queue_bounds() {
    let mut p = pipeline(|c| c.max_queue_events = Some(5.0));
    p.set_consent(Consent::Pending);
    record(&mut p, 8, 0.0);
    assert_eq!(p.queued(), 5);
    assert_eq!(p.stats().dropped(reason::QUEUE_OVERFLOW), 3);
}

#[test]
fn pending_sends_no_session_mint_either() {
    let mut p = public(|c| c.flush_at = Some(1.0));
    p.set_consent(Consent::Pending);
    p.enqueue("a1", anon_ev("x"), None, 0.0).unwrap();
    assert_eq!(p.poll_full(0.0), None);
    assert_eq!(p.stats().mints, 0);
    p.set_consent(Consent::Granted);
    let mint = p.poll_full(1.0).unwrap();
    assert!(is_mint(&mint));
}

#[test]
fn denying_discards_what_waits_and_counts_it() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    p.set_consent(Consent::Pending);
    record(&mut p, 4, 0.0);
    p.set_consent(Consent::Denied);
    assert_eq!(p.pending(), 0);
    assert_eq!(p.queued_bytes(), 0);
    assert_eq!(p.stats().dropped(reason::CONSENT_DENIED), 4);
    // Later events are discarded as they are recorded.
    record(&mut p, 2, 1.0);
    assert_eq!(p.pending(), 0);
    assert_eq!(p.stats().recorded, 6);
    assert_eq!(p.stats().dropped(reason::CONSENT_DENIED), 6);
    assert_eq!(p.poll_full(1e9), None);
    assert_eq!(p.next_wake(1.0), None);
    assert!(p.hidden_full(2.0).is_empty());
    assert_eq!(p.snapshot(), "");
    let target = p.request_flush();
    assert!(p.is_flushed(target));
    assert_eq!(p.restore(r#"{"v":1,"events":[]}"#, 2.0), 0);
    // Too large is still an error of the call, whatever the consent.
    let mut e = ev("big");
    let pad = "x".repeat(8_000);
    e.properties = Some(format!(
        r#"{{"a":"{pad}","b":"{pad}","c":"{pad}","d":"{pad}","e":"{pad}"}}"#
    ));
    assert_eq!(
        p.enqueue("big", e, None, 3.0).unwrap_err().code(),
        "event_too_large"
    );
    // Granting again resumes normal delivery of new events.
    p.set_consent(Consent::Granted);
    record(&mut p, 1, 4.0);
    let r = p.poll_full(4.0).unwrap();
    assert_eq!(ids(&r), ["m7"]);
}

#[test]
fn denying_while_a_batch_is_in_flight_never_sends_it_again() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 2, 0.0);
    let r = p.poll_full(0.0).unwrap();
    record(&mut p, 1, 0.0);
    p.set_consent(Consent::Denied);
    assert_eq!(
        p.stats().dropped(reason::CONSENT_DENIED),
        1,
        "the queued one"
    );
    let target = p.request_flush();
    assert!(p.is_flushed(target));
    // The answer asks for a retry: the batch is discarded instead.
    p.on_result(r.id, status(503, ""), 1.0);
    assert_eq!(p.stats().dropped(reason::CONSENT_DENIED), 3);
    assert_eq!(p.pending(), 0);
    assert_eq!(p.poll_full(1e9), None);
    // A success that was already on its way still counts as sent.
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 2, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.set_consent(Consent::Denied);
    p.on_result(r.id, ok(2), 1.0);
    assert_eq!(p.stats().sent, 2);
    assert_eq!(p.stats().dropped_total(), 0);
}

#[test]
fn granted_to_pending_stops_sending_and_keeps_the_events() {
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    record(&mut p, 1, 0.0);
    let r = p.poll_full(0.0).unwrap();
    p.set_consent(Consent::Pending);
    record(&mut p, 2, 0.0);
    p.on_result(r.id, status(503, ""), 1.0);
    assert_eq!(p.poll_full(1e9), None);
    assert_eq!(p.pending(), 3, "the retry waits too");
    p.set_consent(Consent::Granted);
    let mut seen = Vec::new();
    let mut now = 1e9;
    while let Some(r) = p.poll_full(now) {
        seen.extend(ids(&r));
        now += 1.0;
        p.on_result(r.id, ok(ids(&r).len()), now);
    }
    assert_eq!(seen, ["m1", "m2", "m3"]);
    assert_eq!(p.stats().sent, 3);
}

#[test]
fn discarded_events_count_as_recorded_and_dropped() {
    let mut p = pipeline(|_| {});
    p.discard(reason::BEFORE_SEND);
    assert_eq!(p.stats().recorded, 1);
    assert_eq!(p.stats().dropped(reason::BEFORE_SEND), 1);
    assert_eq!(p.pending(), 0);
}

#[test]
fn caps_apply_before_the_size_check_and_are_counted() {
    use crate::core::privacy::{MAX_KEYS, MAX_STRING_CHARS};
    let mut p = pipeline(|c| c.flush_at = Some(1.0));
    // 40,000 characters would be over 32 KiB; cut to 8,192 the event fits.
    let mut e = ev("long");
    e.properties = Some(format!(r#"{{"s":"{}"}}"#, "x".repeat(40_000)));
    e.traits = Some(format!(
        "{{{}}}",
        (0..300)
            .map(|i| format!(r#""t{i}":1"#))
            .collect::<Vec<_>>()
            .join(",")
    ));
    p.enqueue("m1", e, None, 0.0).unwrap();
    assert_eq!(p.stats().truncated, 1);
    assert_eq!(
        p.stats().truncated_by,
        Cuts {
            depth: 0,
            keys: 1,
            length: 1
        }
    );
    let logs = p.take_logs();
    assert_eq!(logs.len(), 1);
    assert!(logs[0].message.contains(&MAX_KEYS.to_string()));
    assert!(logs[0].message.contains("8,192") && MAX_STRING_CHARS == 8_192);
    record(&mut p, 1, 0.0);
    assert_eq!(
        p.stats().truncated,
        1,
        "an event within the caps is not counted"
    );
    let r = p.poll_full(0.0).unwrap();
    let body = parse(&r.body).unwrap();
    let first = &body.get("events").and_then(Value::as_array).unwrap()[0];
    let s = first
        .get("properties")
        .and_then(|p| p.get("s"))
        .and_then(Value::as_str);
    assert_eq!(s.map(str::len), Some(MAX_STRING_CHARS));
    let traits = first.get("traits").and_then(Value::as_object).unwrap();
    assert_eq!(traits.len(), MAX_KEYS);
    // Another truncation is counted, not logged again.
    let mut e = ev("long");
    e.properties = Some(format!(r#"{{"s":"{}"}}"#, "y".repeat(9_000)));
    p.enqueue("m3", e, None, 0.0).unwrap();
    assert_eq!(p.stats().truncated, 2);
    assert!(p.take_logs().is_empty());
}
