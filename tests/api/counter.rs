//! The counter: payment QRs, their images, and the live display of both screens.

use std::time::Duration;

use feeledger_api::auth::Role;
use feeledger_domain::money::Vnd;
use feeledger_domain::vietqr::DynamicQr;
use feeledger_tests::ws::Subscription;
use feeledger_tests::{TestApp, TestDatabase, spawn_app_with, spawn_each_backend};
use serde_json::{Value, json};

const AGENCY: &str = "H34.22.6";
const CASE: &str = "H34.22.6-240426-0002";
/// Generous: a bound on a broken test's running time, not a performance assertion.
const PATIENCE: Duration = Duration::from_secs(10);

const DISPLAY_FIELDS: &str = "caseCode agencyName counterId status state message total paid outstanding \
    payer { name maskedId } lines { feeCode amount } qr { id payload amount reference svgUrl pngUrl expiresAt payable expired } version";

async fn assess(app: &TestApp, case: &str, quantity: i32) {
    app.graphql_ok(
        &app.officer(AGENCY),
        "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
        json!({ "input": {
            "caseCode": case, "agencyCode": AGENCY, "procedureName": "Chứng thực bản sao từ bản chính",
            "payer": { "name": "VÕ ĐẶNG NGỌC GIÀ", "idNumber": "079201008870" },
            "lines": [{ "feeCode": "P-SAOY", "quantity": quantity }]
        }}),
    )
    .await;
}

async fn issue_qr(app: &TestApp, case: &str) -> Value {
    app.graphql(
        Some(&app.officer(AGENCY)),
        "mutation($case: String!) { issueQr(caseCode: $case, counterId: \"quay-1\") { id payload amount reference svgUrl pngUrl expiresAt payable } }",
        json!({ "case": case }),
    )
    .await
}

async fn pay(app: &TestApp, amount: &str, key: &str) {
    app.graphql_ok(
        &app.officer(AGENCY),
        "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paid } }",
        json!({ "input": { "caseCode": CASE, "amount": amount, "channel": "POS", "reference": key, "idempotencyKey": key } }),
    )
    .await;
}

