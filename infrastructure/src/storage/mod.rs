//! The storage module: the event log and the tables beside it (read-model documents, the bank
//! notification inbox, imported statements, settings), on one of two backends. Every line of
//! SQL in feeledger is here. A query the backends agree on is written once ([`dialect`]); what
//! really differs (connecting, the append path, the commit-order barrier, batch writes) is in
//! `postgres.rs` and `sqlite.rs`.
//!
//! - [`reads`]: the log's reads and lookups, written once;
//! - [`documents`]: read models, per projection and generation, with their checkpoints;
//! - [`lease`]: which node runs each projection;
//! - [`inbox`]: every bank notification as it arrived, and what became of it;
//! - [`statement_store`]: imported bank statement lines and balances.
//!
//! The event log: one contract, two backends.
//!
//! - **PostgreSQL** for a province or the country: many writers, readers on several nodes.
//! - **SQLite** (the embedded default) for one office: one writer, WAL mode.
//!
//! Both keep the same row shape (`events`: stream id and version, event id, type, schema
//! version, JSON payload and metadata, recording time, writing transaction, hash) and give the
//! same guarantees:
//! - appending with an expected version is atomic; a concurrent writer gets [`StoreError::Conflict`];
//! - reading "all events" in commit-safe order, resuming from a [`Checkpoint`], never skips an
//!   event that commits late (PostgreSQL: the `pg_snapshot_xmin` barrier; SQLite: single writer);
//! - every event is chained to the previous one of its stream by SHA-256 ([`hash_chain`]);
//! - command idempotency keys are stored in the same transaction as the events;
//! - the database itself rejects UPDATE, DELETE and TRUNCATE of events (triggers);
//! - after commit, the new position is announced on a bounded broadcast channel.

pub(crate) mod dialect;
pub mod documents;
pub mod failover;
pub(crate) mod group_commit;
pub mod hash_chain;
pub mod inbox;
pub mod lease;
mod postgres;
pub mod reads;
mod sqlite;
pub mod statement_store;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::clock::Clock;
use std::sync::atomic::{AtomicU64, Ordering};

pub use postgres::{PostgresStorage, REPLICA_WAIT, ReadSource};
pub use sqlite::SqliteStorage;

/// How many announcements a slow listener may fall behind before it is told it lagged (it then
/// re-reads from its checkpoint; nothing is lost, the channel only wakes readers up).
pub const NOTICE_CAPACITY: usize = 1024;

/// A stream's head: its version and the hash the next event chains to.
pub(crate) const STREAM_HEAD: &str =
    "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1";

/// The most events one `read_all` call returns.
pub const READ_BATCH_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream_id} was changed concurrently (expected version {expected})")]
    Conflict { stream_id: String, expected: ExpectedVersion },
    #[error("an agency was configured since the agencies were read (expected {expected} configurations)")]
    AgenciesChanged { expected: i64 },
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyKeyReused { key: String },
    #[error("event id {0} already exists")]
    DuplicateEventId(Uuid),
    #[error("database URL {0:?} is not supported: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    #[error("database URL {0}")]
    BadUrl(String),
    #[error("no PostgreSQL host accepts writes ({0})")]
    NoPrimary(String),
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("{context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Schema(String),
}

impl StoreError {
    pub fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { context, source }
    }

    /// Whether the database could not be reached (as opposed to a rejected statement): no
    /// connection, a connection cut, or a server shutting down, starting up or refusing
    /// sessions (SQLSTATE class 08, 57P01-57P03, 55000 "not accepting connections"), no host
    /// accepting writes, or a write that reached a standby (25006: a failover under way).
    pub fn is_unavailable(&self) -> bool {
        if matches!(self, StoreError::NoPrimary(_)) {
            return true;
        }
        let StoreError::Database { source, .. } = self else { return false };
        match source {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => true,
            sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(error) => error.code().is_some_and(|code| {
                code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "55000" | "25006")
            }),
            _ => false,
        }
    }
}

/// What the writer believes the stream's current version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(i64),
    /// Append whatever the version (only for streams with a single writer by design).
    Any,
}

