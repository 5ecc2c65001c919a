//! Payment notifications from SePay, Casso, payOS and VNPAY, end to end.

use std::time::Duration;

use feeledger_api::auth::Role;
use feeledger_infrastructure::bank_feed::{self, Secret};
use feeledger_infrastructure::settings::ProviderSecrets;
use feeledger_tests::{TestApp, TestDatabase, spawn_app_with};
use serde_json::{Value, json};

const AGENCY: &str = "H34.22.6";
const ACCOUNT: &str = "113366668888";
const CASE: &str = "H34.22.6-240426-0002";
const SEPAY_KEY: &str = "sepay-test-api-key-2026";
const SEPAY_HMAC: &str = "sepay-test-hmac-secret-2026";
const VNPAY_SECRET: &str = "VNPAYTESTHASHSECRET0123456789ABCD";
/// Published sample keys (vectors/webhooks.md), not secrets.
const CASSO_KEY: &str = "mgExMrjj4i7a1p8Cs6LmFbpCd8lbw4sSX4LZXPag7TKazeIogtR90tvWYTkwQbvs";
const PAYOS_KEY: &str = "1a54716c8f0efb2744fb28b6e38b25da7f67a925d98bc1c18bd8faaecadd7675";

fn secrets() -> ProviderSecrets {
    ProviderSecrets {
        sepay_api_key: Some(Secret::new(SEPAY_KEY)),
        sepay_hmac_secret: Some(Secret::new(SEPAY_HMAC)),
        casso_checksum_key: Some(Secret::new(CASSO_KEY)),
        payos_checksum_key: Some(Secret::new(PAYOS_KEY)),
        vnpay_hash_secret: Some(Secret::new(VNPAY_SECRET)),
    }
}

async fn apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for database in TestDatabase::each_backend().await {
        let app = spawn_app_with(database, |s| s.providers = secrets()).await;
        app.configure_agency(AGENCY).await;
        apps.push(app);
    }
    apps
}

async fn assess(app: &TestApp, case: &str, quantity: i32) {
    app.graphql_ok(
        &app.officer(AGENCY),
        "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
        json!({ "input": {
            "caseCode": case, "agencyCode": AGENCY, "procedureName": "Chứng thực",
            "payer": { "name": "VÕ ĐẶNG NGỌC GIÀ", "idNumber": "079201008870" },
            "lines": [{ "feeCode": "P-SAOY", "quantity": quantity }]
        }}),
    )
    .await;
}

/// Fees of 3,000 đ on `CASE`, paid 8,000 đ in cash: 5,000 đ overpaid.
async fn overpay_in_cash(app: &TestApp) {
    assess(app, CASE, 3).await;
    app.graphql_ok(
        &app.officer(AGENCY),
        "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { status } }",
        json!({ "input": { "caseCode": CASE, "amount": "8000", "channel": "CASH", "reference": "PT-01", "idempotencyKey": "cash-8000" } }),
    )
    .await;
}

async fn case(app: &TestApp, code: &str) -> Value {
    let data = app
        .graphql_ok(
            &app.officer(AGENCY),
            "query($code: String!) { case(code: $code) { status paid outstanding overpaid payments { amount channel provider reference } } }",
            json!({ "code": code }),
        )
        .await;
    data["case"].clone()
}

fn sepay_body(id: u64, amount: Value, content: &str) -> String {
    json!({
        "id": id, "gateway": "VietinBank", "transactionDate": "2026-11-22 09:15:00", "accountNumber": ACCOUNT,
        "code": null, "content": content, "transferType": "in", "transferAmount": amount,
        "accumulated": 19077000, "subAccount": null, "referenceCode": format!("FT{id}")
    })
    .to_string()
}

async fn post_sepay(app: &TestApp, body: &str) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/webhooks/sepay", app.address))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Apikey {SEPAY_KEY}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn casso_body(id: u64, amount: u64, description: &str) -> String {
    json!({ "error": 0, "data": {
        "id": id, "reference": format!("CS{id}"), "description": description, "amount": amount,
        "runningBalance": 25000000, "transactionDateTime": "2026-11-22 09:20:00", "accountNumber": ACCOUNT,
        "bankName": "VietinBank", "bankAbbreviation": "ICB", "virtualAccountNumber": "", "virtualAccountName": "",
        "counterAccountName": "NGUYEN VAN A", "counterAccountNumber": "8888888888", "counterAccountBankId": "970415",
        "counterAccountBankName": "VietinBank"
    }})
    .to_string()
}

