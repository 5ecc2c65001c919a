//! The account-history exports of Vietnamese banks, read as the bank gives them: XLSX (and the
//! old XLS) through calamine, the HTML table some banks save as `.xls` (`html_table`), or the
//! same sheet saved as CSV (UTF-8).
//!
//! Each bank's export is a sheet with preamble rows (bank name, title, account number, period,
//! opening balance), a header row (bilingual, sometimes split over two rows, sometimes with a
//! merged date and document-number column), the lines with separate debit and credit columns and
//! a running balance, then totals and the closing balance. A [`Layout`] says, per bank, how to
//! recognise the export (words in the preamble) and which header labels name which column. The
//! layouts, and the sources they were taken from, are described in `docs/STATEMENTS.md`.
//!
//! Reading is all-or-nothing like the other formats: a row in the table that is not a line, a
//! total or a balance is refused with its row number.

use std::io::Cursor;

use calamine::{Data, Reader};
use chrono::NaiveDate;
use feeledger_domain::money::Vnd;

use super::{
    AmountProblem, Direction, LineIds, LineKey, Location, Statement, StatementError, StatementLine, decode_utf8,
    parse_decimal_dong,
};

/// The banks whose exports are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bank {
    Vietinbank,
    Vietcombank,
    Bidv,
    Agribank,
}

impl Bank {
    pub const ALL: [Bank; 4] = [Bank::Vietinbank, Bank::Vietcombank, Bank::Bidv, Bank::Agribank];

    #[must_use]
    pub fn name(self) -> &'static str {
        self.layout().name
    }

    fn layout(self) -> &'static Layout {
        match self {
            Bank::Vietinbank => &VIETINBANK,
            Bank::Vietcombank => &VIETCOMBANK,
            Bank::Bidv => &BIDV,
            Bank::Agribank => &AGRIBANK,
        }
    }
}

/// What a column of the table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Booking (accounting) date, `dd/mm/yyyy`, left blank when it repeats (filled down).
    Booked,
    /// Booking date and the bank's document number in one cell ("26/04/2024\n5243.65937").
    BookedAndDocument,
    ValueDate,
    Debit,
    Credit,
    Balance,
    Description,
    /// The bank's own id of the line.
    LineId,
    CounterpartyName,
    CounterpartyAccount,
}

/// One bank's export layout. Labels are matched after [`normalise`]: lowercase, with `/`, `\n`,
/// brackets and runs of spaces made one space; a header cell matches a role when it contains one
/// of the role's labels.
#[derive(Debug)]
struct Layout {
    name: &'static str,
    /// Any of these in the rows above the header says the export is this bank's.
    markers: &'static [&'static str],
    columns: &'static [(Role, &'static [&'static str])],
}

const VIETINBANK: Layout = Layout {
    name: "VietinBank",
    markers: &["vietinbank", "ngân hàng tmcp công thương", "lịch sử giao dịch transaction history"],
    columns: &[
        (Role::Booked, &["ngày hạch toán", "accounting date"]),
        (Role::ValueDate, &["ngày giao dịch", "transaction date"]),
        (Role::Description, &["mô tả giao dịch", "transaction description"]),
        (Role::Debit, &["nợ debit"]),
        (Role::Credit, &["có credit"]),
        (Role::Balance, &["số dư tk", "account balance"]),
        (Role::LineId, &["số giao dịch", "transaction number"]),
        (Role::CounterpartyName, &["tên đối ứng", "corresponsive name"]),
        (Role::CounterpartyAccount, &["tk đối ứng", "corresponsive account"]),
    ],
};

const VIETCOMBANK: Layout = Layout {
    name: "Vietcombank",
    markers: &["vietcombank", "ngân hàng tmcp ngoại thương", "statement of account"],
    columns: &[
        (Role::BookedAndDocument, &["ngày gd số ct", "date doc no"]),
        (Role::Debit, &["ghi nợ", "debit"]),
        (Role::Credit, &["ghi có", "credit"]),
        (Role::Balance, &["số dư", "balance"]),
        (Role::Description, &["diễn giải", "transactions in detail"]),
    ],
};

