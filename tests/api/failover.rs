//! Two `feeledger serve` nodes on a PostgreSQL primary with a synchronous streaming replica,
//! named together in one multi-host URL. Under concurrent signed webhook load with duplicates,
//! the primary is killed (`pg_ctl stop -m immediate`) and the replica promoted: the nodes find
//! the new primary by themselves, every notification acknowledged before and after is recorded
//! exactly once, and the read models equal a replay of the log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use feeledger_infrastructure::bank_feed::{self, Secret};
use feeledger_infrastructure::test_support::TestDatabase;
use feeledger_infrastructure::test_support::replicated::{self, ReplicatedCluster, Replication};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::nodes::{AGENCY, CASSO_KEY, Node, PATIENCE, assess, feeledger, graphql, start_node, token};

/// Cases paid during the test, one notification each.
const CASES: usize = 48;
/// Concurrent senders (a provider delivers notifications in parallel).
const SENDERS: usize = 4;
/// Every third notification is delivered twice, the copy to the other node.
const DUPLICATE_EVERY: usize = 3;
/// Pause between one sender's notifications, so that the load spans the failover.
const SEND_PAUSE: Duration = Duration::from_millis(40);
/// How long a sender waits before delivering a refused notification again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

fn case_code(n: usize) -> String {
    format!("{AGENCY}-261122-{:04}", 200 + n)
}

/// What Casso sends when 2,000 đồng arrive for case `n`, signed with its key.
async fn casso_delivers(client: &reqwest::Client, node: &Node, n: usize) -> u16 {
    let body = json!({ "error": 0, "data": {
        "id": 70_000 + n, "reference": format!("CS{n}"), "description": format!("{} thanh toan le phi", case_code(n)),
        "amount": 2000, "runningBalance": 25_000_000, "transactionDateTime": "2026-11-22 09:20:00",
        "accountNumber": "113366668888", "bankName": "VietinBank", "bankAbbreviation": "ICB",
        "virtualAccountNumber": "", "virtualAccountName": "", "counterAccountName": "NGUYEN VAN A",
        "counterAccountNumber": "8888888888", "counterAccountBankId": "970415", "counterAccountBankName": "VietinBank"
    }})
    .to_string();
    let signature = bank_feed::casso::sign(body.as_bytes(), 1_763_780_400_000, &Secret::new(CASSO_KEY)).unwrap();
    let sent = client
        .post(format!("{}/webhooks/casso", node.base))
        .header("Content-Type", "application/json")
        .header(bank_feed::casso::SIGNATURE_HEADER, signature)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    sent.map_or(0, |response| response.status().as_u16())
}

/// Deliveries not acknowledged (the provider sends them again).
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Delivers until acknowledged (200), as a provider retries; returns when it was acknowledged.
async fn deliver_until_acknowledged(client: &reqwest::Client, node: &Node, n: usize) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if casso_delivers(client, node, n).await == 200 {
            return Instant::now();
        }
        REFUSED.fetch_add(1, Ordering::SeqCst);
        assert!(Instant::now() < deadline, "notification {n} was never acknowledged");
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// A node's `/readyz`: its status code and the primary it names.
type Readiness = (u16, Option<String>);

async fn ready(client: &reqwest::Client, node: &Node) -> Readiness {
    let Ok(response) = client.get(format!("{}/readyz", node.base)).timeout(Duration::from_secs(3)).send().await else {
        return (0, None);
    };
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["primary"].as_str().map(str::to_owned))
}

