//! Payment intake: from a verified bank credit to a case payment, exactly once.
//!
//! 1. The credit's own stream (`bank-credit-<provider>:<id>`) is created with "no stream"
//!    expected: of any number of concurrent copies of one notification, exactly one creates it.
//!    The others find it; if it is already resolved they are duplicates, otherwise they carry on
//!    (the first copy may have crashed half-way) — every later step is idempotent.
//! 2. The case is found: an exact payment reference first, then a case code anywhere in the
//!    transfer text (see `feeledger_domain::bank_credit`). Several candidates, none, or a case of
//!    another agency than the receiving account's: the credit is left unmatched for a person.
//! 3. The payment is recorded on the case under the key `<provider>:<id>`, which the case
//!    accepts once (a retry finds the payment already there).
//! 4. The credit is marked matched (or unmatched) — once, by optimistic concurrency.
//!
//! A credit seen for the first time takes a shorter way to the same events: after the reads
//! (the agencies, from memory while their count is unchanged; the case), steps 1, 3 and 4 and
//! the inbox are one transaction — on PostgreSQL one statement. The inbox part is the outcome
//! of the request's row stored before ([`PaymentIntake::receive_resolving`]), or the request's
//! row itself with its outcome ([`PaymentIntake::receive_with_row`]: a notification costs one
//! commit in all). If the credit's stream exists (a duplicate, a retry, a first copy
//! interrupted half-way) or the case keeps moving, nothing of it is written and the steps
//! above run instead.
//!
//! Group commit: new credits that arrive while others are being recorded wait, and the next
//! group is recorded together — the cases and credit streams of all of them read by one
//! statement, each credit decided on its own, all their events and inbox outcomes appended by
//! one statement (one commit). A credit the group cannot take (its stream exists, its case is
//! named by another credit of the group) goes its own way as above; if the group's append
//! fails, nothing of it is stored and every credit of it goes its own way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::bank_credit::{
    self, BankCredit, BankCreditObserved, CreditError, CreditEvent, CreditMatched, CreditRefundRequested, CreditState,
    CreditStatus, CreditUnmatched, MatchMethod,
};
use feeledger_domain::case_fees::{Command, QrStatus, RecordPayment};
use feeledger_domain::codes::{AgencyCode, CaseCode, PaymentReference};
use feeledger_domain::decider::{CaseDecider, Decider};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::codec::{self, CASE_STREAM_PREFIX, LedgerEvent};
use crate::command::Stored;
use crate::inbox::InboxResolution;
use crate::ledger::{CaseRecord, Ledger, LedgerError, fold_case};
use crate::storage::group_commit::GroupQueue;
use crate::storage::{EventMetadata, ExpectedVersion, KnownHead, NewEvent, RecordedEvent, StoreError, StreamAppend};

/// What happened to a credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    Recorded {
        credit_id: String,
        case_code: CaseCode,
        payment_id: Uuid,
        method: MatchMethod,
    },
    Unmatched {
        credit_id: String,
        reason: String,
    },
    /// This notification was already handled; nothing changed.
    Duplicate {
        credit_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("account {0} is not the collection account of any configured agency")]
    UnknownAccount(String),
    #[error("credit {0} not found")]
    CreditNotFound(String),
    #[error(transparent)]
    Credit(#[from] CreditError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<StoreError> for IntakeError {
    fn from(error: StoreError) -> Self {
        IntakeError::Ledger(error.into())
    }
}

fn poisoned() -> IntakeError {
    IntakeError::Ledger(LedgerError::Invalid("the agency cache lock was poisoned".into()))
}

impl From<codec::CodecError> for IntakeError {
    fn from(error: codec::CodecError) -> Self {
        IntakeError::Ledger(error.into())
    }
}

enum CaseSearch {
    /// `record` is the case as read to find it.
    Found {
        case_code: CaseCode,
        method: MatchMethod,
        reference: String,
        record: Box<CaseRecord>,
    },
    NotFound(String),
}

/// What a credit's case search reads: the streams of the payment references it may carry, and
/// the events of the cases it may name (and, for a group, of the credits' own streams). Read
/// for one credit or a whole group at once ([`PaymentIntake::read_named`]); the search itself
/// is then done without IO ([`PaymentIntake::find_case_in`]).
#[derive(Debug, Default)]
struct NamedStreams {
    /// Payment reference → the streams whose QR carries it.
    references: HashMap<String, Vec<String>>,
    /// Stream → its events, in version order (streams without events are absent).
    events: HashMap<String, Vec<RecordedEvent>>,
}

/// What a credit's texts may name, in the order its case search tries them: payment
/// references (as written, or upper-cased), then case codes (of the receiving agency if known),
/// each once. Found once per credit, for the read and for the search.
#[derive(Debug)]
struct Names {
    references: Vec<String>,
    codes: Vec<CaseCode>,
}

