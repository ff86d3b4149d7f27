// @snowplow/browser-tracker: newTracker + one self-describing event, collector at the sink;
// otherwise defaults (POST, batching as configured by default).
import { flushBuffer, newTracker, trackSelfDescribingEvent } from "@snowplow/browser-tracker";

const event = (name, data) =>
  trackSelfDescribingEvent({ event: { schema: "iglu:com.example/" + name + "/jsonschema/1-0-0", data } });

__mark("app");
newTracker("sp", SINK + "/snowplow", { appId: "bench" });
__mark("accepts"); // newTracker is synchronous
__mark("ready");
event(FIRST, __props);
// The request to send at once every page makes; with the default buffer of one event, the
// tracker sends it unasked.
flushBuffer();
window.__bench = { track: (props) => event(EVENT, props) };
