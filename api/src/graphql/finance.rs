//! What finance staff, auditors and admins use every day: the bank statement import, the daily
//! reconciliation, the treasury report and remittances, the cashless rate, receipts, and the
//! projections behind the reports (status, rebuild, progress).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{Datelike, NaiveDate};
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::declaration::{DeclarationPeriod, FeeDeclaration};
use feeledger_domain::money::Percent;
use feeledger_domain::reconciliation::{
    DayReconciliation, ExceptionKind, ItemResolved, OutgoingKind, ResolvedItem, Side,
};
use feeledger_domain::remittance::{RemitError, RemitRequest};
use feeledger_domain::treasury::{TreasuryReport, TreasuryRow};
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::remittance::RemittanceError;
use feeledger_infrastructure::statement::{StatementFormat, parse as parse_statement};
use feeledger_projections::reconciliation::ReconciliationError;
use feeledger_projections::runner::{Projection, ProjectionError, ProjectionStatus, RebuildProgress};
use feeledger_projections::treasury::{self, VoucherDoc};
use futures::Stream;
use rust_decimal::Decimal;
use tokio::sync::broadcast;

use super::cases::{FeeKindGql, PaymentChannelGql, parse_case_code};
use super::errors::{ApiError, ApiResult};
use super::scalars::{DateScalar, DateTimeScalar, VndScalar};
use super::{api, ledger, metadata, now, principal};
use crate::auth::{Action, Principal, Scope};

/// How long a report waits for its read model to apply the latest events before answering
/// (a user who has just paid or issued a receipt sees it in the report).
const READ_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

// --- access -----------------------------------------------------------------------------------

/// Finance staff, auditors and admins read reports of the agencies their token covers.
fn report_reader(ctx: &Context<'_>, agency: &str) -> ApiResult<(Principal, AgencyCode)> {
    let principal = principal(ctx)?.clone();
    let agency = AgencyCode::parse(agency.trim()).map_err(ApiError::validation)?;
    if principal.may(Action::ReadReports, Scope::Agency(&agency)) {
        Ok((principal, agency))
    } else {
        Err(ApiError::forbidden())
    }
}

/// Finance staff act on the money of the agencies their token covers.
fn finance_actor(ctx: &Context<'_>, agency: &AgencyCode) -> ApiResult<Principal> {
    let principal = principal(ctx)?.clone();
    if principal.may(Action::ManageMoney, Scope::Agency(agency)) { Ok(principal) } else { Err(ApiError::forbidden()) }
}

fn today(ctx: &Context<'_>) -> NaiveDate {
    vietnam_time::date_of(now(ctx))
}

pub(crate) fn projection_error(error: ProjectionError) -> ApiError {
    match error {
        ProjectionError::Unknown(name) => ApiError::NotFound(format!("no projection named {name:?}")),
        ProjectionError::Lagging(name) => {
            ApiError::Conflict(format!("projection {name} is catching up; try again in a moment"))
        }
        ProjectionError::Store(store) => feeledger_infrastructure::ledger::LedgerError::from(store).into(),
        ProjectionError::Codec(codec) => feeledger_infrastructure::ledger::LedgerError::from(codec).into(),
        ProjectionError::Document { .. } | ProjectionError::ReadAhead(_) | ProjectionError::Commit(_) => {
            tracing::error!(%error, "a projection failed");
            ApiError::Internal
        }
    }
}

fn import_error(error: feeledger_infrastructure::statement_store::ImportError) -> ApiError {
    use feeledger_infrastructure::statement_store::ImportError;
    match error {
        ImportError::BalanceBreak { .. } | ImportError::PeriodConflict { .. } => ApiError::Conflict(error.to_string()),
        ImportError::Store(e) => feeledger_infrastructure::ledger::LedgerError::from(e).into(),
    }
}

fn reconciliation_error(error: ReconciliationError) -> ApiError {
    match error {
        ReconciliationError::UnknownAgency(agency) => ApiError::NotFound(format!("agency {agency} is not configured")),
        ReconciliationError::Projection(e) => projection_error(e),
    }
}

// --- reconciliation ---------------------------------------------------------------------------

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ReconciliationExceptionKind", remote = "feeledger_domain::reconciliation::ExceptionKind")]
pub enum ExceptionKindGql {
    LedgerOnly,
    BankOnly,
    AmountMismatch,
    Duplicate,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ReconciliationSide", remote = "feeledger_domain::reconciliation::Side")]
pub enum SideGql {
    Ledger,
    Bank,
}

#[derive(SimpleObject)]
#[graphql(name = "ReconciliationException")]
pub struct ExceptionView {
    kind: ExceptionKindGql,
    /// Which side it was found on: the ledger (a payment) or the bank statement (a credit).
    side: SideGql,
    amount: VndScalar,
    reference: Option<String>,
    case_code: Option<String>,
    /// The payment, for an exception on the ledger's side (to resolve it by `paymentId`).
    payment_id: Option<ID>,
    statement_line_id: Option<String>,
    on: DateScalar,
    age_days: i32,
}

#[derive(SimpleObject)]
#[graphql(name = "ReconciliationMatch")]
pub struct MatchView {
    payment_id: ID,
    case_code: String,
    statement_line_id: String,
    booked_on: DateScalar,
    amount: VndScalar,
    by_reference: bool,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "BatchKind", remote = "feeledger_domain::batch_matching::BatchKind")]
pub enum BatchKindGql {
    /// An acquirer's settlement of a day's card (POS) payments.
    CardSettlement,
    /// A cash deposit of one or several days of the cash book.
    CashDeposit,
}

#[derive(SimpleObject)]
#[graphql(name = "ReconciliationBatch")]
pub struct BatchView {
    kind: BatchKindGql,
    statement_line_id: String,
    booked_on: DateScalar,
    /// What the bank credited.
    bank_amount: VndScalar,
    /// Σ of the payments it covers.
    ledger_amount: VndScalar,
    /// The acquirer's fee: ledgerAmount − bankAmount (zero for cash).
    fee: VndScalar,
    days: Vec<DateScalar>,
    payments: i32,
    case_codes: Vec<String>,
}

#[derive(InputObject)]
pub struct ResolveItemInput {
    agency_code: String,
    /// The statement line resolved (give this or `paymentId`).
    statement_line_id: Option<String>,
    /// The payment resolved (give this or `statementLineId`).
    payment_id: Option<String>,
    /// What it is, in words: 1 to 500 characters on one line.
    reason: String,
}

/// A reconciliation item resolved by hand.
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationResolution")]
pub struct ResolutionView {
    statement_line_id: Option<String>,
    payment_id: Option<ID>,
    reason: String,
    resolved_by: String,
    resolved_at: DateTimeScalar,
}

