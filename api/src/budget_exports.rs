//! The State Treasury's and the tax office's forms as CSV and XLSX: a remittance's deposit
//! voucher lines (C1-02/NS) and the fee declarations (01/PHLP monthly, 02/PHLP yearly).
//!
//! Same conventions as the other exports (`crate::exports`): Vietnamese headers, UTF-8 CSV
//! with a BOM and plain whole-đồng amounts, XLSX amounts as numbers formatted `#,##0`, a
//! "Tổng cộng" row equal to the sum of the rows above it, no clock read. A code that is not
//! configured is written "(chưa cấu hình)", never guessed.

use std::borrow::Cow;

use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::amount_in_words;
use feeledger_domain::declaration::{DeclarationPeriod, FeeDeclaration};
use feeledger_domain::money::Vnd;
use feeledger_projections::treasury::VoucherDoc;
use rust_xlsxwriter::{DocProperties, RowNum, Workbook, Worksheet};

use crate::exports::{
    A4, ExportError, Styles, col_num, csv_text, csv_writer, finish_csv, last_col, write_header, write_money,
};
use crate::labels::fee_kind_label;
use crate::voucher_page::NOT_CONFIGURED;

pub(crate) const VOUCHER_HEADERS: [&str; 6] =
    ["STT", "Nội dung các khoản nộp NSNN", "Mã NDKT (tiểu mục)", "Mã chương", "Kỳ thuế", "Số tiền"];
pub(crate) const DECLARATION_HEADERS: [&str; 10] = [
    "STT",
    "Mã phí, lệ phí",
    "Tên phí, lệ phí",
    "Loại",
    "Tiểu mục",
    "Số tiền phí, lệ phí thu được",
    "Tỷ lệ để lại (%)",
    "Số tiền để lại",
    "Số tiền phải nộp NSNN",
    "Số hồ sơ",
];
const SOURCE_HEADERS: [&str; 4] = ["STT dòng", "Mã phí, lệ phí", "Mã hồ sơ", "Vị trí sự kiện"];
const TOTAL_LABEL: &str = "Tổng cộng";
const VOUCHER_SHEET: &str = "Giấy nộp tiền";
const DECLARATION_SHEET: &str = "Tờ khai";
const SOURCES_SHEET: &str = "Chi tiết hồ sơ";

fn code_or_missing(code: Option<&str>) -> &str {
    code.unwrap_or(NOT_CONFIGURED)
}

/// "01/PHLP" or "02/PHLP".
pub(crate) fn form_name(period: DeclarationPeriod) -> &'static str {
    match period {
        DeclarationPeriod::Month { .. } => "01/PHLP",
        DeclarationPeriod::Year { .. } => "02/PHLP",
    }
}

// --- the voucher --------------------------------------------------------------------------------

/// The voucher's lines as one table, then the total row.
pub fn voucher_csv(voucher: &VoucherDoc) -> Result<Vec<u8>, ExportError> {
    let mut csv = csv_writer();
    csv.write_record(VOUCHER_HEADERS)?;
    for (index, line) in voucher.lines.iter().enumerate() {
        let record = [
            Cow::Owned((index + 1).to_string()),
            csv_text(&line.content.join("; ")).into_owned().into(),
            Cow::Borrowed(code_or_missing(line.budget_sub_item.as_ref().map(|c| c.as_str()))),
            Cow::Borrowed(code_or_missing(line.budget_chapter.as_ref().map(|c| c.as_str()))),
            Cow::Owned(line.period.label()),
            Cow::Owned(line.amount.dong().to_string()),
        ];
        csv.write_record(record.iter().map(|field| field.as_bytes()))?;
    }
    csv.write_record([TOTAL_LABEL, "", "", "", "", &voucher.amount.dong().to_string()])?;
    finish_csv(csv)
}

