//! Receipts for the tax authority and the e-invoice provider:
//!
//! - the receipt-usage report of a quarter (báo cáo tình hình sử dụng biên lai, "BC26"; Decree
//!   123/2020/NĐ-CP art. 38: due by the last day of the first month of the next quarter), per
//!   template and serial: the numbers used from–to, how many were issued and cancelled, as CSV
//!   and XLSX (the GraphQL `receiptUsageReport` gives the same rows);
//! - one receipt as structured data: JSON and an XML document of our own schema
//!   (`urn:feeledger:bien-lai:1`, described in docs/FINANCE.md), written with `quick-xml`.
//!
//! The payer appears only by name and masked identity number, as on the printed receipt.

use feeledger_domain::codes::AgencyCode;
use feeledger_domain::fee_schedule::FeeKind;
use feeledger_domain::receipt::{Quarter, ReceiptCancelled, ReceiptIssued};
use feeledger_domain::vietnam_time;
use feeledger_projections::receipts::ReceiptUsage;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use rust_xlsxwriter::{DocProperties, Workbook};
use serde_json::{Value, json};

use crate::exports::{ExportError, Styles, csv_text, csv_writer, finish_csv};

/// The namespace (and version) of our receipt XML.
pub const RECEIPT_XML_NAMESPACE: &str = "urn:feeledger:bien-lai:1";

/// The receipt-usage report of one agency and quarter.
#[derive(Debug, Clone)]
pub struct ReceiptUsageReport {
    pub agency_code: AgencyCode,
    pub agency_name: String,
    pub tax_code: Option<String>,
    pub quarter: Quarter,
    pub rows: Vec<ReceiptUsage>,
}

impl ReceiptUsageReport {
    pub fn issued(&self) -> u32 {
        self.rows.iter().map(|r| r.used).sum()
    }

    pub fn cancelled(&self) -> u32 {
        self.rows.iter().map(|r| r.cancelled).sum()
    }
}

const USAGE_HEADERS: [&str; 7] =
    ["Ký hiệu mẫu", "Ký hiệu", "Từ số", "Đến số", "Số lượng đã sử dụng", "Số lượng đã hủy", "Hạn nộp báo cáo"];

pub fn usage_csv(report: &ReceiptUsageReport) -> Result<Vec<u8>, ExportError> {
    let mut csv = csv_writer();
    csv.write_record(USAGE_HEADERS)?;
    let deadline = report.quarter.report_deadline().to_string();
    for row in &report.rows {
        csv.write_record([
            csv_text(&row.template_symbol).as_ref(),
            csv_text(&row.serial).as_ref(),
            &row.first_number.to_string(),
            &row.last_number.to_string(),
            &row.used.to_string(),
            &row.cancelled.to_string(),
            &deadline,
        ])?;
    }
    csv.write_record([
        "Tổng cộng",
        "",
        "",
        "",
        &report.issued().to_string(),
        &report.cancelled().to_string(),
        &deadline,
    ])?;
    finish_csv(csv)
}

