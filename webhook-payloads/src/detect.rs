//! [`detect()`]: recognize the payload family of a request from its content type, headers and
//! body, and parse it once into typed payloads.
//!
//! Order of evidence: CloudEvents binary mode (`ce-specversion` header), then the content type
//! (`application/cloudevents+json`, `application/cloudevents-batch+json`, NDJSON types), then the
//! framing of the body (object, array, NDJSON), then, per record, the keys present (a skim that
//! allocates nothing) with sender headers as hints (`User-Agent: SoverenWebhook/…`,
//! `x-soveren-signature`, `User-Agent: Falcosidekick`). Unrecognized JSON is returned as
//! [`Payload::Json`], never an error.

use http::HeaderMap;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::DecodeError;
use crate::alertmanager::AlertmanagerPayload;
use crate::cloudevents::{self, BATCH_CONTENT_TYPE, CloudEvent, STRUCTURED_CONTENT_TYPE};
use crate::connectsecure::{ConnectSecureAlert, repair_invalid_escapes};
use crate::decode::{Framing, Record, framing, record_error, split_records};
use crate::falco::FalcoEvent;
use crate::object::Key;
use crate::soveren::SoverenEvent;
use crate::standard::StandardWebhook;
use crate::sysdig::{self, SysdigEvent};

/// A payload family.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::{detect, Family};
/// let body = br#"{"type":"invoice.paid","timestamp":"2024-07-03T18:23:21Z","data":{}}"#;
/// assert_eq!(detect(None, &http::HeaderMap::new(), body)?.family(), Some(Family::StandardWebhooks));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// Sysdig Secure events.
    Sysdig,
    /// ConnectSecure alerts.
    ConnectSecure,
    /// Soveren events.
    Soveren,
    /// Falco / Falcosidekick events.
    Falco,
    /// Alertmanager notifications.
    Alertmanager,
    /// CloudEvents.
    CloudEvents,
    /// Standard Webhooks envelopes.
    StandardWebhooks,
    /// JSON of no known family.
    Json,
}

/// One parsed record.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::{detect, Family, Payload};
/// let found = detect(None, &http::HeaderMap::new(), br#"{"hello":"world"}"#)?;
/// let owned: Vec<Payload<'static>> = found.payloads.into_iter().map(Payload::into_owned).collect();
/// assert_eq!(owned[0].family(), Family::Json);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Payload<'a> {
    /// A Sysdig event.
    Sysdig(SysdigEvent<'a>),
    /// A ConnectSecure alert.
    ConnectSecure(Box<ConnectSecureAlert>),
    /// A Soveren event.
    Soveren(Box<SoverenEvent>),
    /// A Falco event.
    Falco(Box<FalcoEvent>),
    /// An Alertmanager notification.
    Alertmanager(Box<AlertmanagerPayload>),
    /// A CloudEvent.
    CloudEvent(Box<CloudEvent>),
    /// A Standard Webhooks envelope.
    StandardWebhook(Box<StandardWebhook>),
    /// Any other JSON.
    Json(Value),
}

impl<'a> Payload<'a> {
    /// The family of this payload.
    pub fn family(&self) -> Family {
        match self {
            Self::Sysdig(_) => Family::Sysdig,
            Self::ConnectSecure(_) => Family::ConnectSecure,
            Self::Soveren(_) => Family::Soveren,
            Self::Falco(_) => Family::Falco,
            Self::Alertmanager(_) => Family::Alertmanager,
            Self::CloudEvent(_) => Family::CloudEvents,
            Self::StandardWebhook(_) => Family::StandardWebhooks,
            Self::Json(_) => Family::Json,
        }
    }

    /// Detaches the payload from the body it borrows.
    pub fn into_owned(self) -> Payload<'static> {
        match self {
            Self::Sysdig(e) => Payload::Sysdig(e.into_owned()),
            Self::ConnectSecure(e) => Payload::ConnectSecure(e),
            Self::Soveren(e) => Payload::Soveren(e),
            Self::Falco(e) => Payload::Falco(e),
            Self::Alertmanager(e) => Payload::Alertmanager(e),
            Self::CloudEvent(e) => Payload::CloudEvent(e),
            Self::StandardWebhook(e) => Payload::StandardWebhook(e),
            Self::Json(v) => Payload::Json(v),
        }
    }
}

/// What [`detect()`] found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Detected<'a> {
    /// How the body was framed (a binary-mode CloudEvent is [`Framing::Object`]).
    pub framing: Framing,
    /// The records, in body order.
    pub payloads: Vec<Payload<'a>>,
}

