//! Expires payment QRs when their time is up, by appending QrExpired through the ledger, so the
//! screens turn to "expired" and reports know the QR can no longer be paid. A payment that
//! arrives after expiry is still recorded (the decider accepts it); expiry only stops showing
//! the QR.
//!
//! Every node may run this: expiring an already expired, superseded or paid QR decides nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use feeledger_domain::case_fees::{Command, ExpireQr, QrIssued};
use feeledger_domain::codes::CaseCode;
use feeledger_infrastructure::codec::{self, CASE_STREAM_PREFIX};
use feeledger_infrastructure::ledger::Ledger;
use feeledger_infrastructure::live_feed::LiveFeed;
use feeledger_infrastructure::storage::{EventMetadata, RecordedEvent};
use feeledger_infrastructure::tasks::Tasks;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::clock::Clock;

/// QRs that expired longer ago than this when the service starts are not looked for (they were
/// expired by the previous run, or belong to cases long since handled).
const LOOKBACK_HOURS: i64 = 24;

type Due = Reverse<(DateTime<Utc>, String, Uuid)>;

pub fn start(ledger: Ledger, live: &LiveFeed, clock: Clock, tasks: &Tasks) {
    let events = live.subscribe();
    tasks.spawn("qr_expiry", run(ledger, events, clock));
}

fn due_of(event: &RecordedEvent) -> Option<Due> {
    if event.event_type != "QrIssued" {
        return None;
    }
    let qr: QrIssued = codec::decode_as(event).ok()?;
    Some(Reverse((qr.expires_at, event.stream_id.clone(), qr.qr_id)))
}

async fn recent(ledger: &Ledger, clock: &Clock) -> BinaryHeap<Due> {
    match ledger.store().qrs_expiring_since(clock.now() - Duration::hours(LOOKBACK_HOURS)).await {
        Ok(events) => events.iter().filter_map(due_of).collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot read recent QRs; only new ones will be expired");
            BinaryHeap::new()
        }
    }
}

async fn run(ledger: Ledger, mut events: broadcast::Receiver<Arc<RecordedEvent>>, clock: Clock) {
    let mut due = recent(&ledger, &clock).await;
    let metadata = EventMetadata { actor: Some("system:qr-expiry".into()), ..EventMetadata::default() };
    loop {
        let wait = due.peek().map(|Reverse((at, _, _))| (*at - clock.now()).to_std().unwrap_or_default());
        let sleep = async {
            match wait {
                Some(duration) => tokio::time::sleep(duration).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => due.extend(due_of(&event)),
                Err(broadcast::error::RecvError::Lagged(_)) => due = recent(&ledger, &clock).await,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = sleep => {
                let now = clock.now();
                while due.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
                    let Some(Reverse((_, stream, qr_id))) = due.pop() else { break };
                    let Some(code) = stream.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok()) else {
                        continue;
                    };
                    let command = Command::ExpireQr(ExpireQr { qr_id, now });
                    if let Err(error) = ledger.execute(&code, command, &metadata, None).await {
                        tracing::warn!(%error, case.code = %code, qr.id = %qr_id, "could not expire a QR");
                    }
                }
            }
        }
    }
}
