// @snowplow/browser-tracker: newTracker + one self-describing event, collector at the sink;
// otherwise defaults (POST, batching as configured by default).
import { newTracker, trackSelfDescribingEvent } from "@snowplow/browser-tracker";

newTracker("sp", SINK + "/snowplow", { appId: "bench" });
window.__bench = {
  track: (props) =>
    trackSelfDescribingEvent({
      event: { schema: "iglu:com.example/" + EVENT + "/jsonschema/1-0-0", data: props },
    }),
};
window.__ready(); // newTracker is synchronous
