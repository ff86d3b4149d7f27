//! The JavaScript edge: every `#[wasm_bindgen]` item of the SDK lives here. JS values are read
//! once on the way in (type checks name the field) and built once on the way out; the core sees
//! only Rust types. The platform's effects (fetch, timers, randomness, storage, page reads) are
//! reached through `platform.js`.
//!
//! Re-entrancy rule: no JS that runs app code (`getUser`, `beforeSend`) is called while `Inner`
//! is borrowed,
//! and every import that can throw is declared with `catch`, so an exception can never leave a
//! borrow flag set.

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::auth::Signature;
use crate::config::{Config, ConfigInput, KeyKind, FIELDS};
use crate::delivery::HttpResult;
use crate::error::Error;
use crate::event::{check_event_type, check_id, EventInput, EventKind, Identity};
use crate::pipeline::{reason, Level, Pipeline, Request};
use crate::privacy::{initial_consent, Consent, CONSENT_KEY};
use crate::referrer::{check_custom, classify, utm_params, CustomProvider, PageSnapshot};
use crate::time::{format_iso8601, parse_rfc3339};
use crate::uuid::uuid_v4;

#[wasm_bindgen(module = "/src/wasm/platform.js")]
extern "C" {
    #[wasm_bindgen(js_name = isBrowser)]
    fn is_browser() -> bool;
    #[wasm_bindgen(js_name = fillRandom)]
    fn fill_random(buf: &mut [u8]);
    #[wasm_bindgen(js_name = setTimer)]
    fn set_timer(cb: &Closure<dyn FnMut()>, ms: f64, keep_alive: bool) -> JsValue;
    #[wasm_bindgen(js_name = clearTimer)]
    fn clear_timer(t: &JsValue);
    fn send(
        url: &str,
        authorization: &str,
        body: &str,
        keepalive: bool,
        timeout_ms: u32,
    ) -> Promise;
    #[wasm_bindgen(js_name = toJson, catch)]
    fn to_json(v: &JsValue) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(js_name = pageJson)]
    fn page_json() -> Option<String>;
    #[wasm_bindgen(js_name = batchContextJson)]
    fn batch_context_json(name: &str, version: &str) -> String;
    #[wasm_bindgen(js_name = storageGet)]
    fn storage_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_name = storageSet)]
    fn storage_set(key: &str, value: &str) -> bool;
    #[wasm_bindgen(js_name = makeError)]
    fn make_error(message: &str, code: &str, field: Option<String>) -> JsValue;
    #[wasm_bindgen(js_name = storageRemove)]
    fn storage_remove(key: &str);
    #[wasm_bindgen(js_name = pageSnapshot)]
    fn page_snapshot() -> Option<Array>;
    #[wasm_bindgen(js_name = watchPage)]
    fn watch_page(
        on_hidden: &Closure<dyn FnMut()>,
        on_shown: &Closure<dyn FnMut()>,
        on_online: &Closure<dyn FnMut()>,
        on_consent: &Closure<dyn FnMut(String)>,
        consent_key: &str,
    ) -> Function;
    #[wasm_bindgen(js_name = takeSaved)]
    fn take_saved(prefix: &str, own_key: &str) -> Promise;
    #[wasm_bindgen(js_name = globalPrivacyControl)]
    fn global_privacy_control() -> bool;
    #[wasm_bindgen(js_name = isArray)]
    fn is_array(v: &JsValue) -> bool;
    #[wasm_bindgen(js_name = dateTime)]
    fn date_time(v: &JsValue) -> Option<f64>;
    #[wasm_bindgen(js_name = isPromise)]
    fn is_promise(v: &JsValue) -> bool;
    #[wasm_bindgen(catch, js_name = arrayItems)]
    fn array_items(v: &JsValue) -> Result<Array, JsValue>;
    #[wasm_bindgen(js_name = clearStored)]
    fn clear_stored(anonymous_id_key: &str, prefix: &str);
    #[wasm_bindgen(js_name = callHook)]
    fn call_hook(hook: &Function, event: &JsValue) -> Array;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(s: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(s: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

const LIBRARY_NAME: &str = "@segops/sdk";
const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");
/// localStorage key of the visitor's anonymous id (browsers only).
const ANONYMOUS_ID_KEY: &str = "segops.anonymous_id";
/// localStorage keys of snapshots of unsent events, one per tab: `segops.pending.<tab id>`.
const SAVED_PREFIX: &str = "segops.pending.";

fn js_error(e: &Error) -> JsValue {
    make_error(&e.message(), e.code(), e.field().map(str::to_string))
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// Crypto randomness, fetched 256 bytes at a time to keep `track()` off the boundary.
struct RandomPool {
    buf: [u8; 256],
    pos: usize,
}

impl RandomPool {
    fn new() -> RandomPool {
        RandomPool {
            buf: [0; 256],
            pos: 256,
        }
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        if self.pos + N > self.buf.len() {
            fill_random(&mut self.buf);
            self.pos = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
}

/// A `setTimeout` that is cleared when dropped. In Node it keeps the process alive only while
/// a `flush()` or `shutdown()` promise waits on it.
struct Timer {
    at: f64,
    keep_alive: bool,
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timer(&self.id);
    }
}

/// The page listeners (hidden, shown, online, another tab's consent choice); removed when
/// dropped.
struct PageWatch {
    unwatch: Function,
    _callbacks: [Closure<dyn FnMut()>; 3],
    _on_consent: Closure<dyn FnMut(String)>,
}

impl Drop for PageWatch {
    fn drop(&mut self) {
        let _ = self.unwatch.call0(&JsValue::NULL);
    }
}

struct Inner {
    core: Pipeline,
    get_user: Option<Function>,
    /// The app's `beforeSend(event) => event | null`.
    before_send: Option<Function>,
    /// `beforeSend` is running: events it records itself skip it (no endless recursion).
    in_before_send: bool,
    /// `beforeSend` threw or returned something unusable; the first one was logged.
    before_send_errors: u64,
    anonymous_id: String,
    /// The user id given to `identify()`, used when a call names nobody and there is no
    /// `getUser`.
    identified: Option<String>,
    random: RandomPool,
    timer: Option<Timer>,
    pump_queued: bool,
    /// `flush()`/`shutdown()` promises: resolve each when its target is flushed.
    waiters: Vec<(u64, Function)>,
    shut_down: bool,
    /// The page is hidden: everything was handed to keepalive or saved, and each answer, and
    /// each event recorded meanwhile, updates the saved snapshot.
    hidden: bool,
    /// A snapshot save for events recorded while hidden is queued (one per task).
    save_queued: bool,
    /// This tab's snapshot key.
    saved_key: String,
    /// Earlier pages' snapshots were taken up (done once consent is first granted).
    restored: bool,
    /// Snapshots that could not be written (storage full or disabled).
    save_failures: u64,
    page_watch: Option<PageWatch>,
    /// `ai_referral_session` is looked for once per page load.
    referral_checked: bool,
    ai_providers: Vec<CustomProvider>,
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Stable codes of the errors the SDK throws. */
export type SegOpsErrorCode =
  | "invalid_config"
  | "invalid_argument"
  | "invalid_api_key"
  | "mcp_key_not_allowed"
  | "event_too_large"
  | "client_shut_down";

/** What every SDK call throws on bad input: an Error with a stable `code` and the field. */
export interface SegOpsError extends Error {
  name: "SegOpsError";
  code: SegOpsErrorCode;
  /** The config field or argument the error is about, as you wrote it (`track.eventType`). */
  field?: string;
}

/** A value JSON can carry. Dates are sent as ISO strings; NaN and Infinity as null. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | Date
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

/** Event properties or user traits: a plain object of JSON values. */
export type Properties = { [key: string]: JsonValue | undefined };

/** Who the app's user is, as `getUser()` returns it. */
export type SegOpsUser =
  | {
      userId: string;
      /** The visitor's anonymous id, to link the user to what they did before logging in. */
      anonymousId?: string;
      /** For public keys that require signed user ids: `signUserId()` from your backend. */
      userIdSig?: string;
      userIdTs?: number;
    }
  | { anonymousId: string; userId?: undefined };

/** An AI assistant to recognize in `trackPageView()`, in addition to the built-in ones. */
export interface AiProvider {
  /** Sent as `source_provider`. */
  name: string;
  /** Referrer hosts; each also matches its subdomains, label by label. */
  hosts: string[];
  /** When set, the referrer's path must start with it (like x.com's `/i/grok`). */
  pathPrefix?: string;
  /** `utm_source` values that identify it when the referrer is empty. */
  utmSources?: string[];
}

/**
 * What the visitor lets the SDK collect.
 * - `"granted"`: events are sent, and kept in localStorage across page loads when needed.
 * - `"pending"`: not answered yet. Events wait in memory only (within maxQueueEvents /
 *   maxQueueBytes): nothing is sent, not even a session-token request, and nothing is stored.
 * - `"denied"`: events are discarded as they are recorded (`stats().dropped.consent_denied`).
 */
export type SegOpsConsent = "granted" | "pending" | "denied";

/**
 * An event as `beforeSend` sees it, just before it is queued: after `getUser()`, with the
 * properties, traits and page context as plain JSON (Dates are ISO strings), before the caps
 * of `stats().truncated`. It is a fresh copy: edit it in place and return it, or return
 * another. `type` cannot be changed; the rest is checked as `track()` input is.
 */
export interface SegOpsEvent {
  type: "track" | "identify" | "page";
  eventType: string;
  /** Absent for anonymous events. */
  userId?: string;
  anonymousId?: string;
  /** RFC 3339. */
  timestamp: string;
  properties?: Properties;
  traits?: Properties;
  /** The page the event was recorded on (browsers): `{ page: { url, path, search, title, referrer } }`. */
  context?: Properties;
}

export interface SegOpsConfig {
  /** Base URL of the SegOps API, http or https; a trailing slash is fine. */
  apiUrl: string;
  /**
   * `pk_...` in browsers (exchanged for short-lived session tokens), `sk_...` on servers.
   * `mk_` keys are for MCP connectors and are refused.
   */
  apiKey: string;
  /** The current user, asked at every call that names nobody. Default: anonymous. */
  getUser?: () => SegOpsUser | null | undefined;
  /** Events queued that trigger a send before the interval is up. @default 20 */
  flushAt?: number;
  /** How long the first queued event waits for company. @default 2000 */
  flushIntervalMs?: number;
  /** Bound on queued events; overflow drops the oldest, counted. @default 20000 */
  maxQueueEvents?: number;
  /** Bound on queued bytes; overflow drops the oldest, counted. @default 8388608 (8 MiB) */
  maxQueueBytes?: number;
  /** Largest serialized event; a larger one throws `event_too_large`. @default 32768 */
  maxEventBytes?: number;
  /** Largest request body (the server's limit). @default 524288 (512 KiB) */
  maxBatchBytes?: number;
  /** A request with no answer after this long is aborted and retried. @default 10000 */
  requestTimeoutMs?: number;
  /** Log every delivery decision to the console. @default false */
  debug?: boolean;
  /** Extra AI assistants for `ai_referral_session`, checked before the built-in table. */
  aiProviders?: AiProvider[];
  /**
   * The consent state for a visitor who has not chosen yet. @default "granted"
   *
   * A client starts in: the visitor's persisted choice (localStorage `segops.consent`, written
   * by setConsent / optIn / optOut) if there is one; else `"denied"` when the browser sends
   * Global Privacy Control (and respectGlobalPrivacyControl is true), unless this field is
   * `"granted"` explicitly; else this field.
   */
  consent?: SegOpsConsent;
  /**
   * Start denied when `navigator.globalPrivacyControl` is true, unless `consent: "granted"` is
   * given explicitly or the visitor granted consent earlier (setConsent / optIn). @default true
   */
  respectGlobalPrivacyControl?: boolean;
  /**
   * Called with each event just before it is queued: return it (edited or not) to keep it,
   * or `null` to drop it (`stats().dropped.before_send`). If it throws or returns anything
   * else, the event is kept unchanged, the first problem is logged with console.error and
   * each is counted in `stats().beforeSendErrors`. Events it records itself skip it; it is
   * not called while consent is denied.
   */
  beforeSend?: (event: SegOpsEvent) => SegOpsEvent | null;
}

/** When the event happened: a Date, epoch milliseconds, or an RFC 3339 string. Default: now. */
export type EventTime = Date | number | string;

export interface TrackEvent {
  /** The event's name: 1 to 200 characters. */
  eventType: string;
  userId?: string;
  anonymousId?: string;
  properties?: Properties;
  timestamp?: EventTime;
}

export interface IdentifyEvent {
  userId: string;
  anonymousId?: string;
  traits?: Properties;
  timestamp?: EventTime;
}

export interface PageEvent {
  /** Sent as `properties.name`. */
  name?: string;
  userId?: string;
  anonymousId?: string;
  properties?: Properties;
  timestamp?: EventTime;
}

export interface PageViewEvent {
  userId?: string;
  anonymousId?: string;
  properties?: Properties;
}

export interface SegOpsProblem {
  code: string;
  message: string;
}

/** Counts of what the client did. */
export interface SegOpsStats {
  /** Events accepted by track(), identify(), page() and trackPageView(). */
  recorded: number;
  /** Events in the bounded queue. */
  queued: number;
  /** Events not yet delivered: queued, waiting for a retry, or in flight. */
  pending: number;
  /** Events the server stored or already had. */
  sent: number;
  /** Of `sent`, those the server already had (a retry after a lost answer). */
  duplicates: number;
  /** Events sent again after a failed attempt. */
  retried: number;
  /** HTTP requests made, session mints included. */
  requests: number;
  /** Request body bytes before compression (bodies of 1 KiB and more go out gzipped). */
  bytesSent: number;
  /** Session tokens requested (public keys). */
  mints: number;
  /** Of `mints`, those caused by a 401 on a token. */
  remints: number;
  /** Requests sent with keepalive as the page was hidden. */
  keepaliveRequests: number;
  /** Events an earlier page saved and this one took up. */
  restored: number;
  /** Events the last saved snapshot could not hold. */
  unsaved: number;
  /** Snapshots that could not be written (storage full or disabled). */
  saveFailures: number;
  /** Milliseconds left on the current identity's session token, or null. */
  tokenExpiresInMs: number | null;
  /**
   * Dropped events by reason: queue_overflow, retries_exhausted, too_large, stale_identity,
   * bad_request, consent_denied, before_send, a server code...
   */
  dropped: Record<string, number>;
  droppedTotal: number;
  lastError: SegOpsProblem | null;
  /** Why sending stopped for good (a refused key or session), or null. */
  halted: SegOpsProblem | null;
  /** The consent state now. */
  consent: SegOpsConsent;
  /**
   * Events queued with values shortened by the caps on properties, traits and context:
   * 10 levels of nesting (the object itself is level 1; deeper objects and arrays become the
   * string "[Object]" or "[Array]"), 256 keys per object or items per array (the first 256
   * are kept), 8,192 characters per string (keys included). Caps apply before maxEventBytes.
   */
  truncated: number;
  /** The values those caps cut, by cap. */
  truncatedBy: { depth: number; keys: number; length: number };
  /** Times beforeSend threw or returned something unusable (the event was kept unchanged). */
  beforeSendErrors: number;
}
"#;

/// The SegOps client. See the package README for the API.
#[wasm_bindgen]
pub struct SegOpsClient {
    inner: Rc<RefCell<Inner>>,
}

// ---- reading JS values -------------------------------------------------------------------

fn get(obj: &JsValue, key: &str, field: &str, as_config: bool) -> Result<JsValue, Error> {
    Reflect::get(obj, &JsValue::from_str(key)).map_err(|_| {
        if as_config {
            Error::config(field, "reading it threw an exception")
        } else {
            Error::argument(field, "reading it threw an exception")
        }
    })
}

fn describe(v: &JsValue) -> &'static str {
    if v.is_null() {
        "null"
    } else if v.is_undefined() {
        "undefined"
    } else if is_array(v) {
        "an array"
    } else if v.is_string() {
        "a string"
    } else if v.as_f64().is_some() {
        "a number"
    } else if v.as_bool().is_some() {
        "a boolean"
    } else if v.is_function() {
        "a function"
    } else if v.is_object() {
        "an object"
    } else {
        "another type"
    }
}

fn expected(what: &str, got: &JsValue) -> String {
    let mut s = String::from("expected ");
    s.push_str(what);
    s.push_str(", got ");
    s.push_str(describe(got));
    s
}

/// Own string keys of an object; every one must be in `allowed`.
fn check_keys(obj: &JsValue, allowed: &[&str], prefix: &str, as_config: bool) -> Result<(), Error> {
    let keys = Reflect::own_keys(obj.unchecked_ref::<Object>()).map_err(|_| {
        let whole = prefix.trim_end_matches('.');
        if as_config {
            Error::config(
                if whole.is_empty() { "(config)" } else { whole },
                "its keys could not be read",
            )
        } else {
            Error::argument(whole, "its keys could not be read")
        }
    })?;
    for key in keys.iter() {
        let Some(k) = key.as_string() else { continue };
        if !allowed.contains(&k.as_str()) {
            let mut field = String::from(prefix);
            field.push_str(&k);
            let mut exp = String::from("unknown field; expected one of ");
            exp.push_str(&allowed.join(", "));
            return Err(if as_config {
                Error::InvalidConfig {
                    field: k,
                    expected: exp,
                }
            } else {
                Error::InvalidArgument {
                    field,
                    expected: exp,
                }
            });
        }
    }
    Ok(())
}

fn field_name(prefix: &str, key: &str) -> String {
    let mut f = String::from(prefix);
    f.push_str(key);
    f
}

fn opt_string(obj: &JsValue, key: &str, prefix: &str) -> Result<Option<String>, Error> {
    let field = field_name(prefix, key);
    let v = get(obj, key, &field, false)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| Error::argument(&field, &expected("a string", &v)))
}

/// Calls the app's `getUser()`: `None` for null or undefined (nobody in particular), else its
/// user id, anonymous id and signature, checked.
#[allow(clippy::type_complexity)]
fn ask_user(
    get_user: &Function,
) -> Result<Option<(Option<String>, Option<String>, Option<Signature>)>, Error> {
    let v = get_user.call0(&JsValue::NULL).map_err(|_| {
        Error::config(
            "getUser",
            "threw an exception; it must return { userId } or { anonymousId }",
        )
    })?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if !v.is_object() {
        return Err(Error::config(
            "getUser",
            &expected("a returned { userId } or { anonymousId }", &v),
        ));
    }
    Ok(Some((
        opt_string(&v, "userId", "getUser().")?,
        opt_string(&v, "anonymousId", "getUser().")?,
        read_signature(&v)?,
    )))
}

/// `{ userIdSig, userIdTs }` from `getUser()`, when present (public keys that require signed
/// user ids; see `signUserId`).
fn read_signature(v: &JsValue) -> Result<Option<Signature>, Error> {
    let Some(sig) = opt_string(v, "userIdSig", "getUser().")? else {
        return Ok(None);
    };
    let ts = get(v, "userIdTs", "getUser().userIdTs", false)?;
    match ts.as_f64() {
        Some(t) if crate::num::is_integral(t) && t.abs() < 1e15 => {
            Ok(Some(Signature { sig, ts: t as i64 }))
        }
        _ => Err(Error::argument(
            "getUser().userIdTs",
            &expected("the integer Unix seconds that came with userIdSig", &ts),
        )),
    }
}

/// What `read_config` reads besides the [`ConfigInput`]: the app's callbacks and providers.
struct ConfigExtras {
    get_user: Option<Function>,
    before_send: Option<Function>,
    ai_providers: Vec<CustomProvider>,
}

fn read_config(cfg: &JsValue) -> Result<(ConfigInput, ConfigExtras), Error> {
    if !cfg.is_object() || is_array(cfg) {
        return Err(Error::config(
            "(config)",
            &expected("an object such as { apiUrl, apiKey }", cfg),
        ));
    }
    check_keys(cfg, FIELDS, "", true)?;
    let string = |key: &str| -> Result<Option<String>, Error> {
        let v = get(cfg, key, key, true)?;
        if v.is_undefined() {
            return Ok(None);
        }
        v.as_string()
            .map(Some)
            .ok_or_else(|| Error::config(key, &expected("a string", &v)))
    };
    let number = |key: &str| -> Result<Option<f64>, Error> {
        let v = get(cfg, key, key, true)?;
        if v.is_undefined() {
            return Ok(None);
        }
        v.as_f64()
            .map(Some)
            .ok_or_else(|| Error::config(key, &expected("a number", &v)))
    };
    let boolean = |key: &str| -> Result<Option<bool>, Error> {
        let v = get(cfg, key, key, true)?;
        if v.is_undefined() {
            return Ok(None);
        }
        v.as_bool()
            .map(Some)
            .ok_or_else(|| Error::config(key, &expected("a boolean", &v)))
    };
    let before_send = get(cfg, "beforeSend", "beforeSend", true)?;
    let before_send = if before_send.is_undefined() {
        None
    } else {
        Some(before_send.dyn_into::<Function>().map_err(|v| {
            Error::config(
                "beforeSend",
                &expected("a function (event) => event | null", &v),
            )
        })?)
    };
    let get_user = get(cfg, "getUser", "getUser", true)?;
    let get_user = if get_user.is_undefined() {
        None
    } else {
        Some(get_user.dyn_into::<Function>().map_err(|v| {
            Error::config(
                "getUser",
                &expected("a function returning { userId } or { anonymousId }", &v),
            )
        })?)
    };
    let ai_providers = read_ai_providers(&get(cfg, "aiProviders", "aiProviders", true)?)?;
    Ok((
        ConfigInput {
            api_url: string("apiUrl")?,
            api_key: string("apiKey")?,
            flush_at: number("flushAt")?,
            flush_interval_ms: number("flushIntervalMs")?,
            max_queue_events: number("maxQueueEvents")?,
            max_queue_bytes: number("maxQueueBytes")?,
            max_event_bytes: number("maxEventBytes")?,
            max_batch_bytes: number("maxBatchBytes")?,
            request_timeout_ms: number("requestTimeoutMs")?,
            debug: boolean("debug")?,
            consent: string("consent")?,
            respect_global_privacy_control: boolean("respectGlobalPrivacyControl")?,
        },
        ConfigExtras {
            get_user,
            before_send,
            ai_providers,
        },
    ))
}

/// `aiProviders: [{ name, hosts, pathPrefix?, utmSources? }]`: extra AI assistants for
/// `ai_referral_session`, checked before the built-in table.
fn read_ai_providers(v: &JsValue) -> Result<Vec<CustomProvider>, Error> {
    if v.is_undefined() {
        return Ok(Vec::new());
    }
    if !is_array(v) {
        return Err(Error::config(
            "aiProviders",
            &expected("an array of { name, hosts, pathPrefix?, utmSources? }", v),
        ));
    }
    let list =
        array_items(v).map_err(|_| Error::config("aiProviders", "its items could not be read"))?;
    let strings = |item: &JsValue, key: &str, field: &str| -> Result<Vec<String>, Error> {
        let v = get(item, key, field, true)?;
        if v.is_undefined() {
            return Ok(Vec::new());
        }
        if !is_array(&v) {
            return Err(Error::config(field, &expected("an array of strings", &v)));
        }
        let arr =
            array_items(&v).map_err(|_| Error::config(field, "its items could not be read"))?;
        arr.iter()
            .map(|s| {
                s.as_string()
                    .ok_or_else(|| Error::config(field, &expected("an array of strings", &s)))
            })
            .collect()
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let mut field = String::from("aiProviders[");
        crate::num::push_int(&mut field, i as i64);
        field.push(']');
        if !item.is_object() {
            return Err(Error::config(&field, &expected("an object", &item)));
        }
        let sub = |k: &str| {
            let mut f = field.clone();
            f.push('.');
            f.push_str(k);
            f
        };
        let mut prefix = field.clone();
        prefix.push('.');
        check_keys(
            &item,
            &["name", "hosts", "pathPrefix", "utmSources"],
            &prefix,
            false,
        )
        .map_err(|e| match e {
            Error::InvalidArgument { field, expected } => Error::InvalidConfig { field, expected },
            other => other,
        })?;
        let name = get(&item, "name", &sub("name"), true)?
            .as_string()
            .ok_or_else(|| Error::config(&sub("name"), "expected a string"))?;
        let path = get(&item, "pathPrefix", &sub("pathPrefix"), true)?;
        let path_prefix = if path.is_undefined() {
            None
        } else {
            Some(
                path.as_string()
                    .ok_or_else(|| Error::config(&sub("pathPrefix"), "expected a string"))?,
            )
        };
        let provider = CustomProvider {
            name,
            hosts: strings(&item, "hosts", &sub("hosts"))?,
            path_prefix,
            utm_sources: strings(&item, "utmSources", &sub("utmSources"))?,
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

fn json_field(obj: &JsValue, key: &str, prefix: &str) -> Result<Option<String>, Error> {
    let field = field_name(prefix, key);
    let v = get(obj, key, &field, false)?;
    to_json(&v).map_err(|e| {
        let msg = e
            .as_string()
            .unwrap_or_else(|| "could not be serialized".to_string());
        Error::argument(&field, &msg)
    })
}

fn timestamp_field(obj: &JsValue, prefix: &str) -> Result<Option<String>, Error> {
    let field = field_name(prefix, "timestamp");
    let v = get(obj, "timestamp", &field, false)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    let exp = "expected a Date, epoch milliseconds, or an RFC 3339 string";
    let ms = if let Some(t) = date_time(&v) {
        t
    } else if let Some(n) = v.as_f64() {
        n
    } else if let Some(s) = v.as_string() {
        return match parse_rfc3339(&s) {
            Some(_) => Ok(Some(s)),
            None => Err(Error::argument(&field, exp)),
        };
    } else {
        return Err(Error::argument(&field, &expected(exp, &v)));
    };
    // Years 0 to 9999 only; beyond that is a bug in the caller.
    if !(ms.is_finite() && (-62_167_219_200_000.0..=253_402_300_799_999.0).contains(&ms)) {
        return Err(Error::argument(&field, exp));
    }
    Ok(Some(format_iso8601(ms)))
}

fn arg_object(arg: &JsValue, call: &str, required: bool) -> Result<Option<JsValue>, Error> {
    if (arg.is_undefined() || arg.is_null()) && !required {
        return Ok(None);
    }
    if !arg.is_object() || is_array(arg) || arg.is_function() {
        return Err(Error::argument(call, &expected("an object", arg)));
    }
    Ok(Some(arg.clone()))
}

// ---- the client --------------------------------------------------------------------------

#[wasm_bindgen]
impl SegOpsClient {
    /// Creates a client. Throws a `SegOpsError` with `code` and `field` on a bad config.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "SegOpsConfig")] config: JsValue,
    ) -> Result<SegOpsClient, JsValue> {
        SegOpsClient::create(&config).map_err(|e| js_error(&e))
    }

    fn create(config: &JsValue) -> Result<SegOpsClient, Error> {
        let (input, extras) = read_config(config)?;
        let config = Config::from_input(input)?;
        let consent = initial_consent(
            config.consent,
            storage_get(CONSENT_KEY).and_then(|s| Consent::parse_persisted(&s)),
            config.respect_global_privacy_control && global_privacy_control(),
        );
        if config.key_kind == KeyKind::Secret && is_browser() {
            console_warn(
                "SegOps: a secret sk_ key is being used in a browser, where anyone can read it and send or read your data with it. Use a public pk_ key in browsers; keep sk_ keys on servers.",
            );
        }
        let mut random = RandomPool::new();
        let seed = u64::from_le_bytes(random.take::<8>());
        let mut core = Pipeline::new(
            config,
            batch_context_json(LIBRARY_NAME, LIBRARY_VERSION),
            seed,
        );
        core.set_consent(consent);
        // The anonymous id is stored only with consent; pending, a stored one is read but a
        // new one stays in memory until granted; denied, whatever the SDK stored goes.
        if consent == Consent::Denied {
            clear_stored(ANONYMOUS_ID_KEY, SAVED_PREFIX);
        }
        let stored = match consent {
            Consent::Denied => None,
            _ => storage_get(ANONYMOUS_ID_KEY).filter(|id| check_id("anonymousId", id).is_ok()),
        };
        let anonymous_id = match stored {
            Some(id) => id,
            None => {
                let id = uuid_v4(random.take::<16>());
                if consent == Consent::Granted {
                    storage_set(ANONYMOUS_ID_KEY, &id);
                }
                id
            }
        };
        let mut saved_key = String::from(SAVED_PREFIX);
        saved_key.push_str(&crate::sign::hex(&random.take::<8>()));
        let client = SegOpsClient {
            inner: Rc::new(RefCell::new(Inner {
                core,
                get_user: extras.get_user,
                before_send: extras.before_send,
                in_before_send: false,
                before_send_errors: 0,
                anonymous_id,
                identified: None,
                random,
                timer: None,
                pump_queued: false,
                waiters: Vec::new(),
                shut_down: false,
                hidden: false,
                save_queued: false,
                saved_key,
                restored: false,
                save_failures: 0,
                page_watch: None,
                referral_checked: false,
                ai_providers: extras.ai_providers,
            })),
        };
        if is_browser() {
            client.watch_page();
            if consent == Consent::Granted {
                restore_saved(&client.inner);
            }
        }
        Ok(client)
    }

    /// `track({ eventType, userId?, anonymousId?, properties?, timestamp? })`
    pub fn track(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TrackEvent")] event: JsValue,
    ) -> Result<(), JsValue> {
        self.record_track(&event).map_err(|e| js_error(&e))
    }

    /// `identify({ userId, anonymousId?, traits?, timestamp? })`
    pub fn identify(
        &self,
        #[wasm_bindgen(unchecked_param_type = "IdentifyEvent")] event: JsValue,
    ) -> Result<(), JsValue> {
        self.record_identify(&event).map_err(|e| js_error(&e))
    }

    /// `page({ name?, userId?, anonymousId?, properties?, timestamp? })`
    pub fn page(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "PageEvent")] event: JsValue,
    ) -> Result<(), JsValue> {
        self.record_page(&event).map_err(|e| js_error(&e))
    }

    /// `trackPageView({ userId?, anonymousId?, properties? })`: a `page_viewed` event with the
    /// page's url, path, title, referrer and UTM parameters, and, once per page load, an
    /// `ai_referral_session` event when the visitor came from an AI assistant. Does nothing
    /// outside a browser.
    #[wasm_bindgen(js_name = trackPageView)]
    pub fn track_page_view(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "PageViewEvent")] event: JsValue,
    ) -> Result<(), JsValue> {
        self.record_page_view(&event).map_err(|e| js_error(&e))
    }

    /// Resolves when everything recorded before the call was delivered or given up on.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Result<Promise, JsValue> {
        if self.inner.borrow().shut_down {
            return Err(js_error(&Error::ShutDown));
        }
        let target = self.inner.borrow_mut().core.request_flush();
        Ok(self.wait_for(target))
    }

    /// Stops the timer once everything recorded is delivered or given up on; later calls throw.
    /// Calling it again returns a promise for the same completion.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn shutdown(&self) -> Promise {
        let target = {
            let mut inner = self.inner.borrow_mut();
            inner.shut_down = true;
            inner.page_watch = None;
            inner.core.begin_shutdown()
        };
        self.wait_for(target)
    }

    /// Counts of what happened; see the README for the fields.
    #[wasm_bindgen(unchecked_return_type = "SegOpsStats")]
    pub fn stats(&self) -> JsValue {
        let inner = self.inner.borrow();
        let core = &inner.core;
        let s = core.stats();
        let out = Object::new();
        let set = |o: &Object, k: &str, v: JsValue| {
            let _ = Reflect::set(o, &JsValue::from_str(k), &v);
        };
        set(&out, "recorded", (s.recorded as f64).into());
        set(&out, "queued", (core.queued() as f64).into());
        set(&out, "pending", (core.pending() as f64).into());
        set(&out, "sent", (s.sent as f64).into());
        set(&out, "duplicates", (s.duplicates as f64).into());
        set(&out, "retried", (s.retried as f64).into());
        set(&out, "requests", (s.requests as f64).into());
        set(&out, "bytesSent", (s.bytes_sent as f64).into());
        set(&out, "mints", (s.mints as f64).into());
        set(
            &out,
            "keepaliveRequests",
            (s.keepalive_requests as f64).into(),
        );
        set(&out, "restored", (s.restored as f64).into());
        set(&out, "unsaved", (s.unsaved as f64).into());
        set(&out, "saveFailures", (inner.save_failures as f64).into());
        set(&out, "remints", (s.remints as f64).into());
        set(
            &out,
            "tokenExpiresInMs",
            core.token_remaining_ms(now())
                .map_or(JsValue::NULL, |ms| crate::num::round(ms).into()),
        );
        let dropped = Object::new();
        for (reason, n) in &s.dropped {
            set(&dropped, reason, (*n as f64).into());
        }
        set(&out, "dropped", dropped.into());
        set(&out, "droppedTotal", (s.dropped_total() as f64).into());
        set(&out, "consent", core.consent().as_str().into());
        set(&out, "truncated", (s.truncated as f64).into());
        let by = Object::new();
        set(&by, "depth", (s.truncated_by.depth as f64).into());
        set(&by, "keys", (s.truncated_by.keys as f64).into());
        set(&by, "length", (s.truncated_by.length as f64).into());
        set(&out, "truncatedBy", by.into());
        set(
            &out,
            "beforeSendErrors",
            (inner.before_send_errors as f64).into(),
        );
        let pair = |code: &str, message: &str| {
            let o = Object::new();
            set(&o, "code", code.into());
            set(&o, "message", message.into());
            JsValue::from(o)
        };
        set(
            &out,
            "lastError",
            s.last_error
                .as_ref()
                .map_or(JsValue::NULL, |(c, m)| pair(c, m)),
        );
        set(
            &out,
            "halted",
            core.halted()
                .as_ref()
                .map_or(JsValue::NULL, |h| pair(&h.code, &h.message)),
        );
        out.into()
    }

    /// The anonymous id of this visitor (kept in localStorage in browsers, with consent).
    #[wasm_bindgen(getter, js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.inner.borrow().anonymous_id.clone()
    }

    /// The consent state: `"granted"`, `"pending"` or `"denied"`.
    #[wasm_bindgen(getter, unchecked_return_type = "SegOpsConsent")]
    pub fn consent(&self) -> String {
        self.inner.borrow().core.consent().as_str().to_string()
    }

    /// `setConsent("granted" | "pending" | "denied")`: what the visitor lets the SDK collect.
    /// Granting sends the events buffered while pending; denying discards them and clears what
    /// the SDK stored. In browsers the choice is kept in localStorage (`segops.consent`), and
    /// `"pending"` removes it; the other open tabs of the origin follow a granted or denied
    /// choice at once. Works after `shutdown()` too: a choice is always recorded.
    #[wasm_bindgen(js_name = setConsent)]
    pub fn set_consent(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SegOpsConsent")] state: JsValue,
    ) -> Result<(), JsValue> {
        let consent = state
            .as_string()
            .and_then(|s| Consent::parse(&s))
            .ok_or_else(|| {
                js_error(&Error::argument(
                    "setConsent",
                    &expected("\"granted\", \"pending\" or \"denied\"", &state),
                ))
            })?;
        apply_consent(&self.inner, consent);
        Ok(())
    }

    /// The visitor opts out: `setConsent("denied")`.
    #[wasm_bindgen(js_name = optOut)]
    pub fn opt_out(&self) {
        apply_consent(&self.inner, Consent::Denied);
    }

    /// The visitor opts (back) in: `setConsent("granted")`.
    #[wasm_bindgen(js_name = optIn)]
    pub fn opt_in(&self) {
        apply_consent(&self.inner, Consent::Granted);
    }
}

