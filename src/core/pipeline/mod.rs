//! The client's delivery engine, without I/O: a state machine that takes events and answers and
//! says which requests to make and when to wake up.
//!
//! The client drives it: after every call or answer it asks [`Pipeline::poll_request`] for
//! requests to send, has them sent, feeds each answer to [`Pipeline::on_result`], and keeps one
//! timer for [`Pipeline::next_wake`]. Time is always a parameter; randomness comes from a seed.
//! Native tests drive it the same way with a fake clock and scripted answers.
//!
//! Invariants: at most one ingestion request is in flight (order is kept and nothing is sent
//! twice while an answer is pending); an event leaves only by delivery or by a counted drop; the
//! queue never exceeds its bounds.
//!
//! The parts: this file holds the state, recording and the counts; `sending` makes batches and
//! requests; `answers` applies what the server said; `page` is what a page being hidden, shown
//! or reloaded needs (keepalive sends, the snapshot for the next page load).

mod answers;
mod page;
mod queue;
mod sending;
#[cfg(test)]
mod tests;

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::collections::VecDeque;
use alloc::rc::Rc;

use crate::core::auth::{mint_body, Session, SessionKey, Signature, State, Transition};
use crate::core::config::{Config, KeyKind};
use crate::core::delivery::{backoff_ms, classify, HttpResult, Outcome, MAX_ATTEMPTS};
use crate::core::error::Error;
use crate::core::event::{body, context_member, identity_members, EventInput, Identity};
use crate::core::privacy::{cap_json, Consent, Cuts};
use crate::core::time::format_iso8601;

/// An HTTP request the edge must make.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Hand it back with the answer.
    pub id: u64,
    pub url: String,
    pub authorization: String,
    /// The body of a session mint. Empty for an ingestion batch, whose body the pipeline
    /// writes out in parts ([`Pipeline::body_part`]): a 512 KiB body then never sits whole in
    /// the module's memory, which a wasm module never gives back.
    pub body: String,
    /// The body's length in bytes.
    pub bytes: usize,
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
    /// Events this page had saved and another page of the origin took up (and sends) while
    /// this one was hidden or in the back/forward cache.
    pub handed_over: u64,
    /// Events the last snapshot for the next page load could not hold (over its bound).
    pub unsaved: u64,
    /// Recorded events that had values cut by the caps on properties, traits and context
    /// ([`crate::core::privacy`]): they were queued, shortened.
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

/// What queued events share with the events recorded next to them: the identity, and the
/// identity's and the page context's wire members (`,"user_id":…,"anonymous_id":…` then
/// `,"context":{…}`), written once.
#[derive(Debug)]
struct Who {
    identity: Identity,
    json: Box<str>,
    /// Where the context member starts in `json`.
    context_at: usize,
}

/// A recorded event as the queue keeps it: only `body` is the event's own; its identity and its
/// context are shared (see [`crate::core::event::body`]), so that a burst on one page holds
/// them once. 24 bytes, and the body.
#[derive(Debug, Clone)]
struct Queued {
    seq: u64,
    /// The wire JSON from `{` to the end of properties or traits.
    body: Box<str>,
    who: Rc<Who>,
}

impl Queued {
    fn identity(&self) -> &Identity {
        &self.who.identity
    }

    /// Bytes of the event's wire JSON.
    fn len(&self) -> usize {
        self.body.len() + self.who.json.len() + 1
    }

    /// Appends the event's wire JSON.
    fn write(&self, out: &mut String) {
        out.push_str(&self.body);
        out.push_str(&self.who.json);
        out.push('}');
    }
}

#[derive(Debug)]
struct Batch {
    events: Vec<Queued>,
    /// Failed attempts so far.
    attempts: u32,
    /// A 401 already caused a re-mint for this batch (public keys): the next one is final.
    reminted: bool,
    /// When its latest attempt was sent: the body's `sent_at`.
    sent_at: f64,
}

