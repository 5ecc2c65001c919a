//! The case-fees decider, rule by rule, as given / when / then.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use chrono::{DateTime, Duration, Utc};
use feeledger_domain::case_fees::*;
use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CaseCode, CounterId, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeRule, FeeScheduleVersion};
use feeledger_domain::money::{Percent, Vnd};
use feeledger_domain::payer::Payer;
use feeledger_domain::vietqr::DynamicQr;
use uuid::Uuid;

// --- a tiny given/when/then harness ----------------------------------------------------------

struct Scenario {
    history: Vec<CaseEvent>,
}

fn given(history: Vec<CaseEvent>) -> Scenario {
    Scenario { history }
}

impl Scenario {
    fn state(&self) -> CaseFees {
        CaseFees::fold(&self.history)
    }

    fn when(&self, command: Command) -> Outcome {
        let state = self.state();
        let result = decide(&state, command);
        Outcome { state, result }
    }
}

struct Outcome {
    state: CaseFees,
    result: Result<Vec<CaseEvent>, CaseError>,
}

impl Outcome {
    fn then_events(self) -> Vec<CaseEvent> {
        self.result.unwrap_or_else(|e| panic!("expected events, got error: {e}"))
    }

    fn then_error(self) -> CaseError {
        match self.result {
            Ok(events) => panic!("expected an error, got events: {events:?}"),
            Err(e) => e,
        }
    }

    fn then_state(self) -> CaseFees {
        let events = self.then_events_with_state();
        events.1.iter().fold(events.0, evolve)
    }

    fn then_events_with_state(self) -> (CaseFees, Vec<CaseEvent>) {
        let state = self.state.clone();
        (state, self.then_events())
    }
}

fn types(events: &[CaseEvent]) -> Vec<&'static str> {
    events.iter().map(CaseEvent::event_type).collect()
}

// --- fixtures ---------------------------------------------------------------------------------

fn now() -> DateTime<Utc> {
    "2024-04-26T02:15:00Z".parse().unwrap()
}

fn vnd(dong: i64) -> Vnd {
    Vnd::new(dong).unwrap()
}

fn schedule() -> FeeScheduleVersion {
    let rule = |code: &str, kind, amount, retention: &str| FeeRule {
        fee_code: FeeCode::parse(code).unwrap(),
        name: format!("Fee {code}"),
        kind,
        unit_amount: vnd(amount),
        retention_percent: Percent::parse(retention).unwrap(),
        budget_sub_item: None,
        deposit_schedule: None,
    };
    FeeScheduleVersion {
        agency_code: AgencyCode::parse("H34.22.6").unwrap(),
        version: 3,
        effective_from: "2024-01-01".parse().unwrap(),
        published_at: now() - Duration::days(200),
        fees: vec![
            rule("P-SAOY", FeeKind::Phi, 1000, "90"),
            rule("LP-HOTICH", FeeKind::LePhi, 8000, "0"),
            rule("LP-HOCHIEU", FeeKind::LePhi, 200_000, "0"),
        ],
    }
}

fn assess_command(lines: &[(&str, u32)]) -> Command {
    Command::AssessFees(AssessFees {
        case_code: CaseCode::parse("H34.22.6-240426-0002").unwrap(),
        agency_code: AgencyCode::parse("H34.22.6").unwrap(),
        procedure_name: "Chứng thực bản sao từ bản chính".into(),
        payer: Payer::new("VÕ ĐẶNG NGỌC GIÀ", Some("079201008870")).unwrap(),
        lines: lines
            .iter()
            .map(|(code, quantity)| FeeLineRequest { fee_code: FeeCode::parse(code).unwrap(), quantity: *quantity })
            .collect(),
        schedule: schedule(),
        counter_id: Some(CounterId::parse("quay-1").unwrap()),
        now: now(),
        procedure_code: None,
    })
}

/// The Kon Tum example: a certified copy of 3 pages, 3,000 VND.
fn assessed_3000() -> Vec<CaseEvent> {
    given(vec![]).when(assess_command(&[("P-SAOY", 3)])).then_events()
}

