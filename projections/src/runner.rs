//! The projection runner: follows the log in commit-safe order and keeps every read model up to
//! date, one transaction per batch that writes the documents *and* the checkpoint (a crash
//! never applies a batch twice or skips one).
//!
//! Rebuild is blue/green: the next generation is built from position zero in large batches
//! while the active one keeps answering queries and keeps following new events; when the new
//! generation has caught up, one UPDATE makes it the active one and the old one is dropped.
//! A projection whose code version changed is rebuilt the same way when the runner starts.
//!
//! Several runners (nodes, or a CLI rebuild beside a server) may follow the same generation:
//! the checkpoint moves only if it is still where the batch started, so exactly one of them
//! applies each batch.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use feeledger_infrastructure::codec::CodecError;
use feeledger_infrastructure::storage::{Checkpoint, LeanEvent, READ_BATCH_MAX, Storage, StoreError};
use feeledger_infrastructure::tasks::Tasks;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, broadcast};
use tracing::Instrument as _;

use crate::documents::{Advance, Changes, DocumentStore};
use crate::lease::Lease;

/// Events per batch while following the log.
pub const LIVE_BATCH: usize = 500;
/// While following the log, a projection starts a batch at most this often when commits keep
/// coming: the commits of a busy moment are applied, and their documents written, in one
/// transaction rather than one each (issue 17: each batch costs the database several round
/// trips and a commit, whatever its size). A commit after a quiet spell is applied at once, and
/// an explicit wake-up (`Runner::caught_up`) does not wait.
pub const LIVE_GATHER: Duration = Duration::from_millis(25);
/// Events per batch while rebuilding (fewer, larger transactions): a document touched by many
/// events — a busy day's totals and the cases it still has to remit — is written once per
/// batch, so larger batches write it fewer times (read in pages of `READ_BATCH_MAX`).
pub const REBUILD_BATCH: usize = 50_000;

/// A batch of the log being read ahead, in a task of its own, while the batch before it is
/// applied and committed: a rebuild's reads (PostgreSQL's work) then overlap its applying (ours).
struct ReadAhead {
    /// Where the batch starts: it is used only by a step that starts there.
    from: Checkpoint,
    read: tokio::task::JoinHandle<Result<(Checkpoint, Vec<LeanEvent>), StoreError>>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Not needed after all (another runner applied the batch, the rebuild ended).
        self.read.abort();
    }
}

/// A rebuild overlaps its three stages: the next batch is read (PostgreSQL's work) and this one
/// applied (ours) while the batch before it commits (PostgreSQL's again). Commits stay in order:
/// a batch commits from the checkpoint the one before it committed, so it waits for that one.
#[derive(Default)]
struct Pipeline {
    read: Option<ReadAhead>,
    /// The previous batch's commit, still running (not aborted when dropped: a batch commits
    /// whole or not at all, and only from where the checkpoint is).
    commit: Option<tokio::task::JoinHandle<Result<bool, StoreError>>>,
}

impl Pipeline {
    /// Waits for the commit in flight, if any: whether it committed (`false`: another runner
    /// applied that batch first).
    async fn settle(&mut self) -> Result<bool, ProjectionError> {
        match self.commit.take() {
            Some(commit) => Ok(commit.await.map_err(|e| ProjectionError::Commit(e.to_string()))??),
            None => Ok(true),
        }
    }
}

/// The generation being built on this runner.
struct Building {
    generation: i32,
    docs: Documents,
    started: Instant,
    total: i64,
    /// Where the last batch ends (committed, or committing in `pipeline`): where the next starts.
    checkpoint: Option<Checkpoint>,
    pipeline: Pipeline,
}

