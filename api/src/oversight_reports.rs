//! The league table as files and pages: `GET /reports/league.{csv,xlsx}?root=&month=` (or
//! `&quarter=YYYY-Qn`), the printable A4 announcement `GET /reports/league/announcement`, and the
//! server-rendered charts `GET /charts/{rates,collected,overdue}.svg`. Each takes the token from
//! `Authorization` or `?token=` (a browser download).

use std::borrow::Cow;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, NaiveDate};
use feeledger_domain::case_fees::PaymentChannel;
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::oversight::{AgencyLevel, League, LeagueRow, Period};
use feeledger_domain::vietnam_time;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rust_decimal::Decimal;
use rust_xlsxwriter::{Format, Workbook};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::{Action, Authentication, Principal, Scope};
use crate::charts::{self, Line, Stack};
use crate::downloads::{file, problem};
use crate::exports::{ExportError, Styles, csv_text, csv_writer, finish_csv};
use crate::graphql::oversight::rate_text;
use crate::oversight::{OversightError, league_table, rate_series};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports/league.csv", get(|s, h, q| league_file(s, h, q, FileKind::Csv)))
        .route("/reports/league.xlsx", get(|s, h, q| league_file(s, h, q, FileKind::Xlsx)))
        .route("/reports/league/announcement", get(announcement))
        .route("/charts/rates.svg", get(rates_chart))
        .route("/charts/collected.svg", get(collected_chart))
        .route("/charts/overdue.svg", get(overdue_chart))
}

#[derive(Debug, Clone, Copy)]
enum FileKind {
    Csv,
    Xlsx,
}

#[derive(Debug, Deserialize)]
pub struct LeagueQuery {
    root: Option<String>,
    month: Option<String>,
    quarter: Option<String>,
    level: Option<String>,
    token: Option<String>,
}

/// A refused request: the response that says why (boxed, it is large).
type Refused = Box<Response>;

fn caller(state: &AppState, headers: &HeaderMap, token: Option<&str>) -> Result<Principal, Refused> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorization = authorization.or_else(|| token.map(|t| format!("Bearer {t}")));
    match state.tokens.authenticate(authorization.as_deref()) {
        Authentication::Authenticated(principal) => Ok(principal),
        Authentication::Invalid(reason) => Err(Box::new(problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", reason))),
        Authentication::Anonymous => {
            Err(Box::new(problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "a bearer token is required")))
        }
    }
}

fn oversight_problem(error: OversightError) -> Response {
    match error {
        OversightError::Forbidden => {
            problem(StatusCode::FORBIDDEN, "FORBIDDEN", "your token does not allow this report")
        }
        OversightError::NotPlaced(..) => problem(StatusCode::NOT_FOUND, "NOT_FOUND", error.to_string()),
        other => {
            tracing::error!(error = %other, "league report failed");
            problem(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "the report cannot be produced now")
        }
    }
}

/// The root, period and level a league request asks for, or the 400 that refuses it.
fn league_request(query: &LeagueQuery) -> Result<(AgencyCode, Period, Option<AgencyLevel>), Refused> {
    let bad = |message: String| Box::new(problem(StatusCode::BAD_REQUEST, "VALIDATION", message));
    let root = query.root.as_deref().ok_or_else(|| bad("root (an agency code) is required".into()))?;
    let root = AgencyCode::parse(root.trim()).map_err(|e| bad(e.to_string()))?;
    let period = match (query.month.as_deref(), query.quarter.as_deref()) {
        (Some(month), None) => {
            Period::Month(month.parse().map_err(|e: feeledger_domain::oversight::PeriodError| bad(e.to_string()))?)
        }
        (None, Some(quarter)) => match Period::parse(quarter).map_err(|e| bad(e.to_string()))? {
            q @ Period::Quarter(..) => q,
            Period::Month(_) => return Err(bad(format!("quarter {quarter:?} must be YYYY-Qn"))),
        },
        _ => return Err(bad("give either month (YYYY-MM) or quarter (YYYY-Qn)".into())),
    };
    let level = match query.level.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => None,
        Some(text) => Some(AgencyLevel::parse(text).ok_or_else(|| bad(format!("level {text:?} is not a level")))?),
    };
    Ok((root, period, level))
}

