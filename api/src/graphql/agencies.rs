//! Agencies and their fee schedules: what admins configure.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use feeledger_domain::agency::{AgencyConfigured, TreasuryIdentity};
use feeledger_domain::budget::{
    AdminAreaCode, BudgetChapter, BudgetSubItem, DayOfMonth, TaxCode, TaxOfficeCode, TreasuryAccount, TreasuryCode,
};
use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CodeError, CounterId, FeeCode};
use feeledger_domain::fee_schedule::{FeeRule, FeeScheduleVersion, PublishFeeSchedule};
use feeledger_domain::money::Percent;
use feeledger_domain::treasury::DepositSchedule;

use super::cases::FeeKindGql;
use super::errors::{ApiError, ApiResult};
use super::scalars::{DateScalar, DateTimeScalar, VndScalar};
use super::{ledger, metadata, now, principal};
use crate::auth::{Action, Principal, Scope};

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
    /// The agency's tax code (mã số thuế): 10 digits, or `NNNNNNNNNN-NNN`; the check digit is
    /// verified.
    tax_code: Option<String>,
    /// The budget chapter (mã chương), 3 digits.
    budget_chapter: Option<String>,
    /// The administrative area (mã địa bàn hành chính), 2, 3 or 5 digits.
    admin_area_code: Option<String>,
    /// The State Treasury office the agency deposits at (mã KBNN), 4 digits.
    treasury_code: Option<String>,
    /// The account at that treasury, e.g. `3511.0.1012345`.
    treasury_account: Option<String>,
    /// The tax office managing the revenue (mã cơ quan thu).
    tax_office_code: Option<String>,
    /// The address printed on vouchers and declarations.
    address: Option<String>,
    /// Whether citizens may look cases up and pay them on the public page `/pay` (default false).
    public_payment: Option<bool>,
    /// Whether a receipt is issued automatically for every payment, partial ones included
    /// (default false: one receipt, by hand, once the case is paid in full).
    receipt_per_payment: Option<bool>,
    /// Digits of a receipt number, 1 to 9 (default 7).
    receipt_number_width: Option<i32>,
    /// Its level in the province's hierarchy (absent: keeps the level it has).
    level: Option<super::oversight::AgencyLevelGql>,
    /// The agency it reports to: the province for departments and districts, a district for
    /// communes.
    parent_code: Option<String>,
    /// The first day the level and parent hold (absent: since always); earlier months keep the
    /// placement then in force.
    placed_from: Option<DateScalar>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "DepositScheduleKind")]
