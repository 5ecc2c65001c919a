//! Amounts in Vietnamese words, as receipts print them: `3000` → "Ba nghìn đồng".
//!
//! Rules: digits are read in groups of three (nghìn, triệu, tỷ, nghìn tỷ); a group after the
//! first is read in full ("một triệu không trăm lẻ năm nghìn"); a missing ten is "lẻ"; ten is
//! "mười"; a one after twenty or more is "mốt"; a five after a ten is "lăm".

use crate::money::Vnd;

const DIGITS: [&str; 10] = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"];
const BILLION: u64 = 1_000_000_000;

pub fn vietnamese(amount: Vnd) -> String {
    let dong = u64::try_from(amount.dong()).unwrap_or_default();
    if dong == 0 {
        return "Không đồng".to_owned();
    }
    let mut words: Vec<&str> = Vec::new();
    read(dong, false, &mut words);
    let sentence = words.join(" ");
    let mut chars = sentence.chars();
    let capitalised: String = chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default();
    format!("{capitalised} đồng")
}

/// Reads `n > 0`. Above a billion, the number of tỷ is read as a number of its own
/// ("một nghìn năm trăm tỷ"); below, groups of three: triệu, nghìn, units. `in_full` is for a
/// number that follows a larger part ("… tỷ không trăm lẻ một").
fn read(n: u64, in_full: bool, words: &mut Vec<&'static str>) {
    if n >= BILLION {
        read(n / BILLION, in_full, words);
        words.push("tỷ");
        if !n.is_multiple_of(BILLION) {
            read(n % BILLION, true, words);
        }
        return;
    }
    let groups = [(n / 1_000_000, "triệu"), (n / 1_000 % 1_000, "nghìn"), (n % 1_000, "")];
    let mut started = in_full;
    for (group, scale) in groups {
        if group == 0 {
            continue;
        }
        read_group(group, started, words);
        if !scale.is_empty() {
            words.push(scale);
        }
        started = true;
    }
}

fn digit(d: u64) -> &'static str {
    DIGITS[usize::try_from(d % 10).unwrap_or_default()]
}

/// One group of three digits; `in_full` reads "không trăm" and "lẻ" of a group that follows
/// another.
fn read_group(group: u64, in_full: bool, words: &mut Vec<&'static str>) {
    let (hundreds, tens, units) = (group / 100, group / 10 % 10, group % 10);
    let said_hundreds = in_full || hundreds > 0;
    if said_hundreds {
        words.push(digit(hundreds));
        words.push("trăm");
    }
    match tens {
        0 if units != 0 && said_hundreds => words.push("lẻ"),
        0 => {}
        1 => words.push("mười"),
        _ => {
            words.push(digit(tens));
            words.push("mươi");
        }
    }
    match (units, tens) {
        (0, _) => {}
        (1, t) if t >= 2 => words.push("mốt"),
        (5, t) if t >= 1 => words.push("lăm"),
        (u, _) => words.push(digit(u)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(dong: i64) -> String {
        vietnamese(Vnd::new(dong).unwrap())
    }

    #[test]
    fn amounts_read_as_a_receipt_prints_them() {
        for (dong, words) in [
            (0, "Không đồng"),
            (5, "Năm đồng"),
            (10, "Mười đồng"),
            (15, "Mười lăm đồng"),
            (21, "Hai mươi mốt đồng"),
            (25, "Hai mươi lăm đồng"),
            (105, "Một trăm lẻ năm đồng"),
            (1_000, "Một nghìn đồng"),
            (2_000, "Hai nghìn đồng"),
            (3_000, "Ba nghìn đồng"),
            (8_000, "Tám nghìn đồng"),
            (11_000, "Mười một nghìn đồng"),
            (180_000, "Một trăm tám mươi nghìn đồng"),
            (200_000, "Hai trăm nghìn đồng"),
            (1_000_000, "Một triệu đồng"),
            (1_005_000, "Một triệu không trăm lẻ năm nghìn đồng"),
            (1_050_000, "Một triệu không trăm năm mươi nghìn đồng"),
            (2_310_500, "Hai triệu ba trăm mười nghìn năm trăm đồng"),
            (1_000_000_001, "Một tỷ không trăm lẻ một đồng"),
            (499_999_999, "Bốn trăm chín mươi chín triệu chín trăm chín mươi chín nghìn chín trăm chín mươi chín đồng"),
            (1_000_000_000_000, "Một nghìn tỷ đồng"),
            (1_500_000_000_000, "Một nghìn năm trăm tỷ đồng"),
            (2_000_000_005, "Hai tỷ không trăm lẻ năm đồng"),
        ] {
            assert_eq!(say(dong), words, "{dong}");
        }
    }
}
