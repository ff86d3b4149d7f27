//! The endpoints of docs/protocol.md.

use crate::auth::{credential, Credential, OwnerClaims, SessionClaims, OWNER_TTL_SECS};
use crate::db::{ApiKey, NewEvent, Owner};
use crate::error::{json_response, ApiError, ApiResult};
use crate::origin;
use crate::server::{parse_json_body, read_body, Fault, Shared, Stats};
use crate::sign;
use crate::util;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use serde_json::{json, Map, Value};

type Obj = Map<String, Value>;

/// The largest compact JSON of one event, in bytes.
const MAX_EVENT_BYTES: usize = 32 * 1024;

// ---------------------------------------------------------------------------------------
// Body helpers

fn object(v: &Value) -> Result<&Obj, ApiError> {
    v.as_object()
        .ok_or_else(|| ApiError::invalid_request("the body must be a JSON object"))
}

fn only_fields(obj: &Obj, allowed: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid_request(format!(
            "{k}: unknown field (expected {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A field absent or null is `None`.
fn field<'a>(obj: &'a Obj, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn char_len_ok(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    n >= min && n <= max
}

/// An optional string of `min..=max` characters.
fn opt_string(obj: &Obj, name: &str, min: usize, max: usize) -> Result<Option<String>, String> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) if char_len_ok(s, min, max) => Ok(Some(s.clone())),
        Some(_) => Err(format!(
            "{name}: expected a string of {min} to {max} characters"
        )),
    }
}

fn req_string(obj: &Obj, name: &str, min: usize, max: usize) -> Result<String, String> {
    opt_string(obj, name, min, max)?
        .ok_or_else(|| format!("{name}: required, a string of {min} to {max} characters"))
}

fn opt_bool(obj: &Obj, name: &str) -> Result<Option<bool>, ApiError> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_request(format!(
            "{name}: expected true or false"
        ))),
    }
}

async fn json_body(headers: &HeaderMap, raw: Vec<u8>) -> Result<Value, ApiError> {
    parse_json_body(headers, raw)
}

// ---------------------------------------------------------------------------------------
// Credentials

fn key_by_secret(app: &Shared, key: &str) -> Result<ApiKey, ApiError> {
    match app.store.key_by_hash(&util::sha256_hex(key))? {
        None => Err(ApiError::unauthorized("invalid_api_key", "unknown API key")),
        Some(k) if k.revoked_at.is_some() => Err(ApiError::unauthorized(
            "api_key_revoked",
            format!("API key {} has been revoked", k.id),
        )),
        Some(k) => Ok(k),
    }
}

