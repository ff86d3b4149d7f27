// @amplitude/analytics-browser: init + track, serverUrl pointed at the sink; otherwise defaults.
import * as amplitude from "@amplitude/analytics-browser";

amplitude.init("amp_bench_key", { serverUrl: SINK + "/amplitude/2/httpapi" }).promise.then(() =>
  window.__ready(),
);
window.__bench = { track: (props) => amplitude.track(EVENT, props) };
