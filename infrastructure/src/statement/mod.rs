//! Bank statements of a collection account, normalised for reconciliation (đối soát).
//!
//! Every input format is read into one shape, [`Statement`] (the formats are described in
//! `docs/STATEMENTS.md`):
//! - [`StatementFormat::Bank`]: a Vietnamese bank's own account-history export, as the bank gives
//!   it: XLSX or XLS (`bank_sheet`), the HTML table some banks save as `.xls` (`html_table`), or
//!   the sheet saved as CSV;
//! - [`StatementFormat::Mt940`]: the SWIFT MT940 customer statement;
//! - [`StatementFormat::Camt053`]: ISO 20022 `BankToCustomerStatement`, camt.053.001.02 to .08;
//! - [`StatementFormat::Csv`]: the ledger's own CSV layout;
//! - [`StatementFormat::Auto`]: recognised from the content ([`detect`]).
//!
//! Every line gets a [`StatementLine::line_id`] that is the same each time the same file is read,
//! so a re-imported statement is recognised line by line. Amounts are whole đồng ([`Vnd`]), always
//! above zero; [`Direction`] says whether the money came in or went out.
//!
//! Parsing is all-or-nothing: the first problem stops it with a [`StatementError`] that says where
//! (CSV line number, sheet row, or XML element path and line) and what is wrong.

mod bank_sheet;
#[cfg(test)]
mod bank_tests;
mod camt053;
mod csv;
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures;
mod html_table;
mod mt940;

pub use bank_sheet::Bank;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::NaiveDate;
use feeledger_domain::money::{MoneyError, VND_MAX, Vnd};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Vietnam's offset from UTC: booking times become calendar days here.
use feeledger_domain::vietnam_time::OFFSET as VIETNAM;

/// Whether money came into the account (credit, "Có") or left it (debit, "Nợ").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Credit,
    Debit,
}

impl Direction {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Credit => "credit",
            Direction::Debit => "debit",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a bank statement for a collection account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Stable and unique within the file (and, for bank-assigned ids, within the account): the
    /// bank's own entry reference when the file has one (camt.053 `AcctSvcrRef`, else `NtryRef`;
    /// CSV `transaction_id`), otherwise `"sha256:"` + the hex digest of a canonical string of
    /// (account, booking date, amount, direction, description, bank reference, ordinal of
    /// identical lines within the file). Lines split from one batch entry get `"/1"`, `"/2"`, …
    /// appended. Reading the same file again gives the same ids.
    pub line_id: String,
    pub account_number: String,
    /// Booking date, as a Vietnam (UTC+7) calendar day.
    pub booked_on: NaiveDate,
    pub value_date: Option<NaiveDate>,
    /// Always greater than zero; [`StatementLine::direction`] gives the sign.
    pub amount: Vnd,
    pub direction: Direction,
    /// Transfer content (remittance information): banks put the payment reference or case code
    /// here. Empty when the bank gave none.
    pub description: String,
    pub bank_reference: Option<String>,
    pub counterparty_name: Option<String>,
    pub counterparty_account: Option<String>,
}

/// A bank statement for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The account the statement is for. Empty only for a CSV file with no lines.
    pub account_number: String,
    /// The bank's statement id (camt.053 `Stmt/Id`); CSV files have none.
    pub statement_id: Option<String>,
    /// The period the bank says the statement covers (camt.053 `FrToDt`), as Vietnam days.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The account's balance before the first line and after the last, in đồng (negative when
    /// overdrawn), where the file gives them (the banks' exports, MT940 `:60F:`/`:62F:`). When
    /// both are given, `opening + Σ credits − Σ debits = closing` has been checked.
    pub opening_balance: Option<i64>,
    pub closing_balance: Option<i64>,
    /// Booked lines only, in file order.
    pub lines: Vec<StatementLine>,
}

impl Statement {
    /// Σ credits and Σ debits of the lines.
    ///
    /// # Errors
    ///
    /// The sum overflows the ledger's maximum.
    pub fn totals(&self) -> Result<(Vnd, Vnd), MoneyError> {
        let side = |d: Direction| Vnd::sum(self.lines.iter().filter(|l| l.direction == d).map(|l| l.amount));
        Ok((side(Direction::Credit)?, side(Direction::Debit)?))
    }
}

