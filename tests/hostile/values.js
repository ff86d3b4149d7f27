// The hostile-values table (issue 8, "Bad input", JS side): a generator of hostile JavaScript
// values and a runner that applies each of them to every entry point of `SegOpsClient` that
// takes a JS value, then checks what came of it.
//
// Every case must end in one of:
// - a normal return (the event is accepted, maybe shortened by the caps, counted in stats());
// - a thrown `SegOpsError` (name "SegOpsError") whose `code` is one of the documented codes
//   and whose `field` names the argument.
// Never a wasm trap (`RuntimeError: unreachable`), never another exception. After the table,
// every client still works: a final normal `track` is delivered, and the emulator holds every
// accepted event exactly once (counted on a secret key created for the run).
//
// Each case's outcome is compared with tests/hostile/expected.json (what docs/bad-input.md
// documents). The same file runs in Node (tests/node/hostile.test.mjs, against the built
// package) and in Chromium and Firefox (tests/wasm_hostile.rs, wasm-bindgen-test), so it
// imports nothing: wasm-bindgen copies this one file into the test bundle.

/** The codes a `SegOpsError` may carry (src/error.rs, README). */
export const CODES = [
  "invalid_config",
  "invalid_argument",
  "invalid_api_key",
  "mcp_key_not_allowed",
  "event_too_large",
  "client_shut_down",
];

const MiB = 1 << 20;

/** A deeply nested object (or array) of `levels` levels. */
function deep(levels, array) {
  let v = array ? [] : {};
  for (let i = 0; i < levels; i++) v = array ? [v] : { a: v };
  return v;
}

function manyKeys(n) {
  const o = {};
  for (let i = 0; i < n; i++) o["k" + i] = i;
  return o;
}

const allTraps = [
  "get", "set", "has", "ownKeys", "getOwnPropertyDescriptor", "getPrototypeOf",
  "setPrototypeOf", "defineProperty", "deleteProperty", "isExtensible", "preventExtensions",
  "apply", "construct",
];

function throwingProxy(target) {
  const handler = {};
  for (const t of allTraps) {
    handler[t] = () => {
      throw new Error("proxy trap " + t);
    };
  }
  return new Proxy(target, handler);
}

function revokedProxy() {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
}

/** An error whose message and string form both throw: what code that stringifies it meets. */
function poisonedError() {
  const e = {};
  Object.defineProperty(e, "message", {
    get() {
      throw new Error("message getter");
    },
  });
  e.toString = () => {
    throw new Error("toString");
  };
  return e;
}

/**
 * The hostile values. `make(ctx)` builds a fresh one each time (some are consumed: revoked,
 * counted); `ctx.client` is the client the case runs on, for values that call back into it.
 * `fresh: true` values run on a throwaway client per case, so that whatever they do to a
 * client cannot disturb the others.
 */
