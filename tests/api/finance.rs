//! What finance trusts: a generated month of traffic reconciled day by day, the treasury report
//! and remittance, the cashless rate, receipts numbered without gaps, exports, and a rebuild
//! after a rule change while payments keep arriving.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Duration as Days;
use feeledger_api::auth::Role;
use feeledger_domain::case_fees::{AssessFees, Command, FeeLineRequest, PaymentChannel, RecordPayment};
use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
use feeledger_domain::money::Vnd;
use feeledger_domain::payer::Payer;
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::storage::EventMetadata;
use feeledger_tests::traffic::{self, Generated, Plan};
use feeledger_tests::ws::Subscription;
use feeledger_tests::{TestApp, spawn_each_backend};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

fn finance(app: &TestApp) -> String {
    app.token(Role::Finance, None, None)
}

async fn import_statements(app: &TestApp, generated: &Generated) {
    for (_, account, lines) in &generated.statements {
        let csv = traffic::statement_csv(account, lines);
        let query = "mutation($input: StatementInput!) { importBankStatement(input: $input) { accountNumber lines inserted alreadyKnown } }";
        let first = app.graphql_ok(&finance(app), query, json!({ "input": { "format": "CSV", "content": csv } })).await;
        assert_eq!(first["importBankStatement"]["inserted"], json!(lines.len()), "[{}]", app.backend());
        let again = app.graphql_ok(&finance(app), query, json!({ "input": { "format": "CSV", "content": csv } })).await;
        assert_eq!(again["importBankStatement"]["inserted"], 0, "re-importing the same file changes nothing");
        assert_eq!(again["importBankStatement"]["alreadyKnown"], json!(lines.len()));
    }
}

const RECONCILE: &str = "mutation($a: String!, $d: Date!) { reconcileDay(agencyCode: $a, date: $d) { \
    ledgerTotal bankTotal matchedCount matchedTotal balanced ledgerExceptionsTotal bankExceptionsTotal \
    exceptions { kind side amount reference statementLineId ageDays } perChannel { channel count total } } }";

fn dong(value: &Value) -> i64 {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a Vnd: {value}"))
}

