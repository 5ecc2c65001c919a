//! Tamper evidence over the whole log, on top of each stream's hash chain.
//!
//! **Daily digests.** Once a Vietnamese calendar day is over, its events (all streams but the
//! digests' own) are sealed: `digest = SHA-256("feeledger-daily-digest-v1" || date ||
//! previous digest || (position || hash) of each event of the day in global position order)`.
//! The seal is appended as a [`DailyDigestSealed`] event to the `audit-digests` stream and can be
//! printed and published; each digest chains from the previous one, so changing any sealed day
//! changes every digest after it. A seal also records each touched stream's last version that
//! day, so a stream whose tail was cut off is named.
//!
//! **Verification** ([`Verifier`]) is one pass over the events, in any order (position order in
//! practice): each event's hash is recomputed from its content and its predecessor's stored hash
//! as soon as that predecessor has been seen (at once, when the stream is in order), and the
//! structure (versions, order, seals) is checked at the end. From a database the payload and
//! metadata are read as JSON text and written canonically straight from it, without a
//! `serde_json::Value` tree. It works the same on a database and on an exported JSON-lines file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::vietnam_time;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::hash_chain::{EventFacts, GENESIS, StoredFacts, canonical_bytes, canonical_bytes_of_stored};
use crate::storage::{
    AppendOutcome, AuditEntry, EventMetadata, ExpectedVersion, NewEvent, RecordedEvent, Storage, StoreError,
    StoredEvent,
};

/// The stream holding the daily seals.
pub const DIGEST_STREAM: &str = "audit-digests";
pub const DIGEST_EVENT_TYPE: &str = "DailyDigestSealed";
const DIGEST_DOMAIN: &[u8] = b"feeledger-daily-digest-v1";

/// How long after midnight a day is sealed: appends are short transactions (idle ones are cut
/// after 15 s), so by then every event recorded on that day has committed.
pub const SEAL_MARGIN: chrono::Duration = chrono::Duration::minutes(10);

/// The seal of one day of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyDigestSealed {
    pub date: NaiveDate,
    pub events: u64,
    pub first_position: i64,
    pub last_position: i64,
    /// Hex SHA-256 of the previous seal (64 zeros for the first).
    pub previous_digest: String,
    /// Hex SHA-256 of this day, chained from `previous_digest`.
    pub digest: String,
    /// Each stream written that day and its last version and position that day.
    pub heads: Vec<StreamHead>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHead {
    pub stream: String,
    pub version: i64,
    pub position: i64,
}

/// Computes a day's seal from its entries (in any order; the digest sorts them by position).
pub fn seal_day(date: NaiveDate, previous_digest: &[u8; 32], entries: &[&AuditEntry]) -> Option<DailyDigestSealed> {
    let mut sorted: Vec<&AuditEntry> = entries.iter().copied().filter(|e| e.stream_id != DIGEST_STREAM).collect();
    sorted.sort_by_key(|e| e.position);
    let (first, last) = (sorted.first()?, sorted.last()?);
    let mut heads: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for entry in &sorted {
        let head = heads.entry(&entry.stream_id).or_insert((entry.stream_version, entry.position));
        if entry.stream_version >= head.0 {
            *head = (entry.stream_version, entry.position);
        }
    }
    Some(DailyDigestSealed {
        date,
        events: sorted.len() as u64,
        first_position: first.position,
        last_position: last.position,
        previous_digest: hex::encode(previous_digest),
        digest: hex::encode(day_digest(date, previous_digest, &sorted)),
        heads: heads
            .into_iter()
            .map(|(stream, (version, position))| StreamHead { stream: stream.to_owned(), version, position })
            .collect(),
    })
}

fn day_digest(date: NaiveDate, previous: &[u8; 32], sorted: &[&AuditEntry]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DIGEST_DOMAIN);
    hasher.update(date.format("%Y-%m-%d").to_string().as_bytes());
    hasher.update(previous);
    for entry in sorted {
        hasher.update(entry.position.to_be_bytes());
        hasher.update(&entry.hash);
    }
    hasher.finalize().into()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// The last Vietnamese day that is over (by [`SEAL_MARGIN`]) at `now`.
pub fn last_sealable_day(now: DateTime<Utc>) -> NaiveDate {
    vietnam_time::date_of(now - SEAL_MARGIN).pred_opt().unwrap_or(NaiveDate::MIN)
}

