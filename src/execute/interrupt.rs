//! Ctrl-C for the whole process. The handler is installed once, as early as a command that
//! sends can install it ([`listen`], before its playbook is even validated), and every Ctrl-C
//! from then on is counted: none is lost between the phases of a run (validation, the
//! preflight, the confirmation, the send), which each had their own handler before and let a
//! Ctrl-C that fell between two of them go unseen while writes went on. The scheduler waits for
//! the first (stop starting items) and the second (abandon the ones in flight) with
//! [`wait_for`]; a loop that plans without a runtime checks [`count`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use tokio::sync::watch;

static COUNT: AtomicU32 = AtomicU32::new(0);
static SEEN: OnceLock<watch::Sender<u32>> = OnceLock::new();

/// How many times Ctrl-C was pressed since [`listen`].
pub(crate) fn count() -> u32 {
    COUNT.load(Ordering::SeqCst)
}

/// Installs the process's Ctrl-C handler now (once; later calls do nothing), counting on the
/// runtime of `handle`.
pub(crate) fn listen(handle: &tokio::runtime::Handle) {
    SEEN.get_or_init(|| {
        let (tx, _) = watch::channel(0u32);
        let forward = tx.clone();
        let _entered = handle.enter();
        // Registered here, synchronously: a Ctrl-C from this instant on is seen.
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
        handle.spawn(async move {
            #[cfg(unix)]
            {
                let Some(mut signal) = signal else { return };
                while signal.recv().await.is_some() {
                    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
                    forward.send_replace(n);
                }
            }
            #[cfg(not(unix))]
            while tokio::signal::ctrl_c().await.is_ok() {
                let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
                forward.send_replace(n);
            }
        });
        tx
    });
}

/// Waits until Ctrl-C has been pressed `n` times (counting from [`listen`], which this calls on
/// the current runtime if nobody did).
pub(crate) async fn wait_for(n: u32) {
    listen(&tokio::runtime::Handle::current());
    let mut rx = SEEN.get().expect("listening").subscribe();
    let _ = rx.wait_for(|c| *c >= n).await;
}
