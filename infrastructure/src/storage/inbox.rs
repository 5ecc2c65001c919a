//! The raw inbox of bank notifications: every request to `/webhooks/*` is stored before it is
//! answered — a new credit's with its money and its outcome ([`InboxRow::Arriving`]), any
//! other before its credit is recorded, then marked with what became of it. Nothing a bank
//! sent is lost, even when it is malformed, forged or about money that matches no case.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use tokio::sync::oneshot;

use super::dialect::{on_pool, on_writer};
use super::group_commit::GroupQueue;
use super::{Storage, StoreError};

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOutcome {
    /// A payment was recorded on a case.
    Recorded,
    /// Money arrived but matched no case: it waits in the unmatched queue.
    Unmatched,
    /// The same notification was already handled.
    Duplicate,
    /// Verified, but not a credit (money going out, a failed payment).
    Ignored,
    /// Refused: bad signature, malformed, not configured, unknown account.
    Rejected,
    /// Handling failed on our side; the provider will retry.
    Failed,
    /// Interrupted (a crash), and the provider's retry of the same money was handled since.
    Superseded,
}

impl InboxOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxOutcome::Recorded => "recorded",
            InboxOutcome::Unmatched => "unmatched",
            InboxOutcome::Duplicate => "duplicate",
            InboxOutcome::Ignored => "ignored",
            InboxOutcome::Rejected => "rejected",
            InboxOutcome::Failed => "failed",
            InboxOutcome::Superseded => "superseded",
        }
    }
}

/// A request as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    pub provider: &'static str,
    pub method: String,
    pub uri: String,
    /// Only the headers that matter, with secrets redacted.
    pub headers: Value,
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub received_at: DateTime<Utc>,
}

/// A request just stored: its inbox row, and how many agency configurations the log held then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRequest {
    pub id: i64,
    pub agency_configurations: i64,
}

/// A stored request whose handling never finished (still `received`).
#[derive(Debug, Clone)]
pub struct UnfinishedRequest {
    pub id: i64,
    pub provider: String,
    pub uri: String,
    /// The kept headers, secrets redacted.
    pub headers: Value,
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub received_at: DateTime<Utc>,
}

/// A stored request and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    pub id: i64,
    pub provider: String,
    pub body: Vec<u8>,
    pub outcome: String,
    pub outcome_detail: Option<String>,
    pub credit_id: Option<String>,
    pub http_status: Option<i32>,
}

/// What to write in the inbox once a request is handled: written by [`Inbox::resolve`], or in
/// the same transaction as the events the request caused (see
/// `PaymentIntake::receive_resolving`), so that a notification costs one durable commit.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxResolution {
    pub row: InboxRow,
    pub outcome: InboxOutcome,
    pub detail: Option<String>,
    pub credit_id: Option<String>,
    /// What the sender was answered (none for a request finished by the recovery).
    pub http_status: Option<u16>,
    pub at: DateTime<Utc>,
}

/// The inbox row an [`InboxResolution`] is written on.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxRow {
    /// A row stored before ([`Inbox::record`]): its outcome is written on it.
    Stored(i64),
    /// A request verified before it was stored: its row is inserted with its outcome by the
    /// commit that records the money it brought (`PaymentIntake::receive_with_row`), so the
    /// row and the money are stored together or not at all.
    Arriving(Arc<ReceivedRequest>),
}

const RESOLVE_SQL: &str = "UPDATE bank_notifications SET outcome = $1, outcome_detail = $2, credit_id = $3, \
                           http_status = $4, processed_at = $5 WHERE id = $6";

/// Stores a request with its outcome (an [`InboxRow::Arriving`]): one row, already finished.
const ARRIVAL_SQL: &str = "INSERT INTO bank_notifications (provider, received_at, method, uri, headers, body, \
                           body_truncated, outcome, outcome_detail, credit_id, http_status, processed_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Writes `resolution` inside an open transaction: the same statements on either backend,
