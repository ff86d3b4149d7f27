//! The whole client as a state machine: config, identity, consent, `beforeSend`, and the
//! delivery [`Pipeline`], driven by text in and text out.
//!
//! The platform layer (`js/runtime/`) owns every effect: it passes each call as the loader's
//! record of it (see [`input`]), the time, the answers to requests and the page signals, and
//! carries out what [`Client::poll`] asks for (requests, console lines, the next wake-up). The
//! rules (what is valid, who an event is about, what consent allows, what to send and when)
//! are all here, tested natively with a fake clock.

mod calls;
mod hook;
pub mod input;
mod output;

#[allow(unused_imports)]
use crate::prelude::*;

use crate::core::config::{Config, ConfigInput, KeyKind, FIELDS};
use crate::core::delivery::HttpResult;
use crate::core::error::Error;
use crate::core::event::{check_id, EventInput};
use crate::core::json::{fix_lone_surrogates, members, parse, Value};
use crate::core::pipeline::{reason, Level, Pipeline, Request};
use crate::core::privacy::Consent;
use crate::core::referrer::{check_custom, CustomProvider};
use crate::core::uuid::uuid_v4;

use calls::{Held, Record};
use input::{
    config_bool, config_function, config_number, config_string, expected, Arg, Field, Obj,
};
pub use output::Output;

/// `record` flag: the call may go through `beforeSend` (it is not made by the hook itself).
pub const HOOK: u32 = 1;
/// `record` flag: a call an earlier page recorded and saved before its module was ready. It
/// has its own identity state (an `identify()` in it does not change this client's user) and
/// its own page (it may start a referral of its own).
pub const SAVED: u32 = 2;
/// `record` flag: the first call of such a saved buffer.
pub const FIRST: u32 = 4;

/// Why events were dropped before they were queued, besides [`reason`]'s.
pub mod dropped {
    /// A public key outside a browser (server-side rendering): it records nothing.
    pub const NOT_IN_BROWSER: &str = "not_in_browser";
}

/// What [`Client::record`] did with a call.
#[derive(Debug, PartialEq)]
pub enum Recorded {
    /// Queued (or dropped by consent), nothing else to do.
    Done,
    /// The events wait for `beforeSend`: a JSON array of them as the app sees them. Call the
    /// hook on each and hand the answers to [`Client::hooked`].
    Hook(String),
}

/// The client.
pub struct Client {
    core: Pipeline,
    /// `window` and `document` exist.
    browser: bool,
    /// A public key outside a browser (server-side rendering of a page that creates its client
    /// at module scope): calls are checked, then counted as dropped; nothing is sent or logged.
    inert: bool,
    anonymous_id: String,
    /// The user id given to `identify()`, used when a call names nobody and `getUser` is not
    /// configured or returns nobody.
    identified: Option<String>,
    /// The same for the calls of a saved buffer being taken up (see [`SAVED`]).
    saved_identified: Option<String>,
    has_hook: bool,
    ai_providers: Vec<CustomProvider>,
    /// `ai_referral_session` is looked for once per page load.
    referral_checked: bool,
    shut_down: bool,
    /// Events waiting for `beforeSend`, one group per call; a stack, since the hook may record
    /// events itself (which skip it).
    held: Vec<Vec<Held>>,
    before_send_errors: u64,
    rng: u64,
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
        let (input, has_hook, ai_providers) = read_config(&arg)?;
        let config = Config::from_input(input)?;
        let env = get("env").and_then(members).unwrap_or_default();
        let env_get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let env_str = |k: &str| {
            env_get(k)
                .and_then(|raw| parse(raw).ok())
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
            has_hook,
            ai_providers,
            referral_checked: false,
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
        Ok(client)
    }

    /// A fresh UUIDv4 from this client's generator (seeded with the platform's crypto
    /// randomness).
    fn new_uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_mut(8) {
            // splitmix64
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        uuid_v4(bytes)
    }

