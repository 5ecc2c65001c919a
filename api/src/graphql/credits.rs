//! Money that arrived but matched no case: the queue people work through, assigning each credit
//! to its case or marking it for refund. Nothing leaves the queue except by one of those.

use async_graphql::{Context, ID, Object, SimpleObject};
use feeledger_domain::bank_credit::{CreditError, CreditState};
use feeledger_domain::codes::AgencyCode;
use feeledger_infrastructure::payment_intake::IntakeError;

use super::cases::{CaseView, parse_case_code};
use super::errors::{ApiError, ApiResult};
use super::scalars::{DateTimeScalar, VndScalar};
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
    /// OBSERVED, UNMATCHED, MATCHED or REFUND_REQUESTED.
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
        IntakeError::Credit(CreditError::MissingReason) => ApiError::Validation(error.to_string()),
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

#[Object]
impl CreditQueries {
    /// Credits of an agency's account that wait for a person. `agencyCode: ""` lists credits
    /// whose agency could not be told (e.g. a VNPAY order reference matching no case), for
    /// unscoped finance, auditors and admins.
    async fn unmatched_credits(&self, ctx: &Context<'_>, agency_code: String) -> ApiResult<Vec<CreditView>> {
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
        let credits = api(ctx).intake.unmatched(agency.as_ref()).await.map_err(intake_error)?;
        Ok(credits.into_iter().map(CreditView::from).collect())
    }
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
