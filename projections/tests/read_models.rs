//! The read models, given / when / then: given a history appended through the ledger's
//! commands, when the projections have caught up with it, then their documents say exactly
//! what the events say. On SQLite always, and on PostgreSQL when it is configured.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, reason = "tests fail loudly")]

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::case_fees::{AssessFees, CaseStatus, Command, FeeLineRequest, PaymentChannel, RecordPayment};
use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeRule, PublishFeeSchedule};
use feeledger_domain::money::{Percent, Vnd};
use feeledger_domain::payer::Payer;
use feeledger_domain::reconciliation::{LedgerPayment, Pairing};
use feeledger_domain::remittance::RemitRequest;
use feeledger_domain::treasury::TreasuryReport;
use feeledger_infrastructure::ledger::{CaseRecord, Ledger};
use feeledger_infrastructure::storage::EventMetadata;
use feeledger_infrastructure::test_support::TestDatabase;
use feeledger_projections::cashless::{self, MonthCounts};
use feeledger_projections::payments::PaymentsProjection;
use feeledger_projections::payments::payments_between;
use feeledger_projections::receipts;
use feeledger_projections::runner::{Projection, Runner};
use feeledger_projections::treasury::TreasuryProjection;
use feeledger_projections::treasury::TreasuryReports;
use serde_json::json;
use uuid::Uuid;

const AGENCY: &str = "G01.1";
const CATCH_UP: Duration = Duration::from_secs(30);

fn vnd(dong: i64) -> Vnd {
    Vnd::new(dong).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
}

/// 09:00 in Hà Nội on 2026-10-`d`.
fn at(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, d, 2, 0, 0).single().unwrap()
}

fn agency() -> AgencyCode {
    AgencyCode::parse(AGENCY).unwrap()
}

fn case(n: u32) -> CaseCode {
    CaseCode::parse(&format!("{AGENCY}-261005-{n:04}")).unwrap()
}

/// One backend's ledger and projections.
struct World {
    database: TestDatabase,
    ledger: Ledger,
    runner: Runner,
    metadata: EventMetadata,
}

