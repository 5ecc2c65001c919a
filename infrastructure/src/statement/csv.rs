//! The ledger's CSV statement layout (documented in `docs/STATEMENTS.md`).
//!
//! UTF-8 (a leading BOM is dropped), comma separated, a header row of English `snake_case` column
//! names in any order. Required: `account_number`, `booked_on`, `amount`, `direction`. Optional:
//! `value_date`, `description`, `bank_reference`, `transaction_id`, `counterparty_name`,
//! `counterparty_account`. Other columns are ignored. Cells are trimmed; an empty optional cell
//! is "none". Rows whose cells are all empty are skipped.

use chrono::NaiveDate;
use feeledger_domain::money::Vnd;

use super::{
    AmountProblem, Direction, LineIds, LineKey, Location, Statement, StatementError, StatementLine, decode_utf8,
    positive_dong,
};

const DATE_FORMATS: &str = "YYYY-MM-DD or DD/MM/YYYY";
const DIRECTIONS: &str = "credit/debit, C/D, CR/DR or Có/Nợ";

/// Column positions, found by name in the header row.
#[derive(Debug)]
struct Columns {
    width: usize,
    account_number: usize,
    booked_on: usize,
    amount: usize,
    direction: usize,
    value_date: Option<usize>,
    description: Option<usize>,
    bank_reference: Option<usize>,
    transaction_id: Option<usize>,
    counterparty_name: Option<usize>,
    counterparty_account: Option<usize>,
}

const KNOWN_COLUMNS: [&str; 10] = [
    "account_number",
    "booked_on",
    "value_date",
    "amount",
    "direction",
    "description",
    "bank_reference",
    "transaction_id",
    "counterparty_name",
    "counterparty_account",
];

impl Columns {
    fn from_header(header: &::csv::StringRecord) -> Result<Columns, StatementError> {
        let mut found: [Option<usize>; KNOWN_COLUMNS.len()] = [None; KNOWN_COLUMNS.len()];
        for (index, name) in header.iter().enumerate() {
            let name = name.trim().to_lowercase();
            if let Some(known) = KNOWN_COLUMNS.iter().position(|k| *k == name) {
                if found[known].is_some() {
                    return Err(StatementError::DuplicateColumn { column: name });
                }
                found[known] = Some(index);
            }
        }
        let optional = |name: &str| KNOWN_COLUMNS.iter().position(|k| *k == name).and_then(|i| found[i]);
        let required = |name: &'static str| optional(name).ok_or(StatementError::MissingColumn { column: name });
        Ok(Columns {
            width: header.len(),
            account_number: required("account_number")?,
            booked_on: required("booked_on")?,
            amount: required("amount")?,
            direction: required("direction")?,
            value_date: optional("value_date"),
            description: optional("description"),
            bank_reference: optional("bank_reference"),
            transaction_id: optional("transaction_id"),
            counterparty_name: optional("counterparty_name"),
            counterparty_account: optional("counterparty_account"),
        })
    }
}

pub(super) fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
    let text = decode_utf8(bytes)?;
    let mut statement = Statement {
        account_number: String::new(),
        statement_id: None,
        from: None,
        to: None,
        opening_balance: None,
        closing_balance: None,
        lines: Vec::new(),
    };
    if text.trim().is_empty() {
        return Ok(statement);
    }

    let mut reader = ::csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| malformed(Location::Header, &e))?.clone();
    let columns = Columns::from_header(&header)?;

    let mut first_account: Option<Location> = None;
    let mut ids = LineIds::default();
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let at = error.position().map_or(Location::File, |p| Location::Line(p.line()));
                return Err(malformed(at, &error));
            }
        }
        let at = Location::Line(record.position().map_or(0, ::csv::Position::line));
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if record.len() != columns.width {
            return Err(StatementError::Malformed {
                at,
                detail: format!(
                    "has {} fields but the header has {} (a comma inside a value must be in double quotes)",
                    record.len(),
                    columns.width
                ),
            });
        }
        let line = read_line(&record, &columns, &at, &mut ids)?;
        match &first_account {
            None => {
                statement.account_number.clone_from(&line.account_number);
                first_account = Some(at);
            }
            Some(first_at) if line.account_number != statement.account_number => {
                return Err(StatementError::AccountMismatch {
                    at,
                    found: line.account_number,
                    expected: statement.account_number,
                    first_at: first_at.clone(),
                });
            }
            Some(_) => {}
        }
        statement.lines.push(line);
    }
    Ok(statement)
}

