//! CORS on every answer, fault injection and the dev stats.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const ORIGIN: &str = "https://app.example.com";

#[track_caller]
fn assert_cors(r: &Resp, origin: Option<&str>) {
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        origin,
        "{} {}",
        r.status,
        r.text
    );
    let expose = r
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        expose.contains("retry-after") && expose.contains("date"),
        "{expose}"
    );
    assert!(
        r.headers_all("vary").iter().any(|v| v.contains("Origin")),
        "Vary: Origin on {} {}",
        r.status,
        r.text
    );
    assert!(r.header("access-control-allow-credentials").is_none());
    assert!(r.header("date").is_some());
}

#[test]
fn preflights_on_any_path() {
    let emu = Emulator::start();
    for path in [
        "/api/auth/session/",
        "/api/ingestion/track/",
        "/api/events/",
        "/api/auth/api-keys/key_x/",
        "/no/such/path",
    ] {
        for origin in ["https://anything.example", "null", "http://localhost:5173"] {
            let r = emu.req(
                "OPTIONS",
                path,
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                    (
                        "Access-Control-Request-Headers",
                        "authorization, content-type",
                    ),
                ],
                None,
            );
            assert_eq!(r.status, 204, "{path}");
            assert_eq!(
                r.header("access-control-allow-origin").as_deref(),
                Some(origin)
            );
            assert_eq!(
                r.header("access-control-allow-methods").as_deref(),
                Some("GET, POST, PATCH, DELETE, OPTIONS")
            );
            assert_eq!(
                r.header("access-control-allow-headers").as_deref(),
                Some("authorization, content-type, content-encoding")
            );
            assert_eq!(r.header("access-control-max-age").as_deref(), Some("600"));
            assert!(r.headers_all("vary").iter().any(|v| v.contains("Origin")));
            assert!(r.header("access-control-allow-credentials").is_none());
            assert!(r.text.is_empty());
        }
    }
    // No Origin: still 204, nothing to reflect.
    let r = emu.req(
        "OPTIONS",
        "/api/events/",
        &[("Access-Control-Request-Method", "GET")],
        None,
    );
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-origin").is_none());
}

#[test]
fn cors_headers_on_every_answer() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let pk = emu.public_key(&owner, &["https://shop.acme.com"], false);
    let o = &[("Origin", ORIGIN)];
    fn with(auth: &str) -> Vec<(&str, &str)> {
        vec![("Origin", ORIGIN), ("Authorization", auth)]
    }

    let r = emu.req("GET", "/healthz", o, None);
    assert_eq!(r.status, 200);
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req("GET", "/healthz", &[], None);
    assert_cors(&r, None);
    let r = emu.req("POST", "/api/ingestion/track/", o, Some(b"{}".to_vec()));
    r.expect(401, "missing_credentials");
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req(
        "GET",
        "/api/events/",
        &with(&apikey(pk["key"].as_str().unwrap())),
        None,
    );
    r.expect(403, "forbidden");
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req(
        "POST",
        "/api/auth/session/",
        &with(&apikey(pk["key"].as_str().unwrap())),
        Some(json!({"user_id": "a"}).to_string().into_bytes()),
    );
    r.expect(403, "origin_not_allowed");
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req("GET", "/nope", o, None);
    r.expect(404, "not_found");
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req("DELETE", "/api/events/", o, None);
    r.expect(405, "method_not_allowed");
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &with(&sk),
        Some(vec![b' '; 600 * 1024]),
    );
    r.expect(413, "payload_too_large");
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &with(&sk),
        Some(b"x".to_vec()),
    );
    r.expect(400, "invalid_json");
    assert_cors(&r, Some(ORIGIN));
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &with(&sk),
        Some(json!({"events": [event(&mid())]}).to_string().into_bytes()),
    );
    assert_eq!(r.status, 200);
    assert_cors(&r, Some(ORIGIN));
}

