//! Work on one instance that runs on its own task and may outlive the round
//! that started it. A round waits for a job only up to its deadline; a job
//! still running then is kept and waited for again in the next round instead
//! of being cancelled and started anew. A hung instance thus has one
//! statement and one connection outstanding, never one per round.

use crate::model::error::{ErrorKind, ScrapeError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Work still running this long is cancelled (its connection closed) and
/// started anew: long enough for a paused or overloaded server to answer,
/// short enough to recover from a connection that never will (TCP keepalive
/// notices a vanished peer, but not a stopped process).
pub fn stuck_after(interval: Duration) -> Duration {
    const INTERVALS: u32 = 4;
    const AT_LEAST: Duration = Duration::from_secs(60);
    (interval * INTERVALS).max(AT_LEAST)
}

pub struct Job<T> {
    handle: JoinHandle<Result<T, ScrapeError>>,
    /// When the work began (after waiting for a concurrency slot); taken by
    /// the first wait.
    began: Option<oneshot::Receiver<Instant>>,
    spawned: Instant,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` at once.
    pub fn spawn(work: impl Future<Output = Result<T, ScrapeError>> + Send + 'static) -> Job<T> {
        let (began, began_rx) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let _ = began.send(Instant::now());
            work.await
        });
        Job::new(handle, began_rx)
    }

    /// Starts the work `start` gives once one of `slots` is free. The job
    /// gives its slot back at `deadline` even if it is still running: a hung
    /// instance must not keep healthy ones from being collected.
    ///
    /// The work is made, on the heap, only when it starts: a round spawns a
    /// job per instance at once, and most wait for a slot; waiting, a job is
    /// a few hundred bytes instead of the tens of kilobytes of a collection
    /// (a thousand of them at once were a quarter of the exporter's heap).
    pub fn spawn_bounded<F>(
        slots: Arc<Semaphore>,
        deadline: Duration,
        start: impl FnOnce() -> F + Send + 'static,
    ) -> Job<T>
    where
        F: Future<Output = Result<T, ScrapeError>> + Send + 'static,
    {
        let (began, began_rx) = oneshot::channel();
        let handle = tokio::spawn(async move {
            // The semaphore is never closed, so this only waits.
            let slot = slots.acquire_owned().await;
            let _ = began.send(Instant::now());
            let mut work = Box::pin(start());
            tokio::select! {
                result = &mut work => return result,
                _ = tokio::time::sleep(deadline) => {}
            }
            drop(slot);
            work.await
        });
        Job::new(handle, began_rx)
    }

    fn new(handle: JoinHandle<Result<T, ScrapeError>>, began: oneshot::Receiver<Instant>) -> Self {
        Job {
            handle,
            began: Some(began),
            spawned: Instant::now(),
        }
    }

    /// The result, if it comes within `deadline` of the work's start (of now,
    /// for a job carried over from an earlier round), with the time waited
    /// for it; otherwise the job itself, still running.
    pub async fn wait(
        mut self,
        deadline: Duration,
    ) -> Result<(Result<T, ScrapeError>, Duration), Self> {
        let began = match self.began.take() {
            Some(rx) => rx.await.unwrap_or_else(|_| Instant::now()),
            None => Instant::now(),
        };
        match tokio::time::timeout_at(began + deadline, &mut self.handle).await {
            Ok(joined) => {
                let result = joined.unwrap_or_else(|e| {
                    Err(ScrapeError::new(
                        ErrorKind::Internal,
                        format!("collection task ended abnormally: {e}"),
                    ))
                });
                Ok((result, began.elapsed()))
            }
            Err(_) => Err(self),
        }
    }

    /// Time since the job was started.
    pub fn age(&self) -> Duration {
        self.spawned.elapsed()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Cancels the work; a connection in the middle of a statement is closed
    /// (see [`crate::db::pool::Checkout`]).
    pub fn abort(self) {
        self.handle.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_job_is_kept_and_finishes_later() {
        let job = Job::spawn(async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(7)
        });
        let job = job
            .wait(Duration::from_secs(1))
            .await
            .expect_err("still running after 1 s");
        let job = job
            .wait(Duration::from_secs(1))
            .await
            .expect_err("still running after 2 s");
        let (result, _) = job.wait(Duration::from_secs(2)).await.ok().unwrap();
        assert_eq!(result.unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_job_gives_its_slot_back_at_its_deadline() {
        let slots = Arc::new(Semaphore::new(1));
        let deadline = Duration::from_secs(1);
        let hung = Job::spawn_bounded(
            slots.clone(),
            deadline,
            std::future::pending::<Result<(), _>>,
        );
        let quick = Job::spawn_bounded(slots.clone(), deadline, || async { Ok(()) });
        assert!(hung.wait(deadline).await.is_err());
        // The quick job got the slot once the hung one passed its deadline.
        let (result, _) = quick.wait(deadline).await.ok().unwrap();
        assert!(result.is_ok());
        assert_eq!(slots.available_permits(), 1);
    }
}
