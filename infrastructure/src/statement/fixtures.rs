//! Test support: writes a statement in each bank's own export layout (XLSX or CSV) and as MT940,
//! so that tests can import "real-shaped" files. The layouts reproduce what `docs/STATEMENTS.md`
//! describes for each bank: preamble rows, bilingual and merged headers, dates filled down,
//! Vietnamese (`1.500.000`) or English (`1,500,000`) thousands separators, separate debit and
//! credit columns, a running balance, totals and the closing balance.
#![allow(clippy::missing_panics_doc, clippy::missing_errors_doc)]

use chrono::NaiveDate;
use feeledger_domain::money::Vnd;
use rust_xlsxwriter::{Format, FormatAlign, Workbook, XlsxError};

use super::{Bank, Direction};

/// One line as the bank would print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLine {
    pub booked_on: NaiveDate,
    pub amount: Vnd,
    pub direction: Direction,
    pub description: String,
    /// The bank's own id of the line (VietinBank "Số giao dịch", Vietcombank "Số CT", BIDV
    /// "Số tham chiếu", Agribank "Số bút toán", MT940 bank reference).
    pub bank_id: String,
    pub counterparty_name: Option<String>,
    pub counterparty_account: Option<String>,
}

/// An account history for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub account: String,
    pub account_name: String,
    pub opening: i64,
    pub lines: Vec<ExportLine>,
}

impl Export {
    /// The balance after `n` lines.
    #[must_use]
    pub fn balance_after(&self, n: usize) -> i64 {
        self.lines.iter().take(n).fold(self.opening, |b, l| match l.direction {
            Direction::Credit => b + l.amount.dong(),
            Direction::Debit => b - l.amount.dong(),
        })
    }

    #[must_use]
    pub fn closing(&self) -> i64 {
        self.balance_after(self.lines.len())
    }

    fn total(&self, direction: Direction) -> i64 {
        self.lines.iter().filter(|l| l.direction == direction).map(|l| l.amount.dong()).sum()
    }

    fn from(&self) -> Option<NaiveDate> {
        self.lines.iter().map(|l| l.booked_on).min()
    }

    fn to(&self) -> Option<NaiveDate> {
        self.lines.iter().map(|l| l.booked_on).max()
    }
}

#[derive(Debug, Clone)]
enum Out {
    Blank,
    Text(String),
    /// A number: a number cell in XLSX, grouped text in CSV.
    Number(i64),
    Date(NaiveDate),
    /// Text in a cell merged with the `usize` cells to its right (and the row below when
    /// `bool`).
    Merged(String, usize, bool),
}

fn t(text: &str) -> Out {
    Out::Text(text.to_owned())
}

fn dmy(date: Option<NaiveDate>) -> String {
    date.map(|d| d.format("%d/%m/%Y").to_string()).unwrap_or_default()
}

/// `1234567` → `1.234.567` (Vietnamese) or `1,234,567` (English).
#[must_use]
pub fn grouped(dong: i64, separator: char) -> String {
    let digits = dong.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(c);
    }
    if dong < 0 { format!("-{out}") } else { out }
}

struct Sheet {
    rows: Vec<Vec<Out>>,
    /// The thousands separator used when numbers are written as text (CSV, or a bank that
    /// writes its amounts as text).
    separator: char,
    /// Amounts written as text even in XLSX (VietinBank does).
    amounts_as_text: bool,
}

fn amount_cell(line: &ExportLine, direction: Direction, sheet_text: bool, separator: char) -> Out {
    if line.direction != direction {
        return Out::Blank;
    }
    if sheet_text { Out::Text(grouped(line.amount.dong(), separator)) } else { Out::Number(line.amount.dong()) }
}

