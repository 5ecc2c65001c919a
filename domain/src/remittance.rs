//! A deposit to the State Treasury (KBNN) as one fact.
//!
//! Finance staff enter a deposit voucher (giấy nộp tiền, C1-02/NS): its number, the day it was
//! deposited, the amount, and "everything payable collected up to" a day. The deposit covers
//! every case with payable money collected by then, and is recorded as one atomic fact: a
//! [`RemittanceRecorded`] on the voucher's own stream plus a `RemittedToTreasury` on each case
//! it covers, all appended in one transaction. The voucher's stream is keyed by the agency and
//! the voucher number, so a retried request finds its first result, and the same number can
//! never be used twice for different deposits.
//!
//! What a case has to remit is decided here, from the case's own history and the fee rules in
//! force on each collection day ([`remittable_lines`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::budget::BudgetChapter;
use crate::case_fees::{CaseFees, RemittedLine};
use crate::codes::AgencyCode;
use crate::fee_schedule::FeeSchedule;
use crate::money::{MoneyError, Vnd};
use crate::treasury::{retention_in, split_collection};
use crate::vietnam_time;

/// Longest voucher number accepted (the treasury's forms leave room for about this much).
pub const MAX_VOUCHER_CHARS: usize = 50;

/// A deposit as finance staff enter it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemitRequest {
    pub agency: AgencyCode,
    /// Every payable, unremitted amount collected up to and including this day.
    pub up_to: NaiveDate,
    pub voucher_number: String,
    /// Must equal what is payable (a check against typing errors).
    pub amount: Vnd,
    pub remitted_on: NaiveDate,
}

impl RemitRequest {
    /// The voucher number as recorded: trimmed, 1 to [`MAX_VOUCHER_CHARS`] characters.
    pub fn voucher(&self) -> Result<&str, RemitError> {
        let voucher = self.voucher_number.trim();
        if voucher.is_empty() || voucher.chars().count() > MAX_VOUCHER_CHARS {
            return Err(RemitError::BadVoucher);
        }
        Ok(voucher)
    }

    /// The deposit's id: the same for the same agency and voucher number, so a retry of the
    /// request lands on the same stream and finds its first result.
    pub fn remittance_id(&self) -> Result<Uuid, RemitError> {
        let name = format!("{}/{}", self.agency, self.voucher()?);
        Ok(Uuid::new_v5(&REMITTANCE_NAMESPACE, name.as_bytes()))
    }
}

/// The namespace of remittance ids (a fixed random UUID; never change it).
const REMITTANCE_NAMESPACE: Uuid = Uuid::from_u128(0x4f1c_8a2e_93b7_4d6a_b1e5_7c0d_2f98_a613);

/// The deposit, on its own stream (`remittance-<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittanceRecorded {
    pub remittance_id: Uuid,
    pub agency_code: AgencyCode,
    pub voucher_number: String,
    pub remitted_on: NaiveDate,
    pub up_to: NaiveDate,
    /// The state budget's money deposited: the sum of the cases' `to_budget`.
    pub amount: Vnd,
    pub cases: u32,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemitError {
    #[error("voucher number must be 1 to {MAX_VOUCHER_CHARS} characters")]
    BadVoucher,
    #[error("nothing collected up to {0} is waiting to be remitted")]
    NothingPayable(NaiveDate),
    #[error("the amount {given} does not match what is payable up to {up_to}: {expected}")]
    AmountMismatch { given: Vnd, expected: Vnd, up_to: NaiveDate },
    #[error(
        "voucher {voucher_number} is already recorded for a different deposit ({amount} đ up to {up_to}, deposited on {remitted_on})"
    )]
    VoucherUsed { voucher_number: String, amount: Vnd, up_to: NaiveDate, remitted_on: NaiveDate },
    #[error("too many cases for one deposit: {0}")]
    TooManyCases(usize),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// What the voucher's stream says about a request: recorded already (the first result of a
