//! ISO 20022 camt.053 `BankToCustomerStatement`, versions .001.02 to .001.08.
//!
//! The file is read with quick-xml's event reader into a small element tree (local names only,
//! so any namespace or prefix works), then the statement is taken from
//! `Document/BkToCstmrStmt/Stmt`. Only booked entries (`Sts` = `BOOK`, or `Sts/Cd` in .08) become
//! lines. A document type declaration is refused outright, so no entity can be defined or
//! expanded; only the five predefined entities and character references are understood.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use feeledger_domain::money::Vnd;
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use super::{
    Direction, LineIds, LineKey, Location, Statement, StatementError, StatementLine, VIETNAM, decode_utf8,
    parse_decimal_dong,
};

/// Deeper nesting than any camt.053 needs (about 12 levels) is refused rather than followed.
const MAX_DEPTH: usize = 64;
const ISO_DATE: &str = "YYYY-MM-DD";
const ISO_DATE_TIME: &str = "YYYY-MM-DDThh:mm:ss, optionally with fractions and Z or ±hh:mm";

pub(super) fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
    let text = decode_utf8(bytes)?;
    let root = read_tree(text)?;
    let document = Node::root(&root);
    if root.name != "Document" {
        return Err(StatementError::Unsupported {
            at: document.location(),
            detail: format!("the root element is {:?}, not \"Document\" (an ISO 20022 camt.053 file)", root.name),
        });
    }
    let message = document.child("BkToCstmrStmt").ok_or_else(|| StatementError::Unsupported {
        at: document.location(),
        detail: match root.children.first() {
            Some(first) => format!("expected BkToCstmrStmt (camt.053), found {}", first.name),
            None => "expected BkToCstmrStmt (camt.053), found nothing".to_owned(),
        },
    })?;
    let statements = message.children("Stmt");
    if statements.is_empty() {
        return Err(StatementError::Missing { at: message.location(), field: "Stmt" });
    }

    let mut result = Statement {
        account_number: String::new(),
        statement_id: None,
        from: None,
        to: None,
        opening_balance: None,
        closing_balance: None,
        lines: Vec::new(),
    };
    let mut statement_ids: Vec<String> = Vec::new();
    let mut first_account: Option<Location> = None;
    let mut ids = LineIds::default();
    for stmt in &statements {
        let (account, account_at) = account(stmt)?;
        match &first_account {
            None => {
                result.account_number.clone_from(&account);
                first_account = Some(account_at);
            }
            Some(first_at) if account != result.account_number => {
                return Err(StatementError::AccountMismatch {
                    at: account_at,
                    found: account,
                    expected: result.account_number,
                    first_at: first_at.clone(),
                });
            }
            Some(_) => {}
        }
        if let Some(id) = stmt.child_text("Id")
            && !statement_ids.iter().any(|known| known == id)
        {
            statement_ids.push(id.to_owned());
        }
        if let Some(period) = stmt.child("FrToDt") {
            if let Some(from) = period.child("FrDtTm") {
                let from = date_time(&from, "FrDtTm")?;
                result.from = Some(result.from.map_or(from, |known| known.min(from)));
            }
            if let Some(to) = period.child("ToDtTm") {
                let to = date_time(&to, "ToDtTm")?;
                result.to = Some(result.to.map_or(to, |known| known.max(to)));
            }
        }
        for entry in stmt.children("Ntry") {
            read_entry(&entry, &account, &mut ids, &mut result.lines)?;
        }
        // Balances: the first statement's opening booked balance (OPBD, or PRCD, the previous
        // closing), the last one's closing booked balance (CLBD).
        for balance in stmt.children("Bal") {
            let code = balance.find(&["Tp", "CdOrPrtry", "Cd"]).and_then(|c| c.text()).unwrap_or_default();
            let is_opening = matches!(code, "OPBD" | "PRCD");
            if !is_opening && code != "CLBD" {
                continue;
            }
            let amount = balance.require("Amt")?;
            let dong = match vnd_amount(&amount, "the balance") {
                Ok(v) => v.dong(),
                Err(StatementError::Amount { problem: super::AmountProblem::Zero, .. }) => 0,
                Err(e) => return Err(e),
            };
            let signed = if credit_or_debit(&balance)? == Some(Direction::Debit) { -dong } else { dong };
            if is_opening {
                if result.opening_balance.is_none() {
                    result.opening_balance = Some(signed);
                }
            } else {
                result.closing_balance = Some(signed);
            }
        }
    }
    if !statement_ids.is_empty() {
        result.statement_id = Some(statement_ids.join(", "));
    }
    Ok(result)
}

/// `Acct/Id/IBAN` or `Acct/Id/Othr/Id`; a stated account currency must be VND.
fn account(stmt: &Node<'_>) -> Result<(String, Location), StatementError> {
    let acct = stmt.require("Acct")?;
    if let Some(currency) = acct.child("Ccy")
        && currency.text() != Some("VND")
    {
        return Err(StatementError::Unsupported {
            at: currency.location(),
            detail: format!(
                "the account currency is {:?}; only VND collection accounts are supported",
                currency.text().unwrap_or_default()
            ),
        });
    }
    let id = acct
        .find(&["Id", "IBAN"])
        .and_then(|n| n.text().map(|t| (t, n.location())))
        .or_else(|| acct.find(&["Id", "Othr", "Id"]).and_then(|n| n.text().map(|t| (t, n.location()))));
    match id {
        Some((id, at)) => Ok((id.to_owned(), at)),
        None => Err(StatementError::Missing { at: acct.location(), field: "Id/IBAN or Id/Othr/Id" }),
    }
}

