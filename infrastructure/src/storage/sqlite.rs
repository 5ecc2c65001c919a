//! The SQLite backend: the embedded default for one office. WAL mode lets readers run while
//! the single writer appends; `BEGIN IMMEDIATE` takes the write lock up front so two writers
//! (say, the server and a CLI command) queue on the busy timeout instead of failing.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{broadcast, oneshot};

use super::group_commit::GroupQueue;
use super::hash_chain::{GENESIS, timestamp_text};
use super::inbox::InboxResolution;
use super::{
    Appended, ExpectedVersion, IdempotencyKey, NewEvent, StoreCounters, StoreError, StoreNotice, StoreOptions,
    StoredAppend, chain_rows, check_expected, map_append_error, recorded_rows,
};
use crate::clock::Clock;

/// Each reading connection's page cache (`PRAGMA cache_size`; negative: KiB). SQLite keeps one
/// cache per connection, 2 MiB by default; as 10,000 screens read their displays, eight readers
/// filled theirs with copies of the same pages (issue 17, docs/BENCHMARKS.md "SQLite under
/// 150 MB"). A page a reader lacks comes from the operating system's cache of the file, which
/// every connection shares. The writer keeps the default: it walks the indexes it updates on
/// every commit.
const READER_CACHE_SIZE: &str = "-256";

/// The most reading connections (each is a thread of its own in sqlx, with its cache and its
/// prepared statements): 4 served 32 concurrent notifications as fast as 8 did.
const MAX_READERS: u32 = 4;

#[derive(Debug, Clone)]
pub struct SqliteStorage {
    /// For reads (WAL: readers do not wait for the writer).
    pool: SqlitePool,
    /// One connection for every write: writers queue here, in order, rather than collide on
    /// SQLite's write lock, whose busy handler sleeps between tries (1, 2, 5 … 100 ms): with
    /// 32 concurrent notifications on 8 colliding connections that made p99 ~210 ms and the
    /// slowest over a second (issue 17, docs/BENCHMARKS.md).
    writer: SqlitePool,
    notices: broadcast::Sender<StoreNotice>,
    /// What `recorded_at` is read from.
    pub(super) clock: Clock,
    pub(super) counters: Arc<StoreCounters>,
    /// Appends waiting for the writer (group commit, see `append_together`).
    appends: GroupQueue<QueuedAppend>,
}

/// At most this many appends share one transaction.
const APPENDS_PER_COMMIT: usize = 32;

/// An append waiting for the writer.
#[derive(Debug)]
enum QueuedAppend {
    /// To one stream ([`SqliteStorage::append`]).
    One {
        stream_id: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
        recorded_at: DateTime<Utc>,
        answer: oneshot::Sender<Result<Option<StoredAppend>, StoreError>>,
    },
    /// To several streams ([`SqliteStorage::append_together`]).
    Together {
        appends: Vec<super::StreamAppend>,
        recorded_at: DateTime<Utc>,
        then: Vec<InboxResolution>,
        agencies: Option<i64>,
        answer: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
    },
}

/// What an append did inside a group's transaction.
#[derive(Debug)]
enum GroupResult {
    One(Result<Option<StoredAppend>, StoreError>),
    Together(Result<Vec<Appended>, StoreError>),
}

impl GroupResult {
    fn is_err(&self) -> bool {
        matches!(self, GroupResult::One(Err(_)) | GroupResult::Together(Err(_)))
    }
}

impl QueuedAppend {
    /// Writes this append inside the write transaction numbered `transaction_id`.
    async fn write(&self, tx: &mut Transaction<'static, Sqlite>, transaction_id: i64) -> GroupResult {
        match self {
            QueuedAppend::One { stream_id, expected, events, idempotency, recorded_at, .. } => {
                let idempotency = idempotency.as_ref();
                GroupResult::One(
                    write_one(tx, stream_id, *expected, events, idempotency, *recorded_at, transaction_id).await,
                )
            }
            QueuedAppend::Together { appends, recorded_at, then, agencies, .. } => {
                GroupResult::Together(write_together(tx, appends, *recorded_at, transaction_id, then, *agencies).await)
            }
        }
    }

    /// `error` as this append's result.
    fn failed(&self, error: StoreError) -> GroupResult {
        match self {
            QueuedAppend::One { .. } => GroupResult::One(Err(error)),
            QueuedAppend::Together { .. } => GroupResult::Together(Err(error)),
        }
    }

