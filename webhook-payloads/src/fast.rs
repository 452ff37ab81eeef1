//! The fast path of the `json_object!` types: a small JSON reader over text, straight into the
//! typed structs, that gives up (returns `None`) on anything it does not handle exactly like
//! `serde_json` would. The caller then parses the same bytes with `serde_json`, which has the
//! final word on every value and produces every error: the reader can only ever be faster, never
//! different.
//!
//! What it handles is what real payloads are made of: objects, arrays, strings (escapes decoded,
//! borrowed when there are none; runs scanned 32 and 8 bytes at a time), plain non-negative
//! integers, booleans and `null`. It gives up on floats, negative numbers, numbers written as
//! strings for lenient integers, lone surrogates, control characters, nesting deeper than
//! `serde_json`'s limit, and any syntax error. Unknown keys are cut out as raw text and handed to
//! `serde_json` as `Value`s; field types without a fast reader of their own do the same.
//!
//! Equivalence is tested on every fixture event, on random JSON, and on random corruptions of
//! real events (`tests` below): whenever the reader returns a value, `serde_json` returns the
//! same value.

use std::borrow::Cow;

use serde::Deserialize;
use webhook_core::json::plain_prefix_len;

use crate::object::{Borrowed, Lenient};
use crate::string_map::StringMap;

/// `serde_json`'s recursion limit: deeper input is left to it (and its error).
const MAX_DEPTH: u32 = 128;

/// A cursor over JSON text.
pub(crate) struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Skips JSON whitespace (exactly serde_json's set).
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `b` after whitespace.
    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    /// Consumes `lit` (after whitespace) if it is next.
    fn literal(&mut self, lit: &[u8]) -> bool {
        self.ws();
        let next = self.bytes().get(self.pos..self.pos + lit.len());
        if next == Some(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// Consumes `null` if it is next.
    pub(crate) fn null(&mut self) -> bool {
        self.literal(b"null")
    }

    /// Whether a `null` is next, consuming it; `None` for anything else starting with `n`
    /// (most values do not: one byte decides).
    #[inline]
    fn null_next(&mut self) -> Option<bool> {
        self.ws();
        if self.peek() == Some(b'n') {
            self.null().then_some(true)
        } else {
            Some(false)
        }
    }

    /// A boolean.
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        if self.literal(b"true") {
            Some(true)
        } else if self.literal(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// A non-negative integer written as plain digits that fits `u64` (anything else: `None`).
    pub(crate) fn plain_u64(&mut self) -> Option<u64> {
        self.ws();
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        let mut n: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = bytes.get(i) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            i += 1;
        }
        let leading_zero = bytes.get(start) == Some(&b'0') && i - start > 1;
        if i == start || leading_zero || matches!(bytes.get(i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos = i;
        Some(n)
    }

    /// A string, borrowed when it holds no escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.ws();
        let bytes = self.bytes();
        if bytes.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let end = start + plain_prefix_len(bytes.get(start..)?);
        match bytes.get(end)? {
            b'"' => {
                self.pos = end + 1;
                Some(Cow::Borrowed(self.text.get(start..end)?))
            }
            b'\\' => self.escaped(start, end).map(Cow::Owned),
            _ => None, // a raw control character
        }
    }

    /// The rest of a string from its first escape at `at`.
    fn escaped(&mut self, start: usize, mut at: usize) -> Option<String> {
        let bytes = self.bytes();
        let mut out = String::with_capacity(at - start + 16);
        out.push_str(self.text.get(start..at)?);
        loop {
            match *bytes.get(at)? {
                b'"' => {
                    self.pos = at + 1;
                    return Some(out);
                }
                b'\\' => {
                    let c = match *bytes.get(at + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let (c, len) = unicode_escape(bytes.get(at + 2..)?)?;
                            at += len;
                            c
                        }
                        _ => return None,
                    };
                    out.push(c);
                    at += 2;
                }
                b if b < 0x20 => return None,
                _ => {
                    let run = plain_prefix_len(bytes.get(at..)?);
                    out.push_str(self.text.get(at..at + run)?);
                    at += run;
                }
            }
        }
    }

    /// `{ "key": value, ... }`: `field` is called with each key and the cursor on its value.
    pub(crate) fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.members(|r| {
            let key = r.key()?;
            field(r, key)
        })
    }

    /// `{ "key": value, ... }` where `field` reads each member itself, key and `:` included
    /// (with [`Self::key_is`] for the keys it expects, [`Self::key`] for any other).
    pub(crate) fn members(&mut self, mut field: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.enter()?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            self.ws();
            field(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Consumes the key `key` (see [`Key`]) and the `:` after it, if that is what comes next.
    /// A key written with escapes does not match here; the caller reads it with [`Self::key`],
    /// which decodes it.
    #[inline]
    pub(crate) fn key_is(&mut self, key: &Key) -> bool {
        let at = self.pos;
        let rest = self.bytes().get(at..).unwrap_or_default();
        // The first eight bytes as one word (most candidates differ there), then the rest.
        let matches = match rest.get(..8) {
            Some(head) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(head);
                u64::from_le_bytes(w) & key.mask == key.word
                    && rest.get(8..key.text.len()) == key.text.get(8..)
            }
            None => rest.get(..key.text.len()) == Some(key.text),
        };
        if !matches {
            return false;
        }
        self.pos = at + key.text.len();
        if self.eat(b':').is_some() {
            true
        } else {
            self.pos = at;
            false
        }
    }

    /// A key and the `:` after it.
    pub(crate) fn key(&mut self) -> Option<Cow<'a, str>> {
        let k = self.string()?;
        self.eat(b':')?;
        Some(k)
    }

    /// `[ value, ... ]`: `item` is called with the cursor on each element.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.enter()?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Skips one value (loosely: `serde_json` validates the text afterwards).
    fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|r, _| r.skip()),
            b'[' => self.array(Self::skip),
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let bytes = self.bytes();
                let start = self.pos;
                while let Some(b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z') =
                    bytes.get(self.pos)
                {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
            _ => None,
        }
    }

    /// The next value read by `serde_json` from its raw text.
    pub(crate) fn serde<T: Deserialize<'a>>(&mut self) -> Option<T> {
        self.ws();
        let start = self.pos;
        self.skip()?;
        serde_json::from_str(self.text.get(start..self.pos)?).ok()
    }
}