#[test]
fn faults_status_count_and_retry_after() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let r = emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/api/ingestion/", "status": 503, "count": 2, "retry_after": "7"}),
    );
    r.expect(201, "");
    assert!(r.body["id"].is_number());
    for _ in 0..2 {
        let r = emu.req(
            "POST",
            "/api/ingestion/track/",
            &[("Authorization", &sk), ("Origin", ORIGIN)],
            Some(json!({"events": [event(&mid())]}).to_string().into_bytes()),
        );
        r.expect(503, "fault_injected");
        assert_eq!(r.header("retry-after").as_deref(), Some("7"));
        assert_cors(&r, Some(ORIGIN));
    }
    emu.track(&sk, &[event(&mid())]).expect(200, "");
    // Faulted requests stored nothing.
    assert_eq!(emu.events(&owner).len(), 1);

    // A numeric retry_after, an HTTP date, and a 429.
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/api/ingestion/track/", "status": 429, "retry_after": 3}),
    )
    .expect(201, "");
    let r = emu.track(&sk, &[event(&mid())]);
    r.expect(429, "fault_injected");
    assert_eq!(r.header("retry-after").as_deref(), Some("3"));
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/api/", "status": 500, "retry_after": "Wed, 21 Oct 2026 07:28:00 GMT"}),
    )
    .expect(201, "");
    let r = emu.get("/api/events/", Some(&owner));
    r.expect(500, "fault_injected");
    assert_eq!(
        r.header("retry-after").as_deref(),
        Some("Wed, 21 Oct 2026 07:28:00 GMT")
    );
    // Without retry_after, no header.
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/healthz", "status": 502}),
    )
    .expect(201, "");
    let r = emu.get("/healthz", None);
    r.expect(502, "fault_injected");
    assert!(r.header("retry-after").is_none());
    emu.get("/healthz", None).expect(200, "");

    // Validation.
    for bad in [
        json!({}),
        json!({"path_prefix": 5}),
        json!({"path_prefix": "/", "status": 99}),
        json!({"path_prefix": "/", "status": "500"}),
        json!({"path_prefix": "/", "count": 0}),
        json!({"path_prefix": "/", "probability": 1.5}),
        json!({"path_prefix": "/", "delay_ms": -1}),
        json!({"path_prefix": "/", "after_commit": "yes"}),
        json!({"path_prefix": "/", "retry_after": "a\nb"}),
        json!({"path_prefix": "/", "nope": 1}),
    ] {
        emu.post("/api/dev/faults/", Some(&owner), &bad)
            .expect(400, "invalid_request");
    }
    emu.post("/api/dev/faults/", None, &json!({"path_prefix": "/"}))
        .expect(401, "missing_credentials");
}

#[test]
fn fault_unlimited_count_dev_paths_preflights_and_clear() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/", "status": 500, "count": null}),
    )
    .expect(201, "");
    for _ in 0..3 {
        emu.track(&sk, &[event(&mid())])
            .expect(500, "fault_injected");
    }
    // Preflights and the dev endpoints are never faulted.
    let r = emu.req(
        "OPTIONS",
        "/api/ingestion/track/",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    assert_eq!(r.status, 204);
    emu.get("/api/dev/stats/", Some(&owner)).expect(200, "");
    let r = emu.delete("/api/dev/faults/", Some(&owner));
    assert_eq!(r.ok()["cleared"], 1);
    emu.track(&sk, &[event(&mid())]).expect(200, "");
    let r = emu.delete("/api/dev/faults/", Some(&owner));
    assert_eq!(r.ok()["cleared"], 0);
}

#[test]
fn fault_probability_zero_never_applies() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/api/", "status": 503, "count": null, "probability": 0}),
    )
    .expect(201, "");
    for _ in 0..20 {
        emu.track(&sk, &[event(&mid())]).expect(200, "");
    }
    assert_eq!(emu.stats(&owner)["faults_applied"], 0);
    assert_eq!(
        emu.delete("/api/dev/faults/", Some(&owner)).body["cleared"],
        1
    );
}

#[test]
fn fault_delay_only() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/api/ingestion/track/", "delay_ms": 400}),
    )
    .expect(201, "");
    let t = Instant::now();
    emu.track(&sk, &[event(&mid())]).expect(200, "");
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    // count defaulted to 1: the next one is not delayed.
    emu.track(&sk, &[event(&mid())]).expect(200, "");
    assert_eq!(emu.stats(&owner)["faults_applied"], 1);
    // A delay with a status.
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/api/ingestion/track/", "delay_ms": 300, "status": 504}),
    )
    .expect(201, "");
    let t = Instant::now();
    emu.track(&sk, &[event(&mid())])
        .expect(504, "fault_injected");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(emu.events(&owner).len(), 2);
}

