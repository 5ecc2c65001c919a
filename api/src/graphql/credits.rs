//! Money that arrived but matched no case: the queue people work through, assigning each credit
//! to its case or marking it for refund. Nothing leaves the queue except by one of those.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use feeledger_domain::bank_credit::{CreditError, CreditState};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_infrastructure::payment_intake::IntakeError;

use super::cases::{CaseView, parse_case_code};
use super::errors::{ApiError, ApiResult};
use super::scalars::{DateScalar, DateTimeScalar, VndScalar};
use super::{api, metadata, now, principal};
use crate::auth::{Action, Principal, Scope};

#[derive(SimpleObject)]
#[graphql(name = "UnmatchedCredit")]
pub struct CreditView {
    /// `<provider>:<provider transaction id>`, e.g. `sepay:92704`.
    id: ID,
    provider: String,
    amount: VndScalar,
    /// The transfer content as the bank delivered it.
    content: String,
    credited_at: DateTimeScalar,
    bank_reference: Option<String>,
    account_number: Option<String>,
    payer_name: Option<String>,
    payer_account: Option<String>,
    agency_code: Option<String>,
    /// Why it was not matched automatically.
    reason: Option<String>,
    /// OBSERVED, UNMATCHED, MATCHED, REFUND_REQUESTED or REFUNDED.
    status: String,
    /// The case it was assigned to, once assigned.
    case_code: Option<String>,
}

impl From<CreditState> for CreditView {
    fn from(state: CreditState) -> Self {
        let credit = &state.observed.credit;
        CreditView {
            id: ID(state.credit_id()),
            provider: credit.provider.to_string(),
            amount: credit.amount.into(),
            content: credit.content.clone(),
            credited_at: DateTimeScalar(credit.credited_at),
            bank_reference: credit.bank_reference.clone(),
            account_number: credit.account_number.clone(),
            payer_name: credit.payer_name.clone(),
            payer_account: credit.payer_account.clone(),
            agency_code: state.observed.agency_code.as_ref().map(ToString::to_string),
            reason: state.unmatched.as_ref().map(|u| u.reason.clone()),
            status: serde_json::to_value(state.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            case_code: state.matched.as_ref().map(|m| m.case_code.to_string()),
        }
    }
}

fn intake_error(error: IntakeError) -> ApiError {
    match error {
        IntakeError::CreditNotFound(id) => ApiError::NotFound(format!("credit {id} not found")),
        IntakeError::UnknownAccount(_) => ApiError::Validation(error.to_string()),
        IntakeError::Credit(
            CreditError::MissingReason | CreditError::MissingReference | CreditError::RefundTooLarge { .. },
        ) => ApiError::Validation(error.to_string()),
        IntakeError::Credit(_) => ApiError::Conflict(error.to_string()),
        IntakeError::Ledger(ledger) => ledger.into(),
    }
}

/// Whether the caller's role works the queue at all (checked before looking a credit up).
fn may_work_any_queue(principal: &Principal) -> bool {
    principal.may(Action::WorkCreditQueue, Scope::Somewhere)
}

/// Officers and finance staff work the queue of their agency; unscoped finance works them all.
fn may_work_queue(principal: &Principal, agency: Option<&AgencyCode>) -> bool {
    match agency {
        Some(agency) => principal.may(Action::WorkCreditQueue, Scope::Agency(agency)),
        None => principal.may(Action::WorkCreditQueue, Scope::Unattributed),
    }
}

#[derive(Default, Debug)]
pub struct CreditQueries;

/// The agency whose credit queue is asked for (`""`: credits whose agency could not be told),
/// once the caller may read it.
fn credit_queue_of(ctx: &Context<'_>, agency_code: &str) -> ApiResult<Option<AgencyCode>> {
    let principal = principal(ctx)?;
    let agency = match agency_code.trim() {
        "" => None,
        code => Some(AgencyCode::parse(code).map_err(ApiError::validation)?),
    };
    let allowed = match &agency {
        Some(agency) => principal.may(Action::ReadCreditQueue, Scope::Agency(agency)),
        None => principal.may(Action::ReadCreditQueue, Scope::Unattributed),
    };
    if !allowed {
        return Err(ApiError::forbidden());
    }
    Ok(agency)
}

#[Object]
impl CreditQueries {
    /// Credits of an agency's account that wait for a person. `agencyCode: ""` lists credits
    /// whose agency could not be told (e.g. a VNPAY order reference matching no case), for
    /// unscoped finance, auditors and admins.
    async fn unmatched_credits(&self, ctx: &Context<'_>, agency_code: String) -> ApiResult<Vec<CreditView>> {
        let agency = credit_queue_of(ctx, &agency_code)?;
        let credits = api(ctx).intake.unmatched(agency.as_ref()).await.map_err(intake_error)?;
        Ok(credits.into_iter().map(CreditView::from).collect())
    }

