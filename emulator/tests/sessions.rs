//! Session tokens: origins, signed user ids, uid forcing, revocation, JWT tampering.

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::Duration;

const ORIGIN: &str = "https://shop.acme.com";

#[test]
fn mint_answer_and_claims() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let pk = emu.public_key(&owner, &[ORIGIN], false);
    let key = pk["key"].as_str().unwrap();

    let r = emu.mint(key, Some(ORIGIN), &json!({"user_id": "alice"}));
    let b = r.ok().clone();
    assert_eq!(b["uid"], "alice");
    assert_eq!(b["uid_kind"], "user");
    assert_eq!(b["expires_in"], 900);
    assert!(b["expires_at"].as_str().unwrap().ends_with('Z'));
    let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        b["token"].as_str().unwrap(),
        &jsonwebtoken::DecodingKey::from_secret(SESSION_SECRET.as_bytes()),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["typ"], "session");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["uid_kind"], "user");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["kid"], pk["id"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    let r = emu.mint(
        key,
        Some(ORIGIN),
        &json!({"anonymous_id": "0b6c5e2a-3c1d-4e6f-8a9b-1c2d3e4f5a6b"}),
    );
    assert_eq!(r.ok()["uid"], "0b6c5e2a-3c1d-4e6f-8a9b-1c2d3e4f5a6b");
    assert_eq!(r.body["uid_kind"], "anonymous");

    // Body checks.
    let long = "x".repeat(257);
    for body in [
        json!({}),
        json!({"user_id": "a", "anonymous_id": "b"}),
        json!({"user_id": ""}),
        json!({"user_id": long}),
        json!({"anonymous_id": 5}),
        json!({"user_id": ["a"]}),
        json!(["alice"]),
        json!({"user_id": "a", "other": 1}),
    ] {
        emu.mint(key, Some(ORIGIN), &body)
            .expect(400, "invalid_request");
    }
    emu.mint(key, Some(ORIGIN), &json!({"user_id": "é".repeat(256)}))
        .expect(200, "");
    emu.req(
        "POST",
        "/api/auth/session/",
        &[("Authorization", &apikey(key)), ("Origin", ORIGIN)],
        Some(b"not json".to_vec()),
    )
    .expect(400, "invalid_json");

    // Key checks come first, in order.
    emu.post_from(
        "/api/auth/session/",
        None,
        Some(ORIGIN),
        &json!({"user_id": "a"}),
    )
    .expect(401, "missing_credentials");
    emu.mint(
        "pk_live_00000000000000000000000000000000",
        Some(ORIGIN),
        &json!({}),
    )
    .expect(401, "invalid_api_key");
    // The body is checked before the origin, the origin before the signature.
    emu.mint(key, Some("https://evil.com"), &json!({}))
        .expect(400, "invalid_request");
    let signed = emu.public_key(&owner, &[ORIGIN], true);
    emu.mint(
        signed["key"].as_str().unwrap(),
        Some("https://evil.com"),
        &json!({"user_id": "alice"}),
    )
    .expect(403, "origin_not_allowed");
}

