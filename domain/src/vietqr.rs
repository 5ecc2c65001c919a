//! VietQR payloads (NAPAS VietQR format v1.0, built on EMVCo Merchant-Presented Mode).
//!
//! A payload is a sequence of data objects `ID(2 digits) LENGTH(2 digits) VALUE`; templates
//! (IDs 26–51, 62 and 64) nest the same structure in their value. The last object is
//! always the CRC: `6304` followed by CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of every
//! byte before it, including `6304`, as four upper-case hex digits. Lengths count characters.
//!
//! [`Payload`] is the generic, order-preserving TLV view (parse then encode gives back the same
//! string); [`DynamicQr`] is the one shape feeledger issues: a dynamic NAPAS 247 account
//! transfer for an exact amount in VND with the payment reference as purpose (62/08).

use std::fmt;

use crc::{CRC_16_IBM_3740, Crc};

use crate::codes::{AccountNumber, BankBin};
use crate::money::{NAPAS_TRANSFER_LIMIT, Vnd};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// NAPAS's globally unique identifier in tag 38/00.
pub const NAPAS_GUID: &str = "A000000727";
/// Service code for a transfer to an account (38/02). `QRIBFTTC` is to a card.
pub const SERVICE_TO_ACCOUNT: &str = "QRIBFTTA";
pub const SERVICE_TO_CARD: &str = "QRIBFTTC";
/// Sub-fields of tag 62 hold at most 25 characters.
pub const ADDITIONAL_FIELD_MAX: usize = 25;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VietQrError {
    #[error("payload is truncated at character {at}")]
    Truncated { at: usize },
    #[error("data object at character {at} has a malformed ID or length")]
    MalformedHeader { at: usize },
    #[error("data object {id} is inside template {template} and is malformed: {reason}")]
    BadTemplate { template: String, id: String, reason: String },
    #[error("the payload must start with the format indicator 000201")]
    MissingFormatIndicator,
    #[error("the payload must end with the CRC object 6304XXXX")]
    MissingCrc,
    #[error("CRC mismatch: the payload says {found}, the content gives {computed}")]
    BadCrc { found: String, computed: String },
    #[error("data object {0} appears twice")]
    DuplicateId(String),
    #[error("required data object {0} is missing")]
    MissingField(&'static str),
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{0} must be printable ASCII")]
    NotAscii(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// One data object. `value` is kept exactly as it appeared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObject {
    pub id: String,
    pub value: String,
}

impl DataObject {
    pub fn new(id: &str, value: impl Into<String>) -> Self {
        DataObject { id: id.to_owned(), value: value.into() }
    }

    /// The nested objects of a template value.
    pub fn children(&self) -> Result<Vec<DataObject>, VietQrError> {
        parse_objects(&self.value, 0)
    }
}

/// Is this ID a template whose value must itself be a list of data objects? IDs 80–99 are
/// "unreserved templates" in EMVCo but wallets put plain values there (MoMo's tag 80), so they
/// are kept as opaque values.
fn is_template(id: &str) -> bool {
    matches!(id.parse::<u8>(), Ok(26..=51 | 62 | 64))
}

/// Parses `ID LEN VALUE` objects covering all of `text` (lengths count characters).
fn parse_objects(text: &str, offset: usize) -> Result<Vec<DataObject>, VietQrError> {
    let chars: Vec<char> = text.chars().collect();
    let mut objects = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at = offset + i;
        if i + 4 > chars.len() {
            return Err(VietQrError::Truncated { at });
        }
        let header: String = chars[i..i + 4].iter().collect();
        if !header.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VietQrError::MalformedHeader { at });
        }
        let id = header[..2].to_owned();
        let len: usize = header[2..].parse().map_err(|_| VietQrError::MalformedHeader { at })?;
        if len == 0 {
            return Err(VietQrError::MalformedHeader { at });
        }
        let start = i + 4;
        if start + len > chars.len() {
            return Err(VietQrError::Truncated { at: offset + chars.len() });
        }
        objects.push(DataObject { id, value: chars[start..start + len].iter().collect() });
        i = start + len;
    }
    Ok(objects)
}

fn encode_objects(objects: &[DataObject]) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str(&object.id);
        out.push_str(&format!("{:02}", object.value.chars().count()));
        out.push_str(&object.value);
    }
    out
}

fn crc_hex(text: &str) -> String {
    format!("{:04X}", CRC16.checksum(text.as_bytes()))
}

/// A parsed EMVCo MPM payload: the data objects in their original order, CRC excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub objects: Vec<DataObject>,
}

