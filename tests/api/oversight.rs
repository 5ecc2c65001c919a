//! Province oversight on a generated province (57 agencies on four levels, three months of
//! traffic and a month a year earlier): the league table's counts and rates equal the counts of
//! the underlying cases; targets are effective-dated events; the hierarchy is effective-dated;
//! an oversight token reads the aggregates of its subtree and nothing else; the CSV and XLSX
//! say what the table says.

use std::collections::BTreeMap;

use feeledger_api::auth::Role;
use feeledger_domain::oversight::{AgencyLevel, Counts};
use feeledger_infrastructure::storage::EventMetadata;
use feeledger_tests::province::{self, ProvincePlan, ROOT};
use feeledger_tests::{TestApp, spawn_each_backend};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

const LEAGUE: &str = "query($root: String!, $month: String!, $level: AgencyLevel) {
    leagueTable(rootAgencyCode: $root, month: $month, level: $level) {
        rootAgencyCode period
        rows { agencyCode name level parentCode cases cashless online cashlessRate onlineRate target onlineTarget
               targetEffectiveFrom cashlessMet onlineMet met rank previousCases lastYearCases
               cashlessChangeVsPrevious cashlessChangeVsLastYear }
        totals { level agencies cases cashless online cashlessRate onlineRate target met notMet }
    } }";

const SET_TARGET: &str =
    "mutation($input: TargetInput!) { setTarget(input: $input) { level effectiveFrom cashlessPercent onlinePercent } }";

fn expected_rate(part: u32, cases: u32) -> Value {
    if cases == 0 {
        return Value::Null;
    }
    let rate = (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(cases))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    json!(format!("{rate:.2}"))
}

/// `part / cases >= target %`, exactly, by integers: part × 100 × 100 ≥ target × 100 × cases.
fn reaches(part: u32, cases: u32, target_text: &str) -> bool {
    let target: Decimal = target_text.parse().unwrap();
    let hundredths = (target * Decimal::ONE_HUNDRED).trunc().to_string().parse::<u64>().unwrap();
    cases > 0 && u64::from(part) * 10_000 >= hundredths * u64::from(cases)
}

async fn set_target(app: &TestApp, level: &str, from: &str, cashless: &str, online: &str) {
    let input = json!({ "input": { "level": level, "effectiveFrom": from, "cashlessPercent": cashless, "onlinePercent": online } });
    app.graphql_ok(&app.admin(), SET_TARGET, input).await;
}

async fn league(app: &TestApp, token: &str, root: &str, month: &str) -> Value {
    app.graphql_ok(token, LEAGUE, json!({ "root": root, "month": month })).await["leagueTable"].clone()
}