fn malformed(at: Location, error: &::csv::Error) -> StatementError {
    StatementError::Malformed { at, detail: format!("not valid CSV: {error}") }
}

fn read_line(
    record: &::csv::StringRecord,
    columns: &Columns,
    at: &Location,
    ids: &mut LineIds,
) -> Result<StatementLine, StatementError> {
    let cell = |index: usize| record.get(index).map_or("", str::trim);
    let optional = |index: Option<usize>| index.map(cell).filter(|v| !v.is_empty());
    let required = |index: usize, field: &'static str| {
        let value = cell(index);
        if value.is_empty() { Err(StatementError::Missing { at: at.clone(), field }) } else { Ok(value) }
    };

    let account_number = required(columns.account_number, "account_number")?;
    check_account(account_number, at)?;
    let booked_on = date(required(columns.booked_on, "booked_on")?, "booked_on", at)?;
    let value_date = optional(columns.value_date).map(|v| date(v, "value_date", at)).transpose()?;
    let amount_text = required(columns.amount, "amount")?;
    let amount = amount(amount_text).map_err(|problem| StatementError::Amount {
        at: at.clone(),
        value: amount_text.to_owned(),
        problem,
    })?;
    let direction_text = required(columns.direction, "direction")?;
    let direction = direction(direction_text).ok_or_else(|| StatementError::Direction {
        at: at.clone(),
        value: direction_text.to_owned(),
        expected: DIRECTIONS,
    })?;
    let description = optional(columns.description).unwrap_or_default();
    let bank_reference = optional(columns.bank_reference);

    let key = LineKey { account: account_number, booked_on, amount, direction, description, bank_reference };
    let line_id = ids.assign(optional(columns.transaction_id), key, at)?;
    Ok(StatementLine {
        line_id,
        account_number: account_number.to_owned(),
        booked_on,
        value_date,
        amount,
        direction,
        description: description.to_owned(),
        bank_reference: bank_reference.map(str::to_owned),
        counterparty_name: optional(columns.counterparty_name).map(str::to_owned),
        counterparty_account: optional(columns.counterparty_account).map(str::to_owned),
    })
}

/// Refuses an account number Excel has turned into a number in scientific notation
/// (`1.13E+11`): its digits are lost and cannot be recovered.
fn check_account(account: &str, at: &Location) -> Result<(), StatementError> {
    let upper = account.to_ascii_uppercase();
    if let Some((mantissa, exponent)) = upper.split_once("E+")
        && !mantissa.is_empty()
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
        && !exponent.is_empty()
        && exponent.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(StatementError::Invalid {
            at: at.clone(),
            field: "account_number",
            value: account.to_owned(),
            reason: "it is in scientific notation (Excel turned it into a number); format the column as text",
        });
    }
    Ok(())
}

/// `YYYY-MM-DD`, or `DD/MM/YYYY` (day and month may have one digit) as Vietnamese banks export.
fn date(text: &str, field: &'static str, at: &Location) -> Result<NaiveDate, StatementError> {
    parse_date(text).ok_or_else(|| StatementError::Date {
        at: at.clone(),
        field,
        value: text.to_owned(),
        expected: DATE_FORMATS,
    })
}

