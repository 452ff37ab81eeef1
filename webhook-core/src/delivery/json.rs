//! Writing compact JSON directly into a buffer: the string escaper, integers, and the
//! [`ToJson`] trait for payload types that write themselves without going through serde.
//!
//! `serde_json` escapes strings one byte at a time; [`write_str`] looks at eight bytes at a
//! time and copies runs that need no escaping in one go. Its output is byte-for-byte what
//! `serde_json` writes (`"`, `\` and the control characters escaped, `\b \t \n \f \r` in their
//! short forms, the others as `\u00XX`; `/`, DEL and non-ASCII left as they are), so a type may
//! switch between the two without changing a signature computed over its bytes.
//!
//! ```
//! let mut out = Vec::new();
//! webhook_core::json::write_str(&mut out, "say \"hi\"\n");
//! assert_eq!(out, br#""say \"hi\"\n""#);
//! assert_eq!(out, serde_json::to_vec("say \"hi\"\n")?);
//! # Ok::<(), serde_json::Error>(())
//! ```

/// A value that writes itself as one compact JSON value (no whitespace, no raw line breaks).
///
/// The contract: `write_json` appends exactly one valid JSON value and never a raw CR or LF
/// (every string goes through [`write_str`], which escapes them). [`crate::EventBuilder::json`]
/// relies on it instead of re-parsing the bytes, and checks the line-break half anyway, since
/// a line break would break NDJSON framing.
///
/// ```
/// use webhook_core::json::{self, ToJson};
/// struct Alert<'a> {
///     rule: &'a str,
///     severity: u64,
/// }
/// impl ToJson for Alert<'_> {
///     fn write_json(&self, out: &mut Vec<u8>) {
///         out.extend_from_slice(b"{\"rule\":");
///         json::write_str(out, self.rule);
///         out.extend_from_slice(b",\"severity\":");
///         json::write_u64(out, self.severity);
///         out.push(b'}');
///     }
/// }
/// let e = webhook_core::Event::builder("1", "alert").json(&Alert { rule: "shell", severity: 4 })?;
/// assert_eq!(&e.body()[..], br#"{"rule":"shell","severity":4}"#);
/// # Ok::<(), webhook_core::EventError>(())
/// ```
pub trait ToJson {
    /// `true` when the implementation writes every string through [`write_str`] (or another
    /// escaping writer) and so can never emit a raw CR or LF: [`crate::EventBuilder::json`]
    /// then skips its line-break scan (it still runs in debug builds). Leave it `false` (the
    /// default) unless that holds by construction.
    const ESCAPES_LINE_BREAKS: bool = false;

    /// Appends this value's compact JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>);

    /// The compact JSON as a new vector.
    fn to_json_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_json(&mut out);
        out
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    const ESCAPES_LINE_BREAKS: bool = T::ESCAPES_LINE_BREAKS;

    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl ToJson for str {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl ToJson for String {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl ToJson for std::borrow::Cow<'_, str> {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            const ESCAPES_LINE_BREAKS: bool = true;

            fn write_json(&self, out: &mut Vec<u8>) {
                write_u64(out, u64::from(*self));
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64);

impl ToJson for i32 {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_i64(out, i64::from(*self));
    }
}

impl ToJson for i64 {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_i64(out, *self);
    }
}

impl ToJson for bool {
    const ESCAPES_LINE_BREAKS: Self = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl<T: ToJson> ToJson for Option<T> {
    const ESCAPES_LINE_BREAKS: bool = T::ESCAPES_LINE_BREAKS;

    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    const ESCAPES_LINE_BREAKS: bool = T::ESCAPES_LINE_BREAKS;

    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            v.write_json(out);
        }
        out.push(b']');
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    const ESCAPES_LINE_BREAKS: bool = T::ESCAPES_LINE_BREAKS;

    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }
}

impl<T: ToJson + ?Sized> ToJson for Box<T> {
    const ESCAPES_LINE_BREAKS: bool = T::ESCAPES_LINE_BREAKS;

    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl<V: ToJson> ToJson for std::collections::BTreeMap<String, V> {
    const ESCAPES_LINE_BREAKS: bool = V::ESCAPES_LINE_BREAKS;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_object(out, self.iter());
    }
}

impl ToJson for serde_json::Map<String, serde_json::Value> {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_object(out, self.iter());
    }
}

