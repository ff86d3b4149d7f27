// The SegOps SDK demo: a small shop that records events with the SDK's web build (./pkg/, built by
// `cargo xtask demo`) and shows what the API stored. Settings come from ./dev-config.json:
// { apiUrl, publicKey, signedPublicKey, signedPublicKeyId, ownerEmail?, ownerPassword? }.
//
// Users: "anonymous" and "bob" use the public key; "alice" uses the public key that requires
// signed user ids, with a signature from the emulator's dev signer standing in for the app's
// backend. The events panel and the signer use the owner login, which only a local emulator
// should ever hand to a page. The consent banner switches the client between the SDK's three
// consent states with setConsent(). The Visit panel shows the SDK's visit (client.sessionId,
// its age and attribution); "Log out" calls reset().
import { SegOpsClient } from "./pkg/index.js";

// The local emulator's documented dev owner (dev-config.json may name another).
const DEV_OWNER = { email: "owner@acme.test", password: "segops-dev" };
const USER_KEY = "segops-demo.user";
const USERS = {
  anonymous: { label: "anonymous" },
  alice: { label: "alice", signed: true, traits: { name: "Alice Martin", plan: "pro" } },
  bob: { label: "bob", traits: { name: "Bob Okafor", plan: "free" } },
};
// The server accepts a signature for 300 s; a fresh one is fetched well before that.
const SIGNATURE_MAX_AGE_MS = 240_000;
const PRODUCTS = {
  "TENT-2P": { name: "Ridge 2P tent", price: 249 },
  "PACK-38": { name: "Summit 38 L pack", price: 139 },
  "LAMP-400": { name: "Beam headlamp", price: 45 },
};

const $ = (sel) => document.querySelector(sel);

let config;
let apiUrl;
let client = null;
let clientKey = null;
let anonymousId = null;
const myIds = new Set(); // every anonymous id this page has had (logout and denial change it)
let currentUser = "anonymous";
let signature = null; // { user_id_sig, user_id_ts, fetchedAt } for alice
let busy = false;
const cart = [];

// ---- errors ------------------------------------------------------------------------------

function showError(err, what) {
  const box = $("#error");
  const isSdk = err && err.name === "SegOpsError";
  $("#error").querySelector("strong").textContent = isSdk ? "SegOpsError" : "Error";
  $("#error-code").textContent = (err && err.code) || "error";
  $("#error-field").textContent = (err && err.field) || "";
  $("#error-field-wrap").hidden = !(err && err.field);
  $("#error-message").textContent = (what ? what + ": " : "") + ((err && err.message) || String(err));
  box.dataset.code = (err && err.code) || "error";
  box.dataset.field = (err && err.field) || "";
  box.hidden = false;
}

function clearError() {
  $("#error").hidden = true;
}

// Nothing the page does may end as an uncaught exception: whatever escapes shows in the UI.
window.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  showError(e.reason, "unexpected");
});
window.addEventListener("error", (e) => showError(e.error || e.message, "unexpected"));

// `data-calls` on <body> counts the calls a button made (the end-to-end test waits on it);
// background lines (an old client's shutdown after a user switch) are logged but not counted,
// so that they cannot pass for a button's call that is still running.
let calls = 0;
function logCall(text, ok = true, counted = true) {
  if (counted) document.body.dataset.calls = String(++calls);
  const li = document.createElement("li");
  li.className = ok ? "ok" : "bad";
  const time = document.createElement("time");
  time.textContent = clock(new Date());
  const code = document.createElement("code");
  code.textContent = text;
  li.append(time, code);
  const log = $("#call-log");
  log.prepend(li);
  while (log.children.length > 3) log.lastChild.remove();
}

// Runs one SDK call, logging it; a SegOpsError is shown, never thrown.
function sdk(label, fn) {
  try {
    fn(client);
    logCall(label);
    clearError();
    return true;
  } catch (e) {
    logCall(label, false);
    showError(e, label);
    return false;
  }
}

// ---- the owner API (events panel, dev signer) --------------------------------------------

class ApiProblem extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code || "http_" + status;
  }
}

