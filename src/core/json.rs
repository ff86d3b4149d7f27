//! A tiny JSON value, a strict RFC 8259 parser and a compact writer.
//!
//! No dependencies, no panics on any input, bounded recursion (parsing stops at [`MAX_DEPTH`]
//! levels of nesting; writing is iterative).

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::borrow::Cow;
use core::fmt;

/// A JSON value. Objects keep their members in document order, duplicates included.
#[derive(Clone, PartialEq)]
#[cfg_attr(test, derive(Debug))]
pub enum Value {
    Null,
    Bool(bool),
    /// A number, kept as its JSON text (see [`Num`]).
    Number(Num),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// A JSON number kept as the text it was written with. The SDK never computes with the
/// numbers it passes along (event properties); it reads a few small integers from the server's
/// answers ([`Num::as_u64`]). Keeping the text means no float parsing or printing in the
/// `.wasm` (several kilobytes of code and tables), and numbers go out exactly as they came in.
#[derive(Clone, PartialEq)]
#[cfg_attr(test, derive(Debug))]
pub struct Num(String);

impl Num {
    /// The number's text: valid JSON number grammar when it came from [`parse`].
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The nearest f64 (Rust's correctly rounded parse). Not used by the SDK's wasm build.
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }

    /// The value without float parsing: the first 19 significant digits scaled by powers of
    /// ten. Exact for integers up to 2^53 written without exponent or fraction (what config
    /// fields and epoch milliseconds are), within a few ulps otherwise; what the SDK does with
    /// other numbers (range checks, `integer or not`) needs no more. Infinite past f64's range.
    pub fn approx_f64(&self) -> f64 {
        let Parts {
            negative,
            int,
            frac,
            exp,
        } = Parts::of(&self.0);
        let mut mantissa: u64 = 0;
        let mut scale = exp;
        let mut significant = 0;
        for (i, d) in int.bytes().chain(frac.bytes()).enumerate() {
            let in_frac = i >= int.len();
            if significant < 19 {
                if mantissa > 0 || d != b'0' {
                    significant += 1;
                }
                mantissa = mantissa * 10 + u64::from(d.wrapping_sub(b'0') % 10);
                if in_frac {
                    scale -= 1;
                }
            } else if !in_frac {
                scale += 1;
            }
        }
        let mut v = mantissa as f64;
        // Dividing by one power of ten keeps short fractions such as 0.5 or 19.9 exact.
        let mut pow = 1.0f64;
        let mut n = scale.unsigned_abs().min(400);
        while n > 0 {
            pow *= 10.0;
            n -= 1;
            if pow.is_infinite() {
                break;
            }
        }
        if scale >= 0 {
            v *= pow;
        } else {
            v /= pow;
        }
        // Below f64's range but not zero: the smallest positive value, so that it stays a
        // fraction (config checks tell "a fractional number" from 0).
        if v == 0.0 && mantissa != 0 {
            v = f64::from_bits(1);
        }
        if negative {
            -v
        } else {
            v
        }
    }

    /// `n` written like `JSON.stringify` writes it (non-finite as `null`). Not used by the
    /// SDK's wasm build.
    pub fn from_f64(n: f64) -> Num {
        let mut text = String::new();
        write_number(&mut text, n);
        Num(text)
    }

    /// The value when it is an integer from 0 to 2^64 - 1, exactly (`-0`, `7.0` and `1e2`
    /// count), computed on the digits without floating point.
    pub fn as_u64(&self) -> Option<u64> {
        self.integer().ok()
    }

    /// Like [`Num::as_u64`], but a larger positive integer gives `u64::MAX`.
    pub fn as_u64_saturating(&self) -> Option<u64> {
        match self.integer() {
            Ok(n) => Some(n),
            Err(true) => Some(u64::MAX),
            Err(false) => None,
        }
    }

    /// The integer value, or Err(true) for a positive integer over u64::MAX, Err(false) for
    /// anything else that is not an integer from 0 to u64::MAX.
    fn integer(&self) -> Result<u64, bool> {
        let Parts {
            negative,
            int,
            frac,
            exp,
        } = Parts::of(&self.0);
        // value = digits x 10^shift, digits without leading zeros.
        let mut digits: Vec<u8> = int
            .bytes()
            .chain(frac.bytes())
            .skip_while(|&d| d == b'0')
            .collect();
        let mut shift = exp - frac.len() as i64;
        while shift < 0 {
            match digits.last() {
                Some(b'0') => {
                    digits.pop();
                    shift += 1;
                }
                Some(_) => return Err(false), // a fraction remains
                None => break,                // zero
            }
        }
        if digits.is_empty() {
            return Ok(0);
        }
        if negative {
            return Err(false);
        }
        if digits.len() as i64 + shift.max(0) > 20 {
            return Err(true);
        }
        let mut n: u64 = 0;
        for d in digits
            .iter()
            .copied()
            .chain((0..shift.max(0)).map(|_| b'0'))
        {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d.wrapping_sub(b'0'))))
                .ok_or(true)?;
        }
        Ok(n)
    }

    /// Whether the number is too large for an f64 (serde_json and `JSON.parse` would give
    /// an error or Infinity), from its decimal exponent: values from 1.8e308 up. Numbers
    /// between f64::MAX and 1.8e308 that round to infinity are let through.
    fn overflows(text: &str) -> bool {
        let Parts { int, frac, exp, .. } = Parts::of(text);
        // The decimal magnitude is where the first significant digit sits.
        let significant: Vec<u8> = int
            .bytes()
            .chain(frac.bytes())
            .skip_while(|&d| d == b'0')
            .take(2)
            .collect();
        if significant.is_empty() {
            return false; // zero
        }
        let lead_int = int.trim_start_matches('0').len() as i64;
        let magnitude = if lead_int > 0 {
            lead_int - 1
        } else {
            -((frac.len() - frac.trim_start_matches('0').len()) as i64) - 1
        };
        match magnitude.saturating_add(exp) {
            308 => significant.as_slice() >= b"18".as_slice(),
            e10 => e10 > 308,
        }
    }
}