fn rows_by_code(table: &Value) -> BTreeMap<String, Value> {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["agencyCode"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[tokio::test]
async fn the_league_table_of_a_generated_province_equals_the_counts_of_its_cases() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let plan = ProvincePlan::standard();
        let started = std::time::Instant::now();
        let generated = province::generate(&app.state.ledger, &plan).await.unwrap();
        eprintln!(
            "[{backend}] generated {} agencies, {} cases ({} paid) in {:?}",
            generated.agencies.len(),
            generated.cases,
            generated.paid_cases.len(),
            started.elapsed()
        );
        assert_eq!(generated.agencies.len(), 57);
        // The Bắc Giang shape: departments and districts 80% then 100%, communes 70% then 100%.
        for level in ["DEPARTMENT", "DISTRICT"] {
            set_target(&app, level, "2026-08", "80", "30").await;
            set_target(&app, level, "2026-10", "100", "30").await;
        }
        set_target(&app, "COMMUNE", "2026-08", "70", "30").await;
        set_target(&app, "COMMUNE", "2026-10", "100", "30").await;
        let admin = app.admin();
        let started = std::time::Instant::now();
        league(&app, &admin, ROOT, "2026-10").await;
        eprintln!("[{backend}] leagueTable of 57 agencies over HTTP in {:?}", started.elapsed());
        let mut checked_cases = 0;
        for month in ["2026-08", "2026-09", "2026-10"] {
            let table = league(&app, &admin, ROOT, month).await;
            assert_eq!(table["period"], month);
            let rows = rows_by_code(&table);
            assert_eq!(rows.len(), 57, "[{backend}] every agency of the province has a row");
            let previous = match month {
                "2026-08" => "2026-07",
                "2026-09" => "2026-08",
                _ => "2026-09",
            };
            let mut level_sums: BTreeMap<String, Counts> = BTreeMap::new();
            for (code, level, parent) in &generated.agencies {
                let row = &rows[code.as_str()];
                let c = generated.counts_of(code.as_str(), month);
                let what = format!("[{backend}] {code} in {month}");
                assert_eq!(row["level"], json!(level.as_str()), "{what}");
                assert_eq!(row["parentCode"], json!(parent.as_ref().map(ToString::to_string)), "{what}");
                assert_eq!(
                    (row["cases"].as_u64(), row["cashless"].as_u64(), row["online"].as_u64()),
                    (Some(u64::from(c.cases)), Some(u64::from(c.cashless)), Some(u64::from(c.online))),
                    "{what}"
                );
                assert_eq!(row["cashlessRate"], expected_rate(c.cashless, c.cases), "{what}");
                assert_eq!(row["onlineRate"], expected_rate(c.online, c.cases), "{what}");
                assert_eq!(
                    row["previousCases"].as_u64(),
                    Some(u64::from(generated.counts_of(code.as_str(), previous).cases)),
                    "{what}"
                );
                let a_year_before = format!("{}-{}", 2025, &month[5..]);
                assert_eq!(
                    row["lastYearCases"].as_u64(),
                    Some(u64::from(generated.counts_of(code.as_str(), &a_year_before).cases)),
                    "{what}"
                );
                if *level == AgencyLevel::Province {
                    assert_eq!(row["met"], Value::Null, "{what}: no target is set for the province itself");
                    assert_eq!(row["target"], Value::Null, "{what}");
                } else {
                    let target = match (level, month) {
                        (_, "2026-10") => "100.00",
                        (AgencyLevel::Commune, _) => "70.00",
                        _ => "80.00",
                    };
                    assert_eq!(row["target"], json!(target), "{what}");
                    let met =
                        (c.cases > 0).then(|| reaches(c.cashless, c.cases, target) && reaches(c.online, c.cases, "30"));
                    assert_eq!(row["met"], json!(met), "{what}");
                }
                let sums = level_sums.entry(level.as_str().to_owned()).or_default();
                *sums = sums.plus(c);
                checked_cases += c.cases;
            }
            // Ranks: within a level, a better cashless rate (exact) never ranks after a worse one.
            for a in rows.values() {
                for b in rows.values().filter(|b| b["level"] == a["level"]) {
                    let (ca, pa) = (a["cases"].as_u64().unwrap().max(1), a["cashless"].as_u64().unwrap());
                    let (cb, pb) = (b["cases"].as_u64().unwrap().max(1), b["cashless"].as_u64().unwrap());
                    if pa * cb > pb * ca {
                        assert!(a["rank"].as_u64() < b["rank"].as_u64(), "[{backend}] {month}: {a} ranks after {b}");
                    }
                }
            }
            for total in table["totals"].as_array().unwrap() {
                let sums = level_sums[total["level"].as_str().unwrap()];
                assert_eq!(total["cases"].as_u64(), Some(u64::from(sums.cases)), "[{backend}] {month} {total}");
                assert_eq!(total["cashless"].as_u64(), Some(u64::from(sums.cashless)));
                assert_eq!(total["online"].as_u64(), Some(u64::from(sums.online)));
                assert_eq!(total["cashlessRate"], expected_rate(sums.cashless, sums.cases));
            }
        }
        assert!(checked_cases > 300, "[{backend}] the province paid {checked_cases} cases in three months");

        // The change against the previous month is the difference of the two rates.
        let october = rows_by_code(&league(&app, &admin, ROOT, "2026-10").await);
        let september = rows_by_code(&league(&app, &admin, ROOT, "2026-09").await);
        for (code, row) in &october {
            let (now, before) = (&row["cashlessRate"], &september[code]["cashlessRate"]);
            let expected = match (now.as_str(), before.as_str()) {
                (Some(n), Some(b)) => {
                    json!(format!("{:.2}", n.parse::<Decimal>().unwrap() - b.parse::<Decimal>().unwrap()))
                }
                _ => Value::Null,
            };
            assert_eq!(row["cashlessChangeVsPrevious"], expected, "[{backend}] {code}");
        }

        // A quarter sums its months: Q3 2026 is July (no traffic), August and September.
        let quarter = app
            .graphql_ok(&admin, "query { leagueQuarter(rootAgencyCode: \"P01\", quarter: \"2026-Q3\") { period rows { agencyCode cases cashless } } }", json!({}))
            .await;
        assert_eq!(quarter["leagueQuarter"]["period"], "2026-Q3");
        for row in quarter["leagueQuarter"]["rows"].as_array().unwrap() {
            let code = row["agencyCode"].as_str().unwrap();
            let sum = generated.counts_of(code, "2026-08").plus(generated.counts_of(code, "2026-09"));
            assert_eq!(row["cases"].as_u64(), Some(u64::from(sum.cases)), "[{backend}] Q3 {code}");
            assert_eq!(row["cashless"].as_u64(), Some(u64::from(sum.cashless)), "[{backend}] Q3 {code}");
        }

        // One level only, and a subtree: a district and its communes.
        let communes =
            app.graphql_ok(&admin, LEAGUE, json!({ "root": ROOT, "month": "2026-09", "level": "COMMUNE" })).await;
        assert_eq!(communes["leagueTable"]["rows"].as_array().unwrap().len(), 45);
        let district = rows_by_code(&league(&app, &admin, "P01.H02", "2026-09").await);
        assert_eq!(district.len(), 10, "[{backend}] a district and its nine communes");
        assert!(district.keys().all(|c| c.starts_with("P01.H02")));
    }
}

