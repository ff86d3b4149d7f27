//! Opening a client: its config as the loader recorded it, checked field by field (every
//! message names the field), and the platform's facts about where it runs.

#[allow(unused_imports)]
use crate::prelude::*;

use super::input::{expected, is_type, problem_message, scalar, Arg, Field, Obj};
use super::Client;
use crate::core::config::{Config, ConfigInput, KeyKind};
use crate::core::error::Error;
use crate::core::event::check_id;
use crate::core::json::{items, members, Value};
use crate::core::pipeline::{Level, Pipeline};
use crate::core::privacy::Consent;
use crate::core::referrer::{check_custom, CustomProvider};
use crate::core::visit::Visits;

const STRING: u8 = 1;
const NUMBER: u8 = 2;
const BOOL: u8 = 3;
const FUNCTION: u8 = 4;
const PROVIDERS: u8 = 5;

/// The config fields, as the app spells them, and what each holds. Anything else is an unknown
/// field. Defaults and ranges: [`crate::core::config`]. `getUser` is the loader's to call (at
/// each call, see `js/loader/capture.js`); here it is only checked to be a function.
const FIELDS: &[(&str, u8)] = &[
    ("apiUrl", STRING),
    ("apiKey", STRING),
    ("getUser", FUNCTION),
    ("flushAt", NUMBER),
    ("flushIntervalMs", NUMBER),
    ("maxQueueEvents", NUMBER),
    ("maxQueueBytes", NUMBER),
    ("maxEventBytes", NUMBER),
    ("maxBatchBytes", NUMBER),
    ("requestTimeoutMs", NUMBER),
    ("sessionTimeoutMs", NUMBER),
    ("autoPageViews", BOOL),
    ("debug", BOOL),
    ("aiProviders", PROVIDERS),
    ("consent", STRING),
    ("respectGlobalPrivacyControl", BOOL),
    ("beforeSend", FUNCTION),
];

/// A config field's value.
enum V {
    S(String),
    N(f64),
    B(bool),
}

/// Reads one field; `None` when absent.
fn read(key: &str, kind: u8, f: Field<'_>) -> Result<Option<V>, Error> {
    let what = match kind {
        STRING => "a string",
        NUMBER => "a number",
        BOOL => "a boolean",
        _ if key == "getUser" => "a function returning { userId } or { anonymousId }",
        _ => "a function (event) => event | null",
    };
    match f {
        Field::Absent => return Ok(None),
        Field::Problem("function") if kind == FUNCTION => return Ok(Some(V::B(true))),
        Field::Problem(code) if !is_type(code) => {
            return Err(Error::config(key, &problem_message(code)))
        }
        Field::Json(raw) => match (kind, scalar(raw)) {
            (STRING, Some(Value::String(s))) => return Ok(Some(V::S(s))),
            (NUMBER, Some(Value::Number(n))) => return Ok(Some(V::N(n.approx_f64()))),
            (BOOL, Some(Value::Bool(b))) => return Ok(Some(V::B(b))),
            _ => {}
        },
        Field::Problem(_) => {}
    }
    Err(Error::config(key, &expected(what, f)))
}

/// What the config says besides the core's input: whether there is a `beforeSend`, the extra
/// AI providers, and `autoPageViews`.
struct Extras {
    has_hook: bool,
    ai_providers: Vec<CustomProvider>,
    auto_page_views: bool,
}