fn read_entry(
    entry: &Node<'_>,
    account: &str,
    ids: &mut LineIds,
    lines: &mut Vec<StatementLine>,
) -> Result<(), StatementError> {
    let status = entry.require("Sts")?;
    let status_code = status.child_text("Cd").or_else(|| status.child_text("Prtry")).or_else(|| status.text());
    if status_code != Some("BOOK") {
        // Pending (PDNG), information-only (INFO) and future (FUTR) entries are not on the books.
        return Ok(());
    }

    let entry_ref = entry.child_text("AcctSvcrRef").or_else(|| entry.child_text("NtryRef"));
    let label = match entry_ref {
        Some(reference) => format!("{reference:?}"),
        None => "without a reference".to_owned(),
    };
    let amount = vnd_amount(&entry.require("Amt")?, &label)?;
    let direction =
        credit_or_debit(entry)?.ok_or(StatementError::Missing { at: entry.location(), field: "CdtDbtInd" })?;
    let booked_on = date_choice(&entry.require("BookgDt")?)?;
    let value_date = entry.child("ValDt").map(|v| date_choice(&v)).transpose()?;
    let entry_info = entry.child_text("AddtlNtryInf");

    let transactions: Vec<Node<'_>> =
        entry.children("NtryDtls").iter().flat_map(|details| details.children("TxDtls")).collect();

    if transactions.len() <= 1 {
        let details = transactions.first().map(|tx| Details::of(tx, direction, entry_info));
        let details = details.unwrap_or_else(|| Details::without_transaction(entry_info));
        let key = LineKey {
            account,
            booked_on,
            amount,
            direction,
            description: &details.description,
            bank_reference: details.bank_reference.as_deref(),
        };
        let line_id = ids.assign(entry_ref, key, &entry.location())?;
        lines.push(details.into_line(line_id, account, booked_on, value_date, amount, direction));
        return Ok(());
    }

    // A batch booking: one line per transaction, each with its own amount.
    let mut parts = Vec::with_capacity(transactions.len());
    let mut total = Vnd::ZERO;
    for tx in &transactions {
        let tx_amount = tx
            .find(&["AmtDtls", "TxAmt", "Amt"])
            .or_else(|| tx.child("Amt"))
            .ok_or(StatementError::Missing { at: tx.location(), field: "AmtDtls/TxAmt/Amt or Amt" })?;
        let tx_amount = vnd_amount(&tx_amount, &label)?;
        if let Some(tx_direction) = credit_or_debit(tx)?
            && tx_direction != direction
        {
            return Err(StatementError::Inconsistent {
                at: tx.location(),
                detail: format!("CdtDbtInd of the transaction ({tx_direction}) differs from its entry ({direction})"),
            });
        }
        total = total.checked_add(tx_amount).map_err(|_| StatementError::Inconsistent {
            at: tx.location(),
            detail: "the transaction amounts add up to more than the ledger's maximum".to_owned(),
        })?;
        parts.push((tx.location(), tx_amount, Details::of(tx, direction, entry_info)));
    }
    if total != amount {
        return Err(StatementError::Inconsistent {
            at: entry.location(),
            detail: format!(
                "the {} transactions (TxDtls) add up to {} VND but the entry amount is {} VND",
                parts.len(),
                total.dong(),
                amount.dong()
            ),
        });
    }
    let description = parts.iter().map(|(_, _, d)| d.description.as_str()).collect::<Vec<_>>().join("\n");
    let references: Vec<&str> = parts.iter().filter_map(|(_, _, d)| d.bank_reference.as_deref()).collect();
    let references = references.join("\n");
    let key = LineKey {
        account,
        booked_on,
        amount,
        direction,
        description: &description,
        bank_reference: (!references.is_empty()).then_some(references.as_str()),
    };
    let base = ids.assign(entry_ref, key, &entry.location())?;
    for (index, (at, tx_amount, details)) in parts.into_iter().enumerate() {
        let line_id = ids.claim(format!("{base}/{}", index + 1), &at)?;
        lines.push(details.into_line(line_id, account, booked_on, value_date, tx_amount, direction));
    }
    Ok(())
}

/// What a transaction (`TxDtls`) says about the payment.
#[derive(Debug)]
struct Details {
    description: String,
    bank_reference: Option<String>,
    counterparty_name: Option<String>,
    counterparty_account: Option<String>,
}

impl Details {
    fn without_transaction(entry_info: Option<&str>) -> Details {
        Details {
            description: entry_info.unwrap_or_default().to_owned(),
            bank_reference: None,
            counterparty_name: None,
            counterparty_account: None,
        }
    }

