//! Consent states and the caps on what is recorded.

use super::*;

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
