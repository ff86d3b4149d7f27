//! Property tests at the trust boundary: every parser of outside input (server answers, config,
//! URLs, stored snapshots, dates) must answer every input without panicking, since a panic in
//! wasm kills the client. Native only; case counts are kept low so the suite stays fast.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;

use segops_sdk::core::auth::{classify_mint, MintAnswer, Session, SessionKey, Signature};
use segops_sdk::core::config::{Config, ConfigInput, KeyKind};
use segops_sdk::core::delivery::{classify, HttpResult, Outcome};
use segops_sdk::core::event::{EventInput, EventKind, Identity};
use segops_sdk::core::json::{self, Value};
use segops_sdk::core::pipeline::Pipeline;
use segops_sdk::core::privacy::{cap_json, Consent, Cuts, MAX_DEPTH, MAX_KEYS, MAX_STRING_CHARS};
use segops_sdk::core::referrer::{self, CustomProvider, PageSnapshot, UTM_KEYS};
use segops_sdk::core::time;

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text made mostly of JSON punctuation, escapes and literals, so the parser goes deep.
fn jsonish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\\u".to_string()),
            Just("\\ud800".to_string()),
            Just("\\udc00".to_string()),
            Just("\\uDBFF\\uDFFF".to_string()),
            Just("true".to_string()),
            Just("null".to_string()),
            Just("-".to_string()),
            Just("1e400".to_string()),
            Just("0.5E-3".to_string()),
            Just(" ".to_string()),
            "[0-9a-fA-F]{1,4}",
            "\\PC{0,3}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), jsonish()]
}

/// A [`Value`] that shows as its JSON text (the crate's `Value` has no `Debug` outside its tests).
#[derive(Clone, PartialEq)]
struct V(Value);

impl std::fmt::Debug for V {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&write(&self.0))
    }
}

fn array(items: Vec<V>) -> V {
    V(Value::Array(items.into_iter().map(|v| v.0).collect()))
}

fn object(members: Vec<(String, V)>) -> V {
    V(Value::Object(
        members.into_iter().map(|(k, v)| (k, v.0)).collect(),
    ))
}

/// JSON values as a server or `JSON.stringify` could produce them.
fn json_value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        Just(V(Value::Null)),
        any::<bool>().prop_map(|b| V(Value::Bool(b))),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(|n| V(Value::number(n))),
        any::<i32>().prop_map(|n| V(Value::number(f64::from(n)))),
        any::<String>().prop_map(|s| V(Value::String(s))),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(array),
            proptest::collection::vec(("\\PC{0,6}", inner), 0..6).prop_map(object),
        ]
    })
}

fn write(v: &Value) -> String {
    let mut out = String::new();
    json::write_value(&mut out, v);
    out
}

fn str_lit(s: &str) -> String {
    let mut out = String::new();
    json::write_str(&mut out, s);
    out
}

