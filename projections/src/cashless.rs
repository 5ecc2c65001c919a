//! The cashless rate: of the cases paid in full in a month, how many were paid without cash,
//! and how many online (Bắc Giang's monthly statistics per agency against a target).
//!
//! Documents: `month/<agency>/<YYYY-MM>` (cases, cashless, online). FullyPaid says which
//! channels paid the case, so no per-case state is kept.

use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::{CASE_STREAM_PREFIX, LedgerEvent};
use feeledger_infrastructure::storage::LeanEvent;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::documents::DocumentStore;
use crate::runner::{Documents, Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct CashlessProjection;

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
    const VERSION: u32 = 2;

    const EVENT_TYPES: &'static [&'static str] = &["FullyPaid"];

    async fn apply(&self, docs: &mut Documents, event: &LeanEvent) -> Result<(), ProjectionError> {
        let Some(code) = event.stream_id.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok()) else {
            return Ok(());
        };
        let LedgerEvent::Case(CaseEvent::FullyPaid(paid)) = &LedgerEvent::decode_lean(event)? else { return Ok(()) };
        let month = vietnam_time::date_of(paid.paid_at).format("%Y-%m");
        let cashless = paid.channels.iter().all(|c| c.is_cashless());
        let online = paid.channels.iter().all(|c| c.is_online());
        docs.update(&format!("month/{}/{month}", code.agency()), MonthCounts::default, |counts| {
            counts.cases += 1;
            counts.cashless += u32::from(cashless);
            counts.online += u32::from(online);
        })
        .await
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

/// The counts of every `(agency, month)` asked, in one read (absent: no case paid).
pub async fn months(
    docs: &DocumentStore,
    wanted: &[(AgencyCode, String)],
) -> Result<std::collections::HashMap<(AgencyCode, String), MonthCounts>, ProjectionError> {
    let mut found = std::collections::HashMap::new();
    let Some(state) = docs.state(CashlessProjection::NAME).await? else { return Ok(found) };
    let keys: Vec<String> = wanted.iter().map(|(agency, month)| format!("month/{agency}/{month}")).collect();
    let mut loaded = std::collections::HashMap::new();
    // Bounded batches keep each statement's parameter small.
    for chunk in keys.chunks(500) {
        loaded.extend(docs.load(CashlessProjection::NAME, state.active, chunk).await?);
    }
    for ((agency, month), key) in wanted.iter().zip(keys) {
        let counts = match loaded.remove(&key) {
            None => MonthCounts::default(),
            Some(value) => serde_json::from_value(value).map_err(|e| ProjectionError::Document {
                projection: CashlessProjection::NAME,
                key,
                reason: e.to_string(),
            })?,
        };
        found.insert((agency.clone(), month.clone()), counts);
    }
    Ok(found)
}
