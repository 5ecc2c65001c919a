//! Daily reconciliation (đối soát): the payments the ledger recorded for an agency's collection
//! account on a Vietnamese calendar day, against the credits on the bank statement.
//!
//! Matching is 1:1, in two passes:
//! 1. **by reference**: the statement line carries the payment's bank reference (as its line id or
//!    its own reference), or names the payment's case in its description;
//! 2. **by amount**: what is left is paired by equal amount within [`DATE_WINDOW_DAYS`] days
//!    (transfers made late in the evening are often booked the next day).
//!
//! Everything else is an exception, on the side it was found: LEDGER_ONLY, BANK_ONLY,
//! AMOUNT_MISMATCH (a reference match whose amounts differ: an entry on each side), DUPLICATE (a
//! second payment or line claiming the same reference). So that finance can trust it, two
//! invariants hold exactly and are checked on every run:
//! `Σ ledger payments = Σ matched + Σ ledger-side exceptions`, and likewise for the bank side.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bank_credit::case_codes_in;
use crate::batch_matching::{BatchMatch, BatchRules, UnsettledDay, match_batches};
use crate::case_fees::PaymentChannel;
use crate::codes::{AgencyCode, CaseCode, match_key};
use crate::money::Vnd;

/// How far apart a payment's day and a line's booking day may be to pair them by amount.
pub const DATE_WINDOW_DAYS: i64 = 1;

/// A payment as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPayment {
    pub payment_id: Uuid,
    pub case_code: CaseCode,
    pub amount: Vnd,
    pub channel: PaymentChannel,
    /// The Vietnamese day it was received.
    pub received_on: NaiveDate,
    pub reference: String,
    pub bank_reference: Option<String>,
    /// The statement line an earlier reconciliation paired it with (a Reconciled event).
    pub reconciled_line_id: Option<String>,
}

impl LedgerPayment {
    /// Money that lands on the collection account one transfer at a time, and so appears on
    /// the bank statement line by line. Cash and card (POS) payments are deposited or settled
    /// in batches and are reported, not matched 1:1.
    pub fn credits_the_account(&self) -> bool {
        matches!(self.channel, PaymentChannel::Vietqr | PaymentChannel::Ewallet | PaymentChannel::PaymentPlatform)
    }
}

/// A credit on the bank statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementCredit {
    pub line_id: String,
    pub booked_on: NaiveDate,
    pub amount: Vnd,
    pub description: String,
    pub bank_reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExceptionKind {
    LedgerOnly,
    BankOnly,
    AmountMismatch,
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Ledger,
    Bank,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationException {
    pub kind: ExceptionKind,
    pub side: Side,
    pub amount: Vnd,
    pub reference: Option<String>,
    pub case_code: Option<CaseCode>,
    pub payment_id: Option<Uuid>,
    pub line_id: Option<String>,
    /// The day of the payment (ledger side) or the booking day (bank side).
    pub on: NaiveDate,
    /// Days from `on` to the day the report was made.
    pub age_days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    pub payment_id: Uuid,
    pub case_code: CaseCode,
    pub line_id: String,
    pub booked_on: NaiveDate,
    pub amount: Vnd,
    pub by_reference: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTotal {
    pub channel: PaymentChannel,
    pub count: u32,
    pub total: Vnd,
}

/// The reconciliation of one agency's account for one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayReconciliation {
    pub agency_code: AgencyCode,
    pub date: NaiveDate,
    /// Every payment received that day, per channel (including cash and POS).
    pub per_channel: Vec<ChannelTotal>,
    /// The payments that should be on the statement (see [`LedgerPayment::credits_the_account`]).
    pub ledger_total: Vnd,
    /// The statement's credits attributed to the day: booked that day and not paired with a
    /// payment of another day, or paired with one of this day's payments.
    pub bank_total: Vnd,
    pub matches: Vec<Match>,
    pub matched_total: Vnd,
    pub exceptions: Vec<ReconciliationException>,
    /// Card settlements and cash deposits booked on the day, each explaining a batch of card or
    /// cash payments (see [`crate::batch_matching`]).
    #[serde(default)]
    pub batches: Vec<BatchMatch>,
    /// The day's card and cash payments that no credit explains yet (the settlement or the
    /// deposit may still come).
    #[serde(default)]
    pub unsettled: Vec<UnsettledDay>,
    /// The statement's debits booked on the day, each with what explains it, if anything (see
    /// [`explain_debits`]).
    #[serde(default)]
    pub debits: Vec<DebitLine>,
    /// What finance resolved by hand among the day's exceptions and debits (see
    /// [`apply_resolutions`]).
    #[serde(default)]
    pub resolved: Vec<ItemResolved>,
    /// Sums of the report, computed once with checked arithmetic.
    #[serde(default)]
    pub sums: ReportSums,
    /// Set when a sum did not fit (only a corrupt log can do that): the report must be refused
    /// by whoever reads it ([`DayReconciliation::check`]), never shown with a wrong total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconsistent: Option<String>,
}

/// The side totals of a day's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSums {
    pub exceptions_ledger: Vnd,
    pub exceptions_bank: Vnd,
    pub batches: Vnd,
    pub fees: Vnd,
    #[serde(default)]
    pub debits: Vnd,
    #[serde(default)]
    pub unexplained_debits: Vnd,
}

/// Adds up, remembering the first overflow instead of keeping a wrong figure silently.
#[derive(Debug, Default)]
struct Sums {
    broken: Option<String>,
}

