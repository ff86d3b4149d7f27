// The browsers the end-to-end tests run in, behind one small Page-like API: Chromium through
// playwright-core, Firefox (geckodriver) and WebKit (WebKitGTK's MiniBrowser through
// WebKitWebDriver) through W3C WebDriver (tests/soak/webdriver.mjs). Every navigation is a real
// one, and a page's scripts run in the page. Each test file runs its scenario once per engine:
//
//   for (const engine of ENGINES) test(`... (${engine})`, async () => {
//     const browser = await launch(engine, { hosts: ["shop.test"] });
//     const page = await browser.newPage();
//     await page.goto(url);
//     await page.waitForFunction(() => window.ready === true);
//     ...
//   });
//
// How test host names reach the test servers on 127.0.0.1: Chromium maps them with
// --host-resolver-rules, Firefox with the network.dns.localDomains pref, WebKit through a local
// proxy (./proxy.mjs) that sends every host to 127.0.0.1; the emulator on 127.0.0.1 is reached
// directly in all three (loopback is a secure context, and the Origin it sees is the page's).
// Test pages are served with a recorder script (RECORDER, put in by servePages and the demo's
// server) that keeps the page's console messages and pageshow events for the WebDriver engines.
//
// SEGOPS_E2E_ENGINES (a comma list, e.g. "chromium,webkit") restricts the engines for local
// runs; otherwise all three run, and an engine whose browser variables are missing fails its
// tests with a message that says which (`cargo xtask test browser-e2e` sets them all).
import { createRequire } from "node:module";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM_FLAGS } from "../chromium-flags.mjs";
import { Session } from "../soak/webdriver.mjs";
import { startProxy } from "./proxy.mjs";

