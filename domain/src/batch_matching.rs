//! Money that reaches the collection account in batches, not one transfer at a time (issue 15):
//!
//! - **card (POS) payments**: the acquirer settles a day's card payments as one credit, a day or
//!   two later, possibly less its fee. A day's card total is matched to one credit booked within
//!   [`BatchRules::settlement_lag_days`] whose content names a card settlement ([`CARD_HINTS`]),
//!   equal to the total or short of it by at most [`BatchRules::card_fee_max_per_mille`] of it.
//!   The difference is the acquirer's fee, reported as its own amount, never absorbed.
//! - **cash**: the cashier deposits the cash book in one deposit slip, covering one or several
//!   days. A run of consecutive not-yet-deposited cash days is matched to one credit naming a cash
//!   deposit ([`CASH_HINTS`]), booked on or after the run's last day and within
//!   [`BatchRules::deposit_lag_days`] of its first, **to the đồng** (no tolerance: there is no fee).
//!
//! Pairs recorded by an earlier run (the payments' `reconciled_line_id`) are kept as they are.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case_fees::PaymentChannel;
use crate::codes::CaseCode;
use crate::money::{MoneyError, Vnd};
use crate::reconciliation::{LedgerPayment, StatementCredit};

/// Words in a statement line's content that say it is an acquirer's card settlement.
pub const CARD_HINTS: [&str; 5] = ["pos", "settlement", "thanh toan the", "thanh toán thẻ", "tt the"];
/// Words that say it is a cash deposit.
pub const CASH_HINTS: [&str; 5] = ["nop tien mat", "nộp tiền mặt", "ntm", "cash deposit", "tien mat"];

/// The tolerances of batch matching (configurable per deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRules {
    /// The most an acquirer may deduct from a day's card total, in thousandths of it (30 = 3%).
    pub card_fee_max_per_mille: i64,
    /// How many days after the card day the settlement may be booked.
    pub settlement_lag_days: i64,
    /// How many days after the first cash day of a deposit the deposit may be booked.
    pub deposit_lag_days: i64,
}