impl Sums {
    fn sum(&mut self, what: &str, amounts: impl IntoIterator<Item = Vnd>) -> Vnd {
        match Vnd::sum(amounts) {
            Ok(total) => total,
            Err(error) => {
                self.broken.get_or_insert_with(|| format!("{what}: {error}"));
                Vnd::ZERO
            }
        }
    }
}

impl DayReconciliation {
    pub fn exceptions_total(&self, side: Side) -> Vnd {
        match side {
            Side::Ledger => self.sums.exceptions_ledger,
            Side::Bank => self.sums.exceptions_bank,
        }
    }

    /// Σ of the bank's credits the day's batches explain.
    pub fn batches_total(&self) -> Vnd {
        self.sums.batches
    }

    /// Σ of the acquirers' fees of the day's card settlements.
    pub fn fees_total(&self) -> Vnd {
        self.sums.fees
    }

    /// Σ of the day's debit lines, and of those nothing explains.
    pub fn debits_total(&self) -> (Vnd, Vnd) {
        (self.sums.debits, self.sums.unexplained_debits)
    }

    /// Whether every line of the day is explained: every exception on either side resolved by
    /// hand, no card or cash day waiting for its settlement or deposit, and every debit paired
    /// with a refund or a remittance or resolved by hand. A day can add up ([`DayReconciliation::invariants_hold`]) and still not be
    /// explained: an exception is a fact someone has to look at.
    pub fn all_explained(&self) -> bool {
        let resolved = |line: Option<&str>, payment: Option<Uuid>| {
            self.resolved.iter().any(|r| match &r.item {
                ResolvedItem::StatementLine(id) => line == Some(id.as_str()),
                ResolvedItem::Payment(id) => payment == Some(*id),
            })
        };
        self.exceptions.iter().all(|e| resolved(e.line_id.as_deref(), e.payment_id))
            && self.unsettled.is_empty()
            && self.debits.iter().all(|d| d.explained_by.is_some() || resolved(Some(&d.line_id), None))
    }

    /// The report, or why its sums cannot be trusted.
    pub fn check(&self) -> Result<&DayReconciliation, String> {
        match &self.inconsistent {
            Some(reason) => Err(reason.clone()),
            None => Ok(self),
        }
    }

    /// `Σ ledger = Σ matched + Σ ledger-side exceptions`, and
    /// `Σ bank = Σ matched + Σ batches + Σ bank-side exceptions`.
    pub fn invariants_hold(&self) -> bool {
        let add = |a: Vnd, b: Vnd| a.checked_add(b).ok();
        add(self.matched_total, self.exceptions_total(Side::Ledger)) == Some(self.ledger_total)
            && add(self.matched_total, self.batches_total()).and_then(|m| add(m, self.exceptions_total(Side::Bank)))
                == Some(self.bank_total)
    }
}

/// A debit on the bank statement: money that left the collection account. The same facts as a
/// credit's, the money going the other way.
pub type StatementDebit = StatementCredit;

/// What the ledger knows was paid out of the collection account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutgoingKind {
    /// An overpayment or an unmatched credit paid back (`recordRefund`).
    Refund,
    /// The state budget's share deposited to the State Treasury (`remit`, a C1-02/NS voucher).
    Remittance,
}

/// A payment out of the account as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub kind: OutgoingKind,
    /// The outgoing transfer's reference, or the voucher's number.
    pub reference: String,
    pub amount: Vnd,
    pub paid_on: NaiveDate,
    /// The debit line it was paired with when it was recorded (its statement already imported).
    pub statement_line_id: Option<String>,
}

/// A debit line of the day and what explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebitLine {
    pub line_id: String,
    pub booked_on: NaiveDate,
    pub amount: Vnd,
    pub description: String,
    /// The refund or remittance it paid, `None` when nothing the ledger recorded explains it
    /// (a bank charge, money taken out without a record).
    pub explained_by: Option<OutgoingKind>,
    /// That refund's reference or remittance's voucher number.
    pub reference: Option<String>,
}

/// The shortest reference (letters and digits) looked for inside a line's description: a
/// voucher numbered "7" must not explain every line that mentions a 7.
const MIN_NAMED_KEY: usize = 4;

/// Explains the debits booked on the report's day by what the ledger recorded going out:
/// 1. a refund or remittance recorded with that very line (`statement_line_id`);
/// 2. else one whose reference is the line's id or bank reference, or is named in its
///    description (letters and digits compared, at least [`MIN_NAMED_KEY`] of them), for the
///    same amount, paid within
///    [`DATE_WINDOW_DAYS`] of the booking.
///
/// Each recorded payment explains one line at most; a line whose amount differs stays
/// unexplained (a partial refund is not silently taken for the whole). `debits` may cover a
/// wider window than the day (a refund's line was paired on an earlier day).
pub fn explain_debits(report: &mut DayReconciliation, debits: &[StatementDebit], outgoing: &[Outgoing]) {
    // A refund recorded with its line explains that line only, wherever the line falls.
    let recorded_with = |debit: &StatementDebit| {
        outgoing.iter().position(|o| o.statement_line_id.as_deref() == Some(debit.line_id.as_str()))
    };
    let mut used = vec![false; outgoing.len()];
    let mut lines = Vec::new();
    for debit in debits.iter().filter(|d| d.booked_on == report.date) {
        let recorded = recorded_with(debit);
        let named = || {
            let line_keys = [Some(match_key(&debit.line_id)), debit.bank_reference.as_deref().map(match_key)];
            let description = match_key(&debit.description);
            outgoing.iter().enumerate().position(|(i, o)| {
                let key = match_key(&o.reference);
                !used[i]
                    && o.statement_line_id.is_none()
                    && !key.is_empty()
                    && o.amount == debit.amount
                    && (o.paid_on - debit.booked_on).num_days().abs() <= DATE_WINDOW_DAYS
                    && (line_keys.contains(&Some(key.clone()))
                        || (key.len() >= MIN_NAMED_KEY && description.contains(&key)))
            })
        };
        let found = recorded.or_else(named);
        if let Some(i) = found {
            used[i] = true;
        }
        lines.push(DebitLine {
            line_id: debit.line_id.clone(),
            booked_on: debit.booked_on,
            amount: debit.amount,
            description: debit.description.clone(),
            explained_by: found.map(|i| outgoing[i].kind),
            reference: found.map(|i| outgoing[i].reference.clone()),
        });
    }
    let mut sums = Sums::default();
    report.sums.debits = sums.sum("debits", lines.iter().map(|d| d.amount));
    report.sums.unexplained_debits =
        sums.sum("unexplained debits", lines.iter().filter(|d| d.explained_by.is_none()).map(|d| d.amount));
    if let Some(broken) = sums.broken {
        report.inconsistent.get_or_insert(broken);
    }
    report.debits = lines;
}

