//! The reads of the event log and its settings, written once for both backends (see
//! [`dialect`](super::dialect)).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::dialect::{AUDIT_COLUMNS, decode, decode_audit_entry, decode_lean, decode_stored, on_pool, on_writer};
use super::group_commit::GroupQueue;
use super::{
    AuditEntry, Checkpoint, IdempotencyKey, LeanEvent, READ_BATCH_MAX, RecordedEvent, Storage, StoreError, StoreHead,
    StoredEvent,
};
use crate::codec::lookup;

/// A limit as SQL takes it.
fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn checkpoint_of(row: Option<(i64, i64)>) -> Option<Checkpoint> {
    row.map(|(transaction_id, position)| Checkpoint { transaction_id, position })
}

/// At most this many groups of commands' stream reads under way at once.
pub(super) const STREAM_READS_IN_FLIGHT: usize = 2;
/// At most this many commands' reads in one group.
const STREAM_READS_PER_GROUP: usize = 64;

/// One command's streams, waiting to be read with others'; answered with their events, or
/// `None` when the group's read failed.
#[derive(Debug)]
pub(crate) struct StreamRead {
    streams: Vec<String>,
    answer: oneshot::Sender<Option<Vec<RecordedEvent>>>,
}

pub(super) fn stream_read_queue() -> GroupQueue<StreamRead> {
    GroupQueue::new(STREAM_READS_IN_FLIGHT, STREAM_READS_PER_GROUP)
}

impl Storage {
    /// The stream and version a key produced, if the key was used with the same request.
    /// A key used with a different request is [`StoreError::IdempotencyKeyReused`].
    pub async fn idempotency_record(&self, key: &IdempotencyKey) -> Result<Option<(String, i64)>, StoreError> {
        const SQL: &str =
            "SELECT request_hash, stream_id, stream_version FROM command_idempotency WHERE idempotency_key = $1";
        let row: Option<(Vec<u8>, String, i64)> =
            on_pool!(self, |pool, sql| sqlx::query_as(SQL).bind(&key.key).fetch_optional(pool).await)
                .map_err(StoreError::db("reading an idempotency key"))?;
        match row {
            None => Ok(None),
            Some((hash, stream_id, version)) if hash == key.request_hash => Ok(Some((stream_id, version))),
            Some(_) => Err(StoreError::IdempotencyKeyReused { key: key.key.clone() }),
        }
    }