impl From<&ItemResolved> for ResolutionView {
    fn from(resolved: &ItemResolved) -> Self {
        let (statement_line_id, payment_id) = match &resolved.item {
            ResolvedItem::StatementLine(id) => (Some(id.clone()), None),
            ResolvedItem::Payment(id) => (None, Some(ID(id.to_string()))),
        };
        ResolutionView {
            statement_line_id,
            payment_id,
            reason: resolved.reason.clone(),
            resolved_by: resolved.resolved_by.clone(),
            resolved_at: DateTimeScalar(resolved.at),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "StatementDebit")]
pub struct DebitView {
    statement_line_id: String,
    booked_on: DateScalar,
    amount: VndScalar,
    description: String,
    explained_by: Option<OutgoingKindGql>,
    reference: Option<String>,
}

/// What a debit line paid.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(name = "OutgoingKind")]
pub enum OutgoingKindGql {
    /// An overpayment or an unmatched credit paid back (`recordRefund`).
    Refund,
    /// The state budget's share deposited to the State Treasury (`remit`).
    Remittance,
}

impl From<OutgoingKind> for OutgoingKindGql {
    fn from(kind: OutgoingKind) -> Self {
        match kind {
            OutgoingKind::Refund => OutgoingKindGql::Refund,
            OutgoingKind::Remittance => OutgoingKindGql::Remittance,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "UnsettledBatchDay")]
pub struct UnsettledView {
    kind: BatchKindGql,
    day: DateScalar,
    amount: VndScalar,
    payments: i32,
}

#[derive(SimpleObject)]
#[graphql(name = "ChannelTotal")]
pub struct ChannelTotalView {
    channel: PaymentChannelGql,
    count: i32,
    total: VndScalar,
}

pub struct ReconciliationView(DayReconciliation);

#[Object(name = "DailyReconciliation")]
impl ReconciliationView {
    async fn agency_code(&self) -> String {
        self.0.agency_code.to_string()
    }
    async fn date(&self) -> DateScalar {
        DateScalar(self.0.date)
    }
    /// The day's payments that credit the account (bank transfers, e-wallets, the portal).
    async fn ledger_total(&self) -> VndScalar {
        self.0.ledger_total.into()
    }
    /// The statement's credits attributed to the day.
    async fn bank_total(&self) -> VndScalar {
        self.0.bank_total.into()
    }
    async fn matched_count(&self) -> i32 {
        i32::try_from(self.0.matches.len()).unwrap_or(i32::MAX)
    }
    async fn matched_total(&self) -> VndScalar {
        self.0.matched_total.into()
    }
    async fn exceptions(&self) -> Vec<ExceptionView> {
        self.0
            .exceptions
            .iter()
            .map(|e| ExceptionView {
                kind: e.kind.into(),
                side: e.side.into(),
                amount: e.amount.into(),
                reference: e.reference.clone(),
                case_code: e.case_code.as_ref().map(ToString::to_string),
                payment_id: e.payment_id.map(|id| ID(id.to_string())),
                statement_line_id: e.line_id.clone(),
                on: DateScalar(e.on),
                age_days: i32::try_from(e.age_days).unwrap_or(i32::MAX),
            })
            .collect()
    }
    async fn matches(&self) -> Vec<MatchView> {
        self.0
            .matches
            .iter()
            .map(|m| MatchView {
                payment_id: ID(m.payment_id.to_string()),
                case_code: m.case_code.to_string(),
                statement_line_id: m.line_id.clone(),
                booked_on: DateScalar(m.booked_on),
                amount: m.amount.into(),
                by_reference: m.by_reference,
            })
            .collect()
    }
    /// Every payment of the day per channel, cash and card included.
    async fn per_channel(&self) -> Vec<ChannelTotalView> {
        self.0
            .per_channel
            .iter()
            .map(|c| ChannelTotalView {
                channel: c.channel.into(),
                count: i32::try_from(c.count).unwrap_or(i32::MAX),
                total: c.total.into(),
            })
            .collect()
    }
    /// Card settlements and cash deposits booked on the day, each with the payments it covers
    /// and the acquirer's fee as its own amount.
    async fn batches(&self) -> Vec<BatchView> {
        self.0
            .batches
            .iter()
            .map(|b| BatchView {
                kind: b.kind.into(),
                statement_line_id: b.line_id.clone(),
                booked_on: DateScalar(b.booked_on),
                bank_amount: b.bank_amount.into(),
                ledger_amount: b.ledger_amount.into(),
                fee: b.fee.into(),
                days: b.days.iter().copied().map(DateScalar).collect(),
                payments: i32::try_from(b.payments.len()).unwrap_or(i32::MAX),
                case_codes: b.payments.iter().map(|(_, c)| c.to_string()).collect(),
            })
            .collect()
    }
    /// The statement's debits booked on the day, each with the refund or remittance it paid
    /// (none: nothing the ledger recorded explains it, e.g. a bank charge).
    async fn debits(&self) -> Vec<DebitView> {
        self.0
            .debits
            .iter()
            .map(|d| DebitView {
                statement_line_id: d.line_id.clone(),
                booked_on: DateScalar(d.booked_on),
                amount: d.amount.into(),
                description: d.description.clone(),
                explained_by: d.explained_by.map(Into::into),
                reference: d.reference.clone(),
            })
            .collect()
    }
    /// Σ of the day's debit lines.
    async fn debits_total(&self) -> VndScalar {
        self.0.debits_total().0.into()
    }
    /// Σ of the day's debit lines nothing explains.
    async fn unexplained_debits_total(&self) -> VndScalar {
        self.0.debits_total().1.into()
    }
    /// Every line of the day explained: no exception, no card or cash day waiting for its
    /// settlement or deposit, every debit a recorded refund or remittance. (`balanced` says the
    /// sums add up; this says nothing is left to look at.)
    async fn all_explained(&self) -> bool {
        self.0.all_explained()
    }
    /// The day's exceptions and debits finance resolved by hand, with their reasons.
    async fn resolutions(&self) -> Vec<ResolutionView> {
        self.0.resolved.iter().map(ResolutionView::from).collect()
    }
    /// The day's card and cash payments no settlement or deposit explains yet.
    async fn unsettled(&self) -> Vec<UnsettledView> {
        self.0
            .unsettled
            .iter()
            .map(|u| UnsettledView {
                kind: u.kind.into(),
                day: DateScalar(u.day),
                amount: u.amount.into(),
                payments: i32::try_from(u.count).unwrap_or(i32::MAX),
            })
            .collect()
    }
    /// Σ of the credits the day's batches explain.
    async fn batches_total(&self) -> VndScalar {
        self.0.batches_total().into()
    }
    /// Σ of the acquirers' fees of the day's card settlements.
    async fn fees_total(&self) -> VndScalar {
        self.0.fees_total().into()
    }
    /// Σ ledger = Σ matched + Σ ledger-side exceptions, and Σ bank = Σ matched + Σ batches + Σ
    /// bank-side exceptions.
    async fn balanced(&self) -> bool {
        self.0.invariants_hold()
    }
    /// The ledger-side exceptions' total.
    async fn ledger_exceptions_total(&self) -> VndScalar {
        self.0.exceptions_total(Side::Ledger).into()
    }
    async fn bank_exceptions_total(&self) -> VndScalar {
        self.0.exceptions_total(Side::Bank).into()
    }
    async fn oldest_exception_age_days(&self) -> Option<i32> {
        self.0
            .exceptions
            .iter()
            .filter(|e| e.kind != ExceptionKind::Duplicate)
            .map(|e| i32::try_from(e.age_days).unwrap_or(i32::MAX))
            .max()
    }
}

// --- treasury -------------------------------------------------------------------------------

#[derive(SimpleObject)]
#[graphql(name = "TreasuryRow")]
pub struct TreasuryRowView {
    fee_code: String,
    name: String,
    kind: FeeKindGql,
    collected: VndScalar,
    retained: VndScalar,
    payable_to_budget: VndScalar,
    remitted: VndScalar,
    outstanding: VndScalar,
    over_remitted: VndScalar,
    /// The earliest deadline of the row's money not yet remitted, by the fee's own deposit
    /// schedule in working days (`null` when nothing is owed).
    due_on: Option<DateScalar>,
    /// Money not yet remitted whose deadline has passed.
    overdue: VndScalar,
}

impl From<&TreasuryRow> for TreasuryRowView {
    fn from(r: &TreasuryRow) -> Self {
        TreasuryRowView {
            fee_code: r.fee_code.to_string(),
            name: r.fee_name.clone(),
            kind: r.kind.into(),
            collected: r.collected.into(),
            retained: r.retained.into(),
            payable_to_budget: r.payable_to_budget.into(),
            remitted: r.remitted.into(),
            outstanding: r.outstanding.into(),
            over_remitted: r.over_remitted.into(),
            due_on: r.due_on.map(DateScalar),
            overdue: r.overdue.into(),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "NextDeadline")]
pub struct NextDeadlineView {
    due_on: DateScalar,
    /// What is owed by that day.
    amount: VndScalar,
    overdue: bool,
    overdue_days: i32,
}

#[derive(SimpleObject)]
#[graphql(name = "OldestUnremitted")]
pub struct OldestUnremittedView {
    collected_on: DateScalar,
    /// Its deadline by the fee's deposit schedule (by default the 5th of the month after
    /// collection), moved to the next working day.
    due_on: DateScalar,
    overdue_days: i32,
    amount: VndScalar,
}

#[derive(SimpleObject)]
#[graphql(name = "Remittance")]
pub struct RemittanceView {
    id: ID,
    voucher_number: String,
    amount: VndScalar,
    cases: i32,
    remitted_on: Option<DateScalar>,
    up_to: Option<DateScalar>,
    /// The printable deposit voucher (mẫu C1-02/NS); add `.csv` or `.xlsx` for its lines.
    voucher_url: String,
}

/// `/reports/remittances/<id>`: the printable voucher of a remittance.
pub(crate) fn voucher_url(remittance_id: uuid::Uuid) -> String {
    format!("/reports/remittances/{remittance_id}")
}

pub struct TreasuryView(TreasuryReport);

#[Object(name = "TreasuryReport")]
impl TreasuryView {
    async fn agency_code(&self) -> String {
        self.0.agency_code.to_string()
    }
    async fn agency_name(&self) -> &str {
        &self.0.agency_name
    }
    async fn from(&self) -> DateScalar {
        DateScalar(self.0.from)
    }
    async fn to(&self) -> DateScalar {
        DateScalar(self.0.to)
    }
    async fn rows(&self) -> Vec<TreasuryRowView> {
        self.0.rows.iter().map(TreasuryRowView::from).collect()
    }
    async fn collected(&self) -> VndScalar {
        self.0.total.collected.into()
    }
    async fn retained(&self) -> VndScalar {
        self.0.total.retained.into()
    }
    async fn payable_to_budget(&self) -> VndScalar {
        self.0.total.payable_to_budget.into()
    }
    async fn remitted(&self) -> VndScalar {
        self.0.total.remitted.into()
    }
    async fn outstanding(&self) -> VndScalar {
        self.0.total.outstanding.into()
    }
    async fn over_remitted(&self) -> VndScalar {
        self.0.total.over_remitted.into()
    }
    /// Money owed whose deadline has passed (each fee by its own schedule).
    async fn overdue(&self) -> VndScalar {
        self.0.total.overdue.into()
    }
    /// The earliest deadline of money still owed (up to `to`) and what is due by it.
    async fn next_deadline(&self) -> Option<NextDeadlineView> {
        self.0.next_deadline.as_ref().map(|n| NextDeadlineView {
            due_on: DateScalar(n.due_on),
            amount: n.amount.into(),
            overdue: n.overdue_days > 0,
            overdue_days: i32::try_from(n.overdue_days).unwrap_or(i32::MAX),
        })
    }
    /// The oldest collection still owed to the budget (up to `to`), against its deadline.
    async fn oldest_unremitted(&self) -> Option<OldestUnremittedView> {
        self.0.oldest_unremitted.as_ref().map(|o| OldestUnremittedView {
            collected_on: DateScalar(o.collected_on),
            due_on: DateScalar(o.due_on),
            overdue_days: i32::try_from(o.overdue_days).unwrap_or(i32::MAX),
            amount: o.amount.into(),
        })
    }
    async fn remittances(&self) -> Vec<RemittanceView> {
        self.0
            .remittances
            .iter()
            .map(|r| RemittanceView {
                id: ID(r.remittance_id.to_string()),
                voucher_number: r.voucher_number.clone(),
                amount: r.amount.into(),
                cases: i32::try_from(r.cases).unwrap_or(i32::MAX),
                remitted_on: Some(DateScalar(r.remitted_on)),
                up_to: Some(DateScalar(r.up_to)),
                voucher_url: voucher_url(r.remittance_id),
            })
            .collect()
    }
    /// collected = retained + payable for every row and the total, to the đồng.
    async fn balanced(&self) -> bool {
        self.0.invariants_hold()
    }
}

#[derive(InputObject)]
pub struct RemitInput {
    agency_code: String,
    /// Every payable, unremitted amount collected up to and including this day is remitted.
    up_to: DateScalar,
    voucher_number: String,
    /// Must equal that sum (a check against typing errors).
    amount: VndScalar,
    /// The deposit's date (default: today).
    remitted_on: Option<DateScalar>,
}

// --- declarations and vouchers -----------------------------------------------------------------

#[derive(SimpleObject)]
#[graphql(name = "DeclarationRow")]
pub struct DeclarationRowView {
    fee_code: String,
    name: String,
    kind: FeeKindGql,
    /// The budget sub-item (tiểu mục); `null` when the fee rule names none ("not configured").
    budget_sub_item: Option<String>,
    collected: VndScalar,
    /// The effective rate: zero for lệ phí or an agency that may not retain.
    retention_percent: String,
    retained: VndScalar,
    payable_to_budget: VndScalar,
    /// The cases whose payments the row sums (drill-down).
    case_codes: Vec<String>,
    /// The log positions of those payment events.
    event_positions: Vec<String>,
}

/// A fee declaration: 01/PHLP for a month, or the yearly settlement 02/PHLP (phí only).
pub struct DeclarationView(FeeDeclaration);

#[Object(name = "FeeDeclaration")]
impl DeclarationView {
    async fn agency_code(&self) -> String {
        self.0.agency_code.to_string()
    }
    async fn agency_name(&self) -> &str {
        &self.0.agency_name
    }
    /// `01/PHLP` (monthly) or `02/PHLP` (yearly settlement).
    async fn form(&self) -> &'static str {
        match self.0.period {
            DeclarationPeriod::Month { .. } => "01/PHLP",
            DeclarationPeriod::Year { .. } => "02/PHLP",
        }
    }
    /// `YYYY-MM` or `YYYY`.
    async fn period(&self) -> String {
        match self.0.period {
            DeclarationPeriod::Month { year, month } => format!("{year:04}-{month:02}"),
            DeclarationPeriod::Year { year } => format!("{year:04}"),
        }
    }
    async fn rows(&self) -> Vec<DeclarationRowView> {
        self.0
            .rows
            .iter()
            .map(|r| DeclarationRowView {
                fee_code: r.fee_code.to_string(),
                name: r.fee_name.clone(),
                kind: r.kind.into(),
                budget_sub_item: r.budget_sub_item.as_ref().map(ToString::to_string),
                collected: r.collected.into(),
                retention_percent: r.retention_percent.to_string(),
                retained: r.retained.into(),
                payable_to_budget: r.payable_to_budget.into(),
                case_codes: r.case_codes().iter().map(ToString::to_string).collect(),
                event_positions: r.sources.iter().map(|s| s.position.to_string()).collect(),
            })
            .collect()
    }
    async fn collected(&self) -> VndScalar {
        self.0.collected.into()
    }
    async fn retained(&self) -> VndScalar {
        self.0.retained.into()
    }
    async fn payable_to_budget(&self) -> VndScalar {
        self.0.payable_to_budget.into()
    }
    /// collected = retained + payable for every row, and the totals are the rows' sums.
    async fn balanced(&self) -> bool {
        self.0.invariants_hold()
    }
}

#[derive(SimpleObject)]
#[graphql(name = "VoucherLine")]
pub struct VoucherLineView {
    /// `null`: not configured when the money was remitted.
    budget_chapter: Option<String>,
    budget_sub_item: Option<String>,
    /// The month of collection, `YYYY-MM`.
    period: String,
    content: String,
    amount: VndScalar,
}

#[derive(SimpleObject)]
#[graphql(name = "RemittanceVoucher")]
pub struct RemittanceVoucherView {
    id: ID,
    agency_code: String,
    voucher_number: String,
    remitted_on: DateScalar,
    up_to: DateScalar,
    lines: Vec<VoucherLineView>,
    amount: VndScalar,
    amount_in_words: String,
    cases: Vec<String>,
    url: String,
}

fn voucher_view(voucher: &VoucherDoc) -> RemittanceVoucherView {
    RemittanceVoucherView {
        id: ID(voucher.remittance_id.to_string()),
        agency_code: voucher.agency_code.to_string(),
        voucher_number: voucher.voucher_number.clone(),
        remitted_on: DateScalar(voucher.remitted_on),
        up_to: DateScalar(voucher.up_to),
        lines: voucher
            .lines
            .iter()
            .map(|l| VoucherLineView {
                budget_chapter: l.budget_chapter.as_ref().map(ToString::to_string),
                budget_sub_item: l.budget_sub_item.as_ref().map(ToString::to_string),
                period: l.period.to_string(),
                content: l.content.join("; "),
                amount: l.amount.into(),
            })
            .collect(),
        amount: voucher.amount.into(),
        amount_in_words: feeledger_domain::amount_in_words::vietnamese(voucher.amount),
        cases: voucher.cases.iter().map(ToString::to_string).collect(),
        url: voucher_url(voucher.remittance_id),
    }
}

// --- cashless, receipts, statements, projections -----------------------------------------------

#[derive(SimpleObject)]
#[graphql(name = "CashlessRate")]
pub struct CashlessRateView {
    agency_code: String,
    month: String,
    /// Cases paid in full in the month.
    cases: i32,
    cashless: i32,
    online: i32,
    /// Percent of cases paid without cash, e.g. "66.67".
    rate: String,
    online_rate: String,
    target: Option<String>,
    meets_target: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "Receipt")]
pub struct ReceiptView {
    id: ID,
    case_code: String,
    template_symbol: String,
    serial: String,
    number: i32,
    amount: VndScalar,
    amount_in_words: String,
    payer_name: String,
    issued_at: DateTimeScalar,
    cancelled: bool,
    /// The printable receipt.
    url: String,
    /// The number as printed, on the series' width: `0000012`.
    printed_number: String,
    /// The collecting agency's tax code (MST) when the receipt was issued.
    tax_code: Option<String>,
    /// The procedure code (mã TTHC) recorded at assessment.
    procedure_code: Option<String>,
    /// Set on a receipt for one payment (agencies with `receiptPerPayment`).
    payment_id: Option<ID>,
}

#[derive(SimpleObject)]
#[graphql(name = "ReceiptUsage")]
pub struct ReceiptUsageView {
    template_symbol: String,
    serial: String,
    first_number: i32,
    last_number: i32,
    used: i32,
    cancelled: i32,
    total: VndScalar,
}

/// The statement formats `importBankStatement` reads; the same names, in lower case, as the
/// CLI's `--format`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "StatementFormat")]
pub enum StatementFormatGql {
    /// Recognise the format from the file (the default).
    Auto,
    Csv,
    Camt053,
    Mt940,
    /// VietinBank's "LỊCH SỬ GIAO DỊCH - TRANSACTION HISTORY" export (XLSX, XLS, HTML saved as
    /// `.xls`, or CSV).
    Vietinbank,
    /// Vietcombank's "SAO KÊ TÀI KHOẢN / STATEMENT OF ACCOUNT" export.
    Vietcombank,
    /// BIDV's "BÁO CÁO CHI TIẾT SỐ DƯ TÀI KHOẢN" export.
    Bidv,
    /// Agribank's "SAO KÊ TÀI KHOẢN" export.
    Agribank,
}

impl From<StatementFormatGql> for StatementFormat {
    fn from(format: StatementFormatGql) -> Self {
        use feeledger_infrastructure::statement::Bank;
        match format {
            StatementFormatGql::Auto => StatementFormat::Auto,
            StatementFormatGql::Csv => StatementFormat::Csv,
            StatementFormatGql::Camt053 => StatementFormat::Camt053,
            StatementFormatGql::Mt940 => StatementFormat::Mt940,
            StatementFormatGql::Vietinbank => StatementFormat::Bank(Bank::Vietinbank),
            StatementFormatGql::Vietcombank => StatementFormat::Bank(Bank::Vietcombank),
            StatementFormatGql::Bidv => StatementFormat::Bank(Bank::Bidv),
            StatementFormatGql::Agribank => StatementFormat::Bank(Bank::Agribank),
        }
    }
}

#[derive(InputObject)]
pub struct StatementInput {
    /// Default `AUTO`: recognised from the file.
    format: Option<StatementFormatGql>,
    /// The file: text (CSV, camt.053 XML, MT940, an HTML table saved as `.xls`) as it is, or a
    /// binary file (XLSX, XLS) in base64. Content is taken as base64 when `filename` ends in
    /// `.xlsx` or `.xls`, or when it starts with the base64 of a workbook's signature (`UEsDB`,
    /// `0M8R4KGx`); but never when it starts with `<` (an HTML page named `.xls`, sent as text),
    /// which base64 cannot.
    content: String,
    /// The file's name, recorded with the statement's balances.
    filename: Option<String>,
    /// An id the client chose (1 to 64 letters, digits, `-` or `_`) to follow this import's
    /// progress with `statementImportProgress(importId)`, subscribed before the import starts.
    import_id: Option<String>,
}

/// How far a statement import has got.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "StatementImportProgress")]
pub struct ImportProgress {
    import_id: String,
    /// Lines stored so far (checked every thousand lines).
    done: i32,
    /// Lines in the file (0 until the file is read).
    total: i32,
    /// The import committed (or, with `failed`, was refused: nothing was stored).
    finished: bool,
    failed: bool,
}

/// A valid import id, or a `VALIDATION` error naming the rule.
fn import_id(id: &str) -> ApiResult<String> {
    let valid = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(ApiError::Validation("importId must be 1 to 64 letters, digits, '-' or '_'".into()))
    }
}

