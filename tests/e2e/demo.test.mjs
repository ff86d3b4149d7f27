// The demo page (www-demo/) in headless Chromium against the emulator: switch users
// (anonymous -> alice with a signed user id -> bob), press the SDK buttons, arrive from ChatGPT,
// then check what the API stored and what the page's live panel shows. Saves a screenshot to
// target/e2e/demo.png, or to SEGOPS_DEMO_SCREENSHOT (docs/demo.png to refresh the README's).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join, normalize, extname, sep, dirname } from "node:path";
import { api, launch, dev, eventsOf, until } from "./harness.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const demoDir = join(root, "www-demo");
const webPkg = process.env.SEGOPS_PKG_WEB;
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
  ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png",
};

// Serves www-demo/ at /, the web build at /pkg/, and `config()` as /dev-config.json (the files
// `cargo xtask demo` would put in www-demo/ are never read from there).
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
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

test("the demo page: users, SDK calls, an arrival from ChatGPT, live panels", async () => {
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

  const browser = await launch([]);
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push("uncaught: " + e.message));
    page.on("console", (m) => { if (m.type() === "error") problems.push("console.error: " + m.text()); });

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

    await page.goto(origin + "/");
    await ready();
    assert.equal(await page.getAttribute("body", "data-user"), "anonymous");
    const anon = (await page.textContent("#anon-id")).trim();
    assert.match(anon, /^[0-9a-f-]{36}$/);

    // Anonymous: identify() needs a user, so its button is off.
    assert.equal(await page.isDisabled("#btn-identify"), true);
    await press("#btn-track");
    await press("#btn-page");
    await press("[data-add-sku=TENT-2P]");
    await press("#btn-spoof");

    await become("alice");
    for (const b of ["#btn-track", "#btn-identify", "#btn-page"]) await press(b);

    await become("bob");
    for (const b of ["#btn-track", "#btn-identify", "#btn-page", "#btn-spoof"]) await press(b);

    // A bad call shows the SegOpsError in the page, not as an exception.
    await press("#btn-bad");
    await page.waitForSelector("#error:not([hidden])");
    assert.equal(await page.getAttribute("#error", "data-code"), "invalid_argument");
    assert.equal(await page.getAttribute("#error", "data-field"), "track.eventType");

    // Arrive from ChatGPT: a reload with utm_source=chatgpt.com and no referrer; bob stays.
    await Promise.all([page.waitForURL(/utm_source=chatgpt\.com/), page.click("#arrive-chatgpt")]);
    await ready();
    assert.equal(await page.getAttribute("body", "data-user"), "bob");
    assert.equal(await page.isVisible("#referral-banner"), true);
    await press("[data-add-sku=PACK-38]");

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

    // The live panel shows the same, with the stored uids.
    await page.waitForFunction((n) => Number(document.querySelector("#events").dataset.count) === n, total, { timeout: 10000 });
    const rows = await page.$$eval("#events li", (lis) => lis.map((li) => ({ ...li.dataset })));
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
    assert.match(await page.textContent(`#events li[data-event-type=ai_referral_session]`), /chatgpt/);

    // stats() of the current client: everything sent, a live session token.
    await page.waitForFunction(() => document.querySelector("#stat-pending").textContent === "0"
      && Number(document.querySelector("#stat-sent").textContent) >= 4, null, { timeout: 10000 });
    const ms = Number(await page.getAttribute("#token-remaining", "data-ms"));
    assert.ok(ms > 0, "tokenExpiresInMs shown: " + ms);
    assert.match(await page.textContent("#token-remaining"), /^\d+:\d\d left$/);
    assert.equal(await page.textContent("#stat-dropped"), "0");

    assert.deepEqual(problems, []);
    const shot = process.env.SEGOPS_DEMO_SCREENSHOT || join(root, "target", "e2e", "demo.png");
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });
  } finally {
    await browser.close();
    await server.close();
  }
});