impl Default for BatchRules {
    fn default() -> Self {
        BatchRules { card_fee_max_per_mille: 30, settlement_lag_days: 3, deposit_lag_days: 7 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchKind {
    CardSettlement,
    CashDeposit,
}

impl BatchKind {
    fn of(channel: PaymentChannel) -> Option<BatchKind> {
        match channel {
            PaymentChannel::Pos => Some(BatchKind::CardSettlement),
            PaymentChannel::Cash => Some(BatchKind::CashDeposit),
            _ => None,
        }
    }
}

/// One statement credit explained by a batch of the ledger's payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMatch {
    pub kind: BatchKind,
    pub line_id: String,
    pub booked_on: NaiveDate,
    /// What the bank credited.
    pub bank_amount: Vnd,
    /// The days of the payments it covers.
    pub days: Vec<NaiveDate>,
    /// Σ of those payments.
    pub ledger_amount: Vnd,
    /// `ledger_amount − bank_amount`: the acquirer's fee (always zero for cash).
    pub fee: Vnd,
    pub payments: Vec<(Uuid, CaseCode)>,
}

/// A day of card or cash payments no credit explains yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsettledDay {
    pub kind: BatchKind,
    pub day: NaiveDate,
    pub amount: Vnd,
    pub count: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    pub matches: Vec<BatchMatch>,
    pub unsettled: Vec<UnsettledDay>,
}

fn mentions(line: &StatementCredit, hints: &[&str]) -> bool {
    let text = line.description.to_lowercase();
    hints.iter().any(|h| {
        // Short hints ("pos", "ntm") only as whole words, so "POSTAL" or "ntmai" do not count.
        if h.len() <= 3 { text.split(|c: char| !c.is_alphanumeric()).any(|w| w == *h) } else { text.contains(h) }
    })
}

#[derive(Debug, Default, Clone)]
struct Day {
    total: Vnd,
    payments: Vec<(Uuid, CaseCode)>,
}

/// Matches the card and cash payments among `payments` with the credits among `lines` (the lines
/// no 1:1 match has taken).
///
/// # Errors
///
/// A sum beyond the ledger's maximum amount.
pub fn match_batches(
    payments: &[LedgerPayment],
    lines: &[&StatementCredit],
    rules: &BatchRules,
) -> Result<BatchOutcome, MoneyError> {
    let mut outcome = BatchOutcome::default();
    let mut used_lines: BTreeSet<&str> = BTreeSet::new();
    let mut days: BTreeMap<(BatchKind, NaiveDate), Day> = BTreeMap::new();

    // 0. Pairs recorded earlier: a line and the payments that name it.
    let mut recorded: BTreeMap<&str, Vec<&LedgerPayment>> = BTreeMap::new();
    for payment in payments {
        let Some(kind) = BatchKind::of(payment.channel) else { continue };
        match &payment.reconciled_line_id {
            Some(line_id) if lines.iter().any(|l| &l.line_id == line_id) => {
                recorded.entry(line_id.as_str()).or_default().push(payment);
            }
            Some(_) => {} // paired with a line outside this window: settled, not ours to show
            None => {
                let day = days.entry((kind, payment.received_on)).or_default();
                day.total = day.total.checked_add(payment.amount)?;
                day.payments.push((payment.payment_id, payment.case_code.clone()));
            }
        }
    }
    for (line_id, batch) in recorded {
        let Some(line) = lines.iter().find(|l| l.line_id == line_id) else { continue };
        let Some(kind) = batch.first().and_then(|p| BatchKind::of(p.channel)) else { continue };
        let ledger = Vnd::sum(batch.iter().map(|p| p.amount))?;
        let days: BTreeSet<NaiveDate> = batch.iter().map(|p| p.received_on).collect();
        used_lines.insert(line_id);
        if ledger < line.amount {
            // Part of the batch's payments lie before the window read: the line is explained
            // (on its own day's report), but not shown from here.
            continue;
        }
        outcome.matches.push(BatchMatch {
            kind,
            line_id: line.line_id.clone(),
            booked_on: line.booked_on,
            bank_amount: line.amount,
            days: days.into_iter().collect(),
            ledger_amount: ledger,
            // A recorded pair was made with the bank at most the ledger: the rest is the fee.
            fee: ledger.checked_sub(line.amount)?,
            payments: batch.iter().map(|p| (p.payment_id, p.case_code.clone())).collect(),
        });
    }

    let mut sorted: Vec<&StatementCredit> = lines.to_vec();
    sorted.sort_by(|a, b| (a.booked_on, &a.line_id).cmp(&(b.booked_on, &b.line_id)));

    // 1. Card days, each against one settlement credit: the smallest fee, then the nearest day.
    let card_days: Vec<(NaiveDate, Day)> = days
        .iter()
        .filter(|((kind, _), _)| *kind == BatchKind::CardSettlement)
        .map(|((_, day), d)| (*day, d.clone()))
        .collect();
    let mut settled: BTreeSet<(BatchKind, NaiveDate)> = BTreeSet::new();
    for (day, batch) in card_days {
        let total = batch.total.dong();
        let fee_max = total.checked_mul(rules.card_fee_max_per_mille).ok_or(MoneyError::TooLarge)? / 1000;
        let best = sorted
            .iter()
            .filter(|l| !used_lines.contains(l.line_id.as_str()) && mentions(l, &CARD_HINTS))
            .filter(|l| l.booked_on >= day && (l.booked_on - day).num_days() <= rules.settlement_lag_days)
            .filter(|l| l.amount <= batch.total && total - l.amount.dong() <= fee_max)
            .min_by_key(|l| (total - l.amount.dong(), l.booked_on));
        if let Some(line) = best {
            used_lines.insert(line.line_id.as_str());
            settled.insert((BatchKind::CardSettlement, day));
            outcome.matches.push(BatchMatch {
                kind: BatchKind::CardSettlement,
                line_id: line.line_id.clone(),
                booked_on: line.booked_on,
                bank_amount: line.amount,
                days: vec![day],
                ledger_amount: batch.total,
                fee: batch.total.checked_sub(line.amount)?,
                payments: batch.payments.clone(),
            });
        }
    }

    // 2. Cash deposits, in booking order, each against a run of consecutive cash days.
    let cash_days: Vec<(NaiveDate, Day)> = days
        .iter()
        .filter(|((kind, _), _)| *kind == BatchKind::CashDeposit)
        .map(|((_, day), d)| (*day, d.clone()))
        .collect();
    for line in sorted.iter().filter(|l| mentions(l, &CASH_HINTS)) {
        if used_lines.contains(line.line_id.as_str()) {
            continue;
        }
        let open: Vec<&(NaiveDate, Day)> = cash_days
            .iter()
            .filter(|(day, _)| !settled.contains(&(BatchKind::CashDeposit, *day)) && *day <= line.booked_on)
            .collect();
        'start: for start in 0..open.len() {
            if (line.booked_on - open[start].0).num_days() > rules.deposit_lag_days {
                continue;
            }
            let mut total = Vnd::ZERO;
            for end in start..open.len() {
                total = total.checked_add(open[end].1.total)?;
                if total == line.amount {
                    let run = &open[start..=end];
                    used_lines.insert(line.line_id.as_str());
                    for (day, _) in run {
                        settled.insert((BatchKind::CashDeposit, *day));
                    }
                    outcome.matches.push(BatchMatch {
                        kind: BatchKind::CashDeposit,
                        line_id: line.line_id.clone(),
                        booked_on: line.booked_on,
                        bank_amount: line.amount,
                        days: run.iter().map(|(d, _)| *d).collect(),
                        ledger_amount: line.amount,
                        fee: Vnd::ZERO,
                        payments: run.iter().flat_map(|(_, d)| d.payments.clone()).collect(),
                    });
                    break 'start;
                }
                if total > line.amount {
                    break;
                }
            }
        }
    }

    for ((kind, day), batch) in &days {
        if !settled.contains(&(*kind, *day)) {
            outcome.unsettled.push(UnsettledDay {
                kind: *kind,
                day: *day,
                amount: batch.total,
                count: u32::try_from(batch.payments.len()).unwrap_or(u32::MAX),
            });
        }
    }
    outcome.matches.sort_by(|a, b| (a.booked_on, &a.line_id).cmp(&(b.booked_on, &b.line_id)));
    Ok(outcome)
}
