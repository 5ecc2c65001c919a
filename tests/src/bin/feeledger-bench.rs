//! Load generators for docs/BENCHMARKS.md. Each prints one JSON line of results, so a script
//! can put them beside a baseline measured in the same run (see scripts/bench-appends.sh).
#![allow(clippy::print_stdout, clippy::float_arithmetic, reason = "a benchmark prints rates and percentiles")]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use feeledger_infrastructure::event_store::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StoreOptions};
use serde_json::json;

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
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let run_id = Arc::new(run_id);
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
    latencies.sort_unstable();
    let percentile =
        |p: usize| latencies.get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1))).copied();
    let count = latencies.len();
    #[allow(clippy::cast_precision_loss, reason = "a rate for a report")]
    let rate = count as f64 / elapsed;
    println!(
        "{}",
        json!({
            "bench": "appends", "backend": format!("{:?}", store.backend()), "clients": clients,
            "events": count, "seconds": elapsed, "events_per_sec": rate.round(),
            "p50_us": percentile(50), "p99_us": percentile(99),
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