fn vietinbank(export: &Export) -> Sheet {
    let mut rows = vec![
        vec![Out::Merged("NGÂN HÀNG TMCP CÔNG THƯƠNG VIỆT NAM".into(), 4, false)],
        vec![t("VietinBank - Chi nhánh Bắc Giang")],
        vec![Out::Merged("LỊCH SỬ GIAO DỊCH - TRANSACTION HISTORY".into(), 9, false)],
        vec![],
        vec![t("Số tài khoản/Account No:"), Out::Blank, Out::Text(export.account.clone())],
        vec![t("Tên tài khoản/Account name:"), Out::Blank, Out::Text(export.account_name.clone())],
        vec![t("Loại tiền/Currency:"), Out::Blank, t("VND")],
        vec![
            t("Từ ngày/From date:"),
            Out::Blank,
            Out::Text(dmy(export.from())),
            t("Đến ngày/To date:"),
            Out::Text(dmy(export.to())),
        ],
        vec![t("Số dư đầu kỳ/Opening balance:"), Out::Blank, Out::Text(grouped(export.opening, '.'))],
        vec![],
        vec![
            t("STT/No"),
            t("Ngày hạch toán/Accounting date"),
            t("Ngày giao dịch/Transaction date"),
            t("Mô tả giao dịch/Transaction description"),
            t("Nợ/Debit"),
            t("Có/Credit"),
            t("Số dư TK/Account balance"),
            t("Số giao dịch/Transaction number"),
            t("Tên đối ứng/Corresponsive name"),
            t("TK đối ứng/Corresponsive account"),
        ],
    ];
    let mut previous: Option<NaiveDate> = None;
    for (i, line) in export.lines.iter().enumerate() {
        // The accounting date is printed once per day and left blank below it.
        let date = if previous == Some(line.booked_on) { Out::Blank } else { Out::Text(dmy(Some(line.booked_on))) };
        previous = Some(line.booked_on);
        rows.push(vec![
            Out::Number(i as i64 + 1),
            date,
            Out::Text(format!("{} {:02}:{:02}:{:02}", dmy(Some(line.booked_on)), 8 + i % 9, i % 60, (i * 7) % 60)),
            Out::Text(line.description.clone()),
            amount_cell(line, Direction::Debit, true, '.'),
            amount_cell(line, Direction::Credit, true, '.'),
            Out::Text(grouped(export.balance_after(i + 1), '.')),
            Out::Text(line.bank_id.clone()),
            line.counterparty_name.clone().map_or(Out::Blank, Out::Text),
            line.counterparty_account.clone().map_or(Out::Blank, Out::Text),
        ]);
    }
    rows.push(vec![
        t("Tổng/Total"),
        Out::Blank,
        Out::Blank,
        Out::Blank,
        Out::Text(grouped(export.total(Direction::Debit), '.')),
        Out::Text(grouped(export.total(Direction::Credit), '.')),
    ]);
    rows.push(vec![t("Số dư cuối kỳ/Closing balance:"), Out::Blank, Out::Text(grouped(export.closing(), '.'))]);
    rows.push(vec![]);
    rows.push(vec![
        Out::Blank,
        Out::Blank,
        Out::Blank,
        t("Người lập/Prepared by"),
        Out::Blank,
        t("Kiểm soát/Approved by"),
    ]);
    Sheet { rows, separator: '.', amounts_as_text: true }
}

fn vietcombank(export: &Export) -> Sheet {
    let mut rows = vec![
        vec![Out::Merged("NGÂN HÀNG TMCP NGOẠI THƯƠNG VIỆT NAM - VIETCOMBANK".into(), 5, false)],
        vec![Out::Merged("SAO KÊ TÀI KHOẢN".into(), 5, false)],
        vec![Out::Merged("STATEMENT OF ACCOUNT".into(), 5, false)],
        vec![t("Số tài khoản/Account number:"), Out::Blank, Out::Text(export.account.clone())],
        vec![t("Tên tài khoản/Account name:"), Out::Blank, Out::Text(export.account_name.clone())],
        vec![t("Loại tiền/Currency:"), Out::Blank, t("VND")],
        vec![
            t("Từ ngày/From:"),
            Out::Blank,
            Out::Text(dmy(export.from())),
            t("Đến ngày/To:"),
            Out::Text(dmy(export.to())),
        ],
        vec![t("Số dư đầu kỳ/Opening balance:"), Out::Blank, Out::Number(export.opening)],
        vec![],
        // A two-row header: "Số tiền/Amount" merged over the debit and credit columns, the
        // other headings merged down over both rows.
        vec![
            Out::Merged("STT\nNo.".into(), 0, true),
            Out::Merged("Ngày GD/Số CT\nDate/Doc No.".into(), 0, true),
            Out::Merged("Số tiền/Amount".into(), 1, false),
            Out::Blank,
            Out::Merged("Số dư\nBalance".into(), 0, true),
            Out::Merged("Diễn giải\nTransactions in detail".into(), 0, true),
        ],
        vec![Out::Blank, Out::Blank, t("Ghi nợ/Debit"), t("Ghi có/Credit"), Out::Blank, Out::Blank],
    ];
    for (i, line) in export.lines.iter().enumerate() {
        rows.push(vec![
            Out::Number(i as i64 + 1),
            Out::Text(format!("{}\n{}", dmy(Some(line.booked_on)), line.bank_id)),
            amount_cell(line, Direction::Debit, false, ','),
            amount_cell(line, Direction::Credit, false, ','),
            Out::Number(export.balance_after(i + 1)),
            Out::Text(line.description.clone()),
        ]);
    }
    rows.push(vec![
        Out::Merged("Tổng số/Total".into(), 1, false),
        Out::Blank,
        Out::Number(export.total(Direction::Debit)),
        Out::Number(export.total(Direction::Credit)),
    ]);
    rows.push(vec![t("Số dư cuối kỳ/Closing balance:"), Out::Blank, Out::Number(export.closing())]);
    Sheet { rows, separator: ',', amounts_as_text: false }
}

