//! SWIFT MT940 customer statements (as Vietnamese banks deliver them to host-to-host clients).
//!
//! A file holds one or more messages, each `:20:` (reference), `:25:` (account, maybe
//! `BIC/account`), `:28C:`, `:60F:`/`:60M:` (opening balance), `:61:` lines each optionally
//! followed by `:86:` (information to the account owner), `:62F:`/`:62M:` (closing balance).
//! An optional SWIFT envelope (`{1:…}{2:…}{4:` … `-}`) is ignored. Field `:61:` is
//! `YYMMDD[MMDD](C|D|RC|RD)[funds code]amount(N|F|S)xxx customer-ref[//bank-ref][\nsupplementary]`;
//! amounts use a decimal comma. The bank reference (after `//`) is the line id when present
//! and not `NONREF`.
//!
//! Successive messages of one file must chain (one's closing balance is the next one's
//! opening); the statement's opening is the first message's, its closing the last one's.

use chrono::NaiveDate;
use feeledger_domain::money::Vnd;

use super::{
    AmountProblem, Direction, LineIds, LineKey, Location, Statement, StatementError, StatementLine, decode_utf8,
    parse_decimal_dong,
};

#[derive(Debug)]
struct Field {
    tag: String,
    value: String,
    line: u64,
}

fn fields(text: &str) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index as u64 + 1;
        let mut line = raw.trim_end_matches('\r');
        // The SWIFT envelope: block 4 starts after "{4:", ends with "-}".
        if let Some(pos) = line.find("{4:") {
            line = &line[pos + 3..];
        }
        if line.trim().is_empty() || line.starts_with('{') || line.trim() == "-}" || line.trim() == "-" {
            continue;
        }
        if let Some(rest) = line.strip_prefix(':')
            && let Some((tag, value)) = rest.split_once(':')
            && !tag.is_empty()
            && tag.len() <= 3
            && tag.chars().all(|c| c.is_ascii_alphanumeric())
        {
            out.push(Field { tag: tag.to_owned(), value: value.to_owned(), line: line_number });
        } else if let Some(last) = out.last_mut() {
            last.value.push('\n');
            last.value.push_str(line);
        }
    }
    out
}

fn at(field: &Field) -> Location {
    Location::Line(field.line)
}

/// `C240426VND12345000,` → signed đồng, the date and the currency.
fn balance(field: &Field) -> Result<i64, StatementError> {
    let value = field.value.trim();
    let malformed = |detail: &str| StatementError::Malformed {
        at: at(field),
        detail: format!(":{}: balance {value:?} {detail} (expected C|D, YYMMDD, currency, amount)", field.tag),
    };
    let mark = value.get(..1).ok_or_else(|| malformed("is empty"))?;
    let currency = value.get(7..10).ok_or_else(|| malformed("is too short"))?;
    if currency != "VND" {
        return Err(StatementError::Currency {
            at: at(field),
            entry: format!(":{}:", field.tag),
            currency: currency.to_owned(),
        });
    }
    let amount = value.get(10..).ok_or_else(|| malformed("is too short"))?;
    let dong = swift_amount(amount, field, true)?;
    match mark {
        "C" => Ok(dong),
        "D" => Ok(-dong),
        _ => Err(malformed("has no C/D mark")),
    }
}

/// `12345000,` or `12345000,00` → đồng. Zero is allowed for balances only.
fn swift_amount(text: &str, field: &Field, zero_ok: bool) -> Result<i64, StatementError> {
    let amount_error = |problem| StatementError::Amount { at: at(field), value: text.to_owned(), problem };
    let normal = text.replace(',', ".");
    let normal = normal.strip_suffix('.').unwrap_or(&normal);
    match parse_decimal_dong(normal) {
        Ok(v) => Ok(v.dong()),
        Err(AmountProblem::Zero) if zero_ok => Ok(0),
        Err(problem) => Err(amount_error(problem)),
    }
}

fn date6(text: &str) -> Option<NaiveDate> {
    if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = text[0..2].parse().ok()?;
    let month: u32 = text[2..4].parse().ok()?;
    let day: u32 = text[4..6].parse().ok()?;
    NaiveDate::from_ymd_opt(2000 + year, month, day)
}

