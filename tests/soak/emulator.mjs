// The emulator for the soak: the segops-emulator binary xtask built, started, stopped and
// restarted on the same port and database (the outage scenario), plus the owner's API: faults,
// dev stats, keys and the stored events.
import { spawn } from "node:child_process";
import { openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { track, kill } from "./procs.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Emulator {
  constructor({ bin, name, dir, ttl = 8, db = ":memory:", origins = [] }) {
    Object.assign(this, { bin, name, dir, ttl, db, origins });
    // Fixed for this emulator's life, so that tokens survive a restart as on a real server.
    this.secrets = { SECRET_KEY: randomBytes(24).toString("hex"), SEGOPS_SESSION_JWT_SECRET: randomBytes(24).toString("hex") };
    this.port = 0;
    this.proc = null;
    this.token = null;
    this.starts = 0;
  }

  async start() {
    const keysFile = join(this.dir, `${this.name}.keys.json`);
    rmSync(keysFile, { force: true });
    const args = ["--addr", `127.0.0.1:${this.port}`, "--db", this.db, "--session-ttl", String(this.ttl), "--log", "--dev-keys-out", keysFile];
    for (const o of this.origins) args.push("--dev-origin", o);
    const log = openSync(join(this.dir, `${this.name}.log`), "a");
    const proc = track(spawn(this.bin, args, { stdio: ["ignore", "pipe", log], env: { ...process.env, ...this.secrets } }));
    this.proc = proc;
    this.starts += 1;
    const first = await new Promise((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => reject(new Error(`emulator ${this.name}: no listening line within 60 s`)), 60000);
      proc.stdout.on("data", (d) => {
        buf += d;
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(buf.slice(0, nl));
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`emulator ${this.name} exited (${code}) at start; see ${this.name}.log`));
      });
    });
    const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(first);
    if (!m) throw new Error(`emulator ${this.name}: first line ${JSON.stringify(first)}`);
    this.url = m[1];
    this.port = Number(m[2]);
    proc.stdout.resume();
    this.keys = JSON.parse(readFileSync(keysFile, "utf8"));
    this.token = null;
    return this;
  }

  // Stops the process the hard way (as a crash or a killed container would), and waits for it.
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    kill(proc);
    await exited;
    this.proc = null;
  }

  alive() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async owner() {
    if (this.token && this.token.until > Date.now()) return this.token.header;
    const r = await fetch(this.url + "/api/auth/login/", {
      method: "POST",
      body: JSON.stringify({ email: this.keys.owner_email, password: this.keys.owner_password }),
    });
    if (r.status !== 200) throw new Error(`login: ${r.status} ${await r.text()}`);
    const doc = await r.json();
    this.token = { header: "Bearer " + doc.token, until: Date.now() + (doc.expires_in - 60) * 1000 };
    return this.token.header;
  }

  async api(method, path, body) {
    const r = await fetch(this.url + path, {
      method,
      headers: { authorization: await this.owner() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  }

  stats() {
    return this.api("GET", "/api/dev/stats/");
  }

  async createKey(kind, origins) {
    const body = { name: `soak ${kind}`, kind };
    if (kind === "public") body.allowed_origins = origins;
    return this.api("POST", "/api/auth/api-keys/", body);
  }

  revoke(id) {
    return this.api("DELETE", `/api/auth/api-keys/${id}/`);
  }

  // Injects `mix` ([{ kind, status?, share, retry_after?, delay_ms?, after_commit? }], shares of
  // all matching requests) on each of `prefixes`. The emulator tries faults in creation order and
  // applies the first one drawn, so each fault's own probability is its share of what the earlier
  // ones left. Returns { id: kind } for telling the faults apart in answers.
  async injectFaults(prefixes, mix) {
    const kinds = {};
    for (const path_prefix of prefixes) {
      let left = 1;
      for (const f of mix) {
        const body = { path_prefix, count: null, probability: f.share / left };
        for (const k of ["status", "retry_after", "delay_ms", "after_commit"]) if (f[k] !== undefined) body[k] = f[k];
        const { id } = await this.api("POST", "/api/dev/faults/", body);
        kinds[id] = f.kind;
        left -= f.share;
      }
    }
    return kinds;
  }

  clearFaults() {
    return this.api("DELETE", "/api/dev/faults/");
  }

  // Every stored event, oldest first.
  async events() {
    const all = [];
    let after = 0;
    for (;;) {
      const page = await this.api("GET", `/api/events/?limit=1000&after=${after}`);
      if (page.events.length === 0) return all;
      all.push(...page.events);
      after = page.next_after;
    }
  }
}

export { sleep };
