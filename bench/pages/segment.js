// @segment/analytics-next: load + track; the CDN settings are given inline (no settings fetch)
// with the Segment.io destination pointed at the sink; otherwise defaults.
import { AnalyticsBrowser } from "@segment/analytics-next";

const analytics = AnalyticsBrowser.load({
  writeKey: "wk_bench",
  cdnURL: SINK + "/segment-cdn",
  cdnSettings: {
    integrations: {
      "Segment.io": { apiKey: "wk_bench", apiHost: SINK_HOST + "/segment/v1", protocol: "http" },
    },
  },
});
analytics.ready(() => window.__ready());
window.__bench = { track: (props) => analytics.track(EVENT, props) };
