//! Province oversight: where an agency sits in the province (its level and parent, effective
//! from a date), the cashless and online targets set per level and month, and the monthly (or
//! quarterly) league table that says who met them.
//!
//! The Bắc Giang plan (Công văn of the Chairman of the Provincial People's Committee, May 2022;
//! `../shared/seeds/003_*`) is the model: province departments (sở, ngành) and district people's
//! committees must reach 80% cashless in September 2022 and 100% from October 2022; commune
//! people's committees 70% in October 2022 and 100% from November 2022; at least 30% of the
//! procedures' files paid online in Q3 2022. The province publishes every month, before the
//! 25th, which agencies met their target ("đạt") and which did not ("không đạt").

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codes::AgencyCode;
use crate::money::Percent;

/// The stream holding every target set (one stream: targets are few and change rarely).
pub const TARGETS_STREAM: &str = "oversight-targets";

/// Where an agency sits in the province's administration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgencyLevel {
    /// The province itself (UBND tỉnh): the root of the hierarchy.
    Province,
    /// A province department or branch (sở, ngành), its one-stop desk in the province's public
    /// administration service centre.
    Department,
    /// A district, town or city people's committee (UBND huyện, thành phố).
    District,
    /// A commune, ward or township people's committee (UBND xã, phường, thị trấn).
    Commune,
}

impl AgencyLevel {
    pub const ALL: [AgencyLevel; 4] =
        [AgencyLevel::Province, AgencyLevel::Department, AgencyLevel::District, AgencyLevel::Commune];

    /// Depth in the hierarchy: a parent's depth is always smaller than its child's.
    pub fn depth(self) -> u8 {
        match self {
            AgencyLevel::Province => 0,
            AgencyLevel::Department | AgencyLevel::District => 1,
            AgencyLevel::Commune => 2,
        }
    }

    /// The level a parent of this level must have (`None`: the root has no parent).
    pub fn parent_level(self) -> Option<AgencyLevel> {
        match self {
            AgencyLevel::Province => None,
            AgencyLevel::Department | AgencyLevel::District => Some(AgencyLevel::Province),
            AgencyLevel::Commune => Some(AgencyLevel::District),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgencyLevel::Province => "PROVINCE",
            AgencyLevel::Department => "DEPARTMENT",
            AgencyLevel::District => "DISTRICT",
            AgencyLevel::Commune => "COMMUNE",
        }
    }

    /// The Vietnamese name of the level, as announcements print it.
    pub fn label_vi(self) -> &'static str {
        match self {
            AgencyLevel::Province => "Cấp tỉnh",
            AgencyLevel::Department => "Sở, ban, ngành",
            AgencyLevel::District => "UBND cấp huyện",
            AgencyLevel::Commune => "UBND cấp xã",
        }
    }

    pub fn parse(text: &str) -> Option<AgencyLevel> {
        AgencyLevel::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for AgencyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agency's place in the hierarchy, part of its configuration (AgencyConfigured). All parts
/// are optional: configurations recorded before the hierarchy existed stay readable, and an
/// agency without a level is simply in no league table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<AgencyLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_code: Option<AgencyCode>,
    /// The first day this placement holds (`None`: since always). A later placement with an
    /// earlier or equal date does not rewrite the months before its own date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_from: Option<NaiveDate>,
}

impl Placement {
    pub fn is_placed(&self) -> bool {
        self.level.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("a placement needs a level")]
    NoLevel,
    #[error("an agency cannot be its own parent")]
    OwnParent,
    #[error("the province (root) has no parent")]
    RootWithParent,
    #[error("the parent of a {child} must be a {expected}, and {parent} is a {actual}")]
    WrongParentLevel { child: AgencyLevel, expected: AgencyLevel, parent: AgencyCode, actual: AgencyLevel },
    #[error("the parent {0} is not placed in the hierarchy")]
    ParentNotPlaced(AgencyCode),
}

