// The inline snippet of the CDN build (README, "Pages without a bundler"): `window.segops` with
// the client's methods, recording each call as the loader does (time, identity, page, message
// id) in the same bounded buffer, saved if the page closes before the SDK's script arrives. The
// script (cdn.js) creates the real client from `c` and takes the buffer `b` over. The build
// wraps it as `(segopsConfig => { ... })({ apiUrl, apiKey, ... })`.
import { record } from "../loader/capture.js";
import { Buffer } from "../loader/buffer.js";
import { fields } from "../loader/client.js";
import { keepChoice } from "../loader/store.js";

const w = window;
if (!w.segops) {
  const c = segopsConfig;
  const f = fields(c);
  const b = new Buffer(f);
  const s = { c, b };
  for (const m of ["track", "identify", "page", "trackPageView"]) {
    s[m] = (a) => b.push(record(m === "trackPageView" ? "pageView" : m, a, typeof f.getUser === "function" && f.getUser));
  }
  s.setConsent = (v) => {
    keepChoice(v, b.tab);
    b.choose(v);
    b.push(["consent", v]);
  };
  s.optIn = () => s.setConsent("granted");
  s.optOut = () => s.setConsent("denied");
  s.flush = () => new Promise((r) => b.push(["flush", r]));
  s.shutdown = () => new Promise((r) => b.push(["shutdown", r]));
  w.segops = s;
}
