//! Bad input gets a clear error with a machine-readable code, and nothing is appended.

use feeledger_api::auth::Role;
use feeledger_tests::{TestApp, spawn_each_backend};
use serde_json::{Value, json};

const AGENCY: &str = "H34.22.6";
const CASE: &str = "H34.22.6-240426-0002";

async fn assess(app: &TestApp, token: Option<&str>, case: &str, lines: Value) -> Value {
    app.graphql(
        token,
        "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code version } }",
        json!({ "input": {
            "caseCode": case, "agencyCode": case.rsplitn(3, '-').nth(2).unwrap_or(AGENCY),
            "procedureName": "Chứng thực", "payer": { "name": "Nguyễn Văn A" }, "lines": lines
        }}),
    )
    .await
}

async fn event_count(app: &TestApp) -> i64 {
    app.state.ledger.store().head().await.unwrap().event_count
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body:#}"))
}

#[tokio::test]
async fn malformed_amounts_are_validation_errors_and_record_nothing() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        assess(&app, Some(&officer), CASE, json!([{ "feeCode": "P-SAOY", "quantity": 3 }])).await;
        let before = event_count(&app).await;
        for amount in [json!("-5"), json!("2000.5"), json!("0"), json!("abc"), json!(2000.5), json!(-5), json!(true)] {
            let body = app
                .graphql(
                    Some(&officer),
                    "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paid } }",
                    json!({ "input": { "caseCode": CASE, "amount": amount, "channel": "CASH", "reference": "R1", "idempotencyKey": format!("k-{amount}") } }),
                )
                .await;
            assert_eq!(code(&body), "VALIDATION", "[{}] amount {amount}: {body:#}", app.backend());
        }
        assert_eq!(event_count(&app).await, before, "[{}] a rejected payment appended something", app.backend());
    }
}

#[tokio::test]
async fn unknown_fee_codes_bad_case_codes_and_zero_quantities_are_validation_errors() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        let before = event_count(&app).await;
        let body = assess(&app, Some(&officer), CASE, json!([{ "feeCode": "P-KHONGCO", "quantity": 1 }])).await;
        assert_eq!(code(&body), "VALIDATION");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("P-KHONGCO"));
        let body = assess(&app, Some(&officer), CASE, json!([{ "feeCode": "P-SAOY", "quantity": 0 }])).await;
        assert_eq!(code(&body), "VALIDATION");
        let body =
            assess(&app, Some(&officer), "H34.22.6-241399-0002", json!([{ "feeCode": "P-SAOY", "quantity": 1 }])).await;
        assert_eq!(code(&body), "VALIDATION");
        assert_eq!(event_count(&app).await, before, "[{}]", app.backend());
    }
}

#[tokio::test]
async fn an_officer_of_one_agency_is_forbidden_on_another_agencys_case() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        app.configure_agency("H34.22.7").await;
        let officer = app.officer(AGENCY);
        assess(
            &app,
            Some(&app.officer("H34.22.7")),
            "H34.22.7-240426-0001",
            json!([{ "feeCode": "P-SAOY", "quantity": 1 }]),
        )
        .await;
        let before = event_count(&app).await;

        let body =
            assess(&app, Some(&officer), "H34.22.7-240426-0002", json!([{ "feeCode": "P-SAOY", "quantity": 1 }])).await;
        assert_eq!(code(&body), "FORBIDDEN", "[{}]", app.backend());
        let body =
            app.graphql(Some(&officer), "query { case(code: \"H34.22.7-240426-0001\") { code } }", json!({})).await;
        assert_eq!(code(&body), "FORBIDDEN");
        let body = app
            .graphql(
                Some(&officer),
                "mutation { recordPayment(input: { caseCode: \"H34.22.7-240426-0001\", amount: \"1000\", channel: CASH, reference: \"x\", idempotencyKey: \"x\" }) { paid } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN");
        assert_eq!(event_count(&app).await, before);
    }
}

