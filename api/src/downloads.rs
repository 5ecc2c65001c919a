//! Files people download: the treasury and reconciliation reports and the fee declarations
//! (01/PHLP, 02/PHLP) as CSV and XLSX, a remittance's deposit voucher (C1-02/NS) as a
//! printable page, CSV and XLSX (finance staff, auditors, admins), and the printable page of a
//! receipt.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::NaiveDate;
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::vietnam_time;
use serde::Deserialize;
use serde_json::json;

use feeledger_domain::declaration::DeclarationPeriod;
use feeledger_domain::remittance_voucher::CollectionMonth;

use crate::app::AppState;
use crate::auth::{Action, Authentication, Principal, Scope};
use crate::{budget_exports, exports};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports/{file}", get(report))
        .route("/reports/remittances/{voucher}", get(remittance_voucher))
        .route("/receipts/{receipt_id}", get(receipt))
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    agency: String,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    date: Option<NaiveDate>,
    /// `YYYY-MM`, for the monthly declaration.
    month: Option<String>,
    /// For the yearly settlement.
    year: Option<i32>,
    /// `YYYY-Qn`, for the receipt-usage report.
    quarter: Option<String>,
    /// For a browser download: the token as a query parameter.
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Why a download is refused: the status, the error code and a message.
type Refusal = (StatusCode, &'static str, String);

/// The caller, from the `Authorization` header or the `token` query parameter, if a finance,
/// auditor or admin token; otherwise why not.
fn report_principal(state: &AppState, headers: &HeaderMap, token: Option<&str>) -> Result<Principal, Refusal> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorization = authorization.or_else(|| token.map(|t| format!("Bearer {t}")));
    match state.tokens.authenticate(authorization.as_deref()) {
        Authentication::Authenticated(principal) if principal.may(Action::ReadReports, Scope::Somewhere) => {
            Ok(principal)
        }
        Authentication::Authenticated(_) => {
            Err((StatusCode::FORBIDDEN, "FORBIDDEN", "your token does not allow this report".into()))
        }
        Authentication::Invalid(reason) => Err((StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", reason)),
        Authentication::Anonymous => {
            Err((StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "a bearer token is required".into()))
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "report failed");
    problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "the report cannot be produced now")
}

/// A refusal as JSON: `{ "error": CODE, "message": … }` with its HTTP status.
pub(crate) fn problem(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": code, "message": message.into() }))).into_response()
}

/// A file to download under `name`, never cached.
pub(crate) fn file(content_type: &'static str, name: String, body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const CSV: &str = "text/csv; charset=utf-8";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// `GET /reports/treasury.{csv,xlsx}?agency=A&from=D&to=D` and
/// `GET /reports/reconciliation.{csv,xlsx}?agency=A&date=D`.
async fn report(
    State(state): State<AppState>,
    Path(file_name): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ReportQuery>,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorization = authorization.or_else(|| query.token.clone().map(|t| format!("Bearer {t}")));
    let principal = match state.tokens.authenticate(authorization.as_deref()) {
        Authentication::Authenticated(principal) => principal,
        Authentication::Invalid(reason) => return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", reason),
        Authentication::Anonymous => {
            return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "a bearer token is required");
        }
    };
    let Ok(agency) = AgencyCode::parse(query.agency.trim()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            format!("agency {:?} is not an agency code", query.agency),
        );
    };
    if !principal.may(Action::ReadReports, Scope::Agency(&agency)) {
        return problem(StatusCode::FORBIDDEN, "FORBIDDEN", "your token does not allow this report");
    }
    let today = vietnam_time::date_of(state.clock.now());
    let context = &state.context;
    let rendered = match file_name.as_str() {
        "treasury.csv" | "treasury.xlsx" => {
            let (Some(from), Some(to)) = (query.from, query.to) else {
                return problem(StatusCode::BAD_REQUEST, "VALIDATION", "from and to (YYYY-MM-DD) are required");
            };
            state.runner.wait_for("treasury", std::time::Duration::from_secs(2)).await;
            let report = match context.treasury.report(&agency, from, to, today).await {
                Ok(report) => report,
                Err(error) => {
                    tracing::error!(%error, "treasury report failed");
                    return problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "UNAVAILABLE",
                        "the report cannot be produced now",
                    );
                }
            };
            let name = format!("bao-cao-nop-kbnn-{agency}-{from}-{to}");
            if file_name.ends_with(".csv") {
                exports::treasury_csv(&report).map(|b| file(CSV, format!("{name}.csv"), b))
            } else {
                exports::treasury_xlsx(&report).map(|b| file(XLSX, format!("{name}.xlsx"), b))
            }
        }
        "reconciliation.csv" | "reconciliation.xlsx" => {
            let Some(date) = query.date else {
                return problem(StatusCode::BAD_REQUEST, "VALIDATION", "date (YYYY-MM-DD) is required");
            };
            let report = match context.reconciliations.report(&agency, date, today).await {
                Ok(report) => report,
                Err(error) => {
                    tracing::error!(%error, "reconciliation report failed");
                    return problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "UNAVAILABLE",
                        "the report cannot be produced now",
                    );
                }
            };
            let agency_name =
                state.ledger.agency(&agency).await.ok().and_then(|a| a.current).map(|a| a.name).unwrap_or_default();
            let name = format!("doi-soat-{agency}-{date}");
            if file_name.ends_with(".csv") {
                exports::reconciliation_csv(&report, &agency_name).map(|b| file(CSV, format!("{name}.csv"), b))
            } else {
                exports::reconciliation_xlsx(&report, &agency_name).map(|b| file(XLSX, format!("{name}.xlsx"), b))
            }
        }
        "declaration.csv" | "declaration.xlsx" | "settlement.csv" | "settlement.xlsx" => {
            let period = if file_name.starts_with("declaration") {
                let month = query.month.as_deref().and_then(CollectionMonth::parse);
                let Some(month) = month else {
                    return problem(StatusCode::BAD_REQUEST, "VALIDATION", "month (YYYY-MM) is required");
                };
                DeclarationPeriod::Month { year: month.year, month: month.month }
            } else {
                match query.year {
                    Some(year @ 2000..=9999) => DeclarationPeriod::Year { year },
                    _ => return problem(StatusCode::BAD_REQUEST, "VALIDATION", "year (YYYY) is required"),
                }
            };
            state.runner.wait_for("treasury", std::time::Duration::from_secs(2)).await;
            let declaration = match context.treasury.declaration(&agency, period).await {
                Ok(declaration) => declaration,
                Err(error) => return unavailable(error),
            };
            let configured = state.ledger.agency(&agency).await.ok().and_then(|a| a.current);
            let name = format!(
                "to-khai-{}-{agency}-{}",
                budget_exports::form_name(period).replace('/', "-").to_lowercase(),
                period.label().replace('/', "-")
            );
            if file_name.ends_with(".csv") {
                budget_exports::declaration_csv(&declaration).map(|b| file(CSV, format!("{name}.csv"), b))
            } else {
                budget_exports::declaration_xlsx(&declaration, configured.as_ref())
                    .map(|b| file(XLSX, format!("{name}.xlsx"), b))
            }
        }
        "receipt-usage.csv" | "receipt-usage.xlsx" => {
            let Some(quarter) = query.quarter.as_deref().and_then(feeledger_domain::receipt::Quarter::parse) else {
                return problem(StatusCode::BAD_REQUEST, "VALIDATION", "quarter (YYYY-Qn) is required");
            };
            let report = match crate::graphql::receipt_reports::usage_report(context, &agency, quarter).await {
                Ok(report) => report,
                Err(_) => {
                    return problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "UNAVAILABLE",
                        "the report cannot be produced now",
                    );
                }
            };
            let name = format!("bao-cao-su-dung-bien-lai-{agency}-{quarter}");
            if file_name.ends_with(".csv") {
                crate::receipt_exports::usage_csv(&report).map(|b| file(CSV, format!("{name}.csv"), b))
            } else {
                crate::receipt_exports::usage_xlsx(&report).map(|b| file(XLSX, format!("{name}.xlsx"), b))
            }
        }
        _ => return problem(StatusCode::NOT_FOUND, "NOT_FOUND", "no such report"),
    };
    rendered.unwrap_or_else(|error| {
        tracing::error!(%error, "export failed");
        problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "the file could not be produced")
    })
}

