//! Which fee lines a payment pays: the rule that turns money received for a case into money
//! collected per fee code, for the treasury report and the lines' "paid" status.
//!
//! The rule (docs/adr/0004-allocation.md): a payment fills the case's **lệ phí** lines first
//! (they belong wholly to the state budget), then its **phí** lines, each group in the order of
//! the assessment, each line up to its amount. What is left beyond every line is overpaid money
//! to refund, never collected fees. Parts always sum to the payment, to the đồng.

use serde::{Deserialize, Serialize};

use crate::case_fees::AssessedLine;
use crate::fee_schedule::FeeKind;
use crate::money::{MoneyError, Vnd};

/// The part of one payment that went to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineShare {
    /// Index of the line in the assessment.
    pub line: usize,
    pub amount: Vnd,
}

/// How one payment was divided.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentAllocation {
    pub shares: Vec<LineShare>,
    /// Beyond everything owed: to be refunded.
    pub excess: Vnd,
}

/// The order lines are filled in: lệ phí first, then phí, each in assessment order.
pub fn fill_order(lines: &[AssessedLine]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].kind == FeeKind::LePhi).collect();
    order.extend((0..lines.len()).filter(|&i| lines[i].kind == FeeKind::Phi));
    order
}

/// Divides `amount` over the lines, given what each line has already received (`paid[i]`,
/// updated in place). Returns the shares and the excess; `Σ shares + excess == amount`.
/// A line's share never takes it past its amount, so the only error is a `paid` figure that
/// does not add up, which is reported rather than kept.
pub fn allocate(lines: &[AssessedLine], paid: &mut [Vnd], amount: Vnd) -> Result<PaymentAllocation, MoneyError> {
    let mut left = amount;
    let mut shares = Vec::new();
    for index in fill_order(lines) {
        if left.is_zero() {
            break;
        }
        let Some(line) = lines.get(index) else { continue };
        let Some(already) = paid.get_mut(index) else { continue };
        let room = line.amount.excess_over(*already);
        let share = room.min(left);
        if share.is_zero() {
            continue;
        }
        *already = already.checked_add(share)?;
        left = left.excess_over(share);
        shares.push(LineShare { line: index, amount: share });
    }
    Ok(PaymentAllocation { shares, excess: left })
}

/// What each line has received after `payments`, in order.
pub fn paid_per_line(lines: &[AssessedLine], payments: impl IntoIterator<Item = Vnd>) -> Result<Vec<Vnd>, MoneyError> {
    let mut paid = vec![Vnd::ZERO; lines.len()];
    for amount in payments {
        allocate(lines, &mut paid, amount)?;
    }
    Ok(paid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::FeeCode;

    fn line(code: &str, kind: FeeKind, amount: i64) -> AssessedLine {
        AssessedLine {
            fee_code: FeeCode::parse(code).unwrap(),
            name: code.into(),
            kind,
            quantity: 1,
            unit_amount: Vnd::new(amount).unwrap(),
            amount: Vnd::new(amount).unwrap(),
        }
    }

    fn vnd(d: i64) -> Vnd {
        Vnd::new(d).unwrap()
    }

    #[test]
    fn le_phi_is_filled_before_phi_whatever_the_line_order() {
        let lines = [line("P-SAOY", FeeKind::Phi, 3000), line("LP-TRICHLUC", FeeKind::LePhi, 8000)];
        let mut paid = vec![Vnd::ZERO; 2];
        let first = allocate(&lines, &mut paid, vnd(9000)).unwrap();
        assert_eq!(first.shares, [LineShare { line: 1, amount: vnd(8000) }, LineShare { line: 0, amount: vnd(1000) }]);
        let second = allocate(&lines, &mut paid, vnd(5000)).unwrap();
        assert_eq!(second.shares, [LineShare { line: 0, amount: vnd(2000) }]);
        assert_eq!(second.excess, vnd(3000));
        assert_eq!(paid, [vnd(3000), vnd(8000)]);
    }

    #[test]
    fn the_kon_tum_partial_payment_leaves_the_third_page_unpaid() {
        let lines = [line("P-SAOY-2TRANG", FeeKind::Phi, 2000), line("P-SAOY-TRANGTHEM", FeeKind::Phi, 1000)];
        assert_eq!(paid_per_line(&lines, [vnd(2000)]).unwrap(), [vnd(2000), Vnd::ZERO]);
    }

    proptest::proptest! {
        #[test]
        fn shares_and_excess_always_sum_to_the_payment(amounts in proptest::collection::vec(1i64..50_000, 1..6), payments in proptest::collection::vec(1i64..80_000, 1..6)) {
            let lines: Vec<AssessedLine> = amounts.iter().enumerate()
                .map(|(i, a)| line(&format!("F{i}"), if i % 2 == 0 { FeeKind::Phi } else { FeeKind::LePhi }, *a))
                .collect();
            let mut paid = vec![Vnd::ZERO; lines.len()];
            for p in payments {
                let allocation = allocate(&lines, &mut paid, vnd(p)).unwrap();
                let total = Vnd::sum(allocation.shares.iter().map(|s| s.amount)).unwrap().checked_add(allocation.excess).unwrap();
                proptest::prop_assert_eq!(total, vnd(p));
            }
            for (i, l) in lines.iter().enumerate() {
                proptest::prop_assert!(paid[i] <= l.amount);
            }
        }
    }
}
