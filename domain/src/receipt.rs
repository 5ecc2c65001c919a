//! Electronic receipts (biên lai điện tử) for collected phí and lệ phí.
//!
//! A receipt is issued once a case is paid in full. It is identified by its template symbol
//! (ký hiệu mẫu, e.g. `01BLP0-001`), its serial (ký hiệu, e.g. `AA-26E`) and a sequential number
//! that is **gapless** within one template and serial. The number comes from the series' own
//! stream (`receipt-series-<agency>-<template>-<serial>`): receipt N is that stream's event N, appended
//! in the same transaction as the case's ReceiptIssued, so two receipts can never share a number
//! and no number is ever skipped. A receipt is corrected only by cancelling it and issuing a new
//! one, which records the number it replaces.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case_fees::AssessedLine;
use crate::codes::{AgencyCode, CaseCode};
use crate::money::Vnd;

pub const DEFAULT_TEMPLATE_SYMBOL: &str = "01BLP0-001";

/// The serial of electronic receipts issued in a year: `AA-26E` for 2026.
pub fn default_serial(year: i32) -> String {
    format!("AA-{:02}E", year.rem_euclid(100))
}

/// The series stream of an agency's template and serial: each collecting organisation numbers
/// its own receipts, even when two use the same template symbol and serial.
pub fn series_stream(agency: &AgencyCode, template_symbol: &str, serial: &str) -> String {
    format!("receipt-series-{agency}-{template_symbol}-{serial}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptIssued {
    pub receipt_id: Uuid,
    pub agency_code: AgencyCode,
    pub template_symbol: String,
    pub serial: String,
    pub number: u32,
    pub payer_name: String,
    pub payer_masked_id: Option<String>,
    pub lines: Vec<AssessedLine>,
    pub amount: Vnd,
    pub amount_in_words: String,
    pub issued_at: DateTime<Utc>,
    /// The receipt this one replaces (after a cancellation).
    pub replaces: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCancelled {
    pub receipt_id: Uuid,
    pub reason: String,
    pub cancelled_at: DateTime<Utc>,
}

/// The event of a series stream: number N went to this receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptNumberAssigned {
    pub number: u32,
    pub receipt_id: Uuid,
    pub case_code: CaseCode,
    pub agency_code: AgencyCode,
    pub assigned_at: DateTime<Utc>,
}
