//! Where read models live: JSON documents keyed by text, per projection and generation, with the
//! generation's checkpoint beside them. Written in one transaction per batch, on PostgreSQL or
//! SQLite (the tables of migrations/*/0004).
//!
//! Keys are chosen so that reports are key-range scans, e.g. `day/H34.22.6/2026-11-22/P-SAOY`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::dialect::{on_pool, on_writer};
use super::{Checkpoint, Storage, StoreError};

/// What a projection's row in `projection_state` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationState {
    pub active: i32,
    pub building: Option<i32>,
}

/// A generation's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationCheckpoint {
    pub generation: i32,
    pub code_version: i32,
    pub checkpoint: Checkpoint,
    pub events_seen: i64,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Moves a generation's checkpoint from where a batch started (`$7`, `$8`) to where it ends
/// (`$3`, `$4`); touches no row when another runner moved it first.
pub(super) const ADVANCE_CHECKPOINT: &str = "UPDATE projection_checkpoints SET transaction_id = $3, position = $4, \
                                             events_seen = events_seen + $5, updated_at = $6 \
                                             WHERE name = $1 AND generation = $2 \
                                             AND transaction_id = $7 AND position = $8";

/// How far a batch moves a generation's checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Advance {
    pub from: Checkpoint,
    pub to: Checkpoint,
    /// Events read (applied or skipped) between the two.
    pub events: i64,
    pub now: DateTime<Utc>,
}

/// The changes of one batch. A document is written as its JSON text, serialized once from the
/// typed document (no intermediate `Value` tree: a rebuild writes large documents many times).
#[derive(Debug, Default)]
pub struct Changes {
    /// Documents the generation does not hold yet (known by a runner that built it from
    /// position zero and committed every batch itself): inserted without a conflict check.
    pub inserts: Vec<(String, String)>,
    pub upserts: Vec<(String, String)>,
    pub deletes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DocumentStore {
    store: Storage,
}

/// Documents of a replaced generation deleted per transaction.
pub const DROP_CHUNK: i64 = 10_000;

/// generation, code version, transaction id, position, events seen, started, updated.
type CheckpointRow = (i32, i32, i64, i64, i64, DateTime<Utc>, DateTime<Utc>);

impl DocumentStore {
    pub fn new(store: Storage) -> Self {
        DocumentStore { store }
    }

    pub fn events(&self) -> &Storage {
        &self.store
    }

