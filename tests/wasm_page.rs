//! Page views, AI referrals, visits and the page lifecycle (hide, save, restore, back/forward
//! cache), in Chromium, Firefox and WebKit; in Node, trackPageView is a harmless no-op.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen(inline_js = r#"
export function setReferrer(value) {
  Object.defineProperty(document, "referrer", { value, configurable: true });
}
export function clearReferrer() { delete document.referrer; }
export function setLanding(search) { history.replaceState(null, "", location.pathname + search); }
export function savedKeys() {
  const out = [];
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (k.startsWith("segops.pending.")) out.push(k);
  }
  return out.length;
}
// Back from the back/forward cache: visible again, announced by pageshow with persisted (and no
// visibilitychange, to prove pageshow alone is enough).
export function showFromCache() {
  delete document.visibilityState;
  delete document.hidden;
  let e;
  try {
    e = new PageTransitionEvent("pageshow", { persisted: true });
  } catch (_) {
    e = new Event("pageshow");
    Object.defineProperty(e, "persisted", { value: true });
  }
  window.dispatchEvent(e);
}
export function breakStorage() {
  const original = Storage.prototype.setItem;
  Storage.prototype.setItem = function () { throw new DOMException("full", "QuotaExceededError"); };
  return () => { Storage.prototype.setItem = original; };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = setReferrer)]
    fn set_referrer(value: &str);
    #[wasm_bindgen(js_name = clearReferrer)]
    fn clear_referrer();
    #[wasm_bindgen(js_name = setLanding)]
    fn set_landing(search: &str);
    #[wasm_bindgen(js_name = savedKeys)]
    fn saved_keys() -> u32;
    #[wasm_bindgen(js_name = breakStorage)]
    fn break_storage() -> js_sys::Function;
    #[wasm_bindgen(js_name = showFromCache)]
    fn show_from_cache();
}

