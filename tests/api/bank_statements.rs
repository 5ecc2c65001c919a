//! The banks' own exports (issue 15): a generated month, exported week by week in each supported
//! bank's layout, imported unchanged through `importBankStatement` (recognised automatically;
//! XLSX and XLS base64-encoded, the HTML table some banks save as `.xls` as text), its balances
//! checked and chained, and every day reconciled with only the planted exceptions left.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use chrono::{Duration as Days, NaiveDate};
use feeledger_api::auth::Role;
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::money::Vnd;
use feeledger_infrastructure::statement::fixtures::{
    Export, ExportLine, bank_csv, bank_html, bank_xls, bank_xlsx, grouped, mt940,
};
use feeledger_infrastructure::statement::{Bank, Direction};
use feeledger_tests::traffic::{self, GeneratedLine, Plan};
use feeledger_tests::{TestApp, spawn_each_backend};
use serde_json::{Value, json};

const IMPORT: &str = "mutation($input: StatementInput!) { importBankStatement(input: $input) { \
    accountNumber format lines inserted alreadyKnown firstDay lastDay openingBalance closingBalance creditsTotal debitsTotal } }";

const RECONCILE: &str = "mutation($a: String!, $d: Date!) { reconcileDay(agencyCode: $a, date: $d) { \
    ledgerTotal bankTotal matchedTotal balanced ledgerExceptionsTotal bankExceptionsTotal batchesTotal feesTotal \
    exceptions { kind side amount reference paymentId statementLineId } \
    batches { kind statementLineId bankAmount ledgerAmount fee days payments } unsettled { kind day amount } \
    debits { statementLineId amount explainedBy reference } allExplained resolutions { statementLineId } } }";

const PER_CHANNEL: &str = "query($a: String!, $d: Date!) { dailyReconciliation(agencyCode: $a, date: $d) { \
    perChannel { channel count total } } }";

fn credit(day: NaiveDate, dong: i64, description: String, id: String) -> ExportLine {
    ExportLine {
        booked_on: day,
        amount: Vnd::new(dong).unwrap(),
        direction: Direction::Credit,
        description,
        bank_id: id,
        counterparty_name: None,
        counterparty_account: None,
    }
}

/// What the bank credits for the month's card and cash payments: each card day settled the next
/// day less a 1% fee (the acquirer's), the cash book deposited in one slip every three cash days
/// or two days after the first undeposited one, whichever comes first.
/// Returns the lines and the fees planted.
async fn batch_lines(app: &TestApp, agency: &str, month: NaiveDate, days: u32) -> (Vec<ExportLine>, i64, usize) {
    let mut lines = Vec::new();
    let mut fees = 0;
    let mut cash_run: Vec<(NaiveDate, i64)> = Vec::new();
    let mut deposits = 0;
    for d in 0..days {
        let date = month + Days::days(i64::from(d));
        let data = app.graphql_ok(&finance(app), PER_CHANNEL, json!({ "a": agency, "d": date.to_string() })).await;
        for channel in data["dailyReconciliation"]["perChannel"].as_array().unwrap() {
            let total = dong(&channel["total"]);
            match channel["channel"].as_str().unwrap() {
                "POS" => {
                    let fee = total / 100;
                    fees += fee;
                    let next = date + Days::days(1);
                    lines.push(credit(
                        next,
                        total - fee,
                        format!("TT POS MID 0000{} NGAY {}", agency.replace('.', ""), date.format("%d/%m/%Y")),
                        format!("POS{}{}", agency.replace('.', ""), date.format("%m%d")),
                    ));
                }
                "CASH" => cash_run.push((date, total)),
                _ => {}
            }
        }
        // The cashier deposits at the latest two days after the run's first day.
        let due = cash_run.first().is_some_and(|(first, _)| (date - *first).num_days() >= 2);
        if !cash_run.is_empty() && (cash_run.len() == 3 || due || d + 1 == days) {
            let last = cash_run.last().unwrap().0;
            lines.push(credit(
                date,
                cash_run.iter().map(|(_, t)| t).sum(),
                format!("NOP TIEN MAT THU PHI {} - {}", cash_run[0].0.format("%d/%m"), last.format("%d/%m")),
                format!("NTM{}{}", agency.replace('.', ""), date.format("%m%d")),
            ));
            deposits += 1;
            cash_run.clear();
        }
    }
    (lines, fees, deposits)
}

