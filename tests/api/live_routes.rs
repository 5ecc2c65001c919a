//! The live routes: a commit reaches only the subscriptions following one of its topics.

use std::time::Duration;

use feeledger_api::live_routes::{Follower, LiveRoutes, Notice, Topic};
use feeledger_infrastructure::live_feed::LiveFeed;
use feeledger_infrastructure::storage::{EventMetadata, ExpectedVersion, NewEvent, Storage};
use feeledger_infrastructure::test_support::TestDatabase;
use serde_json::{Value, json};

/// Generous: a bound on a broken test's running time, not a performance assertion.
const PATIENCE: Duration = Duration::from_secs(10);
const CASE_A: &str = "case-H34.22.6-240426-0002";
const CASE_B: &str = "case-H34.22.6-240426-0003";
const OTHER_AGENCY_CASE: &str = "case-H34.22.7-240426-0001";

async fn append(store: &Storage, stream: &str, event_type: &str, payload: Value) {
    let event = NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        payload,
        metadata: EventMetadata::default(),
    };
    store.append(stream, ExpectedVersion::Any, vec![event], None).await.unwrap();
}

async fn next(follower: &mut Follower) -> (String, String) {
    match tokio::time::timeout(PATIENCE, follower.recv()).await.expect("a notice") {
        Some(Notice::Event(event)) => (event.stream_id.clone(), event.event_type.clone()),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Each follower hears the events of its topics and no other: the first notice after an
/// event it must not hear is the next one it must.
#[tokio::test]
async fn a_commit_reaches_only_the_followers_of_its_topics() {
    for database in TestDatabase::each_backend().await {
        let store = database.store().await;
        let tasks = feeledger_infrastructure::tasks::Tasks::default();
        let feed = LiveFeed::start(store.clone(), Duration::from_millis(20), &tasks);
        let routes = LiveRoutes::start(&feed, &tasks);
        // The feed starts from the end of the log once it has read it: wait until it hears.
        let mut warm = routes.follow([Topic::Stream("warm-up".into())]);
        loop {
            append(&store, "warm-up", "WarmedUp", json!({})).await;
            if tokio::time::timeout(Duration::from_millis(200), warm.recv()).await.is_ok() {
                break;
            }
        }
        drop(warm);

        let mut case_a = routes.follow([Topic::Stream(CASE_A.into())]);
        let mut case_b = routes.follow([Topic::Stream(CASE_B.into())]);
        let mut money = routes.follow([Topic::MoneyFor("H34.22.6".into())]);
        let counter = || Topic::Counter { agency: "H34.22.6".into(), counter: "quay-1".into() };
        let mut screen = routes.follow([counter()]);
        let mut both = routes.follow([counter(), Topic::Stream(CASE_B.into())]);
        assert_eq!(routes.followers(), 5);

        append(&store, CASE_A, "PaymentReceived", json!({})).await;
        let activation = json!({"agency_code": "H34.22.6", "counter_id": "quay-1"});
        append(&store, CASE_B, "QrIssued", activation).await;
        append(&store, OTHER_AGENCY_CASE, "PaymentReceived", json!({})).await;
        append(&store, CASE_B, "PaymentReceived", json!({})).await;

        assert_eq!(next(&mut case_a).await, (CASE_A.into(), "PaymentReceived".into()), "[{}]", database.url);
        assert_eq!(next(&mut case_b).await, (CASE_B.into(), "QrIssued".into()));
        assert_eq!(next(&mut case_b).await, (CASE_B.into(), "PaymentReceived".into()));
        assert_eq!(next(&mut money).await, (CASE_A.into(), "PaymentReceived".into()));
        assert_eq!(next(&mut money).await, (CASE_B.into(), "PaymentReceived".into()), "not the other agency's");
        assert_eq!(next(&mut screen).await, (CASE_B.into(), "QrIssued".into()));
        // Following two of the event's topics, it hears it once.
        assert_eq!(next(&mut both).await, (CASE_B.into(), "QrIssued".into()));
        assert_eq!(next(&mut both).await, (CASE_B.into(), "PaymentReceived".into()));

        // The counter screen now follows case B's stream too, then only it.
        screen.follow(Topic::Stream(CASE_B.into()));
        screen.unfollow(&counter());
        append(&store, CASE_A, "QrIssued", json!({"agency_code": "H34.22.6", "counter_id": "quay-1"})).await;
        append(&store, CASE_B, "PaymentReceived", json!({})).await;
        assert_eq!(next(&mut screen).await, (CASE_B.into(), "PaymentReceived".into()));
        assert_eq!(next(&mut case_a).await, (CASE_A.into(), "QrIssued".into()));

        drop((case_a, case_b, money, screen));
        assert_eq!(routes.followers(), 1, "a dropped follower is no longer routed to");
        drop(both);
        assert_eq!(routes.topics(), 0, "and no topic is left without a follower");
    }
}
