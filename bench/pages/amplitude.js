// @amplitude/analytics-browser: init + track, serverUrl pointed at the sink; otherwise defaults.
import * as amplitude from "@amplitude/analytics-browser";

__mark("app");
const started = amplitude.init("amp_bench_key", { serverUrl: SINK + "/amplitude/2/httpapi" });
__mark("accepts"); // calls made before init() resolves are queued and replayed
started.promise.then(() => __mark("ready"));
amplitude.track(FIRST, __props);
// The request to send at once every page makes. flush() is not queued like track(): made before
// init() resolves it finds nothing to send, and the event waits for flushIntervalMillis.
amplitude.flush();
window.__bench = { track: (props) => amplitude.track(EVENT, props) };
