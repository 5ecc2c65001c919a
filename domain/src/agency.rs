//! Agencies (cơ quan) that collect fees: their name, collection bank account, whether they may
//! retain part of the phí they collect, and their counters. One stream per agency.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::budget::{AdminAreaCode, BudgetChapter, TaxCode, TaxOfficeCode, TreasuryAccount, TreasuryCode};
use crate::codes::{AgencyCode, BankAccount, CounterId};
use crate::oversight::{Placement, PlacementHistory};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyConfigured {
    pub agency_code: AgencyCode,
    pub name: String,
    pub bank_account: BankAccount,
    /// Whether the agency is allowed to keep the retention share of the phí it collects
    /// (Decree 120/2016, amended by Decree 82/2023). If not, everything goes to the budget.
    pub retains_fees: bool,
    pub counters: Vec<CounterId>,
    /// The receipt template registered with the tax authority (default `01BLP0-001`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_template_symbol: Option<String>,
    /// The receipt serial (default `AA-<YY>E` for the year of issue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_serial: Option<String>,
    /// How the State Treasury and the tax office know the agency (see [`TreasuryIdentity`]).
    /// Every part is optional: configurations recorded before these existed stay readable, and
    /// a report names what is missing instead of inventing a code.
    #[serde(default, flatten)]
    pub treasury: TreasuryIdentity,
    /// Whether citizens may look the agency's cases up and pay them on the public page `/pay`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public_payment: bool,
    /// Whether a receipt is issued automatically for every payment (a partial one included),
    /// rather than once, by hand, when the case is paid in full.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receipt_per_payment: bool,
    /// How many digits a receipt number has (default [`crate::receipt::DEFAULT_NUMBER_WIDTH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_number_width: Option<u8>,
    /// Its level and parent in the province's hierarchy, effective from a date (absent in
    /// configurations recorded before the hierarchy existed).
    #[serde(default, flatten)]
    pub placement: Placement,
    pub configured_at: DateTime<Utc>,
}

/// The agency in the State Treasury's and the tax office's terms: what a deposit voucher
/// (C1-02/NS) and a fee declaration (01/PHLP) print about the payer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreasuryIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<TaxCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_chapter: Option<BudgetChapter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_area_code: Option<AdminAreaCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treasury_code: Option<TreasuryCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treasury_account: Option<TreasuryAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_office_code: Option<TaxOfficeCode>,
    /// The agency's address as printed on vouchers and declarations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgencyError {
    #[error("agency name must be 1 to 200 characters")]
    BadName,
    #[error("bank account name must be 1 to 100 characters")]
    BadAccountName,
    #[error("an agency needs at least one counter")]
    NoCounters,
    #[error("counter {0} is listed twice")]
    DuplicateCounter(CounterId),
    #[error("receipt template symbols and serials are 1 to 20 letters, digits, '-' or '/'")]
    BadReceiptSeries,
    #[error("address must be at most 300 characters")]
    BadAddress,
    #[error("receiptNumberWidth must be 1 to 9 digits")]
    BadReceiptNumberWidth,
}

/// An agency's current configuration: the latest AgencyConfigured event, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agency {
    pub current: Option<AgencyConfigured>,
    /// Every placement in the hierarchy it has had, for the months before the latest.
    pub placements: PlacementHistory,
}

impl Agency {
    pub fn evolve(mut self, event: &AgencyConfigured) -> Agency {
        self.placements.record(&event.placement);
        Agency { current: Some(event.clone()), placements: self.placements }
    }

    pub fn has_counter(&self, counter: &CounterId) -> bool {
        self.current.as_ref().is_some_and(|a| a.counters.contains(counter))
    }