export function hostileValues() {
  const v = (id, make, extra) => ({ id, make, ...extra });
  return [
    // Primitives.
    v("undefined", () => undefined),
    v("null", () => null),
    v("true", () => true),
    v("zero", () => 0),
    v("negative-zero", () => -0),
    v("minus-one", () => -1),
    v("fraction", () => 1.5),
    v("NaN", () => NaN),
    v("Infinity", () => Infinity),
    v("-Infinity", () => -Infinity),
    v("max-value", () => Number.MAX_VALUE),
    v("min-positive", () => Number.MIN_VALUE),
    v("unsafe-integer", () => 2 ** 53 + 2),
    v("bigint", () => 10n),
    v("symbol", () => Symbol("hostile")),
    // Strings.
    v("empty-string", () => ""),
    v("space", () => " "),
    v("short-string", () => "hostile"),
    v("201-chars", () => "e".repeat(201)),
    v("257-chars", () => "u".repeat(257)),
    v("8193-chars", () => "s".repeat(8193)),
    v("4-MiB-string", () => "a".repeat(4 * MiB)),
    v("2-Mi-emoji", () => "\u{1F600}".repeat(MiB)),
    v("lone-high-surrogate", () => "x\uD800y"),
    v("lone-low-surrogate", () => "\uDC00"),
    v("swapped-surrogates", () => "\uDC00\uD800"),
    v("nul-and-controls", () => "\u0000\u0001\u001f\u007f\b\f\n\r\t"),
    v("bidi-and-bom", () => "\uFEFF\u202Eevil\u202C\u2028\u2029"),
    v("proto-string", () => "__proto__"),
    v("json-text", () => '{"eventType":"x"}'),
    v("rfc3339-year-0", () => "0000-01-01T00:00:00Z"),
    v("rfc3339-feb-30", () => "2024-02-30T00:00:00Z"),
    v("rfc3339-leap-second", () => "2016-12-31T23:59:60Z"),
    v("rfc3339-offset", () => "2024-01-01T00:00:00+14:00"),
    v("url-javascript", () => "javascript:alert(1)"),
    v("url-data", () => "data:text/html,<script>alert(1)</script>"),
    v("String-object", () => new String("boxed")),
    v("Number-object", () => new Number(5)),
    v("Boolean-object", () => new Boolean(true)),
    // Functions.
    v("function", () => function hostile() {}),
    v("arrow-returning-null", () => () => null),
    v("async-function", () => async () => null),
    v("class", () => class Hostile {}),
    v("generator", () => function* gen() {}),
    // Arrays.
    v("empty-array", () => []),
    v("array", () => [1, "a", null, true]),
    v("sparse-array", () => [, , 1]), // eslint-disable-line no-sparse-arrays
    v("sparse-1Mi-holes", () => new Array(MiB)),
    v("array-with-props", () => Object.assign([1, 2], { extra: "prop", 5: "five" })),
    v("array-of-unjsonables", () => [undefined, () => 1, Symbol("s")]),
    v("array-with-bigint", () => [1n]),
    v("100k-items", () => Array.from({ length: 100000 }, (_, i) => i)),
    v("Uint8Array", () => new Uint8Array([1, 2, 3])),
    v("Float64Array-100k", () => new Float64Array(100000)),
    v("ArrayBuffer", () => new ArrayBuffer(8)),
    v("DataView", () => new DataView(new ArrayBuffer(8))),
    // Objects.
    v("empty-object", () => ({})),
    v("plain-object", () => ({ plan: "pro", n: 1 })),
    v("null-prototype", () => Object.assign(Object.create(null), { a: 1 })),
    v("frozen", () => Object.freeze({ a: Object.freeze([1]) })),
    v("sealed", () => Object.seal({ a: 1 })),
    v("proto-own-key", () => JSON.parse('{"__proto__":{"polluted":true},"a":1}')),
    v("constructor-prototype", () => ({ constructor: { prototype: { polluted: true } } })),
    v("symbol-keys", () => ({ [Symbol("k")]: 1, a: 1 })),
    v("non-enumerable", () => Object.defineProperty({ a: 1 }, "hidden", { value: 2, enumerable: false })),
    v("numeric-and-empty-keys", () => ({ 1: "one", 0: "zero", "": "empty" })),
    v("10k-char-key", () => ({ ["k".repeat(10000)]: 1 })),
    v("257-keys", () => manyKeys(257)),
    v("100k-keys", () => manyKeys(100000)),
    v("unjsonable-members", () => ({ f() {}, u: undefined, s: Symbol("s"), ok: 1 })),
    v("bigint-member", () => ({ n: 1n })),
    v("NaN-members", () => ({ nan: NaN, inf: Infinity, ninf: -Infinity, nz: -0 })),
    v("12-levels", () => deep(12, false)),
    v("1000-levels", () => deep(1000, false)),
    v("10k-levels", () => deep(10000, false)),
    v("10k-levels-array", () => deep(10000, true)),
    v("100k-levels", () => deep(100000, false)),
    v("cyclic-object", () => {
      const o = { a: 1 };
      o.self = o;
      return o;
    }),
    v("cyclic-array", () => {
      const a = [1];
      a.push(a);
      return a;
    }),
    v("cyclic-deep", () => {
      const o = { a: { b: { c: {} } } };
      o.a.b.c.back = o;
      return o;
    }),
    // Accessors and conversions that misbehave.
    v("getter-throws", () => ({
      get a() {
        throw new Error("getter");
      },
    })),
    v("getter-throws-symbol", () => ({
      get a() {
        throw Symbol("thrown");
      },
    })),
    v("getter-throws-poisoned", () => ({
      get a() {
        throw poisonedError();
      },
    })),
    v("getter-changes", () => {
      let n = 0;
      return {
        get a() {
          n += 1;
          return n % 2 ? "odd" : { even: n };
        },
      };
    }),
    v("toJSON-throws", () => ({
      toJSON() {
        throw new Error("toJSON");
      },
    })),
    v("toJSON-undefined", () => ({ toJSON: () => undefined })),
    v("toJSON-function", () => ({ toJSON: () => () => 1 })),
    v("toJSON-bigint", () => ({ toJSON: () => 5n })),
    v("toJSON-4-MiB", () => ({ toJSON: () => "j".repeat(4 * MiB) })),
    v("toJSON-string-instead", () => ({ a: 1, toJSON: () => "not an object" })),
    v("valueOf-toString-throw", () => ({
      valueOf() {
        throw new Error("valueOf");
      },
      toString() {
        throw new Error("toString");
      },
    })),
    v("toPrimitive-throws", () => ({
      [Symbol.toPrimitive]() {
        throw new Error("toPrimitive");
      },
    })),
    v("thenable-throws", () => ({
      then() {
        throw new Error("then");
      },
    })),
    v("proxy-every-trap-throws", () => throwingProxy({ a: 1 })),
    v("proxy-of-array-throws", () => throwingProxy([1])),
    v("proxy-of-function-throws", () => throwingProxy(function target() {})),
    v("proxy-transparent", () => new Proxy({ a: 1 }, {})),
    v("proxy-lying-ownKeys", () => new Proxy({}, { ownKeys: () => ["a", "a"] })),
    v("proxy-revoked", () => revokedProxy()),
    // Built-ins.
    v("Date", () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))),
    v("Date-invalid", () => new Date(NaN)),
    v("Date-year-275760", () => new Date(8.64e15)),
    v("Date-year-0", () => new Date(-62167219200000)),
    v("Map", () => new Map([["a", 1]])),
    v("Set", () => new Set([1])),
    v("WeakMap", () => new WeakMap()),
    v("RegExp", () => /hostile/g),
    v("Error", () => new Error("hostile")),
    v("Promise", () => Promise.resolve(1)),
    v("Promise-rejected", () => {
      const p = Promise.reject(new Error("rejected"));
      p.catch(() => {});
      return p;
    }),
    v("globalThis", () => globalThis),
    // Values that call back into the client while it reads them.
    v("getter-reenters-track", (ctx) => ({
      get a() {
        ctx.client.track({ eventType: "reentrant" });
        ctx.extraEvents += 1; // counted only if the inner call returned normally
        return "after";
      },
    })),
    v("getter-reenters-flush", (ctx) => ({
      get a() {
        ctx.client.flush().catch(() => {});
        return "after";
      },
    })),
    v("getter-calls-shutdown", (ctx) => ({
      get a() {
        ctx.client.shutdown();
        return "after";
      },
    }), { fresh: true }),
  ];
}