impl Payload {
    /// Parses and validates structure, nested templates and the CRC. Any object order is
    /// accepted except that the format indicator comes first and the CRC last, as EMVCo requires.
    pub fn parse(text: &str) -> Result<Payload, VietQrError> {
        let mut objects = parse_objects(text, 0)?;
        match objects.first() {
            Some(first) if first.id == "00" && first.value == "01" => {}
            _ => return Err(VietQrError::MissingFormatIndicator),
        }
        let crc = match objects.pop() {
            Some(last) if last.id == "63" && last.value.chars().count() == 4 => last.value,
            _ => return Err(VietQrError::MissingCrc),
        };
        // The CRC covers every byte before its value. The value is four characters but not
        // necessarily four bytes until it is checked, so cut by its length in bytes.
        let covered = &text[..text.len() - crc.len()];
        let computed = crc_hex(covered);
        if !computed.eq_ignore_ascii_case(&crc) {
            return Err(VietQrError::BadCrc { found: crc, computed });
        }
        let mut seen = std::collections::BTreeSet::new();
        for object in &objects {
            if !seen.insert(object.id.as_str()) {
                return Err(VietQrError::DuplicateId(object.id.clone()));
            }
            if is_template(&object.id) {
                validate_template(object)?;
            }
        }
        Ok(Payload { objects })
    }

    pub fn get(&self, id: &str) -> Option<&DataObject> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// The payload string with a freshly computed CRC.
    pub fn encode(&self) -> String {
        let mut body = encode_objects(&self.objects);
        body.push_str("6304");
        let crc = crc_hex(&body);
        body.push_str(&crc);
        body
    }
}

/// Nested templates must themselves be well-formed; NAPAS's tag 38 is checked to depth two
/// (38/01 holds the BIN and the account), which is where a wrong inner length hides.
fn validate_template(object: &DataObject) -> Result<(), VietQrError> {
    let bad =
        |id: &str, reason: String| VietQrError::BadTemplate { template: object.id.clone(), id: id.to_owned(), reason };
    let children = object.children().map_err(|e| bad("-", e.to_string()))?;
    let is_napas = children.iter().any(|c| c.id == "00" && c.value == NAPAS_GUID);
    if is_napas {
        for child in children.iter().filter(|c| c.id == "01") {
            let inner = child.children().map_err(|e| bad("01", e.to_string()))?;
            let bin = inner.iter().find(|c| c.id == "00").ok_or_else(|| bad("01", "no BIN (00)".into()))?;
            BankBin::parse(&bin.value).map_err(|e| bad("01/00", e.to_string()))?;
            let account = inner.iter().find(|c| c.id == "01").ok_or_else(|| bad("01", "no account (01)".into()))?;
            if account.value.chars().count() > 19 {
                return Err(bad("01/01", "account longer than 19 characters".into()));
            }
        }
    }
    if object.id == "62" {
        if object.value.chars().count() > 99 {
            return Err(bad("-", "longer than 99 characters".into()));
        }
        for child in &children {
            let sub: u8 = child.id.parse().unwrap_or(u8::MAX);
            if (1..=8).contains(&sub) && child.value.chars().count() > ADDITIONAL_FIELD_MAX {
                return Err(bad(&child.id, format!("longer than {ADDITIONAL_FIELD_MAX} characters")));
            }
        }
    }
    Ok(())
}

/// Folds Vietnamese (and any other) text to the printable ASCII that tag 62 allows:
/// `"Lệ phí hộ tịch – Đăng ký"` → `"Le phi ho tich - Dang ky"`.
pub fn fold_to_ascii(text: &str) -> String {
    deunicode::deunicode(text).chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect()
}

/// The dynamic QR feeledger issues: "pay exactly `amount` to this account, with this purpose".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicQr {
    pub bank_bin: BankBin,
    pub account_number: AccountNumber,
    pub amount: Vnd,
    /// Goes in 62/08 (purpose of transaction), which banking apps copy into the transfer
    /// content. Folded to ASCII and checked against the 25-character limit on encode.
    pub purpose: String,
}

