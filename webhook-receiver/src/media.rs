//! Media types the receiver accepts, parsed from `Content-Type`.

use http::HeaderValue;

/// A request body format the receiver can decode.
///
/// ```
/// use webhook_receiver::MediaType;
///
/// let ct = http::HeaderValue::from_static("application/json; charset=utf-8");
/// assert_eq!(MediaType::from_content_type(&ct), Some(MediaType::Json));
/// let ct = http::HeaderValue::from_static("application/x-ndjson");
/// assert_eq!(MediaType::from_content_type(&ct), Some(MediaType::NdJson));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaType {
    /// `application/json` (and `*/*+json` not listed below): one JSON object, or a JSON array
    /// of items.
    Json,
    /// Newline-delimited JSON: `application/x-ndjson`, `application/ndjson`,
    /// `application/jsonl`, `application/x-jsonlines`; one item per non-blank line.
    NdJson,
    /// A structured-mode CloudEvent: `application/cloudevents+json` (one JSON object).
    CloudEvents,
    /// A CloudEvents batch: `application/cloudevents-batch+json` (a JSON array).
    CloudEventsBatch,
    /// An HTML form, `application/x-www-form-urlencoded`: Slack slash commands and
    /// interactivity, GitHub's form content type. Verified over the raw bytes like any body,
    /// then decoded as the JSON of its `payload` field, or an object of its fields
    /// ([`form_json`](crate::form_json)).
    Form,
}

impl MediaType {
    /// Every media type, the receiver's default set.
    pub const ALL: [Self; 5] = [
        Self::Json,
        Self::NdJson,
        Self::CloudEvents,
        Self::CloudEventsBatch,
        Self::Form,
    ];

    /// Parses a `Content-Type` header value (parameters such as `charset` are ignored, case is
    /// not significant). `None` for a type the receiver cannot decode.
    pub fn from_content_type(value: &HeaderValue) -> Option<Self> {
        let s = value.to_str().ok()?;
        let essence = s.split(';').next()?.trim();
        let eq = |t: &str| essence.eq_ignore_ascii_case(t);
        if eq("application/json") || eq("text/json") {
            Some(Self::Json)
        } else if eq("application/x-ndjson")
            || eq("application/ndjson")
            || eq("application/jsonl")
            || eq("application/x-jsonlines")
            || eq("application/jsonlines")
        {
            Some(Self::NdJson)
        } else if eq("application/cloudevents+json") {
            Some(Self::CloudEvents)
        } else if eq("application/cloudevents-batch+json") {
            Some(Self::CloudEventsBatch)
        } else if eq("application/x-www-form-urlencoded") {
            Some(Self::Form)
        } else {
            None
        }
    }

    /// The canonical media type string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::NdJson => "application/x-ndjson",
            Self::CloudEvents => "application/cloudevents+json",
            Self::CloudEventsBatch => "application/cloudevents-batch+json",
            Self::Form => "application/x-www-form-urlencoded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &'static str) -> Option<MediaType> {
        MediaType::from_content_type(&HeaderValue::from_static(s))
    }

    #[test]
    fn parses_known_types_case_insensitively_with_params() {
        assert_eq!(
            parse("Application/JSON;charset=UTF-8"),
            Some(MediaType::Json)
        );
        assert_eq!(parse("application/ndjson"), Some(MediaType::NdJson));
        assert_eq!(parse("application/jsonl"), Some(MediaType::NdJson));
        assert_eq!(
            parse("application/cloudevents+json; charset=utf-8"),
            Some(MediaType::CloudEvents)
        );
        assert_eq!(
            parse("application/cloudevents-batch+json"),
            Some(MediaType::CloudEventsBatch)
        );
        assert_eq!(
            parse("application/x-www-form-urlencoded; charset=utf-8"),
            Some(MediaType::Form)
        );
    }

    #[test]
    fn refuses_unknown_types() {
        assert_eq!(parse("text/plain"), None);
        assert_eq!(parse("application/xml"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn canonical_strings_round_trip() {
        for m in MediaType::ALL {
            assert_eq!(parse(m.as_str()), Some(m));
        }
    }
}
