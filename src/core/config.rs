//! Client configuration: the typed, validated form of what the app passes to `new SegOpsClient`.
//!
//! The JS edge reads the config object once, checks each field's JS type and fills a
//! [`ConfigInput`]; [`Config::from_input`] checks values and applies the defaults documented
//! below. Every error names the field and what was expected.

use crate::core::error::Error;
use crate::core::privacy::Consent;
#[allow(unused_imports)]
use crate::prelude::*;

/// Events per batch that trigger a send before the interval is up.
///
/// Default 20. The anchors: Segment's and analytics-node's `flushAt` is 20, Amplitude's
/// `flushQueueSize` 30, Mixpanel's batch 50. Sends are never made inside `track()`: they are
/// scheduled for after the current task, so a burst of any size still goes out in as few
/// batches as `maxBatchBytes` allows; `flushAt` only decides how early a trickle of events
/// leaves, and 20 keeps the loss window on a crash small without a request per click.
pub const DEFAULT_FLUSH_AT: u32 = 20;
/// How long the first queued event waits for company before it is sent anyway.
///
/// Default 2,000 ms: between Amplitude's 1 s and PostHog's 3 s. A hidden page flushes at once
/// regardless, so a longer wait costs little data on exit and saves requests.
pub const DEFAULT_FLUSH_INTERVAL_MS: u32 = 2_000;
/// Bound on queued events (not counting the batch in flight). Overflow drops the oldest.
///
/// Default 20,000: a burst of 10,000 `track()` calls in one task must fit whole.
pub const DEFAULT_MAX_QUEUE_EVENTS: u32 = 20_000;
/// Bound on the serialized bytes of queued events. Overflow drops the oldest.
///
/// Default 8 MiB: 20,000 events of about 400 bytes.
pub const DEFAULT_MAX_QUEUE_BYTES: u32 = 8 * 1024 * 1024;
/// Largest serialized event; a larger one is refused by `track()` with `event_too_large`.
///
/// Default 32 KiB, the server's per-event limit (docs/protocol.md).
pub const DEFAULT_MAX_EVENT_BYTES: u32 = 32 * 1024;
/// Largest request body. Default and maximum 512 KiB, the server's per-request limit.
pub const DEFAULT_MAX_BATCH_BYTES: u32 = 512 * 1024;
/// A request that has not answered after this long is aborted and retried.
///
/// Default 10,000 ms: ingestion answers in milliseconds, and a hung request blocks the batches
/// behind it (one batch is in flight at a time, to keep order and never send twice).
pub const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 10_000;

/// How long a visit (session) lasts without an event, in a browser; it ends sooner only at
/// 24 hours (see [`crate::core::visit`]).
///
/// Default 30 minutes, the anchors' rule: PostHog's and Amplitude's session timeout, and Google
/// Analytics'. From 1 minute to 24 hours.
pub const DEFAULT_SESSION_TIMEOUT_MS: u32 = 30 * 60_000;

/// The consent state of a visitor who has not chosen, when the config gives none.
///
/// Default granted: the SDK's behaviour before consent existed, and what an app without a
/// consent banner expects. Apps that must ask first pass `consent: "pending"`. Not the whole
/// rule: a persisted choice and Global Privacy Control come first (see
/// `startConsent` in `js/loader/store.js`).
pub const DEFAULT_CONSENT: Consent = Consent::Granted;
/// Whether `navigator.globalPrivacyControl === true` starts a client denied (unless the config
/// grants explicitly or the visitor granted earlier).
///
/// Default true: GPC is an opt-out the visitor already expressed, legally binding for the sale
/// or sharing of personal data in California (CCPA regulations) and Colorado; honouring it costs
/// an app nothing it was allowed to collect.
pub const DEFAULT_RESPECT_GLOBAL_PRIVACY_CONTROL: bool = true;

/// The kind of an API key, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `sk_`: servers; sent as `Authorization: ApiKey sk_...`.
    Secret,
    /// `pk_`: browsers; exchanged for a short-lived session token.
    Public,
}

