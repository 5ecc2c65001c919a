//! The PostgreSQL backend: many concurrent writers, readers on several nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::{broadcast, oneshot, watch};

use super::failover::{self, HostRole, PgHosts, PrimaryWatch};

use super::group_commit::GroupQueue;
use super::hash_chain::GENESIS;
use super::inbox::{InboxResolution, InboxRow, ReceivedRequest};
use super::reads::{StreamRead, stream_read_queue};
use super::{
    Appended, Checkpoint, ExpectedVersion, IdempotencyKey, NewEvent, StoreCounters, StoreError, StoreNotice,
    StoreOptions, StoredAppend, chain_rows, check_expected, map_append_error, recorded_rows,
};
use crate::clock::Clock;

/// A transaction left idle (a crashed client, a debugger) would hold the read barrier back for
/// every consumer; PostgreSQL ends such sessions after this long.
pub(super) const IDLE_IN_TRANSACTION_TIMEOUT_MS: &str = "15000";

#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: PgPool,
    notices: broadcast::Sender<StoreNotice>,
    /// What `recorded_at` is read from.
    pub(super) clock: Clock,
    pub(super) counters: Arc<StoreCounters>,
    /// The host the pool connects to: the primary, or `None` while no host accepts writes.
    primary: PrimaryWatch,
    /// Where reads that tolerate a replica go (`FEELEDGER_READ_DATABASE_URL`), if anywhere.
    replica: Option<ReadReplica>,
    /// The store's own background tasks (telling other nodes of new events, following the
    /// primary), stopped when the last clone of the store is dropped or it is closed.
    tasks: Arc<StoreTasks>,
    /// Commands' reads waiting to be read together (`Storage::read_stream_beside`).
    pub(super) stream_reads: GroupQueue<StreamRead>,
    /// Commands' appends waiting to be written together (`Storage::append_after`).
    appends: GroupQueue<PendingAppend>,
    /// Appends under way on their own, outside the queue (see `PostgresStorage::append_known`).
    appending_alone: Arc<AtomicUsize>,
}

/// Counts an append under way on its own for as long as it lives (dropped with a caller that
/// gave up, too).
struct AppendingAlone(Arc<AtomicUsize>);

impl AppendingAlone {
    /// Counts one more; whether it is the only one.
    fn enter(count: &Arc<AtomicUsize>) -> (Self, bool) {
        let before = count.fetch_add(1, Ordering::SeqCst);
        (AppendingAlone(count.clone()), before == 0)
    }
}

