//! Public keys: session tokens minted, renewed and re-minted; identities and signatures.

use super::*;

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