/// Writes an object from its entries, in order.
fn write_object<'k, V: ToJson + 'k>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'k String, &'k V)>,
) {
    out.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        v.write_json(out);
    }
    out.push(b'}');
}

impl ToJson for serde_json::Value {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        write_value(out, self);
    }
}

/// Writes a `serde_json::Value` (strings and keys through [`write_str`]).
pub fn write_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => b.write_json(out),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(out, u);
            } else if let Some(i) = n.as_i64() {
                write_i64(out, i);
            } else {
                // Floats (and arbitrary precision numbers): serde_json's own formatting.
                out.extend_from_slice(n.to_string().as_bytes());
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => items.write_json(out),
        Value::Object(map) => map.write_json(out),
    }
}

/// Writes `n` in decimal.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        // `n % 10` is below 10: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + digit;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or_default());
}

/// Writes `n` in decimal.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// The escape of each ASCII byte: 0 for none, `u` for `\u00XX`, else the short escape letter.
const ESCAPE: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const ONES: u64 = u64::MAX / 255;
const HIGHS: u64 = ONES << 7;

/// The eight bytes of `bytes` at `at` as a little-endian word (zeros past the end).
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(c) = bytes.get(at..at + 8) {
        w.copy_from_slice(c);
    }
    u64::from_le_bytes(w)
}

/// Whether any of the eight bytes of `w` is `"`, `\` or below 0x20 (a zero-byte test per
/// class: `x - 0x01..` borrows into the high bit exactly where a byte of `x` is zero).
#[inline(always)]
fn needs_escape(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let has_quote = quote.wrapping_sub(ONES) & !quote;
    let has_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let has_control = w.wrapping_sub(ONES * 0x20) & !w;
    (has_quote | has_backslash | has_control) & HIGHS
}

