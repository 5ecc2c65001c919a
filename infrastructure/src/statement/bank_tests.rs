//! Every supported bank layout, written by `fixtures` as the bank exports it (XLSX, XLS, the HTML
//! table saved as ".xls", CSV), read back line by line; MT940 from a committed file; and the
//! refusals.

use chrono::NaiveDate;
use feeledger_domain::money::Vnd;

use super::fixtures::{Export, ExportLine, bank_csv, bank_html, bank_xls, bank_xlsx, grouped, mt940};
use super::{Bank, Direction, StatementError, StatementFormat, detect, parse};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 4, d).expect("valid date")
}

fn line(d: u32, dong: i64, direction: Direction, description: &str, id: &str) -> ExportLine {
    ExportLine {
        booked_on: day(d),
        amount: Vnd::new(dong).expect("valid amount"),
        direction,
        description: description.to_owned(),
        bank_id: id.to_owned(),
        counterparty_name: (direction == Direction::Credit).then(|| "NGUYỄN VĂN AN".to_owned()),
        counterparty_account: (direction == Direction::Credit).then(|| "0071000123456".to_owned()),
    }
}

/// A few days of a collection account: transfers, a POS settlement, a cash deposit, a bank fee,
/// a refund and the remittance to the treasury; two lines a day so dates are filled down; one
/// amount above a billion to exercise the grouping.
fn export(bank_ids: [&str; 9]) -> Export {
    Export {
        account: "113000123456".to_owned(),
        account_name: "VĂN PHÒNG ĐĂNG KÝ ĐẤT ĐAI BẮC GIANG".to_owned(),
        opening: 52_500_000,
        lines: vec![
            line(
                25,
                150_000,
                Direction::Credit,
                "MBVCB.3278907687.H34.22.6-240425-0002.Thanh toan le phi",
                bank_ids[0],
            ),
            line(25, 11_000, Direction::Debit, "Phí dịch vụ SMS Banking tháng 04/2024", bank_ids[1]),
            line(
                26,
                1_200_000,
                Direction::Credit,
                "H34.22.6-240426-0005 nộp phí thẩm định, hồ sơ Trần Thị Bình",
                bank_ids[2],
            ),
            line(
                26,
                2_450_000,
                Direction::Credit,
                "TT POS MID 000011223344 TID 9988 NGAY 26/04/2024 SL 3",
                bank_ids[3],
            ),
            line(26, 1_234_567_000, Direction::Credit, "Nộp tiền mặt thu phí ngày 25-26/04/2024", bank_ids[4]),
            line(26, 35_000_000, Direction::Debit, "Nop tien phi cho nop ngan sach vao KBNN Bac Giang", bank_ids[5]),
            line(29, 200_000, Direction::Debit, "Hoàn trả tiền nộp thừa hồ sơ H34.22.6-240420-0001", bank_ids[6]),
            line(29, 50_000, Direction::Credit, "IBFT H34.22.6-240429-0003", bank_ids[7]),
            line(29, 50_000, Direction::Credit, "IBFT H34.22.6-240429-0004", bank_ids[8]),
        ],
    }
}

fn ids_for(bank: Bank) -> [&'static str; 9] {
    match bank {
        Bank::Vietinbank => [
            "FT24116000111111",
            "FT24116000111112",
            "FT24117000123456",
            "FT24117000000789",
            "FT24117000000790",
            "FT24117000124001",
            "FT24120000000011",
            "FT24120000000012",
            "FT24120000000013",
        ],
        Bank::Vietcombank => [
            "5243.65937",
            "5243.65938",
            "9920.28",
            "5272.37452",
            "5272.37453",
            "5267.80568",
            "5282.2405",
            "5282.2406",
            "5282.2407",
        ],
        Bank::Bidv => ["AD0001", "AD0002", "AD0003", "AD0004", "AD0005", "AD0006", "AD0007", "AD0008", "AD0009"],
        Bank::Agribank => [
            "2304LKH01",
            "2304LKH02",
            "2304LKH03",
            "2304LKH04",
            "2304LKH05",
            "2304LKH06",
            "2304LKH07",
            "2304LKH08",
            "2304LKH09",
        ],
    }
}

