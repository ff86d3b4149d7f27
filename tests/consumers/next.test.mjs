// A Next.js 16 App Router app (fixtures/next/) with the packed @segops/sdk: lib/segops.ts creates
// the client at module scope, which the root layout's client component uses for a page view at
// every navigation, and a route handler tracks with the secret key on the server. Built with
// Turbopack (the default) and with webpack, each build started with `next start`: a visit in
// Chromium delivers its page views, the route handler delivers its event, and neither the builds
// nor the server nor the page print an error or a word about the package.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { api, fixture, freePort, launch, project, publicKey, run, runId, start, storedExactly, until, watchedPage } from "./support.mjs";

let app, port, origin, browser;
before(async () => {
  // The public key must name the server's origin, so the port comes first.
  port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  app = await project("next", await fixture("next"), {
    deps: ["next", "react", "react-dom", "typescript", "@types/react", "@types/react-dom", "@types/node"],
  });
  browser = await launch();
}, { timeout: 300_000 });
after(async () => {
  if (browser) await browser.close();
  if (app) await app.remove();
});

const next = (...args) => [join(app.dir, "node_modules", "next", "dist", "bin", "next"), ...args];
const NEXT_ENV = { NEXT_TELEMETRY_DISABLED: "1" };

/** Lines of Next.js output that report an error (Next marks them ⨯). */
const errorLines = (text) => text.split("\n").filter((l) => /⨯|\berror\b|unhandled|uncaught/i.test(l));

for (const [bundler, flags, banner] of [
  ["Turbopack", [], /Next\.js 16\.\d+\.\d+ \(Turbopack\)/],
  ["webpack", ["--webpack"], /Next\.js 16\.\d+\.\d+ \(webpack\)/],
]) {
  test(`next build (${bundler}), next start: page views from the browser and an event from a route handler arrive`, { timeout: 300_000 }, async () => {
    // A key per build, so that each build's events are told apart by their key_id.
    const { key, id } = await publicKey(origin);
    const built = await run(process.execPath, next("build", ...flags), {
      cwd: app.dir,
      timeout: 240_000,
      env: { ...NEXT_ENV, NEXT_PUBLIC_SEGOPS_API_URL: api, NEXT_PUBLIC_SEGOPS_KEY: key },
    });
    const buildOutput = built.stdout + built.stderr;
    assert.equal(built.code, 0, `next build failed:\n${buildOutput}`);
    assert.match(buildOutput, banner);
    // The prerender runs the module-scope client in Node too: it must stay silent.
    assert.doesNotMatch(buildOutput, /segops|wasm|top-?level ?await|Compiled with warnings/i, "the build says nothing about the package");
    assert.deepEqual(errorLines(buildOutput), []);

    const server = start(process.execPath, next("start", "--port", String(port), "--hostname", "127.0.0.1"), {
      cwd: app.dir,
      env: NEXT_ENV,
    });
    const context = await browser.newContext();
    try {
      await until("next start", () => fetch(origin + "/").then((r) => r.ok, () => false), 30_000).catch((e) => {
        throw new Error(`${e.message}; its output:\n${server.output()}`);
      });
      const { page, errors, lines } = await watchedPage(context);
      await page.goto(origin + "/");
      await page.waitForSelector("#about");
      // A client-side navigation: a second page view, from the same client.
      await page.click("#about");
      await page.waitForSelector("#about-title");
      const views = await storedExactly("page views", 2, (e) => e.key_id === id);
      assert.ok(views.every((e) => e.event_type === "page_viewed"), JSON.stringify(views.map((e) => e.event_type)));
      assert.deepEqual(views.map((e) => e.context.page.path).sort(), ["/", "/about"]);
      assert.ok(views.every((e) => e.context.userAgent && e.anonymous_id && !e.user_id), "anonymous visitors, from a browser");
      assert.deepEqual(errors, [], "no console error:\n" + lines.join("\n"));

      // The route handler, bundled by the same build, tracks with the secret key and flushes.
      const runTag = runId("consumer-next");
      const r = await fetch(origin + "/api/track", { method: "POST", body: JSON.stringify({ run: runTag }) });
      const body = await r.text();
      assert.equal(r.status, 200, body);
      assert.equal(JSON.parse(body).stats.sent, 1, body);
      const [stored] = await storedExactly("route handler events", 1, (e) => e.properties && e.properties.run === runTag);
      assert.equal(stored.event_type, "order_completed");
      assert.equal(stored.user_id, "next-server");
      assert.equal(stored.context.runtime.name, "node");
    } finally {
      await context.close();
      await server.stop();
    }
    const serverOutput = server.output();
    assert.deepEqual(errorLines(serverOutput), [], serverOutput);
    assert.doesNotMatch(serverOutput, /segops|wasm/i, serverOutput);
  });
}
