//! The calls that record events: `track`, `identify`, `page` and `trackPageView`, each from the
//! loader's record of it (its arguments, its time, the app's user at that time, its page).

#[allow(unused_imports)]
use crate::prelude::*;

use super::input::{arg_object, check_keys, expected, json_object, opt_string, Arg, Field, Obj};
use super::Client;
use crate::core::auth::Signature;
use crate::core::config::KeyKind;
use crate::core::error::Error;
use crate::core::event::{check_event_type, check_id, EventInput, EventKind, Identity};
use crate::core::json::{members, parse, write_str, Value};
use crate::core::referrer::{classify, utm_params, PageSnapshot};
use crate::core::time::{format_iso8601, parse_rfc3339};

/// One call as the loader recorded it: `{"m", "i", "j", "t", "u", "p", "v"}`.
pub struct Record<'a> {
    /// `track`, `identify`, `page` or `pageView`.
    pub method: String,
    /// The message id of the call's event, and of a second one (`trackPageView`'s
    /// `ai_referral_session`).
    pub ids: [Option<String>; 2],
    /// When the call was made, epoch milliseconds.
    pub time: Option<f64>,
    /// What `getUser()` returned at the call, when it was asked.
    pub user: Option<Arg<'a>>,
    /// The page at the call (browsers): `{url, path, search, title, referrer}` as JSON.
    pub page: Option<&'a str>,
    pub arg: Arg<'a>,
}