/// The owner behind an owner token (key management, the event reader, the dev endpoints).
fn owner(app: &Shared, headers: &HeaderMap) -> Result<Owner, ApiError> {
    match credential(headers)? {
        Credential::Bearer(token) => {
            let claims = app.signers.verify_owner(&token)?;
            app.store.owner_by_id(&claims.sub)?.ok_or_else(|| {
                ApiError::unauthorized("invalid_token", "the token's owner does not exist")
            })
        }
        Credential::ApiKey(key) => {
            let k = key_by_secret(app, &key)?;
            Err(ApiError::unauthorized(
                "key_kind_not_allowed",
                format!(
                    "a {} key cannot be used here: this endpoint takes an owner token",
                    k.kind
                ),
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Health and login

pub async fn healthz() -> ApiResult {
    Ok(json_response(StatusCode::OK, &json!({"status": "ok"})))
}

pub async fn login(State(app): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    let raw = read_body(&headers, body).await?;
    let v = json_body(&headers, raw).await?;
    let obj = object(&v)?;
    let email = req_string(obj, "email", 1, 320).map_err(ApiError::invalid_request)?;
    let password = req_string(obj, "password", 1, 1024).map_err(ApiError::invalid_request)?;
    let bad = || ApiError::unauthorized("invalid_credentials", "wrong email or password");
    let owner = app.store.owner_by_email(email.trim())?.ok_or_else(bad)?;
    if !owner.password_matches(&password) {
        return Err(bad());
    }
    let now_ms = util::now_ms();
    let now = now_ms.div_euclid(1000);
    let token = app.signers.owner_token(&OwnerClaims {
        typ: "owner".into(),
        sub: owner.id.clone(),
        email: owner.email.clone(),
        tenant: owner.tenant_slug.clone(),
        iat: now,
        exp: now + OWNER_TTL_SECS,
    })?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "token": token,
            "expires_at": util::iso_ms((now + OWNER_TTL_SECS) * 1000),
            "expires_in": OWNER_TTL_SECS,
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// API keys

fn origins_field(v: Option<&Value>, kind: &str) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let bad_type = || ApiError::invalid_request("allowed_origins: expected an array of strings");
    let arr = v.as_array().ok_or_else(bad_type)?;
    if arr.len() > 100 {
        return Err(ApiError::invalid_request(
            "allowed_origins: at most 100 entries",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(arr.len());
    for e in arr {
        let s = e.as_str().ok_or_else(bad_type)?;
        if origin::parse_pattern(s).is_none() {
            return Err(ApiError::invalid_request(format!(
                "allowed_origins: `{s}` is not an origin: expected scheme://host[:port] with \
                 scheme http or https and no path, query or fragment; a host may start with \
                 `*.` followed by at least two labels"
            )));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if kind != "public" && !out.is_empty() {
        return Err(ApiError::invalid_request(
            "allowed_origins: only public keys have an origin allowlist",
        ));
    }
    Ok(Some(out))
}

fn scopes_field(v: Option<&Value>, kind: &str) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let bad = || ApiError::invalid_request("scopes: expected an array of \"ingest\" and \"read\"");
    let arr = v.as_array().ok_or_else(bad)?;
    let mut out: Vec<String> = Vec::new();
    for e in arr {
        let s = e.as_str().ok_or_else(bad)?;
        if !matches!(s, "ingest" | "read") {
            return Err(bad());
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if kind == "public" && out.iter().any(|s| s == "read") {
        return Err(ApiError::invalid_request(
            "scopes: a public key never gets \"read\"",
        ));
    }
    Ok(Some(out))
}

fn signed_field(obj: &Obj, kind: &str) -> Result<Option<bool>, ApiError> {
    let v = opt_bool(obj, "require_signed_user_id")?;
    if v == Some(true) && kind != "public" {
        return Err(ApiError::invalid_request(
            "require_signed_user_id: only public keys take signed user ids",
        ));
    }
    Ok(v)
}

pub async fn create_key(State(app): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    let raw = read_body(&headers, body).await?;
    let owner = owner(&app, &headers)?;
    let v = json_body(&headers, raw).await?;
    let obj = object(&v)?;
    only_fields(
        obj,
        &[
            "name",
            "tenant_slug",
            "kind",
            "allowed_origins",
            "scopes",
            "require_signed_user_id",
        ],
    )?;
    let kind = match field(obj, "kind") {
        Some(Value::String(k)) if matches!(k.as_str(), "secret" | "public" | "mcp") => k.clone(),
        _ => {
            return Err(ApiError::invalid_request(
                "kind: required, one of \"secret\", \"public\" or \"mcp\"",
            ))
        }
    };
    let name = opt_string(obj, "name", 1, 200)
        .map_err(ApiError::invalid_request)?
        .unwrap_or_else(|| format!("{kind} key"));
    match field(obj, "tenant_slug") {
        None => {}
        Some(Value::String(t)) if *t == owner.tenant_slug => {}
        Some(Value::String(t)) => {
            return Err(ApiError::forbidden(
                "forbidden",
                format!("tenant_slug: you are not an owner of tenant `{t}`"),
            ))
        }
        Some(_) => return Err(ApiError::invalid_request("tenant_slug: expected a string")),
    }
    let allowed_origins = origins_field(field(obj, "allowed_origins"), &kind)?.unwrap_or_default();
    let scopes =
        scopes_field(field(obj, "scopes"), &kind)?.unwrap_or_else(|| match kind.as_str() {
            "secret" => vec!["ingest".into(), "read".into()],
            "public" => vec!["ingest".into()],
            _ => vec!["read".into()],
        });
    let require_signed_user_id = signed_field(obj, &kind)?.unwrap_or(false);
    let (key, k) = new_key(
        &app,
        owner.tenant_id,
        &owner.tenant_slug,
        &name,
        &kind,
        allowed_origins,
        scopes,
        require_signed_user_id,
    )?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "id": k.id,
            "name": k.name,
            "kind": k.kind,
            "key": key,
            "hmac_secret": k.hmac_secret,
            "allowed_origins": k.allowed_origins,
            "scopes": k.scopes,
            "require_signed_user_id": k.require_signed_user_id,
            "created_at": k.created_at,
        }),
    ))
}

/// Creates and stores a key; returns the raw key (shown once) and the stored record.
#[allow(clippy::too_many_arguments)]
pub fn new_key(
    app: &Shared,
    tenant_id: i64,
    tenant_slug: &str,
    name: &str,
    kind: &str,
    allowed_origins: Vec<String>,
    scopes: Vec<String>,
    require_signed_user_id: bool,
) -> Result<(String, ApiKey), ApiError> {
    let prefix = match kind {
        "secret" => "sk_live_",
        "public" => "pk_live_",
        _ => "mk_live_",
    };
    let raw = format!("{prefix}{}", util::random_alnum(32));
    let k = ApiKey {
        id: format!("key_{}", util::random_hex(12)),
        tenant_id,
        tenant_slug: tenant_slug.to_string(),
        name: name.to_string(),
        kind: kind.to_string(),
        prefix: raw.chars().take(12).collect(),
        hmac_secret: (kind == "public").then(|| format!("hs_{}", util::random_alnum(32))),
        allowed_origins,
        scopes,
        require_signed_user_id,
        created_at: util::iso_now(),
        revoked_at: None,
    };
    app.store.insert_key(&k, &util::sha256_hex(&raw))?;
    Ok((raw, k))
}

pub async fn list_keys(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    let owner = owner(&app, &headers)?;
    let keys: Vec<Value> = app
        .store
        .list_keys(owner.tenant_id)?
        .iter()
        .map(ApiKey::listed)
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "keys": keys })))
}

fn key_in_path(app: &Shared, owner: &Owner, uri: &Uri) -> Result<ApiKey, ApiError> {
    let id = uri
        .path()
        .strip_prefix("/api/auth/api-keys/")
        .and_then(|r| r.strip_suffix('/'))
        .unwrap_or("");
    match app.store.key_by_id(id)? {
        Some(k) if k.tenant_id == owner.tenant_id => Ok(k),
        _ => Err(ApiError::not_found(format!("no API key `{id}`"))),
    }
}

pub async fn patch_key(
    State(app): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let raw = read_body(&headers, body).await?;
    let owner = owner(&app, &headers)?;
    let mut k = key_in_path(&app, &owner, &uri)?;
    let v = json_body(&headers, raw).await?;
    let obj = object(&v)?;
    if obj.contains_key("kind") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "immutable_field",
            "kind: a key's kind cannot be changed; create a new key",
        ));
    }
    only_fields(
        obj,
        &[
            "name",
            "allowed_origins",
            "scopes",
            "require_signed_user_id",
        ],
    )?;
    let name = opt_string(obj, "name", 1, 200).map_err(ApiError::invalid_request)?;
    let origins = origins_field(field(obj, "allowed_origins"), &k.kind)?;
    let scopes = scopes_field(field(obj, "scopes"), &k.kind)?;
    let signed = signed_field(obj, &k.kind)?;
    if let Some(n) = name {
        k.name = n;
    }
    if let Some(o) = origins {
        k.allowed_origins = o;
    }
    if let Some(s) = scopes {
        k.scopes = s;
    }
    if let Some(s) = signed {
        k.require_signed_user_id = s;
    }
    app.store.update_key(&k)?;
    Ok(json_response(StatusCode::OK, &k.listed()))
}

