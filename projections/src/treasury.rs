//! The treasury read model: money collected per agency, day and fee code, split into the
//! agency's retained share and the state budget's, and what was remitted to the State
//! Treasury (KBNN).
//!
//! Documents:
//! - `agency/<agency>`: may the agency retain? (the newest AgencyConfigured)
//! - `schedule/<agency>`: every published schedule version
//! - `day/<agency>/<YYYY-MM-DD>/<fee code>`: collected, retained, payable, remitted
//! - `unremitted/<agency>/<YYYY-MM-DD>`: the cases with money collected that day not yet remitted
//! - `remittance/<agency>/<YYYY-MM-DD>/<remittance id>`: the batches
//!
//! Each PaymentReceived carries the fee lines it paid (the domain allocated it), so no
//! per-case state is kept here. The split uses the schedule version in force on the collection
//! day *as known when the projection runs*: publishing a corrected retention rate and
//! rebuilding changes the split, never the amounts charged (docs/adr/0004).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::case_fees::{CaseEvent, Command, RecordRemittance, RemittedLine};
use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeScheduleVersion};
use feeledger_domain::money::{Split, Vnd};
use feeledger_domain::treasury::{
    OldestUnremitted, RemittanceSummary, TreasuryReport, TreasuryRow, remittance_due, retention_in, split_collection,
};
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::{CASE_STREAM_PREFIX, LedgerEvent};
use feeledger_infrastructure::event_store::{EventMetadata, EventStore, LeanEvent};
use feeledger_infrastructure::ledger::{Ledger, LedgerError};
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
}

/// The cases with money collected on a day that is not remitted yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UnremittedDoc {
    cases: Vec<String>,
}

fn day_key(agency: &AgencyCode, on: NaiveDate, fee: &FeeCode) -> String {
    format!("day/{agency}/{on}/{fee}")
}

fn add(a: Vnd, b: Vnd) -> Vnd {
    a.checked_add(b).unwrap_or(a)
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

impl Projection for TreasuryProjection {
    const NAME: &'static str = "treasury";
    const VERSION: u32 = 2;
    const EVENT_TYPES: &'static [&'static str] =
        &["AgencyConfigured", "FeeSchedulePublished", "PaymentReceived", "RemittedToTreasury"];

    /// A rebuild applies the fee rules and agency settings as they are known *now*: every
    /// published schedule version (a correction published today changes the split of last
    /// month's payments) and each agency's newest configuration.
    async fn prepare(&self, docs: &mut Documents, store: &EventStore) -> Result<(), ProjectionError> {
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

    async fn apply(
        &self,
        docs: &mut Documents,
        event: &LeanEvent,
        decoded: &LedgerEvent,
    ) -> Result<(), ProjectionError> {
        match decoded {
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
                for paid in &payment.allocation {
                    let split = docs
                        .read::<ScheduleDoc, _>(&schedule_key, |s| {
                            split_for(s, retains, day, &paid.fee_code, paid.kind, paid.amount)
                        })
                        .await?;
                    let fee_name = docs
                        .read::<ScheduleDoc, _>(&schedule_key, |s| {
                            s.and_then(|s| s.in_force_on(day))
                                .and_then(|v| v.rule(&paid.fee_code))
                                .map(|r| r.name.clone())
                        })
                        .await?
                        .unwrap_or_else(|| paid.fee_code.to_string());
                    let new_day = || DayDoc {
                        fee_name,
                        kind: paid.kind,
                        collected: Vnd::ZERO,
                        retained: Vnd::ZERO,
                        payable: Vnd::ZERO,
                        remitted: Vnd::ZERO,
                    };
                    docs.update(&day_key(&agency, day, &paid.fee_code), new_day, |d| {
                        d.collected = add(d.collected, paid.amount);
                        d.retained = add(d.retained, split.retained);
                        d.payable = add(d.payable, split.to_budget);
                    })
                    .await?;
                }
                let code = case.to_string();
                docs.update(&format!("unremitted/{agency}/{day}"), UnremittedDoc::default, |u| {
                    if !u.cases.contains(&code) {
                        u.cases.push(code);
                    }
                })
                .await
            }
            LedgerEvent::Case(CaseEvent::RemittedToTreasury(remitted)) => {
                let Some(case) = case_of(event) else { return Ok(()) };
                let agency = case.agency();
                let code = case.to_string();
                for line in &remitted.lines {
                    let key = day_key(&agency, line.collected_on, &line.fee_code);
                    let remitted_line = line.to_budget;
                    let new_day = || DayDoc {
                        fee_name: line.fee_code.to_string(),
                        kind: line.kind,
                        collected: Vnd::ZERO,
                        retained: Vnd::ZERO,
                        payable: Vnd::ZERO,
                        remitted: Vnd::ZERO,
                    };
                    docs.update(&key, new_day, |d| d.remitted = add(d.remitted, remitted_line)).await?;
                    let index = format!("unremitted/{agency}/{}", line.collected_on);
                    let emptied = docs
                        .update(&index, UnremittedDoc::default, |u| {
                            u.cases.retain(|c| *c != code);
                            u.cases.is_empty()
                        })
                        .await?;
                    if emptied {
                        docs.delete(&index);
                    }
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
                    b.amount = add(b.amount, remitted.to_budget);
                    b.cases += 1;
                })
                .await
            }
            _ => Ok(()),
        }
    }
}