async fn league_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LeagueQuery>,
    kind: FileKind,
) -> Response {
    let principal = match caller(&state, &headers, query.token.as_deref()) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let (root, period, level) = match league_request(&query) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let league = match league_table(&state.context, &principal, &root, period, level).await {
        Ok(league) => league,
        Err(error) => return oversight_problem(error),
    };
    let name = format!("bang-xep-hang-{root}-{period}");
    let written = match kind {
        FileKind::Csv => league_csv(&league).map(|b| ("text/csv; charset=utf-8", format!("{name}.csv"), b)),
        FileKind::Xlsx => league_xlsx(&root, &league)
            .map(|b| ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", format!("{name}.xlsx"), b)),
    };
    match written {
        Ok((content_type, name, body)) => file(content_type, name, body),
        Err(error) => {
            tracing::error!(%error, "league export failed");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "the file could not be written")
        }
    }
}

/// The CSV columns, in order.
pub const LEAGUE_HEADERS: [&str; 20] = [
    "Cấp",
    "Mã đơn vị",
    "Tên đơn vị",
    "Đơn vị cấp trên",
    "Xếp hạng",
    "Số hồ sơ đã thanh toán",
    "Không dùng tiền mặt",
    "Tỷ lệ không dùng tiền mặt (%)",
    "Trực tuyến",
    "Tỷ lệ trực tuyến (%)",
    "Chỉ tiêu không dùng tiền mặt (%)",
    "Chỉ tiêu trực tuyến (%)",
    "Kết quả",
    "Tăng/giảm so với kỳ trước (điểm %)",
    "Tăng/giảm so với cùng kỳ năm trước (điểm %)",
    "Trực tuyến: so với kỳ trước (điểm %)",
    "Trực tuyến: so với cùng kỳ năm trước (điểm %)",
    "Số hồ sơ kỳ trước",
    "Số hồ sơ cùng kỳ năm trước",
    "Kỳ",
];

pub fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "Đạt",
        Some(false) => "Không đạt",
        None => "Không xếp loại",
    }
}

fn row_cells(row: &LeagueRow, period: Period) -> Vec<String> {
    let e = &row.entry;
    let text = |v: Option<String>| v.unwrap_or_default();
    vec![
        e.level.label_vi().to_owned(),
        e.agency_code.to_string(),
        e.name.clone(),
        e.parent_code.as_ref().map(ToString::to_string).unwrap_or_default(),
        row.rank.to_string(),
        e.counts.cases.to_string(),
        e.counts.cashless.to_string(),
        text(rate_text(row.cashless_rate)),
        e.counts.online.to_string(),
        text(rate_text(row.online_rate)),
        text(row.target.as_ref().map(|t| format!("{:.2}", t.cashless_percent.as_decimal()))),
        text(row.target.as_ref().map(|t| format!("{:.2}", t.online_percent.as_decimal()))),
        verdict(row.met).to_owned(),
        text(rate_text(row.cashless_change_vs_previous)),
        text(rate_text(row.cashless_change_vs_last_year)),
        text(rate_text(row.online_change_vs_previous)),
        text(rate_text(row.online_change_vs_last_year)),
        e.previous.cases.to_string(),
        e.a_year_before.cases.to_string(),
        period.to_string(),
    ]
}

/// One line per agency (level, then rank), then a total line per level ("Tổng <cấp>").
pub fn league_csv(league: &League) -> Result<Vec<u8>, ExportError> {
    let mut csv = csv_writer();
    csv.write_record(LEAGUE_HEADERS)?;
    for row in &league.rows {
        let cells = row_cells(row, league.period);
        csv.write_record(
            cells.iter().map(|c| csv_text(c)).collect::<Vec<Cow<'_, str>>>().iter().map(|c| c.as_bytes()),
        )?;
    }
    for total in &league.totals {
        let c = total.counts;
        let cells = [
            total.level.label_vi().to_owned(),
            String::new(),
            format!(
                "Tổng {} ({} đơn vị; đạt {}, không đạt {})",
                total.level.label_vi(),
                total.agencies,
                total.met,
                total.not_met
            ),
            String::new(),
            String::new(),
            c.cases.to_string(),
            c.cashless.to_string(),
            rate_text(total.cashless_rate).unwrap_or_default(),
            c.online.to_string(),
            rate_text(total.online_rate).unwrap_or_default(),
            total.target.as_ref().map(|t| format!("{:.2}", t.cashless_percent.as_decimal())).unwrap_or_default(),
            total.target.as_ref().map(|t| format!("{:.2}", t.online_percent.as_decimal())).unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            league.period.to_string(),
        ];
        csv.write_record(
            cells.iter().map(|c| csv_text(c)).collect::<Vec<Cow<'_, str>>>().iter().map(|c| c.as_bytes()),
        )?;
    }
    finish_csv(csv)
}