    fn of(tx: &Node<'_>, direction: Direction, entry_info: Option<&str>) -> Details {
        let remittance = tx.children("RmtInf");
        let unstructured: Vec<&str> =
            remittance.iter().flat_map(|r| r.children("Ustrd")).filter_map(|u| u.text()).collect();
        let structured: Vec<&str> = remittance
            .iter()
            .flat_map(|r| r.children("Strd"))
            .flat_map(|s| s.children("CdtrRefInf"))
            .filter_map(|c| c.child_text("Ref"))
            .collect();
        let description = if !unstructured.is_empty() {
            unstructured.join(" ")
        } else if !structured.is_empty() {
            structured.join(" ")
        } else {
            tx.child_text("AddtlTxInf").or(entry_info).unwrap_or_default().to_owned()
        };
        let bank_reference = tx
            .find(&["Refs", "EndToEndId"])
            .and_then(|n| n.text())
            .filter(|r| *r != "NOTPROVIDED")
            .or_else(|| tx.find(&["Refs", "AcctSvcrRef"]).and_then(|n| n.text()))
            .map(str::to_owned);
        // The other party: who paid for a credit, who was paid for a debit.
        let (party, party_account) = match direction {
            Direction::Credit => ("Dbtr", "DbtrAcct"),
            Direction::Debit => ("Cdtr", "CdtrAcct"),
        };
        let parties = tx.child("RltdPties");
        let counterparty_name = parties
            .as_ref()
            .and_then(|p| p.find(&[party, "Nm"]).or_else(|| p.find(&[party, "Pty", "Nm"])))
            .and_then(|n| n.text().map(str::to_owned));
        let counterparty_account = parties
            .as_ref()
            .and_then(|p| {
                p.find(&[party_account, "Id", "Othr", "Id"]).or_else(|| p.find(&[party_account, "Id", "IBAN"]))
            })
            .and_then(|n| n.text().map(str::to_owned));
        Details { description, bank_reference, counterparty_name, counterparty_account }
    }

    fn into_line(
        self,
        line_id: String,
        account: &str,
        booked_on: NaiveDate,
        value_date: Option<NaiveDate>,
        amount: Vnd,
        direction: Direction,
    ) -> StatementLine {
        StatementLine {
            line_id,
            account_number: account.to_owned(),
            booked_on,
            value_date,
            amount,
            direction,
            description: self.description,
            bank_reference: self.bank_reference,
            counterparty_name: self.counterparty_name,
            counterparty_account: self.counterparty_account,
        }
    }
}

/// An `Amt` element: `Ccy` must be VND and the value a whole number of đồng.
fn vnd_amount(amt: &Node<'_>, entry_label: &str) -> Result<Vnd, StatementError> {
    let currency =
        amt.attribute("Ccy").ok_or(StatementError::Missing { at: amt.location(), field: "Ccy attribute" })?;
    if currency != "VND" {
        return Err(StatementError::Currency {
            at: amt.location(),
            entry: entry_label.to_owned(),
            currency: currency.to_owned(),
        });
    }
    let text = amt.text().ok_or(StatementError::Missing { at: amt.location(), field: "amount" })?;
    parse_decimal_dong(text).map_err(|problem| StatementError::Amount {
        at: amt.location(),
        value: text.to_owned(),
        problem,
    })
}

/// `CdtDbtInd`: `CRDT` or `DBIT`; `None` when the element is absent.
fn credit_or_debit(node: &Node<'_>) -> Result<Option<Direction>, StatementError> {
    let Some(indicator) = node.child("CdtDbtInd") else { return Ok(None) };
    match indicator.text() {
        Some("CRDT") => Ok(Some(Direction::Credit)),
        Some("DBIT") => Ok(Some(Direction::Debit)),
        other => Err(StatementError::Direction {
            at: indicator.location(),
            value: other.unwrap_or_default().to_owned(),
            expected: "CRDT or DBIT",
        }),
    }
}

/// A `DateAndDateTimeChoice` (`BookgDt`, `ValDt`): `Dt`, or `DtTm` taken as a Vietnam day.
fn date_choice(choice: &Node<'_>) -> Result<NaiveDate, StatementError> {
    if let Some(dt) = choice.child("Dt") {
        let text = dt.text().unwrap_or_default();
        return iso_date(text).ok_or_else(|| StatementError::Date {
            at: dt.location(),
            field: "Dt",
            value: text.to_owned(),
            expected: ISO_DATE,
        });
    }
    if let Some(dt_tm) = choice.child("DtTm") {
        return date_time(&dt_tm, "DtTm");
    }
    Err(StatementError::Missing { at: choice.location(), field: "Dt or DtTm" })
}

/// `xs:date`: `YYYY-MM-DD`, possibly with a time zone suffix, which does not change the day.
fn iso_date(text: &str) -> Option<NaiveDate> {
    let (date, zone) = (text.get(..10)?, text.get(10..)?);
    let zone_ok = zone.is_empty() || zone == "Z" || is_offset(zone);
    let shape_ok = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !zone_ok || !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

fn is_offset(zone: &str) -> bool {
    let bytes = zone.as_bytes();
    bytes.len() == 6
        && (bytes[0] == b'+' || bytes[0] == b'-')
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
        && bytes[3] == b':'
        && bytes[4].is_ascii_digit()
        && bytes[5].is_ascii_digit()
}

/// An `xs:dateTime` as a Vietnam calendar day: with an offset or `Z` it is converted to UTC+7;
/// without one it is taken to be Vietnam time already.
fn date_time(node: &Node<'_>, field: &'static str) -> Result<NaiveDate, StatementError> {
    let text = node.text().unwrap_or_default();
    let with_offset = DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&VIETNAM).date_naive());
    let local = || NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.date());
    with_offset.or_else(local).ok_or_else(|| StatementError::DateTime {
        at: node.location(),
        field,
        value: text.to_owned(),
        expected: ISO_DATE_TIME,
    })
}

// ---------------------------------------------------------------------------------------------
// A small element tree.

#[derive(Debug)]
struct Element {
    /// Local name: without namespace prefix.
    name: String,
    /// Attributes by local name, unescaped.
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
    /// Line of the start tag.
    line: u64,
}