// ---- entry points ------------------------------------------------------------------------

/** A valid signature for `getUser()` cases: any 64 hex characters (sk keys ignore it). */
const SIG = "ab".repeat(32);

/**
 * The places a hostile value goes. `kind` says which client runs it:
 * - "config": `new SegOpsClient(config(v))`; `field` is what an error's field must start with;
 * - "call": a call on the table's main client;
 * - "getUser": the client whose `getUser()` returns what `ret(v)` makes;
 * - "beforeSend": the client whose `beforeSend(event)` returns what `hook(v, event)` makes;
 * - "consent": `setConsent(v)` on a client that records nothing;
 * - "closed": a call on a client that was shut down.
 * `events` is how many events one accepted call records (trackPageView records one in a
 * browser and nothing in Node).
 */
export function entryPoints() {
  const cfg = (field, put) => ({ kind: "config", id: "config." + field, field, put });
  const call = (id, field, run, events = 1) => ({ kind: "call", id, field, run, events });
  const prop = (v) => ({ value: v });
  const nested = (v) => ({ outer: { list: [v] } });
  const configFields = [
    "apiUrl", "apiKey", "getUser", "flushAt", "flushIntervalMs", "maxQueueEvents",
    "maxQueueBytes", "maxEventBytes", "maxBatchBytes", "requestTimeoutMs", "debug",
    "aiProviders", "consent", "respectGlobalPrivacyControl", "beforeSend",
  ];
  return [
    { kind: "config", id: "new SegOpsClient(v)", field: "", put: (_base, v) => v },
    ...configFields.map((f) => cfg(f, (base, v) => ({ ...base, [f]: v }))),
    cfg("aiProviders[0]", (base, v) => ({ ...base, aiProviders: [v] })),
    cfg("aiProviders[0].name", (base, v) => ({ ...base, aiProviders: [{ name: v, hosts: ["ai.example"] }] })),
    cfg("aiProviders[0].hosts", (base, v) => ({ ...base, aiProviders: [{ name: "x", hosts: v }] })),
    cfg("aiProviders[0].hosts[0]", (base, v) => ({ ...base, aiProviders: [{ name: "x", hosts: [v] }] })),
    cfg("aiProviders[0].pathPrefix", (base, v) => ({
      ...base, aiProviders: [{ name: "x", hosts: ["ai.example"], pathPrefix: v }],
    })),
    cfg("aiProviders[0].utmSources", (base, v) => ({
      ...base, aiProviders: [{ name: "x", hosts: ["ai.example"], utmSources: v }],
    })),

    call("track(v)", "track", (c, v) => c.track(v)),
    call("track.eventType", "track.eventType", (c, v) => c.track({ eventType: v })),
    call("track.properties", "track.properties", (c, v) => c.track({ eventType: "hostile", properties: v })),
    call("track.properties.value", "track.properties", (c, v) => c.track({ eventType: "hostile", properties: prop(v) })),
    call("track.properties.outer.list[0]", "track.properties", (c, v) =>
      c.track({ eventType: "hostile", properties: nested(v) })),
    call("track.userId", "track.userId", (c, v) => c.track({ eventType: "hostile", userId: v })),
    call("track.anonymousId", "track.anonymousId", (c, v) => c.track({ eventType: "hostile", anonymousId: v })),
    call("track.timestamp", "track.timestamp", (c, v) => c.track({ eventType: "hostile", timestamp: v })),
    call("identify(v)", "identify", (c, v) => c.identify(v)),
    call("identify.userId", "identify.userId", (c, v) => c.identify({ userId: v })),
    call("identify.traits", "identify.traits", (c, v) => c.identify({ userId: "hostile-user", traits: v })),
    call("identify.traits.value", "identify.traits", (c, v) => c.identify({ userId: "hostile-user", traits: prop(v) })),
    call("identify.anonymousId", "identify.anonymousId", (c, v) =>
      c.identify({ userId: "hostile-user", anonymousId: v })),
    call("identify.timestamp", "identify.timestamp", (c, v) => c.identify({ userId: "hostile-user", timestamp: v })),
    call("page(v)", "page", (c, v) => c.page(v)),
    call("page.name", "page.name", (c, v) => c.page({ name: v })),
    call("page.properties", "page.properties", (c, v) => c.page({ properties: v })),
    call("page.properties.value", "page.properties", (c, v) => c.page({ properties: prop(v) })),
    call("page.name+properties", "page.properties", (c, v) => c.page({ name: "hostile", properties: v })),
    call("page.userId", "page.userId", (c, v) => c.page({ userId: v })),
    call("page.timestamp", "page.timestamp", (c, v) => c.page({ timestamp: v })),
    call("trackPageView(v)", "trackPageView", (c, v) => c.trackPageView(v), "page"),
    call("trackPageView.properties", "trackPageView.properties", (c, v) => c.trackPageView({ properties: v }), "page"),
    call("trackPageView.properties.value", "trackPageView.properties", (c, v) =>
      c.trackPageView({ properties: prop(v) }), "page"),
    call("trackPageView.anonymousId", "trackPageView.anonymousId", (c, v) =>
      c.trackPageView({ anonymousId: v }), "page"),
    // flush() takes no argument: one given is ignored.
    call("flush(v)", "flush", (c, v) => {
      c.flush(v).catch(() => {});
    }, 0),

    { kind: "getUser", id: "getUser() returns v", field: "getUser", ret: (v) => v },
    { kind: "getUser", id: "getUser() throws v", field: "getUser", ret: (v) => thrown(v) },
    // A getUser() id of the wrong type is named getUser().userId; one of the wrong length is
    // named as the call's own field (track.userId), where explicit ids are checked too.
    { kind: "getUser", id: "getUser().userId", field: ["getUser().userId", "track.userId"], ret: (v) => ({ userId: v }) },
    { kind: "getUser", id: "getUser().anonymousId", field: ["getUser().anonymousId", "track.anonymousId"], ret: (v) => ({ anonymousId: v }) },
    { kind: "getUser", id: "getUser().userIdSig", field: "getUser", ret: (v) => ({ userId: "signed-user", userIdSig: v, userIdTs: 1700000000 }) },
    { kind: "getUser", id: "getUser().userIdTs", field: "getUser", ret: (v) => ({ userId: "signed-user", userIdSig: SIG, userIdTs: v }) },

    { kind: "beforeSend", id: "beforeSend returns v", field: "", hook: (v) => v },
    { kind: "beforeSend", id: "beforeSend throws v", field: "", hook: (v) => thrown(v) },
    { kind: "beforeSend", id: "beforeSend().eventType", field: "", hook: (v, e) => ({ ...e, eventType: v }) },
    { kind: "beforeSend", id: "beforeSend().userId", field: "", hook: (v, e) => ({ ...e, userId: v }) },
    { kind: "beforeSend", id: "beforeSend().timestamp", field: "", hook: (v, e) => ({ ...e, timestamp: v }) },
    { kind: "beforeSend", id: "beforeSend().properties", field: "", hook: (v, e) => ({ ...e, properties: v }) },
    { kind: "beforeSend", id: "beforeSend().context", field: "", hook: (v, e) => ({ ...e, context: v }) },

    { kind: "consent", id: "setConsent(v)", field: "setConsent" },

    { kind: "closed", id: "after shutdown: track(v)", field: "", run: (c, v) => c.track(v) },
    { kind: "closed", id: "after shutdown: identify(v)", field: "", run: (c, v) => c.identify(v) },
    { kind: "closed", id: "after shutdown: page(v)", field: "", run: (c, v) => c.page(v) },
    { kind: "closed", id: "after shutdown: trackPageView(v)", field: "", run: (c, v) => c.trackPageView(v) },
    { kind: "closed", id: "after shutdown: flush(v)", field: "", run: (c, v) => c.flush(v) },
    { kind: "closed", id: "after shutdown: setConsent(v)", field: "setConsent", run: (c, v) => c.setConsent(v) },
  ];
}

