// posthog-js: init + capture, api_host pointed at the sink; otherwise defaults.
import posthog from "posthog-js";

posthog.init("phc_bench", {
  api_host: SINK + "/posthog",
  loaded: () => window.__ready(),
});
window.__bench = { track: (props) => posthog.capture(EVENT, props) };