/// Seals every day that is over at `now` and not sealed yet.
pub async fn seal_complete_days(store: &Storage, now: DateTime<Utc>) -> Result<Vec<DailyDigestSealed>, AuditError> {
    seal_through(store, last_sealable_day(now)).await
}

/// Seals every day up to and including `through` that is not sealed yet, oldest first. Safe
/// to run on several nodes at once: a seal is appended at the digest stream's expected version,
/// so only one node seals a given day.
pub async fn seal_through(store: &Storage, through: NaiveDate) -> Result<Vec<DailyDigestSealed>, AuditError> {
    let last_event = store.last_event(DIGEST_STREAM).await?;
    let version = last_event.as_ref().map_or(0, |e| e.stream_version);
    let last = last_event.as_ref().map(decode_seal).transpose()?;
    let mut previous = last.as_ref().and_then(|s| unhex(&s.digest)).unwrap_or(GENESIS);
    let first_day = match &last {
        Some(seal) => seal.date.succ_opt().unwrap_or(NaiveDate::MAX),
        None => match store.audit_entries(0, 1).await?.first() {
            Some(entry) => vietnam_time::date_of(entry.recorded_at),
            None => return Ok(Vec::new()),
        },
    };
    let mut seals = Vec::new();
    let mut day = first_day;
    while day <= through {
        let next = day.succ_opt().unwrap_or(NaiveDate::MAX);
        let entries =
            store.audit_entries_recorded_between(vietnam_time::start_of(day), vietnam_time::start_of(next)).await?;
        if let Some(seal) = seal_day(day, &previous, &entries.iter().collect::<Vec<_>>()) {
            previous = unhex(&seal.digest).unwrap_or(GENESIS);
            seals.push(seal);
        }
        day = next;
    }
    if seals.is_empty() {
        return Ok(seals);
    }
    let events = seals
        .iter()
        .map(|seal| {
            Ok(NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: DIGEST_EVENT_TYPE.to_owned(),
                schema_version: 1,
                payload: serde_json::to_value(seal)?,
                metadata: EventMetadata { actor: Some("system:audit-seal".into()), ..EventMetadata::default() },
            })
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|e| AuditError::Format(e.to_string()))?;
    let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
    match store.append(DIGEST_STREAM, expected, events, None).await {
        Ok(AppendOutcome::Appended(..) | AppendOutcome::AlreadyDone { .. }) => {
            for seal in &seals {
                tracing::info!(date = %seal.date, events = seal.events, digest = %seal.digest, "sealed a day of the log");
            }
            Ok(seals)
        }
        // Another node sealed first: its seals are the record.
        Err(StoreError::Conflict { .. }) => Ok(Vec::new()),
        Err(other) => Err(other.into()),
    }
}

/// The seals recorded so far, oldest first.
pub async fn seals(store: &Storage) -> Result<Vec<DailyDigestSealed>, AuditError> {
    store.read_stream(DIGEST_STREAM).await?.iter().map(decode_seal).collect()
}

fn decode_seal(event: &RecordedEvent) -> Result<DailyDigestSealed, AuditError> {
    serde_json::from_value(event.payload.clone())
        .map_err(|e| AuditError::Format(format!("seal at position {}: {e}", event.position)))
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unreadable audit input: {0}")]
    Format(String),
}

/// What is wrong with the log at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The event's stored content does not hash to its stored hash (its payload, metadata,
    /// type, time or another hashed field was changed).
    ContentChanged,
    /// Versions `from..=to` of the stream are not in the log.
    EventMissing { from: i64, to: i64 },
    /// The stream's versions are not in the order they were appended.
    OrderChanged { version: i64, previous_position: i64 },
    /// The stream ends at `found` but was sealed at `sealed` on `date`: its tail was removed.
    TailMissing { date: NaiveDate, sealed: i64, found: i64 },
    /// A sealed day no longer hashes to its seal.
    DigestMismatch { date: NaiveDate, sealed_events: u64, found_events: u64 },
    /// A seal does not chain from the seal before it.
    SealChainBroken { date: NaiveDate },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ContentChanged => f.write_str("payload changed: the stored event no longer matches its hash"),
            Problem::EventMissing { from, to } if from == to => write!(f, "event missing: version {from}"),
            Problem::EventMissing { from, to } => write!(f, "events missing: versions {from} to {to}"),
            Problem::OrderChanged { version, previous_position } => write!(
                f,
                "order changed: version {version} is stored before the previous version (at position {previous_position})"
            ),
            Problem::TailMissing { date, sealed, found } => write!(
                f,
                "event missing: the stream was sealed at version {sealed} on {date} but ends at version {found}"
            ),
            Problem::DigestMismatch { date, sealed_events, found_events } => write!(
                f,
                "digest mismatch: {date} was sealed with {sealed_events} events and now has {found_events} that hash differently"
            ),
            Problem::SealChainBroken { date } => {
                write!(f, "digest mismatch: the seal of {date} does not chain from the previous seal")
            }
        }
    }
}

