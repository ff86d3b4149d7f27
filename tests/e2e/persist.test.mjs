// Events tracked while the API answers 503, then the tab is closed; once the API is healthy,
// reopening the page delivers the saved events, each exactly once. In every engine.
//
// The 503s come from the page itself (its fetch answers every ingestion request with a 503
// while its URL has fail=1), not from the emulator's fault injection: that is global, and the
// other e2e files run at the same time against the same emulator.
import { test } from "node:test";
import assert from "node:assert/strict";
import { servePages, createPublicKey, eventsOf, until, sdkPage } from "./harness.mjs";
import { ENGINES, launch } from "./engines.mjs";

const FAILING = `if (params.get("fail")) {
  const realFetch = window.fetch;
  window.ingestAnswered = 0;
  window.fetch = function (url, init) {
    if (!String(url).includes("/api/ingestion/")) return realFetch.apply(this, arguments);
    window.ingestAnswered++;
    return Promise.resolve(new Response('{"detail":"unavailable (test)"}', { status: 503, headers: { "content-type": "application/json" } }));
  };
}
`;

for (const engine of ENGINES) {
  test(`a closed tab's unsent events arrive once when the page is opened again (${engine})`, { timeout: 120000 }, async () => {
    const uid = `e2e-persist-${engine}-` + Math.random().toString(36).slice(2);
    const pages = {};
    const server = await servePages(pages);
    const shop = `http://shop.test:${server.port}`;
    const key = await createPublicKey([shop]);
    pages["shop.test/shop.html"] = sdkPage(
      key,
      FAILING + `if (params.get("track")) for (let i = 0; i < 7; i++) client.track({ eventType: "add_to_cart", properties: { i } });`,
    );
    let browser = null;
    try {
      browser = await launch(engine, { hosts: ["shop.test"] });
      const first = await browser.newPage();
      await first.goto(`${shop}/shop.html?uid=${uid}&track=1&fail=1`);
      await first.waitForFunction(() => window.ready === true);
      // Wait until the SDK has a token and has seen the 503, so the close happens mid-retry.
      await first.waitForFunction(() => window.client.stats().lastError?.code === "delivery_retry", null, { timeout: 15000 });
      assert.ok(await first.evaluate(() => window.ingestAnswered) >= 1);
      // Closing the tab sends what is queued with keepalive (answered 503) and saves it.
      await first.close();
      assert.equal((await eventsOf(uid)).length, 0, "nothing stored while the API failed");

      const second = await browser.newPage();
      await second.goto(`${shop}/shop.html?uid=${uid}`);
      await second.waitForFunction(() => window.client && window.client.stats().restored === 7, null, { timeout: 15000 });
      await second.evaluate(() => window.client.flush());
      const events = await until("seven events", async () => {
        const e = await eventsOf(uid);
        return e.length >= 7 && e;
      });
      await new Promise((r) => setTimeout(r, 500));
      const again = await eventsOf(uid);
      assert.equal(again.length, 7, "each stored once");
      assert.equal(new Set(again.map((e) => e.message_id)).size, 7);
      assert.deepEqual(again.map((e) => e.properties.i).sort(), [0, 1, 2, 3, 4, 5, 6]);
      assert.equal(await second.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("segops.pending.")).length), 0);
      assert.ok(events.every((e) => e.event_type === "add_to_cart"));
    } finally {
      await browser?.close();
      await server.close();
    }
  });
}
