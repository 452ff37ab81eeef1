//! Integration tests of webhook-receiver: through `Receiver::handle_at`, through
//! `tower::ServiceExt::oneshot`, over real sockets on 127.0.0.1, and through an axum `Router`.

#[path = "receiver/common.rs"]
mod common;
#[path = "receiver/direct.rs"]
mod direct;
#[cfg(feature = "server")]
#[path = "receiver/families.rs"]
mod families;
#[path = "receiver/handshakes.rs"]
mod handshakes;
#[cfg(feature = "http2")]
#[path = "receiver/http2.rs"]
mod http2;
#[cfg(all(feature = "server", feature = "inbox"))]
#[path = "receiver/inbox.rs"]
mod inbox;
#[cfg(all(feature = "server", feature = "inbox"))]
#[path = "receiver/inbox_support.rs"]
mod inbox_support;
#[cfg(feature = "server")]
#[path = "receiver/interop.rs"]
mod interop;
#[cfg(feature = "tower")]
#[path = "receiver/oneshot.rs"]
mod oneshot;
#[path = "receiver/presets.rs"]
mod presets;
#[path = "receiver/routing.rs"]
mod routing;
#[cfg(feature = "server")]
#[path = "receiver/socket.rs"]
mod socket;
#[cfg(feature = "tls")]
#[path = "receiver/tls.rs"]
mod tls;
#[cfg(feature = "axum")]
#[path = "receiver/with_axum.rs"]
mod with_axum;
