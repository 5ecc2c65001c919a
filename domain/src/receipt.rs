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

use crate::budget::TaxCode;
use crate::case_fees::AssessedLine;
use crate::codes::{AgencyCode, CaseCode};
use crate::money::Vnd;
use crate::procedure::ProcedureCode;

pub const DEFAULT_TEMPLATE_SYMBOL: &str = "01BLP0-001";

/// Receipt numbers have 7 digits today (Circular 78/2021/TT-BTC); an agency can configure
/// another width when the rules change (see docs/FINANCE.md).
pub const DEFAULT_NUMBER_WIDTH: u8 = 7;
/// The widths an agency may configure: a number must fit a `u32`.
pub const NUMBER_WIDTHS: std::ops::RangeInclusive<u8> = 1..=9;

/// The largest number a series of `width` digits can give: `9999999` for 7.
pub fn largest_number(width: u8) -> u32 {
    let width = u32::from(width.clamp(*NUMBER_WIDTHS.start(), *NUMBER_WIDTHS.end()));
    10u32.pow(width) - 1
}

/// The number after `used` numbers of a series, or an error once the width is exhausted: a
/// series never wraps around to 1 within its year.
pub fn next_number(used: i64, width: u8) -> Result<u32, ReceiptNumberError> {
    let largest = largest_number(width);
    match u32::try_from(used.saturating_add(1)) {
        Ok(next) if next >= 1 && next <= largest => Ok(next),
        _ => Err(ReceiptNumberError::Exhausted { largest, width }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptNumberError {
    #[error(
        "the receipt numbers of this template and serial are used up for the year (the last is {largest}, \
         {width} digits): configure a new serial or a wider number (receiptNumberWidth)"
    )]
    Exhausted { largest: u32, width: u8 },
}

/// A receipt number printed on its series' width: `12` → `0000012`.
pub fn format_number(number: u32, width: u8) -> String {
    format!("{number:0width$}", width = usize::from(width))
}

/// The serial of electronic receipts issued in a year: `AA-26E` for 2026.
pub fn default_serial(year: i32) -> String {
    format!("AA-{:02}E", year.rem_euclid(100))
}

/// The series stream of an agency's template and serial in one calendar year: each collecting
/// organisation numbers its own receipts, even when two use the same template symbol and
/// serial, and numbering starts again at 1 on 1 January (Vietnam's day).
pub fn series_stream(agency: &AgencyCode, template_symbol: &str, serial: &str, year: i32) -> String {
    format!("receipt-series-{agency}-{template_symbol}-{serial}-{year}")
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
    /// The collecting organisation's tax code (MST), as configured when the receipt was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<TaxCode>,
    /// The procedure code (mã TTHC) recorded at assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure_code: Option<ProcedureCode>,
    /// Set on a receipt for one payment (the agency issues a receipt per payment); its lines
    /// are what that payment paid of each fee line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    /// The width its number is printed on (absent: [`DEFAULT_NUMBER_WIDTH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_width: Option<u8>,
}

impl ReceiptIssued {
    /// The number as printed: `0000012`.
    pub fn printed_number(&self) -> String {
        format_number(self.number, self.number_width.unwrap_or(DEFAULT_NUMBER_WIDTH))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_run_from_one_to_the_largest_of_the_width_and_never_wrap() {
        assert_eq!(next_number(0, 7), Ok(1));
        assert_eq!(next_number(9_999_998, 7), Ok(9_999_999));
        assert!(matches!(next_number(9_999_999, 7), Err(ReceiptNumberError::Exhausted { largest: 9_999_999, .. })));
        assert_eq!(next_number(8, 1), Ok(9));
        assert!(next_number(9, 1).is_err());
        assert_eq!(format_number(12, 7), "0000012");
    }

    #[test]
    fn each_year_has_its_own_series() {
        let agency = AgencyCode::parse("H34.22.6").unwrap();
        assert_ne!(series_stream(&agency, "01BLP0-001", "AA", 2026), series_stream(&agency, "01BLP0-001", "AA", 2027));
    }
}

/// A calendar quarter, the period of the receipt-usage report (BC26): `2026-Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    pub year: i32,
    /// 1 to 4.
    pub number: u32,
}

impl Quarter {
    /// Reads `YYYY-Qn` (n from 1 to 4).
    pub fn parse(text: &str) -> Option<Quarter> {
        let (year, number) = text.trim().split_once("-Q")?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) || number.len() != 1 {
            return None;
        }
        let quarter = Quarter { year: year.parse().ok()?, number: number.parse().ok()? };
        (1..=4).contains(&quarter.number).then_some(quarter)
    }

    pub fn first_day(self) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(self.year, self.number * 3 - 2, 1).unwrap_or(chrono::NaiveDate::MIN)
    }

    pub fn last_day(self) -> chrono::NaiveDate {
        // Not money: a quarter at the end of chrono's calendar (year 262,143) ends with it.
        let next_month = self.first_day().checked_add_months(chrono::Months::new(3)).unwrap_or(chrono::NaiveDate::MAX);
        next_month.pred_opt().unwrap_or(next_month)
    }

    /// The report is due by the last day of the first month of the next quarter (Decree
    /// 123/2020/NĐ-CP, art. 38): 31 January for Q4.
    pub fn report_deadline(self) -> chrono::NaiveDate {
        // Not money: clamped to the end of chrono's calendar, as in `last_day`.
        let after_next_month =
            self.first_day().checked_add_months(chrono::Months::new(4)).unwrap_or(chrono::NaiveDate::MAX);
        after_next_month.pred_opt().unwrap_or(after_next_month)
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-Q{}", self.year, self.number)
    }
}

#[cfg(test)]
mod quarter_tests {
    use super::*;

    #[test]
    fn a_quarter_has_its_days_and_the_report_deadline_of_the_month_after() {
        let q4 = Quarter::parse("2026-Q4").unwrap();
        assert_eq!(q4.first_day().to_string(), "2026-10-01");
        assert_eq!(q4.last_day().to_string(), "2026-12-31");
        assert_eq!(q4.report_deadline().to_string(), "2027-01-31");
        assert_eq!(Quarter::parse("2026-Q1").unwrap().report_deadline().to_string(), "2026-04-30");
        assert_eq!(Quarter::parse("2026-Q2").unwrap().report_deadline().to_string(), "2026-07-31");
        for bad in ["2026-Q0", "2026-Q5", "2026Q1", "26-Q1", "2026-Q12", ""] {
            assert!(Quarter::parse(bad).is_none(), "{bad:?}");
        }
    }
}