pub async fn revoke_key(State(app): State<Shared>, uri: Uri, headers: HeaderMap) -> ApiResult {
    let owner = owner(&app, &headers)?;
    let mut k = key_in_path(&app, &owner, &uri)?;
    if k.revoked_at.is_none() {
        k.revoked_at = Some(util::iso_now());
        app.store.update_key(&k)?;
    }
    Ok(json_response(StatusCode::OK, &k.listed()))
}

// ---------------------------------------------------------------------------------------
// Session tokens

pub async fn mint_session(State(app): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    let raw = read_body(&headers, body).await?;
    // 1. The key.
    let key = match credential(&headers)? {
        Credential::ApiKey(k) => key_by_secret(&app, &k)?,
        Credential::Bearer(_) => {
            return Err(ApiError::unauthorized(
                "key_kind_not_allowed",
                "the session endpoint takes a public key (ApiKey pk_live_...)",
            ))
        }
    };
    if key.kind != "public" {
        return Err(ApiError::unauthorized(
            "key_kind_not_allowed",
            format!(
                "a {} key cannot mint session tokens: use a public key",
                key.kind
            ),
        ));
    }
    // 2. The body.
    let v = json_body(&headers, raw).await?;
    let obj = object(&v)?;
    only_fields(
        obj,
        &["user_id", "anonymous_id", "user_id_sig", "user_id_ts"],
    )?;
    let user_id = opt_string(obj, "user_id", 1, 256).map_err(ApiError::invalid_request)?;
    let anonymous_id =
        opt_string(obj, "anonymous_id", 1, 256).map_err(ApiError::invalid_request)?;
    let (uid, uid_kind) = match (user_id, anonymous_id) {
        (Some(u), None) => (u, "user"),
        (None, Some(a)) => (a, "anonymous"),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "user_id, anonymous_id: send exactly one of them, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid_request(
                "user_id, anonymous_id: one of them is required",
            ))
        }
    };
    // 3. The origin.
    let origin_header = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !origin::origin_allowed(origin_header, &key.allowed_origins) {
        return Err(ApiError::forbidden(
            "origin_not_allowed",
            format!(
                "origin {} is not on this key's allowed_origins",
                origin_header.unwrap_or("(none)")
            ),
        ));
    }
    // 4. The signature.
    if key.require_signed_user_id && uid_kind == "user" {
        check_signature(&key, &uid, obj)?;
    }
    // Mint.
    let now = util::now_secs();
    let ttl = app.session_ttl as i64;
    let token = app.signers.session_token(&SessionClaims {
        typ: "session".into(),
        sub: uid.clone(),
        uid_kind: uid_kind.into(),
        tenant: key.tenant_slug.clone(),
        kid: key.id.clone(),
        iat: now,
        exp: now + ttl,
    })?;
    {
        let mut s = app.stats();
        s.mints += 1;
        *s.mints_by_uid.entry(uid.clone()).or_default() += 1;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "token": token,
            "expires_at": util::iso_ms((now + ttl) * 1000),
            "expires_in": ttl,
            "uid": uid,
            "uid_kind": uid_kind,
        }),
    ))
}

