// The platform layer next to the WebAssembly module: it drives one core (src/edge, a Core per
// client) with the time, the answers to its requests and the page's signals, and carries out
// what the core asks for. Every rule is the core's; this file only does what the core says
// (send these requests, print these lines, wake up then) and keeps what only JS can hold: the
// app's functions, timers, promises, listeners and storage.

import { batchContext, send, setTimer, watchPage, watchRoutes } from "./platform.js";

// What the runtime shares with the loader (js/loader/capture.js and store.js), handed over by
// the loader when it loads the engine, so that a browser downloads it once.
let coreError, hex, isBrowser, page, random, record, ser, serCall;
let ANON_KEY, CONSENT_KEY, VISIT_KEY, get, hasLocks, locked, remove, savedKeys, set;

// Core.record flags (src/core/client/mod.rs).
const HOOK = 1;
const SAVED = 2;
const FIRST = 4;

const fail = (t) => {
  if (t.charCodeAt(0) === 1) throw coreError(t);
  return t;
};

const LOG = ["log", "warn", "error"];

// Prints the console lines of the core's output (see Runtime.apply); returns it parsed.
function print(out) {
  const h = JSON.parse(out);
  for (const [level, message] of h.l) console[LOG[level]](message);
  return h;
}

// Consent denied: what identifies the visitor goes from storage (the anonymous id, the visit,
// every page's saved events).
function forget() {
  remove(ANON_KEY);
  remove(VISIT_KEY);
  for (const k of savedKeys()) remove(k);
}

export class Runtime {
  // Opens a core for a client: `cfg` is the loader's record of the config, `consent` the state
  // to start in, `s` the loader's state of the client ({getUser, beforeSend, b}: the app's
  // functions and the loader's buffer, with the page's storage key). Throws a SegOpsError on
  // a bad config.
  constructor(Core, memory, cfg, consent, s, version) {
    const c = (this.c = new Core());
    const anon = consent === "denied" ? null : get(ANON_KEY);
    const env = {
      browser: isBrowser(),
      consent,
      anon,
      // The visit the other tabs share (see src/core/visit.rs).
      visit: consent === "denied" ? null : get(VISIT_KEY),
      seed: hex(random(16)),
      ctx: batchContext("@segops/sdk", version),
    };
    const opened = c.open('{"v":' + cfg + ',"env":' + JSON.stringify(env) + "}");
    if (opened.charCodeAt(0) === 1) {
      c.free();
      throw coreError(opened);
    }
    this.autoViews = opened === "p";
    this.s = s;
    this.memory = memory;
    this.key = s.b.tab;
    this.inHook = false;
    this.hidden = false;
    this.saveQueued = false;
    this.pumpQueued = false;
    this.timer = null;
    this.waiters = [];
    this.restored = false;
    this.shut = false;
    this.saveFailures = 0;
    // This page's snapshot is in storage (it wrote one that is still its own), and whether
    // the latest was written over an earlier one outside the origin's lock.
    this.saved = false;
    this.racy = false;
    // Checking, under the lock, whether another page took the snapshot: nothing is sent meanwhile.
    this.claiming = false;
    this.unwatch = () => {};
    print(c.logs()); // a warning about the key, during the constructor
    if (consent === "denied") {
      forget();
    } else if (consent === "granted" && c.anonymousId() !== anon) {
      set(ANON_KEY, c.anonymousId());
    }
  }

  // The loader has handed over its buffer: listen to the page, take up what earlier pages
  // saved, and start sending. Resolves when the saved calls are taken up (`ready` waits for
  // it, so that a flush() after it covers them).
  begin() {
    let restored;
    if (this.s.b.over) {
      console.warn(
        "SegOps: " + this.s.b.over + " calls made before the SDK was ready were over maxQueueEvents / maxQueueBytes; the oldest were dropped (stats().dropped.queue_overflow)",
      );
    }
    if (isBrowser() && !this.shut) {
      this.unwatch = watchPage(
        () => this.onHidden(),
        () => this.onShown(),
        () => {
          this.c.resume(Date.now());
          this.schedule();
        },
        (k, v) => {
          if (k === CONSENT_KEY && v !== this.c.consent()) this.applyConsent(v);
          else if (k === VISIT_KEY) this.c.visit(0 /* take up another tab's visit */, v, 0);
        },
      );
      // autoPageViews: a page view now, and on each route change.
      if (this.autoViews) {
        const view = () => {
          try {
            this.record(record("pageView", undefined, this.s.getUser));
          } catch (e) {
            console.error(e.message);
          }
        };
        view();
        const stop = watchRoutes(view);
        const unwatch = this.unwatch;
        this.unwatch = () => {
          stop();
          unwatch();
        };
      }
      if (this.c.consent() === "granted") restored = this.restore();
      if (document.visibilityState === "hidden") this.onHidden();
    }
    this.schedule();
    return restored;
  }