#[tokio::test]
async fn a_generated_month_reconciles_balances_remits_and_counts_exactly() {
    for app in spawn_each_backend().await {
        let plan = Plan::small();
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
        import_statements(&app, &generated).await;

        for (agency, _, _) in &generated.statements {
            // Reconcile every day of the month (and the day after, for late-evening transfers).
            let mut ledger_sum = 0;
            let mut seen: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
            for day in 0..=plan.days {
                let date = plan.month + Days::days(i64::from(day));
                let data = app
                    .graphql_ok(&finance(&app), RECONCILE, json!({ "a": agency.as_str(), "d": date.to_string() }))
                    .await;
                let report = &data["reconcileDay"];
                assert_eq!(report["balanced"], true, "[{}] {agency} {date}: {report:#}", app.backend());
                assert_eq!(
                    dong(&report["ledgerTotal"]),
                    dong(&report["matchedTotal"]) + dong(&report["ledgerExceptionsTotal"])
                );
                assert_eq!(
                    dong(&report["bankTotal"]),
                    dong(&report["matchedTotal"]) + dong(&report["bankExceptionsTotal"])
                );
                ledger_sum += dong(&report["ledgerTotal"]);
                for e in report["exceptions"].as_array().unwrap() {
                    let key = (e["kind"].as_str().unwrap().to_owned(), e["side"].as_str().unwrap().to_owned());
                    let id = e["statementLineId"].as_str().or(e["reference"].as_str()).unwrap_or_default().to_owned();
                    seen.entry(key).or_default().insert(id);
                }
            }
            let online = generated.online_received.iter().find(|(a, _)| a == agency).unwrap().1;
            assert_eq!(
                ledger_sum,
                online,
                "[{}] every transfer of the month is on the ledger side once",
                app.backend()
            );
            // Every defect put into the statement shows up as the right exception.
            for (tampered_agency, kind, line_id) in &generated.tampering {
                if tampered_agency != agency {
                    continue;
                }
                let found = |k: &str, side: &str| {
                    seen.get(&(k.to_owned(), side.to_owned())).is_some_and(|ids| ids.contains(line_id))
                };
                match *kind {
                    "dropped" => {
                        assert!(found("LEDGER_ONLY", "LEDGER"), "{line_id} missing from the statement: {seen:?}")
                    }
                    "extra" => assert!(found("BANK_ONLY", "BANK"), "{line_id} unknown to the ledger: {seen:?}"),
                    "altered" => assert!(found("AMOUNT_MISMATCH", "BANK"), "{line_id} altered: {seen:?}"),
                    "repeated" => assert!(found("DUPLICATE", "BANK"), "{line_id} repeated: {seen:?}"),
                    other => panic!("unknown tampering {other}"),
                }
            }

            // The treasury report of the month balances to the đồng and covers every fee collected.
            let from = plan.month.to_string();
            let to = (plan.month + Days::days(i64::from(plan.days) - 1)).to_string();
            let query = "query($a: String!, $f: Date!, $t: Date!) { treasuryReport(agencyCode: $a, from: $f, to: $t) { \
                collected retained payableToBudget remitted outstanding balanced \
                rows { feeCode kind collected retained payableToBudget remitted outstanding } oldestUnremitted { dueOn } } }";
            let report =
                app.graphql_ok(&finance(&app), query, json!({ "a": agency.as_str(), "f": from, "t": to })).await;
            let report = &report["treasuryReport"];
            assert_eq!(report["balanced"], true, "[{}] {report:#}", app.backend());
            let collected = generated.collected.iter().find(|(a, _)| a == agency).unwrap().1;
            assert_eq!(dong(&report["collected"]), collected, "every đồng collected for fees, overpayments excluded");
            for row in report["rows"].as_array().unwrap() {
                assert_eq!(dong(&row["collected"]), dong(&row["retained"]) + dong(&row["payableToBudget"]));
                if row["kind"] == "LE_PHI" {
                    assert_eq!(row["retained"], "0", "lệ phí goes wholly to the budget");
                }
                if row["feeCode"] == "P-SAOY" {
                    assert_eq!(dong(&row["retained"]) * 100, dong(&row["collected"]) * 90, "90% retained: {row}");
                }
            }
            assert!(report["oldestUnremitted"]["dueOn"].is_string());

            // Remitting: a wrong amount is refused; the right one clears what is payable.
            let outstanding = dong(&report["outstanding"]);
            let remit =
                "mutation($input: RemitInput!) { remitToTreasury(input: $input) { voucherNumber amount cases } }";
            let wrong = app
                .graphql(Some(&finance(&app)), remit, json!({ "input": { "agencyCode": agency.as_str(), "upTo": to, "voucherNumber": "GNT-01", "amount": (outstanding + 1).to_string() } }))
                .await;
            assert_eq!(wrong["errors"][0]["extensions"]["code"], "VALIDATION", "{wrong:#}");
            let done = app
                .graphql_ok(&finance(&app), remit, json!({ "input": { "agencyCode": agency.as_str(), "upTo": to, "voucherNumber": "GNT-01", "amount": outstanding.to_string() } }))
                .await;
            assert!(done["remitToTreasury"]["cases"].as_i64().unwrap() > 0);
            let after = app
                .graphql_ok(
                    &finance(&app),
                    query,
                    json!({ "a": agency.as_str(), "f": plan.month.to_string(), "t": to }),
                )
                .await;
            let after = &after["treasuryReport"];
            assert_eq!(after["outstanding"], "0", "[{}] {after:#}", app.backend());
            assert_eq!(after["remitted"], after["payableToBudget"]);
            assert_eq!(after["balanced"], true);

            // The cashless rate counts the cases paid in full without cash, and online.
            let (_, cases, cashless, online) = generated.cashless.iter().find(|(a, ..)| a == agency).unwrap();
            let rate = app
                .graphql_ok(&finance(&app), "query($a: String!) { cashlessRate(agencyCode: $a, month: \"2026-10\") { cases cashless online rate target } }", json!({ "a": agency.as_str() }))
                .await;
            let rate = &rate["cashlessRate"];
            assert_eq!(
                (rate["cases"].as_u64(), rate["cashless"].as_u64(), rate["online"].as_u64()),
                (Some(u64::from(*cases)), Some(u64::from(*cashless)), Some(u64::from(*online)))
            );
            let expected = rust_decimal::Decimal::from(*cashless * 100) / rust_decimal::Decimal::from(*cases);
            assert_eq!(
                rate["rate"],
                format!(
                    "{:.2}",
                    expected.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                )
            );
        }
    }
}

