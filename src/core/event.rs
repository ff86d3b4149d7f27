//! The event model and its wire encoding (docs/protocol.md, "Ingestion").
//!
//! An event is serialized once, when it is recorded; the queue holds the JSON text, so batching
//! is string concatenation and byte limits are exact.

use crate::core::error::Error;
use crate::core::json::write_str;
#[allow(unused_imports)]
use crate::prelude::*;

/// What kind of call recorded the event: the wire's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Track,
    Identify,
    Page,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Track => "track",
            EventKind::Identify => "identify",
            EventKind::Page => "page",
        }
    }
}

/// Who an event is about, as recorded. Events are delivered under this identity, never another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A known user; the anonymous id of the same visitor travels along when known.
    User {
        user_id: String,
        anonymous_id: Option<String>,
    },
    /// A visitor not (yet) known by a user id.
    Anonymous { anonymous_id: String },
}

impl Identity {
    /// The id the server keys a session on: the user id, else the anonymous id.
    pub fn uid(&self) -> &str {
        match self {
            Identity::User { user_id, .. } => user_id,
            Identity::Anonymous { anonymous_id } => anonymous_id,
        }
    }
}

/// Longest `event_type` the server accepts.
pub const MAX_EVENT_TYPE_CHARS: usize = 200;
/// Longest `user_id` or `anonymous_id` the server accepts.
pub const MAX_ID_CHARS: usize = 256;

/// Characters (Unicode scalar values) in `s`: its bytes that do not continue a UTF-8 sequence.
fn chars(s: &str) -> usize {
    s.bytes().filter(|b| b & 0xC0 != 0x80).count()
}

/// Checks an event name: 1 to 200 characters.
pub fn check_event_type(field: &str, value: &str) -> Result<(), Error> {
    let n = chars(value);
    if n == 0 || n > MAX_EVENT_TYPE_CHARS || value.trim().is_empty() {
        return Err(Error::argument(
            field,
            "expected a non-empty string of at most 200 characters",
        ));
    }
    Ok(())
}

/// Checks a user or anonymous id: 1 to 256 characters, not blank.
pub fn check_id(field: &str, value: &str) -> Result<(), Error> {
    let n = chars(value);
    if n == 0 || n > MAX_ID_CHARS || value.trim().is_empty() {
        return Err(Error::argument(
            field,
            "expected a non-empty string of at most 256 characters",
        ));
    }
    Ok(())
}

/// A recorded event before serialization. JSON fields hold JSON object text produced by a
/// serializer that escapes as JSON requires (the edge uses `JSON.stringify`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventInput {
    pub kind: EventKind,
    pub event_type: String,
    pub identity: Identity,
    /// RFC 3339 time the event happened.
    pub timestamp: String,
    pub properties: Option<String>,
    pub traits: Option<String>,
    pub context: Option<String>,
}

/// Serializes an event to its compact wire JSON. Absent optional fields are left out.
pub fn encode(message_id: &str, e: &EventInput) -> String {
    let mut out = body(message_id, e);
    out.push_str(&identity_members(&e.identity));
    if let Some(c) = &e.context {
        out.push_str(&context_member(c));
    }
    out.push('}');
    out
}

/// The event's wire JSON without its identity, its context and the closing brace:
/// `{"message_id":…,"type":…,"event_type":…,"timestamp":…[,"properties":…][,"traits":…]`.
///
/// The queue keeps this part per event and shares the rest ([`identity_members`],
/// [`context_member`]) among the events that have the same: a burst of ten thousand events on
/// one page holds its page context and its identity once, not ten thousand times.
pub fn body(message_id: &str, e: &EventInput) -> String {
    let extra =
        e.properties.as_ref().map_or(0, String::len) + e.traits.as_ref().map_or(0, String::len);
    let mut out = String::with_capacity(96 + e.event_type.len() + extra);
    out.push_str("{\"message_id\":");
    write_str(&mut out, message_id);
    out.push_str(",\"type\":\"");
    out.push_str(e.kind.as_str());
    out.push_str("\",\"event_type\":");
    write_str(&mut out, &e.event_type);
    out.push_str(",\"timestamp\":");
    write_str(&mut out, &e.timestamp);
    for (name, value) in [("properties", &e.properties), ("traits", &e.traits)] {
        if let Some(v) = value {
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            out.push_str(v);
        }
    }
    out
}

