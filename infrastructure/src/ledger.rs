//! The write side: cases, agencies and fee schedules, each command run by the one command loop
//! of [`crate::command`] (idempotency key, read and fold, decide, append at the version read,
//! decide again on a conflict). Receipts number themselves across two streams in one
//! transaction; remittances are in [`crate::remittance`].
//! "Command rejected" ([`LedgerError::Rejected`] and friends) and "could not record"
//! ([`LedgerError::Store`]) are different errors on purpose.

use chrono::{DateTime, Utc};
use feeledger_domain::agency::{Agency, AgencyConfigured, AgencyError};
use feeledger_domain::case_fees::{self, CaseError, CaseFees, Command};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::decider::{AgencyDecider, CaseDecider, FeeScheduleDecider, ResolutionsDecider, TargetsDecider};
use feeledger_domain::fee_schedule::{FeeSchedule, FeeScheduleError, FeeScheduleVersion, PublishFeeSchedule};
use feeledger_domain::oversight::{TARGETS_STREAM, TargetError, TargetSet, Targets, check_placement};
use feeledger_domain::reconciliation::{ItemResolved, Resolutions};
use tracing::Instrument;

use crate::codec::{self, CodecError, LedgerEvent};
use crate::command::{self, Folded, Handled};
use crate::storage::{
    EventMetadata, ExpectedVersion, IdempotencyKey, RecordedEvent, Storage, StoreError, StreamAppend,
};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Rejected(#[from] CaseError),
    #[error(transparent)]
    AgencyRejected(#[from] AgencyError),
    #[error(transparent)]
    ScheduleRejected(#[from] FeeScheduleError),
    #[error(transparent)]
    ResolveRejected(#[from] feeledger_domain::reconciliation::ResolveError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("agency {agency} has no fee schedule in force on {date}")]
    NoScheduleInForce { agency: AgencyCode, date: chrono::NaiveDate },
    #[error("{0}")]
    Invalid(String),
    #[error("stream {0} kept changing while the command was retried; try again")]
    Contended(String),
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyKeyReused(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    ReceiptNumbers(#[from] feeledger_domain::receipt::ReceiptNumberError),
}

impl From<TargetError> for LedgerError {
    fn from(error: TargetError) -> Self {
        LedgerError::Invalid(error.to_string())
    }
}

impl From<StoreError> for LedgerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyKeyReused { key } => LedgerError::IdempotencyKeyReused(key),
            other => LedgerError::Store(other),
        }
    }
}

/// A case as its stream tells it: the folded state, the events, and the version they reach.
#[derive(Debug, Clone)]
pub struct CaseRecord {
    pub code: CaseCode,
    pub state: CaseFees,
    pub events: Vec<RecordedEvent>,
    pub version: i64,
}

impl CaseRecord {
    pub fn exists(&self) -> bool {
        self.version > 0
    }
}

/// Decodes and folds a case stream.
pub fn fold_case(code: CaseCode, events: Vec<RecordedEvent>) -> Result<CaseRecord, CodecError> {
    let Folded { state, events, version } = command::fold::<CaseDecider>(events)?;
    if let Some(reason) = &state.inconsistent {
        // Readers get the state with its mark; every command on it is refused (`decide`).
        tracing::error!(case.code = %code, reason, "a case's history does not add up");
    }
    Ok(CaseRecord { code, state, events, version })
}

/// A case for a reader: refused when its history does not add up, rather than shown with a
/// figure that is wrong.
fn readable(record: CaseRecord) -> Result<CaseRecord, LedgerError> {
    record.state.check()?;
    Ok(record)
}

/// The write side of the ledger.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Storage,
}

impl Ledger {
    pub fn new(store: Storage) -> Self {
        Ledger { store }
    }

    pub fn store(&self) -> &Storage {
        &self.store
    }

    // --- agencies ------------------------------------------------------------------------

    pub async fn agency(&self, code: &AgencyCode) -> Result<Agency, LedgerError> {
        Ok(self.fold_stream::<AgencyDecider>(&codec::agency_stream(code)).await?.state)
    }

    /// Creates or updates an agency; re-sending the same configuration appends nothing.
    pub async fn configure_agency(
        &self,
        wanted: AgencyConfigured,
        metadata: &EventMetadata,
    ) -> Result<AgencyConfigured, LedgerError> {
        let code = wanted.agency_code.clone();
        // A placement in the hierarchy is checked against the parent's level (another stream)
        // before the decider runs on this one.
        if let Some(configured) = self.agency(&code).await?.decide_configure(wanted.clone())?
            && configured.placement.is_placed()
        {
            let parent_level = match &configured.placement.parent_code {
                Some(parent) => self.agency(parent).await?.placements.latest().and_then(|p| p.level),
                None => None,
            };
            check_placement(&configured.agency_code, &configured.placement, parent_level)
                .map_err(|e| LedgerError::Invalid(e.to_string()))?;
        }
        match self.handle::<AgencyDecider>(&codec::agency_stream(&code), wanted, metadata, None).await? {
            Handled::Appended { mut events, .. } => {
                events.pop().ok_or_else(|| LedgerError::NotFound(format!("agency {code}")))
            }
            Handled::Unchanged { state, .. } => {
                state.current.ok_or_else(|| LedgerError::NotFound(format!("agency {code}")))
            }
            Handled::Repeated { .. } => self.require_agency(&code).await,
        }
    }

    /// Every configured agency, folded (its configuration and its placements over time).
    pub async fn agencies(&self) -> Result<std::collections::BTreeMap<AgencyCode, Agency>, LedgerError> {
        let mut agencies: std::collections::BTreeMap<AgencyCode, Agency> = std::collections::BTreeMap::new();
        for event in self.store.events_of_type("AgencyConfigured").await? {
            let configured = codec::decode_as::<AgencyConfigured>(&event)?;
            let agency = agencies.remove(&configured.agency_code).unwrap_or_default();
            agencies.insert(configured.agency_code.clone(), agency.evolve(&configured));
        }
        Ok(agencies)
    }

    // --- oversight targets -----------------------------------------------------------------

    /// Every cashless and online target ever set, in order.
    pub async fn targets(&self) -> Result<Targets, LedgerError> {
        Ok(self.fold_stream::<TargetsDecider>(TARGETS_STREAM).await?.state)
    }

    /// Sets a level's targets from a month on; the same target again appends nothing.
    pub async fn set_target(&self, wanted: TargetSet, metadata: &EventMetadata) -> Result<TargetSet, LedgerError> {
        match self.handle::<TargetsDecider>(TARGETS_STREAM, wanted.clone(), metadata, None).await? {
            Handled::Appended { mut events, .. } => events.pop().ok_or(LedgerError::Contended(TARGETS_STREAM.into())),
            Handled::Unchanged { .. } | Handled::Repeated { .. } => Ok(wanted),
        }
    }

    // --- reconciliation items resolved by hand -------------------------------------------

    /// What finance resolved by hand in `agency`'s reconciliations.
    pub async fn resolutions(&self, agency: &AgencyCode) -> Result<Resolutions, LedgerError> {
        Ok(self.fold_stream::<ResolutionsDecider>(&codec::reconciliation_stream(agency)).await?.state)
    }

    /// Resolves a reconciliation item with a reason, once; the same resolution again appends
    /// nothing and answers the first.
    pub async fn resolve_item(
        &self,
        wanted: ItemResolved,
        metadata: &EventMetadata,
    ) -> Result<ItemResolved, LedgerError> {
        self.require_agency(&wanted.agency_code).await?;
        let stream = codec::reconciliation_stream(&wanted.agency_code);
        let item = wanted.item.clone();
        match self.handle::<ResolutionsDecider>(&stream, wanted, metadata, None).await? {
            Handled::Appended { mut events, .. } => events.pop().ok_or(LedgerError::Contended(stream)),
            Handled::Unchanged { state, .. } => state.items.get(&item).cloned().ok_or(LedgerError::Contended(stream)),
            // No idempotency key is given, so no request is repeated by key.
            Handled::Repeated { .. } => Err(LedgerError::Contended(stream)),
        }
    }

    async fn require_agency(&self, code: &AgencyCode) -> Result<AgencyConfigured, LedgerError> {
        self.agency(code).await?.current.ok_or_else(|| LedgerError::NotFound(format!("agency {code}")))
    }

    // --- fee schedules -------------------------------------------------------------------

    pub async fn fee_schedule(&self, agency: &AgencyCode) -> Result<FeeSchedule, LedgerError> {
        Ok(self.fold_stream::<FeeScheduleDecider>(&codec::fee_schedule_stream(agency)).await?.state)
    }

    pub async fn publish_fee_schedule(
        &self,
        command: PublishFeeSchedule,
        metadata: &EventMetadata,
    ) -> Result<FeeScheduleVersion, LedgerError> {
        self.require_agency(&command.agency_code).await?;
        let stream = codec::fee_schedule_stream(&command.agency_code);
        match self.handle::<FeeScheduleDecider>(&stream, command, metadata, None).await? {
            Handled::Appended { mut events, .. } => {
                events.pop().map(|published| published.schedule).ok_or(LedgerError::Contended(stream))
            }
            // A schedule publication always appends; these cannot happen without a key.
            Handled::Unchanged { .. } | Handled::Repeated { .. } => Err(LedgerError::Contended(stream)),
        }
    }

    /// The schedule version in force on the Vietnamese calendar day of `at`.
    pub async fn schedule_in_force(
        &self,
        agency: &AgencyCode,
        at: DateTime<Utc>,
    ) -> Result<FeeScheduleVersion, LedgerError> {
        let date = feeledger_domain::vietnam_time::date_of(at);
        self.fee_schedule(agency)
            .await?
            .in_force_on(date)
            .cloned()
            .ok_or_else(|| LedgerError::NoScheduleInForce { agency: agency.clone(), date })
    }

    // --- cases ---------------------------------------------------------------------------

    pub async fn load_case(&self, code: &CaseCode) -> Result<CaseRecord, LedgerError> {
        let events = self.store.read_stream(&codec::case_stream(code)).await?;
        Ok(fold_case(code.clone(), events)?)
    }

    /// The case as a reader sees it: from the read replica when there is one, once it has every
    /// write committed before this call (`Storage::for_reads`). Not for deciding commands.
    pub async fn read_case(&self, code: &CaseCode) -> Result<CaseRecord, LedgerError> {
        let events = self.store.for_reads().await.read_stream(&codec::case_stream(code)).await?;
        readable(fold_case(code.clone(), events)?)
    }

    /// Like [`Ledger::read_case`], as the case was at an instant.
    pub async fn read_case_as_of(&self, code: &CaseCode, as_of: DateTime<Utc>) -> Result<CaseRecord, LedgerError> {
        let mut events = self.store.for_reads().await.read_stream(&codec::case_stream(code)).await?;
        events.retain(|e| e.recorded_at <= as_of);
        readable(fold_case(code.clone(), events)?)
    }

    /// The case as it was after its event of version `version` (what a first request produced).
    pub async fn load_case_at_version(&self, code: &CaseCode, version: i64) -> Result<CaseRecord, LedgerError> {
        let mut events = self.store.read_stream(&codec::case_stream(code)).await?;
        events.retain(|e| e.stream_version <= version);
        Ok(fold_case(code.clone(), events)?)
    }

    /// The case as it was at an instant: only events recorded at or before `as_of`.
    pub async fn load_case_as_of(&self, code: &CaseCode, as_of: DateTime<Utc>) -> Result<CaseRecord, LedgerError> {
        let mut events = self.store.read_stream(&codec::case_stream(code)).await?;
        events.retain(|e| e.recorded_at <= as_of);
        Ok(fold_case(code.clone(), events)?)
    }

    /// Runs one command against a case stream, with optimistic retries.
    pub async fn execute(
        &self,
        code: &CaseCode,
        command: Command,
        metadata: &EventMetadata,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CaseRecord, LedgerError> {
        // A payment may make a receipt due (an agency issuing one per payment); it is issued
        // now by the store's clock, never before the payment. Whether it is due depends on the
        // agency's configuration, read in the same statement as the case.
        let paid_at = match &command {
            Command::RecordPayment(payment) => Some(payment.received_at.max(self.store().clock().now())),
            _ => None,
        };
        let beside = match paid_at {
            Some(_) => vec![codec::agency_stream(&code.agency())],
            None => Vec::new(),
        };
        let name = command_name(&command);
        self.execute_beside(code, name, &beside, |_| Ok(command.clone()), metadata, idempotency, paid_at).await
    }

    /// Assesses a case's fees on `agency`'s fee schedule in force on the Vietnamese calendar
    /// day of `at`, read in the same statement as the case (on every attempt, so a schedule
    /// published meanwhile is the one used): `assess` makes the command from that version.
    pub async fn assess(
        &self,
        code: &CaseCode,
        agency: &AgencyCode,
        at: DateTime<Utc>,
        assess: impl Fn(FeeScheduleVersion) -> Command,
        metadata: &EventMetadata,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CaseRecord, LedgerError> {
        let date = feeledger_domain::vietnam_time::date_of(at);
        let command = |schedule: &[RecordedEvent]| {
            let schedule = command::fold::<FeeScheduleDecider>(schedule.to_vec())?.state;
            let version = schedule
                .in_force_on(date)
                .cloned()
                .ok_or_else(|| LedgerError::NoScheduleInForce { agency: agency.clone(), date })?;
            Ok(assess(version))
        };
        let beside = [codec::fee_schedule_stream(agency)];
        self.execute_beside(code, "AssessFees", &beside, command, metadata, idempotency, None).await
    }

    /// A case command made from the streams `beside` (see `Ledger::handle_beside`); after a
    /// payment at `paid_at`, the receipts it makes due, `beside` being the agency's stream.
    #[allow(clippy::too_many_arguments)]
    async fn execute_beside(
        &self,
        code: &CaseCode,
        name: &'static str,
        beside: &[String],
        command: impl Fn(&[RecordedEvent]) -> Result<Command, LedgerError>,
        metadata: &EventMetadata,
        idempotency: Option<&IdempotencyKey>,
        paid_at: Option<DateTime<Utc>>,
    ) -> Result<CaseRecord, LedgerError> {
        let stream = codec::case_stream(code);
        let span = tracing::info_span!("case_command", case.code = %code, command = name);
        async {
            match self.handle_beside::<CaseDecider>(&stream, beside, command, metadata, idempotency).await? {
                // The stored events (positions, recording times) are what a caller is shown:
                // the stream as read and as appended, without reading it again.
                (Handled::Appended { state, version, stream, .. }, besides) => {
                    let record = CaseRecord { code: code.clone(), state, events: stream, version };
                    match paid_at {
                        Some(paid_at) => {
                            let agency = command::fold::<AgencyDecider>(besides)?.state;
                            self.issue_receipts_due_with(record, &agency, metadata, paid_at).await
                        }
                        None => Ok(record),
                    }
                }
                (Handled::Unchanged { .. }, _) => self.load_case(code).await,
                (Handled::Repeated { version }, _) => self.load_case_at_version(code, version).await,
            }
        }
        .instrument(span)
        .await
    }
}

/// How often a receipt is retried when other receipts of the same series take the next number
/// first. Each retry waits a little longer, with jitter, so a burst at the counter drains.
const RECEIPT_ATTEMPTS: u32 = 64;

impl Ledger {
    /// Issues the receipt of a fully paid case, numbered within its template and serial. For an
    /// agency that issues a receipt per payment, issues the receipts its payments still lack.
    pub async fn issue_receipt(
        &self,
        code: &CaseCode,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<CaseRecord, LedgerError> {
        let agency = self.require_agency(&code.agency()).await?;
        if agency.receipt_per_payment {
            let due = self.load_case(code).await?.state.payments_without_receipt();
            if due.is_empty() {
                // Nothing left to issue: let the decider say why (not paid, already issued).
                return self.issue_one_receipt(code, &agency, None, metadata, now).await;
            }
            let mut record = None;
            for payment_id in due {
                record = Some(self.issue_one_receipt(code, &agency, Some(payment_id), metadata, now).await?);
            }
            return record.ok_or_else(|| LedgerError::NotFound(format!("case {code}")));
        }
        self.issue_one_receipt(code, &agency, None, metadata, now).await
    }

    /// After a payment: when the agency issues a receipt per payment, issues the receipts the
    /// case's payments lack (a payment that paid no fee line gets none). Returns the case.
    ///
    /// It runs right after the payment's own transaction; a crash in between leaves the payment
    /// without its receipt until the next payment of the case or `issueReceipt` issues it.
    pub async fn issue_receipts_due(
        &self,
        code: &CaseCode,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<CaseRecord, LedgerError> {
        // The case and its agency's configuration, in one statement.
        let agency_stream = [codec::agency_stream(&code.agency())];
        let (case, agency) = self.store().read_stream_beside(&codec::case_stream(code), &agency_stream).await?;
        let record = fold_case(code.clone(), case)?;
        let agency = command::fold::<AgencyDecider>(agency)?.state;
        self.issue_receipts_due_with(record, &agency, metadata, now).await
    }

    /// Like [`Ledger::issue_receipts_due`], on the case as the caller holds it (just written)
    /// and its agency as read.
    async fn issue_receipts_due_with(
        &self,
        record: CaseRecord,
        agency: &Agency,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<CaseRecord, LedgerError> {
        let code = record.code.clone();
        let agency = match &agency.current {
            Some(agency) if agency.receipt_per_payment => agency.clone(),
            _ => return Ok(record),
        };
        let due = record.state.payments_without_receipt();
        if due.is_empty() {
            return Ok(record);
        }
        let mut record = record;
        for payment_id in due {
            match self.issue_one_receipt(&code, &agency, Some(payment_id), metadata, now).await {
                Ok(issued) => record = issued,
                // A concurrent payment's request issued it first.
                Err(LedgerError::Rejected(CaseError::ReceiptAlreadyIssued(_))) => {
                    record = self.load_case(&code).await?
                }
                // The payment is recorded whatever happens to its receipt; say so loudly.
                Err(error) => {
                    tracing::error!(case.code = %code, payment.id = %payment_id, %error, "the payment's receipt could not be issued");
                    return self.load_case(&code).await;
                }
            }
        }
        Ok(record)
    }

    /// Issues one receipt: of the case paid in full (`payment_id` `None`) or of one payment.
    ///
    /// The number is the next version of the series stream of the year, appended in the same
    /// transaction as the case's ReceiptIssued: two receipts can never share a number, and since
    /// a failed transaction appends neither, no number is ever skipped. Numbering starts at 1
    /// each 1 January (a new series stream); past the configured width it is an error, never a
    /// wrap.
    async fn issue_one_receipt(
        &self,
        code: &CaseCode,
        agency_config: &AgencyConfigured,
        payment_id: Option<uuid::Uuid>,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<CaseRecord, LedgerError> {
        let template = agency_config
            .receipt_template_symbol
            .clone()
            .unwrap_or_else(|| feeledger_domain::receipt::DEFAULT_TEMPLATE_SYMBOL.to_owned());
        let year = chrono::Datelike::year(&feeledger_domain::vietnam_time::date_of(now));
        let serial =
            agency_config.receipt_serial.clone().unwrap_or_else(|| feeledger_domain::receipt::default_serial(year));
        let width = agency_config.receipt_number_width.unwrap_or(feeledger_domain::receipt::DEFAULT_NUMBER_WIDTH);
        let series = feeledger_domain::receipt::series_stream(&code.agency(), &template, &serial, year);
        for attempt in 0..RECEIPT_ATTEMPTS {
            let record = self.load_case(code).await?;
            let series_version = self.store.stream_version(&series).await?;
            let receipt_id = uuid::Uuid::new_v4();
            let number = feeledger_domain::receipt::next_number(series_version, width);
            let issue = Command::IssueReceipt(feeledger_domain::case_fees::IssueReceipt {
                receipt_id,
                template_symbol: template.clone(),
                serial: serial.clone(),
                number: *number.as_ref().unwrap_or(&0),
                now,
                tax_code: agency_config.treasury.tax_code.clone(),
                payment_id,
                number_width: agency_config.receipt_number_width,
            });
            // The case's own refusal (not paid, already issued) comes before "used up".
            let decided = case_fees::decide(&record.state, issue)?;
            let number = number?;
            let case_events = decided
                .into_iter()
                .map(|event| LedgerEvent::Case(event).to_new_event(metadata))
                .collect::<Result<Vec<_>, _>>()?;
            let assigned = LedgerEvent::ReceiptNumberAssigned(feeledger_domain::receipt::ReceiptNumberAssigned {
                number,
                receipt_id,
                case_code: code.clone(),
                agency_code: code.agency(),
                assigned_at: now,
            })
            .to_new_event(metadata)?;
            let appends = vec![
                StreamAppend {
                    stream_id: codec::case_stream(code),
                    expected: ExpectedVersion::from_read(record.version),
                    events: case_events,
                },
                StreamAppend {
                    stream_id: series.clone(),
                    expected: ExpectedVersion::from_read(series_version),
                    events: vec![assigned],
                },
            ];
            match self.store.append_together(appends).await {
                Ok(_) => {
                    tracing::info!(case.code = %code, receipt.number = number, receipt.serial = %serial, "receipt issued");
                    return self.load_case(code).await;
                }
                Err(StoreError::Conflict { .. }) => {
                    let jitter = u64::from(receipt_id.as_bytes()[0]) % 8;
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt.min(20)) + jitter)).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(LedgerError::Contended(series))
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::AssessFees(_) => "AssessFees",
        Command::IssueQr(_) => "IssueQr",
        Command::RecordPayment(_) => "RecordPayment",
        Command::CancelAssessment(_) => "CancelAssessment",
        Command::ExpireQr(_) => "ExpireQr",
        Command::RecordReconciliation(_) => "RecordReconciliation",
        Command::RecordRemittance(_) => "RecordRemittance",
        Command::IssueReceipt(_) => "IssueReceipt",
        Command::CancelReceipt(_) => "CancelReceipt",
        Command::RefundOverpayment(_) => "RefundOverpayment",
    }
}
