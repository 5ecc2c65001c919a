//! Vietnamese working days: deadlines to the treasury and the tax office that fall on a
//! weekend or a public holiday move to the next working day (Law 38/2019/QH14 on tax
//! administration, art. 86; the Labour Code 2019, art. 112, for the holidays).
//!
//! The public holidays (art. 112): 1 January; Tết (5 days around the lunar new year, the
//! exact days announced by the government each year); the Hùng Kings' day (10th of the 3rd
//! lunar month); 30 April; 1 May; 2 September and one day next to it. A holiday that falls on
//! a weekend is compensated by the next working day. Lunar dates cannot be computed without
//! an astronomical table, so the default calendar knows them for the years listed in
//! [`LUNAR_HOLIDAYS`]; any other non-working day (a year further out, a day the government
//! moves) is added by configuration ([`WorkingCalendar::with_non_working_days`]).

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// The lunar-calendar holidays as announced or computed, per year: the weekdays off for Tết,
/// and the Hùng Kings' day. 2024–2026 follow the government's announcements; 2027 follows the
/// usual pattern (the eve and the first four days of the year) and is to be checked against
/// that year's announcement.
pub const LUNAR_HOLIDAYS: &[(i32, &[(u32, u32)])] = &[
    (2024, &[(2, 8), (2, 9), (2, 12), (2, 13), (2, 14), (4, 18)]),
    (2025, &[(1, 27), (1, 28), (1, 29), (1, 30), (1, 31), (4, 7)]),
    (2026, &[(2, 16), (2, 17), (2, 18), (2, 19), (2, 20), (4, 26)]),
    (2027, &[(2, 5), (2, 6), (2, 7), (2, 8), (2, 9), (4, 16)]),
];

/// The day next to National Day (2 September) chosen each year; the 1st when not known.
const NATIONAL_DAY_NEIGHBOUR: &[(i32, u32)] = &[(2024, 3), (2025, 1)];

/// The first and last years the default calendar covers.
pub const DEFAULT_YEARS: (i32, i32) = (2024, 2027);

/// How far a deadline may move: a guard against a calendar that has no working day at all.
const MAX_ROLL_DAYS: i64 = 366;

/// Which days are not working days, besides Saturdays and Sundays.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkingCalendar {
    non_working: BTreeSet<NaiveDate>,
}

impl WorkingCalendar {
    /// Weekends only (for tests and for places that keep their own list entirely).
    pub fn weekends_only() -> Self {
        WorkingCalendar::default()
    }

    /// The Vietnamese public holidays of [`DEFAULT_YEARS`], with compensating days.
    pub fn vietnam() -> Self {
        let mut holidays = BTreeSet::new();
        for year in DEFAULT_YEARS.0..=DEFAULT_YEARS.1 {
            let neighbour = NATIONAL_DAY_NEIGHBOUR.iter().find(|(y, _)| *y == year).map_or(1, |(_, day)| *day);
            for (month, day) in [(1, 1), (4, 30), (5, 1), (9, 2), (9, neighbour)] {
                holidays.extend(NaiveDate::from_ymd_opt(year, month, day));
            }
            let lunar = LUNAR_HOLIDAYS.iter().find(|(y, _)| *y == year).map_or(&[][..], |(_, days)| *days);
            for (month, day) in lunar {
                holidays.extend(NaiveDate::from_ymd_opt(year, *month, *day));
            }
        }
        // A holiday on a weekend is taken on the next day that is neither (art. 112(3)).
        let mut calendar = WorkingCalendar { non_working: holidays.clone() };
        for holiday in holidays.iter().filter(|d| is_weekend(**d)) {
            let compensation = calendar.next_working_day_after(*holiday);
            calendar.non_working.insert(compensation);
        }
        calendar
    }

    /// Adds days off (a year beyond the default table, a moved day).
    pub fn with_non_working_days(mut self, days: impl IntoIterator<Item = NaiveDate>) -> Self {
        self.non_working.extend(days);
        self
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !is_weekend(day) && !self.non_working.contains(&day)
    }

    /// `day` itself when it is a working day, otherwise the next one.
    pub fn on_or_after(&self, day: NaiveDate) -> NaiveDate {
        (0..MAX_ROLL_DAYS).map(|n| day + Duration::days(n)).find(|d| self.is_working_day(*d)).unwrap_or(day)
    }

    /// The first working day after `day`.
    pub fn next_working_day_after(&self, day: NaiveDate) -> NaiveDate {
        self.on_or_after(day + Duration::days(1))
    }
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn weekends_and_holidays_are_not_working_days() {
        let calendar = WorkingCalendar::vietnam();
        assert!(calendar.is_working_day(d(2026, 11, 30)), "a Monday");
        assert!(!calendar.is_working_day(d(2026, 11, 29)), "a Sunday");
        assert!(!calendar.is_working_day(d(2026, 9, 2)), "National Day");
        assert!(!calendar.is_working_day(d(2026, 2, 18)), "Tết");
    }

    #[test]
    fn a_deadline_on_a_holiday_moves_to_the_next_working_day() {
        let calendar = WorkingCalendar::vietnam();
        // 1 May 2026 is a Friday; 30 April a Thursday.
        assert_eq!(calendar.on_or_after(d(2026, 4, 30)), d(2026, 5, 4));
        // Tết 2026: 16–20 February, then a weekend.
        assert_eq!(calendar.on_or_after(d(2026, 2, 16)), d(2026, 2, 23));
        assert_eq!(calendar.on_or_after(d(2026, 12, 7)), d(2026, 12, 7));
    }

    #[test]
    fn a_holiday_on_a_weekend_is_compensated_on_the_next_working_day() {
        // Hùng Kings' day 2026 is Sunday 26 April: Monday 27 April is off.
        let calendar = WorkingCalendar::vietnam();
        assert!(!calendar.is_working_day(d(2026, 4, 27)));
        // 1 January 2028 is outside the default table; configuration adds it.
        let extended = WorkingCalendar::vietnam().with_non_working_days([d(2027, 12, 31)]);
        assert_eq!(extended.on_or_after(d(2027, 12, 31)), d(2028, 1, 3));
    }
}
