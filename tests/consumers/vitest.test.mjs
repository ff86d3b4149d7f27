// An app's unit test under Vitest with jsdom, with no Vitest config: the test imports the app's
// analytics module, which creates the client at module scope (as the app's pages do) and exports
// a helper. The test runs and passes, and the SDK prints nothing into it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { project, run } from "./support.mjs";

const ANALYTICS = `import { SegOpsClient } from "@segops/sdk";

// Nothing listens on port 9: a test that sent something would fail quietly, not reach anything.
export const segops = new SegOpsClient({ apiUrl: "http://127.0.0.1:9", apiKey: "pk_live_test" });

export function trackSignup(plan) {
  segops.track({ eventType: "signed_up", properties: { plan } });
}
`;

const TEST = `import { expect, test, vi } from "vitest";
import { segops, trackSignup } from "./analytics.js";

test("trackSignup tracks signed_up with the plan", () => {
  const track = vi.spyOn(segops, "track");
  trackSignup("pro");
  expect(track).toHaveBeenCalledWith({ eventType: "signed_up", properties: { plan: "pro" } });
});

test("the page has a DOM (jsdom) and the client takes calls", () => {
  expect(document.title).toBe("");
  expect(() => segops.page({ name: "home" })).not.toThrow();
  expect(segops.consent).toBe("granted");
});
`;

let app;
before(async () => {
  app = await project(
    "vitest",
    {
      "package.json": JSON.stringify(
        { name: "consumer-vitest", private: true, type: "module", scripts: { test: "vitest run --environment jsdom" } },
        null,
        2,
      ),
      "src/analytics.js": ANALYTICS,
      "src/analytics.test.js": TEST,
    },
    { deps: ["vitest", "jsdom"] },
  );
}, { timeout: 300_000 });
after(() => app && app.remove());

test("vitest --environment jsdom runs an app test that imports the app's analytics module", { timeout: 120_000 }, async () => {
  const r = await run(process.execPath, [join(app.dir, "node_modules", "vitest", "vitest.mjs"), "run", "--environment", "jsdom"], {
    cwd: app.dir,
    timeout: 100_000,
    env: { NO_COLOR: "1", CI: "1" },
  });
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 0, `vitest failed:\n${out}`);
  assert.match(out, /Tests\s+2 passed \(2\)/, out);
  // vitest shows what a test printed as "stdout | file" / "stderr | file"; the SDK logs with "SegOps:"
  assert.doesNotMatch(out, /SegOps:|stdout \||stderr \||\bError\b/, `something printed in the test:\n${out}`);
});