/// The file's every line equals the export's, the balances are read, and `auto` finds the bank.
fn check(bank: Bank, bytes: &[u8], what: &str) {
    let export = export(ids_for(bank));
    assert_eq!(detect(bytes).unwrap_or_else(|e| panic!("{what}: {e}")), StatementFormat::Bank(bank), "{what}");
    let named = parse(StatementFormat::Bank(bank), bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    let auto = parse(StatementFormat::Auto, bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(named, auto, "{what}");
    assert_eq!(named.account_number, "113000123456", "{what}");
    assert_eq!(named.opening_balance, Some(52_500_000), "{what}");
    assert_eq!(named.closing_balance, Some(export.closing()), "{what}");
    assert_eq!((named.from, named.to), (Some(day(25)), Some(day(29))), "{what}");
    assert_eq!(named.lines.len(), export.lines.len(), "{what}");
    for (read, written) in named.lines.iter().zip(&export.lines) {
        assert_eq!(read.line_id, written.bank_id, "{what}");
        assert_eq!(read.bank_reference.as_deref(), Some(written.bank_id.as_str()), "{what}");
        assert_eq!(read.booked_on, written.booked_on, "{what}: {}", written.bank_id);
        assert_eq!(read.amount, written.amount, "{what}: {}", written.bank_id);
        assert_eq!(read.direction, written.direction, "{what}: {}", written.bank_id);
        assert_eq!(read.description, written.description, "{what}: {}", written.bank_id);
        assert_eq!(read.account_number, "113000123456", "{what}");
        if bank == Bank::Vietinbank {
            assert_eq!(read.counterparty_name, written.counterparty_name, "{what}");
            assert_eq!(read.counterparty_account, written.counterparty_account, "{what}");
            assert_eq!(read.value_date, Some(written.booked_on), "{what}");
        }
    }
}

#[test]
fn a_vietinbank_transaction_history_xlsx_and_csv_import_line_by_line() {
    let export = export(ids_for(Bank::Vietinbank));
    check(Bank::Vietinbank, &bank_xlsx(Bank::Vietinbank, &export), "VietinBank XLSX");
    let csv = bank_csv(Bank::Vietinbank, &export);
    let text = String::from_utf8(csv.clone()).expect("utf-8");
    assert!(text.contains("LỊCH SỬ GIAO DỊCH - TRANSACTION HISTORY") && text.contains("1.234.567.000"), "{text}");
    // Dates are filled down: the second line of the 25th has a blank accounting date.
    assert!(text.contains("\n2,,25/04/2024 09:01:07,"), "{text}");
    check(Bank::Vietinbank, &csv, "VietinBank CSV");
}

#[test]
fn a_vietcombank_statement_with_merged_date_and_document_column_imports_line_by_line() {
    let export = export(ids_for(Bank::Vietcombank));
    check(Bank::Vietcombank, &bank_xlsx(Bank::Vietcombank, &export), "Vietcombank XLSX");
    let csv = bank_csv(Bank::Vietcombank, &export);
    let text = String::from_utf8(csv.clone()).expect("utf-8");
    assert!(text.contains("\"25/04/2024\n5243.65937\"") && text.contains("1,234,567,000"), "{text}");
    check(Bank::Vietcombank, &csv, "Vietcombank CSV");
}

#[test]
fn a_bidv_account_detail_report_imports_line_by_line() {
    let export = export(ids_for(Bank::Bidv));
    check(Bank::Bidv, &bank_xlsx(Bank::Bidv, &export), "BIDV XLSX");
    check(Bank::Bidv, &bank_csv(Bank::Bidv, &export), "BIDV CSV");
}

#[test]
fn an_agribank_account_statement_imports_line_by_line() {
    let export = export(ids_for(Bank::Agribank));
    check(Bank::Agribank, &bank_xlsx(Bank::Agribank, &export), "Agribank XLSX");
    let csv = bank_csv(Bank::Agribank, &export);
    assert!(String::from_utf8(csv.clone()).expect("utf-8").contains("1.234.567.000"));
    check(Bank::Agribank, &csv, "Agribank CSV");
}

#[test]
fn every_bank_layout_saved_as_an_old_xls_workbook_imports_line_by_line() {
    for bank in Bank::ALL {
        let export = export(ids_for(bank));
        let xls = bank_xls(bank, &export);
        assert!(xls.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]), "{bank:?}: an OLE2 file");
        check(bank, &xls, &format!("{} XLS", bank.name()));
        // The same sheet as XLSX reads to the very same statement.
        let xlsx = bank_xlsx(bank, &export);
        assert_eq!(parse(StatementFormat::Auto, &xls), parse(StatementFormat::Auto, &xlsx), "{bank:?}");
    }
}

