// The browser side of `cargo xtask bench`: bundles one "init + track" page per SDK with esbuild
// (code splitting on, so what an SDK imports dynamically stays a chunk of its own, fetched when
// it asks for it, and the entry's static imports are its critical path), serves them and a
// counting sink on loopback, drives headless Chromium with playwright-core and writes every
// run's figures as JSON. Run by xtask, which passes everything through the env:
//   BENCH_TOOLS_NODE_MODULES  node_modules holding esbuild and playwright-core
//   BENCH_SEGOPS_PKG          the assembled @segops/sdk package (pkg/)
//   BENCH_CHROMIUM            the Chromium executable
//   BENCH_OUT                 the JSON file to write
//   BENCH_RUNS                runs per SDK (default 3), interleaved
//   BENCH_SDKS                optional comma-separated subset
//   BENCH_MERGE               optional earlier results JSON: SDKs not measured now come from it
//   BENCH_RENDERER_CAP_MB     a page whose renderer grows past this is stopped (default 3072)
import { createRequire } from "node:module";
import { createServer } from "node:http";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { CHROMIUM_FLAGS } from "../tests/chromium-flags.mjs";

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    throw new Error(`${name} is not set (run through cargo xtask bench)`);
  }
  return v;
};
const HERE = path.dirname(fileURLToPath(import.meta.url));
const TOOLS = env("BENCH_TOOLS_NODE_MODULES");
const CHROMIUM = env("BENCH_CHROMIUM");
const OUT = env("BENCH_OUT");
const RUNS = Math.max(1, Number(env("BENCH_RUNS", "3")) || 3);
const ALL_SDKS = ["segops", "posthog", "segment", "amplitude", "mixpanel", "snowplow"];
const SDKS = env("BENCH_SDKS", ALL_SDKS.join(","))
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
for (const s of SDKS)
  if (!ALL_SDKS.includes(s)) throw new Error(`BENCH_SDKS: unknown SDK ${s} (known: ${ALL_SDKS.join(", ")})`);
// The package is only needed when SegOps is measured (xtask does not build it otherwise).
const PKG = SDKS.includes("segops") ? env("BENCH_SEGOPS_PKG") : null;
const MERGE = env("BENCH_MERGE", "");
const RENDERER_CAP_MB = Math.max(256, Number(env("BENCH_RENDERER_CAP_MB", "3072")) || 3072);
const CPU_EVENTS = 10_000;
const NET_EVENTS = 1_000;
/// A name no SDK writes by itself: the sink counts events by its occurrences.
const EVENT = "bench_evt_q7";
/// The one event each page tracks as soon as its SDK accepts calls: the sink notes when the first
/// request carrying it arrives. It does not contain EVENT, so the burst counts never include it.
const FIRST = "bench_first_k3";
/// How long a page may take to get its first event to the sink before the scenario goes on.
const FIRST_WAIT_MS = 15_000;
/// Delivery waits end when the sink has every event, or after this long without a request.
const QUIET_MS = 6_500;
const DELIVERY_CAP_MS = 60_000;
const READY_TIMEOUT_MS = 20_000;
/// A scenario that has not ended after this long is stopped (its delivery wait alone is capped at
/// DELIVERY_CAP_MS; this also covers a page too busy to answer).
const SCENARIO_CAP_MS = 150_000;
/// How often the renderer's memory is sampled.
const WATCH_MS = 200;
/// The page prints the track() loop's time on the console as soon as the loop ends, so the figure
/// survives a page that never returns from the task (work the SDK queued as microtasks runs first).
const LOOP_TAG = "__bench_loop_ms ";

const req = createRequire(path.join(TOOLS, "noop.js"));
const esbuild = req("esbuild");
const { chromium } = req("playwright-core");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log("[bench]", ...a);