  record(text, flags = HOOK) {
    const now = Date.now();
    const r = fail(this.c.record(text, now, this.inHook ? flags & ~HOOK : flags));
    if (r) this.hook(r, now);
    if (this.hidden && !this.saveQueued) {
      // A hidden page may be closed at any moment, with no further signal: save what was
      // recorded now (once per task, after it) so that the next page load sends it.
      this.saveQueued = true;
      queueMicrotask(() => {
        this.saveQueued = false;
        this.resave();
      });
    }
    this.schedule();
  }

  // Runs beforeSend on the events the core holds for it, and hands back the answers. Events the
  // hook records itself skip it.
  hook(events, now) {
    const answers = [];
    this.inHook = true;
    try {
      for (const e of JSON.parse(events)) answers.push(serCall(this.s.beforeSend, e));
    } finally {
      this.inHook = false;
    }
    fail(this.c.hooked("[" + answers.join(",") + "]", now));
    // A beforeSend problem is reported during the call that met it.
    print(this.c.logs());
  }

  flush() {
    const target = +fail(this.c.flush());
    return this.wait(target);
  }

  shutdown() {
    this.shut = true;
    this.unwatch();
    return this.wait(this.c.shutdown());
  }

  wait(target) {
    const p = new Promise((resolve) => this.waiters.push([target, resolve]));
    this.schedule();
    return p;
  }

  setConsent(v) {
    this.applyConsent(v);
  }

  // The core checks the value (a SegOpsError otherwise); the loader kept the choice in storage.
  applyConsent(v) {
    const state = fail(this.c.setConsent(ser(v)));
    if (state === "granted" && !this.shut) {
      set(ANON_KEY, this.c.anonymousId());
      if (isBrowser()) this.restore();
    } else if (state === "denied") {
      forget();
      this.saved = false;
    } else {
      remove(this.key);
      this.saved = false;
    }
    this.schedule();
  }

  consent() {
    return this.c.consent();
  }

  anonymousId() {
    return this.c.anonymousId();
  }

  sessionId() {
    return this.c.visit(2 /* the visit's id */, page() || "{}", Date.now()) || null;
  }

  // Logout (see Client::reset in src/core/client/mod.rs); consent stays.
  reset() {
    this.c.visit(1 /* reset() */, "", Date.now());
    if (this.c.consent() === "granted") set(ANON_KEY, this.c.anonymousId());
    this.schedule();
  }

  stats() {
    const out = JSON.parse(this.c.stats(Date.now()));
    out.saveFailures = this.saveFailures;
    out.memoryBytes = this.memory().buffer.byteLength;
    const over = this.s.b.over;
    if (over) {
      out.dropped.queue_overflow = (out.dropped.queue_overflow || 0) + over;
      out.droppedTotal += over;
    }
    return out;
  }