/// Finance pays every overpayment of the month back by transfer two days after it (the last day
/// of the month at the latest), through `recordRefund`; the bank books each as a debit line
/// whose id is the transfer's reference. Returns those lines.
async fn refund_overpayments(
    app: &TestApp,
    agency: &str,
    overpaid: &[(AgencyCode, CaseCode, i64, NaiveDate)],
    month: NaiveDate,
    days: u32,
) -> Vec<ExportLine> {
    const RECORD: &str = "mutation($input: RefundInput!) { recordRefund(input: $input) { caseCode amount status } }";
    let last_day = month + Days::days(i64::from(days) - 1);
    let mut lines = Vec::new();
    for (n, (_, case, amount, day)) in overpaid.iter().filter(|(a, ..)| a.as_str() == agency).enumerate() {
        let paid_on = (*day + Days::days(2)).min(last_day);
        let reference = format!("FT{}HT{:04}", paid_on.format("%m%d"), n + 1);
        let input = json!({ "input": { "agencyCode": agency, "caseCode": case.as_str(), "amount": amount.to_string(),
            "method": "BANK_TRANSFER", "reference": reference, "paidOn": paid_on.to_string() } });
        let done = app.graphql_ok(&finance(app), RECORD, input).await;
        assert_eq!(done["recordRefund"]["status"], "REFUNDED", "{done:#}");
        lines.push(ExportLine {
            booked_on: paid_on,
            amount: Vnd::new(*amount).unwrap(),
            direction: Direction::Debit,
            description: format!("HOAN TRA TIEN NOP THUA HO SO {case}"),
            bank_id: reference,
            counterparty_name: Some("NGUYEN VAN AN".into()),
            counterparty_account: Some("0123456789".into()),
        });
    }
    lines
}

/// The account's balance before the month.
const OPENING: i64 = 250_000_000;

fn finance(app: &TestApp) -> String {
    app.token(Role::Finance, None, None)
}

fn dong(value: &Value) -> i64 {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an amount: {value}"))
}

/// One file of the month: its name, the format it must be recognised as, and its content as
/// sent over GraphQL.
struct File {
    name: String,
    format: &'static str,
    content: String,
    export: Export,
}

/// How a bank's export is saved.
#[derive(Debug, Clone, Copy)]
enum Saved {
    Xlsx,
    /// The old binary workbook.
    Xls,
    /// An HTML table, named `.xls` as the bank's download is.
    HtmlXls,
    Csv,
}

/// The layouts the weeks of the month are exported in.
const LAYOUTS: [(&str, Option<Bank>, Saved); 5] = [
    ("vietinbank", Some(Bank::Vietinbank), Saved::Xlsx),
    ("vietcombank", Some(Bank::Vietcombank), Saved::Xls),
    ("bidv", Some(Bank::Bidv), Saved::Csv),
    ("agribank", Some(Bank::Agribank), Saved::HtmlXls),
    ("mt940", None, Saved::Csv),
];

