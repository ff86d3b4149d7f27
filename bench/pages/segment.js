// @segment/analytics-next: load + track; the CDN settings are given inline (no settings fetch)
// with the Segment.io destination pointed at the sink; otherwise defaults.
import { AnalyticsBrowser } from "@segment/analytics-next";

__mark("app");
const analytics = AnalyticsBrowser.load({
  writeKey: "wk_bench",
  cdnURL: SINK + "/segment-cdn",
  cdnSettings: {
    integrations: {
      "Segment.io": { apiKey: "wk_bench", apiHost: SINK_HOST + "/segment/v1", protocol: "http" },
    },
  },
});
__mark("accepts"); // load() returns a buffer that takes calls until the library is loaded
analytics.ready(() => __mark("ready"));
// Without a batching delivery strategy (the default) every event is sent at once: nothing to flush.
analytics.track(FIRST, __props);
window.__bench = { track: (props) => analytics.track(EVENT, props) };
