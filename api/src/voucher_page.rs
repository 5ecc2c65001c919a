//! The printable A4 deposit voucher of a remittance, laid out like the State Treasury's
//! "giấy nộp tiền vào ngân sách nhà nước" (mẫu C1-02/NS, Circular 84/2016/TT-BTC): the form's
//! number at the top right, the title, the payer (the agency, its tax code and address), the
//! treasury and account it deposits to, the tax office, one row per budget chapter and sub-item
//! (and month of collection) with its content and amount, the total in figures and in words,
//! and the two signature blocks (the payer; the treasury).
//!
//! A code that is not configured is printed as "(chưa cấu hình)", never guessed: a clerk sees
//! what to fill in by hand or to configure. Every value is escaped by `maud`; the only
//! unescaped text is the constant stylesheet. The page is standalone (inline CSS, no script).

use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::amount_in_words;
use feeledger_projections::treasury::VoucherDoc;
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// What a missing code is printed as.
pub const NOT_CONFIGURED: &str = "(chưa cấu hình)";

/// The voucher and what the page says about the payer (the agency's configuration now).
#[derive(Debug, Clone, Copy)]
pub struct VoucherPage<'a> {
    pub voucher: &'a VoucherDoc,
    pub agency: Option<&'a AgencyConfigured>,
}

fn or_missing(value: Option<&str>) -> Markup {
    match value {
        Some(text) => html! { (text) },
        None => html! { span.missing { (NOT_CONFIGURED) } },
    }
}

/// A complete, standalone, printable HTML page.
pub fn render(page: &VoucherPage<'_>) -> String {
    let voucher = page.voucher;
    let treasury = page.agency.map(|a| &a.treasury);
    let agency_name = page.agency.map_or_else(|| voucher.agency_code.to_string(), |a| a.name.clone());
    let code = |f: fn(&feeledger_domain::agency::TreasuryIdentity) -> Option<&str>| treasury.and_then(f);
    let words = amount_in_words::vietnamese(voucher.amount);
    let title = format!("Giấy nộp tiền vào NSNN số {}", voucher.voucher_number);
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main.paper {
                    header.top {
                        div.blank { "Không ghi vào" br; "khu vực này" }
                        dl.form-number {
                            dt { "Mẫu số:" } dd { "C1-02/NS" }
                            dd.basis { "(Theo Thông tư số 84/2016/TT-BTC của Bộ Tài chính)" }
                            dt { "Số:" } dd.number { (voucher.voucher_number) }
                        }
                    }
                    div.heading {
                        h1 { "GIẤY NỘP TIỀN VÀO NGÂN SÁCH NHÀ NƯỚC" }
                        div.ways {
                            span.box { "Tiền mặt" span.tick { "☐" } }
                            span.box { "Chuyển khoản" span.tick { "☒" } }
                        }
                    }
                    dl.fields {
                        dt { "Người nộp thuế:" } dd.strong { (agency_name) }
                        dt { "Mã số thuế:" } dd.mono { (or_missing(code(|t| t.tax_code.as_ref().map(|c| c.as_str())))) }
                        dt { "Địa chỉ:" } dd { (or_missing(code(|t| t.address.as_deref()))) }
                        dt { "Mã đơn vị (định danh):" } dd.mono { (voucher.agency_code) }
                        dt { "Nộp vào tài khoản:" } dd.mono { (or_missing(code(|t| t.treasury_account.as_ref().map(|c| c.as_str())))) }
                        dt { "Tại KBNN (mã KBNN):" } dd.mono { (or_missing(code(|t| t.treasury_code.as_ref().map(|c| c.as_str())))) }
                        dt { "Mã địa bàn hành chính:" } dd.mono { (or_missing(code(|t| t.admin_area_code.as_ref().map(|c| c.as_str())))) }
                        dt { "Mã cơ quan quản lý thu:" } dd.mono { (or_missing(code(|t| t.tax_office_code.as_ref().map(|c| c.as_str())))) }
                        dt { "Tiền thu đến hết ngày:" } dd { (voucher.up_to.format("%d/%m/%Y")) }
                    }
                    table.lines {
                        thead {
                            tr {
                                th.stt { "STT" }
                                th { "Nội dung các khoản nộp NSNN" }
                                th { "Mã NDKT" br; span.unit { "(tiểu mục)" } }
                                th { "Mã chương" }
                                th { "Kỳ thuế" }
                                th { "Số tiền" br; span.unit { "(đồng)" } }
                            }
                        }
                        tbody {
                            @for (index, line) in voucher.lines.iter().enumerate() {
                                tr {
                                    td.center { (index + 1) }
                                    td { (line.content.join("; ")) }
                                    td.center.mono { (or_missing(line.budget_sub_item.as_ref().map(|c| c.as_str()))) }
                                    td.center.mono { (or_missing(line.budget_chapter.as_ref().map(|c| c.as_str()))) }
                                    td.center { (line.period.label()) }
                                    td.num { (line.amount.grouped()) }
                                }
                            }
                        }
                        tfoot {
                            tr {
                                td.total-label colspan="5" { "Tổng cộng" }
                                td.num { (voucher.amount.grouped()) }
                            }
                        }
                    }
                    p.words { "Tổng số tiền ghi bằng chữ: " em { (words) "." } }
                    p.cases { "Số hồ sơ được nộp trong đợt: " (voucher.cases.len()) }
                    div.signatures {
                        div.signer {
                            div.role { "ĐỐI TƯỢNG NỘP TIỀN" }
                            div.date { "Ngày " (voucher.remitted_on.format("%d tháng %m năm %Y")) }
                            div.trio {
                                div { "Người nộp tiền" } div { "Kế toán trưởng" } div { "Thủ trưởng" }
                            }
                        }
                        div.signer {
                            div.role { "KHO BẠC NHÀ NƯỚC" }
                            div.date { "Ngày ..... tháng ..... năm ......" }
                            div.trio {
                                div { "Người nhận tiền" } div { "Kế toán" } div { "Kế toán trưởng" }
                            }
                        }
                    }
                }
            }
        }
    };
    markup.into_string()
}