/// The file formats [`parse`] reads. The names (`as_str`) are the CLI's `--format` values and,
/// in upper case, the GraphQL `StatementFormat` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementFormat {
    /// Recognise the format from the file itself (see [`detect`]).
    Auto,
    /// The ledger's CSV layout, described in `docs/STATEMENTS.md`.
    Csv,
    /// ISO 20022 camt.053 (`BankToCustomerStatement`), versions .001.02 to .001.08.
    Camt053,
    /// SWIFT MT940 customer statement.
    Mt940,
    /// A bank's own account-history export: XLSX, XLS, an HTML table saved as `.xls`, or the
    /// same sheet saved as CSV.
    Bank(Bank),
}

/// Every format name, in the order error messages list them.
pub const FORMAT_NAMES: &str = "auto, csv, camt053, mt940, vietinbank, vietcombank, bidv, agribank";

impl StatementFormat {
    pub const ALL: [StatementFormat; 8] = [
        StatementFormat::Auto,
        StatementFormat::Csv,
        StatementFormat::Camt053,
        StatementFormat::Mt940,
        StatementFormat::Bank(Bank::Vietinbank),
        StatementFormat::Bank(Bank::Vietcombank),
        StatementFormat::Bank(Bank::Bidv),
        StatementFormat::Bank(Bank::Agribank),
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StatementFormat::Auto => "auto",
            StatementFormat::Csv => "csv",
            StatementFormat::Camt053 => "camt053",
            StatementFormat::Mt940 => "mt940",
            StatementFormat::Bank(Bank::Vietinbank) => "vietinbank",
            StatementFormat::Bank(Bank::Vietcombank) => "vietcombank",
            StatementFormat::Bank(Bank::Bidv) => "bidv",
            StatementFormat::Bank(Bank::Agribank) => "agribank",
        }
    }
}

impl fmt::Display for StatementFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StatementFormat {
    type Err = StatementError;

    /// One of [`FORMAT_NAMES`] (also `"camt.053"`, `"mt 940"`), ignoring ASCII case and
    /// surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        let name = match name.as_str() {
            "camt.053" => "camt053",
            "mt 940" | "mt-940" | "swift" => "mt940",
            other => other,
        };
        StatementFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| StatementError::UnknownFormat(s.to_owned()))
    }
}

/// Reads a whole statement file. Nothing is returned unless every line is valid and, where the
/// file gives both balances, `opening + Σ credits − Σ debits = closing`.
///
/// # Errors
///
/// A [`StatementError`] naming the place (CSV line, sheet row, or XML element path and line)
/// and the problem, for the first invalid thing in the file; [`StatementError::UnknownLayout`]
/// when `Auto` recognises nothing.
pub fn parse(format: StatementFormat, bytes: &[u8]) -> Result<Statement, StatementError> {
    let statement = match format {
        StatementFormat::Auto => {
            let Some(grid) = bank_sheet::read_sheet(bytes) else { return parse(detect(bytes)?, bytes) };
            // A sheet is read once: recognised and parsed from the same grid.
            let grid = grid?;
            let bank = bank_sheet::detect(&grid).ok_or(StatementError::UnknownLayout)?;
            bank_sheet::parse(bank, &grid)?
        }
        StatementFormat::Csv => csv::parse(bytes)?,
        StatementFormat::Camt053 => camt053::parse(bytes)?,
        StatementFormat::Mt940 => mt940::parse(bytes)?,
        StatementFormat::Bank(bank) => {
            let grid = match bank_sheet::read_sheet(bytes) {
                Some(grid) => grid?,
                None => bank_sheet::read_csv(bytes)?,
            };
            bank_sheet::parse(bank, &grid)?
        }
    };
    check_balances(&statement)?;
    Ok(statement)
}

