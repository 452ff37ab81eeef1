//! `%param%` templates for URLs, headers and JSON bodies (Safous webhook rules), compiled once.
//!
//! A placeholder is `%name%` where `name` is a known parameter (the Safous list by default,
//! [`ParamSet`]) or `headers.Header-Name` (the value of a request header). `%%` is a literal
//! `%`. A `%`-delimited word that looks like a parameter but is unknown is an error when the
//! template is built, so typos are caught before the first request. Other `%` characters are
//! literal; in a URL, `%XX` with two hex digits stays a percent-escape unless `XX...` is a known
//! parameter.
//!
//! Values are escaped for where they land ([`TemplateContext`]): percent-encoded in a URL,
//! JSON-string-escaped in a JSON body (placeholders must sit inside a JSON string literal), and
//! refused with a typed error in a header if they contain CR, LF, NUL or another control byte.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::BuildHasher;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters percent-encoded in URL values: everything but RFC 3986 unreserved characters.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const SAFOUS_PARAMS: &[&str] = &[
    "username",
    "internal_addr",
    "user_agent",
    "remote_ip",
    "cert_thumbprint",
    "cert_thumbprint_upper",
    "cert_thumbprint_256",
    "cert_thumbprint_256_upper",
    "cert_name",
    "cert_alt_name",
    "device_id",
    "groups",
    "group_names",
];

/// Where a template is rendered; decides escaping and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TemplateContext {
    /// A URL: values are percent-encoded (`&`, `/`, `#`, `?`, `%`, space ... cannot escape).
    Url,
    /// A header value: values containing CR, LF, NUL or other control bytes are refused.
    Header,
    /// A JSON body: placeholders must be inside string literals; values are JSON-escaped.
    JsonBody,
}

/// The set of known parameter names.
///
/// ```
/// use webhook_core::ParamSet;
/// let set = ParamSet::safous().with("tenant");
/// assert!(set.contains("username") && set.contains("tenant"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSet {
    names: Vec<Box<str>>,
}

impl Default for ParamSet {
    fn default() -> Self {
        Self::safous()
    }
}

impl ParamSet {
    /// The parameters Safous documents (seed 004), besides `headers.*`.
    pub const SAFOUS_PARAMS: &'static [&'static str] = SAFOUS_PARAMS;

    /// The Safous list ([`ParamSet::SAFOUS_PARAMS`]).
    pub fn safous() -> Self {
        Self {
            names: SAFOUS_PARAMS.iter().map(|&n| n.into()).collect(),
        }
    }

    /// No parameter (only `headers.*`).
    pub fn empty() -> Self {
        Self { names: Vec::new() }
    }

    /// Adds a name.
    #[must_use]
    pub fn with(mut self, name: impl Into<Box<str>>) -> Self {
        let name = name.into();
        if !self.contains(&name) {
            self.names.push(name);
        }
        self
    }

    /// Whether `name` is known.
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| &**n == name)
    }
}

/// Where template values come from.
///
/// Implemented for `HashMap<String, String>` and `BTreeMap<String, String>` (headers under keys
/// `headers.Name`, looked up ASCII case-insensitively) and for [`WithHeaders`].
pub trait TemplateParams {
    /// The value of parameter `name` (e.g. `username`).
    fn param(&self, name: &str) -> Option<Cow<'_, str>>;
    /// The value of request header `name` (for `%headers.Name%`).
    fn header(&self, name: &str) -> Option<Cow<'_, str>>;
}

fn map_header<'a>(
    mut entries: impl Iterator<Item = (&'a String, &'a String)>,
    name: &str,
) -> Option<Cow<'a, str>> {
    entries
        .find(|(k, _)| {
            k.strip_prefix("headers.")
                .is_some_and(|h| h.eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| Cow::Borrowed(v.as_str()))
}

impl<S: BuildHasher> TemplateParams for HashMap<String, String, S> {
    fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(v) = self.get(&format!("headers.{name}")) {
            return Some(Cow::Borrowed(v.as_str()));
        }
        map_header(self.iter(), name)
    }
}

impl TemplateParams for BTreeMap<String, String> {
    fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        map_header(self.iter(), name)
    }
}