/// The month's lines cut into five periods of six days (the last takes the rest), each with a
/// bank fee debited on its last day (and the refunds paid out in it), each in the next layout;
/// balances chain from [`OPENING`].
fn month_files(
    account: &str,
    lines: &[GeneratedLine],
    month: NaiveDate,
    batches: &[ExportLine],
    refunds: &[ExportLine],
) -> Vec<File> {
    let mut files = Vec::new();
    let mut opening = OPENING;
    for (k, (format, bank, saved)) in LAYOUTS.into_iter().enumerate() {
        let first = month + Days::days(6 * k as i64);
        let last = if k + 1 == LAYOUTS.len() { NaiveDate::MAX } else { first + Days::days(5) };
        let mut period: Vec<&GeneratedLine> =
            lines.iter().filter(|l| l.booked_on >= first && l.booked_on <= last).collect();
        period.sort_by(|a, b| (a.booked_on, &a.line_id).cmp(&(b.booked_on, &b.line_id)));
        let mut export_lines: Vec<ExportLine> = period
            .iter()
            .map(|l| ExportLine {
                booked_on: l.booked_on,
                amount: Vnd::new(l.amount).unwrap(),
                direction: Direction::Credit,
                description: l.description.clone(),
                bank_id: l.line_id.clone(),
                counterparty_name: None,
                counterparty_account: None,
            })
            .collect();
        for line in batches.iter().chain(refunds).filter(|b| b.booked_on >= first && b.booked_on <= last) {
            export_lines.push(line.clone());
        }
        export_lines.sort_by(|a, b| (a.booked_on, &a.bank_id).cmp(&(b.booked_on, &b.bank_id)));
        let fee_day = export_lines.last().map_or(first, |l| l.booked_on);
        export_lines.push(ExportLine {
            booked_on: fee_day,
            amount: Vnd::new(11_000).unwrap(),
            direction: Direction::Debit,
            description: "Phi quan ly tai khoan".into(),
            bank_id: format!("FEE{account}{k}"),
            counterparty_name: None,
            counterparty_account: None,
        });
        let export = Export {
            account: account.to_owned(),
            account_name: "VP DANG KY DAT DAI".into(),
            opening,
            lines: export_lines,
        };
        opening = export.closing();
        let base64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
        let (name, content) = match (bank, saved) {
            (Some(bank), Saved::Xlsx) => (format!("{format}-{k}.xlsx"), base64(bank_xlsx(bank, &export))),
            (Some(bank), Saved::Xls) => (format!("{format}-{k}.xls"), base64(bank_xls(bank, &export))),
            (Some(bank), Saved::HtmlXls) => {
                (format!("{format}-{k}.xls"), String::from_utf8(bank_html(bank, &export)).unwrap())
            }
            (Some(bank), Saved::Csv) => {
                (format!("{format}-{k}.csv"), String::from_utf8(bank_csv(bank, &export)).unwrap())
            }
            (None, _) => (format!("{format}-{k}.sta"), String::from_utf8(mt940(&export, 100 + k as u32)).unwrap()),
        };
        files.push(File { name, format, content, export });
    }
    files
}

async fn import(app: &TestApp, file: &File) -> Value {
    let input = json!({ "input": { "content": file.content, "filename": file.name } });
    app.graphql_ok(&finance(app), IMPORT, input).await["importBankStatement"].clone()
}