/// Moves the client to `consent`, records the choice (browsers) and pumps: granting sends what
/// was buffered, and any `flush()` waiting resolves once nothing more can be sent.
fn apply_consent(rc: &Rc<RefCell<Inner>>, consent: Consent) {
    let granted = {
        let mut guard = rc.borrow_mut();
        let inner = &mut *guard;
        inner.core.set_consent(consent);
        match consent {
            Consent::Granted => {
                storage_set(CONSENT_KEY, consent.as_str());
                storage_set(ANONYMOUS_ID_KEY, &inner.anonymous_id);
            }
            Consent::Denied => {
                storage_set(CONSENT_KEY, consent.as_str());
                clear_stored(ANONYMOUS_ID_KEY, SAVED_PREFIX);
                // The old id was the tracking identifier: never reuse it, even if granted later.
                inner.anonymous_id = uuid_v4(inner.random.take::<16>());
            }
            Consent::Pending => {
                storage_remove(CONSENT_KEY);
                storage_remove(&inner.saved_key);
            }
        }
        consent == Consent::Granted && !inner.shut_down
    };
    if granted && is_browser() {
        restore_saved(rc);
    }
    pump(rc);
}

impl SegOpsClient {
    fn check_open(&self) -> Result<(), Error> {
        if self.inner.borrow().shut_down {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    /// The identity for a call: explicit ids, else `getUser()`, else `identify()`'s user, else
    /// the anonymous visitor. Calls app code, so no borrow is held.
    fn identity(
        &self,
        user_id: Option<String>,
        anonymous_id: Option<String>,
        call: &str,
    ) -> Result<(Identity, Option<Signature>), Error> {
        let (get_user, own_anon, identified) = {
            let inner = self.inner.borrow();
            (
                inner.get_user.clone(),
                inner.anonymous_id.clone(),
                inner.identified.clone(),
            )
        };
        let public = self.inner.borrow().core.config().key_kind == KeyKind::Public;
        let explicit = user_id.is_some() || anonymous_id.is_some();
        let (user_id, anonymous_id, signature) = match get_user {
            // A call that names its user (identify() always does) still takes the signature
            // getUser() has for that same user: a key that requires signed ids needs it.
            Some(f) if explicit && public && user_id.is_some() => {
                let signature = ask_user(&f)
                    .ok()
                    .flatten()
                    .filter(|(uid, _, _)| *uid == user_id)
                    .and_then(|(_, _, sig)| sig);
                (user_id, anonymous_id, signature)
            }
            Some(f) if !explicit => match ask_user(&f)? {
                Some((uid, anon, sig)) => (uid, anon, sig),
                None => (identified, None, None),
            },
            _ if explicit => (user_id, anonymous_id, None),
            _ => (identified, None, None),
        };
        let anon_field = field_name(call, ".anonymousId");
        let user_field = field_name(call, ".userId");
        if let Some(a) = &anonymous_id {
            check_id(&anon_field, a)?;
        }
        let identity = match user_id {
            Some(user_id) => {
                check_id(&user_field, &user_id)?;
                Identity::User {
                    user_id,
                    anonymous_id: Some(anonymous_id.unwrap_or(own_anon)),
                }
            }
            None => Identity::Anonymous {
                anonymous_id: anonymous_id.unwrap_or(own_anon),
            },
        };
        Ok((identity, signature))
    }

    fn record_track(&self, arg: &JsValue) -> Result<(), Error> {
        self.check_open()?;
        let Some(arg) = arg_object(arg, "track", true)? else {
            return Err(Error::argument(
                "track",
                "expected an object such as { eventType }",
            ));
        };
        check_keys(
            &arg,
            &[
                "eventType",
                "userId",
                "anonymousId",
                "properties",
                "timestamp",
            ],
            "track.",
            false,
        )?;
        let event_type = opt_string(&arg, "eventType", "track.")?
            .ok_or_else(|| Error::argument("track.eventType", "is required: a non-empty string"))?;
        check_event_type("track.eventType", &event_type)?;
        let properties = json_field(&arg, "properties", "track.")?;
        let timestamp = timestamp_field(&arg, "track.")?;
        let identity = self.identity(
            opt_string(&arg, "userId", "track.")?,
            opt_string(&arg, "anonymousId", "track.")?,
            "track",
        )?;
        self.record(
            EventKind::Track,
            event_type,
            identity,
            timestamp,
            properties,
            None,
        )
    }

    fn record_identify(&self, arg: &JsValue) -> Result<(), Error> {
        self.check_open()?;
        let Some(arg) = arg_object(arg, "identify", true)? else {
            return Err(Error::argument(
                "identify",
                "expected an object such as { userId }",
            ));
        };
        check_keys(
            &arg,
            &["userId", "anonymousId", "traits", "timestamp"],
            "identify.",
            false,
        )?;
        let user_id = opt_string(&arg, "userId", "identify.")?
            .ok_or_else(|| Error::argument("identify.userId", "is required: a non-empty string"))?;
        check_id("identify.userId", &user_id)?;
        let traits = json_field(&arg, "traits", "identify.")?;
        let timestamp = timestamp_field(&arg, "identify.")?;
        let identity = self.identity(
            Some(user_id.clone()),
            opt_string(&arg, "anonymousId", "identify.")?,
            "identify",
        )?;
        self.record(
            EventKind::Identify,
            "identify".into(),
            identity,
            timestamp,
            None,
            traits,
        )?;
        self.inner.borrow_mut().identified = Some(user_id);
        Ok(())
    }

    fn record_page(&self, arg: &JsValue) -> Result<(), Error> {
        self.check_open()?;
        let arg = arg_object(arg, "page", false)?;
        let (name, properties, timestamp, user_id, anonymous_id) = match &arg {
            None => (None, None, None, None, None),
            Some(a) => {
                check_keys(
                    a,
                    &["name", "userId", "anonymousId", "properties", "timestamp"],
                    "page.",
                    false,
                )?;
                (
                    opt_string(a, "name", "page.")?,
                    json_field(a, "properties", "page.")?,
                    timestamp_field(a, "page.")?,
                    opt_string(a, "userId", "page.")?,
                    opt_string(a, "anonymousId", "page.")?,
                )
            }
        };
        // The page name travels as properties.name.
        let properties = match name {
            None => properties,
            Some(name) => {
                let mut p = String::from("{\"name\":");
                crate::json::write_str(&mut p, &name);
                match properties.as_deref() {
                    None | Some("{}") => p.push('}'),
                    Some(rest) => {
                        p.push(',');
                        p.push_str(rest.get(1..).unwrap_or("}"));
                    }
                }
                Some(p)
            }
        };
        let identity = self.identity(user_id, anonymous_id, "page")?;
        self.record(
            EventKind::Page,
            "page_viewed".into(),
            identity,
            timestamp,
            properties,
            None,
        )
    }

    fn record_page_view(&self, arg: &JsValue) -> Result<(), Error> {
        self.check_open()?;
        let arg = arg_object(arg, "trackPageView", false)?;
        let (properties, user_id, anonymous_id) = match &arg {
            None => (None, None, None),
            Some(a) => {
                check_keys(
                    a,
                    &["userId", "anonymousId", "properties"],
                    "trackPageView.",
                    false,
                )?;
                (
                    json_field(a, "properties", "trackPageView.")?,
                    opt_string(a, "userId", "trackPageView.")?,
                    opt_string(a, "anonymousId", "trackPageView.")?,
                )
            }
        };
        let Some(page) = page_snapshot() else {
            return Ok(()); // Node, or server-side rendering: nothing to view.
        };
        let part = |i: u32| page.get(i).as_string().unwrap_or_default();
        let (url, path, search, title, referrer) = (part(0), part(1), part(2), part(3), part(4));
        let mut props = String::from("{");
        for (k, v) in [
            ("url", &url),
            ("path", &path),
            ("search", &search),
            ("title", &title),
            ("referrer", &referrer),
        ] {
            if props.len() > 1 {
                props.push(',');
            }
            crate::json::write_str(&mut props, k);
            props.push(':');
            crate::json::write_str(&mut props, v);
        }
        for (k, v) in utm_params(&url) {
            props.push(',');
            crate::json::write_str(&mut props, k);
            props.push(':');
            crate::json::write_str(&mut props, &v);
        }
        // The app's properties come last, so they win over ours on a shared key.
        match properties.as_deref() {
            None | Some("{}") => props.push('}'),
            Some(own) => {
                props.push(',');
                props.push_str(own.get(1..).unwrap_or("}"));
            }
        }
        let who = self.identity(user_id, anonymous_id, "trackPageView")?;
        let referral = {
            let mut inner = self.inner.borrow_mut();
            if inner.referral_checked {
                None
            } else {
                inner.referral_checked = true;
                classify(
                    &PageSnapshot {
                        url: &url,
                        referrer: &referrer,
                    },
                    &inner.ai_providers,
                )
            }
        };
        self.record(
            EventKind::Page,
            "page_viewed".into(),
            who.clone(),
            None,
            Some(props),
            None,
        )?;
        if let Some(r) = referral {
            let mut p = String::from("{\"source_provider\":");
            crate::json::write_str(&mut p, &r.provider);
            p.push_str(",\"query_hint\":");
            match &r.query_hint {
                Some(q) => crate::json::write_str(&mut p, q),
                None => p.push_str("null"),
            }
            p.push_str(",\"landing_url\":");
            crate::json::write_str(&mut p, &r.landing_url);
            p.push_str(",\"referrer_url\":");
            crate::json::write_str(&mut p, &r.referrer_url);
            p.push('}');
            self.record(
                EventKind::Track,
                "ai_referral_session".into(),
                who,
                None,
                Some(p),
                None,
            )?;
        }
        Ok(())
    }

    /// Listens for the page being hidden, shown again, or back online.
    fn watch_page(&self) {
        let weak = Rc::downgrade(&self.inner);
        let w = weak.clone();
        let on_hidden = Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = w.upgrade() {
                on_page_hidden(&rc);
            }
        });
        let w = weak.clone();
        let on_shown = Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = w.upgrade() {
                on_page_shown(&rc);
            }
        });
        let w = weak.clone();
        let on_online = Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = w.upgrade() {
                rc.borrow_mut().core.resume(now());
                spawn_local(async move { pump(&rc) });
            }
        });
        // A choice made in another tab applies here too: an opt-out stops every open page.
        let on_consent = Closure::<dyn FnMut(String)>::new(move |value: String| {
            let Some(rc) = weak.upgrade() else { return };
            let Some(choice) = Consent::parse_persisted(&value) else {
                return;
            };
            if rc.borrow().core.consent() != choice {
                apply_consent(&rc, choice);
            }
        });
        let unwatch = watch_page(&on_hidden, &on_shown, &on_online, &on_consent, CONSENT_KEY);
        self.inner.borrow_mut().page_watch = Some(PageWatch {
            unwatch,
            _callbacks: [on_hidden, on_shown, on_online],
            _on_consent: on_consent,
        });
    }

    fn record(
        &self,
        kind: EventKind,
        event_type: String,
        (identity, signature): (Identity, Option<Signature>),
        timestamp: Option<String>,
        properties: Option<String>,
        traits: Option<String>,
    ) -> Result<(), Error> {
        let now = now();
        let context = page_json();
        let mut event = EventInput {
            kind,
            event_type,
            identity,
            timestamp: timestamp.unwrap_or_else(|| format_iso8601(now)),
            properties: properties.map(|p| crate::json::fix_lone_surrogates(&p).into_owned()),
            traits: traits.map(|t| crate::json::fix_lone_surrogates(&t).into_owned()),
            context,
        };
        let mut signature = signature;
        // The original, while an edited event has yet to prove it fits.
        let mut original = None;
        if let Some(hook) = self.enter_before_send() {
            let outcome = run_before_send(&hook, &event); // app code: no borrow held
            self.inner.borrow_mut().in_before_send = false;
            match outcome {
                HookOutcome::Edited(edited) => {
                    if edited.identity.uid() != event.identity.uid() {
                        signature = None; // the app's signature was for the other user id
                    }
                    original = Some((core::mem::replace(&mut event, edited), signature.clone()));
                }
                HookOutcome::Drop => {
                    self.inner.borrow_mut().core.discard(reason::BEFORE_SEND);
                    return Ok(());
                }
                HookOutcome::Problem(message) => self.before_send_problem(&message),
            }
        }
        let mut inner = self.inner.borrow_mut();
        let message_id = uuid_v4(inner.random.take::<16>());
        if let Err(e) = inner.core.enqueue(&message_id, event, signature, now) {
            // An event the hook made too large is kept as it was.
            let Some((event, signature)) =
                original.filter(|_| matches!(e, Error::EventTooLarge { .. }))
            else {
                return Err(e);
            };
            inner.core.enqueue(&message_id, event, signature, now)?;
            drop(inner);
            self.before_send_problem(
                "SegOps: beforeSend returned an event over maxEventBytes; the event was kept unchanged. Later beforeSend problems are only counted, in stats().beforeSendErrors.",
            );
            inner = self.inner.borrow_mut();
        }
        let wake = inner.core.next_wake(now);
        // A hidden page may be closed or discarded at any moment, with no further signal:
        // save events recorded now (once per task, after it) so the next page load sends them.
        let save = inner.hidden && !inner.save_queued;
        inner.save_queued |= save;
        drop(inner);
        self.schedule(wake, now);
        if save {
            let weak = Rc::downgrade(&self.inner);
            spawn_local(async move {
                let Some(rc) = weak.upgrade() else { return };
                rc.borrow_mut().save_queued = false;
                if rc.borrow().hidden {
                    save_snapshot(&rc);
                }
            });
        }
        Ok(())
    }

    /// The `beforeSend` hook to run for an event now, if any: not for events it records itself,
    /// nor while consent is denied (the event is discarded anyway).
    fn enter_before_send(&self) -> Option<Function> {
        let mut inner = self.inner.borrow_mut();
        if inner.in_before_send || inner.core.consent() == Consent::Denied {
            return None;
        }
        let hook = inner.before_send.clone()?;
        inner.in_before_send = true;
        Some(hook)
    }

    /// Counts a `beforeSend` problem; the first one of the client is logged.
    fn before_send_problem(&self, message: &str) {
        let first = {
            let mut inner = self.inner.borrow_mut();
            inner.before_send_errors += 1;
            inner.before_send_errors == 1
        };
        if first {
            console_error(message);
        }
    }

    /// After a call changed what is due: pump now (after the current task's synchronous work,
    /// so a burst goes out as one batch) or make sure the timer is set.
    fn schedule(&self, wake: Option<f64>, now: f64) {
        let Some(at) = wake else { return };
        let mut inner = self.inner.borrow_mut();
        if at <= now {
            if !inner.pump_queued {
                inner.pump_queued = true;
                let rc = self.inner.clone();
                spawn_local(async move { pump(&rc) });
            }
        } else if inner.timer.as_ref().is_none_or(|t| t.at > at) {
            arm_timer(&mut inner, at, now, Rc::downgrade(&self.inner));
        }
    }

    fn wait_for(&self, target: u64) -> Promise {
        let rc = self.inner.clone();
        let promise = Promise::new(&mut |resolve, _reject| {
            rc.borrow_mut().waiters.push((target, resolve));
        });
        let mut inner = self.inner.borrow_mut();
        if !inner.pump_queued {
            inner.pump_queued = true;
            let rc = self.inner.clone();
            spawn_local(async move { pump(&rc) });
        }
        promise
    }
}

