//! `beforeSend(event) => event | null`: the event as the app sees it (JSON that the platform
//! layer parses into a fresh object), and what the app returned, checked like `track()` input.

#[allow(unused_imports)]
use crate::prelude::*;

use super::input::{
    arg_object, problem_message, read_fields, Arg, Field, Spec, ID, NAME, OBJECT, REQUIRED, TEXT,
    TIME,
};
use crate::core::error::Error;
use crate::core::event::{EventInput, Identity};
use crate::core::json::write_str;

/// The end of every `beforeSend` problem's message.
pub const HOOK_KEPT: &str = "; the event was kept unchanged. Later beforeSend problems are only counted, in stats().beforeSendErrors.";

/// Fields of the event object `beforeSend` gets and returns, checked like `track()` input.
const HOOK: Spec = &[
    ("type", TEXT),
    ("eventType", NAME | REQUIRED),
    ("userId", ID),
    ("anonymousId", ID),
    ("timestamp", TIME),
    ("properties", OBJECT),
    ("traits", OBJECT),
    ("context", OBJECT),
];

/// What `beforeSend` made of an event.
pub enum Outcome {
    Edited(EventInput),
    /// It returned `null`.
    Drop,
    /// It threw or returned something unusable: the event is kept as it was. The message.
    Problem(String),
}

/// Appends the event as `beforeSend` sees it: `{type, eventType, userId?, anonymousId?,
/// timestamp, properties?, traits?, context?}`.
pub fn write_event(out: &mut String, e: &EventInput) {
    out.push_str("{\"type\":\"");
    out.push_str(e.kind.as_str());
    out.push_str("\",\"eventType\":");
    write_str(out, &e.event_type);
    let (user_id, anonymous_id) = match &e.identity {
        Identity::User {
            user_id,
            anonymous_id,
        } => (Some(user_id), anonymous_id.as_ref()),
        Identity::Anonymous { anonymous_id } => (None, Some(anonymous_id)),
    };
    if let Some(u) = user_id {
        out.push_str(",\"userId\":");
        write_str(out, u);
    }
    if let Some(a) = anonymous_id {
        out.push_str(",\"anonymousId\":");
        write_str(out, a);
    }
    out.push_str(",\"timestamp\":");
    write_str(out, &e.timestamp);
    for (k, v) in [
        ("properties", &e.properties),
        ("traits", &e.traits),
        ("context", &e.context),
    ] {
        if let Some(text) = v {
            out.push_str(",\"");
            out.push_str(k);
            out.push_str("\":");
            out.push_str(text);
        }
    }
    out.push('}');
}

/// Reads what `beforeSend` returned for `original` (the loader's record of it).
pub fn outcome(result: &Arg<'_>, original: &EventInput) -> Outcome {
    if let Some(thrown) = &result.e {
        let mut m = String::from("SegOps: beforeSend threw (");
        m.push_str(thrown);
        m.push(')');
        m.push_str(HOOK_KEPT);
        return Outcome::Problem(m);
    }
    if matches!(result.whole(), Field::Json(raw) if raw.trim() == "null") {
        return Outcome::Drop;
    }
    match read(result, original) {
        Ok(edited) => Outcome::Edited(edited),
        Err(e) => {
            let mut m = e.message();
            m.push_str(HOOK_KEPT);
            Outcome::Problem(m)
        }
    }
}

fn read(v: &Arg<'_>, original: &EventInput) -> Result<EventInput, Error> {
    const CALL: &str = "beforeSend()";
    const PREFIX: &str = "beforeSend().";
    match v.whole() {
        Field::Absent => {
            return Err(Error::argument(
                CALL,
                "returned undefined; return the event (edited or not), or null to drop it",
            ))
        }
        Field::Problem("promise") => {
            return Err(Error::argument(
                CALL,
                "returned a Promise; beforeSend must return the event synchronously",
            ))
        }
        Field::Problem(code) if !super::input::is_type(code) => {
            return Err(Error::argument(CALL, &problem_message(code)))
        }
        _ => {}
    }
    let obj = arg_object(v, CALL, true, "the event")?
        .ok_or_else(|| Error::argument(CALL, "expected the event or null"))?;
    let f = read_fields(&obj, PREFIX, HOOK)?;
    let [kind, event_type, user_id, anonymous_id, timestamp, properties, traits, context] =
        <[Option<String>; 8]>::try_from(f).map_err(|_| Error::argument(CALL, "unreadable"))?;
    if kind.is_some_and(|k| k != original.kind.as_str()) {
        return Err(Error::argument(
            "beforeSend().type",
            "cannot be changed (a track stays a track)",
        ));
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
    Ok(EventInput {
        kind: original.kind,
        event_type: event_type.unwrap_or_default(),
        identity,
        timestamp: timestamp.unwrap_or_else(|| original.timestamp.clone()),
        properties,
        traits,
        context,
    })
}
