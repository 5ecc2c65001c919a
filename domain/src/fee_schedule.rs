//! Fee schedules: versioned, effective-dated rules (biểu phí, lệ phí) of one agency.
//!
//! Two dates matter and they are different on purpose:
//! - the **amount charged** is fixed when fees are assessed, from the version in force on the
//!   assessment date (recorded in FeeAssessed);
//! - the **accounting split** (retained share vs. state budget) follows the version in force on
//!   the payment date, and when two published versions cover the same date the later
//!   publication wins (it is a correction). See [`FeeSchedule::in_force_on`].

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::budget::BudgetSubItem;
use crate::codes::{AgencyCode, FeeCode};
use crate::money::{Percent, Vnd};
use crate::treasury::DepositSchedule;

/// Phí (a charge for a service, part of which the agency may retain) or lệ phí (a charge for a
/// state act, which goes 100% to the state budget). Law 97/2015/QH13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeeKind {
    Phi,
    LePhi,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRule {
    pub fee_code: FeeCode,
    pub name: String,
    pub kind: FeeKind,
    pub unit_amount: Vnd,
    /// Share of collected money the agency keeps (tỷ lệ để lại), when it is allowed to retain.
    pub retention_percent: Percent,
    /// The budget sub-item (tiểu mục) the fee is booked to. Absent in schedules published
    /// before it could be configured: reports then say "not configured".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_sub_item: Option<BudgetSubItem>,
    /// When collected money must be deposited; absent: [`DepositSchedule::fallback`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_schedule: Option<DepositSchedule>,
}

impl FeeRule {
    /// The schedule that applies: the rule's own, or the fallback when it names none.
    pub fn deposit_schedule_or_fallback(&self) -> DepositSchedule {
        self.deposit_schedule.unwrap_or_else(DepositSchedule::fallback)
    }
}

/// One published version of an agency's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeScheduleVersion {
    pub agency_code: AgencyCode,
    pub version: u32,
    pub effective_from: NaiveDate,
    pub published_at: DateTime<Utc>,
    pub fees: Vec<FeeRule>,
}

impl FeeScheduleVersion {
    pub fn rule(&self, fee_code: &FeeCode) -> Option<&FeeRule> {
        self.fees.iter().find(|rule| &rule.fee_code == fee_code)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeScheduleError {
    #[error("a fee schedule needs at least one fee")]
    Empty,
    #[error("fee code {0} appears twice in the schedule")]
    DuplicateFeeCode(FeeCode),
    #[error("fee {0} is a lệ phí and goes 100% to the state budget: its retention must be 0")]
    LePhiCannotBeRetained(FeeCode),
    #[error("fee {0} must have a unit amount above zero")]
    ZeroUnitAmount(FeeCode),
    #[error("fee {0} must have a name")]
    MissingName(FeeCode),
}

/// The whole history of an agency's schedule, folded from its FeeSchedulePublished events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeeSchedule {
    versions: Vec<FeeScheduleVersion>,
}

/// The command: publish a new version of an agency's schedule.
#[derive(Debug, Clone)]
pub struct PublishFeeSchedule {
    pub agency_code: AgencyCode,
    pub effective_from: NaiveDate,
    pub fees: Vec<FeeRule>,
    pub published_at: DateTime<Utc>,
}

/// The one event of a schedule stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedulePublished {
    #[serde(flatten)]
    pub schedule: FeeScheduleVersion,
}

impl FeeSchedule {
    /// A schedule from its versions (e.g. read back from a read model).
    pub fn from_versions(versions: Vec<FeeScheduleVersion>) -> Self {
        FeeSchedule { versions }
    }

    pub fn evolve(mut self, event: &FeeSchedulePublished) -> Self {
        self.versions.push(event.schedule.clone());
        self
    }

    pub fn versions(&self) -> &[FeeScheduleVersion] {
        &self.versions
    }

    pub fn latest(&self) -> Option<&FeeScheduleVersion> {
        self.versions.iter().max_by_key(|v| v.version)
    }

    /// The version in force on `date`: the greatest `effective_from` not after `date`; among
    /// versions with that same `effective_from`, the later publication (higher version) wins.
    pub fn in_force_on(&self, date: NaiveDate) -> Option<&FeeScheduleVersion> {
        self.versions.iter().filter(|v| v.effective_from <= date).max_by_key(|v| (v.effective_from, v.version))
    }