#[tokio::test]
async fn a_qr_is_a_napas_dynamic_qr_for_exactly_the_outstanding_amount() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        let body = issue_qr(&app, CASE).await;
        let qr = &body["data"]["issueQr"];
        assert_eq!(qr["amount"], "3000", "[{}] {body:#}", app.backend());
        assert_eq!(qr["reference"], CASE);
        assert_eq!(qr["payable"], true);
        let decoded = DynamicQr::parse(qr["payload"].as_str().unwrap()).unwrap();
        assert_eq!(decoded.amount, Vnd::new(3000).unwrap());
        assert_eq!(decoded.bank_bin.as_str(), "970415");
        assert_eq!(decoded.account_number.as_str(), "113366668888");
        assert_eq!(decoded.purpose, CASE);
        assert_eq!(qr["svgUrl"], format!("/qr/{}.svg", qr["id"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn after_a_partial_payment_a_new_qr_asks_for_the_remainder_and_none_is_issued_once_paid() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        let first = issue_qr(&app, CASE).await;
        pay(&app, "2000", "pos-1").await;
        let second = issue_qr(&app, CASE).await;
        assert_eq!(second["data"]["issueQr"]["amount"], "1000", "[{}]", app.backend());
        assert_ne!(first["data"]["issueQr"]["id"], second["data"]["issueQr"]["id"]);
        let case = app
            .graphql_ok(
                &app.officer(AGENCY),
                "query { case(code: \"H34.22.6-240426-0002\") { qr { amount } events { type } } }",
                json!({}),
            )
            .await;
        let types: Vec<&str> =
            case["case"]["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert!(types.contains(&"QrSuperseded"), "{types:?}");

        pay(&app, "1000", "pos-2").await;
        let refused = issue_qr(&app, CASE).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "CONFLICT", "{refused:#}");
    }
}

#[tokio::test]
async fn qr_images_decode_back_to_the_payload_and_are_cacheable() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        let qr = issue_qr(&app, CASE).await["data"]["issueQr"].clone();
        let payload = qr["payload"].as_str().unwrap();

        let png = app.client.get(format!("{}{}", app.address, qr["pngUrl"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(png.status(), 200);
        assert_eq!(png.headers()["content-type"], "image/png");
        assert!(png.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let bytes = png.bytes().await.unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes.to_vec())).read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buffer).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buffer[y * w + x]);
        let grids = image.detect_grids();
        let (_, decoded) = grids[0].decode().unwrap();
        assert_eq!(decoded, payload, "[{}] the image must carry the payload byte for byte", app.backend());

        let svg = app.client.get(format!("{}{}", app.address, qr["svgUrl"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(svg.headers()["content-type"], "image/svg+xml");
        assert!(svg.text().await.unwrap().contains("<svg"));

        let missing = app.client.get(format!("{}/qr/{}.png", app.address, uuid::Uuid::new_v4())).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        let garbage = app.client.get(format!("{}/qr/not-a-qr.gif", app.address)).send().await.unwrap();
        assert_eq!(garbage.status(), 404);
    }
}

#[tokio::test]
async fn the_counter_display_shows_the_latest_case_at_that_counter() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        let display = app.token(Role::Display, Some(AGENCY), Some("quay-1"));
        let query = format!("query {{ counterDisplay(counterId: \"quay-1\") {{ {DISPLAY_FIELDS} }} }}");
        assert!(app.graphql_ok(&display, &query, json!({})).await["counterDisplay"].is_null(), "nothing shown yet");

        assess(&app, CASE, 3).await;
        issue_qr(&app, CASE).await;
        let shown = app.graphql_ok(&display, &query, json!({})).await;
        let shown = &shown["counterDisplay"];
        assert_eq!(shown["caseCode"], CASE, "[{}]", app.backend());
        assert_eq!(shown["state"], "WAITING");
        assert_eq!(shown["status"], "AWAITING_PAYMENT");
        assert_eq!(shown["payer"]["maskedId"], "******8870");
        assert_eq!(shown["qr"]["amount"], "3000");
        assert_eq!(shown["agencyName"], "UBND H34.22.6");

        let other_counter = app.token(Role::Display, Some(AGENCY), Some("quay-2"));
        let body = app.graphql(Some(&other_counter), &query, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "a display token reads only its own counter");
    }
}

#[tokio::test]
async fn both_screens_see_a_payment_live_and_turn_to_paid_without_a_reload() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        issue_qr(&app, CASE).await;
        let query = format!("subscription {{ counterDisplay(counterId: \"quay-1\") {{ {DISPLAY_FIELDS} }} }}");
        let display_token = app.token(Role::Display, Some(AGENCY), Some("quay-1"));
        let mut citizen = Subscription::start(&app.address, &display_token, &query, json!({})).await;
        let mut officer = Subscription::start(&app.address, &app.officer(AGENCY), &query, json!({})).await;

        for screen in [&mut citizen, &mut officer] {
            let first = screen.until(PATIENCE, |p| p["data"]["counterDisplay"]["state"] == "WAITING").await;
            assert_eq!(first["data"]["counterDisplay"]["outstanding"], "3000");
        }
        pay(&app, "2000", "pos-1").await;
        for screen in [&mut citizen, &mut officer] {
            let partial = screen.until(PATIENCE, |p| p["data"]["counterDisplay"]["state"] == "PARTIALLY_PAID").await;
            assert_eq!(partial["data"]["counterDisplay"]["outstanding"], "1000", "[{}]", app.backend());
        }
        pay(&app, "1000", "pos-2").await;
        for screen in [&mut citizen, &mut officer] {
            let paid = screen.until(PATIENCE, |p| p["data"]["counterDisplay"]["state"] == "PAID").await;
            assert_eq!(paid["data"]["counterDisplay"]["message"], "Thanh toán thành công");
            assert_eq!(paid["data"]["counterDisplay"]["outstanding"], "0");
        }

        // The next case at the counter replaces the display.
        assess(&app, "H34.22.6-240426-0003", 1).await;
        let next = citizen.until(PATIENCE, |p| p["data"]["counterDisplay"]["caseCode"] == "H34.22.6-240426-0003").await;
        assert_eq!(next["data"]["counterDisplay"]["state"], "ASSESSED");
    }
}

