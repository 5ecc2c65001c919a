//! The citizen's side: the public payment page `/pay` and `/pay/{caseCode}` (static HTML and
//! script, served by the binary; its data comes from the public GraphQL fields of
//! `graphql::public`), and the printable case slip `/cases/{caseCode}/slip?token=…` whose QR
//! links to `{public base URL}/pay/{caseCode}`.
//!
//! The page itself holds nothing about any case, but its loads count against the same public
//! rate limits as its data: a client walking through codes is slowed down wherever it starts.

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use feeledger_domain::case_fees::CaseStatus;
use feeledger_domain::codes::CaseCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::{Action, Authentication, Scope};
use crate::downloads::problem;
use crate::labels::fee_kind_label;
use crate::rate_limit::ClientAddress;
use crate::screens::asset;

const PAY_HTML: &str = include_str!("../web/pay.html");
const PAY_JS: &str = include_str!("../web/pay.js");
const PAY_CSS: &str = include_str!("../web/pay.css");

/// Scripts, styles, images and connections only from here (the QR image is ours). Links may
/// leave (the bank-app deep link), nothing else may.
const PAY_CSP: &str = "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; \
    style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pay", get(pay_page))
        .route("/pay/", get(pay_page))
        .route("/pay/{case_code}", get(pay_page))
        .route("/assets/pay.js", get(|| async { asset("text/javascript; charset=utf-8", PAY_JS.as_bytes()) }))
        .route("/assets/pay.css", get(|| async { asset("text/css; charset=utf-8", PAY_CSS.as_bytes()) }))
        .route("/cases/{case_code}/slip", get(slip))
}