/// The log's head, then up to `batch` events of `types` after `from`: the head first, so that
/// a short batch proves nothing of these types lies between its last event and the head.
async fn read_batch(
    store: &Storage,
    from: Checkpoint,
    batch: usize,
    types: &[&str],
) -> Result<(Checkpoint, Vec<LeanEvent>), StoreError> {
    let head = store.last_checkpoint().await?;
    let mut events = Vec::new();
    let mut after = from;
    // In pages of at most READ_BATCH_MAX, until the batch is full or a page comes back short.
    while events.len() < batch {
        let wanted = (batch - events.len()).min(READ_BATCH_MAX);
        let page = store.read_all_of_types(after, wanted, types).await?;
        let short = page.len() < wanted;
        after = page.last().map_or(after, LeanEvent::checkpoint);
        events.extend(page);
        if short {
            break;
        }
    }
    Ok((head, events))
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("document {key} of projection {projection} is unreadable: {reason}")]
    Document { projection: &'static str, key: String, reason: String },
    #[error("unknown projection {0:?}")]
    Unknown(String),
    #[error("projection {0} did not catch up with the log in time")]
    Lagging(&'static str),
    #[error("reading the next batch of the log ahead failed: {0}")]
    ReadAhead(String),
    #[error("committing a rebuild batch failed: {0}")]
    Commit(String),
}

/// A read model: a name, a code version, and how each event changes its documents.
pub trait Projection: Send + Sync + 'static {
    /// Stable: the CLI, GraphQL and the tables use it.
    const NAME: &'static str;
    /// Bump when `apply` changes meaning: the runner then rebuilds the projection.
    const VERSION: u32;

    /// The event types this projection reads; the database skips the others.
    const EVENT_TYPES: &'static [&'static str];

    /// Applies one event of [`Self::EVENT_TYPES`]. The projection decodes what it reads:
    /// usually the whole event ([`feeledger_infrastructure::codec::LedgerEvent::decode_lean`]), or only the few fields it needs
    /// of a frequent one ([`feeledger_infrastructure::codec::decode_lean_as`]).
    fn apply(
        &self,
        docs: &mut Documents,
        event: &LeanEvent,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;

    /// Called once before a generation is built from position zero: loads what must be known
    /// as of *now* rather than as of each replayed event (e.g. the fee rules in force, so a
    /// corrected rule applies to past payments after a rebuild).
    fn prepare(
        &self,
        docs: &mut Documents,
        store: &Storage,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send {
        let _ = (docs, store);
        async { Ok(()) }
    }
}

/// A document in the working set.
enum Slot {
    /// Known not to exist.
    Absent,
    /// As read from the database, not yet needed in typed form.
    Raw(Value),
    /// Deserialised once; turned back into JSON only when the batch is written.
    Typed(Box<dyn Any + Send + Sync>, ToJson),
}

type ToJson = fn(&(dyn Any + Send + Sync)) -> Result<String, serde_json::Error>;

/// A typed document's JSON text (`null` if it is not a `T`, which `Documents` never stores).
fn to_json<T: Serialize + 'static>(doc: &(dyn Any + Send + Sync)) -> Result<String, serde_json::Error> {
    doc.downcast_ref::<T>().map_or_else(|| Ok("null".to_owned()), serde_json::to_string)
}

/// A batch's working set of documents: read through to the database once per key, kept typed
/// in memory while events are applied, written back as JSON with the checkpoint.
pub struct Documents {
    store: DocumentStore,
    projection: &'static str,
    generation: i32,
    /// foldhash, not SipHash: a rebuild looks each key up several times, and SipHash was 6% of
    /// a payments rebuild's CPU samples (`perf`); foldhash is seeded per process too.
    cache: HashMap<String, Slot, foldhash::fast::RandomState>,
    /// The keys changed in this batch, each with whether the generation may hold it already
    /// (else it is written with a plain insert: see `take_changes`).
    dirty: BTreeMap<String, bool>,
    /// The cache holds every document of the generation (it was built here from position
    /// zero): a miss means "absent", no query needed.
    complete: bool,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("projection", &self.projection)
            .field("generation", &self.generation)
            .field("cached", &self.cache.len())
            .field("dirty", &self.dirty.len())
            .finish()
    }
}

/// What a document type needs to live in the working set.
pub trait Document: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Document for T {}

impl Documents {
    fn new(store: DocumentStore, projection: &'static str, generation: i32, complete: bool) -> Self {
        Documents { store, projection, generation, cache: HashMap::default(), dirty: BTreeMap::new(), complete }
    }

    fn error(&self, key: &str, reason: impl std::fmt::Display) -> ProjectionError {
        ProjectionError::Document { projection: self.projection, key: key.to_owned(), reason: reason.to_string() }
    }

