// The soak's Node runtime: one process with the Node build and a secret key, run by the harness
// with its settings as JSON in SOAK_CLIENT. It records events from..to-1 at `rate` per second
// (the identity plan of common.js, or one fixed identity), keeps the process busy for `busyMs`
// in all, then flushes (waiting at most `settleMs`) and writes its record to `out`.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const W = require("./wire.js");
W.install();
const C = require("./common.js");

const cfg = JSON.parse(process.env.SOAK_CLIENT);
const { SegOpsClient } = require(cfg.pkg + "/index.cjs");

const { client, plan, use, resets, anonymousIds } = C.newClient(SegOpsClient, cfg);
const inst = { inst: 0, anonymousId: client.anonymousId, accepted: [], trackErrors: [], hides: 0, startedAt: W.clock() };
const sampler = setInterval(() => W.sample(client), 100);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = performance.now();
let next = cfg.from;
while (next < cfg.to) {
  const due = Math.min(cfg.to, cfg.from + Math.floor(((performance.now() - t0) * cfg.rate) / 1000));
  for (; next < due; next++) {
    const seq = next;
    use(seq);
    try {
      if (plan) C.record(client, seq, plan, cfg.run);
      else client.track({ eventType: "steady", properties: { seq, run: cfg.run } });
      C.addToRanges(inst.accepted, seq);
    } catch (e) {
      inst.trackErrors.push({ seq, error: String((e && e.code) || e) + ": " + String(e && e.message) });
    }
  }
  await sleep(10);
}
const busy = (cfg.busyMs || 0) - (performance.now() - t0);
if (busy > 0) await sleep(busy);

const settleStart = performance.now();
const settled = await Promise.race([client.flush().then(() => true), sleep(cfg.settleMs).then(() => false)]);
while (client.stats().pending > 0 && performance.now() - settleStart < cfg.settleMs) await sleep(100);
let shutdown = "skipped";
if (settled && client.stats().pending === 0) {
  await client.shutdown();
  shutdown = "done";
}
clearInterval(sampler);
W.sample(client);
const out = { ...inst, resets, anonymousIds, settled, shutdown, stats: client.stats(), wire: W.wire, errors: W.errors, warnings: W.warnings, peaks: W.peaks, endedAt: W.clock() };
writeFileSync(cfg.out, JSON.stringify(out));
process.exit(0);
