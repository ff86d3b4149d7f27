//! Sessions for public (`pk_`) keys: one per identity, each a small state machine.
//!
//! A public key is exchanged for a short-lived token locked to one uid
//! (docs/protocol.md, "Session tokens"). The rules, from the codebases in ARCHITECTURE.md:
//! - one mint in flight per identity; everyone waiting shares its result, and an answer is
//!   only ever applied to the session that asked for it (answers are matched by request id);
//! - the token's lifetime is the server's `expires_in`, counted from the moment the answer
//!   arrived, so a client clock that is hours off changes nothing;
//! - the token is renewed ahead of expiry (60 s before, or half-way for short lifetimes), while
//!   the old one stays in use, so that a flush never has to wait for a mint;
//! - a 401 or 403 from the session endpoint is terminal for that identity (no hot loop) until
//!   the app supplies a new signature; 5xx and network errors back off like ingestion.

use crate::core::delivery::{backoff_ms, http_reason, HttpResult, MAX_ATTEMPTS};
use crate::core::event::Identity;
use crate::core::json::{self, write_str};
use crate::core::time::parse_retry_after;
#[allow(unused_imports)]
use crate::prelude::*;

/// Renew this long before the server's expiry, when the lifetime allows.
pub const REFRESH_LEAD_MS: f64 = 60_000.0;
/// A token is not used in its last second, to absorb the request's own latency.
pub const EXPIRY_MARGIN_MS: f64 = 1_000.0;
/// Longest lifetime believed, whatever the server says: a day. Session tokens live 15 minutes;
/// a far larger figure is a server bug, and must not become a token used forever (or a timer
/// delay beyond what `setTimeout` can hold).
pub const MAX_LIFETIME_MS: f64 = 24.0 * 3600.0 * 1000.0;
/// Lifetime assumed when an answer lacks `expires_in` (an older server): short, so that a
/// wrong guess costs a mint a minute rather than a 401 loop.
pub const FALLBACK_LIFETIME_MS: f64 = 60_000.0;

/// The uid a session is locked to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub anonymous: bool,
    pub uid: String,
}

impl SessionKey {
    /// True when `identity` belongs to this session (no allocation).
    pub fn matches(&self, identity: &Identity) -> bool {
        match identity {
            Identity::User { user_id, .. } => !self.anonymous && *user_id == self.uid,
            Identity::Anonymous { anonymous_id } => self.anonymous && *anonymous_id == self.uid,
        }
    }

    pub fn of(identity: &Identity) -> SessionKey {
        match identity {
            Identity::User { user_id, .. } => SessionKey {
                anonymous: false,
                uid: user_id.clone(),
            },
            Identity::Anonymous { anonymous_id } => SessionKey {
                anonymous: true,
                uid: anonymous_id.clone(),
            },
        }
    }
}

/// A user id signature from the app's backend (`@segops/sdk/server`'s `signUserId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub sig: String,
    pub ts: i64,
}

/// The body of a mint request.
pub fn mint_body(key: &SessionKey, signature: Option<&Signature>) -> String {
    let mut body = String::with_capacity(64 + key.uid.len());
    if key.anonymous {
        body.push_str("{\"anonymous_id\":");
        write_str(&mut body, &key.uid);
    } else {
        body.push_str("{\"user_id\":");
        write_str(&mut body, &key.uid);
        if let Some(s) = signature {
            body.push_str(",\"user_id_sig\":");
            write_str(&mut body, &s.sig);
            body.push_str(",\"user_id_ts\":");
            crate::core::num::push_int(&mut body, s.ts);
        }
    }
    body.push('}');
    body
}

