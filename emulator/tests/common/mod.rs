//! Test harness: starts the real emulator binary on a free port and talks HTTP to it.
#![allow(dead_code)]

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_segops-emulator");
pub const OWNER_SECRET: &str = "test-owner-secret";
pub const SESSION_SECRET: &str = "test-session-secret";
pub const OWNER_EMAIL: &str = "owner@acme.test";
pub const OWNER_PASSWORD: &str = "segops-dev";

/// Variables the emulator reads; cleared so the caller's environment cannot leak in.
const ENV_VARS: &[&str] = &[
    "SEGOPS_EMULATOR_ADDR",
    "SEGOPS_EMULATOR_DB",
    "SEGOPS_EMULATOR_SESSION_TTL",
    "SEGOPS_EMULATOR_STATIC",
    "SEGOPS_EMULATOR_OWNER_EMAIL",
    "SEGOPS_EMULATOR_OWNER_PASSWORD",
    "SEGOPS_EMULATOR_DEV_KEYS_OUT",
    "SEGOPS_EMULATOR_DEV_ORIGINS",
    "SEGOPS_EMULATOR_LOG",
    "SECRET_KEY",
    "SEGOPS_SESSION_JWT_SECRET",
    "ENABLE_JWT_INGEST",
];

/// A temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "segops-emu-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running emulator, killed on drop.
pub struct Emulator {
    child: Child,
    pub url: String,
    pub port: u16,
    pub stdout: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers and the body (JSON when it parses).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn headers_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and, for errors, the code.
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {}",
            self.text
        );
        if !code.is_empty() {
            assert!(
                self.body["message"].is_string(),
                "an error has a message: {}",
                self.text
            );
        }
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {}: {}",
            self.status,
            self.text
        );
        &self.body
    }
}

pub fn apikey(k: &str) -> String {
    format!("ApiKey {k}")
}

pub fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sleeps until just after the start of a wall-clock second, so that a few quick requests
/// see the same `now` as the test.
pub fn align_to_second() {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let ms = d.subsec_millis();
    if ms > 150 {
        std::thread::sleep(Duration::from_millis(u64::from(1005 - ms)));
    }
}

/// Runs `f(now)` until the test's clock reads the same second before and after it (so the
/// server, in between, saw that second too), then returns its answer.
pub fn within_one_second(f: impl Fn(i64) -> Resp) -> Resp {
    for _ in 0..5 {
        align_to_second();
        let now = now_secs();
        let r = f(now);
        if now_secs() == now {
            return r;
        }
    }
    panic!("could not fit a request within one wall-clock second");
}

pub fn sign(secret: &str, user_id: &str, ts: i64) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{ts}.{user_id}").as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

static MSG: AtomicU64 = AtomicU64::new(0);

/// A fresh message id.
pub fn mid() -> String {
    format!(
        "msg-{}-{}",
        std::process::id(),
        MSG.fetch_add(1, Ordering::Relaxed)
    )
}