#[test]
fn a_long_xls_whose_shared_strings_continue_over_several_records_imports_whole() {
    // 700 lines with distinct Vietnamese descriptions: the shared-string table is far over one
    // BIFF record (8,224 bytes), so strings are split over CONTINUE records, some mid-string.
    let mut export = export(ids_for(Bank::Agribank));
    let template = export.lines[2].clone();
    export.lines = (0..700)
        .map(|i| ExportLine {
            booked_on: day(1 + i % 28),
            description: format!(
                "H34.22.6-2404{:02}-{i:04} nộp phí thẩm định hồ sơ đất đai của ông Nguyễn Văn Bình",
                1 + i % 28
            ),
            bank_id: format!("2304LKH{i:04}"),
            amount: Vnd::new(10_000 + i64::from(i)).expect("valid"),
            ..template.clone()
        })
        .collect();
    export.lines.sort_by_key(|l| l.booked_on);
    let xls = bank_xls(Bank::Agribank, &export);
    let statement = parse(StatementFormat::Auto, &xls).expect("parses");
    assert_eq!(statement.lines.len(), 700);
    assert_eq!(statement.closing_balance, Some(export.closing()));
    for (read, written) in statement.lines.iter().zip(&export.lines) {
        assert_eq!((&read.description, &read.line_id), (&written.description, &written.bank_id));
    }
    assert_eq!(Ok(statement), parse(StatementFormat::Auto, &bank_xlsx(Bank::Agribank, &export)));
}

#[test]
fn every_bank_layout_downloaded_as_an_html_table_named_xls_imports_line_by_line() {
    for bank in Bank::ALL {
        let export = export(ids_for(bank));
        let html = bank_html(bank, &export);
        check(bank, &html, &format!("{} HTML", bank.name()));
        // The same sheet saved as CSV reads to the very same statement.
        let csv = bank_csv(bank, &export);
        assert_eq!(parse(StatementFormat::Auto, &html), parse(StatementFormat::Auto, &csv), "{bank:?}");
    }
    // The pages differ as real ones do: character references, upper-case tags without end tags,
    // a merged two-row header.
    let export = export(ids_for(Bank::Vietcombank));
    let vietcombank = String::from_utf8(bank_html(Bank::Vietcombank, &export)).expect("utf-8");
    assert!(vietcombank.contains("Ng&#224;y GD/S&#7889; CT") && vietcombank.contains("rowspan=\"2\""), "{vietcombank}");
    assert!(vietcombank.contains("<th colspan=\"2\"><b>S&#7889; ti&#7873;n/Amount</b></th>"), "{vietcombank}");
    let agribank = String::from_utf8(bank_html(Bank::Agribank, &export)).expect("utf-8");
    assert!(agribank.contains("<TR><TD class=\"num\">1<TD>25/04/2024<TD>"), "{agribank}");
}

#[test]
fn an_html_page_that_is_not_a_known_export_is_refused_naming_what_was_expected() {
    // A bank's "session expired" page, saved under the export's name.
    let expired = "<!DOCTYPE html><html><head><title>VietinBank iPay</title></head>\
        <body><p>Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại.</p></body></html>";
    // A table of some other report.
    let other = "<html><body><table><tr><td>Ngày</td><td>Số tiền</td></tr><tr><td>26/04/2024</td><td>150.000</td></tr></table></body></html>";
    for html in [expired, other, "<table></table>", "<html><table><tr><td colspan=3></table>"] {
        let message = error(StatementFormat::Auto, html.as_bytes());
        assert!(
            message.starts_with("file: not a statement layout feeledger knows (expected the ledger's CSV")
                && message.contains("the HTML table some banks save as .xls"),
            "{message}"
        );
        assert_eq!(detect(html.as_bytes()), Err(StatementError::UnknownLayout), "{html}");
    }
    assert_eq!(
        error(StatementFormat::Bank(Bank::Vietinbank), expired.as_bytes()),
        "file: no VietinBank header row found (expected a row with the columns \"ngày hạch toán\", \"nợ debit\", \"có credit\")"
    );
    // camt.053 is XML, not HTML, and is still read as camt.053.
    let camt = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"></Document>";
    assert_eq!(detect(camt), Ok(StatementFormat::Camt053));
    // A bad cell is refused at its row, counted as Excel shows the page.
    let html = bank_html(Bank::Bidv, &export(ids_for(Bank::Bidv)));
    let tampered = replace(&html, "<td>25/04/2024</td>", "<td>31/02/2024</td>");
    assert_eq!(
        error(StatementFormat::Auto, &tampered),
        "row 10: booking date \"31/02/2024\" is not a valid date (expected DD/MM/YYYY)"
    );
}

