//! What the client hands the platform layer: the requests to make, the console lines and the
//! next wake-up ([`Output`]), and `stats()`.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::core::json::write_str;
use crate::core::num::{push_int, round};
use crate::core::pipeline::{Level, Log, Pipeline, Request};

/// What [`super::Client::poll`] asks for.
#[derive(Debug, Default)]
pub struct Output {
    pub requests: Vec<Request>,
    pub logs: Vec<Log>,
    /// When to poll again absent other activity (epoch ms); `None`: only on the next event
    /// or answer.
    pub wake: Option<f64>,
    /// The visit to keep in storage for the other tabs, when a write is due.
    pub visit: Option<String>,
}

impl Output {
    /// The text the platform layer reads, without the requests' bodies (it takes each with a
    /// call of its own, so that a 512 KiB body is never copied twice in the module's memory):
    ///
    /// `{"r":[[id,url,authorization,keepalive,timeoutMs],…],"l":[[level,message],…],"w":wake,
    /// "v":visit}`, where level is 0 debug, 1 warn, 2 error, `w` is -1 for none, and `v` (the
    /// visit's text, see [`crate::core::visit::Visit::to_json`]) is there when it is to be
    /// written.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str("{\"r\":[");
        for (i, r) in self.requests.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            push_int(&mut out, r.id as i64);
            out.push(',');
            write_str(&mut out, &r.url);
            out.push(',');
            write_str(&mut out, &r.authorization);
            out.push_str(if r.keepalive { ",1," } else { ",0," });
            push_int(&mut out, i64::from(r.timeout_ms));
            out.push(']');
        }
        out.push_str("],\"l\":[");
        for (i, l) in self.logs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(match l.level {
                Level::Debug => "[0,",
                Level::Warn => "[1,",
                Level::Error => "[2,",
            });
            write_str(&mut out, &l.message);
            out.push(']');
        }
        out.push_str("],\"w\":");
        match self.wake {
            Some(w) => push_int(&mut out, round(w) as i64),
            None => out.push_str("-1"),
        }
        if let Some(v) = &self.visit {
            out.push_str(",\"v\":");
            write_str(&mut out, v);
        }
        out.push('}');
        out
    }

    /// What the platform layer takes each request's body from, last request first (for
    /// popping): the mint body's text, or the id of the batch to write out in parts.
    pub fn into_bodies(self) -> Vec<Body> {
        self.requests
            .into_iter()
            .rev()
            .map(|r| {
                if r.body.is_empty() {
                    Body::Batch(r.id, 0)
                } else {
                    Body::Text(r.body)
                }
            })
            .collect()
    }
}

/// A request's body as the platform layer takes it, part by part (see
/// [`super::Client::body_part`]).
#[derive(Debug)]
pub enum Body {
    Text(String),
    /// An ingestion batch's request id, and how far it was written.
    Batch(u64, usize),
}

fn member(out: &mut String, key: &str, n: u64) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
    push_int(out, n as i64);
}

fn problem(out: &mut String, key: &str, p: Option<(&str, &str)>) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
    match p {
        None => out.push_str("null"),
        Some((code, message)) => {
            out.push_str("{\"code\":");
            write_str(out, code);
            out.push_str(",\"message\":");
            write_str(out, message);
            out.push('}');
        }
    }
}

/// `stats()` as JSON; see `SegOpsStats` in the types for the fields. The platform layer adds
/// its own counts (`saveFailures`).
pub fn stats(core: &Pipeline, before_send_errors: u64, now: f64) -> String {
    let s = core.stats();
    let mut out = String::with_capacity(512);
    out.push_str("{\"recorded\":");
    push_int(&mut out, s.recorded as i64);
    member(&mut out, "queued", core.queued() as u64);
    member(&mut out, "pending", core.pending() as u64);
    member(&mut out, "sent", s.sent);
    member(&mut out, "duplicates", s.duplicates);
    member(&mut out, "retried", s.retried);
    member(&mut out, "requests", s.requests);
    member(&mut out, "bytesSent", s.bytes_sent);
    member(&mut out, "mints", s.mints);
    member(&mut out, "remints", s.remints);
    member(&mut out, "keepaliveRequests", s.keepalive_requests);
    member(&mut out, "restored", s.restored);
    member(&mut out, "handedOver", s.handed_over);
    member(&mut out, "unsaved", s.unsaved);
    out.push_str(",\"tokenExpiresInMs\":");
    match core.token_remaining_ms(now) {
        Some(ms) => push_int(&mut out, round(ms) as i64),
        None => out.push_str("null"),
    }
    out.push_str(",\"dropped\":{");
    for (i, (reason, n)) in s.dropped.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, reason);
        out.push(':');
        push_int(&mut out, *n as i64);
    }
    out.push('}');
    member(&mut out, "droppedTotal", s.dropped_total());
    out.push_str(",\"consent\":\"");
    out.push_str(core.consent().as_str());
    out.push('"');
    member(&mut out, "truncated", s.truncated);
    out.push_str(",\"truncatedBy\":{\"depth\":");
    push_int(&mut out, s.truncated_by.depth as i64);
    member(&mut out, "keys", s.truncated_by.keys);
    member(&mut out, "length", s.truncated_by.length);
    out.push('}');
    member(&mut out, "beforeSendErrors", before_send_errors);
    problem(
        &mut out,
        "lastError",
        s.last_error.as_ref().map(|(c, m)| (c.as_str(), m.as_str())),
    );
    let halted = core.halted();
    problem(
        &mut out,
        "halted",
        halted
            .as_ref()
            .map(|h| (h.code.as_str(), h.message.as_str())),
    );
    out.push('}');
    out
}