impl Batch {
    fn new(events: Vec<Queued>, attempts: u32, reminted: bool) -> Batch {
        Batch {
            events,
            attempts,
            reminted,
            sent_at: 0.0,
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
    queue: queue::Queue<Queued>,
    /// The identity and context of the latest recorded event, shared by the next ones that
    /// have the same; with the context's text as recorded and what its caps cut.
    last_who: Option<Rc<Who>>,
    last_context: Option<(Box<str>, Cuts)>,
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
    /// The events (sequence numbers, ascending) of the latest snapshot for the next page load,
    /// and of the one before it (see [`Pipeline::hand_over`]).
    saved: [Vec<u64>; 2],
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
            queue: queue::Queue::default(),
            last_who: None,
            last_context: None,
            queue_bytes: 0,
            next_seq: 1,
            ready: VecDeque::new(),
            in_flight: None,
            keepalive: Vec::new(),
            not_before: 0.0,
            deadline: None,
            flush_target: 0,
            saved: [Vec::new(), Vec::new()],
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

    /// Adds a line for the console (the client's own warnings go out with the pipeline's).
    pub fn log(&mut self, level: Level, message: String) {
        self.logs.push(Log { level, message });
    }

    /// Records an event. Its properties, traits and context are cut to the caps of
    /// [`crate::core::privacy`] first; then it fails without side effects when it is still over
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
        let context = event.context.take();
        for field in [&mut event.properties, &mut event.traits] {
            if let Some(text) = field.as_deref() {
                if let alloc::borrow::Cow::Owned(capped) = cap_json(text, &mut cuts) {
                    *field = Some(capped);
                }
            }
        }
        let who = self.shared_who(&event.identity, context, &mut cuts);
        let queued = Queued {
            seq: 0,
            body: body(message_id, &event).into_boxed_str(),
            who,
        };
        let max = self.cfg.max_event_bytes as usize;
        let len = queued.len();
        if len > max {
            return Err(Error::EventTooLarge { bytes: len, max });
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
            session.retired = false;
            if let (Some(sig), false) = (signature, session.key.anonymous) {
                session.set_signature(sig);
            }
            *current = Some(i);
        }
        self.stats.recorded += 1;
        Ok(self.push(queued, now))
    }

    /// `reset()`: the session tokens of every identity so far go, each once its recorded events
    /// are delivered (they need it), and none is renewed meanwhile.
    pub fn retire_sessions(&mut self) {
        if let Credentials::Public {
            sessions, current, ..
        } = &mut self.credentials
        {
            for s in sessions.iter_mut() {
                s.retired = true;
            }
            *current = None;
        }
        self.drop_retired_tokens();
    }

    /// Forgets the tokens of retired identities that have no event left to deliver.
    pub(super) fn drop_retired_tokens(&mut self) {
        let holds = |s: &Session| {
            s.retired && matches!(s.state, State::Valid { .. } | State::Backoff { .. })
        };
        let Credentials::Public { sessions, .. } = &self.credentials else {
            return;
        };
        if !sessions.iter().any(holds) {
            return; // the usual case: nothing to look for
        }
        let waiting: Vec<&Queued> = self.waiting_events().collect();
        let done: Vec<bool> = sessions
            .iter()
            .map(|s| holds(s) && !waiting.iter().any(|e| s.key.matches(e.identity())))
            .collect();
        if let Credentials::Public { sessions, .. } = &mut self.credentials {
            for (s, done) in sessions.iter_mut().zip(done) {
                if done {
                    s.state = State::Idle;
                }
            }
        }
    }

    /// Every event not known to be delivered, oldest first near enough: what is in flight and
    /// waiting for a retry is older than what is queued.
    fn waiting_events(&self) -> impl Iterator<Item = &Queued> {
        self.in_flight
            .iter()
            .flat_map(|(_, b, _)| b.events.iter())
            .chain(
                self.keepalive
                    .iter()
                    .flat_map(|(_, b, _, _)| b.events.iter()),
            )
            .chain(self.ready.iter().flat_map(|b| b.events.iter()))
            .chain(self.queue.iter())
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
                self.queue_bytes -= old.len();
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

    /// Appends a recorded event, making room by dropping the oldest when the queue is full.
    fn push(&mut self, mut event: Queued, now: f64) -> u64 {
        let len = event.len();
        self.make_room(1, len);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue_bytes += len;
        event.seq = seq;
        self.queue.push_back(event);
        if self.deadline.is_none() {
            self.deadline = Some(now + f64::from(self.cfg.flush_interval_ms));
        }
        seq
    }

    /// The shared identity and context of an event: the latest event's when they are the same.
    /// The context (the page, as recorded) is capped once for the events recorded on the same
    /// page; what the caps cut is counted for each event that carries it.
    fn shared_who(
        &mut self,
        identity: &Identity,
        context: Option<String>,
        cuts: &mut Cuts,
    ) -> Rc<Who> {
        let same_context = match (&self.last_context, &context) {
            (Some((text, own)), Some(raw)) if **text == **raw => {
                cuts.add(own);
                true
            }
            (None, None) => true,
            _ => false,
        };
        if let Some(w) = &self.last_who {
            if same_context && w.identity == *identity {
                return w.clone();
            }
        }
        let mut json = identity_members(identity);
        let context_at = json.len();
        match context {
            Some(raw) if same_context => {
                if let Some(w) = &self.last_who {
                    json.push_str(w.json.get(w.context_at..).unwrap_or(""));
                }
                drop(raw);
            }
            Some(raw) => {
                let mut own = Cuts::default();
                json.push_str(&context_member(&cap_json(&raw, &mut own)));
                cuts.add(&own);
                self.last_context = Some((raw.into_boxed_str(), own));
            }
            None => self.last_context = None,
        }
        let who = Rc::new(Who {
            identity: identity.clone(),
            json: json.into_boxed_str(),
            context_at,
        });
        self.last_who = Some(who.clone());
        who
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
        let live = |e: &Queued| e.seq <= target && !self.refused(e.identity());
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
                    crate::core::auth::State::Failed { code, message } => Some(Halt {
                        code: code.clone(),
                        message: message.clone(),
                    }),
                    _ => None,
                }),
        }
    }

    /// The token held for the identity `uid`, if any.
    #[cfg(test)]
    pub fn token_for_uid(&self, uid: &str) -> Option<String> {
        let Credentials::Public { sessions, .. } = &self.credentials else {
            return None;
        };
        sessions
            .iter()
            .find(|s| s.key.uid == uid)
            .and_then(|s| match &s.state {
                State::Valid { token, .. } => Some(token.clone()),
                _ => None,
            })
    }

    /// The current identity's token and the milliseconds it has left (public keys).
    pub fn token_remaining_ms(&self, now: f64) -> Option<f64> {
        match &self.credentials {
            Credentials::Public {
                sessions, current, ..
            } => current
                .and_then(|i| sessions.get(i))
                .and_then(|s| match &s.state {
                    crate::core::auth::State::Valid { expires_at, .. } if now < *expires_at => {
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