/// generated once per backend by `write_in!`.
macro_rules! write_in {
    ($name:ident, $db:ty, $sql:expr) => {
        pub(crate) async fn $name(
            tx: &mut sqlx::Transaction<'static, $db>,
            resolution: &InboxResolution,
        ) -> Result<(), sqlx::Error> {
            let request = match &resolution.row {
                InboxRow::Stored(id) => {
                    return sqlx::query(RESOLVE_SQL)
                        .bind(resolution.outcome.as_str())
                        .bind(resolution.detail.as_deref())
                        .bind(resolution.credit_id.as_deref())
                        .bind(resolution.http_status.map(i32::from))
                        .bind($sql.time(resolution.at))
                        .bind(id)
                        .execute(&mut **tx)
                        .await
                        .map(|_| ());
                }
                InboxRow::Arriving(request) => request,
            };
            sqlx::query(ARRIVAL_SQL)
                .bind(request.provider)
                .bind($sql.time(request.received_at))
                .bind(&request.method)
                .bind(&request.uri)
                .bind($sql.json(&request.headers))
                .bind(&request.body)
                .bind(request.body_truncated)
                .bind(resolution.outcome.as_str())
                .bind(resolution.detail.as_deref())
                .bind(resolution.credit_id.as_deref())
                .bind(resolution.http_status.map(i32::from))
                .bind($sql.time(resolution.at))
                .execute(&mut **tx)
                .await
                .map(|_| ())
        }
    };
}
write_in!(write_postgres, sqlx::Postgres, super::dialect::Pg);
write_in!(write_sqlite, sqlx::Sqlite, super::dialect::Lite);

/// Stores one request: its row's id, and how many agency configurations the log holds.
const RECORD_SQL: &str = "INSERT INTO bank_notifications (provider, received_at, method, uri, headers, body, body_truncated) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7) \
                          RETURNING id, (SELECT count(*) FROM events WHERE event_type = 'AgencyConfigured')";

/// [`RECORD_SQL`] with `request` bound, in backend `sql`'s types.
macro_rules! record_query {
    ($request:expr, $sql:expr) => {
        sqlx::query_as(RECORD_SQL)
            .bind($request.provider)
            .bind($sql.time($request.received_at))
            .bind(&$request.method)
            .bind(&$request.uri)
            .bind($sql.json(&$request.headers))
            .bind(&$request.body)
            .bind($request.body_truncated)
    };
}

#[derive(Debug, Clone)]
pub struct Inbox {
    store: Storage,
    /// Requests waiting for their rows (group commit).
    queue: GroupQueue<(ReceivedRequest, oneshot::Sender<Written>)>,
    written: Arc<Mutex<InboxWrites>>,
}

/// At most this many requests' rows are written by one statement.
const ROWS_PER_WRITE: usize = 64;

/// Writes under way at once (see `Inbox::new`).
const WRITES_IN_FLIGHT: usize = 1;

/// What a waiting request is told: its row (if its batch failed as a whole, the writer stored
/// each row alone: one bad request must not refuse the others, and each gets its own error).
type Written = Result<StoredRequest, StoreError>;

/// How many rows the inbox stored, and in how many statements (commits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxWrites {
    pub statements: u64,
    pub rows: u64,
}

type EntryRow = (i64, String, Vec<u8>, String, Option<String>, Option<String>, Option<i32>);

const ENTRY_COLUMNS: &str = "id, provider, body, outcome, outcome_detail, credit_id, http_status";

impl Inbox {
    pub fn new(store: Storage) -> Self {
        // One write under way at a time, on either backend. On PostgreSQL that was twice as
        // slow while the rest of a notification's path went request by request, and two were
        // kept; since payment intake records whole groups too, one write costs the least CPU
        // per notification ("Whole notifications recorded together", docs/BENCHMARKS.md).
        Inbox { store, queue: GroupQueue::new(WRITES_IN_FLIGHT, ROWS_PER_WRITE), written: Arc::default() }
    }