/// What to write in the inbox for an outcome of a notification's credit: the outcome of its
/// row ([`PaymentIntake::receive_resolving`]), or its row with the outcome
/// ([`PaymentIntake::receive_with_row`]).
pub type Resolver = Arc<dyn Fn(&Intake) -> Option<InboxResolution> + Send + Sync>;

/// A credit waiting for its group (see the module documentation).
struct Waiting {
    observed: BankCreditObserved,
    agencies: Arc<Vec<AgencyConfigured>>,
    metadata: EventMetadata,
    now: DateTime<Utc>,
    resolution: Resolver,
    /// The agency configurations `agencies` are as of, when the group's append must check
    /// that they still are (the agencies came from memory, unchecked).
    agencies_as_of: Option<i64>,
    answer: oneshot::Sender<InGroup>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").field("credit", &self.observed.credit.credit_id()).finish_non_exhaustive()
    }
}

/// What became of a credit in its group.
#[derive(Debug)]
enum InGroup {
    /// Recorded with the group, its inbox outcome written.
    Recorded(Intake),
    /// Not new (its stream exists, or its case has its payment): the step-by-step path.
    Seen,
    /// Not taken, or the group's append failed: the credit goes its own way.
    Alone,
}

/// At most this many credits are recorded by one group.
const CREDITS_PER_GROUP: usize = 64;

/// The agencies, as of `count` agency configurations.
type AgencyCache = Arc<Mutex<Option<(i64, Arc<Vec<AgencyConfigured>>)>>>;

/// How often a notification's single transaction is re-decided after a concurrent payment on
/// its case moved the case on, before the step-by-step path takes over.
const ONE_COMMIT_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct PaymentIntake {
    ledger: Ledger,
    agencies: AgencyCache,
    /// New credits waiting to be recorded together.
    waiting: GroupQueue<Waiting>,
}

/// The case a credit names, as read to decide on it.
struct FoundCase {
    record: CaseRecord,
    method: MatchMethod,
    reference: String,
}

/// A case search's answer as [`PaymentIntake::decide_new`] takes it: the case found, or why
/// none was.
fn found_case(search: CaseSearch) -> Result<FoundCase, String> {
    match search {
        CaseSearch::Found { method, reference, record, .. } => Ok(FoundCase { record: *record, method, reference }),
        CaseSearch::NotFound(reason) => Err(reason),
    }
}

/// What the single-transaction path decided for a new credit: the streams' appends (the
/// credit's, the case's), the case's head as read, and the outcome.
struct NewCredit {
    appends: Vec<StreamAppend>,
    heads: Vec<KnownHead>,
    outcome: Intake,
}

impl PaymentIntake {
    pub fn new(ledger: Ledger) -> Self {
        // One group under way at a time, on either backend: with two on PostgreSQL the groups
        // were half as large and each notification cost more CPU (docs/BENCHMARKS.md).
        let waiting = GroupQueue::new(1, CREDITS_PER_GROUP);
        PaymentIntake { ledger, agencies: AgencyCache::default(), waiting }
    }

    /// The current configuration of every agency.
    pub async fn agencies(&self) -> Result<Vec<AgencyConfigured>, IntakeError> {
        Ok(self.current_agencies(None).await?.as_ref().clone())
    }

    /// The agencies, from memory while no agency was configured since they were read: one small
    /// index scan (how many configurations there are) instead of reading and decoding every
    /// configuration. Any node's configuration changes the count, so the cache is never stale.
    /// `counted`: that count, when the caller read it already (with the notification's inbox
    /// row, `Inbox::record`).
    async fn current_agencies(&self, counted: Option<i64>) -> Result<Arc<Vec<AgencyConfigured>>, IntakeError> {
        let count = match counted {
            Some(count) => count,
            None => self.ledger.store().agency_configuration_count().await?,
        };
        if let Some((cached_count, agencies)) = self.agencies.lock().map_err(|_| poisoned())?.as_ref()
            && *cached_count == count
        {
            return Ok(agencies.clone());
        }
        let events = self.ledger.store().events_of_type("AgencyConfigured").await?;
        let mut latest: BTreeMap<String, AgencyConfigured> = BTreeMap::new();
        for event in &events {
            let agency: AgencyConfigured = codec::decode_as(event)?;
            latest.insert(agency.agency_code.to_string(), agency);
        }
        let agencies = Arc::new(latest.into_values().collect::<Vec<_>>());
        // Kept under the count of what was read: one committed meanwhile makes the next call read.
        let read = i64::try_from(events.len()).unwrap_or(i64::MAX);
        *self.agencies.lock().map_err(|_| poisoned())? = Some((read, agencies.clone()));
        Ok(agencies)
    }

    /// A credit's state and stream version (`None`, 0 before it was observed).
    pub async fn credit(&self, credit_id: &str) -> Result<(Option<CreditState>, i64), IntakeError> {
        let events = self.ledger.store().read_stream(&codec::bank_credit_stream(credit_id)).await?;
        let mut decoded = Vec::with_capacity(events.len());
        for event in &events {
            if let LedgerEvent::Credit(credit_event) = LedgerEvent::decode(event)? {
                decoded.push(credit_event);
            }
        }
        Ok((CreditState::fold(&decoded), events.last().map_or(0, |e| e.stream_version)))
    }