/**
 * Marks a `getUser` / `beforeSend` answer that is thrown instead of returned. A WeakSet, not a
 * class and `instanceof`: membership runs no code of the value (a hostile Proxy's traps), and
 * WebKit's optimizing JIT was seen to let `safe(() => answer instanceof Thrown, false)` answer
 * false after a few hundred calls, which turned these rows into returns.
 */
const THROWN = new WeakSet();

function thrown(value) {
  const t = { value };
  THROWN.add(t);
  return t;
}

function unwrap(answer) {
  if (THROWN.has(answer)) throw answer.value;
  return answer;
}

// ---- known SDK bugs -----------------------------------------------------------------------

/**
 * KNOWN SDK BUGS (docs/bad-input.md#known-sdk-bugs), none today. Each entry is
 * `{ id, what, matches(entry, value), symptom(outcome) }`: the cases it matches run on a
 * throwaway client with a key whose events are not counted, are printed as
 * `KNOWN SDK BUG <id>` and do not fail the table, whether they still misbehave (`symptom`) or
 * not; once fixed, remove the entry and add the cases' new outcomes to expected.json.
 * tests/node/hostile.test.mjs has one `todo` test per bug that asserts the fixed behaviour.
 */
export const KNOWN_SDK_BUGS = [];

function knownBug(entry, value) {
  return KNOWN_SDK_BUGS.find((b) => b.matches(entry, value)) || null;
}