/// An official form: black on white, serif, bordered table, one A4 page.
const STYLE: &str = r#"
*, *::before, *::after { box-sizing: border-box; }
html { background: #e8e8e4; }
body {
  margin: 0; padding: 24px 12px; color: #111;
  font-family: "Times New Roman", Times, "Liberation Serif", "Noto Serif", "DejaVu Serif", serif;
  font-size: 15px; line-height: 1.4;
}
.paper { max-width: 210mm; margin: 0 auto; padding: 16mm 14mm; background: #fff; box-shadow: 0 1px 4px rgba(0,0,0,.25); }
.top { display: flex; justify-content: space-between; align-items: flex-start; gap: 24px; }
.blank { border: 1px dashed #777; padding: 6px 10px; font-size: 12px; color: #555; text-align: center; }
.form-number { display: grid; grid-template-columns: max-content auto; gap: 0 6px; margin: 0; }
.form-number dd { margin: 0; font-weight: bold; }
.form-number .basis { grid-column: 1 / span 2; font-weight: normal; font-style: italic; font-size: 12px; }
.form-number .number { color: #8b0000; }
.heading { text-align: center; margin: 18px 0 14px; }
h1 { font-size: 20px; margin: 0 0 6px; letter-spacing: .3px; }
.ways { display: flex; justify-content: center; gap: 28px; }
.tick { margin-left: 6px; }
.fields { display: grid; grid-template-columns: max-content 1fr; gap: 3px 10px; margin: 0 0 12px; }
.fields dd { margin: 0; overflow-wrap: anywhere; }
.strong { font-weight: bold; text-transform: uppercase; }
.mono { letter-spacing: .5px; }
.missing { font-style: italic; color: #8b0000; }
.lines { width: 100%; border-collapse: collapse; margin: 6px 0 8px; }
.lines th, .lines td { border: 1px solid #333; padding: 4px 7px; vertical-align: top; }
.lines th { background: #f1f1ee; text-align: center; vertical-align: middle; line-height: 1.2; }
.lines .unit { font-weight: normal; font-style: italic; font-size: 12px; }
.lines .stt { width: 3em; }
.lines th:last-child { width: 8.5em; }
.lines th:nth-child(5) { width: 5.5em; }
.center { text-align: center; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.lines tfoot td { font-weight: bold; }
.total-label { text-align: right; }
.words { margin: 6px 0 2px; }
.cases { margin: 0; font-size: 13px; color: #333; }
.signatures { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; margin-top: 22px; text-align: center; }
.role { font-weight: bold; }
.date { font-style: italic; margin: 2px 0 6px; }
.trio { display: grid; grid-template-columns: repeat(3, 1fr); font-size: 13px; min-height: 90px; }
@page { size: A4; margin: 0; }
@media print {
  html, body { background: #fff; padding: 0; }
  .paper { box-shadow: none; }
  .lines, .signatures { break-inside: avoid; }
}
"#;

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use feeledger_domain::agency::TreasuryIdentity;
    use feeledger_domain::budget::{BudgetChapter, BudgetSubItem, TaxCode};
    use feeledger_domain::codes::{AccountNumber, AgencyCode, BankAccount, BankBin, CaseCode};
    use feeledger_domain::money::Vnd;
    use feeledger_domain::remittance_voucher::{CollectionMonth, VoucherLine};
    use uuid::Uuid;

    use super::*;

    fn voucher() -> VoucherDoc {
        let line = |sub_item: Option<&str>, content: &str, amount: i64| VoucherLine {
            budget_chapter: Some(BudgetChapter::parse("800").unwrap()),
            budget_sub_item: sub_item.map(|s| BudgetSubItem::parse(s).unwrap()),
            period: CollectionMonth { year: 2026, month: 10 },
            content: vec![content.into()],
            amount: Vnd::new(amount).unwrap(),
        };
        VoucherDoc {
            remittance_id: Uuid::from_u128(9),
            agency_code: AgencyCode::parse("H34.22.6").unwrap(),
            voucher_number: "GNT-<01>".into(),
            remitted_on: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            up_to: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            lines: vec![line(Some("2771"), "Lệ phí hộ tịch", 33_000), line(None, "Phí chứng thực", 1_200)],
            amount: Vnd::new(34_200).unwrap(),
            cases: vec![CaseCode::parse("H34.22.6-261020-0001").unwrap()],
        }
    }

    fn agency() -> AgencyConfigured {
        AgencyConfigured {
            agency_code: AgencyCode::parse("H34.22.6").unwrap(),
            name: "UBND phường Trần Hưng Đạo".into(),
            bank_account: BankAccount {
                bin: BankBin::parse("970415").unwrap(),
                number: AccountNumber::parse("113366668888").unwrap(),
                name: "UBND".into(),
            },
            retains_fees: true,
            counters: vec![],
            receipt_template_symbol: None,
            receipt_serial: None,
            public_payment: false,
            receipt_per_payment: false,
            receipt_number_width: None,
            treasury: TreasuryIdentity {
                tax_code: Some(TaxCode::parse("0108888888").unwrap()),
                ..TreasuryIdentity::default()
            },
            placement: feeledger_domain::oversight::Placement::default(),
            configured_at: Utc::now(),
        }
    }

    #[test]
    fn the_voucher_shows_the_payer_each_budget_line_the_total_and_the_words() {
        let agency = agency();
        let html = render(&VoucherPage { voucher: &voucher(), agency: Some(&agency) });
        for expected in [
            "GIẤY NỘP TIỀN VÀO NGÂN SÁCH NHÀ NƯỚC",
            "C1-02/NS",
            "0108888888",
            "UBND phường Trần Hưng Đạo",
            "2771",
            "33.000",
            "34.200",
            "10/2026",
            "Ba mươi bốn nghìn hai trăm đồng",
        ] {
            assert!(html.contains(expected), "missing {expected}");
        }
        assert!(html.contains(NOT_CONFIGURED), "a missing sub-item or treasury code says so");
        assert!(html.contains("GNT-&lt;01&gt;"), "values are escaped");
    }

    #[test]
    fn the_page_can_be_looked_at() {
        let agency = agency();
        let dir = std::env::temp_dir().join("feeledger-exports");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("giay-nop-tien.html"),
            render(&VoucherPage { voucher: &voucher(), agency: Some(&agency) }),
        )
        .unwrap();
    }
}