#[test]
fn fault_after_commit_stores_then_fails() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/api/ingestion/track/", "status": 500, "after_commit": true}),
    )
    .expect(201, "");
    let m = mid();
    let r = emu.req(
        "POST",
        "/api/ingestion/track/",
        &[("Authorization", &sk), ("Origin", ORIGIN)],
        Some(json!({"events": [event(&m)]}).to_string().into_bytes()),
    );
    r.expect(500, "fault_injected");
    assert_cors(&r, Some(ORIGIN));
    // The event was stored: the retry is a duplicate.
    let events = emu.events(&owner);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["message_id"], m.as_str());
    let r = emu.track(&sk, &[event(&m)]);
    assert_eq!(r.ok()["duplicates"], 1);
    assert_eq!(r.body["accepted"], 0);
}

#[test]
fn dev_stats_count_and_reset() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let pk = emu.public_key(&owner, &[ORIGIN], false);
    let key = pk["key"].as_str().unwrap();
    emu.delete("/api/dev/stats/", Some(&owner)).expect(200, "");
    let s = emu.stats(&owner);
    assert_eq!(s["requests"], 0);

    emu.mint(key, Some(ORIGIN), &json!({"user_id": "alice"}))
        .expect(200, "");
    emu.mint(key, Some(ORIGIN), &json!({"user_id": "alice"}))
        .expect(200, "");
    emu.mint(key, Some(ORIGIN), &json!({"anonymous_id": "anon-1"}))
        .expect(200, "");
    emu.mint(key, Some("https://evil.com"), &json!({"user_id": "eve"}))
        .expect(403, "origin_not_allowed");
    let m = mid();
    let mut bad = event(&mid());
    bad["type"] = json!("nope");
    emu.track(&sk, &[event(&m), event(&m), bad]).expect(200, "");
    emu.track(&sk, &[event(&m)]).expect(200, "");
    emu.track("ApiKey sk_live_nope", &[event(&m)])
        .expect(401, "invalid_api_key");
    emu.post(
        "/api/dev/faults/",
        Some(&owner),
        &json!({"path_prefix": "/healthz", "status": 503}),
    )
    .expect(201, "");
    emu.get("/healthz", None).expect(503, "fault_injected");
    // A preflight is not counted.
    emu.req(
        "OPTIONS",
        "/api/ingestion/track/",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );

    let s = emu.stats(&owner);
    assert_eq!(s["mints"], 3, "{s}");
    assert_eq!(s["mints_by_uid"], json!({"alice": 2, "anon-1": 1}));
    assert_eq!(s["events_stored"], 1);
    assert_eq!(s["duplicates"], 2);
    assert_eq!(s["rejected"], 1);
    assert_eq!(s["faults_applied"], 1);
    assert_eq!(s["requests"], 8, "{s}");
    assert_eq!(s["by_route"]["POST /api/auth/session/"], 4);
    assert_eq!(s["by_route"]["POST /api/ingestion/track/"], 3);
    assert_eq!(s["by_route"]["GET /healthz"], 1);
    assert_eq!(s["by_status"]["200"], 5);
    assert_eq!(s["by_status"]["401"], 1);
    assert_eq!(s["by_status"]["403"], 1);
    assert_eq!(s["by_status"]["503"], 1);

    // Key routes fold their id.
    emu.patch(
        &format!("/api/auth/api-keys/{}/", pk["id"].as_str().unwrap()),
        Some(&owner),
        &json!({"name": "n"}),
    )
    .expect(200, "");
    assert_eq!(
        emu.stats(&owner)["by_route"]["PATCH /api/auth/api-keys/{id}/"],
        1
    );

    // DELETE resets (and answers with the counters it cleared).
    let r = emu.delete("/api/dev/stats/", Some(&owner));
    assert_eq!(r.ok()["mints"], 3);
    let s = emu.stats(&owner);
    assert_eq!(
        s,
        json!({"requests": 0, "by_route": {}, "by_status": {}, "mints": 0, "mints_by_uid": {},
               "events_stored": 0, "duplicates": 0, "rejected": 0, "faults_applied": 0})
    );
}