async fn post_casso(app: &TestApp, body: &str) -> (u16, Value) {
    let header = bank_feed::casso::sign(body.as_bytes(), 1_763_780_400_000, &Secret::new(CASSO_KEY)).unwrap();
    let response = app
        .client
        .post(format!("{}/webhooks/casso", app.address))
        .header("Content-Type", "application/json")
        .header(bank_feed::casso::SIGNATURE_HEADER, header)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn vnpay_query(txn: &str, amount_x100: &str, txn_ref: &str) -> String {
    let params = [
        ("vnp_Amount", amount_x100),
        ("vnp_BankCode", "NCB"),
        ("vnp_BankTranNo", "VNP14422574"),
        ("vnp_CardType", "ATM"),
        ("vnp_OrderInfo", "Thanh toan le phi ho so"),
        ("vnp_PayDate", "20261122091500"),
        ("vnp_ResponseCode", "00"),
        ("vnp_TmnCode", "FEELEDG1"),
        ("vnp_TransactionNo", txn),
        ("vnp_TransactionStatus", "00"),
        ("vnp_TxnRef", txn_ref),
    ];
    bank_feed::vnpay::sign(&params, &Secret::new(VNPAY_SECRET))
}

async fn get_vnpay(app: &TestApp, query: &str) -> Value {
    let response = app.client.get(format!("{}/webhooks/vnpay?{query}", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200, "VNPAY always gets HTTP 200");
    response.json().await.unwrap()
}

async fn payment_count(app: &TestApp) -> usize {
    app.state.ledger.store().events_of_type("PaymentReceived").await.unwrap().len()
}

#[tokio::test]
async fn a_sepay_transfer_naming_the_case_pays_it_and_the_counter_display_follows() {
    for app in apps().await {
        assess(&app, CASE, 3).await;
        let (status, body) =
            post_sepay(&app, &sepay_body(92704, json!(3000), "MBVCB.3278907687.H34.22.6-240426-0002.CT tu 0123")).await;
        assert_eq!((status, body), (200, json!({ "success": true })), "[{}]", app.backend());
        let paid = case(&app, CASE).await;
        assert_eq!(paid["status"], "PAID");
        assert_eq!(paid["payments"][0]["channel"], "VIETQR");
        assert_eq!(paid["payments"][0]["provider"], "sepay");

        let display = app.token(Role::Display, Some(AGENCY), Some("quay-1"));
        let shown =
            app.graphql_ok(&display, "query { counterDisplay(counterId: \"quay-1\") { state } }", json!({})).await;
        assert_eq!(shown["counterDisplay"]["state"], "PAID");
        let inbox = app.state.inbox.recent(Some("sepay"), 1).await.unwrap();
        assert_eq!(inbox[0].outcome, "recorded");
        assert_eq!(inbox[0].credit_id.as_deref(), Some("sepay:92704"));
    }
}

#[tokio::test]
async fn fifty_concurrent_copies_of_one_notification_count_once() {
    for app in apps().await {
        assess(&app, CASE, 3).await;
        let body = sepay_body(555, json!(3000), "thanh toan h34 22 6 240426 0002");
        let copies = (0..50).map(|_| {
            let app = &app;
            let body = body.clone();
            async move { post_sepay(app, &body).await }
        });
        let answers = futures::future::join_all(copies).await;
        assert!(answers.iter().all(|(status, body)| *status == 200 && body["success"] == true), "{answers:?}");
        assert_eq!(payment_count(&app).await, 1, "[{}] one payment, however many copies", app.backend());
        assert_eq!(case(&app, CASE).await["paid"], "3000");

        // And hours later: still the idempotent answer, still one payment.
        let (status, _) = post_sepay(&app, &body).await;
        assert_eq!(status, 200);
        assert_eq!(payment_count(&app).await, 1);
        let outcomes: Vec<String> =
            app.state.inbox.recent(Some("sepay"), 100).await.unwrap().into_iter().map(|e| e.outcome).collect();
        assert_eq!(outcomes.iter().filter(|o| *o == "recorded").count(), 1, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 50);
    }
}

#[tokio::test]
async fn a_case_paid_in_two_parts_through_two_providers_is_paid_once_in_full() {
    for app in apps().await {
        assess(&app, CASE, 3).await;
        post_sepay(&app, &sepay_body(1, json!(2000), "H34.22.6-240426-0002")).await;
        assert_eq!(case(&app, CASE).await["outstanding"], "1000");
        let (status, _) = post_casso(&app, &casso_body(77, 1000, "IBFT H34.22.6 240426 0002")).await;
        assert_eq!(status, 200);
        let paid = case(&app, CASE).await;
        assert_eq!(paid["status"], "PAID", "[{}] {paid:#}", app.backend());
        let providers: Vec<&str> =
            paid["payments"].as_array().unwrap().iter().map(|p| p["provider"].as_str().unwrap()).collect();
        assert_eq!(providers, ["sepay", "casso"]);
    }
}

#[tokio::test]
async fn a_second_payment_of_the_same_qr_is_kept_as_an_overpayment() {
    for app in apps().await {
        assess(&app, CASE, 3).await;
        post_sepay(&app, &sepay_body(10, json!(3000), CASE)).await;
        post_sepay(&app, &sepay_body(11, json!(3000), CASE)).await;
        let overpaid = case(&app, CASE).await;
        assert_eq!(
            (overpaid["status"].as_str(), overpaid["overpaid"].as_str()),
            (Some("OVERPAID"), Some("3000")),
            "[{}]",
            app.backend()
        );
    }
}

#[tokio::test]
async fn vnpay_answers_in_its_own_codes() {
    for app in apps().await {
        assess(&app, CASE, 3).await;
        let query = vnpay_query("14422574", "300000", CASE);
        assert_eq!(get_vnpay(&app, &query).await["RspCode"], "00", "[{}]", app.backend());
        assert_eq!(get_vnpay(&app, &query).await["RspCode"], "02", "a repeated IPN is 'already confirmed'");
        let paid = case(&app, CASE).await;
        assert_eq!(paid["payments"][0]["channel"], "PAYMENT_PLATFORM");
        assert_eq!(paid["paid"], "3000");

        let tampered = query.replacen("vnp_Amount=300000", "vnp_Amount=900000", 1);
        assert_eq!(get_vnpay(&app, &tampered).await["RspCode"], "97");
        assert_eq!(get_vnpay(&app, &vnpay_query("2", "300050", CASE)).await["RspCode"], "04");
        assert_eq!(get_vnpay(&app, &vnpay_query("3", "300000", "NO-SUCH-ORDER")).await["RspCode"], "01");
        assert_eq!(payment_count(&app).await, 1);
    }
}

#[tokio::test]
async fn the_published_casso_and_payos_samples_verify_and_their_money_waits_in_the_queue() {
    for database in TestDatabase::each_backend().await {
        let app = spawn_app_with(database, |s| s.providers = secrets()).await;
        let admin = app.admin();
        // The samples' own accounts (88888888 at Casso, 12345678 at payOS) belong to two agencies.
        for (code, account) in [("H34.22.8", "88888888"), ("H34.22.9", "12345678")] {
            app.graphql_ok(
                &admin,
                "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
                json!({ "input": { "code": code, "name": code, "bankBin": "970415", "accountNumber": account,
                    "accountName": "UBND", "retainsFees": false, "counters": ["quay-1"] } }),
            )
            .await;
        }
        let casso = r#"{"error":0,"data":{"id":0,"reference":"MA_GIAO_DICH_THU_NGHIEM","description":"giao dich thu nghiem","amount":599000,"runningBalance":25000000,"transactionDateTime":"2024-10-03 15:06:37","accountNumber":"88888888","bankName":"VPBank","bankAbbreviation":"VPB","virtualAccountNumber":"","virtualAccountName":"","counterAccountName":"NGUYEN VAN A","counterAccountNumber":"8888888888","counterAccountBankId":"970415","counterAccountBankName":"VietinBank"}}"#;
        let response = app
            .client
            .post(format!("{}/webhooks/casso", app.address))
            .header("Content-Type", "application/json")
            .header("X-Casso-Signature", "t=1727948258788,v1=ed0a4bd2e826d5cb69988cdb141e6c1a080e21f3b57eb72cd78192220042b9e7dde0868fc667faea8e224900fa7904e7c88dfa098032fb2d6b6996856e8b7ff3")
            .body(casso)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "[{}]", app.backend());

        let payos = r#"{"code":"00","desc":"success","success":true,"data":{"orderCode":123,"amount":3000,"description":"VQRIO123","accountNumber":"12345678","reference":"TF230204212323","transactionDateTime":"2023-02-04 18:25:00","currency":"VND","paymentLinkId":"124c33293c43417ab7879e14c8d9eb18","code":"00","desc":"Thành công","counterAccountBankId":"","counterAccountBankName":"","counterAccountName":"","counterAccountNumber":"","virtualAccountName":"","virtualAccountNumber":""},"signature":"412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03"}"#;
        let response = app
            .client
            .post(format!("{}/webhooks/payos", app.address))
            .header("Content-Type", "application/json")
            .body(payos)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);

        let finance = app.token(Role::Finance, None, None);
        let query = "query($a: String!) { unmatchedCredits(agencyCode: $a) { id provider amount content reason } }";
        let casso_queue = app.graphql_ok(&finance, query, json!({ "a": "H34.22.8" })).await;
        assert_eq!(casso_queue["unmatchedCredits"][0]["id"], "casso:0");
        assert_eq!(casso_queue["unmatchedCredits"][0]["amount"], "599000");
        let payos_queue = app.graphql_ok(&finance, query, json!({ "a": "H34.22.9" })).await;
        assert_eq!(payos_queue["unmatchedCredits"][0]["id"], "payos:124c33293c43417ab7879e14c8d9eb18:TF230204212323");

        // A changed byte fails the signature and records nothing.
        let changed = casso.replace("599000", "599001");
        let response = app
            .client
            .post(format!("{}/webhooks/casso", app.address))
            .header("Content-Type", "application/json")
            .header("X-Casso-Signature", "t=1727948258788,v1=ed0a4bd2e826d5cb69988cdb141e6c1a080e21f3b57eb72cd78192220042b9e7dde0868fc667faea8e224900fa7904e7c88dfa098032fb2d6b6996856e8b7ff3")
            .body(changed)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(app.state.inbox.recent(Some("casso"), 1).await.unwrap()[0].outcome, "rejected");
    }
}