    /// Makes `key` present in the cache, typed as `T` (or known absent).
    async fn load<T: Document>(&mut self, key: &str) -> Result<(), ProjectionError> {
        if !self.cache.contains_key(key) {
            let slot = if self.complete {
                Slot::Absent
            } else {
                match self.store.load(self.projection, self.generation, &[key.to_owned()]).await?.remove(key) {
                    Some(value) => Slot::Raw(value),
                    None => Slot::Absent,
                }
            };
            self.cache.insert(key.to_owned(), slot);
        }
        if let Some(slot) = self.cache.get_mut(key)
            && let Slot::Raw(value) = slot
        {
            let typed: T = serde_json::from_value(value.take()).map_err(|e| ProjectionError::Document {
                projection: self.projection,
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
            *slot = Slot::Typed(Box::new(typed), to_json::<T>);
        }
        Ok(())
    }

    /// Reads the document at `key` without copying it.
    pub async fn read<T: Document, R>(
        &mut self,
        key: &str,
        f: impl FnOnce(Option<&T>) -> R,
    ) -> Result<R, ProjectionError> {
        self.load::<T>(key).await?;
        match self.cache.get(key) {
            Some(Slot::Typed(doc, _)) => match doc.downcast_ref::<T>() {
                Some(doc) => Ok(f(Some(doc))),
                None => Err(self.error(key, "read as another type")),
            },
            _ => Ok(f(None)),
        }
    }

    /// A copy of the document at `key`, if any.
    pub async fn get<T: Document + Clone>(&mut self, key: &str) -> Result<Option<T>, ProjectionError> {
        self.read::<T, _>(key, |doc| doc.cloned()).await
    }

    /// Changes the document at `key` in place (created with `default` when absent).
    pub async fn update<T: Document, R>(
        &mut self,
        key: &str,
        default: impl FnOnce() -> T,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, ProjectionError> {
        self.load::<T>(key).await?;
        let projection = self.projection;
        let error =
            || ProjectionError::Document { projection, key: key.to_owned(), reason: "updated as another type".into() };
        self.mark_dirty(key);
        let slot = self.cache.entry(key.to_owned()).or_insert(Slot::Absent);
        if matches!(slot, Slot::Absent) {
            *slot = Slot::Typed(Box::new(default()), to_json::<T>);
        }
        let Slot::Typed(doc, _) = slot else { return Err(error()) };
        let doc = doc.downcast_mut::<T>().ok_or_else(error)?;
        Ok(f(doc))
    }

    pub fn put<T: Document>(&mut self, key: &str, doc: T) -> Result<(), ProjectionError> {
        self.mark_dirty(key);
        self.cache.insert(key.to_owned(), Slot::Typed(Box::new(doc), to_json::<T>));
        Ok(())
    }

    pub fn delete(&mut self, key: &str) {
        self.mark_dirty(key);
        self.cache.insert(key.to_owned(), Slot::Absent);
    }

    /// Notes that `key` changes in this batch, before it does: whether the generation may hold
    /// it already. Only a generation built here from position zero knows it does not (every
    /// document it holds is in the cache, as its batches committed it).
    fn mark_dirty(&mut self, key: &str) {
        if !self.dirty.contains_key(key) {
            let stored = !self.complete || matches!(self.cache.get(key), Some(Slot::Typed(..) | Slot::Raw(_)));
            self.dirty.insert(key.to_owned(), stored);
        }
    }

    fn take_changes(&mut self) -> Result<Changes, ProjectionError> {
        let mut changes = Changes::default();
        for (key, stored) in std::mem::take(&mut self.dirty) {
            let json = match self.cache.get(&key) {
                Some(Slot::Typed(doc, to_json)) => to_json(doc.as_ref()).map_err(|e| self.error(&key, e))?,
                Some(Slot::Raw(value)) => value.to_string(),
                Some(Slot::Absent) | None => {
                    if stored {
                        changes.deletes.push(key);
                    }
                    continue;
                }
            };
            if stored { changes.upserts.push((key, json)) } else { changes.inserts.push((key, json)) }
        }
        Ok(changes)
    }
}

/// What a projection is doing, for the CLI, GraphQL and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionStatus {
    pub name: &'static str,
    pub version: u32,
    pub generation: i32,
    pub checkpoint: Checkpoint,
    /// Events after the checkpoint of the active generation.
    pub lag: i64,
    pub rebuild: Option<RebuildProgress>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebuildProgress {
    pub generation: i32,
    pub done: i64,
    pub total: i64,
    pub events_per_second: i64,
    pub eta_seconds: Option<i64>,
    /// True once the new generation answers queries.
    pub finished: bool,
}

/// A progress announcement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub name: &'static str,
    pub rebuild: RebuildProgress,
}

/// The projections of feeledger.
pub const NAMES: [&str; 4] = [
    crate::treasury::TreasuryProjection::NAME,
    crate::payments::PaymentsProjection::NAME,
    crate::cashless::CashlessProjection::NAME,
    crate::receipts::ReceiptsProjection::NAME,
];

fn types_of(name: &str) -> &'static [&'static str] {
    match name {
        crate::treasury::TreasuryProjection::NAME => crate::treasury::TreasuryProjection::EVENT_TYPES,
        crate::payments::PaymentsProjection::NAME => crate::payments::PaymentsProjection::EVENT_TYPES,
        crate::cashless::CashlessProjection::NAME => crate::cashless::CashlessProjection::EVENT_TYPES,
        crate::receipts::ReceiptsProjection::NAME => crate::receipts::ReceiptsProjection::EVENT_TYPES,
        _ => &[],
    }
}

fn version_of(name: &str) -> Option<u32> {
    match name {
        crate::treasury::TreasuryProjection::NAME => Some(crate::treasury::TreasuryProjection::VERSION),
        crate::payments::PaymentsProjection::NAME => Some(crate::payments::PaymentsProjection::VERSION),
        crate::cashless::CashlessProjection::NAME => Some(crate::cashless::CashlessProjection::VERSION),
        crate::receipts::ReceiptsProjection::NAME => Some(crate::receipts::ReceiptsProjection::VERSION),
        _ => None,
    }
}

fn canonical_name(name: &str) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| *n == name)
}