#[test]
fn origin_matching() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let pk = emu.public_key(
        &owner,
        &[
            "https://shop.acme.com",
            "https://*.tenant.com",
            "http://localhost:5173",
            "https://a.com",
            "https://b.com:443",
            "http://127.0.0.1:8080",
        ],
        false,
    );
    let key = pk["key"].as_str().unwrap();
    let body = json!({"anonymous_id": "anon"});
    let allowed = [
        "https://shop.acme.com",
        "https://SHOP.acme.com",
        "https://x.tenant.com",
        "https://shop-1.tenant.com",
        "http://localhost:5173",
        "https://a.com:443",
        "https://a.com",
        "https://b.com",
        "http://127.0.0.1:8080",
    ];
    for o in allowed {
        emu.mint(key, Some(o), &body).expect(200, "");
    }
    let refused = [
        "https://tenant.com",
        "https://a.b.tenant.com",
        "https://eviltenant.com",
        "https://tenant.com.evil.com",
        "https://x.tenant.com.evil.com",
        "http://x.tenant.com",
        "https://x.tenant.com:8443",
        "http://shop.acme.com",
        "https://shop.acme.com:444",
        "https://shop.acme.com.evil.com",
        "https://evilshop.acme.com",
        "http://localhost:5174",
        "http://localhost",
        "https://localhost:5173",
        "http://a.com",
        "https://a.com:8443",
        "http://127.0.0.1:8081",
        "http://127.0.0.1",
        "null",
        "",
        "https://shop.acme.com/",
        "https://*.tenant.com",
        "file://",
    ];
    for o in refused {
        emu.mint(key, Some(o), &body)
            .expect(403, "origin_not_allowed");
    }
    emu.mint(key, None, &body).expect(403, "origin_not_allowed");

    // An empty allowlist allows nothing.
    let none = emu.public_key(&owner, &[], false);
    emu.mint(none["key"].as_str().unwrap(), Some(ORIGIN), &body)
        .expect(403, "origin_not_allowed");
}

#[test]
fn signed_user_ids() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let pk = emu.public_key(&owner, &[ORIGIN], true);
    let key = pk["key"].as_str().unwrap();
    let secret = pk["hmac_secret"].as_str().unwrap();
    let mint = |body: Value| emu.mint(key, Some(ORIGIN), &body);

    let ts = now_secs();
    let r = mint(
        json!({"user_id": "alice", "user_id_sig": sign(secret, "alice", ts), "user_id_ts": ts}),
    );
    assert_eq!(r.ok()["uid"], "alice");
    // A multi-byte user id signs its UTF-8 bytes.
    let r = mint(
        json!({"user_id": "zoë 👋", "user_id_sig": sign(secret, "zoë 👋", ts), "user_id_ts": ts}),
    );
    assert_eq!(r.ok()["uid"], "zoë 👋");
    // An anonymous id needs no signature.
    mint(json!({"anonymous_id": "anon-1"})).expect(200, "");

    // Missing parts.
    mint(json!({"user_id": "alice"})).expect(403, "signature_required");
    mint(json!({"user_id": "alice", "user_id_ts": ts})).expect(403, "signature_required");
    mint(json!({"user_id": "alice", "user_id_sig": sign(secret, "alice", ts)}))
        .expect(403, "signature_required");
    mint(json!({"user_id": "alice", "user_id_sig": null, "user_id_ts": ts}))
        .expect(403, "signature_required");
    // Malformed.
    let good = sign(secret, "alice", ts);
    for (sig, t) in [
        (json!(good.to_uppercase()), json!(ts)),
        (json!(&good[..63]), json!(ts)),
        (json!(format!("{good}0")), json!(ts)),
        (json!(format!("{}g", &good[..63])), json!(ts)),
        (json!(42), json!(ts)),
        (json!(good), json!(ts.to_string())),
        (json!(good), json!(ts as f64 + 0.5)),
        (json!(good), json!(true)),
    ] {
        mint(json!({"user_id": "alice", "user_id_sig": sig, "user_id_ts": t}))
            .expect(403, "signature_malformed");
    }
    // Wrong secret, other user, other timestamp.
    mint(
        json!({"user_id": "alice", "user_id_sig": sign("hs_wrong", "alice", ts), "user_id_ts": ts}),
    )
    .expect(403, "signature_mismatch");
    mint(json!({"user_id": "alice", "user_id_sig": sign(secret, "bob", ts), "user_id_ts": ts}))
        .expect(403, "signature_mismatch");
    mint(
        json!({"user_id": "alice", "user_id_sig": sign(secret, "alice", ts - 1), "user_id_ts": ts}),
    )
    .expect(403, "signature_mismatch");
    // Stale: 301 s is too old whatever the clocks do in between.
    let old = now_secs() - 301;
    mint(json!({"user_id": "alice", "user_id_sig": sign(secret, "alice", old), "user_id_ts": old}))
        .expect(403, "signature_expired");
    // The edges need the test and the server in the same second.
    let emu_ref = &emu;
    let at = |offset: i64| {
        move |now: i64| {
            let ts = now + offset;
            emu_ref.mint(
                key,
                Some(ORIGIN),
                &json!({"user_id": "alice", "user_id_sig": sign(secret, "alice", ts), "user_id_ts": ts}),
            )
        }
    };
    within_one_second(at(61)).expect(403, "signature_from_future");
    within_one_second(at(60)).expect(200, "");
    within_one_second(at(-300)).expect(200, "");
    within_one_second(at(-301)).expect(403, "signature_expired");

    // The dev signer stands in for an app's backend.
    let r = emu.post(
        "/api/dev/sign-user-id/",
        Some(&owner),
        &json!({"key_id": pk["id"], "user_id": "carol"}),
    );
    let s = r.ok().clone();
    assert_eq!(s["user_id"], "carol");
    assert_eq!(
        s["user_id_sig"],
        sign(secret, "carol", s["user_id_ts"].as_i64().unwrap()).as_str()
    );
    mint(s).expect(200, "");
    emu.post(
        "/api/dev/sign-user-id/",
        Some(&owner),
        &json!({"key_id": "key_nope", "user_id": "carol"}),
    )
    .expect(404, "not_found");
    let sk = emu.create_key(&owner, json!({"name": "s", "kind": "secret"}));
    emu.post(
        "/api/dev/sign-user-id/",
        Some(&owner),
        &json!({"key_id": sk["id"], "user_id": "carol"}),
    )
    .expect(400, "invalid_request");

    // A key without require_signed_user_id ignores both fields.
    let plain = emu.public_key(&owner, &[ORIGIN], false);
    emu.mint(
        plain["key"].as_str().unwrap(),
        Some(ORIGIN),
        &json!({"user_id": "alice", "user_id_sig": "garbage", "user_id_ts": "x"}),
    )
    .expect(200, "");
}

