//! Province oversight: the league table (monthly and quarterly), the targets per level, and the
//! list of agencies with their place in the hierarchy.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::money::Percent;
use feeledger_domain::oversight::{AgencyLevel, League, LeagueRow, LevelTotal, Month, Period, TargetSet};
use rust_decimal::Decimal;

use super::errors::{ApiError, ApiResult};
use super::scalars::DateTimeScalar;
use super::{api, ledger, metadata, now, principal};
use crate::auth::{Action, Scope};
use crate::oversight::OversightError;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "AgencyLevel")]
pub enum AgencyLevelGql {
    /// The province itself (UBND tỉnh), the root.
    Province,
    /// A province department or branch (sở, ngành).
    Department,
    /// A district people's committee (UBND cấp huyện).
    District,
    /// A commune people's committee (UBND cấp xã).
    Commune,
}

impl From<AgencyLevelGql> for AgencyLevel {
    fn from(level: AgencyLevelGql) -> Self {
        match level {
            AgencyLevelGql::Province => AgencyLevel::Province,
            AgencyLevelGql::Department => AgencyLevel::Department,
            AgencyLevelGql::District => AgencyLevel::District,
            AgencyLevelGql::Commune => AgencyLevel::Commune,
        }
    }
}

impl From<AgencyLevel> for AgencyLevelGql {
    fn from(level: AgencyLevel) -> Self {
        match level {
            AgencyLevel::Province => AgencyLevelGql::Province,
            AgencyLevel::Department => AgencyLevelGql::Department,
            AgencyLevel::District => AgencyLevelGql::District,
            AgencyLevel::Commune => AgencyLevelGql::Commune,
        }
    }
}

/// A percentage with two decimals ("66.67"), or `null` for no cases.
pub fn rate_text(rate: Option<Decimal>) -> Option<String> {
    rate.map(|r| format!("{r:.2}"))
}

