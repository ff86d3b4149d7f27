//! A page being hidden, shown again or reloaded: keepalive sends, and the snapshot of unsent
//! events that the next page load of the origin takes up.

#[allow(unused_imports)]
use crate::prelude::*;

use super::*;

impl Pipeline {
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
                        let i = sessions.iter().position(|s| s.key.matches(e.identity()))?;
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
            let mut batch = batch;
            batch.sent_at = now;
            let bytes = self.body_len(&batch);
            budget = budget.saturating_sub(bytes);
            let id = self.new_request_id();
            self.stats.requests += 1;
            self.stats.keepalive_requests += 1;
            self.stats.bytes_sent += bytes as u64;
            self.keepalive.push((id, batch, session, bytes));
            requests.push(Request {
                id,
                url: self.cfg.ingest_url(),
                authorization,
                body: String::new(),
                bytes,
                keepalive: true,
                timeout_ms: self.cfg.request_timeout_ms,
            });
        }
        requests
    }

    /// Another page of the origin took up this page's saved snapshot while this page was hidden
    /// (or frozen in the back/forward cache): the events it held are that page's to deliver
    /// now. They go from here, wherever they are (queued, waiting for a retry, in flight: an
    /// answer that comes later is ignored); events the snapshot did not hold stay (recorded
    /// after it, or left out of it by its bound). With `racy`, the latest snapshot was written
    /// while the one before it was still in storage, outside the origin's lock, so the other
    /// page may have taken either: only the events both held go. Counted in
    /// `stats().handedOver`, not as dropped: nothing is lost. Returns how many.
    /// Without `taken`, the snapshot was found untaken (and removed): this only forgets which
    /// events it held.
    pub fn hand_over(&mut self, taken: bool, racy: bool) -> usize {
        let [latest, previous] = core::mem::take(&mut self.saved);
        if !taken {
            return 0;
        }
        let taken = |seq: u64| {
            latest.binary_search(&seq).is_ok() && (!racy || previous.binary_search(&seq).is_ok())
        };
        let before = self.pending();
        let mut bytes = 0;
        self.queue.retain(|e| {
            let keep = !taken(e.seq);
            if !keep {
                bytes += e.len();
            }
            keep
        });
        self.queue_bytes -= bytes;
        if self.queue.is_empty() {
            self.deadline = None;
        }
        // A batch (waiting for a retry, in flight, or sent with keepalive) goes when the other
        // page holds all of it, which is the rule: its events were recorded before the
        // snapshot. Otherwise it stays, and the server drops what it gets twice by message_id.
        // An answer to a batch that went is ignored.
        let gone = |b: &Batch| b.events.iter().all(|e| taken(e.seq));
        self.ready.retain(|b| !gone(b));
        if self.in_flight.as_ref().is_some_and(|(_, b, _)| gone(b)) {
            self.in_flight = None;
        }
        let mut i = 0;
        while i < self.keepalive.len() {
            if gone(&self.keepalive[i].1) {
                self.keepalive.swap_remove(i);
            } else {
                i += 1;
            }
        }
        let n = before - self.pending();
        self.stats.handed_over += n as u64;
        if n > 0 {
            let mut m = String::from("SegOps: ");
            crate::core::num::push_int(&mut m, n as i64);
            m.push_str(
                " unsent event(s) were taken up by another page of this site, which sends them",
            );
            self.debug(&[&m]);
        }
        n
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
        // Which events this snapshot holds, for hand_over(); the previous one's too.
        self.saved.swap(0, 1);
        self.saved[0].clear();
        if self.consent != Consent::Granted {
            self.stats.unsaved = 0;
            return String::new();
        }
        // (Order only decides which events a full snapshot leaves out.)
        self.stats.unsaved = 0;
        let all: Vec<&Queued> = self.waiting_events().collect();
        if all.is_empty() {
            return String::new();
        }
        let mut size = 0usize;
        let mut start = all.len();
        while start > 0 {
            // Escaping grows event JSON by its quotes and backslashes, about a tenth.
            let add = all[start - 1].len() * 11 / 10 + 3;
            if size + add > MAX_PERSIST_BYTES {
                break;
            }
            size += add;
            start -= 1;
        }
        let unsaved = start as u64;
        // Ascending, for binary_search (inserting into a nearly sorted list, with no sort code
        // in the module).
        let mut held: Vec<u64> = Vec::with_capacity(all.len() - start);
        for e in &all[start..] {
            if let Err(at) = held.binary_search(&e.seq) {
                held.insert(at, e.seq);
            }
        }
        let mut out = String::with_capacity(size + 20);
        out.push_str("{\"v\":1,\"events\":[");
        for (i, e) in all[start..].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut json = String::with_capacity(e.len());
            e.write(&mut json);
            crate::core::json::write_str(&mut out, &json);
        }
        out.push_str("]}");
        self.saved[0] = held;
        self.stats.unsaved = unsaved;
        out
    }

    /// Counts events taken up from an earlier page's saved calls (recorded through the client).
    pub fn took_up(&mut self, n: usize) {
        self.stats.restored += n as u64;
    }

    /// Takes up a snapshot saved by an earlier page. Events keep their `message_id` (the server
    /// drops any it already has); malformed entries are skipped. Returns how many were taken.
    pub fn restore(&mut self, text: &str, now: f64) -> usize {
        if self.consent == Consent::Denied {
            return 0;
        }
        if crate::core::json::get_u64(text, "v") != Some(1) {
            return 0;
        }
        let Some(events) =
            crate::core::json::get(text, "events").and_then(crate::core::json::items)
        else {
            return 0;
        };
        let mut taken = 0;
        for entry in events {
            let Some(crate::core::json::Value::String(json)) = crate::core::json::scalar(entry)
            else {
                continue;
            };
            let json = json.as_str();
            if json.len() > self.cfg.max_event_bytes as usize {
                continue;
            }
            let Some(event) = Restored::of(json) else {
                continue;
            };
            if let Credentials::Public { sessions, .. } = &mut self.credentials {
                session_index(sessions, &event.identity);
            }
            let context = event.context.map(str::to_string);
            let who = self.shared_who(&event.identity, context, &mut Cuts::default());
            self.push(
                Queued {
                    seq: 0,
                    body: event.body.into_boxed_str(),
                    who,
                },
                now,
            );
            taken += 1;
        }
        self.stats.restored += taken as u64;
        taken
    }
}

