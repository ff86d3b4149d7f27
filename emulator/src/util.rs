//! Small helpers: clocks, ISO-8601 formatting, RFC 3339 validation, randomness, hex.

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Whole seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

/// `2026-11-24T03:01:16.123Z` for a number of milliseconds since the epoch.
pub fn iso_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        y,
        m,
        d,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        millis
    )
}

/// The current time as an ISO-8601 UTC string with milliseconds.
pub fn iso_now() -> String {
    iso_ms(now_ms())
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: u32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Whether `s` is an RFC 3339 date-time (`2026-11-24T03:01:16.123Z`, `...+01:00`).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let check = || -> Option<()> {
        let year = digits(b, 0, 4)?;
        (b.get(4) == Some(&b'-')).then_some(())?;
        let month = digits(b, 5, 2)?;
        (b.get(7) == Some(&b'-')).then_some(())?;
        let day = digits(b, 8, 2)?;
        matches!(b.get(10), Some(b'T' | b't' | b' ')).then_some(())?;
        let hour = digits(b, 11, 2)?;
        (b.get(13) == Some(&b':')).then_some(())?;
        let minute = digits(b, 14, 2)?;
        (b.get(16) == Some(&b':')).then_some(())?;
        let second = digits(b, 17, 2)?;
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i > start).then_some(())?;
        }
        match b.get(i) {
            Some(b'Z' | b'z') => (i + 1 == b.len()).then_some(())?,
            Some(b'+' | b'-') => {
                (b.len() == i + 6).then_some(())?;
                let oh = digits(b, i + 1, 2)?;
                (b.get(i + 3) == Some(&b':')).then_some(())?;
                let om = digits(b, i + 4, 2)?;
                (oh <= 23 && om <= 59).then_some(())?;
            }
            _ => return None,
        }
        let ok = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour <= 23
            && minute <= 59
            && second <= 60;
        ok.then_some(())
    };
    check().is_some()
}

static FALLBACK_STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// Cryptographically random bytes from the OS (with a non-panicking fallback).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    if getrandom::getrandom(&mut buf).is_err() {
        // The OS source failed, which it does not in practice; still, never panic.
        let mut x = FALLBACK_STATE.fetch_add(now_ms() as u64 | 1, Ordering::Relaxed);
        for byte in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = x as u8;
        }
    }
    buf
}

/// A uniformly random f64 in [0, 1).
pub fn random_f64() -> f64 {
    let b = random_bytes(8);
    let mut a = [0u8; 8];
    a.copy_from_slice(&b);
    (u64::from_le_bytes(a) >> 11) as f64 / (1u64 << 53) as f64
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random characters of `[A-Za-z0-9]`, uniformly distributed.
pub fn random_alnum(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes(n * 2) {
            // 248 = 4 * 62: reject the tail to stay uniform.
            if b < 248 && out.len() < n {
                out.push(ALNUM[usize::from(b) % 62] as char);
            }
        }
    }
    out
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    hex(&random_bytes(n))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[usize::from(b >> 4)] as char);
        s.push(H[usize::from(b & 15)] as char);
    }
    s
}

/// Decodes lowercase hex; `None` for anything else.
pub fn unhex_lower(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    let val = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    b.chunks(2)
        .map(|p| Some(val(p[0])? << 4 | val(p[1])?))
        .collect()
}

/// Lowercase hex SHA-256 of a string.
pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_formatting() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_795_489_276_123), "2026-11-24T03:01:16.123Z");
        assert_eq!(iso_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rfc3339() {
        for ok in [
            "2026-11-24T03:01:16.123Z",
            "2026-11-24T03:01:16Z",
            "2026-11-24t03:01:16z",
            "2026-11-24T03:01:16+01:00",
            "2024-02-29T23:59:60.000000001-12:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T03:01Z",
            "2026-13-24T03:01:16Z",
            "2023-02-29T03:01:16Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T03:01:16.Z",
            "2026-11-24T03:01:16",
            "2026-11-24T03:01:16+0100",
            "2026-11-24T03:01:16Zjunk",
            "２026-11-24T03:01:16Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn alnum_and_hex() {
        let s = random_alnum(32);
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(unhex_lower("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex_lower("0F"), None);
        assert_eq!(unhex_lower("0"), None);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        let f = random_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