    /// Creates generation 1 of a projection the first time it runs.
    pub async fn ensure(
        &self,
        name: &str,
        code_version: u32,
        now: DateTime<Utc>,
    ) -> Result<GenerationState, StoreError> {
        let version = i32::try_from(code_version).unwrap_or(i32::MAX);
        const STATE: &str = "INSERT INTO projection_state (name, active_generation, updated_at) VALUES ($1, 1, $2) \
                             ON CONFLICT (name) DO NOTHING";
        const FIRST: &str = "INSERT INTO projection_checkpoints (name, generation, code_version, transaction_id, \
                             position, events_seen, started_at, updated_at) VALUES ($1, 1, $2, 0, 0, 0, $3, $3)";
        on_writer!(&self.store, |pool, sql| {
            let mut tx = sql.begin(pool).await?;
            let created = sqlx::query(STATE).bind(name).bind(sql.time(now)).execute(&mut *tx).await?.rows_affected();
            if created == 1 {
                sqlx::query(FIRST).bind(name).bind(version).bind(sql.time(now)).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .map_err(StoreError::db("creating a projection"))?;
        self.state(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt { position: 0, reason: format!("projection {name} vanished") })
    }

    /// The projection's generations: the one read models are served from, the one being built.
    pub async fn state(&self, name: &str) -> Result<Option<GenerationState>, StoreError> {
        const SQL: &str = "SELECT active_generation, building_generation FROM projection_state WHERE name = $1";
        let row: Option<(i32, Option<i32>)> =
            on_pool!(&self.store, |pool, sql| sqlx::query_as(SQL).bind(name).fetch_optional(pool).await)
                .map_err(StoreError::db("reading a projection's state"))?;
        Ok(row.map(|(active, building)| GenerationState { active, building }))
    }

    /// A generation's checkpoint and progress.
    pub async fn checkpoint(&self, name: &str, generation: i32) -> Result<Option<GenerationCheckpoint>, StoreError> {
        const SQL: &str = "SELECT generation, code_version, transaction_id, position, events_seen, started_at, updated_at \
                           FROM projection_checkpoints WHERE name = $1 AND generation = $2";
        let row: Option<CheckpointRow> = on_pool!(&self.store, |pool, sql| sqlx::query_as(SQL)
            .bind(name)
            .bind(generation)
            .fetch_optional(pool)
            .await)
        .map_err(StoreError::db("reading a projection checkpoint"))?;
        Ok(row.map(|(generation, code_version, transaction_id, position, events_seen, started_at, updated_at)| {
            GenerationCheckpoint {
                generation,
                code_version,
                checkpoint: Checkpoint { transaction_id, position },
                events_seen,
                started_at,
                updated_at,
            }
        }))
    }

    /// Starts building a new generation from the start of the log (or returns the one already
    /// being built). Reads keep using the active generation until [`DocumentStore::switch`].
    pub async fn start_rebuild(&self, name: &str, code_version: u32, now: DateTime<Utc>) -> Result<i32, StoreError> {
        if let Some(GenerationState { building: Some(building), .. }) = self.state(name).await? {
            return Ok(building);
        }
        let version = i32::try_from(code_version).unwrap_or(i32::MAX);
        const NEXT: &str = "SELECT COALESCE(MAX(generation), 0) + 1 FROM projection_checkpoints WHERE name = $1";
        // Two starting at once compute the same next generation: the second inserts nothing.
        const INSERT: &str = "INSERT INTO projection_checkpoints (name, generation, code_version, transaction_id, position, \
                              events_seen, started_at, updated_at) VALUES ($1, $2, $3, 0, 0, 0, $4, $4) \
                              ON CONFLICT (name, generation) DO NOTHING";
        const MARK: &str = "UPDATE projection_state SET building_generation = $2, updated_at = $3 WHERE name = $1 AND building_generation IS NULL";
        let started: Result<Option<i32>, StoreError> = on_writer!(&self.store, |pool, sql| {
            let mut tx = sql.begin(pool).await?;
            let next: i32 = sqlx::query_scalar(NEXT).bind(name).fetch_one(&mut *tx).await?;
            let inserted =
                sqlx::query(INSERT).bind(name).bind(next).bind(version).bind(sql.time(now)).execute(&mut *tx).await?;
            if inserted.rows_affected() == 0 {
                return Ok(None);
            }
            let marked = sqlx::query(MARK).bind(name).bind(next).bind(sql.time(now)).execute(&mut *tx).await?;
            if marked.rows_affected() == 1 {
                tx.commit().await?;
                Ok(Some(next))
            } else {
                Ok(None)
            }
        })
        .map_err(StoreError::db("starting a rebuild"));
        match started {
            Ok(Some(generation)) => Ok(generation),
            // Someone else started one in between: follow theirs. (On SQLite the other's commit
            // can also make this transaction fail, its read being older than that commit.)
            Ok(None) | Err(_) if let Some(building) = self.state(name).await?.and_then(|s| s.building) => Ok(building),
            Ok(None) => Ok(0),
            Err(error) => Err(error),
        }
    }

    /// Makes a finished generation the active one: one short transaction. The old generation's
    /// documents (millions, for a province's log) are left to
    /// [`DocumentStore::drop_replaced_generations`], which the caller runs after it, out of the
    /// way of the projection's own work: on PostgreSQL a transaction still running holds back
    /// every reader of the log (the read barrier is the oldest transaction running), so one long
    /// `DELETE` in the switch froze every live screen and projection of the cluster while it
    /// ran, and a drop inside the runner's loop stalled the projection it had just switched.
    pub async fn switch(&self, name: &str, generation: i32, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(state) = self.state(name).await? else { return Ok(()) };
        if state.building != Some(generation) {
            return Ok(());
        }
        let old = state.active;
        const SWITCH: &str = "UPDATE projection_state SET active_generation = $2, building_generation = NULL, updated_at = $3 \
                              WHERE name = $1 AND building_generation = $2";
        const DROP_CHECKPOINT: &str = "DELETE FROM projection_checkpoints WHERE name = $1 AND generation = $2";
        on_writer!(&self.store, |pool, sql| {
            let mut tx = sql.begin(pool).await?;
            sqlx::query(SWITCH).bind(name).bind(generation).bind(sql.time(now)).execute(&mut *tx).await?;
            sqlx::query(DROP_CHECKPOINT).bind(name).bind(old).execute(&mut *tx).await?;
            tx.commit().await
        })
        .map_err(StoreError::db("switching generations"))
    }

    /// Deletes the documents of generations older than the active one (replaced by a switch;
    /// left behind if the process stopped while it dropped them), a chunk per transaction.
    /// Returns how many were deleted. Cheap when there are none: one index probe.
    pub async fn drop_replaced_generations(&self, name: &str) -> Result<u64, StoreError> {
        self.drop_replaced_generations_by(name, DROP_CHUNK).await
    }

    /// [`DocumentStore::drop_replaced_generations`], `chunk` documents per transaction.
    pub async fn drop_replaced_generations_by(&self, name: &str, chunk: i64) -> Result<u64, StoreError> {
        let chunk = chunk.max(1);
        let Some(state) = self.state(name).await? else { return Ok(0) };
        const OLDEST: &str = "SELECT generation FROM read_model_documents WHERE projection = $1 AND generation < $2 \
                              ORDER BY generation LIMIT 1";
        // The last key of the next chunk (key order: an index range, whatever the statistics).
        const CHUNK_END: &str = "SELECT key FROM read_model_documents WHERE projection = $1 AND generation = $2 \
                                 ORDER BY key LIMIT 1 OFFSET $3";
        const DROP_UP_TO: &str =
            "DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2 AND key <= $3";
        const DROP_REST: &str = "DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2";
        let mut dropped = 0;
        loop {
            let result: Result<Option<u64>, sqlx::Error> = on_writer!(&self.store, |pool, sql| {
                let oldest: Option<i32> =
                    sqlx::query_scalar(OLDEST).bind(name).bind(state.active).fetch_optional(pool).await?;
                let Some(generation) = oldest else { return Ok(None) };
                let end: Option<String> = sqlx::query_scalar(CHUNK_END)
                    .bind(name)
                    .bind(generation)
                    .bind(chunk - 1)
                    .fetch_optional(pool)
                    .await?;
                let deleted = match end {
                    Some(end) => sqlx::query(DROP_UP_TO).bind(name).bind(generation).bind(end).execute(pool).await?,
                    None => sqlx::query(DROP_REST).bind(name).bind(generation).execute(pool).await?,
                };
                Ok(Some(deleted.rows_affected()))
            });
            match result.map_err(StoreError::db("dropping a replaced generation"))? {
                Some(deleted) => dropped += deleted,
                None => return Ok(dropped),
            }
        }
    }

    /// The documents of `keys` in a generation (absent keys are left out).
    pub async fn load(
        &self,
        name: &str,
        generation: i32,
        keys: &[String],
    ) -> Result<HashMap<String, Value>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        // One key (a projection's working set loads them one at a time) is an equality: with
        // `key = ANY($3)`, PostgreSQL may plan the list as a filter over every document of the
        // generation (it did, with statistics taken while the table was nearly empty, and
        // kept that plan for the prepared statement: 3.5 ms and 10,000 buffers per load
        // instead of 4 buffers; issue 17).
        let rows: Vec<(String, Json<Value>)> = on_pool!(&self.store, |pool, sql| {
            if let [key] = keys {
                sqlx::query_as(
                    "SELECT key, doc FROM read_model_documents WHERE projection = $1 AND generation = $2 AND key = $3",
                )
                .bind(name)
                .bind(generation)
                .bind(key.as_str())
                .fetch_all(pool)
                .await
            } else {
                let query = format!(
                    "SELECT key, doc FROM read_model_documents WHERE projection = $1 AND generation = $2 AND {}",
                    sql.in_list("key", 3)
                );
                sqlx::query_as(&query).bind(name).bind(generation).bind(sql.list(keys)).fetch_all(pool).await
            }
        })
        .map_err(StoreError::db("loading documents"))?;
        Ok(rows.into_iter().map(|(key, doc)| (key, doc.0)).collect())
    }

    /// A document of the active generation.
    pub async fn get(&self, name: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let Some(state) = self.state(name).await? else { return Ok(None) };
        Ok(self.load(name, state.active, &[key.to_owned()]).await?.remove(key))
    }

    /// Documents of the active generation with `from <= key < to`, in key order.
    pub async fn range(&self, name: &str, from: &str, to: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let Some(state) = self.state(name).await? else { return Ok(Vec::new()) };
        self.range_of(name, state.active, from, to).await
    }

    /// Documents of the active generation with `from <= key < to`, in key order, and the
    /// documents of the keys `related` names for them (absent ones left out), all of one
    /// generation: a switch between the reads (a rebuild finishing) reads both again.
    pub async fn range_with_related(
        &self,
        name: &str,
        from: &str,
        to: &str,
        related: impl Fn(&[(String, Value)]) -> Vec<String>,
    ) -> Result<(Vec<(String, Value)>, HashMap<String, Value>), StoreError> {
        loop {
            let Some(state) = self.state(name).await? else { return Ok((Vec::new(), HashMap::new())) };
            let rows = self.range_of(name, state.active, from, to).await?;
            let found = self.load(name, state.active, &related(&rows)).await?;
            if self.state(name).await?.is_some_and(|now| now.active == state.active) {
                return Ok((rows, found));
            }
        }
    }

    async fn range_of(
        &self,
        name: &str,
        generation: i32,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        const SQL: &str = "SELECT key, doc FROM read_model_documents \
                           WHERE projection = $1 AND generation = $2 AND key >= $3 AND key < $4 ORDER BY key";
        let rows: Vec<(String, Json<Value>)> = on_pool!(&self.store, |pool, sql| sqlx::query_as(SQL)
            .bind(name)
            .bind(generation)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await)
        .map_err(StoreError::db("reading a range of documents"))?;
        Ok(rows.into_iter().map(|(key, doc)| (key, doc.0)).collect())
    }

    /// Writes a batch's changes and moves the checkpoint from `from` to `to`, in one
    /// transaction (on PostgreSQL one statement, unless the batch brings many new documents:
    /// `dialect::Pg::advance_with_documents`). Returns `false`, writing nothing, when the
    /// checkpoint is no longer at `from` (another runner applied this batch first).
    pub async fn commit(
        &self,
        name: &str,
        generation: i32,
        advance: Advance,
        changes: &Changes,
    ) -> Result<bool, StoreError> {
        on_writer!(&self.store, |pool, sql| {
            if let Some(advanced) = sql.advance_with_documents(pool, name, generation, &advance, changes).await? {
                return Ok(advanced);
            }
            let Advance { from, to, events, now } = advance;
            let mut tx = sql.begin(pool).await?;
            let advanced = sqlx::query(ADVANCE_CHECKPOINT)
                .bind(name)
                .bind(generation)
                .bind(to.transaction_id)
                .bind(to.position)
                .bind(events)
                .bind(sql.time(now))
                .bind(from.transaction_id)
                .bind(from.position)
                .execute(&mut *tx)
                .await?;
            if advanced.rows_affected() != 1 {
                return Ok(false);
            }
            sql.write_documents(&mut tx, name, generation, changes).await?;
            tx.commit().await?;
            Ok(true)
        })
        .map_err(StoreError::db("committing a projection batch"))
    }
}
