//! The event store across a PostgreSQL failover, on a real primary and streaming replica: the
//! store follows the primary named in a multi-host URL, nothing acknowledged is lost under
//! synchronous replication, and readers following the log in commit-safe order neither skip nor
//! repeat an event although their transaction ids span two servers.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use feeledger_infrastructure::live_feed::LiveFeed;
use feeledger_infrastructure::storage::{Checkpoint, EventMetadata, ExpectedVersion, NewEvent, Storage};
use feeledger_infrastructure::test_support::replicated::{ReplicatedCluster, Replication};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "PaymentReceived".into(),
        schema_version: 1,
        payload: json!({ "amount": (n * 1000).to_string() }),
        metadata: EventMetadata::default(),
    }
}

const FAST_WRITERS: usize = 4;
const SLOW_WRITERS: usize = 2;
const APPENDS_PER_WRITER: usize = 60;

/// The no-skip proof of `event_store.rs`, with the primary killed and the replica promoted in
/// the middle: fast writers append through the store, slow writers hold transactions open
/// (some roll back), two readers follow "all events" from their checkpoints throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn across_a_failover_no_acknowledged_append_is_lost_and_no_reader_skips_or_repeats_an_event() {
    let Some(cluster) = ReplicatedCluster::start(Replication::Synchronous).await else { return };
    cluster.create_database("feeledger").await;
    let url = cluster.url("feeledger");
    let store = Storage::connect(&url, Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.primary_host(), Some(cluster.primary.host()));

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let failed_appends = Arc::new(AtomicUsize::new(0));
    let writers_done = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..FAST_WRITERS {
        let (store, acknowledged, failed, done) =
            (store.clone(), acknowledged.clone(), failed_appends.clone(), writers_done.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..APPENDS_PER_WRITER {
                let events: Vec<NewEvent> = (0..=i % 3).map(event).collect();
                let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
                match store.append(&format!("case-{w}-{}", i % 5), ExpectedVersion::Any, events, None).await {
                    Ok(_) => acknowledged.lock().await.extend(ids),
                    // Not acknowledged: it may or may not have committed. Never retried here.
                    Err(error) => {
                        assert!(error.is_unavailable(), "{error}");
                        failed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let Storage::Postgres(pg) = &store else { unreachable!() };
    for w in 0..SLOW_WRITERS {
        let (pool, done) = (pg.test_pool().clone(), writers_done.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..APPENDS_PER_WRITER / 4 {
                let attempt = async {
                    let mut tx = pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
                         VALUES ($1, 1, $2, 'Slow', 1, '{}', '{}', now(), $3)",
                    )
                    .bind(format!("case-slow-{w}-{i}"))
                    .bind(Uuid::now_v7())
                    .bind(vec![0u8; 32])
                    .execute(&mut *tx)
                    .await?;
                    tokio::time::sleep(Duration::from_millis(30 + (i as u64 * 7 + w as u64 * 13) % 60)).await;
                    if i % 5 == 4 { tx.rollback().await } else { tx.commit().await }
                };
                if attempt.await.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (store, done, crashed) = (store.clone(), writers_done.clone(), crashed.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut checkpoint = Checkpoint::START;
            loop {
                let finished = done.load(Ordering::SeqCst) == FAST_WRITERS + SLOW_WRITERS;
                let batch = match store.read_all(checkpoint, 50).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        assert!(error.is_unavailable() && crashed.load(Ordering::SeqCst), "{error}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                if batch.is_empty() {
                    if finished {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                for e in &batch {
                    assert!(e.checkpoint() > checkpoint, "order went backwards");
                    checkpoint = e.checkpoint();
                    seen.push(e.event_id);
                }
            }
            seen
        }));
    }

    // A third of the way through, the primary dies and the replica is promoted.
    let third = FAST_WRITERS * APPENDS_PER_WRITER * 2 / 3;
    while acknowledged.lock().await.len() < third {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acknowledged_before = acknowledged.lock().await.clone();
    crashed.store(true, Ordering::SeqCst);
    let killed = Instant::now();
    cluster.crash_primary().await;
    cluster.promote_replica().await;
    let promoted = killed.elapsed();
    let count_at_promotion = acknowledged.lock().await.len();
    while acknowledged.lock().await.len() == count_at_promotion
        && writers_done.load(Ordering::SeqCst) < FAST_WRITERS + SLOW_WRITERS
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first_write_after = killed.elapsed();
    eprintln!(
        "failover: replica promoted {} ms after the kill, first acknowledged append {} ms after the kill",
        promoted.as_millis(),
        first_write_after.as_millis()
    );
    assert_eq!(store.primary_host(), Some(cluster.replica.host()), "the store follows the new primary");

    for writer in writers {
        writer.await.unwrap();
    }
    let orders: Vec<Vec<Uuid>> = futures::future::join_all(readers).await.into_iter().map(Result::unwrap).collect();

    let committed: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM events").fetch_all(pg.test_pool()).await.unwrap();
    let committed: HashSet<Uuid> = committed.into_iter().collect();
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged_before.is_subset(&committed), "an append acknowledged by the old primary was lost");
    assert!(acknowledged.is_subset(&committed), "an acknowledged append was lost");
    assert!(acknowledged.len() > acknowledged_before.len(), "appends went on after the failover");
    for seen in &orders {
        let mut counts: HashMap<Uuid, usize> = HashMap::new();
        for id in seen {
            *counts.entry(*id).or_default() += 1;
        }
        assert!(counts.values().all(|&n| n == 1), "a reader saw an event twice");
        let seen: HashSet<Uuid> = seen.iter().copied().collect();
        assert_eq!(seen, committed, "a reader missed a committed event or saw one that is not there");
    }
    assert_eq!(orders[0], orders[1], "two readers see the same order");
    assert!(first_write_after < Duration::from_secs(10), "writes resumed {first_write_after:?} after the kill");
    store.close().await;
}

/// Without synchronous replication the newest acknowledged events can be lost with the primary,
/// and the promoted replica then hands their transaction ids out again. A reader standing past
/// them would skip new events; the live feed notices the failover and steps back to the new
/// primary's head, so it delivers every new event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lossy_asynchronous_failover_the_live_feed_still_delivers_every_new_event() {
    let Some(cluster) = ReplicatedCluster::start(Replication::Asynchronous).await else { return };
    cluster.create_database("feeledger").await;
    let store = Storage::connect(&cluster.url("feeledger"), Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    store.append("case-kept", ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
    cluster.wait_until_replayed().await;

    let tasks = feeledger_infrastructure::tasks::Tasks::default();
    let feed = LiveFeed::start(store.clone(), Duration::from_millis(50), &tasks);
    let mut delivered = feed.subscribe();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The replica stops receiving; three appends are acknowledged by the primary alone and
    // delivered by the feed, then lost with the primary.
    cluster.stop_replica().await;
    for n in 0..3 {
        store.append(&format!("case-lost-{n}"), ExpectedVersion::NoStream, vec![event(n)], None).await.unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await.unwrap().unwrap();
        assert_eq!(seen.stream_id, format!("case-lost-{n}"));
    }
    cluster.crash_primary().await;
    cluster.start_replica().await;
    cluster.promote_replica().await;

    let deadline = Instant::now() + Duration::from_secs(15);
    while store.primary_host() != Some(cluster.replica.host()) {
        assert!(Instant::now() < deadline, "the store never followed the promoted replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lost = store.read_stream("case-lost-0").await.unwrap();
    assert!(lost.is_empty(), "the replica never received the lost appends");
    let mut appended = Vec::new();
    for n in 0..3 {
        let stream = format!("case-new-{n}");
        store.append(&stream, ExpectedVersion::NoStream, vec![event(n)], None).await.unwrap();
        appended.push(stream);
    }
    let mut seen = Vec::new();
    while seen.len() < appended.len() {
        match tokio::time::timeout(Duration::from_secs(10), delivered.recv()).await {
            Ok(Ok(event)) => seen.push(event.stream_id.clone()),
            Ok(Err(error)) => panic!("{error}"),
            Err(_) => panic!("the live feed skipped new events after the failover: saw only {seen:?}"),
        }
    }
    assert_eq!(seen, appended);
    store.close().await;
}
