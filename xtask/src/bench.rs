//! `cargo xtask bench`: the SDK against five analytics SDKs in headless Chromium.
//!
//! xtask builds `pkg/` (release), installs the competitors pinned in `bench/package.json` into
//! `bench/node_modules`, and runs `bench/run.mjs` (esbuild and playwright-core from the tools
//! folder), which bundles one "init + track" page per SDK (code splitting on, each file marked
//! as on the critical path or lazy), serves the pages and a counting sink on loopback and
//! writes every run as JSON (`bench/out/results.json`; the run before it is kept as
//! `results.prev.json`). xtask then prints the medians as one markdown table and the `track()`
//! goal, and writes them, with footnotes for failed scenarios and the raw runs, to
//! `docs/benchmarks.md`, and one SVG bar chart per figure to `docs/bench/` (see [`chart`]).
//!
//! Knobs, all optional:
//! - `BENCH_RUNS`: runs per SDK (default 3).
//! - `BENCH_SDKS`: a comma-separated subset (`segops,posthog,segment,amplitude,mixpanel,snowplow`);
//!   without `segops`, `pkg/` is not built.
//! - `BENCH_REUSE=<results.json>`: render an earlier run's results (table, report, charts)
//!   without running anything.
//! - `BENCH_MERGE=<results.json>`: SDKs not measured in this run are taken from that earlier file
//!   (the report says they come from another pass).
//! - `BENCH_REPORT=<file.md>`: write the report there instead (charts in `bench/` beside it), so
//!   a partial run does not replace `docs/benchmarks.md`.
//! - `BENCH_RENDERER_CAP_MB`: a page whose renderer grows past this is stopped (default 3072).
//!
//! A quick look at two SDKs, without touching docs/: `BENCH_RUNS=1 BENCH_SDKS=mixpanel,snowplow
//! BENCH_REPORT=target/bench-quick/benchmarks.md cargo xtask bench` (about two minutes).

mod chart;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::json::{self, Json};
use crate::proc::{run_tee, which};
use crate::{pkg, setup, ui, Ctx};

/// The benchmark's folder, relative to the repository root.
pub const BENCH_DIR: &str = "bench";
/// The report, relative to the repository root.
pub const REPORT: &str = "docs/benchmarks.md";
/// The charts' folder, relative to the report's.
pub const CHARTS: &str = "bench";
/// The SDK every ratio is relative to.
const BASE: &str = "segops";

/// Display names, in table order.
const SDKS: &[(&str, &str)] = &[
    ("segops", "@segops/sdk"),
    ("posthog", "posthog-js"),
    ("segment", "@segment/analytics-next"),
    ("amplitude", "@amplitude/analytics-browser"),
    ("mixpanel", "mixpanel-browser"),
    ("snowplow", "@snowplow/browser-tracker"),
];

/// One column: its heading, where its value comes from, how to print it, and its chart.
struct Column {
    heading: &'static str,
    value: fn(&Json) -> Option<f64>,
    unit: Unit,
    /// Which page measures it (a failed scenario explains a missing figure).
    scenario: Scenario,
    /// A SegOps-only figure (the others have none by nature, not by failure).
    only_base: bool,
    /// The chart's file name (without `.svg`), title and subtitle.
    slug: &'static str,
    title: &'static str,
    subtitle: &'static str,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scenario {
    /// Sizes of the bundled files: no page.
    Files,
    /// The 1,000-event page (fields `net_*`).
    Net,
    /// The 10,000-event page (fields `cpu_*`).
    Cpu,
}

impl Scenario {
    /// The prefix of its `failure`, `failure_detail`, `failure_after_ms` and `renderer_peak_bytes`.
    fn prefix(self) -> Option<&'static str> {
        match self {
            Scenario::Files => None,
            Scenario::Net => Some("net_"),
            Scenario::Cpu => Some("cpu_"),
        }
    }

    fn events(self) -> &'static str {
        match self {
            Scenario::Files => "",
            Scenario::Net => "1,000 events",
            Scenario::Cpu => "10,000 events",
        }
    }

    /// The field counting what the sink received on this page.
    fn received(self) -> &'static str {
        match self {
            Scenario::Net => "net_events",
            _ => "cpu_delivered_events",
        }
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Bytes,
    Ms,
    /// Milliseconds that are often below one: a decimal kept.
    MsFine,
    Us,
    Count,
}

fn num(j: Option<&Json>) -> Option<f64> {
    match j {
        Some(Json::Num(n)) if n.is_finite() => Some(*n),
        _ => None,
    }
}