/// Checks a placement against its parent's placement (the caller looks the parent up).
pub fn check_placement(
    agency: &AgencyCode,
    placement: &Placement,
    parent_level: Option<AgencyLevel>,
) -> Result<(), PlacementError> {
    let level = placement.level.ok_or(PlacementError::NoLevel)?;
    let Some(parent) = &placement.parent_code else { return Ok(()) };
    if parent == agency {
        return Err(PlacementError::OwnParent);
    }
    let Some(expected) = level.parent_level() else { return Err(PlacementError::RootWithParent) };
    let actual = parent_level.ok_or_else(|| PlacementError::ParentNotPlaced(parent.clone()))?;
    if actual != expected {
        return Err(PlacementError::WrongParentLevel { child: level, expected, parent: parent.clone(), actual });
    }
    Ok(())
}

/// An agency's placements in the order they were recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementHistory {
    placements: Vec<Placement>,
}

impl PlacementHistory {
    pub fn record(&mut self, placement: &Placement) {
        if placement.is_placed() && self.placements.last() != Some(placement) {
            self.placements.push(placement.clone());
        }
    }

    /// The placement in force on `date`: the latest `placed_from` on or before it; when two
    /// have the same date, the one recorded later (a correction).
    pub fn on(&self, date: NaiveDate) -> Option<&Placement> {
        self.placements
            .iter()
            .enumerate()
            .filter(|(_, p)| p.placed_from.is_none_or(|from| from <= date))
            .max_by_key(|(i, p)| (p.placed_from, *i))
            .map(|(_, p)| p)
    }

    pub fn latest(&self) -> Option<&Placement> {
        self.placements.last()
    }
}

// --- months and quarters ------------------------------------------------------------------------

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a month (YYYY-MM) or a quarter (YYYY-Qn)")]
pub struct PeriodError(pub String);

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((1..=12).contains(&month) && (2000..=2999).contains(&year)).then_some(Month { year, month })
    }

    pub fn of(date: NaiveDate) -> Month {
        Month { year: date.year(), month: date.month() }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or_default()
    }

    pub fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 { Month { year: self.year - 1, month: 12 } } else { Month { month: self.month - 1, ..self } }
    }

    pub fn a_year_before(self) -> Month {
        Month { year: self.year - 1, ..self }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = PeriodError;
    fn from_str(text: &str) -> Result<Month, PeriodError> {
        let bad = || PeriodError(text.to_owned());
        let (year, month) = text.trim().split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 || !(year.bytes().chain(month.bytes()).all(|b| b.is_ascii_digit())) {
            return Err(bad());
        }
        Month::new(year.parse().map_err(|_| bad())?, month.parse().map_err(|_| bad())?).ok_or_else(bad)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What a league table covers: one month, or a quarter (its three months summed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Month(Month),
    /// The year and the quarter 1 to 4.
    Quarter(i32, u32),
}

impl Period {
    /// `2026-10` or `2026-Q4`.
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        let text = text.trim();
        if let Some((year, quarter)) = text.split_once("-Q").or_else(|| text.split_once("-q")) {
            let bad = || PeriodError(text.to_owned());
            let year: i32 = year.parse().map_err(|_| bad())?;
            let quarter: u32 = quarter.parse().map_err(|_| bad())?;
            if !(1..=4).contains(&quarter) || Month::new(year, 1).is_none() {
                return Err(bad());
            }
            return Ok(Period::Quarter(year, quarter));
        }
        text.parse().map(Period::Month)
    }

    pub fn months(self) -> Vec<Month> {
        match self {
            Period::Month(m) => vec![m],
            Period::Quarter(year, q) => (0..3).filter_map(|i| Month::new(year, (q - 1) * 3 + 1 + i)).collect(),
        }
    }

    /// The month whose targets and hierarchy the period is judged by: its last.
    pub fn last_month(self) -> Month {
        self.months().last().copied().unwrap_or(Month { year: 2000, month: 1 })
    }

    pub fn previous(self) -> Period {
        match self {
            Period::Month(m) => Period::Month(m.previous()),
            Period::Quarter(year, 1) => Period::Quarter(year - 1, 4),
            Period::Quarter(year, q) => Period::Quarter(year, q - 1),
        }
    }

    pub fn a_year_before(self) -> Period {
        match self {
            Period::Month(m) => Period::Month(m.a_year_before()),
            Period::Quarter(year, q) => Period::Quarter(year - 1, q),
        }
    }

    /// "tháng 10/2026" or "quý IV/2026".
    pub fn label_vi(self) -> String {
        match self {
            Period::Month(m) => format!("tháng {}/{}", m.month, m.year),
            Period::Quarter(year, q) => {
                let roman = ["I", "II", "III", "IV"].get((q as usize).saturating_sub(1)).copied().unwrap_or("?");
                format!("quý {roman}/{year}")
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month(m) => m.fmt(f),
            Period::Quarter(year, q) => write!(f, "{year}-Q{q}"),
        }
    }
}

// --- targets ----------------------------------------------------------------------------------

/// A target set for a level from a month on: the event `TargetSet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSet {
    pub level: AgencyLevel,
    pub effective_from: Month,
    /// The minimum share of cases paid in full without cash.
    pub cashless_percent: Percent,
    /// The minimum share of cases paid in full online.
    pub online_percent: Percent,
    pub set_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("targets are set for departments, districts and communes, not for the province itself")]
    ProvinceLevel,
}