impl ExpectedVersion {
    /// From the version a writer last read (0 = the stream had no events).
    pub fn from_read(version: i64) -> Self {
        if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) }
    }

    fn accepts(self, actual: i64) -> bool {
        match self {
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
            ExpectedVersion::Any => true,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
            ExpectedVersion::Any => f.write_str("any"),
        }
    }
}

/// Who did what and why, stored beside each event (and covered by its hash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: EventMetadata,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: i64,
    pub transaction_id: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

impl RecordedEvent {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { transaction_id: self.transaction_id, position: self.position }
    }
}

/// What the audit needs of an event to check the log's structure: where it is, when it was
/// recorded and its stored hash (no payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub recorded_at: DateTime<Utc>,
    pub hash: Vec<u8>,
}

/// An event with its payload and metadata as the stored JSON text: what the audit hashes in
/// canonical form, without building a JSON tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
    pub hash: Vec<u8>,
}

/// An event as a read model reads it: where it is in the log and its payload as the stored
/// JSON text, left unparsed so that the reader parses it once, straight into its type
/// (`LedgerEvent::decode_lean`). No metadata, no hash.
#[derive(Debug, Clone, PartialEq)]
pub struct LeanEvent {
    pub position: i64,
    pub transaction_id: i64,
    pub stream_id: String,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: String,
    pub recorded_at: DateTime<Utc>,
}

impl LeanEvent {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { transaction_id: self.transaction_id, position: self.position }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// A place in the commit-safe order of all events: resume reading strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub transaction_id: i64,
    pub position: i64,
}

impl Checkpoint {
    pub const START: Checkpoint = Checkpoint { transaction_id: 0, position: 0 };
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transaction_id, self.position)
    }
}

/// Parses the `transaction:position` form that `Display` writes (API cursors).
impl std::str::FromStr for Checkpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (transaction, position) = text.split_once(':').ok_or("expected transaction:position")?;
        let number = |part: &str| part.parse::<i64>().ok().filter(|n| *n >= 0).ok_or("not a non-negative number");
        Ok(Checkpoint { transaction_id: number(transaction)?, position: number(position)? })
    }
}

/// A client's idempotency key for one command, with a hash of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: [u8; 32],
}

impl IdempotencyKey {
    /// `scope` separates operations (a key reused for another mutation is another key).
    pub fn new(scope: &str, key: &str, request: &impl Serialize) -> Self {
        let canonical = serde_json::to_value(request).map(|v| hash_chain::canonical_json(&v)).unwrap_or_default();
        IdempotencyKey { key: format!("{scope}:{key}"), request_hash: hash_chain::sha256(canonical.as_bytes()) }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome {
    /// Appended; with the events as stored (positions, transaction, hashes), so that a caller
    /// can show them without reading the stream again.
    Appended(Appended, Vec<RecordedEvent>),
    /// The idempotency key was seen before with the same request: nothing was appended, and
    /// this is the stream version the first request produced.
    AlreadyDone { stream_id: String, stream_version: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub stream_id: String,
    pub first_version: i64,
    pub last_version: i64,
    pub last_position: i64,
}

impl AppendOutcome {
    pub fn stream_version(&self) -> i64 {
        match self {
            AppendOutcome::Appended(a, _) => a.last_version,
            AppendOutcome::AlreadyDone { stream_version, .. } => *stream_version,
        }
    }
}

/// A stream's head as the caller read it: its version and its last event's hash. An append
/// after a known head needs no read: if the stream moved on since, the insert conflicts (the
/// unique `(stream_id, stream_version)`), and events never change, so the hash is still right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHead {
    pub stream_id: String,
    pub version: i64,
    pub hash: Vec<u8>,
}

impl KnownHead {
    /// The head a stream had when `last` was its last event.
    pub fn of(last: &RecordedEvent) -> KnownHead {
        KnownHead { stream_id: last.stream_id.clone(), version: last.stream_version, hash: last.hash.clone() }
    }
}

/// One stream's part of a multi-stream append.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// How many agency configurations the log holds: payment intake keeps the agencies in memory
/// under this count.
pub(crate) const AGENCY_CONFIGURATIONS: &str = "SELECT count(*) FROM events WHERE event_type = 'AgencyConfigured'";

/// Announced after every commit. Carries no events: listeners re-read from their checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreNotice {
    pub stream_id: Arc<str>,
    pub last_position: i64,
}

/// The newest event's place and how many events there are, for lag and progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreHead {
    pub checkpoint: Checkpoint,
    pub event_count: i64,
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl FromStr for Backend {
    type Err = StoreError;
    fn from_str(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// A URL safe to log: any password is replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Pool sizes and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 16, acquire_timeout_ms: 5_000 }
    }
}

/// The event store, whichever backend holds it. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Storage {
    Postgres(PostgresStorage),
    Sqlite(SqliteStorage),
}

