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

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::auth::{mint_body, Session, SessionKey, Signature, Transition};
use crate::config::{Config, KeyKind};
use crate::delivery::{backoff_ms, classify, HttpResult, Outcome, MAX_ATTEMPTS};
use crate::error::Error;
use crate::event::{encode, EventInput, Identity};
use crate::privacy::{cap_json, Consent, Cuts};
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
    /// Events of an earlier identity whose session can no longer be minted (its signature
    /// went stale or was refused after the app moved on to another identity).
    pub const STALE_IDENTITY: &str = "stale_identity";
    /// Consent was denied: events waiting when it was, and every event recorded while it is.
    pub const CONSENT_DENIED: &str = "consent_denied";
    /// The app's `beforeSend` returned `null` for the event.
    pub const BEFORE_SEND: &str = "before_send";
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
    /// Session tokens requested (public keys): first mints, renewals and re-mints.
    pub mints: u64,
    /// Of `mints`, those made because ingestion answered 401 to a token.
    pub remints: u64,
    /// Requests sent with `keepalive` as the page was hidden.
    pub keepalive_requests: u64,
    /// Events saved by an earlier page of this origin and taken up by this one.
    pub restored: u64,
    /// Events the last snapshot for the next page load could not hold (over its bound).
    pub unsaved: u64,
    /// Recorded events that had values cut by the caps on properties, traits and context
    /// ([`crate::privacy`]): they were queued, shortened.
    pub truncated: u64,
    /// The values cut, by cap.
    pub truncated_by: Cuts,
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
    identity: Identity,
}

#[derive(Debug)]
struct Batch {
    events: Vec<Queued>,
    /// Failed attempts so far.
    attempts: u32,
    /// A 401 already caused a re-mint for this batch (public keys): the next one is final.
    reminted: bool,
}

impl Batch {
    fn new(events: Vec<Queued>, attempts: u32, reminted: bool) -> Batch {
        Batch {
            events,
            attempts,
            reminted,
        }
    }
}

/// Why sending stopped for good.
#[derive(Debug, Clone, PartialEq)]
pub struct Halt {
    pub code: String,
    pub message: String,
}

/// How requests are authorized.
enum Credentials {
    /// `Authorization: ApiKey sk_...` on every request; a refusal stops all sending.
    Secret {
        header: String,
        halted: Option<Halt>,
    },
    /// Session tokens per identity, minted with `Authorization: ApiKey pk_...`.
    Public {
        key_header: String,
        sessions: Vec<Session>,
        /// The identity of the latest recorded event: the one kept renewed.
        current: Option<usize>,
    },
}

const SENT_AT_SAMPLE: &str = "2026-11-24T03:01:16.123Z";

/// Browsers cap the bodies of all keepalive requests in flight from one page at 64 KiB
/// together (Fetch standard, "keepalive"); a request over the cap fails outright. Stay under it
/// with room for headers' accounting differences, as Sentry does with 60,000.
pub const KEEPALIVE_BUDGET_BYTES: usize = 60_000;
/// Bound on the snapshot saved for the next page load: localStorage gives an origin about
/// 5 MB (in UTF-16 in some browsers), shared with the app.
pub const MAX_PERSIST_BYTES: usize = 1024 * 1024;

/// The delivery engine of one client.
pub struct Pipeline {
    cfg: Config,
    /// What may be sent and kept: see [`Consent`]. Starts granted; the edge sets the start
    /// state before recording anything.
    consent: Consent,
    credentials: Credentials,
    /// JSON object text sent once per batch as its `context`, or empty.
    batch_context: String,
    queue: VecDeque<Queued>,
    queue_bytes: usize,
    next_seq: u64,
    /// Batches to send before the queue: retries and split halves, oldest first.
    ready: VecDeque<Batch>,
    /// The ingestion request in flight, with its batch and (public keys) session index.
    in_flight: Option<(u64, Batch, Option<usize>)>,
    /// Keepalive requests sent as the page was hidden, with their body sizes.
    keepalive: Vec<(u64, Batch, Option<usize>, usize)>,
    /// No ingestion request before this time (backoff).
    not_before: f64,
    /// When the oldest queued event has waited `flushIntervalMs`.
    deadline: Option<f64>,
    /// Send without waiting until every event with a sequence number up to this one is out.
    flush_target: u64,
    shutting_down: bool,
    overflow_warned: bool,
    truncation_warned: bool,
    stats: Stats,
    rng: u64,
    logs: Vec<Log>,
    next_request_id: u64,
}

/// The source of the next ingestion batch.
enum Source {
    Ready,
    Queue,
}