/// What an answer from the session endpoint means.
#[derive(Debug, Clone, PartialEq)]
pub enum MintAnswer {
    Token {
        token: String,
        lifetime_ms: f64,
    },
    /// 408, 429, 5xx, network, timeout, or a 2xx we cannot read: try again later.
    Retry {
        after_ms: Option<f64>,
        reason: String,
    },
    /// 400, 401, 403 and other 4xx: this identity cannot get a token as things are.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

pub fn classify_mint(result: &HttpResult, expected_uid: &str, now_ms: f64) -> MintAnswer {
    let (status, retry_after, body) = match result.answer() {
        Ok(answer) => answer,
        Err(reason) => {
            return MintAnswer::Retry {
                after_ms: None,
                reason,
            }
        }
    };
    let text = |k: &str| json::get_str(body, k).unwrap_or_default();
    match status {
        200..=299 => {
            let token = text("token");
            // A token for another uid must never be used for this one.
            if token.is_empty() || json::get_str(body, "uid").as_deref() != Some(expected_uid) {
                return MintAnswer::Retry {
                    after_ms: None,
                    reason: "unreadable session answer".into(),
                };
            }
            let lifetime_ms = json::get(body, "expires_in")
                .and_then(json::scalar)
                .and_then(|v| match v {
                    json::Value::Number(n) => n.as_u64_saturating(),
                    _ => None,
                })
                .filter(|s| *s > 0)
                .map_or(FALLBACK_LIFETIME_MS, |s| {
                    (s.min(u64::from(u32::MAX)) as f64 * 1000.0).min(MAX_LIFETIME_MS)
                });
            MintAnswer::Token { token, lifetime_ms }
        }
        408 | 429 | 500..=599 => MintAnswer::Retry {
            after_ms: retry_after.and_then(|h| parse_retry_after(h, now_ms)),
            reason: http_reason(status),
        },
        _ => MintAnswer::Refused {
            status,
            code: {
                let c = text("code");
                if c.is_empty() {
                    let mut c = String::from("http_");
                    crate::core::num::push_int(&mut c, i64::from(status));
                    c
                } else {
                    c
                }
            },
            message: text("message"),
        },
    }
}

/// When to renew a token of `lifetime_ms`, counted from its arrival.
pub fn refresh_after_ms(lifetime_ms: f64) -> f64 {
    if lifetime_ms > 2.0 * REFRESH_LEAD_MS {
        lifetime_ms - REFRESH_LEAD_MS
    } else {
        lifetime_ms / 2.0
    }
}

/// A session's state.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// No token and no request.
    Idle,
    /// The first mint (or a re-mint) is in flight.
    Minting { request: u64 },
    /// A token usable until `expires_at`; a renewal may be in flight.
    Valid {
        token: String,
        refresh_at: f64,
        expires_at: f64,
        refreshing: Option<u64>,
    },
    /// The last mint failed for a passing reason; no new one before `until`.
    Backoff { until: f64 },
    /// Refused by the server; nothing more is tried for this identity.
    Failed { code: String, message: String },
}

/// What a mint answer did to a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The answer was not for this session's current request: ignored.
    Stale,
    Minted,
    /// Backing off; `gave_up` after `MAX_ATTEMPTS` failures in a row.
    Retrying {
        reason: String,
        gave_up: bool,
    },
    Failed {
        status: u16,
        code: String,
        message: String,
    },
}

/// One identity's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub key: SessionKey,
    pub state: State,
    /// The newest signature the app gave for this user id.
    pub signature: Option<Signature>,
    /// Mint failures in a row.
    pub failures: u32,
    /// When an event of this identity was last recorded.
    pub last_activity: f64,
    /// When the current token arrived.
    pub minted_at: f64,
    /// Mints requested, re-mints and renewals included.
    pub mints: u64,
    /// An identity from before `reset()`: its token goes once its events are delivered.
    pub retired: bool,
}

impl Session {
    pub fn new(key: SessionKey) -> Session {
        Session {
            key,
            state: State::Idle,
            signature: None,
            failures: 0,
            last_activity: f64::NEG_INFINITY,
            minted_at: f64::NEG_INFINITY,
            mints: 0,
            retired: false,
        }
    }

    /// The token to send now, if there is a usable one.
    pub fn token(&self, now: f64) -> Option<&str> {
        match &self.state {
            State::Valid {
                token, expires_at, ..
            } if now < *expires_at => Some(token),
            _ => None,
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed { .. })
    }

    /// True when a blocking mint may start now (no usable token, none in flight).
    pub fn can_mint(&self, now: f64) -> bool {
        match &self.state {
            State::Idle => true,
            State::Backoff { until } => now >= *until,
            State::Valid {
                expires_at,
                refreshing,
                ..
            } => now >= *expires_at && refreshing.is_none(),
            State::Minting { .. } | State::Failed { .. } => false,
        }
    }