    /// Validates a new configuration. Returns `None` when it changes nothing, so re-running
    /// a set-up script appends no event.
    pub fn decide_configure(&self, mut wanted: AgencyConfigured) -> Result<Option<AgencyConfigured>, AgencyError> {
        wanted.name = wanted.name.trim().to_owned();
        wanted.bank_account.name = wanted.bank_account.name.trim().to_owned();
        if wanted.name.is_empty() || wanted.name.chars().count() > 200 {
            return Err(AgencyError::BadName);
        }
        if wanted.bank_account.name.is_empty() || wanted.bank_account.name.chars().count() > 100 {
            return Err(AgencyError::BadAccountName);
        }
        if wanted.counters.is_empty() {
            return Err(AgencyError::NoCounters);
        }
        let series_ok = |text: &Option<String>| {
            text.as_deref().is_none_or(|t| {
                !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'/')
            })
        };
        if !series_ok(&wanted.receipt_template_symbol) || !series_ok(&wanted.receipt_serial) {
            return Err(AgencyError::BadReceiptSeries);
        }
        if wanted.receipt_number_width.is_some_and(|w| !crate::receipt::NUMBER_WIDTHS.contains(&w)) {
            return Err(AgencyError::BadReceiptNumberWidth);
        }
        wanted.treasury.address = wanted.treasury.address.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
        if wanted.treasury.address.as_ref().is_some_and(|a| a.chars().count() > 300) {
            return Err(AgencyError::BadAddress);
        }
        // A configuration sent without a level keeps the agency where it is (older clients).
        if !wanted.placement.is_placed() {
            wanted.placement = self.current.as_ref().map(|c| c.placement.clone()).unwrap_or_default();
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = wanted.counters.iter().find(|c| !seen.insert(*c)) {
            return Err(AgencyError::DuplicateCounter(dup.clone()));
        }
        let unchanged = self.current.as_ref().is_some_and(|current| {
            current.name == wanted.name
                && current.bank_account == wanted.bank_account
                && current.retains_fees == wanted.retains_fees
                && current.counters == wanted.counters
                && current.receipt_template_symbol == wanted.receipt_template_symbol
                && current.receipt_serial == wanted.receipt_serial
                && current.treasury == wanted.treasury
                && current.public_payment == wanted.public_payment
                && current.receipt_per_payment == wanted.receipt_per_payment
                && current.receipt_number_width == wanted.receipt_number_width
                && current.placement == wanted.placement
        });
        Ok((!unchanged).then_some(wanted))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::Utc;

    use super::*;
    use crate::codes::{AccountNumber, BankBin};
    use crate::oversight::AgencyLevel;

    fn configured(placement: Placement) -> AgencyConfigured {
        AgencyConfigured {
            agency_code: AgencyCode::parse("P01.H01.X01").unwrap(),
            name: "UBND xã X01".into(),
            bank_account: BankAccount {
                bin: BankBin::parse("970436").unwrap(),
                number: AccountNumber::parse("190300000001").unwrap(),
                name: "BO PHAN MOT CUA".into(),
            },
            retains_fees: true,
            counters: vec![CounterId::parse("quay-1").unwrap()],
            receipt_template_symbol: None,
            receipt_serial: None,
            treasury: TreasuryIdentity::default(),
            placement,
            receipt_per_payment: false,
            receipt_number_width: None,
            public_payment: false,
            configured_at: Utc::now(),
        }
    }

    #[test]
    fn a_configuration_without_a_level_keeps_the_placement_and_a_new_one_is_recorded_with_its_date() {
        let placed = Placement {
            level: Some(AgencyLevel::Commune),
            parent_code: Some(AgencyCode::parse("P01.H01").unwrap()),
            placed_from: None,
        };
        let agency = Agency::default().evolve(&configured(placed.clone()));
        // An older client re-sends the configuration without a level: nothing changes.
        assert_eq!(agency.decide_configure(configured(Placement::default())).unwrap(), None);
        let renamed = agency
            .decide_configure(AgencyConfigured {
                name: "UBND xã X01 mới".into(), ..configured(Placement::default())
            })
            .unwrap()
            .unwrap();
        assert_eq!(renamed.placement, placed);
        let moved = Placement {
            parent_code: Some(AgencyCode::parse("P01.H02").unwrap()),
            placed_from: Some("2027-01-01".parse().unwrap()),
            ..placed.clone()
        };
        let decided = agency.decide_configure(configured(moved.clone())).unwrap().unwrap();
        let agency = agency.evolve(&decided);
        assert_eq!(agency.placements.on("2026-12-31".parse().unwrap()), Some(&placed));
        assert_eq!(agency.placements.on("2027-01-01".parse().unwrap()), Some(&moved));
    }
}
