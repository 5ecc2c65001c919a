//! The treasury read model: money collected per agency, day and fee code, split into the
//! agency's retained share and the state budget's, and what was remitted to the State
//! Treasury (KBNN).
//!
//! Documents:
//! - `agency/<agency>`: may the agency retain? (the newest AgencyConfigured)
//! - `schedule/<agency>`: every published schedule version
//! - `day/<agency>/<YYYY-MM-DD>/<fee code>`: collected, retained, payable, remitted
//! - `src/<agency>/<YYYY-MM-DD>/<fee code>/<n>`: the payment events a day document sums, in
//!   documents of [`SOURCES_PER_DOC`] (a busy day's thousands are not rewritten per payment)
//! - `unremitted/<agency>/<YYYY-MM-DD>/<case>`: a case with money collected that day not yet
//!   remitted (one small document each, for the same reason)
//! - `remittance/<agency>/<YYYY-MM-DD>/<remittance id>`: the batches
//! - `voucher/<remittance id>`: a batch's deposit voucher (C1-02/NS): its lines per budget
//!   chapter, sub-item and month, and the cases it covers
//!
//! A day document also records, from the rule in force that day, the fee's effective
//! retention rate, budget sub-item and deposit schedule, and the payment events it sums, so
//! the declaration (01/PHLP) and the deadlines read facts rather than re-deciding them.
//!
//! Each PaymentReceived carries the fee lines it paid (the domain allocated it), so no
//! per-case state is kept here. The split uses the schedule version in force on the collection
//! day *as known when the projection runs*: publishing a corrected retention rate and
//! rebuilding changes the split, never the amounts charged (docs/adr/0004).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::budget::BudgetSubItem;
use feeledger_domain::case_fees::{CaseEvent, RemittedLine};
use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
use feeledger_domain::declaration::{DeclarationPeriod, DeclarationRow, FeeDeclaration, SourceEvent};
use feeledger_domain::fee_schedule::{FeeKind, FeeRule, FeeScheduleVersion};
use feeledger_domain::money::{MoneyError, Percent, Split, Vnd};
use feeledger_domain::remittance_voucher::{VoucherLine, voucher_lines};
use feeledger_domain::treasury::{
    DepositSchedule, NextDeadline, OldestUnremitted, RemittanceSummary, TreasuryReport, TreasuryRow, retention_in,
    split_collection,
};
use feeledger_domain::vietnam_time;
use feeledger_domain::working_days::WorkingCalendar;
use feeledger_infrastructure::codec::{CASE_STREAM_PREFIX, LedgerEvent};
use feeledger_infrastructure::storage::{LeanEvent, Storage};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::documents::DocumentStore;
use crate::runner::{Documents, Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct TreasuryProjection;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgencyDoc {
    name: String,
    retains_fees: bool,
    /// The newest configuration wins, whether it arrives live or was preloaded by `prepare`.
    configured_at: DateTime<Utc>,
}

impl AgencyDoc {
    fn of(agency: &AgencyConfigured) -> Self {
        AgencyDoc { name: agency.name.clone(), retains_fees: agency.retains_fees, configured_at: agency.configured_at }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ScheduleDoc {
    versions: Vec<FeeScheduleVersion>,
}

impl ScheduleDoc {
    fn in_force_on(&self, day: NaiveDate) -> Option<&FeeScheduleVersion> {
        self.versions.iter().filter(|v| v.effective_from <= day).max_by_key(|v| (v.effective_from, v.version))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DayDoc {
    fee_name: String,
    kind: FeeKind,
    collected: Vnd,
    retained: Vnd,
    payable: Vnd,
    remitted: Vnd,
    /// The retention rate applied to the day's money (zero for lệ phí or a non-retaining agency).
    #[serde(default)]
    retention_percent: Percent,
    #[serde(default)]
    budget_sub_item: Option<BudgetSubItem>,
    /// `None`: the rule names none, and [`DepositSchedule::fallback`] applies.
    #[serde(default)]
    deposit_schedule: Option<DepositSchedule>,
    /// How many payment events are summed here (listed in the `src/…` documents).
    #[serde(default)]
    source_count: u32,
    /// The position of the newest of them: an event paying two lines of one fee is one source.
    #[serde(default)]
    last_source: Option<i64>,
}

impl DayDoc {
    fn empty(fee_name: String, kind: FeeKind) -> Self {
        DayDoc {
            fee_name,
            kind,
            collected: Vnd::ZERO,
            retained: Vnd::ZERO,
            payable: Vnd::ZERO,
            remitted: Vnd::ZERO,
            retention_percent: Percent::ZERO,
            budget_sub_item: None,
            deposit_schedule: None,
            source_count: 0,
            last_source: None,
        }
    }
}

/// A remittance's deposit voucher as the treasury sees it (C1-02/NS lines), built from the
/// RemittedToTreasury facts of every case it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherDoc {
    pub remittance_id: Uuid,
    pub agency_code: AgencyCode,
    pub voucher_number: String,
    pub remitted_on: NaiveDate,
    pub up_to: NaiveDate,
    pub lines: Vec<VoucherLine>,
    pub amount: Vnd,
    pub cases: Vec<CaseCode>,
}

impl VoucherDoc {
    /// Adds one case's remitted lines, merging them into the lines of the same chapter,
    /// sub-item and month.
    fn add(&mut self, case: CaseCode, lines: &[RemittedLine]) -> Result<(), MoneyError> {
        for new in voucher_lines(lines)? {
            let same = |l: &&mut VoucherLine| {
                l.budget_chapter == new.budget_chapter
                    && l.budget_sub_item == new.budget_sub_item
                    && l.period == new.period
            };
            match self.lines.iter_mut().find(same) {
                Some(line) => {
                    line.amount = line.amount.checked_add(new.amount)?;
                    for name in new.content {
                        if !line.content.contains(&name) {
                            line.content.push(name);
                        }
                    }
                }
                None => self.lines.push(new),
            }
        }
        self.lines.sort_by(|a, b| {
            (&a.budget_chapter, &a.budget_sub_item, a.period).cmp(&(&b.budget_chapter, &b.budget_sub_item, b.period))
        });
        self.amount = Vnd::sum(self.lines.iter().map(|l| l.amount))?;
        if !self.cases.contains(&case) {
            self.cases.push(case);
        }
        Ok(())
    }
}

/// Payment events per `src/…` document.
const SOURCES_PER_DOC: u32 = 256;

/// Some of the payment events a day document sums, in the order they were applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SourcesDoc {
    sources: Vec<SourceEvent>,
}

fn day_key(agency: &AgencyCode, on: NaiveDate, fee: &FeeCode) -> String {
    format!("day/{agency}/{on}/{fee}")
}

/// The `n`-th sources document of a day document (zero-padded: key order is list order).
fn sources_key(agency: &AgencyCode, on: NaiveDate, fee: &FeeCode, n: u32) -> String {
    format!("src/{agency}/{on}/{fee}/{n:06}")
}

fn unremitted_key(agency: &AgencyCode, on: NaiveDate, case: &str) -> String {
    format!("unremitted/{agency}/{on}/{case}")
}

/// Adds two amounts of a document; an overflow is an unreadable document, never a wrap.
fn add(key: &str, a: Vnd, b: Vnd) -> Result<Vnd, ProjectionError> {
    a.checked_add(b).map_err(|e| doc_error(key, e))
}

fn case_of(event: &LeanEvent) -> Option<CaseCode> {
    event.stream_id.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok())
}

/// The split of money collected for a fee line on a day, by the rules as known now.
fn split_for(
    schedule: Option<&ScheduleDoc>,
    retains: bool,
    day: NaiveDate,
    fee: &FeeCode,
    kind: FeeKind,
    amount: Vnd,
) -> Split {
    let rule = schedule.and_then(|s| s.in_force_on(day));
    split_collection(kind, amount, retains, retention_in(rule, fee))
}

/// The rule of a fee in force on a day, as known now.
fn rule_on(schedule: Option<&ScheduleDoc>, day: NaiveDate, fee: &FeeCode) -> Option<FeeRule> {
    schedule.and_then(|s| s.in_force_on(day)).and_then(|v| v.rule(fee)).cloned()
}

/// The rate a day's money of a fee is split at: the rule's, where the agency may retain a phí.
fn effective_retention(kind: FeeKind, retains: bool, rule: Option<&FeeRule>) -> Percent {
    match (kind, rule) {
        (FeeKind::Phi, Some(rule)) if retains => rule.retention_percent,
        _ => Percent::ZERO,
    }
}

impl Projection for TreasuryProjection {
    const NAME: &'static str = "treasury";
    const VERSION: u32 = 4;
    const EVENT_TYPES: &'static [&'static str] =
        &["AgencyConfigured", "FeeSchedulePublished", "PaymentReceived", "RemittedToTreasury"];

    /// A rebuild applies the fee rules and agency settings as they are known *now*: every
    /// published schedule version (a correction published today changes the split of last
    /// month's payments) and each agency's newest configuration.
    async fn prepare(&self, docs: &mut Documents, store: &Storage) -> Result<(), ProjectionError> {
        let mut schedules: BTreeMap<String, ScheduleDoc> = BTreeMap::new();
        for event in store.events_of_type("FeeSchedulePublished").await? {
            if let LedgerEvent::FeeSchedulePublished(published) = LedgerEvent::decode(&event)? {
                schedules
                    .entry(published.schedule.agency_code.to_string())
                    .or_default()
                    .versions
                    .push(published.schedule);
            }
        }
        for (agency, schedule) in schedules {
            docs.put(&format!("schedule/{agency}"), schedule)?;
        }
        for event in store.events_of_type("AgencyConfigured").await? {
            if let LedgerEvent::AgencyConfigured(agency) = LedgerEvent::decode(&event)? {
                docs.put(&format!("agency/{}", agency.agency_code), AgencyDoc::of(&agency))?;
            }
        }
        Ok(())
    }

    async fn apply(&self, docs: &mut Documents, event: &LeanEvent) -> Result<(), ProjectionError> {
        match &LedgerEvent::decode_lean(event)? {
            LedgerEvent::AgencyConfigured(agency) => {
                let key = format!("agency/{}", agency.agency_code);
                let newer = docs
                    .read::<AgencyDoc, _>(&key, |known| known.is_none_or(|k| k.configured_at <= agency.configured_at))
                    .await?;
                if newer {
                    docs.put(&key, AgencyDoc::of(agency))?;
                }
                Ok(())
            }
            LedgerEvent::FeeSchedulePublished(published) => {
                let key = format!("schedule/{}", published.schedule.agency_code);
                docs.update(&key, ScheduleDoc::default, |schedule| {
                    // Already known when the generation was prepared from the whole log.
                    if !schedule.versions.iter().any(|v| v.version == published.schedule.version) {
                        schedule.versions.push(published.schedule.clone());
                    }
                })
                .await
            }
            LedgerEvent::Case(CaseEvent::PaymentReceived(payment)) if !payment.allocation.is_empty() => {
                let Some(case) = case_of(event) else { return Ok(()) };
                let agency = case.agency();
                let day = vietnam_time::date_of(payment.received_at);
                let retains = docs
                    .read::<AgencyDoc, _>(&format!("agency/{agency}"), |a| a.is_some_and(|a| a.retains_fees))
                    .await?;
                let schedule_key = format!("schedule/{agency}");
                let source = SourceEvent { position: event.position, case_code: case.clone() };
                for paid in &payment.allocation {
                    let (split, rule) = docs
                        .read::<ScheduleDoc, _>(&schedule_key, |s| {
                            (
                                split_for(s, retains, day, &paid.fee_code, paid.kind, paid.amount),
                                rule_on(s, day, &paid.fee_code),
                            )
                        })
                        .await?;
                    let fee_name = rule.as_ref().map_or_else(|| paid.fee_code.to_string(), |r| r.name.clone());
                    let key = day_key(&agency, day, &paid.fee_code);
                    let new_day = || DayDoc::empty(fee_name, paid.kind);
                    let listed_in = docs
                        .update(&key, new_day, |d| -> Result<Option<u32>, ProjectionError> {
                            d.collected = add(&key, d.collected, paid.amount)?;
                            d.retained = add(&key, d.retained, split.retained)?;
                            d.payable = add(&key, d.payable, split.to_budget)?;
                            // One day has one rule in force: these are the same for all its money.
                            d.retention_percent = effective_retention(paid.kind, retains, rule.as_ref());
                            d.budget_sub_item = rule.as_ref().and_then(|r| r.budget_sub_item.clone());
                            d.deposit_schedule = rule.as_ref().and_then(|r| r.deposit_schedule);
                            // Events arrive once and in order: comparing with the last keeps this O(1)
                            // on a busy day.
                            if d.last_source == Some(source.position) {
                                return Ok(None);
                            }
                            d.last_source = Some(source.position);
                            let n = d.source_count / SOURCES_PER_DOC;
                            d.source_count =
                                d.source_count.checked_add(1).ok_or_else(|| doc_error(&key, "too many payments"))?;
                            Ok(Some(n))
                        })
                        .await??;
                    if let Some(n) = listed_in {
                        let list = sources_key(&agency, day, &paid.fee_code, n);
                        docs.update(&list, SourcesDoc::default, |l| l.sources.push(source.clone())).await?;
                    }
                }
                docs.put(&unremitted_key(&agency, day, case.as_ref()), true)
            }
            LedgerEvent::Case(CaseEvent::RemittedToTreasury(remitted)) => {
                let Some(case) = case_of(event) else { return Ok(()) };
                let agency = case.agency();
                let code = case.to_string();
                for line in &remitted.lines {
                    let key = day_key(&agency, line.collected_on, &line.fee_code);
                    let remitted_line = line.to_budget;
                    let new_day = || DayDoc::empty(line.fee_code.to_string(), line.kind);
                    docs.update(&key, new_day, |d| add(&key, d.remitted, remitted_line).map(|sum| d.remitted = sum))
                        .await??;
                    docs.delete(&unremitted_key(&agency, line.collected_on, &code));
                }
                let batch_key = format!("remittance/{agency}/{}/{}", remitted.remitted_on, remitted.remittance_id);
                let new_batch = || RemittanceSummary {
                    remittance_id: remitted.remittance_id,
                    voucher_number: remitted.voucher_number.clone(),
                    remitted_on: remitted.remitted_on,
                    up_to: remitted.up_to,
                    amount: Vnd::ZERO,
                    cases: 0,
                };
                docs.update(&batch_key, new_batch, |b| {
                    b.amount = add(&batch_key, b.amount, remitted.to_budget)?;
                    b.cases += 1;
                    Ok::<(), ProjectionError>(())
                })
                .await??;
                let voucher_key = format!("voucher/{}", remitted.remittance_id);
                let new_voucher = || VoucherDoc {
                    remittance_id: remitted.remittance_id,
                    agency_code: agency.clone(),
                    voucher_number: remitted.voucher_number.clone(),
                    remitted_on: remitted.remitted_on,
                    up_to: remitted.up_to,
                    lines: Vec::new(),
                    amount: Vnd::ZERO,
                    cases: Vec::new(),
                };
                docs.update(&voucher_key, new_voucher, |v| v.add(case.clone(), &remitted.lines))
                    .await?
                    .map_err(|e| doc_error(&voucher_key, e))
            }
            _ => Ok(()),
        }
    }
}

/// Reading the treasury read model.
#[derive(Debug, Clone)]
pub struct TreasuryReports {
    docs: DocumentStore,
    /// Which days deadlines may fall on.
    calendar: std::sync::Arc<WorkingCalendar>,
}

fn doc_error(key: &str, error: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Document { projection: TreasuryProjection::NAME, key: key.to_owned(), reason: error.to_string() }
}

impl TreasuryReports {
    /// Reports whose deadlines follow the Vietnamese public holidays.
    pub fn new(docs: DocumentStore) -> Self {
        TreasuryReports { docs, calendar: std::sync::Arc::new(WorkingCalendar::vietnam()) }
    }

    /// Deadlines by another calendar (e.g. with the configured extra days off).
    pub fn with_calendar(self, calendar: WorkingCalendar) -> Self {
        TreasuryReports { calendar: std::sync::Arc::new(calendar), ..self }
    }

    pub fn calendar(&self) -> &WorkingCalendar {
        &self.calendar
    }

    async fn range<T: for<'de> Deserialize<'de>>(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, T)>, ProjectionError> {
        let rows = self.docs.range(TreasuryProjection::NAME, from, to).await?;
        rows.into_iter()
            .map(|(key, value)| {
                serde_json::from_value(value).map(|doc| (key.clone(), doc)).map_err(|e| doc_error(&key, e))
            })
            .collect()
    }

    async fn doc<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, ProjectionError> {
        match self.docs.get(TreasuryProjection::NAME, key).await? {
            None => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|e| doc_error(key, e)),
        }
    }

    /// The report of `agency` for collections from `from` to `to` (Vietnamese days, inclusive).
    /// Deadlines follow each fee's deposit schedule in working days.
    pub async fn report(
        &self,
        agency: &AgencyCode,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Result<TreasuryReport, ProjectionError> {
        let agency_name = self.doc::<AgencyDoc>(&format!("agency/{agency}")).await?.map(|a| a.name).unwrap_or_default();
        let mut rows: BTreeMap<(FeeKind, String), TreasuryRow> = BTreeMap::new();
        let mut oldest: Option<OldestUnremitted> = None;
        let mut next_deadline = None;
        // Every day up to `to`: the period's rows, and the money still owed at all.
        let days: Vec<(String, DayDoc)> = self.range(&format!("day/{agency}/"), &format!("day/{agency}/{to}~")).await?;
        for (key, day) in days {
            let mut parts = key.rsplitn(3, '/');
            let (Some(fee), Some(date)) = (parts.next(), parts.next()) else { continue };
            let Ok(collected_on) = date.parse::<NaiveDate>() else { continue };
            let unpaid = day.payable.excess_over(day.remitted);
            let due_on =
                day.deposit_schedule.unwrap_or_else(DepositSchedule::fallback).due(collected_on, &self.calendar);
            if !unpaid.is_zero() {
                if oldest.as_ref().is_none_or(|o| collected_on < o.collected_on) {
                    oldest = Some(OldestUnremitted {
                        collected_on,
                        due_on,
                        overdue_days: (today - due_on).num_days().max(0),
                        amount: unpaid,
                    });
                } else if let Some(o) = oldest.as_mut().filter(|o| o.collected_on == collected_on) {
                    // The same day's money of several fees: the day's total, the earliest deadline.
                    o.amount = add(&key, o.amount, unpaid)?;
                    if due_on < o.due_on {
                        o.due_on = due_on;
                        o.overdue_days = (today - due_on).num_days().max(0);
                    }
                }
                next_deadline =
                    NextDeadline::earliest(next_deadline, due_on, unpaid, today).map_err(|e| doc_error(&key, e))?;
            }
            if collected_on < from {
                continue;
            }
            let fee_code = FeeCode::parse(fee).map_err(|e| doc_error(&key, e))?;
            let row = rows
                .entry((day.kind, fee.to_owned()))
                .or_insert_with(|| TreasuryRow::new(fee_code, day.fee_name.clone(), day.kind));
            row.add(day.collected, day.retained, day.payable, day.remitted).map_err(|e| doc_error(&key, e))?;
            row.owe(unpaid, due_on, today).map_err(|e| doc_error(&key, e))?;
        }
        let rows: Vec<TreasuryRow> = rows.into_values().collect();
        let total = TreasuryRow::total_of(
            &rows,
            FeeCode::parse("TONG").map_err(|e| doc_error("total", e))?,
            "Tổng cộng".into(),
        )
        .map_err(|e| doc_error("total", e))?;
        let remittances: Vec<RemittanceSummary> = self
            .range(&format!("remittance/{agency}/{from}"), &format!("remittance/{agency}/{to}~"))
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let report = TreasuryReport {
            agency_code: agency.clone(),
            agency_name,
            from,
            to,
            rows,
            total,
            oldest_unremitted: oldest,
            next_deadline,
            remittances,
        };
        crate::invariants::require(TreasuryProjection::NAME, "treasury report", report.invariants_hold(), &report)?;
        Ok(report)
    }

    /// The fee declaration of `agency` for a month (01/PHLP) or a year (02/PHLP, phí only):
    /// per fee, budget sub-item and retention rate, from the days' documents, each row with the
    /// payment events it sums.
    pub async fn declaration(
        &self,
        agency: &AgencyCode,
        period: DeclarationPeriod,
    ) -> Result<FeeDeclaration, ProjectionError> {
        let (first, last) = match period {
            DeclarationPeriod::Month { year, month } => {
                let month = feeledger_domain::remittance_voucher::CollectionMonth { year, month };
                (month.first_day(), month.last_day())
            }
            DeclarationPeriod::Year { year } => {
                (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year, 12, 31))
            }
        };
        let (Some(first), Some(last)) = (first, last) else {
            return Err(doc_error("declaration", format!("no such period: {}", period.label())));
        };
        let agency_name = self.doc::<AgencyDoc>(&format!("agency/{agency}")).await?.map(|a| a.name).unwrap_or_default();
        type RowKey = (FeeKind, String, Option<BudgetSubItem>, Percent);
        let mut rows: BTreeMap<RowKey, DeclarationRow> = BTreeMap::new();
        let days: Vec<(String, DayDoc)> =
            self.range(&format!("day/{agency}/{first}"), &format!("day/{agency}/{last}~")).await?;
        // Each day document's sources, by its "<day>/<fee>", concatenated in key order.
        let mut sources: BTreeMap<String, Vec<SourceEvent>> = BTreeMap::new();
        let lists: Vec<(String, SourcesDoc)> =
            self.range(&format!("src/{agency}/{first}"), &format!("src/{agency}/{last}~")).await?;
        let (sources_prefix, days_prefix) = (format!("src/{agency}/"), format!("day/{agency}/"));
        for (key, list) in lists {
            let day_and_fee = key
                .strip_prefix(&sources_prefix)
                .and_then(|rest| rest.rsplit_once('/'))
                .map(|(day_and_fee, _)| day_and_fee.to_owned())
                .ok_or_else(|| doc_error(&key, "not a sources key"))?;
            sources.entry(day_and_fee).or_default().extend(list.sources);
        }
        for (key, day) in days {
            if day.collected.is_zero() {
                continue;
            }
            let day_sources =
                key.strip_prefix(&days_prefix).and_then(|day_and_fee| sources.remove(day_and_fee)).unwrap_or_default();
            let Some(fee) = key.rsplit('/').next() else { continue };
            let fee_code = FeeCode::parse(fee).map_err(|e| doc_error(&key, e))?;
            let row_key = (day.kind, fee.to_owned(), day.budget_sub_item.clone(), day.retention_percent);
            let row = rows.entry(row_key).or_insert_with(|| {
                DeclarationRow::new(
                    fee_code,
                    day.fee_name.clone(),
                    day.kind,
                    day.budget_sub_item.clone(),
                    day.retention_percent,
                )
            });
            row.add(day.collected, day.retained, day.payable, day_sources).map_err(|e| doc_error(&key, e))?;
        }
        let declaration = FeeDeclaration::new(agency.clone(), agency_name, period, rows.into_values().collect())
            .map_err(|e| doc_error("declaration", e))?;
        crate::invariants::require(
            TreasuryProjection::NAME,
            "fee declaration",
            declaration.invariants_hold(),
            &declaration,
        )?;
        Ok(declaration)
    }

    /// The deposit voucher of a remittance, if it exists.
    pub async fn voucher(&self, remittance_id: Uuid) -> Result<Option<VoucherDoc>, ProjectionError> {
        self.doc(&format!("voucher/{remittance_id}")).await
    }

    /// The cases with money collected up to `up_to` that is not remitted yet: the candidates
    /// of a remittance (`Ledger::remit` decides from each case's own stream).
    pub async fn unremitted_cases(
        &self,
        agency: &AgencyCode,
        up_to: NaiveDate,
    ) -> Result<Vec<CaseCode>, ProjectionError> {
        let marks = self
            .docs
            .range(TreasuryProjection::NAME, &format!("unremitted/{agency}/"), &format!("unremitted/{agency}/{up_to}~"))
            .await?;
        let mut seen = std::collections::BTreeSet::new();
        let mut cases: Vec<CaseCode> = Vec::new();
        for (key, _) in marks {
            let Some((_, code)) = key.rsplit_once('/') else { continue };
            if seen.insert(code.to_owned()) {
                cases.push(CaseCode::parse(code).map_err(|e| doc_error(&key, e))?);
            }
        }
        Ok(cases)
    }
}