/// retry), or free to record.
pub fn decide_existing(
    existing: Option<&RemittanceRecorded>,
    request: &RemitRequest,
) -> Result<Option<RemittanceRecorded>, RemitError> {
    let Some(recorded) = existing else { return Ok(None) };
    let same = recorded.agency_code == request.agency
        && recorded.up_to == request.up_to
        && recorded.remitted_on == request.remitted_on
        && recorded.amount == request.amount;
    if same {
        Ok(Some(recorded.clone()))
    } else {
        Err(RemitError::VoucherUsed {
            voucher_number: recorded.voucher_number.clone(),
            amount: recorded.amount,
            up_to: recorded.up_to,
            remitted_on: recorded.remitted_on,
        })
    }
}

/// Checks the request against what the cases have to remit and decides the deposit.
pub fn decide_remittance<Case>(
    request: &RemitRequest,
    payable: &[(Case, Vec<RemittedLine>)],
    now: DateTime<Utc>,
) -> Result<RemittanceRecorded, RemitError> {
    let voucher = request.voucher()?;
    if payable.is_empty() {
        return Err(RemitError::NothingPayable(request.up_to));
    }
    let expected = Vnd::sum(payable.iter().flat_map(|(_, lines)| lines.iter().map(|l| l.to_budget)))?;
    if expected != request.amount {
        return Err(RemitError::AmountMismatch { given: request.amount, expected, up_to: request.up_to });
    }
    Ok(RemittanceRecorded {
        remittance_id: request.remittance_id()?,
        agency_code: request.agency.clone(),
        voucher_number: voucher.to_owned(),
        remitted_on: request.remitted_on,
        up_to: request.up_to,
        amount: expected,
        cases: u32::try_from(payable.len()).map_err(|_| RemitError::TooManyCases(payable.len()))?,
        recorded_at: now,
    })
}

/// The agency's settings a remittance needs.
#[derive(Debug, Clone, Copy)]
pub struct RemitContext<'a> {
    /// Every published version of the agency's fee schedule, as known now.
    pub schedule: &'a FeeSchedule,
    /// May the agency retain its share of phí?
    pub retains: bool,
    pub budget_chapter: Option<&'a BudgetChapter>,
}

/// What one case still has to remit for money collected up to and including `up_to`, per
/// collection day and fee line, split by the rules in force on each day as known now. A
/// remittance covers everything collected up to its day, so days already covered are skipped.
pub fn remittable_lines(
    state: &CaseFees,
    up_to: NaiveDate,
    context: RemitContext<'_>,
) -> Result<Vec<RemittedLine>, MoneyError> {
    let remitted_through = state.remittances.iter().map(|r| r.up_to).max();
    let mut grouped: BTreeMap<(NaiveDate, usize), RemittedLine> = BTreeMap::new();
    for payment in &state.payments {
        let day = vietnam_time::date_of(payment.received_at);
        if day > up_to || remitted_through.is_some_and(|through| day <= through) {
            continue;
        }
        let version = context.schedule.in_force_on(day);
        for paid in &payment.allocation {
            let split =
                split_collection(paid.kind, paid.amount, context.retains, retention_in(version, &paid.fee_code));
            let rule = version.and_then(|v| v.rule(&paid.fee_code));
            let entry = grouped.entry((day, paid.line)).or_insert_with(|| RemittedLine {
                collected_on: day,
                fee_code: paid.fee_code.clone(),
                kind: paid.kind,
                to_budget: Vnd::ZERO,
                retained: Vnd::ZERO,
                budget_chapter: context.budget_chapter.cloned(),
                budget_sub_item: rule.and_then(|r| r.budget_sub_item.clone()),
                fee_name: rule.map(|r| r.name.clone()),
            });
            entry.to_budget = entry.to_budget.checked_add(split.to_budget)?;
            entry.retained = entry.retained.checked_add(split.retained)?;
        }
    }
    Ok(grouped.into_values().collect())
}
