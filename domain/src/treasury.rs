//! The State Treasury (Kho bạc Nhà nước) side of collected money.
//!
//! Money collected for a fee line is split on the day it is collected, by the rule in force on
//! that day (a later correction of the rule changes the split after a rebuild, never the
//! citizen's bill): a **lệ phí** goes 100% to the state budget; a **phí** keeps its retention
//! share at the agency when the agency is allowed to retain, and the rest goes to the budget
//! (Law 97/2015/QH13, Decree 120/2016 as amended by Decree 82/2023). What is payable to the
//! budget is remitted in batches; many circulars set the 5th of the following month as the
//! deadline.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::codes::{AgencyCode, FeeCode};
use crate::fee_schedule::{FeeKind, FeeScheduleVersion};
use crate::money::{Percent, Split, Vnd};

/// The retained and budget parts of money collected for one fee line on one day.
pub fn split_collection(kind: FeeKind, collected: Vnd, agency_retains: bool, rule_retention: Percent) -> Split {
    let rate = match kind {
        FeeKind::Phi if agency_retains => rule_retention,
        _ => Percent::ZERO,
    };
    Split::of(collected, rate)
}

/// The retention rate the rule in force gives a fee code (zero when the code is not in it).
pub fn retention_in(rule: Option<&FeeScheduleVersion>, fee_code: &FeeCode) -> Percent {
    rule.and_then(|r| r.rule(fee_code)).map_or(Percent::ZERO, |f| f.retention_percent)
}

/// The last day to deposit money collected on `collected_on`: the 5th of the next month.
pub fn remittance_due(collected_on: NaiveDate) -> NaiveDate {
    let (year, month) = if collected_on.month() == 12 {
        (collected_on.year() + 1, 1)
    } else {
        (collected_on.year(), collected_on.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 5).unwrap_or(collected_on)
}

/// One row of the treasury report: a fee code over the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreasuryRow {
    pub fee_code: FeeCode,
    pub fee_name: String,
    pub kind: FeeKind,
    pub collected: Vnd,
    pub retained: Vnd,
    pub payable_to_budget: Vnd,
    pub remitted: Vnd,
    /// Payable and not yet remitted.
    pub outstanding: Vnd,
    /// Remitted beyond what is payable now (after a corrected rule lowered the budget's share).
    pub over_remitted: Vnd,
}

impl TreasuryRow {
    pub fn new(fee_code: FeeCode, fee_name: String, kind: FeeKind) -> Self {
        TreasuryRow {
            fee_code,
            fee_name,
            kind,
            collected: Vnd::ZERO,
            retained: Vnd::ZERO,
            payable_to_budget: Vnd::ZERO,
            remitted: Vnd::ZERO,
            outstanding: Vnd::ZERO,
            over_remitted: Vnd::ZERO,
        }
    }

    /// Adds one day's figures; keeps `outstanding` and `over_remitted` consistent.
    pub fn add(&mut self, collected: Vnd, retained: Vnd, payable: Vnd, remitted: Vnd) {
        let add = |a: Vnd, b: Vnd| a.checked_add(b).unwrap_or(a);
        self.collected = add(self.collected, collected);
        self.retained = add(self.retained, retained);
        self.payable_to_budget = add(self.payable_to_budget, payable);
        self.remitted = add(self.remitted, remitted);
        self.outstanding = self.payable_to_budget.excess_over(self.remitted);
        self.over_remitted = self.remitted.excess_over(self.payable_to_budget);
    }

    /// The total row: each column summed on its own (an over-remittance of one fee code is not
    /// netted against another code's outstanding money).
    pub fn total_of(rows: &[TreasuryRow], code: FeeCode, name: String) -> TreasuryRow {
        let sum = |f: fn(&TreasuryRow) -> Vnd| Vnd::sum(rows.iter().map(f)).unwrap_or(Vnd::ZERO);
        TreasuryRow {
            fee_code: code,
            fee_name: name,
            kind: FeeKind::LePhi,
            collected: sum(|r| r.collected),
            retained: sum(|r| r.retained),
            payable_to_budget: sum(|r| r.payable_to_budget),
            remitted: sum(|r| r.remitted),
            outstanding: sum(|r| r.outstanding),
            over_remitted: sum(|r| r.over_remitted),
        }
    }

    /// `collected = retained + payable`, to the đồng.
    pub fn balances(&self) -> bool {
        self.retained.checked_add(self.payable_to_budget).ok() == Some(self.collected)
    }
}

/// The oldest money still owed to the budget, against its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldestUnremitted {
    pub collected_on: NaiveDate,
    pub due_on: NaiveDate,
    /// Days past the deadline on the report date (0 when not yet due).
    pub overdue_days: i64,
    pub amount: Vnd,
}

/// A deposit to the treasury, as listed in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittanceSummary {
    pub remittance_id: uuid::Uuid,
    pub voucher_number: String,
    pub remitted_on: NaiveDate,
    pub up_to: NaiveDate,
    pub amount: Vnd,
    pub cases: u32,
}

/// The treasury report of an agency for a period of collection days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreasuryReport {
    pub agency_code: AgencyCode,
    pub agency_name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rows: Vec<TreasuryRow>,
    pub total: TreasuryRow,
    pub oldest_unremitted: Option<OldestUnremitted>,
    pub remittances: Vec<RemittanceSummary>,
}

impl TreasuryReport {
    /// Every row and the total balance, and the total is the sum of the rows.
    pub fn invariants_hold(&self) -> bool {
        let sum = |f: fn(&TreasuryRow) -> Vnd| Vnd::sum(self.rows.iter().map(f)).ok();
        self.rows.iter().all(TreasuryRow::balances)
            && self.total.balances()
            && sum(|r| r.collected) == Some(self.total.collected)
            && sum(|r| r.retained) == Some(self.total.retained)
            && sum(|r| r.payable_to_budget) == Some(self.total.payable_to_budget)
            && sum(|r| r.remitted) == Some(self.total.remitted)
            && sum(|r| r.outstanding) == Some(self.total.outstanding)
            && sum(|r| r.over_remitted) == Some(self.total.over_remitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_phi_goes_wholly_to_the_budget_and_phi_keeps_its_share_only_where_retention_is_allowed() {
        let ninety = Percent::parse("90").unwrap();
        let amount = Vnd::new(3001).unwrap();
        assert_eq!(split_collection(FeeKind::LePhi, amount, true, ninety).to_budget, amount);
        assert_eq!(split_collection(FeeKind::Phi, amount, false, ninety).to_budget, amount);
        let phi = split_collection(FeeKind::Phi, amount, true, ninety);
        assert_eq!((phi.retained.dong(), phi.to_budget.dong()), (2701, 300));
    }

    #[test]
    fn money_is_due_on_the_fifth_of_the_next_month() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(remittance_due(d(2026, 11, 22)), d(2026, 12, 5));
        assert_eq!(remittance_due(d(2026, 12, 31)), d(2027, 1, 5));
    }

    #[test]
    fn a_row_keeps_outstanding_and_over_remitted_consistent() {
        let v = |d| Vnd::new(d).unwrap();
        let mut row = TreasuryRow::new(FeeCode::parse("P-X").unwrap(), "x".into(), FeeKind::Phi);
        row.add(v(1000), v(900), v(100), v(0));
        assert_eq!((row.outstanding, row.over_remitted), (v(100), v(0)));
        row.add(v(0), v(0), v(0), v(150));
        assert_eq!((row.outstanding, row.over_remitted), (v(0), v(50)));
        assert!(row.balances());
    }
}