#[derive(Debug, Clone)]
pub struct Runner {
    docs: DocumentStore,
    poll: Duration,
    wake: Arc<Notify>,
    progress: broadcast::Sender<Progress>,
    /// Where [`Runner::spawn_all`] runs the projections.
    tasks: Tasks,
    /// Events per batch while rebuilding ([`REBUILD_BATCH`]; smaller in tests, to cross many).
    rebuild_batch: usize,
}

impl Runner {
    pub fn new(store: Storage, poll: Duration) -> Self {
        let (progress, _) = broadcast::channel(256);
        Runner {
            docs: DocumentStore::new(store),
            poll,
            wake: Arc::new(Notify::new()),
            progress,
            tasks: Tasks::default(),
            rebuild_batch: REBUILD_BATCH,
        }
    }

    /// Rebuilds in batches of `events` instead of [`REBUILD_BATCH`] (tests: a small log then
    /// spans many batches, each read ahead of the one before).
    #[must_use]
    pub fn with_rebuild_batch(mut self, events: usize) -> Self {
        self.rebuild_batch = events.max(1);
        self
    }

    /// Runs the projections among `tasks` (the service's, stopped on shutdown) rather than in a
    /// set of their own.
    #[must_use]
    pub fn with_tasks(mut self, tasks: Tasks) -> Self {
        self.tasks = tasks;
        self
    }

    pub fn documents(&self) -> &DocumentStore {
        &self.docs
    }

    pub fn store(&self) -> &Storage {
        self.docs.events()
    }

    pub fn subscribe_progress(&self) -> broadcast::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Follows the log with every projection, each in its own task, until the process ends or
    /// the runner's tasks are shut down.
    pub fn spawn_all(&self) {
        self.spawn(crate::treasury::TreasuryProjection);
        self.spawn(crate::payments::PaymentsProjection);
        self.spawn(crate::cashless::CashlessProjection);
        self.spawn(crate::receipts::ReceiptsProjection);
    }