#[tokio::test]
async fn a_target_change_is_an_event_and_earlier_months_keep_the_target_then_in_force() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let ledger = &app.state.ledger;
        let meta = EventMetadata::default();
        let code = |c: &str| feeledger_domain::codes::AgencyCode::parse(c).unwrap();
        province::configure_placed(
            ledger,
            &code("Q9"),
            "UBND tỉnh Q9".into(),
            AgencyLevel::Province,
            None,
            "190300000001",
            &meta,
        )
        .await
        .unwrap();
        province::configure_placed(
            ledger,
            &code("Q9.H1"),
            "UBND huyện H1".into(),
            AgencyLevel::District,
            Some(code("Q9")),
            "190300000002",
            &meta,
        )
        .await
        .unwrap();
        province::configure_placed(
            ledger,
            &code("Q9.H1.X1"),
            "UBND xã X1".into(),
            AgencyLevel::Commune,
            Some(code("Q9.H1")),
            "190300000003",
            &meta,
        )
        .await
        .unwrap();
        set_target(&app, "COMMUNE", "2022-10", "70", "30").await;
        set_target(&app, "COMMUNE", "2022-11", "100", "30").await;
        let before = app.event_count().await;
        set_target(&app, "COMMUNE", "2022-11", "100", "30").await;
        assert_eq!(app.event_count().await, before, "[{backend}] the same target again appends nothing");
        let admin = app.admin();
        let target_of = |table: Value| rows_by_code(&table)["Q9.H1.X1"]["target"].clone();
        assert_eq!(target_of(league(&app, &admin, "Q9", "2022-09").await), Value::Null);
        assert_eq!(target_of(league(&app, &admin, "Q9", "2022-10").await), json!("70.00"));
        assert_eq!(target_of(league(&app, &admin, "Q9", "2023-05").await), json!("100.00"));
        // A later change from December: November keeps 100, December on has 90.
        set_target(&app, "COMMUNE", "2022-12", "90", "40").await;
        assert_eq!(target_of(league(&app, &admin, "Q9", "2022-11").await), json!("100.00"));
        assert_eq!(target_of(league(&app, &admin, "Q9", "2022-12").await), json!("90.00"));
        let targets =
            app.graphql_ok(&admin, "query { targets { level effectiveFrom cashlessPercent } }", json!({})).await;
        assert_eq!(targets["targets"].as_array().unwrap().len(), 3);
        // Bad input: a clear error, nothing appended.
        let before = app.event_count().await;
        for (level, from, cashless) in
            [("COMMUNE", "2022-13", "70"), ("COMMUNE", "2022-10", "170"), ("PROVINCE", "2022-10", "70")]
        {
            let input = json!({ "input": { "level": level, "effectiveFrom": from, "cashlessPercent": cashless, "onlinePercent": "30" } });
            assert_eq!(
                app.graphql_error_code(Some(&admin), SET_TARGET, input).await,
                "VALIDATION",
                "[{backend}] {level} {from} {cashless}"
            );
        }
        let officer = app.token(Role::Finance, None, None);
        let input = json!({ "input": { "level": "COMMUNE", "effectiveFrom": "2022-10", "cashlessPercent": "1", "onlinePercent": "1" } });
        assert_eq!(app.graphql_error_code(Some(&officer), SET_TARGET, input).await, "FORBIDDEN");
        assert_eq!(app.event_count().await, before);

        // The hierarchy is effective-dated too: from 2023-01 the commune moves to district H2.
        province::configure_placed(
            ledger,
            &code("Q9.H2"),
            "UBND huyện H2".into(),
            AgencyLevel::District,
            Some(code("Q9")),
            "190300000004",
            &meta,
        )
        .await
        .unwrap();
        let configure = "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code level parentCode placedFrom } }";
        let input = |parent: &str, level: &str| {
            json!({ "input": {
            "code": "Q9.H1.X1", "name": "UBND xã X1", "bankBin": "970436", "accountNumber": "190300000003",
            "accountName": "BO PHAN MOT CUA", "retainsFees": true, "counters": ["quay-1"],
            "level": level, "parentCode": parent, "placedFrom": "2023-01-01" } })
        };
        let moved = app.graphql_ok(&admin, configure, input("Q9.H2", "COMMUNE")).await;
        assert_eq!(moved["configureAgency"]["parentCode"], "Q9.H2");
        assert!(rows_by_code(&league(&app, &admin, "Q9.H1", "2022-12").await).contains_key("Q9.H1.X1"));
        assert!(!rows_by_code(&league(&app, &admin, "Q9.H1", "2023-01").await).contains_key("Q9.H1.X1"));
        assert!(rows_by_code(&league(&app, &admin, "Q9.H2", "2023-01").await).contains_key("Q9.H1.X1"));
        // A commune under a commune, or under an unknown agency, is refused.
        let before = app.event_count().await;
        assert_eq!(app.graphql_error_code(Some(&admin), configure, input("Q9.H1.X1", "COMMUNE")).await, "VALIDATION");
        assert_eq!(app.graphql_error_code(Some(&admin), configure, input("Q9", "COMMUNE")).await, "VALIDATION");
        assert_eq!(app.graphql_error_code(Some(&admin), configure, input("Q7", "COMMUNE")).await, "VALIDATION");
        assert_eq!(app.event_count().await, before);
    }
}

