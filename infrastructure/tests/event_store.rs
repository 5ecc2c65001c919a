//! The event store contract, on real SQLite and real PostgreSQL.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use feeledger_infrastructure::storage::hash_chain::{self, EventFacts, GENESIS};
use feeledger_infrastructure::storage::{
    AppendOutcome, Checkpoint, EventMetadata, ExpectedVersion, IdempotencyKey, KnownHead, NewEvent, Storage, StoreError,
};
use feeledger_infrastructure::test_support::TestDatabase;
use serde_json::json;
use uuid::Uuid;

fn event(n: u32) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "PaymentReceived".into(),
        schema_version: 1,
        payload: json!({ "amount": (n * 1000).to_string(), "note": "Lệ phí", "nested": { "b": 1, "a": [1, 2] } }),
        metadata: EventMetadata { actor: Some("officer-1".into()), ..EventMetadata::default() },
    }
}

/// The hash `event` must carry when it follows a stream head whose hash is `previous`.
fn chained_hash(previous: &[u8], event: &feeledger_infrastructure::storage::RecordedEvent) -> Vec<u8> {
    hash_chain::event_hash(previous, &EventFacts::of(event)).to_vec()
}

/// Follows the log in small batches until `expected` events were read. On PostgreSQL the
/// read barrier is cluster-wide: a transaction still open anywhere (another test) holds back
/// events committed after it began, so readers wait rather than assume instant visibility.
async fn read_everything(store: &Storage, expected: usize) -> Vec<feeledger_infrastructure::storage::RecordedEvent> {
    let mut all = Vec::new();
    let mut checkpoint = Checkpoint::START;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while all.len() < expected && tokio::time::Instant::now() < deadline {
        let batch = store.read_all(checkpoint, 7).await.unwrap();
        let Some(last) = batch.last() else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        checkpoint = last.checkpoint();
        all.extend(batch);
    }
    all
}

#[tokio::test]
async fn appended_events_read_back_in_version_order_with_a_verifiable_hash_chain() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        store.append("case-A", ExpectedVersion::NoStream, vec![event(1), event(2)], None).await.unwrap();
        store.append("case-A", ExpectedVersion::Exact(2), vec![event(3)], None).await.unwrap();

        let events = store.read_stream("case-A").await.unwrap();
        assert_eq!(events.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [1, 2, 3], "{}", db.backend_name);
        assert_eq!(events[0].payload["note"], "Lệ phí");
        assert_eq!(events[0].metadata["actor"], "officer-1");

        let mut previous = GENESIS.to_vec();
        for e in &events {
            let expected = chained_hash(&previous, e);
            assert_eq!(e.hash, expected, "{}: hash of version {} does not chain", db.backend_name, e.stream_version);
            previous = e.hash.clone();
        }
    }
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_appends_nothing() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        store.append("case-A", ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
        let err = store.append("case-A", ExpectedVersion::NoStream, vec![event(2)], None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{}: {err}", db.backend_name);
        let err = store.append("case-A", ExpectedVersion::Exact(5), vec![event(2)], None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{}: {err}", db.backend_name);
        assert_eq!(store.read_stream("case-A").await.unwrap().len(), 1);
    }
}

/// A command appends after the head it read (no second read on PostgreSQL): the new event
/// chains to that head's hash, and a head that moved on meanwhile is a conflict, not a fork.
#[tokio::test]
async fn an_append_after_a_known_head_chains_to_it_and_a_stale_head_is_a_conflict() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let name = db.backend_name;
        store.append("case-H", ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
        let read = store.read_stream("case-H").await.unwrap();
        let head = KnownHead::of(&read[0]);

        // Another writer appends version 2 after the head was read.
        store.append("case-H", ExpectedVersion::Exact(1), vec![event(2)], None).await.unwrap();
        let stale = store.append_after("case-H", ExpectedVersion::Exact(1), Some(&head), vec![event(3)], None).await;
        assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{name}: {stale:?}");
        assert_eq!(store.read_stream("case-H").await.unwrap().len(), 2, "{name}: nothing appended");

        // Read again, append after the new head: version 3, chained to version 2's hash.
        let read = store.read_stream("case-H").await.unwrap();
        let head = KnownHead::of(&read[1]);
        store.append_after("case-H", ExpectedVersion::Exact(2), Some(&head), vec![event(3)], None).await.unwrap();
        let events = store.read_stream("case-H").await.unwrap();
        assert_eq!(events.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [1, 2, 3], "{name}");
        let third = &events[2];
        let expected = chained_hash(&events[1].hash, third);
        assert_eq!(third.hash, expected, "{name}: the appended event chains to the known head");
    }
}