// ---------------------------------------------------------------- the sink
const sink = {
  requests: 0,
  bytes: 0, // request line + headers + body, as received
  events: 0,
  preflights: 0,
  lastAt: 0,
  /// Epoch ms (as performance.timeOrigin counts them) when the first request carrying FIRST began
  /// to arrive; reset for each page.
  firstAt: null,
  reset() {
    this.requests = 0;
    this.bytes = 0;
    this.events = 0;
    this.preflights = 0;
    this.lastAt = Date.now();
  },
};

function decodeBody(buf, url) {
  let b = buf;
  try {
    if (b.length > 2 && b[0] === 0x1f && b[1] === 0x8b) b = zlib.gunzipSync(b);
  } catch {}
  let text = b.toString("utf8");
  if (text.startsWith("data=")) {
    const data = new URLSearchParams(text).get("data") || "";
    text = /^[\[{]/.test(data) ? data : Buffer.from(data, "base64").toString("utf8");
  }
  const q = new URL(url, "http://x").searchParams.get("data");
  if (q) text += /^[\[{]/.test(q) ? q : Buffer.from(q, "base64").toString("utf8");
  return text;
}

const countEvents = (text) => text.split(EVENT).length - 1;

function cors(reqst, headers, credentials) {
  const origin = reqst.headers.origin;
  if (origin) headers["access-control-allow-origin"] = origin;
  headers["vary"] = "Origin";
  // A real Snowplow collector allows credentials (its tracker sends them by default); the SegOps
  // API never does (docs/protocol.md).
  if (credentials && origin) headers["access-control-allow-credentials"] = "true";
}

const POSTHOG_CONFIG = {
  supportedCompression: ["gzip", "gzip-js"],
  featureFlags: {},
  featureFlagPayloads: {},
  flags: {},
  errorsWhileComputingFlags: false,
  sessionRecording: false,
  autocapture_opt_out: false,
  capturePerformance: false,
  surveys: false,
  heatmaps: false,
  siteApps: [],
};

function sinkAnswer(reqst, body, text, events) {
  const url = new URL(reqst.url, "http://x");
  const p = url.pathname;
  const json = (o) => ["application/json", JSON.stringify(o)];
  if (p === "/api/auth/session/") {
    let who = {};
    try {
      who = JSON.parse(text);
    } catch {}
    return json({
      token: "t",
      expires_at: new Date(Date.now() + 900_000).toISOString().replace(/\.\d+Z$/, "Z"),
      expires_in: 900,
      uid: who.user_id ?? who.anonymous_id ?? "anon",
      uid_kind: "anonymous",
    });
  }
  if (p === "/api/ingestion/track/") {
    let n = 0;
    try {
      const o = JSON.parse(text);
      n = Array.isArray(o.events) ? o.events.length : 1;
    } catch {}
    return json({ accepted: n, duplicates: 0, rejected: [] });
  }
  if (p.startsWith("/posthog/flags") || p.startsWith("/posthog/decide") || /^\/posthog\/array\/[^/]+\/config$/.test(p))
    return json(POSTHOG_CONFIG);
  if (p.startsWith("/posthog/")) return p.endsWith(".js") ? ["text/javascript", ""] : json({ status: 1 });
  if (p.startsWith("/amplitude/"))
    return json({ code: 200, events_ingested: events, payload_size_bytes: body.length, server_upload_time: Date.now() });
  if (p.startsWith("/mixpanel/")) return json({ status: 1, error: null });
  if (p.startsWith("/segment/")) return json({ success: true });
  return ["text/plain", "ok"];
}

const epochNow = () => performance.timeOrigin + performance.now();

function startSink() {
  const server = createServer((reqst, res) => {
    const arrived = epochNow();
    const chunks = [];
    reqst.on("data", (c) => chunks.push(c));
    reqst.on("end", () => {
      const body = Buffer.concat(chunks);
      const headers = {};
      const credentials = reqst.url.startsWith("/snowplow");
      let headerBytes = `${reqst.method} ${reqst.url} HTTP/1.1\r\n`.length + 2;
      for (let i = 0; i < reqst.rawHeaders.length; i += 2)
        headerBytes += reqst.rawHeaders[i].length + 2 + reqst.rawHeaders[i + 1].length + 2;
      // Preflights count as requests and bytes too: they are on the wire.
      sink.requests += 1;
      sink.bytes += headerBytes + body.length;
      sink.lastAt = Date.now();
      if (reqst.method === "OPTIONS" && reqst.headers["access-control-request-method"]) {
        sink.preflights += 1;
        cors(reqst, headers, credentials);
        headers["access-control-allow-methods"] = "GET, POST, PATCH, DELETE, OPTIONS";
        headers["access-control-allow-headers"] =
          reqst.headers["access-control-request-headers"] || "authorization, content-type, content-encoding";
        headers["access-control-max-age"] = "600";
        res.writeHead(204, headers).end();
        return;
      }
      const text = decodeBody(body, reqst.url);
      if (sink.firstAt === null && text.includes(FIRST)) sink.firstAt = arrived;
      const events = countEvents(text);
      sink.events += events;
      cors(reqst, headers, credentials);
      headers["access-control-expose-headers"] = "Retry-After, Date";
      const [type, out] = sinkAnswer(reqst, body, text, events);
      headers["content-type"] = type;
      res.writeHead(200, headers).end(out);
    });
  });
  return listen(server);
}

// ---------------------------------------------------------------- pages
// Each SDK's page and chunks are in their own folder, WWW/<sdk>/: the page is index.html, its
// entry chunk page.js.
const WWW = path.join(HERE, "out", "www");
/// The files each SDK's pages fetched, by folder: what the download figures count.
const fetched = new Map();

function startPages() {
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
  const server = createServer((reqst, res) => {
    const rel = decodeURIComponent(new URL(reqst.url, "http://x").pathname).replace(/^\/+/, "");
    const file = path.join(WWW, rel);
    if (!file.startsWith(WWW + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    const [dir, ...name] = rel.split("/");
    if (!fetched.has(dir)) fetched.set(dir, new Set());
    fetched.get(dir).add(name.join("/"));
    res.writeHead(200, {
      "content-type": types[path.extname(file)] || "application/octet-stream",
      "cache-control": "no-store",
    });
    res.end(fs.readFileSync(file));
  });
  return listen(server);
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function sizes(file, name) {
  const b = fs.readFileSync(file);
  return {
    name,
    raw: b.length,
    gzip: zlib.gzipSync(b, { level: 9 }).length,
    brotli: zlib.brotliCompressSync(b, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length,
      },
    }).length,
  };
}

/// The outputs the entry chunk imports statically, itself included, transitively: what the
/// browser fetches before the page's code can run (esbuild's metafile, paths as it names them).
function criticalOutputs(metafile, entry) {
  const seen = new Set();
  const visit = (out) => {
    if (seen.has(out)) return;
    seen.add(out);
    for (const i of metafile.outputs[out]?.imports ?? []) if (i.kind === "import-statement" && !i.external) visit(i.path);
  };
  visit(entry);
  return seen;
}

// Every chunk starts with this: the first to evaluate marks when the page's module graph began
// evaluating (a chunk the entry imports statically evaluates before the entry's own code).
const EVAL_MARK = 'window.__mark&&__mark("eval");';

async function buildPages(sinkOrigin) {
  fs.rmSync(WWW, { recursive: true, force: true });
  fs.mkdirSync(WWW, { recursive: true });
  const template = fs.readFileSync(path.join(HERE, "pages", "page.html"), "utf8");
  const files = {};
  for (const sdk of SDKS) {
    const dir = path.join(WWW, sdk);
    const built = await esbuild.build({
      entryPoints: { page: path.join(HERE, "pages", `${sdk}.js`) },
      outdir: dir,
      absWorkingDir: HERE,
      bundle: true,
      splitting: true,
      metafile: true,
      minify: true,
      treeShaking: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      logLevel: "warning",
      banner: { js: EVAL_MARK },
      define: {
        SINK: JSON.stringify(sinkOrigin),
        SINK_HOST: JSON.stringify(sinkOrigin.replace(/^http:\/\//, "")),
        EVENT: JSON.stringify(EVENT),
        FIRST: JSON.stringify(FIRST),
        "process.env.NODE_ENV": '"production"',
      },
      plugins: [
        {
          name: "segops-from-pkg",
          setup(b) {
            b.onResolve({ filter: /^@segops\/sdk$/ }, () => ({ path: path.join(PKG, "web", "index.js") }));
          },
        },
      ],
    });
    fs.writeFileSync(path.join(dir, "index.html"), template);
    const outputs = Object.keys(built.metafile.outputs).filter((o) => o.endsWith(".js"));
    // Chunks loaded with import() are entry points too: the page's is the one from its source
    // (metafile paths are relative to absWorkingDir, with forward slashes).
    const entry = outputs.find((o) => built.metafile.outputs[o].entryPoint === `pages/${sdk}.js`);
    const critical = criticalOutputs(built.metafile, entry);
    const list = outputs.map((o) => ({
      ...sizes(path.join(HERE, o), path.basename(o)),
      critical: critical.has(o),
      entry: o === entry,
    }));
    if (sdk === "segops") {
      // The loader fetches the .wasm from next to its own chunk (new URL(..., import.meta.url)).
      const wasm = path.join(dir, "segops_sdk_bg.wasm");
      fs.copyFileSync(path.join(PKG, "web", "segops_sdk_bg.wasm"), wasm);
      list.push({ ...sizes(wasm, "segops_sdk_bg.wasm"), critical: false, entry: false });
    }
    // The entry first, then the rest of the critical path, then the lazy files.
    list.sort((a, b) => b.entry - a.entry || b.critical - a.critical || a.name.localeCompare(b.name));
    files[sdk] = list;
    log(sdk, "bundled:", list.map((f) => `${f.name} ${f.raw} B${f.critical ? " (critical)" : ""}`).join(", "));
  }
  return files;
}

/// Marks each file with whether any page of its SDK fetched it (download counts those only).
function markFetched(files) {
  for (const [sdk, list] of Object.entries(files)) {
    const got = fetched.get(sdk) ?? new Set();
    for (const f of list) f.loaded = got.has(f.name);
  }
}

// ---------------------------------------------------------------- the browser
const ARGS = [
  ...CHROMIUM_FLAGS,
  "--disable-dev-shm-usage",
  "--enable-precise-memory-info",
  "--disable-blink-features=AutomationControlled",
  // Every host name fails at once: nothing leaves the machine; the pages use 127.0.0.1 only.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

/// Waits until the sink has `expected` events, or nothing came for QUIET_MS since the later of
/// the last request and the end of the track() loop (now), or DELIVERY_CAP_MS passed.
async function waitDelivery(expected, t0, stopped = () => false) {
  const start = Date.now();
  while (Date.now() - start < DELIVERY_CAP_MS && !stopped()) {
    if (sink.events >= expected) return { complete: true, ms: Math.max(0, sink.lastAt - t0) };
    if (Date.now() - Math.max(sink.lastAt, start) > QUIET_MS) break;
    await sleep(50);
  }
  return { complete: sink.events >= expected, ms: Math.max(0, sink.lastAt - t0) };
}

/// The resident memory of a process, from /proc (Linux); null where that cannot be read.
function rssOf(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/// The browser's renderer processes (the scenario's page is the only page open).
async function rendererPids(browserCdp) {
  try {
    const { processInfo } = await browserCdp.send("SystemInfo.getProcessInfo");
    return processInfo.filter((p) => p.type === "renderer").map((p) => p.id);
  } catch {
    return [];
  }
}

class Stopped extends Error {}

/**
 * Runs one scenario on a fresh page in a fresh context. `body` writes its figures into `figures`
 * as it measures them, so a page that fails later keeps what was measured before. The page is
 * stopped (its context closed, which ends its renderer) when its renderer's resident memory
 * passes RENDERER_CAP_MB, when it crashes, or after SCENARIO_CAP_MS. Returns the figures, with
 * `<prefix>failure` (memory | crash | timeout | error), `<prefix>failure_detail` and
 * `<prefix>failure_after_ms` (from the first track() call, or from the page's opening) when it
 * failed, and `<prefix>renderer_peak_bytes`.
 */
async function scenario(bench, sdk, prefix, body) {
  const { browser, browserCdp, ua, pagesOrigin } = bench;
  const figures = {};
  const errors = [];
  const opened = Date.now();
  let loopAt = null;
  let why = null;
  let fail;
  const failure = new Promise((resolve) => (fail = resolve));
  const stop = (kind, detail) => {
    if (why) return;
    why = { kind, detail, at: Date.now() };
    fail(why);
  };
  const guard = (p) =>
    Promise.race([
      p,
      failure.then((w) => {
        throw new Stopped(w.detail);
      }),
    ]);
  let peak = null;
  let watching = true;
  const overrun = setTimeout(() => stop("timeout", `no end after ${SCENARIO_CAP_MS / 1000} s`), SCENARIO_CAP_MS);
  // The renderer's resident memory, every WATCH_MS; the process list is asked for each time (the
  // navigation to the page's origin swaps the renderer).
  const watch = (async () => {
    const cap = RENDERER_CAP_MB * 1024 * 1024;
    while (watching) {
      for (const pid of await rendererPids(browserCdp)) {
        const rss = rssOf(pid);
        if (rss === null) continue;
        peak = Math.max(peak ?? 0, rss);
        if (rss > cap && watching) stop("memory", `the renderer passed ${RENDERER_CAP_MB} MB`);
      }
      await sleep(WATCH_MS);
    }
  })();
  let context = null;
  try {
    context = await browser.newContext({ userAgent: ua });
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(String(e.message || e)));
    page.once("crash", () => stop("crash", "the page crashed"));
    const cdp = await guard(context.newCDPSession(page));
    await guard(cdp.send("Performance.enable"));
    sink.firstAt = null;
    await guard(page.goto(`${pagesOrigin}/${sdk}/index.html`, { waitUntil: "load", timeout: READY_TIMEOUT_MS }));
    await guard(
      page.waitForFunction(() => window.__marks.ready !== null && window.__bench, null, { timeout: READY_TIMEOUT_MS }),
    );
    // The page's first event, before anything else is measured: its request must not land in
    // the burst's counts.
    const firstWait = Date.now();
    while (sink.firstAt === null && Date.now() - firstWait < FIRST_WAIT_MS && !why) await sleep(20);
    await body({
      page,
      cdp,
      guard,
      figures,
      loopStarts: () => (loopAt = Date.now()),
      stopped: () => why !== null,
    });
  } catch (e) {
    // A crash can reject the pending call before the crash event arrives: give it a moment.
    if (!why && !(e instanceof Stopped)) await sleep(200);
    if (!why) stop("error", String(e.message || e).split("\n")[0]);
  } finally {
    clearTimeout(overrun);
    watching = false;
    await context?.close().catch(() => {});
    await watch;
  }
  if (why) {
    figures[`${prefix}failure`] = why.kind;
    figures[`${prefix}failure_detail`] = why.detail;
    figures[`${prefix}failure_after_ms`] = why.at - (loopAt ?? opened);
  }
  figures[`${prefix}renderer_peak_bytes`] = peak;
  figures.page_errors = errors.slice(0, 3);
  return figures;
}

const metric = async (cdp, name) =>
  (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === name)?.value ?? 0;

async function heap(cdp, page) {
  await cdp.send("HeapProfiler.collectGarbage");
  await sleep(100);
  await cdp.send("HeapProfiler.collectGarbage");
  return page.evaluate(() => performance.memory.usedJSHeapSize);
}

/** The track() loop, in the page: timed, its time also printed at once (LOOP_TAG). */
function trackLoop(page, n) {
  return page.evaluate(
    ([n, tag]) => {
      const props = window.__props;
      const s = performance.now();
      for (let i = 0; i < n; i++) window.__bench.track(props);
      const ms = performance.now() - s;
      console.debug(tag + ms);
      return ms;
    },
    [n, LOOP_TAG],
  );
}

/**
 * The page's marks (ms from navigation start) as figures: blocking (the bundle's evaluation
 * until the page's own code starts), the init call's own time, accepts calls, ready, and the
 * first event's arrival at the sink (the sink's clock minus the page's timeOrigin: one machine,
 * one wall clock).
 */
async function startFigures(page, guard, figures) {
  const m = await guard(page.evaluate(() => ({ ...window.__marks, origin: performance.timeOrigin })));
  // To the µs: the page's clock ticks in 0.1 ms, and differences of its readings carry float noise.
  const ms = (v) => Math.round(v * 1000) / 1000;
  figures.blocking_ms = ms(m.app - m.eval);
  figures.init_call_ms = ms(m.accepts - m.app);
  figures.accepts_ms = ms(m.accepts);
  figures.ready_ms = ms(m.ready);
  if (sink.firstAt !== null) figures.first_event_ms = ms(sink.firstAt - m.origin);
  else figures.first_event_note = `no event at the sink ${FIRST_WAIT_MS / 1000} s after ready`;
}

/** The start figures, track() cost, main thread, heap and wasm memory: a fresh page, 10,000 track() calls. */
function cpuRun(bench, sdk) {
  return scenario(bench, sdk, "cpu_", async ({ page, cdp, guard, figures, loopStarts, stopped }) => {
    await startFigures(page, guard, figures);
    await sleep(1500); // let init traffic (flags, settings, sessions) settle
    const heapBefore = await guard(heap(cdp, page));
    const wasmBefore = sdk === "segops" ? await guard(page.evaluate(() => window.__bench.wasmMemory())) : null;
    page.on("console", (m) => {
      const t = m.text();
      if (t.startsWith(LOOP_TAG)) figures.track_sync_us = (Number(t.slice(LOOP_TAG.length)) * 1000) / CPU_EVENTS;
    });
    await guard(page.evaluate(() => {
      window.__longtasks = 0;
      try {
        new PerformanceObserver((l) => {
          for (const e of l.getEntries()) window.__longtasks += e.duration;
        }).observe({ type: "longtask" });
      } catch {}
    }));
    sink.reset();
    const taskBefore = await guard(metric(cdp, "TaskDuration"));
    try {
      const t0 = Date.now();
      loopStarts();
      const syncMs = await guard(trackLoop(page, CPU_EVENTS));
      figures.track_sync_us = (syncMs * 1000) / CPU_EVENTS;
      const delivery = await guard(waitDelivery(CPU_EVENTS, t0, stopped));
      figures.cpu_delivery_ms = delivery.ms;
      const taskMs = ((await guard(metric(cdp, "TaskDuration"))) - taskBefore) * 1000;
      figures.track_main_thread_us = (taskMs * 1000) / CPU_EVENTS;
      figures.longtask_ms = await guard(page.evaluate(() => window.__longtasks));
      figures.heap_growth_bytes = (await guard(heap(cdp, page))) - heapBefore;
      if (sdk === "segops") {
        figures.wasm_memory_bytes = await guard(page.evaluate(() => window.__bench.wasmMemory()));
        figures.wasm_memory_growth_bytes = figures.wasm_memory_bytes - wasmBefore;
      }
    } finally {
      figures.cpu_delivered_events = sink.events;
    }
  });
}

/** Requests, bytes and events for 1,000 events: a fresh page, track() as fast as the page can call it. */
function netRun(bench, sdk) {
  return scenario(bench, sdk, "net_", async ({ page, guard, figures, loopStarts, stopped }) => {
    await sleep(1500);
    sink.reset();
    try {
      const t0 = Date.now();
      loopStarts();
      await guard(trackLoop(page, NET_EVENTS));
      const delivery = await guard(waitDelivery(NET_EVENTS, t0, stopped));
      figures.net_delivery_ms = delivery.ms;
    } finally {
      // What the sink received, also when the page failed (until then).
      Object.assign(figures, {
        net_requests: sink.requests,
        net_bytes: sink.bytes,
        net_events: sink.events,
        net_preflights: sink.preflights,
      });
    }
  });
}

/** SDKs not measured in this run, taken from an earlier results file (BENCH_MERGE). */
function merge(results) {
  if (!MERGE) return;
  const earlier = JSON.parse(fs.readFileSync(MERGE, "utf8"));
  const order = Object.keys(results.sdks);
  for (const [sdk, r] of Object.entries(earlier.sdks || {})) {
    if (results.sdks[sdk]) continue;
    results.sdks[sdk] = {
      ...r,
      pass: r.pass ?? { date: earlier.date ?? null, runs: earlier.runs ?? null, browser: earlier.browser ?? null },
    };
    order.push(sdk);
    log(sdk, "taken from", MERGE);
  }
  // Table order is fixed by xtask; keep the file tidy anyway.
  results.sdks = Object.fromEntries(ALL_SDKS.filter((s) => order.includes(s)).map((s) => [s, results.sdks[s]]));
}

async function main() {
  const sinkServer = await startSink();
  const pagesServer = await startPages();
  const sinkOrigin = `http://127.0.0.1:${sinkServer.address().port}`;
  const pagesOrigin = `http://127.0.0.1:${pagesServer.address().port}`;
  const files = await buildPages(sinkOrigin);
  const launch = async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      ignoreDefaultArgs: ["--enable-automation"],
      timeout: 30_000,
    });
    return { browser, browserCdp: await browser.newBrowserCDPSession() };
  };
  const results = {
    date: new Date().toISOString().slice(0, 10),
    events_cpu: CPU_EVENTS,
    events_net: NET_EVENTS,
    runs: RUNS,
    renderer_cap_mb: RENDERER_CAP_MB,
    sdks: {},
  };
  // The browser, its CDP session, the user agent and the pages' origin: what a scenario needs.
  let bench = { ...(await launch()), pagesOrigin };
  try {
    const probe = await bench.browser.newPage();
    bench.ua = (await probe.evaluate(() => navigator.userAgent)).replace("HeadlessChrome", "Chrome");
    results.renderer_watch = (await rendererPids(bench.browserCdp)).some((p) => rssOf(p) !== null);
    await probe.close();
    results.browser = bench.browser.version();
    if (!results.renderer_watch) log("cannot read renderer memory (/proc): no memory cap, no renderer peaks");
    for (const sdk of SDKS) results.sdks[sdk] = { files: files[sdk], runs: [] };
    for (let run = 1; run <= RUNS; run++) {
      for (const sdk of SDKS) {
        const one = { run, page_errors: [] };
        const errors = [];
        // Each scenario on its own page: one that fails leaves the other's figures.
        for (const [name, measure] of [["1k", netRun], ["10k", cpuRun]]) {
          if (!bench.browser.isConnected()) {
            log("the browser went away; starting a new one");
            bench = { ...bench, ...(await launch()) };
          }
          try {
            const r = await measure(bench, sdk);
            one.page_errors.push(...r.page_errors);
            Object.assign(one, { ...r, page_errors: one.page_errors });
          } catch (e) {
            errors.push(`${name} events: ${String(e.message || e).split("\n")[0]}`);
          }
        }
        if (errors.length) one.error = errors.join("; ");
        log(`run ${run} ${sdk}:`, JSON.stringify(one));
        results.sdks[sdk].runs.push(one);
      }
    }
  } finally {
    await bench.browser.close().catch(() => {});
    sinkServer.close();
    pagesServer.close();
  }
  markFetched(files);
  merge(results);
  fs.writeFileSync(OUT, JSON.stringify(results, null, 1) + "\n");
  log("wrote", OUT);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("[bench]", e);
    process.exit(1);
  },
);