/// A file's boolean flag; None when the file does not say (results from before the flag).
fn flag(file: &Json, name: &str) -> Option<bool> {
    match file.get(name) {
        Some(Json::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// Sum of one size field over the files an SDK's pages fetched (a lazy chunk no page asked for
/// is not downloaded; results without the `loaded` flag count every file).
fn files_sum(sdk: &Json, field: &str) -> Option<f64> {
    let files = sdk.get("files")?.as_array()?;
    files
        .iter()
        .filter(|f| flag(f, "loaded") != Some(false))
        .map(|f| num(f.get(field)))
        .sum()
}

/// Sum of one size field over the files on the critical path: the entry chunk and what it
/// imports statically. None when the results do not say which those are.
fn critical_sum(sdk: &Json, field: &str) -> Option<f64> {
    let files = sdk.get("files")?.as_array()?;
    if files.iter().all(|f| flag(f, "critical").is_none()) {
        return None;
    }
    files
        .iter()
        .filter(|f| flag(f, "critical") == Some(true))
        .map(|f| num(f.get(field)))
        .sum()
}

/// What a burst left behind in one run: JS heap growth plus wasm memory growth (none for an SDK
/// without wasm).
fn retained(run: &Json) -> Option<f64> {
    Some(
        num(run.get("heap_growth_bytes"))?
            + num(run.get("wasm_memory_growth_bytes")).unwrap_or(0.0),
    )
}

const COLUMNS: &[Column] = &[
    Column {
        heading: "download raw",
        value: |s| files_sum(s, "raw"),
        unit: Unit::Bytes,
        scenario: Scenario::Files,
        only_base: false,
        slug: "download-raw",
        title: "Download, raw",
        subtitle: "bytes the page loads for the SDK · lower is better",
    },
    Column {
        heading: "gzip -9",
        value: |s| files_sum(s, "gzip"),
        unit: Unit::Bytes,
        scenario: Scenario::Files,
        only_base: false,
        slug: "download-gzip",
        title: "Download, gzip -9",
        subtitle: "bytes · lower is better",
    },
    Column {
        heading: "brotli 11",
        value: |s| files_sum(s, "brotli"),
        unit: Unit::Bytes,
        scenario: Scenario::Files,
        only_base: false,
        slug: "download-brotli",
        title: "Download, brotli 11",
        subtitle: "bytes · lower is better",
    },
    Column {
        heading: "critical path (gzip)",
        value: |s| critical_sum(s, "gzip"),
        unit: Unit::Bytes,
        scenario: Scenario::Files,
        only_base: false,
        slug: "critical-path-gzip",
        title: "Critical path, gzip -9",
        subtitle: "bytes fetched before the page's own code can run · lower is better",
    },
    Column {
        heading: "blocking",
        value: |s| median_of(s, "blocking_ms"),
        unit: Unit::MsFine,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "blocking",
        title: "Blocking",
        subtitle: "ms the SDK's import delays the page's own code · lower is better",
    },
    Column {
        heading: "accepts calls",
        value: |s| median_of(s, "accepts_ms"),
        unit: Unit::Ms,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "accepts-calls",
        title: "Accepts calls",
        subtitle: "ms from navigation start until the SDK takes calls · lower is better",
    },
    Column {
        heading: "ready",
        value: |s| median_of(s, "ready_ms"),
        unit: Unit::Ms,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "ready",
        title: "Ready",
        subtitle:
            "ms from navigation start until the SDK's documented ready point · lower is better",
    },
    Column {
        heading: "first event",
        value: |s| median_of(s, "first_event_ms"),
        unit: Unit::Ms,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "first-event",
        title: "First event on the wire",
        subtitle:
            "ms from navigation start until the sink receives the first event · lower is better",
    },
    Column {
        heading: "track() sync",
        value: |s| median_of(s, "track_sync_us"),
        unit: Unit::Us,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "track-sync",
        title: "track() sync",
        subtitle: "µs per call, over 10,000 calls · lower is better",
    },
    Column {
        heading: "main thread / event",
        value: |s| median_of(s, "track_main_thread_us"),
        unit: Unit::Us,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "main-thread",
        title: "Main thread per event",
        subtitle:
            "µs of main-thread tasks per event, 10,000 events and their delivery · lower is better",
    },
    Column {
        heading: "requests (1k)",
        value: |s| median_of(s, "net_requests"),
        unit: Unit::Count,
        scenario: Scenario::Net,
        only_base: false,
        slug: "requests-1k",
        title: "Requests for 1,000 events",
        subtitle: "preflights included · lower is better",
    },
    Column {
        heading: "wire bytes (1k)",
        value: |s| median_of(s, "net_bytes"),
        unit: Unit::Bytes,
        scenario: Scenario::Net,
        only_base: false,
        slug: "wire-bytes-1k",
        title: "Wire bytes for 1,000 events",
        subtitle: "request lines, headers and bodies as received · lower is better",
    },
    Column {
        heading: "events received (1k)",
        value: |s| median_of(s, "net_events"),
        unit: Unit::Count,
        scenario: Scenario::Net,
        only_base: false,
        slug: "events-received-1k",
        title: "Events received of 1,000 sent",
        subtitle: "higher is better",
    },
    Column {
        heading: "JS heap growth (10k)",
        value: |s| median_of(s, "heap_growth_bytes"),
        unit: Unit::Bytes,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "heap-growth-10k",
        title: "JS heap growth after 10,000 events",
        subtitle: "bytes, after delivery and two forced GCs · lower is better",
    },
    Column {
        heading: "retained (10k)",
        value: |s| median_by(s, retained),
        unit: Unit::Bytes,
        scenario: Scenario::Cpu,
        only_base: false,
        slug: "retained-10k",
        title: "Memory retained after 10,000 events",
        subtitle: "JS heap growth plus wasm memory growth, bytes · lower is better",
    },
    Column {
        heading: "wasm memory (10k)",
        value: |s| median_of(s, "wasm_memory_bytes"),
        unit: Unit::Bytes,
        scenario: Scenario::Cpu,
        only_base: true,
        slug: "wasm-memory-10k",
        title: "wasm memory after 10,000 events",
        subtitle: "bytes · SegOps only",
    },
];

/// The median of `field` over an SDK's runs that have it.
fn median_of(sdk: &Json, field: &str) -> Option<f64> {
    median_by(sdk, |r| num(r.get(field)))
}

/// The median of a figure computed from each run, over the runs that have it.
fn median_by(sdk: &Json, figure: impl Fn(&Json) -> Option<f64>) -> Option<f64> {
    let runs = sdk.get("runs")?.as_array()?;
    median(runs.iter().filter_map(figure).collect())
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Bytes | Unit::Count => {
            let sign = if v < 0.0 { "-" } else { "" };
            format!("{sign}{}", pkg::thousands(v.abs().round() as u64))
        }
        Unit::Ms => format!("{v:.0} ms"),
        Unit::MsFine => format!("{v:.1} ms"),
        Unit::Us if v >= 100.0 => format!("{v:.0} µs"),
        Unit::Us => format!("{v:.1} µs"),
    }
}

/// `2.4×` (to SegOps); nothing when either side is missing or SegOps' figure is 0.
pub fn ratio(v: f64, base: Option<f64>) -> Option<String> {
    let b = base?;
    if b == 0.0 || !b.is_finite() {
        return None;
    }
    let r = v / b;
    Some(if r.abs() >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    })
}

/// An SDK's runs.
fn runs_of(sdk: &Json) -> &[Json] {
    sdk.get("runs").and_then(Json::as_array).unwrap_or(&[])
}

/// What stopped one scenario's page in one run.
struct Failure {
    /// memory | crash | timeout | error
    kind: String,
    detail: String,
    /// From the first track() call (or the page's opening when it failed before).
    after_ms: Option<f64>,
    /// Events the sink had received from that page by then.
    received: Option<f64>,
}

fn failure(run: &Json, scenario: Scenario) -> Option<Failure> {
    let p = scenario.prefix()?;
    let kind = run.get(&format!("{p}failure"))?.as_str()?.to_string();
    Some(Failure {
        kind,
        detail: run
            .get(&format!("{p}failure_detail"))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string(),
        after_ms: num(run.get(&format!("{p}failure_after_ms"))),
        received: num(run.get(scenario.received())),
    })
}

impl Failure {
    /// `its renderer passed 3,072 MB`, `the page crashed`, or what the bench said.
    fn what(&self, results: &Json) -> String {
        match self.kind.as_str() {
            "memory" => match num(results.get("renderer_cap_mb")) {
                Some(cap) => format!("its renderer passed {} MB", pkg::thousands(cap as u64)),
                None => self.detail.clone(),
            },
            "crash" => "the page crashed".into(),
            _ => self.detail.clone(),
        }
    }
}

/// Did any run of this SDK fail on the page that measures `scenario`?
fn scenario_failed(sdk: &Json, scenario: Scenario) -> bool {
    runs_of(sdk).iter().any(|r| failure(r, scenario).is_some())
}

const MARKS: &[&str] = &["¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"];

/// The SDKs (keys) with a failed page in some run, in table order, each with its footnote mark.
fn marked(results: &Json) -> Vec<(&'static str, &'static str)> {
    let sdks = results.get("sdks");
    SDKS.iter()
        .filter(|(key, _)| {
            sdks.and_then(|s| s.get(key)).is_some_and(|sdk| {
                scenario_failed(sdk, Scenario::Net)
                    || scenario_failed(sdk, Scenario::Cpu)
                    || !errors_of(sdk).is_empty()
            })
        })
        .zip(MARKS)
        .map(|((key, _), mark)| (*key, *mark))
        .collect()
}

/// The bench's own errors in an SDK's runs (a scenario it could not run at all), one per run.
fn errors_of(sdk: &Json) -> Vec<&str> {
    runs_of(sdk)
        .iter()
        .filter_map(|r| r.get("error").and_then(Json::as_str))
        .collect()
}

fn mark_of(marks: &[(&str, &'static str)], key: &str) -> &'static str {
    marks.iter().find(|(k, _)| *k == key).map_or("", |(_, m)| m)
}

/// One cell: the median with its ratio to SegOps, `failed` when the page that measures it failed
/// before it, `–` when there is none.
fn cell(c: &Column, key: &str, sdk: &Json, base: Option<&Json>) -> (Option<f64>, String) {
    match (c.value)(sdk) {
        None if !c.only_base && scenario_failed(sdk, c.scenario) => (None, "failed".into()),
        None => (None, "–".into()),
        Some(v) => {
            let text = format_value(v, c.unit);
            match ratio(v, base.and_then(|b| (c.value)(b))) {
                Some(r) if key != BASE => (Some(v), format!("{text} ({r})")),
                _ => (Some(v), text),
            }
        }
    }
}

/// The medians table, each cell with its ratio to SegOps.
pub fn table(results: &Json) -> String {
    let sdks = results.get("sdks");
    let base = sdks.and_then(|s| s.get(BASE));
    let marks = marked(results);
    let mut out = String::from("| SDK |");
    for c in COLUMNS {
        out.push_str(&format!(" {} |", c.heading));
    }
    out.push_str("\n|---|");
    for _ in COLUMNS {
        out.push_str("---:|");
    }
    out.push('\n');
    for (key, name) in SDKS {
        let Some(sdk) = sdks.and_then(|s| s.get(key)) else {
            continue;
        };
        out.push_str(&format!("| {name}{} |", mark_of(&marks, key)));
        for c in COLUMNS {
            out.push_str(&format!(" {} |", cell(c, key, sdk, base).1));
        }
        out.push('\n');
    }
    out
}

/// Why an SDK's page ran out of memory, when the bench knows (from probing its pinned version).
const KNOWN_CAUSES: &[(&str, &str)] = &[
    (
        "mixpanel",
        "Why: mixpanel-browser (batching, its default) keeps its queue in localStorage: every \
         `track()` takes a lock made of localStorage writes polled with timers, then rewrites the \
         whole stored queue. Chromium's renderer holds each pending localStorage write (about \
         twice the value's size) until the browser process has applied it, and thousands of \
         whole-queue rewrites outpace that: the renderer grows while no event is sent. It is not \
         the V8 heap (the same happens with `--js-flags=--max-old-space-size=512`). Without the \
         cap its page crashed the renderer in every run, after passing 9 GB.",
    ),
    (
        "snowplow",
        "Why: @snowplow/browser-tracker keeps its outgoing queue in localStorage by default and \
         rewrites all of it after every event: up to 1,000 events (about 890 KB here) per call, \
         so 10,000 calls in one task write about 8.5 GB, and Chromium's renderer holds each \
         pending localStorage write (about twice the value's size) until the browser process has \
         applied it. Without the cap its page crashed the renderer (once the whole browser) in \
         every run. Its queue also keeps at most 1,000 events (`maxLocalStorageQueueSize`) and \
         drops the oldest beyond that.",
    ),
];

/// `28 s` or `28–32 s`.
fn seconds_range(ms: &[f64]) -> Option<String> {
    let min = ms.iter().copied().reduce(f64::min)? / 1000.0;
    let max = ms.iter().copied().reduce(f64::max)? / 1000.0;
    Some(if max.round() == min.round() {
        format!("{min:.0} s")
    } else {
        format!("{min:.0}–{max:.0} s")
    })
}

/// One paragraph per SDK whose page failed in some run: which page, how often, how, when, what
/// had arrived, and the known cause.
fn footnotes(results: &Json) -> String {
    let sdks = results.get("sdks");
    let mut out = String::new();
    let mut stopped_any = false;
    for (key, mark) in marked(results) {
        let Some(sdk) = sdks.and_then(|s| s.get(key)) else {
            continue;
        };
        let name = display_name(key);
        let runs = runs_of(sdk);
        let mut parts: Vec<String> = Vec::new();
        let mut out_of_memory = false;
        for scenario in [Scenario::Net, Scenario::Cpu] {
            let failures: Vec<Failure> = runs.iter().filter_map(|r| failure(r, scenario)).collect();
            if failures.is_empty() {
                continue;
            }
            stopped_any = true;
            out_of_memory |= failures
                .iter()
                .any(|f| f.kind == "memory" || f.kind == "crash");
            let mut whats: Vec<(String, usize)> = Vec::new();
            for f in &failures {
                let w = f.what(results);
                match whats.iter_mut().find(|(x, _)| *x == w) {
                    Some((_, n)) => *n += 1,
                    None => whats.push((w, 1)),
                }
            }
            let what = if whats.len() == 1 {
                whats[0].0.clone()
            } else {
                whats
                    .iter()
                    .map(|(w, n)| format!("{w} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let after: Vec<f64> = failures.iter().filter_map(|f| f.after_ms).collect();
            let sent = match scenario {
                Scenario::Net => num(results.get("events_net")).unwrap_or(1000.0),
                _ => num(results.get("events_cpu")).unwrap_or(10000.0),
            };
            let received = failures.iter().filter_map(|f| f.received).reduce(f64::max);
            let mut text = format!(
                "{}: stopped in {} of {} runs: {what}",
                scenario.events(),
                failures.len(),
                runs.len()
            );
            if let Some(r) = seconds_range(&after) {
                text.push_str(&format!(", {r} after the first `track()`"));
            }
            if let Some(got) = received {
                text.push_str(&format!(
                    ", with {} of {} events received by then",
                    pkg::thousands(got as u64),
                    pkg::thousands(sent as u64)
                ));
            }
            parts.push(text);
        }
        let errors = errors_of(sdk);
        if !errors.is_empty() {
            let mut distinct: Vec<(&str, usize)> = Vec::new();
            for e in &errors {
                let e = e.trim();
                match distinct.iter_mut().find(|(x, _)| *x == e) {
                    Some((_, n)) => *n += 1,
                    None => distinct.push((e, 1)),
                }
            }
            let list: Vec<String> = distinct
                .iter()
                .map(|(e, n)| {
                    let e = e.replace('|', "\\|");
                    if *n > 1 {
                        format!("`{e}` ({n} runs)")
                    } else {
                        format!("`{e}`")
                    }
                })
                .collect();
            parts.push(format!(
                "errors in {} of {} runs: {}",
                errors.len(),
                runs.len(),
                list.join(", ")
            ));
        }
        out.push_str(&format!("{mark} **{name}**: {}.", parts.join("; ")));
        if out_of_memory {
            if let Some((_, why)) = KNOWN_CAUSES.iter().find(|(k, _)| *k == key) {
                out.push(' ');
                out.push_str(why);
            }
            let peak = |s: &Json| median_of(s, "net_renderer_peak_bytes");
            if let Some(p) = peak(sdk) {
                let mb = |b: f64| pkg::thousands((b / 1048576.0).round() as u64);
                out.push_str(&format!(
                    " Its 1,000-event page peaked at {} MB of renderer memory",
                    mb(p)
                ));
                match sdks.and_then(|s| s.get(BASE)).and_then(peak) {
                    Some(b) if key != BASE => {
                        out.push_str(&format!(" (@segops/sdk: {} MB).", mb(b)))
                    }
                    _ => out.push('.'),
                }
            }
        }
        out.push_str("\n\n");
    }
    if stopped_any {
        out.push_str(
            "A stopped page keeps the figures measured before it stopped (the `track()` loop's \
             time is sent out as soon as the loop ends); the ones it never reached say \"failed\".\n\n",
        );
    }
    out
}

/// An SDK's display name.
fn display_name(key: &str) -> &str {
    SDKS.iter().find(|(k, _)| *k == key).map_or(key, |(_, n)| n)
}

/// The SDKs whose `track()` SegOps must stay far cheaper than, and by how much.
const GOAL_RIVALS: &[&str] = &["posthog", "segment"];
const GOAL_FACTOR: f64 = 20.0;

/// The track() goal, checked: each rival's `track()` sync and main thread per event as a ratio
/// to SegOps', and whether SegOps delivered every event of both bursts in every run. The verdict
/// is on `track()` sync, the call's own cost; main thread per event is said beside it.
fn goal(results: &Json) -> String {
    let sdks = results.get("sdks");
    let mut out = format!(
        "**The `track()` goal**: at least {GOAL_FACTOR:.0}× cheaper than {}, with every event of \
         the bursts delivered. ",
        GOAL_RIVALS
            .iter()
            .map(|k| display_name(k))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let Some(base) = sdks.and_then(|s| s.get(BASE)) else {
        out.push_str("Not checked: @segops/sdk was not measured.\n\n");
        return out;
    };
    let mut met = true;
    let mut said = Vec::new();
    for (field, what) in [
        ("track_sync_us", "`track()` sync"),
        ("track_main_thread_us", "main thread per event"),
    ] {
        let b = median_of(base, field);
        let mut parts = Vec::new();
        for key in GOAL_RIVALS {
            let rival = sdks.and_then(|s| s.get(key));
            let r = match (rival.and_then(|r| median_of(r, field)), b) {
                (Some(v), Some(b)) if b > 0.0 => Some(v / b),
                _ => None,
            };
            let short = r.is_none_or(|r| r < GOAL_FACTOR);
            if field == "track_sync_us" && short {
                met = false;
            }
            parts.push(match r {
                Some(r) if short => {
                    format!("{} {r:.0}× (below {GOAL_FACTOR:.0}×)", display_name(key))
                }
                Some(r) => format!("{} {r:.0}×", display_name(key)),
                None if rival.is_none() => format!("{} not measured", display_name(key)),
                None => format!("{} no figure", display_name(key)),
            });
        }
        said.push(format!("{what}: {}", parts.join(", ")));
    }
    let runs = runs_of(base);
    let mut delivered = Vec::new();
    for (field, total) in [
        ("cpu_delivered_events", "events_cpu"),
        ("net_events", "events_net"),
    ] {
        let total = num(results.get(total));
        // The fewest any run received: a run without the figure fails the goal.
        let least = runs
            .iter()
            .map(|r| num(r.get(field)))
            .collect::<Option<Vec<f64>>>()
            .and_then(|v| v.into_iter().reduce(f64::min));
        met &= matches!((least, total), (Some(l), Some(t)) if l >= t);
        let t = total.map_or("?".into(), |t| pkg::thousands(t as u64));
        delivered.push(match least {
            Some(l) => format!("{} of {t}", pkg::thousands(l as u64)),
            None => format!("not every run of the {t}-event page has the figure"),
        });
    }
    out.push_str(&format!(
        "{}. Ratios of the medians, rival to @segops/sdk: {}. The fewest of @segops/sdk's events \
         the sink received in any of its {} run(s): {}.\n\n",
        if met { "Met" } else { "Not met" },
        said.join("; "),
        runs.len(),
        delivered.join(" and ")
    ));
    out
}

/// SDKs measured in another pass (`BENCH_MERGE` records it as `pass`): said under the table.
fn passes(results: &Json) -> String {
    let sdks = results.get("sdks");
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (key, name) in SDKS {
        let Some(pass) = sdks.and_then(|s| s.get(key)).and_then(|s| s.get("pass")) else {
            continue;
        };
        let date = pass
            .get("date")
            .and_then(Json::as_str)
            .unwrap_or("an unknown date");
        let runs = num(pass.get("runs")).map_or("?".into(), |r| format!("{r:.0}"));
        let browser = pass.get("browser").and_then(Json::as_str).unwrap_or("?");
        let what = format!("{date}, {runs} run(s), Chromium {browser}");
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, names)) => names.push(name),
            None => groups.push((what, vec![name])),
        }
    }
    groups
        .iter()
        .map(|(what, names)| {
            format!(
                "The {} row(s) come from a separate pass ({what}), not interleaved with the \
                 others.\n\n",
                names.join(", ")
            )
        })
        .collect()
}

/// One chart per figure that at least two SDKs have (a figure or a failure).
fn charts(results: &Json) -> Vec<(&'static Column, String)> {
    let sdks = results.get("sdks");
    let base = sdks.and_then(|s| s.get(BASE));
    let marks = marked(results);
    let runs = num(results.get("runs")).unwrap_or(0.0);
    let mut out = Vec::new();
    for c in COLUMNS {
        let mut bars = Vec::new();
        let mut used: Vec<&str> = Vec::new();
        for (key, name) in SDKS {
            let Some(sdk) = sdks.and_then(|s| s.get(key)) else {
                continue;
            };
            let (value, text) = cell(c, key, sdk, base);
            let mark = mark_of(&marks, key);
            let label = match value {
                Some(_) => text,
                None if text == "failed" => {
                    let why = runs_of(sdk)
                        .iter()
                        .find_map(|r| failure(r, c.scenario))
                        .map(|f| f.what(results))
                        .unwrap_or_default();
                    format!("failed: {why}")
                }
                None if !c.only_base && !errors_of(sdk).is_empty() => {
                    "no figure: the bench hit an error".into()
                }
                None => continue,
            };
            if !mark.is_empty() {
                used.push(mark);
            }
            bars.push(chart::Bar {
                name: format!("{name}{mark}"),
                value,
                label,
                highlight: *key == BASE,
            });
        }
        if bars.len() < 2 {
            continue;
        }
        let mut notes = Vec::new();
        if !used.is_empty() {
            notes.push(format!(
                "{}: see the footnotes under the table in docs/benchmarks.md",
                used.join(" ")
            ));
        }
        let svg = chart::svg(&chart::Chart {
            title: c.title.into(),
            subtitle: format!("{} · medians of {runs:.0} run(s)", c.subtitle),
            bars,
            notes,
            tick: chart::compact,
        });
        out.push((c, svg));
    }
    out
}

/// Every run of every SDK, as measured.
fn raw_runs(results: &Json) -> String {
    const FIELDS: &[&str] = &[
        "blocking_ms",
        "init_call_ms",
        "accepts_ms",
        "ready_ms",
        "first_event_ms",
        "track_sync_us",
        "track_main_thread_us",
        "longtask_ms",
        "cpu_delivered_events",
        "cpu_delivery_ms",
        "heap_growth_bytes",
        "wasm_memory_bytes",
        "wasm_memory_growth_bytes",
        "net_requests",
        "net_preflights",
        "net_bytes",
        "net_events",
        "net_delivery_ms",
        "net_renderer_peak_bytes",
        "cpu_renderer_peak_bytes",
    ];
    let mut out = String::from("| SDK | run |");
    for f in FIELDS {
        out.push_str(&format!(" {f} |"));
    }
    out.push_str(" notes |\n|---|---:|");
    for _ in FIELDS {
        out.push_str("---:|");
    }
    out.push_str("---|\n");
    let sdks = results.get("sdks");
    for (key, name) in SDKS {
        let Some(runs) = sdks
            .and_then(|s| s.get(key))
            .and_then(|s| s.get("runs"))
            .and_then(Json::as_array)
        else {
            continue;
        };
        for r in runs {
            let run = num(r.get("run")).unwrap_or(0.0);
            out.push_str(&format!("| {name} | {run:.0} |"));
            for f in FIELDS {
                let cell = match num(r.get(f)) {
                    Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
                    Some(v) => format!("{v:.1}"),
                    None => "–".to_string(),
                };
                out.push_str(&format!(" {cell} |"));
            }
            let mut notes: Vec<String> = Vec::new();
            for (label, scenario) in [("1k", Scenario::Net), ("10k", Scenario::Cpu)] {
                if let Some(f) = failure(r, scenario) {
                    let after = f
                        .after_ms
                        .map_or(String::new(), |ms| format!(" after {:.1} s", ms / 1000.0));
                    notes.push(format!("{label}: stopped{after}: {}", f.what(results)));
                }
            }
            if let Some(n) = r.get("first_event_note").and_then(Json::as_str) {
                notes.push(format!("first event: {n}"));
            }
            if let Some(e) = r.get("error").and_then(Json::as_str) {
                notes.push(format!("error: {e}"));
            }
            if let Some(errs) = r.get("page_errors").and_then(Json::as_array) {
                notes.extend(
                    errs.iter()
                        .filter_map(Json::as_str)
                        .map(|e| format!("page error: {e}")),
                );
            }
            let notes = notes.join("; ").replace('|', "\\|").replace('\n', " ");
            out.push_str(&format!(" {notes} |\n"));
        }
    }
    out
}

/// Per-file sizes of what each page's bundle holds for its SDK, and when each file is fetched.
fn file_sizes(results: &Json) -> String {
    let mut out = String::from(
        "| SDK | file | raw | gzip -9 | brotli 11 | fetched |\n|---|---|---:|---:|---:|---|\n",
    );
    let sdks = results.get("sdks");
    for (key, name) in SDKS {
        let Some(files) = sdks
            .and_then(|s| s.get(key))
            .and_then(|s| s.get("files"))
            .and_then(Json::as_array)
        else {
            continue;
        };
        for f in files {
            let n = |k: &str| pkg::thousands(num(f.get(k)).unwrap_or(0.0) as u64);
            let when = match (flag(f, "critical"), flag(f, "loaded")) {
                (Some(true), _) => "critical path",
                (Some(false), Some(false)) => "lazy, not fetched",
                (Some(false), _) => "lazy, fetched",
                (None, _) => "–",
            };
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {when} |\n",
                f.get("name").and_then(Json::as_str).unwrap_or("?"),
                n("raw"),
                n("gzip"),
                n("brotli")
            ));
        }
    }
    out
}

/// How it is measured (the memory cap and the charts' folder filled in).
fn method(results: &Json) -> String {
    let cap = match num(results.get("renderer_cap_mb")) {
        Some(mb) => format!("{} MB (`BENCH_RENDERER_CAP_MB`)", pkg::thousands(mb as u64)),
        None => "the memory cap (`BENCH_RENDERER_CAP_MB`)".into(),
    };
    let watch = match results.get("renderer_watch") {
        Some(Json::Bool(false)) => "not in this run: /proc was not readable, so no cap applied",
        _ => "from Linux `/proc`; elsewhere there is no cap",
    };
    format!(
        "\
## How it is measured

`cargo xtask bench` builds `pkg/` (release), installs the competitors at the versions pinned in
`bench/package.json`, and runs `bench/run.mjs`: esbuild bundles `bench/pages/<sdk>.js` (the
SDK's client, one event sent at once, then the benchmark's calls; minified, tree-shaken, ES
modules, code splitting on: what an SDK loads with `import()` stays a chunk of its own, fetched
when it asks for it, as a bundler-built app would serve it); the SegOps page also has the `.wasm`
beside its chunks. Pages and a sink are served on loopback (two ports, so
every SDK talks cross-origin). The sink answers 200 to everything (CORS as in
docs/protocol.md, preflights 204), answers the SegOps session and ingestion calls, PostHog's
remote config and flags calls (`supportedCompression: [\"gzip\", \"gzip-js\"]`), Amplitude's,
Mixpanel's and Segment's with their success bodies, and counts requests (preflights included),
bytes (request line, headers and body, as received) and events (occurrences of the benchmark's
unique event name in the decoded bodies: gzip, form `data=` and base64 undone). Every SDK keeps
its defaults except the address of its API (Segment's CDN settings are given inline, with the
Segment.io destination at the sink). Headless Chromium (playwright-core) runs with every host
name mapped to an instant failure, `--disable-blink-features=AutomationControlled`, without
`--enable-automation`, and a user agent without `Headless`; each scenario (the 1,000-event and
the 10,000-event page) is a fresh page in a fresh browser context; SDKs are interleaved within
each run. Times \"from navigation start\" are the page's `performance.now()`.

- **download**: the bytes of the files the SDK's pages fetched (chunks, plus the `.wasm` for
  SegOps), raw, gzip -9 and brotli 11; a lazy chunk no page asked for is not counted (the files
  table lists it). Code an SDK would fetch from its CDN is not counted (every external host
  fails).
- **critical path (gzip)**: the gzip -9 bytes of the page's entry chunk and of the chunks it
  imports statically (esbuild's metafile): what the browser fetches before the page's own code
  can run, by the same rule for every SDK. For SegOps that is the page with `web/index.js`, the
  loader (and any helper esbuild shares between it and the engine chunk); the engine chunk and
  the `.wasm` are fetched after `new SegOpsClient()`.
- **blocking**: how long the SDK's import delays the page's own code: the first chunk of the
  page to evaluate notes `performance.now()` at its top (esbuild puts that line on every chunk;
  a chunk the entry imports statically evaluates before it), and the page's code notes it again
  as its first statement, after its imports evaluated. What lies between is the evaluation of
  the SDK's modules, top-level `await` included; fetching and compiling them come before and
  are in the critical path and **accepts calls**. `performance.now()` is coarsened to 0.1 ms
  in these pages (no cross-origin isolation), so figures under a millisecond, and ratios to
  them, are at the timer's resolution.
- **accepts calls**: from navigation start until the call that creates the SDK's client has
  returned; every SDK here documents calls made from then on as accepted, the ones still loading
  queue them: SegOps' `new SegOpsClient()` (calls wait in its buffer until the `.wasm` is ready),
  Segment's `AnalyticsBrowser.load()` (a buffer replayed once the library is loaded),
  Amplitude's `init()` (calls before its promise resolves are queued), PostHog's and Mixpanel's
  `init()` and Snowplow's `newTracker()` (synchronous). It includes that call's own time
  (`init_call_ms` in the raw runs).
- **ready**: from navigation start until the SDK's documented ready point: SegOps' `client.ready`
  (module compiled, buffered calls handed over); PostHog's and Mixpanel's `loaded` callback
  (called from inside `init()`, so it can come before **accepts calls**); Segment's `ready()`;
  Amplitude's `init().promise`; Snowplow right after `newTracker()`.
- **first event**: right after the SDK accepts calls, the page tracks one event (a name of its
  own, never counted in the bursts) and asks for it to be sent at once with the SDK's documented
  means: SegOps' and Amplitude's `flush()`, Snowplow's `flushBuffer()`, PostHog's
  `capture(..., {{ send_instantly: true }})`, Mixpanel's `track(..., {{ send_immediately: true }})`;
  Segment sends every event at once by default and has no flush. The figure is when the sink
  began receiving the first request carrying it (the sink's clock minus the page's
  `performance.timeOrigin`: one machine, one wall clock). Nothing else is measured on a page
  until that event arrived (or 15 s passed: the raw runs say so). Amplitude queues a `track()`
  made before its `init()` resolves but not a `flush()`, which then finds nothing to send: its
  first event leaves about a second after ready (its `flushIntervalMillis`).
- **track() sync**: 10,000 `track()` calls with the same four properties, timed with
  `performance.now()` around the loop, per call. **main thread / event**: Chromium's
  `TaskDuration` (CDP `Performance.getMetrics`) from before the loop until the sink saw every
  event (or nothing came for 6.5 s, or 60 s passed), per event: the loop plus the work the SDK
  schedules (batching, serializing, compressing, sending). Long tasks are in the raw runs.
  Blocking, accepts calls, ready and first event are from the same page, before its loop.
- **requests / wire bytes / events received (1k)**: a fresh page sends 1,000 events as fast as it
  can call `track()`; what the sink received until it had all of them (or the same time limits).
- **JS heap growth (10k)**: `performance.memory.usedJSHeapSize` (`--enable-precise-memory-info`,
  after two forced GCs) after the 10,000 events and their delivery, minus before.
- **retained (10k)**: JS heap growth plus wasm memory growth over the same span: for SegOps
  `stats().memoryBytes` after minus before (a wasm memory never shrinks, so the burst's high
  water stays); the others have no wasm memory.
- **wasm memory (10k)**: SegOps only: `stats().memoryBytes` (the wasm memory's size) after the
  10,000 events.

**Stopped pages.** The raw runs have each page's peak renderer memory (`net_renderer_peak_bytes`,
`cpu_renderer_peak_bytes`: the renderer process's resident memory, read every 200 ms, Chromium's
own baseline of about 150 MB included; {watch}). A page is stopped (its context closed) when it
crashes, when it has not finished after 150 s, or when its renderer passes {cap}. The figures it measured until then are kept (the page prints the `track()` loop's
time on the console as soon as the loop ends, so the figure survives an SDK whose queued work
never lets that task end); the others say \"failed\", and a footnote under the table says what
happened, how often, and what had arrived by then. The cap bounds what a failing page takes
from the machine; without it such a page grows until its renderer crashes.

**Charts** (`{CHARTS}/<figure>.svg` beside this file): one per figure that at least two SDKs
have, from the same medians, @segops/sdk highlighted, with a logarithmic axis (said under the
title) when the values span more than 100×.
"
    )
}

/// The whole report; `charts` are the chart files written beside it (figure, relative path).
fn report(results: &Json, charts: &[(&Column, String)]) -> String {
    let runs = num(results.get("runs")).unwrap_or(0.0);
    let browser = results.get("browser").and_then(Json::as_str).unwrap_or("?");
    let mut out = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench`; do not edit by hand. Medians of {runs:.0} \
         run(s) per SDK in headless Chromium {browser}, on loopback; in brackets each figure as a \
         ratio to @segops/sdk.\n\n"
    );
    out.push_str(&table(results));
    out.push('\n');
    out.push_str(&footnotes(results));
    out.push_str(&passes(results));
    out.push_str(&goal(results));
    if !charts.is_empty() {
        out.push_str("## Charts\n\n");
        for (c, path) in charts {
            out.push_str(&format!("![{}]({path})\n\n", c.title));
        }
    }
    out.push_str(&method(results));
    out.push_str("\n## Files\n\n");
    out.push_str(&file_sizes(results));
    out.push_str("\n## Raw runs\n\n");
    out.push_str(&raw_runs(results));
    out
}

/// Installs the pinned competitors into `bench/node_modules` unless they are there already.
fn npm_install(dir: &Path) -> Result<(), String> {
    let manifest = fs::read_to_string(dir.join("package.json"))
        .map_err(|e| format!("{}: {e}", dir.join("package.json").display()))?;
    let manifest = json::parse(&manifest)?;
    let Some(Json::Obj(deps)) = manifest.get("dependencies") else {
        return Err("bench/package.json has no dependencies".into());
    };
    let present = deps.iter().all(|(name, want)| {
        let have = fs::read_to_string(dir.join("node_modules").join(name).join("package.json"))
            .ok()
            .and_then(|t| json::parse(&t).ok())
            .and_then(|j| j.get("version").and_then(Json::as_str).map(str::to_string));
        have.as_deref() == want.as_str()
    });
    if present {
        ui::step("bench", "competitor SDKs present (bench/node_modules)");
        return Ok(());
    }
    if which("npm").is_none() {
        return Err("no npm on PATH".into());
    }
    let out = run_tee(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--package-lock=false",
            ])
            .current_dir(dir),
    );
    if out.success() {
        Ok(())
    } else {
        Err(format!("npm install in bench/ failed ({})", out.describe()))
    }
}

pub fn run(ctx: &Ctx) -> bool {
    match run_inner(ctx) {
        Ok(()) => true,
        Err(e) => {
            ui::problem("bench", e);
            false
        }
    }
}

/// A path from the environment, relative to the current folder.
fn env_path(name: &str) -> Option<PathBuf> {
    let p = std::env::var_os(name).filter(|p| !p.is_empty())?;
    Some(
        std::env::current_dir()
            .map(|cwd| cwd.join(&p))
            .unwrap_or_else(|_| PathBuf::from(p)),
    )
}

/// `BENCH_SDKS`, checked: every name must be one the bench knows; unset means all.
fn parse_sdks(list: Option<&str>) -> Result<Vec<&'static str>, String> {
    let Some(list) = list else {
        return Ok(SDKS.iter().map(|(k, _)| *k).collect());
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match SDKS.iter().find(|(k, _)| *k == name) {
            Some((k, _)) => out.push(*k),
            None => {
                let known: Vec<&str> = SDKS.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "BENCH_SDKS: unknown SDK {name} (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    if out.is_empty() {
        return Err("BENCH_SDKS names no SDK".into());
    }
    Ok(out)
}

/// Writes the charts into `dir` (its old `.svg` files removed first); returns each chart's figure
/// and its path relative to the report.
fn write_charts(results: &Json, dir: &Path) -> Result<Vec<(&'static Column, String)>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let old = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in old.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "svg") {
            fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let mut out = Vec::new();
    for (c, svg) in charts(results) {
        let path = dir.join(format!("{}.svg", c.slug));
        fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push((c, format!("{CHARTS}/{}.svg", c.slug)));
    }
    Ok(out)
}

fn run_inner(ctx: &Ctx) -> Result<(), String> {
    let dir = ctx.root.join(BENCH_DIR);
    let results_path = match env_path("BENCH_REUSE") {
        Some(p) => {
            ui::step("bench", "BENCH_REUSE set: rendering earlier results");
            p
        }
        None => measure(
            ctx,
            &dir,
            &parse_sdks(std::env::var("BENCH_SDKS").ok().as_deref())?,
        )?,
    };
    let text = fs::read_to_string(&results_path)
        .map_err(|e| format!("{}: {e}", results_path.display()))?;
    let results = json::parse(&text)?;
    ui::heading("bench results (medians)");
    println!("{}", table(&results));
    print!("{}", footnotes(&results));
    print!("{}", goal(&results));
    let report_path = env_path("BENCH_REPORT").unwrap_or_else(|| ctx.root.join(REPORT));
    let report_dir = report_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let charts_dir = report_dir.join(CHARTS);
    let charts = write_charts(&results, &charts_dir)?;
    ui::step(
        "bench",
        format!("wrote {} charts to {}", charts.len(), charts_dir.display()),
    );
    fs::write(&report_path, report(&results, &charts))
        .map_err(|e| format!("{}: {e}", report_path.display()))?;
    ui::step("bench", format!("wrote {}", report_path.display()));
    Ok(())
}

fn measure(ctx: &Ctx, dir: &Path, sdks: &[&str]) -> Result<PathBuf, String> {
    let tools = setup::setup(ctx, setup::Needs::All);
    let chromium = std::env::var_os("SEGOPS_CHROMIUM")
        .map(PathBuf::from)
        .or(tools.chromium.clone())
        .ok_or("no Chromium; fix the setup problems above")?;
    let node_modules = setup::tools_dir().join("node_modules");
    let with_segops = sdks.contains(&BASE);
    if tools.node.is_none()
        || (with_segops && tools.wasm_pack.is_none())
        || !tools.has_npm("esbuild")
        || !tools.playwright_core
    {
        return Err(
            "needs node, wasm-pack, esbuild and playwright-core; fix the setup problems above"
                .into(),
        );
    }
    let pkg_dir = if with_segops {
        Some(pkg::Builds::default().package(ctx)?)
    } else {
        ui::step("bench", "BENCH_SDKS without segops: pkg/ not built");
        None
    };
    ui::heading("bench: competitor SDKs");
    npm_install(dir)?;
    ui::heading("bench: headless Chromium");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let results = out_dir.join("results.json");
    if results.is_file() {
        let prev = out_dir.join("results.prev.json");
        fs::rename(&results, &prev).map_err(|e| format!("{}: {e}", prev.display()))?;
    }
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("run.mjs"))
        .current_dir(dir)
        .env("BENCH_TOOLS_NODE_MODULES", &node_modules)
        .env("BENCH_SDKS", sdks.join(","))
        .env("BENCH_CHROMIUM", &chromium)
        .env("BENCH_OUT", &results);
    if let Some(p) = &pkg_dir {
        cmd.env("BENCH_SEGOPS_PKG", p);
    }
    if let Some(p) = env_path("BENCH_MERGE") {
        cmd.env("BENCH_MERGE", p);
    }
    crate::proc::die_with_parent(&mut cmd);
    let out = run_tee(&mut cmd);
    if !out.success() || !results.is_file() {
        return Err(format!("bench/run.mjs failed ({})", out.describe()));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(5.0, Some(2.0)).as_deref(), Some("2.50×"));
        assert_eq!(ratio(50.0, Some(2.0)).as_deref(), Some("25×"));
        assert_eq!(ratio(5.0, Some(0.0)), None);
        assert_eq!(ratio(5.0, None), None);
    }

    #[test]
    fn table_has_ratios_to_segops() {
        let results = json::parse(
            r#"{"runs":2,"browser":"1","sdks":{
              "segops":{"files":[{"name":"a.wasm","raw":100,"gzip":50,"brotli":40}],
                        "runs":[{"run":1,"ready_ms":10,"net_events":1000},{"run":2,"ready_ms":20}]},
              "posthog":{"files":[{"name":"p.js","raw":300,"gzip":100,"brotli":80}],
                        "runs":[{"run":1,"ready_ms":30},{"run":2,"error":"boom"}]}}}"#,
        )
        .unwrap();
        let t = table(&results);
        // Results without the files' critical flags have no critical path.
        assert!(
            t.contains("| @segops/sdk | 100 | 50 | 40 | – | – | – | 15 ms |"),
            "{t}"
        );
        assert!(
            t.contains("| posthog-js¹ | 300 (3.00×) | 100 (2.00×) |"),
            "{t}"
        );
        assert!(t.contains("30 ms (2.00×)"), "{t}");
        let r = report(&results, &[]);
        assert!(r.contains("error: boom"), "{r}");
        // The bench's own errors get a footnote too, without the stopped-page sentence.
        let f = footnotes(&results);
        assert_eq!(f, "¹ **posthog-js**: errors in 1 of 2 runs: `boom`.\n\n");
        let charts = charts(&results);
        let (_, sync) = charts
            .iter()
            .find(|(c, _)| c.slug == "events-received-1k")
            .unwrap();
        assert!(
            sync.contains(">no figure: the bench hit an error</text>"),
            "{sync}"
        );
    }

    /// Two SDKs; the second's 10,000-event page ran out of memory in both runs, after measuring
    /// the start figures and track() sync. SegOps has a lazy chunk and the .wasm, and a chunk
    /// no page fetched.
    fn failed_results() -> Json {
        json::parse(
            r#"{"runs":2,"browser":"1","renderer_cap_mb":3072,"events_cpu":10000,"events_net":1000,
              "sdks":{
              "segops":{"files":[
                          {"name":"page.js","raw":15,"gzip":10,"brotli":8,"critical":true,"loaded":true},
                          {"name":"engine.js","raw":5,"gzip":4,"brotli":3,"critical":false,"loaded":true},
                          {"name":"a.wasm","raw":80,"gzip":36,"brotli":29,"critical":false,"loaded":true},
                          {"name":"never.js","raw":7,"gzip":7,"brotli":7,"critical":false,"loaded":false}],
                        "runs":[{"run":1,"blocking_ms":0.1,"accepts_ms":40,"ready_ms":10,
                                 "first_event_ms":60,"track_sync_us":10,"heap_growth_bytes":1000,
                                 "wasm_memory_bytes":5000,"wasm_memory_growth_bytes":2000,
                                 "net_events":1000,"cpu_delivered_events":10000,
                                 "net_renderer_peak_bytes":167772160},
                                {"run":2,"blocking_ms":0.1,"accepts_ms":40,"ready_ms":10,
                                 "first_event_ms":60,"track_sync_us":10,"heap_growth_bytes":1000,
                                 "wasm_memory_bytes":5000,"wasm_memory_growth_bytes":2000,
                                 "net_events":1000,"cpu_delivered_events":10000}]},
              "snowplow":{"files":[{"name":"s.js","raw":50,"gzip":20,"brotli":10,"critical":true,"loaded":true}],
                        "runs":[{"run":1,"blocking_ms":1.5,"accepts_ms":50,"first_event_ms":80,
                                 "ready_ms":20,"track_sync_us":500,"net_events":1000,
                                 "net_renderer_peak_bytes":1468006400,
                                 "cpu_failure":"memory","cpu_failure_detail":"the renderer passed 3072 MB",
                                 "cpu_failure_after_ms":28100,"cpu_delivered_events":0},
                                {"run":2,"blocking_ms":1.5,"accepts_ms":50,"first_event_ms":100,
                                 "ready_ms":20,"track_sync_us":400,"net_events":1000,
                                 "cpu_failure":"memory","cpu_failure_detail":"the renderer passed 3072 MB",
                                 "cpu_failure_after_ms":31900,"cpu_delivered_events":12}],
                        "pass":{"date":"2026-11-24","runs":2,"browser":"1"}}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn failed_pages_are_marked_and_explained() {
        let results = failed_results();
        let t = table(&results);
        // Figures measured before the page was stopped are kept; the rest say failed; wasm
        // memory is SegOps-only, not a failure.
        assert!(
            t.contains(
                "| @snowplow/browser-tracker¹ | 50 (0.50×) | 20 (0.40×) | 10 (0.25×) | 20 (2.00×) \
                 | 1.5 ms (15×) | 50 ms (1.25×) | 20 ms (2.00×) | 90 ms (1.50×) | 450 µs (45×) \
                 | failed | – | – | 1,000 (1.00×) | failed | failed | – |\n"
            ),
            "{t}"
        );
        // Download counts the files a page fetched; the critical path the entry's static
        // imports; retained adds the wasm growth to the JS heap's.
        assert!(
            t.contains(
                "| @segops/sdk | 100 | 50 | 40 | 10 | 0.1 ms | 40 ms | 10 ms | 60 ms | 10.0 µs | – \
                 | – | – | 1,000 | 1,000 | 3,000 | 5,000 |\n"
            ),
            "{t}"
        );
        let f = footnotes(&results);
        assert!(
            f.starts_with(
                "¹ **@snowplow/browser-tracker**: 10,000 events: stopped in 2 of 2 runs: its \
                 renderer passed 3,072 MB, 28–32 s after the first `track()`, with 12 of 10,000 \
                 events received by then. Why: @snowplow/browser-tracker keeps"
            ),
            "{f}"
        );
        assert!(
            f.contains(
                "beyond that. Its 1,000-event page peaked at 1,400 MB of renderer memory \
                 (@segops/sdk: 160 MB).\n\n"
            ),
            "{f}"
        );
        let r = report(&results, &[]);
        assert!(
            r.contains("10k: stopped after 28.1 s: its renderer passed 3,072 MB"),
            "{r}"
        );
        assert!(r.contains("The @snowplow/browser-tracker row(s) come from a separate pass (2026-11-24, 2 run(s), Chromium 1), not interleaved"), "{r}");
        assert!(
            r.contains("its renderer passes 3,072 MB (`BENCH_RENDERER_CAP_MB`)"),
            "{r}"
        );
    }

    #[test]
    fn a_chart_per_shared_figure() {
        let results = failed_results();
        let charts = charts(&results);
        let slugs: Vec<&str> = charts.iter().map(|(c, _)| c.slug).collect();
        // Figures at least two SDKs have (a value or a failure): not the SegOps-only wasm memory,
        // nor main thread (only Snowplow's failure; SegOps has no figure in this fixture).
        assert_eq!(
            slugs,
            vec![
                "download-raw",
                "download-gzip",
                "download-brotli",
                "critical-path-gzip",
                "blocking",
                "accepts-calls",
                "ready",
                "first-event",
                "track-sync",
                "events-received-1k",
                "heap-growth-10k",
                "retained-10k",
            ],
            "{slugs:?}"
        );
        let (_, heap) = charts
            .iter()
            .find(|(c, _)| c.slug == "heap-growth-10k")
            .unwrap();
        assert!(
            heap.contains("failed: its renderer passed 3,072 MB"),
            "{heap}"
        );
        assert!(heap.contains("@snowplow/browser-tracker¹"), "{heap}");
        assert!(heap.contains("¹: see the footnotes"), "{heap}");
        let (_, sync) = charts.iter().find(|(c, _)| c.slug == "track-sync").unwrap();
        assert!(sync.contains("450 µs (45×)"), "{sync}");
        assert!(!sync.contains("log scale"), "{sync}");
        let dir = std::env::temp_dir().join(format!("xtask-bench-charts-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stale.svg"), "old").unwrap();
        let written = write_charts(&results, &dir).unwrap();
        assert_eq!(written.len(), 12);
        assert!(!dir.join("stale.svg").exists());
        assert!(dir.join("ready.svg").is_file());
        let r = report(&results, &written);
        assert!(r.contains("![Ready](bench/ready.svg)"), "{r}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_say_when_they_are_fetched() {
        let f = file_sizes(&failed_results());
        assert!(
            f.contains("| @segops/sdk | page.js | 15 | 10 | 8 | critical path |"),
            "{f}"
        );
        assert!(
            f.contains("| @segops/sdk | a.wasm | 80 | 36 | 29 | lazy, fetched |"),
            "{f}"
        );
        assert!(
            f.contains("| never.js | 7 | 7 | 7 | lazy, not fetched |"),
            "{f}"
        );
    }

    /// SegOps, PostHog and (unless a partial run) Segment with the figures the goal is about.
    fn goal_results(segops_cpu_events: u32, with_segment: bool) -> Json {
        let segment = if with_segment {
            r#","segment":{"files":[],"runs":[{"run":1,"track_sync_us":1650,"track_main_thread_us":4000}]}"#
        } else {
            ""
        };
        json::parse(&format!(
            r#"{{"runs":2,"browser":"1","events_cpu":10000,"events_net":1000,"sdks":{{
              "segops":{{"files":[],"runs":[
                {{"run":1,"track_sync_us":10,"track_main_thread_us":20,"cpu_delivered_events":10000,"net_events":1000}},
                {{"run":2,"track_sync_us":12,"track_main_thread_us":20,"cpu_delivered_events":{segops_cpu_events},"net_events":1000}}]}},
              "posthog":{{"files":[],"runs":[{{"run":1,"track_sync_us":660,"track_main_thread_us":300}}]}}{segment}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn goal_states_the_ratios_and_deliveries() {
        let g = goal(&goal_results(10000, true));
        assert_eq!(
            g,
            "**The `track()` goal**: at least 20× cheaper than posthog-js and \
             @segment/analytics-next, with every event of the bursts delivered. Met. Ratios of \
             the medians, rival to @segops/sdk: `track()` sync: posthog-js 60×, \
             @segment/analytics-next 150×; main thread per event: posthog-js 15× (below 20×), \
             @segment/analytics-next 200×. The fewest of @segops/sdk's events the sink received \
             in any of its 2 run(s): 10,000 of 10,000 and 1,000 of 1,000.\n\n"
        );
        // One lost event in one run is enough to miss it.
        let g = goal(&goal_results(9999, true));
        assert!(g.contains("delivered. Not met."), "{g}");
        assert!(
            g.contains("run(s): 9,999 of 10,000 and 1,000 of 1,000."),
            "{g}"
        );
        assert!(report(&goal_results(10000, true), &[]).contains("**The `track()` goal**"));
        // A partial run without a rival says so.
        let g = goal(&goal_results(10000, false));
        assert!(g.contains("Not met."), "{g}");
        assert!(g.contains("@segment/analytics-next not measured"), "{g}");
    }

    #[test]
    fn sdk_selection() {
        assert_eq!(parse_sdks(None).unwrap().len(), SDKS.len());
        assert_eq!(
            parse_sdks(Some("mixpanel, snowplow")).unwrap(),
            vec!["mixpanel", "snowplow"]
        );
        assert!(parse_sdks(Some("mixpanel,rudderstack"))
            .unwrap_err()
            .contains("unknown SDK rudderstack"));
        assert!(parse_sdks(Some(",")).is_err());
    }
}
