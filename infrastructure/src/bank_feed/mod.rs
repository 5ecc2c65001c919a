//! Payment notifications from the intermediaries that watch our collection accounts.
//!
//! Each provider (SePay, Casso, payOS, VNPAY) signs its notifications its own way and names its
//! fields its own way. Every provider module offers the same four things:
//!
//! 1. `verify…`: checks the provider's own signature, in constant time, on the raw request;
//! 2. `parse`: reads the raw request strictly into one [`Notification`] shape, so that matching,
//!    deduplication and reconciliation never see a provider's format;
//! 3. `reply`: the answer the provider expects for an [`Outcome`], as `(HTTP status, JSON body)`;
//! 4. `sign…`: builds what the provider would send, so tests can make valid requests.
//!
//! The caller stores the raw request first, then verifies, then parses (see DOMAIN.md, "Payment
//! notifications"). Verification never needs the parse, and parsing never trusts anything that
//! verification did not cover.
//!
//! Money is never a float here: amounts must arrive as JSON integers (or, for VNPAY, a string of
//! digits) and anything fractional, negative or zero is [`FeedError::Malformed`], never rounded.

pub mod casso;
pub mod payos;
pub mod sepay;
pub mod vnpay;

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use feeledger_domain::money::{MoneyError, Vnd};
use feeledger_domain::vietnam_time;
use hmac::Mac;
use hmac::digest::KeyInit;
use serde_json::{Map, Value};

use crate::canonical_json::NonAscii;
use crate::strict_json;

pub use feeledger_domain::bank_credit::{BankCredit, Provider};

/// What a verified, well-formed notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Money arrived.
    Credit(BankCredit),
    /// A genuine notification that is not a credit: money going out, a failed or cancelled
    /// payment, a provider-side error. The caller acknowledges it and records nothing.
    Ignored { provider_transaction_id: Option<String>, reason: String },
}

impl Notification {
    /// A credit, its text made printable (the one place every provider's credits pass).
    fn credit(credit: BankCredit) -> Notification {
        Notification::Credit(credit.with_printable_text())
    }

    /// The provider's duplicate key, when the notification carries one.
    pub fn provider_transaction_id(&self) -> Option<&str> {
        match self {
            Notification::Credit(credit) => Some(&credit.provider_transaction_id),
            Notification::Ignored { provider_transaction_id, .. } => provider_transaction_id.as_deref(),
        }
    }
}

/// Why a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the signature does not match")]
    BadSignature,
    #[error("the request carries no signature")]
    MissingSignature,
    #[error("the signature's timestamp is too far from now")]
    StaleTimestamp,
    #[error("malformed notification: {0}")]
    Malformed(String),
    /// No key is configured for this provider; an empty key would accept forged requests.
    #[error("this provider has no key configured")]
    NotConfigured,
}

impl FeedError {
    /// The reply outcome for this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            FeedError::BadSignature | FeedError::MissingSignature | FeedError::StaleTimestamp => Outcome::BadSignature,
            FeedError::Malformed(message) => Outcome::Malformed(message.clone()),
            FeedError::NotConfigured => Outcome::NotConfigured,
        }
    }
}

/// What the ledger did with a notification; each provider module's `reply` turns it into the
/// answer that provider expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded (or deliberately ignored, e.g. an outgoing transfer).
    Accepted,
    /// Already recorded under the same provider transaction id: the idempotent answer.
    Duplicate,
    BadSignature,
    Malformed(String),
    /// The provider is not configured on this deployment.
    NotConfigured,
    /// The credit's amount differs from what the referenced order expects.
    AmountMismatch,
    /// The referenced order does not exist.
    NotFound,
    /// Anything else; the provider should retry.
    Internal,
}

/// Provider keys are settings secrets: their `Debug` never prints the value.
pub use crate::settings::Secret;

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/// The key bytes, refusing an empty key: HMAC accepts one, and so would anyone who knows that.
fn configured_key(secret: &Secret) -> Result<&[u8], FeedError> {
    if secret.is_empty() { Err(FeedError::NotConfigured) } else { Ok(secret.expose().as_bytes()) }
}

