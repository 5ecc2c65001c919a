//! The State Treasury's own vocabulary: the codes a deposit voucher (giấy nộp tiền vào NSNN)
//! and a fee declaration are written in.
//!
//! - **MST** (mã số thuế): the agency's tax code, 10 digits whose last is a check digit, or
//!   13 digits written `NNNNNNNNNN-NNN` for a dependent unit;
//! - **mã chương** (chapter, Mục lục NSNN, Circular 324/2016/TT-BTC): 3 digits naming the
//!   managing level and body the money is booked to;
//! - **tiểu mục** (sub-item, also "mã NDKT", nội dung kinh tế): 4 digits naming the kind of
//!   revenue, one per fee;
//! - **mã ĐBHC** (administrative area), the **KBNN** where the agency deposits (its code) and
//!   the account there, and the **tax office** (cơ quan quản lý thu) code.
//!
//! Each is a newtype that can only hold a well-formed value. Nothing here knows the tables
//! themselves (which chapter or sub-item exists): those belong to the Ministry of Finance and
//! change; a clerk types what the treasury gave them.

use crate::codes::{CodeError, invalid, text_code};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

text_code!(
    /// An organisation's tax code (mã số thuế): `0100109106`, or `0100109106-001` for a
    /// dependent unit. The tenth digit checks the first nine (weights 31, 29, 23, 19, 17, 13,
    /// 7, 5, 3; check = 10 − Σ mod 11).
    TaxCode
);

impl TaxCode {
    const WEIGHTS: [u32; 9] = [31, 29, 23, 19, 17, 13, 7, 5, 3];

    pub fn parse(text: &str) -> Result<Self, CodeError> {
        const KIND: &str = "tax code (MST)";
        let (main, branch) = match text.split_once('-') {
            Some((main, branch)) => (main, Some(branch)),
            None => (text, None),
        };
        if main.len() != 10 || !all_digits(main) {
            return Err(invalid(KIND, text, "must be 10 digits, or 10 digits, '-' and 3 digits"));
        }
        if let Some(branch) = branch
            && (branch.len() != 3 || !all_digits(branch) || branch == "000")
        {
            return Err(invalid(KIND, text, "a dependent unit's suffix is 3 digits from 001 to 999"));
        }
        let digits: Vec<u32> = main.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = digits.iter().zip(Self::WEIGHTS).map(|(d, w)| d * w).sum();
        let check = 10 - sum % 11;
        if digits.get(9).copied() != Some(check) {
            return Err(invalid(KIND, text, "its check digit (the tenth) does not match the first nine"));
        }
        Ok(TaxCode(text.to_owned()))
    }
}

/// Declares a code of exactly `$len` ASCII digits.
macro_rules! digit_code {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $len:literal, $reason:literal) => {
        text_code!($(#[$meta])* $name);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, CodeError> {
                if text.len() != $len || !all_digits(text) {
                    return Err(invalid($kind, text, $reason));
                }
                Ok($name(text.to_owned()))
            }
        }
    };
}

digit_code!(
    /// A chapter of the state budget's classification (mã chương), e.g. `599`.
    BudgetChapter,
    "budget chapter (mã chương)",
    3,
    "must be exactly 3 digits"
);

digit_code!(
    /// A sub-item of the state budget's classification (tiểu mục, mã NDKT), e.g. `2153`.
    BudgetSubItem,
    "budget sub-item (tiểu mục)",
    4,
    "must be exactly 4 digits"
);

digit_code!(
    /// The State Treasury office's code (mã KBNN), e.g. `0011`.
    TreasuryCode,
    "treasury code (mã KBNN)",
    4,
    "must be exactly 4 digits"
);

text_code!(
    /// An administrative area code (mã địa bàn hành chính): 2 (province), 3 (district) or
    /// 5 (commune) digits, e.g. `00004`.
    AdminAreaCode
);

impl AdminAreaCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if !matches!(text.len(), 2 | 3 | 5) || !all_digits(text) {
            return Err(invalid("administrative area code (mã ĐBHC)", text, "must be 2, 3 or 5 digits"));
        }
        Ok(AdminAreaCode(text.to_owned()))
    }
}

text_code!(
    /// The account at the treasury that receives the deposit, e.g. `3511` (fees awaiting the
    /// budget) or `7111` (budget revenue), optionally followed by the agency's sub-account
    /// (`3511.0.1012345`): digits and dots, at most 30 characters.
    TreasuryAccount
);

impl TreasuryAccount {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let shaped = text.len() <= 30
            && text.split('.').all(all_digits)
            && text.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if !shaped {
            return Err(invalid(
                "treasury account",
                text,
                "must be digits, optionally in dot-separated groups, at most 30 characters",
            ));
        }
        Ok(TreasuryAccount(text.to_owned()))
    }
}

text_code!(
    /// The tax office managing the revenue (mã cơ quan quản lý thu), e.g. `1054449`: 3 to 10
    /// digits.
    TaxOfficeCode
);

impl TaxOfficeCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if !(3..=10).contains(&text.len()) || !all_digits(text) {
            return Err(invalid("tax office code (mã cơ quan thu)", text, "must be 3 to 10 digits"));
        }
        Ok(TaxOfficeCode(text.to_owned()))
    }
}

/// A day of the month from 1 to 31; in a shorter month, 31 means its last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DayOfMonth(u8);

impl DayOfMonth {
    pub const FIFTH: DayOfMonth = DayOfMonth(5);

    pub fn new(day: u32) -> Result<Self, CodeError> {
        match u8::try_from(day) {
            Ok(d @ 1..=31) => Ok(DayOfMonth(d)),
            _ => Err(invalid("day of month", &day.to_string(), "must be 1 to 31")),
        }
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

impl fmt::Display for DayOfMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for DayOfMonth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for DayOfMonth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DayOfMonth::new(u32::from(u8::deserialize(deserializer)?)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tax_code_needs_its_check_digit() {
        // Published tax codes of two state groups.
        assert!(TaxCode::parse("0100109106").is_ok());
        assert!(TaxCode::parse("0100100008").is_ok());
        assert!(TaxCode::parse("0100109106-001").is_ok());
        assert!(TaxCode::parse("0100109107").is_err(), "wrong check digit");
        assert!(TaxCode::parse("0100109106-000").is_err());
        assert!(TaxCode::parse("0100109106-01").is_err());
        assert!(TaxCode::parse("010010910").is_err());
        assert!(TaxCode::parse("01001091O6").is_err());
    }

    #[test]
    fn budget_codes_have_their_fixed_shapes() {
        assert!(BudgetChapter::parse("599").is_ok());
        assert!(BudgetChapter::parse("59").is_err());
        assert!(BudgetSubItem::parse("2153").is_ok());
        for bad in ["215", "21530", "21a3", ""] {
            assert!(BudgetSubItem::parse(bad).is_err(), "{bad}");
        }
        assert!(AdminAreaCode::parse("00004").is_ok());
        assert!(AdminAreaCode::parse("0004").is_err());
        assert!(TreasuryCode::parse("0011").is_ok());
        assert!(TreasuryAccount::parse("3511.0.1012345").is_ok());
        assert!(TreasuryAccount::parse("3511..1").is_err());
        assert!(TaxOfficeCode::parse("1054449").is_ok());
        assert!(DayOfMonth::new(0).is_err() && DayOfMonth::new(32).is_err() && DayOfMonth::new(31).is_ok());
    }
}
