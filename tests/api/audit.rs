//! The auditor's export over GraphQL: the whole log, paged in commit-safe order, verifiable
//! offline; and the daily digests.

use feeledger_api::auth::Role;
use feeledger_infrastructure::audit;
use feeledger_tests::{CASE_FIELDS, spawn_each_backend};
use serde_json::json;

const AGENCY: &str = "H34.22.6";
const FULL_ID: &str = "079201008870";

const PAGE: &str = "query($after: String) { auditEvents(after: $after, first: 3) { hasMore endCursor \
                    events { position streamId type data hash exportLine } } }";

#[tokio::test]
async fn an_auditor_pages_through_the_whole_log_and_the_copy_verifies_offline() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        let assess = format!("mutation($input: AssessFeesInput!) {{ assessFees(input: $input) {{ {CASE_FIELDS} }} }}");
        let input = json!({ "input": {
            "caseCode": "H34.22.6-240426-0002", "agencyCode": AGENCY, "procedureName": "Chứng thực",
            "payer": { "name": "VÕ ĐẶNG NGỌC GIÀ", "idNumber": FULL_ID }, "lines": [{ "feeCode": "P-SAOY", "quantity": 1 }] } });
        app.graphql_ok(&officer, &assess, input).await;
        let store = app.state.ledger.store().clone();
        let today = feeledger_domain::vietnam_time::date_of(chrono::Utc::now());
        assert_eq!(audit::seal_through(&store, today).await.unwrap().len(), 1);

        let auditor = app.token(Role::Auditor, None, None);
        let head = store.head().await.unwrap();
        // The export shows only what no open transaction can still precede (the commit-order
        // barrier is cluster-wide on PostgreSQL, so other tests' transactions hold it back for
        // a moment): page again until it has passed every event committed here.
        let (mut lines, mut pages) = (Vec::new(), 0);
        for _ in 0..40 {
            let mut after = None::<String>;
            (lines, pages) = (Vec::new(), 0);
            loop {
                let page = app.graphql_ok(&auditor, PAGE, json!({ "after": after })).await;
                let page = &page["auditEvents"];
                for event in page["events"].as_array().unwrap() {
                    lines.push(event["exportLine"].as_str().unwrap().to_owned());
                }
                pages += 1;
                after = Some(page["endCursor"].as_str().unwrap().to_owned());
                if page["hasMore"] == false {
                    break;
                }
            }
            if lines.len() as i64 >= head.event_count {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert_eq!(lines.len() as i64, head.event_count, "[{}] every event once", app.backend());
        assert!(pages > 1, "paged");
        assert!(lines.iter().any(|l| l.contains(FULL_ID)), "auditors see the data as recorded");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        std::fs::write(&file, lines.join("\n")).unwrap();
        let report = audit::verify_file(&file, |_| {}).unwrap();
        assert!(report.intact(), "[{}] {:?}", app.backend(), report.findings);
        assert_eq!(report.sealed_days, 1);

        let digests = app
            .graphql_ok(
                &app.token(Role::Finance, Some(AGENCY), None),
                "{ dailyDigests { date events digest } }",
                json!({}),
            )
            .await;
        assert_eq!(digests["dailyDigests"][0]["date"], today.to_string());

        for token in [app.token(Role::Auditor, Some(AGENCY), None), officer.clone(), app.admin()] {
            assert_eq!(app.graphql_error_code(Some(&token), PAGE, json!({})).await, "FORBIDDEN");
        }
        let bad_cursor = app.graphql_error_code(Some(&auditor), PAGE, json!({ "after": "yesterday" })).await;
        assert_eq!(bad_cursor, "VALIDATION");
    }
}
