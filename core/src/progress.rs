//! A no-progress watchdog for requests with bodies. A stalled service turns
//! into an error after `limit` without progress, however long the whole
//! transfer takes; time spent waiting for the Node source does not count.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[derive(Clone)]
pub(crate) struct Progress(Arc<Inner>);

struct Inner {
    last_ms: AtomicU64,
    /// Waiting on the caller's source: the service is not to blame.
    paused: AtomicBool,
    /// Body bytes handed to the connection, for the caller's progress report.
    sent: Option<Arc<AtomicU64>>,
}

impl Progress {
    /// A watchdog that also adds the body bytes it sees to `sent`.
    pub(crate) fn counting(sent: Option<Arc<AtomicU64>>) -> Self {
        Progress(Arc::new(Inner { last_ms: AtomicU64::new(now_ms()), paused: AtomicBool::new(false), sent }))
    }

    /// `n` body bytes went to the connection.
    pub(crate) fn advance(&self, n: usize) {
        self.tick();
        if let Some(sent) = &self.0.sent {
            sent.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn tick(&self) {
        self.0.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn pause(&self, paused: bool) {
        if !paused {
            self.tick();
        }
        self.0.paused.store(paused, Ordering::Relaxed);
    }
}

/// The request made no progress for the whole limit.
pub(crate) struct Stalled;

/// Runs `fut`, failing with [`Stalled`] once `progress` has not moved for `limit`.
pub(crate) async fn watch<F: Future>(fut: F, progress: &Progress, limit: Duration) -> Result<F::Output, Stalled> {
    tokio::pin!(fut);
    let limit_ms = limit.as_millis() as u64;
    loop {
        let idle = now_ms().saturating_sub(progress.0.last_ms.load(Ordering::Relaxed));
        if idle >= limit_ms {
            if progress.0.paused.load(Ordering::Relaxed) {
                progress.tick();
            } else {
                return Err(Stalled);
            }
        }
        let wait = Duration::from_millis(limit_ms.saturating_sub(idle).max(1));
        tokio::select! {
            out = &mut fut => return Ok(out),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stalls_only_without_progress() {
        let p = Progress::counting(None);
        let ticker = p.clone();
        let busy = async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                ticker.tick();
            }
            7
        };
        assert!(matches!(watch(busy, &p, Duration::from_millis(100)).await, Ok(7)));
        let idle = tokio::time::sleep(Duration::from_secs(5));
        assert!(watch(idle, &Progress::counting(None), Duration::from_millis(100)).await.is_err());
        let paused = Progress::counting(None);
        paused.pause(true);
        let waiting = tokio::time::sleep(Duration::from_millis(500));
        assert!(watch(waiting, &paused, Duration::from_millis(100)).await.is_ok());
    }
}
