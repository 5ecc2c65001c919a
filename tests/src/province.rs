//! A generated province for the oversight tests: a root (the province), departments, districts
//! and their communes, placed in the hierarchy through the ledger's commands, and a few months
//! of cases paid in full by a mix of channels (some partly in cash, some never paid). The
//! generator keeps its own count of what it paid, per agency and month, so that a test can
//! hold the league table against the underlying cases. Deterministic for a seed; a few hundred
//! cases, generated in seconds.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use feeledger_domain::agency::{AgencyConfigured, TreasuryIdentity};
use feeledger_domain::case_fees::{AssessFees, Command, FeeLineRequest, PaymentChannel, RecordPayment};
use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CaseCode, CounterId, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeRule, PublishFeeSchedule};
use feeledger_domain::money::{Percent, Vnd};
use feeledger_domain::oversight::{AgencyLevel, Counts, Placement};
use feeledger_domain::payer::Payer;
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::ledger::{Ledger, LedgerError};
use feeledger_infrastructure::storage::EventMetadata;

use crate::traffic::Rng;

/// The province: `P01` (root), departments `P01.S01`…, districts `P01.H01`…, each with
/// communes `P01.H01.X01`….
#[derive(Debug, Clone)]
pub struct ProvincePlan {
    pub departments: u32,
    pub districts: u32,
    pub communes_per_district: u32,
    /// The first day of each month of traffic.
    pub months: Vec<NaiveDate>,
    /// Cases assessed per agency and month (each paid or not at random), at most.
    pub max_cases: u32,
    pub seed: u64,
}

impl ProvincePlan {
    /// 1 + 6 + 5 + 5 × 9 = 57 agencies on four levels, three months (Aug–Oct 2026) and one case
    /// or so per agency in October 2025 (for the year-on-year change).
    pub fn standard() -> ProvincePlan {
        ProvincePlan {
            departments: 6,
            districts: 5,
            communes_per_district: 9,
            months: ["2025-10-01", "2026-08-01", "2026-09-01", "2026-10-01"]
                .iter()
                .map(|d| d.parse().unwrap_or_default())
                .collect(),
            max_cases: 6,
            seed: 16,
        }
    }
}

pub const ROOT: &str = "P01";

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Province {
    /// Every agency with its level and parent (as first placed).
    pub agencies: Vec<(AgencyCode, AgencyLevel, Option<AgencyCode>)>,
    /// Per (agency, `YYYY-MM`): cases paid in full, without cash, online only.
    pub counts: BTreeMap<(String, String), Counts>,
    pub cases: u32,
    /// Every case paid in full.
    pub paid_cases: Vec<CaseCode>,
}

impl Province {
    pub fn counts_of(&self, agency: &str, month: &str) -> Counts {
        self.counts.get(&(agency.to_owned(), month.to_owned())).copied().unwrap_or_default()
    }
}

fn invalid(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Invalid(e.to_string())
}

/// Configures one agency with a one-fee schedule (from 2025-01-01) at its place.
pub async fn configure_placed(
    ledger: &Ledger,
    code: &AgencyCode,
    name: String,
    level: AgencyLevel,
    parent: Option<AgencyCode>,
    account: &str,
    metadata: &EventMetadata,
) -> Result<(), LedgerError> {
    let at: DateTime<Utc> = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
    ledger
        .configure_agency(
            AgencyConfigured {
                agency_code: code.clone(),
                name,
                bank_account: BankAccount {
                    bin: BankBin::parse("970436").map_err(invalid)?,
                    number: AccountNumber::parse(account).map_err(invalid)?,
                    name: "BO PHAN MOT CUA".into(),
                },
                retains_fees: true,
                counters: vec![CounterId::parse("quay-1").map_err(invalid)?],
                receipt_template_symbol: None,
                receipt_serial: None,
                treasury: TreasuryIdentity::default(),
                placement: Placement { level: Some(level), parent_code: parent, placed_from: None },
                receipt_per_payment: false,
                receipt_number_width: None,
                public_payment: false,
                configured_at: at,
            },
            metadata,
        )
        .await?;
    let fees = vec![
        FeeRule {
            fee_code: FeeCode::parse("P-SAOY").map_err(invalid)?,
            name: "Phí chứng thực bản sao".into(),
            kind: FeeKind::Phi,
            unit_amount: Vnd::new(2_000).map_err(invalid)?,
            retention_percent: Percent::parse("50").map_err(invalid)?,
            budget_sub_item: None,
            deposit_schedule: None,
        },
        FeeRule {
            fee_code: FeeCode::parse("LP-HOTICH").map_err(invalid)?,
            name: "Lệ phí đăng ký hộ tịch".into(),
            kind: FeeKind::LePhi,
            unit_amount: Vnd::new(25_000).map_err(invalid)?,
            retention_percent: Percent::ZERO,
            budget_sub_item: None,
            deposit_schedule: None,
        },
    ];
    if ledger.fee_schedule(code).await?.versions().is_empty() {
        let effective_from = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
        ledger
            .publish_fee_schedule(
                PublishFeeSchedule { agency_code: code.clone(), effective_from, fees, published_at: at },
                metadata,
            )
            .await?;
    }
    Ok(())
}

