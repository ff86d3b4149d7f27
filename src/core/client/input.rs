//! Reading what the loader recorded: every argument arrives as the JSON text of a `ser` record,
//! and every check of its shape, with the message naming the field, is made here.
//!
//! The loader (`js/loader/capture.js`) turns a JS value `v` into:
//! - `{"a":<JSON of v>}` when `JSON.stringify` can carry it whole;
//! - `{}` for `undefined`;
//! - `{"a":{…fields it could carry…},"x":{"field":"<code>",…}}` for an object some of whose
//!   fields it could not carry, and `{"x":{"":"<code>"}}` when that is the value itself;
//! - `{"e":"<message>"}` when calling a function for it (getUser, beforeSend) threw.
//!
//! The codes say what JSON could not carry, never what the SDK thinks of it: `function`,
//! `symbol`, `bigint`, `promise`, `array`, `object`, `number` (the value's type: `array` and
//! `object` where the loader does not serialize a value, such as getUser()'s fields, or for a
//! non-null value whose JSON is `null`, such as NaN or an invalid Date), `cycle`, `deep` (nesting too deep for the
//! engine's serializer), `read` (reading it threw), `keys` (its keys could not be listed),
//! `nested:<type>:<key>` (a function, symbol or bigint inside it, at that key) and
//! `json:<message>` (anything else `JSON.stringify` threw, such as a throwing `toJSON`).

#[allow(unused_imports)]
use crate::prelude::*;

use crate::core::error::Error;
use crate::core::json::{members, Value};

/// A value as the loader recorded it.
pub struct Arg<'a> {
    /// The JSON text; `None` for `undefined` or when the value itself could not be carried.
    pub a: Option<&'a str>,
    /// Fields JSON could not carry, with their codes; `""` is the value itself.
    pub x: Vec<(String, String)>,
    /// What calling the app's function threw.
    pub e: Option<String>,
}

impl<'a> Arg<'a> {
    /// Reads a `ser` record; anything malformed reads as `undefined`.
    pub fn of(text: Option<&'a str>) -> Arg<'a> {
        let mut arg = Arg {
            a: None,
            x: Vec::new(),
            e: None,
        };
        let Some(m) = text.and_then(members) else {
            return arg;
        };
        for (key, raw) in m {
            match key.as_str() {
                "a" => arg.a = Some(raw),
                "x" => {
                    for (k, v) in members(raw).unwrap_or_default() {
                        if let Some(Value::String(code)) = scalar(v) {
                            arg.x.push((k, code));
                        }
                    }
                }
                "e" => arg.e = scalar(raw).and_then(|v| v.as_str().map(str::to_string)),
                _ => {}
            }
        }
        arg
    }

    /// The value itself, as a field.
    pub fn whole(&self) -> Field<'_> {
        match (self.a, self.problem("")) {
            (_, Some(code)) => Field::Problem(code),
            (Some(raw), None) => Field::Json(raw),
            (None, None) => Field::Absent,
        }
    }

    fn problem(&self, key: &str) -> Option<&str> {
        self.x
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| c.as_str())
    }

    /// The value as an object whose fields can be read, when it is one (JSON object text, or
    /// only fields JSON could not carry).
    pub fn object(&self) -> Option<Obj<'_>> {
        if self.problem("").is_some() {
            return None;
        }
        let members = match self.a {
            Some(raw) => members(raw)?,
            None if !self.x.is_empty() => Vec::new(),
            None => return None,
        };
        Some(Obj {
            members,
            x: &self.x,
        })
    }
}