/// The active generation's documents of every projection.
async fn read_models(url: &str) -> BTreeMap<(String, String), Value> {
    let mut connection = replicated::connect(url).await;
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT d.projection, d.key, d.doc FROM read_model_documents d \
         JOIN projection_state s ON s.name = d.projection AND s.active_generation = d.generation",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    rows.into_iter().map(|(projection, key, doc)| ((projection, key), doc)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_lose_no_acknowledged_payment_when_the_primary_dies_and_the_replica_is_promoted() {
    let Some(cluster) = ReplicatedCluster::start(Replication::Synchronous).await else { return };
    cluster.create_database("feeledger").await;
    let url = cluster.url("feeledger");
    let migrate = feeledger(&url).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let a = Arc::new(start_node(&url, &["--demo"]));
    let b = Arc::new(start_node(&url, &[]));
    let client = reqwest::Client::new();
    for node in [&a, &b] {
        assert_eq!(ready(&client, node).await, (200, Some(cluster.primary.host())), "/readyz names the primary");
    }
    let officer = token(&url, &["--role", "officer", "--agency", AGENCY]);
    let finance = token(&url, &["--role", "finance", "--agency", AGENCY]);
    for n in 0..CASES {
        assess(if n % 2 == 0 { &a } else { &b }, &officer, &case_code(n)).await;
    }

    // A provider delivers every notification until it is acknowledged, to either node.
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (next, acknowledged, client, a, b) =
            (next.clone(), acknowledged.clone(), client.clone(), a.clone(), b.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= CASES {
                    return;
                }
                let (first, other) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
                let at = deliver_until_acknowledged(&client, first, n).await;
                acknowledged.lock().await.push((n, at));
                if n % DUPLICATE_EVERY == 0 {
                    let at = deliver_until_acknowledged(&client, other, n).await;
                    acknowledged.lock().await.push((n, at));
                }
                tokio::time::sleep(SEND_PAUSE).await;
            }
        }));
    }
    // Both nodes' readiness, watched throughout.
    let watching = Arc::new(AtomicBool::new(true));
    let readiness = {
        let (watching, client, a, b) = (watching.clone(), client.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            let mut seen: Vec<(Instant, [Readiness; 2])> = Vec::new();
            while watching.load(Ordering::SeqCst) {
                let answers = [ready(&client, &a).await, ready(&client, &b).await];
                seen.push((Instant::now(), answers));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            seen
        })
    };

    while acknowledged.lock().await.len() < CASES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = Instant::now();
    cluster.crash_primary().await;
    cluster.promote_replica().await;
    let promoted = Instant::now();
    for sender in senders {
        sender.await.unwrap();
    }
    // Both nodes name the new primary and are ready.
    let deadline = Instant::now() + PATIENCE;
    while [ready(&client, &a).await, ready(&client, &b).await]
        != [(200, Some(cluster.replica.host())), (200, Some(cluster.replica.host()))]
    {
        assert!(Instant::now() < deadline, "the nodes never followed the promoted replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watching.store(false, Ordering::SeqCst);
    let readiness = readiness.await.unwrap();

    // Every notification is recorded exactly once, on the new primary.
    let database = cluster.replica.url("feeledger");
    let mut db = replicated::connect(&database).await;
    let payments: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, count(*) FROM events WHERE event_type = 'PaymentReceived' GROUP BY stream_id ORDER BY stream_id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(payments.len(), CASES, "every case is paid: {payments:?}");
    assert!(payments.iter().all(|(_, count)| *count == 1), "a payment was recorded twice: {payments:?}");
    let credits: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'BankCreditObserved'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(credits, CASES as i64, "each notification is one bank credit");
    let acknowledged = acknowledged.lock().await.clone();
    assert_eq!(acknowledged.len(), CASES + CASES.div_ceil(DUPLICATE_EVERY));

    // The read models catch up on the new primary, with every payment once…
    let query = format!(
        "{{ treasuryReport(agencyCode: \"{AGENCY}\", from: \"2020-01-01\", to: \"2030-12-31\") {{ collected balanced }} \
         projections {{ name lag }} }}"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let data = graphql(&b, &finance, &query).await;
        let caught_up = data["projections"].as_array().unwrap().iter().all(|p| p["lag"] == "0");
        if caught_up && data["treasuryReport"]["collected"].as_str() == Some(&(CASES * 2000).to_string()) {
            assert_eq!(data["treasuryReport"]["balanced"], true);
            break;
        }
        assert!(Instant::now() < deadline, "the projections never caught up after the failover: {data:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // …and equal a replay of the log from the start.
    let followed = read_models(&database).await;
    for projection in ["treasury", "payments", "cashless", "receipts"] {
        let rebuild = feeledger(&url).args(["projections", "rebuild", projection]).output().unwrap();
        assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
    }
    let replayed = read_models(&database).await;
    assert!(!followed.is_empty());
    assert_eq!(followed, replayed, "the read models followed across the failover equal a replay");

    // How long the service could not take a payment.
    let unready: Vec<Instant> = readiness
        .iter()
        .filter(|(_, answers)| answers.iter().any(|(status, _)| *status != 200))
        .map(|(at, _)| *at)
        .collect();
    let unready_ms = match (unready.first(), unready.last()) {
        (Some(first), Some(last)) => (*last - *first).as_millis() + 25,
        _ => 0,
    };
    let following = (200, Some(cluster.replica.host()));
    let ready_after_promotion = readiness
        .iter()
        .find(|(at, answers)| *at >= promoted && answers.iter().all(|answer| *answer == following))
        .map(|(at, _)| *at - promoted);
    let mut times: Vec<Instant> = acknowledged.iter().map(|(_, at)| *at).collect();
    times.sort();
    let gap = times.windows(2).map(|pair| pair[1] - pair[0]).max().unwrap_or_default();
    let first_after = times.iter().find(|at| **at > killed).map(|at| *at - killed);
    eprintln!(
        "failover of two nodes: promoted {} ms after the kill; both nodes ready on the new primary {} ms after \
         the promotion; /readyz not 200 on some node for ~{unready_ms} ms; \
         first acknowledgement {} ms after the kill; longest gap between acknowledgements {} ms; \
         {} deliveries refused and sent again",
        (promoted - killed).as_millis(),
        ready_after_promotion.map_or(0, |d| d.as_millis()),
        first_after.map_or(0, |d| d.as_millis()),
        gap.as_millis(),
        REFUSED.load(Ordering::SeqCst)
    );
    assert!(gap < Duration::from_secs(10), "payments stopped for {gap:?}");
}

/// With `FEELEDGER_READ_DATABASE_URL` naming the replica, case reads are served by it, and a
/// reader still sees its own write at once: the read waits until the replica has replayed what
/// the primary had written, and goes to the primary when the replica lags too long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_reads_come_from_the_replica_and_still_see_the_readers_own_writes() {
    let Some(cluster) = ReplicatedCluster::start(Replication::Synchronous).await else { return };
    cluster.create_database("feeledger").await;
    // The replica has the database once it has replayed its creation (flushed is not enough).
    cluster.wait_until_replayed().await;
    let read_url = format!("{}?target_session_attrs=prefer-standby", cluster.replica.url("feeledger"));
    let app = feeledger_tests::spawn_app_with(TestDatabase::external(cluster.url("feeledger")), |settings| {
        settings.read_database_url = Some(read_url);
    })
    .await;
    const AGENCY_HERE: &str = "H34.22.7";
    app.configure_agency(AGENCY_HERE).await;
    let officer = app.officer(AGENCY_HERE);
    let assess = "mutation($code: String!) { assessFees(input: { caseCode: $code, agencyCode: \"H34.22.7\", \
                  procedureName: \"Chứng thực\", payer: { name: \"NGUYỄN VĂN B\" }, \
                  lines: [{ feeCode: \"P-SAOY\", quantity: 2 }] }) { version } }";
    let read = "query($code: String!) { case(code: $code) { status total version } }";
    let reads = || app.state.ledger.store().replica_reads();

    // Read-your-writes from the replica: each mutation is followed at once by a read. On a
    // loaded machine the replica may replay one late (> REPLICA_WAIT): the primary answers that
    // read, still with the write.
    let mut replica_ms = Vec::new();
    let (by_replica_before, _) = reads();
    for n in 0..20 {
        let code = format!("{AGENCY_HERE}-261122-{:04}", 300 + n);
        let written = app.graphql_ok(&officer, assess, json!({ "code": code })).await;
        let started = Instant::now();
        let data = app.graphql_ok(&officer, read, json!({ "code": code })).await;
        replica_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(data["case"]["version"], written["assessFees"]["version"], "the reader sees its own write");
    }
    let served_by_replica = reads().0 - by_replica_before;
    assert!(served_by_replica >= 15, "most reads are served by the replica: {served_by_replica} of 20");

    // A replica that stops replaying: the read waits its bounded time, then the primary answers.
    let mut replica = replicated::connect(&cluster.replica.url("postgres")).await;
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut replica).await.unwrap();
    let code = format!("{AGENCY_HERE}-261122-0399");
    app.graphql_ok(&officer, assess, json!({ "code": code })).await;
    let (_, by_primary) = reads();
    let started = Instant::now();
    let data = app.graphql_ok(&officer, read, json!({ "code": code })).await;
    let lagging = started.elapsed();
    assert_eq!(data["case"]["status"], "ASSESSED", "the primary answered for the lagging replica");
    assert_eq!(reads().1, by_primary + 1);
    let wait = feeledger_infrastructure::storage::REPLICA_WAIT;
    assert!(lagging >= wait && lagging < wait + Duration::from_secs(2), "bounded: {lagging:?}");
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut replica).await.unwrap();

    // The baseline: the same reads by a node without a replica, from the primary.
    let primary_only = feeledger_tests::spawn_app(TestDatabase::external(cluster.url("feeledger"))).await;
    let officer = primary_only.officer(AGENCY_HERE);
    let mut primary_ms = Vec::new();
    for n in 0..20 {
        let code = format!("{AGENCY_HERE}-261122-{:04}", 300 + n);
        let started = Instant::now();
        primary_only.graphql_ok(&officer, read, json!({ "code": code })).await;
        primary_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |mut ms: Vec<f64>| {
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
    };
    eprintln!(
        "case read right after its write: from the replica, median {:.1} ms; from the primary (no replica), \
         median {:.1} ms; with the replica's replay paused: {} ms",
        median(replica_ms),
        median(primary_ms),
        lagging.as_millis()
    );
}
