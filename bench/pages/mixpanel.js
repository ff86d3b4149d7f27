// mixpanel-browser: init + track, api_host pointed at the sink; otherwise defaults.
import mixpanel from "mixpanel-browser";

mixpanel.init("mp_bench_token", { api_host: SINK + "/mixpanel", loaded: () => window.__ready() });
window.__bench = { track: (props) => mixpanel.track(EVENT, props) };