/// A field of a recorded value.
#[derive(Clone, Copy)]
pub enum Field<'a> {
    /// `undefined`, or not there.
    Absent,
    /// Its JSON text.
    Json(&'a str),
    /// JSON could not carry it: the loader's code.
    Problem(&'a str),
}

impl<'a> Field<'a> {
    /// Absent or `null`.
    pub fn is_nothing(&self) -> bool {
        match self {
            Field::Absent => true,
            Field::Json(raw) => raw.trim() == "null",
            Field::Problem(_) => false,
        }
    }
}

/// An object's fields.
pub struct Obj<'a> {
    members: Vec<(String, &'a str)>,
    x: &'a [(String, String)],
}

impl<'a> Obj<'a> {
    pub fn field(&self, key: &str) -> Field<'a> {
        if let Some((_, raw)) = self.members.iter().find(|(k, _)| k == key) {
            return Field::Json(raw);
        }
        match self.x.iter().find(|(k, _)| k == key) {
            Some((_, code)) => Field::Problem(code),
            None => Field::Absent,
        }
    }

    /// The first key that is none of `spec`'s.
    pub fn unknown_key(&self, spec: Spec) -> Option<&str> {
        let known = |k: &str| k.is_empty() || spec.iter().any(|(name, _)| *name == k);
        if let Some((k, _)) = self.members.iter().find(|(k, _)| !known(k)) {
            return Some(k);
        }
        self.x
            .iter()
            .find(|(k, _)| !known(k))
            .map(|(k, _)| k.as_str())
    }
}

/// Whether a loader code names the value's type (rather than why it could not be carried).
pub fn is_type(code: &str) -> bool {
    matches!(
        code,
        "function" | "symbol" | "bigint" | "promise" | "array" | "object" | "number"
    )
}

/// How a value looks in a message: "a string", "an array", "undefined", ...
pub fn describe(f: Field<'_>) -> &'static str {
    match f {
        Field::Absent => "undefined",
        Field::Json(raw) => match raw.trim_start().as_bytes().first() {
            Some(b'n') => "null",
            Some(b't' | b'f') => "a boolean",
            Some(b'"') => "a string",
            Some(b'[') => "an array",
            Some(b'{') => "an object",
            _ => "a number",
        },
        Field::Problem(code) => match code {
            "function" => "a function",
            "symbol" => "a symbol",
            "bigint" => "a bigint",
            "promise" => "a Promise",
            "array" => "an array",
            "number" => "a number",
            _ => "an object",
        },
    }
}

/// `expected <what>, got <a description of f>`.
pub fn expected(what: &str, f: Field<'_>) -> String {
    let mut s = String::from("expected ");
    s.push_str(what);
    s.push_str(", got ");
    s.push_str(describe(f));
    s
}

/// The message for a value JSON could not carry.
pub fn problem_message(code: &str) -> String {
    let mut m = String::new();
    if let Some(rest) = code.strip_prefix("nested:") {
        let (kind, key) = rest.split_once(':').unwrap_or((rest, ""));
        m.push_str("the value at key ");
        crate::core::json::write_str(&mut m, key);
        m.push_str(" is a ");
        m.push_str(kind);
        m.push_str(", which JSON cannot carry");
    } else if let Some(detail) = code.strip_prefix("json:") {
        m.push_str("could not be serialized: ");
        m.push_str(detail);
    } else {
        m.push_str(match code {
            "cycle" => "contains a cycle, which JSON cannot carry",
            "deep" => "too deeply nested to serialize",
            "read" => "reading it threw an exception",
            "keys" => "its keys could not be read",
            c if is_type(c) => "JSON cannot carry it",
            _ => "could not be serialized",
        });
    }
    m
}

pub use crate::core::json::scalar;

/// Makes the error for a field: `Error::config` or `Error::argument`.
pub type MakeError = fn(&str, &str) -> Error;

/// A string field: `None` when absent or `null`.
pub fn opt_string(field: &str, f: Field<'_>, err: MakeError) -> Result<Option<String>, Error> {
    if f.is_nothing() {
        return Ok(None);
    }
    match f {
        Field::Json(raw) => {
            if let Some(Value::String(s)) = scalar(raw) {
                return Ok(Some(s));
            }
        }
        Field::Problem(code) if !is_type(code) => return Err(err(field, &problem_message(code))),
        _ => {}
    }
    Err(err(field, &expected("a string", f)))
}

/// A field that must hold a JSON object (properties, traits, context): its text, or `None`
/// when absent or `null`.
pub fn json_object(field: &str, f: Field<'_>) -> Result<Option<String>, Error> {
    match f {
        _ if f.is_nothing() => Ok(None),
        Field::Json(raw) if raw.trim_start().starts_with('{') => Ok(Some(raw.to_string())),
        Field::Json(_) => Err(Error::argument(
            field,
            &expected(
                "an object whose JSON form is an object (not a Date, a boxed primitive, or a toJSON() that returns something else)",
                f,
            ),
        )),
        Field::Problem(code) if is_type(code) => {
            Err(Error::argument(field, &expected("an object", f)))
        }
        Field::Problem(code) => Err(Error::argument(field, &problem_message(code))),
        Field::Absent => Ok(None),
    }
}

/// An object argument: the call's fields, or an error naming the call. `None` when the
/// argument is absent and may be.
pub fn arg_object<'a>(
    arg: &'a Arg<'a>,
    call: &str,
    required: bool,
    example: &str,
) -> Result<Option<Obj<'a>>, Error> {
    let whole = arg.whole();
    if whole.is_nothing() {
        if required {
            let mut exp = String::from("expected an object such as ");
            exp.push_str(example);
            return Err(Error::argument(call, &exp));
        }
        return Ok(None);
    }
    if let Field::Problem(code) = whole {
        if matches!(code, "keys" | "read") {
            return Err(Error::argument(call, &problem_message(code)));
        }
    }
    match (whole, arg.object()) {
        (Field::Json(raw), Some(obj)) if raw.trim_start().starts_with('{') => Ok(Some(obj)),
        (Field::Absent, Some(obj)) => Ok(Some(obj)),
        _ => Err(Error::argument(call, &expected("an object", whole))),
    }
}