/// The voucher as a one-sheet workbook: the payer, the treasury, the lines, the total in
/// figures and in words.
pub fn voucher_xlsx(voucher: &VoucherDoc, agency: Option<&AgencyConfigured>) -> Result<Vec<u8>, ExportError> {
    let s = Styles::new();
    let mut workbook = Workbook::new();
    let agency_name = agency.map_or_else(|| voucher.agency_code.to_string(), |a| a.name.clone());
    workbook.set_properties(
        &DocProperties::new()
            .set_title("Giấy nộp tiền vào ngân sách nhà nước (C1-02/NS)")
            .set_company(agency_name.as_str())
            .set_creation_datetime(&voucher.remitted_on),
    );
    let sheet = workbook.add_worksheet();
    sheet.set_name(VOUCHER_SHEET)?;
    let last = last_col(&VOUCHER_HEADERS);
    sheet.merge_range(0, 0, 0, last, "GIẤY NỘP TIỀN VÀO NGÂN SÁCH NHÀ NƯỚC", &s.title)?;
    let t = agency.map(|a| &a.treasury);
    let field =
        |f: fn(&feeledger_domain::agency::TreasuryIdentity) -> Option<&str>| code_or_missing(t.and_then(f)).to_owned();
    let header_fields = [
        ("Mẫu số:", "C1-02/NS".to_owned()),
        ("Số:", voucher.voucher_number.clone()),
        ("Người nộp thuế:", agency_name.clone()),
        ("Mã số thuế:", field(|t| t.tax_code.as_ref().map(|c| c.as_str()))),
        ("Địa chỉ:", field(|t| t.address.as_deref())),
        ("Nộp vào tài khoản:", field(|t| t.treasury_account.as_ref().map(|c| c.as_str()))),
        ("Tại KBNN (mã):", field(|t| t.treasury_code.as_ref().map(|c| c.as_str()))),
        ("Mã ĐBHC:", field(|t| t.admin_area_code.as_ref().map(|c| c.as_str()))),
        ("Mã cơ quan thu:", field(|t| t.tax_office_code.as_ref().map(|c| c.as_str()))),
    ];
    let mut row: RowNum = 1;
    for (label, value) in header_fields {
        sheet.write_string_with_format(row, 0, label, &s.label)?;
        sheet.write_string_with_format(row, 1, value, &s.strong)?;
        row += 1;
    }
    sheet.write_string_with_format(row, 0, "Ngày nộp:", &s.label)?;
    sheet.write_date_with_format(row, 1, voucher.remitted_on, &s.date_plain)?;
    row += 1;
    sheet.write_string_with_format(row, last, "Đơn vị tính: đồng", &s.unit_note)?;
    row += 1;
    let header_row = row;
    write_header(sheet, header_row, &VOUCHER_HEADERS, &s)?;
    for (index, line) in voucher.lines.iter().enumerate() {
        row += 1;
        sheet.write_number_with_format(row, 0, f64::from(u32::try_from(index + 1).unwrap_or(u32::MAX)), &s.count)?;
        sheet.write_string_with_format(row, 1, line.content.join("; "), &s.text)?;
        sheet.write_string_with_format(
            row,
            2,
            code_or_missing(line.budget_sub_item.as_ref().map(|c| c.as_str())),
            &s.text,
        )?;
        sheet.write_string_with_format(
            row,
            3,
            code_or_missing(line.budget_chapter.as_ref().map(|c| c.as_str())),
            &s.text,
        )?;
        sheet.write_string_with_format(row, 4, line.period.label(), &s.text)?;
        write_money(sheet, row, 5, line.amount, &s.money)?;
    }
    row += 1;
    sheet.write_string_with_format(row, 0, TOTAL_LABEL, &s.total_text)?;
    for col in 1..5 {
        sheet.write_blank(row, col, &s.total_text)?;
    }
    write_money(sheet, row, 5, Vnd::sum(voucher.lines.iter().map(|l| l.amount))?, &s.total_money)?;
    row += 1;
    sheet.write_string_with_format(
        row,
        0,
        format!("Tổng số tiền ghi bằng chữ: {}.", amount_in_words::vietnamese(voucher.amount)),
        &s.note,
    )?;
    for (col, width) in [16, 44, 14, 11, 10, 16].into_iter().enumerate() {
        sheet.set_column_width(col_num(col), width)?;
    }
    sheet.set_paper_size(A4).set_print_fit_to_pages(1, 0);
    Ok(workbook.save_to_buffer()?)
}

// --- the declarations ---------------------------------------------------------------------------