impl DynamicQr {
    pub fn encode(&self) -> Result<String, VietQrError> {
        let amount = self.amount.require_positive().map_err(|e| VietQrError::Invalid(e.to_string()))?;
        if amount >= NAPAS_TRANSFER_LIMIT {
            return Err(VietQrError::Invalid(format!("{amount:?} is not below the NAPAS 247 limit")));
        }
        let purpose = fold_to_ascii(&self.purpose);
        let purpose = purpose.trim();
        if purpose.is_empty() {
            return Err(VietQrError::MissingField("62/08 purpose"));
        }
        if purpose.len() > ADDITIONAL_FIELD_MAX {
            return Err(VietQrError::TooLong { field: "62/08 purpose", max: ADDITIONAL_FIELD_MAX });
        }
        let beneficiary = encode_objects(&[
            DataObject::new("00", self.bank_bin.as_str()),
            DataObject::new("01", self.account_number.as_str()),
        ]);
        let merchant_account = encode_objects(&[
            DataObject::new("00", NAPAS_GUID),
            DataObject::new("01", beneficiary),
            DataObject::new("02", SERVICE_TO_ACCOUNT),
        ]);
        let additional = encode_objects(&[DataObject::new("08", purpose)]);
        let payload = Payload {
            objects: vec![
                DataObject::new("00", "01"),
                DataObject::new("01", "12"),
                DataObject::new("38", merchant_account),
                DataObject::new("53", "704"),
                DataObject::new("54", amount.to_string()),
                DataObject::new("58", "VN"),
                DataObject::new("62", additional),
            ],
        };
        Ok(payload.encode())
    }

    /// Reads a payload back as a dynamic NAPAS account transfer in VND, checking every rule
    /// feeledger relies on. Any tag order is accepted.
    pub fn parse(text: &str) -> Result<DynamicQr, VietQrError> {
        let payload = Payload::parse(text)?;
        let field = |id: &'static str| payload.get(id).map(|o| o.value.as_str()).ok_or(VietQrError::MissingField(id));
        if field("01")? != "12" {
            return Err(VietQrError::Invalid("point of initiation must be 12 (dynamic)".into()));
        }
        if field("53")? != "704" {
            return Err(VietQrError::Invalid("currency must be 704 (VND)".into()));
        }
        if field("58")? != "VN" {
            return Err(VietQrError::Invalid("country must be VN".into()));
        }
        let amount_text = field("54")?;
        if amount_text.len() > 13 {
            return Err(VietQrError::TooLong { field: "54 amount", max: 13 });
        }
        let amount = Vnd::parse_positive(amount_text).map_err(|e| VietQrError::Invalid(format!("amount: {e}")))?;

        let merchant = payload.get("38").ok_or(VietQrError::MissingField("38"))?.children()?;
        let child = |id: &'static str| merchant.iter().find(|c| c.id == id).ok_or(VietQrError::MissingField(id));
        if child("00")?.value != NAPAS_GUID {
            return Err(VietQrError::Invalid("38/00 must be the NAPAS GUID A000000727".into()));
        }
        if child("02")?.value != SERVICE_TO_ACCOUNT {
            return Err(VietQrError::Invalid("38/02 must be QRIBFTTA (transfer to an account)".into()));
        }
        let beneficiary = child("01")?.children()?;
        let inner = |id: &'static str| {
            beneficiary.iter().find(|c| c.id == id).map(|c| c.value.as_str()).ok_or(VietQrError::MissingField(id))
        };
        let bank_bin = BankBin::parse(inner("00")?).map_err(|e| VietQrError::Invalid(e.to_string()))?;
        let account_number = AccountNumber::parse(inner("01")?).map_err(|e| VietQrError::Invalid(e.to_string()))?;

        let additional = payload.get("62").ok_or(VietQrError::MissingField("62"))?.children()?;
        let purpose = additional.iter().find(|c| c.id == "08").ok_or(VietQrError::MissingField("62/08"))?;
        if !purpose.value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(VietQrError::NotAscii("62/08 purpose"));
        }
        Ok(DynamicQr { bank_bin, account_number, amount, purpose: purpose.value.clone() })
    }
}

