//! A real `feeledger serve` process is SIGKILLed twice while two providers deliver correctly
//! signed notifications: every notification by two senders at once (duplicates), each sender
//! re-sending until it is acknowledged, as providers do, across the restarts (retries).
//!
//! Afterwards: every acknowledged notification is recorded exactly once (one BankCreditObserved,
//! and one PaymentReceived when it names a case); the sums agree (what was acknowledged is what
//! the cases say was paid plus what waits in the unmatched queue); no inbox row is left
//! `received` (inbox recovery, `FEELEDGER_INBOX_RECOVERY_AFTER_SECONDS`); and the read models,
//! once caught up, equal a fresh rebuild of themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use feeledger_infrastructure::bank_feed::{self, Secret};
use feeledger_infrastructure::inbox::Inbox;
use feeledger_infrastructure::storage::{Storage, StoreOptions};
use feeledger_infrastructure::test_support::TestDatabase;
use feeledger_tests::node::{self, Node};
use serde_json::{Value, json};
use tokio::sync::watch;

const AGENCY: &str = "H34.22.6";
const ACCOUNT: &str = "113366668888";
/// The demo's P-SAOY-2TRANG: 2,000 đ a case, paid 1,000 by SePay and 1,000 by VNPAY.
const FEE_CODE: &str = "P-SAOY-2TRANG";
const CASE_TOTAL_VND: i64 = 2_000;
const PART_VND: i64 = 1_000;
const CASES: u32 = 100;
/// SePay transfers whose text names no case: they wait in the unmatched queue.
const UNMATCHED: u32 = 40;
const SENDERS_PER_NOTIFICATION: usize = 2;
const SENDERS_AT_ONCE: usize = 24;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_PAUSE: Duration = Duration::from_millis(100);
const PATIENCE: Duration = Duration::from_secs(60);
const RECOVERY_AFTER_SECONDS: &str = "1";
const RECOVERY_DUE: Duration = Duration::from_millis(1_500);

const SEPAY_HMAC: &str = "sepay-crash-test-hmac-secret";
const VNPAY_SECRET: &str = "VNPAYCRASHTESTSECRET0123456789ABCD";
const TOKEN_SECRET: &str = "crash-test-token-secret-0123456789abcdef";

fn settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("FEELEDGER_SEPAY_HMAC_SECRET", SEPAY_HMAC),
        ("FEELEDGER_VNPAY_HASH_SECRET", VNPAY_SECRET),
        ("FEELEDGER_TOKEN_SECRET", TOKEN_SECRET),
        ("FEELEDGER_INBOX_RECOVERY_AFTER_SECONDS", RECOVERY_AFTER_SECONDS),
    ]
}

/// One notification as its provider sends it, every time it sends it.
#[derive(Debug, Clone)]
struct Notification {
    credit_id: String,
    amount_vnd: i64,
    /// The case its text names, if any.
    case_code: Option<String>,
    delivery: Delivery,
}

#[derive(Debug, Clone)]
enum Delivery {
    Sepay { body: Vec<u8>, timestamp: i64, signature: String },
    Vnpay { query: String },
}

fn case_code(n: u32) -> String {
    format!("{AGENCY}-261122-{:04}", 1000 + n)
}

fn sepay(id: u64, amount_vnd: i64, content: &str, case_code: Option<String>) -> Notification {
    let body = json!({
        "id": id, "gateway": "VietinBank", "transactionDate": "2026-11-22 09:15:00", "accountNumber": ACCOUNT,
        "code": null, "content": content, "transferType": "in", "transferAmount": amount_vnd,
        "accumulated": 19_077_000, "subAccount": null, "referenceCode": format!("FT{id}")
    })
    .to_string()
    .into_bytes();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = bank_feed::sepay::sign(&body, timestamp, &Secret::new(SEPAY_HMAC));
    Notification {
        credit_id: format!("sepay:{id}"),
        amount_vnd,
        case_code,
        delivery: Delivery::Sepay { body, timestamp, signature },
    }
}

