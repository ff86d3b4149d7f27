//! The edge: the only `#[wasm_bindgen]` code. [`Core`] wraps the core's
//! [`Client`](crate::core::client::Client) for the JS platform layer (`js/runtime/`): strings
//! and numbers in, strings and numbers out. No JS value is read or built here, nothing is
//! imported from JS, and nothing here can throw into JS: a failed call returns its error as
//! text (see [`error_text`]), which the platform layer turns into a `SegOpsError`.

#[allow(unused_imports)]
use crate::prelude::*;

use wasm_bindgen::prelude::*;

use crate::core::client::{Client, Recorded};
use crate::core::error::Error;

#[cfg(feature = "server")]
mod signer;

/// The text of a failed call: `\u{1}` + code + `\u{1}` + field + `\u{1}` + message. A
/// successful call's text never starts with `\u{1}`.
pub fn error_text(e: &Error) -> String {
    let mut s = String::from("\u{1}");
    s.push_str(e.code());
    s.push('\u{1}');
    s.push_str(e.field().unwrap_or(""));
    s.push('\u{1}');
    s.push_str(&e.message());
    s
}

fn num(n: u64) -> String {
    crate::core::num::int_string(n as i64)
}

/// One SegOps client's core. Create it empty, then [`Core::open`] it.
#[wasm_bindgen]
pub struct Core {
    client: Option<Client>,
    /// The bodies of the requests the last `poll` or `hidden` asked for, last first.
    bodies: Vec<crate::core::client::Body>,
}

impl Default for Core {
    fn default() -> Self {
        Core::new()
    }
}

#[wasm_bindgen]
impl Core {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Core {
        Core {
            client: None,
            bodies: Vec::new(),
        }
    }

    /// Opens the client (see `Client::open` for the text): `""`, `"p"` when the config set
    /// `autoPageViews` (the platform records a page view on each route change), or the error.
    pub fn open(&mut self, text: &str) -> String {
        match Client::open(text) {
            Ok(c) => {
                let out = if c.auto_page_views() { "p" } else { "" };
                self.client = Some(c);
                String::from(out)
            }
            Err(e) => error_text(&e),
        }
    }

    /// Records a call: `""` when done, the error, or the JSON array of events for
    /// `beforeSend` (then call [`Core::hooked`]).
    pub fn record(&mut self, text: &str, now: f64, flags: u32) -> String {
        let Some(c) = &mut self.client else {
            return String::new();
        };
        match c.record(text, now, flags) {
            Ok(Recorded::Done) => String::new(),
            Ok(Recorded::Hook(events)) => events,
            Err(e) => error_text(&e),
        }
    }

    /// `beforeSend`'s answers for the events of the latest hook request: `""` or the error.
    pub fn hooked(&mut self, text: &str, now: f64) -> String {
        match self.client.as_mut().map(|c| c.hooked(text, now)) {
            Some(Err(e)) => error_text(&e),
            _ => String::new(),
        }
    }

    /// `flush()`: the target (digits) to pass to [`Core::flushed`], or the error.
    pub fn flush(&mut self) -> String {
        match self.client.as_mut().map(Client::flush) {
            Some(Ok(t)) => num(t),
            Some(Err(e)) => error_text(&e),
            None => String::from("0"),
        }
    }

    /// `shutdown()`: the target to pass to [`Core::flushed`].
    pub fn shutdown(&mut self) -> f64 {
        self.client.as_mut().map_or(0.0, |c| c.shutdown() as f64)
    }

    /// Whether everything up to `target` was delivered or given up on.
    pub fn flushed(&self, target: f64) -> bool {
        self.client
            .as_ref()
            .is_none_or(|c| c.is_flushed(target as u64))
    }

    /// `setConsent(value)`: the new state, or the error.
    #[wasm_bindgen(js_name = setConsent)]
    pub fn set_consent(&mut self, text: &str) -> String {
        match self.client.as_mut().map(|c| c.set_consent(text)) {
            Some(Ok(c)) => c.as_str().to_string(),
            Some(Err(e)) => error_text(&e),
            None => String::new(),
        }
    }

    pub fn consent(&self) -> String {
        self.client
            .as_ref()
            .map_or("pending", |c| c.consent().as_str())
            .to_string()
    }

