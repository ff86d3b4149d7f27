//! The page lifecycle: hiding with keepalive, snapshots and their hand-over.

use super::*;

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