/// The bytes of an uploaded statement (see [`StatementInput::content`]).
fn statement_bytes(content: &str, filename: Option<&str>) -> ApiResult<Vec<u8>> {
    use base64::Engine as _;
    let binary_name = filename.is_some_and(|name| {
        let name = name.to_ascii_lowercase();
        name.ends_with(".xlsx") || name.ends_with(".xls")
    });
    let trimmed = content.trim_start_matches('\u{feff}').trim_start();
    // `<` is not in the base64 alphabet: a page that starts with it is the HTML text itself.
    let markup = trimmed.starts_with('<');
    if !markup && (binary_name || trimmed.starts_with("UEsDB") || trimmed.starts_with("0M8R4KGx")) {
        let compact: String = content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).map_err(|e| {
            ApiError::Validation(format!("content is not valid base64 ({e}); send XLSX and XLS files base64-encoded"))
        });
    }
    Ok(content.as_bytes().to_vec())
}

#[derive(SimpleObject)]
#[graphql(name = "StatementImport")]
pub struct StatementImportView {
    account_number: String,
    /// The format the file was read as (lower case, e.g. `vietinbank`).
    format: String,
    lines: i32,
    /// New lines stored.
    inserted: i32,
    /// Lines already imported before (left as they were).
    already_known: i32,
    /// The first and last booking day of the lines.
    first_day: Option<DateScalar>,
    last_day: Option<DateScalar>,
    /// The balances the file gives, in signed whole đồng; when both are given, opening + Σ
    /// credits − Σ debits = closing was checked, and the statement chains with the statements
    /// imported before and after it.
    opening_balance: Option<String>,
    closing_balance: Option<String>,
    credits_total: VndScalar,
    debits_total: VndScalar,
}

