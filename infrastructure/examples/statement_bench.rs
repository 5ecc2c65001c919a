//! The import benchmark of docs/BENCHMARKS.md: a 100,000-line VietinBank XLSX export read by
//! calamine alone (every cell of the first sheet touched) against the whole import, recognised
//! and parsed by feeledger (which reads the sheet with calamine too) and then stored in a new
//! SQLite database. Prints one JSON line.
//!
//! `cargo run --release -p feeledger-infrastructure --features test-support --example statement_bench -- [LINES]`
#![allow(
    clippy::print_stdout,
    clippy::float_arithmetic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark prints rates and stops on any error"
)]

use std::io::Cursor;
use std::time::Instant;

use calamine::Reader;
use chrono::{NaiveDate, Utc};
use feeledger_domain::money::Vnd;
use feeledger_infrastructure::statement::fixtures::{Export, ExportLine, bank_xlsx};
use feeledger_infrastructure::statement::{Bank, Direction, StatementFormat, parse};
use feeledger_infrastructure::statement_store::{ImportSource, StatementStore};
use feeledger_infrastructure::storage::{Storage, StoreOptions};

fn export(lines: usize) -> Export {
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date");
    Export {
        account: "113000123456".into(),
        account_name: "VP DANG KY DAT DAI".into(),
        opening: 1_000_000_000,
        lines: (0..lines)
            .map(|i| ExportLine {
                booked_on: first + chrono::Duration::days((i / 300) as i64),
                amount: Vnd::new(10_000 + (i as i64 % 97) * 1_000).expect("amount"),
                direction: if i % 50 == 49 { Direction::Debit } else { Direction::Credit },
                description: format!(
                    "MBVCB.{}.H34.22.6-260101-{:04}.Thanh toan le phi",
                    3_000_000_000u64 + i as u64,
                    i % 10_000
                ),
                bank_id: format!("FT26{i:012}"),
                counterparty_name: Some("NGUYEN VAN AN".into()),
                counterparty_account: Some("0071000123456".into()),
            })
            .collect(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let lines: usize = std::env::args().nth(1).map_or(100_000, |a| a.parse().expect("LINES is a number"));
    let bytes = bank_xlsx(Bank::Vietinbank, &export(lines));

    // Baseline: calamine alone, every cell of the first sheet.
    let started = Instant::now();
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.as_slice())).expect("workbook");
    let range = workbook.worksheet_range_at(0).expect("a sheet").expect("readable");
    let mut cells = 0usize;
    for row in range.rows() {
        for cell in row {
            if !matches!(cell, calamine::Data::Empty) {
                cells += 1;
            }
        }
    }
    let calamine_seconds = started.elapsed().as_secs_f64();

    // feeledger: recognised (auto) and parsed, every line checked.
    let started = Instant::now();
    let statement = parse(StatementFormat::Auto, &bytes).expect("parses");
    let parse_seconds = started.elapsed().as_secs_f64();
    assert_eq!(statement.lines.len(), lines);

    // And stored: a new SQLite database, one transaction.
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Storage::connect(&url, StoreOptions::default()).await.expect("database");
    store.migrate().await.expect("migrated");
    let started = Instant::now();
    let summary = StatementStore::new(store)
        .import_from(&statement, ImportSource { format: "vietinbank", filename: None }, Utc::now(), &mut |_, _| {})
        .await
        .expect("imported");
    let store_seconds = started.elapsed().as_secs_f64();
    assert_eq!(summary.inserted as usize, lines);

    let rate = |seconds: f64| (lines as f64 / seconds).round();
    println!(
        "{{\"lines\":{lines},\"xlsx_bytes\":{},\"cells\":{cells},\"calamine_seconds\":{calamine_seconds:.3},\"calamine_lines_per_second\":{},\"parse_seconds\":{parse_seconds:.3},\"parse_lines_per_second\":{},\"parse_vs_calamine\":{:.2},\"store_sqlite_seconds\":{store_seconds:.3},\"import_lines_per_second\":{}}}",
        bytes.len(),
        rate(calamine_seconds),
        rate(parse_seconds),
        parse_seconds / calamine_seconds,
        rate(parse_seconds + store_seconds),
    );
}