/// A number's text in pieces: `-` `int` `.` `frac` `e` `exp`.
struct Parts<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    /// The exponent, held within +/- 2^40: past that the value is 0, a fraction or far too
    /// large whatever the digits, and the arithmetic above cannot overflow.
    exp: i64,
}

impl<'a> Parts<'a> {
    /// Splits text in JSON number grammar (anything else gives meaningless parts, no panic).
    fn of(text: &'a str) -> Parts<'a> {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exp) = text.split_once(['e', 'E']).unwrap_or((text, ""));
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let exp = exp.trim_start_matches('+');
        let (exp_negative, exp_digits) = match exp.strip_prefix('-') {
            Some(e) => (true, e),
            None => (false, exp),
        };
        let mut e: i64 = 0;
        for d in exp_digits.bytes() {
            e = (e * 10 + i64::from(d.wrapping_sub(b'0'))).min(1 << 40);
        }
        Parts {
            negative,
            int,
            frac,
            exp: if exp_negative { -e } else { e },
        }
    }
}

impl Value {
    /// The value of the first member named `key`, when `self` is an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// See [`Num::as_f64`]: for tests and native tools, not for the wasm build.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// See [`Num::as_u64`].
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// A number value from an f64, written like `JSON.stringify` would.
    pub fn number(n: f64) -> Value {
        Value::Number(Num::from_f64(n))
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members of an object, in document order.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Arrays and objects nested deeper than this are a parse error.
pub const MAX_DEPTH: usize = 64;

/// Why and where (byte offset into the text) parsing failed.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct ParseError {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.reason)
    }
}

/// Parses one JSON value (RFC 8259, strict), with optional whitespace around it.
///
/// A lone surrogate escape (`\ud800` not followed by a low surrogate escape, or a lone
/// `\udc00`) decodes to U+FFFD. Numbers that overflow f64 are an error, so every parsed
/// number is finite.
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos < p.bytes.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(value)
}

/// The value of `raw` when it is a string, number, boolean or null, read without recursion;
/// `None` for objects and arrays (they are read with [`members`] and [`items`]; a type check
/// needs only their first byte, and they may be megabytes) and for anything malformed.
///
/// With [`members`], [`items`] and [`get`], this is all the SDK's published build reads JSON
/// with: the recursive [`parse`] is for tests and native tools.
pub fn scalar(raw: &str) -> Option<Value> {
    let mut p = Parser {
        text: raw,
        bytes: raw.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let v = match p.peek()? {
        b'"' => Value::String(p.string().ok()?),
        b't' => p.literal("true", Value::Bool(true)).ok()?,
        b'f' => p.literal("false", Value::Bool(false)).ok()?,
        b'n' => p.literal("null", Value::Null).ok()?,
        b'-' | b'0'..=b'9' => p.number().ok()?,
        _ => return None,
    };
    p.skip_ws();
    (p.pos == p.bytes.len()).then_some(v)
}

/// The raw value of member `key` of the JSON object `obj` (the first one of that name).
pub fn get<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    members(obj)?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The string member `key` of the JSON object `obj`.
pub fn get_str(obj: &str, key: &str) -> Option<String> {
    match scalar(get(obj, key)?)? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The member `key` of the JSON object `obj` when it is an integer from 0 to 2^64 - 1; see
/// [`Num::as_u64`].
pub fn get_u64(obj: &str, key: &str) -> Option<u64> {
    scalar(get(obj, key)?)?.as_u64()
}

/// The members of the JSON object `text`, each as its key and the raw text of its value, in
/// document order; `None` when `text` is not an object.
///
/// Values are delimited, not validated or copied: [`parse`] the small ones, and pass the large
/// ones on as the JSON text they are (event properties may nest deeper than [`MAX_DEPTH`]; the
/// caps of `crate::core::privacy` walk them without recursion).
pub fn members(text: &str) -> Option<Vec<(String, &str)>> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    if p.peek() != Some(b'{') {
        return None;
    }
    p.pos += 1;
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        match p.peek() {
            Some(b'}') if out.is_empty() => return Some(out),
            Some(b'"') => {}
            _ => return None,
        }
        let key = p.string().ok()?;
        p.skip_ws();
        if p.peek() != Some(b':') {
            return None;
        }
        p.pos += 1;
        p.skip_ws();
        let end = value_end(p.bytes, p.pos)?;
        out.push((key, text.get(p.pos..end)?));
        p.pos = end;
        p.skip_ws();
        match p.peek() {
            Some(b',') => p.pos += 1,
            Some(b'}') => return Some(out),
            _ => return None,
        }
    }
}

/// The items of the JSON array `text`, each as its raw text (see [`members`]); `None` when
/// `text` is not an array.
pub fn items(text: &str) -> Option<Vec<&str>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b',') {
            i += 1;
            continue;
        }
        let end = value_end(b, i)?;
        out.push(inner.get(i..end)?);
        i = end;
    }
    Some(out)
}

/// Index just past the value that starts at `i`, found without parsing it; `None` when there
/// is none there.
pub(crate) fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => Some(string_end(b, i)),
        b'{' | b'[' => Some((close_of(b, i + 1) + 1).min(b.len())),
        _ => {
            let end = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |n| i + n);
            (end > i).then_some(end)
        }
    }
}

