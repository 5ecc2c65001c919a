//! The whole life of a case's fees through GraphQL: configure → publish → assess → partial
//! payment → final payment → overpayment → history.

use feeledger_tests::{CASE_FIELDS, spawn_each_backend};
use serde_json::{Value, json};

const AGENCY: &str = "H34.22.6";
const CASE: &str = "H34.22.6-240426-0002";

fn assess_mutation() -> String {
    format!("mutation($input: AssessFeesInput!) {{ assessFees(input: $input) {{ {CASE_FIELDS} }} }}")
}

fn pay_mutation() -> String {
    format!("mutation($input: RecordPaymentInput!) {{ recordPayment(input: $input) {{ {CASE_FIELDS} }} }}")
}

fn assess_input(idempotency_key: Option<&str>) -> Value {
    json!({ "input": {
        "caseCode": CASE, "agencyCode": AGENCY, "procedureName": "Chứng thực bản sao từ bản chính",
        "payer": { "name": "VÕ ĐẶNG NGỌC GIÀ", "idNumber": "079201008870" },
        "lines": [{ "feeCode": "P-SAOY", "quantity": 3 }],
        "idempotencyKey": idempotency_key,
    }})
}

fn payment(amount: Value, key: &str) -> Value {
    json!({ "input": { "caseCode": CASE, "amount": amount, "channel": "POS", "reference": format!("POS-{key}"), "idempotencyKey": key } })
}

#[tokio::test]
async fn a_case_is_assessed_paid_in_two_parts_overpaid_and_its_history_replays() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);

        let assessed = app.graphql_ok(&officer, &assess_mutation(), assess_input(Some("assess-1"))).await;
        let case = &assessed["assessFees"];
        assert_eq!(case["status"], "ASSESSED", "[{}]", app.backend());
        assert_eq!(case["total"], "3000");
        assert_eq!(case["outstanding"], "3000");
        assert_eq!(case["lines"][0]["kind"], "PHI");
        assert_eq!(case["payer"]["maskedId"], "******8870");
        assert!(!assessed.to_string().contains("079201008870"), "the full id must never be returned");

        // Kon Tum: 2,000 of 3,000 paid leaves 1,000.
        let partial = app.graphql_ok(&officer, &pay_mutation(), payment(json!("2000"), "p1")).await;
        assert_eq!(partial["recordPayment"]["status"], "PARTIALLY_PAID");
        assert_eq!(partial["recordPayment"]["outstanding"], "1000");
        let before_final = chrono::Utc::now();

        let paid = app.graphql_ok(&officer, &pay_mutation(), payment(json!(1000), "p2")).await;
        assert_eq!(paid["recordPayment"]["status"], "PAID");
        assert_eq!(paid["recordPayment"]["paid"], "3000");

        let over = app.graphql_ok(&officer, &pay_mutation(), payment(json!("3000"), "p3")).await;
        let over = &over["recordPayment"];
        assert_eq!(over["status"], "OVERPAID");
        assert_eq!(over["overpaid"], "3000");
        assert_eq!(over["outstanding"], "0");
        let types: Vec<&str> = over["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "FeeAssessed",
                "PaymentReceived",
                "PartiallyPaid",
                "PaymentReceived",
                "FullyPaid",
                "PaymentReceived",
                "Overpaid"
            ]
        );
        assert!(over["events"].as_array().unwrap().iter().all(|e| e["actor"] == "officer@H34.22.6/quay-1"));

        // History as of just before the final payment: partially paid, 1,000 outstanding.
        let history = app
            .graphql_ok(
                &officer,
                "query($code: String!, $asOf: DateTime) { caseHistory(code: $code, asOf: $asOf) { state { status paid outstanding } events { type } } }",
                json!({ "code": CASE, "asOf": before_final.to_rfc3339() }),
            )
            .await;
        assert_eq!(history["caseHistory"]["state"]["status"], "PARTIALLY_PAID", "[{}]", app.backend());
        assert_eq!(history["caseHistory"]["state"]["outstanding"], "1000");
        assert_eq!(history["caseHistory"]["events"].as_array().unwrap().len(), 3);

        let now = app
            .graphql_ok(
                &officer,
                "query($code: String!) { case(code: $code) { status paid } }",
                json!({ "code": CASE }),
            )
            .await;
        assert_eq!(now["case"]["paid"], "6000");
    }
}

