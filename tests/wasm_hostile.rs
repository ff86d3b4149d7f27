//! The hostile-values table (tests/hostile/values.js) against the crate's `SegOpsClient`, in
//! Node, headless Chromium and headless Firefox: every hostile JS value at every entry point
//! returns normally or throws a documented `SegOpsError` naming the argument, never a wasm
//! trap; every client still works afterwards, and the emulator holds each accepted event once.
//! The outcomes must match tests/hostile/expected.json (see docs/bad-input.md). The table is
//! printed on failure, or always with `-- --nocapture`.
#![cfg(target_arch = "wasm32")]

mod support;

use support::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

#[wasm_bindgen(module = "/tests/hostile/values.js")]
extern "C" {
    #[wasm_bindgen(js_name = runHostileTableFrom)]
    fn run_hostile_table_from(
        sample: JsValue,
        api_url: &str,
        owner_email: &str,
        owner_password: &str,
        runtime: &str,
        expected_json: &str,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = detectRuntime)]
    fn detect_runtime() -> String;
}

const EXPECTED: &str = include_str!("hostile/expected.json");

#[wasm_bindgen_test]
async fn hostile_values_throw_documented_errors_and_lose_nothing() {
    // Any client: the table takes the class under test from its constructor.
    let sample = SegOpsClient::new(config(secret_key(), "")).expect("a client");
    let runtime = detect_runtime();
    let result = JsFuture::from(run_hostile_table_from(
        sample.into(),
        api_url(),
        owner_email(),
        owner_password(),
        &runtime,
        EXPECTED,
    ))
    .await
    .unwrap_or_else(|e| panic!("the table could not run: {:?}", error_message(&e)));
    console_log!("{}", string(&result, "table").unwrap_or_default());
    // `SEGOPS_HOSTILE_DUMP=1` at compile time prints the rows, to rebuild expected.json.
    if option_env!("SEGOPS_HOSTILE_DUMP").is_some() {
        console_log!(
            "HOSTILE-ROWS {runtime} {}",
            string(&result, "rowsJson").unwrap_or_default()
        );
    }
    let problems: Vec<String> = js_sys::Array::from(&get(&result, "problems"))
        .iter()
        .filter_map(|p| p.as_string())
        .collect();
    assert!(
        problems.is_empty(),
        "{} problems in {runtime}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