impl KeyKind {
    /// Classifies a key; `mk_` and unknown prefixes are errors.
    pub fn of(key: &str) -> Result<KeyKind, Error> {
        let kind = if key.starts_with("sk_") {
            KeyKind::Secret
        } else if key.starts_with("pk_") {
            KeyKind::Public
        } else if key.starts_with("mk_") {
            return Err(Error::McpKeyNotAllowed);
        } else {
            return Err(Error::InvalidApiKey);
        };
        // The key goes into a header: printable ASCII only, and something after the prefix.
        if key.len() <= 3 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::config(
                "apiKey",
                "expected the key as issued: printable characters after the sk_/pk_ prefix, no spaces",
            ));
        }
        Ok(kind)
    }
}

/// What the client read from the app's config (see `crate::core::client`), each field already
/// of the right type.
#[derive(Debug, Clone, Default)]
pub struct ConfigInput {
    pub api_url: Option<String>,
    pub api_key: Option<String>,
    pub flush_at: Option<f64>,
    pub flush_interval_ms: Option<f64>,
    pub max_queue_events: Option<f64>,
    pub max_queue_bytes: Option<f64>,
    pub max_event_bytes: Option<f64>,
    pub max_batch_bytes: Option<f64>,
    pub request_timeout_ms: Option<f64>,
    pub session_timeout_ms: Option<f64>,
    pub debug: Option<bool>,
    pub consent: Option<String>,
    pub respect_global_privacy_control: Option<bool>,
}

/// The validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Base URL without a trailing slash, e.g. `https://api.segops.example`.
    pub api_url: String,
    pub api_key: String,
    pub key_kind: KeyKind,
    pub flush_at: u32,
    pub flush_interval_ms: u32,
    pub max_queue_events: u32,
    pub max_queue_bytes: u32,
    pub max_event_bytes: u32,
    pub max_batch_bytes: u32,
    pub request_timeout_ms: u32,
    /// [`DEFAULT_SESSION_TIMEOUT_MS`] unless given.
    pub session_timeout_ms: u32,
    /// Log every delivery decision to the console. Default false.
    pub debug: bool,
    /// The consent state for visitors who have not chosen yet, as the config gave it; `None`
    /// when absent, which means [`DEFAULT_CONSENT`]. Whether it was given matters: only an
    /// explicit `"granted"` overrules Global Privacy Control (see
    /// `startConsent` in `js/loader/store.js` for the whole rule).
    pub consent: Option<Consent>,
    /// Start denied when the browser sends Global Privacy Control. Default
    /// [`DEFAULT_RESPECT_GLOBAL_PRIVACY_CONTROL`] (true).
    pub respect_global_privacy_control: bool,
}

fn int_in(field: &str, value: Option<f64>, default: u32, min: u32, max: u32) -> Result<u32, Error> {
    let Some(v) = value else { return Ok(default) };
    if crate::core::num::is_integral(v) && v >= f64::from(min) && v <= f64::from(max) {
        // In range and integral, so the cast is exact.
        Ok(v as u32)
    } else {
        let mut expected = String::from("expected an integer from ");
        crate::core::num::push_int(&mut expected, i64::from(min));
        expected.push_str(" to ");
        crate::core::num::push_int(&mut expected, i64::from(max));
        expected.push_str(", got ");
        expected.push_str(&show_number(v));
        Err(Error::config(field, &expected))
    }
}

/// How a number the app gave looks in an error message. No float formatting: it would add
/// several kilobytes to the wasm for the sake of an error message.
fn show_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else if crate::core::num::is_integral(v) && v.abs() < 1e15 {
        crate::core::num::int_string(v as i64)
    } else if v.abs() < 1e15 {
        "a fractional number".to_string()
    } else {
        "a number that large".to_string()
    }
}

/// Checks an http(s) URL and returns it without trailing slashes.
fn api_url(value: Option<String>) -> Result<String, Error> {
    let expected = "expected an http:// or https:// URL such as https://api.segops.example";
    let Some(url) = value else {
        return Err(Error::config("apiUrl", "is required; ").with_suffix(expected));
    };
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| Error::config("apiUrl", expected))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || rest.contains(['?', '#', ' '])
        || host.contains('@')
        || !rest.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::config("apiUrl", expected));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl Error {
    fn with_suffix(self, suffix: &str) -> Error {
        match self {
            Error::InvalidConfig {
                field,
                mut expected,
            } => {
                expected.push_str(suffix);
                Error::InvalidConfig { field, expected }
            }
            other => other,
        }
    }
}