/// Given: an agency that may retain its phí, with a phí (2,000 đ, 90% retained) and a lệ phí
/// (25,000 đ, all to the budget), on each backend.
async fn given_an_agency() -> Vec<World> {
    let mut worlds = Vec::new();
    for database in TestDatabase::each_backend().await {
        let store = database.store().await;
        let ledger = Ledger::new(store.clone());
        let runner = Runner::new(store, Duration::from_millis(20));
        runner.spawn_all();
        let metadata = EventMetadata { actor: Some("projection test".into()), ..EventMetadata::default() };
        // From JSON, so that settings added later keep their defaults here.
        let configured: AgencyConfigured = serde_json::from_value(json!({
            "agency_code": AGENCY, "name": "UBND xã Thử Nghiệm",
            "bank_account": { "bin": "970415", "number": "113366668888", "name": "UBND XA THU NGHIEM" },
            "retains_fees": true, "counters": ["quay-1"], "budget_chapter": "800",
            "configured_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        ledger.configure_agency(configured, &metadata).await.unwrap();
        let rule = |code: &str, kind, amount, retention: &str| FeeRule {
            fee_code: FeeCode::parse(code).unwrap(),
            name: format!("Phí {code}"),
            kind,
            unit_amount: vnd(amount),
            retention_percent: Percent::parse(retention).unwrap(),
            budget_sub_item: None,
            deposit_schedule: None,
        };
        let publish = PublishFeeSchedule {
            agency_code: agency(),
            effective_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            fees: vec![rule("P-SAOY", FeeKind::Phi, 2_000, "90"), rule("LP-HOTICH", FeeKind::LePhi, 25_000, "0")],
            published_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap(),
        };
        ledger.publish_fee_schedule(publish, &metadata).await.unwrap();
        worlds.push(World { database, ledger, runner, metadata });
    }
    worlds
}

impl World {
    fn backend(&self) -> &'static str {
        self.database.backend_name
    }

    /// A case assessed one of each fee (27,000 đ) on day `d`.
    async fn assessed(&self, n: u32, d: u32) -> CaseCode {
        self.assess(n, d).await.code
    }

    /// Like [`World::assessed`]; the case as the command answered it.
    async fn assess(&self, n: u32, d: u32) -> CaseRecord {
        let code = case(n);
        let schedule = self.ledger.schedule_in_force(&agency(), at(d)).await.unwrap();
        let line = |fee: &str| FeeLineRequest { fee_code: FeeCode::parse(fee).unwrap(), quantity: 1 };
        let assess = Command::AssessFees(AssessFees {
            case_code: code.clone(),
            agency_code: agency(),
            procedure_name: "Đăng ký khai sinh".into(),
            payer: Payer::new("Nguyễn Văn An", Some("079201008870")).unwrap(),
            lines: vec![line("P-SAOY"), line("LP-HOTICH")],
            schedule,
            counter_id: None,
            procedure_code: None,
            now: at(d),
        });
        self.ledger.execute(&code, assess, &self.metadata, None).await.unwrap()
    }

    async fn paid(&self, code: &CaseCode, amount: i64, channel: PaymentChannel, d: u32) -> Uuid {
        self.pay(code, amount, channel, d).await.0
    }

    /// Like [`World::paid`]; also the case as the command answered it.
    async fn pay(&self, code: &CaseCode, amount: i64, channel: PaymentChannel, d: u32) -> (Uuid, CaseRecord) {
        let payment_id = Uuid::new_v4();
        let pay = Command::RecordPayment(RecordPayment {
            payment_id,
            idempotency_key: payment_id.to_string(),
            amount: vnd(amount),
            channel,
            reference: code.to_string(),
            provider: None,
            bank_reference: None,
            qr_id: None,
            payer_account: None,
            received_at: at(d),
        });
        (payment_id, self.ledger.execute(code, pay, &self.metadata, None).await.unwrap())
    }

    async fn caught_up(&self) {
        for name in ["treasury", "payments", "cashless", "receipts"] {
            self.runner.caught_up(name, CATCH_UP).await.unwrap();
        }
    }

    async fn treasury(&self) -> TreasuryReport {
        self.caught_up().await;
        TreasuryReports::new(self.runner.documents().clone()).report(&agency(), day(1), day(31), day(31)).await.unwrap()
    }
}

/// A command answers with the case as stored — the events with their positions, transaction
/// and hashes, the state and the version — without reading it again; a read afterwards finds
/// exactly that.
#[tokio::test]
async fn a_commands_answer_is_the_case_exactly_as_a_read_finds_it() {
    for world in given_an_agency().await {
        let backend = world.backend();
        let assessed = world.assess(1, 5).await;
        let (_, part) = world.pay(&assessed.code, 10_000, PaymentChannel::Cash, 5).await;
        let (_, rest) = world.pay(&assessed.code, 17_000, PaymentChannel::Vietqr, 6).await;
        assert_eq!(rest.state.status, CaseStatus::Paid, "[{backend}]");
        for (answer, versions) in [(assessed, 1), (part, 3), (rest, 5)] {
            let read = world.ledger.load_case_at_version(&answer.code, answer.version).await.unwrap();
            assert_eq!(answer.events.len(), versions, "[{backend}] {:?}", answer.events);
            assert_eq!(answer.events, read.events, "[{backend}] the events, as stored");
            assert_eq!((answer.version, &answer.state), (read.version, &read.state), "[{backend}]");
        }
    }
}

fn row<'a>(report: &'a TreasuryReport, fee: &str) -> &'a feeledger_domain::treasury::TreasuryRow {
    report.rows.iter().find(|r| r.fee_code.as_str() == fee).unwrap_or_else(|| panic!("no row {fee}: {report:?}"))
}

#[tokio::test]
async fn treasury_splits_each_payment_by_the_rule_in_force_and_a_partial_payment_goes_to_the_le_phi_first() {
    for world in given_an_agency().await {
        let backend = world.backend();
        // Given one case paid in full and one paid 10,000 đ of its 27,000 đ.
        let full = world.assessed(1, 5).await;
        world.paid(&full, 27_000, PaymentChannel::Vietqr, 5).await;
        let partial = world.assessed(2, 6).await;
        world.paid(&partial, 10_000, PaymentChannel::Cash, 6).await;

        // Then: the phí keeps 90% at the agency, the lệ phí goes wholly to the budget, and the
        // partial payment paid the lệ phí (lệ phí first, ADR 0004).
        let report = world.treasury().await;
        let phi = row(&report, "P-SAOY");
        assert_eq!(
            (phi.collected, phi.retained, phi.payable_to_budget),
            (vnd(2_000), vnd(1_800), vnd(200)),
            "[{backend}]"
        );
        let le_phi = row(&report, "LP-HOTICH");
        assert_eq!(
            (le_phi.collected, le_phi.retained, le_phi.payable_to_budget),
            (vnd(35_000), vnd(0), vnd(35_000)),
            "[{backend}]"
        );
        assert_eq!(report.total.collected, vnd(37_000), "[{backend}]");
        assert_eq!((report.total.remitted, report.total.outstanding), (vnd(0), vnd(35_200)), "[{backend}]");
        assert!(report.invariants_hold(), "[{backend}] {report:?}");
    }
}