#[tokio::test]
async fn a_month_exported_in_each_banks_layout_imports_unchanged_chains_and_reconciles() {
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let plan = Plan::small();
        let generated = traffic::generate(&app.state.ledger, &plan).await.unwrap();

        for (agency, account, lines) in &generated.statements {
            let (batches, planted_fees, deposits) = batch_lines(&app, agency.as_str(), plan.month, plan.days).await;
            assert!(planted_fees > 0 && deposits > 0, "[{backend}] the month has card and cash payments");
            let refunds = refund_overpayments(&app, agency.as_str(), &generated.overpaid, plan.month, plan.days).await;
            assert!(!refunds.is_empty(), "[{backend}] the month has overpayments paid back");
            let refund_ids: BTreeSet<String> = refunds.iter().map(|r| r.bank_id.clone()).collect();
            let files = month_files(account, lines, plan.month, &batches, &refunds);
            let mut imported = 0;
            for file in &files {
                let done = import(&app, file).await;
                let n = file.export.lines.len();
                assert_eq!(done["format"], file.format, "[{backend}] {}: {done:#}", file.name);
                assert_eq!(done["accountNumber"], account.as_str());
                assert_eq!(done["lines"], json!(n), "[{backend}] {}", file.name);
                assert_eq!(done["inserted"], json!(n), "[{backend}] {}: every line is new", file.name);
                assert_eq!(dong(&done["openingBalance"]), file.export.opening);
                assert_eq!(dong(&done["closingBalance"]), file.export.closing());
                let credits: i64 = file
                    .export
                    .lines
                    .iter()
                    .filter(|l| l.direction == Direction::Credit)
                    .map(|l| l.amount.dong())
                    .sum();
                assert_eq!(dong(&done["creditsTotal"]), credits);
                let debits: i64 =
                    file.export.lines.iter().filter(|l| l.direction == Direction::Debit).map(|l| l.amount.dong()).sum();
                assert_eq!(
                    dong(&done["debitsTotal"]),
                    debits,
                    "[{backend}] {}: the bank fee and the refunds",
                    file.name
                );
                // Every line but the period's bank fee came from the month's traffic.
                imported += n - 1;
            }
            assert_eq!(
                imported,
                lines.len() + batches.len() + refunds.len(),
                "[{backend}] every line is in exactly one file"
            );
            // Finance looks at each period's bank fee and resolves it with a reason.
            for k in 0..files.len() {
                let input = json!({ "input": { "agencyCode": agency.as_str(), "statementLineId": format!("FEE{account}{k}"),
                    "reason": "Phí quản lý tài khoản của ngân hàng" } });
                app.graphql_ok(
                    &finance(&app),
                    "mutation($input: ResolveItemInput!) { resolveReconciliationItem(input: $input) { reason } }",
                    input,
                )
                .await;
            }

            // The same file again changes nothing, named or recognised: the XLSX; the XLS
            // without its name (base64 recognised by the workbook's signature); the HTML ".xls"
            // base64-encoded like a workbook.
            let html = &files[3];
            let html_base64 = base64::engine::general_purpose::STANDARD.encode(html.content.as_bytes());
            let resent = [
                (files[0].content.clone(), Some(files[0].name.as_str()), files[0].export.lines.len()),
                (files[1].content.clone(), None, files[1].export.lines.len()),
                (html_base64, Some(html.name.as_str()), html.export.lines.len()),
            ];
            for (content, filename, lines) in resent {
                let input = json!({ "input": { "content": content, "filename": filename } });
                let again = app.graphql_ok(&finance(&app), IMPORT, input).await["importBankStatement"].clone();
                assert_eq!(
                    (again["inserted"].clone(), again["alreadyKnown"].clone()),
                    (json!(0), json!(lines)),
                    "[{backend}] {filename:?}: {again:#}"
                );
            }

            // A statement that does not continue the last one is refused with both amounts, and
            // nothing of it is stored.
            let last = files.last().unwrap();
            let next_day = last.export.lines.iter().map(|l| l.booked_on).max().unwrap() + Days::days(1);
            let broken = Export {
                account: account.clone(),
                account_name: "VP DANG KY DAT DAI".into(),
                opening: last.export.closing() + 1_000,
                lines: vec![ExportLine {
                    booked_on: next_day,
                    amount: Vnd::new(99_000).unwrap(),
                    direction: Direction::Credit,
                    description: "IBFT chuyen tien".into(),
                    bank_id: format!("BREAK{account}"),
                    counterparty_name: None,
                    counterparty_account: None,
                }],
            };
            let content = base64::engine::general_purpose::STANDARD.encode(bank_xlsx(Bank::Agribank, &broken));
            let refused = app
                .graphql(
                    Some(&finance(&app)),
                    IMPORT,
                    json!({ "input": { "format": "AGRIBANK", "content": content, "filename": "next.xlsx" } }),
                )
                .await;
            assert_eq!(refused["errors"][0]["extensions"]["code"], "CONFLICT", "[{backend}] {refused:#}");
            let message = refused["errors"][0]["message"].as_str().unwrap();
            let expected = format!(
                "closes at {} but the statement for {next_day} to {next_day} opens at {} (a difference of 1000)",
                last.export.closing(),
                last.export.closing() + 1_000
            );
            assert!(message.contains(&expected), "[{backend}] {message}");
            // A file whose own balances do not add up is refused as invalid, naming the amounts.
            let bidv = &files[2];
            let closing = format!("Số dư cuối kỳ,,,,\"{}\"", grouped(bidv.export.closing(), ','));
            assert!(bidv.content.contains(&closing), "{}", bidv.content);
            let tampered = bidv.content.replace(&closing, "Số dư cuối kỳ,,,,1");
            let invalid = app
                .graphql(
                    Some(&finance(&app)),
                    IMPORT,
                    json!({ "input": { "content": tampered, "filename": "bidv.csv" } }),
                )
                .await;
            assert_eq!(invalid["errors"][0]["extensions"]["code"], "VALIDATION", "[{backend}] {invalid:#}");
            let message = invalid["errors"][0]["message"].as_str().unwrap();
            assert!(
                message.contains("the balances do not add up") && message.contains("but the closing balance is 1"),
                "{message}"
            );

            // Every day reconciles: each planted defect shows up as its exception, nothing else;
            // every settlement and deposit is a batch, its fee shown.
            let mut seen: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
            let mut fees_seen = 0;
            let mut batches_seen: BTreeSet<String> = BTreeSet::new();
            let mut refunds_seen: BTreeSet<String> = BTreeSet::new();
            let mut open_days: Vec<(NaiveDate, Value)> = Vec::new();
            for day in 0..=plan.days {
                let date = plan.month + Days::days(i64::from(day));
                let data = app
                    .graphql_ok(&finance(&app), RECONCILE, json!({ "a": agency.as_str(), "d": date.to_string() }))
                    .await;
                let report = &data["reconcileDay"];
                assert_eq!(report["balanced"], true, "[{backend}] {agency} {date}: {report:#}");
                // Every card day and cash day is settled or deposited: nothing is left open.
                let near: Vec<String> = batches
                    .iter()
                    .filter(|b| (b.booked_on - date).num_days().abs() <= 3)
                    .map(|b| format!("{} {} {} {}", b.booked_on, b.amount.dong(), b.bank_id, b.description))
                    .collect();
                assert_eq!(report["unsettled"], json!([]), "[{backend}] {agency} {date}: {report:#} {near:#?}");
                fees_seen += dong(&report["feesTotal"]);
                for batch in report["batches"].as_array().unwrap() {
                    assert_eq!(dong(&batch["ledgerAmount"]), dong(&batch["bankAmount"]) + dong(&batch["fee"]));
                    batches_seen.insert(batch["statementLineId"].as_str().unwrap().to_owned());
                    if batch["kind"] == "CASH_DEPOSIT" {
                        assert_eq!(batch["fee"], "0");
                    }
                }
                // Every debit is a refund recorded with its transfer's reference, or the bank's fee
                // resolved by hand; the day is explained unless it holds a planted exception.
                for debit in report["debits"].as_array().unwrap() {
                    let id = debit["statementLineId"].as_str().unwrap().to_owned();
                    if refund_ids.contains(&id) {
                        assert_eq!(
                            (debit["explainedBy"].as_str(), debit["reference"].as_str()),
                            (Some("REFUND"), Some(id.as_str()))
                        );
                        refunds_seen.insert(id);
                    } else {
                        assert!(id.starts_with("FEE") && debit["explainedBy"].is_null(), "[{backend}] {debit:#}");
                        assert!(
                            report["resolutions"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|r| r["statementLineId"] == id.as_str()),
                            "[{backend}] {date}: {report:#}"
                        );
                    }
                }
                let exceptions = report["exceptions"].as_array().unwrap();
                assert_eq!(report["allExplained"], exceptions.is_empty(), "[{backend}] {agency} {date}: {report:#}");
                for e in exceptions {
                    assert!(dong(&e["amount"]) > 0, "[{backend}] each exception is listed with its amount: {e:#}");
                    open_days.push((date, e.clone()));
                    let key = (e["kind"].as_str().unwrap().to_owned(), e["side"].as_str().unwrap().to_owned());
                    let id = e["statementLineId"].as_str().or(e["reference"].as_str()).unwrap_or_default().to_owned();
                    seen.entry(key).or_default().insert(id);
                }
            }
            assert_eq!(fees_seen, planted_fees, "[{backend}] every acquirer fee is shown, to the đồng");
            assert_eq!(refunds_seen, refund_ids, "[{backend}] every refund's debit line is paired with it");
            let batch_ids: BTreeSet<String> = batches.iter().map(|b| b.bank_id.clone()).collect();
            assert_eq!(batches_seen, batch_ids, "[{backend}] every settlement and deposit is explained");
            // The pairs were recorded as events: the report reads the same afterwards.
            let first_batch = &batches[0];
            let query = "query($a: String!, $d: Date!) { dailyReconciliation(agencyCode: $a, date: $d) { batches { statementLineId } } }";
            let again = app
                .graphql_ok(
                    &finance(&app),
                    query,
                    json!({ "a": agency.as_str(), "d": first_batch.booked_on.to_string() }),
                )
                .await;
            let ids: Vec<&str> = again["dailyReconciliation"]["batches"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|b| b["statementLineId"].as_str())
                .collect();
            assert!(ids.contains(&first_batch.bank_id.as_str()), "[{backend}] {again:#}");

            let planted: BTreeSet<&str> =
                generated.tampering.iter().filter(|(a, _, _)| a == agency).map(|(_, _, id)| id.as_str()).collect();
            for (tampered_agency, kind, line_id) in &generated.tampering {
                if tampered_agency != agency {
                    continue;
                }
                let found = |k: &str, side: &str| {
                    seen.get(&(k.to_owned(), side.to_owned())).is_some_and(|ids| ids.contains(line_id))
                };
                let ok = match *kind {
                    "dropped" => found("LEDGER_ONLY", "LEDGER"),
                    "extra" => found("BANK_ONLY", "BANK"),
                    "altered" => found("AMOUNT_MISMATCH", "BANK"),
                    // The banks' layouts have one id column: the repeated entry carries its own
                    // id and no separate reference, so it is money the ledger does not know.
                    "repeated" => found("DUPLICATE", "BANK") || found("BANK_ONLY", "BANK"),
                    other => panic!("unknown tampering {other}"),
                };
                assert!(ok, "[{backend}] {kind} {line_id}: {seen:?}");
            }
            let bank_side: BTreeSet<&String> =
                seen.iter().filter(|((_, side), _)| side == "BANK").flat_map(|(_, ids)| ids).collect();
            for id in &bank_side {
                assert!(
                    planted.contains(id.as_str()),
                    "[{backend}] {id} is an exception but nothing was planted on it: {seen:?}"
                );
            }

            // Finance looks at each planted exception and resolves it with a reason (the bank's
            // line, or the ledger's payment the bank never booked): then every day is explained.
            assert!(!open_days.is_empty(), "[{backend}] the planted exceptions are open until resolved");
            for (_, e) in &open_days {
                let item = match e["statementLineId"].as_str() {
                    Some(line) => json!({ "statementLineId": line }),
                    None => {
                        json!({ "paymentId": e["paymentId"].as_str().expect("a ledger-side exception names its payment") })
                    }
                };
                let mut input = json!({ "agencyCode": agency.as_str(), "reason": "Đã đối chiếu với ngân hàng" });
                input.as_object_mut().unwrap().extend(item.as_object().unwrap().clone());
                app.graphql_ok(
                    &finance(&app),
                    "mutation($input: ResolveItemInput!) { resolveReconciliationItem(input: $input) { reason } }",
                    json!({ "input": input }),
                )
                .await;
            }
            for (date, _) in &open_days {
                let data = app
                    .graphql_ok(&finance(&app), RECONCILE, json!({ "a": agency.as_str(), "d": date.to_string() }))
                    .await;
                assert_eq!(data["reconcileDay"]["allExplained"], true, "[{backend}] {agency} {date}: {data:#}");
            }
        }
    }
}