pub enum DepositScheduleKindGql {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Weekday")]
pub enum WeekdayGql {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<WeekdayGql> for chrono::Weekday {
    fn from(day: WeekdayGql) -> Self {
        use chrono::Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
        match day {
            WeekdayGql::Monday => Mon,
            WeekdayGql::Tuesday => Tue,
            WeekdayGql::Wednesday => Wed,
            WeekdayGql::Thursday => Thu,
            WeekdayGql::Friday => Fri,
            WeekdayGql::Saturday => Sat,
            WeekdayGql::Sunday => Sun,
        }
    }
}

impl From<chrono::Weekday> for WeekdayGql {
    fn from(day: chrono::Weekday) -> Self {
        use chrono::Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
        match day {
            Mon => WeekdayGql::Monday,
            Tue => WeekdayGql::Tuesday,
            Wed => WeekdayGql::Wednesday,
            Thu => WeekdayGql::Thursday,
            Fri => WeekdayGql::Friday,
            Sat => WeekdayGql::Saturday,
            Sun => WeekdayGql::Sunday,
        }
    }
}

/// When a fee's collected money must be deposited with the treasury: `DAILY`; `WEEKLY` with a
/// `weekday`; `MONTHLY` with a `dayOfMonth` (1–31) of the next month.
#[derive(InputObject, SimpleObject, Clone, Copy)]
#[graphql(input_name = "DepositScheduleInput", name = "DepositSchedule")]
pub struct DepositScheduleGql {
    kind: DepositScheduleKindGql,
    weekday: Option<WeekdayGql>,
    day_of_month: Option<i32>,
}

impl DepositScheduleGql {
    fn parse(self) -> Result<DepositSchedule, String> {
        let DepositScheduleGql { kind, weekday, day_of_month } = self;
        match (kind, weekday, day_of_month) {
            (DepositScheduleKindGql::Daily, None, None) => Ok(DepositSchedule::Daily),
            (DepositScheduleKindGql::Weekly, Some(weekday), None) => {
                Ok(DepositSchedule::Weekly { weekday: weekday.into() })
            }
            (DepositScheduleKindGql::Monthly, None, Some(day)) => u32::try_from(day)
                .map_err(|_| "dayOfMonth must be 1 to 31".to_owned())
                .and_then(|d| DayOfMonth::new(d).map_err(|e| e.to_string()))
                .map(|day_of_month| DepositSchedule::Monthly { day_of_month }),
            (DepositScheduleKindGql::Daily, ..) => Err("DAILY takes neither weekday nor dayOfMonth".into()),
            (DepositScheduleKindGql::Weekly, ..) => Err("WEEKLY needs a weekday and no dayOfMonth".into()),
            (DepositScheduleKindGql::Monthly, ..) => Err("MONTHLY needs a dayOfMonth (1 to 31) and no weekday".into()),
        }
    }
}

impl From<DepositSchedule> for DepositScheduleGql {
    fn from(schedule: DepositSchedule) -> Self {
        let (kind, weekday, day_of_month) = match schedule {
            DepositSchedule::Daily => (DepositScheduleKindGql::Daily, None, None),
            DepositSchedule::Weekly { weekday } => (DepositScheduleKindGql::Weekly, Some(weekday.into()), None),
            DepositSchedule::Monthly { day_of_month } => {
                (DepositScheduleKindGql::Monthly, None, i32::try_from(day_of_month.get()).ok())
            }
        };
        DepositScheduleGql { kind, weekday, day_of_month }
    }
}

#[derive(InputObject)]
pub struct FeeRuleInput {
    fee_code: String,
    name: String,
    kind: FeeKindGql,
    unit_amount: VndScalar,
    /// Decimal string, e.g. "90" or "12.5"; "0" for lệ phí.
    retention_percent: String,
    /// The budget sub-item (tiểu mục, mã NDKT) the fee is booked to: 4 digits.
    budget_sub_item: Option<String>,
    /// When the fee's money must be deposited (default: by the 5th of the next month).
    deposit_schedule: Option<DepositScheduleGql>,
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
    tax_code: Option<String>,
    budget_chapter: Option<String>,
    admin_area_code: Option<String>,
    treasury_code: Option<String>,
    treasury_account: Option<String>,
    tax_office_code: Option<String>,
    address: Option<String>,
    public_payment: bool,
    receipt_per_payment: bool,
    receipt_template_symbol: String,
    /// The configured serial; `null`: `AA-<YY>E` of the year of issue.
    receipt_serial: Option<String>,
    receipt_number_width: i32,
    level: Option<super::oversight::AgencyLevelGql>,
    parent_code: Option<String>,
    placed_from: Option<DateScalar>,
}

impl From<AgencyConfigured> for AgencyView {
    fn from(a: AgencyConfigured) -> Self {
        let text = |code: Option<&str>| code.map(str::to_owned);
        let t = &a.treasury;
        AgencyView {
            code: a.agency_code.to_string(),
            tax_code: text(t.tax_code.as_ref().map(TaxCode::as_str)),
            budget_chapter: text(t.budget_chapter.as_ref().map(BudgetChapter::as_str)),
            admin_area_code: text(t.admin_area_code.as_ref().map(AdminAreaCode::as_str)),
            treasury_code: text(t.treasury_code.as_ref().map(TreasuryCode::as_str)),
            treasury_account: text(t.treasury_account.as_ref().map(TreasuryAccount::as_str)),
            tax_office_code: text(t.tax_office_code.as_ref().map(TaxOfficeCode::as_str)),
            address: t.address.clone(),
            public_payment: a.public_payment,
            receipt_per_payment: a.receipt_per_payment,
            receipt_template_symbol: a
                .receipt_template_symbol
                .clone()
                .unwrap_or_else(|| feeledger_domain::receipt::DEFAULT_TEMPLATE_SYMBOL.to_owned()),
            receipt_serial: a.receipt_serial.clone(),
            receipt_number_width: i32::from(
                a.receipt_number_width.unwrap_or(feeledger_domain::receipt::DEFAULT_NUMBER_WIDTH),
            ),
            level: a.placement.level.map(Into::into),
            parent_code: a.placement.parent_code.as_ref().map(ToString::to_string),
            placed_from: a.placement.placed_from.map(DateScalar),
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
    budget_sub_item: Option<String>,
    /// `null`: not configured (money is then due by the 5th of the next month).
    deposit_schedule: Option<DepositScheduleGql>,
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
                    budget_sub_item: f.budget_sub_item.as_ref().map(ToString::to_string),
                    deposit_schedule: f.deposit_schedule.map(DepositScheduleGql::from),
                })
                .collect(),
        }
    }
}