#[derive(SimpleObject)]
#[graphql(name = "RebuildProgress")]
pub struct RebuildProgressView {
    generation: i32,
    done: String,
    total: String,
    events_per_second: String,
    eta_seconds: Option<String>,
    finished: bool,
}

impl From<&RebuildProgress> for RebuildProgressView {
    fn from(p: &RebuildProgress) -> Self {
        RebuildProgressView {
            generation: p.generation,
            done: p.done.to_string(),
            total: p.total.to_string(),
            events_per_second: p.events_per_second.to_string(),
            eta_seconds: p.eta_seconds.map(|s| s.to_string()),
            finished: p.finished,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "ProjectionStatus")]
pub struct ProjectionStatusView {
    name: String,
    version: i32,
    generation: i32,
    /// The checkpoint: transaction id and global position.
    checkpoint: String,
    /// Events after the checkpoint (not yet applied).
    lag: String,
    rebuilding: bool,
    progress: Option<RebuildProgressView>,
}

impl From<ProjectionStatus> for ProjectionStatusView {
    fn from(s: ProjectionStatus) -> Self {
        ProjectionStatusView {
            name: s.name.to_owned(),
            version: i32::try_from(s.version).unwrap_or(i32::MAX),
            generation: s.generation,
            checkpoint: s.checkpoint.to_string(),
            lag: s.lag.to_string(),
            rebuilding: s.rebuild.is_some(),
            progress: s.rebuild.as_ref().map(RebuildProgressView::from),
        }
    }
}

pub(crate) fn receipt_view(
    record: &feeledger_infrastructure::ledger::CaseRecord,
    receipt_id: Option<uuid::Uuid>,
) -> ApiResult<ReceiptView> {
    let state = &record.state;
    let receipt = match receipt_id {
        Some(id) => state.receipts.iter().find(|r| r.receipt_id == id),
        None => state.receipts.last(),
    }
    .ok_or_else(|| ApiError::NotFound("no such receipt".into()))?;
    Ok(ReceiptView {
        id: ID(receipt.receipt_id.to_string()),
        case_code: record.code.to_string(),
        template_symbol: receipt.template_symbol.clone(),
        serial: receipt.serial.clone(),
        number: i32::try_from(receipt.number).unwrap_or(i32::MAX),
        amount: receipt.amount.into(),
        amount_in_words: receipt.amount_in_words.clone(),
        payer_name: receipt.payer_name.clone(),
        issued_at: DateTimeScalar(receipt.issued_at),
        cancelled: state.cancelled_receipts.iter().any(|c| c.receipt_id == receipt.receipt_id),
        url: format!("/receipts/{}", receipt.receipt_id),
        printed_number: receipt.printed_number(),
        tax_code: receipt.tax_code.as_ref().map(ToString::to_string),
        procedure_code: receipt.procedure_code.as_ref().map(ToString::to_string),
        payment_id: receipt.payment_id.map(|id| ID(id.to_string())),
    })
}

fn parse_month(month: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d")
        .map_err(|_| ApiError::Validation(format!("month {month:?} must be YYYY-MM")))
}

#[derive(Default, Debug)]
pub struct FinanceQueries;

#[Object]
impl FinanceQueries {
    /// An agency's collection account for a Vietnamese calendar day: the ledger against the
    /// imported bank statement, every exception with its age.
    async fn daily_reconciliation(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
        date: DateScalar,
    ) -> ApiResult<ReconciliationView> {
        let (_, agency) = report_reader(ctx, &agency_code)?;
        let report =
            api(ctx).reconciliations.report(&agency, date.0, today(ctx)).await.map_err(reconciliation_error)?;
        Ok(ReconciliationView(report))
    }