// ---- outcomes -----------------------------------------------------------------------------

function safe(f, fallback) {
  try {
    return f();
  } catch (_) {
    return fallback;
  }
}

function describeThrown(e) {
  const name = safe(() => (e && typeof e === "object" ? String(e.name) : typeof e), "?");
  const message = safe(() => String(e && e.message), "?").slice(0, 160);
  return { name, message };
}

/**
 * What a thrown value was: `<code> <field>` for a SegOpsError with a documented code, else
 * `TRAP ...` (a wasm trap: the instance is dead) or `NOT-SEGOPS ...` (any other exception).
 */
export function classifyThrown(e) {
  const isTrap = safe(() => typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError, false);
  const { name, message } = describeThrown(e);
  if (isTrap || /unreachable|RuntimeError|memory access out of bounds/i.test(name + " " + message)) {
    return { outcome: "TRAP " + name + ": " + message, documented: false };
  }
  const code = safe(() => e.code, undefined);
  const field = safe(() => e.field, undefined);
  if (name === "SegOpsError" && CODES.includes(code) && (field === undefined || typeof field === "string")) {
    // A field that quotes a huge unknown key is shortened in the table (not in the check).
    const shown = field === undefined ? "-" : field.length > 60 ? `${field.slice(0, 40)}...(${field.length} chars)` : field;
    return { outcome: code + " " + shown, documented: true, code, field };
  }
  return { outcome: "NOT-SEGOPS " + name + ": " + message, documented: false };
}

/** Tags for a normal return, from the stats before and after the call. */
function okTags(before, after) {
  const tags = [];
  for (const cap of ["depth", "keys", "length"]) {
    if (after.truncatedBy[cap] > before.truncatedBy[cap]) tags.push("cut:" + cap);
  }
  if (after.beforeSendErrors > before.beforeSendErrors) tags.push("kept:beforeSendError");
  const drops = (s) => (s.dropped && s.dropped.before_send) || 0;
  if (drops(after) > drops(before)) tags.push("dropped:before_send");
  return tags.length ? "ok " + tags.join(" ") : "ok";
}

/** The codes each kind of entry point may throw. */
const CODES_BY_KIND = {
  config: ["invalid_config", "invalid_api_key", "mcp_key_not_allowed"],
  call: ["invalid_argument", "event_too_large"],
  getUser: ["invalid_config", "invalid_argument"],
  beforeSend: [],
  consent: ["invalid_argument"],
  closed: ["client_shut_down", "invalid_argument"],
};

/**
 * Why a documented error does not fit its entry point, or null when it does. A value that shuts
 * the client down while the SDK reads it makes the call itself one after shutdown().
 */
function misfit(entry, result, value) {
  if (value && value.id === "getter-calls-shutdown" && result.code === "client_shut_down") return null;
  if (!CODES_BY_KIND[entry.kind].includes(result.code)) {
    return `${result.code} is not a code ${entry.kind === "beforeSend" ? "beforeSend problems" : entry.id} may throw`;
  }
  const wants = [entry.field].flat().filter(Boolean);
  const f = result.field;
  if (!wants.length) return null;
  if (f === undefined) {
    return result.code === "event_too_large" ? null : `the error names no field (${wants.join(" or ")} expected)`;
  }
  // The field itself, a part of it (track.properties.x) or the object that holds it
  // (aiProviders[0] for aiProviders[0].hosts[0]).
  const path = (a, b) => a === b || [".", "[", "("].some((sep) => b.startsWith(a + sep));
  if (wants.some((want) => path(want, f) || path(f, want))) return null;
  return `the error's field ${JSON.stringify(f)} does not name ${wants.join(" or ")}`;
}

