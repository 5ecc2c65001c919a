//! Identifiers that people type and read: agency e-IDs, case codes, fee codes, counters,
//! bank BINs and account numbers. Each is parsed once at the boundary; an invalid value cannot
//! be constructed.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} is invalid: {reason}")]
pub struct CodeError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

pub(crate) fn invalid(kind: &'static str, value: &str, reason: &'static str) -> CodeError {
    CodeError { kind, value: value.to_owned(), reason }
}

/// Declares a string newtype whose only constructor is `parse`, with `Display`, `AsRef<str>`
/// and serde in its textual form (deserialising re-validates).
macro_rules! text_code {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use text_code;

text_code!(
    /// An agency's electronic identifier (mã định danh điện tử), e.g. `H34.22.6` or
    /// `000.00.00.H34`: dot-separated segments of upper-case letters and digits, at most 35
    /// characters. The codes are opaque; no province list is hard-coded.
    AgencyCode
);

impl AgencyCode {
    pub const MAX_LEN: usize = 35;

    pub fn parse(text: &str) -> Result<Self, CodeError> {
        const KIND: &str = "agency code";
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(invalid(KIND, text, "must be 1 to 35 characters"));
        }
        let segments_ok = text
            .split('.')
            .all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        if !segments_ok {
            return Err(invalid(KIND, text, "must be dot-separated segments of A-Z and 0-9"));
        }
        Ok(AgencyCode(text.to_owned()))
    }
}

text_code!(
    /// A case code (mã hồ sơ, Circular 01/2018/TT-VPCP art. 19):
    /// `<agency e-ID>-<YYMMDD>-<4-digit daily sequence>`, e.g. `H34.22.6-240426-0002`.
    CaseCode
);

impl CaseCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        const KIND: &str = "case code";
        let mut parts = text.rsplitn(3, '-');
        let (Some(sequence), Some(date), Some(agency)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid(KIND, text, "must look like <agency>-<YYMMDD>-<NNNN>"));
        };
        if sequence.len() != 4 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(KIND, text, "must end with a 4-digit sequence number"));
        }
        // Six ASCII digits first: chrono's `%y%m%d` also reads "2 4 26" (spaces, one-digit fields).
        if date.len() != 6
            || !date.bytes().all(|b| b.is_ascii_digit())
            || NaiveDate::parse_from_str(date, "%y%m%d").is_err()
        {
            return Err(invalid(KIND, text, "must contain a valid YYMMDD date"));
        }
        AgencyCode::parse(agency).map_err(|_| invalid(KIND, text, "must start with a valid agency code"))?;
        Ok(CaseCode(text.to_owned()))
    }

    /// The agency part, e.g. `H34.22.6`.
    pub fn agency(&self) -> AgencyCode {
        let end = self.0.len() - "-YYMMDD-NNNN".len();
        AgencyCode(self.0[..end].to_owned())
    }

    /// The day the case was received, from its `YYMMDD` part.
    pub fn received_on(&self) -> NaiveDate {
        let date = &self.0[self.0.len() - "YYMMDD-NNNN".len()..self.0.len() - "-NNNN".len()];
        NaiveDate::parse_from_str(date, "%y%m%d").unwrap_or_default()
    }
}

text_code!(
    /// A fee code in a fee schedule, e.g. `LP-HOTICH` or `P-SAOY`: letters, digits, `.`, `-`, `_`.
    FeeCode
);

impl FeeCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        simple_identifier("fee code", text, 32).map(FeeCode)
    }
}

text_code!(
    /// A counter (quầy) of an agency's one-stop department, e.g. `quay-1`.
    CounterId
);

impl CounterId {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        simple_identifier("counter id", text, 64).map(CounterId)
    }
}

fn simple_identifier(kind: &'static str, text: &str, max_len: usize) -> Result<String, CodeError> {
    if text.is_empty() || text.len() > max_len {
        return Err(invalid(kind, text, "has the wrong length"));
    }
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        return Err(invalid(kind, text, "may contain only letters, digits, '.', '-' and '_'"));
    }
    Ok(text.to_owned())
}

text_code!(
    /// A bank's 6-digit NAPAS BIN, e.g. `970415` (VietinBank).
    BankBin
);

impl BankBin {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("bank BIN", text, "must be exactly 6 digits"));
        }
        Ok(BankBin(text.to_owned()))
    }
}

text_code!(
    /// A beneficiary account number (or virtual account), at most 19 characters (VietQR 38/01/01).
    AccountNumber
);

impl AccountNumber {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid("account number", text, "must be 1 to 19 letters or digits"));
        }
        Ok(AccountNumber(text.to_owned()))
    }
}

text_code!(
    /// The text a payment carries so it can be matched to its case: it is put in the VietQR's
    /// purpose field (tag 62/08), which banking apps copy into the transfer content. Derived
    /// from the case code so a person can read it: printable ASCII, at most 25 characters.
    PaymentReference
);

