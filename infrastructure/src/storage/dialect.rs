//! Where the two backends' SQL differs, each difference named once, so that every query they
//! agree on is written once.
//!
//! [`on_pool!`] writes a body once and expands it for each backend: inside it, `pool` is that
//! backend's pool and `sql` its dialect ([`Pg`] or [`Lite`]), whose methods have the same names
//! on both and return what that backend needs (a timestamp as `timestamptz` or as text, a list
//! as an array or as JSON, a payload field as `->>` or `json_extract`). The compiler checks the
//! body against both backends. Rows are read through [`StoredRow`], whose getters decode the
//! same Rust types from either backend.
//!
//! What really differs stays in `postgres.rs` and `sqlite.rs`: connecting, the append path and
//! the commit-order barrier.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::types::Json;
use uuid::Uuid;

use super::documents::{ADVANCE_CHECKPOINT, Advance, Changes};
use super::hash_chain::timestamp_text;
use super::{AuditEntry, LeanEvent, RecordedEvent, StoreError, StoredEvent};

/// Runs `$body` against whichever backend holds `$store`, with `$pool` its pool and `$sql` its
/// [dialect](self). Write the body once; it is compiled once per backend. The body is an async
/// block: `?` and `return` in it leave the body, not the calling function.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        $crate::storage::dialect::on_backend!($store, pool, |$pool, $sql| $body)
    };
}
pub(crate) use on_pool;

/// Like [`on_pool!`], for a body that writes: on SQLite `$pool` is the store's one writing
/// connection, so writers wait their turn in order instead of colliding on SQLite's write lock
/// (its busy handler sleeps 1 … 100 ms between tries). On PostgreSQL the same pool as reads.
macro_rules! on_writer {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        $crate::storage::dialect::on_backend!($store, writer, |$pool, $sql| $body)
    };
}
pub(crate) use on_writer;

/// [`on_pool!`] and [`on_writer!`]: `$lite` names the SQLite store's pool to use.
macro_rules! on_backend {
    ($store:expr, $lite:ident, |$pool:ident, $sql:ident| $body:expr) => {
        match $store {
            $crate::storage::Storage::Postgres(store) => {
                let $pool = store.pool();
                #[allow(unused_variables)]
                let $sql = $crate::storage::dialect::Pg;
                async { $body }.await
            }
            $crate::storage::Storage::Sqlite(store) => {
                let $pool = store.$lite();
                #[allow(unused_variables)]
                let $sql = $crate::storage::dialect::Lite;
                async { $body }.await
            }
        }
    };
}
pub(crate) use on_backend;

/// A batch with at least this many new documents inserts them with `COPY` (see
/// [`Pg::write_documents`]).
const COPY_FROM_ROWS: usize = 256;

/// PostgreSQL's side of each difference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pg;

/// SQLite's side of each difference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lite;

