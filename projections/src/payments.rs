//! The ledger side of reconciliation: every payment by agency and Vietnamese day, and which
//! statement line it was reconciled with.
//!
//! Documents, one per event applied (a rebuild writes one row per event, and reads none):
//! - `pay/<agency>/<YYYY-MM-DD>/<payment id>`: a `LedgerPayment` as received (not reconciled);
//! - `rec/<payment id>`: the statement line it was reconciled with, read beside the payment by
//!   [`payments_between`] (the reconciliation event does not carry the day the payment was
//!   received, so it cannot name the payment's own document without reading an index of them).

use chrono::{Duration, NaiveDate};
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::reconciliation::LedgerPayment;
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::{CASE_STREAM_PREFIX, LedgerEvent};
use feeledger_infrastructure::storage::LeanEvent;

use crate::documents::DocumentStore;
use crate::runner::{Documents, Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentsProjection;

impl Projection for PaymentsProjection {
    const NAME: &'static str = "payments";
    const VERSION: u32 = 2;

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
                let doc = LedgerPayment {
                    payment_id: payment.payment_id,
                    case_code: code,
                    amount: payment.amount,
                    channel: payment.channel,
                    received_on,
                    reference: payment.reference.clone(),
                    bank_reference: payment.bank_reference.clone(),
                    reconciled_line_id: None,
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
            let mut payment: LedgerPayment = serde_json::from_value(value).map_err(|e| unreadable(key, e))?;
            let mark = reconciled_key(payment.payment_id);
            if let Some(line) = marks.remove(&mark) {
                payment.reconciled_line_id = Some(serde_json::from_value(line).map_err(|e| unreadable(mark, e))?);
            }
            Ok(payment)
        })
        .collect()
}

/// A day and its neighbours, the date window of reconciliation.
pub fn window(date: NaiveDate) -> (NaiveDate, NaiveDate) {
    let days = Duration::days(feeledger_domain::reconciliation::DATE_WINDOW_DAYS);
    (date - days, date + days)
}