proptest! {
    #![proptest_config(cfg(256))]

    // ---- json ----

    #[test]
    fn json_parse_never_panics(text in any_text()) {
        if let Err(e) = json::parse(&text) {
            prop_assert!(e.offset <= text.len());
            prop_assert!(!e.reason.is_empty());
        }
    }

    #[test]
    fn json_written_values_parse_back(v in json_value()) {
        let V(v) = v;
        let text = write(&v);
        let back = json::parse(&text);
        prop_assert!(back.is_ok(), "{text}");
        prop_assert!(back.ok() == Some(v), "{text}");
    }

    #[test]
    fn json_write_str_round_trips(s in any::<String>()) {
        let lit = str_lit(&s);
        prop_assert!(!lit.bytes().any(|b| b < 0x20));
        prop_assert!(json::parse(&lit).ok() == Some(Value::String(s)));
    }

    #[test]
    fn json_fix_lone_surrogates_keeps_length_and_meaning(text in any_text()) {
        let fixed = json::fix_lone_surrogates(&text);
        prop_assert_eq!(fixed.len(), text.len());
        // Lone surrogate escapes already parse to U+FFFD, so fixing changes no parsed value.
        if let Ok(v) = json::parse(&text) {
            prop_assert!(json::parse(&fixed).ok() == Some(v));
        }
    }

    #[test]
    fn json_fix_lone_surrogates_in_strings(units in proptest::collection::vec(
        prop_oneof![0xd800u32..0xe000, 0x20u32..0x7f, any::<u16>().prop_map(u32::from)], 0..12)) {
        let mut text = String::from("\"");
        for u in &units {
            text.push_str(&format!("\\u{u:04x}"));
        }
        text.push('"');
        let fixed = json::fix_lone_surrogates(&text);
        prop_assert_eq!(fixed.len(), text.len());
        let a = json::parse(&text);
        let b = json::parse(&fixed);
        prop_assert!(a.is_ok() && b.is_ok(), "{text}");
        prop_assert!(a.ok() == b.ok());
        // What is left are pairs: every \ud8.. in the output is followed by a \udc.. escape.
        let s = fixed.to_ascii_lowercase();
        let bytes = s.as_bytes();
        let mut i = 0;
        while let Some(at) = s[i..].find("\\ud") {
            let at = i + at;
            let unit = u32::from_str_radix(&s[at + 2..at + 6], 16).unwrap();
            if (0xd800..0xdc00).contains(&unit) {
                prop_assert!(bytes.get(at + 6..at + 9) == Some(b"\\ud".as_slice()), "{}", s);
                let low = u32::from_str_radix(&s[at + 8..at + 12], 16).unwrap();
                prop_assert!((0xdc00..0xe000).contains(&low), "{}", s);
                i = at + 12;
            } else {
                prop_assert!(!(0xdc00..0xe000).contains(&unit), "{}", s);
                i = at + 6;
            }
        }
    }
}

#[test]
fn json_deep_nesting_is_an_error_not_a_stack_overflow() {
    for open in ["[", "{\"a\":"] {
        let text = open.repeat(100_000);
        assert!(json::parse(&text).is_err());
    }
}

// ---- config ----

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(0.7, s)
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (0u32..1_000_000).prop_map(f64::from),
        (0u32..600_000_000).prop_map(f64::from),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(1e300),
    ]
}

fn config_input() -> impl Strategy<Value = ConfigInput> {
    let url = prop_oneof![
        Just("https://api.segops.example".to_string()),
        "(https?://)?[a-z.:/@?# ]{0,20}",
        any::<String>(),
    ];
    let key = prop_oneof!["(sk_|pk_|mk_|xx)[ -~]{0,10}", any::<String>(),];
    (
        (
            opt(url),
            opt(key),
            opt(number()),
            opt(number()),
            opt(number()),
            opt(number()),
        ),
        (
            opt(number()),
            opt(number()),
            opt(number()),
            opt(any::<bool>()),
            opt(prop_oneof![
                Just("granted".to_string()),
                Just("denied".to_string()),
                any::<String>()
            ]),
            opt(any::<bool>()),
        ),
    )
        .prop_map(
            |(
                (api_url, api_key, flush_at, flush_interval_ms, max_queue_events, max_queue_bytes),
                (max_event_bytes, max_batch_bytes, request_timeout_ms, debug, consent, gpc),
            )| {
                ConfigInput {
                    api_url,
                    api_key,
                    flush_at,
                    flush_interval_ms,
                    max_queue_events,
                    max_queue_bytes,
                    max_event_bytes,
                    max_batch_bytes,
                    request_timeout_ms,
                    // Any number, like the others: the ranges differ, the checks are the same.
                    session_timeout_ms: request_timeout_ms.map(|v| v * 600.0),
                    debug,
                    consent,
                    respect_global_privacy_control: gpc,
                }
            },
        )
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn config_from_input_never_panics(input in config_input()) {
        match Config::from_input(input) {
            Ok(c) => {
                prop_assert!(!c.api_url.ends_with('/'));
                prop_assert!(c.flush_at >= 1);
                prop_assert!(c.max_queue_events >= 1);
                prop_assert!(c.max_event_bytes >= 256);
                prop_assert!(c.max_event_bytes + 512 <= c.max_batch_bytes);
                prop_assert!(c.max_queue_bytes >= c.max_event_bytes);
                prop_assert!(c.request_timeout_ms >= 100);
                prop_assert!(KeyKind::of(&c.api_key) == Ok(c.key_kind));
            }
            Err(e) => {
                prop_assert!(!e.code().is_empty());
                prop_assert!(!e.message().is_empty());
            }
        }
    }

    #[test]
    fn key_kind_of_never_panics(key in prop_oneof!["(sk_|pk_|mk_)?[ -~]{0,8}", any::<String>()]) {
        let shaped = key.len() > 3 && key.bytes().all(|b| b.is_ascii_graphic());
        match KeyKind::of(&key) {
            Ok(KeyKind::Secret) => prop_assert!(key.starts_with("sk_") && shaped),
            Ok(KeyKind::Public) => prop_assert!(key.starts_with("pk_") && shaped),
            Err(e) => {
                prop_assert!(!((key.starts_with("sk_") || key.starts_with("pk_")) && shaped));
                prop_assert!(!e.message().is_empty());
            }
        }
    }
}