/// `GET /pay`, `/pay/{caseCode}`: the page (the code is read by its script from the address).
async fn pay_page(State(state): State<AppState>, Extension(client): Extension<ClientAddress>) -> Response {
    if let Err(limited) = state.context.public_limit.check(client.0) {
        let seconds = limited.retry_after_seconds();
        let body = html! {
            (DOCTYPE)
            html lang="vi" {
                head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { "Vui lòng thử lại sau" } }
                body { p { "Bạn đã truy cập quá nhiều lần. Vui lòng thử lại sau " (seconds) " giây." } }
            }
        };
        let mut response = (StatusCode::TOO_MANY_REQUESTS, body.into_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            headers.insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    crate::screens::page_with_policy(PAY_HTML, PAY_CSP)
}

#[derive(Debug, Deserialize)]
struct SlipQuery {
    token: Option<String>,
    /// `a4` for an A4 sheet; A5 otherwise.
    paper: Option<String>,
}

/// The address citizens use: the configured public base URL, else this request's host.
fn public_base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(configured) = &state.context.public_base_url {
        return configured.clone();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /cases/{caseCode}/slip?token=…`: the printable slip of a case (officer, finance or admin
/// of its agency; the token in the header or the query).
async fn slip(
    State(state): State<AppState>,
    Path(case_code): Path<String>,
    Query(query): Query<SlipQuery>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorization = authorization.or_else(|| query.token.as_deref().map(|t| format!("Bearer {t}")));
    let principal = match state.tokens.authenticate(authorization.as_deref()) {
        Authentication::Authenticated(principal) => principal,
        Authentication::Invalid(reason) => return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &reason),
        Authentication::Anonymous => {
            return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "an officer token is required (?token=…)");
        }
    };
    let Ok(code) = CaseCode::parse(case_code.trim()) else {
        return problem(StatusCode::BAD_REQUEST, "VALIDATION", "the case code must look like H34.22.6-240426-0002");
    };
    let allowed = principal.may(Action::PrintSlip, Scope::Agency(&code.agency()));
    if !allowed {
        return problem(StatusCode::FORBIDDEN, "FORBIDDEN", "your token does not allow this case's slip");
    }
    let agency_code = code.agency();
    let (agency, record) = match tokio::join!(state.ledger.agency(&agency_code), state.ledger.read_case(&code)) {
        (Ok(agency), Ok(record)) => (agency, record),
        _ => return problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "try again shortly"),
    };
    let Some(assessed) = record.state.assessment.as_ref() else {
        return problem(StatusCode::NOT_FOUND, "NOT_FOUND", "no fees were assessed for this case");
    };
    let agency = agency.current;
    let public = agency.as_ref().is_some_and(|a| a.public_payment) && record.state.status != CaseStatus::Cancelled;
    let pay_url = format!("{}/pay/{}", public_base_url(&state, &headers), code);
    let qr_svg = if public {
        match crate::qr_image::svg(&pay_url) {
            Ok(svg) => Some(svg),
            Err(error) => {
                tracing::error!(%error, case.code = %code, "slip QR rendering failed");
                return problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "the slip could not be drawn");
            }
        }
    } else {
        None
    };
    let a4 = query.paper.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("a4"));
    let agency_name = agency.as_ref().map(|a| a.name.clone()).unwrap_or_default();
    let state_now = &record.state;
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { "Phiếu thanh toán hồ sơ " (code) }
                style { (PreEscaped(SLIP_STYLE)) @if a4 { (PreEscaped("@page { size: A4; }")) } @else { (PreEscaped("@page { size: A5; }")) } }
            }
            body {
                main.slip data-paper=(if a4 { "A4" } else { "A5" }) {
                    div.agency { (agency_name) }
                    h1 { "PHIẾU THANH TOÁN PHÍ, LỆ PHÍ" }
                    div.sub { "(Kèm Giấy tiếp nhận hồ sơ và hẹn trả kết quả)" }
                    dl.fields {
                        dt { "Mã hồ sơ:" } dd.code data-testid="slip-case-code" { (code) }
                        dt { "Thủ tục:" } dd { (assessed.procedure_name) }
                        @if let Some(procedure) = &assessed.procedure_code {
                            dt { "Mã thủ tục:" } dd { (procedure) }
                        }
                        dt { "Người nộp:" } dd { (assessed.payer.name) @if let Some(id) = assessed.payer.masked_id() { " · " (id) } }
                    }
                    table.lines {
                        thead { tr { th { "Khoản thu" } th { "Loại" } th.num { "Số tiền (đồng)" } } }
                        tbody {
                            @for line in &assessed.lines {
                                tr { td { (line.name) } td { (fee_kind_label(line.kind)) } td.num { (line.amount.grouped()) } }
                            }
                        }
                        tfoot {
                            tr { td colspan="2" { "Tổng cộng" } td.num { (state_now.total().grouped()) } }
                            tr { td colspan="2" { "Đã nộp" } td.num { (state_now.paid.grouped()) } }
                            tr.due { td colspan="2" { "Số tiền phải nộp" } td.num data-testid="slip-amount-due" { (state_now.outstanding().grouped()) } }
                        }
                    }
                    @if let Some(svg) = &qr_svg {
                        section.pay {
                            // The SVG is drawn by the qrcode crate from the URL: shapes only, no text.
                            div.qr data-testid="slip-qr" data-qr-payload=(pay_url) { (PreEscaped(svg)) }
                            div.how {
                                p.strong { "Thanh toán trực tuyến" }
                                p { "Quét mã QR bằng điện thoại, hoặc mở địa chỉ:" }
                                p.url { (pay_url) }
                                p { "rồi thanh toán bằng ứng dụng ngân hàng. Biên lai điện tử hiện ngay trên trang." }
                            }
                        }
                    } @else {
                        p.note { "Vui lòng nộp phí, lệ phí tại quầy." }
                    }
                }
            }
        }
    };
    let mut response = markup.into_string().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Black on white, one sheet of A5 (or A4), the QR big enough to scan from the paper.
const SLIP_STYLE: &str = r#"
*, *::before, *::after { box-sizing: border-box; }
body { margin: 0; padding: 16px; background: #fff; color: #111;
  font-family: "Times New Roman", Times, "Liberation Serif", "DejaVu Serif", serif; font-size: 15px; line-height: 1.4; }
.slip { max-width: 148mm; margin: 0 auto; border: 1px solid #333; padding: 12px 16px; }
.agency { font-weight: bold; text-transform: uppercase; text-align: center; }
h1 { font-size: 19px; text-align: center; margin: 10px 0 0; }
.sub { text-align: center; font-style: italic; font-size: 13px; }
.fields { display: grid; grid-template-columns: max-content 1fr; gap: 2px 8px; margin: 12px 0; }
.fields dd { margin: 0; font-weight: bold; overflow-wrap: anywhere; }
.code { font-family: "DejaVu Sans Mono", monospace; }
.lines { width: 100%; border-collapse: collapse; }
.lines th, .lines td { border: 1px solid #333; padding: 3px 6px; text-align: left; }
.num { text-align: right !important; white-space: nowrap; }
.due td { font-weight: bold; }
.pay { display: flex; gap: 12px; align-items: center; margin-top: 12px; }
.qr { flex: 0 0 auto; width: 52mm; }
.qr svg { width: 100%; height: auto; display: block; }
.how p { margin: 2px 0; }
.strong { font-weight: bold; }
.url { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; overflow-wrap: anywhere; }
.note { margin-top: 12px; font-style: italic; }
@media print { body { padding: 0; } .slip { border: 0; max-width: none; } }
"#;
