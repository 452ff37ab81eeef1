//! [`RawBody`]: the whole verified body as one item, shared rather than copied.

use bytes::Bytes;

use super::{BodyDecodeError, Decode};
use crate::media::MediaType;

/// Hands the verified (and decompressed) body to one handler call as [`Bytes`] sharing the
/// request's buffer: no per-item decoding, allocation or handler call by the receiver. The
/// handler parses the batch itself, typically with a borrowing parser such as
/// `webhook_payloads::sysdig::parse_batch`, whose events borrow their strings from the body
/// (the fastest way to take large batches). The body has passed authentication, the replay
/// check and the size limits; its media type is in [`Context::media_type`](crate::Context).
///
/// ```
/// use bytes::Bytes;
/// use webhook_receiver::{Decode, MediaType, RawBody};
/// // With a receiver: `Receiver::with_decoder(config, RawBody)`, handlers take `Bytes`.
///
/// let body = Bytes::from_static(b"{\"a\":1}\n{\"a\":2}\n");
/// let items = RawBody.decode_shared(Some(MediaType::NdJson), &body)?;
/// assert_eq!(items.len(), 1);
/// assert_eq!(items[0].as_ptr(), body.as_ptr()); // the same bytes, not a copy
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBody;

impl Decode<Bytes> for RawBody {
    /// Copies `body` (only reached when called directly; the receiver calls
    /// [`decode_shared`](Decode::decode_shared)).
    fn decode(
        &self,
        _media: Option<MediaType>,
        body: &[u8],
    ) -> Result<Vec<Bytes>, BodyDecodeError> {
        Ok(vec![Bytes::copy_from_slice(body)])
    }

    fn decode_shared(
        &self,
        _media: Option<MediaType>,
        body: &Bytes,
    ) -> Result<Vec<Bytes>, BodyDecodeError> {
        Ok(vec![body.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_or_copies_the_body() {
        let body = Bytes::from(vec![b'x'; 4096]);
        let shared = RawBody.decode_shared(None, &body).unwrap();
        assert_eq!(shared, vec![body.clone()]);
        assert_eq!(shared[0].as_ptr(), body.as_ptr());
        let copied = RawBody.decode(None, &body).unwrap();
        assert_eq!(copied, vec![body.clone()]);
        assert_ne!(copied[0].as_ptr(), body.as_ptr());
    }
}
