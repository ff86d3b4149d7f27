//! Signed user ids: `lowercase_hex(HMAC_SHA256(hmac_secret, "{user_id_ts}.{user_id}"))`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// HMAC-SHA256 of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = mac(key);
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// The signature of a user id at a Unix time, as lowercase hex.
pub fn sign_user_id(hmac_secret: &str, user_id: &str, ts: i64) -> String {
    crate::util::hex(&hmac_sha256(
        hmac_secret.as_bytes(),
        format!("{ts}.{user_id}").as_bytes(),
    ))
}

/// Whether `sig` has the form of a signature: 64 lowercase hex characters.
pub fn is_well_formed(sig: &str) -> bool {
    sig.len() == 64 && sig.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a signature in constant time; a malformed one is simply wrong.
pub fn verify_user_id(hmac_secret: &str, user_id: &str, ts: i64, sig: &str) -> bool {
    if !is_well_formed(sig) {
        return false;
    }
    let Some(bytes) = crate::util::unhex_lower(sig) else {
        return false;
    };
    let mut m = mac(hmac_secret.as_bytes());
    m.update(format!("{ts}.{user_id}").as_bytes());
    m.verify_slice(&bytes).is_ok()
}

/// PBKDF2-HMAC-SHA256 with one output block (32 bytes), for the owner's password.
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let prf = mac(password);
    let mut first = prf.clone();
    first.update(salt);
    first.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = first.finalize().into_bytes().into();
    let mut t = u;
    for _ in 1..iterations {
        let mut m = prf.clone();
        m.update(&u);
        u = m.finalize().into_bytes().into();
        for (a, b) in t.iter_mut().zip(u.iter()) {
            *a ^= b;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::hex;

    #[test]
    fn shared_vectors() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/vectors/sign_user_id.json"))
                .expect("vectors parse");
        let vectors = doc["vectors"].as_array().expect("vectors array");
        assert!(vectors.len() >= 3);
        for v in vectors {
            let secret = v["hmac_secret"].as_str().unwrap();
            let user = v["user_id"].as_str().unwrap();
            let ts = v["user_id_ts"].as_i64().unwrap();
            let sig = v["user_id_sig"].as_str().unwrap();
            assert_eq!(sign_user_id(secret, user, ts), sig, "{user}");
            assert!(verify_user_id(secret, user, ts, sig));
            assert!(!verify_user_id("other", user, ts, sig));
            assert!(!verify_user_id(secret, "someone-else", ts, sig));
            assert!(!verify_user_id(secret, user, ts + 1, sig));
            assert!(!verify_user_id(secret, user, ts, &sig.to_uppercase()));
            assert!(!verify_user_id(secret, user, ts, &sig[..63]));
        }
    }

    fn rfc4231(key: &[u8], data: &[u8]) -> String {
        hex(&hmac_sha256(key, data))
    }

    #[test]
    fn rfc4231_hmac_sha256() {
        // Test cases 1-4, 6 and 7 of RFC 4231 (case 5 is a truncated output).
        assert_eq!(
            rfc4231(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            rfc4231(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            rfc4231(&[0xaa; 20], &[0xdd; 50]),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        );
        let key4: Vec<u8> = (1u8..=25).collect();
        assert_eq!(
            rfc4231(&key4, &[0xcd; 50]),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        );
        assert_eq!(
            rfc4231(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            rfc4231(
                &[0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."
            ),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        );
    }

    #[test]
    fn pbkdf2_rfc7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1 (first 32 bytes).
        assert_eq!(
            hex(&pbkdf2_sha256(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        // And a multi-iteration one: P="password", S="salt", c=2.
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 2)),
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn verify_never_panics(secret in any::<String>(), uid in any::<String>(), ts in any::<i64>(), sig in prop_oneof![any::<String>(), "[0-9a-fA-F]{62,66}"]) {
            let _ = verify_user_id(&secret, &uid, ts, &sig);
        }

        #[test]
        fn a_signature_verifies_iff_it_is_the_hmac(
            secret in "\\PC{0,12}",
            uid in "\\PC{0,12}",
            ts in any::<i64>(),
            flip in proptest::option::of((0usize..64, 0u8..16)),
        ) {
            let good = sign_user_id(&secret, &uid, ts);
            prop_assert!(is_well_formed(&good));
            prop_assert!(verify_user_id(&secret, &uid, ts, &good));
            prop_assert!(!verify_user_id(&secret, &uid, ts, &good.to_ascii_uppercase()) || !good.bytes().any(|c| c.is_ascii_alphabetic()));
            let mut sig = good.clone().into_bytes();
            if let Some((at, digit)) = flip {
                sig[at] = b"0123456789abcdef"[usize::from(digit)];
            }
            let sig = String::from_utf8(sig).unwrap();
            prop_assert_eq!(verify_user_id(&secret, &uid, ts, &sig), sig == good);
            prop_assert!(!verify_user_id(&secret, &uid, ts.wrapping_add(1), &good));
        }
    }
}
