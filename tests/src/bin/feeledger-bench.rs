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
    /// Fills a database with realistic events fast: each case's whole life is decided in memory
    /// by the domain (assessed, QR issued, paid in one or two parts, sometimes overpaid) and
    /// appended as one stream, from concurrent clients.
    Generate {
        #[arg(long, env = "FEELEDGER_DATABASE_URL")]
        database_url: String,
        /// Stop after about this many events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 20)]
        agencies: u32,
        #[arg(long, default_value_t = 16)]
        clients: usize,
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

/// The life of one case, decided by the domain: returns its events.
fn case_life(
    code: &feeledger_domain::codes::CaseCode,
    schedule: &feeledger_domain::fee_schedule::FeeScheduleVersion,
    bank: &feeledger_domain::codes::BankAccount,
    at: chrono::DateTime<chrono::Utc>,
    roll: u64,
) -> anyhow::Result<Vec<feeledger_domain::case_fees::CaseEvent>> {
    use feeledger_domain::case_fees::{self as cf, Command};
    let fees = &schedule.fees;
    let first = usize::try_from(roll % fees.len() as u64)?;
    let mut lines =
        vec![cf::FeeLineRequest { fee_code: fees[first].fee_code.clone(), quantity: 1 + u32::try_from(roll % 3)? }];
    if roll.is_multiple_of(3) {
        lines.push(cf::FeeLineRequest { fee_code: fees[(first + 1) % fees.len()].fee_code.clone(), quantity: 1 });
    }
    let mut commands = vec![
        Command::AssessFees(cf::AssessFees {
            case_code: code.clone(),
            agency_code: code.agency(),
            procedure_name: "Chứng thực bản sao từ bản chính".into(),
            payer: feeledger_domain::payer::Payer::new("Nguyễn Văn An", Some("079201008870"))?,
            lines,
            schedule: schedule.clone(),
            counter_id: Some(feeledger_domain::codes::CounterId::parse("quay-1")?),
            now: at,
            procedure_code: None,
        }),
        Command::IssueQr(cf::IssueQr {
            qr_id: uuid::Uuid::new_v4(),
            counter_id: feeledger_domain::codes::CounterId::parse("quay-1")?,
            beneficiary: bank.clone(),
            now: at,
            expires_at: at + chrono::Duration::minutes(15),
        }),
    ];
    let pay = |key: &str, amount: Vnd, minutes: i64, channel: cf::PaymentChannel| {
        Command::RecordPayment(cf::RecordPayment {
            payment_id: uuid::Uuid::now_v7(),
            idempotency_key: key.to_owned(),
            amount,
            channel,
            reference: code.to_string(),
            provider: Some("sepay".into()),
            bank_reference: Some(format!("FT{}", roll % 1_000_000_000)),
            qr_id: None,
            payer_account: None,
            received_at: at + chrono::Duration::minutes(minutes),
        })
    };
    let mut state = cf::CaseFees::default();
    let mut events = Vec::new();
    let mut decide = |state: &mut cf::CaseFees, command: Command| -> anyhow::Result<()> {
        for event in cf::decide(state, command)? {
            *state = cf::evolve(std::mem::take(state), &event);
            events.push(event);
        }
        Ok(())
    };
    for command in commands.drain(..) {
        decide(&mut state, command)?;
    }
    let total = state.total();
    match roll % 10 {
        0 => {
            let half = Vnd::new((total.dong() / 2000).max(1) * 1000)?;
            decide(&mut state, pay("p1", half, 2, cf::PaymentChannel::Vietqr))?;
            decide(&mut state, pay("p2", total.checked_sub(half)?, 20, cf::PaymentChannel::Vietqr))?;
        }
        1 => decide(&mut state, pay("p1", total, 1, cf::PaymentChannel::Cash))?,
        2 => {
            decide(&mut state, pay("p1", total, 2, cf::PaymentChannel::Vietqr))?;
            decide(&mut state, pay("p2", total, 9, cf::PaymentChannel::Vietqr))?;
        }
        3 => {}
        _ => decide(&mut state, pay("p1", total, 3, cf::PaymentChannel::Vietqr))?,
    }
    Ok(events)
}

async fn generate(database_url: &str, target_events: u64, agencies: u32, clients: usize) -> anyhow::Result<()> {
    use feeledger_infrastructure::codec::{LedgerEvent, case_stream};
    let options = StoreOptions { max_connections: u32::try_from(clients + 2)?, ..StoreOptions::default() };
    let store = EventStore::connect(database_url, options).await?;
    store.migrate().await?;
    let ledger = feeledger_infrastructure::ledger::Ledger::new(store.clone());
    let metadata = EventMetadata { actor: Some("generator".into()), ..EventMetadata::default() };
    let mut setups = Vec::new();
    for a in 0..agencies {
        let agency = feeledger_domain::codes::AgencyCode::parse(&format!("G{:02}.{}", a % 100, a / 100 + 1))?;
        let account = format!("9700{:06}", a + 1);
        feeledger_tests::traffic::configure(&ledger, &agency, &account, &metadata).await?;
        let schedule = ledger.schedule_in_force(&agency, chrono::Utc::now()).await?;
        let bank = ledger
            .agency(&agency)
            .await?
            .current
            .map(|c| c.bank_account)
            .ok_or_else(|| anyhow::anyhow!("no agency"))?;
        setups.push((agency, schedule, bank));
    }
    let setups = Arc::new(setups);
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for client in 0..clients {
        let (store, setups, written, metadata) = (store.clone(), setups.clone(), written.clone(), metadata.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while written.load(std::sync::atomic::Ordering::Relaxed) < target_events {
                let roll = (n * clients as u64 + client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
                let (agency, schedule, bank) = &setups[usize::try_from(roll % setups.len() as u64)?];
                // A case code per (client, n): 30 days of October 2026, up to 9,999 cases a day.
                let seq = n * clients as u64 + client as u64;
                let day = 1 + (seq / 9_999) % 30;
                let code =
                    feeledger_domain::codes::CaseCode::parse(&format!("{agency}-2610{day:02}-{:04}", 1 + seq % 9_999))?;
                let at = chrono::DateTime::parse_from_rfc3339(&format!("2026-10-{day:02}T02:{:02}:00Z", seq % 60))?
                    .with_timezone(&chrono::Utc)
                    + chrono::Duration::minutes(i64::try_from(roll % 400)?);
                let events = case_life(&code, schedule, bank, at, roll)?;
                let rows = events
                    .into_iter()
                    .map(|e| LedgerEvent::Case(e).to_new_event(&metadata))
                    .collect::<Result<Vec<_>, _>>()?;
                let count = rows.len() as u64;
                match store.append(&case_stream(&code), ExpectedVersion::NoStream, rows, None).await {
                    Ok(_) => {
                        written.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                    }
                    // Several runs into one database reuse codes: skip the ones taken.
                    Err(feeledger_infrastructure::event_store::StoreError::Conflict { .. }) => {}
                    Err(other) => return Err(other.into()),
                }
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let events = written.load(std::sync::atomic::Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "bench": "generate", "events": events, "agencies": agencies, "seconds": seconds, "events_per_sec": (events as f64 / seconds).round() })
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
            Bench::Generate { database_url, events, agencies, clients } => {
                generate(&database_url, events, agencies, clients).await
            }
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