const ALL = ["chromium", "firefox", "webkit"];
const root = fileURLToPath(new URL("../../", import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const ENGINES = (() => {
  const asked = (process.env.SEGOPS_E2E_ENGINES || "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const e of asked) {
    if (!ALL.includes(e)) throw new Error(`SEGOPS_E2E_ENGINES: unknown engine ${e} (known: ${ALL.join(", ")})`);
  }
  return asked.length ? ALL.filter((e) => asked.includes(e)) : ALL;
})();

// The variables each engine needs (set by `cargo xtask test`, see Tools::browser_env).
const NEEDS = {
  chromium: ["SEGOPS_CHROMIUM", "SEGOPS_NODE_TOOLS"],
  firefox: ["SEGOPS_FIREFOX", "SEGOPS_GECKODRIVER"],
  webkit: ["SEGOPS_WEBKIT_DRIVER", "SEGOPS_MINIBROWSER", "DISPLAY"],
};

function need(engine) {
  const missing = NEEDS[engine].filter((v) => !process.env[v]);
  if (missing.length) {
    throw new Error(
      `${engine}: ${missing.join(", ")} not set. Run the end-to-end tests through ` +
        "`cargo xtask test browser-e2e`, or leave this engine out with SEGOPS_E2E_ENGINES=" +
        ALL.filter((e) => e !== engine).join(","),
    );
  }
}

// Put first in every test page's HTML (after the doctype): records the page's console
// messages and uncaught errors in sessionStorage (so they outlive reloads in the tab, per
// origin), and the `persisted` flag of each pageshow in window.__e2e.pageshows.
export const RECORDER = `<script>(() => {
  const KEY = "e2e.console";
  const put = (type, text) => {
    try {
      const all = JSON.parse(sessionStorage.getItem(KEY) || "[]");
      all.push({ type, text: String(text).slice(0, 1000) });
      sessionStorage.setItem(KEY, JSON.stringify(all));
    } catch (_) {}
  };
  const show = (v) => {
    try {
      return typeof v === "string" ? v : v instanceof Error ? String(v) : JSON.stringify(v);
    } catch (_) {
      return String(v);
    }
  };
  for (const type of ["log", "info", "warn", "error", "debug"]) {
    const original = console[type];
    console[type] = function (...args) {
      put(type, args.map(show).join(" "));
      return original.apply(this, args);
    };
  }
  addEventListener("error", (e) => put("pageerror", e.message));
  addEventListener("unhandledrejection", (e) => put("pageerror", "unhandled rejection: " + show(e.reason && e.reason.message || e.reason)));
  window.__e2e = { pageshows: [] };
  addEventListener("pageshow", (e) => window.__e2e.pageshows.push(e.persisted));
})();</script>`;

export function withRecorder(html) {
  const doctype = /^\s*<!doctype[^>]*>/i.exec(html);
  return doctype ? doctype[0] + RECORDER + html.slice(doctype[0].length) : RECORDER + html;
}

// Opens `engine` ("chromium", "firefox" or "webkit") with the host names `hosts` mapped to
// 127.0.0.1 and certificate errors ignored (https test servers use a self-signed certificate).
export async function launch(engine, { hosts = [], viewport = { width: 1200, height: 900 } } = {}) {
  if (!ALL.includes(engine)) throw new Error("unknown engine " + engine);
  need(engine);
  return engine === "chromium" ? ChromiumBrowser.launch(hosts, viewport) : WebDriverBrowser.launch(engine, hosts, viewport);
}

// Navigates the tab to another page of the same origin (`away`, by default /e2e-away.html,
// which servePages serves on every host), then goes back with history.back(). Resolves to
// true when the page came back from the back/forward cache (the same document, its pageshow
// with persisted === true), false when it was loaded again. The page needs the RECORDER and
// must be served without Cache-Control: no-store.
// `stay` (ms) is how long the tab stays away; `whileAway`, what to do on the other page.
export async function restoreFromBfcache(page, away, stay = 0, whileAway = null) {
  const url = await page.evaluate(() => location.href);
  const token = Math.random().toString(36).slice(2);
  await page.evaluate((t) => { window.__e2eBfcacheToken = t; }, token);
  await page.goto(away || new URL("/e2e-away.html", url).href);
  if (whileAway) await whileAway();
  if (stay) await sleep(stay);
  await page.back();
  await page.waitForFunction((u) => location.href === u && document.readyState === "complete", url, { timeout: 15000 });
  return page.evaluate(
    (t) => window.__e2eBfcacheToken === t && window.__e2e.pageshows[window.__e2e.pageshows.length - 1] === true,
    token,
  );
}

// What the DOM helpers share: each is a small script, so the WebDriver engines behave as
// Chromium's playwright does for these (waiting for the element where playwright waits).
class BasePage {
  async query(selector, fn, arg) {
    await this.waitForFunction((s) => document.querySelector(s) !== null, selector, { timeout: 10000 });
    return this.evaluate(fn, [selector, arg]);
  }

  textContent(selector) {
    return this.query(selector, ([s]) => document.querySelector(s).textContent);
  }

  getAttribute(selector, name) {
    return this.query(selector, ([s, n]) => document.querySelector(s).getAttribute(n), name);
  }

  isDisabled(selector) {
    return this.query(selector, ([s]) => {
      const e = document.querySelector(s);
      return e.matches(":disabled") || e.getAttribute("aria-disabled") === "true";
    });
  }

  // Right now, without waiting (as playwright's isVisible).
  isVisible(selector) {
    return this.evaluate(visible, selector);
  }

  // Until an element matching `selector` is visible.
  waitForSelector(selector, { timeout = 30000 } = {}) {
    return this.waitForFunction(visible, selector, { timeout });
  }

  // Until the page's URL matches `re` and it has loaded.
  async waitForURL(re, { timeout = 30000 } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      const [href, state] = await this.evaluate(() => [location.href, document.readyState]).catch(() => ["", ""]);
      if (re.test(href) && state === "complete") return;
      if (Date.now() > end) throw new Error(`${this.engine}: timed out waiting for a URL matching ${re} (at ${href})`);
      await sleep(100);
    }
  }
}

function visible(s) {
  const e = document.querySelector(s);
  if (!e) return false;
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
}

// ---- Chromium: playwright-core ----------------------------------------------------------------

class ChromiumBrowser {
  static async launch(hosts, viewport) {
    const tools = process.env.SEGOPS_NODE_TOOLS;
    const { chromium } = createRequire(join(tools, "node_modules") + "/")("playwright-core");
    const args = [...CHROMIUM_FLAGS, "--ignore-certificate-errors"];
    if (hosts.length) args.push(`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(", ")}`);
    const browser = await chromium.launch({
      executablePath: process.env.SEGOPS_CHROMIUM,
      args,
      // playwright turns the back/forward cache off by default; the tests want a browser's own.
      ignoreDefaultArgs: ["--disable-back-forward-cache"],
    });
    const b = new ChromiumBrowser();
    b.browser = browser;
    b.context = await browser.newContext({ viewport });
    return b;
  }

  async newPage() {
    return new ChromiumPage(await this.context.newPage());
  }

  close() {
    return this.browser.close();
  }
}

class ChromiumPage extends BasePage {
  constructor(raw) {
    super();
    this.engine = "chromium";
    this.raw = raw; // the playwright Page, for what only Chromium does (screenshots)
    this.messages = [];
    raw.on("console", (m) => this.messages.push({ type: m.type() === "warning" ? "warn" : m.type(), text: m.text() }));
    raw.on("pageerror", (e) => this.messages.push({ type: "pageerror", text: e.message }));
  }

  goto(url) {
    return this.raw.goto(url);
  }

  evaluate(fn, arg) {
    return this.raw.evaluate(fn, arg);
  }

  waitForFunction(fn, arg, { timeout = 30000 } = {}) {
    return this.raw.waitForFunction(fn, arg, { timeout });
  }

  click(selector) {
    return this.raw.click(selector);
  }

  // history.back(); resolves once the earlier page is committed (a page restored from the
  // back/forward cache has no load event to wait for).
  async back() {
    await this.raw.goBack({ waitUntil: "commit" });
  }

  // The browser's reload, as the user's (it keeps document.referrer, which a script's
  // location.reload() may not).
  async reload() {
    await this.raw.reload();
  }

  // Every console message and uncaught error of the tab so far: [{ type, text }], type one of
  // log, info, warn, error, debug, pageerror. Chromium's also has the browser's own messages
  // (a failed resource load); the other engines' come from the page's RECORDER (the messages
  // of the tab's current origin).
  async consoleMessages() {
    return this.messages.slice();
  }

  screenshot(path) {
    return this.raw.screenshot({ path });
  }

  // Closes the tab the way a user does: beforeunload, pagehide and unload run.
  async close() {
    await Promise.all([this.raw.waitForEvent("close"), this.raw.close({ runBeforeUnload: true })]);
  }
}

// ---- Firefox and WebKit: W3C WebDriver ----------------------------------------------------------

class WebDriverBrowser {
  static async launch(engine, hosts, viewport) {
    const logDir = join(root, "target", "e2e");
    mkdirSync(logDir, { recursive: true });
    const log = openSync(join(logDir, `${engine}-driver.log`), "a");
    let session;
    let proxy = null;
    if (engine === "firefox") {
      session = await Session.start("firefox", {
        driver: process.env.SEGOPS_GECKODRIVER,
        binary: process.env.SEGOPS_FIREFOX,
        log,
        prefs: {
          "network.dns.localDomains": hosts.join(","),
          // Test hosts stay on http (no https-first upgrade attempt against an http server).
          "dom.security.https_first": false,
          "dom.security.https_first_schemeless": false,
        },
        capabilities: { acceptInsecureCerts: true },
      });
    } else {
      proxy = await startProxy();
      try {
        session = await Session.start("webkit", {
          driver: process.env.SEGOPS_WEBKIT_DRIVER,
          binary: process.env.SEGOPS_MINIBROWSER,
          log,
          args: [
            `--proxy=http://127.0.0.1:${proxy.port}`,
            "--ignore-host=127.0.0.1",
            "--ignore-host=localhost",
            "--ignore-tls-errors",
            "--enable-page-cache=true",
          ],
        });
      } catch (e) {
        await proxy.close();
        throw e;
      }
    }
    const b = new WebDriverBrowser(engine, session, proxy);
    // A script that never answers (its document went away) fails in a minute, not five.
    await session.cmd("POST", "/timeouts", { script: 60000 });
    b.spare = await session.cmd("GET", "/window");
    await session.cmd("POST", "/window/rect", viewport).catch(() => {});
    return b;
  }

  constructor(engine, session, proxy) {
    this.engine = engine;
    this.session = session;
    this.proxy = proxy;
    this.current = null;
    this.spare = null; // an open tab no page uses (the session ends with its last tab)
    this.queue = Promise.resolve();
  }

  // Runs `fn(session)` with tab `handle` current, one command sequence at a time (WebDriver
  // has one current tab per session).
  on(handle, fn) {
    const run = this.queue.then(async () => {
      if (handle && this.current !== handle) {
        await this.session.cmd("POST", "/window", { handle });
        this.current = handle;
      }
      return fn(this.session);
    });
    this.queue = run.catch(() => {});
    return run;
  }

  async newPage() {
    let handle = this.spare;
    this.spare = null;
    if (!handle) handle = (await this.on(null, (s) => s.cmd("POST", "/window/new", { type: "tab" }))).handle;
    return new WebDriverPage(this, handle);
  }

  async close() {
    await this.session.close();
    if (this.proxy) await this.proxy.close();
  }
}

class WebDriverPage extends BasePage {
  constructor(browser, handle) {
    super();
    this.browser = browser;
    this.engine = browser.engine;
    this.handle = handle;
  }

  goto(url) {
    return this.browser.on(this.handle, (s) => s.navigate(url));
  }

  // Runs `fn(arg)` in the page (a function, or a string holding an expression) and resolves to
  // its value, awaited when it is a promise; a value that is not JSON comes back as WebDriver
  // makes it.
  async evaluate(fn, arg) {
    const src = typeof fn === "function" ? fn.toString() : `() => (${fn})`;
    const script = `const done = arguments[arguments.length - 1];
      Promise.resolve().then(() => (${src})(arguments[0]))
        .then((v) => done({ ok: v === undefined ? null : v }), (e) => done({ error: String(e) + (e && e.stack ? "\\n" + e.stack : "") }));`;
    const r = await this.browser.on(this.handle, (s) => s.execAsync(script, [arg === undefined ? null : arg]));
    if (r && "error" in r) throw new Error(`${this.engine}: evaluate: ${r.error}`);
    return r && r.ok;
  }

  // Polls `fn(arg)` until it is truthy; scripts refused while the page navigates are retried.
  async waitForFunction(fn, arg, { timeout = 30000 } = {}) {
    const end = Date.now() + timeout;
    let last = null;
    for (;;) {
      try {
        const v = await this.evaluate(fn, arg);
        if (v) return v;
        last = null;
      } catch (e) {
        last = e;
      }
      if (Date.now() > end) {
        throw new Error(`${this.engine}: timed out after ${timeout} ms waiting for ${String(fn).slice(0, 200)}` +
          (last ? ` (last error: ${last.message})` : ""));
      }
      await sleep(100);
    }
  }

  // WebDriver Back, which waits for the navigation. Not history.back() in a script: a script
  // still pending in a document that goes into the back/forward cache never answers (WebKit).
  back() {
    return this.browser.on(this.handle, (s) => s.cmd("POST", "/back", {}));
  }

  // WebDriver Refresh: the browser's reload, as the user's.
  reload() {
    return this.browser.on(this.handle, (s) => s.cmd("POST", "/refresh", {}));
  }

  // A real click (WebDriver Element Click) on the first visible element matching `selector`.
  async click(selector) {
    await this.waitForSelector(selector, { timeout: 10000 });
    await this.browser.on(this.handle, async (s) => {
      const el = await s.cmd("POST", "/element", { using: "css selector", value: selector });
      await s.cmd("POST", `/element/${Object.values(el)[0]}/click`, {});
    });
  }

  consoleMessages() {
    return this.evaluate(() => JSON.parse(sessionStorage.getItem("e2e.console") || "[]"));
  }

  async screenshot(path) {
    const png = await this.browser.on(this.handle, (s) => s.cmd("GET", "/screenshot"));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, Buffer.from(png, "base64"));
  }

  // Closes the tab (pagehide and unload run). A blank tab is opened first when this is the
  // last one, since closing the last tab would end the session.
  async close() {
    const b = this.browser;
    await b.on(this.handle, async (s) => {
      const handles = await s.cmd("GET", "/window/handles");
      if (handles.length === 1) b.spare = (await s.cmd("POST", "/window/new", { type: "tab" })).handle;
      await s.cmd("DELETE", "/window");
      b.current = null;
    });
  }
}
