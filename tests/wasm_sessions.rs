//! Public keys and session tokens against the emulator. Browsers send an Origin, which the
//! session endpoint checks against the key's allowlist; Node sends none, so there a public key
//! is refused, clearly and once.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

fn anonymous(id: &str) -> JsValue {
    js(&format!(r#"{{"anonymousId":"{id}"}}"#))
}

fn track_run(c: &SegOpsClient, run: &str, name: &str) {
    c.track(js(&format!(
        r#"{{"eventType":"{name}","properties":{{"run":"{run}"}}}}"#
    )))
    .expect("track");
}

/// What an app's backend gives the page for `user`: `signUserId`'s output, signed now with the
/// signed test key's secret (the SDK's own signer). Also returns the signing time.
fn signed(user: &str) -> (JsValue, i64) {
    let now_s = (js_sys::Date::now() / 1000.0).floor() as i64;
    let sig = segops_sdk::core::sign::sign_user_id(signed_hmac_secret(), user, now_s);
    let value = js(&format!(
        r#"{{"userId":"{user}","userIdSig":"{sig}","userIdTs":{now_s}}}"#
    ));
    (value, now_s)
}

async fn shutdown(c: &SegOpsClient) {
    JsFuture::from(c.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_hundred_tracks_on_a_fresh_client_cause_one_mint() {
    if !is_browser() {
        return; // Node sends no Origin: see a_public_key_without_an_origin_is_refused_once.
    }
    let run = run_id("onemint");
    let cfg = with_get_user(config(public_key(), ""), anonymous(&run));
    let c = SegOpsClient::new(cfg).unwrap();
    for _ in 0..100 {
        track_run(&c, &run, "hundred");
    }
    flush(&c).await;
    let s = c.stats();
    assert_eq!(num(&s, "sent"), 100.0);
    assert_eq!(num(&s, "mints"), 1.0);
    assert_eq!(
        mints_for(api_url(), &run).await,
        1.0,
        "the server saw one mint"
    );
    let stored = stored_events(&run).await;
    assert_unique(&stored, 100);
    // The session forced the anonymous id to its uid.
    assert!(stored
        .iter()
        .all(|e| string(e, "anonymous_id").as_deref() == Some(run.as_str())));
    assert!(stored
        .iter()
        .all(|e| string(e, "auth").as_deref() == Some("session")));
    assert_eq!(
        token_like_in_storage(),
        "",
        "the token is kept in memory only"
    );
    shutdown(&c).await;
}

#[wasm_bindgen_test]
async fn a_public_key_outside_a_browser_sends_and_logs_nothing() {
    if is_browser() {
        return; // In a browser a public key works: the other tests here.
    }
    // What server-side rendering does with the seeds' module-scope client.
    let consoles: Vec<_> = ["error", "warn", "log"]
        .iter()
        .map(|m| capture_console(m))
        .collect();
    let c = client(public_key(), r#","debug":true"#);
    c.track(js(r#"{"eventType":"from_node"}"#)).unwrap();
    c.track_page_view(JsValue::UNDEFINED).unwrap();
    flush(&c).await;
    sleep(500).await;
    let s = c.stats();
    let printed: Vec<String> = consoles
        .iter()
        .flat_map(|c| {
            c.calls()
                .iter()
                .filter_map(|v| v.as_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for c in &consoles {
        c.restore();
    }
    assert_eq!(num(&s, "requests"), 0.0, "nothing sent, not even a mint");
    assert_eq!(num(&get(&s, "dropped"), "not_in_browser"), 1.0);
    assert_eq!(num(&s, "pending"), 0.0);
    assert!(printed.is_empty(), "{printed:?}");
    shutdown(&c).await;
}

#[wasm_bindgen_test]
async fn an_origin_off_the_allowlist_is_terminal_without_a_loop() {
    if !is_browser() {
        return; // A public key sends nothing outside a browser.
    }
    let (_, key) = create_key(
        "public",
        r#","allowed_origins":["https://elsewhere.example"]"#,
    )
    .await;
    let errors = capture_console("error");
    let c = client(&key, "");
    for _ in 0..5 {
        c.track(js(r#"{"eventType":"nope"}"#)).unwrap();
    }
    flush(&c).await; // resolves although nothing could be sent
    sleep(2_000).await;
    let s = c.stats();
    let calls = errors.calls();
    errors.restore();
    assert_eq!(
        string(&get(&s, "halted"), "code").as_deref(),
        Some("origin_not_allowed")
    );
    assert_eq!(num(&s, "mints"), 1.0);
    assert_eq!(num(&s, "requests"), 1.0);
    assert_eq!(num(&s, "pending"), 5.0);
    assert_eq!(calls.length(), 1, "{calls:?}");
    let text = calls.get(0).as_string().unwrap();
    assert!(
        text.contains("origin_not_allowed") && text.contains("allowed origins"),
        "{text}"
    );
    shutdown(&c).await;
}

#[wasm_bindgen_test]
async fn signed_user_ids_work_with_a_signature_and_fail_clearly_without() {
    if !is_browser() {
        return;
    }
    let run = run_id("signed");
    let user = format!("alice-{run}");
    let (signed_user, now_s) = signed(&user);
    let c = SegOpsClient::new(with_get_user(config(signed_public_key(), ""), signed_user)).unwrap();
    track_run(&c, &run, "signed_ok");
    flush(&c).await;
    assert_eq!(num(&c.stats(), "sent"), 1.0);
    let stored = stored_events(&run).await;
    assert_eq!(string(&stored[0], "user_id"), Some(user.clone()));
    shutdown(&c).await;

    let errors = capture_console("error");
    let unsigned = js(&format!(r#"{{"userId":"{user}-unsigned"}}"#));
    let c = SegOpsClient::new(with_get_user(config(signed_public_key(), ""), unsigned)).unwrap();
    track_run(&c, &run, "unsigned");
    flush(&c).await;
    let calls = errors.calls();
    errors.restore();
    let s = c.stats();
    assert_eq!(
        string(&get(&s, "halted"), "code").as_deref(),
        Some("signature_required")
    );
    assert_eq!(calls.length(), 1);
    assert!(calls.get(0).as_string().unwrap().contains("signUserId"));
    // A wrong signature is refused as such.
    let forged = js(&format!(
        r#"{{"userId":"{user}","userIdSig":"{}","userIdTs":{now_s}}}"#,
        "0".repeat(64)
    ));
    let errors = capture_console("error");
    let c2 = SegOpsClient::new(with_get_user(config(signed_public_key(), ""), forged)).unwrap();
    track_run(&c2, &run, "forged");
    flush(&c2).await;
    errors.restore();
    assert_eq!(
        string(&get(&c2.stats(), "halted"), "code").as_deref(),
        Some("signature_mismatch")
    );
    assert_eq!(
        stored_events(&run).await.len(),
        1,
        "nothing unsigned was stored"
    );
    shutdown(&c).await;
    shutdown(&c2).await;
}

#[wasm_bindgen_test]
async fn revoking_the_key_mid_session_stops_after_one_re_mint() {
    if !is_browser() {
        return;
    }
    let origin = page_origin().unwrap();
    let (id, key) = create_key("public", &format!(r#","allowed_origins":["{origin}"]"#)).await;
    let run = run_id("revokepk");
    let c = SegOpsClient::new(with_get_user(config(&key, ""), anonymous(&run))).unwrap();
    track_run(&c, &run, "before");
    flush(&c).await;
    assert_eq!(num(&c.stats(), "sent"), 1.0);
    revoke_key(&id).await;
    let errors = capture_console("error");
    for _ in 0..3 {
        track_run(&c, &run, "after");
    }
    flush(&c).await;
    let requests = num(&c.stats(), "requests");
    sleep(2_000).await;
    let s = c.stats();
    let calls = errors.calls();
    errors.restore();
    // mint, ingest, ingest (401), re-mint (401): then nothing.
    assert_eq!(requests, 4.0);
    assert_eq!(num(&s, "requests"), 4.0, "no hot loop");
    assert_eq!(num(&s, "mints"), 2.0);
    assert_eq!(num(&s, "remints"), 1.0);
    assert_eq!(
        string(&get(&s, "halted"), "code").as_deref(),
        Some("api_key_revoked")
    );
    assert_eq!(num(&s, "pending"), 3.0);
    assert_eq!(calls.length(), 1, "{calls:?}");
    assert_eq!(stored_events(&run).await.len(), 1);
    shutdown(&c).await;
}

#[wasm_bindgen_test]
async fn each_event_is_delivered_under_the_identity_it_was_recorded_with() {
    if !is_browser() {
        return;
    }
    let run = run_id("switch");
    let visitor = format!("visitor-{run}");
    let alice = format!("alice-{run}");
    let source = switchable_user(anonymous(&visitor));
    let c = SegOpsClient::new(with_user_source(config(public_key(), ""), &source)).unwrap();
    for _ in 0..3 {
        track_run(&c, &run, "browsing");
    }
    // Logs in before anything was sent: the queued events stay the visitor's.
    source.set(js(&format!(r#"{{"userId":"{alice}"}}"#)));
    for _ in 0..2 {
        track_run(&c, &run, "buying");
    }
    // Logs out.
    source.set(JsValue::NULL);
    track_run(&c, &run, "gone");
    flush(&c).await;
    let stored = stored_events(&run).await;
    assert_unique(&stored, 6);
    for e in &stored {
        let name = string(e, "event_type").unwrap();
        match name.as_str() {
            "browsing" => {
                assert_eq!(string(e, "anonymous_id"), Some(visitor.clone()));
                assert!(get(e, "user_id").is_null());
            }
            "buying" => assert_eq!(string(e, "user_id"), Some(alice.clone())),
            "gone" => {
                assert_eq!(string(e, "anonymous_id"), Some(c.anonymous_id()));
                assert!(get(e, "user_id").is_null());
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(num(&c.stats(), "mints"), 3.0, "one per identity");
    shutdown(&c).await;
}

#[wasm_bindgen_test]
async fn a_session_of_three_lifetimes_keeps_sending_without_a_401() {
    if !is_browser() {
        return;
    }
    let run = run_id("longsession");
    let cfg = with_get_user(
        config_at(
            short_api_url(),
            short_public_key(),
            r#","flushIntervalMs":250"#,
        ),
        anonymous(&run),
    );
    let c = SegOpsClient::new(cfg).unwrap();
    // 8 s tokens; 25 s of activity, an event every 500 ms.
    let mut n = 0;
    for _ in 0..50 {
        track_run(&c, &run, "steady");
        n += 1;
        sleep(500).await;
    }
    flush(&c).await;
    let s = c.stats();
    assert_eq!(num(&s, "sent"), f64::from(n));
    assert_eq!(
        num(&s, "remints"),
        0.0,
        "never refused: renewed ahead of expiry"
    );
    let mints = num(&s, "mints");
    assert!(
        (3.0..=8.0).contains(&mints),
        "renewed about every 4 s: {mints}"
    );
    assert!(num(&s, "tokenExpiresInMs") > 0.0);
    assert_eq!(mints_for(short_api_url(), &run).await, mints);
    assert_unique(&stored_events_at(short_api_url(), &run).await, n as usize);
    assert_eq!(token_like_in_storage(), "");
    shutdown(&c).await;
}

#[wasm_bindgen_test]
async fn identify_first_on_a_signed_key_uses_get_users_signature() {
    if !is_browser() {
        return;
    }
    let run = run_id("identifyfirst");
    let user = format!("carol-{run}");
    let (signed_user, _) = signed(&user);
    let c = SegOpsClient::new(with_get_user(config(signed_public_key(), ""), signed_user)).unwrap();
    // identify() names its user, so getUser() is not asked for the identity; its signature for
    // that same user is still what the session needs.
    c.identify(js(&format!(
        r#"{{"userId":"{user}","traits":{{"run":"{run}"}}}}"#
    )))
    .unwrap();
    track_run(&c, &run, "after_identify");
    flush(&c).await;
    let s = c.stats();
    assert!(
        get(&s, "halted").is_null(),
        "{:?}",
        js_sys::JSON::stringify(&s)
    );
    assert_eq!(num(&s, "sent"), 2.0);
    assert_eq!(num(&s, "mints"), 1.0);
    shutdown(&c).await;
}