fn check_signature(key: &ApiKey, user_id: &str, obj: &Obj) -> Result<(), ApiError> {
    let (Some(sig), Some(ts)) = (field(obj, "user_id_sig"), field(obj, "user_id_ts")) else {
        return Err(ApiError::forbidden(
            "signature_required",
            "this key requires user_id_sig and user_id_ts with a user_id",
        ));
    };
    let ts = ts.as_i64().ok_or_else(|| {
        ApiError::forbidden("signature_malformed", "user_id_ts: expected an integer")
    })?;
    let sig = sig
        .as_str()
        .filter(|s| sign::is_well_formed(s))
        .ok_or_else(|| {
            ApiError::forbidden(
                "signature_malformed",
                "user_id_sig: expected 64 lowercase hex characters",
            )
        })?;
    let now = util::now_secs();
    if ts < now.saturating_sub(300) {
        return Err(ApiError::forbidden(
            "signature_expired",
            "user_id_ts is more than 300 seconds old",
        ));
    }
    if ts > now.saturating_add(60) {
        return Err(ApiError::forbidden(
            "signature_from_future",
            "user_id_ts is more than 60 seconds in the future",
        ));
    }
    let secret = key.hmac_secret.as_deref().unwrap_or("");
    if !sign::verify_user_id(secret, user_id, ts, sig) {
        return Err(ApiError::forbidden(
            "signature_mismatch",
            "user_id_sig does not match user_id and user_id_ts under this key's hmac_secret",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ingestion

/// Who is sending events.
struct Sender {
    tenant_id: i64,
    key_id: String,
    auth: &'static str,
    /// A session's identity: (uid, "user" | "anonymous").
    forced: Option<(String, String)>,
}

fn ingest_sender(app: &Shared, headers: &HeaderMap) -> Result<Sender, ApiError> {
    match credential(headers)? {
        Credential::ApiKey(k) => {
            let key = key_by_secret(app, &k)?;
            if key.kind != "secret" {
                return Err(ApiError::unauthorized(
                    "key_kind_not_allowed",
                    format!(
                        "a {} key cannot send events: browsers mint a session token first",
                        key.kind
                    ),
                ));
            }
            if !key.has_scope("ingest") {
                return Err(ApiError::forbidden(
                    "forbidden",
                    "this key does not have the `ingest` scope",
                ));
            }
            Ok(Sender {
                tenant_id: key.tenant_id,
                key_id: key.id,
                auth: "secret_key",
                forced: None,
            })
        }
        Credential::Bearer(token) => {
            if !app.jwt_ingest {
                return Err(ApiError::unauthorized(
                    "jwt_ingest_disabled",
                    "session tokens are not accepted for ingestion on this server",
                ));
            }
            let c = app.signers.verify_session(&token)?;
            let key = app.store.key_by_id(&c.kid)?.ok_or_else(|| {
                ApiError::unauthorized("invalid_token", "the token's key does not exist")
            })?;
            if key.revoked_at.is_some() {
                return Err(ApiError::unauthorized(
                    "api_key_revoked",
                    format!("API key {} has been revoked", key.id),
                ));
            }
            Ok(Sender {
                tenant_id: key.tenant_id,
                key_id: key.id,
                auth: "session",
                forced: Some((c.sub, c.uid_kind)),
            })
        }
    }
}

const EVENT_FIELDS: &[&str] = &[
    "message_id",
    "type",
    "event_type",
    "user_id",
    "anonymous_id",
    "timestamp",
    "properties",
    "traits",
    "context",
];

/// One rejected event: (code, message).
type Rejection = (&'static str, String);

fn validate_event(
    ev: &Obj,
    forced: Option<&(String, String)>,
    batch_context: Option<&Obj>,
) -> Result<NewEvent, Rejection> {
    let invalid = |m: String| ("invalid_event", m);
    let size = serde_json::to_vec(ev)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err((
            "event_too_large",
            format!("the event is {size} bytes of JSON; the limit is {MAX_EVENT_BYTES}"),
        ));
    }
    if let Some(k) = ev.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!("{k}: unknown field")));
    }
    let message_id = req_string(ev, "message_id", 1, 128).map_err(invalid)?;
    let kind = match field(ev, "type") {
        Some(Value::String(t)) if matches!(t.as_str(), "track" | "identify" | "page") => t.clone(),
        _ => {
            return Err(invalid(
                "type: expected \"track\", \"identify\" or \"page\"".into(),
            ))
        }
    };
    let event_type = req_string(ev, "event_type", 1, 200).map_err(invalid)?;
    let forced_kind = forced.map(|(_, k)| k.as_str());
    let mut user_id = if forced.is_some() {
        None
    } else {
        opt_string(ev, "user_id", 1, 256).map_err(invalid)?
    };
    let mut anonymous_id = if forced_kind == Some("anonymous") {
        None
    } else {
        opt_string(ev, "anonymous_id", 1, 256).map_err(invalid)?
    };
    let timestamp = match field(ev, "timestamp") {
        Some(Value::String(t)) if util::is_rfc3339(t) => t.clone(),
        _ => {
            return Err(invalid(
                "timestamp: expected an RFC 3339 date-time string".into(),
            ))
        }
    };
    let mut objects = [Value::Null, Value::Null, Value::Null];
    for (slot, name) in objects.iter_mut().zip(["properties", "traits", "context"]) {
        match field(ev, name) {
            None => {}
            Some(v @ Value::Object(_)) => *slot = v.clone(),
            Some(_) => return Err(invalid(format!("{name}: expected an object or null"))),
        }
    }
    let [properties, traits, mut context] = objects;
    if let Some((uid, k)) = forced {
        if k == "user" {
            user_id = Some(uid.clone());
        } else {
            anonymous_id = Some(uid.clone());
            user_id = None;
        }
    }
    if user_id.is_none() && anonymous_id.is_none() {
        return Err((
            "missing_identity",
            "an event needs a user_id or an anonymous_id".into(),
        ));
    }
    if let Some(batch) = batch_context.filter(|b| !b.is_empty()) {
        let mut merged = context.as_object().cloned().unwrap_or_default();
        for (k, v) in batch {
            if !merged.contains_key(k) {
                merged.insert(k.clone(), v.clone());
            }
        }
        context = Value::Object(merged);
    }
    Ok(NewEvent {
        message_id,
        kind,
        event_type,
        user_id,
        anonymous_id,
        timestamp,
        properties,
        traits,
        context,
    })
}

pub async fn ingest(State(app): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    let raw = read_body(&headers, body).await?;
    let sender = ingest_sender(&app, &headers)?;
    let v = json_body(&headers, raw).await?;
    let obj = object(&v)?;
    let (events, batch_context): (Vec<&Obj>, Option<&Obj>) = if obj.contains_key("events") {
        only_fields(obj, &["events", "context", "sent_at"])?;
        let arr = obj
            .get("events")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::invalid_request("events: expected an array of objects"))?;
        let mut events = Vec::with_capacity(arr.len());
        for (i, e) in arr.iter().enumerate() {
            events.push(e.as_object().ok_or_else(|| {
                ApiError::invalid_request(format!("events[{i}]: expected an object"))
            })?);
        }
        let context = match field(obj, "context") {
            None => None,
            Some(Value::Object(c)) => Some(c),
            Some(_) => {
                return Err(ApiError::invalid_request(
                    "context: expected an object or null",
                ))
            }
        };
        match field(obj, "sent_at") {
            None => {}
            Some(Value::String(s)) if util::is_rfc3339(s) => {}
            Some(_) => {
                return Err(ApiError::invalid_request(
                    "sent_at: expected an RFC 3339 date-time string",
                ))
            }
        }
        (events, context)
    } else if obj.contains_key("type") {
        (vec![obj], None)
    } else {
        return Err(ApiError::invalid_request(
            "events: required (or send a single event object with a `type`)",
        ));
    };

    let mut good = Vec::with_capacity(events.len());
    let mut rejected = Vec::new();
    for (index, ev) in events.iter().enumerate() {
        match validate_event(ev, sender.forced.as_ref(), batch_context) {
            Ok(e) => good.push(e),
            Err((code, message)) => {
                rejected.push(json!({"index": index, "code": code, "message": message}))
            }
        }
    }
    let stored = app
        .store
        .insert_events(sender.tenant_id, &sender.key_id, sender.auth, &good)?;
    let accepted = stored.iter().filter(|s| **s).count() as u64;
    let duplicates = stored.len() as u64 - accepted;
    {
        let mut s = app.stats();
        s.events_stored += accepted;
        s.duplicates += duplicates;
        s.rejected += rejected.len() as u64;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"accepted": accepted, "duplicates": duplicates, "rejected": rejected}),
    ))
}

