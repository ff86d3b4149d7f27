// @segops/sdk in browsers and bundlers. Loads the WebAssembly module on import (top-level
// await), so that `new SegOpsClient(...)` works right away. The .wasm is fetched from next to
// this file (`new URL("segops_sdk_bg.wasm", import.meta.url)`, which bundlers follow and emit).
// To load it from elsewhere, import "@segops/sdk/web" and call `await init(url)` yourself.
import init from "./segops_sdk.js";

await init();

export * from "./segops_sdk.js";
// Already done above; calling it again resolves at once. For code that calls it anyway.
export { default, default as init } from "./segops_sdk.js";
