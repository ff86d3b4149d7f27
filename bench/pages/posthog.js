// posthog-js: init + capture, api_host pointed at the sink; otherwise defaults.
import posthog from "posthog-js";

__mark("app");
posthog.init("phc_bench", {
  api_host: SINK + "/posthog",
  loaded: () => __mark("ready"),
});
__mark("accepts"); // capture() works as soon as init() returned
// send_instantly skips the request queue, which would hold a lone event for its flush interval.
posthog.capture(FIRST, __props, { send_instantly: true });
window.__bench = { track: (props) => posthog.capture(EVENT, props) };
