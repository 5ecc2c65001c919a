//! The SQLite backend: the embedded default for one office. WAL mode lets readers run while
//! the single writer appends; `BEGIN IMMEDIATE` takes the write lock up front so two writers
//! (say, the server and a CLI command) queue on the busy timeout instead of failing.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::broadcast;

use super::hash_chain::{GENESIS, timestamp_text};
use super::{
    AppendOutcome, Appended, AuditEntry, Checkpoint, ExpectedVersion, IdempotencyKey, LeanEvent, NewEvent,
    RecordedEvent, StoreError, StoreHead, StoreNotice, StoreOptions, chain_rows, check_expected, map_append_error,
};

const EVENT_COLUMNS: &str = "global_position, transaction_id, stream_id, stream_version, event_id, event_type, \
     schema_version, payload, metadata, recorded_at, hash";

/// For the audit's structural checks: no payload.
const AUDIT_COLUMNS: &str = "global_position, stream_id, stream_version, recorded_at, hash";

/// For readers that use only the payload (projections): metadata and hash are left out.
const LEAN_COLUMNS: &str =
    "global_position, transaction_id, stream_id, event_type, schema_version, payload, recorded_at";

#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    pool: SqlitePool,
    notices: broadcast::Sender<StoreNotice>,
}

impl SqliteEventStore {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, 8))
            .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms))
            .connect_with(connect_options)
            .await
            .map_err(StoreError::db("opening the SQLite database"))?;
        Ok(SqliteEventStore { pool, notices })
    }

    /// The pool, for the read models and other tables that live beside the event log.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction holding SQLite's write lock from the start.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    pub(super) fn notices(&self) -> &broadcast::Sender<StoreNotice> {
        &self.notices
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn check_schema(&self) -> Result<(), StoreError> {
        let wanted = sqlx::migrate!("../migrations/sqlite").iter().map(|m| m.version).max().unwrap_or(0);
        let found =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await;
        super::schema_is_current(found, wanted)
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::db("pinging SQLite"))?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        idempotency: Option<&IdempotencyKey>,
        recorded_at: DateTime<Utc>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut tx = self.begin_write().await.map_err(StoreError::db("starting an append"))?;
        let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
        )
        .bind(stream_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("reading the stream head"))?;
        let (current_version, previous_hash) = head.unwrap_or((0, GENESIS.to_vec()));
        check_expected(stream_id, expected, current_version)?;
        let new_version = current_version + i64::try_from(events.len()).unwrap_or(i64::MAX);
        let recorded_text = timestamp_text(recorded_at);

        if let Some(key) = idempotency {
            let claimed = sqlx::query(
                "INSERT INTO command_idempotency (idempotency_key, request_hash, stream_id, stream_version, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&key.key)
            .bind(key.request_hash.as_slice())
            .bind(stream_id)
            .bind(new_version)
            .bind(&recorded_text)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("claiming the idempotency key"))?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await.map_err(StoreError::db("rolling back a repeated request"))?;
                return match self.idempotency_record(key).await? {
                    Some((stream_id, stream_version)) => Ok(AppendOutcome::AlreadyDone { stream_id, stream_version }),
                    None => Err(StoreError::IdempotencyKeyReused { key: key.key.clone() }),
                };
            }
        }

        let transaction_id = next_transaction_id(&mut tx).await?;
        let rows = chain_rows(stream_id, current_version, &previous_hash, events, recorded_at);
        let last_position = insert_events(&mut tx, stream_id, events, &rows, &recorded_text, transaction_id)
            .await
            .map_err(|e| map_append_error(e, stream_id, expected, events))?;
        tx.commit().await.map_err(|e| map_append_error(e, stream_id, expected, events))?;
        Ok(AppendOutcome::Appended(Appended {
            stream_id: stream_id.to_owned(),
            first_version: current_version + 1,
            last_version: new_version,
            last_position,
        }))
    }

    /// Appends to several streams in one transaction: all or nothing.
    /// `then`, if given, is an inbox row's outcome, written in the same transaction.
    pub(super) async fn append_together(
        &self,
        appends: &[super::StreamAppend],
        recorded_at: DateTime<Utc>,
        // One writer: the heads are read inside the write transaction, at no network cost.
        _heads: &[super::KnownHead],
        then: Option<&crate::inbox::InboxResolution>,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut tx = self.begin_write().await.map_err(StoreError::db("starting a multi-stream append"))?;
        let recorded_text = timestamp_text(recorded_at);
        let transaction_id = next_transaction_id(&mut tx).await?;
        let mut done = Vec::with_capacity(appends.len());
        for append in appends {
            let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
            )
            .bind(&append.stream_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("reading the stream head"))?;
            let (current_version, previous_hash) = head.unwrap_or((0, GENESIS.to_vec()));
            check_expected(&append.stream_id, append.expected, current_version)?;
            let rows = chain_rows(&append.stream_id, current_version, &previous_hash, &append.events, recorded_at);
            let last_position =
                insert_events(&mut tx, &append.stream_id, &append.events, &rows, &recorded_text, transaction_id)
                    .await
                    .map_err(|e| map_append_error(e, &append.stream_id, append.expected, &append.events))?;
            done.push(Appended {
                stream_id: append.stream_id.clone(),
                first_version: current_version + 1,
                last_version: current_version + i64::try_from(append.events.len()).unwrap_or(i64::MAX),
                last_position,
            });
        }
        if let Some(resolution) = then {
            crate::inbox::resolve_sqlite(&mut *tx, resolution)
                .await
                .map_err(StoreError::db("recording a notification's outcome"))?;
        }
        tx.commit().await.map_err(StoreError::db("committing a multi-stream append"))?;
        Ok(done)
    }

    pub(super) async fn idempotency_record(&self, key: &IdempotencyKey) -> Result<Option<(String, i64)>, StoreError> {
        let row: Option<(Vec<u8>, String, i64)> = sqlx::query_as(
            "SELECT request_hash, stream_id, stream_version FROM command_idempotency WHERE idempotency_key = $1",
        )
        .bind(&key.key)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading an idempotency key"))?;
        match row {
            None => Ok(None),
            Some((hash, stream_id, version)) if hash == key.request_hash => Ok(Some((stream_id, version))),
            Some(_) => Err(StoreError::IdempotencyKeyReused { key: key.key.clone() }),
        }
    }

    pub(super) async fn read_stream(&self, stream_id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version");
        let rows = sqlx::query(&sql)
            .bind(stream_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading a stream"))?;
        rows.iter().map(decode).collect()
    }

    pub(super) async fn last_event(&self, stream_id: &str) -> Result<Option<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1");
        let row = sqlx::query(&sql)
            .bind(stream_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a stream's last event"))?;
        row.as_ref().map(decode).transpose()
    }

    pub(super) async fn read_all(&self, after: Checkpoint, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE (transaction_id, global_position) > ($1, $2) \
             ORDER BY transaction_id, global_position LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(after.transaction_id)
            .bind(after.position)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading all events"))?;
        rows.iter().map(decode).collect()
    }

    pub(super) async fn last_checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id, global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading the head of the log"))?;
        Ok(last.map_or(Checkpoint::START, |(transaction_id, position)| Checkpoint { transaction_id, position }))
    }

    /// One writer: what is committed is readable.
    pub(super) async fn committed_checkpoint(&self) -> Result<Checkpoint, StoreError> {
        self.last_checkpoint().await
    }

    pub(super) async fn read_all_of_types(
        &self,
        after: Checkpoint,
        limit: usize,
        types: &[&str],
    ) -> Result<Vec<LeanEvent>, StoreError> {
        let sql = format!(
            "SELECT {LEAN_COLUMNS} FROM events WHERE (transaction_id, global_position) > ($1, $2) \
             AND event_type IN (SELECT value FROM json_each($4)) \
             ORDER BY transaction_id, global_position LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(after.transaction_id)
            .bind(after.position)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(serde_json::to_string(types).unwrap_or_else(|_| "[]".into()))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading events of some types"))?;
        rows.iter().map(decode_lean).collect()
    }

    pub(super) async fn read_by_position(&self, after: i64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading events by position"))?;
        rows.iter().map(decode).collect()
    }

    pub(super) async fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading audit entries"))?;
        rows.iter().map(decode_audit_entry).collect()
    }

    pub(super) async fn audit_entries_recorded_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM events WHERE recorded_at >= $1 AND recorded_at < $2 ORDER BY global_position"
        );
        let rows = sqlx::query(&sql)
            .bind(timestamp_text(from))
            .bind(timestamp_text(to))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading the audit entries of a period"))?;
        rows.iter().map(decode_audit_entry).collect()
    }

    pub(super) async fn count_of_types(&self, types: &[&str]) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type IN (SELECT value FROM json_each($1))")
            .bind(serde_json::to_string(types).unwrap_or_else(|_| "[]".into()))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting events of some types"))
    }

    pub(super) async fn head(&self) -> Result<StoreHead, StoreError> {
        let checkpoint = self.last_checkpoint().await?;
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting events"))?;
        Ok(StoreHead { checkpoint, event_count: count })
    }

    pub(super) async fn qr_issued(&self, qr_id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE event_type = 'QrIssued' AND json_extract(payload, '$.qr_id') = $1 LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(qr_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("looking up a QR"))?;
        row.as_ref().map(decode).transpose()
    }

    pub(super) async fn events_of_type(&self, event_type: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE event_type = $1 ORDER BY global_position");
        let rows = sqlx::query(&sql)
            .bind(event_type)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading events of a type"))?;
        rows.iter().map(decode).collect()
    }

    pub(super) async fn unresolved_unmatched_credits(&self, agency: Option<&str>) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT u.stream_id FROM events u \
             WHERE u.event_type = 'CreditUnmatched' AND json_extract(u.payload, '$.agency_code') IS $1 \
               AND NOT EXISTS (SELECT 1 FROM events r WHERE r.stream_id = u.stream_id \
                               AND r.event_type IN ('CreditMatched', 'CreditRefundRequested')) \
             ORDER BY u.global_position",
        )
        .bind(agency)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("listing unmatched credits"))
    }

    pub(super) async fn stream_version(&self, stream_id: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("reading a stream's version"))
    }

    pub(super) async fn receipt_issued(&self, receipt_id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE event_type = 'ReceiptIssued' AND json_extract(payload, '$.receipt_id') = $1 LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(receipt_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("looking up a receipt"))?;
        row.as_ref().map(decode).transpose()
    }

    pub(super) async fn count_after(&self, after: Checkpoint) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE (transaction_id, global_position) > ($1, $2)")
            .bind(after.transaction_id)
            .bind(after.position)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting events after a checkpoint"))
    }

    pub(super) async fn qr_issued_since(&self, since: DateTime<Utc>) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE event_type = 'QrIssued' AND recorded_at >= $1 ORDER BY global_position"
        );
        let rows = sqlx::query(&sql)
            .bind(super::hash_chain::timestamp_text(since))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading recent QRs"))?;
        rows.iter().map(decode).collect()
    }

    pub(super) async fn latest_counter_activation(
        &self,
        agency: &str,
        counter: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT stream_id FROM events \
             WHERE event_type IN ('FeeAssessed', 'QrIssued') \
               AND json_extract(payload, '$.agency_code') = $1 AND json_extract(payload, '$.counter_id') = $2 \
             ORDER BY global_position DESC LIMIT 1",
        )
        .bind(agency)
        .bind(counter)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("looking up a counter's case"))
    }

    pub(super) async fn streams_with_qr_reference(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT stream_id FROM events \
             WHERE event_type = 'QrIssued' AND json_extract(payload, '$.reference') = $1",
        )
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("looking up a payment reference"))
    }

    pub(super) async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a setting"))
    }

    pub(super) async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("writing a setting"))?;
        self.setting(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt { position: 0, reason: format!("setting {name} vanished") })
    }
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

