//! `cargo xtask bench`: the SDK against five analytics SDKs in headless Chromium.
//!
//! xtask builds `pkg/` (release), installs the competitors pinned in `bench/package.json` into
//! `bench/node_modules`, and runs `bench/run.mjs` (esbuild and playwright-core from the tools
//! folder), which bundles one "init + track" page per SDK, serves the pages and a counting sink
//! on loopback and writes every run as JSON. xtask then prints the medians as one markdown table
//! and writes it, with the raw runs, to `docs/benchmarks.md`.
//!
//! `BENCH_RUNS` sets the runs per SDK (default 3); `BENCH_SDKS` a comma-separated subset;
//! `BENCH_REUSE=<results.json>` renders an earlier run's results without running anything.

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

/// One column: its heading, where its value comes from, how to print it.
struct Column {
    heading: &'static str,
    value: fn(&Json) -> Option<f64>,
    unit: Unit,
}

#[derive(Clone, Copy)]
enum Unit {
    Bytes,
    Ms,
    Us,
    Count,
}

fn num(j: Option<&Json>) -> Option<f64> {
    match j {
        Some(Json::Num(n)) if n.is_finite() => Some(*n),
        _ => None,
    }
}

/// Sum of one size field over an SDK's files.
fn files_sum(sdk: &Json, field: &str) -> Option<f64> {
    let files = sdk.get("files")?.as_array()?;
    files.iter().map(|f| num(f.get(field))).sum()
}

const COLUMNS: &[Column] = &[
    Column {
        heading: "download raw",
        value: |s| files_sum(s, "raw"),
        unit: Unit::Bytes,
    },
    Column {
        heading: "gzip -9",
        value: |s| files_sum(s, "gzip"),
        unit: Unit::Bytes,
    },
    Column {
        heading: "brotli 11",
        value: |s| files_sum(s, "brotli"),
        unit: Unit::Bytes,
    },
    Column {
        heading: "ready",
        value: |s| median_of(s, "ready_ms"),
        unit: Unit::Ms,
    },
    Column {
        heading: "track() sync",
        value: |s| median_of(s, "track_sync_us"),
        unit: Unit::Us,
    },
    Column {
        heading: "main thread / event",
        value: |s| median_of(s, "track_main_thread_us"),
        unit: Unit::Us,
    },
    Column {
        heading: "requests (1k)",
        value: |s| median_of(s, "net_requests"),
        unit: Unit::Count,
    },
    Column {
        heading: "wire bytes (1k)",
        value: |s| median_of(s, "net_bytes"),
        unit: Unit::Bytes,
    },
    Column {
        heading: "events received (1k)",
        value: |s| median_of(s, "net_events"),
        unit: Unit::Count,
    },
    Column {
        heading: "JS heap growth (10k)",
        value: |s| median_of(s, "heap_growth_bytes"),
        unit: Unit::Bytes,
    },
    Column {
        heading: "wasm memory (10k)",
        value: |s| median_of(s, "wasm_memory_bytes"),
        unit: Unit::Bytes,
    },
];

