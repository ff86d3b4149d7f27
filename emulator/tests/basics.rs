//! Health, login, key management, the event reader, flags, static files, persistence.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

#[test]
fn health_routes_and_json_errors() {
    let emu = Emulator::start();
    let r = emu.get("/healthz", None);
    r.expect(200, "");
    assert_eq!(r.body, json!({"status": "ok"}));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(r.header("date").is_some());

    // Paths without their slash, and unknown paths, are 404 with a code.
    emu.get("/api/events", None).expect(404, "not_found");
    emu.post("/api/auth/login", None, &json!({}))
        .expect(404, "not_found");
    emu.get("/nope/", None).expect(404, "not_found");
    // A known route with another method is 405.
    emu.get("/api/auth/login/", None)
        .expect(405, "method_not_allowed");
    emu.req("PUT", "/api/auth/api-keys/", &[], Some(b"{}".to_vec()))
        .expect(405, "method_not_allowed");
    emu.req("OPTIONS", "/api/events/", &[], None)
        .expect(405, "method_not_allowed");
}

#[test]
fn owner_login() {
    let emu = Emulator::start();
    let r = emu.post(
        "/api/auth/login/",
        None,
        &json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}),
    );
    let b = r.ok();
    assert_eq!(b["expires_in"], 3600);
    assert!(b["expires_at"].as_str().unwrap().ends_with('Z'));
    let token = b["token"].as_str().unwrap();
    // The claims are the documented ones.
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(OWNER_SECRET.as_bytes()),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["typ"], "owner");
    assert_eq!(claims["email"], OWNER_EMAIL);
    assert_eq!(claims["tenant"], "acme");
    assert!(claims["sub"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    for body in [
        json!({"email": OWNER_EMAIL, "password": "wrong"}),
        json!({"email": "nobody@acme.test", "password": OWNER_PASSWORD}),
    ] {
        emu.post("/api/auth/login/", None, &body)
            .expect(401, "invalid_credentials");
    }
    emu.post("/api/auth/login/", None, &json!({"email": OWNER_EMAIL}))
        .expect(400, "invalid_request");
    emu.post("/api/auth/login/", None, &json!([1]))
        .expect(400, "invalid_request");
    emu.req("POST", "/api/auth/login/", &[], Some(b"{nope".to_vec()))
        .expect(400, "invalid_json");
}

#[test]
fn api_key_lifecycle() {
    let emu = Emulator::start();
    let owner = emu.owner();

    // Create one of each kind, with defaults.
    let sk = emu.create_key(
        &owner,
        json!({"name": "server", "tenant_slug": "acme", "kind": "secret"}),
    );
    assert!(sk["key"].as_str().unwrap().starts_with("sk_live_"));
    assert_eq!(sk["key"].as_str().unwrap().len(), 8 + 32);
    assert!(sk["key"].as_str().unwrap()[8..]
        .bytes()
        .all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(sk["scopes"], json!(["ingest", "read"]));
    assert_eq!(sk["allowed_origins"], json!([]));
    assert_eq!(sk["require_signed_user_id"], false);
    assert!(sk["id"].as_str().unwrap().starts_with("key_"));
    assert!(sk["created_at"].as_str().unwrap().ends_with('Z'));

    let pk = emu.create_key(
        &owner,
        json!({"name": "web", "tenant_slug": "acme", "kind": "public",
               "allowed_origins": ["https://shop.acme.com", "https://*.acme.com", "http://localhost:5173"],
               "scopes": ["ingest"], "require_signed_user_id": true}),
    );
    assert!(pk["key"].as_str().unwrap().starts_with("pk_live_"));
    assert!(pk["hmac_secret"].as_str().unwrap().starts_with("hs_"));
    assert_eq!(
        pk["allowed_origins"],
        json!([
            "https://shop.acme.com",
            "https://*.acme.com",
            "http://localhost:5173"
        ])
    );
    assert_eq!(pk["require_signed_user_id"], true);
    let pk_default = emu.create_key(&owner, json!({"name": "web2", "kind": "public"}));
    assert_eq!(pk_default["scopes"], json!(["ingest"]));
    assert_eq!(pk_default["allowed_origins"], json!([]));
    let mk = emu.create_key(&owner, json!({"name": "mcp", "kind": "mcp"}));
    assert!(mk["key"].as_str().unwrap().starts_with("mk_live_"));
    assert_eq!(mk["scopes"], json!(["read"]));

    // Invalid creations.
    let bad = [
        (
            json!({"name": "x", "kind": "other"}),
            400,
            "invalid_request",
        ),
        (json!({"name": "x"}), 400, "invalid_request"),
        (
            json!({"name": "x", "kind": "public", "scopes": ["read"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "kind": "public", "scopes": ["ingest", "read"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "kind": "secret", "scopes": ["write"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "kind": "secret", "allowed_origins": ["https://a.com"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "kind": "secret", "require_signed_user_id": true}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "kind": "public", "allowed_origins": "https://a.com"}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "kind": "public", "require_signed_user_id": "yes"}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "kind": "public", "tenant_slug": "other"}),
            403,
            "forbidden",
        ),
        (
            json!({"name": "x", "kind": "public", "extra": 1}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in bad {
        emu.post("/api/auth/api-keys/", Some(&owner), &body)
            .expect(status, code);
    }
    for entry in [
        "https://a.com/",
        "https://a.com/path",
        "https://a.com?x=1",
        "https://a.com#f",
        "ftp://a.com",
        "a.com",
        "https://*.com",
        "https://*",
        "https://a.*.com",
        "*",
        "null",
        "https://a.com:99999",
    ] {
        let r = emu.post(
            "/api/auth/api-keys/",
            Some(&owner),
            &json!({"name": "x", "kind": "public", "allowed_origins": ["https://ok.com", entry]}),
        );
        r.expect(400, "invalid_request");
        assert!(
            r.body["message"].as_str().unwrap().contains(entry),
            "the message names the entry: {}",
            r.text
        );
    }

    // List: never the key or the secret.
    let r = emu.get("/api/auth/api-keys/", Some(&owner));
    let keys = r.ok()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 4);
    assert!(!r.text.contains(sk["key"].as_str().unwrap()));
    assert!(!r.text.contains(pk["hmac_secret"].as_str().unwrap()));
    let listed_pk = keys.iter().find(|k| k["id"] == pk["id"]).unwrap();
    assert_eq!(
        listed_pk["prefix"].as_str().unwrap(),
        &pk["key"].as_str().unwrap()[..12]
    );
    assert_eq!(listed_pk["revoked_at"], Value::Null);
    for field in [
        "id",
        "name",
        "kind",
        "prefix",
        "allowed_origins",
        "scopes",
        "require_signed_user_id",
        "created_at",
        "revoked_at",
    ] {
        assert!(listed_pk.get(field).is_some(), "{field}");
    }
    assert!(listed_pk.get("key").is_none() && listed_pk.get("hmac_secret").is_none());

    // Patch.
    let path = format!("/api/auth/api-keys/{}/", pk["id"].as_str().unwrap());
    let r = emu.patch(
        &path,
        Some(&owner),
        &json!({"name": "web renamed", "allowed_origins": ["https://new.acme.com"],
                "require_signed_user_id": false}),
    );
    let b = r.ok();
    assert_eq!(b["name"], "web renamed");
    assert_eq!(b["allowed_origins"], json!(["https://new.acme.com"]));
    assert_eq!(b["require_signed_user_id"], false);
    assert_eq!(b["kind"], "public");
    assert!(b.get("key").is_none());
    emu.patch(&path, Some(&owner), &json!({"kind": "secret"}))
        .expect(400, "immutable_field");
    emu.patch(&path, Some(&owner), &json!({"scopes": ["read"]}))
        .expect(400, "invalid_request");
    emu.patch(
        &path,
        Some(&owner),
        &json!({"allowed_origins": ["https://a.com/x"]}),
    )
    .expect(400, "invalid_request");
    emu.patch(
        "/api/auth/api-keys/key_doesnotexist/",
        Some(&owner),
        &json!({"name": "x"}),
    )
    .expect(404, "not_found");
    let sk_path = format!("/api/auth/api-keys/{}/", sk["id"].as_str().unwrap());
    let r = emu.patch(&sk_path, Some(&owner), &json!({"scopes": ["ingest"]}));
    assert_eq!(r.ok()["scopes"], json!(["ingest"]));

    // Revoke.
    let r = emu.delete(&path, Some(&owner));
    let revoked_at = r.ok()["revoked_at"].as_str().unwrap().to_string();
    assert!(revoked_at.ends_with('Z'));
    // Again: still revoked, same time.
    let r = emu.delete(&path, Some(&owner));
    assert_eq!(r.ok()["revoked_at"], revoked_at.as_str());
    emu.delete("/api/auth/api-keys/key_doesnotexist/", Some(&owner))
        .expect(404, "not_found");
    emu.delete("/api/auth/api-keys/", Some(&owner))
        .expect(405, "method_not_allowed");
    let keys = emu.get("/api/auth/api-keys/", Some(&owner)).body["keys"].clone();
    let listed = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == pk["id"])
        .unwrap()
        .clone();
    assert_eq!(listed["revoked_at"], revoked_at.as_str());

    // Key management needs an owner token.
    emu.get("/api/auth/api-keys/", None)
        .expect(401, "missing_credentials");
}

#[test]
fn credentials_by_kind() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let pk = emu.public_key(&owner, &["https://shop.acme.com"], false);
    let pk_key = pk["key"].as_str().unwrap();
    let mk = apikey(
        emu.create_key(&owner, json!({"name": "m", "kind": "mcp"}))["key"]
            .as_str()
            .unwrap(),
    );
    let session = emu.session(
        pk_key,
        "https://shop.acme.com",
        &json!({"user_id": "alice"}),
    );
    let ev = json!({"events": [event(&mid())]});

    // mk_ is refused everywhere with key_kind_not_allowed.
    emu.post("/api/ingestion/track/", Some(&mk), &ev)
        .expect(401, "key_kind_not_allowed");
    emu.get("/api/events/", Some(&mk))
        .expect(401, "key_kind_not_allowed");
    emu.get("/api/auth/api-keys/", Some(&mk))
        .expect(401, "key_kind_not_allowed");
    emu.post_from(
        "/api/auth/session/",
        Some(&mk),
        Some("https://shop.acme.com"),
        &json!({"user_id": "a"}),
    )
    .expect(401, "key_kind_not_allowed");
    emu.get("/api/dev/stats/", Some(&mk))
        .expect(401, "key_kind_not_allowed");
    // sk_ cannot mint sessions nor manage keys.
    emu.post_from(
        "/api/auth/session/",
        Some(&sk),
        Some("https://shop.acme.com"),
        &json!({"user_id": "a"}),
    )
    .expect(401, "key_kind_not_allowed");
    emu.get("/api/auth/api-keys/", Some(&sk))
        .expect(401, "key_kind_not_allowed");
    emu.post("/api/dev/faults/", Some(&sk), &json!({"path_prefix": "/"}))
        .expect(401, "key_kind_not_allowed");
    // pk_ only mints.
    emu.post("/api/ingestion/track/", Some(&apikey(pk_key)), &ev)
        .expect(401, "key_kind_not_allowed");
    emu.get("/api/events/", Some(&apikey(pk_key)))
        .expect(403, "forbidden");
    emu.get("/api/auth/api-keys/", Some(&apikey(pk_key)))
        .expect(401, "key_kind_not_allowed");
    // A session token ingests, but never reads or manages.
    emu.post("/api/ingestion/track/", Some(&session), &ev)
        .expect(200, "");
    emu.get("/api/events/", Some(&session))
        .expect(403, "forbidden");
    emu.get("/api/auth/api-keys/", Some(&session))
        .expect(401, "invalid_token");
    emu.get("/api/dev/stats/", Some(&session))
        .expect(401, "invalid_token");
    // An owner token manages and reads, but does not ingest.
    emu.post("/api/ingestion/track/", Some(&owner), &ev)
        .expect(401, "invalid_token");
    emu.get("/api/events/", Some(&owner)).expect(200, "");
    // sk_ ingests and reads.
    emu.post(
        "/api/ingestion/track/",
        Some(&sk),
        &json!({"events": [event(&mid())]}),
    )
    .expect(200, "");
    emu.get("/api/events/", Some(&sk)).expect(200, "");

    // Scopes.
    let ingest_only = apikey(
        emu.create_key(
            &owner,
            json!({"name": "i", "kind": "secret", "scopes": ["ingest"]}),
        )["key"]
            .as_str()
            .unwrap(),
    );
    let read_only = apikey(
        emu.create_key(
            &owner,
            json!({"name": "r", "kind": "secret", "scopes": ["read"]}),
        )["key"]
            .as_str()
            .unwrap(),
    );
    emu.get("/api/events/", Some(&ingest_only))
        .expect(403, "forbidden");
    emu.post("/api/ingestion/track/", Some(&read_only), &ev)
        .expect(403, "forbidden");
    emu.get("/api/events/", Some(&read_only)).expect(200, "");

    // Header parsing.
    for h in ["", "Basic dXNlcjpwYXNz", "ApiKey", "Bearer ", "sk_live_abc"] {
        emu.req("GET", "/api/events/", &[("Authorization", h)], None)
            .expect(401, "missing_credentials");
    }
    emu.get("/api/events/", None)
        .expect(401, "missing_credentials");
    emu.get(
        "/api/events/",
        Some("ApiKey sk_live_unknownunknownunknownunknown1"),
    )
    .expect(401, "invalid_api_key");
    emu.get("/api/events/", Some("Bearer not.a.jwt"))
        .expect(401, "invalid_token");
    let sk_raw = sk.strip_prefix("ApiKey ").unwrap();
    emu.get("/api/events/", Some(&format!("apikey {sk_raw}")))
        .expect(200, "");
    emu.get("/api/events/", Some(&format!("APIKEY {sk_raw}")))
        .expect(200, "");
    let owner_raw = owner.strip_prefix("Bearer ").unwrap();
    emu.get("/api/events/", Some(&format!("bearer {owner_raw}")))
        .expect(200, "");
}

#[test]
fn secret_key_revocation() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.create_key(&owner, json!({"name": "s", "kind": "secret"}));
    let auth = apikey(sk["key"].as_str().unwrap());
    emu.track(&auth, &[event(&mid())]).expect(200, "");
    emu.delete(
        &format!("/api/auth/api-keys/{}/", sk["id"].as_str().unwrap()),
        Some(&owner),
    )
    .expect(200, "");
    emu.track(&auth, &[event(&mid())])
        .expect(401, "api_key_revoked");
    emu.get("/api/events/", Some(&auth))
        .expect(401, "api_key_revoked");
    assert_eq!(emu.events(&owner).len(), 1);
}

#[test]
fn reading_events_pages() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let ids: Vec<String> = (0..5).map(|_| mid()).collect();
    let events: Vec<Value> = ids.iter().map(|m| event(m)).collect();
    emu.track(&sk, &events).expect(200, "");

    let r = emu.get("/api/events/", Some(&owner));
    let b = r.ok();
    let all = b["events"].as_array().unwrap();
    assert_eq!(all.len(), 5);
    let got: Vec<&str> = all
        .iter()
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let e0 = &all[0];
    for field in [
        "id",
        "message_id",
        "type",
        "event_type",
        "user_id",
        "anonymous_id",
        "timestamp",
        "received_at",
        "properties",
        "traits",
        "context",
        "key_id",
        "auth",
    ] {
        assert!(e0.get(field).is_some(), "{field}");
    }
    assert_eq!(e0["auth"], "secret_key");
    assert_eq!(e0["type"], "track");
    assert_eq!(e0["timestamp"], "2026-11-24T03:01:16.123Z");
    assert_eq!(e0["properties"], json!({"cart_value": 42.5}));
    assert_eq!(e0["traits"], Value::Null);
    assert!(e0["received_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["next_after"], all[4]["id"]);

    let first_id = all[0]["id"].as_i64().unwrap();
    let r = emu.get(
        &format!("/api/events/?limit=2&after={first_id}"),
        Some(&owner),
    );
    let page = r.ok();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][0]["message_id"], ids[1].as_str());
    assert_eq!(page["next_after"], page["events"][1]["id"]);
    let last = all[4]["id"].as_i64().unwrap();
    let r = emu.get(&format!("/api/events/?after={last}"), Some(&owner));
    assert_eq!(r.ok()["events"], json!([]));
    assert_eq!(r.body["next_after"], last);

    for q in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "after=-1",
        "after=x",
        "limit=",
    ] {
        emu.get(&format!("/api/events/?{q}"), Some(&owner))
            .expect(400, "invalid_request");
    }
    emu.get("/api/events/?limit=1000", Some(&owner))
        .expect(200, "");
}

