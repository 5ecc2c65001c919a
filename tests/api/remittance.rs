//! A deposit to the State Treasury is one atomic, idempotent fact: a failure in the middle of
//! recording it leaves nothing behind, a retried request finds its first result, and a voucher
//! number cannot be used again for a different deposit.

use chrono::NaiveDate;
use feeledger_api::auth::Role;
use feeledger_domain::codes::AgencyCode;
use feeledger_tests::traffic::{self, Plan};
use feeledger_tests::{TestApp, spawn_each_backend};
use serde_json::{Value, json};

const REMIT: &str =
    "mutation($input: RemitInput!) { remitToTreasury(input: $input) { id amount cases voucherNumber } }";

const OUTSTANDING: &str = "query($a: String!, $f: Date!, $t: Date!) { treasuryReport(agencyCode: $a, from: $f, to: $t) { outstanding remitted } }";

async fn count(app: &TestApp, event_type: &str) -> usize {
    app.state.ledger.store().events_of_type(event_type).await.unwrap().len()
}

async fn outstanding(app: &TestApp, finance: &str, agency: &str, up_to: &str) -> (i64, i64) {
    let report = app.graphql_ok(finance, OUTSTANDING, json!({ "a": agency, "f": "2026-01-01", "t": up_to })).await;
    let dong = |v: &Value| v.as_str().unwrap().parse::<i64>().unwrap();
    (dong(&report["treasuryReport"]["outstanding"]), dong(&report["treasuryReport"]["remitted"]))
}

#[tokio::test]
async fn a_remittance_is_recorded_whole_or_not_at_all_and_a_retry_finds_its_first_result() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let agency = "R01.1";
        let plan = Plan { agencies: vec![agency.into()], days: 10, ..Plan::small() };
        traffic::generate(&app.state.ledger, &plan).await.unwrap();
        app.state.runner.caught_up("treasury", std::time::Duration::from_secs(30)).await.unwrap();
        let finance = app.token(Role::Finance, None, None);
        let up_to = "2026-10-10";
        let (owed, remitted_before) = outstanding(&app, &finance, agency, up_to).await;
        assert!(owed > 0 && remitted_before == 0, "[{backend}] {owed} {remitted_before}");

        // The candidates, in the order the command records them; fail at one in the middle.
        let candidates = app
            .state
            .context
            .treasury
            .unremitted_cases(&AgencyCode::parse(agency).unwrap(), NaiveDate::from_ymd_opt(2026, 10, 10).unwrap())
            .await
            .unwrap();
        assert!(candidates.len() >= 10, "[{backend}] {} candidates", candidates.len());
        let middle = format!("case-{}", candidates[candidates.len() / 2]);
        let events_before = app.event_count().await;
        app.fail_inserts_of("RemittedToTreasury", &middle, true).await;

        let input = json!({ "input": { "agencyCode": agency, "upTo": up_to, "voucherNumber": "GNT-ATOMIC-01",
                                       "amount": owed.to_string(), "remittedOn": "2026-10-12" } });
        let failed = app.graphql(Some(&finance), REMIT, input.clone()).await;
        assert!(failed["errors"].is_array(), "[{backend}] the injected failure must surface: {failed}");
        assert_eq!(app.event_count().await, events_before, "[{backend}] nothing of the failed remittance is kept");
        assert_eq!(count(&app, "RemittedToTreasury").await, 0, "[{backend}]");
        assert_eq!(count(&app, "RemittanceRecorded").await, 0, "[{backend}]");

        // The retry, once the fault is gone, records the whole deposit for the full amount.
        app.fail_inserts_of("RemittedToTreasury", &middle, false).await;
        let done = app.graphql_ok(&finance, REMIT, input.clone()).await["remitToTreasury"].clone();
        let cases = usize::try_from(done["cases"].as_i64().unwrap()).unwrap();
        assert_eq!(done["amount"], owed.to_string(), "[{backend}] {done}");
        assert_eq!(count(&app, "RemittedToTreasury").await, cases, "[{backend}] one fact per case covered");
        assert_eq!(count(&app, "RemittanceRecorded").await, 1, "[{backend}]");
        let after = app.event_count().await;
        assert_eq!(after, events_before + i64::try_from(cases).unwrap() + 1, "[{backend}] one transaction, all of it");

        // The same request again (a double click, a lost answer): the first result, nothing new.
        let again = app.graphql_ok(&finance, REMIT, input).await["remitToTreasury"].clone();
        assert_eq!(again, done, "[{backend}]");
        assert_eq!(app.event_count().await, after, "[{backend}] a retry appends nothing");

        // The same voucher number for another deposit is refused by name.
        let other = json!({ "input": { "agencyCode": agency, "upTo": "2026-10-05", "voucherNumber": " GNT-ATOMIC-01 ",
                                       "amount": "1000", "remittedOn": "2026-10-12" } });
        assert_eq!(app.graphql_error_code(Some(&finance), REMIT, other).await, "CONFLICT", "[{backend}]");
        assert_eq!(app.event_count().await, after, "[{backend}]");

        app.state.runner.caught_up("treasury", std::time::Duration::from_secs(30)).await.unwrap();
        let (left, remitted) = outstanding(&app, &finance, agency, up_to).await;
        assert_eq!((left, remitted), (0, owed), "[{backend}] the deposit covers what was owed, once");
    }
}
