//! The client against the emulator, in Node, headless Chromium and headless Firefox (the same
//! file runs in all three; `cargo xtask test` picks the runtime).
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

fn track(c: &SegOpsClient, run: &str, name: &str, i: usize) {
    c.track(js(&format!(
        r#"{{"eventType":"{name}","userId":"u-{}","properties":{{"run":"{run}","i":{i}}}}}"#,
        i % 7
    )))
    .expect("track");
}

#[wasm_bindgen_test]
async fn a_thousand_events_arrive_exactly_once() {
    let run = run_id("thousand");
    let c = client(secret_key(), "");
    for i in 0..1000 {
        track(&c, &run, "burst", i);
    }
    flush(&c).await;
    let stats = c.stats();
    assert_eq!(num(&stats, "sent"), 1000.0);
    assert_eq!(num(&stats, "pending"), 0.0);
    assert_eq!(num(&stats, "droppedTotal"), 0.0);
    assert!(
        num(&stats, "requests") <= 2.0,
        "a burst goes out in one or two requests"
    );
    let stored = stored_events(&run).await;
    assert_unique(&stored, 1000);
    let first = &stored[0];
    assert_eq!(string(first, "type").as_deref(), Some("track"));
    assert_eq!(string(first, "event_type").as_deref(), Some("burst"));
    let lib = get(&get(first, "context"), "library");
    assert_eq!(string(&lib, "name").as_deref(), Some("@segops/sdk"));
    if is_browser() {
        let page = get(&get(first, "context"), "page");
        assert!(string(&page, "url")
            .unwrap_or_default()
            .starts_with("http://"));
    }
    let _ = c.shutdown();
}

#[wasm_bindgen_test]
async fn identify_and_page_are_delivered_with_their_shapes() {
    let run = run_id("shapes");
    let c = client(secret_key(), "");
    c.identify(js(&format!(
        r#"{{"userId":"alice","traits":{{"plan":"pro","run":"{run}"}}}}"#
    )))
    .unwrap();
    // identify() makes alice the user of later calls that name nobody.
    c.page(js(&format!(
        r#"{{"name":"Pricing","properties":{{"run":"{run}"}}}}"#
    )))
    .unwrap();
    c.track(js(&format!(
        r#"{{"eventType":"dated","timestamp":"2026-01-02T03:04:05.678Z","properties":{{"run":"{run}"}}}}"#
    )))
    .unwrap();
    flush(&c).await;
    let stored = stored_events(&run).await;
    assert_eq!(stored.len(), 2, "page and track carry properties.run");
    let page = stored
        .iter()
        .find(|e| string(e, "type").as_deref() == Some("page"))
        .unwrap();
    assert_eq!(string(page, "event_type").as_deref(), Some("page_viewed"));
    assert_eq!(
        string(&get(page, "properties"), "name").as_deref(),
        Some("Pricing")
    );
    assert_eq!(string(page, "user_id").as_deref(), Some("alice"));
    assert_eq!(string(page, "anonymous_id"), Some(c.anonymous_id()));
    let dated = stored
        .iter()
        .find(|e| string(e, "event_type").as_deref() == Some("dated"))
        .unwrap();
    assert_eq!(
        string(dated, "timestamp").as_deref(),
        Some("2026-01-02T03:04:05.678Z")
    );
    let s = c.stats();
    assert_eq!(
        num(&s, "sent"),
        3.0,
        "identify has no properties.run but was sent"
    );
}