    #[wasm_bindgen(js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.client
            .as_ref()
            .map_or(String::new(), |c| c.anonymous_id().to_string())
    }

    /// The page is hidden or being unloaded: the keepalive requests, as [`Core::poll`] writes
    /// them.
    pub fn hidden(&mut self, now: f64) -> String {
        let (requests, visit) = self
            .client
            .as_mut()
            .map_or((Vec::new(), None), |c| (c.hidden(now), c.visit_out(true)));
        self.out(crate::core::client::Output {
            requests,
            visit,
            ..Default::default()
        })
    }

    /// The visit, one export for three calls (it keeps the glue small):
    /// - `what` 0: another tab wrote `text` to storage;
    /// - `what` 1: `reset()` (see `Client::reset`);
    /// - `what` 2: `client.sessionId`, starting a visit on `text` (the loader's record of the
    ///   page) when there is none; `""` outside a browser.
    ///
    /// Returns the visit's id for `what` 2, else `""`.
    pub fn visit(&mut self, what: u32, text: &str, now: f64) -> String {
        let Some(c) = &mut self.client else {
            return String::new();
        };
        match what {
            0 => c.adopt_visit(text),
            1 => c.reset(now),
            _ => return c.session_id(text, now),
        }
        String::new()
    }

    /// The header of `out`; its bodies wait for [`Core::body`].
    fn out(&mut self, out: crate::core::client::Output) -> String {
        let header = out.encode();
        self.bodies = out.into_bodies();
        header
    }

    /// The next part of the body of the next request of the last `poll` or `hidden`, in order;
    /// `""` ends each body. The platform layer calls it until it gets `""`, for each request.
    pub fn body(&mut self) -> String {
        let (Some(c), Some(b)) = (&self.client, self.bodies.last_mut()) else {
            return String::new();
        };
        let part = c.body_part(b);
        if part.is_empty() {
            self.bodies.pop();
        }
        part
    }

    /// The page is visible again, or back online.
    pub fn resume(&mut self, now: f64) {
        if let Some(c) = &mut self.client {
            c.resume(now);
        }
    }

    /// The answer to request `id` (see `Client::answer`).
    pub fn answer(
        &mut self,
        id: f64,
        status: f64,
        retry_after: Option<String>,
        body: String,
        now: f64,
    ) {
        if let Some(c) = &mut self.client {
            c.answer(id as u64, status, retry_after, body, now);
        }
    }

    /// The console lines waiting, without polling for anything else: as `poll` writes them
    /// (`Output::encode`, no requests). For lines that must appear during the call that caused
    /// them (a `beforeSend` problem, a warning at construction).
    pub fn logs(&mut self) -> String {
        let logs = self.client.as_mut().map_or(Vec::new(), Client::take_logs);
        crate::core::client::Output {
            logs,
            ..Default::default()
        }
        .encode()
    }

    /// What to do now: see `Output::encode`.
    pub fn poll(&mut self, now: f64) -> String {
        match self.client.as_mut().map(|c| c.poll(now)) {
            Some(out) => self.out(out),
            None => String::new(),
        }
    }

    /// The unsent events for the next page load; `""` for nothing to keep.
    pub fn snapshot(&mut self) -> String {
        self.client.as_mut().map_or(String::new(), Client::snapshot)
    }

    /// Whether another page took up this page's saved snapshot (`taken`; then its events are
    /// that page's now), found as the page was shown again; how many events went. `racy`: the
    /// latest snapshot was written outside the origin's lock while the one before it was
    /// still in storage.
    #[wasm_bindgen(js_name = handOver)]
    pub fn hand_over(&mut self, taken: bool, racy: bool) -> u32 {
        self.client
            .as_mut()
            .map_or(0, |c| c.hand_over(taken, racy) as u32)
    }

    /// Takes up a snapshot an earlier page saved; how many events.
    pub fn restore(&mut self, text: &str, now: f64) -> u32 {
        self.client
            .as_mut()
            .map_or(0, |c| c.restore(text, now) as u32)
    }

    /// `stats()` as JSON.
    pub fn stats(&self, now: f64) -> String {
        self.client
            .as_ref()
            .map_or(String::from("{}"), |c| c.stats(now))
    }
}