impl PaymentReference {
    pub const MAX_LEN: usize = 25;

    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("payment reference", text, "must be 1 to 25 printable ASCII characters"));
        }
        Ok(PaymentReference(text.to_owned()))
    }

    /// The case code itself when it fits in 25 characters (it does for typical e-IDs:
    /// `H34.22.6-240426-0002` is 20). A longer agency e-ID is shortened to its last 13
    /// letters and digits, keeping the date and sequence whole: `<agency tail>-YYMMDD-NNNN`.
    pub fn for_case(case: &CaseCode) -> PaymentReference {
        let code = case.as_str();
        if code.len() <= Self::MAX_LEN {
            return PaymentReference(code.to_owned());
        }
        let suffix = &code[code.len() - "-YYMMDD-NNNN".len()..];
        let agency: Vec<char> = case.agency().as_str().chars().filter(char::is_ascii_alphanumeric).collect();
        let room = Self::MAX_LEN - suffix.len();
        let tail: String = agency[agency.len().saturating_sub(room)..].iter().collect();
        PaymentReference(format!("{tail}{suffix}"))
    }

    /// The reference reduced to upper-case letters and digits: the form used to find it in a
    /// transfer's free text, where banks add prefixes, drop punctuation or change case.
    pub fn match_key(&self) -> String {
        match_key(&self.0)
    }
}

/// Upper-case letters and digits only: `"Thanh toan H34.22.6-240426-0002"` →
/// `"THANHTOANH342262404260002"`.
pub fn match_key(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// The account an agency collects into, shown in its QR codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    pub bin: BankBin,
    pub number: AccountNumber,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kon_tum_case_code_parses_into_its_parts() {
        let code = CaseCode::parse("H34.22.6-240426-0002").unwrap();
        assert_eq!(code.agency().as_str(), "H34.22.6");
        assert_eq!(code.received_on(), NaiveDate::from_ymd_opt(2024, 4, 26).unwrap());
    }

    #[test]
    fn long_dotted_agency_codes_are_accepted_without_a_province_list() {
        assert!(CaseCode::parse("000.00.00.H34-240426-0002").is_ok());
        assert!(AgencyCode::parse("G01.999.2").is_ok());
    }

    #[test]
    fn malformed_case_codes_are_rejected() {
        for bad in [
            "",
            "H34.22.6",
            "H34.22.6-240426",
            "H34.22.6-240426-02",
            "H34.22.6-241326-0002", // month 13
            "H34.22.6-240230-0002", // 30 February
            "h34.22.6-240426-0002", // lower case
            "H34..6-240426-0002",
            "-240426-0002",
            "H34.22.6-240426-0002 ",
            "H34.22.6_240426-0002",
            "H34.22.6-2 4 26-0002", // chrono alone would read this as 2002-04-26
            "H34.22.6-24 4 6-0002",
        ] {
            assert!(CaseCode::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn agency_codes_longer_than_35_characters_are_rejected() {
        assert!(AgencyCode::parse(&"A".repeat(35)).is_ok());
        assert!(AgencyCode::parse(&"A".repeat(36)).is_err());
    }

    #[test]
    fn bins_and_accounts_follow_the_vietqr_limits() {
        assert!(BankBin::parse("970415").is_ok());
        assert!(BankBin::parse("97041").is_err());
        assert!(AccountNumber::parse("113366668888").is_ok());
        assert!(AccountNumber::parse(&"1".repeat(20)).is_err());
        assert!(AccountNumber::parse("1133-6666").is_err());
    }

    #[test]
    fn a_short_case_code_is_its_own_payment_reference() {
        let case = CaseCode::parse("H34.22.6-240426-0002").unwrap();
        assert_eq!(PaymentReference::for_case(&case).as_str(), "H34.22.6-240426-0002");
    }

    #[test]
    fn a_long_case_code_is_shortened_to_25_characters_keeping_date_and_sequence() {
        let case = CaseCode::parse("000.00.00.H34.22.6.100-240426-0002").unwrap();
        let reference = PaymentReference::for_case(&case);
        assert_eq!(reference.as_str(), "0000H34226100-240426-0002");
        assert!(reference.as_str().len() <= 25);
    }

    #[test]
    fn match_keys_ignore_case_and_punctuation() {
        let case = CaseCode::parse("H34.22.6-240426-0002").unwrap();
        let key = PaymentReference::for_case(&case).match_key();
        assert!(match_key("MBVCB.123 thanh toan le phi h34 22 6 240426 0002").contains(&key));
    }

    #[test]
    fn deserialising_revalidates() {
        assert!(serde_json::from_str::<CaseCode>("\"H34.22.6-240426-0002\"").is_ok());
        assert!(serde_json::from_str::<CaseCode>("\"nope\"").is_err());
    }
}
