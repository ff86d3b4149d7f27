// @segops/sdk: init + track. SINK is the sink's origin (defined by the driver at bundle time).
import { SegOpsClient, init } from "@segops/sdk";

const client = new SegOpsClient({ apiUrl: SINK, apiKey: "pk_live_bench" });
window.__bench = {
  track: (props) => client.track({ eventType: EVENT, properties: props }),
  wasmMemory: async () => (await init()).memory.buffer.byteLength,
};
window.__ready(); // the module loaded and instantiated the .wasm (top-level await) and the client is constructed