    /// Collected, retained, payable to the budget, remitted and outstanding per fee code, for
    /// collections from `from` to `to`.
    async fn treasury_report(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
        from: DateScalar,
        to: DateScalar,
    ) -> ApiResult<TreasuryView> {
        let (_, agency) = report_reader(ctx, &agency_code)?;
        if from.0 > to.0 {
            return Err(ApiError::Validation("from must not be after to".into()));
        }
        api(ctx).runner.wait_for(treasury::TreasuryProjection::NAME, READ_PATIENCE).await;
        let report = api(ctx).treasury.report(&agency, from.0, to.0, today(ctx)).await.map_err(projection_error)?;
        Ok(TreasuryView(report))
    }

    /// The monthly fee declaration (01/PHLP) of `month` ("YYYY-MM"): per fee and budget
    /// sub-item, collected, retention rate, retained and payable to the budget, each row with
    /// the cases and events it sums.
    async fn fee_declaration(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
        month: String,
    ) -> ApiResult<DeclarationView> {
        let (_, agency) = report_reader(ctx, &agency_code)?;
        let first = parse_month(&month)?;
        let period = DeclarationPeriod::Month { year: first.year(), month: first.month() };
        api(ctx).runner.wait_for(treasury::TreasuryProjection::NAME, READ_PATIENCE).await;
        let declaration = api(ctx).treasury.declaration(&agency, period).await.map_err(projection_error)?;
        Ok(DeclarationView(declaration))
    }