/// Reading the treasury read model.
#[derive(Debug, Clone)]
pub struct TreasuryReports {
    docs: DocumentStore,
}

#[derive(Debug, thiserror::Error)]
pub enum RemitError {
    #[error("the amount {given} does not equal what is payable to the budget up to {up_to}: {expected}")]
    AmountMismatch { given: Vnd, expected: Vnd, up_to: NaiveDate },
    #[error("nothing is payable to the budget up to {0}")]
    NothingPayable(NaiveDate),
    #[error("voucher number must be 1 to 50 characters")]
    BadVoucher,
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What one remittance did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remittance {
    pub remittance_id: Uuid,
    pub voucher_number: String,
    pub amount: Vnd,
    pub cases: u32,
}

fn doc_error(key: &str, error: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Document { projection: TreasuryProjection::NAME, key: key.to_owned(), reason: error.to_string() }
}

impl TreasuryReports {
    pub fn new(docs: DocumentStore) -> Self {
        TreasuryReports { docs }
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
        // Every day up to `to`: the period's rows, and the oldest money still owed at all.
        let days: Vec<(String, DayDoc)> = self.range(&format!("day/{agency}/"), &format!("day/{agency}/{to}~")).await?;
        for (key, day) in days {
            let mut parts = key.rsplitn(3, '/');
            let (Some(fee), Some(date)) = (parts.next(), parts.next()) else { continue };
            let Ok(collected_on) = date.parse::<NaiveDate>() else { continue };
            let unpaid = day.payable.excess_over(day.remitted);
            if !unpaid.is_zero() && oldest.as_ref().is_none_or(|o| collected_on < o.collected_on) {
                let due_on = remittance_due(collected_on);
                oldest = Some(OldestUnremitted {
                    collected_on,
                    due_on,
                    overdue_days: (today - due_on).num_days().max(0),
                    amount: unpaid,
                });
            }
            if collected_on < from {
                continue;
            }
            let fee_code = FeeCode::parse(fee).map_err(|e| doc_error(&key, e))?;
            let row = rows
                .entry((day.kind, fee.to_owned()))
                .or_insert_with(|| TreasuryRow::new(fee_code, day.fee_name.clone(), day.kind));
            row.add(day.collected, day.retained, day.payable, day.remitted);
        }
        let rows: Vec<TreasuryRow> = rows.into_values().collect();
        let total = TreasuryRow::total_of(
            &rows,
            FeeCode::parse("TONG").map_err(|e| doc_error("total", e))?,
            "Tổng cộng".into(),
        );
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
            remittances,
        };
        debug_assert!(report.invariants_hold(), "treasury invariants broken: {report:?}");
        Ok(report)
    }

    /// The cases with money collected up to `up_to` that is not remitted yet.
    async fn unremitted_cases(&self, agency: &AgencyCode, up_to: NaiveDate) -> Result<Vec<CaseCode>, ProjectionError> {
        let days: Vec<(String, UnremittedDoc)> =
            self.range(&format!("unremitted/{agency}/"), &format!("unremitted/{agency}/{up_to}~")).await?;
        let mut cases: Vec<CaseCode> = Vec::new();
        for (key, day) in days {
            for code in day.cases {
                let code = CaseCode::parse(&code).map_err(|e| doc_error(&key, e))?;
                if !cases.contains(&code) {
                    cases.push(code);
                }
            }
        }
        Ok(cases)
    }
}