/// What a field must hold, and whether it must be there (`| REQUIRED`).
pub type Spec = &'static [(&'static str, u8)];
/// An event name: a non-empty string of at most 200 characters.
pub const NAME: u8 = 1;
/// A user or anonymous id: a non-empty string of at most 256 characters.
pub const ID: u8 = 2;
/// Any string.
pub const TEXT: u8 = 3;
/// A JSON object (properties, traits, context).
pub const OBJECT: u8 = 4;
/// A time: a Date (its ISO string), epoch milliseconds or an RFC 3339 string; read as RFC
/// 3339 text.
pub const TIME: u8 = 5;
pub const REQUIRED: u8 = 16;

/// Reads the fields of `spec` from `obj` (after checking that it has no others), in the order
/// of `spec`: each field's checked value as text (strings decoded, objects as JSON, times as
/// RFC 3339), `None` when absent. Errors name `prefix` + the field.
pub fn read_fields(obj: &Obj<'_>, prefix: &str, spec: Spec) -> Result<Vec<Option<String>>, Error> {
    check_keys(obj, spec, prefix, Error::argument)?;
    let mut out = Vec::with_capacity(spec.len());
    for &(key, kind) in spec {
        let mut field = String::from(prefix);
        field.push_str(key);
        let f = obj.field(key);
        let value = match kind & !REQUIRED {
            OBJECT => json_object(&field, f)?,
            TIME => super::calls::timestamp(&field, f)?,
            k => {
                let v = opt_string(&field, f, Error::argument)?;
                if let Some(v) = &v {
                    if k == NAME {
                        crate::core::event::check_event_type(&field, v)?;
                    } else if k == ID {
                        crate::core::event::check_id(&field, v)?;
                    }
                }
                v
            }
        };
        if value.is_none() && kind & REQUIRED != 0 {
            return Err(Error::argument(&field, "is required: a non-empty string"));
        }
        out.push(value);
    }
    Ok(out)
}

/// Checks that every key is one of `spec`'s: the error names `prefix` + the key.
pub fn check_keys(obj: &Obj<'_>, spec: Spec, prefix: &str, err: MakeError) -> Result<(), Error> {
    if let Some(k) = obj.unknown_key(spec) {
        let mut field = String::from(prefix);
        field.push_str(k);
        let mut exp = String::from("unknown field; expected one of ");
        for (i, (name, _)) in spec.iter().enumerate() {
            if i > 0 {
                exp.push_str(", ");
            }
            exp.push_str(name);
        }
        return Err(err(&field, &exp));
    }
    Ok(())
}