/// Parameters from `P` plus headers from an [`http::HeaderMap`] (e.g. the client's request).
///
/// ```
/// use std::collections::HashMap;
/// use webhook_core::{Template, TemplateContext, WithHeaders};
/// let mut headers = http::HeaderMap::new();
/// headers.insert("accept-language", "fr".parse()?);
/// let params: HashMap<String, String> = [("username".to_owned(), "ana".to_owned())].into();
/// let t = Template::build(TemplateContext::Header, "%username%; %headers.Accept-Language%")?;
/// assert_eq!(t.render(&WithHeaders { params: &params, headers: &headers })?, "ana; fr");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WithHeaders<'a, P: ?Sized> {
    /// Parameter source.
    pub params: &'a P,
    /// Header source.
    pub headers: &'a http::HeaderMap,
}

impl<P: TemplateParams + ?Sized> TemplateParams for WithHeaders<'_, P> {
    fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.params.param(name)
    }
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .or_else(|| self.params.header(name))
    }
}

/// What rendering does with a parameter that has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnMissing {
    /// Fail with [`RenderError::Missing`] (default).
    #[default]
    Error,
    /// Substitute an empty string.
    Empty,
}

/// Errors building a template.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `%name%` names no known parameter.
    #[error("unknown template parameter %{name}% at byte {position}")]
    UnknownParameter {
        /// The name between the `%`.
        name: String,
        /// Byte offset of the opening `%`.
        position: usize,
    },
    /// `%headers.%` with an empty or invalid header name.
    #[error("invalid header name in %headers.{name}% at byte {position}")]
    InvalidHeaderName {
        /// The header name.
        name: String,
        /// Byte offset of the opening `%`.
        position: usize,
    },
    /// A placeholder in a JSON body outside a string literal (its value could inject JSON).
    #[error("placeholder %{name}% at byte {position} must be inside a JSON string literal")]
    OutsideJsonString {
        /// The placeholder name.
        name: String,
        /// Byte offset of the opening `%`.
        position: usize,
    },
    /// The JSON body template is not valid JSON (checked with empty values).
    #[error("JSON body template is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// Literal text of a header or URL template contains a control byte.
    #[error("control byte 0x{byte:02x} at byte {position} in literal template text")]
    ControlByte {
        /// The byte.
        byte: u8,
        /// Its offset.
        position: usize,
    },
}

/// Errors rendering a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// No value for a placeholder (with [`OnMissing::Error`]).
    #[error("no value for template parameter %{name}%")]
    Missing {
        /// The placeholder name.
        name: String,
    },
    /// A header value would contain CR, LF, NUL or another control byte (header injection).
    #[error("value of %{name}% contains forbidden byte 0x{byte:02x} for a header")]
    ForbiddenHeaderByte {
        /// The placeholder name (never the value).
        name: String,
        /// The offending byte.
        byte: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Param(Box<str>),
    Header(Box<str>),
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn looks_like_param(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Builder for [`Template`].
///
/// ```
/// use webhook_core::{OnMissing, ParamSet, TemplateBuilder, TemplateContext};
/// let t = TemplateBuilder::new(TemplateContext::Url)
///     .params(ParamSet::safous().with("tenant"))
///     .on_missing(OnMissing::Empty)
///     .build("https://idp.example/check?t=%tenant%&u=%username%")?;
/// let values = std::collections::HashMap::from([("tenant".to_owned(), "a&b".to_owned())]);
/// assert_eq!(t.render(&values)?, "https://idp.example/check?t=a%26b&u=");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TemplateBuilder {
    context: TemplateContext,
    params: ParamSet,
    on_missing: OnMissing,
}

impl TemplateBuilder {
    /// A builder for `context` with the Safous parameters and [`OnMissing::Error`].
    pub fn new(context: TemplateContext) -> Self {
        Self {
            context,
            params: ParamSet::safous(),
            on_missing: OnMissing::Error,
        }
    }

    /// The known parameters.
    pub fn params(mut self, params: ParamSet) -> Self {
        self.params = params;
        self
    }

    /// Behaviour for missing values.
    pub fn on_missing(mut self, on_missing: OnMissing) -> Self {
        self.on_missing = on_missing;
        self
    }

    /// Compiles `src`.
    ///
    /// # Errors
    /// See [`TemplateError`].
    pub fn build(self, src: &str) -> Result<Template, TemplateError> {
        let parts = self.parse(src)?;
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.len(),
                Part::Param(_) | Part::Header(_) => 0,
            })
            .sum();
        let template = Template {
            context: self.context,
            parts,
            on_missing: self.on_missing,
            literal_len,
        };
        if self.context == TemplateContext::JsonBody {
            template.check_json(src)?;
        }
        Ok(template)
    }

    fn parse(&self, src: &str) -> Result<Vec<Part>, TemplateError> {
        let bytes = src.as_bytes();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        let mut lit_start = 0;
        while i < bytes.len() {
            let b = bytes.get(i).copied().unwrap_or(0);
            if b != b'%' {
                if self.context != TemplateContext::JsonBody
                    && (b < 0x20 && b != b'\t' || b == 0x7f)
                {
                    return Err(TemplateError::ControlByte {
                        byte: b,
                        position: i,
                    });
                }
                i += 1;
                continue;
            }
            // Flush the literal run before this '%'.
            literal.push_str(src.get(lit_start..i).unwrap_or_default());
            if bytes.get(i + 1) == Some(&b'%') {
                literal.push('%');
                i += 2;
                lit_start = i;
                continue;
            }
            let close = bytes
                .get(i + 1..)
                .and_then(|rest| rest.iter().position(|&c| c == b'%'))
                .map(|p| p + i + 1);
            let name = close.and_then(|c| src.get(i + 1..c));
            if let (Some(close), Some(name)) = (close, name) {
                if let Some(header) = name.strip_prefix("headers.") {
                    if header.is_empty() || !header.bytes().all(is_tchar) {
                        return Err(TemplateError::InvalidHeaderName {
                            name: header.to_owned(),
                            position: i,
                        });
                    }
                    push_literal(&mut parts, &mut literal);
                    parts.push(Part::Header(header.into()));
                    i = close + 1;
                    lit_start = i;
                    continue;
                }
                if self.params.contains(name) {
                    push_literal(&mut parts, &mut literal);
                    parts.push(Part::Param(name.into()));
                    i = close + 1;
                    lit_start = i;
                    continue;
                }
                let hex_escape = self.context == TemplateContext::Url
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !hex_escape && looks_like_param(name) {
                    return Err(TemplateError::UnknownParameter {
                        name: name.to_owned(),
                        position: i,
                    });
                }
            }
            // A literal '%'.
            literal.push('%');
            i += 1;
            lit_start = i;
        }
        literal.push_str(src.get(lit_start..).unwrap_or_default());
        push_literal(&mut parts, &mut literal);
        Ok(parts)
    }
}

