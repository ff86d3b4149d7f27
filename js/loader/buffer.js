// The calls recorded before the module is ready: kept in order within the queue's bounds, and
// saved like unsent events when the page is hidden or closed first, so that the next page load
// delivers them. Used by the loader and by the inline snippet of the CDN build.

import { isBrowser } from "./capture.js";
import { hex, random } from "./capture.js";
import { PREFIX, get, locked, remove, set, startConsent } from "./store.js";

// The queue's bounds (DEFAULT_MAX_QUEUE_EVENTS and _BYTES in src/core/config.rs, kept in step
// by tests/node/loader.test.mjs), or the config's maxQueueEvents / maxQueueBytes.
const MAX_EVENTS = 20000;
const MAX_BYTES = 8 * 1024 * 1024;

const count = (v, d) => (Number.isInteger(v) && v > 0 ? v : d);
const isCall = (x) => typeof x === "string";

export class Buffer {
  // `f`: what the loader read of the config (consent, respectGlobalPrivacyControl and the
  // bounds). Items are call records (strings) and [kind, value] for the other calls.
  constructor(f) {
    this.q = [];
    this.bytes = 0;
    this.over = 0;
    this.tab = PREFIX + hex(random(8));
    this.saved = 0;
    this.savedOk = false;
    this.maxE = count(f.maxE, MAX_EVENTS);
    this.maxB = count(f.maxB, MAX_BYTES);
    this.f = f;
    this.chosen = false;
    // The consent view, read when first needed: a page's first localStorage access costs
    // milliseconds, which the constructor should not.
    this.c = null;
    this.unwatch = null;
    if (isBrowser()) {
      const onVisibility = () => (document.visibilityState === "hidden" ? this.save() : this.unsave());
      // pageshow: back from the back/forward cache (visibilitychange may come too; unsave runs
      // once).
      const on = [
        [document, "visibilitychange", onVisibility],
        [window, "pagehide", () => this.save()],
        [window, "pageshow", onVisibility],
      ];
      for (const [target, type, f] of on) target.addEventListener(type, f);
      this.unwatch = () => {
        this.unwatch = null;
        for (const [target, type, f] of on) target.removeEventListener(type, f);
      };
    }
  }

  get consent() {
    return this.c || (this.c = startConsent(this.f.cc, this.f.gpc));
  }

  calls() {
    return this.q.filter(isCall);
  }

  push(it) {
    this.q.push(it);
    if (!isCall(it)) return;
    this.bytes += it.length;
    let n = this.calls().length;
    while (n > this.maxE || this.bytes > this.maxB) {
      const i = this.q.findIndex(isCall);
      this.bytes -= this.q[i].length;
      this.q.splice(i, 1);
      n--;
      if (this.saved > 0) this.saved--;
      // Counted in stats().dropped.queue_overflow; the runtime warns once it is loaded.
      this.over++;
    }
  }

  // Hidden or closing before the module is ready: keep the calls for the next page load (only
  // with consent: while pending or denied nothing is stored).
  save() {
    const calls = this.calls();
    if (!this.unwatch || !calls.length || this.consent !== "granted") return;
    this.savedOk = set(this.tab, JSON.stringify({ v: 2, calls }));
    this.saved = this.savedOk ? calls.length : 0;
  }

  // Visible again: the saved calls are this page's to deliver, unless another page took them
  // up meanwhile (it delivers them, with the same message ids). Settled under the origin's lock.
  unsave() {
    if (this.savedOk) locked(() => this.settle());
  }

  // Under the lock: whether the saved calls are still in storage (removed now) or were taken by
  // another page (dropped here: not lost, not sent twice).
  settle() {
    if (!this.savedOk) return;
    const taken = get(this.tab) === null;
    remove(this.tab);
    for (let n = taken ? this.saved : 0, i = 0; n > 0 && i < this.q.length; ) {
      if (isCall(this.q[i])) {
        this.bytes -= this.q[i].length;
        this.q.splice(i, 1);
        n--;
      } else i++;
    }
    this.savedOk = false;
    this.saved = 0;
  }

  // A consent choice made before the module is ready.
  choose(state) {
    if (state === "granted" || state === "denied" || state === "pending") {
      this.c = state;
      this.chosen = true;
      if (state !== "granted") {
        remove(this.tab);
        this.savedOk = false;
        this.saved = 0;
      }
    }
  }

  // The state to start the core in: the page's own choice, else the rule read afresh (another
  // tab may have chosen meanwhile).
  startState() {
    return this.chosen ? this.consent : startConsent(this.f.cc, this.f.gpc);
  }
}