/// What a store counts for `/metrics`, shared by its clones and read views.
#[derive(Debug, Default)]
pub struct StoreCounters {
    appended: AtomicU64,
    /// Reads that could go to a replica: served by it, sent to the primary instead.
    replica_reads: [AtomicU64; 2],
    /// What [`Storage::take_counts`] last handed out.
    taken: [AtomicU64; 3],
}

/// What a store counted since the previous [`Storage::take_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub events_appended: u64,
    pub replica_reads: u64,
    pub primary_reads_instead: u64,
}

/// How many connections the pool holds and how many are busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// Forwards a call to whichever backend holds the store.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Storage::Postgres($store) => $call,
            Storage::Sqlite($store) => $call,
        }
    };
}

impl Storage {
    /// Connects to `postgres://…` or `sqlite://…` (the SQLite file is created if missing).
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Storage, StoreError> {
        let (notices, _) = broadcast::channel(NOTICE_CAPACITY);
        Ok(match url.parse::<Backend>()? {
            Backend::Postgres => Storage::Postgres(PostgresStorage::connect(url, options, notices).await?),
            Backend::Sqlite => Storage::Sqlite(SqliteStorage::connect(url, options, notices).await?),
        })
    }

    /// Sends the reads that tolerate a replica (see [`Storage::for_reads`]) to a host of
    /// `read_url` (`FEELEDGER_READ_DATABASE_URL`). PostgreSQL only.
    pub async fn with_read_replica(self, read_url: &str, options: StoreOptions) -> Result<Storage, StoreError> {
        match self {
            Storage::Postgres(pg) => Ok(Storage::Postgres(pg.with_read_replica(read_url, options).await?)),
            Storage::Sqlite(_) => {
                Err(StoreError::BadUrl(format!("{}: a read replica needs a PostgreSQL primary", redact_url(read_url))))
            }
        }
    }

