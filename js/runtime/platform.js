// The effects the runtime needs from the platform, each guarded: fetch with a timeout and gzip,
// timers that do not keep Node alive unless awaited, page signals, and the batch context.

const isBrowser = () => typeof window !== "undefined" && typeof document !== "undefined";

// setTimeout that keeps a Node process alive only when asked: the background flush timer must
// not hold a script open, but a timer someone awaits (a flush() in backoff) must.
export function setTimer(cb, ms, keepAlive) {
  const t = setTimeout(cb, ms);
  if (!keepAlive && t && typeof t.unref === "function") t.unref();
  return t;
}

// Bodies from this size up are gzip-compressed where the platform has CompressionStream
// (browsers since 2023, Node 18+); smaller ones would gain little.
const GZIP_FROM = 1024;

function gzip(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer().then((b) => new Uint8Array(b));
}

// POSTs a JSON body, gzip-compressed when it is worth it (never with keepalive: the page may be
// gone before an asynchronous compression finishes). Never rejects: resolves to
// [status, retryAfter, text] where status 0 is a network failure (text says why) and -1 a
// timeout.
export function send(url, authorization, body, keepalive, timeoutMs) {
  const ctl = typeof AbortController === "function" ? new AbortController() : null;
  let timedOut = false;
  const timer = ctl
    ? setTimer(() => {
        timedOut = true;
        ctl.abort();
      }, timeoutMs, false)
    : null;
  const headers = { "content-type": "application/json", authorization };
  const compress = !keepalive && body.length >= GZIP_FROM && typeof CompressionStream === "function";
  const post = (b) =>
    fetch(url, {
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
      ? gzip(body)
          .then(
            (b) => {
              headers["content-encoding"] = "gzip";
              return b;
            },
            () => body,
          )
          .then(post)
      : post(body);
  } catch (e) {
    p = Promise.reject(e);
  }
  return p
    .then((r) => r.text().then((t) => [r.status, r.headers.get("retry-after"), t]))
    .catch((e) => [timedOut ? -1 : 0, null, String((e && e.message) || e)])
    .finally(() => {
      if (timer !== null) clearTimeout(timer);
    });
}

// Context common to every batch of a client, sent once per batch.
export function batchContext(name, version) {
  const ctx = { library: { name, version } };
  try {
    const o = Intl.DateTimeFormat().resolvedOptions();
    ctx.locale = (typeof navigator !== "undefined" && navigator.language) || o.locale;
    ctx.timezone = o.timeZone;
  } catch (_) {
    // Intl missing: leave the fields out
  }
  if (isBrowser()) {
    ctx.userAgent = navigator.userAgent;
  } else if (typeof process !== "undefined" && process.versions && process.versions.node) {
    ctx.runtime = { name: "node", version: process.versions.node };
  }
  return ctx;
}

// Calls onHidden when the page is hidden or being unloaded (visibilitychange -> hidden, and
// pagehide), onShown when it is visible again, onOnline when the network returns, and
// onStorage(key, newValue) when another tab of this origin writes a key. Returns a function
// that removes the listeners. Does nothing outside a browser.
export function watchPage(onHidden, onShown, onOnline, onStorage) {
  if (!isBrowser()) return () => {};
  const visibility = () => (document.visibilityState === "hidden" ? onHidden() : onShown());
  const storage = (e) => {
    if (typeof e.newValue === "string") onStorage(e.key, e.newValue);
  };
  document.addEventListener("visibilitychange", visibility);
  window.addEventListener("pagehide", onHidden);
  // Back from the back/forward cache (`persisted`); onShown does nothing on a page not hidden.
  window.addEventListener("pageshow", onShown);
  window.addEventListener("online", onOnline);
  window.addEventListener("storage", storage);
  return () => {
    document.removeEventListener("visibilitychange", visibility);
    window.removeEventListener("pagehide", onHidden);
    window.removeEventListener("pageshow", onShown);
    window.removeEventListener("online", onOnline);
    window.removeEventListener("storage", storage);
  };
}

// Calls onPath when a single-page app's route changes its path: history.pushState and
// replaceState (wrapped) and popstate (back and forward). Query-only and hash-only changes do
// not count (PostHog's rule), and neither does a second push of the same path. Returns a
// function that stops it: the wrappers are put back when they are still the outermost, and
// otherwise only call through.
export function watchRoutes(onPath) {
  let last = location.pathname;
  let on = true;
  const check = () => {
    const p = location.pathname;
    if (on && p !== last) {
      last = p;
      onPath();
    }
  };
  const wrap = (name) => {
    const original = history[name];
    const wrapper = function (...args) {
      const r = original.apply(this, args);
      check();
      return r;
    };
    history[name] = wrapper;
    return () => {
      if (history[name] === wrapper) history[name] = original;
    };
  };
  const undo = [wrap("pushState"), wrap("replaceState")];
  window.addEventListener("popstate", check);
  return () => {
    on = false;
    undo.forEach((f) => f());
    window.removeEventListener("popstate", check);
  };
}
