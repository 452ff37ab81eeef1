//! Integration tests of webhook-receiver: through `tower::ServiceExt::oneshot`, over real
//! sockets on 127.0.0.1, and through an axum `Router`.

#[path = "receiver/common.rs"]
mod common;
#[path = "receiver/oneshot.rs"]
mod oneshot;
#[path = "receiver/socket.rs"]
mod socket;
#[path = "receiver/with_axum.rs"]
mod with_axum;