#[tokio::test]
async fn missing_forged_and_expired_tokens_are_unauthenticated() {
    for app in spawn_each_backend().await {
        let query = "query { case(code: \"H34.22.6-240426-0002\") { code } }";
        assert_eq!(app.graphql_error_code(None, query, json!({})).await, "UNAUTHENTICATED");
        let officer = app.officer(AGENCY);
        let forged = format!("{}x", &officer[..officer.len() - 1]);
        assert_eq!(app.graphql_error_code(Some(&forged), query, json!({})).await, "UNAUTHENTICATED");
        let mut expired = feeledger_api::auth::TokenRequest::new(Role::Officer, Some(AGENCY.parse().unwrap()), None);
        expired.ttl = chrono::Duration::hours(1);
        let expired = app.state.tokens.issue(&expired, chrono::Utc::now() - chrono::Duration::hours(3)).unwrap();
        assert_eq!(app.graphql_error_code(Some(&expired), query, json!({})).await, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn only_admins_configure_agencies_and_publish_schedules() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let finance = app.token(Role::Finance, Some(AGENCY), None);
        let body = app
            .graphql(
                Some(&finance),
                "mutation { publishFeeSchedule(input: { agencyCode: \"H34.22.6\", effectiveFrom: \"2025-01-01\", fees: [{ feeCode: \"X\", name: \"x\", kind: PHI, unitAmount: \"1\", retentionPercent: \"0\" }] }) { version } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN");
    }
}

#[tokio::test]
async fn a_second_assessment_and_a_reused_idempotency_key_are_conflicts() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        assess(&app, Some(&officer), CASE, json!([{ "feeCode": "P-SAOY", "quantity": 3 }])).await;
        let body = assess(&app, Some(&officer), CASE, json!([{ "feeCode": "P-SAOY", "quantity": 2 }])).await;
        assert_eq!(code(&body), "CONFLICT", "[{}]", app.backend());

        let pay = |amount: &str| json!({ "input": { "caseCode": CASE, "amount": amount, "channel": "CASH", "reference": "BL-1", "idempotencyKey": "same-key" } });
        let query = "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paid } }";
        app.graphql_ok(&officer, query, pay("1000")).await;
        let before = event_count(&app).await;
        let body = app.graphql(Some(&officer), query, pay("2000")).await;
        assert_eq!(code(&body), "CONFLICT", "[{}] {body:#}", app.backend());
        assert_eq!(event_count(&app).await, before);
    }
}

#[tokio::test]
async fn a_syntax_error_or_an_unknown_field_is_a_validation_error() {
    for app in spawn_each_backend().await {
        let officer = app.officer(AGENCY);
        assert_eq!(app.graphql_error_code(Some(&officer), "query { case(code: ", json!({})).await, "VALIDATION");
        assert_eq!(app.graphql_error_code(Some(&officer), "query { nope }", json!({})).await, "VALIDATION");
    }
}

/// The schedule an assessment uses is read with the case, every time: an agency without one
/// gets a clear error and nothing is appended; a schedule published since the last assessment
/// is the one the next assessment uses.
#[tokio::test]
async fn an_assessment_uses_the_schedule_in_force_as_read_with_the_case_and_without_one_records_nothing() {
    const BARE: &str = "H34.22.7";
    for app in spawn_each_backend().await {
        let backend = app.backend();
        app.configure_agency(AGENCY).await;
        app.graphql_ok(
            &app.admin(),
            "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
            json!({ "input": {
                "code": BARE, "name": "UBND H34.22.7", "bankBin": "970415", "accountNumber": "113366669999",
                "accountName": "UBND PHUONG HOANG VAN THU", "retainsFees": true, "counters": ["quay-1"]
            }}),
        )
        .await;
        let before = event_count(&app).await;
        let body = assess(
            &app,
            Some(&app.officer(BARE)),
            "H34.22.7-240426-0001",
            json!([{ "feeCode": "P-SAOY", "quantity": 1 }]),
        )
        .await;
        assert_eq!(code(&body), "VALIDATION", "[{backend}] {body:#}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(BARE), "[{backend}] {body:#}");
        assert_eq!(event_count(&app).await, before, "[{backend}] nothing appended without a schedule");

        let officer = app.officer(AGENCY);
        let line = json!([{ "feeCode": "P-SAOY", "quantity": 2 }]);
        assert!(assess(&app, Some(&officer), CASE, line.clone()).await["errors"].is_null());
        app.graphql_ok(
            &app.admin(),
            "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }",
            json!({ "input": { "agencyCode": AGENCY, "effectiveFrom": "2024-06-01", "fees": [
                { "feeCode": "P-SAOY", "name": "Phí chứng thực bản sao", "kind": "PHI", "unitAmount": "1500", "retentionPercent": "90" }
            ]}}),
        )
        .await;
        assert!(assess(&app, Some(&officer), "H34.22.6-240426-0003", line).await["errors"].is_null());
        let totals = app
            .graphql_ok(
                &officer,
                "query { a: case(code: \"H34.22.6-240426-0002\") { total } b: case(code: \"H34.22.6-240426-0003\") { total } }",
                json!({}),
            )
            .await;
        assert_eq!(
            (totals["a"]["total"].as_str(), totals["b"]["total"].as_str()),
            (Some("2000"), Some("3000")),
            "[{backend}]"
        );
    }
}
