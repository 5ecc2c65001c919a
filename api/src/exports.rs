//! Treasury and reconciliation reports as CSV and XLSX downloads.
//!
//! Finance staff live in spreadsheets, so the files are made for Excel and LibreOffice as they
//! are used in Vietnam:
//! - Vietnamese headers and labels (kinds, channels, exception kinds), never enum names;
//! - CSV in UTF-8 **with a byte-order mark**: without it Excel reads the file in the ANSI code
//!   page and "Lệ phí" becomes mojibake. Amounts are plain whole đồng (`3000`, no separator, so
//!   no locale misreads `3.000` as three), dates are ISO (`2026-11-20`);
//! - XLSX amounts are **numbers** with a `#,##0` format (text would defeat SUM and pivot
//!   tables) and dates are real dates shown `dd/mm/yyyy`.
//!
//! Nothing here reads the clock: the same report gives the same bytes, and the XLSX creation
//! time recorded in the file is the report's own date.

use std::borrow::Cow;

use chrono::NaiveDate;
use feeledger_domain::batch_matching::BatchKind;
use feeledger_domain::money::{MoneyError, Vnd};
use feeledger_domain::reconciliation::{DayReconciliation, OutgoingKind, Side};
use feeledger_domain::treasury::{OldestUnremitted, TreasuryReport, TreasuryRow};
use rust_xlsxwriter::{
    ColNum, Color, DocProperties, Format, FormatAlign, FormatBorder, RowNum, Workbook, Worksheet, XlsxError,
};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("could not write the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("could not write the XLSX: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("a total of the report is out of range: {0}")]
    Amount(#[from] MoneyError),
}

/// What Excel needs at the start of a CSV to read it as UTF-8.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

const TREASURY_SHEET: &str = "Báo cáo nộp KBNN";
const REMITTANCES_SHEET: &str = "Đợt nộp";
const RECONCILIATION_SHEET: &str = "Đối soát";

const TREASURY_HEADERS: [&str; 9] =
    ["Mã phí/lệ phí", "Tên", "Loại", "Đã thu", "Để lại", "Phải nộp NSNN", "Đã nộp KBNN", "Còn phải nộp", "Nộp thừa"];
const REMITTANCE_HEADERS: [&str; 5] = ["Số chứng từ", "Ngày nộp", "Tính đến ngày", "Số tiền", "Số hồ sơ"];
const LINE_HEADERS: [&str; 8] =
    ["Loại dòng", "Phía", "Mã hồ sơ", "Số tiền", "Tham chiếu", "Mã dòng sao kê", "Ngày", "Số ngày tồn"];
const CHANNEL_HEADERS: [&str; 3] = ["Kênh", "Số giao dịch", "Số tiền"];
const TOTAL_LABEL: &str = "Tổng cộng";
const MATCH_LABEL: &str = "Khớp";

use crate::labels::{channel_label, exception_kind_label, fee_kind_label};

fn side_label(side: Side) -> &'static str {
    match side {
        Side::Ledger => "Sổ",
        Side::Bank => "Sao kê",
    }
}

/// A match is on both sides at once.
const BOTH_SIDES_LABEL: &str = "Sổ và sao kê";

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// The treasury report as one table: a row per fee code, then the total row ("Tổng cộng").
pub fn treasury_csv(report: &TreasuryReport) -> Result<Vec<u8>, ExportError> {
    let mut csv = csv_writer();
    csv.write_record(TREASURY_HEADERS)?;
    for row in &report.rows {
        let mut record =
            vec![csv_text(row.fee_code.as_str()), csv_text(&row.fee_name), fee_kind_label(row.kind).into()];
        record.extend(treasury_amounts(row).map(|a| Cow::Owned(a.dong().to_string())));
        csv.write_record(record.iter().map(|field| field.as_bytes()))?;
    }
    let mut total = vec![Cow::Borrowed(TOTAL_LABEL), Cow::Borrowed(""), Cow::Borrowed("")];
    total.extend(treasury_amounts(&report.total).map(|a| Cow::Owned(a.dong().to_string())));
    csv.write_record(total.iter().map(|field| field.as_bytes()))?;
    finish_csv(csv)
}

/// The day's reconciliation as one table of lines: the exceptions (what finance must act on),
/// then the matches. A CSV holds one table well and sections badly, so the summary and the
/// per-channel totals are only in the XLSX; `_agency_name` is taken for symmetry with
/// [`reconciliation_xlsx`] and is not written (a title row would break the header row).
pub fn reconciliation_csv(report: &DayReconciliation, _agency_name: &str) -> Result<Vec<u8>, ExportError> {
    let mut csv = csv_writer();
    csv.write_record(LINE_HEADERS)?;
    let lines = [exception_lines(report), match_lines(report), batch_lines(report), debit_lines(report)];
    for line in lines.iter().flatten() {
        let record = [
            Cow::Borrowed(line.kind),
            Cow::Borrowed(line.side),
            csv_text(line.case_code.unwrap_or_default()),
            Cow::Owned(line.amount.dong().to_string()),
            csv_text(line.reference.unwrap_or_default()),
            csv_text(line.line_id.unwrap_or_default()),
            Cow::Owned(iso_date(line.on)),
            Cow::Owned(line.age_days.map(|d| d.to_string()).unwrap_or_default()),
        ];
        csv.write_record(record.iter().map(|field| field.as_bytes()))?;
    }
    finish_csv(csv)
}

pub(crate) fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().delimiter(b',').from_writer(UTF8_BOM.to_vec())
}