// ---- expected outcomes ----------------------------------------------------------------------

/**
 * expected.json: `{ runtimes: { all: { entry: { "*": default, value: outcome } }, node: {...},
 * browser: {...}, chromium: {...}, firefox: {...} } }`. A runtime's section overrides
 * "browser" (Chromium and Firefox), which overrides "all"; in a section, an entry's "*" is
 * the outcome of every value it does not list.
 */
export function expectedOutcome(expected, runtime, entryId, valueId) {
  const sections = [runtime, runtime === "node" ? null : "browser", "all"];
  for (const name of sections) {
    const table = name && expected.runtimes[name] && expected.runtimes[name][entryId];
    if (!table) continue;
    if (valueId in table) return table[valueId];
    if ("*" in table && name === "all") return table["*"];
  }
  return undefined;
}

function compactSection(outcomes) {
  // outcomes: { entryId: { valueId: outcome } } -> the most frequent outcome becomes "*".
  const out = {};
  for (const entryId of Object.keys(outcomes).sort()) {
    const byValue = outcomes[entryId];
    const freq = {};
    for (const o of Object.values(byValue)) freq[o] = (freq[o] || 0) + 1;
    const common = Object.keys(freq).sort((a, b) => freq[b] - freq[a] || (a < b ? -1 : 1))[0];
    const table = { "*": common };
    for (const valueId of Object.keys(byValue).sort()) {
      if (byValue[valueId] !== common) table[valueId] = byValue[valueId];
    }
    out[entryId] = table;
  }
  return out;
}

/**
 * expected.json from the outcomes of each runtime ({ node: rows, chromium: rows, firefox:
 * rows }, each row { entry, value, outcome }): what all agree on goes to "all" (compacted),
 * what the two browsers agree on to "browser", the rest to each runtime.
 */
export function expectedFile(byRuntime) {
  const runtimes = Object.keys(byRuntime);
  const maps = {};
  for (const r of runtimes) {
    maps[r] = {};
    for (const row of byRuntime[r]) {
      if (row.knownBug) continue;
      (maps[r][row.entry] = maps[r][row.entry] || {})[row.value] = row.outcome;
    }
  }
  const first = maps[runtimes[0]];
  const all = {};
  const sections = { browser: {} };
  for (const r of runtimes) sections[r] = {};
  const put = (section, e, v, o) => ((section[e] = section[e] || {})[v] = o);
  for (const e of Object.keys(first)) {
    for (const v of Object.keys(first[e])) {
      const seen = runtimes.map((r) => maps[r][e] && maps[r][e][v]);
      const browsers = runtimes.filter((r) => r !== "node");
      if (seen.every((o) => o === seen[0])) {
        put(all, e, v, seen[0]);
        continue;
      }
      const nodeAt = runtimes.indexOf("node");
      const base = nodeAt >= 0 ? seen[nodeAt] : seen[0];
      put(all, e, v, base);
      const b = browsers.map((r) => maps[r][e] && maps[r][e][v]);
      if (b.length && b.every((o) => o === b[0])) {
        if (b[0] !== base) put(sections.browser, e, v, b[0]);
      } else {
        for (const r of browsers) {
          const o = maps[r][e] && maps[r][e][v];
          if (o !== base) put(sections[r], e, v, o);
        }
      }
    }
  }
  const doc = { runtimes: { all: compactSection(all) } };
  for (const [name, section] of Object.entries(sections)) {
    if (Object.keys(section).length) doc.runtimes[name] = section;
  }
  // One entry point a line: readable diffs.
  const lines = ["{", '  "runtimes": {'];
  const names = Object.keys(doc.runtimes);
  names.forEach((name, i) => {
    lines.push(`    ${JSON.stringify(name)}: {`);
    const entries = Object.keys(doc.runtimes[name]).sort();
    entries.forEach((e, j) => {
      const comma = j < entries.length - 1 ? "," : "";
      lines.push(`      ${JSON.stringify(e)}: ${JSON.stringify(doc.runtimes[name][e])}${comma}`);
    });
    lines.push("    }" + (i < names.length - 1 ? "," : ""));
  });
  lines.push("  }", "}");
  return lines.join("\n") + "\n";
}

// ---- the emulator --------------------------------------------------------------------------