/// Builds the province and its traffic.
pub async fn generate(ledger: &Ledger, plan: &ProvincePlan) -> Result<Province, LedgerError> {
    let metadata = EventMetadata { actor: Some("province-generator".into()), ..EventMetadata::default() };
    let mut province = Province::default();
    let code = |text: String| AgencyCode::parse(&text).map_err(invalid);
    let root = code(ROOT.into())?;
    province.agencies.push((root.clone(), AgencyLevel::Province, None));
    for d in 1..=plan.departments {
        province.agencies.push((code(format!("{ROOT}.S{d:02}"))?, AgencyLevel::Department, Some(root.clone())));
    }
    for h in 1..=plan.districts {
        let district = code(format!("{ROOT}.H{h:02}"))?;
        province.agencies.push((district.clone(), AgencyLevel::District, Some(root.clone())));
        for x in 1..=plan.communes_per_district {
            province.agencies.push((
                code(format!("{ROOT}.H{h:02}.X{x:02}"))?,
                AgencyLevel::Commune,
                Some(district.clone()),
            ));
        }
    }
    for (index, (agency, level, parent)) in province.agencies.iter().enumerate() {
        let name = match level {
            AgencyLevel::Province => "UBND tỉnh P01".to_owned(),
            AgencyLevel::Department => format!("Sở {}", agency.as_str().rsplit('.').next().unwrap_or_default()),
            AgencyLevel::District => format!("UBND huyện {}", agency.as_str().rsplit('.').next().unwrap_or_default()),
            AgencyLevel::Commune => format!("UBND xã {}", agency.as_str().replace('.', " ")),
        };
        configure_placed(ledger, agency, name, *level, parent.clone(), &format!("1903{:08}", index + 1), &metadata)
            .await?;
    }
    let mut rng = Rng::new(plan.seed);
    for (agency, _, _) in &province.agencies {
        // Each agency has its own habits: some are mostly cashless, some still take cash.
        let cash_bias = rng.below(5);
        for first in &plan.months {
            let cases = rng.below(u64::from(plan.max_cases) + 1);
            for n in 0..cases {
                let day = *first + Duration::days(i64::try_from(rng.below(27)).unwrap_or(0));
                let case =
                    CaseCode::parse(&format!("{agency}-{}-{:04}", day.format("%y%m%d"), n + 1)).map_err(invalid)?;
                let opened =
                    vietnam_time::start_of(day) + Duration::hours(9) + Duration::minutes(i64::try_from(n).unwrap_or(0));
                let record = ledger
                    .execute(
                        &case,
                        Command::AssessFees(AssessFees {
                            case_code: case.clone(),
                            agency_code: agency.clone(),
                            procedure_name: "Chứng thực".into(),
                            payer: Payer::new("Trần Thị Bình", Some("024301000123")).map_err(invalid)?,
                            lines: vec![FeeLineRequest {
                                fee_code: FeeCode::parse("P-SAOY").map_err(invalid)?,
                                quantity: 1,
                            }],
                            schedule: ledger.schedule_in_force(agency, opened).await?,
                            counter_id: None,
                            procedure_code: None,
                            now: opened,
                        }),
                        &metadata,
                        None,
                    )
                    .await?;
                let total = record.state.total().dong();
                let roll = rng.below(10);
                let channels: Vec<PaymentChannel> = match roll {
                    0 => Vec::new(),
                    r if r < 1 + cash_bias => vec![PaymentChannel::Cash],
                    6 => vec![PaymentChannel::Pos],
                    7 => vec![PaymentChannel::Cash, PaymentChannel::Vietqr],
                    8 => vec![PaymentChannel::Ewallet],
                    9 => vec![PaymentChannel::PaymentPlatform],
                    _ => vec![PaymentChannel::Vietqr],
                };
                let parts = i64::try_from(channels.len()).unwrap_or(1).max(1);
                for (k, channel) in channels.iter().enumerate() {
                    let k64 = i64::try_from(k).unwrap_or(0);
                    let amount = if k64 + 1 == parts { total - total / parts * (parts - 1) } else { total / parts };
                    ledger
                        .execute(
                            &case,
                            Command::RecordPayment(RecordPayment {
                                payment_id: uuid::Uuid::now_v7(),
                                idempotency_key: format!("prov-{case}-{k}"),
                                amount: Vnd::new(amount).map_err(invalid)?,
                                channel: *channel,
                                reference: case.to_string(),
                                provider: channel.is_online().then(|| "sepay".to_owned()),
                                bank_reference: channel.is_online().then(|| format!("FT{case}{k}")),
                                qr_id: None,
                                payer_account: None,
                                received_at: opened + Duration::minutes(5 + k64),
                            }),
                            &metadata,
                            None,
                        )
                        .await?;
                }
                province.cases += 1;
                if !channels.is_empty() {
                    province.paid_cases.push(case.clone());
                    let paid_on = vietnam_time::date_of(opened + Duration::minutes(5));
                    let key = (agency.to_string(), paid_on.format("%Y-%m").to_string());
                    let counts = province.counts.entry(key).or_default();
                    counts.cases += 1;
                    counts.cashless += u32::from(channels.iter().all(|c| c.is_cashless()));
                    counts.online += u32::from(channels.iter().all(|c| c.is_online()));
                }
            }
        }
    }
    Ok(province)
}
