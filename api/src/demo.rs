//! `feeledger serve --demo`: an agency, counters, a collection account and a fee schedule, so
//! a newcomer can open the screens and take a payment within minutes. Loading is idempotent:
//! running it again changes nothing.

use chrono::NaiveDate;
use feeledger_domain::agency::{AgencyConfigured, TreasuryIdentity};
use feeledger_domain::budget::{
    AdminAreaCode, BudgetChapter, BudgetSubItem, TaxCode, TaxOfficeCode, TreasuryAccount, TreasuryCode,
};
use feeledger_domain::case_fees::{AssessFees, Command, FeeLineRequest, IssueQr};
use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CaseCode, CounterId, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeRule, PublishFeeSchedule};
use feeledger_domain::money::{Percent, Vnd};
use feeledger_domain::payer::Payer;
use feeledger_domain::treasury::DepositSchedule;
use feeledger_infrastructure::ledger::LedgerError;
use feeledger_infrastructure::storage::EventMetadata;

use crate::app::AppState;
use crate::auth::{AuthError, Role, TokenRequest};

pub const AGENCY: &str = "H34.22.6";
pub const AGENCY_NAME: &str = "UBND phường Trần Hưng Đạo";
pub const COUNTERS: [&str; 2] = ["quay-1", "quay-2"];
/// VietinBank's NAPAS BIN.
pub const BANK_BIN: &str = "970415";
pub const ACCOUNT_NUMBER: &str = "113366668888";
pub const ACCOUNT_NAME: &str = "UBND PHUONG TRAN HUNG DAO";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Tokens(#[from] AuthError),
    #[error("demo data is malformed: {0}")]
    Data(String),
}

/// Tokens for each role of the demo agency.
#[derive(Debug, Clone)]
pub struct DemoTokens {
    pub officer: String,
    pub display: String,
    pub finance: String,
    pub auditor: String,
    pub admin: String,
    /// Oversight of the demo agency's subtree (itself).
    pub oversight: String,
}

fn demo_fees() -> Result<Vec<FeeRule>, DemoError> {
    let rule = |code: &str, name: &str, kind, amount: i64, retention: &str| -> Result<FeeRule, DemoError> {
        // Sub-items of the budget classification as the tax authority's software lists them:
        // 2716 phí chứng thực (mục 2700), 2771 lệ phí hộ tịch (mục 2750).
        let (sub_item, deposit_schedule) = match kind {
            FeeKind::Phi => ("2716", DepositSchedule::Weekly { weekday: chrono::Weekday::Mon }),
            FeeKind::LePhi => ("2771", DepositSchedule::Daily),
        };
        Ok(FeeRule {
            fee_code: FeeCode::parse(code).map_err(|e| DemoError::Data(e.to_string()))?,
            name: name.to_owned(),
            kind,
            unit_amount: Vnd::new(amount).map_err(|e| DemoError::Data(e.to_string()))?,
            retention_percent: Percent::parse(retention).map_err(|e| DemoError::Data(e.to_string()))?,
            budget_sub_item: Some(BudgetSubItem::parse(sub_item).map_err(|e| DemoError::Data(e.to_string()))?),
            deposit_schedule: Some(deposit_schedule),
        })
    };
    // Circular 226/2016/TT-BTC: certifying a copy costs 2,000 đ for the first two pages and
    // 1,000 đ per page from the third (the Kon Tum example: 3 pages = 3,000 đ).
    Ok(vec![
        rule("P-SAOY-2TRANG", "Phí chứng thực bản sao từ bản chính (2 trang đầu)", FeeKind::Phi, 2_000, "50")?,
        rule("P-SAOY-TRANGTHEM", "Phí chứng thực bản sao từ bản chính (từ trang thứ 3)", FeeKind::Phi, 1_000, "50")?,
        rule("P-CHUKY", "Phí chứng thực chữ ký", FeeKind::Phi, 10_000, "50")?,
        rule("LP-TRICHLUC", "Lệ phí cấp bản sao trích lục hộ tịch", FeeKind::LePhi, 8_000, "0")?,
        rule("LP-KETHON-NN", "Lệ phí đăng ký kết hôn có yếu tố nước ngoài", FeeKind::LePhi, 1_000_000, "0")?,
    ])
}

