// What the SDK keeps in a browser's localStorage, and the consent a client starts in. Never
// cookies; never a session token. Every access is guarded: storage may be disabled, full, or
// not there at all (Node, server-side rendering).

import { isBrowser } from "./capture.js";

// The visitor's consent choice: "granted" or "denied" (absent: not chosen).
export const CONSENT_KEY = "segops.consent";
// The visitor's anonymous id (kept only with consent).
export const ANON_KEY = "segops.anonymous_id";
// The visit (session) the tabs of the origin share (kept only with consent).
export const VISIT_KEY = "segops.visit";
// Unsent events of a page that was hidden or closed, one key per page: segops.pending.<tab id>.
export const PREFIX = "segops.pending.";

const ls = () => {
  try {
    return isBrowser() ? window.localStorage : null;
  } catch (_) {
    return null;
  }
};

export function get(k) {
  try {
    return ls().getItem(k);
  } catch (_) {
    return null;
  }
}

export function set(k, v) {
  try {
    ls().setItem(k, v);
    return true;
  } catch (_) {
    return false; // full, disabled, private mode or no storage
  }
}

export function remove(k) {
  try {
    ls().removeItem(k);
  } catch (_) {}
}

// Keys under PREFIX, but `except`.
export function savedKeys(except) {
  const out = [];
  try {
    const s = ls();
    for (let i = 0; i < s.length; i++) {
      const k = s.key(i);
      if (k && k.startsWith(PREFIX) && k !== except) out.push(k);
    }
  } catch (_) {}
  return out;
}

// Whether Web Locks are there (not in an insecure context, nor in old browsers).
export function hasLocks() {
  try {
    return typeof navigator.locks.request === "function";
  } catch (_) {
    return false;
  }
}

// Runs `f` under the origin's lock for saved events (Web Locks), so that two pages never both
// take the same snapshot; without Web Locks, in a microtask. Returns a promise.
export function locked(f) {
  try {
    if (hasLocks()) return navigator.locks.request(PREFIX + "lock", f).catch(f);
  } catch (_) {}
  return Promise.resolve().then(f);
}

// The consent state a client starts in, in this order:
// 1. the visitor's persisted choice: their own answer on this site wins, and a config that says
//    "granted" on every page load cannot overrule an opt-out;
// 2. "denied" when the browser sends Global Privacy Control (and respectGlobalPrivacyControl is
//    not false), unless the config says "granted" explicitly: GPC is an opt-out the visitor
//    already expressed (legally binding under California's CCPA regulations and in Colorado),
//    so even "pending" starts denied; an app with its own legal basis may overrule it in code;
// 3. the config's consent, "granted" when absent (DEFAULT_CONSENT in src/core/config.rs, where
//    the defaults are documented; tests/node/loader.test.mjs keeps the two in step).
// A config value the core will refuse starts "pending": nothing is stored meanwhile.
export function startConsent(configured, respectGpc) {
  const persisted = get(CONSENT_KEY);
  if (persisted === "granted" || persisted === "denied") return persisted;
  let gpc = false;
  try {
    gpc = respectGpc !== false && isBrowser() && navigator.globalPrivacyControl === true;
  } catch (_) {}
  if (gpc && configured !== "granted") return "denied";
  if (configured === undefined) return "granted";
  return configured === "granted" || configured === "denied" ? configured : "pending";
}

// Keeps a consent choice (the core checks the value; this acts on the valid ones only): denied
// also removes the anonymous id and every page's saved events; pending forgets the choice and
// this page's saved events.
export function keepChoice(state, ownKey) {
  if (state === "granted") set(CONSENT_KEY, state);
  else if (state === "denied") {
    set(CONSENT_KEY, state);
    remove(ANON_KEY);
    for (const k of savedKeys()) remove(k);
  } else if (state === "pending") {
    remove(CONSENT_KEY);
    remove(ownKey);
  }
}