/// `GET /reports/remittances/{remittance_id}` (the printable C1-02/NS page), `….csv`, `….xlsx`
/// (its lines): finance, auditors and admins of the remittance's agency.
async fn remittance_voucher(
    State(state): State<AppState>,
    Path(voucher): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let principal = match report_principal(&state, &headers, query.token.as_deref()) {
        Ok(principal) => principal,
        Err((status, code, message)) => return problem(status, code, message),
    };
    let (id, format) = match voucher.rsplit_once('.') {
        Some((id, extension @ ("csv" | "xlsx"))) => (id, extension),
        _ => (voucher.as_str(), "html"),
    };
    let not_found = || problem(StatusCode::NOT_FOUND, "NOT_FOUND", "no such remittance");
    let Ok(remittance_id) = id.parse::<uuid::Uuid>() else { return not_found() };
    state.runner.wait_for("treasury", std::time::Duration::from_secs(2)).await;
    let voucher = match state.context.treasury.voucher(remittance_id).await {
        Ok(Some(voucher)) => voucher,
        Ok(None) => return not_found(),
        Err(error) => return unavailable(error),
    };
    if !principal.can_read_agency(&voucher.agency_code) {
        return problem(StatusCode::FORBIDDEN, "FORBIDDEN", "your token does not allow this report");
    }
    let agency = state.ledger.agency(&voucher.agency_code).await.ok().and_then(|a| a.current);
    let name = format!("giay-nop-tien-{}-{}", voucher.agency_code, voucher.remitted_on);
    let rendered = match format {
        "csv" => budget_exports::voucher_csv(&voucher).map(|b| file(CSV, format!("{name}.csv"), b)),
        "xlsx" => {
            budget_exports::voucher_xlsx(&voucher, agency.as_ref()).map(|b| file(XLSX, format!("{name}.xlsx"), b))
        }
        _ => {
            let html = crate::voucher_page::render(&crate::voucher_page::VoucherPage {
                voucher: &voucher,
                agency: agency.as_ref(),
            });
            return printable(html);
        }
    };
    rendered.unwrap_or_else(|error| {
        tracing::error!(%error, "export failed");
        problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "the file could not be produced")
    })
}