// ---------------------------------------------------------------------------------------
// Reading events

fn query_int(uri: &Uri, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(q) = uri.query() else {
        return Ok(None);
    };
    let mut found = None;
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            found = Some(v.parse::<i64>().map_err(|_| {
                ApiError::invalid_request(format!("{name}: expected an integer, got `{v}`"))
            })?);
        }
    }
    Ok(found)
}

pub async fn read_events(State(app): State<Shared>, uri: Uri, headers: HeaderMap) -> ApiResult {
    let tenant_id = match credential(&headers)? {
        Credential::ApiKey(k) => {
            let key = key_by_secret(&app, &k)?;
            match key.kind.as_str() {
                "public" => {
                    return Err(ApiError::forbidden(
                        "forbidden",
                        "a public key can never read tenant data",
                    ))
                }
                "secret" => {}
                other => {
                    return Err(ApiError::unauthorized(
                        "key_kind_not_allowed",
                        format!("a {other} key cannot be used here"),
                    ))
                }
            }
            if !key.has_scope("read") {
                return Err(ApiError::forbidden(
                    "forbidden",
                    "this key does not have the `read` scope",
                ));
            }
            key.tenant_id
        }
        Credential::Bearer(token) => match app.signers.verify_owner(&token) {
            Ok(c) => {
                app.store
                    .owner_by_id(&c.sub)?
                    .ok_or_else(|| {
                        ApiError::unauthorized("invalid_token", "the token's owner does not exist")
                    })?
                    .tenant_id
            }
            Err(e) => {
                if app.signers.verify_session(&token).is_ok() {
                    return Err(ApiError::forbidden(
                        "forbidden",
                        "a session token cannot read events",
                    ));
                }
                return Err(e);
            }
        },
    };
    let limit = query_int(&uri, "limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_request("limit: expected 1 to 1000"));
    }
    let after = query_int(&uri, "after")?.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid_request("after: expected 0 or more"));
    }
    let events = app.store.read_events(tenant_id, after, limit)?;
    let next_after = events
        .last()
        .and_then(|e| e["id"].as_i64())
        .unwrap_or(after);
    Ok(json_response(
        StatusCode::OK,
        &json!({"events": events, "next_after": next_after}),
    ))
}