#[tokio::test]
async fn a_remittance_moves_what_was_payable_to_remitted_and_nothing_is_owed_twice() {
    for world in given_an_agency().await {
        let backend = world.backend();
        let first = world.assessed(1, 5).await;
        world.paid(&first, 27_000, PaymentChannel::Vietqr, 5).await;
        let second = world.assessed(2, 8).await;
        world.paid(&second, 27_000, PaymentChannel::Pos, 8).await;
        world.caught_up().await;

        // When finance deposits what was collected up to the 6th.
        let reports = TreasuryReports::new(world.runner.documents().clone());
        let candidates = reports.unremitted_cases(&agency(), day(6)).await.unwrap();
        assert_eq!(candidates, vec![first.clone()], "[{backend}]");
        let request = RemitRequest {
            agency: agency(),
            up_to: day(6),
            voucher_number: "GNT-01".into(),
            amount: vnd(25_200),
            remitted_on: day(7),
        };
        let remittance = world.ledger.remit(&request, &candidates, &world.metadata, at(7)).await.unwrap();
        assert_eq!((remittance.amount, remittance.cases), (vnd(25_200), 1), "[{backend}]");

        // Then the first case's money is remitted, the second's still owed.
        let report = world.treasury().await;
        assert_eq!((report.total.remitted, report.total.outstanding), (vnd(25_200), vnd(25_200)), "[{backend}]");
        assert_eq!(report.remittances.len(), 1, "[{backend}]");
        assert_eq!(reports.unremitted_cases(&agency(), day(31)).await.unwrap(), vec![second], "[{backend}]");
    }
}

#[tokio::test]
async fn payments_are_listed_per_day_and_cashless_counts_each_case_paid_in_full_once() {
    for world in given_an_agency().await {
        let backend = world.backend();
        let transfer = world.assessed(1, 5).await;
        let transfer_payment = world.paid(&transfer, 27_000, PaymentChannel::Vietqr, 5).await;
        let cash = world.assessed(2, 5).await;
        world.paid(&cash, 7_000, PaymentChannel::Cash, 5).await;
        world.paid(&cash, 20_000, PaymentChannel::Vietqr, 6).await;
        let unpaid = world.assessed(3, 5).await;
        world.paid(&unpaid, 1_000, PaymentChannel::Vietqr, 6).await;
        world.caught_up().await;

        let docs = world.runner.documents();
        let on_the_5th = payments_between(docs, &agency(), day(5), day(5)).await.unwrap();
        assert_eq!(on_the_5th.len(), 2, "[{backend}] {on_the_5th:?}");
        let by_transfer = on_the_5th.iter().find(|p| p.payment_id == transfer_payment).unwrap();
        assert_eq!((by_transfer.amount, by_transfer.channel), (vnd(27_000), PaymentChannel::Vietqr), "[{backend}]");
        assert_eq!(by_transfer.reconciled_line_id, None, "[{backend}]");
        assert_eq!(payments_between(docs, &agency(), day(6), day(6)).await.unwrap().len(), 2, "[{backend}]");

        // Two cases paid in full (the third is not); one of them partly in cash.
        let counts = cashless::month(docs, &agency(), "2026-10").await.unwrap();
        assert_eq!(counts, MonthCounts { cases: 2, cashless: 1, online: 1 }, "[{backend}]");
        assert_eq!(MonthCounts::percent(counts.cashless, counts.cases), rust_decimal::Decimal::from(50), "[{backend}]");
        assert_eq!(world.ledger.load_case(&unpaid).await.unwrap().state.status, CaseStatus::PartiallyPaid);
    }
}

