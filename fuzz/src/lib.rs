//! Shared pieces of the fuzz targets: how an input's bytes become a request.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Splits `data` as an HTTP message head and body: `name: value` lines (`\n` or `\r\n`) up to
/// the first empty line, then the body. Lines that are not valid headers are skipped, as a
/// server's parser would refuse them before the SDK sees them. Without an empty line the whole
/// input is headers and the body is empty.
pub fn headers_and_body(data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let mut rest = data;
    loop {
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        rest = tail;
        if line.is_empty() {
            return (headers, rest);
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = HeaderName::from_bytes(&line[..colon]);
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
        if rest.is_empty() {
            return (headers, rest);
        }
    }
}

/// Splits off the first byte (a selector) from the input.
pub fn selector(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}