/// Four hex digits after `\u` (and the low half of a surrogate pair): the character and how many
/// bytes past the `\u` were consumed beyond the first four.
fn unicode_escape(bytes: &[u8]) -> Option<(char, usize)> {
    let hi = hex4(bytes)?;
    if (0xD800..0xDC00).contains(&hi) {
        let rest = bytes.get(4..)?;
        if rest.get(..2)? != b"\\u" {
            return None;
        }
        let lo = hex4(rest.get(2..)?)?;
        if !(0xDC00..0xE000).contains(&lo) {
            return None;
        }
        let c = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?;
        Some((c, 10))
    } else {
        // A lone low surrogate is not a char: `None`.
        Some((char::from_u32(hi)?, 4))
    }
}

fn hex4(bytes: &[u8]) -> Option<u32> {
    bytes.get(..4)?.iter().try_fold(0u32, |n, &b| {
        let d = char::from(b).to_digit(16)?;
        Some(n << 4 | d)
    })
}

/// An object key as raw JSON text (`"name"`, quotes included, no escapes) with its first eight
/// bytes as a little-endian word and the mask of the bytes that word holds, for
/// [`Reader::key_is`]. Built at compile time.
pub(crate) struct Key {
    text: &'static [u8],
    word: u64,
    mask: u64,
}

impl Key {
    pub(crate) const fn new(text: &'static [u8]) -> Self {
        let mut word = 0u64;
        let mut i = 0;
        while i < 8 && i < text.len() {
            word |= (text[i] as u64) << (8 * i);
            i += 1;
        }
        let mask = if text.len() >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * text.len())) - 1
        };
        Self { text, word, mask }
    }
}

/// A type the reader can read.
pub(crate) trait FastRead<'a>: Sized {
    /// Reads one value at the cursor; `None` hands the whole input to `serde_json`.
    fn read(r: &mut Reader<'a>) -> Option<Self>;
}

/// Reads `text` as exactly one `T` (whitespace around it allowed, as `serde_json::from_str`).
pub(crate) fn read_all<'a, T: FastRead<'a>>(text: &'a str) -> Option<T> {
    let mut r = Reader::new(text);
    let v = T::read(&mut r)?;
    r.ws();
    (r.pos == text.len()).then_some(v)
}

impl<'a, T: FastRead<'a>> FastRead<'a> for Option<T> {
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        if r.null_next()? {
            Some(None)
        } else {
            T::read(r).map(Some)
        }
    }
}

impl<'a, T: FastRead<'a>> FastRead<'a> for Vec<T> {
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        let mut out = Self::new();
        r.array(|r| {
            out.push(T::read(r)?);
            Some(())
        })?;
        Some(out)
    }
}

impl FastRead<'_> for bool {
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        r.boolean()
    }
}

impl FastRead<'_> for u64 {
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        r.plain_u64()
    }
}

impl FastRead<'_> for String {
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        r.string().map(Cow::into_owned)
    }
}

impl FastRead<'_> for Lenient<u64> {
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        r.plain_u64().map(Lenient)
    }
}

impl<'a, T> FastRead<'a> for Lenient<Option<T>>
where
    Lenient<T>: FastRead<'a>,
{
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        if r.null_next()? {
            Some(Self(None))
        } else {
            Lenient::<T>::read(r).map(|Lenient(v)| Self(Some(v)))
        }
    }
}

