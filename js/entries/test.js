// The client for the wasm-bindgen test suites (tests/wasm_*.rs): the loader and the runtime as
// the package ships them, over the Core class of the test's own module, which the tests hand in
// with installCore() (tests/support/mod.rs). The module is there already, so the engine is
// synchronous, as in Node: a bad config throws at construction.
import { defineClient } from "../loader/client.js";
import { engine } from "../runtime/runtime.js";

let Core = null;
let memory = null;
let en = null;

// `core`: a Core instance from the test module (its class is what the runtime needs);
// `mem`: the module's memory.
export function installCore(core, mem) {
  if (Core) return;
  Core = core.constructor;
  memory = mem;
  core.free();
}

export const SegOpsClient = defineClient((kit) => en || (en = engine(kit, Core, () => memory, "test")), false);