impl Config {
    pub fn from_input(input: ConfigInput) -> Result<Config, Error> {
        let api_url = api_url(input.api_url)?;
        let api_key = input.api_key.ok_or_else(|| {
            Error::config(
                "apiKey",
                "is required: a pk_ key in browsers, an sk_ key on servers",
            )
        })?;
        let key_kind = KeyKind::of(api_key.trim())?;
        let api_key = api_key.trim().to_string();
        let max_batch_bytes = int_in(
            "maxBatchBytes",
            input.max_batch_bytes,
            DEFAULT_MAX_BATCH_BYTES,
            1024,
            DEFAULT_MAX_BATCH_BYTES,
        )?;
        // An event must fit in a batch with its envelope.
        let max_event_bytes = int_in(
            "maxEventBytes",
            input.max_event_bytes,
            DEFAULT_MAX_EVENT_BYTES.min(max_batch_bytes - 512),
            256,
            max_batch_bytes - 512,
        )?;
        let max_queue_bytes = int_in(
            "maxQueueBytes",
            input.max_queue_bytes,
            DEFAULT_MAX_QUEUE_BYTES,
            max_event_bytes,
            256 * 1024 * 1024,
        )?;
        Ok(Config {
            api_url,
            api_key,
            key_kind,
            flush_at: int_in("flushAt", input.flush_at, DEFAULT_FLUSH_AT, 1, 100_000)?,
            flush_interval_ms: int_in(
                "flushIntervalMs",
                input.flush_interval_ms,
                DEFAULT_FLUSH_INTERVAL_MS,
                0,
                3_600_000,
            )?,
            max_queue_events: int_in(
                "maxQueueEvents",
                input.max_queue_events,
                DEFAULT_MAX_QUEUE_EVENTS,
                1,
                10_000_000,
            )?,
            max_queue_bytes,
            max_event_bytes,
            max_batch_bytes,
            request_timeout_ms: int_in(
                "requestTimeoutMs",
                input.request_timeout_ms,
                DEFAULT_REQUEST_TIMEOUT_MS,
                100,
                600_000,
            )?,
            session_timeout_ms: int_in(
                "sessionTimeoutMs",
                input.session_timeout_ms,
                DEFAULT_SESSION_TIMEOUT_MS,
                60_000,
                86_400_000,
            )?,
            debug: input.debug.unwrap_or(false),
            consent: match input.consent.as_deref() {
                None => None,
                Some(s) => Some(Consent::parse(s).ok_or_else(|| {
                    Error::config("consent", "expected \"granted\", \"pending\" or \"denied\"")
                })?),
            },
            respect_global_privacy_control: input
                .respect_global_privacy_control
                .unwrap_or(DEFAULT_RESPECT_GLOBAL_PRIVACY_CONTROL),
        })
    }

    /// `{apiUrl}/api/ingestion/track/`
    pub fn ingest_url(&self) -> String {
        let mut u = self.api_url.clone();
        u.push_str("/api/ingestion/track/");
        u
    }

