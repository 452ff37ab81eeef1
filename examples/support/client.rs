//! A tiny HTTP/1.1 client for the examples: one request on a fresh loopback connection.

use std::error::Error;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Sends `req` to `addr` and returns the status and body of the response.
pub(crate) async fn send(
    addr: SocketAddr,
    req: Request<Bytes>,
) -> Result<(StatusCode, Bytes), Box<dyn Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        parts
            .headers
            .insert(http::header::HOST, addr.to_string().parse()?);
    }
    let res = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Fails unless `status` is `want` (so a broken example exits non-zero).
pub(crate) fn expect(
    what: &str,
    status: StatusCode,
    want: StatusCode,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    println!("  -> {what}: {status}");
    if status == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {status}").into())
    }
}