/// The config as the loader recorded it: the core's input and the [`Extras`].
fn read_config(arg: &Arg<'_>) -> Result<(ConfigInput, Extras), Error> {
    let whole = arg.whole();
    if let Field::Problem("keys" | "read") = whole {
        return Err(Error::config("(config)", "its keys could not be read"));
    }
    let obj = match (whole, arg.object()) {
        (Field::Json(raw), Some(o)) if raw.trim_start().starts_with('{') => o,
        (Field::Absent, Some(o)) => o,
        _ => {
            return Err(Error::config(
                "(config)",
                &expected("an object such as { apiUrl, apiKey }", whole),
            ))
        }
    };
    super::input::check_keys(&obj, FIELDS, "", Error::config)?;
    let mut values = Vec::with_capacity(FIELDS.len());
    for &(key, kind) in FIELDS {
        values.push(if kind == PROVIDERS {
            None
        } else {
            read(key, kind, obj.field(key))?
        });
    }
    let ai_providers = read_ai_providers(&obj)?;
    let at = |key: &str| FIELDS.iter().position(|(k, _)| *k == key).unwrap_or(0);
    let s = |key: &str| match values.get(at(key)) {
        Some(Some(V::S(s))) => Some(s.clone()),
        _ => None,
    };
    let n = |key: &str| match values.get(at(key)) {
        Some(Some(V::N(n))) => Some(*n),
        _ => None,
    };
    let b = |key: &str| match values.get(at(key)) {
        Some(Some(V::B(b))) => Some(*b),
        _ => None,
    };
    Ok((
        ConfigInput {
            api_url: s("apiUrl"),
            api_key: s("apiKey"),
            flush_at: n("flushAt"),
            flush_interval_ms: n("flushIntervalMs"),
            max_queue_events: n("maxQueueEvents"),
            max_queue_bytes: n("maxQueueBytes"),
            max_event_bytes: n("maxEventBytes"),
            max_batch_bytes: n("maxBatchBytes"),
            request_timeout_ms: n("requestTimeoutMs"),
            session_timeout_ms: n("sessionTimeoutMs"),
            debug: b("debug"),
            consent: s("consent"),
            respect_global_privacy_control: b("respectGlobalPrivacyControl"),
        },
        Extras {
            has_hook: b("beforeSend").unwrap_or(false),
            ai_providers,
            auto_page_views: b("autoPageViews").unwrap_or(false),
        },
    ))
}

/// `expected <what>, got <a description of the raw JSON value>`.
fn expected_raw(what: &str, raw: &str) -> String {
    expected(what, Field::Json(raw))
}

/// `aiProviders: [{ name, hosts, pathPrefix?, utmSources? }]`: extra AI assistants for
/// `ai_referral_session`, checked before the built-in table. Read item by item from the raw
/// JSON: a wrong first item fails before a huge array is looked at whole.
fn read_ai_providers(obj: &Obj<'_>) -> Result<Vec<CustomProvider>, Error> {
    const WHAT: &str = "an array of { name, hosts, pathPrefix?, utmSources? }";
    let f = obj.field("aiProviders");
    let list = match f {
        Field::Absent => return Ok(Vec::new()),
        Field::Json(raw) => {
            items(raw).ok_or_else(|| Error::config("aiProviders", &expected(WHAT, f)))?
        }
        Field::Problem(code) if !is_type(code) => {
            return Err(Error::config("aiProviders", &problem_message(code)))
        }
        Field::Problem(_) => return Err(Error::config("aiProviders", &expected(WHAT, f))),
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let mut field = String::from("aiProviders[");
        crate::core::num::push_int(&mut field, i as i64);
        field.push(']');
        let sub = |k: &str| {
            let mut f = field.clone();
            f.push('.');
            f.push_str(k);
            f
        };
        let Some(m) = members(item) else {
            return Err(Error::config(&field, &expected_raw("an object", item)));
        };
        let get = |k: &str| m.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        if let Some((k, _)) = m
            .iter()
            .find(|(k, _)| !["name", "hosts", "pathPrefix", "utmSources"].contains(&k.as_str()))
        {
            return Err(Error::config(
                &sub(k),
                "unknown field; expected one of name, hosts, pathPrefix, utmSources",
            ));
        }
        let string = |k: &str, raw: &str| match scalar(raw) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(Error::config(&sub(k), &expected_raw("a string", raw))),
        };
        let strings = |k: &str| -> Result<Vec<String>, Error> {
            let Some(raw) = get(k) else {
                return Ok(Vec::new());
            };
            let list = items(raw)
                .ok_or_else(|| Error::config(&sub(k), &expected_raw("an array of strings", raw)))?;
            let mut out = Vec::with_capacity(list.len());
            for s in list {
                match scalar(s) {
                    Some(Value::String(s)) => out.push(s),
                    _ => {
                        return Err(Error::config(
                            &sub(k),
                            &expected_raw("an array of strings", s),
                        ))
                    }
                }
            }
            Ok(out)
        };
        let name = string("name", get("name").unwrap_or(""))?;
        let path_prefix = match get("pathPrefix") {
            None => None,
            Some(raw) => Some(string("pathPrefix", raw)?),
        };
        let provider = CustomProvider {
            name,
            hosts: strings("hosts")?,
            path_prefix,
            utm_sources: strings("utmSources")?,
        };
        check_custom(&provider).map_err(|m| Error::config(&field, &m))?;
        out.push(provider);
    }
    Ok(out)
}

