//! The quarterly receipt-usage report (BC26) for finance staff, auditors and admins:
//! `receiptUsageReport(agencyCode, quarter: "YYYY-Qn")`. The same rows are downloadable as
//! `GET /reports/receipt-usage.{csv,xlsx}?agency=&quarter=`.

use async_graphql::{Context, Object, SimpleObject};
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::receipt::Quarter;
use feeledger_projections::runner::Projection;

use super::errors::{ApiError, ApiResult};
use super::scalars::DateScalar;
use super::{api, ledger, principal};
use crate::auth::{Action, Scope};
use crate::receipt_exports::ReceiptUsageReport;

/// How long the report waits for the receipts read model to apply the latest events.
const READ_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(SimpleObject)]
#[graphql(name = "ReceiptUsageRow")]
struct ReceiptUsageRowView {
    template_symbol: String,
    serial: String,
    first_number: i32,
    last_number: i32,
    issued: i32,
    cancelled: i32,
}

#[derive(SimpleObject)]
#[graphql(name = "ReceiptUsageReport")]
struct ReceiptUsageReportView {
    agency_code: String,
    agency_name: String,
    tax_code: Option<String>,
    quarter: String,
    from: DateScalar,
    to: DateScalar,
    /// The last day to file it: the last day of the first month of the next quarter.
    deadline: DateScalar,
    issued: i32,
    cancelled: i32,
    rows: Vec<ReceiptUsageRowView>,
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Builds the report from the receipts read model (shared with the downloads).
pub async fn usage_report(
    context: &super::ApiContext,
    agency: &AgencyCode,
    quarter: Quarter,
) -> Result<ReceiptUsageReport, ApiError> {
    context.runner.wait_for(feeledger_projections::receipts::ReceiptsProjection::NAME, READ_PATIENCE).await;
    let rows = feeledger_projections::receipts::usage(
        context.runner.documents(),
        agency,
        quarter.first_day(),
        quarter.last_day(),
    )
    .await
    .map_err(|error| {
        tracing::error!(%error, "receipt usage failed");
        ApiError::Unavailable
    })?;
    let configured = context.ledger.agency(agency).await?.current;
    Ok(ReceiptUsageReport {
        agency_code: agency.clone(),
        agency_name: configured.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
        tax_code: configured.and_then(|a| a.treasury.tax_code).map(|t| t.to_string()),
        quarter,
        rows,
    })
}

pub fn parse_quarter(text: &str) -> ApiResult<Quarter> {
    Quarter::parse(text)
        .ok_or_else(|| ApiError::Validation(format!("quarter {text:?} must be YYYY-Qn (n from 1 to 4)")))
}

#[derive(Default, Debug)]
pub struct ReceiptReportQueries;

#[Object]
impl ReceiptReportQueries {
    /// The quarter's receipt usage per template and serial (BC26): numbers used from–to,
    /// issued, cancelled, and the filing deadline.
    async fn receipt_usage_report(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
        quarter: String,
    ) -> ApiResult<ReceiptUsageReportView> {
        let principal = principal(ctx)?;
        let agency = AgencyCode::parse(agency_code.trim()).map_err(ApiError::validation)?;
        if !principal.may(Action::ReadReports, Scope::Agency(&agency)) {
            return Err(ApiError::forbidden());
        }
        let quarter = parse_quarter(&quarter)?;
        let _ = ledger(ctx);
        let report = usage_report(api(ctx), &agency, quarter).await?;
        Ok(ReceiptUsageReportView {
            agency_code: report.agency_code.to_string(),
            agency_name: report.agency_name.clone(),
            tax_code: report.tax_code.clone(),
            quarter: quarter.to_string(),
            from: DateScalar(quarter.first_day()),
            to: DateScalar(quarter.last_day()),
            deadline: DateScalar(quarter.report_deadline()),
            issued: count(report.issued()),
            cancelled: count(report.cancelled()),
            rows: report
                .rows
                .iter()
                .map(|r| ReceiptUsageRowView {
                    template_symbol: r.template_symbol.clone(),
                    serial: r.serial.clone(),
                    first_number: count(r.first_number),
                    last_number: count(r.last_number),
                    issued: count(r.used),
                    cancelled: count(r.cancelled),
                })
                .collect(),
        })
    }
}
