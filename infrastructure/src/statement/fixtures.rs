//! Test support: writes a statement in each bank's own export layout (XLSX, the old binary XLS,
//! the HTML table some banks download as ".xls", or CSV) and as MT940, so that tests can import
//! "real-shaped" files. The layouts reproduce what `docs/STATEMENTS.md`
//! describes for each bank: preamble rows, bilingual and merged headers, dates filled down,
//! Vietnamese (`1.500.000`) or English (`1,500,000`) thousands separators, separate debit and
//! credit columns, a running balance, totals and the closing balance.
#![allow(clippy::missing_panics_doc, clippy::missing_errors_doc)]

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Write as _};

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

/// `export` as `bank`'s account history in the old binary format Excel 97–2003 saves (`.xls`):
/// a BIFF8 `Workbook` stream in an OLE2 compound file. See [`write_xls`] for what it holds.
#[must_use]
pub fn bank_xls(bank: Bank, export: &Export) -> Vec<u8> {
    write_xls(&sheet(bank, export))
}

/// BIFF8 record types ([MS-XLS] 2.3), those the fixture writes.
mod record {
    pub const BOF: u16 = 0x0809;
    pub const EOF: u16 = 0x000A;
    pub const CODEPAGE: u16 = 0x0042;
    pub const DATEMODE: u16 = 0x0022;
    pub const WINDOW1: u16 = 0x003D;
    pub const FONT: u16 = 0x0031;
    pub const FORMAT: u16 = 0x041E;
    pub const XF: u16 = 0x00E0;
    pub const STYLE: u16 = 0x0293;
    pub const BOUNDSHEET: u16 = 0x0085;
    pub const SST: u16 = 0x00FC;
    pub const CONTINUE: u16 = 0x003C;
    pub const DIMENSIONS: u16 = 0x0200;
    pub const WINDOW2: u16 = 0x023E;
    pub const LABELSST: u16 = 0x00FD;
    pub const NUMBER: u16 = 0x0203;
    pub const RK: u16 = 0x027E;
    pub const MERGEDCELLS: u16 = 0x00E5;
}

/// The most data one BIFF8 record holds; the rest goes into `CONTINUE` records.
const BIFF_RECORD_MAX: usize = 8224;
/// The cell formats (XF indices) the sheet uses: after the 15 style XFs and the default cell XF.
const XF_GENERAL: u16 = 15;
const XF_MONEY: u16 = 16;
const XF_DATE: u16 = 17;
const XF_MERGED: u16 = 18;
/// The first custom number format id.
const FORMAT_DATE: u16 = 164;

fn record(stream: &mut Vec<u8>, typ: u16, data: &[u8]) {
    assert!(data.len() <= BIFF_RECORD_MAX, "record 0x{typ:04X} is {} bytes", data.len());
    stream.extend(typ.to_le_bytes());
    stream.extend(u16::try_from(data.len()).expect("checked above").to_le_bytes());
    stream.extend(data);
}

fn u16_of(n: usize) -> [u8; 2] {
    u16::try_from(n).expect("fits a BIFF8 field").to_le_bytes()
}

/// A `ShortXLUnicodeString` (sheet and font names): 8-bit length, ASCII here.
fn short_ascii(text: &str) -> Vec<u8> {
    assert!(text.is_ascii());
    let mut out = vec![u8::try_from(text.len()).expect("short string"), 0];
    out.extend(text.as_bytes());
    out
}

/// An XF record: font, number format, the "used attributes" byte and alignment.
fn xf(font: u16, format: u16, style: bool, alignment: u8, used: u8) -> Vec<u8> {
    let mut data = Vec::with_capacity(20);
    data.extend(font.to_le_bytes());
    data.extend(format.to_le_bytes());
    // fLocked; a style XF has fStyle and no parent (0xFFF), a cell XF the Normal style (0).
    data.extend(if style { 0xFFF5_u16 } else { 0x0001_u16 }.to_le_bytes());
    data.extend([alignment, 0, 0, used]);
    data.extend([0; 8]);
    // Pattern colours: the system foreground (64) and background (65).
    data.extend((0x40_u16 | (0x41 << 7)).to_le_bytes());
    data
}