    async fn append(
        &self,
        credit_id: &str,
        expected: ExpectedVersion,
        events: Vec<CreditEvent>,
        metadata: &EventMetadata,
    ) -> Result<(), StoreError> {
        let rows = events
            .into_iter()
            .map(|event| LedgerEvent::Credit(event).to_new_event(metadata))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt { position: 0, reason: e.to_string() })?;
        self.ledger.store().append(&codec::bank_credit_stream(credit_id), expected, rows, None).await.map(|_| ())
    }

    /// Handles one verified credit: records it, finds its case, records the payment.
    pub async fn receive(&self, credit: BankCredit, now: DateTime<Utc>) -> Result<Intake, IntakeError> {
        self.receive_resolving(credit, now, None, Arc::new(|_| None)).await.map(|(intake, _)| intake)
    }

    /// Like [`PaymentIntake::receive`]; `resolution` says what to write on the request's inbox
    /// row for an outcome. A new credit is recorded in one transaction, with the other new
    /// credits of its group: the credit observed, the case's payment, the credit matched (or
    /// unmatched) and the inbox row's outcome, one commit for the group. Anything else (a
    /// credit seen before, a case that keeps changing) goes step by step, each step
    /// idempotent, and the inbox row is left to the caller. Returns whether the resolution was
    /// written. `agency_configurations`: how many agency configurations the log held when the
    /// request was stored, if read then (saves a round trip).
    pub async fn receive_resolving(
        &self,
        credit: BankCredit,
        now: DateTime<Utc>,
        agency_configurations: Option<i64>,
        resolution: Resolver,
    ) -> Result<(Intake, bool), IntakeError> {
        let agencies = self.current_agencies(agency_configurations).await?;
        let agency = Self::receiving_agency(&credit, &agencies)?;
        let (observed, metadata) = Self::observe(credit, agency, now);
        match self.in_group(&observed, &agencies, &metadata, now, resolution.clone(), None).await {
            InGroup::Recorded(outcome) => return Ok((outcome, true)),
            InGroup::Seen => {}
            InGroup::Alone => {
                if let Some(done) = self.in_one_commit(&observed, &agencies, &metadata, now, &resolution).await? {
                    return Ok(done);
                }
            }
        }
        self.step_by_step(observed, &agencies, &metadata, now).await.map(|intake| (intake, false))
    }

    /// The shortest way, for a credit seen for the first time whose request is not stored yet:
    /// recorded with its group, `row` (the request's inbox row with its outcome) written by the
    /// same commit, with the agencies kept in memory (the group's append checks that their
    /// count is still the log's). The credit back, with nothing written, when it does not take
    /// that way — the agencies are not in memory, the account is not among them, the credit or
    /// its case was seen before, or the group could not record it: the caller stores the
    /// request and hands the credit to [`PaymentIntake::receive_resolving`].
    pub async fn receive_with_row(
        &self,
        credit: BankCredit,
        now: DateTime<Utc>,
        row: Resolver,
    ) -> Result<Intake, BankCredit> {
        let cached = self.agencies.lock().ok().and_then(|cache| cache.clone());
        let Some((count, agencies)) = cached else { return Err(credit) };
        let Ok(agency) = Self::receiving_agency(&credit, &agencies) else { return Err(credit) };
        let (observed, metadata) = Self::observe(credit, agency, now);
        match self.in_group(&observed, &agencies, &metadata, now, row, Some(count)).await {
            InGroup::Recorded(outcome) => Ok(outcome),
            InGroup::Seen | InGroup::Alone => Err(observed.credit),
        }
    }

    /// The agency whose account received `credit` (none named: no agency).
    fn receiving_agency(credit: &BankCredit, agencies: &[AgencyConfigured]) -> Result<Option<AgencyCode>, IntakeError> {
        match credit.account_number.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(account) => agencies
                .iter()
                .find(|a| a.bank_account.number.as_str() == account)
                .map(|a| Some(a.agency_code.clone()))
                .ok_or_else(|| IntakeError::UnknownAccount(account.to_owned())),
            None => Ok(None),
        }
    }

    /// A credit as observed by `agency`, and the metadata of its events.
    fn observe(
        credit: BankCredit,
        agency: Option<AgencyCode>,
        now: DateTime<Utc>,
    ) -> (BankCreditObserved, EventMetadata) {
        let metadata = EventMetadata { actor: Some(format!("bank:{}", credit.provider)), ..EventMetadata::default() };
        (BankCreditObserved { credit, agency_code: agency, observed_at: now }, metadata)
    }

    /// Queues a new credit for the next group and waits for what became of it; a credit the
    /// group recorded gets its receipt, if its agency issues one per payment.
    async fn in_group(
        &self,
        observed: &BankCreditObserved,
        agencies: &Arc<Vec<AgencyConfigured>>,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
        resolution: Resolver,
        agencies_as_of: Option<i64>,
    ) -> InGroup {
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            observed: observed.clone(),
            agencies: agencies.clone(),
            metadata: metadata.clone(),
            now,
            resolution,
            agencies_as_of,
            answer,
        };
        if let Some((writer, group)) = self.waiting.push(waiting) {
            let intake = self.clone();
            tokio::spawn(async move { writer.write_all(group, |group| intake.record_group(group)).await });
        }
        // A group task that is gone (it panicked) closed the channel: the credit goes alone.
        let in_group = answered.await.unwrap_or(InGroup::Alone);
        if let InGroup::Recorded(outcome) = &in_group {
            self.issue_receipt_if_per_payment(outcome, agencies, metadata, now).await;
        }
        in_group
    }

    /// Records a group of new credits (see the module documentation): reads what every credit
    /// names in one statement, decides each credit on its own, and appends what the taken
    /// credits decided, with their inbox outcomes, in one statement. Answers each credit.
    async fn record_group(&self, group: Vec<Waiting>) {
        let names: Vec<Names> = group.iter().map(|w| Self::names(&w.observed, &w.agencies)).collect();
        let named = {
            let credits: Vec<_> = group.iter().zip(&names).map(|(w, names)| (&w.observed, names)).collect();
            self.read_named(&credits, true).await
        };
        let named = match named {
            Ok(named) => named,
            Err(error) => {
                tracing::debug!(%error, credits = group.len(), "reading a group's cases failed; each credit goes alone");
                for waiting in group {
                    let _ = waiting.answer.send(InGroup::Alone);
                }
                return;
            }
        };
        let mut taken: Vec<(Waiting, Intake)> = Vec::with_capacity(group.len());
        let (mut appends, mut heads, mut writes) = (Vec::new(), Vec::new(), Vec::new());
        let mut streams: HashSet<String> = HashSet::new();
        let mut after: Vec<Waiting> = Vec::new();
        // The agencies' count the append checks: the first credit's that asks for a check. A
        // credit decided with agencies as of another count goes alone.
        let agencies = group.iter().find_map(|w| w.agencies_as_of);
        for (waiting, names) in group.into_iter().zip(&names) {
            if waiting.agencies_as_of.is_some_and(|count| Some(count) != agencies) {
                let _ = waiting.answer.send(InGroup::Alone);
                continue;
            }
            let credit_stream = codec::bank_credit_stream(&waiting.observed.credit.credit_id());
            if named.events.contains_key(&credit_stream) {
                let _ = waiting.answer.send(InGroup::Seen);
                continue;
            }
            let decided = self
                .find_case_in(&waiting.observed, names, &named)
                .map(found_case)
                .and_then(|case| self.decide_new(&waiting.observed, case, &waiting.metadata, waiting.now));
            let decided = match decided {
                Ok(Some(decided)) => decided,
                Ok(None) => {
                    let _ = waiting.answer.send(InGroup::Seen);
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "a credit could not be decided in its group; it goes alone");
                    let _ = waiting.answer.send(InGroup::Alone);
                    continue;
                }
            };
            // Two credits of one case (or two copies of one credit) are not decided on the same
            // read: the later one goes alone, once the group is stored.
            if decided.appends.iter().any(|a| streams.contains(&a.stream_id)) {
                after.push(waiting);
                continue;
            }
            streams.extend(decided.appends.iter().map(|a| a.stream_id.clone()));
            appends.extend(decided.appends);
            heads.extend(decided.heads);
            writes.extend((waiting.resolution)(&decided.outcome));
            taken.push((waiting, decided.outcome));
        }
        if !taken.is_empty() {
            self.append_group(taken, appends, &heads, &writes, agencies).await;
        }
        for waiting in after {
            let _ = waiting.answer.send(InGroup::Alone);
        }
    }

    /// Appends what the credits `taken` decided, with their inbox writes, in one statement;
    /// answers each. `agencies`: the agencies' count to check (see `Waiting::agencies_as_of`).
    async fn append_group(
        &self,
        taken: Vec<(Waiting, Intake)>,
        appends: Vec<StreamAppend>,
        heads: &[KnownHead],
        writes: &[InboxResolution],
        agencies: Option<i64>,
    ) {
        let credits = taken.len();
        match self.ledger.store().append_together_resolving(appends, heads, writes, agencies).await {
            Ok(_) => {
                for (waiting, outcome) in taken {
                    tracing::info!(credit.id = %waiting.observed.credit.credit_id(), outcome = ?outcome, credits.in_group = credits, "bank credit handled");
                    let _ = waiting.answer.send(InGroup::Recorded(outcome));
                }
            }
            Err(error) => {
                // A stream moved on (a copy of a credit, a payment at the counter) or the
                // database refused: nothing of the group is stored.
                tracing::debug!(%error, credits = taken.len(), "recording a group of credits failed; each goes alone");
                for (waiting, _) in taken {
                    let _ = waiting.answer.send(InGroup::Alone);
                }
            }
        }
    }

    /// An agency that issues a receipt per payment gets it right after the payment's commit, as
    /// a payment at the counter does (`Ledger::execute`).
    async fn issue_receipt_if_per_payment(
        &self,
        outcome: &Intake,
        agencies: &[AgencyConfigured],
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) {
        if let Intake::Recorded { case_code, .. } = outcome
            && agencies.iter().any(|a| a.agency_code == case_code.agency() && a.receipt_per_payment)
            && let Err(error) = self.ledger.issue_receipts_due(case_code, metadata, now).await
        {
            tracing::warn!(%error, case.code = %case_code, "receipt not issued yet: the next payment of the case or issueReceipt issues it");
        }
    }

    /// A new credit, its payment and its inbox outcome in one transaction, in the shape of the
    /// command loop (`Ledger::handle`): read the case, decide ([`PaymentIntake::decide_new`],
    /// no IO), append every stream at the version read; when the case moved meanwhile, read and
    /// decide again. `None` when the credit is not new (its stream exists, or the case has its
    /// payment already) or the case kept moving: the step-by-step path takes over.
    async fn in_one_commit(
        &self,
        observed: &BankCreditObserved,
        agencies: &[AgencyConfigured],
        metadata: &EventMetadata,
        now: DateTime<Utc>,
        resolution: &Resolver,
    ) -> Result<Option<(Intake, bool)>, IntakeError> {
        let credit_stream = codec::bank_credit_stream(&observed.credit.credit_id());
        for attempt in 1..=ONE_COMMIT_ATTEMPTS {
            // Read: the case the credit names, as it stands (the credit's stream is expected not
            // to exist; the append says if it does).
            let case = found_case(self.find_case(observed, agencies).await?);
            // Decide.
            let Some(decided) = self.decide_new(observed, case, metadata, now)? else { return Ok(None) };
            // Append, with the inbox row's outcome.
            let inbox = resolution(&decided.outcome);
            let writes = inbox.as_slice();
            match self.ledger.store().append_together_resolving(decided.appends, &decided.heads, writes, None).await {
                Ok(_) => {
                    let outcome = decided.outcome;
                    tracing::info!(credit.id = %observed.credit.credit_id(), outcome = ?outcome, "bank credit handled");
                    self.issue_receipt_if_per_payment(&outcome, agencies, metadata, now).await;
                    return Ok(Some((outcome, inbox.is_some())));
                }
                Err(StoreError::Conflict { stream_id, .. }) if stream_id == credit_stream => return Ok(None),
                // Retry: the case moved on (a concurrent payment).
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(attempt, credit.id = %observed.credit.credit_id(), "the case changed concurrently; deciding again");
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(None)
    }

    /// What a new credit records, decided on the case as read (no IO): the credit observed, the
    /// case's payment (or the reason it is left unmatched), the credit matched or unmatched.
    /// `None` when the case has this payment already (a copy of the credit got this far).
    fn decide_new(
        &self,
        observed: &BankCreditObserved,
        case: Result<FoundCase, String>,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Option<NewCredit>, IntakeError> {
        let credit_id = observed.credit.credit_id();
        let observed_event = CreditEvent::BankCreditObserved(observed.clone());
        let state =
            CreditState::fold([&observed_event]).ok_or_else(|| IntakeError::CreditNotFound(credit_id.clone()))?;
        let credit_stream = codec::bank_credit_stream(&credit_id);
        let mut appends = vec![StreamAppend {
            stream_id: credit_stream.clone(),
            expected: ExpectedVersion::NoStream,
            events: vec![self.row(observed_event, metadata)?],
        }];
        let mut heads = Vec::new();
        let (credit_events, outcome) = match case {
            Ok(FoundCase { record: case, method, reference }) => {
                heads.extend(case.events.last().map(KnownHead::of));
                let command = self.payment_command(&case, &observed.credit, &reference);
                let payment_id = match &command {
                    Command::RecordPayment(payment) => payment.payment_id,
                    _ => Uuid::nil(),
                };
                let case_code = case.code;
                match CaseDecider::decide(&case.state, command) {
                    Ok(decided) if decided.is_empty() => return Ok(None),
                    Ok(decided) => {
                        appends.push(StreamAppend {
                            stream_id: codec::case_stream(&case_code),
                            expected: ExpectedVersion::from_read(case.version),
                            events: decided
                                .into_iter()
                                .map(|event| CaseDecider::encode(event).to_new_event(metadata))
                                .collect::<Result<Vec<_>, _>>()?,
                        });
                        let matched =
                            CreditMatched { case_code: case_code.clone(), payment_id, method, matched_at: now };
                        (state.decide_match(matched)?, Intake::Recorded { credit_id, case_code, payment_id, method })
                    }
                    Err(rejected) => {
                        let reason = format!("case {case_code} refused the payment: {rejected}");
                        (self.unmatched_events(&state, &reason, now), Intake::Unmatched { credit_id, reason })
                    }
                }
            }
            Err(reason) => (self.unmatched_events(&state, &reason, now), Intake::Unmatched { credit_id, reason }),
        };
        appends.push(StreamAppend {
            stream_id: credit_stream,
            expected: ExpectedVersion::Exact(1),
            events: credit_events.into_iter().map(|e| self.row(e, metadata)).collect::<Result<Vec<_>, _>>()?,
        });
        Ok(Some(NewCredit { appends, heads, outcome }))
    }

    fn row(&self, event: CreditEvent, metadata: &EventMetadata) -> Result<NewEvent, IntakeError> {
        Ok(LedgerEvent::Credit(event).to_new_event(metadata)?)
    }

    /// The step-by-step path (see the module documentation): every step idempotent, so that a
    /// credit whose first copy was interrupted half-way is finished, and a duplicate found.
    async fn step_by_step(
        &self,
        observed: BankCreditObserved,
        agencies: &[AgencyConfigured],
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Intake, IntakeError> {
        let credit_id = observed.credit.credit_id();
        let first = self
            .append(&credit_id, ExpectedVersion::NoStream, vec![CreditEvent::BankCreditObserved(observed)], metadata)
            .await;
        match first {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        let (state, version) = self.credit(&credit_id).await?;
        let state = state.ok_or_else(|| IntakeError::CreditNotFound(credit_id.clone()))?;
        if state.status != CreditStatus::Observed {
            return Ok(Intake::Duplicate { credit_id });
        }
        self.resolve(&state, version, agencies, metadata, now).await
    }

    async fn resolve(
        &self,
        state: &CreditState,
        version: i64,
        agencies: &[AgencyConfigured],
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<Intake, IntakeError> {
        let credit_id = state.credit_id();
        let search = self.find_case(&state.observed, agencies).await?;
        let (events, outcome) = match search {
            CaseSearch::Found { case_code, method, reference, .. } => {
                match self.record_payment(&case_code, &state.observed.credit, &reference, metadata).await {
                    Ok(payment_id) => (
                        vec![CreditEvent::CreditMatched(CreditMatched {
                            case_code: case_code.clone(),
                            payment_id,
                            method,
                            matched_at: now,
                        })],
                        Intake::Recorded { credit_id: credit_id.clone(), case_code, payment_id, method },
                    ),
                    Err(IntakeError::Ledger(LedgerError::Rejected(rejected))) => {
                        let reason = format!("case {case_code} refused the payment: {rejected}");
                        (
                            self.unmatched_events(state, &reason, now),
                            Intake::Unmatched { credit_id: credit_id.clone(), reason },
                        )
                    }
                    Err(other) => return Err(other),
                }
            }
            CaseSearch::NotFound(reason) => {
                (self.unmatched_events(state, &reason, now), Intake::Unmatched { credit_id: credit_id.clone(), reason })
            }
        };
        match self.append(&credit_id, ExpectedVersion::Exact(version), events, metadata).await {
            Ok(()) => {
                tracing::info!(credit.id = %credit_id, outcome = ?outcome, "bank credit handled");
                Ok(outcome)
            }
            // A concurrent copy of the same notification resolved it first, identically.
            Err(StoreError::Conflict { .. }) => Ok(Intake::Duplicate { credit_id }),
            Err(other) => Err(other.into()),
        }
    }

    fn unmatched_events(&self, state: &CreditState, reason: &str, now: DateTime<Utc>) -> Vec<CreditEvent> {
        state.decide_unmatched(CreditUnmatched {
            agency_code: state.observed.agency_code.clone(),
            reason: reason.to_owned(),
            at: now,
        })
    }

    /// The case a credit names (see [`PaymentIntake::find_case_in`]), read for it alone.
    async fn find_case(
        &self,
        observed: &BankCreditObserved,
        agencies: &[AgencyConfigured],
    ) -> Result<CaseSearch, IntakeError> {
        let names = Self::names(observed, agencies);
        let named = self.read_named(&[(observed, &names)], false).await?;
        self.find_case_in(observed, &names, &named)
    }

    /// What `observed`'s texts may name (see [`Names`]).
    fn names(observed: &BankCreditObserved, agencies: &[AgencyConfigured]) -> Names {
        let texts = bank_credit::reference_texts(&observed.credit);
        let mut references = Vec::new();
        for text in &texts {
            let text = text.trim();
            let upper = text.to_uppercase();
            let candidates = if upper == text { vec![upper] } else { vec![text.to_owned(), upper] };
            references.extend(candidates.into_iter().filter(|c| PaymentReference::parse(c).is_ok()));
        }
        let scope: Vec<AgencyCode> = match &observed.agency_code {
            Some(agency) => vec![agency.clone()],
            None => agencies.iter().map(|a| a.agency_code.clone()).collect(),
        };
        let mut codes: Vec<CaseCode> = Vec::new();
        for text in &texts {
            for code in bank_credit::case_codes_in(text, &scope) {
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
        }
        Names { references, codes }
    }

    /// Reads what the case searches of `credits` need: one statement for their payment
    /// references (if any), one for the events of every case they may name and, with
    /// `credit_streams`, of the credits' own streams.
    async fn read_named(
        &self,
        credits: &[(&BankCreditObserved, &Names)],
        credit_streams: bool,
    ) -> Result<NamedStreams, IntakeError> {
        let store = self.ledger.store();
        let mut named = NamedStreams::default();
        let references: Vec<String> = credits.iter().flat_map(|(_, names)| names.references.iter().cloned()).collect();
        for (reference, stream) in store.streams_with_qr_references(&references).await? {
            named.references.entry(reference).or_default().push(stream);
        }
        let mut streams: Vec<String> = Vec::new();
        for (observed, names) in credits {
            if credit_streams {
                streams.push(codec::bank_credit_stream(&observed.credit.credit_id()));
            }
            streams.extend(names.codes.iter().map(codec::case_stream));
        }
        // A reference issued by exactly one case: that case is read too.
        streams.extend(named.references.values().filter(|s| s.len() == 1).flatten().cloned());
        streams.sort_unstable();
        streams.dedup();
        for event in store.read_streams(&streams).await? {
            named.events.entry(event.stream_id.clone()).or_default().push(event);
        }
        Ok(named)
    }

    /// The case `observed` names, from what [`PaymentIntake::read_named`] read (no IO): an
    /// exact payment reference first, then exactly one existing case code in its texts.
    fn find_case_in(
        &self,
        observed: &BankCreditObserved,
        names: &Names,
        named: &NamedStreams,
    ) -> Result<CaseSearch, IntakeError> {
        let case = |code: &CaseCode| -> Result<CaseRecord, IntakeError> {
            let events = named.events.get(&codec::case_stream(code)).cloned().unwrap_or_default();
            Ok(fold_case(code.clone(), events)?)
        };

        // 1. A text that is exactly a QR's payment reference (as issued, or upper-cased).
        for candidate in &names.references {
            if let Some([stream]) = named.references.get(candidate).map(Vec::as_slice)
                && let Some(code) = stream.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok())
            {
                let record = Box::new(case(&code)?);
                return Ok(self.check_agency(observed, code, MatchMethod::ExactReference, candidate.clone(), record));
            }
        }

        // 2. A case code anywhere in the texts, of the receiving agency if known.
        let mut existing: Vec<CaseRecord> = Vec::new();
        for code in &names.codes {
            let record = case(code)?;
            if record.exists() {
                existing.push(record);
            }
        }
        if existing.len() == 1
            && let Some(record) = existing.pop()
        {
            let reference = record.code.to_string();
            let code = record.code.clone();
            return Ok(self.check_agency(observed, code, MatchMethod::CaseCodeInContent, reference, Box::new(record)));
        }
        let existing: Vec<CaseCode> = existing.into_iter().map(|r| r.code).collect();
        Ok(match existing.as_slice() {
            [] => CaseSearch::NotFound("no known case or payment reference in the transfer content".into()),
            several => CaseSearch::NotFound(format!(
                "the transfer names several cases ({}); a person must choose",
                several.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )),
        })
    }

    /// Money that landed on one agency's account but names another agency's case is not moved
    /// between agencies automatically.
    fn check_agency(
        &self,
        observed: &BankCreditObserved,
        code: CaseCode,
        method: MatchMethod,
        reference: String,
        record: Box<CaseRecord>,
    ) -> CaseSearch {
        match &observed.agency_code {
            Some(agency) if code.agency() != *agency => CaseSearch::NotFound(format!(
                "the transfer names case {code} of agency {}, but arrived on the account of agency {agency}",
                code.agency()
            )),
            _ => CaseSearch::Found { case_code: code, method, reference, record },
        }
    }

    /// Records the credit as a payment of the case (once, by its key); returns the payment id.
    async fn record_payment(
        &self,
        case_code: &CaseCode,
        credit: &BankCredit,
        reference: &str,
        metadata: &EventMetadata,
    ) -> Result<Uuid, IntakeError> {
        let key = credit.payment_key();
        let current = self.ledger.load_case(case_code).await?;
        let command = self.payment_command(&current, credit, reference);
        let record: CaseRecord = self.ledger.execute(case_code, command, metadata, None).await?;
        record
            .state
            .payments
            .iter()
            .find(|p| p.idempotency_key == key)
            .map(|p| p.payment_id)
            .ok_or_else(|| IntakeError::CreditNotFound(credit.credit_id()))
    }

    /// The case payment a credit makes, under the key `<provider>:<id>`.
    fn payment_command(&self, case: &CaseRecord, credit: &BankCredit, reference: &str) -> Command {
        let qr_id = case.state.qr.as_ref().filter(|q| q.status == QrStatus::Active).map(|q| q.qr.qr_id);
        Command::RecordPayment(RecordPayment {
            payment_id: Uuid::now_v7(),
            idempotency_key: credit.payment_key(),
            amount: credit.amount,
            channel: credit.provider.channel(),
            reference: reference.to_owned(),
            provider: Some(credit.provider.as_str().to_owned()),
            bank_reference: credit.bank_reference.clone(),
            qr_id,
            payer_account: credit.payer_account.clone(),
            received_at: credit.credited_at,
        })
    }

    /// A person decides an unmatched credit pays `case_code`.
    pub async fn assign(
        &self,
        credit_id: &str,
        case_code: &CaseCode,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<(CaseRecord, CreditState), IntakeError> {
        let (state, version) = self.credit(credit_id).await?;
        let state = state.ok_or_else(|| IntakeError::CreditNotFound(credit_id.to_owned()))?;
        // Refuse early (matched elsewhere, marked for refund) before touching the case.
        let probe = CreditMatched {
            case_code: case_code.clone(),
            payment_id: Uuid::nil(),
            method: MatchMethod::Manual,
            matched_at: now,
        };
        if state.decide_match(probe)?.is_empty() {
            return Ok((self.ledger.load_case(case_code).await?, state));
        }
        let payment_id = self.record_payment(case_code, &state.observed.credit, &state.credit_id(), metadata).await?;
        let events = state.decide_match(CreditMatched {
            case_code: case_code.clone(),
            payment_id,
            method: MatchMethod::Manual,
            matched_at: now,
        })?;
        self.append(credit_id, ExpectedVersion::Exact(version), events, metadata).await?;
        let (state, _) = self.credit(credit_id).await?;
        let state = state.ok_or_else(|| IntakeError::CreditNotFound(credit_id.to_owned()))?;
        Ok((self.ledger.load_case(case_code).await?, state))
    }

    /// A person decides an unmatched credit is to be returned to the payer.
    pub async fn request_refund(
        &self,
        credit_id: &str,
        reason: &str,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<CreditState, IntakeError> {
        let (state, version) = self.credit(credit_id).await?;
        let state = state.ok_or_else(|| IntakeError::CreditNotFound(credit_id.to_owned()))?;
        let requested_by = metadata.actor.clone().unwrap_or_default();
        let events =
            state.decide_refund(CreditRefundRequested { reason: reason.trim().to_owned(), requested_by, at: now })?;
        self.append(credit_id, ExpectedVersion::Exact(version), events, metadata).await?;
        let (state, _) = self.credit(credit_id).await?;
        state.ok_or_else(|| IntakeError::CreditNotFound(credit_id.to_owned()))
    }

    /// Records that a credit marked for refund was paid back (issue 15); closes it.
    pub async fn record_refund(
        &self,
        credit_id: &str,
        refunded: feeledger_domain::bank_credit::CreditRefunded,
        metadata: &EventMetadata,
    ) -> Result<CreditState, IntakeError> {
        let (state, version) = self.credit(credit_id).await?;
        let state = state.ok_or_else(|| IntakeError::CreditNotFound(credit_id.to_owned()))?;
        let events = state.decide_refunded(refunded)?;
        self.append(credit_id, ExpectedVersion::Exact(version), events, metadata).await?;
        let (state, _) = self.credit(credit_id).await?;
        state.ok_or_else(|| IntakeError::CreditNotFound(credit_id.to_owned()))
    }

    /// Credits waiting for a person: of an agency, or of no known agency (`None`).
    pub async fn unmatched(&self, agency: Option<&AgencyCode>) -> Result<Vec<CreditState>, IntakeError> {
        let streams = self.ledger.store().unresolved_unmatched_credits(agency.map(AgencyCode::as_str)).await?;
        self.credit_states(streams, CreditState::awaits_decision).await
    }

    /// Credits marked for refund and not yet paid back (`recordRefund` closes them), oldest first.
    pub async fn awaiting_refund(&self, agency: Option<&AgencyCode>) -> Result<Vec<CreditState>, IntakeError> {
        let streams = self.ledger.store().credits_awaiting_refund(agency.map(AgencyCode::as_str)).await?;
        self.credit_states(streams, |_| true).await
    }

    /// The state of each credit stream listed, in order, those `keep` accepts.
    async fn credit_states(
        &self,
        streams: Vec<String>,
        keep: fn(&CreditState) -> bool,
    ) -> Result<Vec<CreditState>, IntakeError> {
        let mut credits = Vec::with_capacity(streams.len());
        for stream in streams {
            let Some(credit_id) = stream.strip_prefix(codec::BANK_CREDIT_STREAM_PREFIX) else { continue };
            if let (Some(state), _) = self.credit(credit_id).await?
                && keep(&state)
            {
                credits.push(state);
            }
        }
        Ok(credits)
    }
}