/// A sheet with a title, the same columns as the CSV (counts as numbers, rates as numbers with
/// two decimals), and the totals per level.
pub fn league_xlsx(root: &AgencyCode, league: &League) -> Result<Vec<u8>, ExportError> {
    let s = Styles::new();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Bang xep hang")?;
    let rate_format = Format::new().set_num_format("0.00").set_border(rust_xlsxwriter::FormatBorder::Thin);
    sheet.write_string_with_format(
        0,
        0,
        format!("KẾT QUẢ THANH TOÁN KHÔNG DÙNG TIỀN MẶT VÀ TRỰC TUYẾN {}", league.period.label_vi().to_uppercase()),
        &s.title,
    )?;
    sheet.write_string_with_format(1, 0, "Đơn vị gốc:", &s.label)?;
    sheet.write_string_with_format(1, 1, root.as_str(), &s.strong)?;
    let header_row = 3u32;
    for (col, title) in LEAGUE_HEADERS.iter().enumerate() {
        sheet.write_string_with_format(header_row, u16::try_from(col).unwrap_or(0), *title, &s.header)?;
    }
    let numeric = [4usize, 5, 6, 8, 17, 18];
    let rates = [7usize, 9, 10, 11, 13, 14, 15, 16];
    let mut row_index = header_row + 1;
    for row in &league.rows {
        for (col, cell) in row_cells(row, league.period).iter().enumerate() {
            let c = u16::try_from(col).unwrap_or(0);
            if numeric.contains(&col) {
                let n: u32 = cell.parse().unwrap_or(0);
                sheet.write_number_with_format(row_index, c, n, &s.count)?;
            } else if rates.contains(&col) && !cell.is_empty() {
                let value: Decimal = cell.parse().unwrap_or_default();
                // The cell shows the two-decimal rate the CSV has (an f64 is what XLSX stores).
                let shown: f64 = value.try_into().unwrap_or_default();
                sheet.write_number_with_format(row_index, c, shown, &rate_format)?;
            } else {
                sheet.write_string_with_format(row_index, c, cell, &s.text)?;
            }
        }
        row_index += 1;
    }
    for total in &league.totals {
        sheet.write_string_with_format(row_index, 0, total.level.label_vi(), &s.total_text)?;
        sheet.write_string_with_format(
            row_index,
            2,
            format!(
                "Tổng {} ({} đơn vị; đạt {}, không đạt {})",
                total.level.label_vi(),
                total.agencies,
                total.met,
                total.not_met
            ),
            &s.total_text,
        )?;
        sheet.write_number_with_format(row_index, 5, total.counts.cases, &s.total_count)?;
        sheet.write_number_with_format(row_index, 6, total.counts.cashless, &s.total_count)?;
        sheet.write_number_with_format(row_index, 8, total.counts.online, &s.total_count)?;
        for (col, rate) in [(7u16, total.cashless_rate), (9, total.online_rate)] {
            if let Some(rate) = rate {
                let shown: f64 = rate.try_into().unwrap_or_default();
                sheet.write_number_with_format(row_index, col, shown, &rate_format)?;
            }
        }
        row_index += 1;
    }
    sheet.set_column_width(2, 36)?;
    sheet.set_column_width(3, 14)?;
    sheet.set_freeze_panes(header_row + 1, 3)?;
    Ok(workbook.save_to_buffer()?)
}

// --- the printable announcement ----------------------------------------------------------------

