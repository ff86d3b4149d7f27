// The loader's own logic, on its source modules (js/loader/): how a value is recorded for the
// core, what a call's record holds, the consent a client starts in, and the buffer of calls made
// before the module is ready. A fake window, document and localStorage stand in for a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ser, record, uuid } from "../../js/loader/capture.js";
import { startConsent, keepChoice, CONSENT_KEY, ANON_KEY, PREFIX } from "../../js/loader/store.js";
import { Buffer } from "../../js/loader/buffer.js";

/** Runs `f` with a fake browser: localStorage (a Map), listeners, navigator fields. */
function inBrowser(f, { gpc = false, store = {} } = {}) {
  const items = new Map(Object.entries(store));
  const listeners = [];
  const saved = {
    window: globalThis.window,
    document: globalThis.document,
    navigator: Object.getOwnPropertyDescriptor(globalThis, "navigator"),
  };
  const target = { addEventListener: (t, l) => listeners.push(t), removeEventListener() {} };
  globalThis.window = {
    ...target,
    location: { href: "https://shop.test/p?q=1", pathname: "/p", search: "?q=1" },
    localStorage: {
      getItem: (k) => (items.has(k) ? items.get(k) : null),
      setItem: (k, v) => items.set(k, String(v)),
      removeItem: (k) => items.delete(k),
      key: (i) => [...items.keys()][i] ?? null,
      get length() {
        return items.size;
      },
    },
  };
  globalThis.document = { ...target, title: "P", referrer: "https://chatgpt.com/", visibilityState: "visible" };
  Object.defineProperty(globalThis, "navigator", { value: { globalPrivacyControl: gpc }, configurable: true });
  try {
    return f({ items, listeners });
  } finally {
    globalThis.window = saved.window;
    globalThis.document = saved.document;
    if (saved.navigator) Object.defineProperty(globalThis, "navigator", saved.navigator);
    else delete globalThis.navigator;
  }
}

test("ser() carries JSON whole and names by a code what JSON cannot carry", () => {
  assert.equal(ser(undefined), "{}");
  assert.equal(ser(null), '{"a":null}');
  assert.equal(ser({ a: 1, d: new Date(0) }), '{"a":{"a":1,"d":"1970-01-01T00:00:00.000Z"}}');
  assert.equal(ser(() => 1), '{"x":{"":"function"}}');
  assert.equal(ser(10n), '{"x":{"":"bigint"}}');
  assert.equal(ser(Promise.resolve()), '{"x":{"":"promise"}}');
  // Not null, although JSON says so: beforeSend returning null drops an event, NaN must not.
  assert.equal(ser(NaN), '{"x":{"":"number"}}');
  assert.equal(ser(new Date(NaN)), '{"x":{"":"object"}}');
  assert.equal(ser({ toJSON: () => undefined }), "{}");
  // Field by field when the whole cannot be carried: the core names the field.
  const cyclic = { eventType: "x" };
  cyclic.properties = { self: null };
  cyclic.properties.self = cyclic.properties;
  assert.equal(ser(cyclic), '{"a":{"eventType":"x"},"x":{"properties":"cycle"}}');
  assert.equal(ser({ eventType: "x", getUser() {} }), '{"a":{"eventType":"x"},"x":{"getUser":"function"}}');
  assert.equal(ser({ properties: { on: () => 1 } }), '{"a":{},"x":{"properties":"nested:function:on"}}');
  assert.equal(
    ser({
      get properties() {
        throw new Error("no");
      },
    }),
    '{"a":{},"x":{"properties":"read"}}',
  );
  const r = Proxy.revocable({}, {});
  r.revoke();
  assert.equal(ser(r.proxy), '{"x":{"":"keys"}}');
  assert.equal(ser([() => 1]), '{"x":{"":"array"}}');
});