/// A payment reconciled with a statement line shows that line among the day's payments, live
/// and after a rebuild; the other payments of the day show none.
#[tokio::test]
async fn a_reconciled_payment_shows_its_statement_line_live_and_after_a_rebuild() {
    for world in given_an_agency().await {
        let backend = world.backend();
        let mut paid = Vec::new();
        for n in 1..=3 {
            let code = world.assessed(n, 5).await;
            paid.push((code.clone(), world.paid(&code, 27_000, PaymentChannel::Vietqr, 5).await));
        }
        let (code, payment_id) = paid[1].clone();
        let pairing =
            Pairing { payment_id, case_code: code, statement_line_id: "SK-0507".into(), statement_date: day(6) };
        assert_eq!(world.ledger.record_reconciliation(&[pairing], &world.metadata, at(6)).await.unwrap(), 1);
        world.caught_up().await;
        let lines = |payments: Vec<LedgerPayment>| {
            let mut lines: Vec<_> = payments.into_iter().map(|p| (p.payment_id, p.reconciled_line_id)).collect();
            lines.sort();
            lines
        };
        let mut expected: Vec<_> =
            paid.iter().map(|(_, id)| (*id, (*id == payment_id).then(|| "SK-0507".to_owned()))).collect();
        expected.sort();
        let live = payments_between(world.runner.documents(), &agency(), day(5), day(5)).await.unwrap();
        assert_eq!(lines(live), expected, "[{backend}] live");

        let rebuilder = Runner::new(world.ledger.store().clone(), Duration::from_millis(20)).with_rebuild_batch(2);
        rebuilder.rebuild_here("payments").await.unwrap();
        let rebuilt = payments_between(world.runner.documents(), &agency(), day(5), day(5)).await.unwrap();
        assert_eq!(lines(rebuilt), expected, "[{backend}] rebuilt");
        let next_day = payments_between(world.runner.documents(), &agency(), day(6), day(6)).await.unwrap();
        assert!(next_day.is_empty(), "[{backend}] a payment is listed on the day it was received: {next_day:?}");
    }
}

#[tokio::test]
async fn the_receipt_register_counts_numbers_issued_and_cancelled_per_series() {
    for world in given_an_agency().await {
        let backend = world.backend();
        let mut issued = Vec::new();
        for n in 1..=3 {
            let code = world.assessed(n, 5).await;
            world.paid(&code, 27_000, PaymentChannel::Vietqr, 5).await;
            let record = world.ledger.issue_receipt(&code, &world.metadata, at(5)).await.unwrap();
            issued.push((code, record.state.receipts.last().unwrap().receipt_id));
        }
        let (code, receipt_id) = &issued[1];
        let cancel = Command::CancelReceipt(feeledger_domain::case_fees::CancelReceipt {
            receipt_id: *receipt_id,
            reason: "sai tên người nộp".into(),
            now: at(5),
        });
        world.ledger.execute(code, cancel, &world.metadata, None).await.unwrap();
        world.caught_up().await;

        let usage = receipts::usage(world.runner.documents(), &agency(), day(1), day(31)).await.unwrap();
        assert_eq!(usage.len(), 1, "[{backend}] one template and serial: {usage:?}");
        let series = &usage[0];
        assert_eq!((series.first_number, series.last_number), (1, 3), "[{backend}]");
        assert_eq!((series.used, series.cancelled), (3, 1), "[{backend}]");
        assert_eq!(series.total, vnd(54_000), "[{backend}] the receipts in force");
    }
}