    /// Tells the waiting caller its result.
    fn answer(self, result: GroupResult) {
        match (self, result) {
            (QueuedAppend::One { answer, .. }, GroupResult::One(result)) => {
                let _ = answer.send(result);
            }
            (QueuedAppend::Together { answer, .. }, GroupResult::Together(result)) => {
                let _ = answer.send(result);
            }
            // Never: a result is of its append's kind. Dropping the sender tells the caller.
            _ => {}
        }
    }
}

/// What a caller gets when the writing task stopped (a panic) before answering: nothing of its
/// append is known to be stored, and the request fails rather than waits.
fn writer_stopped(_: oneshot::error::RecvError) -> StoreError {
    StoreError::Schema("the SQLite writing task stopped before answering an append".into())
}

impl SqliteStorage {
    pub(super) async fn connect(
        url: &str,
        options: StoreOptions,
        notices: broadcast::Sender<StoreNotice>,
    ) -> Result<Self, StoreError> {
        let connect_options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::db("parsing the SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed payment survives a power cut, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // No check before a connection is lent (sqlx's default is a round trip to the
        // connection's worker thread per statement): a connection to a local file is not cut.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms))
            .connect_with(connect_options.clone())
            .await
            .map_err(StoreError::db("opening the SQLite database"))?;
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            // Reads are CPU work on a local file: more readers than a small machine has cores
            // add threads, caches and prepared statements, not throughput.
            .max_connections(options.max_connections.clamp(1, MAX_READERS))
            .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms))
            .connect_with(connect_options.pragma("cache_size", READER_CACHE_SIZE))
            .await
            .map_err(StoreError::db("opening the SQLite database"))?;
        Ok(SqliteStorage {
            pool,
            writer,
            notices,
            clock: Clock::system(),
            counters: Arc::default(),
            appends: GroupQueue::new(1, APPENDS_PER_COMMIT),
        })
    }

    /// The pool, for the read models and other tables that live beside the event log.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool, for tests that act as a second client of the same database (tampering as a
    /// superuser could, holding transactions open across a failover). Not in the product build.
    #[cfg(any(test, feature = "test-support"))]
    pub fn test_pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The one writing connection (see the field).
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// A write transaction holding SQLite's write lock from the start.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    pub(super) fn notices(&self) -> &broadcast::Sender<StoreNotice> {
        &self.notices
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations/sqlite").run(&self.writer).await?;
        Ok(())
    }

    pub(super) async fn check_schema(&self) -> Result<(), StoreError> {
        let wanted = sqlx::migrate!("../migrations/sqlite").iter().map(|m| m.version).max().unwrap_or(0);
        let found =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await;
        super::schema_is_current(found, wanted)
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Appends to one stream (see `append_together` for how appends share the writer).
    pub(super) async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        idempotency: Option<&IdempotencyKey>,
        recorded_at: DateTime<Utc>,
    ) -> Result<Option<StoredAppend>, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.queue(QueuedAppend::One {
            stream_id: stream_id.to_owned(),
            expected,
            events: events.to_vec(),
            idempotency: idempotency.cloned(),
            recorded_at,
            answer,
        });
        answered.await.map_err(writer_stopped)?
    }

    /// Puts `append` in the queue, and starts the writing task if none runs.
    fn queue(&self, append: QueuedAppend) {
        if let Some((writer, group)) = self.appends.push(append) {
            let store = self.clone();
            tokio::spawn(async move { writer.write_all(group, |group| store.write_group(group)).await });
        }
    }

    /// Appends to several streams in one transaction: all or nothing.
    /// `then`: inbox rows' outcomes, written in the same transaction.
    ///
    /// Group commit: SQLite has one writer, and a commit is a sync of the log to disk. Appends
    /// that arrive while the writer is busy wait, and the next transaction writes them
    /// together, each inside a savepoint of its own: one whose stream moved on (or that fails
    /// otherwise) is rolled back alone and gets its own error, the others commit, once. If the
    /// group's transaction fails as a whole, the writer appends each alone. The group is
    /// written by a task of its own, so a caller that gives up does not cut short the others'
    /// appends.
    pub(super) async fn append_together(
        &self,
        appends: &[super::StreamAppend],
        recorded_at: DateTime<Utc>,
        // One writer: the heads are read inside the write transaction, at no network cost.
        _heads: &[super::KnownHead],
        then: &[InboxResolution],
        agencies: Option<i64>,
    ) -> Result<Vec<Appended>, StoreError> {
        let (answer, answered) = oneshot::channel();
        let then = then.to_vec();
        self.queue(QueuedAppend::Together { appends: appends.to_vec(), recorded_at, then, agencies, answer });
        answered.await.map_err(writer_stopped)?
    }

    async fn write_group(&self, group: Vec<QueuedAppend>) {
        if group.len() > 1 {
            match self.append_group(&group).await {
                Ok(results) => {
                    for (queued, result) in group.into_iter().zip(results) {
                        queued.answer(result);
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, appends = group.len(), "appending together failed; each appends alone");
                }
            }
        }
        for queued in group {
            let result = self.append_alone(&queued).await;
            queued.answer(result);
        }
    }

    /// One transaction for the whole group, a savepoint for each append in it. The outer
    /// error is the transaction's (nothing of the group is stored); the inner ones, each
    /// append's own (nothing of that append is stored).
    async fn append_group(&self, group: &[QueuedAppend]) -> Result<Vec<GroupResult>, StoreError> {
        let context = "appending a group of appends";
        let mut tx = self.begin_write().await.map_err(StoreError::db(context))?;
        let transaction_id = next_transaction_id(&mut tx).await?;
        let mut results = Vec::with_capacity(group.len());
        for queued in group {
            sqlx::query("SAVEPOINT one_append").execute(&mut *tx).await.map_err(StoreError::db(context))?;
            let result = queued.write(&mut tx, transaction_id).await;
            // A repeated request (`Ok(None)`) wrote nothing: releasing its savepoint is enough.
            if result.is_err() {
                sqlx::query("ROLLBACK TO one_append").execute(&mut *tx).await.map_err(StoreError::db(context))?;
            }
            sqlx::query("RELEASE one_append").execute(&mut *tx).await.map_err(StoreError::db(context))?;
            results.push(result);
        }
        tx.commit().await.map_err(StoreError::db(context))?;
        Ok(results)
    }

    /// One append in a transaction of its own.
    async fn append_alone(&self, queued: &QueuedAppend) -> GroupResult {
        let begun = async {
            let mut tx = self.begin_write().await.map_err(StoreError::db("starting an append"))?;
            let transaction_id = next_transaction_id(&mut tx).await?;
            Ok((tx, transaction_id))
        };
        let (mut tx, transaction_id) = match begun.await {
            Ok(begun) => begun,
            Err(error) => return queued.failed(error),
        };
        let result = queued.write(&mut tx, transaction_id).await;
        if result.is_err() {
            // Dropped: rolled back.
            return result;
        }
        match tx.commit().await {
            Ok(()) => result,
            Err(error) => queued.failed(match queued {
                QueuedAppend::One { stream_id, expected, events, .. } => {
                    map_append_error(error, stream_id, *expected, events)
                }
                QueuedAppend::Together { .. } => StoreError::db("committing a multi-stream append")(error),
            }),
        }
    }
}

