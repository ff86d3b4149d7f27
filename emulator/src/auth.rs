//! Credentials: the `Authorization` header, owner tokens and session tokens.

use crate::error::ApiError;
use axum::http::{header, HeaderMap};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Lifetime of an owner token.
pub const OWNER_TTL_SECS: i64 = 3600;

/// What the `Authorization` header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    ApiKey(String),
    Bearer(String),
}

/// Parses `ApiKey <key>` or `Bearer <token>` (scheme names case-insensitive).
pub fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    let missing = |m: &str| ApiError::unauthorized("missing_credentials", m.to_string());
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(missing("no Authorization header"));
    };
    let Ok(value) = value.to_str() else {
        return Err(missing("the Authorization header is not readable text"));
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    let rest = rest.trim();
    if rest.is_empty() || rest.contains(|c: char| c.is_whitespace()) {
        return Err(missing(
            "the Authorization header must be `ApiKey <key>` or `Bearer <token>`",
        ));
    }
    if scheme.eq_ignore_ascii_case("apikey") {
        Ok(Credential::ApiKey(rest.to_string()))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credential::Bearer(rest.to_string()))
    } else {
        Err(missing(
            "unknown Authorization scheme; use `ApiKey <key>` or `Bearer <token>`",
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnerClaims {
    pub typ: String,
    pub sub: String,
    pub email: String,
    pub tenant: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    pub typ: String,
    pub sub: String,
    pub uid_kind: String,
    pub tenant: String,
    pub kid: String,
    pub iat: i64,
    pub exp: i64,
}

/// The two signing secrets.
pub struct Signers {
    owner_enc: EncodingKey,
    owner_dec: DecodingKey,
    session_enc: EncodingKey,
    session_dec: DecodingKey,
}

fn decode<T: DeserializeOwned>(key: &DecodingKey, token: &str) -> Result<T, ApiError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    match jsonwebtoken::decode::<T>(token, key, &v) {
        Ok(data) => Ok(data.claims),
        Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(ApiError::unauthorized(
            "token_expired",
            "the token has expired",
        )),
        Err(e) => Err(ApiError::unauthorized(
            "invalid_token",
            format!("the token is not valid: {e}"),
        )),
    }
}

impl Signers {
    pub fn new(owner_secret: &str, session_secret: &str) -> Self {
        Signers {
            owner_enc: EncodingKey::from_secret(owner_secret.as_bytes()),
            owner_dec: DecodingKey::from_secret(owner_secret.as_bytes()),
            session_enc: EncodingKey::from_secret(session_secret.as_bytes()),
            session_dec: DecodingKey::from_secret(session_secret.as_bytes()),
        }
    }

    pub fn owner_token(&self, claims: &OwnerClaims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.owner_enc)
            .map_err(|e| ApiError::internal(format!("signing the owner token: {e}")))
    }

    pub fn session_token(&self, claims: &SessionClaims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.session_enc)
            .map_err(|e| ApiError::internal(format!("signing the session token: {e}")))
    }

    /// Verifies an owner token (signature, algorithm, `exp`, `typ`).
    pub fn verify_owner(&self, token: &str) -> Result<OwnerClaims, ApiError> {
        let c: OwnerClaims = decode(&self.owner_dec, token)?;
        if c.typ != "owner" {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "not an owner token",
            ));
        }
        Ok(c)
    }

    /// Verifies a session token (signature, algorithm, `exp`, `typ`).
    pub fn verify_session(&self, token: &str) -> Result<SessionClaims, ApiError> {
        let c: SessionClaims = decode(&self.session_dec, token)?;
        if c.typ != "session" || !matches!(c.uid_kind.as_str(), "user" | "anonymous") {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "not a session token",
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(v: &str) -> Result<Credential, &'static str> {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        credential(&h).map_err(|e| e.code)
    }

    #[test]
    fn authorization_header() {
        assert_eq!(
            parse("ApiKey sk_live_x"),
            Ok(Credential::ApiKey("sk_live_x".into()))
        );
        assert_eq!(
            parse("apikey  sk_live_x "),
            Ok(Credential::ApiKey("sk_live_x".into()))
        );
        assert_eq!(
            parse("BEARER abc.def.ghi"),
            Ok(Credential::Bearer("abc.def.ghi".into()))
        );
        assert_eq!(parse("Basic Zm9vOmJhcg=="), Err("missing_credentials"));
        assert_eq!(parse("Bearer"), Err("missing_credentials"));
        assert_eq!(parse("Bearer a b"), Err("missing_credentials"));
        assert_eq!(parse(""), Err("missing_credentials"));
        assert_eq!(
            credential(&HeaderMap::new()).map_err(|e| e.code),
            Err("missing_credentials")
        );
    }

    #[test]
    fn tokens_round_trip_and_are_typed() {
        let s = Signers::new("owner-secret", "session-secret");
        let now = crate::util::now_secs();
        let owner = OwnerClaims {
            typ: "owner".into(),
            sub: "own_1".into(),
            email: "o@x".into(),
            tenant: "acme".into(),
            iat: now,
            exp: now + 60,
        };
        let t = s.owner_token(&owner).unwrap();
        assert_eq!(s.verify_owner(&t).unwrap().sub, "own_1");
        // An owner token is not a session token (other secret, other claims).
        assert_eq!(s.verify_session(&t).unwrap_err().code, "invalid_token");
        let expired = OwnerClaims {
            exp: now - 1,
            ..owner.clone()
        };
        let t = s.owner_token(&expired).unwrap();
        assert_eq!(s.verify_owner(&t).unwrap_err().code, "token_expired");
        // Same secret for both, wrong typ.
        let same = Signers::new("k", "k");
        let sess = SessionClaims {
            typ: "session".into(),
            sub: "alice".into(),
            uid_kind: "user".into(),
            tenant: "acme".into(),
            kid: "key_1".into(),
            iat: now,
            exp: now + 60,
        };
        let t = same.session_token(&sess).unwrap();
        assert!(same.verify_session(&t).is_ok());
        assert_eq!(same.verify_owner(&t).unwrap_err().code, "invalid_token");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_tokens_never_panic_or_verify(token in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}",
            "eyJ[A-Za-z0-9_=-]{0,60}\\.eyJ[A-Za-z0-9_=-]{0,60}\\.[A-Za-z0-9_-]{0,43}",
        ]) {
            let s = Signers::new("owner-secret", "session-secret");
            prop_assert!(s.verify_owner(&token).is_err());
            prop_assert!(s.verify_session(&token).is_err());
        }
    }
}