pub(crate) fn finish_csv(csv: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ExportError> {
    csv.into_inner().map_err(|e| ExportError::Csv(e.into_error().into()))
}

/// Text for a CSV cell. A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a
/// formula, and some of this text comes from outside (bank references, fee names typed by an
/// administrator), so such a value is prefixed with `'`, which Excel shows as text (the OWASP
/// advice against CSV injection).
pub(crate) fn csv_text(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

pub(crate) fn iso_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The amount columns of a treasury row, in header order.
fn treasury_amounts(row: &TreasuryRow) -> [Vnd; 6] {
    [row.collected, row.retained, row.payable_to_budget, row.remitted, row.outstanding, row.over_remitted]
}

/// One line of the reconciliation table, a match or an exception.
#[derive(Debug)]
struct Line<'a> {
    kind: &'static str,
    side: &'static str,
    case_code: Option<&'a str>,
    amount: Vnd,
    reference: Option<&'a str>,
    line_id: Option<&'a str>,
    on: NaiveDate,
    /// Only exceptions age: a match is settled.
    age_days: Option<i64>,
}

fn exception_lines(report: &DayReconciliation) -> Vec<Line<'_>> {
    report
        .exceptions
        .iter()
        .map(|e| Line {
            kind: exception_kind_label(e.kind),
            side: side_label(e.side),
            case_code: e.case_code.as_ref().map(|c| c.as_str()),
            amount: e.amount,
            reference: e.reference.as_deref(),
            line_id: e.line_id.as_deref(),
            on: e.on,
            age_days: Some(e.age_days),
        })
        .collect()
}

/// A match carries no reference of its own, and its only day is the statement's booking day.
fn match_lines(report: &DayReconciliation) -> Vec<Line<'_>> {
    report
        .matches
        .iter()
        .map(|m| Line {
            kind: MATCH_LABEL,
            side: BOTH_SIDES_LABEL,
            case_code: Some(m.case_code.as_str()),
            amount: m.amount,
            reference: None,
            line_id: Some(m.line_id.as_str()),
            on: m.booked_on,
            age_days: None,
        })
        .collect()
}

/// Each card settlement or cash deposit booked on the day (both sides: the bank's amount), and
/// after a settlement with a fee the acquirer's fee as its own line, so that per batch the ledger
/// amount is the credit plus its fee.
/// The day's debits: what each paid (a refund, a remittance), or that nothing explains it.
/// An unexplained debit ages like an exception: someone must find out what it was.
fn debit_lines(report: &DayReconciliation) -> Vec<Line<'_>> {
    report
        .debits
        .iter()
        .map(|d| Line {
            kind: match d.explained_by {
                Some(OutgoingKind::Refund) => "Chi hoàn trả",
                Some(OutgoingKind::Remittance) => "Nộp ngân sách (KBNN)",
                None => "Ghi nợ chưa rõ",
            },
            side: if d.explained_by.is_some() { BOTH_SIDES_LABEL } else { "Sao kê" },
            case_code: None,
            amount: d.amount,
            reference: d.reference.as_deref(),
            line_id: Some(d.line_id.as_str()),
            on: d.booked_on,
            age_days: d.explained_by.is_none().then(|| (report.date - d.booked_on).num_days().max(0)),
        })
        .collect()
}