    /// The store to use for a read that may be served by a read replica: case reads, reports'
    /// event reads, exports, audits. It reads from the replica once the replica has replayed
    /// every write committed before this call (read-your-writes), waiting at most
    /// [`REPLICA_WAIT`]; otherwise, and without a replica, it is this store. Never write
    /// through it. Borrowed when it is this store (no clone on every read of a case).
    pub async fn for_reads(&self) -> std::borrow::Cow<'_, Storage> {
        use std::borrow::Cow;
        match self {
            Storage::Postgres(pg) => {
                let (view, source) = pg.for_reads().await;
                let slot = match source {
                    ReadSource::Primary => None,
                    ReadSource::Replica => Some(0),
                    ReadSource::PrimaryInstead => Some(1),
                };
                if let Some(slot) = slot {
                    self.counters().replica_reads[slot].fetch_add(1, Ordering::Relaxed);
                }
                view.map_or(Cow::Borrowed(self), |view| Cow::Owned(Storage::Postgres(view)))
            }
            Storage::Sqlite(_) => Cow::Borrowed(self),
        }
    }

    /// Records `recorded_at` from `clock` (the one commands are decided by) instead of the
    /// system clock: a test that moves its clock moves the recording times with it.
    pub fn with_clock(mut self, clock: Clock) -> Storage {
        match &mut self {
            Storage::Postgres(s) => s.clock = clock,
            Storage::Sqlite(s) => s.clock = clock,
        }
        self
    }

    fn counters(&self) -> &StoreCounters {
        dispatch!(self, s => &s.counters)
    }

    fn count_appended(&self, events: usize) {
        self.counters().appended.fetch_add(u64::try_from(events).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Events appended through this store (and its clones) since it was opened.
    pub fn events_appended(&self) -> u64 {
        self.counters().appended.load(Ordering::Relaxed)
    }

    /// Reads served by the read replica, and reads that went to the primary because the replica
    /// lagged more than [`REPLICA_WAIT`] or did not answer, since the store was opened.
    pub fn replica_reads(&self) -> (u64, u64) {
        let reads = &self.counters().replica_reads;
        (reads[0].load(Ordering::Relaxed), reads[1].load(Ordering::Relaxed))
    }

    /// What this store counted since the last call: the process's metrics add it to their
    /// counters, so every store of the process (several nodes in one test) is counted once.
    pub fn take_counts(&self) -> StoreCounts {
        let counters = self.counters();
        let (replica, primary) = self.replica_reads();
        let totals = [self.events_appended(), replica, primary];
        let [appended, replica, primary] =
            std::array::from_fn(|i| totals[i].saturating_sub(counters.taken[i].swap(totals[i], Ordering::Relaxed)));
        StoreCounts { events_appended: appended, replica_reads: replica, primary_reads_instead: primary }
    }

    /// The store's clock.
    pub fn clock(&self) -> &Clock {
        dispatch!(self, s => &s.clock)
    }

    /// The time an append records: the clock's now, to the microsecond, which both backends
    /// store exactly, so the hash computed before the insert matches the row read back.
    fn now(&self) -> DateTime<Utc> {
        self.clock().now()
    }

    pub fn backend(&self) -> Backend {
        match self {
            Storage::Postgres(_) => Backend::Postgres,
            Storage::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the migrations of migrations/postgres or migrations/sqlite.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.migrate().await)
    }

    /// Checks that new events will be ordered after the stored ones (PostgreSQL: the cluster's
    /// transaction counter is ahead of the log, which a restore into another cluster can break).
    pub async fn check_transaction_counter(&self) -> Result<(), StoreError> {
        match self {
            Storage::Postgres(s) => s.check_transaction_counter().await,
            Storage::Sqlite(_) => Ok(()),
        }
    }

    /// Checks, without changing anything, that the schema is as migrated as this build needs:
    /// for a node running as a role that may not migrate (see migration 0005).
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.check_schema().await)
    }

    /// Appends `events` to `stream_id` atomically, if the stream is at `expected`.
    /// With an idempotency key, a repeated request appends nothing and reports `AlreadyDone`.
    pub async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_after(stream_id, expected, None, events, idempotency).await
    }

    /// Like [`Storage::append`]; `head` is the stream's head as the caller read it (see
    /// [`KnownHead`]), when `expected` is its version: PostgreSQL then does not read it again
    /// (a round trip fewer for a command on an existing stream). SQLite reads it inside its
    /// write transaction anyway, at no network cost. On PostgreSQL, an append with a known head
    /// (or to a new stream) that arrives while others are under way is written with them, by
    /// one statement (group commit; see `PostgresStorage::append_known`).
    pub async fn append_after(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        head: Option<&KnownHead>,
        events: Vec<NewEvent>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<AppendOutcome, StoreError> {
        let recorded_at = self.now();
        let head = head.filter(|h| h.stream_id == stream_id && expected == ExpectedVersion::Exact(h.version));
        let count = events.len();
        let appended = match self {
            // A head known (a new stream, or the head the command read): written with the
            // appends of other commands under way, if any (group commit).
            Storage::Postgres(s) if head.is_some() || expected == ExpectedVersion::NoStream => {
                s.append_known(stream_id, expected, head, events, idempotency, recorded_at).await
            }
            Storage::Postgres(s) => s.append(stream_id, expected, head, &events, idempotency, recorded_at).await,
            Storage::Sqlite(s) => s.append(stream_id, expected, &events, idempotency, recorded_at).await,
        }?;
        let Some((appended, recorded)) = appended else {
            // Nothing appended: the key was claimed before, by this request or another one.
            let key = idempotency
                .ok_or_else(|| StoreError::Corrupt { position: 0, reason: "an append inserted no rows".into() })?;
            return match self.idempotency_record(key).await? {
                Some((stream_id, stream_version)) => Ok(AppendOutcome::AlreadyDone { stream_id, stream_version }),
                None => Err(StoreError::IdempotencyKeyReused { key: key.key.clone() }),
            };
        };
        self.count_appended(count);
        tracing::debug!(
            stream.id = stream_id,
            stream.version = appended.last_version,
            event.position = appended.last_position,
            event.count = count,
            "appended events"
        );
        // No receiver is fine: nobody is listening yet.
        let _ =
            self.notices().send(StoreNotice { stream_id: Arc::from(stream_id), last_position: appended.last_position });
        Ok(AppendOutcome::Appended(appended, recorded))
    }

    /// Appends to several streams atomically (each at its expected version): all or nothing.
    pub async fn append_together(&self, appends: Vec<StreamAppend>) -> Result<Vec<Appended>, StoreError> {
        self.append_together_resolving(appends, &[], &[], None).await
    }

    /// Like [`Storage::append_together`], and writes the inbox in the same transaction: the
    /// events bank notifications caused and what became of them (rows stored before, or new
    /// rows stored with their outcome), one commit (one notification's, or a group's:
    /// `PaymentIntake`).
    /// `heads` are streams' heads the caller read (see [`KnownHead`]); on PostgreSQL, when
    /// every stream is new or known, the whole append is one statement (one round trip).
    /// `agencies`: how many agency configurations the caller decided with; if the log holds
    /// another number, nothing is written ([`StoreError::AgenciesChanged`]).
    pub async fn append_together_resolving(
        &self,
        appends: Vec<StreamAppend>,
        heads: &[KnownHead],
        inbox: &[crate::inbox::InboxResolution],
        agencies: Option<i64>,
    ) -> Result<Vec<Appended>, StoreError> {
        let recorded_at = self.now();
        let done = dispatch!(self, s => s.append_together(&appends, recorded_at, heads, inbox, agencies).await)?;
        self.count_appended(appends.iter().map(|a| a.events.len()).sum());
        for appended in &done {
            let _ = self.notices().send(StoreNotice {
                stream_id: Arc::from(appended.stream_id.as_str()),
                last_position: appended.last_position,
            });
        }
        Ok(done)
    }

    /// Announcements of new events, sent after each commit in this process.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreNotice> {
        self.notices().subscribe()
    }

    pub(crate) fn notices(&self) -> &broadcast::Sender<StoreNotice> {
        dispatch!(self, s => s.notices())
    }

    /// How many connections the pool holds and how many are busy (for `/metrics`).
    pub fn pool_usage(&self) -> PoolUsage {
        let (size, idle, max) = match self {
            Storage::Postgres(s) => (s.pool().size(), s.pool().num_idle(), s.pool().options().get_max_connections()),
            Storage::Sqlite(s) => (s.pool().size(), s.pool().num_idle(), s.pool().options().get_max_connections()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        PoolUsage { in_use: size.saturating_sub(idle), idle, max }
    }

    /// The PostgreSQL host written to (`host:port`), `None` while no host accepts writes or
    /// on SQLite.
    pub fn primary_host(&self) -> Option<String> {
        match self {
            Storage::Postgres(s) => s.primary().map(|host| host.to_string()),
            Storage::Sqlite(_) => None,
        }
    }

    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}

/// The unique constraints of the event log, as both backends name them.
pub(crate) enum Violation {
    StreamVersion,
    EventId,
    IdempotencyKey,
}

/// The one place where a unique violation becomes a domain-level store error: PostgreSQL
/// reports the constraint's name (SQLSTATE 23505), SQLite the columns in its message.
pub(crate) fn unique_violation(error: &sqlx::Error) -> Option<Violation> {
    let db = error.as_database_error()?;
    if !matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
        return None;
    }
    let message = db.message();
    match db.constraint() {
        Some("events_stream_version_key") => Some(Violation::StreamVersion),
        Some("events_event_id_key") => Some(Violation::EventId),
        Some("command_idempotency_pkey") => Some(Violation::IdempotencyKey),
        Some(_) => None,
        None if message.contains("events.stream_id, events.stream_version") => Some(Violation::StreamVersion),
        None if message.contains("events.event_id") => Some(Violation::EventId),
        None if message.contains("command_idempotency.idempotency_key") => Some(Violation::IdempotencyKey),
        None => None,
    }
}

