//! Declares the opt-in `webhook_peer_svix` cfg that enables the svix peer in benches and
//! interop tests (`RUSTFLAGS="--cfg webhook_peer_svix"`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(webhook_peer_svix)");
}
