// The platform layer's JavaScript half: every browser or Node API the SDK uses is reached from
// here, so that the Rust edge (src/wasm/mod.rs) deals in strings and numbers, and nothing is
// touched at import time (safe in Node and during server-side rendering).

export function isBrowser() {
  return typeof window !== "undefined" && typeof document !== "undefined";
}

export function fillRandom(buf) {
  globalThis.crypto.getRandomValues(buf);
}

// setTimeout that keeps a Node process alive only when asked: the background flush timer must
// not hold a script open, but a timer someone awaits (a flush() in backoff) must.
export function setTimer(cb, ms, keepAlive) {
  const t = setTimeout(cb, ms);
  if (!keepAlive && t && typeof t.unref === "function") t.unref();
  return t;
}

export function clearTimer(t) {
  clearTimeout(t);
}

// Bodies from this size up are gzip-compressed where the platform has CompressionStream
// (browsers since 2023, Node 18+); smaller ones would gain little.
const GZIP_FROM = 1024;

function gzip(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer().then((b) => new Uint8Array(b));
}

// POST a JSON body, gzip-compressed when it is worth it (never with keepalive: the page may be
// gone before an asynchronous compression finishes). Never rejects: resolves to
// [status, retryAfter, text] where status 0 is a network failure (text says why) and -1 a
// timeout.
export function send(url, authorization, body, keepalive, timeoutMs) {
  const ctl = typeof AbortController === "function" ? new AbortController() : null;
  let timedOut = false;
  const timer = ctl ? setTimer(() => { timedOut = true; ctl.abort(); }, timeoutMs, false) : null;
  const headers = { "content-type": "application/json", authorization };
  const compress = !keepalive && body.length >= GZIP_FROM && typeof CompressionStream === "function";
  const post = (b) => fetch(url, {
    method: "POST",
    headers,
    body: b,
    keepalive,
    credentials: "omit",
    signal: ctl ? ctl.signal : undefined,
  });
  let p;
  try {
    // Without compression fetch starts synchronously, which a keepalive send on pagehide needs.
    p = compress
      ? gzip(body).then((b) => { headers["content-encoding"] = "gzip"; return b; }, () => body).then(post)
      : post(body);
  } catch (e) {
    p = Promise.reject(e);
  }
  return p
    .then((r) => r.text().then((t) => [r.status, r.headers.get("retry-after"), t]))
    .catch((e) => [timedOut ? -1 : 0, null, String((e && e.message) || e)])
    .finally(() => { if (timer !== null) clearTimeout(timer); });
}

// JSON text of a plain object, or undefined for null/undefined. Throws a message string naming
// what JSON cannot carry. NaN and Infinity become null and undefined values are left out, as
// JSON.stringify does.
export function toJson(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || isArray(value)) {
    throw "expected an object, got " + (isArray(value) ? "an array" : typeof value);
  }
  let bad = null;
  let text;
  try {
    text = JSON.stringify(value, function (key, v) {
      const t = typeof v;
      if (t === "function" || t === "symbol" || t === "bigint") {
        bad = "the value at key \"" + key + "\" is a " + t + ", which JSON cannot carry";
        throw bad;
      }
      return v;
    });
  } catch (e) {
    if (bad) throw bad;
    if (e instanceof RangeError) throw "too deeply nested to serialize";
    if (e instanceof TypeError && /circular|cyclic/i.test(e.message)) throw "contains a cycle, which JSON cannot carry";
    throw "could not be serialized: " + ((e && e.message) || e);
  }
  // A Date, a boxed string or an object whose toJSON() returns something else is an object
  // to typeof, but not in JSON.
  if (typeof text !== "string" || text.charCodeAt(0) !== 123) {
    throw "expected an object whose JSON form is an object (not a Date, a boxed primitive, or a toJSON() that returns something else)";
  }
  return text;
}

// Type tests that never throw: Array.isArray and instanceof throw on a revoked Proxy, and the
// Rust edge must never see an exception it did not ask for.
export function isArray(v) {
  try { return Array.isArray(v); } catch { return false; }
}

export function dateTime(v) {
  try { return v instanceof Date ? v.getTime() : undefined; } catch { return undefined; }
}

export function isPromise(v) {
  try { return v instanceof Promise; } catch { return false; }
}

// A real array with the items of `v` (an array or a Proxy of one); throws what its traps throw.
export function arrayItems(v) {
  return Array.prototype.slice.call(v);
}

// Page context for each event: {"page":{url,path,search,title,referrer}} as JSON, cached until
// the URL or title changes (SPA navigations change both without a reload).
let lastHref = null, lastTitle = null, lastPage = undefined;
export function pageJson() {
  if (!isBrowser()) return undefined;
  const l = window.location, t = document.title;
  if (l.href !== lastHref || t !== lastTitle) {
    lastHref = l.href;
    lastTitle = t;
    lastPage = JSON.stringify({ page: { url: l.href, path: l.pathname, search: l.search, title: t, referrer: document.referrer } });
  }
  return lastPage;
}

