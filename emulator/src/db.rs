//! SQLite storage: tenants, owners, API keys and events.

use crate::util;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenants (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    id TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL UNIQUE,
    password_salt TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    hmac_secret TEXT,
    allowed_origins TEXT NOT NULL,
    scopes TEXT NOT NULL,
    require_signed_user_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    event_type TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL,
    properties TEXT,
    traits TEXT,
    context TEXT,
    key_id TEXT NOT NULL,
    auth TEXT NOT NULL,
    UNIQUE (tenant_id, message_id)
);
";

/// PBKDF2 iterations for the owner's password (a local dev store; kept modest).
const PASSWORD_ITERATIONS: u32 = 2000;

pub struct Store {
    conn: Mutex<Connection>,
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub id: String,
    pub tenant_id: i64,
    pub tenant_slug: String,
    pub email: String,
    salt: String,
    hash: String,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: i64,
    pub tenant_slug: String,
    pub name: String,
    pub kind: String,
    pub prefix: String,
    pub hmac_secret: Option<String>,
    pub allowed_origins: Vec<String>,
    pub scopes: Vec<String>,
    pub require_signed_user_id: bool,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl ApiKey {
    /// The key as listed (never the key itself nor the HMAC secret).
    pub fn listed(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "prefix": self.prefix,
            "allowed_origins": self.allowed_origins,
            "scopes": self.scopes,
            "require_signed_user_id": self.require_signed_user_id,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// An event ready to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub message_id: String,
    pub kind: String,
    pub event_type: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: String,
    pub properties: Value,
    pub traits: Value,
    pub context: Value,
}

fn json_text(v: &Value) -> Option<String> {
    if v.is_null() {
        None
    } else {
        serde_json::to_string(v).ok()
    }
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

const KEY_COLUMNS: &str = "k.id, k.tenant_id, t.slug, k.name, k.kind, k.prefix, k.hmac_secret, \
     k.allowed_origins, k.scopes, k.require_signed_user_id, k.created_at, k.revoked_at";

fn key_from_row(r: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        tenant_slug: r.get(2)?,
        name: r.get(3)?,
        kind: r.get(4)?,
        prefix: r.get(5)?,
        hmac_secret: r.get(6)?,
        allowed_origins: json_list(&r.get::<_, String>(7)?),
        scopes: json_list(&r.get::<_, String>(8)?),
        require_signed_user_id: r.get::<_, i64>(9)? != 0,
        created_at: r.get(10)?,
        revoked_at: r.get(11)?,
    })
}

const OWNER_COLUMNS: &str = "o.id, o.tenant_id, t.slug, o.email, o.password_salt, o.password_hash";

fn owner_from_row(r: &Row) -> rusqlite::Result<Owner> {
    Ok(Owner {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        tenant_slug: r.get(2)?,
        email: r.get(3)?,
        salt: r.get(4)?,
        hash: r.get(5)?,
    })
}

fn password_hash(password: &str, salt: &str) -> String {
    util::hex(&crate::sign::pbkdf2_sha256(
        password.as_bytes(),
        salt.as_bytes(),
        PASSWORD_ITERATIONS,
    ))
}

/// Constant-time comparison of two byte strings of public length.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Owner {
    pub fn password_matches(&self, password: &str) -> bool {
        ct_eq(
            password_hash(password, &self.salt).as_bytes(),
            self.hash.as_bytes(),
        )
    }
}