impl<'a> FastRead<'a> for Borrowed<Cow<'a, str>> {
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        r.string().map(Borrowed)
    }
}

impl<'a, T> FastRead<'a> for Borrowed<Option<T>>
where
    Borrowed<T>: FastRead<'a>,
{
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        if r.null_next()? {
            Some(Self(None))
        } else {
            Borrowed::<T>::read(r).map(|Borrowed(v)| Self(Some(v)))
        }
    }
}

impl<'a> FastRead<'a> for Borrowed<Vec<Cow<'a, str>>> {
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        let mut out = Vec::with_capacity(8);
        r.array(|r| {
            out.push(r.string()?);
            Some(())
        })?;
        Some(Borrowed(out))
    }
}

/// Strings borrowed; integers and booleans as their text; `null` entries dropped (as the serde
/// path); anything else (floats, negative numbers, nested values) hands over to `serde_json`.
impl<'a> FastRead<'a> for Borrowed<StringMap<'a>> {
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        let mut map = StringMap::new();
        r.object(|r, k| {
            r.ws();
            let v = match r.peek()? {
                b'"' => r.string()?,
                b't' | b'f' => Cow::Borrowed(if r.boolean()? { "true" } else { "false" }),
                b'n' => return r.null().then_some(()),
                _ => Cow::Owned(r.plain_u64()?.to_string()),
            };
            map.push(k, v);
            Some(())
        })?;
        Some(Borrowed(map))
    }
}

/// Field types read by `serde_json` from their raw text (rare in Sysdig payloads, or small
/// enums of the other families).
macro_rules! fast_via_serde {
    ($($t:ty),* $(,)?) => {$(
        impl<'a> $crate::fast::FastRead<'a> for $t {
            fn read(r: &mut $crate::fast::Reader<'a>) -> Option<Self> {
                r.serde()
            }
        }
    )*};
}
pub(crate) use fast_via_serde;