/// Many notifications' appends at once, every head known (on PostgreSQL, one statement each; on
/// SQLite, several in one transaction, each in a savepoint): each gets its own streams' versions
/// and positions and its own inbox outcome, and one whose case moved on after it was read is
/// refused with nothing of it stored, the others unharmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_with_known_heads_each_get_their_own_answer_and_a_stale_one_fails_alone() {
    use feeledger_infrastructure::inbox::{Inbox, InboxOutcome, InboxResolution, InboxRow, ReceivedRequest};
    use feeledger_infrastructure::storage::StreamAppend;
    const WRITERS: usize = 48;
    let stale = |n: usize| n % 6 == 5;
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let name = db.backend_name;
        let inbox = Inbox::new(store.clone());
        let mut prepared = Vec::new();
        for n in 0..WRITERS {
            let case = format!("case-group-{n}");
            store.append(&case, ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
            let head = KnownHead::of(&store.read_stream(&case).await.unwrap()[0]);
            // Every sixth case moves on after its head was read: that writer's append is stale.
            if stale(n) {
                store.append(&case, ExpectedVersion::Exact(1), vec![event(2)], None).await.unwrap();
            }
            let request = ReceivedRequest {
                provider: "sepay",
                method: "POST".into(),
                uri: "/webhooks/sepay".into(),
                headers: json!({}),
                body: format!("{{\"n\":{n}}}").into_bytes(),
                body_truncated: false,
                received_at: chrono::Utc::now(),
            };
            prepared.push((case, head, inbox.record(&request).await.unwrap().id));
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
        let writers = prepared.into_iter().enumerate().map(|(n, (case, head, inbox_id))| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let appends = vec![
                    StreamAppend {
                        stream_id: format!("credit-group-{n}"),
                        expected: ExpectedVersion::NoStream,
                        events: vec![event(10), event(11)],
                    },
                    StreamAppend { stream_id: case, expected: ExpectedVersion::Exact(1), events: vec![event(12)] },
                ];
                let resolution = InboxResolution {
                    row: InboxRow::Stored(inbox_id),
                    outcome: InboxOutcome::Recorded,
                    detail: Some(format!("writer {n}")),
                    credit_id: Some(format!("credit-{n}")),
                    http_status: Some(200),
                    at: chrono::Utc::now(),
                };
                barrier.wait().await;
                (
                    n,
                    inbox_id,
                    store.append_together_resolving(appends, &[head], std::slice::from_ref(&resolution), None).await,
                )
            })
        });
        let results = futures::future::join_all(writers).await;
        let entries: HashMap<i64, _> =
            inbox.recent(None, 1_000).await.unwrap().into_iter().map(|entry| (entry.id, entry)).collect();
        // SQLite's one writer commits appends that wait for it together (group commit): the
        // writers' events share fewer transactions than there are writers.
        let mut transactions = HashSet::new();
        for n in (0..WRITERS).filter(|n| !stale(*n)) {
            transactions.insert(store.read_stream(&format!("credit-group-{n}")).await.unwrap()[0].transaction_id);
        }
        if name == "sqlite" {
            assert!(transactions.len() < WRITERS - WRITERS / 6, "{name}: {} transactions", transactions.len());
        }
        for result in results {
            let (n, inbox_id, answer) = result.unwrap();
            let (case, credit) = (format!("case-group-{n}"), format!("credit-group-{n}"));
            let entry = &entries[&inbox_id];
            if stale(n) {
                assert!(
                    matches!(&answer, Err(StoreError::Conflict { stream_id, .. }) if *stream_id == case),
                    "{name}: writer {n} was stale: {answer:?}"
                );
                assert!(store.read_stream(&credit).await.unwrap().is_empty(), "{name}: nothing of writer {n} stored");
                assert_eq!(
                    store.read_stream(&case).await.unwrap().len(),
                    2,
                    "{name}: case {n} as the other writer left it"
                );
                assert_eq!((entry.outcome.as_str(), entry.credit_id.as_deref()), ("received", None), "{name}: {n}");
                continue;
            }
            let appended = answer.unwrap_or_else(|e| panic!("{name}: writer {n}: {e}"));
            let credit_events = store.read_stream(&credit).await.unwrap();
            let case_events = store.read_stream(&case).await.unwrap();
            assert_eq!(credit_events.len(), 2, "{name}: writer {n}'s credit");
            assert_eq!(case_events.len(), 2, "{name}: writer {n}'s case");
            // The answer names this writer's own streams, versions and positions.
            assert_eq!(appended.len(), 2, "{name}");
            assert_eq!(
                (appended[0].stream_id.as_str(), appended[0].first_version, appended[0].last_version),
                (credit.as_str(), 1, 2),
                "{name}: writer {n}"
            );
            assert_eq!(appended[0].last_position, credit_events[1].position, "{name}: writer {n}");
            assert_eq!(
                (appended[1].stream_id.as_str(), appended[1].first_version, appended[1].last_version),
                (case.as_str(), 2, 2),
                "{name}: writer {n}"
            );
            assert_eq!(appended[1].last_position, case_events[1].position, "{name}: writer {n}");
            // Chained to the head it knew, with its own time.
            let second = &case_events[1];
            let expected = chained_hash(&case_events[0].hash, second);
            assert_eq!(second.hash, expected, "{name}: writer {n}'s event chains to its case's head");
            assert_eq!(
                (entry.outcome.as_str(), entry.outcome_detail.clone(), entry.credit_id.clone(), entry.http_status),
                ("recorded", Some(format!("writer {n}")), Some(format!("credit-{n}")), Some(200)),
                "{name}: writer {n}'s inbox row has its own outcome"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_appends_share_commits_and_each_gets_its_own_answer() {
    const WRITERS: usize = 48;
    // What each writer does: 0 and 1 append after the head they read, without and with a key;
    // 2 starts a new stream with a key; 3 repeats a request already done (its key claimed);
    // 4 reuses a claimed key for another request; 5 read a head that moved on since.
    let kind = |n: usize| n % 6;
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let name = db.backend_name;
        let key = |n: usize, request: &str| IdempotencyKey::new("recordPayment", &format!("key-{n}"), &json!(request));
        let mut heads = Vec::new();
        for n in 0..WRITERS {
            let case = format!("case-cmd-{n}");
            store.append(&case, ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
            if matches!(kind(n), 3 | 4) {
                // The first request of key-n, done before.
                store.append(&case, ExpectedVersion::Exact(1), vec![event(2)], Some(&key(n, "first"))).await.unwrap();
            }
            let read = store.read_stream(&case).await.unwrap();
            heads.push(KnownHead::of(read.last().unwrap()));
            if kind(n) == 5 {
                store.append(&case, ExpectedVersion::Exact(1), vec![event(3)], None).await.unwrap();
            }
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
        let writers = heads.into_iter().enumerate().map(|(n, head)| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let (stream, expected, head, key) = match kind(n) {
                    0 => (head.stream_id.clone(), ExpectedVersion::Exact(head.version), Some(head), None),
                    1 => {
                        (head.stream_id.clone(), ExpectedVersion::Exact(head.version), Some(head), Some(key(n, "pay")))
                    }
                    2 => (format!("new-cmd-{n}"), ExpectedVersion::NoStream, None, Some(key(n, "new"))),
                    3 => (
                        head.stream_id.clone(),
                        ExpectedVersion::Exact(head.version),
                        Some(head),
                        Some(key(n, "first")),
                    ),
                    4 => (
                        head.stream_id.clone(),
                        ExpectedVersion::Exact(head.version),
                        Some(head),
                        Some(key(n, "other")),
                    ),
                    _ => (head.stream_id.clone(), ExpectedVersion::Exact(head.version), Some(head), None),
                };
                barrier.wait().await;
                let answer = store
                    .append_after(&stream, expected, head.as_ref(), vec![event(20), event(21)], key.as_ref())
                    .await;
                (n, stream, answer)
            })
        });
        let mut transactions = HashSet::new();
        for result in futures::future::join_all(writers).await {
            let (n, stream, answer) = result.unwrap();
            let stored = store.read_stream(&stream).await.unwrap();
            match kind(n) {
                3 => {
                    let first = AppendOutcome::AlreadyDone { stream_id: stream.clone(), stream_version: 2 };
                    assert_eq!(answer.unwrap(), first, "{name}: writer {n} repeated a request");
                    assert_eq!(stored.len(), 2, "{name}: nothing appended by writer {n}");
                }
                4 => {
                    assert!(matches!(answer, Err(StoreError::IdempotencyKeyReused { .. })), "{name}: {n}: {answer:?}");
                    assert_eq!(stored.len(), 2, "{name}: nothing appended by writer {n}");
                }
                5 => {
                    assert!(matches!(&answer, Err(StoreError::Conflict { stream_id, .. }) if *stream_id == stream));
                    assert_eq!(stored.len(), 2, "{name}: case {n} as the other writer left it");
                }
                _ => {
                    let Ok(AppendOutcome::Appended(appended, recorded)) = answer else {
                        panic!("{name}: writer {n}: {answer:?}")
                    };
                    // The answer is the writer's own events as stored: versions, positions,
                    // transaction, hashes chained to the head it knew.
                    let before = stored.len() - 2;
                    assert_eq!((appended.first_version, appended.last_version), (before as i64 + 1, before as i64 + 2));
                    assert_eq!(appended.last_position, stored[before + 1].position, "{name}: writer {n}");
                    let key = |e: &feeledger_infrastructure::storage::RecordedEvent| {
                        (
                            e.stream_id.clone(),
                            e.stream_version,
                            e.position,
                            e.transaction_id,
                            e.hash.clone(),
                            e.event_id,
                        )
                    };
                    assert_eq!(
                        recorded.iter().map(key).collect::<Vec<_>>(),
                        stored[before..].iter().map(key).collect::<Vec<_>>()
                    );
                    let mut previous = if before == 0 { GENESIS.to_vec() } else { stored[before - 1].hash.clone() };
                    for e in &stored[before..] {
                        assert_eq!(e.hash, chained_hash(&previous, e), "{name}: writer {n}'s events chain");
                        previous = e.hash.clone();
                    }
                    transactions.insert(stored[before].transaction_id);
                }
            }
        }
        // Written together: fewer commits than writers that appended.
        let appended = (0..WRITERS).filter(|n| kind(*n) < 3).count();
        assert!(transactions.len() < appended, "{name}: {} transactions for {appended} appends", transactions.len());
        // A repeat of writer 1's request after the group finds its first result.
        let again =
            store.append("case-cmd-1", ExpectedVersion::Any, vec![event(30)], Some(&key(1, "pay"))).await.unwrap();
        assert_eq!(again.stream_version(), 3, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_of_streams_beside_others_each_get_exactly_their_own_streams() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        // A shared stream read beside every case (an agency's fee schedule), and cases of one
        // to three events; a case read beside a stream that does not exist gets nothing of it.
        store.append("fee-schedule-X", ExpectedVersion::NoStream, vec![event(1), event(2)], None).await.unwrap();
        for n in 0..40u32 {
            let events = (0..=n % 3).map(event).collect();
            store.append(&format!("case-{n}"), ExpectedVersion::NoStream, events, None).await.unwrap();
        }
        // Many commands' reads at once (PostgreSQL reads them in groups), each beside the
        // shared stream and, for some, a stream of another case or one that does not exist.
        let reads = (0..40u32).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut beside = vec!["fee-schedule-X".to_owned()];
                match n % 4 {
                    0 => beside.push(format!("case-{}", (n + 1) % 40)),
                    1 => beside.push("case-none".to_owned()),
                    _ => {}
                }
                let read = store.read_stream_beside(&format!("case-{n}"), &beside).await.unwrap();
                (n, beside, read)
            })
        });
        for read in reads.collect::<Vec<_>>() {
            let (n, beside, (own, besides)) = read.await.unwrap();
            let key = |e: &feeledger_infrastructure::storage::RecordedEvent| (e.stream_id.clone(), e.stream_version);
            let expected_own = store.read_stream(&format!("case-{n}")).await.unwrap();
            assert_eq!(own.iter().map(key).collect::<Vec<_>>(), expected_own.iter().map(key).collect::<Vec<_>>());
            assert_eq!(own.len(), (n % 3 + 1) as usize, "{}: case-{n}", db.backend_name);
            // As one caller reading alone gets them.
            let alone = store.read_streams(&beside).await.unwrap();
            assert_eq!(besides.iter().map(key).collect::<Vec<_>>(), alone.iter().map(key).collect::<Vec<_>>());
            let schedule = besides.iter().filter(|e| e.stream_id == "fee-schedule-X").count();
            assert_eq!(schedule, 2, "{}: case-{n}", db.backend_name);
            let other = besides.len() - schedule;
            assert_eq!(other, if n % 4 == 0 { ((n + 1) % 40 % 3 + 1) as usize } else { 0 }, "{}", db.backend_name);
            assert_eq!(
                besides.iter().map(|e| &e.payload).collect::<Vec<_>>(),
                alone.iter().map(|e| &e.payload).collect::<Vec<_>>()
            );
        }
        // A read after an append sees it, read with others or not.
        store.append("case-0", ExpectedVersion::Exact(1), vec![event(9)], None).await.unwrap();
        let (own, _) = store.read_stream_beside("case-0", &["fee-schedule-X".to_owned()]).await.unwrap();
        assert_eq!(own.len(), 2, "{}", db.backend_name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_writers_expecting_the_same_version_exactly_one_wins() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let writers = (0..16).map(|n| {
            let store = store.clone();
            tokio::spawn(
                async move { store.append("case-race", ExpectedVersion::NoStream, vec![event(n)], None).await },
            )
        });
        let results = futures::future::join_all(writers).await;
        let wins = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        let conflicts = results.iter().filter(|r| matches!(r, Ok(Err(StoreError::Conflict { .. })))).count();
        assert_eq!((wins, conflicts), (1, 15), "{}", db.backend_name);
        assert_eq!(store.read_stream("case-race").await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn event_ids_are_unique_across_the_log() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let first = event(1);
        let mut copy = event(2);
        copy.event_id = first.event_id;
        store.append("case-A", ExpectedVersion::Any, vec![first], None).await.unwrap();
        let err = store.append("case-B", ExpectedVersion::Any, vec![copy], None).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateEventId(_)), "{}: {err}", db.backend_name);
        assert!(store.read_stream("case-B").await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_result_and_a_different_request_is_refused() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let key = IdempotencyKey::new("assessFees", "client-key-1", &json!({ "case": "A", "amount": 3000 }));
        let first = store.append("case-A", ExpectedVersion::NoStream, vec![event(1)], Some(&key)).await.unwrap();
        assert!(matches!(first, AppendOutcome::Appended(..)));

        let again = store.append("case-A", ExpectedVersion::Any, vec![event(1)], Some(&key)).await.unwrap();
        assert_eq!(
            again,
            AppendOutcome::AlreadyDone { stream_id: "case-A".into(), stream_version: 1 },
            "{}",
            db.backend_name
        );

        let other = IdempotencyKey::new("assessFees", "client-key-1", &json!({ "case": "A", "amount": 9999 }));
        let err = store.append("case-A", ExpectedVersion::Any, vec![event(2)], Some(&other)).await.unwrap_err();
        assert!(matches!(err, StoreError::IdempotencyKeyReused { .. }), "{}: {err}", db.backend_name);
        assert_eq!(store.read_stream("case-A").await.unwrap().len(), 1, "nothing appended by the repeats");
    }
}