/// The format of a file, from its content: a workbook (XLSX, XLS), an HTML table saved as
/// `.xls`, or a CSV whose preamble names one of the banks and has its header row; MT940 fields;
/// camt.053 XML; the ledger's CSV header.
///
/// # Errors
///
/// [`StatementError::UnknownLayout`] naming what was expected.
pub fn detect(bytes: &[u8]) -> Result<StatementFormat, StatementError> {
    if let Some(grid) = bank_sheet::read_sheet(bytes) {
        return bank_sheet::detect(&grid?).map(StatementFormat::Bank).ok_or(StatementError::UnknownLayout);
    }
    let head = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let head = &head[start..];
    if head.starts_with(b"<") {
        return Ok(StatementFormat::Camt053);
    }
    if head.starts_with(b":20:") || head.starts_with(b"{1:") || head.starts_with(b":940:") {
        return Ok(StatementFormat::Mt940);
    }
    let Ok(grid) = bank_sheet::read_csv(bytes) else { return Err(StatementError::UnknownLayout) };
    if let Some(bank) = bank_sheet::detect(&grid) {
        return Ok(StatementFormat::Bank(bank));
    }
    let ledger_header = grid.rows.first().is_some_and(|(_, cells)| {
        let names: Vec<String> = cells
            .iter()
            .map(|c| match c {
                bank_sheet::Cell::Text(t) => t.trim().trim_start_matches('\u{feff}').to_lowercase(),
                _ => String::new(),
            })
            .collect();
        ["account_number", "booked_on", "amount", "direction"].iter().all(|n| names.iter().any(|c| c == n))
    });
    if ledger_header || grid.rows.is_empty() {
        return Ok(StatementFormat::Csv);
    }
    Err(StatementError::UnknownLayout)
}

/// `opening + Σ credits − Σ debits = closing`, when both balances are known.
fn check_balances(statement: &Statement) -> Result<(), StatementError> {
    let (Some(opening), Some(closing)) = (statement.opening_balance, statement.closing_balance) else { return Ok(()) };
    let (credits, debits) = statement.totals().map_err(|e| StatementError::Amount {
        at: Location::File,
        value: "the sum of the lines".to_owned(),
        problem: e.into(),
    })?;
    let computed = opening.checked_add(credits.dong()).and_then(|v| v.checked_sub(debits.dong()));
    if computed != Some(closing) {
        return Err(StatementError::BalanceMismatch {
            opening,
            credits: credits.dong(),
            debits: debits.dong(),
            computed: computed.unwrap_or(i64::MAX),
            closing,
        });
    }
    Ok(())
}

/// Where in the file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole.
    File,
    /// The CSV header row (line 1).
    Header,
    /// A row of a bank's export (the spreadsheet's row number, or the CSV line).
    Row(u64),
    /// A CSV record, by the line it starts on (the header is line 1).
    Line(u64),
    /// An XML element by path from the root, e.g. `Document/BkToCstmrStmt/Stmt/Ntry[3]/Amt`,
    /// and the line its start tag is on.
    Xml { path: String, line: u64 },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => f.write_str("file"),
            Location::Header => f.write_str("header (line 1)"),
            Location::Line(line) => write!(f, "line {line}"),
            Location::Row(row) => write!(f, "row {row}"),
            Location::Xml { path, line } => write!(f, "{path} (line {line})"),
        }
    }
}

// The message for `AmountProblem::TooLarge` spells the maximum out.
const _: () = assert!(VND_MAX == 999_999_999_999_999);

/// What is wrong with an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountProblem {
    NotANumber,
    NotWholeDong,
    Negative,
    Zero,
    TooLarge,
    /// Digit groups separated by `.` or `,` that are not clean three-digit groups, e.g. `1.23.000`.
    AmbiguousGrouping,
}

impl fmt::Display for AmountProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountProblem::NotANumber => "is not a number",
            AmountProblem::NotWholeDong => "is not a whole number of dong",
            AmountProblem::Negative => "is negative (amounts are positive; the direction says credit or debit)",
            AmountProblem::Zero => "is zero (a statement line moves money)",
            AmountProblem::TooLarge => "is larger than the ledger's maximum of 999,999,999,999,999 dong",
            AmountProblem::AmbiguousGrouping => {
                "has an ambiguous thousands grouping (use plain digits, or groups of three separated by \".\" or \",\")"
            }
        })
    }
}

impl From<MoneyError> for AmountProblem {
    fn from(error: MoneyError) -> Self {
        match error {
            MoneyError::TooLarge => AmountProblem::TooLarge,
            MoneyError::Negative => AmountProblem::Negative,
            MoneyError::NotPositive => AmountProblem::Zero,
            MoneyError::NotWholeDong(_) | MoneyError::BadPercent(_) => AmountProblem::NotWholeDong,
        }
    }
}

