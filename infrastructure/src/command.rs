//! One command loop for every aggregate (`feeledger_domain::decider::Decider`):
//!
//! 1. the stream is read and folded (with the streams the command is made from, if any, in the
//!    same statement: [`Ledger::handle_beside`]);
//! 2. the decider decides (pure; no IO);
//! 3. the events are appended with the version read as the expected version, in one transaction
//!    with the idempotency key's claim (one statement on PostgreSQL);
//! 4. when another writer appended first, everything from (1) runs again, up to
//!    [`MAX_ATTEMPTS`] times.
//!
//! A command whose idempotency key was already used for the same request gets the first
//! result (the stream version that request reached). The key is looked up only when it can
//! matter — the append found it claimed, or the decider refused or had nothing to do (as it
//! may for a request it has seen) — not before every command: a first request, the common
//! case, costs the read and the append alone (two round trips, not three; issue 17).
//!
//! Commands that write several streams at once append with `Storage::append_together` in one
//! transaction, each stream at the version read: [`Ledger::handle_together`] for several streams
//! of one decider (a day's reconciliation), and by hand where the streams belong to different
//! deciders (a remittance, a numbered receipt).

use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::decider::{
    AgencyDecider, CaseDecider, Decider, FeeScheduleDecider, ResolutionsDecider, TargetsDecider,
};
use feeledger_domain::fee_schedule::FeeSchedulePublished;
use feeledger_domain::oversight::TargetSet;
use feeledger_domain::reconciliation::ItemResolved;

use crate::codec::{CodecError, LedgerEvent};
use crate::ledger::{Ledger, LedgerError};
use crate::storage::{
    AppendOutcome, EventMetadata, ExpectedVersion, IdempotencyKey, KnownHead, RecordedEvent, StoreError, StreamAppend,
};

/// How often a command is decided again after losing a race for its stream before giving up.
pub const MAX_ATTEMPTS: usize = 5;

/// A decider whose events are stored in the ledger's log.
pub trait Stored: Decider {
    fn encode(event: Self::Event) -> LedgerEvent;
    /// The decider's event, or `None` for an event of another family (a corrupt stream).
    fn decode(event: LedgerEvent) -> Option<Self::Event>;
}

impl Stored for CaseDecider {
    fn encode(event: CaseEvent) -> LedgerEvent {
        LedgerEvent::Case(event)
    }
    fn decode(event: LedgerEvent) -> Option<CaseEvent> {
        match event {
            LedgerEvent::Case(event) => Some(event),
            _ => None,
        }
    }
}

impl Stored for AgencyDecider {
    fn encode(event: AgencyConfigured) -> LedgerEvent {
        LedgerEvent::AgencyConfigured(event)
    }
    fn decode(event: LedgerEvent) -> Option<AgencyConfigured> {
        match event {
            LedgerEvent::AgencyConfigured(event) => Some(event),
            _ => None,
        }
    }
}

impl Stored for FeeScheduleDecider {
    fn encode(event: FeeSchedulePublished) -> LedgerEvent {
        LedgerEvent::FeeSchedulePublished(event)
    }
    fn decode(event: LedgerEvent) -> Option<FeeSchedulePublished> {
        match event {
            LedgerEvent::FeeSchedulePublished(event) => Some(event),
            _ => None,
        }
    }
}

impl Stored for ResolutionsDecider {
    fn encode(event: ItemResolved) -> LedgerEvent {
        LedgerEvent::ReconciliationItemResolved(event)
    }
    fn decode(event: LedgerEvent) -> Option<ItemResolved> {
        match event {
            LedgerEvent::ReconciliationItemResolved(event) => Some(event),
            _ => None,
        }
    }
}

impl Stored for TargetsDecider {
    fn encode(event: TargetSet) -> LedgerEvent {
        LedgerEvent::TargetSet(event)
    }
    fn decode(event: LedgerEvent) -> Option<TargetSet> {
        match event {
            LedgerEvent::TargetSet(event) => Some(event),
            _ => None,
        }
    }
}

/// A stream folded: its state, the events it was folded from, and the version they reach.
#[derive(Debug, Clone)]
pub struct Folded<D: Decider> {
    pub state: D::State,
    pub events: Vec<RecordedEvent>,
    pub version: i64,
}

/// Folds stored events with a decider.
pub fn fold<D: Stored>(events: Vec<RecordedEvent>) -> Result<Folded<D>, CodecError> {
    let mut state = D::State::default();
    for recorded in &events {
        match D::decode(LedgerEvent::decode(recorded)?) {
            Some(event) => state = D::evolve(state, &event),
            None => {
                return Err(CodecError::WrongStream {
                    position: recorded.position,
                    event_type: recorded.event_type.clone(),
                    stream_id: recorded.stream_id.clone(),
                });
            }
        }
    }
    let version = events.last().map_or(0, |e| e.stream_version);
    Ok(Folded { state, events, version })
}

/// What running a command did.
#[derive(Debug, Clone)]
pub enum Handled<D: Decider> {
    /// The events decided were appended; the state after them, the stream's new version, and
    /// the whole stream as now stored (the events read, then those appended, as the store
    /// placed them): what a caller shows without reading the stream again.
    Appended { state: D::State, events: Vec<D::Event>, version: i64, stream: Vec<RecordedEvent> },
    /// The command changed nothing (a repeat the decider recognised); the state as read.
    Unchanged { state: D::State, version: i64 },
    /// The idempotency key was used before for this same request, which reached `version`.
    Repeated { version: i64 },
}