const BIDV: Layout = Layout {
    name: "BIDV",
    markers: &["bidv", "ngân hàng tmcp đầu tư và phát triển", "báo cáo chi tiết số dư tài khoản"],
    columns: &[
        (Role::Booked, &["ngày hiệu lực", "effective date"]),
        (Role::Debit, &["ghi nợ", "debit"]),
        (Role::Credit, &["ghi có", "credit"]),
        (Role::Balance, &["số dư", "balance"]),
        (Role::LineId, &["số tham chiếu", "reference no"]),
        (Role::Description, &["mô tả", "description"]),
    ],
};

const AGRIBANK: Layout = Layout {
    name: "Agribank",
    markers: &["agribank", "ngân hàng nông nghiệp và phát triển nông thôn"],
    columns: &[
        (Role::Booked, &["ngày gd", "trans date"]),
        (Role::LineId, &["số bút toán", "seq no"]),
        (Role::Debit, &["số tiền ghi nợ", "debit amount"]),
        (Role::Credit, &["số tiền ghi có", "credit amount"]),
        (Role::Balance, &["số dư", "balance"]),
        (Role::Description, &["nội dung giao dịch", "narrative"]),
        (Role::CounterpartyName, &["tên người chuyển", "remitter"]),
    ],
};

/// A cell as read from the sheet or the CSV.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Empty,
    Text(String),
    /// A number cell, as Rust prints the float (`1500000`, `0.5`): exact for whole đồng.
    Number(String),
    Date(NaiveDate),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) | Cell::Number(t) => t.trim().to_owned(),
            Cell::Date(d) => d.format("%d/%m/%Y").to_string(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(t) => t.trim().is_empty(),
            Cell::Number(_) | Cell::Date(_) => false,
        }
    }
}

/// A sheet's rows, each with its 1-based row (or CSV line) number.
#[derive(Debug, Default)]
pub(super) struct Grid {
    pub(super) rows: Vec<(u64, Vec<Cell>)>,
}

/// Whether the bytes are a workbook (XLSX is a ZIP, XLS an OLE compound file).
fn is_workbook(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
}

/// The grid of a sheet: the first sheet of an XLSX or XLS workbook, or the table of an HTML
/// page saved as `.xls`; `None` when the bytes are neither (text: CSV, MT940, camt.053).
pub(super) fn read_sheet(bytes: &[u8]) -> Option<Result<Grid, StatementError>> {
    if is_workbook(bytes) {
        Some(read_workbook(bytes))
    } else if super::html_table::is_html(bytes) {
        Some(super::html_table::read_html(bytes))
    } else {
        None
    }
}

/// The first sheet of an XLSX or XLS workbook.
fn read_workbook(bytes: &[u8]) -> Result<Grid, StatementError> {
    // calamine's XLS reader can panic on a damaged file (an index past the end of its stream,
    // found by the fuzzer): one request's upload must not take its task down with it.
    std::panic::catch_unwind(|| read_workbook_unguarded(bytes)).unwrap_or_else(|_| {
        Err(StatementError::Malformed {
            at: Location::File,
            detail: "not a readable workbook: the file is damaged".to_owned(),
        })
    })
}

fn read_workbook_unguarded(bytes: &[u8]) -> Result<Grid, StatementError> {
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| {
        StatementError::Malformed { at: Location::File, detail: format!("not a readable workbook: {e}") }
    })?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| StatementError::Malformed {
            at: Location::File,
            detail: "the workbook has no sheet".to_owned(),
        })?
        .map_err(|e| StatementError::Malformed {
            at: Location::File,
            detail: format!("the first sheet is not readable: {e}"),
        })?;
    let first_row = u64::from(range.start().map_or(0, |(row, _)| row));
    let first_column = range.start().map_or(0, |(_, column)| column) as usize;
    let mut grid = Grid::default();
    for (index, row) in range.rows().enumerate() {
        let mut cells = vec![Cell::Empty; first_column];
        for data in row {
            cells.push(match data {
                Data::Empty | Data::Error(_) => Cell::Empty,
                Data::String(s) => Cell::Text(s.clone()),
                Data::Int(i) => Cell::Number(i.to_string()),
                Data::Float(f) => Cell::Number(f.to_string()),
                Data::Bool(b) => Cell::Text(b.to_string()),
                Data::DateTime(dt) => dt.as_datetime().map_or(Cell::Empty, |d| Cell::Date(d.date())),
                Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
            });
        }
        grid.rows.push((first_row + index as u64 + 1, cells));
    }
    Ok(grid)
}

