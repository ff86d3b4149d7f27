// The packed @segops/sdk in a browser (headless Chromium), with a public key made for the page's
// origin: in an app built by Vite, in a plain page that imports the package's browser entry
// through an import map (no bundler), and with the .wasm served from a custom URL through
// "@segops/sdk/web". In each, the tracked events reach the emulator. And a Vite server-side
// render, which gets the Node build.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { api, createPublicKey, launch, project, resultOf, run, runId, serve, storedEvents, tool, until } from "./support.mjs";

// The page's script: a client with the key and ids from the URL, four events, flush, then
// `window.result` (or `window.failure`). `importLine` is how the page gets the SDK, `before`
// what it runs first.
const pageScript = (importLine, before = "") => `${importLine}
try {
  const params = new URLSearchParams(location.search);
  ${before}
  const client = new SegOpsClient({
    apiUrl: params.get("api"),
    apiKey: params.get("key"),
    getUser: () => ({ anonymousId: params.get("uid") }),
  });
  for (let i = 0; i < 3; i++) client.track({ eventType: "consumer_browser", properties: { run: params.get("run"), i } });
  client.page({ name: "consumer" });
  await client.flush();
  window.result = { stats: client.stats(), anonymousId: client.anonymousId };
} catch (e) {
  window.failure = { error: String((e && e.stack) || e) };
}
`;

let browser;
before(async () => {
  browser = await launch();
}, { timeout: 60_000 });
after(() => browser && browser.close());

/** Loads `path` from `server` with a fresh key and ids; checks the result and the stored events. */
async function tracksFrom(server, path) {
  const key = await createPublicKey(server.origin);
  const uid = runId("consumer-browser");
  const query = new URLSearchParams({ api, key, uid, run: uid });
  const result = await resultOf(browser, `${server.origin}${path}?${query}`);
  assert.match(result.anonymousId, /^[0-9a-f-]{36}$/, "the visitor's own anonymous id (localStorage)");
  assert.equal(result.stats.recorded, 4);
  assert.equal(result.stats.sent, 4, JSON.stringify(result.stats));
  assert.equal(result.stats.pending, 0);
  const stored = await until("four stored events", async () => {
    const found = await storedEvents((e) => e.anonymous_id === uid);
    return found.length >= 4 && found;
  });
  assert.equal(stored.length, 4);
  assert.deepEqual(stored.map((e) => e.event_type).sort(), ["consumer_browser", "consumer_browser", "consumer_browser", "page_viewed"]);
  assert.equal(stored[0].context.library.name, "@segops/sdk");
  assert.ok(stored[0].context.userAgent, "sent from a browser");
  return stored;
}

test("a Vite app that imports @segops/sdk builds, loads the .wasm and delivers its events", { timeout: 180_000 }, async () => {
  const app = await project("vite", {
    "package.json": JSON.stringify({ name: "consumer-vite", private: true, type: "module" }, null, 2),
    "index.html": `<!doctype html><html><head><title>Vite shop</title></head><body><h1>Vite shop</h1><script type="module" src="/main.js"></script></body></html>`,
    "main.js": pageScript(`import { SegOpsClient } from "@segops/sdk";`),
  });
  try {
    const built = await run(process.execPath, [tool("vite/bin/vite.js"), "build", "--logLevel", "warn"], {
      cwd: app.dir,
      timeout: 120_000,
    });
    assert.equal(built.code, 0, `vite build failed:\n${built.stdout}${built.stderr}`);
    const assets = await readdir(join(app.dir, "dist", "assets"));
    assert.ok(assets.some((f) => f.endsWith(".wasm")), `no .wasm emitted: ${assets.join(", ")}`);
    const server = await serve({ mounts: { "/": join(app.dir, "dist") } });
    try {
      await tracksFrom(server, "/");
      const wasm = server.log.filter((r) => r.path.endsWith(".wasm"));
      assert.deepEqual(wasm.map((r) => r.status), [200], "the .wasm is fetched once");
    } finally {
      await server.close();
    }
  } finally {
    await app.remove();
  }
});

test("server-side rendering of a Vite app imports the Node build without touching window", { timeout: 180_000 }, async () => {
  const app = await project("vite-ssr", {
    "package.json": JSON.stringify({ name: "consumer-vite-ssr", private: true, type: "module" }, null, 2),
    "render.js": `import { SegOpsClient, init } from "@segops/sdk";
export async function render() {
  await init();
  const client = new SegOpsClient({ apiUrl: "https://api.segops.test", apiKey: "pk_live_ssr" });
  return "<p>" + typeof SegOpsClient + " " + client.anonymousId.length + "</p>";
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
    const out = JSON.parse(r.stdout.trim().split("\n").pop());
    assert.equal(out.html, "<p>function 36</p>");
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
<script type="module">${pageScript(`import { SegOpsClient } from "@segops/sdk";`)}</script></body></html>`;
  const server = await serve({ mounts: { "/sdk/": pkg }, pages: { "/": page } });
  try {
    await tracksFrom(server, "/");
    const fetched = server.log.filter((r) => r.path.startsWith("/sdk/"));
    assert.ok(fetched.every((r) => r.status === 200), JSON.stringify(fetched));
    assert.deepEqual(
      fetched.map((r) => r.path).sort(),
      ["/sdk/web/index.js", "/sdk/web/segops_sdk.js", "/sdk/web/segops_sdk_bg.wasm"],
      "the browser loads the entry, the glue and the .wasm, nothing else",
    );
  } finally {
    await server.close();
    await app.remove();
  }
});

test("@segops/sdk/web loads the .wasm from a custom URL with init()", { timeout: 120_000 }, async () => {
  const app = await project("custom-url");
  const pkg = join(app.dir, "node_modules", "@segops", "sdk");
  const page = `<!doctype html><html><head><title>CDN shop</title>
<script type="importmap">{ "imports": { "@segops/sdk/web": "/sdk/web/segops_sdk.js" } }</script>
</head><body><h1>CDN shop</h1>
<script type="module">${pageScript(
    `import init, { SegOpsClient } from "@segops/sdk/web";`,
    `await init({ module_or_path: "/cdn/segops.wasm" });`,
  )}</script></body></html>`;
  const server = await serve({ mounts: { "/sdk/": pkg, "/cdn/segops.wasm": join(pkg, "web", "segops_sdk_bg.wasm") }, pages: { "/": page } });
  try {
    await tracksFrom(server, "/");
    const wasm = server.log.filter((r) => r.path.endsWith(".wasm")).map((r) => r.path);
    assert.deepEqual(wasm, ["/cdn/segops.wasm"]);
  } finally {
    await server.close();
    await app.remove();
  }
});
