//! The fee declarations an agency files with its tax office (Decree 126/2020/NĐ-CP art. 8;
//! forms of Circular 80/2021/TT-BTC):
//!
//! - **01/PHLP**, monthly: per fee and budget sub-item, what was collected, the retention
//!   rate, what the agency retained and what is payable to the state budget;
//! - **02/PHLP**, the yearly settlement (quyết toán) of **phí** only (lệ phí is not retained,
//!   so nothing is settled): the same columns over a calendar year.
//!
//! Each row says which cases and which events it sums, so any figure can be traced back to
//! the payments behind it.

use serde::{Deserialize, Serialize};

use crate::budget::BudgetSubItem;
use crate::codes::{AgencyCode, CaseCode, FeeCode};
use crate::fee_schedule::FeeKind;
use crate::money::{MoneyError, Percent, Vnd};

/// What a declaration covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeclarationPeriod {
    /// 01/PHLP: one month.
    Month { year: i32, month: u32 },
    /// 02/PHLP: one calendar year, phí only.
    Year { year: i32 },
}

impl DeclarationPeriod {
    /// `10/2026` or `2026`, as the form's "kỳ tính phí" is written.
    pub fn label(self) -> String {
        match self {
            DeclarationPeriod::Month { year, month } => format!("{month:02}/{year}"),
            DeclarationPeriod::Year { year } => year.to_string(),
        }
    }

    /// Whether a fee of this kind belongs on the form (02/PHLP settles phí only).
    pub fn includes(self, kind: FeeKind) -> bool {
        match self {
            DeclarationPeriod::Month { .. } => true,
            DeclarationPeriod::Year { .. } => kind == FeeKind::Phi,
        }
    }
}

/// Where a row's money comes from: a payment event of a case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceEvent {
    pub position: i64,
    pub case_code: CaseCode,
}

/// One row of a declaration: a fee at one sub-item and one effective retention rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclarationRow {
    pub fee_code: FeeCode,
    pub fee_name: String,
    pub kind: FeeKind,
    /// `None`: the fee rule names no sub-item (the form then says "not configured").
    pub budget_sub_item: Option<BudgetSubItem>,
    /// The share the agency keeps (zero for lệ phí, or when the agency may not retain).
    pub retention_percent: Percent,
    pub collected: Vnd,
    pub retained: Vnd,
    pub payable_to_budget: Vnd,
    /// The payment events summed here, in log order.
    pub sources: Vec<SourceEvent>,
}

impl DeclarationRow {
    pub fn new(
        fee_code: FeeCode,
        fee_name: String,
        kind: FeeKind,
        budget_sub_item: Option<BudgetSubItem>,
        retention_percent: Percent,
    ) -> Self {
        DeclarationRow {
            fee_code,
            fee_name,
            kind,
            budget_sub_item,
            retention_percent,
            collected: Vnd::ZERO,
            retained: Vnd::ZERO,
            payable_to_budget: Vnd::ZERO,
            sources: Vec::new(),
        }
    }

    /// Adds one day's money of the fee; an overflow is an error.
    pub fn add(
        &mut self,
        collected: Vnd,
        retained: Vnd,
        payable: Vnd,
        sources: impl IntoIterator<Item = SourceEvent>,
    ) -> Result<(), MoneyError> {
        self.collected = self.collected.checked_add(collected)?;
        self.retained = self.retained.checked_add(retained)?;
        self.payable_to_budget = self.payable_to_budget.checked_add(payable)?;
        self.sources.extend(sources);
        Ok(())
    }

    /// The distinct cases behind the row.
    pub fn case_codes(&self) -> Vec<CaseCode> {
        let mut codes: Vec<CaseCode> = self.sources.iter().map(|s| s.case_code.clone()).collect();
        codes.sort();
        codes.dedup();
        codes
    }

    /// `collected = retained + payable`, to the đồng.
    pub fn balances(&self) -> bool {
        self.retained.checked_add(self.payable_to_budget).ok() == Some(self.collected)
    }
}

/// A declaration (01/PHLP or 02/PHLP) of one agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeDeclaration {
    pub agency_code: AgencyCode,
    pub agency_name: String,
    pub period: DeclarationPeriod,
    pub rows: Vec<DeclarationRow>,
    pub collected: Vnd,
    pub retained: Vnd,
    pub payable_to_budget: Vnd,
}

impl FeeDeclaration {
    /// The declaration of `rows`, with its totals (checked sums).
    pub fn new(
        agency_code: AgencyCode,
        agency_name: String,
        period: DeclarationPeriod,
        rows: Vec<DeclarationRow>,
    ) -> Result<Self, MoneyError> {
        let rows: Vec<DeclarationRow> = rows.into_iter().filter(|r| period.includes(r.kind)).collect();
        Ok(FeeDeclaration {
            collected: Vnd::sum(rows.iter().map(|r| r.collected))?,
            retained: Vnd::sum(rows.iter().map(|r| r.retained))?,
            payable_to_budget: Vnd::sum(rows.iter().map(|r| r.payable_to_budget))?,
            agency_code,
            agency_name,
            period,
            rows,
        })
    }

    /// Every row balances and the totals are the sums of the rows.
    pub fn invariants_hold(&self) -> bool {
        let sum = |f: fn(&DeclarationRow) -> Vnd| Vnd::sum(self.rows.iter().map(f)).ok();
        self.rows.iter().all(DeclarationRow::balances)
            && sum(|r| r.collected) == Some(self.collected)
            && sum(|r| r.retained) == Some(self.retained)
            && sum(|r| r.payable_to_budget) == Some(self.payable_to_budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(d: i64) -> Vnd {
        Vnd::new(d).unwrap()
    }

    fn row(code: &str, kind: FeeKind, collected: i64, retained: i64) -> DeclarationRow {
        let mut row = DeclarationRow::new(
            FeeCode::parse(code).unwrap(),
            code.into(),
            kind,
            None,
            Percent::parse(if retained > 0 { "90" } else { "0" }).unwrap(),
        );
        let source = SourceEvent { position: 7, case_code: CaseCode::parse("H34.22.6-261020-0001").unwrap() };
        row.add(v(collected), v(retained), v(collected - retained), [source.clone(), source]).unwrap();
        row
    }

    #[test]
    fn a_monthly_declaration_totals_its_rows_and_a_yearly_one_settles_phi_only() {
        let rows = vec![row("P-SAOY", FeeKind::Phi, 4_000, 3_600), row("LP-HOTICH", FeeKind::LePhi, 25_000, 0)];
        let agency = AgencyCode::parse("H34.22.6").unwrap();
        let month = FeeDeclaration::new(
            agency.clone(),
            "x".into(),
            DeclarationPeriod::Month { year: 2026, month: 10 },
            rows.clone(),
        )
        .unwrap();
        assert!(month.invariants_hold());
        assert_eq!((month.collected.dong(), month.payable_to_budget.dong()), (29_000, 25_400));
        let year = FeeDeclaration::new(agency, "x".into(), DeclarationPeriod::Year { year: 2026 }, rows).unwrap();
        assert_eq!(year.rows.len(), 1);
        assert_eq!(year.payable_to_budget.dong(), 400);
        assert_eq!(year.rows[0].case_codes().len(), 1, "a case paying twice is listed once");
    }
}