// Context common to every batch of a client, sent once per batch.
export function batchContextJson(name, version) {
  const ctx = { library: { name, version } };
  try {
    const o = Intl.DateTimeFormat().resolvedOptions();
    ctx.locale = (typeof navigator !== "undefined" && navigator.language) || o.locale;
    ctx.timezone = o.timeZone;
  } catch (_) { /* Intl missing: leave the fields out */ }
  if (isBrowser()) {
    ctx.userAgent = navigator.userAgent;
  } else if (typeof process !== "undefined" && process.versions && process.versions.node) {
    ctx.runtime = { name: "node", version: process.versions.node };
  }
  return JSON.stringify(ctx);
}

export function storageGet(key) {
  try {
    return isBrowser() && window.localStorage ? window.localStorage.getItem(key) : null;
  } catch (_) {
    return null;
  }
}

export function storageSet(key, value) {
  try {
    if (isBrowser() && window.localStorage) {
      window.localStorage.setItem(key, value);
      return true;
    }
  } catch (_) { /* full, disabled or private mode */ }
  return false;
}

// Global Privacy Control: true only when a browser sends the signal.
export function globalPrivacyControl() {
  try {
    return isBrowser() && typeof navigator !== "undefined" && navigator.globalPrivacyControl === true;
  } catch (_) {
    return false;
  }
}

// Removes what the SDK keeps in localStorage for a visitor: the anonymous id and every saved
// snapshot of unsent events (all tabs'). The consent choice itself is written by the caller.
export function clearStored(anonymousIdKey, prefix) {
  try {
    if (!isBrowser() || !window.localStorage) return;
    const s = window.localStorage;
    const keys = [anonymousIdKey];
    for (let i = 0; i < s.length; i++) {
      const k = s.key(i);
      if (k && k.startsWith(prefix)) keys.push(k);
    }
    for (const k of keys) s.removeItem(k);
  } catch (_) { /* disabled storage: nothing stored */ }
}

// Calls `hook(event)`; returns [true, result] or [false, what it threw, as text].
export function callHook(hook, event) {
  try {
    return [true, hook(event)];
  } catch (e) {
    let text;
    try { text = String((e && e.message) || e); } catch (_) { text = "an exception"; }
    return [false, text];
  }
}

export function makeError(message, code, field) {
  const e = new Error(message);
  e.name = "SegOpsError";
  e.code = code;
  if (field) e.field = field;
  return e;
}

export function storageRemove(key) {
  try {
    if (isBrowser() && window.localStorage) window.localStorage.removeItem(key);
  } catch (_) { /* disabled storage: nothing to remove */ }
}

// The page snapshot trackPageView derives from: [url, path, search, title, referrer].
export function pageSnapshot() {
  if (!isBrowser()) return undefined;
  const l = window.location;
  return [l.href, l.pathname, l.search, document.title, document.referrer];
}

// Calls onHidden when the page is hidden or being unloaded (visibilitychange -> hidden, and
// pagehide), onShown when it is visible again, onOnline when the network returns, and
// onConsent(newValue) when another tab of this origin writes `consentKey` to localStorage.
// Returns a function that removes the listeners. Does nothing outside a browser.
export function watchPage(onHidden, onShown, onOnline, onConsent, consentKey) {
  if (!isBrowser()) return () => {};
  const visibility = () => (document.visibilityState === "hidden" ? onHidden() : onShown());
  const storage = (e) => { if (e.key === consentKey && typeof e.newValue === "string") onConsent(e.newValue); };
  document.addEventListener("visibilitychange", visibility);
  window.addEventListener("pagehide", onHidden);
  window.addEventListener("online", onOnline);
  window.addEventListener("storage", storage);
  return () => {
    document.removeEventListener("visibilitychange", visibility);
    window.removeEventListener("pagehide", onHidden);
    window.removeEventListener("online", onOnline);
    window.removeEventListener("storage", storage);
  };
}

// Takes (reads and removes) every saved snapshot under `prefix` except this tab's own, so that
// the next page load sends what an earlier one could not. Under a Web Lock where the browser
// has them, so that two tabs opening at once never both take the same snapshot.
export function takeSaved(prefix, ownKey) {
  const take = () => {
    const out = [];
    try {
      const s = window.localStorage;
      const keys = [];
      for (let i = 0; i < s.length; i++) {
        const k = s.key(i);
        if (k && k.startsWith(prefix) && k !== ownKey) keys.push(k);
      }
      for (const k of keys) {
        const v = s.getItem(k);
        s.removeItem(k);
        if (v) out.push(v);
      }
    } catch (_) { /* disabled storage: nothing saved */ }
    return out;
  };
  if (!isBrowser()) return Promise.resolve([]);
  try {
    if (navigator.locks && typeof navigator.locks.request === "function") {
      return navigator.locks.request(prefix + "lock", take).catch(() => take());
    }
  } catch (_) { /* no Web Locks: take without one */ }
  return Promise.resolve(take());
}
