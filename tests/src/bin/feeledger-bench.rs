//! Load generators for docs/BENCHMARKS.md. Each prints one JSON line of results, so a script
//! can put them beside a baseline measured in the same run (see scripts/bench-*.sh).
#![allow(
    clippy::print_stdout,
    clippy::float_arithmetic,
    clippy::unwrap_used,
    reason = "a benchmark prints rates and percentiles and stops on any error"
)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use feeledger_domain::codes::{AccountNumber, BankBin};
use feeledger_domain::money::Vnd;
use feeledger_domain::vietqr::DynamicQr;
use feeledger_infrastructure::event_store::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StoreOptions};
use feeledger_tests::ws::Subscription;
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
#[command(name = "feeledger-bench", about = "feeledger load generators")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Appends of one event per transaction, each to a new stream, from N concurrent clients.
    Appends {
        #[arg(long, env = "FEELEDGER_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// VietQR payload encoding plus SVG rendering, one at a time, against encoding the QR matrix
    /// alone (the `qrcode` crate's own work) as the baseline.
    QrRender {
        #[arg(long, default_value_t = 20_000)]
        iterations: usize,
    },
    /// Commit → screen latency: `screens` WebSocket subscriptions (two per counter: officer and
    /// citizen) on a running server; payments are recorded one at a time over HTTP and the time
    /// from the HTTP answer (the payment is committed) to both screens' update is measured.
    Screens {
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        #[arg(long)]
        admin_token: String,
        /// An officer token of `--agency`.
        #[arg(long)]
        officer_token: String,
        #[arg(long, default_value = "B01.1")]
        agency: String,
        #[arg(long, default_value_t = 1000)]
        screens: usize,
        #[arg(long, default_value_t = 300)]
        payments: usize,
    },
}

fn percentiles(mut samples: Vec<u64>) -> Value {
    samples.sort_unstable();
    let at = |p: usize| samples.get((samples.len() * p / 100).min(samples.len().saturating_sub(1))).copied();
    json!({ "count": samples.len(), "p50": at(50), "p99": at(99), "max": samples.last() })
}

fn payment_event(n: u64) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "PaymentReceived".into(),
        schema_version: 1,
        payload: json!({
            "payment_id": uuid::Uuid::now_v7(), "idempotency_key": format!("bench-{n}"), "amount": "3000",
            "channel": "VIETQR", "reference": "H34.22.6-240426-0002", "provider": "sepay",
            "bank_reference": "MBVCB.3278907687", "qr_id": null, "payer_account": null,
            "received_at": "2024-04-26T02:18:00Z"
        }),
        metadata: EventMetadata { actor: Some("bench".into()), ..EventMetadata::default() },
    }
}

async fn appends(database_url: &str, clients: usize, seconds: u64) -> anyhow::Result<()> {
    let options = StoreOptions { max_connections: u32::try_from(clients + 2)?, ..StoreOptions::default() };
    let store = EventStore::connect(database_url, options).await?;
    store.migrate().await?;
    let run_id = Arc::new(uuid::Uuid::new_v4().simple().to_string());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::with_capacity(clients);
    let started = Instant::now();
    for client in 0..clients {
        let store = store.clone();
        let run_id = run_id.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies_us = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let stream = format!("bench-{run_id}-{client}-{n}");
                let begin = Instant::now();
                store.append(&stream, ExpectedVersion::NoStream, vec![payment_event(n)], None).await?;
                latencies_us.push(u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX));
                n += 1;
            }
            anyhow::Ok(latencies_us)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = latencies.len();
    let stats = percentiles(latencies);
    println!(
        "{}",
        json!({
            "bench": "appends", "backend": format!("{:?}", store.backend()), "clients": clients,
            "events": count, "seconds": elapsed, "events_per_sec": (count as f64 / elapsed).round(),
            "p50_us": stats["p50"], "p99_us": stats["p99"],
        })
    );
    Ok(())
}

fn qr_render(iterations: usize) -> anyhow::Result<()> {
    let mut payload_and_svg_us = Vec::with_capacity(iterations);
    let mut matrix_only_us = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let qr = DynamicQr {
            bank_bin: BankBin::parse("970415")?,
            account_number: AccountNumber::parse("113366668888")?,
            amount: Vnd::new(1_000 + i64::try_from(i % 500_000)?)?,
            purpose: format!("H34.22.6-240426-{:04}", i % 10_000),
        };
        let begin = Instant::now();
        let payload = qr.encode()?;
        let svg = feeledger_api::qr_image::svg(&payload)?;
        payload_and_svg_us.push(u64::try_from(begin.elapsed().as_micros())?);
        std::hint::black_box(svg);

        let begin = Instant::now();
        let matrix = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)?;
        matrix_only_us.push(u64::try_from(begin.elapsed().as_micros())?);
        std::hint::black_box(matrix);
    }
    println!(
        "{}",
        json!({ "bench": "qr-render", "iterations": iterations,
                "payload_and_svg_us": percentiles(payload_and_svg_us), "matrix_only_us": percentiles(matrix_only_us) })
    );
    Ok(())
}

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body: Value = client
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(body.get("errors").is_none(), "GraphQL errors: {body}");
    Ok(body["data"].clone())
}

