// The SegOpsClient the app imports: a synchronous API that never blocks the page and never
// throws into it before the SDK is ready. Each call is recorded at once (capture.js: arguments
// as JSON, time, identity, page, message id) and handed to the core when the WebAssembly
// module is ready, in order, exactly once. Until then calls wait in a Buffer (buffer.js).

import * as capture from "./capture.js";
import * as store from "./store.js";
import { Buffer } from "./buffer.js";
import { isBrowser, makeError, record, ser } from "./capture.js";
import { keepChoice, locked } from "./store.js";

const STATS =
  "recorded sent duplicates retried requests bytesSent mints remints keepaliveRequests restored handedOver unsaved saveFailures truncated beforeSendErrors memoryBytes";

// Why the module could not load, as a SegOpsError with one sentence for the console.
function loadError(e) {
  let m = "";
  try {
    m = String((e && e.message) || e);
  } catch (_) {}
  const why = /content.security.policy|\bCSP\b|unsafe-eval/i.test(m)
    ? "the Content-Security-Policy blocks WebAssembly (add 'wasm-unsafe-eval' to script-src)"
    : /fetch|network|load failed|import/i.test(m)
      ? "offline or blocked (" + m + ")"
      : m;
  return makeError("module_unavailable", undefined, "SegOps: could not load its WebAssembly module: " + why + ". Nothing is sent.");
}

// What the loader reads of a config now; the core checks all of it when it is ready.
export function fields(config) {
  try {
    return {
      getUser: config.getUser,
      beforeSend: config.beforeSend,
      cc: config.consent,
      gpc: config.respectGlobalPrivacyControl,
      maxE: config.maxQueueEvents,
      maxB: config.maxQueueBytes,
    };
  } catch (_) {
    return {};
  }
}

