//! `signUserId({ secret, userId, now? })` for the app's server (the Node build only, feature
//! `server`, so that no browser bundle offers to handle an HMAC secret).

#[allow(unused_imports)]
use crate::prelude::*;

use wasm_bindgen::prelude::*;

use super::error_text;
use crate::core::client::input::{
    arg_object, read_fields, scalar, Arg, Spec, ID, REQUIRED, TEXT, TIME,
};
use crate::core::error::Error;
use crate::core::json::{members, write_str, Value};
use crate::core::time::parse_rfc3339;

/// What `signUserId` takes.
const SIGN: Spec = &[("secret", TEXT), ("userId", ID | REQUIRED), ("now", TIME)];

/// Signs a user id: `{"v": <the loader's record of the arguments>, "t": <now, epoch ms>}` ->
/// `{"userId","userIdSig","userIdTs"}` as JSON, or the error.
#[wasm_bindgen]
pub fn sign(text: &str) -> String {
    match sign_inner(text) {
        Ok(s) => s,
        Err(e) => error_text(&e),
    }
}

fn sign_inner(text: &str) -> Result<String, Error> {
    let doc = members(text).unwrap_or_default();
    let get = |k: &str| doc.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
    let arg = Arg::of(get("v"));
    let args = arg_object(&arg, "signUserId", true, "{ secret, userId, now? }")?
        .ok_or_else(|| Error::argument("signUserId", "expected { secret, userId, now? }"))?;
    let f = read_fields(&args, "signUserId.", SIGN)?;
    let [secret, user_id, now] = <[Option<String>; 3]>::try_from(f)
        .map_err(|_| Error::argument("signUserId", "unreadable"))?;
    let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::argument(
            "signUserId.secret",
            "is required: the public key's hmac_secret",
        )
    })?;
    let user_id = user_id.unwrap_or_default();
    // `now` is read as RFC 3339 text (a Date arrives as its ISO string); default: the call's time.
    let now_ms = match now {
        Some(t) => parse_rfc3339(&t).unwrap_or(f64::NAN),
        None => get("t")
            .and_then(scalar)
            .and_then(|v| match v {
                Value::Number(n) => Some(n.approx_f64()),
                _ => None,
            })
            .unwrap_or(0.0),
    };
    if !now_ms.is_finite() || now_ms.abs() > 8.64e15 {
        return Err(Error::argument("signUserId.now", "expected a valid time"));
    }
    let ts = crate::core::num::floor(now_ms / 1000.0) as i64;
    let sig = crate::core::sign::sign_user_id(&secret, &user_id, ts);
    let mut out = String::from("{\"userId\":");
    write_str(&mut out, &user_id);
    out.push_str(",\"userIdSig\":");
    write_str(&mut out, &sig);
    out.push_str(",\"userIdTs\":");
    crate::core::num::push_int(&mut out, ts);
    out.push('}');
    Ok(out)
}