/// A CSV file (comma, semicolon or tab separated, UTF-8) as a grid of text cells.
pub(super) fn read_csv(bytes: &[u8]) -> Result<Grid, StatementError> {
    let text = decode_utf8(bytes)?;
    // The separator: the one most used in the first lines (the comma when tied, as `max_by_key`
    // keeps the last maximum).
    let head: String = text.lines().take(PREAMBLE_ROWS).collect();
    let delimiter =
        [b'\t', b';', b','].into_iter().max_by_key(|d| head.bytes().filter(|b| b == d).count()).unwrap_or(b',');
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut grid = Grid::default();
    for record in reader.records() {
        let record = record.map_err(|e| StatementError::Malformed {
            at: e.position().map_or(Location::File, |p| Location::Line(p.line())),
            detail: format!("not valid CSV: {e}"),
        })?;
        let line = record.position().map_or(0, ::csv::Position::line);
        grid.rows.push((
            line,
            record.iter().map(|c| if c.trim().is_empty() { Cell::Empty } else { Cell::Text(c.to_owned()) }).collect(),
        ));
    }
    Ok(grid)
}

/// Lowercase; `/`, `\`, line breaks, brackets, `:` and runs of spaces become one space.
fn normalise(text: &str) -> String {
    let mapped: String = text
        .to_lowercase()
        .chars()
        .map(|c| if matches!(c, '/' | '\\' | '\n' | '\r' | '\t' | '(' | ')' | ':' | '-' | '.') { ' ' } else { c })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn row_text(cells: &[Cell]) -> String {
    normalise(&cells.iter().map(Cell::text).collect::<Vec<_>>().join(" | "))
}

/// Rows scanned for the bank's name above the table.
const PREAMBLE_ROWS: usize = 40;

/// The bank whose export this grid is: its markers appear in the preamble and its header row is
/// found.
pub(super) fn detect(grid: &Grid) -> Option<Bank> {
    let preamble: String =
        grid.rows.iter().take(PREAMBLE_ROWS).map(|(_, cells)| row_text(cells)).collect::<Vec<_>>().join(" ");
    Bank::ALL.into_iter().find(|bank| {
        bank.layout().markers.iter().any(|m| preamble.contains(m)) && find_header(grid, bank.layout()).is_some()
    })
}

/// The header: the first row (or pair of rows, for a two-level merged header) where a
/// booking-date column, a debit and a credit column are all found. Returns the index of its
/// first and last row in the grid and each role's column.
fn find_header(grid: &Grid, layout: &Layout) -> Option<(usize, usize, Columns)> {
    for (index, (_, cells)) in grid.rows.iter().enumerate() {
        if let Some(found) = match_header(cells, layout) {
            return Some((index, index, found));
        }
        if let Some((_, below)) = grid.rows.get(index + 1) {
            let width = cells.len().max(below.len());
            let combined: Vec<Cell> = (0..width)
                .map(|c| {
                    let text = |row: &[Cell]| row.get(c).map(Cell::text).unwrap_or_default();
                    Cell::Text(format!("{}\n{}", text(cells), text(below)))
                })
                .collect();
            if let Some(found) = match_header(&combined, layout) {
                return Some((index, index + 1, found));
            }
        }
    }
    None
}

/// Each role found in a header, with its column.
type Columns = Vec<(Role, usize)>;

fn match_header(cells: &[Cell], layout: &Layout) -> Option<Columns> {
    let mut found: Vec<(Role, usize)> = Vec::new();
    for (column, cell) in cells.iter().enumerate() {
        let Cell::Text(text) = cell else { continue };
        let text = normalise(text);
        if text.is_empty() {
            continue;
        }
        let role = layout
            .columns
            .iter()
            .find(|(role, labels)| !found.iter().any(|(r, _)| r == role) && labels.iter().any(|l| text.contains(l)));
        if let Some((role, _)) = role {
            found.push((*role, column));
        }
    }
    let has = |role: Role| found.iter().any(|(r, _)| *r == role);
    ((has(Role::Booked) || has(Role::BookedAndDocument)) && has(Role::Debit) && has(Role::Credit)).then_some(found)
}

fn header_labels(layout: &Layout) -> String {
    layout
        .columns
        .iter()
        .filter(|(role, _)| matches!(role, Role::Booked | Role::BookedAndDocument | Role::Debit | Role::Credit))
        .map(|(_, labels)| format!("\"{}\"", labels[0]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a label row of the preamble or footer says.
#[derive(Debug, Default)]
struct Labels {
    account: Option<(String, Location)>,
    opening: Option<i64>,
    closing: Option<i64>,
}

const ACCOUNT_LABELS: [&str; 4] = ["số tài khoản", "account no", "account number", "số tk"];
const OPENING_LABELS: [&str; 3] = ["số dư đầu kỳ", "opening balance", "dư đầu"];
const CLOSING_LABELS: [&str; 3] = ["số dư cuối kỳ", "closing balance", "dư cuối"];
const CURRENCY_LABELS: [&str; 2] = ["loại tiền", "currency"];
const TOTAL_LABELS: [&str; 4] = ["tổng", "total", "cộng phát sinh", "doanh số"];

/// The value of a label cell: what follows the first `:` in the cell, or else the next
/// non-empty cell of the row.
fn label_value(cells: &[Cell], column: usize) -> Option<Cell> {
    if let Some(Cell::Text(text)) = cells.get(column)
        && let Some((_, after)) = text.split_once(':')
        && !after.trim().is_empty()
    {
        return Some(Cell::Text(after.trim().to_owned()));
    }
    cells.iter().skip(column + 1).find(|c| !c.is_empty()).cloned()
}

fn read_labels(cells: &[Cell], at: &Location, labels: &mut Labels) -> Result<(), StatementError> {
    for (column, cell) in cells.iter().enumerate() {
        let Cell::Text(text) = cell else { continue };
        let norm = normalise(text);
        let is = |list: &[&str]| list.iter().any(|l| norm.contains(l));
        if is(&ACCOUNT_LABELS) && !norm.contains("cũ") && !norm.contains("old") && !norm.contains("tên") {
            if labels.account.is_none()
                && let Some(value) = label_value(cells, column)
            {
                let digits: String = value.text().chars().filter(char::is_ascii_digit).collect();
                if !digits.is_empty() {
                    labels.account = Some((digits, at.clone()));
                }
            }
        } else if is(&OPENING_LABELS) {
            if let Some(value) = label_value(cells, column) {
                labels.opening = Some(balance(&value, at, "opening balance")?);
            }
        } else if is(&CLOSING_LABELS) {
            if let Some(value) = label_value(cells, column) {
                labels.closing = Some(balance(&value, at, "closing balance")?);
            }
        } else if is(&CURRENCY_LABELS)
            && let Some(value) = label_value(cells, column)
        {
            let currency = value.text().to_uppercase();
            if !currency.contains("VND") && !currency.contains("VNĐ") {
                return Err(StatementError::Unsupported {
                    at: at.clone(),
                    detail: format!(
                        "the account's currency is {:?}; a collection account statement must be all VND",
                        value.text()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A balance: whole đồng, possibly negative (an overdrawn account), grouped or not.
fn balance(cell: &Cell, at: &Location, field: &'static str) -> Result<i64, StatementError> {
    let text = cell.text();
    let text = text.trim_end_matches("VND").trim_end_matches("VNĐ").trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    if digits.chars().all(|c| c == '0' || c == '.' || c == ',') && digits.contains('0') {
        return Ok(0);
    }
    let amount = amount_of(&Cell::Text(digits.to_owned()))
        .map_err(|problem| StatementError::Amount { at: at.clone(), value: cell.text(), problem })?
        .ok_or(StatementError::Missing { at: at.clone(), field })?;
    Ok(if negative { -amount.dong() } else { amount.dong() })
}

/// A debit or credit cell: `None` when empty, `0` or `-`; else whole positive đồng.
fn amount_of(cell: &Cell) -> Result<Option<Vnd>, AmountProblem> {
    match cell {
        Cell::Empty | Cell::Date(_) => Ok(None),
        Cell::Number(n) => {
            if n.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
                return Ok(None);
            }
            parse_decimal_dong(n).map(Some)
        }
        Cell::Text(t) => {
            let t = t.trim();
            if t.is_empty() || t == "-" || t.chars().all(|c| c == '0' || c == '.' || c == ',') {
                return Ok(None);
            }
            super::csv::amount(t).map(Some)
        }
    }
}

/// A date cell: an Excel date, or text `dd/mm/yyyy` (maybe followed by a time) or `yyyy-mm-dd`.
fn date_of(cell: &Cell) -> Option<NaiveDate> {
    match cell {
        Cell::Date(d) => Some(*d),
        Cell::Text(t) => t.split_whitespace().next().and_then(super::csv::parse_date),
        Cell::Empty | Cell::Number(_) => None,
    }
}

/// Reads `grid` as `bank`'s export.
pub(super) fn parse(bank: Bank, grid: &Grid) -> Result<Statement, StatementError> {
    let layout = bank.layout();
    let Some((header_first, header_last, columns)) = find_header(grid, layout) else {
        return Err(StatementError::Unsupported {
            at: Location::File,
            detail: format!(
                "no {} header row found (expected a row with the columns {})",
                layout.name,
                header_labels(layout)
            ),
        });
    };
    let column = |role: Role| columns.iter().find(|(r, _)| *r == role).map(|(_, c)| *c);
    let mut labels = Labels::default();
    for (number, cells) in &grid.rows[..header_first] {
        read_labels(cells, &Location::Row(*number), &mut labels)?;
    }

    let mut rows: Vec<(Location, &Vec<Cell>)> = Vec::new();
    let mut ended = false;
    let mut started = false;
    for (number, cells) in &grid.rows[header_last + 1..] {
        let at = Location::Row(*number);
        if cells.iter().all(Cell::is_empty) {
            continue;
        }
        let description_column = column(Role::Description);
        let booked_column = column(Role::Booked).or(column(Role::BookedAndDocument));
        let has_date = booked_column.and_then(|c| cells.get(c)).and_then(date_of).is_some();
        let label_in = |list: &[&str]| {
            !has_date
                && cells.iter().enumerate().any(|(c, cell)| {
                    Some(c) != description_column
                        && matches!(cell, Cell::Text(t) if list.iter().any(|l| normalise(t).contains(l)))
                })
        };
        if ended || label_in(&TOTAL_LABELS) || label_in(&CLOSING_LABELS) {
            ended = true;
            read_labels(cells, &at, &mut labels)?;
            continue;
        }
        if label_in(&OPENING_LABELS) {
            read_labels(cells, &at, &mut labels)?;
            continue;
        }
        // The second row of a two-row (bilingual) header: words only, before any line.
        if !started
            && cells.iter().all(|c| {
                matches!(c, Cell::Empty) || matches!(c, Cell::Text(t) if !t.chars().any(|ch| ch.is_ascii_digit()))
            })
        {
            continue;
        }
        started = true;
        rows.push((at, cells));
    }

    let (account, account_at) = labels.account.clone().ok_or_else(|| StatementError::Unsupported {
        at: Location::File,
        detail: format!(
            "no account number found in the {} export (expected a \"Số tài khoản/Account No\" row above the table)",
            layout.name
        ),
    })?;
    let mut ids = LineIds::default();
    let mut lines = Vec::with_capacity(rows.len());
    let mut last_date: Option<NaiveDate> = None;
    let mut running = labels.opening;
    let cell =
        |cells: &'_ Vec<Cell>, role: Role| column(role).and_then(|c| cells.get(c)).cloned().unwrap_or(Cell::Empty);
    let text_of = |cells: &Vec<Cell>, role: Role| Some(cell(cells, role).text()).filter(|t| !t.is_empty());
    for (at, cells) in rows {
        let (date_cell, document) = match column(Role::BookedAndDocument) {
            Some(_) => {
                let merged = cell(cells, Role::BookedAndDocument);
                match &merged {
                    Cell::Text(t) => {
                        let mut parts = t.split_whitespace();
                        let date = parts.next().map(|d| Cell::Text(d.to_owned())).unwrap_or(Cell::Empty);
                        let rest = parts.collect::<Vec<_>>().join(" ");
                        (date, Some(rest).filter(|r| !r.is_empty()))
                    }
                    other => (other.clone(), None),
                }
            }
            None => (cell(cells, Role::Booked), None),
        };
        let booked_on = if date_cell.is_empty() {
            last_date.ok_or(StatementError::Missing { at: at.clone(), field: "booking date" })?
        } else {
            date_of(&date_cell).ok_or_else(|| StatementError::Date {
                at: at.clone(),
                field: "booking date",
                value: date_cell.text(),
                expected: "DD/MM/YYYY",
            })?
        };
        last_date = Some(booked_on);
        let value_date = match cell(cells, Role::ValueDate) {
            Cell::Empty => None,
            c => date_of(&c),
        };
        let debit_cell = cell(cells, Role::Debit);
        let credit_cell = cell(cells, Role::Credit);
        let debit = amount_of(&debit_cell).map_err(|problem| StatementError::Amount {
            at: at.clone(),
            value: debit_cell.text(),
            problem,
        })?;
        let credit = amount_of(&credit_cell).map_err(|problem| StatementError::Amount {
            at: at.clone(),
            value: credit_cell.text(),
            problem,
        })?;
        let (amount, direction) = match (debit, credit) {
            (Some(a), None) => (a, Direction::Debit),
            (None, Some(a)) => (a, Direction::Credit),
            (Some(_), Some(_)) => {
                return Err(StatementError::Inconsistent {
                    at,
                    detail: "has both a debit and a credit amount; a line moves money one way".to_owned(),
                });
            }
            (None, None) => {
                return Err(StatementError::Inconsistent {
                    at,
                    detail: format!(
                        "is neither a line (no debit or credit amount) nor a total or balance row: {:?}",
                        row_text(cells)
                    ),
                });
            }
        };
        if let Some(c) = column(Role::Balance)
            && let Some(balance_cell) = cells.get(c).filter(|c| !c.is_empty())
        {
            let shown = balance(balance_cell, &at, "balance")?;
            if let Some(before) = running {
                let signed = if direction == Direction::Credit { amount.dong() } else { -amount.dong() };
                let expected = before.checked_add(signed).ok_or(StatementError::Amount {
                    at: at.clone(),
                    value: balance_cell.text(),
                    problem: AmountProblem::TooLarge,
                })?;
                if expected != shown {
                    return Err(StatementError::Inconsistent {
                        at,
                        detail: format!(
                            "the balance column shows {shown} but the previous balance {before} {} {} gives {expected}",
                            if direction == Direction::Credit { "+" } else { "-" },
                            amount.dong()
                        ),
                    });
                }
            }
            running = Some(shown);
        }
        let description = text_of(cells, Role::Description)
            .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let bank_id = text_of(cells, Role::LineId).or(document);
        let key = LineKey {
            account: &account,
            booked_on,
            amount,
            direction,
            description: &description,
            bank_reference: bank_id.as_deref(),
        };
        let line_id = ids.assign(bank_id.as_deref(), key, &at)?;
        lines.push(StatementLine {
            line_id,
            account_number: account.clone(),
            booked_on,
            value_date,
            amount,
            direction,
            description,
            bank_reference: bank_id,
            counterparty_name: text_of(cells, Role::CounterpartyName),
            counterparty_account: text_of(cells, Role::CounterpartyAccount),
        });
    }
    let _ = account_at;
    // Every bank's export ends with its closing balance: a file without it was cut off (an
    // interrupted download, a CSV saved half-way), and its missing lines would go unnoticed.
    // Taken whole or not at all.
    if labels.closing.is_none() {
        return Err(StatementError::Missing {
            at: Location::File,
            field: "the closing balance (\"Số dư cuối kỳ\") at the foot of the export, so the file looks cut off",
        });
    }
    Ok(Statement {
        account_number: account,
        statement_id: None,
        from: lines.iter().map(|l| l.booked_on).min(),
        to: lines.iter().map(|l| l.booked_on).max(),
        opening_balance: labels.opening,
        closing_balance: labels.closing,
        lines,
    })
}
