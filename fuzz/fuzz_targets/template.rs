//! `%param%` templates (URL, header and JSON body contexts) compiled from random sources and
//! rendered with random values, and Safous response actions built from random rules and
//! evaluated over random responses.
//!
//! Escaping is checked by comparison with a render whose every value is `x`: in a URL, values
//! add no `&`, `#`, `?`, `/`, `=`, space or non-ASCII byte; a JSON body that is valid JSON with
//! `x` stays valid JSON with any value; a header value is refused rather than rendered with a
//! control byte.
//!
//! Input: a selector byte, then lines: the template source, the value every parameter takes,
//! the rules (`;`-separated `allow|deny key op [text]`, op one of `= != ? ~`), and the response.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use webhook_core::{
    Condition, Decision, OnMissing, ParamSet, ResponseActions, ResponseFormat, TemplateBuilder,
    TemplateContext, TemplateParams,
};

/// Every parameter and header has the same value.
struct All<'a>(&'a str);

impl TemplateParams for All<'_> {
    fn param(&self, _name: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0))
    }
    fn header(&self, _name: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0))
    }
}

/// No value at all.
struct Nothing;

impl TemplateParams for Nothing {
    fn param(&self, _name: &str) -> Option<Cow<'_, str>> {
        None
    }
    fn header(&self, _name: &str) -> Option<Cow<'_, str>> {
        None
    }
}

fn count(s: &str, c: char) -> usize {
    s.chars().filter(|&x| x == c).count()
}

fn templates(sel: u8, src: &str, value: &str) {
    let context = match sel % 3 {
        0 => TemplateContext::Url,
        1 => TemplateContext::Header,
        _ => TemplateContext::JsonBody,
    };
    let on_missing = if sel & 0x40 != 0 {
        OnMissing::Empty
    } else {
        OnMissing::Error
    };
    let params = if sel & 0x80 != 0 {
        ParamSet::empty().with("tenant")
    } else {
        ParamSet::safous()
    };
    let Ok(t) = TemplateBuilder::new(context)
        .params(params)
        .on_missing(on_missing)
        .build(src)
    else {
        return;
    };
    let _ = t.placeholders().count();
    let _ = t.render(&Nothing);
    let Ok(plain) = t.render(&All("x")) else {
        return;
    };
    let Ok(out) = t.render(&All(value)) else {
        return;
    };
    match context {
        TemplateContext::Url => {
            for c in ['&', '#', '?', '/', '=', ' ', '\n'] {
                assert_eq!(
                    count(&out, c),
                    count(&plain, c),
                    "a value added {c:?}: {out}"
                );
            }
            let non_ascii = |s: &str| s.chars().filter(|c| !c.is_ascii()).count();
            assert_eq!(
                non_ascii(&out),
                non_ascii(&plain),
                "a value added non-ASCII: {out}"
            );
        }
        TemplateContext::Header => {
            assert!(
                !out.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)),
                "a header value with CR, LF or NUL: {out:?}"
            );
            if http::HeaderValue::from_str(&plain).is_ok() {
                assert!(
                    http::HeaderValue::from_str(&out).is_ok(),
                    "rendered header value invalid: {out:?}"
                );
            }
        }
        _ => {
            if serde_json::from_str::<serde_json::Value>(&plain).is_ok() {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&out) {
                    panic!("a value broke the JSON body ({e}): {out}");
                }
            }
        }
    }
}

fn actions(sel: u8, rules: &str, body: &str) {
    let format = match sel % 3 {
        0 => ResponseFormat::Json,
        1 => ResponseFormat::Jsonp,
        _ => ResponseFormat::Auto,
    };
    let mut b = ResponseActions::builder()
        .format(format)
        .max_body(4096)
        .default_decision(if sel & 0x10 != 0 {
            Decision::Allow
        } else {
            Decision::Deny
        });
    for rule in rules.split(';') {
        let mut words = rule.trim().splitn(4, ' ');
        let decision = match words.next() {
            Some("allow") => Decision::Allow,
            _ => Decision::Deny,
        };
        let key = words.next().unwrap_or_default();
        let text = words.clone().nth(1).unwrap_or_default().to_owned();
        let condition = match words.next() {
            Some("=") => Condition::Equals(text),
            Some("!=") => Condition::NotEquals(text),
            Some("~") => Condition::Contains(text),
            _ => Condition::Exists,
        };
        b = b.rule(decision, key, condition);
    }
    let Ok(actions) = b.build() else {
        return;
    };
    let first = actions.evaluate(body.as_bytes());
    if let Ok(e) = &first {
        if let Some(i) = e.rule {
            assert!(
                actions.rule_key(i).is_some(),
                "decided by a rule that is not there"
            );
        }
    }
    // Plain JSON is evaluated as its value.
    if format == ResponseFormat::Json {
        if let (Ok(v), Ok(e)) = (serde_json::from_str(body), &first) {
            assert_eq!(
                actions.evaluate_value(&v),
                *e,
                "evaluate and evaluate_value differ"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((sel, rest)) = webhook_fuzz::selector(data) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = text.splitn(4, '\n');
    let src = lines.next().unwrap_or_default();
    // `\n`, `\r` and `\0` written out stand for the bytes (a line cannot hold them).
    let value = lines
        .next()
        .unwrap_or_default()
        .replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\0", "\0");
    let rules = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();
    templates(sel, src, &value);
    actions(sel, rules, body);
});
