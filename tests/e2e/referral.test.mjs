// A real navigation in Chromium from a page served as chatgpt.com to a shop using the SDK:
// the emulator stores an ai_referral_session with the right fields. chatgpt.com is on
// Chromium's HSTS preload list, so both sites are served over https (self-signed); the shop
// then calls the emulator on loopback, which browsers treat as a secure origin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { servePages, launch, createPublicKey, eventsOf, until, sdkPage } from "./harness.mjs";

test("a visit from chatgpt.com is stored as an ai_referral_session", async () => {
  const uid = "e2e-referral-" + Math.random().toString(36).slice(2);
  const pages = {};
  const server = await servePages(pages, { tls: ["chatgpt.com", "shop.test"] });
  const shop = `https://shop.test:${server.port}`;
  const key = await createPublicKey([shop]);
  pages["chatgpt.com/"] = `<!doctype html><title>ChatGPT</title>
    <a id="go" href="${shop}/landing.html?uid=${uid}&utm_campaign=launch">a shop</a>`;
  pages["shop.test/landing.html"] = sdkPage(key, "client.trackPageView(); await client.flush(); window.flushed = true;");
  const browser = await launch(["chatgpt.com", "shop.test"]);
  try {
    const page = await browser.newPage();
    await page.goto(`https://chatgpt.com:${server.port}/`);
    await Promise.all([page.waitForURL(/landing/), page.click("#go")]);
    await page.waitForFunction(() => window.flushed === true, null, { timeout: 15000 });
    const events = await until("two events", async () => {
      const e = await eventsOf(uid);
      return e.length >= 2 && e;
    });
    const referral = events.find((e) => e.event_type === "ai_referral_session");
    assert.ok(referral, "ai_referral_session stored");
    assert.equal(referral.properties.source_provider, "chatgpt");
    assert.equal(referral.properties.referrer_url, `https://chatgpt.com:${server.port}/`);
    assert.equal(referral.properties.landing_url, `${shop}/landing.html?uid=${uid}&utm_campaign=launch`);
    assert.equal(referral.properties.query_hint, null);
    const view = events.find((e) => e.event_type === "page_viewed");
    assert.equal(view.properties.utm_campaign, "launch");
    assert.equal(view.properties.referrer, `https://chatgpt.com:${server.port}/`);
    assert.equal(events.length, 2);
  } finally {
    await browser.close();
    await server.close();
  }
});