#[tokio::test]
async fn the_database_rejects_updates_and_deletes_of_events() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        store.append("case-A", ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
        let statements = ["UPDATE events SET event_type = 'Forged'", "DELETE FROM events"];
        for sql in statements {
            let result = match &store {
                Storage::Postgres(pg) => sqlx::query(sql).execute(pg.test_pool()).await.map(|_| ()),
                Storage::Sqlite(lite) => sqlx::query(sql).execute(lite.test_pool()).await.map(|_| ()),
            };
            let err = result.expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{}: {sql}: {err}", db.backend_name);
        }
        if let Storage::Postgres(pg) = &store {
            let err = sqlx::query("TRUNCATE events").execute(pg.test_pool()).await.expect_err("TRUNCATE");
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        assert_eq!(store.read_stream("case-A").await.unwrap()[0].event_type, "PaymentReceived");
    }
}

#[tokio::test]
async fn reading_all_from_a_checkpoint_pages_through_every_event_once() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        for n in 0..25 {
            store.append(&format!("case-{}", n % 4), ExpectedVersion::Any, vec![event(n)], None).await.unwrap();
        }
        let all = read_everything(&store, 25).await;
        assert_eq!(all.len(), 25, "{}", db.backend_name);
        let unique: HashSet<_> = all.iter().map(|e| e.event_id).collect();
        assert_eq!(unique.len(), 25);
        let head = store.head().await.unwrap();
        assert_eq!(head.event_count, 25);
        assert_eq!(head.checkpoint, all.last().unwrap().checkpoint());
        assert!(store.read_all(head.checkpoint, 100).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn listeners_are_told_after_each_commit() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let mut notices = store.subscribe();
        let outcome = store.append("case-A", ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
        let notice = tokio::time::timeout(Duration::from_secs(2), notices.recv()).await.unwrap().unwrap();
        let AppendOutcome::Appended(appended, _) = outcome else { panic!() };
        assert_eq!(&*notice.stream_id, "case-A");
        assert_eq!(notice.last_position, appended.last_position);
        // The announced position is committed: a reader woken by the notice finds it.
        let read = read_everything(&store, 1).await;
        assert_eq!(read.last().unwrap().position, notice.last_position);
    }
}

