// The packed @segops/sdk in apps built by webpack 5, esbuild and Rollup, each with its default
// setup and at most the one documented step: esbuild and Rollup leave
// `new URL("./segops_sdk_bg.wasm", import.meta.url)` alone, so the app copies the package's
// .wasm next to its bundle; webpack emits it itself. No build may warn about the package; the
// page, in Chromium, delivers its events.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { appScript, launch, project, run, serve, tracksFrom } from "./support.mjs";

let app, browser;
before(async () => {
  app = await project(
    "bundlers",
    {
      "package.json": JSON.stringify({ name: "consumer-bundlers", private: true, type: "module" }, null, 2),
      // webpack's default entry
      "src/index.js": appScript(`import { SegOpsClient } from "@segops/sdk";`),
      "rollup.config.mjs": `import { nodeResolve } from "@rollup/plugin-node-resolve";
export default { input: "src/index.js", output: { dir: "rollup-dist", format: "es" }, plugins: [nodeResolve()] };
`,
    },
    { deps: ["webpack", "webpack-cli", "esbuild", "rollup", "@rollup/plugin-node-resolve"] },
  );
  browser = await launch();
}, { timeout: 300_000 });
after(async () => {
  if (browser) await browser.close();
  if (app) await app.remove();
});

/** A file the app installed, such as `rollup/dist/bin/rollup`. */
const installed = (path) => join(app.dir, "node_modules", path);

const page = (script, type) => `<!doctype html><html><head><title>Bundled shop</title></head>
<body><h1>Bundled shop</h1><script ${type === "module" ? 'type="module" ' : ""}src="/${script}"></script></body></html>`;

/** Runs a build in the app's folder; fails on a non-zero exit or a word about the package. */
async function build(program, args) {
  const r = await run(program, args, { cwd: app.dir, timeout: 120_000 });
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 0, `${args.join(" ")} failed:\n${out}`);
  assert.doesNotMatch(out, /warn|segops|\(!\)/i, `the build warned:\n${out}`);
  return out;
}

/** The documented step for bundlers that leave the .wasm's URL alone. */
const copyWasm = (dist) => copyFile(installed("@segops/sdk/web/segops_sdk_bg.wasm"), join(app.dir, dist, "segops_sdk_bg.wasm"));

/** Serves `dist` with a page that loads `script`; the page's events must arrive. */
async function check(dist, script, type) {
  const server = await serve({ mounts: { "/": join(app.dir, dist) }, pages: { "/": page(script, type) } });
  try {
    await tracksFrom(browser, server, "/");
    const wasm = server.log.filter((r) => r.path.endsWith(".wasm"));
    assert.deepEqual(wasm.map((r) => r.status), [200], "the .wasm is fetched once");
  } finally {
    await server.close();
  }
}

test("webpack 5 (no config, production mode) emits the .wasm itself; the page delivers its events", { timeout: 180_000 }, async () => {
  // Only warnings and errors are printed: any mention of the package is one.
  await build(process.execPath, [installed("webpack/bin/webpack.js"), "--mode", "production", "--stats", "errors-warnings"]);
  const files = await readdir(join(app.dir, "dist"));
  assert.ok(files.some((f) => f.endsWith(".wasm")), `no .wasm emitted: ${files.join(", ")}`);
  await check("dist", "main.js", "classic");
});

test("esbuild (--bundle --format=esm) with the .wasm copied next to the bundle delivers its events", { timeout: 180_000 }, async () => {
  await build(installed(".bin/esbuild"), ["src/index.js", "--bundle", "--format=esm", "--minify", "--outdir=esbuild-dist"]);
  await copyWasm("esbuild-dist");
  await check("esbuild-dist", "index.js", "module");
});

test("Rollup (@rollup/plugin-node-resolve) with the .wasm copied next to the bundle delivers its events", { timeout: 180_000 }, async () => {
  await build(process.execPath, [installed("rollup/dist/bin/rollup"), "-c"]);
  await copyWasm("rollup-dist");
  await check("rollup-dist", "index.js", "module");
});