impl Ledger {
    /// Reads and folds a stream with a decider.
    pub async fn fold_stream<D: Stored>(&self, stream: &str) -> Result<Folded<D>, LedgerError> {
        Ok(fold::<D>(self.store().read_stream(stream).await?)?)
    }

    /// Runs one command against one stream; see the module documentation.
    pub async fn handle<D>(
        &self,
        stream: &str,
        command: D::Command,
        metadata: &EventMetadata,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<Handled<D>, LedgerError>
    where
        D: Stored,
        LedgerError: From<D::Error>,
    {
        let command = |_: &[RecordedEvent]| Ok(command.clone());
        Ok(self.handle_beside::<D>(stream, &[], command, metadata, idempotency).await?.0)
    }

    /// Like [`Ledger::handle`], reading `beside` — other streams the command is made from, or
    /// that its caller needs next (the agency's fee schedule for an assessment, its
    /// configuration after a payment) — in the same statement as `stream`, on every attempt:
    /// `command` makes the command from their events. Returns the result and those events,
    /// as of the attempt that decided.
    pub async fn handle_beside<D>(
        &self,
        stream: &str,
        beside: &[String],
        command: impl Fn(&[RecordedEvent]) -> Result<D::Command, LedgerError>,
        metadata: &EventMetadata,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<(Handled<D>, Vec<RecordedEvent>), LedgerError>
    where
        D: Stored,
        LedgerError: From<D::Error>,
    {
        // The first result of a request seen before under `idempotency`, if it was.
        let repeated = async || -> Result<Option<Handled<D>>, LedgerError> {
            let Some(key) = idempotency else { return Ok(None) };
            let Some((_, version)) = self.store().idempotency_record(key).await? else { return Ok(None) };
            tracing::info!(idempotency.key = %key.key, "repeated request: returning the first result");
            Ok(Some(Handled::Repeated { version }))
        };
        for attempt in 1..=MAX_ATTEMPTS {
            let (folded, besides) = if beside.is_empty() {
                (self.fold_stream::<D>(stream).await?, Vec::new())
            } else {
                let (own, besides) = self.store().read_stream_beside(stream, beside).await?;
                (fold::<D>(own)?, besides)
            };
            let decided = match D::decide(&folded.state, command(&besides)?) {
                Ok(decided) => decided,
                Err(refused) => {
                    return repeated().await?.map_or_else(|| Err(refused.into()), |done| Ok((done, besides)));
                }
            };
            if decided.is_empty() {
                let unchanged = Handled::Unchanged { state: folded.state, version: folded.version };
                return Ok((repeated().await?.unwrap_or(unchanged), besides));
            }
            let rows = decided
                .iter()
                .map(|event| D::encode(event.clone()).to_new_event(metadata))
                .collect::<Result<Vec<_>, _>>()?;
            let head = folded.events.last().map(KnownHead::of);
            let expected = ExpectedVersion::from_read(folded.version);
            match self.store().append_after(stream, expected, head.as_ref(), rows, idempotency).await {
                Ok(AppendOutcome::Appended(appended, recorded)) => {
                    let state = decided.iter().fold(folded.state, D::evolve);
                    let mut stream = folded.events;
                    stream.extend(recorded);
                    let version = appended.last_version;
                    return Ok((Handled::Appended { state, events: decided, version, stream }, besides));
                }
                Ok(AppendOutcome::AlreadyDone { stream_version, .. }) => {
                    return Ok((Handled::Repeated { version: stream_version }, besides));
                }
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(attempt, stream, "stream changed concurrently; deciding again");
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(LedgerError::Contended(stream.to_owned()))
    }

    /// Runs commands against several streams of one decider as one fact: every stream is read
    /// and folded, its commands decided in order (each on the state the previous one left), and
    /// all the events appended in **one transaction**, each stream at the version read. When
    /// any of the streams moved meanwhile, everything is read and decided again, up to
    /// [`MAX_ATTEMPTS`] times. A stream whose commands change nothing is not written, so a
    /// retry of the same commands (the decider recognising what it holds already) appends
    /// nothing. Returns the events appended, per stream, in the order given.
    pub async fn handle_together<D>(
        &self,
        commands: &[(String, Vec<D::Command>)],
        metadata: &EventMetadata,
    ) -> Result<Vec<(String, Vec<D::Event>)>, LedgerError>
    where
        D: Stored,
        LedgerError: From<D::Error>,
    {
        for attempt in 1..=MAX_ATTEMPTS {
            let mut appends = Vec::with_capacity(commands.len());
            let mut decided = Vec::with_capacity(commands.len());
            for (stream, stream_commands) in commands {
                let folded = self.fold_stream::<D>(stream).await?;
                let mut state = folded.state;
                let mut events = Vec::new();
                for command in stream_commands {
                    let new = D::decide(&state, command.clone())?;
                    state = new.iter().fold(state, D::evolve);
                    events.extend(new);
                }
                if events.is_empty() {
                    continue;
                }
                let rows = events
                    .iter()
                    .map(|event| D::encode(event.clone()).to_new_event(metadata))
                    .collect::<Result<Vec<_>, _>>()?;
                appends.push(StreamAppend {
                    stream_id: stream.clone(),
                    expected: ExpectedVersion::from_read(folded.version),
                    events: rows,
                });
                decided.push((stream.clone(), events));
            }
            if appends.is_empty() {
                return Ok(decided);
            }
            match self.store().append_together(appends).await {
                Ok(_) => return Ok(decided),
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(attempt, streams = commands.len(), "a stream changed concurrently; deciding again");
                }
                Err(other) => return Err(other.into()),
            }
        }
        let first = commands.first().map(|(stream, _)| stream.clone()).unwrap_or_default();
        Err(LedgerError::Contended(first))
    }
}
