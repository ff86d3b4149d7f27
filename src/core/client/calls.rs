//! The calls that record events: `track`, `identify`, `page` and `trackPageView`, each from the
//! loader's record of it (its arguments, its time, the app's user at that time, its page).

#[allow(unused_imports)]
use crate::prelude::*;

use super::input::{
    arg_object, expected, opt_string, read_fields, scalar, Arg, Field, Spec, ID, NAME, OBJECT,
    REQUIRED, TEXT, TIME,
};
use super::Client;
use crate::core::auth::Signature;
use crate::core::config::KeyKind;
use crate::core::error::Error;
use crate::core::event::{check_id, EventInput, EventKind, Identity};
use crate::core::json::{members, write_str, Value};
use crate::core::referrer::{utm_params, PageSnapshot};
use crate::core::time::{format_iso8601, parse_rfc3339};

/// What each call takes; see [`read_fields`]. The order matters to `events_of`.
const TRACK: Spec = &[
    ("eventType", NAME | REQUIRED),
    ("properties", OBJECT),
    ("timestamp", TIME),
    ("userId", ID),
    ("anonymousId", ID),
];
const IDENTIFY: Spec = &[
    ("userId", ID | REQUIRED),
    ("traits", OBJECT),
    ("timestamp", TIME),
    ("anonymousId", ID),
];
const PAGE: Spec = &[
    ("name", TEXT),
    ("properties", OBJECT),
    ("timestamp", TIME),
    ("userId", ID),
    ("anonymousId", ID),
];
const PAGE_VIEW: Spec = &[("properties", OBJECT), ("userId", ID), ("anonymousId", ID)];

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
            let string = || scalar(raw).and_then(|v| v.as_str().map(str::to_string));
            match key.as_str() {
                "m" => r.method = string().unwrap_or_default(),
                "i" => r.ids[0] = string(),
                "j" => r.ids[1] = string(),
                "t" => {
                    if let Some(Value::Number(n)) = scalar(raw) {
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
                Field::Json(raw) => match scalar(raw) {
                    Some(Value::Number(n)) => Some(n.approx_f64()),
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

/// The `timestamp` field: a Date (recorded as its ISO string), epoch milliseconds, or an
/// RFC 3339 string; `None` when absent.
pub fn timestamp(field: &str, f: Field<'_>) -> Result<Option<String>, Error> {
    if f.is_nothing() {
        return Ok(None);
    }
    let exp = "expected a Date, epoch milliseconds, or an RFC 3339 string";
    let ms = match f {
        Field::Json(raw) => match scalar(raw) {
            Some(Value::String(s)) => {
                return match parse_rfc3339(&s) {
                    Some(_) => Ok(Some(s)),
                    None => Err(Error::argument(field, exp)),
                }
            }
            Some(Value::Number(n)) => n.approx_f64(),
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
    /// `arriving`: the call is the first of its page load, whose arrival may start a visit (see
    /// [`crate::core::visit`]). `now` stands in for a call without its time.
    pub(super) fn events_of(
        &mut self,
        rec: &Record<'_>,
        identified: &mut Option<String>,
        arriving: bool,
        now: f64,
    ) -> Result<Vec<Held>, Error> {
        let (call, spec, required, example): (&str, Spec, bool, &str) = match rec.method.as_str() {
            "track" => ("track", TRACK, true, "{ eventType }"),
            "identify" => ("identify", IDENTIFY, true, "{ userId }"),
            "page" => ("page", PAGE, false, "{ name }"),
            "pageView" => ("trackPageView", PAGE_VIEW, false, "{ properties }"),
            _ => return Err(Error::argument("(call)", "unknown call")),
        };
        let mut prefix = String::from(call);
        prefix.push('.');
        let f = match arg_object(&rec.arg, call, required, example)? {
            Some(obj) => read_fields(&obj, &prefix, spec)?,
            None => vec![None; spec.len()],
        };
        // Every spec starts with the event's own field (name, user or properties), then
        // properties or traits, then the timestamp (none for trackPageView), then the ids.
        let [own, data, ts, uid, anon] = match f.as_slice() {
            [a, b, c, d, e] => [a.clone(), b.clone(), c.clone(), d.clone(), e.clone()],
            [a, b, c, d] => [a.clone(), b.clone(), c.clone(), None, d.clone()],
            [a, b, c] => [None, a.clone(), None, b.clone(), c.clone()],
            _ => return Err(Error::argument(call, "unreadable")),
        };
        let page = rec.page.and_then(members);
        if call == "trackPageView" && page.is_none() {
            return Ok(Vec::new()); // Node, or server-side rendering: nothing to view.
        }
        let (uid, kind, name) = match call {
            "track" => (uid, EventKind::Track, own.clone().unwrap_or_default()),
            "identify" => (own.clone(), EventKind::Identify, "identify".into()),
            _ => (uid, EventKind::Page, "page_viewed".into()),
        };
        let who = self.identity(uid, anon, rec.user.as_ref(), identified, call)?;
        if call == "identify" {
            identified.clone_from(&own);
        }
        let time = rec.time.unwrap_or(now);
        let timestamp = ts.unwrap_or_else(|| format_iso8601(time));
        // The page's fields are read only when used: by trackPageView, or when the visit looks
        // at the page (an arrival, or a visit starting). Most events need neither.
        let fields = if call == "trackPageView"
            || (self.browser && self.visits.needs_page(time, arriving))
        {
            page_fields(page.as_deref())
        } else {
            Vec::new()
        };
        let part = |k: &str| part(&fields, k);
        // In a browser: the page, and the visit with its landing facts.
        let context = rec.page.map(|p| {
            let mut c = String::with_capacity(p.len() + 64);
            c.push_str("{\"page\":");
            c.push_str(p);
            if self.browser {
                let snapshot = PageSnapshot {
                    url: part("url"),
                    referrer: part("referrer"),
                };
                let v =
                    self.visits
                        .at(time, &snapshot, arriving, &self.ai_providers, &mut self.rng);
                c.push_str(",\"session_id\":");
                write_str(&mut c, &v.id);
                if !v.attribution.is_empty() {
                    c.push_str(",\"attribution\":");
                    c.push_str(&v.attribution);
                }
            }
            c.push('}');
            c
        });
        let mut events = Vec::with_capacity(2);
        let mut props = data;
        let mut referral_props = None;
        match (call, &page) {
            // The page name travels as properties.name.
            ("page", _) => {
                if let Some(name) = own {
                    let mut p = String::from("{\"name\":");
                    write_str(&mut p, &name);
                    merge_into(&mut p, props.as_deref());
                    props = Some(p);
                }
            }
            ("trackPageView", Some(_)) => {
                let mut p = String::from("{");
                for k in ["url", "path", "search", "title", "referrer"] {
                    member(&mut p, k, part(k));
                }
                for (k, v) in utm_params(part("url")) {
                    member(&mut p, k, &v);
                }
                // The app's properties come last, so they win over ours on a shared key.
                merge_into(&mut p, props.as_deref());
                props = Some(p);
                // Once per visit that started from an AI assistant, across tabs and reloads.
                if self.browser {
                    referral_props = self.visits.take_referral();
                }
            }
            _ => {}
        }
        let (properties, traits) = if kind == EventKind::Identify {
            (None, props)
        } else {
            (props, None)
        };
        let mut ids = rec.ids.iter();
        let mut next_id = |c: &mut Client| match ids.next().and_then(Option::as_ref) {
            Some(i) if check_id("message_id", i).is_ok() => i.clone(),
            _ => c.new_uuid(),
        };
        events.push(Held {
            message_id: next_id(self),
            event: EventInput {
                kind,
                event_type: name,
                identity: who.0.clone(),
                timestamp: timestamp.clone(),
                properties,
                traits,
                context: context.clone(),
            },
            signature: who.1.clone(),
        });
        if let Some(p) = referral_props {
            events.push(Held {
                message_id: next_id(self),
                event: EventInput {
                    kind: EventKind::Track,
                    event_type: "ai_referral_session".into(),
                    identity: who.0,
                    timestamp,
                    properties: Some(p),
                    traits: None,
                    context,
                },
                signature: who.1,
            });
        }
        Ok(events)
    }
}

/// The string members of the loader's record of the page (`{url, path, search, title,
/// referrer}`).
pub(super) fn page_fields(page: Option<&[(String, &str)]>) -> Vec<(String, String)> {
    page.iter()
        .copied()
        .flatten()
        .filter_map(|(k, v)| match scalar(v) {
            Some(Value::String(s)) => Some((k.clone(), s)),
            _ => None,
        })
        .collect()
}

/// The member `k` of [`page_fields`], `""` when absent.
pub(super) fn part<'a>(fields: &'a [(String, String)], k: &str) -> &'a str {
    fields
        .iter()
        .find(|(key, _)| key == k)
        .map_or("", |(_, v)| v.as_str())
}

/// Appends `"key":"value"` to an object being written (with a comma after its first member).
fn member(out: &mut String, key: &str, value: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    write_str(out, key);
    out.push(':');
    write_str(out, value);
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
