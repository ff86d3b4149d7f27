//! The whole client as a state machine: config, identity, consent, `beforeSend`, and the
//! delivery [`Pipeline`], driven by text in and text out.
//!
//! The platform layer (`js/runtime/`) owns every effect: it passes each call as the loader's
//! record of it (see [`input`]), the time, the answers to requests and the page signals, and
//! carries out what [`Client::poll`] asks for (requests, console lines, the next wake-up). The
//! rules (what is valid, who an event is about, what consent allows, what to send and when)
//! are all here, tested natively with a fake clock.

mod calls;
mod hook;
pub mod input;
mod open;
mod output;

#[allow(unused_imports)]
use crate::prelude::*;

use crate::core::delivery::HttpResult;
use crate::core::error::Error;
use crate::core::event::EventInput;
use crate::core::json::fix_lone_surrogates;
use crate::core::json::members;
use crate::core::pipeline::{reason, Level, Pipeline, Request};
use crate::core::privacy::Consent;
use crate::core::referrer::{CustomProvider, PageSnapshot};
use crate::core::uuid::{random_bytes, uuid_v4};
use crate::core::visit::Visits;

use calls::{Held, Record};
use input::{expected, Arg, Field};
pub use output::{Body, Output};

/// `record` flag: the call may go through `beforeSend` (it is not made by the hook itself).
pub const HOOK: u32 = 1;
/// `record` flag: a call an earlier page recorded and saved before its module was ready. It
/// has its own identity state (an `identify()` in it does not change this client's user) and
/// its own page (it may start a referral of its own).
pub const SAVED: u32 = 2;
/// `record` flag: the first call of such a saved buffer.
pub const FIRST: u32 = 4;

/// Why events were dropped before they were queued, besides [`reason`]'s.
pub mod dropped {
    /// A public key outside a browser (server-side rendering): it records nothing.
    pub const NOT_IN_BROWSER: &str = "not_in_browser";
}

/// What [`Client::record`] did with a call.
#[derive(Debug, PartialEq)]
pub enum Recorded {
    /// Queued (or dropped by consent), nothing else to do.
    Done,
    /// The events wait for `beforeSend`: a JSON array of them as the app sees them. Call the
    /// hook on each and hand the answers to [`Client::hooked`].
    Hook(String),
}

/// The client.
pub struct Client {
    core: Pipeline,
    /// `window` and `document` exist.
    browser: bool,
    /// A public key outside a browser (server-side rendering of a page that creates its client
    /// at module scope): calls are checked, then counted as dropped; nothing is sent or logged.
    inert: bool,
    anonymous_id: String,
    /// The user id given to `identify()`, used when a call names nobody and `getUser` is not
    /// configured or returns nobody.
    identified: Option<String>,
    /// The same for the calls of a saved buffer being taken up (see [`SAVED`]).
    saved_identified: Option<String>,
    has_hook: bool,
    ai_providers: Vec<CustomProvider>,
    /// The visits (sessions) this page's events belong to, in a browser.
    visits: Visits,
    /// `autoPageViews`: the platform records a page view on each route change.
    auto_page_views: bool,
    shut_down: bool,
    /// Events waiting for `beforeSend`, one group per call; a stack, since the hook may record
    /// events itself (which skip it).
    held: Vec<(Vec<Held>, bool)>,
    before_send_errors: u64,
    rng: u64,
}

impl Client {
    /// A fresh UUIDv4 from this client's generator (seeded with the platform's crypto
    /// randomness).
    fn new_uuid(&mut self) -> String {
        uuid_v4(random_bytes(&mut self.rng))
    }

