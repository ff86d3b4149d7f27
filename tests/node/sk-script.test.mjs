// The Node build used from a plain script with a secret key (no wasm-bindgen-test): events are
// delivered, and the process exits by itself right after shutdown() resolves, because the
// SDK's timers never keep Node alive.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const api = process.env.SEGOPS_TEST_API_URL;
const pkg = process.env.SEGOPS_PKG_NODE;
if (!api || !pkg) throw new Error("run through `cargo xtask test` (SEGOPS_TEST_API_URL, SEGOPS_PKG_NODE)");

async function storedFor(run) {
  const login = await fetch(api + "/api/auth/login/", {
    method: "POST",
    body: JSON.stringify({ email: process.env.SEGOPS_TEST_OWNER_EMAIL, password: process.env.SEGOPS_TEST_OWNER_PASSWORD }),
  }).then((r) => r.json());
  const found = [];
  let after = 0;
  for (;;) {
    const page = await fetch(`${api}/api/events/?limit=1000&after=${after}`, {
      headers: { authorization: "Bearer " + login.token },
    }).then((r) => r.json());
    if (page.events.length === 0) return found;
    for (const e of page.events) if (e.properties && e.properties.run === run) found.push(e);
    after = page.next_after;
  }
}

test("a script tracks, shuts down and exits by itself in under a second", async () => {
  const run = "node-script-" + Math.random();
  const script = fileURLToPath(new URL("./fixtures/track-and-exit.cjs", import.meta.url));
  const child = spawn(process.execPath, [script, run], { env: process.env, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const exited = await new Promise((resolve) => child.on("exit", (code) => resolve({ code, at: Date.now() })));
  assert.equal(exited.code, 0);
  const report = JSON.parse(out.trim());
  const lag = exited.at - report.shutdownAt;
  assert.ok(lag < 1000, `exited ${lag} ms after shutdown() resolved`);
  assert.equal(report.stats.sent, 25);
  assert.equal(report.stats.pending, 0);
  const stored = await storedFor(run);
  assert.equal(stored.length, 25);
  assert.equal(new Set(stored.map((e) => e.message_id)).size, 25);
  assert.ok(stored.every((e) => e.user_id === "server-user"));
  assert.equal(stored[0].context.library.name, "@segops/sdk");
  assert.equal(stored[0].context.runtime.name, "node");
});

test("importing the package in Node touches no browser global and a bad config throws a typed error", () => {
  const { SegOpsClient } = require(pkg + "/index.cjs");
  assert.equal(typeof globalThis.window, "undefined");
  assert.throws(
    () => new SegOpsClient({ apiUrl: api, apiKey: "sk_x", flushAt: -1 }),
    (e) => e.name === "SegOpsError" && e.code === "invalid_config" && e.field === "flushAt",
  );
  assert.throws(
    () => new SegOpsClient({ apiUrl: api, apiKey: "mk_live_x" }),
    (e) => e.code === "mcp_key_not_allowed",
  );
});
