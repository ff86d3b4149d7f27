//! Shared helpers of the wasm-bindgen-test suites: the SDK's client as apps get it (the JS
//! loader and runtime over this module's `Core`), talking to the emulator that
//! `cargo xtask test` started (its URL and dev keys reach the tests at compile time), building
//! JS values, waiting, and watching the console.
#![allow(dead_code)]

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

// The package's JS (js/entries/test.js), bundled by `cargo xtask test` before these suites
// are built.
#[wasm_bindgen(module = "/tests/support/sdk.js")]
extern "C" {
    /// The client the app gets: `new SegOpsClient(config)` and its methods.
    pub type SegOpsClient;
    #[wasm_bindgen(constructor, catch, js_class = "SegOpsClient")]
    fn create(config: JsValue) -> Result<SegOpsClient, JsValue>;
    #[wasm_bindgen(method, catch)]
    pub fn track(this: &SegOpsClient, event: JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    pub fn identify(this: &SegOpsClient, event: JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    pub fn page(this: &SegOpsClient, event: JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = trackPageView)]
    pub fn track_page_view(this: &SegOpsClient, event: JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    pub fn flush(this: &SegOpsClient) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method)]
    pub fn shutdown(this: &SegOpsClient) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    pub fn stats(this: &SegOpsClient) -> JsValue;
    #[wasm_bindgen(method, getter, js_name = anonymousId)]
    pub fn anonymous_id(this: &SegOpsClient) -> String;
    #[wasm_bindgen(method, getter, js_name = sessionId)]
    pub fn session_id(this: &SegOpsClient) -> Option<String>;
    #[wasm_bindgen(method)]
    pub fn reset(this: &SegOpsClient);
    #[wasm_bindgen(method, getter)]
    pub fn consent(this: &SegOpsClient) -> String;
    #[wasm_bindgen(method, getter)]
    pub fn ready(this: &SegOpsClient) -> js_sys::Promise;
    #[wasm_bindgen(method, catch, js_name = setConsent)]
    pub fn set_consent(this: &SegOpsClient, state: JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, js_name = optOut)]
    pub fn opt_out(this: &SegOpsClient);
    #[wasm_bindgen(method, js_name = optIn)]
    pub fn opt_in(this: &SegOpsClient);
    #[wasm_bindgen(js_name = installCore)]
    fn install_core(core: JsValue, memory: JsValue);
}

impl SegOpsClient {
    /// `new SegOpsClient(config)`; throws (here: `Err`) a SegOpsError on a bad config.
    pub fn new(config: JsValue) -> Result<SegOpsClient, JsValue> {
        install_core(
            JsValue::from(segops_sdk::edge::Core::new()),
            wasm_bindgen::memory(),
        );
        SegOpsClient::create(config)
    }
}

fn required(name: &str, value: Option<&'static str>) -> &'static str {
    value.unwrap_or_else(|| {
        panic!(
            "{name} was not set when this test was compiled: run the tests with `cargo xtask test`"
        )
    })
}

pub fn api_url() -> &'static str {
    required("SEGOPS_TEST_API_URL", option_env!("SEGOPS_TEST_API_URL"))
}
pub fn owner_email() -> &'static str {
    required(
        "SEGOPS_TEST_OWNER_EMAIL",
        option_env!("SEGOPS_TEST_OWNER_EMAIL"),
    )
}
pub fn owner_password() -> &'static str {
    required(
        "SEGOPS_TEST_OWNER_PASSWORD",
        option_env!("SEGOPS_TEST_OWNER_PASSWORD"),
    )
}
pub fn secret_key() -> &'static str {
    required(
        "SEGOPS_TEST_SECRET_KEY",
        option_env!("SEGOPS_TEST_SECRET_KEY"),
    )
}
/// A public key whose allowlist has the test page's origin.
pub fn public_key() -> &'static str {
    required(
        "SEGOPS_TEST_PUBLIC_KEY",
        option_env!("SEGOPS_TEST_PUBLIC_KEY"),
    )
}
/// A public key that requires signed user ids, and its HMAC secret.
pub fn signed_public_key() -> &'static str {
    required(
        "SEGOPS_TEST_SIGNED_PUBLIC_KEY",
        option_env!("SEGOPS_TEST_SIGNED_PUBLIC_KEY"),
    )
}
pub fn signed_hmac_secret() -> &'static str {
    required(
        "SEGOPS_TEST_SIGNED_HMAC_SECRET",
        option_env!("SEGOPS_TEST_SIGNED_HMAC_SECRET"),
    )
}
/// The emulator started with an 8 s session lifetime, and its public key.
pub fn short_api_url() -> &'static str {
    required(
        "SEGOPS_TEST_SHORT_API_URL",
        option_env!("SEGOPS_TEST_SHORT_API_URL"),
    )
}
pub fn short_public_key() -> &'static str {
    required(
        "SEGOPS_TEST_SHORT_PUBLIC_KEY",
        option_env!("SEGOPS_TEST_SHORT_PUBLIC_KEY"),
    )
}