impl Pipeline {
    /// `batch_context` is a JSON object (text) sent once per batch, or empty for none. `seed`
    /// feeds the backoff jitter.
    pub fn new(cfg: Config, batch_context: String, seed: u64) -> Pipeline {
        let mut header = String::from("ApiKey ");
        header.push_str(&cfg.api_key);
        let credentials = match cfg.key_kind {
            KeyKind::Secret => Credentials::Secret {
                header,
                halted: None,
            },
            KeyKind::Public => Credentials::Public {
                key_header: header,
                sessions: Vec::new(),
                current: None,
            },
        };
        Pipeline {
            cfg,
            consent: Consent::Granted,
            credentials,
            batch_context,
            queue: VecDeque::new(),
            queue_bytes: 0,
            next_seq: 1,
            ready: VecDeque::new(),
            in_flight: None,
            keepalive: Vec::new(),
            not_before: 0.0,
            deadline: None,
            flush_target: 0,
            shutting_down: false,
            overflow_warned: false,
            truncation_warned: false,
            stats: Stats::default(),
            rng: seed | 1,
            logs: Vec::new(),
            next_request_id: 1,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// Moves to another consent state.
    ///
    /// - To `Denied`: every waiting event (queued, or waiting for a retry) is discarded and
    ///   counted under [`reason::CONSENT_DENIED`]; so is each later one, and a batch already in
    ///   flight is not sent again whatever its answer.
    /// - To `Pending`: sending stops; recorded events wait in memory, within the queue's bounds.
    /// - To `Granted`: sending resumes, and events buffered while pending go at once (the
    ///   visitor has just answered; they may have waited a while).
    pub fn set_consent(&mut self, consent: Consent) {
        let was = self.consent;
        self.consent = consent;
        match consent {
            Consent::Denied => self.discard_waiting(reason::CONSENT_DENIED),
            Consent::Granted if was == Consent::Pending => {
                self.request_flush();
            }
            Consent::Granted | Consent::Pending => {}
        }
        if was != consent {
            self.debug(&["SegOps: consent ", consent.as_str()]);
        }
    }

    /// Counts an event that was recorded and dropped before it was queued (by the app's
    /// `beforeSend`, for one).
    pub fn discard(&mut self, why: &str) {
        self.stats.recorded += 1;
        self.stats.drop_n(why, 1);
    }

    /// Drops every event waiting in the queue or for a retry, counted under `why`.
    fn discard_waiting(&mut self, why: &str) {
        let n = self.queue.len() + self.ready.iter().map(|b| b.events.len()).sum::<usize>();
        self.queue.clear();
        self.ready.clear();
        self.queue_bytes = 0;
        self.deadline = None;
        self.stats.drop_n(why, n as u64);
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

    /// Records an event. Its properties, traits and context are cut to the caps of
    /// [`crate::privacy`] first; then it fails without side effects when it is still over
    /// `maxEventBytes`. `signature` is the app's signature for a user identity (public keys
    /// that require one). While consent is denied the event is counted and discarded. Returns
    /// the sequence number given to it.
    pub fn enqueue(
        &mut self,
        message_id: &str,
        mut event: EventInput,
        signature: Option<Signature>,
        now: f64,
    ) -> Result<u64, Error> {
        let mut cuts = Cuts::default();
        for field in [&mut event.properties, &mut event.traits, &mut event.context] {
            if let Some(text) = field.as_deref() {
                if let alloc::borrow::Cow::Owned(capped) = cap_json(text, &mut cuts) {
                    *field = Some(capped);
                }
            }
        }
        let json = encode(message_id, &event);
        let max = self.cfg.max_event_bytes as usize;
        if json.len() > max {
            return Err(Error::EventTooLarge {
                bytes: json.len(),
                max,
            });
        }
        if cuts.any() {
            self.stats.truncated += 1;
            self.stats.truncated_by.add(&cuts);
            if !self.truncation_warned {
                self.truncation_warned = true;
                self.log(
                    Level::Warn,
                    "SegOps: an event's properties went over the caps (10 levels deep, 256 keys or items, 8,192 characters a string) and were shortened; see stats().truncated".to_string(),
                );
            }
        }
        if self.consent == Consent::Denied {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.discard(reason::CONSENT_DENIED);
            return Ok(seq);
        }
        if let Credentials::Public {
            sessions, current, ..
        } = &mut self.credentials
        {
            let i = session_index(sessions, &event.identity);
            let session = &mut sessions[i];
            session.last_activity = now;
            if let (Some(sig), false) = (signature, session.key.anonymous) {
                session.set_signature(sig);
            }
            *current = Some(i);
        }
        self.stats.recorded += 1;
        Ok(self.push(json, event.identity, now))
    }

    /// Drops the oldest queued events until `events` more events of `bytes` more bytes fit in
    /// the queue's bounds, counting them as `queue_overflow`.
    fn make_room(&mut self, events: usize, bytes: usize) {
        let mut overflowed = 0u64;
        while !self.queue.is_empty()
            && (self.queue.len() + events > self.cfg.max_queue_events as usize
                || self.queue_bytes + bytes > self.cfg.max_queue_bytes as usize)
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
    }

    /// Appends a serialized event, making room by dropping the oldest when the queue is full.
    fn push(&mut self, json: String, identity: Identity, now: f64) -> u64 {
        self.make_room(1, json.len());
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue_bytes += json.len();
        self.queue.push_back(Queued {
            seq,
            json,
            identity,
        });
        if self.deadline.is_none() {
            self.deadline = Some(now + f64::from(self.cfg.flush_interval_ms));
        }
        seq
    }

    /// Asks for everything recorded so far to be sent without waiting for the interval.
    /// Returns the target to pass to [`Pipeline::is_flushed`].
    pub fn request_flush(&mut self) -> u64 {
        let target = self.next_seq - 1;
        self.flush_target = self.flush_target.max(target);
        target
    }

    /// Flushes everything without waiting for intervals: used by `shutdown()`.
    pub fn begin_shutdown(&mut self) -> u64 {
        self.shutting_down = true;
        self.request_flush()
    }

    /// True when every event up to `target` was delivered or dropped, or can make no progress
    /// (its key or session was refused: the events stay queued, and [`Pipeline::halted`] or
    /// the stats say why).
    pub fn is_flushed(&self, target: u64) -> bool {
        // Without consent nothing can be sent: a flush() must not wait for a choice.
        if self.consent != Consent::Granted {
            return true;
        }
        if let Credentials::Secret {
            halted: Some(_), ..
        } = &self.credentials
        {
            return true;
        }
        let live = |e: &Queued| e.seq <= target && !self.refused(&e.identity);
        !(self
            .in_flight
            .as_ref()
            .is_some_and(|(_, b, _)| b.events.iter().any(live))
            || self
                .keepalive
                .iter()
                .any(|(_, b, _, _)| b.events.iter().any(live))
            || self.ready.iter().any(|b| b.events.iter().any(live))
            || self.queue.iter().take_while(|e| e.seq <= target).any(live))
    }

    /// True when the identity's session was refused (public keys).
    fn refused(&self, identity: &Identity) -> bool {
        match &self.credentials {
            Credentials::Public { sessions, .. } => sessions
                .iter()
                .any(|s| s.is_failed() && s.key.matches(identity)),
            Credentials::Secret { .. } => false,
        }
    }

    /// Why sending stopped: the secret key was refused, or the current identity's session.
    pub fn halted(&self) -> Option<Halt> {
        match &self.credentials {
            Credentials::Secret { halted, .. } => halted.clone(),
            Credentials::Public {
                sessions, current, ..
            } => current
                .and_then(|i| sessions.get(i))
                .and_then(|s| match &s.state {
                    crate::auth::State::Failed { code, message } => Some(Halt {
                        code: code.clone(),
                        message: message.clone(),
                    }),
                    _ => None,
                }),
        }
    }

    /// The current identity's token and the milliseconds it has left (public keys).
    pub fn token_remaining_ms(&self, now: f64) -> Option<f64> {
        match &self.credentials {
            Credentials::Public {
                sessions, current, ..
            } => current
                .and_then(|i| sessions.get(i))
                .and_then(|s| match &s.state {
                    crate::auth::State::Valid { expires_at, .. } if now < *expires_at => {
                        Some(expires_at - now)
                    }
                    _ => None,
                }),
            Credentials::Secret { .. } => None,
        }
    }

    /// Events waiting to be sent (queued, ready for a retry, or in flight).
    pub fn pending(&self) -> usize {
        self.queue.len()
            + self.ready.iter().map(|b| b.events.len()).sum::<usize>()
            + self
                .in_flight
                .as_ref()
                .map_or(0, |(_, b, _)| b.events.len())
            + self
                .keepalive
                .iter()
                .map(|(_, b, _, _)| b.events.len())
                .sum::<usize>()
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
        core::mem::take(&mut self.logs)
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

    /// What the next ingestion batch would be: its source and (public keys) the index of the
    /// session it needs. `None` when nothing is due, or everything due is refused.
    fn candidate(&self, now: f64) -> Option<(Source, Option<usize>)> {
        let sessions = match &self.credentials {
            Credentials::Secret {
                halted: Some(_), ..
            } => return None,
            Credentials::Secret { .. } => {
                return if !self.ready.is_empty() {
                    Some((Source::Ready, None))
                } else if self.queue_due(now) {
                    Some((Source::Queue, None))
                } else {
                    None
                };
            }
            Credentials::Public { sessions, .. } => sessions,
        };
        let index = |identity: &Identity| sessions.iter().position(|s| s.key.matches(identity));
        if let Some(b) = self.ready.front() {
            if let Some(i) = b.events.first().and_then(|e| index(&e.identity)) {
                return Some((Source::Ready, Some(i)));
            }
        }
        if !self.queue_due(now) {
            return None;
        }
        self.queue
            .iter()
            .filter_map(|e| index(&e.identity))
            .find(|&i| !sessions[i].is_failed())
            .map(|i| (Source::Queue, Some(i)))
    }

    /// When the edge must call [`Pipeline::poll_request`] next, absent other activity:
    /// `None` for "nothing to do until an answer or a new event".
    pub fn next_wake(&self, now: f64) -> Option<f64> {
        if self.consent != Consent::Granted {
            return None;
        }
        let mut wake: Option<f64> = None;
        let mut consider = |t: f64| wake = Some(wake.map_or(t, |w: f64| w.min(t)));
        if self.in_flight.is_none() {
            match self.candidate(now) {
                Some((_, None)) => consider(self.not_before.max(now)),
                Some((_, Some(i))) => {
                    if let Credentials::Public { sessions, .. } = &self.credentials {
                        let s = &sessions[i];
                        if s.token(now).is_some() {
                            consider(self.not_before.max(now));
                        } else if s.can_mint(now) {
                            consider(now);
                        } else if let Some(until) = s.backoff_until() {
                            consider(until);
                        }
                    }
                }
                None if !self.queue_due(now) && !self.queue.is_empty() => {
                    if let Some(d) = self.deadline {
                        consider(d.max(self.not_before));
                    }
                }
                None => {}
            }
        }
        if let Credentials::Public {
            sessions,
            current: Some(i),
            ..
        } = &self.credentials
        {
            if let Some(t) = sessions.get(*i).and_then(|s| s.refresh_wake(now)) {
                consider(t);
            }
        }
        wake
    }

    fn envelope_bytes(&self) -> usize {
        let context = if self.batch_context.is_empty() {
            0
        } else {
            ",\"context\":".len() + self.batch_context.len()
        };
        "{\"events\":[]".len() + context + ",\"sent_at\":\"\"}".len() + SENT_AT_SAMPLE.len()
    }

    /// Takes the next batch from the queue: the oldest events (of one identity, for public
    /// keys) that fit in `maxBatchBytes`, and always at least one.
    fn take_batch(&mut self, session: Option<&SessionKey>) -> Batch {
        self.take_batch_within(session, self.cfg.max_batch_bytes as usize, true)
    }

    /// [`Pipeline::take_batch`] with a body budget; with `!at_least_one`, an empty batch when
    /// the first event does not fit.
    fn take_batch_within(
        &mut self,
        session: Option<&SessionKey>,
        budget: usize,
        at_least_one: bool,
    ) -> Batch {
        let mut size = self.envelope_bytes();
        let mut events = Vec::new();
        let mut skipped = VecDeque::new();
        while let Some(next) = self.queue.pop_front() {
            if session.is_some_and(|k| !k.matches(&next.identity)) {
                skipped.push_back(next);
                continue;
            }
            let add = next.json.len() + usize::from(!events.is_empty());
            if (!events.is_empty() || !at_least_one) && size + add > budget {
                self.queue.push_front(next);
                break;
            }
            size += add;
            self.queue_bytes -= next.json.len();
            events.push(next);
        }
        if !skipped.is_empty() {
            skipped.append(&mut self.queue);
            self.queue = skipped;
        }
        if self.queue.is_empty() {
            self.deadline = None;
        }
        // Otherwise what is left waited as long as what just left: keep the deadline.
        Batch::new(events, 0, false)
    }

    /// Puts a batch's events back in the queue, in recording order (a merge of two ordered
    /// runs: no sort, whose code would weigh several kilobytes in the wasm).
    fn requeue(&mut self, batch: Batch) {
        let mut merged = VecDeque::with_capacity(self.queue.len() + batch.events.len());
        let mut back = batch.events.into_iter().peekable();
        while let Some(q) = self.queue.pop_front() {
            while let Some(b) = back.next_if(|b| b.seq < q.seq) {
                self.queue_bytes += b.json.len();
                merged.push_back(b);
            }
            merged.push_back(q);
        }
        for b in back {
            self.queue_bytes += b.json.len();
            merged.push_back(b);
        }
        self.queue = merged;
        // Events coming back from a batch count against the bounds like any others.
        self.make_room(0, 0);
    }

    /// Drops every waiting event of the session at `index`, counted under `why`.
    fn drop_identity(&mut self, index: usize, why: &str) {
        let Credentials::Public { sessions, .. } = &self.credentials else {
            return;
        };
        let key = sessions[index].key.clone();
        let before = self.queue.len();
        let mut bytes = 0;
        self.queue.retain(|e| {
            let keep = !key.matches(&e.identity);
            if !keep {
                bytes += e.json.len();
            }
            keep
        });
        self.queue_bytes -= bytes;
        let mut n = (before - self.queue.len()) as u64;
        self.ready.retain(|b| {
            let keep = !b.events.first().is_some_and(|e| key.matches(&e.identity));
            if !keep {
                n += b.events.len() as u64;
            }
            keep
        });
        self.stats.drop_n(why, n);
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

    fn new_request_id(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// A mint request for the session at `index`.
    fn mint_request(&mut self, index: usize, now: f64) -> Option<Request> {
        let id = self.new_request_id();
        let Credentials::Public {
            key_header,
            sessions,
            ..
        } = &mut self.credentials
        else {
            return None;
        };
        let session = sessions.get_mut(index)?;
        session.start_mint(id, now);
        let body = mint_body(&session.key, session.signature.as_ref());
        let authorization = key_header.clone();
        self.stats.mints += 1;
        self.stats.requests += 1;
        self.stats.bytes_sent += body.len() as u64;
        self.debug(&["SegOps: requesting a session token"]);
        Some(Request {
            id,
            url: self.cfg.session_url(),
            authorization,
            body,
            keepalive: false,
            timeout_ms: self.cfg.request_timeout_ms,
        })
    }

    /// The next request to make now, if any. Call until it returns `None`.
    pub fn poll_request(&mut self, now: f64) -> Option<Request> {
        // Without consent, no request at all: a session mint would send the visitor's id too.
        if self.consent != Consent::Granted {
            return None;
        }
        // Renew the current identity's token ahead of time, alongside any ingestion.
        if let Credentials::Public {
            sessions,
            current: Some(i),
            ..
        } = &self.credentials
        {
            let i = *i;
            if sessions.get(i).is_some_and(|s| s.wants_refresh(now)) {
                return self.mint_request(i, now);
            }
        }
        if self.in_flight.is_some() || now < self.not_before {
            return None;
        }
        let (source, session) = self.candidate(now)?;
        let authorization = match (&self.credentials, session) {
            (Credentials::Secret { header, .. }, _) => header.clone(),
            (Credentials::Public { sessions, .. }, Some(i)) => match sessions[i].token(now) {
                Some(token) => {
                    let mut h = String::from("Bearer ");
                    h.push_str(token);
                    h
                }
                None if sessions[i].can_mint(now) => return self.mint_request(i, now),
                None => return None,
            },
            (Credentials::Public { .. }, None) => return None,
        };
        let key = match (&self.credentials, session) {
            (Credentials::Public { sessions, .. }, Some(i)) => Some(sessions[i].key.clone()),
            _ => None,
        };
        let batch = match source {
            Source::Ready => self.ready.pop_front()?,
            Source::Queue => self.take_batch(key.as_ref()),
        };
        let body = self.body(&batch, now);
        let id = self.new_request_id();
        self.stats.requests += 1;
        self.stats.bytes_sent += body.len() as u64;
        if self.cfg.debug {
            let n = crate::num::int_string(batch.events.len() as i64);
            let bytes = crate::num::int_string(body.len() as i64);
            let attempt = crate::num::int_string(i64::from(batch.attempts) + 1);
            self.debug(&[
                "SegOps: sending ",
                &n,
                " events (",
                &bytes,
                " bytes), attempt ",
                &attempt,
            ]);
        }
        if batch.attempts > 0 || batch.reminted {
            self.stats.retried += batch.events.len() as u64;
        }
        self.in_flight = Some((id, batch, session));
        Some(Request {
            id,
            url: self.cfg.ingest_url(),
            authorization,
            body,
            keepalive: false,
            timeout_ms: self.cfg.request_timeout_ms,
        })
    }

    /// The page is being hidden (and may be closed): sends what is waiting with `keepalive`,
    /// ignoring backoff (this may be the last chance), within [`KEEPALIVE_BUDGET_BYTES`] for
    /// all keepalive bodies in flight together. Events that do not fit, or whose identity has
    /// no usable token, stay queued: [`Pipeline::snapshot`] saves them.
    pub fn on_hidden(&mut self, now: f64) -> Vec<Request> {
        let mut requests = Vec::new();
        if let Credentials::Secret {
            halted: Some(_), ..
        } = &self.credentials
        {
            return requests;
        }
        if self.consent != Consent::Granted {
            return requests;
        }
        let in_flight: usize = self.keepalive.iter().map(|k| k.3).sum();
        let mut budget = KEEPALIVE_BUDGET_BYTES.saturating_sub(in_flight);
        // Retries and split halves go back in line with the rest.
        let ready: Vec<Batch> = self.ready.drain(..).collect();
        for b in ready {
            self.requeue(b);
        }
        loop {
            // The identity to send for: any (secret key), or the first one with a token.
            let (session, authorization) = match &self.credentials {
                Credentials::Secret { header, .. } => (None, header.clone()),
                Credentials::Public { sessions, .. } => {
                    let found = self.queue.iter().find_map(|e| {
                        let i = sessions.iter().position(|s| s.key.matches(&e.identity))?;
                        sessions[i].token(now).map(|t| (i, t))
                    });
                    let Some((i, token)) = found else { break };
                    let mut h = String::from("Bearer ");
                    h.push_str(token);
                    (Some(i), h)
                }
            };
            if self.queue.is_empty() {
                break;
            }
            let key = match (&self.credentials, session) {
                (Credentials::Public { sessions, .. }, Some(i)) => Some(sessions[i].key.clone()),
                _ => None,
            };
            let limit = budget.min(self.cfg.max_batch_bytes as usize);
            let batch = self.take_batch_within(key.as_ref(), limit, false);
            if batch.events.is_empty() {
                break;
            }
            let body = self.body(&batch, now);
            budget = budget.saturating_sub(body.len());
            let id = self.new_request_id();
            self.stats.requests += 1;
            self.stats.keepalive_requests += 1;
            self.stats.bytes_sent += body.len() as u64;
            self.keepalive.push((id, batch, session, body.len()));
            requests.push(Request {
                id,
                url: self.cfg.ingest_url(),
                authorization,
                body,
                keepalive: true,
                timeout_ms: self.cfg.request_timeout_ms,
            });
        }
        requests
    }

    /// The page is visible again (or back online): resume at once, without waiting out a
    /// backoff that was counting while nobody was looking.
    pub fn resume(&mut self, now: f64) {
        self.not_before = self.not_before.min(now);
    }

    /// Every event not known to be delivered (queued, waiting for a retry, in flight with or
    /// without keepalive), oldest first, as text to keep in storage for the next page load:
    /// `{"v":1,"events":["<event JSON>", ...]}`. The newest events are kept when they exceed
    /// [`MAX_PERSIST_BYTES`] (`stats().unsaved` counts the others). Empty when there is
    /// nothing to save, and always without consent (pending events live in memory only).
    pub fn snapshot(&mut self) -> String {
        if self.consent != Consent::Granted {
            self.stats.unsaved = 0;
            return String::new();
        }
        // Oldest first, near enough: what is in flight and waiting for a retry is older than
        // what is queued. (Order only decides which events a full snapshot leaves out.)
        let all: Vec<&Queued> = self
            .in_flight
            .iter()
            .flat_map(|(_, b, _)| b.events.iter())
            .chain(
                self.keepalive
                    .iter()
                    .flat_map(|(_, b, _, _)| b.events.iter()),
            )
            .chain(self.ready.iter().flat_map(|b| b.events.iter()))
            .chain(self.queue.iter())
            .collect();
        self.stats.unsaved = 0;
        if all.is_empty() {
            return String::new();
        }
        let mut size = 0usize;
        let mut start = all.len();
        while start > 0 {
            // Escaping grows event JSON by its quotes and backslashes, about a tenth.
            let add = all[start - 1].json.len() * 11 / 10 + 3;
            if size + add > MAX_PERSIST_BYTES {
                break;
            }
            size += add;
            start -= 1;
        }
        let unsaved = start as u64;
        let mut out = String::with_capacity(size + 20);
        out.push_str("{\"v\":1,\"events\":[");
        for (i, e) in all[start..].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::json::write_str(&mut out, &e.json);
        }
        out.push_str("]}");
        self.stats.unsaved = unsaved;
        out
    }

    /// Takes up a snapshot saved by an earlier page. Events keep their `message_id` (the server
    /// drops any it already has); malformed entries are skipped. Returns how many were taken.
    pub fn restore(&mut self, text: &str, now: f64) -> usize {
        if self.consent == Consent::Denied {
            return 0;
        }
        let Ok(doc) = crate::json::parse(text) else {
            return 0;
        };
        if doc.get("v").and_then(crate::json::Value::as_u64) != Some(1) {
            return 0;
        }
        let Some(events) = doc.get("events").and_then(crate::json::Value::as_array) else {
            return 0;
        };
        let mut taken = 0;
        for entry in events {
            let Some(json) = entry.as_str() else { continue };
            if json.len() > self.cfg.max_event_bytes as usize {
                continue;
            }
            let Ok(event) = crate::json::parse(json) else {
                continue;
            };
            let text = |k: &str| {
                event
                    .get(k)
                    .and_then(crate::json::Value::as_str)
                    .filter(|s| crate::event::check_id(k, s).is_ok())
                    .map(str::to_string)
            };
            if text("message_id").is_none() {
                continue;
            }
            let identity = match (text("user_id"), text("anonymous_id")) {
                (Some(user_id), anonymous_id) => Identity::User {
                    user_id,
                    anonymous_id,
                },
                (None, Some(anonymous_id)) => Identity::Anonymous { anonymous_id },
                (None, None) => continue,
            };
            if let Credentials::Public { sessions, .. } = &mut self.credentials {
                session_index(sessions, &identity);
            }
            self.push(json.to_string(), identity, now);
            taken += 1;
        }
        self.stats.restored += taken as u64;
        taken
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
        match self.in_flight.take() {
            Some((fid, batch, session)) if fid == id => {
                self.on_ingest_result(batch, session, result, now)
            }
            other => {
                self.in_flight = other;
                if let Some(i) = self.keepalive.iter().position(|k| k.0 == id) {
                    let (_, batch, session, _) = self.keepalive.swap_remove(i);
                    self.on_ingest_result(batch, session, result, now);
                } else {
                    self.on_mint_result(id, result, now);
                }
            }
        }
        // A batch that was in flight as consent was denied is not tried again.
        if self.consent == Consent::Denied {
            self.discard_waiting(reason::CONSENT_DENIED);
        }
    }

    fn on_mint_result(&mut self, id: u64, result: HttpResult, now: f64) {
        let jitter = self.next_jitter();
        let Credentials::Public {
            sessions, current, ..
        } = &mut self.credentials
        else {
            return;
        };
        let Some(index) = sessions.iter().position(|s| s.mint_in_flight() == Some(id)) else {
            return;
        };
        let is_current = *current == Some(index);
        let uid = sessions[index].key.uid.clone();
        match sessions[index].on_answer(id, &result, now, jitter) {
            Transition::Stale => {}
            Transition::Minted => self.debug(&["SegOps: session token received"]),
            Transition::Retrying { reason, gave_up } => {
                self.stats.last_error = Some(("session_retry".into(), reason.clone()));
                if gave_up {
                    let mut m = String::from("SegOps: no session token after ");
                    crate::num::push_int(&mut m, i64::from(MAX_ATTEMPTS));
                    m.push_str(" attempts (");
                    m.push_str(&reason);
                    m.push_str("); that identity's waiting events were dropped");
                    self.log(Level::Warn, m);
                    self.drop_identity(index, reason::RETRIES_EXHAUSTED);
                } else {
                    self.debug(&[
                        "SegOps: session request failed (",
                        &reason,
                        "); backing off",
                    ]);
                }
            }
            Transition::Failed {
                status,
                code,
                message,
            } => {
                let mut m = String::from("SegOps: the API refused a session token for \"");
                m.push_str(&uid);
                m.push_str("\" (HTTP ");
                crate::num::push_int(&mut m, i64::from(status));
                m.push_str(", ");
                m.push_str(&code);
                m.push_str("): ");
                m.push_str(&message);
                m.push_str(match code.as_str() {
                    "origin_not_allowed" => " Add this page's origin to the key's allowed origins.",
                    "api_key_revoked" | "invalid_api_key" => " The public key is revoked or wrong.",
                    c if c.starts_with("signature_") => " getUser() must return a fresh { userIdSig, userIdTs } from your backend's signUserId().",
                    _ => "",
                });
                self.stats.last_error = Some((code.clone(), m.clone()));
                // Events an earlier identity left behind cannot wait for a new signature.
                let stale = !is_current && code.starts_with("signature_");
                if stale {
                    m.push_str(" Its waiting events were dropped.");
                } else {
                    m.push_str(" Its events stay queued.");
                }
                self.log(Level::Error, m);
                if stale {
                    self.drop_identity(index, reason::STALE_IDENTITY);
                } else {
                    let batches: Vec<Batch> = self.ready.drain(..).collect();
                    let (own, other): (Vec<Batch>, Vec<Batch>) = batches
                        .into_iter()
                        .partition(|b| b.events.first().is_some_and(|e| self.refused(&e.identity)));
                    self.ready = other.into();
                    for b in own {
                        self.requeue(b);
                    }
                }
            }
        }
    }

    fn on_ingest_result(
        &mut self,
        mut batch: Batch,
        session: Option<usize>,
        result: HttpResult,
        now: f64,
    ) {
        match classify(&result, now) {
            Outcome::Delivered {
                duplicates,
                rejected,
                ..
            } => {
                let n = batch.events.len() as u64;
                let mut refused = 0u64;
                // An event named twice is dropped once, under the first code given for it.
                let mut named = vec![false; batch.events.len()];
                for r in &rejected {
                    if let Some(seen @ false) = named.get_mut(r.index) {
                        *seen = true;
                        refused += 1;
                        self.stats.drop_n(&r.code, 1);
                    }
                }
                if refused > 0 {
                    let mut m = String::from("SegOps: the server rejected ");
                    crate::num::push_int(&mut m, refused as i64);
                    m.push_str(" event(s); see stats().dropped");
                    self.log(Level::Warn, m);
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
                    crate::num::push_int(&mut m, n as i64);
                    m.push_str(" event(s) after ");
                    crate::num::push_int(&mut m, i64::from(MAX_ATTEMPTS));
                    m.push_str(" attempts; last failure: ");
                    m.push_str(&reason);
                    self.stats.last_error = Some(("retries_exhausted".into(), m.clone()));
                    self.log(Level::Warn, m);
                } else {
                    let jitter = self.next_jitter();
                    let wait = backoff_ms(batch.attempts, after_ms, jitter);
                    self.not_before = now + wait;
                    if self.cfg.debug {
                        let w = crate::num::int_string(crate::num::round(wait) as i64);
                        self.debug(&["SegOps: ", &reason, "; retrying in ", &w, " ms"]);
                    }
                    self.stats.last_error = Some(("delivery_retry".into(), reason));
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
                    let (attempts, reminted) = (batch.attempts, batch.reminted);
                    let mut keep = Vec::new();
                    for (i, e) in batch.events.into_iter().enumerate() {
                        match rejected.iter().find(|r| r.index == i) {
                            Some(r) => self.stats.drop_n(&r.code, 1),
                            None => keep.push(e),
                        }
                    }
                    if !keep.is_empty() {
                        self.ready.push_front(Batch::new(keep, attempts, reminted));
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
                    let (attempts, reminted) = (batch.attempts, batch.reminted);
                    self.ready.push_front(Batch::new(tail, attempts, reminted));
                    self.ready
                        .push_front(Batch::new(batch.events, attempts, reminted));
                }
            }
            Outcome::AuthFailed {
                status,
                code,
                message,
            } => self.on_ingest_refused(batch, session, status, code, message),
            Outcome::Refused { status, code } => {
                let mut r = String::from("http_");
                crate::num::push_int(&mut r, i64::from(status));
                let n = batch.events.len() as u64;
                self.stats.drop_n(&r, n);
                let mut m = String::from("SegOps: the API refused a batch with HTTP ");
                crate::num::push_int(&mut m, i64::from(status));
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

    fn on_ingest_refused(
        &mut self,
        mut batch: Batch,
        session: Option<usize>,
        status: u16,
        code: String,
        message: String,
    ) {
        let code = if code.is_empty() {
            "unauthorized".to_string()
        } else {
            code
        };
        match (&mut self.credentials, session) {
            (Credentials::Public { sessions, .. }, Some(i)) => {
                let Some(s) = sessions.get_mut(i) else {
                    self.requeue(batch);
                    return;
                };
                if status == 401 && !batch.reminted {
                    // The token expired early or the secret rotated: mint once, retry once.
                    s.invalidate();
                    batch.reminted = true;
                    self.stats.remints += 1;
                    self.debug(&["SegOps: token refused (", &code, "); minting a new one"]);
                    self.ready.push_front(batch);
                    return;
                }
                let mut m = String::from("SegOps: the API refused the session token for \"");
                m.push_str(&s.key.uid);
                m.push_str("\" (HTTP ");
                crate::num::push_int(&mut m, i64::from(status));
                m.push_str(", ");
                m.push_str(&code);
                m.push_str(") even after a new one was minted. Sending for that identity stopped; its events stay queued.");
                if !message.is_empty() {
                    m.push(' ');
                    m.push_str(&message);
                }
                s.fail(code.clone(), m.clone());
                self.stats.last_error = Some((code, m.clone()));
                self.log(Level::Error, m);
                self.requeue(batch);
            }
            (Credentials::Secret { halted, .. }, _) => {
                let mut m = String::from("SegOps: the API refused the secret key (HTTP ");
                crate::num::push_int(&mut m, i64::from(status));
                m.push_str(", ");
                m.push_str(&code);
                m.push_str("): it is revoked or wrong. Sending stopped; events stay queued.");
                if !message.is_empty() {
                    m.push(' ');
                    m.push_str(&message);
                }
                *halted = Some(Halt {
                    code: code.clone(),
                    message: m.clone(),
                });
                self.stats.last_error = Some((code, m.clone()));
                self.log(Level::Error, m);
                self.ready.push_front(batch);
            }
            (Credentials::Public { .. }, None) => self.requeue(batch),
        }
    }
}

/// The index of the session for `identity`, created when new.
fn session_index(sessions: &mut Vec<Session>, identity: &Identity) -> usize {
    match sessions.iter().position(|s| s.key.matches(identity)) {
        Some(i) => i,
        None => {
            sessions.push(Session::new(SessionKey::of(identity)));
            sessions.len() - 1
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
        Pipeline::new(config(f), r#"{"library":{"name":"t"}}"#.into(), 42)
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
            p.enqueue(&id, ev(&format!("e{i}")), None, now).unwrap();
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
        let e = p.enqueue("m2", big, None, 0.0).unwrap_err();
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

    // ---- public keys: sessions -----------------------------------------------------------

    fn public(f: impl FnOnce(&mut ConfigInput)) -> Pipeline {
        pipeline(|c| {
            c.api_key = Some("pk_live_test".into());
            f(c)
        })
    }

    fn user_ev(name: &str, uid: &str) -> EventInput {
        let mut e = ev(name);
        e.identity = Identity::User {
            user_id: uid.into(),
            anonymous_id: Some("anon-1".into()),
        };
        e
    }

    fn anon_ev(name: &str) -> EventInput {
        let mut e = ev(name);
        e.identity = Identity::Anonymous {
            anonymous_id: "anon-1".into(),
        };
        e
    }

    fn token(uid: &str, n: u32, expires_in: u32) -> HttpResult {
        HttpResult::Response {
            status: 200,
            retry_after: None,
            body: format!(
                r#"{{"token":"tok-{uid}-{n}","expires_at":"2000-01-01T00:00:00Z","expires_in":{expires_in},"uid":"{uid}","uid_kind":"user"}}"#
            ),
        }
    }

    fn is_mint(r: &Request) -> bool {
        r.url.ends_with("/api/auth/session/")
    }

    #[test]
    fn a_hundred_events_cause_exactly_one_mint() {
        let mut p = public(|c| c.flush_at = Some(10.0));
        let mut n = 0;
        let mut requests = Vec::new();
        for i in 0..100 {
            n += 1;
            p.enqueue(
                &format!("m{n}"),
                user_ev(&format!("e{i}"), "alice"),
                None,
                0.0,
            )
            .unwrap();
            p.request_flush();
            while let Some(r) = p.poll_request(0.0) {
                requests.push(r);
            }
        }
        let mints: Vec<&Request> = requests.iter().filter(|r| is_mint(r)).collect();
        assert_eq!(mints.len(), 1, "single flight while the mint is pending");
        assert_eq!(mints[0].authorization, "ApiKey pk_live_test");
        assert_eq!(mints[0].body, r#"{"user_id":"alice"}"#);
        assert_eq!(requests.len(), 1, "no ingestion before the token");
        p.on_result(mints[0].id, token("alice", 1, 900), 5.0);
        let mut sent = 0;
        let mut now = 5.0;
        while let Some(r) = p.poll_request(now) {
            assert!(!is_mint(&r));
            assert_eq!(r.authorization, "Bearer tok-alice-1");
            sent += ids(&r).len();
            now += 1.0;
            p.on_result(r.id, ok(ids(&r).len()), now);
        }
        assert_eq!(sent, 100);
        assert_eq!(p.stats().mints, 1);
        assert!(p.is_flushed(100));
    }

    #[test]
    fn the_token_is_renewed_ahead_of_expiry_from_its_arrival_whatever_the_clock() {
        // A client clock years off: only differences between its readings matter.
        let t0 = 4_102_444_800_000.0;
        let mut p = public(|c| c.flush_at = Some(1.0));
        p.enqueue("m1", user_ev("a", "alice"), None, t0).unwrap();
        let mint = p.poll_request(t0).unwrap();
        assert!(is_mint(&mint));
        p.on_result(mint.id, token("alice", 1, 8), t0 + 100.0);
        let r = p.poll_request(t0 + 100.0).unwrap();
        p.on_result(r.id, ok(1), t0 + 110.0);
        assert_eq!(
            p.next_wake(t0 + 110.0),
            None,
            "no activity since the token arrived"
        );
        p.enqueue("m1b", user_ev("a", "alice"), None, t0 + 120.0)
            .unwrap();
        let r = p.poll_request(t0 + 120.0).unwrap();
        p.on_result(r.id, ok(1), t0 + 130.0);
        // Renewal is due half-way through an 8 s lifetime, counted from the arrival.
        assert_eq!(p.next_wake(t0 + 130.0), Some(t0 + 100.0 + 4_000.0));
        assert_eq!(p.poll_request(t0 + 4_099.0), None);
        let renew = p.poll_request(t0 + 4_100.0).unwrap();
        assert!(is_mint(&renew));
        // While the renewal is in flight, events still go out with the old token.
        p.enqueue("m2", user_ev("b", "alice"), None, t0 + 4_200.0)
            .unwrap();
        let r = p.poll_request(t0 + 4_200.0).unwrap();
        assert_eq!(r.authorization, "Bearer tok-alice-1");
        p.on_result(r.id, ok(1), t0 + 4_210.0);
        p.on_result(renew.id, token("alice", 2, 8), t0 + 4_300.0);
        p.enqueue("m3", user_ev("c", "alice"), None, t0 + 4_400.0)
            .unwrap();
        let r = p.poll_request(t0 + 4_400.0).unwrap();
        assert_eq!(r.authorization, "Bearer tok-alice-2");
        p.on_result(r.id, ok(1), t0 + 4_410.0);
        assert_eq!(p.stats().mints, 2);
        // Without new activity, the token is left to lapse: an idle tab does not mint all day.
        let wake = p.next_wake(t0 + 4_410.0).unwrap();
        let renew = p.poll_request(wake).unwrap();
        p.on_result(renew.id, token("alice", 3, 8), wake + 10.0);
        assert_eq!(p.next_wake(wake + 10.0), None);
        assert_eq!(p.poll_request(wake + 60_000.0), None);
    }

    #[test]
    fn a_401_re_mints_once_and_retries_once_then_stops() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        p.enqueue("m1", user_ev("a", "alice"), None, 0.0).unwrap();
        let mint = p.poll_request(0.0).unwrap();
        p.on_result(mint.id, token("alice", 1, 900), 1.0);
        let r = p.poll_request(1.0).unwrap();
        p.on_result(
            r.id,
            status(401, r#"{"code":"token_expired","message":"x"}"#),
            2.0,
        );
        let remint = p.poll_request(2.0).unwrap();
        assert!(is_mint(&remint));
        p.on_result(remint.id, token("alice", 2, 900), 3.0);
        let again = p.poll_request(3.0).unwrap();
        assert_eq!(again.authorization, "Bearer tok-alice-2");
        assert_eq!(ids(&again), ["m1"], "same message id");
        p.on_result(again.id, ok(1), 4.0);
        assert_eq!(p.stats().sent, 1);
        assert_eq!(p.stats().remints, 1);

        // A second 401 for the same batch is final for that identity.
        p.enqueue("m2", user_ev("b", "alice"), None, 5.0).unwrap();
        let r = p.poll_request(5.0).unwrap();
        p.on_result(
            r.id,
            status(401, r#"{"code":"api_key_revoked","message":"x"}"#),
            6.0,
        );
        let remint = p.poll_request(6.0).unwrap();
        p.on_result(remint.id, token("alice", 3, 900), 7.0);
        let r = p.poll_request(7.0).unwrap();
        p.take_logs();
        p.on_result(
            r.id,
            status(401, r#"{"code":"api_key_revoked","message":"x"}"#),
            8.0,
        );
        let logs = p.take_logs();
        assert_eq!(logs.iter().filter(|l| l.level == Level::Error).count(), 1);
        assert_eq!(p.halted().unwrap().code, "api_key_revoked");
        assert_eq!(p.poll_request(1e9), None, "no hot loop");
        assert_eq!(p.next_wake(9.0), None);
        assert_eq!(p.pending(), 1, "kept queued");
        assert!(p.is_flushed(2));
        assert_eq!(p.stats().mints, 3);
    }

    #[test]
    fn a_refused_mint_is_terminal_and_reported_once() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        for i in 0..3 {
            p.enqueue(&format!("m{i}"), anon_ev("a"), None, 0.0)
                .unwrap();
        }
        let mint = p.poll_request(0.0).unwrap();
        assert_eq!(mint.body, r#"{"anonymous_id":"anon-1"}"#);
        p.on_result(
            mint.id,
            status(
                403,
                r#"{"code":"origin_not_allowed","message":"https://x.test is not allowed"}"#,
            ),
            1.0,
        );
        let logs = p.take_logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].message.contains("origin_not_allowed"));
        assert!(logs[0].message.contains("allowed origins"));
        assert_eq!(p.halted().unwrap().code, "origin_not_allowed");
        assert_eq!(
            p.stats().last_error.as_ref().unwrap().0,
            "origin_not_allowed"
        );
        p.enqueue("m9", anon_ev("b"), None, 2.0).unwrap();
        let target = p.request_flush();
        assert_eq!(p.poll_request(1e9), None);
        assert_eq!(p.next_wake(3.0), None);
        assert!(p.is_flushed(target));
        assert_eq!(p.pending(), 4);
        assert!(p.take_logs().is_empty());
    }

    #[test]
    fn mint_failures_back_off() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        p.enqueue("m1", anon_ev("a"), None, 0.0).unwrap();
        let mint = p.poll_request(0.0).unwrap();
        p.on_result(mint.id, HttpResult::Network("refused".into()), 10.0);
        assert_eq!(p.poll_request(10.0), None);
        let wake = p.next_wake(10.0).unwrap();
        assert!(wake > 10.0 && wake <= 1_010.0, "{wake}");
        let again = p.poll_request(wake).unwrap();
        assert!(is_mint(&again));
        p.on_result(again.id, token("anon-1", 1, 900), wake + 1.0);
        let r = p.poll_request(wake + 1.0).unwrap();
        assert_eq!(r.authorization, "Bearer tok-anon-1-1");
    }

    #[test]
    fn each_event_goes_under_the_identity_it_was_recorded_with() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        p.enqueue("a1", anon_ev("browse"), None, 0.0).unwrap();
        p.enqueue("a2", anon_ev("browse"), None, 0.0).unwrap();
        // The visitor logs in: later events are alice's, the earlier ones stay anonymous.
        p.enqueue("u1", user_ev("buy", "alice"), None, 0.0).unwrap();
        p.enqueue("a3", anon_ev("late_anon"), None, 0.0).unwrap();
        let mut now = 0.0;
        let mut by_token: Vec<(String, Vec<String>)> = Vec::new();
        while let Some(r) = p.poll_request(now) {
            now += 1.0;
            if is_mint(&r) {
                let uid = if r.body.contains("anonymous_id") {
                    "anon-1"
                } else {
                    "alice"
                };
                p.on_result(r.id, token(uid, 1, 900), now);
            } else {
                by_token.push((r.authorization.clone(), ids(&r)));
                let n = ids(&r).len();
                p.on_result(r.id, ok(n), now);
            }
        }
        assert_eq!(
            by_token,
            [
                (
                    "Bearer tok-anon-1-1".to_string(),
                    vec!["a1".to_string(), "a2".into(), "a3".into()]
                ),
                ("Bearer tok-alice-1".to_string(), vec!["u1".to_string()]),
            ]
        );
        assert_eq!(p.stats().mints, 2);
    }

    #[test]
    fn an_earlier_identity_with_a_stale_signature_is_dropped_with_its_own_reason() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        let sig = |s: &str| {
            Some(Signature {
                sig: s.into(),
                ts: 1,
            })
        };
        p.enqueue("al1", user_ev("a", "alice"), sig("old"), 0.0)
            .unwrap();
        p.enqueue("al2", user_ev("a", "alice"), sig("old"), 0.0)
            .unwrap();
        p.enqueue("bo1", user_ev("b", "bob"), sig("bob"), 0.0)
            .unwrap();
        let mint = p.poll_request(0.0).unwrap();
        assert_eq!(
            mint.body,
            r#"{"user_id":"alice","user_id_sig":"old","user_id_ts":1}"#
        );
        p.on_result(
            mint.id,
            status(403, r#"{"code":"signature_expired","message":"stale"}"#),
            1.0,
        );
        assert_eq!(p.stats().dropped(reason::STALE_IDENTITY), 2);
        assert!(p.halted().is_none(), "bob, the current identity, is fine");
        let mint = p.poll_request(1.0).unwrap();
        assert!(mint.body.contains("bob"));
        p.on_result(mint.id, token("bob", 1, 900), 2.0);
        let r = p.poll_request(2.0).unwrap();
        assert_eq!(ids(&r), ["bo1"]);
    }

    #[test]
    fn a_fresh_signature_revives_a_refused_identity() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        let sig = |s: &str| {
            Some(Signature {
                sig: s.into(),
                ts: 1,
            })
        };
        p.enqueue("m1", user_ev("a", "alice"), None, 0.0).unwrap();
        let mint = p.poll_request(0.0).unwrap();
        p.on_result(
            mint.id,
            status(403, r#"{"code":"signature_required"}"#),
            1.0,
        );
        assert_eq!(p.halted().unwrap().code, "signature_required");
        assert_eq!(p.poll_request(2.0), None);
        p.enqueue("m2", user_ev("a", "alice"), sig("fresh"), 3.0)
            .unwrap();
        let mint = p.poll_request(3.0).unwrap();
        assert!(mint.body.contains("fresh"));
        p.on_result(mint.id, token("alice", 1, 900), 4.0);
        let r = p.poll_request(4.0).unwrap();
        assert_eq!(ids(&r), ["m1", "m2"], "nothing was lost while refused");
    }

    // ---- page lifecycle ------------------------------------------------------------------

    #[test]
    fn hiding_sends_everything_with_keepalive_at_once() {
        let mut p = pipeline(|_| {});
        record(&mut p, 3, 0.0);
        assert_eq!(p.poll_request(0.0), None, "not due yet");
        let reqs = p.on_hidden(1.0);
        assert_eq!(reqs.len(), 1);
        assert!(reqs[0].keepalive);
        assert_eq!(ids(&reqs[0]), ["m1", "m2", "m3"]);
        assert_eq!(p.stats().keepalive_requests, 1);
        assert_eq!(p.pending(), 3, "in flight until answered");
        p.on_result(reqs[0].id, ok(3), 2.0);
        assert_eq!(p.stats().sent, 3);
        assert_eq!(p.pending(), 0);
        assert_eq!(p.snapshot(), "");
    }

    #[test]
    fn keepalive_bodies_stay_within_the_budget_and_the_rest_is_saved() {
        let mut p = pipeline(|_| {});
        let pad = "x".repeat(300);
        for i in 0..400 {
            let mut e = ev("big");
            e.properties = Some(format!(r#"{{"pad":"{pad}","i":{i}}}"#));
            p.enqueue(&format!("m{i}"), e, None, 0.0).unwrap();
        }
        let reqs = p.on_hidden(0.0);
        let total: usize = reqs.iter().map(|r| r.body.len()).sum();
        assert!(total <= KEEPALIVE_BUDGET_BYTES, "{total}");
        assert!(
            total > KEEPALIVE_BUDGET_BYTES - 1_000,
            "the budget is used: {total}"
        );
        let sent: usize = reqs.iter().map(|r| ids(r).len()).sum();
        assert!(sent > 100 && sent < 400, "{sent}");
        // A second hide while those are in flight has no budget left.
        assert!(p.on_hidden(1.0).is_empty());
        // The snapshot holds everything not known delivered, keepalive in flight included.
        let snap = p.snapshot();
        let saved = parse(&snap).unwrap();
        let saved = saved.get("events").and_then(Value::as_array).unwrap();
        assert_eq!(saved.len(), 400);
        assert_eq!(p.stats().unsaved, 0);
        // Once the keepalive answers arrive, they are no longer saved.
        for r in &reqs {
            p.on_result(r.id, ok(ids(r).len()), 2.0);
        }
        let after = parse(&p.snapshot()).unwrap();
        assert_eq!(
            after.get("events").and_then(Value::as_array).unwrap().len(),
            400 - sent
        );
    }

    #[test]
    fn hiding_ignores_backoff_and_resume_ends_it() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 2, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.on_result(r.id, status(503, ""), 1.0);
        assert_eq!(p.poll_request(1.0), None, "backing off");
        let reqs = p.on_hidden(1.0);
        assert_eq!(reqs.len(), 1);
        assert_eq!(ids(&reqs[0]), ["m1", "m2"], "same message ids");
        p.on_result(reqs[0].id, status(503, ""), 2.0);
        assert_eq!(p.poll_request(2.0), None);
        p.resume(2.0);
        let again = p.poll_request(2.0).unwrap();
        assert_eq!(ids(&again), ["m1", "m2"]);
    }

    #[test]
    fn hiding_with_a_public_key_sends_only_identities_with_a_token() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        p.enqueue("a1", anon_ev("x"), None, 0.0).unwrap();
        let mint = p.poll_request(0.0).unwrap();
        p.on_result(mint.id, token("anon-1", 1, 900), 1.0);
        let r = p.poll_request(1.0).unwrap();
        p.on_result(r.id, ok(1), 2.0);
        p.enqueue("u1", user_ev("y", "alice"), None, 3.0).unwrap();
        p.enqueue("a2", anon_ev("x"), None, 3.0).unwrap();
        let reqs = p.on_hidden(3.0);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].authorization, "Bearer tok-anon-1-1");
        assert_eq!(ids(&reqs[0]), ["a2"]);
        let snap = p.snapshot();
        assert!(snap.contains("u1") && snap.contains("a2"), "{snap}");
    }

    #[test]
    fn a_snapshot_restores_into_a_new_page_with_the_same_message_ids() {
        let mut first = public(|_| {});
        first.enqueue("a1", anon_ev("x"), None, 0.0).unwrap();
        first
            .enqueue("u1", user_ev("y", "alice"), None, 0.0)
            .unwrap();
        let snap = first.snapshot();
        let mut next = public(|c| c.flush_at = Some(1.0));
        assert_eq!(next.restore(&snap, 10.0), 2);
        assert_eq!(next.stats().restored, 2);
        let mut seen = Vec::new();
        let mut now = 10.0;
        while let Some(r) = next.poll_request(now) {
            now += 1.0;
            if is_mint(&r) {
                let uid = if r.body.contains("anonymous_id") {
                    "anon-1"
                } else {
                    "alice"
                };
                next.on_result(r.id, token(uid, 1, 900), now);
            } else {
                seen.push((r.authorization.clone(), ids(&r)));
                next.on_result(r.id, ok(1), now);
            }
        }
        assert_eq!(
            seen,
            [
                ("Bearer tok-anon-1-1".to_string(), vec!["a1".to_string()]),
                ("Bearer tok-alice-1".to_string(), vec!["u1".to_string()])
            ]
        );
        for bad in [
            "",
            "[]",
            "{\"v\":2,\"events\":[]}",
            "{\"v\":1,\"events\":[1,\"{}\",\"nope\",\"{\\\"message_id\\\":\\\"m\\\"}\"]}",
        ] {
            assert_eq!(next.restore(bad, 0.0), 0, "{bad}");
        }
    }

    #[test]
    fn a_snapshot_over_its_bound_keeps_the_newest() {
        let mut p = pipeline(|c| c.max_queue_bytes = Some(64.0 * 1024.0 * 1024.0));
        // 21,000 bytes an event, in strings within the caps.
        let pad = "y".repeat(7_000);
        for i in 0..80 {
            let mut e = ev("big");
            e.properties = Some(format!(r#"{{"a":"{pad}","b":"{pad}","c":"{pad}"}}"#));
            p.enqueue(&format!("m{i}"), e, None, 0.0).unwrap();
        }
        let snap = p.snapshot();
        assert!(snap.len() <= MAX_PERSIST_BYTES);
        let kept = parse(&snap).unwrap();
        let kept = kept.get("events").and_then(Value::as_array).unwrap();
        assert!(p.stats().unsaved > 0);
        assert_eq!(kept.len() as u64 + p.stats().unsaved, 80);
        assert!(kept.last().unwrap().as_str().unwrap().contains("\"m79\""));
    }

    // ---- consent and caps ----------------------------------------------------------------

    #[test]
    fn pending_buffers_in_memory_and_granting_sends_each_event_once() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        p.set_consent(Consent::Pending);
        record(&mut p, 3, 0.0);
        assert_eq!(p.poll_request(0.0), None, "nothing sent while pending");
        assert_eq!(p.poll_request(1e9), None, "however long it waits");
        assert_eq!(p.next_wake(0.0), None, "no timer while pending");
        assert!(p.on_hidden(1.0).is_empty(), "no keepalive either");
        assert_eq!(p.snapshot(), "", "nothing to persist");
        let target = p.request_flush();
        assert!(p.is_flushed(target), "flush() does not wait for a choice");
        assert_eq!(p.pending(), 3);
        assert_eq!(p.stats().recorded, 3);
        p.set_consent(Consent::Granted);
        assert_eq!(p.consent(), Consent::Granted);
        assert!(!p.is_flushed(target));
        assert_eq!(
            p.next_wake(2.0),
            Some(2.0),
            "the buffered events go at once"
        );
        let r = p.poll_request(2.0).unwrap();
        assert_eq!(ids(&r), ["m1", "m2", "m3"]);
        p.on_result(r.id, ok(3), 3.0);
        assert!(p.is_flushed(target));
        assert_eq!(p.poll_request(3.0), None, "each event once");
        assert_eq!(p.stats().sent, 3);
        assert_eq!(p.stats().dropped_total(), 0);
    }

    #[test]
    fn pending_keeps_the_queue_bounds() {
        let mut p = pipeline(|c| c.max_queue_events = Some(5.0));
        p.set_consent(Consent::Pending);
        record(&mut p, 8, 0.0);
        assert_eq!(p.queued(), 5);
        assert_eq!(p.stats().dropped(reason::QUEUE_OVERFLOW), 3);
    }

    #[test]
    fn pending_sends_no_session_mint_either() {
        let mut p = public(|c| c.flush_at = Some(1.0));
        p.set_consent(Consent::Pending);
        p.enqueue("a1", anon_ev("x"), None, 0.0).unwrap();
        assert_eq!(p.poll_request(0.0), None);
        assert_eq!(p.stats().mints, 0);
        p.set_consent(Consent::Granted);
        let mint = p.poll_request(1.0).unwrap();
        assert!(is_mint(&mint));
    }

    #[test]
    fn denying_discards_what_waits_and_counts_it() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        p.set_consent(Consent::Pending);
        record(&mut p, 4, 0.0);
        p.set_consent(Consent::Denied);
        assert_eq!(p.pending(), 0);
        assert_eq!(p.queued_bytes(), 0);
        assert_eq!(p.stats().dropped(reason::CONSENT_DENIED), 4);
        // Later events are discarded as they are recorded.
        record(&mut p, 2, 1.0);
        assert_eq!(p.pending(), 0);
        assert_eq!(p.stats().recorded, 6);
        assert_eq!(p.stats().dropped(reason::CONSENT_DENIED), 6);
        assert_eq!(p.poll_request(1e9), None);
        assert_eq!(p.next_wake(1.0), None);
        assert!(p.on_hidden(2.0).is_empty());
        assert_eq!(p.snapshot(), "");
        let target = p.request_flush();
        assert!(p.is_flushed(target));
        assert_eq!(p.restore(r#"{"v":1,"events":[]}"#, 2.0), 0);
        // Too large is still an error of the call, whatever the consent.
        let mut e = ev("big");
        let pad = "x".repeat(8_000);
        e.properties = Some(format!(
            r#"{{"a":"{pad}","b":"{pad}","c":"{pad}","d":"{pad}","e":"{pad}"}}"#
        ));
        assert_eq!(
            p.enqueue("big", e, None, 3.0).unwrap_err().code(),
            "event_too_large"
        );
        // Granting again resumes normal delivery of new events.
        p.set_consent(Consent::Granted);
        record(&mut p, 1, 4.0);
        let r = p.poll_request(4.0).unwrap();
        assert_eq!(ids(&r), ["m7"]);
    }

    #[test]
    fn denying_while_a_batch_is_in_flight_never_sends_it_again() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 2, 0.0);
        let r = p.poll_request(0.0).unwrap();
        record(&mut p, 1, 0.0);
        p.set_consent(Consent::Denied);
        assert_eq!(
            p.stats().dropped(reason::CONSENT_DENIED),
            1,
            "the queued one"
        );
        let target = p.request_flush();
        assert!(p.is_flushed(target));
        // The answer asks for a retry: the batch is discarded instead.
        p.on_result(r.id, status(503, ""), 1.0);
        assert_eq!(p.stats().dropped(reason::CONSENT_DENIED), 3);
        assert_eq!(p.pending(), 0);
        assert_eq!(p.poll_request(1e9), None);
        // A success that was already on its way still counts as sent.
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 2, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.set_consent(Consent::Denied);
        p.on_result(r.id, ok(2), 1.0);
        assert_eq!(p.stats().sent, 2);
        assert_eq!(p.stats().dropped_total(), 0);
    }

    #[test]
    fn granted_to_pending_stops_sending_and_keeps_the_events() {
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        record(&mut p, 1, 0.0);
        let r = p.poll_request(0.0).unwrap();
        p.set_consent(Consent::Pending);
        record(&mut p, 2, 0.0);
        p.on_result(r.id, status(503, ""), 1.0);
        assert_eq!(p.poll_request(1e9), None);
        assert_eq!(p.pending(), 3, "the retry waits too");
        p.set_consent(Consent::Granted);
        let mut seen = Vec::new();
        let mut now = 1e9;
        while let Some(r) = p.poll_request(now) {
            seen.extend(ids(&r));
            now += 1.0;
            p.on_result(r.id, ok(ids(&r).len()), now);
        }
        assert_eq!(seen, ["m1", "m2", "m3"]);
        assert_eq!(p.stats().sent, 3);
    }

    #[test]
    fn discarded_events_count_as_recorded_and_dropped() {
        let mut p = pipeline(|_| {});
        p.discard(reason::BEFORE_SEND);
        assert_eq!(p.stats().recorded, 1);
        assert_eq!(p.stats().dropped(reason::BEFORE_SEND), 1);
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn caps_apply_before_the_size_check_and_are_counted() {
        use crate::privacy::{MAX_KEYS, MAX_STRING_CHARS};
        let mut p = pipeline(|c| c.flush_at = Some(1.0));
        // 40,000 characters would be over 32 KiB; cut to 8,192 the event fits.
        let mut e = ev("long");
        e.properties = Some(format!(r#"{{"s":"{}"}}"#, "x".repeat(40_000)));
        e.traits = Some(format!(
            "{{{}}}",
            (0..300)
                .map(|i| format!(r#""t{i}":1"#))
                .collect::<Vec<_>>()
                .join(",")
        ));
        p.enqueue("m1", e, None, 0.0).unwrap();
        assert_eq!(p.stats().truncated, 1);
        assert_eq!(
            p.stats().truncated_by,
            Cuts {
                depth: 0,
                keys: 1,
                length: 1
            }
        );
        let logs = p.take_logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].message.contains(&MAX_KEYS.to_string()));
        assert!(logs[0].message.contains("8,192") && MAX_STRING_CHARS == 8_192);
        record(&mut p, 1, 0.0);
        assert_eq!(
            p.stats().truncated,
            1,
            "an event within the caps is not counted"
        );
        let r = p.poll_request(0.0).unwrap();
        let body = parse(&r.body).unwrap();
        let first = &body.get("events").and_then(Value::as_array).unwrap()[0];
        let s = first
            .get("properties")
            .and_then(|p| p.get("s"))
            .and_then(Value::as_str);
        assert_eq!(s.map(str::len), Some(MAX_STRING_CHARS));
        let traits = first.get("traits").and_then(Value::as_object).unwrap();
        assert_eq!(traits.len(), MAX_KEYS);
        // Another truncation is counted, not logged again.
        let mut e = ev("long");
        e.properties = Some(format!(r#"{{"s":"{}"}}"#, "y".repeat(9_000)));
        p.enqueue("m3", e, None, 0.0).unwrap();
        assert_eq!(p.stats().truncated, 2);
        assert!(p.take_logs().is_empty());
    }
}
