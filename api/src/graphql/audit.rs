//! The auditor's view of the whole log: every event, in the order readers apply them, with its
//! chain hash and the daily seals, so a copy can be verified offline
//! (`feeledger audit verify --file`).

use async_graphql::{Context, Json, Object, SimpleObject};
use feeledger_infrastructure::audit;
use feeledger_infrastructure::storage::{Checkpoint, RecordedEvent};
use serde_json::Value;

use super::errors::{ApiError, ApiResult};
use super::principal;
use super::scalars::DateTimeScalar;
use crate::auth::{Action, Scope};

const PAGE_DEFAULT: i32 = 500;
const PAGE_MAX: i32 = 5_000;

/// One stored event exactly as kept, personal data included (auditors only).
#[derive(SimpleObject)]
#[graphql(name = "AuditEvent")]
pub struct AuditEventView {
    /// Global position, as a string (a 64-bit number).
    position: String,
    stream_id: String,
    stream_version: i32,
    event_id: String,
    #[graphql(name = "type")]
    event_type: String,
    schema_version: i32,
    recorded_at: DateTimeScalar,
    data: Json<Value>,
    metadata: Json<Value>,
    /// SHA-256 chain hash, hex.
    hash: String,
    /// The event as one line of `feeledger export events`: concatenate the lines of every page
    /// into a file and `feeledger audit verify --file` checks it offline.
    export_line: String,
}

impl AuditEventView {
    fn new(event: &RecordedEvent) -> ApiResult<Self> {
        Ok(AuditEventView {
            position: event.position.to_string(),
            stream_id: event.stream_id.clone(),
            stream_version: i32::try_from(event.stream_version).unwrap_or(i32::MAX),
            event_id: event.event_id.to_string(),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            recorded_at: DateTimeScalar(event.recorded_at),
            data: Json(event.payload.clone()),
            metadata: Json(event.metadata.clone()),
            hash: hex::encode(&event.hash),
            export_line: serde_json::to_string(event).map_err(|_| ApiError::Internal)?,
        })
    }
}

#[derive(SimpleObject)]
#[graphql(name = "AuditEventPage")]
pub struct AuditEventPage {
    events: Vec<AuditEventView>,
    /// Pass as `after` for the next page; unchanged when there is nothing new yet.
    end_cursor: String,
    /// Whether more events were already readable when this page was cut.
    has_more: bool,
}

/// A daily digest, to publish or compare with a published copy.
#[derive(SimpleObject)]
#[graphql(name = "DailyDigest")]
pub struct DailyDigestView {
    date: String,
    events: i64,
    first_position: String,
    last_position: String,
    previous_digest: String,
    digest: String,
}

#[derive(Default, Debug)]
pub struct AuditQueries;

#[Object]
impl AuditQueries {
    /// Every event of the log in commit-safe order (the order every reader applies them; paging
    /// on never skips or repeats one). For auditors not scoped to an agency: only the whole log
    /// can be verified.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> ApiResult<AuditEventPage> {
        let principal = principal(ctx)?;
        if !principal.may(Action::ReadEventLog, Scope::Unattributed) {
            return Err(ApiError::Forbidden("the event log is for auditors not scoped to an agency".into()));
        }
        let first = first.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&first) {
            return Err(ApiError::Validation(format!("first must be between 1 and {PAGE_MAX}")));
        }
        let after = match after.as_deref() {
            None | Some("") => Checkpoint::START,
            Some(text) => {
                text.parse::<Checkpoint>().map_err(|_| ApiError::Validation(format!("bad cursor {text:?}")))?
            }
        };
        let limit = usize::try_from(first).unwrap_or(1);
        let events = super::ledger(ctx).store().for_reads().await.read_all(after, limit).await?;
        let end = events.last().map_or(after, RecordedEvent::checkpoint);
        Ok(AuditEventPage {
            has_more: events.len() == limit,
            end_cursor: end.to_string(),
            events: events.iter().map(AuditEventView::new).collect::<ApiResult<_>>()?,
        })
    }

    /// The daily digests sealed so far, oldest first (finance and auditors).
    async fn daily_digests(&self, ctx: &Context<'_>) -> ApiResult<Vec<DailyDigestView>> {
        let principal = principal(ctx)?;
        if !principal.may(Action::ReadOperations, Scope::Unattributed) {
            return Err(ApiError::forbidden());
        }
        let seals = audit::seals(super::ledger(ctx).store()).await.map_err(|e| match e {
            audit::AuditError::Store(store) => store.into(),
            audit::AuditError::Format(_) => ApiError::Internal,
        })?;
        Ok(seals
            .into_iter()
            .map(|s| DailyDigestView {
                date: s.date.to_string(),
                events: i64::try_from(s.events).unwrap_or(i64::MAX),
                first_position: s.first_position.to_string(),
                last_position: s.last_position.to_string(),
                previous_digest: s.previous_digest,
                digest: s.digest,
            })
            .collect())
    }
}