fn vnpay(transaction_no: u64, amount_vnd: i64, case_code: &str) -> Notification {
    let amount_x100 = (amount_vnd * 100).to_string();
    let transaction_no_text = transaction_no.to_string();
    let params = [
        ("vnp_Amount", amount_x100.as_str()),
        ("vnp_BankCode", "NCB"),
        ("vnp_CardType", "ATM"),
        ("vnp_OrderInfo", "Thanh toan le phi ho so"),
        ("vnp_PayDate", "20261122091500"),
        ("vnp_ResponseCode", "00"),
        ("vnp_TmnCode", "FEELEDG1"),
        ("vnp_TransactionNo", transaction_no_text.as_str()),
        ("vnp_TransactionStatus", "00"),
        ("vnp_TxnRef", case_code),
    ];
    Notification {
        credit_id: format!("vnpay:{transaction_no}"),
        amount_vnd,
        case_code: Some(case_code.to_owned()),
        delivery: Delivery::Vnpay { query: bank_feed::vnpay::sign(&params, &Secret::new(VNPAY_SECRET)) },
    }
}

/// Every case paid in two parts by two providers, and money that names no case.
fn notifications() -> Vec<Notification> {
    let mut all = Vec::new();
    for n in 0..CASES {
        let code = case_code(n);
        all.push(sepay(10_000 + u64::from(n), PART_VND, &format!("MBVCB.{n}.{code}.CT tu 0123"), Some(code.clone())));
        all.push(vnpay(20_000 + u64::from(n), PART_VND, &code));
    }
    for n in 0..UNMATCHED {
        all.push(sepay(30_000 + u64::from(n), 5_000 + i64::from(n), &format!("chuyen tien le phi {n}"), None));
    }
    all
}

/// Whether the provider would stop re-sending: SePay on 2xx `{"success":true}`, VNPAY on
/// `RspCode` "00" (confirmed) or "02" (already confirmed).
async fn deliver_once(client: &reqwest::Client, base: &str, notification: &Notification) -> bool {
    let sent = match &notification.delivery {
        Delivery::Sepay { body, timestamp, signature } => {
            client
                .post(format!("{base}/webhooks/sepay"))
                .header("Content-Type", "application/json")
                .header(bank_feed::sepay::SIGNATURE_HEADER, signature)
                .header(bank_feed::sepay::TIMESTAMP_HEADER, timestamp.to_string())
                .body(body.clone())
                .send()
                .await
        }
        Delivery::Vnpay { query } => client.get(format!("{base}/webhooks/vnpay?{query}")).send().await,
    };
    let Ok(response) = sent else { return false };
    let status = response.status();
    let Ok(body) = response.json::<Value>().await else { return false };
    match notification.delivery {
        Delivery::Sepay { .. } => status.is_success() && body["success"] == true,
        Delivery::Vnpay { .. } => status == 200 && (body["RspCode"] == "00" || body["RspCode"] == "02"),
    }
}

/// What the senders share: where the node is now, and which notifications were acknowledged.
struct Delivered {
    acknowledged: Vec<AtomicBool>,
    count: AtomicUsize,
}

