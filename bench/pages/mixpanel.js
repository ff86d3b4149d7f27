// mixpanel-browser: init + track, api_host pointed at the sink; otherwise defaults.
import mixpanel from "mixpanel-browser";

__mark("app");
mixpanel.init("mp_bench_token", { api_host: SINK + "/mixpanel", loaded: () => __mark("ready") });
__mark("accepts"); // init() is synchronous
// send_immediately skips the batch queue, which would hold a lone event for its flush interval.
mixpanel.track(FIRST, __props, { send_immediately: true });
window.__bench = { track: (props) => mixpanel.track(EVENT, props) };
