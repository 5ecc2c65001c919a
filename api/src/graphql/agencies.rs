//! Agencies and their fee schedules: what admins configure.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CounterId, FeeCode};
use feeledger_domain::fee_schedule::{FeeRule, FeeScheduleVersion, PublishFeeSchedule};
use feeledger_domain::money::Percent;

use super::cases::FeeKindGql;
use super::errors::{ApiError, ApiResult};
use super::scalars::{DateScalar, DateTimeScalar, VndScalar};
use super::{ledger, metadata, now, principal};
use crate::auth::{Principal, Role};

#[derive(InputObject)]
pub struct ConfigureAgencyInput {
    code: String,
    name: String,
    bank_bin: String,
    account_number: String,
    account_name: String,
    /// Whether the agency may keep the retention share of the phí it collects.
    retains_fees: bool,
    counters: Vec<String>,
    /// The receipt template registered with the tax authority (default `01BLP0-001`).
    receipt_template_symbol: Option<String>,
    /// The receipt serial (default `AA-<YY>E` for the year of issue).
    receipt_serial: Option<String>,
}

#[derive(InputObject)]
pub struct FeeRuleInput {
    fee_code: String,
    name: String,
    kind: FeeKindGql,
    unit_amount: VndScalar,
    /// Decimal string, e.g. "90" or "12.5"; "0" for lệ phí.
    retention_percent: String,
}

#[derive(InputObject)]
pub struct FeeScheduleInput {
    agency_code: String,
    effective_from: DateScalar,
    fees: Vec<FeeRuleInput>,
}

#[derive(SimpleObject)]
#[graphql(name = "Agency")]
pub struct AgencyView {
    code: String,
    name: String,
    bank_bin: String,
    account_number: String,
    account_name: String,
    retains_fees: bool,
    counters: Vec<String>,
}

impl From<AgencyConfigured> for AgencyView {
    fn from(a: AgencyConfigured) -> Self {
        AgencyView {
            code: a.agency_code.to_string(),
            name: a.name,
            bank_bin: a.bank_account.bin.to_string(),
            account_number: a.bank_account.number.to_string(),
            account_name: a.bank_account.name,
            retains_fees: a.retains_fees,
            counters: a.counters.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "FeeRule")]
pub struct FeeRuleView {
    fee_code: String,
    name: String,
    kind: FeeKindGql,
    unit_amount: VndScalar,
    retention_percent: String,
}

#[derive(SimpleObject)]
#[graphql(name = "FeeSchedule")]
pub struct FeeScheduleView {
    agency_code: String,
    version: i32,
    effective_from: DateScalar,
    published_at: DateTimeScalar,
    fees: Vec<FeeRuleView>,
}

impl From<FeeScheduleVersion> for FeeScheduleView {
    fn from(v: FeeScheduleVersion) -> Self {
        FeeScheduleView {
            agency_code: v.agency_code.to_string(),
            version: i32::try_from(v.version).unwrap_or(i32::MAX),
            effective_from: DateScalar(v.effective_from),
            published_at: DateTimeScalar(v.published_at),
            fees: v
                .fees
                .into_iter()
                .map(|f| FeeRuleView {
                    fee_code: f.fee_code.to_string(),
                    name: f.name,
                    kind: f.kind.into(),
                    unit_amount: f.unit_amount.into(),
                    retention_percent: f.retention_percent.to_string(),
                })
                .collect(),
        }
    }
}

fn admin(ctx: &Context<'_>) -> ApiResult<Principal> {
    let principal = principal(ctx)?;
    if principal.role == Role::Admin { Ok(principal.clone()) } else { Err(ApiError::forbidden()) }
}

fn readable_agency(ctx: &Context<'_>, code: &str) -> ApiResult<AgencyCode> {
    let principal = principal(ctx)?;
    let code = AgencyCode::parse(code.trim()).map_err(ApiError::validation)?;
    if principal.can_read_agency(&code) || principal.role == Role::Display && principal.agency.as_ref() == Some(&code) {
        Ok(code)
    } else {
        Err(ApiError::forbidden())
    }
}

/// The caller, as their token says.
#[derive(SimpleObject)]
#[graphql(name = "Viewer")]
pub struct ViewerView {
    subject: String,
    /// `officer`, `display`, `finance`, `auditor` or `admin`.
    role: String,
    agency_code: Option<String>,
    counter_id: Option<String>,
}

#[derive(Default, Debug)]
pub struct AgencyQueries;

#[Object]
impl AgencyQueries {
    /// Who the token belongs to and what it is scoped to (screens use it to know their agency).
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<ViewerView> {
        let principal = principal(ctx)?;
        Ok(ViewerView {
            subject: principal.subject.clone(),
            role: principal.role.to_string(),
            agency_code: principal.agency.as_ref().map(ToString::to_string),
            counter_id: principal.counter.as_ref().map(ToString::to_string),
        })
    }

