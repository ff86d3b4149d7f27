// A Node app that installs the packed @segops/sdk: `import` and `require` both get the Node build,
// track with the secret key and shut down; the events reach the emulator. A bad config throws in
// the constructor; a pk_ key (a browser's client rendered on the server) does nothing at all. The
// signer from "@segops/sdk/server" signs exactly like the shared vectors. Importing touches no
// browser global.
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
console.log(JSON.stringify({
  touched,
  esm: Object.keys(main).sort(),
  server: Object.keys(server).sort(),
  cjs: Object.keys(cjs).sort(),
  cjsServer: Object.keys(cjsServer).sort(),
}));
`;

// The module is compiled synchronously at the first construction, so the config's mistakes throw
// there, in both module systems; \`ready\` is resolved at once.
const BAD_CONFIG = `
const { SegOpsClient } = require("@segops/sdk");
const out = {};
try {
  new SegOpsClient({ apiUrl: "not a url", apiKey: process.env.SEGOPS_TEST_SECRET_KEY });
  out.threw = false;
} catch (e) {
  out.threw = { name: e.name, code: e.code, field: e.field, isError: e instanceof Error };
}
const ok = new SegOpsClient({ apiUrl: process.env.SEGOPS_TEST_API_URL, apiKey: process.env.SEGOPS_TEST_SECRET_KEY });
let settled = false;
ok.ready.then(() => (settled = true));
setImmediate(() => {
  out.readyAtOnce = settled;
  ok.shutdown().then(() => console.log(JSON.stringify(out)));
});
`;

// A browser's client on a server (its module imported by server-side rendering): a pk_ key
// there records nothing, sends nothing and logs nothing. The emulator is reachable, so a request
// would be seen.
const PUBLIC_KEY = `
import { SegOpsClient } from "@segops/sdk";
const client = new SegOpsClient({ apiUrl: process.env.SEGOPS_TEST_API_URL, apiKey: process.env.SEGOPS_TEST_PUBLIC_KEY, debug: true });
client.track({ eventType: "consumer_node_pk", userId: "consumer-pk", properties: { run: process.argv[2] } });
client.identify({ userId: "consumer-pk" });
client.page({ name: "home" });
client.trackPageView();
await client.ready;
await client.flush();
await client.shutdown();
const s = client.stats();
console.log(JSON.stringify({ sent: s.sent, requests: s.requests, mints: s.mints, pending: s.pending, dropped: s.dropped }));
`;

let app;
before(async () => {
  app = await project("node", {
    "track.mjs": ESM,
    "track.cjs": CJS,
    "sign.mjs": SIGN_ESM,
    "sign.cjs": SIGN_CJS,
    "no-window.mjs": NO_WINDOW,
    "bad-config.cjs": BAD_CONFIG,
    "public-key.mjs": PUBLIC_KEY,
  });
}, { timeout: 120_000 });
after(() => app && app.remove());

async function script(file, ...args) {
  const r = await run(process.execPath, [file, ...args], { cwd: app.dir, timeout: 30_000 });
  assert.equal(r.code, 0, `node ${file} failed:\n${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

/** Runs `file` and returns everything it printed, stdout and stderr, as lines. */
async function output(file, ...args) {
  const r = await run(process.execPath, [file, ...args], { cwd: app.dir, timeout: 30_000 });
  assert.equal(r.code, 0, `node ${file} failed:\n${r.stdout}${r.stderr}`);
  return { lines: r.stdout.trim().split("\n"), stderr: r.stderr };
}

for (const [file, entry, user] of [
  ["track.mjs", join("node", "index.mjs"), "consumer-esm"],
  ["track.cjs", join("node", "index.cjs"), "consumer-cjs"],
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

test("a bad config throws in the constructor; a good one is ready at once", { timeout: 30_000 }, async () => {
  const out = await script("bad-config.cjs");
  assert.deepEqual(out.threw, { name: "SegOpsError", code: "invalid_config", field: "apiUrl", isError: true });
  assert.equal(out.readyAtOnce, true);
});

test("a pk_ key in Node records nothing, sends nothing, logs nothing", { timeout: 30_000 }, async () => {
  const id = runId("consumer-node-pk");
  const { lines, stderr } = await output("public-key.mjs", id);
  assert.equal(stderr, "");
  assert.equal(lines.length, 1, "only the script's own line, even with debug: true:\n" + lines.join("\n"));
  const out = JSON.parse(lines[0]);
  // track, identify and page are counted as dropped; trackPageView does nothing outside a browser
  assert.deepEqual(out, { sent: 0, requests: 0, mints: 0, pending: 0, dropped: { not_in_browser: 3 } });
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await storedEvents((e) => e.properties && e.properties.run === id), []);
});

test("importing every entry in Node reads no browser global and throws nothing", { timeout: 30_000 }, async () => {
  const out = await script("no-window.mjs");
  assert.deepEqual(out.touched, []);
  assert.deepEqual(out.esm, ["SegOpsClient", "signUserId"], "no init(), initSync() or default export any more");
  assert.deepEqual(out.server, ["signUserId"]);
  assert.deepEqual(out.cjs, ["SegOpsClient", "signUserId"]);
  assert.deepEqual(out.cjsServer, ["signUserId"]);
});
