// The engine chunk of the browser build: the platform runtime and wasm-bindgen's glue. The web
// loader imports it when the first client is created, with the .wasm response it started.
import init, { Core } from "segops-glue";
import { engine } from "../runtime/runtime.js";

export async function start(kit, response) {
  const w = await init({ module_or_path: response });
  return engine(kit, Core, () => w.memory, SEGOPS_VERSION);
}
