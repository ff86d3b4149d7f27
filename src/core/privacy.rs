//! What the app lets the SDK collect: the consent state, and the caps on event properties. Pure
//! functions; the pipeline holds the state. The state a client starts in is the loader's to
//! decide (`startConsent` in `js/loader/store.js`: the persisted choice, Global Privacy Control,
//! the config), since it must know it before the module is there: it decides whether calls made
//! meanwhile may be kept in storage.

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::borrow::Cow;

use crate::core::json::{close_of, string_end};

/// Whether the visitor lets the SDK collect and send events.
///
/// - `Granted`: events are queued, persisted for the next page load and sent as usual.
/// - `Pending`: the visitor has not answered yet. Events are buffered in memory only, within
///   the queue's usual bounds: nothing is sent (not even a session-token request), nothing is
///   written to storage. Granting sends them; denying discards them.
/// - `Denied`: nothing is kept, sent or stored. Events are discarded as they are recorded and
///   counted in `stats().dropped.consent_denied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Granted,
    Pending,
    Denied,
}

impl Consent {
    /// As JS spells it: `"granted"`, `"pending"`, `"denied"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Granted => "granted",
            Consent::Pending => "pending",
            Consent::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Consent> {
        match s {
            "granted" => Some(Consent::Granted),
            "pending" => Some(Consent::Pending),
            "denied" => Some(Consent::Denied),
            _ => None,
        }
    }
}

/// Deepest nesting of objects and arrays in `properties`, `traits` and `context`, counting the
/// object itself as level 1. Deeper values are replaced by the string `"[Object]"` or
/// `"[Array]"`.
///
/// 10: analytics queries reach a few levels down at most; ten keeps any reasonable shape
/// (an order with lines with options) and stops a recursive structure (a DOM node, a framework
/// object, a linked list) from being walked into the event.
pub const MAX_DEPTH: usize = 10;
/// Longest string (object keys included), in Unicode characters. Longer ones keep their first
/// 8,192 characters.
///
/// 8,192: long enough for any URL, search query, user agent or error message, and a quarter of
/// the 32 KiB event limit in ASCII, so one runaway string (a stack trace, a data: URL, a
/// serialized blob) leaves room for the rest of the event instead of taking it over.
pub const MAX_STRING_CHARS: usize = 8_192;
/// Most keys in one object, or items in one array. Later ones are left out (the first 256
/// are kept, in order).
///
/// 256: ten times what a well-designed event carries, and, at about 128 bytes a key, what
/// fills the 32 KiB event limit: an object wider than that is a map of data, not a property.
pub const MAX_KEYS: usize = 256;

/// How many values one event's caps cut, by cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cuts {
    /// Objects or arrays deeper than [`MAX_DEPTH`], replaced by a marker string.
    pub depth: u64,
    /// Objects or arrays with more than [`MAX_KEYS`] entries, shortened.
    pub keys: u64,
    /// Strings longer than [`MAX_STRING_CHARS`], shortened.
    pub length: u64,
}

impl Cuts {
    pub fn any(&self) -> bool {
        self.depth + self.keys + self.length > 0
    }

    pub fn add(&mut self, other: &Cuts) {
        self.depth += other.depth;
        self.keys += other.keys;
        self.length += other.length;
    }
}

/// Edits of a text, applied lazily: nothing is copied until the first edit.
struct Editor<'a> {
    src: &'a str,
    out: Option<String>,
    /// Source bytes before this are in `out` (or replaced).
    done: usize,
}

impl<'a> Editor<'a> {
    /// Replaces `src[from..to]` with `with`. Edits come in order and do not overlap.
    fn replace(&mut self, from: usize, to: usize, with: &str) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.src.len().min(64 * 1024)));
        out.push_str(self.src.get(self.done..from).unwrap_or(""));
        out.push_str(with);
        self.done = to;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.src),
            Some(mut out) => {
                out.push_str(self.src.get(self.done..).unwrap_or(""));
                Cow::Owned(out)
            }
        }
    }
}