fn html_response(body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn announcement(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<LeagueQuery>) -> Response {
    let principal = match caller(&state, &headers, query.token.as_deref()) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let (root, period, _) = match league_request(&query) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let league = match league_table(&state.context, &principal, &root, period, None).await {
        Ok(league) => league,
        Err(error) => return oversight_problem(error),
    };
    let root_name = league
        .rows
        .iter()
        .find(|r| r.entry.agency_code == root)
        .map_or_else(|| root.to_string(), |r| r.entry.name.clone());
    let mut charts = Vec::new();
    for total in &league.totals {
        if total.level == AgencyLevel::Province {
            continue;
        }
        let series = match rate_series(&state.context, &principal, &root, period.last_month(), Some(total.level)).await
        {
            Ok(series) => series,
            Err(error) => return oversight_problem(error),
        };
        charts.push(rate_chart(&format!("{}: tỷ lệ theo tháng", total.level.label_vi()), &series));
    }
    let today = vietnam_time::date_of(state.clock.now());
    html_response(render_announcement(&root_name, &league, &charts, today))
}

/// The rate chart of a series: cashless and online per month, with their target lines.
pub fn rate_chart(title: &str, series: &[crate::oversight::RatePoint]) -> Markup {
    let labels: Vec<String> =
        series.iter().map(|p| format!("{:02}/{}", p.month.month(), p.month.year() % 100)).collect();
    let lines = [
        Line {
            name: "Không dùng tiền mặt".into(),
            color: charts::BLUE,
            values: series.iter().map(|p| p.counts.cashless_rate()).collect(),
            dashed: false,
        },
        Line {
            name: "Trực tuyến".into(),
            color: charts::GREEN,
            values: series.iter().map(|p| p.counts.online_rate()).collect(),
            dashed: false,
        },
        Line {
            name: "Chỉ tiêu KDTM".into(),
            color: charts::BLUE,
            values: series.iter().map(|p| p.cashless_target).collect(),
            dashed: true,
        },
        Line {
            name: "Chỉ tiêu trực tuyến".into(),
            color: charts::GREEN,
            values: series.iter().map(|p| p.online_target).collect(),
            dashed: true,
        },
    ];
    charts::percent_lines(title, &labels, &lines)
}

const ANNOUNCEMENT_STYLE: &str = "
@page { size: A4; margin: 15mm 15mm 15mm 20mm; }
body { font-family: 'Times New Roman', 'Liberation Serif', serif; font-size: 12pt; color: #000; margin: 0; }
.paper { max-width: 180mm; margin: 0 auto; padding: 8mm 0; }
.head { display: flex; justify-content: space-between; text-align: center; font-size: 11pt; }
.head .org { font-weight: bold; text-transform: uppercase; }
.head .nation { font-weight: bold; }
.head .motto { font-weight: bold; text-decoration: underline; }
.place { text-align: right; font-style: italic; margin: 4mm 0; }
h1 { text-align: center; font-size: 14pt; margin: 6mm 0 1mm; }
.subtitle { text-align: center; font-style: italic; margin-bottom: 5mm; }
h2 { font-size: 12.5pt; margin: 6mm 0 2mm; }
h3 { font-size: 12pt; margin: 3mm 0 1mm; }
table { border-collapse: collapse; width: 100%; font-size: 10.5pt; margin-bottom: 2mm; }
th, td { border: 1px solid #000; padding: 1mm 1.5mm; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.none { font-style: italic; }
.summary td { font-weight: bold; }
.chart svg { width: 100%; height: auto; }
.sign { display: flex; justify-content: flex-end; margin-top: 10mm; text-align: center; }
.sign div { width: 70mm; font-weight: bold; }
.note { font-size: 10pt; font-style: italic; margin-top: 4mm; }
";

fn level_rows(rows: &[&LeagueRow]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Hạng" } th { "Đơn vị" } th { "Số hồ sơ" } th { "KDTM (%)" } th { "Trực tuyến (%)" }
                th { "Chỉ tiêu (%)" } th { "So kỳ trước (điểm %)" } th { "So cùng kỳ (điểm %)" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td.n { (r.rank) }
                        td { (r.entry.name) " (" (r.entry.agency_code) ")" }
                        td.n { (r.entry.counts.cases) }
                        td.n { (rate_text(r.cashless_rate).unwrap_or_else(|| "–".into())) }
                        td.n { (rate_text(r.online_rate).unwrap_or_else(|| "–".into())) }
                        td.n { (r.target.as_ref().map_or_else(|| "–".to_owned(), |t| format!("{:.0} / {:.0}", t.cashless_percent.as_decimal(), t.online_percent.as_decimal()))) }
                        td.n { (rate_text(r.cashless_change_vs_previous).unwrap_or_else(|| "–".into())) }
                        td.n { (rate_text(r.cashless_change_vs_last_year).unwrap_or_else(|| "–".into())) }
                    }
                }
            }
        }
    }
}