/// The proof that the commit-safe read order never skips an event: writers commit out of
/// position order (slow transactions hold early positions while fast ones commit later
/// positions), some roll back, and readers following "all events" from their checkpoint must
/// each see every committed event exactly once, in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_slow_and_rolled_back_writers_never_make_a_reader_skip_or_repeat_an_event() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = db.store().await;
    let Storage::Postgres(pg) = &store else { unreachable!() };
    let pool = pg.test_pool().clone();

    const FAST_WRITERS: usize = 6;
    const SLOW_WRITERS: usize = 4;
    const APPENDS_PER_WRITER: usize = 60;

    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();

    // Fast writers: the store's own append path, many streams, one to three events each.
    for w in 0..FAST_WRITERS {
        let store = store.clone();
        let done = done.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..APPENDS_PER_WRITER {
                let stream = format!("case-fast-{w}-{}", i % 5);
                let events = (0..=(i % 3) as u32).map(event).collect();
                store.append(&stream, ExpectedVersion::Any, events, None).await.unwrap();
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    // Slow writers: insert, hold the transaction open for a while, then commit or roll back.
    for w in 0..SLOW_WRITERS {
        let pool = pool.clone();
        let done = done.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..APPENDS_PER_WRITER / 4 {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(
                    "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
                     VALUES ($1, 1, $2, 'Slow', 1, '{}', '{}', now(), $3)",
                )
                .bind(format!("case-slow-{w}-{i}"))
                .bind(Uuid::now_v7())
                .bind(vec![0u8; 32])
                .execute(&mut *tx)
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(20 + (i as u64 * 7 + w as u64 * 13) % 60)).await;
                if i % 5 == 4 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                }
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }

    // Two readers follow the log concurrently with the writers, in small batches.
    let mut readers = Vec::new();
    for _ in 0..2 {
        let store = store.clone();
        let done = done.clone();
        let pool = pool.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut checkpoint = Checkpoint::START;
            // Once the writers are done, a reader stops when it has seen as many events as the
            // table holds, or after a bound: the barrier is cluster-wide, so other sessions on
            // the same server (other tests) may hold it back for a while. A skipped event is
            // never seen, so the bound ends the wait and the assertions below name it.
            let mut finished_at: Option<std::time::Instant> = None;
            loop {
                let writers_finished = done.load(std::sync::atomic::Ordering::SeqCst) == FAST_WRITERS + SLOW_WRITERS;
                let batch = store.read_all(checkpoint, 50).await.unwrap();
                if batch.is_empty() {
                    if writers_finished {
                        let since = *finished_at.get_or_insert_with(std::time::Instant::now);
                        let total: i64 =
                            sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
                        if seen.len() as i64 >= total || since.elapsed() > Duration::from_secs(30) {
                            break;
                        }
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
    for writer in writers {
        writer.await.unwrap();
    }
    let orders: Vec<Vec<Uuid>> = futures::future::join_all(readers).await.into_iter().map(Result::unwrap).collect();

    let committed: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM events").fetch_all(&pool).await.unwrap();
    let committed: HashSet<Uuid> = committed.into_iter().collect();
    let expected_fast: usize = FAST_WRITERS * (0..APPENDS_PER_WRITER).map(|i| i % 3 + 1).sum::<usize>();
    let expected_slow = SLOW_WRITERS * (APPENDS_PER_WRITER / 4) * 4 / 5;
    assert_eq!(committed.len(), expected_fast + expected_slow, "every committed write is in the table");

    for seen in &orders {
        let mut counts: HashMap<Uuid, usize> = HashMap::new();
        for id in seen {
            *counts.entry(*id).or_default() += 1;
        }
        assert!(counts.values().all(|&n| n == 1), "a reader saw an event twice");
        let seen_set: HashSet<Uuid> = seen.iter().copied().collect();
        assert_eq!(seen_set, committed, "a reader missed a committed event or saw a rolled-back one");
    }
    assert_eq!(orders[0], orders[1], "two readers must see the same order");
}

#[tokio::test]
async fn other_nodes_are_woken_by_a_notify_after_commit() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = db.store().await;
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener.listen("feeledger_events").await.unwrap();
    let outcome = store.append("case-A", ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
    let AppendOutcome::Appended(appended, _) = outcome else { panic!() };
    let notification = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await.unwrap().unwrap();
    assert_eq!(notification.payload(), appended.last_position.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_idempotency_key_append_once_and_all_get_the_first_result() {
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let key = IdempotencyKey::new("recordPayment", "storm", &json!({ "amount": 3000 }));
        let requests = (0..20).map(|n| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                store.append(&format!("case-{}", n % 2), ExpectedVersion::Any, vec![event(1)], Some(&key)).await
            })
        });
        let outcomes: Vec<AppendOutcome> =
            futures::future::join_all(requests).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
        let appended = outcomes.iter().filter(|o| matches!(o, AppendOutcome::Appended(..))).count();
        assert_eq!(appended, 1, "{}", db.backend_name);
        let versions: HashSet<i64> = outcomes.iter().map(AppendOutcome::stream_version).collect();
        assert_eq!(versions, HashSet::from([1]), "{}: every repeat reports the first result", db.backend_name);
        assert_eq!(store.head().await.unwrap().event_count, 1, "{}", db.backend_name);
    }
}

/// What the QR expiry task reads on start: the QRs expiring at the bound's second or later,
/// whenever they were recorded (a log imported today holds QRs that expired months ago).
#[tokio::test]
async fn the_qrs_still_to_expire_are_read_by_their_expiry_to_the_second() {
    use chrono::{DateTime, Utc};
    let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
    // The payload's form of an instant, which the text comparison relies on.
    assert_eq!(serde_json::to_value(at("2026-11-29T05:00:00.5Z")).unwrap(), "2026-11-29T05:00:00.500Z");
    assert_eq!(serde_json::to_value(at("2026-11-29T05:00:00Z")).unwrap(), "2026-11-29T05:00:00Z");
    let since = at("2026-11-29T05:00:00.25Z");
    let expiries = [
        ("2026-11-26T05:00:00Z", false),
        ("2026-11-29T05:15:00Z", true),
        ("2026-11-29T04:59:59.999Z", false),
        ("2026-11-29T05:00:00Z", true),
        ("2026-11-29T05:00:00.500Z", true),
        ("2027-01-01T00:00:00Z", true),
    ];
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        for (n, (expires_at, _)) in expiries.iter().enumerate() {
            let mut qr = event(1);
            qr.event_type = "QrIssued".into();
            qr.payload =
                json!({ "qr_id": Uuid::new_v4(), "expires_at": serde_json::to_value(at(expires_at)).unwrap() });
            store.append(&format!("case-Q{n}"), ExpectedVersion::NoStream, vec![qr], None).await.unwrap();
        }
        // Another type with the same field is not a QR.
        let mut other = event(2);
        other.payload = json!({ "expires_at": "2027-01-01T00:00:00Z" });
        store.append("case-other", ExpectedVersion::NoStream, vec![other], None).await.unwrap();

        let found = store.qrs_expiring_since(since).await.unwrap();
        let found: Vec<String> = found.iter().map(|e| e.payload["expires_at"].as_str().unwrap().to_owned()).collect();
        let expected: Vec<String> =
            expiries.iter().filter(|(_, due)| *due).map(|(text, _)| (*text).to_owned()).collect();
        assert_eq!(found, expected, "[{}]", db.backend_name);
    }
}

/// SQLite's readers are few and keep small page caches (10,000 screens under 150 MB, issue 17):
/// however many connections a node is given, at most four read, each with a 256 KiB cache.
#[tokio::test]
async fn sqlite_readers_are_at_most_four_with_small_page_caches() {
    let db = TestDatabase::sqlite();
    let options = feeledger_infrastructure::storage::StoreOptions { max_connections: 40, ..Default::default() };
    let store = Storage::connect(&db.url, options).await.unwrap();
    let Storage::Sqlite(lite) = &store else { panic!("a SQLite store") };
    // Hold every reader the pool will lend: the fifth acquire waits.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut reader = lite.test_pool().acquire().await.unwrap();
        let cache: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut *reader).await.unwrap();
        assert_eq!(cache, -256, "a reader's page cache, in KiB");
        held.push(reader);
    }
    let fifth = tokio::time::timeout(Duration::from_millis(300), lite.test_pool().acquire()).await;
    assert!(fifth.is_err(), "a fifth reader was lent");
    assert_eq!(lite.test_pool().options().get_max_connections(), 4);
}

