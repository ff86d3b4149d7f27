//! The pipeline driven with a fake clock and scripted answers: sending, batching, retries and
//! answers here; sessions, the page lifecycle and consent in the submodules.

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

// Public keys.

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

mod consent;
mod page;
mod sessions;
