//! Routes the live feed's events to the subscriptions they concern.
//!
//! One task per process reads the [`LiveFeed`] and looks up, for each event, the few
//! [`Topic`]s it is about (its stream; the counter it activates; the agency whose money it
//! moves). Only the subscriptions following one of those topics are woken, so the cost of a
//! commit does not grow with the number of screens it does not concern: 10,000 open screens
//! cost a commit two hash lookups, not 10,000 wake-ups that each find the event is not theirs.
//!
//! The contract is the live feed's: a subscription follows its topics *before* reading the
//! state it shows, and re-reads that state when told it lagged. A subscription that changes
//! topic (a counter showing another case) follows the new one and reads once more, since an
//! event of the new topic may have been routed before it followed.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use feeledger_infrastructure::live_feed::{FEED_CAPACITY, LiveFeed};
use feeledger_infrastructure::storage::RecordedEvent;
use feeledger_infrastructure::tasks::Tasks;
use tokio::sync::{Notify, broadcast};

use crate::graphql::{counter, office};

/// What a subscription follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every event of one stream (a case).
    Stream(String),
    /// A case assessed at, or given a QR for, this counter of this agency.
    Counter { agency: String, counter: String },
    /// Money arriving for this agency (a payment on one of its cases, a bank credit on its
    /// account), as the finance page follows it.
    MoneyFor(String),
}

/// The topics an event is about.
fn topics_of(event: &RecordedEvent) -> [Option<Topic>; 3] {
    [
        Some(Topic::Stream(event.stream_id.clone())),
        counter::activated_counter(event).map(|(agency, counter)| Topic::Counter { agency, counter }),
        office::concerns(event).map(|agency| Topic::MoneyFor(agency.to_string())),
    ]
}

/// What a follower is told.
#[derive(Debug, Clone)]
pub enum Notice {
    /// An event of one of its topics, in commit order.
    Event(Arc<RecordedEvent>),
    /// It fell behind (or the feed did) and missed events: re-read the truth.
    Lagged,
}

