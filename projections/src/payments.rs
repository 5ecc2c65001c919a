//! The ledger side of reconciliation: every payment by agency and Vietnamese day, and which
//! statement line it was reconciled with.
//!
//! Documents, one per event applied (a rebuild writes one row per event, and reads none):
//! - `pay/<agency>/<YYYY-MM-DD>/<payment id>`: the payment as received, without what its key
//!   says (its day and id: a rebuild inserts a row per payment, and smaller rows are cheaper);
//! - `rec/<payment id>`: the statement line it was reconciled with, read beside the payment by
//!   [`payments_between`] (the reconciliation event does not carry the day the payment was
//!   received, so it cannot name the payment's own document without reading an index of them).

use chrono::{Duration, NaiveDate};
use feeledger_domain::case_fees::{CaseEvent, PaymentChannel};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::money::Vnd;
use feeledger_domain::reconciliation::LedgerPayment;
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::{CASE_STREAM_PREFIX, LedgerEvent};
use feeledger_infrastructure::storage::LeanEvent;
use serde::{Deserialize, Serialize};

use crate::documents::DocumentStore;
use crate::runner::{Documents, Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentsProjection;

impl Projection for PaymentsProjection {
    const NAME: &'static str = "payments";
    const VERSION: u32 = 3;

    const EVENT_TYPES: &'static [&'static str] = &["PaymentReceived", "Reconciled"];

    async fn apply(
        &self,
        docs: &mut Documents,
        event: &LeanEvent,
        decoded: &LedgerEvent,
    ) -> Result<(), ProjectionError> {
        let Some(code) = event.stream_id.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok()) else {
            return Ok(());
        };
        match decoded {
            LedgerEvent::Case(CaseEvent::PaymentReceived(payment)) => {
                let received_on = vietnam_time::date_of(payment.received_at);
                let key = format!("pay/{}/{received_on}/{}", code.agency(), payment.payment_id);
                let doc = StoredPayment {
                    case_code: code,
                    amount: payment.amount,
                    channel: payment.channel,
                    reference: payment.reference.clone(),
                    bank_reference: payment.bank_reference.clone(),
                };
                docs.put(&key, doc)
            }
            LedgerEvent::Case(CaseEvent::Reconciled(reconciled)) => {
                docs.put(&reconciled_key(reconciled.payment_id), reconciled.statement_line_id.clone())
            }
            _ => Ok(()),
        }
    }
}

/// A payment's document: what its key (`pay/<agency>/<day>/<payment id>`) does not say.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPayment {
    case_code: CaseCode,
    amount: Vnd,
    channel: PaymentChannel,
    reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bank_reference: Option<String>,
}

fn reconciled_key(payment_id: impl std::fmt::Display) -> String {
    format!("rec/{payment_id}")
}

/// The payments of an agency received from `from` to `to` (inclusive), each with the statement
/// line it was reconciled with, if any.
pub async fn payments_between(
    docs: &DocumentStore,
    agency: &AgencyCode,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<LedgerPayment>, ProjectionError> {
    // A payment's key ends with its id.
    let marks_of = |rows: &[(String, serde_json::Value)]| {
        rows.iter().filter_map(|(key, _)| key.rsplit('/').next()).map(reconciled_key).collect()
    };
    let (rows, mut marks) = docs
        .range_with_related(
            PaymentsProjection::NAME,
            &format!("pay/{agency}/{from}"),
            &format!("pay/{agency}/{to}~"),
            marks_of,
        )
        .await?;
    let unreadable = |key: String, e: serde_json::Error| ProjectionError::Document {
        projection: PaymentsProjection::NAME,
        key,
        reason: e.to_string(),
    };
    rows.into_iter()
        .map(|(key, value)| {
            // `pay/<agency>/<day>/<payment id>`
            let mut parts = key.rsplit('/');
            let (id, day) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            let (payment_id, received_on) = match (id.parse(), day.parse()) {
                (Ok(id), Ok(day)) => (id, day),
                _ => {
                    return Err(ProjectionError::Document {
                        projection: PaymentsProjection::NAME,
                        reason: "the key does not end with a day and a payment id".into(),
                        key,
                    });
                }
            };
            let stored: StoredPayment = serde_json::from_value(value).map_err(|e| unreadable(key.clone(), e))?;
            let mark = reconciled_key(payment_id);
            let reconciled_line_id = match marks.remove(&mark) {
                Some(line) => Some(serde_json::from_value(line).map_err(|e| unreadable(mark, e))?),
                None => None,
            };
            Ok(LedgerPayment {
                payment_id,
                case_code: stored.case_code,
                amount: stored.amount,
                channel: stored.channel,
                received_on,
                reference: stored.reference,
                bank_reference: stored.bank_reference,
                reconciled_line_id,
            })
        })
        .collect()
}

/// A day and its neighbours, the date window of reconciliation.
pub fn window(date: NaiveDate) -> (NaiveDate, NaiveDate) {
    let days = Duration::days(feeledger_domain::reconciliation::DATE_WINDOW_DAYS);
    (date - days, date + days)
}