    /// True when the token should be renewed ahead of time: it is due, and the identity was
    /// active since the token arrived (an idle tab does not mint all day).
    pub fn wants_refresh(&self, now: f64) -> bool {
        match &self.state {
            State::Valid {
                refresh_at,
                expires_at,
                refreshing: None,
                ..
            } => now >= *refresh_at && now < *expires_at && self.last_activity >= self.minted_at,
            _ => false,
        }
    }

    /// Marks request `id` as this session's mint (a renewal when a token is valid).
    pub fn start_mint(&mut self, id: u64, now: f64) {
        self.mints += 1;
        self.state = match core::mem::replace(&mut self.state, State::Idle) {
            State::Valid {
                token,
                refresh_at,
                expires_at,
                ..
            } if now < expires_at => State::Valid {
                token,
                refresh_at,
                expires_at,
                refreshing: Some(id),
            },
            _ => State::Minting { request: id },
        };
    }

    /// The request id of this session's mint in flight, if any.
    pub fn mint_in_flight(&self) -> Option<u64> {
        match &self.state {
            State::Minting { request } => Some(*request),
            State::Valid { refreshing, .. } => *refreshing,
            _ => None,
        }
    }

    /// When the token should be renewed, if it will be (see [`Session::wants_refresh`]).
    pub fn refresh_wake(&self, now: f64) -> Option<f64> {
        match &self.state {
            State::Valid {
                refresh_at,
                expires_at,
                refreshing: None,
                ..
            } if now < *expires_at && self.last_activity >= self.minted_at => Some(*refresh_at),
            _ => None,
        }
    }

    /// The end of a mint backoff, if the session is in one.
    pub fn backoff_until(&self) -> Option<f64> {
        match &self.state {
            State::Backoff { until } => Some(*until),
            _ => None,
        }
    }

    /// Drops the token after the server refused it (a 401 on ingestion).
    pub fn invalidate(&mut self) {
        if matches!(self.state, State::Valid { .. }) {
            self.state = State::Idle;
        }
    }

    /// Marks the identity as refused, with the server's reason.
    pub fn fail(&mut self, code: String, message: String) {
        self.state = State::Failed { code, message };
    }

    /// A new signature from the app revives a refused user session.
    pub fn set_signature(&mut self, signature: Signature) {
        if self.signature.as_ref() != Some(&signature) {
            self.signature = Some(signature);
            if self.is_failed() {
                self.state = State::Idle;
                self.failures = 0;
            }
        }
    }