#[test]
fn help_and_bad_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--addr",
        "--db",
        "--session-ttl",
        "--static",
        "--owner-email",
        "--owner-password",
        "--dev-keys-out",
        "--dev-origin",
        "SECRET_KEY",
        "SEGOPS_SESSION_JWT_SECRET",
        "ENABLE_JWT_INGEST",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}");
    }
    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["--session-ttl", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dev_keys_out_file_and_lines() {
    let dir = TempDir::new("keys");
    let path = dir.path().join("nested").join("keys.json");
    let emu = Emulator::with(Opts::default().args(&["--dev-keys-out", path.to_str().unwrap()]));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for f in [
        "api_url",
        "owner_email",
        "owner_password",
        "tenant",
        "secret_key",
        "secret_key_id",
        "public_key",
        "public_key_id",
        "signed_public_key",
        "signed_public_key_id",
        "signed_hmac_secret",
    ] {
        assert!(doc[f].is_string(), "{f}: {doc}");
    }
    assert_eq!(doc["api_url"], emu.url.as_str());
    assert_eq!(doc["tenant"], "acme");
    assert_eq!(doc["owner_email"], OWNER_EMAIL);
    assert_eq!(doc["owner_password"], OWNER_PASSWORD);
    let own = format!("http://127.0.0.1:{}", emu.port);
    let local = format!("http://localhost:{}", emu.port);
    assert_eq!(doc["allowed_origins"], json!([own, local]));

    // The printed lines follow the listening line.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let lines = emu.stdout.lock().unwrap().clone();
        if lines.iter().any(|l| l.starts_with("dev keys written")) {
            assert!(lines[0].starts_with("listening on http://127.0.0.1:"));
            let sk = doc["secret_key"].as_str().unwrap();
            assert!(lines
                .iter()
                .any(|l| l.starts_with("secret key (servers): ") && l.contains(sk)));
            assert!(lines
                .iter()
                .any(|l| l.contains(doc["public_key"].as_str().unwrap())));
            assert!(lines
                .iter()
                .any(|l| l.contains(doc["signed_public_key"].as_str().unwrap())));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{lines:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The keys work.
    let sk = apikey(doc["secret_key"].as_str().unwrap());
    emu.track(&sk, &[event(&mid())]).expect(200, "");
    let pk = doc["public_key"].as_str().unwrap();
    emu.mint(pk, Some(&local), &json!({"user_id": "alice"}))
        .expect(200, "");
    emu.mint(pk, Some(&own), &json!({"anonymous_id": "a-1"}))
        .expect(200, "");
    let signed = doc["signed_public_key"].as_str().unwrap();
    emu.mint(signed, Some(&own), &json!({"user_id": "alice"}))
        .expect(403, "signature_required");
    let ts = now_secs();
    let sig = sign(doc["signed_hmac_secret"].as_str().unwrap(), "alice", ts);
    emu.mint(
        signed,
        Some(&own),
        &json!({"user_id": "alice", "user_id_sig": sig, "user_id_ts": ts}),
    )
    .expect(200, "");
    let owner = emu.owner();
    let keys = emu.get("/api/auth/api-keys/", Some(&owner)).body["keys"].clone();
    let signed_listed = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == doc["signed_public_key_id"])
        .unwrap()
        .clone();
    assert_eq!(signed_listed["require_signed_user_id"], true);

    // --dev-origin replaces the default origins.
    let path2 = dir.path().join("keys2.json");
    let _emu2 = Emulator::with(Opts::default().args(&[
        "--dev-keys-out",
        path2.to_str().unwrap(),
        "--dev-origin",
        "https://app.example.com",
        "--dev-origin",
        "https://*.example.org",
    ]));
    let doc2: Value = serde_json::from_str(&std::fs::read_to_string(&path2).unwrap()).unwrap();
    assert_eq!(
        doc2["allowed_origins"],
        json!(["https://app.example.com", "https://*.example.org"])
    );
}

#[test]
fn static_files() {
    let dir = TempDir::new("static");
    std::fs::write(dir.path().join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log(1)").unwrap();
    std::fs::create_dir(dir.path().join("pkg")).unwrap();
    std::fs::write(dir.path().join("pkg").join("sdk_bg.wasm"), b"\0asm").unwrap();
    std::fs::write(dir.path().join("pkg").join("index.html"), "pkg").unwrap();
    let emu = Emulator::with(Opts::default().args(&["--static", dir.path().to_str().unwrap()]));

    let r = emu.get("/", None);
    assert_eq!((r.status, r.text.as_str()), (200, "<h1>demo</h1>"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let r = emu.get("/app.js", None);
    assert_eq!((r.status, r.text.as_str()), (200, "console.log(1)"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    let r = emu.get("/pkg/sdk_bg.wasm", None);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/wasm")
    );
    assert_eq!(emu.get("/pkg/", None).text, "pkg");
    // API routes win; unknown files are the usual 404.
    emu.get("/healthz", None).expect(200, "");
    emu.get("/api/events/", None)
        .expect(401, "missing_credentials");
    emu.get("/missing.js", None).expect(404, "not_found");
    emu.get("/../Cargo.toml", None).expect(404, "not_found");
    emu.get("/%2e%2e/Cargo.toml", None).expect(404, "not_found");
    emu.get("/pkg/%2e%2e/%2e%2e/etc/passwd", None)
        .expect(404, "not_found");
}

#[test]
fn persistence_dedup_and_owner_password_across_restarts() {
    let dir = TempDir::new("persist");
    let db = dir.path().join("sub").join("emulator.db");
    let db = db.to_str().unwrap();
    let m = mid();
    let sk;
    {
        let emu = Emulator::with(Opts::default().args(&["--db", db]));
        let owner = emu.owner();
        sk = emu.secret_key(&owner);
        let r = emu.track(&sk, &[event(&m)]);
        assert_eq!(r.ok()["accepted"], 1);
        // Killed (not shut down) at the end of this block: what was answered is committed.
    }
    {
        let emu = Emulator::with(Opts::default().args(&["--db", db]));
        let r = emu.track(&sk, &[event(&m), event(&mid())]);
        assert_eq!(r.ok()["accepted"], 1);
        assert_eq!(r.body["duplicates"], 1);
        assert_eq!(emu.events(&emu.owner()).len(), 2);
    }
    {
        // A new password replaces the stored one.
        let emu =
            Emulator::with(Opts::default().args(&["--db", db, "--owner-password", "new-pass"]));
        emu.post(
            "/api/auth/login/",
            None,
            &json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}),
        )
        .expect(401, "invalid_credentials");
        emu.post(
            "/api/auth/login/",
            None,
            &json!({"email": OWNER_EMAIL, "password": "new-pass"}),
        )
        .expect(200, "");
    }
}

#[test]
fn graceful_shutdown_on_sigterm() {
    let mut emu = Emulator::start();
    emu.get("/healthz", None).expect(200, "");
    emu.stop_gracefully();
}

#[test]
fn no_input_makes_it_fail() {
    // Odd bodies and headers on every route: each gets a JSON {code, message} that is not a
    // 500, and the server stays up with what it stored.
    let emu = Emulator::start();
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let pk = emu.public_key(&owner, &["https://a.com"], true);
    let pk_auth = apikey(pk["key"].as_str().unwrap());
    emu.track(&sk, &[event(&mid())]).expect(200, "");
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"x\"".to_vec(),
        b"1e999999".to_vec(),
        b"{\"events\": {}}".to_vec(),
        b"{\"events\": [null]}".to_vec(),
        b"{\"user_id\": {\"a\": 1}}".to_vec(),
        b"{\"user_id\": \"a\", \"user_id_ts\": 1e300, \"user_id_sig\": 5}".to_vec(),
        b"{\"user_id\": \"a\", \"user_id_ts\": -9223372036854775808, \"user_id_sig\": \"00\"}"
            .to_vec(),
        b"{\"path_prefix\": \"/\", \"status\": 99999, \"count\": -1}".to_vec(),
        b"{\"key_id\": 1}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        "[".repeat(10_000).into_bytes(),
        format!(
            "{{\"events\": [{}]}}",
            "{\"type\": \"track\"},".repeat(1000) + "{}"
        )
        .into_bytes(),
    ];
    let routes = [
        ("POST", "/api/auth/login/"),
        ("POST", "/api/auth/api-keys/"),
        ("PATCH", "/api/auth/api-keys/key_x/"),
        ("POST", "/api/auth/session/"),
        ("POST", "/api/ingestion/track/"),
        ("POST", "/api/dev/faults/"),
        ("POST", "/api/dev/sign-user-id/"),
    ];
    for (method, path) in routes {
        let auth = match path {
            "/api/auth/session/" => pk_auth.clone(),
            "/api/ingestion/track/" => sk.clone(),
            _ => owner.clone(),
        };
        for body in &bodies {
            for encoding in [None, Some("gzip"), Some("br")] {
                let mut h = vec![
                    ("Authorization", auth.as_str()),
                    ("Origin", "https://a.com"),
                ];
                if let Some(e) = encoding {
                    h.push(("Content-Encoding", e));
                }
                let r = emu.req(method, path, &h, Some(body.clone()));
                assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text);
                if r.status >= 400 {
                    assert!(r.body["code"].is_string(), "{method} {path}: {}", r.text);
                }
            }
        }
    }
    emu.req(
        "GET",
        "/api/events/?limit=%ff&after=%00",
        &[("Authorization", &owner)],
        None,
    )
    .expect(400, "invalid_request");
    emu.req(
        "GET",
        "/api/auth/api-keys/%ff/",
        &[("Authorization", &owner)],
        None,
    );
    emu.req(
        "PATCH",
        "/api/auth/api-keys/%ff%00/",
        &[("Authorization", &owner)],
        Some(b"{}".to_vec()),
    )
    .expect(404, "not_found");
    emu.get("/healthz", None).expect(200, "");
    assert!(!emu.events(&owner).is_empty());
}
