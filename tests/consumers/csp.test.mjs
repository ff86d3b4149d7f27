// The packed package's browser entry under a Content-Security-Policy. With 'wasm-unsafe-eval' in
// script-src (what the README asks for) the page delivers its events. Without it the module
// cannot be compiled: the SDK says so in exactly one console.error naming the fix, `ready`
// rejects with module_unavailable, and the page's own code after its SDK calls still runs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { api, appScript, launch, probeScript, project, PROBE_PAGE, publicKey, runId, serve, storedEvents, tracksFrom, watchedPage } from "./support.mjs";

let app, pkg, browser;
before(async () => {
  app = await project("csp");
  pkg = join(app.dir, "node_modules", "@segops", "sdk");
  browser = await launch();
}, { timeout: 120_000 });
after(async () => {
  if (browser) await browser.close();
  if (app) await app.remove();
});

/** A server whose pages are sent with `policy`; scripts are files (no inline script is allowed). */
const serveWithPolicy = (policy) => {
  const headers = { "content-security-policy": policy };
  return serve({
    mounts: { "/sdk/": pkg },
    pages: {
      "/": { body: PROBE_PAGE, headers },
      "/probe.js": { body: probeScript("/sdk/web/index.js"), headers },
      "/shop": { body: `<!doctype html><html><head><title>Strict shop</title></head><body><script type="module" src="/app.js"></script></body></html>`, headers },
      "/app.js": { body: appScript(`import { SegOpsClient } from "/sdk/web/index.js";`), headers },
    },
  });
};

test("script-src 'self' 'wasm-unsafe-eval': the page delivers its events", { timeout: 60_000 }, async () => {
  const server = await serveWithPolicy("script-src 'self' 'wasm-unsafe-eval'");
  try {
    await tracksFrom(browser, server, "/shop");
  } finally {
    await server.close();
  }
});

test("script-src 'self' without 'wasm-unsafe-eval': one console.error, ready rejects, the page runs on", { timeout: 60_000 }, async () => {
  const server = await serveWithPolicy("script-src 'self'");
  const run = runId("consumer-csp");
  const context = await browser.newContext();
  try {
    const { key } = await publicKey(server.origin);
    const { page, errors, lines } = await watchedPage(context);
    await page.goto(`${server.origin}/?${new URLSearchParams({ api, key, uid: run, run, label: "csp", n: "5" })}`);
    const result = await (await page.waitForFunction(() => window.result || window.failure, null, { timeout: 30_000 })).jsonValue();
    assert.ok(!result.error, result.error + "\n" + lines.join("\n"));
    assert.ok(await page.evaluate(() => window.called), "the page's code after the SDK calls ran");
    assert.equal(result.ready.name, "SegOpsError");
    assert.equal(result.ready.code, "module_unavailable");
    assert.ok(!lines.some((l) => l.startsWith("pageerror")), "nothing thrown into the page:\n" + lines.join("\n"));
    const fromSdk = errors.filter((e) => e.startsWith("SegOps"));
    assert.equal(fromSdk.length, 1, "exactly one console.error from the SDK:\n" + lines.join("\n"));
    assert.match(fromSdk[0], /Content-Security-Policy/);
    assert.match(fromSdk[0], /'wasm-unsafe-eval'/);
    assert.equal(fromSdk[0], result.ready.message);
    // Chromium reports the violation itself too; nothing else may be logged as an error.
    const others = errors.filter((e) => !e.startsWith("SegOps"));
    assert.ok(others.every((e) => /Content Security Policy/i.test(e)), lines.join("\n"));
    assert.deepEqual({ sent: result.stats.sent, requests: result.stats.requests }, { sent: 0, requests: 0 });
  } finally {
    await context.close();
    await server.close();
  }
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await storedEvents((e) => e.properties && e.properties.run === run), []);
});