    /// Credits marked for refund (`markCreditForRefund`) and not yet paid back: what finance
    /// still owes the senders. `recordRefund` takes one off the list. `agencyCode: ""` as for
    /// `unmatchedCredits`.
    async fn credits_awaiting_refund(&self, ctx: &Context<'_>, agency_code: String) -> ApiResult<Vec<CreditView>> {
        let agency = credit_queue_of(ctx, &agency_code)?;
        let credits = api(ctx).intake.awaiting_refund(agency.as_ref()).await.map_err(intake_error)?;
        Ok(credits.into_iter().map(CreditView::from).collect())
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "RefundMethod", remote = "feeledger_domain::bank_credit::RefundMethod")]
pub enum RefundMethodGql {
    BankTransfer,
    Cash,
}

#[derive(InputObject)]
pub struct RefundInput {
    agency_code: String,
    /// The unmatched credit marked for refund (`markCreditForRefund`) being paid back.
    credit_id: Option<ID>,
    /// A case whose overpayment (money received beyond what it owes) is paid back.
    case_code: Option<String>,
    /// At most what is refundable.
    amount: VndScalar,
    method: RefundMethodGql,
    /// The outgoing transfer's reference, as on the statement's debit line (or the cash
    /// voucher's number).
    reference: String,
    paid_on: DateScalar,
}

#[derive(SimpleObject)]
#[graphql(name = "Refund")]
pub struct RefundView {
    /// The credit paid back (`null` for a case's overpayment).
    credit_id: Option<ID>,
    /// The case whose overpayment was paid back (`null` for a credit).
    case_code: Option<String>,
    amount: VndScalar,
    method: RefundMethodGql,
    reference: String,
    paid_on: DateScalar,
    /// The statement's debit line of the refund, when that statement is imported and the line
    /// carries `reference` with the same amount.
    statement_line_id: Option<String>,
    /// REFUNDED: the credit is closed.
    status: String,
}

/// The statement's debit line of a refund's outgoing transfer, when that statement is already
/// imported: the line whose id or bank reference is `reference`, with the same amount.
async fn refund_debit_line(
    ctx: &Context<'_>,
    agency: &AgencyCode,
    reference: &str,
    amount: feeledger_domain::money::Vnd,
) -> ApiResult<Option<String>> {
    let account = super::ledger(ctx).agency(agency).await?.current.map(|a| a.bank_account.number.to_string());
    let Some(account) = account else { return Ok(None) };
    Ok(api(ctx)
        .statements
        .debit_line(&account, reference)
        .await
        .map_err(|e| ApiError::from(feeledger_infrastructure::ledger::LedgerError::from(e)))?
        .filter(|(_, found)| *found == amount)
        .map(|(id, _)| id))
}

#[derive(Default, Debug)]
pub struct CreditMutations;

#[Object]
impl CreditMutations {
    /// Records an unmatched credit as a payment of `caseCode`, once.
    async fn assign_credit(&self, ctx: &Context<'_>, credit_id: ID, case_code: String) -> ApiResult<CaseView> {
        let principal = principal(ctx)?.clone();
        // Refused before the lookup, so that no other role can probe which credits exist.
        if !may_work_any_queue(&principal) {
            return Err(ApiError::forbidden());
        }
        let case_code = parse_case_code(&case_code)?;
        let intake = &api(ctx).intake;
        let (credit, _) = intake.credit(&credit_id).await.map_err(intake_error)?;
        let credit = credit.ok_or_else(|| ApiError::NotFound(format!("credit {} not found", credit_id.as_str())))?;
        if !may_work_queue(&principal, credit.observed.agency_code.as_ref())
            || !principal.can_read_agency(&case_code.agency())
        {
            return Err(ApiError::forbidden());
        }
        if let Some(agency) = &credit.observed.agency_code
            && *agency != case_code.agency()
        {
            return Err(ApiError::Validation(format!(
                "credit {} arrived on the account of agency {agency}; it cannot pay a case of agency {}",
                credit_id.as_str(),
                case_code.agency()
            )));
        }
        let (record, _) =
            intake.assign(&credit_id, &case_code, &metadata(ctx, &principal), now(ctx)).await.map_err(intake_error)?;
        if !record.exists() {
            return Err(ApiError::NotFound(format!("case {case_code} has no assessed fees")));
        }
        Ok(CaseView::new(record, &principal))
    }

