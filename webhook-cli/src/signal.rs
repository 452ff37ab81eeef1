//! Ctrl-C (and SIGTERM on Unix, as sent by `kill`, systemd or `docker stop`), registered at
//! once rather than on first poll, so a signal that arrives right after start-up is never
//! lost to the default handler.

use std::future::Future;

/// A future that resolves on the next SIGINT (Ctrl-C) or SIGTERM.
#[cfg(unix)]
pub(crate) fn interrupt() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// A future that resolves on the next Ctrl-C.
#[cfg(not(unix))]
pub(crate) fn interrupt() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
