// The soak's wire recorder, installed before the SDK loads (first script of the soak page;
// required first by the Node client). It wraps globalThis.fetch, which the SDK calls for every
// request, and records each request and what became of it, independently of the SDK's own
// stats(): that is what the harness reconciles with the SDK and with the emulator. It also
// catches console.error calls, uncaught errors and unhandled promise rejections.
//
// Times are epoch milliseconds from performance.timeOrigin + performance.now(), which a
// page's Date.now override (the clock skew scenario) does not touch.
(function (root) {
  const clock = () => performance.timeOrigin + performance.now();
  const wire = []; // one record per request
  const errors = []; // console.error calls, uncaught errors, unhandled rejections
  const warnings = []; // console.warn calls (reported, not failures)
  const tokenUid = new Map(); // session token -> uid, from mint answers
  const peaks = { queued: 0, pending: 0 };
  let originalFetch = null;

  const text = (v) => {
    try {
      if (v instanceof Error) return v.name + ": " + v.message;
      return typeof v === "string" ? v : JSON.stringify(v);
    } catch (_) {
      return String(v);
    }
  };

  // Fills in what the request body says: the identity of a mint, the events of a batch.
  function readBody(rec, text, auth) {
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) { /* not JSON: leave the fields empty */ }
    if (!body) return;
    if (rec.kind === "mint") {
      rec.uid = body.user_id || body.anonymous_id || null;
    } else if (rec.kind === "ingest") {
      const events = Array.isArray(body.events) ? body.events : [body];
      rec.events = events.length;
      rec.seqs = events.map((e) => (e.properties && e.properties.seq) ?? (e.traits && e.traits.seq) ?? null);
      if (auth.startsWith("Bearer ")) rec.uid = tokenUid.get(auth.slice(7)) || "?";
    }
  }

  // A record for a request. A text body is read at once (a keepalive send on pagehide must be
  // complete in the record written right after); a gzip body (the SDK compresses larger
  // non-keepalive bodies) is inflated asynchronously, and until then `events` is null: unknown.
  function describe(url, init) {
    const path = new URL(url).pathname;
    const rec = { t0: clock(), t1: null, path, kind: "other", keepalive: !!(init && init.keepalive), uid: null, events: 0, seqs: [], outcome: null };
    if (path.endsWith("/api/auth/session/")) rec.kind = "mint";
    else if (path.endsWith("/api/ingestion/track/")) rec.kind = "ingest";
    if (rec.kind === "other" || !init) return rec;
    const headers = init.headers || {};
    const auth = headers.authorization || headers.Authorization || "";
    // The body's size on the wire (keepalive bodies count against the browser's 64 KiB cap).
    if (typeof init.body === "string") rec.bytes = typeof TextEncoder === "function" ? new TextEncoder().encode(init.body).length : init.body.length;
    else if (init.body && typeof init.body.byteLength === "number") rec.bytes = init.body.byteLength;
    if (typeof init.body === "string") {
      readBody(rec, init.body, auth);
    } else if (init.body && headers["content-encoding"] === "gzip") {
      rec.gzip = true;
      rec.events = null;
      const stream = new Blob([init.body]).stream().pipeThrough(new DecompressionStream("gzip"));
      new Response(stream).text().then((t) => readBody(rec, t, auth), () => {});
    }
    return rec;
  }

  async function settle(rec, response) {
    rec.outcome = response.status;
    rec.retryAfter = response.headers.get("retry-after");
    try {
      const body = await response.clone().text();
      rec.t1 = clock();
      let doc = null;
      try {
        doc = JSON.parse(body);
      } catch (_) { /* not JSON */ }
      if (!doc) return;
      if (doc.code) rec.code = doc.code;
      if (doc.code === "fault_injected") {
        const m = /fault (\d+) injected/.exec(doc.message || "");
        if (m) rec.fault = Number(m[1]);
      }
      if (rec.kind === "mint" && response.status === 200 && doc.token) {
        tokenUid.set(doc.token, doc.uid);
        rec.token = { uid: doc.uid, expiresIn: doc.expires_in };
      }
      if (rec.kind === "ingest" && response.status >= 200 && response.status < 300) {
        rec.accepted = doc.accepted;
        rec.duplicates = doc.duplicates;
        rec.rejected = Array.isArray(doc.rejected) ? doc.rejected.length : 0;
      }
    } catch (_) {
      rec.t1 = clock();
    }
  }

  function install() {
    if (originalFetch) return;
    originalFetch = root.fetch;
    root.fetch = function (url, init) {
      let rec;
      try {
        rec = describe(String(url), init);
      } catch (_) {
        rec = { t0: clock(), kind: "other", outcome: null, events: 0, seqs: [] };
      }
      wire.push(rec);
      let p;
      try {
        p = originalFetch.call(this, url, init);
      } catch (e) {
        p = Promise.reject(e);
      }
      return p.then(
        (response) => {
          // Record the outcome without delaying the SDK.
          settle(rec, response);
          return response;
        },
        (e) => {
          rec.t1 = clock();
          rec.outcome = e && e.name === "AbortError" ? "timeout" : "network";
          rec.error = text(e).slice(0, 200);
          throw e;
        },
      );
    };
    const con = root.console;
    const origError = con.error.bind(con);
    const origWarn = con.warn.bind(con);
    con.error = (...a) => {
      errors.push({ t: clock(), what: "console.error", message: a.map(text).join(" ").slice(0, 500) });
      origError(...a);
    };
    con.warn = (...a) => {
      warnings.push({ t: clock(), message: a.map(text).join(" ").slice(0, 500) });
      origWarn(...a);
    };
    if (typeof root.addEventListener === "function" && typeof root.document !== "undefined") {
      root.addEventListener("error", (e) => errors.push({ t: clock(), what: "error", message: text(e.error || e.message).slice(0, 500) }));
      root.addEventListener("unhandledrejection", (e) => errors.push({ t: clock(), what: "unhandledrejection", message: text(e.reason).slice(0, 500) }));
    } else if (typeof process !== "undefined" && process.on) {
      process.on("unhandledRejection", (r) => errors.push({ t: clock(), what: "unhandledRejection", message: text(r).slice(0, 500) }));
      process.on("uncaughtException", (e) => {
        errors.push({ t: clock(), what: "uncaughtException", message: text(e).slice(0, 500) });
      });
    }
  }

  // Samples the client's queue for the peaks report.
  function sample(client) {
    try {
      const s = client.stats();
      if (s.queued > peaks.queued) peaks.queued = s.queued;
      if (s.pending > peaks.pending) peaks.pending = s.pending;
    } catch (_) { /* a client being freed */ }
  }

  const api = { install, sample, wire, errors, warnings, peaks, clock };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.soakWire = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