/// One sender: re-sends until acknowledged, following the node to wherever it listens now.
async fn sender(
    client: reqwest::Client,
    base: watch::Receiver<String>,
    notifications: Arc<Vec<Notification>>,
    delivered: Arc<Delivered>,
    index: usize,
) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let address = base.borrow().clone();
        if deliver_once(&client, &address, &notifications[index]).await {
            if !delivered.acknowledged[index].swap(true, Ordering::SeqCst) {
                delivered.count.fetch_add(1, Ordering::SeqCst);
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{} was never acknowledged", notifications[index].credit_id));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn graphql(base: &str, token: &str, query: &str, variables: Value) -> Value {
    feeledger_tests::node::graphql(base, token, query, variables).await
}

async fn wait_until_acknowledged(delivered: &Delivered, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while delivered.count.load(Ordering::SeqCst) < count {
        assert!(Instant::now() < deadline, "fewer than {count} notifications were acknowledged in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn inbox_outcomes(store: &Storage) -> BTreeMap<String, usize> {
    let mut outcomes = BTreeMap::new();
    for row in Inbox::new(store.clone()).recent(None, 100_000).await.unwrap() {
        *outcomes.entry(row.outcome).or_insert(0) += 1;
    }
    outcomes
}

/// The sum of `feeledger_inbox_recovered_total` samples on `/metrics`, `None` when absent.
async fn recovered_total(base: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    let samples: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with("feeledger_inbox_recovered_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

/// Every event, through the auditor's paging.
async fn all_events(base: &str, auditor: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = String::new();
    loop {
        let page = graphql(
            base,
            auditor,
            "query($after: String) { auditEvents(after: $after, first: 5000) { events { streamId type data } endCursor hasMore } }",
            json!({ "after": after }),
        )
        .await;
        let page = &page["auditEvents"];
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        after = page["endCursor"].as_str().unwrap().to_owned();
        if page["hasMore"] != true {
            return events;
        }
    }
}

/// The keys whose values differ: `(key, actual, expected)`.
fn differences<V: PartialEq + Clone>(
    actual: &BTreeMap<String, V>,
    expected: &BTreeMap<String, V>,
) -> Vec<(String, Option<V>, Option<V>)> {
    let keys: BTreeSet<&String> = actual.keys().chain(expected.keys()).collect();
    keys.into_iter()
        .filter(|key| actual.get(*key) != expected.get(*key))
        .map(|key| (key.clone(), actual.get(key).cloned(), expected.get(key).cloned()))
        .collect()
}

/// Every event, once each credit's observation, resolution and payment are readable. On
/// PostgreSQL the log is read up to a cluster-wide commit barrier, which other sessions on a
/// shared server may hold back for a moment; whatever still misses after [`PATIENCE`] is
/// reported by the assertions that follow.
async fn commit_safe_events(base: &str, auditor: &str, credits: usize, payments: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let events = all_events(base, auditor).await;
        let count = |types: &[&str]| events.iter().filter(|e| types.iter().any(|t| e["type"] == *t)).count();
        let complete = count(&["BankCreditObserved"]) >= credits
            && count(&["CreditMatched", "CreditUnmatched"]) >= credits
            && count(&["PaymentReceived"]) >= payments;
        if complete || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn dong(value: &Value) -> i64 {
    match value {
        Value::String(text) => text.parse().unwrap_or_else(|_| panic!("not a whole đồng amount: {value}")),
        Value::Number(number) => number.as_i64().unwrap(),
        _ => panic!("not an amount: {value}"),
    }
}

const REPORTS: &str = "query($a: String!) {
    treasuryReport(agencyCode: $a, from: \"2020-01-01\", to: \"2030-12-31\") {
        collected retained payableToBudget remitted outstanding balanced
        rows { feeCode collected retained payableToBudget remitted outstanding }
    }
    cashlessRate(agencyCode: $a, month: \"2026-11\") { cases cashless online rate onlineRate }
    dailyReconciliation(agencyCode: $a, date: \"2026-11-22\") {
        ledgerTotal bankTotal matchedCount matchedTotal ledgerExceptionsTotal
    }
}";

/// The reports, once `wanted` holds of them (or as they are after [`PATIENCE`]).
async fn reports_until(base: &str, finance: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reports = graphql(base, finance, REPORTS, json!({ "a": AGENCY })).await;
        if wanted(&reports) || Instant::now() > deadline {
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every projection has applied every committed event and none is rebuilding.
async fn caught_up(base: &str, admin: &str) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let data = graphql(base, admin, "{ projections { name generation lag rebuilding } }", json!({})).await;
        let statuses = data["projections"].as_array().unwrap().clone();
        if statuses.iter().all(|p| p["lag"] == "0" && p["rebuilding"] == false) {
            return statuses;
        }
        assert!(Instant::now() < deadline, "the projections never caught up: {statuses:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn kill_twice_under_signed_notifications(database: TestDatabase) {
    let started = Instant::now();
    let url = database.url.clone();
    let env = settings();
    node::migrate(&url, &env);
    let first = Node::start(&url, &env, &["--demo"]);
    let token = |args: &[&str]| node::token(&url, &env, args);
    let officer = token(&["--role", "officer", "--agency", AGENCY]);
    let finance = token(&["--role", "finance", "--agency", AGENCY]);
    let auditor = token(&["--role", "auditor"]);
    let admin = token(&["--role", "admin"]);
    for n in 0..CASES {
        graphql(
            &first.base,
            &officer,
            "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
            json!({ "input": {
                "caseCode": case_code(n), "agencyCode": AGENCY, "procedureName": "Chứng thực",
                "payer": { "name": "NGUYỄN VĂN A" }, "lines": [{ "feeCode": FEE_CODE, "quantity": 1 }]
            }}),
        )
        .await;
    }

    // Two senders per notification, side by side, so copies race each other.
    let notifications = Arc::new(notifications());
    let total = notifications.len();
    let delivered = Arc::new(Delivered {
        acknowledged: (0..total).map(|_| AtomicBool::new(false)).collect(),
        count: AtomicUsize::new(0),
    });
    let (base_tx, base_rx) = watch::channel(first.base.clone());
    let client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
    let senders = {
        let (notifications, delivered) = (notifications.clone(), delivered.clone());
        tokio::spawn(async move {
            use futures::StreamExt;
            let jobs = (0..total).flat_map(|index| std::iter::repeat_n(index, SENDERS_PER_NOTIFICATION));
            futures::stream::iter(jobs)
                .map(|index| sender(client.clone(), base_rx.clone(), notifications.clone(), delivered.clone(), index))
                .buffer_unordered(SENDERS_AT_ONCE)
                .collect::<Vec<Result<(), String>>>()
                .await
        })
    };

    // SIGKILL at a third and at two thirds; each time a new node takes over the same database.
    wait_until_acknowledged(&delivered, total / 3).await;
    first.kill();
    let second = Node::start(&url, &env, &[]);
    base_tx.send(second.base.clone()).unwrap();
    wait_until_acknowledged(&delivered, total * 2 / 3).await;
    second.kill();
    let store = Storage::connect(&url, StoreOptions { max_connections: 2, ..StoreOptions::default() }).await.unwrap();
    // Down long enough that what the kill stranded is due for recovery when the node starts,
    // rather than at the next periodic pass. Counted after the pause: PostgreSQL may still finish
    // a statement the dead node had sent.
    tokio::time::sleep(RECOVERY_DUE).await;
    let stranded = inbox_outcomes(&store).await.get("received").copied().unwrap_or(0);
    assert!(stranded > 0, "the kills cut nothing off half-way: this run did not exercise recovery");
    let last = Node::start(&url, &env, &[]);
    base_tx.send(last.base.clone()).unwrap();
    let results = tokio::time::timeout(PATIENCE, senders).await.expect("the senders never finished").unwrap();
    let undelivered: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(undelivered.is_empty(), "{undelivered:?}");
    let delivered_in = started.elapsed();

    // No request is left half-handled: recovery re-processes or supersedes what the kills cut off.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let outcomes = inbox_outcomes(&store).await;
        if !outcomes.contains_key("received") {
            break;
        }
        assert!(Instant::now() < deadline, "inbox rows are left `received`: {outcomes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered = recovered_total(&last.base).await;
    assert!(recovered.is_some(), "/metrics has no feeledger_inbox_recovered_total");
    assert!(
        recovered.unwrap_or_default() >= stranded as f64,
        "{stranded} rows were stranded by the last kill, feeledger_inbox_recovered_total is {recovered:?}"
    );

    // Exactly once: each acknowledged credit observed once with its amount and resolved once;
    // each one naming a case paid once, on that case, with its amount; nothing else.
    let naming_a_case = notifications.iter().filter(|n| n.case_code.is_some()).count();
    let events = commit_safe_events(&last.base, &auditor, total, naming_a_case).await;
    let mut observed: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut resolved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut payments: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for event in &events {
        let stream = event["streamId"].as_str().unwrap();
        let credit_id = || stream.strip_prefix("bank-credit-").unwrap_or(stream).to_owned();
        match event["type"].as_str().unwrap() {
            "BankCreditObserved" => {
                observed.entry(credit_id()).or_default().push(dong(&event["data"]["credit"]["amount"]));
            }
            kind @ ("CreditMatched" | "CreditUnmatched") => {
                resolved.entry(credit_id()).or_default().push(kind.to_owned());
            }
            "PaymentReceived" => {
                let key = event["data"]["idempotency_key"].as_str().unwrap().to_owned();
                payments.entry(key).or_default().push((stream.to_owned(), dong(&event["data"]["amount"])));
            }
            _ => {}
        }
    }
    let expected_observed: BTreeMap<String, Vec<i64>> =
        notifications.iter().map(|n| (n.credit_id.clone(), vec![n.amount_vnd])).collect();
    let wrong = differences(&observed, &expected_observed);
    assert!(wrong.is_empty(), "each credit observed exactly once, with its amount: {wrong:#?}");
    let expected_resolved: BTreeMap<String, Vec<String>> = notifications
        .iter()
        .map(|n| {
            let kind = if n.case_code.is_some() { "CreditMatched" } else { "CreditUnmatched" };
            (n.credit_id.clone(), vec![kind.to_owned()])
        })
        .collect();
    let wrong = differences(&resolved, &expected_resolved);
    assert!(wrong.is_empty(), "each credit matched or left unmatched exactly once: {wrong:#?}");
    let expected_payments: BTreeMap<String, Vec<(String, i64)>> = notifications
        .iter()
        .filter_map(|n| Some((n.credit_id.clone(), vec![(format!("case-{}", n.case_code.as_ref()?), n.amount_vnd)])))
        .collect();
    let wrong = differences(&payments, &expected_payments);
    assert!(wrong.is_empty(), "each credit naming a case paid once, on that case: {wrong:#?}");
    let sent: BTreeSet<&str> = notifications.iter().map(|n| n.credit_id.as_str()).collect();
    let matched: BTreeSet<&str> =
        notifications.iter().filter(|n| n.case_code.is_some()).map(|n| n.credit_id.as_str()).collect();

    // The sums: what was acknowledged is what the ledger says was paid or is waiting.
    let acknowledged_vnd: i64 = notifications.iter().map(|n| n.amount_vnd).sum();
    let matched_vnd: i64 = notifications.iter().filter(|n| n.case_code.is_some()).map(|n| n.amount_vnd).sum();
    let mut cases_paid_vnd = 0;
    for n in 0..CASES {
        let data = graphql(
            &last.base,
            &finance,
            "query($code: String!) { case(code: $code) { status paid } }",
            json!({ "code": case_code(n) }),
        )
        .await;
        assert_eq!(data["case"]["status"], "PAID", "{}: {data}", case_code(n));
        assert_eq!(dong(&data["case"]["paid"]), CASE_TOTAL_VND);
        cases_paid_vnd += dong(&data["case"]["paid"]);
    }
    let queue = graphql(
        &last.base,
        &finance,
        "query($a: String!) { unmatchedCredits(agencyCode: $a) { id amount } }",
        json!({ "a": AGENCY }),
    )
    .await;
    let waiting: Vec<&Value> = queue["unmatchedCredits"].as_array().unwrap().iter().collect();
    let waiting_ids: BTreeSet<&str> = waiting.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let unmatched_ids: BTreeSet<&str> = sent.difference(&matched).copied().collect();
    assert_eq!(waiting_ids, unmatched_ids, "the unmatched queue holds exactly the credits naming no case");
    let waiting_vnd: i64 = waiting.iter().map(|c| dong(&c["amount"])).sum();
    assert_eq!(cases_paid_vnd + waiting_vnd, acknowledged_vnd, "Σ acknowledged = Σ paid on cases + Σ waiting");

    // The read models, caught up, agree with the events and with a rebuild from position zero.
    // Each read model answers up to the commit barrier; poll until what it says is complete.
    let complete = |reports: &Value| {
        dong(&reports["treasuryReport"]["collected"]) == matched_vnd
            && reports["cashlessRate"]["cases"] == CASES
            && dong(&reports["dailyReconciliation"]["ledgerTotal"]) == matched_vnd
    };
    let before_statuses = caught_up(&last.base, &admin).await;
    let before = reports_until(&last.base, &finance, complete).await;
    assert!(complete(&before), "the read models disagree with the events: {before:#}");
    assert_eq!(before["treasuryReport"]["balanced"], true);
    assert_eq!(before["cashlessRate"]["cashless"], CASES, "every case was paid without cash");
    for name in ["treasury", "payments", "cashless", "receipts"] {
        graphql(
            &last.base,
            &admin,
            "mutation($n: String!) { rebuildProjection(name: $n) { name } }",
            json!({ "n": name }),
        )
        .await;
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let statuses = caught_up(&last.base, &admin).await;
        let generation = |list: &[Value], name: &Value| {
            list.iter().find(|p| &p["name"] == name).map_or(0, |p| p["generation"].as_i64().unwrap_or(0))
        };
        if before_statuses.iter().all(|p| generation(&statuses, &p["name"]) > generation(&before_statuses, &p["name"]))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the rebuilds never switched: {statuses:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = reports_until(&last.base, &finance, |reports| reports == &before).await;
    assert_eq!(before, after, "the caught-up read models differ from a fresh rebuild");
    store.close().await;
    eprintln!(
        "[{}] {total} notifications × {SENDERS_PER_NOTIFICATION} senders, 2 kills, {stranded} rows stranded by the last: \
         delivered in {} ms, checked in {} ms",
        database.backend_name,
        delivered_in.as_millis(),
        (started.elapsed() - delivered_in).as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_twice_under_duplicated_retried_notifications_records_each_once_on_sqlite() {
    kill_twice_under_signed_notifications(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_twice_under_duplicated_retried_notifications_records_each_once_on_postgresql() {
    let Some(database) = TestDatabase::postgres().await else { return };
    kill_twice_under_signed_notifications(database).await;
}