/// Inserts the rows of one stream's append; returns the last global position.
async fn insert_events(
    tx: &mut Transaction<'static, Sqlite>,
    stream_id: &str,
    events: &[NewEvent],
    rows: &[super::PreparedRow],
    recorded_text: &str,
    transaction_id: i64,
) -> Result<i64, sqlx::Error> {
    let mut last_position = 0;
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
        last_position = result.last_insert_rowid();
    }
    Ok(last_position)
}

fn decode_lean(row: &SqliteRow) -> Result<LeanEvent, StoreError> {
    let position: i64 = row.try_get("global_position").map_err(StoreError::db("decoding an event"))?;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| corrupt(e.to_string()));
    Ok(LeanEvent {
        position,
        transaction_id: row.try_get("transaction_id").map_err(|e| corrupt(e.to_string()))?,
        stream_id: text("stream_id")?,
        event_type: text("event_type")?,
        schema_version: row.try_get("schema_version").map_err(|e| corrupt(e.to_string()))?,
        payload: text("payload")?,
        recorded_at: parse_recorded_at(&text("recorded_at")?).map_err(corrupt)?,
    })
}

fn parse_recorded_at(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("recorded_at: {e}"))
}

fn decode_audit_entry(row: &SqliteRow) -> Result<AuditEntry, StoreError> {
    let position: i64 = row.try_get("global_position").map_err(StoreError::db("decoding an audit entry"))?;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| corrupt(e.to_string()));
    Ok(AuditEntry {
        position,
        stream_id: text("stream_id")?,
        stream_version: row.try_get("stream_version").map_err(|e| corrupt(e.to_string()))?,
        recorded_at: parse_recorded_at(&text("recorded_at")?).map_err(corrupt)?,
        hash: row.try_get("hash").map_err(|e| corrupt(e.to_string()))?,
    })
}

fn decode(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("global_position").map_err(StoreError::db("decoding an event"))?;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| corrupt(e.to_string()));
    let json = |column: &str| serde_json::from_str(&text(column)?).map_err(|e| corrupt(format!("{column}: {e}")));
    Ok(RecordedEvent {
        position,
        transaction_id: row.try_get("transaction_id").map_err(|e| corrupt(e.to_string()))?,
        stream_id: text("stream_id")?,
        stream_version: row.try_get("stream_version").map_err(|e| corrupt(e.to_string()))?,
        event_id: text("event_id")?.parse().map_err(|e| corrupt(format!("event_id: {e}")))?,
        event_type: text("event_type")?,
        schema_version: row.try_get("schema_version").map_err(|e| corrupt(e.to_string()))?,
        payload: json("payload")?,
        metadata: json("metadata")?,
        recorded_at: parse_recorded_at(&text("recorded_at")?).map_err(corrupt)?,
        hash: row.try_get("hash").map_err(|e| corrupt(e.to_string()))?,
    })
}
