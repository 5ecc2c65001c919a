//! The background tasks of a process (the live feed, the projections, QR expiry, the inbox's
//! recovery, the daily seals), kept rather than detached: a task that panics is logged by name
//! with the panic's message, and [`Tasks::shutdown`] stops them all and waits until they have.
//!
//! A handle is cheap to clone; every clone shares the same set. The set lives as long as a
//! handle does (a task usually holds one, through the service it runs), so tasks run on until
//! `shutdown` or the runtime's end, as detached tasks would.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt as _;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Default)]
pub struct Tasks {
    set: Arc<Mutex<JoinSet<()>>>,
}

impl Tasks {
    /// Runs `task` in the background under `name` (used in the logs).
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let watched = async move {
            if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                tracing::error!(task = name, panic = panic_message(panic.as_ref()), "background task panicked");
            }
        };
        let mut set = self.lock();
        // Forget the tasks that have ended (their outcome was logged where it mattered).
        while set.try_join_next().is_some() {}
        set.spawn(watched);
    }

    /// How many tasks are running.
    pub fn len(&self) -> usize {
        let mut set = self.lock();
        while set.try_join_next().is_some() {}
        set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every task (at its next await point) and waits until all have stopped.
    pub async fn shutdown(&self) {
        let mut set = std::mem::take(&mut *self.lock());
        set.abort_all();
        while let Some(ended) = set.join_next().await {
            if let Err(error) = ended
                && !error.is_cancelled()
            {
                tracing::error!(%error, "background task failed while stopping");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, JoinSet<()>> {
        // The set holds no invariant a panic elsewhere could break: keep using it.
        self.set.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_ends_alone_and_shutdown_stops_the_rest() {
        let tasks = Tasks::default();
        let (started, mut running) = tokio::sync::mpsc::channel::<()>(1);
        tasks.spawn("forever", async move {
            let _ = started.send(()).await;
            std::future::pending::<()>().await;
        });
        tasks.spawn("panics", async { panic!("on purpose") });
        running.recv().await;
        // The panicking task ends; the other runs on.
        while tasks.len() > 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(tasks.len(), 1);
        tasks.shutdown().await;
        assert!(tasks.is_empty());
        // The task was stopped: its end of the channel is gone.
        assert!(running.recv().await.is_none());
    }
}