/// The length of the prefix of `bytes` that a JSON string can hold as is: up to the first `"`,
/// `\` or control character (eight bytes at a time). The writer uses it to copy clean runs;
/// readers use it to find where a string ends or needs unescaping.
///
/// ```
/// use webhook_core::json::plain_prefix_len;
/// assert_eq!(plain_prefix_len(b"0123456789abc\"def"), 13);
/// assert_eq!(plain_prefix_len(b"no specials at all"), 18);
/// assert_eq!(plain_prefix_len(b"tab\there"), 3);
/// ```
#[inline]
pub fn plain_prefix_len(bytes: &[u8]) -> usize {
    let mut i = 0;
    // 32 bytes per step: four words tested together (vector instructions), then the first hit.
    while let Some(block) = bytes.get(i..i + 32) {
        let hits = [
            needs_escape(word(block, 0)),
            needs_escape(word(block, 8)),
            needs_escape(word(block, 16)),
            needs_escape(word(block, 24)),
        ];
        if hits.iter().any(|&h| h != 0) {
            for (k, &h) in hits.iter().enumerate() {
                if h != 0 {
                    return i + k * 8 + (h.trailing_zeros() / 8) as usize;
                }
            }
        }
        i += 32;
    }
    while let Some(chunk) = bytes.get(i..i + 8) {
        let hit = needs_escape(word(chunk, 0));
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    // Fewer than eight bytes left: test the last eight bytes as one word. The ones before `i`
    // are known plain, so the first hit in the word, if any, is at or after `i`.
    let len = bytes.len();
    if i < len && len >= 8 {
        let hit = needs_escape(word(bytes, len - 8));
        return if hit == 0 {
            len
        } else {
            len - 8 + (hit.trailing_zeros() / 8) as usize
        };
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// Writes `s` as a JSON string, quotes included.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    loop {
        let run = plain_prefix_len(rest);
        out.extend_from_slice(rest.get(..run).unwrap_or_default());
        let Some((&b, tail)) = rest.get(run..).and_then(<[u8]>::split_first) else {
            break;
        };
        match ESCAPE.get(usize::from(b)).copied().unwrap_or(0) {
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            esc => {
                out.push(b'\\');
                out.push(esc);
            }
        }
        rest = tail;
    }
    out.push(b'"');
}

/// Whether `bytes` hold a raw CR or LF: 32 bytes per step (four words tested together, which
/// the compiler turns into vector instructions), then eight, then one.
pub(crate) fn find_line_break(bytes: &[u8]) -> Option<usize> {
    #[inline]
    fn breaks(w: u64) -> u64 {
        let lf = w ^ (ONES * u64::from(b'\n'));
        let cr = w ^ (ONES * u64::from(b'\r'));
        ((lf.wrapping_sub(ONES) & !lf) | (cr.wrapping_sub(ONES) & !cr)) & HIGHS
    }
    let mut offset = 0;
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let any = block
            .chunks_exact(8)
            .fold(0, |acc, c| acc | breaks(word(c, 0)));
        if any != 0 {
            break;
        }
        offset += 32;
    }
    let rest = bytes.get(offset..).unwrap_or_default();
    let mut words = rest.chunks_exact(8);
    for (i, chunk) in (&mut words).enumerate() {
        let hit = breaks(word(chunk, 0));
        if hit != 0 {
            return Some(offset + i * 8 + (hit.trailing_zeros() / 8) as usize);
        }
    }
    let tail = rest.len() - words.remainder().len();
    words
        .remainder()
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|p| offset + tail + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, s);
        out
    }

    #[test]
    fn strings_match_serde_json_byte_for_byte() {
        let mut all = String::new();
        for c in (0u32..0x100).filter_map(char::from_u32) {
            all.push(c);
        }
        let cases = [
            "",
            "a",
            "plain ascii text longer than eight bytes",
            "\"",
            "\\",
            "\u{7f}/<>&'",
            "tab\there\nnew\rcr\u{8}\u{c}\u{0}\u{1f}",
            "ünïcödé ✓ 😀 and \"quotes\" after eight bytes",
            "12345678\"",
            "1234567\\",
            all.as_str(),
        ];
        for s in cases {
            assert_eq!(ours(s), serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        // Every escape at every offset within a word.
        for pos in 0..70 {
            for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', 'é'] {
                let mut s = "x".repeat(pos);
                s.push(special);
                s.push_str("tail-of-the-string");
                assert_eq!(ours(&s), serde_json::to_vec(&s).unwrap(), "{s:?}");
            }
        }
    }

    /// The first byte a JSON string cannot hold as is, one byte at a time.
    fn naive_plain_prefix_len(bytes: &[u8]) -> usize {
        bytes
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(bytes.len())
    }

    #[test]
    fn plain_prefix_len_agrees_with_a_byte_loop_at_every_length_and_offset() {
        // Every length across the 32-byte blocks, the 8-byte words and the overlapping last
        // word; every special byte at every offset, alone and with a second one after it.
        for len in 0..80 {
            let clean = vec![b'x'; len];
            assert_eq!(plain_prefix_len(&clean), len, "{len}");
            for pos in 0..len {
                for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                    let mut v = clean.clone();
                    v[pos] = special;
                    assert_eq!(plain_prefix_len(&v), pos, "{len} {pos} {special}");
                    if pos + 1 < len {
                        v[len - 1] = b'"';
                        assert_eq!(plain_prefix_len(&v), pos, "{len} {pos} {special}");
                    }
                }
                // Bytes that look special to a careless word test are plain.
                for plain in [0x20, 0x7f, 0x80, 0xa2, 0xdc, 0xff, b'!', b'#', b'['] {
                    let mut v = clean.clone();
                    v[pos] = plain;
                    assert_eq!(
                        plain_prefix_len(&v),
                        naive_plain_prefix_len(&v),
                        "{len} {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn integers_and_values_match_serde_json() {
        for n in [0, 1, 9, 10, 99, 100, 1_720_031_001_639_981_110, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        for n in [0, -1, i64::MIN, i64::MAX, -42] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        let v = serde_json::json!({"a": [1, -2, 2.5, null, true, "x\"y"], "b\n": {"c": 1e300}});
        assert_eq!(v.to_json_vec(), serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn line_breaks_are_found_at_any_offset() {
        assert_eq!(find_line_break(b""), None);
        assert_eq!(find_line_break(b"{\"a\":\"b\\n\"}"), None);
        for len in [1, 7, 8, 24, 31, 32, 33, 64, 100] {
            assert_eq!(find_line_break(&vec![b'a'; len]), None);
            for pos in 0..len {
                for brk in [b'\n', b'\r'] {
                    let mut v = vec![b'a'; len];
                    v[pos] = brk;
                    assert_eq!(find_line_break(&v), Some(pos), "{len} {pos}");
                    // The first of two.
                    if pos + 1 < len {
                        v[len - 1] = b'\n';
                        assert_eq!(find_line_break(&v), Some(pos), "{len} {pos}");
                    }
                }
            }
        }
    }
}
