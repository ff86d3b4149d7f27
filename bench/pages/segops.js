// @segops/sdk: the client, one event sent at once, then the benchmark's calls. SINK (the sink's
// origin), EVENT and FIRST (event names) are defined by the driver at bundle time; __mark and
// __props by page.html.
import { SegOpsClient } from "@segops/sdk";

__mark("app");
// Returns at once: the .wasm and the engine chunk load behind it, calls wait in its buffer.
const client = new SegOpsClient({ apiUrl: SINK, apiKey: "pk_live_bench" });
__mark("accepts");
client.track({ eventType: FIRST, properties: __props });
client.flush(); // flushIntervalMs would hold a lone event for 2 s
client.ready.then(() => __mark("ready"));
window.__bench = {
  track: (props) => client.track({ eventType: EVENT, properties: props }),
  wasmMemory: () => client.stats().memoryBytes,
};
