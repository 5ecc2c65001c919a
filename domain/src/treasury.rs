//! The State Treasury (Kho bạc Nhà nước) side of collected money.
//!
//! Money collected for a fee line is split on the day it is collected, by the rule in force on
//! that day (a later correction of the rule changes the split after a rebuild, never the
//! citizen's bill): a **lệ phí** goes 100% to the state budget; a **phí** keeps its retention
//! share at the agency when the agency is allowed to retain, and the rest goes to the budget
//! (Law 97/2015/QH13, Decree 120/2016 as amended by Decree 82/2023). What is payable to the
//! budget is deposited in batches, each fee by its own [`DepositSchedule`] (daily, weekly or
//! monthly), a deadline on a weekend or holiday moving to the next working day.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::budget::DayOfMonth;
use crate::codes::{AgencyCode, FeeCode};
use crate::fee_schedule::{FeeKind, FeeScheduleVersion};
use crate::money::{MoneyError, Percent, Split, Vnd};
use crate::working_days::WorkingCalendar;

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

/// When collected money must be in the treasury's "fees awaiting the budget" account: daily,
/// weekly on a weekday, or monthly by a day of the next month, as each fee's rule says
/// (Decree 120/2016/NĐ-CP art. 3 as amended by Decree 82/2023/NĐ-CP). Part of the published
/// fee schedule, so a new version can change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DepositSchedule {
    /// By the next working day after the day of collection.
    Daily,
    /// On the first `weekday` after the day of collection.
    Weekly { weekday: Weekday },
    /// By day `day_of_month` of the month after collection (its last day if shorter).
    Monthly { day_of_month: DayOfMonth },
}

impl DepositSchedule {
    /// What applies to a fee whose rule names no schedule: the 5th of the next month, the
    /// latest date many fee circulars allow. Reports say the schedule is not configured.
    pub fn fallback() -> DepositSchedule {
        DepositSchedule::Monthly { day_of_month: DayOfMonth::FIFTH }
    }

    /// The last day to deposit money collected on `collected_on`, moved to the next working
    /// day when it falls on a weekend or a holiday.
    pub fn due(self, collected_on: NaiveDate, calendar: &WorkingCalendar) -> NaiveDate {
        let nominal = match self {
            DepositSchedule::Daily => collected_on + Duration::days(1),
            DepositSchedule::Weekly { weekday } => {
                let ahead = (7 + i64::from(weekday.num_days_from_monday())
                    - i64::from(collected_on.weekday().num_days_from_monday()))
                    % 7;
                collected_on + Duration::days(if ahead == 0 { 7 } else { ahead })
            }
            DepositSchedule::Monthly { day_of_month } => {
                let first_of_next = first_of_next_month(collected_on);
                let last = first_of_next_month(first_of_next) - Duration::days(1);
                first_of_next + Duration::days(i64::from(day_of_month.get().min(last.day()) - 1))
            }
        };
        calendar.on_or_after(nominal)
    }
}

fn first_of_next_month(day: NaiveDate) -> NaiveDate {
    let (year, month) = if day.month() == 12 { (day.year() + 1, 1) } else { (day.year(), day.month() + 1) };
    // The first day of a month always exists; `day` itself is an unreachable fallback.
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(day)
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
    /// The earliest deadline of the row's money not yet remitted, by its own schedule.
    #[serde(default)]
    pub due_on: Option<NaiveDate>,
    /// Money not yet remitted whose deadline has passed.
    #[serde(default)]
    pub overdue: Vnd,
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
            due_on: None,
            overdue: Vnd::ZERO,
        }
    }

    /// Adds one day's figures; keeps `outstanding` and `over_remitted` consistent.
    pub fn add(&mut self, collected: Vnd, retained: Vnd, payable: Vnd, remitted: Vnd) -> Result<(), MoneyError> {
        self.collected = self.collected.checked_add(collected)?;
        self.retained = self.retained.checked_add(retained)?;
        self.payable_to_budget = self.payable_to_budget.checked_add(payable)?;
        self.remitted = self.remitted.checked_add(remitted)?;
        self.outstanding = self.payable_to_budget.excess_over(self.remitted);
        self.over_remitted = self.remitted.excess_over(self.payable_to_budget);
        Ok(())
    }

    /// Notes money of the row still owed, due on `due_on`: the row's earliest deadline, and
    /// what is overdue on `today`.
    pub fn owe(&mut self, unpaid: Vnd, due_on: NaiveDate, today: NaiveDate) -> Result<(), MoneyError> {
        if unpaid.is_zero() {
            return Ok(());
        }
        self.due_on = Some(self.due_on.map_or(due_on, |d| d.min(due_on)));
        if today > due_on {
            self.overdue = self.overdue.checked_add(unpaid)?;
        }
        Ok(())
    }

    /// The total row: each column summed on its own (an over-remittance of one fee code is not
    /// netted against another code's outstanding money).
    pub fn total_of(rows: &[TreasuryRow], code: FeeCode, name: String) -> Result<TreasuryRow, MoneyError> {
        let sum = |f: fn(&TreasuryRow) -> Vnd| Vnd::sum(rows.iter().map(f));
        Ok(TreasuryRow {
            fee_code: code,
            fee_name: name,
            kind: FeeKind::LePhi,
            collected: sum(|r| r.collected)?,
            retained: sum(|r| r.retained)?,
            payable_to_budget: sum(|r| r.payable_to_budget)?,
            remitted: sum(|r| r.remitted)?,
            outstanding: sum(|r| r.outstanding)?,
            over_remitted: sum(|r| r.over_remitted)?,
            due_on: rows.iter().filter_map(|r| r.due_on).min(),
            overdue: sum(|r| r.overdue)?,
        })
    }

    /// `collected = retained + payable`, to the đồng.
    pub fn balances(&self) -> bool {
        self.retained.checked_add(self.payable_to_budget).ok() == Some(self.collected)
    }
}

