// Shared pieces of the end-to-end tests: a static server for test pages and the web build, and
// the emulator's API. The browsers are in engines.mjs.
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { readFile } from "node:fs/promises";
import { join, extname, normalize } from "node:path";
import { withRecorder } from "./engines.mjs";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the end-to-end tests through \`cargo xtask test\``);
  return v;
};

export const api = env("SEGOPS_TEST_API_URL");
const webPkg = env("SEGOPS_PKG_WEB");

const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html; charset=utf-8", ".json": "application/json" };

// A throwaway self-signed certificate for `hosts` (the browsers ignore certificate errors).
// Needed for hosts on the HSTS preload list, such as chatgpt.com, which browsers only ever load
// over https.
function selfSigned(hosts) {
  const dir = mkdtempSync(join(tmpdir(), "segops-e2e-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=segops-e2e",
    "-addext", "subjectAltName=" + hosts.map((h) => "DNS:" + h).join(","),
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ], { stdio: "ignore" });
  return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
}

// Serves `pages` ({ "host/path": html }) and the web build under /pkg/ on one loopback port;
// the host is told apart by the Host header (the browser maps every test host to 127.0.0.1).
// With `tls: [hosts]`, over https with a certificate for those hosts. A page is HTML (a string,
// or a function returning one), served with engines.mjs's RECORDER put in, or a file of any
// other type as { type, body }. Every host also has /e2e-away.html, the page
// restoreFromBfcache goes to. Nothing is sent with Cache-Control: no-store (which would keep
// pages out of the back/forward cache).
export async function servePages(pages, { tls } = {}) {
  const handler = async (req, res) => {
    const host = (req.headers.host || "").split(":")[0];
    const path = new URL(req.url, "http://x").pathname;
    if (path.startsWith("/pkg/")) {
      const file = normalize(join(webPkg, path.slice(5)));
      if (!file.startsWith(normalize(webPkg))) return res.writeHead(403).end();
      try {
        const body = await readFile(file);
        res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" });
        return res.end(body);
      } catch {
        return res.writeHead(404).end();
      }
    }
    const page = path === "/e2e-away.html" ? AWAY : pages[host + path];
    if (path === "/beacon") console.log("BEACON", new URL(req.url, "http://x").search);
    if (page === undefined) return res.writeHead(404).end("no page " + host + path);
    if (typeof page === "object") {
      res.writeHead(200, { "content-type": page.type });
      return res.end(page.body);
    }
    res.writeHead(200, { "content-type": TYPES[".html"] });
    res.end(withRecorder(typeof page === "function" ? page() : page));
  };
  const server = tls ? createTlsServer(selfSigned(tls), handler) : createServer(handler);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

const AWAY = "<!doctype html><title>Away</title><p>Another page of the same origin.</p>";

// The emulator with 8-second session tokens (\`--session-ttl 8\`).
export const shortApi = env("SEGOPS_TEST_SHORT_API_URL");

export async function owner(base = api) {
  const r = await fetch(base + "/api/auth/login/", {
    method: "POST",
    body: JSON.stringify({ email: env("SEGOPS_TEST_OWNER_EMAIL"), password: env("SEGOPS_TEST_OWNER_PASSWORD") }),
  });
  return "Bearer " + (await r.json()).token;
}

export async function createPublicKey(origins, base = api) {
  const r = await fetch(base + "/api/auth/api-keys/", {
    method: "POST",
    headers: { authorization: await owner(base) },
    body: JSON.stringify({ name: "e2e", kind: "public", allowed_origins: origins }),
  });
  if (r.status !== 201) throw new Error("create key: " + r.status + " " + (await r.text()));
  return (await r.json()).key;
}

export async function dev(method, path, body) {
  const r = await fetch(api + path, {
    method,
    headers: { authorization: await owner() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

// Stored events whose anonymous id is `uid` (on the emulator at `base`).
export function eventsOf(uid, base = api) {
  return storedEvents((e) => e.anonymous_id === uid, base);
}

// Stored events for which `keep(event)` is true.
export async function storedEvents(keep, base = api) {
  const auth = await owner(base);
  const found = [];
  let after = 0;
  for (;;) {
    const page = await fetch(`${base}/api/events/?limit=1000&after=${after}`, { headers: { authorization: auth } }).then((r) => r.json());
    if (page.events.length === 0) return found;
    for (const e of page.events) if (keep(e)) found.push(e);
    after = page.next_after;
  }
}

export async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A page that loads the SDK's web build with a public key and runs `body` (JS, with `client`
// and `params` in scope) after construction; `base` is the emulator's URL.
export function sdkPage(apiKey, body, base = api) {
  return `<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>
<script type="module">
import { SegOpsClient } from "/pkg/index.js";
const params = new URLSearchParams(location.search);
const client = new SegOpsClient({ apiUrl: ${JSON.stringify(base)}, apiKey: ${JSON.stringify(apiKey)},
  getUser: () => ({ anonymousId: params.get("uid") }) });
window.client = client;
${body}
window.ready = true;
</script></body></html>`;
}