/// The shared-string table as an `SST` record and its `CONTINUE`s. Each string is an
/// `XLUnicodeRichExtendedString`, 8-bit when every character fits (as Excel compresses), else
/// UTF-16; a string that does not fit the record goes on in the next, behind a flag byte.
fn sst_records(strings: &[String], cells: usize) -> Vec<(u16, Vec<u8>)> {
    let mut records = Vec::new();
    let mut typ = record::SST;
    let mut data = Vec::new();
    data.extend(u32::try_from(cells).expect("cells fit").to_le_bytes());
    data.extend(u32::try_from(strings.len()).expect("strings fit").to_le_bytes());
    for text in strings {
        let units: Vec<u16> = text.encode_utf16().collect();
        assert!(units.len() <= 32_767, "a cell holds at most 32,767 characters");
        let wide = units.iter().any(|u| *u > 0xFF);
        let unit = if wide { 2 } else { 1 };
        // The length, the flags and the first character are never split.
        if data.len() + 3 + unit > BIFF_RECORD_MAX {
            records.push((typ, std::mem::take(&mut data)));
            typ = record::CONTINUE;
        }
        data.extend(u16_of(units.len()));
        data.push(u8::from(wide));
        let mut rest = units.as_slice();
        loop {
            let mut n = ((BIFF_RECORD_MAX - data.len()) / unit).min(rest.len());
            // A surrogate pair stays in one record.
            if n < rest.len() && n > 1 && (0xD800..0xDC00).contains(&rest[n - 1]) {
                n -= 1;
            }
            for u in &rest[..n] {
                if wide {
                    data.extend(u.to_le_bytes());
                } else {
                    data.push(u8::try_from(*u).expect("checked: not wide"));
                }
            }
            rest = &rest[n..];
            if rest.is_empty() {
                break;
            }
            records.push((typ, std::mem::take(&mut data)));
            typ = record::CONTINUE;
            data.push(u8::from(wide));
        }
    }
    records.push((typ, data));
    records
}

/// Excel's day number of a date (1900 date system: day 0 is 1899-12-30, past the phantom
/// 29 February 1900).
fn excel_day(date: NaiveDate) -> i64 {
    (date - NaiveDate::from_ymd_opt(1899, 12, 30).expect("a valid date")).num_days()
}

/// A number cell as Excel writes it: an `RK` (integer in 30 bits) when it fits, else `NUMBER`.
fn number_cell(stream: &mut Vec<u8>, row: u16, column: u16, xf: u16, value: i64) {
    let mut data = Vec::with_capacity(14);
    data.extend(row.to_le_bytes());
    data.extend(column.to_le_bytes());
    data.extend(xf.to_le_bytes());
    if (-(1 << 29)..(1 << 29)).contains(&value) {
        let rk = (i32::try_from(value).expect("30 bits") << 2) | 0x02;
        data.extend(rk.to_le_bytes());
        record(stream, record::RK, &data);
    } else {
        #[allow(clippy::cast_precision_loss)]
        let float = value as f64;
        assert!(value.unsigned_abs() < 1 << 53, "exact as a float");
        data.extend(float.to_le_bytes());
        record(stream, record::NUMBER, &data);
    }
}

