//! The live feed: one follower of the log per process, in memory, that fans every new event out
//! to this process's live subscribers (counter screens, case status, progress).
//!
//! It reads in commit-safe order from the position where it started, and is woken by
//! - an append in this process (the store's post-commit notice),
//! - `NOTIFY feeledger_events` from any node (PostgreSQL),
//! - a poll timer, so a lost notification only delays.
//!
//! On PostgreSQL an event just committed can still be behind the read barrier (an older
//! transaction is still running somewhere in the cluster). The feed remembers the positions it
//! was told about and re-reads quickly until it has seen them, so a subscriber hears of a commit
//! within milliseconds rather than at the next poll.
//!
//! Subscribers must subscribe *before* reading the state they show, and re-read that state when
//! told they lagged: the feed wakes them up, the durable state is the truth.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::event_store::{Checkpoint, EventStore, RecordedEvent, StoreError};

/// How many events a slow subscriber may fall behind before it is told it lagged.
pub const FEED_CAPACITY: usize = 4096;
/// Events read per round trip while catching up.
const READ_BATCH: usize = 500;
/// How long to wait between re-reads for an announced event still behind the barrier.
const BARRIER_RETRY: Duration = Duration::from_millis(2);
/// Give up waiting for an announced position after this long (it was rolled back, or an old
/// transaction holds the barrier); the next wake-up or poll picks it up.
const BARRIER_PATIENCE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct LiveFeed {
    events: broadcast::Sender<Arc<RecordedEvent>>,
}

impl LiveFeed {
    /// Starts following the log from its current end. `poll` bounds how late an event found only
    /// by polling (a lost notification) is delivered.
    pub fn start(store: EventStore, poll: Duration) -> LiveFeed {
        let (events, _) = broadcast::channel(FEED_CAPACITY);
        tokio::spawn(follow(store, events.clone(), poll));
        LiveFeed { events }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RecordedEvent>> {
        self.events.subscribe()
    }

    pub fn subscriber_count(&self) -> usize {
        self.events.receiver_count()
    }
}

enum Wake {
    Position(i64),
    Timer,
    Stop,
}

async fn follow(store: EventStore, events: broadcast::Sender<Arc<RecordedEvent>>, poll: Duration) {
    let mut checkpoint = loop {
        match store.last_checkpoint().await {
            Ok(checkpoint) => break checkpoint,
            Err(error) => {
                tracing::warn!(%error, "live feed cannot read the log yet; retrying");
                tokio::time::sleep(poll).await;
            }
        }
    };
    let mut notices = store.subscribe();
    let mut remote = RemoteWakeups::connect(&store).await;
    let mut awaited: BTreeSet<i64> = BTreeSet::new();
    tracing::info!(%checkpoint, "live feed started");

    loop {
        match catch_up(&store, &mut checkpoint, &events, &mut awaited).await {
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "live feed read failed; retrying at the next wake-up"),
        }
        if !awaited.is_empty() {
            wait_for_barrier(&store, &mut checkpoint, &events, &mut awaited).await;
        }
        let wake = tokio::select! {
            notice = notices.recv() => match notice {
                Ok(notice) => Wake::Position(notice.last_position),
                Err(broadcast::error::RecvError::Lagged(_)) => Wake::Timer,
                Err(broadcast::error::RecvError::Closed) => Wake::Stop,
            },
            position = remote.recv() => position.map_or(Wake::Timer, Wake::Position),
            () = tokio::time::sleep(poll) => Wake::Timer,
        };
        match wake {
            Wake::Position(position) => {
                awaited.insert(position);
            }
            Wake::Timer => {}
            Wake::Stop => return,
        }
        if events.receiver_count() == 0 && awaited.len() > 1024 {
            awaited.clear();
        }
    }
}

/// Reads everything visible after `checkpoint` and publishes it.
async fn catch_up(
    store: &EventStore,
    checkpoint: &mut Checkpoint,
    events: &broadcast::Sender<Arc<RecordedEvent>>,
    awaited: &mut BTreeSet<i64>,
) -> Result<(), StoreError> {
    loop {
        let batch = store.read_all(*checkpoint, READ_BATCH).await?;
        let full = batch.len() == READ_BATCH;
        for event in batch {
            *checkpoint = event.checkpoint();
            awaited.remove(&event.position);
            // No subscriber is fine.
            let _ = events.send(Arc::new(event));
        }
        if !full {
            return Ok(());
        }
    }
}

async fn wait_for_barrier(
    store: &EventStore,
    checkpoint: &mut Checkpoint,
    events: &broadcast::Sender<Arc<RecordedEvent>>,
    awaited: &mut BTreeSet<i64>,
) {
    let give_up = tokio::time::Instant::now() + BARRIER_PATIENCE;
    // Positions at or below what was read are either seen or will never come (rolled back).
    while !awaited.is_empty() && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(BARRIER_RETRY).await;
        if let Err(error) = catch_up(store, checkpoint, events, awaited).await {
            tracing::warn!(%error, "live feed read failed while waiting for the barrier");
            break;
        }
    }
    awaited.clear();
}

/// `LISTEN feeledger_events` on PostgreSQL; nothing on SQLite (one process owns the file).
enum RemoteWakeups {
    Postgres(Box<sqlx::postgres::PgListener>),
    None,
}

impl RemoteWakeups {
    async fn connect(store: &EventStore) -> RemoteWakeups {
        let EventStore::Postgres(pg) = store else { return RemoteWakeups::None };
        match pg.listen().await {
            Ok(listener) => RemoteWakeups::Postgres(Box::new(listener)),
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for other nodes' events; relying on polling");
                RemoteWakeups::None
            }
        }
    }

    /// The announced position, or `None` for a wake-up without one. Never returns on SQLite.
    async fn recv(&mut self) -> Option<i64> {
        match self {
            RemoteWakeups::Postgres(listener) => match listener.recv().await {
                Ok(notification) => notification.payload().parse().ok(),
                Err(error) => {
                    tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    None
                }
            },
            RemoteWakeups::None => std::future::pending().await,
        }
    }
}