    /// Records a call (the loader's record of it, see [`calls::Record`]). `flags`: [`HOOK`],
    /// [`SAVED`], [`FIRST`].
    pub fn record(&mut self, text: &str, now: f64, flags: u32) -> Result<Recorded, Error> {
        if self.shut_down {
            return Err(Error::ShutDown);
        }
        let rec = Record::of(text);
        let saved = flags & SAVED != 0;
        if flags & FIRST != 0 {
            self.saved_identified = None;
        }
        let mut identified = if saved {
            self.saved_identified.take()
        } else {
            self.identified.take()
        };
        // A page load's arrival is looked at with its first call (a saved buffer is another
        // page load's).
        let arriving = if saved {
            flags & FIRST != 0
        } else {
            self.visits.arriving()
        };
        let result = self.events_of(&rec, &mut identified, arriving, now);
        if saved {
            self.saved_identified = identified;
        } else {
            self.identified = identified;
        }
        let events = result?;
        if !saved && rec.page.is_some() {
            self.visits.arrived();
        }
        if self.inert {
            for _ in &events {
                self.core.discard(dropped::NOT_IN_BROWSER);
            }
            return Ok(Recorded::Done);
        }
        if self.has_hook
            && flags & HOOK != 0
            && self.core.consent() != Consent::Denied
            && !events.is_empty()
        {
            let mut out = String::from("[");
            for (i, h) in events.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                hook::write_event(&mut out, &h.event);
            }
            out.push(']');
            self.held.push((events, saved));
            return Ok(Recorded::Hook(out));
        }
        let n = events.len();
        for h in events {
            self.enqueue(h, now)?;
        }
        if saved {
            self.core.took_up(n);
        }
        Ok(Recorded::Done)
    }

    /// What `beforeSend` returned for the events of the latest [`Recorded::Hook`]: a JSON
    /// array with the loader's record of each answer, in order.
    pub fn hooked(&mut self, text: &str, now: f64) -> Result<(), Error> {
        let Some((events, saved)) = self.held.pop() else {
            return Ok(());
        };
        if saved {
            self.core.took_up(events.len());
        }
        let answers = crate::core::json::items(text).unwrap_or_default();
        let mut first_error = None;
        for (i, held) in events.into_iter().enumerate() {
            let answer = Arg::of(answers.get(i).copied());
            let result = match hook::outcome(&answer, &held.event) {
                hook::Outcome::Drop => {
                    self.core.discard(reason::BEFORE_SEND);
                    Ok(())
                }
                hook::Outcome::Problem(m) => {
                    self.hook_problem(m);
                    self.enqueue(held, now)
                }
                hook::Outcome::Edited(edited) => self.enqueue_edited(held, edited, now),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Queues an event the hook edited; one the edit made too large is kept as it was.
    fn enqueue_edited(&mut self, held: Held, edited: EventInput, now: f64) -> Result<(), Error> {
        // The app's signature was for the user id it had.
        let signature = if edited.identity.uid() == held.event.identity.uid() {
            held.signature.clone()
        } else {
            None
        };
        let edited = Held {
            message_id: held.message_id.clone(),
            event: edited,
            signature,
        };
        match self.enqueue(edited, now) {
            Err(Error::EventTooLarge { .. }) => {
                self.enqueue(held, now)?;
                self.hook_problem(
                    "SegOps: beforeSend returned an event over maxEventBytes; the event was kept unchanged. Later beforeSend problems are only counted, in stats().beforeSendErrors.".into(),
                );
                Ok(())
            }
            other => other,
        }
    }

    /// Counts a `beforeSend` problem; the first one of the client is logged.
    fn hook_problem(&mut self, message: String) {
        self.before_send_errors += 1;
        if self.before_send_errors == 1 {
            self.core.log(Level::Error, message);
        }
    }

    fn enqueue(&mut self, held: Held, now: f64) -> Result<(), Error> {
        let Held {
            message_id,
            mut event,
            signature,
        } = held;
        for field in [&mut event.properties, &mut event.traits, &mut event.context] {
            if let Some(text) = field.as_deref() {
                if let alloc::borrow::Cow::Owned(fixed) = fix_lone_surrogates(text) {
                    *field = Some(fixed);
                }
            }
        }
        self.core
            .enqueue(&message_id, event, signature, now)
            .map(|_| ())
    }

    /// `flush()`: the target to wait for with [`Client::is_flushed`].
    pub fn flush(&mut self) -> Result<u64, Error> {
        if self.shut_down {
            return Err(Error::ShutDown);
        }
        Ok(self.core.request_flush())
    }

    /// `shutdown()`: later calls fail; the target to wait for.
    pub fn shutdown(&mut self) -> u64 {
        self.shut_down = true;
        self.core.begin_shutdown()
    }

    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    pub fn is_flushed(&self, target: u64) -> bool {
        self.core.is_flushed(target)
    }

    /// `setConsent(value)` (the loader's record of the value): the new state. Denying gives
    /// the visitor a new anonymous id: the old one is never used again.
    pub fn set_consent(&mut self, text: &str) -> Result<Consent, Error> {
        let arg = Arg::of(Some(text));
        let f = arg.whole();
        let consent = match f {
            Field::Json(raw) => {
                input::scalar(raw).and_then(|v| v.as_str().and_then(Consent::parse))
            }
            _ => None,
        }
        .ok_or_else(|| {
            Error::argument(
                "setConsent",
                &expected("\"granted\", \"pending\" or \"denied\"", f),
            )
        })?;
        if consent == Consent::Denied && self.core.consent() != Consent::Denied {
            self.anonymous_id = self.new_uuid();
        }
        self.core.set_consent(consent);
        Ok(consent)
    }

    pub fn consent(&self) -> Consent {
        self.core.consent()
    }

    pub fn anonymous_id(&self) -> &str {
        &self.anonymous_id
    }

    pub fn is_browser(&self) -> bool {
        self.browser
    }

    /// The page is hidden or being unloaded: the keepalive requests to make at once.
    pub fn hidden(&mut self, now: f64) -> Vec<Request> {
        if self.shut_down || self.inert {
            return Vec::new();
        }
        self.core.on_hidden(now)
    }

    /// The page is visible again, or the network is back: resume at once.
    pub fn resume(&mut self, now: f64) {
        self.core.resume(now);
    }

    /// The answer to request `id`: an HTTP status (1 to 999) with its `Retry-After` and body,
    /// `0` for a network failure (`body` says why) or `-1` for a timeout.
    pub fn answer(
        &mut self,
        id: u64,
        status: f64,
        retry_after: Option<String>,
        body: String,
        now: f64,
    ) {
        let result = if status < 0.0 {
            HttpResult::Timeout
        } else if (1.0..=999.0).contains(&status) {
            HttpResult::Response {
                status: status as u16,
                retry_after,
                body,
            }
        } else {
            HttpResult::Network(body)
        };
        self.core.on_result(id, result, now);
    }

    /// Every unsent event, for the next page load (empty: nothing to keep).
    pub fn snapshot(&mut self) -> String {
        if self.inert {
            return String::new();
        }
        self.core.snapshot()
    }

    /// Whether another page took up this page's saved snapshot: see [`Pipeline::hand_over`].
    pub fn hand_over(&mut self, taken: bool, racy: bool) -> usize {
        self.core.hand_over(taken, racy)
    }

    /// Takes up the events an earlier page saved (`{"v":1,...}`); how many.
    pub fn restore(&mut self, text: &str, now: f64) -> usize {
        if self.inert {
            return 0;
        }
        self.core.restore(text, now)
    }

    /// What to do now: requests to make, console lines, when to call again.
    pub fn poll(&mut self, now: f64) -> Output {
        let mut requests = Vec::new();
        if !self.inert {
            while let Some(r) = self.core.poll_request(now) {
                requests.push(r);
            }
        }
        Output {
            requests,
            logs: self.core.take_logs(),
            wake: self.core.next_wake(now),
            visit: self.visit_out(false),
        }
    }

    /// The visit's text to write to storage, when a write is due (see
    /// [`Visits::to_store`]); `hiding`: the page is being hidden. Only in a browser, and with
    /// consent.
    pub fn visit_out(&mut self, hiding: bool) -> Option<String> {
        if !self.browser || self.inert || self.core.consent() != Consent::Granted {
            return None;
        }
        self.visits.to_store(hiding)
    }

    /// The visit's id (`client.sessionId`), starting one on `page` (the loader's record of the
    /// page) when there is none; `""` outside a browser.
    pub fn session_id(&mut self, page: &str, now: f64) -> String {
        if !self.browser || self.inert {
            return String::new();
        }
        if let (false, Some(v)) = (self.visits.arriving(), self.visits.current(now)) {
            return v.id.clone();
        }
        let fields = calls::page_fields(members(page).as_deref());
        let snapshot = PageSnapshot {
            url: calls::part(&fields, "url"),
            referrer: calls::part(&fields, "referrer"),
        };
        let arriving = self.visits.arriving();
        self.visits.arrived();
        let v = self
            .visits
            .at(now, &snapshot, arriving, &self.ai_providers, &mut self.rng);
        v.id.clone()
    }

    /// Takes up the visit another tab wrote (see [`Visits::adopt`]).
    pub fn adopt_visit(&mut self, text: &str) {
        if self.browser && self.core.consent() != Consent::Denied {
            self.visits.adopt(text);
        }
    }

    /// `reset()`, for a logout: a new anonymous id, no identified user, a new visit without
    /// attribution; the session tokens of the old identities go once what was recorded under
    /// them is delivered. Consent stays (it is the browser's).
    pub fn reset(&mut self, now: f64) {
        if self.shut_down {
            return;
        }
        self.anonymous_id = self.new_uuid();
        self.identified = None;
        self.saved_identified = None;
        if self.browser {
            self.visits.reset(now, &mut self.rng);
        }
        self.core.retire_sessions();
    }

    /// `autoPageViews` was set.
    pub fn auto_page_views(&self) -> bool {
        self.auto_page_views
    }

    /// The next part of `body` (of a request [`Client::poll`] or [`Client::hidden`] asked
    /// for); `""` once it was all given. A mint body comes whole, an ingestion batch in parts
    /// of about 64 KiB.
    pub fn body_part(&self, body: &mut Body) -> String {
        match body {
            Body::Text(s) => core::mem::take(s),
            Body::Batch(id, cursor) => self.core.body_part(*id, cursor),
        }
    }

    /// The console lines waiting (see [`Client::poll`]).
    pub fn take_logs(&mut self) -> Vec<crate::core::pipeline::Log> {
        self.core.take_logs()
    }

    /// `stats()` as JSON.
    pub fn stats(&self, now: f64) -> String {
        output::stats(&self.core, self.before_send_errors, now)
    }

    /// The pipeline, for tests and the figures of [`Client::stats`].
    pub fn pipeline(&self) -> &Pipeline {
        &self.core
    }
}

#[cfg(test)]
mod tests;