#[test]
fn an_html_download_cut_short_is_refused_never_read_in_part() {
    let html = bank_html(Bank::Vietinbank, &export(ids_for(Bank::Vietinbank)));
    let table_end = String::from_utf8_lossy(&html).find("</table>").expect("the table ends");
    let mut refused = 0;
    for cut in 1..html.len() {
        let prefix = &html[..cut];
        match parse(StatementFormat::Auto, prefix) {
            Ok(statement) => {
                assert!(cut >= table_end + "</table>".len(), "cut at {cut}: read {} lines", statement.lines.len());
                assert_eq!(statement.lines.len(), 9);
            }
            Err(_) => refused += 1,
        }
    }
    assert!(refused >= table_end, "every cut before the table's end is refused");
    let cut_in_lines = &html[..String::from_utf8_lossy(&html).find("FT24117000124001").expect("a line")];
    assert_eq!(
        error(StatementFormat::Auto, cut_in_lines),
        "file: the HTML page ends inside a table (no \"</table>\"): the download is incomplete"
    );
}

#[test]
fn an_mt940_file_of_two_chained_messages_imports_line_by_line() {
    let path = format!("{}/tests/data/mt940_vietinbank_2024-04-25_26.sta", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).expect("fixture");
    assert_eq!(detect(&bytes).expect("detected"), StatementFormat::Mt940);
    let statement = parse(StatementFormat::Auto, &bytes).expect("parses");
    assert_eq!(statement.account_number, "113000123456");
    assert_eq!(statement.statement_id.as_deref(), Some("STMT240425"));
    assert_eq!((statement.opening_balance, statement.closing_balance), (Some(52_500_000), Some(21_339_000)));
    type Row<'a> = (&'a str, NaiveDate, Option<NaiveDate>, i64, Direction, &'a str);
    let summary: Vec<Row<'_>> = statement
        .lines
        .iter()
        .map(|l| (l.line_id.as_str(), l.booked_on, l.value_date, l.amount.dong(), l.direction, l.description.as_str()))
        .collect();
    assert_eq!(
        summary[..5],
        [
            (
                "FT24116000111111",
                day(25),
                Some(day(25)),
                150_000,
                Direction::Credit,
                "MBVCB.3278907687.H34.22.6-240425-0002.Thanh toan le phi"
            ),
            (
                "FT24116000111112",
                day(25),
                Some(day(25)),
                11_000,
                Direction::Debit,
                "Phi dich vu SMS Banking thang 04/2024"
            ),
            (
                "FT24117000123456",
                day(26),
                Some(day(26)),
                1_200_000,
                Direction::Credit,
                "H34.22.6-240426-0005 nop phi tham dinh, ho so Tran Thi Binh, chuyen khoan tu TK 0071000123456"
            ),
            (
                "POS24117000000789",
                day(26),
                Some(day(27)),
                2_450_000,
                Direction::Credit,
                "TT POS MID 000011223344 TID 9988 NGAY 26/04/2024 SL 3"
            ),
            (
                "FT24117000124001",
                day(26),
                Some(day(26)),
                35_000_000,
                Direction::Debit,
                "Nop tien phi cho nop ngan sach vao KBNN Bac Giang"
            ),
        ]
    );
    let cash = &statement.lines[5];
    assert!(cash.line_id.starts_with("sha256:"), "no bank reference: a hashed id");
    assert_eq!(
        (cash.amount.dong(), cash.direction, cash.description.as_str()),
        (50_000, Direction::Credit, "Nop tien mat tai quay")
    );
    assert_eq!(statement.lines[2].bank_reference.as_deref(), Some("FT24117000123456"));
    assert_eq!(statement.lines.len(), 6);
}

