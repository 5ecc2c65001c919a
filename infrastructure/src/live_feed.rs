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

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::storage::failover::PrimaryWatch;
use crate::storage::{Checkpoint, RecordedEvent, Storage, StoreError};
use crate::tasks::Tasks;

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
    /// Starts following the log from its current end, as one of `tasks`. `poll` bounds how late
    /// an event found only by polling (a lost notification) is delivered.
    pub fn start(store: Storage, poll: Duration, tasks: &Tasks) -> LiveFeed {
        let (events, _) = broadcast::channel(FEED_CAPACITY);
        tasks.spawn("live_feed", follow(store, events.clone(), poll));
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
    /// The store follows another PostgreSQL primary now (a failover).
    PrimaryMoved,
    Stop,
}

async fn follow(store: Storage, events: broadcast::Sender<Arc<RecordedEvent>>, poll: Duration) {
    let mut cursor = loop {
        match store.last_checkpoint().await {
            Ok(checkpoint) => {
                break FeedCursor {
                    checkpoint,
                    recent: VecDeque::new(),
                    base: checkpoint,
                    primary: store.primary_host(),
                };
            }
            Err(error) => {
                tracing::warn!(%error, "live feed cannot read the log yet; retrying");
                tokio::time::sleep(poll).await;
            }
        }
    };
    let mut notices = store.subscribe();
    let mut remote = RemoteWakeups::connect(&store).await;
    let mut awaited: BTreeSet<i64> = BTreeSet::new();
    let mut primary = match &store {
        Storage::Postgres(pg) => Some(pg.primary_changes()),
        Storage::Sqlite(_) => None,
    };
    tracing::info!(checkpoint = %cursor.checkpoint, "live feed started");

    loop {
        match catch_up(&store, &mut cursor, &events, &mut awaited).await {
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "live feed read failed; retrying at the next wake-up"),
        }
        if !awaited.is_empty() {
            wait_for_barrier(&store, &mut cursor, &events, &mut awaited).await;
        }
        let wake = tokio::select! {
            notice = notices.recv() => match notice {
                Ok(notice) => Wake::Position(notice.last_position),
                Err(broadcast::error::RecvError::Lagged(_)) => Wake::Timer,
                Err(broadcast::error::RecvError::Closed) => Wake::Stop,
            },
            position = remote.recv() => position.map_or(Wake::Timer, Wake::Position),
            moved = primary_moved(&mut primary) => if moved { Wake::PrimaryMoved } else { Wake::Timer },
            () = tokio::time::sleep(poll) => Wake::Timer,
        };
        match wake {
            Wake::Position(position) => {
                awaited.insert(position);
            }
            Wake::PrimaryMoved | Wake::Timer => {}
            Wake::Stop => return,
        }
        if events.receiver_count() == 0 && awaited.len() > 1024 {
            awaited.clear();
        }
    }
}

/// Resolves when the store's primary changed to another host (never on SQLite, or when there
/// is only one host); `false` when the store is gone.
async fn primary_moved(primary: &mut Option<PrimaryWatch>) -> bool {
    let Some(watch) = primary.as_mut() else { return std::future::pending().await };
    loop {
        if watch.changed().await.is_err() {
            *primary = None;
            return false;
        }
        if watch.borrow_and_update().is_some() {
            return true;
        }
    }
}

/// After a failover, the feed must stand on an event the new primary has. With synchronous
/// replication it always does: every event a reader could read had reached the standby (a
/// commit waiting for the standby is still running, so it holds the read barrier back), and the
/// promoted standby's transaction ids continue past every replayed one. Without it, the newest
/// events delivered here may have been lost with the old primary, and new transactions may reuse
/// their ids, sorting before the feed's checkpoint: the feed then steps back to the newest event
/// it delivered that the new primary still has, so that it skips no new event and repeats none.
/// Returns whether the check was made.
async fn rewind_after_failover(store: &Storage, cursor: &mut FeedCursor) -> bool {
    let Storage::Postgres(pg) = store else { return true };
    let recent: Vec<Uuid> = cursor.recent.iter().map(|(id, _)| *id).collect();
    let surviving = match pg.newest_of_events(&recent).await {
        Ok(surviving) => surviving,
        Err(error) => {
            tracing::warn!(%error, "cannot compare the live feed with the new primary yet");
            return false;
        }
    };
    let back_to = match surviving {
        Some(checkpoint) if checkpoint == cursor.checkpoint => return true,
        Some(checkpoint) => checkpoint,
        None if recent.is_empty() => return true,
        // Every event remembered is gone: back to where the feed stood before them.
        None => cursor.base,
    };
    tracing::error!(
        feed.checkpoint = %cursor.checkpoint,
        feed.back_to = %back_to,
        "the new primary lacks events this node had delivered: they were lost with the old primary \
         (asynchronous replication); following the new primary's log from the newest event it has"
    );
    cursor.checkpoint = back_to;
    cursor.base = back_to;
    cursor.recent.clear();
    true
}

/// Where the feed stands, and the events it delivered last.
struct FeedCursor {
    checkpoint: Checkpoint,
    /// The PostgreSQL primary the checkpoint was last read from (`host:port`).
    primary: Option<String>,
    /// At most [`FEED_CAPACITY`], newest last.
    recent: VecDeque<(Uuid, Checkpoint)>,
    /// Where the feed stood before the oldest of `recent`.
    base: Checkpoint,
}

impl FeedCursor {
    fn delivered(&mut self, event: &RecordedEvent) {
        self.checkpoint = event.checkpoint();
        if self.recent.len() == FEED_CAPACITY
            && let Some((_, oldest)) = self.recent.pop_front()
        {
            self.base = oldest;
        }
        self.recent.push_back((event.event_id, event.checkpoint()));
    }
}

/// Reads everything visible after the cursor and publishes it. Before reading from a new
/// primary it checks the cursor against it ([`rewind_after_failover`]); a batch read while the
/// primary changed is dropped and read again (the store announces a new primary before it
/// connects to it, so a read that reached the new primary sees the announcement after it).
async fn catch_up(
    store: &Storage,
    cursor: &mut FeedCursor,
    events: &broadcast::Sender<Arc<RecordedEvent>>,
    awaited: &mut BTreeSet<i64>,
) -> Result<(), StoreError> {
    loop {
        let primary = store.primary_host();
        if primary.is_some() && primary != cursor.primary {
            if !rewind_after_failover(store, cursor).await {
                return Ok(());
            }
            cursor.primary = primary.clone();
        }
        let batch = store.read_all(cursor.checkpoint, READ_BATCH).await?;
        if store.primary_host() != primary {
            continue;
        }
        let full = batch.len() == READ_BATCH;
        for event in batch {
            cursor.delivered(&event);
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
    store: &Storage,
    cursor: &mut FeedCursor,
    events: &broadcast::Sender<Arc<RecordedEvent>>,
    awaited: &mut BTreeSet<i64>,
) {
    let give_up = tokio::time::Instant::now() + BARRIER_PATIENCE;
    // Positions at or below what was read are either seen or will never come (rolled back).
    while !awaited.is_empty() && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(BARRIER_RETRY).await;
        if let Err(error) = catch_up(store, cursor, events, awaited).await {
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
    async fn connect(store: &Storage) -> RemoteWakeups {
        let Storage::Postgres(pg) = store else { return RemoteWakeups::None };
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
