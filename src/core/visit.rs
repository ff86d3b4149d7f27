//! Visits (sessions), in browsers: which visit an event belongs to, and where the visit came
//! from. The rules, with time as an input:
//! - a visit ends after `sessionTimeoutMs` without an event (30 minutes by default), or
//!   [`MAX_VISIT_MS`] after it began;
//! - a page load that arrives from a different AI assistant, or with a different `utm_source`
//!   or `utm_campaign`, than the visit's starts a new visit; internal navigation (a referrer on
//!   the page's own host) never does, and neither does a reload or a single-page app's route
//!   change (the page load's arrival is looked at once);
//! - its landing facts ([`Visit::attribution`]) are taken when it starts and kept for all of it;
//!   a visit that starts later in a page load (the previous one timed out while the page stayed
//!   open) has only its `landing_url`: the page's referrer and campaign were the previous
//!   visit's arrival, and it sends no `ai_referral_session`;
//! - `ai_referral_session` is due once per visit that starts from an AI assistant.
//!
//! The tabs of an origin share the visit through storage (the platform keeps the text of
//! [`Visit::to_json`] under one key): a tab adopts what another wrote ([`Visits::adopt`]), and
//! writes when a visit starts or changes, when the page is hidden, and otherwise at most every
//! [`TOUCH_EVERY_MS`] of activity, never on every event.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::core::json::{get, get_str, items, scalar, write_str, Value};
use crate::core::referrer::{classify, host_of, utm_params, CustomProvider, PageSnapshot};
use crate::core::uuid::{random_bytes, uuid_v7};

/// The longest a visit lasts, however active: 24 hours.
pub const MAX_VISIT_MS: f64 = 24.0 * 3_600_000.0;
/// How often, at most, an active page writes the visit's last activity for the other tabs.
pub const TOUCH_EVERY_MS: f64 = 60_000.0;

/// One visit.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// `context.session_id`: a UUIDv7 (time-ordered, like PostHog's `$session_id`).
    pub id: String,
    /// When it began and when its last event was recorded, epoch milliseconds.
    pub start: f64,
    pub last: f64,
    /// `context.attribution`: `{source_provider, utm_source, utm_medium, utm_campaign,
    /// utm_term, utm_content, referrer_host, landing_url}`, each only when known; `""` when
    /// nothing is.
    pub attribution: String,
    /// What tells arrivals apart: the AI assistant, `utm_source` and `utm_campaign`.
    pub marks: [Option<String>; 3],
    /// The `ai_referral_session` properties (`source_provider`, `query_hint`, `landing_url`,
    /// `referrer_url`), while it is due.
    pub referral: Option<String>,
}

/// Where a page load came from: a visit's landing facts.
struct Arrival {
    /// From another site (a referrer on another host), or with campaign parameters and no
    /// referrer; never a link inside the site.
    external: bool,
    attribution: String,
    marks: [Option<String>; 3],
    referral: Option<String>,
}

impl Arrival {
    /// No arrival: a visit that starts on `url` (its `landing_url`, when not empty) from within
    /// the page load.
    fn on(url: &str) -> Arrival {
        let mut attribution = String::new();
        if !url.is_empty() {
            attribution.push_str("{\"landing_url\":");
            write_str(&mut attribution, url);
            attribution.push('}');
        }
        Arrival {
            external: false,
            attribution,
            marks: [None, None, None],
            referral: None,
        }
    }
}

#[inline(never)]
fn arrival(page: &PageSnapshot<'_>, custom: &[CustomProvider]) -> Arrival {
    let own = host_of(page.url);
    let from = host_of(page.referrer);
    // A link inside the site is internal navigation, whatever its campaign parameters.
    let internal = from.is_some() && from == own;
    let referrer_host = from.filter(|_| !internal);
    let utm = utm_params(page.url);
    let referral = classify(page, custom);
    let utm_of = |k: &str| {
        utm.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
    };
    let provider = referral.as_ref().map(|r| r.provider.clone());
    let mut attribution = String::from("{");
    let mut put = |k: &str, v: &str| {
        if attribution.len() > 1 {
            attribution.push(',');
        }
        write_str(&mut attribution, k);
        attribution.push(':');
        write_str(&mut attribution, v);
    };
    if let Some(p) = &provider {
        put("source_provider", p);
    }
    for (k, v) in &utm {
        put(k, v);
    }
    if let Some(h) = &referrer_host {
        put("referrer_host", h);
    }
    if !page.url.is_empty() {
        put("landing_url", page.url);
    }
    attribution.push('}');
    if attribution.len() == 2 {
        attribution.clear();
    }
    let referral = referral.map(|r| {
        let mut p = String::from("{\"source_provider\":");
        write_str(&mut p, &r.provider);
        p.push_str(",\"query_hint\":");
        match &r.query_hint {
            Some(q) => write_str(&mut p, q),
            None => p.push_str("null"),
        }
        p.push_str(",\"landing_url\":");
        write_str(&mut p, &r.landing_url);
        p.push_str(",\"referrer_url\":");
        write_str(&mut p, &r.referrer_url);
        p
    });
    Arrival {
        external: !internal && (referrer_host.is_some() || !utm.is_empty()),
        attribution,
        marks: [provider, utm_of("utm_source"), utm_of("utm_campaign")],
        referral,
    }
}

