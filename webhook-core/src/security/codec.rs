//! Allocation-free encoders and decoders for the verification hot path: lowercase hex,
//! standard base64 into stack buffers, and unix-seconds decimals.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The largest signature any supported algorithm produces (Ed25519: 64 bytes).
pub(crate) const MAX_SIG_LEN: usize = 64;
/// Room for the base64 text of [`MAX_SIG_LEN`] bytes (88 characters) with slack.
pub(crate) const MAX_ENCODED_LEN: usize = 128;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes the lowercase hex of `input` into `out`; returns the number of bytes written
/// (`min(2 * input.len(), out.len())` rounded down to whole bytes).
pub(crate) fn hex_encode(input: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    for (byte, pair) in input.iter().zip(out.chunks_exact_mut(2)) {
        if let [hi, lo] = pair {
            *hi = HEX[usize::from(byte >> 4)];
            *lo = HEX[usize::from(byte & 0x0f)];
            n += 2;
        }
    }
    n
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes strictly lowercase hex into `out`; `None` on odd length, a non-hex or uppercase
/// character, or an input longer than `out` can hold. Strict lowercase keeps the encoding
/// canonical, so every single-bit change of the text changes the decoded bytes or fails.
pub(crate) fn hex_decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    if !input.len().is_multiple_of(2) || input.len() / 2 > out.len() {
        return None;
    }
    for (pair, slot) in input.chunks_exact(2).zip(out.iter_mut()) {
        let (hi, lo) = match pair {
            [hi, lo] => (hex_val(*hi)?, hex_val(*lo)?),
            _ => return None,
        };
        *slot = (hi << 4) | lo;
    }
    Some(input.len() / 2)
}

/// Decodes canonical standard padded base64 into `out`; `None` if invalid or too long.
pub(crate) fn base64_decode(input: &[u8], out: &mut [u8; MAX_SIG_LEN + 32]) -> Option<usize> {
    if input.len() > MAX_ENCODED_LEN {
        return None;
    }
    STANDARD.decode_slice(input, out).ok()
}

/// Encodes standard padded base64 of `input` into `out`; returns the length written.
pub(crate) fn base64_encode(input: &[u8], out: &mut [u8; MAX_ENCODED_LEN]) -> usize {
    STANDARD.encode_slice(input, out).unwrap_or(0)
}

/// Parses a unix-seconds timestamp: 1 to 19 ASCII digits, nothing else (no sign, no spaces).
/// 19 digits always fit in a `u64`, so no overflow is possible.
pub(crate) fn parse_unix_secs(input: &[u8]) -> Option<u64> {
    if input.is_empty() || input.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in input {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

/// Formats `v` in decimal into `buf`; returns the digits.
pub(crate) fn format_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            // `v % 10` is below 10, so the cast cannot truncate.
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_strictness() {
        let mut enc = [0u8; 8];
        assert_eq!(hex_encode(&[0x00, 0xab, 0xff, 0x10], &mut enc), 8);
        assert_eq!(&enc, b"00abff10");
        let mut dec = [0u8; 4];
        assert_eq!(hex_decode(b"00abff10", &mut dec), Some(4));
        assert_eq!(dec, [0x00, 0xab, 0xff, 0x10]);
        assert_eq!(hex_decode(b"00ABff10", &mut dec), None);
        assert_eq!(hex_decode(b"0", &mut dec), None);
        assert_eq!(hex_decode(b"0011223344", &mut dec), None);
        assert_eq!(hex_decode(b"0g", &mut dec), None);
    }

    #[test]
    fn decimals() {
        let mut buf = [0u8; 20];
        assert_eq!(format_u64(0, &mut buf), b"0");
        assert_eq!(format_u64(1614265330, &mut buf), b"1614265330");
        assert_eq!(format_u64(u64::MAX, &mut buf), b"18446744073709551615");
        assert_eq!(parse_unix_secs(b"1614265330"), Some(1614265330));
        assert_eq!(
            parse_unix_secs(b"9999999999999999999"),
            Some(9999999999999999999)
        );
        assert_eq!(parse_unix_secs(b"18446744073709551615"), None);
        assert_eq!(parse_unix_secs(b""), None);
        assert_eq!(parse_unix_secs(b"+1"), None);
        assert_eq!(parse_unix_secs(b"-1"), None);
        assert_eq!(parse_unix_secs(b"1 "), None);
    }

    #[test]
    fn base64_into_stack_buffers() {
        let mut out = [0u8; MAX_SIG_LEN + 32];
        assert_eq!(base64_decode(b"AAEC", &mut out), Some(3));
        assert_eq!(base64_decode(b"AAE", &mut out), None);
        assert_eq!(
            base64_decode(b"AAF=", &mut out),
            None,
            "non-canonical trailing bits"
        );
        assert_eq!(base64_decode(&[b'A'; 200], &mut out), None);
        let mut enc = [0u8; MAX_ENCODED_LEN];
        assert_eq!(base64_encode(&[0, 1, 2], &mut enc), 4);
        assert_eq!(&enc[..4], b"AAEC");
    }
}
