//! UUIDs (versions 4 and 7) from caller-supplied random bytes, and the generator clients
//! draw them from.

#[allow(unused_imports)]
use crate::prelude::*;
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Formats 16 random bytes as a version 4 UUID (RFC 9562): sets the version nibble to 4 and
/// the variant bits to `10`, lowercase, hyphenated 8-4-4-4-12.
pub fn uuid_v4(bytes: [u8; 16]) -> String {
    format(bytes, 0x40)
}

/// A version 7 UUID (RFC 9562): `ms` (Unix epoch milliseconds) in the first 48 bits, then 74
/// random bits, so that ids sort by creation time.
pub fn uuid_v7(ms: f64, mut bytes: [u8; 16]) -> String {
    let ms = if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    };
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    format(bytes, 0x70)
}

/// The next 16 bytes of a splitmix64 generator (`state`, seeded with the platform's crypto
/// randomness).
pub fn random_bytes(state: &mut u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    bytes
}

fn format(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | version;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.into_iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_7_starts_with_the_time() {
        let id = uuid_v7(1_700_000_000_123.0, [0xff; 16]);
        assert_eq!(id, "018bcfe5-687b-7fff-bfff-ffffffffffff");
        assert!(
            uuid_v7(1.0, [0; 16]) < uuid_v7(2.0, [0; 16]),
            "sorted by time"
        );
        assert_eq!(
            uuid_v7(f64::NAN, [0; 16]),
            "00000000-0000-7000-8000-000000000000"
        );
    }

    #[test]
    fn fixed_inputs() {
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let counting: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(uuid_v4(counting), "00010203-0405-4607-8809-0a0b0c0d0e0f");
        let mut msg = [
            0x5f, 0x0c, 0x3e, 0x1a, 0x8d, 0x2b, 0x4c, 0x6e, 0x9f, 0x10, 0x2a, 0x3b, 0x4c, 0x5d,
            0x6e, 0x7f,
        ];
        assert_eq!(uuid_v4(msg), "5f0c3e1a-8d2b-4c6e-9f10-2a3b4c5d6e7f");
        msg[6] = 0xcc;
        msg[8] = 0x5f;
        assert_eq!(uuid_v4(msg), "5f0c3e1a-8d2b-4c6e-9f10-2a3b4c5d6e7f");
    }

    #[test]
    fn shape_for_many_inputs() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut bytes = [0u8; 16];
            for b in &mut bytes {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = (x >> 24) as u8;
            }
            let id = uuid_v4(bytes);
            let chars: Vec<char> = id.chars().collect();
            assert_eq!(chars.len(), 36, "{id}");
            for (i, &c) in chars.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    assert_eq!(c, '-', "{id}");
                } else {
                    assert!(matches!(c, '0'..='9' | 'a'..='f'), "{id}");
                }
            }
            assert_eq!(chars[14], '4', "version: {id}");
            assert!(matches!(chars[19], '8' | '9' | 'a' | 'b'), "variant: {id}");
            // The other 122 bits are the input's.
            let hex: String = id.chars().filter(|&c| c != '-').collect();
            for (i, b) in bytes.iter().enumerate() {
                let shown = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
                let mask = match i {
                    6 => 0x0f,
                    8 => 0x3f,
                    _ => 0xff,
                };
                assert_eq!(shown & mask, b & mask);
            }
        }
    }
}
