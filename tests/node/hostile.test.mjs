// The hostile-values table (tests/hostile/values.js) against the built Node package: every
// hostile JS value at every entry point returns normally or throws a documented SegOpsError
// naming the argument, never a wasm trap; the clients keep working and the emulator holds each
// accepted event exactly once. The table is printed as it runs (entry point, value, outcome).
// The last three tests hold the fixes of the SDK bugs the table found (docs/bad-input.md#known-sdk-bugs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { runHostileTable, storedEvents, createSecretKey } from "../hostile/values.js";

const require = createRequire(import.meta.url);
const apiUrl = process.env.SEGOPS_TEST_API_URL;
const pkg = process.env.SEGOPS_PKG_NODE;
if (!apiUrl || !pkg) throw new Error("run through `cargo xtask test` (SEGOPS_TEST_API_URL, SEGOPS_PKG_NODE)");
const { SegOpsClient } = require(pkg + "/index.cjs");
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

test("a detached method or a foreign `this` throws a plain Error, not a trap, and the client keeps working", async () => {
  const key = await createSecretKey(env, "hostile detached");
  const config = { apiUrl, apiKey: key.key };
  const other = new SegOpsClient(config);
  const notTrap = (e) => e instanceof Error && !(e instanceof WebAssembly.RuntimeError) && e.name !== "SegOpsError";
  const detached = other.track;
  assert.throws(() => detached({ eventType: "detached" }), notTrap);
  assert.throws(() => SegOpsClient.prototype.track.call({}, { eventType: "wrong_this" }), notTrap);
  assert.throws(() => SegOpsClient.prototype.stats.call({}), notTrap);
  other.track({ eventType: "still_works" });
  await other.shutdown();
  const stored = await storedEvents(env, key.id);
  assert.deepEqual(stored.map((e) => e.event_type), ["still_works"]);
});

// ---- SDK bugs the table found, fixed -------------------------------------------------------

function revoked() {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
}

test("revoked-proxy: a revoked Proxy gets a SegOpsError and beforeSend survives it", async () => {
  const key = await createSecretKey(env, "hostile revoked-proxy");
  const config = { apiUrl, apiKey: key.key };
  assert.throws(() => new SegOpsClient(revoked()), { name: "SegOpsError", code: "invalid_config", field: "(config)" });
  assert.throws(() => new SegOpsClient({ ...config, aiProviders: revoked() }), {
    name: "SegOpsError", code: "invalid_config", field: "aiProviders",
  });
  const c = new SegOpsClient(config);
  assert.throws(() => c.track(revoked()), { name: "SegOpsError", code: "invalid_argument", field: "track" });
  assert.throws(() => c.track({ eventType: revoked() }), {
    name: "SegOpsError", code: "invalid_argument", field: "track.eventType",
  });
  let calls = 0;
  const hooked = new SegOpsClient({ ...config, beforeSend: (e) => (++calls === 1 ? revoked() : e) });
  hooked.track({ eventType: "first" }); // before 7c0dca3: threw a TypeError, the event was lost
  hooked.track({ eventType: "second" }); // before 7c0dca3: beforeSend was never called again
  await hooked.shutdown();
  await c.shutdown();
  assert.equal(calls, 2);
  assert.equal(hooked.stats().beforeSendErrors, 1);
  const stored = await storedEvents(env, key.id);
  assert.deepEqual(stored.map((e) => e.event_type).sort(), ["first", "second"]);
});

test("non-object-json: properties or traits whose JSON is not an object are refused and cost no other event", async () => {
  const key = await createSecretKey(env, "hostile non-object-json");
  const c = new SegOpsClient({ apiUrl, apiKey: key.key });
  for (let i = 0; i < 5; i++) c.track({ eventType: "good_before" });
  const refused = (field) => ({ name: "SegOpsError", code: "invalid_argument", field });
  // Before 7c0dca3 all three returned normally: the page() event made the batch malformed JSON
  // (every event in it dropped), the other two were refused by the server and dropped.
  assert.throws(() => c.page({ name: "poison", properties: new Date(0) }), refused("page.properties"));
  assert.throws(() => c.track({ eventType: "boxed", properties: new String("x") }), refused("track.properties"));
  assert.throws(() => c.identify({ userId: "dated", traits: new Date(0) }), refused("identify.traits"));
  assert.throws(() => c.track({ eventType: "to_json", properties: { toJSON: () => "text" } }), refused("track.properties"));
  for (let i = 0; i < 5; i++) c.track({ eventType: "good_after" });
  await c.shutdown();
  const s = c.stats();
  assert.equal(s.droppedTotal, 0, JSON.stringify(s.dropped));
  const stored = await storedEvents(env, key.id);
  assert.deepEqual(stored.map((e) => e.event_type).sort(), [...Array(5).fill("good_after"), ...Array(5).fill("good_before")]);
});

test("config-keys-unreadable: a config whose keys cannot be read is invalid_config", () => {
  const noKeys = new Proxy({}, {
    ownKeys() {
      throw new Error("no keys");
    },
  });
  // Before 7c0dca3: invalid_argument with an empty field.
  assert.throws(() => new SegOpsClient(noKeys), { name: "SegOpsError", code: "invalid_config", field: "(config)" });
});