    /// Runs `projection` on this node whenever it holds the projection's lease (one node of
    /// several at a time; see `lease`), and stands by otherwise.
    fn spawn<P: Projection>(&self, projection: P) {
        let runner = self.clone();
        self.tasks.spawn(P::NAME, async move {
            loop {
                let mut lease = Lease::acquire(runner.store(), P::NAME).await;
                tokio::select! {
                    result = runner.follow(&projection, None).instrument(tracing::info_span!("projection", projection = P::NAME)) => match result {
                        Ok(()) => return,
                        Err(error) => tracing::error!(projection = P::NAME, %error, "projection failed; restarting"),
                    },
                    () = lease.lost() => tracing::warn!(projection = P::NAME, "projection lease lost; standing by"),
                }
                drop(lease);
                tokio::time::sleep(runner.poll).await;
            }
        });
    }

    /// Follows the log with one projection. With `until_switched`, returns once that rebuild
    /// generation became the active one (the CLI's `projections rebuild`); otherwise runs on.
    pub async fn follow<P: Projection>(
        &self,
        projection: &P,
        until_switched: Option<i32>,
    ) -> Result<(), ProjectionError> {
        let mut notices = self.store().subscribe();
        let state = self.docs.ensure(P::NAME, P::VERSION, Utc::now()).await?;
        // A generation replaced by a switch whose drop was cut short (the process stopped).
        drop_replaced(&self.docs, P::NAME).await;
        if let Some(active) = self.docs.checkpoint(P::NAME, state.active).await?
            && active.code_version != i32::try_from(P::VERSION).unwrap_or(i32::MAX)
            && state.building.is_none()
        {
            tracing::info!(
                projection = P::NAME,
                from = active.code_version,
                to = P::VERSION,
                "code changed: rebuilding"
            );
            self.docs.start_rebuild(P::NAME, P::VERSION, Utc::now()).await?;
        }
        // The building generation's documents, kept across batches while it is built here,
        // with its batches in flight.
        let mut building: Option<Building> = None;
        // The live generation known to be past its first batch (no preparation to look for).
        let mut prepared: Option<i32> = None;
        // The live generation's checkpoint as this runner last committed it (not read again: a
        // batch commits only from the checkpoint it started at, so a stale one fails to commit
        // and is then read afresh).
        let mut live_from: Option<(i32, Checkpoint)> = None;
        // When the live generation last started a batch (one that found no event of this
        // projection's types still moves its checkpoint, in a transaction of its own).
        let mut live_stepped_at: Option<Instant> = None;
        loop {
            let Some(state) = self.docs.state(P::NAME).await? else { return Ok(()) };
            if let Some(target) = until_switched
                && state.active == target
            {
                return Ok(());
            }
            // A rebuild run from the CLI builds only the new generation: the active one is kept
            // up to date by the servers' runners (and replaced at the switch anyway).
            // Whether the live generation reached the end of the readable log: then it waits for
            // the next commit rather than reading once more to find nothing (a commit after the
            // read is announced after it, so its notice is still to come).
            let live_caught_up = if until_switched.is_some() {
                true
            } else {
                let mut live = Documents::new(self.docs.clone(), P::NAME, state.active, false);
                if prepared != Some(state.active) {
                    if self.docs.checkpoint(P::NAME, state.active).await?.is_some_and(|c| c.events_seen == 0) {
                        projection.prepare(&mut live, self.store()).await?;
                    } else {
                        // Events seen: the generation is past its first batch for good.
                        prepared = Some(state.active);
                    }
                }
                let mut known = live_from.filter(|(g, _)| *g == state.active).map(|(_, c)| c);
                live_stepped_at = Some(Instant::now());
                let (applied, at_end) = self.step(projection, &mut live, LIVE_BATCH, &mut known, None).await?;
                live_from = known.map(|c| (state.active, c));
                applied == 0 || at_end
            };

            let mut rebuilt = 0;
            if let Some(generation) = state.building {
                if building.as_ref().is_none_or(|b| b.generation != generation) {
                    let stored = self.docs.checkpoint(P::NAME, generation).await?;
                    let fresh = stored.as_ref().is_some_and(|c| c.events_seen == 0);
                    let total = self.store().count_of_types(P::EVENT_TYPES).await?;
                    let mut docs = Documents::new(self.docs.clone(), P::NAME, generation, fresh);
                    if fresh {
                        projection.prepare(&mut docs, self.store()).await?;
                    }
                    // Built from the checkpoint it was judged fresh (or not) at, not one read
                    // later: another runner may commit its first batch in between, and this one,
                    // believing the generation empty, would then insert documents that batch
                    // wrote. From the checkpoint seen, its first commit finds the checkpoint
                    // moved and it carries on as a runner that lost a batch.
                    let checkpoint = stored.map(|c| c.checkpoint);
                    let pipeline = Pipeline::default();
                    building =
                        Some(Building { generation, docs, started: Instant::now(), total, checkpoint, pipeline });
                }
                if let Some(b) = building.as_mut() {
                    let (applied, caught_up) = self
                        .step(projection, &mut b.docs, self.rebuild_batch, &mut b.checkpoint, Some(&mut b.pipeline))
                        .await?;
                    rebuilt = applied;
                    let done = self.docs.checkpoint(P::NAME, b.generation).await?.map_or(0, |c| c.events_seen);
                    b.total = b.total.max(done);
                    if caught_up {
                        self.docs.switch(P::NAME, b.generation, Utc::now()).await?;
                        tracing::info!(
                            projection = P::NAME,
                            generation = b.generation,
                            events = done,
                            "rebuild finished"
                        );
                        // A server's runner goes on following the log at once; the replaced
                        // generation's documents go in the background (the CLI drops them
                        // itself, after it reported the rebuild; a stop cut short is finished
                        // when a runner starts).
                        if until_switched.is_none() {
                            let docs = self.docs.clone();
                            self.tasks.spawn("replaced generation drop", async move {
                                drop_replaced(&docs, P::NAME).await;
                            });
                        }
                    }
                    let _ = self.progress.send(Progress {
                        name: P::NAME,
                        rebuild: progress(b.generation, done, b.total, b.started, caught_up),
                    });
                    if caught_up {
                        building = None;
                    }
                }
            }
            if live_caught_up && rebuilt == 0 {
                let woken = tokio::select! {
                    _ = notices.recv() => false,
                    () = self.wake.notified() => true,
                    () = tokio::time::sleep(self.poll) => false,
                };
                if let Some(gathered) = gather_until(live_stepped_at, Instant::now(), woken) {
                    tokio::select! {
                        () = tokio::time::sleep_until(gathered.into()) => {}
                        () = self.wake.notified() => {}
                    }
                }
                // Commits announced so far are all readable now, and the next batch reads them
                // all: one pass for any number of them, not one pass per announcement.
                while !matches!(
                    notices.try_recv(),
                    Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
                ) {}
            }
        }
    }