pub(super) fn parse_date(text: &str) -> Option<NaiveDate> {
    let number = |part: &str, min: usize, max: usize| -> Option<u32> {
        if (min..=max).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let parts: Vec<&str> = if text.contains('-') { text.split('-').collect() } else { text.split('/').collect() };
    let [a, b, c] = parts.as_slice() else { return None };
    let (year, month, day) = if text.contains('-') {
        (number(a, 4, 4)?, number(b, 2, 2)?, number(c, 2, 2)?)
    } else {
        (number(c, 4, 4)?, number(b, 1, 2)?, number(a, 1, 2)?)
    };
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// Whole đồng: plain digits (`1234000`), or thousands grouped with `.` (`1.234.000`, the
/// Vietnamese way) or `,` (`1,234,000`) when the grouping is unambiguous: one separator kind,
/// a first group of 1–3 digits not starting with 0, then groups of exactly three digits.
/// Anything with a decimal part is refused, even `.00`.
pub(super) fn amount(text: &str) -> Result<Vnd, AmountProblem> {
    if let Some(rest) = text.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return Err(AmountProblem::Negative);
    }
    if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') || !text.bytes().any(|b| b.is_ascii_digit())
    {
        return Err(AmountProblem::NotANumber);
    }
    let has_dot = text.contains('.');
    let has_comma = text.contains(',');
    if !has_dot && !has_comma {
        return positive_dong(text);
    }
    if has_dot && has_comma {
        // "1.234,50" or "1,234.00": the last separator is a decimal mark.
        return Err(AmountProblem::NotWholeDong);
    }
    let separator = if has_dot { '.' } else { ',' };
    let groups: Vec<&str> = text.split(separator).collect();
    if groups.iter().any(|g| g.is_empty()) {
        return Err(AmountProblem::NotANumber);
    }
    let (first, rest) = groups.split_first().ok_or(AmountProblem::NotANumber)?;
    let grouped = (1..=3).contains(&first.len()) && !first.starts_with('0') && rest.iter().all(|g| g.len() == 3);
    if grouped {
        return positive_dong(&groups.concat());
    }
    if groups.len() == 2 {
        // One separator that is not a thousands separator: a decimal mark ("12.5", "150000.00").
        return Err(AmountProblem::NotWholeDong);
    }
    Err(AmountProblem::AmbiguousGrouping)
}

/// `credit`/`debit`, `C`/`D`, `CR`/`DR`, `Có`/`Nợ`, in any case; the Vietnamese words also in
/// decomposed Unicode (as some Mac exports write them).
fn direction(text: &str) -> Option<Direction> {
    match text.to_lowercase().as_str() {
        "credit" | "c" | "cr" | "có" | "co\u{301}" => Some(Direction::Credit),
        "debit" | "d" | "dr" | "nợ" | "no\u{31b}\u{323}" | "nơ\u{323}" => Some(Direction::Debit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{StatementFormat, parse as parse_statement};
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    fn csv(text: &str) -> Result<Statement, StatementError> {
        parse_statement(StatementFormat::Csv, text.as_bytes())
    }

    fn error(text: &str) -> String {
        match csv(text) {
            Ok(statement) => panic!("expected an error, parsed {statement:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn vnd(dong: i64) -> Vnd {
        Vnd::new(dong).expect("valid amount")
    }

    const HEADER: &str = "account_number,booked_on,value_date,amount,direction,description,bank_reference,transaction_id,counterparty_name,counterparty_account\n";

    #[test]
    fn a_vietinbank_like_csv_parses_to_the_expected_lines() {
        let statement = parse(&fixture("vietinbank_collection_2024-04-26.csv")).expect("fixture parses");
        assert_eq!(statement.account_number, "113000123456");
        assert_eq!(statement.statement_id, None);
        assert_eq!((statement.from, statement.to), (None, None));
        assert_eq!(statement.lines.len(), 6);

        let first = &statement.lines[0];
        assert_eq!(first.line_id, "FT24117000123456");
        assert_eq!(first.booked_on, day(2024, 4, 26));
        assert_eq!(first.value_date, Some(day(2024, 4, 26)));
        assert_eq!(first.amount, vnd(150_000));
        assert_eq!(first.direction, Direction::Credit);
        assert_eq!(first.description, "MBVCB.3278907687.H34.22.6-240426-0002.Thanh toan le phi");
        assert_eq!(first.bank_reference.as_deref(), Some("3278907687"));
        assert_eq!(first.counterparty_name.as_deref(), Some("NGUYEN VAN AN"));
        assert_eq!(first.counterparty_account.as_deref(), Some("0071000123456"));

        let second = &statement.lines[1];
        assert_eq!(second.amount, vnd(1_200_000));
        assert_eq!(second.description, "H34.22.6-240426-0005 nop phi tham dinh, ho so Tran Thi Binh");
        assert_eq!(second.counterparty_name.as_deref(), Some("TRẦN THỊ BÌNH"));

        let fee = &statement.lines[2];
        assert_eq!(fee.direction, Direction::Debit);
        assert_eq!(fee.amount, vnd(11_000));
        assert_eq!(fee.description, "Phí dịch vụ SMS Banking tháng 04/2024");
        assert_eq!(fee.value_date, None);
        assert_eq!(fee.counterparty_name, None);

        let no_bank_id = &statement.lines[3];
        assert!(no_bank_id.line_id.starts_with("sha256:"), "{}", no_bank_id.line_id);
        assert_eq!(no_bank_id.amount, vnd(50_000));
        assert_eq!(no_bank_id.bank_reference, None);

        assert_eq!(statement.lines[4].amount, vnd(200_000));
        assert_eq!(statement.lines[4].direction, Direction::Credit);
        assert_eq!(statement.lines[5].direction, Direction::Debit);
        assert_eq!(statement.lines[5].amount, vnd(35_000_000));
        assert_eq!(statement.lines[5].description, "Nop tien phi cho nop ngan sach vao KBNN Bac Giang");
    }

    #[test]
    fn a_csv_with_vietnamese_dates_and_dotted_thousands_parses() {
        let statement = parse(&fixture("vn_dates_grouped_amounts.csv")).expect("fixture parses");
        assert_eq!(statement.account_number, "0451000456789");
        let summary: Vec<(NaiveDate, Option<NaiveDate>, i64, Direction)> =
            statement.lines.iter().map(|l| (l.booked_on, l.value_date, l.amount.dong(), l.direction)).collect();
        assert_eq!(
            summary,
            vec![
                (day(2024, 4, 26), Some(day(2024, 4, 26)), 1_234_000, Direction::Credit),
                (day(2024, 4, 26), Some(day(2024, 4, 27)), 200_000, Direction::Credit),
                (day(2024, 4, 27), None, 1_000_000, Direction::Credit),
                (day(2024, 4, 27), None, 22_000, Direction::Debit),
                (day(2024, 5, 1), Some(day(2024, 5, 2)), 2_500_000, Direction::Credit),
                (day(2024, 5, 1), None, 150_000, Direction::Credit),
                (day(2024, 5, 1), None, 150_000, Direction::Credit),
            ]
        );
        assert_eq!(statement.lines[0].description, "IBFT H34.22.6-240426-0011 Le phi cap GCN QSDD");
        assert_eq!(statement.lines[3].description, "Thu phí quản lý tài khoản");
        // The two identical lines (no transaction id, same everything) still get distinct ids.
        assert_eq!(statement.lines[5].description, statement.lines[6].description);
        assert_ne!(statement.lines[5].line_id, statement.lines[6].line_id);
        assert!(statement.lines.iter().all(|l| l.line_id.starts_with("sha256:")));
    }

    #[test]
    fn the_example_in_the_documentation_parses() {
        let text = "account_number,booked_on,value_date,amount,direction,description,bank_reference,transaction_id,counterparty_name,counterparty_account
113000123456,2024-04-26,2024-04-26,150000,C,MBVCB.3278907687.H34.22.6-240426-0002.Thanh toan le phi,3278907687,FT24117000123456,NGUYEN VAN AN,0071000123456
113000123456,26/04/2024,,11.000,Nợ,Phí dịch vụ SMS Banking tháng 04/2024,,FT24117000124001,,
";
        let statement = csv(text).expect("the documented example parses");
        assert_eq!(statement.lines.len(), 2);
        assert_eq!(statement.lines[1].amount, vnd(11_000));
        assert_eq!(statement.lines[1].direction, Direction::Debit);
        assert_eq!(statement.lines[1].booked_on, day(2024, 4, 26));
    }

    #[test]
    fn line_ids_are_stable_across_two_parses_and_unique_within_a_file() {
        let text = format!(
            "{HEADER}\
             113000123456,2024-04-26,,150000,C,Thanh toan le phi,,,,\n\
             113000123456,2024-04-26,,150000,C,Thanh toan le phi,,,,\n\
             113000123456,2024-04-26,,150000,C,Thanh toan le phi,,FT1,,\n\
             113000123456,2024-04-26,,150000,C,Thanh toan le phi,,,,\n"
        );
        let first = csv(&text).expect("parses");
        let second = csv(&text).expect("parses");
        let ids = |s: &Statement| s.lines.iter().map(|l| l.line_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&first), ids(&second));
        let mut unique = ids(&first);
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        assert_eq!(first.lines[2].line_id, "FT1");
        // A line with a bank id does not shift the ordinals of the others.
        let without_bank_line = format!(
            "{HEADER}\
             113000123456,2024-04-26,,150000,C,Thanh toan le phi,,,,\n\
             113000123456,2024-04-26,,150000,C,Thanh toan le phi,,,,\n\
             113000123456,2024-04-26,,150000,C,Thanh toan le phi,,,,\n"
        );
        let other = csv(&without_bank_line).expect("parses");
        assert_eq!(other.lines[2].line_id, first.lines[3].line_id);
    }

    #[test]
    fn a_fractional_amount_is_rejected_with_its_line_number() {
        let text = format!(
            "{HEADER}\
             113000123456,2024-04-26,,150000,C,a,,,,\n\
             113000123456,2024-04-26,,150000,C,b,,,,\n\
             113000123456,2024-04-26,,150000,C,c,,,,\n\
             113000123456,2024-04-26,,150000,C,d,,,,\n\
             113000123456,2024-04-26,,150000,C,e,,,,\n\
             113000123456,2024-04-26,,12.5,C,f,,,,\n"
        );
        assert_eq!(error(&text), "line 7: amount \"12.5\" is not a whole number of dong");
    }

    #[test]
    fn negative_non_numeric_zero_and_decimal_amounts_are_rejected() {
        let cases = [
            ("-3", "line 2: amount \"-3\" is negative (amounts are positive; the direction says credit or debit)"),
            ("abc", "line 2: amount \"abc\" is not a number"),
            ("0", "line 2: amount \"0\" is zero (a statement line moves money)"),
            ("150000.00", "line 2: amount \"150000.00\" is not a whole number of dong"),
            ("\"1.234,50\"", "line 2: amount \"1.234,50\" is not a whole number of dong"),
            ("\"1,5\"", "line 2: amount \"1,5\" is not a whole number of dong"),
            ("0.500", "line 2: amount \"0.500\" is not a whole number of dong"),
            ("1 234", "line 2: amount \"1 234\" is not a number"),
            ("1e3", "line 2: amount \"1e3\" is not a number"),
            ("+5", "line 2: amount \"+5\" is not a number"),
            (
                "1.23.000",
                "line 2: amount \"1.23.000\" has an ambiguous thousands grouping (use plain digits, or groups of three separated by \".\" or \",\")",
            ),
            (
                "1234.567.000",
                "line 2: amount \"1234.567.000\" has an ambiguous thousands grouping (use plain digits, or groups of three separated by \".\" or \",\")",
            ),
            (
                "9999999999999999",
                "line 2: amount \"9999999999999999\" is larger than the ledger's maximum of 999,999,999,999,999 dong",
            ),
        ];
        for (amount, expected) in cases {
            let text = format!("{HEADER}113000123456,2024-04-26,,{amount},C,x,,,,\n");
            assert_eq!(error(&text), expected, "{amount}");
        }
    }

    #[test]
    fn grouped_amounts_are_read_when_the_grouping_is_unambiguous() {
        for (text, dong) in [
            ("1234000", 1_234_000),
            ("1.234.000", 1_234_000),
            ("1,234,000", 1_234_000),
            ("1.234", 1234),
            ("12.000", 12_000),
            ("150,000", 150_000),
            ("007", 7),
        ] {
            assert_eq!(amount(text).map(Vnd::dong), Ok(dong), "{text}");
        }
    }

    #[test]
    fn bad_dates_are_rejected_naming_the_column() {
        for (value, field_position) in [
            ("2024-02-30", 0),
            ("31/02/2024", 0),
            ("04/26/2024", 0),
            ("2024/04/26", 0),
            ("26-04-2024", 0),
            ("2024-4-26", 0),
            ("26/04/24", 0),
            ("hôm nay", 0),
            ("2024-13-01", 1),
        ] {
            let (booked_on, value_date, field) =
                if field_position == 0 { (value, "", "booked_on") } else { ("2024-04-26", value, "value_date") };
            let text = format!("{HEADER}113000123456,{booked_on},{value_date},1000,C,x,,,,\n");
            assert_eq!(
                error(&text),
                format!("line 2: {field} \"{value}\" is not a valid date (expected YYYY-MM-DD or DD/MM/YYYY)")
            );
        }
        assert_eq!(parse_date("6/4/2024"), Some(day(2024, 4, 6)));
        assert_eq!(parse_date("29/02/2024"), Some(day(2024, 2, 29)));
    }

    #[test]
    fn every_documented_direction_spelling_is_understood() {
        for credit in ["credit", "CREDIT", "C", "c", "CR", "Cr", "Có", "CÓ", "có", "Co\u{301}"] {
            assert_eq!(direction(credit), Some(Direction::Credit), "{credit}");
        }
        for debit in ["debit", "Debit", "D", "DR", "dr", "Nợ", "NỢ", "nợ", "No\u{31b}\u{323}", "Nơ\u{323}"] {
            assert_eq!(direction(debit), Some(Direction::Debit), "{debit}");
        }
        let text = format!("{HEADER}113000123456,2024-04-26,,1000,X,x,,,,\n");
        assert_eq!(
            error(&text),
            "line 2: direction \"X\" is not credit or debit (expected credit/debit, C/D, CR/DR or Có/Nợ)"
        );
        assert!(direction("no").is_none() && direction("co").is_none(), "unaccented words are ambiguous");
    }

    #[test]
    fn a_missing_required_column_or_cell_is_rejected() {
        let text = "account_number,booked_on,amount,description\n113000123456,2024-04-26,1000,x\n";
        assert_eq!(error(text), "header (line 1): missing required column \"direction\"");
        let header_only = "account_number,booked_on,direction\n";
        assert_eq!(error(header_only), "header (line 1): missing required column \"amount\"");
        let text = format!("{HEADER}113000123456,2024-04-26,,1000,C,x,,,,\n113000123456,,,1000,C,x,,,,\n");
        assert_eq!(error(&text), "line 3: booked_on is missing");
        let text = format!("{HEADER}113000123456,2024-04-26,,,C,x,,,,\n");
        assert_eq!(error(&text), "line 2: amount is missing");
        let text = "account_number,booked_on,amount,direction,Amount\n1,2024-04-26,1,C,2\n";
        assert_eq!(error(text), "header (line 1): column \"amount\" appears twice");
    }

    #[test]
    fn two_accounts_in_one_csv_are_rejected() {
        let text = format!(
            "{HEADER}\
             113000123456,2024-04-26,,1000,C,x,,,,\n\
             113000123456,2024-04-26,,2000,C,y,,,,\n\
             113000999999,2024-04-26,,3000,C,z,,,,\n"
        );
        assert_eq!(
            error(&text),
            "line 4: account \"113000999999\" differs from account \"113000123456\" at line 2; a statement covers one account"
        );
    }

    #[test]
    fn a_byte_order_mark_is_stripped() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(b"account_number,booked_on,amount,direction\n113000123456,26/04/2024,150.000,Co\n");
        let error = parse(&bytes).expect_err("'Co' without accent is not a direction");
        assert_eq!(
            error.to_string(),
            "line 2: direction \"Co\" is not credit or debit (expected credit/debit, C/D, CR/DR or Có/Nợ)"
        );
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(
            "account_number,booked_on,amount,direction\r\n113000123456,26/04/2024,150.000,Có\r\n".as_bytes(),
        );
        let statement = parse(&bytes).expect("BOM-prefixed header is recognised");
        assert_eq!(statement.account_number, "113000123456");
        assert_eq!(statement.lines[0].amount, vnd(150_000));
    }

    #[test]
    fn an_empty_file_or_a_valid_header_alone_gives_no_lines() {
        for text in ["", "\u{feff}", "\n\n", HEADER, "\u{feff}account_number,booked_on,amount,direction\r\n"] {
            let statement = csv(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(statement.lines.is_empty());
            assert_eq!(statement.account_number, "");
        }
    }

    #[test]
    fn unknown_columns_blank_rows_and_column_order_do_not_matter() {
        let text = "Ghi chu,direction,amount,account_number,booked_on,so_du\n\
                    anything,debit,\"1,000\",113000123456,2024-04-26,5000000\n\
                    ,,,,,\n\
                    \n\
                    ,credit,2000,113000123456,2024-04-27,\n";
        let statement = csv(text).expect("parses");
        assert_eq!(statement.lines.len(), 2);
        assert_eq!(statement.lines[0].direction, Direction::Debit);
        assert_eq!(statement.lines[0].amount, vnd(1000));
        assert_eq!(statement.lines[0].description, "");
        assert_eq!(statement.lines[1].booked_on, day(2024, 4, 27));
    }

    #[test]
    fn quoted_descriptions_keep_commas_and_wrong_field_counts_are_rejected() {
        let text = format!("{HEADER}113000123456,2024-04-26,,1000,C,\"phi, le phi\",,,,\n");
        assert_eq!(csv(&text).expect("parses").lines[0].description, "phi, le phi");
        let text = format!("{HEADER}113000123456,2024-04-26,,1000,C,phi, le phi,,,,\n");
        assert_eq!(
            error(&text),
            "line 2: has 11 fields but the header has 10 (a comma inside a value must be in double quotes)"
        );
    }

    #[test]
    fn a_repeated_transaction_id_is_rejected() {
        let text =
            format!("{HEADER}113000123456,2024-04-26,,1000,C,x,,FT1,,\n113000123456,2024-04-26,,1000,C,x,,FT1,,\n");
        assert_eq!(
            error(&text),
            "line 3: line id \"FT1\" is already used at line 2; the bank's references must be unique in a file"
        );
    }

    #[test]
    fn non_utf8_and_excel_mangled_account_numbers_are_rejected() {
        let mut bytes = b"account_number,booked_on,amount,direction,description\n1,2024-04-26,1,C,Ph".to_vec();
        bytes.push(0xED); // "í" in Windows-1258
        bytes.extend_from_slice(b"\n");
        assert_eq!(
            parse(&bytes).expect_err("not UTF-8").to_string(),
            "line 2: the file is not UTF-8 text (byte 0xED at offset 73 is not UTF-8; the file may be in \
             Windows-1258 or TCVN3); export or save it as UTF-8 (in Excel: \"CSV UTF-8\")"
        );
        let text = "account_number,booked_on,amount,direction\n1.13E+11,2024-04-26,1000,C\n";
        assert_eq!(
            error(text),
            "line 2: account_number \"1.13E+11\" is not usable: it is in scientific notation (Excel turned it \
             into a number); format the column as text"
        );
    }
}