/// A standalone printable page: inline style only, never cached (it may be corrected).
fn printable(html: String) -> Response {
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /receipts/{receipt_id}`: the printable receipt. Like a QR image, the random id is the
/// capability to see it (the page shows the payer's name and masked id only).
/// `….json` and `….xml` give the same receipt as structured data (`crate::receipt_exports`).
async fn receipt(State(state): State<AppState>, Path(receipt_id): Path<String>) -> Response {
    let not_found = || problem(StatusCode::NOT_FOUND, "NOT_FOUND", "no such receipt");
    let (receipt_id, format) = match receipt_id.rsplit_once('.') {
        Some((id, extension @ ("json" | "xml"))) => (id.to_owned(), extension),
        _ => (receipt_id, "html"),
    };
    let Ok(receipt_id) = receipt_id.parse::<uuid::Uuid>() else { return not_found() };
    let Ok(Some(event)) = state.ledger.store().receipt_issued(receipt_id).await else { return not_found() };
    let code = event.stream_id.trim_start_matches(feeledger_infrastructure::codec::CASE_STREAM_PREFIX);
    let Ok(code) = feeledger_domain::codes::CaseCode::parse(code) else { return not_found() };
    let Ok(record) = state.ledger.load_case(&code).await else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "try again shortly");
    };
    let Some(issued) = record.state.receipts.iter().find(|r| r.receipt_id == receipt_id) else { return not_found() };
    let cancelled = record.state.cancelled_receipts.iter().find(|c| c.receipt_id == receipt_id);
    let replaced_number =
        issued.replaces.and_then(|old| record.state.receipts.iter().find(|r| r.receipt_id == old)).map(|r| r.number);
    let agency_name =
        state.ledger.agency(&code.agency()).await.ok().and_then(|a| a.current).map(|a| a.name).unwrap_or_default();
    let document = crate::receipt_exports::ReceiptDocument {
        receipt: issued,
        case_code: code.as_str(),
        agency_name: &agency_name,
        cancelled,
    };
    let name = format!("bien-lai-{}-{}", issued.serial, issued.printed_number());
    match format {
        "json" => {
            let body = serde_json::to_vec_pretty(&crate::receipt_exports::receipt_json(&document)).unwrap_or_default();
            return file("application/json", format!("{name}.json"), body);
        }
        "xml" => {
            return match crate::receipt_exports::receipt_xml(&document) {
                Ok(body) => file("application/xml; charset=utf-8", format!("{name}.xml"), body),
                Err(error) => {
                    tracing::error!(%error, "receipt XML failed");
                    problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "the file could not be produced")
                }
            };
        }
        _ => {}
    }
    let html = crate::receipt_page::render(&crate::receipt_page::ReceiptPage {
        receipt: issued,
        agency_name: &agency_name,
        case_code: code.as_str(),
        cancelled,
        replaced_number,
    });
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