    /// The yearly settlement of phí (02/PHLP) of `year`.
    async fn fee_settlement(&self, ctx: &Context<'_>, agency_code: String, year: i32) -> ApiResult<DeclarationView> {
        let (_, agency) = report_reader(ctx, &agency_code)?;
        if !(2000..=9999).contains(&year) {
            return Err(ApiError::Validation(format!("year {year} is out of range")));
        }
        api(ctx).runner.wait_for(treasury::TreasuryProjection::NAME, READ_PATIENCE).await;
        let declaration =
            api(ctx).treasury.declaration(&agency, DeclarationPeriod::Year { year }).await.map_err(projection_error)?;
        Ok(DeclarationView(declaration))
    }

    /// A remittance's deposit voucher (C1-02/NS lines), or `null` when there is none.
    async fn remittance_voucher(
        &self,
        ctx: &Context<'_>,
        remittance_id: ID,
    ) -> ApiResult<Option<RemittanceVoucherView>> {
        let principal = principal(ctx)?.clone();
        if !principal.may(Action::ReadReports, Scope::Somewhere) {
            return Err(ApiError::forbidden());
        }
        let id: uuid::Uuid =
            remittance_id.parse().map_err(|_| ApiError::Validation("remittanceId must be a UUID".into()))?;
        api(ctx).runner.wait_for(treasury::TreasuryProjection::NAME, READ_PATIENCE).await;
        let voucher = api(ctx).treasury.voucher(id).await.map_err(projection_error)?;
        match voucher {
            Some(v) if principal.can_read_agency(&v.agency_code) => Ok(Some(voucher_view(&v))),
            Some(_) => Err(ApiError::forbidden()),
            None => Ok(None),
        }
    }

    /// Of the cases paid in full in `month` ("YYYY-MM"), the share paid without cash and online.
    async fn cashless_rate(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
        month: String,
    ) -> ApiResult<CashlessRateView> {
        let (_, agency) = report_reader(ctx, &agency_code)?;
        let first = parse_month(&month)?;
        let key = format!("{:04}-{:02}", first.year(), first.month());
        api(ctx).runner.wait_for(feeledger_projections::cashless::CashlessProjection::NAME, READ_PATIENCE).await;
        let counts = feeledger_projections::cashless::month(api(ctx).runner.documents(), &agency, &key)
            .await
            .map_err(projection_error)?;
        let rate = feeledger_projections::cashless::MonthCounts::percent(counts.cashless, counts.cases);
        let target: Percent = api(ctx).cashless_target_percent;
        Ok(CashlessRateView {
            agency_code: agency.to_string(),
            month: key,
            cases: i32::try_from(counts.cases).unwrap_or(i32::MAX),
            cashless: i32::try_from(counts.cashless).unwrap_or(i32::MAX),
            online: i32::try_from(counts.online).unwrap_or(i32::MAX),
            rate: format!("{rate:.2}"),
            online_rate: format!(
                "{:.2}",
                feeledger_projections::cashless::MonthCounts::percent(counts.online, counts.cases)
            ),
            target: Some(format!("{:.2}", target.as_decimal())),
            meets_target: counts.cases > 0 && rate >= target.as_decimal().max(Decimal::ZERO),
        })
    }

    /// Receipts issued from `from` to `to` per template and serial, for the tax authority.
    async fn receipt_usage(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
        from: DateScalar,
        to: DateScalar,
    ) -> ApiResult<Vec<ReceiptUsageView>> {
        let (_, agency) = report_reader(ctx, &agency_code)?;
        api(ctx).runner.wait_for(feeledger_projections::receipts::ReceiptsProjection::NAME, READ_PATIENCE).await;
        let usage = feeledger_projections::receipts::usage(api(ctx).runner.documents(), &agency, from.0, to.0)
            .await
            .map_err(projection_error)?;
        Ok(usage
            .into_iter()
            .map(|u| ReceiptUsageView {
                template_symbol: u.template_symbol,
                serial: u.serial,
                first_number: i32::try_from(u.first_number).unwrap_or(i32::MAX),
                last_number: i32::try_from(u.last_number).unwrap_or(i32::MAX),
                used: i32::try_from(u.used).unwrap_or(i32::MAX),
                cancelled: i32::try_from(u.cancelled).unwrap_or(i32::MAX),
                total: u.total.into(),
            })
            .collect())
    }