/// An element and its path from the root, for error messages.
#[derive(Debug, Clone)]
struct Node<'a> {
    element: &'a Element,
    path: String,
}

impl<'a> Node<'a> {
    fn root(element: &'a Element) -> Node<'a> {
        Node { element, path: element.name.clone() }
    }

    fn location(&self) -> Location {
        Location::Xml { path: self.path.clone(), line: self.element.line }
    }

    /// The first child called `name`.
    fn child(&self, name: &str) -> Option<Node<'a>> {
        let siblings = self.element.children.iter().filter(|c| c.name == name).count();
        let element = self.element.children.iter().find(|c| c.name == name)?;
        let path = if siblings > 1 { format!("{}/{name}[1]", self.path) } else { format!("{}/{name}", self.path) };
        Some(Node { element, path })
    }

    /// All children called `name`, numbered from 1 in their paths when there are several.
    fn children(&self, name: &str) -> Vec<Node<'a>> {
        let matching: Vec<&'a Element> = self.element.children.iter().filter(|c| c.name == name).collect();
        let several = matching.len() > 1;
        matching
            .into_iter()
            .enumerate()
            .map(|(index, element)| {
                let mut path = format!("{}/{name}", self.path);
                if several {
                    let _ = write!(path, "[{}]", index + 1);
                }
                Node { element, path }
            })
            .collect()
    }

    fn require(&self, name: &'static str) -> Result<Node<'a>, StatementError> {
        self.child(name).ok_or(StatementError::Missing { at: self.location(), field: name })
    }

    fn find(&self, path: &[&str]) -> Option<Node<'a>> {
        let mut node = self.clone();
        for name in path {
            node = node.child(name)?;
        }
        Some(node)
    }

    /// The trimmed text, if not empty.
    fn text(&self) -> Option<&'a str> {
        Some(self.element.text.trim()).filter(|t| !t.is_empty())
    }

    fn child_text(&self, name: &str) -> Option<&'a str> {
        self.element
            .children
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| Some(c.text.trim()).filter(|t| !t.is_empty()))
    }

    fn attribute(&self, name: &str) -> Option<&'a str> {
        self.element.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim())
    }
}

/// Turns byte offsets into line numbers, scanning the text once from front to back.
#[derive(Debug)]
struct Lines<'a> {
    text: &'a str,
    offset: usize,
    line: u64,
}

impl Lines<'_> {
    fn at(&mut self, position: u64) -> u64 {
        let position = usize::try_from(position).unwrap_or(usize::MAX).min(self.text.len());
        if position < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        let newlines = self.text.as_bytes()[self.offset..position].iter().filter(|b| **b == b'\n').count();
        self.line += u64::try_from(newlines).unwrap_or(u64::MAX);
        self.offset = position;
        self.line
    }
}

fn read_tree(text: &str) -> Result<Element, StatementError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut lines = Lines { text, offset: 0, line: 1 };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let malformed = |line: u64, detail: String| StatementError::Malformed { at: Location::Line(line), detail };

    loop {
        let start = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(error) => {
                let line = lines.at(reader.error_position());
                return Err(malformed(line, format!("not well-formed XML: {error}")));
            }
        };
        let line = lines.at(start);
        match event {
            Event::DocType(_) => {
                return Err(StatementError::Unsupported {
                    at: Location::Line(line),
                    detail: "the XML has a DOCTYPE declaration; statements with a document type (and so \
                             custom entities) are refused"
                        .to_owned(),
                });
            }
            Event::Decl(declaration) => {
                if let Some(Ok(encoding)) = declaration.encoding()
                    && !encoding.eq_ignore_ascii_case(b"UTF-8")
                {
                    return Err(StatementError::Unsupported {
                        at: Location::Line(line),
                        detail: format!(
                            "the XML declares encoding {:?}; only UTF-8 is accepted",
                            String::from_utf8_lossy(&encoding)
                        ),
                    });
                }
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(line, format!("elements are nested more than {MAX_DEPTH} deep")));
                }
                stack.push(element(&start, line, &reader)?);
            }
            Event::Empty(start) => {
                let empty = element(&start, line, &reader)?;
                attach(&mut stack, &mut root, empty, line)?;
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(malformed(line, "a closing tag has no opening tag".to_owned()));
                };
                attach(&mut stack, &mut root, done, line)?;
            }
            Event::Text(content) => {
                let content = content.xml10_content().map_err(|e| malformed(line, format!("bad text: {e}")))?;
                push_text(&mut stack, &content, line)?;
            }
            Event::CData(content) => {
                let content = content.xml10_content().map_err(|e| malformed(line, format!("bad CDATA: {e}")))?;
                push_text(&mut stack, &content, line)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => {
                        let name = reference.decode().map_err(|e| malformed(line, format!("bad reference: {e}")))?;
                        match resolve_predefined_entity(&name) {
                            Some(value) => value.to_owned(),
                            None => {
                                return Err(malformed(
                                    line,
                                    format!("unknown entity &{name}; (only &amp; &lt; &gt; &quot; &apos; are allowed)"),
                                ));
                            }
                        }
                    }
                    Err(error) => return Err(malformed(line, format!("bad character reference: {error}"))),
                };
                push_text(&mut stack, &resolved, line)?;
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(lines.at(u64::MAX), format!("the file ends inside <{}>", open.name)));
    }
    root.ok_or_else(|| malformed(1, "the file has no XML element".to_owned()))
}

