// @segops/sdk/server's signUserId, from the Node build: it signs exactly as the emulator
// verifies (shared vectors), and a fresh signature mints a session for a key that requires one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const api = process.env.SEGOPS_TEST_API_URL;
const pkg = process.env.SEGOPS_PKG_NODE;
if (!api || !pkg) throw new Error("run through `cargo xtask test` (SEGOPS_TEST_API_URL, SEGOPS_PKG_NODE)");
const { signUserId } = require(pkg + "/index.cjs");

test("signUserId matches the shared vectors", () => {
  const { vectors } = JSON.parse(readFileSync(new URL("../vectors/sign_user_id.json", import.meta.url), "utf8"));
  for (const v of vectors) {
    const out = signUserId({ secret: v.hmac_secret, userId: v.user_id, now: v.user_id_ts * 1000 + 999 });
    assert.deepEqual(out, { userId: v.user_id, userIdSig: v.user_id_sig, userIdTs: v.user_id_ts });
  }
  const now = new Date(1700000000000);
  assert.equal(signUserId({ secret: "hs_test_secret", userId: "alice", now }).userIdTs, 1700000000);
});

test("signUserId refuses bad input with typed errors naming the field", () => {
  const cases = [
    [{ userId: "a" }, "signUserId.secret"],
    [{ secret: "s" }, "signUserId.userId"],
    [{ secret: "s", userId: "" }, "signUserId.userId"],
    [{ secret: "s", userId: "a", now: "today" }, "signUserId.now"],
    [{ secret: "s", userId: "a", extra: 1 }, "signUserId.extra"],
  ];
  for (const [args, field] of cases) {
    assert.throws(() => signUserId(args), (e) => e.name === "SegOpsError" && e.code === "invalid_argument" && e.field === field);
  }
  assert.throws(() => signUserId("alice"), (e) => e.code === "invalid_argument");
});

test("a signature from signUserId mints a session the emulator accepts", async () => {
  const login = await fetch(api + "/api/auth/login/", {
    method: "POST",
    body: JSON.stringify({ email: process.env.SEGOPS_TEST_OWNER_EMAIL, password: process.env.SEGOPS_TEST_OWNER_PASSWORD }),
  }).then((r) => r.json());
  const origin = "https://shop.node-test.example";
  const created = await fetch(api + "/api/auth/api-keys/", {
    method: "POST",
    headers: { authorization: "Bearer " + login.token },
    body: JSON.stringify({ name: "signed", kind: "public", allowed_origins: [origin], require_signed_user_id: true }),
  }).then((r) => r.json());
  const mint = (body) =>
    fetch(api + "/api/auth/session/", {
      method: "POST",
      headers: { authorization: "ApiKey " + created.key, origin },
      body: JSON.stringify(body),
    });
  const signed = signUserId({ secret: created.hmac_secret, userId: "node-alice" });
  const ok = await mint({ user_id: signed.userId, user_id_sig: signed.userIdSig, user_id_ts: signed.userIdTs });
  assert.equal(ok.status, 200);
  const session = await ok.json();
  assert.equal(session.uid, "node-alice");
  const other = signUserId({ secret: created.hmac_secret, userId: "node-bob" });
  const wrong = await mint({ user_id: "node-alice", user_id_sig: other.userIdSig, user_id_ts: other.userIdTs });
  assert.equal(wrong.status, 403);
  assert.equal((await wrong.json()).code, "signature_mismatch");
});