  // After a call or an answer changed what is due: poll once, after the current task's
  // synchronous work, so that a burst goes out as one batch.
  schedule() {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => this.pump());
  }

  pump() {
    this.pumpQueued = false;
    if (!this.claiming) this.apply(this.c.poll(Date.now()));
  }

  // Carries out the core's output: console lines, requests, the next wake-up; then resolves the
  // flush() and shutdown() promises that are settled.
  apply(out) {
    const h = print(out);
    if (h.v) set(VISIT_KEY, h.v);
    // Each body is taken from the core in order, in parts (a batch body never sits whole in
    // the module's memory); "" ends a body.
    for (const r of h.r) {
      let body = "";
      for (let part; (part = this.c.body()); ) body += part;
      this.send(r, body);
    }
    this.waiters = this.waiters.filter(([target, resolve]) => !(this.c.flushed(target) && !resolve()));
    const idle = this.shut && !this.waiters.length && !h.r.length;
    this.arm(h.w < 0 || idle ? null : h.w);
  }

  arm(at) {
    const keepAlive = this.waiters.length > 0;
    const t = this.timer;
    if (t && t.at === at && t.keepAlive === keepAlive) return;
    if (t) clearTimeout(t.id);
    this.timer = null;
    if (at === null) return;
    // setTimeout holds at most 2^31 - 1 ms; a wake-up further out wakes early and re-arms.
    const ms = Math.min(Math.max(at - Date.now(), 0), 2147483647);
    this.timer = {
      at,
      keepAlive,
      id: setTimer(
        () => {
          this.timer = null;
          this.pump();
        },
        ms,
        keepAlive,
      ),
    };
  }

  send([id, url, auth, keepalive, timeout], body) {
    send(url, auth, body, keepalive === 1, timeout).then(([status, retryAfter, text]) => {
      this.c.answer(id, status, retryAfter, text, Date.now());
      // While hidden, each answer updates the saved snapshot. After shutdown() the client
      // leaves storage alone: rewriting its snapshot could bring back events a newer client
      // has already taken.
      this.resave();
      this.pump();
    });
  }

  // Writes (or clears) this page's snapshot of unsent events. `unlocked`: outside the origin's
  // lock, where another page may be taking the one in storage at the same moment.
  save(unlocked) {
    const text = this.c.snapshot();
    if (text && set(this.key, text)) {
      this.racy = unlocked && this.saved;
      this.saved = true;
      return;
    }
    // Nothing to save, or storage full or disabled (kept in memory): no stale snapshot stays.
    if (text) this.saveFailures++;
    remove(this.key);
    this.saved = false;
  }

  // Whether another page took up this page's snapshot (run under the lock): if so, what it
  // held is that page's to deliver; else it is removed (`keep`: left in storage).
  claim(keep) {
    if (!this.saved) return;
    const taken = get(this.key) === null;
    if (!taken) {
      if (keep) return;
      remove(this.key);
    }
    this.c.handOver(taken, this.racy);
    print(this.c.logs());
    this.saved = this.racy = false;
  }

  // Hidden, after a call or an answer: save the snapshot again (after a claim: an earlier one
  // may have been taken). After shutdown() the client leaves storage alone: rewriting its
  // snapshot could bring back events a newer client has already taken.
  resave() {
    if (!this.hidden || this.shut) return;
    if (hasLocks()) {
      locked(() => {
        this.claim(true);
        if (this.hidden && !this.shut) this.save(false);
      });
    } else this.save(true);
  }

  // Hidden or being unloaded: hand everything to keepalive requests and save a snapshot for the
  // next page load. Every signal counts (pagehide after visibilitychange too): a page hidden
  // earlier may have recorded events since. What keepalive already carries is not sent again.
  onHidden() {
    if (this.shut) return;
    this.hidden = true;
    this.apply(this.c.hidden(Date.now()));
    this.save(true);
  }

  // Visible again, or back from the back/forward cache (whose frozen timers did not run, and
  // whose session token may have expired: the core renews it before sending): this page's
  // memory holds its events again, except those another page took up meanwhile.
  onShown() {
    if (!this.hidden) return;
    this.hidden = false;
    this.claiming = true;
    locked(() => this.claim(false)).then(() => {
      this.claiming = false;
      this.c.resume(Date.now());
      this.schedule();
    });
  }

  // Takes up what earlier pages of this origin saved (under the origin's lock, so that two
  // pages opening at once never both take the same snapshot): their unsent events (v1), and
  // the calls of a page that closed before its module was ready (v2).
  restore() {
    if (this.restored) return;
    this.restored = true;
    return locked(() => {
      const texts = [];
      for (const k of savedKeys(this.key)) {
        const v = get(k);
        remove(k);
        if (v) texts.push(v);
      }
      return texts;
    }).then((texts) => {
      const now = Date.now();
      for (const t of texts) {
        let doc = null;
        try {
          doc = JSON.parse(t);
        } catch (_) {}
        if (doc && doc.v === 2 && Array.isArray(doc.calls)) {
          doc.calls.forEach((call, i) => {
            try {
              this.record(String(call), HOOK | SAVED | (i ? 0 : FIRST));
            } catch (e) {
              console.error(e.message);
            }
          });
        } else this.c.restore(t, now);
      }
      this.schedule();
    });
  }
}

// The engine a loader gets (`kit`: the loader's shared functions): opens one Runtime per client
// over the module's Core class.
export function engine(kit, Core, memory, version) {
  ({ coreError, hex, isBrowser, page, random, record, ser, serCall } = kit);
  ({ ANON_KEY, CONSENT_KEY, VISIT_KEY, get, hasLocks, locked, remove, savedKeys, set } = kit);
  return { open: (cfg, consent, s) => new Runtime(Core, memory, cfg, consent, s, version) };
}
