//! `webhook keygen`: a new secret or key pair for a scheme (`whsec_...`; Ed25519 `whsk_` and
//! `whpk_`, with the hex public key Discord shows), or the public key of a private one.
//!
//! The randomness comes from the operating system (`getrandom`); the text forms are the core's
//! ([`Scheme::generate_key`](webhook_core::Scheme::generate_key)), so what this prints is what
//! `sign`, `verify`, `listen` and the library read back.

use std::io::Read as _;

use serde_json::json;
use webhook_core::SecretFormat;
use webhook_core::ed25519::Ed25519SigningKey;

use crate::cli::KeygenArgs;
use crate::error::{CliError, Exit};

/// Runs `keygen`.
pub(crate) fn run(args: &KeygenArgs) -> Result<Exit, CliError> {
    if let Some(text) = &args.public_of {
        return public_of(text, args.json);
    }
    let scheme = args.scheme.scheme();
    let mut random = [0u8; 32];
    getrandom::getrandom(&mut random).map_err(|e| {
        CliError::new(
            Exit::Io,
            format!("the operating system's random generator failed: {e}"),
        )
    })?;
    let made = scheme
        .generate_key(random)
        .map_err(|e| CliError::config(e.to_string()))?;
    random.fill(0);
    if args.json {
        println!(
            "{}",
            json!({
                "scheme": args.scheme.cli_name(),
                "secret": made.secret(),
                "public_key": made.public_key(),
                "public_key_hex": made.public_key_hex(),
            })
        );
        return Ok(Exit::Ok);
    }
    match (made.public_key(), made.public_key_hex()) {
        (Some(whpk), Some(hex)) => {
            println!("secret key (signs):     {}", made.secret());
            println!("public key (verifies):  {whpk}");
            println!("public key, hex:        {hex}");
        }
        _ => println!("{}", made.secret()),
    }
    if scheme.secret_format() == SecretFormat::Literal {
        eprintln!(
            "note: the {} scheme uses this text as typed, whsec_ included; give the sender and \
             the receiver the same text",
            args.scheme.cli_name()
        );
    }
    Ok(Exit::Ok)
}

/// Prints the public key of a `whsk_` secret key (`-`: read it from stdin).
fn public_of(text: &str, json_out: bool) -> Result<Exit, CliError> {
    let mut read = String::new();
    let text = if text == "-" {
        std::io::stdin()
            .read_to_string(&mut read)
            .map_err(|e| CliError::io("reading the key from stdin", &e))?;
        read.trim()
    } else {
        text.trim()
    };
    let key = Ed25519SigningKey::from_whsk(text).map_err(|e| {
        CliError::config(format!("--public-of: {e}"))
            .hint("pass an Ed25519 secret key, whsk_... (shared whsec_ secrets have no public key)")
    })?;
    let public = key.verifying_key();
    if json_out {
        println!(
            "{}",
            json!({"public_key": public.to_whpk(), "public_key_hex": public.to_hex()})
        );
    } else {
        println!("public key (verifies):  {}", public.to_whpk());
        println!("public key, hex:        {}", public.to_hex());
    }
    Ok(Exit::Ok)
}
