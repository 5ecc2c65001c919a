//! The treasury in the State Treasury's own terms: the monthly declaration (01/PHLP), the
//! treasury report and the deposit vouchers (C1-02/NS) of a generated month agree to the đồng;
//! deadlines follow each fee's deposit schedule; bad budget codes are refused by name.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use feeledger_api::auth::Role;
use feeledger_domain::working_days::WorkingCalendar;
use feeledger_tests::traffic::{self, Plan};
use feeledger_tests::{TestApp, TestDatabase, spawn_app, spawn_each_backend};
use serde_json::{Value, json};

fn finance(app: &TestApp) -> String {
    app.token(Role::Finance, None, None)
}

fn dong(value: &Value) -> i64 {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a Vnd: {value}"))
}

const DECLARATION: &str = "query($a: String!, $m: String!) { feeDeclaration(agencyCode: $a, month: $m) { \
    form period collected retained payableToBudget balanced \
    rows { feeCode kind budgetSubItem collected retentionPercent retained payableToBudget caseCodes eventPositions } } }";

const TREASURY: &str = "query($a: String!, $f: Date!, $t: Date!) { treasuryReport(agencyCode: $a, from: $f, to: $t) { \
    collected retained payableToBudget remitted outstanding overdue balanced nextDeadline { dueOn amount overdue } \
    rows { feeCode kind collected retained payableToBudget remitted outstanding dueOn overdue } } }";

const REMIT: &str = "mutation($input: RemitInput!) { remitToTreasury(input: $input) { id amount cases voucherUrl } }";

const VOUCHER: &str = "query($id: ID!) { remittanceVoucher(remittanceId: $id) { voucherNumber amount amountInWords \
    cases lines { budgetChapter budgetSubItem period content amount } } }";

async fn treasury(app: &TestApp, agency: &str, from: &str, to: &str) -> Value {
    let data = app.graphql_ok(&finance(app), TREASURY, json!({ "a": agency, "f": from, "t": to })).await;
    data["treasuryReport"].clone()
}

/// Remits what is outstanding up to `up_to` and returns the voucher.
async fn remit(app: &TestApp, agency: &str, up_to: &str, number: &str) -> (Value, Value) {
    let owed = treasury(app, agency, "2026-01-01", up_to).await;
    let input = json!({ "agencyCode": agency, "upTo": up_to, "voucherNumber": number,
                        "amount": owed["outstanding"], "remittedOn": "2026-11-02" });
    let done = app.graphql_ok(&finance(app), REMIT, json!({ "input": input })).await;
    let remittance = done["remitToTreasury"].clone();
    let voucher = app.graphql_ok(&finance(app), VOUCHER, json!({ "id": remittance["id"] })).await;
    (remittance, voucher["remittanceVoucher"].clone())
}