/// What `beforeSend` made of an event.
enum HookOutcome {
    Edited(EventInput),
    /// It returned `null`.
    Drop,
    /// It threw or returned something unusable: the event is kept as it was.
    Problem(String),
}

/// The end of every `beforeSend` problem's message.
const HOOK_KEPT: &str = "; the event was kept unchanged. Later beforeSend problems are only counted, in stats().beforeSendErrors.";

/// Fields of the event object `beforeSend` gets and returns.
const HOOK_FIELDS: &[&str] = &[
    "type",
    "eventType",
    "userId",
    "anonymousId",
    "timestamp",
    "properties",
    "traits",
    "context",
];

/// The event as the app sees it in `beforeSend`: a fresh object, so editing it in place changes
/// nothing the app holds.
fn event_object(e: &EventInput) -> JsValue {
    let o = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&o, &JsValue::from_str(k), &v);
    };
    set("type", e.kind.as_str().into());
    set("eventType", e.event_type.as_str().into());
    match &e.identity {
        Identity::User {
            user_id,
            anonymous_id,
        } => {
            set("userId", user_id.as_str().into());
            if let Some(a) = anonymous_id {
                set("anonymousId", a.as_str().into());
            }
        }
        Identity::Anonymous { anonymous_id } => set("anonymousId", anonymous_id.as_str().into()),
    }
    set("timestamp", e.timestamp.as_str().into());
    for (k, v) in [
        ("properties", &e.properties),
        ("traits", &e.traits),
        ("context", &e.context),
    ] {
        if let Some(text) = v {
            if let Ok(parsed) = js_sys::JSON::parse(text) {
                set(k, parsed);
            }
        }
    }
    o.into()
}

