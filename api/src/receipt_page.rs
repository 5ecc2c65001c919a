//! The printable HTML page of an electronic receipt (biên lai điện tử).
//!
//! It is the *bản thể hiện* (human-readable rendering) of a receipt for phí and lệ phí, laid out
//! as Vietnamese e-receipts are (Decree 123/2020/NĐ-CP, Circular 78/2021/TT-BTC): template
//! symbol (mẫu số), serial (ký hiệu) and a 7-digit number at the top right, the collecting
//! organisation at the top left, the payer, the table of fee lines, the total in figures and in
//! words, the issue date and the collector's block. A cancelled receipt carries a diagonal
//! "ĐÃ HỦY" watermark and the reason; a replacement names the number it replaces.
//!
//! The page is standalone: its CSS is inline in one `<style>` (the route's CSP allows inline
//! style and no script), it uses the system's fonts and prints on A4 or A5. Every value is
//! HTML-escaped by `maud`, which escapes each interpolation; the only unescaped text is the
//! constant stylesheet below. The payer appears only by name and masked id: a receipt page
//! can be forwarded, printed and left on a counter.

use chrono::{DateTime, Utc};
use feeledger_domain::receipt::{ReceiptCancelled, ReceiptIssued};
use feeledger_domain::vietnam_time;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::labels::fee_kind_label;

/// What the page shows: the receipt, and what the receipt event itself does not carry.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptPage<'a> {
    pub receipt: &'a ReceiptIssued,
    pub agency_name: &'a str,
    pub case_code: &'a str,
    /// Set when the receipt was cancelled: the page then says so, over the whole page.
    pub cancelled: Option<&'a ReceiptCancelled>,
    /// The number of the receipt this one replaces (after that one was cancelled).
    pub replaced_number: Option<u32>,
}

/// Receipt numbers are printed on 7 digits: `12` → `0000012`.
pub fn receipt_number(number: u32) -> String {
    format!("{number:07}")
}

/// A complete, standalone, printable HTML page.
pub fn render(page: &ReceiptPage<'_>) -> String {
    let receipt = page.receipt;
    let number = receipt.printed_number();
    let title = format!("Biên lai số {number} – ký hiệu {}", receipt.serial);
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
                    @if page.cancelled.is_some() {
                        div.watermark aria-hidden="true" { "ĐÃ HỦY" }
                    }
                    div.frame {
                        header.top {
                            div.issuer {
                                div.caption { "Đơn vị thu phí, lệ phí" }
                                div.org { (page.agency_name) }
                                div.tax-code {
                                    "Mã số thuế: "
                                    @match &receipt.tax_code {
                                        Some(tax_code) => span data-testid="tax-code" { (tax_code) },
                                        None => span { "(chưa cấu hình)" },
                                    }
                                }
                                div { "Mã đơn vị: " (receipt.agency_code) }
                            }
                            dl.series {
                                dt { "Mẫu số:" } dd { (receipt.template_symbol) }
                                dt { "Ký hiệu:" } dd { (receipt.serial) }
                                dt { "Số:" } dd.number { (number) }
                            }
                        }
                        div.heading {
                            h1 { "BIÊN LAI THU PHÍ, LỆ PHÍ" }
                            div.subtitle { "(Bản thể hiện của biên lai điện tử)" }
                            div.date { (vietnamese_date(receipt.issued_at)) }
                        }
                        @if let Some(cancelled) = page.cancelled {
                            section.cancelled role="alert" {
                                div.cancelled-title { "BIÊN LAI ĐÃ BỊ HỦY" }
                                div { "Ngày hủy: " (short_date(cancelled.cancelled_at)) }
                                div { "Lý do hủy: " (cancelled.reason) }
                            }
                        }
                        @if let Some(replaced) = page.replaced_number {
                            p.replaces {
                                "Thay thế cho biên lai số " (receipt_number(replaced))
                            }
                        }
                        dl.fields {
                            dt { "Mã hồ sơ:" } dd { (page.case_code) }
                            @if let Some(procedure) = &receipt.procedure_code {
                                dt { "Mã thủ tục hành chính:" } dd { (procedure) }
                            }
                            @if receipt.payment_id.is_some() {
                                dt { "Nội dung:" } dd { "Thu theo lần nộp tiền (một phần hoặc toàn bộ phí, lệ phí của hồ sơ)" }
                            }
                            dt { "Họ tên người nộp:" } dd.payer { (receipt.payer_name) }
                            @if let Some(masked) = &receipt.payer_masked_id {
                                dt { "Số định danh/Mã số thuế:" } dd { (masked) }
                            }
                        }
                        table.lines {
                            thead {
                                tr {
                                    th.stt { "STT" }
                                    th { "Tên loại phí, lệ phí" }
                                    th { "Loại" }
                                    th { "Số lượng" }
                                    th { "Đơn giá" br; span.unit { "(đồng)" } }
                                    th { "Thành tiền" br; span.unit { "(đồng)" } }
                                }
                            }
                            tbody {
                                @for (index, line) in receipt.lines.iter().enumerate() {
                                    tr {
                                        td.center { (index + 1) }
                                        td { (line.name) }
                                        td.kind { (fee_kind_label(line.kind)) }
                                        td.center { (line.quantity) }
                                        td.num { (line.unit_amount.grouped()) }
                                        td.num { (line.amount.grouped()) }
                                    }
                                }
                            }
                            tfoot {
                                tr {
                                    td.total-label colspan="5" { "Tổng cộng" }
                                    td.num { (receipt.amount.grouped()) }
                                }
                            }
                        }
                        p.words { "Số tiền bằng chữ: " em { (receipt.amount_in_words) "." } }
                        div.signatures {
                            div.signer {
                                div.role { "Người thu tiền" }
                                div.hint { "(Biên lai điện tử)" }
                                div.stamp {
                                    div { "Đơn vị thu: " (page.agency_name) }
                                    div { "Ngày lập: " (short_date(receipt.issued_at)) }
                                }
                            }
                        }
                        footer.note { "(Cần kiểm tra, đối chiếu khi lập, giao, nhận biên lai)" }
                    }
                }
            }
        }
    };
    markup.into_string()
}

