//! The one error type of the SDK. JS sees each variant as an `Error` whose `code` is
//! [`Error::code`] (stable) and whose `message` is [`Error::message`] (may change).

#[allow(unused_imports)]
use crate::prelude::*;
use core::fmt;

/// Everything that can go wrong in a call from the app. Delivery problems are not errors of a
/// call: they are counted in the client's stats and logged once.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A config field is unknown, missing, of the wrong type or out of range.
    InvalidConfig { field: String, expected: String },
    /// An argument of a call (`track`, `identify`, ...) is missing, of the wrong type or out of
    /// range; `field` names it as the app wrote it (`track.eventType`).
    InvalidArgument { field: String, expected: String },
    /// The API key's prefix is none of `sk_`, `pk_`, `mk_`.
    InvalidApiKey,
    /// An `mk_` key: those are for MCP connectors, not for the SDK.
    McpKeyNotAllowed,
    /// The event, serialized, exceeds `maxEventBytes`.
    EventTooLarge { bytes: usize, max: usize },
    /// A call after `shutdown()`.
    ShutDown,
}

impl Error {
    /// The stable code JS code can match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidConfig { .. } => "invalid_config",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::InvalidApiKey => "invalid_api_key",
            Error::McpKeyNotAllowed => "mcp_key_not_allowed",
            Error::EventTooLarge { .. } => "event_too_large",
            Error::ShutDown => "client_shut_down",
        }
    }

    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidConfig { field, .. } | Error::InvalidArgument { field, .. } => {
                Some(field)
            }
            Error::InvalidApiKey | Error::McpKeyNotAllowed => Some("apiKey"),
            _ => None,
        }
    }

    pub fn config(field: &str, expected: &str) -> Error {
        Error::InvalidConfig {
            field: field.to_string(),
            expected: expected.to_string(),
        }
    }

    pub fn argument(field: &str, expected: &str) -> Error {
        Error::InvalidArgument {
            field: field.to_string(),
            expected: expected.to_string(),
        }
    }

    /// A sentence for a person, naming the field and what was expected.
    pub fn message(&self) -> String {
        let mut m = String::from("SegOps: ");
        match self {
            Error::InvalidConfig { field, expected } => {
                m.push_str("config.");
                m.push_str(field);
                m.push_str(": ");
                m.push_str(expected);
            }
            Error::InvalidArgument { field, expected } => {
                m.push_str(field);
                m.push_str(": ");
                m.push_str(expected);
            }
            Error::InvalidApiKey => m.push_str(
                "config.apiKey: expected a key starting with sk_ (secret, servers) or pk_ (public, browsers)",
            ),
            Error::McpKeyNotAllowed => m.push_str(
                "config.apiKey: mk_ keys are for MCP connectors and cannot send events; use a pk_ key in browsers or an sk_ key on servers",
            ),
            Error::EventTooLarge { bytes, max } => {
                m.push_str("event is ");
                crate::core::num::push_int(&mut m, *bytes as i64);
                m.push_str(" bytes serialized, over maxEventBytes (");
                crate::core::num::push_int(&mut m, *max as i64);
                m.push_str("); it was not queued");
            }
            Error::ShutDown => m.push_str("the client was shut down; create a new SegOpsClient"),
        }
        m
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_codes_are_stable() {
        let e = Error::config("flushAt", "expected an integer from 1 to 1000");
        assert_eq!(e.code(), "invalid_config");
        assert_eq!(e.field(), Some("flushAt"));
        assert_eq!(
            e.message(),
            "SegOps: config.flushAt: expected an integer from 1 to 1000"
        );
        let e = Error::argument("track.eventType", "expected a non-empty string");
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.message().contains("track.eventType"));
        assert_eq!(Error::McpKeyNotAllowed.code(), "mcp_key_not_allowed");
        assert!(Error::McpKeyNotAllowed.message().contains("MCP"));
        assert_eq!(Error::ShutDown.code(), "client_shut_down");
        let e = Error::EventTooLarge {
            bytes: 40000,
            max: 32768,
        };
        assert!(e.to_string().contains("40000"));
    }
}