/// A valid track event.
pub fn event(message_id: &str) -> Value {
    json!({
        "message_id": message_id,
        "type": "track",
        "event_type": "checkout_started",
        "user_id": "alice",
        "anonymous_id": null,
        "timestamp": "2026-11-24T03:01:16.123Z",
        "properties": {"cart_value": 42.5},
        "context": {"page": {"path": "/cart"}}
    })
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// How to start an emulator.
#[derive(Default, Clone)]
pub struct Opts {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Opts {
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn args(mut self, a: &[&str]) -> Self {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
}

impl Emulator {
    pub fn start() -> Emulator {
        Emulator::with(Opts::default())
    }

    pub fn with(opts: Opts) -> Emulator {
        let mut cmd = Command::new(BIN);
        cmd.arg("--addr").arg("127.0.0.1:0");
        if !opts.args.iter().any(|a| a == "--db") {
            cmd.arg("--db").arg(":memory:");
        }
        cmd.args(&opts.args);
        for v in ENV_VARS {
            cmd.env_remove(v);
        }
        cmd.env("SECRET_KEY", OWNER_SECRET);
        cmd.env("SEGOPS_SESSION_JWT_SECRET", SESSION_SECRET);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start the emulator");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines2 = lines.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines2.lock().unwrap().push(line.clone());
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line);
                }
            }
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                panic!("the emulator printed no first line: {e}");
            }
        };
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert!(url.starts_with("http://127.0.0.1:") && port != 0, "{url}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Emulator {
            child,
            url,
            port,
            stdout: lines,
            agent,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and asserts that the emulator exits cleanly within 10 s.
    pub fn stop_gracefully(&mut self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self
            .wait_exit(Duration::from_secs(10))
            .expect("exits after SIGTERM");
        assert!(exit.success(), "{exit:?}");
    }

    /// Waits for the process to exit (for shutdown tests).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Any request.
    pub fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.url, path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let result = match body {
            Some(bytes) => self.agent.run(b.body(bytes).unwrap()),
            None => self.agent.run(b.body(()).unwrap()),
        };
        let mut r = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    fn auth_headers<'a>(auth: Option<&'a str>, origin: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut h = Vec::new();
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        h
    }

    pub fn get(&self, path: &str, auth: Option<&str>) -> Resp {
        self.req("GET", path, &Self::auth_headers(auth, None), None)
    }

    pub fn delete(&self, path: &str, auth: Option<&str>) -> Resp {
        self.req("DELETE", path, &Self::auth_headers(auth, None), None)
    }

    pub fn post(&self, path: &str, auth: Option<&str>, body: &Value) -> Resp {
        self.post_from(path, auth, None, body)
    }

    pub fn post_from(
        &self,
        path: &str,
        auth: Option<&str>,
        origin: Option<&str>,
        body: &Value,
    ) -> Resp {
        let mut h = Self::auth_headers(auth, origin);
        h.push(("Content-Type", "application/json"));
        self.req("POST", path, &h, Some(body.to_string().into_bytes()))
    }

    pub fn patch(&self, path: &str, auth: Option<&str>, body: &Value) -> Resp {
        self.req(
            "PATCH",
            path,
            &Self::auth_headers(auth, None),
            Some(body.to_string().into_bytes()),
        )
    }

    // --- Higher-level helpers ---------------------------------------------------------

    /// `Bearer <owner token>`.
    pub fn owner(&self) -> String {
        let r = self.post(
            "/api/auth/login/",
            None,
            &json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}),
        );
        bearer(r.ok()["token"].as_str().unwrap())
    }

    /// Creates a key; returns the creation answer.
    pub fn create_key(&self, owner: &str, spec: Value) -> Value {
        let r = self.post("/api/auth/api-keys/", Some(owner), &spec);
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    /// `ApiKey sk_live_...` with the default scopes.
    pub fn secret_key(&self, owner: &str) -> String {
        apikey(
            self.create_key(owner, json!({"name": "server", "kind": "secret"}))["key"]
                .as_str()
                .unwrap(),
        )
    }

    /// A public key allowing `origins`: the creation answer.
    pub fn public_key(&self, owner: &str, origins: &[&str], signed: bool) -> Value {
        self.create_key(
            owner,
            json!({"name": "web", "kind": "public", "allowed_origins": origins,
                   "require_signed_user_id": signed}),
        )
    }

    pub fn mint(&self, pk: &str, origin: Option<&str>, body: &Value) -> Resp {
        self.post_from("/api/auth/session/", Some(&apikey(pk)), origin, body)
    }

    /// `Bearer <session token>` for a user id, from a public key allowing `origin`.
    pub fn session(&self, pk: &str, origin: &str, body: &Value) -> String {
        let r = self.mint(pk, Some(origin), body);
        bearer(r.ok()["token"].as_str().unwrap())
    }

    pub fn track(&self, auth: &str, events: &[Value]) -> Resp {
        self.post(
            "/api/ingestion/track/",
            Some(auth),
            &json!({ "events": events }),
        )
    }

    /// All events of the tenant (owner token), oldest first.
    pub fn events(&self, owner: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let r = self.get(
                &format!("/api/events/?limit=1000&after={after}"),
                Some(owner),
            );
            let b = r.ok().clone();
            let batch = b["events"].as_array().unwrap().clone();
            if batch.is_empty() {
                return all;
            }
            after = b["next_after"].as_i64().unwrap();
            all.extend(batch);
        }
    }

    pub fn stats(&self, owner: &str) -> Value {
        self.get("/api/dev/stats/", Some(owner)).ok().clone()
    }
}