impl Visit {
    fn start(id: String, now: f64, a: Arrival) -> Visit {
        Visit {
            id,
            start: now,
            last: now,
            attribution: a.attribution,
            marks: a.marks,
            referral: a.referral,
        }
    }

    /// The text kept in storage for the other tabs and the next page load.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"id\":");
        write_str(&mut out, &self.id);
        out.push_str(",\"start\":");
        crate::core::num::push_int(&mut out, self.start as i64);
        out.push_str(",\"last\":");
        crate::core::num::push_int(&mut out, self.last as i64);
        if !self.attribution.is_empty() {
            out.push_str(",\"attribution\":");
            out.push_str(&self.attribution);
        }
        out.push_str(",\"marks\":[");
        for (i, m) in self.marks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match m {
                Some(m) => write_str(&mut out, m),
                None => out.push_str("null"),
            }
        }
        out.push(']');
        if let Some(r) = &self.referral {
            out.push_str(",\"referral\":");
            out.push_str(r);
            out.push('}');
        }
        out.push('}');
        out
    }

    /// Reads [`Visit::to_json`]'s text; `None` for anything else (an older format, a value
    /// another script wrote).
    pub fn from_json(text: &str) -> Option<Visit> {
        let id = get_str(text, "id").filter(|id| !id.is_empty() && id.len() <= 64)?;
        let num = |k: &str| match get(text, k).and_then(scalar) {
            Some(Value::Number(n)) => Some(n.approx_f64()).filter(|n| n.is_finite()),
            _ => None,
        };
        let object = |k: &str| {
            get(text, k)
                .map(str::trim)
                .filter(|raw| raw.starts_with('{') && raw.ends_with('}'))
                .map(str::to_string)
        };
        let mut marks: [Option<String>; 3] = [None, None, None];
        if let Some(list) = get(text, "marks").and_then(items) {
            for (slot, raw) in marks.iter_mut().zip(list) {
                if let Some(Value::String(s)) = scalar(raw) {
                    *slot = Some(s);
                }
            }
        }
        let referral = object("referral").map(|r| {
            // Kept without its closing brace, to append session_id when it is sent.
            let mut r = r;
            r.pop();
            r
        });
        Some(Visit {
            id,
            start: num("start")?,
            last: num("last")?,
            attribution: object("attribution").unwrap_or_default(),
            marks,
            referral,
        })
    }
}

/// The visits of one page (one client).
pub struct Visits {
    timeout: f64,
    current: Option<Visit>,
    /// This page load's arrival was looked at.
    arrived: bool,
    /// A write to storage is due now (the visit started, changed, or its referral was sent).
    dirty: bool,
    /// The `last` the storage has from this page.
    written_last: f64,
}

impl Visits {
    pub fn new(timeout_ms: f64) -> Visits {
        Visits {
            timeout: timeout_ms,
            current: None,
            arrived: false,
            dirty: false,
            written_last: f64::NEG_INFINITY,
        }
    }

    /// The visit of an event at `now` on `page`. `arriving`: the event is the first this page
    /// load records, so the page's arrival is looked at (see the module's rules). `rng` makes
    /// the id of a new visit.
    #[inline(never)]
    pub fn at(
        &mut self,
        now: f64,
        page: &PageSnapshot<'_>,
        arriving: bool,
        custom: &[CustomProvider],
        rng: &mut u64,
    ) -> &Visit {
        let arrival = arriving.then(|| arrival(page, custom));
        let expired = self.current(now).is_none();
        let elsewhere = match (&arrival, &self.current) {
            (Some(a), Some(v)) if a.external => a
                .marks
                .iter()
                .zip(&v.marks)
                .any(|(new, old)| new.is_some() && new != old),
            _ => false,
        };
        if expired || elsewhere {
            self.current = None;
            self.dirty = true;
        }
        let v = self.current.get_or_insert_with(|| {
            // A visit that starts later in a page load (the last one timed out) did not arrive
            // from anywhere: the page's referrer and campaign belong to the visit that ended.
            let a = arrival.unwrap_or_else(|| Arrival::on(page.url));
            Visit::start(uuid_v7(now, random_bytes(rng)), now, a)
        });
        if now > v.last {
            v.last = now;
        }
        v
    }

