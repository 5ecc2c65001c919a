//! The cashless rate: of the cases paid in full in a month, how many were paid without cash,
//! and how many online (Bắc Giang's monthly statistics per agency against a target).
//!
//! Documents: `case/<case>` (the channels used so far, dropped once the case is paid in full)
//! and `month/<agency>/<YYYY-MM>` (cases, cashless, online).

use std::collections::BTreeSet;

use feeledger_domain::case_fees::{CaseEvent, PaymentChannel};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::{CASE_STREAM_PREFIX, LedgerEvent};
use feeledger_infrastructure::event_store::RecordedEvent;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::documents::DocumentStore;
use crate::runner::{Documents, Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct CashlessProjection;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CaseChannels {
    channels: BTreeSet<PaymentChannel>,
}

/// A month's figures for an agency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthCounts {
    /// Cases paid in full during the month.
    pub cases: u32,
    /// ... without any cash.
    pub cashless: u32,
    /// ... entirely online (bank transfer, e-wallet, the portal's payment platform).
    pub online: u32,
}

impl MonthCounts {
    /// `part / cases` in percent with two decimals, half away from zero ("66.67"); 0 for no cases.
    pub fn percent(part: u32, cases: u32) -> Decimal {
        if cases == 0 {
            return Decimal::ZERO;
        }
        (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(cases))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    }
}

impl Projection for CashlessProjection {
    const NAME: &'static str = "cashless";
    const VERSION: u32 = 1;

    fn wants(event_type: &str) -> bool {
        matches!(event_type, "PaymentReceived" | "FullyPaid")
    }

    async fn apply(
        &self,
        docs: &mut Documents,
        event: &RecordedEvent,
        decoded: &LedgerEvent,
    ) -> Result<(), ProjectionError> {
        let Some(code) = event.stream_id.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok()) else {
            return Ok(());
        };
        let case_key = format!("case/{code}");
        match decoded {
            LedgerEvent::Case(CaseEvent::PaymentReceived(payment)) => {
                let mut case: CaseChannels = docs.get(&case_key).await?.unwrap_or_default();
                case.channels.insert(payment.channel);
                docs.put(&case_key, &case)
            }
            LedgerEvent::Case(CaseEvent::FullyPaid(paid)) => {
                let case: CaseChannels = docs.get(&case_key).await?.unwrap_or_default();
                let month = vietnam_time::date_of(paid.paid_at).format("%Y-%m");
                let month_key = format!("month/{}/{month}", code.agency());
                let mut counts: MonthCounts = docs.get(&month_key).await?.unwrap_or_default();
                counts.cases += 1;
                if case.channels.iter().all(|c| c.is_cashless()) {
                    counts.cashless += 1;
                }
                if case.channels.iter().all(|c| c.is_online()) {
                    counts.online += 1;
                }
                docs.put(&month_key, &counts)?;
                // Later payments (overpayments) do not change how the case was paid.
                docs.delete(&case_key);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The counts of `agency` for `month` ("YYYY-MM").
pub async fn month(docs: &DocumentStore, agency: &AgencyCode, month: &str) -> Result<MonthCounts, ProjectionError> {
    let key = format!("month/{agency}/{month}");
    match docs.get(CashlessProjection::NAME, &key).await? {
        None => Ok(MonthCounts::default()),
        Some(value) => serde_json::from_value(value).map_err(|e| ProjectionError::Document {
            projection: CashlessProjection::NAME,
            key,
            reason: e.to_string(),
        }),
    }
}
