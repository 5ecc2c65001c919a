//! The person or business paying a case's fees.
//!
//! The full identity number (CCCD, CMND or tax code) is personal data: it is kept in the
//! FeeAssessed event, once, and everywhere else only its masked form is shown.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayerError {
    #[error("payer name must be 1 to 200 characters")]
    BadName,
    #[error("identity number must be 6 to 20 digits (a tax code may contain '-')")]
    BadIdNumber,
}

/// A citizen identity number or tax code. `Debug` and `Display` print only the masked form, so
/// it cannot leak into logs by accident; [`IdNumber::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber(String);

impl IdNumber {
    pub fn parse(text: &str) -> Result<Self, PayerError> {
        let text = text.trim();
        let digits = text.bytes().filter(u8::is_ascii_digit).count();
        let allowed = text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if !(6..=20).contains(&text.len()) || !allowed || digits < 6 || text.starts_with('-') {
            return Err(PayerError::BadIdNumber);
        }
        Ok(IdNumber(text.to_owned()))
    }

    /// `******8870`: six stars and the last four characters, as the Kon Tum screens show.
    pub fn masked(&self) -> String {
        let tail: String = self.0.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        format!("******{tail}")
    }

    /// The full number. Call only to write the event or for an auditor's export.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for IdNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        IdNumber::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    pub name: String,
    pub id_number: Option<IdNumber>,
}

impl Payer {
    pub fn new(name: &str, id_number: Option<&str>) -> Result<Self, PayerError> {
        let name = name.trim();
        // A name is one line of printable text; a control character (U+0000 above all) is
        // never part of one.
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(PayerError::BadName);
        }
        let id_number = id_number.map(str::trim).filter(|s| !s.is_empty()).map(IdNumber::parse).transpose()?;
        Ok(Payer { name: name.to_owned(), id_number })
    }

    pub fn masked_id(&self) -> Option<String> {
        self.id_number.as_ref().map(IdNumber::masked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_number_is_shown_masked_like_the_kon_tum_screen() {
        let payer = Payer::new("VÕ ĐẶNG NGỌC GIÀ", Some("079201008870")).unwrap();
        assert_eq!(payer.masked_id().as_deref(), Some("******8870"));
        assert!(!format!("{payer:?}").contains("079201008870"), "Debug must not leak the full id");
    }

    #[test]
    fn the_full_id_survives_serialisation_for_the_event() {
        let payer = Payer::new("Nguyễn Văn A", Some("0101234567-001")).unwrap();
        let json = serde_json::to_string(&payer).unwrap();
        assert!(json.contains("0101234567-001"));
        assert_eq!(serde_json::from_str::<Payer>(&json).unwrap(), payer);
    }

    #[test]
    fn bad_names_and_ids_are_rejected() {
        assert_eq!(Payer::new("  ", None), Err(PayerError::BadName));
        assert_eq!(Payer::new("A", Some("12ab")), Err(PayerError::BadIdNumber));
        assert_eq!(Payer::new("A", Some("123")), Err(PayerError::BadIdNumber));
        assert!(Payer::new("A", Some("")).unwrap().id_number.is_none());
    }
}
