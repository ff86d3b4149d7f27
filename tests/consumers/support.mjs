// Shared pieces of the consumer tests: fresh projects that install the packed @segops/sdk, the
// pinned npm tools (TypeScript, Vite, playwright-core) from the tools folder, a static file
// server, headless Chromium, and the emulator's API.
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, sep } from "node:path";
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

/**
 * A fresh project in a temp folder with `files` ({ "path": text }) and the packed package
 * installed from its tarball (offline: it has no dependencies). Returns { dir, remove }.
 */
export async function project(name, files = {}) {
  const dir = await mkdtemp(join(tmpdir(), `segops-consumer-${name}-`));
  const all = { "package.json": JSON.stringify({ name: `consumer-${name}`, private: true }, null, 2), ...files };
  for (const [path, text] of Object.entries(all)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  const installed = await npm(["install", "--offline", "--no-save", tarball], { cwd: dir });
  if (installed.code !== 0) {
    throw new Error(`npm install of the tarball failed (${installed.code}):\n${installed.stdout}${installed.stderr}`);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
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

/** A public pk_ key for pages served from `origin`. */
export async function createPublicKey(origin) {
  const r = await fetch(api + "/api/auth/api-keys/", {
    method: "POST",
    headers: { authorization: await owner() },
    body: JSON.stringify({ name: "consumer test", kind: "public", allowed_origins: [origin] }),
  });
  if (r.status !== 201) throw new Error("create key: " + r.status + " " + (await r.text()));
  return (await r.json()).key;
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
 * { "/path": html }. Records every requested path and its status in `log`.
 */
export async function serve({ mounts = {}, pages = {} }) {
  const log = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const done = (status, type, body) => {
      log.push({ path, status });
      res.writeHead(status, type ? { "content-type": type } : {});
      res.end(body);
    };
    if (pages[path] !== undefined) return done(200, TYPES[".html"], pages[path]);
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
  return { origin, log, close: () => new Promise((r) => server.close(r)) };
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
 * Opens `url` in a new page, waits for `window.result` (set by the page's script) and returns
 * it; a page error or a `window.failure` fails with the page's console output.
 */
export async function resultOf(browser, url, ms = 30_000) {
  const page = await browser.newPage();
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  try {
    await page.goto(url);
    const handle = await page.waitForFunction(() => window.result || window.failure, null, { timeout: ms });
    const value = await handle.jsonValue();
    if (value && value.error) throw new Error(value.error);
    return value;
  } catch (e) {
    e.message += "\npage console:\n  " + consoleLines.join("\n  ");
    throw e;
  } finally {
    await page.close();
  }
}