/// The sheet as an XLS file: a BIFF8 `Workbook` stream of the records Excel 97–2003 writes for
/// such a sheet (`BOF`, code page, window, fonts, the date format, XFs, the Normal style,
/// `BOUNDSHEET`, the shared-string table; then the sheet's `BOF`, `DIMENSIONS`, `WINDOW2`, its
/// cells as `LABELSST`, `RK` and `NUMBER`, `MERGEDCELLS`), in a version 3 (512-byte sector)
/// compound file written by the `cfb` crate. Not written: `EXTSST`, `ROW`/`INDEX`/`DBCELL` and
/// the summary-information streams, which Excel reads files without and calamine does not read.
fn write_xls(sheet: &Sheet) -> Vec<u8> {
    // The cells, row by row, with the shared strings numbered in order of first use.
    let mut strings: Vec<String> = Vec::new();
    let mut string_ids: HashMap<String, u32> = HashMap::new();
    let mut string_cells = 0;
    let mut cells = Vec::new();
    let mut merges: Vec<[u16; 4]> = Vec::new();
    let (mut last_row, mut last_column) = (0_u16, 0_u16);
    for (r, row) in sheet.rows.iter().enumerate() {
        let r = u16::try_from(r).expect("an XLS sheet has at most 65,536 rows");
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).ok().filter(|c| *c < 256).expect("an XLS sheet has at most 256 columns");
            let mut text = |text: &str, xf: u16, cells: &mut Vec<u8>| {
                let next = u32::try_from(strings.len()).expect("strings fit");
                let id = *string_ids.entry(text.to_owned()).or_insert_with(|| {
                    strings.push(text.to_owned());
                    next
                });
                string_cells += 1;
                let mut data = Vec::with_capacity(10);
                for field in [r, c, xf] {
                    data.extend(field.to_le_bytes());
                }
                data.extend(id.to_le_bytes());
                record(cells, record::LABELSST, &data);
            };
            match cell {
                Out::Blank => continue,
                Out::Text(t) => text(t, XF_GENERAL, &mut cells),
                Out::Number(n) => number_cell(&mut cells, r, c, XF_MONEY, *n),
                Out::Date(d) => number_cell(&mut cells, r, c, XF_DATE, excel_day(*d)),
                Out::Merged(t, right, down) => {
                    text(t, XF_MERGED, &mut cells);
                    let right = u16::try_from(*right).expect("columns fit");
                    if right > 0 || *down {
                        merges.push([r, r + u16::from(*down), c, c + right]);
                    }
                }
            }
            last_row = last_row.max(r);
            last_column = last_column.max(c);
        }
    }

    let mut stream = Vec::new();
    let bof = |dt: u16| {
        let mut data = Vec::with_capacity(16);
        for field in [0x0600_u16, dt, 0x0DBB, 0x07CC] {
            data.extend(field.to_le_bytes());
        }
        data.extend(0_u32.to_le_bytes());
        data.extend(0x06_u32.to_le_bytes());
        data
    };
    // Workbook globals.
    record(&mut stream, record::BOF, &bof(0x0005));
    record(&mut stream, record::CODEPAGE, &1200_u16.to_le_bytes());
    let mut window = Vec::new();
    for field in [0x0168_u16, 0x001E, 0x3A5C, 0x23BE, 0x0038, 0, 0, 1, 0x0258] {
        window.extend(field.to_le_bytes());
    }
    record(&mut stream, record::WINDOW1, &window);
    record(&mut stream, record::DATEMODE, &0_u16.to_le_bytes());
    // Fonts 0 to 3 are Arial 10; index 4 is never used, so the bold font written fifth is 5.
    for bold in [false, false, false, false, true] {
        let mut data = Vec::new();
        let weight: u16 = if bold { 700 } else { 400 };
        for field in [200_u16, 0, 0x7FFF, weight, 0] {
            data.extend(field.to_le_bytes());
        }
        data.extend([0, 0, 0, 0]);
        data.extend(short_ascii("Arial"));
        record(&mut stream, record::FONT, &data);
    }
    let mut format = FORMAT_DATE.to_le_bytes().to_vec();
    format.extend(u16_of("dd/mm/yyyy".len()));
    format.push(0);
    format.extend(b"dd/mm/yyyy");
    record(&mut stream, record::FORMAT, &format);
    for index in 0..15 {
        record(&mut stream, record::XF, &xf(0, 0, true, 0x20, if index == 0 { 0 } else { 0xF4 }));
    }
    record(&mut stream, record::XF, &xf(0, 0, false, 0x20, 0));
    // `#,##0` is built-in format 3.
    record(&mut stream, record::XF, &xf(0, 3, false, 0x20, 0x04));
    record(&mut stream, record::XF, &xf(0, FORMAT_DATE, false, 0x20, 0x04));
    // Bold, centred, wrapped: the merged headings.
    record(&mut stream, record::XF, &xf(5, 0, false, 0x02 | 0x08 | 0x10, 0x18));
    record(&mut stream, record::STYLE, &[0x00, 0x80, 0x00, 0xFF]);
    let boundsheet_at = stream.len() + 4;
    let mut boundsheet = 0_u32.to_le_bytes().to_vec();
    boundsheet.extend([0, 0]);
    boundsheet.extend(short_ascii("Sheet1"));
    record(&mut stream, record::BOUNDSHEET, &boundsheet);
    for (typ, data) in sst_records(&strings, string_cells) {
        record(&mut stream, typ, &data);
    }
    record(&mut stream, record::EOF, &[]);

    // The worksheet; the BOUNDSHEET gives where its BOF is.
    let sheet_at = u32::try_from(stream.len()).expect("the stream fits");
    stream[boundsheet_at..boundsheet_at + 4].copy_from_slice(&sheet_at.to_le_bytes());
    record(&mut stream, record::BOF, &bof(0x0010));
    let mut dimensions = Vec::new();
    dimensions.extend(0_u32.to_le_bytes());
    dimensions.extend((u32::from(last_row) + 1).to_le_bytes());
    dimensions.extend(0_u16.to_le_bytes());
    dimensions.extend((last_column + 1).to_le_bytes());
    dimensions.extend(0_u16.to_le_bytes());
    record(&mut stream, record::DIMENSIONS, &dimensions);
    let mut window = Vec::new();
    for field in [0x06B6_u16, 0, 0, 64, 0, 0, 0, 0, 0] {
        window.extend(field.to_le_bytes());
    }
    record(&mut stream, record::WINDOW2, &window);
    stream.extend(&cells);
    for chunk in merges.chunks(1026) {
        let mut data = u16_of(chunk.len()).to_vec();
        for [first_row, last_row, first_column, last_column] in chunk {
            for field in [first_row, last_row, first_column, last_column] {
                data.extend(field.to_le_bytes());
            }
        }
        record(&mut stream, record::MERGEDCELLS, &data);
    }
    record(&mut stream, record::EOF, &[]);

    let mut file = cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))
        .expect("a compound file in memory");
    file.create_stream("/Workbook").and_then(|mut s| s.write_all(&stream)).expect("writing to memory");
    file.flush().expect("writing to memory");
    file.into_inner().into_inner()
}