fn push_literal(parts: &mut Vec<Part>, literal: &mut String) {
    if !literal.is_empty() {
        parts.push(Part::Literal(std::mem::take(literal).into_boxed_str()));
    }
}

/// A compiled template; render it many times.
///
/// A placeholder is `%name%` where `name` is a known parameter (the Safous list by default,
/// [`ParamSet`]) or `headers.Header-Name` (the value of a request header). `%%` is a literal
/// `%`. A `%`-delimited word that looks like a parameter but is unknown is an error when the
/// template is built, so typos are caught before the first request. Other `%` characters are
/// literal; in a URL, `%XX` with two hex digits stays a percent-escape unless `XX...` is a known
/// parameter.
///
/// Values are escaped for where they land ([`TemplateContext`]): percent-encoded in a URL,
/// JSON-string-escaped in a JSON body (placeholders must sit inside a JSON string literal), and
/// refused with a typed error in a header if they contain CR, LF, NUL or another control byte.
///
/// ```
/// use std::collections::HashMap;
/// use webhook_core::{Template, TemplateContext};
/// let body = Template::build(TemplateContext::JsonBody, r#"{"user":"%username%","ip":"%remote_ip%"}"#)?;
/// let values = HashMap::from([
///     ("username".to_owned(), "a\"b".to_owned()),
///     ("remote_ip".to_owned(), "203.0.113.9".to_owned()),
/// ]);
/// assert_eq!(body.render(&values)?, r#"{"user":"a\"b","ip":"203.0.113.9"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    context: TemplateContext,
    parts: Vec<Part>,
    on_missing: OnMissing,
    literal_len: usize,
}

impl Template {
    /// Compiles `src` for `context` with the Safous parameters and [`OnMissing::Error`].
    ///
    /// # Errors
    /// See [`TemplateError`].
    pub fn build(context: TemplateContext, src: &str) -> Result<Self, TemplateError> {
        TemplateBuilder::new(context).build(src)
    }

    /// The context it was compiled for.
    pub fn context(&self) -> TemplateContext {
        self.context
    }

