// TypeScript apps against the packed @segops/sdk, with `tsc --strict` (the pinned TypeScript in
// the tools folder) and no skipLibCheck, so the package's own .d.ts files are checked too:
// a browser app (bundler resolution), a Node backend in ESM and in CommonJS (nodenext), and a
// file of mistakes that must each be an error.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { project, run, tool } from "./support.mjs";

const FIXTURES = new URL("./fixtures/typescript/", import.meta.url);
const BUNDLER = ["--module", "esnext", "--moduleResolution", "bundler", "--target", "es2022", "--lib", "es2022,dom"];
const NODENEXT = ["--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022"];

let app;
before(async () => {
  const files = {};
  for (const name of await readdir(FIXTURES)) files[name] = await readFile(new URL(name, FIXTURES), "utf8");
  app = await project("typescript", files);
}, { timeout: 120_000 });
after(() => app && app.remove());

function tsc(flags, files) {
  return run(process.execPath, [tool("typescript/bin/tsc"), "--strict", "--noEmit", "--pretty", "false", "--types", "", ...flags, ...files], {
    cwd: app.dir,
    timeout: 120_000,
  });
}

/** tsc's errors in `file`: [{ line, message }], continuation lines joined to their error. */
function errorsIn(output, file) {
  const errors = [];
  let last = null;
  for (const line of output.split("\n")) {
    const m = /^(\S+)\((\d+),\d+\): error (TS\d+: .*)$/.exec(line);
    if (m) {
      last = m[1] === file ? { line: Number(m[2]), message: m[3] } : null;
      if (last) errors.push(last);
    } else if (last && /^\s+\S/.test(line)) {
      last.message += " " + line.trim();
    } else {
      last = null;
    }
  }
  return errors;
}

test("a browser app using every call, the config, stats() and the error codes type-checks", { timeout: 120_000 }, async () => {
  const r = await tsc(BUNDLER, ["app.ts"]);
  assert.equal(r.code, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});

test("the browser app uses every member of SegOpsClient, SegOpsConfig and SegOpsStats", { timeout: 30_000 }, async () => {
  const dts = await readFile(join(app.dir, "node_modules", "@segops", "sdk", "index.d.ts"), "utf8");
  const source = await readFile(new URL("app.ts", FIXTURES), "utf8");
  for (const [kind, name] of [["class", "SegOpsClient"], ["interface", "SegOpsConfig"], ["interface", "SegOpsStats"]]) {
    const body = new RegExp(`^export (?:declare )?${kind} ${name} \\{\\n([\\s\\S]*?)^\\}`, "m").exec(dts);
    assert.ok(body, `no ${name} in the package's types`);
    const members = [...body[1].matchAll(/^ {2}(?:readonly )?([A-Za-z_$][\w$]*)\??[(:]/gm)]
      .map((m) => m[1])
      .filter((m) => m !== "constructor");
    assert.ok(members.length > 5, `${name}: ${members.join()}`);
    const unused = members.filter((m) => !new RegExp(`\\b${m}\\b`).test(source));
    assert.deepEqual(unused, [], `${name} members that fixtures/typescript/app.ts does not use yet`);
  }
});

test("a Node backend type-checks in ESM and CommonJS, with the signer from /server", { timeout: 120_000 }, async () => {
  const r = await tsc(NODENEXT, ["server.mts", "server.cts"]);
  assert.equal(r.code, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});

test("mistakes fail to type-check, each where it is", { timeout: 120_000 }, async () => {
  const source = await readFile(new URL("wrong.ts", FIXTURES), "utf8");
  const expected = source
    .split("\n")
    .map((text, i) => ({ line: i + 1, want: /^(?!\s*\/\/).*\/\/ error: (.*)$/.exec(text)?.[1] }))
    .filter((e) => e.want);
  assert.ok(expected.length >= 8);
  const r = await tsc(BUNDLER, ["wrong.ts"]);
  const out = r.stdout + r.stderr;
  assert.notEqual(r.code, 0, "tsc accepted wrong.ts:\n" + out);
  const errors = errorsIn(out, "wrong.ts");
  for (const { line, want } of expected) {
    const here = errors.filter((e) => e.line === line);
    assert.ok(here.length > 0, `no error on line ${line} (want "${want}"):\n${out}`);
    assert.ok(here.some((e) => e.message.includes(want)), `line ${line}: want "${want}", got:\n${here.map((e) => e.message).join("\n")}`);
  }
  const unexpected = errors.filter((e) => !expected.some((x) => x.line === e.line));
  assert.deepEqual(unexpected, [], "errors on lines without a mark");
  // the examples from the issue, by their text
  assert.match(out, /flushAt|Type 'string' is not assignable to type 'number'/);
  assert.match(out, /'event_type' does not exist in type 'TrackEvent'/);
});

test("the package's type declarations have no `any`", { timeout: 30_000 }, async () => {
  const root = join(app.dir, "node_modules", "@segops", "sdk");
  const found = [];
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.d\.c?ts$/.test(entry.name)) found.push(path);
    }
  };
  await walk(root);
  assert.deepEqual(
    found.map((path) => path.slice(root.length + 1)).sort(),
    ["index.d.cts", "index.d.ts", "server.d.cts", "server.d.ts"],
  );
  for (const path of found) {
    const code = (await readFile(path, "utf8")).replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\bany\b/, path.slice(root.length));
  }
});