    /// Records a call (the loader's record of it, see [`calls::Record`]). `flags`: [`HOOK`],
    /// [`SAVED`], [`FIRST`].
    pub fn record(&mut self, text: &str, now: f64, flags: u32) -> Result<Recorded, Error> {
        if self.shut_down {
            return Err(Error::ShutDown);
        }
        let rec = Record::of(text);
        let saved = flags & SAVED != 0;
        if flags & FIRST != 0 {
            self.saved_identified = None;
        }
        let mut identified = if saved {
            self.saved_identified.take()
        } else {
            self.identified.take()
        };
        let referral = saved || !self.referral_checked;
        let result = self.events_of(&rec, &mut identified, referral);
        if saved {
            self.saved_identified = identified;
        } else {
            self.identified = identified;
        }
        let events = result?;
        if rec.method == "pageView" && rec.page.is_some() && !saved {
            self.referral_checked = true;
        }
        if self.inert {
            for _ in &events {
                self.core.discard(dropped::NOT_IN_BROWSER);
            }
            return Ok(Recorded::Done);
        }
        if self.has_hook
            && flags & HOOK != 0
            && self.core.consent() != Consent::Denied
            && !events.is_empty()
        {
            let mut out = String::from("[");
            for (i, h) in events.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                hook::write_event(&mut out, &h.event);
            }
            out.push(']');
            self.held.push(events);
            return Ok(Recorded::Hook(out));
        }
        for h in events {
            self.enqueue(h, now)?;
        }
        Ok(Recorded::Done)
    }

    /// What `beforeSend` returned for the events of the latest [`Recorded::Hook`]: a JSON
    /// array with the loader's record of each answer, in order.
    pub fn hooked(&mut self, text: &str, now: f64) -> Result<(), Error> {
        let Some(events) = self.held.pop() else {
            return Ok(());
        };
        let answers = match parse_array_raw(text) {
            Some(a) => a,
            None => Vec::new(),
        };
        let mut first_error = None;
        for (i, held) in events.into_iter().enumerate() {
            let answer = Arg::of(answers.get(i).copied());
            let result = match hook::outcome(&answer, &held.event) {
                hook::Outcome::Drop => {
                    self.core.discard(reason::BEFORE_SEND);
                    Ok(())
                }
                hook::Outcome::Problem(m) => {
                    self.hook_problem(m);
                    self.enqueue(held, now)
                }
                hook::Outcome::Edited(edited) => self.enqueue_edited(held, edited, now),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Queues an event the hook edited; one the edit made too large is kept as it was.
    fn enqueue_edited(&mut self, held: Held, edited: EventInput, now: f64) -> Result<(), Error> {
        // The app's signature was for the user id it had.
        let signature = if edited.identity.uid() == held.event.identity.uid() {
            held.signature.clone()
        } else {
            None
        };
        let edited = Held {
            message_id: held.message_id.clone(),
            event: edited,
            signature,
        };
        match self.enqueue(edited, now) {
            Err(Error::EventTooLarge { .. }) => {
                self.enqueue(held, now)?;
                self.hook_problem(
                    "SegOps: beforeSend returned an event over maxEventBytes; the event was kept unchanged. Later beforeSend problems are only counted, in stats().beforeSendErrors.".into(),
                );
                Ok(())
            }
            other => other,
        }
    }

    /// Counts a `beforeSend` problem; the first one of the client is logged.
    fn hook_problem(&mut self, message: String) {
        self.before_send_errors += 1;
        if self.before_send_errors == 1 {
            self.core.log(Level::Error, message);
        }
    }

    fn enqueue(&mut self, held: Held, now: f64) -> Result<(), Error> {
        let Held {
            message_id,
            mut event,
            signature,
        } = held;
        for field in [&mut event.properties, &mut event.traits, &mut event.context] {
            if let Some(text) = field.as_deref() {
                if let alloc::borrow::Cow::Owned(fixed) = fix_lone_surrogates(text) {
                    *field = Some(fixed);
                }
            }
        }
        self.core
            .enqueue(&message_id, event, signature, now)
            .map(|_| ())
    }

    /// `flush()`: the target to wait for with [`Client::is_flushed`].
    pub fn flush(&mut self) -> Result<u64, Error> {
        if self.shut_down {
            return Err(Error::ShutDown);
        }
        Ok(self.core.request_flush())
    }

    /// `shutdown()`: later calls fail; the target to wait for.
    pub fn shutdown(&mut self) -> u64 {
        self.shut_down = true;
        self.core.begin_shutdown()
    }

    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    pub fn is_flushed(&self, target: u64) -> bool {
        self.core.is_flushed(target)
    }

    /// `setConsent(value)` (the loader's record of the value): the new state. Denying gives
    /// the visitor a new anonymous id: the old one is never used again.
    pub fn set_consent(&mut self, text: &str) -> Result<Consent, Error> {
        let arg = Arg::of(Some(text));
        let f = arg.whole();
        let consent = match f {
            Field::Json(raw) => parse(raw)
                .ok()
                .and_then(|v| v.as_str().and_then(Consent::parse)),
            _ => None,
        }
        .ok_or_else(|| {
            Error::argument(
                "setConsent",
                &expected("\"granted\", \"pending\" or \"denied\"", f),
            )
        })?;
        if consent == Consent::Denied && self.core.consent() != Consent::Denied {
            self.anonymous_id = self.new_uuid();
        }
        self.core.set_consent(consent);
        Ok(consent)
    }

    pub fn consent(&self) -> Consent {
        self.core.consent()
    }

    pub fn anonymous_id(&self) -> &str {
        &self.anonymous_id
    }

    pub fn is_browser(&self) -> bool {
        self.browser
    }

    /// The page is hidden or being unloaded: the keepalive requests to make at once.
    pub fn hidden(&mut self, now: f64) -> Vec<Request> {
        if self.shut_down || self.inert {
            return Vec::new();
        }
        self.core.on_hidden(now)
    }

    /// The page is visible again, or the network is back: resume at once.
    pub fn resume(&mut self, now: f64) {
        self.core.resume(now);
    }

    /// The answer to request `id`: an HTTP status (1 to 999) with its `Retry-After` and body,
    /// `0` for a network failure (`body` says why) or `-1` for a timeout.
    pub fn answer(
        &mut self,
        id: u64,
        status: f64,
        retry_after: Option<String>,
        body: String,
        now: f64,
    ) {
        let result = if status < 0.0 {
            HttpResult::Timeout
        } else if (1.0..=999.0).contains(&status) {
            HttpResult::Response {
                status: status as u16,
                retry_after,
                body,
            }
        } else {
            HttpResult::Network(body)
        };
        self.core.on_result(id, result, now);
    }

    /// Every unsent event, for the next page load (empty: nothing to keep).
    pub fn snapshot(&mut self) -> String {
        if self.inert {
            return String::new();
        }
        self.core.snapshot()
    }

    /// Takes up the events an earlier page saved (`{"v":1,...}`); how many.
    pub fn restore(&mut self, text: &str, now: f64) -> usize {
        if self.inert {
            return 0;
        }
        self.core.restore(text, now)
    }

    /// What to do now: requests to make, console lines, when to call again.
    pub fn poll(&mut self, now: f64) -> Output {
        let mut requests = Vec::new();
        if !self.inert {
            while let Some(r) = self.core.poll_request(now) {
                requests.push(r);
            }
        }
        Output {
            requests,
            logs: self.core.take_logs(),
            wake: self.core.next_wake(now),
        }
    }

    /// `stats()` as JSON.
    pub fn stats(&self, now: f64) -> String {
        output::stats(&self.core, self.before_send_errors, now)
    }

    /// The pipeline, for tests and the figures of [`Client::stats`].
    pub fn pipeline(&self) -> &Pipeline {
        &self.core
    }
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

/// The raw items of a JSON array.
fn parse_array_raw(text: &str) -> Option<Vec<&str>> {
    // An array's items are an object's values with the keys left out: wrap each in a
    // one-member scan by reusing the object scanner on "{"0":…}" would copy; scan directly.
    let t = text.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let end = crate::core::json::value_end(b, i)?;
        out.push(inner.get(i..end)?);
        i = end;
    }
    Some(out)
}

/// The config as the loader recorded it: the core's input, whether there is a `beforeSend`,
/// and the extra AI providers. `getUser` is the loader's business (it calls it at each call);
/// here it is only checked to be a function.
fn read_config(arg: &Arg<'_>) -> Result<(ConfigInput, bool, Vec<CustomProvider>), Error> {
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
    input::check_keys(&obj, FIELDS, "", Error::config)?;
    for (k, code) in &arg.x {
        if code == "read" && !k.is_empty() {
            return Err(Error::config(k, "reading it threw an exception"));
        }
    }
    let has_hook = config_function(
        "beforeSend",
        obj.field("beforeSend"),
        "a function (event) => event | null",
    )?;
    config_function(
        "getUser",
        obj.field("getUser"),
        "a function returning { userId } or { anonymousId }",
    )?;
    let ai_providers = read_ai_providers(&obj)?;
    let n = |k: &str| config_number(k, obj.field(k));
    let b = |k: &str| config_bool(k, obj.field(k));
    let s = |k: &str| config_string(k, obj.field(k));
    Ok((
        ConfigInput {
            api_url: s("apiUrl")?,
            api_key: s("apiKey")?,
            flush_at: n("flushAt")?,
            flush_interval_ms: n("flushIntervalMs")?,
            max_queue_events: n("maxQueueEvents")?,
            max_queue_bytes: n("maxQueueBytes")?,
            max_event_bytes: n("maxEventBytes")?,
            max_batch_bytes: n("maxBatchBytes")?,
            request_timeout_ms: n("requestTimeoutMs")?,
            debug: b("debug")?,
            consent: s("consent")?,
            respect_global_privacy_control: b("respectGlobalPrivacyControl")?,
        },
        has_hook,
        ai_providers,
    ))
}

/// `aiProviders: [{ name, hosts, pathPrefix?, utmSources? }]`: extra AI assistants for
/// `ai_referral_session`, checked before the built-in table.
fn read_ai_providers(obj: &Obj<'_>) -> Result<Vec<CustomProvider>, Error> {
    let f = obj.field("aiProviders");
    let list = match f {
        Field::Absent => return Ok(Vec::new()),
        Field::Json(raw) => match parse(raw) {
            Ok(Value::Array(items)) => items,
            _ => return Err(array_error("aiProviders", f)),
        },
        Field::Problem(code) if !matches!(code, "function" | "symbol" | "bigint") => {
            return Err(Error::config("aiProviders", &input::problem_message(code)))
        }
        Field::Problem(_) => return Err(array_error("aiProviders", f)),
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
        let Value::Object(item_members) = item else {
            return Err(Error::config(&field, &describe_value("an object", item)));
        };
        if let Some((k, _)) = item_members
            .iter()
            .find(|(k, _)| !["name", "hosts", "pathPrefix", "utmSources"].contains(&k.as_str()))
        {
            return Err(Error::config(
                &sub(k),
                "unknown field; expected one of name, hosts, pathPrefix, utmSources",
            ));
        }
        let strings = |k: &str| -> Result<Vec<String>, Error> {
            match item.get(k) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|s| {
                        s.as_str().map(str::to_string).ok_or_else(|| {
                            Error::config(&sub(k), &describe_value("an array of strings", s))
                        })
                    })
                    .collect(),
                Some(other) => Err(Error::config(
                    &sub(k),
                    &describe_value("an array of strings", other),
                )),
            }
        };
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::config(&sub("name"), "expected a string"))?
            .to_string();
        let path_prefix = match item.get("pathPrefix") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| Error::config(&sub("pathPrefix"), "expected a string"))?
                    .to_string(),
            ),
        };
        let provider = CustomProvider {
            name,
            hosts: strings("hosts")?,
            path_prefix,
            utm_sources: strings("utmSources")?,
        };
        check_custom(&provider).map_err(|m| {
            let m = m
                .replace("path_prefix", "pathPrefix")
                .replace("utm_sources", "utmSources");
            Error::config(&field, &m)
        })?;
        out.push(provider);
    }
    Ok(out)
}

fn array_error(field: &str, f: Field<'_>) -> Error {
    Error::config(
        field,
        &expected("an array of { name, hosts, pathPrefix?, utmSources? }", f),
    )
}

/// `expected <what>, got <v's kind>` for a parsed value.
fn describe_value(what: &str, v: &Value) -> String {
    let mut s = String::from("expected ");
    s.push_str(what);
    s.push_str(", got ");
    s.push_str(match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    });
    s
}

#[cfg(test)]
mod tests;
