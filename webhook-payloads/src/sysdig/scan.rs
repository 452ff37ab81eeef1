//! A byte scan that reads the top-level `"type"` string of a JSON object without parsing the
//! rest: it skips earlier members and stops at `type`. It answers `None` whenever it is unsure
//! (escapes in a key or the value, unexpected bytes, `type` absent or not a string), and the
//! caller then takes the full path; the object is always fully parsed afterwards, so malformed
//! input is still reported by `serde_json`.

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// A string without escapes starting at the `"` at `i`: its bytes and the index after it.
fn plain_str(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(i + 1..)?;
    let end = rest.iter().position(|&c| c == b'"' || c == b'\\')?;
    if rest.get(end) != Some(&b'"') {
        return None;
    }
    Some((rest.get(..end)?, i + 1 + end + 1))
}

/// Any string starting at the `"` at `i`: the index after it.
fn skip_str(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// Any value starting at `i`: the index after it.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_str(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_str(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while !matches!(b.get(i), None | Some(b',' | b'}' | b']'))
                && !b.get(i)?.is_ascii_whitespace()
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// The top-level `type` string of the object in `b`, if the scan can tell.
pub(super) fn top_level_type(b: &[u8]) -> Option<&str> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key, next) = plain_str(b, i)?;
        i = skip_ws(b, next);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if key == b"type" {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (value, _) = plain_str(b, i)?;
            return std::str::from_utf8(value).ok();
        }
        i = skip_ws(b, skip_value(b, i)?);
        if b.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::top_level_type;

    #[test]
    fn finds_type_after_other_members() {
        let j = br#" { "id" : "x", "nested": {"type": "no", "a": ["}", "\"", {}]}, "n": -1.5e3,
                     "t": true, "type" : "connection", "z": 1 }"#;
        assert_eq!(top_level_type(j), Some("connection"));
    }

    #[test]
    fn unsure_cases() {
        for j in [
            &br#"{"id":"x"}"#[..],
            br#"{"type":1}"#,
            br#"{"ty\u0070e":"policy"}"#,
            br#"{"type":"pol\u0069cy"}"#,
            br#"[{"type":"policy"}]"#,
            br#"{"a":"#,
            br#"{"a":]]]}"#,
            b"",
            br#"{"type""#,
        ] {
            assert_eq!(top_level_type(j), None, "{}", String::from_utf8_lossy(j));
        }
    }
}