    pub fn decide_publish(&self, command: PublishFeeSchedule) -> Result<FeeSchedulePublished, FeeScheduleError> {
        if command.fees.is_empty() {
            return Err(FeeScheduleError::Empty);
        }
        let mut seen = BTreeSet::new();
        for rule in &command.fees {
            if !seen.insert(&rule.fee_code) {
                return Err(FeeScheduleError::DuplicateFeeCode(rule.fee_code.clone()));
            }
            if rule.name.trim().is_empty() {
                return Err(FeeScheduleError::MissingName(rule.fee_code.clone()));
            }
            if rule.unit_amount.is_zero() {
                return Err(FeeScheduleError::ZeroUnitAmount(rule.fee_code.clone()));
            }
            if rule.kind == FeeKind::LePhi && !rule.retention_percent.is_zero() {
                return Err(FeeScheduleError::LePhiCannotBeRetained(rule.fee_code.clone()));
            }
        }
        let version = self.latest().map_or(1, |v| v.version + 1);
        Ok(FeeSchedulePublished {
            schedule: FeeScheduleVersion {
                agency_code: command.agency_code,
                version,
                effective_from: command.effective_from,
                published_at: command.published_at,
                fees: command.fees,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(code: &str, kind: FeeKind, amount: i64, retention: &str) -> FeeRule {
        FeeRule {
            fee_code: FeeCode::parse(code).unwrap(),
            name: format!("fee {code}"),
            kind,
            unit_amount: Vnd::new(amount).unwrap(),
            retention_percent: Percent::parse(retention).unwrap(),
            budget_sub_item: None,
            deposit_schedule: None,
        }
    }

    fn publish(schedule: &FeeSchedule, effective_from: &str, fees: Vec<FeeRule>) -> FeeSchedule {
        let event = schedule
            .decide_publish(PublishFeeSchedule {
                agency_code: AgencyCode::parse("H34.22.6").unwrap(),
                effective_from: effective_from.parse().unwrap(),
                fees,
                published_at: Utc::now(),
            })
            .unwrap();
        schedule.clone().evolve(&event)
    }

    #[test]
    fn versions_are_numbered_in_publication_order() {
        let s = publish(&FeeSchedule::default(), "2024-01-01", vec![rule("P-SAOY", FeeKind::Phi, 2000, "90")]);
        let s = publish(&s, "2025-01-01", vec![rule("P-SAOY", FeeKind::Phi, 3000, "90")]);
        assert_eq!(s.versions().iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn the_version_in_force_is_the_latest_effective_one_not_after_the_date() {
        let s = publish(&FeeSchedule::default(), "2024-01-01", vec![rule("P-SAOY", FeeKind::Phi, 2000, "90")]);
        let s = publish(&s, "2025-01-01", vec![rule("P-SAOY", FeeKind::Phi, 3000, "90")]);
        let on = |d: &str| s.in_force_on(d.parse().unwrap()).map(|v| v.version);
        assert_eq!(on("2023-12-31"), None);
        assert_eq!(on("2024-06-01"), Some(1));
        assert_eq!(on("2025-01-01"), Some(2));
    }

    #[test]
    fn a_later_publication_for_the_same_date_is_a_correction_and_wins() {
        let s = publish(&FeeSchedule::default(), "2024-01-01", vec![rule("P-SAOY", FeeKind::Phi, 2000, "90")]);
        let s = publish(&s, "2024-01-01", vec![rule("P-SAOY", FeeKind::Phi, 2000, "80")]);
        let in_force = s.in_force_on("2024-03-01".parse().unwrap()).unwrap();
        assert_eq!(in_force.version, 2);
        assert_eq!(in_force.fees[0].retention_percent, Percent::parse("80").unwrap());
    }

    #[test]
    fn le_phi_with_a_retention_share_is_rejected() {
        let err = FeeSchedule::default()
            .decide_publish(PublishFeeSchedule {
                agency_code: AgencyCode::parse("H34.22.6").unwrap(),
                effective_from: "2024-01-01".parse().unwrap(),
                fees: vec![rule("LP-HOTICH", FeeKind::LePhi, 8000, "10")],
                published_at: Utc::now(),
            })
            .unwrap_err();
        assert!(matches!(err, FeeScheduleError::LePhiCannotBeRetained(_)));
    }

    #[test]
    fn empty_and_duplicate_schedules_are_rejected() {
        let command = |fees| PublishFeeSchedule {
            agency_code: AgencyCode::parse("H34.22.6").unwrap(),
            effective_from: "2024-01-01".parse().unwrap(),
            fees,
            published_at: Utc::now(),
        };
        assert_eq!(FeeSchedule::default().decide_publish(command(vec![])), Err(FeeScheduleError::Empty));
        let dup = vec![rule("P-SAOY", FeeKind::Phi, 1, "0"), rule("P-SAOY", FeeKind::Phi, 2, "0")];
        assert!(matches!(
            FeeSchedule::default().decide_publish(command(dup)),
            Err(FeeScheduleError::DuplicateFeeCode(_))
        ));
    }
}
