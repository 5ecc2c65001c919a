//! The receipts register: every receipt issued and cancelled, by agency and day, for the
//! receipt usage report the tax authority asks for (template, serial, numbers used, cancelled,
//! total).
//!
//! Documents: `receipt/<agency>/<YYYY-MM-DD>/<template>/<serial>/<number>` and
//! `id/<receipt id>` → that key.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::money::Vnd;
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::{CASE_STREAM_PREFIX, LedgerEvent};
use feeledger_infrastructure::storage::LeanEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::documents::DocumentStore;
use crate::runner::{Documents, Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiptsProjection;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredReceipt {
    pub receipt_id: Uuid,
    pub case_code: CaseCode,
    pub template_symbol: String,
    pub serial: String,
    pub number: u32,
    pub amount: Vnd,
    pub issued_on: NaiveDate,
    pub cancelled: bool,
}

/// The usage of one template and serial over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptUsage {
    pub template_symbol: String,
    pub serial: String,
    pub first_number: u32,
    pub last_number: u32,
    pub used: u32,
    pub cancelled: u32,
    /// Of the receipts in force (not cancelled).
    pub total: Vnd,
}

impl Projection for ReceiptsProjection {
    const NAME: &'static str = "receipts";
    const VERSION: u32 = 1;

    const EVENT_TYPES: &'static [&'static str] = &["ReceiptIssued", "ReceiptCancelled"];

    async fn apply(&self, docs: &mut Documents, event: &LeanEvent) -> Result<(), ProjectionError> {
        match &LedgerEvent::decode_lean(event)? {
            LedgerEvent::Case(CaseEvent::ReceiptIssued(issued)) => {
                let Some(case_code) =
                    event.stream_id.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok())
                else {
                    return Ok(());
                };
                let issued_on = vietnam_time::date_of(issued.issued_at);
                let key = format!(
                    "receipt/{}/{issued_on}/{}/{}/{:07}",
                    issued.agency_code, issued.template_symbol, issued.serial, issued.number
                );
                let doc = RegisteredReceipt {
                    receipt_id: issued.receipt_id,
                    case_code,
                    template_symbol: issued.template_symbol.clone(),
                    serial: issued.serial.clone(),
                    number: issued.number,
                    amount: issued.amount,
                    issued_on,
                    cancelled: false,
                };
                docs.put(&key, doc)?;
                docs.put(&format!("id/{}", issued.receipt_id), key)
            }
            LedgerEvent::Case(CaseEvent::ReceiptCancelled(cancelled)) => {
                let Some(key) = docs.get::<String>(&format!("id/{}", cancelled.receipt_id)).await? else {
                    return Ok(());
                };
                if let Some(mut receipt) = docs.get::<RegisteredReceipt>(&key).await? {
                    receipt.cancelled = true;
                    docs.put(&key, receipt)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Receipt usage of `agency` for receipts issued from `from` to `to` (inclusive).
pub async fn usage(
    docs: &DocumentStore,
    agency: &AgencyCode,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<ReceiptUsage>, ProjectionError> {
    let rows = docs
        .range(ReceiptsProjection::NAME, &format!("receipt/{agency}/{from}"), &format!("receipt/{agency}/{to}~"))
        .await?;
    let mut per_series: BTreeMap<(String, String), ReceiptUsage> = BTreeMap::new();
    for (key, value) in rows {
        let receipt: RegisteredReceipt = serde_json::from_value(value).map_err(|e| ProjectionError::Document {
            projection: ReceiptsProjection::NAME,
            key,
            reason: e.to_string(),
        })?;
        let usage =
            per_series.entry((receipt.template_symbol.clone(), receipt.serial.clone())).or_insert(ReceiptUsage {
                template_symbol: receipt.template_symbol.clone(),
                serial: receipt.serial.clone(),
                first_number: receipt.number,
                last_number: receipt.number,
                used: 0,
                cancelled: 0,
                total: Vnd::ZERO,
            });
        usage.first_number = usage.first_number.min(receipt.number);
        usage.last_number = usage.last_number.max(receipt.number);
        usage.used += 1;
        if receipt.cancelled {
            usage.cancelled += 1;
        } else {
            usage.total = usage.total.checked_add(receipt.amount).map_err(|e| ProjectionError::Document {
                projection: ReceiptsProjection::NAME,
                key: format!("usage/{}/{}", usage.template_symbol, usage.serial),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(per_series.into_values().collect())
}
