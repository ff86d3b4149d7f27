//! The few f64 operations the core needs that `core` lacks (they live in std, over libm).
//! Exact for every finite input; NaN stays NaN and infinities stay themselves.

/// 2^52: from here on every f64 is an integer.
const INTEGRAL: f64 = 4_503_599_627_370_496.0;

/// `x` without its fractional part, towards zero.
pub fn trunc(x: f64) -> f64 {
    if x.is_finite() && x.abs() < INTEGRAL {
        let t = (x as i64) as f64;
        if t == 0.0 && x.is_sign_negative() {
            -0.0
        } else {
            t
        }
    } else {
        x
    }
}

/// Whether `x` is a finite integer.
pub fn is_integral(x: f64) -> bool {
    x.is_finite() && trunc(x) == x
}

/// The largest integer not above `x`.
pub fn floor(x: f64) -> f64 {
    let t = trunc(x);
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// The nearest integer, halves away from zero (like `f64::round`).
pub fn round(x: f64) -> f64 {
    let t = trunc(x);
    let d = x - t; // exact: |x| < 2^52 has at most 52 fraction bits
    if d >= 0.5 {
        t + 1.0
    } else if d <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

/// Appends `n` in decimal, without `core::fmt`.
pub fn push_int(out: &mut alloc::string::String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut v = n.unsigned_abs();
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(d as char);
    }
}

/// `n` in decimal.
pub fn int_string(n: i64) -> alloc::string::String {
    let mut s = alloc::string::String::new();
    push_int(&mut s, n);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_std() {
        let xs = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999999999999994,
            -0.49999999999999994,
            1e15 + 0.5,
            -1e15 - 0.5,
            4_503_599_627_370_495.5,
            9e15,
            1e300,
            -1e300,
            3.7,
            -3.7,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for x in xs {
            assert_eq!(trunc(x).to_bits(), x.trunc().to_bits(), "trunc {x}");
            assert_eq!(floor(x), x.floor(), "floor {x}");
            assert_eq!(round(x), x.round(), "round {x}");
            assert_eq!(
                is_integral(x),
                x.is_finite() && x.fract() == 0.0,
                "integral {x}"
            );
        }
        assert!(trunc(f64::NAN).is_nan() && floor(f64::NAN).is_nan() && round(f64::NAN).is_nan());
        assert!(!is_integral(f64::NAN));
    }

    #[test]
    fn integers_in_decimal() {
        for n in [0, 7, -7, 10, 1_700_000_000, i64::MAX, i64::MIN, -1] {
            assert_eq!(int_string(n), n.to_string());
        }
    }
}
