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
use feeledger_infrastructure::storage::{EventMetadata, ExpectedVersion, NewEvent, Storage, StoreOptions};
use feeledger_tests::ws::Subscription;
use futures::StreamExt as _;
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
        /// Payments per second, sent on a fixed schedule whatever the answers' pace (open
        /// loop); 0 sends them one after another, each once the last one's screens updated.
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// The server's process id, to report its resident memory before and with the
        /// screens open (Linux `/proc`).
        #[arg(long)]
        server_pid: Option<u32>,
        /// Screens opening at once, each until its first display arrived (the rest wait their
        /// turn), so the server has at most this many first reads queued on its pool.
        #[arg(long, default_value_t = 200)]
        connect_concurrency: usize,
        /// Give up when not every screen shows its first display within this many seconds.
        #[arg(long, default_value_t = 1800)]
        open_timeout_secs: u64,
        /// With `--rate`: pay for this many seconds (`rate × seconds` payments, instead of
        /// `--payments`).
        #[arg(long)]
        seconds: Option<u64>,
        /// What each screen's `counterDisplay` subscription selects (it must include
        /// `version`); the real screens select ~25 fields (`DISPLAY_FIELDS` in
        /// api/web/screens.js).
        #[arg(long, default_value = "version")]
        selection: String,
        /// Once every screen shows its first display and the server's memory was read, keep
        /// the screens open this many seconds before paying (to look inside the server, e.g.
        /// with gdb, while they are open).
        #[arg(long, default_value_t = 0)]
        hold_open_secs: u64,
        /// How the citizens' screens (the second of each counter's two) are fed: `plain`, the
        /// display feed the citizen's page uses (`/live/counter-display`), or `graphql`, a
        /// `counterDisplay` subscription as the officers' screens have.
        #[arg(long, default_value = "plain", value_parser = ["plain", "graphql"])]
        citizen_feed: String,
    },
    /// Signed bank notifications over HTTP from N concurrent senders, each for its own cases
    /// (assessed through the API first), with a share of partial payments (two notifications
    /// for one case) and of duplicates (the same notification sent again). The provider's
    /// secret is read from the server's own variable (FEELEDGER_SEPAY_HMAC_SECRET or
    /// FEELEDGER_SEPAY_API_KEY, FEELEDGER_CASSO_CHECKSUM_KEY, FEELEDGER_PAYOS_CHECKSUM_KEY,
    /// FEELEDGER_VNPAY_HASH_SECRET).
    Notifications {
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        #[arg(long, value_parser = ["sepay", "casso", "payos", "vnpay"])]
        provider: String,
        #[arg(long, default_value_t = 32)]
        senders: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Percent of notifications sent a second time (the provider's retry).
        #[arg(long, default_value_t = 5)]
        duplicates: u32,
        /// Percent of cases paid in two notifications rather than one.
        #[arg(long, default_value_t = 20)]
        partial: u32,
        /// Cases assessed before the run (senders wrap around, overpaying, when they run out).
        #[arg(long, default_value_t = 20_000)]
        cases: usize,
        #[arg(long, env = "FEELEDGER_BENCH_ADMIN_TOKEN")]
        admin_token: String,
        /// An officer token of `--agency`.
        #[arg(long, env = "FEELEDGER_BENCH_OFFICER_TOKEN")]
        officer_token: String,
        #[arg(long, default_value = "N01.1")]
        agency: String,
    },
    /// The counter's own commands over GraphQL from N concurrent officers: `assessFees` on
    /// `--cases` new cases, then `recordPayment` (cash, the whole amount) on each of them.
    /// Prints each mutation's rate and latency.
    Commands {
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 32)]
        officers: usize,
        #[arg(long, default_value_t = 10_000)]
        cases: usize,
        #[arg(long, env = "FEELEDGER_BENCH_ADMIN_TOKEN")]
        admin_token: String,
        /// An officer token of `--agency`.
        #[arg(long, env = "FEELEDGER_BENCH_OFFICER_TOKEN")]
        officer_token: String,
        #[arg(long, default_value = "N01.2")]
        agency: String,
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
    let store = Storage::connect(database_url, options).await?;
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
    let store = Storage::connect(database_url, options).await?;
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
                    Err(feeledger_infrastructure::storage::StoreError::Conflict { .. }) => {}
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

/// One display a screen received after its first.
struct Delivery {
    screen: usize,
    version: i64,
    at: Instant,
}

/// How a screen's opening ended: its first display arrived, or it gave up.
struct Opened {
    screen: usize,
    outcome: Result<(), String>,
    connect_retries: u32,
}

#[derive(Debug)]
struct ScreensRun {
    url: String,
    admin: String,
    officer: String,
    agency: String,
    screens: usize,
    payments: usize,
    rate: u32,
    server_pid: Option<u32>,
    connect_concurrency: usize,
    open_timeout: Duration,
    hold_open: Duration,
    selection: String,
    /// The citizens' screens on the plain display feed (else GraphQL).
    plain_citizens: bool,
}