fn batch_lines(report: &DayReconciliation) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    for batch in &report.batches {
        let kind = match batch.kind {
            BatchKind::CardSettlement => "Quyết toán thẻ (POS)",
            BatchKind::CashDeposit => "Nộp tiền mặt",
        };
        lines.push(Line {
            kind,
            side: BOTH_SIDES_LABEL,
            case_code: None,
            amount: batch.bank_amount,
            reference: None,
            line_id: Some(batch.line_id.as_str()),
            on: batch.booked_on,
            age_days: None,
        });
        if !batch.fee.is_zero() {
            lines.push(Line {
                kind: "Phí quyết toán thẻ",
                side: "Sổ",
                case_code: None,
                amount: batch.fee,
                reference: None,
                line_id: Some(batch.line_id.as_str()),
                on: batch.booked_on,
                age_days: None,
            });
        }
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// XLSX
// ---------------------------------------------------------------------------------------------

/// The treasury report as a workbook: the report sheet ("Báo cáo nộp KBNN") and the deposits
/// made to the treasury ("Đợt nộp").
pub fn treasury_xlsx(report: &TreasuryReport) -> Result<Vec<u8>, ExportError> {
    let styles = Styles::new();
    let mut workbook = Workbook::new();
    workbook.set_properties(
        &DocProperties::new()
            .set_title("Báo cáo thu, nộp phí, lệ phí vào ngân sách nhà nước")
            .set_company(report.agency_name.as_str())
            .set_creation_datetime(&report.to),
    );
    treasury_sheet(workbook.add_worksheet(), report, &styles)?;
    remittances_sheet(workbook.add_worksheet(), report, &styles)?;
    Ok(workbook.save_to_buffer()?)
}

fn treasury_sheet(sheet: &mut Worksheet, report: &TreasuryReport, s: &Styles) -> Result<(), ExportError> {
    sheet.set_name(TREASURY_SHEET)?;
    let last_col = last_col(&TREASURY_HEADERS);
    sheet.merge_range(0, 0, 0, last_col, "BÁO CÁO THU, NỘP PHÍ, LỆ PHÍ VÀO NGÂN SÁCH NHÀ NƯỚC", &s.title)?;
    sheet.set_row_height(0, 24)?;
    sheet.write_string_with_format(1, 0, "Đơn vị:", &s.label)?;
    sheet.write_string_with_format(1, 1, &report.agency_name, &s.strong)?;
    sheet.write_string_with_format(2, 0, "Mã đơn vị:", &s.label)?;
    sheet.write_string(2, 1, report.agency_code.as_str())?;
    sheet.write_string_with_format(3, 0, "Từ ngày:", &s.label)?;
    sheet.write_date_with_format(3, 1, report.from, &s.date_plain)?;
    sheet.write_string_with_format(4, 0, "Đến ngày:", &s.label)?;
    sheet.write_date_with_format(4, 1, report.to, &s.date_plain)?;
    let mut row: RowNum = 5;
    if let Some(oldest) = &report.oldest_unremitted {
        let format = if oldest.overdue_days > 0 { &s.warning } else { &s.note };
        sheet.write_string_with_format(row, 0, oldest_unremitted_line(oldest), format)?;
        row += 1;
    }
    sheet.write_string_with_format(row, last_col, "Đơn vị tính: đồng", &s.unit_note)?;
    row += 1;

    let header_row = row;
    write_header(sheet, header_row, &TREASURY_HEADERS, s)?;
    for r in &report.rows {
        row += 1;
        sheet.write_string_with_format(row, 0, r.fee_code.as_str(), &s.text)?;
        sheet.write_string_with_format(row, 1, &r.fee_name, &s.text)?;
        sheet.write_string_with_format(row, 2, fee_kind_label(r.kind), &s.text)?;
        for (i, amount) in treasury_amounts(r).into_iter().enumerate() {
            write_money(sheet, row, amount_col(3, i), amount, &s.money)?;
        }
    }
    row += 1;
    sheet.write_string_with_format(row, 0, TOTAL_LABEL, &s.total_text)?;
    sheet.write_blank(row, 1, &s.total_text)?;
    sheet.write_blank(row, 2, &s.total_text)?;
    for (i, amount) in treasury_amounts(&report.total).into_iter().enumerate() {
        write_money(sheet, row, amount_col(3, i), amount, &s.total_money)?;
    }

    for (col, width) in [16, 42, 9, 15, 15, 15, 15, 15, 15].into_iter().enumerate() {
        sheet.set_column_width(col_num(col), width)?;
    }
    sheet.set_freeze_panes(header_row + 1, 0)?;
    sheet.set_repeat_rows(header_row, header_row)?;
    sheet.set_landscape().set_paper_size(A4).set_print_fit_to_pages(1, 0);
    Ok(())
}

fn remittances_sheet(sheet: &mut Worksheet, report: &TreasuryReport, s: &Styles) -> Result<(), ExportError> {
    sheet.set_name(REMITTANCES_SHEET)?;
    let last_col = last_col(&REMITTANCE_HEADERS);
    sheet.merge_range(0, 0, 0, last_col, "CÁC ĐỢT NỘP TIỀN VÀO KHO BẠC NHÀ NƯỚC", &s.title)?;
    sheet.set_row_height(0, 24)?;
    sheet.write_string_with_format(1, 0, "Đơn vị:", &s.label)?;
    sheet.write_string_with_format(1, 1, &report.agency_name, &s.strong)?;
    sheet.write_string_with_format(2, last_col, "Đơn vị tính: đồng", &s.unit_note)?;

    let header_row: RowNum = 3;
    write_header(sheet, header_row, &REMITTANCE_HEADERS, s)?;
    let mut row = header_row;
    for remittance in &report.remittances {
        row += 1;
        sheet.write_string_with_format(row, 0, &remittance.voucher_number, &s.text)?;
        sheet.write_date_with_format(row, 1, remittance.remitted_on, &s.date)?;
        sheet.write_date_with_format(row, 2, remittance.up_to, &s.date)?;
        write_money(sheet, row, 3, remittance.amount, &s.money)?;
        sheet.write_number_with_format(row, 4, f64::from(remittance.cases), &s.count)?;
    }
    row += 1;
    sheet.write_string_with_format(row, 0, TOTAL_LABEL, &s.total_text)?;
    sheet.write_blank(row, 1, &s.total_text)?;
    sheet.write_blank(row, 2, &s.total_text)?;
    write_money(sheet, row, 3, Vnd::sum(report.remittances.iter().map(|r| r.amount))?, &s.total_money)?;
    // Cases are not added up: one case's money may go out in two deposits.
    sheet.write_blank(row, 4, &s.total_text)?;

    for (col, width) in [20, 13, 14, 16, 10].into_iter().enumerate() {
        sheet.set_column_width(col_num(col), width)?;
    }
    sheet.set_freeze_panes(header_row + 1, 0)?;
    sheet.set_paper_size(A4).set_print_fit_to_pages(1, 0);
    Ok(())
}

/// "Khoản chưa nộp lâu nhất: thu ngày 20/10/2026, hạn nộp 05/11/2026, quá hạn 3 ngày".
fn oldest_unremitted_line(oldest: &OldestUnremitted) -> String {
    let overdue = if oldest.overdue_days > 0 {
        format!("quá hạn {} ngày", oldest.overdue_days)
    } else {
        "chưa đến hạn".to_owned()
    };
    format!(
        "Khoản chưa nộp lâu nhất: thu ngày {}, hạn nộp {}, {overdue} (số tiền {} đồng)",
        oldest.collected_on.format("%d/%m/%Y"),
        oldest.due_on.format("%d/%m/%Y"),
        oldest.amount.grouped(),
    )
}

/// The day's reconciliation as a workbook of one sheet ("Đối soát"): the summary, the totals
/// per channel, the exceptions, then the matches.
pub fn reconciliation_xlsx(report: &DayReconciliation, agency_name: &str) -> Result<Vec<u8>, ExportError> {
    let s = Styles::new();
    let mut workbook = Workbook::new();
    workbook.set_properties(
        &DocProperties::new()
            .set_title("Bảng đối soát thu phí, lệ phí với sao kê ngân hàng")
            .set_company(agency_name)
            .set_creation_datetime(&report.date),
    );
    let sheet = workbook.add_worksheet();
    sheet.set_name(RECONCILIATION_SHEET)?;
    let last_col = last_col(&LINE_HEADERS);
    sheet.merge_range(0, 0, 0, last_col, "BẢNG ĐỐI SOÁT THU PHÍ, LỆ PHÍ VỚI SAO KÊ NGÂN HÀNG", &s.title)?;
    sheet.set_row_height(0, 24)?;
    sheet.write_string_with_format(1, 0, "Đơn vị:", &s.label)?;
    sheet.write_string_with_format(1, 1, agency_name, &s.strong)?;
    sheet.write_string_with_format(2, 0, "Mã đơn vị:", &s.label)?;
    sheet.write_string(2, 1, report.agency_code.as_str())?;
    sheet.write_string_with_format(3, 0, "Ngày đối soát:", &s.label)?;
    sheet.write_date_with_format(3, 1, report.date, &s.date_plain)?;
    sheet.write_string_with_format(4, last_col, "Đơn vị tính: đồng", &s.unit_note)?;

    // The summary: each side's total is its matched total plus its exceptions, to the đồng.
    let summary = [
        ("Tổng trên sổ", report.ledger_total),
        ("Tổng trên sao kê", report.bank_total),
        ("Tổng khớp", report.matched_total),
        ("Ngoại lệ phía sổ", report.exceptions_total(Side::Ledger)),
        ("Ngoại lệ phía sao kê", report.exceptions_total(Side::Bank)),
    ];
    let mut row: RowNum = 5;
    sheet.write_string_with_format(row, 0, "Số giao dịch khớp", &s.summary_label)?;
    sheet.write_number_with_format(row, 1, count(report.matches.len()), &s.count)?;
    for (label, amount) in summary {
        row += 1;
        sheet.write_string_with_format(row, 0, label, &s.summary_label)?;
        write_money(sheet, row, 1, amount, &s.money)?;
    }

    // Every payment of the day per channel; cash and card are reported here, not matched.
    row += 2;
    sheet.write_string_with_format(row, 0, "Tổng theo kênh thanh toán", &s.section)?;
    row += 1;
    write_header(sheet, row, &CHANNEL_HEADERS, &s)?;
    for channel in &report.per_channel {
        row += 1;
        sheet.write_string_with_format(row, 0, channel_label(channel.channel), &s.text)?;
        sheet.write_number_with_format(row, 1, f64::from(channel.count), &s.count)?;
        write_money(sheet, row, 2, channel.total, &s.money)?;
    }
    row += 1;
    let channel_count: u64 = report.per_channel.iter().map(|c| u64::from(c.count)).sum();
    sheet.write_string_with_format(row, 0, TOTAL_LABEL, &s.total_text)?;
    // Counts stay far below 2^53, so the f64 Excel stores is exact.
    sheet.write_number_with_format(row, 1, channel_count as f64, &s.total_count)?;
    write_money(sheet, row, 2, Vnd::sum(report.per_channel.iter().map(|c| c.total))?, &s.total_money)?;
    row += 1;
    sheet.write_string_with_format(
        row,
        0,
        "Tiền mặt và thẻ (POS) đối chiếu theo lô: mỗi lần nộp tiền mặt hoặc quyết toán thẻ với các khoản thu của nó.",
        &s.note,
    )?;

    row += 2;
    sheet.write_string_with_format(row, 0, "Các khoản chưa khớp (ngoại lệ)", &s.section)?;
    row = write_lines(sheet, row + 1, &exception_lines(report), "Không có ngoại lệ.", &s)?;
    row += 2;
    sheet.write_string_with_format(row, 0, "Các giao dịch đã khớp", &s.section)?;
    row = write_lines(sheet, row + 1, &match_lines(report), "Không có giao dịch khớp.", &s)?;
    row += 2;
    sheet.write_string_with_format(row, 0, "Khớp theo lô (quyết toán thẻ, nộp tiền mặt) và phí", &s.section)?;
    row = write_lines(sheet, row + 1, &batch_lines(report), "Không có khoản khớp theo lô.", &s)?;
    // Only a day whose statement has debits has this table (most days have none).
    if !report.debits.is_empty() {
        row += 2;
        sheet.write_string_with_format(row, 0, "Các khoản chi ra (ghi nợ trên sao kê)", &s.section)?;
        write_lines(sheet, row + 1, &debit_lines(report), "Không có khoản ghi nợ.", &s)?;
    }

    for (col, width) in [34, 16, 24, 16, 22, 18, 12, 12].into_iter().enumerate() {
        sheet.set_column_width(col_num(col), width)?;
    }
    sheet.set_landscape().set_paper_size(A4).set_print_fit_to_pages(1, 0);
    Ok(workbook.save_to_buffer()?)
}

/// A table of reconciliation lines from `header_row`; returns its last row.
fn write_lines(
    sheet: &mut Worksheet,
    header_row: RowNum,
    lines: &[Line<'_>],
    when_empty: &str,
    s: &Styles,
) -> Result<RowNum, ExportError> {
    write_header(sheet, header_row, &LINE_HEADERS, s)?;
    let mut row = header_row;
    if lines.is_empty() {
        row += 1;
        sheet.write_string_with_format(row, 0, when_empty, &s.note)?;
    }
    for line in lines {
        row += 1;
        let optional_text = |text: Option<&str>| text.unwrap_or_default().to_owned();
        sheet.write_string_with_format(row, 0, line.kind, &s.text)?;
        sheet.write_string_with_format(row, 1, line.side, &s.text)?;
        sheet.write_string_with_format(row, 2, optional_text(line.case_code), &s.text)?;
        write_money(sheet, row, 3, line.amount, &s.money)?;
        sheet.write_string_with_format(row, 4, optional_text(line.reference), &s.text)?;
        sheet.write_string_with_format(row, 5, optional_text(line.line_id), &s.text)?;
        sheet.write_date_with_format(row, 6, line.on, &s.date)?;
        match line.age_days {
            // Ages are a few days, far below 2^53: the f64 Excel stores is exact.
            Some(days) => sheet.write_number_with_format(row, 7, days as f64, &s.count)?,
            None => sheet.write_blank(row, 7, &s.text)?,
        };
    }
    Ok(row)
}

/// Paper size 9 is A4 in Excel's page setup.
pub(crate) const A4: u8 = 9;

pub(crate) fn write_header(sheet: &mut Worksheet, row: RowNum, headers: &[&str], s: &Styles) -> Result<(), XlsxError> {
    for (col, header) in headers.iter().enumerate() {
        sheet.write_string_with_format(row, col_num(col), *header, &s.header)?;
    }
    sheet.set_row_height(row, 30)?;
    Ok(())
}

/// Writes an amount as a number, so that SUM and pivot tables work on it.
pub(crate) fn write_money(
    sheet: &mut Worksheet,
    row: RowNum,
    col: ColNum,
    amount: Vnd,
    format: &Format,
) -> Result<(), XlsxError> {
    // Whole đồng, bounded by VND_MAX (< 2^53): the f64 Excel stores is exact.
    sheet.write_number_with_format(row, col, amount.dong() as f64, format)?;
    Ok(())
}

fn count(n: usize) -> f64 {
    // A count of matches is far below 2^53: the f64 Excel stores is exact.
    n as f64
}

pub(crate) fn col_num(index: usize) -> ColNum {
    ColNum::try_from(index).unwrap_or(ColNum::MAX)
}

pub(crate) fn last_col(headers: &[&str]) -> ColNum {
    col_num(headers.len().saturating_sub(1))
}

pub(crate) fn amount_col(first: ColNum, index: usize) -> ColNum {
    first.saturating_add(col_num(index))
}

/// The cell formats of a workbook: sober, bordered tables, bold headers and totals.
#[derive(Debug)]
pub(crate) struct Styles {
    pub(crate) title: Format,
    pub(crate) section: Format,
    pub(crate) label: Format,
    pub(crate) summary_label: Format,
    pub(crate) strong: Format,
    pub(crate) note: Format,
    pub(crate) warning: Format,
    pub(crate) unit_note: Format,
    pub(crate) date_plain: Format,
    pub(crate) header: Format,
    pub(crate) text: Format,
    pub(crate) money: Format,
    pub(crate) count: Format,
    pub(crate) date: Format,
    pub(crate) total_text: Format,
    pub(crate) total_money: Format,
    pub(crate) total_count: Format,
}

impl Styles {
    pub(crate) fn new() -> Self {
        const MONEY: &str = "#,##0";
        const DATE: &str = "dd/mm/yyyy";
        let cell = || Format::new().set_border(FormatBorder::Thin);
        let total = || cell().set_bold().set_background_color(Color::RGB(0xF2F2F2));
        Styles {
            title: Format::new().set_bold().set_font_size(14).set_align(FormatAlign::Center),
            section: Format::new().set_bold(),
            label: Format::new(),
            summary_label: cell(),
            strong: Format::new().set_bold(),
            note: Format::new().set_italic(),
            warning: Format::new().set_italic().set_font_color(Color::RGB(0x9C0006)),
            unit_note: Format::new().set_italic().set_align(FormatAlign::Right),
            date_plain: Format::new().set_num_format(DATE).set_align(FormatAlign::Left),
            header: cell()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_background_color(Color::RGB(0xD9D9D9)),
            text: cell(),
            money: cell().set_num_format(MONEY),
            count: cell().set_num_format(MONEY),
            date: cell().set_num_format(DATE).set_align(FormatAlign::Center),
            total_text: total(),
            total_money: total().set_num_format(MONEY),
            total_count: total().set_num_format(MONEY),
        }
    }
}

#[cfg(test)]
mod tests {
    use feeledger_domain::case_fees::PaymentChannel;
    use feeledger_domain::fee_schedule::FeeKind;
    use std::io::Cursor;

    use calamine::{Data, Range, Reader, Xlsx, open_workbook_from_rs};
    use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
    use feeledger_domain::reconciliation::{LedgerPayment, StatementCredit, reconcile};
    use feeledger_domain::treasury::RemittanceSummary;
    use uuid::Uuid;

    use super::*;

    fn vnd(dong: i64) -> Vnd {
        Vnd::new(dong).unwrap()
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn agency() -> AgencyCode {
        AgencyCode::parse("H34.22.6").unwrap()
    }

    fn row(code: &str, name: &str, kind: FeeKind, days: &[(i64, i64, i64, i64)]) -> TreasuryRow {
        let mut row = TreasuryRow::new(FeeCode::parse(code).unwrap(), name.into(), kind);
        for &(collected, retained, payable, remitted) in days {
            row.add(vnd(collected), vnd(retained), vnd(payable), vnd(remitted)).unwrap();
        }
        row
    }

    /// November 2026 at a district one-stop department: a lệ phí wholly for the budget, a phí
    /// that keeps 90%, and a phí whose rule was corrected after a deposit (over-remitted).
    fn treasury_report() -> TreasuryReport {
        let rows = vec![
            row("LP-HOTICH", "Lệ phí đăng ký hộ tịch", FeeKind::LePhi, &[(240_000, 0, 240_000, 200_000)]),
            row("P-SAOY", "Phí cấp bản sao trích lục hộ tịch", FeeKind::Phi, &[(48_000, 43_200, 4_800, 0)]),
            row("P-CHUNGTHUC", "Phí chứng thực bản sao từ bản chính", FeeKind::Phi, &[(30_000, 27_000, 3_000, 6_000)]),
        ];
        // Column by column: `TreasuryRow::add` would net one code's over-remittance against
        // another's outstanding, and the total row would no longer be the sum of its column.
        let sum = |f: fn(&TreasuryRow) -> Vnd| Vnd::sum(rows.iter().map(f)).unwrap();
        let total = TreasuryRow {
            collected: sum(|r| r.collected),
            retained: sum(|r| r.retained),
            payable_to_budget: sum(|r| r.payable_to_budget),
            remitted: sum(|r| r.remitted),
            outstanding: sum(|r| r.outstanding),
            over_remitted: sum(|r| r.over_remitted),
            ..TreasuryRow::new(FeeCode::parse("TOTAL").unwrap(), "Tổng cộng".into(), FeeKind::Phi)
        };
        let report = TreasuryReport {
            agency_code: agency(),
            agency_name: "UBND phường Thủ Dầu Một".into(),
            from: day(11, 1),
            to: day(11, 30),
            rows,
            total,
            oldest_unremitted: Some(OldestUnremitted {
                collected_on: day(10, 28),
                due_on: day(11, 5),
                overdue_days: 25,
                amount: vnd(40_000),
            }),
            next_deadline: None,
            remittances: vec![
                RemittanceSummary {
                    remittance_id: Uuid::from_u128(1),
                    voucher_number: "GNT-2026-0041".into(),
                    remitted_on: day(11, 5),
                    up_to: day(10, 31),
                    amount: vnd(150_000),
                    cases: 31,
                },
                RemittanceSummary {
                    remittance_id: Uuid::from_u128(2),
                    voucher_number: "GNT-2026-0047".into(),
                    remitted_on: day(11, 20),
                    up_to: day(11, 15),
                    amount: vnd(56_000),
                    cases: 9,
                },
            ],
        };
        assert!(report.invariants_hold());
        report
    }

    fn payment(n: u128, seq: u32, amount: i64, channel: PaymentChannel, bank_reference: Option<&str>) -> LedgerPayment {
        let case = format!("H34.22.6-261120-{seq:04}");
        LedgerPayment {
            payment_id: Uuid::from_u128(n),
            case_code: CaseCode::parse(&case).unwrap(),
            amount: vnd(amount),
            channel,
            received_on: day(11, 20),
            reference: case,
            bank_reference: bank_reference.map(str::to_owned),
            reconciled_line_id: None,
        }
    }

    fn credit(id: &str, amount: i64, d: u32, description: &str, bank_reference: Option<&str>) -> StatementCredit {
        StatementCredit {
            line_id: id.into(),
            booked_on: day(11, d),
            amount: vnd(amount),
            description: description.into(),
            bank_reference: bank_reference.map(str::to_owned),
        }
    }

    /// 20 November: two transfers matched by reference, one by amount the next morning, one
    /// paid in the ledger but not on the statement, an unknown credit, a mismatch, and cash.
    fn day_reconciliation() -> DayReconciliation {
        let payments = [
            payment(1, 1, 3_000, PaymentChannel::Vietqr, Some("FT26324001")),
            payment(2, 2, 8_000, PaymentChannel::Vietqr, None),
            payment(3, 3, 50_000, PaymentChannel::Ewallet, None),
            payment(4, 4, 5_000, PaymentChannel::Vietqr, None),
            payment(5, 5, 20_000, PaymentChannel::PaymentPlatform, Some("=HYPERLINK(\"x\")")),
            payment(6, 6, 100_000, PaymentChannel::Cash, None),
        ];
        let statement = [
            credit("L1", 3_000, 20, "CT DEN FT26324001", Some("FT26324001")),
            credit("L2", 8_000, 20, "MBVCB.99.H34.22.6-261120-0002.Thanh toan", None),
            credit("L3", 50_000, 21, "VI DIEN TU THANH TOAN", None),
            credit("L4", 120_000, 20, "nop tien", None),
            credit("L5", 2_000, 20, "=HYPERLINK(\"x\")", Some("=HYPERLINK(\"x\")")),
        ];
        let report = reconcile(&agency(), day(11, 20), &payments, &statement, day(11, 23));
        assert!(report.invariants_hold());
        assert!(!report.matches.is_empty() && !report.exceptions.is_empty());
        report
    }

    fn parse_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let body = bytes.strip_prefix(UTF8_BOM).expect("the CSV starts with a UTF-8 BOM");
        let mut reader = csv::Reader::from_reader(body);
        let headers = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let records = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
        (headers, records)
    }

    fn sheet(bytes: &[u8], name: &str) -> Range<Data> {
        let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
        workbook.worksheet_range(name).unwrap()
    }

    fn cell(range: &Range<Data>, row: u32, col: u32) -> &Data {
        range.get_value((row, col)).unwrap_or(&Data::Empty)
    }

    fn text(range: &Range<Data>, row: u32, col: u32) -> String {
        match cell(range, row, col) {
            Data::String(s) => s.clone(),
            Data::Empty => String::new(),
            other => panic!("({row}, {col}) should be text, is {other:?}"),
        }
    }

    /// The value of a numeric cell; fails on text, so an amount written as text is caught.
    fn number(range: &Range<Data>, row: u32, col: u32) -> i64 {
        match cell(range, row, col) {
            Data::Int(n) => *n,
            Data::Float(f) if f.fract() == 0.0 => *f as i64,
            other => panic!("({row}, {col}) should be a whole number, is {other:?}"),
        }
    }

    fn date(range: &Range<Data>, row: u32, col: u32) -> NaiveDate {
        match cell(range, row, col) {
            Data::DateTime(d) => d.as_datetime().unwrap().date(),
            other => panic!("({row}, {col}) should be a date, is {other:?}"),
        }
    }

    /// The first row whose column A holds `label`.
    fn row_of(range: &Range<Data>, label: &str) -> u32 {
        (0..range.height() as u32)
            .find(|&r| matches!(cell(range, r, 0), Data::String(s) if s == label))
            .unwrap_or_else(|| panic!("no row labelled {label:?}"))
    }

    fn headers_at(range: &Range<Data>, row: u32, width: usize) -> Vec<String> {
        (0..width as u32).map(|c| text(range, row, c)).collect()
    }

    fn save(name: &str, bytes: &[u8]) {
        let dir = std::env::temp_dir().join("feeledger-exports");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    #[test]
    fn the_treasury_csv_has_a_bom_vietnamese_headers_and_rows_that_add_up_to_the_total_row() {
        let report = treasury_report();
        let bytes = treasury_csv(&report).unwrap();
        save("bao-cao-nop-kbnn.csv", &bytes);
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let (headers, records) = parse_csv(&bytes);
        assert_eq!(headers, TREASURY_HEADERS);
        assert_eq!(records.len(), report.rows.len() + 1);
        assert_eq!(
            records[0],
            ["LP-HOTICH", "Lệ phí đăng ký hộ tịch", "Lệ phí", "240000", "0", "240000", "200000", "40000", "0"]
        );
        assert_eq!(&records[1][..6], ["P-SAOY", "Phí cấp bản sao trích lục hộ tịch", "Phí", "48000", "43200", "4800"]);
        let total = records.last().unwrap();
        assert_eq!(total[..3], ["Tổng cộng", "", ""]);
        for col in 3..9 {
            let sum: i64 = records[..records.len() - 1].iter().map(|r| r[col].parse::<i64>().unwrap()).sum();
            assert_eq!(total[col].parse::<i64>().unwrap(), sum, "column {}", headers[col]);
        }
        assert_eq!(total[3], "318000");
    }

    #[test]
    fn a_card_settlement_is_a_batch_line_and_its_fee_a_line_of_its_own() {
        let payments =
            [payment(1, 1, 600_000, PaymentChannel::Pos, None), payment(2, 2, 400_000, PaymentChannel::Pos, None)];
        let statement = [credit("S1", 989_000, 20, "TT POS MID 0001", None)];
        let report = reconcile(&agency(), day(11, 20), &payments, &statement, day(11, 21));
        assert_eq!(report.batches.len(), 1);
        let (_, records) = parse_csv(&reconciliation_csv(&report, "x").unwrap());
        let rows: Vec<(String, String, String)> =
            records.iter().map(|r| (r[0].clone(), r[3].clone(), r[5].clone())).collect();
        assert_eq!(
            rows,
            [
                ("Quyết toán thẻ (POS)".to_owned(), "989000".to_owned(), "S1".to_owned()),
                ("Phí quyết toán thẻ".to_owned(), "11000".to_owned(), "S1".to_owned()),
            ]
        );
    }

    #[test]
    fn the_reconciliation_csv_lists_every_exception_and_every_match_in_vietnamese() {
        let report = day_reconciliation();
        let bytes = reconciliation_csv(&report, "UBND phường Thủ Dầu Một").unwrap();
        save("doi-soat.csv", &bytes);
        let (headers, records) = parse_csv(&bytes);
        assert_eq!(headers, LINE_HEADERS);
        assert_eq!(records.len(), report.exceptions.len() + report.matches.len());

        let matches: Vec<_> = records.iter().filter(|r| r[0] == "Khớp").collect();
        assert_eq!(matches.len(), report.matches.len());
        assert!(matches.iter().all(|r| r[1] == "Sổ và sao kê" && r[7].is_empty()));
        let first = matches.iter().find(|r| r[5] == "L1").unwrap();
        assert_eq!(first[2..7], ["H34.22.6-261120-0001", "3000", "", "L1", "2026-11-20"]);
        let next_morning = matches.iter().find(|r| r[5] == "L3").unwrap();
        assert_eq!(next_morning[6], "2026-11-21", "a match is dated by its booking day");

        let ledger_only = records.iter().find(|r| r[0] == "Có trên sổ, không có trên sao kê").unwrap();
        assert_eq!(
            ledger_only[1..8],
            ["Sổ", "H34.22.6-261120-0004", "5000", "H34.22.6-261120-0004", "", "2026-11-20", "3"]
        );
        let bank_only = records.iter().find(|r| r[0] == "Có trên sao kê, không có trên sổ").unwrap();
        assert_eq!(bank_only[1..8], ["Sao kê", "", "120000", "L4", "L4", "2026-11-20", "3"]);
        let mismatches: Vec<_> = records.iter().filter(|r| r[0] == "Lệch số tiền").collect();
        assert_eq!(mismatches.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(), ["Sổ", "Sao kê"]);
        assert!(
            mismatches.iter().all(|r| r[4] == "'=HYPERLINK(\"x\")"),
            "a reference that looks like a formula is neutralised"
        );

        let amount = |r: &Vec<String>| r[3].parse::<i64>().unwrap();
        let sum_where =
            |pred: &dyn Fn(&Vec<String>) -> bool| records.iter().filter(|r| pred(r)).map(amount).sum::<i64>();
        let matched = sum_where(&|r| r[0] == "Khớp");
        assert_eq!(matched, report.matched_total.dong());
        assert_eq!(matched + sum_where(&|r| r[1] == "Sổ"), report.ledger_total.dong());
        assert_eq!(matched + sum_where(&|r| r[1] == "Sao kê"), report.bank_total.dong());
    }

    #[test]
    fn the_treasury_workbook_has_numbers_dates_vietnamese_headers_and_a_total_equal_to_its_rows() {
        let report = treasury_report();
        let bytes = treasury_xlsx(&report).unwrap();
        save("bao-cao-nop-kbnn.xlsx", &bytes);
        let ws = sheet(&bytes, TREASURY_SHEET);

        assert_eq!(text(&ws, 0, 0), "BÁO CÁO THU, NỘP PHÍ, LỆ PHÍ VÀO NGÂN SÁCH NHÀ NƯỚC");
        assert_eq!(text(&ws, 1, 1), "UBND phường Thủ Dầu Một");
        let from = row_of(&ws, "Từ ngày:");
        assert_eq!(date(&ws, from, 1), day(11, 1));
        assert_eq!(date(&ws, row_of(&ws, "Đến ngày:"), 1), day(11, 30));
        let oldest = text(&ws, from + 2, 0);
        assert_eq!(
            oldest,
            "Khoản chưa nộp lâu nhất: thu ngày 28/10/2026, hạn nộp 05/11/2026, quá hạn 25 ngày (số tiền 40.000 đồng)"
        );

        let header = row_of(&ws, "Mã phí/lệ phí");
        assert_eq!(headers_at(&ws, header, 9), TREASURY_HEADERS);
        let first = header + 1;
        assert_eq!(text(&ws, first, 0), "LP-HOTICH");
        assert_eq!(text(&ws, first, 2), "Lệ phí");
        assert_eq!(text(&ws, first + 1, 2), "Phí");
        assert_eq!(number(&ws, first + 1, 4), 43_200, "the retained share of a phí");
        let total = row_of(&ws, "Tổng cộng");
        assert_eq!(total, first + 3);
        let expected_totals = treasury_amounts(&report.total).map(Vnd::dong);
        for col in 3..9u32 {
            let sum: i64 = (first..total).map(|r| number(&ws, r, col)).sum();
            assert_eq!(number(&ws, total, col), sum, "column {}", TREASURY_HEADERS[col as usize]);
            assert_eq!(number(&ws, total, col), expected_totals[col as usize - 3]);
        }

        let remittances = sheet(&bytes, REMITTANCES_SHEET);
        let header = row_of(&remittances, "Số chứng từ");
        assert_eq!(headers_at(&remittances, header, 5), REMITTANCE_HEADERS);
        assert_eq!(text(&remittances, header + 1, 0), "GNT-2026-0041");
        assert_eq!(date(&remittances, header + 1, 1), day(11, 5));
        assert_eq!(date(&remittances, header + 1, 2), day(10, 31));
        assert_eq!(number(&remittances, header + 1, 3), 150_000);
        assert_eq!(number(&remittances, header + 1, 4), 31);
        assert_eq!(number(&remittances, row_of(&remittances, "Tổng cộng"), 3), 206_000);
    }

    #[test]
    fn the_reconciliation_workbook_has_its_summary_channels_exceptions_and_matches() {
        let report = day_reconciliation();
        let bytes = reconciliation_xlsx(&report, "UBND phường Thủ Dầu Một").unwrap();
        save("doi-soat.xlsx", &bytes);
        let ws = sheet(&bytes, RECONCILIATION_SHEET);

        assert_eq!(text(&ws, 1, 1), "UBND phường Thủ Dầu Một");
        assert_eq!(date(&ws, row_of(&ws, "Ngày đối soát:"), 1), day(11, 20));
        let summary = |label| number(&ws, row_of(&ws, label), 1);
        assert_eq!(summary("Tổng trên sổ"), report.ledger_total.dong());
        assert_eq!(summary("Tổng trên sao kê"), report.bank_total.dong());
        assert_eq!(summary("Số giao dịch khớp"), report.matches.len() as i64);
        assert_eq!(summary("Tổng khớp"), report.matched_total.dong());

        let channels = row_of(&ws, "Kênh");
        assert_eq!(headers_at(&ws, channels, 3), CHANNEL_HEADERS);
        let channel_total = row_of(&ws, "Tổng cộng");
        let channel_rows = channels + 1..channel_total;
        assert_eq!(channel_rows.len(), report.per_channel.len());
        let labels: Vec<String> = channel_rows.clone().map(|r| text(&ws, r, 0)).collect();
        assert!(labels.contains(&"Tiền mặt".to_owned()) && labels.contains(&"Chuyển khoản VietQR".to_owned()));
        assert_eq!(number(&ws, channel_total, 2), channel_rows.clone().map(|r| number(&ws, r, 2)).sum::<i64>());
        assert_eq!(number(&ws, channel_total, 2), 186_000);
        assert_eq!(number(&ws, channel_total, 1), 6);

        // The tables of lines, with the CSV's columns: exceptions first, then matches, then the
        // batches (none on this day).
        let tables: Vec<u32> = (0..ws.height() as u32).filter(|&r| text_or_empty(&ws, r, 0) == "Loại dòng").collect();
        assert_eq!(tables.len(), 3);
        assert_eq!(text(&ws, tables[2] + 1, 0), "Không có khoản khớp theo lô.");
        assert_eq!(headers_at(&ws, tables[0], 8), LINE_HEADERS);
        let exceptions = tables[0] + 1..tables[0] + 1 + report.exceptions.len() as u32;
        let matches = tables[1] + 1..tables[1] + 1 + report.matches.len() as u32;
        for r in exceptions.clone() {
            assert_ne!(text(&ws, r, 0), "Khớp");
            date(&ws, r, 6);
            assert!(number(&ws, r, 7) >= 0);
        }
        assert!(matches.clone().all(|r| text(&ws, r, 0) == "Khớp"));
        let sum = |rows: std::ops::Range<u32>, side: Option<&str>| {
            rows.filter(|&r| side.is_none_or(|s| text(&ws, r, 1) == s)).map(|r| number(&ws, r, 3)).sum::<i64>()
        };
        assert_eq!(sum(matches.clone(), None), summary("Tổng khớp"));
        assert_eq!(sum(matches.clone(), None) + sum(exceptions.clone(), Some("Sổ")), summary("Tổng trên sổ"));
        assert_eq!(sum(matches, None) + sum(exceptions, Some("Sao kê")), summary("Tổng trên sao kê"));
    }

    fn text_or_empty(range: &Range<Data>, row: u32, col: u32) -> String {
        match cell(range, row, col) {
            Data::String(s) => s.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn the_same_report_always_gives_the_same_bytes() {
        let (treasury, day) = (treasury_report(), day_reconciliation());
        assert_eq!(treasury_xlsx(&treasury).unwrap(), treasury_xlsx(&treasury).unwrap());
        assert_eq!(reconciliation_xlsx(&day, "x").unwrap(), reconciliation_xlsx(&day, "x").unwrap());
        assert_eq!(treasury_csv(&treasury).unwrap(), treasury_csv(&treasury).unwrap());
    }

    #[test]
    fn an_empty_day_still_makes_valid_files() {
        let report = reconcile(&agency(), day(11, 22), &[], &[], day(11, 22));
        let (headers, records) = parse_csv(&reconciliation_csv(&report, "x").unwrap());
        assert_eq!((headers.len(), records.len()), (8, 0));
        let ws = sheet(&reconciliation_xlsx(&report, "x").unwrap(), RECONCILIATION_SHEET);
        assert_eq!(number(&ws, row_of(&ws, "Tổng trên sổ"), 1), 0);
        assert_eq!(text(&ws, row_of(&ws, "Không có ngoại lệ."), 0), "Không có ngoại lệ.");
    }
}
