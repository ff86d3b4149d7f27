// The ecosystem's checks of a package, on the packed tarball as npm would publish it: publint
// (package.json fields, exports, files) and Are The Types Wrong (the types every resolution
// mode finds for every entry). "./web" is ESM-only by design (the README says so), so the two
// findings that follow from that, and only those, are accepted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { run, tarball, tool } from "./support.mjs";

test("publint finds nothing to say about the tarball, not even a suggestion", { timeout: 60_000 }, async () => {
  const r = await run(process.execPath, [tool("publint/src/cli.js"), "run", tarball, "--level", "suggestion", "--strict"], { timeout: 50_000 });
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 0, out);
  assert.match(out, /All good!/, out);
});

test("attw: every entry has the right types in every resolution mode, but './web' for CommonJS", { timeout: 60_000 }, async () => {
  const r = await run(process.execPath, [tool("@arethetypeswrong/cli/dist/index.js"), tarball, "--format", "json"], { timeout: 50_000 });
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    assert.fail(`attw printed no JSON (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  }
  assert.deepEqual(Object.keys(report.analysis.entrypoints).sort(), [".", "./package.json", "./server", "./web"], "the entries attw checked");
  const problems = Object.values(report.problems || {})
    .flat()
    .map((p) => `${p.entrypoint} ${p.resolutionKind} ${p.kind}`)
    .sort();
  // A require() of the ESM-only "./web": TypeScript's node10 mode reads no "exports" (so no
  // types), and node16 from CommonJS gets an ES module.
  assert.deepEqual(problems, ["./web node10 UntypedResolution", "./web node16-cjs CJSResolvesToESM"]);
});
