//! Command handling: look the facts up, let the domain decide, append what it decided.
//!
//! Every command follows the same path: (1) if it carries an idempotency key already used for
//! the same request, return the state that request produced; (2) read the stream and fold it;
//! (3) `decide`; (4) append the events with the version read as the expected version, in one
//! transaction with the idempotency key; (5) on a concurrent change, start again from (1).
//! "Command rejected" ([`LedgerError::Rejected`] and friends) and "could not record"
//! ([`LedgerError::Store`]) are different errors on purpose.

use chrono::{DateTime, Utc};
use feeledger_domain::agency::{Agency, AgencyConfigured, AgencyError};
use feeledger_domain::case_fees::{self, CaseError, CaseEvent, CaseFees, Command};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::fee_schedule::{
    FeeSchedule, FeeScheduleError, FeeSchedulePublished, FeeScheduleVersion, PublishFeeSchedule,
};
use feeledger_domain::oversight::{TARGETS_STREAM, TargetSet, Targets, check_placement};
use tracing::Instrument;

use crate::codec::{self, CodecError, LedgerEvent};
use crate::event_store::{
    AppendOutcome, EventMetadata, EventStore, ExpectedVersion, IdempotencyKey, RecordedEvent, StoreError, StreamAppend,
};

/// How often a command is re-decided after losing a race for its stream before giving up.
const MAX_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Rejected(#[from] CaseError),
    #[error(transparent)]
    AgencyRejected(#[from] AgencyError),
    #[error(transparent)]
    ScheduleRejected(#[from] FeeScheduleError),
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
    let mut state = CaseFees::default();
    for event in &events {
        if let LedgerEvent::Case(case_event) = LedgerEvent::decode(event)? {
            state = case_fees::evolve(state, &case_event);
        }
    }
    let version = events.last().map_or(0, |e| e.stream_version);
    Ok(CaseRecord { code, state, events, version })
}

/// The write side of the ledger.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: EventStore,
}

impl Ledger {
    pub fn new(store: EventStore) -> Self {
        Ledger { store }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    // --- agencies ------------------------------------------------------------------------

    pub async fn agency(&self, code: &AgencyCode) -> Result<Agency, LedgerError> {
        let events = self.store.read_stream(&codec::agency_stream(code)).await?;
        let mut agency = Agency::default();
        for event in &events {
            agency = agency.evolve(&codec::decode_as::<AgencyConfigured>(event)?);
        }
        Ok(agency)
    }

    /// Creates or updates an agency; re-sending the same configuration appends nothing.
    pub async fn configure_agency(
        &self,
        wanted: AgencyConfigured,
        metadata: &EventMetadata,
    ) -> Result<AgencyConfigured, LedgerError> {
        let stream = codec::agency_stream(&wanted.agency_code);
        for _ in 0..MAX_ATTEMPTS {
            let events = self.store.read_stream(&stream).await?;
            let mut agency = Agency::default();
            for event in &events {
                agency = agency.evolve(&codec::decode_as::<AgencyConfigured>(event)?);
            }
            let Some(configured) = agency.decide_configure(wanted.clone())? else {
                return agency.current.ok_or_else(|| LedgerError::NotFound(format!("agency {}", wanted.agency_code)));
            };
            if configured.placement.is_placed() {
                let parent_level = match &configured.placement.parent_code {
                    Some(parent) => self.agency(parent).await?.placements.latest().and_then(|p| p.level),
                    None => None,
                };
                check_placement(&configured.agency_code, &configured.placement, parent_level)
                    .map_err(|e| LedgerError::Invalid(e.to_string()))?;
            }
            let version = events.last().map_or(0, |e| e.stream_version);
            let row = LedgerEvent::AgencyConfigured(configured.clone()).to_new_event(metadata)?;
            match self.store.append(&stream, ExpectedVersion::from_read(version), vec![row], None).await {
                Ok(_) => return Ok(configured),
                Err(StoreError::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(LedgerError::Contended(stream))
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
        let mut targets = Targets::default();
        for event in self.store.read_stream(TARGETS_STREAM).await? {
            targets = targets.evolve(&codec::decode_as::<TargetSet>(&event)?);
        }
        Ok(targets)
    }

    /// Sets a level's targets from a month on; the same target again appends nothing.
    pub async fn set_target(&self, wanted: TargetSet, metadata: &EventMetadata) -> Result<TargetSet, LedgerError> {
        for _ in 0..MAX_ATTEMPTS {
            let events = self.store.read_stream(TARGETS_STREAM).await?;
            let mut targets = Targets::default();
            for event in &events {
                targets = targets.evolve(&codec::decode_as::<TargetSet>(event)?);
            }
            let Some(set) = targets.decide_set(wanted.clone()).map_err(|e| LedgerError::Invalid(e.to_string()))? else {
                return Ok(wanted);
            };
            let version = events.last().map_or(0, |e| e.stream_version);
            let row = LedgerEvent::TargetSet(set.clone()).to_new_event(metadata)?;
            match self.store.append(TARGETS_STREAM, ExpectedVersion::from_read(version), vec![row], None).await {
                Ok(_) => return Ok(set),
                Err(StoreError::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(LedgerError::Contended(TARGETS_STREAM.into()))
    }

    async fn require_agency(&self, code: &AgencyCode) -> Result<AgencyConfigured, LedgerError> {
        self.agency(code).await?.current.ok_or_else(|| LedgerError::NotFound(format!("agency {code}")))
    }

    // --- fee schedules -------------------------------------------------------------------

    pub async fn fee_schedule(&self, agency: &AgencyCode) -> Result<FeeSchedule, LedgerError> {
        let events = self.store.read_stream(&codec::fee_schedule_stream(agency)).await?;
        let mut schedule = FeeSchedule::default();
        for event in &events {
            schedule = schedule.evolve(&codec::decode_as::<FeeSchedulePublished>(event)?);
        }
        Ok(schedule)
    }

    pub async fn publish_fee_schedule(
        &self,
        command: PublishFeeSchedule,
        metadata: &EventMetadata,
    ) -> Result<FeeScheduleVersion, LedgerError> {
        self.require_agency(&command.agency_code).await?;
        let stream = codec::fee_schedule_stream(&command.agency_code);
        for _ in 0..MAX_ATTEMPTS {
            let schedule = self.fee_schedule(&command.agency_code).await?;
            let version = schedule.versions().len() as i64;
            let published = schedule.decide_publish(command.clone())?;
            let row = LedgerEvent::FeeSchedulePublished(published.clone()).to_new_event(metadata)?;
            match self.store.append(&stream, ExpectedVersion::from_read(version), vec![row], None).await {
                Ok(_) => return Ok(published.schedule),
                Err(StoreError::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(LedgerError::Contended(stream))
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
    /// write committed before this call (`EventStore::for_reads`). Not for deciding commands.
    pub async fn read_case(&self, code: &CaseCode) -> Result<CaseRecord, LedgerError> {
        let events = self.store.for_reads().await.read_stream(&codec::case_stream(code)).await?;
        Ok(fold_case(code.clone(), events)?)
    }

    /// Like [`Ledger::read_case`], as the case was at an instant.
    pub async fn read_case_as_of(&self, code: &CaseCode, as_of: DateTime<Utc>) -> Result<CaseRecord, LedgerError> {
        let mut events = self.store.for_reads().await.read_stream(&codec::case_stream(code)).await?;
        events.retain(|e| e.recorded_at <= as_of);
        Ok(fold_case(code.clone(), events)?)
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
        let stream = codec::case_stream(code);
        let span = tracing::info_span!("case_command", case.code = %code, command = command_name(&command));
        async {
            for attempt in 1..=MAX_ATTEMPTS {
                if let Some(key) = idempotency
                    && let Some((_, version)) = self.store.idempotency_record(key).await?
                {
                    tracing::info!(idempotency.key = %key.key, "repeated request: returning the first result");
                    return self.load_case_at_version(code, version).await;
                }
                let record = self.load_case(code).await?;
                let decided: Vec<CaseEvent> = case_fees::decide(&record.state, command.clone())?;
                if decided.is_empty() {
                    return Ok(record);
                }
                let rows = decided
                    .into_iter()
                    .map(|event| LedgerEvent::Case(event).to_new_event(metadata))
                    .collect::<Result<Vec<_>, _>>()?;
                let expected = ExpectedVersion::from_read(record.version);
                match self.store.append(&stream, expected, rows, idempotency).await {
                    Ok(AppendOutcome::Appended(_)) => return self.load_case(code).await,
                    Ok(AppendOutcome::AlreadyDone { stream_version, .. }) => {
                        return self.load_case_at_version(code, stream_version).await;
                    }
                    Err(StoreError::Conflict { .. }) => {
                        tracing::debug!(attempt, "stream changed concurrently; deciding again");
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            Err(LedgerError::Contended(stream.clone()))
        }
        .instrument(span)
        .await
    }
}

/// How often a receipt is retried when other receipts of the same series take the next number
/// first. Each retry waits a little longer, with jitter, so a burst at the counter drains.
const RECEIPT_ATTEMPTS: u32 = 64;

impl Ledger {
    /// Issues the receipt of a fully paid case, numbered within its template and serial.
    ///
    /// The number is the next version of the series stream, appended in the same transaction as
    /// the case's ReceiptIssued: two receipts can never share a number, and since a failed
    /// transaction appends neither, no number is ever skipped.
    pub async fn issue_receipt(
        &self,
        code: &CaseCode,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<CaseRecord, LedgerError> {
        let agency_config = self.require_agency(&code.agency()).await?;
        let template = agency_config
            .receipt_template_symbol
            .clone()
            .unwrap_or_else(|| feeledger_domain::receipt::DEFAULT_TEMPLATE_SYMBOL.to_owned());
        let year = chrono::Datelike::year(&feeledger_domain::vietnam_time::date_of(now));
        let serial =
            agency_config.receipt_serial.clone().unwrap_or_else(|| feeledger_domain::receipt::default_serial(year));
        let series = feeledger_domain::receipt::series_stream(&code.agency(), &template, &serial);
        for attempt in 0..RECEIPT_ATTEMPTS {
            let record = self.load_case(code).await?;
            let series_version = self.store.stream_version(&series).await?;
            let number =
                u32::try_from(series_version + 1).map_err(|_| LedgerError::Invalid("receipt series is full".into()))?;
            let receipt_id = uuid::Uuid::new_v4();
            let issue = Command::IssueReceipt(feeledger_domain::case_fees::IssueReceipt {
                receipt_id,
                template_symbol: template.clone(),
                serial: serial.clone(),
                number,
                now,
            });
            let case_events = case_fees::decide(&record.state, issue)?
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
    }
}
