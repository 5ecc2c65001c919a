//! Tamper evidence: each way of changing the log behind the application's back is found, with
//! its stream and position, on real SQLite and real PostgreSQL.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use feeledger_domain::vietnam_time;
use feeledger_infrastructure::audit::{self, AuditReport, DIGEST_STREAM, Problem};
use feeledger_infrastructure::storage::hash_chain::{EventFacts, event_hash};
use feeledger_infrastructure::storage::{EventMetadata, ExpectedVersion, NewEvent, RecordedEvent, Storage};
use feeledger_infrastructure::test_support::TestDatabase;
use serde_json::json;
use uuid::Uuid;

fn payment(amount: u32) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "PaymentReceived".into(),
        schema_version: 1,
        payload: json!({ "amount": amount.to_string(), "channel": "vietqr" }),
        metadata: EventMetadata { actor: Some("officer-1".into()), ..EventMetadata::default() },
    }
}

/// Three cases of four events each, interleaved, then today sealed.
async fn sealed_log(db: &TestDatabase) -> Storage {
    let store = db.store().await;
    for version in 0..4 {
        for case in ["case-A", "case-B", "case-C"] {
            let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
            store.append(case, expected, vec![payment(1000 * (version as u32 + 1))], None).await.unwrap();
        }
    }
    let today = vietnam_time::date_of(chrono::Utc::now());
    let seals = audit::seal_through(&store, today).await.unwrap();
    assert_eq!(seals.len(), 1, "{}: one day to seal", db.backend_name);
    assert_eq!(seals[0].events, 12);
    store
}

async fn verify(store: &Storage) -> AuditReport {
    audit::verify_store(store, |_| {}).await.unwrap()
}

async fn stream(store: &Storage, id: &str) -> Vec<RecordedEvent> {
    store.read_stream(id).await.unwrap()
}

