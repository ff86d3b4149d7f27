// The browser side of `cargo xtask bench`: bundles one "init + track" page per SDK with esbuild,
// serves them and a counting sink on loopback, drives headless Chromium with playwright-core and
// writes every run's figures as JSON. Run by xtask, which passes everything through the env:
//   BENCH_TOOLS_NODE_MODULES  node_modules holding esbuild and playwright-core
//   BENCH_SEGOPS_PKG          the assembled @segops/sdk package (pkg/)
//   BENCH_CHROMIUM            the Chromium executable
//   BENCH_OUT                 the JSON file to write
//   BENCH_RUNS                runs per SDK (default 3), interleaved
//   BENCH_SDKS                optional comma-separated subset
import { createRequire } from "node:module";
import { createServer } from "node:http";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

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
const PKG = env("BENCH_SEGOPS_PKG");
const CHROMIUM = env("BENCH_CHROMIUM");
const OUT = env("BENCH_OUT");
const RUNS = Math.max(1, Number(env("BENCH_RUNS", "3")) || 3);
const ALL_SDKS = ["segops", "posthog", "segment", "amplitude", "mixpanel", "snowplow"];
const SDKS = env("BENCH_SDKS", ALL_SDKS.join(",")).split(",").filter((s) => ALL_SDKS.includes(s));
const CPU_EVENTS = 10_000;
const NET_EVENTS = 1_000;
/// A name no SDK writes by itself: the sink counts events by its occurrences.
const EVENT = "bench_evt_q7";
/// Delivery waits end when the sink has every event, or after this long without a request.
const QUIET_MS = 6_500;
const DELIVERY_CAP_MS = 60_000;
const READY_TIMEOUT_MS = 20_000;

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

