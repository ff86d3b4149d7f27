// Rewrites tests/hostile/expected.json from the rows of one run in each runtime:
//   node tests/hostile/update-expected.js node=rows-node.json chromium=rows-chromium.json firefox=rows-firefox.json
// Rows come from tests/node/hostile.test.mjs (SEGOPS_HOSTILE_ROWS=<file>) and from
// tests/wasm_hostile.rs built with SEGOPS_HOSTILE_DUMP=1 and run with `-- --nocapture` (the line
// `HOSTILE-ROWS <runtime> <json>`). See docs/bad-input.md.
import { readFileSync, writeFileSync } from "node:fs";
import { expectedFile } from "./values.js";

const byRuntime = {};
for (const arg of process.argv.slice(2)) {
  const [runtime, file] = arg.split("=");
  if (!runtime || !file) throw new Error(`expected runtime=file, got ${arg}`);
  byRuntime[runtime] = JSON.parse(readFileSync(file, "utf8"));
}
if (!byRuntime.node) throw new Error("the node rows are required: they are the base of the table");
const out = new URL("./expected.json", import.meta.url);
writeFileSync(out, expectedFile(byRuntime));
console.log(`wrote ${out.pathname} from ${Object.keys(byRuntime).join(", ")}`);