/// One stream's append inside the write transaction numbered `transaction_id`; `None` when its
/// idempotency key was used already (a repeated request: nothing written).
async fn write_one(
    tx: &mut Transaction<'static, Sqlite>,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    idempotency: Option<&IdempotencyKey>,
    recorded_at: DateTime<Utc>,
    transaction_id: i64,
) -> Result<Option<StoredAppend>, StoreError> {
    let (current_version, previous_hash) = stream_head(tx, stream_id).await?;
    check_expected(stream_id, expected, current_version)?;
    if let Some(key) = idempotency {
        let new_version = current_version + i64::try_from(events.len()).unwrap_or(i64::MAX);
        let claimed = sqlx::query(
            "INSERT INTO command_idempotency (idempotency_key, request_hash, stream_id, stream_version, recorded_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&key.key)
        .bind(key.request_hash.as_slice())
        .bind(stream_id)
        .bind(new_version)
        .bind(timestamp_text(recorded_at))
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("claiming the idempotency key"))?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
    }
    let head = (current_version, previous_hash);
    let (appended, rows, positions) =
        write_stream(tx, stream_id, expected, events, head, recorded_at, transaction_id).await?;
    let placed: Vec<(i64, i64)> = positions.into_iter().map(|position| (position, transaction_id)).collect();
    Ok(Some((appended, recorded_rows(stream_id, events, rows, recorded_at, &placed))))
}

