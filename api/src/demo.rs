//! `feeledger serve --demo`: an agency, counters, a collection account and a fee schedule, so
//! a newcomer can open the screens and take a payment within minutes. Loading is idempotent:
//! running it again changes nothing.

use chrono::NaiveDate;
use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CounterId, FeeCode};
use feeledger_domain::fee_schedule::{FeeKind, FeeRule, PublishFeeSchedule};
use feeledger_domain::money::{Percent, Vnd};
use feeledger_infrastructure::event_store::EventMetadata;
use feeledger_infrastructure::ledger::LedgerError;

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
}

fn demo_fees() -> Result<Vec<FeeRule>, DemoError> {
    let rule = |code: &str, name: &str, kind, amount: i64, retention: &str| -> Result<FeeRule, DemoError> {
        Ok(FeeRule {
            fee_code: FeeCode::parse(code).map_err(|e| DemoError::Data(e.to_string()))?,
            name: name.to_owned(),
            kind,
            unit_amount: Vnd::new(amount).map_err(|e| DemoError::Data(e.to_string()))?,
            retention_percent: Percent::parse(retention).map_err(|e| DemoError::Data(e.to_string()))?,
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
    })
}
