//! The client's delivery engine, without I/O: a state machine that takes events and answers and
//! says which requests to make and when to wake up.
//!
//! The JS edge drives it: after every call or answer it asks [`Pipeline::poll_request`] for
//! requests to send, sends them, feeds each answer to [`Pipeline::on_result`], and sets one
//! timer for [`Pipeline::next_wake`]. Time is always a parameter; randomness comes from a seed.
//! Native tests drive it the same way with a fake clock and scripted answers.
//!
//! Invariants: at most one ingestion request is in flight (order is kept and nothing is sent
//! twice while an answer is pending); an event leaves only by delivery or by a counted drop; the
//! queue never exceeds its bounds.

use std::collections::VecDeque;

use crate::config::{Config, KeyKind};
use crate::delivery::{backoff_ms, classify, HttpResult, Outcome, MAX_ATTEMPTS};
use crate::error::Error;
use crate::event::{encode, EventInput, Identity};
use crate::time::format_iso8601;

/// An HTTP request the edge must make.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Hand it back with the answer.
    pub id: u64,
    pub url: String,
    pub authorization: String,
    pub body: String,
    /// Use `fetch(..., { keepalive: true })`: the page is going away.
    pub keepalive: bool,
    pub timeout_ms: u32,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Only produced with `debug: true`.
    Debug,
    Warn,
    Error,
}

/// A line for the console.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub level: Level,
    pub message: String,
}

/// Why events were dropped. Server rejections are counted under the server's own code.
pub mod reason {
    /// The queue was full (by count or bytes); the oldest event made room.
    pub const QUEUE_OVERFLOW: &str = "queue_overflow";
    /// A single event the server answered 413 for.
    pub const TOO_LARGE: &str = "too_large";
    /// A batch that failed `MAX_ATTEMPTS` times.
    pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";
    /// A 400 that named no events: the whole batch was unreadable to the server.
    pub const BAD_REQUEST: &str = "bad_request";
}

/// Counts of what happened, as `stats()` shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Events accepted by `track()` and friends.
    pub recorded: u64,
    /// Events delivered: stored by the server, or recognized by it as already stored.
    pub sent: u64,
    /// Of `sent`, those the server already had (a retry after a lost answer).
    pub duplicates: u64,
    /// Events sent again after a failed attempt.
    pub retried: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Dropped events by reason, in order of first occurrence.
    pub dropped: Vec<(String, u64)>,
    /// The last delivery problem, `(code, message)`.
    pub last_error: Option<(String, String)>,
}

impl Stats {
    fn drop_n(&mut self, reason: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.dropped.iter_mut().find(|(r, _)| r == reason) {
            Some((_, c)) => *c += n,
            None => self.dropped.push((reason.to_string(), n)),
        }
    }

    /// Events dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }

