//! Stopping a run the way people and machines do: Ctrl-C at a terminal, SIGTERM from `timeout`,
//! CI runners cancelling a job and process supervisors, SIGHUP when the terminal goes away.
//! All three cancel the same token: before the switch the run aborts (new container stopped,
//! lock released, audit `aborted`); after it the run finishes. Without this, SIGTERM killed
//! deckhand at once and left its lock held and its new container running.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Installs the handlers now (before returning, so an early signal is not fatal) and returns
/// the token they cancel. `on_signal` is told which signal came, each time one comes; it must
/// not panic (the terminal may be gone).
pub fn cancel_on_signals(on_signal: impl Fn(&'static str) + Send + 'static) -> CancellationToken {
    let token = CancellationToken::new();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let t = token.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = next(&mut int) => "Ctrl-C",
                Some(()) = next(&mut term) => "SIGTERM",
                Some(()) = next(&mut hup) => "SIGHUP",
                else => return,
            };
            tracing::warn!(signal = name, "cancelling the run");
            t.cancel();
            on_signal(name);
        }
    });
    token
}

async fn next(s: &mut Option<Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => None,
    }
}