// ---- referrer ----

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(https?://|//|)[a-zA-Z0-9.%:@-]{0,16}(/[a-zA-Z0-9/%.-]{0,10})?(\\?([a-z_]{1,10}=[a-zA-Z0-9%+&=;. -]{0,12}){0,4})?(#.{0,5})?",
        (
            prop_oneof![
                Just("https://chatgpt.com/"),
                Just("https://www.perplexity.ai/search"),
                Just("https://x.com/i/grok"),
                Just("https://shop.example/p")
            ],
            "(\\?(q|query|utm_source|utm_term|utm_medium)=[a-zA-Z0-9%+ \\PC]{0,10}(&(q|utm_source|utm_campaign)=[a-z%0-9]{0,6}){0,3})?"
        )
            .prop_map(|(a, b)| format!("{a}{b}")),
    ]
}

fn custom_provider() -> impl Strategy<Value = CustomProvider> {
    (
        prop_oneof!["[a-z_]{1,8}", any::<String>()],
        proptest::collection::vec(prop_oneof!["[a-z.*:-]{0,12}", any::<String>()], 0..3),
        proptest::option::of(prop_oneof!["/[a-z/]{0,6}", any::<String>()]),
        proptest::collection::vec(prop_oneof!["[a-zA-Z.]{0,8}", any::<String>()], 0..3),
    )
        .prop_map(|(name, hosts, path_prefix, utm_sources)| CustomProvider {
            name,
            hosts,
            path_prefix,
            utm_sources,
        })
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn referrer_classify_never_panics(
        page in url(),
        referrer in prop_oneof![Just(String::new()), url()],
        custom in proptest::collection::vec(custom_provider(), 0..3),
    ) {
        let snap = PageSnapshot { url: &page, referrer: &referrer };
        if let Some(r) = referrer::classify(&snap, &custom) {
            prop_assert!(!r.provider.trim().is_empty());
            prop_assert_eq!(&r.landing_url, &page);
            prop_assert!(r.referrer_url.is_empty() || r.referrer_url == referrer);
            if let Some(q) = &r.query_hint {
                prop_assert!(q.chars().count() <= referrer::MAX_QUERY_HINT_CHARS);
                prop_assert_eq!(q.trim(), q.as_str());
            }
        }
        for p in &custom {
            let _ = referrer::check_custom(p);
        }
    }

    #[test]
    fn referrer_utm_params_are_known_ordered_and_nonempty(page in url()) {
        let params = referrer::utm_params(&page);
        let mut last = None;
        for (key, value) in &params {
            let at = UTM_KEYS.iter().position(|k| k == key);
            prop_assert!(at.is_some());
            prop_assert!(last < at, "keys out of order or repeated");
            last = at;
            prop_assert!(!value.is_empty());
            prop_assert_eq!(value.trim(), value.as_str());
        }
    }

    #[test]
    fn referrer_check_custom_errors_name_a_field(p in custom_provider()) {
        if let Err(m) = referrer::check_custom(&p) {
            let fields = ["name", "hosts", "pathPrefix", "utmSources"];
            prop_assert!(fields.iter().any(|f| m.starts_with(f)), "{m}");
        }
    }
}

