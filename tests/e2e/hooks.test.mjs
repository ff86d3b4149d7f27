// getUser() and beforeSend() under fire, on the built package in every engine with the JIT on:
// over 2,000 track() calls the two hooks take turns returning good values, returning hostile
// values (tests/hostile/values.js) and throwing them. A throwing getUser() must make the call
// throw SegOpsError invalid_config (field getUser); a throwing beforeSend() must be counted in
// stats().beforeSendErrors by the time the call returns; every accepted event must be stored
// exactly once. Why: in WebKit, JavaScriptCore's optimizing JIT (DFG) once made the hostile
// table's own getUser() answer go stale after a few hundred rows (that table runs with the DFG
// off, see xtask/src/tiers.rs); this runs the same kind of calls on what apps ship, JIT on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { api, servePages, dev, storedEvents, until } from "./harness.mjs";
import { ENGINES, launch } from "./engines.mjs";

const CALLS = 2000;
const CHUNK = 250; // calls per script run, with deliveries in between
const valuesJs = readFileSync(new URL("../hostile/values.js", import.meta.url), "utf8");

// The page: one client whose hooks answer what `mode` (set by each call of runHooks) says.
const page = (apiKey) => `<!doctype html><title>Hooks</title><script type="module">
import { SegOpsClient } from "/pkg/index.js";
import { hostileValues, classifyThrown } from "/values.js";

// A thrown answer is marked by a WeakSet (reading it runs none of the hostile value's code).
const THROWN = new WeakSet();
const thrown = (value) => { const t = { value }; THROWN.add(t); return t; };
let userAnswer = () => null;
let hookAnswer = (e) => e;
let hookThrows = 0;
const client = new SegOpsClient({
  apiUrl: ${JSON.stringify(api)},
  apiKey: ${JSON.stringify(apiKey)},
  getUser: () => unwrap(userAnswer()),
  beforeSend: (e) => {
    const a = hookAnswer(e);
    if (THROWN.has(a)) { hookThrows++; throw a.value; }
    return a;
  },
});
function unwrap(a) {
  if (THROWN.has(a)) throw a.value;
  return a;
}
const values = hostileValues().filter((v) => !v.fresh);
const MODES = ["returns", "hostile", "throws"];
const beforeSendDrops = (s) => (s.dropped && s.dropped.before_send) || 0;

// Calls from..to-1; resolves to { accepted, userThrew, hookThrew, problems } once they are
// delivered.
window.runHooks = async (from, to) => {
  let accepted = 0;
  let userThrew = 0;
  const hookThrewBefore = hookThrows;
  const problems = [];
  for (let i = from; i < to; i++) {
    const value = values[i % values.length];
    const ctx = { client, extraEvents: 0 };
    let v;
    try {
      v = value.make(ctx);
    } catch (_) {
      continue;
    }
    const userMode = MODES[i % 3];
    const hookMode = MODES[Math.floor(i / 3) % 3];
    const alt = Math.floor(i / 9) % 3;
    userAnswer = {
      returns: () => [null, { anonymousId: "hooks-anon" }, { userId: "hooks-user" }][alt],
      hostile: () => (alt === 1 ? { userId: v } : v),
      throws: () => thrown(v),
    }[userMode];
    hookAnswer = {
      returns: (e) => (alt === 1 ? { ...e, properties: { ...e.properties, hooked: true } } : e),
      hostile: (e) => (alt === 1 ? { ...e, properties: v } : v),
      throws: () => thrown(v),
    }[hookMode];
    const before = client.stats();
    const throwsBefore = hookThrows;
    let error = null;
    try {
      client.track({ eventType: "hooked", properties: { i } });
    } catch (e) {
      error = e;
    }
    userAnswer = () => null;
    hookAnswer = (e) => e;
    const after = client.stats();
    const row = \`call \${i} (getUser \${userMode}, beforeSend \${hookMode}, \${value.id})\`;
    const why = error && classifyThrown(error);
    if (userMode === "throws") {
      userThrew++;
      if (!error) problems.push(row + ": getUser threw, the call returned");
      else if (why.code !== "invalid_config" || why.field !== "getUser") problems.push(row + ": " + why.outcome);
    } else if (error && !why.documented) {
      problems.push(row + ": " + why.outcome);
    } else if (error && userMode === "returns") {
      problems.push(row + ": good getUser answer, yet " + why.outcome);
    }
    const threw = hookThrows - throwsBefore;
    const counted = after.beforeSendErrors - before.beforeSendErrors;
    if (hookMode === "throws" && !error && threw === 0) problems.push(row + ": beforeSend was not called");
    if (hookMode === "throws" && counted !== threw) {
      problems.push(row + \`: beforeSend threw \${threw} times, beforeSendErrors went up by \${counted}\`);
    }
    if (hookMode === "returns" && counted !== 0) problems.push(row + ": a good beforeSend answer counted as an error");
    accepted += (error ? 0 : 1) + ctx.extraEvents - (beforeSendDrops(after) - beforeSendDrops(before));
  }
  await client.flush();
  return { accepted, userThrew, hookThrew: hookThrows - hookThrewBefore, problems };
};
window.client = client;
await client.ready;
window.ready = true;
</script>`;