struct Delivery {
    counter: usize,
    at: Instant,
}

async fn screens(
    url: &str,
    admin: &str,
    officer: &str,
    agency: &str,
    screens: usize,
    payments: usize,
) -> anyhow::Result<()> {
    let counters = screens.div_ceil(2).max(1);
    let client = reqwest::Client::new();
    let counter_ids: Vec<String> = (0..counters).map(|i| format!("c-{i:04}")).collect();
    graphql(
        &client,
        url,
        admin,
        "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
        json!({ "input": { "code": agency, "name": "Benchmark agency", "bankBin": "970415", "accountNumber": "113366668888",
            "accountName": "BENCH", "retainsFees": false, "counters": counter_ids } }),
    )
    .await?;
    let schedules = graphql(
        &client,
        url,
        admin,
        "query($a: String!) { feeSchedules(agencyCode: $a) { version } }",
        json!({ "a": agency }),
    )
    .await?;
    if schedules["feeSchedules"].as_array().is_none_or(Vec::is_empty) {
        graphql(
            &client,
            url,
            admin,
            "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }",
            json!({ "input": { "agencyCode": agency, "effectiveFrom": "2020-01-01", "fees": [
                { "feeCode": "LP-1", "name": "Lệ phí", "kind": "LE_PHI", "unitAmount": "1000", "retentionPercent": "0" } ] } }),
        )
        .await?;
    }
    // One fresh case per counter, with a QR for 1,000 × payments-per-case.
    let run = chrono::Utc::now().format("%y%m%d").to_string();
    let per_case = payments.div_ceil(counters).max(1) + 1;
    let seq_base = (std::process::id() % 5) * 2000;
    let mut cases = Vec::with_capacity(counters);
    for (i, counter) in counter_ids.iter().enumerate() {
        let case = format!("{agency}-{run}-{:04}", seq_base as usize + i);
        graphql(
            &client,
            url,
            officer,
            "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
            json!({ "input": { "caseCode": case, "agencyCode": agency, "procedureName": "Bench",
                "payer": { "name": "Bench" }, "lines": [{ "feeCode": "LP-1", "quantity": per_case }] } }),
        )
        .await?;
        graphql(
            &client,
            url,
            officer,
            "mutation($c: String!, $k: String!) { issueQr(caseCode: $c, counterId: $k) { id } }",
            json!({ "c": case, "k": counter }),
        )
        .await?;
        cases.push(case);
    }

    // The screens: two subscriptions per counter, each reporting every display it receives.
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let query = "subscription($k: String!, $a: String) { counterDisplay(counterId: $k, agencyCode: $a) { version } }";
    for s in 0..screens {
        let counter = s % counters;
        let mut subscription =
            Subscription::start(url, admin, query, json!({ "k": counter_ids[counter], "a": agency })).await;
        let tx = tx.clone();
        tokio::spawn(async move {
            while subscription.next(Duration::from_secs(3600)).await.is_some() {
                if tx.send(Delivery { counter, at: Instant::now() }).is_err() {
                    return;
                }
            }
        });
    }
    // Every screen first shows its counter's current display.
    for _ in 0..screens {
        tokio::time::timeout(Duration::from_secs(60), rx.recv()).await?.ok_or_else(|| anyhow::anyhow!("closed"))?;
    }

    let mut latencies_us = Vec::with_capacity(payments * 2);
    let mut http_us = Vec::with_capacity(payments);
    let screens_per_counter = |counter: usize| (0..screens).filter(|s| s % counters == counter).count();
    for n in 0..payments {
        let counter = n % counters;
        let begin = Instant::now();
        graphql(
            &client,
            url,
            officer,
            "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { version } }",
            json!({ "input": { "caseCode": cases[counter], "amount": "1000", "channel": "CASH", "reference": format!("B{n}"), "idempotencyKey": format!("bench-{run}-{}-{n}", std::process::id()) } }),
        )
        .await?;
        let committed = Instant::now();
        http_us.push(u64::try_from(committed.duration_since(begin).as_micros())?);
        let mut waiting = screens_per_counter(counter);
        while waiting > 0 {
            let delivery = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("closed"))?;
            if delivery.counter == counter {
                latencies_us.push(u64::try_from(delivery.at.saturating_duration_since(committed).as_micros())?);
                waiting -= 1;
            }
        }
    }
    println!(
        "{}",
        json!({ "bench": "screens", "screens": screens, "counters": counters, "payments": payments,
                "commit_to_screen_us": percentiles(latencies_us), "record_payment_http_us": percentiles(http_us) })
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Bench::Appends { database_url, clients, seconds } => appends(&database_url, clients, seconds).await,
            Bench::QrRender { iterations } => qr_render(iterations),
            Bench::Screens { url, admin_token, officer_token, agency, screens: count, payments } => {
                screens(&url, &admin_token, &officer_token, &agency, count, payments).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