fast_via_serde!(
    serde_json::Value,
    serde_json::Map<String, serde_json::Value>,
    Lenient<i64>,
    Lenient<u8>,
    Lenient<u16>,
    Lenient<u32>,
    Lenient<String>,
    Lenient<std::collections::BTreeMap<String, String>>,
    crate::Timestamp,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysdig::{
        AuditTrailEvent, CommandEvent, ConnectionEvent, FileAccessEvent, KubernetesEvent,
        LegacyPolicyEvent, PolicyEvent,
    };
    use proptest::prelude::*;

    /// `fast` agrees with `serde_json` whenever it answers; returns whether it answered.
    fn agrees<'a, T>(text: &'a str) -> bool
    where
        T: FastRead<'a> + Deserialize<'a> + PartialEq + std::fmt::Debug,
    {
        match read_all::<T>(text) {
            Some(fast) => {
                let slow: Result<T, _> = serde_json::from_str(text);
                assert_eq!(slow.as_ref().ok(), Some(&fast), "{text}");
                true
            }
            None => false,
        }
    }

    fn all_types_agree(text: &str) -> bool {
        let answered = [
            agrees::<PolicyEvent<'_>>(text),
            agrees::<LegacyPolicyEvent<'_>>(text),
            agrees::<CommandEvent<'_>>(text),
            agrees::<ConnectionEvent<'_>>(text),
            agrees::<FileAccessEvent<'_>>(text),
            agrees::<KubernetesEvent<'_>>(text),
            agrees::<AuditTrailEvent<'_>>(text),
            agrees::<StringMapProbe<'_>>(text),
            agrees::<crate::falco::FalcoEvent>(text),
            agrees::<crate::soveren::SoverenEvent>(text),
            agrees::<crate::alertmanager::AlertmanagerPayload>(text),
        ];
        answered.iter().any(|a| *a)
    }

    /// A `StringMap` on its own, through the same readers as the struct fields.
    #[derive(Debug, PartialEq)]
    struct StringMapProbe<'a>(StringMap<'a>);

    impl<'a> FastRead<'a> for StringMapProbe<'a> {
        fn read(r: &mut Reader<'a>) -> Option<Self> {
            Borrowed::<StringMap<'a>>::read(r).map(|Borrowed(m)| StringMapProbe(m))
        }
    }

    impl<'de> Deserialize<'de> for StringMapProbe<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Borrowed::<StringMap<'de>>::deserialize(d).map(|Borrowed(m)| StringMapProbe(m))
        }
    }

    const REAL: &str =
        include_str!("../../fixtures/sysdig/elastic-integrations-test-sysdig.ndjson");

    #[test]
    fn every_real_event_takes_the_fast_path_and_agrees() {
        for line in REAL.lines().filter(|l| !l.trim().is_empty()) {
            assert!(all_types_agree(line), "fast path gave up on {line}");
        }
        let policy = REAL.lines().next().unwrap_or_default();
        assert!(read_all::<PolicyEvent<'_>>(policy).is_some());
    }

    #[test]
    fn strings_numbers_and_maps_agree() {
        let cases = [
            r#"{"a":"plain","b":"esc\"aped\\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00"}"#,
            r#"{"a":1,"b":true,"c":false,"d":null,"e":"x"}"#,
            r#"{"a":1.5}"#,
            r#"{"a":-1}"#,
            r#"{"a":01}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"bad \x"}"#,
            "{\"a\":\"raw\ttab\"}",
            r#"{"a":"x",}"#,
            r#"{"a" "x"}"#,
            r#"  { "a" : "x" , "b" : 2 }  "#,
            r#"{"a":"x"} trailing"#,
            r#"{"a":[1,2]}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":"x","a":"y"}"#,
        ];
        for text in cases {
            all_types_agree(text);
        }
        assert!(agrees::<StringMapProbe<'_>>(cases[1]));
        assert!(
            !agrees::<StringMapProbe<'_>>(cases[2]),
            "floats are serde_json's"
        );
    }

    #[test]
    fn keys_in_any_order_spelling_and_spacing_agree() {
        // The reader first compares each key as raw text with the fields declared after the
        // last one seen; keys out of that order, beyond its look-ahead, escaped, spaced,
        // repeated or unknown must come out as `serde_json` reads them.
        let cases = [
            // Declared order, Sysdig's order (content before labels), reversed.
            r#"{"id":"a","type":"policy","timestamp":1,"severity":3,"labels":{"k":"v"},"content":{"ruleName":"r"}}"#,
            r#"{"id":"a","type":"policy","timestamp":1,"content":{"ruleName":"r"},"labels":{"k":"v"}}"#,
            r#"{"content":{"ruleName":"r"},"labels":{"k":"v"},"timestamp":1,"type":"policy","id":"a"}"#,
            // Far past the look-ahead and back.
            r#"{"hostMac":"m","id":"a","actions":[],"type":"policy","timestamp":1}"#,
            // Escaped key spellings and a key that is a prefix of another.
            r#"{"i\u0064":"a","type":"policy","timestamp":1,"\u0073everity":2}"#,
            r#"{"id":"a","idx":"b","type":"policy","typeX":1,"timestamp":1}"#,
            // Spacing around the colon, a repeated field (the last one wins), an unknown one.
            r#"{ "id" : "a" , "type"	:"policy", "timestamp" :1, "id":"b", "new":{"x":[1]} }"#,
            // A key cut short, a missing colon.
            r#"{"id":"a","type":"policy","timestamp":1,"sev"#,
            r#"{"id" "a","type":"policy","timestamp":1}"#,
        ];
        for text in cases {
            all_types_agree(text);
        }
        for text in &cases[..7] {
            assert!(read_all::<PolicyEvent<'_>>(text).is_some(), "{text}");
        }
        let ev = read_all::<PolicyEvent<'_>>(cases[6]).expect("reads");
        assert_eq!(ev.id, "b");
        assert_eq!(ev.extra["new"]["x"][0], 1);
        let ev = read_all::<PolicyEvent<'_>>(cases[4]).expect("reads");
        assert_eq!((&*ev.id, ev.severity), ("a", Some(2)));
    }

    #[test]
    fn deep_nesting_is_left_to_serde_json() {
        let deep = format!(
            "{{\"id\":\"a\",\"type\":\"policy\",\"timestamp\":1,\"x\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(read_all::<PolicyEvent<'_>>(&deep).is_none());
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        const KEYS: &[&str] = &[
            "id",
            "type",
            "timestamp",
            "content",
            "fields",
            "labels",
            "severity",
            "agentId",
            "actions",
            "ruleTags",
            "output",
            "successful",
            "name",
            "rule",
            "priority",
            "alerts",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-400i64..400).prop_map(|q| Value::from(q as f64 / 4.0)),
            "\\PC{0,10}|.{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        proptest::sample::select(KEYS)
                            .prop_map(String::from)
                            .boxed()
                            .prop_union(".{0,5}".boxed()),
                        inner
                    ),
                    0..8
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn random_json_agrees(v in json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                serde_json::to_string(&v).unwrap_or_default()
            };
            all_types_agree(&text);
        }

        #[test]
        fn corrupted_real_events_agree(line in 0usize..8, at in any::<prop::sample::Index>(), op in 0u8..3, byte in any::<u8>()) {
            let lines: Vec<&str> = REAL.lines().filter(|l| !l.trim().is_empty()).collect();
            let mut bytes = lines[line % lines.len()].as_bytes().to_vec();
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                all_types_agree(text);
            }
        }
    }
}
