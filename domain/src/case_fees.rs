//! The fee lifecycle of one case (hồ sơ), as a decider:
//! `decide(&CaseFees, Command) -> Result<Vec<CaseEvent>, CaseError>` and
//! `evolve(CaseFees, &CaseEvent) -> CaseFees`.
//!
//! Pure and synchronous: everything a decision needs (the fee schedule version, the QR's bank
//! account and id, the current time) is looked up by the caller and put in the command.
//! Events are past-tense facts that carry the amounts readers need, so no reader has to
//! recompute a business rule.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::budget::TaxCode;
use crate::budget::{BudgetChapter, BudgetSubItem};
use crate::codes::{AgencyCode, BankAccount, CaseCode, CounterId, FeeCode, PaymentReference};
use crate::fee_schedule::{FeeKind, FeeScheduleVersion};
use crate::money::{MoneyError, NAPAS_TRANSFER_LIMIT, Vnd};
use crate::payer::Payer;
use crate::procedure::ProcedureCode;
use crate::receipt::{ReceiptCancelled, ReceiptIssued};
use crate::vietqr;

/// Limits on one assessment, so a typing error cannot produce an absurd bill.
pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: u32 = 10_000;

/// How the money arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentChannel {
    /// A bank transfer made by scanning the case's VietQR code.
    Vietqr,
    /// A card at the counter's POS terminal.
    Pos,
    Cash,
    Ewallet,
    /// The National Public Service Portal's payment platform.
    PaymentPlatform,
}

impl PaymentChannel {
    pub fn is_cashless(self) -> bool {
        self != PaymentChannel::Cash
    }