/// Where the string starting at `i` must be cut to keep [`MAX_STRING_CHARS`] characters, if it
/// is longer. Never cuts inside an escape, a UTF-8 sequence or an escaped surrogate pair.
fn string_cut(b: &[u8], i: usize, end: usize) -> Option<usize> {
    let close = end.saturating_sub(1);
    let mut j = i + 1;
    let mut chars = 0usize;
    // Start of the previous character, when it was an escaped high surrogate.
    let mut high_at: Option<usize> = None;
    while j < close {
        if chars == MAX_STRING_CHARS {
            return Some(high_at.unwrap_or(j));
        }
        let start = j;
        if b[j] == b'\\' {
            if b.get(j + 1) == Some(&b'u') {
                let hex = b.get(j + 2..j + 6).unwrap_or(b"");
                let high = hex.len() == 4
                    && hex[0].eq_ignore_ascii_case(&b'd')
                    && matches!(hex[1].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b');
                high_at = high.then_some(start);
                j += 6;
            } else {
                high_at = None;
                j += 2;
            }
        } else {
            high_at = None;
            j += 1;
            while j < close && (b[j] & 0xC0) == 0x80 {
                j += 1;
            }
        }
        chars += 1;
    }
    None
}

struct Frame {
    /// Commas seen at this level: entries so far, less one.
    commas: usize,
}

/// Applies [`MAX_DEPTH`], [`MAX_KEYS`] and [`MAX_STRING_CHARS`] to JSON text (an object, as
/// `JSON.stringify` writes it), adding what was cut to `cuts`. Returns the text itself when
/// nothing is over a cap, which is the common case: one pass over the bytes, no copy.
///
/// Never panics; on malformed input the result may be malformed too (the edge only passes
/// `JSON.stringify` output).
pub fn cap_json<'a>(text: &'a str, cuts: &mut Cuts) -> Cow<'a, str> {
    let b = text.as_bytes();
    let mut ed = Editor {
        src: text,
        out: None,
        done: 0,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let end = string_end(b, i);
                if end - i > MAX_STRING_CHARS {
                    if let Some(cut) = string_cut(b, i, end) {
                        ed.replace(cut, end.saturating_sub(1).max(cut), "");
                        cuts.length += 1;
                    }
                }
                i = end;
                continue;
            }
            open @ (b'{' | b'[') => {
                if stack.len() >= MAX_DEPTH {
                    let end = (close_of(b, i + 1) + 1).min(b.len());
                    let marker = if open == b'{' {
                        "\"[Object]\""
                    } else {
                        "\"[Array]\""
                    };
                    ed.replace(i, end, marker);
                    cuts.depth += 1;
                    i = end;
                    continue;
                }
                stack.push(Frame { commas: 0 });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    top.commas += 1;
                    if top.commas >= MAX_KEYS {
                        // This comma would start entry MAX_KEYS + 1: leave out the rest.
                        let close = close_of(b, i + 1);
                        ed.replace(i, close, "");
                        cuts.keys += 1;
                        i = close;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    ed.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::{parse, Value};

    fn cap(text: &str) -> (String, Cuts) {
        let mut cuts = Cuts::default();
        let out = cap_json(text, &mut cuts).into_owned();
        (out, cuts)
    }

    #[test]
    fn consent_spellings() {
        for c in [Consent::Granted, Consent::Pending, Consent::Denied] {
            assert_eq!(Consent::parse(c.as_str()), Some(c));
        }
        assert_eq!(Consent::parse("Granted"), None);
    }

    #[test]
    fn text_within_the_caps_is_returned_as_is() {
        let text = r#"{"a":[1,2,{"b":"x\"y,}"}],"c":"é😀","d":{}}"#;
        let mut cuts = Cuts::default();
        assert!(matches!(cap_json(text, &mut cuts), Cow::Borrowed(_)));
        assert!(!cuts.any());
        let exactly = format!(
            r#"{{"s":"{}","o":{{{}}}}}"#,
            "x".repeat(MAX_STRING_CHARS),
            (0..MAX_KEYS)
                .map(|i| format!(r#""k{i}":{i}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(matches!(cap_json(&exactly, &mut cuts), Cow::Borrowed(_)));
        assert!(!cuts.any());
    }

    #[test]
    fn long_strings_keep_their_first_characters() {
        let s = "é".repeat(MAX_STRING_CHARS + 5);
        let (out, cuts) = cap(&format!(r#"{{"s":"{s}","t":"ok"}}"#));
        assert_eq!(
            cuts,
            Cuts {
                length: 1,
                ..Cuts::default()
            }
        );
        let v = parse(&out).unwrap();
        let kept = v.get("s").and_then(Value::as_str).unwrap();
        assert_eq!(kept.chars().count(), MAX_STRING_CHARS);
        assert_eq!(v.get("t").and_then(Value::as_str), Some("ok"));
        // Escapes count as one character and are never cut in half.
        let s = format!("{}\\n\\u0001", "a".repeat(MAX_STRING_CHARS - 1));
        let (out, _) = cap(&format!(r#"{{"s":"{s}"}}"#));
        let v = parse(&out).unwrap();
        assert_eq!(
            v.get("s").and_then(Value::as_str).unwrap(),
            format!("{}\n", "a".repeat(MAX_STRING_CHARS - 1))
        );
        // An escaped surrogate pair stays whole or goes whole.
        let s = format!("{}\\ud83d\\ude00z", "a".repeat(MAX_STRING_CHARS - 1));
        let (out, _) = cap(&format!(r#"{{"s":"{s}"}}"#));
        let v = parse(&out).unwrap();
        assert_eq!(
            v.get("s").and_then(Value::as_str).unwrap(),
            "a".repeat(MAX_STRING_CHARS - 1)
        );
        // Keys are strings too.
        let (out, cuts) = cap(&format!(r#"{{"{}":1}}"#, "k".repeat(MAX_STRING_CHARS + 1)));
        assert_eq!(cuts.length, 1);
        let v = parse(&out).unwrap();
        assert_eq!(v.as_object().unwrap()[0].0.len(), MAX_STRING_CHARS);
    }

    #[test]
    fn wide_objects_and_arrays_keep_their_first_entries() {
        let wide = (0..MAX_KEYS + 44)
            .map(|i| format!(r#""k{i}":{{"n":[{i},","]}}"#))
            .collect::<Vec<_>>()
            .join(",");
        let items = (0..1000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let (out, cuts) = cap(&format!(r#"{{"o":{{{wide}}},"a":[{items}],"after":true}}"#));
        assert_eq!(
            cuts,
            Cuts {
                keys: 2,
                ..Cuts::default()
            }
        );
        let v = parse(&out).unwrap();
        let o = v.get("o").and_then(Value::as_object).unwrap();
        assert_eq!(o.len(), MAX_KEYS);
        assert_eq!(o[MAX_KEYS - 1].0, format!("k{}", MAX_KEYS - 1));
        let a = v.get("a").and_then(Value::as_array).unwrap();
        assert_eq!(a.len(), MAX_KEYS);
        assert_eq!(a[0].as_f64(), Some(0.0));
        assert_eq!(v.get("after").and_then(Value::as_bool), Some(true));
        // The top-level object itself is capped too.
        let top = (0..MAX_KEYS + 1)
            .map(|i| format!(r#""k{i}":1"#))
            .collect::<Vec<_>>()
            .join(",");
        let (out, cuts) = cap(&format!("{{{top}}}"));
        assert_eq!(cuts.keys, 1);
        assert_eq!(parse(&out).unwrap().as_object().unwrap().len(), MAX_KEYS);
    }

    #[test]
    fn deep_values_are_replaced_by_a_marker() {
        // properties is level 1; level 11 goes.
        let mut text = String::from(r#"{"leaf":1}"#);
        for i in 0..14 {
            text = if i % 2 == 0 {
                format!(r#"{{"l":{text},"s":"a]}}"}}"#)
            } else {
                format!(r#"[{text},"{{"]"#)
            };
        }
        text = format!(r#"{{"deep":{text},"next":"kept"}}"#);
        let (out, cuts) = cap(&text);
        assert_eq!(
            cuts,
            Cuts {
                depth: 1,
                ..Cuts::default()
            }
        );
        let v = parse(&out).unwrap();
        assert_eq!(v.get("next").and_then(Value::as_str), Some("kept"));
        let mut node = v.get("deep").unwrap();
        let mut level = 2;
        loop {
            let next = match node {
                Value::Object(_) => node.get("l").unwrap(),
                Value::Array(items) => &items[0],
                Value::String(s) => {
                    assert!(s == "[Object]" || s == "[Array]", "{s}");
                    break;
                }
                other => panic!("{other:?}"),
            };
            node = next;
            level += 1;
        }
        assert_eq!(level, MAX_DEPTH + 1, "the marker sits at level 11");
    }

    #[test]
    fn malformed_input_never_panics() {
        let big = "x".repeat(MAX_STRING_CHARS * 2);
        for text in [
            "",
            "{",
            "}}]]",
            "\"",
            "\"\\",
            &format!("{{\"a\":\"{big}"),
            &format!("{{\"a\":\"{big}\\u12"),
            &"[".repeat(100),
            &format!("[{}", ",".repeat(1000)),
            "{\"é\":\"\u{1F600}\"",
        ] {
            let _ = cap(text);
        }
    }
}