#[wasm_bindgen_test]
async fn get_user_supplies_the_identity_and_anonymous_is_the_fallback() {
    let run = run_id("getuser");
    let cfg = with_get_user(config(secret_key(), ""), js(r#"{"userId":"bob"}"#));
    let c = SegOpsClient::new(cfg).unwrap();
    track(&c, &run, "with_get_user", 0);
    c.track(js(&format!(
        r#"{{"eventType":"anon_explicit","anonymousId":"visitor-9","properties":{{"run":"{run}"}}}}"#
    )))
    .unwrap();
    flush(&c).await;
    let anon = client(secret_key(), "");
    anon.track(js(&format!(
        r#"{{"eventType":"anon_default","properties":{{"run":"{run}"}}}}"#
    )))
    .unwrap();
    flush(&anon).await;
    let stored = stored_events(&run).await;
    let by = |name: &str| by_event_type(&stored, name);
    // An explicit userId beats getUser().
    assert_eq!(
        string(&by("with_get_user"), "user_id").as_deref(),
        Some("u-0")
    );
    let explicit = by("anon_explicit");
    assert_eq!(
        string(&explicit, "anonymous_id").as_deref(),
        Some("visitor-9")
    );
    assert!(get(&explicit, "user_id").is_null());
    let default = by("anon_default");
    assert_eq!(string(&default, "anonymous_id"), Some(anon.anonymous_id()));
    // getUser() is used when the call names nobody.
    let run2 = run_id("getuser2");
    c.track(js(&format!(
        r#"{{"eventType":"gu","properties":{{"run":"{run2}"}}}}"#
    )))
    .unwrap();
    flush(&c).await;
    let stored = stored_events(&run2).await;
    assert_eq!(string(&stored[0], "user_id").as_deref(), Some("bob"));
}

#[wasm_bindgen_test]
async fn flush_and_shutdown_semantics() {
    let run = run_id("shutdown");
    let c = client(secret_key(), r#","flushIntervalMs":600000"#);
    // flush() with nothing queued resolves at once.
    flush(&c).await;
    track(&c, &run, "before_shutdown", 0);
    track(&c, &run, "before_shutdown", 1);
    assert_eq!(num(&c.stats(), "sent"), 0.0, "the interval has not passed");
    let done = c.shutdown();
    // Calls after shutdown() throw a clear error and lose nothing already accepted.
    let e = c
        .track(js(r#"{"eventType":"late"}"#))
        .expect_err("track after shutdown");
    assert_eq!(error_code(&e).as_deref(), Some("client_shut_down"));
    assert!(error_message(&e).unwrap().contains("shut down"));
    assert_eq!(
        error_code(&c.flush().expect_err("flush after shutdown")).as_deref(),
        Some("client_shut_down")
    );
    JsFuture::from(done).await.unwrap();
    assert_eq!(num(&c.stats(), "sent"), 2.0);
    // A second shutdown() resolves too.
    JsFuture::from(c.shutdown()).await.unwrap();
    assert_unique(&stored_events(&run).await, 2);
}

#[wasm_bindgen_test]
async fn a_secret_key_in_a_browser_warns_exactly_once() {
    let warn = capture_console("warn");
    let c = client(secret_key(), "");
    c.track(js(r#"{"eventType":"warned"}"#)).unwrap();
    c.track(js(r#"{"eventType":"warned"}"#)).unwrap();
    let calls = warn.calls();
    warn.restore();
    if is_browser() {
        assert_eq!(calls.length(), 1, "one warning: {:?}", calls);
        let text = calls.get(0).as_string().unwrap();
        assert!(text.contains("sk_") && text.contains("pk_"), "{text}");
    } else {
        assert_eq!(calls.length(), 0, "no warning on a server");
    }
    JsFuture::from(c.shutdown()).await.unwrap();
}

fn config_error(cfg: JsValue) -> (String, String, String) {
    let e = match SegOpsClient::new(cfg) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e,
    };
    assert_eq!(error_name(&e).as_deref(), Some("SegOpsError"));
    (
        error_code(&e).unwrap_or_default(),
        error_field(&e).unwrap_or_default(),
        error_message(&e).unwrap_or_default(),
    )
}

#[wasm_bindgen_test]
fn bad_config_is_refused_naming_the_field() {
    let url = api_url();
    let cases: &[(&str, &str, &str)] = &[
        (r#"{"apiKey":"sk_x"}"#, "apiUrl", "required"),
        (r#"{"apiUrl":"ftp://x","apiKey":"sk_x"}"#, "apiUrl", "http"),
        (r#"{"apiUrl":42,"apiKey":"sk_x"}"#, "apiUrl", "got a number"),
        ("{\"apiUrl\":\"URL\"}", "apiKey", "required"),
        (
            "{\"apiUrl\":\"URL\",\"apiKey\":\"sk_x\",\"flushAt\":0}",
            "flushAt",
            "from 1",
        ),
        (
            "{\"apiUrl\":\"URL\",\"apiKey\":\"sk_x\",\"flushAt\":\"5\"}",
            "flushAt",
            "a number",
        ),
        (
            "{\"apiUrl\":\"URL\",\"apiKey\":\"sk_x\",\"flushat\":5}",
            "flushat",
            "unknown field",
        ),
        (
            "{\"apiUrl\":\"URL\",\"apiKey\":\"sk_x\",\"debug\":1}",
            "debug",
            "a boolean",
        ),
        (
            "{\"apiUrl\":\"URL\",\"apiKey\":\"sk_x\",\"getUser\":\"me\"}",
            "getUser",
            "a function",
        ),
        (
            "{\"apiUrl\":\"URL\",\"apiKey\":\"sk_x\",\"maxBatchBytes\":1e9}",
            "maxBatchBytes",
            "524288",
        ),
    ];
    for (json, field, words) in cases {
        let (code, got_field, message) = config_error(js(&json.replace("URL", url)));
        assert_eq!(code, "invalid_config", "{json}");
        assert_eq!(&got_field, field, "{json}");
        assert!(
            message.contains(field) && message.contains(words),
            "{json}: {message}"
        );
    }
    let (code, field, message) =
        config_error(js(&format!(r#"{{"apiUrl":"{url}","apiKey":"mk_live_x"}}"#)));
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("mcp_key_not_allowed", "apiKey")
    );
    assert!(message.contains("MCP"));
    let (code, ..) = config_error(js(&format!(r#"{{"apiUrl":"{url}","apiKey":"live_x"}}"#)));
    assert_eq!(code, "invalid_api_key");
    let (code, ..) = config_error(JsValue::from_str("sk_x"));
    assert_eq!(code, "invalid_config");
    let (code, ..) = config_error(JsValue::UNDEFINED);
    assert_eq!(code, "invalid_config");
}

#[wasm_bindgen_test]
async fn bad_events_throw_clear_errors_and_lose_nothing() {
    let run = run_id("badinput");
    let c = client(secret_key(), "");
    track(&c, &run, "kept", 0);
    let expect = |arg: JsValue, field: &str, words: &str| {
        let e = c.track(arg).expect_err("refused");
        assert_eq!(
            error_code(&e).as_deref(),
            Some("invalid_argument"),
            "{field}"
        );
        assert_eq!(error_field(&e).as_deref(), Some(field));
        let m = error_message(&e).unwrap();
        assert!(m.contains(field) && m.contains(words), "{m}");
    };
    expect(js(r#"{}"#), "track.eventType", "required");
    expect(js(r#"{"eventType":""}"#), "track.eventType", "non-empty");
    expect(js(r#"{"eventType":5}"#), "track.eventType", "got a number");
    expect(
        js(r#"{"event_type":"x"}"#),
        "track.event_type",
        "unknown field",
    );
    expect(
        js(r#"{"eventType":"x","properties":[1]}"#),
        "track.properties",
        "an array",
    );
    expect(
        js(r#"{"eventType":"x","properties":"s"}"#),
        "track.properties",
        "expected an object",
    );
    expect(
        js(r#"{"eventType":"x","userId":""}"#),
        "track.userId",
        "non-empty",
    );
    expect(
        js(r#"{"eventType":"x","timestamp":"yesterday"}"#),
        "track.timestamp",
        "RFC 3339",
    );
    expect(cyclic(), "track.properties", "cycle");
    expect(with_function(), "track.properties", "function");
    expect(with_bigint(), "track.properties", "bigint");
    expect(with_symbol(), "track.properties", "symbol");
    expect(throwing_getter(), "track.properties", "threw");
    let e = c.track(JsValue::from_str("click")).unwrap_err();
    assert_eq!(error_field(&e).as_deref(), Some("track"));
    // Over 32 KiB in strings within the 8,192-character cap (a longer one is cut, not refused).
    let pad = "x".repeat(8_000);
    let big = format!(
        r#"{{"eventType":"x","properties":{{"a":"{pad}","b":"{pad}","c":"{pad}","d":"{pad}","e":"{pad}"}}}}"#
    );
    let e = c.track(js(&big)).unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("event_too_large"));
    let e = c.identify(js(r#"{"traits":{}}"#)).unwrap_err();
    assert_eq!(error_field(&e).as_deref(), Some("identify.userId"));
    let e = c.page(js(r#"{"title":"x"}"#)).unwrap_err();
    assert_eq!(error_field(&e).as_deref(), Some("page.title"));
    // A getUser that throws is a clear error too.
    let bad_user = SegOpsClient::new(with_throwing_get_user(config(secret_key(), ""))).unwrap();
    let e = bad_user.track(js(r#"{"eventType":"x"}"#)).unwrap_err();
    assert_eq!(error_field(&e).as_deref(), Some("getUser"));
    JsFuture::from(bad_user.shutdown()).await.unwrap();
    // NaN and Infinity become null, as JSON.stringify does; lone surrogates are repaired.
    c.track(js(&format!(
        r#"{{"eventType":"odd \ud800 name","properties":{{"run":"{run}","s":"\udc00x"}}}}"#
    )))
    .unwrap();
    flush(&c).await;
    let stored = stored_events(&run).await;
    assert_unique(&stored, 2);
    assert_eq!(num(&c.stats(), "droppedTotal"), 0.0);
}

#[wasm_bindgen_test]
async fn faults_end_with_every_event_stored_once() {
    let run = run_id("faults");
    clear_faults().await;
    fault(r#"{"path_prefix":"/api/ingestion/track/","status":503,"count":2}"#).await;
    let c = client(secret_key(), "");
    for i in 0..50 {
        track(&c, &run, "under_503", i);
    }
    flush(&c).await;
    let s = c.stats();
    assert_eq!(num(&s, "sent"), 50.0);
    assert!(
        num(&s, "retried") >= 100.0,
        "two failed attempts of 50 events"
    );
    assert_eq!(num(&s, "requests"), 3.0);

    fault(r#"{"path_prefix":"/api/ingestion/track/","status":429,"count":1,"retry_after":"1"}"#)
        .await;
    for i in 50..60 {
        track(&c, &run, "under_429", i);
    }
    flush(&c).await;

    // A lost answer: the server stored the batch, the client saw a 500 and sent it again.
    fault(r#"{"path_prefix":"/api/ingestion/track/","status":500,"count":1,"after_commit":true}"#)
        .await;
    for i in 60..70 {
        track(&c, &run, "lost_answer", i);
    }
    flush(&c).await;
    let s = c.stats();
    assert_eq!(num(&s, "sent"), 70.0);
    assert_eq!(
        num(&s, "duplicates"),
        10.0,
        "the retry was recognized as a duplicate"
    );
    assert_eq!(num(&s, "droppedTotal"), 0.0);
    clear_faults().await;
    assert_unique(&stored_events(&run).await, 70);
    JsFuture::from(c.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_revoked_key_stops_sending_without_a_hot_loop() {
    let run = run_id("revoked");
    let (id, key) = create_key("secret", "").await;
    let c = client(&key, "");
    track(&c, &run, "before_revoke", 0);
    flush(&c).await;
    assert_eq!(num(&c.stats(), "sent"), 1.0);
    revoke_key(&id).await;
    let errors = capture_console("error");
    for i in 1..6 {
        track(&c, &run, "after_revoke", i);
    }
    flush(&c).await; // resolves: sending has stopped for good
    let requests = num(&c.stats(), "requests");
    sleep(2_500).await;
    let s = c.stats();
    let calls = errors.calls();
    errors.restore();
    assert_eq!(
        num(&s, "requests"),
        requests,
        "no request after the refusal"
    );
    assert_eq!(requests, 2.0);
    assert_eq!(
        string(&get(&s, "halted"), "code").as_deref(),
        Some("api_key_revoked")
    );
    assert_eq!(num(&s, "pending"), 5.0, "events stay queued");
    assert_eq!(calls.length(), 1, "reported once: {calls:?}");
    assert!(calls
        .get(0)
        .as_string()
        .unwrap()
        .contains("api_key_revoked"));
    assert_unique(&stored_events(&run).await, 1);
}