    /// Paid online (thanh toán trực tuyến): through a bank transfer, e-wallet or the portal.
    pub fn is_online(self) -> bool {
        matches!(self, PaymentChannel::Vietqr | PaymentChannel::Ewallet | PaymentChannel::PaymentPlatform)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaseStatus {
    /// No FeeAssessed yet: the case does not exist for the ledger.
    New,
    Assessed,
    AwaitingPayment,
    PartiallyPaid,
    Paid,
    Overpaid,
    Cancelled,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessedLine {
    pub fee_code: FeeCode,
    pub name: String,
    pub kind: FeeKind,
    pub quantity: u32,
    pub unit_amount: Vnd,
    pub amount: Vnd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeAssessed {
    pub case_code: CaseCode,
    pub agency_code: AgencyCode,
    pub procedure_name: String,
    pub payer: Payer,
    pub lines: Vec<AssessedLine>,
    pub total: Vnd,
    /// The schedule version whose amounts were charged.
    pub schedule_version: u32,
    pub schedule_effective_from: NaiveDate,
    pub counter_id: Option<CounterId>,
    pub assessed_at: DateTime<Utc>,
    /// The procedure code (mã TTHC), when the officer gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure_code: Option<ProcedureCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrIssued {
    pub qr_id: Uuid,
    /// The agency and counter whose screens show this QR (the counter display is found by them).
    pub agency_code: AgencyCode,
    pub reference: PaymentReference,
    /// The outstanding amount when the QR was issued; the payload asks for exactly this.
    pub amount: Vnd,
    /// The EMVCo/NAPAS VietQR string the image encodes.
    pub payload: String,
    pub beneficiary: BankAccount,
    pub counter_id: CounterId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrSuperseded {
    pub qr_id: Uuid,
    pub superseded_by: Uuid,
    pub superseded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrExpired {
    pub qr_id: Uuid,
    pub expired_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceived {
    pub payment_id: Uuid,
    /// Makes the payment count once: the provider's transaction id for bank notifications,
    /// the client's key for payments recorded at the counter.
    pub idempotency_key: String,
    pub amount: Vnd,
    pub channel: PaymentChannel,
    /// What the payment carried to identify the case (QR reference, receipt number, ...).
    pub reference: String,
    pub provider: Option<String>,
    pub bank_reference: Option<String>,
    pub qr_id: Option<Uuid>,
    pub payer_account: Option<String>,
    pub received_at: DateTime<Utc>,
    /// Which fee lines this payment paid (lệ phí first; see `crate::allocation`). Empty on a
    /// cancelled case, where everything is to be refunded.
    #[serde(default)]
    pub allocation: Vec<PaidLine>,
    /// The part beyond what was owed.
    #[serde(default)]
    pub excess: Vnd,
}

/// The part of a payment that went to one fee line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidLine {
    /// The line's index in the assessment.
    pub line: usize,
    pub fee_code: FeeCode,
    pub kind: FeeKind,
    pub amount: Vnd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartiallyPaid {
    pub paid_total: Vnd,
    pub outstanding: Vnd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullyPaid {
    pub paid_total: Vnd,
    pub paid_at: DateTime<Utc>,
    /// How the case was paid (for the cashless rate: without cash, online).
    #[serde(default)]
    pub channels: Vec<PaymentChannel>,
}

/// Money received beyond what the case owes: kept, visible, and to be refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overpaid {
    pub payment_id: Uuid,
    /// The part of this payment that was beyond what was owed.
    pub excess: Vnd,
    /// Everything paid beyond the total so far.
    pub overpaid_total: Vnd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessmentCancelled {
    pub reason: String,
    pub cancelled_at: DateTime<Utc>,
}

/// A payment was matched to a line of the bank statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    pub payment_id: Uuid,
    pub statement_line_id: String,
    pub statement_date: NaiveDate,
    pub reconciled_at: DateTime<Utc>,
}

/// The part of one day's collection for one fee line that a remittance covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittedLine {
    pub collected_on: NaiveDate,
    pub fee_code: FeeCode,
    pub kind: FeeKind,
    pub to_budget: Vnd,
    pub retained: Vnd,
    /// The budget classification the money was deposited under (the agency's chapter, the
    /// fee rule's sub-item, as configured on the day of the remittance); absent in events
    /// recorded before they were configured, or when they still are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_chapter: Option<BudgetChapter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_sub_item: Option<BudgetSubItem>,
    /// The fee's name in the rule in force on the day of collection (the voucher's content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_name: Option<String>,
}

/// The case's collected money was accounted for in a deposit to the State Treasury (KBNN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittedToTreasury {
    pub remittance_id: Uuid,
    pub voucher_number: String,
    pub remitted_on: NaiveDate,
    /// Collections up to and including this day were covered.
    pub up_to: NaiveDate,
    pub lines: Vec<RemittedLine>,
    /// The state budget's share of this case's collections covered by the batch.
    pub to_budget: Vnd,
    /// The share the agency keeps (zero for lệ phí or when the agency may not retain).
    pub retained: Vnd,
}

/// Every fact of a case's fee lifecycle. The variant name is the stored `event_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CaseEvent {
    FeeAssessed(FeeAssessed),
    QrIssued(QrIssued),
    QrSuperseded(QrSuperseded),
    QrExpired(QrExpired),
    PaymentReceived(PaymentReceived),
    PartiallyPaid(PartiallyPaid),
    FullyPaid(FullyPaid),
    Overpaid(Overpaid),
    AssessmentCancelled(AssessmentCancelled),
    Reconciled(Reconciled),
    RemittedToTreasury(RemittedToTreasury),
    ReceiptIssued(ReceiptIssued),
    ReceiptCancelled(ReceiptCancelled),
    OverpaymentRefunded(OverpaymentRefunded),
}

/// Money a case received beyond what it owed was paid back to the payer (issue 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverpaymentRefunded {
    pub amount: Vnd,
    pub method: crate::bank_credit::RefundMethod,
    /// The outgoing transfer's reference (or the cash voucher's number).
    pub reference: String,
    pub paid_on: NaiveDate,
    /// The debit line of the collection account's statement that paid it, when imported.
    pub statement_line_id: Option<String>,
    pub recorded_by: String,
    pub refunded_at: DateTime<Utc>,
}

impl CaseEvent {
    pub const TYPES: &'static [&'static str] = &[
        "FeeAssessed",
        "QrIssued",
        "QrSuperseded",
        "QrExpired",
        "PaymentReceived",
        "PartiallyPaid",
        "FullyPaid",
        "Overpaid",
        "AssessmentCancelled",
        "Reconciled",
        "RemittedToTreasury",
        "ReceiptIssued",
        "ReceiptCancelled",
        "OverpaymentRefunded",
    ];

    pub fn event_type(&self) -> &'static str {
        match self {
            CaseEvent::FeeAssessed(_) => "FeeAssessed",
            CaseEvent::QrIssued(_) => "QrIssued",
            CaseEvent::QrSuperseded(_) => "QrSuperseded",
            CaseEvent::QrExpired(_) => "QrExpired",
            CaseEvent::PaymentReceived(_) => "PaymentReceived",
            CaseEvent::PartiallyPaid(_) => "PartiallyPaid",
            CaseEvent::FullyPaid(_) => "FullyPaid",
            CaseEvent::Overpaid(_) => "Overpaid",
            CaseEvent::AssessmentCancelled(_) => "AssessmentCancelled",
            CaseEvent::Reconciled(_) => "Reconciled",
            CaseEvent::RemittedToTreasury(_) => "RemittedToTreasury",
            CaseEvent::ReceiptIssued(_) => "ReceiptIssued",
            CaseEvent::ReceiptCancelled(_) => "ReceiptCancelled",
            CaseEvent::OverpaymentRefunded(_) => "OverpaymentRefunded",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeLineRequest {
    pub fee_code: FeeCode,
    pub quantity: u32,
}

#[derive(Debug, Clone)]
pub struct AssessFees {
    pub case_code: CaseCode,
    pub agency_code: AgencyCode,
    pub procedure_name: String,
    pub payer: Payer,
    pub lines: Vec<FeeLineRequest>,
    /// The agency's schedule version in force on the assessment date, looked up by the caller.
    pub schedule: FeeScheduleVersion,
    pub counter_id: Option<CounterId>,
    pub now: DateTime<Utc>,
    pub procedure_code: Option<ProcedureCode>,
}

#[derive(Debug, Clone)]
pub struct IssueQr {
    pub qr_id: Uuid,
    pub counter_id: CounterId,
    pub beneficiary: BankAccount,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RecordPayment {
    pub payment_id: Uuid,
    pub idempotency_key: String,
    pub amount: Vnd,
    pub channel: PaymentChannel,
    pub reference: String,
    pub provider: Option<String>,
    pub bank_reference: Option<String>,
    pub qr_id: Option<Uuid>,
    pub payer_account: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CancelAssessment {
    pub reason: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ExpireQr {
    pub qr_id: Uuid,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RecordReconciliation {
    pub payment_id: Uuid,
    pub statement_line_id: String,
    pub statement_date: NaiveDate,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RecordRemittance {
    pub remittance_id: Uuid,
    pub voucher_number: String,
    pub remitted_on: NaiveDate,
    pub up_to: NaiveDate,
    pub lines: Vec<RemittedLine>,
}

/// Issues the receipt of a fully paid case. The number is allocated by the caller from the
/// series stream and appended in the same transaction (see `crate::receipt`).
#[derive(Debug, Clone)]
pub struct IssueReceipt {
    pub receipt_id: Uuid,
    pub template_symbol: String,
    pub serial: String,
    pub number: u32,
    pub now: DateTime<Utc>,
    /// The agency's tax code (MST) as configured now.
    pub tax_code: Option<TaxCode>,
    /// A receipt for this payment only (the agency issues one per payment); `None`: the receipt
    /// of the case paid in full.
    pub payment_id: Option<Uuid>,
    pub number_width: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct CancelReceipt {
    pub receipt_id: Uuid,
    pub reason: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum Command {
    AssessFees(AssessFees),
    IssueQr(IssueQr),
    RecordPayment(RecordPayment),
    CancelAssessment(CancelAssessment),
    ExpireQr(ExpireQr),
    RecordReconciliation(RecordReconciliation),
    RecordRemittance(RecordRemittance),
    IssueReceipt(IssueReceipt),
    CancelReceipt(CancelReceipt),
    RefundOverpayment(OverpaymentRefunded),
}

/// Why a command was rejected. Nothing is appended when a command is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("the case has no assessed fees")]
    NotAssessed,
    #[error("the case's fees are already assessed; cancel the assessment to correct it")]
    AlreadyAssessed,
    #[error("the assessment is already cancelled")]
    AlreadyCancelled,
    #[error("money was already received for this case; refund it before cancelling or re-assessing")]
    PaymentsRecorded,
    #[error("case {case_code} does not belong to agency {agency_code}")]
    AgencyMismatch { case_code: CaseCode, agency_code: AgencyCode },
    #[error("at least one fee line is required, and at most {MAX_LINES}")]
    BadLineCount,
    #[error("quantity of {0} must be between 1 and {MAX_QUANTITY}")]
    BadQuantity(FeeCode),
    #[error("fee code {0} appears twice; put the quantity on one line")]
    DuplicateFeeLine(FeeCode),
    #[error("fee code {0} is not in the agency's fee schedule in force")]
    UnknownFeeCode(FeeCode),
    #[error("procedure name must be 1 to 300 characters")]
    BadProcedureName,
    #[error("nothing is outstanding on this case")]
    NothingOutstanding,
    #[error("{0:?} is above the NAPAS 247 limit for one transfer; split the payment")]
    AboveTransferLimit(Vnd),
    #[error("the QR must expire after it is issued")]
    BadExpiry,
    #[error("a payment must have a non-empty idempotency key of at most 200 characters")]
    BadIdempotencyKey,
    #[error("idempotency key {0:?} was already used for a different payment")]
    IdempotencyKeyReused(String),
    #[error("payment {0} is not part of this case")]
    UnknownPayment(Uuid),
    #[error("payment {payment_id} is already reconciled with statement line {statement_line_id}")]
    AlreadyReconciled { payment_id: Uuid, statement_line_id: String },
    #[error("a cancellation needs a reason")]
    MissingReason,
    #[error(
        "{asked} is more than the {refundable} this case can refund (what it received beyond what it owes, less earlier refunds)"
    )]
    RefundTooLarge { asked: Vnd, refundable: Vnd },
    #[error("a refund needs the outgoing transfer's reference (or the cash voucher's number), at most 100 characters")]
    BadRefundReference,
    #[error("the case's history does not add up ({0}); nothing more can be recorded on it")]
    InconsistentHistory(String),
    #[error("a receipt is issued only once the case is paid in full")]
    NotPaidInFull,
    #[error("receipt {0} is already issued for this case; cancel it to issue a new one")]
    ReceiptAlreadyIssued(Uuid),
    #[error("receipt {0} is not an active receipt of this case")]
    UnknownReceipt(Uuid),
    #[error("payment {0} paid no fee line (it was all beyond what was owed): there is nothing to put on a receipt")]
    NothingToReceipt(Uuid),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    VietQr(#[from] vietqr::VietQrError),
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QrStatus {
    Active,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentQr {
    pub qr: QrIssued,
    pub status: QrStatus,
}

/// A case's fees as folded from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFees {
    pub status: CaseStatus,
    pub assessment: Option<FeeAssessed>,
    pub payments: Vec<PaymentReceived>,
    pub paid: Vnd,
    /// What each assessed line has received (by the payments' allocations).
    pub paid_per_line: Vec<Vnd>,
    pub qr: Option<CurrentQr>,
    /// payment id → statement line id.
    pub reconciled: BTreeMap<Uuid, String>,
    pub remittances: Vec<RemittedToTreasury>,
    /// Every receipt issued, cancelled ones included, in order.
    pub receipts: Vec<ReceiptIssued>,
    pub cancelled_receipts: Vec<ReceiptCancelled>,
    /// Overpaid money paid back to the payer, in order.
    pub refunds: Vec<OverpaymentRefunded>,
    pub cancelled: Option<AssessmentCancelled>,
    pub last_changed_at: Option<DateTime<Utc>>,
    /// Set when the history does not add up (a sum past the largest amount): `evolve` is total,
    /// so it records the break here instead of keeping a wrong figure, and every reader
    /// ([`CaseFees::check`], `decide`) turns it into an error.
    pub inconsistent: Option<String>,
}

impl Default for CaseFees {
    fn default() -> Self {
        CaseFees {
            status: CaseStatus::New,
            assessment: None,
            payments: Vec::new(),
            paid: Vnd::ZERO,
            paid_per_line: Vec::new(),
            qr: None,
            reconciled: BTreeMap::new(),
            remittances: Vec::new(),
            receipts: Vec::new(),
            cancelled_receipts: Vec::new(),
            refunds: Vec::new(),
            cancelled: None,
            last_changed_at: None,
            inconsistent: None,
        }
    }
}

impl CaseFees {
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a CaseEvent>) -> CaseFees {
        events.into_iter().fold(CaseFees::default(), evolve)
    }

    /// The state, or why its history cannot be trusted.
    pub fn check(&self) -> Result<&CaseFees, CaseError> {
        match &self.inconsistent {
            Some(reason) => Err(CaseError::InconsistentHistory(reason.clone())),
            None => Ok(self),
        }
    }

    fn mark_inconsistent(&mut self, what: &str, error: MoneyError) {
        if self.inconsistent.is_none() {
            self.inconsistent = Some(format!("{what}: {error}"));
        }
    }

    /// What the case owes: the assessed total, or nothing once cancelled.
    pub fn total(&self) -> Vnd {
        match (&self.assessment, self.status) {
            (_, CaseStatus::Cancelled) | (None, _) => Vnd::ZERO,
            (Some(assessed), _) => assessed.total,
        }
    }

    pub fn outstanding(&self) -> Vnd {
        self.total().excess_over(self.paid)
    }

    /// Money received beyond what is owed (all of it, once cancelled), to be refunded.
    pub fn overpaid(&self) -> Vnd {
        self.paid.excess_over(self.total())
    }

    /// What may still be paid back: the overpayment less the refunds already paid.
    pub fn refundable(&self) -> Result<Vnd, MoneyError> {
        Ok(self.overpaid().excess_over(Vnd::sum(self.refunds.iter().map(|r| r.amount))?))
    }

    /// The receipt in force: the last issued one, unless it was cancelled.
    pub fn active_receipt(&self) -> Option<&ReceiptIssued> {
        self.receipts.last().filter(|r| !self.is_cancelled(r.receipt_id))
    }

    fn is_cancelled(&self, receipt_id: Uuid) -> bool {
        self.cancelled_receipts.iter().any(|c| c.receipt_id == receipt_id)
    }

    /// Every receipt not cancelled, oldest first.
    pub fn receipts_in_force(&self) -> impl Iterator<Item = &ReceiptIssued> {
        self.receipts.iter().filter(|r| !self.is_cancelled(r.receipt_id))
    }

    /// The payments that paid a fee line and have no receipt in force (for an agency that
    /// issues a receipt per payment).
    pub fn payments_without_receipt(&self) -> Vec<Uuid> {
        self.payments
            .iter()
            .filter(|p| !p.allocation.is_empty())
            .filter(|p| !self.receipts_in_force().any(|r| r.payment_id == Some(p.payment_id)))
            .map(|p| p.payment_id)
            .collect()
    }

    /// The QR a citizen may still pay: active and asking for exactly what is outstanding.
    pub fn payable_qr(&self) -> Option<&QrIssued> {
        self.qr
            .as_ref()
            .filter(|current| current.status == QrStatus::Active && current.qr.amount == self.outstanding())
            .map(|current| &current.qr)
    }
}

// ---------------------------------------------------------------------------------------------
// Decide
// ---------------------------------------------------------------------------------------------

pub fn decide(state: &CaseFees, command: Command) -> Result<Vec<CaseEvent>, CaseError> {
    let state = state.check()?;
    match command {
        Command::AssessFees(c) => assess(state, c),
        Command::IssueQr(c) => issue_qr(state, c),
        Command::RecordPayment(c) => record_payment(state, c),
        Command::CancelAssessment(c) => cancel(state, c),
        Command::ExpireQr(c) => expire_qr(state, c),
        Command::RecordReconciliation(c) => reconcile(state, c),
        Command::RecordRemittance(c) => remit(state, c),
        Command::IssueReceipt(c) => issue_receipt(state, c),
        Command::CancelReceipt(c) => cancel_receipt(state, c),
        Command::RefundOverpayment(c) => refund_overpayment(state, c),
    }
}

fn require_assessed(state: &CaseFees) -> Result<&FeeAssessed, CaseError> {
    state.assessment.as_ref().ok_or(CaseError::NotAssessed)
}

fn assess(state: &CaseFees, c: AssessFees) -> Result<Vec<CaseEvent>, CaseError> {
    match state.status {
        CaseStatus::New => {}
        CaseStatus::Cancelled if state.paid.is_zero() => {}
        CaseStatus::Cancelled => return Err(CaseError::PaymentsRecorded),
        _ => return Err(CaseError::AlreadyAssessed),
    }
    if c.case_code.agency() != c.agency_code || c.schedule.agency_code != c.agency_code {
        return Err(CaseError::AgencyMismatch { case_code: c.case_code, agency_code: c.agency_code });
    }
    let procedure_name = c.procedure_name.trim().to_owned();
    if procedure_name.is_empty() || procedure_name.chars().count() > 300 || procedure_name.chars().any(char::is_control)
    {
        return Err(CaseError::BadProcedureName);
    }
    if c.lines.is_empty() || c.lines.len() > MAX_LINES {
        return Err(CaseError::BadLineCount);
    }
    let mut lines: Vec<AssessedLine> = Vec::with_capacity(c.lines.len());
    for request in c.lines {
        if lines.iter().any(|line| line.fee_code == request.fee_code) {
            return Err(CaseError::DuplicateFeeLine(request.fee_code));
        }
        if !(1..=MAX_QUANTITY).contains(&request.quantity) {
            return Err(CaseError::BadQuantity(request.fee_code));
        }
        let rule =
            c.schedule.rule(&request.fee_code).ok_or_else(|| CaseError::UnknownFeeCode(request.fee_code.clone()))?;
        lines.push(AssessedLine {
            fee_code: request.fee_code,
            name: rule.name.clone(),
            kind: rule.kind,
            quantity: request.quantity,
            unit_amount: rule.unit_amount,
            amount: rule.unit_amount.checked_mul(request.quantity)?,
        });
    }
    let total = Vnd::sum(lines.iter().map(|line| line.amount))?.require_positive()?;
    Ok(vec![CaseEvent::FeeAssessed(FeeAssessed {
        case_code: c.case_code,
        agency_code: c.agency_code,
        procedure_name,
        payer: c.payer,
        lines,
        total,
        schedule_version: c.schedule.version,
        schedule_effective_from: c.schedule.effective_from,
        counter_id: c.counter_id,
        assessed_at: c.now,
        procedure_code: c.procedure_code,
    })])
}

fn issue_qr(state: &CaseFees, c: IssueQr) -> Result<Vec<CaseEvent>, CaseError> {
    let assessed = require_assessed(state)?;
    if state.status == CaseStatus::Cancelled {
        return Err(CaseError::AlreadyCancelled);
    }
    let amount = state.outstanding();
    if amount.is_zero() {
        return Err(CaseError::NothingOutstanding);
    }
    if amount >= NAPAS_TRANSFER_LIMIT {
        return Err(CaseError::AboveTransferLimit(amount));
    }
    if c.expires_at <= c.now {
        return Err(CaseError::BadExpiry);
    }
    let reference = PaymentReference::for_case(&assessed.case_code);
    let payload = vietqr::DynamicQr {
        bank_bin: c.beneficiary.bin.clone(),
        account_number: c.beneficiary.number.clone(),
        amount,
        purpose: reference.as_str().to_owned(),
    }
    .encode()?;

    let mut events = Vec::with_capacity(2);
    if let Some(current) = state.qr.as_ref().filter(|q| q.status == QrStatus::Active) {
        events.push(CaseEvent::QrSuperseded(QrSuperseded {
            qr_id: current.qr.qr_id,
            superseded_by: c.qr_id,
            superseded_at: c.now,
        }));
    }
    events.push(CaseEvent::QrIssued(QrIssued {
        qr_id: c.qr_id,
        agency_code: assessed.agency_code.clone(),
        reference,
        amount,
        payload,
        beneficiary: c.beneficiary,
        counter_id: c.counter_id,
        issued_at: c.now,
        expires_at: c.expires_at,
    }));
    Ok(events)
}

fn record_payment(state: &CaseFees, c: RecordPayment) -> Result<Vec<CaseEvent>, CaseError> {
    require_assessed(state)?;
    let amount = c.amount.require_positive()?;
    let key = c.idempotency_key.trim();
    if key.is_empty() || key.len() > 200 {
        return Err(CaseError::BadIdempotencyKey);
    }
    if let Some(seen) = state.payments.iter().find(|p| p.idempotency_key == key) {
        // A retry of a payment already recorded changes nothing; a different payment under
        // the same key is a client error, never silently merged.
        return if seen.amount == amount && seen.channel == c.channel {
            Ok(Vec::new())
        } else {
            Err(CaseError::IdempotencyKeyReused(key.to_owned()))
        };
    }

    let total = state.total();
    let paid_before = state.paid;
    let paid_total = paid_before.checked_add(amount)?;
    let (allocation, excess) = match (&state.assessment, state.status) {
        (Some(assessed), status) if status != CaseStatus::Cancelled => {
            let mut paid_lines = state.paid_per_line.clone();
            paid_lines.resize(assessed.lines.len(), Vnd::ZERO);
            let divided = crate::allocation::allocate(&assessed.lines, &mut paid_lines, amount)?;
            let shares = divided
                .shares
                .iter()
                .filter_map(|share| {
                    let line = assessed.lines.get(share.line)?;
                    Some(PaidLine {
                        line: share.line,
                        fee_code: line.fee_code.clone(),
                        kind: line.kind,
                        amount: share.amount,
                    })
                })
                .collect();
            (shares, divided.excess)
        }
        _ => (Vec::new(), amount),
    };
    let mut events = vec![CaseEvent::PaymentReceived(PaymentReceived {
        payment_id: c.payment_id,
        idempotency_key: key.to_owned(),
        amount,
        channel: c.channel,
        reference: c.reference,
        provider: c.provider,
        bank_reference: c.bank_reference,
        qr_id: c.qr_id,
        payer_account: c.payer_account,
        received_at: c.received_at,
        allocation,
        excess,
    })];
    if paid_total < total {
        events
            .push(CaseEvent::PartiallyPaid(PartiallyPaid { paid_total, outstanding: total.checked_sub(paid_total)? }));
    } else {
        if paid_before < total {
            let mut channels: Vec<PaymentChannel> = state.payments.iter().map(|p| p.channel).collect();
            channels.push(c.channel);
            channels.sort_unstable();
            channels.dedup();
            events.push(CaseEvent::FullyPaid(FullyPaid { paid_total, paid_at: c.received_at, channels }));
        }
        let excess = paid_total.excess_over(total).checked_sub(paid_before.excess_over(total))?;
        if !excess.is_zero() {
            events.push(CaseEvent::Overpaid(Overpaid {
                payment_id: c.payment_id,
                excess,
                overpaid_total: paid_total.excess_over(total),
            }));
        }
    }
    Ok(events)
}

fn cancel(state: &CaseFees, c: CancelAssessment) -> Result<Vec<CaseEvent>, CaseError> {
    require_assessed(state)?;
    if state.status == CaseStatus::Cancelled {
        return Err(CaseError::AlreadyCancelled);
    }
    if !state.paid.is_zero() {
        return Err(CaseError::PaymentsRecorded);
    }
    let reason = c.reason.trim();
    if reason.is_empty() {
        return Err(CaseError::MissingReason);
    }
    Ok(vec![CaseEvent::AssessmentCancelled(AssessmentCancelled { reason: reason.to_owned(), cancelled_at: c.now })])
}

fn expire_qr(state: &CaseFees, c: ExpireQr) -> Result<Vec<CaseEvent>, CaseError> {
    let due = state
        .qr
        .as_ref()
        .is_some_and(|q| q.qr.qr_id == c.qr_id && q.status == QrStatus::Active && q.qr.expires_at <= c.now);
    Ok(if due { vec![CaseEvent::QrExpired(QrExpired { qr_id: c.qr_id, expired_at: c.now })] } else { Vec::new() })
}

fn reconcile(state: &CaseFees, c: RecordReconciliation) -> Result<Vec<CaseEvent>, CaseError> {
    if !state.payments.iter().any(|p| p.payment_id == c.payment_id) {
        return Err(CaseError::UnknownPayment(c.payment_id));
    }
    match state.reconciled.get(&c.payment_id) {
        Some(line) if *line == c.statement_line_id => Ok(Vec::new()),
        Some(line) => Err(CaseError::AlreadyReconciled { payment_id: c.payment_id, statement_line_id: line.clone() }),
        None => Ok(vec![CaseEvent::Reconciled(Reconciled {
            payment_id: c.payment_id,
            statement_line_id: c.statement_line_id,
            statement_date: c.statement_date,
            reconciled_at: c.now,
        })]),
    }
}

fn remit(state: &CaseFees, c: RecordRemittance) -> Result<Vec<CaseEvent>, CaseError> {
    require_assessed(state)?;
    if state.remittances.iter().any(|r| r.remittance_id == c.remittance_id) {
        return Ok(Vec::new());
    }
    let to_budget = Vnd::sum(c.lines.iter().map(|l| l.to_budget))?;
    let retained = Vnd::sum(c.lines.iter().map(|l| l.retained))?;
    Ok(vec![CaseEvent::RemittedToTreasury(RemittedToTreasury {
        remittance_id: c.remittance_id,
        voucher_number: c.voucher_number,
        remitted_on: c.remitted_on,
        up_to: c.up_to,
        lines: c.lines,
        to_budget,
        retained,
    })])
}

/// Pays back money received beyond what the case owes. The same refund recorded again (same
/// reference and amount) changes nothing; more than is refundable is refused.
fn refund_overpayment(state: &CaseFees, c: OverpaymentRefunded) -> Result<Vec<CaseEvent>, CaseError> {
    require_assessed(state)?;
    let reference = c.reference.trim();
    if reference.is_empty() || reference.chars().count() > 100 {
        return Err(CaseError::BadRefundReference);
    }
    if state.refunds.iter().any(|r| r.reference == reference && r.amount == c.amount) {
        return Ok(Vec::new());
    }
    let amount = c.amount.require_positive()?;
    let refundable = state.refundable()?;
    if amount > refundable {
        return Err(CaseError::RefundTooLarge { asked: amount, refundable });
    }
    Ok(vec![CaseEvent::OverpaymentRefunded(OverpaymentRefunded { reference: reference.to_owned(), ..c })])
}

fn issue_receipt(state: &CaseFees, c: IssueReceipt) -> Result<Vec<CaseEvent>, CaseError> {
    let assessed = require_assessed(state)?;
    let (lines, amount, replaces) = match c.payment_id {
        None => {
            if !matches!(state.status, CaseStatus::Paid | CaseStatus::Overpaid) {
                return Err(CaseError::NotPaidInFull);
            }
            if let Some(active) = state.receipts_in_force().last() {
                return Err(CaseError::ReceiptAlreadyIssued(active.receipt_id));
            }
            (assessed.lines.clone(), assessed.total, state.receipts.iter().rev().find(|r| r.payment_id.is_none()))
        }
        Some(payment_id) => {
            let payment = state
                .payments
                .iter()
                .find(|p| p.payment_id == payment_id)
                .ok_or(CaseError::UnknownPayment(payment_id))?;
            if let Some(active) =
                state.receipts_in_force().find(|r| r.payment_id == Some(payment_id) || r.payment_id.is_none())
            {
                return Err(CaseError::ReceiptAlreadyIssued(active.receipt_id));
            }
            if payment.allocation.is_empty() {
                return Err(CaseError::NothingToReceipt(payment_id));
            }
            let lines = payment
                .allocation
                .iter()
                .filter_map(|share| {
                    let line = assessed.lines.get(share.line)?;
                    Some(AssessedLine { amount: share.amount, ..line.clone() })
                })
                .collect::<Vec<_>>();
            let amount = Vnd::sum(payment.allocation.iter().map(|share| share.amount))?;
            let replaces = state.receipts.iter().rev().find(|r| r.payment_id == Some(payment_id));
            (lines, amount, replaces)
        }
    };
    Ok(vec![CaseEvent::ReceiptIssued(ReceiptIssued {
        receipt_id: c.receipt_id,
        agency_code: assessed.agency_code.clone(),
        template_symbol: c.template_symbol,
        serial: c.serial,
        number: c.number,
        payer_name: assessed.payer.name.clone(),
        payer_masked_id: assessed.payer.masked_id(),
        lines,
        amount,
        amount_in_words: crate::amount_in_words::vietnamese(amount),
        issued_at: c.now,
        replaces: replaces.map(|r| r.receipt_id),
        tax_code: c.tax_code,
        procedure_code: assessed.procedure_code.clone(),
        payment_id: c.payment_id,
        number_width: c.number_width,
    })])
}

fn cancel_receipt(state: &CaseFees, c: CancelReceipt) -> Result<Vec<CaseEvent>, CaseError> {
    if !state.receipts_in_force().any(|r| r.receipt_id == c.receipt_id) {
        return Err(CaseError::UnknownReceipt(c.receipt_id));
    }
    let reason = c.reason.trim();
    if reason.is_empty() {
        return Err(CaseError::MissingReason);
    }
    Ok(vec![CaseEvent::ReceiptCancelled(ReceiptCancelled {
        receipt_id: c.receipt_id,
        reason: reason.to_owned(),
        cancelled_at: c.now,
    })])
}

// ---------------------------------------------------------------------------------------------
// Evolve
// ---------------------------------------------------------------------------------------------

pub fn evolve(mut state: CaseFees, event: &CaseEvent) -> CaseFees {
    match event {
        CaseEvent::FeeAssessed(e) => {
            state.paid_per_line = vec![Vnd::ZERO; e.lines.len()];
            state.status = CaseStatus::Assessed;
            state.assessment = Some(e.clone());
            state.cancelled = None;
            state.qr = None;
            state.last_changed_at = Some(e.assessed_at);
        }
        CaseEvent::QrIssued(e) => {
            if state.status == CaseStatus::Assessed {
                state.status = CaseStatus::AwaitingPayment;
            }
            state.qr = Some(CurrentQr { qr: e.clone(), status: QrStatus::Active });
            state.last_changed_at = Some(e.issued_at);
        }
        CaseEvent::QrSuperseded(e) => {
            if state.qr.as_ref().is_some_and(|q| q.qr.qr_id == e.qr_id) {
                state.qr = None;
            }
            state.last_changed_at = Some(e.superseded_at);
        }
        CaseEvent::QrExpired(e) => {
            if let Some(current) = state.qr.as_mut().filter(|q| q.qr.qr_id == e.qr_id) {
                current.status = QrStatus::Expired;
            }
            if state.status == CaseStatus::AwaitingPayment {
                state.status = CaseStatus::Assessed;
            }
            state.last_changed_at = Some(e.expired_at);
        }
        CaseEvent::PaymentReceived(e) => {
            // The amounts were checked when the event was decided; a history that still adds up
            // past the largest amount is marked, never summed wrongly.
            match state.paid.checked_add(e.amount) {
                Ok(paid) => state.paid = paid,
                Err(error) => state.mark_inconsistent("total paid", error),
            }
            let mut broken = None;
            for share in &e.allocation {
                if let Some(paid) = state.paid_per_line.get_mut(share.line) {
                    match paid.checked_add(share.amount) {
                        Ok(sum) => *paid = sum,
                        Err(error) => broken = Some(error),
                    }
                }
            }
            if let Some(error) = broken {
                state.mark_inconsistent("paid per fee line", error);
            }
            state.payments.push(e.clone());
            state.last_changed_at = Some(e.received_at);
        }
        CaseEvent::PartiallyPaid(_) => {
            if state.status != CaseStatus::Cancelled {
                state.status = CaseStatus::PartiallyPaid;
            }
        }
        CaseEvent::FullyPaid(_) => {
            if state.status != CaseStatus::Cancelled {
                state.status = CaseStatus::Paid;
            }
        }
        CaseEvent::Overpaid(_) => {
            if state.status != CaseStatus::Cancelled {
                state.status = CaseStatus::Overpaid;
            }
        }
        CaseEvent::AssessmentCancelled(e) => {
            state.status = CaseStatus::Cancelled;
            state.qr = None;
            state.cancelled = Some(e.clone());
            state.last_changed_at = Some(e.cancelled_at);
        }
        CaseEvent::Reconciled(e) => {
            state.reconciled.insert(e.payment_id, e.statement_line_id.clone());
        }
        CaseEvent::RemittedToTreasury(e) => {
            state.remittances.push(e.clone());
        }
        CaseEvent::ReceiptIssued(e) => {
            state.receipts.push(e.clone());
        }
        CaseEvent::ReceiptCancelled(e) => {
            state.cancelled_receipts.push(e.clone());
        }
        CaseEvent::OverpaymentRefunded(e) => {
            state.refunds.push(e.clone());
        }
    }
    state
}