    /// Whether [`Visits::at`] would read its `page` at `now`: when the page load's arrival is
    /// looked at, or a visit starts. Otherwise the caller can skip reading the page.
    pub fn needs_page(&self, now: f64, arriving: bool) -> bool {
        arriving || self.current(now).is_none()
    }

    /// The current visit, if there is one and it has not ended by `now`.
    pub fn current(&self, now: f64) -> Option<&Visit> {
        self.current
            .as_ref()
            .filter(|v| now - v.last <= self.timeout && now - v.start < MAX_VISIT_MS)
    }

    /// Takes the visit's `ai_referral_session` properties (with `session_id`) when it is due:
    /// once per visit, across tabs and reloads.
    pub fn take_referral(&mut self) -> Option<String> {
        let v = self.current.as_mut()?;
        let mut p = v.referral.take()?;
        p.push_str(",\"session_id\":");
        write_str(&mut p, &v.id);
        p.push('}');
        self.dirty = true;
        Some(p)
    }

    /// Takes up what another tab (or an earlier page load) wrote: the same visit with its
    /// latest activity, or a newer visit that began there. Anything else is ignored.
    pub fn adopt(&mut self, text: &str) {
        let Some(other) = Visit::from_json(text) else {
            return;
        };
        match &mut self.current {
            Some(v) if v.id == other.id => {
                if other.last > v.last {
                    v.last = other.last;
                }
                if other.referral.is_none() {
                    v.referral = None; // sent by another tab
                }
                self.written_last = self.written_last.max(other.last);
            }
            Some(v) if other.start <= v.start => {}
            _ => {
                self.written_last = other.last;
                self.current = Some(other);
            }
        }
    }

    /// `reset()`: a new visit from `now`, with no attribution and no referral, for the new
    /// visitor. This page load's arrival belongs to the old one: the new visit keeps the old
    /// one's marks, so that the same arrival seen again (a reload, another client on the page,
    /// a tab on the same landing URL) is not taken for a new one.
    pub fn reset(&mut self, now: f64, rng: &mut u64) {
        let mut a = Arrival::on("");
        if let Some(old) = self.current.take() {
            a.marks = old.marks;
        }
        self.current = Some(Visit::start(uuid_v7(now, random_bytes(rng)), now, a));
        self.arrived = true;
        self.dirty = true;
    }

    /// Marks this page load's arrival as looked at.
    pub fn arrived(&mut self) {
        self.arrived = true;
    }

    /// Whether this page load's arrival is still to be looked at.
    pub fn arriving(&self) -> bool {
        !self.arrived
    }