    /// Applies one batch to a generation. Returns how many events it applied and whether it
    /// reached the end of the readable log. `known` is the generation's checkpoint if the caller
    /// knows it (it is read otherwise), and becomes the checkpoint after the batch. With
    /// `pipeline` (a rebuild), a full batch starts reading the next one before it is applied,
    /// and commits while the caller goes on with the next; the last batch (at the end of the
    /// log) is committed before this returns, so a caught-up generation is all committed.
    async fn step<P: Projection>(
        &self,
        projection: &P,
        docs: &mut Documents,
        batch: usize,
        known: &mut Option<Checkpoint>,
        mut pipeline: Option<&mut Pipeline>,
    ) -> Result<(usize, bool), ProjectionError> {
        let from = match known.take() {
            Some(checkpoint) => checkpoint,
            None => match self.docs.checkpoint(P::NAME, docs.generation).await? {
                Some(stored) => stored.checkpoint,
                None => return Ok((0, true)),
            },
        };
        // The batch as read ahead, if it was and starts here; read now otherwise.
        let (head, events) = match pipeline.as_deref_mut().and_then(|p| p.read.take()) {
            Some(mut read) if read.from == from => {
                (&mut read.read).await.map_err(|e| ProjectionError::ReadAhead(e.to_string()))??
            }
            _ => read_batch(self.store(), from, batch, P::EVENT_TYPES).await?,
        };
        let at_end = events.len() < batch;
        let mut to = events.last().map_or(from, LeanEvent::checkpoint);
        if let Some(pipeline) = pipeline.as_deref_mut()
            && !at_end
        {
            let store = self.store().clone();
            pipeline.read = Some(ReadAhead {
                from: to,
                read: tokio::spawn(async move { read_batch(&store, to, batch, P::EVENT_TYPES).await }),
            });
        }
        if at_end && head > to {
            to = head;
        }
        if to == from {
            // Nothing more to apply: the batch before, if still committing, must have committed.
            if let Some(pipeline) = pipeline
                && !pipeline.settle().await?
            {
                return Ok(Self::lost_the_batch(docs));
            }
            *known = Some(from);
            return Ok((0, true));
        }
        for event in &events {
            projection.apply(docs, event).await?;
        }
        let changes = docs.take_changes()?;
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let advance = Advance { from, to, events: count, now: Utc::now() };
        let committed = match pipeline {
            None => self.docs.commit(P::NAME, docs.generation, advance, &changes).await?,
            Some(pipeline) => {
                // This batch starts where the one before ends: that one commits first.
                if !pipeline.settle().await? {
                    return Ok(Self::lost_the_batch(docs));
                }
                let (store, generation) = (self.docs.clone(), docs.generation);
                let commit = tokio::spawn(async move { store.commit(P::NAME, generation, advance, &changes).await });
                pipeline.commit = Some(commit);
                // The last one commits now: the caller may switch to the generation next.
                !at_end || pipeline.settle().await?
            }
        };
        if !committed {
            return Ok(Self::lost_the_batch(docs));
        }
        *known = Some(to);
        Ok((events.len(), at_end))
    }

