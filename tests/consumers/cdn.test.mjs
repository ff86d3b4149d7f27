// The CDN build of the packed package, as a page without a bundler uses it: the inline snippet
// (cdn/snippet.js, with the page's config in place of the README's) defines `window.segops`,
// which records the page's calls until `<script async src=".../cdn/segops.js">` arrives; the
// script then replaces it with a real client made from the snippet's config and hands it the
// recorded calls. Served from the unpacked package's cdn/ folder, the script held back a second
// so that the calls come first: each is delivered exactly once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { api, launch, project, publicKey, runId, serve, storedExactly, watchedPage } from "./support.mjs";

let app, pkg, browser;
before(async () => {
  app = await project("cdn");
  pkg = join(app.dir, "node_modules", "@segops", "sdk");
  browser = await launch();
}, { timeout: 120_000 });
after(async () => {
  if (browser) await browser.close();
  if (app) await app.remove();
});

/** The package's snippet with `config` (JavaScript source) in place of the example config. */
async function snippetWith(config) {
  const snippet = (await readFile(join(pkg, "cdn", "snippet.js"), "utf8")).trimEnd();
  const at = snippet.lastIndexOf("}({");
  assert.ok(at > 0 && snippet.endsWith("});"), "the snippet ends with its config: }({...});");
  return snippet.slice(0, at + 2) + config + ");";
}

test("calls made through the snippet's window.segops before cdn/segops.js arrives are delivered once each", { timeout: 60_000 }, async () => {
  const SCRIPT = "/sdk/cdn/segops.js";
  const script = await readFile(join(pkg, "cdn", "segops.js"));
  const run = runId("consumer-cdn");
  let page = "";
  const server = await serve({
    mounts: { "/sdk/": pkg },
    pages: { "/": () => page },
    routes: {
      // held back, so that the page's calls are all made before it runs
      [SCRIPT]: (req, res, log) =>
        setTimeout(() => {
          log.push({ path: SCRIPT, status: 200 });
          res.writeHead(200, { "content-type": "text/javascript" }).end(script);
        }, 1_000),
    },
  });
  const context = await browser.newContext();
  try {
    const { key } = await publicKey(server.origin);
    const config = `{apiUrl:${JSON.stringify(api)},apiKey:${JSON.stringify(key)},getUser:function(){return{anonymousId:${JSON.stringify(run)}}}}`;
    page = `<!doctype html><html><head><title>CDN shop</title>
<script>${await snippetWith(config)}</script>
<script async src="${SCRIPT}"></script>
</head><body><h1>CDN shop</h1>
<script>
  var run = ${JSON.stringify(run)};
  window.early = { sdk: typeof window.SegOps, methods: Object.keys(window.segops).filter(function (k) { return typeof window.segops[k] === "function"; }).sort() };
  segops.track({ eventType: "consumer_cdn", properties: { run: run, i: 0 } });
  segops.track({ eventType: "consumer_cdn", properties: { run: run, i: 1 } });
  segops.identify({ userId: run + "-user", traits: { run: run } });
  segops.page({ name: "cdn", properties: { run: run, i: 2 } });
  segops.trackPageView({ properties: { run: run, i: 3 } });
  segops.flush().then(function () { window.flushed = { sdk: typeof window.SegOps }; });
</script></body></html>`;
    const { page: tab, errors, lines } = await watchedPage(context);
    await tab.goto(server.origin + "/");
    const early = await tab.evaluate(() => window.early);
    assert.equal(early.sdk, "undefined", "the calls were made before the script ran");
    assert.deepEqual(early.methods, ["flush", "identify", "optIn", "optOut", "page", "setConsent", "shutdown", "track", "trackPageView"]);
    const flushed = await (await tab.waitForFunction(() => window.flushed, null, { timeout: 20_000 })).jsonValue();
    assert.equal(flushed.sdk, "object", "flush() on the snippet resolved once the SDK had delivered");
    // window.segops is the real client now; a call made to it is delivered too.
    const after = await tab.evaluate(async (run) => {
      const real = window.segops instanceof window.SegOps.SegOpsClient;
      await window.segops.ready;
      window.segops.track({ eventType: "consumer_cdn_late", properties: { run, i: 4 } });
      await window.segops.flush();
      return { real, stats: window.segops.stats() };
    }, run);
    assert.equal(after.real, true);
    assert.equal(after.stats.sent, 6, JSON.stringify(after.stats));
    assert.deepEqual(errors, [], lines.join("\n"));
  } finally {
    await context.close();
    await server.close();
  }
  const stored = await storedExactly("CDN page events", 6, (e) => e.anonymous_id === run || e.user_id === run + "-user");
  assert.deepEqual(
    stored.map((e) => e.event_type).sort(),
    ["consumer_cdn", "consumer_cdn", "consumer_cdn_late", "identify", "page_viewed", "page_viewed"],
  );
  const wasm = server.log.filter((r) => r.path.endsWith(".wasm"));
  assert.deepEqual(wasm, [{ path: "/sdk/cdn/segops_sdk_bg.wasm", status: 200 }], "the .wasm from next to the script, once");
});