async function api(env, method, path, { auth, body } = {}) {
  const headers = {};
  if (auth) headers.authorization = auth;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(env.apiUrl + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function ownerToken(env) {
  const login = await api(env, "POST", "/api/auth/login/", {
    body: { email: env.ownerEmail, password: env.ownerPassword },
  });
  return "Bearer " + login.token;
}

/** Every stored event sent with the key `keyId`. */
export async function storedEvents(env, keyId) {
  const auth = await ownerToken(env);
  const found = [];
  let after = 0;
  for (;;) {
    const page = await api(env, "GET", `/api/events/?limit=1000&after=${after}`, { auth });
    if (page.events.length === 0) return found;
    for (const e of page.events) if (e.key_id === keyId) found.push(e);
    after = page.next_after;
  }
}

/** A fresh secret key of the dev tenant: `{ id, key }`. */
export async function createSecretKey(env, name) {
  return api(env, "POST", "/api/auth/api-keys/", {
    auth: await ownerToken(env),
    body: { name, kind: "secret" },
  });
}

// ---- the runner ---------------------------------------------------------------------------

const tick = () => new Promise((r) => setTimeout(r, 0));

function attempt(f) {
  try {
    return { ok: true, r: f() };
  } catch (e) {
    return { ok: false, thrown: classifyThrown(e) };
  }
}

/**
 * Runs the whole table with `SegOpsClient` (the class) against the emulator at `env.apiUrl`.
 * `env`: { apiUrl, ownerEmail, ownerPassword, runtime ("node" | "chromium" | "firefox" | "webkit"),
 * expected (expected.json, parsed; null to only record), log (a line printer) }.
 * Resolves to { rows, problems, counts }: `problems` is empty when every case behaved and the
 * delivery checks held.
 */
export async function runHostileTable(SegOpsClient, env) {
  const log = env.log || (() => {});
  const browser = typeof window !== "undefined" && typeof document !== "undefined";
  const created = await createSecretKey(env, "hostile table " + env.runtime);
  // Throwaway clients (known bugs, values that shut a client down) use another key: their
  // events are not counted.
  const spare = await createSecretKey(env, "hostile table spare " + env.runtime);
  const base = () => ({ apiUrl: env.apiUrl, apiKey: created.key });
  const spareBase = () => ({ apiUrl: env.apiUrl, apiKey: spare.key });

  // getUser() and beforeSend() answer whatever the current case wants.
  let userAnswer = () => null;
  let hookAnswer = (e) => e;
  const withHooks = (cfg, kind) => {
    if (kind === "getUser") cfg.getUser = () => unwrap(userAnswer());
    if (kind === "beforeSend") cfg.beforeSend = (e) => unwrap(hookAnswer(e));
    return cfg;
  };
  const main = new SegOpsClient(base());
  const userClient = new SegOpsClient(withHooks(base(), "getUser"));
  const hookClient = new SegOpsClient(withHooks(base(), "beforeSend"));
  const consentClient = new SegOpsClient({ ...base(), consent: "pending" });
  const closed = new SegOpsClient(base());
  await closed.shutdown();
  const counted = [main, userClient, hookClient];
  const shared = { call: main, getUser: userClient, beforeSend: hookClient, consent: consentClient, closed };

  const rows = [];
  const problems = [];
  const knownBugRows = [];
  let expectedEvents = 0;

  for (const entry of entryPoints()) {
    for (const value of hostileValues()) {
      const bug = knownBug(entry, value);
      const quarantined = Boolean(bug || value.fresh);
      let result;
      let fresh = null;
      try {
        let client = shared[entry.kind];
        if (entry.kind !== "config" && quarantined) {
          const cfg = withHooks(spareBase(), entry.kind);
          if (entry.kind === "consent" || entry.kind === "closed") cfg.consent = "pending";
          fresh = new SegOpsClient(cfg);
          if (entry.kind === "closed") await fresh.shutdown();
          client = fresh;
        }
        const ctx = { client, extraEvents: 0 };
        const v = value.make(ctx);
        if (entry.kind === "config") {
          const a = attempt(() => new SegOpsClient(entry.put(quarantined ? spareBase() : base(), v)));
          if (a.ok) await a.r.shutdown();
          result = a.ok ? { outcome: "ok" } : a.thrown;
        } else if (entry.kind === "consent" || entry.kind === "closed") {
          const a = attempt(() => (entry.kind === "consent" ? client.setConsent(v) : entry.run(client, v)));
          if (a.ok && a.r && typeof a.r.catch === "function") a.r.catch(() => {});
          result = a.ok ? { outcome: "ok" } : a.thrown;
        } else {
          const before = client.stats();
          let a;
          if (entry.kind === "call") {
            a = attempt(() => entry.run(client, v));
          } else if (entry.kind === "getUser") {
            userAnswer = () => entry.ret(v);
            a = attempt(() => client.track({ eventType: "via_get_user" }));
          } else {
            hookAnswer = (e) => entry.hook(v, e);
            a = attempt(() => client.track({ eventType: "via_before_send" }));
          }
          userAnswer = () => null;
          hookAnswer = (e) => e;
          if (a.ok) {
            const after = safe(() => client.stats(), null);
            result = { outcome: after ? okTags(before, after) : "ok" };
            let n = entry.kind === "call" ? entry.events : 1;
            if (n === "page") n = browser ? 1 : 0;
            if (result.outcome.includes("dropped:before_send")) n = 0;
            if (!quarantined) expectedEvents += n;
          } else result = a.thrown;
          if (!quarantined) expectedEvents += ctx.extraEvents;
        }
      } catch (e) {
        result = { outcome: "RUNNER ERROR " + describeThrown(e).message, documented: false };
      }
      if (fresh) {
        fresh.shutdown().catch(() => {});
      }

      const key = entry.id + " | " + value.id;
      const row = { entry: entry.id, value: value.id, outcome: result.outcome };
      rows.push(row);
      if (bug) {
        row.knownBug = bug.id;
        const still = bug.symptom(result.outcome);
        knownBugRows.push(row);
        log(`${entry.id.padEnd(34)} ${value.id.padEnd(26)} ${result.outcome}   ` +
          `<- KNOWN SDK BUG ${bug.id}${still ? "" : " (symptom gone: fixed?)"}`);
        continue;
      }
      log(`${entry.id.padEnd(34)} ${value.id.padEnd(26)} ${result.outcome}`);
      const fail = (m) => problems.push(`${key}: ${m}`);
      if (result.documented === false) {
        fail(result.outcome);
        continue;
      }
      if (result.code !== undefined) {
        const why = misfit(entry, result, value);
        if (why) fail(why);
      }
      if (env.expected) {
        const want = expectedOutcome(env.expected, env.runtime, entry.id, value.id);
        if (want === undefined) fail(`not in tests/hostile/expected.json (got ${result.outcome})`);
        else if (want !== result.outcome) fail(`expected ${want}, got ${result.outcome}`);
      }
    }
    // Let deliveries run between entry points, so that the queues stay far from their bounds.
    await tick();
    await Promise.all(counted.map((c) => c.flush()));
  }

  // Every client still works: one last normal event each, then everything is delivered, once.
  const sentinel = "hostile_sentinel";
  for (const c of counted) c.track({ eventType: sentinel, properties: { runtime: env.runtime } });
  expectedEvents += counted.length;
  consentClient.setConsent("pending"); // leaves no choice behind in localStorage
  await Promise.all(counted.map((c) => c.flush()));
  const stats = counted.map((c) => c.stats());
  const sent = stats.reduce((n, s) => n + s.sent, 0);
  const hookDrops = (s) => (s.dropped && s.dropped.before_send) || 0;
  const dropped = stats.reduce((n, s) => n + s.droppedTotal - hookDrops(s), 0);
  const stored = await storedEvents(env, created.id);
  const ids = new Set(stored.map((e) => e.message_id));
  const sentinels = stored.filter((e) => e.event_type === sentinel).length;
  if (dropped !== 0) problems.push(`events dropped (not by beforeSend): ${JSON.stringify(stats.map((s) => s.dropped))}`);
  if (ids.size !== stored.length) problems.push(`an event was stored twice (${stored.length} rows, ${ids.size} ids)`);
  if (stored.length !== expectedEvents) {
    problems.push(`the emulator stored ${stored.length} events; the accepted calls made ${expectedEvents}`);
  }
  if (sent !== expectedEvents) problems.push(`stats().sent is ${sent}; the accepted calls made ${expectedEvents}`);
  if (sentinels !== counted.length) problems.push(`${sentinels} sentinel events stored, not ${counted.length}`);
  for (const s of stats) if (s.pending !== 0) problems.push(`a client still has ${s.pending} events pending`);
  for (const c of [main, userClient, hookClient, consentClient]) await c.shutdown();
  const counts = {
    cases: rows.length,
    knownBugCases: knownBugRows.length,
    acceptedEvents: expectedEvents,
    sent,
    stored: stored.length,
  };
  log(`${counts.cases} cases (${counts.knownBugCases} on known SDK bugs); ${expectedEvents} events accepted, ` +
    `${sent} sent, ${stored.length} stored once each; ${problems.length} problems`);
  return { rows, problems, counts };
}

/**
 * The wasm-bindgen-test entry: any client instance (its constructor is the class under test)
 * and expected.json's text. Resolves to { problems, table, counts, rows }.
 */
export async function runHostileTableFrom(sample, apiUrl, ownerEmail, ownerPassword, runtime, expectedJson) {
  const lines = [];
  const result = await runHostileTable(sample.constructor, {
    apiUrl,
    ownerEmail,
    ownerPassword,
    runtime,
    expected: expectedJson ? JSON.parse(expectedJson) : null,
    log: (l) => lines.push(l),
  });
  return { ...result, table: lines.join("\n"), rowsJson: JSON.stringify(result.rows) };
}

/** "node", "firefox" or "chromium": which row set of expected.json applies here. */
export function detectRuntime() {
  if (typeof window === "undefined" || typeof navigator === "undefined") return "node";
  const ua = navigator.userAgent;
  if (/Firefox\//.test(ua)) return "firefox";
  // WebKitGTK's MiniBrowser and Safari: AppleWebKit without Chrome.
  return /AppleWebKit\//.test(ua) && !/Chrome\//.test(ua) ? "webkit" : "chromium";
}
