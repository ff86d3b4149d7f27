//! Privacy controls against the emulator, in Node, headless Chromium and headless Firefox:
//! consent states and their storage, Global Privacy Control, `beforeSend`, and the caps on
//! properties. Browsers also check localStorage; Node has none, and the switches work alike.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen(inline_js = r#"
const store = () => (typeof window !== "undefined" && window.localStorage) || null;
export function segopsKeys() {
  const s = store();
  if (!s) return "";
  const out = [];
  for (let i = 0; i < s.length; i++) {
    const k = s.key(i);
    if (k && k.startsWith("segops.")) out.push(k);
  }
  return out.sort().join(",");
}
export function storageGet(k) { const s = store(); return s ? s.getItem(k) : null; }
export function storageSet(k, v) { const s = store(); if (s) s.setItem(k, v); }
export function clearSegops() {
  const s = store();
  if (!s) return;
  const keys = [];
  for (let i = 0; i < s.length; i++) if (s.key(i).startsWith("segops.")) keys.push(s.key(i));
  for (const k of keys) s.removeItem(k);
}
export function setGpc(on) {
  if (typeof navigator === "undefined") return;
  if (on) Object.defineProperty(navigator, "globalPrivacyControl", { value: true, configurable: true });
  else delete navigator.globalPrivacyControl;
}
const SEEN = Symbol("seen");
export function otherTabWrites(key, value) {
  localStorage.setItem(key, value);
  window.dispatchEvent(new StorageEvent("storage", { key, newValue: value }));
}
export function withHook(config, name) {
  const seen = [];
  const hooks = {
    throwing: () => { throw new Error("the hook is broken"); },
    forgetful: (e) => { e.eventType = "mutated_in_place"; },
    number: () => 42,
    promise: async (e) => e,
    emptyName: (e) => ({ ...e, eventType: "" }),
    otherType: (e) => ({ ...e, type: "identify" }),
    unknownField: (e) => ({ ...e, extra: 1 }),
    bloating: (e) => ({ ...e, properties: { ...e.properties, a: "x".repeat(8000), b: "x".repeat(8000), c: "x".repeat(8000), d: "x".repeat(8000), e: "x".repeat(8000) } }),
    editing: (e) => {
      seen.push(JSON.parse(JSON.stringify(e)));
      if (e.eventType === "drop_me") return null;
      if (e.properties) {
        delete e.properties.email;
        e.properties.edited = true;
      }
      e.eventType = e.eventType + "_edited";
      if (e.eventType === "anonymize_edited") delete e.userId;
      return e;
    },
  };
  config.beforeSend = hooks[name];
  config[SEEN] = seen; // a symbol key: not a config field
  return config;
}
export function seenBy(config) { return config[SEEN]; }
export function deepProperties(run, levels) {
  let node = { leaf: true };
  for (let i = 0; i < levels - 1; i++) node = { child: node };
  return { run, deep: node };
}
export function wideProperties(run, n) {
  const wide = {};
  for (let i = 0; i < n; i++) wide["k" + i] = i;
  return { run, wide, list: Array.from({ length: n }, (_, i) => i), long: "é".repeat(20000) };
}
export function depthOf(v) {
  let d = 0;
  while (v && typeof v === "object") { d++; v = v.child !== undefined ? v.child : v.deep; }
  return [d, v];
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = segopsKeys)]
    fn segops_keys() -> String;
    #[wasm_bindgen(js_name = storageGet)]
    fn storage_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_name = storageSet)]
    fn storage_set(key: &str, value: &str);
    #[wasm_bindgen(js_name = clearSegops)]
    fn clear_segops();
    #[wasm_bindgen(js_name = setGpc)]
    fn set_gpc(on: bool);
    #[wasm_bindgen(js_name = otherTabWrites)]
    fn other_tab_writes(key: &str, value: &str);
    #[wasm_bindgen(js_name = withHook)]
    fn with_hook(config: JsValue, name: &str) -> JsValue;
    #[wasm_bindgen(js_name = seenBy)]
    fn seen_by(config: &JsValue) -> js_sys::Array;
    #[wasm_bindgen(js_name = deepProperties)]
    fn deep_properties(run: &str, levels: u32) -> JsValue;
    #[wasm_bindgen(js_name = wideProperties)]
    fn wide_properties(run: &str, n: u32) -> JsValue;
    #[wasm_bindgen(js_name = depthOf)]
    fn depth_of(v: &JsValue) -> js_sys::Array;
}