#[tokio::test]
async fn receipts_are_numbered_without_gaps_or_duplicates_even_when_issued_at_once() {
    for app in spawn_each_backend().await {
        let plan = Plan { agencies: vec!["R01.1".into()], days: 8, cases_per_day: 3, ..Plan::small() };
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
        let paid: Vec<CaseCode> = generated.paid_in_full.clone();
        assert!(paid.len() >= 10, "enough paid cases: {}", paid.len());
        let officer = app.token(Role::Officer, Some("R01.1"), None);
        let query = "mutation($c: String!) { issueReceipt(caseCode: $c) { id number serial templateSymbol amount amountInWords url } }";
        let issued = futures::future::join_all(paid.iter().map(|code| {
            let (app, officer) = (&app, &officer);
            async move { app.graphql_ok(officer, query, json!({ "c": code.as_str() })).await }
        }))
        .await;
        let mut numbers: Vec<i64> = issued.iter().map(|r| r["issueReceipt"]["number"].as_i64().unwrap()).collect();
        numbers.sort_unstable();
        let expected: Vec<i64> = (1..=i64::try_from(paid.len()).unwrap()).collect();
        assert_eq!(numbers, expected, "[{}] 1..N, no gap, no duplicate", app.backend());
        let first = &issued[0]["issueReceipt"];
        assert_eq!(first["templateSymbol"], "01BLP0-001");
        assert!(first["amountInWords"].as_str().unwrap().ends_with("đồng"));

        // A receipt twice for one case, or for an unpaid case, is refused.
        let again = app.graphql(Some(&officer), query, json!({ "c": paid[0].as_str() })).await;
        assert_eq!(again["errors"][0]["extensions"]["code"], "CONFLICT");
        let unpaid = generated.cases.iter().find(|c| !paid.contains(c)).unwrap();
        let refused = app.graphql(Some(&officer), query, json!({ "c": unpaid.as_str() })).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "CONFLICT", "{refused:#}");

        // Cancel and replace: a new number, the old one counted as cancelled.
        let before_cancel = chrono::Utc::now().to_rfc3339();
        let receipt_id = first["id"].as_str().unwrap();
        let cancel = app
            .graphql_ok(&officer, "mutation($id: ID!) { cancelReceipt(receiptId: $id, reason: \"sai tên người nộp\") { cancelled number } }", json!({ "id": receipt_id }))
            .await;
        assert_eq!(cancel["cancelReceipt"]["cancelled"], true);
        // The case's history shows its receipts as they were at each instant.
        let history = "query($c: String!, $t: DateTime) { caseHistory(code: $c, asOf: $t) { state { receipts { number cancelled } } } }";
        let now = app.graphql_ok(&officer, history, json!({ "c": paid[0].as_str(), "t": null })).await;
        assert_eq!(now["caseHistory"]["state"]["receipts"][0]["cancelled"], true, "{now:#}");
        let then = app.graphql_ok(&officer, history, json!({ "c": paid[0].as_str(), "t": before_cancel })).await;
        assert_eq!(then["caseHistory"]["state"]["receipts"][0]["cancelled"], false, "{then:#}");
        assert_eq!(then["caseHistory"]["state"]["receipts"][0]["number"], first["number"]);
        let page = app.client.get(format!("{}{}", app.address, first["url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("ĐÃ HỦY") && html.contains("sai tên người nộp"),
            "the printable receipt shows the cancellation"
        );

        let from = plan.month.to_string();
        let usage = app
            .graphql_ok(
                &finance(&app),
                "query($f: Date!, $t: Date!) { receiptUsage(agencyCode: \"R01.1\", from: $f, to: $t) { serial used cancelled firstNumber lastNumber total } }",
                json!({ "f": from, "t": "2030-12-31" }),
            )
            .await;
        let usage = &usage["receiptUsage"][0];
        assert_eq!(usage["used"].as_u64(), Some(paid.len() as u64), "[{}] {usage:#}", app.backend());
        assert_eq!(usage["cancelled"], 1);
        assert_eq!(usage["firstNumber"], 1);
    }
}

#[tokio::test]
async fn a_corrected_retention_rate_and_a_rebuild_under_load_give_the_new_numbers_and_lose_nothing() {
    for app in spawn_each_backend().await {
        let plan = Plan { agencies: vec!["U01.1".into()], days: 10, cases_per_day: 3, ..Plan::small() };
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
        let query = "query { treasuryReport(agencyCode: \"U01.1\", from: \"2026-01-01\", to: \"2027-12-31\") { collected balanced rows { feeCode collected retained } } }";
        let before = app.graphql_ok(&finance(&app), query, json!({})).await;
        assert_eq!(dong(&before["treasuryReport"]["collected"]), generated.collected[0].1);

        // The province corrects the retention of P-SAOY from 90% to 80%, effective the same day.
        let fees: Vec<Value> = traffic::FEES
            .iter()
            .map(|(code, name, kind, amount, retention)| {
                let retention = if *code == "P-SAOY" { "80" } else { retention };
                let kind = if matches!(kind, feeledger_domain::fee_schedule::FeeKind::Phi) { "PHI" } else { "LE_PHI" };
                json!({ "feeCode": code, "name": name, "kind": kind, "unitAmount": amount.to_string(), "retentionPercent": retention })
            })
            .collect();
        app.graphql_ok(
            &app.admin(),
            "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }",
            json!({ "input": { "agencyCode": "U01.1", "effectiveFrom": "2026-01-01", "fees": fees } }),
        )
        .await;

        // Watch the rebuild's progress, then start it while payments keep arriving.
        let mut progress = Subscription::start(
            &app.address,
            &app.admin(),
            "subscription { projectionProgress(name: \"treasury\") { generation rebuilding progress { done total finished } } }",
            json!({}),
        )
        .await;
        progress.next(PATIENCE).await.expect("the current status first");
        let ledger = app.state.ledger.clone();
        let load = tokio::spawn(async move { keep_paying(&ledger, 20).await });
        let started = app
            .graphql_ok(
                &app.admin(),
                "mutation { rebuildProjection(name: \"treasury\") { name generation rebuilding } }",
                json!({}),
            )
            .await;
        // A small log may be rebuilt and swapped in before the mutation reads the status back.
        let started = &started["rebuildProjection"];
        assert!(started["rebuilding"] == true || started["generation"].as_i64() >= Some(2), "{started:#}");
        let finished =
            progress.until(PATIENCE, |p| p["data"]["projectionProgress"]["progress"]["finished"] == true).await;
        assert!(finished["data"]["projectionProgress"]["generation"].as_i64().unwrap() >= 2, "{finished:#}");
        let extra_collected = load.await.unwrap();

        // Nothing lost: every payment before and during the rebuild is there, split by the new rule.
        app.state.runner.caught_up("treasury", PATIENCE).await.unwrap();
        let after = app.graphql_ok(&finance(&app), query, json!({})).await;
        let after = &after["treasuryReport"];
        assert_eq!(dong(&after["collected"]), generated.collected[0].1 + extra_collected, "[{}]", app.backend());
        assert_eq!(after["balanced"], true);
        let saoy = after["rows"].as_array().unwrap().iter().find(|r| r["feeCode"] == "P-SAOY").unwrap();
        assert_eq!(dong(&saoy["retained"]) * 100, dong(&saoy["collected"]) * 80, "the corrected 80% applies: {saoy}");
        let statuses =
            app.graphql_ok(&app.admin(), "{ projections { name generation rebuilding lag } }", json!({})).await;
        let treasury = statuses["projections"].as_array().unwrap().iter().find(|p| p["name"] == "treasury").unwrap();
        assert_eq!(treasury["rebuilding"], false);
    }
}

/// Assesses and pays `count` new cases of agency U01.1 (P-SAOY × 2, by transfer); returns Σ paid.
async fn keep_paying(ledger: &feeledger_infrastructure::ledger::Ledger, count: u32) -> i64 {
    let agency = AgencyCode::parse("U01.1").unwrap();
    let metadata = EventMetadata::default();
    let mut total = 0;
    for n in 0..count {
        let now = chrono::Utc::now();
        let code =
            CaseCode::parse(&format!("U01.1-{}-{:04}", vietnam_time::date_of(now).format("%y%m%d"), 5000 + n)).unwrap();
        let schedule = ledger.schedule_in_force(&agency, now).await.unwrap();
        ledger
            .execute(
                &code,
                Command::AssessFees(AssessFees {
                    case_code: code.clone(),
                    agency_code: agency.clone(),
                    procedure_name: "x".into(),
                    payer: Payer::new("A", None).unwrap(),
                    lines: vec![FeeLineRequest { fee_code: FeeCode::parse("P-SAOY").unwrap(), quantity: 2 }],
                    schedule,
                    counter_id: None,
                    now,
                    procedure_code: None,
                }),
                &metadata,
                None,
            )
            .await
            .unwrap();
        ledger
            .execute(
                &code,
                Command::RecordPayment(RecordPayment {
                    payment_id: uuid::Uuid::now_v7(),
                    idempotency_key: format!("load-{n}"),
                    amount: Vnd::new(4000).unwrap(),
                    channel: PaymentChannel::Vietqr,
                    reference: code.to_string(),
                    provider: None,
                    bank_reference: None,
                    qr_id: None,
                    payer_account: None,
                    received_at: now,
                }),
                &metadata,
                None,
            )
            .await
            .unwrap();
        total += 4000;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    total
}

#[tokio::test]
async fn the_reports_download_as_csv_and_xlsx_for_finance_and_not_for_officers() {
    for app in spawn_each_backend().await {
        let plan = Plan { agencies: vec!["E01.1".into()], days: 3, cases_per_day: 3, ..Plan::small() };
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
        import_statements(&app, &generated).await;
        app.state.runner.caught_up("treasury", PATIENCE).await.unwrap();
        let token = finance(&app);
        let base = &app.address;
        let treasury_csv = app
            .client
            .get(format!("{base}/reports/treasury.csv?agency=E01.1&from=2026-10-01&to=2026-10-31"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(treasury_csv.status(), 200, "[{}]", app.backend());
        assert!(treasury_csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let bytes = treasury_csv.bytes().await.unwrap();
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "a BOM so Excel reads Vietnamese");
        assert!(String::from_utf8_lossy(&bytes).contains("Tổng cộng"));

        let xlsx = app
            .client
            .get(format!("{base}/reports/reconciliation.xlsx?agency=E01.1&date=2026-10-02&token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(xlsx.status(), 200);
        assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"), "an XLSX is a zip");

        let officer = app.token(Role::Officer, Some("E01.1"), None);
        let refused = app
            .client
            .get(format!("{base}/reports/treasury.xlsx?agency=E01.1&from=2026-10-01&to=2026-10-31"))
            .bearer_auth(officer)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
        let anonymous = app
            .client
            .get(format!("{base}/reports/treasury.csv?agency=E01.1&from=2026-10-01&to=2026-10-31"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
    }
}
