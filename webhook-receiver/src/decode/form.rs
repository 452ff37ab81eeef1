//! `application/x-www-form-urlencoded` bodies, as JSON for the decoders: Slack slash commands
//! (fields), Slack interactivity and GitHub's form content type (a `payload` field holding the
//! JSON document).
//!
//! The signature is always checked over the raw form bytes (the intake authenticates before any
//! decoding); [`form_json`] only turns the verified form into the JSON the decoders read.

use bytes::Bytes;

use super::BodyDecodeError;

/// The JSON document a form body stands for: the value of its `payload` field when it has one
/// (Slack interactivity, GitHub webhooks with content type `application/x-www-form-urlencoded`),
/// otherwise an object of its fields as strings (Slack slash commands:
/// `{"command":"/weather","text":"94070",...}`).
///
/// `+` is a space and `%XX` a byte, as in HTML forms; the decoded names and values must be
/// UTF-8. A malformed escape or non-UTF-8 text is [`BodyDecodeError::Form`] (`400`); a field
/// given twice is refused too (`400`), since keeping either value would silently drop the
/// other.
///
/// ```
/// use webhook_receiver::form_json;
///
/// let slash = form_json(b"command=%2Fweather&text=94070&user_name=Steve+Jobs")?;
/// let v: serde_json::Value = serde_json::from_slice(&slash)?;
/// assert_eq!(v["command"], "/weather");
/// assert_eq!(v["user_name"], "Steve Jobs");
///
/// let interactive = form_json(b"payload=%7B%22type%22%3A%22block_actions%22%7D")?;
/// assert_eq!(&interactive[..], br#"{"type":"block_actions"}"#);
/// assert!(form_json(b"text=%zz").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`BodyDecodeError::Form`] for a body that is not a valid form.
pub fn form_json(body: &[u8]) -> Result<Bytes, BodyDecodeError> {
    let mut fields = serde_json::Map::new();
    let mut payload = None;
    for pair in body.trim_ascii().split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = unescape(name)?;
        let value = unescape(value)?;
        if name == "payload" {
            if payload.replace(value).is_some() {
                return Err(twice(&name));
            }
        } else if fields
            .insert(name.clone(), serde_json::Value::String(value))
            .is_some()
        {
            return Err(twice(&name));
        }
    }
    match payload {
        Some(json) => Ok(Bytes::from(json)),
        None => serde_json::to_vec(&fields)
            .map(Bytes::from)
            .map_err(|e| BodyDecodeError::Form {
                message: e.to_string(),
            }),
    }
}

fn twice(name: &str) -> BodyDecodeError {
    let mut shown: String = name.chars().take(40).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    BodyDecodeError::Form {
        message: format!("form field {shown:?} appears more than once"),
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn unescape(text: &[u8]) -> Result<String, BodyDecodeError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |at: usize| text.get(at).and_then(|c| char::from(*c).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        return Err(BodyDecodeError::Form {
                            message: format!("invalid percent escape at byte {i} of a field"),
                        });
                    }
                }
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| BodyDecodeError::Form {
        message: "a form field is not UTF-8 text".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_payload_and_errors() {
        let v: serde_json::Value =
            serde_json::from_slice(&form_json(b"a=1&b=&c&d=%C3%A9%20x+y&").unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": "1", "b": "", "c": "", "d": "é x y"})
        );
        assert_eq!(&form_json(b"").unwrap()[..], b"{}");
        // the payload wins over the other fields (GitHub sends only it; Slack too)
        assert_eq!(&form_json(b"x=1&payload=%5B1%5D").unwrap()[..], b"[1]");
        for bad in [
            &b"a=%4"[..],
            b"a=%g0",
            b"a=%ff",
            b"a=1&a=2",
            b"payload=1&payload=2",
        ] {
            let e = form_json(bad).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