    /// Every read model, its checkpoint, lag, and any rebuild in progress.
    async fn projections(&self, ctx: &Context<'_>) -> ApiResult<Vec<ProjectionStatusView>> {
        let principal = principal(ctx)?;
        if !principal.may(Action::ReadOperations, Scope::Unattributed) {
            return Err(ApiError::forbidden());
        }
        let statuses = api(ctx).runner.statuses().await.map_err(projection_error)?;
        Ok(statuses.into_iter().map(ProjectionStatusView::from).collect())
    }
}

#[derive(Default, Debug)]
pub struct FinanceMutations;

#[Object]
impl FinanceMutations {
    /// Imports a bank statement: the ledger's CSV, camt.053, MT940, or a bank's own export
    /// (VietinBank, Vietcombank, BIDV, Agribank; XLSX/XLS base64-encoded, or CSV), recognised
    /// automatically unless `format` names it. The whole file or nothing: a line already
    /// imported is left as it is; balances that do not add up or do not chain are refused.
    async fn import_bank_statement(&self, ctx: &Context<'_>, input: StatementInput) -> ApiResult<StatementImportView> {
        let principal = principal(ctx)?.clone();
        if !principal.may(Action::ManageMoney, Scope::Somewhere) {
            return Err(ApiError::forbidden());
        }
        let import_id = input.import_id.as_deref().map(import_id).transpose()?;
        let imports = api(ctx).imports.clone();
        let tell = move |done: u32, total: u32, finished: bool, failed: bool| {
            if let Some(id) = &import_id {
                let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
                // No subscriber is fine: nobody is watching.
                let _ = imports.send(ImportProgress {
                    import_id: id.clone(),
                    done: count(done),
                    total: count(total),
                    finished,
                    failed,
                });
            }
        };
        let result = import_statement(ctx, &principal, input, &tell).await;
        match &result {
            Ok(view) => {
                let lines = u32::try_from(view.lines).unwrap_or_default();
                tell(lines, lines, true, false);
            }
            Err(_) => tell(0, 0, true, true),
        }
        result
    }

    /// Reconciles a day and records each new match on its case (Reconciled).
    async fn reconcile_day(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
        date: DateScalar,
    ) -> ApiResult<ReconciliationView> {
        let agency = AgencyCode::parse(agency_code.trim()).map_err(ApiError::validation)?;
        let principal = finance_actor(ctx, &agency)?;
        let reconciliations = &api(ctx).reconciliations;
        let report = reconciliations.report(&agency, date.0, today(ctx)).await.map_err(reconciliation_error)?;
        let new = reconciliations.unrecorded(&agency, date.0, &report).await.map_err(reconciliation_error)?;
        // The day's new matches, on all their cases, in one transaction.
        let recorded = ledger(ctx).record_reconciliation(&new, &metadata(ctx, &principal), now(ctx)).await?;
        tracing::info!(
            agency.code = %agency,
            date = %date.0,
            matched = report.matches.len(),
            recorded,
            exceptions = report.exceptions.len(),
            "day reconciled"
        );
        if recorded == 0 {
            return Ok(ReconciliationView(report));
        }
        let after = reconciliations.report(&agency, date.0, today(ctx)).await.map_err(reconciliation_error)?;
        Ok(ReconciliationView(after))
    }

    /// Resolves by hand, with a reason, a reconciliation item no rule explains: a statement
    /// line (a bank charge, a credit the bank reversed) or a payment (one the bank has not
    /// booked). The item then counts as explained (`allExplained`); once resolved, another
    /// reason is refused (CONFLICT), the same again answers the first.
    async fn resolve_reconciliation_item(
        &self,
        ctx: &Context<'_>,
        input: ResolveItemInput,
    ) -> ApiResult<ResolutionView> {
        let agency = AgencyCode::parse(input.agency_code.trim()).map_err(ApiError::validation)?;
        let principal = finance_actor(ctx, &agency)?;
        let item = match (input.statement_line_id, input.payment_id) {
            (Some(line), None) if !line.trim().is_empty() => ResolvedItem::StatementLine(line.trim().to_owned()),
            (None, Some(payment)) => {
                ResolvedItem::Payment(uuid::Uuid::parse_str(payment.trim()).map_err(|_| {
                    ApiError::Validation(format!("paymentId {:?} is not a payment id", payment.as_str()))
                })?)
            }
            _ => return Err(ApiError::Validation("give exactly one of statementLineId and paymentId".into())),
        };
        let wanted = ItemResolved {
            agency_code: agency,
            item,
            reason: input.reason,
            resolved_by: principal.subject.clone(),
            at: now(ctx),
        };
        let resolved = super::ledger(ctx).resolve_item(wanted, &metadata(ctx, &principal)).await?;
        Ok(ResolutionView::from(&resolved))
    }

    /// Records a deposit to the State Treasury of everything payable up to `upTo`.
    async fn remit_to_treasury(&self, ctx: &Context<'_>, input: RemitInput) -> ApiResult<RemittanceView> {
        let agency = AgencyCode::parse(input.agency_code.trim()).map_err(ApiError::validation)?;
        let principal = finance_actor(ctx, &agency)?;
        let runner = &api(ctx).runner;
        runner
            .caught_up(treasury::TreasuryProjection::NAME, std::time::Duration::from_secs(10))
            .await
            .map_err(projection_error)?;
        let remitted_on = input.remitted_on.map_or_else(|| today(ctx), |d| d.0);
        let request = RemitRequest {
            agency,
            up_to: input.up_to.0,
            voucher_number: input.voucher_number.clone(),
            amount: input.amount.0,
            remitted_on,
        };
        let candidates =
            api(ctx).treasury.unremitted_cases(&request.agency, request.up_to).await.map_err(projection_error)?;
        let remittance = ledger(ctx).remit(&request, &candidates, &metadata(ctx, &principal), now(ctx)).await.map_err(
            |e| match e {
                RemittanceError::Rejected(RemitError::Money(error)) => {
                    tracing::error!(%error, "a remittance's sums do not add up");
                    ApiError::Internal
                }
                RemittanceError::Rejected(used @ RemitError::VoucherUsed { .. }) => {
                    ApiError::Conflict(used.to_string())
                }
                RemittanceError::Rejected(rejected) => ApiError::Validation(rejected.to_string()),
                RemittanceError::Ledger(l) => l.into(),
            },
        )?;
        Ok(RemittanceView {
            id: ID(remittance.remittance_id.to_string()),
            voucher_number: remittance.voucher_number,
            amount: remittance.amount.into(),
            cases: i32::try_from(remittance.cases).unwrap_or(i32::MAX),
            remitted_on: Some(DateScalar(remitted_on)),
            up_to: Some(input.up_to),
            voucher_url: voucher_url(remittance.remittance_id),
        })
    }

    /// Issues the electronic receipt of a case paid in full, numbered without gaps.
    async fn issue_receipt(&self, ctx: &Context<'_>, case_code: String) -> ApiResult<ReceiptView> {
        let code = parse_case_code(&case_code)?;
        let principal = principal(ctx)?.clone();
        if !principal.may(Action::IssueReceipts, Scope::Agency(&code.agency())) {
            return Err(ApiError::forbidden());
        }
        let record = ledger(ctx).issue_receipt(&code, &metadata(ctx, &principal), now(ctx)).await?;
        receipt_view(&record, None)
    }

