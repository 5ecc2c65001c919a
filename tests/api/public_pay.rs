//! The citizen's side (issue 14): the public payment page's data, its rate limits, the case slip,
//! and receipts as Decree 123/2020 and Circular 78/2021 want them (MST, yearly numbering within a
//! configured width, a receipt per payment, the procedure code).

use feeledger_api::auth::Role;
use feeledger_tests::{TestApp, spawn_each_backend, spawn_each_backend_with};
use serde_json::{Value, json};

const AGENCY: &str = "H34.22.6";
const CLOSED_AGENCY: &str = "H34.22.7";
const TAX_CODE: &str = "0100109106";
const PROCEDURE: &str = "2.000815.000.00.00.H34";
const FIELDS: &str = "code agencyName procedureName procedureCode status total paid \
    outstanding paidInFull message version payer { name maskedId } lines { name amount outstanding } \
    qr { payload amount transferContent svgUrl expiresAt bankAppCode accountNumber } \
    receipts { printedNumber serial amount url cancelled }";

/// Configures `code` like `TestApp::configure_agency`, then with the given extra settings.
async fn configure(app: &TestApp, code: &str, extra: Value) {
    app.configure_agency(code).await;
    let mut input = json!({
        "code": code, "name": format!("UBND {code}"), "bankBin": "970415",
        "accountNumber": "113366668888", "accountName": "UBND PHUONG TRAN HUNG DAO",
        "retainsFees": true, "counters": ["quay-1", "quay-2"], "taxCode": TAX_CODE
    });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    app.graphql_ok(
        &app.admin(),
        "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code publicPayment receiptPerPayment } }",
        json!({ "input": input }),
    )
    .await;
}

async fn assess(app: &TestApp, agency: &str, case: &str, quantity: i32) {
    app.graphql_ok(
        &app.officer(agency),
        "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code procedureCode } }",
        json!({ "input": {
            "caseCode": case, "agencyCode": agency, "procedureName": "Chứng thực bản sao từ bản chính",
            "procedureCode": PROCEDURE,
            "payer": { "name": "VÕ ĐẶNG NGỌC GIÀ", "idNumber": "079201008870" },
            "lines": [{ "feeCode": "P-SAOY", "quantity": quantity }]
        }}),
    )
    .await;
}

async fn pay(app: &TestApp, case: &str, amount: &str, key: &str) -> Value {
    app.graphql_ok(
        &app.officer(&case[..case.len() - "-YYMMDD-NNNN".len()]),
        "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { status paid \
         receipts { number printedNumber serial amount taxCode procedureCode paymentId cancelled url } } }",
        json!({ "input": { "caseCode": case, "amount": amount, "channel": "POS", "reference": key, "idempotencyKey": key } }),
    )
    .await["recordPayment"]
        .clone()
}

