//! Batch matching (card settlements, cash deposits), rule by rule, as given / when / then.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use chrono::NaiveDate;
use feeledger_domain::batch_matching::{BatchKind, BatchOutcome, BatchRules, match_batches};
use feeledger_domain::case_fees::PaymentChannel;
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::money::Vnd;
use feeledger_domain::reconciliation::{ExceptionKind, LedgerPayment, StatementCredit, reconcile};
use uuid::Uuid;

// --- given / when / then ---------------------------------------------------------------------

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

struct Given {
    payments: Vec<LedgerPayment>,
    lines: Vec<StatementCredit>,
    rules: BatchRules,
}

fn given() -> Given {
    Given { payments: Vec::new(), lines: Vec::new(), rules: BatchRules::default() }
}

impl Given {
    fn paid(mut self, channel: PaymentChannel, on: u32, amount: i64) -> Self {
        let n = self.payments.len() as u128 + 1;
        self.payments.push(LedgerPayment {
            payment_id: Uuid::from_u128(n),
            case_code: CaseCode::parse(&format!("H34.22.6-2611{on:02}-{n:04}")).unwrap(),
            amount: Vnd::new(amount).unwrap(),
            channel,
            received_on: day(on),
            reference: format!("P{n}"),
            bank_reference: None,
            reconciled_line_id: None,
        });
        self
    }

    fn credited(mut self, id: &str, on: u32, amount: i64, description: &str) -> Self {
        self.lines.push(StatementCredit {
            line_id: id.into(),
            booked_on: day(on),
            amount: Vnd::new(amount).unwrap(),
            description: description.into(),
            bank_reference: None,
        });
        self
    }

    fn recorded(mut self, payment: usize, line_id: &str) -> Self {
        self.payments[payment].reconciled_line_id = Some(line_id.into());
        self
    }

    fn when_matched(&self) -> BatchOutcome {
        let lines: Vec<&StatementCredit> = self.lines.iter().collect();
        match_batches(&self.payments, &lines, &self.rules).unwrap()
    }
}

fn vnd(dong: i64) -> Vnd {
    Vnd::new(dong).unwrap()
}

// --- card (POS) settlements ------------------------------------------------------------------

#[test]
fn a_days_card_payments_match_the_next_days_settlement_and_the_fee_is_its_own_amount() {
    let outcome = given()
        .paid(PaymentChannel::Pos, 20, 300_000)
        .paid(PaymentChannel::Pos, 20, 700_000)
        .credited("S1", 21, 989_000, "TT POS MID 000011223344 NGAY 20/11/2026")
        .when_matched();
    assert_eq!(outcome.matches.len(), 1);
    let batch = &outcome.matches[0];
    assert_eq!(batch.kind, BatchKind::CardSettlement);
    assert_eq!((batch.line_id.as_str(), batch.days.as_slice()), ("S1", [day(20)].as_slice()));
    assert_eq!((batch.ledger_amount, batch.bank_amount, batch.fee), (vnd(1_000_000), vnd(989_000), vnd(11_000)));
    assert_eq!(batch.payments.len(), 2);
    assert_eq!(batch.ledger_amount, batch.bank_amount.checked_add(batch.fee).unwrap(), "every đồng accounted for");
    assert!(outcome.unsettled.is_empty());
}

#[test]
fn a_deduction_beyond_the_tolerance_is_no_settlement_and_the_day_stays_unsettled() {
    let outcome = given()
        .paid(PaymentChannel::Pos, 20, 1_000_000)
        .credited("S1", 21, 969_000, "TT POS MID 000011223344")
        .when_matched();
    assert!(outcome.matches.is_empty(), "3.1% is more than the default 3%");
    assert_eq!(outcome.unsettled.len(), 1);
    assert_eq!((outcome.unsettled[0].kind, outcome.unsettled[0].amount), (BatchKind::CardSettlement, vnd(1_000_000)));
    let mut wider = given().paid(PaymentChannel::Pos, 20, 1_000_000).credited("S1", 21, 969_000, "TT POS");
    wider.rules.card_fee_max_per_mille = 35;
    assert_eq!(wider.when_matched().matches[0].fee, vnd(31_000), "the tolerance is configurable");
}

#[test]
fn a_credit_that_does_not_say_it_is_a_card_settlement_or_comes_too_late_is_not_taken() {
    let outcome = given()
        .paid(PaymentChannel::Pos, 20, 500_000)
        .credited("T1", 21, 500_000, "IBFT chuyen tien")
        .credited("S9", 25, 500_000, "TT POS")
        .when_matched();
    assert!(outcome.matches.is_empty());
    assert_eq!(outcome.unsettled.len(), 1);
}

#[test]
fn a_settlement_never_exceeds_the_days_card_total() {
    let outcome = given().paid(PaymentChannel::Pos, 20, 500_000).credited("S1", 21, 500_001, "TT POS").when_matched();
    assert!(outcome.matches.is_empty(), "more than was paid by card is not a settlement of it");
}

// --- cash deposits ---------------------------------------------------------------------------

#[test]
fn one_deposit_covers_several_days_of_the_cash_book_to_the_dong() {
    let outcome = given()
        .paid(PaymentChannel::Cash, 17, 150_000)
        .paid(PaymentChannel::Cash, 18, 200_000)
        .paid(PaymentChannel::Cash, 18, 50_000)
        .paid(PaymentChannel::Cash, 19, 100_000)
        .paid(PaymentChannel::Cash, 20, 80_000)
        .credited("D1", 19, 500_000, "NOP TIEN MAT THU PHI 17-19/11")
        .when_matched();
    assert_eq!(outcome.matches.len(), 1);
    let deposit = &outcome.matches[0];
    assert_eq!(deposit.kind, BatchKind::CashDeposit);
    assert_eq!(deposit.days, [day(17), day(18), day(19)]);
    assert_eq!((deposit.bank_amount, deposit.fee, deposit.payments.len()), (vnd(500_000), Vnd::ZERO, 4));
    assert_eq!(outcome.unsettled.len(), 1, "the 20th is not deposited yet");
    assert_eq!((outcome.unsettled[0].day, outcome.unsettled[0].amount), (day(20), vnd(80_000)));
}