/// A line or a payment no rule explains, which finance looked at: what it is, in words (a bank
/// charge, a transfer the bank reversed, a payment the bank has not booked yet).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ResolvedItem {
    StatementLine(String),
    Payment(Uuid),
}

/// The event: an item of an agency's reconciliation resolved by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResolved {
    pub agency_code: AgencyCode,
    pub item: ResolvedItem,
    pub reason: String,
    pub resolved_by: String,
    pub at: DateTime<Utc>,
}

/// The longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("a reason is required: 1 to {MAX_REASON_CHARS} characters of text on one line")]
    BadReason,
    #[error("{0} was already resolved: \"{1}\"")]
    AlreadyResolved(String, String),
    #[error("the resolution is for agency {0}, this stream is agency {1}'s")]
    OtherAgency(AgencyCode, AgencyCode),
}

/// An agency's resolutions, by item (the state of stream `reconciliation-<agency>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolutions {
    pub agency_code: Option<AgencyCode>,
    pub items: BTreeMap<ResolvedItem, ItemResolved>,
}

impl ResolvedItem {
    fn describe(&self) -> String {
        match self {
            ResolvedItem::StatementLine(id) => format!("statement line {id}"),
            ResolvedItem::Payment(id) => format!("payment {id}"),
        }
    }
}

impl Resolutions {
    /// An item is resolved once; the same resolution again records nothing.
    pub fn decide_resolve(&self, mut wanted: ItemResolved) -> Result<Option<ItemResolved>, ResolveError> {
        wanted.reason = wanted.reason.trim().to_owned();
        let chars = wanted.reason.chars().count();
        if chars == 0 || chars > MAX_REASON_CHARS || wanted.reason.chars().any(char::is_control) {
            return Err(ResolveError::BadReason);
        }
        if let Some(agency) = &self.agency_code
            && agency != &wanted.agency_code
        {
            return Err(ResolveError::OtherAgency(wanted.agency_code, agency.clone()));
        }
        match self.items.get(&wanted.item) {
            Some(done) if done.reason == wanted.reason => Ok(None),
            Some(done) => Err(ResolveError::AlreadyResolved(wanted.item.describe(), done.reason.clone())),
            None => Ok(Some(wanted)),
        }
    }

    pub fn evolve(mut self, event: &ItemResolved) -> Self {
        self.agency_code.get_or_insert_with(|| event.agency_code.clone());
        self.items.insert(event.item.clone(), event.clone());
        self
    }
}

/// Attaches the resolutions that concern the report's exceptions and debits.
pub fn apply_resolutions(report: &mut DayReconciliation, resolutions: &Resolutions) {
    let lines = report
        .exceptions
        .iter()
        .filter_map(|e| e.line_id.clone())
        .chain(report.debits.iter().map(|d| d.line_id.clone()));
    let mut items: BTreeSet<ResolvedItem> = lines.map(ResolvedItem::StatementLine).collect();
    items.extend(report.exceptions.iter().filter_map(|e| e.payment_id).map(ResolvedItem::Payment));
    report.resolved = items.iter().filter_map(|item| resolutions.items.get(item).cloned()).collect();
}

/// A payment paired with a statement line by a day's reconciliation: what its case records
/// (a `Reconciled` event), so later days and audits keep the pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    pub payment_id: Uuid,
    pub case_code: CaseCode,
    pub statement_line_id: String,
    pub statement_date: NaiveDate,
}

impl DayReconciliation {
    /// Every pairing of the report whose payment `payments` do not show as reconciled yet: the
    /// 1:1 matches, then each payment of each batch with the batch's line. (`payments` come from
    /// a read model that may lag; the case decides again, and a pairing it holds already
    /// records nothing.)
    pub fn unrecorded_pairings(&self, payments: &[LedgerPayment]) -> Vec<Pairing> {
        let recorded: BTreeSet<Uuid> =
            payments.iter().filter(|p| p.reconciled_line_id.is_some()).map(|p| p.payment_id).collect();
        let matches = self.matches.iter().map(|m| Pairing {
            payment_id: m.payment_id,
            case_code: m.case_code.clone(),
            statement_line_id: m.line_id.clone(),
            statement_date: m.booked_on,
        });
        let batches = self.batches.iter().flat_map(|batch| {
            batch.payments.iter().map(|(payment_id, case_code)| Pairing {
                payment_id: *payment_id,
                case_code: case_code.clone(),
                statement_line_id: batch.line_id.clone(),
                statement_date: batch.booked_on,
            })
        });
        matches.chain(batches).filter(|p| !recorded.contains(&p.payment_id)).collect()
    }
}