    /// Records the refund of a credit marked for refund (finance): amount, method, the outgoing
    /// transfer's reference and day. Closes the credit; the statement's debit line with that
    /// reference is paired with it. A refund larger than the credit is refused.
    async fn record_refund(&self, ctx: &Context<'_>, input: RefundInput) -> ApiResult<RefundView> {
        let principal = principal(ctx)?.clone();
        let agency = AgencyCode::parse(input.agency_code.trim()).map_err(ApiError::validation)?;
        if !principal.may(Action::ManageMoney, Scope::Agency(&agency)) {
            return Err(ApiError::forbidden());
        }
        let reference = input.reference.trim().to_owned();
        let credit_id = match (&input.credit_id, &input.case_code) {
            (Some(id), None) => id.clone(),
            (None, Some(code)) => {
                let code = CaseCode::parse(code.trim()).map_err(ApiError::validation)?;
                if code.agency() != agency {
                    return Err(ApiError::Validation(format!("case {code} is not a case of agency {agency}")));
                }
                let statement_line_id = refund_debit_line(ctx, &agency, &reference, input.amount.0).await?;
                let refund = feeledger_domain::case_fees::OverpaymentRefunded {
                    amount: input.amount.0,
                    method: input.method.into(),
                    reference,
                    paid_on: input.paid_on.0,
                    statement_line_id,
                    recorded_by: principal.subject.clone(),
                    refunded_at: now(ctx),
                };
                let command = feeledger_domain::case_fees::Command::RefundOverpayment(refund);
                let record = super::ledger(ctx).execute(&code, command, &metadata(ctx, &principal), None).await?;
                let refunded = record.state.refunds.last().cloned().ok_or(ApiError::Internal)?;
                return Ok(RefundView {
                    credit_id: None,
                    case_code: Some(code.to_string()),
                    amount: refunded.amount.into(),
                    method: refunded.method.into(),
                    reference: refunded.reference,
                    paid_on: DateScalar(refunded.paid_on),
                    statement_line_id: refunded.statement_line_id,
                    status: "REFUNDED".into(),
                });
            }
            _ => return Err(ApiError::Validation("give exactly one of creditId and caseCode".into())),
        };
        let intake = &api(ctx).intake;
        let (credit, _) = intake.credit(&credit_id).await.map_err(intake_error)?;
        let credit = credit.ok_or_else(|| ApiError::NotFound(format!("credit {} not found", credit_id.as_str())))?;
        if credit.observed.agency_code.as_ref() != Some(&agency) {
            return Err(ApiError::Validation(format!(
                "credit {} did not arrive on the account of agency {agency}",
                credit_id.as_str()
            )));
        }
        let statement_line_id = refund_debit_line(ctx, &agency, &reference, input.amount.0).await?;
        let refunded = feeledger_domain::bank_credit::CreditRefunded {
            amount: input.amount.0,
            method: input.method.into(),
            reference,
            paid_on: input.paid_on.0,
            statement_line_id,
            recorded_by: principal.subject.clone(),
            at: now(ctx),
        };
        let state =
            intake.record_refund(&credit_id, refunded, &metadata(ctx, &principal)).await.map_err(intake_error)?;
        let refunded = state.refunded.clone().ok_or(ApiError::Internal)?;
        Ok(RefundView {
            credit_id: Some(ID(state.credit_id())),
            case_code: None,
            amount: refunded.amount.into(),
            method: refunded.method.into(),
            reference: refunded.reference,
            paid_on: DateScalar(refunded.paid_on),
            statement_line_id: refunded.statement_line_id,
            status: "REFUNDED".into(),
        })
    }

    /// Marks an unmatched credit to be refunded to the payer (it then leaves the queue).
    async fn mark_credit_for_refund(&self, ctx: &Context<'_>, credit_id: ID, reason: String) -> ApiResult<CreditView> {
        let principal = principal(ctx)?.clone();
        if !may_work_any_queue(&principal) {
            return Err(ApiError::forbidden());
        }
        let intake = &api(ctx).intake;
        let (credit, _) = intake.credit(&credit_id).await.map_err(intake_error)?;
        let credit = credit.ok_or_else(|| ApiError::NotFound(format!("credit {} not found", credit_id.as_str())))?;
        if !may_work_queue(&principal, credit.observed.agency_code.as_ref()) {
            return Err(ApiError::forbidden());
        }
        let state = intake
            .request_refund(&credit_id, &reason, &metadata(ctx, &principal), now(ctx))
            .await
            .map_err(intake_error)?;
        Ok(state.into())
    }
}