/// How a bank's HTML page is written, so that the four pages differ as real ones do.
#[derive(Debug, Clone, Copy)]
struct HtmlStyle {
    /// `<!DOCTYPE html>` and a byte order mark first.
    doctype: bool,
    /// Letters outside ASCII as decimal character references (`&#7879;`), as some exporters do.
    references: bool,
    /// Tags in upper case without `</TD>`/`</TR>`, as old generators write them.
    upper_unclosed: bool,
    /// The two header rows as `<th>` in a `<thead>`.
    thead: bool,
}

fn html_style(bank: Bank) -> HtmlStyle {
    let style = HtmlStyle { doctype: false, references: false, upper_unclosed: false, thead: false };
    match bank {
        Bank::Vietinbank => style,
        Bank::Vietcombank => HtmlStyle { references: true, thead: true, ..style },
        Bank::Bidv => HtmlStyle { doctype: true, ..style },
        Bank::Agribank => HtmlStyle { upper_unclosed: true, ..style },
    }
}

/// Text as HTML: `&`, `<`, `>` escaped, line breaks as `<br>`.
fn html_text(text: &str, references: bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push_str("<br style='mso-data-placement:same-cell'>"),
            c if references && !c.is_ascii() => out.push_str(&format!("&#{};", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `export` as `bank`'s account history as several banks' "Excel" download really is: an HTML
/// page holding the sheet as a table, saved as `.xls` (UTF-8). Numbers are the text the bank
/// shows (grouped), merged cells `colspan`/`rowspan`, blank cells `&nbsp;`, line breaks in a cell
/// `<br>`; the pages differ in the ways real ones do (see [`HtmlStyle`]).
#[must_use]
pub fn bank_html(bank: Bank, export: &Export) -> Vec<u8> {
    let sheet = sheet(bank, export);
    let style = html_style(bank);
    let tag = |name: &str| if style.upper_unclosed { name.to_uppercase() } else { name.to_owned() };
    let mut out = String::new();
    if style.doctype {
        out.push_str("\u{feff}<!DOCTYPE html>\n");
    }
    out.push_str(
        "<html xmlns:o=\"urn:schemas-microsoft-com:office:office\" xmlns:x=\"urn:schemas-microsoft-com:office:excel\">\n\
         <head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n",
    );
    out.push_str(&format!("<title>{} &mdash; sao k&ecirc;</title>\n", bank.name()));
    out.push_str(
        "<style>\ntd { mso-number-format:\"\\@\"; border: .5pt solid windowtext; }\n.num { mso-number-format:\"#,##0\"; }\n</style>\n\
         <!--[if gte mso 9]><xml><x:ExcelWorkbook><x:ExcelWorksheets><x:ExcelWorksheet><x:Name>Sheet1</x:Name>\
         </x:ExcelWorksheet></x:ExcelWorksheets></x:ExcelWorkbook></xml><![endif]-->\n</head>\n<body>\n",
    );
    out.push_str(&format!("<{} border=\"1\" cellspacing=\"0\">\n", tag("table")));
    // Cells a span from the left or from above covers are not written.
    let mut covered: HashSet<(usize, usize)> = HashSet::new();
    // The header: the row whose first cell is "STT", and the row below when it is merged down.
    let header = sheet
        .rows
        .iter()
        .position(|row| matches!(row.first(), Some(Out::Text(t) | Out::Merged(t, _, _)) if t.starts_with("STT")));
    let head_ends =
        header.map(|h| if sheet.rows[h].iter().any(|c| matches!(c, Out::Merged(_, _, true))) { h + 1 } else { h });
    for (r, row) in sheet.rows.iter().enumerate() {
        let in_head = style.thead && header.is_some_and(|h| r >= h) && head_ends.is_some_and(|e| r <= e);
        if style.thead && header == Some(r) {
            out.push_str("<thead>\n");
        }
        out.push_str(&format!("  <{}>", tag("tr")));
        for (c, cell) in row.iter().enumerate() {
            if covered.contains(&(r, c)) {
                continue;
            }
            let (open, attributes, text) = match cell {
                Out::Blank => (tag("td"), String::new(), "&nbsp;".to_owned()),
                Out::Text(t) => (tag(if in_head { "th" } else { "td" }), String::new(), html_text(t, style.references)),
                Out::Number(n) => (tag("td"), " class=\"num\"".to_owned(), grouped(*n, sheet.separator)),
                Out::Date(d) => (tag("td"), String::new(), dmy(Some(*d))),
                Out::Merged(t, right, down) => {
                    for covered_column in c..=c + right {
                        if covered_column > c {
                            covered.insert((r, covered_column));
                        }
                        if *down {
                            covered.insert((r + 1, covered_column));
                        }
                    }
                    let mut attributes = String::new();
                    if *right > 0 {
                        attributes.push_str(&format!(" colspan=\"{}\"", right + 1));
                    }
                    if *down {
                        attributes.push_str(" rowspan=\"2\"");
                    }
                    let open = tag(if in_head { "th" } else { "td" });
                    (open, attributes, format!("<b>{}</b>", html_text(t, style.references)))
                }
            };
            out.push_str(&format!("<{open}{attributes}>{text}"));
            if !style.upper_unclosed {
                out.push_str(&format!("</{open}>"));
            }
        }
        if !style.upper_unclosed {
            out.push_str(&format!("</{}>", tag("tr")));
        }
        out.push('\n');
        if style.thead && head_ends == Some(r) {
            out.push_str("</thead>\n<tbody>\n");
        }
    }
    if style.thead && header.is_some() {
        out.push_str("</tbody>\n");
    }
    out.push_str(&format!("</{}>\n</body>\n</html>\n", tag("table")));
    out.into_bytes()
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