/// Index just past the string that starts with the quote at `i`, or the end of the input.
pub(crate) fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// Index of the bracket that closes the container `i` is inside of (at nesting 0 from `i`),
/// or the end of the input.
pub(crate) fn close_of(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// `depth` is the number of arrays and objects enclosing this value.
    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.pos += 1;
                self.array(depth + 1)
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.pos += 1;
                self.object(depth + 1)
            }
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, ParseError> {
        let end = self.pos.saturating_add(word.len());
        if self.bytes.get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(value)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// After the `[`.
    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.err("unexpected end of input")),
                Some(_) => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    /// After the `{`.
    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.err("unexpected end of input")),
                Some(_) => return Err(self.err("expected a string key")),
            }
            let key = self.string()?;
            self.skip_ws();
            match self.peek() {
                Some(b':') => self.pos += 1,
                None => return Err(self.err("unexpected end of input")),
                Some(_) => return Err(self.err("expected ':'")),
            }
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                None => return Err(self.err("unexpected end of input")),
                Some(_) => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    /// At the opening quote.
    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    // `run` and `pos` sit next to ASCII bytes, so they are char boundaries.
                    out.push_str(self.text.get(run..self.pos).unwrap_or_default());
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(self.text.get(run..self.pos).unwrap_or_default());
                    self.escape(&mut out)?;
                    run = self.pos;
                }
                Some(0x00..=0x1f) => return Err(self.err("control character in string")),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// At the backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), ParseError> {
        let c = match self.bytes.get(self.pos + 1) {
            None => return Err(self.err("unterminated string")),
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit =
                    hex4(self.bytes, self.pos + 2).ok_or_else(|| self.err("invalid \\u escape"))?;
                self.pos += 6;
                let c = match unit {
                    0xd800..=0xdbff => match low_surrogate_escape(self.bytes, self.pos) {
                        Some(low) => {
                            self.pos += 6;
                            char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))
                        }
                        None => None,
                    },
                    _ => char::from_u32(unit),
                };
                out.push(c.unwrap_or('\u{fffd}'));
                return Ok(());
            }
            Some(_) => return Err(self.err("invalid escape")),
        };
        out.push(c);
        self.pos += 2;
        Ok(())
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        match self.text.get(start..self.pos) {
            Some(text) if !Num::overflows(text) => Ok(Value::Number(Num(text.to_string()))),
            _ => Err(ParseError {
                offset: start,
                reason: "number out of range",
            }),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// The value of the 4 hex digits at `at`.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at.checked_add(4)?)?;
    let mut unit = 0;
    for &b in digits {
        unit = unit << 4 | (b as char).to_digit(16)?;
    }
    Some(unit)
}