/// Notifications arriving together share their inbox commit (group commit): each request gets
/// the row holding its own body, in fewer statements than rows; and a row the database refuses
/// (PostgreSQL's `jsonb` takes no `\u0000`) fails alone, every other request of its batch stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbox_rows_of_concurrent_requests_are_written_together_each_under_its_own_request() {
    use feeledger_infrastructure::inbox::{Inbox, ReceivedRequest};
    const REQUESTS: usize = 40;
    let request = |n: usize, headers: serde_json::Value| ReceivedRequest {
        provider: "sepay",
        method: "POST".into(),
        uri: format!("/webhooks/sepay?n={n}"),
        headers,
        body: format!("{{\"n\":{n}}}").into_bytes(),
        body_truncated: false,
        received_at: chrono::Utc::now(),
    };
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let name = db.backend_name;
        let inbox = Inbox::new(store.clone());

        let requests: Vec<_> = (0..REQUESTS).map(|n| request(n, json!({ "n": n }))).collect();
        let stored = futures::future::join_all(requests.iter().map(|r| inbox.record(r))).await;
        let writes = inbox.writes();
        assert_eq!(writes.rows, REQUESTS as u64, "{name}");
        assert!(writes.statements < writes.rows, "{name}: rows arriving together share a statement: {writes:?}");

        // One request of the next wave is refused by PostgreSQL: the others are stored.
        let bad = REQUESTS + 17;
        let requests: Vec<_> = (REQUESTS..2 * REQUESTS)
            .map(|n| request(n, if n == bad { json!({ "x": "a\u{0}b" }) } else { json!({ "n": n }) }))
            .collect();
        let second = futures::future::join_all(requests.iter().map(|r| inbox.record(r))).await;

        let rows: HashMap<i64, _> =
            inbox.recent(None, 1_000).await.unwrap().into_iter().map(|entry| (entry.id, entry)).collect();
        let mut ids = HashSet::new();
        for (n, result) in stored.into_iter().chain(second).enumerate() {
            if n == bad && name == "postgres" {
                assert!(result.is_err(), "{name}: a NUL in jsonb is refused");
                continue;
            }
            let id = result.unwrap_or_else(|e| panic!("{name}: request {n}: {e}")).id;
            assert!(ids.insert(id), "{name}: request {n} got the id of another");
            assert_eq!(rows[&id].body, format!("{{\"n\":{n}}}").into_bytes(), "{name}: request {n}'s row");
        }
        let expected = if name == "postgres" { 2 * REQUESTS - 1 } else { 2 * REQUESTS };
        assert_eq!(rows.len(), expected, "{name}: nothing else stored");
    }
}

