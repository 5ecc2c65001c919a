//! The ledger side of reconciliation: every payment by agency and Vietnamese day, and which
//! statement line it was reconciled with.
//!
//! Documents: `pay/<agency>/<YYYY-MM-DD>/<payment id>` (a `LedgerPayment`) and
//! `payment/<payment id>` → the key of that document (to mark it reconciled).

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
    const VERSION: u32 = 1;

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
                docs.put(&key, doc)?;
                docs.put(&format!("payment/{}", payment.payment_id), key)
            }
            LedgerEvent::Case(CaseEvent::Reconciled(reconciled)) => {
                let Some(key) = docs.get::<String>(&format!("payment/{}", reconciled.payment_id)).await? else {
                    return Ok(());
                };
                if let Some(mut payment) = docs.get::<LedgerPayment>(&key).await? {
                    payment.reconciled_line_id = Some(reconciled.statement_line_id.clone());
                    docs.put(&key, payment)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The payments of an agency received from `from` to `to` (inclusive).
pub async fn payments_between(
    docs: &DocumentStore,
    agency: &AgencyCode,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<LedgerPayment>, ProjectionError> {
    let rows =
        docs.range(PaymentsProjection::NAME, &format!("pay/{agency}/{from}"), &format!("pay/{agency}/{to}~")).await?;
    rows.into_iter()
        .map(|(key, value)| {
            serde_json::from_value(value).map_err(|e| ProjectionError::Document {
                projection: PaymentsProjection::NAME,
                key,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// A day and its neighbours, the date window of reconciliation.
pub fn window(date: NaiveDate) -> (NaiveDate, NaiveDate) {
    let days = Duration::days(feeledger_domain::reconciliation::DATE_WINDOW_DAYS);
    (date - days, date + days)
}