// ---- time ----

/// Instants within years 0000-9999.
const MIN_MS: f64 = -62_167_219_200_000.0;
const MAX_MS: f64 = 253_402_300_799_999.0;

fn http_dateish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(Sun|Mon|Xyz), [0-9 ]{2} (Nov|Feb|nov) [0-9]{4} [0-9:]{8} GMT",
        "(Sunday|Monday|Sun), [0-9]{2}-(Nov|Feb)-[0-9]{2} [0-9:]{8} GMT",
        "(Sun|Tue) (Nov|Feb) [0-9 ]{2} [0-9:]{8} [0-9]{4}",
        "[ \t]{0,2}[0-9]{0,25}[ \t]{0,2}",
    ]
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn time_http_dates_never_panic(s in http_dateish(), now in number()) {
        if let Some(ms) = time::parse_http_date(&s) {
            prop_assert!(ms.is_finite());
        }
        if let Some(delay) = time::parse_retry_after(&s, now) {
            prop_assert!(delay >= 0.0 && !delay.is_nan());
        }
    }

    #[test]
    fn time_retry_after_seconds(n in any::<u32>(), now in number()) {
        prop_assert_eq!(time::parse_retry_after(&n.to_string(), now), Some(f64::from(n) * 1000.0));
    }

    #[test]
    fn time_rfc3339_never_panics(s in prop_oneof![
        any::<String>(),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,30})?([Zz]|[+-][0-9]{2}:[0-9]{2}|[+-]..)?",
    ]) {
        if let Some(ms) = time::parse_rfc3339(&s) {
            prop_assert!(ms.is_finite());
        }
    }

    #[test]
    fn time_format_iso8601_any_f64(ms in prop_oneof![any::<f64>(), MIN_MS..MAX_MS]) {
        let s = time::format_iso8601(ms);
        prop_assert_eq!(s.len(), 24, "{}", s);
        let back = time::parse_rfc3339(&s);
        prop_assert!(back.is_some(), "{}", s);
        if ms.is_finite() && (MIN_MS..=MAX_MS).contains(&ms) {
            prop_assert_eq!(back, Some(ms.floor()));
        }
    }
}

