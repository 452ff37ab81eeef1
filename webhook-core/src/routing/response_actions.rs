//! Response actions (Safous "API response actions"): rules over a JSON or JSONP response that
//! allow or deny.
//!
//! Each rule is (decision, key, condition): `key` is a dotted path (`data.user.groups.0`, a
//! numeric segment indexes an array), the condition is equals / not-equals / exists / contains.
//! Rules are evaluated in order; the first that holds decides. When none holds, the configured
//! default decides. The result says which rule decided.

use serde_json::Value;

const DEFAULT_MAX_BODY: usize = ResponseActions::DEFAULT_MAX_BODY;

/// Allow or deny: the outcome of [`ResponseActions`], and the `decision` of a Safous answer
/// (`webhook_payloads::safous::SafousDecision`). Serialized in lowercase.
///
/// ```
/// use webhook_core::Decision;
/// assert_eq!(serde_json::to_string(&Decision::Deny)?, r#""deny""#);
/// assert_eq!(serde_json::from_str::<Decision>(r#""allow""#)?, Decision::Allow);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Grant access / accept.
    Allow,
    /// Refuse.
    Deny,
}

/// Body format of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Plain JSON.
    Json,
    /// JSONP: `callback({...})` with optional trailing `;`.
    Jsonp,
    /// JSONP if the body starts with an identifier followed by `(`, else JSON (default).
    #[default]
    Auto,
}

/// A condition on the value at a rule's key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// The value equals this text: a JSON string by content; a number, boolean or null by its
    /// JSON spelling (`"1"` equals `1` and `1.0`, `"true"` equals `true`).
    Equals(String),
    /// The key is absent or its value does not equal this text.
    NotEquals(String),
    /// The key is present (even if `null`).
    Exists,
    /// A string containing this text, an array with an element equal to it, or an object with
    /// this key.
    Contains(String),
}

/// Errors building or evaluating response actions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// A rule key is empty or has an empty segment (`a..b`).
    #[error("rule {index}: invalid key path {key:?}")]
    InvalidKey {
        /// Rule position.
        index: usize,
        /// The key.
        key: String,
    },
    /// The body is larger than the configured maximum.
    #[error("response body of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Body length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The body is not JSON.
    #[error("response body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The body is not `callback(...)` JSONP.
    #[error("response body is not JSONP (expected callback(...))")]
    InvalidJsonp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(Box<str>),
    /// A numeric segment: an array index, or an object key with these digits.
    Index(usize, Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    decision: Decision,
    key: Box<str>,
    path: Box<[Segment]>,
    condition: Condition,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// Allow or deny.
    pub decision: Decision,
    /// Index of the rule that decided, `None` when the default applied.
    pub rule: Option<usize>,
}

/// Builder for [`ResponseActions`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ResponseActionsBuilder {
    rules: Vec<(Decision, String, Condition)>,
    default: Decision,
    format: ResponseFormat,
    max_body: usize,
}

impl ResponseActionsBuilder {
    /// Adds a rule: if `condition` holds for the value at `key`, decide `decision`.
    pub fn rule(
        mut self,
        decision: Decision,
        key: impl Into<String>,
        condition: Condition,
    ) -> Self {
        self.rules.push((decision, key.into(), condition));
        self
    }

    /// Decision when no rule holds (default [`Decision::Deny`]).
    pub fn default_decision(mut self, decision: Decision) -> Self {
        self.default = decision;
        self
    }

    /// Body format (default [`ResponseFormat::Auto`]).
    pub fn format(mut self, format: ResponseFormat) -> Self {
        self.format = format;
        self
    }

    /// Largest body evaluated (default [`ResponseActions::DEFAULT_MAX_BODY`]).
    pub fn max_body(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// Compiles the rules.
    ///
    /// # Errors
    /// [`ResponseError::InvalidKey`] for an empty key or segment.
    pub fn build(self) -> Result<ResponseActions, ResponseError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, (decision, key, condition)) in self.rules.into_iter().enumerate() {
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(ResponseError::InvalidKey { index, key });
            }
            let path = key
                .split('.')
                .map(|s| match s.parse::<usize>() {
                    Ok(i) if s.bytes().all(|b| b.is_ascii_digit()) => Segment::Index(i, s.into()),
                    _ => Segment::Key(s.into()),
                })
                .collect();
            rules.push(Rule {
                decision,
                key: key.into_boxed_str(),
                path,
                condition,
            });
        }
        Ok(ResponseActions {
            rules,
            default: self.default,
            format: self.format,
            max_body: self.max_body,
        })
    }
}

/// Compiled response actions.
///
/// Each rule is (decision, key, condition): `key` is a dotted path (`data.user.groups.0`, a
/// numeric segment indexes an array), the condition is equals / not-equals / exists / contains.
/// Rules are evaluated in order; the first that holds decides. When none holds, the configured
/// default decides. The result says which rule decided.
///
/// ```
/// use webhook_core::{Condition, Decision, ResponseActions};
/// let actions = ResponseActions::builder()
///     .rule(Decision::Deny, "user.locked", Condition::Equals("true".into()))
///     .rule(Decision::Allow, "user.groups", Condition::Contains("vpn".into()))
///     .default_decision(Decision::Deny)
///     .build()?;
/// let e = actions.evaluate(br#"cb({"user":{"locked":false,"groups":["staff","vpn"]}});"#)?;
/// assert_eq!((e.decision, e.rule), (Decision::Allow, Some(1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResponseActions {
    rules: Vec<Rule>,
    default: Decision,
    format: ResponseFormat,
    max_body: usize,
}