test("a call's record holds its id, time, user and arguments, and asks getUser only when needed", () => {
  let asked = 0;
  const getUser = () => {
    asked++;
    return {
      userId: "u1",
      userIdTs: 5,
      get secret() {
        throw new Error("never read");
      },
    };
  };
  const before = Date.now();
  const rec = JSON.parse(record("track", { eventType: "x" }, getUser));
  assert.equal(rec.m, "track");
  assert.match(rec.i, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(rec.t >= before && rec.t <= Date.now());
  assert.deepEqual(rec.u, { a: { userId: "u1", userIdTs: 5 } }, "only the four fields of getUser's answer");
  assert.deepEqual(rec.v, { a: { eventType: "x" } });
  assert.equal(rec.p, undefined, "no page outside a browser");
  assert.equal(rec.j, undefined);
  // An explicit anonymous id names the identity: getUser is not asked; a user id still asks
  // it (for a signature of that user).
  record("track", { eventType: "x", anonymousId: "a" }, getUser);
  assert.equal(asked, 1);
  record("track", { eventType: "x", userId: "u2" }, getUser);
  assert.equal(asked, 2);
  const pv = JSON.parse(record("pageView", undefined, null));
  assert.match(pv.j, /^[0-9a-f-]{36}$/, "a second id, for an ai_referral_session");
  assert.deepEqual(pv.v, {});
  // getUser throwing, or a field that is an object (whose getters are never run).
  const threw = JSON.parse(record("track", {}, () => { throw new Error("boom"); }));
  assert.deepEqual(threw.u, { e: "boom" });
  const odd = JSON.parse(record("track", {}, () => ({ userId: { get x() { throw new Error("run"); } } })));
  assert.deepEqual(odd.u, { a: {}, x: { userId: "object" } });
  assert.notEqual(uuid(), uuid());
});

test("in a browser the record carries the page, cached until it changes", () => {
  inBrowser(() => {
    const rec = JSON.parse(record("track", { eventType: "x" }, null));
    assert.deepEqual(rec.p, { url: "https://shop.test/p?q=1", path: "/p", search: "?q=1", title: "P", referrer: "https://chatgpt.com/" });
    document.referrer = "";
    assert.equal(JSON.parse(record("track", {}, null)).p.referrer, "", "a new referrer is a new page");
  });
});

test("the consent a client starts in: the visitor's choice, then GPC, then the config", () => {
  const start = (cc, respect, opts) => inBrowser(() => startConsent(cc, respect), opts);
  assert.equal(start(undefined), "granted");
  assert.equal(start("pending"), "pending");
  assert.equal(start("denied"), "denied");
  assert.equal(start("maybe"), "pending", "a value the core will refuse stores nothing meanwhile");
  assert.equal(start(undefined, undefined, { gpc: true }), "denied");
  assert.equal(start("pending", undefined, { gpc: true }), "denied");
  assert.equal(start("granted", undefined, { gpc: true }), "granted", "an explicit grant overrules GPC");
  assert.equal(start(undefined, false, { gpc: true }), "granted", "respectGlobalPrivacyControl: false");
  assert.equal(start("granted", undefined, { store: { [CONSENT_KEY]: "denied" } }), "denied");
  assert.equal(start("pending", undefined, { store: { [CONSENT_KEY]: "granted" }, gpc: true }), "granted");
  assert.equal(start(undefined, undefined, { store: { [CONSENT_KEY]: "pending" } }), "granted", "only a choice counts");
  // Outside a browser there is no storage and no signal.
  assert.equal(startConsent(undefined), "granted");
});

test("a consent choice is kept at once; denying clears what the SDK stored", () => {
  inBrowser(({ items }) => {
    keepChoice("granted", PREFIX + "mine");
    assert.equal(items.get(CONSENT_KEY), "granted");
    items.set(ANON_KEY, "a1");
    items.set(PREFIX + "other", "{}");
    items.set("app.key", "kept");
    keepChoice("denied", PREFIX + "mine");
    assert.deepEqual([...items.keys()].sort(), ["app.key", CONSENT_KEY]);
    keepChoice("pending", PREFIX + "mine");
    assert.equal(items.has(CONSENT_KEY), false);
    keepChoice("nonsense", PREFIX + "mine");
    assert.deepEqual([...items.keys()], ["app.key"]);
  });
});

test("the buffer keeps the newest calls within its bounds and saves them only with consent", () => {
  inBrowser(({ items, listeners }) => {
    const b = new Buffer({ maxE: 3 });
    assert.deepEqual(listeners.sort(), ["pagehide", "pageshow", "visibilitychange"]);
    for (const n of [1, 2, 3, 4, 5]) b.push(`{"n":${n}}`);
    b.push(["flush", () => {}]);
    assert.deepEqual(b.calls(), ['{"n":3}', '{"n":4}', '{"n":5}']);
    assert.equal(b.over, 2);
    b.save();
    assert.deepEqual(JSON.parse(items.get(b.tab)), { v: 2, calls: b.calls() });
    assert.equal(b.saved, 3);
    // Visible again (unsave() settles under the origin's lock): the saved calls are still
    // there, so they go from storage and stay here.
    b.settle();
    assert.equal(items.has(b.tab), false);
    assert.equal(b.calls().length, 3);
    b.choose("pending");
    b.save();
    assert.equal(items.has(b.tab), false, "pending: nothing stored");
    assert.equal(b.startState(), "pending");
  });
  inBrowser(({ items }) => {
    const b = new Buffer({ maxB: 20 });
    b.push('{"n":"aaaaaaaaaa"}');
    b.push('{"n":"bbbbbbbbbb"}');
    assert.deepEqual(b.calls(), ['{"n":"bbbbbbbbbb"}'], "bounded by bytes too");
    b.save();
    assert.ok(items.has(b.tab));
  }, { store: { [CONSENT_KEY]: "granted" } });
  inBrowser(({ items }) => {
    const b = new Buffer({});
    b.push("{}");
    b.save();
    assert.equal(items.size, 1, "denied: nothing stored");
  }, { store: { [CONSENT_KEY]: "denied" } });
});

test("saved calls another page took up while this one was hidden are that page's to deliver", () => {
  inBrowser(({ items }) => {
    const b = new Buffer({});
    b.push('{"n":1}');
    b.push(["flush", () => {}]);
    b.push('{"n":2}');
    b.save();
    assert.equal(b.saved, 2);
    b.push('{"n":3}'); // recorded after the save: still this page's own
    items.delete(b.tab); // another page's restore() took the saved calls
    b.settle();
    assert.deepEqual(b.calls(), ['{"n":3}']);
    assert.equal(b.q.length, 2, "the flush stays");
    assert.equal(b.bytes, 7);
    assert.equal(b.saved, 0);
    b.settle();
    assert.deepEqual(b.calls(), ['{"n":3}'], "once");
  }, { store: { [CONSENT_KEY]: "granted" } });
});

test("the loader's defaults are the core's", () => {
  const config = readFileSync(new URL("../../src/core/config.rs", import.meta.url), "utf8");
  const buffer = readFileSync(new URL("../../js/loader/buffer.js", import.meta.url), "utf8");
  const rust = (name) => config.match(new RegExp(`pub const ${name}: [^=]+= ([^;]+);`))[1];
  assert.equal(rust("DEFAULT_MAX_QUEUE_EVENTS").replace(/_/g, ""), buffer.match(/MAX_EVENTS = (\d+)/)[1]);
  assert.equal(rust("DEFAULT_MAX_QUEUE_BYTES"), buffer.match(/MAX_BYTES = ([^;]+);/)[1]);
  assert.equal(rust("DEFAULT_CONSENT"), "Consent::Granted", "startConsent's default");
  assert.equal(rust("DEFAULT_RESPECT_GLOBAL_PRIVACY_CONTROL"), "true", "startConsent honours GPC unless told not to");
});