/// POSTs a GraphQL document without a token; returns the status, Retry-After and body.
async fn anonymous(
    app: &TestApp,
    query: &str,
    variables: Value,
    forwarded_for: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request =
        app.client.post(format!("{}/graphql", app.address)).json(&json!({ "query": query, "variables": variables }));
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", format!("203.0.113.9, {address}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

fn lookup(code: &str) -> (String, Value) {
    (format!("query($code: String!) {{ publicCase(code: $code) {{ {FIELDS} }} }}"), json!({ "code": code }))
}

#[tokio::test]
async fn a_citizen_looks_a_case_up_by_its_exact_code_and_gets_a_qr_for_exactly_what_is_left() {
    for app in spawn_each_backend().await {
        configure(&app, AGENCY, json!({ "publicPayment": true })).await;
        configure(&app, CLOSED_AGENCY, json!({})).await;
        let case = "H34.22.6-261129-0001";
        assess(&app, AGENCY, case, 3).await;
        pay(&app, case, "1000", "counter-cash-1").await;

        let (query, variables) = lookup(case);
        let (status, _, body) = anonymous(&app, &query, variables, None).await;
        assert_eq!(status, 200, "{body:#}");
        let shown = &body["data"]["publicCase"];
        assert_eq!(shown["agencyName"], "UBND H34.22.6");
        assert_eq!(shown["procedureCode"], PROCEDURE);
        assert_eq!(
            shown["payer"],
            json!({ "name": "VÕ ĐẶNG NGỌC GIÀ", "maskedId": "******8870" }),
            "[{}]",
            app.backend()
        );
        assert_eq!(
            (&shown["total"], &shown["paid"], &shown["outstanding"]),
            (&json!("3000"), &json!("1000"), &json!("2000"))
        );
        assert_eq!(shown["status"], "PARTIALLY_PAID");
        assert!(!body.to_string().contains("079201008870"), "the full identity number never leaves");

        // The QR is issued on demand, by the counter's own command, for exactly what is left.
        let before = app.event_count().await;
        let request = format!("mutation($code: String!) {{ requestPaymentQr(code: $code) {{ {FIELDS} }} }}");
        let (status, _, issued) = anonymous(&app, &request, json!({ "code": case }), None).await;
        assert_eq!(status, 200, "{issued:#}");
        let qr = &issued["data"]["requestPaymentQr"]["qr"];
        assert_eq!(qr["amount"], "2000");
        assert_eq!(qr["transferContent"], case);
        assert_eq!(qr["bankAppCode"], "icb");
        let payload = qr["payload"].as_str().unwrap();
        assert!(payload.contains("54042000") && payload.contains("970415") && payload.contains(case), "{payload}");
        let officer_view = app
            .graphql_ok(
                &app.officer(AGENCY),
                "query($c: String!) { case(code: $c) { qr { payload payable } } }",
                json!({ "c": case }),
            )
            .await;
        assert_eq!(officer_view["case"]["qr"], json!({ "payload": payload, "payable": true }));
        let after_first = app.event_count().await;
        assert!(after_first > before);
        // Asking again (a reload) returns the same QR and appends nothing.
        let (_, _, again) = anonymous(&app, &request, json!({ "code": case }), None).await;
        assert_eq!(again["data"]["requestPaymentQr"]["qr"]["payload"], payload);
        assert_eq!(app.event_count().await, after_first);
        let image = app.client.get(format!("{}{}", app.address, qr["svgUrl"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(image.status(), 200);

        // Unknown codes, codes of an agency without public payment and unassessed codes: one answer.
        let closed_case = "H34.22.7-261129-0001";
        assess(&app, CLOSED_AGENCY, closed_case, 1).await;
        let events = app.event_count().await;
        let mut answers = Vec::new();
        for code in [closed_case, "H34.22.6-261129-0999", "Z99.1-261129-0001"] {
            let (query, variables) = lookup(code);
            let (status, _, body) = anonymous(&app, &query, variables, None).await;
            assert_eq!(status, 200);
            answers.push(body);
            let (_, _, qr) = anonymous(&app, &request, json!({ "code": code }), None).await;
            assert_eq!(qr, json!({ "data": { "requestPaymentQr": null } }), "[{}] {code}", app.backend());
        }
        assert!(answers.iter().all(|a| *a == json!({ "data": { "publicCase": null } })), "{answers:#?}");
        assert_eq!(app.event_count().await, events, "nothing appended for a code the public may not see");

        // Only the exact code: a malformed or partial one is refused, nothing is searched.
        for bad in ["H34.22.6-261129", "H34.22.6-261129-000%", "", "H34.22.6-261129-0001 OR 1=1"] {
            let (query, variables) = lookup(bad);
            let (_, _, body) = anonymous(&app, &query, variables, None).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION", "{bad:?}: {body:#}");
        }

        // The page is public HTML; the slip needs an officer's token.
        let page = app.client.get(format!("{}/pay/{case}", app.address)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        assert!(page.text().await.unwrap().contains("Thanh toán phí, lệ phí hồ sơ"));
        let slip_url = format!("{}/cases/{case}/slip", app.address);
        assert_eq!(app.client.get(&slip_url).send().await.unwrap().status(), 401);
        let display = app.token(Role::Display, Some(AGENCY), Some("quay-1"));
        assert_eq!(app.client.get(format!("{slip_url}?token={display}")).send().await.unwrap().status(), 403);
        let other = app.officer(CLOSED_AGENCY);
        assert_eq!(app.client.get(format!("{slip_url}?token={other}")).send().await.unwrap().status(), 403);
        let slip = app.client.get(format!("{slip_url}?token={}", app.officer(AGENCY))).send().await.unwrap();
        assert_eq!(slip.status(), 200);
        let slip = slip.text().await.unwrap();
        let expected_url = format!("{}/pay/{case}", app.address);
        assert!(slip.contains(&format!("data-qr-payload=\"{expected_url}\"")), "{slip}");
        assert!(slip.contains("<svg") && slip.contains("2.000") && slip.contains(PROCEDURE));
        // The slip of a case whose agency takes no online payment has no QR.
        let closed_slip = app
            .client
            .get(format!("{}/cases/{closed_case}/slip?token={other}", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!closed_slip.contains("data-qr-payload") && closed_slip.contains("tại quầy"));
    }
}

#[tokio::test]
async fn the_public_fields_answer_429_with_retry_after_past_the_per_client_limit() {
    for app in spawn_each_backend_with(|s| s.public_rate_per_client_per_minute = 3).await {
        configure(&app, AGENCY, json!({ "publicPayment": true })).await;
        let (query, variables) = lookup("H34.22.6-261129-0001");
        for _ in 0..3 {
            let (status, _, _) = anonymous(&app, &query, variables.clone(), None).await;
            assert_eq!(status, 200);
        }
        for _ in 0..3 {
            let (status, retry_after, body) = anonymous(&app, &query, variables.clone(), None).await;
            assert_eq!(status, 429, "[{}] {body:#}", app.backend());
            let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
            assert!((1..=20).contains(&seconds), "{seconds}");
            assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
        }
        // The page counts too, and says so in HTML.
        let page = app.client.get(format!("{}/pay", app.address)).send().await.unwrap();
        assert_eq!(page.status(), 429);
        assert!(page.headers().contains_key("retry-after"));
        // Staff with tokens are not slowed down by the public limit.
        let officer = app.graphql(Some(&app.officer(AGENCY)), "query { me { role } }", json!({})).await;
        assert_eq!(officer["data"]["me"]["role"], "officer");
    }
}

#[tokio::test]
async fn all_clients_together_meet_the_global_limit() {
    let apps = spawn_each_backend_with(|s| {
        s.public_rate_per_client_per_minute = 100;
        s.public_rate_global_per_minute = 5;
        s.trust_forwarded_for = true;
    })
    .await;
    for app in apps {
        let (query, variables) = lookup("H34.22.6-261129-0001");
        for n in 0..5 {
            let (status, _, body) = anonymous(&app, &query, variables.clone(), Some(&format!("198.51.100.{n}"))).await;
            assert_eq!(status, 200, "{body:#}");
        }
        let (status, retry_after, _) = anonymous(&app, &query, variables.clone(), Some("198.51.100.77")).await;
        assert_eq!(status, 429, "a client never seen before is refused once all together used the limit");
        assert!(retry_after.is_some());
    }
}

#[tokio::test]
async fn a_receipt_per_payment_carries_the_mst_and_procedure_code_and_numbering_restarts_each_january() {
    for app in spawn_each_backend().await {
        configure(&app, AGENCY, json!({ "receiptPerPayment": true, "receiptSerial": "AA-E", "publicPayment": true }))
            .await;
        let first = "H34.22.6-261129-0001";
        assess(&app, AGENCY, first, 3).await;
        let partly = pay(&app, first, "2000", "p1").await;
        assert_eq!(partly["status"], "PARTIALLY_PAID");
        let receipts = partly["receipts"].as_array().unwrap();
        assert_eq!(receipts.len(), 1, "[{}] a partial payment gets its own receipt: {partly:#}", app.backend());
        assert_eq!(receipts[0]["number"], 1);
        assert_eq!(receipts[0]["printedNumber"], "0000001");
        assert_eq!(receipts[0]["amount"], "2000");
        assert_eq!(receipts[0]["taxCode"], TAX_CODE);
        assert_eq!(receipts[0]["procedureCode"], PROCEDURE);
        assert!(receipts[0]["paymentId"].is_string());
        let rest = pay(&app, first, "1000", "p2").await;
        let numbers: Vec<i64> =
            rest["receipts"].as_array().unwrap().iter().map(|r| r["number"].as_i64().unwrap()).collect();
        assert_eq!(numbers, [1, 2]);
        let page = app
            .client
            .get(format!("{}{}", app.address, rest["receipts"][1]["url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains(TAX_CODE) && html.contains("0000002") && html.contains(PROCEDURE), "{html}");
        // A retried payment (same idempotency key) records and issues nothing more.
        let events = app.event_count().await;
        pay(&app, first, "1000", "p2").await;
        assert_eq!(app.event_count().await, events);

        // 1 January (Vietnam time): the same template and serial start again at 1.
        let now = app.state.clock.now();
        let new_year =
            chrono::DateTime::parse_from_rfc3339("2027-01-01T00:00:00+07:00").unwrap().with_timezone(&chrono::Utc);
        assert!(now < new_year, "this test expects to run before 2027");
        app.state.clock.advance(new_year - now + chrono::Duration::hours(9));
        let second = "H34.22.6-270101-0001";
        assess(&app, AGENCY, second, 1).await;
        let next_year = pay(&app, second, "1000", "p3").await;
        assert_eq!(next_year["receipts"][0]["number"], 1, "[{}] {next_year:#}", app.backend());
        assert_eq!(next_year["receipts"][0]["serial"], "AA-E");
    }
}

#[tokio::test]
async fn running_out_of_receipt_numbers_is_a_clear_error_never_a_wrap() {
    for app in spawn_each_backend().await {
        configure(&app, AGENCY, json!({ "receiptPerPayment": true, "receiptNumberWidth": 1 })).await;
        let case = "H34.22.6-261129-0002";
        assess(&app, AGENCY, case, 10).await;
        for n in 1..=9 {
            pay(&app, case, "1000", &format!("n{n}")).await;
        }
        // The tenth payment is recorded; its receipt cannot be numbered.
        let tenth = pay(&app, case, "1000", "n10").await;
        assert_eq!(tenth["status"], "PAID", "the money is recorded whatever happens to the receipt");
        let numbers: Vec<i64> =
            tenth["receipts"].as_array().unwrap().iter().map(|r| r["number"].as_i64().unwrap()).collect();
        assert_eq!(numbers, (1..=9).collect::<Vec<_>>(), "[{}] no wrap to 1", app.backend());
        let events = app.event_count().await;
        let refused = app
            .graphql(
                Some(&app.officer(AGENCY)),
                "mutation($c: String!) { issueReceipt(caseCode: $c) { number } }",
                json!({ "c": case }),
            )
            .await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "CONFLICT", "{refused:#}");
        assert!(refused["errors"][0]["message"].as_str().unwrap().contains("used up"), "{refused:#}");
        assert_eq!(app.event_count().await, events, "nothing appended");

        // Bad settings and codes are refused, naming the field.
        for (field, value) in [("receiptNumberWidth", json!(0)), ("receiptNumberWidth", json!(10))] {
            let mut input = json!({ "code": AGENCY, "name": "x", "bankBin": "970415", "accountNumber": "113366668888",
                                    "accountName": "X", "retainsFees": true, "counters": ["quay-1"] });
            input[field] = value;
            let code = app
                .graphql_error_code(
                    Some(&app.admin()),
                    "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
                    json!({ "input": input }),
                )
                .await;
            assert_eq!(code, "VALIDATION");
        }
        let bad = app
            .graphql(
                Some(&app.officer(AGENCY)),
                "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
                json!({ "input": { "caseCode": "H34.22.6-261129-0003", "agencyCode": AGENCY, "procedureName": "x",
                        "procedureCode": "2.815.H34", "payer": { "name": "A" }, "lines": [{ "feeCode": "P-SAOY", "quantity": 1 }] } }),
            )
            .await;
        assert_eq!(bad["errors"][0]["extensions"]["code"], "VALIDATION");
        assert!(bad["errors"][0]["message"].as_str().unwrap().starts_with("procedureCode"), "{bad:#}");
    }
}

#[tokio::test]
async fn the_quarterly_receipt_usage_report_equals_a_count_of_the_receipt_events() {
    use feeledger_tests::traffic::{self, Plan};
    for app in spawn_each_backend().await {
        let plan = Plan { agencies: vec!["Q01.1".into()], days: 6, cases_per_day: 3, ..Plan::small() };
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
        let officer = app.token(Role::Officer, Some("Q01.1"), None);
        let issue = "mutation($c: String!) { issueReceipt(caseCode: $c) { id number } }";
        let mut ids = Vec::new();
        for code in &generated.paid_in_full {
            ids.push(
                app.graphql_ok(&officer, issue, json!({ "c": code.as_str() })).await["issueReceipt"]["id"].clone(),
            );
        }
        assert!(ids.len() >= 4, "enough paid cases");
        let cancel = "mutation($id: ID!) { cancelReceipt(receiptId: $id, reason: \"sai tên\") { cancelled } }";
        for id in &ids[..2] {
            app.graphql_ok(&officer, cancel, json!({ "id": id })).await;
        }
        app.graphql_ok(&officer, issue, json!({ "c": generated.paid_in_full[0].as_str() })).await;

        // The truth: every ReceiptIssued and ReceiptCancelled event of every case.
        let (mut issued, mut cancelled, mut numbers) = (0, 0, Vec::new());
        for code in &generated.cases {
            let case = app
                .graphql_ok(
                    &officer,
                    "query($c: String!) { case(code: $c) { events { type data } } }",
                    json!({ "c": code.as_str() }),
                )
                .await;
            for event in case["case"]["events"].as_array().unwrap() {
                match event["type"].as_str().unwrap() {
                    "ReceiptIssued" => {
                        issued += 1;
                        numbers.push(event["data"]["number"].as_i64().unwrap());
                    }
                    "ReceiptCancelled" => cancelled += 1,
                    _ => {}
                }
            }
        }
        let today = feeledger_domain::vietnam_time::date_of(app.state.clock.now());
        let quarter = format!("{}-Q{}", chrono::Datelike::year(&today), (chrono::Datelike::month(&today) - 1) / 3 + 1);
        let finance = app.token(Role::Finance, Some("Q01.1"), None);
        let report = app
            .graphql_ok(
                &finance,
                "query($q: String!) { receiptUsageReport(agencyCode: \"Q01.1\", quarter: $q) { quarter from to deadline \
                 issued cancelled rows { templateSymbol serial firstNumber lastNumber issued cancelled } } }",
                json!({ "q": quarter }),
            )
            .await;
        let report = &report["receiptUsageReport"];
        assert_eq!(report["issued"], issued, "[{}] {report:#}", app.backend());
        assert_eq!(report["cancelled"], cancelled);
        assert_eq!(cancelled, 2);
        let row = &report["rows"][0];
        assert_eq!(row["firstNumber"].as_i64(), numbers.iter().min().copied());
        assert_eq!(row["lastNumber"].as_i64(), numbers.iter().max().copied());
        assert_eq!(row["templateSymbol"], "01BLP0-001");
        let deadline = feeledger_domain::receipt::Quarter::parse(&quarter).unwrap().report_deadline();
        assert_eq!(report["deadline"], deadline.to_string());

        // The same figures as CSV and XLSX.
        let url = format!("{}/reports/receipt-usage.csv?agency=Q01.1&quarter={quarter}&token={finance}", app.address);
        let csv = app.client.get(&url).send().await.unwrap().text().await.unwrap();
        let total = csv.lines().last().unwrap();
        assert!(
            total.starts_with("Tổng cộng") && total.contains(&format!(",{issued},{cancelled},{deadline}")),
            "{csv}"
        );
        let xlsx = app.client.get(url.replace(".csv", ".xlsx")).send().await.unwrap().bytes().await.unwrap();
        assert!(xlsx.starts_with(b"PK"));
        let bad = app.client.get(url.replace(&quarter, "2026-Q5")).send().await.unwrap();
        assert_eq!(bad.status(), 400);
        let code = app
            .graphql_error_code(
                Some(&finance),
                "query { receiptUsageReport(agencyCode: \"Q01.1\", quarter: \"2026\") { issued } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "VALIDATION");
        let code = app
            .graphql_error_code(
                Some(&officer),
                "query { receiptUsageReport(agencyCode: \"Q01.1\", quarter: \"2026-Q4\") { issued } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");
    }
}

#[tokio::test]
async fn a_receipt_exports_as_json_and_as_our_xml_document() {
    for app in spawn_each_backend().await {
        configure(&app, AGENCY, json!({ "receiptPerPayment": true })).await;
        let case = "H34.22.6-261129-0005";
        assess(&app, AGENCY, case, 2).await;
        let paid = pay(&app, case, "2000", "x1").await;
        let url = format!("{}{}", app.address, paid["receipts"][0]["url"].as_str().unwrap());
        let json: serde_json::Value = app.client.get(format!("{url}.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(json["schema"], "feeledger.receipt/1");
        assert_eq!(json["agency"]["taxCode"], TAX_CODE);
        assert_eq!(json["procedureCode"], PROCEDURE);
        assert_eq!(json["printedNumber"], "0000001");
        assert_eq!(json["payer"], json!({ "name": "VÕ ĐẶNG NGỌC GIÀ", "maskedId": "******8870" }));
        assert_eq!(json["lines"][0]["amount"], "2000");
        assert_eq!(json["amount"], "2000");
        assert!(json["cancelled"].is_null());
        let response = app.client.get(format!("{url}.xml")).send().await.unwrap();
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/xml"));
        let xml = response.text().await.unwrap();
        for expected in [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<BienLai xmlns=\"urn:feeledger:bien-lai:1\"",
            "<MauSo>01BLP0-001</MauSo>",
            "<So>0000001</So>",
            &format!("<MaSoThue>{TAX_CODE}</MaSoThue>"),
            &format!("<MaThuTuc>{PROCEDURE}</MaThuTuc>"),
            "<SoDinhDanh>******8870</SoDinhDanh>",
            "<ThanhTien>2000</ThanhTien>",
            "<TongTien>2000</TongTien>",
            "<TrangThai>DA_LAP</TrangThai>",
        ] {
            assert!(xml.contains(expected), "[{}] {expected} in {xml}", app.backend());
        }
        assert!(!xml.contains("079201008870") && !json.to_string().contains("079201008870"));
        let missing =
            app.client.get(format!("{}/receipts/{}.xml", app.address, uuid::Uuid::new_v4())).send().await.unwrap();
        assert_eq!(missing.status(), 404);
    }
}

#[tokio::test]
async fn concurrent_payments_each_get_exactly_one_receipt_numbered_without_gaps() {
    for app in spawn_each_backend().await {
        configure(&app, AGENCY, json!({ "receiptPerPayment": true })).await;
        let cases: Vec<String> = (11..19).map(|n| format!("H34.22.6-261129-{n:04}")).collect();
        for case in &cases {
            assess(&app, AGENCY, case, 3).await;
        }
        // Eight citizens pay part at the same moment, then the rest at the same moment: every
        // receipt takes the series' next number.
        for (round, amount) in [(1, "2000"), (2, "1000")] {
            futures::future::join_all(cases.iter().map(|case| {
                let app = &app;
                async move { pay(app, case, amount, &format!("{case}-{round}")).await }
            }))
            .await;
        }
        let mut numbers = Vec::new();
        for case in &cases {
            let shown = app
                .graphql_ok(
                    &app.officer(AGENCY),
                    "query($c: String!) { case(code: $c) { status receipts { number amount paymentId } } }",
                    json!({ "c": case }),
                )
                .await;
            assert_eq!(shown["case"]["status"], "PAID");
            let receipts = shown["case"]["receipts"].as_array().unwrap();
            let amounts: Vec<&str> = receipts.iter().map(|r| r["amount"].as_str().unwrap()).collect();
            assert_eq!(amounts, ["2000", "1000"], "[{}] one receipt per payment: {shown:#}", app.backend());
            assert_ne!(receipts[0]["paymentId"], receipts[1]["paymentId"]);
            numbers.extend(receipts.iter().map(|r| r["number"].as_i64().unwrap()));
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=16).collect::<Vec<_>>(), "[{}] 1..16, no gap, no duplicate", app.backend());
    }
}