fn payment(key: &str, amount: i64) -> Command {
    Command::RecordPayment(RecordPayment {
        payment_id: Uuid::new_v4(),
        idempotency_key: key.into(),
        amount: vnd(amount),
        channel: PaymentChannel::Vietqr,
        reference: "H34.22.6-240426-0002".into(),
        provider: Some("sepay".into()),
        bank_reference: None,
        qr_id: None,
        payer_account: None,
        received_at: now() + Duration::minutes(3),
    })
}

fn issue_qr(qr_id: Uuid) -> Command {
    Command::IssueQr(IssueQr {
        qr_id,
        counter_id: CounterId::parse("quay-1").unwrap(),
        beneficiary: BankAccount {
            bin: BankBin::parse("970415").unwrap(),
            number: AccountNumber::parse("113366668888").unwrap(),
            name: "UBND PHUONG TRAN HUNG DAO".into(),
        },
        now: now(),
        expires_at: now() + Duration::minutes(15),
    })
}

fn then_apply(mut history: Vec<CaseEvent>, command: Command) -> Vec<CaseEvent> {
    let events = given(history.clone()).when(command).then_events();
    history.extend(events);
    history
}

// --- assessment -------------------------------------------------------------------------------

#[test]
fn assessing_prices_each_line_from_the_schedule_and_records_the_rule_version() {
    let events = given(vec![]).when(assess_command(&[("P-SAOY", 3), ("LP-HOTICH", 1)])).then_events();
    let [CaseEvent::FeeAssessed(assessed)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(assessed.total, vnd(11_000));
    assert_eq!(assessed.lines[0].amount, vnd(3000));
    assert_eq!(assessed.lines[1].kind, FeeKind::LePhi);
    assert_eq!(assessed.schedule_version, 3);
}

#[test]
fn assessing_a_fee_code_unknown_to_the_schedule_is_rejected() {
    let err = given(vec![]).when(assess_command(&[("P-KHONGCO", 1)])).then_error();
    assert_eq!(err, CaseError::UnknownFeeCode(FeeCode::parse("P-KHONGCO").unwrap()));
}

#[test]
fn assessing_with_no_lines_a_zero_quantity_or_a_repeated_code_is_rejected() {
    assert_eq!(given(vec![]).when(assess_command(&[])).then_error(), CaseError::BadLineCount);
    assert!(matches!(given(vec![]).when(assess_command(&[("P-SAOY", 0)])).then_error(), CaseError::BadQuantity(_)));
    assert!(matches!(
        given(vec![]).when(assess_command(&[("P-SAOY", 1), ("P-SAOY", 2)])).then_error(),
        CaseError::DuplicateFeeLine(_)
    ));
}

#[test]
fn a_case_code_of_another_agency_is_rejected() {
    let Command::AssessFees(mut command) = assess_command(&[("P-SAOY", 1)]) else { unreachable!() };
    command.agency_code = AgencyCode::parse("H34.22.7").unwrap();
    assert!(matches!(given(vec![]).when(Command::AssessFees(command)).then_error(), CaseError::AgencyMismatch { .. }));
}

#[test]
fn assessing_twice_is_rejected_but_a_cancelled_unpaid_case_can_be_reassessed() {
    assert_eq!(given(assessed_3000()).when(assess_command(&[("P-SAOY", 1)])).then_error(), CaseError::AlreadyAssessed);
    let cancelled = then_apply(
        assessed_3000(),
        Command::CancelAssessment(CancelAssessment { reason: "sai số trang".into(), now: now() }),
    );
    let state = given(cancelled).when(assess_command(&[("P-SAOY", 2)])).then_state();
    assert_eq!(state.status, CaseStatus::Assessed);
    assert_eq!(state.total(), vnd(2000));
}

// --- payments ---------------------------------------------------------------------------------

#[test]
fn paying_2000_of_a_3000_case_leaves_1000_outstanding() {
    let events = given(assessed_3000()).when(payment("txn-1", 2000)).then_events();
    assert_eq!(types(&events), ["PaymentReceived", "PartiallyPaid"]);
    assert_eq!(events[1], CaseEvent::PartiallyPaid(PartiallyPaid { paid_total: vnd(2000), outstanding: vnd(1000) }));
    let state = given(assessed_3000()).when(payment("txn-1", 2000)).then_state();
    assert_eq!(state.status, CaseStatus::PartiallyPaid);
    assert_eq!(state.outstanding(), vnd(1000));
}

#[test]
fn paying_the_remainder_marks_the_case_fully_paid() {
    let history = then_apply(assessed_3000(), payment("txn-1", 2000));
    let events = given(history.clone()).when(payment("txn-2", 1000)).then_events();
    assert_eq!(types(&events), ["PaymentReceived", "FullyPaid"]);
    let state = given(history).when(payment("txn-2", 1000)).then_state();
    assert_eq!((state.status, state.paid, state.outstanding()), (CaseStatus::Paid, vnd(3000), Vnd::ZERO));
}

#[test]
fn paying_after_full_payment_is_an_overpayment_that_is_kept() {
    let paid = then_apply(assessed_3000(), payment("txn-1", 3000));
    let events = given(paid.clone()).when(payment("txn-2", 3000)).then_events();
    assert_eq!(types(&events), ["PaymentReceived", "Overpaid"]);
    let CaseEvent::Overpaid(overpaid) = &events[1] else { unreachable!() };
    assert_eq!((overpaid.excess, overpaid.overpaid_total), (vnd(3000), vnd(3000)));
    let state = given(paid).when(payment("txn-2", 3000)).then_state();
    assert_eq!((state.status, state.paid, state.overpaid()), (CaseStatus::Overpaid, vnd(6000), vnd(3000)));
}

#[test]
fn a_transfer_of_too_much_pays_the_case_and_keeps_the_excess() {
    let events = given(assessed_3000()).when(payment("txn-1", 5000)).then_events();
    assert_eq!(types(&events), ["PaymentReceived", "FullyPaid", "Overpaid"]);
    let CaseEvent::Overpaid(overpaid) = &events[2] else { unreachable!() };
    assert_eq!(overpaid.excess, vnd(2000));
}

#[test]
fn a_payment_with_an_already_seen_idempotency_key_changes_nothing() {
    let history = then_apply(assessed_3000(), payment("txn-1", 2000));
    assert!(given(history.clone()).when(payment("txn-1", 2000)).then_events().is_empty());
    assert_eq!(given(history).when(payment("txn-1", 2000)).then_state().paid, vnd(2000));
}

#[test]
fn the_same_idempotency_key_with_a_different_amount_is_an_error() {
    let history = then_apply(assessed_3000(), payment("txn-1", 2000));
    assert_eq!(
        given(history).when(payment("txn-1", 999)).then_error(),
        CaseError::IdempotencyKeyReused("txn-1".into())
    );
}

#[test]
fn a_zero_payment_or_a_payment_before_assessment_is_rejected() {
    assert!(matches!(given(assessed_3000()).when(payment("txn-0", 0)).then_error(), CaseError::Money(_)));
    assert_eq!(given(vec![]).when(payment("txn-1", 1000)).then_error(), CaseError::NotAssessed);
}

#[test]
fn money_arriving_on_a_cancelled_case_is_kept_as_overpaid_for_refund() {
    let cancelled = then_apply(
        assessed_3000(),
        Command::CancelAssessment(CancelAssessment { reason: "người nộp rút hồ sơ".into(), now: now() }),
    );
    let state = given(cancelled).when(payment("txn-9", 3000)).then_state();
    assert_eq!((state.status, state.overpaid(), state.outstanding()), (CaseStatus::Cancelled, vnd(3000), Vnd::ZERO));
}

#[test]
fn a_case_with_money_received_cannot_be_cancelled() {
    let history = then_apply(assessed_3000(), payment("txn-1", 1000));
    let cancel = Command::CancelAssessment(CancelAssessment { reason: "x".into(), now: now() });
    assert_eq!(given(history).when(cancel).then_error(), CaseError::PaymentsRecorded);
}

// --- QR codes ---------------------------------------------------------------------------------

#[test]
fn a_qr_asks_for_exactly_the_outstanding_amount_with_the_case_reference() {
    let qr_id = Uuid::new_v4();
    let events = given(assessed_3000()).when(issue_qr(qr_id)).then_events();
    let [CaseEvent::QrIssued(issued)] = events.as_slice() else { panic!("{events:?}") };
    let decoded = DynamicQr::parse(&issued.payload).unwrap();
    assert_eq!(decoded.amount, vnd(3000));
    assert_eq!(decoded.purpose, "H34.22.6-240426-0002");
    assert_eq!(issued.reference.as_str(), "H34.22.6-240426-0002");
    let state = given(assessed_3000()).when(issue_qr(qr_id)).then_state();
    assert_eq!(state.status, CaseStatus::AwaitingPayment);
    assert_eq!(state.payable_qr().map(|q| q.qr_id), Some(qr_id));
}

#[test]
fn after_a_partial_payment_a_new_qr_is_for_the_remainder_and_supersedes_the_old() {
    let first = Uuid::new_v4();
    let history = then_apply(then_apply(assessed_3000(), issue_qr(first)), payment("txn-1", 2000));
    assert!(given(history.clone()).state().payable_qr().is_none(), "the old QR no longer asks for the right amount");
    let second = Uuid::new_v4();
    let events = given(history).when(issue_qr(second)).then_events();
    assert_eq!(types(&events), ["QrSuperseded", "QrIssued"]);
    let CaseEvent::QrIssued(issued) = &events[1] else { unreachable!() };
    assert_eq!(issued.amount, vnd(1000));
}

#[test]
fn no_qr_is_issued_when_nothing_is_outstanding() {
    let paid = then_apply(assessed_3000(), payment("txn-1", 3000));
    assert_eq!(given(paid).when(issue_qr(Uuid::new_v4())).then_error(), CaseError::NothingOutstanding);
}

#[test]
fn an_expired_qr_is_marked_expired_only_once_it_is_due() {
    let qr_id = Uuid::new_v4();
    let history = then_apply(assessed_3000(), issue_qr(qr_id));
    let early = Command::ExpireQr(ExpireQr { qr_id, now: now() + Duration::minutes(5) });
    assert!(given(history.clone()).when(early).then_events().is_empty());
    let due = Command::ExpireQr(ExpireQr { qr_id, now: now() + Duration::minutes(15) });
    let state = given(history).when(due).then_state();
    assert_eq!(state.status, CaseStatus::Assessed);
    assert!(state.payable_qr().is_none());
}

#[test]
fn a_payment_after_the_qr_expired_is_still_recorded_truthfully() {
    let qr_id = Uuid::new_v4();
    let history = then_apply(assessed_3000(), issue_qr(qr_id));
    let history = then_apply(history, Command::ExpireQr(ExpireQr { qr_id, now: now() + Duration::hours(1) }));
    let state = given(history).when(payment("late-1", 3000)).then_state();
    assert_eq!(state.status, CaseStatus::Paid);
}

// --- reconciliation and remittance ---------------------------------------------------------

#[test]
fn a_payment_is_reconciled_once_and_a_second_line_for_it_is_an_error() {
    let history = then_apply(assessed_3000(), payment("txn-1", 3000));
    let CaseEvent::PaymentReceived(received) = &history[1] else { unreachable!() };
    let reconcile = |line: &str| {
        Command::RecordReconciliation(RecordReconciliation {
            payment_id: received.payment_id,
            statement_line_id: line.into(),
            statement_date: "2024-04-26".parse().unwrap(),
            now: now(),
        })
    };
    let history = then_apply(history.clone(), reconcile("L1"));
    assert!(given(history.clone()).when(reconcile("L1")).then_events().is_empty());
    assert!(matches!(given(history).when(reconcile("L2")).then_error(), CaseError::AlreadyReconciled { .. }));
}

#[test]
fn event_type_names_match_their_serialised_tags() {
    let history = then_apply(then_apply(assessed_3000(), issue_qr(Uuid::new_v4())), payment("txn-1", 5000));
    for event in &history {
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], event.event_type());
        assert!(CaseEvent::TYPES.contains(&event.event_type()));
        assert_eq!(&serde_json::from_value::<CaseEvent>(json).unwrap(), event);
    }
}