function startSink() {
  const server = createServer((reqst, res) => {
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
const WWW = path.join(HERE, "out", "www");

function startPages() {
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
  const server = createServer((reqst, res) => {
    const rel = decodeURIComponent(new URL(reqst.url, "http://x").pathname).replace(/^\/+/, "");
    const file = path.join(WWW, rel);
    if (!file.startsWith(WWW + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
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

function sizes(file) {
  const b = fs.readFileSync(file);
  return {
    name: path.basename(file),
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

async function buildPages(sinkOrigin) {
  fs.rmSync(WWW, { recursive: true, force: true });
  fs.mkdirSync(WWW, { recursive: true });
  const template = fs.readFileSync(path.join(HERE, "pages", "page.html"), "utf8");
  const files = {};
  for (const sdk of SDKS) {
    const out = path.join(WWW, `${sdk}.js`);
    await esbuild.build({
      entryPoints: [path.join(HERE, "pages", `${sdk}.js`)],
      outfile: out,
      bundle: true,
      minify: true,
      treeShaking: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      logLevel: "warning",
      define: {
        SINK: JSON.stringify(sinkOrigin),
        SINK_HOST: JSON.stringify(sinkOrigin.replace(/^http:\/\//, "")),
        EVENT: JSON.stringify(EVENT),
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
    fs.writeFileSync(path.join(WWW, `${sdk}.html`), template.replace("./SDK.js", `./${sdk}.js`));
    const list = [out];
    if (sdk === "segops") {
      // The glue fetches the .wasm next to the bundle (new URL("segops_sdk_bg.wasm", import.meta.url)).
      const wasm = path.join(WWW, "segops_sdk_bg.wasm");
      fs.copyFileSync(path.join(PKG, "web", "segops_sdk_bg.wasm"), wasm);
      list.unshift(wasm);
    }
    files[sdk] = list.map(sizes);
    log(sdk, "bundled:", files[sdk].map((f) => `${f.name} ${f.raw} B`).join(", "));
  }
  return files;
}

// ---------------------------------------------------------------- the browser
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--disable-dev-shm-usage",
  "--enable-precise-memory-info",
  "--disable-blink-features=AutomationControlled",
  // Every host name fails at once: nothing leaves the machine; the pages use 127.0.0.1 only.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

/// Waits until the sink has `expected` events, or nothing came for QUIET_MS since the later of
/// the last request and the end of the track() loop (now), or DELIVERY_CAP_MS passed.
async function waitDelivery(expected, t0) {
  const start = Date.now();
  while (Date.now() - start < DELIVERY_CAP_MS) {
    if (sink.events >= expected) return { complete: true, ms: Math.max(0, sink.lastAt - t0) };
    if (Date.now() - Math.max(sink.lastAt, start) > QUIET_MS) break;
    await sleep(50);
  }
  return { complete: sink.events >= expected, ms: Math.max(0, sink.lastAt - t0) };
}

async function openPage(browser, userAgent, pagesOrigin, sdk) {
  const context = await browser.newContext({ userAgent });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e.message || e)));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(`${pagesOrigin}/${sdk}.html`, { waitUntil: "load", timeout: READY_TIMEOUT_MS });
  await page.waitForFunction(() => window.__readyAt !== null && window.__bench, null, {
    timeout: READY_TIMEOUT_MS,
  });
  return { context, page, cdp, errors };
}

const metric = async (cdp, name) =>
  (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === name)?.value ?? 0;

async function heap(cdp, page) {
  await cdp.send("HeapProfiler.collectGarbage");
  await sleep(100);
  await cdp.send("HeapProfiler.collectGarbage");
  return page.evaluate(() => performance.memory.usedJSHeapSize);
}

/** Figures 2, 3, 5, 6: a fresh page, 10,000 track() calls. */
async function cpuRun(browser, ua, pagesOrigin, sdk) {
  const { context, page, cdp, errors } = await openPage(browser, ua, pagesOrigin, sdk);
  try {
    const readyMs = await page.evaluate(() => window.__readyAt);
    await sleep(1500); // let init traffic (flags, settings, sessions) settle
    const heapBefore = await heap(cdp, page);
    const wasmBefore = sdk === "segops" ? await page.evaluate(() => window.__bench.wasmMemory()) : null;
    sink.reset();
    const taskBefore = await metric(cdp, "TaskDuration");
    const t0 = Date.now();
    const syncMs = await page.evaluate((n) => {
      window.__longtasks = 0;
      try {
        new PerformanceObserver((l) => {
          for (const e of l.getEntries()) window.__longtasks += e.duration;
        }).observe({ type: "longtask" });
      } catch {}
      const props = { sku: "tee-42", price: 19.9, currency: "EUR", qty: 1 };
      const s = performance.now();
      for (let i = 0; i < n; i++) window.__bench.track(props);
      return performance.now() - s;
    }, CPU_EVENTS);
    const delivery = await waitDelivery(CPU_EVENTS, t0);
    const taskMs = ((await metric(cdp, "TaskDuration")) - taskBefore) * 1000;
    const longtaskMs = await page.evaluate(() => window.__longtasks);
    const heapAfter = await heap(cdp, page);
    const wasmAfter = sdk === "segops" ? await page.evaluate(() => window.__bench.wasmMemory()) : null;
    return {
      ready_ms: readyMs,
      track_sync_us: (syncMs * 1000) / CPU_EVENTS,
      track_main_thread_us: (taskMs * 1000) / CPU_EVENTS,
      longtask_ms: longtaskMs,
      cpu_delivered_events: sink.events,
      cpu_delivery_ms: delivery.ms,
      heap_growth_bytes: heapAfter - heapBefore,
      wasm_memory_bytes: wasmAfter,
      wasm_memory_growth_bytes: wasmAfter === null ? null : wasmAfter - wasmBefore,
      page_errors: errors.slice(0, 3),
    };
  } finally {
    await context.close();
  }
}

/** Figure 4: a fresh page, 1,000 track() calls as fast as the page can make them. */
async function netRun(browser, ua, pagesOrigin, sdk) {
  const { context, page, errors } = await openPage(browser, ua, pagesOrigin, sdk);
  try {
    await sleep(1500);
    sink.reset();
    const t0 = Date.now();
    await page.evaluate((n) => {
      const props = { sku: "tee-42", price: 19.9, currency: "EUR", qty: 1 };
      for (let i = 0; i < n; i++) window.__bench.track(props);
    }, NET_EVENTS);
    const delivery = await waitDelivery(NET_EVENTS, t0);
    return {
      net_requests: sink.requests,
      net_bytes: sink.bytes,
      net_events: sink.events,
      net_preflights: sink.preflights,
      net_delivery_ms: delivery.ms,
      page_errors: errors.slice(0, 3),
    };
  } finally {
    await context.close();
  }
}

async function main() {
  const sinkServer = await startSink();
  const pagesServer = await startPages();
  const sinkOrigin = `http://127.0.0.1:${sinkServer.address().port}`;
  const pagesOrigin = `http://127.0.0.1:${pagesServer.address().port}`;
  const files = await buildPages(sinkOrigin);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    ignoreDefaultArgs: ["--enable-automation"],
    timeout: 30_000,
  });
  const results = { events_cpu: CPU_EVENTS, events_net: NET_EVENTS, runs: RUNS, sdks: {} };
  try {
    const probe = await browser.newPage();
    const ua = (await probe.evaluate(() => navigator.userAgent)).replace("HeadlessChrome", "Chrome");
    await probe.close();
    results.browser = browser.version();
    for (const sdk of SDKS) results.sdks[sdk] = { files: files[sdk], runs: [] };
    for (let run = 1; run <= RUNS; run++) {
      for (const sdk of SDKS) {
        const one = { run, page_errors: [] };
        const errors = [];
        // Each scenario on its own: one that fails (a crashed page) leaves the other's figures.
        for (const [name, scenario] of [["1k", netRun], ["10k", cpuRun]]) {
          try {
            const r = await scenario(browser, ua, pagesOrigin, sdk);
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
    await browser.close().catch(() => {});
    sinkServer.close();
    pagesServer.close();
  }
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