/// An HMAC keyed with `key` that has absorbed `parts` in order.
fn keyed_mac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> M {
    let mut mac = match <M as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC pads or hashes the key, so every key length is valid.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Lower-case hex of the tag, the form every provider sends.
fn hex_tag<M: Mac>(mac: M) -> String {
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a hex signature (either case) against the MAC. `verify_slice` compares in constant
/// time, so the answer's timing reveals nothing about how many bytes matched.
fn check_hex_tag<M: Mac>(mac: M, signature_hex: &str) -> Result<(), FeedError> {
    let given = hex::decode(signature_hex.trim()).map_err(|_| FeedError::BadSignature)?;
    mac.verify_slice(&given).map_err(|_| FeedError::BadSignature)
}

// ---------------------------------------------------------------------------------------------
// Vietnam local time
// ---------------------------------------------------------------------------------------------

/// How a provider writes its local (UTC+7) timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalTimeFormat {
    /// `2023-03-25 14:02:37` (SePay, Casso, payOS).
    Dashed,
    /// `20230325140237` (VNPAY's `yyyyMMddHHmmss`).
    Compact,
}

/// Reads a Vietnam local time and returns the instant in UTC. The shape is checked digit by
/// digit because chrono's parser accepts one-digit months, signs and long years.
fn vietnam_local_time(text: &str, format: LocalTimeFormat, field: &str) -> Result<DateTime<Utc>, FeedError> {
    let (pattern, expected) = match format {
        LocalTimeFormat::Dashed => ("dddd-dd-dd dd:dd:dd", "\"YYYY-MM-DD HH:MM:SS\""),
        LocalTimeFormat::Compact => ("dddddddddddddd", "yyyyMMddHHmmss"),
    };
    let bad = || FeedError::Malformed(format!("{field} must be a Vietnam local time like {expected}, got {text:?}"));
    let shape_ok = text.len() == pattern.len()
        && text.bytes().zip(pattern.bytes()).all(|(c, p)| if p == b'd' { c.is_ascii_digit() } else { c == p });
    if !shape_ok {
        return Err(bad());
    }
    let digits: Vec<u32> = text.bytes().filter(u8::is_ascii_digit).map(|b| u32::from(b - b'0')).collect();
    let number = |from: usize, len: usize| digits[from..from + len].iter().fold(0, |acc, d| acc * 10 + d);
    let year = i32::try_from(number(0, 4)).map_err(|_| bad())?;
    let local = NaiveDate::from_ymd_opt(year, number(4, 2), number(6, 2))
        .and_then(|day| day.and_hms_opt(number(8, 2), number(10, 2), number(12, 2)))
        .ok_or_else(bad)?;
    vietnam_time::offset().from_local_datetime(&local).single().map(|t| t.with_timezone(&Utc)).ok_or_else(bad)
}

// ---------------------------------------------------------------------------------------------
// Strict JSON reading
// ---------------------------------------------------------------------------------------------

/// Parses a request body that must be a JSON object.
///
/// Bytes that are not UTF-8 are read as U+FFFD: the body's signature was checked on the raw
/// bytes, and a signed payment must not be refused for the text its bank put in a free-text
/// field; for the same reason a `\\u` escape of half a surrogate pair reads as U+FFFD. A key that
/// appears twice in one object is refused: which copy the provider signed
/// and which one would be read could differ.
fn parse_json_object(raw: &[u8]) -> Result<Map<String, Value>, FeedError> {
    let text = String::from_utf8_lossy(raw);
    match strict_json::parse(&strict_json::without_lone_surrogates(&text)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(FeedError::Malformed(format!("the body must be a JSON object, got {}", describe(&other)))),
        Err(err) => Err(FeedError::Malformed(format!("the body is not valid JSON: {err}"))),
    }
}

/// A short description of a JSON value for error messages; numbers are shown as sent.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A whole, positive number of đồng from a JSON value. Only JSON integers qualify: `2000.0`,
/// `2e3`, `"2000"`, negatives and zero are rejected with a message that names the field.
fn positive_dong(value: &Value, field: &str) -> Result<Vnd, FeedError> {
    let malformed = |why: String| FeedError::Malformed(format!("{field} {why}"));
    let Value::Number(number) = value else {
        return Err(malformed(format!("must be a JSON integer of đồng, got {}", describe(value))));
    };
    if let Some(dong) = number.as_u64() {
        let dong = i64::try_from(dong).map_err(|_| malformed(format!("{number} is too large")))?;
        return Vnd::new(dong)
            .and_then(Vnd::require_positive)
            .map_err(|err| malformed(money_problem(&err, &number.to_string())));
    }
    if number.as_i64().is_some() {
        return Err(malformed(format!("must not be negative, got {number}")));
    }
    Err(malformed(format!("must be a whole number of đồng, got {number} (fractions are rejected, never rounded)")))
}

fn money_problem(err: &MoneyError, shown: &str) -> String {
    match err {
        MoneyError::NotPositive => format!("must be greater than zero, got {shown}"),
        MoneyError::TooLarge => format!("is too large: {shown}"),
        other => format!("is not a valid amount ({other}): {shown}"),
    }
}

/// A JSON object read field by field; every error names the field's full path (`data.amount`).
#[derive(Debug, Clone, Copy)]
struct JsonFields<'a> {
    map: &'a Map<String, Value>,
    /// `""` at the top level, `"data."` inside `data`.
    prefix: &'a str,
}