#[tokio::test]
async fn case_status_subscribers_see_every_change_of_their_case() {
    for app in spawn_each_backend().await {
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        let mut watch = Subscription::start(
            &app.address,
            &app.officer(AGENCY),
            "subscription { caseStatus(code: \"H34.22.6-240426-0002\") { status paid version } }",
            json!({}),
        )
        .await;
        watch.until(PATIENCE, |p| p["data"]["caseStatus"]["status"] == "ASSESSED").await;
        pay(&app, "3000", "pos-1").await;
        let paid = watch.until(PATIENCE, |p| p["data"]["caseStatus"]["status"] == "PAID").await;
        assert_eq!(paid["data"]["caseStatus"]["paid"], "3000", "[{}]", app.backend());
    }
}

#[tokio::test]
async fn a_subscription_without_a_valid_token_is_refused_with_a_code() {
    for app in spawn_each_backend().await {
        let mut watch = Subscription::start(
            &app.address,
            "forged",
            "subscription { counterDisplay(counterId: \"quay-1\", agencyCode: \"H34.22.6\") { state } }",
            json!({}),
        )
        .await;
        let refused = watch.next(PATIENCE).await.unwrap();
        assert_eq!(refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused:#}");
    }
}

#[tokio::test]
async fn an_unpaid_qr_expires_and_the_screens_say_so() {
    let databases = TestDatabase::each_backend().await;
    for database in databases {
        let app = spawn_app_with(database, |settings| settings.qr_ttl_seconds = 1).await;
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        let query = format!("subscription {{ counterDisplay(counterId: \"quay-1\") {{ {DISPLAY_FIELDS} }} }}");
        let mut screen = Subscription::start(&app.address, &app.officer(AGENCY), &query, json!({})).await;
        issue_qr(&app, CASE).await;
        let expired = screen.until(PATIENCE, |p| p["data"]["counterDisplay"]["state"] == "EXPIRED").await;
        assert_eq!(expired["data"]["counterDisplay"]["qr"]["expired"], true, "[{}]", app.backend());
        assert_eq!(expired["data"]["counterDisplay"]["qr"]["payable"], false);

        // Money that still arrives is recorded truthfully.
        pay(&app, "3000", "late-1").await;
        screen.until(PATIENCE, |p| p["data"]["counterDisplay"]["state"] == "PAID").await;
    }
}

/// What the citizen's screen selects of a display (`DISPLAY_FIELDS` in api/web/screens.js), the
/// selection the plain display feed answers with.
const CITIZEN_SELECTION: &str = "caseCode agencyName counterId procedureName status state message total paid \
    outstanding overpaid payer { name maskedId } lines { feeCode name kind quantity unitAmount amount } \
    qr { id payload amount reference svgUrl pngUrl expiresAt payable expired } updatedAt version";

#[tokio::test]
async fn the_plain_display_feed_sends_what_the_counter_display_query_answers_after_every_change() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        issue_qr(&app, CASE).await;
        let display = app.token(Role::Display, Some(AGENCY), Some("quay-1"));
        let query = format!("query {{ counterDisplay(counterId: \"quay-1\") {{ {CITIZEN_SELECTION} }} }}");
        let mut feed = Subscription::display_feed(&app.address, &display, "quay-1", None).await.unwrap();

        let first = feed.until(PATIENCE, |p| p["data"]["counterDisplay"]["state"] == "WAITING").await;
        assert_eq!(first["data"], app.graphql_ok(&display, &query, json!({})).await, "[{backend}] {first:#}");
        assert_eq!(first["data"]["counterDisplay"]["qr"]["amount"], "3000", "[{backend}]");
        for (amount, key, state) in [("2000", "pos-1", "PARTIALLY_PAID"), ("1000", "pos-2", "PAID")] {
            pay(&app, amount, key).await;
            let shown = feed.until(PATIENCE, |p| p["data"]["counterDisplay"]["state"] == state).await;
            assert_eq!(shown["data"], app.graphql_ok(&display, &query, json!({})).await, "[{backend}] {state}");
        }

        // A screen's ping is answered; the next case at the counter replaces the display.
        feed.send_raw(r#"{"type":"ping"}"#).await.unwrap();
        assert_eq!(feed.next_message(PATIENCE).await.unwrap()["type"], "pong", "[{backend}]");
        assess(&app, "H34.22.6-240426-0003", 1).await;
        let next = feed.until(PATIENCE, |p| p["data"]["counterDisplay"]["caseCode"] == "H34.22.6-240426-0003").await;
        assert_eq!(next["data"]["counterDisplay"]["state"], "ASSESSED", "[{backend}]");

        // An officer's token names the counter of its agency; an admin's names the agency too.
        let admin = app.token(Role::Admin, None, None);
        let mut by_admin = Subscription::display_feed(&app.address, &admin, "quay-1", Some(AGENCY)).await.unwrap();
        let shown = by_admin.next(PATIENCE).await.unwrap();
        assert_eq!(shown["data"]["counterDisplay"]["caseCode"], "H34.22.6-240426-0003", "[{backend}] {shown:#}");
    }
}