/// Reads back what `beforeSend` returned, with the checks of `track()` input.
fn read_hook_event(v: &JsValue, original: &EventInput) -> Result<EventInput, Error> {
    const CALL: &str = "beforeSend()";
    const PREFIX: &str = "beforeSend().";
    if v.is_undefined() {
        return Err(Error::argument(
            CALL,
            "returned undefined; return the event (edited or not), or null to drop it",
        ));
    }
    if is_promise(v) {
        return Err(Error::argument(
            CALL,
            "returned a Promise; beforeSend must return the event synchronously",
        ));
    }
    let Some(v) = arg_object(v, CALL, true)? else {
        return Err(Error::argument(CALL, "expected the event or null"));
    };
    check_keys(&v, HOOK_FIELDS, PREFIX, false)?;
    if let Some(kind) = opt_string(&v, "type", PREFIX)? {
        if kind != original.kind.as_str() {
            return Err(Error::argument(
                "beforeSend().type",
                "cannot be changed (a track stays a track)",
            ));
        }
    }
    let event_type = opt_string(&v, "eventType", PREFIX)?
        .ok_or_else(|| Error::argument("beforeSend().eventType", "is required"))?;
    check_event_type("beforeSend().eventType", &event_type)?;
    let user_id = opt_string(&v, "userId", PREFIX)?;
    let anonymous_id = opt_string(&v, "anonymousId", PREFIX)?;
    if let Some(u) = &user_id {
        check_id("beforeSend().userId", u)?;
    }
    if let Some(a) = &anonymous_id {
        check_id("beforeSend().anonymousId", a)?;
    }
    let identity = match (user_id, anonymous_id) {
        (Some(user_id), anonymous_id) => Identity::User {
            user_id,
            anonymous_id,
        },
        (None, Some(anonymous_id)) => Identity::Anonymous { anonymous_id },
        (None, None) => {
            return Err(Error::argument(
                "beforeSend().anonymousId",
                "is required when there is no userId",
            ))
        }
    };
    let fixed = |t: Option<String>| t.map(|t| crate::json::fix_lone_surrogates(&t).into_owned());
    Ok(EventInput {
        kind: original.kind,
        event_type,
        identity,
        timestamp: timestamp_field(&v, PREFIX)?.unwrap_or_else(|| original.timestamp.clone()),
        properties: fixed(json_field(&v, "properties", PREFIX)?),
        traits: fixed(json_field(&v, "traits", PREFIX)?),
        context: fixed(json_field(&v, "context", PREFIX)?),
    })
}