// ---- delivery and auth answers ----

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(),
        (
            0u64..5,
            0u64..3,
            proptest::collection::vec((0usize..6, "[a-z_]{0,6}"), 0..4)
        )
            .prop_map(|(accepted, duplicates, rejected)| {
                let r: Vec<String> = rejected
                    .iter()
                    .map(|(i, c)| format!(r#"{{"index":{i},"code":"{c}"}}"#))
                    .collect();
                format!(
                    r#"{{"accepted":{accepted},"duplicates":{duplicates},"rejected":[{}]}}"#,
                    r.join(",")
                )
            }),
        ("[a-z_]{0,8}", any::<String>())
            .prop_map(|(c, m)| format!(r#"{{"code":"{c}","message":{}}}"#, str_lit(&m))),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        any::<u16>(),
        prop_oneof![
            Just(200u16),
            Just(202),
            Just(400),
            Just(401),
            Just(403),
            Just(408),
            Just(413),
            Just(429),
            Just(500),
            Just(503)
        ],
    ]
}

fn http_result() -> impl Strategy<Value = HttpResult> {
    prop_oneof![
        8 => (status(), proptest::option::of(http_dateish()), body()).prop_map(
            |(status, retry_after, body)| HttpResult::Response { status, retry_after, body }
        ),
        1 => any::<String>().prop_map(HttpResult::Network),
        1 => Just(HttpResult::Timeout),
    ]
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn delivery_classify_never_panics(result in http_result(), now in number()) {
        let outcome = classify(&result, now);
        let status = match &result {
            HttpResult::Response { status, .. } => Some(*status),
            _ => None,
        };
        match outcome {
            Outcome::Delivered { .. } => prop_assert!(matches!(status, Some(200..=299))),
            Outcome::Retry { after_ms, reason } => {
                prop_assert!(matches!(status, None | Some(408 | 429 | 500..=599)));
                prop_assert!(!reason.is_empty());
                if let Some(a) = after_ms {
                    prop_assert!(a >= 0.0 && !a.is_nan());
                }
            }
            Outcome::Invalid { .. } => prop_assert_eq!(status, Some(400)),
            Outcome::TooLarge => prop_assert_eq!(status, Some(413)),
            Outcome::AuthFailed { status: s, .. } => {
                prop_assert!(s == 401 || s == 403);
                prop_assert_eq!(status, Some(s));
            }
            Outcome::Refused { status: s, .. } => prop_assert_eq!(status, Some(s)),
        }
    }

    #[test]
    fn auth_classify_mint_never_panics(
        result in prop_oneof![
            http_result(),
            ("[a-z0-9]{0,4}", number(), "[a-z0-9]{0,4}").prop_map(|(token, expires_in, uid)| {
                let mut exp = String::new();
                json::write_value(&mut exp, &Value::number(expires_in));
                HttpResult::Response {
                    status: 200,
                    retry_after: None,
                    body: format!(r#"{{"token":"{token}","expires_in":{exp},"uid":"{uid}"}}"#),
                }
            }),
        ],
        uid in "[a-z0-9]{0,4}",
        now in number(),
    ) {
        match classify_mint(&result, &uid, now) {
            MintAnswer::Token { token, lifetime_ms } => {
                prop_assert!(!token.is_empty());
                prop_assert!(lifetime_ms > 0.0);
                let HttpResult::Response { status, body, .. } = &result else {
                    return Err(TestCaseError::fail("a token without an answer"));
                };
                prop_assert!((200..=299).contains(status));
                let v = json::parse(body).unwrap_or(Value::Null);
                prop_assert_eq!(v.get("uid").and_then(Value::as_str), Some(uid.as_str()));
            }
            MintAnswer::Retry { after_ms, .. } => {
                if let Some(a) = after_ms {
                    prop_assert!(a >= 0.0);
                }
            }
            MintAnswer::Refused { code, .. } => prop_assert!(!code.is_empty()),
        }
    }
}

// ---- auth session ----

#[derive(Debug, Clone)]
enum SessionOp {
    Advance(f64),
    /// Start a mint when the session says one may start, as the pipeline does.
    TryMint,
    /// Answer the mint in flight (or, when `stale`, some other id).
    Answer {
        stale: bool,
        result: HttpResult,
    },
    Invalidate,
    Sign(i64),
    Activity,
}

fn token_answer(uid: String) -> impl Strategy<Value = HttpResult> {
    prop_oneof![Just(1.0f64), Just(3600.0), Just(0.001), number()].prop_map(move |expires_in| {
        let mut exp = String::new();
        json::write_value(&mut exp, &Value::number(expires_in));
        HttpResult::Response {
            status: 200,
            retry_after: None,
            body: format!(r#"{{"token":"t","expires_in":{exp},"uid":"{uid}"}}"#),
        }
    })
}

fn session_op() -> impl Strategy<Value = SessionOp> {
    prop_oneof![
        3 => prop_oneof![0.0..5_000.0f64, 0.0..4_000_000.0f64].prop_map(SessionOp::Advance),
        3 => Just(SessionOp::TryMint),
        4 => (any::<bool>(), prop_oneof![http_result(), token_answer("u".into())])
            .prop_map(|(stale, result)| SessionOp::Answer { stale, result }),
        1 => Just(SessionOp::Invalidate),
        1 => (0i64..3).prop_map(SessionOp::Sign),
        2 => Just(SessionOp::Activity),
    ]
}

proptest! {
    #![proptest_config(cfg(128))]

    #[test]
    fn auth_session_never_mints_twice(
        anonymous in any::<bool>(),
        ops in proptest::collection::vec(session_op(), 0..60),
        jitter in 0.0..1.0f64,
    ) {
        let mut s = Session::new(SessionKey { anonymous, uid: "u".into() });
        let mut now = 1_000_000.0;
        let mut next_id = 1u64;
        for op in ops {
            match op {
                SessionOp::Advance(d) => now += d,
                SessionOp::TryMint => {
                    if s.can_mint(now) || s.wants_refresh(now) {
                        prop_assert_eq!(s.mint_in_flight(), None, "a second mint while one is in flight");
                        s.start_mint(next_id, now);
                        prop_assert_eq!(s.mint_in_flight(), Some(next_id));
                        next_id += 1;
                    }
                }
                SessionOp::Answer { stale, result } => {
                    let id = match (s.mint_in_flight(), stale) {
                        (Some(id), false) => id,
                        (Some(id), true) => id + 1000,
                        (None, _) => next_id,
                    };
                    let t = s.on_answer(id, &result, now, jitter);
                    if stale || s.mint_in_flight() == Some(id) {
                        prop_assert_eq!(t, segops_sdk::core::auth::Transition::Stale);
                    }
                }
                SessionOp::Invalidate => s.invalidate(),
                SessionOp::Sign(ts) => s.set_signature(Signature { sig: "ab".into(), ts }),
                SessionOp::Activity => s.last_activity = now,
            }
            // A usable token means no blocking mint is needed.
            if s.token(now).is_some() {
                prop_assert!(!s.can_mint(now));
            }
            if let Some(until) = s.backoff_until() {
                prop_assert!(!until.is_nan());
            }
        }
    }
}

// ---- privacy caps ----

/// Values that go over the caps: deep, wide, or with long strings.
fn big_value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        4 => json_value(),
        1 => (MAX_STRING_CHARS - 2..MAX_STRING_CHARS + 3, prop_oneof![Just('a'), Just('é'), Just('😀'), Just('"')])
            .prop_map(|(n, c)| V(Value::String(std::iter::repeat_n(c, n).collect()))),
    ];
    leaf.prop_recursive(14, 600, 4, |inner| {
        prop_oneof![
            4 => proptest::collection::vec(inner.clone(), 0..4).prop_map(array),
            4 => proptest::collection::vec(("\\PC{0,4}", inner.clone()), 0..4).prop_map(object),
            1 => (MAX_KEYS - 1..MAX_KEYS + 3).prop_map(|n| V(Value::Array(vec![Value::Null; n]))),
            1 => (MAX_KEYS - 1..MAX_KEYS + 3).prop_map(|n| V(Value::Object(
                (0..n).map(|i| (i.to_string(), Value::number(i as f64))).collect()
            ))),
        ]
    })
}

/// Depth of nested containers (a scalar is 0), widest container, longest string in chars.
fn shape(v: &Value) -> (usize, usize, usize) {
    match v {
        Value::String(s) => (0, 0, s.chars().count()),
        Value::Array(items) => items.iter().map(shape).fold((1, items.len(), 0), |a, b| {
            (a.0.max(b.0 + 1), a.1.max(b.1), a.2.max(b.2))
        }),
        Value::Object(members) => members.iter().fold((1, members.len(), 0), |a, (k, v)| {
            let b = shape(v);
            (
                a.0.max(b.0 + 1),
                a.1.max(b.1),
                a.2.max(b.2).max(k.chars().count()),
            )
        }),
        _ => (0, 0, 0),
    }
}

proptest! {
    #![proptest_config(cfg(128))]

    #[test]
    fn cap_json_output_is_json_within_the_caps(members in proptest::collection::vec(("\\PC{0,4}", big_value()), 0..4)) {
        let V(v) = object(members);
        let text = write(&v);
        let mut cuts = Cuts::default();
        let capped = cap_json(&text, &mut cuts);
        let parsed = json::parse(&capped);
        prop_assert!(parsed.is_ok(), "capped output is not JSON");
        let (depth, width, chars) = shape(&parsed.unwrap_or(Value::Null));
        prop_assert!(depth <= MAX_DEPTH, "depth {}", depth);
        prop_assert!(width <= MAX_KEYS, "width {}", width);
        prop_assert!(chars <= MAX_STRING_CHARS, "chars {}", chars);
        let (d0, w0, c0) = shape(&v);
        let within = d0 <= MAX_DEPTH && w0 <= MAX_KEYS && c0 <= MAX_STRING_CHARS;
        prop_assert_eq!(within, !cuts.any());
        if within {
            prop_assert_eq!(capped.as_ref(), text.as_str());
        }
    }

    #[test]
    fn cap_json_never_panics(text in any_text()) {
        let mut cuts = Cuts::default();
        let _ = cap_json(&text, &mut cuts);
    }
}

// ---- pipeline ----

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        who: u8,
        props: usize,
    },
    Poll,
    /// Answer one of the requests awaiting an answer (by position), with a good answer or the
    /// given one.
    Answer {
        which: usize,
        good: bool,
        result: HttpResult,
    },
    /// An answer for an id nobody asked for.
    Unknown(HttpResult),
    Hidden,
    Resume,
    Snapshot,
    /// Restore the last snapshot, or arbitrary text.
    Restore(Option<String>),
    Consent(Consent),
    Flush,
    Advance(f64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, prop_oneof![0usize..50, 0usize..3000]).prop_map(|(who, props)| Op::Enqueue { who, props }),
        6 => Just(Op::Poll),
        6 => (any::<usize>(), any::<bool>(), server_answer())
            .prop_map(|(which, good, result)| Op::Answer { which, good, result }),
        1 => http_result().prop_map(Op::Unknown),
        1 => Just(Op::Hidden),
        1 => Just(Op::Resume),
        1 => Just(Op::Snapshot),
        1 => proptest::option::of(any_text()).prop_map(Op::Restore),
        1 => prop_oneof![Just(Consent::Granted), Just(Consent::Pending), Just(Consent::Denied)]
            .prop_map(Op::Consent),
        1 => Just(Op::Flush),
        3 => prop_oneof![0.0..3_000.0f64, 0.0..120_000.0f64].prop_map(Op::Advance),
    ]
}