/// Reconciles `date`.
///
/// `payments` and `statement` should cover the date window around `date` (a day either side),
/// so that a transfer booked the next morning still meets its payment. Payments already
/// reconciled by an earlier run (`reconciled_line_id`) keep their line. The rest is matched over
/// the whole window — same-day pairs before cross-day ones, references before amounts — and
/// then reported for `date`:
/// - the ledger side is the payments received on `date` that credit the account;
/// - the bank side is the statement's credits *attributed* to `date`: a credit paired with a
///   payment belongs to that payment's day, an unpaired credit to its booking day.
pub fn reconcile(
    agency: &AgencyCode,
    date: NaiveDate,
    payments: &[LedgerPayment],
    statement: &[StatementCredit],
    today: NaiveDate,
) -> DayReconciliation {
    reconcile_with(agency, date, payments, statement, today, &BatchRules::default())
}

/// [`reconcile`], with the batch matching's tolerances. `payments` and `statement` may cover a
/// wider range than the day either side (card settlements come days later, a cash deposit may
/// cover a week): the 1:1 matching uses only what lies within [`DATE_WINDOW_DAYS`] of `date`,
/// the batch matching all of it.
pub fn reconcile_with(
    agency: &AgencyCode,
    date: NaiveDate,
    all_payments: &[LedgerPayment],
    statement: &[StatementCredit],
    today: NaiveDate,
    rules: &BatchRules,
) -> DayReconciliation {
    let agencies = [agency.clone()];
    let window = |a: NaiveDate, b: NaiveDate| (a - b).num_days().abs();
    let mut sums = Sums::default();
    let per_channel = channel_totals(all_payments, date, &mut sums);
    let payments: Vec<&LedgerPayment> = all_payments
        .iter()
        .filter(|p| p.credits_the_account() && window(p.received_on, date) <= DATE_WINDOW_DAYS)
        .collect();
    let lines: Vec<&StatementCredit> =
        statement.iter().filter(|l| window(l.booked_on, date) <= DATE_WINDOW_DAYS).collect();

    // payment index → line index, for pairs of equal amounts (matches) or not (mismatches).
    let mut paired: BTreeMap<usize, usize> = BTreeMap::new();
    let mut line_taken: BTreeSet<usize> = BTreeSet::new();
    let mut duplicate_payments: BTreeSet<usize> = BTreeSet::new();

    // 0. Pairs recorded by earlier runs.
    for (pi, payment) in payments.iter().enumerate() {
        let Some(line_id) = &payment.reconciled_line_id else { continue };
        if let Some(li) = lines.iter().position(|l| &l.line_id == line_id)
            && line_taken.insert(li)
        {
            paired.insert(pi, li);
        }
    }

    // 1a. By the bank's own reference, same day first. A second payment carrying the reference
    //     of a line already taken is the same transfer recorded twice: a duplicate.
    // 1b. By a weaker reference (the case code, or the bank reference inside the description):
    //     only lines nothing has claimed.
    for strength in [Strength::Exact, Strength::Mentioned] {
        for distance in 0..=DATE_WINDOW_DAYS {
            for (pi, payment) in payments.iter().enumerate() {
                if paired.contains_key(&pi) || duplicate_payments.contains(&pi) {
                    continue;
                }
                let referenced: Vec<usize> = (0..lines.len())
                    .filter(|&li| window(lines[li].booked_on, payment.received_on) == distance)
                    .filter(|&li| reference_strength(lines[li], payment, &agencies) == Some(strength))
                    .collect();
                if let Some(&li) = referenced.iter().find(|li| !line_taken.contains(li)) {
                    line_taken.insert(li);
                    paired.insert(pi, li);
                } else if strength == Strength::Exact && !referenced.is_empty() {
                    duplicate_payments.insert(pi);
                }
            }
        }
    }

    // 2. By equal amount, closest day first.
    for distance in 0..=DATE_WINDOW_DAYS {
        for (pi, payment) in payments.iter().enumerate() {
            if paired.contains_key(&pi) || duplicate_payments.contains(&pi) {
                continue;
            }
            let candidate = (0..lines.len()).find(|&li| {
                !line_taken.contains(&li)
                    && lines[li].amount == payment.amount
                    && window(lines[li].booked_on, payment.received_on) == distance
            });
            if let Some(li) = candidate {
                line_taken.insert(li);
                paired.insert(pi, li);
            }
        }
    }

    // Batches: card and cash payments against the credits no 1:1 pair has taken. Should the
    // sums overflow (they cannot, short of a corrupt log), no batch is made and every credit stays
    // visible as an exception: nothing is explained away.
    let taken_ids: BTreeSet<&str> = line_taken.iter().map(|&li| lines[li].line_id.as_str()).collect();
    let free: Vec<&StatementCredit> = statement.iter().filter(|l| !taken_ids.contains(l.line_id.as_str())).collect();
    let outcome = match match_batches(all_payments, &free, rules) {
        Ok(outcome) => outcome,
        Err(error) => {
            sums.broken.get_or_insert_with(|| format!("batches: {error}"));
            Default::default()
        }
    };
    let batches: Vec<BatchMatch> = outcome.matches.into_iter().filter(|b| b.booked_on == date).collect();
    let unsettled: Vec<UnsettledDay> = outcome.unsettled.into_iter().filter(|u| u.day == date).collect();
    let batch_lines: BTreeSet<&str> = batches.iter().map(|b| b.line_id.as_str()).collect();

    // The report for `date`.
    let mut matches = Vec::new();
    let mut exceptions = Vec::new();
    let mut attributed_lines: BTreeSet<usize> = BTreeSet::new();
    let ledger_total = sums.sum("ledger total", payments.iter().filter(|p| p.received_on == date).map(|p| p.amount));
    for (pi, payment) in payments.iter().enumerate().filter(|(_, p)| p.received_on == date) {
        match paired.get(&pi) {
            Some(&li) => {
                let line = lines[li];
                attributed_lines.insert(li);
                if line.amount == payment.amount {
                    matches.push(Match {
                        payment_id: payment.payment_id,
                        case_code: payment.case_code.clone(),
                        line_id: line.line_id.clone(),
                        booked_on: line.booked_on,
                        amount: line.amount,
                        by_reference: refers_to(line, payment, &agencies),
                    });
                } else {
                    exceptions.push(ledger_exception(ExceptionKind::AmountMismatch, payment, today));
                    exceptions.push(bank_exception(ExceptionKind::AmountMismatch, line, today));
                }
            }
            None if duplicate_payments.contains(&pi) => {
                exceptions.push(ledger_exception(ExceptionKind::Duplicate, payment, today));
            }
            None => exceptions.push(ledger_exception(ExceptionKind::LedgerOnly, payment, today)),
        }
    }
    // Unpaired credits booked on `date`: a repeat of a paired credit's reference is a duplicate.
    let paired_references: BTreeSet<String> = line_taken.iter().filter_map(|&li| line_reference(lines[li])).collect();
    for (li, line) in lines.iter().enumerate() {
        if line_taken.contains(&li) || line.booked_on != date {
            continue;
        }
        attributed_lines.insert(li);
        if batch_lines.contains(line.line_id.as_str()) {
            continue;
        }
        let kind = match line_reference(line) {
            Some(reference) if paired_references.contains(&reference) => ExceptionKind::Duplicate,
            _ => ExceptionKind::BankOnly,
        };
        exceptions.push(bank_exception(kind, line, today));
    }
    let bank_total = sums.sum("bank total", attributed_lines.iter().map(|&li| lines[li].amount));
    let matched_total = sums.sum("matched total", matches.iter().map(|m| m.amount));
    let side_total = |sums: &mut Sums, side: Side| {
        sums.sum(
            "exceptions",
            exceptions.iter().filter(|e: &&ReconciliationException| e.side == side).map(|e| e.amount),
        )
    };
    let report_sums = ReportSums {
        exceptions_ledger: side_total(&mut sums, Side::Ledger),
        exceptions_bank: side_total(&mut sums, Side::Bank),
        batches: sums.sum("batches", batches.iter().map(|b| b.bank_amount)),
        fees: sums.sum("fees", batches.iter().map(|b| b.fee)),
        debits: Vnd::ZERO,
        unexplained_debits: Vnd::ZERO,
    };
    let mut report = DayReconciliation {
        agency_code: agency.clone(),
        date,
        per_channel,
        ledger_total,
        bank_total,
        matches,
        matched_total,
        exceptions,
        batches,
        unsettled,
        debits: Vec::new(),
        resolved: Vec::new(),
        sums: report_sums,
        inconsistent: sums.broken,
    };
    if report.inconsistent.is_none() && !report.invariants_hold() {
        report.inconsistent = Some("its lines do not add up to its totals".into());
    }
    report
}