/// A field of a process's `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`), Linux only.
fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|line| line.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A process's resident memory in KiB (`VmRSS`).
fn resident_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// How many files (sockets included) a process has open.
fn open_fds(pid: Option<u32>) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{}/fd", pid?)).ok()?.count())
}

/// This process's limit on open files (`/proc/self/limits`), when it can be read.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// This process's CPU time so far (user + system) in clock ticks (`/proc/self/stat`), Linux only.
/// The load tool shares the machine with the server and the database; the cost script reports
/// its share beside theirs.
fn own_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: the fields are counted after its closing parenthesis.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The `version` in a `counterDisplay` payload.
fn display_version(payload: &Value) -> i64 {
    payload["data"]["counterDisplay"]["version"].as_i64().unwrap_or(-1)
}

/// Attempts at opening one screen before it counts as failed (a refused or reset connection
/// while thousands open is retried, as a screen's page would).
const SCREEN_CONNECT_ATTEMPTS: u32 = 5;
/// How long an opened screen may wait for its first display before it counts as failed.
const FIRST_DISPLAY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the opening phase reports its progress (stderr).
const OPEN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Where and how every screen subscribes.
struct ScreenConnection {
    url: String,
    token: String,
    agency: String,
    query: String,
}

/// How one screen is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// A `counterDisplay` subscription over graphql-transport-ws.
    Graphql,
    /// The citizen's page's display feed (`/live/counter-display`).
    Plain,
}

impl ScreenConnection {
    async fn open(&self, feed: Feed, counter: &str) -> anyhow::Result<Subscription> {
        match feed {
            Feed::Graphql => {
                let variables = json!({ "k": counter, "a": self.agency });
                Subscription::connect(&self.url, &self.token, &self.query, variables).await
            }
            Feed::Plain => Subscription::display_feed(&self.url, &self.token, counter, Some(&self.agency)).await,
        }
    }
}

/// Opens one screen and waits for its first display, holding one of the opening permits for
/// both, then reports every later display to `deliveries` until the connection ends.
async fn run_screen(
    screen: usize,
    connection: Arc<ScreenConnection>,
    feed: Feed,
    counter: String,
    permits: Arc<tokio::sync::Semaphore>,
    opened: mpsc::UnboundedSender<Opened>,
    deliveries: mpsc::UnboundedSender<Delivery>,
) {
    let Ok(permit) = permits.acquire_owned().await else { return };
    let mut connect_retries = 0;
    let mut subscription = loop {
        match connection.open(feed, &counter).await {
            Ok(subscription) => break subscription,
            Err(error) if connect_retries + 1 < SCREEN_CONNECT_ATTEMPTS => {
                connect_retries += 1;
                note_connect_retry(screen, &error);
                tokio::time::sleep(Duration::from_millis(200) * connect_retries).await;
            }
            Err(error) => {
                let _ = opened.send(Opened { screen, outcome: Err(format!("{error:#}")), connect_retries });
                return;
            }
        }
    };
    let outcome = match subscription.next(FIRST_DISPLAY_TIMEOUT).await {
        Some(payload) if display_version(&payload) >= 0 => Ok(()),
        Some(payload) => Err(format!("the first display was not one: {payload}")),
        None => Err(format!("no first display within {} s", FIRST_DISPLAY_TIMEOUT.as_secs())),
    };
    drop(permit);
    let failed = outcome.is_err();
    if opened.send(Opened { screen, outcome, connect_retries }).is_err() || failed {
        return;
    }
    drop(opened);
    while let Some(payload) = subscription.next(Duration::from_secs(24 * 3600)).await {
        let delivery = Delivery { screen, version: display_version(&payload), at: Instant::now() };
        if deliveries.send(delivery).is_err() {
            return;
        }
    }
}

/// The first few connection failures, on stderr (they are retried).
fn note_connect_retry(screen: usize, error: &anyhow::Error) {
    static NOTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if NOTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
        eprintln!("screen {screen}: could not connect, trying again: {error:#}");
    }
}