/// One problem, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub position: i64,
    pub stream_id: String,
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {} at position {}: {}", self.stream_id, self.position, self.problem)
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    pub events: u64,
    pub streams: u64,
    pub sealed_days: u64,
    pub last_sealed_day: Option<NaiveDate>,
    /// Events after the last sealed day: hash-chained, not yet covered by a digest.
    pub unsealed_events: u64,
    /// Every problem found, first position first.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Indexed {
    version: i64,
    position: i64,
    hash: Vec<u8>,
}

/// An event whose predecessor in its stream had not been seen when it was: checked by `finish`.
#[derive(Debug, Clone)]
struct Deferred {
    position: i64,
    stream_id: String,
    version: i64,
    hash: Vec<u8>,
    canonical: Vec<u8>,
}

/// Checks a log in one pass: [`Verifier::add`] every event (and [`Verifier::add_seal`] every
/// seal, in position order), then [`Verifier::finish`].
#[derive(Debug, Default)]
pub struct Verifier {
    streams: HashMap<String, Vec<Indexed>>,
    by_day: BTreeMap<NaiveDate, Vec<AuditEntry>>,
    events: u64,
    findings: Vec<Finding>,
    seals: Vec<(i64, DailyDigestSealed)>,
    deferred: Vec<Deferred>,
}

