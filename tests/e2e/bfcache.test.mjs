// restoreFromBfcache (engines.mjs) brings a page back from the back/forward cache in every
// engine, under automation as for a user. A page with the SDK restored that way:
// - still works: an event tracked after the restore is stored once, and nothing tracked before
//   is sent again;
// - renews its session token before sending when the token expired while it was cached (the
//   emulator with 8-second tokens), rather than sending with it and taking a 401;
// - leaves to another page the snapshot that page took up while it was cached (the unsent
//   events it saved at pagehide): those are stored once, by the other page, and the restored
//   page counts them in stats().handedOver.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, servePages, createPublicKey, eventsOf, until, sdkPage, shortApi } from "./harness.mjs";
import { ENGINES, launch, restoreFromBfcache } from "./engines.mjs";

const trackAndFlush = (page, eventType) =>
  page.evaluate(async (t) => {
    window.client.track({ eventType: t });
    await window.client.flush();
  }, eventType);

// Serves `pages(shop, key)` ({ "shop.test/path": html }) with a public key for the shop's origin
// on the emulator at `base`, opens `engine` on /shop.html?uid=<a new uid> once it is ready,
// runs `body({ page, shop, uid })`, and closes everything.
async function onShop(engine, pages, body, base = api) {
  const uid = `e2e-bfcache-${engine}-` + Math.random().toString(36).slice(2);
  const all = {};
  const server = await servePages(all);
  const shop = `http://shop.test:${server.port}`;
  Object.assign(all, pages(shop, await createPublicKey([shop], base)));
  let browser = null;
  try {
    browser = await launch(engine, { hosts: ["shop.test"] });
    const page = await browser.newPage();
    await page.goto(`${shop}/shop.html?uid=${uid}`);
    await page.waitForFunction(() => window.ready === true);
    await body({ page, shop, uid });
  } finally {
    await browser?.close();
    await server.close();
  }
}

for (const engine of ENGINES) {
  test(`a page with the SDK restored from the back/forward cache still delivers, once (${engine})`, { timeout: 120000 }, () =>
    onShop(engine, (shop, key) => ({ "shop.test/shop.html": sdkPage(key, "await client.ready;") }), async ({ page, uid }) => {
      await trackAndFlush(page, "before_away");
      assert.equal(await restoreFromBfcache(page), true, "restored from the back/forward cache");
      await trackAndFlush(page, "after_restore");
      await until("the event tracked after the restore", async () =>
        (await eventsOf(uid)).some((e) => e.event_type === "after_restore"));
      await new Promise((r) => setTimeout(r, 500));
      const types = (await eventsOf(uid)).map((e) => e.event_type).sort();
      assert.deepEqual(types, ["after_restore", "before_away"]);
      assert.equal(await page.evaluate(() => window.client.stats().pending), 0);
    }));
}

for (const engine of ENGINES) {
  test(`a page restored after its token expired renews it before sending (${engine})`, { timeout: 120000 }, () =>
    onShop(engine, (shop, key) => ({ "shop.test/shop.html": sdkPage(key, "await client.ready;", shortApi) }), async ({ page, shop, uid }) => {
      await trackAndFlush(page, "before_away");
      assert.equal((await page.evaluate(() => window.client.stats())).mints, 1);

      // Cached for longer than the token lives (8 s): no timer of the page runs meanwhile.
      const away = new URL("/e2e-away.html", shop).href;
      assert.equal(await restoreFromBfcache(page, away, 10000), true, "restored from the back/forward cache");

      await trackAndFlush(page, "after_restore");
      const after = await page.evaluate(() => window.client.stats());
      assert.equal(after.mints, 2, "a new token was minted for the restored page");
      assert.equal(after.remints, 0, "no request went out with the expired token (no 401)");
      assert.equal(after.pending, 0);
      await until("the event tracked after the restore", async () =>
        (await eventsOf(uid, shortApi)).some((e) => e.event_type === "after_restore"));
      const types = (await eventsOf(uid, shortApi)).map((e) => e.event_type).sort();
      assert.deepEqual(types, ["after_restore", "before_away"]);
    }, shortApi));
}

// The shop page's requests fail while window.offline is set (a stand-in for a network that is
// down), so its events are still unsent when it is hidden, and saved then.
const OFFLINE = `const realFetch = window.fetch;
window.offline = false;
window.fetch = function (...args) {
  return window.offline ? Promise.reject(new TypeError("offline (test)")) : realFetch.apply(this, args);
};`;

for (const engine of ENGINES) {
  test(`a page restored after another page took up its snapshot leaves those events to it (${engine})`, { timeout: 120000 }, () =>
    onShop(engine, (shop, key) => ({
      "shop.test/shop.html": sdkPage(key, OFFLINE + "await client.ready;"),
      // The other page of the origin: its client takes up the saved snapshots when it starts.
      "shop.test/other.html": sdkPage(key, "await client.ready; await client.flush();"),
    }), async ({ page, shop, uid }) => {
      await page.evaluate(() => {
        window.offline = true;
        for (let i = 0; i < 3; i++) window.client.track({ eventType: "offline_" + i });
      });
      await until("the three events queued", () => page.evaluate(() => window.client.stats().pending === 3));

      // Hidden with its events unsent (the keepalive request fails too): saved. The other page
      // takes them up and delivers them while this one is in the cache.
      const other = `${shop}/other.html?uid=${uid}-other`;
      assert.equal(await restoreFromBfcache(page, other, 0, async () => {
        await page.waitForFunction(() => window.ready === true);
        await until("the other page delivering the snapshot", async () => (await eventsOf(uid)).length === 3);
      }), true, "restored from the back/forward cache");

      await page.evaluate(() => { window.offline = false; });
      await trackAndFlush(page, "after_restore");
      const stats = await page.evaluate(() => window.client.stats());
      assert.equal(stats.handedOver, 3, "the three events were left to the page that took them up");
      assert.equal(stats.pending, 0);
      assert.equal(stats.sent, 1, "only the event tracked after the restore was sent by this page");
      await until("the event tracked after the restore", async () =>
        (await eventsOf(uid)).some((e) => e.event_type === "after_restore"));
      await new Promise((r) => setTimeout(r, 500));
      const types = (await eventsOf(uid)).map((e) => e.event_type).sort();
      assert.deepEqual(types, ["after_restore", "offline_0", "offline_1", "offline_2"], "each stored once");
    }));
}
