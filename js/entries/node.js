// "@segops/sdk" in Node (import and require): the loader, the runtime and the module, whose
// bytes are in this file, so that no bundler has to find a .wasm next to a moved __dirname
// (Turbopack, webpack and esbuild server bundles all move it). The module is compiled, once and
// synchronously, when the first client is created: a bad config throws right there.
import { defineClient } from "../loader/client.js";
import { Core, initSync } from "segops-glue";
import { WASM } from "segops-wasm";
import { engine } from "../runtime/runtime.js";

let en;

export const SegOpsClient = /* @__PURE__ */ defineClient((kit) => {
  if (!en) {
    const w = initSync({ module: Buffer.from(WASM, "base64") });
    en = engine(kit, Core, () => w.memory, SEGOPS_VERSION);
  }
  return en;
}, false);

// "@segops/sdk/server" re-exports it (node/server.mjs, node/server.cjs): one copy of the module.
export { signUserId } from "./server.js";
