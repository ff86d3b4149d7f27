// The CDN build: one <script> (IIFE) with the loader, the runtime and the glue; the .wasm is
// fetched from next to the script when the first client is created. It defines
// `window.SegOps.SegOpsClient`, and takes over the inline snippet's `window.segops`: the client
// is created from the snippet's config and receives the calls it recorded, in order.
import { defineClient } from "../loader/client.js";
import { Buffer } from "../loader/buffer.js";
import init, { Core } from "segops-glue";
import { engine } from "../runtime/runtime.js";

const src = (document.currentScript && document.currentScript.src) || location.href;

const SegOpsClient = defineClient(
  (kit) =>
    init({ module_or_path: fetch(new URL("segops_sdk_bg.wasm", src)) }).then((w) =>
      engine(kit, Core, () => w.memory, SEGOPS_VERSION),
    ),
  true,
);

window.SegOps = { SegOpsClient };
const stub = window.segops;
if (stub && stub.b && stub.c) {
  // The snippet's buffer is an instance of its own copy of buffer.js: take its state over.
  window.segops = new SegOpsClient(stub.c, Object.assign(Object.create(Buffer.prototype), stub.b));
}
