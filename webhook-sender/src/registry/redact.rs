//! Redaction markers and field-level differences between two [`EndpointSpec`]s.
//!
//! A secret is replaced by `<redacted:sha256:` + the first 8 hex digits of the SHA-256 of its
//! value + `>`: an audit reader sees that a secret changed (a rotation) without learning it.
//! Eight hex digits (32 bits) cannot be reversed, but a guessable secret (a dictionary password)
//! can be confirmed against its marker: keep audit trails as private as the logs they sit with.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::spec::{AuthSpec, EndpointSpec};

/// The beginning of every redaction marker (`<redacted:sha256:1a2b3c4d>`). A spec whose secret
/// starts with it is refused by [`EndpointSpec::to_config`].
pub const REDACTED_PREFIX: &str = "<redacted:";

/// The marker of `secret`.
pub(crate) fn marker(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(8);
    for b in &digest[..4] {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("{REDACTED_PREFIX}sha256:{hex}>")
}

/// One field that differs between two specs, for an audit trail. Values are rendered as text,
/// secrets as their redaction markers; `None` is "absent".
///
/// Field paths: `url`, `tenant`, `event_sets`, `auth` (the method changed), `auth.token`,
/// `auth.keys`, `headers.<lower-case name>`, `batching.max_events`, `retry` (the kind changed),
/// `retry.delays_ms`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FieldChange {
    /// The field's path.
    pub field: String,
    /// The value before, rendered.
    pub old: Option<String>,
    /// The value after, rendered.
    pub new: Option<String>,
}

impl FieldChange {
    /// A change of `field` from `old` to `new` (values already rendered and redacted).
    pub fn new(field: impl Into<String>, old: Option<String>, new: Option<String>) -> Self {
        Self {
            field: field.into(),
            old,
            new,
        }
    }
}

impl EndpointSpec {
    /// A copy with every secret replaced by its marker: the Basic password, the Bearer token,
    /// the header-auth value, the signature keys' secrets, an inline private key PEM, and the
    /// values of custom headers whose name looks secret ([`HeaderSpec::is_sensitive`]).
    ///
    /// ```
    /// use webhook_sender::registry::{AuthSpec, EndpointSpec};
    ///
    /// let mut spec = EndpointSpec::new("acme", "https://hooks.acme.example/in");
    /// spec.auth = AuthSpec::Bearer { token: "s3cr3t".into() };
    /// let json = serde_json::to_string(&spec.redacted()).unwrap();
    /// assert!(!json.contains("s3cr3t"));
    /// assert!(json.contains("<redacted:sha256:"));
    /// ```
    ///
    /// [`HeaderSpec::is_sensitive`]: super::HeaderSpec::is_sensitive
    #[must_use]
    pub fn redacted(&self) -> Self {
        let mut out = self.clone();
        match &mut out.auth {
            AuthSpec::None => {}
            AuthSpec::Basic { password, .. } => *password = marker(password),
            AuthSpec::Bearer { token } => *token = marker(token),
            AuthSpec::Header { value, .. } => *value = marker(value),
            AuthSpec::Signature { keys, .. } => {
                for k in keys {
                    k.secret = marker(&k.secret);
                }
            }
            AuthSpec::ClientCertificate(c) => {
                if let Some(key) = &mut c.key_pem {
                    *key = marker(key);
                }
            }
        }
        for h in &mut out.headers {
            if h.is_sensitive() {
                h.value = marker(&h.value);
            }
        }
        out
    }

    /// The fields that differ from `self` to `new`, rendered redacted, sorted by field path.
    ///
    /// ```
    /// use webhook_sender::registry::{AuthSpec, EndpointSpec, HeaderSpec};
    ///
    /// let old = EndpointSpec::new("acme", "https://hooks.acme.example/in");
    /// let mut new = old.clone();
    /// new.url = "https://hooks.acme.example/v2".into();
    /// new.auth = AuthSpec::Bearer { token: "s3cr3t".into() };
    /// new.headers.push(HeaderSpec::new("X-Team", "blue"));
    /// let changes = old.changes(&new);
    /// let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
    /// assert_eq!(fields, ["auth", "headers.x-team", "url"]);
    /// assert!(!format!("{changes:?}").contains("s3cr3t"));
    /// ```
    #[must_use]
    pub fn changes(&self, new: &Self) -> Vec<FieldChange> {
        let old = to_value(&self.redacted());
        let new = to_value(&new.redacted());
        let mut out = Vec::new();
        diff_object("", &old, &new, &mut out);
        out.sort_by(|a, b| a.field.cmp(&b.field));
        out
    }
}

fn to_value(spec: &EndpointSpec) -> Value {
    // Serializing these types cannot fail (no maps with non-string keys, no custom impls).
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn push(field: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    if old != new {
        out.push(FieldChange {
            field,
            old: old.map(render),
            new: new.map(render),
        });
    }
}

/// Keys of `old`, then those only `new` has.
fn keys<'a>(old: Option<&'a Value>, new: Option<&'a Value>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = Vec::new();
    for v in [old, new].into_iter().flatten() {
        if let Value::Object(m) = v {
            for k in m.keys() {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
    }
    keys
}

fn diff_object(prefix: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    for key in keys(Some(old), Some(new)) {
        let (o, n) = (old.get(key), new.get(key));
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        match (o, n) {
            _ if o == n => {}
            // Headers: one change per header name (case-insensitive, as HTTP).
            _ if prefix.is_empty() && key == "headers" => diff_headers(o, n, out),
            // A tagged enum whose kind changed is one change of the whole; same kind: by field.
            (Some(Value::Object(a)), Some(Value::Object(b))) if a.get("type") != b.get("type") => {
                push(path, o, n, out);
            }
            (Some(Value::Object(_)), Some(Value::Object(_))) => {
                diff_object(
                    &path,
                    o.unwrap_or(&Value::Null),
                    n.unwrap_or(&Value::Null),
                    out,
                );
            }
            _ => push(path, o, n, out),
        }
    }
}

fn diff_headers(old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    let list = |v: Option<&Value>| -> Vec<(String, Value)> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|h| {
                        let name = h.get("name")?.as_str()?.to_ascii_lowercase();
                        Some((name, h.get("value").cloned().unwrap_or(Value::Null)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (list(old), list(new));
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in old.iter().chain(&new) {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    for name in names {
        let value = |l: &[(String, Value)]| {
            let vals: Vec<&Value> = l
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v)
                .collect();
            match vals.as_slice() {
                [] => None,
                [one] => Some((*one).clone()),
                many => Some(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
            }
        };
        push(
            format!("headers.{name}"),
            value(&old).as_ref(),
            value(&new).as_ref(),
            out,
        );
    }
}