/// `,"user_id":…,"anonymous_id":…`: the identity's members of the wire JSON.
pub fn identity_members(identity: &Identity) -> String {
    let mut out = String::new();
    let (user_id, anonymous_id) = match identity {
        Identity::User {
            user_id,
            anonymous_id,
        } => (Some(user_id), anonymous_id.as_ref()),
        Identity::Anonymous { anonymous_id } => (None, Some(anonymous_id)),
    };
    if let Some(u) = user_id {
        out.push_str(",\"user_id\":");
        write_str(&mut out, u);
    }
    if let Some(a) = anonymous_id {
        out.push_str(",\"anonymous_id\":");
        write_str(&mut out, a);
    }
    out
}

/// `,"context":…`: the context member of the wire JSON, from the context's JSON object text.
pub fn context_member(context: &str) -> String {
    let mut out = String::with_capacity(11 + context.len());
    out.push_str(",\"context\":");
    out.push_str(context);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::{parse, Value};

    fn input(kind: EventKind) -> EventInput {
        EventInput {
            kind,
            event_type: "checkout \"started\"".into(),
            identity: Identity::User {
                user_id: "alice".into(),
                anonymous_id: Some("anon-1".into()),
            },
            timestamp: "2026-11-24T03:01:16.123Z".into(),
            properties: Some(r#"{"cart":{"value":42.5,"items":["a","b"]}}"#.into()),
            traits: None,
            context: Some(r#"{"page":{"path":"/cart"}}"#.into()),
        }
    }

    #[test]
    fn every_kind_serializes_to_the_wire_shape() {
        for kind in [EventKind::Track, EventKind::Identify, EventKind::Page] {
            let json = encode("m-1", &input(kind));
            let v = parse(&json).expect("valid JSON");
            assert_eq!(v.get("message_id").and_then(Value::as_str), Some("m-1"));
            assert_eq!(v.get("type").and_then(Value::as_str), Some(kind.as_str()));
            assert_eq!(
                v.get("event_type").and_then(Value::as_str),
                Some("checkout \"started\"")
            );
            assert_eq!(v.get("user_id").and_then(Value::as_str), Some("alice"));
            assert_eq!(
                v.get("anonymous_id").and_then(Value::as_str),
                Some("anon-1")
            );
            assert_eq!(
                v.get("timestamp").and_then(Value::as_str),
                Some("2026-11-24T03:01:16.123Z")
            );
            let cart = v.get("properties").and_then(|p| p.get("cart")).unwrap();
            assert_eq!(cart.get("value").and_then(Value::as_f64), Some(42.5));
            assert!(v.get("traits").is_none());
            assert!(v.get("context").and_then(|c| c.get("page")).is_some());
        }
    }

    #[test]
    fn anonymous_events_carry_only_the_anonymous_id() {
        let mut e = input(EventKind::Identify);
        e.identity = Identity::Anonymous {
            anonymous_id: "a\u{1}b".into(),
        };
        e.properties = None;
        e.context = None;
        e.traits = Some(r#"{"plan":"pro"}"#.into());
        let json = encode("m", &e);
        assert_eq!(
            json,
            r#"{"message_id":"m","type":"identify","event_type":"checkout \"started\"","timestamp":"2026-11-24T03:01:16.123Z","traits":{"plan":"pro"},"anonymous_id":"a\u0001b"}"#
        );
        assert_eq!(e.identity.uid(), "a\u{1}b");
    }

    #[test]
    fn names_and_ids_are_checked() {
        assert!(check_event_type("track.eventType", "ok").is_ok());
        assert!(check_event_type("track.eventType", &"é".repeat(200)).is_ok());
        for bad in ["", "   ", &"x".repeat(201)] {
            let e = check_event_type("track.eventType", bad).unwrap_err();
            assert_eq!(e.field(), Some("track.eventType"));
        }
        assert!(check_id("track.userId", &"x".repeat(256)).is_ok());
        assert!(check_id("track.userId", &"x".repeat(257)).is_err());
        assert!(check_id("track.userId", "").is_err());
    }
}