/// Runs `statements` with the append-only triggers out of the way, as a superuser could.
async fn tamper(store: &Storage, statements: &[String]) {
    match store {
        Storage::Postgres(pg) => {
            let mut tx = pg.test_pool().begin().await.unwrap();
            sqlx::query("ALTER TABLE events DISABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
            for sql in statements {
                sqlx::query(sql).execute(&mut *tx).await.unwrap();
            }
            sqlx::query("ALTER TABLE events ENABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        Storage::Sqlite(lite) => {
            let mut tx = lite.test_pool().begin().await.unwrap();
            sqlx::query("DROP TRIGGER events_no_update").execute(&mut *tx).await.unwrap();
            sqlx::query("DROP TRIGGER events_no_delete").execute(&mut *tx).await.unwrap();
            for sql in statements {
                sqlx::query(sql).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_untouched_log_verifies_with_its_day_sealed() {
    for db in TestDatabase::each_backend().await {
        let store = sealed_log(&db).await;
        let report = verify(&store).await;
        assert!(report.intact(), "{}: {:?}", db.backend_name, report.findings);
        assert_eq!(report.events, 13, "12 payments and the seal");
        assert_eq!(report.streams, 4);
        assert_eq!(report.sealed_days, 1);
        assert_eq!(report.unsealed_events, 0);
        // Sealing again seals nothing new.
        let today = vietnam_time::date_of(chrono::Utc::now());
        assert!(audit::seal_through(&store, today).await.unwrap().is_empty());
        assert_eq!(stream(&store, DIGEST_STREAM).await.len(), 1);
    }
}

#[tokio::test]
async fn a_changed_payload_is_found_at_its_position() {
    for db in TestDatabase::each_backend().await {
        let store = sealed_log(&db).await;
        let target = stream(&store, "case-B").await[1].position;
        let forged = r#"{"amount":"9000","channel":"vietqr"}"#;
        let set = match store {
            Storage::Postgres(_) => {
                format!("UPDATE events SET payload = '{forged}'::jsonb WHERE global_position = {target}")
            }
            Storage::Sqlite(_) => format!("UPDATE events SET payload = '{forged}' WHERE global_position = {target}"),
        };
        tamper(&store, &[set]).await;
        let report = verify(&store).await;
        let first = &report.findings[0];
        assert_eq!((first.stream_id.as_str(), first.position), ("case-B", target), "{}: {first}", db.backend_name);
        assert_eq!(first.problem, Problem::ContentChanged);
        assert!(first.to_string().contains("payload changed"), "{first}");
    }
}

#[tokio::test]
async fn a_deleted_event_is_found_as_missing() {
    for db in TestDatabase::each_backend().await {
        let store = sealed_log(&db).await;
        let events = stream(&store, "case-A").await;
        tamper(&store, &[format!("DELETE FROM events WHERE global_position = {}", events[1].position)]).await;
        let report = verify(&store).await;
        let first = &report.findings[0];
        assert_eq!((first.stream_id.as_str(), first.position), ("case-A", events[2].position), "{}", db.backend_name);
        assert_eq!(first.problem, Problem::EventMissing { from: 2, to: 2 });
        assert!(
            report
                .findings
                .iter()
                .any(|f| matches!(f.problem, Problem::DigestMismatch { sealed_events: 12, found_events: 11, .. })),
            "{:?}",
            report.findings
        );
    }
}

#[tokio::test]
async fn two_swapped_events_are_found_as_an_order_change() {
    for db in TestDatabase::each_backend().await {
        let store = sealed_log(&db).await;
        let events = stream(&store, "case-C").await;
        let (second, third) = (events[1].position, events[2].position);
        tamper(
            &store,
            &[
                format!("UPDATE events SET stream_version = 1000 WHERE global_position = {second}"),
                format!("UPDATE events SET stream_version = 2 WHERE global_position = {third}"),
                format!("UPDATE events SET stream_version = 3 WHERE global_position = {second}"),
            ],
        )
        .await;
        let report = verify(&store).await;
        let first = &report.findings[0];
        assert_eq!((first.stream_id.as_str(), first.position), ("case-C", second), "{}: {first}", db.backend_name);
        assert!(matches!(first.problem, Problem::OrderChanged { version: 3, .. }), "{first}");
        assert!(first.to_string().contains("order changed"));
    }
}

#[tokio::test]
async fn a_truncated_stream_tail_is_found_from_the_seal() {
    for db in TestDatabase::each_backend().await {
        let store = sealed_log(&db).await;
        let events = stream(&store, "case-A").await;
        // The last two events of case-A go; the chain of what remains is intact.
        tamper(&store, &["DELETE FROM events WHERE stream_id = 'case-A' AND stream_version >= 3".to_owned()]).await;
        let report = verify(&store).await;
        let first = &report.findings[0];
        assert_eq!((first.stream_id.as_str(), first.position), ("case-A", events[3].position), "{}", db.backend_name);
        assert!(matches!(first.problem, Problem::TailMissing { sealed: 4, found: 2, .. }), "{first}");
    }
}

#[tokio::test]
async fn a_rewrite_that_recomputes_the_hash_still_breaks_the_daily_digest() {
    for db in TestDatabase::each_backend().await {
        let store = sealed_log(&db).await;
        let events = stream(&store, "case-C").await;
        let (previous, last) = (&events[2], &events[3]);
        let forged_payload = json!({ "amount": "1", "channel": "vietqr" });
        let hash = event_hash(&previous.hash, &EventFacts { payload: &forged_payload, ..EventFacts::of(last) });
        let hex = hex::encode(hash);
        let set = match store {
            Storage::Postgres(_) => format!(
                "UPDATE events SET payload = '{forged_payload}'::jsonb, hash = '\\x{hex}'::bytea WHERE global_position = {}",
                last.position
            ),
            Storage::Sqlite(_) => {
                format!(
                    "UPDATE events SET payload = '{forged_payload}', hash = X'{hex}' WHERE global_position = {}",
                    last.position
                )
            }
        };
        tamper(&store, &[set]).await;
        let report = verify(&store).await;
        assert_eq!(report.findings.len(), 1, "{}: {:?}", db.backend_name, report.findings);
        assert!(matches!(report.findings[0].problem, Problem::DigestMismatch { .. }), "{}", report.findings[0]);
        assert!(report.findings[0].to_string().contains("digest mismatch"));
    }
}

#[tokio::test]
async fn an_exported_file_verifies_offline_and_a_changed_line_is_found() {
    for db in TestDatabase::each_backend().await {
        let store = sealed_log(&db).await;
        let mut lines = Vec::new();
        let mut after = 0;
        loop {
            let page = store.read_by_position(after, 5).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.position;
            lines.extend(page.iter().map(|e| serde_json::to_string(e).unwrap()));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let report = audit::verify_file(&path, |_| {}).unwrap();
        assert!(report.intact(), "{}: {:?}", db.backend_name, report.findings);
        assert_eq!((report.events, report.sealed_days), (13, 1));

        let changed = lines[4].replace("\"amount\":\"2000\"", "\"amount\":\"20000\"");
        assert_ne!(changed, lines[4], "line 5 is a 2,000 payment");
        lines[4] = changed;
        std::fs::write(&path, lines.join("\n")).unwrap();
        let report = audit::verify_file(&path, |_| {}).unwrap();
        assert_eq!(report.findings[0].problem, Problem::ContentChanged, "{}", db.backend_name);
    }
}

/// `url` with its user and password replaced.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let host = match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{host}{}", &rest[authority_end..]),
        None => rest.to_owned(),
    };
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test]
async fn the_application_role_may_append_and_read_events_but_never_change_or_remove_them() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let owner = db.store().await;
    let Storage::Postgres(owner_pg) = &owner else { unreachable!() };
    let login = format!("feeledger_test_node_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE ROLE {login} LOGIN PASSWORD 'node-password' IN ROLE feeledger_app"))
        .execute(owner_pg.test_pool())
        .await
        .unwrap();

    let node = Storage::connect(&as_user(&db.url, &login, "node-password"), Default::default()).await.unwrap();
    node.check_schema().await.expect("the schema is current");
    let refused = node.migrate().await.expect_err("the application role may not migrate");
    assert!(refused.to_string().contains("permission denied"), "{refused}");
    node.append("case-A", ExpectedVersion::NoStream, vec![payment(3000)], None).await.unwrap();
    node.append("case-A", ExpectedVersion::Exact(1), vec![payment(1000)], None).await.unwrap();
    assert_eq!(stream(&node, "case-A").await.len(), 2);

    let Storage::Postgres(node_pg) = &node else { unreachable!() };
    for sql in [
        "UPDATE events SET payload = '{}'::jsonb",
        "DELETE FROM events",
        "TRUNCATE events",
        "ALTER TABLE events DISABLE TRIGGER USER",
        "DELETE FROM command_idempotency",
    ] {
        let err = sqlx::query(sql).execute(node_pg.test_pool()).await.expect_err(sql);
        let message = err.to_string();
        assert!(
            message.contains("permission denied") || message.contains("must be owner"),
            "{sql}: refused by the grants, before any trigger: {message}"
        );
    }
    assert!(verify(&node).await.intact());
    node.close().await;
    sqlx::query(&format!("DROP ROLE {login}")).execute(owner_pg.test_pool()).await.unwrap();
}

#[tokio::test]
async fn a_log_restored_into_a_cluster_with_an_older_transaction_counter_is_refused() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = db.store().await;
    store.append("case-A", ExpectedVersion::NoStream, vec![payment(3000)], None).await.unwrap();
    store.check_transaction_counter().await.expect("a log written by this cluster is in order");
    // As if restored from a cluster 2^40 transactions older than this one.
    let Storage::Postgres(pg) = &store else { unreachable!() };
    sqlx::query(
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, \
         recorded_at, hash, transaction_id) VALUES ('case-B', 1, gen_random_uuid(), 'PaymentReceived', 1, '{}', '{}', \
         now(), decode(repeat('00', 32), 'hex'), '1099511627776'::xid8)",
    )
    .execute(pg.test_pool())
    .await
    .unwrap();
    let refused = store.check_transaction_counter().await.expect_err("new events would sort before this one");
    assert!(refused.to_string().contains("restored"), "{refused}");
}