/// A batch of many new documents (a rebuild's) is stored exactly as written, whatever its text
/// holds. On PostgreSQL such a batch is streamed with `COPY`, whose text format gives
/// backslash, tab, newline, carriage return and `\N` (null) meanings of their own.
#[tokio::test]
async fn a_large_batch_of_new_documents_is_stored_exactly_as_written() {
    use feeledger_infrastructure::storage::documents::{Advance, Changes, DocumentStore};
    const NAME: &str = "awkward-text";
    for db in TestDatabase::each_backend().await {
        let backend = db.backend_name;
        let docs = DocumentStore::new(db.store().await);
        let now = chrono::Utc::now();
        docs.ensure(NAME, 1, now).await.unwrap();
        let generation = docs.start_rebuild(NAME, 1, now).await.unwrap();
        let awkward = ["tab\there", "line\nbreak", "back\\slash", "cr\rhere", "\\N", "\\.", "Lệ phí \"hộ tịch\""];
        let inserts: Vec<(String, String)> = (0..600)
            .map(|n| {
                let text = awkward[n % awkward.len()];
                (format!("doc/{n:04}/{text}"), json!({ "n": n, "text": text }).to_string())
            })
            .collect();
        let changes = Changes { inserts: inserts.clone(), ..Changes::default() };
        let to = Checkpoint { transaction_id: 1, position: 1 };
        let advance = Advance { from: Checkpoint::START, to, events: 600, now };
        assert!(docs.commit(NAME, generation, advance, &changes).await.unwrap(), "[{backend}] the batch committed");

        let keys: Vec<String> = inserts.iter().map(|(key, _)| key.clone()).collect();
        let stored = docs.load(NAME, generation, &keys).await.unwrap();
        assert_eq!(stored.len(), inserts.len(), "[{backend}] every document, under its own key");
        for (key, doc) in &inserts {
            let written: serde_json::Value = serde_json::from_str(doc).unwrap();
            assert_eq!(stored.get(key), Some(&written), "[{backend}] {key:?}");
        }
        let checkpoint = docs.checkpoint(NAME, generation).await.unwrap().unwrap();
        assert_eq!(checkpoint.checkpoint, to, "[{backend}] the checkpoint moved with the documents");
    }
}

/// An append answers with its events as stored — positions, transaction, versions, hashes,
/// payloads, metadata — exactly as a read of the stream returns them, so that a command can
/// show the case without reading it again; with an idempotency key, and after other appends.
#[tokio::test]
async fn an_append_answers_with_its_events_exactly_as_a_read_returns_them() {
    for db in TestDatabase::each_backend().await {
        let backend = db.backend_name;
        let store = db.store().await;
        store.append("case-other", ExpectedVersion::NoStream, vec![event(9)], None).await.unwrap();
        let first = store.append("case-A", ExpectedVersion::NoStream, vec![event(1), event(2)], None).await.unwrap();
        let key = IdempotencyKey::new("recordPayment", "answer-as-stored", &json!({ "amount": 3000 }));
        let second = store.append("case-A", ExpectedVersion::Exact(2), vec![event(3)], Some(&key)).await.unwrap();
        let (AppendOutcome::Appended(_, first), AppendOutcome::Appended(_, second)) = (first, second) else {
            panic!("[{backend}] both appended");
        };
        let answered: Vec<_> = first.into_iter().chain(second).collect();
        assert_eq!(answered, store.read_stream("case-A").await.unwrap(), "[{backend}]");
    }
}