#[tokio::test]
async fn an_oversight_token_reads_the_aggregates_of_its_subtree_and_no_case_or_person() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let plan = ProvincePlan {
            departments: 1,
            districts: 2,
            communes_per_district: 2,
            max_cases: 3,
            ..ProvincePlan::standard()
        };
        let generated = province::generate(&app.state.ledger, &plan).await.unwrap();
        let district = app.token(Role::Oversight, Some("P01.H01"), None);
        // Its subtree, at any root inside it.
        let own = league(&app, &district, "P01.H01", "2026-09").await;
        assert_eq!(own["rows"].as_array().unwrap().len(), 3, "[{backend}] the district and its two communes");
        league(&app, &district, "P01.H01.X01", "2026-09").await;
        for root in [ROOT, "P01.H02", "P01.H02.X01", "P01.S01"] {
            let code =
                app.graphql_error_code(Some(&district), LEAGUE, json!({ "root": root, "month": "2026-09" })).await;
            assert_eq!(code, "FORBIDDEN", "[{backend}] oversight of P01.H01 reading {root}");
        }
        // No case, no person, no payment, no agency configuration (its bank account).
        let case = generated.paid_cases.iter().find(|c| c.as_str().starts_with("P01.H01")).unwrap().to_string();
        for (query, variables) in [
            ("query($c: String!) { case(code: $c) { code payer { name } } }", json!({ "c": case })),
            ("query($c: String!) { caseHistory(code: $c) { events { type } } }", json!({ "c": case })),
            ("query { agency(code: \"P01.H01\") { accountNumber } }", json!({})),
            ("query { agencies { code } }", json!({})),
            ("query { unmatchedCredits(agencyCode: \"P01.H01\") { id } }", json!({})),
            ("query { dailyReconciliation(agencyCode: \"P01.H01\", date: \"2026-09-10\") { balanced } }", json!({})),
            ("query { cashlessRate(agencyCode: \"P01.H01\", month: \"2026-09\") { rate } }", json!({})),
            ("query { auditEvents(first: 5) { events { type } } }", json!({})),
        ] {
            assert_eq!(
                app.graphql_error_code(Some(&district), query, variables).await,
                "FORBIDDEN",
                "[{backend}] {query}"
            );
        }
        // Files and charts: its subtree only.
        let get = |path: String| {
            let client = app.client.clone();
            let token = district.clone();
            async move { client.get(path).bearer_auth(token).send().await.unwrap() }
        };
        let base = &app.address;
        assert_eq!(get(format!("{base}/reports/league.csv?root=P01.H01&month=2026-09")).await.status(), 200);
        assert_eq!(get(format!("{base}/reports/league.csv?root=P01&month=2026-09")).await.status(), 403);
        assert_eq!(get(format!("{base}/reports/league/announcement?root=P01&month=2026-09")).await.status(), 403);
        assert_eq!(get(format!("{base}/charts/rates.svg?root=P01.H01&month=2026-09")).await.status(), 200);
        assert_eq!(get(format!("{base}/charts/collected.svg?agency=P01.H01")).await.status(), 403);
        assert_eq!(
            get(format!("{base}/reports/treasury.csv?agency=P01.H01&from=2026-09-01&to=2026-09-30")).await.status(),
            403
        );
        // A CLI-style issue needs the root.
        let refused = app
            .state
            .tokens
            .issue(&feeledger_api::auth::TokenRequest::new(Role::Oversight, None, None), chrono::Utc::now());
        assert!(refused.is_err());
    }
}

