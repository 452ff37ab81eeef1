//! Registration handshakes: the request a provider sends to a new endpoint, and the answer it
//! must get before it sends anything else.
//!
//! | handshake | preset | request body | answer (`200`, JSON) |
//! | --- | --- | --- | --- |
//! | [`Handshake::DiscordPing`] | [`Scheme::discord`](crate::Scheme) | an interaction with `"type": 1` (PING) | `{"type":1}` (PONG) |
//! | [`Handshake::SlackUrlVerification`] | [`Scheme::slack`](crate::Scheme::slack) | `{"type":"url_verification","challenge":"..."}` | `{"challenge":"..."}` |
//! | [`Handshake::ZoomUrlValidation`] | [`Scheme::zoom`](crate::Scheme::zoom) | `{"event":"endpoint.url_validation","payload":{"plainToken":"..."}}` | `{"plainToken":"...","encryptedToken":"<hex HMAC-SHA256 of plainToken, keyed with the secret token>"}` |
//!
//! Each handshake belongs to the scheme that needs it ([`Scheme::handshake`](crate::Scheme::handshake)),
//! and is answered only for a request whose signature verified:
//! [`Verifier::answer_handshake`](crate::Verifier::answer_handshake) takes the index of the key
//! that verified it (Zoom's answer is keyed with that key). Recognition is strict (exact field
//! values and types) and only looks at bodies of at most [`Handshake::MAX_BODY`] bytes, so
//! ordinary events are never mistaken for a handshake and large batches cost nothing.

use hmac::Mac;
use serde::Deserialize;

use super::codec;
use super::keys::{KeyState, LoadedKey};

/// A provider's registration handshake, answered by
/// [`Verifier::answer_handshake`](crate::Verifier::answer_handshake) for a request that verified.
///
/// | handshake | preset | request body | answer (`200`, JSON) |
/// | --- | --- | --- | --- |
/// | [`DiscordPing`](Self::DiscordPing) | `Scheme::discord` | an interaction with `"type": 1` (PING) | `{"type":1}` (PONG) |
/// | [`SlackUrlVerification`](Self::SlackUrlVerification) | [`Scheme::slack`](crate::Scheme::slack) | `{"type":"url_verification","challenge":"..."}` | `{"challenge":"..."}` |
/// | [`ZoomUrlValidation`](Self::ZoomUrlValidation) | [`Scheme::zoom`](crate::Scheme::zoom) | `{"event":"endpoint.url_validation","payload":{"plainToken":"..."}}` | `{"plainToken":"...","encryptedToken":"<hex HMAC-SHA256 of plainToken, keyed with the secret token>"}` |
///
/// Recognition is strict (exact field values and types) and only looks at bodies of at most
/// [`Handshake::MAX_BODY`] bytes, so ordinary events are never mistaken for a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Handshake {
    /// Discord interactions: a PING (`"type": 1`) is answered with a PONG, `{"type":1}`.
    DiscordPing,
    /// Slack Events API: `url_verification` is answered with its `challenge`.
    SlackUrlVerification,
    /// Zoom webhooks: `endpoint.url_validation` is answered with the `plainToken` and its hex
    /// HMAC-SHA256 under the secret token (`encryptedToken`).
    ZoomUrlValidation,
}

/// The answer to a handshake: send it with status `200` and this content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    handshake: Handshake,
    body: Vec<u8>,
}

impl HandshakeReply {
    /// Which handshake this answers.
    pub fn handshake(&self) -> Handshake {
        self.handshake
    }

    /// The `Content-Type` of the answer.
    pub fn content_type(&self) -> &'static str {
        "application/json"
    }

    /// The answer's body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The answer's body, owned.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

#[derive(Deserialize)]
struct DiscordProbe {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SlackProbe {
    #[serde(rename = "type")]
    kind: Option<String>,
    challenge: Option<String>,
}

#[derive(Deserialize)]
struct ZoomProbe {
    event: Option<String>,
    payload: Option<ZoomPayload>,
}

#[derive(Deserialize)]
struct ZoomPayload {
    #[serde(rename = "plainToken")]
    plain_token: Option<String>,
}

impl Handshake {
    /// Bodies above this size are never handshakes (the real ones are a few hundred bytes).
    pub const MAX_BODY: usize = 16 * 1024;

