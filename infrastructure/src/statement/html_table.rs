//! The "Excel" download of several Vietnamese banks that is really an HTML page holding a table,
//! saved with an `.xls` name (Excel opens it and shows the table as a sheet). It is read into the
//! same [`Grid`] as a workbook or a CSV, the way Excel lays it out:
//!
//! - every `<tr>` is a row and every `<td>`/`<th>` a cell; a `colspan` or `rowspan` covers the
//!   cells to its right and below, which stay empty (as in a merged range), so the columns of a
//!   two-row merged header line up with the lines under it;
//! - text outside the cells (a heading above the table, a paragraph between two tables) is a row
//!   of its own, one cell wide;
//! - inside a cell, tags are dropped, `<br>` and block elements (`<p>`, `<div>`) break the line,
//!   runs of white space (`&nbsp;` included) are one space, and character references (`&amp;`,
//!   `&#7897;`, `&#x1EA1;`) are decoded; a table nested in a cell adds its text to the cell;
//! - `<script>`, `<style>`, `<title>` (in `<head>`), comments (where Excel keeps its `<xml>`
//!   settings) and `<xml>` islands are not shown, so they are not read.
//!
//! Tokenising is html5gum's (the WHATWG tokenizer, no dependencies); building the grid is here.

use html5gum::{DefaultEmitter, HtmlString, StartTag, Token, Tokenizer};

use super::bank_sheet::{Cell, Grid};
use super::{Location, StatementError, decode_utf8};

/// The widest row read: the old XLS sheet's 256 columns, which an HTML ".xls" cannot exceed
/// when Excel opens it. A wider row is refused rather than grown without bound.
const COLUMNS_MAX: usize = 256;

/// The largest `rowspan` honoured (the HTML standard's own limit).
const ROWSPAN_MAX: u32 = 65_534;

/// Cells (a `colspan` counting each column it covers) a page may make per byte of it, with a
/// floor for tiny pages: a real export has far fewer (a cell takes at least `<td>`), while
/// `<td colspan=256>` repeated would otherwise turn each byte into hundreds of grid cells.
const CELLS_PER_BYTE_MAX: usize = 1;
const CELLS_FLOOR: usize = 4_096;

/// Names of a first element that make a text an HTML page (after a byte order mark, white
/// space, an `<?xml …?>` declaration and comments): camt.053 starts with `Document` instead.
const HTML_ROOTS: [&[u8]; 8] = [b"html", b"head", b"body", b"meta", b"table", b"title", b"style", b"div"];

/// Whether the bytes are an HTML page (`<html`, `<!DOCTYPE html`, `<table`, `<meta`…), as
/// opposed to XML such as camt.053 (`<?xml …?><Document …>`).
pub(super) fn is_html(bytes: &[u8]) -> bool {
    let mut rest = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    loop {
        rest = rest.trim_ascii_start();
        let skip_past = |end: &[u8]| rest.windows(end.len()).position(|w| w == end).map(|at| at + end.len());
        let skipped = if rest.starts_with(b"<?") {
            skip_past(b"?>")
        } else if rest.starts_with(b"<!--") {
            skip_past(b"-->")
        } else {
            break;
        };
        match skipped {
            Some(at) => rest = &rest[at..],
            None => return false,
        }
    }
    if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<!doctype") {
        let name = rest[9..].trim_ascii_start();
        return name.len() >= 4 && name[..4].eq_ignore_ascii_case(b"html");
    }
    let Some(tag) = rest.strip_prefix(b"<") else { return false };
    let name_len = tag.iter().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_')).count();
    let name = &tag[..name_len];
    // `<html xmlns:x="urn:schemas-microsoft-com:office:excel">`, or a prefixed `<h:html>`.
    let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
    HTML_ROOTS.iter().any(|root| local.eq_ignore_ascii_case(root))
}