// The SegOpsClient class over `load(kit)`, which returns the engine (js/runtime/runtime.js) or
// a promise of it. It is called when the first client is created, once, and shared by every
// client. With `browserOnly`, a client outside a browser (server-side rendering of the browser
// build) loads nothing, sends nothing and logs nothing.
export function defineClient(load, browserOnly) {
  let engine = null;
  let loading = null;

  function getEngine() {
    if (engine || loading) return engine || loading;
    let r;
    try {
      // What the engine shares with the loader (js/runtime/runtime.js takes it).
      r = load({ ...capture, ...store });
    } catch (e) {
      r = Promise.reject(e);
    }
    if (!r || typeof r.then !== "function") return (engine = r);
    return (loading = r.then(
      (e) => (engine = e),
      (e) => {
        const err = loadError(e);
        console.error(err.message);
        throw err;
      },
    ));
  }

  return class SegOpsClient {
    // `buffer`: the calls the inline snippet (CDN build) recorded before this script arrived.
    constructor(config, buffer) {
      const f = fields(config);
      const s = (this._s = {
        cfg: ser(config),
        getUser: typeof f.getUser === "function" ? f.getUser : null,
        beforeSend: typeof f.beforeSend === "function" ? f.beforeSend : null,
        rt: null,
        dead: false,
        b: buffer instanceof Buffer ? buffer : new Buffer(f),
      });
      let settle;
      this.ready = new Promise((resolve, reject) => (settle = [resolve, reject]));
      // The failure is logged once; an app that does not wait for `ready` gets no unhandled
      // rejection.
      this.ready.catch(() => {});
      if (browserOnly && !isBrowser()) {
        this._fail();
        settle[0]();
        return;
      }
      if (!browserOnly) {
        this._go(getEngine()); // Node: the module compiles synchronously; a bad config throws
        settle[0]();
        return;
      }
      // In a browser the loading starts right after the constructor returns (a page's first
      // fetch() costs milliseconds, which the app's code should not wait for).
      queueMicrotask(() =>
        Promise.resolve()
          .then(getEngine)
          .then((en) => this._go(en))
          .then(
            () => settle[0](),
            (err) => {
              this._fail();
              if (err.code !== "module_unavailable") console.error(err.message);
              settle[1](err);
            },
          ),
      );
    }

    // The module is ready: start the core (a SegOpsError on a bad config), then hand it the
    // buffered calls in order. A buffer this page saved and another page has taken up since (it
    // was hidden, then came back) is that page's to deliver.
    _go(en) {
      const s = this._s;
      const b = s.b;
      const rt = en.open(s.cfg, b.startState(), s);
      if (b.unwatch) b.unwatch();
      const run = () => {
        const q = b.q;
        b.q = [];
        s.rt = rt;
        for (const it of q) {
          try {
            if (typeof it === "string") rt.record(it);
            else if (it[0] === "consent") rt.setConsent(it[1]);
            else Promise.resolve(rt[it[0]]()).then(it[1]); // flush, shutdown, reset
          } catch (e) {
            console.error(e.message);
            if (typeof it !== "string") it[1] && it[1]();
          }
        }
        return rt.begin();
      };
      // Calls this page saved and another page took up meanwhile are that page's to deliver.
      return b.savedOk ? locked(() => b.settle()).then(run) : run();
    }

    // The module will never be ready: drop the buffer, settle what waits on it.
    _fail() {
      const s = this._s;
      s.dead = true;
      if (s.b.unwatch) s.b.unwatch();
      for (const it of s.b.q) if (typeof it !== "string" && it[1]) it[1]();
      s.b.q = [];
    }

    _call(method, arg) {
      const s = this._s;
      if (s.dead) return;
      const text = record(method, arg, s.getUser);
      if (s.rt) s.rt.record(text);
      else s.b.push(text);
    }

    track(event) {
      this._call("track", event);
    }

    identify(event) {
      this._call("identify", event);
    }

    page(event) {
      this._call("page", event);
    }

    trackPageView(event) {
      this._call("pageView", event);
    }

    // `method` of the runtime now, or in turn with the buffered calls once it is ready.
    _later(method) {
      const s = this._s;
      if (s.rt) return s.rt[method]();
      return s.dead ? Promise.resolve() : new Promise((r) => s.b.push([method, r]));
    }

    // What `method` of the runtime says, or null until the module is ready.
    _now(method) {
      const rt = this._s.rt;
      return rt ? rt[method]() : null;
    }

    flush() {
      return this._later("flush");
    }

    shutdown() {
      return this._later("shutdown");
    }

    setConsent(state) {
      const s = this._s;
      // The visitor's choice is kept at once, even if the module never loads.
      keepChoice(state, s.b.tab);
      if (s.rt) return s.rt.setConsent(state);
      s.b.choose(state);
      if (!s.dead) s.b.push(["consent", state]);
    }

    optIn() {
      this.setConsent("granted");
    }

    optOut() {
      this.setConsent("denied");
    }

    get consent() {
      const s = this._s;
      return s.rt ? s.rt.consent() : s.b.consent;
    }

    // null until the module is ready: the id is the core's to choose (the stored one, or new).
    get anonymousId() {
      return this._now("anonymousId");
    }

    // The visit's id; null until the module is ready, and outside a browser.
    get sessionId() {
      return this._now("sessionId");
    }

    // Logout: calls made before it keep the old identity; later ones get a new anonymous id
    // and a new visit.
    reset() {
      this._later("reset");
    }

    stats() {
      const s = this._s;
      if (s.rt) return s.rt.stats();
      const out = {};
      for (const k of STATS.split(" ")) out[k] = 0;
      out.queued = out.pending = s.b.calls().length;
      out.tokenExpiresInMs = out.lastError = out.halted = null;
      out.dropped = s.b.over ? { queue_overflow: s.b.over } : {};
      out.droppedTotal = s.b.over;
      out.consent = s.b.consent;
      out.truncatedBy = { depth: 0, keys: 0, length: 0 };
      return out;
    }
  };
}