impl ResponseActions {
    /// Largest response body evaluated by default (64 KiB).
    pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

    /// Starts a builder (no rules, default deny, auto format).
    pub fn builder() -> ResponseActionsBuilder {
        ResponseActionsBuilder {
            rules: Vec::new(),
            default: Decision::Deny,
            format: ResponseFormat::Auto,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The key of rule `index`, e.g. to log which rule decided.
    pub fn rule_key(&self, index: usize) -> Option<&str> {
        self.rules.get(index).map(|r| &*r.key)
    }

    /// Evaluates a response body.
    ///
    /// # Errors
    /// [`ResponseError::TooLarge`], [`ResponseError::InvalidJson`] or
    /// [`ResponseError::InvalidJsonp`]: the caller decides what an unreadable answer means
    /// (usually deny).
    pub fn evaluate(&self, body: &[u8]) -> Result<Evaluation, ResponseError> {
        if body.len() > self.max_body {
            return Err(ResponseError::TooLarge {
                len: body.len(),
                max: self.max_body,
            });
        }
        let json = match self.format {
            ResponseFormat::Json => body,
            ResponseFormat::Jsonp => strip_jsonp(body).ok_or(ResponseError::InvalidJsonp)?,
            ResponseFormat::Auto => strip_jsonp(body).unwrap_or(body),
        };
        let value: Value = serde_json::from_slice(json).map_err(ResponseError::InvalidJson)?;
        Ok(self.evaluate_value(&value))
    }

    /// Evaluates an already-parsed JSON value.
    pub fn evaluate_value(&self, value: &Value) -> Evaluation {
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.holds(value) {
                return Evaluation {
                    decision: rule.decision,
                    rule: Some(index),
                };
            }
        }
        Evaluation {
            decision: self.default,
            rule: None,
        }
    }
}

impl Rule {
    fn holds(&self, root: &Value) -> bool {
        let found = lookup(root, &self.path);
        match &self.condition {
            Condition::Exists => found.is_some(),
            Condition::Equals(want) => found.is_some_and(|v| value_equals(v, want)),
            Condition::NotEquals(want) => !found.is_some_and(|v| value_equals(v, want)),
            Condition::Contains(want) => found.is_some_and(|v| match v {
                Value::String(s) => s.contains(want.as_str()),
                Value::Array(items) => items.iter().any(|i| value_equals(i, want)),
                Value::Object(map) => map.contains_key(want.as_str()),
                Value::Null | Value::Bool(_) | Value::Number(_) => false,
            }),
        }
    }
}

fn lookup<'v>(root: &'v Value, path: &[Segment]) -> Option<&'v Value> {
    path.iter().try_fold(root, |v, seg| match (v, seg) {
        (Value::Array(items), Segment::Index(i, _)) => items.get(*i),
        (Value::Object(map), Segment::Key(k) | Segment::Index(_, k)) => map.get(&**k),
        _ => None,
    })
}

fn value_equals(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => want == if *b { "true" } else { "false" },
        Value::Null => want == "null",
        Value::Number(n) => match want.parse::<serde_json::Number>() {
            Ok(w) if w == *n => true,
            Ok(w) => matches!((w.as_f64(), n.as_f64()), (Some(a), Some(b)) if a == b),
            Err(_) => false,
        },
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Returns the JSON inside `ident(...)` (optional `;`, whitespace, `/**/` prefix), or `None`.
fn strip_jsonp(body: &[u8]) -> Option<&[u8]> {
    let mut s = body.trim_ascii();
    if let Some(rest) = s.strip_prefix(b"/**/") {
        s = rest.trim_ascii_start();
    }
    let ident_len = s
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.')))?;
    if ident_len == 0 || s.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let rest = s.get(ident_len..)?.trim_ascii_start().strip_prefix(b"(")?;
    let rest = rest.trim_ascii_end();
    let rest = rest.strip_suffix(b";").unwrap_or(rest).trim_ascii_end();
    rest.strip_suffix(b")")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonp_stripping() {
        assert_eq!(strip_jsonp(b" cb({\"a\":1}); "), Some(&b"{\"a\":1}"[..]));
        assert_eq!(strip_jsonp(b"/**/ jQuery_1.x ( [1] )"), Some(&b" [1] "[..]));
        assert_eq!(strip_jsonp(b"{\"a\":1}"), None);
        assert_eq!(strip_jsonp(b"1cb({})"), None);
        assert_eq!(strip_jsonp(b"cb({}"), None);
    }

    #[test]
    fn equality_rules() {
        let v: Value = serde_json::json!({"n": 1, "f": 1.0, "b": true, "z": null, "s": "x"});
        assert!(value_equals(&v["n"], "1"));
        assert!(value_equals(&v["n"], "1.0"));
        assert!(value_equals(&v["f"], "1"));
        assert!(value_equals(&v["b"], "true"));
        assert!(value_equals(&v["z"], "null"));
        assert!(!value_equals(&v["s"], "\"x\""));
        assert!(value_equals(&v["s"], "x"));
        assert!(!value_equals(&v["n"], "one"));
    }

    #[test]
    fn invalid_keys() {
        for key in ["", "a..b", ".a", "a."] {
            assert!(matches!(
                ResponseActions::builder()
                    .rule(Decision::Allow, key, Condition::Exists)
                    .build(),
                Err(ResponseError::InvalidKey { index: 0, .. })
            ));
        }
    }
}