    /// The events of one stream in version order.
    pub async fn read_stream(&self, stream_id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query =
                format!("SELECT {} FROM events WHERE stream_id = $1 ORDER BY stream_version", sql.event_columns());
            let rows = sqlx::query(&query)
                .bind(stream_id)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading a stream"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// The events of several streams in one statement, each stream's in version order (payment
    /// intake reads the cases and credits of a group of notifications at once).
    pub async fn read_streams(&self, stream_ids: &[String]) -> Result<Vec<RecordedEvent>, StoreError> {
        if stream_ids.is_empty() {
            return Ok(Vec::new());
        }
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {} FROM events WHERE {} ORDER BY stream_id, stream_version",
                sql.event_columns(),
                sql.in_list_planned_once("stream_id", 1)
            );
            let rows = sqlx::query(&query)
                .bind(sql.list(stream_ids))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading streams"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// The events of `stream` and, apart, those of the streams `beside` it, in one statement
    /// (a command read with the streams it is made from).
    ///
    /// On PostgreSQL, the reads of commands that arrive while others are being read wait and
    /// are read together, by one statement (at most [`STREAM_READS_IN_FLIGHT`] under way): a
    /// busy counter's commands cost the database one read per group rather than one each. A
    /// read pushed after another's commit is read after it, so a command still sees every
    /// write committed before it asked.
    pub async fn read_stream_beside(
        &self,
        stream: &str,
        beside: &[String],
    ) -> Result<(Vec<RecordedEvent>, Vec<RecordedEvent>), StoreError> {
        let mut wanted = Vec::with_capacity(beside.len() + 1);
        wanted.push(stream.to_owned());
        wanted.extend_from_slice(beside);
        let events = match self {
            Storage::Postgres(pg) => self.read_with_others(&pg.stream_reads, wanted).await?,
            Storage::Sqlite(_) => self.read_streams(&wanted).await?,
        };
        Ok(events.into_iter().partition(|e| e.stream_id == stream))
    }

    /// Reads `streams` in a group with the reads waiting in `queue` (see
    /// [`Storage::read_stream_beside`]); alone when the group's read failed, so that each caller
    /// gets its own error.
    async fn read_with_others(
        &self,
        queue: &GroupQueue<StreamRead>,
        streams: Vec<String>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let (answer, answered) = oneshot::channel();
        if let Some((writer, group)) = queue.push(StreamRead { streams: streams.clone(), answer }) {
            let store = self.clone();
            tokio::spawn(async move { writer.write_all(group, |group| store.read_group(group)).await });
        }
        match answered.await {
            Ok(Some(events)) => Ok(events),
            // The group's read failed, or its task is gone.
            Ok(None) | Err(_) => self.read_streams(&streams).await,
        }
    }

    /// Reads every stream a group of callers asked for in one statement, and answers each with
    /// the events of its own streams, in the order the statement gave them (as
    /// [`Storage::read_streams`] alone would).
    async fn read_group(&self, group: Vec<StreamRead>) {
        let mut all: Vec<String> = group.iter().flat_map(|read| read.streams.iter().cloned()).collect();
        all.sort_unstable();
        all.dedup();
        let events = match self.read_streams(&all).await {
            Ok(events) => events,
            Err(error) => {
                tracing::debug!(%error, reads = group.len(), "a group of stream reads failed; each reads alone");
                for read in group {
                    let _ = read.answer.send(None);
                }
                return;
            }
        };
        // Each stream's events, in one run (ordered by stream, then version).
        let mut runs: HashMap<&str, std::ops::Range<usize>> = HashMap::new();
        for (n, event) in events.iter().enumerate() {
            runs.entry(event.stream_id.as_str()).and_modify(|run| run.end = n + 1).or_insert(n..n + 1);
        }
        for read in group {
            // Its streams' runs in the statement's order, each once.
            let mut mine: Vec<&std::ops::Range<usize>> =
                read.streams.iter().filter_map(|stream| runs.get(stream.as_str())).collect();
            mine.sort_unstable_by_key(|run| run.start);
            mine.dedup();
            let events = mine.into_iter().flat_map(|run| events[run.clone()].iter().cloned()).collect();
            let _ = read.answer.send(Some(events));
        }
    }

    /// The last event of one stream, if it has any.
    pub async fn last_event(&self, stream_id: &str) -> Result<Option<RecordedEvent>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {} FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
                sql.event_columns()
            );
            let row = sqlx::query(&query)
                .bind(stream_id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("reading a stream's last event"))?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// All readable events after `after`, in commit order, at most `limit` (1 to
    /// [`READ_BATCH_MAX`]).
    pub async fn read_all(&self, after: Checkpoint, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.clamp(1, READ_BATCH_MAX);
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {} FROM events WHERE {}{} ORDER BY events.transaction_id, events.global_position {}",
                sql.event_columns(),
                sql.after_checkpoint(),
                sql.readable(),
                sql.limit(3)
            );
            let rows = sqlx::query(&query)
                .bind(sql.checkpoint_id(after.transaction_id))
                .bind(after.position)
                .bind(limit_of(limit))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading all events"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// Like [`Storage::read_all`], only events of `types` (a reader that needs a few types
    /// skips the rest in the database), as [`LeanEvent`]s (read models use the payload only).
    /// The same checkpoints: resuming never skips a wanted event.
    pub async fn read_all_of_types(
        &self,
        after: Checkpoint,
        limit: usize,
        types: &[&str],
    ) -> Result<Vec<LeanEvent>, StoreError> {
        let limit = limit.clamp(1, READ_BATCH_MAX);
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {} FROM events WHERE {}{} AND {} \
                 ORDER BY events.transaction_id, events.global_position {}",
                sql.lean_columns(),
                sql.after_checkpoint(),
                sql.readable(),
                sql.in_list_planned_once("event_type", 4),
                sql.limit(3)
            );
            let rows = sqlx::query(&query)
                .bind(sql.checkpoint_id(after.transaction_id))
                .bind(after.position)
                .bind(limit_of(limit))
                .bind(sql.list(types))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading events of some types"))?;
            rows.iter().map(decode_lean).collect()
        })
    }

    /// Up to `limit` events after `after_position`, in global position order, with no read
    /// barrier: for the audit, which checks what is stored rather than following commits.
    pub async fn read_by_position(&self, after_position: i64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.clamp(1, READ_BATCH_MAX);
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2",
                sql.event_columns()
            );
            let rows = sqlx::query(&query)
                .bind(after_position)
                .bind(limit_of(limit))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading events by position"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// Up to `limit` events after `after_position`, in global position order, payload and
    /// metadata as their stored JSON text (see [`StoredEvent`]): the audit's one pass.
    pub async fn stored_events(&self, after_position: i64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, \
                 {} AS payload, {} AS metadata, recorded_at, hash FROM events \
                 WHERE global_position > $1 ORDER BY global_position LIMIT $2",
                sql.json_text("payload"),
                sql.json_text("metadata")
            );
            let rows = sqlx::query(&query)
                .bind(after_position)
                .bind(limit_of(limit.clamp(1, READ_BATCH_MAX)))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading events for the audit"))?;
            rows.iter().map(decode_stored).collect()
        })
    }

    /// Up to `limit` audit entries after `after_position`, in global position order.
    pub async fn audit_entries(&self, after_position: i64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let query =
            format!("SELECT {AUDIT_COLUMNS} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2");
        on_pool!(self, |pool, sql| {
            let rows = sqlx::query(&query)
                .bind(after_position)
                .bind(limit_of(limit.max(1)))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading audit entries"))?;
            rows.iter().map(decode_audit_entry).collect()
        })
    }

    /// The audit entries of the events recorded in `[from, to)`, in global position order.
    pub async fn audit_entries_recorded_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {AUDIT_COLUMNS} FROM events WHERE recorded_at >= $1 AND recorded_at < $2 ORDER BY global_position"
            );
            let rows = sqlx::query(&query)
                .bind(sql.time(from))
                .bind(sql.time(to))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading the audit entries of a period"))?;
            rows.iter().map(decode_audit_entry).collect()
        })
    }

    /// How many events of `types` the log holds (a rebuild's total).
    pub async fn count_of_types(&self, types: &[&str]) -> Result<i64, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!("SELECT count(*) FROM events WHERE {}", sql.in_list("event_type", 1));
            sqlx::query_scalar(&query).bind(sql.list(types)).fetch_one(pool).await
        })
        .map_err(StoreError::db("counting events of some types"))
    }

    /// The checkpoint of the newest readable event ([`Checkpoint::START`] for an empty log).
    pub async fn last_checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let last: Option<(i64, i64)> = on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {}, global_position FROM events WHERE true{} \
                 ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
                sql.transaction_id(),
                sql.readable()
            );
            sqlx::query_as(&query).fetch_optional(pool).await
        })
        .map_err(StoreError::db("reading the head of the log"))?;
        Ok(checkpoint_of(last).unwrap_or(Checkpoint::START))
    }

    /// The newest committed event, readable or not yet (on PostgreSQL, still behind the
    /// barrier): a command that relies on a read model waits for it to get this far.
    pub async fn committed_checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let last: Option<(i64, i64)> = on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {}, global_position FROM events \
                 ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
                sql.transaction_id()
            );
            sqlx::query_as(&query).fetch_optional(pool).await
        })
        .map_err(StoreError::db("reading the newest committed event"))?;
        Ok(checkpoint_of(last).unwrap_or(Checkpoint::START))
    }

    /// The readable head and how many events the log holds.
    pub async fn head(&self) -> Result<StoreHead, StoreError> {
        let checkpoint = self.last_checkpoint().await?;
        let event_count: i64 =
            on_pool!(self, |pool, sql| sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await)
                .map_err(StoreError::db("counting events"))?;
        Ok(StoreHead { checkpoint, event_count })
    }

    /// How many readable events come after `after` (a reader's lag).
    pub async fn count_after(&self, after: Checkpoint) -> Result<i64, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!("SELECT count(*) FROM events WHERE {}{}", sql.after_checkpoint(), sql.readable());
            sqlx::query_scalar(&query)
                .bind(sql.checkpoint_id(after.transaction_id))
                .bind(after.position)
                .fetch_one(pool)
                .await
        })
        .map_err(StoreError::db("counting events after a checkpoint"))
    }

    /// The version a stream has reached (0 when it has no events).
    pub async fn stream_version(&self, stream_id: &str) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = $1";
        on_pool!(self, |pool, sql| sqlx::query_scalar(SQL).bind(stream_id).fetch_one(pool).await)
            .map_err(StoreError::db("reading a stream's version"))
    }

    /// Every event of one type, in position order (agencies, schedules: short lists).
    pub async fn events_of_type(&self, event_type: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query =
                format!("SELECT {} FROM events WHERE event_type = $1 ORDER BY global_position", sql.event_columns());
            let rows = sqlx::query(&query)
                .bind(event_type)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading events of a type"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// How many agency configurations were committed: a scan of a small partial index
    /// (migration 0010), so that a cache of the agencies can check it is current. A count, not
    /// the newest position: PostgreSQL may commit a lower position after a higher one.
    pub async fn agency_configuration_count(&self) -> Result<i64, StoreError> {
        on_pool!(self, |pool, sql| sqlx::query_scalar(super::AGENCY_CONFIGURATIONS).fetch_one(pool).await)
            .map_err(StoreError::db("reading the newest agency configuration"))
    }

    /// QrIssued events whose `expires_at` is at `since` or later, in log order: the QRs the
    /// expiry task may still have to expire (one range scan of `events_qr_expires_at_idx`,
    /// migration 0011). `since` counts to the second: a QR expiring within that second is
    /// included. The payload holds `expires_at` as RFC 3339 in UTC (`…T02:15:00Z`,
    /// `…T02:15:00.500Z`): the bound's text, `%Y-%m-%dT%H:%M:%S`, is a prefix of every instant
    /// of its second and sorts below them, and text order is time order.
    pub async fn qrs_expiring_since(&self, since: DateTime<Utc>) -> Result<Vec<RecordedEvent>, StoreError> {
        let bound = since.format("%Y-%m-%dT%H:%M:%S").to_string();
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {} FROM events WHERE event_type = '{}' AND {} >= {} ORDER BY global_position",
                sql.event_columns(),
                lookup::QR_ISSUED,
                sql.bytewise(&sql.field("payload", lookup::EXPIRES_AT)),
                sql.bytewise("$1"),
            );
            let rows = sqlx::query(&query)
                .bind(&bound)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reading the QRs still to expire"))?;
            rows.iter().map(decode).collect()
        })
    }

    /// The one event of `event_type` whose payload field `field` holds `value` (a lookup on a
    /// partial expression index: `events_qr_id_idx`, `events_receipt_id_idx`; the type is
    /// written into the text, so that the planner can use the index's predicate).
    async fn event_with_field(
        &self,
        event_type: &str,
        field: &str,
        value: &str,
        context: &'static str,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT {} FROM events WHERE event_type = '{event_type}' AND {} = $1 LIMIT 1",
                sql.event_columns(),
                sql.field("payload", field)
            );
            let row = sqlx::query(&query).bind(value).fetch_optional(pool).await.map_err(StoreError::db(context))?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// The QrIssued event of a QR id.
    pub async fn qr_issued(&self, qr_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.event_with_field(lookup::QR_ISSUED, lookup::QR_ID, &qr_id.to_string(), "looking up a QR").await
    }

    /// The ReceiptIssued event of a receipt id.
    pub async fn receipt_issued(&self, receipt_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.event_with_field(
            lookup::RECEIPT_ISSUED,
            lookup::RECEIPT_ID,
            &receipt_id.to_string(),
            "looking up a receipt",
        )
        .await
    }

    /// Credit streams left unmatched for an agency (`None`: agency unknown) and not resolved since.
    pub async fn unresolved_unmatched_credits(&self, agency: Option<&str>) -> Result<Vec<String>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT u.stream_id FROM events u \
                 WHERE u.event_type = '{}' AND {} {} $1 \
                   AND NOT EXISTS (SELECT 1 FROM events r WHERE r.stream_id = u.stream_id AND {}) \
                 ORDER BY u.global_position",
                lookup::CREDIT_UNMATCHED,
                sql.field("u.payload", lookup::AGENCY_CODE),
                sql.same(),
                sql.in_list("r.event_type", 2)
            );
            sqlx::query_scalar(&query).bind(agency).bind(sql.list(lookup::CREDIT_RESOLVED)).fetch_all(pool).await
        })
        .map_err(StoreError::db("listing unmatched credits"))
    }

    /// The streams of an agency's unmatched credits marked for refund and not yet paid back,
    /// oldest first (`agency` `None`: those whose agency could not be told).
    pub async fn credits_awaiting_refund(&self, agency: Option<&str>) -> Result<Vec<String>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT u.stream_id FROM events u \
                 WHERE u.event_type = '{}' AND {} {} $1 \
                   AND EXISTS (SELECT 1 FROM events q WHERE q.stream_id = u.stream_id AND q.event_type = '{}') \
                   AND NOT EXISTS (SELECT 1 FROM events r WHERE r.stream_id = u.stream_id AND r.event_type = '{}') \
                 ORDER BY u.global_position",
                lookup::CREDIT_UNMATCHED,
                sql.field("u.payload", lookup::AGENCY_CODE),
                sql.same(),
                lookup::CREDIT_REFUND_REQUESTED,
                lookup::CREDIT_REFUNDED,
            );
            sqlx::query_scalar(&query).bind(agency).fetch_all(pool).await
        })
        .map_err(StoreError::db("listing credits awaiting refund"))
    }

    /// The stream of the case most recently assessed or given a QR at an agency's counter.
    pub async fn latest_counter_activation(&self, agency: &str, counter: &str) -> Result<Option<String>, StoreError> {
        on_pool!(self, |pool, sql| {
            let query = format!(
                "SELECT stream_id FROM events WHERE event_type IN ('{}', '{}') AND {} = $1 AND {} = $2 \
                 ORDER BY global_position DESC LIMIT 1",
                lookup::FEE_ASSESSED,
                lookup::QR_ISSUED,
                sql.field("payload", lookup::AGENCY_CODE),
                sql.field("payload", lookup::COUNTER_ID)
            );
            sqlx::query_scalar(&query).bind(agency).bind(counter).fetch_optional(pool).await
        })
        .map_err(StoreError::db("looking up a counter's case"))
    }

    /// The streams whose QR carries one of these payment references, in one statement:
    /// (reference, stream) pairs, each once.
    pub async fn streams_with_qr_references(&self, references: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        on_pool!(self, |pool, sql| {
            let reference = sql.field("payload", lookup::REFERENCE);
            let query = format!(
                "SELECT DISTINCT {reference}, stream_id FROM events WHERE event_type = '{}' AND {}",
                lookup::QR_ISSUED,
                sql.in_list(&reference, 1)
            );
            sqlx::query_as(&query).bind(sql.list(references)).fetch_all(pool).await
        })
        .map_err(StoreError::db("looking up payment references"))
    }

    /// A named installation setting (e.g. the token signing key).
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT value FROM settings WHERE name = $1";
        on_pool!(self, |pool, sql| sqlx::query_scalar(SQL).bind(name).fetch_optional(pool).await)
            .map_err(StoreError::db("reading a setting"))
    }

    /// Stores `value` under `name` unless a value is already there; returns the stored value.
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        const SQL: &str = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        on_writer!(self, |pool, sql| sqlx::query(SQL).bind(name).bind(value).execute(pool).await.map(|_| ()))
            .map_err(StoreError::db("writing a setting"))?;
        self.setting(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt { position: 0, reason: format!("setting {name} vanished") })
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool, sql| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(StoreError::db("pinging the database"))
    }
}