/// A multi-stream append may store new inbox rows, each with its outcome, in its own commit
/// (a bank notification's request with the money it brought), and checks the agencies' count
/// its writer decided with: when an agency was configured since, nothing is stored — neither
/// the events nor the rows. Both ways of appending on PostgreSQL (one statement when every
/// head is known, a transaction otherwise) and SQLite's writer.
#[tokio::test]
async fn an_append_stores_new_inbox_rows_with_its_events_and_nothing_when_an_agency_was_configured_since() {
    use std::sync::Arc;

    use feeledger_infrastructure::inbox::{Inbox, InboxOutcome, InboxResolution, InboxRow, ReceivedRequest};
    use feeledger_infrastructure::storage::StreamAppend;
    for db in TestDatabase::each_backend().await {
        let store = db.store().await;
        let name = db.backend_name;
        let inbox = Inbox::new(store.clone());
        let arrival = |n: i64| InboxResolution {
            row: InboxRow::Arriving(Arc::new(ReceivedRequest {
                provider: "sepay",
                method: "POST".into(),
                uri: "/webhooks/sepay".into(),
                headers: json!({ "content-type": "application/json" }),
                body: format!("{{\"id\":{n}}}").into_bytes(),
                body_truncated: false,
                received_at: chrono::Utc::now(),
            })),
            outcome: InboxOutcome::Recorded,
            detail: Some(format!("case {n}")),
            credit_id: Some(format!("sepay:{n}")),
            http_status: Some(200),
            at: chrono::Utc::now(),
        };
        store.append("arrival-known-later", ExpectedVersion::NoStream, vec![event(1)], None).await.unwrap();
        // A new stream (one statement on PostgreSQL), and a stream whose head is read in the
        // append's transaction.
        let appends = |n: i64| match n {
            1 => vec![StreamAppend {
                stream_id: "arrival-new".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(1), event(2)],
            }],
            _ => vec![StreamAppend {
                stream_id: "arrival-known-later".into(),
                expected: ExpectedVersion::Exact(1),
                events: vec![event(2)],
            }],
        };
        let configured = store.agency_configuration_count().await.unwrap();
        for n in [1, 2] {
            let stale = store.append_together_resolving(appends(n), &[], &[arrival(n)], Some(configured + 1)).await;
            assert!(matches!(stale, Err(StoreError::AgenciesChanged { .. })), "{name}: {stale:?}");
        }
        assert!(store.read_stream("arrival-new").await.unwrap().is_empty(), "{name}");
        assert_eq!(store.read_stream("arrival-known-later").await.unwrap().len(), 1, "{name}");
        assert!(inbox.recent(None, 10).await.unwrap().is_empty(), "{name}: no row without its events");

        for n in [1, 2] {
            store.append_together_resolving(appends(n), &[], &[arrival(n)], Some(configured)).await.unwrap();
        }
        assert_eq!(store.read_stream("arrival-new").await.unwrap().len(), 2, "{name}");
        assert_eq!(store.read_stream("arrival-known-later").await.unwrap().len(), 2, "{name}");
        let mut rows = inbox.recent(None, 10).await.unwrap();
        rows.reverse();
        assert_eq!(rows.len(), 2, "{name}");
        for (n, row) in (1..).zip(&rows) {
            assert_eq!(row.body, format!("{{\"id\":{n}}}").into_bytes(), "{name}");
            assert_eq!(row.outcome, "recorded", "{name}");
            assert_eq!(row.outcome_detail.as_deref(), Some(format!("case {n}").as_str()), "{name}");
            assert_eq!(row.credit_id.as_deref(), Some(format!("sepay:{n}").as_str()), "{name}");
            assert_eq!(row.http_status, Some(200), "{name}");
        }
        assert!(inbox.unfinished(chrono::Utc::now(), 10).await.unwrap().is_empty(), "{name}: rows are finished");
    }
}

/// The rows the statistics of `events` count (negative before its first analysis).
async fn statistics_rows(connection: &mut sqlx::PgConnection) -> f32 {
    sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'events'::regclass")
        .fetch_one(connection)
        .await
        .unwrap()
}