/// The next deadline of money still owed to the budget: the earliest, by each fee's own
/// schedule, and how much is due by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextDeadline {
    pub due_on: NaiveDate,
    pub amount: Vnd,
    /// Days past the deadline on the report date (0 when not yet due).
    pub overdue_days: i64,
}

impl NextDeadline {
    /// Keeps the earliest deadline, adding up the money due on it.
    pub fn earliest(
        current: Option<NextDeadline>,
        due_on: NaiveDate,
        amount: Vnd,
        today: NaiveDate,
    ) -> Result<Option<NextDeadline>, MoneyError> {
        if amount.is_zero() {
            return Ok(current);
        }
        let overdue_days = (today - due_on).num_days().max(0);
        Ok(Some(match current {
            Some(next) if next.due_on < due_on => next,
            Some(next) if next.due_on == due_on => NextDeadline { amount: next.amount.checked_add(amount)?, ..next },
            _ => NextDeadline { due_on, amount, overdue_days },
        }))
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
    /// The earliest deadline of money owed up to the report's last day.
    #[serde(default)]
    pub next_deadline: Option<NextDeadline>,
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
            && sum(|r| r.overdue) == Some(self.total.overdue)
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

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn without_a_schedule_money_is_due_on_the_fifth_of_the_next_month_or_the_next_working_day() {
        let weekends = WorkingCalendar::weekends_only();
        let due = |day| DepositSchedule::fallback().due(day, &weekends);
        assert_eq!(due(d(2026, 10, 22)), d(2026, 11, 5), "a Thursday");
        // 5 December 2026 is a Saturday.
        assert_eq!(due(d(2026, 11, 22)), d(2026, 12, 7));
        assert_eq!(due(d(2026, 12, 31)), d(2027, 1, 5));
    }

    #[test]
    fn each_schedule_gives_its_own_deadline_in_working_days() {
        let calendar = WorkingCalendar::vietnam();
        // Thursday 29 October 2026.
        let collected = d(2026, 10, 29);
        assert_eq!(DepositSchedule::Daily.due(collected, &calendar), d(2026, 10, 30));
        // Friday's money is due on Monday.
        assert_eq!(DepositSchedule::Daily.due(d(2026, 10, 30), &calendar), d(2026, 11, 2));
        let monday = DepositSchedule::Weekly { weekday: Weekday::Mon };
        assert_eq!(monday.due(collected, &calendar), d(2026, 11, 2));
        assert_eq!(monday.due(d(2026, 11, 2), &calendar), d(2026, 11, 9), "a Monday's money waits a week");
        let by_31st = DepositSchedule::Monthly { day_of_month: DayOfMonth::new(31).unwrap() };
        assert_eq!(by_31st.due(d(2027, 1, 10), &calendar), d(2027, 3, 1), "28 Feb 2027 is a Sunday");
        // Daily money collected the day before Tết 2026 waits until after it.
        assert_eq!(DepositSchedule::Daily.due(d(2026, 2, 13), &calendar), d(2026, 2, 23));
    }

    #[test]
    fn a_row_keeps_outstanding_and_over_remitted_consistent() {
        let v = |d| Vnd::new(d).unwrap();
        let mut row = TreasuryRow::new(FeeCode::parse("P-X").unwrap(), "x".into(), FeeKind::Phi);
        row.add(v(1000), v(900), v(100), v(0)).unwrap();
        assert_eq!((row.outstanding, row.over_remitted), (v(100), v(0)));
        row.add(v(0), v(0), v(0), v(150)).unwrap();
        assert_eq!((row.outstanding, row.over_remitted), (v(0), v(50)));
        assert!(row.balances());
    }
}