#[test]
fn uid_forcing() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let pk = emu.public_key(&owner, &[ORIGIN], false);
    let key = pk["key"].as_str().unwrap();
    let user = emu.session(key, ORIGIN, &json!({"user_id": "alice"}));
    let anon = emu.session(key, ORIGIN, &json!({"anonymous_id": "anon-xyz"}));

    let mut e1 = event("force-user-1");
    e1["user_id"] = json!("mallory");
    e1["anonymous_id"] = json!("anon-kept");
    let mut e2 = event("force-user-2");
    e2["user_id"] = json!(42); // ignored: overridden
    e2.as_object_mut().unwrap().remove("anonymous_id");
    let r = emu.track(&user, &[e1, e2]);
    assert_eq!(r.ok()["accepted"], 2, "{}", r.text);

    let mut e3 = event("force-anon-1");
    e3["user_id"] = json!("mallory");
    e3["anonymous_id"] = json!("other");
    let mut e4 = event("force-anon-2");
    e4.as_object_mut().unwrap().remove("user_id");
    let r = emu.track(&anon, &[e3, e4]);
    assert_eq!(r.ok()["accepted"], 2, "{}", r.text);

    let events = emu.events(&owner);
    let by = |m: &str| {
        events
            .iter()
            .find(|e| e["message_id"] == m)
            .unwrap()
            .clone()
    };
    let e = by("force-user-1");
    assert_eq!(
        (e["user_id"].clone(), e["anonymous_id"].clone()),
        (json!("alice"), json!("anon-kept"))
    );
    assert_eq!(e["auth"], "session");
    assert_eq!(e["key_id"], pk["id"]);
    let e = by("force-user-2");
    assert_eq!(
        (e["user_id"].clone(), e["anonymous_id"].clone()),
        (json!("alice"), Value::Null)
    );
    for m in ["force-anon-1", "force-anon-2"] {
        let e = by(m);
        assert_eq!(
            (e["user_id"].clone(), e["anonymous_id"].clone()),
            (Value::Null, json!("anon-xyz"))
        );
    }
}