impl Detected<'_> {
    /// The family shared by every record; `None` when empty or mixed.
    pub fn family(&self) -> Option<Family> {
        let first = self.payloads.first()?.family();
        self.payloads
            .iter()
            .all(|p| p.family() == first)
            .then_some(first)
    }
}

/// Recognizes the family of a request body and parses it once. Sysdig events borrow from
/// `body`; [`Payload::into_owned`] detaches them.
///
/// # Errors
///
/// [`DecodeError::Empty`] / [`DecodeError::Syntax`] (HTTP 400) when the body is not JSON;
/// [`DecodeError::Shape`] / [`DecodeError::CloudEventHeader`] (HTTP 422) when it is recognized
/// but does not fit (e.g. a Sysdig event whose `timestamp` is not an integer, a structured
/// CloudEvent without `id`). NDJSON errors name the 1-based line.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use webhook_payloads::{detect, Family, Framing};
/// let body = concat!(
///     r#"{"id":"a","type":"policy","timestamp":1720031001639981110,"severity":7}"#, "\n",
///     r#"{"id":"b","type":"command","timestamp":1720026578020799700}"#, "\n",
/// );
/// let found = detect(None, &http::HeaderMap::new(), body.as_bytes())?;
/// assert_eq!(found.framing, Framing::Ndjson);
/// assert_eq!(found.family(), Some(Family::Sysdig));
///
/// let cs = br#"{"subject":"Asset Ports","body":"Open Port 443 Discovered for Asset 192.168.1.100"}"#;
/// assert_eq!(detect(Some("application/json"), &http::HeaderMap::new(), cs)?.family(),
///     Some(Family::ConnectSecure));
/// # Ok(()) }
/// ```
pub fn detect<'a>(
    content_type: Option<&str>,
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<Detected<'a>, DecodeError> {
    if cloudevents::is_binary_mode(headers) {
        let ev = CloudEvent::from_binary(headers, body)?;
        return Ok(Detected {
            framing: Framing::Object,
            payloads: vec![Payload::CloudEvent(Box::new(ev))],
        });
    }
    let ct = content_type.map(str::to_owned).or_else(|| {
        headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    });
    let essence = ct.as_deref().map(cloudevents::essence);
    if essence.as_deref() == Some(STRUCTURED_CONTENT_TYPE) {
        let ev: CloudEvent = crate::decode_object(body)?;
        return Ok(Detected {
            framing: Framing::Object,
            payloads: vec![Payload::CloudEvent(Box::new(ev))],
        });
    }
    if essence.as_deref() == Some(BATCH_CONTENT_TYPE) {
        let evs: Vec<CloudEvent> = crate::decode_array(body)?;
        return Ok(Detected {
            framing: Framing::Array,
            payloads: evs
                .into_iter()
                .map(|e| Payload::CloudEvent(Box::new(e)))
                .collect(),
        });
    }
    let hint = hint_of(headers);
    let f = framing(ct.as_deref(), body);
    let records = split_records(body, f)?;
    let mut payloads = Vec::with_capacity(records.len());
    for rec in records {
        match parse_one(body, rec, hint) {
            Ok(p) => payloads.push(p),
            // ConnectSecure's documented example has an invalid `\ ` escape: retry once.
            Err(e) if e.is_malformed() && f == Framing::Object => {
                let repaired = repair_invalid_escapes(rec.bytes);
                let fixed = Record {
                    bytes: &repaired,
                    offset: 0,
                };
                match probe(fixed.bytes) {
                    Ok(Some(p)) if classify(&p, hint) == Family::ConnectSecure => {
                        let alert: ConnectSecureAlert =
                            crate::decode::from_json(&repaired).map_err(|_| e)?;
                        payloads.push(Payload::ConnectSecure(Box::new(alert)));
                    }
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Detected {
        framing: f,
        payloads,
    })
}

fn hint_of(headers: &HeaderMap) -> Option<Family> {
    let ua = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ua.starts_with("soverenwebhook") || headers.contains_key("x-soveren-signature") {
        Some(Family::Soveren)
    } else if ua.starts_with("falcosidekick") {
        Some(Family::Falco)
    } else {
        None
    }
}

fn parse_one<'a>(
    body: &[u8],
    rec: Record<'a>,
    hint: Option<Family>,
) -> Result<Payload<'a>, DecodeError> {
    let Some(p) = probe(rec.bytes).map_err(|e| record_error(body, rec, &e))? else {
        let v: Value =
            crate::decode::from_json(rec.bytes).map_err(|e| record_error(body, rec, &e))?;
        return Ok(Payload::Json(v));
    };
    let err = |e: serde_json::Error| record_error(body, rec, &e);
    Ok(match classify(&p, hint) {
        Family::Sysdig => Payload::Sysdig(sysdig::parse_record(body, rec)?),
        Family::ConnectSecure => {
            Payload::ConnectSecure(crate::decode::from_json(rec.bytes).map_err(err)?)
        }
        Family::Soveren => Payload::Soveren(crate::decode::from_json(rec.bytes).map_err(err)?),
        Family::Falco => Payload::Falco(crate::decode::from_json(rec.bytes).map_err(err)?),
        Family::Alertmanager => {
            Payload::Alertmanager(crate::decode::from_json(rec.bytes).map_err(err)?)
        }
        Family::CloudEvents => {
            Payload::CloudEvent(crate::decode::from_json(rec.bytes).map_err(err)?)
        }
        Family::StandardWebhooks => {
            Payload::StandardWebhook(crate::decode::from_json(rec.bytes).map_err(err)?)
        }
        Family::Json => Payload::Json(crate::decode::from_json(rec.bytes).map_err(err)?),
    })
}