#[tokio::test]
async fn retrying_a_request_with_the_same_idempotency_key_returns_the_first_result_and_appends_nothing() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        let first = app.graphql_ok(&officer, &assess_mutation(), assess_input(Some("k-1"))).await;
        let again = app.graphql_ok(&officer, &assess_mutation(), assess_input(Some("k-1"))).await;
        assert_eq!(first["assessFees"]["version"], again["assessFees"]["version"]);

        app.graphql_ok(&officer, &pay_mutation(), payment(json!("1000"), "pay-1")).await;
        let retry = app.graphql_ok(&officer, &pay_mutation(), payment(json!("1000"), "pay-1")).await;
        assert_eq!(retry["recordPayment"]["paid"], "1000", "[{}] a retried payment must count once", app.backend());
        let case = app
            .graphql_ok(&officer, "query { case(code: \"H34.22.6-240426-0002\") { paid version } }", json!({}))
            .await;
        assert_eq!(case["case"]["paid"], "1000");
        assert_eq!(case["case"]["version"], 3);
    }
}

#[tokio::test]
async fn an_unknown_case_is_null_and_its_history_is_not_found() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        let data = app.graphql_ok(&officer, "query { case(code: \"H34.22.6-240426-0099\") { code } }", json!({})).await;
        assert!(data["case"].is_null());
        let code = app
            .graphql_error_code(
                Some(&officer),
                "query { caseHistory(code: \"H34.22.6-240426-0099\") { events { type } } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "NOT_FOUND");
    }
}

#[tokio::test]
async fn auditors_see_the_full_id_in_event_data_and_officers_see_it_masked() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        app.graphql_ok(&app.officer(AGENCY), &assess_mutation(), assess_input(None)).await;
        let query = "query { case(code: \"H34.22.6-240426-0002\") { events { data } } }";
        let officer_view = app.graphql_ok(&app.officer(AGENCY), query, json!({})).await;
        assert_eq!(officer_view["case"]["events"][0]["data"]["payer"]["id_number"], "******8870");
        let auditor = app.token(feeledger_api::auth::Role::Auditor, Some(AGENCY), None);
        let auditor_view = app.graphql_ok(&auditor, query, json!({})).await;
        assert_eq!(auditor_view["case"]["events"][0]["data"]["payer"]["id_number"], "079201008870");
    }
}

/// Auditors' time travel: after every step, the case as the API answered it then is exactly
/// what `caseHistory(asOf: that instant)` replays later.
#[tokio::test]
async fn history_as_of_any_instant_matches_what_the_api_answered_at_that_instant() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        let mut answered: Vec<(String, Value)> = Vec::new();
        let mut keep = |answer: &Value| {
            // The instant just after the answer: everything it reflects was committed before.
            answered.push((chrono::Utc::now().to_rfc3339(), answer.clone()));
        };
        let assessed = app.graphql_ok(&officer, &assess_mutation(), assess_input(None)).await;
        keep(&assessed["assessFees"]);
        for (amount, key) in [("1000", "t1"), ("1500", "t2"), ("500", "t3"), ("700", "t4")] {
            let paid = app.graphql_ok(&officer, &pay_mutation(), payment(json!(amount), key)).await;
            keep(&paid["recordPayment"]);
        }
        let history = format!(
            "query($code: String!, $t: DateTime) {{ caseHistory(code: $code, asOf: $t) {{ state {{ {CASE_FIELDS} }} }} }}"
        );
        for (instant, then) in &answered {
            let replayed = app.graphql_ok(&officer, &history, json!({ "code": CASE, "t": instant })).await;
            assert_eq!(&replayed["caseHistory"]["state"], then, "[{}] as of {instant}", app.backend());
        }
        assert_eq!(answered.last().unwrap().1["status"], "OVERPAID");
    }
}

#[tokio::test]
async fn each_fee_line_shows_what_was_paid_of_it_le_phi_first() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let officer = app.officer(AGENCY);
        let mut input = assess_input(None);
        input["input"]["lines"] =
            json!([{ "feeCode": "P-SAOY", "quantity": 2 }, { "feeCode": "LP-TRICHLUC", "quantity": 1 }]);
        app.graphql_ok(&officer, &assess_mutation(), input).await;
        let query = "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { outstanding lines { feeCode amount paid outstanding } } }";
        let partial = app.graphql_ok(&officer, query, payment(json!("9000"), "lines-1")).await;
        let lines = &partial["recordPayment"]["lines"];
        // 9,000 of 10,000: the 8,000 lệ phí in full first, then 1,000 of the 2,000 phí.
        assert_eq!(lines[1], json!({ "feeCode": "LP-TRICHLUC", "amount": "8000", "paid": "8000", "outstanding": "0" }));
        assert_eq!(lines[0], json!({ "feeCode": "P-SAOY", "amount": "2000", "paid": "1000", "outstanding": "1000" }));
        assert_eq!(partial["recordPayment"]["outstanding"], "1000", "[{}]", app.backend());
    }
}