pub fn usage_xlsx(report: &ReceiptUsageReport) -> Result<Vec<u8>, ExportError> {
    let s = Styles::new();
    let mut workbook = Workbook::new();
    workbook.set_properties(
        &DocProperties::new().set_title("Báo cáo tình hình sử dụng biên lai").set_company(report.agency_name.as_str()),
    );
    let sheet = workbook.add_worksheet();
    sheet.set_name("BC26")?;
    sheet.merge_range(0, 0, 0, 6, "BÁO CÁO TÌNH HÌNH SỬ DỤNG BIÊN LAI", &s.title)?;
    sheet.write_with_format(1, 0, format!("Quý {} năm {}", report.quarter.number, report.quarter.year), &s.strong)?;
    sheet.write(2, 0, format!("Đơn vị: {} ({})", report.agency_name, report.agency_code))?;
    sheet.write(3, 0, format!("Mã số thuế: {}", report.tax_code.as_deref().unwrap_or("(chưa cấu hình)")))?;
    sheet.write(4, 0, format!("Hạn nộp: {}", report.quarter.report_deadline().format("%d/%m/%Y")))?;
    let header_row = 6;
    for (col, title) in (0u16..).zip(USAGE_HEADERS.iter().take(6)) {
        sheet.write_with_format(header_row, col, *title, &s.header)?;
    }
    let mut row = header_row + 1;
    for usage in &report.rows {
        sheet.write_with_format(row, 0, usage.template_symbol.as_str(), &s.text)?;
        sheet.write_with_format(row, 1, usage.serial.as_str(), &s.text)?;
        sheet.write_with_format(row, 2, usage.first_number, &s.count)?;
        sheet.write_with_format(row, 3, usage.last_number, &s.count)?;
        sheet.write_with_format(row, 4, usage.used, &s.count)?;
        sheet.write_with_format(row, 5, usage.cancelled, &s.count)?;
        row += 1;
    }
    sheet.write_with_format(row, 0, "Tổng cộng", &s.total_text)?;
    for col in 1..=3 {
        sheet.write_with_format(row, col, "", &s.total_text)?;
    }
    sheet.write_with_format(row, 4, report.issued(), &s.total_count)?;
    sheet.write_with_format(row, 5, report.cancelled(), &s.total_count)?;
    sheet.set_column_width(0, 16)?;
    sheet.set_column_width(1, 12)?;
    for col in 2..=5 {
        sheet.set_column_width(col, 14)?;
    }
    Ok(workbook.save_to_buffer()?)
}

/// What a receipt export needs besides the receipt event.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptDocument<'a> {
    pub receipt: &'a ReceiptIssued,
    pub case_code: &'a str,
    pub agency_name: &'a str,
    pub cancelled: Option<&'a ReceiptCancelled>,
}

fn kind_code(kind: FeeKind) -> &'static str {
    match kind {
        FeeKind::Phi => "PHI",
        FeeKind::LePhi => "LE_PHI",
    }
}

/// The receipt as JSON (`"schema": "feeledger.receipt/1"`).
pub fn receipt_json(doc: &ReceiptDocument<'_>) -> Value {
    let r = doc.receipt;
    json!({
        "schema": "feeledger.receipt/1",
        "id": r.receipt_id,
        "templateSymbol": r.template_symbol,
        "serial": r.serial,
        "number": r.number,
        "printedNumber": r.printed_number(),
        "issuedAt": r.issued_at.to_rfc3339(),
        "issuedOn": vietnam_time::date_of(r.issued_at).to_string(),
        "agency": { "code": r.agency_code.as_str(), "name": doc.agency_name, "taxCode": r.tax_code.as_ref().map(|t| t.as_str()) },
        "caseCode": doc.case_code,
        "procedureCode": r.procedure_code.as_ref().map(|p| p.as_str()),
        "payer": { "name": r.payer_name, "maskedId": r.payer_masked_id },
        "lines": r.lines.iter().map(|l| json!({
            "feeCode": l.fee_code.as_str(), "name": l.name, "kind": kind_code(l.kind),
            "quantity": l.quantity, "unitAmount": l.unit_amount.dong().to_string(), "amount": l.amount.dong().to_string(),
        })).collect::<Vec<_>>(),
        "amount": r.amount.dong().to_string(),
        "amountInWords": r.amount_in_words,
        "paymentId": r.payment_id,
        "replaces": r.replaces,
        "cancelled": doc.cancelled.map(|c| json!({ "at": c.cancelled_at.to_rfc3339(), "reason": c.reason })),
    })
}

type XmlResult = Result<(), quick_xml::Error>;

fn element(writer: &mut Writer<Vec<u8>>, name: &str, text: &str) -> XmlResult {
    writer.write_event(Event::Start(BytesStart::new(name)))?;
    writer.write_event(Event::Text(BytesText::new(text)))?;
    writer.write_event(Event::End(BytesEnd::new(name)))?;
    Ok(())
}

