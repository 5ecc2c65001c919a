//! The deposit voucher of a remittance, laid out like the State Treasury's "giấy nộp tiền vào
//! ngân sách nhà nước" (mẫu C1-02/NS): one line per budget chapter, sub-item and period, with
//! what the money is for and its amount; the total in figures and in words.
//!
//! A remittance is recorded on each case it covers (RemittedToTreasury, with the budget
//! classification of every line); the voucher is those facts grouped. Its lines add up to the
//! remittance's amount, to the đồng.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::budget::{BudgetChapter, BudgetSubItem};
use crate::case_fees::RemittedLine;
use crate::money::{MoneyError, Vnd};

/// A month of collection, the period (kỳ) a voucher line and a monthly declaration refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CollectionMonth {
    pub year: i32,
    pub month: u32,
}

impl CollectionMonth {
    pub fn of(day: NaiveDate) -> Self {
        CollectionMonth { year: day.year(), month: day.month() }
    }

    /// `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Self> {
        NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d").ok().map(Self::of)
    }

    pub fn first_day(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
    }

    /// The last day of the month.
    pub fn last_day(self) -> Option<NaiveDate> {
        let (year, month) = if self.month == 12 { (self.year + 1, 1) } else { (self.year, self.month + 1) };
        NaiveDate::from_ymd_opt(year, month, 1).and_then(|d| d.pred_opt())
    }

    /// `10/2026`, as Vietnamese forms write a period.
    pub fn label(self) -> String {
        format!("{:02}/{}", self.month, self.year)
    }
}

impl std::fmt::Display for CollectionMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One line of the voucher: the budget's share of one chapter, sub-item and month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherLine {
    /// `None`: not configured when the money was remitted (printed as such, never guessed).
    pub budget_chapter: Option<BudgetChapter>,
    pub budget_sub_item: Option<BudgetSubItem>,
    pub period: CollectionMonth,
    /// The fees the money was collected for ("nội dung các khoản nộp NSNN").
    pub content: Vec<String>,
    pub amount: Vnd,
}

/// Groups the remitted lines of every case of a remittance into voucher lines, ordered by
/// chapter, sub-item and month. Lines with nothing for the budget (a fully retained phí) are
/// left out. `Σ lines == Σ to_budget`, or an error.
pub fn voucher_lines<'a>(remitted: impl IntoIterator<Item = &'a RemittedLine>) -> Result<Vec<VoucherLine>, MoneyError> {
    type Key = (Option<BudgetChapter>, Option<BudgetSubItem>, CollectionMonth);
    let mut grouped: BTreeMap<Key, VoucherLine> = BTreeMap::new();
    let mut expected = Vnd::ZERO;
    for line in remitted {
        if line.to_budget.is_zero() {
            continue;
        }
        expected = expected.checked_add(line.to_budget)?;
        let period = CollectionMonth::of(line.collected_on);
        let key = (line.budget_chapter.clone(), line.budget_sub_item.clone(), period);
        let entry = grouped.entry(key).or_insert_with(|| VoucherLine {
            budget_chapter: line.budget_chapter.clone(),
            budget_sub_item: line.budget_sub_item.clone(),
            period,
            content: Vec::new(),
            amount: Vnd::ZERO,
        });
        entry.amount = entry.amount.checked_add(line.to_budget)?;
        let name = line.fee_name.clone().unwrap_or_else(|| line.fee_code.to_string());
        if !entry.content.contains(&name) {
            entry.content.push(name);
        }
    }
    let lines: Vec<VoucherLine> = grouped.into_values().collect();
    let total = Vnd::sum(lines.iter().map(|l| l.amount))?;
    debug_assert_eq!(total, expected, "voucher lines must add up to what was remitted");
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::FeeCode;
    use crate::fee_schedule::FeeKind;

    fn line(day: u32, code: &str, sub_item: Option<&str>, to_budget: i64) -> RemittedLine {
        RemittedLine {
            collected_on: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
            fee_code: FeeCode::parse(code).unwrap(),
            kind: FeeKind::LePhi,
            to_budget: Vnd::new(to_budget).unwrap(),
            retained: Vnd::ZERO,
            budget_chapter: Some(BudgetChapter::parse("599").unwrap()),
            budget_sub_item: sub_item.map(|s| BudgetSubItem::parse(s).unwrap()),
            fee_name: Some(format!("Lệ phí {code}")),
        }
    }

    #[test]
    fn lines_of_the_same_chapter_sub_item_and_month_become_one_voucher_line_and_the_total_is_kept() {
        let remitted = [
            line(1, "LP-A", Some("2662"), 8_000),
            line(2, "LP-A", Some("2662"), 16_000),
            line(2, "LP-B", Some("2662"), 25_000),
            line(3, "P-C", Some("2153"), 200),
            line(3, "P-D", None, 1_000),
            line(4, "P-E", Some("2153"), 0),
        ];
        let lines = voucher_lines(&remitted).unwrap();
        assert_eq!(lines.len(), 3);
        let hotich =
            lines.iter().find(|l| l.budget_sub_item.as_ref().map(BudgetSubItem::as_str) == Some("2662")).unwrap();
        assert_eq!(hotich.amount.dong(), 49_000);
        assert_eq!(hotich.content, ["Lệ phí LP-A", "Lệ phí LP-B"]);
        assert!(lines.iter().any(|l| l.budget_sub_item.is_none() && l.amount.dong() == 1_000));
        assert_eq!(Vnd::sum(lines.iter().map(|l| l.amount)).unwrap().dong(), 50_200);
    }

    #[test]
    fn a_month_is_parsed_and_bounded() {
        let month = CollectionMonth::parse("2026-02").unwrap();
        assert_eq!(month.last_day(), NaiveDate::from_ymd_opt(2026, 2, 28));
        assert_eq!(month.label(), "02/2026");
        assert_eq!(month.to_string(), "2026-02");
        assert!(CollectionMonth::parse("2026-13").is_none());
    }
}
