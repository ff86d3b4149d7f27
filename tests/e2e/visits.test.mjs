// Visits on the built package, in every engine.
// - A visit from ChatGPT (a real navigation from a page served as chatgpt.com), then a reload,
//   two route changes of a single-page app and a second tab: one ai_referral_session, one
//   session_id on every event, the visit's attribution on every event. Then reset() in the
//   second tab: a new anonymous id and a new visit; what was recorded before it, the logout
//   event of the same tick included, is stored under the old identity.
// - autoPageViews: page views on pushState, replaceState and popstate when the path changes;
//   none for a query-only or hash-only change, or a second push of the same path.
// chatgpt.com is served over https where the engine has it on its HSTS preload list
// (Chromium, Firefox), over http in WebKit (see referral.test.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, servePages, createPublicKey, storedEvents, until } from "./harness.mjs";
import { ENGINES, launch } from "./engines.mjs";

// A page of a single-page app: a client created at load (the SDK's own anonymous id, no
// getUser), `window.go(path)` for a route change.
const appPage = (apiKey, { auto = false } = {}) => `<!doctype html><title>Shop</title><h1>Shop</h1>
<script type="module">
import { SegOpsClient } from "/pkg/index.js";
const client = new SegOpsClient({ apiUrl: ${JSON.stringify(api)}, apiKey: ${JSON.stringify(apiKey)}, autoPageViews: ${auto} });
window.client = client;
${auto ? "" : "client.trackPageView();"}
window.go = async (path) => {
  history.pushState(null, "", path);
  ${auto ? "" : "client.trackPageView();"}
  await client.flush();
};
await client.ready;
await client.flush();
window.ready = true;
</script>`;

const ids = (page) => page.evaluate(() => ({ anon: window.client.anonymousId, visit: window.client.sessionId }));

for (const engine of ENGINES) {
  test(`a visit from ChatGPT across a reload, route changes and a second tab, then reset() (${engine})`, { timeout: 180000 }, async () => {
    const campaign = `visit-${engine}-` + Math.random().toString(36).slice(2);
    const pages = {};
    const scheme = engine === "webkit" ? "http" : "https";
    const server = await servePages(pages, { tls: scheme === "https" ? ["chatgpt.com", "shop.test"] : undefined });
    const shop = `${scheme}://shop.test:${server.port}`;
    const chatgpt = `${scheme}://chatgpt.com:${server.port}/`;
    const landing = `${shop}/app.html?utm_campaign=${campaign}`;
    pages["chatgpt.com/"] = `<!doctype html><title>ChatGPT</title><a id="go" href="${landing}">a shop</a>`;
    pages["shop.test/app.html"] = appPage(await createPublicKey([shop]));
    let browser = null;
    try {
      browser = await launch(engine, { hosts: ["chatgpt.com", "shop.test"] });
      const tab = await browser.newPage();
      await tab.goto(chatgpt);
      await tab.click("#go");
      await tab.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
      const first = await ids(tab);
      assert.match(first.visit, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "a UUIDv7");

      // A reload keeps document.referrer (chatgpt.com) and the landing URL.
      await tab.reload();
      await tab.waitForFunction(() => window.ready === true && performance.getEntriesByType("navigation")[0].type === "reload", null, { timeout: 20000 });
      assert.equal(await tab.evaluate(() => document.referrer), chatgpt, "the reload kept the referrer");
      assert.deepEqual(await ids(tab), first, "the same visitor and visit after the reload");

      // Two route changes.
      await tab.evaluate(() => window.go("/products"));
      await tab.evaluate(() => window.go("/products/42"));

      // A second tab of the origin, opened directly (no referrer, no campaign).
      const tab2 = await browser.newPage();
      await tab2.goto(`${shop}/app.html`);
      await tab2.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
      assert.deepEqual(await ids(tab2), first, "the second tab shares the visitor and the visit");

      // Logout in the second tab: the event of the same tick is the old visitor's.
      const after = await tab2.evaluate(async () => {
        window.client.track({ eventType: "logged_out" });
        window.client.reset();
        window.client.track({ eventType: "after_logout" });
        await window.client.flush();
        return { anon: window.client.anonymousId, visit: window.client.sessionId };
      });
      assert.notEqual(after.anon, first.anon, "reset() gives a new anonymous id");
      assert.notEqual(after.visit, first.visit, "reset() starts a new visit");
      assert.equal(await tab2.evaluate(() => localStorage.getItem("segops.anonymous_id")), after.anon, "the new id is kept");

      const before = await until("the visit's 7 events", async () => {
        const e = await storedEvents((e) => e.anonymous_id === first.anon);
        return e.length >= 7 && e;
      });
      await new Promise((r) => setTimeout(r, 500));
      const again = await storedEvents((e) => e.anonymous_id === first.anon);
      const types = again.map((e) => e.event_type).sort();
      assert.deepEqual(types, ["ai_referral_session", "logged_out", "page_viewed", "page_viewed", "page_viewed", "page_viewed", "page_viewed"]);
      assert.equal(before.length, again.length);
      for (const e of again) {
        const where = `${e.event_type} ${e.properties?.path ?? ""}`;
        assert.equal(e.context.session_id, first.visit, `${where}: session_id`);
        assert.deepEqual(
          e.context.attribution,
          { source_provider: "chatgpt", utm_campaign: campaign, referrer_host: "chatgpt.com", landing_url: landing },
          `${where}: attribution`,
        );
      }
      const referral = again.find((e) => e.event_type === "ai_referral_session");
      assert.equal(referral.properties.session_id, first.visit);
      assert.deepEqual(
        again.filter((e) => e.event_type === "page_viewed").map((e) => e.properties.path).sort(),
        ["/app.html", "/app.html", "/app.html", "/products", "/products/42"],
      );

      const later = await until("the event after reset()", async () => {
        const e = await storedEvents((e) => e.anonymous_id === after.anon);
        return e.length >= 1 && e;
      });
      assert.deepEqual(later.map((e) => e.event_type), ["after_logout"]);
      assert.equal(later[0].context.session_id, after.visit);
      assert.equal(later[0].context.attribution, undefined, "a visit after reset() has no attribution");
    } finally {
      await browser?.close();
      await server.close();
    }
  });
}

