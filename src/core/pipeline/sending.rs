//! Batches and requests: what is due, which identity it goes under, and the request for it.

#[allow(unused_imports)]
use crate::prelude::*;

use super::*;

impl Pipeline {
    pub(super) fn queue_due(&self, now: f64) -> bool {
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
    pub(super) fn candidate(&self, now: f64) -> Option<(Source, Option<usize>)> {
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
            if let Some(i) = b.events.first().and_then(|e| index(e.identity())) {
                return Some((Source::Ready, Some(i)));
            }
        }
        if !self.queue_due(now) {
            return None;
        }
        self.queue
            .iter()
            .filter_map(|e| index(e.identity()))
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

    pub(super) fn envelope_bytes(&self) -> usize {
        let context = if self.batch_context.is_empty() {
            0
        } else {
            ",\"context\":".len() + self.batch_context.len()
        };
        "{\"events\":[]".len() + context + ",\"sent_at\":\"\"}".len() + SENT_AT_SAMPLE.len()
    }

    /// Takes the next batch from the queue: the oldest events (of one identity, for public
    /// keys) that fit in `maxBatchBytes`, and always at least one.
    pub(super) fn take_batch(&mut self, session: Option<&SessionKey>) -> Batch {
        self.take_batch_within(session, self.cfg.max_batch_bytes as usize, true)
    }

    /// [`Pipeline::take_batch`] with a body budget; with `!at_least_one`, an empty batch when
    /// the first event does not fit.
    pub(super) fn take_batch_within(
        &mut self,
        session: Option<&SessionKey>,
        budget: usize,
        at_least_one: bool,
    ) -> Batch {
        let mut size = self.envelope_bytes();
        let mut events = Vec::new();
        let mut skipped = VecDeque::new();
        while let Some(next) = self.queue.pop_front() {
            if session.is_some_and(|k| !k.matches(next.identity())) {
                skipped.push_back(next);
                continue;
            }
            let add = next.len() + usize::from(!events.is_empty());
            if (!events.is_empty() || !at_least_one) && size + add > budget {
                self.queue.push_front(next);
                break;
            }
            size += add;
            self.queue_bytes -= next.len();
            events.push(next);
        }
        // What was skipped goes back in front, in its order.
        while let Some(e) = skipped.pop_back() {
            self.queue.push_front(e);
        }
        if self.queue.is_empty() {
            self.deadline = None;
        }
        // Otherwise what is left waited as long as what just left: keep the deadline.
        Batch::new(events, 0, false)
    }

    /// Puts a batch's events back in the queue, in recording order (a merge of two ordered
    /// runs: no sort, whose code would weigh several kilobytes in the wasm).
    pub(super) fn requeue(&mut self, batch: Batch) {
        let mut merged = super::queue::Queue::default();
        let mut back = batch.events.into_iter().peekable();
        while let Some(q) = self.queue.pop_front() {
            while let Some(b) = back.next_if(|b| b.seq < q.seq) {
                self.queue_bytes += b.len();
                merged.push_back(b);
            }
            merged.push_back(q);
        }
        for b in back {
            self.queue_bytes += b.len();
            merged.push_back(b);
        }
        self.queue = merged;
        // Events coming back from a batch count against the bounds like any others.
        self.make_room(0, 0);
    }

    /// Drops every waiting event of the session at `index`, counted under `why`.
    pub(super) fn drop_identity(&mut self, index: usize, why: &str) {
        let Credentials::Public { sessions, .. } = &self.credentials else {
            return;
        };
        let key = sessions[index].key.clone();
        let before = self.queue.len();
        let mut bytes = 0;
        self.queue.retain(|e| {
            let keep = !key.matches(e.identity());
            if !keep {
                bytes += e.len();
            }
            keep
        });
        self.queue_bytes -= bytes;
        let mut n = (before - self.queue.len()) as u64;
        self.ready.retain(|b| {
            let keep = !b.events.first().is_some_and(|e| key.matches(e.identity()));
            if !keep {
                n += b.events.len() as u64;
            }
            keep
        });
        self.stats.drop_n(why, n);
    }

    /// Bytes of a batch's body.
    pub(super) fn body_len(&self, batch: &Batch) -> usize {
        let n = batch.events.len();
        self.envelope_bytes() + batch.events.iter().map(Queued::len).sum::<usize>() + n.max(1) - 1
    }

    /// The batch request `id` carries: in flight, or sent with keepalive.
    fn sent_batch(&self, id: u64) -> Option<&Batch> {
        match &self.in_flight {
            Some((fid, b, _)) if *fid == id => Some(b),
            _ => self
                .keepalive
                .iter()
                .find(|k| k.0 == id)
                .map(|(_, b, _, _)| b),
        }
    }

    /// The next part of the body of ingestion request `id`, about 64 KiB of it, from
    /// `cursor` on (start at 0); `""` once all of it was written, or for an unknown request.
    pub fn body_part(&self, id: u64, cursor: &mut usize) -> String {
        const PART: usize = 64 * 1024;
        let Some(batch) = self.sent_batch(id).filter(|_| *cursor != usize::MAX) else {
            return String::new();
        };
        let mut out = String::with_capacity(PART + 1024);
        if *cursor == 0 {
            out.push_str("{\"events\":[");
            *cursor = 1;
        }
        while let Some(e) = batch.events.get(*cursor - 1) {
            if out.len() >= PART {
                return out;
            }
            if *cursor > 1 {
                out.push(',');
            }
            e.write(&mut out);
            *cursor += 1;
        }
        out.push(']');
        if !self.batch_context.is_empty() {
            out.push_str(",\"context\":");
            out.push_str(&self.batch_context);
        }
        out.push_str(",\"sent_at\":\"");
        out.push_str(&format_iso8601(batch.sent_at));
        out.push_str("\"}");
        *cursor = usize::MAX;
        out
    }

    /// [`Pipeline::poll_request`] with an ingestion body written out whole, as the edge sends
    /// it: for tests and native tools.
    #[cfg(feature = "std")]
    pub fn poll_full(&mut self, now: f64) -> Option<Request> {
        let r = self.poll_request(now)?;
        Some(self.with_body(r))
    }

    /// [`Pipeline::on_hidden`] with the bodies written out whole (see [`Pipeline::poll_full`]).
    #[cfg(feature = "std")]
    pub fn hidden_full(&mut self, now: f64) -> Vec<Request> {
        let requests = self.on_hidden(now);
        requests.into_iter().map(|r| self.with_body(r)).collect()
    }

    #[cfg(feature = "std")]
    fn with_body(&self, mut r: Request) -> Request {
        if r.body.is_empty() {
            r.body = self.body_of(r.id).unwrap_or_default();
        }
        r
    }

    /// The whole body of ingestion request `id` (for tests and tools; the edge takes it in
    /// parts).
    pub fn body_of(&self, id: u64) -> Option<String> {
        self.sent_batch(id)?;
        let mut cursor = 0;
        let mut body = String::new();
        loop {
            let part = self.body_part(id, &mut cursor);
            if part.is_empty() {
                return Some(body);
            }
            body.push_str(&part);
        }
    }

    pub(super) fn new_request_id(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// A mint request for the session at `index`.
    pub(super) fn mint_request(&mut self, index: usize, now: f64) -> Option<Request> {
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
            bytes: body.len(),
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
        let mut batch = batch;
        batch.sent_at = now;
        let bytes = self.body_len(&batch);
        let id = self.new_request_id();
        self.stats.requests += 1;
        self.stats.bytes_sent += bytes as u64;
        if self.cfg.debug {
            let n = crate::core::num::int_string(batch.events.len() as i64);
            let bytes = crate::core::num::int_string(bytes as i64);
            let attempt = crate::core::num::int_string(i64::from(batch.attempts) + 1);
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
            body: String::new(),
            bytes,
            keepalive: false,
            timeout_ms: self.cfg.request_timeout_ms,
        })
    }
}
