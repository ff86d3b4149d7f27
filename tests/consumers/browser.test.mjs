// The packed @segops/sdk in a browser (headless Chromium), with a public key made for the page's
// origin: in an app built by Vite, and in a plain page that imports the package's browser entry
// through an import map (no bundler). In each, the calls made right after construction reach
// the emulator. And a Vite server-side render, which gets the Node build.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { appScript, launch, project, run, serve, tool, tracksFrom } from "./support.mjs";

let browser;
before(async () => {
  browser = await launch();
}, { timeout: 60_000 });
after(() => browser && browser.close());

test("a Vite app that imports @segops/sdk builds, loads the .wasm and delivers its events", { timeout: 180_000 }, async () => {
  const app = await project("vite", {
    "package.json": JSON.stringify({ name: "consumer-vite", private: true, type: "module" }, null, 2),
    "index.html": `<!doctype html><html><head><title>Vite shop</title></head><body><h1>Vite shop</h1><script type="module" src="/main.js"></script></body></html>`,
    "main.js": appScript(`import { SegOpsClient } from "@segops/sdk";`),
  });
  try {
    const built = await run(process.execPath, [tool("vite/bin/vite.js"), "build", "--logLevel", "warn"], {
      cwd: app.dir,
      timeout: 120_000,
    });
    assert.equal(built.code, 0, `vite build failed:\n${built.stdout}${built.stderr}`);
    assert.doesNotMatch(built.stdout + built.stderr, /segops/i, "no warning about the package");
    const assets = await readdir(join(app.dir, "dist", "assets"));
    assert.ok(assets.some((f) => f.endsWith(".wasm")), `no .wasm emitted: ${assets.join(", ")}`);
    const server = await serve({ mounts: { "/": join(app.dir, "dist") } });
    try {
      await tracksFrom(browser, server, "/");
      const wasm = server.log.filter((r) => r.path.endsWith(".wasm"));
      assert.deepEqual(wasm.map((r) => r.status), [200], "the .wasm is fetched once");
    } finally {
      await server.close();
    }
  } finally {
    await app.remove();
  }
});

test("server-side rendering of a Vite app gets the Node build, where a pk_ client does nothing", { timeout: 180_000 }, async () => {
  const app = await project("vite-ssr", {
    "package.json": JSON.stringify({ name: "consumer-vite-ssr", private: true, type: "module" }, null, 2),
    // The app's module-scope client, as the page's code has it: rendered on the server too.
    "render.js": `import { SegOpsClient } from "@segops/sdk";
const client = new SegOpsClient({ apiUrl: "http://127.0.0.1:9", apiKey: "pk_live_ssr" });
export async function render() {
  client.track({ eventType: "rendered" });
  client.trackPageView();
  await client.ready;
  await client.flush();
  const s = client.stats();
  return "<p>" + [typeof SegOpsClient, s.sent, s.requests, JSON.stringify(s.dropped)].join(" ") + "</p>";
}
`,
    "server.mjs": `const touched = [];
for (const name of ["window", "document", "localStorage"]) {
  Object.defineProperty(globalThis, name, { configurable: true, get() { touched.push(name); return undefined; } });
}
const { render } = await import("./dist-ssr/render.js");
console.log(JSON.stringify({ html: await render(), touched, entry: import.meta.resolve("@segops/sdk") }));
`,
  });
  try {
    const built = await run(process.execPath, [tool("vite/bin/vite.js"), "build", "--ssr", "render.js", "--outDir", "dist-ssr", "--logLevel", "warn"], {
      cwd: app.dir,
      timeout: 120_000,
    });
    assert.equal(built.code, 0, `vite build --ssr failed:\n${built.stdout}${built.stderr}`);
    const r = await run(process.execPath, ["server.mjs"], { cwd: app.dir, timeout: 30_000 });
    assert.equal(r.code, 0, `rendering failed:\n${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, "", "a pk_ key outside a browser logs nothing");
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1, r.stdout);
    const out = JSON.parse(lines[0]);
    // nothing sent, nothing requested; the track() call is counted as dropped
    assert.equal(out.html, '<p>function 0 0 {"not_in_browser":1}</p>');
    assert.match(out.entry, /\/node\/index\.mjs$/);
    // constructing a client outside a browser checks `typeof window` (isBrowser); importing does not
    assert.ok(out.touched.every((name) => name === "window"), JSON.stringify(out.touched));
  } finally {
    await app.remove();
  }
});

test("a plain page imports the browser entry from the package folder and delivers its events", { timeout: 120_000 }, async () => {
  const app = await project("script");
  const pkg = join(app.dir, "node_modules", "@segops", "sdk");
  const page = `<!doctype html><html><head><title>Plain shop</title>
<script type="importmap">{ "imports": { "@segops/sdk": "/sdk/web/index.js" } }</script>
</head><body><h1>Plain shop</h1>
<script type="module">${appScript(`import { SegOpsClient } from "@segops/sdk";`)}</script></body></html>`;
  const server = await serve({ mounts: { "/sdk/": pkg }, pages: { "/": page } });
  try {
    await tracksFrom(browser, server, "/");
    const fetched = server.log.filter((r) => r.path.startsWith("/sdk/"));
    assert.ok(fetched.every((r) => r.status === 200), JSON.stringify(fetched));
    assert.deepEqual(
      fetched.map((r) => r.path).sort(),
      ["/sdk/web/engine.js", "/sdk/web/index.js", "/sdk/web/segops_sdk_bg.wasm"],
      "the browser loads the loader, the engine and the .wasm, nothing else",
    );
  } finally {
    await server.close();
    await app.remove();
  }
});
