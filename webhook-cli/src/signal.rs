//! Ctrl-C, registered at once (not on first poll), so an interrupt that arrives right after
//! start-up is never lost to the default handler.

use std::future::Future;

/// A future that resolves on the next SIGINT / Ctrl-C.
#[cfg(unix)]
pub(crate) fn interrupt() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sig = signal(SignalKind::interrupt())?;
    Ok(async move {
        let _ = sig.recv().await;
    })
}

/// A future that resolves on the next Ctrl-C.
#[cfg(not(unix))]
pub(crate) fn interrupt() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