#[test]
fn a_payment_records_which_lines_it_paid_le_phi_first() {
    let history = given(vec![]).when(assess_command(&[("P-SAOY", 3), ("LP-HOTICH", 1)])).then_events();
    let events = given(history).when(payment("txn-1", 9000)).then_events();
    let CaseEvent::PaymentReceived(received) = &events[0] else { panic!() };
    let shares: Vec<(&str, i64)> = received.allocation.iter().map(|l| (l.fee_code.as_str(), l.amount.dong())).collect();
    assert_eq!(shares, [("LP-HOTICH", 8000), ("P-SAOY", 1000)]);
    assert!(received.excess.is_zero());
}

#[test]
fn full_payment_tells_how_the_case_was_paid() {
    let history = then_apply(assessed_3000(), payment("txn-1", 1000));
    let events = given(history).when(payment("txn-2", 2000)).then_events();
    let CaseEvent::FullyPaid(paid) = &events[1] else { panic!("{events:?}") };
    assert_eq!(paid.channels, [PaymentChannel::Vietqr]);
}

// --- receipts per payment (issue 14) ---------------------------------------------------------

fn receipt_for(payment_id: Option<Uuid>, number: u32) -> Command {
    Command::IssueReceipt(IssueReceipt {
        receipt_id: Uuid::new_v4(),
        template_symbol: "01BLP0-001".into(),
        serial: "AA-26E".into(),
        number,
        now: now() + Duration::minutes(5),
        tax_code: Some(feeledger_domain::budget::TaxCode::parse("0100109106").unwrap()),
        payment_id,
        number_width: None,
    })
}