#[test]
fn public_key_revocation_kills_outstanding_sessions() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let pk = emu.public_key(&owner, &[ORIGIN], false);
    let key = pk["key"].as_str().unwrap();
    let token = emu.session(key, ORIGIN, &json!({"user_id": "alice"}));
    emu.track(&token, &[event(&mid())]).expect(200, "");
    emu.delete(
        &format!("/api/auth/api-keys/{}/", pk["id"].as_str().unwrap()),
        Some(&owner),
    )
    .expect(200, "");
    emu.mint(key, Some(ORIGIN), &json!({"user_id": "alice"}))
        .expect(401, "api_key_revoked");
    emu.track(&token, &[event(&mid())])
        .expect(401, "api_key_revoked");
    // Revocation wins over the kind check.
    let sk = emu.create_key(&owner, json!({"name": "s", "kind": "secret"}));
    emu.delete(
        &format!("/api/auth/api-keys/{}/", sk["id"].as_str().unwrap()),
        Some(&owner),
    )
    .expect(200, "");
    emu.mint(
        sk["key"].as_str().unwrap(),
        Some(ORIGIN),
        &json!({"user_id": "a"}),
    )
    .expect(401, "api_key_revoked");
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=n {
            out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn forge(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[test]
fn jwt_tampering() {
    let emu = Emulator::start();
    let owner = emu.owner();
    let pk = emu.public_key(&owner, &[ORIGIN], false);
    let kid = pk["id"].as_str().unwrap();
    let now = now_secs();
    let claims = json!({"typ": "session", "sub": "alice", "uid_kind": "user", "tenant": "acme",
                        "kid": kid, "iat": now, "exp": now + 600});
    let ingest = |token: &str| emu.track(&bearer(token), &[event(&mid())]);

    // A well-forged token with the real secret works (so the checks below test one thing each).
    ingest(&forge(SESSION_SECRET, &claims)).expect(200, "");
    // Another secret.
    ingest(&forge("some-other-secret", &claims)).expect(401, "invalid_token");
    // The owner's secret.
    ingest(&forge(OWNER_SECRET, &claims)).expect(401, "invalid_token");
    // alg none.
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    ingest(&format!("{header}.{payload}.")).expect(401, "invalid_token");
    ingest(&format!("{header}.{payload}")).expect(401, "invalid_token");
    // Another algorithm (HS512) with the right secret.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(SESSION_SECRET.as_bytes()),
    )
    .unwrap();
    ingest(&hs512).expect(401, "invalid_token");
    // A payload changed after signing.
    let good = forge(SESSION_SECRET, &claims);
    let parts: Vec<&str> = good.split('.').collect();
    let mut evil = claims.clone();
    evil["sub"] = json!("mallory");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(evil.to_string().as_bytes()),
        parts[2]
    );
    ingest(&tampered).expect(401, "invalid_token");
    // Wrong typ, or missing claims, with the right secret.
    let mut wrong_typ = claims.clone();
    wrong_typ["typ"] = json!("owner");
    ingest(&forge(SESSION_SECRET, &wrong_typ)).expect(401, "invalid_token");
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    ingest(&forge(SESSION_SECRET, &no_exp)).expect(401, "invalid_token");
    // An unknown key id.
    let mut other_kid = claims.clone();
    other_kid["kid"] = json!("key_unknown");
    ingest(&forge(SESSION_SECRET, &other_kid)).expect(401, "invalid_token");
    // Expired, by one second (no leeway).
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 2);
    ingest(&forge(SESSION_SECRET, &expired)).expect(401, "token_expired");
    // Garbage.
    for t in ["x", "a.b.c", "....", "eyJ.eyJ.sig"] {
        ingest(t).expect(401, "invalid_token");
    }

    // Owner tokens: the same checks on the owner side.
    let o_claims = json!({"typ": "owner", "sub": "own_x", "email": OWNER_EMAIL, "tenant": "acme",
                          "iat": now, "exp": now + 600});
    emu.get(
        "/api/auth/api-keys/",
        Some(&bearer(&forge("wrong", &o_claims))),
    )
    .expect(401, "invalid_token");
    let mut o_expired = o_claims.clone();
    o_expired["exp"] = json!(now - 5);
    emu.get(
        "/api/auth/api-keys/",
        Some(&bearer(&forge(OWNER_SECRET, &o_expired))),
    )
    .expect(401, "token_expired");
    // An owner token used as a session token, and the reverse.
    emu.track(&owner, &[event(&mid())])
        .expect(401, "invalid_token");
    let session = emu.session(
        pk["key"].as_str().unwrap(),
        ORIGIN,
        &json!({"user_id": "alice"}),
    );
    emu.get("/api/auth/api-keys/", Some(&session))
        .expect(401, "invalid_token");
    emu.post(
        "/api/dev/faults/",
        Some(&session),
        &json!({"path_prefix": "/"}),
    )
    .expect(401, "invalid_token");
}

