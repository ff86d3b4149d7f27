//! Smoke test of the test set-up itself: the emulator started by `cargo xtask test` is
//! reachable from Node, Chromium and Firefox (so CORS works for the test page's origin).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

/// Set by `cargo xtask test` (read at compile time, so cargo rebuilds when it changes).
const API_URL: Option<&str> = option_env!("SEGOPS_TEST_API_URL");

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` of Node and browsers.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str) -> js_sys::Promise;

    type Response;

    #[wasm_bindgen(method, getter)]
    fn status(this: &Response) -> u16;

    #[wasm_bindgen(method)]
    fn text(this: &Response) -> js_sys::Promise;
}

#[wasm_bindgen_test]
async fn emulator_healthz_is_reachable() {
    let Some(api) = API_URL else {
        panic!(
            "SEGOPS_TEST_API_URL was not set when this test was compiled: run `cargo xtask test`"
        );
    };
    let url = format!("{api}/healthz");
    let response: Response = JsFuture::from(global_fetch(&url))
        .await
        .unwrap_or_else(|e| panic!("fetch {url} failed (emulator down or CORS refused): {e:?}"))
        .unchecked_into();
    assert_eq!(response.status(), 200, "GET {url}");
    let body = JsFuture::from(response.text())
        .await
        .expect("reading the body")
        .as_string()
        .expect("a string body");
    // Compare the parsed document, so whitespace in the JSON does not matter.
    let parsed = js_sys::JSON::parse(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    let normalized = js_sys::JSON::stringify(&parsed)
        .ok()
        .and_then(|s| s.as_string());
    assert_eq!(
        normalized.as_deref(),
        Some(r#"{"status":"ok"}"#),
        "body {body:?}"
    );
}