#[test]
fn a_generated_mt940_reads_back_every_line() {
    let mut export = export(ids_for(Bank::Vietinbank));
    for line in &mut export.lines {
        line.description = deaccent(&line.description);
    }
    let statement = parse(StatementFormat::Auto, &mt940(&export, 116)).expect("parses");
    assert_eq!(statement.closing_balance, Some(export.closing()));
    for (read, written) in statement.lines.iter().zip(&export.lines) {
        assert_eq!(
            (read.line_id.as_str(), read.booked_on, read.amount, read.direction, read.description.as_str()),
            (
                written.bank_id.as_str(),
                written.booked_on,
                written.amount,
                written.direction,
                written.description.as_str()
            )
        );
    }
}

/// MT940 uses the SWIFT character set: banks send Vietnamese without accents.
fn deaccent(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'à' | 'á' | 'ả' | 'ã' | 'ạ' | 'ă' | 'ằ' | 'ắ' | 'ẳ' | 'ẵ' | 'ặ' | 'â' | 'ầ' | 'ấ' | 'ẩ' | 'ẫ' | 'ậ' => {
                'a'
            }
            'è' | 'é' | 'ẻ' | 'ẽ' | 'ẹ' | 'ê' | 'ề' | 'ế' | 'ể' | 'ễ' | 'ệ' => 'e',
            'ì' | 'í' | 'ỉ' | 'ĩ' | 'ị' => 'i',
            'ò' | 'ó' | 'ỏ' | 'õ' | 'ọ' | 'ô' | 'ồ' | 'ố' | 'ổ' | 'ỗ' | 'ộ' | 'ơ' | 'ờ' | 'ớ' | 'ở' | 'ỡ' | 'ợ' => {
                'o'
            }
            'ù' | 'ú' | 'ủ' | 'ũ' | 'ụ' | 'ư' | 'ừ' | 'ứ' | 'ử' | 'ữ' | 'ự' => 'u',
            'ỳ' | 'ý' | 'ỷ' | 'ỹ' | 'ỵ' => 'y',
            'đ' => 'd',
            'Đ' => 'D',
            'Ầ' | 'Ấ' | 'Â' | 'Ă' => 'A',
            'Ộ' | 'Ơ' | 'Ô' => 'O',
            other => other,
        })
        .collect()
}