impl<'a> JsonFields<'a> {
    fn top(map: &'a Map<String, Value>) -> Self {
        JsonFields { map, prefix: "" }
    }

    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn malformed(&self, key: &str, why: impl fmt::Display) -> FeedError {
        FeedError::Malformed(format!("{} {why}", self.path(key)))
    }

    fn required(&self, key: &str) -> Result<&'a Value, FeedError> {
        self.map.get(key).ok_or_else(|| self.malformed(key, "is missing"))
    }

    /// A nested object; `prefix` is its path plus a dot (passed in to keep the borrow simple).
    fn object(&self, key: &str, prefix: &'a str) -> Result<JsonFields<'a>, FeedError> {
        match self.required(key)? {
            Value::Object(map) => Ok(JsonFields { map, prefix }),
            other => Err(self.malformed(key, format_args!("must be an object, got {}", describe(other)))),
        }
    }

    /// A string that must be present (it may be empty).
    fn string(&self, key: &str) -> Result<&'a str, FeedError> {
        match self.required(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.malformed(key, format_args!("must be a string, got {}", describe(other)))),
        }
    }

    /// A string that must be present and not blank.
    fn non_empty_string(&self, key: &str) -> Result<&'a str, FeedError> {
        let s = self.string(key)?;
        if s.trim().is_empty() { Err(self.malformed(key, "must not be empty")) } else { Ok(s) }
    }

    /// Free text that must be present; `null` reads as empty (a transfer may carry no content).
    fn text(&self, key: &str) -> Result<String, FeedError> {
        match self.required(key)? {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s.clone()),
            other => Err(self.malformed(key, format_args!("must be a string, got {}", describe(other)))),
        }
    }

    /// An optional string: missing, `null` and blank all read as `None`.
    fn optional_string(&self, key: &str) -> Result<Option<String>, FeedError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.malformed(key, format_args!("must be a string or null, got {}", describe(other)))),
        }
    }

    /// A non-negative JSON integer identifier, as its decimal text.
    fn integer_id(&self, key: &str) -> Result<String, FeedError> {
        match self.required(key)? {
            Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
            other => {
                Err(self.malformed(key, format_args!("must be a non-negative JSON integer, got {}", describe(other))))
            }
        }
    }

    /// A JSON integer (either sign), e.g. an error code.
    fn integer(&self, key: &str) -> Result<i64, FeedError> {
        match self.required(key)? {
            Value::Number(n) => {
                n.as_i64().ok_or_else(|| self.malformed(key, format_args!("must be a JSON integer, got {n}")))
            }
            other => Err(self.malformed(key, format_args!("must be a JSON integer, got {}", describe(other)))),
        }
    }

    /// A balance or other amount we do not store but will not accept as a float either:
    /// missing or `null` is fine, anything else must be a JSON integer.
    fn optional_integer(&self, key: &str) -> Result<(), FeedError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Number(n)) if n.as_i64().is_some() || n.as_u64().is_some() => Ok(()),
            Some(other) => Err(self.malformed(key, format_args!("must be a JSON integer, got {}", describe(other)))),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, FeedError> {
        match self.required(key)? {
            Value::Bool(b) => Ok(*b),
            other => Err(self.malformed(key, format_args!("must be a boolean, got {}", describe(other)))),
        }
    }

    /// A positive whole number of đồng (see [`positive_dong`]).
    fn amount(&self, key: &str) -> Result<Vnd, FeedError> {
        positive_dong(self.required(key)?, &self.path(key))
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON for signatures
// ---------------------------------------------------------------------------------------------

/// Writes `value` as compact JSON with every object's keys sorted, recursively
/// ([`crate::canonical_json`], the writer the event hashes use too).
///
/// Casso and payOS sign a re-serialisation of the parsed body, not the bytes on the wire, so we
/// must rebuild their exact text. Keys sort by Unicode scalar value (byte-wise UTF-8), which is
/// what the providers' reference code does for the ASCII keys they use.
///
/// With `ascii_only`, every character above U+007F is written as `\uXXXX` (lower-case hex,
/// UTF-16 surrogate pairs beyond the BMP) as Python's `json.dumps` and PHP's `json_encode` do;
/// without it, non-ASCII is written raw as JavaScript's `JSON.stringify` does. Numbers are
/// printed as serde_json prints them.
fn write_sorted_json(value: &Value, ascii_only: bool, out: &mut String) {
    let non_ascii = if ascii_only { NonAscii::Escaped } else { NonAscii::Raw };
    crate::canonical_json::write_value(value, non_ascii, out);
}

/// `{"success": true}`-style replies shared by SePay, Casso and payOS, which all retry on any
/// non-2xx answer.
///
/// A credit that matched no order, or matched one with a different amount, has still been
/// recorded (it waits in the manual review queue: unmatched money is never dropped), so it is
/// acknowledged with 2xx; a 4xx would only make the provider retry a notification we already
/// hold. Internal errors answer 500 so that the provider does retry.
fn success_flag_reply(outcome: &Outcome) -> (u16, Value) {
    let failure = |status: u16, message: &str| (status, serde_json::json!({ "success": false, "message": message }));
    match outcome {
        Outcome::Accepted | Outcome::Duplicate => (200, serde_json::json!({ "success": true })),
        Outcome::AmountMismatch => {
            (200, serde_json::json!({ "success": true, "message": "recorded for manual review: amount differs" }))
        }
        Outcome::NotFound => {
            (200, serde_json::json!({ "success": true, "message": "recorded for manual review: no matching order" }))
        }
        Outcome::BadSignature => failure(401, "invalid signature"),
        Outcome::Malformed(message) => failure(400, message),
        Outcome::NotConfigured => failure(503, "provider not configured"),
        Outcome::Internal => failure(500, "internal error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_its_value_in_debug_output() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn providers_have_stable_lower_case_names() {
        let names: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["sepay", "casso", "payos", "vnpay"]);
        assert_eq!(Provider::Vnpay.to_string(), "vnpay");
    }

    #[test]
    fn vietnam_local_times_are_converted_to_utc() {
        let dashed = vietnam_local_time("2023-03-25 14:02:37", LocalTimeFormat::Dashed, "t");
        assert_eq!(dashed, Ok("2023-03-25T07:02:37Z".parse().expect("valid instant")));
        let compact = vietnam_local_time("20240101050000", LocalTimeFormat::Compact, "t");
        assert_eq!(compact, Ok("2023-12-31T22:00:00Z".parse().expect("valid instant")));
    }

    #[test]
    fn badly_shaped_or_impossible_times_are_malformed() {
        for bad in [
            "2023-3-25 14:02:37",
            "2023-03-25T14:02:37",
            "2023-02-30 10:00:00",
            "2023-03-25 24:00:00",
            "",
            "+2023-03-25 14:02:3",
        ] {
            assert!(
                matches!(vietnam_local_time(bad, LocalTimeFormat::Dashed, "t"), Err(FeedError::Malformed(_))),
                "{bad:?}"
            );
        }
        for bad in ["2023032514023", "202303251402377", "2023-03-25 14:02:37", "20231301000000"] {
            assert!(
                matches!(vietnam_local_time(bad, LocalTimeFormat::Compact, "t"), Err(FeedError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn amounts_must_be_positive_json_integers() {
        let amount = |json: &str| positive_dong(&serde_json::from_str(json).expect("valid JSON"), "amount");
        assert_eq!(amount("3000"), Ok(Vnd::new(3000).expect("valid")));
        for bad in [
            "2000.5",
            "2000.0",
            "2e3",
            "-5",
            "0",
            "\"3000\"",
            "null",
            "true",
            "1000000000000000",
            "18446744073709551616",
        ] {
            match amount(bad) {
                Err(FeedError::Malformed(message)) => assert!(message.starts_with("amount "), "{message}"),
                other => panic!("{bad} gave {other:?}"),
            }
        }
    }

    #[test]
    fn sorted_json_sorts_keys_recursively_and_can_escape_non_ascii() {
        let value: Value =
            serde_json::from_str(r#"{"b":[{"z":1,"a":null}],"a":"Thành 😀\n\"","c":true}"#).expect("valid JSON");
        let mut ascii = String::new();
        write_sorted_json(&value, true, &mut ascii);
        assert_eq!(ascii, r#"{"a":"Th\u00e0nh \ud83d\ude00\n\"","b":[{"a":null,"z":1}],"c":true}"#);
        let mut raw = String::new();
        write_sorted_json(&value, false, &mut raw);
        assert_eq!(raw, "{\"a\":\"Thành 😀\\n\\\"\",\"b\":[{\"a\":null,\"z\":1}],\"c\":true}");
    }

    #[test]
    fn errors_map_to_reply_outcomes() {
        assert_eq!(FeedError::StaleTimestamp.outcome(), Outcome::BadSignature);
        assert_eq!(FeedError::MissingSignature.outcome(), Outcome::BadSignature);
        assert_eq!(FeedError::Malformed("x".into()).outcome(), Outcome::Malformed("x".into()));
        assert_eq!(FeedError::NotConfigured.outcome(), Outcome::NotConfigured);
    }
}