    /// Stores the request and returns its id. Call before its credit is recorded. The same
    /// statement reads how many agency configurations the log holds: payment intake checks its
    /// agencies in memory against that count (`PaymentIntake::receive_resolving`), so a
    /// notification needs no round trip for it.
    ///
    /// Group commit: requests arriving while the rows of others are being written wait, and
    /// their rows are written together by the next statement, one commit for all (at most
    /// [`ROWS_PER_WRITE`]). The write runs as a task of its own, so a request given up by its
    /// sender does not cut short the others'.
    pub async fn record(&self, request: &ReceivedRequest) -> Result<StoredRequest, StoreError> {
        let (answer, answered) = oneshot::channel();
        if let Some((writer, batch)) = self.queue.push((request.clone(), answer)) {
            let inbox = self.clone();
            tokio::spawn(async move { writer.write_all(batch, |batch| inbox.write_batch(batch)).await });
        }
        answered.await.map_err(|_| StoreError::Schema("the inbox's writing task stopped before answering".into()))?
    }

    /// How many rows this inbox (and its clones) stored, and in how many statements.
    pub fn writes(&self) -> InboxWrites {
        *self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count_written(&self, rows: usize) {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        written.statements += 1;
        written.rows += u64::try_from(rows).unwrap_or(u64::MAX);
    }

    async fn write_batch(&self, batch: Vec<(ReceivedRequest, oneshot::Sender<Written>)>) {
        let (requests, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        if requests.len() > 1 {
            match self.record_many(&requests).await {
                Ok(stored) => {
                    self.count_written(stored.len());
                    for (answer, stored) in answers.into_iter().zip(stored) {
                        let _ = answer.send(Ok(stored));
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, rows = requests.len(), "storing bank notifications together failed; each is stored alone");
                }
            }
        }
        for (request, answer) in requests.iter().zip(answers) {
            let _ = answer.send(self.record_one(request).await);
        }
    }

    /// Stores several requests in one transaction; their rows in the order given.
    async fn record_many(&self, requests: &[ReceivedRequest]) -> Result<Vec<StoredRequest>, StoreError> {
        let context = "storing bank notifications";
        match &self.store {
            Storage::Postgres(store) => {
                // Rows inserted in the order given take increasing ids (one session's identity
                // values increase): the ids, sorted, are the requests' in order.
                const SQL: &str = "INSERT INTO bank_notifications \
                                   (provider, received_at, method, uri, headers, body, body_truncated) \
                                   SELECT provider, received_at, method, uri, headers::jsonb, body, body_truncated \
                                   FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], \
                                   $6::bytea[], $7::bool[]) WITH ORDINALITY \
                                   AS r(provider, received_at, method, uri, headers, body, body_truncated, n) \
                                   ORDER BY n \
                                   RETURNING id, (SELECT count(*) FROM events WHERE event_type = 'AgencyConfigured')";
                let column = |f: fn(&ReceivedRequest) -> &str| requests.iter().map(f).collect::<Vec<_>>();
                let mut rows: Vec<(i64, i64)> = sqlx::query_as(SQL)
                    .bind(column(|r| r.provider))
                    .bind(requests.iter().map(|r| r.received_at).collect::<Vec<_>>())
                    .bind(column(|r| &r.method))
                    .bind(column(|r| &r.uri))
                    .bind(requests.iter().map(|r| r.headers.to_string()).collect::<Vec<_>>())
                    .bind(requests.iter().map(|r| r.body.as_slice()).collect::<Vec<_>>())
                    .bind(requests.iter().map(|r| r.body_truncated).collect::<Vec<_>>())
                    .fetch_all(store.pool())
                    .await
                    .map_err(StoreError::db(context))?;
                if rows.len() != requests.len() {
                    return Err(StoreError::Schema(format!(
                        "storing {} bank notifications returned {} rows",
                        requests.len(),
                        rows.len()
                    )));
                }
                rows.sort_unstable();
                Ok(rows
                    .into_iter()
                    .map(|(id, agency_configurations)| StoredRequest { id, agency_configurations })
                    .collect())
            }
            Storage::Sqlite(store) => {
                let sql = super::dialect::Lite;
                let mut tx = sql.begin(store.writer()).await.map_err(StoreError::db(context))?;
                let mut stored = Vec::with_capacity(requests.len());
                for request in requests {
                    let (id, agency_configurations) =
                        record_query!(request, sql).fetch_one(&mut *tx).await.map_err(StoreError::db(context))?;
                    stored.push(StoredRequest { id, agency_configurations });
                }
                tx.commit().await.map_err(StoreError::db(context))?;
                Ok(stored)
            }
        }
    }

    /// Stores one request (one statement, one commit).
    async fn record_one(&self, request: &ReceivedRequest) -> Result<StoredRequest, StoreError> {
        let (id, agency_configurations) =
            on_writer!(&self.store, |pool, sql| record_query!(request, sql).fetch_one(pool).await)
                .map_err(StoreError::db("storing a bank notification"))?;
        self.count_written(1);
        Ok(StoredRequest { id, agency_configurations })
    }

    /// Records what became of request `id`; `http_status` is what the sender was answered
    /// (none for a request finished by the recovery: its connection was gone).
    pub async fn resolve(
        &self,
        id: i64,
        outcome: InboxOutcome,
        detail: Option<&str>,
        credit_id: Option<&str>,
        http_status: Option<u16>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_writer!(&self.store, |pool, sql| {
            sqlx::query(RESOLVE_SQL)
                .bind(outcome.as_str())
                .bind(detail)
                .bind(credit_id)
                .bind(http_status.map(i32::from))
                .bind(sql.time(at))
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(StoreError::db("recording a notification's outcome"))
    }

    /// Requests still `received` that arrived before `before`, oldest first, at most `limit`.
    pub async fn unfinished(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<UnfinishedRequest>, StoreError> {
        const SQL: &str = "SELECT id, provider, uri, headers, body, body_truncated, received_at FROM bank_notifications \
                           WHERE outcome = 'received' AND received_at < $1 ORDER BY received_at, id LIMIT $2";
        type Row = (i64, String, String, Json<Value>, Vec<u8>, bool, DateTime<Utc>);
        let rows: Vec<Row> = on_pool!(&self.store, |pool, sql| sqlx::query_as(SQL)
            .bind(sql.time(before))
            .bind(limit)
            .fetch_all(pool)
            .await)
        .map_err(StoreError::db("reading unfinished notifications"))?;
        Ok(rows
            .into_iter()
            .map(|(id, provider, uri, headers, body, body_truncated, received_at)| UnfinishedRequest {
                id,
                provider,
                uri,
                headers: headers.0,
                body,
                body_truncated,
                received_at,
            })
            .collect())
    }

    /// Whether another request than `except` carried credit `credit_id` and was handled: the
    /// money it names is recorded (or was refused for a reason of its own).
    pub async fn handled_elsewhere(&self, credit_id: &str, except: i64) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT EXISTS (SELECT 1 FROM bank_notifications WHERE credit_id = $1 AND id <> $2 \
                           AND outcome IN ('recorded', 'unmatched', 'duplicate'))";
        on_pool!(&self.store, |pool, sql| sqlx::query_scalar(SQL).bind(credit_id).bind(except).fetch_one(pool).await)
            .map_err(StoreError::db("looking for a handled retry of a notification"))
    }

    /// The newest requests of a provider (all providers when `None`), newest first.
    pub async fn recent(&self, provider: Option<&str>, limit: i64) -> Result<Vec<InboxEntry>, StoreError> {
        let rows: Vec<EntryRow> = on_pool!(&self.store, |pool, sql| {
            let query = format!(
                "SELECT {ENTRY_COLUMNS} FROM bank_notifications WHERE ({} IS NULL OR provider = $1) \
                 ORDER BY id DESC LIMIT $2",
                sql.text_param(1)
            );
            sqlx::query_as(&query).bind(provider).bind(limit).fetch_all(pool).await
        })
        .map_err(StoreError::db("reading the notification inbox"))?;
        Ok(rows
            .into_iter()
            .map(|(id, provider, body, outcome, outcome_detail, credit_id, http_status)| InboxEntry {
                id,
                provider,
                body,
                outcome,
                outcome_detail,
                credit_id,
                http_status,
            })
            .collect())
    }
}