/// The amount columns of a declaration row, in header order (after the rate).
fn declaration_record(index: usize, row: &feeledger_domain::declaration::DeclarationRow) -> Vec<Cow<'_, str>> {
    vec![
        Cow::Owned((index + 1).to_string()),
        csv_text(row.fee_code.as_str()),
        csv_text(&row.fee_name),
        Cow::Borrowed(fee_kind_label(row.kind)),
        Cow::Borrowed(code_or_missing(row.budget_sub_item.as_ref().map(|c| c.as_str()))),
        Cow::Owned(row.collected.dong().to_string()),
        Cow::Owned(row.retention_percent.to_string()),
        Cow::Owned(row.retained.dong().to_string()),
        Cow::Owned(row.payable_to_budget.dong().to_string()),
        Cow::Owned(row.case_codes().len().to_string()),
    ]
}

/// The declaration as one table and its total row. The cases behind each row are in the XLSX
/// and in GraphQL (`feeDeclaration { rows { caseCodes eventPositions } }`).
pub fn declaration_csv(declaration: &FeeDeclaration) -> Result<Vec<u8>, ExportError> {
    let mut csv = csv_writer();
    csv.write_record(DECLARATION_HEADERS)?;
    for (index, row) in declaration.rows.iter().enumerate() {
        let record = declaration_record(index, row);
        csv.write_record(record.iter().map(|field| field.as_bytes()))?;
    }
    let cases: usize = declaration.rows.iter().map(|r| r.case_codes().len()).sum();
    csv.write_record([
        TOTAL_LABEL,
        "",
        "",
        "",
        "",
        &declaration.collected.dong().to_string(),
        "",
        &declaration.retained.dong().to_string(),
        &declaration.payable_to_budget.dong().to_string(),
        &cases.to_string(),
    ])?;
    finish_csv(csv)
}

/// The declaration as a workbook: the form ("Tờ khai") and, for drill-down, every case and
/// payment event behind each row ("Chi tiết hồ sơ").
pub fn declaration_xlsx(
    declaration: &FeeDeclaration,
    agency: Option<&AgencyConfigured>,
) -> Result<Vec<u8>, ExportError> {
    let s = Styles::new();
    let mut workbook = Workbook::new();
    let form = form_name(declaration.period);
    workbook.set_properties(
        &DocProperties::new()
            .set_title(format!("Tờ khai phí, lệ phí {form}").as_str())
            .set_company(declaration.agency_name.as_str()),
    );
    declaration_sheet(workbook.add_worksheet(), declaration, agency, &s)?;
    sources_sheet(workbook.add_worksheet(), declaration, &s)?;
    Ok(workbook.save_to_buffer()?)
}