impl Pg {
    /// Every column of an event. The writing transaction's id is an `xid8`, read as a number.
    pub(crate) fn event_columns(self) -> &'static str {
        "global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version, \
         event_id, event_type, schema_version, payload, metadata, recorded_at, hash"
    }

    /// The columns readers that use only the payload need (projections), payload as text.
    pub(crate) fn lean_columns(self) -> &'static str {
        "global_position, transaction_id::text::bigint AS transaction_id, stream_id, \
         event_type, schema_version, payload::text AS payload, recorded_at"
    }

    /// The writing transaction's id as a number (`xid8` has no cast to `bigint`).
    pub(crate) fn transaction_id(self) -> &'static str {
        "transaction_id::text::bigint"
    }

    /// Events after the checkpoint bound at `$1` (see [`Pg::checkpoint_id`]) and `$2`.
    ///
    /// The bounds are read through sub-selects, which the planner does not look into. The log's
    /// readers (the live feed, every projection) run this at every commit; with the values in
    /// sight PostgreSQL planned it again at every call, since a plan for "a few rows near the
    /// end" always looked cheaper than the generic one — the same index scan — and planning
    /// cost more than the read itself. Hidden, the estimates are the generic ones, and after
    /// five calls a connection keeps one plan, for as long as the log does not outgrow the
    /// size its earlier plans were made at (docs/BENCHMARKS.md, "The log's readers planned
    /// once"). [`Pg::limit`] and [`Pg::in_list_planned_once`] do the same.
    pub(crate) fn after_checkpoint(self) -> &'static str {
        "(events.transaction_id, events.global_position) > ((SELECT $1::text::xid8), (SELECT $2::bigint))"
    }

    /// `LIMIT` the number bound at `$n`, hidden from the planner (see [`Pg::after_checkpoint`]).
    pub(crate) fn limit(self, n: u8) -> String {
        format!("LIMIT (SELECT ${n}::bigint)")
    }

    /// A checkpoint's transaction id, bound as text and cast to `xid8`.
    pub(crate) fn checkpoint_id(self, transaction_id: i64) -> String {
        transaction_id.to_string()
    }

    /// The commit-order barrier: only transactions older than every transaction still running
    /// are readable, since anything at or above the snapshot's xmin may still commit "behind"
    /// a reader that went past it.
    pub(crate) fn readable(self) -> &'static str {
        " AND events.transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    }

    /// A JSON column as its text (`jsonb` printed).
    pub(crate) fn json_text(self, column: &str) -> String {
        format!("{column}::text")
    }

    /// The instant bound as `timestamptz`.
    pub(crate) fn time(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    /// `column` is one of the values of the list bound at `$n` (see [`Pg::list`]).
    pub(crate) fn in_list(self, column: &str, n: u8) -> String {
        format!("{column} = ANY(${n})")
    }

    /// [`Pg::in_list`] with the list hidden from the planner, for statements run at every
    /// commit whose plan does not depend on the list (see [`Pg::after_checkpoint`]). The cast
    /// makes `ANY` take the sub-select's one value, an array, rather than its rows.
    pub(crate) fn in_list_planned_once(self, column: &str, n: u8) -> String {
        format!("{column} = ANY((SELECT ${n}::text[])::text[])")
    }

    /// A list of text bound as an array.
    pub(crate) fn list<T: AsRef<str>>(self, items: &[T]) -> Vec<&str> {
        items.iter().map(AsRef::as_ref).collect()
    }

    /// A top-level text field of a JSON column.
    pub(crate) fn field(self, column: &str, name: &str) -> String {
        format!("{column}->>'{name}'")
    }

    /// Text compared byte by byte, whatever the database's locale (an index on the expression
    /// must say the same collation).
    pub(crate) fn bytewise(self, text: &str) -> String {
        format!("({text}) COLLATE \"C\"")
    }

    /// A null-safe equality (`NULL` equals `NULL`).
    pub(crate) fn same(self) -> &'static str {
        "IS NOT DISTINCT FROM"
    }

    /// Text parameter `$n` in a comparison where its type cannot be inferred (`$n IS NULL`).
    pub(crate) fn text_param(self, n: u8) -> String {
        format!("${n}::text")
    }

    /// A JSON document bound as `jsonb`.
    pub(crate) fn json(self, value: &Value) -> Json<&Value> {
        Json(value)
    }

    /// Moves a projection's checkpoint from `advance.from` to `advance.to` and writes the
    /// batch's documents in one statement: one round trip and one commit, where the transaction
    /// below takes four or five (`BEGIN`, the checkpoint, the documents, `COMMIT`). A live
    /// projection commits a batch every few commits of the log, so under load these round trips
    /// were a good part of what PostgreSQL was asked per notification (issue 17). The documents
    /// are written only if the checkpoint moved (the `EXISTS` gates them on its `UPDATE`, which
    /// runs first and waits for another runner's commit of the same batch, then finds the
    /// checkpoint moved). `None` for a batch of many new documents (a rebuild's): those go by
    /// `COPY`, in the transaction. New and existing documents go alike (`ON CONFLICT`): the
    /// plain insert is `COPY`'s shortcut, not a check.
    pub(crate) async fn advance_with_documents(
        self,
        pool: &PgPool,
        name: &str,
        generation: i32,
        advance: &Advance,
        changes: &Changes,
    ) -> Result<Option<bool>, sqlx::Error> {
        if changes.inserts.len() >= COPY_FROM_ROWS {
            return Ok(None);
        }
        let sql = format!(
            "WITH advanced AS ({ADVANCE_CHECKPOINT} RETURNING 1), written AS ( \
                 INSERT INTO read_model_documents (projection, generation, key, doc) \
                 SELECT $1, $2, k, d::jsonb FROM UNNEST((SELECT $9::text[]), (SELECT $10::text[])) AS x(k, d) \
                 WHERE EXISTS (SELECT 1 FROM advanced) \
                 ON CONFLICT (projection, generation, key) DO UPDATE SET doc = excluded.doc RETURNING 1 \
             ), deleted AS ( \
                 DELETE FROM read_model_documents \
                 WHERE projection = $1 AND generation = $2 AND {} AND EXISTS (SELECT 1 FROM advanced) RETURNING 1 \
             ) \
             SELECT count(*) FROM advanced",
            self.in_list_planned_once("key", 11)
        );
        let rows = changes.inserts.iter().chain(&changes.upserts);
        let (keys, docs): (Vec<&str>, Vec<&str>) = rows.map(|(k, d)| (k.as_str(), d.as_str())).unzip();
        let advanced: i64 = sqlx::query_scalar(&sql)
            .bind(name)
            .bind(generation)
            .bind(advance.to.transaction_id)
            .bind(advance.to.position)
            .bind(advance.events)
            .bind(advance.now)
            .bind(advance.from.transaction_id)
            .bind(advance.from.position)
            .bind(keys)
            .bind(docs)
            .bind(&changes.deletes)
            .fetch_one(pool)
            .await?;
        Ok(Some(advanced == 1))
    }

    /// Writes a projection batch's documents: one statement for the upserts and one for the
    /// deletes, whatever the batch's size (a round trip each). Many new documents (a rebuild's
    /// batch) are streamed with `COPY` instead, which PostgreSQL takes in about half the time
    /// of the same rows through `INSERT … UNNEST` (docs/BENCHMARKS.md); a few go in one
    /// `INSERT`, one round trip where `COPY` takes two.
    pub(crate) async fn write_documents(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        name: &str,
        generation: i32,
        changes: &Changes,
    ) -> Result<(), sqlx::Error> {
        const INSERT: &str = "INSERT INTO read_model_documents (projection, generation, key, doc) \
                              SELECT $1, $2, k, d::jsonb FROM UNNEST($3::text[], $4::text[]) AS x(k, d)";
        for (rows, conflict) in [
            (&changes.inserts, ""),
            (&changes.upserts, " ON CONFLICT (projection, generation, key) DO UPDATE SET doc = excluded.doc"),
        ] {
            if rows.is_empty() {
                continue;
            }
            if conflict.is_empty() && rows.len() >= COPY_FROM_ROWS {
                self.copy_documents(tx, name, generation, rows).await?;
                continue;
            }
            let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
            let docs: Vec<&str> = rows.iter().map(|(_, d)| d.as_str()).collect();
            sqlx::query(&format!("{INSERT}{conflict}"))
                .bind(name)
                .bind(generation)
                .bind(keys)
                .bind(docs)
                .execute(&mut **tx)
                .await?;
        }
        if !changes.deletes.is_empty() {
            sqlx::query("DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2 AND key = ANY($3)")
                .bind(name)
                .bind(generation)
                .bind(&changes.deletes)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Inserts new documents with `COPY … FROM STDIN` (text format), in the transaction.
    async fn copy_documents(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        name: &str,
        generation: i32,
        rows: &[(String, String)],
    ) -> Result<(), sqlx::Error> {
        let mut data = Vec::with_capacity(rows.iter().map(|(k, d)| k.len() + d.len() + name.len() + 16).sum());
        let generation = generation.to_string();
        for (key, doc) in rows {
            for (n, field) in [name, &generation, key, doc].into_iter().enumerate() {
                if n > 0 {
                    data.push(b'\t');
                }
                copy_text_field(&mut data, field);
            }
            data.push(b'\n');
        }
        let mut copy =
            tx.copy_in_raw("COPY read_model_documents (projection, generation, key, doc) FROM STDIN").await?;
        copy.send(data).await?;
        copy.finish().await?;
        Ok(())
    }

    /// Locks `table` against concurrent writers until the transaction ends.
    pub(crate) async fn lock_table(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        table: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")).execute(&mut **tx).await.map(|_| ())
    }

    /// A transaction. PostgreSQL orders concurrent writers by row locks and constraints.
    pub(crate) async fn begin(self, pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        pool.begin().await
    }
}

/// Appends `text` as one field of `COPY`'s text format: the characters it treats specially
/// (backslash, tab, newline, carriage return) escaped, everything else as it is.
fn copy_text_field(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // Runs of plain bytes are copied whole: most documents have few or no special bytes.
    let mut plain_from = 0;
    for (at, byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain_from..at]);
        out.extend_from_slice(escaped);
        plain_from = at + 1;
    }
    out.extend_from_slice(&bytes[plain_from..]);
}