#[test]
fn a_deposit_that_does_not_add_up_to_whole_days_is_not_taken() {
    let outcome = given()
        .paid(PaymentChannel::Cash, 18, 200_000)
        .paid(PaymentChannel::Cash, 19, 100_000)
        .credited("D1", 19, 299_000, "Nộp tiền mặt")
        .when_matched();
    assert!(outcome.matches.is_empty(), "cash has no fee: a đồng short is an exception");
    assert_eq!(outcome.unsettled.len(), 2);
}

#[test]
fn pairs_recorded_earlier_are_kept() {
    let outcome = given()
        .paid(PaymentChannel::Pos, 20, 400_000)
        .paid(PaymentChannel::Pos, 20, 600_000)
        .credited("S1", 21, 990_000, "TT POS")
        .credited("S2", 21, 990_000, "TT POS")
        .recorded(0, "S2")
        .recorded(1, "S2")
        .when_matched();
    assert_eq!(outcome.matches.len(), 1);
    assert_eq!((outcome.matches[0].line_id.as_str(), outcome.matches[0].fee), ("S2", vnd(10_000)));
}

// --- in the day's reconciliation -------------------------------------------------------------

#[test]
fn a_settlement_and_a_deposit_are_explained_not_bank_only_and_the_sums_still_hold() {
    let g = given()
        .paid(PaymentChannel::Pos, 20, 1_000_000)
        .paid(PaymentChannel::Cash, 20, 250_000)
        .paid(PaymentChannel::Vietqr, 21, 30_000)
        .credited("S1", 21, 989_000, "TT POS MID 0001")
        .credited("D1", 21, 250_000, "NOP TIEN MAT")
        .credited("X1", 21, 77_000, "nop tien nham");
    let agency = AgencyCode::parse("H34.22.6").unwrap();
    let report = reconcile(&agency, day(21), &g.payments, &g.lines, day(22));
    assert_eq!(report.batches.len(), 2, "{report:#?}");
    assert_eq!(report.fees_total(), vnd(11_000));
    assert_eq!(report.batches_total(), vnd(1_239_000));
    let kinds: Vec<(ExceptionKind, Option<&str>)> =
        report.exceptions.iter().map(|e| (e.kind, e.line_id.as_deref())).collect();
    assert!(kinds.contains(&(ExceptionKind::BankOnly, Some("X1"))), "the unknown credit is still an exception");
    assert!(!kinds.iter().any(|(_, id)| matches!(id, Some("S1" | "D1"))), "{kinds:?}");
    assert!(report.invariants_hold());
    assert_eq!(report.bank_total, vnd(989_000 + 250_000 + 77_000));
    let on_20 = reconcile(&agency, day(20), &g.payments, &g.lines, day(22));
    assert!(on_20.batches.is_empty() && on_20.unsettled.is_empty(), "settled the next day: nothing open on the 20th");
}

#[test]
fn a_deposit_two_days_after_the_cash_day_is_explained_on_its_booking_day() {
    let g = given()
        .paid(PaymentChannel::Cash, 23, 20_000)
        .paid(PaymentChannel::Cash, 28, 10_000)
        .credited("NTM25", 25, 20_000, "NOP TIEN MAT THU PHI 23/10 - 23/10")
        .credited("NTM30", 30, 10_000, "NOP TIEN MAT THU PHI 28/10 - 28/10");
    let agency = AgencyCode::parse("H34.22.6").unwrap();
    let report = reconcile(&agency, day(30), &g.payments, &g.lines, day(30));
    assert_eq!(report.batches.len(), 1, "{report:#?}");
    let mut recorded = given()
        .paid(PaymentChannel::Cash, 23, 20_000)
        .paid(PaymentChannel::Cash, 28, 10_000)
        .credited("NTM25", 25, 20_000, "NOP TIEN MAT THU PHI 23/10 - 23/10")
        .credited("NTM30", 30, 10_000, "NOP TIEN MAT THU PHI 28/10 - 28/10")
        .recorded(0, "NTM25")
        .recorded(1, "NTM30");
    recorded.rules = BatchRules::default();
    let report = reconcile(&agency, day(30), &recorded.payments, &recorded.lines, day(30));
    assert_eq!(report.batches.len(), 1, "{report:#?}");
}

#[test]
fn a_recorded_deposit_whose_first_days_lie_before_the_window_does_not_hide_the_rest() {
    // The deposit of the 14th covered the 12th and 13th; only the 13th is in the window read.
    let g = given()
        .paid(PaymentChannel::Cash, 13, 20_000)
        .paid(PaymentChannel::Cash, 28, 10_000)
        .credited("NTM14", 14, 50_000, "NOP TIEN MAT")
        .credited("NTM30", 30, 10_000, "NOP TIEN MAT")
        .recorded(0, "NTM14");
    let agency = AgencyCode::parse("H34.22.6").unwrap();
    let on_28 = reconcile(&agency, day(28), &g.payments, &g.lines, day(30));
    assert_eq!(on_28.unsettled, [], "settled by the deposit of the 30th: {on_28:#?}");
    let on_30 = reconcile(&agency, day(30), &g.payments, &g.lines, day(30));
    assert_eq!(on_30.batches.len(), 1, "{on_30:#?}");
    assert_eq!(on_30.batches[0].line_id, "NTM30");
}
