//! The application state, the router, and the edge middleware (CORS, faults, stats).

use crate::api;
use crate::auth::Signers;
use crate::db::Store;
use crate::error::{json_response, ApiError};
use crate::util;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A request body (raw, or inflated from gzip) may not exceed this.
pub const MAX_BODY: usize = 512 * 1024;
/// How much of an oversized body is still read (and dropped) so the client can read the 413.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

pub type Shared = Arc<App>;

pub struct App {
    pub store: Store,
    pub signers: Signers,
    pub session_ttl: u64,
    pub jwt_ingest: bool,
    pub static_dir: Option<PathBuf>,
    pub log: bool,
    pub stats: Mutex<Stats>,
    pub faults: Mutex<FaultBook>,
}

/// The counters of `GET /api/dev/stats/`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub mints: u64,
    pub mints_by_uid: BTreeMap<String, u64>,
    pub events_stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub faults_applied: u64,
}

/// An injected fault.
#[derive(Debug, Clone)]
pub struct Fault {
    pub id: u64,
    pub path_prefix: String,
    pub status: Option<u16>,
    /// How many more requests it applies to; `None` is no limit.
    pub remaining: Option<u64>,
    pub probability: f64,
    pub retry_after: Option<String>,
    pub delay_ms: u64,
    pub after_commit: bool,
}

#[derive(Debug, Default)]
pub struct FaultBook {
    pub next_id: u64,
    pub faults: Vec<Fault>,
}

impl FaultBook {
    /// The first live fault, in creation order, that matches the path and is drawn.
    fn pick(&mut self, path: &str) -> Option<Fault> {
        let mut chosen = None;
        for f in self.faults.iter_mut() {
            if !path.starts_with(&f.path_prefix) || f.remaining == Some(0) {
                continue;
            }
            let drawn = if f.probability >= 1.0 {
                true
            } else if f.probability <= 0.0 {
                false
            } else {
                util::random_f64() < f.probability
            };
            if drawn {
                if let Some(r) = f.remaining.as_mut() {
                    *r -= 1;
                }
                chosen = Some(f.clone());
                break;
            }
        }
        self.faults.retain(|f| f.remaining != Some(0));
        chosen
    }
}

impl App {
    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultBook> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/api/auth/login/", post(api::login))
        .route(
            "/api/auth/api-keys/",
            get(api::list_keys).post(api::create_key),
        )
        .route(
            "/api/auth/api-keys/{id}/",
            patch(api::patch_key).delete(api::revoke_key),
        )
        .route("/api/auth/session/", post(api::mint_session))
        .route("/api/ingestion/track/", post(api::ingest))
        .route("/api/events/", get(api::read_events))
        .route(
            "/api/dev/faults/",
            post(api::create_fault).delete(api::clear_faults),
        )
        .route(
            "/api/dev/stats/",
            get(api::get_stats).delete(api::reset_stats),
        )
        .route("/api/dev/sign-user-id/", post(api::dev_sign))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), edge))
        .with_state(app)
}

/// The stats key of a request: `METHOD /path/`, with key ids folded into `{id}`.
fn route_key(method: &Method, path: &str) -> String {
    const KEYS: &str = "/api/auth/api-keys/";
    let path = match path.strip_prefix(KEYS) {
        Some(rest) if !rest.is_empty() => "/api/auth/api-keys/{id}/",
        _ => path,
    };
    format!("{method} {path}")
}

fn add_cors(headers: &mut HeaderMap, origin: Option<&HeaderValue>) {
    if let Some(o) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// CORS on every answer, preflights, injected faults and the dev stats, around every request.
async fn edge(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    if method == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        add_cors(h, origin.as_ref());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, content-encoding"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        if app.log {
            eprintln!("{method} {path} -> 204 (preflight)");
        }
        return resp;
    }

    let dev = path.starts_with("/api/dev/");
    let fault = if dev { None } else { app.faults().pick(&path) };
    let mut resp = match fault {
        None => run_guarded(next, req).await,
        Some(f) => {
            app.stats().faults_applied += 1;
            if f.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
            }
            match f.status {
                None => run_guarded(next, req).await,
                Some(status) => {
                    if f.after_commit {
                        drop(run_guarded(next, req).await);
                    }
                    fault_response(&f, status)
                }
            }
        }
    };

    if !dev {
        let mut s = app.stats();
        s.requests += 1;
        *s.by_route.entry(route_key(&method, &path)).or_default() += 1;
        *s.by_status
            .entry(resp.status().as_u16().to_string())
            .or_default() += 1;
    }
    let h = resp.headers_mut();
    add_cors(h, origin.as_ref());
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After, Date"),
    );
    if app.log {
        eprintln!(
            "{method} {path} -> {} ({} ms)",
            resp.status().as_u16(),
            started.elapsed().as_millis()
        );
    }
    resp
}