fn track(c: &SegOpsClient, run: &str, name: &str) {
    c.track(js(&format!(
        r#"{{"eventType":"{name}","userId":"privacy-user","properties":{{"run":"{run}","email":"a@b.test"}}}}"#
    )))
    .expect("track");
}

fn dropped(c: &SegOpsClient, reason: &str) -> f64 {
    num(&get(&c.stats(), "dropped"), reason)
}

async fn shutdown(c: &SegOpsClient) {
    JsFuture::from(c.shutdown()).await.unwrap();
}

/// Each test starts and ends without anything the SDK stored (a persisted choice would carry
/// over to the next test's clients).
fn reset() {
    clear_segops();
    set_gpc(false);
}

#[wasm_bindgen_test]
async fn pending_then_granted_delivers_exactly_the_buffered_events_once() {
    reset();
    let run = run_id("pending-granted");
    let c = client(secret_key(), r#","consent":"pending""#);
    assert_eq!(c.consent(), "pending");
    for _ in 0..5 {
        track(&c, &run, "buffered");
    }
    // flush() does not wait for a choice that may never come.
    flush(&c).await;
    let s = c.stats();
    assert_eq!(num(&s, "requests"), 0.0, "nothing sent while pending");
    assert_eq!(num(&s, "pending"), 5.0);
    assert_eq!(num(&s, "recorded"), 5.0);
    assert_eq!(string(&s, "consent").as_deref(), Some("pending"));
    if is_browser() {
        // A hidden page saves nothing while pending, and nothing else was written.
        set_hidden(true);
        assert_eq!(num(&c.stats(), "keepaliveRequests"), 0.0);
        assert_eq!(segops_keys(), "", "nothing persisted while pending");
        set_hidden(false);
    }
    assert!(stored_events(&run).await.is_empty());

    c.set_consent(JsValue::from_str("granted")).unwrap();
    assert_eq!(c.consent(), "granted");
    flush(&c).await;
    let s = c.stats();
    assert_eq!(num(&s, "sent"), 5.0);
    assert_eq!(num(&s, "requests"), 1.0, "the buffer goes in one batch");
    assert_eq!(num(&s, "droppedTotal"), 0.0);
    let stored = stored_events(&run).await;
    assert_unique(&stored, 5);
    if is_browser() {
        assert_eq!(storage_get("segops.consent").as_deref(), Some("granted"));
        assert_eq!(storage_get("segops.anonymous_id"), Some(c.anonymous_id()));
    }
    // Granting twice sends nothing twice.
    c.opt_in();
    flush(&c).await;
    assert_eq!(num(&c.stats(), "sent"), 5.0);
    assert_unique(&stored_events(&run).await, 5);
    shutdown(&c).await;
    reset();
}

#[wasm_bindgen_test]
async fn pending_then_denied_sends_nothing_and_leaves_nothing_in_storage() {
    reset();
    let run = run_id("pending-denied");
    if is_browser() {
        // What an earlier, consented page left: an id and another tab's unsent events.
        storage_set("segops.anonymous_id", "earlier-visitor");
        storage_set(
            "segops.pending.othertab",
            r#"{"v":1,"events":["{\"message_id\":\"x\",\"anonymous_id\":\"earlier-visitor\"}"]}"#,
        );
    }
    let c = client(secret_key(), r#","consent":"pending""#);
    let before = c.anonymous_id();
    for _ in 0..3 {
        track(&c, &run, "never_sent");
    }
    c.set_consent(JsValue::from_str("denied")).unwrap();
    assert_eq!(c.consent(), "denied");
    assert_eq!(dropped(&c, "consent_denied"), 3.0);
    assert_eq!(num(&c.stats(), "pending"), 0.0);
    // Later events are discarded as they come, and flush() still resolves.
    track(&c, &run, "never_sent");
    track(&c, &run, "never_sent");
    flush(&c).await;
    let s = c.stats();
    assert_eq!(dropped(&c, "consent_denied"), 5.0);
    assert_eq!(num(&s, "requests"), 0.0);
    assert_eq!(num(&s, "sent"), 0.0);
    assert_ne!(c.anonymous_id(), before, "the old id is forgotten");
    if is_browser() {
        set_hidden(true);
        set_hidden(false);
        assert_eq!(
            segops_keys(),
            "segops.consent",
            "only the choice itself is kept"
        );
        assert_eq!(storage_get("segops.consent").as_deref(), Some("denied"));
        // The persisted choice wins over a config that grants by default.
        let next = client(secret_key(), r#","consent":"granted""#);
        assert_eq!(next.consent(), "denied");
        track(&next, &run, "never_sent");
        assert_eq!(dropped(&next, "consent_denied"), 1.0);
        assert_eq!(segops_keys(), "segops.consent");
        shutdown(&next).await;
    }
    sleep(300).await;
    assert!(
        stored_events(&run).await.is_empty(),
        "nothing reached the API"
    );

    // Opting in again: a fresh id, stored from now on, and delivery resumes.
    c.opt_in();
    let fresh = c.anonymous_id();
    assert_ne!(fresh, before);
    track(&c, &run, "after_opt_in");
    flush(&c).await;
    assert_eq!(num(&c.stats(), "sent"), 1.0);
    assert_unique(&stored_events(&run).await, 1);
    if is_browser() {
        assert_eq!(storage_get("segops.anonymous_id"), Some(fresh));
    }
    shutdown(&c).await;
    reset();
}

#[wasm_bindgen_test]
async fn global_privacy_control_starts_denied_unless_the_app_grants() {
    reset();
    if !is_browser() {
        // Node has no GPC signal: a default client is granted.
        assert_eq!(client(secret_key(), "").consent(), "granted");
        return;
    }
    let run = run_id("gpc");
    storage_set("segops.anonymous_id", "before-gpc");
    set_gpc(true);
    let c = client(secret_key(), "");
    assert_eq!(c.consent(), "denied");
    assert_ne!(c.anonymous_id(), "before-gpc");
    assert_eq!(
        segops_keys(),
        "",
        "denied clears, and GPC itself is not persisted"
    );
    track(&c, &run, "under_gpc");
    flush(&c).await;
    assert_eq!(dropped(&c, "consent_denied"), 1.0);
    assert_eq!(num(&c.stats(), "requests"), 0.0);
    shutdown(&c).await;
    // An explicit "pending" does not ask what GPC already answered.
    assert_eq!(
        client(secret_key(), r#","consent":"pending""#).consent(),
        "denied"
    );
    // The app may overrule the signal explicitly, or be told not to respect it.
    assert_eq!(
        client(secret_key(), r#","consent":"granted""#).consent(),
        "granted"
    );
    assert_eq!(
        client(secret_key(), r#","respectGlobalPrivacyControl":false"#).consent(),
        "granted"
    );
    assert_eq!(segops_keys(), "segops.anonymous_id");
    // A visitor who granted consent on this site keeps it under GPC.
    let asked = client(secret_key(), "");
    asked.opt_in();
    assert_eq!(client(secret_key(), "").consent(), "granted");
    track(&asked, &run, "granted_under_gpc");
    flush(&asked).await;
    assert_unique(&stored_events(&run).await, 1);
    shutdown(&asked).await;
    reset();
}

#[wasm_bindgen_test]
async fn a_public_key_mints_nothing_while_pending() {
    reset();
    if !is_browser() {
        return; // Node sends no Origin, so a public key cannot mint there anyway.
    }
    let run = run_id("pending-mint");
    let c = client(public_key(), r#","consent":"pending""#);
    track(&c, &run, "pending_pk");
    flush(&c).await;
    sleep(300).await;
    assert_eq!(num(&c.stats(), "mints"), 0.0);
    assert_eq!(num(&c.stats(), "requests"), 0.0);
    c.set_consent(JsValue::from_str("granted")).unwrap();
    flush(&c).await;
    assert_eq!(num(&c.stats(), "mints"), 1.0);
    assert_unique(&stored_events(&run).await, 1);
    shutdown(&c).await;
    reset();
}

#[wasm_bindgen_test]
async fn a_throwing_before_send_loses_nothing_and_is_reported_once() {
    reset();
    let run = run_id("hook-throws");
    let errors = capture_console("error");
    let c = SegOpsClient::new(with_hook(config(secret_key(), ""), "throwing")).unwrap();
    for _ in 0..3 {
        track(&c, &run, "kept");
    }
    flush(&c).await;
    let calls = errors.calls();
    errors.restore();
    assert_eq!(calls.length(), 1, "reported once: {calls:?}");
    let text = calls.get(0).as_string().unwrap();
    assert!(
        text.contains("beforeSend") && text.contains("the hook is broken"),
        "{text}"
    );
    let s = c.stats();
    assert_eq!(num(&s, "beforeSendErrors"), 3.0);
    assert_eq!(num(&s, "sent"), 3.0);
    let stored = stored_events(&run).await;
    assert_unique(&stored, 3);
    for e in &stored {
        assert_eq!(
            string(e, "event_type").as_deref(),
            Some("kept"),
            "unchanged"
        );
        assert_eq!(
            string(&get(e, "properties"), "email").as_deref(),
            Some("a@b.test")
        );
    }
    shutdown(&c).await;
    reset();
}

#[wasm_bindgen_test]
async fn an_unusable_before_send_result_keeps_the_event() {
    reset();
    let run = run_id("hook-bad");
    let hooks = [
        ("forgetful", "undefined"),
        ("number", "expected an object"),
        ("promise", "Promise"),
        ("emptyName", "beforeSend().eventType"),
        ("otherType", "beforeSend().type"),
        ("unknownField", "beforeSend().extra"),
        ("bloating", "maxEventBytes"),
    ];
    for (name, words) in hooks {
        let errors = capture_console("error");
        let c = SegOpsClient::new(with_hook(config(secret_key(), ""), name)).unwrap();
        track(&c, &run, name);
        track(&c, &run, name);
        let calls = errors.calls();
        errors.restore();
        assert_eq!(calls.length(), 1, "{name}: {calls:?}");
        let text = calls.get(0).as_string().unwrap();
        assert!(text.contains(words), "{name}: {text}");
        assert_eq!(num(&c.stats(), "beforeSendErrors"), 2.0, "{name}");
        flush(&c).await;
        shutdown(&c).await;
    }
    let stored = stored_events(&run).await;
    assert_unique(&stored, hooks.len() * 2);
    for (name, _) in hooks {
        let n = stored
            .iter()
            .filter(|e| string(e, "event_type").as_deref() == Some(name))
            .count();
        assert_eq!(n, 2, "{name}: kept unchanged");
    }
    reset();
}

#[wasm_bindgen_test]
async fn an_edited_event_arrives_edited_and_null_drops_it() {
    reset();
    let run = run_id("hook-edits");
    let cfg = with_hook(config(secret_key(), ""), "editing");
    let c = SegOpsClient::new(cfg.clone()).unwrap();
    track(&c, &run, "checkout");
    track(&c, &run, "drop_me");
    track(&c, &run, "anonymize");
    c.identify(js(r#"{"userId":"privacy-user","traits":{"plan":"pro"}}"#))
        .unwrap();
    flush(&c).await;
    // What the hook saw: the event as the app would describe it.
    let seen = seen_by(&cfg);
    assert_eq!(seen.length(), 4);
    let first = seen.get(0);
    assert_eq!(string(&first, "type").as_deref(), Some("track"));
    assert_eq!(string(&first, "eventType").as_deref(), Some("checkout"));
    assert_eq!(string(&first, "userId").as_deref(), Some("privacy-user"));
    assert_eq!(string(&first, "anonymousId"), Some(c.anonymous_id()));
    assert!(string(&first, "timestamp").unwrap().ends_with('Z'));
    assert_eq!(
        string(&get(&first, "properties"), "email").as_deref(),
        Some("a@b.test")
    );
    let identify = seen.get(3);
    assert_eq!(string(&identify, "type").as_deref(), Some("identify"));
    assert_eq!(
        string(&get(&identify, "traits"), "plan").as_deref(),
        Some("pro")
    );
    if is_browser() {
        assert!(string(&get(&get(&first, "context"), "page"), "url").is_some());
    }

    let s = c.stats();
    assert_eq!(num(&get(&s, "dropped"), "before_send"), 1.0);
    assert_eq!(num(&s, "recorded"), 4.0);
    assert_eq!(num(&s, "sent"), 3.0);
    assert_eq!(num(&s, "beforeSendErrors"), 0.0);
    let stored = stored_events(&run).await;
    assert_unique(&stored, 2);
    let by = |name: &str| by_event_type(&stored, name);
    let checkout = by("checkout_edited");
    let props = get(&checkout, "properties");
    assert!(get(&props, "email").is_undefined(), "removed by the hook");
    assert_eq!(get(&props, "edited").as_bool(), Some(true));
    assert_eq!(
        string(&checkout, "user_id").as_deref(),
        Some("privacy-user")
    );
    let anonymized = by("anonymize_edited");
    assert!(get(&anonymized, "user_id").is_null());
    assert_eq!(string(&anonymized, "anonymous_id"), Some(c.anonymous_id()));
    shutdown(&c).await;
    reset();
}

#[wasm_bindgen_test]
async fn runaway_properties_are_cut_to_the_caps_and_counted() {
    reset();
    let run = run_id("caps");
    let warnings = capture_console("warn");
    let c = client(secret_key(), "");
    let event = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        js_sys::Reflect::set(&event, &JsValue::from_str(k), &v).unwrap();
    };
    set("eventType", "wide".into());
    set("properties", wide_properties(&run, 1000));
    // 20,000 "é" (40 KB) would be over 32 KiB: cut first, the event fits.
    c.track(event.clone().into())
        .expect("cut, then within the size limit");
    set("eventType", "deep".into());
    set("properties", deep_properties(&run, 30));
    c.track(event.into()).unwrap();
    track(&c, &run, "small");
    flush(&c).await;
    let calls = warnings.calls();
    warnings.restore();
    let s = c.stats();
    assert_eq!(num(&s, "truncated"), 2.0, "two events were cut");
    let by = get(&s, "truncatedBy");
    assert_eq!(num(&by, "keys"), 2.0);
    assert_eq!(num(&by, "length"), 1.0);
    assert_eq!(num(&by, "depth"), 1.0);
    assert_eq!(num(&s, "sent"), 3.0);
    let cap_warnings = calls
        .iter()
        .filter(|w| w.as_string().unwrap_or_default().contains("truncated"))
        .count();
    assert_eq!(cap_warnings, 1, "warned once: {calls:?}");

    let stored = stored_events(&run).await;
    assert_unique(&stored, 3);
    let by_name = |name: &str| {
        stored
            .iter()
            .find(|e| string(e, "event_type").as_deref() == Some(name))
            .unwrap()
            .clone()
    };
    let wide = get(&by_name("wide"), "properties");
    let keys = js_sys::Object::keys(&get(&wide, "wide").into()).length();
    assert_eq!(keys, 256);
    let list: js_sys::Array = get(&wide, "list").into();
    assert_eq!(list.length(), 256);
    assert_eq!(
        string(&wide, "long").unwrap().chars().count(),
        8_192,
        "the first 8,192 characters"
    );
    let deep = get(&by_name("deep"), "properties");
    let walked = depth_of(&deep);
    // properties is level 1: ten levels of objects, then the marker.
    assert_eq!(walked.get(0).as_f64(), Some(10.0));
    assert_eq!(walked.get(1).as_string().as_deref(), Some("[Object]"));
    shutdown(&c).await;
    reset();
}

#[wasm_bindgen_test]
async fn the_switches_work_in_every_runtime() {
    reset();
    let run = run_id("switches");
    let c = client(secret_key(), "");
    assert_eq!(c.consent(), "granted");
    c.opt_out();
    assert_eq!(c.consent(), "denied");
    track(&c, &run, "opted_out");
    c.opt_in();
    track(&c, &run, "opted_in");
    c.set_consent(JsValue::from_str("pending")).unwrap();
    track(&c, &run, "pending");
    flush(&c).await;
    // "opted_in" had not left yet (the interval): it waits with the pending one.
    assert_eq!(num(&c.stats(), "pending"), 2.0);
    assert_eq!(num(&c.stats(), "requests"), 0.0);
    if is_browser() {
        assert_eq!(storage_get("segops.consent"), None, "pending is no choice");
    }
    c.set_consent(JsValue::from_str("granted")).unwrap();
    flush(&c).await;
    let s = c.stats();
    assert_eq!(num(&s, "sent"), 2.0);
    assert_eq!(dropped(&c, "consent_denied"), 1.0);
    let names: Vec<String> = stored_events(&run)
        .await
        .iter()
        .filter_map(|e| string(e, "event_type"))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"opted_in".to_string()) && names.contains(&"pending".to_string()));

    // Bad input names the field.
    for bad in [
        JsValue::from_str("yes"),
        JsValue::from_f64(1.0),
        JsValue::NULL,
    ] {
        let e = c.set_consent(bad).unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));
        assert_eq!(error_field(&e).as_deref(), Some("setConsent"));
        assert!(error_message(&e).unwrap().contains("\"pending\""));
    }
    assert_eq!(c.consent(), "granted");
    let url = api_url();
    for (extra, field) in [
        (r#""consent":"maybe""#, "consent"),
        (r#""consent":true"#, "consent"),
        (
            r#""respectGlobalPrivacyControl":"yes""#,
            "respectGlobalPrivacyControl",
        ),
        (r#""beforeSend":"scrub""#, "beforeSend"),
    ] {
        let cfg = js(&format!(
            r#"{{"apiUrl":"{url}","apiKey":"{}",{extra}}}"#,
            secret_key()
        ));
        let e = match SegOpsClient::new(cfg) {
            Ok(_) => panic!("{extra} accepted"),
            Err(e) => e,
        };
        assert_eq!(error_code(&e).as_deref(), Some("invalid_config"), "{extra}");
        assert_eq!(error_field(&e).as_deref(), Some(field), "{extra}");
    }
    // A choice is recorded even after shutdown().
    shutdown(&c).await;
    c.opt_out();
    assert_eq!(c.consent(), "denied");
    if is_browser() {
        assert_eq!(storage_get("segops.consent").as_deref(), Some("denied"));
    }
    reset();
}

#[wasm_bindgen_test]
async fn a_choice_made_in_another_tab_applies_to_this_one() {
    reset();
    if !is_browser() {
        return;
    }
    let run = run_id("other-tab");
    let c = client(secret_key(), r#","flushIntervalMs":600000"#);
    track(&c, &run, "waiting");
    let before = c.anonymous_id();
    // Another tab of this origin opts out: localStorage tells this page.
    other_tab_writes("segops.consent", "denied");
    assert_eq!(c.consent(), "denied");
    assert_eq!(dropped(&c, "consent_denied"), 1.0);
    assert_ne!(c.anonymous_id(), before);
    assert_eq!(segops_keys(), "segops.consent");
    // A value that is no choice changes nothing; opting in again does.
    other_tab_writes("segops.consent", "maybe");
    assert_eq!(c.consent(), "denied");
    other_tab_writes("segops.consent", "granted");
    assert_eq!(c.consent(), "granted");
    track(&c, &run, "after");
    flush(&c).await;
    assert_unique(&stored_events(&run).await, 1);
    // A shut-down client no longer listens.
    shutdown(&c).await;
    other_tab_writes("segops.consent", "denied");
    assert_eq!(c.consent(), "granted");
    reset();
}