#[wasm_bindgen(inline_js = r#"
export async function request(method, url, authorization, body) {
  const headers = {};
  if (authorization) headers.authorization = authorization;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(url, { method, headers, body });
  const text = await r.text();
  return [r.status, text];
}
// Makes the page report hidden (or visible again) and tells the listeners, as a tab switch or
// close would; headless browsers never change visibility by themselves.
export function setHidden(hidden) {
  if (hidden) {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    Object.defineProperty(document, "hidden", { value: true, configurable: true });
  } else {
    delete document.visibilityState;
    delete document.hidden;
  }
  document.dispatchEvent(new Event("visibilitychange"));
}
export function pageOrigin() { return typeof location !== "undefined" ? location.origin : null; }
export function tokenLikeInStorage() {
  const found = [];
  for (const store of [globalThis.localStorage, globalThis.sessionStorage]) {
    if (!store) continue;
    for (let i = 0; i < store.length; i++) {
      const v = store.getItem(store.key(i)) || "";
      if (v.includes("eyJ")) found.push(store.key(i));
    }
  }
  if (typeof document !== "undefined" && document.cookie) found.push("cookie:" + document.cookie);
  return found.join(",");
}
export function switchableUser(initial) {
  const state = { user: initial };
  return { getUser: () => state.user, set: (u) => { state.user = u; } };
}
export function withUserSource(config, source) { config.getUser = source.getUser; return config; }
export function isBrowser() { return typeof window !== "undefined" && typeof document !== "undefined"; }
export function captureConsole(method) {
  const original = console[method];
  const calls = [];
  console[method] = (...args) => { calls.push(args.map(String).join(" ")); };
  return { calls, restore() { console[method] = original; } };
}
export function cyclic() { const o = { a: 1 }; o.self = o; return { eventType: "x", properties: o }; }
export function withFunction() { return { eventType: "x", properties: { onClick() {} } }; }
export function withBigInt() { return { eventType: "x", properties: { n: 10n } }; }
export function withSymbol() { return { eventType: "x", properties: { s: Symbol("s") } }; }
export function throwingGetter() { return { eventType: "x", get properties() { throw new Error("boom"); } }; }
export function withGetUser(config, user) { config.getUser = () => user; return config; }
export function withThrowingGetUser(config) { config.getUser = () => { throw new Error("no user"); }; return config; }
export function errorCode(e) { return e && e.code; }
export function errorField(e) { return e && e.field; }
export function errorMessage(e) { return e && e.message; }
export function errorName(e) { return e && e.name; }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = request)]
    fn js_request(
        method: &str,
        url: &str,
        authorization: Option<String>,
        body: Option<String>,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = isBrowser)]
    pub fn is_browser() -> bool;
    #[wasm_bindgen(js_name = setHidden)]
    pub fn set_hidden(hidden: bool);
    #[wasm_bindgen(js_name = pageOrigin)]
    pub fn page_origin() -> Option<String>;
    #[wasm_bindgen(js_name = tokenLikeInStorage)]
    pub fn token_like_in_storage() -> String;
    pub type UserSource;
    #[wasm_bindgen(js_name = switchableUser)]
    pub fn switchable_user(initial: JsValue) -> UserSource;
    #[wasm_bindgen(method)]
    pub fn set(this: &UserSource, user: JsValue);
    #[wasm_bindgen(js_name = withUserSource)]
    pub fn with_user_source(config: JsValue, source: &UserSource) -> JsValue;
    #[wasm_bindgen(js_name = captureConsole)]
    pub fn capture_console(method: &str) -> ConsoleCapture;
    pub type ConsoleCapture;
    #[wasm_bindgen(method, getter)]
    pub fn calls(this: &ConsoleCapture) -> js_sys::Array;
    #[wasm_bindgen(method)]
    pub fn restore(this: &ConsoleCapture);
    pub fn cyclic() -> JsValue;
    #[wasm_bindgen(js_name = withFunction)]
    pub fn with_function() -> JsValue;
    #[wasm_bindgen(js_name = withBigInt)]
    pub fn with_bigint() -> JsValue;
    #[wasm_bindgen(js_name = withSymbol)]
    pub fn with_symbol() -> JsValue;
    #[wasm_bindgen(js_name = throwingGetter)]
    pub fn throwing_getter() -> JsValue;
    #[wasm_bindgen(js_name = withGetUser)]
    pub fn with_get_user(config: JsValue, user: JsValue) -> JsValue;
    #[wasm_bindgen(js_name = withThrowingGetUser)]
    pub fn with_throwing_get_user(config: JsValue) -> JsValue;
    #[wasm_bindgen(js_name = errorCode)]
    pub fn error_code(e: &JsValue) -> Option<String>;
    #[wasm_bindgen(js_name = errorField)]
    pub fn error_field(e: &JsValue) -> Option<String>;
    #[wasm_bindgen(js_name = errorMessage)]
    pub fn error_message(e: &JsValue) -> Option<String>;
    #[wasm_bindgen(js_name = errorName)]
    pub fn error_name(e: &JsValue) -> Option<String>;
}

