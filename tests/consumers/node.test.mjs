// A Node app that installs the packed @segops/sdk: `import` and `require` both get the Node build,
// track with the secret key and shut down; the events reach the emulator. The signer from
// "@segops/sdk/server" signs exactly like the shared vectors. Importing touches no browser global.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { project, run, runId, storedEvents, until } from "./support.mjs";

const vectors = JSON.parse(readFileSync(new URL("../vectors/sign_user_id.json", import.meta.url), "utf8")).vectors;

// Each script tracks 5 events for `run` (argv[2]), awaits shutdown() and prints what happened.
const ESM = `
import { SegOpsClient } from "@segops/sdk";
const run = process.argv[2];
const client = new SegOpsClient({ apiUrl: process.env.SEGOPS_TEST_API_URL, apiKey: process.env.SEGOPS_TEST_SECRET_KEY });
for (let i = 0; i < 5; i++) client.track({ eventType: "consumer_node", userId: "consumer-esm", properties: { run, i } });
await client.shutdown();
console.log(JSON.stringify({ resolved: import.meta.resolve("@segops/sdk"), stats: client.stats() }));
`;

const CJS = `
const { SegOpsClient } = require("@segops/sdk");
const run = process.argv[2];
const client = new SegOpsClient({ apiUrl: process.env.SEGOPS_TEST_API_URL, apiKey: process.env.SEGOPS_TEST_SECRET_KEY });
for (let i = 0; i < 5; i++) client.track({ eventType: "consumer_node", userId: "consumer-cjs", properties: { run, i } });
client.shutdown().then(() => {
  console.log(JSON.stringify({ resolved: require.resolve("@segops/sdk"), stats: client.stats() }));
});
`;

// Signs every vector with both module systems and prints the results.
const SIGN_ESM = `
import { signUserId } from "@segops/sdk/server";
const vectors = JSON.parse(process.argv[2]);
console.log(JSON.stringify(vectors.map((v) => signUserId({ secret: v.hmac_secret, userId: v.user_id, now: v.user_id_ts * 1000 + 999 }))));
`;
const SIGN_CJS = `
const { signUserId } = require("@segops/sdk/server");
const vectors = JSON.parse(process.argv[2]);
console.log(JSON.stringify(vectors.map((v) => signUserId({ secret: v.hmac_secret, userId: v.user_id, now: new Date(v.user_id_ts * 1000) }))));
`;

// Imports every entry with a trap on \`window\`, \`document\` and \`self\`: none may be read.
const NO_WINDOW = `
const touched = [];
for (const name of ["window", "document", "self", "navigator", "localStorage"]) {
  const had = Object.getOwnPropertyDescriptor(globalThis, name);
  Object.defineProperty(globalThis, name, {
    configurable: true,
    get() { touched.push(name); return had && (had.get ? had.get.call(globalThis) : had.value); },
  });
}
const main = await import("@segops/sdk");
const server = await import("@segops/sdk/server");
const { createRequire } = await import("node:module");
const req = createRequire(import.meta.url);
const cjs = req("@segops/sdk");
const cjsServer = req("@segops/sdk/server");
await main.init();
main.initSync();
console.log(JSON.stringify({
  touched,
  esm: Object.keys(main).sort(),
  server: Object.keys(server).sort(),
  cjs: Object.keys(cjs).sort(),
  cjsServer: Object.keys(cjsServer).sort(),
}));
`;

let app;
before(async () => {
  app = await project("node", {
    "track.mjs": ESM,
    "track.cjs": CJS,
    "sign.mjs": SIGN_ESM,
    "sign.cjs": SIGN_CJS,
    "no-window.mjs": NO_WINDOW,
  });
}, { timeout: 120_000 });
after(() => app && app.remove());

async function script(file, ...args) {
  const r = await run(process.execPath, [file, ...args], { cwd: app.dir, timeout: 30_000 });
  assert.equal(r.code, 0, `node ${file} failed:\n${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

for (const [file, entry, user] of [
  ["track.mjs", join("node", "index.mjs"), "consumer-esm"],
  ["track.cjs", join("node", "segops_sdk.cjs"), "consumer-cjs"],
]) {
  test(`${file}: the Node build tracks with the secret key and the events reach the API`, { timeout: 60_000 }, async () => {
    const id = runId("consumer-node");
    const out = await script(file, id);
    assert.ok(out.resolved.replace("file://", "").endsWith(entry), `resolved to ${out.resolved}`);
    assert.equal(out.stats.sent, 5);
    assert.equal(out.stats.pending, 0);
    const stored = await until("five stored events", async () => {
      const found = await storedEvents((e) => e.properties && e.properties.run === id);
      return found.length >= 5 && found;
    });
    assert.equal(stored.length, 5);
    assert.ok(stored.every((e) => e.user_id === user && e.event_type === "consumer_node"));
    assert.equal(stored[0].context.library.name, "@segops/sdk");
    assert.equal(stored[0].context.runtime.name, "node");
  });
}

for (const file of ["sign.mjs", "sign.cjs"]) {
  test(`${file}: signUserId from @segops/sdk/server signs like the shared vectors`, { timeout: 30_000 }, async () => {
    const out = await script(file, JSON.stringify(vectors));
    assert.deepEqual(
      out,
      vectors.map((v) => ({ userId: v.user_id, userIdSig: v.user_id_sig, userIdTs: v.user_id_ts })),
    );
  });
}

test("importing every entry in Node reads no browser global and throws nothing", { timeout: 30_000 }, async () => {
  const out = await script("no-window.mjs");
  assert.deepEqual(out.touched, []);
  for (const name of ["SegOpsClient", "default", "init", "initSync", "signUserId"]) assert.ok(out.esm.includes(name), out.esm.join());
  assert.deepEqual(out.server, ["signUserId"]);
  assert.ok(out.cjs.includes("SegOpsClient"), out.cjs.join());
  assert.deepEqual(out.cjsServer, ["signUserId"]);
});