/// Why a statement file could not be read. Every variant says where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("unknown statement format {0:?} (expected one of {FORMAT_NAMES})")]
    UnknownFormat(String),
    #[error(
        "file: not a statement layout feeledger knows (expected the ledger's CSV with columns account_number, booked_on, amount, direction; camt.053 XML; MT940; or the VietinBank, Vietcombank, BIDV or Agribank account-history export as XLSX, XLS, the HTML table some banks save as .xls, or CSV, with the bank's name above its header row)"
    )]
    UnknownLayout,
    #[error(
        "file: the balances do not add up: opening balance {opening} + credits {credits} - debits {debits} = {computed}, but the closing balance is {closing}"
    )]
    BalanceMismatch { opening: i64, credits: i64, debits: i64, computed: i64, closing: i64 },
    #[error("{at}: the file is not UTF-8 text ({detail}); export or save it as UTF-8 (in Excel: \"CSV UTF-8\")")]
    NotUtf8 { at: Location, detail: String },
    #[error("{at}: {detail}")]
    Malformed { at: Location, detail: String },
    #[error("{at}: {detail}")]
    Unsupported { at: Location, detail: String },
    #[error("header (line 1): missing required column {column:?}")]
    MissingColumn { column: &'static str },
    #[error("header (line 1): column {column:?} appears twice")]
    DuplicateColumn { column: String },
    #[error("{at}: {field} is missing")]
    Missing { at: Location, field: &'static str },
    #[error("{at}: amount {value:?} {problem}")]
    Amount { at: Location, value: String, problem: AmountProblem },
    #[error("{at}: {field} {value:?} is not a valid date (expected {expected})")]
    Date { at: Location, field: &'static str, value: String, expected: &'static str },
    #[error("{at}: {field} {value:?} is not a valid date and time (expected {expected})")]
    DateTime { at: Location, field: &'static str, value: String, expected: &'static str },
    #[error("{at}: direction {value:?} is not credit or debit (expected {expected})")]
    Direction { at: Location, value: String, expected: &'static str },
    #[error("{at}: {field} {value:?} is not usable: {reason}")]
    Invalid { at: Location, field: &'static str, value: String, reason: &'static str },
    #[error("{at}: account {found:?} differs from account {expected:?} at {first_at}; a statement covers one account")]
    AccountMismatch { at: Location, found: String, expected: String, first_at: Location },
    #[error("{at}: entry {entry} is in {currency:?}, not VND; a collection account statement must be all VND")]
    Currency { at: Location, entry: String, currency: String },
    #[error("{at}: line id {id:?} is already used at {first_at}; the bank's references must be unique in a file")]
    DuplicateLineId { at: Location, id: String, first_at: Location },
    #[error("{at}: {detail}")]
    Inconsistent { at: Location, detail: String },
}

/// The text of a statement file: UTF-8, with a leading byte order mark (Excel writes one) removed.
fn decode_utf8(bytes: &[u8]) -> Result<&str, StatementError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(StatementError::NotUtf8 { at: Location::File, detail: "it is UTF-16".to_owned() });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
        let byte = bytes.get(error.valid_up_to()).copied().unwrap_or_default();
        StatementError::NotUtf8 {
            at: Location::Line(u64::try_from(line).unwrap_or(u64::MAX)),
            detail: format!(
                "byte 0x{byte:02X} at offset {} is not UTF-8; the file may be in Windows-1258 or TCVN3",
                error.valid_up_to()
            ),
        }
    })
}

/// Parses a whole number of đồng written as `digits[.0…]` (camt.053 amounts: `"150000"` or
/// `"150000.00"`). A non-zero fraction, a sign, an exponent or spaces are rejected.
fn parse_decimal_dong(text: &str) -> Result<Vnd, AmountProblem> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    if text.starts_with('-') && text.len() > 1 {
        let rest = &text[1..];
        if rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') && rest.bytes().any(|b| b.is_ascii_digit()) {
            return Err(AmountProblem::Negative);
        }
    }
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(whole) || fraction.is_some_and(|f| !digits_only(f)) {
        return Err(AmountProblem::NotANumber);
    }
    if fraction.is_some_and(|f| f.bytes().any(|b| b != b'0')) {
        return Err(AmountProblem::NotWholeDong);
    }
    positive_dong(whole)
}