#[tokio::test]
async fn the_plain_display_feed_refuses_a_bad_subscribe_with_a_code_and_appends_nothing() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        app.configure_agency(AGENCY).await;
        assess(&app, CASE, 3).await;
        let before = app.event_count().await;
        let other_counter = app.token(Role::Display, Some(AGENCY), Some("quay-2"));
        let admin = app.token(Role::Admin, None, None);
        let refusals = [
            ("forged", Some("forged"), "quay-1", None, "UNAUTHENTICATED", 4401),
            ("another counter's display", Some(other_counter.as_str()), "quay-1", None, "FORBIDDEN", 4403),
            ("no agency for a token of none", Some(admin.as_str()), "quay-1", None, "VALIDATION", 4400),
            ("a bad counter id", Some(admin.as_str()), "quầy 1/../", Some(AGENCY), "VALIDATION", 4400),
        ];
        for (what, token, counter, agency, code, close) in refusals {
            let mut feed = Subscription::display_feed(&app.address, token.unwrap(), counter, agency).await.unwrap();
            let refused = feed.next(PATIENCE).await.unwrap_or_else(|| panic!("[{backend}] {what}: no answer"));
            assert_eq!(refused["errors"][0]["extensions"]["code"], code, "[{backend}] {what}: {refused:#}");
            assert_eq!(feed.close_code(PATIENCE).await, Some(close), "[{backend}] {what}");
        }
        for garbage in ["not json", r#"{"type":"subscribe"}"#, r#"{"type":"subscribe","payload":{"counterId":7}}"#] {
            let mut feed = Subscription::raw_socket(&app.address, "/live/counter-display").await.unwrap();
            feed.send_raw(garbage).await.unwrap();
            let refused = feed.next(PATIENCE).await.unwrap_or_else(|| panic!("[{backend}] {garbage}: no answer"));
            assert_eq!(refused["errors"][0]["extensions"]["code"], "VALIDATION", "[{backend}] {garbage}: {refused:#}");
            assert_eq!(feed.close_code(PATIENCE).await, Some(4400), "[{backend}] {garbage}");
        }
        // A plain GET is told it is a WebSocket, in JSON.
        let plain = app.client.get(format!("{}/live/counter-display", app.address)).send().await.unwrap();
        assert!(plain.status().is_client_error(), "[{backend}] {}", plain.status());
        let body: Value = plain.json().await.unwrap();
        assert!(body["error"].is_string() || body["message"].is_string(), "[{backend}] {body}");
        assert_eq!(app.event_count().await, before, "[{backend}] nothing appended");
        // The node still serves.
        let query = format!("query {{ counterDisplay(counterId: \"quay-1\", agencyCode: \"{AGENCY}\") {{ state }} }}");
        assert_eq!(app.graphql_ok(&admin, &query, json!({})).await["counterDisplay"]["state"], "ASSESSED");
    }
}