#[test]
fn a_partial_payment_gets_a_receipt_of_what_it_paid_and_only_one() {
    let mut history = assessed_3000();
    history.extend(given(history.clone()).when(payment("bank-1", 2000)).then_events());
    let payment_id = CaseFees::fold(&history).payments[0].payment_id;

    let issued = given(history.clone()).when(receipt_for(Some(payment_id), 1)).then_events();
    let CaseEvent::ReceiptIssued(receipt) = &issued[0] else { panic!("{issued:?}") };
    assert_eq!(receipt.amount, vnd(2000));
    assert_eq!(Vnd::sum(receipt.lines.iter().map(|l| l.amount)).unwrap(), vnd(2000), "the lines sum to the receipt");
    assert_eq!(receipt.payment_id, Some(payment_id));
    assert_eq!(receipt.tax_code.as_ref().map(|t| t.as_str()), Some("0100109106"));
    history.extend(issued);

    let again = given(history.clone()).when(receipt_for(Some(payment_id), 2)).then_error();
    assert!(matches!(again, CaseError::ReceiptAlreadyIssued(_)), "{again:?}");
    assert_eq!(CaseFees::fold(&history).payments_without_receipt(), Vec::<Uuid>::new());

    // Paid in full later: the per-payment receipts stand; no whole-case receipt on top of them.
    history.extend(given(history.clone()).when(payment("bank-2", 1000)).then_events());
    let whole = given(history.clone()).when(receipt_for(None, 2)).then_error();
    assert!(matches!(whole, CaseError::ReceiptAlreadyIssued(_)), "{whole:?}");
    assert_eq!(CaseFees::fold(&history).payments_without_receipt().len(), 1);
}