/// The streams of one multi-stream append, and its inbox writes, inside the write transaction;
/// nothing when the agency configurations are no longer `agencies`.
async fn write_together(
    tx: &mut Transaction<'static, Sqlite>,
    appends: &[super::StreamAppend],
    recorded_at: DateTime<Utc>,
    transaction_id: i64,
    then: &[InboxResolution],
    agencies: Option<i64>,
) -> Result<Vec<Appended>, StoreError> {
    if let Some(expected) = agencies {
        let count: i64 = sqlx::query_scalar(super::AGENCY_CONFIGURATIONS)
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::db("counting agency configurations"))?;
        if count != expected {
            return Err(StoreError::AgenciesChanged { expected });
        }
    }
    let mut done = Vec::with_capacity(appends.len());
    for append in appends {
        let head = stream_head(tx, &append.stream_id).await?;
        let (stream, expected, events) = (&append.stream_id, append.expected, &append.events);
        done.push(write_stream(tx, stream, expected, events, head, recorded_at, transaction_id).await?.0);
    }
    for write in then {
        super::inbox::write_sqlite(tx, write).await.map_err(StoreError::db("writing the inbox"))?;
    }
    Ok(done)
}

/// One writer at a time holds the lock, so "the last transaction id + 1" is this transaction's
/// place in commit order.
async fn next_transaction_id(tx: &mut Transaction<'static, Sqlite>) -> Result<i64, StoreError> {
    let (transaction_id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(transaction_id), 0) + 1 FROM events")
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("numbering the transaction"))?;
    Ok(transaction_id)
}

/// A stream's version and the hash its next event chains to.
async fn stream_head(tx: &mut Transaction<'static, Sqlite>, stream_id: &str) -> Result<(i64, Vec<u8>), StoreError> {
    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(super::STREAM_HEAD)
        .bind(stream_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::db("reading the stream head"))?;
    Ok(head.unwrap_or((0, GENESIS.to_vec())))
}

/// Appends `events` to a stream whose head is `head`, inside the write transaction; returns
/// the append, and its rows with their global positions for a caller that answers with the
/// events as stored (`write_one`; a multi-stream append does not).
async fn write_stream(
    tx: &mut Transaction<'static, Sqlite>,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    (current_version, previous_hash): (i64, Vec<u8>),
    recorded_at: DateTime<Utc>,
    transaction_id: i64,
) -> Result<(Appended, Vec<super::PreparedRow>, Vec<i64>), StoreError> {
    check_expected(stream_id, expected, current_version)?;
    let rows = chain_rows(stream_id, current_version, &previous_hash, events, recorded_at);
    let positions = insert_events(tx, stream_id, events, &rows, &timestamp_text(recorded_at), transaction_id)
        .await
        .map_err(|e| map_append_error(e, stream_id, expected, events))?;
    let appended = Appended {
        stream_id: stream_id.to_owned(),
        first_version: current_version + 1,
        last_version: current_version + i64::try_from(events.len()).unwrap_or(i64::MAX),
        last_position: positions.last().copied().unwrap_or_default(),
    };
    Ok((appended, rows, positions))
}

/// Inserts the rows of one stream's append, in version order; returns their global positions.
async fn insert_events(
    tx: &mut Transaction<'static, Sqlite>,
    stream_id: &str,
    events: &[NewEvent],
    rows: &[super::PreparedRow],
    recorded_text: &str,
    transaction_id: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut positions = Vec::with_capacity(events.len());
    for (event, row) in events.iter().zip(rows) {
        let result = sqlx::query(
            "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, \
             metadata, recorded_at, transaction_id, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(stream_id)
        .bind(row.stream_version)
        .bind(event.event_id.to_string())
        .bind(&event.event_type)
        .bind(event.schema_version)
        .bind(event.payload.to_string())
        .bind(row.metadata.to_string())
        .bind(recorded_text)
        .bind(transaction_id)
        .bind(row.hash.as_slice())
        .execute(&mut **tx)
        .await?;
        positions.push(result.last_insert_rowid());
    }
    Ok(positions)
}