#[tokio::test]
async fn the_declaration_the_treasury_report_and_the_vouchers_of_a_month_agree_to_the_dong() {
    for app in spawn_each_backend().await {
        let agency = "V01.1";
        let plan = Plan { agencies: vec![agency.into()], ..Plan::small() };
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();
        app.state.runner.caught_up("treasury", std::time::Duration::from_secs(30)).await.unwrap();
        let backend = app.backend();

        // 01/PHLP for October against the treasury report of October.
        let declaration = app.graphql_ok(&finance(&app), DECLARATION, json!({ "a": agency, "m": "2026-10" })).await;
        let declaration = &declaration["feeDeclaration"];
        assert_eq!((declaration["form"].as_str(), declaration["balanced"].as_bool()), (Some("01/PHLP"), Some(true)));
        let report = treasury(&app, agency, "2026-10-01", "2026-10-31").await;
        for column in ["collected", "retained", "payableToBudget"] {
            assert_eq!(dong(&declaration[column]), dong(&report[column]), "[{backend}] {column}");
        }
        assert_eq!(
            dong(&declaration["collected"]),
            generated.collected[0].1 - november_money(&app, agency).await,
            "[{backend}] the declaration holds October's money exactly"
        );
        let mut payable_per_sub_item: BTreeMap<String, i64> = BTreeMap::new();
        for row in declaration["rows"].as_array().unwrap() {
            assert_eq!(dong(&row["collected"]), dong(&row["retained"]) + dong(&row["payableToBudget"]));
            let expected_sub_item = if row["kind"] == "PHI" { "2716" } else { "2771" };
            assert_eq!(row["budgetSubItem"], expected_sub_item, "{row}");
            let rate: i64 = row["retentionPercent"].as_str().unwrap().parse().unwrap();
            assert_eq!(dong(&row["retained"]) * 100 / dong(&row["collected"]).max(1), rate, "{row}");
            // Drill-down: the cases and events behind the row.
            let cases = row["caseCodes"].as_array().unwrap();
            assert!(!cases.is_empty() && cases.iter().all(|c| c.as_str().unwrap().starts_with("V01.1-2610")), "{row}");
            assert!(row["eventPositions"].as_array().unwrap().len() >= cases.len());
            *payable_per_sub_item.entry(expected_sub_item.to_owned()).or_default() += dong(&row["payableToBudget"]);
        }
        // The report's rows per fee agree with the declaration's.
        for row in report["rows"].as_array().unwrap() {
            let declared: i64 = declaration["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["feeCode"] == row["feeCode"])
                .map(|d| dong(&d["payableToBudget"]))
                .sum();
            assert_eq!(declared, dong(&row["payableToBudget"]), "[{backend}] {row}");
        }

        // 02/PHLP settles the year's phí: October's and the late payments of November.
        let settlement = app
            .graphql_ok(
                &finance(&app),
                "query($a: String!) { feeSettlement(agencyCode: $a, year: 2026) { form payableToBudget rows { kind } } }",
                json!({ "a": agency }),
            )
            .await;
        let settlement = &settlement["feeSettlement"];
        assert_eq!(settlement["form"], "02/PHLP");
        assert!(settlement["rows"].as_array().unwrap().iter().all(|r| r["kind"] == "PHI"));
        let mut phi_payable = 0;
        for month in ["2026-10", "2026-11"] {
            let monthly = app.graphql_ok(&finance(&app), DECLARATION, json!({ "a": agency, "m": month })).await;
            phi_payable += monthly["feeDeclaration"]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["kind"] == "PHI")
                .map(|r| dong(&r["payableToBudget"]))
                .sum::<i64>();
        }
        assert_eq!(dong(&settlement["payableToBudget"]), phi_payable, "[{backend}] the year is its months");

        // Two deposits: the first half of the month, then the rest.
        let (first, first_voucher) = remit(&app, agency, "2026-10-15", "GNT-2026-101").await;
        let in_between = treasury(&app, agency, "2026-10-01", "2026-10-31").await;
        assert_eq!(
            dong(&declaration["payableToBudget"]),
            dong(&first["amount"]) + dong(&in_between["outstanding"]),
            "[{backend}] declared = deposited + still outstanding"
        );
        let (second, second_voucher) = remit(&app, agency, "2026-10-31", "GNT-2026-102").await;
        assert!(first["voucherUrl"].as_str().unwrap().starts_with("/reports/remittances/"));

        let mut deposited_per_sub_item: BTreeMap<String, i64> = BTreeMap::new();
        for (remittance, voucher) in [(&first, &first_voucher), (&second, &second_voucher)] {
            let lines = voucher["lines"].as_array().unwrap();
            let sum: i64 = lines.iter().map(|l| dong(&l["amount"])).sum();
            assert_eq!(sum, dong(&voucher["amount"]), "[{backend}] the voucher's lines add up: {voucher:#}");
            assert_eq!(sum, dong(&remittance["amount"]));
            assert!(voucher["amountInWords"].as_str().unwrap().ends_with("đồng"));
            for line in lines {
                assert_eq!((line["budgetChapter"].as_str(), line["period"].as_str()), (Some("800"), Some("2026-10")));
                *deposited_per_sub_item.entry(line["budgetSubItem"].as_str().unwrap().to_owned()).or_default() +=
                    dong(&line["amount"]);
            }
        }
        assert_eq!(deposited_per_sub_item, payable_per_sub_item, "[{backend}] per sub-item, to the đồng");
        let after = treasury(&app, agency, "2026-10-01", "2026-10-31").await;
        assert_eq!((after["outstanding"].as_str(), after["overdue"].as_str()), (Some("0"), Some("0")), "{after:#}");
        assert!(after["nextDeadline"].is_null() || after["nextDeadline"]["dueOn"].as_str() > Some("2026-10-31"));

        // The same figures in the files.
        let token = finance(&app);
        let csv = app
            .client
            .get(format!("{}/reports/declaration.csv?agency={agency}&month=2026-10&token={token}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), 200);
        let text = csv.text().await.unwrap();
        let total = text.lines().last().unwrap().split(',').collect::<Vec<_>>();
        assert_eq!(total[0], "Tổng cộng");
        assert_eq!(total[8], declaration["payableToBudget"].as_str().unwrap(), "[{backend}] {text}");
        let url = format!("{}{}", app.address, second["voucherUrl"].as_str().unwrap());
        let voucher_csv = app.client.get(format!("{url}.csv")).bearer_auth(&token).send().await.unwrap();
        let voucher_text = voucher_csv.text().await.unwrap();
        let total = voucher_text.lines().last().unwrap().rsplit(',').next().unwrap().to_owned();
        assert_eq!(total, second["amount"].as_str().unwrap());
        let xlsx = app.client.get(format!("{url}.xlsx")).bearer_auth(&token).send().await.unwrap();
        assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"));
        let page = app.client.get(format!("{url}?token={token}")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("C1-02/NS") && html.contains("GNT-2026-102") && html.contains("0108888888"));
        let officer = app.token(Role::Officer, Some(agency), None);
        let refused = app.client.get(&url).bearer_auth(officer).send().await.unwrap();
        assert_eq!(refused.status(), 403);
        let other = app.token(Role::Finance, Some("X09.9"), None);
        let refused = app.client.get(&url).bearer_auth(other).send().await.unwrap();
        assert_eq!(refused.status(), 403, "another agency's finance staff");
    }
}

/// What the generator collected after October (late payments), from the November report.
async fn november_money(app: &TestApp, agency: &str) -> i64 {
    dong(&treasury(app, agency, "2026-11-01", "2026-12-31").await["collected"])
}

#[tokio::test]
async fn each_fee_is_due_by_its_own_schedule_in_working_days() {
    let app = spawn_app(TestDatabase::sqlite()).await;
    let agency = "W01.1";
    let plan = Plan { agencies: vec![agency.into()], days: 10, ..Plan::small() };
    traffic::generate(&app.state.ledger, &plan).await.unwrap();
    let report = treasury(&app, agency, "2026-10-01", "2026-10-31").await;
    let calendar = WorkingCalendar::vietnam();
    let mut earliest: Option<String> = None;
    for row in report["rows"].as_array().unwrap() {
        let due: NaiveDate = row["dueOn"].as_str().unwrap().parse().unwrap();
        assert!(calendar.is_working_day(due), "{row}");
        if row["kind"] == "PHI" {
            // Weekly on Monday (moved only by a holiday; none in October 2026).
            assert_eq!(due.weekday(), Weekday::Mon, "{row}");
        } else {
            // Daily: the working day after the first collection day.
            assert!(due <= NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(), "{row}");
        }
        if past_october() {
            assert_eq!(row["overdue"], row["outstanding"], "everything in October is past its deadline: {row}");
        }
        let due = row["dueOn"].as_str().unwrap().to_owned();
        earliest = Some(earliest.map_or(due.clone(), |e| e.min(due)));
    }
    assert_eq!(report["nextDeadline"]["dueOn"].as_str(), earliest.as_deref());
    assert_eq!(report["nextDeadline"]["overdue"].as_bool(), Some(past_october()));
}

/// Whether the generated month's deadlines are behind us (the test clock is the system's).
fn past_october() -> bool {
    chrono::Utc::now().date_naive() > NaiveDate::from_ymd_opt(2026, 10, 31).unwrap_or_default()
}

#[tokio::test]
async fn bad_budget_codes_are_refused_by_field_name_and_nothing_is_recorded() {
    let app = spawn_app(TestDatabase::sqlite()).await;
    app.configure_agency("B01.1").await;
    let admin = app.admin();
    let configure = "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code taxCode } }";
    let agency = |extra: Value| {
        let mut input = json!({ "code": "B01.1", "name": "UBND B01.1", "bankBin": "970415",
            "accountNumber": "113366668888", "accountName": "UBND", "retainsFees": true, "counters": ["quay-1", "quay-2"] });
        input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({ "input": input })
    };
    for (field, extra) in [
        ("taxCode", json!({ "taxCode": "0108888889" })),
        ("taxCode", json!({ "taxCode": "0108888888-000" })),
        ("budgetChapter", json!({ "budgetChapter": "80" })),
        ("adminAreaCode", json!({ "adminAreaCode": "0004" })),
        ("treasuryCode", json!({ "treasuryCode": "11" })),
        ("treasuryAccount", json!({ "treasuryAccount": "35-11" })),
        ("taxOfficeCode", json!({ "taxOfficeCode": "10A" })),
    ] {
        let body = app.graphql(Some(&admin), configure, agency(extra.clone())).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION", "{extra}: {body:#}");
        assert!(body["errors"][0]["message"].as_str().unwrap().starts_with(field), "{extra}: {body:#}");
    }
    let good =
        app.graphql_ok(&admin, configure, agency(json!({ "taxCode": "0108888888-001", "budgetChapter": "800" }))).await;
    assert_eq!(good["configureAgency"]["taxCode"], "0108888888-001");

    let publish = "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }";
    let schedule = |rule: Value| {
        let mut fee = json!({ "feeCode": "P-SAOY", "name": "Phí", "kind": "PHI", "unitAmount": "1000", "retentionPercent": "90" });
        fee.as_object_mut().unwrap().extend(rule.as_object().unwrap().clone());
        json!({ "input": { "agencyCode": "B01.1", "effectiveFrom": "2025-01-01", "fees": [fee] } })
    };
    for (field, rule) in [
        ("budgetSubItem", json!({ "budgetSubItem": "271" })),
        ("budgetSubItem", json!({ "budgetSubItem": "27160" })),
        ("depositSchedule", json!({ "depositSchedule": { "kind": "WEEKLY" } })),
        ("depositSchedule", json!({ "depositSchedule": { "kind": "MONTHLY", "dayOfMonth": 32 } })),
        ("depositSchedule", json!({ "depositSchedule": { "kind": "DAILY", "weekday": "MONDAY" } })),
    ] {
        let body = app.graphql(Some(&admin), publish, schedule(rule.clone())).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION", "{rule}: {body:#}");
        assert!(body["errors"][0]["message"].as_str().unwrap().starts_with(field), "{rule}: {body:#}");
    }
    let unknown_kind =
        app.graphql(Some(&admin), publish, schedule(json!({ "depositSchedule": { "kind": "YEARLY" } }))).await;
    assert_eq!(unknown_kind["errors"][0]["extensions"]["code"], "VALIDATION", "{unknown_kind:#}");

    let versions = app
        .graphql_ok(
            &admin,
            "{ feeSchedules(agencyCode: \"B01.1\") { version fees { budgetSubItem depositSchedule { kind } } } }",
            json!({}),
        )
        .await;
    assert_eq!(versions["feeSchedules"].as_array().unwrap().len(), 1, "no rejected version was recorded");
    let monthly = json!({ "budgetSubItem": "2716", "depositSchedule": { "kind": "MONTHLY", "dayOfMonth": 10 } });
    app.graphql_ok(&admin, publish, schedule(monthly)).await;
    let versions = app
        .graphql_ok(
            &admin,
            "{ feeSchedules(agencyCode: \"B01.1\") { fees { budgetSubItem depositSchedule { kind dayOfMonth } } } }",
            json!({}),
        )
        .await;
    let newest = &versions["feeSchedules"][1]["fees"][0];
    assert_eq!(newest["budgetSubItem"], "2716");
    assert_eq!(newest["depositSchedule"], json!({ "kind": "MONTHLY", "dayOfMonth": 10 }));
    // An agency configured without budget codes says so rather than inventing any.
    let old = app.graphql_ok(&admin, "{ agency(code: \"B01.1\") { treasuryCode adminAreaCode } }", json!({})).await;
    assert_eq!(old["agency"], json!({ "treasuryCode": null, "adminAreaCode": null }));
}