fn bidv(export: &Export) -> Sheet {
    let mut rows = vec![
        vec![Out::Merged("NGÂN HÀNG TMCP ĐẦU TƯ VÀ PHÁT TRIỂN VIỆT NAM".into(), 6, false)],
        vec![Out::Merged("BÁO CÁO CHI TIẾT SỐ DƯ TÀI KHOẢN".into(), 6, false)],
        vec![Out::Text(format!("Số tài khoản: {}", export.account))],
        vec![Out::Text(format!("Tên tài khoản: {}", export.account_name))],
        vec![t("Loại tiền: VND")],
        vec![Out::Text(format!("Từ ngày {} đến ngày {}", dmy(export.from()), dmy(export.to())))],
        vec![],
        vec![
            t("STT\nNo."),
            t("Ngày hiệu lực\nEffective date"),
            t("Ghi nợ\nDebit"),
            t("Ghi có\nCredit"),
            t("Số dư\nBalance"),
            t("Số tham chiếu\nReference No."),
            t("Mô tả\nDescription"),
        ],
        vec![
            Out::Merged("Số dư đầu kỳ".into(), 1, false),
            Out::Blank,
            Out::Blank,
            Out::Blank,
            Out::Number(export.opening),
        ],
    ];
    for (i, line) in export.lines.iter().enumerate() {
        rows.push(vec![
            Out::Number(i as i64 + 1),
            Out::Date(line.booked_on),
            amount_cell(line, Direction::Debit, false, ','),
            amount_cell(line, Direction::Credit, false, ','),
            Out::Number(export.balance_after(i + 1)),
            Out::Text(line.bank_id.clone()),
            Out::Text(line.description.clone()),
        ]);
    }
    rows.push(vec![
        Out::Merged("Tổng phát sinh".into(), 1, false),
        Out::Blank,
        Out::Number(export.total(Direction::Debit)),
        Out::Number(export.total(Direction::Credit)),
    ]);
    rows.push(vec![
        Out::Merged("Số dư cuối kỳ".into(), 1, false),
        Out::Blank,
        Out::Blank,
        Out::Blank,
        Out::Number(export.closing()),
    ]);
    Sheet { rows, separator: ',', amounts_as_text: false }
}

fn agribank(export: &Export) -> Sheet {
    let mut rows = vec![
        vec![Out::Merged("NGÂN HÀNG NÔNG NGHIỆP VÀ PHÁT TRIỂN NÔNG THÔN VIỆT NAM (AGRIBANK)".into(), 7, false)],
        vec![Out::Merged("SAO KÊ TÀI KHOẢN".into(), 7, false)],
        vec![t("Số tài khoản:"), Out::Text(export.account.clone())],
        vec![t("Tên tài khoản:"), Out::Text(export.account_name.clone())],
        vec![t("Loại tiền:"), t("VND")],
        vec![t("Từ ngày:"), Out::Text(dmy(export.from())), t("Đến ngày:"), Out::Text(dmy(export.to()))],
        vec![t("Số dư đầu kỳ:"), Out::Number(export.opening)],
        vec![],
        vec![
            t("STT"),
            t("Ngày GD"),
            t("Số bút toán"),
            t("Số tiền ghi nợ"),
            t("Số tiền ghi có"),
            t("Số dư"),
            t("Nội dung giao dịch"),
            t("Tên người chuyển"),
        ],
    ];
    for (i, line) in export.lines.iter().enumerate() {
        rows.push(vec![
            Out::Number(i as i64 + 1),
            Out::Text(dmy(Some(line.booked_on))),
            Out::Text(line.bank_id.clone()),
            amount_cell(line, Direction::Debit, false, '.'),
            amount_cell(line, Direction::Credit, false, '.'),
            Out::Number(export.balance_after(i + 1)),
            Out::Text(line.description.clone()),
            line.counterparty_name.clone().map_or(Out::Blank, Out::Text),
        ]);
    }
    rows.push(vec![
        t("Cộng phát sinh"),
        Out::Blank,
        Out::Blank,
        Out::Number(export.total(Direction::Debit)),
        Out::Number(export.total(Direction::Credit)),
    ]);
    rows.push(vec![t("Số dư cuối kỳ:"), Out::Number(export.closing())]);
    Sheet { rows, separator: '.', amounts_as_text: false }
}

