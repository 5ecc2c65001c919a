//! Several `feeledger serve` processes on one PostgreSQL behave as one system: a subscriber on
//! one node sees a payment taken by another, and when the node running the projections is
//! killed, another continues them from the checkpoint with nothing lost or doubled.
use std::process::Command;
use std::time::{Duration, Instant};

use feeledger_infrastructure::test_support::TestDatabase;
use feeledger_tests::ws::Subscription;
use serde_json::{Value, json};

pub(crate) const SEPAY_KEY: &str = "sepay-api-key-for-two-nodes";
/// Casso's published sample key (not a secret): the failover test sends signed notifications.
pub(crate) const CASSO_KEY: &str = "mgExMrjj4i7a1p8Cs6LmFbpCd8lbw4sSX4LZXPag7TKazeIogtR90tvWYTkwQbvs";
pub(crate) const AGENCY: &str = "H34.22.6";
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// What every node of these tests is configured with, besides its database.
const NODE_ENV: [(&str, &str); 2] =
    [("FEELEDGER_SEPAY_API_KEY", SEPAY_KEY), ("FEELEDGER_CASSO_CHECKSUM_KEY", CASSO_KEY)];

pub(crate) use feeledger_tests::node::Node;

pub(crate) fn feeledger(database_url: &str) -> Command {
    feeledger_tests::node::feeledger(database_url, &NODE_ENV)
}

pub(crate) fn start_node(database_url: &str, extra: &[&str]) -> Node {
    Node::start(database_url, &NODE_ENV, extra)
}

pub(crate) fn token(database_url: &str, args: &[&str]) -> String {
    feeledger_tests::node::token(database_url, &NODE_ENV, args)
}

pub(crate) async fn graphql(node: &Node, token: &str, query: &str) -> Value {
    feeledger_tests::node::graphql(&node.base, token, query, Value::Null).await
}

pub(crate) async fn assess(node: &Node, officer: &str, code: &str) {
    let query = format!(
        "mutation {{ assessFees(input: {{ caseCode: \"{code}\", agencyCode: \"{AGENCY}\", procedureName: \"Chứng thực\", \
         payer: {{ name: \"NGUYỄN VĂN A\" }}, lines: [{{ feeCode: \"P-SAOY-2TRANG\", quantity: 1 }}] }}) {{ status }} }}"
    );
    graphql(node, officer, &query).await;
}

/// What SePay sends when `amount` arrives for `code`.
async fn pay_by_bank(node: &Node, id: u64, code: &str, amount: u64) {
    let body = json!({
        "id": id, "gateway": "VietinBank", "transactionDate": "2026-11-22 09:15:00",
        "accountNumber": "113366668888", "code": null, "content": format!("MBVCB.{id}.{code}.Thanh toan le phi"),
        "transferType": "in", "transferAmount": amount, "accumulated": amount, "subAccount": null,
        "referenceCode": format!("FT{id}")
    });
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/sepay", node.base))
        .header("Authorization", format!("Apikey {SEPAY_KEY}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
}

/// The operating-system process ids holding each projection's lease, from the lease
/// connections' `application_name` ("feeledger projection NAME (pid N)").
async fn lease_holders(database_url: &str) -> Vec<(String, u32)> {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let mut holders: Vec<(String, u32)> = names
        .iter()
        .filter_map(|name| {
            let rest = name.strip_prefix("feeledger projection ")?;
            let (projection, pid) = rest.split_once(" (pid ")?;
            Some((projection.to_owned(), pid.trim_end_matches(')').parse().ok()?))
        })
        .collect();
    holders.sort();
    holders
}

async fn wait_for_holders(database_url: &str, wanted: impl Fn(&[(String, u32)]) -> bool) -> Vec<(String, u32)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let holders = lease_holders(database_url).await;
        if wanted(&holders) {
            return holders;
        }
        assert!(Instant::now() < deadline, "projection leases never settled: {holders:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_nodes_on_one_postgresql_act_as_one_and_survive_the_projection_holder_being_killed() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let url = db.url.clone();
    let migrate = feeledger(&url).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));

    // Node A starts first (with the demo agency and schedule) and takes every projection.
    let mut a = start_node(&url, &["--demo"]);
    let a_pid = a.child.id();
    let holders = wait_for_holders(&url, |h| h.len() == 4).await;
    assert!(holders.iter().all(|(_, pid)| *pid == a_pid), "node A runs the projections: {holders:?}");
    let b = start_node(&url, &[]);
    let b_pid = b.child.id();

    let officer = token(&url, &["--role", "officer", "--agency", AGENCY]);
    let finance = token(&url, &["--role", "finance", "--agency", AGENCY]);
    let codes: Vec<String> = (1..=6).map(|n| format!("{AGENCY}-261122-{:04}", 100 + n)).collect();
    for code in &codes {
        assess(&a, &officer, code).await;
    }

    // A subscriber on B sees a payment that arrives through A.
    let mut on_b = Subscription::start(
        &b.base,
        &officer,
        "subscription($code: String!) { caseStatus(code: $code) { status paid } }",
        json!({ "code": codes[0] }),
    )
    .await;
    on_b.until(PATIENCE, |p| p["data"]["caseStatus"]["status"] == "ASSESSED").await;
    pay_by_bank(&a, 1, &codes[0], 2000).await;
    let paid = on_b.until(PATIENCE, |p| p["data"]["caseStatus"]["status"] == "PAID").await;
    assert_eq!(paid["data"]["caseStatus"]["paid"], "2000");
    pay_by_bank(&a, 2, &codes[1], 2000).await;
    pay_by_bank(&a, 3, &codes[2], 2000).await;

    // The projection holder dies without a word; B takes the leases over.
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let holders = wait_for_holders(&url, |h| h.len() == 4 && h.iter().all(|(_, pid)| *pid == b_pid)).await;
    assert_eq!(holders.len(), 4);
    drop(a);
    for (n, code) in codes.iter().enumerate().skip(3) {
        pay_by_bank(&b, 10 + n as u64, code, 2000).await;
    }
    // The same notification again, through the surviving node: still recorded once.
    pay_by_bank(&b, 13, &codes[3], 2000).await;

    // Every payment, before and after the failover, is in the read models exactly once.
    let query = format!(
        "{{ treasuryReport(agencyCode: \"{AGENCY}\", from: \"2020-01-01\", to: \"2030-12-31\") {{ collected balanced }} \
         projections {{ name lag }} }}"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let data = graphql(&b, &finance, &query).await;
        let caught_up = data["projections"].as_array().unwrap().iter().all(|p| p["lag"] == "0");
        let collected = data["treasuryReport"]["collected"].as_str().unwrap().to_owned();
        // The demo's own sample case is not paid; our six cases are, 2,000 each.
        if caught_up && collected == "12000" {
            assert_eq!(data["treasuryReport"]["balanced"], true);
            break;
        }
        assert!(Instant::now() < deadline, "the projections never caught up on node B: {data:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