// issue 15: a long import shows its progress, as a rebuild does.
#[tokio::test]
async fn a_long_import_reports_its_progress_to_whoever_follows_its_import_id() {
    use feeledger_tests::ws::Subscription;
    const PROGRESS: &str = "subscription($id: String!) { statementImportProgress(importId: $id) { \
        importId done total finished failed } }";
    let patience = std::time::Duration::from_secs(60);
    for app in spawn_each_backend().await {
        let backend = app.backend();
        let finance = app.token(Role::Finance, None, None);
        // 2,500 lines of the ledger's CSV layout, on an account no agency uses.
        let mut csv = String::from("account_number,booked_on,amount,direction,description,transaction_id\n");
        for n in 0..2_500 {
            csv.push_str(&format!(
                "990011223344,2026-11-{:02},{},credit,CK {n},FT26PROG{n:05}\n",
                1 + n % 28,
                1_000 + n
            ));
        }
        let mut progress = Subscription::start(&app.address, &finance, PROGRESS, json!({ "id": "import-0001" })).await;
        let first = progress.next(patience).await.expect("listening");
        assert_eq!(first["data"]["statementImportProgress"]["done"], 0, "[{backend}] {first:#}");
        let done =
            app.graphql_ok(&finance, IMPORT, json!({ "input": { "content": csv, "importId": "import-0001" } })).await;
        assert_eq!(done["importBankStatement"]["inserted"], 2_500, "[{backend}] {done:#}");
        let mut seen = Vec::new();
        loop {
            let update = progress.next(patience).await.expect("the import's progress");
            let update = update["data"]["statementImportProgress"].clone();
            assert_eq!((update["importId"].as_str(), update["failed"].as_bool()), (Some("import-0001"), Some(false)));
            seen.push((update["done"].as_i64().unwrap(), update["total"].as_i64().unwrap()));
            if update["finished"] == true {
                break;
            }
        }
        assert_eq!(seen.first(), Some(&(1_000, 2_500)), "[{backend}] {seen:?}");
        assert_eq!(seen.last(), Some(&(2_500, 2_500)), "[{backend}] {seen:?}");
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "[{backend}] in order: {seen:?}");

        // A refused file says so to its follower; a bad id is refused before anything is read.
        let mut refused = Subscription::start(&app.address, &finance, PROGRESS, json!({ "id": "import-0002" })).await;
        refused.next(patience).await.expect("listening");
        let bad = app
            .graphql(
                Some(&finance),
                IMPORT,
                json!({ "input": { "content": "not a statement", "importId": "import-0002" } }),
            )
            .await;
        assert_eq!(bad["errors"][0]["extensions"]["code"], "VALIDATION", "[{backend}] {bad:#}");
        let failed = refused.next(patience).await.expect("the failure");
        assert_eq!(failed["data"]["statementImportProgress"]["failed"], true, "[{backend}] {failed:#}");
        let invalid = json!({ "input": { "content": "x", "importId": "../../etc" } });
        assert_eq!(app.graphql_error_code(Some(&finance), IMPORT, invalid).await, "VALIDATION");
    }
}
