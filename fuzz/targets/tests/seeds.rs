//! The statement targets' seed corpus: each bank's export layout (XLSX, XLS, the HTML table saved
//! as `.xls`, and CSV) and MT940, as
//! `feeledger_infrastructure::statement::fixtures` writes them, run through the targets on every
//! `cargo test`. With `FEELEDGER_WRITE_SEEDS=1` the files are also written to
//! `fuzz/corpus/statement_bank/` and `fuzz/corpus/statement_mt940/`, where the fuzzer starts
//! from them.

use std::path::Path;

use chrono::NaiveDate;
use feeledger_domain::money::Vnd;
use feeledger_fuzz_targets::{statement_bank, statement_mt940};
use feeledger_infrastructure::statement::fixtures::{
    Export, ExportLine, bank_csv, bank_html, bank_xls, bank_xlsx, mt940,
};
use feeledger_infrastructure::statement::{self, Bank, Direction, StatementFormat};

fn export() -> Export {
    let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("a valid day");
    let line = |d, amount, direction, description: &str, id: &str| ExportLine {
        booked_on: day(d),
        amount: Vnd::new(amount).expect("an amount"),
        direction,
        description: description.into(),
        bank_id: id.into(),
        counterparty_name: Some("NGUYỄN VĂN A".into()),
        counterparty_account: Some("0011004455667".into()),
    };
    Export {
        account: "113366668888".into(),
        account_name: "VP DANG KY DAT DAI".into(),
        opening: 52_500_000,
        lines: vec![
            line(2, 1_500_000, Direction::Credit, "H34.22.6-241102-0001 thanh toan le phi", "FT26306000001"),
            line(2, 30_000, Direction::Credit, "NOP TIEN MAT THU PHI", "FT26306000002"),
            line(3, 11_000, Direction::Debit, "Phi quan ly tai khoan", "FT26307000003"),
            line(4, 2_000, Direction::Credit, "QUYET TOAN THE POS 20261103", "FT26308000004"),
        ],
    }
}

#[test]
fn every_bank_layout_and_mt940_reads_through_the_statement_targets() {
    let export = export();
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for bank in Bank::ALL {
        seeds.push(("statement_bank", format!("{bank:?}.xlsx").to_lowercase(), bank_xlsx(bank, &export)));
        seeds.push(("statement_bank", format!("{bank:?}.xls").to_lowercase(), bank_xls(bank, &export)));
        seeds.push(("statement_bank", format!("{bank:?}.html.xls").to_lowercase(), bank_html(bank, &export)));
        seeds.push(("statement_bank", format!("{bank:?}.csv").to_lowercase(), bank_csv(bank, &export)));
    }
    seeds.push(("statement_mt940", "mt940.txt".into(), mt940(&export, 1)));
    seeds.push(("statement_bank", "mt940.txt".into(), mt940(&export, 1)));
    for (target, name, bytes) in &seeds {
        // A seed that does not even parse would start the fuzzer from nothing.
        let format = if *target == "statement_mt940" { StatementFormat::Mt940 } else { StatementFormat::Auto };
        let parsed = statement::parse(format, bytes).unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
        assert_eq!(parsed.lines.len(), export.lines.len(), "{target}/{name}");
        match *target {
            "statement_mt940" => statement_mt940(bytes),
            _ => statement_bank(bytes),
        }
        if std::env::var_os("FEELEDGER_WRITE_SEEDS").is_some() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(target);
            std::fs::create_dir_all(&dir).expect("the corpus directory");
            std::fs::write(dir.join(name), bytes).expect("a written seed");
        }
    }
}