/// The process's router; cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveRoutes {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Registry {
    followers: HashMap<Topic, Vec<(u64, Arc<Inbox>)>>,
    /// Every follower, to tell them all when the feed lagged or stopped.
    all: HashMap<u64, Arc<Inbox>>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<InboxState>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct InboxState {
    queue: VecDeque<Arc<RecordedEvent>>,
    lagged: bool,
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves consistent data (pushes and removals only).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inbox {
    fn deliver(&self, event: &Arc<RecordedEvent>) {
        {
            let mut state = lock(&self.state);
            if state.queue.len() >= FEED_CAPACITY {
                // Like the feed's own receivers: a follower this far behind re-reads instead.
                state.queue.clear();
                state.lagged = true;
            } else {
                state.queue.push_back(Arc::clone(event));
            }
        }
        self.wake.notify_one();
    }

    fn lag(&self) {
        lock(&self.state).lagged = true;
        self.wake.notify_one();
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_one();
    }
}

impl LiveRoutes {
    /// Starts routing the feed's events from now on, as one of the service's `tasks`.
    pub fn start(feed: &LiveFeed, tasks: &Tasks) -> LiveRoutes {
        let routes = LiveRoutes { shared: Arc::new(Shared::default()) };
        tasks.spawn("live routes", route(feed.subscribe(), Arc::clone(&routes.shared)));
        routes
    }

    /// A follower of `topics`, hearing of every event of them routed from now on.
    pub fn follow(&self, topics: impl IntoIterator<Item = Topic>) -> Follower {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let inbox = Arc::new(Inbox::default());
        let mut registry = lock(&self.shared.registry);
        if registry.closed {
            inbox.close();
        }
        registry.all.insert(id, Arc::clone(&inbox));
        let mut follower = Follower { id, inbox, topics: Vec::new(), shared: Arc::clone(&self.shared) };
        for topic in topics {
            follower.add(&mut registry, topic);
        }
        drop(registry);
        follower
    }

    /// How many followers are registered (for tests and metrics).
    pub fn followers(&self) -> usize {
        lock(&self.shared.registry).all.len()
    }

    /// How many topics have a follower (for tests and metrics).
    pub fn topics(&self) -> usize {
        lock(&self.shared.registry).followers.len()
    }
}

/// One subscription's place in the router; unregistered when dropped.
#[derive(Debug)]
pub struct Follower {
    id: u64,
    inbox: Arc<Inbox>,
    topics: Vec<Topic>,
    shared: Arc<Shared>,
}

impl Follower {
    /// The next notice, or `None` once the feed stopped.
    pub async fn recv(&mut self) -> Option<Notice> {
        loop {
            {
                let mut state = lock(&self.inbox.state);
                if state.lagged {
                    state.lagged = false;
                    state.queue.clear();
                    return Some(Notice::Lagged);
                }
                if let Some(event) = state.queue.pop_front() {
                    return Some(Notice::Event(event));
                }
                if state.closed {
                    return None;
                }
            }
            // `notify_one` keeps a permit when nobody waits, so a delivery between the check
            // above and this wait is not lost.
            self.inbox.wake.notified().await;
        }
    }

    /// Follows one more topic (no-op when already followed).
    pub fn follow(&mut self, topic: Topic) {
        let shared = Arc::clone(&self.shared);
        let mut registry = lock(&shared.registry);
        self.add(&mut registry, topic);
    }

    /// Stops following `topic`.
    pub fn unfollow(&mut self, topic: &Topic) {
        let Some(at) = self.topics.iter().position(|t| t == topic) else { return };
        self.topics.swap_remove(at);
        let mut registry = lock(&self.shared.registry);
        remove(&mut registry, self.id, topic);
    }

    fn add(&mut self, registry: &mut Registry, topic: Topic) {
        if self.topics.contains(&topic) {
            return;
        }
        registry.followers.entry(topic.clone()).or_default().push((self.id, Arc::clone(&self.inbox)));
        self.topics.push(topic);
    }
}

fn remove(registry: &mut Registry, id: u64, topic: &Topic) {
    if let Entry::Occupied(mut entry) = registry.followers.entry(topic.clone()) {
        entry.get_mut().retain(|(follower, _)| *follower != id);
        if entry.get().is_empty() {
            entry.remove();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut registry = lock(&self.shared.registry);
        registry.all.remove(&self.id);
        for topic in &self.topics {
            remove(&mut registry, self.id, topic);
        }
    }
}

async fn route(mut events: broadcast::Receiver<Arc<RecordedEvent>>, shared: Arc<Shared>) {
    let mut targets: Vec<(u64, Arc<Inbox>)> = Vec::new();
    loop {
        match events.recv().await {
            Ok(event) => {
                let topics = topics_of(&event);
                {
                    let registry = lock(&shared.registry);
                    for topic in topics.iter().flatten() {
                        if let Some(followers) = registry.followers.get(topic) {
                            targets.extend(followers.iter().map(|(id, inbox)| (*id, Arc::clone(inbox))));
                        }
                    }
                }
                // A follower of two of the event's topics hears of it once.
                targets.sort_unstable_by_key(|(id, _)| *id);
                targets.dedup_by_key(|(id, _)| *id);
                for (_, inbox) in targets.drain(..) {
                    inbox.deliver(&event);
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "live routes fell behind the feed; every follower re-reads");
                let all: Vec<Arc<Inbox>> = lock(&shared.registry).all.values().cloned().collect();
                for inbox in all {
                    inbox.lag();
                }
            }
            Err(broadcast::error::RecvError::Closed) => {
                let mut registry = lock(&shared.registry);
                registry.closed = true;
                for inbox in registry.all.values() {
                    inbox.close();
                }
                return;
            }
        }
    }
}
