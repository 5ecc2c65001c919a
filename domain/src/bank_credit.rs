//! Money seen arriving on a collection account, and what became of it.
//!
//! Every intermediary (SePay, Casso, payOS, VNPAY) reports a credit in its own format; adapters
//! normalise them to one [`BankCredit`]. Each credit has its own stream, keyed by the provider's
//! duplicate key, and a small lifecycle: observed, then matched to a case automatically, or left
//! unmatched for a person to assign to a case or to mark for refund. Money is never dropped.
//!
//! Matching is done here, as pure functions over the transfer text: an exact payment reference
//! first, then any case code found in the text with a tolerant pattern (banks add prefixes,
//! drop or change punctuation, change case).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case_fees::PaymentChannel;
use crate::codes::{AgencyCode, CaseCode, match_key};
use crate::money::Vnd;

/// The intermediary that reported a credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Sepay,
    Casso,
    Payos,
    Vnpay,
}

impl Provider {
    pub const ALL: [Provider; 4] = [Provider::Sepay, Provider::Casso, Provider::Payos, Provider::Vnpay];

    /// The stable lower-case name stored with every credit (`"sepay"`, `"casso"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sepay => "sepay",
            Provider::Casso => "casso",
            Provider::Payos => "payos",
            Provider::Vnpay => "vnpay",
        }
    }

    /// How the citizen paid, as the counter's reports count it.
    pub fn channel(self) -> PaymentChannel {
        match self {
            // Bank-account watchers and VietQR links: a transfer from a banking app.
            Provider::Sepay | Provider::Casso | Provider::Payos => PaymentChannel::Vietqr,
            // A payment gateway, as the public service portal's payment platform uses.
            Provider::Vnpay => PaymentChannel::PaymentPlatform,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One credit to a collection account, as any provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankCredit {
    pub provider: Provider,
    /// The provider's own duplicate key; `(provider, provider_transaction_id)` is unique.
    /// SePay `id`, Casso `data.id`, payOS `paymentLinkId:reference`, VNPAY `vnp_TransactionNo`.
    pub provider_transaction_id: String,
    /// The bank's reference for the transfer, used by reconciliation against the statement.
    pub bank_reference: Option<String>,
    /// Whole đồng, always greater than zero.
    pub amount: Vnd,
    /// When the bank credited the account (providers send Vietnam local time; this is UTC).
    pub credited_at: DateTime<Utc>,
    /// The receiving account, when the provider says which.
    pub account_number: Option<String>,
    /// The virtual account the payer paid into; an empty string is `None`.
    pub virtual_account: Option<String>,
    /// The transfer content as the payer's bank delivered it.
    pub content: String,
    /// The reference the QR carried, when the provider reports it apart from the content.
    pub match_hint: Option<String>,
    pub payer_account: Option<String>,
    pub payer_name: Option<String>,
}

impl BankCredit {
    /// `sepay:92704`: the credit's id in the API and the suffix of its stream.
    pub fn credit_id(&self) -> String {
        credit_id(self.provider, &self.provider_transaction_id)
    }

    /// The key that makes this money count once as a case payment.
    pub fn payment_key(&self) -> String {
        self.credit_id()
    }

    /// The credit with its text made printable, so that no byte a bank sends can keep its
    /// money from being recorded: control characters mean nothing in a transfer's text, and
    /// PostgreSQL's jsonb cannot hold U+0000. Tabs and line breaks become spaces, the other
    /// control characters U+FFFD. The request's raw bytes stay in the inbox as they came.
    pub fn with_printable_text(self) -> Self {
        let optional = |text: Option<String>| text.map(printable);
        BankCredit {
            provider_transaction_id: printable(self.provider_transaction_id),
            bank_reference: optional(self.bank_reference),
            account_number: optional(self.account_number),
            virtual_account: optional(self.virtual_account),
            content: printable(self.content),
            match_hint: optional(self.match_hint),
            payer_account: optional(self.payer_account),
            payer_name: optional(self.payer_name),
            ..self
        }
    }
}

/// `text` without control characters (see [`BankCredit::with_printable_text`]).
pub fn printable(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

pub fn credit_id(provider: Provider, provider_transaction_id: &str) -> String {
    format!("{}:{}", provider.as_str(), provider_transaction_id)
}

// ---------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------

/// How a credit was tied to its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchMethod {
    /// The content (or the provider's order reference) is exactly a QR's payment reference.
    ExactReference,
    /// A case code was found inside the transfer text.
    CaseCodeInContent,
    /// A person assigned it from the unmatched queue.
    Manual,
}

/// The texts of a credit that may carry the reference, most specific first.
pub fn reference_texts(credit: &BankCredit) -> Vec<&str> {
    let mut texts: Vec<&str> = Vec::with_capacity(3);
    texts.extend(credit.match_hint.as_deref());
    texts.extend(credit.virtual_account.as_deref());
    texts.push(credit.content.as_str());
    texts
}

/// Every case code of one of `agencies` that appears in `text`, however the bank mangled its
/// punctuation or case: `"MBVCB.3278907687.h34 22 6-240426 0002.Thanh toan"` finds
/// `H34.22.6-240426-0002`. The agency's letters and digits must be followed by six digits that
/// form a real date and a four-digit sequence. When one agency's code is the tail of another's
/// (`H34` inside `000.00.00.H34`), only the longer, enclosing match counts. A code found twice
/// is listed once.
pub fn case_codes_in(text: &str, agencies: &[AgencyCode]) -> Vec<CaseCode> {
    let haystack = match_key(text);
    // (start, end) in the haystack, and the code.
    let mut found: Vec<(usize, usize, CaseCode)> = Vec::new();
    for agency in agencies {
        let needle = match_key(agency.as_str());
        if needle.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(offset) = haystack[from..].find(&needle) {
            let start = from + offset;
            from = start + 1;
            let tail = &haystack[start + needle.len()..];
            if tail.len() < 10 || !tail.as_bytes()[..10].iter().all(u8::is_ascii_digit) {
                continue;
            }
            if let Ok(code) = CaseCode::parse(&format!("{}-{}-{}", agency, &tail[..6], &tail[6..10])) {
                found.push((start, start + needle.len() + 10, code));
            }
        }
    }
    let enclosed = |(s, e, _): &(usize, usize, CaseCode)| {
        found.iter().any(|(os, oe, _)| os <= s && e <= oe && (oe - os) > (e - s))
    };
    let mut codes: Vec<CaseCode> = Vec::new();
    for candidate in found.iter().filter(|c| !enclosed(c)) {
        if !codes.contains(&candidate.2) {
            codes.push(candidate.2.clone());
        }
    }
    codes
}

// ---------------------------------------------------------------------------------------------
// The credit lifecycle
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankCreditObserved {
    pub credit: BankCredit,
    /// The agency whose collection account received it, when known from the account.
    pub agency_code: Option<AgencyCode>,
    pub observed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditMatched {
    pub case_code: CaseCode,
    pub payment_id: Uuid,
    pub method: MatchMethod,
    pub matched_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditUnmatched {
    pub agency_code: Option<AgencyCode>,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRefundRequested {
    pub reason: String,
    pub requested_by: String,
    pub at: DateTime<Utc>,
}

/// How refunded money went back to the payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundMethod {
    BankTransfer,
    Cash,
}

/// A credit marked for refund was paid back (issue 15): closes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRefunded {
    pub amount: Vnd,
    pub method: RefundMethod,
    /// The outgoing transfer's reference (or the cash voucher's number).
    pub reference: String,
    pub paid_on: NaiveDate,
    /// The debit line of the collection account's statement that paid it, when imported.
    pub statement_line_id: Option<String>,
    pub recorded_by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CreditEvent {
    BankCreditObserved(BankCreditObserved),
    CreditMatched(CreditMatched),
    CreditUnmatched(CreditUnmatched),
    CreditRefundRequested(CreditRefundRequested),
    CreditRefunded(CreditRefunded),
}

impl CreditEvent {
    pub const TYPES: &'static [&'static str] =
        &["BankCreditObserved", "CreditMatched", "CreditUnmatched", "CreditRefundRequested", "CreditRefunded"];

    pub fn event_type(&self) -> &'static str {
        match self {
            CreditEvent::BankCreditObserved(_) => "BankCreditObserved",
            CreditEvent::CreditMatched(_) => "CreditMatched",
            CreditEvent::CreditUnmatched(_) => "CreditUnmatched",
            CreditEvent::CreditRefundRequested(_) => "CreditRefundRequested",
            CreditEvent::CreditRefunded(_) => "CreditRefunded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CreditStatus {
    /// Recorded, not yet resolved (a moment between two steps, or a crash between them).
    Observed,
    Matched,
    Unmatched,
    RefundRequested,
    /// Paid back to the payer: closed.
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditState {
    pub observed: BankCreditObserved,
    pub status: CreditStatus,
    pub matched: Option<CreditMatched>,
    pub unmatched: Option<CreditUnmatched>,
    pub refund: Option<CreditRefundRequested>,
    pub refunded: Option<CreditRefunded>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditError {
    #[error("credit {0} is already matched to case {1}")]
    AlreadyMatched(String, CaseCode),
    #[error("credit {0} is already marked for refund")]
    RefundAlreadyRequested(String),
    #[error("a refund needs a reason")]
    MissingReason,
    #[error("credit {0} is not marked for refund; mark it first")]
    NotMarkedForRefund(String),
    #[error("credit {0} was already refunded")]
    AlreadyRefunded(String),
    #[error("a refund of {amount} dong is more than the {refundable} dong refundable on credit {credit_id}")]
    RefundTooLarge { credit_id: String, amount: Vnd, refundable: Vnd },
    #[error("a refund needs the outgoing transfer's reference")]
    MissingReference,
}

impl CreditState {
    /// Folds a credit stream; `None` before its first event.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a CreditEvent>) -> Option<CreditState> {
        let mut state: Option<CreditState> = None;
        for event in events {
            state = match (state, event) {
                (_, CreditEvent::BankCreditObserved(observed)) => Some(CreditState {
                    observed: observed.clone(),
                    status: CreditStatus::Observed,
                    matched: None,
                    unmatched: None,
                    refund: None,
                    refunded: None,
                }),
                (Some(mut s), CreditEvent::CreditMatched(m)) => {
                    s.status = CreditStatus::Matched;
                    s.matched = Some(m.clone());
                    Some(s)
                }
                (Some(mut s), CreditEvent::CreditUnmatched(u)) => {
                    s.status = CreditStatus::Unmatched;
                    s.unmatched = Some(u.clone());
                    Some(s)
                }
                (Some(mut s), CreditEvent::CreditRefundRequested(r)) => {
                    s.status = CreditStatus::RefundRequested;
                    s.refund = Some(r.clone());
                    Some(s)
                }
                (Some(mut s), CreditEvent::CreditRefunded(r)) => {
                    s.status = CreditStatus::Refunded;
                    s.refunded = Some(r.clone());
                    Some(s)
                }
                (None, _) => None,
            };
        }
        state
    }

    pub fn credit_id(&self) -> String {
        self.observed.credit.credit_id()
    }

    /// Whether a person still has to decide what this money is for.
    pub fn awaits_decision(&self) -> bool {
        matches!(self.status, CreditStatus::Observed | CreditStatus::Unmatched)
    }

    /// Tying the credit to a case, once.
    pub fn decide_match(&self, matched: CreditMatched) -> Result<Vec<CreditEvent>, CreditError> {
        match (&self.status, &self.matched) {
            (CreditStatus::Matched, Some(existing)) if existing.case_code == matched.case_code => Ok(Vec::new()),
            (CreditStatus::Matched, Some(existing)) => {
                Err(CreditError::AlreadyMatched(self.credit_id(), existing.case_code.clone()))
            }
            (CreditStatus::RefundRequested | CreditStatus::Refunded, _) => {
                Err(CreditError::RefundAlreadyRequested(self.credit_id()))
            }
            _ => Ok(vec![CreditEvent::CreditMatched(matched)]),
        }
    }

    /// Leaving it for a person, once.
    pub fn decide_unmatched(&self, unmatched: CreditUnmatched) -> Vec<CreditEvent> {
        if self.status == CreditStatus::Observed { vec![CreditEvent::CreditUnmatched(unmatched)] } else { Vec::new() }
    }

    /// Marking money that belongs to no case for refund to the payer.
    pub fn decide_refund(&self, request: CreditRefundRequested) -> Result<Vec<CreditEvent>, CreditError> {
        if request.reason.trim().is_empty() {
            return Err(CreditError::MissingReason);
        }
        match (&self.status, &self.matched) {
            (CreditStatus::Matched, Some(existing)) => {
                Err(CreditError::AlreadyMatched(self.credit_id(), existing.case_code.clone()))
            }
            (CreditStatus::RefundRequested | CreditStatus::Refunded, _) => {
                Err(CreditError::RefundAlreadyRequested(self.credit_id()))
            }
            _ => Ok(vec![CreditEvent::CreditRefundRequested(request)]),
        }
    }

    /// What may still be paid back: the whole credit, once marked for refund and not yet paid.
    pub fn refundable(&self) -> Vnd {
        if self.status == CreditStatus::RefundRequested { self.observed.credit.amount } else { Vnd::ZERO }
    }

    /// Recording the refund paid: only of a credit marked for refund, at most its amount, once.
    /// The refund closes the credit (a smaller amount, e.g. the bank's transfer fee kept back, is
    /// recorded as it was paid).
    pub fn decide_refunded(&self, refunded: CreditRefunded) -> Result<Vec<CreditEvent>, CreditError> {
        match self.status {
            CreditStatus::Refunded => return Err(CreditError::AlreadyRefunded(self.credit_id())),
            CreditStatus::RefundRequested => {}
            _ => return Err(CreditError::NotMarkedForRefund(self.credit_id())),
        }
        if refunded.reference.trim().is_empty() {
            return Err(CreditError::MissingReference);
        }
        let refundable = self.refundable();
        if refunded.amount > refundable {
            return Err(CreditError::RefundTooLarge {
                credit_id: self.credit_id(),
                amount: refunded.amount,
                refundable,
            });
        }
        Ok(vec![CreditEvent::CreditRefunded(refunded)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agencies() -> Vec<AgencyCode> {
        ["H34.22.6", "H34.22.7", "000.00.00.H34"].iter().map(|a| AgencyCode::parse(a).unwrap()).collect()
    }

    fn codes(text: &str) -> Vec<String> {
        case_codes_in(text, &agencies()).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_case_code_is_found_however_the_bank_mangled_it() {
        for text in [
            "H34.22.6-240426-0002",
            "MBVCB.3278907687.H34.22.6-240426-0002.Thanh toan le phi",
            "thanh toan le phi cho ho so h34.22.6-240426-0002",
            "IBFT H34226 240426 0002",
            "H34-22-6-240426-0002 CT tu 0123456789",
            "TT LP H342262404260002",
        ] {
            assert_eq!(codes(text), ["H34.22.6-240426-0002"], "{text:?}");
        }
    }

    #[test]
    fn impossible_dates_short_sequences_and_unrelated_text_are_not_case_codes() {
        assert!(codes("H34.22.6-241399-0002").is_empty(), "month 13");
        assert!(codes("H34.22.6-240426-02").is_empty(), "short sequence");
        assert!(codes("chuyen tien mua iphone").is_empty());
    }

    #[test]
    fn an_agency_code_inside_a_longer_one_yields_only_the_longer_agencys_case() {
        let agencies = [AgencyCode::parse("H34").unwrap(), AgencyCode::parse("000.00.00.H34").unwrap()];
        let found = case_codes_in("TT 000.00.00.H34-240426-0001", &agencies);
        assert_eq!(found.iter().map(ToString::to_string).collect::<Vec<_>>(), ["000.00.00.H34-240426-0001"]);
    }

    #[test]
    fn two_cases_in_one_transfer_are_both_found() {
        assert_eq!(
            codes("H34.22.6-240426-0002 va H34.22.7-240426-0001"),
            ["H34.22.6-240426-0002", "H34.22.7-240426-0001"]
        );
    }

    #[test]
    fn given_a_credit_marked_for_refund_when_the_refund_is_paid_then_it_closes_once_and_never_above_its_amount() {
        let credit = BankCredit {
            provider: Provider::Sepay,
            provider_transaction_id: "911".into(),
            bank_reference: None,
            amount: Vnd::new(50_000).unwrap(),
            credited_at: Utc::now(),
            account_number: None,
            virtual_account: None,
            content: "nham tai khoan".into(),
            match_hint: None,
            payer_account: None,
            payer_name: None,
        };
        let observed =
            CreditEvent::BankCreditObserved(BankCreditObserved { credit, agency_code: None, observed_at: Utc::now() });
        let paid = |dong: i64| CreditRefunded {
            amount: Vnd::new(dong).unwrap(),
            method: RefundMethod::BankTransfer,
            reference: "FT26328000111".into(),
            paid_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            statement_line_id: None,
            recorded_by: "finance".into(),
            at: Utc::now(),
        };
        // given an unmatched credit: not marked, so not refundable
        let state = CreditState::fold([&observed]).unwrap();
        assert_eq!(state.decide_refunded(paid(50_000)), Err(CreditError::NotMarkedForRefund("sepay:911".into())));
        // given it marked for refund
        let marked = CreditEvent::CreditRefundRequested(CreditRefundRequested {
            reason: "x".into(),
            requested_by: "f".into(),
            at: Utc::now(),
        });
        let state = CreditState::fold([&observed, &marked]).unwrap();
        assert_eq!(state.refundable(), Vnd::new(50_000).unwrap());
        // when more than refundable is paid: refused
        assert!(matches!(state.decide_refunded(paid(50_001)), Err(CreditError::RefundTooLarge { .. })));
        assert_eq!(
            state.decide_refunded(CreditRefunded { reference: " ".into(), ..paid(50_000) }),
            Err(CreditError::MissingReference)
        );
        // when it is paid: one event, and the credit is closed
        let events = state.decide_refunded(paid(50_000)).unwrap();
        assert!(
            matches!(events.as_slice(), [CreditEvent::CreditRefunded(r)] if r.amount == Vnd::new(50_000).unwrap()),
            "{events:?}"
        );
        let closed = CreditState::fold([&observed, &marked, &events[0]]).unwrap();
        assert_eq!(closed.status, CreditStatus::Refunded);
        assert_eq!(closed.refundable(), Vnd::ZERO);
        assert_eq!(closed.decide_refunded(paid(1)), Err(CreditError::AlreadyRefunded("sepay:911".into())));
        assert!(
            closed
                .decide_match(CreditMatched {
                    case_code: CaseCode::parse("H34.22.6-240426-0002").unwrap(),
                    payment_id: Uuid::nil(),
                    method: MatchMethod::Manual,
                    matched_at: Utc::now(),
                })
                .is_err()
        );
    }

    #[test]
    fn a_matched_credit_cannot_be_refunded_or_matched_elsewhere() {
        let credit = BankCredit {
            provider: Provider::Sepay,
            provider_transaction_id: "92704".into(),
            bank_reference: None,
            amount: Vnd::new(3000).unwrap(),
            credited_at: Utc::now(),
            account_number: None,
            virtual_account: None,
            content: String::new(),
            match_hint: None,
            payer_account: None,
            payer_name: None,
        };
        let observed =
            CreditEvent::BankCreditObserved(BankCreditObserved { credit, agency_code: None, observed_at: Utc::now() });
        let matched = CreditMatched {
            case_code: CaseCode::parse("H34.22.6-240426-0002").unwrap(),
            payment_id: Uuid::nil(),
            method: MatchMethod::ExactReference,
            matched_at: Utc::now(),
        };
        let state = CreditState::fold([&observed, &CreditEvent::CreditMatched(matched.clone())]).unwrap();
        assert!(state.decide_match(matched.clone()).unwrap().is_empty(), "matching again is a no-op");
        let elsewhere = CreditMatched { case_code: CaseCode::parse("H34.22.6-240426-0003").unwrap(), ..matched };
        assert!(state.decide_match(elsewhere).is_err());
        let refund = CreditRefundRequested { reason: "x".into(), requested_by: "f".into(), at: Utc::now() };
        assert!(state.decide_refund(refund).is_err());
        assert!(!state.awaits_decision());
    }
}