/// Whole đồng from a string of ASCII digits; zero is refused.
fn positive_dong(digits: &str) -> Result<Vnd, AmountProblem> {
    let amount = Vnd::parse(digits)?;
    if amount.is_zero() {
        return Err(AmountProblem::Zero);
    }
    Ok(amount)
}

/// Hands out line ids for one file: checks that bank-assigned ids are unique, and numbers
/// identical unreferenced lines so each gets its own stable hash.
#[derive(Debug, Default)]
struct LineIds {
    used: HashMap<String, Location>,
    identical: HashMap<String, u32>,
}

/// The fields a line without a bank reference is identified by.
#[derive(Debug, Clone, Copy)]
struct LineKey<'a> {
    account: &'a str,
    booked_on: NaiveDate,
    amount: Vnd,
    direction: Direction,
    description: &'a str,
    bank_reference: Option<&'a str>,
}

impl LineIds {
    /// The bank's own id, or a hash of `key` when the bank gave none. Fails if the id was
    /// already handed out in this file.
    fn assign(&mut self, bank_id: Option<&str>, key: LineKey<'_>, at: &Location) -> Result<String, StatementError> {
        let id = match bank_id {
            Some(id) => id.to_owned(),
            None => self.hashed(key),
        };
        self.claim(id, at)
    }

    /// Records an id exactly as given (used for the `/1`, `/2`… ids of a split batch entry).
    fn claim(&mut self, id: String, at: &Location) -> Result<String, StatementError> {
        match self.used.entry(id) {
            Entry::Occupied(first) => Err(StatementError::DuplicateLineId {
                at: at.clone(),
                id: first.key().clone(),
                first_at: first.get().clone(),
            }),
            Entry::Vacant(slot) => {
                let id = slot.key().clone();
                slot.insert(at.clone());
                Ok(id)
            }
        }
    }

    /// A hash id that is not yet recorded as used: the caller derives `/n` ids from it.
    fn hashed(&mut self, key: LineKey<'_>) -> String {
        let canonical = canonical_line(key);
        let ordinal = self.identical.entry(canonical.clone()).or_insert(0);
        *ordinal += 1;
        let digest = Sha256::digest(format!("{canonical}ordinal={ordinal}\n").as_bytes());
        format!("sha256:{}", hex::encode(digest))
    }
}