    async fn agency(&self, ctx: &Context<'_>, code: String) -> ApiResult<Option<AgencyView>> {
        let code = readable_agency(ctx, &code)?;
        Ok(ledger(ctx).agency(&code).await?.current.map(AgencyView::from))
    }

    /// Every published version of an agency's fee schedule, oldest first.
    async fn fee_schedules(&self, ctx: &Context<'_>, agency_code: String) -> ApiResult<Vec<FeeScheduleView>> {
        let code = readable_agency(ctx, &agency_code)?;
        let schedule = ledger(ctx).fee_schedule(&code).await?;
        Ok(schedule.versions().iter().cloned().map(FeeScheduleView::from).collect())
    }

    /// The version in force today, whose amounts a new assessment would charge.
    async fn fee_schedule_in_force(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
    ) -> ApiResult<Option<FeeScheduleView>> {
        let code = readable_agency(ctx, &agency_code)?;
        let date = feeledger_domain::vietnam_time::date_of(now(ctx));
        let schedule = ledger(ctx).fee_schedule(&code).await?;
        Ok(schedule.in_force_on(date).cloned().map(FeeScheduleView::from))
    }
}

#[derive(Default, Debug)]
pub struct AgencyMutations;

#[Object]
impl AgencyMutations {
    /// Creates an agency or changes its configuration (admins only).
    async fn configure_agency(&self, ctx: &Context<'_>, input: ConfigureAgencyInput) -> ApiResult<AgencyView> {
        let principal = admin(ctx)?;
        let counters = input
            .counters
            .iter()
            .map(|c| CounterId::parse(c.trim()).map_err(ApiError::validation))
            .collect::<ApiResult<Vec<_>>>()?;
        let wanted = AgencyConfigured {
            agency_code: AgencyCode::parse(input.code.trim()).map_err(ApiError::validation)?,
            name: input.name,
            bank_account: BankAccount {
                bin: BankBin::parse(input.bank_bin.trim()).map_err(ApiError::validation)?,
                number: AccountNumber::parse(input.account_number.trim()).map_err(ApiError::validation)?,
                name: input.account_name,
            },
            retains_fees: input.retains_fees,
            counters,
            receipt_template_symbol: input.receipt_template_symbol.map(|t| t.trim().to_owned()),
            receipt_serial: input.receipt_serial.map(|t| t.trim().to_owned()),
            configured_at: now(ctx),
        };
        let configured = ledger(ctx).configure_agency(wanted, &metadata(ctx, &principal)).await?;
        Ok(configured.into())
    }

    /// Publishes a new version of an agency's fee schedule (admins only). A version with the
    /// same effective date as an earlier one corrects it; rebuild the projections after.
    async fn publish_fee_schedule(&self, ctx: &Context<'_>, input: FeeScheduleInput) -> ApiResult<FeeScheduleView> {
        let principal = admin(ctx)?;
        let fees = input
            .fees
            .into_iter()
            .map(|f| {
                Ok(FeeRule {
                    fee_code: FeeCode::parse(f.fee_code.trim()).map_err(ApiError::validation)?,
                    name: f.name.trim().to_owned(),
                    kind: f.kind.into(),
                    unit_amount: f.unit_amount.0,
                    retention_percent: Percent::parse(f.retention_percent.trim()).map_err(ApiError::validation)?,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let command = PublishFeeSchedule {
            agency_code: AgencyCode::parse(input.agency_code.trim()).map_err(ApiError::validation)?,
            effective_from: input.effective_from.0,
            fees,
            published_at: now(ctx),
        };
        let published = ledger(ctx).publish_fee_schedule(command, &metadata(ctx, &principal)).await?;
        Ok(published.into())
    }
}
