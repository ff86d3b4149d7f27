//! What each answer means for the batch or session that asked.

#[allow(unused_imports)]
use crate::prelude::*;

use super::*;

impl Pipeline {
    pub(super) fn next_jitter(&mut self) -> f64 {
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
        self.drop_retired_tokens();
    }

    pub(super) fn on_mint_result(&mut self, id: u64, result: HttpResult, now: f64) {
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
                    crate::core::num::push_int(&mut m, i64::from(MAX_ATTEMPTS));
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
                crate::core::num::push_int(&mut m, i64::from(status));
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
                    let (own, other): (Vec<Batch>, Vec<Batch>) =
                        batches.into_iter().partition(|b| {
                            b.events.first().is_some_and(|e| self.refused(e.identity()))
                        });
                    self.ready = other.into();
                    for b in own {
                        self.requeue(b);
                    }
                }
            }
        }
    }

    pub(super) fn on_ingest_result(
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
                    crate::core::num::push_int(&mut m, refused as i64);
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
                    crate::core::num::push_int(&mut m, n as i64);
                    m.push_str(" event(s) after ");
                    crate::core::num::push_int(&mut m, i64::from(MAX_ATTEMPTS));
                    m.push_str(" attempts; last failure: ");
                    m.push_str(&reason);
                    self.stats.last_error = Some(("retries_exhausted".into(), m.clone()));
                    self.log(Level::Warn, m);
                } else {
                    let jitter = self.next_jitter();
                    let wait = backoff_ms(batch.attempts, after_ms, jitter);
                    self.not_before = now + wait;
                    if self.cfg.debug {
                        let w = crate::core::num::int_string(crate::core::num::round(wait) as i64);
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
                crate::core::num::push_int(&mut r, i64::from(status));
                let n = batch.events.len() as u64;
                self.stats.drop_n(&r, n);
                let mut m = String::from("SegOps: the API refused a batch with HTTP ");
                crate::core::num::push_int(&mut m, i64::from(status));
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

    pub(super) fn on_ingest_refused(
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
                crate::core::num::push_int(&mut m, i64::from(status));
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
                crate::core::num::push_int(&mut m, i64::from(status));
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