    /// Another runner applied a batch of this generation first: forget what this one cached
    /// (the caller reads the checkpoint again).
    fn lost_the_batch(docs: &mut Documents) -> (usize, bool) {
        docs.cache.clear();
        docs.complete = false;
        (0, false)
    }

    /// Asks for a rebuild of `name` (this process's runner starts it at once; others within a
    /// poll interval).
    pub async fn request_rebuild(&self, name: &str) -> Result<(&'static str, i32), ProjectionError> {
        let name = canonical_name(name).ok_or_else(|| ProjectionError::Unknown(name.to_owned()))?;
        let version = version_of(name).ok_or_else(|| ProjectionError::Unknown(name.to_owned()))?;
        self.docs.ensure(name, version, Utc::now()).await?;
        let generation = self.docs.start_rebuild(name, version, Utc::now()).await?;
        self.wake.notify_waiters();
        Ok((name, generation))
    }

    /// Runs a requested rebuild of `name` in this process until it is switched in.
    pub async fn rebuild_here(&self, name: &str) -> Result<i32, ProjectionError> {
        let (name, generation) = self.request_rebuild(name).await?;
        match name {
            crate::treasury::TreasuryProjection::NAME => {
                self.follow(&crate::treasury::TreasuryProjection, Some(generation)).await?
            }
            crate::payments::PaymentsProjection::NAME => {
                self.follow(&crate::payments::PaymentsProjection, Some(generation)).await?
            }
            crate::cashless::CashlessProjection::NAME => {
                self.follow(&crate::cashless::CashlessProjection, Some(generation)).await?
            }
            _ => self.follow(&crate::receipts::ReceiptsProjection, Some(generation)).await?,
        }
        Ok(generation)
    }

    pub async fn status(&self, name: &str) -> Result<ProjectionStatus, ProjectionError> {
        let name = canonical_name(name).ok_or_else(|| ProjectionError::Unknown(name.to_owned()))?;
        let version = version_of(name).unwrap_or_default();
        // A read (GraphQL, every metrics scrape): write only for a projection never seen.
        let state = match self.docs.state(name).await? {
            Some(state) => state,
            None => self.docs.ensure(name, version, Utc::now()).await?,
        };
        let active = self.docs.checkpoint(name, state.active).await?;
        let checkpoint = active.as_ref().map_or(Checkpoint::START, |c| c.checkpoint);
        let lag = self.store().count_after(checkpoint).await?;
        let rebuild = match state.building {
            None => None,
            Some(generation) => {
                let built = self.docs.checkpoint(name, generation).await?;
                let total = self.store().count_of_types(types_of(name)).await?;
                built.map(|c| {
                    let elapsed = (c.updated_at - c.started_at).num_milliseconds().max(1);
                    let rate = c.events_seen * 1000 / elapsed;
                    RebuildProgress {
                        generation,
                        done: c.events_seen,
                        total,
                        events_per_second: rate,
                        eta_seconds: (rate > 0).then(|| (total - c.events_seen).max(0) / rate),
                        finished: false,
                    }
                })
            }
        };
        Ok(ProjectionStatus { name, version, generation: state.active, checkpoint, lag, rebuild })
    }