impl Drop for AppendingAlone {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// At most this many groups of commands' appends under way at once.
const APPENDS_IN_FLIGHT: usize = 2;
/// At most this many commands' appends in one group.
const APPENDS_PER_GROUP: usize = 64;

fn append_queue() -> GroupQueue<PendingAppend> {
    GroupQueue::new(APPENDS_IN_FLIGHT, APPENDS_PER_GROUP)
}

/// One command's append to a stream whose head it knows, waiting to be written with others'.
#[derive(Debug)]
struct PendingAppend {
    stream_id: String,
    current_version: i64,
    previous_hash: Vec<u8>,
    events: Vec<NewEvent>,
    idempotency: Option<IdempotencyKey>,
    answer: oneshot::Sender<GroupAppend>,
}

/// What became of an append in its group.
#[derive(Debug)]
enum GroupAppend {
    /// Written with the group.
    Appended(StoredAppend),
    /// Not written: its stream moved on since its head was read, its idempotency key was
    /// claimed before, the group could not take it, or the group's statement failed. The
    /// caller appends it alone, for its own answer (a conflict, the first result of its key).
    Alone(Vec<NewEvent>),
}

/// Background tasks that live as long as the store: aborted when it goes.
#[derive(Debug)]
struct StoreTasks(Vec<tokio::task::JoinHandle<()>>);

impl StoreTasks {
    fn abort(&self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Drop for StoreTasks {
    fn drop(&mut self) {
        self.abort();
    }
}

/// A read replica's pool, and until when it is skipped after it failed to answer.
#[derive(Debug, Clone)]
struct ReadReplica {
    pool: PgPool,
    host: failover::HostPort,
    skipped_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

/// How long a read waits for the replica to replay what the primary had written when the read
/// began (read-your-writes) before it goes to the primary instead.
pub const REPLICA_WAIT: Duration = Duration::from_millis(500);
/// How long a replica that failed to answer is left aside (reads go to the primary).
const REPLICA_SKIP: Duration = Duration::from_secs(5);
/// How long a read may wait for a replica connection.
const REPLICA_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// A pooled connection idle for longer than this is checked (a round trip) before it is lent.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// The pools' common options. sqlx checks every connection with a round trip each time it is
/// taken from the pool (`test_before_acquire`): one more round trip, and a wake-up of the
/// server, for every statement — under load that doubled what PostgreSQL was asked per append
/// (issue 17). A connection idle for a while (it may have been cut by a restart or a failover)
/// is still checked and, if dead, replaced before anyone uses it; one used within the last
/// second is lent as it is: if the server died in that second, the statement fails with a
/// connection error (as it would had the server died during the statement) and sqlx drops
/// the connection.
fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().test_before_acquire(false).before_acquire(|connection, meta| {
        Box::pin(async move {
            if meta.idle_for > PING_WHEN_IDLE_FOR {
                sqlx::Connection::ping(connection).await?;
            }
            Ok(true)
        })
    })
}

impl PostgresStorage {
    /// Connects to the primary among the URL's hosts (one or several, see [`failover`]). With
    /// several, a watcher follows the primary through failovers for as long as the pool lives.
    pub(super) async fn connect(
        url: &str,
        options: StoreOptions,
        notices: broadcast::Sender<StoreNotice>,
    ) -> Result<Self, StoreError> {
        let hosts = Arc::new(PgHosts::parse(url)?);
        let several = hosts.hosts().len() > 1;
        let primary_host =
            if several { failover::find(&hosts, HostRole::Primary, false).await? } else { hosts.hosts()[0].clone() };
        let connect_options = failover::with_session_settings(hosts.options(&primary_host)?);
        let mut pool_options = pool_options()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms));
        if several {
            // A host named in the URL may be up as a standby (a demoted primary): a connection
            // to it would fail every write, so the pool refuses it and keeps trying (the
            // watcher points the pool at the new primary within a check or two).
            pool_options = pool_options.after_connect(|connection, _| {
                Box::pin(async move {
                    match failover::role_of(connection).await? {
                        HostRole::Primary => Ok(()),
                        HostRole::Standby => Err(sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::ConnectionRefused,
                            "this PostgreSQL host is a standby, not the primary",
                        ))),
                    }
                })
            });
        }
        let pool =
            pool_options.connect_with(connect_options).await.map_err(StoreError::db("connecting to PostgreSQL"))?;
        let (primary_sender, primary) = watch::channel(Some(primary_host.clone()));
        let mut tasks = vec![
            tokio::spawn(notify_other_nodes(pool.clone(), notices.subscribe())),
            tokio::spawn(keep_statistics(pool.clone())),
        ];
        if several {
            tracing::info!(db.primary = %primary_host, db.hosts = hosts.hosts().len(), "connected to the PostgreSQL primary");
            tasks.push(tokio::spawn(failover::follow_primary(pool.clone(), hosts, primary_host, primary_sender)));
        }
        Ok(PostgresStorage {
            pool,
            notices,
            clock: Clock::system(),
            counters: Arc::default(),
            primary,
            replica: None,
            tasks: Arc::new(StoreTasks(tasks)),
            stream_reads: stream_read_queue(),
            appends: append_queue(),
            appending_alone: Arc::default(),
        })
    }

    /// Sends the reads that tolerate a replica to one of `url`'s hosts, chosen at start: the
    /// first standby that answers, else the first primary, else the first host.
    pub(super) async fn with_read_replica(mut self, url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let hosts = PgHosts::parse(url)?;
        // A standby first, else a primary among the hosts; when none answers now, the first
        // host (reads go to the primary until it answers; a replica down must not stop a node).
        let host = match failover::find(&hosts, HostRole::Standby, true).await {
            Ok(host) => host,
            Err(error) => {
                tracing::warn!(%error, "no read replica answers yet: reading from the primary until one does");
                hosts.hosts()[0].clone()
            }
        };
        let connect_options = hosts.options(&host)?.application_name("feeledger reads");
        let pool = pool_options()
            .max_connections(options.max_connections)
            .acquire_timeout(REPLICA_ACQUIRE_TIMEOUT)
            .connect_lazy_with(connect_options);
        tracing::info!(db.replica = %host, "reads that tolerate a replica go to it");
        self.replica = Some(ReadReplica { pool, host, skipped_until: Arc::default() });
        Ok(self)
    }

    /// The replica's host, when reads go to one.
    pub fn replica_host(&self) -> Option<failover::HostPort> {
        self.replica.as_ref().map(|r| r.host.clone())
    }

    /// A view of this store whose reads go to the read replica, once it has replayed every
    /// write the primary had made when this was called (so a reader sees its own writes); the
    /// primary itself when there is no replica, when it lags more than [`REPLICA_WAIT`] or
    /// does not answer. Only for reads: the view's writes would fail on a standby. `None`: read
    /// from this store itself (no clone: every read of a case passes here).
    pub(super) async fn for_reads(&self) -> (Option<PostgresStorage>, ReadSource) {
        let Some(replica) = &self.replica else { return (None, ReadSource::Primary) };
        let skipped = replica.skipped_until.lock().ok().and_then(|until| *until);
        if skipped.is_some_and(|until| tokio::time::Instant::now() < until) {
            return (None, ReadSource::PrimaryInstead);
        }
        match replica_has_replayed(&self.pool, &replica.pool).await {
            Ok(true) => {
                let view = PostgresStorage {
                    pool: replica.pool.clone(),
                    notices: self.notices.clone(),
                    clock: self.clock.clone(),
                    counters: self.counters.clone(),
                    tasks: self.tasks.clone(),
                    primary: self.primary.clone(),
                    replica: None,
                    // Its own queues: a group is read on the pool of the store that reads it.
                    stream_reads: stream_read_queue(),
                    appends: append_queue(),
                    appending_alone: Arc::default(),
                };
                (Some(view), ReadSource::Replica)
            }
            Ok(false) => (None, ReadSource::PrimaryInstead),
            Err(error) => {
                tracing::warn!(%error, db.replica = %replica.host, "the read replica does not answer: reading from the primary for a while");
                if let Ok(mut until) = replica.skipped_until.lock() {
                    *until = Some(tokio::time::Instant::now() + REPLICA_SKIP);
                }
                (None, ReadSource::PrimaryInstead)
            }
        }
    }

    /// The host the pool writes to, or `None` while no host accepts writes.
    pub fn primary(&self) -> Option<failover::HostPort> {
        self.primary.borrow().clone()
    }

    /// Told each time the primary changes (or is lost).
    pub fn primary_changes(&self) -> PrimaryWatch {
        self.primary.clone()
    }

    /// The pool, for the read models and other tables that live beside the event log.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool, for tests that act as a second client of the same database (tampering as a
    /// superuser could, holding transactions open across a failover). Not in the product build.
    #[cfg(any(test, feature = "test-support"))]
    pub fn test_pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn notices(&self) -> &broadcast::Sender<StoreNotice> {
        &self.notices
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    /// Readers order events by their writing transaction's id, so the cluster's next id must be
    /// newer than every stored one. It is not when a dump was restored into a cluster whose
    /// counter is behind: new events would sort before old ones and readers would skip them.
    pub(super) async fn check_transaction_counter(&self) -> Result<(), StoreError> {
        let (stored, next): (Option<i64>, i64) = sqlx::query_as(
            "SELECT (SELECT max(transaction_id)::text::bigint FROM events), \
                    pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("comparing the log's transaction ids with the cluster's"))?;
        match stored {
            Some(stored) if stored >= next => Err(StoreError::Schema(format!(
                "the log's newest transaction id ({stored}) is not older than this PostgreSQL cluster's next one \
                 ({next}): the database was restored into a cluster whose transaction counter is behind, and new \
                 events would be read before older ones. Move the counter past {stored} first (docs/OPERATIONS.md, \
                 \"Restoring a dump into another cluster\")"
            ))),
            _ => Ok(()),
        }
    }

    pub(super) async fn check_schema(&self) -> Result<(), StoreError> {
        let wanted = sqlx::migrate!("../migrations/postgres").iter().map(|m| m.version).max().unwrap_or(0);
        let found =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await;
        super::schema_is_current(found, wanted)
    }

    pub(super) async fn close(&self) {
        self.tasks.abort();
        self.pool.close().await;
        if let Some(replica) = &self.replica {
            replica.pool.close().await;
        }
    }

    /// At most two round trips and no explicit transaction: the head is read (skipped for a new
    /// stream, whose head is known), then one statement inserts the events and claims the
    /// idempotency key atomically. The unique `(stream_id, stream_version)` constraint is what
    /// makes this safe: if another writer appended after the head was read, the insert fails
    /// as a whole and becomes a `Conflict`; and since rows never change, the previous hash read
    /// is still the hash of the row the new events follow.
    pub(super) async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        head: Option<&super::KnownHead>,
        events: &[NewEvent],
        idempotency: Option<&IdempotencyKey>,
        recorded_at: DateTime<Utc>,
    ) -> Result<Option<StoredAppend>, StoreError> {
        let (current_version, previous_hash) = if expected == ExpectedVersion::NoStream {
            (0, GENESIS.to_vec())
        } else if let Some(head) = head {
            (head.version, head.hash.clone())
        } else {
            let head: Option<(i64, Vec<u8>)> = sqlx::query_as(super::STREAM_HEAD)
                .bind(stream_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("reading the stream head"))?;
            head.unwrap_or((0, GENESIS.to_vec()))
        };
        check_expected(stream_id, expected, current_version)?;
        let new_version = current_version + i64::try_from(events.len()).unwrap_or(i64::MAX);

        let rows = chain_rows(stream_id, current_version, &previous_hash, events, recorded_at);
        let placed = insert_events(&self.pool, stream_id, events, &rows, recorded_at, idempotency, new_version)
            .await
            .map_err(|e| map_append_error(e, stream_id, expected, events))?;
        // Nothing inserted: the key was already claimed (by this same request before, or by a
        // different one).
        let Some(&(last_position, _)) = placed.last() else { return Ok(None) };
        let appended = Appended {
            stream_id: stream_id.to_owned(),
            first_version: current_version + 1,
            last_version: new_version,
            last_position,
        };
        Ok(Some((appended, recorded_rows(stream_id, events, rows, recorded_at, &placed))))
    }

    /// Appends `events` to a stream whose head the caller knows (`head`, or a new stream):
    /// on its own, in one statement, when no other append is under way (nobody to share a
    /// commit with: no hop through a task); otherwise with the appends of other commands
    /// waiting meanwhile (group commit, [`PostgresStorage::append_with_others`]), and on its
    /// own after all if the group could not take it. `None`: nothing appended, its
    /// idempotency key being claimed before.
    pub(super) async fn append_known(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        head: Option<&super::KnownHead>,
        events: Vec<NewEvent>,
        idempotency: Option<&IdempotencyKey>,
        recorded_at: DateTime<Utc>,
    ) -> Result<Option<StoredAppend>, StoreError> {
        let events = {
            let (_alone, only) = AppendingAlone::enter(&self.appending_alone);
            if only && self.appends.is_idle() {
                return self.append(stream_id, expected, head, &events, idempotency, recorded_at).await;
            }
            let (version, hash) = head.map_or((0, GENESIS.to_vec()), |h| (h.version, h.hash.clone()));
            match self.append_with_others(stream_id, version, hash, events, idempotency, recorded_at).await? {
                GroupAppend::Appended(stored) => return Ok(Some(stored)),
                GroupAppend::Alone(events) => events,
            }
        };
        self.append(stream_id, expected, head, &events, idempotency, recorded_at).await
    }

    /// Appends `events` after a head the caller knows (`current_version`, `previous_hash`),
    /// with the appends of other commands waiting meanwhile: one statement for the group
    /// (group commit), each append's idempotency key claimed in it. All or nothing: when the
    /// statement fails (a stream moved on, an event id repeated), nothing of the group is
    /// written and each append is handed back to be appended alone, for its own answer.
    async fn append_with_others(
        &self,
        stream_id: &str,
        current_version: i64,
        previous_hash: Vec<u8>,
        events: Vec<NewEvent>,
        idempotency: Option<&IdempotencyKey>,
        recorded_at: DateTime<Utc>,
    ) -> Result<GroupAppend, StoreError> {
        let (answer, answered) = oneshot::channel();
        let pending = PendingAppend {
            stream_id: stream_id.to_owned(),
            current_version,
            previous_hash,
            events,
            idempotency: idempotency.cloned(),
            answer,
        };
        if let Some((writer, group)) = self.appends.push(pending) {
            let store = self.clone();
            tokio::spawn(async move { writer.write_all(group, |group| store.append_group(group, recorded_at)).await });
        }
        // A group task that is gone (it panicked) may or may not have written the group: the
        // caller is told so, as for a connection lost during a commit.
        answered.await.map_err(|_| StoreError::Database {
            context: "appending events with others",
            source: sqlx::Error::WorkerCrashed,
        })
    }

    /// Writes a group of appends in one statement and answers each (see
    /// [`PostgresStorage::append_with_others`]). A second append to a stream of the group, or
    /// a second use of an idempotency key, is not taken: it goes alone.
    async fn append_group(&self, group: Vec<PendingAppend>, first_recorded_at: DateTime<Utc>) {
        // Never earlier than the first caller's clock reading, nor than the clock now.
        let recorded_at = self.clock.now().max(first_recorded_at);
        let mut taken: Vec<(PendingAppend, Vec<super::PreparedRow>)> = Vec::with_capacity(group.len());
        for pending in group {
            let repeated = taken.iter().any(|(t, _)| {
                t.stream_id == pending.stream_id
                    || (pending.idempotency.is_some()
                        && t.idempotency.as_ref().map(|k| &k.key) == pending.idempotency.as_ref().map(|k| &k.key))
            });
            if repeated {
                let _ = pending.answer.send(GroupAppend::Alone(pending.events));
                continue;
            }
            let rows = chain_rows(
                &pending.stream_id,
                pending.current_version,
                &pending.previous_hash,
                &pending.events,
                recorded_at,
            );
            taken.push((pending, rows));
        }
        let placed = match insert_group(&self.pool, &taken, recorded_at).await {
            Ok(placed) => placed,
            Err(error) => {
                tracing::debug!(%error, appends = taken.len(), "a group of appends failed; each goes alone");
                for (pending, _) in taken {
                    let _ = pending.answer.send(GroupAppend::Alone(pending.events));
                }
                return;
            }
        };
        for (pending, rows) in taken {
            // Its rows, in version order: none when its key was claimed before.
            let mut mine: Vec<(i64, i64, i64)> = placed
                .iter()
                .filter(|(stream, ..)| *stream == pending.stream_id)
                .map(|(_, v, p, t)| (*v, *p, *t))
                .collect();
            if mine.is_empty() {
                let _ = pending.answer.send(GroupAppend::Alone(pending.events));
                continue;
            }
            mine.sort_unstable_by_key(|&(version, ..)| version);
            let placed: Vec<(i64, i64)> =
                mine.iter().map(|&(_, position, transaction)| (position, transaction)).collect();
            let count = i64::try_from(pending.events.len()).unwrap_or(i64::MAX);
            let appended = Appended {
                stream_id: pending.stream_id.clone(),
                first_version: pending.current_version + 1,
                last_version: pending.current_version + count,
                last_position: placed.last().map_or(0, |&(position, _)| position),
            };
            let recorded = recorded_rows(&pending.stream_id, &pending.events, rows, recorded_at, &placed);
            let _ = pending.answer.send(GroupAppend::Appended((appended, recorded)));
        }
    }

    /// Appends to several streams in one transaction: all or nothing.
    /// `then`: inbox writes, in the same transaction; `agencies`: the agency configurations
    /// the caller decided with (see `Storage::append_together_resolving`).
    pub(super) async fn append_together(
        &self,
        appends: &[super::StreamAppend],
        recorded_at: DateTime<Utc>,
        heads: &[super::KnownHead],
        then: &[InboxResolution],
        agencies: Option<i64>,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut seen: Vec<&str> = Vec::new();
        let all_known = appends.iter().all(|append| {
            let known = append.expected == ExpectedVersion::NoStream
                || heads.iter().any(|h| h.stream_id == append.stream_id)
                || seen.contains(&append.stream_id.as_str());
            seen.push(&append.stream_id);
            known
        });
        if all_known {
            return self.append_in_one_statement(appends, recorded_at, heads, then, agencies).await;
        }
        let mut tx = self.pool.begin().await.map_err(StoreError::db("starting a multi-stream append"))?;
        if let Some(expected) = agencies {
            let count: i64 = sqlx::query_scalar(super::AGENCY_CONFIGURATIONS)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db("counting agency configurations"))?;
            if count != expected {
                return Err(StoreError::AgenciesChanged { expected });
            }
        }
        let mut done = Vec::with_capacity(appends.len());
        // The heads known or written by this transaction: those are not read.
        let mut written: Vec<(&str, i64, Vec<u8>)> =
            heads.iter().map(|h| (h.stream_id.as_str(), h.version, h.hash.clone())).collect();
        for append in appends {
            let known = written.iter().rev().find(|(stream, _, _)| *stream == append.stream_id);
            // A new stream's head is known too; if it exists after all, the insert conflicts.
            let head: Option<(i64, Vec<u8>)> = if let Some((_, version, hash)) = known {
                Some((*version, hash.clone()))
            } else if append.expected == ExpectedVersion::NoStream {
                None
            } else {
                sqlx::query_as(super::STREAM_HEAD)
                    .bind(&append.stream_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::db("reading the stream head"))?
            };
            let (current_version, previous_hash) = head.unwrap_or((0, GENESIS.to_vec()));
            check_expected(&append.stream_id, append.expected, current_version)?;
            let rows = chain_rows(&append.stream_id, current_version, &previous_hash, &append.events, recorded_at);
            let new_version = current_version + i64::try_from(append.events.len()).unwrap_or(i64::MAX);
            let placed =
                insert_events(&mut *tx, &append.stream_id, &append.events, &rows, recorded_at, None, new_version)
                    .await
                    .map_err(|e| map_append_error(e, &append.stream_id, append.expected, &append.events))?;
            if let Some(last) = rows.last() {
                written.push((&append.stream_id, new_version, last.hash.clone()));
            }
            done.push(Appended {
                stream_id: append.stream_id.clone(),
                first_version: current_version + 1,
                last_version: new_version,
                last_position: placed.last().map_or(0, |&(position, _)| position),
            });
        }
        for write in then {
            super::inbox::write_postgres(&mut tx, write).await.map_err(StoreError::db("writing the inbox"))?;
        }
        tx.commit().await.map_err(StoreError::db("committing a multi-stream append"))?;
        Ok(done)
    }

    /// A multi-stream append whose every head is known (new streams, `heads`, or written
    /// earlier in the same append), and the inbox's writes: one statement, so one round trip
    /// and one commit. The events are inserted in the order given. With `agencies`, every
    /// insert and update of the statement is joined to the check of their count, so that a
    /// count moved on writes nothing.
    ///
    /// Every value is read through a sub-select, which the planner does not look into (as the
    /// log's readers do, `dialect::Pg::after_checkpoint`): with the lists in sight PostgreSQL
    /// planned the statement again at every group, since a plan for this group's exact sizes —
    /// above all an empty list of stored rows to update — always looked cheaper than the
    /// generic one, and planning cost a fifth to a quarter of running it. Hidden, a connection
    /// keeps one plan.
    async fn append_in_one_statement(
        &self,
        appends: &[super::StreamAppend],
        recorded_at: DateTime<Utc>,
        heads: &[super::KnownHead],
        then: &[InboxResolution],
        agencies: Option<i64>,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut written: Vec<(&str, i64, Vec<u8>)> =
            heads.iter().map(|h| (h.stream_id.as_str(), h.version, h.hash.clone())).collect();
        let count: usize = appends.iter().map(|a| a.events.len()).sum();
        let mut streams: Vec<&str> = Vec::with_capacity(count);
        let mut versions: Vec<i64> = Vec::with_capacity(count);
        let mut ids: Vec<uuid::Uuid> = Vec::with_capacity(count);
        let mut types: Vec<&str> = Vec::with_capacity(count);
        let mut schema_versions: Vec<i32> = Vec::with_capacity(count);
        let mut payloads: Vec<&Value> = Vec::with_capacity(count);
        let mut metadata: Vec<Value> = Vec::with_capacity(count);
        let mut hashes: Vec<Vec<u8>> = Vec::with_capacity(count);
        let mut done = Vec::with_capacity(appends.len());
        for append in appends {
            let (current_version, previous_hash) = written
                .iter()
                .rev()
                .find(|(stream, _, _)| *stream == append.stream_id)
                .map_or_else(|| (0, GENESIS.to_vec()), |(_, version, hash)| (*version, hash.clone()));
            check_expected(&append.stream_id, append.expected, current_version)?;
            let rows = chain_rows(&append.stream_id, current_version, &previous_hash, &append.events, recorded_at);
            let new_version = current_version + i64::try_from(append.events.len()).unwrap_or(i64::MAX);
            for (event, row) in append.events.iter().zip(rows) {
                streams.push(&append.stream_id);
                versions.push(row.stream_version);
                ids.push(event.event_id);
                types.push(&event.event_type);
                schema_versions.push(event.schema_version);
                payloads.push(&event.payload);
                metadata.push(row.metadata);
                hashes.push(row.hash);
            }
            if let Some(hash) = hashes.last() {
                written.push((&append.stream_id, new_version, hash.clone()));
            }
            done.push(Appended {
                stream_id: append.stream_id.clone(),
                first_version: current_version + 1,
                last_version: new_version,
                last_position: 0,
            });
        }
        // Rows stored before get their outcome; arriving requests are inserted with theirs.
        let (mut outcomes, mut arrivals) = (Vec::new(), Vec::new());
        for resolution in then {
            match &resolution.row {
                InboxRow::Stored(id) => outcomes.push((*id, resolution)),
                InboxRow::Arriving(request) => arrivals.push((request.as_ref(), resolution)),
            }
        }
        let arrived = |f: fn(&ReceivedRequest) -> &str| arrivals.iter().map(|(r, _)| f(r)).collect::<Vec<_>>();
        let inserted: Result<Vec<(i64, String)>, sqlx::Error> = sqlx::query_as(
            "WITH agencies AS ( \
                 SELECT (SELECT $16::bigint) IS NULL \
                     OR (SELECT $16::bigint) = (SELECT count(*) FROM events WHERE event_type = 'AgencyConfigured') AS ok \
             ), inbox AS ( \
                 UPDATE bank_notifications b SET outcome = r.outcome, outcome_detail = r.detail, \
                     credit_id = r.credit_id, http_status = r.status, processed_at = r.at \
                 FROM UNNEST((SELECT $10::text[]), (SELECT $11::text[]), (SELECT $12::text[]), \
                     (SELECT $13::int[]), (SELECT $14::timestamptz[]), (SELECT $15::bigint[])) \
                     AS r(outcome, detail, credit_id, status, at, id), agencies \
                 WHERE agencies.ok AND b.id = r.id RETURNING 1 \
             ), arrived AS ( \
                 INSERT INTO bank_notifications (provider, received_at, method, uri, headers, body, body_truncated, \
                     outcome, outcome_detail, credit_id, http_status, processed_at) \
                 SELECT provider, received, method, uri, headers::jsonb, body, truncated, outcome, detail, credit_id, status, at \
                 FROM UNNEST((SELECT $17::text[]), (SELECT $18::timestamptz[]), (SELECT $19::text[]), \
                     (SELECT $20::text[]), (SELECT $21::text[]), (SELECT $22::bytea[]), (SELECT $23::bool[]), \
                     (SELECT $24::text[]), (SELECT $25::text[]), (SELECT $26::text[]), (SELECT $27::int[]), \
                     (SELECT $28::timestamptz[])) WITH ORDINALITY \
                     AS a(provider, received, method, uri, headers, body, truncated, outcome, detail, credit_id, status, at, n), \
                     agencies \
                 WHERE agencies.ok ORDER BY n RETURNING 1 \
             ) \
             INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
             SELECT s, v, id, t, sv, p, m, $1, h \
             FROM UNNEST((SELECT $2::text[]), (SELECT $3::bigint[]), (SELECT $4::uuid[]), (SELECT $5::text[]), \
                  (SELECT $6::int[]), (SELECT $7::jsonb[]), (SELECT $8::jsonb[]), (SELECT $9::bytea[])) \
                  WITH ORDINALITY AS x(s, v, id, t, sv, p, m, h, n), agencies \
             WHERE agencies.ok ORDER BY n \
             RETURNING global_position, stream_id",
        )
        .bind(recorded_at)
        .bind(&streams)
        .bind(&versions)
        .bind(&ids)
        .bind(&types)
        .bind(&schema_versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&hashes)
        .bind(outcomes.iter().map(|(_, r)| r.outcome.as_str()).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|(_, r)| r.detail.as_deref()).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|(_, r)| r.credit_id.as_deref()).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|(_, r)| r.http_status.map(i32::from)).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|(_, r)| r.at).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(agencies)
        .bind(arrived(|r| r.provider))
        .bind(arrivals.iter().map(|(r, _)| r.received_at).collect::<Vec<_>>())
        .bind(arrived(|r| &r.method))
        .bind(arrived(|r| &r.uri))
        .bind(arrivals.iter().map(|(r, _)| r.headers.to_string()).collect::<Vec<_>>())
        .bind(arrivals.iter().map(|(r, _)| r.body.as_slice()).collect::<Vec<_>>())
        .bind(arrivals.iter().map(|(r, _)| r.body_truncated).collect::<Vec<_>>())
        .bind(arrivals.iter().map(|(_, a)| a.outcome.as_str()).collect::<Vec<_>>())
        .bind(arrivals.iter().map(|(_, a)| a.detail.as_deref()).collect::<Vec<_>>())
        .bind(arrivals.iter().map(|(_, a)| a.credit_id.as_deref()).collect::<Vec<_>>())
        .bind(arrivals.iter().map(|(_, a)| a.http_status.map(i32::from)).collect::<Vec<_>>())
        .bind(arrivals.iter().map(|(_, a)| a.at).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await;
        match inserted {
            Ok(positions) if positions.len() < count => {
                // The check of the agencies' count joined nothing: nothing was written.
                Err(StoreError::AgenciesChanged { expected: agencies.unwrap_or_default() })
            }
            Ok(positions) => {
                for appended in &mut done {
                    appended.last_position = positions
                        .iter()
                        .filter(|(_, stream)| *stream == appended.stream_id)
                        .map(|(position, _)| *position)
                        .max()
                        .unwrap_or_default();
                }
                Ok(done)
            }
            Err(error) => {
                // Which stream moved on: PostgreSQL names the key in the violation's detail.
                let detail = error
                    .as_database_error()
                    .and_then(|e| e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
                    .and_then(|e| e.detail())
                    .unwrap_or_default()
                    .to_owned();
                let culprit = appends
                    .iter()
                    .find(|a| detail.contains(&format!("=({}, ", a.stream_id)))
                    .or_else(|| appends.first())
                    .ok_or_else(|| StoreError::Corrupt { position: 0, reason: "an empty append".into() })?;
                Err(map_append_error(error, &culprit.stream_id, culprit.expected, &culprit.events))
            }
        }
    }

    /// The checkpoint of the newest (in read order) of these events that the log holds.
    pub async fn newest_of_events(&self, event_ids: &[uuid::Uuid]) -> Result<Option<Checkpoint>, StoreError> {
        let newest: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id::text::bigint, global_position FROM events WHERE event_id = ANY($1) \
             ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
        )
        .bind(event_ids)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("looking up events by id"))?;
        Ok(newest.map(|(transaction_id, position)| Checkpoint { transaction_id, position }))
    }

    /// A connection listening for `NOTIFY feeledger_events` from every node.
    pub async fn listen(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(StoreError::db("opening a LISTEN connection"))?;
        listener.listen("feeledger_events").await.map_err(StoreError::db("LISTEN feeledger_events"))?;
        Ok(listener)
    }
}

