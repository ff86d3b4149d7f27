//! Civil time from epoch milliseconds, and the date formats the SDK reads. Never reads the
//! clock (on wasm32 `SystemTime::now()` panics): the current time is always a parameter.
//!
//! Date arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>), proleptic Gregorian calendar.

#[allow(unused_imports)]
use crate::prelude::*;
const MS_PER_DAY: i64 = 86_400_000;
/// 0000-01-01T00:00:00.000Z.
const MIN_MS: i64 = days_from_civil(0, 1, 1) * MS_PER_DAY;
/// 9999-12-31T23:59:59.999Z.
const MAX_MS: i64 = days_from_civil(10_000, 1, 1) * MS_PER_DAY - 1;

/// Days since 1970-01-01 of a proleptic Gregorian date (`m` 1-12, `d` 1-31).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March is 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month 1-12, day 1-31) of a day count since 1970-01-01.
const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March is 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whole milliseconds, floored, clamped to years 0000-9999; NaN gives the epoch.
fn clamp_ms(epoch_ms: f64) -> i64 {
    if epoch_ms.is_nan() {
        return 0;
    }
    let ms = crate::core::num::floor(epoch_ms);
    if ms <= MIN_MS as f64 {
        MIN_MS
    } else if ms >= MAX_MS as f64 {
        MAX_MS
    } else {
        ms as i64
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, always with milliseconds (truncated toward the past).
///
/// Instants outside years 0000-9999 (and infinities) clamp to the nearest end of that range;
/// NaN gives `1970-01-01T00:00:00.000Z`.
pub fn format_iso8601(epoch_ms: f64) -> String {
    let ms = clamp_ms(epoch_ms);
    let (y, mo, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let mut out = String::with_capacity(24);
    push_digits(&mut out, y, 4);
    out.push('-');
    push_digits(&mut out, mo, 2);
    out.push('-');
    push_digits(&mut out, d, 2);
    out.push('T');
    push_digits(&mut out, in_day / 3_600_000, 2);
    out.push(':');
    push_digits(&mut out, in_day / 60_000 % 60, 2);
    out.push(':');
    push_digits(&mut out, in_day / 1000 % 60, 2);
    out.push('.');
    push_digits(&mut out, in_day % 1000, 3);
    out.push('Z');
    out
}

/// The last `width` decimal digits of non-negative `n`, zero-padded.
fn push_digits(out: &mut String, n: i64, width: u32) {
    for place in (0..width).rev() {
        let digit = n / 10_i64.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// The value of exactly `len` ASCII digits at `at` (`len` <= 9).
fn num(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let digits = b.get(at..at.checked_add(len)?)?;
    let mut n = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

fn byte_is(b: &[u8], at: usize, expected: u8) -> bool {
    b.get(at) == Some(&expected)
}

/// Epoch milliseconds of a validated civil date-time (second 60, a leap second, is accepted
/// and counts as the first second of the next minute).
fn to_epoch_ms(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let valid = (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..=60).contains(&s);
    valid.then(|| days_from_civil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000)
}

/// `HH:MM:SS` at `at`.
fn time_of_day(b: &[u8], at: usize) -> Option<(i64, i64, i64)> {
    if !byte_is(b, at + 2, b':') || !byte_is(b, at + 5, b':') {
        return None;
    }
    Some((num(b, at, 2)?, num(b, at + 3, 2)?, num(b, at + 6, 2)?))
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The month (1-12) named by the 3 bytes at `at`.
fn month(b: &[u8], at: usize) -> Option<i64> {
    let name = b.get(at..at + 3)?;
    let index = MONTH_NAMES.iter().position(|m| m.as_bytes() == name)?;
    Some(index as i64 + 1)
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) to epoch milliseconds: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), or the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`) formats. Names are case-sensitive, as in the
/// grammar; the day name must be a valid one but is not checked against the date. Surrounding
/// spaces and tabs are ignored.
///
/// An RFC 850 two-digit year is read as 1970-2069 (no clock here; [`parse_retry_after`],
/// which knows the time, applies the RFC's 50-years rule instead).
pub fn parse_http_date(s: &str) -> Option<f64> {
    http_date(s, 2069)
}

/// `latest_year` is the last year an RFC 850 two-digit year may denote; the year taken is the
/// one in `(latest_year - 100, latest_year]` with the same last two digits.
fn http_date(s: &str, latest_year: i64) -> Option<f64> {
    let b = s.trim_matches([' ', '\t']).as_bytes();
    let (y, mo, d, (h, mi, sec)) = if byte_is(b, 3, b',') {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        let valid = b.len() == 29
            && DAY_NAMES.iter().any(|n| b.get(..3) == Some(n.as_bytes()))
            && byte_is(b, 4, b' ')
            && byte_is(b, 7, b' ')
            && byte_is(b, 11, b' ')
            && byte_is(b, 16, b' ')
            && b.get(25..) == Some(b" GMT");
        if !valid {
            return None;
        }
        (
            num(b, 12, 4)?,
            month(b, 8)?,
            num(b, 5, 2)?,
            time_of_day(b, 17)?,
        )
    } else if byte_is(b, 3, b' ') {
        // asctime: "Sun Nov  6 08:49:37 1994" (the day is 2 digits or a space and 1 digit)
        let valid = b.len() == 24
            && DAY_NAMES.iter().any(|n| b.get(..3) == Some(n.as_bytes()))
            && byte_is(b, 7, b' ')
            && byte_is(b, 10, b' ')
            && byte_is(b, 19, b' ');
        if !valid {
            return None;
        }
        let day = if byte_is(b, 8, b' ') {
            num(b, 9, 1)?
        } else {
            num(b, 8, 2)?
        };
        (num(b, 20, 4)?, month(b, 4)?, day, time_of_day(b, 11)?)
    } else {
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        let comma = b.iter().position(|&c| c == b',')?;
        let name = b.get(..comma)?;
        let rest = b.get(comma..)?;
        let valid = LONG_DAY_NAMES.iter().any(|n| n.as_bytes() == name)
            && rest.len() == 24
            && byte_is(rest, 1, b' ')
            && byte_is(rest, 4, b'-')
            && byte_is(rest, 8, b'-')
            && byte_is(rest, 11, b' ')
            && rest.get(20..) == Some(b" GMT");
        if !valid {
            return None;
        }
        let yy = num(rest, 9, 2)?;
        let year = latest_year - (latest_year - yy).rem_euclid(100);
        (
            year,
            month(rest, 5)?,
            num(rest, 2, 2)?,
            time_of_day(rest, 12)?,
        )
    };
    to_epoch_ms(y, mo, d, h, mi, sec).map(|ms| ms as f64)
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3), delta-seconds (`120`) or an HTTP-date, to
/// the delay in milliseconds from `now_ms`. A date in the past gives 0; never negative.
/// Anything else (`-1`, `1.5`, empty) is None, as is a date when `now_ms` is not finite.
/// Huge delta-seconds saturate rather than fail; callers should cap the delay.
pub fn parse_retry_after(value: &str, now_ms: f64) -> Option<f64> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) {
        let seconds = value.bytes().fold(0u64, |n, c| {
            n.saturating_mul(10).saturating_add(u64::from(c - b'0'))
        });
        return Some(seconds as f64 * 1000.0);
    }
    if !now_ms.is_finite() {
        return None;
    }
    // RFC 9110: a two-digit year "more than 50 years in the future" is in the past century.
    let (now_year, _, _) = civil_from_days(clamp_ms(now_ms).div_euclid(MS_PER_DAY));
    let date = http_date(value, now_year + 50)?;
    let delay = date - now_ms;
    Some(if delay > 0.0 { delay } else { 0.0 })
}

/// Parses an RFC 3339 date-time (`2026-11-24T03:01:16Z`, `2026-11-24T04:01:16.5+01:00`) to
/// epoch milliseconds. The fraction may have any number of digits; it is truncated to
/// milliseconds. `t`, `z` and a space separator are accepted; `-00:00` means UTC.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let valid =
        byte_is(b, 4, b'-') && byte_is(b, 7, b'-') && matches!(b.get(10), Some(b'T' | b't' | b' '));
    if !valid {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    let (h, mi, sec) = time_of_day(b, 11)?;
    let mut at = 19;
    let mut ms = 0;
    if byte_is(b, at, b'.') {
        at += 1;
        let digits = b
            .get(at..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        for place in 0..3 {
            ms = ms * 10
                + if place < digits {
                    num(b, at + place, 1)?
                } else {
                    0
                };
        }
        at += digits;
    }
    let offset_minutes = match b.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest.get(2) == Some(&b':') => {
            let (oh, om) = (num(rest, 0, 2)?, num(rest, 3, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = oh * 60 + om;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let local = to_epoch_ms(y, mo, d, h, mi, sec)?;
    Some((local + ms - offset_minutes * 60_000) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:37Z, the RFC 9110 example.
    const RFC_EXAMPLE_MS: f64 = 784_111_777_000.0;

    #[test]
    fn day_algorithms_over_the_whole_range() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(MIN_MS, -62_167_219_200_000);
        assert_eq!(MAX_MS, 253_402_300_799_999);
        // Every day from 0000-01-01 to 9999-12-31 follows the previous one.
        let (mut y, mut m, mut d) = (0, 1, 1);
        for z in days_from_civil(0, 1, 1)..=days_from_civil(9999, 12, 31) {
            assert_eq!(civil_from_days(z), (y, m, d), "day {z}");
            assert_eq!(days_from_civil(y, m, d), z);
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!((y, m, d), (10_000, 1, 1));
    }

    #[test]
    fn format_known_instants() {
        for (ms, text) in [
            (0.0, "1970-01-01T00:00:00.000Z"),
            (1_795_489_276_123.0, "2026-11-24T03:01:16.123Z"),
            (RFC_EXAMPLE_MS, "1994-11-06T08:49:37.000Z"),
            (1_709_164_800_000.0, "2024-02-29T00:00:00.000Z"),
            (1_709_251_199_999.0, "2024-02-29T23:59:59.999Z"),
            (951_782_400_000.0, "2000-02-29T00:00:00.000Z"),
            (-2_203_891_200_000.0, "1900-03-01T00:00:00.000Z"),
            (-2_203_891_200_001.0, "1900-02-28T23:59:59.999Z"),
            (946_684_799_999.0, "1999-12-31T23:59:59.999Z"),
            (946_684_800_000.0, "2000-01-01T00:00:00.000Z"),
            (1_798_761_599_999.0, "2026-12-31T23:59:59.999Z"),
            (1_798_761_600_000.0, "2027-01-01T00:00:00.000Z"),
            (-1.0, "1969-12-31T23:59:59.999Z"),
            (-86_400_000.0, "1969-12-31T00:00:00.000Z"),
            (-62_162_035_200_000.0, "0000-03-01T00:00:00.000Z"),
            (-62_162_121_600_000.0, "0000-02-29T00:00:00.000Z"), // year 0 is a leap year
            (-62_135_596_800_000.0, "0001-01-01T00:00:00.000Z"),
            (4_102_444_800_000.0, "2100-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(format_iso8601(ms), text, "{ms}");
        }
    }

    #[test]
    fn format_truncates_toward_the_past() {
        assert_eq!(format_iso8601(0.9), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso8601(1.999), "1970-01-01T00:00:00.001Z");
        assert_eq!(format_iso8601(999.9999), "1970-01-01T00:00:00.999Z");
        assert_eq!(format_iso8601(-0.5), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_iso8601(-0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso8601(-1000.5), "1969-12-31T23:59:58.999Z");
        assert_eq!(
            format_iso8601(1_795_489_276_123.7),
            "2026-11-24T03:01:16.123Z"
        );
    }

    #[test]
    fn format_clamps() {
        let (min, max) = ("0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z");
        assert_eq!(format_iso8601(MIN_MS as f64), min);
        assert_eq!(format_iso8601(MAX_MS as f64), max);
        assert_eq!(format_iso8601(MAX_MS as f64 + 0.5), max);
        assert_eq!(format_iso8601(MAX_MS as f64 + 1.0), max);
        assert_eq!(format_iso8601(MIN_MS as f64 - 0.5), min);
        assert_eq!(
            format_iso8601(MIN_MS as f64 + 1.0),
            "0000-01-01T00:00:00.001Z"
        );
        assert_eq!(format_iso8601(1e20), max);
        assert_eq!(format_iso8601(-1e20), min);
        assert_eq!(format_iso8601(f64::MAX), max);
        assert_eq!(format_iso8601(f64::MIN), min);
        assert_eq!(format_iso8601(f64::INFINITY), max);
        assert_eq!(format_iso8601(f64::NEG_INFINITY), min);
        assert_eq!(format_iso8601(f64::NAN), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_iso8601(f64::MIN_POSITIVE),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn http_date_rfc9110_examples() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE_MS)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(RFC_EXAMPLE_MS)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(RFC_EXAMPLE_MS)
        );
        assert_eq!(
            parse_http_date("Sun Nov 06 08:49:37 1994"),
            Some(RFC_EXAMPLE_MS)
        );
        assert_eq!(
            parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT\t"),
            Some(RFC_EXAMPLE_MS)
        );
    }

    #[test]
    fn http_date_more() {
        let p = parse_http_date;
        assert_eq!(
            p("Tue, 24 Nov 2026 03:01:16 GMT"),
            Some(1_795_489_276_000.0)
        );
        assert_eq!(p("Tue Nov 24 03:01:16 2026"), Some(1_795_489_276_000.0));
        assert_eq!(
            p("Tuesday, 24-Nov-26 03:01:16 GMT"),
            Some(1_795_489_276_000.0)
        );
        assert_eq!(p("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0.0));
        assert_eq!(p("Wed, 31 Dec 1969 23:59:59 GMT"), Some(-1000.0));
        assert_eq!(
            p("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1_709_208_000_000.0)
        );
        assert_eq!(p("Tue, 29 Feb 2000 00:00:00 GMT"), Some(951_782_400_000.0));
        assert_eq!(
            p("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799_000.0)
        );
        // A leap second counts as the next minute's first second.
        assert_eq!(
            p("Sat, 31 Dec 2016 23:59:60 GMT"),
            Some(1_483_228_800_000.0)
        );
        // The day name is not checked against the date.
        assert_eq!(p("Mon, 06 Nov 1994 08:49:37 GMT"), Some(RFC_EXAMPLE_MS));
        // RFC 850 two-digit years: 1970-2069 without a clock.
        assert_eq!(p("Thursday, 01-Jan-70 00:00:00 GMT"), Some(0.0));
        assert_eq!(
            p("Saturday, 01-Jan-00 00:00:00 GMT"),
            Some(946_684_800_000.0)
        );
        assert_eq!(
            p("Sunday, 31-Dec-69 23:59:59 GMT"),
            Some(3_155_759_999_000.0)
        );
        assert_eq!(
            p("Wednesday, 31-Dec-99 23:59:59 GMT"),
            Some(946_684_799_000.0)
        );
    }

    #[test]
    fn http_date_invalid() {
        for text in [
            "",
            " ",
            "Sun",
            "Sun,",
            "garbage that is 29 bytes long",
            "Sun, 30 Feb 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 31 Apr 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 GMTx",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 NOV 1994 08:49:37 GMT",
            "Sun, 06 Xyz 1994 08:49:37 GMT",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Foo, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:3x GMT",
            "Sun, 06 Nov -994 08:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37.5 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06 Nov 94 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 UTC",
            "Sunday, 30-Feb-94 08:49:37 GMT",
            "Sunday, 06-Nov-94 24:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sundays, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 GMT",
            "Sun Nov 30 24:49:37 1994",
            "Sun Feb 30 08:49:37 1994",
            "Sun Nov   08:49:37 1994",
            "Sun Nov x6 08:49:37 1994",
            "Sunday Nov  6 08:49:37 1994",
            "2026-11-24T03:01:16Z",
            "120",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{e9}",
            "Sun, 06 Nov 1994 08:49:3\u{e9}GMT",
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}x",
            "Sunday,\u{e9}",
            ",",
        ] {
            assert_eq!(parse_http_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn retry_after_delta_seconds() {
        assert_eq!(parse_retry_after("120", 0.0), Some(120_000.0));
        assert_eq!(parse_retry_after("0", 5.0), Some(0.0));
        assert_eq!(parse_retry_after(" 7 ", 5.0), Some(7000.0));
        assert_eq!(parse_retry_after("007", f64::NAN), Some(7000.0));
        assert_eq!(parse_retry_after("-1", 0.0), None);
        assert_eq!(parse_retry_after("+1", 0.0), None);
        assert_eq!(parse_retry_after("1.5", 0.0), None);
        assert_eq!(parse_retry_after("1e3", 0.0), None);
        assert_eq!(parse_retry_after("1 2", 0.0), None);
        assert_eq!(parse_retry_after("", 0.0), None);
        assert_eq!(parse_retry_after("  ", 0.0), None);
        assert_eq!(parse_retry_after("soon", 0.0), None);
        assert_eq!(parse_retry_after("١٢٠", 0.0), None); // non-ASCII digits
        let huge = parse_retry_after(&"9".repeat(100), 0.0);
        assert_eq!(huge, Some(u64::MAX as f64 * 1000.0));
        assert_eq!(parse_retry_after("18446744073709551615", 0.0), huge);
    }

    #[test]
    fn retry_after_dates() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            parse_retry_after(date, RFC_EXAMPLE_MS - 5000.0),
            Some(5000.0)
        );
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE_MS - 0.5), Some(0.5));
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE_MS), Some(0.0));
        assert_eq!(parse_retry_after(date, RFC_EXAMPLE_MS + 1.0), Some(0.0));
        assert_eq!(parse_retry_after(date, 1e15), Some(0.0));
        assert_eq!(
            parse_retry_after(date, -1e300),
            Some(RFC_EXAMPLE_MS + 1e300)
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", RFC_EXAMPLE_MS - 1.0),
            Some(1.0)
        );
        assert_eq!(parse_retry_after(date, f64::NAN), None);
        assert_eq!(parse_retry_after(date, f64::INFINITY), None);
        assert_eq!(
            parse_retry_after("Sun, 30 Feb 1994 08:49:37 GMT", 0.0),
            None
        );
    }

    #[test]
    fn retry_after_rfc850_years_follow_now() {
        let now = 1_795_489_276_123.0; // 2026-11-24: two-digit years mean 1977-2076
        let delay = |text: &str| parse_retry_after(text, now).map(|d| format_iso8601(now + d));
        assert_eq!(
            delay("Thursday, 01-Jan-76 00:00:00 GMT").as_deref(),
            Some("2076-01-01T00:00:00.000Z")
        );
        assert_eq!(
            delay("Friday, 31-Dec-27 00:00:00 GMT").as_deref(),
            Some("2027-12-31T00:00:00.000Z")
        );
        // 1977 is in the past: no delay.
        assert_eq!(
            parse_retry_after("Saturday, 01-Jan-77 00:00:00 GMT", now),
            Some(0.0)
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", RFC_EXAMPLE_MS - 2000.0),
            Some(2000.0)
        );
    }

    #[test]
    fn rfc3339_valid() {
        let p = parse_rfc3339;
        let base = 1_795_489_276_000.0; // 2026-11-24T03:01:16Z
        assert_eq!(p("2026-11-24T03:01:16Z"), Some(base));
        assert_eq!(p("2026-11-24t03:01:16z"), Some(base));
        assert_eq!(p("2026-11-24 03:01:16Z"), Some(base));
        assert_eq!(p("2026-11-24T03:01:16.123Z"), Some(base + 123.0));
        assert_eq!(p("2026-11-24T03:01:16.1Z"), Some(base + 100.0));
        assert_eq!(p("2026-11-24T03:01:16.12Z"), Some(base + 120.0));
        assert_eq!(p("2026-11-24T03:01:16.000Z"), Some(base));
        assert_eq!(p("2026-11-24T03:01:16.123999999999Z"), Some(base + 123.0));
        assert_eq!(p("2026-11-24T04:01:16+01:00"), Some(base));
        assert_eq!(p("2026-11-24T04:31:16.5+01:30"), Some(base + 500.0));
        assert_eq!(p("2026-11-23T21:31:16-05:30"), Some(base));
        assert_eq!(p("2026-11-24T03:01:16+00:00"), Some(base));
        assert_eq!(p("2026-11-24T03:01:16-00:00"), Some(base));
        assert_eq!(p("2026-11-25T02:00:16+22:59"), Some(base));
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(p("1969-12-31T23:59:59.999Z"), Some(-1.0));
        assert_eq!(p("1970-01-01T00:00:00+01:00"), Some(-3_600_000.0));
        assert_eq!(p("2024-02-29T00:00:00Z"), Some(1_709_164_800_000.0));
        assert_eq!(p("1900-03-01T00:00:00Z"), Some(-2_203_891_200_000.0));
        assert_eq!(p("2016-12-31T23:59:60Z"), Some(1_483_228_800_000.0));
        assert_eq!(p("0000-01-01T00:00:00Z"), Some(MIN_MS as f64));
        assert_eq!(p("9999-12-31T23:59:59.999Z"), Some(MAX_MS as f64));
    }

    #[test]
    fn rfc3339_invalid() {
        for text in [
            "",
            "2026-11-24",
            "2026-11-24T03:01:16",
            "2026-11-24T03:01Z",
            "2026-11-24T03:01:16ZZ",
            "2026-11-24T03:01:16Z ",
            " 2026-11-24T03:01:16Z",
            "2026-11-24T03:01:16.Z",
            "2026-11-24T03:01:16.",
            "2026-11-24T03:01:16,5Z",
            "2026-11-24T03:01:16.5x",
            "2026-11-24T24:00:00Z",
            "2026-11-24T03:60:00Z",
            "2026-11-24T03:01:61Z",
            "2026-02-29T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-1-24T03:01:16Z",
            "26-11-24T03:01:16Z",
            "+2026-11-24T03:01:16Z",
            "20261124T030116Z",
            "2026-11-24X03:01:16Z",
            "2026-11-24T03:01:16+01",
            "2026-11-24T03:01:16+0100",
            "2026-11-24T03:01:16+24:00",
            "2026-11-24T03:01:16+01:60",
            "2026-11-24T03:01:16+01:00:00",
            "2026-11-24T03:01:16 +01:00",
            "2026-11-24T03:01:16UTC",
            "2026-11-24T03:01:16\u{e9}",
            "2026-11-24T03:01:16.1\u{e9}",
            "\u{e9}026-11-24T03:01:16Z",
            "2026-11-24T03:01:16+\u{e9}:00",
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text:?}");
        }
    }

    #[test]
    fn format_and_parse_round_trip() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % (MAX_MS - MIN_MS) as u64) as i64 + MIN_MS;
            let text = format_iso8601(ms as f64);
            assert_eq!(text.len(), 24);
            assert_eq!(parse_rfc3339(&text), Some(ms as f64), "{text}");
        }
    }
}