fn declaration_sheet(
    sheet: &mut Worksheet,
    declaration: &FeeDeclaration,
    agency: Option<&AgencyConfigured>,
    s: &Styles,
) -> Result<(), ExportError> {
    sheet.set_name(DECLARATION_SHEET)?;
    let last = last_col(&DECLARATION_HEADERS);
    let (title, period_label) = match declaration.period {
        DeclarationPeriod::Month { .. } => ("TỜ KHAI PHÍ, LỆ PHÍ", "Kỳ tính phí (tháng):"),
        DeclarationPeriod::Year { .. } => ("TỜ KHAI QUYẾT TOÁN PHÍ", "Kỳ tính phí (năm):"),
    };
    sheet.merge_range(0, 0, 0, last, title, &s.title)?;
    let t = agency.map(|a| &a.treasury);
    let fields = [
        ("Mẫu số:", form_name(declaration.period).to_owned()),
        (period_label, declaration.period.label()),
        ("Người nộp thuế:", declaration.agency_name.clone()),
        ("Mã số thuế:", code_or_missing(t.and_then(|t| t.tax_code.as_ref().map(|c| c.as_str()))).to_owned()),
        ("Mã chương:", code_or_missing(t.and_then(|t| t.budget_chapter.as_ref().map(|c| c.as_str()))).to_owned()),
        (
            "Cơ quan thuế (mã):",
            code_or_missing(t.and_then(|t| t.tax_office_code.as_ref().map(|c| c.as_str()))).to_owned(),
        ),
        ("Mã đơn vị (định danh):", declaration.agency_code.to_string()),
    ];
    let mut row: RowNum = 1;
    for (label, value) in fields {
        sheet.write_string_with_format(row, 0, label, &s.label)?;
        sheet.write_string_with_format(row, 2, value, &s.strong)?;
        row += 1;
    }
    sheet.write_string_with_format(row, last, "Đơn vị tính: đồng", &s.unit_note)?;
    row += 1;
    let header_row = row;
    write_header(sheet, header_row, &DECLARATION_HEADERS, s)?;
    for (index, r) in declaration.rows.iter().enumerate() {
        row += 1;
        let number = |n: usize| f64::from(u32::try_from(n).unwrap_or(u32::MAX));
        sheet.write_number_with_format(row, 0, number(index + 1), &s.count)?;
        sheet.write_string_with_format(row, 1, r.fee_code.as_str(), &s.text)?;
        sheet.write_string_with_format(row, 2, &r.fee_name, &s.text)?;
        sheet.write_string_with_format(row, 3, fee_kind_label(r.kind), &s.text)?;
        sheet.write_string_with_format(
            row,
            4,
            code_or_missing(r.budget_sub_item.as_ref().map(|c| c.as_str())),
            &s.text,
        )?;
        write_money(sheet, row, 5, r.collected, &s.money)?;
        sheet.write_string_with_format(row, 6, r.retention_percent.to_string(), &s.text)?;
        write_money(sheet, row, 7, r.retained, &s.money)?;
        write_money(sheet, row, 8, r.payable_to_budget, &s.money)?;
        sheet.write_number_with_format(row, 9, number(r.case_codes().len()), &s.count)?;
    }
    row += 1;
    sheet.write_string_with_format(row, 0, TOTAL_LABEL, &s.total_text)?;
    for col in [1, 2, 3, 4, 6, 9] {
        sheet.write_blank(row, col, &s.total_text)?;
    }
    write_money(sheet, row, 5, declaration.collected, &s.total_money)?;
    write_money(sheet, row, 7, declaration.retained, &s.total_money)?;
    write_money(sheet, row, 8, declaration.payable_to_budget, &s.total_money)?;
    for (col, width) in [6, 16, 40, 8, 10, 16, 10, 15, 16, 9].into_iter().enumerate() {
        sheet.set_column_width(col_num(col), width)?;
    }
    sheet.set_freeze_panes(header_row + 1, 0)?;
    sheet.set_landscape().set_paper_size(A4).set_print_fit_to_pages(1, 0);
    Ok(())
}