/// The u64 a hex seed starts with (0 for none).
fn seed_of(hex: &str) -> u64 {
    let mut n = 0u64;
    for d in hex.bytes().take(16) {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => 0,
        };
        n = (n << 4) | u64::from(v);
    }
    n
}

impl Client {
    /// Creates a client from `{"v": <the config as the loader recorded it>, "env": {browser,
    /// consent, anon, seed, ctx}}`: whether this is a browser, the consent state to start in
    /// (the loader's rule, `js/loader/consent.js`), the stored anonymous id, random hex for the
    /// ids this client makes, and the batch context.
    pub fn open(text: &str) -> Result<Client, Error> {
        let doc = members(text).unwrap_or_default();
        let get = |k: &str| doc.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let arg = Arg::of(get("v"));
        let (input, extras) = read_config(&arg)?;
        let config = Config::from_input(input)?;
        let mut visits = Visits::new(f64::from(config.session_timeout_ms));
        let env = get("env").and_then(members).unwrap_or_default();
        let env_get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let env_str = |k: &str| {
            env_get(k)
                .and_then(scalar)
                .and_then(|v| v.as_str().map(str::to_string))
        };
        let browser = env_get("browser").is_some_and(|raw| raw.trim() == "true");
        let consent = env_str("consent")
            .and_then(|s| Consent::parse(&s))
            .unwrap_or(Consent::Granted);
        let seed = seed_of(env_str("seed").as_deref().unwrap_or(""));
        let batch_context = env_get("ctx")
            .filter(|c| c.trim_start().starts_with('{'))
            .unwrap_or("")
            .to_string();
        let secret_in_browser = config.key_kind == KeyKind::Secret && browser;
        let inert = config.key_kind == KeyKind::Public && !browser;
        let mut core = Pipeline::new(config, batch_context, seed);
        core.set_consent(consent);
        if secret_in_browser {
            core.log(
                Level::Warn,
                "SegOps: a secret sk_ key is being used in a browser, where anyone can read it and send or read your data with it. Use a public pk_ key in browsers; keep sk_ keys on servers.".into(),
            );
        }
        let mut client = Client {
            core,
            browser,
            inert,
            anonymous_id: String::new(),
            identified: None,
            saved_identified: None,
            has_hook: extras.has_hook,
            ai_providers: extras.ai_providers,
            visits: Visits::new(0.0),
            auto_page_views: extras.auto_page_views,
            shut_down: false,
            held: Vec::new(),
            before_send_errors: 0,
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
        };
        // A stored id is used unless consent is denied (then the old one is never used again).
        client.anonymous_id = match env_str("anon") {
            Some(id) if consent != Consent::Denied && check_id("anonymousId", &id).is_ok() => id,
            _ => client.new_uuid(),
        };
        // The visit the other tabs and earlier page loads share (kept with consent only).
        if consent != Consent::Denied {
            if let Some(text) = env_get("visit")
                .and_then(scalar)
                .and_then(|v| v.as_str().map(str::to_string))
            {
                visits.adopt(&text);
            }
        }
        client.visits = visits;
        Ok(client)
    }
}
