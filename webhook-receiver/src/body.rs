//! Bounded body reading and bounded `Content-Encoding: gzip` decoding.
//!
//! The limit is enforced while frames arrive: a declared size (the `Content-Length`, via the
//! body's size hint) above the limit is refused before anything is read, and a body that grows
//! past the limit is refused at the frame that crosses it, without reading the rest. A single
//! data frame is returned as is (no copy).

use std::io::Read;

use bytes::{Buf, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

use crate::rejection::Rejection;

/// Reads a whole body of at most `limit` bytes.
pub(crate) async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let hint = body.size_hint();
    if hint.lower() > limit as u64 {
        return Err(Rejection::PayloadTooLarge { limit });
    }
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    let mut total: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            tracing::debug!(error = %e, "request body read failed");
            Rejection::BodyRead
        })?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers are ignored
        };
        // Zero-copy for `Bytes` data (hyper, axum, `Full<Bytes>`).
        let data = data.copy_to_bytes(data.remaining());
        if data.is_empty() {
            continue;
        }
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(Rejection::PayloadTooLarge { limit });
        }
        match (&mut first, &mut buf) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let cap = hint
                    .exact()
                    .or(hint.upper())
                    .map_or(total, |n| n.min(limit as u64) as usize)
                    .max(total);
                let mut b = BytesMut::with_capacity(cap);
                b.extend_from_slice(f);
                b.extend_from_slice(&data);
                first = None;
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&data),
        }
    }
    Ok(match (first, buf) {
        (_, Some(b)) => b.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

/// The content coding of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
}

/// Parses `Content-Encoding`; `None` for a coding the receiver does not decode.
pub(crate) fn parse_encoding(headers: &http::HeaderMap) -> Option<Encoding> {
    let mut values = headers.get_all(http::header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Some(Encoding::Identity);
    };
    if values.next().is_some() {
        return None;
    }
    let s = value.to_str().ok()?.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("identity") {
        Some(Encoding::Identity)
    } else if s.eq_ignore_ascii_case("gzip") || s.eq_ignore_ascii_case("x-gzip") {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// Decompresses a gzip body (several members allowed) to at most `limit` bytes.
pub(crate) fn gunzip_limited(compressed: &[u8], limit: usize) -> Result<Bytes, Rejection> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| Rejection::BadEncoding)?;
    if out.len() > limit {
        return Err(Rejection::DecompressedTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_round_trip_and_limit() {
        let z = gzip(b"hello world");
        assert_eq!(&gunzip_limited(&z, 11).unwrap()[..], b"hello world");
        assert!(matches!(
            gunzip_limited(&z, 10),
            Err(Rejection::DecompressedTooLarge { limit: 10 })
        ));
    }

    #[test]
    fn gunzip_garbage_is_bad_encoding() {
        assert!(matches!(
            gunzip_limited(b"not gzip", 100),
            Err(Rejection::BadEncoding)
        ));
    }

    #[test]
    fn encodings() {
        let mut h = http::HeaderMap::new();
        assert_eq!(parse_encoding(&h), Some(Encoding::Identity));
        h.insert("content-encoding", "GZIP".parse().unwrap());
        assert_eq!(parse_encoding(&h), Some(Encoding::Gzip));
        h.insert("content-encoding", "br".parse().unwrap());
        assert_eq!(parse_encoding(&h), None);
        h.append("content-encoding", "gzip".parse().unwrap());
        assert_eq!(parse_encoding(&h), None);
    }

    #[test]
    fn read_limited_single_frame_and_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = http_body_util::Full::new(Bytes::from_static(b"abc"));
            assert_eq!(&read_limited(b, 3).await.unwrap()[..], b"abc");
            let b = http_body_util::Full::new(Bytes::from_static(b"abcd"));
            assert!(matches!(
                read_limited(b, 3).await,
                Err(Rejection::PayloadTooLarge { limit: 3 })
            ));
        });
    }
}