/// An unambiguous text form of a line's identifying fields: every text field is written with
/// its length in bytes, so no content can imitate a field boundary. Changing this changes every
/// hashed line id, so it is versioned.
fn canonical_line(key: LineKey<'_>) -> String {
    fn field(out: &mut String, name: &str, value: Option<&str>) {
        // Writing to a String cannot fail.
        let _ = match value {
            Some(value) => writeln!(out, "{name}:{}:{value}", value.len()),
            None => writeln!(out, "{name}:-"),
        };
    }
    let mut out = String::from("feeledger-statement-line:v1\n");
    field(&mut out, "account", Some(key.account));
    let _ = writeln!(out, "booked_on={}", key.booked_on.format("%Y-%m-%d"));
    let _ = writeln!(out, "amount={}", key.amount.dong());
    let _ = writeln!(out, "direction={}", key.direction.as_str());
    field(&mut out, "description", Some(key.description));
    field(&mut out, "bank_reference", key.bank_reference);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    #[test]
    fn formats_are_named_csv_and_camt053() {
        assert_eq!("csv".parse::<StatementFormat>(), Ok(StatementFormat::Csv));
        assert_eq!(" CAMT053 ".parse::<StatementFormat>(), Ok(StatementFormat::Camt053));
        assert_eq!("camt.053".parse::<StatementFormat>(), Ok(StatementFormat::Camt053));
        let error = "xlsx".parse::<StatementFormat>().expect_err("xlsx is not a statement format");
        assert_eq!(
            error.to_string(),
            "unknown statement format \"xlsx\" (expected one of auto, csv, camt053, mt940, vietinbank, vietcombank, bidv, agribank)"
        );
        for format in StatementFormat::ALL {
            assert_eq!(format.as_str().parse::<StatementFormat>(), Ok(format));
        }
        assert_eq!(StatementFormat::Camt053.to_string(), "camt053");
    }

    #[test]
    fn every_fixture_parses_twice_to_the_same_lines_with_unique_ids() {
        let fixtures = [
            (StatementFormat::Csv, "vietinbank_collection_2024-04-26.csv"),
            (StatementFormat::Csv, "vn_dates_grouped_amounts.csv"),
            (StatementFormat::Camt053, "camt053_001_02.xml"),
            (StatementFormat::Camt053, "camt053_001_08.xml"),
        ];
        for (format, name) in fixtures {
            let bytes = fixture(name);
            let first = parse(format, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let second = parse(format, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(first, second, "{name}: parsing is deterministic");
            assert!(!first.lines.is_empty(), "{name} has lines");
            let mut ids: Vec<&str> = first.lines.iter().map(|l| l.line_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), first.lines.len(), "{name}: line ids are unique");
            for line in &first.lines {
                assert!(!line.amount.is_zero(), "{name}: amounts are positive");
                assert_eq!(line.account_number, first.account_number, "{name}: one account");
            }
        }
    }

    #[test]
    fn hashed_ids_depend_on_every_identifying_field_and_the_ordinal() {
        let day = NaiveDate::from_ymd_opt(2024, 4, 26).expect("valid date");
        let amount = Vnd::new(150_000).expect("valid amount");
        let key = LineKey {
            account: "113000123456",
            booked_on: day,
            amount,
            direction: Direction::Credit,
            description: "Thanh toan le phi",
            bank_reference: None,
        };
        let mut ids = LineIds::default();
        let first = ids.hashed(key);
        let second = ids.hashed(key);
        assert_ne!(first, second, "identical lines are told apart by their ordinal");
        assert!(first.starts_with("sha256:") && first.len() == 7 + 64);

        let mut fresh = LineIds::default();
        assert_eq!(fresh.hashed(key), first, "the same file gives the same ids");
        let variants = [
            LineKey { account: "113000123457", ..key },
            LineKey { booked_on: day.succ_opt().expect("next day"), ..key },
            LineKey { amount: Vnd::new(150_001).expect("valid"), ..key },
            LineKey { direction: Direction::Debit, ..key },
            LineKey { description: "Thanh toan le phi ", ..key },
            LineKey { bank_reference: Some(""), ..key },
        ];
        for variant in variants {
            assert_ne!(LineIds::default().hashed(variant), first, "{variant:?}");
        }
    }

    #[test]
    fn a_repeated_bank_id_is_rejected_with_both_places() {
        let day = NaiveDate::from_ymd_opt(2024, 4, 26).expect("valid date");
        let key = LineKey {
            account: "1",
            booked_on: day,
            amount: Vnd::new(1).expect("valid"),
            direction: Direction::Credit,
            description: "",
            bank_reference: None,
        };
        let mut ids = LineIds::default();
        assert_eq!(ids.assign(Some("FT1"), key, &Location::Line(2)).as_deref(), Ok("FT1"));
        let error = ids.assign(Some("FT1"), key, &Location::Line(5)).expect_err("duplicate");
        assert_eq!(
            error.to_string(),
            "line 5: line id \"FT1\" is already used at line 2; the bank's references must be unique in a file"
        );
    }

    #[test]
    fn camt_amounts_accept_zero_fractions_only() {
        assert_eq!(parse_decimal_dong("150000").map(Vnd::dong), Ok(150_000));
        assert_eq!(parse_decimal_dong("150000.00").map(Vnd::dong), Ok(150_000));
        assert_eq!(parse_decimal_dong("150000.0").map(Vnd::dong), Ok(150_000));
        assert_eq!(parse_decimal_dong("150000.50"), Err(AmountProblem::NotWholeDong));
        assert_eq!(parse_decimal_dong("0.00"), Err(AmountProblem::Zero));
        assert_eq!(parse_decimal_dong("-3"), Err(AmountProblem::Negative));
        for bad in ["", ".5", "5.", "1e3", "+5", " 5", "1,000", "abc", "1.2.3"] {
            assert_eq!(parse_decimal_dong(bad), Err(AmountProblem::NotANumber), "{bad:?}");
        }
        assert_eq!(parse_decimal_dong("1000000000000000"), Err(AmountProblem::TooLarge));
    }
}
