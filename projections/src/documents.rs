//! Where read models live: JSON documents keyed by text, per projection and generation, with the
//! generation's checkpoint beside them. Written in one transaction per batch, on PostgreSQL or
//! SQLite (the tables of migrations/*/0004).
//!
//! Keys are chosen so that reports are key-range scans, e.g. `day/H34.22.6/2026-11-22/P-SAOY`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use feeledger_infrastructure::event_store::hash_chain::timestamp_text;
use feeledger_infrastructure::event_store::{Checkpoint, EventStore, StoreError};
use serde_json::Value;

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

/// How far a batch moves a generation's checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Advance {
    pub from: Checkpoint,
    pub to: Checkpoint,
    /// Events read (applied or skipped) between the two.
    pub events: i64,
    pub now: DateTime<Utc>,
}

/// The changes of one batch.
#[derive(Debug, Default)]
pub struct Changes {
    pub upserts: Vec<(String, Value)>,
    pub deletes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DocumentStore {
    store: EventStore,
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    StoreError::db(context)
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

/// generation, code version, transaction id, position, events seen, started, updated.
type CheckpointRow<T> = (i32, i32, i64, i64, i64, T, T);

impl DocumentStore {
    pub fn new(store: EventStore) -> Self {
        DocumentStore { store }
    }

    pub fn events(&self) -> &EventStore {
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
        let context = "creating a projection";
        match &self.store {
            EventStore::Postgres(pg) => {
                let mut tx = pg.pool().begin().await.map_err(db(context))?;
                let created = sqlx::query(
                    "INSERT INTO projection_state (name, active_generation, updated_at) VALUES ($1, 1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db(context))?
                .rows_affected();
                if created == 1 {
                    sqlx::query(
                        "INSERT INTO projection_checkpoints (name, generation, code_version, transaction_id, position, \
                         events_seen, started_at, updated_at) VALUES ($1, 1, $2, 0, 0, 0, $3, $3)",
                    )
                    .bind(name)
                    .bind(version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                }
                tx.commit().await.map_err(db(context))?;
            }
            EventStore::Sqlite(lite) => {
                let mut tx = lite.begin_write().await.map_err(db(context))?;
                let now = timestamp_text(now);
                let created = sqlx::query(
                    "INSERT INTO projection_state (name, active_generation, updated_at) VALUES ($1, 1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(db(context))?
                .rows_affected();
                if created == 1 {
                    sqlx::query(
                        "INSERT INTO projection_checkpoints (name, generation, code_version, transaction_id, position, \
                         events_seen, started_at, updated_at) VALUES ($1, 1, $2, 0, 0, 0, $3, $3)",
                    )
                    .bind(name)
                    .bind(version)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                }
                tx.commit().await.map_err(db(context))?;
            }
        }
        self.state(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt { position: 0, reason: format!("projection {name} vanished") })
    }

    pub async fn state(&self, name: &str) -> Result<Option<GenerationState>, StoreError> {
        const SQL: &str = "SELECT active_generation, building_generation FROM projection_state WHERE name = $1";
        let row: Option<(i32, Option<i32>)> = match &self.store {
            EventStore::Postgres(pg) => sqlx::query_as(SQL).bind(name).fetch_optional(pg.pool()).await,
            EventStore::Sqlite(lite) => sqlx::query_as(SQL).bind(name).fetch_optional(lite.pool()).await,
        }
        .map_err(db("reading a projection's state"))?;
        Ok(row.map(|(active, building)| GenerationState { active, building }))
    }

    pub async fn checkpoint(&self, name: &str, generation: i32) -> Result<Option<GenerationCheckpoint>, StoreError> {
        const SQL: &str = "SELECT generation, code_version, transaction_id, position, events_seen, started_at, updated_at \
                           FROM projection_checkpoints WHERE name = $1 AND generation = $2";
        let context = "reading a projection checkpoint";
        let row: Option<CheckpointRow<DateTime<Utc>>> = match &self.store {
            EventStore::Postgres(pg) => {
                sqlx::query_as(SQL).bind(name).bind(generation).fetch_optional(pg.pool()).await.map_err(db(context))?
            }
            EventStore::Sqlite(lite) => {
                let row: Option<CheckpointRow<String>> = sqlx::query_as(SQL)
                    .bind(name)
                    .bind(generation)
                    .fetch_optional(lite.pool())
                    .await
                    .map_err(db(context))?;
                row.map(|(g, v, t, p, e, started, updated)| (g, v, t, p, e, parse_time(&started), parse_time(&updated)))
            }
        };
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

    /// Starts building the next generation from position zero (or returns the one already being
    /// built). Queries keep reading the active generation meanwhile.
    pub async fn start_rebuild(&self, name: &str, code_version: u32, now: DateTime<Utc>) -> Result<i32, StoreError> {
        if let Some(GenerationState { building: Some(building), .. }) = self.state(name).await? {
            return Ok(building);
        }
        let version = i32::try_from(code_version).unwrap_or(i32::MAX);
        let context = "starting a rebuild";
        const NEXT: &str = "SELECT COALESCE(MAX(generation), 0) + 1 FROM projection_checkpoints WHERE name = $1";
        const INSERT: &str = "INSERT INTO projection_checkpoints (name, generation, code_version, transaction_id, position, \
                              events_seen, started_at, updated_at) VALUES ($1, $2, $3, 0, 0, 0, $4, $4)";
        const MARK: &str = "UPDATE projection_state SET building_generation = $2, updated_at = $3 WHERE name = $1 AND building_generation IS NULL";
        match &self.store {
            EventStore::Postgres(pg) => {
                let mut tx = pg.pool().begin().await.map_err(db(context))?;
                let next: i32 = sqlx::query_scalar(NEXT).bind(name).fetch_one(&mut *tx).await.map_err(db(context))?;
                sqlx::query(INSERT)
                    .bind(name)
                    .bind(next)
                    .bind(version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                let marked =
                    sqlx::query(MARK).bind(name).bind(next).bind(now).execute(&mut *tx).await.map_err(db(context))?;
                if marked.rows_affected() == 1 {
                    tx.commit().await.map_err(db(context))?;
                    return Ok(next);
                }
            }
            EventStore::Sqlite(lite) => {
                let mut tx = lite.begin_write().await.map_err(db(context))?;
                let now = timestamp_text(now);
                let next: i32 = sqlx::query_scalar(NEXT).bind(name).fetch_one(&mut *tx).await.map_err(db(context))?;
                sqlx::query(INSERT)
                    .bind(name)
                    .bind(next)
                    .bind(version)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                let marked =
                    sqlx::query(MARK).bind(name).bind(next).bind(&now).execute(&mut *tx).await.map_err(db(context))?;
                if marked.rows_affected() == 1 {
                    tx.commit().await.map_err(db(context))?;
                    return Ok(next);
                }
            }
        }
        // Someone else started one in between: follow theirs.
        Ok(self.state(name).await?.and_then(|s| s.building).unwrap_or_default())
    }

    /// Makes the built generation the one queries read, then drops the previous one. Atomic:
    /// a query sees either the old generation whole or the new one whole.
    pub async fn switch(&self, name: &str, generation: i32, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(state) = self.state(name).await? else { return Ok(()) };
        if state.building != Some(generation) {
            return Ok(());
        }
        let old = state.active;
        let context = "switching generations";
        const SWITCH: &str = "UPDATE projection_state SET active_generation = $2, building_generation = NULL, updated_at = $3 \
                              WHERE name = $1 AND building_generation = $2";
        const DROP_DOCS: &str = "DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2";
        const DROP_CHECKPOINT: &str = "DELETE FROM projection_checkpoints WHERE name = $1 AND generation = $2";
        match &self.store {
            EventStore::Postgres(pg) => {
                let mut tx = pg.pool().begin().await.map_err(db(context))?;
                sqlx::query(SWITCH)
                    .bind(name)
                    .bind(generation)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                sqlx::query(DROP_DOCS).bind(name).bind(old).execute(&mut *tx).await.map_err(db(context))?;
                sqlx::query(DROP_CHECKPOINT).bind(name).bind(old).execute(&mut *tx).await.map_err(db(context))?;
                tx.commit().await.map_err(db(context))?;
            }
            EventStore::Sqlite(lite) => {
                let mut tx = lite.begin_write().await.map_err(db(context))?;
                sqlx::query(SWITCH)
                    .bind(name)
                    .bind(generation)
                    .bind(timestamp_text(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                sqlx::query(DROP_DOCS).bind(name).bind(old).execute(&mut *tx).await.map_err(db(context))?;
                sqlx::query(DROP_CHECKPOINT).bind(name).bind(old).execute(&mut *tx).await.map_err(db(context))?;
                tx.commit().await.map_err(db(context))?;
            }
        }
        Ok(())
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
        let context = "loading documents";
        let rows: Vec<(String, Value)> = match &self.store {
            EventStore::Postgres(pg) => sqlx::query_as(
                "SELECT key, doc FROM read_model_documents WHERE projection = $1 AND generation = $2 AND key = ANY($3)",
            )
            .bind(name)
            .bind(generation)
            .bind(keys)
            .fetch_all(pg.pool())
            .await
            .map_err(db(context))?,
            EventStore::Sqlite(lite) => {
                let keys_json = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT key, doc FROM read_model_documents WHERE projection = $1 AND generation = $2 \
                     AND key IN (SELECT value FROM json_each($3))",
                )
                .bind(name)
                .bind(generation)
                .bind(keys_json)
                .fetch_all(lite.pool())
                .await
                .map_err(db(context))?;
                rows.into_iter().filter_map(|(k, d)| serde_json::from_str(&d).ok().map(|v| (k, v))).collect()
            }
        };
        Ok(rows.into_iter().collect())
    }

    /// A document of the active generation.
    pub async fn get(&self, name: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let Some(state) = self.state(name).await? else { return Ok(None) };
        Ok(self.load(name, state.active, &[key.to_owned()]).await?.remove(key))
    }

    /// Documents of the active generation with `from <= key < to`, in key order.
    pub async fn range(&self, name: &str, from: &str, to: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let Some(state) = self.state(name).await? else { return Ok(Vec::new()) };
        const SQL: &str = "SELECT key, doc FROM read_model_documents \
                           WHERE projection = $1 AND generation = $2 AND key >= $3 AND key < $4 ORDER BY key";
        let context = "reading a range of documents";
        Ok(match &self.store {
            EventStore::Postgres(pg) => sqlx::query_as(SQL)
                .bind(name)
                .bind(state.active)
                .bind(from)
                .bind(to)
                .fetch_all(pg.pool())
                .await
                .map_err(db(context))?,
            EventStore::Sqlite(lite) => {
                let rows: Vec<(String, String)> = sqlx::query_as(SQL)
                    .bind(name)
                    .bind(state.active)
                    .bind(from)
                    .bind(to)
                    .fetch_all(lite.pool())
                    .await
                    .map_err(db(context))?;
                rows.into_iter().filter_map(|(k, d)| serde_json::from_str(&d).ok().map(|v| (k, v))).collect()
            }
        })
    }

    /// Writes a batch's changes and moves the checkpoint from `from` to `to`, in one
    /// transaction. Returns `false`, writing nothing, when the checkpoint is no longer at `from`
    /// (another runner applied this batch first).
    pub async fn commit(
        &self,
        name: &str,
        generation: i32,
        advance: Advance,
        changes: &Changes,
    ) -> Result<bool, StoreError> {
        let Advance { from, to, events, now } = advance;
        const ADVANCE: &str = "UPDATE projection_checkpoints SET transaction_id = $3, position = $4, \
                               events_seen = events_seen + $5, updated_at = $6 \
                               WHERE name = $1 AND generation = $2 AND transaction_id = $7 AND position = $8";
        let context = "committing a projection batch";
        match &self.store {
            EventStore::Postgres(pg) => {
                let mut tx = pg.pool().begin().await.map_err(db(context))?;
                let advanced = sqlx::query(ADVANCE)
                    .bind(name)
                    .bind(generation)
                    .bind(to.transaction_id)
                    .bind(to.position)
                    .bind(events)
                    .bind(now)
                    .bind(from.transaction_id)
                    .bind(from.position)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                if advanced.rows_affected() != 1 {
                    return Ok(false);
                }
                if !changes.upserts.is_empty() {
                    let keys: Vec<&str> = changes.upserts.iter().map(|(k, _)| k.as_str()).collect();
                    let docs: Vec<&Value> = changes.upserts.iter().map(|(_, d)| d).collect();
                    sqlx::query(
                        "INSERT INTO read_model_documents (projection, generation, key, doc) \
                         SELECT $1, $2, k, d FROM UNNEST($3::text[], $4::jsonb[]) AS x(k, d) \
                         ON CONFLICT (projection, generation, key) DO UPDATE SET doc = excluded.doc",
                    )
                    .bind(name)
                    .bind(generation)
                    .bind(keys)
                    .bind(docs)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                }
                if !changes.deletes.is_empty() {
                    sqlx::query(
                        "DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2 AND key = ANY($3)",
                    )
                    .bind(name)
                    .bind(generation)
                    .bind(&changes.deletes)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                }
                tx.commit().await.map_err(db(context))?;
            }
            EventStore::Sqlite(lite) => {
                let mut tx = lite.begin_write().await.map_err(db(context))?;
                let advanced = sqlx::query(ADVANCE)
                    .bind(name)
                    .bind(generation)
                    .bind(to.transaction_id)
                    .bind(to.position)
                    .bind(events)
                    .bind(timestamp_text(now))
                    .bind(from.transaction_id)
                    .bind(from.position)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                if advanced.rows_affected() != 1 {
                    return Ok(false);
                }
                for (key, doc) in &changes.upserts {
                    sqlx::query(
                        "INSERT INTO read_model_documents (projection, generation, key, doc) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (projection, generation, key) DO UPDATE SET doc = excluded.doc",
                    )
                    .bind(name)
                    .bind(generation)
                    .bind(key)
                    .bind(doc.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                }
                for key in &changes.deletes {
                    sqlx::query(
                        "DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2 AND key = $3",
                    )
                    .bind(name)
                    .bind(generation)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db(context))?;
                }
                tx.commit().await.map_err(db(context))?;
            }
        }
        Ok(true)
    }
}
