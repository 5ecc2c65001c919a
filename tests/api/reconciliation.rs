//! A day's reconciliation is recorded on its cases as one fact: a failure in the middle of
//! recording it keeps none of the day's matches, and reconciling the same day again, or twice at
//! once, records each match once.

use std::collections::BTreeSet;

use chrono::{Duration as Days, NaiveDate};
use feeledger_api::auth::Role;
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::codes::AgencyCode;
use feeledger_infrastructure::codec::{self, LedgerEvent};
use feeledger_tests::traffic::{self, Plan};
use feeledger_tests::{TestApp, spawn_each_backend};
use serde_json::{Value, json};

const RECONCILE: &str = "mutation($a: String!, $d: Date!) { reconcileDay(agencyCode: $a, date: $d) { \
    ledgerTotal bankTotal matchedCount matchedTotal balanced exceptions { kind side amount statementLineId } } }";

/// Every Reconciled event in the log: (case stream, payment id).
async fn reconciled(app: &TestApp) -> Vec<(String, String)> {
    let events = app.state.ledger.store().events_of_type("Reconciled").await.unwrap();
    events
        .iter()
        .map(|e| match LedgerEvent::decode(e).unwrap() {
            LedgerEvent::Case(CaseEvent::Reconciled(r)) => (e.stream_id.clone(), r.payment_id.to_string()),
            other => panic!("not a Reconciled event: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_days_matches_are_recorded_whole_and_once_when_the_day_is_reconciled_again_or_twice_at_once() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let agency = "C01.1";
        let plan = Plan { agencies: vec![agency.into()], days: 3, cases_per_day: 8, ..Plan::small() };
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
        let finance = app.token(Role::Finance, None, None);
        for (_, account, lines) in &generated.statements {
            let csv = traffic::statement_csv(account, lines);
            let query = "mutation($input: StatementInput!) { importBankStatement(input: $input) { inserted } }";
            app.graphql_ok(&finance, query, json!({ "input": { "format": "CSV", "content": csv } })).await;
        }
        let day: NaiveDate = plan.month + Days::days(1);
        let variables = json!({ "a": agency, "d": day.to_string() });

        // The day's matches as the read side sees them; the recording fails at a case in the
        // middle of the day (after the cases before it were written).
        let reconciliations = &app.state.context.reconciliations;
        let agency_code = AgencyCode::parse(agency).unwrap();
        let report = reconciliations.report(&agency_code, day, day).await.unwrap();
        let pending = reconciliations.unrecorded(&agency_code, day, &report).await.unwrap();
        let cases: BTreeSet<_> = pending.iter().map(|p| p.case_code.clone()).collect();
        assert!(cases.len() >= 3, "[{backend}] {} cases matched on {day}", cases.len());
        let middle = codec::case_stream(cases.iter().nth(cases.len() / 2).unwrap());
        let before = app.event_count().await;
        app.fail_inserts_of("Reconciled", &middle, true).await;
        let failed = app.graphql(Some(&finance), RECONCILE, variables.clone()).await;
        assert!(failed["errors"].is_array(), "[{backend}] the injected failure must surface: {failed}");
        assert_eq!(app.event_count().await, before, "[{backend}] nothing of the failed day is kept");
        assert!(reconciled(&app).await.is_empty(), "[{backend}]");
        app.fail_inserts_of("Reconciled", &middle, false).await;

        // The same day reconciled twice at once: every match recorded, each once, in one append.
        let (first, second) = tokio::join!(
            app.graphql_ok(&finance, RECONCILE, variables.clone()),
            app.graphql_ok(&finance, RECONCILE, variables.clone())
        );
        assert_eq!(first, second, "[{backend}] both answers are the day's report");
        let report: &Value = &first["reconcileDay"];
        assert_eq!(report["balanced"], true, "[{backend}] {report:#}");
        let recorded = reconciled(&app).await;
        let payments: BTreeSet<_> = recorded.iter().map(|(_, payment)| payment.clone()).collect();
        assert_eq!(payments.len(), recorded.len(), "[{backend}] no payment is reconciled twice: {recorded:?}");
        let expected: BTreeSet<_> = pending.iter().map(|p| p.payment_id.to_string()).collect();
        assert_eq!(payments, expected, "[{backend}] every match of the day, and only those");
        let after = app.event_count().await;
        assert_eq!(after, before + i64::try_from(pending.len()).unwrap(), "[{backend}]");

        // Once more (a retry after a lost answer): the same report, nothing appended.
        let again = app.graphql_ok(&finance, RECONCILE, variables).await;
        assert_eq!(again, first, "[{backend}]");
        assert_eq!(app.event_count().await, after, "[{backend}] a retry records nothing twice");
    }
}