/// "Ngày 05 tháng 03 năm 2026", the receipt's day in Vietnam (UTC+7), not the server's.
fn vietnamese_date(instant: DateTime<Utc>) -> String {
    vietnam_time::date_of(instant).format("Ngày %d tháng %m năm %Y").to_string()
}

/// "05/03/2026", in Vietnam.
fn short_date(instant: DateTime<Utc>) -> String {
    vietnam_time::date_of(instant).format("%d/%m/%Y").to_string()
}

/// A sober official document: black on white, serif (Times New Roman where installed, as
/// Vietnamese administrative documents use it), bordered table, no colour but the cancellation.
const STYLE: &str = r#"
*, *::before, *::after { box-sizing: border-box; }
html { background: #e8e8e4; }
body {
  margin: 0; padding: 24px 12px; color: #111;
  font-family: "Times New Roman", Times, "Liberation Serif", "Noto Serif", "DejaVu Serif", serif;
  font-size: 16px; line-height: 1.45;
}
.paper {
  position: relative; max-width: 800px; margin: 0 auto; padding: 28px; overflow: hidden;
  background: #fff; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.25);
}
.frame { position: relative; border: 3px double #333; padding: 22px 28px 26px; }
.top { display: flex; justify-content: space-between; align-items: flex-start; gap: 24px; }
.issuer { max-width: 60%; }
.caption { font-size: 13px; color: #444; }
.org { font-weight: bold; text-transform: uppercase; }
.series { display: grid; grid-template-columns: max-content auto; gap: 1px 8px; margin: 0; white-space: nowrap; }
.series dt { text-align: left; }
.series dd { margin: 0; font-weight: bold; }
.series .number { color: #8b0000; letter-spacing: 0.5px; }
.heading { text-align: center; margin: 22px 0 18px; }
h1 { font-size: 23px; letter-spacing: 0.5px; margin: 0; }
.subtitle, .date { font-style: italic; }
.date { margin-top: 4px; }
.fields { display: grid; grid-template-columns: max-content 1fr; gap: 4px 10px; margin: 0 0 14px; }
.fields dd { margin: 0; font-weight: bold; overflow-wrap: anywhere; }
.lines { width: 100%; border-collapse: collapse; margin: 6px 0 10px; }
.lines th, .lines td { border: 1px solid #333; padding: 5px 8px; vertical-align: top; }
.lines th { background: #f1f1ee; font-weight: bold; text-align: center; vertical-align: middle; line-height: 1.25; }
.lines .unit { font-weight: normal; font-style: italic; font-size: 13px; }
.lines .stt { width: 3em; }
.center { text-align: center; }
.kind { text-align: center; white-space: nowrap; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.lines tfoot td { font-weight: bold; }
.total-label { text-align: right; }
.words { margin: 8px 0 0; }
.replaces { margin: -6px 0 14px; text-align: center; font-style: italic; }
.signatures { display: flex; justify-content: flex-end; margin-top: 26px; }
.signer { text-align: center; min-width: 270px; }
.role { font-weight: bold; }
.hint { font-style: italic; font-size: 14px; }
.stamp { margin-top: 10px; border: 1px solid #555; padding: 8px 12px; text-align: left; font-size: 14px; }
.note { margin-top: 28px; text-align: center; font-style: italic; font-size: 13px; color: #444; }
.cancelled { border: 2px solid #a40000; color: #a40000; padding: 8px 12px; margin: 0 0 16px; }
.cancelled-title { font-weight: bold; letter-spacing: 0.5px; }
.watermark {
  position: absolute; top: 50%; left: 50%; z-index: 2; pointer-events: none; white-space: nowrap;
  transform: translate(-50%, -50%) rotate(-30deg);
  font-family: Arial, "Liberation Sans", "DejaVu Sans", sans-serif; font-weight: bold; font-size: 130px;
  color: rgba(164, 0, 0, 0.2); border: 10px solid rgba(164, 0, 0, 0.2); padding: 0 36px; border-radius: 12px;
}
@media (max-width: 560px) {
  body { padding: 0; font-size: 14px; }
  .paper { padding: 10px; }
  .frame { padding: 14px; }
  .top { flex-direction: column; gap: 10px; }
  .issuer { max-width: none; }
  .fields { grid-template-columns: 1fr; gap: 0; }
  .fields dd { margin-bottom: 4px; }
  .watermark { font-size: 72px; }
}
@page { margin: 12mm; }
@media print {
  html, body { background: #fff; padding: 0; }
  body { font-size: 12pt; }
  .paper { max-width: none; padding: 0; box-shadow: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .lines, .signatures { break-inside: avoid; }
}
"#;

#[cfg(test)]
mod tests {
    use feeledger_domain::amount_in_words;
    use feeledger_domain::case_fees::AssessedLine;
    use feeledger_domain::codes::{AgencyCode, FeeCode};
    use feeledger_domain::fee_schedule::FeeKind;
    use feeledger_domain::money::Vnd;
    use uuid::Uuid;

    use super::*;

    fn line(code: &str, name: &str, kind: FeeKind, quantity: u32, unit: i64) -> AssessedLine {
        let unit_amount = Vnd::new(unit).unwrap();
        AssessedLine {
            fee_code: FeeCode::parse(code).unwrap(),
            name: name.into(),
            kind,
            quantity,
            unit_amount,
            amount: unit_amount.checked_mul(quantity).unwrap(),
        }
    }

    fn receipt(payer_name: &str) -> ReceiptIssued {
        let lines = vec![
            line("LP-HOTICH", "Lệ phí đăng ký khai sinh", FeeKind::LePhi, 1, 8_000),
            line("P-SAOY", "Phí cấp bản sao trích lục hộ tịch", FeeKind::Phi, 3, 3_000),
            line("P-CHUNGTHUC", "Phí chứng thực bản sao từ bản chính", FeeKind::Phi, 2, 2_000),
        ];
        let amount = Vnd::sum(lines.iter().map(|l| l.amount)).unwrap();
        ReceiptIssued {
            receipt_id: Uuid::from_u128(0x12),
            agency_code: AgencyCode::parse("H34.22.6").unwrap(),
            template_symbol: "01BLP0-001".into(),
            serial: "AA-26E".into(),
            number: 12,
            payer_name: payer_name.into(),
            payer_masked_id: Some("******8870".into()),
            lines,
            amount,
            amount_in_words: amount_in_words::vietnamese(amount),
            // 19:30 UTC on the 4th is 02:30 on the 5th in Hà Nội.
            issued_at: "2026-03-04T19:30:00Z".parse().unwrap(),
            replaces: None,
            tax_code: Some(feeledger_domain::budget::TaxCode::parse("0100109106").unwrap()),
            procedure_code: Some(feeledger_domain::procedure::ProcedureCode::parse("2.000815.000.00.00.H34").unwrap()),
            payment_id: None,
            number_width: None,
        }
    }

    fn page<'a>(receipt: &'a ReceiptIssued, cancelled: Option<&'a ReceiptCancelled>) -> ReceiptPage<'a> {
        ReceiptPage {
            receipt,
            agency_name: "UBND phường Thủ Dầu Một",
            case_code: "H34.22.6-260305-0007",
            cancelled,
            replaced_number: None,
        }
    }

    fn has_digit_run(text: &str, length: usize) -> bool {
        let mut run = 0;
        for c in text.chars() {
            run = if c.is_ascii_digit() { run + 1 } else { 0 };
            if run >= length {
                return true;
            }
        }
        false
    }

    #[test]
    fn the_page_shows_the_receipts_series_number_lines_total_and_words() {
        let receipt = receipt("Nguyễn Thị Lan");
        let html = render(&page(&receipt, None));
        assert!(html.starts_with("<!DOCTYPE html>"));
        for expected in [
            "BIÊN LAI THU PHÍ, LỆ PHÍ",
            "(Bản thể hiện của biên lai điện tử)",
            "01BLP0-001",
            "AA-26E",
            "0000012",
            "UBND phường Thủ Dầu Một",
            "H34.22.6-260305-0007",
            "Nguyễn Thị Lan",
            "Lệ phí đăng ký khai sinh",
            "Lệ phí",
            "8.000",
            "9.000",
            "21.000",
            "Hai mươi mốt nghìn đồng",
            "Người thu tiền",
            "Mã số thuế: ",
            "0100109106",
            "2.000815.000.00.00.H34",
        ] {
            assert!(html.contains(expected), "missing {expected:?}");
        }
        assert!(html.contains("Ngày 05 tháng 03 năm 2026"), "the issue day is Vietnam's, not UTC's");
        assert!(!html.contains("ĐÃ HỦY") && !html.contains("Thay thế"));
        assert!(!html.contains("<script"), "the page runs no script");
    }

    #[test]
    fn the_payer_appears_only_by_the_masked_id() {
        let receipt = receipt("Trần Văn Bình");
        let html = render(&page(&receipt, None));
        assert!(html.contains("******8870"));
        assert!(!has_digit_run(&html, 12), "no full identity number (12 digits) anywhere in the page");
    }

    #[test]
    fn a_payer_name_with_markup_is_escaped() {
        let receipt = receipt("<script>alert(1)</script> & \"Lan\"");
        let html = render(&page(&receipt, None));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Lan&quot;"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn every_value_is_escaped_including_the_agency_case_and_cancellation_reason() {
        let receipt = receipt("A");
        let cancelled = ReceiptCancelled {
            receipt_id: receipt.receipt_id,
            reason: "<img src=x onerror=alert(1)>".into(),
            cancelled_at: "2026-03-06T03:00:00Z".parse().unwrap(),
        };
        let mut page = page(&receipt, Some(&cancelled));
        page.agency_name = "<b>UBND</b>";
        page.case_code = "\"><i>";
        let html = render(&page);
        assert!(!html.contains("<img") && !html.contains("<b>UBND") && !html.contains("\"><i>"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn a_cancelled_receipt_says_so_with_its_reason_and_date() {
        let receipt = receipt("Nguyễn Thị Lan");
        let cancelled = ReceiptCancelled {
            receipt_id: receipt.receipt_id,
            reason: "Sai tên người nộp".into(),
            cancelled_at: "2026-03-06T18:00:00Z".parse().unwrap(),
        };
        let html = render(&page(&receipt, Some(&cancelled)));
        assert!(html.contains("class=\"watermark\""));
        assert!(html.contains("ĐÃ HỦY"));
        assert!(html.contains("Sai tên người nộp"));
        assert!(html.contains("Ngày hủy: 07/03/2026"), "cancelled at 01:00 on the 7th in Hà Nội");
    }

    #[test]
    fn a_replacement_names_the_receipt_it_replaces() {
        let receipt = receipt("Nguyễn Thị Lan");
        let mut page = page(&receipt, None);
        page.replaced_number = Some(11);
        assert!(render(&page).contains("Thay thế cho biên lai số 0000011"));
    }

    #[test]
    fn the_page_can_be_looked_at() {
        let receipt = receipt("Nguyễn Thị Lan");
        let cancelled = ReceiptCancelled {
            receipt_id: receipt.receipt_id,
            reason: "Sai tên người nộp".into(),
            cancelled_at: "2026-03-06T03:00:00Z".parse().unwrap(),
        };
        let dir = std::env::temp_dir().join("feeledger-receipt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("receipt.html"), render(&page(&receipt, None))).unwrap();
        std::fs::write(dir.join("receipt-cancelled.html"), render(&page(&receipt, Some(&cancelled)))).unwrap();
    }
}