#[tokio::test]
async fn the_league_csv_and_xlsx_say_what_the_table_says() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let plan = ProvincePlan {
            departments: 2,
            districts: 2,
            communes_per_district: 3,
            max_cases: 4,
            ..ProvincePlan::standard()
        };
        let generated = province::generate(&app.state.ledger, &plan).await.unwrap();
        set_target(&app, "COMMUNE", "2026-01", "70", "30").await;
        let admin = app.admin();
        let table = league(&app, &admin, ROOT, "2026-09").await;
        let rows = rows_by_code(&table);

        let response = app
            .client
            .get(format!("{}/reports/league.csv?root={ROOT}&month=2026-09&token={admin}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let bytes = response.bytes().await.unwrap();
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        assert_eq!(headers, feeledger_api::oversight_reports::LEAGUE_HEADERS.map(str::to_owned).to_vec());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let agency_lines: Vec<&csv::StringRecord> = records.iter().filter(|r| !r[1].is_empty()).collect();
        assert_eq!(agency_lines.len(), generated.agencies.len(), "[{backend}] one line per agency");
        for record in &agency_lines {
            let row = &rows[&record[1]];
            let c = generated.counts_of(&record[1], "2026-09");
            assert_eq!(record[4], row["rank"].to_string());
            assert_eq!(
                (
                    record[5].parse::<u32>().unwrap(),
                    record[6].parse::<u32>().unwrap(),
                    record[8].parse::<u32>().unwrap()
                ),
                (c.cases, c.cashless, c.online)
            );
            assert_eq!(&record[7], row["cashlessRate"].as_str().unwrap_or_default());
            assert_eq!(&record[9], row["onlineRate"].as_str().unwrap_or_default());
            let verdict = match row["met"].as_bool() {
                Some(true) => "Đạt",
                Some(false) => "Không đạt",
                None => "Không xếp loại",
            };
            assert_eq!(&record[12], verdict);
        }
        let total_lines = records.len() - agency_lines.len();
        assert_eq!(total_lines, table["totals"].as_array().unwrap().len(), "[{backend}] a total line per level");

        let response = app
            .client
            .get(format!("{}/reports/league.xlsx?root={ROOT}&month=2026-09", app.address))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.unwrap().to_vec();
        use calamine::Reader as _;
        let mut workbook: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let sheet = workbook.worksheet_range("Bang xep hang").unwrap();
        let cell = |r: u32, c: u32| sheet.get_value((r, c)).map(ToString::to_string).unwrap_or_default();
        assert_eq!(cell(3, 1), "Mã đơn vị");
        let mut seen = 0;
        for r in 4..4 + u32::try_from(generated.agencies.len()).unwrap() {
            let code = cell(r, 1);
            let c = generated.counts_of(&code, "2026-09");
            assert_eq!(cell(r, 5), c.cases.to_string(), "[{backend}] {code}");
            assert_eq!(cell(r, 6), c.cashless.to_string(), "[{backend}] {code}");
            if let Some(rate) = rows[&code]["cashlessRate"].as_str() {
                let shown: Decimal = cell(r, 7).parse().unwrap();
                assert_eq!(format!("{:.2}", shown.round_dp(2)), rate, "[{backend}] {code}");
            }
            seen += 1;
        }
        assert_eq!(seen, generated.agencies.len());

        // The charts are SVG drawn by the server: the rates of the communes against their
        // target line, and the money a department collected per day, by channel.
        let svg = |path: String| {
            let client = app.client.clone();
            let token = admin.clone();
            async move {
                let response = client.get(path).bearer_auth(token).send().await.unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(response.headers()["content-type"], "image/svg+xml");
                response.text().await.unwrap()
            }
        };
        let rates = svg(format!("{}/charts/rates.svg?root={ROOT}&month=2026-09&level=COMMUNE", app.address)).await;
        assert!(rates.starts_with("<svg") && rates.contains("<polyline") && rates.contains("Chỉ tiêu KDTM"), "{rates}");
        let collected =
            svg(format!("{}/charts/collected.svg?agency=P01.S01&from=2026-08-01&to=2026-10-31", app.address)).await;
        let paid_days = generated.counts.keys().filter(|(a, _)| a == "P01.S01").count();
        assert!(paid_days == 0 || collected.matches("<rect").count() > 1, "[{backend}] bars: {collected}");

        // Bad requests: a clear 400 with a JSON body.
        for query in [
            "root=P01",
            "root=P01&month=2026-13",
            "month=2026-09",
            "root=P01&quarter=2026-Q7",
            "root=P01&month=2026-09&level=CITY",
        ] {
            let response = app
                .client
                .get(format!("{}/reports/league.csv?{query}", app.address))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "[{backend}] {query}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "VALIDATION");
        }
        let response = app
            .client
            .get(format!("{}/reports/league.csv?root=ZZ9&month=2026-09", app.address))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
}