fn sheet(bank: Bank, export: &Export) -> Sheet {
    match bank {
        Bank::Vietinbank => vietinbank(export),
        Bank::Vietcombank => vietcombank(export),
        Bank::Bidv => bidv(export),
        Bank::Agribank => agribank(export),
    }
}

/// `export` as `bank`'s XLSX account history.
#[must_use]
pub fn bank_xlsx(bank: Bank, export: &Export) -> Vec<u8> {
    write_xlsx(&sheet(bank, export)).expect("writing an XLSX to memory does not fail")
}

fn write_xlsx(sheet: &Sheet) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let worksheet = workbook.add_worksheet();
    worksheet.set_name("Sheet1")?;
    let money = Format::new().set_num_format("#,##0");
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let merged = Format::new().set_bold().set_align(FormatAlign::Center).set_text_wrap();
    let _ = sheet.amounts_as_text;
    for (r, row) in sheet.rows.iter().enumerate() {
        let r = u32::try_from(r).expect("rows fit");
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).expect("columns fit");
            match cell {
                Out::Blank => {}
                Out::Text(text) => {
                    worksheet.write_string(r, c, text)?;
                }
                Out::Number(n) => {
                    #[allow(clippy::cast_precision_loss)]
                    worksheet.write_number_with_format(r, c, *n as f64, &money)?;
                }
                Out::Date(d) => {
                    worksheet.write_datetime_with_format(r, c, *d, &date)?;
                }
                Out::Merged(text, right, down) => {
                    let last_row = if *down { r + 1 } else { r };
                    let last_col = c + u16::try_from(*right).expect("columns fit");
                    if last_row == r && last_col == c {
                        worksheet.write_string_with_format(r, c, text, &merged)?;
                    } else {
                        worksheet.merge_range(r, c, last_row, last_col, text, &merged)?;
                    }
                }
            }
        }
    }
    workbook.save_to_buffer()
}

/// `export` as `bank`'s sheet saved as CSV (UTF-8 with a byte order mark, as Excel writes it).
#[must_use]
pub fn bank_csv(bank: Bank, export: &Export) -> Vec<u8> {
    let sheet = sheet(bank, export);
    let mut writer = ::csv::WriterBuilder::new().flexible(true).from_writer(b"\xEF\xBB\xBF".to_vec());
    for row in &sheet.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| match cell {
                Out::Blank => String::new(),
                Out::Text(text) | Out::Merged(text, _, _) => text.clone(),
                Out::Number(n) => grouped(*n, sheet.separator),
                Out::Date(d) => dmy(Some(*d)),
            })
            .collect();
        writer.write_record(if cells.is_empty() { vec![String::new()] } else { cells }).expect("writing to memory");
    }
    writer.into_inner().expect("writing to memory")
}

/// `export` as an MT940 message, in the SWIFT envelope.
#[must_use]
pub fn mt940(export: &Export, statement_number: u32) -> Vec<u8> {
    let swift_date = |d: Option<NaiveDate>| d.map(|d| d.format("%y%m%d").to_string()).unwrap_or_default();
    let balance = |tag: &str, date: Option<NaiveDate>, amount: i64| {
        format!(":{tag}:{}{}VND{},\r\n", if amount < 0 { 'D' } else { 'C' }, swift_date(date), amount.unsigned_abs())
    };
    let mut out =
        String::from("{1:F01ICBVVNVXAXXX0000000000}{2:O9400000240426ICBVVNVXAXXX00000000002404260000N}{4:\r\n");
    out.push_str(&format!(
        ":20:STMT{statement_number:06}\r\n:25:ICBVVNVX/{}\r\n:28C:{statement_number}/1\r\n",
        export.account
    ));
    out.push_str(&balance("60F", export.from(), export.opening));
    for line in &export.lines {
        let mark = if line.direction == Direction::Credit { 'C' } else { 'D' };
        let date = line.booked_on.format("%y%m%d").to_string();
        out.push_str(&format!(
            ":61:{date}{}{mark}{},NTRFNONREF//{}\r\n",
            line.booked_on.format("%m%d"),
            line.amount.dong(),
            line.bank_id
        ));
        // Information to the account owner, wrapped at 65 characters as SWIFT does.
        let chars: Vec<char> = line.description.chars().collect();
        let mut first = true;
        for chunk in chars.chunks(65) {
            out.push_str(if first { ":86:" } else { "" });
            out.extend(chunk.iter());
            out.push_str("\r\n");
            first = false;
        }
        if chars.is_empty() {
            out.push_str(":86:\r\n");
        }
    }
    out.push_str(&balance("62F", export.to(), export.closing()));
    out.push_str("-}\r\n");
    out.into_bytes()
}