/// Today's sample case at the first counter, with a fresh QR, so the citizen's screen shows a QR
/// the moment it is opened: the Kon Tum example, a certified copy of three pages (3,000 đ).
/// Skipped when today's sample case already exists.
async fn sample_case(
    state: &AppState,
    agency: &AgencyCode,
    counters: &[CounterId],
    metadata: &EventMetadata,
) -> Result<(), DemoError> {
    let now = state.clock.now();
    let today = feeledger_domain::vietnam_time::date_of(now).format("%y%m%d");
    let code = CaseCode::parse(&format!("{agency}-{today}-0001")).map_err(|e| DemoError::Data(e.to_string()))?;
    if state.ledger.load_case(&code).await?.exists() {
        return Ok(());
    }
    let Some(counter) = counters.first() else { return Ok(()) };
    let data = |e: &dyn std::fmt::Display| DemoError::Data(e.to_string());
    let line = |fee: &str| -> Result<FeeLineRequest, DemoError> {
        Ok(FeeLineRequest { fee_code: FeeCode::parse(fee).map_err(|e| data(&e))?, quantity: 1 })
    };
    let assess = Command::AssessFees(AssessFees {
        case_code: code.clone(),
        agency_code: agency.clone(),
        procedure_name: "Chứng thực bản sao từ bản chính".into(),
        payer: Payer::new("VÕ ĐẶNG NGỌC GIÀ", Some("079201008870")).map_err(|e| data(&e))?,
        lines: vec![line("P-SAOY-2TRANG")?, line("P-SAOY-TRANGTHEM")?],
        schedule: state.ledger.schedule_in_force(agency, now).await?,
        counter_id: Some(counter.clone()),
        now,
        procedure_code: None,
    });
    state.ledger.execute(&code, assess, metadata, None).await?;
    let bank = state.ledger.agency(agency).await?.current.map(|a| a.bank_account).ok_or_else(|| data(&"no agency"))?;
    let issue = Command::IssueQr(IssueQr {
        qr_id: uuid::Uuid::new_v4(),
        counter_id: counter.clone(),
        beneficiary: bank,
        now,
        expires_at: now + chrono::Duration::minutes(15),
    });
    state.ledger.execute(&code, issue, metadata, None).await?;
    Ok(())
}

/// How the treasury knows the demo agency. Illustrative codes of the right shapes (the tax
/// code is fictitious but has a valid check digit): a real agency takes them from its treasury
/// and tax office (docs/FINANCE.md).
fn demo_treasury_identity() -> Result<TreasuryIdentity, feeledger_domain::codes::CodeError> {
    Ok(TreasuryIdentity {
        tax_code: Some(TaxCode::parse("0108888888")?),
        budget_chapter: Some(BudgetChapter::parse("800")?),
        admin_area_code: Some(AdminAreaCode::parse("00004")?),
        treasury_code: Some(TreasuryCode::parse("0011")?),
        treasury_account: Some(TreasuryAccount::parse("3511.0.1012345")?),
        tax_office_code: Some(TaxOfficeCode::parse("1054449")?),
        address: Some("Số 1 phố Trần Hưng Đạo, phường Trần Hưng Đạo".into()),
    })
}

/// Configures the demo agency and its schedule (once) and issues a token per role.
pub async fn load(state: &AppState) -> Result<DemoTokens, DemoError> {
    let parse_err = |e: feeledger_domain::codes::CodeError| DemoError::Data(e.to_string());
    let agency = AgencyCode::parse(AGENCY).map_err(parse_err)?;
    let counters = COUNTERS.iter().map(|c| CounterId::parse(c)).collect::<Result<Vec<_>, _>>().map_err(parse_err)?;
    let metadata = EventMetadata { actor: Some("demo".into()), role: Some("admin".into()), ..EventMetadata::default() };
    let now = state.clock.now();

    state
        .ledger
        .configure_agency(
            AgencyConfigured {
                agency_code: agency.clone(),
                name: AGENCY_NAME.into(),
                bank_account: BankAccount {
                    bin: BankBin::parse(BANK_BIN).map_err(parse_err)?,
                    number: AccountNumber::parse(ACCOUNT_NUMBER).map_err(parse_err)?,
                    name: ACCOUNT_NAME.into(),
                },
                retains_fees: true,
                counters: counters.clone(),
                receipt_template_symbol: None,
                receipt_serial: None,
                public_payment: true,
                receipt_per_payment: true,
                receipt_number_width: None,
                treasury: demo_treasury_identity().map_err(parse_err)?,
                // A ward's people's committee: a commune-level agency (the demo has no district).
                placement: feeledger_domain::oversight::Placement {
                    level: Some(feeledger_domain::oversight::AgencyLevel::Commune),
                    parent_code: None,
                    placed_from: None,
                },
                configured_at: now,
            },
            &metadata,
        )
        .await?;

    if state.ledger.fee_schedule(&agency).await?.versions().is_empty() {
        let effective_from = NaiveDate::from_ymd_opt(2024, 1, 1).ok_or_else(|| DemoError::Data("date".into()))?;
        state
            .ledger
            .publish_fee_schedule(
                PublishFeeSchedule {
                    agency_code: agency.clone(),
                    effective_from,
                    fees: demo_fees()?,
                    published_at: now,
                },
                &metadata,
            )
            .await?;
    }

    sample_case(state, &agency, &counters, &metadata).await?;

    // The Bắc Giang plan's targets per level (docs/OVERSIGHT.md), for the oversight page.
    for target in feeledger_domain::oversight::bac_giang_2022_targets(now) {
        state.ledger.set_target(target, &metadata).await?;
    }

    let token = |role, counter: Option<&CounterId>| {
        let scoped_agency =
            matches!(role, Role::Officer | Role::Display | Role::Finance | Role::Auditor).then(|| agency.clone());
        state.tokens.issue(&TokenRequest::new(role, scoped_agency, counter.cloned()), now)
    };
    let first_counter = counters.first();
    Ok(DemoTokens {
        officer: token(Role::Officer, first_counter)?,
        display: token(Role::Display, first_counter)?,
        finance: token(Role::Finance, None)?,
        auditor: token(Role::Auditor, None)?,
        admin: token(Role::Admin, None)?,
        oversight: state.tokens.issue(&TokenRequest::new(Role::Oversight, Some(agency.clone()), None), now)?,
    })
}