// ---------------------------------------------------------------------------------------
// Dev endpoints

pub async fn create_fault(State(app): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    let raw = read_body(&headers, body).await?;
    owner(&app, &headers)?;
    let v = json_body(&headers, raw).await?;
    let obj = object(&v)?;
    only_fields(
        obj,
        &[
            "path_prefix",
            "status",
            "count",
            "probability",
            "retry_after",
            "delay_ms",
            "after_commit",
        ],
    )?;
    let path_prefix = req_string(obj, "path_prefix", 1, 1000).map_err(ApiError::invalid_request)?;
    let status = match field(obj, "status") {
        None => None,
        Some(s) => match s.as_u64() {
            Some(n) if (200..=599).contains(&n) => Some(n as u16),
            _ => {
                return Err(ApiError::invalid_request(
                    "status: expected an HTTP status from 200 to 599",
                ))
            }
        },
    };
    let remaining = match obj.get("count") {
        None => Some(1),
        Some(Value::Null) => None,
        Some(c) => match c.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                return Err(ApiError::invalid_request(
                    "count: expected a positive integer, or null for no limit",
                ))
            }
        },
    };
    let probability = match field(obj, "probability") {
        None => 1.0,
        Some(p) => match p.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => x,
            _ => {
                return Err(ApiError::invalid_request(
                    "probability: expected a number from 0 to 1",
                ))
            }
        },
    };
    let retry_after = match field(obj, "retry_after") {
        None => None,
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 200 && s.bytes().all(|c| (0x20..0x7f).contains(&c)) =>
        {
            Some(s.clone())
        }
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "retry_after: expected a string (sent as is) or a whole number of seconds",
            ))
        }
    };
    let delay_ms = match field(obj, "delay_ms") {
        None => 0,
        Some(d) => match d.as_u64() {
            Some(n) if n <= 120_000 => n,
            _ => {
                return Err(ApiError::invalid_request(
                    "delay_ms: expected an integer from 0 to 120000",
                ))
            }
        },
    };
    let after_commit = opt_bool(obj, "after_commit")?.unwrap_or(false);
    let id = {
        let mut book = app.faults();
        book.next_id += 1;
        let id = book.next_id;
        book.faults.push(Fault {
            id,
            path_prefix,
            status,
            remaining,
            probability,
            retry_after,
            delay_ms,
            after_commit,
        });
        id
    };
    Ok(json_response(StatusCode::CREATED, &json!({ "id": id })))
}