/// Turns a failed insert into the right error.
pub(crate) fn map_append_error(
    error: sqlx::Error,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> StoreError {
    match unique_violation(&error) {
        Some(Violation::StreamVersion) => StoreError::Conflict { stream_id: stream_id.to_owned(), expected },
        Some(Violation::EventId) => {
            StoreError::DuplicateEventId(events.first().map(|e| e.event_id).unwrap_or_default())
        }
        _ => StoreError::Database { context: "appending events", source: error },
    }
}

/// A single-stream append and its events as stored (what a backend's append answers).
pub(crate) type StoredAppend = (Appended, Vec<RecordedEvent>);

/// One stream's appended rows as stored: each event with its chained row (`chain_rows`) and
/// where the database put it, `(global position, transaction id)`, in version order.
pub(crate) fn recorded_rows(
    stream_id: &str,
    events: &[NewEvent],
    rows: Vec<PreparedRow>,
    recorded_at: DateTime<Utc>,
    placed: &[(i64, i64)],
) -> Vec<RecordedEvent> {
    events
        .iter()
        .zip(rows)
        .zip(placed)
        .map(|((event, row), &(position, transaction_id))| RecordedEvent {
            position,
            transaction_id,
            stream_id: stream_id.to_owned(),
            stream_version: row.stream_version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: row.metadata,
            recorded_at,
            hash: row.hash,
        })
        .collect()
}

/// Prepares the rows of an append: versions, hashes. Shared by both backends.
pub(crate) fn chain_rows(
    stream_id: &str,
    current_version: i64,
    previous_hash: &[u8],
    events: &[NewEvent],
    recorded_at: DateTime<Utc>,
) -> Vec<PreparedRow> {
    let mut previous = previous_hash.to_vec();
    let mut rows = Vec::with_capacity(events.len());
    for (offset, event) in (1i64..).zip(events) {
        let metadata = serde_json::to_value(&event.metadata).unwrap_or(Value::Null);
        let stream_version = current_version + offset;
        let hash = hash_chain::event_hash(
            &previous,
            &hash_chain::EventFacts {
                stream_id,
                stream_version,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                metadata: &metadata,
                recorded_at,
            },
        );
        previous = hash.to_vec();
        rows.push(PreparedRow { stream_version, metadata, hash: hash.to_vec() });
    }
    rows
}

pub(crate) struct PreparedRow {
    pub stream_version: i64,
    pub metadata: Value,
    pub hash: Vec<u8>,
}

pub(crate) fn check_expected(stream_id: &str, expected: ExpectedVersion, actual: i64) -> Result<(), StoreError> {
    if expected.accepts(actual) {
        Ok(())
    } else {
        Err(StoreError::Conflict { stream_id: stream_id.to_owned(), expected })
    }
}

/// Compares the schema version found with the one this build needs.
fn schema_is_current(found: Result<Option<i64>, sqlx::Error>, wanted: i64) -> Result<(), StoreError> {
    let current = found
        .map_err(|e| {
            StoreError::Schema(format!("cannot read the schema version ({e}); run `feeledger migrate` first"))
        })?
        .unwrap_or(0);
    if current < wanted {
        return Err(StoreError::Schema(format!(
            "the database schema is at version {current} and this build needs {wanted}: run `feeledger migrate` as the schema owner"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/feeledger"), "postgres://app:***@db:5432/feeledger");
        assert_eq!(redact_url("postgres://db/feeledger"), "postgres://db/feeledger");
        assert_eq!(redact_url("sqlite://feeledger.db"), "sqlite://feeledger.db");
    }

    #[test]
    fn the_backend_follows_the_url_scheme() {
        assert_eq!("postgres://x/y".parse::<Backend>().ok(), Some(Backend::Postgres));
        assert_eq!("sqlite://feeledger.db".parse::<Backend>().ok(), Some(Backend::Sqlite));
        assert!("mysql://x".parse::<Backend>().is_err());
    }
}