/// Where a read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSource {
    /// There is no replica.
    Primary,
    Replica,
    /// The replica lagged or did not answer.
    PrimaryInstead,
}

/// Whether `replica` has replayed everything `primary` had written when this was called,
/// waiting up to [`REPLICA_WAIT`]. A replica that was promoted (not in recovery) has.
async fn replica_has_replayed(primary: &PgPool, replica: &PgPool) -> Result<bool, sqlx::Error> {
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(primary).await?;
    let deadline = tokio::time::Instant::now() + REPLICA_WAIT;
    let mut connection = replica.acquire().await?;
    loop {
        let replayed: bool = sqlx::query_scalar(
            "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, NOT pg_is_in_recovery())",
        )
        .bind(&written)
        .fetch_one(&mut *connection)
        .await?;
        if replayed {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How often a node looks for tables whose statistics are out of date, on a server whose
/// autovacuum is off.
const STATISTICS_EVERY: Duration = Duration::from_secs(5);
/// Tables smaller than this many pages (8 KiB each) are left alone: a few hundred events.
const STATISTICS_MIN_PAGES: i64 = 16;

/// On a server with autovacuum off, does what its autoanalyze would: `ANALYZE`s each table of
/// the schema (of 16 pages or more) once more rows changed since its last analysis than 50 and
/// a tenth of the rows it had then (PostgreSQL's default thresholds). With autovacuum on, does
/// nothing.
///
/// Without statistics, a table is planned by its size at planning time, and a connection
/// caches a generic plan after a few runs of a prepared statement: one cached while `events`
/// was small reads a stream by scanning the whole log, for as long as the connection lives
/// (docs/BENCHMARKS.md, the p99 modes). Analysing once is not enough either: statistics taken
/// from a small log (few distinct streams) make reads by stream look large as the log grows,
/// and the plans turn to scans again. Each `ANALYZE` invalidates the plans cached on the table.
/// A role that may not analyse a table gets a warning from PostgreSQL and nothing else. Ends
/// when the store is dropped.
async fn keep_statistics(pool: PgPool) {
    loop {
        tokio::time::sleep(STATISTICS_EVERY).await;
        let tables: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
            "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
             WHERE current_setting('autovacuum') = 'off' AND s.schemaname = current_schema() \
               AND pg_relation_size(c.oid) >= $1 * current_setting('block_size')::bigint \
               AND s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)",
        )
        .bind(STATISTICS_MIN_PAGES)
        .fetch_all(&pool)
        .await;
        match tables {
            Ok(tables) => {
                for table in tables {
                    let analyse = format!("ANALYZE \"{}\"", table.replace('"', "\"\""));
                    match sqlx::query(&analyse).execute(&pool).await {
                        Ok(_) => tracing::info!(db.table = %table, "analysed a table (autovacuum is off)"),
                        Err(error) => tracing::debug!(db.table = %table, %error, "could not analyse a table"),
                    }
                }
            }
            // A standby (after a failover, before the pool follows the primary), or a lost
            // connection: the next look.
            Err(error) => tracing::debug!(%error, "could not look for tables to analyse"),
        }
    }
}

/// The shortest time between two `NOTIFY`s of one node.
const NOTIFY_EVERY: Duration = Duration::from_millis(5);

/// Tells every node that new events were committed: `NOTIFY feeledger_events`, sent after
/// commit, outside the append transaction (a transaction that notifies takes PostgreSQL's global
/// notify lock at commit, which would serialise all appends). The first append after a quiet
/// spell is announced at once; announcements that arrive within [`NOTIFY_EVERY`] of a NOTIFY are
/// folded into the next, which carries the newest position. A NOTIFY is a transaction of its
/// own and wakes every node's listener (this one's too), so one per append would double what
/// PostgreSQL commits under load (issue 17). Listeners also poll, so a NOTIFY lost in a crash
/// only delays them. Ends when the store is dropped.
async fn notify_other_nodes(pool: PgPool, mut notices: broadcast::Receiver<StoreNotice>) {
    loop {
        let mut newest = match notices.recv().await {
            Ok(notice) => notice.last_position,
            Err(broadcast::error::RecvError::Lagged(_)) => 0,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        loop {
            match notices.try_recv() {
                Ok(notice) => newest = newest.max(notice.last_position),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Closed) => return,
            }
        }
        if let Err(error) =
            sqlx::query("SELECT pg_notify('feeledger_events', $1)").bind(newest.to_string()).execute(&pool).await
        {
            tracing::warn!(%error, "could not notify other nodes; they will find the events by polling");
        }
        tokio::time::sleep(NOTIFY_EVERY).await;
    }
}

/// The group's statement (`PostgresStorage::append_group`). An append whose stream holds an
/// event past the head it read is left out (nothing of it written, its key not claimed), so
/// that one stale command does not undo the group; of the others, every idempotency key is
/// claimed, and the events of every append whose key was claimed now (or that has none) are
/// inserted, in the group's order. A stream moved on by a transaction still under way is
/// caught by the unique `(stream_id, stream_version)`: the statement fails as a whole. Returns
/// `(stream, version, global position, transaction id)` of each row inserted. The lists are
/// hidden from the planner, so that a connection keeps one plan (see
/// `PostgresStorage::append_in_one_statement`).
async fn insert_group(
    pool: &PgPool,
    taken: &[(PendingAppend, Vec<super::PreparedRow>)],
    recorded_at: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
    let keys: Vec<Option<&str>> = taken.iter().map(|(p, _)| p.idempotency.as_ref().map(|k| k.key.as_str())).collect();
    let hashes: Vec<Option<Vec<u8>>> =
        taken.iter().map(|(p, _)| p.idempotency.as_ref().map(|k| k.request_hash.to_vec())).collect();
    let streams: Vec<&str> = taken.iter().map(|(p, _)| p.stream_id.as_str()).collect();
    let reached: Vec<i64> =
        taken.iter().map(|(p, _)| p.current_version + i64::try_from(p.events.len()).unwrap_or(i64::MAX)).collect();
    let rows =
        taken.iter().flat_map(|(p, rows)| p.events.iter().zip(rows).map(move |(e, r)| (p.stream_id.as_str(), e, r)));
    let (mut s, mut v, mut id, mut t, mut sv, mut payload, mut m, mut h) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (stream, event, row) in rows {
        s.push(stream);
        v.push(row.stream_version);
        id.push(event.event_id);
        t.push(event.event_type.as_str());
        sv.push(event.schema_version);
        payload.push(&event.payload);
        m.push(&row.metadata);
        h.push(row.hash.as_slice());
    }
    sqlx::query_as(
        "WITH input AS ( \
             SELECT i.*, NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = i.stream AND e.stream_version > i.head) AS fresh \
             FROM UNNEST((SELECT $1::text[]), (SELECT $2::bytea[]), (SELECT $3::text[]), (SELECT $4::bigint[]), \
                  (SELECT $14::bigint[])) AS i(key, request_hash, stream, reached, head) \
         ), claim AS ( \
             INSERT INTO command_idempotency (idempotency_key, request_hash, stream_id, stream_version, recorded_at) \
             SELECT key, request_hash, stream, reached, $5 FROM input WHERE fresh AND key IS NOT NULL \
             ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING idempotency_key \
         ) \
         INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
         SELECT x.s, x.v, x.id, x.t, x.sv, x.p, x.m, $5, x.h \
         FROM UNNEST((SELECT $6::text[]), (SELECT $7::bigint[]), (SELECT $8::uuid[]), (SELECT $9::text[]), \
              (SELECT $10::int[]), (SELECT $11::jsonb[]), (SELECT $12::jsonb[]), (SELECT $13::bytea[])) \
              WITH ORDINALITY AS x(s, v, id, t, sv, p, m, h, n) \
         JOIN input ON input.stream = x.s \
         WHERE input.fresh AND (input.key IS NULL OR EXISTS (SELECT 1 FROM claim WHERE claim.idempotency_key = input.key)) \
         ORDER BY x.n \
         RETURNING stream_id, stream_version, global_position, transaction_id::text::bigint",
    )
    .bind(keys)
    .bind(hashes)
    .bind(streams)
    .bind(reached)
    .bind(recorded_at)
    .bind(s)
    .bind(v)
    .bind(id)
    .bind(t)
    .bind(sv)
    .bind(payload)
    .bind(m)
    .bind(h)
    .bind(taken.iter().map(|(p, _)| p.current_version).collect::<Vec<_>>())
    .fetch_all(pool)
    .await
}

/// One statement, one round trip: claims the idempotency key (if any) and inserts all the
/// events of the append only if the claim succeeded. Returns where each event was placed,
/// `(global position, transaction id)`, in version order (none when the key was already
/// claimed).
async fn insert_events<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    stream_id: &str,
    events: &[NewEvent],
    rows: &[super::PreparedRow],
    recorded_at: DateTime<Utc>,
    idempotency: Option<&IdempotencyKey>,
    new_version: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let versions: Vec<i64> = rows.iter().map(|r| r.stream_version).collect();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let schema_versions: Vec<i32> = events.iter().map(|e| e.schema_version).collect();
    let payloads: Vec<Value> = events.iter().map(|e| e.payload.clone()).collect();
    let metadata: Vec<Value> = rows.iter().map(|r| r.metadata.clone()).collect();
    let hashes: Vec<Vec<u8>> = rows.iter().map(|r| r.hash.clone()).collect();
    let placed: Vec<(i64, i64, i64)> = sqlx::query_as(
        "WITH claim AS ( \
             INSERT INTO command_idempotency (idempotency_key, request_hash, stream_id, stream_version, recorded_at) \
             SELECT $10, $11, $1, $12, $2 WHERE $10::text IS NOT NULL \
             ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING 1 \
         ) \
         INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
         SELECT $1, v, id, t, sv, p, m, $2, h \
         FROM UNNEST($3::bigint[], $4::uuid[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[], $9::bytea[]) \
              AS x(v, id, t, sv, p, m, h) \
         WHERE $10::text IS NULL OR EXISTS (SELECT 1 FROM claim) \
         RETURNING stream_version, global_position, transaction_id::text::bigint",
    )
    .bind(stream_id)
    .bind(recorded_at)
    .bind(versions)
    .bind(ids)
    .bind(types)
    .bind(schema_versions)
    .bind(payloads)
    .bind(metadata)
    .bind(hashes)
    .bind(idempotency.map(|k| k.key.as_str()))
    .bind(idempotency.map(|k| k.request_hash.to_vec()))
    .bind(new_version)
    .fetch_all(executor)
    .await?;
    // SQL does not promise RETURNING's order: put the rows back in version order.
    let mut placed: Vec<(i64, i64, i64)> = placed;
    placed.sort_unstable_by_key(|&(version, _, _)| version);
    Ok(placed.into_iter().map(|(_, position, transaction_id)| (position, transaction_id)).collect())
}
