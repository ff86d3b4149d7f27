// The loader of the packed package's browser entry, end to end in Chromium (issue 13): calls made
// right after construction, before the .wasm is there, are delivered exactly once; calls on a
// page left before its .wasm arrived are delivered by the next page load, exactly once; and a
// .wasm that never comes (404, connection dropped) throws nothing into the page, which keeps
// running.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { api, launch, probeScript, project, PROBE_PAGE, publicKey, runId, serve, storedExactly, storedEvents, until, watchedPage } from "./support.mjs";

const WASM = "/sdk/web/segops_sdk_bg.wasm";

let app, server, browser, key, wasmBytes;
// How the next request for the .wasm is answered: "normal", "slow" (after SLOW_MS), "404" or
// "abort" (the connection is dropped).
let wasmMode = "normal";
const SLOW_MS = 3_000;

before(async () => {
  app = await project("loader");
  const pkg = join(app.dir, "node_modules", "@segops", "sdk");
  wasmBytes = await readFile(join(pkg, "web", "segops_sdk_bg.wasm"));
  server = await serve({
    mounts: { "/sdk/": pkg },
    pages: { "/": PROBE_PAGE, "/probe.js": probeScript("/sdk/web/index.js") },
    routes: {
      [WASM]: (req, res, log) => {
        const mode = wasmMode;
        log.push({ path: WASM, status: mode });
        if (mode === "404") return res.writeHead(404).end();
        if (mode === "abort") return req.socket.destroy();
        const send = () => res.writeHead(200, { "content-type": "application/wasm" }).end(wasmBytes);
        if (mode === "slow") setTimeout(send, SLOW_MS);
        else send();
      },
    },
  });
  ({ key } = await publicKey(server.origin));
  browser = await launch();
}, { timeout: 120_000 });
after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
  if (app) await app.remove();
});

/** The probe page's URL for `n` calls tagged `run` and `label`. */
const probeUrl = (run, label, n) => `${server.origin}/?${new URLSearchParams({ api, key, uid: run, run, label, n: String(n) })}`;

/** Waits for the probe's `window.result`; fails with the page's console on `window.failure`. */
async function resultOn(page, lines) {
  const handle = await page.waitForFunction(() => window.result || window.failure, null, { timeout: 30_000 });
  const value = await handle.jsonValue();
  assert.ok(!value.error, value.error + "\n" + lines.join("\n"));
  return value;
}

const ofRun = (run) => (e) => e.properties && e.properties.run === run;

test("five calls made right after construction are delivered, each exactly once", { timeout: 60_000 }, async () => {
  wasmMode = "normal";
  const run = runId("consumer-loader-five");
  const context = await browser.newContext();
  try {
    const { page, errors, lines } = await watchedPage(context);
    await page.goto(probeUrl(run, "five", 5));
    const called = await page.evaluate(() => window.called);
    assert.deepEqual(called, { queued: 5, anonymousId: null }, "the five calls wait for the module");
    const result = await resultOn(page, lines);
    assert.equal(result.ready, "resolved");
    assert.equal(result.stats.sent, 5, JSON.stringify(result.stats));
    assert.deepEqual(errors, [], lines.join("\n"));
  } finally {
    await context.close();
  }
  const stored = await storedExactly("five calls", 5, ofRun(run));
  assert.deepEqual(stored.map((e) => e.properties.i).sort(), [0, 1, 2, 3, 4]);
  assert.deepEqual(stored.map((e) => e.event_type).sort(), ["consumer_probe", "consumer_probe", "consumer_probe", "page_viewed", "page_viewed"]);
});

test("calls on a page left before its .wasm arrived are delivered by the next page load, exactly once", { timeout: 60_000 }, async () => {
  const run = runId("consumer-loader-left");
  const context = await browser.newContext();
  let restored;
  try {
    const { page, errors, lines } = await watchedPage(context);
    wasmMode = "slow";
    const asked = server.log.length;
    await page.goto(probeUrl(run, "left", 4));
    await page.waitForFunction(() => window.called);
    const first = await page.evaluate(() => ({ called: window.called, result: window.result || null }));
    assert.deepEqual(first, { called: { queued: 4, anonymousId: null }, result: null });
    await until("the page's request for the .wasm", () => server.log.slice(asked).some((r) => r.path === WASM), 10_000);
    // Leave before the .wasm arrives; the next page gets it at once.
    wasmMode = "normal";
    await page.goto(probeUrl(run, "next", 2));
    const result = await resultOn(page, lines);
    assert.equal(result.ready, "resolved");
    // The saved calls are taken up after `ready` (under a lock shared with other tabs), so the
    // probe's flush() may not cover them: wait for the client to have sent all six.
    const stats = await (await page.waitForFunction(() => window.client.stats().sent >= 6 && window.client.stats(), null, { timeout: 15_000 })).jsonValue();
    assert.equal(stats.sent, 6, JSON.stringify(stats));
    restored = stats.restored;
    const saved = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("segops.pending.")));
    assert.deepEqual(saved, [], "nothing is left saved");
    assert.deepEqual(errors, [], lines.join("\n"));
  } finally {
    await context.close();
  }
  const stored = await storedExactly("calls of both pages", 6, ofRun(run));
  assert.deepEqual(
    stored.map((e) => `${e.properties.label} ${e.properties.i}`).sort(),
    ["left 0", "left 1", "left 2", "left 3", "next 0", "next 1"],
  );
  // each with the page it was made on, recorded at the call
  for (const e of stored) assert.equal(new URL(e.context.page.url).searchParams.get("label"), e.properties.label, JSON.stringify(e.context.page));
  assert.equal(restored, 4, "stats().restored counts the four calls the next page took up");
});

for (const mode of ["404", "abort"]) {
  test(`a .wasm that never comes (${mode === "404" ? "404" : "connection dropped"}) throws nothing into the page`, { timeout: 60_000 }, async () => {
    wasmMode = mode;
    const run = runId(`consumer-loader-${mode}`);
    const context = await browser.newContext();
    try {
      const { page, errors, lines } = await watchedPage(context);
      await page.goto(probeUrl(run, mode, 5));
      const result = await resultOn(page, lines);
      assert.ok(await page.evaluate(() => window.called), "the page's code after the calls ran");
      assert.equal(result.ready.name, "SegOpsError");
      assert.equal(result.ready.code, "module_unavailable");
      assert.ok(!lines.some((l) => l.startsWith("pageerror")), lines.join("\n"));
      // One line from the SDK (Chromium adds its own "Failed to load resource" for the 404).
      const fromSdk = errors.filter((e) => e.startsWith("SegOps"));
      assert.equal(fromSdk.length, 1, lines.join("\n"));
      assert.equal(fromSdk[0], result.ready.message);
      assert.ok(errors.every((e) => e.startsWith("SegOps") || /^Failed to load resource/.test(e)), lines.join("\n"));
      assert.equal(result.stats.sent, 0);
      assert.equal(result.stats.requests, 0);
    } finally {
      await context.close();
      wasmMode = "normal";
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await storedEvents(ofRun(run)), []);
  });
}
