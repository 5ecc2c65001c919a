//! The province's view: which agencies sit under a root in a month, who may look at them, and
//! the league table over them (the rules are `domain::oversight`'s; this gathers the facts:
//! the hierarchy from AgencyConfigured, the targets from TargetSet, the counts from the
//! `cashless` read model).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use chrono::NaiveDate;
use feeledger_domain::agency::Agency;
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::oversight::{self, AgencyLevel, Counts, League, LeagueEntry, Month, Period, Placement};
use feeledger_infrastructure::ledger::LedgerError;
use feeledger_projections::cashless::{self, CashlessProjection};
use feeledger_projections::runner::{Projection as _, ProjectionError};

use crate::auth::{Principal, Role};
use crate::graphql::ApiContext;

/// How long a report waits for the read model to apply what is committed.
const READ_PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OversightError {
    #[error("your token does not allow this report")]
    Forbidden,
    #[error("agency {0} has no place in the hierarchy in {1}")]
    NotPlaced(AgencyCode, String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// An agency as placed on a day.
#[derive(Debug, Clone)]
pub struct Placed {
    pub code: AgencyCode,
    pub name: String,
    pub level: AgencyLevel,
    pub parent: Option<AgencyCode>,
}

/// The agencies in the subtree of `root` on `date` (the root first, then breadth first), by
/// the placements in force that day.
pub fn subtree(agencies: &BTreeMap<AgencyCode, Agency>, root: &AgencyCode, date: NaiveDate) -> Vec<Placed> {
    let placed: HashMap<&AgencyCode, (&Agency, &Placement)> = agencies
        .iter()
        .filter_map(|(code, agency)| agency.placements.on(date).map(|p| (code, (agency, p))))
        .filter(|(_, (_, p))| p.is_placed())
        .collect();
    let mut children: HashMap<&AgencyCode, Vec<&AgencyCode>> = HashMap::new();
    for (code, (_, placement)) in &placed {
        if let Some(parent) = &placement.parent_code {
            children.entry(parent).or_default().push(code);
        }
    }
    let mut out = Vec::new();
    let mut queue = VecDeque::from([root]);
    let mut seen = std::collections::HashSet::new();
    while let Some(code) = queue.pop_front() {
        if !seen.insert(code) {
            continue;
        }
        let Some((agency, placement)) = placed.get(code) else { continue };
        let Some(level) = placement.level else { continue };
        out.push(Placed {
            code: code.clone(),
            name: agency.current.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
            level,
            parent: placement.parent_code.clone(),
        });
        let mut kids = children.get(code).cloned().unwrap_or_default();
        kids.sort();
        queue.extend(kids);
    }
    out
}

/// Whether `principal` may read the aggregates of the subtree of `root` on `date`: admins and
/// unscoped finance staff and auditors everywhere; scoped finance staff and auditors for their
/// own agency's subtree; an oversight token for any root inside its own subtree.
pub fn may_oversee(
    principal: &Principal,
    agencies: &BTreeMap<AgencyCode, Agency>,
    root: &AgencyCode,
    date: NaiveDate,
) -> bool {
    match principal.role {
        Role::Admin => true,
        Role::Finance | Role::Auditor => principal.agency.as_ref().is_none_or(|own| own == root),
        Role::Oversight => principal
            .agency
            .as_ref()
            .is_some_and(|own| own == root || subtree(agencies, own, date).iter().any(|p| &p.code == root)),
        Role::Officer | Role::Display => false,
    }
}

/// Whether `principal` may read aggregate reports at all (before anything is looked up).
pub fn reads_aggregates(principal: &Principal) -> bool {
    principal.may(crate::auth::Action::ReadAggregates, crate::auth::Scope::Somewhere)
}

/// The league table of the subtree of `root` for `period`, optionally of one level only.
pub async fn league_table(
    context: &ApiContext,
    principal: &Principal,
    root: &AgencyCode,
    period: Period,
    level: Option<AgencyLevel>,
) -> Result<League, OversightError> {
    if !reads_aggregates(principal) {
        return Err(OversightError::Forbidden);
    }
    let agencies = context.ledger.agencies().await?;
    let date = period.last_month().last_day();
    if !may_oversee(principal, &agencies, root, date) {
        return Err(OversightError::Forbidden);
    }
    let placed = subtree(&agencies, root, date);
    if placed.is_empty() {
        return Err(OversightError::NotPlaced(root.clone(), period.to_string()));
    }
    let placed: Vec<Placed> = placed.into_iter().filter(|p| level.is_none_or(|l| l == p.level)).collect();
    let periods = [period, period.previous(), period.a_year_before()];
    let mut wanted = Vec::new();
    for p in &placed {
        for per in &periods {
            for month in per.months() {
                wanted.push((p.code.clone(), month.to_string()));
            }
        }
    }
    context.runner.wait_for(CashlessProjection::NAME, READ_PATIENCE).await;
    let found = cashless::months(context.runner.documents(), &wanted).await?;
    let sum = |code: &AgencyCode, per: Period| {
        per.months().iter().fold(Counts::default(), |total, month| {
            let c = found.get(&(code.clone(), month.to_string())).cloned().unwrap_or_default();
            total.plus(Counts { cases: c.cases, cashless: c.cashless, online: c.online })
        })
    };
    let entries = placed
        .into_iter()
        .map(|p| LeagueEntry {
            counts: sum(&p.code, periods[0]),
            previous: sum(&p.code, periods[1]),
            a_year_before: sum(&p.code, periods[2]),
            agency_code: p.code,
            name: p.name,
            level: p.level,
            parent_code: p.parent,
        })
        .collect();
    let targets = context.ledger.targets().await?;
    Ok(oversight::league(period, entries, &targets))
}

/// A subtree's monthly totals for the twelve months up to `month`, with the target of `level`
/// in force each month: the series of the rate chart.
#[derive(Debug, Clone)]
pub struct RatePoint {
    pub month: Month,
    pub counts: Counts,
    pub cashless_target: Option<rust_decimal::Decimal>,
    pub online_target: Option<rust_decimal::Decimal>,
}

pub async fn rate_series(
    context: &ApiContext,
    principal: &Principal,
    root: &AgencyCode,
    month: Month,
    level: Option<AgencyLevel>,
) -> Result<Vec<RatePoint>, OversightError> {
    if !reads_aggregates(principal) {
        return Err(OversightError::Forbidden);
    }
    let agencies = context.ledger.agencies().await?;
    if !may_oversee(principal, &agencies, root, month.last_day()) {
        return Err(OversightError::Forbidden);
    }
    let mut months = vec![month];
    for _ in 1..12 {
        let earliest = months.last().copied().unwrap_or(month);
        months.push(earliest.previous());
    }
    months.reverse();
    let mut wanted = Vec::new();
    let mut members: Vec<(Month, Vec<AgencyCode>)> = Vec::new();
    for m in &months {
        let codes: Vec<AgencyCode> = subtree(&agencies, root, m.last_day())
            .into_iter()
            .filter(|p| level.is_none_or(|l| l == p.level))
            .map(|p| p.code)
            .collect();
        wanted.extend(codes.iter().map(|c| (c.clone(), m.to_string())));
        members.push((*m, codes));
    }
    context.runner.wait_for(CashlessProjection::NAME, READ_PATIENCE).await;
    let found = cashless::months(context.runner.documents(), &wanted).await?;
    let targets = context.ledger.targets().await?;
    Ok(members
        .into_iter()
        .map(|(m, codes)| {
            let counts = codes.iter().fold(Counts::default(), |total, code| {
                let c = found.get(&(code.clone(), m.to_string())).cloned().unwrap_or_default();
                total.plus(Counts { cases: c.cases, cashless: c.cashless, online: c.online })
            });
            let target = level.and_then(|l| targets.in_force(l, m));
            RatePoint {
                month: m,
                counts,
                cashless_target: target.map(|t| t.cashless_percent.as_decimal()),
                online_target: target.map(|t| t.online_percent.as_decimal()),
            }
        })
        .collect())
}