async fn screens(run: ScreensRun) -> anyhow::Result<()> {
    let ScreensRun {
        url,
        admin,
        officer,
        agency,
        screens,
        payments,
        rate,
        server_pid,
        connect_concurrency,
        open_timeout,
        hold_open,
        selection,
        plain_citizens,
    } = run;
    let (url, admin, officer, agency) = (url.as_str(), admin.as_str(), officer.as_str(), agency.as_str());
    if let Some(limit) = open_files_limit() {
        // One socket per screen here, and one per screen in the server if it runs beside.
        anyhow::ensure!(
            limit >= u64::try_from(screens)? + 64,
            "{screens} screens need more open files than this process may have ({limit}): raise `ulimit -n` (the \
             server needs the same)"
        );
    }
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
    // One fresh case per counter, with a QR for 1,000 × payments-per-case; a few officers at once.
    let run = chrono::Utc::now().format("%y%m%d").to_string();
    let per_case = payments.div_ceil(counters).max(1) + 1;
    // Case codes end in a 4-digit sequence: vary the start between runs only when they fit.
    let seq_base = if counters <= 2000 { (std::process::id() % 5) * 2000 } else { 0 };
    let setup_started = Instant::now();
    let cases: Vec<String> = futures::stream::iter(counter_ids.iter().enumerate())
        .map(|(i, counter)| {
            let case = format!("{agency}-{run}-{:04}", seq_base as usize + i);
            let client = &client;
            async move {
                graphql(
                    client,
                    url,
                    officer,
                    "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
                    json!({ "input": { "caseCode": case, "agencyCode": agency, "procedureName": "Bench",
                        "payer": { "name": "Bench" }, "lines": [{ "feeCode": "LP-1", "quantity": per_case }] } }),
                )
                .await?;
                graphql(
                    client,
                    url,
                    officer,
                    "mutation($c: String!, $k: String!) { issueQr(caseCode: $c, counterId: $k) { id } }",
                    json!({ "c": case, "k": counter }),
                )
                .await?;
                anyhow::Ok(case)
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    if counters > 100 {
        eprintln!("{counters} cases assessed and given a QR in {:.0} s", setup_started.elapsed().as_secs_f64());
    }
    let rss_before_kib = resident_kib(server_pid);
    let fds_before = open_fds(server_pid);

    // The screens: two subscriptions per counter (screen s shows counter s % counters; the
    // first `counters` are the officers' screens, the rest the citizens'). At most
    // `connect_concurrency` are opening at once, each until its first display arrived, so
    // the server never has more first reads than that queued on its pool.
    let (delivery_tx, mut delivery_rx) = mpsc::unbounded_channel::<Delivery>();
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<Opened>();
    let permits = Arc::new(tokio::sync::Semaphore::new(connect_concurrency));
    let connection = Arc::new(ScreenConnection {
        url: url.to_owned(),
        token: admin.to_owned(),
        agency: agency.to_owned(),
        query: format!(
            "subscription($k: String!, $a: String) {{ counterDisplay(counterId: $k, agencyCode: $a) {{ {selection} }} }}"
        ),
    });
    let open_started = Instant::now();
    for screen in 0..screens {
        let feed = if plain_citizens && screen >= counters { Feed::Plain } else { Feed::Graphql };
        tokio::spawn(run_screen(
            screen,
            Arc::clone(&connection),
            feed,
            counter_ids[screen % counters].clone(),
            Arc::clone(&permits),
            opened_tx.clone(),
            delivery_tx.clone(),
        ));
    }
    drop((opened_tx, delivery_tx));
    let mut open = vec![false; screens];
    let (mut showing, mut failed, mut connect_retries) = (0usize, 0usize, 0u32);
    let mut first_failure: Option<String> = None;
    let open_deadline = tokio::time::Instant::now() + open_timeout;
    let mut progress = tokio::time::interval(OPEN_PROGRESS_EVERY);
    progress.tick().await;
    while showing + failed < screens {
        tokio::select! {
            opened = opened_rx.recv() => {
                let Some(opened) = opened else { break };
                connect_retries += opened.connect_retries;
                match opened.outcome {
                    Ok(()) => { open[opened.screen] = true; showing += 1; }
                    Err(error) => { failed += 1; first_failure.get_or_insert(error); }
                }
            }
            _ = progress.tick(), if screens > 100 => eprintln!(
                "opening: {showing}/{screens} screens show their first display, {failed} failed, {:.0} s, server RSS {} KiB",
                open_started.elapsed().as_secs_f64(), resident_kib(server_pid).unwrap_or(0)),
            () = tokio::time::sleep_until(open_deadline) => {
                anyhow::bail!("{showing}/{screens} screens showed their first display within {} s", open_timeout.as_secs())
            }
        }
    }
    let open_seconds = open_started.elapsed().as_secs_f64();
    if screens > 100 {
        eprintln!(
            "opening: {showing}/{screens} screens show their first display, {failed} failed, {open_seconds:.0} s"
        );
    }
    if let Some(error) = &first_failure {
        eprintln!("{failed} screens failed to open; the first: {error}");
    }
    anyhow::ensure!(showing > 0, "no screen opened");
    // Let the server settle (tasks that served the first reads end, buffers are freed) before
    // reading its memory with every subscription open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open_kib = resident_kib(server_pid);
    let fds_open = open_fds(server_pid);
    if !hold_open.is_zero() {
        eprintln!(
            "holding {showing} screens open for {} s (server RSS {} KiB)",
            hold_open.as_secs(),
            rss_open_kib.unwrap_or(0)
        );
        tokio::time::sleep(hold_open).await;
    }

    // The screens of a counter that opened.
    let screens_of = |counter: usize| [counter, counter + counters].into_iter().filter(|s| *s < screens && open[*s]);
    let mut http_us = Vec::with_capacity(payments);
    let mut commits: Vec<(usize, Instant, i64)> = Vec::with_capacity(payments);
    let mut by_screen: Vec<Vec<(i64, Instant)>> = vec![Vec::new(); screens];
    let payment = |n: usize| {
        let client = client.clone();
        let case = cases[n % counters].clone();
        let reference = format!("B{n}");
        let key = format!("bench-{run}-{}-{n}", std::process::id());
        let (url, officer) = (url.to_owned(), officer.to_owned());
        async move {
            let begin = Instant::now();
            let input = json!({ "input": { "caseCode": case, "amount": "1000", "channel": "CASH", "reference": reference, "idempotencyKey": key } });
            let mut attempts = 0;
            let data = loop {
                let answer = graphql(
                    &client,
                    &url,
                    &officer,
                    "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { version } }",
                    input.clone(),
                )
                .await;
                // Payments overlapping on one case (few counters, a high rate) may conflict:
                // the officer tries again, as the error says.
                match answer {
                    Err(error) if attempts < 10 && error.to_string().contains("\"CONFLICT\"") => attempts += 1,
                    other => break other?,
                }
            };
            let committed = Instant::now();
            anyhow::Ok((begin, committed, data["recordPayment"]["version"].as_i64().unwrap_or(-1)))
        }
    };
    let started = Instant::now();
    if rate == 0 {
        // One after another: the next payment leaves once this one's screens show it.
        let mut shown = vec![-1i64; screens];
        for n in 0..payments {
            let counter = n % counters;
            let (begin, committed, version) = payment(n).await?;
            http_us.push(u64::try_from(committed.duration_since(begin).as_micros())?);
            commits.push((counter, committed, version));
            while screens_of(counter).any(|s| shown[s] < version) {
                let delivery = tokio::time::timeout(Duration::from_secs(30), delivery_rx.recv())
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("closed"))?;
                shown[delivery.screen] = shown[delivery.screen].max(delivery.version);
                by_screen[delivery.screen].push((delivery.version, delivery.at));
            }
        }
    } else {
        // Open loop: payment n leaves at n / rate seconds whatever the answers' pace; every
        // screen's deliveries are kept and matched afterwards to the payments by version.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, anyhow::Result<(Instant, Instant, i64)>)>();
        for n in 0..payments {
            tokio::time::sleep_until(
                tokio::time::Instant::from_std(started) + Duration::from_secs_f64(n as f64 / f64::from(rate)),
            )
            .await;
            let done_tx = done_tx.clone();
            let sending = payment(n);
            tokio::spawn(async move {
                let _ = done_tx.send((n, sending.await));
            });
        }
        drop(done_tx);
        while let Some((n, result)) = done_rx.recv().await {
            let (begin, committed, version) = result?;
            http_us.push(u64::try_from(committed.duration_since(begin).as_micros())?);
            commits.push((n % counters, committed, version));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the last updates arrive: until 2 s pass without one (30 s at most).
    let quiet_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < quiet_until {
        match tokio::time::timeout(Duration::from_secs(2), delivery_rx.recv()).await {
            Ok(Some(delivery)) => by_screen[delivery.screen].push((delivery.version, delivery.at)),
            Ok(None) | Err(_) => break,
        }
    }
    // Commit → screen for each screen of the paid counter, and → both (the later of the two).
    let (mut officer_us, mut citizen_us, mut both_us) = (Vec::new(), Vec::new(), Vec::new());
    let mut missed = 0usize;
    for (counter, committed, version) in commits {
        let mut slowest: Option<u64> = Some(0);
        for screen in screens_of(counter) {
            match by_screen[screen].iter().find(|(v, _)| *v >= version) {
                Some((_, at)) => {
                    let us = u64::try_from(at.saturating_duration_since(committed).as_micros())?;
                    if screen < counters {
                        officer_us.push(us)
                    } else {
                        citizen_us.push(us)
                    }
                    slowest = slowest.map(|s| s.max(us));
                }
                None => {
                    missed += 1;
                    slowest = None;
                }
            }
        }
        both_us.extend(slowest);
    }
    let rss_end_kib = resident_kib(server_pid);
    let per_subscription = match (rss_before_kib, rss_open_kib) {
        (Some(before), Some(open)) if showing > 0 => {
            json!(open.saturating_sub(before) * 1024 / u64::try_from(showing)?)
        }
        _ => Value::Null,
    };
    println!(
        "{}",
        json!({ "bench": "screens", "screens": screens, "citizen_feed": if plain_citizens { "plain" } else { "graphql" },
                "screens_open": showing, "screens_failed": failed,
                "connect_retries": connect_retries, "connect_concurrency": connect_concurrency,
                "open_seconds": (open_seconds * 10.0).round() / 10.0, "counters": counters, "payments": payments,
                "rate_per_sec": rate, "payments_per_sec": (payments as f64 / elapsed).round(),
                "commit_to_both_screens_us": percentiles(both_us),
                "commit_to_officer_screen_us": percentiles(officer_us),
                "commit_to_citizen_screen_us": percentiles(citizen_us),
                "missed_updates": missed, "record_payment_http_us": percentiles(http_us),
                "server_rss_kib": { "before_screens": rss_before_kib, "screens_open": rss_open_kib, "end": rss_end_kib,
                                    "peak": status_kib(server_pid, "VmHWM") },
                "server_open_fds": { "before_screens": fds_before, "screens_open": fds_open },
                "server_bytes_per_subscription": per_subscription,
                "bench_client_rss_kib": status_kib(Some(std::process::id()), "VmRSS") })
    );
    Ok(())
}

#[derive(Debug)]
struct NotificationRun {
    url: String,
    provider: String,
    senders: usize,
    seconds: u64,
    duplicates: u32,
    partial: u32,
    cases: usize,
    admin: String,
    officer: String,
    agency: String,
}

/// A notification ready to send: a POST body with its headers, or VNPAY's GET query.
#[derive(Debug, Clone)]
enum Signed {
    Post { path: &'static str, headers: Vec<(&'static str, String)>, body: Vec<u8> },
    Get { path_and_query: String },
}

/// How one provider's notifications are made: its secret and the collection account.
#[derive(Debug, Clone)]
struct Signer {
    provider: String,
    secret: feeledger_infrastructure::bank_feed::Secret,
    /// SePay: sign with HMAC (else the API key header).
    sepay_hmac: bool,
    account: String,
}

fn env_secret(name: &str) -> Option<feeledger_infrastructure::bank_feed::Secret> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).map(feeledger_infrastructure::bank_feed::Secret::new)
}

impl Signer {
    fn new(provider: &str, account: String) -> anyhow::Result<Self> {
        let (secret, sepay_hmac) = match provider {
            "sepay" => match (env_secret("FEELEDGER_SEPAY_HMAC_SECRET"), env_secret("FEELEDGER_SEPAY_API_KEY")) {
                (Some(secret), _) => (secret, true),
                (None, Some(key)) => (key, false),
                (None, None) => anyhow::bail!("set FEELEDGER_SEPAY_HMAC_SECRET or FEELEDGER_SEPAY_API_KEY"),
            },
            "casso" => (
                env_secret("FEELEDGER_CASSO_CHECKSUM_KEY")
                    .ok_or_else(|| anyhow::anyhow!("set FEELEDGER_CASSO_CHECKSUM_KEY"))?,
                false,
            ),
            "payos" => (
                env_secret("FEELEDGER_PAYOS_CHECKSUM_KEY")
                    .ok_or_else(|| anyhow::anyhow!("set FEELEDGER_PAYOS_CHECKSUM_KEY"))?,
                false,
            ),
            "vnpay" => (
                env_secret("FEELEDGER_VNPAY_HASH_SECRET")
                    .ok_or_else(|| anyhow::anyhow!("set FEELEDGER_VNPAY_HASH_SECRET"))?,
                false,
            ),
            other => anyhow::bail!("unknown provider {other}"),
        };
        Ok(Signer { provider: provider.to_owned(), secret, sepay_hmac, account })
    }

    /// Notification `id` (unique in the run and across runs): `amount` đồng for `case`.
    fn sign(&self, id: u64, case: &str, amount: i64) -> anyhow::Result<Signed> {
        use feeledger_infrastructure::bank_feed as feed;
        let json_header = ("Content-Type", "application/json".to_owned());
        Ok(match self.provider.as_str() {
            "sepay" => {
                let body = json!({
                    "id": id, "gateway": "VietinBank", "transactionDate": "2026-11-22 09:15:00",
                    "accountNumber": self.account, "code": null, "content": format!("MBVCB.{id}.{case}.CT tu 0123"),
                    "transferType": "in", "transferAmount": amount, "accumulated": 19_077_000, "subAccount": null,
                    "referenceCode": format!("FT{id}")
                })
                .to_string()
                .into_bytes();
                let headers = if self.sepay_hmac {
                    let timestamp = chrono::Utc::now().timestamp();
                    vec![
                        json_header,
                        (feed::sepay::SIGNATURE_HEADER, feed::sepay::sign(&body, timestamp, &self.secret)),
                        (feed::sepay::TIMESTAMP_HEADER, timestamp.to_string()),
                    ]
                } else {
                    vec![json_header, (feed::sepay::AUTHORIZATION_HEADER, feed::sepay::api_key_header(&self.secret))]
                };
                Signed::Post { path: "/webhooks/sepay", headers, body }
            }
            "casso" => {
                let body = json!({ "error": 0, "data": {
                    "id": id, "reference": format!("CS{id}"), "description": format!("{case} nop le phi"), "amount": amount,
                    "runningBalance": 25_000_000, "transactionDateTime": "2026-11-22 09:20:00", "accountNumber": self.account,
                    "bankName": "VietinBank", "bankAbbreviation": "ICB", "virtualAccountNumber": "", "virtualAccountName": "",
                    "counterAccountName": "NGUYEN VAN A", "counterAccountNumber": "8888888888", "counterAccountBankId": "970415",
                    "counterAccountBankName": "VietinBank"
                }})
                .to_string()
                .into_bytes();
                let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis())?;
                let signature = feed::casso::sign(&body, now_ms, &self.secret)?;
                Signed::Post {
                    path: "/webhooks/casso",
                    headers: vec![json_header, (feed::casso::SIGNATURE_HEADER, signature)],
                    body,
                }
            }
            "payos" => {
                let body = json!({ "code": "00", "desc": "success", "success": true, "data": {
                    "orderCode": id, "amount": amount, "description": format!("{case} le phi"), "accountNumber": self.account,
                    "reference": format!("TF{id}"), "transactionDateTime": "2026-11-22 09:25:00", "currency": "VND",
                    "paymentLinkId": format!("bench{id:x}"), "code": "00", "desc": "Thành công", "counterAccountBankId": "",
                    "counterAccountBankName": "", "counterAccountName": "", "counterAccountNumber": "",
                    "virtualAccountName": "", "virtualAccountNumber": ""
                }});
                let body = feed::payos::sign_body(&body, &self.secret)?;
                Signed::Post { path: "/webhooks/payos", headers: vec![json_header], body }
            }
            _ => {
                let amount_x100 = (amount * 100).to_string();
                let number = id.to_string();
                let params = [
                    ("vnp_Amount", amount_x100.as_str()),
                    ("vnp_BankCode", "NCB"),
                    ("vnp_CardType", "ATM"),
                    ("vnp_OrderInfo", "Thanh toan le phi ho so"),
                    ("vnp_PayDate", "20261122091500"),
                    ("vnp_ResponseCode", "00"),
                    ("vnp_TmnCode", "FEELEDG1"),
                    ("vnp_TransactionNo", number.as_str()),
                    ("vnp_TransactionStatus", "00"),
                    ("vnp_TxnRef", case),
                ];
                Signed::Get { path_and_query: format!("/webhooks/vnpay?{}", feed::vnpay::sign(&params, &self.secret)) }
            }
        })
    }
}

