//! Bank statements of a collection account, normalised for reconciliation (đối soát).
//!
//! Two input formats are read into one shape, [`Statement`]:
//! - [`StatementFormat::Csv`]: the ledger's own CSV layout (see `docs/STATEMENTS.md`), which
//!   finance staff produce from their bank's export;
//! - [`StatementFormat::Camt053`]: ISO 20022 `BankToCustomerStatement`, camt.053.001.02 to .08.
//!
//! Every line gets a [`StatementLine::line_id`] that is the same each time the same file is read,
//! so a re-imported statement is recognised line by line. Amounts are whole đồng ([`Vnd`]), always
//! above zero; [`Direction`] says whether the money came in or went out.
//!
//! Parsing is all-or-nothing: the first problem stops it with a [`StatementError`] that says where
//! (CSV line number, or XML element path and line) and what is wrong.

mod camt053;
mod csv;

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
    /// Booked lines only, in file order.
    pub lines: Vec<StatementLine>,
}

/// The file formats [`parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementFormat {
    /// The ledger's CSV layout, described in `docs/STATEMENTS.md`.
    Csv,
    /// ISO 20022 camt.053 (`BankToCustomerStatement`), versions .001.02 to .001.08.
    Camt053,
}

impl StatementFormat {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StatementFormat::Csv => "csv",
            StatementFormat::Camt053 => "camt053",
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

    /// `"csv"` or `"camt053"` (also `"camt.053"`), ignoring ASCII case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(StatementFormat::Csv),
            "camt053" | "camt.053" => Ok(StatementFormat::Camt053),
            _ => Err(StatementError::UnknownFormat(s.to_owned())),
        }
    }
}

/// Reads a whole statement file. Nothing is returned unless every line is valid.
///
/// # Errors
///
/// A [`StatementError`] naming the place (CSV line, or XML element path and line) and the
/// problem, for the first invalid thing in the file.
pub fn parse(format: StatementFormat, bytes: &[u8]) -> Result<Statement, StatementError> {
    match format {
        StatementFormat::Csv => csv::parse(bytes),
        StatementFormat::Camt053 => camt053::parse(bytes),
    }
}

/// Where in the file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole.
    File,
    /// The CSV header row (line 1).
    Header,
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
    #[error("unknown statement format {0:?} (expected \"csv\" or \"camt053\")")]
    UnknownFormat(String),
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
        assert_eq!(error.to_string(), "unknown statement format \"xlsx\" (expected \"csv\" or \"camt053\")");
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