/// Which keys an object has (and what kind of value `timestamp` is).
#[derive(Default)]
struct Keys {
    bits: u32,
}

const K: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "body",
    "groupKey",
    "alerts",
    "rule",
    "priority",
    "output",
    "output_fields",
    "event_link",
    "sensitivity",
    "event_type",
    "category",
    "data",
    "timestampRFC3339Nano",
    "timestampNs",
    "uuid",
];
const TS_NUM: u32 = 1 << 30;
const TS_STR: u32 = 1 << 29;

impl Keys {
    fn has(&self, name: &str) -> bool {
        K.iter()
            .position(|k| *k == name)
            .is_some_and(|i| self.bits & (1 << i) != 0)
    }
}

enum TsKind {
    Num,
    Str,
    Other,
}

impl<'de> Deserialize<'de> for TsKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TsKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TsKind, E> {
                Ok(TsKind::Num)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TsKind, E> {
                Ok(TsKind::Num)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TsKind, E> {
                Ok(TsKind::Num)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<TsKind, E> {
                Ok(TsKind::Str)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TsKind, E> {
                Ok(TsKind::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<TsKind, E> {
                Ok(TsKind::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<TsKind, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TsKind::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TsKind, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TsKind::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Keys::default();
                while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
                    if k == "timestamp" {
                        keys.bits |= match m.next_value::<TsKind>()? {
                            TsKind::Num => TS_NUM,
                            TsKind::Str => TS_STR,
                            TsKind::Other => 0,
                        };
                        continue;
                    }
                    if let Some(i) = K.iter().position(|n| *n == k) {
                        keys.bits |= 1 << i;
                    }
                    m.next_value::<IgnoredAny>()?;
                }
                Ok(keys)
            }
        }
        d.deserialize_map(V)
    }
}

/// Skims a record: `None` when it is not an object.
fn probe(bytes: &[u8]) -> Result<Option<Keys>, serde_json::Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Ok(None);
    }
    crate::decode::from_json(bytes).map(Some)
}

fn classify(k: &Keys, hint: Option<Family>) -> Family {
    if k.has("specversion") && k.has("id") && k.has("source") && k.has("type") {
        Family::CloudEvents
    } else if let Some(h) = hint {
        h
    } else if k.has("groupKey") && k.has("alerts") {
        Family::Alertmanager
    } else if k.has("subject") && k.has("body") {
        Family::ConnectSecure
    } else if k.has("event_link")
        || (k.has("sensitivity") && (k.has("event_type") || k.has("category")))
    {
        Family::Soveren
    } else if k.has("rule") && k.has("priority") && (k.has("output") || k.has("output_fields")) {
        Family::Falco
    } else if k.has("timestampRFC3339Nano")
        || k.has("timestampNs")
        || (k.has("id") && k.has("type") && k.bits & TS_NUM != 0)
        || (k.has("id") && k.has("type") && k.bits & TS_STR != 0 && !k.has("data"))
    {
        Family::Sysdig
    } else if k.has("type") && k.has("data") && k.bits & TS_STR != 0 {
        Family::StandardWebhooks
    } else {
        Family::Json
    }
}
