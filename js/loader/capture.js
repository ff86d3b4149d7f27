// Recording a call as the core reads it: one JSON text with its arguments, its time, the app's
// user at that moment, its page and its message id. Nothing here decides whether a value is
// valid: JSON.stringify carries what it can, and what it cannot is named by a code (see
// src/core/client/input.rs for the format and for every check).

const KINDS = { function: 1, symbol: 1, bigint: 1 };

// JSON.stringify drops functions and symbols and throws on bigints; the core names them instead.
class Nested {
  constructor(kind, key) {
    this.c = "nested:" + kind + ":" + key;
  }
}

function replacer(key, v) {
  if (KINDS[typeof v]) throw new Nested(typeof v, key);
  return v;
}

function code(e) {
  if (e instanceof Nested) return e.c;
  if (e instanceof RangeError) return "deep";
  let m = "";
  try {
    m = String((e && e.message) || e);
  } catch (_) {}
  return /circular|cyclic/i.test(m) ? "cycle" : "json:" + m;
}

function isThenable(v) {
  try {
    return v instanceof Promise || typeof v.then === "function";
  } catch (_) {
    return false;
  }
}

const q = (s) => JSON.stringify(s);

// The core's record of a value: {"a":json} | {} | {"x":{"":code}} | {"a":{...},"x":{field:code}}.
export function ser(v) {
  if (v === undefined) return "{}";
  const t = typeof v;
  if (KINDS[t]) return '{"x":{"":"' + t + '"}}';
  if (t === "object" && v !== null && isThenable(v)) return '{"x":{"":"promise"}}';
  try {
    const j = JSON.stringify(v, replacer);
    if (j === undefined) return "{}";
    // NaN, Infinity or an invalid Date is not null (which beforeSend returns to drop an event).
    if (j === "null" && v !== null) return '{"x":{"":"' + (t === "number" ? "number" : "object") + '"}}';
    return '{"a":' + j + "}";
  } catch (e) {
    if (t !== "object" || v === null) return '{"x":{"":' + q(code(e)) + "}}";
  }
  // Field by field, so that the core can name the field JSON could not carry.
  let keys;
  try {
    keys = Object.keys(v);
  } catch (_) {
    return '{"x":{"":"keys"}}';
  }
  let isArray = false;
  try {
    isArray = Array.isArray(v);
  } catch (_) {}
  if (isArray) return '{"x":{"":"array"}}';
  const a = [];
  const x = [];
  for (const k of keys) {
    let f;
    try {
      f = v[k];
    } catch (_) {
      x.push(q(k) + ':"read"');
      continue;
    }
    if (f === undefined) continue;
    if (KINDS[typeof f]) {
      x.push(q(k) + ":" + q(typeof f));
      continue;
    }
    try {
      const j = JSON.stringify(f, replacer);
      if (j !== undefined) a.push(q(k) + ":" + j);
    } catch (e) {
      x.push(q(k) + ":" + q(code(e)));
    }
  }
  return '{"a":{' + a.join(",") + '},"x":{' + x.join(",") + "}}";
}

// ser() of what calling f() returns, or {"e": what it threw}.
export function serCall(f, arg) {
  let v;
  try {
    v = f(arg);
  } catch (e) {
    let m = "an exception";
    try {
      m = String((e && e.message) || e);
    } catch (_) {}
    return '{"e":' + q(m) + "}";
  }
  return ser(v);
}

// What getUser() returned: only the four fields the SDK reads, as ser() records them. A getter
// elsewhere on the app's object is never run, and neither is anything inside a field that is
// an object where a string or number belongs (its type is all the core needs): getUser() runs
// at every call, so a getter that makes a call would recurse.
const USER = ["userId", "anonymousId", "userIdSig", "userIdTs"];
function serUser(getUser) {
  let v;
  try {
    v = getUser();
  } catch (e) {
    return serCall(() => {
      throw e;
    });
  }
  if (!v || typeof v !== "object" || isThenable(v)) return ser(v);
  const o = {};
  const x = [];
  for (const k of USER) {
    try {
      const f = v[k];
      if (f && typeof f === "object") x.push('"' + k + '":"' + (Array.isArray(f) ? "array" : "object") + '"');
      else if (f !== undefined) o[k] = f;
    } catch (_) {
      x.push('"' + k + '":"read"');
    }
  }
  const s = ser(o);
  return x.length ? s.slice(0, -1) + ',"x":{' + x.join(",") + "}}" : s;
}

export const isBrowser = () => typeof window !== "undefined" && typeof document !== "undefined";

// The page at a call: {url, path, search, title, referrer} as JSON, cached until the URL, the
// title or the referrer changes (a single-page app changes the first two without a reload).
let lastHref, lastTitle, lastRef, lastPage;
export function page() {
  try {
    const l = window.location;
    const t = document.title;
    const r = document.referrer;
    if (l.href !== lastHref || t !== lastTitle || r !== lastRef) {
      lastHref = l.href;
      lastTitle = t;
      lastRef = r;
      lastPage = q({ url: l.href, path: l.pathname, search: l.search, title: t, referrer: r });
    }
    return lastPage;
  } catch (_) {
    return undefined;
  }
}

// Random bytes, 256 at a time (a call needs 16).
let pool = new Uint8Array(0);
let at = 0;
export function random(n) {
  if (at + n > pool.length) {
    pool = new Uint8Array(256);
    globalThis.crypto.getRandomValues(pool);
    at = 0;
  }
  at += n;
  return pool.subarray(at - n, at);
}

export function hex(bytes) {
  let s = "";
  for (const b of bytes) s += (b < 16 ? "0" : "") + b.toString(16);
  return s;
}

// A UUIDv4: the message id the server deduplicates on, given at the call so that a call saved
// by a page that closed and taken up by the next one is still the same event.
export function uuid() {
  const b = random(16);
  const h = hex(b);
  return (
    h.slice(0, 8) + "-" + h.slice(8, 12) + "-4" + h.slice(13, 16) + "-" +
    "89ab"[b[8] >> 6] + h.slice(17, 20) + "-" + h.slice(20)
  );
}

// The record of a call. `getUser` is asked unless the call names its identity itself (then
// only when it names a user id: a key that requires signed ids takes getUser's signature).
export function record(method, arg, getUser) {
  let s = '{"m":"' + method + '","i":"' + uuid() + '"';
  if (method === "pageView") s += ',"j":"' + uuid() + '"';
  s += ',"t":' + Date.now();
  if (getUser) {
    let named = false;
    let user = false;
    try {
      if (arg && typeof arg === "object") {
        user = arg.userId != null;
        named = user || arg.anonymousId != null;
      }
    } catch (_) {}
    if (!named || user) s += ',"u":' + serUser(getUser);
  }
  if (isBrowser()) {
    const p = page();
    if (p) s += ',"p":' + p;
  }
  return s + ',"v":' + ser(arg) + "}";
}

// The error every SDK call throws: an Error with a stable `code` and the `field`.
export function makeError(code, field, message) {
  const e = new Error(message);
  e.name = "SegOpsError";
  e.code = code;
  if (field) e.field = field;
  return e;
}

// The core's error text (\x01code\x01field\x01message) as a SegOpsError.
export const coreError = (t) => makeError(...t.slice(1).split("\x01"));
