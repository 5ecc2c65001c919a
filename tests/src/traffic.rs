//! A generated month of counter traffic, for tests and benchmarks: agencies with their accounts
//! and fee schedules, cases assessed every day and paid by bank transfer (VietQR), e-wallet,
//! card or cash, in full or in two parts, sometimes overpaid, sometimes not at all; and the bank
//! statement of each account, with a few lines missing, extra, altered or repeated, as real
//! statements have.
//!
//! Everything goes through the ledger's commands (the domain decides), with simulated times.
//! The generator is deterministic for a seed.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use feeledger_domain::agency::{AgencyConfigured, TreasuryIdentity};
use feeledger_domain::budget::{BudgetChapter, BudgetSubItem, TaxCode, TreasuryCode};
use feeledger_domain::case_fees::{AssessFees, Command, FeeLineRequest, PaymentChannel, RecordPayment};
use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CaseCode, CounterId, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeRule, PublishFeeSchedule};
use feeledger_domain::money::{Percent, Vnd};
use feeledger_domain::payer::Payer;
use feeledger_domain::treasury::DepositSchedule;
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::ledger::{Ledger, LedgerError};
use feeledger_infrastructure::storage::EventMetadata;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub agencies: Vec<String>,
    /// The first day of the month (Vietnam calendar).
    pub month: NaiveDate,
    pub days: u32,
    pub cases_per_day: u32,
    pub seed: u64,
}

impl Plan {
    pub fn small() -> Plan {
        Plan {
            agencies: vec!["T01.1".into(), "T02.1".into()],
            month: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default(),
            days: 30,
            cases_per_day: 3,
            seed: 7,
        }
    }
}

/// One line of a generated statement (CSV layout of docs/STATEMENTS.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedLine {
    pub line_id: String,
    pub booked_on: NaiveDate,
    pub amount: i64,
    pub description: String,
    pub bank_reference: Option<String>,
}

/// What was generated, for the tests' own bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub cases: Vec<CaseCode>,
    pub paid_in_full: Vec<CaseCode>,
    /// Per agency: the account and its statement lines.
    pub statements: Vec<(AgencyCode, String, Vec<GeneratedLine>)>,
    /// Σ of money received that pays fees (overpayments excluded), per agency.
    pub collected: Vec<(AgencyCode, i64)>,
    /// Σ of payments that credit the account (bank transfers, e-wallet), per agency.
    pub online_received: Vec<(AgencyCode, i64)>,
    /// Fully paid cases per agency: (cases, without cash, online only).
    pub cashless: Vec<(AgencyCode, u32, u32, u32)>,
    pub payments: u32,
    /// What was done to each statement: dropped, extra, altered, repeated lines.
    pub tampering: Vec<(AgencyCode, &'static str, String)>,
    /// Cases paid twice over: (agency, case, đồng received beyond the fees, the day).
    pub overpaid: Vec<(AgencyCode, CaseCode, i64, NaiveDate)>,
}

/// A small, fast, deterministic random source (xorshift), so runs are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

pub const FEES: [(&str, &str, FeeKind, i64, &str); 4] = [
    ("P-SAOY", "Phí chứng thực bản sao", FeeKind::Phi, 2_000, "90"),
    ("P-CHUKY", "Phí chứng thực chữ ký", FeeKind::Phi, 10_000, "50"),
    ("LP-TRICHLUC", "Lệ phí cấp bản sao trích lục", FeeKind::LePhi, 8_000, "0"),
    ("LP-HOTICH", "Lệ phí đăng ký hộ tịch", FeeKind::LePhi, 25_000, "0"),
];

/// Sets up an agency and its schedule (effective from the first day of 2026).
pub async fn configure(
    ledger: &Ledger,
    agency: &AgencyCode,
    account: &str,
    metadata: &EventMetadata,
) -> Result<(), LedgerError> {
    let code_err = |e: feeledger_domain::codes::CodeError| LedgerError::Invalid(e.to_string());
    let at: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default();
    ledger
        .configure_agency(
            AgencyConfigured {
                agency_code: agency.clone(),
                name: format!("UBND {agency}"),
                bank_account: BankAccount {
                    bin: BankBin::parse("970415").map_err(code_err)?,
                    number: AccountNumber::parse(account).map_err(code_err)?,
                    name: "UBND".into(),
                },
                retains_fees: true,
                counters: vec![CounterId::parse("quay-1").map_err(code_err)?],
                receipt_template_symbol: None,
                receipt_serial: None,
                public_payment: false,
                receipt_per_payment: false,
                receipt_number_width: None,
                treasury: TreasuryIdentity {
                    tax_code: Some(TaxCode::parse("0108888888").map_err(code_err)?),
                    budget_chapter: Some(BudgetChapter::parse("800").map_err(code_err)?),
                    treasury_code: Some(TreasuryCode::parse("0011").map_err(code_err)?),
                    ..TreasuryIdentity::default()
                },
                placement: feeledger_domain::oversight::Placement::default(),
                configured_at: at,
            },
            metadata,
        )
        .await?;
    let fees = FEES
        .iter()
        .map(|(code, name, kind, amount, retention)| {
            Ok(FeeRule {
                fee_code: FeeCode::parse(code).map_err(code_err)?,
                name: (*name).to_owned(),
                kind: *kind,
                unit_amount: Vnd::new(*amount).map_err(|e| LedgerError::Invalid(e.to_string()))?,
                retention_percent: Percent::parse(retention).map_err(|e| LedgerError::Invalid(e.to_string()))?,
                budget_sub_item: Some(
                    BudgetSubItem::parse(if *kind == FeeKind::Phi { "2716" } else { "2771" }).map_err(code_err)?,
                ),
                deposit_schedule: Some(if *kind == FeeKind::Phi {
                    DepositSchedule::Weekly { weekday: chrono::Weekday::Mon }
                } else {
                    DepositSchedule::Daily
                }),
            })
        })
        .collect::<Result<Vec<_>, LedgerError>>()?;
    let effective_from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    ledger
        .publish_fee_schedule(
            PublishFeeSchedule { agency_code: agency.clone(), effective_from, fees, published_at: at },
            metadata,
        )
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Transfer,
    TwoTransfers,
    Cash,
    Card,
    Wallet,
    Overpaid,
    Unpaid,
}