/// The table(s) of an HTML page as a grid, row by row in document order.
///
/// # Errors
///
/// The page is not UTF-8, or a row is wider than [`COLUMNS_MAX`].
pub(super) fn read_html(bytes: &[u8]) -> Result<Grid, StatementError> {
    let text = decode_utf8(bytes)?;
    let mut emitter = DefaultEmitter::default();
    // `<script>`, `<style>` and `<title>` hold raw text, not tags.
    emitter.naively_switch_states(true);
    let mut builder = GridBuilder {
        cells_left: bytes.len().saturating_mul(CELLS_PER_BYTE_MAX).max(CELLS_FLOOR),
        ..Default::default()
    };
    for token in Tokenizer::new_with_emitter(text, emitter) {
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => builder.start(&tag)?,
            Token::EndTag(tag) => builder.end(&tag.name),
            Token::String(text) => builder.text(&text),
            // Parse errors are recovered from by the tokenizer, as a browser (or Excel) would.
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    builder.finish()?;
    Ok(builder.grid)
}

/// A row being read: its cells so far, the next free column, and the columns a `rowspan` from
/// a row above covers.
#[derive(Debug, Default)]
struct OpenRow {
    cells: Vec<Cell>,
    next: usize,
    covered: Vec<bool>,
}

/// A cell being read: its column and its lines of text so far.
#[derive(Debug)]
struct OpenCell {
    column: usize,
    lines: Vec<String>,
}

impl OpenCell {
    fn push_text(&mut self, text: &str) {
        match self.lines.last_mut() {
            Some(line) => line.push_str(text),
            None => self.lines.push(text.to_owned()),
        }
    }

    fn break_line(&mut self) {
        self.lines.push(String::new());
    }

    fn into_cell(self) -> Cell {
        let lines: Vec<String> = self.lines.iter().map(|l| collapse(l)).filter(|l| !l.is_empty()).collect();
        if lines.is_empty() { Cell::Empty } else { Cell::Text(lines.join("\n")) }
    }
}

/// Runs of white space (a no-break space included) as one space, trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Default)]
struct GridBuilder {
    grid: Grid,
    row: Option<OpenRow>,
    cell: Option<OpenCell>,
    /// Text outside any cell, shown by Excel as a row of its own.
    loose: String,
    /// For each column, how many of the next rows a `rowspan` covers.
    spans_below: Vec<u32>,
    /// Tables nested inside the open cell.
    nested: usize,
    /// An element whose text is not shown (`script`, `style`, `title`, `xml`…), until its end
    /// tag.
    hidden: Option<Vec<u8>>,
    /// How many more cells the page may make (see [`CELLS_PER_BYTE_MAX`]).
    cells_left: usize,
    /// Tables started and not yet ended (not counting those nested in a cell).
    tables_open: usize,
}

/// Elements that start a new line: in a cell a line break, outside one a new row.
fn is_block(name: &[u8]) -> bool {
    matches!(
        name,
        b"p" | b"div" | b"br" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"li" | b"caption" | b"center" | b"hr"
    )
}

/// A `colspan`/`rowspan` value as browsers read it: leading digits; missing, zero or not a
/// number is 1.
fn span(tag: &StartTag<()>, name: &str, max: u32) -> u32 {
    let Some(value) = tag.attributes.get(name.as_bytes()) else { return 1 };
    let digits: String =
        String::from_utf8_lossy(value).trim().chars().take_while(char::is_ascii_digit).take(6).collect();
    digits.parse::<u32>().ok().filter(|n| *n > 0).map_or(1, |n| n.min(max))
}

impl GridBuilder {
    fn row_number(&self) -> u64 {
        self.grid.rows.len() as u64 + 1
    }

    fn start(&mut self, tag: &StartTag<()>) -> Result<(), StatementError> {
        let name = tag.name.as_slice();
        if self.hidden.is_some() {
            return Ok(());
        }
        // `<head>` itself is not hidden: its only text is in these, and a page may leave out
        // `</head>`.
        if matches!(name, b"script" | b"style" | b"title" | b"xml" | b"template" | b"noscript") {
            if !tag.self_closing {
                self.hidden = Some(name.to_vec());
            }
            return Ok(());
        }
        if let Some(cell) = &mut self.cell {
            match name {
                b"table" => {
                    self.nested += 1;
                    cell.break_line();
                }
                b"tr" if self.nested > 0 => cell.break_line(),
                b"td" | b"th" if self.nested > 0 => cell.push_text(" "),
                // A cell or row start closes the open cell (HTML lets `</td>` be left out).
                b"td" | b"th" | b"tr" => {}
                _ if is_block(name) => cell.break_line(),
                _ => {}
            }
            if self.nested > 0 || !matches!(name, b"td" | b"th" | b"tr") {
                return Ok(());
            }
        }
        match name {
            b"table" => {
                self.close_row();
                self.flush_loose();
                self.spans_below.clear();
                self.tables_open += 1;
            }
            b"tr" => {
                self.close_row();
                self.flush_loose();
                self.open_row();
            }
            b"td" | b"th" => self.open_cell(tag)?,
            _ if is_block(name) => self.flush_loose(),
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, name: &HtmlString) {
        let name = name.as_slice();
        if let Some(hidden) = &self.hidden {
            if hidden.as_slice() == name {
                self.hidden = None;
            }
            return;
        }
        if let Some(cell) = &mut self.cell {
            match name {
                b"table" if self.nested > 0 => {
                    self.nested -= 1;
                    cell.break_line();
                    return;
                }
                _ if self.nested > 0 => {
                    if name == b"tr" || is_block(name) {
                        cell.break_line();
                    }
                    return;
                }
                b"td" | b"th" | b"tr" | b"table" => {}
                _ => {
                    if is_block(name) {
                        cell.break_line();
                    }
                    return;
                }
            }
        }
        match name {
            b"td" | b"th" => self.close_cell(),
            b"tr" => self.close_row(),
            b"table" => {
                self.close_row();
                self.spans_below.clear();
                self.tables_open = self.tables_open.saturating_sub(1);
            }
            _ if is_block(name) => self.flush_loose(),
            _ => {}
        }
    }

    fn text(&mut self, text: &[u8]) {
        if self.hidden.is_some() {
            return;
        }
        let text = String::from_utf8_lossy(text);
        match &mut self.cell {
            Some(cell) => cell.push_text(&text),
            None => self.loose.push_str(&text),
        }
    }

    fn open_row(&mut self) {
        let covered = self.spans_below.iter().map(|rows| *rows > 0).collect();
        for rows in &mut self.spans_below {
            *rows = rows.saturating_sub(1);
        }
        self.row = Some(OpenRow { cells: Vec::new(), next: 0, covered });
    }

    fn open_cell(&mut self, tag: &StartTag<()>) -> Result<(), StatementError> {
        self.close_cell();
        if self.row.is_none() {
            // A cell without `<tr>` starts a row, as in a browser.
            self.flush_loose();
            self.open_row();
        }
        let at = self.row_number();
        let row = self.row.as_mut().expect("a row was just opened");
        while row.covered.get(row.next).copied().unwrap_or(false) {
            row.next += 1;
        }
        let column = row.next;
        let columns = span(tag, "colspan", COLUMNS_MAX as u32) as usize;
        let rows = span(tag, "rowspan", ROWSPAN_MAX);
        if column + columns > COLUMNS_MAX {
            return Err(StatementError::Malformed {
                at: Location::Row(at),
                detail: format!("the HTML table row has more than {COLUMNS_MAX} columns"),
            });
        }
        self.cells_left = self.cells_left.checked_sub(columns).ok_or_else(|| StatementError::Malformed {
            at: Location::Row(at),
            detail: "the HTML tables span more cells than the page has bytes; this is not a bank's export".to_owned(),
        })?;
        if row.cells.len() < column + columns {
            row.cells.resize(column + columns, Cell::Empty);
        }
        row.next = column + columns;
        if rows > 1 {
            if self.spans_below.len() < column + columns {
                self.spans_below.resize(column + columns, 0);
            }
            for below in &mut self.spans_below[column..column + columns] {
                *below = (*below).max(rows - 1);
            }
        }
        self.cell = Some(OpenCell { column, lines: Vec::new() });
        Ok(())
    }

    fn close_cell(&mut self) {
        let Some(cell) = self.cell.take() else { return };
        self.nested = 0;
        if let Some(row) = &mut self.row {
            let column = cell.column;
            row.cells[column] = cell.into_cell();
        }
    }

    fn close_row(&mut self) {
        self.close_cell();
        if let Some(row) = self.row.take() {
            let number = self.row_number();
            self.grid.rows.push((number, row.cells));
        }
    }

    fn flush_loose(&mut self) {
        let text = collapse(&std::mem::take(&mut self.loose));
        if !text.is_empty() {
            let number = self.row_number();
            self.grid.rows.push((number, vec![Cell::Text(text)]));
        }
    }

    /// Ends the grid. `</table>` cannot be left out in HTML, so a page that ends inside a table
    /// was cut short (an interrupted download): it is refused rather than read in part.
    fn finish(&mut self) -> Result<(), StatementError> {
        let open = self.nested > 0 || self.tables_open > 0;
        self.close_row();
        self.flush_loose();
        if open {
            return Err(StatementError::Malformed {
                at: Location::File,
                detail: "the HTML page ends inside a table (no \"</table>\"): the download is incomplete".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(html: &str) -> Vec<Vec<String>> {
        read_html(html.as_bytes())
            .expect("reads")
            .rows
            .into_iter()
            .map(|(_, cells)| {
                cells
                    .into_iter()
                    .map(|c| match c {
                        Cell::Text(t) => t,
                        Cell::Empty => String::new(),
                        other => panic!("HTML cells are text: {other:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn html_pages_are_told_from_xml_and_text() {
        for html in [
            "<html><body><table></table></body></html>",
            "\u{feff}  <!DOCTYPE html>\n<html>",
            "<!doctype HTML PUBLIC \"-//W3C//DTD HTML 4.0 Transitional//EN\">",
            "<TABLE border=1><tr><td>1</td></tr></TABLE>",
            "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"><table>",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- saved by the bank -->\n<html xmlns=\"http://www.w3.org/1999/xhtml\">",
            "<html xmlns:x=\"urn:schemas-microsoft-com:office:excel\">",
        ] {
            assert!(is_html(html.as_bytes()), "{html}");
        }
        for other in [
            "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\">",
            "<Document>",
            "<!DOCTYPE Document>",
            "<tablet>",
            "<?xml never closed",
            "account_number,booked_on\n",
            ":20:STMT\n",
            "",
        ] {
            assert!(!is_html(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn colspan_and_rowspan_leave_the_covered_cells_empty_so_columns_line_up() {
        let html = "<table>\
            <tr><th rowspan=2>STT</th><th rowspan=\"2\">Ngày GD</th><th colspan=\"2\">Số tiền</th><th rowspan=2>Số dư</th></tr>\
            <tr><th>Ghi nợ</th><th>Ghi có</th></tr>\
            <tr><td>1</td><td>25/04/2024</td><td></td><td>150.000</td><td>52.650.000</td></tr>\
            </table>";
        assert_eq!(
            grid(html),
            [
                vec!["STT", "Ngày GD", "Số tiền", "", "Số dư"],
                vec!["", "", "Ghi nợ", "Ghi có"],
                vec!["1", "25/04/2024", "", "150.000", "52.650.000"],
            ]
        );
    }

    #[test]
    fn cell_text_is_decoded_stripped_of_tags_and_its_white_space_collapsed() {
        let html = "<html><head><title>Sao kê</title><style>td { mso-number-format:\"\\@\"; }</style>\
            <script>var x = '<td>not a cell</td>';</script></head><body>\
            <h3>NGÂN HÀNG &amp; <i>CHI NHÁNH</i></h3>\
            <!--[if gte mso 9]><xml><x:Name>Sheet1</x:Name></xml><![endif]-->\
            <table border=1>\n  <tr>\n    <td><b>Ng&#224;y&nbsp;GD</b><br>S&#x1ED1; CT</td>\
            <td>  Thanh&nbsp;&nbsp;to&aacute;n\n   l&#7879; ph&iacute; &lt;H34&gt;  </td><td>&nbsp;</td>\
            <td><table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table></td><td>x<p>y</p>z</td>\
            </tr></table><p>Người lập</p></body></html>";
        assert_eq!(
            grid(html),
            [
                vec!["NGÂN HÀNG & CHI NHÁNH".to_owned()],
                vec![
                    "Ngày GD\nSố CT".to_owned(),
                    "Thanh toán lệ phí <H34>".to_owned(),
                    String::new(),
                    "a b\nc".to_owned(),
                    "x\ny\nz".to_owned(),
                ],
                vec!["Người lập".to_owned()],
            ]
        );
    }

    #[test]
    fn cells_and_rows_whose_end_tags_are_left_out_are_still_read() {
        let html = "<html><head><title>Sao kê</title><table><tr><td>a<td>b<tr><td>c</table><td>d";
        assert_eq!(grid(html), [vec!["a", "b"], vec!["c"], vec!["d"]]);
    }

    #[test]
    fn a_page_cut_short_inside_its_table_is_refused() {
        for html in ["<table><tr><td>a</td></tr>", "<table><tr><td>a<table><tr><td>b</table>", "<table><tr><td>a"] {
            let error = read_html(html.as_bytes()).expect_err("cut short");
            assert_eq!(
                error.to_string(),
                "file: the HTML page ends inside a table (no \"</table>\"): the download is incomplete",
                "{html}"
            );
        }
    }

    #[test]
    fn a_row_wider_than_an_xls_sheet_is_refused_with_its_row() {
        let html = "<p>title</p><table><tr><td>1</td></tr><tr><td colspan=200>a</td><td colspan=57>b</td></tr></table>";
        let error = read_html(html.as_bytes()).expect_err("too wide");
        assert_eq!(error.to_string(), "row 3: the HTML table row has more than 256 columns");
        // Spans are capped: a huge colspan fills the sheet's width, a huge rowspan covers its
        // column in the rows below without being counted out row by row.
        let html = "<table><tr><td colspan=99999999>a</td></tr><tr><td rowspan=99999999>b</td></tr><tr><td>c</td></tr></table>";
        let rows = grid(html);
        assert_eq!(rows[0].len(), 256);
        assert_eq!(rows[0][0], "a");
        assert_eq!(rows[1..], [vec!["b"], vec!["", "c"]]);
    }

    #[test]
    fn a_page_of_wide_spans_is_refused_before_it_fills_memory() {
        let html = "<table>".to_owned() + &"<tr><td colspan=256>".repeat(100);
        let error = read_html(html.as_bytes()).expect_err("too many cells");
        assert_eq!(
            error.to_string(),
            "row 17: the HTML tables span more cells than the page has bytes; this is not a bank's export"
        );
    }

    #[test]
    fn a_page_in_another_encoding_is_refused_as_not_utf8() {
        let error = read_html(b"<html><table><tr><td>Ng\xE0y</td></tr></table></html>").expect_err("not UTF-8");
        assert!(error.to_string().starts_with("line 1: the file is not UTF-8 text"), "{error}");
    }
}