fn sources_sheet(sheet: &mut Worksheet, declaration: &FeeDeclaration, s: &Styles) -> Result<(), ExportError> {
    sheet.set_name(SOURCES_SHEET)?;
    write_header(sheet, 0, &SOURCE_HEADERS, s)?;
    let mut row: RowNum = 0;
    for (index, r) in declaration.rows.iter().enumerate() {
        for source in &r.sources {
            row += 1;
            sheet.write_number_with_format(
                row,
                0,
                f64::from(u32::try_from(index + 1).unwrap_or(u32::MAX)),
                &s.count,
            )?;
            sheet.write_string_with_format(row, 1, r.fee_code.as_str(), &s.text)?;
            sheet.write_string_with_format(row, 2, source.case_code.as_str(), &s.text)?;
            // Positions are identity values far below 2^53: exact as the f64 Excel stores.
            sheet.write_string_with_format(row, 3, source.position.to_string(), &s.text)?;
        }
    }
    for (col, width) in [9, 16, 24, 14].into_iter().enumerate() {
        sheet.set_column_width(col_num(col), width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    use chrono::NaiveDate;
    use feeledger_domain::budget::{BudgetChapter, BudgetSubItem};
    use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
    use feeledger_domain::declaration::{DeclarationRow, SourceEvent};
    use feeledger_domain::fee_schedule::FeeKind;
    use feeledger_domain::money::Percent;
    use feeledger_domain::remittance_voucher::{CollectionMonth, VoucherLine};
    use uuid::Uuid;

    use super::*;
    use crate::exports::UTF8_BOM;

    fn vnd(d: i64) -> Vnd {
        Vnd::new(d).unwrap()
    }

    fn voucher() -> VoucherDoc {
        let line = |sub: Option<&str>, amount| VoucherLine {
            budget_chapter: Some(BudgetChapter::parse("800").unwrap()),
            budget_sub_item: sub.map(|s| BudgetSubItem::parse(s).unwrap()),
            period: CollectionMonth { year: 2026, month: 10 },
            content: vec!["=cmd".into(), "Lệ phí hộ tịch".into()],
            amount: vnd(amount),
        };
        VoucherDoc {
            remittance_id: Uuid::from_u128(1),
            agency_code: AgencyCode::parse("H34.22.6").unwrap(),
            voucher_number: "GNT-01".into(),
            remitted_on: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            up_to: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            lines: vec![line(Some("2771"), 33_000), line(None, 1_200)],
            amount: vnd(34_200),
            cases: vec![],
        }
    }

    fn declaration() -> FeeDeclaration {
        let case = CaseCode::parse("H34.22.6-261020-0001").unwrap();
        let mut phi = DeclarationRow::new(
            FeeCode::parse("P-SAOY").unwrap(),
            "Phí chứng thực".into(),
            FeeKind::Phi,
            Some(BudgetSubItem::parse("2716").unwrap()),
            Percent::parse("90").unwrap(),
        );
        phi.add(vnd(4_000), vnd(3_600), vnd(400), [SourceEvent { position: 12, case_code: case.clone() }]).unwrap();
        let mut le_phi = DeclarationRow::new(
            FeeCode::parse("LP-HOTICH").unwrap(),
            "Lệ phí hộ tịch".into(),
            FeeKind::LePhi,
            None,
            Percent::ZERO,
        );
        le_phi.add(vnd(8_000), vnd(0), vnd(8_000), [SourceEvent { position: 14, case_code: case }]).unwrap();
        FeeDeclaration::new(
            AgencyCode::parse("H34.22.6").unwrap(),
            "UBND".into(),
            DeclarationPeriod::Month { year: 2026, month: 10 },
            vec![phi, le_phi],
        )
        .unwrap()
    }

    fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
        let body = bytes.strip_prefix(UTF8_BOM).expect("BOM");
        csv::Reader::from_reader(body).records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect()
    }

    #[test]
    fn the_voucher_csv_has_a_line_per_budget_code_a_total_equal_to_them_and_says_what_is_not_configured() {
        let records = parse_csv(&voucher_csv(&voucher()).unwrap());
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], ["1", "'=cmd; Lệ phí hộ tịch", "2771", "800", "10/2026", "33000"]);
        assert_eq!(records[1][2], NOT_CONFIGURED);
        assert_eq!(records[2][0], "Tổng cộng");
        assert_eq!(records[2][5], "34200");
    }

    #[test]
    fn the_voucher_workbook_has_the_same_lines_as_numbers() {
        let bytes = voucher_xlsx(&voucher(), None).unwrap();
        let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        let ws = workbook.worksheet_range(VOUCHER_SHEET).unwrap();
        let header = (0..ws.height() as u32)
            .find(|&r| matches!(ws.get_value((r, 0)), Some(Data::String(s)) if s == "STT"))
            .unwrap();
        assert_eq!(ws.get_value((header + 1, 5)), Some(&Data::Float(33_000.0)));
        assert_eq!(ws.get_value((header + 3, 5)), Some(&Data::Float(34_200.0)));
        assert_eq!(ws.get_value((header + 3, 0)), Some(&Data::String("Tổng cộng".into())));
    }

    #[test]
    fn the_declaration_csv_and_workbook_give_each_fee_its_sub_item_rate_and_shares() {
        let declaration = declaration();
        let records = parse_csv(&declaration_csv(&declaration).unwrap());
        assert_eq!(records[0], ["1", "P-SAOY", "Phí chứng thực", "Phí", "2716", "4000", "90", "3600", "400", "1"]);
        assert_eq!(records[1][4], NOT_CONFIGURED);
        assert_eq!(records[2][..1], ["Tổng cộng"]);
        assert_eq!(records[2][5..9], ["12000", "", "3600", "8400"]);
        let bytes = declaration_xlsx(&declaration, None).unwrap();
        let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        let detail = workbook.worksheet_range(SOURCES_SHEET).unwrap();
        assert_eq!(detail.get_value((1, 2)), Some(&Data::String("H34.22.6-261020-0001".into())));
        assert_eq!(detail.get_value((2, 3)), Some(&Data::String("14".into())));
    }
}
