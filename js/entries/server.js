// signUserId({ secret, userId, now? }) -> { userId, userIdSig, userIdTs }, for a public key that
// requires signed user ids ("@segops/sdk/server", Node only; bundled into node.js). The checks
// are the core's.
import { initSync, sign } from "segops-glue";
import { WASM } from "segops-wasm";
import { coreError, ser } from "../loader/capture.js";

let ready = false;

export function signUserId(args) {
  if (!ready) {
    initSync({ module: Buffer.from(WASM, "base64") });
    ready = true;
  }
  const out = sign('{"v":' + ser(args) + ',"t":' + Date.now() + "}");
  if (out.charCodeAt(0) === 1) throw coreError(out);
  return JSON.parse(out);
}
