//! What an HTTP answer means for a batch, and how long to wait before trying again.
//!
//! [`classify`] is the one place where statuses are interpreted; everything else matches on
//! [`Outcome`]. It is a pure function of the answer and the time.

use crate::core::json;
use crate::core::time::parse_retry_after;
#[allow(unused_imports)]
use crate::prelude::*;

/// First retry waits up to 1 s (full jitter: a uniform draw in [0, ceiling)).
pub const BACKOFF_BASE_MS: f64 = 1_000.0;
/// No wait exceeds 30 s, including a server's `Retry-After`: a page rarely lives longer
/// between flushes, and a hidden page flushes without waiting anyway.
pub const BACKOFF_CAP_MS: f64 = 30_000.0;
/// Attempts per batch, the first included, before its events are dropped and counted as
/// `retries_exhausted`. With the base and cap above that is up to about 3.5 minutes of trying.
pub const MAX_ATTEMPTS: u32 = 10;

/// How a request ended, as the platform reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpResult {
    /// The server answered. `retry_after` is the raw `Retry-After` header, when readable.
    Response {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// No answer: DNS, connection refused, CORS failure, offline. The text is for logs.
    Network(String),
    /// No answer within `requestTimeoutMs`; the request was aborted.
    Timeout,
}

impl HttpResult {
    /// The answer's status, readable `Retry-After` and body; or, when there was no answer,
    /// why (for a log line): the caller retries.
    pub fn answer(&self) -> Result<(u16, Option<&str>, &str), String> {
        match self {
            HttpResult::Response {
                status,
                retry_after,
                body,
            } => Ok((*status, retry_after.as_deref(), body)),
            HttpResult::Network(e) if e.is_empty() => Err("network error".to_string()),
            HttpResult::Network(e) => Err(e.clone()),
            HttpResult::Timeout => Err("timeout".to_string()),
        }
    }
}

/// `"HTTP 503"`, for log lines.
pub fn http_reason(status: u16) -> String {
    let mut r = String::from("HTTP ");
    crate::core::num::push_int(&mut r, i64::from(status));
    r
}

/// One event the server refused, by its index in the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub index: usize,
    pub code: String,
}

/// What to do with a batch after an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: done. Rejected events are dropped and counted by code.
    Delivered {
        accepted: u64,
        duplicates: u64,
        rejected: Vec<Rejection>,
    },
    /// 408, 429, 5xx, network error, timeout: try again after a backoff (at least `after_ms`
    /// when the server said so).
    Retry {
        after_ms: Option<f64>,
        reason: String,
    },
    /// 400: drop the events the server names (or the whole batch when it names none).
    Invalid { rejected: Vec<Rejection> },
    /// 413: split the batch; a single event is dropped.
    TooLarge,
    /// 401 or 403: the credentials are not (or no longer) good.
    AuthFailed {
        status: u16,
        code: String,
        message: String,
    },
    /// Any other 4xx: the server will never take this batch; drop it.
    Refused { status: u16, code: String },
}

fn error_fields(body: &str) -> (String, String) {
    (
        json::get_str(body, "code").unwrap_or_default(),
        json::get_str(body, "message").unwrap_or_default(),
    )
}

fn rejections(body: &str) -> Vec<Rejection> {
    let list = json::get(body, "rejected").and_then(json::items);
    list.unwrap_or_default()
        .into_iter()
        .filter_map(|r| {
            let index = usize::try_from(json::get_u64(r, "index")?).ok()?;
            let code = json::get_str(r, "code").unwrap_or_else(|| "rejected".to_string());
            Some(Rejection { index, code })
        })
        .collect()
}

/// Interprets an answer to an ingestion request.
pub fn classify(result: &HttpResult, now_ms: f64) -> Outcome {
    let (status, retry_after, body) = match result.answer() {
        Ok(answer) => answer,
        Err(reason) => {
            return Outcome::Retry {
                after_ms: None,
                reason,
            }
        }
    };
    match status {
        200..=299 => Outcome::Delivered {
            accepted: json::get_u64(body, "accepted").unwrap_or(0),
            duplicates: json::get_u64(body, "duplicates").unwrap_or(0),
            rejected: rejections(body),
        },
        400 => Outcome::Invalid {
            rejected: rejections(body),
        },
        401 | 403 => {
            let (code, message) = error_fields(body);
            Outcome::AuthFailed {
                status,
                code,
                message,
            }
        }
        413 => Outcome::TooLarge,
        408 | 429 | 500..=599 => Outcome::Retry {
            after_ms: retry_after.and_then(|h| parse_retry_after(h, now_ms)),
            reason: http_reason(status),
        },
        _ => Outcome::Refused {
            status,
            code: error_fields(body).0,
        },
    }
}