    /// Events dropped for `reason`.
    pub fn dropped(&self, reason: &str) -> u64 {
        self.dropped
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

#[derive(Debug, Clone)]
struct Queued {
    seq: u64,
    json: String,
    #[allow(dead_code)] // Batches are grouped by identity once sessions are per identity.
    identity: Identity,
}

#[derive(Debug)]
struct Batch {
    events: Vec<Queued>,
    /// Failed attempts so far.
    attempts: u32,
}

/// Why sending stopped for good.
#[derive(Debug, Clone, PartialEq)]
pub struct Halt {
    pub code: String,
    pub message: String,
}

const SENT_AT_SAMPLE: &str = "2026-11-24T03:01:16.123Z";

/// The delivery engine of one client.
pub struct Pipeline {
    cfg: Config,
    authorization: String,
    /// JSON object text sent once per batch as its `context`, or empty.
    batch_context: String,
    queue: VecDeque<Queued>,
    queue_bytes: usize,
    next_seq: u64,
    /// Batches to send before the queue: retries and split halves, oldest first.
    ready: VecDeque<Batch>,
    in_flight: Option<(u64, Batch)>,
    /// No ingestion request before this time (backoff).
    not_before: f64,
    /// When the oldest queued event has waited `flushIntervalMs`.
    deadline: Option<f64>,
    /// Send without waiting until every event with a sequence number up to this one is out.
    flush_target: u64,
    shutting_down: bool,
    halted: Option<Halt>,
    overflow_warned: bool,
    stats: Stats,
    rng: u64,
    logs: Vec<Log>,
    next_request_id: u64,
}

impl Pipeline {
    /// `batch_context` is a JSON object (text) sent once per batch, or empty for none. `seed`
    /// feeds the backoff jitter.
    pub fn new(cfg: Config, batch_context: String, seed: u64) -> Result<Pipeline, Error> {
        let authorization = match cfg.key_kind {
            KeyKind::Secret => {
                let mut h = String::from("ApiKey ");
                h.push_str(&cfg.api_key);
                h
            }
            KeyKind::Public => {
                return Err(Error::config(
                    "apiKey",
                    "pk_ keys need the session handshake, which this build does not have yet; use an sk_ key on a server",
                ))
            }
        };
        Ok(Pipeline {
            cfg,
            authorization,
            batch_context,
            queue: VecDeque::new(),
            queue_bytes: 0,
            next_seq: 1,
            ready: VecDeque::new(),
            in_flight: None,
            not_before: 0.0,
            deadline: None,
            flush_target: 0,
            shutting_down: false,
            halted: None,
            overflow_warned: false,
            stats: Stats::default(),
            rng: seed | 1,
            logs: Vec::new(),
            next_request_id: 1,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn debug(&mut self, parts: &[&str]) {
        if self.cfg.debug {
            self.logs.push(Log {
                level: Level::Debug,
                message: parts.concat(),
            });
        }
    }

    fn log(&mut self, level: Level, message: String) {
        self.logs.push(Log { level, message });
    }

    /// Records an event. Fails without side effects when it is over `maxEventBytes`.
    /// Returns the sequence number given to it.
    pub fn enqueue(&mut self, message_id: &str, event: EventInput, now: f64) -> Result<u64, Error> {
        let json = encode(message_id, &event);
        let max = self.cfg.max_event_bytes as usize;
        if json.len() > max {
            return Err(Error::EventTooLarge {
                bytes: json.len(),
                max,
            });
        }
        let mut overflowed = 0u64;
        while !self.queue.is_empty()
            && (self.queue.len() >= self.cfg.max_queue_events as usize
                || self.queue_bytes + json.len() > self.cfg.max_queue_bytes as usize)
        {
            if let Some(old) = self.queue.pop_front() {
                self.queue_bytes -= old.json.len();
                overflowed += 1;
            }
        }
        if overflowed > 0 {
            self.stats.drop_n(reason::QUEUE_OVERFLOW, overflowed);
            if !self.overflow_warned {
                self.overflow_warned = true;
                self.log(
                    Level::Warn,
                    "SegOps: the event queue is full (maxQueueEvents / maxQueueBytes); the oldest events are being dropped and counted in stats().dropped.queue_overflow".to_string(),
                );
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue_bytes += json.len();
        self.queue.push_back(Queued {
            seq,
            json,
            identity: event.identity,
        });
        self.stats.recorded += 1;
        if self.deadline.is_none() {
            self.deadline = Some(now + f64::from(self.cfg.flush_interval_ms));
        }
        Ok(seq)
    }

    /// Asks for everything recorded so far to be sent without waiting for the interval.
    /// Returns the target to pass to [`Pipeline::is_flushed`].
    pub fn request_flush(&mut self) -> u64 {
        let target = self.next_seq - 1;
        self.flush_target = self.flush_target.max(target);
        target
    }

    /// Flushes everything and stops accepting the idea of waiting: used by `shutdown()`.
    pub fn begin_shutdown(&mut self) -> u64 {
        self.shutting_down = true;
        self.request_flush()
    }

    /// True when every event up to `target` was delivered or dropped, or when sending has
    /// stopped for good (the events stay queued, and [`Pipeline::halted`] says why).
    pub fn is_flushed(&self, target: u64) -> bool {
        self.halted.is_some() || self.oldest_outstanding().is_none_or(|s| s > target)
    }

    fn oldest_outstanding(&self) -> Option<u64> {
        let in_flight = self
            .in_flight
            .as_ref()
            .and_then(|(_, b)| b.events.first())
            .map(|e| e.seq);
        let ready = self
            .ready
            .iter()
            .filter_map(|b| b.events.first())
            .map(|e| e.seq)
            .min();
        let queued = self.queue.front().map(|e| e.seq);
        [in_flight, ready, queued].into_iter().flatten().min()
    }

    pub fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    /// Events waiting to be sent (queued, ready for a retry, or in flight).
    pub fn pending(&self) -> usize {
        self.queue.len()
            + self.ready.iter().map(|b| b.events.len()).sum::<usize>()
            + self.in_flight.as_ref().map_or(0, |(_, b)| b.events.len())
    }

    /// Events in the bounded queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queue_bytes
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Log lines produced since the last call.
    pub fn take_logs(&mut self) -> Vec<Log> {
        std::mem::take(&mut self.logs)
    }

    fn queue_due(&self, now: f64) -> bool {
        let Some(front) = self.queue.front() else {
            return false;
        };
        self.shutting_down
            || front.seq <= self.flush_target
            || self.queue.len() >= self.cfg.flush_at as usize
            || self.deadline.is_some_and(|d| now >= d)
    }

    /// When the edge must call [`Pipeline::poll_request`] next, absent other activity:
    /// `None` for "nothing to do until an answer or a new event".
    pub fn next_wake(&self, now: f64) -> Option<f64> {
        if self.halted.is_some() || self.in_flight.is_some() {
            return None;
        }
        if !self.ready.is_empty() || self.queue_due(now) {
            return Some(self.not_before.max(now));
        }
        self.deadline
            .filter(|_| !self.queue.is_empty())
            .map(|d| d.max(self.not_before))
    }

    fn envelope_bytes(&self) -> usize {
        let context = if self.batch_context.is_empty() {
            0
        } else {
            ",\"context\":".len() + self.batch_context.len()
        };
        "{\"events\":[]".len() + context + ",\"sent_at\":\"\"}".len() + SENT_AT_SAMPLE.len()
    }

    /// Takes the next batch from the queue: as many events as fit in `maxBatchBytes`, and
    /// always at least one.
    fn take_batch(&mut self) -> Batch {
        let budget = self.cfg.max_batch_bytes as usize;
        let mut size = self.envelope_bytes();
        let mut events = Vec::new();
        while let Some(next) = self.queue.front() {
            let add = next.json.len() + usize::from(!events.is_empty());
            if !events.is_empty() && size + add > budget {
                break;
            }
            size += add;
            if let Some(e) = self.queue.pop_front() {
                self.queue_bytes -= e.json.len();
                events.push(e);
            }
        }
        self.deadline = if self.queue.is_empty() {
            None
        } else {
            // What is left waited as long as what just left.
            self.deadline
        };
        Batch {
            events,
            attempts: 0,
        }
    }

    fn body(&self, batch: &Batch, now: f64) -> String {
        let len =
            self.envelope_bytes() + batch.events.iter().map(|e| e.json.len() + 1).sum::<usize>();
        let mut body = String::with_capacity(len);
        body.push_str("{\"events\":[");
        for (i, e) in batch.events.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&e.json);
        }
        body.push(']');
        if !self.batch_context.is_empty() {
            body.push_str(",\"context\":");
            body.push_str(&self.batch_context);
        }
        body.push_str(",\"sent_at\":\"");
        body.push_str(&format_iso8601(now));
        body.push_str("\"}");
        body
    }

    /// The next request to make now, if any. Call until it returns `None`.
    pub fn poll_request(&mut self, now: f64) -> Option<Request> {
        if self.halted.is_some() || self.in_flight.is_some() || now < self.not_before {
            return None;
        }
        let batch = match self.ready.pop_front() {
            Some(b) => b,
            None if self.queue_due(now) => self.take_batch(),
            None => return None,
        };
        let body = self.body(&batch, now);
        let id = self.next_request_id;
        self.next_request_id += 1;
        self.stats.requests += 1;
        self.stats.bytes_sent += body.len() as u64;
        if self.cfg.debug {
            let n = batch.events.len().to_string();
            let bytes = body.len().to_string();
            let attempt = (batch.attempts + 1).to_string();
            self.debug(&[
                "SegOps: sending ",
                &n,
                " events (",
                &bytes,
                " bytes), attempt ",
                &attempt,
            ]);
        }
        if batch.attempts > 0 {
            self.stats.retried += batch.events.len() as u64;
        }
        self.in_flight = Some((id, batch));
        Some(Request {
            id,
            url: self.cfg.ingest_url(),
            authorization: self.authorization.clone(),
            body,
            keepalive: false,
            timeout_ms: self.cfg.request_timeout_ms,
        })
    }

    fn next_jitter(&mut self) -> f64 {
        // xorshift64*: enough for jitter, which only has to differ between clients.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Feeds the answer to request `id`.
    pub fn on_result(&mut self, id: u64, result: HttpResult, now: f64) {
        let batch = match self.in_flight.take() {
            Some((fid, b)) if fid == id => b,
            other => {
                self.in_flight = other;
                return;
            }
        };
        let mut batch = batch;
        match classify(&result, now) {
            Outcome::Delivered {
                duplicates,
                rejected,
                ..
            } => {
                let n = batch.events.len() as u64;
                let refused = rejected
                    .iter()
                    .filter(|r| r.index < batch.events.len())
                    .count() as u64;
                for r in &rejected {
                    if r.index < batch.events.len() {
                        self.stats.drop_n(&r.code, 1);
                    }
                }
                if refused > 0 {
                    self.log(Level::Warn, {
                        let mut m = String::from("SegOps: the server rejected ");
                        m.push_str(&refused.to_string());
                        m.push_str(" event(s); see stats().dropped");
                        m
                    });
                }
                self.stats.sent += n - refused;
                self.stats.duplicates += duplicates;
                self.debug(&["SegOps: delivered"]);
            }
            Outcome::Retry { after_ms, reason } => {
                batch.attempts += 1;
                if batch.attempts >= MAX_ATTEMPTS {
                    let n = batch.events.len() as u64;
                    self.stats.drop_n(reason::RETRIES_EXHAUSTED, n);
                    let mut m = String::from("SegOps: dropped ");
                    m.push_str(&n.to_string());
                    m.push_str(" event(s) after ");
                    m.push_str(&MAX_ATTEMPTS.to_string());
                    m.push_str(" attempts; last failure: ");
                    m.push_str(&reason);
                    self.stats.last_error = Some(("retries_exhausted".into(), m.clone()));
                    self.log(Level::Warn, m);
                } else {
                    let jitter = self.next_jitter();
                    let wait = backoff_ms(batch.attempts, after_ms, jitter);
                    self.not_before = now + wait;
                    self.stats.last_error = Some(("delivery_retry".into(), reason.clone()));
                    if self.cfg.debug {
                        let w = (wait.round() as u64).to_string();
                        self.debug(&["SegOps: ", &reason, "; retrying in ", &w, " ms"]);
                    }
                    self.ready.push_front(batch);
                }
            }
            Outcome::Invalid { rejected } => {
                if rejected.is_empty() {
                    let n = batch.events.len() as u64;
                    self.stats.drop_n(reason::BAD_REQUEST, n);
                    self.log(
                        Level::Error,
                        "SegOps: the server could not read a batch (HTTP 400); its events were dropped".into(),
                    );
                } else {
                    let mut keep = Vec::new();
                    for (i, e) in batch.events.into_iter().enumerate() {
                        match rejected.iter().find(|r| r.index == i) {
                            Some(r) => self.stats.drop_n(&r.code, 1),
                            None => keep.push(e),
                        }
                    }
                    if !keep.is_empty() {
                        self.ready.push_front(Batch {
                            events: keep,
                            attempts: batch.attempts,
                        });
                    }
                }
            }
            Outcome::TooLarge => {
                if batch.events.len() <= 1 {
                    self.stats
                        .drop_n(reason::TOO_LARGE, batch.events.len() as u64);
                    self.log(
                        Level::Warn,
                        "SegOps: the server refused an event as too large (HTTP 413); it was dropped".into(),
                    );
                } else {
                    let tail = batch.events.split_off(batch.events.len() / 2);
                    self.ready.push_front(Batch {
                        events: tail,
                        attempts: batch.attempts,
                    });
                    self.ready.push_front(Batch {
                        events: batch.events,
                        attempts: batch.attempts,
                    });
                }
            }
            Outcome::AuthFailed {
                status,
                code,
                message,
            } => {
                let mut m = String::from("SegOps: the API refused the secret key (HTTP ");
                m.push_str(&status.to_string());
                if !code.is_empty() {
                    m.push_str(", ");
                    m.push_str(&code);
                }
                m.push_str("): it is revoked or wrong. Sending stopped; events stay queued.");
                if !message.is_empty() {
                    m.push(' ');
                    m.push_str(&message);
                }
                self.log(Level::Error, m.clone());
                let code = if code.is_empty() {
                    "unauthorized".to_string()
                } else {
                    code
                };
                self.stats.last_error = Some((code.clone(), m.clone()));
                self.halted = Some(Halt { code, message: m });
                self.ready.push_front(batch);
            }
            Outcome::Refused { status, code } => {
                let mut r = String::from("http_");
                r.push_str(&status.to_string());
                let n = batch.events.len() as u64;
                self.stats.drop_n(&r, n);
                let mut m = String::from("SegOps: the API refused a batch with HTTP ");
                m.push_str(&status.to_string());
                if !code.is_empty() {
                    m.push_str(" (");
                    m.push_str(&code);
                    m.push(')');
                }
                m.push_str("; its events were dropped. Is apiUrl right?");
                self.stats.last_error = Some((r, m.clone()));
                self.log(Level::Error, m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigInput;
    use crate::event::EventKind;
    use crate::json::{parse, Value};

    fn config(f: impl FnOnce(&mut ConfigInput)) -> Config {
        let mut i = ConfigInput {
            api_url: Some("http://api.test".into()),
            api_key: Some("sk_live_test".into()),
            ..Default::default()
        };
        f(&mut i);
        Config::from_input(i).unwrap()
    }

    fn pipeline(f: impl FnOnce(&mut ConfigInput)) -> Pipeline {
        Pipeline::new(config(f), r#"{"library":{"name":"t"}}"#.into(), 42).unwrap()
    }

    fn ev(name: &str) -> EventInput {
        EventInput {
            kind: EventKind::Track,
            event_type: name.into(),
            identity: Identity::User {
                user_id: "u1".into(),
                anonymous_id: None,
            },
            timestamp: "2026-11-24T00:00:00.000Z".into(),
            properties: Some(r#"{"k":1}"#.into()),
            traits: None,
            context: None,
        }
    }

    fn ok(accepted: usize) -> HttpResult {
        HttpResult::Response {
            status: 200,
            retry_after: None,
            body: format!(r#"{{"accepted":{accepted},"duplicates":0,"rejected":[]}}"#),
        }
    }

    fn status(s: u16, body: &str) -> HttpResult {
        HttpResult::Response {
            status: s,
            retry_after: None,
            body: body.into(),
        }
    }

    fn ids(req: &Request) -> Vec<String> {
        let v = parse(&req.body).unwrap();
        v.get("events")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .map(|e| {
                e.get("message_id")
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn record(p: &mut Pipeline, n: usize, now: f64) {
        for i in 0..n {
            let id = format!("m{}", p.stats().recorded + 1);
            p.enqueue(&id, ev(&format!("e{i}")), now).unwrap();
        }
    }

    #[test]
    fn sends_when_flush_at_is_reached() {
        let mut p = pipeline(|c| c.flush_at = Some(3.0));
        record(&mut p, 2, 0.0);
        assert_eq!(p.poll_request(0.0), None);
        record(&mut p, 1, 0.0);
        let r = p.poll_request(0.0).unwrap();
        assert_eq!(ids(&r), ["m1", "m2", "m3"]);
        assert_eq!(r.url, "http://api.test/api/ingestion/track/");
        assert_eq!(r.authorization, "ApiKey sk_live_test");
        assert!(!r.keepalive);
        assert_eq!(r.timeout_ms, 10_000);
        let body = parse(&r.body).unwrap();
        assert_eq!(
            body.get("context")
                .and_then(|c| c.get("library"))
                .and_then(|l| l.get("name"))
                .and_then(Value::as_str),
            Some("t")
        );
        assert!(body.get("sent_at").and_then(Value::as_str).is_some());
        assert_eq!(p.stats().requests, 1);
        assert_eq!(p.stats().bytes_sent, r.body.len() as u64);
    }

    #[test]
    fn sends_when_the_interval_is_up() {
        let mut p = pipeline(|c| c.flush_interval_ms = Some(500.0));
        record(&mut p, 1, 1_000.0);
        assert_eq!(p.poll_request(1_000.0), None);
        assert_eq!(p.next_wake(1_000.0), Some(1_500.0));
        assert_eq!(p.poll_request(1_499.0), None);
        let r = p.poll_request(1_500.0).unwrap();
        assert_eq!(ids(&r), ["m1"]);
        assert_eq!(p.next_wake(1_500.0), None, "nothing to do while in flight");
        p.on_result(r.id, ok(1), 1_510.0);
        assert_eq!(p.next_wake(1_510.0), None, "idle when empty");
    }

    #[test]
    fn one_batch_in_flight_and_a_burst_goes_in_few_batches() {
        let mut p = pipeline(|_| {});
        record(&mut p, 1_000, 0.0);
        let r = p.poll_request(0.0).unwrap();
        assert_eq!(ids(&r).len(), 1_000, "a burst fits one 512 KiB batch");
        assert_eq!(p.poll_request(0.0), None, "one in flight");
        record(&mut p, 5, 1.0);
        assert_eq!(p.poll_request(1.0), None, "still one in flight");
        p.on_result(r.id, ok(1_000), 2.0);
        assert_eq!(p.stats().sent, 1_000);
        // The 5 newer events wait for the interval (fewer than flushAt).
        assert_eq!(p.poll_request(2.0), None);
        assert_eq!(p.next_wake(2.0), Some(2_001.0));
    }

    #[test]
    fn batches_respect_the_byte_limit() {
        let mut p = pipeline(|c| {
            c.max_batch_bytes = Some(2_048.0);
            c.flush_at = Some(1.0);
        });
        record(&mut p, 40, 0.0);
        let mut seen = Vec::new();
        let mut now = 0.0;
        while let Some(r) = p.poll_request(now) {
            assert!(r.body.len() <= 2_048, "{}", r.body.len());
            let got = ids(&r);
            assert!(!got.is_empty());
            seen.extend(got.clone());
            now += 1.0;
            p.on_result(r.id, ok(got.len()), now);
        }
        let expected: Vec<String> = (1..=40).map(|i| format!("m{i}")).collect();
        assert_eq!(seen, expected, "each event once, in order");
        assert!(p.stats().requests > 1);
        assert!(p.is_flushed(40));
    }

    #[test]
    fn flush_sends_at_once_and_settles() {
        let mut p = pipeline(|_| {});
        record(&mut p, 2, 0.0);
        let target = p.request_flush();
        assert!(!p.is_flushed(target));
        let r = p.poll_request(0.0).unwrap();
        record(&mut p, 1, 0.0); // recorded after flush(): not waited for
        assert!(!p.is_flushed(target));
        p.on_result(r.id, ok(2), 1.0);
        assert!(p.is_flushed(target));
        assert!(!p.is_flushed(target + 1));
    }

    #[test]
    fn retries_keep_message_ids_and_back_off() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 3, 0.0);
        let first = p.poll_request(0.0).unwrap();
        p.on_result(first.id, status(503, ""), 10.0);
        assert_eq!(p.stats().last_error.as_ref().unwrap().0, "delivery_retry");
        let wake = p.next_wake(10.0).unwrap();
        assert!((10.0..10.0 + 1_000.0).contains(&wake), "{wake}");
        assert_eq!(p.poll_request(wake - 0.5), None);
        let second = p.poll_request(wake).unwrap();
        assert_eq!(ids(&first), ids(&second));
        assert_eq!(p.stats().retried, 3);
        p.on_result(second.id, ok(3), wake + 1.0);
        assert_eq!(p.stats().sent, 3);
        assert_eq!(p.stats().dropped_total(), 0);
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 1, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(
            r.id,
            HttpResult::Response {
                status: 429,
                retry_after: Some("5".into()),
                body: String::new(),
            },
            100.0,
        );
        assert_eq!(p.next_wake(100.0), Some(5_100.0));
    }

    #[test]
    fn gives_up_after_max_attempts_and_counts() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 2, 0.0);
        let target = p.request_flush();
        let mut now = 0.0;
        let mut attempts = 0;
        while let Some(r) = p.poll_request(now) {
            attempts += 1;
            p.on_result(r.id, HttpResult::Network("offline".into()), now);
            now = p.next_wake(now).unwrap_or(now);
            assert!(attempts <= MAX_ATTEMPTS);
        }
        assert_eq!(attempts, MAX_ATTEMPTS);
        assert_eq!(p.stats().dropped(reason::RETRIES_EXHAUSTED), 2);
        assert!(p.is_flushed(target));
        assert_eq!(
            p.take_logs()
                .iter()
                .filter(|l| l.level == Level::Warn)
                .count(),
            1
        );
    }

    #[test]
    fn too_large_splits_then_drops_single_events() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 4, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(r.id, status(413, ""), 1.0);
        let a = p.poll_request(1.0).unwrap();
        assert_eq!(ids(&a), ["m1", "m2"]);
        p.on_result(a.id, ok(2), 2.0);
        let b = p.poll_request(2.0).unwrap();
        assert_eq!(ids(&b), ["m3", "m4"]);
        p.on_result(b.id, status(413, ""), 3.0);
        let c = p.poll_request(3.0).unwrap();
        assert_eq!(ids(&c), ["m3"]);
        p.on_result(c.id, status(413, ""), 4.0);
        assert_eq!(p.stats().dropped(reason::TOO_LARGE), 1);
        let d = p.poll_request(4.0).unwrap();
        assert_eq!(ids(&d), ["m4"]);
        p.on_result(d.id, ok(1), 5.0);
        assert_eq!(p.stats().sent, 3);
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn bad_request_drops_only_the_named_events() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 3, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(
            r.id,
            status(
                400,
                r#"{"code":"invalid_request","rejected":[{"index":1,"code":"invalid_event"}]}"#,
            ),
            1.0,
        );
        let again = p.poll_request(1.0).unwrap();
        assert_eq!(ids(&again), ["m1", "m3"]);
        p.on_result(
            again.id,
            status(400, r#"{"code":"invalid_json","message":"?"}"#),
            2.0,
        );
        assert_eq!(p.stats().dropped("invalid_event"), 1);
        assert_eq!(p.stats().dropped(reason::BAD_REQUEST), 2);
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn per_event_rejections_in_a_2xx_are_counted_by_code() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 3, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(
            r.id,
            status(
                200,
                r#"{"accepted":1,"duplicates":1,"rejected":[{"index":2,"code":"missing_identity","message":"x"},{"index":99,"code":"bogus"}]}"#,
            ),
            1.0,
        );
        assert_eq!(p.stats().sent, 2);
        assert_eq!(p.stats().duplicates, 1);
        assert_eq!(p.stats().dropped("missing_identity"), 1);
        assert_eq!(
            p.stats().dropped("bogus"),
            0,
            "out-of-range indices are ignored"
        );
    }

    #[test]
    fn a_refused_key_stops_sending_keeps_the_queue_and_reports_once() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 2, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(
            r.id,
            status(401, r#"{"code":"api_key_revoked","message":"gone"}"#),
            1.0,
        );
        let logs = p.take_logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].level, Level::Error);
        assert!(
            logs[0].message.contains("api_key_revoked"),
            "{}",
            logs[0].message
        );
        assert_eq!(p.halted().unwrap().code, "api_key_revoked");
        record(&mut p, 3, 2.0);
        let target = p.request_flush();
        assert!(p.is_flushed(target), "flush() does not hang on a dead key");
        assert_eq!(p.poll_request(1e12), None, "no hot loop");
        assert_eq!(p.next_wake(3.0), None);
        assert_eq!(p.pending(), 5);
        assert_eq!(p.stats().dropped_total(), 0);
        assert!(p.take_logs().is_empty());
    }

    #[test]
    fn other_client_errors_drop_the_batch() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 2, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(
            r.id,
            status(404, r#"{"code":"not_found","message":"?"}"#),
            1.0,
        );
        assert_eq!(p.stats().dropped("http_404"), 2);
        assert_eq!(p.take_logs()[0].level, Level::Error);
    }

    #[test]
    fn overflow_drops_the_oldest_by_count_and_by_bytes() {
        let mut p = pipeline(|c| c.max_queue_events = Some(3.0));
        record(&mut p, 5, 0.0);
        assert_eq!(p.queued(), 3);
        assert_eq!(p.stats().dropped(reason::QUEUE_OVERFLOW), 2);
        assert_eq!(p.take_logs().len(), 1, "warned once");
        p.request_flush();
        let r = p.poll_request(0.0).unwrap();
        assert_eq!(ids(&r), ["m3", "m4", "m5"]);

        let one = encode("m1", &ev("e0")).len();
        let mut p = pipeline(|c| {
            c.max_queue_bytes = Some((one * 2 + one / 2) as f64);
            c.max_event_bytes = Some(256.0);
            assert!(one < 256 && one * 2 + one / 2 >= 256);
        });
        record(&mut p, 4, 0.0);
        assert_eq!(p.queued(), 2);
        assert!(p.queued_bytes() <= one * 2 + one / 2);
        assert_eq!(p.stats().dropped(reason::QUEUE_OVERFLOW), 2);
    }

    #[test]
    fn an_oversized_event_is_refused_and_nothing_is_lost() {
        let mut p = pipeline(|c| c.max_event_bytes = Some(300.0));
        record(&mut p, 1, 0.0);
        let mut big = ev("big");
        big.properties = Some(format!(r#"{{"s":"{}"}}"#, "x".repeat(400)));
        let e = p.enqueue("m2", big, 0.0).unwrap_err();
        assert_eq!(e.code(), "event_too_large");
        assert_eq!(p.queued(), 1);
        assert_eq!(p.stats().recorded, 1);
    }

    #[test]
    fn stale_answers_are_ignored() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 1, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(r.id + 7, ok(1), 1.0);
        assert_eq!(p.stats().sent, 0);
        assert_eq!(p.poll_request(1.0), None, "still in flight");
        p.on_result(r.id, ok(1), 2.0);
        assert_eq!(p.stats().sent, 1);
    }

    #[test]
    fn shutdown_sends_without_waiting() {
        let mut p = pipeline(|_| {});
        record(&mut p, 1, 0.0);
        let target = p.begin_shutdown();
        let r = p.poll_request(0.0).unwrap();
        p.on_result(r.id, ok(1), 1.0);
        assert!(p.is_flushed(target));
    }

    #[test]
    fn debug_logs_only_when_asked() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 1, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(r.id, ok(1), 1.0);
        assert!(p.take_logs().is_empty());
        let mut p = pipeline(|c| {
            c.flush_at = Some(1.0);
            c.debug = Some(true);
        });
        record(&mut p, 1, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(r.id, ok(1), 1.0);
        let logs = p.take_logs();
        assert!(logs.iter().all(|l| l.level == Level::Debug));
        assert!(logs[0].message.contains("sending 1 events"), "{logs:?}");
    }
}