impl Store {
    /// Opens (and creates) the database; `:memory:` keeps it in memory.
    pub fn open(path: &str) -> Result<Store, String> {
        let conn = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
            }
            Connection::open(path)
        }
        .map_err(|e| format!("cannot open database {path}: {e}"))?;
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            if path != ":memory:" {
                conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
                conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
            }
            conn.execute_batch("PRAGMA foreign_keys=ON;")?;
            conn.execute_batch(SCHEMA)
        };
        setup().map_err(|e| format!("cannot set up database {path}: {e}"))?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant's id, creating the tenant when needed.
    pub fn ensure_tenant(&self, slug: &str) -> rusqlite::Result<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO tenants (slug, created_at) VALUES (?1, ?2)",
            params![slug, util::iso_now()],
        )?;
        conn.query_row("SELECT id FROM tenants WHERE slug = ?1", [slug], |r| {
            r.get(0)
        })
    }

    /// Creates the owner, or sets its password if it exists with another one.
    pub fn upsert_owner(
        &self,
        tenant_id: i64,
        email: &str,
        password: &str,
    ) -> rusqlite::Result<()> {
        if let Some(o) = self.owner_by_email(email)? {
            if o.password_matches(password) {
                return Ok(());
            }
            let salt = util::random_hex(16);
            self.lock().execute(
                "UPDATE owners SET password_salt = ?1, password_hash = ?2 WHERE id = ?3",
                params![salt, password_hash(password, &salt), o.id],
            )?;
            return Ok(());
        }
        let salt = util::random_hex(16);
        self.lock().execute(
            "INSERT INTO owners (id, tenant_id, email, password_salt, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                format!("own_{}", util::random_hex(8)),
                tenant_id,
                email.to_lowercase(),
                salt,
                password_hash(password, &salt),
                util::iso_now()
            ],
        )?;
        Ok(())
    }

    pub fn owner_by_email(&self, email: &str) -> rusqlite::Result<Option<Owner>> {
        self.lock()
            .query_row(
                &format!(
                    "SELECT {OWNER_COLUMNS} FROM owners o JOIN tenants t ON t.id = o.tenant_id
                     WHERE o.email = ?1"
                ),
                [email.to_lowercase()],
                owner_from_row,
            )
            .optional()
    }

    pub fn owner_by_id(&self, id: &str) -> rusqlite::Result<Option<Owner>> {
        self.lock()
            .query_row(
                &format!(
                    "SELECT {OWNER_COLUMNS} FROM owners o JOIN tenants t ON t.id = o.tenant_id
                     WHERE o.id = ?1"
                ),
                [id],
                owner_from_row,
            )
            .optional()
    }

    pub fn insert_key(&self, key: &ApiKey, key_hash: &str) -> rusqlite::Result<()> {
        self.lock().execute(
            "INSERT INTO api_keys (id, tenant_id, name, kind, prefix, key_hash, hmac_secret,
                 allowed_origins, scopes, require_signed_user_id, created_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                key.id,
                key.tenant_id,
                key.name,
                key.kind,
                key.prefix,
                key_hash,
                key.hmac_secret,
                json!(key.allowed_origins).to_string(),
                json!(key.scopes).to_string(),
                key.require_signed_user_id as i64,
                key.created_at,
                key.revoked_at
            ],
        )?;
        Ok(())
    }

    pub fn key_by_hash(&self, key_hash: &str) -> rusqlite::Result<Option<ApiKey>> {
        self.lock()
            .query_row(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
                     WHERE k.key_hash = ?1"
                ),
                [key_hash],
                key_from_row,
            )
            .optional()
    }

    pub fn key_by_id(&self, id: &str) -> rusqlite::Result<Option<ApiKey>> {
        self.lock()
            .query_row(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
                     WHERE k.id = ?1"
                ),
                [id],
                key_from_row,
            )
            .optional()
    }

    pub fn list_keys(&self, tenant_id: i64) -> rusqlite::Result<Vec<ApiKey>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
             WHERE k.tenant_id = ?1 ORDER BY k.created_at, k.rowid"
        ))?;
        let rows = stmt.query_map([tenant_id], key_from_row)?;
        rows.collect()
    }

    /// Writes the changeable fields of a key.
    pub fn update_key(&self, key: &ApiKey) -> rusqlite::Result<()> {
        self.lock().execute(
            "UPDATE api_keys SET name = ?1, allowed_origins = ?2, scopes = ?3,
                 require_signed_user_id = ?4, revoked_at = ?5
             WHERE id = ?6",
            params![
                key.name,
                json!(key.allowed_origins).to_string(),
                json!(key.scopes).to_string(),
                key.require_signed_user_id as i64,
                key.revoked_at,
                key.id
            ],
        )?;
        Ok(())
    }

    /// Stores a batch in one transaction; returns (stored, duplicates) per event, in order.
    /// The `UNIQUE (tenant_id, message_id)` constraint decides what is a duplicate.
    pub fn insert_events(
        &self,
        tenant_id: i64,
        key_id: &str,
        auth: &str,
        events: &[NewEvent],
    ) -> rusqlite::Result<Vec<bool>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let received_at = util::iso_now();
        let mut stored = Vec::with_capacity(events.len());
        {
            let mut stmt = tx.prepare(
                "INSERT INTO events (tenant_id, message_id, type, event_type, user_id,
                     anonymous_id, timestamp, received_at, properties, traits, context, key_id,
                     auth)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (tenant_id, message_id) DO NOTHING",
            )?;
            for e in events {
                let n = stmt.execute(params![
                    tenant_id,
                    e.message_id,
                    e.kind,
                    e.event_type,
                    e.user_id,
                    e.anonymous_id,
                    e.timestamp,
                    received_at,
                    json_text(&e.properties),
                    json_text(&e.traits),
                    json_text(&e.context),
                    key_id,
                    auth
                ])?;
                stored.push(n == 1);
            }
        }
        tx.commit()?;
        Ok(stored)
    }

    /// Events of a tenant with `id > after`, oldest first.
    pub fn read_events(
        &self,
        tenant_id: i64,
        after: i64,
        limit: i64,
    ) -> rusqlite::Result<Vec<Value>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, message_id, type, event_type, user_id, anonymous_id, timestamp,
                 received_at, properties, traits, context, key_id, auth
             FROM events WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let parse = |s: Option<String>| -> Value {
            s.and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null)
        };
        let rows = stmt.query_map(params![tenant_id, after, limit], |r| {
            Ok(json!({
                "id": r.get::<_, i64>(0)?,
                "message_id": r.get::<_, String>(1)?,
                "type": r.get::<_, String>(2)?,
                "event_type": r.get::<_, String>(3)?,
                "user_id": r.get::<_, Option<String>>(4)?,
                "anonymous_id": r.get::<_, Option<String>>(5)?,
                "timestamp": r.get::<_, String>(6)?,
                "received_at": r.get::<_, String>(7)?,
                "properties": parse(r.get(8)?),
                "traits": parse(r.get(9)?),
                "context": parse(r.get(10)?),
                "key_id": r.get::<_, String>(11)?,
                "auth": r.get::<_, String>(12)?,
            }))
        })?;
        rows.collect()
    }
}