/// Sends one notification; `Ok(true)` when the provider would consider it delivered.
async fn deliver(client: &reqwest::Client, url: &str, provider: &str, signed: &Signed) -> anyhow::Result<bool> {
    let response = match signed {
        Signed::Post { path, headers, body } => {
            let mut request = client.post(format!("{url}{path}")).body(body.clone());
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            request.send().await?
        }
        Signed::Get { path_and_query } => client.get(format!("{url}{path_and_query}")).send().await?,
    };
    let ok = response.status().is_success();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok(match provider {
        // VNPAY answers 200 always; "00" confirmed, "02" already confirmed.
        "vnpay" => ok && matches!(body["RspCode"].as_str(), Some("00" | "02")),
        _ => ok && body["success"].as_bool() != Some(false),
    })
}

/// A deterministic roll in 0..100 for notification `n` of a run (no RNG dependency needed).
fn roll_percent(n: u64, salt: u64) -> u32 {
    let mut x = n.wrapping_add(salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    u32::try_from(x % 100).unwrap_or(0)
}

/// What the senders saw.
#[derive(Debug, Default)]
struct SenderTally {
    latencies_us: Vec<u64>,
    errors: u64,
    duplicates: u64,
    partial_cases: u64,
    wrapped: bool,
}

/// Configures `agency` (its own collection account, returned, and a fee schedule of one fee
/// of 1,000 đồng a unit, `LP-1`) through the API, unless it is configured already.
async fn bench_agency(client: &reqwest::Client, url: &str, admin: &str, agency: &str) -> anyhow::Result<String> {
    // A collection account of this agency alone, so that other benchmarks' agencies don't share it.
    let digits: String = agency.chars().filter(char::is_ascii_digit).collect();
    let account = format!("97{:0>10}", digits.chars().rev().take(10).collect::<String>());
    graphql(
        client,
        url,
        admin,
        "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
        json!({ "input": { "code": agency, "name": "Benchmark agency", "bankBin": "970415", "accountNumber": account,
            "accountName": "BENCH", "retainsFees": false, "counters": ["quay-1"] } }),
    )
    .await?;
    let schedules = graphql(
        client,
        url,
        admin,
        "query($a: String!) { feeSchedules(agencyCode: $a) { version } }",
        json!({ "a": agency }),
    )
    .await?;
    if schedules["feeSchedules"].as_array().is_none_or(Vec::is_empty) {
        graphql(
            client,
            url,
            admin,
            "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }",
            json!({ "input": { "agencyCode": agency, "effectiveFrom": "2020-01-01", "fees": [
                { "feeCode": "LP-1", "name": "Lệ phí", "kind": "LE_PHI", "unitAmount": "1000", "retentionPercent": "0" } ] } }),
        )
        .await?;
    }
    Ok(account)
}

/// `count` case codes of `agency`, unique per run (a random day of 2000–2099 from `stamp`, and
/// up to 9,999 cases a day).
fn bench_case_codes(agency: &str, count: usize, stamp: u64) -> Vec<String> {
    let base_day = stamp % 36_000;
    (0..count)
        .map(|i| {
            let day = base_day + (i / 9_999) as u64;
            let (yy, mm, dd) = ((day / 360) % 100, 1 + (day / 30) % 12, 1 + day % 28);
            format!("{agency}-{yy:02}{mm:02}{dd:02}-{:04}", 1 + i % 9_999)
        })
        .collect()
}

/// One GraphQL mutation per case code, from `workers` concurrent clients taking the next code
/// as they finish one: the rate and latency percentiles, as JSON.
async fn per_case<F, Fut>(codes: &Arc<Vec<String>>, workers: usize, request: F) -> anyhow::Result<Value>
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Value>> + Send,
{
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (codes, next, request) = (codes.clone(), next.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(code) = codes.get(i) else { return anyhow::Ok(latencies) };
                let begin = Instant::now();
                request(code.clone()).await?;
                latencies.push(u64::try_from(begin.elapsed().as_micros())?);
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = percentiles(latencies);
    Ok(json!({ "count": codes.len(), "seconds": seconds, "per_sec": (codes.len() as f64 / seconds).round(),
               "p50_us": stats["p50"], "p99_us": stats["p99"], "max_us": stats["max"] }))
}

/// `assessFees` of 3 units of `LP-1` (3,000 đồng) on each case, from `workers` officers.
async fn assess_each(
    client: &reqwest::Client,
    url: &str,
    officer: &str,
    agency: &str,
    codes: &Arc<Vec<String>>,
    workers: usize,
) -> anyhow::Result<Value> {
    let (client, url, officer, agency) = (client.clone(), url.to_owned(), officer.to_owned(), agency.to_owned());
    per_case(codes, workers, move |code| {
        let (client, url, officer, agency) = (client.clone(), url.clone(), officer.clone(), agency.clone());
        async move {
            graphql(
                &client,
                &url,
                &officer,
                "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
                json!({ "input": { "caseCode": code, "agencyCode": agency, "procedureName": "Bench",
                    "payer": { "name": "Bench" }, "lines": [{ "feeCode": "LP-1", "quantity": 3 }] } }),
            )
            .await
        }
    })
    .await
}

async fn commands(
    url: &str,
    officers: usize,
    cases: usize,
    admin: &str,
    officer: &str,
    agency: &str,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(officers * 2).build()?;
    let url = url.trim_end_matches('/').to_owned();
    bench_agency(&client, &url, admin, agency).await?;
    let stamp = u64::try_from(chrono::Utc::now().timestamp_millis())?;
    let codes = Arc::new(bench_case_codes(agency, cases, stamp));
    let assessed = assess_each(&client, &url, officer, agency, &codes, officers).await?;
    let (pay_client, pay_url, pay_officer) = (client.clone(), url.clone(), officer.to_owned());
    let paid = per_case(&codes, officers, move |code| {
        let (client, url, officer) = (pay_client.clone(), pay_url.clone(), pay_officer.clone());
        async move {
            let data = graphql(
                &client,
                &url,
                &officer,
                "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paid } }",
                json!({ "input": { "caseCode": code, "amount": "3000", "channel": "CASH",
                    "reference": format!("PT-{code}"),
                    "idempotencyKey": format!("bench-pay-{code}") } }),
            )
            .await?;
            anyhow::ensure!(data["recordPayment"]["paid"] == "3000", "case {code} not paid in full: {data}");
            Ok(data)
        }
    })
    .await?;
    println!(
        "{}",
        json!({ "bench": "commands", "officers": officers, "assess_fees": assessed, "record_payment": paid })
    );
    Ok(())
}

async fn notifications(run: NotificationRun) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(run.senders * 2).build()?;
    let url = run.url.trim_end_matches('/').to_owned();
    let account = bench_agency(&client, &url, &run.admin, &run.agency).await?;

    // Cases of 3,000 đồng, assessed by `senders` concurrent officers.
    let stamp = u64::try_from(chrono::Utc::now().timestamp_millis())?;
    let codes: Arc<Vec<String>> = Arc::new(bench_case_codes(&run.agency, run.cases, stamp));
    let assess_fees = assess_each(&client, &url, &run.officer, &run.agency, &codes, run.senders).await?;

    // A mark for scripts that tell the setup's work from the notifications' (e.g. by counting
    // the server's SQL statements before and after it).
    eprintln!("notifications: {} cases assessed, sending", run.cases);
    let signer = Arc::new(Signer::new(&run.provider, account)?);
    let provider = Arc::new(run.provider.clone());
    let deadline = Instant::now() + Duration::from_secs(run.seconds);
    let started = Instant::now();
    let cpu_before = own_cpu_ticks();
    let mut senders = Vec::new();
    let (duplicates, partial, senders_count) = (run.duplicates, run.partial, run.senders);
    for sender in 0..run.senders {
        let (client, url, codes, signer, provider) =
            (client.clone(), url.clone(), codes.clone(), signer.clone(), provider.clone());
        senders.push(tokio::spawn(async move {
            let mut tally = SenderTally::default();
            let mut n = 0u64;
            // This sender's cases: sender, sender + senders, …
            let mut case = sender;
            while Instant::now() < deadline {
                if case >= codes.len() {
                    tally.wrapped = true;
                    case = sender % codes.len();
                }
                let code = &codes[case];
                let split = roll_percent(case as u64, 7) < partial;
                let amounts: &[i64] = if split { &[1_000, 2_000] } else { &[3_000] };
                tally.partial_cases += u64::from(split);
                for amount in amounts {
                    let id = stamp * 1_000 + (n * senders_count as u64 + sender as u64) % 1_000_000_000;
                    let signed = signer.sign(id, code, *amount)?;
                    let resend = roll_percent(id, 13) < duplicates;
                    for _ in 0..(1 + usize::from(resend)) {
                        let begin = Instant::now();
                        match deliver(&client, &url, &provider, &signed).await {
                            Ok(true) => tally.latencies_us.push(u64::try_from(begin.elapsed().as_micros())?),
                            Ok(false) | Err(_) => tally.errors += 1,
                        }
                    }
                    tally.duplicates += u64::from(resend);
                    n += 1;
                }
                case += senders_count;
            }
            anyhow::Ok(tally)
        }));
    }
    let mut all = SenderTally::default();
    for sender in senders {
        let tally = sender.await??;
        all.latencies_us.extend(tally.latencies_us);
        all.errors += tally.errors;
        all.duplicates += tally.duplicates;
        all.partial_cases += tally.partial_cases;
        all.wrapped |= tally.wrapped;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let client_cpu_ticks = own_cpu_ticks().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let acked = all.latencies_us.len();
    let stats = percentiles(all.latencies_us);
    println!(
        "{}",
        json!({
            "bench": "notifications", "provider": run.provider, "senders": run.senders, "seconds": elapsed,
            "acked": acked, "acked_per_sec": (acked as f64 / elapsed).round(),
            "p50_us": stats["p50"], "p99_us": stats["p99"], "max_us": stats["max"], "errors": all.errors,
            "duplicates_sent": all.duplicates, "partial_cases": all.partial_cases, "cases_ran_out": all.wrapped,
            "assess_fees": assess_fees, "client_cpu_ticks": client_cpu_ticks,
        })
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
            Bench::Screens {
                url,
                admin_token,
                officer_token,
                agency,
                screens: count,
                payments,
                rate,
                server_pid,
                connect_concurrency,
                open_timeout_secs,
                seconds,
                selection,
                hold_open_secs,
                citizen_feed,
            } => {
                let payments = match seconds {
                    Some(seconds) if rate > 0 => usize::try_from(u64::from(rate) * seconds)?,
                    _ => payments,
                };
                let run = ScreensRun {
                    url,
                    admin: admin_token,
                    officer: officer_token,
                    agency,
                    screens: count,
                    payments,
                    rate,
                    server_pid,
                    connect_concurrency: connect_concurrency.max(1),
                    open_timeout: Duration::from_secs(open_timeout_secs),
                    hold_open: Duration::from_secs(hold_open_secs),
                    selection,
                    plain_citizens: citizen_feed == "plain",
                };
                screens(run).await
            }
            Bench::Notifications {
                url,
                provider,
                senders,
                seconds,
                duplicates,
                partial,
                cases,
                admin_token,
                officer_token,
                agency,
            } => {
                let run = NotificationRun {
                    url,
                    provider,
                    senders: senders.max(1),
                    seconds,
                    duplicates,
                    partial,
                    cases: cases.max(1),
                    admin: admin_token,
                    officer: officer_token,
                    agency,
                };
                notifications(run).await
            }
            Bench::Commands { url, officers, cases, admin_token, officer_token, agency } => {
                commands(&url, officers.max(1), cases.max(1), &admin_token, &officer_token, &agency).await
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