/// Calls the app's `beforeSend` with the event. Never throws.
fn run_before_send(hook: &Function, event: &EventInput) -> HookOutcome {
    let answer = call_hook(hook, &event_object(event));
    let value = answer.get(1);
    if answer.get(0).as_bool() != Some(true) {
        let mut m = String::from("SegOps: beforeSend threw (");
        m.push_str(&value.as_string().unwrap_or_default());
        m.push(')');
        m.push_str(HOOK_KEPT);
        return HookOutcome::Problem(m);
    }
    if value.is_null() {
        return HookOutcome::Drop;
    }
    match read_hook_event(&value, event) {
        Ok(edited) => HookOutcome::Edited(edited),
        Err(e) => {
            let mut m = e.message();
            m.push_str(HOOK_KEPT);
            HookOutcome::Problem(m)
        }
    }
}

fn arm_timer(inner: &mut Inner, at: f64, now: f64, weak: Weak<RefCell<Inner>>) {
    let keep_alive = !inner.waiters.is_empty();
    let callback = Closure::<dyn FnMut()>::new(move || {
        if let Some(rc) = weak.upgrade() {
            // Outside this callback, forget the fired timer (so the pump arms a new one even
            // for the same instant: timers may fire a millisecond early) and pump.
            spawn_local(async move {
                rc.borrow_mut().timer = None;
                pump(&rc);
            });
        }
    });
    // setTimeout holds at most 2^31 - 1 ms; longer delays fire at once. A wake-up that far out
    // wakes early instead, and the pump simply sets the timer again.
    let id = set_timer(
        &callback,
        (at - now).clamp(0.0, 2_147_483_647.0),
        keep_alive,
    );
    inner.timer = Some(Timer {
        at,
        keep_alive,
        id,
        _callback: callback,
    });
}