for (const engine of ENGINES) {
  test(`autoPageViews: pushState, replaceState and popstate that change the path; not query, hash or the same path (${engine})`, { timeout: 120000 }, async () => {
    const pages = {};
    const server = await servePages(pages);
    const shop = `http://shop.test:${server.port}`;
    pages["shop.test/spa.html"] = appPage(await createPublicKey([shop]), { auto: true });
    let browser = null;
    try {
      browser = await launch(engine, { hosts: ["shop.test"] });
      const tab = await browser.newPage();
      await tab.goto(`${shop}/spa.html`);
      await tab.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
      const { anon } = await ids(tab);
      await tab.evaluate(async () => {
        history.pushState(null, "", "/a"); // a view
        history.pushState(null, "", "/a"); // the same path: none
        history.pushState(null, "", "/a?tab=2"); // query only: none
        location.hash = "#reviews"; // hash only: none
        await new Promise((r) => setTimeout(r, 50));
        history.replaceState(null, "", "/b"); // a view
        await window.client.flush();
      });
      // Back: popstate, from /b to /a (the entry pushed with ?tab=2).
      await tab.evaluate(() => new Promise((resolve) => {
        addEventListener("popstate", () => setTimeout(resolve, 20), { once: true });
        history.back();
      }));
      assert.equal(await tab.evaluate(() => location.pathname + location.search), "/a?tab=2");
      await tab.evaluate(() => window.client.flush());
      const views = await until("4 page views", async () => {
        const e = await storedEvents((e) => e.anonymous_id === anon && e.event_type === "page_viewed");
        return e.length >= 4 && e;
      });
      await new Promise((r) => setTimeout(r, 500));
      const all = await storedEvents((e) => e.anonymous_id === anon);
      assert.equal(all.length, views.length, "nothing but page views");
      const paths = all.map((e) => e.properties.path); // in the order stored
      assert.deepEqual(paths, ["/spa.html", "/a", "/b", "/a"]);
      assert.equal(new Set(all.map((e) => e.context.session_id)).size, 1, "one visit");
    } finally {
      await browser?.close();
      await server.close();
    }
  });
}
