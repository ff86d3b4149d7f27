// @segops/sdk in browsers and bundlers: the WebAssembly module is loaded on import.
export * from "./segops_sdk.js";
/** Resolves at once: the main entry loads the module on import. See `@segops/sdk/web`. */
export { default, default as init } from "./segops_sdk.js";