for (const engine of ENGINES) {
  test(`getUser and beforeSend returning, returning hostile values and throwing, ${CALLS} calls (${engine})`, { timeout: 240000 }, async (t) => {
    if (engine === "webkit") {
      for (const v of ["JSC_useJIT", "JSC_useDFGJIT", "JSC_useFTLJIT"]) {
        assert.notEqual(process.env[v], "0", `${v}=0 is set: this test is about WebKit with the JIT on`);
      }
    }
    const key = await dev("POST", "/api/auth/api-keys/", { name: `e2e hooks ${engine}`, kind: "secret" });
    const pages = {};
    const server = await servePages(pages);
    pages["shop.test/hooks.html"] = page(key.key);
    pages["shop.test/values.js"] = { type: "text/javascript", body: valuesJs };
    let browser = null;
    try {
      browser = await launch(engine, { hosts: ["shop.test"] });
      const tab = await browser.newPage();
      await tab.goto(`http://shop.test:${server.port}/hooks.html`);
      await tab.waitForFunction(() => window.ready === true, null, { timeout: 15000 });
      let [accepted, userThrew, hookThrew] = [0, 0, 0];
      const problems = [];
      for (let from = 0; from < CALLS; from += CHUNK) {
        const r = await tab.evaluate(([a, b]) => window.runHooks(a, b), [from, Math.min(from + CHUNK, CALLS)]);
        accepted += r.accepted;
        userThrew += r.userThrew;
        hookThrew += r.hookThrew;
        problems.push(...r.problems);
      }
      t.diagnostic(`${engine}: ${accepted} events accepted, getUser threw ${userThrew} times, beforeSend ${hookThrew} times`);
      assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
      const stats = await tab.evaluate(() => window.client.stats());
      assert.equal(stats.pending, 0, "everything delivered");
      assert.equal(stats.sent, accepted, "stats().sent is the number of accepted events");
      const dropped = stats.droppedTotal - ((stats.dropped && stats.dropped.before_send) || 0);
      assert.equal(dropped, 0, "no event dropped but by beforeSend: " + JSON.stringify(stats.dropped));
      const stored = await until(`${accepted} stored events`, async () => {
        const e = await storedEvents((e) => e.key_id === key.id);
        return e.length >= accepted && e;
      });
      await new Promise((r) => setTimeout(r, 300));
      const again = await storedEvents((e) => e.key_id === key.id);
      assert.equal(again.length, accepted, "each accepted event stored once");
      assert.equal(new Set(again.map((e) => e.message_id)).size, again.length, "no message id twice");
      assert.ok(stored.length > CALLS / 3, `a good share of the calls was accepted (${stored.length})`);
    } finally {
      await browser?.close();
      await server.close();
    }
  });
}