fn element(start: &BytesStart<'_>, line: u64, reader: &Reader<&[u8]>) -> Result<Element, StatementError> {
    let bad = |detail: String| StatementError::Malformed { at: Location::Line(line), detail };
    let name = String::from_utf8(start.local_name().as_ref().to_vec())
        .map_err(|_| bad("an element name is not UTF-8".to_owned()))?;
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| bad(format!("bad attribute in <{name}>: {e}")))?;
        let key = String::from_utf8(attribute.key.local_name().as_ref().to_vec())
            .map_err(|_| bad(format!("an attribute name in <{name}> is not UTF-8")))?;
        let value = attribute
            .decode_and_unescape_value(reader.decoder())
            .map_err(|e| bad(format!("bad value of attribute {key} in <{name}>: {e}")))?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element { name, attributes, text: String::new(), children: Vec::new(), line })
}

fn attach(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
    line: u64,
) -> Result<(), StatementError> {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(element);
        Ok(())
    } else if root.is_none() {
        *root = Some(element);
        Ok(())
    } else {
        Err(StatementError::Malformed { at: Location::Line(line), detail: "a second root element".to_owned() })
    }
}

fn push_text(stack: &mut [Element], content: &str, line: u64) -> Result<(), StatementError> {
    match stack.last_mut() {
        Some(open) => {
            open.text.push_str(content);
            Ok(())
        }
        None if content.trim().is_empty() => Ok(()),
        None => Err(StatementError::Malformed {
            at: Location::Line(line),
            detail: "text outside the root element".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AmountProblem, StatementFormat, parse as parse_statement};
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn vnd(dong: i64) -> Vnd {
        Vnd::new(dong).expect("valid amount")
    }

    /// A minimal camt.053.001.02 document; the entries start on line 7.
    fn document(entries: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\">\n\
             <BkToCstmrStmt>\n\
             <Stmt>\n\
             <Id>S1</Id>\n\
             <Acct><Id><Othr><Id>0451000456789</Id></Othr></Id></Acct>\n\
             {entries}\
             </Stmt>\n\
             </BkToCstmrStmt>\n\
             </Document>\n"
        )
    }

    /// One booked entry on one line.
    fn entry(amount: &str, more: &str) -> String {
        format!(
            "<Ntry><Amt Ccy=\"VND\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><Dt>2024-04-26</Dt></BookgDt>{more}</Ntry>\n"
        )
    }

    fn error(xml: &str) -> String {
        match parse_statement(StatementFormat::Camt053, xml.as_bytes()) {
            Ok(statement) => panic!("expected an error, parsed {statement:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_camt053_001_02_statement_parses_to_the_expected_lines() {
        let statement = parse(&fixture("camt053_001_02.xml")).expect("fixture parses");
        assert_eq!(statement.account_number, "0451000456789");
        assert_eq!(statement.statement_id.as_deref(), Some("0451000456789-20240426"));
        assert_eq!((statement.from, statement.to), (Some(day(2024, 4, 26)), Some(day(2024, 4, 26))));
        assert_eq!(statement.lines.len(), 4, "the pending entry is left out");

        let napas = &statement.lines[0];
        assert_eq!(napas.line_id, "5213IBT1BJ4R9QXG", "AcctSvcrRef wins over NtryRef");
        assert_eq!(napas.amount, vnd(150_000));
        assert_eq!(napas.direction, Direction::Credit);
        assert_eq!(napas.booked_on, day(2024, 4, 26));
        assert_eq!(napas.value_date, Some(day(2024, 4, 26)));
        assert_eq!(napas.description, "MBVCB.3278907687.H34.22.6-240426-0002.Thanh toan le phi");
        assert_eq!(napas.bank_reference.as_deref(), Some("3278907687"));
        assert_eq!(napas.counterparty_name.as_deref(), Some("NGUYEN VAN AN"));
        assert_eq!(napas.counterparty_account.as_deref(), Some("0071000123456"));

        let two_lines = &statement.lines[1];
        assert_eq!(two_lines.amount, vnd(1_200_000), "\"1200000.00\" is accepted");
        assert_eq!(two_lines.description, "H34.22.6-240426-0005 nop phi tham dinh ho so Tran Thi Binh & Le Van Cường");
        assert_eq!(two_lines.bank_reference, None, "NOTPROVIDED is no reference");
        assert_eq!(two_lines.counterparty_name.as_deref(), Some("TRẦN THỊ BÌNH"));
        assert_eq!(two_lines.counterparty_account.as_deref(), Some("VN12BIDV0000019034567890"));

        let charge = &statement.lines[2];
        assert_eq!(charge.line_id, "3", "NtryRef when there is no AcctSvcrRef");
        assert_eq!(charge.direction, Direction::Debit);
        assert_eq!(charge.amount, vnd(11_000));
        assert_eq!(charge.description, "Phí dịch vụ SMS Banking tháng 04/2024");
        assert_eq!((charge.counterparty_name.as_deref(), charge.bank_reference.as_deref()), (None, None));

        let unreferenced = &statement.lines[3];
        assert!(unreferenced.line_id.starts_with("sha256:"));
        assert_eq!(unreferenced.booked_on, day(2024, 4, 26), "17:10 UTC on the 25th is the 26th in Vietnam");
        assert_eq!(unreferenced.value_date, None);
        assert_eq!(unreferenced.amount, vnd(50_000));
        assert_eq!(unreferenced.description, "IBFT H34.22.6-240426-0009 thanh toan phi");
        assert_eq!(unreferenced.counterparty_name.as_deref(), Some("LE VAN CUONG"));
    }

    #[test]
    fn a_camt053_001_08_statement_with_a_batch_entry_parses_to_the_expected_lines() {
        let statement = parse(&fixture("camt053_001_08.xml")).expect("fixture parses");
        assert_eq!(statement.account_number, "21510000778899");
        assert_eq!(statement.statement_id.as_deref(), Some("STMT-21510000778899-20240502"));
        assert_eq!((statement.from, statement.to), (Some(day(2024, 5, 2)), Some(day(2024, 5, 2))));

        let summary: Vec<(&str, i64, Direction, Option<&str>)> = statement
            .lines
            .iter()
            .map(|l| (l.line_id.as_str(), l.amount.dong(), l.direction, l.bank_reference.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("FT24123456789012", 200_000, Direction::Credit, Some("FT24123456789012")),
                ("20240502000002", 5_500, Direction::Debit, None),
                ("BT2405020000417/1", 150_000, Direction::Credit, Some("VNPAY14409321")),
                ("BT2405020000417/2", 200_000, Direction::Credit, Some("VNPAY14409388")),
                ("BT2405020000417/3", 100_000, Direction::Credit, Some("VNPAY14409402")),
                ("FT24123456790001", 2_000_000, Direction::Debit, Some("UNC-20240502-01")),
            ]
        );
        let first = &statement.lines[0];
        assert_eq!(first.booked_on, day(2024, 5, 2));
        assert_eq!(first.description, "H34.22.6-240502-0001 Le phi cap ban sao trich luc ho tich");
        assert_eq!(first.counterparty_name.as_deref(), Some("PHAM THI DUNG"), "Dbtr/Pty/Nm in .08");
        assert_eq!(first.counterparty_account.as_deref(), Some("19033344455566"));
        assert_eq!(statement.lines[1].description, "Phi chuyen tien lien ngan hang");

        let batch = &statement.lines[2..5];
        assert!(batch.iter().all(|l| l.booked_on == day(2024, 5, 2) && l.value_date == Some(day(2024, 5, 3))));
        assert_eq!(batch[0].description, "H34.22.6-240502-0003 le phi chung thuc");
        assert_eq!(batch[1].counterparty_name.as_deref(), Some("VU THI GIANG"));
        assert_eq!(batch[2].counterparty_name, None);

        let treasury = &statement.lines[5];
        assert_eq!(
            treasury.counterparty_name.as_deref(),
            Some("KHO BAC NHA NUOC YEN DUNG"),
            "a debit's party is the creditor"
        );
        assert_eq!(treasury.counterparty_account.as_deref(), Some("3511.0.1055432"));
    }

    #[test]
    fn the_opening_and_closing_booked_balances_are_read_and_must_add_up() {
        let bytes = fixture("camt053_001_02.xml");
        let statement = super::super::parse(super::super::StatementFormat::Camt053, &bytes).expect("parses");
        assert_eq!((statement.opening_balance, statement.closing_balance), (Some(15_000_000), Some(16_389_000)));
        let text = String::from_utf8(bytes).expect("utf-8").replace(">16389000<", ">16389001<");
        let error =
            super::super::parse(super::super::StatementFormat::Camt053, text.as_bytes()).expect_err("off by one");
        assert_eq!(
            error.to_string(),
            "file: the balances do not add up: opening balance 15000000 + credits 1400000 - debits 11000 = 16389000, but the closing balance is 16389001"
        );
    }

    #[test]
    fn a_non_vnd_entry_is_an_error_naming_the_entry() {
        let refused = parse(&fixture("camt053_001_08_usd_entry.xml")).expect_err("USD is refused");
        assert_eq!(
            refused.to_string(),
            "Document/BkToCstmrStmt/Stmt/Ntry[6]/Amt (line 124): entry \"FT24123456790077\" is in \"USD\", not VND; \
             a collection account statement must be all VND"
        );
        let xml = document(&entry("1000", "").replace("VND", "EUR"));
        assert_eq!(
            error(&xml),
            "Document/BkToCstmrStmt/Stmt/Ntry/Amt (line 7): entry without a reference is in \"EUR\", not VND; \
             a collection account statement must be all VND"
        );
    }

    #[test]
    fn a_fractional_camt_amount_is_rejected_with_its_path_and_line() {
        let xml = document(&format!("{}{}", entry("1000", ""), entry("150000.50", "")));
        assert_eq!(
            error(&xml),
            "Document/BkToCstmrStmt/Stmt/Ntry[2]/Amt (line 8): amount \"150000.50\" is not a whole number of dong"
        );
        for (amount, problem) in [
            ("-3", AmountProblem::Negative),
            ("abc", AmountProblem::NotANumber),
            ("1,000", AmountProblem::NotANumber),
            ("0.00", AmountProblem::Zero),
        ] {
            let result = parse(document(&entry(amount, "")).as_bytes());
            assert!(
                matches!(&result, Err(StatementError::Amount { problem: p, .. }) if *p == problem),
                "{amount}: {result:?}"
            );
        }
        let ok = parse(document(&entry("150000.0", "")).as_bytes()).expect("a zero fraction is whole");
        assert_eq!(ok.lines[0].amount, vnd(150_000));
    }

    #[test]
    fn a_doctype_is_rejected_so_no_entity_is_ever_expanded() {
        let billion_laughs = "<?xml version=\"1.0\"?>\n\
            <!DOCTYPE Document [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\n\
            <Document><BkToCstmrStmt><Stmt><Ntry><AddtlNtryInf>&lol2;</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>\n";
        assert_eq!(
            error(billion_laughs),
            "line 2: the XML has a DOCTYPE declaration; statements with a document type (and so custom entities) are refused"
        );
        let external = "<!DOCTYPE Document SYSTEM \"file:///etc/passwd\"><Document/>";
        assert!(error(external).contains("DOCTYPE"));
        let undeclared = document(&entry("1000", "<AddtlNtryInf>&nbsp;</AddtlNtryInf>"));
        assert_eq!(
            error(&undeclared),
            "line 7: unknown entity &nbsp; (only &amp; &lt; &gt; &quot; &apos; are allowed)"
        );
    }

    #[test]
    fn a_byte_order_mark_before_the_xml_is_stripped() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(document(&entry("1000", "")).as_bytes());
        assert_eq!(parse(&bytes).expect("parses").lines.len(), 1);
    }

    #[test]
    fn bad_dates_directions_and_missing_elements_are_rejected_precisely() {
        let bad_date = document(
            "<Ntry><Amt Ccy=\"VND\">1000</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><Dt>26/04/2024</Dt></BookgDt></Ntry>\n",
        );
        assert_eq!(
            error(&bad_date),
            "Document/BkToCstmrStmt/Stmt/Ntry/BookgDt/Dt (line 7): Dt \"26/04/2024\" is not a valid date (expected YYYY-MM-DD)"
        );
        let bad_time = document(
            "<Ntry><Amt Ccy=\"VND\">1000</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><DtTm>2024-04-26 10:00</DtTm></BookgDt></Ntry>\n",
        );
        assert!(error(&bad_time).starts_with(
            "Document/BkToCstmrStmt/Stmt/Ntry/BookgDt/DtTm (line 7): DtTm \"2024-04-26 10:00\" is not a valid date and time"
        ));
        let bad_direction = document(&entry("1000", "").replace("CRDT", "CREDIT"));
        assert_eq!(
            error(&bad_direction),
            "Document/BkToCstmrStmt/Stmt/Ntry/CdtDbtInd (line 7): direction \"CREDIT\" is not credit or debit (expected CRDT or DBIT)"
        );
        let no_booking_date =
            document("<Ntry><Amt Ccy=\"VND\">1000</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts></Ntry>\n");
        assert_eq!(error(&no_booking_date), "Document/BkToCstmrStmt/Stmt/Ntry (line 7): BookgDt is missing");
        let no_status = document("<Ntry><Amt Ccy=\"VND\">1000</Amt></Ntry>\n");
        assert_eq!(error(&no_status), "Document/BkToCstmrStmt/Stmt/Ntry (line 7): Sts is missing");
        let no_currency = document(&entry("1000", "").replace(" Ccy=\"VND\"", ""));
        assert_eq!(error(&no_currency), "Document/BkToCstmrStmt/Stmt/Ntry/Amt (line 7): Ccy attribute is missing");
        let no_account = document("").replace("<Acct><Id><Othr><Id>0451000456789</Id></Othr></Id></Acct>", "<Acct/>");
        assert_eq!(error(&no_account), "Document/BkToCstmrStmt/Stmt/Acct (line 6): Id/IBAN or Id/Othr/Id is missing");
    }

    #[test]
    fn dates_with_time_zones_become_vietnam_days() {
        assert_eq!(iso_date("2024-04-26"), Some(day(2024, 4, 26)));
        assert_eq!(iso_date("2024-04-26+07:00"), Some(day(2024, 4, 26)));
        assert_eq!(iso_date("2024-04-26Z"), Some(day(2024, 4, 26)));
        assert_eq!(iso_date("2024-4-26"), None);
        assert_eq!(iso_date("2024-04-31"), None);
        let booked = |time: &str| {
            let xml = document(&format!(
                "<Ntry><Amt Ccy=\"VND\">1000</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>\
                 <BookgDt><DtTm>{time}</DtTm></BookgDt></Ntry>\n"
            ));
            parse(xml.as_bytes()).map(|s| s.lines[0].booked_on)
        };
        assert_eq!(booked("2024-04-26T16:59:59Z"), Ok(day(2024, 4, 26)));
        assert_eq!(booked("2024-04-26T17:00:00Z"), Ok(day(2024, 4, 27)));
        assert_eq!(booked("2024-04-27T06:59:00+14:00"), Ok(day(2024, 4, 26)));
        assert_eq!(booked("2024-04-26T23:30:00"), Ok(day(2024, 4, 26)), "no offset: already Vietnam time");
    }

    #[test]
    fn pending_and_informational_entries_are_left_out() {
        let xml = document(&format!(
            "{}{}{}{}",
            entry("1000", "").replace("<Sts>BOOK</Sts>", "<Sts>PDNG</Sts>"),
            entry("2000", "").replace("<Sts>BOOK</Sts>", "<Sts><Cd>INFO</Cd></Sts>"),
            entry("3000", "").replace("<Sts>BOOK</Sts>", "<Sts><Cd>BOOK</Cd></Sts>"),
            // A pending entry is not checked further: it is not on the books.
            entry("4000.5", "").replace("<Sts>BOOK</Sts>", "<Sts>PDNG</Sts>"),
        ));
        let statement = parse(xml.as_bytes()).expect("parses");
        assert_eq!(statement.lines.iter().map(|l| l.amount.dong()).collect::<Vec<_>>(), vec![3000]);
    }

    #[test]
    fn identical_unreferenced_entries_and_batches_get_distinct_stable_ids() {
        let tx = |amount: &str, text: &str| {
            format!(
                "<TxDtls><AmtDtls><TxAmt><Amt Ccy=\"VND\">{amount}</Amt></TxAmt></AmtDtls>\
                 <RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls>"
            )
        };
        let batch =
            entry("3000", &format!("<NtryDtls>{}{}</NtryDtls>", tx("1000", "H34 le phi"), tx("2000", "H34 le phi")));
        let single = entry("1000", "<NtryDtls><TxDtls><RmtInf><Ustrd>H34 le phi</Ustrd></RmtInf></TxDtls></NtryDtls>");
        let xml = document(&format!("{single}{single}{batch}{batch}"));
        let first = parse(xml.as_bytes()).expect("parses");
        let second = parse(xml.as_bytes()).expect("parses");
        let ids: Vec<&str> = first.lines.iter().map(|l| l.line_id.as_str()).collect();
        assert_eq!(ids, second.lines.iter().map(|l| l.line_id.as_str()).collect::<Vec<_>>());
        assert_eq!(ids.len(), 6);
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 6, "{ids:?}");
        assert!(ids[2].starts_with("sha256:") && ids[2].ends_with("/1") && ids[3].ends_with("/2"));
        assert_eq!(ids[2].trim_end_matches("/1"), ids[3].trim_end_matches("/2"));
        assert_eq!(first.lines[3].amount, vnd(2000));
    }

    #[test]
    fn a_batch_whose_parts_do_not_add_up_is_rejected() {
        let tx = |amount: &str| {
            format!("<TxDtls><AmtDtls><TxAmt><Amt Ccy=\"VND\">{amount}</Amt></TxAmt></AmtDtls></TxDtls>")
        };
        let xml = document(&entry("3000", &format!("<NtryDtls>{}{}</NtryDtls>", tx("1000"), tx("1500"))));
        assert_eq!(
            error(&xml),
            "Document/BkToCstmrStmt/Stmt/Ntry (line 7): the 2 transactions (TxDtls) add up to 2500 VND but the entry amount is 3000 VND"
        );
        let no_amount = document(&entry("3000", "<NtryDtls><TxDtls/><TxDtls/></NtryDtls>"));
        assert_eq!(
            error(&no_amount),
            "Document/BkToCstmrStmt/Stmt/Ntry/NtryDtls/TxDtls[1] (line 7): AmtDtls/TxAmt/Amt or Amt is missing"
        );
    }

    #[test]
    fn other_messages_two_accounts_and_broken_xml_are_rejected() {
        let camt052 = "<Document><BkToCstmrAcctRpt><GrpHdr/></BkToCstmrAcctRpt></Document>";
        assert_eq!(error(camt052), "Document (line 1): expected BkToCstmrStmt (camt.053), found BkToCstmrAcctRpt");
        assert_eq!(
            error("<Invoice/>"),
            "Invoice (line 1): the root element is \"Invoice\", not \"Document\" (an ISO 20022 camt.053 file)"
        );
        let two_accounts = document("").replace(
            "</Stmt>\n",
            "</Stmt>\n<Stmt><Id>S2</Id><Acct><Id><IBAN>VN0000000000000000000000</IBAN></Id></Acct></Stmt>\n",
        );
        assert_eq!(
            error(&two_accounts),
            "Document/BkToCstmrStmt/Stmt[2]/Acct/Id/IBAN (line 8): account \"VN0000000000000000000000\" differs \
             from account \"0451000456789\" at Document/BkToCstmrStmt/Stmt[1]/Acct/Id/Othr/Id (line 6); a statement covers one account"
        );
        let mismatched = document(&entry("1000", "")).replace("</BookgDt>", "</BookingDate>");
        assert!(error(&mismatched).starts_with("line 7: not well-formed XML"), "{}", error(&mismatched));
        let truncated = &document(&entry("1000", ""))[..200];
        assert!(error(truncated).contains("not well-formed XML") || error(truncated).contains("ends inside"));
        let latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Document/>";
        assert_eq!(error(latin1), "line 1: the XML declares encoding \"ISO-8859-1\"; only UTF-8 is accepted");
        let usd_account = document("").replace("</Id></Acct>", "</Id><Ccy>USD</Ccy></Acct>");
        assert_eq!(
            error(&usd_account),
            "Document/BkToCstmrStmt/Stmt/Acct/Ccy (line 6): the account currency is \"USD\"; only VND collection accounts are supported"
        );
    }

    #[test]
    fn several_statements_for_the_same_account_are_merged() {
        let xml = document(&entry("1000", "")).replace(
            "</Stmt>\n",
            "</Stmt>\n<Stmt><Id>S2</Id><Acct><Id><Othr><Id>0451000456789</Id></Othr></Id></Acct>\
             <Ntry><Amt Ccy=\"VND\">2000</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><Dt>2024-04-27</Dt></BookgDt></Ntry></Stmt>\n",
        );
        let statement = parse(xml.as_bytes()).expect("parses");
        assert_eq!(statement.statement_id.as_deref(), Some("S1, S2"));
        assert_eq!(statement.lines.iter().map(|l| l.amount.dong()).collect::<Vec<_>>(), vec![1000, 2000]);
    }
}