fn chained_hash(previous: &[u8], canonical: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(previous).chain_update(canonical).finalize().into()
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// How many events were added.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// One event: where it is, its stored hash, and the canonical bytes its hash covers
    /// ([`canonical_bytes`]). Its hash is checked at once when its predecessor in the stream was
    /// the stream's last event added (a stream in order), otherwise by [`Verifier::finish`].
    pub fn add(&mut self, entry: AuditEntry, canonical: &[u8]) {
        self.events += 1;
        let stream = self.streams.entry(entry.stream_id.clone()).or_default();
        let previous = match stream.last() {
            None if entry.stream_version == 1 => Some(GENESIS.as_slice()),
            Some(last) if last.version == entry.stream_version - 1 => Some(last.hash.as_slice()),
            _ => None,
        };
        match previous {
            Some(previous) => {
                if chained_hash(previous, canonical).as_slice() != entry.hash.as_slice() {
                    self.findings.push(Finding {
                        position: entry.position,
                        stream_id: entry.stream_id.clone(),
                        problem: Problem::ContentChanged,
                    });
                }
            }
            None => self.deferred.push(Deferred {
                position: entry.position,
                stream_id: entry.stream_id.clone(),
                version: entry.stream_version,
                hash: entry.hash.clone(),
                canonical: canonical.to_vec(),
            }),
        }
        stream.push(Indexed { version: entry.stream_version, position: entry.position, hash: entry.hash.clone() });
        if entry.stream_id != DIGEST_STREAM {
            self.by_day.entry(vietnam_time::date_of(entry.recorded_at)).or_default().push(entry);
        }
    }

    /// A seal found in the log (a [`DIGEST_EVENT_TYPE`] event of [`DIGEST_STREAM`]), in position
    /// order.
    pub fn add_seal(&mut self, position: i64, seal: DailyDigestSealed) {
        self.seals.push((position, seal));
    }

    /// One event as read from an export.
    pub fn add_event(&mut self, event: RecordedEvent) -> Result<(), AuditError> {
        if event.stream_id == DIGEST_STREAM && event.event_type == DIGEST_EVENT_TYPE {
            self.add_seal(event.position, decode_seal(&event)?);
        }
        let canonical = canonical_bytes(&EventFacts::of(&event));
        let entry = AuditEntry {
            position: event.position,
            stream_id: event.stream_id,
            stream_version: event.stream_version,
            recorded_at: event.recorded_at,
            hash: event.hash,
        };
        self.add(entry, &canonical);
        Ok(())
    }

    /// Checks the events whose predecessor came after them (the stream's order was changed, or
    /// the input was not in position order), now that every stream is known and sorted.
    fn check_deferred(&mut self) {
        for event in std::mem::take(&mut self.deferred) {
            let Some(stream) = self.streams.get(&event.stream_id) else { continue };
            let Ok(at) = stream.binary_search_by_key(&event.version, |e| e.version) else { continue };
            let previous = match at.checked_sub(1).map(|i| &stream[i]) {
                None if event.version == 1 => GENESIS.as_slice(),
                Some(previous) if previous.version == event.version - 1 => previous.hash.as_slice(),
                // The predecessor is missing: reported as such, nothing to chain from here.
                _ => continue,
            };
            if chained_hash(previous, &event.canonical).as_slice() != event.hash.as_slice() {
                self.findings.push(Finding {
                    position: event.position,
                    stream_id: event.stream_id,
                    problem: Problem::ContentChanged,
                });
            }
        }
    }

    /// The structural checks (versions, order, seals) and the report.
    pub fn finish(mut self) -> AuditReport {
        for events in self.streams.values_mut() {
            events.sort_by_key(|e| e.version);
        }
        self.check_deferred();
        for (stream_id, events) in &self.streams {
            let mut expected = 1;
            let mut previous_position = None;
            for event in events {
                if event.version > expected {
                    self.findings.push(Finding {
                        position: event.position,
                        stream_id: stream_id.clone(),
                        problem: Problem::EventMissing { from: expected, to: event.version - 1 },
                    });
                }
                if let Some(previous_position) = previous_position.filter(|p| *p > event.position) {
                    self.findings.push(Finding {
                        position: event.position,
                        stream_id: stream_id.clone(),
                        problem: Problem::OrderChanged { version: event.version, previous_position },
                    });
                }
                expected = event.version + 1;
                previous_position = Some(event.position);
            }
        }
        let mut report = AuditReport {
            events: self.events,
            streams: self.streams.len() as u64,
            sealed_days: self.seals.len() as u64,
            last_sealed_day: self.seals.last().map(|(_, s)| s.date),
            ..AuditReport::default()
        };
        self.check_seals();
        report.unsealed_events = self
            .by_day
            .range(report.last_sealed_day.and_then(|d| d.succ_opt()).unwrap_or(NaiveDate::MIN)..)
            .map(|(_, entries)| entries.len() as u64)
            .sum();
        self.findings.sort_by_key(|f| (f.position, rank(&f.problem)));
        report.findings = self.findings;
        report
    }

    fn check_seals(&mut self) {
        let mut previous = GENESIS;
        for (position, seal) in std::mem::take(&mut self.seals) {
            if seal.previous_digest != hex::encode(previous) {
                self.findings.push(Finding {
                    position,
                    stream_id: DIGEST_STREAM.to_owned(),
                    problem: Problem::SealChainBroken { date: seal.date },
                });
            }
            let entries: Vec<&AuditEntry> = self.by_day.get(&seal.date).map(|v| v.iter().collect()).unwrap_or_default();
            let recomputed = seal_day(seal.date, &previous, &entries);
            if recomputed.as_ref().map(|r| &r.digest) != Some(&seal.digest) {
                self.findings.push(Finding {
                    position: first_difference(&seal, &entries).unwrap_or(position),
                    stream_id: DIGEST_STREAM.to_owned(),
                    problem: Problem::DigestMismatch {
                        date: seal.date,
                        sealed_events: seal.events,
                        found_events: entries.len() as u64,
                    },
                });
            }
            for head in &seal.heads {
                let found = self.streams.get(&head.stream).and_then(|s| s.last()).map_or(0, |e| e.version);
                if found < head.version {
                    self.findings.push(Finding {
                        position: head.position,
                        stream_id: head.stream.clone(),
                        problem: Problem::TailMissing { date: seal.date, sealed: head.version, found },
                    });
                }
            }
            previous = unhex(&seal.digest).unwrap_or(GENESIS);
        }
    }
}