    pub async fn statuses(&self) -> Result<Vec<ProjectionStatus>, ProjectionError> {
        let mut all = Vec::with_capacity(NAMES.len());
        for name in NAMES {
            all.push(self.status(name).await?);
        }
        Ok(all)
    }

    /// Like [`Runner::caught_up`], for reads: waits up to `timeout`, then answers whether the
    /// read model has caught up (a report may then be served slightly behind).
    pub async fn wait_for(&self, name: &'static str, timeout: Duration) -> bool {
        match self.caught_up(name, timeout).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(projection = name, %error, "serving a read model that is behind the log");
                false
            }
        }
    }

    /// Waits until `name` has applied every readable event (a command about to rely on a read
    /// model calls this first).
    pub async fn caught_up(&self, name: &'static str, timeout: Duration) -> Result<(), ProjectionError> {
        let deadline = Instant::now() + timeout;
        // Every write committed before this call, readable or not yet.
        let target = self.store().committed_checkpoint().await?;
        loop {
            let state = self.docs.state(name).await?;
            let at = match state {
                Some(state) => self.docs.checkpoint(name, state.active).await?.map(|c| c.checkpoint),
                None => None,
            };
            if at.is_some_and(|c| c >= target) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProjectionError::Lagging(name));
            }
            self.wake.notify_waiters();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Until when a live projection, told of a commit, gathers the commits that follow before its
/// next batch: `LIVE_GATHER` after its last batch started, if that is still to come. Nothing to
/// wait for after a quiet spell (the last batch long ago, or none), nor when it was woken
/// explicitly (a caller waiting for it to catch up).
fn gather_until(last_batch: Option<Instant>, now: Instant, woken: bool) -> Option<Instant> {
    let until = last_batch? + LIVE_GATHER;
    (!woken && until > now).then_some(until)
}

fn progress(generation: i32, done: i64, total: i64, started: Instant, finished: bool) -> RebuildProgress {
    let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX).max(1);
    let rate = done * 1000 / elapsed_ms;
    RebuildProgress {
        generation,
        done,
        total,
        events_per_second: rate,
        eta_seconds: (rate > 0 && !finished).then(|| (total - done).max(0) / rate),
        finished,
    }
}

/// Deletes the documents of `name`'s replaced generations, and says so. A failure is logged,
/// not raised: the documents stay until the next drop (a runner's start, the next switch), and
/// nothing reads a replaced generation.
async fn drop_replaced(docs: &DocumentStore, name: &'static str) {
    let started = Instant::now();
    match docs.drop_replaced_generations(name).await {
        Ok(0) => {}
        Ok(documents) => tracing::info!(
            projection = name,
            documents,
            seconds = started.elapsed().as_secs_f64(),
            "dropped the documents of a replaced generation"
        ),
        Err(error) => {
            tracing::warn!(projection = name, %error, "the replaced generation's documents are kept until the next drop")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_after_a_quiet_spell_is_applied_at_once_and_a_busy_moments_commits_are_gathered() {
        let now = Instant::now();
        // No batch yet, or the last one long ago: at once.
        assert_eq!(gather_until(None, now, false), None);
        assert_eq!(gather_until(Some(now - LIVE_GATHER * 4), now, false), None);
        // The last batch started 5 ms ago: the commits that follow are gathered until
        // `LIVE_GATHER` after it, into one batch.
        let last = now - Duration::from_millis(5);
        assert_eq!(gather_until(Some(last), now, false), Some(last + LIVE_GATHER));
        // A caller waiting for the projection to catch up does not wait for the gathering.
        assert_eq!(gather_until(Some(last), now, true), None);
    }
}