impl<'a> Record<'a> {
    pub fn of(text: &'a str) -> Record<'a> {
        let mut r = Record {
            method: String::new(),
            ids: [None, None],
            time: None,
            user: None,
            page: None,
            arg: Arg::of(None),
        };
        for (key, raw) in members(text).unwrap_or_default() {
            let string = || parse(raw).ok().and_then(|v| v.as_str().map(str::to_string));
            match key.as_str() {
                "m" => r.method = string().unwrap_or_default(),
                "i" => r.ids[0] = string(),
                "j" => r.ids[1] = string(),
                "t" => {
                    if let Ok(Value::Number(n)) = parse(raw) {
                        r.time = Some(n.approx_f64());
                    }
                }
                "u" => r.user = Some(Arg::of(Some(raw))),
                "p" if raw.trim_start().starts_with('{') => r.page = Some(raw),
                "v" => r.arg = Arg::of(Some(raw)),
                _ => {}
            }
        }
        r
    }
}

/// An event ready for `beforeSend` and the queue.
pub struct Held {
    pub message_id: String,
    pub event: EventInput,
    pub signature: Option<Signature>,
}

/// Who `getUser()` named: user id, anonymous id, signature.
type User = (Option<String>, Option<String>, Option<Signature>);

/// Reads what `getUser()` returned: `None` for null or undefined (nobody in particular).
fn ask_user(user: &Arg<'_>) -> Result<Option<User>, Error> {
    if user.e.is_some() {
        return Err(Error::config(
            "getUser",
            "threw an exception; it must return { userId } or { anonymousId }",
        ));
    }
    let whole = user.whole();
    if whole.is_nothing() {
        return Ok(None);
    }
    let obj = match (whole, user.object()) {
        (Field::Json(raw), Some(obj)) if raw.trim_start().starts_with('{') => obj,
        (Field::Absent, Some(obj)) => obj,
        _ => {
            return Err(Error::config(
                "getUser",
                &expected("a returned { userId } or { anonymousId }", whole),
            ))
        }
    };
    let s = |k: &str| {
        let mut f = String::from("getUser().");
        f.push_str(k);
        opt_string(&f, obj.field(k), Error::argument)
    };
    let signature = match s("userIdSig")? {
        None => None,
        Some(sig) => {
            let ts = obj.field("userIdTs");
            let n = match ts {
                Field::Json(raw) => match parse(raw) {
                    Ok(Value::Number(n)) => Some(n.approx_f64()),
                    _ => None,
                },
                _ => None,
            };
            match n {
                Some(t) if crate::core::num::is_integral(t) && t.abs() < 1e15 => {
                    Some(Signature { sig, ts: t as i64 })
                }
                _ => {
                    return Err(Error::argument(
                        "getUser().userIdTs",
                        &expected("the integer Unix seconds that came with userIdSig", ts),
                    ))
                }
            }
        }
    };
    Ok(Some((s("userId")?, s("anonymousId")?, signature)))
}

fn field_name(prefix: &str, key: &str) -> String {
    let mut f = String::from(prefix);
    f.push_str(key);
    f
}

/// `call.key` of an argument object.
fn string_field(obj: &Obj<'_>, call: &str, key: &str) -> Result<Option<String>, Error> {
    let mut f = String::from(call);
    f.push('.');
    f.push_str(key);
    opt_string(&f, obj.field(key), Error::argument)
}

fn object_field(obj: &Obj<'_>, call: &str, key: &str) -> Result<Option<String>, Error> {
    let mut f = String::from(call);
    f.push('.');
    f.push_str(key);
    json_object(&f, obj.field(key))
}

/// The `timestamp` field: a Date (recorded as its ISO string), epoch milliseconds, or an
/// RFC 3339 string; `None` when absent.
pub fn timestamp(field: &str, f: Field<'_>) -> Result<Option<String>, Error> {
    if f.is_nothing() {
        return Ok(None);
    }
    let exp = "expected a Date, epoch milliseconds, or an RFC 3339 string";
    let ms = match f {
        Field::Json(raw) => match parse(raw) {
            Ok(Value::String(s)) => {
                return match parse_rfc3339(&s) {
                    Some(_) => Ok(Some(s)),
                    None => Err(Error::argument(field, exp)),
                }
            }
            Ok(Value::Number(n)) => n.approx_f64(),
            _ => return Err(Error::argument(field, &expected(exp, f))),
        },
        _ => return Err(Error::argument(field, &expected(exp, f))),
    };
    // Years 0 to 9999 only; beyond that is a bug in the caller.
    if !(ms.is_finite() && (-62_167_219_200_000.0..=253_402_300_799_999.0).contains(&ms)) {
        return Err(Error::argument(field, exp));
    }
    Ok(Some(format_iso8601(ms)))
}

impl Client {
    /// The identity for a call: explicit ids, else `getUser()`'s answer, else `identify()`'s
    /// user, else the anonymous visitor. `identified` is the client's (or, for a call an
    /// earlier page saved, that page's).
    fn identity(
        &self,
        user_id: Option<String>,
        anonymous_id: Option<String>,
        user: Option<&Arg<'_>>,
        identified: &Option<String>,
        call: &str,
    ) -> Result<(Identity, Option<Signature>), Error> {
        let public = self.core.config().key_kind == KeyKind::Public;
        let explicit = user_id.is_some() || anonymous_id.is_some();
        let (user_id, anonymous_id, signature) = match user {
            // A call that names its user (identify() always does) still takes the signature
            // getUser() has for that same user: a key that requires signed ids needs it.
            Some(u) if explicit && public && user_id.is_some() => {
                let signature = ask_user(u)
                    .ok()
                    .flatten()
                    .filter(|(uid, _, _)| *uid == user_id)
                    .and_then(|(_, _, sig)| sig);
                (user_id, anonymous_id, signature)
            }
            Some(u) if !explicit => match ask_user(u)? {
                Some((uid, anon, sig)) => (uid, anon, sig),
                None => (identified.clone(), None, None),
            },
            _ if explicit => (user_id, anonymous_id, None),
            _ => (identified.clone(), None, None),
        };
        if let Some(a) = &anonymous_id {
            check_id(&field_name(call, ".anonymousId"), a)?;
        }
        let own = || {
            anonymous_id
                .clone()
                .unwrap_or_else(|| self.anonymous_id.clone())
        };
        let identity = match &user_id {
            Some(u) => {
                check_id(&field_name(call, ".userId"), u)?;
                Identity::User {
                    user_id: u.clone(),
                    anonymous_id: Some(own()),
                }
            }
            None => Identity::Anonymous {
                anonymous_id: own(),
            },
        };
        Ok((identity, signature))
    }