/// Every target ever set, in the order set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    sets: Vec<TargetSet>,
}

impl Targets {
    pub fn evolve(mut self, event: &TargetSet) -> Targets {
        self.sets.push(event.clone());
        self
    }

    pub fn all(&self) -> &[TargetSet] {
        &self.sets
    }

    /// The target in force for `level` in `month`: the latest `effective_from` on or before it;
    /// with the same month, the one set later (a correction).
    pub fn in_force(&self, level: AgencyLevel, month: Month) -> Option<&TargetSet> {
        self.sets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.level == level && t.effective_from <= month)
            .max_by_key(|(i, t)| (t.effective_from, *i))
            .map(|(_, t)| t)
    }

    /// Validates a new target; `None` when the same target is already the last set for that
    /// level and month (re-running a set-up script appends nothing).
    pub fn decide_set(&self, wanted: TargetSet) -> Result<Option<TargetSet>, TargetError> {
        if wanted.level == AgencyLevel::Province {
            return Err(TargetError::ProvinceLevel);
        }
        let same = self
            .sets
            .iter()
            .rev()
            .find(|t| t.level == wanted.level && t.effective_from == wanted.effective_from)
            .is_some_and(|t| {
                t.cashless_percent == wanted.cashless_percent && t.online_percent == wanted.online_percent
            });
        Ok((!same).then_some(wanted))
    }
}

/// The Bắc Giang targets of the 2022 plan (seeds/003): for departments and districts 80%
/// cashless in September 2022 and 100% from October 2022; for communes 70% in October 2022 and
/// 100% from November 2022; 30% of files paid online from Q3 2022 (July) for every level.
pub fn bac_giang_2022_targets(set_at: DateTime<Utc>) -> Vec<TargetSet> {
    let p = |v: i64| Percent::from_decimal(Decimal::from(v)).unwrap_or(Percent::ZERO);
    let m = |month: u32| Month { year: 2022, month };
    let mut sets = Vec::new();
    for level in [AgencyLevel::Department, AgencyLevel::District, AgencyLevel::Commune] {
        sets.push(TargetSet { level, effective_from: m(7), cashless_percent: p(0), online_percent: p(30), set_at });
    }
    for level in [AgencyLevel::Department, AgencyLevel::District] {
        sets.push(TargetSet { level, effective_from: m(9), cashless_percent: p(80), online_percent: p(30), set_at });
        sets.push(TargetSet { level, effective_from: m(10), cashless_percent: p(100), online_percent: p(30), set_at });
    }
    let commune = AgencyLevel::Commune;
    sets.push(TargetSet {
        level: commune,
        effective_from: m(10),
        cashless_percent: p(70),
        online_percent: p(30),
        set_at,
    });
    sets.push(TargetSet {
        level: commune,
        effective_from: m(11),
        cashless_percent: p(100),
        online_percent: p(30),
        set_at,
    });
    sets
}

// --- the league table ---------------------------------------------------------------------------

/// Cases paid in full in a period, and of them how many without cash and how many online.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub cases: u32,
    pub cashless: u32,
    pub online: u32,
}

impl Counts {
    pub fn plus(self, other: Counts) -> Counts {
        Counts {
            cases: self.cases.saturating_add(other.cases),
            cashless: self.cashless.saturating_add(other.cashless),
            online: self.online.saturating_add(other.online),
        }
    }

