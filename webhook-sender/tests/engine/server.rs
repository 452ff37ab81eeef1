//! A programmable hyper HTTP/1.1 server on 127.0.0.1 for the engine tests: every request is
//! recorded, and a behaviour function decides the answer (status, headers, delay, or a reset
//! connection).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) at: tokio::time::Instant,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The event ids in a JSON-array or NDJSON body of `{"id": ...}` objects.
    pub(crate) fn event_ids(&self) -> Vec<String> {
        let values: Vec<serde_json::Value> = match serde_json::from_slice(&self.body) {
            Ok(serde_json::Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(_) => self
                .body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| serde_json::from_slice(l).ok())
                .collect(),
        };
        values
            .iter()
            .filter_map(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .collect()
    }
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Status with headers and body.
    Status(StatusCode, Vec<(&'static str, String)>, String),
    /// Wait, then answer.
    Slow(Duration, StatusCode),
    /// Close the connection without answering.
    Reset,
}

impl Reply {
    pub(crate) fn ok() -> Self {
        Self::Status(StatusCode::OK, Vec::new(), "ok".into())
    }

    pub(crate) fn status(code: u16) -> Self {
        Self::Status(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Vec::new(),
            String::new(),
        )
    }
}

/// Decides the reply to request number `n` (0-based, per server) given what was seen.
pub(crate) type Behaviour = Arc<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    count: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub(crate) async fn start(
        behaviour: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    ) -> Result<Self, BoxError> {
        let behaviour: Behaviour = Arc::new(behaviour);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (s, c) = (seen.clone(), count.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, c, b) = (s.clone(), c.clone(), behaviour.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let (s, c, b) = (s.clone(), c.clone(), b.clone());
                        async move { handle(req, &s, &c, &b).await }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            seen,
            count,
            task,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

async fn handle(
    req: hyper::Request<Incoming>,
    seen: &Mutex<Vec<Seen>>,
    count: &AtomicUsize,
    behaviour: &Behaviour,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let s = Seen {
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
        at: tokio::time::Instant::now(),
    };
    let n = count.fetch_add(1, Ordering::SeqCst);
    let reply = behaviour(n, &s);
    if let Ok(mut v) = seen.lock() {
        v.push(s);
    }
    let (status, headers, body) = match reply {
        Reply::Status(status, headers, body) => (status, headers, body),
        Reply::Slow(delay, status) => {
            tokio::time::sleep(delay).await;
            (status, Vec::new(), String::new())
        }
        // An error from the service makes hyper close the connection without a response.
        Reply::Reset => return Err(std::io::Error::other("reset")),
    };
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    for (k, v) in headers {
        if let Ok(v) = http::HeaderValue::try_from(v) {
            r.headers_mut().insert(k, v);
        }
    }
    Ok(r)
}