pub(super) fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
    let text = decode_utf8(bytes)?;
    let fields = fields(text);
    if !fields.iter().any(|f| f.tag == "20") {
        return Err(StatementError::Unsupported {
            at: Location::File,
            detail: "not an MT940 statement (expected fields :20:, :25:, :60F:, :61:, :62F:)".to_owned(),
        });
    }
    let mut statement = Statement {
        account_number: String::new(),
        statement_id: None,
        from: None,
        to: None,
        opening_balance: None,
        closing_balance: None,
        lines: Vec::new(),
    };
    let mut ids = LineIds::default();
    let mut account_at: Option<Location> = None;
    let mut message_opening: Option<i64> = None;
    let mut running: Option<i64> = None;
    let mut index = 0;
    while index < fields.len() {
        let field = &fields[index];
        match field.tag.as_str() {
            "20" if statement.statement_id.is_none() => {
                statement.statement_id = Some(field.value.trim().to_owned());
            }
            "25" => {
                let value = field.value.trim();
                let account = value.rsplit('/').next().unwrap_or(value).trim().to_owned();
                match &account_at {
                    None => {
                        statement.account_number.clone_from(&account);
                        account_at = Some(at(field));
                    }
                    Some(first) if account != statement.account_number => {
                        return Err(StatementError::AccountMismatch {
                            at: at(field),
                            found: account,
                            expected: statement.account_number,
                            first_at: first.clone(),
                        });
                    }
                    Some(_) => {}
                }
            }
            "60F" | "60M" => {
                let opening = balance(field)?;
                if let Some(previous) = running
                    && previous != opening
                {
                    return Err(StatementError::Inconsistent {
                        at: at(field),
                        detail: format!(
                            "opening balance {opening} does not continue the previous message's closing balance {previous}"
                        ),
                    });
                }
                if statement.opening_balance.is_none() {
                    statement.opening_balance = Some(opening);
                }
                message_opening = Some(opening);
                running = Some(opening);
            }
            "61" => {
                if account_at.is_none() {
                    return Err(StatementError::Missing {
                        at: at(field),
                        field: "account (:25:) before the first :61:",
                    });
                }
                let information = fields.get(index + 1).filter(|f| f.tag == "86");
                let line = statement_line(field, information, &statement.account_number, &mut ids)?;
                let signed = if line.direction == Direction::Credit { line.amount.dong() } else { -line.amount.dong() };
                running = running.and_then(|r| r.checked_add(signed));
                statement.lines.push(line);
                if information.is_some() {
                    index += 1;
                }
            }
            "62F" | "62M" => {
                let closing = balance(field)?;
                if let (Some(opening), Some(sum)) = (message_opening, running)
                    && sum != closing
                {
                    return Err(StatementError::Inconsistent {
                        at: at(field),
                        detail: format!(
                            "closing balance {closing} differs from the opening balance {opening} plus the message's credits minus its debits, {sum}"
                        ),
                    });
                }
                statement.closing_balance = Some(closing);
                running = Some(closing);
            }
            _ => {}
        }
        index += 1;
    }
    if account_at.is_none() {
        return Err(StatementError::Missing { at: Location::File, field: "account (:25:)" });
    }
    statement.from = statement.lines.iter().map(|l| l.booked_on).min();
    statement.to = statement.lines.iter().map(|l| l.booked_on).max();
    Ok(statement)
}

fn statement_line(
    field: &Field,
    information: Option<&Field>,
    account: &str,
    ids: &mut LineIds,
) -> Result<StatementLine, StatementError> {
    let location = at(field);
    let (first, supplementary) = match field.value.split_once('\n') {
        Some((first, rest)) => (first.trim(), Some(rest.trim())),
        None => (field.value.trim(), None),
    };
    let malformed = |detail: &str| StatementError::Malformed {
        at: location.clone(),
        detail: format!(":61: {first:?} {detail} (expected YYMMDD[MMDD], C/D, amount, type, reference)"),
    };
    let value_date = first.get(0..6).and_then(date6).ok_or_else(|| malformed("has no valid value date"))?;
    let mut rest = &first[6..];
    let mut booked_on = value_date;
    if rest.get(..4).is_some_and(|entry| entry.bytes().all(|b| b.is_ascii_digit())) {
        let month: u32 = rest[0..2].parse().map_err(|_| malformed("has a bad entry date"))?;
        let day: u32 = rest[2..4].parse().map_err(|_| malformed("has a bad entry date"))?;
        // The entry date's year: the value date's, or the one before/after across New Year.
        let year = chrono::Datelike::year(&value_date);
        let candidates = [year - 1, year, year + 1];
        booked_on = candidates
            .iter()
            .filter_map(|y| NaiveDate::from_ymd_opt(*y, month, day))
            .min_by_key(|d| (*d - value_date).num_days().abs())
            .ok_or_else(|| malformed("has a bad entry date"))?;
        rest = &rest[4..];
    }
    let direction = if let Some(r) = rest.strip_prefix("RC") {
        rest = r;
        Direction::Debit
    } else if let Some(r) = rest.strip_prefix("RD") {
        rest = r;
        Direction::Credit
    } else if let Some(r) = rest.strip_prefix('C') {
        rest = r;
        Direction::Credit
    } else if let Some(r) = rest.strip_prefix('D') {
        rest = r;
        Direction::Debit
    } else {
        return Err(malformed("has no debit/credit mark"));
    };
    // An optional funds code (a letter) before the amount.
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        rest = &rest[1..];
    }
    let amount_len = rest.find(|c: char| !(c.is_ascii_digit() || c == ',')).unwrap_or(rest.len());
    let amount_text = &rest[..amount_len];
    let dong = swift_amount(amount_text, field, false)?;
    let amount = Vnd::new(dong).map_err(|e| StatementError::Amount {
        at: location.clone(),
        value: amount_text.to_owned(),
        problem: e.into(),
    })?;
    rest = &rest[amount_len..];
    // Transaction type: one letter and three characters (NTRF, NMSC, FCHG…).
    let references = rest.get(4..).ok_or_else(|| malformed("has no transaction type"))?;
    let (customer_reference, bank_reference) = match references.split_once("//") {
        Some((customer, bank)) => (customer.trim(), Some(bank.trim())),
        None => (references.trim(), None),
    };
    let bank_reference = bank_reference.filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("NONREF"));
    let mut description: String =
        information.map(|f| f.value.split('\n').map(str::trim_end).collect()).unwrap_or_default();
    if description.is_empty() {
        description = supplementary.unwrap_or_default().to_owned();
    }
    let description = description.trim().to_owned();
    let customer_reference =
        Some(customer_reference).filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("NONREF")).map(str::to_owned);
    let reference = bank_reference.map(str::to_owned).or(customer_reference);
    let key = LineKey {
        account,
        booked_on,
        amount,
        direction,
        description: &description,
        bank_reference: reference.as_deref(),
    };
    let line_id = ids.assign(bank_reference, key, &location)?;
    Ok(StatementLine {
        line_id,
        account_number: account.to_owned(),
        booked_on,
        value_date: Some(value_date),
        amount,
        direction,
        description,
        bank_reference: reference,
        counterparty_name: None,
        counterparty_account: None,
    })
}
