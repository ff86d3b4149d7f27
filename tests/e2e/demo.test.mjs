// The demo page (www-demo/) in every engine against the emulator: switch users (anonymous ->
// alice with a signed user id -> bob), press the SDK buttons, arrive from ChatGPT, then check
// what the API stored and what the page's live panels (events, visit) show; then log out of bob
// (the same client) and of alice (another key, so a new client). The Chromium run saves a
// screenshot to target/e2e/demo.png, or to SEGOPS_DEMO_SCREENSHOT (docs/demo.png to refresh the
// README's).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join, normalize, extname, sep, dirname } from "node:path";
import { api, dev, eventsOf, until } from "./harness.mjs";
import { ENGINES, launch, withRecorder } from "./engines.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const demoDir = join(root, "www-demo");
const webPkg = process.env.SEGOPS_PKG_WEB;
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
  ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png",
};

// Serves www-demo/ at /, the web build at /pkg/, and `config()` as /dev-config.json (the files
// `cargo xtask demo` would put in www-demo/ are never read from there). HTML gets the console
// recorder of engines.mjs.
async function serveDemo(config) {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (path === "/dev-config.json") {
      res.writeHead(200, { "content-type": TYPES[".json"], "cache-control": "no-store" });
      return res.end(JSON.stringify(config()));
    }
    const [base, rel] = path.startsWith("/pkg/") ? [webPkg, path.slice(5)] : [demoDir, path.slice(1) || "index.html"];
    const file = normalize(join(base, rel.endsWith("/") ? rel + "index.html" : rel));
    if (!file.startsWith(normalize(base) + sep)) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" });
      res.end(extname(file) === ".html" ? withRecorder(body.toString()) : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

for (const engine of ENGINES) {
  test(`the demo page: users, SDK calls, an arrival from ChatGPT, live panels (${engine})`, { timeout: 120000 }, async () => {
    let config = null;
    const server = await serveDemo(() => config);
    const origin = `http://127.0.0.1:${server.port}`;
    const pub = await dev("POST", "/api/auth/api-keys/", { name: "e2e demo", kind: "public", allowed_origins: [origin] });
    const signed = await dev("POST", "/api/auth/api-keys/", {
      name: "e2e demo signed", kind: "public", allowed_origins: [origin], require_signed_user_id: true,
    });
    config = {
      apiUrl: api, publicKey: pub.key, signedPublicKey: signed.key, signedPublicKeyId: signed.id,
      ownerEmail: process.env.SEGOPS_TEST_OWNER_EMAIL, ownerPassword: process.env.SEGOPS_TEST_OWNER_PASSWORD,
    };

    let browser = null;
    try {
      browser = await launch(engine, { viewport: { width: 1200, height: 900 } });
      const page = await browser.newPage();

      const ready = () => page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
      // Clicks and waits for the page to log the call it made.
      const press = async (selector) => {
        const before = Number(await page.getAttribute("body", "data-calls"));
        await page.click(selector);
        await page.waitForFunction((n) => Number(document.body.dataset.calls) > n, before, { timeout: 10000 });
      };
      const become = async (user) => {
        await page.click(`[data-user-choice=${user}]`);
        await page.waitForSelector(`body[data-user=${user}][data-switching=false]`, { timeout: 10000 });
        assert.equal(await page.getAttribute(`[data-user-choice=${user}]`, "aria-checked"), "true");
      };
      const sessionId = () => page.evaluate(() => window.demo.client.sessionId);
      // The Visit panel, once it shows the current client's visit (client.sessionId) with a
      // known start and attribution.
      const visitPanel = async () => {
        await page.waitForFunction(() => {
          const id = window.demo.client.sessionId;
          const box = document.querySelector("#visit");
          return typeof id === "string" && box.dataset.sessionId === id
            && document.querySelector("#visit-id").textContent === id && box.dataset.start !== ""
            && document.querySelector("#visit-attribution").dataset.state !== "unknown";
        }, null, { timeout: 10000 });
        return page.evaluate(() => {
          const box = document.querySelector("#visit");
          const attribution = document.querySelector("#visit-attribution");
          return {
            id: box.dataset.sessionId,
            from: box.dataset.from,
            start: Number(box.dataset.start),
            ageMs: Number(document.querySelector("#visit-age").dataset.ms),
            age: document.querySelector("#visit-age").textContent,
            attribution: box.dataset.attribution ? JSON.parse(box.dataset.attribution) : null,
            state: attribution.dataset.state,
            provider: attribution.dataset.provider,
            text: attribution.textContent,
            kept: JSON.parse(localStorage.getItem("segops.visit") || "null"),
          };
        });
      };
      // Logs out (the page's "Log out": reset()); resolves to the new anonymous id it shows.
      const logOut = async (oldAnon) => {
        await press("#log-out");
        await page.waitForSelector("body[data-user=anonymous][data-switching=false]", { timeout: 10000 });
        assert.equal(await page.getAttribute("[data-user-choice=anonymous]", "aria-checked"), "true");
        await page.waitForFunction((old) => {
          const shown = document.querySelector("#anon-id").textContent;
          return /^[0-9a-f-]{36}$/.test(shown) && shown !== old;
        }, oldAnon, { timeout: 10000 });
        const fresh = (await page.textContent("#anon-id")).trim();
        assert.equal(await page.evaluate(() => window.demo.client.anonymousId), fresh);
        return fresh;
      };

      await page.goto(origin + "/");
      await ready();
      assert.equal(await page.getAttribute("body", "data-user"), "anonymous");
      const anon = (await page.textContent("#anon-id")).trim();
      assert.match(anon, /^[0-9a-f-]{36}$/);

      // The Visit panel: client.sessionId, the start the SDK keeps in localStorage (consent is
      // granted), and the attribution of a direct visit: its landing url only.
      const first = await visitPanel();
      assert.match(first.id, UUID_V7);
      assert.equal(first.from, "storage");
      assert.equal(first.kept.id, first.id);
      assert.equal(first.start, first.kept.start);
      assert.ok(first.ageMs >= 0 && first.ageMs < 60000, "age of a new visit: " + first.ageMs);
      assert.match(first.age, /^\d+:\d\d$/);
      assert.deepEqual(first.attribution, { landing_url: origin + "/" });
      assert.equal(first.provider, "");
      // The age goes on.
      await page.waitForFunction((ms) => Number(document.querySelector("#visit-age").dataset.ms) >= ms + 1000,
        first.ageMs, { timeout: 10000 });

      // Anonymous: identify() needs a user, so its button is off.
      assert.equal(await page.isDisabled("#btn-identify"), true);
      await press("#btn-track");
      await press("#btn-page");
      await press("[data-add-sku=TENT-2P]");
      await press("#btn-spoof");

      await become("alice");
      for (const b of ["#btn-track", "#btn-identify", "#btn-page"]) await press(b);

      await become("bob");
      // One visit across the user switches (each key's client takes it up from storage).
      assert.equal(await sessionId(), first.id);
      for (const b of ["#btn-track", "#btn-identify", "#btn-page", "#btn-spoof"]) await press(b);

      // A bad call shows the SegOpsError in the page, not as an exception.
      await press("#btn-bad");
      await page.waitForSelector("#error:not([hidden])");
      assert.equal(await page.getAttribute("#error", "data-code"), "invalid_argument");
      assert.equal(await page.getAttribute("#error", "data-field"), "track.eventType");

      // Arrive from ChatGPT: a reload with utm_source=chatgpt.com and no referrer; bob stays.
      await page.click("#arrive-chatgpt");
      await page.waitForURL(/utm_source=chatgpt\.com/);
      await ready();
      assert.equal(await page.getAttribute("body", "data-user"), "bob");
      assert.equal(await page.isVisible("#referral-banner"), true);
      await press("[data-add-sku=PACK-38]");
      // Another utm_source: a new visit, with the landing facts of the arrival from ChatGPT.
      const chatgpt = await visitPanel();
      assert.match(chatgpt.id, UUID_V7);
      assert.notEqual(chatgpt.id, first.id);
      assert.equal(chatgpt.provider, "chatgpt");
      assert.deepEqual(chatgpt.attribution, {
        source_provider: "chatgpt", utm_source: "chatgpt.com", utm_medium: "referral",
        landing_url: origin + "/?utm_source=chatgpt.com&utm_medium=referral",
      });
      assert.match(chatgpt.text, /source_provider chatgpt/);
      assert.equal(chatgpt.from, "storage");
      assert.ok(chatgpt.start >= first.start);

      // What the API stored for this browser (user events carry its anonymous id too).
      const expected = {
        anonymous: ["page_viewed", "promo_clicked", "page_viewed", "product_added", "impersonation_attempt"],
        alice: ["signed_in", "promo_clicked", "identify", "page_viewed"],
        bob: ["signed_in", "promo_clicked", "identify", "page_viewed", "impersonation_attempt",
          "page_viewed", "ai_referral_session", "product_added"],
      };
      const total = Object.values(expected).flat().length;
      const stored = await until("every event of the run", async () => {
        const e = await eventsOf(anon);
        return e.length >= total && e;
      }, 30000);
      const of = (uid) => stored.filter((e) => (e.user_id ?? "anonymous") === uid).map((e) => e.event_type);
      for (const [uid, types] of Object.entries(expected)) {
        assert.deepEqual(of(uid).sort(), [...types].sort(), `events of ${uid}`);
      }
      assert.equal(stored.length, total, "no event stored twice");
      for (const e of stored) {
        assert.equal(e.auth, "session");
        assert.equal(e.anonymous_id, anon);
        assert.equal(e.key_id, e.user_id === "alice" ? signed.id : pub.id, `key of ${e.event_type} by ${e.user_id}`);
      }
      // uid forcing: the claims of the raw-fetch events lost to the session tokens.
      const claims = stored.filter((e) => e.event_type === "impersonation_attempt");
      assert.deepEqual(claims.map((e) => [e.properties.claimed_user_id, e.user_id]).sort(), [["alice", null], ["alice", "bob"]]);
      const identifyAlice = stored.find((e) => e.type === "identify" && e.user_id === "alice");
      assert.equal(identifyAlice.traits.plan, "pro");
      const referral = stored.find((e) => e.event_type === "ai_referral_session");
      assert.equal(referral.user_id, "bob");
      assert.equal(referral.properties.source_provider, "chatgpt");
      assert.equal(referral.properties.referrer_url, "");
      assert.equal(referral.properties.landing_url, origin + "/?utm_source=chatgpt.com&utm_medium=referral");
      const landing = stored.find((e) => e.event_type === "page_viewed" && e.properties.utm_source === "chatgpt.com");
      assert.equal(landing.user_id, "bob");
      // The visits in the stored context: the arrival from ChatGPT's three events in its visit,
      // with its attribution; every other SDK event in the first (the raw-fetch events have none).
      assert.equal(referral.properties.session_id, chatgpt.id);
      for (const e of stored) {
        if (e.event_type === "impersonation_attempt") {
          assert.equal(e.context?.session_id, undefined);
          continue;
        }
        const arrival = e === landing || e === referral || e.properties?.sku === "PACK-38";
        const visit = arrival ? chatgpt : first;
        assert.equal(e.context.session_id, visit.id, `visit of ${e.event_type} by ${e.user_id}`);
        assert.deepEqual(e.context.attribution, visit.attribution, `attribution of ${e.event_type} by ${e.user_id}`);
      }

      // The live panel shows the same, with the stored uids.
      await page.waitForFunction((n) => Number(document.querySelector("#events").dataset.count) === n, total, { timeout: 10000 });
      const rows = await page.evaluate(() => [...document.querySelectorAll("#events li")].map((li) => ({ ...li.dataset })));
      assert.equal(rows.length, total);
      const panel = (uid) => rows.filter((r) => (r.userId || "anonymous") === uid).map((r) => r.eventType).sort();
      for (const [uid, types] of Object.entries(expected)) assert.deepEqual(panel(uid), [...types].sort(), `panel rows of ${uid}`);
      for (const r of rows) {
        assert.equal(r.anonymousId, anon);
        assert.equal(r.key, r.userId === "alice" ? "signed key" : "public key");
      }
      assert.equal(rows.filter((r) => r.forced === "true").length, 2);
      const aiRow = rows.find((r) => r.eventType === "ai_referral_session");
      assert.equal(aiRow.provider, "chatgpt");
      assert.equal(aiRow.userId, "bob");
      assert.equal(aiRow.sessionId, chatgpt.id);
      assert.match(await page.textContent(`#events li[data-event-type=ai_referral_session]`), /chatgpt/);

      // stats() of the current client: everything sent, a live session token.
      await page.waitForFunction(() => document.querySelector("#stat-pending").textContent === "0"
        && Number(document.querySelector("#stat-sent").textContent) >= 4, null, { timeout: 10000 });
      const ms = Number(await page.getAttribute("#token-remaining", "data-ms"));
      assert.ok(ms > 0, "tokenExpiresInMs shown: " + ms);
      assert.match(await page.textContent("#token-remaining"), /^\d+:\d\d left$/);
      assert.equal(await page.textContent("#stat-dropped"), "0");

      // The README's picture comes from one engine, Chromium, at the viewport it was taken with.
      if (engine === "chromium") {
        const shot = process.env.SEGOPS_DEMO_SCREENSHOT || join(root, "target", "e2e", "demo.png");
        mkdirSync(dirname(shot), { recursive: true });
        await page.screenshot(shot);
      }

      // Log out of bob: reset() on his client. His signed_out keeps his identity and visit; the
      // page is anonymous, with a new anonymous id and a new visit without attribution.
      const anon2 = await logOut(anon);
      const afterBob = await visitPanel();
      assert.match(afterBob.id, UUID_V7);
      assert.notEqual(afterBob.id, chatgpt.id);
      assert.equal(afterBob.state, "none");
      assert.equal(afterBob.text, "none");
      assert.equal(afterBob.attribution, null);
      await press("#btn-track");
      const [bobOut, anonAfter] = await until("bob's signed_out and the anonymous event after it", async () => {
        const out = (await eventsOf(anon)).filter((e) => e.event_type === "signed_out");
        const next = await eventsOf(anon2);
        return out.length > 0 && next.length > 0 && [out, next];
      }, 30000);
      assert.equal(bobOut.length, 1);
      assert.equal(bobOut[0].user_id, "bob");
      assert.equal(bobOut[0].context.session_id, chatgpt.id);
      assert.deepEqual(anonAfter.map((e) => [e.event_type, e.user_id, e.context.session_id, e.context.attribution]),
        [["promo_clicked", null, afterBob.id, undefined]]);
      assert.equal((await eventsOf(anon)).length, total + 1, "nothing after the logout under the old anonymous id");

      // Log out of alice: her key is another, so the page goes on with a new client for the
      // anonymous user, as a new visitor again.
      await become("alice");
      await press("#btn-track");
      const aliceVisit = await sessionId();
      const anon3 = await logOut(anon2);
      const afterAlice = await visitPanel();
      assert.notEqual(afterAlice.id, aliceVisit);
      assert.notEqual(afterAlice.id, afterBob.id);
      assert.equal(afterAlice.state, "none");
      assert.equal(afterAlice.attribution, null);
      await press("#btn-page");
      const [aliceEvents, anonLast] = await until("alice's signed_out and the anonymous event after it", async () => {
        const of2 = (await eventsOf(anon2)).filter((e) => e.user_id === "alice");
        const next = await eventsOf(anon3);
        const all = ["signed_in", "promo_clicked", "signed_out"].every((t) => of2.some((e) => e.event_type === t));
        return all && next.length > 0 && [of2, next];
      }, 30000);
      assert.deepEqual(aliceEvents.map((e) => e.event_type).sort(), ["promo_clicked", "signed_in", "signed_out"]);
      for (const e of aliceEvents) {
        assert.equal(e.key_id, signed.id);
        assert.equal(e.context.session_id, aliceVisit, `visit of alice's ${e.event_type}`);
      }
      assert.deepEqual(anonLast.map((e) => [e.event_type, e.user_id, e.key_id, e.context.session_id, e.context.attribution]),
        [["page_viewed", null, pub.id, afterAlice.id, undefined]]);

      // Uncaught errors and console.error calls of the page (both loads, in this tab).
      const problems = (await page.consoleMessages()).filter((m) => m.type === "error" || m.type === "pageerror");
      assert.deepEqual(problems, []);
    } finally {
      await browser?.close();
      await server.close();
    }
  });
}