// --- a history that does not add up ----------------------------------------------------------

#[test]
fn a_history_whose_payments_add_up_past_the_largest_amount_is_marked_and_refuses_every_command() {
    let history = then_apply(assessed_3000(), payment("p-1", 1000));
    let CaseEvent::PaymentReceived(received) = history.iter().find(|e| e.event_type() == "PaymentReceived").unwrap()
    else {
        unreachable!()
    };
    // Two payments of the largest amount each (a log written by something other than `decide`).
    let huge = PaymentReceived { amount: Vnd::new(feeledger_domain::money::VND_MAX).unwrap(), ..received.clone() };
    let mut broken = assessed_3000();
    broken.extend([CaseEvent::PaymentReceived(huge.clone()), CaseEvent::PaymentReceived(huge)]);

    let state = CaseFees::fold(&broken);
    assert!(state.inconsistent.as_deref().is_some_and(|r| r.starts_with("total paid")), "{:?}", state.inconsistent);
    assert_eq!(state.paid, Vnd::new(feeledger_domain::money::VND_MAX).unwrap(), "the first sum that fits is kept");
    assert!(matches!(state.check(), Err(CaseError::InconsistentHistory(_))));
    assert!(matches!(given(broken).when(payment("p-2", 1000)).then_error(), CaseError::InconsistentHistory(_)));
    assert!(CaseFees::fold(&history).check().is_ok());
}