fn visitor(run: &str) -> JsValue {
    js(&format!(r#"{{"anonymousId":"{run}"}}"#))
}

fn page_client(run: &str, extra: &str) -> SegOpsClient {
    SegOpsClient::new(with_get_user(config(public_key(), extra), visitor(run))).unwrap()
}

async fn by_type(run: &str) -> Vec<(String, JsValue)> {
    // Events of a run are found by their anonymous id (page views carry no properties.run).
    let auth = owner().await;
    let (_, v) = call("GET", "/api/events/?limit=1000&after=0", Some(&auth), None).await;
    let mut after = 0f64;
    let mut out = Vec::new();
    let mut page = v;
    loop {
        let events: js_sys::Array = get(&page, "events").unchecked_into();
        if events.length() == 0 {
            return out;
        }
        for e in events.iter() {
            if string(&e, "anonymous_id").as_deref() == Some(run) {
                out.push((string(&e, "event_type").unwrap_or_default(), e));
            }
        }
        after = num(&page, "next_after").max(after);
        page = call(
            "GET",
            &format!("/api/events/?limit=1000&after={after}"),
            Some(&auth),
            None,
        )
        .await
        .1;
    }
}

#[wasm_bindgen_test]
async fn track_page_view_is_a_no_op_outside_a_browser() {
    if is_browser() {
        return;
    }
    let c = client(public_key(), "");
    c.track_page_view(JsValue::UNDEFINED).unwrap();
    c.track_page_view(js(r#"{"properties":{"a":1}}"#)).unwrap();
    assert_eq!(num(&c.stats(), "recorded"), 0.0);
    JsFuture::from(c.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_visit_from_chatgpt_emits_an_ai_referral_session_once() {
    if !is_browser() {
        return;
    }
    let run = run_id("chatgpt");
    set_landing("?utm_campaign=spring");
    set_referrer("https://chatgpt.com/c/abc?q=best+running+shoes");
    let c = page_client(&run, "");
    c.track_page_view(js(r#"{"properties":{"section":"home"}}"#))
        .unwrap();
    // An SPA navigation: the referrer does not change, and no second referral is emitted.
    c.track_page_view(JsValue::UNDEFINED).unwrap();
    flush(&c).await;
    clear_referrer();
    set_landing("");
    let events = by_type(&run).await;
    let views: Vec<&JsValue> = events
        .iter()
        .filter(|(t, _)| t == "page_viewed")
        .map(|(_, e)| e)
        .collect();
    let referrals: Vec<&JsValue> = events
        .iter()
        .filter(|(t, _)| t == "ai_referral_session")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(views.len(), 2);
    assert_eq!(referrals.len(), 1);
    let p = get(referrals[0], "properties");
    assert_eq!(string(&p, "source_provider").as_deref(), Some("chatgpt"));
    assert_eq!(
        string(&p, "query_hint").as_deref(),
        Some("best running shoes")
    );
    assert!(string(&p, "landing_url")
        .unwrap()
        .contains("utm_campaign=spring"));
    assert_eq!(
        string(&p, "referrer_url").as_deref(),
        Some("https://chatgpt.com/c/abc?q=best+running+shoes")
    );
    let first = views
        .iter()
        .find(|v| string(&get(v, "properties"), "section").is_some())
        .unwrap();
    let vp = get(first, "properties");
    assert_eq!(string(&vp, "utm_campaign").as_deref(), Some("spring"));
    assert!(string(&vp, "url").unwrap().starts_with("http://127.0.0.1"));
    assert!(string(&vp, "title").is_some() && string(&vp, "path").is_some());
    assert_eq!(string(first, "type").as_deref(), Some("page"));
    JsFuture::from(c.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn an_empty_referrer_falls_back_to_utm_source_and_lookalikes_do_not_count() {
    if !is_browser() {
        return;
    }
    let run = run_id("utm");
    set_referrer("");
    set_landing("?utm_source=perplexity&utm_term=crm+tools");
    let c = page_client(&run, "");
    c.track_page_view(JsValue::UNDEFINED).unwrap();
    flush(&c).await;
    let run2 = run_id("lookalike");
    set_landing("");
    set_referrer("https://chatgpt.com.evil.net/");
    let c2 = page_client(&run2, "");
    c2.track_page_view(JsValue::UNDEFINED).unwrap();
    flush(&c2).await;
    // A provider added through config.
    let run3 = run_id("custom");
    set_referrer("https://assistant.example.org/chat");
    let c3 = page_client(
        &run3,
        r#","aiProviders":[{"name":"example_ai","hosts":["assistant.example.org"]}]"#,
    );
    c3.track_page_view(JsValue::UNDEFINED).unwrap();
    flush(&c3).await;
    clear_referrer();

    let events = by_type(&run).await;
    let r = events
        .iter()
        .find(|(t, _)| t == "ai_referral_session")
        .expect("utm referral");
    let p = get(&r.1, "properties");
    assert_eq!(string(&p, "source_provider").as_deref(), Some("perplexity"));
    assert_eq!(string(&p, "query_hint").as_deref(), Some("crm tools"));
    assert_eq!(string(&p, "referrer_url").as_deref(), Some(""));
    let events2 = by_type(&run2).await;
    assert_eq!(events2.len(), 1, "only the page view: {}", events2.len());
    let events3 = by_type(&run3).await;
    let r3 = events3
        .iter()
        .find(|(t, _)| t == "ai_referral_session")
        .expect("custom");
    assert_eq!(
        string(&get(&r3.1, "properties"), "source_provider").as_deref(),
        Some("example_ai")
    );
    // A bad provider is refused naming it.
    let e = match SegOpsClient::new(config(
        public_key(),
        r#","aiProviders":[{"name":"x","hosts":["https://bad/"]}]"#,
    )) {
        Err(e) => e,
        Ok(_) => panic!("accepted"),
    };
    assert_eq!(error_field(&e).as_deref(), Some("aiProviders[0]"));
    for c in [c, c2, c3] {
        JsFuture::from(c.shutdown()).await.unwrap();
    }
}

/// The visit's id and attribution of a stored event.
fn visit_of(e: &JsValue) -> (Option<String>, JsValue) {
    let context = get(e, "context");
    (string(&context, "session_id"), get(&context, "attribution"))
}

#[wasm_bindgen_test]
async fn the_clients_of_an_origin_share_a_visit_and_reset_starts_a_new_one() {
    if !is_browser() {
        return;
    }
    let run = run_id("visit");
    set_referrer("");
    set_landing(&format!("?utm_source=chatgpt.com&utm_campaign={run}"));
    // One tab: a visit from ChatGPT (the utm fallback), its page view, an event.
    let a = SegOpsClient::new(config(public_key(), "")).unwrap();
    JsFuture::from(a.ready()).await.unwrap();
    let anon = a.anonymous_id();
    a.track_page_view(JsValue::UNDEFINED).unwrap();
    a.track(js(r#"{"eventType":"added_to_cart"}"#)).unwrap();
    flush(&a).await;
    let visit = a.session_id().expect("a visit");
    // Another tab of the origin on the same landing URL (as a reload would be): the same visit,
    // and no second referral.
    let b = SegOpsClient::new(config(public_key(), "")).unwrap();
    JsFuture::from(b.ready()).await.unwrap();
    assert_eq!(b.session_id().as_deref(), Some(visit.as_str()));
    b.track_page_view(JsValue::UNDEFINED).unwrap();
    set_landing("?step=2");
    b.track_page_view(JsValue::UNDEFINED).unwrap(); // a route change, the campaign left behind
                                                    // Logout: the event recorded just before reset() in the same tick is the old visitor's.
    b.track(js(r#"{"eventType":"logged_out"}"#)).unwrap();
    b.reset();
    b.track(js(r#"{"eventType":"after_logout"}"#)).unwrap();
    flush(&b).await;
    set_landing("");
    let anon2 = b.anonymous_id();
    let visit2 = b.session_id().expect("a new visit");
    assert_ne!(anon2, anon, "reset() gives a new anonymous id");
    assert_ne!(visit2, visit, "reset() starts a new visit");

    let before = by_type(&anon).await;
    let types: Vec<&str> = before.iter().map(|(t, _)| t.as_str()).collect();
    let count = |t: &str| types.iter().filter(|x| **x == t).count();
    assert_eq!(count("ai_referral_session"), 1, "{types:?}");
    assert_eq!(count("page_viewed"), 3, "{types:?}");
    assert_eq!(count("added_to_cart") + count("logged_out"), 2, "{types:?}");
    assert_eq!(before.len(), 6, "{types:?}");
    for (t, e) in &before {
        let (id, attribution) = visit_of(e);
        assert_eq!(id.as_deref(), Some(visit.as_str()), "{t}: session_id");
        assert_eq!(
            string(&attribution, "utm_campaign").as_deref(),
            Some(run.as_str()),
            "{t}: attribution"
        );
        assert_eq!(
            string(&attribution, "source_provider").as_deref(),
            Some("chatgpt"),
            "{t}: attribution"
        );
    }
    let referral = &before
        .iter()
        .find(|(t, _)| t == "ai_referral_session")
        .unwrap()
        .1;
    assert_eq!(
        string(&get(referral, "properties"), "session_id").as_deref(),
        Some(visit.as_str())
    );
    let after = by_type(&anon2).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, "after_logout");
    let (id, attribution) = visit_of(&after[0].1);
    assert_eq!(id.as_deref(), Some(visit2.as_str()));
    assert!(
        attribution.is_undefined(),
        "a visit after reset() has no attribution"
    );
    for c in [a, b] {
        JsFuture::from(c.shutdown()).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn hiding_the_page_sends_queued_events_with_keepalive() {
    if !is_browser() {
        return;
    }
    let run = run_id("hide");
    let c = page_client(&run, r#","flushIntervalMs":600000"#);
    // Get a token first: a hidden page never waits for a mint.
    c.track(js(&format!(
        r#"{{"eventType":"warm","properties":{{"run":"{run}"}}}}"#
    )))
    .unwrap();
    flush(&c).await;
    for _ in 0..5 {
        c.track(js(&format!(
            r#"{{"eventType":"before_hide","properties":{{"run":"{run}"}}}}"#
        )))
        .unwrap();
    }
    assert_eq!(num(&c.stats(), "pending"), 5.0, "waiting for the interval");
    set_hidden(true);
    assert_eq!(num(&c.stats(), "keepaliveRequests"), 1.0);
    // A second signal of the same hiding (pagehide) sends nothing more.
    set_hidden(true);
    assert_eq!(num(&c.stats(), "keepaliveRequests"), 1.0);
    // An event recorded while hidden is saved after the task, and the page's last signal
    // (pagehide, when it is closed) sends it too.
    c.track(js(&format!(
        r#"{{"eventType":"while_hidden","properties":{{"run":"{run}"}}}}"#
    )))
    .unwrap();
    sleep(0).await;
    assert_eq!(saved_keys(), 1, "saved while hidden, before any answer");
    set_hidden(true);
    assert_eq!(num(&c.stats(), "keepaliveRequests"), 2.0);
    for _ in 0..50 {
        if num(&c.stats(), "sent") == 7.0 {
            break;
        }
        sleep(100).await;
    }
    assert_eq!(saved_keys(), 0, "delivered, so nothing left saved");
    set_hidden(false);
    assert_eq!(num(&c.stats(), "sent"), 7.0);
    assert_unique(&stored_events(&run).await, 7);
    JsFuture::from(c.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn what_a_closed_page_could_not_send_is_sent_by_the_next_one_exactly_once() {
    if !is_browser() {
        return;
    }
    let run = run_id("persist");
    // A page whose API is unreachable: the keepalive fails, the events are saved.
    let dead = SegOpsClient::new(js(&format!(
        r#"{{"apiUrl":"http://127.0.0.1:9","apiKey":"{}","flushIntervalMs":600000}}"#,
        secret_key()
    )))
    .unwrap();
    for i in 0..4 {
        dead.track(js(&format!(
            r#"{{"eventType":"saved","anonymousId":"{run}","properties":{{"run":"{run}","i":{i}}}}}"#
        )))
        .unwrap();
    }
    set_hidden(true);
    assert_eq!(saved_keys(), 1);
    sleep(300).await;
    assert_eq!(saved_keys(), 1, "still saved after the keepalive failed");
    // The old page is gone (its listeners too); a new one loads.
    let _ = dead.shutdown();
    set_hidden(false);
    let next = client(secret_key(), "");
    for _ in 0..50 {
        if num(&next.stats(), "restored") == 4.0 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(num(&next.stats(), "restored"), 4.0);
    assert_eq!(saved_keys(), 0, "taken, so no other tab sends them");
    flush(&next).await;
    assert_unique(&stored_events(&run).await, 4);
    JsFuture::from(next.shutdown()).await.unwrap();
}

/// A client whose API is unreachable (its keepalive and retries fail), holding `n` events of
/// `run` and hidden with them saved.
async fn frozen_with_saved_events(run: &str, n: u32) -> SegOpsClient {
    let c = SegOpsClient::new(js(&format!(
        r#"{{"apiUrl":"http://127.0.0.1:9","apiKey":"{}","flushIntervalMs":600000}}"#,
        secret_key()
    )))
    .unwrap();
    for i in 0..n {
        c.track(js(&format!(
            r#"{{"eventType":"frozen","anonymousId":"{run}","properties":{{"run":"{run}","i":{i}}}}}"#
        )))
        .unwrap();
    }
    set_hidden(true);
    assert_eq!(saved_keys(), 1);
    sleep(300).await; // the keepalive request fails
    c
}

#[wasm_bindgen_test]
async fn back_from_the_cache_a_page_leaves_what_another_page_took_up_to_it() {
    if !is_browser() {
        return;
    }
    let run = run_id("bfcache-taken");
    let frozen = frozen_with_saved_events(&run, 4).await;
    // While it is in the cache, another page of the site loads and takes up the snapshot.
    let other = client(secret_key(), "");
    for _ in 0..50 {
        if num(&other.stats(), "restored") == 4.0 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(num(&other.stats(), "restored"), 4.0);
    flush(&other).await;
    // Recorded after the snapshot, so still the frozen page's own.
    frozen
        .track(js(&format!(
            r#"{{"eventType":"late","anonymousId":"{run}","properties":{{"run":"{run}"}}}}"#
        )))
        .unwrap();
    show_from_cache();
    for _ in 0..50 {
        if num(&frozen.stats(), "handedOver") == 4.0 {
            break;
        }
        sleep(50).await;
    }
    let s = frozen.stats();
    assert_eq!(
        num(&s, "handedOver"),
        4.0,
        "the four went to the other page"
    );
    assert_eq!(num(&s, "pending"), 1.0, "the later event stays");
    assert_eq!(num(&s, "droppedTotal"), 0.0, "handed over, not dropped");
    assert_eq!(saved_keys(), 0);
    assert_unique(&stored_events(&run).await, 4);
    let _ = frozen.shutdown();
    JsFuture::from(other.shutdown()).await.unwrap();
}

#[wasm_bindgen_test]
async fn back_from_the_cache_a_page_whose_snapshot_nobody_took_keeps_all_of_it() {
    if !is_browser() {
        return;
    }
    let run = run_id("bfcache-kept");
    let frozen = frozen_with_saved_events(&run, 3).await;
    frozen
        .track(js(&format!(
            r#"{{"eventType":"late","anonymousId":"{run}","properties":{{"run":"{run}"}}}}"#
        )))
        .unwrap();
    show_from_cache();
    for _ in 0..50 {
        if saved_keys() == 0 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(
        saved_keys(),
        0,
        "its snapshot goes: its memory holds the events"
    );
    let s = frozen.stats();
    assert_eq!(num(&s, "handedOver"), 0.0);
    assert_eq!(num(&s, "pending"), 4.0);
    let _ = frozen.shutdown();
}

#[wasm_bindgen_test]
async fn full_storage_never_throws_and_loses_nothing() {
    if !is_browser() {
        return;
    }
    let run = run_id("quota");
    let c = client(secret_key(), r#","flushIntervalMs":600000"#);
    let restore = break_storage();
    for i in 0..3 {
        c.track(js(&format!(
            r#"{{"eventType":"quota","properties":{{"run":"{run}","i":{i}}}}}"#
        )))
        .unwrap();
    }
    set_hidden(true);
    assert!(
        num(&c.stats(), "saveFailures") >= 1.0,
        "the failed save is counted"
    );
    let _ = restore.call0(&JsValue::NULL);
    set_hidden(false);
    flush(&c).await;
    assert_eq!(num(&c.stats(), "sent"), 3.0);
    assert_unique(&stored_events(&run).await, 3);
    JsFuture::from(c.shutdown()).await.unwrap();
}