/// The code unit of a `\uDC00`-`\uDFFF` escape at `at`, if there is one.
fn low_surrogate_escape(bytes: &[u8], at: usize) -> Option<u32> {
    if bytes.get(at..at.checked_add(2)?)? != b"\\u" {
        return None;
    }
    hex4(bytes, at + 2).filter(|unit| (0xdc00..=0xdfff).contains(unit))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal, escaped like `JSON.stringify`.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, so a char boundary.
        out.push_str(s.get(run..i).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

enum Frame<'a> {
    Array(core::slice::Iter<'a, Value>, bool),
    Object(core::slice::Iter<'a, (String, Value)>, bool),
}

/// Appends `v` as compact JSON, like `JSON.stringify(v)`. Iterative, so any depth is fine.
pub fn write_value(out: &mut String, v: &Value) {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut current = v;
    loop {
        match current {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => out.push_str(n.text()),
            Value::String(s) => write_str(out, s),
            Value::Array(items) => {
                out.push('[');
                stack.push(Frame::Array(items.iter(), true));
            }
            Value::Object(members) => {
                out.push('{');
                stack.push(Frame::Object(members.iter(), true));
            }
        }
        // Find the next value to write, closing finished containers.
        loop {
            let next = match stack.last_mut() {
                None => return,
                Some(Frame::Array(items, first)) => items.next().inspect(|_| {
                    if !core::mem::replace(first, false) {
                        out.push(',');
                    }
                }),
                Some(Frame::Object(members, first)) => members.next().map(|(key, value)| {
                    if !core::mem::replace(first, false) {
                        out.push(',');
                    }
                    write_str(out, key);
                    out.push(':');
                    value
                }),
            };
            match next {
                Some(value) => {
                    current = value;
                    break;
                }
                None => match stack.pop() {
                    Some(Frame::Array(..)) => out.push(']'),
                    Some(Frame::Object(..)) => out.push('}'),
                    None => return,
                },
            }
        }
    }
}

/// 2^53: integers up to this magnitude are written without going through float formatting.
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// Writes a number in the layout of ECMAScript's `Number::toString` (so like `JSON.stringify`):
/// non-finite as `null`, `-0` as `0`, exponent form below 1e-6 and from 1e21, with the shortest
/// digits that round-trip. Where two shortest digit strings both round-trip, Rust's may differ
/// from JavaScript's in the last digit (about 1 double in 3,000 tested); both parse back to the
/// same f64.
fn write_number(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
        return;
    }
    if crate::core::num::is_integral(n) && n.abs() <= MAX_SAFE {
        if n < 0.0 {
            out.push('-');
        }
        write_u64(out, n.abs() as u64);
        return;
    }
    // The shortest round-trip digits, from `{:e}`: "d[.ddd]e[-]x".
    let mut sci = String::with_capacity(32);
    let _ = fmt::Write::write_fmt(&mut sci, format_args!("{:e}", n.abs()));
    let Some((mantissa, exp)) = sci.split_once('e') else {
        out.push_str("null"); // unreachable: `{:e}` always writes an exponent
        return;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        out.push_str("null");
        return;
    };
    let mut digits = [0u8; 40];
    let mut k = 0;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if let Some(slot) = digits.get_mut(k) {
            *slot = b;
            k += 1;
        }
    }
    let digits = digits.get(..k).unwrap_or_default();
    if n < 0.0 {
        out.push('-');
    }
    // ECMAScript's terms: the value is 0.<digits> x 10^point, with k digits.
    let point = exp + 1;
    let k = k as i32;
    let push = |out: &mut String, ds: &[u8]| ds.iter().for_each(|&d| out.push(d as char));
    if k <= point && point <= 21 {
        push(out, digits);
        (k..point).for_each(|_| out.push('0'));
    } else if 0 < point && point <= 21 {
        let (int, frac) = digits.split_at((point as usize).min(digits.len()));
        push(out, int);
        out.push('.');
        push(out, frac);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        (point..0).for_each(|_| out.push('0'));
        push(out, digits);
    } else {
        let (first, rest) = digits.split_at(digits.len().min(1));
        push(out, first);
        if !rest.is_empty() {
            out.push('.');
            push(out, rest);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        write_u64(out, u64::from((point - 1).unsigned_abs()));
    }
}

fn write_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in buf.get(i..).unwrap_or_default() {
        out.push(d as char);
    }
}

/// Replaces each lone surrogate escape (`\ud800`-`\udbff` not immediately followed by a
/// `\udc00`-`\udfff` escape, or a `\udc00`-`\udfff` escape not preceded by a high one) with
/// `\ufffd`, so that strict parsers accept text from `JSON.stringify`. Borrows when there is
/// nothing to replace. The replacement has the same length, so byte offsets do not move.
pub fn fix_lone_surrogates(json: &str) -> Cow<'_, str> {
    // Quick exit (no pattern search: its code is kilobytes in the wasm): no `\u` escape of a
    // surrogate (d800 to dfff) at all.
    let b = json.as_bytes();
    if !b
        .windows(3)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && (w[2] | 0x20) == b'd')
    {
        return Cow::Borrowed(json);
    }
    let bytes = json.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) != Some(&b'\\') {
            i += 1;
            continue;
        }
        // A backslash always starts a two-byte escape, so `\\ud800` is not a `\u` escape.
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let lone = match hex4(bytes, i + 2) {
            Some(0xd800..=0xdbff) => match low_surrogate_escape(bytes, i + 6) {
                Some(_) => {
                    i += 12;
                    continue;
                }
                None => true,
            },
            Some(0xdc00..=0xdfff) => true,
            _ => false,
        };
        if lone {
            let fixed = out.get_or_insert_with(|| String::with_capacity(json.len()));
            // `i` is at a backslash, so a char boundary.
            fixed.push_str(json.get(copied..i).unwrap_or_default());
            fixed.push_str("\\ufffd");
            copied = i + 6;
        }
        i += 6;
    }
    match out {
        None => Cow::Borrowed(json),
        Some(mut fixed) => {
            fixed.push_str(json.get(copied..).unwrap_or_default());
            Cow::Owned(fixed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Value {
        match parse(text) {
            Ok(v) => v,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn err(text: &str) -> ParseError {
        match parse(text) {
            Ok(v) => panic!("{text:?} parsed as {v:?}"),
            Err(e) => e,
        }
    }

    fn write(v: &Value) -> String {
        let mut out = String::new();
        write_value(&mut out, v);
        out
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    fn num_out(n: f64) -> String {
        write(&Value::number(n))
    }

    #[test]
    fn scalars_and_whitespace() {
        assert_eq!(ok("null"), Value::Null);
        assert_eq!(ok("true"), Value::Bool(true));
        assert_eq!(ok("false"), Value::Bool(false));
        assert_eq!(ok("42"), Value::number(42.0));
        assert_eq!(ok("\"hi\""), s("hi"));
        assert_eq!(ok(" \t\r\n null \t\r\n"), Value::Null);
        assert_eq!(
            ok(" [ 1 , { \"a\" : [ ] } , \"x\" ] "),
            Value::Array(vec![
                Value::number(1.0),
                Value::Object(vec![("a".into(), Value::Array(vec![]))]),
                s("x"),
            ])
        );
        assert_eq!(ok("{}"), Value::Object(vec![]));
        assert_eq!(ok("[]"), Value::Array(vec![]));
    }

    #[test]
    fn accessors() {
        let v = ok(r#"{"a": 1, "b": "x", "a": 2, "c": [true], "d": false, "e": null}"#);
        assert_eq!(
            v.get("a"),
            Some(&Value::number(1.0)),
            "first of duplicate keys"
        );
        assert_eq!(v.get("b").and_then(Value::as_str), Some("x"));
        assert_eq!(
            v.get("c").and_then(Value::as_array),
            Some(&[Value::Bool(true)][..])
        );
        assert_eq!(v.get("d").and_then(Value::as_bool), Some(false));
        assert_eq!(v.get("e"), Some(&Value::Null));
        assert_eq!(v.get("zz"), None);
        assert_eq!(v.as_object().map(<[_]>::len), Some(6));
        assert_eq!(v.as_str(), None);
        assert_eq!(s("x").get("a"), None);
        assert_eq!(Value::Null.as_f64(), None);
        assert_eq!(Value::number(1.5).as_f64(), Some(1.5));
        assert_eq!(Value::Bool(true).as_u64(), None);
        assert_eq!(s("1").as_u64(), None);
        assert_eq!(Value::Array(vec![]).as_object(), None);
    }

    #[test]
    fn as_u64_edges() {
        let u = |text: &str| ok(text).as_u64();
        assert_eq!(u("0"), Some(0));
        assert_eq!(u("-0"), Some(0));
        assert_eq!(u("-0.0e5"), Some(0));
        assert_eq!(u("0e999999999"), Some(0));
        assert_eq!(u("42"), Some(42));
        assert_eq!(u("9007199254740993"), Some((1 << 53) + 1)); // exact, unlike an f64
        assert_eq!(u("18446744073709551615"), Some(u64::MAX));
        assert_eq!(u("18446744073709551616"), None); // 2^64
        assert_eq!(u("1e300"), None);
        assert_eq!(u("-1"), None);
        assert_eq!(u("1.5"), None);
        assert_eq!(u("1.5e1"), Some(15));
        assert_eq!(u("150e-1"), Some(15));
        assert_eq!(u("155e-1"), None);
        assert_eq!(u("1e-999999999"), None);
        assert_eq!(u("1e2"), Some(100));
        assert_eq!(u("7.0"), Some(7));
        assert_eq!(u("0.07e2"), Some(7));
        let sat = |text: &str| match ok(text) {
            Value::Number(n) => n.as_u64_saturating(),
            _ => None,
        };
        assert_eq!(sat("1e300"), Some(u64::MAX));
        assert_eq!(sat("18446744073709551616"), Some(u64::MAX));
        assert_eq!(sat("-1e300"), None);
        assert_eq!(sat("1.5"), None);
        assert_eq!(sat("12"), Some(12));
    }

    #[test]
    fn every_escape() {
        assert_eq!(
            ok(r#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\u0000\u001f""#),
            s("\"\\/\u{8}\u{c}\n\r\t\u{41}é€\u{0}\u{1f}")
        );
        // Raw non-ASCII and DEL are literal.
        assert_eq!(ok("\"é€😀\u{7f}\u{2028}\""), s("é€😀\u{7f}\u{2028}"));
    }

    #[test]
    fn surrogates() {
        assert_eq!(ok(r#""\ud83d\ude00""#), s("😀"));
        assert_eq!(ok(r#""\uD83D\uDE00""#), s("😀"));
        assert_eq!(
            ok(r#""\ud800\udc00\udbff\udfff""#),
            s("\u{10000}\u{10ffff}")
        );
        assert_eq!(ok(r#""\ud800""#), s("\u{fffd}"));
        assert_eq!(ok(r#""a\ud800b""#), s("a\u{fffd}b"));
        assert_eq!(ok(r#""\udc00""#), s("\u{fffd}"));
        assert_eq!(ok(r#""\udfff\ud800""#), s("\u{fffd}\u{fffd}"));
        assert_eq!(ok(r#""\ud800\u0041""#), s("\u{fffd}A"));
        assert_eq!(ok(r#""\ud800\n""#), s("\u{fffd}\n"));
        assert_eq!(ok(r#""\ud800\ud800\udc00""#), s("\u{fffd}\u{10000}"));
        assert_eq!(ok(r#""\ud800\\udc00""#), s("\u{fffd}\\udc00"));
        assert_eq!(
            ok(r#"{"\ud800": 1}"#).get("\u{fffd}"),
            Some(&Value::number(1.0))
        );
        // A high surrogate followed by a broken escape: the broken escape is the error.
        assert_eq!(err(r#""\ud800\udc0""#).offset, 7);
        assert_eq!(err(r#""\ud800\u""#).offset, 7);
    }

    #[test]
    fn invalid_strings() {
        for (text, offset, reason) in [
            ("\"abc", 4, "unterminated string"),
            ("\"", 1, "unterminated string"),
            ("\"\\", 1, "unterminated string"),
            ("\"a\nb\"", 2, "control character in string"),
            ("\"\u{0}\"", 1, "control character in string"),
            ("\"\u{1f}\"", 1, "control character in string"),
            ("\"\t\"", 1, "control character in string"),
            (r#""\x""#, 1, "invalid escape"),
            (r#""\U0041""#, 1, "invalid escape"),
            (r#""\'""#, 1, "invalid escape"),
            (r#""\a""#, 1, "invalid escape"),
            (r#""\u12""#, 1, "invalid \\u escape"),
            (r#""\u12g4""#, 1, "invalid \\u escape"),
            (r#""\u+123""#, 1, "invalid \\u escape"),
            (r#""\u00"#, 1, "invalid \\u escape"),
            ("\"\\é\"", 1, "invalid escape"),
            ("'a'", 0, "expected a value"),
        ] {
            assert_eq!(err(text), ParseError { offset, reason }, "{text:?}");
        }
    }

    #[test]
    fn invalid_documents() {
        for (text, offset, reason) in [
            ("", 0, "unexpected end of input"),
            ("   ", 3, "unexpected end of input"),
            ("[", 1, "unexpected end of input"),
            ("[1", 2, "unexpected end of input"),
            ("[1,", 3, "unexpected end of input"),
            ("{", 1, "unexpected end of input"),
            ("{\"a\"", 4, "unexpected end of input"),
            ("{\"a\":", 5, "unexpected end of input"),
            ("{\"a\":1", 6, "unexpected end of input"),
            ("{\"a\":1,", 7, "unexpected end of input"),
            ("[1,]", 3, "expected a value"),
            ("[,1]", 1, "expected a value"),
            ("{\"a\":1,}", 7, "expected a string key"),
            ("{,}", 1, "expected a string key"),
            ("{a:1}", 1, "expected a string key"),
            ("{1:1}", 1, "expected a string key"),
            ("{\"a\" 1}", 5, "expected ':'"),
            ("{\"a\":}", 5, "expected a value"),
            ("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'"),
            ("[1 2]", 3, "expected ',' or ']'"),
            ("[1}", 2, "expected ',' or ']'"),
            ("{\"a\":1]", 6, "expected ',' or '}'"),
            ("tru", 0, "invalid literal"),
            ("nul", 0, "invalid literal"),
            ("True", 0, "expected a value"),
            ("nulll", 4, "trailing characters"),
            ("falsey", 5, "trailing characters"),
            ("[1] x", 4, "trailing characters"),
            ("1 2", 2, "trailing characters"),
            ("{}}", 2, "trailing characters"),
            ("//c\n1", 0, "expected a value"),
            ("/*c*/1", 0, "expected a value"),
            ("1 // c", 2, "trailing characters"),
            ("\u{feff}1", 0, "expected a value"),
            ("\u{a0}1", 0, "expected a value"),
            ("\u{b}1", 0, "expected a value"),
            ("[1,2,]", 5, "expected a value"),
            ("undefined", 0, "expected a value"),
            ("é", 0, "expected a value"),
        ] {
            assert_eq!(err(text), ParseError { offset, reason }, "{text:?}");
        }
    }

    #[test]
    fn error_display() {
        let e = err("[1,]");
        let mut shown = String::new();
        fmt::Write::write_fmt(&mut shown, format_args!("{e}")).unwrap();
        assert_eq!(shown, "invalid JSON at byte 3: expected a value");
    }

    #[test]
    fn numbers_parse() {
        for (text, n) in [
            ("0", 0.0),
            ("-0", -0.0),
            ("0.1", 0.1),
            ("-0.5", -0.5),
            ("1e300", 1e300),
            ("1E300", 1e300),
            ("1e+2", 100.0),
            ("1e-2", 0.01),
            ("0e0", 0.0),
            ("-0.0e-0", -0.0),
            ("9007199254740992", 9_007_199_254_740_992.0),
            ("9007199254740993", 9_007_199_254_740_992.0), // rounds to nearest even
            ("-9007199254740992", -9_007_199_254_740_992.0),
            ("1.7976931348623157e308", f64::MAX),
            ("5e-324", 5e-324),
            ("1e-400", 0.0),
            ("123456789012345678901234567890", 1.2345678901234568e29),
        ] {
            let v = ok(text);
            assert_eq!(
                v,
                Value::Number(Num(text.to_string())),
                "{text}: kept as written"
            );
            assert_eq!(
                v.as_f64().map(f64::to_bits),
                Some(n.to_bits()),
                "{text} sign"
            );
        }
        assert!(ok("-0").as_f64().is_some_and(|n| n.is_sign_negative()));
    }

    #[test]
    fn numbers_invalid() {
        for (text, offset, reason) in [
            ("01", 1, "trailing characters"),
            ("-01", 2, "trailing characters"),
            ("00", 1, "trailing characters"),
            ("1.", 2, "invalid number"),
            ("1.e5", 2, "invalid number"),
            (".1", 0, "expected a value"),
            ("-", 1, "invalid number"),
            ("-a", 1, "invalid number"),
            ("--1", 1, "invalid number"),
            ("+1", 0, "expected a value"),
            ("1e", 2, "invalid number"),
            ("1e+", 3, "invalid number"),
            ("1e+-1", 3, "invalid number"),
            ("0x10", 1, "trailing characters"),
            ("1_000", 1, "trailing characters"),
            ("NaN", 0, "expected a value"),
            ("Infinity", 0, "expected a value"),
            ("-Infinity", 1, "invalid number"),
            ("1e400", 0, "number out of range"),
            ("[1, -1e400]", 4, "number out of range"),
            ("[1,-]", 4, "invalid number"),
        ] {
            assert_eq!(err(text), ParseError { offset, reason }, "{text:?}");
        }
    }

    #[test]
    fn numbers_written_like_json_stringify() {
        // Expected strings are what node's JSON.stringify prints.
        for (n, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (42.0, "42"),
            (-42.0, "-42"),
            (0.1, "0.1"),
            (-1.5, "-1.5"),
            (123.456, "123.456"),
            (42.5, "42.5"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (-9_007_199_254_740_992.0, "-9007199254740992"),
            (9_007_199_254_740_994.0, "9007199254740994"),
            (18_014_398_509_481_984.0, "18014398509481984"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e300, "1e+300"),
            (-1e300, "-1e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (-1.2345e-10, "-1.2345e-10"),
            (5e-324, "5e-324"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (1.0 / 3.0, "0.3333333333333333"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e15 + 0.5, "1000000000000000.5"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ] {
            assert_eq!(num_out(n), text, "{n:e}");
        }
    }

    #[test]
    fn write_str_escapes() {
        let w = |text: &str| {
            let mut out = String::from("x");
            write_str(&mut out, text);
            out
        };
        assert_eq!(w(""), "x\"\"");
        assert_eq!(w("plain"), "x\"plain\"");
        assert_eq!(
            w("\"\\/\u{8}\u{c}\n\r\t"),
            r#"x"\"\\/\b\f\n\r\t""#,
            "slash is not escaped"
        );
        assert_eq!(
            w("\u{0}\u{1}\u{b}\u{e}\u{1a}\u{1b}\u{1f} \u{7f}"),
            "x\"\\u0000\\u0001\\u000b\\u000e\\u001a\\u001b\\u001f \u{7f}\""
        );
        assert_eq!(
            w("é€😀\u{2028}\u{2029}\u{fffd}"),
            "x\"é€😀\u{2028}\u{2029}\u{fffd}\""
        );
        assert_eq!(w("a\nb\"c"), "x\"a\\nb\\\"c\"");
        // Every escape parses back to its character.
        let all: String = (0u8..0x80).map(char::from).collect();
        let mut out = String::new();
        write_str(&mut out, &all);
        assert_eq!(ok(&out), Value::String(all));
    }

    #[test]
    fn write_value_compact() {
        let v = ok(
            r#" { "a" : [ 1 , 2.5 , { "b" : null } , [ ] , { } ] , "c" : "x\n" , "d" : true , "e" : false , "a" : -0 } "#,
        );
        assert_eq!(
            write(&v),
            r#"{"a":[1,2.5,{"b":null},[],{}],"c":"x\n","d":true,"e":false,"a":-0}"#
        );
        assert_eq!(write(&Value::Array(vec![])), "[]");
        assert_eq!(write(&Value::Object(vec![])), "{}");
        assert_eq!(write(&Value::Array(vec![Value::Array(vec![])])), "[[]]");
        assert_eq!(
            write(&Value::Object(vec![(
                "k\"".into(),
                Value::Array(vec![Value::Null])
            )])),
            r#"{"k\"":[null]}"#
        );
        let mut out = String::from("prefix ");
        write_value(&mut out, &Value::Bool(true));
        assert_eq!(out, "prefix true");
    }

    #[test]
    fn round_trip_document() {
        let text = r#"{"events":[{"message_id":"5f0c3e1a-8d2b-4c6e-9f10-2a3b4c5d6e7f","type":"track","event_type":"checkout_started","user_id":"alice","anonymous_id":null,"timestamp":"2026-11-24T03:01:16.123Z","properties":{"cart_value":42.5,"n":[1,-2,3e-7,1e+300,"é😀\u0000\t"]},"context":{"page":{"path":"/cart"}}}],"sent_at":"2026-11-24T03:01:17.000Z"}"#;
        let v = ok(text);
        assert_eq!(write(&v), text);
        assert_eq!(ok(&write(&v)), v);
    }

    fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
        let mut text = open.repeat(depth);
        text.push_str(inner);
        text.push_str(&close.repeat(depth));
        text
    }

    #[test]
    fn depth_limit() {
        assert!(parse(&nested("[", "", "]", MAX_DEPTH)).is_ok());
        assert!(parse(&nested("{\"a\":", "{}", "}", MAX_DEPTH - 1)).is_ok());
        let e = err(&nested("[", "", "]", MAX_DEPTH + 1));
        assert_eq!(
            e,
            ParseError {
                offset: MAX_DEPTH,
                reason: "nesting too deep"
            }
        );
        let e = err(&nested("{\"a\":", "1", "}", MAX_DEPTH + 1));
        assert_eq!(
            e,
            ParseError {
                offset: 5 * MAX_DEPTH,
                reason: "nesting too deep"
            }
        );
        let mixed = format!("{}1{}", "[{\"a\":".repeat(32), "}]".repeat(32));
        assert!(parse(&mixed).is_ok());
        let mixed = format!("{}[]{}", "[{\"a\":".repeat(32), "}]".repeat(32));
        assert_eq!(err(&mixed).reason, "nesting too deep");
        // Far deeper input fails fast instead of overflowing the stack.
        assert_eq!(err(&"[".repeat(1_000_000)).reason, "nesting too deep");
        assert_eq!(err(&"{\"\":".repeat(1_000_000)).reason, "nesting too deep");
        // Siblings do not add depth.
        let wide = format!("[{}1]", "[],".repeat(10_000));
        assert!(parse(&wide).is_ok());
    }

    #[test]
    fn writer_handles_deep_values() {
        let depth = 100_000;
        let mut v = Value::Null;
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        let text = write(&v);
        // Dismantle iteratively before asserting: the derived drop would recurse 100,000 times.
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
        let mut expected = "[".repeat(depth);
        expected.push_str("null");
        expected.push_str(&"]".repeat(depth));
        assert!(text == expected);
    }

    #[test]
    fn fix_lone_surrogates_cases() {
        let owned = |input: &str, expected: &str| {
            let fixed = fix_lone_surrogates(input);
            assert!(matches!(fixed, Cow::Owned(_)), "{input:?} should change");
            assert_eq!(fixed, expected, "{input:?}");
            assert_eq!(fixed.len(), input.len());
        };
        let borrowed = |input: &str| {
            let fixed = fix_lone_surrogates(input);
            assert!(matches!(fixed, Cow::Borrowed(_)), "{input:?} should borrow");
            assert_eq!(fixed, input);
        };
        borrowed("");
        borrowed(r#"{"a":"plain é 😀"}"#);
        borrowed(r#""\u0041\n\\u""#);
        borrowed(r#""\ud83d\ude00""#);
        borrowed(r#""\uD83D\uDE00""#);
        borrowed(r#""\uD83D\ude00 \udbff\uDFFF""#);
        borrowed(r#""\\ud800""#); // an escaped backslash, then text
        borrowed(r#""\\\\ud800""#);
        borrowed(r#""\\udc00 \\uDC00""#);
        borrowed(r#""\ud8""#); // truncated: not an escape the fixer can fix
        borrowed(r#""\ud80g""#);
        borrowed("\\ud");
        borrowed("\\u");
        borrowed("\\");
        borrowed("\\ud80");
        owned(r#""\ud800""#, r#""\ufffd""#);
        owned(r#""\uD800""#, r#""\ufffd""#);
        owned(r#""\udc00""#, r#""\ufffd""#);
        owned(r#""\uDFFF""#, r#""\ufffd""#);
        owned(r#""a\ud800b""#, r#""a\ufffdb""#);
        owned("\\ud800", "\\ufffd");
        owned(r#""\ud800\u0041""#, r#""\ufffd\u0041""#);
        owned(r#""\ud800\ud800\udc00""#, r#""\ufffd\ud800\udc00""#);
        owned(r#""\udc00\ud800""#, r#""\ufffd\ufffd""#);
        owned(r#""\ud800\\udc00""#, r#""\ufffd\\udc00""#);
        owned(r#""\\\ud800""#, r#""\\\ufffd""#); // escaped backslash, then an escape
        owned(r#""\ud800\udc""#, r#""\ufffd\udc""#);
        owned(
            r#"{"\udc00é":"😀\ud83d","ok":"\ud83d\ude00"}"#,
            r#"{"\ufffdé":"😀\ufffd","ok":"\ud83d\ude00"}"#,
        );
    }

    #[test]
    fn fixed_text_parses_to_the_same_value() {
        for text in [
            r#""\ud800""#,
            r#"["\udc00x", {"\uDBFF": "\ud800\ud800\udc00"}]"#,
            r#""\\\ud800\\ud800""#,
        ] {
            let fixed = fix_lone_surrogates(text);
            assert_eq!(ok(&fixed), ok(text));
            assert!(fixed.contains("\\ufffd"), "{fixed}");
            assert!(matches!(fix_lone_surrogates(&fixed), Cow::Borrowed(_)));
        }
    }

    /// xorshift64*, deterministic.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b" ",
        b"\n",
        b"\\",
        b"\\\\",
        b"\\u",
        b"\\ud800",
        b"\\udc00",
        b"\\uDBFF",
        b"\\uDFFF",
        b"\\u0041",
        b"\\n",
        b"d83d",
        b"\\ude00",
        b"u",
        b"0",
        b"1",
        b"9",
        b"-",
        b".",
        b"e",
        b"E",
        b"+",
        b"true",
        b"false",
        b"null",
        b"1e400",
        b"\"a\"",
        b"\"k\":",
        b"\xc3\xa9",
        b"\xf0\x9f\x98\x80",
        b"\x00",
        b"\x1f",
        b"\xff",
        b"\t",
        b"/",
        b"123.456e-7",
        b"-0",
        b"9007199254740993",
    ];

    fn check_invariants(text: &str) {
        let fixed = fix_lone_surrogates(text);
        assert_eq!(fixed.len(), text.len());
        assert!(
            matches!(fix_lone_surrogates(&fixed), Cow::Borrowed(_)),
            "idempotent: {text:?}"
        );
        let parsed = parse(text);
        assert_eq!(
            parsed,
            parse(&fixed),
            "fixing changes nothing for the parser: {text:?}"
        );
        if let Ok(v) = parsed {
            let written = write(&v);
            assert_eq!(parse(&written).as_ref(), Ok(&v), "{text:?} -> {written:?}");
            assert_eq!(write(&ok(&written)), written, "writing is canonical");
            assert!(matches!(fix_lone_surrogates(&written), Cow::Borrowed(_)));
        }
    }

    /// Random bytes, random token soup, and mutated valid documents, as UTF-8 (lossy).
    fn fuzz_input(rng: &mut Rng, round: usize) -> String {
        let mut bytes = Vec::new();
        match round % 3 {
            0 => (0..rng.below(40)).for_each(|_| bytes.push(rng.next() as u8)),
            1 => (0..rng.below(12))
                .for_each(|_| bytes.extend_from_slice(PIECES[rng.below(PIECES.len())])),
            _ => {
                bytes = write(&random_value(rng, 4)).into_bytes();
                for _ in 0..rng.below(4) {
                    let at = rng.below(bytes.len() + 1);
                    match rng.below(3) {
                        0 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        1 if at < bytes.len() => bytes[at] = rng.next() as u8,
                        _ => {
                            let piece = PIECES[rng.below(PIECES.len())];
                            bytes.splice(at..at, piece.iter().copied());
                        }
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn fuzz_parse_and_fix() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut parsed_ok, mut fixed) = (0, 0);
        for round in 0..6000 {
            let text = fuzz_input(&mut rng, round);
            check_invariants(&text);
            fixed += usize::from(matches!(fix_lone_surrogates(&text), Cow::Owned(_)));
            if let Ok(v) = parse(&text) {
                parsed_ok += 1;
                // Every truncation of a valid document fails cleanly (or is still valid).
                let written = write(&v);
                for cut in 0..written.len() {
                    if let Some(prefix) = written.get(..cut) {
                        check_invariants(prefix);
                    }
                }
            }
        }
        // The generator must exercise both paths, or the test proves little.
        assert!(parsed_ok > 500, "valid inputs: {parsed_ok}");
        assert!(fixed > 100, "inputs with lone surrogates: {fixed}");
    }

    fn random_string(rng: &mut Rng) -> String {
        const CHARS: &[char] = &[
            'a',
            'z',
            '"',
            '\\',
            '/',
            '\u{0}',
            '\u{8}',
            '\u{c}',
            '\n',
            '\r',
            '\t',
            '\u{1f}',
            '\u{7f}',
            'é',
            '\u{2028}',
            '\u{fffd}',
            '\u{ffff}',
            '😀',
            '\u{10ffff}',
            ' ',
        ];
        (0..rng.below(8))
            .map(|_| CHARS[rng.below(CHARS.len())])
            .collect()
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        match rng.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.next() & 1 == 1),
            2 => Value::number(loop {
                let n = match rng.below(4) {
                    0 => f64::from_bits(rng.next()),
                    1 => (rng.next() as i64 >> rng.below(64)) as f64,
                    2 => (rng.next() % 2_000_001) as f64 / 1000.0 - 1000.0,
                    _ => [
                        0.0,
                        -0.0,
                        1e21,
                        1e-7,
                        1e-6,
                        5e-324,
                        f64::MAX,
                        9_007_199_254_740_993.0,
                    ][rng.below(8)],
                };
                if n.is_finite() {
                    break n;
                }
            }),
            3 | 4 => Value::String(random_string(rng)),
            5 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(4))
                    .map(|_| (random_string(rng), random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn fuzz_round_trip_random_values() {
        let mut rng = Rng(12345);
        for _ in 0..3000 {
            let v = random_value(&mut rng, 6);
            let text = write(&v);
            let back = ok(&text);
            assert_eq!(back, v, "{text}");
            // Exact bits too (except that -0 is written as 0).
            if let (Some(a), Some(b)) = (v.as_f64(), back.as_f64()) {
                assert!(a.to_bits() == b.to_bits() || a == 0.0, "{a:e}");
            }
            assert_eq!(write(&back), text);
        }
    }

    #[test]
    fn number_text_agrees_with_f64_parsing() {
        let mut rng = Rng(777);
        for _ in 0..20_000 {
            let mut t = String::new();
            if rng.below(2) == 0 {
                t.push('-');
            }
            let int_digits = rng.below(25);
            if int_digits == 0 || rng.below(4) == 0 {
                t.push('0');
            } else {
                t.push(char::from(b'1' + rng.below(9) as u8));
                (1..int_digits).for_each(|_| t.push(char::from(b'0' + rng.below(10) as u8)));
            }
            if rng.below(2) == 0 {
                t.push('.');
                (0..=rng.below(5)).for_each(|_| t.push(char::from(b'0' + rng.below(10) as u8)));
            }
            if rng.below(2) == 0 {
                t.push(['e', 'E'][rng.below(2)]);
                t.push_str(["", "+", "-"][rng.below(3)]);
                (0..=rng.below(3)).for_each(|_| t.push(char::from(b'0' + rng.below(10) as u8)));
            }
            let f: f64 = t.parse().unwrap();
            match parse(&t) {
                Ok(v) => {
                    assert!(f.is_finite(), "{t} parsed but is not finite");
                    assert_eq!(v.as_f64().map(f64::to_bits), Some(f.to_bits()), "{t}");
                    // With at most 15 significant digits the f64 is exact enough to tell an
                    // integer from a fraction, so the two readings must agree.
                    let mantissa = t.split(['e', 'E']).next().unwrap_or("");
                    let significant = mantissa
                        .bytes()
                        .filter(u8::is_ascii_digit)
                        .skip_while(|&d| d == b'0')
                        .count();
                    if f.abs() < 1e15 && significant <= 15 && (f != 0.0 || significant == 0) {
                        let want = (f >= 0.0 || f == 0.0) && f == f.trunc();
                        assert_eq!(v.as_u64(), want.then_some(f.abs() as u64), "{t}");
                    }
                }
                Err(e) => {
                    assert_eq!(e.reason, "number out of range", "{t}");
                    assert!(!f.is_finite() || f.abs() >= 1.7976931348623157e308, "{t}");
                }
            }
        }
    }
}
