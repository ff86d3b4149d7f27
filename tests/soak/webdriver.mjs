// A tiny W3C WebDriver client over fetch: chromedriver (Chromium), geckodriver (Firefox) and
// WebKitWebDriver (WebKitGTK's MiniBrowser) speak the same protocol, so every browser takes one
// code path, with real navigations.
// One driver process per session (geckodriver serves a single session at a time).
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { track, kill } from "./procs.mjs";
import { CHROMIUM_FLAGS } from "../chromium-flags.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The browser-specific parts: how to start the driver and which capabilities to ask for.
const KINDS = {
  chromium: {
    driverArgs: (port) => [`--port=${port}`],
    capabilities: (binary) => ({
      browserName: "chrome",
      "goog:chromeOptions": {
        binary,
        args: [
          "--headless=new", ...CHROMIUM_FLAGS, "--disable-dev-shm-usage", "--disable-renderer-backgrounding",
          "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
        ],
      },
    }),
  },
  firefox: {
    driverArgs: (port) => ["--port", String(port), "--host", "127.0.0.1"],
    capabilities: (binary, args = [], prefs = {}) => ({
      browserName: "firefox",
      "moz:firefoxOptions": {
        binary,
        args: ["-headless", ...args],
        prefs: {
          // No background traffic or first-run pages in a soak.
          "browser.shell.checkDefaultBrowser": false,
          "app.update.enabled": false,
          "datareporting.policy.dataSubmissionEnabled": false,
          "toolkit.telemetry.enabled": false,
          "network.captive-portal-service.enabled": false,
          "network.connectivity-service.enabled": false,
          ...prefs,
        },
      },
    }),
  },
  // MiniBrowser has no headless mode: it needs an X display (DISPLAY, e.g. an Xvfb). `args`
  // adds browser flags, e.g. a proxy.
  webkit: {
    driverArgs: (port) => [`--port=${port}`, "--host=127.0.0.1"],
    capabilities: (binary, args = []) => ({
      browserName: "MiniBrowser",
      "webkitgtk:browserOptions": { binary, args: ["--automation", ...args] },
    }),
  },
};

export class Session {
  constructor(base, id, driver) {
    this.base = base;
    this.id = id;
    this.driver = driver;
  }

  // Starts a driver and a browser session. `kind` is "chromium", "firefox" or "webkit";
  // `args` are extra browser flags (WebKit and Firefox), `prefs` extra Firefox prefs, and
  // `capabilities` extra W3C capabilities (e.g. { acceptInsecureCerts: true }).
  static async start(kind, { driver, binary, log, args, prefs, capabilities }) {
    const k = KINDS[kind];
    if (!k) throw new Error("unknown browser " + kind);
    const port = await freePort();
    const proc = track(spawn(driver, k.driverArgs(port), { stdio: ["ignore", log || "ignore", log || "ignore"], detached: true }), { group: true });
    const base = `http://127.0.0.1:${port}`;
    const end = Date.now() + 30000;
    for (;;) {
      try {
        const s = await fetch(base + "/status").then((r) => r.json());
        if (s.value && s.value.ready) break;
      } catch (_) { /* not listening yet */ }
      if (proc.exitCode !== null) throw new Error(`${driver} exited with ${proc.exitCode}`);
      if (Date.now() > end) throw new Error(`${driver} not ready within 30 s`);
      await sleep(100);
    }
    const body = {
      capabilities: {
        alwaysMatch: {
          ...k.capabilities(binary, args, prefs),
          pageLoadStrategy: "normal",
          timeouts: { script: 300000, pageLoad: 60000, implicit: 0 },
          ...capabilities,
        },
      },
    };
    const r = await fetch(base + "/session", { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    const doc = await r.json();
    if (!r.ok || !doc.value || !doc.value.sessionId) {
      kill(proc);
      throw new Error(`new ${kind} session: ${r.status} ${JSON.stringify(doc).slice(0, 500)}`);
    }
    return new Session(base, doc.value.sessionId, proc);
  }

  async cmd(method, path, body) {
    const r = await fetch(`${this.base}/session/${this.id}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const doc = await r.json().catch(() => ({}));
    if (!r.ok) {
      const v = doc.value || {};
      throw new Error(`webdriver ${method} ${path}: ${r.status} ${v.error || ""} ${(v.message || "").slice(0, 400)}`);
    }
    return doc.value;
  }

  navigate(url) {
    return this.cmd("POST", "/url", { url });
  }

  // Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
  exec(script, args = []) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  // Like exec, for a script that calls its last argument when done.
  execAsync(script, args = []) {
    return this.cmd("POST", "/execute/async", { script, args });
  }

  // Polls `script` until it returns a truthy value.
  async until(what, script, ms = 30000) {
    const end = Date.now() + ms;
    for (;;) {
      let v;
      try {
        v = await this.exec(script);
      } catch (e) {
        // A page still loading can refuse scripts for a moment.
        if (Date.now() > end) throw e;
      }
      if (v) return v;
      if (Date.now() > end) throw new Error("timed out waiting for " + what);
      await sleep(100);
    }
  }

  async close() {
    try {
      await this.cmd("DELETE", "");
    } catch (_) { /* the browser is gone already */ }
    const exited = new Promise((r) => this.driver.once("exit", r));
    kill(this.driver, "SIGTERM");
    await Promise.race([exited, sleep(5000)]);
    kill(this.driver);
  }
}
