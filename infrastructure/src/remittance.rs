//! Recording a deposit to the State Treasury: one transaction, whatever its size.
//!
//! The rules live in `feeledger_domain::remittance`; this is the command around them:
//!
//! 1. The voucher's stream (`remittance-<id>`, the id derived from agency and voucher number):
//!    if it holds the deposit already, a retried request gets that first result; a different
//!    deposit under the same number is refused.
//! 2. Each candidate case is read and folded; what it still has to remit is decided by the
//!    domain from its own history (the candidates come from the treasury read model, which may
//!    lag: a case it does not list yet is simply not covered, and the amount check says so).
//! 3. The sum must equal the voucher's amount.
//! 4. The voucher's event and every case's `RemittedToTreasury` are appended in **one
//!    transaction**, each stream at the version read: a deposit is recorded whole or not at
//!    all, and a payment arriving on a case meanwhile makes the whole command decide again.

use chrono::{DateTime, Utc};
use feeledger_domain::case_fees::{CaseEvent, Command, RecordRemittance, RemittedLine};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::remittance::{
    RemitContext, RemitError, RemitRequest, RemittanceRecorded, decide_existing, decide_remittance, remittable_lines,
};
use feeledger_domain::{case_fees, money::Vnd};

use crate::codec::{self, LedgerEvent};
use crate::ledger::{Ledger, LedgerError};
use crate::storage::{EventMetadata, ExpectedVersion, StoreError, StreamAppend};

/// How often the whole deposit is decided again after a case changed under it.
const MAX_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RemittanceError {
    #[error(transparent)]
    Rejected(#[from] RemitError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<StoreError> for RemittanceError {
    fn from(error: StoreError) -> Self {
        RemittanceError::Ledger(error.into())
    }
}

impl From<crate::codec::CodecError> for RemittanceError {
    fn from(error: crate::codec::CodecError) -> Self {
        RemittanceError::Ledger(error.into())
    }
}

/// What one deposit recorded (or had recorded, for a retried request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remittance {
    pub remittance_id: uuid::Uuid,
    pub voucher_number: String,
    pub amount: Vnd,
    pub cases: u32,
    /// False when this request repeated one already recorded.
    pub newly_recorded: bool,
}

impl Remittance {
    fn of(recorded: &RemittanceRecorded, newly_recorded: bool) -> Self {
        Remittance {
            remittance_id: recorded.remittance_id,
            voucher_number: recorded.voucher_number.clone(),
            amount: recorded.amount,
            cases: recorded.cases,
            newly_recorded,
        }
    }
}

impl Ledger {
    /// Records a deposit covering every payable, unremitted amount the `candidates` collected up
    /// to `request.up_to`; see the module documentation.
    pub async fn remit(
        &self,
        request: &RemitRequest,
        candidates: &[CaseCode],
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Remittance, RemittanceError> {
        request.voucher()?;
        let stream = codec::remittance_stream(request.remittance_id()?);
        for attempt in 1..=MAX_ATTEMPTS {
            if let Some(first) = decide_existing(self.recorded_remittance(&stream).await?.as_ref(), request)? {
                tracing::info!(remittance.id = %first.remittance_id, "repeated remittance: returning the first result");
                return Ok(Remittance::of(&first, false));
            }
            let (payable, versions) = self.payable(&request.agency, request, candidates).await?;
            let recorded = decide_remittance(request, &payable, now)?;
            let mut appends = Vec::with_capacity(payable.len() + 1);
            appends.push(StreamAppend {
                stream_id: stream.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![LedgerEvent::RemittanceRecorded(recorded.clone()).to_new_event(metadata)?],
            });
            for ((code, lines), (state, version)) in payable.into_iter().zip(versions) {
                let command = Command::RecordRemittance(RecordRemittance {
                    remittance_id: recorded.remittance_id,
                    voucher_number: recorded.voucher_number.clone(),
                    remitted_on: recorded.remitted_on,
                    up_to: recorded.up_to,
                    lines,
                });
                let events: Vec<CaseEvent> = case_fees::decide(&state, command).map_err(LedgerError::from)?;
                let rows = events
                    .into_iter()
                    .map(|event| LedgerEvent::Case(event).to_new_event(metadata))
                    .collect::<Result<Vec<_>, _>>()?;
                appends.push(StreamAppend {
                    stream_id: codec::case_stream(&code),
                    expected: ExpectedVersion::from_read(version),
                    events: rows,
                });
            }
            match self.store().append_together(appends).await {
                Ok(_) => {
                    tracing::info!(
                        agency.code = %request.agency,
                        remittance.id = %recorded.remittance_id,
                        amount_vnd = recorded.amount.dong(),
                        cases = recorded.cases,
                        "remitted to the treasury"
                    );
                    return Ok(Remittance::of(&recorded, true));
                }
                // A case changed, or the same voucher was recorded concurrently: decide again
                // (the second finds the voucher's stream and returns its result).
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(attempt, "a stream changed under the remittance; deciding again");
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(LedgerError::Contended(stream).into())
    }

    async fn recorded_remittance(&self, stream: &str) -> Result<Option<RemittanceRecorded>, RemittanceError> {
        let events = self.store().read_stream(stream).await?;
        let mut recorded = None;
        for event in &events {
            if let LedgerEvent::RemittanceRecorded(r) = LedgerEvent::decode(event)? {
                recorded = Some(r);
            }
        }
        Ok(recorded)
    }

    /// Each candidate case with something to remit, its lines, and the state and version it
    /// was decided on.
    #[allow(clippy::type_complexity, reason = "a private pair of parallel lists")]
    async fn payable(
        &self,
        agency: &AgencyCode,
        request: &RemitRequest,
        candidates: &[CaseCode],
    ) -> Result<(Vec<(CaseCode, Vec<RemittedLine>)>, Vec<(case_fees::CaseFees, i64)>), RemittanceError> {
        let schedule = self.fee_schedule(agency).await?;
        let configured = self.agency(agency).await?.current;
        let context = RemitContext {
            schedule: &schedule,
            retains: configured.as_ref().is_some_and(|a| a.retains_fees),
            budget_chapter: configured.as_ref().and_then(|a| a.treasury.budget_chapter.as_ref()),
        };
        let mut payable = Vec::new();
        let mut versions = Vec::new();
        for code in candidates {
            if &code.agency() != agency {
                continue;
            }
            let record = self.load_case(code).await?;
            let lines = remittable_lines(&record.state, request.up_to, context).map_err(RemitError::from)?;
            if !lines.is_empty() {
                payable.push((code.clone(), lines));
                versions.push((record.state, record.version));
            }
        }
        Ok((payable, versions))
    }
}