    /// `{apiUrl}/api/auth/session/`
    pub fn session_url(&self) -> String {
        let mut u = self.api_url.clone();
        u.push_str("/api/auth/session/");
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ConfigInput {
        ConfigInput {
            api_url: Some("https://api.example.com/".into()),
            api_key: Some("sk_live_abc".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_input(input()).unwrap();
        assert_eq!(c.api_url, "https://api.example.com");
        assert_eq!(
            c.ingest_url(),
            "https://api.example.com/api/ingestion/track/"
        );
        assert_eq!(c.session_url(), "https://api.example.com/api/auth/session/");
        assert_eq!(c.key_kind, KeyKind::Secret);
        assert_eq!(c.flush_at, DEFAULT_FLUSH_AT);
        assert_eq!(c.flush_interval_ms, DEFAULT_FLUSH_INTERVAL_MS);
        assert_eq!(c.max_queue_events, DEFAULT_MAX_QUEUE_EVENTS);
        assert_eq!(c.max_queue_bytes, DEFAULT_MAX_QUEUE_BYTES);
        assert_eq!(c.max_event_bytes, 32 * 1024);
        assert_eq!(c.max_batch_bytes, 512 * 1024);
        assert_eq!(c.request_timeout_ms, DEFAULT_REQUEST_TIMEOUT_MS);
        assert!(!c.debug);
        assert_eq!(c.consent, None, "granted, but not explicitly");
        assert!(c.respect_global_privacy_control);
    }

    #[test]
    fn consent_is_one_of_three_states() {
        for (text, state) in [
            ("granted", Consent::Granted),
            ("pending", Consent::Pending),
            ("denied", Consent::Denied),
        ] {
            let c = Config::from_input(ConfigInput {
                consent: Some(text.into()),
                respect_global_privacy_control: Some(false),
                ..input()
            })
            .unwrap();
            assert_eq!(c.consent, Some(state));
            assert!(!c.respect_global_privacy_control);
        }
        for bad in ["", "Granted", "yes", "opt-out"] {
            let e = Config::from_input(ConfigInput {
                consent: Some(bad.into()),
                ..input()
            })
            .unwrap_err();
            assert_eq!(e.field(), Some("consent"));
            assert!(e.message().contains("\"pending\""), "{e}");
        }
    }

    #[test]
    fn key_kinds_by_prefix() {
        assert_eq!(KeyKind::of("sk_live_x"), Ok(KeyKind::Secret));
        assert_eq!(KeyKind::of("pk_live_x"), Ok(KeyKind::Public));
        assert_eq!(KeyKind::of("mk_live_x"), Err(Error::McpKeyNotAllowed));
        assert_eq!(KeyKind::of("live_x"), Err(Error::InvalidApiKey));
        assert_eq!(KeyKind::of(""), Err(Error::InvalidApiKey));
        assert_eq!(KeyKind::of("sk_").unwrap_err().code(), "invalid_config");
        assert_eq!(KeyKind::of("sk_a b").unwrap_err().code(), "invalid_config");
        assert_eq!(KeyKind::of("sk_a\nb").unwrap_err().code(), "invalid_config");
    }

    #[test]
    fn api_url_rules() {
        let ok = |u: &str| {
            Config::from_input(ConfigInput {
                api_url: Some(u.into()),
                ..input()
            })
            .map(|c| c.api_url)
        };
        assert_eq!(
            ok("http://127.0.0.1:8787").unwrap(),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            ok("https://x.test/proxy//").unwrap(),
            "https://x.test/proxy"
        );
        for bad in [
            "ftp://x",
            "x.test",
            "https://",
            "https:///path",
            "https://x?y=1",
            "https://u@x",
            "https://x#f",
        ] {
            let e = ok(bad).unwrap_err();
            assert_eq!(e.field(), Some("apiUrl"), "{bad}");
        }
        let e = Config::from_input(ConfigInput {
            api_url: None,
            ..input()
        })
        .unwrap_err();
        assert!(e.message().contains("config.apiUrl: is required"));
        let e = Config::from_input(ConfigInput {
            api_key: None,
            ..input()
        })
        .unwrap_err();
        assert_eq!(e.field(), Some("apiKey"));
    }

    #[test]
    fn numbers_must_be_integers_in_range() {
        let with = |f: fn(&mut ConfigInput, f64), v: f64| {
            let mut i = input();
            f(&mut i, v);
            Config::from_input(i)
        };
        assert_eq!(with(|i, v| i.flush_at = Some(v), 5.0).unwrap().flush_at, 5);
        for bad in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY, 1e12, 1e300] {
            let e = with(|i, v| i.flush_at = Some(v), bad).unwrap_err();
            assert_eq!(e.field(), Some("flushAt"));
            assert!(
                e.message().contains("expected an integer from 1 to 100000"),
                "{e}"
            );
        }
        let e = with(|i, v| i.max_batch_bytes = Some(v), 600_000.0).unwrap_err();
        assert_eq!(e.field(), Some("maxBatchBytes"));
        // maxEventBytes must leave room for the envelope in a batch.
        let mut i = input();
        i.max_batch_bytes = Some(4096.0);
        i.max_event_bytes = Some(4096.0);
        assert_eq!(
            Config::from_input(i).unwrap_err().field(),
            Some("maxEventBytes")
        );
        let mut i = input();
        i.max_batch_bytes = Some(4096.0);
        assert_eq!(Config::from_input(i).unwrap().max_event_bytes, 3584);
        let e = with(|i, v| i.request_timeout_ms = Some(v), 10.0).unwrap_err();
        assert_eq!(e.field(), Some("requestTimeoutMs"));
        assert_eq!(
            with(|i, v| i.flush_interval_ms = Some(v), 0.0)
                .unwrap()
                .flush_interval_ms,
            0
        );
    }
}