/// What each case still has to remit for collections up to `up_to`, per day and fee line,
/// split by the rules as known now. Read from the cases' own streams (a remittance is rare).
pub async fn payable_up_to(
    ledger: &Ledger,
    reports: &TreasuryReports,
    agency: &AgencyCode,
    up_to: NaiveDate,
) -> Result<Vec<(CaseCode, Vec<RemittedLine>)>, RemitError> {
    let schedule = ScheduleDoc { versions: ledger.fee_schedule(agency).await?.versions().to_vec() };
    let retains = ledger.agency(agency).await?.current.is_some_and(|a| a.retains_fees);
    let mut out = Vec::new();
    for code in reports.unremitted_cases(agency, up_to).await? {
        let record = ledger.load_case(&code).await?;
        // A remittance covers everything collected up to its day.
        let remitted_through = record.state.remittances.iter().map(|r| r.up_to).max();
        let mut grouped: BTreeMap<(NaiveDate, usize), RemittedLine> = BTreeMap::new();
        for payment in &record.state.payments {
            let day = vietnam_time::date_of(payment.received_at);
            if day > up_to || remitted_through.is_some_and(|through| day <= through) {
                continue;
            }
            for paid in &payment.allocation {
                let split = split_for(Some(&schedule), retains, day, &paid.fee_code, paid.kind, paid.amount);
                let entry = grouped.entry((day, paid.line)).or_insert(RemittedLine {
                    collected_on: day,
                    fee_code: paid.fee_code.clone(),
                    kind: paid.kind,
                    to_budget: Vnd::ZERO,
                    retained: Vnd::ZERO,
                });
                entry.to_budget = add(entry.to_budget, split.to_budget);
                entry.retained = add(entry.retained, split.retained);
            }
        }
        if !grouped.is_empty() {
            out.push((code, grouped.into_values().collect()));
        }
    }
    Ok(out)
}

/// A deposit to the treasury, as finance staff enter it.
#[derive(Debug, Clone)]
pub struct RemitRequest {
    pub agency: AgencyCode,
    /// Every payable, unremitted amount collected up to and including this day.
    pub up_to: NaiveDate,
    pub voucher_number: String,
    /// Must equal what is payable (a check against typing errors).
    pub amount: Vnd,
    pub remitted_on: NaiveDate,
}

/// Records a deposit to the treasury: every payable, unremitted amount of the agency collected
/// up to and including `up_to`, which must add up to `amount` (a check against typing errors).
/// Appends RemittedToTreasury to each case it covers (idempotent per remittance id).
pub async fn remit(
    ledger: &Ledger,
    reports: &TreasuryReports,
    request: &RemitRequest,
    metadata: &EventMetadata,
) -> Result<Remittance, RemitError> {
    let RemitRequest { agency, up_to, voucher_number, amount, remitted_on } = request;
    let (up_to, amount, remitted_on) = (*up_to, *amount, *remitted_on);
    let voucher = voucher_number.trim();
    if voucher.is_empty() || voucher.chars().count() > 50 {
        return Err(RemitError::BadVoucher);
    }
    let cases = payable_up_to(ledger, reports, agency, up_to).await?;
    if cases.is_empty() {
        return Err(RemitError::NothingPayable(up_to));
    }
    let expected = Vnd::sum(cases.iter().flat_map(|(_, lines)| lines.iter().map(|l| l.to_budget))).unwrap_or(Vnd::ZERO);
    if expected != amount {
        return Err(RemitError::AmountMismatch { given: amount, expected, up_to });
    }
    let remittance_id = Uuid::now_v7();
    for (code, lines) in &cases {
        let command = Command::RecordRemittance(RecordRemittance {
            remittance_id,
            voucher_number: voucher.to_owned(),
            remitted_on,
            up_to,
            lines: lines.clone(),
        });
        ledger.execute(code, command, metadata, None).await?;
    }
    tracing::info!(agency.code = %agency, remittance.id = %remittance_id, amount_vnd = amount.dong(), cases = cases.len(), "remitted to the treasury");
    Ok(Remittance {
        remittance_id,
        voucher_number: voucher.to_owned(),
        amount,
        cases: u32::try_from(cases.len()).unwrap_or(u32::MAX),
    })
}