/// Where a sealed day first departs from what is stored now, as far as the seal tells: its
/// first or last position moved.
fn first_difference(seal: &DailyDigestSealed, entries: &[&AuditEntry]) -> Option<i64> {
    let first = entries.iter().map(|e| e.position).min()?;
    let last = entries.iter().map(|e| e.position).max()?;
    if first != seal.first_position {
        Some(first.min(seal.first_position))
    } else if last != seal.last_position {
        Some(last.min(seal.last_position))
    } else {
        None
    }
}

/// At one position, the most specific problem first.
fn rank(problem: &Problem) -> u8 {
    match problem {
        Problem::EventMissing { .. } | Problem::TailMissing { .. } => 0,
        Problem::OrderChanged { .. } => 1,
        Problem::ContentChanged => 2,
        Problem::DigestMismatch { .. } | Problem::SealChainBroken { .. } => 3,
    }
}

/// Verifies the log in a database: every stream's chain, order and completeness, and every seal.
/// One pass in position order; the next page is read while this one is checked.
pub async fn verify_store(store: &Storage, mut progress: impl FnMut(u64)) -> Result<AuditReport, AuditError> {
    const PAGE: usize = 5_000;
    let (pages_tx, mut pages) = tokio::sync::mpsc::channel::<Result<Vec<StoredEvent>, StoreError>>(2);
    let reader = store.clone();
    let reading = tokio::spawn(async move {
        let mut after = 0;
        loop {
            let page = reader.stored_events(after, PAGE).await;
            let last = match &page {
                Ok(rows) => rows.last().map(|row| row.position),
                Err(_) => None,
            };
            let failed = page.is_err();
            if let Some(last) = last {
                after = last;
            } else if !failed {
                return;
            }
            if pages_tx.send(page).await.is_err() || failed {
                return;
            }
        }
    });
    let mut verifier = Verifier::new();
    let mut canonical = String::with_capacity(1024);
    while let Some(page) = pages.recv().await {
        for row in page? {
            verifier.add_stored(row, &mut canonical)?;
        }
        progress(verifier.events());
    }
    // The reader ended (or failed, which the last page said).
    let _ = reading.await;
    Ok(verifier.finish())
}

impl Verifier {
    fn add_stored(&mut self, row: StoredEvent, canonical: &mut String) -> Result<(), AuditError> {
        let facts = StoredFacts {
            stream_id: &row.stream_id,
            stream_version: row.stream_version,
            event_id: row.event_id,
            event_type: &row.event_type,
            schema_version: row.schema_version,
            payload: &row.payload,
            metadata: &row.metadata,
            recorded_at: row.recorded_at,
        };
        canonical_bytes_of_stored(&facts, canonical)
            .map_err(|e| AuditError::Format(format!("event at position {}: {e}", row.position)))?;
        if row.stream_id == DIGEST_STREAM && row.event_type == DIGEST_EVENT_TYPE {
            let seal = serde_json::from_str(&row.payload)
                .map_err(|e| AuditError::Format(format!("seal at position {}: {e}", row.position)))?;
            self.add_seal(row.position, seal);
        }
        let entry = AuditEntry {
            position: row.position,
            stream_id: row.stream_id,
            stream_version: row.stream_version,
            recorded_at: row.recorded_at,
            hash: row.hash,
        };
        self.add(entry, canonical.as_bytes());
        Ok(())
    }
}

/// Verifies an exported JSON-lines file (`feeledger export events`), offline, in one pass.
pub fn verify_file(path: &std::path::Path, mut progress: impl FnMut(u64)) -> Result<AuditReport, AuditError> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).map_err(|e| AuditError::Format(format!("{}: {e}", path.display())))?;
    let mut verifier = Verifier::new();
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| AuditError::Format(format!("{}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: RecordedEvent = serde_json::from_str(&line)
            .map_err(|e| AuditError::Format(format!("{} line {}: {e}", path.display(), number + 1)))?;
        verifier.add_event(event)?;
        if verifier.events().is_multiple_of(10_000) {
            progress(verifier.events());
        }
    }
    progress(verifier.events());
    Ok(verifier.finish())
}
