//! The PostgreSQL backend: many concurrent writers, readers on several nodes.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::broadcast;

use super::hash_chain::GENESIS;
use super::{
    AppendOutcome, Appended, Checkpoint, ExpectedVersion, IdempotencyKey, NewEvent, RecordedEvent, StoreError,
    StoreHead, StoreNotice, StoreOptions, chain_rows, check_expected, map_append_error,
};

/// A transaction left idle (a crashed client, a debugger) would hold the read barrier back for
/// every consumer; PostgreSQL ends such sessions after this long.
const IDLE_IN_TRANSACTION_TIMEOUT_MS: &str = "15000";

const EVENT_COLUMNS: &str = "global_position, transaction_id::text::bigint AS transaction_id, stream_id, \
     stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash";

#[derive(Debug, Clone)]
pub struct PostgresEventStore {
    pool: PgPool,
    notices: broadcast::Sender<StoreNotice>,
}

impl PostgresEventStore {
    pub(super) async fn connect(
        url: &str,
        options: StoreOptions,
        notices: broadcast::Sender<StoreNotice>,
    ) -> Result<Self, StoreError> {
        let connect_options = PgConnectOptions::from_str(url)
            .map_err(StoreError::db("parsing the PostgreSQL URL"))?
            .application_name("feeledger")
            .options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT_MS)]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms))
            .connect_with(connect_options)
            .await
            .map_err(StoreError::db("connecting to PostgreSQL"))?;
        Ok(PostgresEventStore { pool, notices })
    }

    /// The pool, for the read models and other tables that live beside the event log.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn notices(&self) -> &broadcast::Sender<StoreNotice> {
        &self.notices
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::db("pinging PostgreSQL"))?;
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
        let mut tx = self.pool.begin().await.map_err(StoreError::db("starting an append"))?;
        let head: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1")
                .bind(stream_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db("reading the stream head"))?;
        let (current_version, previous_hash) = head.unwrap_or((0, GENESIS.to_vec()));
        check_expected(stream_id, expected, current_version)?;
        let new_version = current_version + i64::try_from(events.len()).unwrap_or(i64::MAX);

        if let Some(key) = idempotency {
            let claimed = sqlx::query(
                "INSERT INTO command_idempotency (idempotency_key, request_hash, stream_id, stream_version, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&key.key)
            .bind(key.request_hash.as_slice())
            .bind(stream_id)
            .bind(new_version)
            .bind(recorded_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("claiming the idempotency key"))?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await.map_err(StoreError::db("rolling back a repeated request"))?;
                return self.repeated_request(key).await;
            }
        }

        let rows = chain_rows(stream_id, current_version, &previous_hash, events, recorded_at);
        let last_position = insert_events(&mut tx, stream_id, events, &rows, recorded_at)
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

    async fn repeated_request(&self, key: &IdempotencyKey) -> Result<AppendOutcome, StoreError> {
        match self.idempotency_record(key).await? {
            Some((stream_id, stream_version)) => Ok(AppendOutcome::AlreadyDone { stream_id, stream_version }),
            None => Err(StoreError::IdempotencyKeyReused { key: key.key.clone() }),
        }
    }

    /// The stream and version a key produced, if the key was used with the same request.
    /// A key used with a different request is [`StoreError::IdempotencyKeyReused`].
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

    pub(super) async fn read_all(&self, after: Checkpoint, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        // Only transactions older than every transaction still running are visible to readers:
        // anything at or above the snapshot's xmin may still commit "behind" us.
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id, global_position LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(after.transaction_id.to_string())
            .bind(after.position)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading all events"))?;
        rows.iter().map(decode).collect()
    }

    pub(super) async fn head(&self) -> Result<StoreHead, StoreError> {
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id::text::bigint, global_position FROM events \
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading the head of the log"))?;
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting events"))?;
        let checkpoint = last.map_or(Checkpoint::START, |(transaction_id, position)| Checkpoint { transaction_id, position });
        Ok(StoreHead { checkpoint, event_count: count })
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
        self.setting(name).await?.ok_or_else(|| StoreError::Corrupt { position: 0, reason: format!("setting {name} vanished") })
    }
}

/// One round trip for all the events of an append; returns the last global position.
async fn insert_events(
    tx: &mut Transaction<'static, Postgres>,
    stream_id: &str,
    events: &[NewEvent],
    rows: &[super::PreparedRow],
    recorded_at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let versions: Vec<i64> = rows.iter().map(|r| r.stream_version).collect();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let schema_versions: Vec<i32> = events.iter().map(|e| e.schema_version).collect();
    let payloads: Vec<Value> = events.iter().map(|e| e.payload.clone()).collect();
    let metadata: Vec<Value> = rows.iter().map(|r| r.metadata.clone()).collect();
    let hashes: Vec<Vec<u8>> = rows.iter().map(|r| r.hash.clone()).collect();
    let positions: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
         SELECT $1, v, id, t, sv, p, m, $2, h \
         FROM UNNEST($3::bigint[], $4::uuid[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[], $9::bytea[]) \
              AS x(v, id, t, sv, p, m, h) \
         RETURNING global_position",
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
    .fetch_all(&mut **tx)
    .await?;
    Ok(positions.into_iter().max().unwrap_or_default())
}

fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("global_position").map_err(StoreError::db("decoding an event"))?;
    let corrupt = |e: sqlx::Error| StoreError::Corrupt { position, reason: e.to_string() };
    Ok(RecordedEvent {
        position,
        transaction_id: row.try_get("transaction_id").map_err(corrupt)?,
        stream_id: row.try_get("stream_id").map_err(corrupt)?,
        stream_version: row.try_get("stream_version").map_err(corrupt)?,
        event_id: row.try_get("event_id").map_err(corrupt)?,
        event_type: row.try_get("event_type").map_err(corrupt)?,
        schema_version: row.try_get("schema_version").map_err(corrupt)?,
        payload: row.try_get("payload").map_err(corrupt)?,
        metadata: row.try_get("metadata").map_err(corrupt)?,
        recorded_at: row.try_get("recorded_at").map_err(corrupt)?,
        hash: row.try_get("hash").map_err(corrupt)?,
    })
}