#[tokio::test]
async fn a_rebuild_in_many_small_batches_each_read_ahead_gives_the_same_documents() {
    for world in given_an_agency().await {
        let backend = world.backend();
        // Twelve cases paid over six days, some in two parts.
        for n in 1..=12 {
            let d = 1 + n % 6;
            let code = world.assessed(n, d).await;
            if n % 3 == 0 {
                world.paid(&code, 2_000, PaymentChannel::Cash, d).await;
                world.paid(&code, 25_000, PaymentChannel::Vietqr, d + 1).await;
            } else {
                world.paid(&code, 27_000, PaymentChannel::Vietqr, d).await;
            }
        }
        let live = world.treasury().await;
        let live_payments = payments_between(world.runner.documents(), &agency(), day(1), day(31)).await.unwrap();
        assert_eq!(live.total.collected, vnd(12 * 27_000), "[{backend}]");
        assert_eq!(live_payments.len(), 16, "[{backend}]");

        // A rebuild two events at a time: every batch but the last is full, so each one reads
        // the next ahead while it is applied, and commits while the next is applied.
        let rebuilder = Runner::new(world.ledger.store().clone(), Duration::from_millis(20)).with_rebuild_batch(2);
        for name in ["treasury", "payments"] {
            let generation = rebuilder.rebuild_here(name).await.unwrap();
            assert!(generation >= 2, "[{backend}] {name} was rebuilt into a new generation");
        }
        let rebuilt = world.treasury().await;
        assert_eq!(rebuilt.rows, live.rows, "[{backend}] the treasury, rebuilt, is the treasury followed live");
        assert_eq!(rebuilt.total, live.total, "[{backend}]");
        let rebuilt_payments = payments_between(world.runner.documents(), &agency(), day(1), day(31)).await.unwrap();
        assert_eq!(rebuilt_payments, live_payments, "[{backend}]");

        // Two runners building the same generation at once (two nodes, or the CLI beside a
        // server), in batches of 2 and 3 with commits in flight: each batch is committed by
        // one of them, once, and what the other applied of it is dropped.
        let other = Runner::new(world.ledger.store().clone(), Duration::from_millis(20)).with_rebuild_batch(3);
        build_at_once(&world, &rebuilder, &other, &TreasuryProjection).await;
        build_at_once(&world, &rebuilder, &other, &PaymentsProjection).await;
        let together = world.treasury().await;
        assert_eq!((together.rows, together.total), (live.rows, live.total), "[{backend}] built by two at once");
        let together_payments = payments_between(world.runner.documents(), &agency(), day(1), day(31)).await.unwrap();
        assert_eq!(together_payments, live_payments, "[{backend}]");
    }
}

/// A switch leaves the replaced generation's documents to a drop after it, a chunk per
/// transaction (the CLI runs it once it reported the rebuild; a server's runner in the
/// background), and a runner starting finds what a stopped process left of one and drops it;
/// the active generation is untouched.
#[tokio::test]
async fn a_replaced_generation_is_dropped_in_chunks_and_its_leftovers_when_a_runner_starts() {
    for world in given_an_agency().await {
        let backend = world.backend();
        for n in 1..=4 {
            let code = world.assessed(n, 2).await;
            world.paid(&code, 27_000, PaymentChannel::Vietqr, 2).await;
        }
        world.caught_up().await;
        let live_payments = payments_between(world.runner.documents(), &agency(), day(1), day(31)).await.unwrap();
        assert_eq!(live_payments.len(), 4, "[{backend}]");
        let documents = world.runner.documents();
        let old = documents.state("payments").await.unwrap().unwrap().active;
        let keys: Vec<String> =
            documents.range("payments", "", "~").await.unwrap().into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys.len(), 4, "[{backend}] {keys:?}");

        let rebuilder = Runner::new(world.ledger.store().clone(), Duration::from_millis(20));
        let new = rebuilder.rebuild_here("payments").await.unwrap();
        assert!(new > old, "[{backend}]");
        assert_eq!(documents.state("payments").await.unwrap().unwrap().active, new, "[{backend}]");
        // The CLI's drop, after the switch (the world's own runner, which follows payments as a
        // server's does, may have built and switched the same generation and dropped it first).
        documents.drop_replaced_generations("payments").await.unwrap();
        assert!(
            documents.load("payments", old, &keys).await.unwrap().is_empty(),
            "[{backend}] dropped after the switch"
        );
        assert_eq!(
            documents.load("payments", new, &keys).await.unwrap().len(),
            4,
            "[{backend}] the new one holds them"
        );

        // What a process stopped half-way through the drop leaves: 25 documents of the old one.
        let pool_url = &world.database.url;
        let orphans: Vec<String> = (0..25).map(|n| format!("pay/{AGENCY}/2026-10-02/orphan-{n:02}")).collect();
        insert_documents(pool_url, "payments", old, &orphans).await;
        assert_eq!(documents.load("payments", old, &orphans).await.unwrap().len(), 25, "[{backend}]");
        assert_eq!(
            documents.drop_replaced_generations_by("payments", 10).await.unwrap(),
            25,
            "[{backend}] 10 + 10 + 5"
        );
        assert!(documents.load("payments", old, &orphans).await.unwrap().is_empty(), "[{backend}]");
        assert_eq!(documents.drop_replaced_generations("payments").await.unwrap(), 0, "[{backend}] nothing left");

        // And a runner starting drops them by itself (it stops at once: the generation it is
        // asked to wait for is already the active one).
        insert_documents(pool_url, "payments", old, &orphans).await;
        let starting = Runner::new(world.ledger.store().clone(), Duration::from_millis(20));
        starting.follow(&PaymentsProjection, Some(new)).await.unwrap();
        assert!(documents.load("payments", old, &orphans).await.unwrap().is_empty(), "[{backend}] dropped on start");
        let rebuilt = payments_between(documents, &agency(), day(1), day(31)).await.unwrap();
        assert_eq!(rebuilt, live_payments, "[{backend}] the active generation is untouched");

        // A server's runner that switches drops the replaced generation by itself, in the
        // background, and goes on following the log.
        let (_, next) = world.runner.request_rebuild("payments").await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while documents.state("payments").await.unwrap().unwrap().active != next
            || !documents.load("payments", new, &keys).await.unwrap().is_empty()
        {
            assert!(tokio::time::Instant::now() < deadline, "[{backend}] not switched to {next} and {new} dropped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let code = world.assessed(5, 3).await;
        world.paid(&code, 27_000, PaymentChannel::Vietqr, 3).await;
        world.caught_up().await;
        let after = payments_between(documents, &agency(), day(1), day(31)).await.unwrap();
        assert_eq!(after.len(), 5, "[{backend}] a payment after the switch is in the new generation");
    }
}

/// Writes documents straight into a generation, as nothing in feeledger does.
async fn insert_documents(url: &str, projection: &str, generation: i32, keys: &[String]) {
    const SQL: &str = "INSERT INTO read_model_documents (projection, generation, key, doc) VALUES ($1, $2, $3, '{}')";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        for key in keys {
            sqlx::query(SQL).bind(projection).bind(generation).bind(key).execute(&pool).await.unwrap();
        }
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        for key in keys {
            sqlx::query(SQL).bind(projection).bind(generation).bind(key).execute(&pool).await.unwrap();
        }
    }
}