impl Lite {
    pub(crate) fn event_columns(self) -> &'static str {
        "global_position, transaction_id, stream_id, stream_version, event_id, event_type, \
         schema_version, payload, metadata, recorded_at, hash"
    }

    pub(crate) fn lean_columns(self) -> &'static str {
        "global_position, transaction_id, stream_id, event_type, schema_version, payload, recorded_at"
    }

    pub(crate) fn transaction_id(self) -> &'static str {
        "transaction_id"
    }

    pub(crate) fn after_checkpoint(self) -> &'static str {
        "(events.transaction_id, events.global_position) > ($1, $2)"
    }

    pub(crate) fn limit(self, n: u8) -> String {
        format!("LIMIT ${n}")
    }

    pub(crate) fn checkpoint_id(self, transaction_id: i64) -> i64 {
        transaction_id
    }

    /// One writer at a time: what is committed is readable, in order.
    pub(crate) fn readable(self) -> &'static str {
        ""
    }

    /// A JSON column as its text (stored as text).
    pub(crate) fn json_text(self, column: &str) -> String {
        column.to_owned()
    }

    /// The instant bound as text in the one format the database holds: RFC 3339, UTC, six
    /// fraction digits, so that text order is time order. (sqlx's own encoding writes
    /// `+00:00` and a variable number of digits, which would not sort with the stored rows.)
    pub(crate) fn time(self, at: DateTime<Utc>) -> String {
        timestamp_text(at)
    }

    pub(crate) fn in_list(self, column: &str, n: u8) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }

    /// The same as [`Lite::in_list`]: SQLite plans each statement once.
    pub(crate) fn in_list_planned_once(self, column: &str, n: u8) -> String {
        self.in_list(column, n)
    }

    /// A list of text bound as a JSON array (SQLite has no arrays).
    pub(crate) fn list<T: AsRef<str>>(self, items: &[T]) -> String {
        let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
        serde_json::Value::from(items).to_string()
    }

    pub(crate) fn field(self, column: &str, name: &str) -> String {
        format!("json_extract({column}, '$.{name}')")
    }

    /// Text compares byte by byte already (SQLite's `BINARY` collation).
    pub(crate) fn bytewise(self, text: &str) -> String {
        text.to_owned()
    }

    pub(crate) fn same(self) -> &'static str {
        "IS"
    }

    pub(crate) fn text_param(self, n: u8) -> String {
        format!("${n}")
    }

    /// A JSON document bound as text.
    pub(crate) fn json(self, value: &Value) -> String {
        value.to_string()
    }

    /// Always `None`: the transaction it stands for costs SQLite no round trips (see
    /// [`Pg::advance_with_documents`]).
    #[allow(clippy::unused_async, reason = "the same signature as PostgreSQL's")]
    pub(crate) async fn advance_with_documents(
        self,
        _pool: &SqlitePool,
        _name: &str,
        _generation: i32,
        _advance: &Advance,
        _changes: &Changes,
    ) -> Result<Option<bool>, sqlx::Error> {
        Ok(None)
    }

    /// Writes a projection batch's documents a statement each: in-process, a statement costs
    /// no round trip, and SQLite has no arrays to unnest.
    pub(crate) async fn write_documents(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        name: &str,
        generation: i32,
        changes: &Changes,
    ) -> Result<(), sqlx::Error> {
        // SQLite checks the key in one lookup either way: every document is upserted.
        for (key, doc) in changes.inserts.iter().chain(&changes.upserts) {
            sqlx::query(
                "INSERT INTO read_model_documents (projection, generation, key, doc) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (projection, generation, key) DO UPDATE SET doc = excluded.doc",
            )
            .bind(name)
            .bind(generation)
            .bind(key)
            .bind(doc)
            .execute(&mut **tx)
            .await?;
        }
        for key in &changes.deletes {
            sqlx::query("DELETE FROM read_model_documents WHERE projection = $1 AND generation = $2 AND key = $3")
                .bind(name)
                .bind(generation)
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Nothing to do: a write transaction ([`Lite::begin`]) holds the whole database's lock.
    pub(crate) async fn lock_table(
        self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        _table: &str,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    /// A write transaction holding SQLite's write lock from the start, so two writers queue on
    /// the busy timeout instead of failing when the second tries to upgrade its lock.
    pub(crate) async fn begin(
        self,
        pool: &SqlitePool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// The getters the decoders need, decoding the same Rust types from either backend's row.
pub(crate) trait StoredRow {
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn int32(&self, column: &str) -> Result<i32, sqlx::Error>;
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
    /// A `uuid`, or its hyphenated text.
    fn uuid(&self, column: &str) -> Result<Uuid, sqlx::Error>;
    /// A JSON column (`jsonb`, or text holding JSON).
    fn json(&self, column: &str) -> Result<Value, sqlx::Error>;
    /// A `timestamptz`, or RFC 3339 text.
    fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error>;
}

macro_rules! stored_row {
    ($row:ty, $uuid:ty, |$stored:ident| $to_uuid:expr) => {
        impl StoredRow for $row {
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn int32(&self, column: &str) -> Result<i32, sqlx::Error> {
                self.try_get(column)
            }
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(column)
            }
            fn uuid(&self, column: &str) -> Result<Uuid, sqlx::Error> {
                self.try_get::<$uuid, _>(column).map(|$stored| $to_uuid)
            }
            fn json(&self, column: &str) -> Result<Value, sqlx::Error> {
                self.try_get::<Json<Value>, _>(column).map(|json| json.0)
            }
            fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}
stored_row!(PgRow, Uuid, |id| id);
// SQLite keeps ids as their hyphenated text.
stored_row!(SqliteRow, uuid::fmt::Hyphenated, |id| id.into_uuid());

/// A row of the event log, all columns.
pub(crate) fn decode(row: &impl StoredRow) -> Result<RecordedEvent, StoreError> {
    let position = row.int("global_position").map_err(StoreError::db("decoding an event"))?;
    let corrupt = |e: sqlx::Error| StoreError::Corrupt { position, reason: e.to_string() };
    Ok(RecordedEvent {
        position,
        transaction_id: row.int("transaction_id").map_err(corrupt)?,
        stream_id: row.text("stream_id").map_err(corrupt)?,
        stream_version: row.int("stream_version").map_err(corrupt)?,
        event_id: row.uuid("event_id").map_err(corrupt)?,
        event_type: row.text("event_type").map_err(corrupt)?,
        schema_version: row.int32("schema_version").map_err(corrupt)?,
        payload: row.json("payload").map_err(corrupt)?,
        metadata: row.json("metadata").map_err(corrupt)?,
        recorded_at: row.time("recorded_at").map_err(corrupt)?,
        hash: row.bytes("hash").map_err(corrupt)?,
    })
}

/// A row of the lean columns (see [`Pg::lean_columns`]).
pub(crate) fn decode_lean(row: &impl StoredRow) -> Result<LeanEvent, StoreError> {
    let position = row.int("global_position").map_err(StoreError::db("decoding an event"))?;
    let corrupt = |e: sqlx::Error| StoreError::Corrupt { position, reason: e.to_string() };
    Ok(LeanEvent {
        position,
        transaction_id: row.int("transaction_id").map_err(corrupt)?,
        stream_id: row.text("stream_id").map_err(corrupt)?,
        event_type: row.text("event_type").map_err(corrupt)?,
        schema_version: row.int32("schema_version").map_err(corrupt)?,
        payload: row.text("payload").map_err(corrupt)?,
        recorded_at: row.time("recorded_at").map_err(corrupt)?,
    })
}

/// A row of the event log with payload and metadata as text (see [`StoredEvent`]).
pub(crate) fn decode_stored(row: &impl StoredRow) -> Result<StoredEvent, StoreError> {
    let position = row.int("global_position").map_err(StoreError::db("decoding an event"))?;
    let corrupt = |e: sqlx::Error| StoreError::Corrupt { position, reason: e.to_string() };
    Ok(StoredEvent {
        position,
        stream_id: row.text("stream_id").map_err(corrupt)?,
        stream_version: row.int("stream_version").map_err(corrupt)?,
        event_id: row.uuid("event_id").map_err(corrupt)?,
        event_type: row.text("event_type").map_err(corrupt)?,
        schema_version: row.int32("schema_version").map_err(corrupt)?,
        payload: row.text("payload").map_err(corrupt)?,
        metadata: row.text("metadata").map_err(corrupt)?,
        recorded_at: row.time("recorded_at").map_err(corrupt)?,
        hash: row.bytes("hash").map_err(corrupt)?,
    })
}

/// The columns the audit's structural checks read: no payload.
pub(crate) const AUDIT_COLUMNS: &str = "global_position, stream_id, stream_version, recorded_at, hash";

pub(crate) fn decode_audit_entry(row: &impl StoredRow) -> Result<AuditEntry, StoreError> {
    let position = row.int("global_position").map_err(StoreError::db("decoding an audit entry"))?;
    let corrupt = |e: sqlx::Error| StoreError::Corrupt { position, reason: e.to_string() };
    Ok(AuditEntry {
        position,
        stream_id: row.text("stream_id").map_err(corrupt)?,
        stream_version: row.int("stream_version").map_err(corrupt)?,
        recorded_at: row.time("recorded_at").map_err(corrupt)?,
        hash: row.bytes("hash").map_err(corrupt)?,
    })
}