/// Answers shaped like the API's, with statuses it uses: what a faulty server gets wrong.
fn server_answer() -> impl Strategy<Value = HttpResult> {
    prop_oneof![
        1 => http_result(),
        2 => (prop_oneof![Just(200u16), Just(400), Just(401), Just(413), Just(503)], body())
            .prop_map(|(status, body)| HttpResult::Response { status, retry_after: None, body }),
    ]
}

fn identity(who: u8) -> Identity {
    match who {
        0 => Identity::Anonymous {
            anonymous_id: "a1".into(),
        },
        1 => Identity::User {
            user_id: "u1".into(),
            anonymous_id: Some("a1".into()),
        },
        _ => Identity::User {
            user_id: "u2".into(),
            anonymous_id: None,
        },
    }
}

/// The answer a healthy server would give to `req`.
fn good_answer(req: &segops_sdk::core::pipeline::Request) -> HttpResult {
    let body = if req.url.ends_with("/api/ingestion/track/") {
        let n = json::parse(&req.body)
            .ok()
            .and_then(|v| {
                v.get("events")
                    .and_then(Value::as_array)
                    .map(<[Value]>::len)
            })
            .unwrap_or(0);
        format!(r#"{{"accepted":{n},"duplicates":0,"rejected":[]}}"#)
    } else {
        let v = json::parse(&req.body).unwrap_or(Value::Null);
        let uid = v
            .get("user_id")
            .or_else(|| v.get("anonymous_id"))
            .and_then(Value::as_str)
            .unwrap()
            .to_string();
        format!(
            r#"{{"token":"tok","expires_in":600,"uid":{}}}"#,
            str_lit(&uid)
        )
    };
    HttpResult::Response {
        status: 200,
        retry_after: None,
        body,
    }
}

fn small_config(public: bool, small: bool) -> Config {
    Config::from_input(ConfigInput {
        api_url: Some("http://api.test".into()),
        api_key: Some(if public { "pk_test" } else { "sk_test" }.into()),
        flush_at: Some(if small { 2.0 } else { 20.0 }),
        max_queue_events: Some(if small { 5.0 } else { 100.0 }),
        max_queue_bytes: Some(if small { 4096.0 } else { 1_000_000.0 }),
        max_event_bytes: Some(if small { 2048.0 } else { 32_768.0 }),
        max_batch_bytes: Some(if small { 4096.0 } else { 64_000.0 }),
        ..ConfigInput::default()
    })
    .unwrap()
}

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn pipeline_keeps_its_invariants(
        public in any::<bool>(),
        small in any::<bool>(),
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let cfg = small_config(public, small);
        let (max_events, max_bytes) = (cfg.max_queue_events as usize, cfg.max_queue_bytes as usize);
        let mut p = Pipeline::new(cfg, r#"{"library":{"name":"t"}}"#.into(), seed);
        let mut now = 1_000_000.0;
        let mut outstanding: Vec<segops_sdk::core::pipeline::Request> = Vec::new();
        let mut last_snapshot = String::new();
        let mut n = 0u32;
        for op in ops {
            match op {
                Op::Enqueue { who, props } => {
                    n += 1;
                    let event = EventInput {
                        kind: EventKind::Track,
                        event_type: "e".into(),
                        identity: identity(who),
                        timestamp: "2026-11-24T00:00:00.000Z".into(),
                        properties: Some(format!(r#"{{"k":"{}"}}"#, "x".repeat(props))),
                        traits: None,
                        context: None,
                    };
                    let before = p.stats().clone();
                    if p.enqueue(&format!("m{n}"), event, None, now).is_err() {
                        prop_assert!(p.stats() == &before, "a refused event changed the stats");
                    }
                }
                Op::Poll => {
                    while let Some(req) = p.poll_full(now) {
                        let ingest = req.url.ends_with("/api/ingestion/track/");
                        if ingest {
                            prop_assert!(
                                !outstanding.iter().any(|r| !r.keepalive && r.url == req.url),
                                "two ingestion requests in flight"
                            );
                        }
                        prop_assert!(json::parse(&req.body).is_ok());
                        outstanding.push(req);
                        prop_assert!(outstanding.len() < 20, "requests without end");
                    }
                }
                Op::Answer { which, good, result } => {
                    if !outstanding.is_empty() {
                        let req = outstanding.remove(which % outstanding.len());
                        let result = if good { good_answer(&req) } else { result };
                        p.on_result(req.id, result, now);
                    }
                }
                Op::Unknown(result) => p.on_result(1_000_000 + u64::from(n), result, now),
                Op::Hidden => {
                    for req in p.hidden_full(now) {
                        prop_assert!(req.keepalive);
                        prop_assert!(json::parse(&req.body).is_ok());
                        outstanding.push(req);
                    }
                }
                Op::Resume => p.resume(now),
                Op::Snapshot => {
                    let s = p.snapshot();
                    if !s.is_empty() {
                        prop_assert!(json::parse(&s).is_ok());
                        last_snapshot = s;
                    }
                }
                Op::Restore(text) => {
                    let text = text.unwrap_or_else(|| last_snapshot.clone());
                    p.restore(&text, now);
                }
                Op::Consent(c) => p.set_consent(c),
                Op::Flush => {
                    let target = p.request_flush();
                    let _ = p.is_flushed(target);
                }
                Op::Advance(d) => now += d,
            }
            let _ = p.next_wake(now);
            let _ = p.take_logs();
            // After every step, batches put back included (on_hidden, a refused session).
            prop_assert!(p.queued() <= max_events, "queue over maxQueueEvents");
            prop_assert!(p.queued_bytes() <= max_bytes, "queue over maxQueueBytes");
            let s = p.stats();
            prop_assert_eq!(
                s.recorded + s.restored,
                s.sent + s.dropped_total() + p.pending() as u64,
                "an event was lost or counted twice: {:?}", s
            );
        }
    }
}

/// Regression: a 2xx that named one event twice in `rejected` made `sent` underflow (a panic
/// in debug builds, a huge count in release ones).
#[test]
fn pipeline_counts_an_event_rejected_twice_once() {
    let mut p = Pipeline::new(small_config(false, false), String::new(), 1);
    let event = EventInput {
        kind: EventKind::Track,
        event_type: "e".into(),
        identity: identity(2),
        timestamp: "2026-11-24T00:00:00.000Z".into(),
        properties: None,
        traits: None,
        context: None,
    };
    p.enqueue("m1", event, None, 0.0).unwrap();
    p.request_flush();
    let req = p.poll_full(0.0).unwrap();
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
