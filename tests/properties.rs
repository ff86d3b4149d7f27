//! Property tests at the trust boundary: every parser of outside input (server answers, config,
//! URLs, stored snapshots, dates) must answer every input without panicking, since a panic in
//! wasm kills the client.
#![cfg(not(target_arch = "wasm32"))]

use segops_sdk::config::{Config, ConfigInput};
use segops_sdk::delivery::HttpResult;
use segops_sdk::event::{EventInput, EventKind, Identity};
use segops_sdk::pipeline::Pipeline;

/// Regression: a 2xx that named one event twice in `rejected` made `sent` underflow (a panic
/// in debug builds, a huge count in release ones).
#[test]
fn pipeline_counts_an_event_rejected_twice_once() {
    let mut p = Pipeline::new(
        Config::from_input(ConfigInput {
            api_url: Some("http://api.test".into()),
            api_key: Some("sk_test".into()),
            ..ConfigInput::default()
        })
        .unwrap(),
        String::new(),
        1,
    );
    let event = EventInput {
        kind: EventKind::Track,
        event_type: "e".into(),
        identity: Identity::User {
            user_id: "u2".into(),
            anonymous_id: None,
        },
        timestamp: "2026-11-24T00:00:00.000Z".into(),
        properties: None,
        traits: None,
        context: None,
    };
    p.enqueue("m1", event, None, 0.0).unwrap();
    p.request_flush();
    let req = p.poll_request(0.0).unwrap();
    p.on_result(
        req.id,
        HttpResult::Response {
            status: 200,
            retry_after: None,
            body: r#"{"rejected":[{"index":0,"code":"a"},{"index":0,"code":"b"}]}"#.into(),
        },
        0.0,
    );
    let s = p.stats();
    assert_eq!((s.sent, s.dropped("a"), s.dropped("b")), (0, 1, 0), "{s:?}");
    assert_eq!(s.recorded, s.sent + s.dropped_total() + p.pending() as u64);
}
