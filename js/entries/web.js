// "@segops/sdk" in browsers and bundlers: the loader alone. Nothing happens at import; the first
// `new SegOpsClient()` starts, in parallel, the streaming compile of the .wasm (fetched from next
// to this file: bundlers follow `new URL(..., import.meta.url)` and emit it) and the import of
// the engine chunk. Outside a browser (server-side rendering) a client loads nothing.
import { defineClient } from "../loader/client.js";

export const SegOpsClient = /* @__PURE__ */ defineClient((kit) => {
  const wasm = fetch(new URL("./segops_sdk_bg.wasm", import.meta.url)).then((r) => {
    if (!r.ok) throw new Error("HTTP " + r.status + " for " + r.url);
    return r;
  });
  wasm.catch(() => {}); // reported by the engine's load
  return import("./engine.js").then((m) => m.start(kit, wasm));
}, true);