/// The wait before attempt `attempt + 1`, after `attempt` failed attempts (1 or more).
///
/// Exponential with full jitter: a uniform draw in `[0, min(cap, base * 2^(attempt-1)))`, with
/// `jitter` in `[0, 1)` supplied by the caller. A server's `Retry-After` wins when present,
/// clamped to the cap.
pub fn backoff_ms(attempt: u32, retry_after_ms: Option<f64>, jitter: f64) -> f64 {
    if let Some(after) = retry_after_ms {
        return after.clamp(0.0, BACKOFF_CAP_MS);
    }
    let exp = attempt.saturating_sub(1).min(30);
    let ceiling = (BACKOFF_BASE_MS * (1u64 << exp) as f64).min(BACKOFF_CAP_MS);
    (ceiling * jitter.clamp(0.0, 1.0)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> HttpResult {
        HttpResult::Response {
            status,
            retry_after: None,
            body: body.into(),
        }
    }

    #[test]
    fn classification_table() {
        let now = 1_000_000.0;
        assert_eq!(
            classify(
                &resp(200, r#"{"accepted":3,"duplicates":1,"rejected":[]}"#),
                now
            ),
            Outcome::Delivered {
                accepted: 3,
                duplicates: 1,
                rejected: vec![]
            }
        );
        assert_eq!(
            classify(
                &resp(
                    200,
                    r#"{"accepted":1,"duplicates":0,"rejected":[{"index":1,"code":"invalid_event","message":"x"}]}"#
                ),
                now
            ),
            Outcome::Delivered {
                accepted: 1,
                duplicates: 0,
                rejected: vec![Rejection {
                    index: 1,
                    code: "invalid_event".into()
                }]
            }
        );
        // A 2xx with a body we cannot read is still delivered.
        assert!(matches!(
            classify(&resp(204, ""), now),
            Outcome::Delivered { accepted: 0, .. }
        ));
        assert_eq!(
            classify(&resp(400, r#"{"code":"invalid_json","message":"x"}"#), now),
            Outcome::Invalid { rejected: vec![] }
        );
        for status in [401, 403] {
            assert_eq!(
                classify(
                    &resp(status, r#"{"code":"api_key_revoked","message":"revoked"}"#),
                    now
                ),
                Outcome::AuthFailed {
                    status,
                    code: "api_key_revoked".into(),
                    message: "revoked".into()
                }
            );
        }
        assert_eq!(classify(&resp(413, ""), now), Outcome::TooLarge);
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(
                    classify(&resp(status, "<html>"), now),
                    Outcome::Retry { after_ms: None, .. }
                ),
                "{status}"
            );
        }
        for status in [404, 405, 409, 422] {
            assert!(matches!(
                classify(&resp(status, r#"{"code":"not_found"}"#), now),
                Outcome::Refused { .. }
            ));
        }
        assert!(matches!(
            classify(&HttpResult::Network("refused".into()), now),
            Outcome::Retry { after_ms: None, .. }
        ));
        assert!(matches!(
            classify(&HttpResult::Timeout, now),
            Outcome::Retry { after_ms: None, .. }
        ));
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = 784_111_777_000.0; // Sun, 06 Nov 1994 08:49:37 GMT
        let with = |h: &str| HttpResult::Response {
            status: 429,
            retry_after: Some(h.into()),
            body: String::new(),
        };
        assert_eq!(
            classify(&with("7"), now),
            Outcome::Retry {
                after_ms: Some(7_000.0),
                reason: "HTTP 429".into()
            }
        );
        match classify(&with("Sun, 06 Nov 1994 08:49:47 GMT"), now) {
            Outcome::Retry { after_ms, .. } => assert_eq!(after_ms, Some(10_000.0)),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            classify(&with("soon"), now),
            Outcome::Retry { after_ms: None, .. }
        ));
    }

    #[test]
    fn backoff_bounds() {
        for attempt in 1..=40 {
            let ceiling = (BACKOFF_BASE_MS * 2f64.powi(attempt as i32 - 1)).min(BACKOFF_CAP_MS);
            assert_eq!(backoff_ms(attempt, None, 0.0), 0.0);
            let hi = backoff_ms(attempt, None, 0.999_999);
            assert!(hi < ceiling && hi > ceiling * 0.99, "{attempt}: {hi}");
            assert!(backoff_ms(attempt, None, 0.5) <= BACKOFF_CAP_MS);
        }
        assert_eq!(backoff_ms(1, None, 0.5), 500.0);
        assert_eq!(backoff_ms(3, None, 0.5), 2_000.0);
        assert_eq!(backoff_ms(u32::MAX, None, 2.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(1, Some(120_000.0), 0.1), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(1, Some(2_000.0), 0.1), 2_000.0);
        assert_eq!(backoff_ms(1, Some(-5.0), 0.1), 0.0);
    }
}
