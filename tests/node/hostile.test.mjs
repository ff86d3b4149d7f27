// The hostile-values table (tests/hostile/values.js) against the built Node package: every
// hostile JS value at every entry point returns normally or throws a documented SegOpsError
// naming the argument, never a wasm trap; the clients keep working and the emulator holds each
// accepted event exactly once. The table is printed as it runs (entry point, value, outcome).
// The `todo` tests below are KNOWN SDK BUGS (docs/bad-input.md#known-sdk-bugs): they assert the
// fixed behaviour and fail until the SDK is fixed, without failing the suite.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { runHostileTable, storedEvents, createSecretKey } from "../hostile/values.js";

const require = createRequire(import.meta.url);
const apiUrl = process.env.SEGOPS_TEST_API_URL;
const pkg = process.env.SEGOPS_PKG_NODE;
if (!apiUrl || !pkg) throw new Error("run through `cargo xtask test` (SEGOPS_TEST_API_URL, SEGOPS_PKG_NODE)");
const { SegOpsClient } = require(pkg + "/segops_sdk.js");
const env = {
  apiUrl,
  ownerEmail: process.env.SEGOPS_TEST_OWNER_EMAIL,
  ownerPassword: process.env.SEGOPS_TEST_OWNER_PASSWORD,
  runtime: "node",
};

test("hostile values: documented errors only, no trap, every accepted event stored once", async () => {
  const expected = JSON.parse(readFileSync(new URL("../hostile/expected.json", import.meta.url), "utf8"));
  const started = Date.now();
  const result = await runHostileTable(SegOpsClient, { ...env, expected, log: (line) => console.log(line) });
  console.log(`table done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(result.counts)}`);
  // SEGOPS_HOSTILE_ROWS=<file> keeps the rows, to rebuild expected.json (docs/bad-input.md).
  if (process.env.SEGOPS_HOSTILE_ROWS) writeFileSync(process.env.SEGOPS_HOSTILE_ROWS, JSON.stringify(result.rows));
  assert.deepEqual(result.problems, []);
  assert.ok(result.counts.stored > 1000, "the table stores a good share of its cases");
});

test("a freed client or a detached method throws a plain Error, not a trap, and others keep working", async () => {
  const key = await createSecretKey(env, "hostile freed");
  const config = { apiUrl, apiKey: key.key };
  const freed = new SegOpsClient(config);
  freed.free();
  const other = new SegOpsClient(config);
  const notTrap = (e) => e instanceof Error && !(e instanceof WebAssembly.RuntimeError) && e.name !== "SegOpsError";
  assert.throws(() => freed.track({ eventType: "after_free" }), notTrap);
  assert.throws(() => freed.stats(), notTrap);
  const detached = other.track;
  assert.throws(() => detached({ eventType: "detached" }), notTrap);
  assert.throws(() => SegOpsClient.prototype.track.call({}, { eventType: "wrong_this" }), notTrap);
  other.track({ eventType: "still_works" });
  await other.shutdown();
  const stored = await storedEvents(env, key.id);
  assert.deepEqual(stored.map((e) => e.event_type), ["still_works"]);
});

// ---- KNOWN SDK BUGS ------------------------------------------------------------------------

function revoked() {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
}

test("KNOWN SDK BUG revoked-proxy: a revoked Proxy gets a SegOpsError and beforeSend survives it", {
  todo: "src/wasm/mod.rs calls Array.isArray (js_sys, not `catch`) on app values; see docs/bad-input.md",
}, async () => {
  const key = await createSecretKey(env, "hostile bug revoked-proxy");
  const config = { apiUrl, apiKey: key.key };
  assert.throws(() => new SegOpsClient(revoked()), { name: "SegOpsError", code: "invalid_config" });
  const c = new SegOpsClient(config);
  assert.throws(() => c.track(revoked()), { name: "SegOpsError", code: "invalid_argument", field: "track" });
  assert.throws(() => c.track({ eventType: revoked() }), { name: "SegOpsError", field: "track.eventType" });
  let calls = 0;
  const hooked = new SegOpsClient({ ...config, beforeSend: (e) => (++calls === 1 ? revoked() : e) });
  hooked.track({ eventType: "first" }); // today: throws a TypeError, the event is lost
  hooked.track({ eventType: "second" }); // today: beforeSend is never called again
  await hooked.shutdown();
  await c.shutdown();
  assert.equal(calls, 2);
  const stored = await storedEvents(env, key.id);
  assert.deepEqual(stored.map((e) => e.event_type).sort(), ["first", "second"]);
});

test("KNOWN SDK BUG non-object-json: properties whose JSON is not an object never cost other events", {
  todo: "platform.js toJson checks typeof, not the JSON produced; page()/trackPageView() splice the text",
}, async () => {
  const key = await createSecretKey(env, "hostile bug non-object-json");
  const c = new SegOpsClient({ apiUrl, apiKey: key.key });
  for (let i = 0; i < 5; i++) c.track({ eventType: "good_before" });
  // Either refused at the call, or delivered: never accepted and then lost.
  const outcome = (f) => {
    try {
      f();
      return "accepted";
    } catch (e) {
      assert.equal(e.name, "SegOpsError");
      assert.equal(e.code, "invalid_argument");
      return "refused";
    }
  };
  const accepted = [
    outcome(() => c.page({ name: "poison", properties: new Date(0) })), // today: drops the whole batch
    outcome(() => c.track({ eventType: "boxed", properties: new String("x") })), // today: dropped by the server
    outcome(() => c.identify({ userId: "dated", traits: new Date(0) })),
  ].filter((o) => o === "accepted").length;
  for (let i = 0; i < 5; i++) c.track({ eventType: "good_after" });
  await c.shutdown();
  const s = c.stats();
  const stored = await storedEvents(env, key.id);
  assert.equal(stored.filter((e) => e.event_type.startsWith("good_")).length, 10, JSON.stringify(s.dropped));
  assert.equal(stored.length, 10 + accepted);
  assert.equal(s.droppedTotal, 0, JSON.stringify(s.dropped));
});

test("KNOWN SDK BUG config-keys-unreadable: a config whose keys cannot be read is invalid_config", {
  todo: "check_keys maps an unreadable config to invalid_argument with an empty field",
}, () => {
  const proxy = new Proxy({}, {
    ownKeys() {
      throw new Error("no keys");
    },
  });
  assert.throws(() => new SegOpsClient(proxy), { name: "SegOpsError", code: "invalid_config" });
});