/// Runs the handler; a panic (a bug) becomes a 500 `internal_error` that still gets CORS.
async fn run_guarded(next: Next, req: Request) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            ApiError::internal(format!("the handler panicked: {what}")).into_response()
        }
    }
}

fn fault_response(f: &Fault, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = json_response(
        status,
        &json!({
            "code": "fault_injected",
            "message": format!("fault {} injected for {}", f.id, f.path_prefix),
        }),
    );
    if let Some(ra) = f.retry_after.as_deref() {
        if let Ok(v) = HeaderValue::from_str(ra) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response()
}

async fn fallback(State(app): State<Shared>, req: Request) -> Response {
    if let Some(dir) = &app.static_dir {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            if let Some(resp) = serve_static(dir, req.uri().path()).await {
                return resp;
            }
        }
    }
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A file under `dir` for a URL path; `None` when there is none (the caller answers 404).
async fn serve_static(dir: &Path, url_path: &str) -> Option<Response> {
    let decoded = percent_decode(url_path)?;
    let mut full = dir.to_path_buf();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        let p = Path::new(part);
        let mut comps = p.components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(c)), None) if !part.contains(['\\', '\0']) => full.push(c),
            _ => return None,
        }
    }
    let meta = tokio::fs::metadata(&full).await.ok()?;
    if meta.is_dir() {
        if !url_path.ends_with('/') {
            let mut resp = StatusCode::PERMANENT_REDIRECT.into_response();
            let loc = HeaderValue::from_str(&format!("{url_path}/")).ok()?;
            resp.headers_mut().insert(header::LOCATION, loc);
            return Some(resp);
        }
        full.push("index.html");
    }
    let bytes = tokio::fs::read(&full).await.ok()?;
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&full)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(resp)
}

/// Reads a request body, refusing one over [`MAX_BODY`] with 413 (still reading, up to a
/// bound, what the client sends so that it can read the answer).
pub async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::payload_too_large(format!(
            "the request body is over {MAX_BODY} bytes (512 KiB)"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > (MAX_BODY + DRAIN_LIMIT) as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(_) if total > MAX_BODY => break,
            Err(e) => {
                return Err(ApiError::invalid_request(format!(
                    "could not read the request body: {e}"
                )))
            }
        };
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else {
                buf = Vec::new();
                if total > MAX_BODY + DRAIN_LIMIT {
                    break;
                }
            }
        }
    }
    if total > MAX_BODY {
        return Err(too_large());
    }
    Ok(buf)
}

/// Undoes `Content-Encoding: gzip` (the inflated body is limited too) and parses JSON.
pub fn parse_json_body(headers: &HeaderMap, raw: Vec<u8>) -> Result<Value, ApiError> {
    let bytes = match headers.get(header::CONTENT_ENCODING) {
        None => raw,
        Some(v) => {
            let enc = v.to_str().unwrap_or("?").trim().to_ascii_lowercase();
            match enc.as_str() {
                "" | "identity" => raw,
                "gzip" | "x-gzip" => inflate(&raw)?,
                other => {
                    return Err(ApiError::invalid_request(format!(
                        "Content-Encoding `{other}` is not supported (use gzip or none)"
                    )))
                }
            }
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid_json(format!("the body is not JSON: {e}")))
}

fn inflate(raw: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(raw).take(MAX_BODY as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| ApiError::invalid_json(format!("the gzip body does not inflate: {e}")))?;
    if out.len() > MAX_BODY {
        return Err(ApiError::payload_too_large(format!(
            "the inflated request body is over {MAX_BODY} bytes (512 KiB)"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys() {
        assert_eq!(
            route_key(&Method::PATCH, "/api/auth/api-keys/key_1/"),
            "PATCH /api/auth/api-keys/{id}/"
        );
        assert_eq!(
            route_key(&Method::GET, "/api/auth/api-keys/"),
            "GET /api/auth/api-keys/"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/").as_deref(), Some("/a b/"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }

    #[test]
    fn fault_book_counts_and_probability() {
        let mut b = FaultBook::default();
        b.faults.push(Fault {
            id: 1,
            path_prefix: "/api/x".into(),
            status: Some(503),
            remaining: Some(2),
            probability: 1.0,
            retry_after: None,
            delay_ms: 0,
            after_commit: false,
        });
        b.faults.push(Fault {
            id: 2,
            path_prefix: "/".into(),
            status: Some(500),
            remaining: None,
            probability: 0.0,
            retry_after: None,
            delay_ms: 0,
            after_commit: false,
        });
        assert_eq!(b.pick("/api/x/").map(|f| f.id), Some(1));
        assert_eq!(b.pick("/api/y/").map(|f| f.id), None);
        assert_eq!(b.pick("/api/x/").map(|f| f.id), Some(1));
        assert_eq!(b.pick("/api/x/").map(|f| f.id), None);
        assert_eq!(b.faults.len(), 1);
    }
}