#[tokio::test]
async fn unmatched_money_is_visible_and_a_person_assigns_it_or_marks_it_for_refund() {
    for app in apps().await {
        assess(&app, CASE, 3).await;
        post_sepay(&app, &sepay_body(900, json!(3000), "chuyen tien le phi")).await;
        post_sepay(&app, &sepay_body(901, json!(50000), "nham tai khoan")).await;
        let officer = app.officer(AGENCY);
        let queue = app
            .graphql_ok(
                &officer,
                "query { unmatchedCredits(agencyCode: \"H34.22.6\") { id amount content reason status } }",
                json!({}),
            )
            .await;
        let ids: Vec<&str> =
            queue["unmatchedCredits"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["sepay:900", "sepay:901"], "[{}]", app.backend());
        assert_eq!(payment_count(&app).await, 0);

        let assigned = app
            .graphql_ok(&officer, "mutation { assignCredit(creditId: \"sepay:900\", caseCode: \"H34.22.6-240426-0002\") { status paid } }", json!({}))
            .await;
        assert_eq!(assigned["assignCredit"]["status"], "PAID");
        let again = app
            .graphql(
                Some(&officer),
                "mutation { assignCredit(creditId: \"sepay:900\", caseCode: \"H34.22.6-240426-0003\") { status } }",
                json!({}),
            )
            .await;
        assert_eq!(again["errors"][0]["extensions"]["code"], "CONFLICT", "{again:#}");

        let refund = app
            .graphql_ok(
                &officer,
                "mutation { markCreditForRefund(creditId: \"sepay:901\", reason: \"chuyển nhầm\") { status } }",
                json!({}),
            )
            .await;
        assert_eq!(refund["markCreditForRefund"]["status"], "REFUND_REQUESTED");
        let queue =
            app.graphql_ok(&officer, "query { unmatchedCredits(agencyCode: \"H34.22.6\") { id } }", json!({})).await;
        assert!(queue["unmatchedCredits"].as_array().unwrap().is_empty(), "both left the queue");

        let other = app.officer("H34.22.7");
        let body =
            app.graphql(Some(&other), "query { unmatchedCredits(agencyCode: \"H34.22.6\") { id } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    }
}

#[tokio::test]
async fn bad_requests_get_a_4xx_in_the_providers_format_are_kept_and_pay_nothing() {
    for app in apps().await {
        assess(&app, CASE, 3).await;
        let post = |path: &'static str, content_type: &'static str, auth: Option<String>, body: Vec<u8>| {
            let app = &app;
            async move {
                let mut request =
                    app.client.post(format!("{}/webhooks/{path}", app.address)).header("Content-Type", content_type);
                if let Some(auth) = auth {
                    request = request.header("Authorization", auth);
                }
                let response = request.body(body).send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let key = Some(format!("Apikey {SEPAY_KEY}"));
        let cases: Vec<(&str, (u16, Value), u16)> = vec![
            ("malformed JSON", post("sepay", "application/json", key.clone(), b"{\"id\": 1,".to_vec()).await, 400),
            (
                "missing amount",
                post("sepay", "application/json", key.clone(), br#"{"id":2,"transferType":"in"}"#.to_vec()).await,
                400,
            ),
            (
                "float amount",
                post("sepay", "application/json", key.clone(), sepay_body(3, json!(2000.5), CASE).into_bytes()).await,
                400,
            ),
            (
                "negative amount",
                post("sepay", "application/json", key.clone(), sepay_body(4, json!(-3000), CASE).into_bytes()).await,
                400,
            ),
            (
                "wrong content type",
                post("sepay", "text/plain", key.clone(), sepay_body(5, json!(3000), CASE).into_bytes()).await,
                415,
            ),
            ("huge body", post("sepay", "application/json", key.clone(), vec![b' '; 200 * 1024]).await, 413),
            (
                "no key",
                post("sepay", "application/json", None, sepay_body(6, json!(3000), CASE).into_bytes()).await,
                401,
            ),
            (
                "wrong key",
                post(
                    "sepay",
                    "application/json",
                    Some("Apikey nope".into()),
                    sepay_body(7, json!(3000), CASE).into_bytes(),
                )
                .await,
                401,
            ),
        ];
        for (what, (status, body), expected) in &cases {
            assert_eq!(status, expected, "[{}] {what}: {body}", app.backend());
            assert_eq!(body["success"], false, "{what}: SePay's own format");
        }
        let unknown_account = sepay_body(8, json!(3000), CASE).replace(ACCOUNT, "999999999");
        let (status, _) = post("sepay", "application/json", key.clone(), unknown_account.into_bytes()).await;
        assert_eq!(status, 400, "unknown account");

        // A replayed SePay HMAC request with an old timestamp.
        let body = sepay_body(9, json!(3000), CASE);
        let old = chrono::Utc::now().timestamp() - 3600;
        let signature = bank_feed::sepay::sign(body.as_bytes(), old, &Secret::new(SEPAY_HMAC));
        let response = app
            .client
            .post(format!("{}/webhooks/sepay", app.address))
            .header("Content-Type", "application/json")
            .header(bank_feed::sepay::SIGNATURE_HEADER, signature)
            .header(bank_feed::sepay::TIMESTAMP_HEADER, old.to_string())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "a replayed timestamp");

        assert_eq!(payment_count(&app).await, 0, "[{}] nothing was paid", app.backend());
        let inbox = app.state.inbox.recent(Some("sepay"), 100).await.unwrap();
        assert_eq!(inbox.len(), 10, "every request is kept");
        assert!(inbox.iter().all(|e| e.outcome == "rejected"), "{inbox:?}");
        let huge = inbox.iter().find(|e| e.http_status == Some(413)).unwrap();
        assert_eq!(
            huge.body.len(),
            feeledger_api::webhooks::BODY_LIMIT_BYTES,
            "the first bytes of a huge body are kept"
        );
    }
}

#[tokio::test]
async fn a_provider_without_a_configured_key_answers_503_and_accepts_nothing() {
    for database in TestDatabase::each_backend().await {
        let app = spawn_app_with(database, |s| s.providers = ProviderSecrets::default()).await;
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        let (status, _) = post_sepay(&app, &sepay_body(1, json!(3000), CASE)).await;
        assert_eq!(status, 503);
        let (status, _) = post_casso(&app, &casso_body(1, 3000, CASE)).await;
        assert_eq!(status, 503);
        let vnpay = app
            .client
            .get(format!("{}/webhooks/vnpay?{}", app.address, vnpay_query("1", "300000", CASE)))
            .send()
            .await
            .unwrap();
        assert_eq!(vnpay.status(), 503);
        assert_eq!(payment_count(&app).await, 0, "[{}]", app.backend());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A request stored in the inbox whose handling a crash interrupted: the row is `received`.
async fn interrupted_sepay_request(app: &TestApp, authorization: &str, body: &str) -> i64 {
    let request = feeledger_infrastructure::inbox::ReceivedRequest {
        provider: "sepay",
        method: "POST".into(),
        uri: "/webhooks/sepay".into(),
        headers: json!({
            "content-type": "application/json",
            "authorization": bank_feed::sepay::credential_fingerprint(authorization),
        }),
        body: body.as_bytes().to_vec(),
        body_truncated: false,
        received_at: chrono::Utc::now() - chrono::Duration::seconds(120),
    };
    app.state.inbox.record(&request).await.unwrap().id
}

async fn inbox_outcome(app: &TestApp, id: i64) -> String {
    let recent = app.state.inbox.recent(Some("sepay"), 100).await.unwrap();
    recent.into_iter().find(|entry| entry.id == id).map(|entry| entry.outcome).unwrap_or_default()
}

#[tokio::test]
async fn an_interrupted_notification_is_finished_from_its_stored_bytes_or_marked_superseded() {
    for app in apps().await {
        let backend = app.backend();
        assess(&app, CASE, 3).await;
        let key = format!("Apikey {SEPAY_KEY}");

        // Stored, then the node died: the recovery records the money exactly once.
        let interrupted = interrupted_sepay_request(&app, &key, &sepay_body(7001, json!(1000), CASE)).await;
        // A forged request interrupted the same way is refused, not recorded.
        let forged = interrupted_sepay_request(&app, "Apikey not-the-key", &sepay_body(7002, json!(1000), CASE)).await;
        // Interrupted, and the provider's retry was handled meanwhile: superseded.
        let retried_body = sepay_body(7003, json!(1000), CASE);
        let superseded = interrupted_sepay_request(&app, &key, &retried_body).await;
        assert_eq!(post_sepay(&app, &retried_body).await.0, 200, "[{backend}]");
        assert_eq!(payment_count(&app).await, 1, "[{backend}] only the retry was recorded so far");

        let finished = feeledger_api::webhooks::recover_unfinished(&app.state, Duration::from_secs(60)).await.unwrap();
        assert_eq!(finished, 3, "[{backend}]");
        assert_eq!(inbox_outcome(&app, interrupted).await, "recorded", "[{backend}]");
        assert_eq!(inbox_outcome(&app, forged).await, "rejected", "[{backend}]");
        assert_eq!(inbox_outcome(&app, superseded).await, "superseded", "[{backend}]");
        assert_eq!(payment_count(&app).await, 2, "[{backend}] 7001 and 7003, each once");
        assert_eq!(case(&app, CASE).await["paid"], "2000", "[{backend}]");

        // Nothing is left, and a second pass changes nothing.
        let again = feeledger_api::webhooks::recover_unfinished(&app.state, Duration::ZERO).await.unwrap();
        assert_eq!(again, 0, "[{backend}]");
        assert_eq!(payment_count(&app).await, 2, "[{backend}]");
        let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("feeledger_inbox_recovered_total{"), "[{backend}] {metrics}");
    }
}

#[tokio::test]
async fn a_signed_notification_is_recorded_whatever_bytes_its_text_holds_and_duplicate_keys_are_refused() {
    for app in apps().await {
        let backend = app.backend();
        assess(&app, CASE, 3).await;
        // U+0000 and other control characters, written as JSON escapes.
        let (status, body) =
            post_sepay(&app, &sepay_body(8001, json!(1000), &format!("{CASE}\u{0} nop\u{1b} phi"))).await;
        assert_eq!((status, body), (200, json!({ "success": true })), "[{backend}]");
        // Raw bytes that are not UTF-8 inside the content.
        let mut raw = sepay_body(8002, json!(1000), &format!("{CASE} XX")).into_bytes();
        let at = raw.windows(2).position(|w| w == b"XX").unwrap();
        raw[at] = 0xff;
        raw[at + 1] = 0xfe;
        let response = app
            .client
            .post(format!("{}/webhooks/sepay", app.address))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Apikey {SEPAY_KEY}"))
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "[{backend}]");
        let payments = case(&app, CASE).await;
        assert_eq!(payments["paid"], "2000", "[{backend}] {payments:#}");
        let inbox = app.state.inbox.recent(Some("sepay"), 1).await.unwrap();
        assert_eq!(inbox[0].body, raw, "[{backend}] the inbox keeps the raw bytes");
        let stored = app.state.ledger.store().events_of_type("BankCreditObserved").await.unwrap();
        let contents: Vec<String> = stored.iter().map(|e| e.payload.to_string()).collect();
        assert!(contents.iter().all(|c| !c.contains("\\u0000")), "[{backend}] {contents:?}");
        assert!(contents.iter().any(|c| c.contains('\u{fffd}')), "[{backend}] {contents:?}");

        // The same key twice: which one was signed? Refused, kept, nothing recorded.
        let doubled = sepay_body(8003, json!(1000), CASE).replacen(
            "\"transferAmount\":1000",
            "\"transferAmount\":1000,\"transferAmount\":9000",
            1,
        );
        assert!(doubled.contains("9000"), "{doubled}");
        let (status, _) = post_sepay(&app, &doubled).await;
        assert_eq!(status, 400, "[{backend}]");
        assert_eq!(app.state.inbox.recent(Some("sepay"), 1).await.unwrap()[0].outcome, "rejected", "[{backend}]");
        assert_eq!(payment_count(&app).await, 2, "[{backend}]");
    }
}

// issue 15: a credit marked for refund is paid back, and its statement debit line is paired.
#[tokio::test]
async fn a_credit_marked_for_refund_is_paid_back_once_at_most_its_amount_and_paired_with_its_debit_line() {
    const RECORD: &str = "mutation($input: RefundInput!) { recordRefund(input: $input) { creditId amount method reference paidOn statementLineId status } }";
    for app in apps().await {
        let backend = app.backend();
        post_sepay(&app, &sepay_body(911, json!(50000), "nham tai khoan")).await;
        post_sepay(&app, &sepay_body(912, json!(70000), "chuyen nham")).await;
        let finance = app.token(Role::Finance, None, None);
        let refund = |credit: &str, amount: i64, reference: &str| json!({ "input": { "agencyCode": AGENCY, "creditId": credit, "amount": amount.to_string(), "method": "BANK_TRANSFER", "reference": reference, "paidOn": "2026-11-24" } });
        // Not marked for refund yet: refused.
        let early = app.graphql(Some(&finance), RECORD, refund("sepay:911", 50_000, "FT26328000111")).await;
        assert_eq!(early["errors"][0]["extensions"]["code"], "CONFLICT", "[{backend}] {early:#}");
        app.graphql_ok(
            &finance,
            "mutation { markCreditForRefund(creditId: \"sepay:911\", reason: \"chuyển nhầm\") { status } }",
            json!({}),
        )
        .await;
        // The statement with the outgoing transfer, imported first.
        let csv = format!(
            "account_number,booked_on,amount,direction,description,transaction_id\n\
             {ACCOUNT},2026-11-24,50000,debit,HOAN TRA CHUYEN NHAM FT911,FT26328000111\n"
        );
        app.graphql_ok(
            &finance,
            "mutation($input: StatementInput!) { importBankStatement(input: $input) { inserted } }",
            json!({ "input": { "content": csv } }),
        )
        .await;
        // More than the credit: refused, nothing recorded.
        let too_much = app.graphql(Some(&finance), RECORD, refund("sepay:911", 50_001, "FT26328000111")).await;
        assert_eq!(too_much["errors"][0]["extensions"]["code"], "VALIDATION", "[{backend}] {too_much:#}");
        let message = too_much["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("50001") && message.contains("50000 dong refundable"), "{message}");
        // A case with no assessed fees has no overpayment to pay back.
        let by_case = app
            .graphql(
                Some(&finance),
                RECORD,
                json!({ "input": { "agencyCode": AGENCY, "caseCode": CASE, "amount": "1000", "method": "CASH", "reference": "PC01", "paidOn": "2026-11-24" } }),
            )
            .await;
        assert_eq!(by_case["errors"][0]["extensions"]["code"], "NOT_FOUND", "[{backend}] {by_case:#}");
        // Paid back: the credit is closed and the debit line paired.
        let done = app.graphql_ok(&finance, RECORD, refund("sepay:911", 50_000, "FT26328000111")).await;
        let done = &done["recordRefund"];
        assert_eq!(done["status"], "REFUNDED", "[{backend}] {done:#}");
        assert_eq!(done["statementLineId"], "FT26328000111");
        assert_eq!((done["amount"].clone(), done["method"].clone()), (json!("50000"), json!("BANK_TRANSFER")));
        let again = app.graphql(Some(&finance), RECORD, refund("sepay:911", 50_000, "FT26328000111")).await;
        assert_eq!(again["errors"][0]["extensions"]["code"], "CONFLICT", "[{backend}] paid once: {again:#}");
        // An officer may not record refunds.
        let officer = app.officer(AGENCY);
        assert_eq!(
            app.graphql_error_code(Some(&officer), RECORD, refund("sepay:912", 70_000, "FT1")).await,
            "FORBIDDEN"
        );
    }
}

// issue 15: a case's overpayment is paid back, at most what it received beyond what it owes.
#[tokio::test]
async fn a_cases_overpayment_is_paid_back_at_most_once_and_never_more_than_it_received_beyond_its_fees() {
    const RECORD: &str = "mutation($input: RefundInput!) { recordRefund(input: $input) { creditId caseCode amount method reference statementLineId status } }";
    for app in apps().await {
        let backend = app.backend();
        overpay_in_cash(&app).await;
        assert_eq!(case(&app, CASE).await["overpaid"], "5000", "[{backend}]");
        let finance = app.token(Role::Finance, None, None);
        let refund = |amount: i64, reference: &str| json!({ "input": { "agencyCode": AGENCY, "caseCode": CASE, "amount": amount.to_string(), "method": "CASH", "reference": reference, "paidOn": "2026-11-24" } });
        let events = app.event_count().await;

        // More than the overpayment: refused by name, nothing recorded.
        let too_much = app.graphql(Some(&finance), RECORD, refund(5_001, "PC-01")).await;
        assert_eq!(too_much["errors"][0]["extensions"]["code"], "VALIDATION", "[{backend}] {too_much:#}");
        assert!(too_much["errors"][0]["message"].as_str().unwrap().contains("5000"), "{too_much:#}");
        assert_eq!(app.event_count().await, events, "[{backend}]");

        // Paid back in cash against voucher PC-01; the same request again records nothing more.
        let done = app.graphql_ok(&finance, RECORD, refund(5_000, "PC-01")).await["recordRefund"].clone();
        assert_eq!((done["caseCode"].as_str(), done["creditId"].is_null()), (Some(CASE), true), "[{backend}] {done:#}");
        assert_eq!((done["amount"].as_str(), done["status"].as_str()), (Some("5000"), Some("REFUNDED")));
        assert_eq!(app.event_count().await, events + 1, "[{backend}] one OverpaymentRefunded");
        app.graphql_ok(&finance, RECORD, refund(5_000, "PC-01")).await;
        assert_eq!(app.event_count().await, events + 1, "[{backend}] a retry appends nothing");

        // Nothing is left to refund; an officer may not record refunds; another agency's case is refused.
        let more = app.graphql(Some(&finance), RECORD, refund(1, "PC-02")).await;
        assert_eq!(more["errors"][0]["extensions"]["code"], "VALIDATION", "[{backend}] {more:#}");
        assert_eq!(app.graphql_error_code(Some(&app.officer(AGENCY)), RECORD, refund(1, "PC-03")).await, "FORBIDDEN");
        let elsewhere = json!({ "input": { "agencyCode": "H34.22.7", "caseCode": CASE, "amount": "1", "method": "CASH", "reference": "PC-04", "paidOn": "2026-11-24" } });
        assert_eq!(app.graphql_error_code(Some(&finance), RECORD, elsewhere).await, "VALIDATION");
        assert_eq!(app.event_count().await, events + 1, "[{backend}]");
    }
}

// issue 15: a day is explained only when its debits are too: each refund and remittance the
// ledger recorded explains its line; a bank charge is left for someone to look at.
#[tokio::test]
async fn a_days_debits_are_explained_by_the_refunds_and_remittances_recorded_and_a_bank_charge_is_not() {
    const RECONCILE: &str = "query($a: String!, $d: Date!) { dailyReconciliation(agencyCode: $a, date: $d) { \
        balanced allExplained debitsTotal unexplainedDebitsTotal \
        debits { statementLineId amount explainedBy reference } } }";
    for app in apps().await {
        let backend = app.backend();
        let today = (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive().to_string();
        overpay_in_cash(&app).await;
        let finance = app.token(Role::Finance, None, None);
        // The 5,000 đ overpaid goes back by transfer FT26333REFUND.
        app.graphql_ok(
            &finance,
            "mutation($input: RefundInput!) { recordRefund(input: $input) { status } }",
            json!({ "input": { "agencyCode": AGENCY, "caseCode": CASE, "amount": "5000", "method": "BANK_TRANSFER",
                               "reference": "FT26333REFUND", "paidOn": today } }),
        )
        .await;
        // The state budget's share goes to the Treasury on voucher GNT-2026-0042.
        app.state.runner.caught_up("treasury", Duration::from_secs(30)).await.unwrap();
        let owed = app
            .graphql_ok(
                &finance,
                "query($a: String!, $t: Date!) { treasuryReport(agencyCode: $a, from: \"2020-01-01\", to: $t) { outstanding } }",
                json!({ "a": AGENCY, "t": today }),
            )
            .await["treasuryReport"]["outstanding"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(owed, "0", "[{backend}]");
        app.graphql_ok(
            &finance,
            "mutation($input: RemitInput!) { remitToTreasury(input: $input) { amount } }",
            json!({ "input": { "agencyCode": AGENCY, "upTo": today, "voucherNumber": "GNT-2026-0042", "amount": owed,
                               "remittedOn": today } }),
        )
        .await;
        // The bank's statement of the day: both transfers out, and its own monthly charge.
        let csv = format!(
            "account_number,booked_on,amount,direction,description,transaction_id\n\
             {ACCOUNT},{today},5000,debit,HOAN TRA TIEN THUA,FT26333REFUND\n\
             {ACCOUNT},{today},{owed},debit,NOP NSNN THEO GNT-2026-0042,FT26333NSNN\n\
             {ACCOUNT},{today},11000,debit,PHI QUAN LY TAI KHOAN,FT26333FEE\n\
             {ACCOUNT},{today},8000,credit,NOP TIEN MAT THU PHI LE PHI,FT26333CASH\n"
        );
        app.graphql_ok(
            &finance,
            "mutation($input: StatementInput!) { importBankStatement(input: $input) { inserted } }",
            json!({ "input": { "content": csv } }),
        )
        .await;

        let report = app.graphql_ok(&finance, RECONCILE, json!({ "a": AGENCY, "d": today })).await;
        let report = &report["dailyReconciliation"];
        let debits: Vec<(String, Value, Value)> = report["debits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (d["statementLineId"].as_str().unwrap().to_owned(), d["explainedBy"].clone(), d["reference"].clone())
            })
            .collect();
        assert_eq!(
            debits,
            [
                ("FT26333FEE".to_owned(), Value::Null, Value::Null),
                ("FT26333NSNN".to_owned(), json!("REMITTANCE"), json!("GNT-2026-0042")),
                ("FT26333REFUND".to_owned(), json!("REFUND"), json!("FT26333REFUND")),
            ],
            "[{backend}] {report:#}"
        );
        let owed: i64 = owed.parse().unwrap();
        assert_eq!(report["debitsTotal"], (5_000 + owed + 11_000).to_string(), "[{backend}]");
        assert_eq!(report["unexplainedDebitsTotal"], "11000", "[{backend}]");
        assert_eq!((report["balanced"].clone(), report["allExplained"].clone()), (json!(true), json!(false)));

        // The download carries the same lines.
        let download = app
            .client
            .get(format!("{}/reports/reconciliation.csv?agency={AGENCY}&date={today}", app.address))
            .bearer_auth(&finance)
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 200, "[{backend}]");
        let text = download.text().await.unwrap();
        assert!(text.contains("Ghi nợ chưa rõ") && text.contains("FT26333FEE"), "[{backend}] {text}");
        assert!(text.contains("Nộp ngân sách (KBNN)") && text.contains("GNT-2026-0042"), "[{backend}] {text}");

        // Finance looks at the bank's charge and resolves it with a reason: the day is explained.
        const RESOLVE: &str = "mutation($input: ResolveItemInput!) { resolveReconciliationItem(input: $input) { \
            statementLineId paymentId reason resolvedBy } }";
        let resolve = |line: &str, reason: &str| json!({ "input": { "agencyCode": AGENCY, "statementLineId": line, "reason": reason } });
        let events = app.event_count().await;
        assert_eq!(app.graphql_error_code(Some(&finance), RESOLVE, resolve("FT26333FEE", "  ")).await, "VALIDATION");
        assert_eq!(
            app.graphql_error_code(Some(&app.officer(AGENCY)), RESOLVE, resolve("FT26333FEE", "phí")).await,
            "FORBIDDEN"
        );
        assert_eq!(app.event_count().await, events, "[{backend}] nothing recorded by a refused request");
        let reason = "Phí quản lý tài khoản tháng 11 của ngân hàng";
        let done = app.graphql_ok(&finance, RESOLVE, resolve("FT26333FEE", reason)).await;
        assert_eq!(done["resolveReconciliationItem"]["reason"], reason, "[{backend}] {done:#}");
        assert_eq!(app.event_count().await, events + 1, "[{backend}]");
        let again = app.graphql_ok(&finance, RESOLVE, resolve("FT26333FEE", reason)).await;
        assert_eq!(again, done, "[{backend}] the same resolution again answers the first");
        assert_eq!(app.graphql_error_code(Some(&finance), RESOLVE, resolve("FT26333FEE", "khác")).await, "CONFLICT");
        assert_eq!(app.event_count().await, events + 1, "[{backend}] resolved once");

        let after = app
            .graphql_ok(
                &finance,
                "query($a: String!, $d: Date!) { dailyReconciliation(agencyCode: $a, date: $d) { \
                 allExplained unsettled { day } resolutions { statementLineId reason } } }",
                json!({ "a": AGENCY, "d": today }),
            )
            .await;
        let after = &after["dailyReconciliation"];
        assert_eq!(after["resolutions"], json!([{ "statementLineId": "FT26333FEE", "reason": reason }]), "[{backend}]");
        assert_eq!(after["allExplained"], true, "[{backend}] {after:#}");
    }
}

#[tokio::test]
async fn an_account_configured_after_the_agencies_were_cached_is_known_to_the_next_notification() {
    for app in apps().await {
        let backend = app.backend();
        assess(&app, CASE, 3).await;
        // The first notification reads the agencies and keeps them in memory.
        assert_eq!(post_sepay(&app, &sepay_body(8001, json!(3000), CASE)).await.0, 200, "[{backend}]");

        // A second agency, with an account of its own, configured afterwards.
        let second_account = "113366669999";
        app.graphql_ok(
            &app.admin(),
            "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
            json!({ "input": {
                "code": "H34.22.7", "name": "UBND H34.22.7", "bankBin": "970415",
                "accountNumber": second_account, "accountName": "UBND PHUONG HOANG VAN THU",
                "retainsFees": true, "counters": ["quay-1"]
            }}),
        )
        .await;

        // The count read with a request's inbox row is the log's, so the cache is not used stale:
        // money to the new account is taken (left for a person: it names no case), not refused.
        let body = sepay_body(8002, json!(5000), "CHUYEN TIEN").replace(ACCOUNT, second_account);
        let (status, _) = post_sepay(&app, &body).await;
        assert_eq!(status, 200, "[{backend}] the new agency's account is known");
        let newest = app.state.inbox.recent(Some("sepay"), 1).await.unwrap();
        assert_eq!(newest[0].outcome, "unmatched", "[{backend}] {:?}", newest[0].outcome_detail);

        let stored = app
            .state
            .inbox
            .record(&feeledger_infrastructure::inbox::ReceivedRequest {
                provider: "sepay",
                method: "POST".into(),
                uri: "/webhooks/sepay".into(),
                headers: json!({}),
                body: Vec::new(),
                body_truncated: false,
                received_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        assert_eq!(stored.agency_configurations, 2, "[{backend}] two agencies configured, once each");
    }
}

/// Case `n` of a numbered series, for tests that need many cases.
fn numbered_case(n: u64) -> String {
    format!("H34.22.6-240426-{n:04}")
}

/// Assesses 1,000 đ of fees on each numbered case of `numbers`.
async fn assess_numbered(app: &TestApp, numbers: std::ops::Range<u64>) {
    for n in numbers {
        assess(app, &numbered_case(n), 1).await;
    }
}

/// Notifications that arrive together are recorded together (payment intake's group commit):
/// each credit still exactly once, on its own case, with its own inbox outcome; a copy of a
/// credit, a second credit of a case and money naming no case each get the answer they would
/// get alone.
#[tokio::test]
async fn notifications_arriving_together_are_recorded_together_each_exactly_once_with_its_own_outcome() {
    const CASES: u64 = 24;
    let code = |n: u64| numbered_case(100 + n);
    for app in apps().await {
        let backend = app.backend();
        assess_numbered(&app, 100..100 + CASES).await;
        // One credit per case (1,000 đ, its fees); a copy of the first four; a second credit of
        // 500 đ on the next four (an overpayment); three credits that name no case.
        let mut bodies: Vec<(u64, String)> = (0..CASES)
            .map(|n| (9000 + n, sepay_body(9000 + n, json!(1000), &format!("MBVCB.{}.CT", code(n)))))
            .collect();
        bodies.extend((0..4).map(|n| (9000 + n, sepay_body(9000 + n, json!(1000), &format!("MBVCB.{}.CT", code(n))))));
        bodies.extend((4..8).map(|n| (9500 + n, sepay_body(9500 + n, json!(500), &format!("them {}", code(n))))));
        bodies.extend((0..3).map(|n| (9900 + n, sepay_body(9900 + n, json!(700), "CHUYEN TIEN"))));
        let sent = futures::future::join_all(bodies.iter().map(|(_, body)| post_sepay(&app, body))).await;
        assert!(sent.iter().all(|(status, body)| *status == 200 && body["success"] == true), "[{backend}] {sent:?}");

        for n in 0..CASES {
            let paid = case(&app, &code(n)).await;
            let expected = if (4..8).contains(&n) { "1500" } else { "1000" };
            assert_eq!(paid["paid"], expected, "[{backend}] case {}: {paid}", code(n));
        }
        assert_eq!(payment_count(&app).await, usize::try_from(CASES).unwrap() + 4, "[{backend}]");

        // Each request's row carries its own credit and outcome.
        let entries = app.state.inbox.recent(Some("sepay"), 1_000).await.unwrap();
        assert_eq!(entries.len(), bodies.len(), "[{backend}]");
        let mut outcomes: std::collections::HashMap<u64, Vec<String>> = std::collections::HashMap::new();
        for entry in &entries {
            let body: Value = serde_json::from_slice(&entry.body).unwrap();
            let id = body["id"].as_u64().unwrap();
            assert_eq!(
                entry.credit_id.as_deref(),
                Some(format!("sepay:{id}").as_str()),
                "[{backend}] row {}",
                entry.id
            );
            assert_eq!(entry.http_status, Some(200), "[{backend}] row {}", entry.id);
            outcomes.entry(id).or_default().push(entry.outcome.clone());
        }
        for (id, mut seen) in outcomes {
            seen.sort();
            let expected: &[&str] = match id {
                9000..=9003 => &["duplicate", "recorded"],
                9900.. => &["unmatched"],
                _ => &["recorded"],
            };
            assert_eq!(seen, expected, "[{backend}] credit {id}");
        }

        // Together: the new credits' events share fewer commits than there are credits.
        let observed = app.state.ledger.store().events_of_type("BankCreditObserved").await.unwrap();
        assert_eq!(observed.len(), usize::try_from(CASES).unwrap() + 4 + 3, "[{backend}] each credit observed once");
        let commits: std::collections::HashSet<i64> = observed.iter().map(|e| e.transaction_id).collect();
        assert!(commits.len() < observed.len(), "[{backend}] {} credits in {} commits", observed.len(), commits.len());
    }
}

/// Two nodes receive the same credits at the same moment (a provider that retries on another
/// node, or sends to both): each node's groups race the other's, a group that loses fails as a
/// whole and its credits go alone. Every credit is still recorded once, on one node, and every
/// case paid once.
#[tokio::test]
async fn the_same_credits_racing_through_two_nodes_are_each_recorded_once() {
    use feeledger_infrastructure::bank_feed::Notification;
    use feeledger_infrastructure::payment_intake::{Intake, PaymentIntake};
    const CASES: u64 = 20;
    let code = |n: u64| numbered_case(300 + n);
    for app in apps().await {
        let backend = app.backend();
        assess_numbered(&app, 300..300 + CASES).await;
        let credits: Vec<_> = (0..CASES)
            .map(|n| {
                let body = sepay_body(7000 + n, json!(1000), &format!("CT {} le phi", code(n)));
                match bank_feed::sepay::parse(body.as_bytes()).unwrap() {
                    Notification::Credit(credit) => credit,
                    other => panic!("not a credit: {other:?}"),
                }
            })
            .collect();
        // Node B: a second intake on the same database, with its own groups.
        let nodes = [app.state.intake.clone(), PaymentIntake::new(app.state.ledger.clone())];
        let now = chrono::Utc::now();
        let sends = credits.iter().flat_map(|credit| nodes.iter().map(move |node| node.receive(credit.clone(), now)));
        let answers = futures::future::join_all(sends).await;
        let mut recorded = std::collections::HashMap::new();
        for answer in answers {
            match answer.unwrap_or_else(|e| panic!("[{backend}] {e}")) {
                Intake::Recorded { credit_id, .. } => *recorded.entry(credit_id).or_insert(0) += 1,
                Intake::Duplicate { .. } => {}
                other => panic!("[{backend}] {other:?}"),
            }
        }
        assert_eq!(recorded.len(), usize::try_from(CASES).unwrap(), "[{backend}] {recorded:?}");
        assert!(recorded.values().all(|n| *n == 1), "[{backend}] recorded on both nodes: {recorded:?}");
        for n in 0..CASES {
            assert_eq!(case(&app, &code(n)).await["paid"], "1000", "[{backend}] case {}", code(n));
        }
        assert_eq!(payment_count(&app).await, usize::try_from(CASES).unwrap(), "[{backend}]");
    }
}

/// A new credit's request is stored with its money: the same commit writes its inbox row with
/// the outcome (the inbox's own writer stores nothing for it). What that way cannot take — a
/// copy of the credit, the first request after start-up (no agencies in memory yet) — is stored
/// first, then handled, as before.
#[tokio::test]
async fn a_new_credits_request_is_stored_by_the_commit_that_records_its_money() {
    for app in apps().await {
        let backend = app.backend();
        assess_numbered(&app, 400..403).await;
        let body = |n: u64| sepay_body(6000 + n, json!(1000), &format!("CT {} le phi", numbered_case(n)));

        // The first request after start-up: the agencies are read with its stored row.
        let before = app.state.inbox.writes().rows;
        assert_eq!(post_sepay(&app, &body(400)).await.0, 200, "[{backend}]");
        assert_eq!(app.state.inbox.writes().rows, before + 1, "[{backend}] stored first");

        // A new credit: stored with its money, not by the inbox's writer.
        let (status, answer) = post_sepay(&app, &body(401)).await;
        assert_eq!((status, answer["success"].clone()), (200, json!(true)), "[{backend}]");
        assert_eq!(app.state.inbox.writes().rows, before + 1, "[{backend}] stored with its money");
        let row = app.state.inbox.recent(Some("sepay"), 1).await.unwrap().remove(0);
        assert_eq!(row.body, body(401).into_bytes(), "[{backend}] the raw bytes are kept");
        assert_eq!(row.outcome, "recorded", "[{backend}]");
        assert_eq!(row.outcome_detail.as_deref(), Some(format!("case {}", numbered_case(401)).as_str()));
        assert_eq!(row.credit_id.as_deref(), Some("sepay:6401"), "[{backend}]");
        assert_eq!(row.http_status, Some(200), "[{backend}]");
        assert_eq!(case(&app, &numbered_case(401)).await["paid"], "1000", "[{backend}]");

        // Its copy is stored first, and answered as a duplicate; nothing is paid twice.
        assert_eq!(post_sepay(&app, &body(401)).await.0, 200, "[{backend}]");
        assert_eq!(app.state.inbox.writes().rows, before + 2, "[{backend}] the copy is stored first");
        let copy = app.state.inbox.recent(Some("sepay"), 1).await.unwrap().remove(0);
        assert_eq!(copy.outcome, "duplicate", "[{backend}]");
        assert_eq!(case(&app, &numbered_case(401)).await["paid"], "1000", "[{backend}]");

        // A refused request is stored too, with nothing paid.
        let forged = body(402).replace("1000", "9000");
        let refused = app
            .client
            .post(format!("{}/webhooks/sepay", app.address))
            .header("Content-Type", "application/json")
            .header("Authorization", "Apikey wrong")
            .body(forged)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 401, "[{backend}]");
        assert_eq!(app.state.inbox.recent(Some("sepay"), 1).await.unwrap()[0].outcome, "rejected", "[{backend}]");
        assert_eq!(case(&app, &numbered_case(402)).await["paid"], "0", "[{backend}]");
    }
}

/// The agencies a new credit is decided with come from memory on the short way; the commit
/// that records it checks that no agency was configured since. An agency that starts issuing a
/// receipt per payment after they were kept in memory issues one for the next bank payment.
#[tokio::test]
async fn an_agency_configured_after_the_agencies_were_kept_in_memory_is_used_for_the_next_credit() {
    for app in apps().await {
        let backend = app.backend();
        assess_numbered(&app, 500..502).await;
        let body = |n: u64| sepay_body(5000 + n, json!(1000), &format!("CT {} le phi", numbered_case(n)));
        assert_eq!(post_sepay(&app, &body(500)).await.0, 200, "[{backend}]");

        app.graphql_ok(
            &app.admin(),
            "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { receiptPerPayment } }",
            json!({ "input": {
                "code": AGENCY, "name": format!("UBND {AGENCY}"), "bankBin": "970415",
                "accountNumber": ACCOUNT, "accountName": "UBND PHUONG TRAN HUNG DAO",
                "retainsFees": true, "counters": ["quay-1", "quay-2"], "receiptPerPayment": true
            }}),
        )
        .await;
        assert_eq!(post_sepay(&app, &body(501)).await.0, 200, "[{backend}]");

        let app = &app;
        let receipts = |code: String| async move {
            app.graphql_ok(
                &app.officer(AGENCY),
                "query($code: String!) { case(code: $code) { paid receipts { amount } } }",
                json!({ "code": code }),
            )
            .await["case"]
                .clone()
        };
        let paid_before = receipts(numbered_case(500)).await;
        assert_eq!(paid_before["receipts"], json!([]), "[{backend}] {paid_before}");
        let paid_after = receipts(numbered_case(501)).await;
        assert_eq!(paid_after["paid"], "1000", "[{backend}] {paid_after}");
        assert_eq!(paid_after["receipts"], json!([{ "amount": "1000" }]), "[{backend}] {paid_after}");
    }
}