/// The announcement: per level, the agencies that met their targets ("đạt"), those that did
/// not ("không đạt") and those not judged, each group by rank; the level's totals; the charts.
pub fn render_announcement(root_name: &str, league: &League, charts: &[Markup], today: NaiveDate) -> String {
    let title = format!(
        "THÔNG BÁO KẾT QUẢ THANH TOÁN TRỰC TUYẾN VÀ KHÔNG DÙNG TIỀN MẶT {}",
        league.period.label_vi().to_uppercase()
    );
    let markup = html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(ANNOUNCEMENT_STYLE)) }
            }
            body { main.paper {
                div.head {
                    div { div.org { (root_name) } }
                    div { div.nation { "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" } div.motto { "Độc lập - Tự do - Hạnh phúc" } }
                }
                p.place { "ngày " (today.format("%d")) " tháng " (today.format("%m")) " năm " (today.format("%Y")) }
                h1 { (title) }
                p.subtitle { "(Tỷ lệ tính trên số hồ sơ đã thanh toán đủ phí, lệ phí trong kỳ; chỉ tiêu theo cấp, đang áp dụng ở tháng cuối kỳ)" }
                @for (index, total) in league.totals.iter().enumerate() {
                    @let rows: Vec<&LeagueRow> = league.rows.iter().filter(|r| r.entry.level == total.level).collect();
                    @let met: Vec<&LeagueRow> = rows.iter().copied().filter(|r| r.met == Some(true)).collect();
                    @let not_met: Vec<&LeagueRow> = rows.iter().copied().filter(|r| r.met == Some(false)).collect();
                    @let unjudged: Vec<&LeagueRow> = rows.iter().copied().filter(|r| r.met.is_none()).collect();
                    h2 { (roman(index + 1)) ". " (total.level.label_vi()) " — " (total.agencies) " đơn vị" }
                    table.summary { tbody { tr {
                        td { "Tổng số hồ sơ: " (total.counts.cases) }
                        td { "Không dùng tiền mặt: " (total.counts.cashless) " (" (rate_text(total.cashless_rate).unwrap_or_else(|| "–".into())) "%)" }
                        td { "Trực tuyến: " (total.counts.online) " (" (rate_text(total.online_rate).unwrap_or_else(|| "–".into())) "%)" }
                        td { "Đạt: " (total.met) " · Không đạt: " (total.not_met) }
                    } } }
                    h3 { "1. Các đơn vị đạt chỉ tiêu (" (met.len()) ")" }
                    @if met.is_empty() { p.none { "Không có." } } @else { (level_rows(&met)) }
                    h3 { "2. Các đơn vị không đạt chỉ tiêu (" (not_met.len()) ")" }
                    @if not_met.is_empty() { p.none { "Không có." } } @else { (level_rows(&not_met)) }
                    @if !unjudged.is_empty() {
                        h3 { "3. Không xếp loại: chưa giao chỉ tiêu hoặc không phát sinh hồ sơ (" (unjudged.len()) ")" }
                        (level_rows(&unjudged))
                    }
                }
                @if !charts.is_empty() {
                    h2 { "Biểu đồ" }
                    @for chart in charts { div.chart { (chart) } }
                }
                p.note { "Đạt: tỷ lệ không dùng tiền mặt và tỷ lệ trực tuyến đều bằng hoặc cao hơn chỉ tiêu (so sánh trên phân số chính xác; tỷ lệ hiển thị làm tròn 2 chữ số thập phân). Nguồn: sổ thu phí, lệ phí feeledger." }
                div.sign { div { "NGƯỜI LẬP" br; br; br; br; "(Ký, ghi rõ họ tên)" } }
            } }
        }
    };
    markup.into_string()
}

fn roman(n: usize) -> &'static str {
    ["I", "II", "III", "IV", "V", "VI"].get(n.saturating_sub(1)).copied().unwrap_or("·")
}

// --- charts ------------------------------------------------------------------------------------