    /// Cancels a receipt (to correct it, issue a new one).
    async fn cancel_receipt(&self, ctx: &Context<'_>, receipt_id: ID, reason: String) -> ApiResult<ReceiptView> {
        let principal = principal(ctx)?.clone();
        // Refused before the lookup, so that no other role can probe which receipts exist.
        if !principal.may(Action::IssueReceipts, Scope::Somewhere) {
            return Err(ApiError::forbidden());
        }
        let receipt_id: uuid::Uuid =
            receipt_id.parse().map_err(|_| ApiError::Validation("receiptId must be a UUID".into()))?;
        let event = ledger(ctx)
            .store()
            .receipt_issued(receipt_id)
            .await
            .map_err(|e| ApiError::from(feeledger_infrastructure::ledger::LedgerError::from(e)))?
            .ok_or_else(|| ApiError::NotFound(format!("receipt {receipt_id} not found")))?;
        let code =
            parse_case_code(event.stream_id.trim_start_matches(feeledger_infrastructure::codec::CASE_STREAM_PREFIX))?;
        if !principal.may(Action::IssueReceipts, Scope::Agency(&code.agency())) {
            return Err(ApiError::forbidden());
        }
        let command = feeledger_domain::case_fees::Command::CancelReceipt(feeledger_domain::case_fees::CancelReceipt {
            receipt_id,
            reason,
            now: now(ctx),
        });
        let record = ledger(ctx).execute(&code, command, &metadata(ctx, &principal), None).await?;
        receipt_view(&record, Some(receipt_id))
    }

    /// Rebuilds a read model into a new generation from position zero, while the current one
    /// keeps answering; switches when caught up. Follow it with `projectionProgress`.
    async fn rebuild_projection(&self, ctx: &Context<'_>, name: String) -> ApiResult<ProjectionStatusView> {
        let principal = principal(ctx)?;
        if !principal.may(Action::Administer, Scope::Unattributed) {
            return Err(ApiError::forbidden());
        }
        let runner = &api(ctx).runner;
        let (name, _) = runner.request_rebuild(&name).await.map_err(projection_error)?;
        Ok(runner.status(name).await.map_err(projection_error)?.into())
    }
}

/// `importBankStatement`'s work; `tell(done, total, finished, failed)` hears its progress.
async fn import_statement(
    ctx: &Context<'_>,
    principal: &Principal,
    input: StatementInput,
    tell: &(dyn Fn(u32, u32, bool, bool) + Send + Sync),
) -> ApiResult<StatementImportView> {
    let requested: StatementFormat = input.format.unwrap_or(StatementFormatGql::Auto).into();
    let bytes = statement_bytes(&input.content, input.filename.as_deref())?;
    let format = match requested {
        StatementFormat::Auto => feeledger_infrastructure::statement::detect(&bytes).map_err(ApiError::validation)?,
        named => named,
    };
    let statement = parse_statement(format, &bytes).map_err(ApiError::validation)?;
    // A scoped finance user imports only their own agency's account.
    if let Some(own) = &principal.agency {
        let account = ledger(ctx).agency(own).await?.current.map(|a| a.bank_account.number.to_string());
        if !statement.lines.is_empty() && account.as_deref() != Some(statement.account_number.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "account {} is not your agency's collection account",
                statement.account_number
            )));
        }
    }
    let source = feeledger_infrastructure::statement_store::ImportSource {
        format: format.as_str(),
        filename: input.filename.as_deref(),
    };
    let summary = api(ctx)
        .statements
        .import_from(&statement, source, now(ctx), &mut |done, total| tell(done, total, false, false))
        .await
        .map_err(import_error)?;
    let (credits, debits) = statement.totals().map_err(ApiError::validation)?;
    Ok(StatementImportView {
        account_number: statement.account_number.clone(),
        format: format.as_str().to_owned(),
        lines: i32::try_from(summary.lines).unwrap_or(i32::MAX),
        inserted: i32::try_from(summary.inserted).unwrap_or(i32::MAX),
        already_known: i32::try_from(summary.already_known).unwrap_or(i32::MAX),
        first_day: statement.from.map(DateScalar),
        last_day: statement.to.map(DateScalar),
        opening_balance: statement.opening_balance.map(|b| b.to_string()),
        closing_balance: statement.closing_balance.map(|b| b.to_string()),
        credits_total: credits.into(),
        debits_total: debits.into(),
    })
}

#[derive(Default, Debug)]
pub struct FinanceSubscriptions;

#[Subscription]
impl FinanceSubscriptions {
    /// A statement import's progress (`importBankStatement` given this `importId`): first
    /// `{ done: 0, total: 0 }` once listening (start the import after it), then every thousand
    /// lines stored, then `finished` (with `failed` when the file was refused); then it ends.
    async fn statement_import_progress(
        &self,
        ctx: &Context<'_>,
        import_id: String,
    ) -> Result<impl Stream<Item = ImportProgress> + use<>, ApiError> {
        if !principal(ctx)?.may(Action::ManageMoney, Scope::Somewhere) {
            return Err(ApiError::forbidden());
        }
        let id = self::import_id(&import_id)?;
        let updates = api(ctx).imports.subscribe();
        let first = ImportProgress { import_id: id.clone(), done: 0, total: 0, finished: false, failed: false };
        let stream = futures::stream::unfold((Some(first), Some(updates)), move |(first, updates)| {
            let id = id.clone();
            async move {
                if let Some(first) = first {
                    return Some((first, (None, updates)));
                }
                let mut updates = updates?;
                loop {
                    match updates.recv().await {
                        Ok(progress) if progress.import_id == id => {
                            let more = (!progress.finished).then_some(updates);
                            return Some((progress, (None, more)));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(stream)
    }

    /// A projection's status now and after every rebuild batch (done, total, events/s, ETA).
    async fn projection_progress(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<impl Stream<Item = ProjectionStatusView> + use<>, ApiError> {
        let principal = principal(ctx)?;
        if !principal.may(Action::ReadOperations, Scope::Unattributed) {
            return Err(ApiError::forbidden());
        }
        let runner = api(ctx).runner.clone();
        let updates = runner.subscribe_progress();
        let first = runner.status(&name).await.map_err(projection_error)?;
        let name = first.name;
        let stream =
            futures::stream::unfold((Some(first), updates, runner), move |(first, mut updates, runner)| async move {
                if let Some(first) = first {
                    return Some((ProjectionStatusView::from(first), (None, updates, runner)));
                }
                loop {
                    match updates.recv().await {
                        Ok(progress) if progress.name == name => {
                            let mut status = runner.status(name).await.ok()?;
                            if status.rebuild.is_none() || progress.rebuild.finished {
                                status.rebuild = Some(progress.rebuild);
                            }
                            return Some((ProjectionStatusView::from(status), (None, updates, runner)));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
        Ok(stream)
    }
}