/// Generates the month. Returns what the tests need to check the reports against.
pub async fn generate(ledger: &Ledger, plan: &Plan) -> Result<Generated, LedgerError> {
    let mut rng = Rng::new(plan.seed);
    let mut generated = Generated::default();
    let metadata = EventMetadata { actor: Some("generator".into()), ..EventMetadata::default() };
    for (index, agency_text) in plan.agencies.iter().enumerate() {
        let agency = AgencyCode::parse(agency_text).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        let account = format!("11336666{:04}", index + 1);
        configure(ledger, &agency, &account, &metadata).await?;
        let mut lines: Vec<GeneratedLine> = Vec::new();
        let mut collected = 0i64;
        let mut online_received = 0i64;
        let mut transfer_seq = 0usize;
        let (mut full, mut cashless, mut online) = (0u32, 0u32, 0u32);
        for day in 0..plan.days {
            let date = plan.month + Duration::days(i64::from(day));
            for n in 0..plan.cases_per_day {
                let code = CaseCode::parse(&format!("{agency}-{}-{:04}", date.format("%y%m%d"), n + 1))
                    .map_err(|e| LedgerError::Invalid(e.to_string()))?;
                // Office hours in Hà Nội, and now and then a late-evening online payment.
                let opened = vietnam_time::start_of(date)
                    + Duration::hours(8)
                    + Duration::minutes(i64::try_from(rng.below(480)).unwrap_or(0));
                let lines_wanted: Vec<FeeLineRequest> = {
                    let first = usize::try_from(rng.below(4)).unwrap_or(0);
                    let mut wanted = vec![first];
                    if rng.below(3) == 0 {
                        wanted.push((first + 2) % 4);
                    }
                    wanted
                        .into_iter()
                        .map(|i| FeeLineRequest {
                            fee_code: FeeCode::parse(FEES[i].0).unwrap_or_else(|_| unreachable!()),
                            quantity: 1 + u32::try_from(rng.below(3)).unwrap_or(0),
                        })
                        .collect()
                };
                let schedule = ledger.schedule_in_force(&agency, opened).await?;
                let record = ledger
                    .execute(
                        &code,
                        Command::AssessFees(AssessFees {
                            case_code: code.clone(),
                            agency_code: agency.clone(),
                            procedure_name: "Chứng thực".into(),
                            payer: Payer::new("Nguyễn Văn An", Some("079201008870"))
                                .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                            lines: lines_wanted,
                            schedule,
                            counter_id: None,
                            now: opened,
                            procedure_code: None,
                        }),
                        &metadata,
                        None,
                    )
                    .await?;
                generated.cases.push(code.clone());
                let total = record.state.total().dong();
                let scenario = match rng.below(20) {
                    0..=8 => Scenario::Transfer,
                    9..=10 => Scenario::TwoTransfers,
                    11..=12 => Scenario::Cash,
                    13..=14 => Scenario::Card,
                    15 => Scenario::Wallet,
                    16 => Scenario::Overpaid,
                    _ => Scenario::Unpaid,
                };
                let pay = |amount: i64, channel: PaymentChannel, minutes_later: i64| {
                    (amount, channel, opened + Duration::minutes(minutes_later))
                };
                let payments: Vec<(i64, PaymentChannel, DateTime<Utc>)> = match scenario {
                    Scenario::Transfer => {
                        // One in ten transfers is made at home late in the evening.
                        let late = if rng.below(10) == 0 { 14 * 60 - 15 } else { 3 };
                        vec![pay(total, PaymentChannel::Vietqr, late)]
                    }
                    Scenario::TwoTransfers => {
                        let first = (total / 2 / 1000).max(1) * 1000;
                        vec![pay(first, PaymentChannel::Vietqr, 2), pay(total - first, PaymentChannel::Vietqr, 30)]
                    }
                    Scenario::Cash => vec![pay(total, PaymentChannel::Cash, 1)],
                    Scenario::Card => vec![pay(total, PaymentChannel::Pos, 1)],
                    Scenario::Wallet => vec![pay(total, PaymentChannel::Ewallet, 4)],
                    Scenario::Overpaid => {
                        vec![pay(total, PaymentChannel::Vietqr, 2), pay(total, PaymentChannel::Vietqr, 9)]
                    }
                    Scenario::Unpaid => Vec::new(),
                };
                for (k, (amount, channel, at)) in payments.iter().enumerate() {
                    transfer_seq += 1;
                    let bank_reference = format!("FT{}{:06}", date.format("%m%d"), transfer_seq + index * 100_000);
                    let key = format!("gen-{code}-{k}");
                    ledger
                        .execute(
                            &code,
                            Command::RecordPayment(RecordPayment {
                                payment_id: uuid::Uuid::now_v7(),
                                idempotency_key: key,
                                amount: Vnd::new(*amount).map_err(|e| LedgerError::Invalid(e.to_string()))?,
                                channel: *channel,
                                reference: code.to_string(),
                                provider: channel.is_online().then(|| "sepay".to_owned()),
                                bank_reference: channel.is_online().then(|| bank_reference.clone()),
                                qr_id: None,
                                payer_account: None,
                                received_at: *at,
                            }),
                            &metadata,
                            None,
                        )
                        .await?;
                    generated.payments += 1;
                    if channel.is_online() {
                        online_received += amount;
                        // Booked by the bank on the Vietnamese day; late-evening transfers the next morning.
                        let local_hour = at.with_timezone(&vietnam_time::offset()).format("%H").to_string();
                        let booked_on = if local_hour.parse::<u32>().unwrap_or(0) >= 21 {
                            vietnam_time::date_of(*at) + Duration::days(1)
                        } else {
                            vietnam_time::date_of(*at)
                        };
                        let description = match rng.below(3) {
                            0 => format!("MBVCB.{}.{code}.CT tu 0123456789", rng.below(1_000_000_000)),
                            1 => format!("Thanh toan le phi ho so {}", code.as_str().replace('.', " ")),
                            _ => format!("IBFT {}", code.as_str().to_lowercase()),
                        };
                        lines.push(GeneratedLine {
                            line_id: bank_reference.clone(),
                            booked_on,
                            amount: *amount,
                            description,
                            bank_reference: Some(bank_reference),
                        });
                    }
                }
                let paid: i64 = payments.iter().map(|p| p.0).sum();
                collected += paid.min(total);
                if paid > total {
                    generated.overpaid.push((agency.clone(), code.clone(), paid - total, date));
                }
                if paid >= total && total > 0 {
                    generated.paid_in_full.push(code.clone());
                    full += 1;
                    if payments.iter().all(|p| p.1.is_cashless()) {
                        cashless += 1;
                    }
                    if payments.iter().all(|p| p.1.is_online()) {
                        online += 1;
                    }
                }
            }
        }
        // What real statements do: a line missing, credits the ledger does not know, an altered
        // amount, a repeated line.
        let mut tamper = |kind: &'static str, detail: String| generated.tampering.push((agency.clone(), kind, detail));
        if lines.len() > 10 {
            let dropped =
                lines.remove(usize::try_from(rng.below(u64::try_from(lines.len()).unwrap_or(1))).unwrap_or(0));
            tamper("dropped", dropped.line_id);
            let altered = usize::try_from(rng.below(u64::try_from(lines.len()).unwrap_or(1))).unwrap_or(0);
            lines[altered].amount += 1_000;
            tamper("altered", lines[altered].line_id.clone());
            let mut repeated = lines[(altered + 1) % lines.len()].clone();
            repeated.line_id = format!("{}-R", repeated.line_id);
            tamper("repeated", repeated.line_id.clone());
            lines.push(repeated);
        }
        for k in 0..2 {
            let booked_on = plan.month + Duration::days(i64::try_from(rng.below(u64::from(plan.days))).unwrap_or(0));
            let line_id = format!("EXTRA-{agency}-{k}");
            tamper("extra", line_id.clone());
            lines.push(GeneratedLine {
                line_id: line_id.clone(),
                booked_on,
                amount: 77_000,
                description: "nop tien nham".into(),
                bank_reference: Some(line_id),
            });
        }
        generated.statements.push((agency.clone(), account, lines));
        generated.collected.push((agency.clone(), collected));
        generated.online_received.push((agency.clone(), online_received));
        generated.cashless.push((agency, full, cashless, online));
    }
    Ok(generated)
}

/// A statement in the CSV layout of docs/STATEMENTS.md.
pub fn statement_csv(account: &str, lines: &[GeneratedLine]) -> String {
    let mut csv = String::from("account_number,booked_on,amount,direction,description,bank_reference,transaction_id\n");
    for line in lines {
        let description = line.description.replace('"', "");
        let reference = line.bank_reference.clone().unwrap_or_default();
        csv.push_str(&format!(
            "{account},{},{},credit,\"{description}\",{reference},{}\n",
            line.booked_on, line.amount, line.line_id
        ));
    }
    csv
}