fn percent_text(p: Percent) -> String {
    format!("{:.2}", p.as_decimal())
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One agency's line of the league table. Rates are percentages with two decimals, rounded half
/// away from zero; whether a target is met is decided on the exact fraction.
#[derive(SimpleObject)]
#[graphql(name = "LeagueRow")]
pub struct LeagueRowView {
    agency_code: String,
    name: String,
    level: AgencyLevelGql,
    parent_code: Option<String>,
    /// Cases paid in full in the period.
    cases: i32,
    /// Of them, paid without any cash.
    cashless: i32,
    /// Of them, paid entirely online (VietQR transfer, e-wallet, the portal's payment platform).
    online: i32,
    cashless_rate: Option<String>,
    online_rate: Option<String>,
    /// The cashless target in force for the agency's level in the period's last month.
    target: Option<String>,
    online_target: Option<String>,
    /// The month the target in force took effect.
    target_effective_from: Option<String>,
    cashless_met: Option<bool>,
    online_met: Option<bool>,
    /// Both targets met; `null` when no target is in force or no case was paid.
    met: Option<bool>,
    /// Rank within the level, 1 best (cashless rate, then online rate, then cases); ties share.
    rank: i32,
    previous_cases: i32,
    last_year_cases: i32,
    /// Percentage points gained against the previous period and the same period a year before.
    cashless_change_vs_previous: Option<String>,
    cashless_change_vs_last_year: Option<String>,
    online_change_vs_previous: Option<String>,
    online_change_vs_last_year: Option<String>,
}

impl From<&LeagueRow> for LeagueRowView {
    fn from(r: &LeagueRow) -> Self {
        LeagueRowView {
            agency_code: r.entry.agency_code.to_string(),
            name: r.entry.name.clone(),
            level: r.entry.level.into(),
            parent_code: r.entry.parent_code.as_ref().map(ToString::to_string),
            cases: count(r.entry.counts.cases),
            cashless: count(r.entry.counts.cashless),
            online: count(r.entry.counts.online),
            cashless_rate: rate_text(r.cashless_rate),
            online_rate: rate_text(r.online_rate),
            target: r.target.as_ref().map(|t| percent_text(t.cashless_percent)),
            online_target: r.target.as_ref().map(|t| percent_text(t.online_percent)),
            target_effective_from: r.target.as_ref().map(|t| t.effective_from.to_string()),
            cashless_met: r.cashless_met,
            online_met: r.online_met,
            met: r.met,
            rank: count(r.rank),
            previous_cases: count(r.entry.previous.cases),
            last_year_cases: count(r.entry.a_year_before.cases),
            cashless_change_vs_previous: rate_text(r.cashless_change_vs_previous),
            cashless_change_vs_last_year: rate_text(r.cashless_change_vs_last_year),
            online_change_vs_previous: rate_text(r.online_change_vs_previous),
            online_change_vs_last_year: rate_text(r.online_change_vs_last_year),
        }
    }
}

/// The totals of one level: rates from the summed counts.
#[derive(SimpleObject)]
#[graphql(name = "LeagueLevelTotal")]
pub struct LevelTotalView {
    level: AgencyLevelGql,
    agencies: i32,
    cases: i32,
    cashless: i32,
    online: i32,
    cashless_rate: Option<String>,
    online_rate: Option<String>,
    target: Option<String>,
    online_target: Option<String>,
    met: i32,
    not_met: i32,
}

impl From<&LevelTotal> for LevelTotalView {
    fn from(t: &LevelTotal) -> Self {
        LevelTotalView {
            level: t.level.into(),
            agencies: count(t.agencies),
            cases: count(t.counts.cases),
            cashless: count(t.counts.cashless),
            online: count(t.counts.online),
            cashless_rate: rate_text(t.cashless_rate),
            online_rate: rate_text(t.online_rate),
            target: t.target.as_ref().map(|x| percent_text(x.cashless_percent)),
            online_target: t.target.as_ref().map(|x| percent_text(x.online_percent)),
            met: count(t.met),
            not_met: count(t.not_met),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "LeagueTable")]
pub struct LeagueTableView {
    root_agency_code: String,
    /// `YYYY-MM` or `YYYY-Qn`.
    period: String,
    rows: Vec<LeagueRowView>,
    totals: Vec<LevelTotalView>,
}

fn league_view(root: &AgencyCode, league: &League) -> LeagueTableView {
    LeagueTableView {
        root_agency_code: root.to_string(),
        period: league.period.to_string(),
        rows: league.rows.iter().map(LeagueRowView::from).collect(),
        totals: league.totals.iter().map(LevelTotalView::from).collect(),
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Target")]
pub struct TargetView {
    level: AgencyLevelGql,
    /// `YYYY-MM`.
    effective_from: String,
    cashless_percent: String,
    online_percent: String,
    set_at: DateTimeScalar,
}

impl From<&TargetSet> for TargetView {
    fn from(t: &TargetSet) -> Self {
        TargetView {
            level: t.level.into(),
            effective_from: t.effective_from.to_string(),
            cashless_percent: percent_text(t.cashless_percent),
            online_percent: percent_text(t.online_percent),
            set_at: DateTimeScalar(t.set_at),
        }
    }
}

#[derive(InputObject)]
pub struct TargetInput {
    level: AgencyLevelGql,
    /// The first month the target holds, `YYYY-MM`; earlier months keep the target then in force.
    effective_from: String,
    /// Decimal string, e.g. "80" or "66.5".
    cashless_percent: String,
    online_percent: String,
}

pub(crate) fn oversight_error(error: OversightError) -> ApiError {
    match error {
        OversightError::Forbidden => ApiError::forbidden(),
        OversightError::NotPlaced(..) => ApiError::NotFound(error.to_string()),
        OversightError::Ledger(e) => e.into(),
        OversightError::Projection(e) => super::finance::projection_error(e),
    }
}

fn parse_root(code: &str) -> ApiResult<AgencyCode> {
    AgencyCode::parse(code.trim()).map_err(ApiError::validation)
}

#[derive(Default, Debug)]
pub struct OversightQueries;

#[Object]
impl OversightQueries {
    /// The monthly league table of the agencies under `rootAgencyCode` (itself included) for
    /// `month` (`YYYY-MM`), optionally of one `level`. Oversight tokens read their own subtree;
    /// finance staff and auditors their agency's (all when unscoped); admins all.
    async fn league_table(
        &self,
        ctx: &Context<'_>,
        root_agency_code: String,
        month: String,
        level: Option<AgencyLevelGql>,
    ) -> ApiResult<LeagueTableView> {
        let principal = principal(ctx)?.clone();
        let root = parse_root(&root_agency_code)?;
        let month: Month = month.parse().map_err(ApiError::validation)?;
        let league =
            crate::oversight::league_table(api(ctx), &principal, &root, Period::Month(month), level.map(Into::into))
                .await
                .map_err(oversight_error)?;
        Ok(league_view(&root, &league))
    }

    /// The same table for a quarter (`YYYY-Qn`): its three months summed, judged against the
    /// targets in force in its last month, compared with the previous quarter and the same
    /// quarter a year before.
    async fn league_quarter(
        &self,
        ctx: &Context<'_>,
        root_agency_code: String,
        quarter: String,
        level: Option<AgencyLevelGql>,
    ) -> ApiResult<LeagueTableView> {
        let principal = principal(ctx)?.clone();
        let root = parse_root(&root_agency_code)?;
        let period = match Period::parse(&quarter).map_err(ApiError::validation)? {
            quarter @ Period::Quarter(..) => quarter,
            Period::Month(_) => return Err(ApiError::Validation(format!("{quarter:?} is not a quarter (YYYY-Qn)"))),
        };
        let league = crate::oversight::league_table(api(ctx), &principal, &root, period, level.map(Into::into))
            .await
            .map_err(oversight_error)?;
        Ok(league_view(&root, &league))
    }

    /// Every target ever set, in the order set (the one in force for a month is the latest
    /// `effectiveFrom` on or before it).
    async fn targets(&self, ctx: &Context<'_>) -> ApiResult<Vec<TargetView>> {
        let principal = principal(ctx)?;
        if !crate::oversight::reads_aggregates(principal) {
            return Err(ApiError::forbidden());
        }
        Ok(ledger(ctx).targets().await?.all().iter().map(TargetView::from).collect())
    }
}

#[derive(Default, Debug)]
pub struct OversightMutations;

#[Object]
impl OversightMutations {
    /// Sets a level's cashless and online targets from a month on (admins only). Setting the
    /// same target again appends nothing; a different one for the same month corrects it.
    async fn set_target(&self, ctx: &Context<'_>, input: TargetInput) -> ApiResult<TargetView> {
        let principal = principal(ctx)?.clone();
        if !principal.may(Action::Administer, Scope::Unattributed) {
            return Err(ApiError::forbidden());
        }
        let percent = |field: &str, text: &str| {
            Percent::parse(text.trim()).map_err(|e| ApiError::Validation(format!("{field}: {e}")))
        };
        let wanted = TargetSet {
            level: input.level.into(),
            effective_from: input.effective_from.parse().map_err(ApiError::validation)?,
            cashless_percent: percent("cashlessPercent", &input.cashless_percent)?,
            online_percent: percent("onlinePercent", &input.online_percent)?,
            set_at: now(ctx),
        };
        let set = ledger(ctx).set_target(wanted, &metadata(ctx, &principal)).await?;
        Ok(TargetView::from(&set))
    }
}