fn open(writer: &mut Writer<Vec<u8>>, name: &str) -> XmlResult {
    writer.write_event(Event::Start(BytesStart::new(name)))?;
    Ok(())
}

fn close(writer: &mut Writer<Vec<u8>>, name: &str) -> XmlResult {
    writer.write_event(Event::End(BytesEnd::new(name)))?;
    Ok(())
}

/// The receipt as an XML document of our schema (docs/FINANCE.md, "Receipts as data").
pub fn receipt_xml(doc: &ReceiptDocument<'_>) -> Result<Vec<u8>, quick_xml::Error> {
    let r = doc.receipt;
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = BytesStart::new("BienLai");
    root.push_attribute(("xmlns", RECEIPT_XML_NAMESPACE));
    root.push_attribute(("Id", r.receipt_id.to_string().as_str()));
    w.write_event(Event::Start(root))?;
    element(&mut w, "MauSo", &r.template_symbol)?;
    element(&mut w, "KyHieu", &r.serial)?;
    element(&mut w, "So", &r.printed_number())?;
    element(&mut w, "NgayLap", &vietnam_time::date_of(r.issued_at).to_string())?;
    element(&mut w, "ThoiDiemLap", &r.issued_at.to_rfc3339())?;
    open(&mut w, "DonViThu")?;
    element(&mut w, "Ten", doc.agency_name)?;
    element(&mut w, "MaDonVi", r.agency_code.as_str())?;
    if let Some(tax_code) = &r.tax_code {
        element(&mut w, "MaSoThue", tax_code.as_str())?;
    }
    close(&mut w, "DonViThu")?;
    open(&mut w, "HoSo")?;
    element(&mut w, "MaHoSo", doc.case_code)?;
    if let Some(procedure) = &r.procedure_code {
        element(&mut w, "MaThuTuc", procedure.as_str())?;
    }
    close(&mut w, "HoSo")?;
    open(&mut w, "NguoiNop")?;
    element(&mut w, "HoTen", &r.payer_name)?;
    if let Some(masked) = &r.payer_masked_id {
        element(&mut w, "SoDinhDanh", masked)?;
    }
    close(&mut w, "NguoiNop")?;
    open(&mut w, "DanhSachKhoanThu")?;
    for (index, line) in r.lines.iter().enumerate() {
        let mut start = BytesStart::new("KhoanThu");
        start.push_attribute(("STT", (index + 1).to_string().as_str()));
        w.write_event(Event::Start(start))?;
        element(&mut w, "Ma", line.fee_code.as_str())?;
        element(&mut w, "Ten", &line.name)?;
        element(&mut w, "Loai", kind_code(line.kind))?;
        element(&mut w, "SoLuong", &line.quantity.to_string())?;
        element(&mut w, "DonGia", &line.unit_amount.dong().to_string())?;
        element(&mut w, "ThanhTien", &line.amount.dong().to_string())?;
        close(&mut w, "KhoanThu")?;
    }
    close(&mut w, "DanhSachKhoanThu")?;
    element(&mut w, "TongTien", &r.amount.dong().to_string())?;
    element(&mut w, "TongTienBangChu", &r.amount_in_words)?;
    if let Some(payment) = r.payment_id {
        element(&mut w, "LanNop", &payment.to_string())?;
    }
    if let Some(replaces) = r.replaces {
        element(&mut w, "ThayTheBienLai", &replaces.to_string())?;
    }
    match doc.cancelled {
        Some(cancelled) => {
            element(&mut w, "TrangThai", "DA_HUY")?;
            open(&mut w, "Huy")?;
            element(&mut w, "ThoiDiem", &cancelled.cancelled_at.to_rfc3339())?;
            element(&mut w, "LyDo", &cancelled.reason)?;
            close(&mut w, "Huy")?;
        }
        None => element(&mut w, "TrangThai", "DA_LAP")?,
    }
    close(&mut w, "BienLai")?;
    Ok(w.into_inner())
}
