// A real navigation from a page served as chatgpt.com to a shop using the SDK, in every
// engine: the emulator stores an ai_referral_session with the right fields. chatgpt.com is on
// Chromium's and Firefox's HSTS preload lists, so there both sites are served over https
// (self-signed); the shop then calls the emulator on http://127.0.0.1, which these browsers treat
// as a secure origin. WebKit blocks that call as mixed content (it does not exempt loopback) and
// has no preload list, so there both sites are served over http.
import { test } from "node:test";
import assert from "node:assert/strict";
import { servePages, createPublicKey, eventsOf, until, sdkPage } from "./harness.mjs";
import { ENGINES, launch } from "./engines.mjs";

for (const engine of ENGINES) {
  test(`a visit from chatgpt.com is stored as an ai_referral_session (${engine})`, { timeout: 120000 }, async () => {
    const uid = `e2e-referral-${engine}-` + Math.random().toString(36).slice(2);
    const pages = {};
    const scheme = engine === "webkit" ? "http" : "https";
    const server = await servePages(pages, { tls: scheme === "https" ? ["chatgpt.com", "shop.test"] : undefined });
    const shop = `${scheme}://shop.test:${server.port}`;
    const chatgpt = `${scheme}://chatgpt.com:${server.port}/`;
    const key = await createPublicKey([shop]);
    pages["chatgpt.com/"] = `<!doctype html><title>ChatGPT</title>
      <a id="go" href="${shop}/landing.html?uid=${uid}&utm_campaign=launch">a shop</a>`;
    pages["shop.test/landing.html"] = sdkPage(key, "client.trackPageView(); await client.flush(); window.flushed = true;");
    let browser = null;
    try {
      browser = await launch(engine, { hosts: ["chatgpt.com", "shop.test"] });
      const page = await browser.newPage();
      await page.goto(chatgpt);
      await page.click("#go");
      await page.waitForURL(/landing/);
      await page.waitForFunction(() => window.flushed === true, null, { timeout: 15000 });
      const events = await until("two events", async () => {
        const e = await eventsOf(uid);
        return e.length >= 2 && e;
      });
      const referral = events.find((e) => e.event_type === "ai_referral_session");
      assert.ok(referral, "ai_referral_session stored");
      assert.equal(referral.properties.source_provider, "chatgpt");
      assert.equal(referral.properties.referrer_url, chatgpt);
      assert.equal(referral.properties.landing_url, `${shop}/landing.html?uid=${uid}&utm_campaign=launch`);
      assert.equal(referral.properties.query_hint, null);
      const view = events.find((e) => e.event_type === "page_viewed");
      assert.equal(view.properties.utm_campaign, "launch");
      assert.equal(view.properties.referrer, chatgpt);
      assert.equal(events.length, 2);
    } finally {
      await browser?.close();
      await server.close();
    }
  });
}
