//! Exit codes and the one error type every subcommand returns: a one-line cause, an optional
//! hint, and the exit code it maps to.
//!
//! Library errors stay typed until here; this module only decides how they are shown and which
//! documented exit code they end with.

use std::fmt;
use std::process::ExitCode;

/// The documented exit codes (see `webhook --help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Everything succeeded.
    Ok = 0,
    /// The command ran but the answer is negative: events not delivered (`send`), signature
    /// invalid (`verify`), access denied (`call`).
    Negative = 1,
    /// Invalid command line (clap uses 2 as well).
    Usage = 2,
    /// Invalid configuration: config file, secret, header, certificate, template, rule.
    Config = 3,
    /// A local file or socket could not be read, written or bound.
    Io = 4,
    /// The endpoint answered with a non-2xx status (`test`, `call`).
    Status = 5,
    /// No answer: connection refused, DNS, TLS, timeout, or refused by the SSRF guard.
    Network = 6,
    /// The outbox directory is in use by another process (`send --outbox`, `outbox`).
    Locked = 7,
}

impl Exit {
    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// The exit-code table shown in `webhook --help` (kept in sync with the README by a test).
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success: every event delivered, signature valid, test answered 2xx, call allowed,
     listen stopped by Ctrl-C
  1  negative answer: some events not delivered (send), signature invalid (verify),
     access denied (call)
  2  invalid command line (unknown flag, missing value, conflicting options)
  3  invalid configuration or input (config file, events file, secret, header,
     certificate, template, rule)
  4  local I/O error (file not readable or writable, address already in use)
  5  the endpoint answered with a non-2xx status (test, call)
  6  no answer from the endpoint (connection refused, DNS, TLS, timeout, SSRF guard)
  7  the outbox or inbox directory is in use by another process (send --outbox, outbox,
     listen --inbox)";

/// A failure of a subcommand: what went wrong, in one line, and what to try.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) exit: Exit,
    pub(crate) cause: String,
    pub(crate) hint: Option<String>,
}

impl CliError {
    pub(crate) fn new(exit: Exit, cause: impl Into<String>) -> Self {
        Self {
            exit,
            cause: cause.into(),
            hint: None,
        }
    }

    pub(crate) fn config(cause: impl fmt::Display) -> Self {
        Self::new(Exit::Config, cause.to_string())
    }

    pub(crate) fn io(what: impl fmt::Display, e: &std::io::Error) -> Self {
        Self::new(Exit::Io, format!("{what}: {e}"))
    }

    pub(crate) fn usage(cause: impl fmt::Display) -> Self {
        Self::new(Exit::Usage, cause.to_string())
    }

    pub(crate) fn network(cause: impl fmt::Display) -> Self {
        Self::new(Exit::Network, cause.to_string())
    }

    /// The same error with `what: ` before its cause (which flag it is about).
    #[must_use]
    pub(crate) fn prefixed(mut self, what: &str) -> Self {
        self.cause = format!("{what}: {}", self.cause);
        self
    }

    #[must_use]
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.cause)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

/// The cause of an error followed by its sources, on one line (`a: b: c`), skipping sources
/// whose text the previous message already contains.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Maps a transport failure to a one-line cause and a hint.
pub(crate) fn transport(e: &webhook_sender::TransportError) -> CliError {
    let text = chain(e);
    let asks_for_client_cert =
        text.contains("CertificateRequired") || text.contains("certificate required");
    let err = CliError::network(text);
    if asks_for_client_cert {
        err.hint("the server requires a client certificate: pass --cert FILE --key FILE (PEM)")
    } else if e.is_refused_by_ssrf_guard() {
        err.hint("the address is private or local; pass --allow-private to send to it")
    } else if e.is_tls() {
        err.hint(
            "use --ca FILE for a private CA, or --insecure to skip verification (testing only)",
        )
    } else if e.is_dns() {
        err.hint("check the host name in the URL")
    } else if e.is_connect() {
        err.hint("is the receiver running and listening on that address and port?")
    } else if e.is_timeout() {
        err.hint("the endpoint is slow or unreachable; raise --timeout")
    } else {
        // The connection closed before any answer. Over TLS 1.3 that is also how a server
        // refusing to go on without a client certificate can look: its alert may arrive after
        // the client considers the handshake done, or not be read at all.
        err.hint(
            "the connection closed before an answer; if the server requires a client \
             certificate (mTLS), pass --cert FILE --key FILE (PEM)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_cause_and_hint() {
        let e = CliError::config("bad").hint("fix it");
        assert_eq!(e.to_string(), "error: bad\n  hint: fix it");
        assert_eq!(e.exit, Exit::Config);
    }

    #[test]
    fn chain_skips_repeated_text() {
        let io = std::io::Error::other("inner");
        let e = CliError::io("reading x", &io);
        assert_eq!(e.cause, "reading x: inner");
    }

    #[test]
    fn readme_documents_the_same_exit_codes() {
        let readme = include_str!("../README.md");
        for code in 0..=7 {
            assert!(
                readme.contains(&format!("| {code} |")),
                "README lacks exit code {code}"
            );
            assert!(EXIT_CODES_HELP.contains(&format!("  {code}  ")));
        }
    }
}