/// A JS value from JSON text.
pub fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap_or_else(|_| panic!("bad JSON in test: {json}"))
}

pub fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn num(v: &JsValue, key: &str) -> f64 {
    get(v, key).as_f64().unwrap_or(0.0)
}

pub fn string(v: &JsValue, key: &str) -> Option<String> {
    get(v, key).as_string()
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Calls the API; returns the status and the parsed body (undefined when not JSON).
pub async fn call(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> (u16, JsValue) {
    call_at(api_url(), method, path, authorization, body).await
}

/// [`call`] against another emulator.
pub async fn call_at(
    base: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> (u16, JsValue) {
    let url = format!("{base}{path}");
    let answer = JsFuture::from(js_request(
        method,
        &url,
        authorization.map(str::to_string),
        body.map(str::to_string),
    ))
    .await
    .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let answer: js_sys::Array = answer.unchecked_into();
    let status = answer.get(0).as_f64().unwrap_or(0.0) as u16;
    let text = answer.get(1).as_string().unwrap_or_default();
    (
        status,
        js_sys::JSON::parse(&text).unwrap_or(JsValue::UNDEFINED),
    )
}

/// `Bearer <owner token>` for the dev owner.
pub async fn owner() -> String {
    owner_at(api_url()).await
}

/// `Bearer <owner token>` for the dev owner of the emulator at `base`.
pub async fn owner_at(base: &str) -> String {
    let body = format!(
        r#"{{"email":"{}","password":"{}"}}"#,
        owner_email(),
        owner_password()
    );
    let (status, v) = call_at(base, "POST", "/api/auth/login/", None, Some(&body)).await;
    assert_eq!(status, 200, "login");
    format!("Bearer {}", string(&v, "token").expect("token"))
}

/// Creates a key of `kind` ("secret" or "public") and returns `(id, key)`.
pub async fn create_key(kind: &str, extra: &str) -> (String, String) {
    let auth = owner().await;
    let body = format!(r#"{{"name":"test","tenant_slug":"acme","kind":"{kind}"{extra}}}"#);
    let (status, v) = call("POST", "/api/auth/api-keys/", Some(&auth), Some(&body)).await;
    assert_eq!(status, 201, "create key: {:?}", js_sys::JSON::stringify(&v));
    (string(&v, "id").unwrap(), string(&v, "key").unwrap())
}

pub async fn revoke_key(id: &str) {
    let auth = owner().await;
    let (status, _) = call(
        "DELETE",
        &format!("/api/auth/api-keys/{id}/"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, 200, "revoke");
}

/// Every stored event whose `properties.run` is `run`.
pub async fn stored_events(run: &str) -> Vec<JsValue> {
    stored_events_at(api_url(), run).await
}

/// [`stored_events`] of the emulator at `base`.
pub async fn stored_events_at(base: &str, run: &str) -> Vec<JsValue> {
    let auth = owner_at(base).await;
    let mut after = 0f64;
    let mut found = Vec::new();
    loop {
        let (status, v) = call_at(
            base,
            "GET",
            &format!("/api/events/?limit=1000&after={after}"),
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(status, 200, "read events");
        let events: js_sys::Array = get(&v, "events").unchecked_into();
        if events.length() == 0 {
            return found;
        }
        for e in events.iter() {
            if string(&get(&e, "properties"), "run").as_deref() == Some(run) {
                found.push(e);
            }
        }
        after = num(&v, "next_after");
    }
}

/// Injects a fault (docs/protocol.md, dev endpoints).
pub async fn fault(spec: &str) {
    let auth = owner().await;
    let (status, _) = call("POST", "/api/dev/faults/", Some(&auth), Some(spec)).await;
    assert_eq!(status, 201, "fault {spec}");
}

pub async fn clear_faults() {
    let auth = owner().await;
    let (status, _) = call("DELETE", "/api/dev/faults/", Some(&auth), None).await;
    assert_eq!(status, 200);
}

/// A fresh run id, so that a test finds its own events among everyone's.
pub fn run_id(name: &str) -> String {
    format!("{name}-{}", js_sys::Math::random().to_bits())
}

/// A config for the test emulator with a secret key, plus `extra` JSON fields.
pub fn config(key: &str, extra: &str) -> JsValue {
    config_at(api_url(), key, extra)
}

pub fn config_at(base: &str, key: &str, extra: &str) -> JsValue {
    js(&format!(r#"{{"apiUrl":"{base}","apiKey":"{key}"{extra}}}"#))
}

/// Session mints the emulator counted for `uid`.
pub async fn mints_for(base: &str, uid: &str) -> f64 {
    let auth = owner_at(base).await;
    let (status, v) = call_at(base, "GET", "/api/dev/stats/", Some(&auth), None).await;
    assert_eq!(status, 200, "dev stats");
    num(&get(&v, "mints_by_uid"), uid)
}

pub fn client(key: &str, extra: &str) -> SegOpsClient {
    SegOpsClient::new(config(key, extra))
        .unwrap_or_else(|e| panic!("client: {:?}", error_message(&e)))
}

pub async fn flush(c: &SegOpsClient) {
    JsFuture::from(c.flush().expect("flush"))
        .await
        .expect("flush resolves");
}

/// The stored event named `name` among `events`.
pub fn by_event_type(events: &[JsValue], name: &str) -> JsValue {
    events
        .iter()
        .find(|e| string(e, "event_type").as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{name} not stored"))
        .clone()
}

/// Asserts that `events` hold each of `expected` message-wise exactly once.
pub fn assert_unique(events: &[JsValue], expected: usize) {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| string(e, "message_id").expect("message_id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "an event was stored twice");
    assert_eq!(events.len(), expected, "stored events");
}