pub async fn clear_faults(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    owner(&app, &headers)?;
    let cleared = {
        let mut book = app.faults();
        let n = book.faults.len();
        book.faults.clear();
        n
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "cleared": cleared }),
    ))
}

fn stats_json(s: &Stats) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

pub async fn get_stats(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    owner(&app, &headers)?;
    let snapshot = app.stats().clone();
    Ok(json_response(StatusCode::OK, &stats_json(&snapshot)))
}

/// Resets the counters; answers with the counters as they were just before.
pub async fn reset_stats(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    owner(&app, &headers)?;
    let before = std::mem::take(&mut *app.stats());
    Ok(json_response(StatusCode::OK, &stats_json(&before)))
}

pub async fn dev_sign(State(app): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    let raw = read_body(&headers, body).await?;
    let owner = owner(&app, &headers)?;
    let v = json_body(&headers, raw).await?;
    let obj = object(&v)?;
    only_fields(obj, &["key_id", "user_id"])?;
    let key_id = req_string(obj, "key_id", 1, 200).map_err(ApiError::invalid_request)?;
    let user_id = req_string(obj, "user_id", 1, 256).map_err(ApiError::invalid_request)?;
    let key = match app.store.key_by_id(&key_id)? {
        Some(k) if k.tenant_id == owner.tenant_id => k,
        _ => return Err(ApiError::not_found(format!("no API key `{key_id}`"))),
    };
    let Some(secret) = key.hmac_secret.as_deref().filter(|_| key.kind == "public") else {
        return Err(ApiError::invalid_request(format!(
            "key_id: `{key_id}` is a {} key; only public keys have an HMAC secret",
            key.kind
        )));
    };
    let ts = util::now_secs();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "user_id": user_id,
            "user_id_sig": sign::sign_user_id(secret, &user_id, ts),
            "user_id_ts": ts,
        }),
    ))
}