    pub fn cashless_rate(self) -> Option<Decimal> {
        rate_percent(self.cashless, self.cases)
    }

    pub fn online_rate(self) -> Option<Decimal> {
        rate_percent(self.online, self.cases)
    }
}

/// `part / cases` in percent, rounded to two decimals half away from zero ("66.67"); `None`
/// without cases. The rounding is for display only: whether a target is met is decided on the
/// exact fraction ([`reaches`]).
pub fn rate_percent(part: u32, cases: u32) -> Option<Decimal> {
    (cases > 0).then(|| {
        (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(cases))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    })
}

/// Whether `part / cases` is at least `target` percent, exactly: `part × 100 ≥ target × cases`.
pub fn reaches(part: u32, cases: u32, target: Percent) -> bool {
    cases > 0 && Decimal::from(part) * Decimal::ONE_HUNDRED >= target.as_decimal() * Decimal::from(cases)
}

/// What the table needs to know of one agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeagueEntry {
    pub agency_code: AgencyCode,
    pub name: String,
    pub level: AgencyLevel,
    pub parent_code: Option<AgencyCode>,
    pub counts: Counts,
    pub previous: Counts,
    pub a_year_before: Counts,
}

/// One agency's line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeagueRow {
    pub entry: LeagueEntry,
    pub cashless_rate: Option<Decimal>,
    pub online_rate: Option<Decimal>,
    pub target: Option<TargetSet>,
    pub cashless_met: Option<bool>,
    pub online_met: Option<bool>,
    /// Both targets met; `None` when there is no target in force or no case was paid (the
    /// agency is then not judged).
    pub met: Option<bool>,
    /// Percentage points of cashless rate gained since the previous period (`None` when either
    /// period had no case), and since the same period a year before.
    pub cashless_change_vs_previous: Option<Decimal>,
    pub cashless_change_vs_last_year: Option<Decimal>,
    pub online_change_vs_previous: Option<Decimal>,
    pub online_change_vs_last_year: Option<Decimal>,
    /// Rank within its level (1 is best), ties sharing a rank.
    pub rank: u32,
}

/// The totals of one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelTotal {
    pub level: AgencyLevel,
    pub agencies: u32,
    pub counts: Counts,
    pub cashless_rate: Option<Decimal>,
    pub online_rate: Option<Decimal>,
    pub target: Option<TargetSet>,
    pub met: u32,
    pub not_met: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct League {
    pub period: Period,
    pub rows: Vec<LeagueRow>,
    pub totals: Vec<LevelTotal>,
}

fn change(now: Option<Decimal>, before: Option<Decimal>) -> Option<Decimal> {
    Some(now? - before?)
}

/// Compares two agencies for the ranking: cashless rate, then online rate, then cases paid (more
/// is better); exact fractions, no rounding. `Less` means `a` ranks before `b`.
fn ranking(a: &Counts, b: &Counts) -> Ordering {
    let by_rate = |pa: u32, ca: u32, pb: u32, cb: u32| {
        // pa/ca vs pb/cb without division; an agency without cases rates 0.
        let left = u64::from(pa) * u64::from(cb.max(1));
        let right = u64::from(pb) * u64::from(ca.max(1));
        right.cmp(&left)
    };
    by_rate(a.cashless, a.cases, b.cashless, b.cases)
        .then_with(|| by_rate(a.online, a.cases, b.online, b.cases))
        .then_with(|| b.cases.cmp(&a.cases))
}