impl fmt::Display for DynamicQr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} đ to {}/{} for {:?}", self.amount.grouped(), self.bank_bin, self.account_number, self.purpose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../tests/data/vietqr.txt");

    fn vectors() -> impl Iterator<Item = (&'static str, &'static str)> {
        VECTORS.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(|l| l.split_once('\t'))
    }

    #[test]
    fn every_published_vector_parses_and_encodes_back_to_the_same_string() {
        let mut count = 0;
        for (label, payload) in vectors() {
            let parsed = Payload::parse(payload).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(parsed.encode(), payload, "{label} did not round-trip");
            count += 1;
        }
        assert!(count >= 13, "expected the 13 published vectors, read {count}");
    }

    #[test]
    fn the_known_bad_payloads_are_rejected() {
        let inner_length =
            "00020101021138570010A00000072701270006970403011200110123456780208QRIBFTTA53037045802VN6304F4E5";
        assert!(matches!(Payload::parse(inner_length), Err(VietQrError::BadTemplate { .. })));
        let bad_crc = "00020101021138560010A0000007270138000697042201120123456789020208QRIBFTTA53037045802VN6304B682";
        assert!(matches!(
            Payload::parse(bad_crc),
            Err(VietQrError::BadCrc { ref computed, .. }) if computed == "4EB3"
        ));
    }

    #[test]
    fn the_case_code_vector_is_exactly_what_feeledger_issues() {
        let (_, published) = vectors().find(|(label, _)| *label == "vietinbank-case-code").unwrap();
        let qr = DynamicQr {
            bank_bin: BankBin::parse("970415").unwrap(),
            account_number: AccountNumber::parse("113366668888").unwrap(),
            amount: Vnd::new(150_000).unwrap(),
            purpose: "H34.22.6-240426-0002".into(),
        };
        assert_eq!(qr.encode().unwrap(), published);
        assert_eq!(DynamicQr::parse(published).unwrap(), qr);
    }

    #[test]
    fn a_crc_of_non_ascii_characters_is_a_mismatch_not_a_panic() {
        assert!(matches!(Payload::parse("0002016304€€€€"), Err(VietQrError::BadCrc { .. })));
        assert!(matches!(
            Payload::parse("0002016304\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),
            Err(VietQrError::BadCrc { .. })
        ));
    }

    #[test]
    fn truncation_and_a_changed_byte_are_rejected() {
        let (_, good) = vectors().find(|(label, _)| *label == "vietinbank-dynamic").unwrap();
        for cut in [1, 5, 10, good.len() / 2, good.len() - 1] {
            assert!(Payload::parse(&good[..good.len() - cut]).is_err(), "cut {cut} accepted");
        }
        let tampered = good.replacen("120000", "920000", 1);
        assert!(matches!(Payload::parse(&tampered), Err(VietQrError::BadCrc { .. })));
    }

    #[test]
    fn the_parser_accepts_any_tag_order_between_format_indicator_and_crc() {
        let qr = DynamicQr {
            bank_bin: BankBin::parse("970415").unwrap(),
            account_number: AccountNumber::parse("113366668888").unwrap(),
            amount: Vnd::new(3000).unwrap(),
            purpose: "H34.22.6-240426-0002".into(),
        };
        let mut payload = Payload::parse(&qr.encode().unwrap()).unwrap();
        payload.objects[1..].reverse();
        assert_eq!(DynamicQr::parse(&payload.encode()).unwrap(), qr);
    }

    #[test]
    fn purposes_are_folded_to_ascii_and_limited_to_25_characters() {
        let mut qr = DynamicQr {
            bank_bin: BankBin::parse("970415").unwrap(),
            account_number: AccountNumber::parse("113366668888").unwrap(),
            amount: Vnd::new(3000).unwrap(),
            purpose: "Lệ phí đăng ký".into(),
        };
        let parsed = DynamicQr::parse(&qr.encode().unwrap()).unwrap();
        assert_eq!(parsed.purpose, "Le phi dang ky");
        qr.purpose = "x".repeat(26);
        assert_eq!(qr.encode(), Err(VietQrError::TooLong { field: "62/08 purpose", max: 25 }));
    }

    #[test]
    fn amounts_at_or_above_the_napas_limit_are_refused() {
        let qr = DynamicQr {
            bank_bin: BankBin::parse("970415").unwrap(),
            account_number: AccountNumber::parse("1").unwrap(),
            amount: Vnd::new(500_000_000).unwrap(),
            purpose: "x".into(),
        };
        assert!(qr.encode().is_err());
    }

    #[test]
    fn static_and_non_napas_payloads_are_not_dynamic_qrs() {
        for label in ["tpbank-static", "vnpay-qr-not-napas", "napas-6.1.4-dynamic-card"] {
            let (_, payload) = vectors().find(|(l, _)| *l == label).unwrap();
            assert!(DynamicQr::parse(payload).is_err(), "{label} accepted as a dynamic account QR");
        }
    }

    proptest::proptest! {
        #[test]
        fn encode_then_parse_is_identity(
            bin in "9[0-9]{5}",
            account in "[A-Z0-9]{1,19}",
            dong in 1i64..500_000_000,
            purpose in "[ -~]{0,24}[!-~]",
        ) {
            let qr = DynamicQr {
                bank_bin: BankBin::parse(&bin).unwrap(),
                account_number: AccountNumber::parse(&account).unwrap(),
                amount: Vnd::new(dong).unwrap(),
                purpose: purpose.trim().to_owned(),
            };
            proptest::prop_assume!(!qr.purpose.is_empty());
            let text = qr.encode().unwrap();
            proptest::prop_assert_eq!(DynamicQr::parse(&text).unwrap(), qr);
            proptest::prop_assert_eq!(Payload::parse(&text).unwrap().encode(), text);
        }
    }
}