async function request(path, { method = "GET", auth, body } = {}) {
  let r;
  try {
    r = await fetch(apiUrl + path, {
      method,
      headers: auth ? { authorization: auth } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiProblem(0, "network_error", `${method} ${path}: the API cannot be reached (${e.message})`);
  }
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  if (!r.ok) throw new ApiProblem(r.status, json && json.code, `${method} ${path}: ${(json && json.message) || text || r.status}`);
  return json;
}

let ownerToken = null;
async function ownerToken_() {
  if (!ownerToken) {
    ownerToken = request("/api/auth/login/", {
      method: "POST",
      body: { email: config.ownerEmail || DEV_OWNER.email, password: config.ownerPassword || DEV_OWNER.password },
    }).then((r) => "Bearer " + r.token);
    ownerToken.catch(() => { ownerToken = null; });
  }
  return ownerToken;
}

// An owner request; logs in again once when the token has expired.
async function owner(path, opts = {}) {
  try {
    return await request(path, { ...opts, auth: await ownerToken_() });
  } catch (e) {
    if (e.status !== 401) throw e;
    ownerToken = null;
    return request(path, { ...opts, auth: await ownerToken_() });
  }
}

// ---- users and clients -------------------------------------------------------------------

// A signature for alice from the dev signer (in an app: the backend's signUserId()).
async function freshSignature() {
  if (signature && Date.now() - signature.fetchedAt < SIGNATURE_MAX_AGE_MS) return signature;
  const s = await owner("/api/dev/sign-user-id/", {
    method: "POST",
    body: { key_id: config.signedPublicKeyId, user_id: "alice" },
  });
  signature = { user_id_sig: s.user_id_sig, user_id_ts: s.user_id_ts, fetchedAt: Date.now() };
  return signature;
}

// Asked by the SDK at every call that names nobody.
function getUser() {
  if (currentUser === "alice") {
    return { userId: "alice", userIdSig: signature.user_id_sig, userIdTs: signature.user_id_ts };
  }
  if (currentUser === "bob") return { userId: "bob" };
  return { anonymousId };
}

function keyFor(user) {
  return USERS[user].signed ? config.signedPublicKey : config.publicKey;
}

function newClient(apiKey) {
  const options = { apiUrl: config.apiUrl, apiKey, getUser, flushIntervalMs: 1000 };
  // A "pending" state is no stored choice: carry it over to the next user's client. Granted and
  // denied are kept by the SDK itself (localStorage segops.consent) and apply on their own.
  if (client && client.consent === "pending") options.consent = "pending";
  return new SegOpsClient(options);
}

// The anonymous id getUser() hands out from here on.
function setAnonymousId(id) {
  anonymousId = id;
  if (id) myIds.add(id);
  lastRendered = ""; // the events panel marks the current id
}

// Makes `user` current: a fresh signature for alice, and a client for the user's key (the old
// client, if the key changes, is flushed and shut down in the background).
async function switchUser(user, { initial = false } = {}) {
  if (!USERS[user]) user = "anonymous";
  if (busy || (!initial && user === currentUser)) return;
  busy = true;
  document.body.dataset.switching = "true";
  try {
    await useUser(user, initial);
  } finally {
    busy = false;
    document.body.dataset.switching = "false";
  }
}

async function useUser(user, initial) {
  if (USERS[user].signed) {
    try {
      await freshSignature();
    } catch (e) {
      showError(e, `signing alice's user id with the dev signer`);
      if (!initial) return;
      user = "anonymous";
    }
  }
  const apiKey = keyFor(user);
  if (!client || clientKey !== apiKey) {
    let next;
    try {
      next = newClient(apiKey);
    } catch (e) {
      showError(e, "new SegOpsClient()");
      return;
    }
    const old = client;
    client = next;
    clientKey = apiKey;
    // The anonymous id is the SDK's (stored, or new) once its module is ready; calls made
    // before are kept and sent then.
    try {
      await next.ready;
    } catch (e) {
      showError(e, "loading the SDK's WebAssembly (./pkg/)");
    }
    setAnonymousId(next.anonymousId);
    tokenBest = 0;
    if (old) {
      Promise.resolve()
        .then(() => old.flush())
        .then(() => old.shutdown())
        .then(() => logCall("old client flushed, shutdown()", true, false))
        .catch((e) => showError(e, "shutting down the old client"));
    }
  }
  currentUser = user;
  try { localStorage.setItem(USER_KEY, user); } catch { /* storage disabled */ }
  renderUser();
  if (!initial) renderVisitSoon();
  // What an app records when someone logs in; for alice it also hands the session its
  // signature, which identify() (it names its user) cannot carry.
  if (!initial && user !== "anonymous") {
    sdk(`track({ eventType: "signed_in" })`, (c) =>
      c.track({ eventType: "signed_in", properties: { via: "demo user switcher" } }));
  }
}

// "Log out": what an app does at a logout. reset() goes to the client that recorded the user's
// events, so that they (and a last "signed_out") are delivered under the old identity and visit;
// later calls get a new anonymous id and a new visit without attribution. Then the page is on
// the anonymous user: for alice that is another key, so a new client, which takes the new
// anonymous id and visit from the SDK's storage (the old client is flushed and shut down, as on
// any switch).
async function logOut() {
  if (busy || !client) return;
  busy = true;
  document.body.dataset.switching = "true";
  try {
    const user = currentUser;
    if (user !== "anonymous") {
      await beforeCall();
      sdk(`track({ eventType: "signed_out" })`, (c) =>
        c.track({ eventType: "signed_out", properties: { via: "demo log out" } }));
    }
    if (!sdk("reset()", (c) => c.reset())) return;
    const fresh = { anonymousId: client.anonymousId, sessionId: client.sessionId };
    setAnonymousId(fresh.anonymousId);
    currentUser = "anonymous"; // getUser() names nobody from here on
    renderUser();
    await useUser("anonymous", false);
    // With consent pending or denied the SDK stores neither the new anonymous id nor the new
    // visit, so a new client starts from what storage held before the logout: reset it too.
    if (client.anonymousId !== fresh.anonymousId || client.sessionId !== fresh.sessionId) {
      sdk("reset() on the new client", (c) => c.reset());
      setAnonymousId(client.anonymousId);
      renderUser();
    }
    renderVisitSoon();
  } finally {
    busy = false;
    document.body.dataset.switching = "false";
  }
}

function renderUser() {
  document.body.dataset.user = currentUser;
  for (const b of document.querySelectorAll("[data-user-choice]")) {
    b.setAttribute("aria-checked", String(b.dataset.userChoice === currentUser));
  }
  $("#current-user").textContent = currentUser;
  const k = clientKey || "";
  $("#current-key").textContent = (USERS[currentUser].signed ? "signed " : "") + k.slice(0, 12) + "…";
  $("#anon-id").textContent = anonymousId || "…";
  const identify = $("#btn-identify");
  identify.disabled = currentUser === "anonymous";
  identify.title = identify.disabled ? "identify() names a user: pick alice or bob" : `identify({ userId: "${currentUser}" })`;
  $("#btn-spoof").textContent = `Claim user_id "${currentUser === "alice" ? "bob" : "alice"}"`;
}

// ---- the shop and the SDK buttons --------------------------------------------------------

async function beforeCall() {
  // Keep alice's signature fresh for the next session the SDK mints.
  if (currentUser === "alice") {
    try { await freshSignature(); } catch (e) { showError(e, "refreshing alice's signature"); }
  }
}

function renderCart() {
  $("#cart-count").textContent = String(cart.length);
  $("#cart-total").textContent = "$" + cart.reduce((s, sku) => s + PRODUCTS[sku].price, 0);
}

function wire() {
  for (const b of document.querySelectorAll("[data-user-choice]")) {
    b.addEventListener("click", () => switchUser(b.dataset.userChoice));
  }
  for (const b of document.querySelectorAll("[data-add-sku]")) {
    b.addEventListener("click", async () => {
      await beforeCall();
      const sku = b.dataset.addSku;
      const p = PRODUCTS[sku];
      if (sdk(`track({ eventType: "product_added", sku: "${sku}" })`, (c) =>
        c.track({ eventType: "product_added", properties: { sku, name: p.name, price: p.price, currency: "USD" } }))) {
        cart.push(sku);
        renderCart();
      }
    });
  }
  $("#checkout").addEventListener("click", async () => {
    await beforeCall();
    const value = cart.reduce((s, sku) => s + PRODUCTS[sku].price, 0);
    sdk(`track({ eventType: "checkout_started" })`, (c) =>
      c.track({ eventType: "checkout_started", properties: { cart_value: value, items: cart.length, currency: "USD" } }));
  });
  $("#btn-track").addEventListener("click", async () => {
    await beforeCall();
    sdk(`track({ eventType: "promo_clicked" })`, (c) =>
      c.track({ eventType: "promo_clicked", properties: { promo: "spring-sale", placement: "demo" } }));
  });
  $("#btn-identify").addEventListener("click", async () => {
    await beforeCall();
    const user = currentUser;
    sdk(`identify({ userId: "${user}", traits })`, (c) => c.identify({ userId: user, traits: USERS[user].traits }));
  });
  $("#btn-page").addEventListener("click", async () => {
    await beforeCall();
    sdk(`page({ name: "Featured gear" })`, (c) => c.page({ name: "Featured gear", properties: { section: "shop" } }));
  });
  $("#btn-flush").addEventListener("click", async () => {
    try {
      await client.flush();
      logCall("await flush()");
    } catch (e) {
      logCall("await flush()", false);
      showError(e, "flush()");
    }
  });
  $("#btn-bad").addEventListener("click", () => {
    sdk(`track({ properties: {} })`, (c) => c.track({ properties: {} }));
  });
  $("#btn-spoof").addEventListener("click", () => spoof().catch((e) => {
    logCall("raw fetch: claim another user_id", false);
    showError(e, "impersonation attempt");
  }));
  $("#log-out").addEventListener("click", () => logOut());
  $("#show-all").addEventListener("change", () => { lastRendered = ""; renderEvents(); });
  for (const b of document.querySelectorAll("[data-consent-choice]")) {
    b.addEventListener("click", () => setConsent(b.dataset.consentChoice));
  }
}

// Without the SDK: mint a session as the current user, then send an event that claims to be
// someone else. The server stores the token's identity, not the claim.
async function spoof() {
  await beforeCall();
  const user = currentUser;
  const claimed = user === "alice" ? "bob" : "alice";
  const body = user === "anonymous" ? { anonymous_id: anonymousId }
    : user === "alice" ? { user_id: "alice", user_id_sig: signature.user_id_sig, user_id_ts: signature.user_id_ts }
      : { user_id: user };
  const session = await request("/api/auth/session/", { method: "POST", auth: "ApiKey " + keyFor(user), body });
  const event = {
    message_id: uuid(), type: "track", event_type: "impersonation_attempt",
    user_id: claimed, anonymous_id: anonymousId, timestamp: new Date().toISOString(),
    properties: { claimed_user_id: claimed },
  };
  await request("/api/ingestion/track/", { method: "POST", auth: "Bearer " + session.token, body: { events: [event] } });
  logCall(`raw fetch: event claiming user_id "${claimed}"`);
  clearError();
}

function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- consent ------------------------------------------------------------------------------

const CONSENT_TEXT = {
  granted: () => "Granted: events are sent, and the anonymous id is kept in localStorage.",
  pending: (s) => `Pending: nothing is sent or stored until you choose; ${s.pending} event${s.pending === 1 ? "" : "s"} wait in memory.`,
  denied: (s) => `Denied: events are discarded (${(s.dropped && s.dropped.consent_denied) || 0} so far) and what the SDK stored was cleared; only the choice is kept (segops.consent).`,
};

function setConsent(state) {
  if (!client || client.consent === state) return;
  if (sdk(`setConsent("${state}")`, (c) => c.setConsent(state))) {
    // Denying gives the visitor a fresh anonymous id; getUser() hands it out from here on.
    setAnonymousId(client.anonymousId);
    renderUser();
    renderConsent();
  }
}

function renderConsent(stats) {
  if (!client) return;
  let state, s;
  try {
    state = client.consent;
    s = stats || client.stats();
  } catch { return; }
  $("#consent-banner").dataset.consent = state;
  document.body.dataset.consent = state;
  for (const b of document.querySelectorAll("[data-consent-choice]")) {
    b.setAttribute("aria-checked", String(b.dataset.consentChoice === state));
  }
  $("#consent-explain").textContent = CONSENT_TEXT[state](s);
}

// ---- stats -------------------------------------------------------------------------------

let tokenBest = 0;
function renderStats() {
  if (!client) return;
  let s;
  try { s = client.stats(); } catch { return; }
  for (const k of ["recorded", "sent", "pending", "requests", "mints"]) $("#stat-" + k).textContent = String(s[k]);
  $("#stat-dropped").textContent = String(s.droppedTotal);
  renderConsent(s);
  const ms = s.tokenExpiresInMs;
  const el = $("#token-remaining");
  el.dataset.ms = ms === null ? "" : String(ms);
  if (ms === null) {
    el.textContent = "none yet";
    $("#token-bar").style.width = "0%";
  } else {
    if (ms > tokenBest) tokenBest = ms; // a new token: its lifetime is the new scale
    const secs = Math.max(0, Math.round(ms / 1000));
    el.textContent = `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")} left`;
    $("#token-bar").style.width = (100 * ms / tokenBest).toFixed(1) + "%";
  }
  const note = $("#stat-note");
  note.hidden = !(s.restored > 0);
  note.dataset.restored = String(s.restored);
  if (s.restored > 0) {
    note.textContent = `${s.restored} event${s.restored === 1 ? "" : "s"} restored: the previous page saved what it had not seen delivered as it was hidden, and this one sends it (the server keeps one copy of each).`;
  }
  const problem = s.halted || s.lastError;
  const p = $("#stat-problem");
  p.hidden = !problem;
  if (problem) p.textContent = `${s.halted ? "halted" : "last error"}: ${problem.code}: ${problem.message}`;
}

// ---- the visit ---------------------------------------------------------------------------

// The SDK's record of the visit the tabs of this origin share: {"id", "start", "last",
// "attribution"?, ...}, written when a visit starts or changes and on a coarse schedule (its
// "last" may lag; "start" and "attribution" do not change during a visit). Kept with consent
// granted only.
const VISIT_KEY = "segops.visit";
// What the stored events tell of each visit (context.session_id): the time of the first one,
// and context.attribution, which is the same on every event of a visit (null: none).
const visits = new Map();

function noteVisit(e) {
  const c = e.context;
  if (!c || typeof c.session_id !== "string") return;
  const t = Date.parse(e.timestamp);
  const v = visits.get(c.session_id);
  const attribution = c.attribution && typeof c.attribution === "object" ? c.attribution : null;
  if (!v) visits.set(c.session_id, { start: t, attribution });
  else if (t < v.start) v.start = t;
}

function keptVisit() {
  try {
    const v = JSON.parse(localStorage.getItem(VISIT_KEY));
    return v && typeof v === "object" ? v : null;
  } catch {
    return null;
  }
}

function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor(s / 60) % 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

// Once the SDK has done what this task asked of it (it writes its record of a new visit then).
function renderVisitSoon() {
  setTimeout(renderVisit, 0);
}

// The visit of the current client: its id (client.sessionId), its age and attribution from the
// SDK's stored record of it, or else from the stored events of it; "not known yet" when neither
// has it (nothing is stored while consent is pending or denied).
let lastVisit = "";
function renderVisit() {
  if (!client) return;
  let id;
  try { id = client.sessionId; } catch { return; }
  const box = $("#visit");
  let start = null;
  let attribution; // undefined: not known
  let from = "";
  const kept = id && keptVisit();
  if (kept && kept.id === id && Number.isFinite(kept.start)) {
    start = kept.start;
    attribution = kept.attribution && typeof kept.attribution === "object" ? kept.attribution : null;
    from = "storage";
  } else if (id && visits.has(id)) {
    ({ start, attribution } = visits.get(id));
    from = "events";
  }
  box.dataset.sessionId = id || "";
  box.dataset.start = start === null ? "" : String(start);
  box.dataset.from = from;
  $("#visit-id").textContent = id || "…";
  const ageEl = $("#visit-age");
  if (start === null) {
    ageEl.dataset.ms = "";
    ageEl.textContent = id ? "not known yet" : "…";
    $("#visit-since").textContent = id ? "(nothing stored of this visit)" : "";
  } else {
    const ms = Date.now() - start;
    ageEl.dataset.ms = String(ms);
    ageEl.textContent = age(ms);
    $("#visit-since").textContent = from === "storage"
      ? `since ${clock(new Date(start))} (start in localStorage ${VISIT_KEY})`
      : `since ${clock(new Date(start))} (its first stored event)`;
  }

  const text = attribution === undefined ? "?" : JSON.stringify(attribution);
  if (text === lastVisit) return;
  lastVisit = text;
  box.dataset.attribution = attribution ? text : "";
  const dd = $("#visit-attribution");
  dd.dataset.state = attribution === undefined ? "unknown" : attribution ? "known" : "none";
  dd.dataset.provider = (attribution && attribution.source_provider) || "";
  if (attribution === undefined) {
    dd.replaceChildren(el("span", "muted", "not known yet"));
  } else if (!attribution) {
    dd.replaceChildren(el("span", "muted", "none"));
  } else {
    dd.replaceChildren(...Object.entries(attribution).map(([k, v]) => {
      const chip = el("span", "attr" + (k === "source_provider" ? " attr-ai" : ""));
      chip.title = `${k}: ${v}`;
      chip.append(el("span", "k", k), " ", el("b", "", String(v)));
      return chip;
    }));
  }
}

// ---- stored events -----------------------------------------------------------------------

let after = 0;
let keyNames = {};
const seen = []; // the latest events of the tenant
const mine = []; // the latest events of this browser
let lastRendered = "";

async function loadKeyNames() {
  keyNames = { [config.signedPublicKeyId]: "signed key" };
  try {
    const { keys } = await owner("/api/auth/api-keys/");
    for (const k of keys) {
      if (config.publicKey.startsWith(k.prefix)) keyNames[k.id] = "public key";
      else if (config.signedPublicKey.startsWith(k.prefix)) keyNames[k.id] = "signed key";
    }
  } catch { /* names are a nicety */ }
}

async function poll() {
  const dot = $("#live-dot");
  try {
    for (;;) {
      const page = await owner(`/api/events/?after=${after}&limit=1000`);
      for (const e of page.events) {
        seen.push(e);
        if (myIds.has(e.anonymous_id)) mine.push(e);
        noteVisit(e);
      }
      if (seen.length > 300) seen.splice(0, seen.length - 300);
      if (mine.length > 300) mine.splice(0, mine.length - 300);
      after = page.next_after;
      if (page.events.length < 1000) break;
    }
    $("#events-error").hidden = true;
    dot.classList.remove("down");
    renderEvents();
    renderVisit();
  } catch (e) {
    $("#events-error").hidden = false;
    $("#events-error").textContent = `Cannot read events: ${e.code}: ${e.message}`;
    dot.classList.add("down");
  }
  setTimeout(poll, 1000);
}

function el(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

function short(id) {
  return id && id.length > 13 ? id.slice(0, 8) + "…" : id;
}

function clock(d) {
  return d.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function detail(e) {
  const p = e.properties || {};
  if (e.event_type === "ai_referral_session") {
    const hint = p.query_hint ? ` · “${p.query_hint}”` : "";
    const utm = new URL(p.landing_url).searchParams.get("utm_source");
    const how = p.referrer_url ? "referrer " + new URL(p.referrer_url).host : utm ? "utm_source=" + utm : "";
    return how + hint;
  }
  if (e.type === "identify") return Object.entries(e.traits || {}).map(([k, v]) => `${k}: ${v}`).join(" · ");
  if (e.type === "page") {
    const bits = [p.name, p.path, p.utm_source && "utm_source=" + p.utm_source].filter(Boolean);
    return bits.join(" · ");
  }
  return Object.entries(p).filter(([k]) => k !== "claimed_user_id")
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ");
}

function row(e) {
  const li = el("li", "ev ev-" + e.type + (e.event_type === "ai_referral_session" ? " ev-ai" : ""));
  Object.assign(li.dataset, {
    eventId: String(e.id), type: e.type, eventType: e.event_type,
    userId: e.user_id || "", anonymousId: e.anonymous_id || "",
    key: keyNames[e.key_id] || e.key_id || "", auth: e.auth,
    sessionId: (e.context && e.context.session_id) || "",
  });
  const p = e.properties || {};
  if (e.event_type === "ai_referral_session") li.dataset.provider = p.source_provider || "";

  const top = el("div", "ev-top");
  top.append(el("span", "pill pill-" + e.type, e.type), el("strong", "ev-name", e.event_type));
  if (e.event_type === "ai_referral_session") top.append(el("span", "pill pill-ai", "✦ " + p.source_provider));
  const forced = typeof p.claimed_user_id === "string" && p.claimed_user_id !== e.user_id;
  if (forced) {
    li.dataset.forced = "true";
    top.append(el("span", "pill pill-forced", "forced"));
  }
  top.append(el("time", "ev-time", clock(new Date(e.received_at))));

  const ids = el("div", "ev-ids");
  const uid = el("span", "id " + (e.user_id ? "id-user" : "id-none"));
  uid.append("user_id ", el("b", "", e.user_id === null ? "null" : e.user_id));
  const anon = el("span", "id id-anon");
  anon.title = e.anonymous_id || "";
  const whose = e.anonymous_id === anonymousId ? "this browser"
    : myIds.has(e.anonymous_id) ? "this browser, earlier" : short(e.anonymous_id) || "null";
  anon.append("anonymous_id ", el("b", "", whose));
  ids.append(uid, anon, el("span", "via", `${keyNames[e.key_id] || short(e.key_id)} · ${e.auth === "session" ? "session token" : e.auth}`));

  const d = forced ? `claimed "${p.claimed_user_id}"` : detail(e);
  if (d) {
    const det = el("span", "ev-detail", d);
    det.title = forced
      ? `The event claimed user_id "${p.claimed_user_id}"; the server stored ${e.user_id === null ? "null" : `"${e.user_id}"`}, the session token's identity.`
      : d;
    top.insertBefore(det, top.lastChild);
  }
  li.append(top, ids);
  return li;
}

function renderEvents() {
  const all = $("#show-all").checked;
  const list = (all ? seen : mine).slice(-60).reverse();
  const stamp = (all ? "a" : "m") + (list.length ? list[0].id + ":" + list.length : "0");
  if (stamp === lastRendered) return;
  lastRendered = stamp;
  const ol = $("#events");
  ol.replaceChildren(...list.map(row));
  ol.dataset.count = String(list.length);
  $("#events-empty").hidden = list.length > 0;
}

// ---- start -------------------------------------------------------------------------------

async function main() {
  try {
    const r = await fetch("./dev-config.json", { cache: "no-store" });
    if (!r.ok) throw new Error(`./dev-config.json: ${r.status}`);
    config = await r.json();
    for (const f of ["apiUrl", "publicKey", "signedPublicKey", "signedPublicKeyId"]) {
      if (typeof config[f] !== "string") throw new Error(`dev-config.json has no ${f}`);
    }
  } catch (e) {
    showError(e, "loading the settings (start the demo with `cargo xtask demo`)");
    return;
  }
  apiUrl = config.apiUrl.replace(/\/+$/, "");
  $("#owner-email").textContent = config.ownerEmail || DEV_OWNER.email;
  wire();
  renderCart();
  let saved = "anonymous";
  try { saved = localStorage.getItem(USER_KEY) || "anonymous"; } catch { /* storage disabled */ }
  await switchUser(saved, { initial: true });
  if (!client) return;

  // A page view on every load; with utm_source=chatgpt.com (and no referrer) it also records an
  // ai_referral_session.
  sdk("trackPageView()", (c) => c.trackPageView());
  const utm = new URLSearchParams(location.search).get("utm_source");
  if (utm) {
    $("#referral-utm").textContent = "utm_source=" + utm;
    $("#referral-banner").hidden = false;
  }

  renderStats();
  setInterval(renderStats, 250);
  renderVisitSoon();
  setInterval(renderVisit, 1000);
  setInterval(() => { if (currentUser === "alice") freshSignature().catch((e) => showError(e, "refreshing alice's signature")); }, 30_000);
  await loadKeyNames();
  poll();
  window.demo = { get client() { return client; }, get user() { return currentUser; }, get anonymousId() { return anonymousId; } };
  document.body.dataset.ready = "true";
}

main();
