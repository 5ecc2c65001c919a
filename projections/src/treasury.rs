//! The treasury read model: money collected per agency, day and fee code, split into the
//! agency's retained share and the state budget's, and what was remitted to the State
//! Treasury (KBNN).
//!
//! Documents:
//! - `agency/<agency>`: may the agency retain? (AgencyConfigured)
//! - `schedule/<agency>`: every published schedule version (FeeSchedulePublished)
//! - `case/<case>`: the lines, what each has received, and every allocation (collection day,
//!   line, amount, split, remitted or not)
//! - `day/<agency>/<YYYY-MM-DD>/<fee code>`: collected, retained, payable, remitted
//! - `unremitted/<agency>/<case>`: the cases that still have money to remit
//! - `remittance/<agency>/<YYYY-MM-DD>/<remittance id>`: the batches
//!
//! The split uses the schedule version in force on the collection day *as known when the
//! projection runs*: publishing a corrected retention rate and rebuilding changes the split,
//! never the amounts charged.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::allocation::{self, LineShare};
use feeledger_domain::case_fees::{AssessedLine, CaseEvent, Command, RecordRemittance, RemittedLine};
use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeSchedule, FeeScheduleVersion};
use feeledger_domain::money::Vnd;
use feeledger_domain::treasury::{
    OldestUnremitted, RemittanceSummary, TreasuryReport, TreasuryRow, remittance_due, retention_in, split_collection,
};
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::LedgerEvent;
use feeledger_infrastructure::event_store::{EventMetadata, RecordedEvent};
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
    fn of(agency: &feeledger_domain::agency::AgencyConfigured) -> Self {
        AgencyDoc { name: agency.name.clone(), retains_fees: agency.retains_fees, configured_at: agency.configured_at }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ScheduleDoc {
    versions: Vec<FeeScheduleVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AllocationDoc {
    collected_on: NaiveDate,
    line: usize,
    collected: Vnd,
    retained: Vnd,
    payable: Vnd,
    remitted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CaseDoc {
    agency: AgencyCode,
    lines: Vec<AssessedLine>,
    paid: Vec<Vnd>,
    cancelled: bool,
    allocations: Vec<AllocationDoc>,
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

fn day_key(agency: &AgencyCode, on: NaiveDate, fee: &FeeCode) -> String {
    format!("day/{agency}/{on}/{fee}")
}

fn add(a: Vnd, b: Vnd) -> Vnd {
    a.checked_add(b).unwrap_or(a)
}

impl Projection for TreasuryProjection {
    const NAME: &'static str = "treasury";
    const VERSION: u32 = 1;

    fn wants(event_type: &str) -> bool {
        matches!(
            event_type,
            "AgencyConfigured"
                | "FeeSchedulePublished"
                | "FeeAssessed"
                | "AssessmentCancelled"
                | "PaymentReceived"
                | "RemittedToTreasury"
        )
    }

    /// A rebuild applies the fee rules and agency settings as they are known *now*: every
    /// published schedule version (a correction published today changes the split of last
    /// month's payments) and each agency's latest configuration.
    async fn prepare(
        &self,
        docs: &mut Documents,
        store: &feeledger_infrastructure::event_store::EventStore,
    ) -> Result<(), ProjectionError> {
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
            docs.put(&format!("schedule/{agency}"), &schedule)?;
        }
        for event in store.events_of_type("AgencyConfigured").await? {
            if let LedgerEvent::AgencyConfigured(agency) = LedgerEvent::decode(&event)? {
                docs.put(&format!("agency/{}", agency.agency_code), &AgencyDoc::of(&agency))?;
            }
        }
        Ok(())
    }

    async fn apply(
        &self,
        docs: &mut Documents,
        event: &RecordedEvent,
        decoded: &LedgerEvent,
    ) -> Result<(), ProjectionError> {
        match decoded {
            LedgerEvent::AgencyConfigured(agency) => {
                let key = format!("agency/{}", agency.agency_code);
                let newer =
                    docs.get::<AgencyDoc>(&key).await?.is_none_or(|known| known.configured_at <= agency.configured_at);
                if newer {
                    docs.put(&key, &AgencyDoc::of(agency))?;
                }
                Ok(())
            }
            LedgerEvent::FeeSchedulePublished(published) => {
                let key = format!("schedule/{}", published.schedule.agency_code);
                let mut schedule: ScheduleDoc = docs.get(&key).await?.unwrap_or_default();
                // Already known when the generation was prepared from the whole log.
                if !schedule.versions.iter().any(|v| v.version == published.schedule.version) {
                    schedule.versions.push(published.schedule.clone());
                    docs.put(&key, &schedule)?;
                }
                Ok(())
            }
            LedgerEvent::Case(CaseEvent::FeeAssessed(assessed)) => {
                let doc = CaseDoc {
                    agency: assessed.agency_code.clone(),
                    paid: vec![Vnd::ZERO; assessed.lines.len()],
                    lines: assessed.lines.clone(),
                    cancelled: false,
                    allocations: Vec::new(),
                };
                docs.put(&format!("case/{}", assessed.case_code), &doc)
            }
            LedgerEvent::Case(CaseEvent::AssessmentCancelled(_)) => {
                let key = case_key(event);
                if let Some(mut case) = docs.get::<CaseDoc>(&key).await? {
                    case.cancelled = true;
                    docs.put(&key, &case)?;
                }
                Ok(())
            }
            LedgerEvent::Case(CaseEvent::PaymentReceived(payment)) => {
                self.collect(docs, event, payment.amount, payment.received_at).await
            }
            LedgerEvent::Case(CaseEvent::RemittedToTreasury(remitted)) => {
                let key = case_key(event);
                let Some(mut case) = docs.get::<CaseDoc>(&key).await? else { return Ok(()) };
                for line in &remitted.lines {
                    let day = day_key(&case.agency, line.collected_on, &line.fee_code);
                    if let Some(mut doc) = docs.get::<DayDoc>(&day).await? {
                        doc.remitted = add(doc.remitted, line.to_budget);
                        docs.put(&day, &doc)?;
                    }
                }
                for allocation in case.allocations.iter_mut().filter(|a| a.collected_on <= remitted.up_to) {
                    allocation.remitted = true;
                }
                let code = event.stream_id.trim_start_matches(feeledger_infrastructure::codec::CASE_STREAM_PREFIX);
                if case.allocations.iter().all(|a| a.remitted) {
                    docs.delete(&format!("unremitted/{}/{code}", case.agency));
                }
                let batch_key =
                    format!("remittance/{}/{}/{}", case.agency, remitted.remitted_on, remitted.remittance_id);
                let mut batch = docs.get::<RemittanceSummary>(&batch_key).await?.unwrap_or(RemittanceSummary {
                    remittance_id: remitted.remittance_id,
                    voucher_number: remitted.voucher_number.clone(),
                    remitted_on: remitted.remitted_on,
                    up_to: remitted.up_to,
                    amount: Vnd::ZERO,
                    cases: 0,
                });
                batch.amount = add(batch.amount, remitted.to_budget);
                batch.cases += 1;
                docs.put(&batch_key, &batch)?;
                docs.put(&key, &case)
            }
            _ => Ok(()),
        }
    }
}

fn case_key(event: &RecordedEvent) -> String {
    format!("case/{}", event.stream_id.trim_start_matches(feeledger_infrastructure::codec::CASE_STREAM_PREFIX))
}

impl TreasuryProjection {
    /// Allocates a payment to the case's lines and books what each line received on the day.
    async fn collect(
        &self,
        docs: &mut Documents,
        event: &RecordedEvent,
        amount: Vnd,
        received_at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let key = case_key(event);
        let Some(mut case) = docs.get::<CaseDoc>(&key).await? else { return Ok(()) };
        if case.cancelled {
            // Money on a cancelled case is not a collected fee: it waits to be refunded.
            return Ok(());
        }
        let collected_on = vietnam_time::date_of(received_at);
        let agency = case.agency.clone();
        let retains = docs.get::<AgencyDoc>(&format!("agency/{agency}")).await?.is_some_and(|a| a.retains_fees);
        let schedule: ScheduleDoc = docs.get(&format!("schedule/{agency}")).await?.unwrap_or_default();
        let history = schedule.versions.iter().fold(FeeSchedule::default(), |s, v| {
            s.evolve(&feeledger_domain::fee_schedule::FeeSchedulePublished { schedule: v.clone() })
        });
        let rule = history.in_force_on(collected_on);
        let shares: Vec<LineShare> = allocation::allocate(&case.lines, &mut case.paid, amount).shares;
        for share in shares {
            let Some(line) = case.lines.get(share.line) else { continue };
            let split = split_collection(line.kind, share.amount, retains, retention_in(rule, &line.fee_code));
            case.allocations.push(AllocationDoc {
                collected_on,
                line: share.line,
                collected: share.amount,
                retained: split.retained,
                payable: split.to_budget,
                remitted: false,
            });
            let day = day_key(&agency, collected_on, &line.fee_code);
            let mut doc = docs.get::<DayDoc>(&day).await?.unwrap_or(DayDoc {
                fee_name: line.name.clone(),
                kind: line.kind,
                collected: Vnd::ZERO,
                retained: Vnd::ZERO,
                payable: Vnd::ZERO,
                remitted: Vnd::ZERO,
            });
            doc.collected = add(doc.collected, share.amount);
            doc.retained = add(doc.retained, split.retained);
            doc.payable = add(doc.payable, split.to_budget);
            docs.put(&day, &doc)?;
        }
        let code = event.stream_id.trim_start_matches(feeledger_infrastructure::codec::CASE_STREAM_PREFIX);
        if case.allocations.iter().any(|a| !a.remitted) {
            docs.put(&format!("unremitted/{agency}/{code}"), &true)?;
        }
        docs.put(&key, &case)
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
                serde_json::from_value(value).map(|doc| (key.clone(), doc)).map_err(|e| ProjectionError::Document {
                    projection: TreasuryProjection::NAME,
                    key,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The report of `agency` for collections from `from` to `to` (Vietnamese days, inclusive).
    pub async fn report(
        &self,
        agency: &AgencyCode,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Result<TreasuryReport, ProjectionError> {
        let agency_name = self
            .docs
            .get(TreasuryProjection::NAME, &format!("agency/{agency}"))
            .await?
            .and_then(|v| serde_json::from_value::<AgencyDoc>(v).ok())
            .map(|a| a.name)
            .unwrap_or_default();
        let mut rows: BTreeMap<(FeeKind, String), TreasuryRow> = BTreeMap::new();
        let mut oldest: Option<OldestUnremitted> = None;
        // Every day up to `to`: the period's rows, and the oldest money still owed at all.
        let days: Vec<(String, DayDoc)> = self.range(&format!("day/{agency}/"), &format!("day/{agency}/{to}~")).await?;
        for (key, day) in days {
            let mut parts = key.rsplitn(3, '/');
            let (Some(fee), Some(date)) = (parts.next(), parts.next()) else { continue };
            let Ok(collected_on) = date.parse::<NaiveDate>() else { continue };
            let unpaid = day.payable.excess_over(day.remitted);
            if !unpaid.is_zero() && oldest.is_none() {
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

    /// What each case still has to remit for collections up to `up_to`, grouped per day and fee.
    pub async fn payable_up_to(
        &self,
        agency: &AgencyCode,
        up_to: NaiveDate,
    ) -> Result<Vec<(CaseCode, Vec<RemittedLine>)>, ProjectionError> {
        let index: Vec<(String, bool)> =
            self.range(&format!("unremitted/{agency}/"), &format!("unremitted/{agency}/~")).await?;
        let mut out = Vec::new();
        for (key, _) in index {
            let Some(code) = key.rsplit('/').next() else { continue };
            let Some(value) = self.docs.get(TreasuryProjection::NAME, &format!("case/{code}")).await? else { continue };
            let case: CaseDoc = serde_json::from_value(value).map_err(|e| doc_error(code, e))?;
            let mut grouped: BTreeMap<(NaiveDate, usize), RemittedLine> = BTreeMap::new();
            for a in case.allocations.iter().filter(|a| !a.remitted && a.collected_on <= up_to) {
                let Some(line) = case.lines.get(a.line) else { continue };
                let entry = grouped.entry((a.collected_on, a.line)).or_insert(RemittedLine {
                    collected_on: a.collected_on,
                    fee_code: line.fee_code.clone(),
                    kind: line.kind,
                    to_budget: Vnd::ZERO,
                    retained: Vnd::ZERO,
                });
                entry.to_budget = add(entry.to_budget, a.payable);
                entry.retained = add(entry.retained, a.retained);
            }
            if !grouped.is_empty() {
                out.push((CaseCode::parse(code).map_err(|e| doc_error(code, e))?, grouped.into_values().collect()));
            }
        }
        Ok(out)
    }
}

fn doc_error(key: &str, error: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Document { projection: TreasuryProjection::NAME, key: key.to_owned(), reason: error.to_string() }
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
    let cases = reports.payable_up_to(agency, up_to).await?;
    let expected = Vnd::sum(cases.iter().flat_map(|(_, lines)| lines.iter().map(|l| l.to_budget))).unwrap_or(Vnd::ZERO);
    if expected.is_zero() && cases.is_empty() {
        return Err(RemitError::NothingPayable(up_to));
    }
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
