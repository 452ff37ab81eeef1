//! Security: secrets and key rings, signature schemes, signing and verification, request
//! authentication, header rules, PEM inputs of TLS configurations, Ed25519 keys, how each
//! scheme reads its secret (`key_text`), making keys (`keygen`), registration handshakes.
//!
//! The public items are re-exported at the crate root; `pem` and `ed25519` stay public
//! namespaces. `codec` (allocation-free encoders) and `keys` (keys loaded for a scheme) are
//! shared by [`sign`] and [`verify`] and are not public.

pub(crate) mod auth;
pub(crate) mod codec;
#[cfg(feature = "ed25519")]
pub mod ed25519;
pub(crate) mod handshake;
pub(crate) mod headers;
pub(crate) mod key_text;
pub(crate) mod keygen;
pub(crate) mod keyring;
pub(crate) mod keys;
pub mod pem;
pub(crate) mod scheme;
pub(crate) mod secret;
pub(crate) mod sign;
pub(crate) mod verify;