/// A saved event, taken apart into what the queue keeps.
struct Restored<'a> {
    /// The wire JSON without identity, context and closing brace.
    body: String,
    identity: Identity,
    context: Option<&'a str>,
}

impl<'a> Restored<'a> {
    /// `None` when `json` is not an event with a `message_id` and an identity.
    pub(super) fn of(json: &'a str) -> Option<Restored<'a>> {
        let members = crate::core::json::members(json)?;
        let id = |k: &str| -> Option<String> {
            let raw = members.iter().find(|(key, _)| key == k)?.1;
            match crate::core::json::scalar(raw) {
                Some(crate::core::json::Value::String(s))
                    if crate::core::event::check_id(k, &s).is_ok() =>
                {
                    Some(s)
                }
                _ => None,
            }
        };
        id("message_id")?;
        let identity = match (id("user_id"), id("anonymous_id")) {
            (Some(user_id), anonymous_id) => Identity::User {
                user_id,
                anonymous_id,
            },
            (None, Some(anonymous_id)) => Identity::Anonymous { anonymous_id },
            (None, None) => return None,
        };
        let mut body = String::with_capacity(json.len());
        let mut context = None;
        for (key, raw) in &members {
            match key.as_str() {
                "user_id" | "anonymous_id" => {}
                "context" => context = Some(*raw),
                _ => {
                    body.push(if body.is_empty() { '{' } else { ',' });
                    crate::core::json::write_str(&mut body, key);
                    body.push(':');
                    body.push_str(raw);
                }
            }
        }
        Some(Restored {
            body,
            identity,
            context,
        })
    }
}