/// The median of `field` over an SDK's runs that have it.
fn median_of(sdk: &Json, field: &str) -> Option<f64> {
    let runs = sdk.get("runs")?.as_array()?;
    median(runs.iter().filter_map(|r| num(r.get(field))).collect())
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

/// The medians table, each cell with its ratio to SegOps.
pub fn table(results: &Json) -> String {
    let sdks = results.get("sdks");
    let base = sdks.and_then(|s| s.get(BASE));
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
        out.push_str(&format!("| {name} |"));
        for c in COLUMNS {
            let cell = match (c.value)(sdk) {
                None => "–".to_string(),
                Some(v) => {
                    let text = format_value(v, c.unit);
                    match ratio(v, base.and_then(|b| (c.value)(b))) {
                        Some(r) if *key != BASE => format!("{text} ({r})"),
                        _ => text,
                    }
                }
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

/// Every run of every SDK, as measured.
fn raw_runs(results: &Json) -> String {
    const FIELDS: &[&str] = &[
        "ready_ms",
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

/// Per-file sizes of what each page loads for its SDK.
fn file_sizes(results: &Json) -> String {
    let mut out =
        String::from("| SDK | file | raw | gzip -9 | brotli 11 |\n|---|---|---:|---:|---:|\n");
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
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} |\n",
                f.get("name").and_then(Json::as_str).unwrap_or("?"),
                n("raw"),
                n("gzip"),
                n("brotli")
            ));
        }
    }
    out
}

const METHOD: &str = "\
## How it is measured

`cargo xtask bench` builds `pkg/` (release), installs the competitors at the versions pinned in
`bench/package.json`, and runs `bench/run.mjs`: esbuild bundles `bench/pages/<sdk>.js` (init plus
one `track()`, minified, tree-shaken, ES module, dynamic imports inlined) into one file per SDK;
the SegOps page also loads the `.wasm`. Pages and a sink are served on loopback (two ports, so
every SDK talks cross-origin). The sink answers 200 to everything (CORS as in
docs/protocol.md, preflights 204), answers the SegOps session and ingestion calls, PostHog's
remote config and flags calls (`supportedCompression: [\"gzip\", \"gzip-js\"]`), Amplitude's,
Mixpanel's and Segment's with their success bodies, and counts requests (preflights included),
bytes (request line, headers and body, as received) and events (occurrences of the benchmark's
unique event name in the decoded bodies: gzip, form `data=` and base64 undone). Every SDK keeps
its defaults except the address of its API (Segment's CDN settings are given inline, with the
Segment.io destination at the sink). Headless Chromium (playwright-core) runs with every host
name mapped to an instant failure, `--disable-blink-features=AutomationControlled`, without
`--enable-automation`, and a user agent without `Headless`; each run is a fresh browser
context; SDKs are interleaved within each run.

- **download**: the bytes of the files the page loads for the SDK (bundle, plus the `.wasm` for
  SegOps), raw, gzip -9 and brotli 11. Code an SDK would fetch later from its CDN is not
  counted (every external host fails).
- **ready**: `performance.now()` (from navigation start) when the SDK can take events: SegOps
  after its module (and the `.wasm`) loaded and the client was constructed; PostHog's and
  Mixpanel's `loaded` callback; Segment's `ready()`; Amplitude's `init().promise`; Snowplow
  right after `newTracker`.
- **track() sync**: 10,000 `track()` calls with the same four properties, timed with
  `performance.now()` around the loop, per call. **main thread / event**: Chromium's
  `TaskDuration` (CDP `Performance.getMetrics`) from before the loop until the sink saw every
  event (or nothing came for 6.5 s, or 60 s passed), per event: the loop plus the work the SDK
  schedules (batching, serializing, compressing, sending). Long tasks are in the raw runs.
- **requests / wire bytes / events received (1k)**: a fresh page sends 1,000 events as fast as it
  can call `track()`; what the sink received until it had all of them (or the same time limits).
- **JS heap growth (10k)**: `performance.memory.usedJSHeapSize` (`--enable-precise-memory-info`,
  after two forced GCs) after the 10,000 events and their delivery, minus before.
- **wasm memory (10k)**: SegOps only: the wasm `memory.buffer.byteLength` after the 10,000 events
  (the raw runs have its growth).
";

/// The whole report.
pub fn report(results: &Json) -> String {
    let runs = num(results.get("runs")).unwrap_or(0.0);
    let browser = results.get("browser").and_then(Json::as_str).unwrap_or("?");
    let mut out = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench`; do not edit by hand. Medians of {runs:.0} \
         run(s) per SDK in headless Chromium {browser}, on loopback; in brackets each figure as a \
         ratio to @segops/sdk.\n\n"
    );
    out.push_str(&table(results));
    out.push('\n');
    out.push_str(METHOD);
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

fn run_inner(ctx: &Ctx) -> Result<(), String> {
    let dir = ctx.root.join(BENCH_DIR);
    let results_path = match std::env::var_os("BENCH_REUSE") {
        Some(p) if !p.is_empty() => {
            ui::step("bench", "BENCH_REUSE set: rendering earlier results");
            PathBuf::from(p)
        }
        _ => measure(ctx, &dir)?,
    };
    let text = fs::read_to_string(&results_path)
        .map_err(|e| format!("{}: {e}", results_path.display()))?;
    let results = json::parse(&text)?;
    ui::heading("bench results (medians)");
    println!("{}", table(&results));
    let report_path = ctx.root.join(REPORT);
    fs::write(&report_path, report(&results))
        .map_err(|e| format!("{}: {e}", report_path.display()))?;
    ui::step("bench", format!("wrote {REPORT}"));
    Ok(())
}

fn measure(ctx: &Ctx, dir: &Path) -> Result<PathBuf, String> {
    let tools = setup::setup(ctx, setup::Needs::All);
    let chromium = std::env::var_os("SEGOPS_CHROMIUM")
        .map(PathBuf::from)
        .or(tools.chromium.clone())
        .ok_or("no Chromium; fix the setup problems above")?;
    let node_modules = setup::tools_dir().join("node_modules");
    if tools.node.is_none()
        || tools.wasm_pack.is_none()
        || !tools.has_npm("esbuild")
        || !tools.playwright_core
    {
        return Err(
            "needs node, wasm-pack, esbuild and playwright-core; fix the setup problems above"
                .into(),
        );
    }
    let pkg_dir = pkg::Builds::default().package(ctx)?;
    ui::heading("bench: competitor SDKs");
    npm_install(dir)?;
    ui::heading("bench: headless Chromium");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let results = out_dir.join("results.json");
    let _ = fs::remove_file(&results);
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("run.mjs"))
        .current_dir(dir)
        .env("BENCH_TOOLS_NODE_MODULES", &node_modules)
        .env("BENCH_SEGOPS_PKG", &pkg_dir)
        .env("BENCH_CHROMIUM", &chromium)
        .env("BENCH_OUT", &results);
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
        assert!(t.contains("| @segops/sdk | 100 | 50 | 40 | 15 ms |"), "{t}");
        assert!(
            t.contains("| posthog-js | 300 (3.00×) | 100 (2.00×) |"),
            "{t}"
        );
        assert!(t.contains("30 ms (2.00×)"), "{t}");
        let r = report(&results);
        assert!(r.contains("error: boom"), "{r}");
    }
}