    /// A short name (`discord-ping`, `slack-url-verification`, `zoom-url-validation`).
    pub fn name(self) -> &'static str {
        match self {
            Self::DiscordPing => "discord-ping",
            Self::SlackUrlVerification => "slack-url-verification",
            Self::ZoomUrlValidation => "zoom-url-validation",
        }
    }

    /// Whether the handshake's answer is keyed with the verifying key (Zoom), so it needs an
    /// HMAC-SHA256 scheme.
    pub fn needs_hmac_key(self) -> bool {
        matches!(self, Self::ZoomUrlValidation)
    }

    /// The answer to `body` if it is this handshake's request; `key` (the key that verified
    /// the request) keys Zoom's answer.
    pub(crate) fn answer(self, body: &[u8], key: Option<&LoadedKey>) -> Option<HandshakeReply> {
        if body.len() > Self::MAX_BODY {
            return None;
        }
        let reply = |value: serde_json::Value| {
            serde_json::to_vec(&value).ok().map(|body| HandshakeReply {
                handshake: self,
                body,
            })
        };
        match self {
            Self::DiscordPing => {
                let probe: DiscordProbe = serde_json::from_slice(body).ok()?;
                (probe.kind?.as_u64()? == 1).then_some(())?;
                reply(serde_json::json!({ "type": 1 }))
            }
            Self::SlackUrlVerification => {
                let probe: SlackProbe = serde_json::from_slice(body).ok()?;
                (probe.kind.as_deref()? == "url_verification").then_some(())?;
                reply(serde_json::json!({ "challenge": probe.challenge? }))
            }
            Self::ZoomUrlValidation => {
                let probe: ZoomProbe = serde_json::from_slice(body).ok()?;
                (probe.event.as_deref()? == "endpoint.url_validation").then_some(())?;
                let plain = probe.payload?.plain_token?;
                let KeyState::HmacSha256(keyed) = &key?.state else {
                    return None;
                };
                let mut mac = keyed.clone();
                mac.update(plain.as_bytes());
                let tag = mac.finalize().into_bytes();
                let mut hex = [0u8; 64];
                let n = codec::hex_encode(&tag, &mut hex);
                let encrypted = std::str::from_utf8(hex.get(..n)?).ok()?;
                reply(serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognition_is_strict() {
        let d = Handshake::DiscordPing;
        assert_eq!(
            d.answer(br#"{"type":1,"id":"x"}"#, None).unwrap().body(),
            br#"{"type":1}"#
        );
        for not in [
            &br#"{"type":2}"#[..],
            br#"{"type":"1"}"#,
            br#"[{"type":1}]"#,
            b"not json",
            b"",
        ] {
            assert_eq!(d.answer(not, None), None);
        }
        let s = Handshake::SlackUrlVerification;
        let r = s
            .answer(
                br#"{"token":"t","challenge":"3eZb\"rw","type":"url_verification"}"#,
                None,
            )
            .unwrap();
        assert_eq!(r.body(), br#"{"challenge":"3eZb\"rw"}"#);
        assert_eq!(r.content_type(), "application/json");
        assert_eq!(s.answer(br#"{"type":"event_callback"}"#, None), None);
        assert_eq!(s.answer(br#"{"type":"url_verification"}"#, None), None);
        let big = format!(
            r#"{{"type":"url_verification","challenge":"c","pad":"{}"}}"#,
            "x".repeat(Handshake::MAX_BODY)
        );
        assert_eq!(s.answer(big.as_bytes(), None), None);
        // Zoom without a key: no answer (it cannot be computed).
        let z = Handshake::ZoomUrlValidation;
        assert_eq!(
            z.answer(
                br#"{"event":"endpoint.url_validation","payload":{"plainToken":"p"}}"#,
                None
            ),
            None
        );
    }
}