/// Every payment received on `date`, per channel (cash and POS included), for the report.
fn channel_totals(payments: &[LedgerPayment], date: NaiveDate, sums: &mut Sums) -> Vec<ChannelTotal> {
    let mut per_channel: BTreeMap<PaymentChannel, Vec<Vnd>> = BTreeMap::new();
    for payment in payments.iter().filter(|p| p.received_on == date) {
        per_channel.entry(payment.channel).or_default().push(payment.amount);
    }
    per_channel
        .into_iter()
        .map(|(channel, amounts)| ChannelTotal {
            channel,
            count: u32::try_from(amounts.len()).unwrap_or(u32::MAX),
            total: sums.sum("channel total", amounts),
        })
        .collect()
}

fn line_reference(line: &StatementCredit) -> Option<String> {
    line.bank_reference.as_deref().map(match_key).filter(|r| !r.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    /// The line's id or reference is the payment's bank reference.
    Exact,
    /// The description mentions the payment's bank reference or case code.
    Mentioned,
}

fn reference_strength(line: &StatementCredit, payment: &LedgerPayment, agencies: &[AgencyCode]) -> Option<Strength> {
    let bank_reference = payment.bank_reference.as_deref().map(match_key).filter(|r| !r.is_empty());
    if let Some(reference) = &bank_reference {
        let line_keys = [Some(match_key(&line.line_id)), line.bank_reference.as_deref().map(match_key)];
        if line_keys.iter().flatten().any(|k| k == reference) {
            return Some(Strength::Exact);
        }
        if match_key(&line.description).contains(reference.as_str()) {
            return Some(Strength::Mentioned);
        }
    }
    case_codes_in(&line.description, agencies).contains(&payment.case_code).then_some(Strength::Mentioned)
}

/// Does the statement line carry this payment's reference at all?
fn refers_to(line: &StatementCredit, payment: &LedgerPayment, agencies: &[AgencyCode]) -> bool {
    reference_strength(line, payment, agencies).is_some()
}

fn ledger_exception(kind: ExceptionKind, payment: &LedgerPayment, today: NaiveDate) -> ReconciliationException {
    ReconciliationException {
        kind,
        side: Side::Ledger,
        amount: payment.amount,
        reference: payment.bank_reference.clone().or_else(|| Some(payment.reference.clone())),
        case_code: Some(payment.case_code.clone()),
        payment_id: Some(payment.payment_id),
        line_id: None,
        on: payment.received_on,
        age_days: (today - payment.received_on).num_days().max(0),
    }
}

fn bank_exception(kind: ExceptionKind, line: &StatementCredit, today: NaiveDate) -> ReconciliationException {
    ReconciliationException {
        kind,
        side: Side::Bank,
        amount: line.amount,
        reference: line.bank_reference.clone().or_else(|| Some(line.line_id.clone())),
        case_code: None,
        payment_id: None,
        line_id: Some(line.line_id.clone()),
        on: line.booked_on,
        age_days: (today - line.booked_on).num_days().max(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agency() -> AgencyCode {
        AgencyCode::parse("H34.22.6").unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn payment(n: u128, case: &str, amount: i64, on: u32, bank_reference: Option<&str>) -> LedgerPayment {
        LedgerPayment {
            payment_id: Uuid::from_u128(n),
            case_code: CaseCode::parse(case).unwrap(),
            amount: Vnd::new(amount).unwrap(),
            channel: PaymentChannel::Vietqr,
            received_on: day(on),
            reference: case.into(),
            bank_reference: bank_reference.map(str::to_owned),
            reconciled_line_id: None,
        }
    }

    fn line(id: &str, amount: i64, on: u32, description: &str, bank_reference: Option<&str>) -> StatementCredit {
        StatementCredit {
            line_id: id.into(),
            booked_on: day(on),
            amount: Vnd::new(amount).unwrap(),
            description: description.into(),
            bank_reference: bank_reference.map(str::to_owned),
        }
    }

    fn kinds(report: &DayReconciliation) -> Vec<(ExceptionKind, Side)> {
        report.exceptions.iter().map(|e| (e.kind, e.side)).collect()
    }

    #[test]
    fn payments_match_their_lines_by_bank_reference_or_case_code_and_the_rest_are_exceptions() {
        let payments = [
            payment(1, "H34.22.6-261120-0001", 3000, 20, Some("FT001")),
            payment(2, "H34.22.6-261120-0002", 8000, 20, None),
            payment(3, "H34.22.6-261120-0003", 5000, 20, None),
        ];
        let statement = [
            line("L1", 3000, 20, "CT DEN FT001", Some("FT001")),
            line("L2", 8000, 20, "MBVCB.99.H34.22.6-261120-0002.Thanh toan", None),
            line("L3", 120000, 20, "nop tien", None),
        ];
        let report = reconcile(&agency(), day(20), &payments, &statement, day(22));
        assert_eq!(report.matches.len(), 2);
        assert!(report.matches.iter().all(|m| m.by_reference));
        assert_eq!(kinds(&report), [(ExceptionKind::LedgerOnly, Side::Ledger), (ExceptionKind::BankOnly, Side::Bank)]);
        assert_eq!(report.exceptions[0].age_days, 2);
        assert!(report.invariants_hold());
        assert_eq!(report.ledger_total, Vnd::new(16_000).unwrap());
        assert_eq!(report.bank_total, Vnd::new(131_000).unwrap());
    }

    #[test]
    fn a_reference_match_with_a_different_amount_is_an_exception_on_both_sides() {
        let payments = [payment(1, "H34.22.6-261120-0001", 3000, 20, Some("FT001"))];
        let statement = [line("L1", 2500, 20, "FT001", Some("FT001"))];
        let report = reconcile(&agency(), day(20), &payments, &statement, day(20));
        assert_eq!(
            kinds(&report),
            [(ExceptionKind::AmountMismatch, Side::Ledger), (ExceptionKind::AmountMismatch, Side::Bank)]
        );
        assert!(report.matches.is_empty());
        assert!(report.invariants_hold());
    }

    #[test]
    fn one_transfer_recorded_twice_in_the_ledger_is_a_ledger_side_duplicate() {
        let payments = [
            payment(1, "H34.22.6-261120-0001", 3000, 20, Some("FT001")),
            payment(2, "H34.22.6-261120-0001", 3000, 20, Some("FT001")),
        ];
        let statement = [line("L1", 3000, 20, "x", Some("FT001"))];
        let report = reconcile(&agency(), day(20), &payments, &statement, day(20));
        assert_eq!(report.matches.len(), 1);
        assert_eq!(kinds(&report), [(ExceptionKind::Duplicate, Side::Ledger)]);
        assert!(report.invariants_hold());
    }

    #[test]
    fn a_payment_whose_line_is_missing_does_not_take_the_line_of_another_payment_of_its_case() {
        // Two transfers for one case; the bank's statement lost the first.
        let payments = [
            payment(1, "H34.22.6-261120-0001", 1000, 20, Some("FT001")),
            payment(2, "H34.22.6-261120-0001", 2000, 20, Some("FT002")),
        ];
        let statement = [line("L2", 2000, 20, "IBFT H34.22.6-261120-0001", Some("FT002"))];
        let report = reconcile(&agency(), day(20), &payments, &statement, day(20));
        assert_eq!(report.matches.len(), 1);
        assert_eq!(report.matches[0].payment_id, Uuid::from_u128(2));
        assert_eq!(kinds(&report), [(ExceptionKind::LedgerOnly, Side::Ledger)]);
    }

    #[test]
    fn a_day_whose_sums_do_not_fit_is_marked_and_never_reported_with_a_wrong_total() {
        let max = crate::money::VND_MAX;
        let payments = [
            payment(1, "H34.22.6-261120-0001", max, 20, Some("FT001")),
            payment(2, "H34.22.6-261120-0002", max, 20, Some("FT002")),
        ];
        let report = reconcile(&agency(), day(20), &payments, &[], day(20));
        assert!(report.check().is_err(), "{:?}", report.inconsistent);
        let fine = reconcile(&agency(), day(20), &payments[..1], &[], day(20));
        assert!(fine.check().is_ok() && fine.invariants_hold());
    }

    #[test]
    fn a_credit_repeated_on_the_statement_is_a_bank_side_duplicate() {
        let payments = [payment(1, "H34.22.6-261120-0001", 3000, 20, Some("FT001"))];
        let statement = [line("L1", 3000, 20, "x", Some("FT001")), line("L1b", 3000, 20, "x", Some("FT001"))];
        let report = reconcile(&agency(), day(20), &payments, &statement, day(20));
        assert_eq!(report.matches.len(), 1);
        assert_eq!(kinds(&report), [(ExceptionKind::Duplicate, Side::Bank)]);
        assert!(report.invariants_hold());
    }

    #[test]
    fn a_late_evening_transfer_booked_the_next_morning_matches_by_amount_and_counts_for_the_payments_day() {
        let payments = [payment(1, "H34.22.6-261120-0001", 3000, 20, None)];
        let statement = [line("L9", 3000, 21, "chuyen tien", None)];
        let on_20 = reconcile(&agency(), day(20), &payments, &statement, day(21));
        assert_eq!(on_20.matches.len(), 1);
        assert!(!on_20.matches[0].by_reference);
        assert_eq!(on_20.bank_total, Vnd::new(3000).unwrap(), "the credit is attributed to its payment's day");
        let on_21 = reconcile(&agency(), day(21), &payments, &statement, day(21));
        assert!(on_21.exceptions.is_empty() && on_21.bank_total.is_zero(), "and not counted again the next day");
        assert!(on_20.invariants_hold() && on_21.invariants_hold());
    }

    #[test]
    fn cash_and_pos_are_reported_per_channel_but_not_matched() {
        let mut cash = payment(1, "H34.22.6-261120-0001", 3000, 20, None);
        cash.channel = PaymentChannel::Cash;
        let report = reconcile(&agency(), day(20), &[cash], &[], day(20));
        assert!(report.exceptions.is_empty());
        assert_eq!(
            report.per_channel,
            [ChannelTotal { channel: PaymentChannel::Cash, count: 1, total: Vnd::new(3000).unwrap() }]
        );
    }

    #[test]
    fn a_pair_recorded_earlier_is_kept() {
        let mut p = payment(1, "H34.22.6-261120-0001", 3000, 20, None);
        p.reconciled_line_id = Some("L2".into());
        let statement = [line("L1", 3000, 20, "", None), line("L2", 3000, 20, "", None)];
        let report = reconcile(&agency(), day(20), &[p], &statement, day(20));
        assert_eq!(report.matches[0].line_id, "L2");
        assert_eq!(kinds(&report), [(ExceptionKind::BankOnly, Side::Bank)]);
    }

    #[test]
    fn the_pairings_to_record_are_the_matches_whose_payment_is_not_reconciled_yet() {
        let first = payment(1, "H34.22.6-261120-0001", 3000, 20, Some("FT001"));
        let mut second = payment(2, "H34.22.6-261120-0002", 8000, 20, Some("FT002"));
        let statement = [line("L1", 3000, 20, "x", Some("FT001")), line("L2", 8000, 20, "x", Some("FT002"))];
        let payments = [first.clone(), second.clone()];
        let report = reconcile(&agency(), day(20), &payments, &statement, day(20));
        let pairings = report.unrecorded_pairings(&payments);
        assert_eq!(
            pairings.iter().map(|p| (p.payment_id, p.statement_line_id.as_str())).collect::<Vec<_>>(),
            [(Uuid::from_u128(1), "L1"), (Uuid::from_u128(2), "L2")]
        );
        assert_eq!(pairings[1].case_code, second.case_code);
        assert_eq!(pairings[1].statement_date, day(20));

        // Once the second is recorded on its case, only the first is left to record.
        second.reconciled_line_id = Some("L2".into());
        let payments = [first, second];
        let report = reconcile(&agency(), day(20), &payments, &statement, day(20));
        let left: Vec<_> = report.unrecorded_pairings(&payments).into_iter().map(|p| p.payment_id).collect();
        assert_eq!(left, [Uuid::from_u128(1)]);
    }

    proptest::proptest! {
        #[test]
        fn the_invariants_hold_for_any_day(
            payments in proptest::collection::vec((1i64..5, 19u32..22, proptest::option::of(0u8..6)), 0..12),
            lines in proptest::collection::vec((1i64..5, 19u32..22, proptest::option::of(0u8..6)), 0..12),
        ) {
            let payments: Vec<LedgerPayment> = payments.iter().enumerate().map(|(i, (a, d, r))| {
                payment(i as u128, &format!("H34.22.6-261120-{:04}", i % 5), a * 1000, *d, r.map(|r| format!("FT{r}")).as_deref())
            }).collect();
            let lines: Vec<StatementCredit> = lines.iter().enumerate().map(|(i, (a, d, r))| {
                let reference = r.map(|r| format!("FT{r}"));
                line(&format!("L{i}"), a * 1000, *d, "", reference.as_deref())
            }).collect();
            for d in 19..22 {
                let report = reconcile(&agency(), day(d), &payments, &lines, day(25));
                proptest::prop_assert!(report.invariants_hold(), "{report:?}");
            }
        }
    }

    fn debit(id: &str, amount: i64, on: u32, description: &str) -> StatementDebit {
        StatementDebit {
            line_id: id.into(),
            booked_on: day(on),
            amount: Vnd::new(amount).unwrap(),
            description: description.into(),
            bank_reference: None,
        }
    }

    fn out(kind: OutgoingKind, reference: &str, amount: i64, on: u32, line: Option<&str>) -> Outgoing {
        Outgoing {
            kind,
            reference: reference.into(),
            amount: Vnd::new(amount).unwrap(),
            paid_on: day(on),
            statement_line_id: line.map(str::to_owned),
        }
    }

    #[test]
    fn a_days_debits_are_explained_by_the_refunds_and_remittances_recorded_and_nothing_else() {
        let mut report = reconcile(&agency(), day(20), &[], &[], day(21));
        assert!(report.all_explained(), "an empty day is explained");
        let debits = [
            // Paired when the refund was recorded.
            debit("D1", 50_000, 20, "Hoan tien thua"),
            // Named by the voucher number in its description, paid the day before.
            debit("D2", 1_200_000, 20, "Nop NSNN theo GNT so 15/2026"),
            // A refund of 30 000 was recorded under this reference, but 40 000 left: unexplained.
            debit("D3", 40_000, 20, "CK hoan tien REF-77"),
            debit("FEE", 11_000, 20, "Phi quan ly tai khoan"),
            // Another day's line is not the report's.
            debit("D9", 1_200_000, 22, "Nop NSNN theo GNT so 16/2026"),
        ];
        let outgoing = [
            out(OutgoingKind::Refund, "FT-XYZ", 50_000, 20, Some("D1")),
            out(OutgoingKind::Remittance, "15/2026", 1_200_000, 19, None),
            out(OutgoingKind::Refund, "REF-77", 30_000, 20, None),
            out(OutgoingKind::Remittance, "16/2026", 1_200_000, 22, None),
        ];
        explain_debits(&mut report, &debits, &outgoing);
        let explained: Vec<(&str, Option<OutgoingKind>, Option<&str>)> =
            report.debits.iter().map(|d| (d.line_id.as_str(), d.explained_by, d.reference.as_deref())).collect();
        assert_eq!(
            explained,
            [
                ("D1", Some(OutgoingKind::Refund), Some("FT-XYZ")),
                ("D2", Some(OutgoingKind::Remittance), Some("15/2026")),
                ("D3", None, None),
                ("FEE", None, None),
            ]
        );
        assert_eq!(report.debits_total(), (Vnd::new(1_301_000).unwrap(), Vnd::new(51_000).unwrap()));
        assert!(!report.all_explained());
        assert!(report.invariants_hold(), "the credit side still adds up");

        // One remittance explains one line: a second line of the same amount naming it is not.
        let mut twice = reconcile(&agency(), day(20), &[], &[], day(21));
        let lines = [debit("A", 1_200_000, 20, "GNT 15/2026"), debit("B", 1_200_000, 20, "GNT 15/2026 lan 2")];
        explain_debits(&mut twice, &lines, &outgoing[1..2]);
        let kinds: Vec<Option<OutgoingKind>> = twice.debits.iter().map(|d| d.explained_by).collect();
        assert_eq!(kinds, [Some(OutgoingKind::Remittance), None]);
    }

    #[test]
    fn a_line_resolved_by_hand_with_a_reason_counts_as_explained_and_is_resolved_once() {
        let resolve = |item: ResolvedItem, reason: &str| ItemResolved {
            agency_code: agency(),
            item,
            reason: reason.into(),
            resolved_by: "ke-toan".into(),
            at: chrono::DateTime::UNIX_EPOCH,
        };
        let fee = ResolvedItem::StatementLine("FEE".into());
        let none = Resolutions::default();
        assert_eq!(none.decide_resolve(resolve(fee.clone(), "  ")), Err(ResolveError::BadReason));
        assert_eq!(none.decide_resolve(resolve(fee.clone(), "phí\nngân hàng")), Err(ResolveError::BadReason));
        let event = none.decide_resolve(resolve(fee.clone(), " Phí quản lý tài khoản tháng 11 ")).unwrap().unwrap();
        assert_eq!(event.reason, "Phí quản lý tài khoản tháng 11");
        let done = Resolutions::default().evolve(&event);
        assert_eq!(done.decide_resolve(resolve(fee.clone(), "Phí quản lý tài khoản tháng 11")), Ok(None), "a repeat");
        assert!(matches!(done.decide_resolve(resolve(fee, "khác")), Err(ResolveError::AlreadyResolved(..))));

        // The day with the bank charge closes once the charge is resolved, not before.
        let mut report = reconcile(&agency(), day(20), &[], &[], day(21));
        explain_debits(&mut report, &[debit("FEE", 11_000, 20, "Phi quan ly tai khoan")], &[]);
        apply_resolutions(&mut report, &Resolutions::default());
        assert!(!report.all_explained());
        apply_resolutions(&mut report, &done);
        assert_eq!(report.resolved, [event]);
        assert!(report.all_explained());
        // A bank-only credit is an exception until resolved.
        let mut credit = reconcile(&agency(), day(20), &[], &[line("X1", 5_000, 20, "khong ro", None)], day(21));
        assert!(!credit.all_explained());
        let unknown = done.evolve(&resolve(ResolvedItem::StatementLine("X1".into()), "Trả lại ngân hàng ngày 21"));
        apply_resolutions(&mut credit, &unknown);
        assert!(credit.all_explained());
    }
}