    /// Applies the answer to request `id`. `jitter` in [0, 1) spreads retries.
    pub fn on_answer(&mut self, id: u64, result: &HttpResult, now: f64, jitter: f64) -> Transition {
        if self.mint_in_flight() != Some(id) {
            return Transition::Stale;
        }
        let renewing = matches!(self.state, State::Valid { .. });
        match classify_mint(result, &self.key.uid, now) {
            MintAnswer::Token { token, lifetime_ms } => {
                self.failures = 0;
                self.minted_at = now;
                self.state = State::Valid {
                    token,
                    refresh_at: now + refresh_after_ms(lifetime_ms),
                    expires_at: now + lifetime_ms - EXPIRY_MARGIN_MS.min(lifetime_ms / 4.0),
                    refreshing: None,
                };
                Transition::Minted
            }
            MintAnswer::Retry { after_ms, reason } => {
                self.failures += 1;
                let wait = backoff_ms(self.failures, after_ms, jitter);
                let gave_up = self.failures >= MAX_ATTEMPTS;
                if gave_up {
                    self.failures = 0;
                }
                self.state = match core::mem::replace(&mut self.state, State::Idle) {
                    // Keep the old token while it lasts; renew again after the backoff.
                    State::Valid {
                        token, expires_at, ..
                    } if renewing => State::Valid {
                        token,
                        refresh_at: now + wait,
                        expires_at,
                        refreshing: None,
                    },
                    _ => State::Backoff { until: now + wait },
                };
                Transition::Retrying { reason, gave_up }
            }
            MintAnswer::Refused {
                status,
                code,
                message,
            } => {
                self.fail(code.clone(), message.clone());
                Transition::Failed {
                    status,
                    code,
                    message,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uid: &str, expires_in: f64) -> HttpResult {
        HttpResult::Response {
            status: 200,
            retry_after: None,
            body: format!(
                r#"{{"token":"t-{uid}","expires_at":"x","expires_in":{expires_in},"uid":"{uid}","uid_kind":"user"}}"#
            ),
        }
    }

    fn refused(status: u16, code: &str) -> HttpResult {
        HttpResult::Response {
            status,
            retry_after: None,
            body: format!(r#"{{"code":"{code}","message":"no"}}"#),
        }
    }

    fn user(uid: &str) -> SessionKey {
        SessionKey {
            anonymous: false,
            uid: uid.into(),
        }
    }

    #[test]
    fn mint_bodies() {
        assert_eq!(
            mint_body(
                &SessionKey {
                    anonymous: true,
                    uid: "a\"1".into()
                },
                None
            ),
            r#"{"anonymous_id":"a\"1"}"#
        );
        assert_eq!(mint_body(&user("alice"), None), r#"{"user_id":"alice"}"#);
        let sig = Signature {
            sig: "ab".into(),
            ts: 1_700_000_000,
        };
        assert_eq!(
            mint_body(&user("alice"), Some(&sig)),
            r#"{"user_id":"alice","user_id_sig":"ab","user_id_ts":1700000000}"#
        );
        // Anonymous sessions never send a signature.
        assert_eq!(
            mint_body(
                &SessionKey {
                    anonymous: true,
                    uid: "v".into()
                },
                Some(&sig)
            ),
            r#"{"anonymous_id":"v"}"#
        );
    }

    #[test]
    fn mint_answers() {
        assert_eq!(
            classify_mint(&ok("alice", 900.0), "alice", 0.0),
            MintAnswer::Token {
                token: "t-alice".into(),
                lifetime_ms: 900_000.0
            }
        );
        // A token for another uid is never taken.
        assert!(matches!(
            classify_mint(&ok("bob", 900.0), "alice", 0.0),
            MintAnswer::Retry { .. }
        ));
        let no_expiry = HttpResult::Response {
            status: 200,
            retry_after: None,
            body: r#"{"token":"t","uid":"alice"}"#.into(),
        };
        assert_eq!(
            classify_mint(&no_expiry, "alice", 0.0),
            MintAnswer::Token {
                token: "t".into(),
                lifetime_ms: FALLBACK_LIFETIME_MS
            }
        );
        for (status, code) in [
            (403, "origin_not_allowed"),
            (401, "api_key_revoked"),
            (403, "signature_expired"),
            (400, "invalid_request"),
        ] {
            assert_eq!(
                classify_mint(&refused(status, code), "alice", 0.0),
                MintAnswer::Refused {
                    status,
                    code: code.into(),
                    message: "no".into()
                }
            );
        }
        assert!(matches!(
            classify_mint(&refused(404, ""), "alice", 0.0),
            MintAnswer::Refused { ref code, .. } if code == "http_404"
        ));
        for status in [500, 503, 429, 408] {
            assert!(matches!(
                classify_mint(&refused(status, "x"), "alice", 0.0),
                MintAnswer::Retry { .. }
            ));
        }
        assert!(matches!(
            classify_mint(&HttpResult::Timeout, "alice", 0.0),
            MintAnswer::Retry { .. }
        ));
    }

    #[test]
    fn an_absurd_lifetime_is_capped() {
        for expires_in in ["1e308", "86401", "9007199254740993"] {
            let answer = HttpResult::Response {
                status: 200,
                retry_after: None,
                body: format!(r#"{{"token":"t","expires_in":{expires_in},"uid":"a"}}"#),
            };
            assert_eq!(
                classify_mint(&answer, "a", 0.0),
                MintAnswer::Token {
                    token: "t".into(),
                    lifetime_ms: MAX_LIFETIME_MS
                },
                "{expires_in}"
            );
        }
    }

    #[test]
    fn refresh_timing() {
        assert_eq!(refresh_after_ms(900_000.0), 840_000.0);
        assert_eq!(refresh_after_ms(8_000.0), 4_000.0);
        assert_eq!(refresh_after_ms(120_000.0), 60_000.0);
    }

    #[test]
    fn lifecycle_mint_refresh_and_expiry() {
        let mut s = Session::new(user("alice"));
        assert!(s.can_mint(0.0));
        s.start_mint(1, 0.0);
        assert!(!s.can_mint(0.0), "one mint in flight");
        assert_eq!(
            s.on_answer(2, &ok("alice", 900.0), 10.0, 0.5),
            Transition::Stale
        );
        // The lifetime counts from the answer's arrival, whatever the server's clock says.
        assert_eq!(
            s.on_answer(1, &ok("alice", 900.0), 1_000.0, 0.5),
            Transition::Minted
        );
        assert_eq!(s.token(1_000.0), Some("t-alice"));
        assert_eq!(s.token(1_000.0 + 899_000.0 - 1.0), Some("t-alice"));
        assert_eq!(
            s.token(1_000.0 + 899_000.0),
            None,
            "unused in its last second"
        );
        // Not renewed without activity since the token arrived.
        assert!(!s.wants_refresh(841_000.0));
        assert_eq!(s.refresh_wake(2_000.0), None);
        s.last_activity = 5_000.0;
        assert_eq!(s.refresh_wake(2_000.0), Some(841_000.0));
        assert_eq!(s.refresh_wake(900_000.0), None, "not after expiry");
        assert!(!s.wants_refresh(840_999.0));
        assert!(s.wants_refresh(841_000.0));
        s.start_mint(3, 841_000.0);
        assert_eq!(
            s.token(841_001.0),
            Some("t-alice"),
            "the old token serves during renewal"
        );
        assert!(!s.wants_refresh(841_001.0));
        let renewed = HttpResult::Response {
            status: 200,
            retry_after: None,
            body: r#"{"token":"t2","expires_in":900,"uid":"alice"}"#.into(),
        };
        assert_eq!(s.on_answer(3, &renewed, 841_100.0, 0.5), Transition::Minted);
        assert_eq!(s.token(841_200.0), Some("t2"));
        assert_eq!(s.mints, 2);
    }

    #[test]
    fn a_failed_renewal_keeps_the_old_token() {
        let mut s = Session::new(user("alice"));
        s.start_mint(1, 0.0);
        s.on_answer(1, &ok("alice", 900.0), 0.0, 0.5);
        s.last_activity = 1.0;
        s.start_mint(2, 840_000.0);
        let t = s.on_answer(2, &refused(503, "x"), 840_000.0, 0.5);
        assert!(matches!(t, Transition::Retrying { gave_up: false, .. }));
        assert_eq!(s.token(840_001.0), Some("t-alice"));
        assert_eq!(
            s.refresh_wake(840_001.0),
            Some(840_500.0),
            "renews again after the backoff"
        );
    }

    #[test]
    fn refusals_are_terminal_until_a_new_signature() {
        let mut s = Session::new(user("alice"));
        s.set_signature(Signature {
            sig: "a".into(),
            ts: 1,
        });
        s.start_mint(1, 0.0);
        let t = s.on_answer(1, &refused(403, "signature_expired"), 0.0, 0.5);
        assert_eq!(
            t,
            Transition::Failed {
                status: 403,
                code: "signature_expired".into(),
                message: "no".into()
            }
        );
        assert!(s.is_failed());
        assert!(!s.can_mint(1e12), "no hot loop");
        assert_eq!(s.refresh_wake(0.0), None);
        assert_eq!(s.backoff_until(), None);
        s.set_signature(Signature {
            sig: "a".into(),
            ts: 1,
        });
        assert!(s.is_failed(), "the same signature changes nothing");
        s.set_signature(Signature {
            sig: "b".into(),
            ts: 2,
        });
        assert!(s.can_mint(0.0), "a fresh signature revives it");
    }

    #[test]
    fn transient_failures_back_off_and_give_up_after_max_attempts() {
        let mut s = Session::new(user("alice"));
        let mut now = 0.0;
        for attempt in 1..=MAX_ATTEMPTS {
            assert!(s.can_mint(now));
            s.start_mint(u64::from(attempt), now);
            let t = s.on_answer(
                u64::from(attempt),
                &HttpResult::Network("down".into()),
                now,
                0.999,
            );
            assert_eq!(
                t,
                Transition::Retrying {
                    reason: "down".into(),
                    gave_up: attempt == MAX_ATTEMPTS
                }
            );
            let until = s.backoff_until().unwrap();
            assert!(until > now);
            assert!(!s.can_mint(until - 1.0));
            now = until;
        }
    }

    #[test]
    fn a_401_on_ingestion_drops_the_token() {
        let mut s = Session::new(user("alice"));
        s.start_mint(1, 0.0);
        s.on_answer(1, &ok("alice", 900.0), 0.0, 0.5);
        s.invalidate();
        assert_eq!(s.token(1.0), None);
        assert!(s.can_mint(1.0));
    }
}
