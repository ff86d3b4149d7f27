// Shared pieces of the consumer tests: fresh projects that install the packed @segops/sdk and
// the pinned npm tools they need (setup's NPM_TOOLS, from npm's cache, which setup's install of
// the tools folder fills), long-running servers, a static file server, headless Chromium, and
// the emulator's API.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM_FLAGS } from "../chromium-flags.mjs";

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the consumer tests through \`cargo xtask test consumers\``);
  return v;
}

export const api = env("SEGOPS_TEST_API_URL");
export const tarball = env("SEGOPS_PKG_TARBALL");
export const tools = join(env("SEGOPS_NODE_TOOLS"), "node_modules");

/** Runs a program; resolves to { code, stdout, stderr } (never rejects on a non-zero exit). */
export function run(program, args, { cwd, timeout = 120_000, env: extra } = {}) {
  return new Promise((resolve) => {
    execFile(
      program,
      args,
      { cwd, timeout, maxBuffer: 16 << 20, env: { ...process.env, ...extra } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr), signal: err && err.signal });
      },
    );
  });
}

/** An npm command with the flags every install here uses. */
export function npm(args, opts) {
  return run("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], opts);
}

/** `name@version` of a pinned npm tool, at the version installed in the tools folder. */
export function pinned(name) {
  const { version } = JSON.parse(readFileSync(join(tools, name, "package.json"), "utf8"));
  return `${name}@${version}`;
}

/**
 * A fresh project in a temp folder with `files` ({ "path": text }), the packed package
 * installed from its tarball and `deps`, pinned npm tools (names), installed as an app would
 * install them: from the registry through npm's cache, which setup filled (`--prefer-offline`
 * reads it without asking the registry). Returns { dir, remove }.
 */
export async function project(name, files = {}, { deps = [] } = {}) {
  const dir = await mkdtemp(join(tmpdir(), `segops-consumer-${name}-`));
  const all = { "package.json": JSON.stringify({ name: `consumer-${name}`, private: true }, null, 2), ...files };
  for (const [path, text] of Object.entries(all)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  const specs = [tarball, ...deps.map(pinned)];
  const installed = await npm(["install", "--prefer-offline", "--no-save", ...specs], { cwd: dir, timeout: 300_000 });
  if (installed.code !== 0) {
    throw new Error(`npm install of ${specs.join(" ")} failed (${installed.code}):\n${installed.stdout}${installed.stderr}`);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The files of `fixtures/<name>/`, for `project()`: { "relative/path": text }. */
export async function fixture(name) {
  const root = fileURLToPath(new URL(`./fixtures/${name}/`, import.meta.url));
  const files = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath ?? entry.path, entry.name);
    files[relative(root, path)] = await readFile(path, "utf8");
  }
  return files;
}

/** A pinned npm tool's script from the tools folder, such as `typescript/bin/tsc`. */
export function tool(path) {
  return join(tools, path);
}

export async function owner() {
  const r = await fetch(api + "/api/auth/login/", {
    method: "POST",
    body: JSON.stringify({ email: env("SEGOPS_TEST_OWNER_EMAIL"), password: env("SEGOPS_TEST_OWNER_PASSWORD") }),
  });
  if (r.status !== 200) throw new Error("owner login: " + r.status + " " + (await r.text()));
  return "Bearer " + (await r.json()).token;
}

/** A new public key for pages served from `origin`: { key, id } (events carry `key_id`). */
export async function publicKey(origin) {
  const r = await fetch(api + "/api/auth/api-keys/", {
    method: "POST",
    headers: { authorization: await owner() },
    body: JSON.stringify({ name: "consumer test", kind: "public", allowed_origins: [origin] }),
  });
  if (r.status !== 201) throw new Error("create key: " + r.status + " " + (await r.text()));
  const { key, id } = await r.json();
  return { key, id };
}

/** A public pk_ key for pages served from `origin`. */
export async function createPublicKey(origin) {
  return (await publicKey(origin)).key;
}

/** Every stored event for which `keep(event)` holds (GET /api/events/, all pages). */
export async function storedEvents(keep) {
  const auth = await owner();
  const found = [];
  let after = 0;
  for (;;) {
    const r = await fetch(`${api}/api/events/?limit=1000&after=${after}`, { headers: { authorization: auth } });
    if (r.status !== 200) throw new Error("GET /api/events/: " + r.status + " " + (await r.text()));
    const page = await r.json();
    if (page.events.length === 0) return found;
    for (const e of page.events) if (keep(e)) found.push(e);
    after = page.next_after;
  }
}

/**
 * The stored events for which `keep(event)` holds, once there are `count` of them, after a
 * further `settle` ms in which no more may arrive: "exactly once" means the count is right
 * and no message id repeats.
 */
export async function storedExactly(what, count, keep, { ms = 20_000, settle = 1_500 } = {}) {
  await until(`${count} stored ${what}`, async () => (await storedEvents(keep)).length >= count, ms);
  await new Promise((r) => setTimeout(r, settle));
  const stored = await storedEvents(keep);
  const ids = new Set(stored.map((e) => e.message_id));
  if (stored.length !== count || ids.size !== count) {
    throw new Error(`${what}: want ${count} stored events with distinct message ids, got ${stored.length} with ${ids.size} ids:\n` +
      stored.map((e) => `  ${e.event_type} ${e.message_id} ${JSON.stringify(e.properties)}`).join("\n"));
  }
  return stored;
}

/** Polls `fn` until it returns something truthy. */
export async function until(what, fn, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** A unique id for one test's events. */
export function runId(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".css": "text/css",
};

/**
 * Serves folders and pages on 127.0.0.1: `mounts` is { "/prefix/": folder }, `pages`
 * { "/path": text or { body, headers }, or a function that returns one } (HTML unless the
 * path's extension says otherwise),
 * `routes` { "/path": (req, res, log) => {} } for answers of the test's own (slow, failing).
 * Records every requested path and its status in `log` (routes log themselves).
 */
export async function serve({ mounts = {}, pages = {}, routes = {} }) {
  const log = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const done = (status, type, body, headers = {}) => {
      log.push({ path, status });
      res.writeHead(status, type ? { "content-type": type, ...headers } : headers);
      res.end(body);
    };
    // Chromium asks every site for one; a 404 would be a console error on every page.
    if (path === "/favicon.ico" && !routes[path]) return res.writeHead(204).end();
    if (routes[path]) return routes[path](req, res, log);
    const page = typeof pages[path] === "function" ? pages[path]() : pages[path];
    if (page !== undefined) {
      const { body, headers } = typeof page === "string" ? { body: page } : page;
      return done(200, TYPES[extname(path)] || TYPES[".html"], body, headers);
    }
    const prefix = Object.keys(mounts)
      .filter((p) => path.startsWith(p))
      .sort((a, b) => b.length - a.length)[0];
    if (prefix === undefined) return done(404);
    const root = normalize(mounts[prefix]);
    let file = normalize(join(root, path.slice(prefix.length)));
    if (file !== root && !file.startsWith(root + sep)) return done(403);
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      done(200, TYPES[extname(file)] || "application/octet-stream", await readFile(file));
    } catch {
      done(404);
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const close = () => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  };
  return { origin, log, close };
}

/** A TCP port free on 127.0.0.1 now, for a server whose origin a key must name before it starts. */
export async function freePort() {
  const s = createNetServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * Starts a long-running program (a server); its stdout and stderr go to `output()`. `stop()`
 * ends it (SIGTERM, then SIGKILL) and resolves when it has exited.
 */
export function start(program, args, { cwd, env: extra } = {}) {
  const child = spawn(program, args, { cwd, env: { ...process.env, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout.on("data", (d) => (text += d));
  child.stderr.on("data", (d) => (text += d));
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  return {
    output: () => text,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Headless Chromium from the system (never a downloaded browser). */
export async function launch() {
  const { chromium } = createRequire(tools + "/")("playwright-core");
  return chromium.launch({
    executablePath: env("SEGOPS_CHROMIUM"),
    args: CHROMIUM_FLAGS,
  });
}

/**
 * A new page (in `context`, a browser or a browser context) whose console lines and uncaught
 * errors are collected: `lines` ("type: text", "pageerror: message"), `errors` (console.error
 * and page errors only).
 */
export async function watchedPage(context) {
  const page = await context.newPage();
  const lines = [];
  const errors = [];
  page.on("console", (m) => {
    lines.push(`${m.type()}: ${m.text()}`);
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => {
    lines.push(`pageerror: ${e.message}`);
    errors.push(`pageerror: ${e.message}`);
  });
  // Chromium's "Failed to load resource" lines do not say which: these do.
  page.on("response", (r) => r.status() >= 400 && lines.push(`response: ${r.status()} ${r.url()}`));
  page.on("requestfailed", (r) => lines.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  return { page, lines, errors };
}

/**
 * Opens `url` in a new page, waits for `window.result` (set by the page's script) and returns
 * it; a page error, a console.error or a `window.failure` fails with the page's console output.
 */
export async function resultOf(browser, url, ms = 30_000) {
  const { page, lines: consoleLines, errors } = await watchedPage(browser);
  try {
    await page.goto(url);
    const handle = await page.waitForFunction(() => window.result || window.failure, null, { timeout: ms });
    const value = await handle.jsonValue();
    if (value && value.error) throw new Error(value.error);
    if (errors.length) throw new Error("errors on the page");
    return value;
  } catch (e) {
    e.message += "\npage console:\n  " + consoleLines.join("\n  ");
    throw e;
  } finally {
    await page.close();
  }
}

/**
 * An app's script that tracks with the key and ids from the page's URL: a client, four calls
 * made before the module is ready, `ready`, flush, then `window.result` (or `window.failure`).
 * `importLine` is how it gets the SDK.
 */
export const appScript = (importLine) => `${importLine}
(async () => {
  try {
    const params = new URLSearchParams(location.search);
    const client = new SegOpsClient({
      apiUrl: params.get("api"),
      apiKey: params.get("key"),
      getUser: () => ({ anonymousId: params.get("uid") }),
    });
    const before = { anonymousId: client.anonymousId, queued: client.stats().queued };
    for (let i = 0; i < 3; i++) client.track({ eventType: "consumer_browser", properties: { run: params.get("run"), i } });
    client.page({ name: "consumer" });
    before.waiting = client.stats().queued;
    await client.ready;
    await client.flush();
    window.result = { before, stats: client.stats(), anonymousId: client.anonymousId };
  } catch (e) {
    window.failure = { error: String((e && e.stack) || e) };
  }
})();
`;

/**
 * Loads `path` (a page running `appScript`) from `server` with a fresh key and ids; checks its
 * result, that it logged no error, and that its four events were stored, each once.
 */
export async function tracksFrom(browser, server, path) {
  const key = await createPublicKey(server.origin);
  const uid = runId("consumer-browser");
  const query = new URLSearchParams({ api, key, uid, run: uid });
  const result = await resultOf(browser, `${server.origin}${path}?${query}`);
  assert.deepEqual(result.before, { anonymousId: null, queued: 0, waiting: 4 }, "the calls wait for the module, which loads after construction");
  assert.match(result.anonymousId, /^[0-9a-f-]{36}$/, "the visitor's own anonymous id (localStorage)");
  assert.equal(result.stats.recorded, 4);
  assert.equal(result.stats.sent, 4, JSON.stringify(result.stats));
  assert.equal(result.stats.pending, 0);
  const stored = await storedExactly("events of the page", 4, (e) => e.anonymous_id === uid);
  assert.deepEqual(stored.map((e) => e.event_type).sort(), ["consumer_browser", "consumer_browser", "consumer_browser", "page_viewed"]);
  assert.equal(stored[0].context.library.name, "@segops/sdk");
  assert.ok(stored[0].context.userAgent, "sent from a browser");
  return stored;
}

/**
 * A page's module script (served as a file: a strict Content-Security-Policy allows no inline
 * script) that loads the SDK from `sdkUrl` and makes `n` calls (track, page and trackPageView in
 * turn, each with the `run`, `label` and index from the URL) right after construction, then sets
 * `window.called`: the page's own code after the calls. It then waits for `ready` (resolved, or
 * the error's name, code and message), flushes and sets `window.result`.
 */
export const probeScript = (sdkUrl) => `import { SegOpsClient } from ${JSON.stringify(sdkUrl)};
const params = new URLSearchParams(location.search);
const run = params.get("run");
const label = params.get("label");
const client = new SegOpsClient({
  apiUrl: params.get("api"),
  apiKey: params.get("key"),
  getUser: () => ({ anonymousId: params.get("uid") }),
});
for (let i = 0; i < Number(params.get("n")); i++) {
  const properties = { run, label, i };
  if (i % 5 === 2) client.page({ name: "probe", properties });
  else if (i % 5 === 3) client.trackPageView({ properties });
  else client.track({ eventType: "consumer_probe", properties });
}
window.called = { queued: client.stats().queued, anonymousId: client.anonymousId };
window.client = client; // for the test's own look at stats()
client.ready
  .then(
    () => "resolved",
    (e) => ({ name: e.name, code: e.code, message: e.message }),
  )
  .then(async (ready) => {
    await client.flush();
    // after a failed load, calls are still accepted (and dropped), without throwing
    if (ready !== "resolved") client.track({ eventType: "consumer_probe_late", properties: { run, label } });
    window.result = { ready, stats: client.stats() };
  })
  .catch((e) => (window.failure = { error: String((e && e.stack) || e) }));
`;

/** The page around `probeScript`, served as /probe.js. */
export const PROBE_PAGE = `<!doctype html><html><head><title>Probe shop</title></head>
<body><h1>Probe shop</h1><script type="module" src="/probe.js"></script></body></html>`;