/// Starts a rebuild of `projection` and has `one` and `other` (and the world's own runner) build
/// that generation at once; then every event of its types was applied once.
async fn build_at_once<P: Projection>(world: &World, one: &Runner, other: &Runner, projection: &P) {
    let backend = world.backend();
    let (_, generation) = one.request_rebuild(P::NAME).await.unwrap();
    let (first, second) =
        tokio::join!(one.follow(projection, Some(generation)), other.follow(projection, Some(generation)));
    first.unwrap();
    second.unwrap();
    let built = world.runner.documents().checkpoint(P::NAME, generation).await.unwrap().unwrap();
    let of_its_types = world.ledger.store().count_of_types(P::EVENT_TYPES).await.unwrap();
    assert_eq!(built.events_seen, of_its_types, "[{backend}] {}: every event applied once", P::NAME);
}

/// A busy day: more payments than one sources document holds (256), for two fees. The
/// declaration (01/PHLP) still lists every payment event behind each row, once and in log
/// order, and a rebuild lists the same.
#[tokio::test]
async fn a_busy_days_declaration_lists_every_payment_behind_each_row_once_and_in_order() {
    const CASES: u32 = 300;
    for world in given_an_agency().await {
        let backend = world.backend();
        for n in 1..=CASES {
            let code = world.assessed(n, 5).await;
            world.paid(&code, 27_000, PaymentChannel::Vietqr, 5).await;
        }
        world.caught_up().await;
        let reports = TreasuryReports::new(world.runner.documents().clone());
        let period = feeledger_domain::declaration::DeclarationPeriod::Month { year: 2026, month: 10 };
        let declared = reports.declaration(&agency(), period).await.unwrap();
        assert_eq!(declared.rows.len(), 2, "[{backend}] {declared:?}");
        for row in &declared.rows {
            let positions: Vec<i64> = row.sources.iter().map(|s| s.position).collect();
            assert_eq!(positions.len(), CASES as usize, "[{backend}] {}", row.fee_code);
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "[{backend}] {} in log order, once each", row.fee_code);
            assert_eq!(row.case_codes().len(), CASES as usize, "[{backend}]");
        }
        let rebuilder = Runner::new(world.ledger.store().clone(), Duration::from_millis(20)).with_rebuild_batch(50);
        rebuilder.rebuild_here("treasury").await.unwrap();
        world.caught_up().await;
        assert_eq!(reports.declaration(&agency(), period).await.unwrap(), declared, "[{backend}] rebuilt");
    }
}