/// Builds the table: per agency its rates, the target in force for its level in the period's
/// last month, met or not, the changes, and its rank within its level; then the totals per
/// level (rates from the summed counts). Rows come ordered by level, then rank, then code.
pub fn league(period: Period, entries: Vec<LeagueEntry>, targets: &Targets) -> League {
    let judged_month = period.last_month();
    let mut by_level: BTreeMap<AgencyLevel, Vec<LeagueEntry>> = BTreeMap::new();
    for entry in entries {
        by_level.entry(entry.level).or_default().push(entry);
    }
    let mut rows = Vec::new();
    let mut totals = Vec::new();
    for (level, mut entries) in by_level {
        entries.sort_by(|a, b| ranking(&a.counts, &b.counts).then_with(|| a.agency_code.cmp(&b.agency_code)));
        let target = targets.in_force(level, judged_month).cloned();
        let mut total = LevelTotal {
            level,
            agencies: 0,
            counts: Counts::default(),
            cashless_rate: None,
            online_rate: None,
            target: target.clone(),
            met: 0,
            not_met: 0,
        };
        let mut rank = 0u32;
        let mut previous: Option<Counts> = None;
        for (index, entry) in entries.into_iter().enumerate() {
            if previous.is_none_or(|p| ranking(&p, &entry.counts) != Ordering::Equal) {
                rank = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
            }
            previous = Some(entry.counts);
            let c = entry.counts;
            let judged = target.as_ref().filter(|_| c.cases > 0);
            let cashless_met = judged.map(|t| reaches(c.cashless, c.cases, t.cashless_percent));
            let online_met = judged.map(|t| reaches(c.online, c.cases, t.online_percent));
            let met = cashless_met.zip(online_met).map(|(a, b)| a && b);
            total.agencies += 1;
            total.counts = total.counts.plus(c);
            match met {
                Some(true) => total.met += 1,
                Some(false) => total.not_met += 1,
                None => {}
            }
            rows.push(LeagueRow {
                cashless_rate: c.cashless_rate(),
                online_rate: c.online_rate(),
                target: target.clone(),
                cashless_met,
                online_met,
                met,
                cashless_change_vs_previous: change(c.cashless_rate(), entry.previous.cashless_rate()),
                cashless_change_vs_last_year: change(c.cashless_rate(), entry.a_year_before.cashless_rate()),
                online_change_vs_previous: change(c.online_rate(), entry.previous.online_rate()),
                online_change_vs_last_year: change(c.online_rate(), entry.a_year_before.online_rate()),
                rank,
                entry,
            });
        }
        total.cashless_rate = total.counts.cashless_rate();
        total.online_rate = total.counts.online_rate();
        totals.push(total);
    }
    League { period, rows, totals }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code(text: &str) -> AgencyCode {
        AgencyCode::parse(text).unwrap()
    }

    fn month(text: &str) -> Month {
        text.parse().unwrap()
    }

    fn entry(agency: &str, level: AgencyLevel, cases: u32, cashless: u32, online: u32) -> LeagueEntry {
        LeagueEntry {
            agency_code: code(agency),
            name: agency.into(),
            level,
            parent_code: None,
            counts: Counts { cases, cashless, online },
            previous: Counts::default(),
            a_year_before: Counts { cases: 4, cashless: 1, online: 0 },
        }
    }

    #[test]
    fn the_bac_giang_targets_rise_by_month_and_earlier_months_keep_theirs() {
        let targets = bac_giang_2022_targets(Utc::now()).iter().fold(Targets::default(), |t, e| t.evolve(e));
        let cashless = |level, m: &str| targets.in_force(level, month(m)).map(|t| t.cashless_percent.to_string());
        assert_eq!(cashless(AgencyLevel::District, "2022-06"), None);
        assert_eq!(cashless(AgencyLevel::District, "2022-08").as_deref(), Some("0"));
        assert_eq!(cashless(AgencyLevel::District, "2022-09").as_deref(), Some("80"));
        assert_eq!(cashless(AgencyLevel::Department, "2023-03").as_deref(), Some("100"));
        assert_eq!(cashless(AgencyLevel::Commune, "2022-09").as_deref(), Some("0"));
        assert_eq!(cashless(AgencyLevel::Commune, "2022-10").as_deref(), Some("70"));
        assert_eq!(cashless(AgencyLevel::Commune, "2022-11").as_deref(), Some("100"));
    }

    #[test]
    fn a_correction_for_the_same_month_wins_and_a_repeat_appends_nothing() {
        let at = Utc::now();
        let p = |v: &str| Percent::parse(v).unwrap();
        let first = TargetSet {
            level: AgencyLevel::Commune,
            effective_from: month("2026-01"),
            cashless_percent: p("70"),
            online_percent: p("30"),
            set_at: at,
        };
        let targets = Targets::default().evolve(&first);
        assert_eq!(targets.decide_set(first.clone()).unwrap(), None);
        let corrected = TargetSet { cashless_percent: p("75"), ..first.clone() };
        let decided = targets.decide_set(corrected).unwrap().unwrap();
        let targets = targets.evolve(&decided);
        assert_eq!(targets.in_force(AgencyLevel::Commune, month("2026-05")).unwrap().cashless_percent, p("75"));
        assert!(targets.decide_set(TargetSet { level: AgencyLevel::Province, ..first }).is_err());
    }

    #[test]
    fn rates_are_exact_fractions_ranked_within_their_level_with_shared_ranks() {
        let targets = Targets::default().evolve(&TargetSet {
            level: AgencyLevel::Commune,
            effective_from: month("2026-01"),
            cashless_percent: Percent::parse("66.67").unwrap(),
            online_percent: Percent::parse("30").unwrap(),
            set_at: Utc::now(),
        });
        let league = league(
            Period::Month(month("2026-03")),
            vec![
                entry("X.1", AgencyLevel::Commune, 3, 2, 1),
                entry("X.2", AgencyLevel::Commune, 6, 4, 2),
                entry("X.3", AgencyLevel::Commune, 4, 4, 0),
                entry("X.4", AgencyLevel::Commune, 0, 0, 0),
                entry("D.1", AgencyLevel::District, 2, 1, 1),
            ],
            &targets,
        );
        let row = |c: &str| league.rows.iter().find(|r| r.entry.agency_code.as_str() == c).unwrap();
        // 2/3 is 66.666…%: shown as 66.67 but below a 66.67% target.
        assert_eq!(row("X.1").cashless_rate.unwrap().to_string(), "66.67");
        assert_eq!(row("X.1").cashless_met, Some(false));
        assert_eq!(row("X.3").met, Some(false), "online 0% < 30%");
        assert_eq!(row("X.3").rank, 1);
        // 2/3 and 4/6 tie on both rates; more cases ranks first.
        assert_eq!((row("X.2").rank, row("X.1").rank), (2, 3));
        assert_eq!(row("X.4").met, None);
        assert_eq!(row("X.4").rank, 4);
        assert_eq!(row("D.1").met, None, "no district target");
        assert_eq!(row("X.1").cashless_change_vs_last_year.unwrap().to_string(), "41.67");
        let communes = league.totals.iter().find(|t| t.level == AgencyLevel::Commune).unwrap();
        assert_eq!(communes.counts, Counts { cases: 13, cashless: 10, online: 3 });
        assert_eq!(communes.cashless_rate.unwrap().to_string(), "76.92");
        assert_eq!((communes.met, communes.not_met), (0, 3));
    }

    #[test]
    fn periods_parse_and_step() {
        assert_eq!(
            Period::parse("2026-Q1").unwrap().months(),
            vec![month("2026-01"), month("2026-02"), month("2026-03")]
        );
        assert_eq!(Period::parse("2026-Q1").unwrap().previous().to_string(), "2025-Q4");
        assert_eq!(Period::parse("2026-01").unwrap().previous().to_string(), "2025-12");
        assert!(Period::parse("2026-13").is_err());
        assert!(Period::parse("2026-Q5").is_err());
        assert_eq!(month("2024-02").last_day(), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
    }

    #[test]
    fn a_placement_holds_from_its_date_and_a_parent_must_be_one_level_up() {
        let mut history = PlacementHistory::default();
        let district = |parent: &str, from: Option<&str>| Placement {
            level: Some(AgencyLevel::Commune),
            parent_code: Some(code(parent)),
            placed_from: from.map(|d| d.parse().unwrap()),
        };
        history.record(&district("D.1", None));
        history.record(&district("D.2", Some("2026-03-01")));
        let on = |d: &str| history.on(d.parse().unwrap()).unwrap().parent_code.clone().unwrap();
        assert_eq!(on("2026-02-28").as_str(), "D.1");
        assert_eq!(on("2026-03-01").as_str(), "D.2");
        let ok = check_placement(&code("C.1"), &district("D.1", None), Some(AgencyLevel::District));
        assert_eq!(ok, Ok(()));
        assert!(check_placement(&code("C.1"), &district("D.1", None), Some(AgencyLevel::Province)).is_err());
        assert!(check_placement(&code("C.1"), &district("D.1", None), None).is_err());
        assert!(check_placement(&code("D.1"), &district("D.1", None), Some(AgencyLevel::District)).is_err());
    }
}