    /// The text to write to storage, when a write is due: the visit started or changed, or
    /// [`TOUCH_EVERY_MS`] of activity passed since the last write, or (`hiding`) the page is
    /// being hidden with activity not written yet.
    pub fn to_store(&mut self, hiding: bool) -> Option<String> {
        let v = self.current.as_ref()?;
        let due = self.dirty
            || v.last - self.written_last >= TOUCH_EVERY_MS
            || (hiding && v.last > self.written_last);
        if !due {
            return None;
        }
        self.dirty = false;
        self.written_last = v.last;
        Some(v.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: f64 = 60_000.0;
    const T0: f64 = 1_800_000_000_000.0;

    fn page<'a>(url: &'a str, referrer: &'a str) -> PageSnapshot<'a> {
        PageSnapshot { url, referrer }
    }

    fn visits() -> (Visits, u64) {
        (Visits::new(30.0 * MIN), 7)
    }

    const CHATGPT: (&str, &str) = (
        "https://shop.test/p?utm_campaign=launch",
        "https://chatgpt.com/",
    );
    const INSIDE: (&str, &str) = ("https://shop.test/cart", "https://shop.test/p");

    #[test]
    fn a_visit_from_chatgpt_has_its_landing_facts_and_one_referral() {
        let (mut v, mut rng) = visits();
        let (url, refr) = CHATGPT;
        let visit = v.at(T0, &page(url, refr), true, &[], &mut rng).clone();
        assert!(
            visit.id.starts_with("01a3185c-5000-7"),
            "a UUIDv7 of its start: {}",
            visit.id
        );
        assert_eq!(
            visit.attribution,
            r#"{"source_provider":"chatgpt","utm_campaign":"launch","referrer_host":"chatgpt.com","landing_url":"https://shop.test/p?utm_campaign=launch"}"#
        );
        let referral = v.take_referral().unwrap();
        assert!(referral.starts_with(r#"{"source_provider":"chatgpt","query_hint":null,"landing_url":"https://shop.test/p?utm_campaign=launch","referrer_url":"https://chatgpt.com/","session_id":""#));
        assert!(referral.ends_with(&format!("{}\"}}", visit.id)));
        assert_eq!(v.take_referral(), None, "once");
        // Internal navigation, a reload (the same arrival again): the same visit.
        let (url, refr) = INSIDE;
        assert_eq!(
            v.at(T0 + MIN, &page(url, refr), false, &[], &mut rng).id,
            visit.id
        );
        let (url, refr) = CHATGPT;
        assert_eq!(
            v.at(T0 + 2.0 * MIN, &page(url, refr), true, &[], &mut rng)
                .id,
            visit.id
        );
        assert_eq!(v.take_referral(), None);
    }

    #[test]
    fn idle_for_the_timeout_ends_a_visit_and_24_hours_cap_it() {
        let (mut v, mut rng) = visits();
        let (url, refr) = INSIDE;
        let p = page(url, refr);
        let first = v.at(T0, &p, true, &[], &mut rng).id.clone();
        assert_eq!(
            v.at(T0 + 30.0 * MIN, &p, false, &[], &mut rng).id,
            first,
            "30 min is still in"
        );
        let second = v
            .at(T0 + 60.0 * MIN + 1.0, &p, false, &[], &mut rng)
            .id
            .clone();
        assert_ne!(second, first, "more than 30 min idle");
        // Active every 20 minutes, for a day.
        let mut t = T0 + 60.0 * MIN + 1.0;
        let mut ids = vec![second.clone()];
        while t < T0 + 60.0 * MIN + 1.0 + 24.0 * 60.0 * MIN + 40.0 * MIN {
            t += 20.0 * MIN;
            let id = v.at(t, &p, false, &[], &mut rng).id.clone();
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
        assert_eq!(ids.len(), 2, "cut once, at 24 hours");
        assert_eq!(v.current(t + 31.0 * MIN), None);
        assert!(v.current(t).is_some());
    }

    #[test]
    fn a_visit_that_starts_after_a_timeout_in_the_same_page_load_did_not_arrive_from_chatgpt() {
        let (mut v, mut rng) = visits();
        let (url, refr) = CHATGPT;
        let first = v.at(T0, &page(url, refr), true, &[], &mut rng).id.clone();
        assert!(v.take_referral().is_some());
        let later = v
            .at(T0 + 31.0 * MIN, &page(url, refr), false, &[], &mut rng)
            .clone();
        assert_ne!(later.id, first);
        assert_eq!(
            later.attribution,
            r#"{"landing_url":"https://shop.test/p?utm_campaign=launch"}"#
        );
        assert_eq!(later.marks, [None, None, None]);
        assert_eq!(
            v.take_referral(),
            None,
            "no second referral for the same arrival"
        );
    }

    #[test]
    fn a_new_campaign_or_another_assistant_starts_a_new_visit_and_internal_links_never_do() {
        let (mut v, mut rng) = visits();
        let id = |v: &mut Visits, rng: &mut u64, url: &str, refr: &str, arriving: bool| {
            v.at(T0, &page(url, refr), arriving, &[], rng).id.clone()
        };
        let a = id(
            &mut v,
            &mut rng,
            "https://shop.test/?utm_source=news&utm_campaign=may",
            "",
            true,
        );
        // A campaign link inside the site: internal navigation, the same visit.
        let b = id(
            &mut v,
            &mut rng,
            "https://shop.test/?utm_campaign=june",
            "https://shop.test/",
            true,
        );
        assert_eq!(a, b);
        // No campaign on the next arrival: nothing says it is another visit.
        let c = id(&mut v, &mut rng, "https://shop.test/x", "", true);
        assert_eq!(a, c);
        let d = id(
            &mut v,
            &mut rng,
            "https://shop.test/?utm_source=news&utm_campaign=june",
            "",
            true,
        );
        assert_ne!(d, a, "another utm_campaign");
        let e = id(
            &mut v,
            &mut rng,
            "https://shop.test/",
            "https://www.perplexity.ai/search?q=x",
            true,
        );
        assert_ne!(e, d, "from an AI assistant");
        let f = id(
            &mut v,
            &mut rng,
            "https://shop.test/",
            "https://chatgpt.com/",
            true,
        );
        assert_ne!(f, e, "from another AI assistant");
        // Not an arrival (a later call of the page): never a new visit.
        let g = id(
            &mut v,
            &mut rng,
            "https://shop.test/?utm_campaign=july",
            "https://claude.ai/",
            false,
        );
        assert_eq!(g, f);
        // An ordinary site linking in does not end an AI visit.
        let h = id(
            &mut v,
            &mut rng,
            "https://shop.test/",
            "https://news.example/",
            true,
        );
        assert_eq!(h, f);
    }

    #[test]
    fn tabs_share_the_visit_through_storage_and_write_rarely() {
        let (mut one, mut rng) = visits();
        let (url, refr) = CHATGPT;
        let visit = one.at(T0, &page(url, refr), true, &[], &mut rng).id.clone();
        let text = one.to_store(false).expect("a new visit is written at once");
        assert_eq!(one.to_store(false), None, "then not on every event");
        one.at(T0 + 10_000.0, &page(url, refr), false, &[], &mut rng);
        assert_eq!(one.to_store(false), None);
        assert!(
            one.to_store(true).is_some(),
            "hiding writes the latest activity"
        );
        one.at(
            T0 + 10_000.0 + TOUCH_EVERY_MS,
            &page(url, refr),
            false,
            &[],
            &mut rng,
        );
        assert!(
            one.to_store(false).is_some(),
            "a minute of activity is written"
        );

        // A second tab from ChatGPT again: the same visit, no second referral.
        let (mut two, mut rng2) = (Visits::new(30.0 * MIN), 99);
        two.adopt(&text);
        assert_eq!(
            two.at(T0 + 5.0 * MIN, &page(url, refr), true, &[], &mut rng2)
                .id,
            visit
        );
        assert!(
            two.take_referral().is_some(),
            "the first tab had not sent it yet"
        );
        let sent = two.to_store(false).unwrap();
        one.adopt(&sent);
        assert_eq!(one.take_referral(), None, "the other tab sent it");
        // The other tab's activity keeps this one's visit going.
        let later = Visit::from_json(&sent).map(|mut v| {
            v.last = T0 + 50.0 * MIN;
            v.to_json()
        });
        one.adopt(&later.unwrap());
        assert_eq!(
            one.current(T0 + 70.0 * MIN).map(|v| v.id.clone()),
            Some(visit.clone())
        );
        // A newer visit another tab began is taken up; an older one is not.
        let (mut three, mut rng3) = (Visits::new(30.0 * MIN), 5);
        let newer = three
            .at(T0 + 60.0 * MIN, &page(url, ""), true, &[], &mut rng3)
            .id
            .clone();
        one.adopt(&three.to_store(false).unwrap());
        assert_eq!(one.current(T0 + 61.0 * MIN).unwrap().id, newer);
        one.adopt(&sent);
        assert_eq!(one.current(T0 + 61.0 * MIN).unwrap().id, newer);
        for junk in [
            "",
            "{}",
            "[1]",
            r#"{"id":"x"}"#,
            r#"{"id":"","start":1,"last":1}"#,
        ] {
            let before = one.current(T0 + 61.0 * MIN).cloned();
            one.adopt(junk);
            assert_eq!(one.current(T0 + 61.0 * MIN).cloned(), before, "{junk}");
        }
    }

    #[test]
    fn reset_starts_a_visit_without_attribution() {
        let (mut v, mut rng) = visits();
        let (url, refr) = CHATGPT;
        let old = v.at(T0, &page(url, refr), true, &[], &mut rng).id.clone();
        v.reset(T0 + 1.0, &mut rng);
        let new = v
            .at(T0 + 2.0, &page(url, refr), false, &[], &mut rng)
            .clone();
        assert_ne!(new.id, old);
        assert_eq!(new.attribution, "");
        assert_eq!(v.take_referral(), None);
        assert!(
            !v.arriving(),
            "this page load's arrival was the old visit's"
        );
        let stored = v.to_store(false).unwrap();
        assert_eq!(Visit::from_json(&stored).unwrap(), new, "round trip");
        // Another page load with the same arrival (a reload of the landing page, another tab on
        // it) that takes the visit up stays in it: no new ChatGPT visit, no second referral.
        let (mut tab, mut rng2) = (Visits::new(30.0 * MIN), 9);
        tab.adopt(&stored);
        assert_eq!(
            tab.at(T0 + 3.0, &page(url, refr), true, &[], &mut rng2).id,
            new.id
        );
        assert_eq!(tab.take_referral(), None);
        // A new arrival from elsewhere does start a visit.
        let other = ("https://shop.test/?utm_source=newsletter", "");
        assert_ne!(
            tab.at(T0 + 4.0, &page(other.0, other.1), true, &[], &mut rng2)
                .id,
            new.id
        );
    }
}