    /// The events a recorded call makes, checked. `identified` is updated by `identify()`.
    /// `referral` says whether `trackPageView()` may look for an AI referral.
    pub(super) fn events_of(
        &mut self,
        rec: &Record<'_>,
        identified: &mut Option<String>,
        referral: bool,
    ) -> Result<Vec<Held>, Error> {
        let time = rec.time.unwrap_or(0.0);
        let context = rec.page.map(|p| {
            let mut c = String::with_capacity(p.len() + 10);
            c.push_str("{\"page\":");
            c.push_str(p);
            c.push('}');
            c
        });
        let mut ids: Vec<String> = Vec::with_capacity(2);
        let needed = if rec.method == "pageView" { 2 } else { 1 };
        for id in rec.ids.iter().take(needed) {
            ids.push(
                match id.as_ref().filter(|i| check_id("message_id", i).is_ok()) {
                    Some(i) => i.clone(),
                    None => self.new_uuid(),
                },
            );
        }
        ids.reverse();
        let mut make =
            |kind, event_type: String, who: (Identity, Option<Signature>), ts, p, t| Held {
                message_id: ids.pop().unwrap_or_default(),
                event: EventInput {
                    kind,
                    event_type,
                    identity: who.0,
                    timestamp: ts,
                    properties: p,
                    traits: t,
                    context: context.clone(),
                },
                signature: who.1,
            };
        let call_time = || format_iso8601(time);
        let user = rec.user.as_ref();
        match rec.method.as_str() {
            "track" => {
                let obj = arg_object(&rec.arg, "track", true, "{ eventType }")?
                    .ok_or_else(|| Error::argument("track", "expected an object"))?;
                check_keys(
                    &obj,
                    &[
                        "eventType",
                        "userId",
                        "anonymousId",
                        "properties",
                        "timestamp",
                    ],
                    "track.",
                    Error::argument,
                )?;
                let event_type = string_field(&obj, "track", "eventType")?.ok_or_else(|| {
                    Error::argument("track.eventType", "is required: a non-empty string")
                })?;
                check_event_type("track.eventType", &event_type)?;
                let properties = object_field(&obj, "track", "properties")?;
                let ts = timestamp("track.timestamp", obj.field("timestamp"))?;
                let who = self.identity(
                    string_field(&obj, "track", "userId")?,
                    string_field(&obj, "track", "anonymousId")?,
                    user,
                    identified,
                    "track",
                )?;
                Ok(vec![make(
                    EventKind::Track,
                    event_type,
                    who,
                    ts.unwrap_or_else(call_time),
                    properties,
                    None,
                )])
            }
            "identify" => {
                let obj = arg_object(&rec.arg, "identify", true, "{ userId }")?
                    .ok_or_else(|| Error::argument("identify", "expected an object"))?;
                check_keys(
                    &obj,
                    &["userId", "anonymousId", "traits", "timestamp"],
                    "identify.",
                    Error::argument,
                )?;
                let user_id = string_field(&obj, "identify", "userId")?.ok_or_else(|| {
                    Error::argument("identify.userId", "is required: a non-empty string")
                })?;
                check_id("identify.userId", &user_id)?;
                let traits = object_field(&obj, "identify", "traits")?;
                let ts = timestamp("identify.timestamp", obj.field("timestamp"))?;
                let who = self.identity(
                    Some(user_id.clone()),
                    string_field(&obj, "identify", "anonymousId")?,
                    user,
                    identified,
                    "identify",
                )?;
                let held = make(
                    EventKind::Identify,
                    "identify".into(),
                    who,
                    ts.unwrap_or_else(call_time),
                    None,
                    traits,
                );
                *identified = Some(user_id);
                Ok(vec![held])
            }
            "page" => {
                let obj = arg_object(&rec.arg, "page", false, "{ name }")?;
                let (name, properties, ts, uid, anon) = match &obj {
                    None => (None, None, None, None, None),
                    Some(o) => {
                        check_keys(
                            o,
                            &["name", "userId", "anonymousId", "properties", "timestamp"],
                            "page.",
                            Error::argument,
                        )?;
                        (
                            string_field(o, "page", "name")?,
                            object_field(o, "page", "properties")?,
                            timestamp("page.timestamp", o.field("timestamp"))?,
                            string_field(o, "page", "userId")?,
                            string_field(o, "page", "anonymousId")?,
                        )
                    }
                };
                // The page name travels as properties.name.
                let properties = match name {
                    None => properties,
                    Some(name) => {
                        let mut p = String::from("{\"name\":");
                        write_str(&mut p, &name);
                        merge_into(&mut p, properties.as_deref());
                        Some(p)
                    }
                };
                let who = self.identity(uid, anon, user, identified, "page")?;
                Ok(vec![make(
                    EventKind::Page,
                    "page_viewed".into(),
                    who,
                    ts.unwrap_or_else(call_time),
                    properties,
                    None,
                )])
            }
            "pageView" => {
                let obj = arg_object(&rec.arg, "trackPageView", false, "{ properties }")?;
                let (properties, uid, anon) = match &obj {
                    None => (None, None, None),
                    Some(o) => {
                        check_keys(
                            o,
                            &["userId", "anonymousId", "properties"],
                            "trackPageView.",
                            Error::argument,
                        )?;
                        (
                            object_field(o, "trackPageView", "properties")?,
                            string_field(o, "trackPageView", "userId")?,
                            string_field(o, "trackPageView", "anonymousId")?,
                        )
                    }
                };
                let Some(page) = rec.page.and_then(|p| parse(p).ok()) else {
                    return Ok(Vec::new()); // Node, or server-side rendering: nothing to view.
                };
                let part = |k: &str| {
                    page.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let (url, referrer) = (part("url"), part("referrer"));
                let mut props = String::from("{");
                for k in ["url", "path", "search", "title", "referrer"] {
                    if props.len() > 1 {
                        props.push(',');
                    }
                    write_str(&mut props, k);
                    props.push(':');
                    write_str(&mut props, &part(k));
                }
                for (k, v) in utm_params(&url) {
                    props.push(',');
                    write_str(&mut props, k);
                    props.push(':');
                    write_str(&mut props, &v);
                }
                // The app's properties come last, so they win over ours on a shared key.
                merge_into(&mut props, properties.as_deref());
                let who = self.identity(uid, anon, user, identified, "trackPageView")?;
                let found = if referral {
                    classify(
                        &PageSnapshot {
                            url: &url,
                            referrer: &referrer,
                        },
                        &self.ai_providers,
                    )
                } else {
                    None
                };
                let mut out = vec![make(
                    EventKind::Page,
                    "page_viewed".into(),
                    who.clone(),
                    call_time(),
                    Some(props),
                    None,
                )];
                if let Some(r) = found {
                    let mut p = String::from("{\"source_provider\":");
                    write_str(&mut p, &r.provider);
                    p.push_str(",\"query_hint\":");
                    match &r.query_hint {
                        Some(q) => write_str(&mut p, q),
                        None => p.push_str("null"),
                    }
                    p.push_str(",\"landing_url\":");
                    write_str(&mut p, &r.landing_url);
                    p.push_str(",\"referrer_url\":");
                    write_str(&mut p, &r.referrer_url);
                    p.push('}');
                    out.push(make(
                        EventKind::Track,
                        "ai_referral_session".into(),
                        who,
                        call_time(),
                        Some(p),
                        None,
                    ));
                }
                Ok(out)
            }
            _ => Err(Error::argument("(call)", "unknown call")),
        }
    }
}

/// Closes the object `head` (its opening brace and first members written) with the members of
/// the JSON object `rest`, when it has any.
fn merge_into(head: &mut String, rest: Option<&str>) {
    match rest.map(str::trim) {
        None | Some("{}") => head.push('}'),
        Some(own) => {
            if head.len() > 1 {
                head.push(',');
            }
            head.push_str(own.get(1..).unwrap_or("}"));
        }
    }
}