fn svg_response(markup: Markup) -> Response {
    let mut response = markup.into_string().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /charts/rates.svg?root=&month=&level=`: the subtree's cashless and online rates for the
/// twelve months up to `month`, with the target lines of `level` (when given).
async fn rates_chart(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<LeagueQuery>) -> Response {
    let principal = match caller(&state, &headers, query.token.as_deref()) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let (root, period, level) = match league_request(&query) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    match rate_series(&state.context, &principal, &root, period.last_month(), level).await {
        Ok(series) => {
            let title = match level {
                Some(level) => format!("{}: tỷ lệ theo tháng", level.label_vi()),
                None => "Tỷ lệ theo tháng (toàn bộ đơn vị)".to_owned(),
            };
            svg_response(rate_chart(&title, &series))
        }
        Err(error) => oversight_problem(error),
    }
}

#[derive(Debug, Deserialize)]
pub struct AgencyChartQuery {
    agency: String,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    token: Option<String>,
}

/// The agency of a finance chart, if the caller may read its money (finance, auditor, admin).
fn money_reader(state: &AppState, headers: &HeaderMap, query: &AgencyChartQuery) -> Result<AgencyCode, Refused> {
    let principal = caller(state, headers, query.token.as_deref())?;
    let agency = AgencyCode::parse(query.agency.trim())
        .map_err(|e| Box::new(problem(StatusCode::BAD_REQUEST, "VALIDATION", e.to_string())))?;
    if principal.may(Action::ReadReports, Scope::Agency(&agency)) {
        Ok(agency)
    } else {
        Err(Box::new(problem(StatusCode::FORBIDDEN, "FORBIDDEN", "your token does not allow this chart")))
    }
}

fn days(state: &AppState, query: &AgencyChartQuery) -> Result<(NaiveDate, NaiveDate), Refused> {
    let today = vietnam_time::date_of(state.clock.now());
    let to = query.to.unwrap_or(today);
    let from = query.from.unwrap_or(to - Duration::days(29));
    if from > to || (to - from).num_days() > 366 {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "from must be before to, at most a year apart",
        )));
    }
    Ok((from, to))
}

/// `GET /charts/collected.svg?agency=&from=&to=`: money received per day, stacked by channel.
async fn collected_chart(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AgencyChartQuery>,
) -> Response {
    let (agency, (from, to)) = match money_reader(&state, &headers, &query).and_then(|a| Ok((a, days(&state, &query)?)))
    {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    state.runner.wait_for("payments", std::time::Duration::from_secs(2)).await;
    let payments =
        match feeledger_projections::payments::payments_between(state.runner.documents(), &agency, from, to).await {
            Ok(p) => p,
            Err(error) => return oversight_problem(OversightError::Projection(error)),
        };
    let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let channels = [
        (PaymentChannel::Vietqr, charts::BLUE),
        (PaymentChannel::Ewallet, charts::PURPLE),
        (PaymentChannel::PaymentPlatform, charts::GREEN),
        (PaymentChannel::Pos, charts::ORANGE),
        (PaymentChannel::Cash, charts::GREY),
    ];
    let stacks: Vec<Stack> = channels
        .iter()
        .map(|(channel, color)| Stack {
            name: crate::labels::channel_label(*channel).to_owned(),
            color,
            values: dates
                .iter()
                .map(|d| {
                    payments
                        .iter()
                        .filter(|p| p.received_on == *d && p.channel == *channel)
                        .map(|p| p.amount.dong())
                        .fold(0i64, i64::saturating_add)
                })
                .collect(),
        })
        .filter(|s| s.values.iter().any(|v| *v > 0))
        .collect();
    let labels: Vec<String> = dates.iter().map(|d| d.format("%d/%m").to_string()).collect();
    svg_response(charts::stacked_bars("Tiền thu theo ngày và kênh thanh toán", &labels, &stacks))
}

/// `GET /charts/overdue.svg?agency=&from=&to=`: per fee, the money owed to the budget that is
/// overdue and that is not yet due.
async fn overdue_chart(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AgencyChartQuery>,
) -> Response {
    let (agency, (from, to)) = match money_reader(&state, &headers, &query).and_then(|a| Ok((a, days(&state, &query)?)))
    {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let today = vietnam_time::date_of(state.clock.now());
    state.runner.wait_for("treasury", std::time::Duration::from_secs(2)).await;
    let report = match state.context.treasury.report(&agency, from, to, today).await {
        Ok(report) => report,
        Err(error) => return oversight_problem(OversightError::Projection(error)),
    };
    let labels: Vec<String> = report.rows.iter().map(|r| r.fee_code.to_string()).collect();
    let overdue: Vec<i64> = report.rows.iter().map(|r| r.overdue.dong()).collect();
    let not_due: Vec<i64> = report.rows.iter().map(|r| r.outstanding.dong().saturating_sub(r.overdue.dong())).collect();
    let stacks = [
        Stack { name: "Quá hạn nộp".into(), color: charts::RED, values: overdue },
        Stack { name: "Chưa đến hạn".into(), color: charts::ORANGE, values: not_due },
    ];
    svg_response(charts::stacked_bars("Số phải nộp ngân sách chưa nộp, theo khoản thu", &labels, &stacks))
}
