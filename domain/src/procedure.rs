//! The procedure code (mã thủ tục hành chính, mã TTHC) of the national database of
//! administrative procedures: `2.000815` (a procedure of the national list) or, as a province
//! publishes it, `2.000815.000.00.00.H34` (the same procedure as carried out by agency `H34`).
//! Optional on an assessment; printed on its receipts and reports.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use crate::codes::{CodeError, invalid, text_code};

text_code!(
    /// A mã TTHC: a level digit (1 to 3), a dot and six digits, optionally followed by
    /// `.NNN.NN.NN.` and an agency segment of upper-case letters and digits (1 to 12).
    ProcedureCode
);

impl ProcedureCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        const KIND: &str = "procedure code";
        const SHAPE: &str = "must look like 2.000815 or 2.000815.000.00.00.H34";
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let parts: Vec<&str> = text.split('.').collect();
        let head_ok = parts.len() >= 2 && matches!(parts[0], "1" | "2" | "3") && digits(parts[1], 6);
        let tail_ok = match parts.len() {
            2 => true,
            6 => {
                digits(parts[2], 3)
                    && digits(parts[3], 2)
                    && digits(parts[4], 2)
                    && (1..=12).contains(&parts[5].len())
                    && parts[5].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            _ => false,
        };
        if head_ok && tail_ok { Ok(ProcedureCode(text.to_owned())) } else { Err(invalid(KIND, text, SHAPE)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_provincial_procedure_codes_are_accepted() {
        for good in ["2.000815", "2.000815.000.00.00.H34", "1.001234.000.00.00.G01", "3.000123"] {
            assert_eq!(ProcedureCode::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "2",
            "4.000815",
            "2.00815",
            "2.000815.000.00.H34",
            "2.000815.000.00.00.h34",
            "2.000815.000.00.00.",
            "x",
        ] {
            assert!(ProcedureCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