/// Parses an optional code of the input; a bad one is VALIDATION naming the field.
fn optional_code<T>(
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, CodeError>,
) -> ApiResult<Option<T>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse(text).map(Some).map_err(|e| ApiError::Validation(format!("{field}: {e}"))),
    }
}

fn admin(ctx: &Context<'_>) -> ApiResult<Principal> {
    let principal = principal(ctx)?;
    if principal.may(Action::Administer, Scope::Unattributed) {
        Ok(principal.clone())
    } else {
        Err(ApiError::forbidden())
    }
}

fn readable_agency(ctx: &Context<'_>, code: &str) -> ApiResult<AgencyCode> {
    let principal = principal(ctx)?;
    let code = AgencyCode::parse(code.trim()).map_err(ApiError::validation)?;
    if principal.may(Action::ReadAgency, Scope::Agency(&code)) { Ok(code) } else { Err(ApiError::forbidden()) }
}

/// The caller, as their token says.
#[derive(SimpleObject)]
#[graphql(name = "Viewer")]
pub struct ViewerView {
    subject: String,
    /// `officer`, `display`, `finance`, `auditor`, `admin` or `oversight`.
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

    /// Every agency the caller may read, by code (admins, unscoped finance staff and auditors:
    /// all; scoped ones: their own).
    async fn agencies(&self, ctx: &Context<'_>) -> ApiResult<Vec<AgencyView>> {
        let principal = principal(ctx)?.clone();
        if !principal.may(Action::ListAgencies, Scope::Somewhere) {
            return Err(ApiError::forbidden());
        }
        let agencies = ledger(ctx).agencies().await?;
        Ok(agencies
            .into_iter()
            .filter(|(code, _)| principal.can_read_agency(code))
            .filter_map(|(_, agency)| agency.current.map(AgencyView::from))
            .collect())
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
            treasury: TreasuryIdentity {
                tax_code: optional_code("taxCode", input.tax_code, TaxCode::parse)?,
                budget_chapter: optional_code("budgetChapter", input.budget_chapter, BudgetChapter::parse)?,
                admin_area_code: optional_code("adminAreaCode", input.admin_area_code, AdminAreaCode::parse)?,
                treasury_code: optional_code("treasuryCode", input.treasury_code, TreasuryCode::parse)?,
                treasury_account: optional_code("treasuryAccount", input.treasury_account, TreasuryAccount::parse)?,
                tax_office_code: optional_code("taxOfficeCode", input.tax_office_code, TaxOfficeCode::parse)?,
                address: input.address,
            },
            public_payment: input.public_payment.unwrap_or(false),
            receipt_per_payment: input.receipt_per_payment.unwrap_or(false),
            receipt_number_width: input
                .receipt_number_width
                .map(|w| {
                    u8::try_from(w)
                        .ok()
                        .filter(|w| feeledger_domain::receipt::NUMBER_WIDTHS.contains(w))
                        .ok_or_else(|| ApiError::Validation("receiptNumberWidth must be 1 to 9 digits".into()))
                })
                .transpose()?,
            placement: feeledger_domain::oversight::Placement {
                level: input.level.map(Into::into),
                parent_code: optional_code("parentCode", input.parent_code, AgencyCode::parse)?,
                placed_from: input.placed_from.map(|d| d.0),
            },
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
                let fee_code = FeeCode::parse(f.fee_code.trim()).map_err(ApiError::validation)?;
                let deposit_schedule = f
                    .deposit_schedule
                    .map(|d| d.parse().map_err(|e| ApiError::Validation(format!("depositSchedule of {fee_code}: {e}"))))
                    .transpose()?;
                Ok(FeeRule {
                    budget_sub_item: optional_code(
                        &format!("budgetSubItem of {fee_code}"),
                        f.budget_sub_item,
                        BudgetSubItem::parse,
                    )?,
                    deposit_schedule,
                    fee_code,
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