fn error(format: StatementFormat, bytes: &[u8]) -> String {
    match parse(format, bytes) {
        Ok(statement) => panic!("expected an error, parsed {} lines", statement.lines.len()),
        Err(error) => error.to_string(),
    }
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    assert!(text.contains(from), "{from:?} not in the file");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn a_closing_balance_that_does_not_add_up_is_refused_with_the_amounts() {
    let export = export(ids_for(Bank::Agribank));
    let closing = grouped(export.closing(), '.');
    let csv = bank_csv(Bank::Agribank, &export);
    let tampered = replace(&csv, &format!("Số dư cuối kỳ:,{closing}"), "Số dư cuối kỳ:,1.000.000");
    assert_eq!(
        error(StatementFormat::Auto, &tampered),
        format!(
            "file: the balances do not add up: opening balance 52500000 + credits 1238467000 - debits 35211000 = {}, but the closing balance is 1000000",
            export.closing()
        )
    );
}

#[test]
fn a_running_balance_that_does_not_follow_is_refused_at_its_row() {
    let export = export(ids_for(Bank::Vietinbank));
    let csv = bank_csv(Bank::Vietinbank, &export);
    let after_first = grouped(export.balance_after(1), '.');
    let tampered = replace(&csv, &format!(",{after_first},FT24116000111111"), ",52.650.001,FT24116000111111");
    assert_eq!(
        error(StatementFormat::Bank(Bank::Vietinbank), &tampered),
        "row 12: the balance column shows 52650001 but the previous balance 52500000 + 150000 gives 52650000"
    );
}

#[test]
fn bad_cells_are_refused_naming_the_row() {
    // In a CSV the row is the file's line: the BIDV header's cells hold line breaks, so the first
    // line (the 11th record) starts on line 17.
    let export = export(ids_for(Bank::Bidv));
    let csv = bank_csv(Bank::Bidv, &export);
    let bad_date = replace(&csv, "1,25/04/2024,", "1,31/02/2024,");
    assert_eq!(
        error(StatementFormat::Auto, &bad_date),
        "row 17: booking date \"31/02/2024\" is not a valid date (expected DD/MM/YYYY)"
    );
    let fraction = replace(&csv, ",\"150,000\",", ",\"150,000.50\",");
    assert_eq!(error(StatementFormat::Auto, &fraction), "row 17: amount \"150,000.50\" is not a whole number of dong");
    let both = replace(&csv, "1,25/04/2024,,\"150,000\"", "1,25/04/2024,5,\"150,000\"");
    assert_eq!(
        error(StatementFormat::Auto, &both),
        "row 17: has both a debit and a credit amount; a line moves money one way"
    );
    let usd = replace(&bank_csv(Bank::Agribank, &export), "Loại tiền:,VND", "Loại tiền:,USD");
    assert_eq!(
        error(StatementFormat::Auto, &usd),
        "row 5: the account's currency is \"USD\"; a collection account statement must be all VND"
    );
}

#[test]
fn unknown_layouts_and_missing_headers_are_refused_naming_what_was_expected() {
    let unknown = "Ngày,Số tiền,Nội dung\n26/04/2024,150000,abc\n";
    let message = error(StatementFormat::Auto, unknown.as_bytes());
    assert!(
        message.starts_with("file: not a statement layout feeledger knows (expected the ledger's CSV"),
        "{message}"
    );
    assert!(message.contains("VietinBank, Vietcombank, BIDV or Agribank"), "{message}");
    let vietinbank = bank_csv(Bank::Vietinbank, &export(ids_for(Bank::Vietinbank)));
    assert_eq!(
        error(StatementFormat::Bank(Bank::Bidv), &vietinbank),
        "file: no BIDV header row found (expected a row with the columns \"ngày hiệu lực\", \"ghi nợ\", \"ghi có\")"
    );
    assert!(matches!(detect(b"PK\x03\x04garbage"), Err(StatementError::Malformed { .. })));
}

#[test]
fn a_statement_without_an_account_number_is_refused() {
    let csv = bank_csv(Bank::Agribank, &export(ids_for(Bank::Agribank)));
    let without = replace(&csv, "Số tài khoản:,113000123456", "Số tài khoản:,");
    assert_eq!(
        error(StatementFormat::Bank(Bank::Agribank), &without),
        "file: no account number found in the Agribank export (expected a \"Số tài khoản/Account No\" row above the table)"
    );
}

#[test]
fn a_bank_csv_cut_at_any_line_break_is_refused_never_read_in_part() {
    for bank in [Bank::Vietinbank, Bank::Vietcombank, Bank::Bidv, Bank::Agribank] {
        let csv = bank_csv(bank, &export(ids_for(bank)));
        let text = String::from_utf8(csv.clone()).expect("UTF-8");
        let whole = parse(StatementFormat::Auto, &csv).expect("the whole file reads");
        assert_eq!(whole.lines.len(), 9, "{bank:?}");
        // Every prefix that ends at a line break: refused, or (once the closing balance is in)
        // every line read.
        let breaks: Vec<usize> = text.match_indices('\n').map(|(at, _)| at + 1).collect();
        let mut refused = 0;
        for &cut in &breaks {
            match parse(StatementFormat::Auto, &csv[..cut]) {
                Ok(statement) => {
                    assert_eq!(statement.lines.len(), 9, "{bank:?} cut at byte {cut}: read in part");
                    assert_eq!(statement.closing_balance, whole.closing_balance);
                }
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 9, "{bank:?}: cuts refused: {refused}");
        let before_foot = &text[..text.find("Số dư cuối kỳ").expect("a closing balance row")];
        assert_eq!(
            error(StatementFormat::Auto, before_foot.as_bytes()),
            "file: the closing balance (\"Số dư cuối kỳ\") at the foot of the export, so the file looks cut off is missing",
            "{bank:?}"
        );
    }
}

#[test]
fn a_damaged_xls_that_makes_the_workbook_reader_panic_is_refused_as_damaged() {
    // Found by the fuzzer: calamine indexes past the end of the workbook stream.
    let path = format!(
        "{}/../fuzz/regressions/statement_bank/crash-66d6af93383f6b2bc7131c8a8c576e10678aff53",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).expect("the fuzzer's input");
    assert_eq!(error(StatementFormat::Auto, &bytes), "file: not a readable workbook: the file is damaged");
}

#[test]
fn an_mt940_entry_date_cut_inside_a_character_is_refused_not_a_panic() {
    // Found by the fuzzer: four bytes after the value date ended inside a multi-byte character.
    let path = format!(
        "{}/../fuzz/regressions/statement_mt940/crash-eeaf491d8dd03586bdf8819e5adf76092e11e55c",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).expect("the fuzzer's input");
    assert!(parse(StatementFormat::Mt940, &bytes).is_err());
}