/// Sends what is due, resolves settled flushes, prints logs and sets the timer.
fn pump(rc: &Rc<RefCell<Inner>>) {
    let now = now();
    let (requests, resolved, logs) = {
        let mut guard = rc.borrow_mut();
        let inner = &mut *guard;
        inner.pump_queued = false;
        let mut requests = Vec::new();
        while let Some(r) = inner.core.poll_request(now) {
            requests.push(r);
        }
        let mut resolved = Vec::new();
        let core = &inner.core;
        inner.waiters.retain(|(target, resolve)| {
            if core.is_flushed(*target) {
                resolved.push(resolve.clone());
                false
            } else {
                true
            }
        });
        let logs = inner.core.take_logs();
        let idle = inner.shut_down && inner.waiters.is_empty() && requests.is_empty();
        match inner.core.next_wake(now) {
            Some(at) if !idle => {
                let keep_alive = !inner.waiters.is_empty();
                if inner
                    .timer
                    .as_ref()
                    .is_none_or(|t| t.at != at || t.keep_alive != keep_alive)
                {
                    arm_timer(inner, at, now, Rc::downgrade(rc));
                }
            }
            _ => inner.timer = None,
        }
        (requests, resolved, logs)
    };
    for log in logs {
        match log.level {
            Level::Debug => console_log(&log.message),
            Level::Warn => console_warn(&log.message),
            Level::Error => console_error(&log.message),
        }
    }
    send_all(rc, requests);
    for resolve in resolved {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// Starts a request now (synchronously: a page being unloaded gives no second chance).
fn start(req: &Request) -> Promise {
    send(
        &req.url,
        &req.authorization,
        &req.body,
        req.keepalive,
        req.timeout_ms,
    )
}

async fn finish(promise: Promise) -> HttpResult {
    let answer = match JsFuture::from(promise).await {
        Ok(v) => v,
        Err(e) => return HttpResult::Network(e.as_string().unwrap_or_default()),
    };
    let answer: Array = answer.unchecked_into();
    let status = answer.get(0).as_f64().unwrap_or(0.0);
    let text = answer.get(2).as_string().unwrap_or_default();
    if status < 0.0 {
        HttpResult::Timeout
    } else if (1.0..=999.0).contains(&status) {
        HttpResult::Response {
            status: status as u16,
            retry_after: answer.get(1).as_string(),
            body: text,
        }
    } else {
        HttpResult::Network(text)
    }
}

/// Sends `requests` now and feeds each answer back, then pumps. While the page is hidden, each
/// answer also refreshes the saved snapshot.
fn send_all(rc: &Rc<RefCell<Inner>>, requests: Vec<Request>) {
    for request in requests {
        let promise = start(&request);
        let rc = rc.clone();
        spawn_local(async move {
            let result = finish(promise).await;
            let hidden = {
                let mut inner = rc.borrow_mut();
                inner.core.on_result(request.id, result, now());
                // After shutdown() the client leaves storage alone: the page it served is gone,
                // and rewriting its snapshot would bring back events that a newer client has
                // already taken (they would be sent twice; the server keeps one copy).
                inner.hidden && !inner.shut_down
            };
            if hidden {
                save_snapshot(&rc);
            }
            pump(&rc);
        });
    }
}

/// Writes (or clears) this tab's snapshot of unsent events.
fn save_snapshot(rc: &Rc<RefCell<Inner>>) {
    let mut inner = rc.borrow_mut();
    let text = inner.core.snapshot();
    if text.is_empty() {
        storage_remove(&inner.saved_key);
    } else if !storage_set(&inner.saved_key, &text) {
        // Full or disabled storage (quota, private mode): the events stay in memory.
        inner.save_failures += 1;
    }
}

/// The page is hidden or being unloaded: hand everything to keepalive requests and save a
/// snapshot for the next page load. Every signal counts, `pagehide` after `visibilitychange`
/// included: a page hidden earlier may have recorded events since, and this is its last
/// chance. A repeated signal sends only what is new (what keepalive already carries is not in
/// the queue any more).
fn on_page_hidden(rc: &Rc<RefCell<Inner>>) {
    let requests = {
        let mut inner = rc.borrow_mut();
        if inner.shut_down {
            return;
        }
        inner.hidden = true;
        inner.core.on_hidden(now())
    };
    send_all(rc, requests);
    save_snapshot(rc);
}

/// The page is visible again: this tab's memory holds everything, so its snapshot goes, and
/// sending resumes at once.
fn on_page_shown(rc: &Rc<RefCell<Inner>>) {
    {
        let mut inner = rc.borrow_mut();
        if !inner.hidden {
            return;
        }
        inner.hidden = false;
        storage_remove(&inner.saved_key);
        inner.core.resume(now());
    }
    pump(rc);
}

/// Takes up the snapshots earlier pages of this origin saved, and sends them.
fn restore_saved(rc: &Rc<RefCell<Inner>>) {
    let promise = {
        let mut inner = rc.borrow_mut();
        if inner.restored {
            return;
        }
        inner.restored = true;
        take_saved(SAVED_PREFIX, &inner.saved_key)
    };
    let weak = Rc::downgrade(rc);
    spawn_local(async move {
        let Ok(texts) = JsFuture::from(promise).await else {
            return;
        };
        let Some(rc) = weak.upgrade() else { return };
        let texts: Array = texts.unchecked_into();
        {
            let mut inner = rc.borrow_mut();
            let now = now();
            for t in texts.iter() {
                if let Some(t) = t.as_string() {
                    inner.core.restore(&t, now);
                }
            }
        }
        pump(&rc);
    });
}

/// `signUserId({ secret, userId, now? })` -> `{ userId, userIdSig, userIdTs }`: signs a user id
/// with a public key's HMAC secret, on the app's server. Exported from the Node build only
/// (feature `server`), so that no browser bundle offers to handle an HMAC secret.
#[cfg(feature = "server")]
#[wasm_bindgen(typescript_custom_section)]
const SERVER_TYPES: &'static str = r#"
export interface SignUserIdArgs {
  /** The public key's hmac_secret, from key creation. Keep it on your server. */
  secret: string;
  userId: string;
  /** The signing time (default now): a Date or epoch milliseconds. */
  now?: Date | number;
}
export interface SignedUserId {
  userId: string;
  userIdSig: string;
  /** Unix seconds; the server accepts a signature from 300 s in the past to 60 s ahead. */
  userIdTs: number;
}
"#;

#[cfg(feature = "server")]
#[wasm_bindgen(js_name = signUserId, unchecked_return_type = "SignedUserId")]
pub fn sign_user_id(
    #[wasm_bindgen(unchecked_param_type = "SignUserIdArgs")] args: JsValue,
) -> Result<JsValue, JsValue> {
    sign_user_id_inner(&args).map_err(|e| js_error(&e))
}

#[cfg(feature = "server")]
fn sign_user_id_inner(args: &JsValue) -> Result<JsValue, Error> {
    let Some(args) = arg_object(args, "signUserId", true)? else {
        return Err(Error::argument(
            "signUserId",
            "expected { secret, userId, now? }",
        ));
    };
    check_keys(&args, &["secret", "userId", "now"], "signUserId.", false)?;
    let secret = opt_string(&args, "secret", "signUserId.")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::argument(
                "signUserId.secret",
                "is required: the public key's hmac_secret",
            )
        })?;
    let user_id = opt_string(&args, "userId", "signUserId.")?
        .ok_or_else(|| Error::argument("signUserId.userId", "is required: a non-empty string"))?;
    check_id("signUserId.userId", &user_id)?;
    let now_v = get(&args, "now", "signUserId.now", false)?;
    let now_ms = if now_v.is_undefined() {
        now()
    } else if let Some(t) = date_time(&now_v) {
        t
    } else {
        now_v.as_f64().ok_or_else(|| {
            Error::argument(
                "signUserId.now",
                &expected("a Date or epoch milliseconds", &now_v),
            )
        })?
    };
    if !now_ms.is_finite() || now_ms.abs() > 8.64e15 {
        return Err(Error::argument("signUserId.now", "expected a valid time"));
    }
    let ts = crate::num::floor(now_ms / 1000.0) as i64;
    let sig = crate::sign::sign_user_id(&secret, &user_id, ts);
    let out = Object::new();
    let _ = Reflect::set(&out, &"userId".into(), &user_id.into());
    let _ = Reflect::set(&out, &"userIdSig".into(), &sig.into());
    let _ = Reflect::set(&out, &"userIdTs".into(), &(ts as f64).into());
    Ok(out.into())
}