#[test]
fn session_expiry_with_short_ttl() {
    let emu = Emulator::with(Opts::default().args(&["--session-ttl", "1"]));
    let owner = emu.owner();
    let pk = emu.public_key(&owner, &[ORIGIN], false);
    let r = emu.mint(
        pk["key"].as_str().unwrap(),
        Some(ORIGIN),
        &json!({"user_id": "alice"}),
    );
    assert_eq!(r.ok()["expires_in"], 1);
    let token = bearer(r.body["token"].as_str().unwrap());
    // exp = iat + 1 with whole seconds: past it within 2 s of the mint.
    std::thread::sleep(Duration::from_millis(2100));
    emu.track(&token, &[event(&mid())])
        .expect(401, "token_expired");
}

#[test]
fn jwt_ingest_disabled() {
    let emu = Emulator::with(Opts::default().env("ENABLE_JWT_INGEST", "0"));
    let owner = emu.owner();
    let pk = emu.public_key(&owner, &[ORIGIN], false);
    let token = emu.session(
        pk["key"].as_str().unwrap(),
        ORIGIN,
        &json!({"user_id": "alice"}),
    );
    emu.track(&token, &[event(&mid())])
        .expect(401, "jwt_ingest_disabled");
    let sk = emu.secret_key(&owner);
    emu.track(&sk, &[event(&mid())]).expect(200, "");

    let on = Emulator::with(Opts::default().env("ENABLE_JWT_INGEST", "true"));
    let owner = on.owner();
    let pk = on.public_key(&owner, &[ORIGIN], false);
    let token = on.session(
        pk["key"].as_str().unwrap(),
        ORIGIN,
        &json!({"user_id": "alice"}),
    );
    on.track(&token, &[event(&mid())]).expect(200, "");
}

#[test]
fn rotating_the_session_secret_invalidates_tokens() {
    let dir = TempDir::new("rotate");
    let db = dir.path().join("e.db");
    let db = db.to_str().unwrap();
    let (token, pk_key);
    {
        let emu = Emulator::with(Opts::default().args(&["--db", db]));
        let owner = emu.owner();
        let pk = emu.public_key(&owner, &[ORIGIN], false);
        pk_key = pk["key"].as_str().unwrap().to_string();
        token = emu.session(&pk_key, ORIGIN, &json!({"user_id": "alice"}));
    }
    {
        // Same secret: the token survives a restart.
        let emu = Emulator::with(Opts::default().args(&["--db", db]));
        emu.track(&token, &[event(&mid())]).expect(200, "");
    }
    let emu = Emulator::with(
        Opts::default()
            .args(&["--db", db])
            .env("SEGOPS_SESSION_JWT_SECRET", "rotated"),
    );
    emu.track(&token, &[event(&mid())])
        .expect(401, "invalid_token");
    let fresh = emu.session(&pk_key, ORIGIN, &json!({"user_id": "alice"}));
    emu.track(&fresh, &[event(&mid())]).expect(200, "");
}