    /// Placeholder names in order (`headers.Name` for headers).
    pub fn placeholders(&self) -> impl Iterator<Item = Cow<'_, str>> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Literal(_) => None,
            Part::Param(n) => Some(Cow::Borrowed(&**n)),
            Part::Header(h) => Some(Cow::Owned(format!("headers.{h}"))),
        })
    }

    /// Renders into a new string.
    ///
    /// # Errors
    /// See [`RenderError`].
    pub fn render<P: TemplateParams + ?Sized>(&self, params: &P) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.literal_len + 32);
        self.render_into(params, &mut out)?;
        Ok(out)
    }

    /// Appends the rendering to `out` (reuse a buffer across renders). On error `out` may hold a
    /// partial rendering.
    ///
    /// # Errors
    /// See [`RenderError`].
    pub fn render_into<P: TemplateParams + ?Sized>(
        &self,
        params: &P,
        out: &mut String,
    ) -> Result<(), RenderError> {
        for part in &self.parts {
            let (value, name) = match part {
                Part::Literal(l) => {
                    out.push_str(l);
                    continue;
                }
                Part::Param(n) => (params.param(n), Cow::Borrowed(&**n)),
                Part::Header(h) => (params.header(h), Cow::Owned(format!("headers.{h}"))),
            };
            let value = match (value, self.on_missing) {
                (Some(v), _) => v,
                (None, OnMissing::Empty) => Cow::Borrowed(""),
                (None, OnMissing::Error) => {
                    return Err(RenderError::Missing {
                        name: name.into_owned(),
                    });
                }
            };
            match self.context {
                TemplateContext::Url => out.extend(utf8_percent_encode(&value, URL_VALUE)),
                TemplateContext::Header => {
                    if let Some(byte) = value
                        .bytes()
                        .find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
                    {
                        return Err(RenderError::ForbiddenHeaderByte {
                            name: name.into_owned(),
                            byte,
                        });
                    }
                    out.push_str(&value);
                }
                TemplateContext::JsonBody => json_escape_into(&value, out),
            }
        }
        Ok(())
    }

    /// Checks that every placeholder sits inside a JSON string and the template is valid JSON.
    fn check_json(&self, src: &str) -> Result<(), TemplateError> {
        let mut in_string = false;
        let mut escaped = false;
        let mut skeleton = String::with_capacity(self.literal_len);
        for part in &self.parts {
            match part {
                Part::Literal(l) => {
                    for b in l.bytes() {
                        if in_string {
                            if escaped {
                                escaped = false;
                            } else if b == b'\\' {
                                escaped = true;
                            } else if b == b'"' {
                                in_string = false;
                            }
                        } else if b == b'"' {
                            in_string = true;
                        }
                    }
                    skeleton.push_str(l);
                }
                Part::Param(_) | Part::Header(_) => {
                    if !in_string || escaped {
                        let name = match part {
                            Part::Header(h) => format!("headers.{h}"),
                            Part::Param(n) | Part::Literal(n) => n.to_string(),
                        };
                        let needle = format!("%{name}%");
                        return Err(TemplateError::OutsideJsonString {
                            position: src.find(&needle).unwrap_or(0),
                            name,
                        });
                    }
                }
            }
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&skeleton)
            .map_err(TemplateError::InvalidJson)?;
        Ok(())
    }
}

/// Appends `value` JSON-string-escaped (without quotes).
fn json_escape_into(value: &str, out: &mut String) {
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(value.get(start..i).unwrap_or_default());
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(value.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escape_controls() {
        let mut s = String::new();
        json_escape_into("a\"\\\n\u{1}\u{7f}é", &mut s);
        assert_eq!(s, "a\\\"\\\\\\n\\u0001\\u007fé");
        let v: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(v, "a\"\\\n\u{1}\u{7f}é");
    }

    #[test]
    fn parse_rules() {
        let t = Template::build(TemplateContext::Header, "100% %%username%% %username%").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Literal("100% %username% ".into()),
                Part::Param("username".into())
            ]
        );
        assert!(matches!(
            Template::build(TemplateContext::Header, "%usrname%"),
            Err(TemplateError::UnknownParameter { position: 0, .. })
        ));
        // URL percent-escapes survive, known params still win over hex-looking names.
        let u = Template::build(TemplateContext::Url, "https://h/caf%C3%A9?x=%cert_name%").unwrap();
        assert_eq!(u.placeholders().collect::<Vec<_>>(), ["cert_name"]);
        assert!(matches!(
            Template::build(TemplateContext::Header, "%headers.%"),
            Err(TemplateError::InvalidHeaderName { .. })
        ));
        assert!(matches!(
            Template::build(TemplateContext::Header, "a\r\nb"),
            Err(TemplateError::ControlByte {
                byte: b'\r',
                position: 1
            })
        ));
    }
}