/// On a server with autovacuum off (as the test server is), the store analyses the log as it
/// grows, as autoanalyze would: first once it has a few hundred events, then again once a tenth
/// more were appended, so that no plan made from a small log's statistics (or none) keeps
/// scanning it whole.
#[tokio::test]
async fn a_log_growing_on_a_server_without_autovacuum_is_analysed_as_it_grows() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let mut admin = feeledger_infrastructure::test_support::replicated::connect(&db.url).await;
    let autovacuum: String =
        sqlx::query_scalar("SELECT current_setting('autovacuum')").fetch_one(&mut admin).await.unwrap();
    if autovacuum != "off" {
        eprintln!("*** the test server runs autovacuum: analysing is its work, and the store leaves it alone ***");
        return;
    }
    let store = db.store().await;
    assert!(statistics_rows(&mut admin).await < 0.0, "a new log has no statistics");
    let mut appended = 0u32;
    for (from, to) in [(0u32, 60u32), (60, 120)] {
        for n in from..to {
            let events = (0..10).map(|i| event(n * 10 + i)).collect();
            store.append(&format!("case-{n}"), ExpectedVersion::NoStream, events, None).await.unwrap();
            appended += 10;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let rows = statistics_rows(&mut admin).await;
            if rows >= appended as f32 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{appended} events appended, statistics count {rows}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The columns a plan uses have statistics; the event's payload, metadata, hash and id,
    // which no statement filters or sorts on, are not sampled (migration 0012).
    let analysed: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'events' ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for column in ["event_type", "global_position", "stream_id", "stream_version", "transaction_id"] {
        assert!(analysed.iter().any(|c| c == column), "{column} has statistics: {analysed:?}");
    }
    for column in ["payload", "metadata", "hash", "event_id"] {
        assert!(!analysed.iter().any(|c| c == column), "{column} is not sampled: {analysed:?}");
    }
}

/// The statements PostgreSQL runs at every commit under load — payment intake's group append,
/// the log's reads after a checkpoint (the live feed, every projection), the reads of streams
/// by list — keep one plan per connection: their values reach the planner through sub-selects,
/// so a plan for one call's exact values never looks cheaper than the generic one (with them
/// in sight each call was planned again, at up to a fifth of its cost; docs/BENCHMARKS.md).
/// One connection, so that every statement and the check share one session. (On a log this
/// small the log's reads would keep one plan even with their values in sight: it is the group
/// append, against an inbox with a history, and the read by list that catch a regression.)
#[tokio::test]
async fn the_statements_run_at_every_commit_keep_one_plan_per_connection() {
    use feeledger_infrastructure::storage::StreamAppend;
    let Some(db) = TestDatabase::postgres().await else { return };
    let options = feeledger_infrastructure::storage::StoreOptions { max_connections: 1, ..Default::default() };
    let store = Storage::connect(&db.url, options).await.unwrap();
    store.migrate().await.unwrap();
    let Storage::Postgres(pg) = &store else { panic!("a PostgreSQL store") };
    // An inbox with a history, analysed, as a deployed one has: against it, a plan for a group
    // with no stored rows to update looks far cheaper than the generic one.
    sqlx::query(
        "INSERT INTO bank_notifications (provider, received_at, method, uri, headers, body, body_truncated) \
         SELECT 'sepay', now(), 'POST', '/webhooks/sepay', '{}', convert_to(n::text, 'UTF8'), false \
         FROM generate_series(1, 20000) AS n",
    )
    .execute(pg.test_pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE bank_notifications").execute(pg.test_pool()).await.unwrap();
    let mut checkpoint = Checkpoint::START;
    for n in 0..12 {
        let appends = (0..=n % 3)
            .map(|i| StreamAppend {
                stream_id: format!("planned-{n}-{i}"),
                expected: ExpectedVersion::NoStream,
                events: (0..=i).map(|k| event(n * 10 + k)).collect(),
            })
            .collect();
        store.append_together_resolving(appends, &[], &[], None).await.unwrap();
        let streams: Vec<String> = (0..=n % 3).map(|i| format!("planned-{n}-{i}")).collect();
        assert!(!store.read_streams(&streams).await.unwrap().is_empty());
        store.read_all_of_types(checkpoint, 50, &["PaymentReceived", "FullyPaid"]).await.unwrap();
        if let Some(last) = store.read_all(checkpoint, 50).await.unwrap().last() {
            checkpoint = last.checkpoint();
        }
    }
    let plans: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            .fetch_all(pg.test_pool())
            .await
            .unwrap();
    for (what, marker) in [
        ("payment intake's group append", "WITH agencies AS"),
        ("the log's read after a checkpoint", "metadata, recorded_at, hash FROM events WHERE (events.transaction_id"),
        ("the log's read of some types", "event_type = ANY("),
        ("the read of streams by list", "stream_id = ANY("),
    ] {
        let found: Vec<_> = plans.iter().filter(|(statement, _, _)| statement.contains(marker)).collect();
        assert_eq!(found.len(), 1, "{what}: {found:?} among {plans:?}");
        let (_, generic, custom) = found[0];
        assert!(*generic >= 6 && *custom <= 5, "{what}: {generic} generic plans, {custom} custom plans");
    }
}

/// A live batch's commit (on PostgreSQL one statement: `dialect::Pg::advance_with_documents`)
/// moves the checkpoint and writes its new, changed and deleted documents together; a batch
/// committed from a checkpoint that moved on writes nothing; of two runners committing the same
/// batch at once, exactly one does.
#[tokio::test]
async fn a_batch_commits_its_documents_only_with_its_checkpoint_and_only_once() {
    use feeledger_infrastructure::storage::documents::{Advance, Changes, DocumentStore};
    const NAME: &str = "live-batch";
    let text = |n: u32| json!({ "n": n }).to_string();
    for db in TestDatabase::each_backend().await {
        let backend = db.backend_name;
        let docs = DocumentStore::new(db.store().await);
        let now = chrono::Utc::now();
        let generation = docs.ensure(NAME, 1, now).await.unwrap().active;
        let first = Checkpoint { transaction_id: 1, position: 1 };
        let setup = Changes {
            inserts: vec![("kept".into(), text(1)), ("changed".into(), text(1)), ("deleted".into(), text(1))],
            ..Changes::default()
        };
        let advance = Advance { from: Checkpoint::START, to: first, events: 3, now };
        assert!(docs.commit(NAME, generation, advance, &setup).await.unwrap(), "[{backend}] the first batch");

        // The next batch: a new document, a changed one, a deleted one.
        let second = Checkpoint { transaction_id: 2, position: 2 };
        let batch = Changes {
            inserts: vec![("new".into(), text(2))],
            upserts: vec![("changed".into(), text(2))],
            deletes: vec!["deleted".into()],
        };
        let advance = Advance { from: first, to: second, events: 3, now };
        let (one, other) = tokio::join!(
            docs.commit(NAME, generation, advance, &batch),
            docs.commit(NAME, generation, advance, &batch)
        );
        let committed = [one.unwrap(), other.unwrap()];
        assert_eq!(
            committed.iter().filter(|c| **c).count(),
            1,
            "[{backend}] exactly one runner committed: {committed:?}"
        );
        let keys: Vec<String> = ["kept", "changed", "deleted", "new"].map(String::from).to_vec();
        let stored = docs.load(NAME, generation, &keys).await.unwrap();
        let expected: std::collections::HashMap<String, serde_json::Value> =
            [("kept", 1), ("changed", 2), ("new", 2)].map(|(k, n)| (k.to_owned(), json!({ "n": n }))).into();
        assert_eq!(stored, expected, "[{backend}]");
        let checkpoint = docs.checkpoint(NAME, generation).await.unwrap().unwrap();
        assert_eq!((checkpoint.checkpoint, checkpoint.events_seen), (second, 6), "[{backend}]");

        // A runner still at the first checkpoint: nothing of its batch is written.
        let stale = Changes {
            inserts: vec![("stale".into(), text(3))],
            upserts: vec![("kept".into(), text(3))],
            deletes: vec!["changed".into()],
        };
        let advance = Advance { from: first, to: Checkpoint { transaction_id: 3, position: 3 }, events: 1, now };
        assert!(!docs.commit(NAME, generation, advance, &stale).await.unwrap(), "[{backend}] a stale batch");
        let keys: Vec<String> = ["kept", "changed", "deleted", "new", "stale"].map(String::from).to_vec();
        assert_eq!(docs.load(NAME, generation, &keys).await.unwrap(), expected, "[{backend}] nothing written");
        let checkpoint = docs.checkpoint(NAME, generation).await.unwrap().unwrap();
        assert_eq!((checkpoint.checkpoint, checkpoint.events_seen), (second, 6), "[{backend}]");
    }
}
