//! The fuzz targets: one function per parser that reads bytes from outside the node.
//!
//! The libFuzzer harness (`fuzz/fuzz_targets/<name>.rs`) and the corpus regression test
//! (`tests/corpus.rs`, part of `cargo test --workspace`) call the same functions, so an input
//! that crashed under the fuzzer crashes the same way in the test. A target panics when the
//! parser panics or when an invariant of what it returned does not hold; an `Err` from the
//! parser is an ordinary outcome.
//!
//! Targets behind a signature check take their mode from the first input byte: parse the rest
//! as it is, sign the rest with the target's fixed key (so the fuzzer reaches the parse behind
//! the check), or take the signature headers from the input and verify them.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_graphql::ScalarType;
use chrono::{DateTime, Utc};
use feeledger_api::graphql::scalars::VndScalar;
use feeledger_domain::bank_credit::{self, Provider};
use feeledger_domain::codes::{
    AccountNumber, AgencyCode, BankBin, CaseCode, CodeError, CounterId, FeeCode, PaymentReference,
};
use feeledger_domain::money::{NAPAS_TRANSFER_LIMIT, Percent, VND_MAX, Vnd};
use feeledger_domain::vietqr::{DynamicQr, Payload};
use feeledger_infrastructure::bank_feed::{FeedError, Notification, Outcome, Secret, casso, payos, sepay, vnpay};
use feeledger_infrastructure::statement::{self, StatementFormat};
use serde_json::Value;

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name; the name is the harness binary's and the corpus directory's.
pub const TARGETS: [(&str, Target); 12] = [
    ("sepay", sepay),
    ("casso", casso),
    ("payos", payos),
    ("vnpay", vnpay),
    ("statement_csv", statement_csv),
    ("statement_camt053", statement_camt053),
    ("statement_mt940", statement_mt940),
    ("statement_bank", statement_bank),
    ("vietqr", vietqr),
    ("codes", codes),
    ("vnd", vnd),
    ("vnd_scalar", vnd_scalar),
];

/// SePay's HMAC secret in these targets (SePay publishes no sample secret).
const SEPAY_SECRET: &str = "sepay-fuzz-secret";
/// Casso's and payOS's published sample keys, so the published samples verify in the corpus.
const CASSO_KEY: &str = "mgExMrjj4i7a1p8Cs6LmFbpCd8lbw4sSX4LZXPag7TKazeIogtR90tvWYTkwQbvs";
const PAYOS_KEY: &str = "1a54716c8f0efb2744fb28b6e38b25da7f67a925d98bc1c18bd8faaecadd7675";
/// The secret the VNPAY module's own tests use.
const VNPAY_SECRET: &str = "VNPAYTESTSECRETFEELEDGER0123456789";
/// Casso's `t` when a target signs a body itself (the published sample's).
const CASSO_SIGNED_AT_MS: u64 = 1_727_948_258_788;
/// The clock of the SePay target: 2025-06-01T03:00:00Z.
const SEPAY_NOW_UNIX: i64 = 1_748_746_800;

/// The agencies whose case codes the credit targets look for in transfer texts.
static AGENCIES: LazyLock<Vec<AgencyCode>> = LazyLock::new(|| {
    ["H34.22.6", "000.00.00.H34", "H34", "G01.999.2"]
        .into_iter()
        .map(|code| AgencyCode::parse(code).expect("a valid agency code"))
        .collect()
});

// ---------------------------------------------------------------------------------------------
// Payment notifications
// ---------------------------------------------------------------------------------------------

/// SePay: `0` parse; `1` sign with the key, verify, parse; `2` signature and timestamp headers
/// as the first two lines, then the body; `3` the `Authorization` header as the first line.
pub fn sepay(data: &[u8]) {
    let secret = Secret::new(SEPAY_SECRET);
    let now = DateTime::<Utc>::from_timestamp(SEPAY_NOW_UNIX, 0).expect("a valid instant");
    let check = |body: &[u8]| check_notification(Provider::Sepay, sepay::parse(body), sepay::reply);
    let (mode, rest) = mode(data, 4);
    match mode {
        0 => check(rest),
        1 => {
            let signature = sepay::sign(rest, now.timestamp(), &secret);
            let timestamp = now.timestamp().to_string();
            let verified = sepay::verify_hmac(Some(&signature), Some(&timestamp), rest, &secret, now);
            assert_eq!(verified, Ok(()), "a body signed with the key must verify");
            check(rest);
        }
        2 => {
            let (signature, rest) = first_line(rest);
            let (timestamp, body) = first_line(rest);
            if sepay::verify_hmac(header(signature), header(timestamp), body, &secret, now).is_ok() {
                check(body);
            }
        }
        _ => {
            let (authorization, body) = first_line(rest);
            if sepay::verify_api_key(header(authorization), &secret).is_ok() {
                check(body);
            }
        }
    }
}

/// Casso: `0` parse; `1` sign with the key, verify, parse; `2` the `X-Casso-Signature` header
/// as the first line, then the body.
pub fn casso(data: &[u8]) {
    let key = Secret::new(CASSO_KEY);
    let check = |body: &[u8]| check_notification(Provider::Casso, casso::parse(body), casso::reply);
    let (mode, rest) = mode(data, 3);
    match mode {
        0 => check(rest),
        1 => match casso::sign(rest, CASSO_SIGNED_AT_MS, &key) {
            Ok(signature) => {
                assert_eq!(
                    casso::verify(Some(&signature), rest, &key),
                    Ok(()),
                    "a body signed with the key must verify"
                );
                check(rest);
            }
            Err(_) => {
                assert!(serde_json::from_slice::<Value>(rest).is_err(), "only a body that is not JSON is unsignable")
            }
        },
        _ => {
            let (signature, body) = first_line(rest);
            if casso::verify(header(signature), body, &key).is_ok() {
                check(body);
            }
        }
    }
}

/// payOS: `0` parse; `1` re-sign the body's `data` with the key, verify, parse; `2` verify the
/// body's own `signature`, then parse.
pub fn payos(data: &[u8]) {
    let key = Secret::new(PAYOS_KEY);
    let check = |body: &[u8]| check_notification(Provider::Payos, payos::parse(body), payos::reply);
    let (mode, rest) = mode(data, 3);
    match mode {
        0 => check(rest),
        1 => {
            let Ok(body) = serde_json::from_slice::<Value>(rest) else { return };
            let Ok(signed) = payos::sign_body(&body, &key) else { return };
            let verified = payos::verify(&signed, &key);
            // serde_json's default float parsing may lose the last bit, so a float written and
            // read back can print differently and the signature over it no longer match.
            if !has_float(&body["data"]) {
                assert_eq!(verified, Ok(()), "a body signed with the key must verify");
            }
            if verified.is_ok() {
                check(&signed);
            }
        }
        _ => {
            if payos::verify(rest, &key).is_ok() {
                check(rest);
            }
        }
    }
}

/// VNPAY (the input is the IPN's query string): `0` parse; `1` re-sign the query's parameters
/// with the secret, verify, parse; `2` verify the query's own `vnp_SecureHash`, then parse.
pub fn vnpay(data: &[u8]) {
    let secret = Secret::new(VNPAY_SECRET);
    let check = |query: &str| check_notification(Provider::Vnpay, vnpay::parse(query), vnpay::reply);
    let (mode, rest) = mode(data, 3);
    let query = String::from_utf8_lossy(rest);
    match mode {
        0 => check(&query),
        1 => {
            let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let signed = vnpay::sign(&pairs, &secret);
            let verified = vnpay::verify(&signed, &secret);
            // Repeated parameters are refused, and a `vnp_SecureHash` among them would be one.
            let mut keys = HashSet::new();
            let signable =
                pairs.iter().filter(|(k, _)| !k.is_empty()).all(|(k, _)| *k != "vnp_SecureHash" && keys.insert(*k));
            if signable {
                assert_eq!(verified, Ok(()), "a query signed with the secret must verify: {signed:?}");
            }
            if verified.is_ok() {
                check(&signed);
            }
        }
        _ => {
            if vnpay::verify(&query, &secret).is_ok() {
                check(&query);
            }
        }
    }
}

/// Whether a JSON value holds a number that is not an integer (or too large for one).
fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(number) => number.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// What every provider's `parse` must guarantee, and the steps that follow it on the node: the
/// reply to a refusal, and the search for case codes in the credit's texts.
fn check_notification(
    provider: Provider,
    parsed: Result<Notification, FeedError>,
    reply: fn(&Outcome) -> (u16, Value),
) {
    match parsed {
        Ok(Notification::Credit(credit)) => {
            assert_eq!(credit.provider, provider);
            assert!(!credit.amount.is_zero() && credit.amount.dong() <= VND_MAX, "credit amount {:?}", credit.amount);
            assert!(!credit.provider_transaction_id.trim().is_empty(), "a credit without a duplicate key");
            for text in bank_credit::reference_texts(&credit) {
                for code in bank_credit::case_codes_in(text, &AGENCIES) {
                    assert!(AGENCIES.contains(&code.agency()), "{code} is not of a searched agency");
                }
            }
        }
        Ok(Notification::Ignored { .. }) => {}
        Err(error) => {
            reply(&error.outcome());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bank statements
// ---------------------------------------------------------------------------------------------

/// A CSV statement file.
pub fn statement_csv(data: &[u8]) {
    check_statement(StatementFormat::Csv, data);
}

/// A camt.053 statement file.
pub fn statement_camt053(data: &[u8]) {
    check_statement(StatementFormat::Camt053, data);
}

/// An MT940 statement file (one or more messages, SWIFT envelope or not).
pub fn statement_mt940(data: &[u8]) {
    check_statement(StatementFormat::Mt940, data);
}

/// Any statement file as finance uploads it: the format recognised from the content (a bank's
/// XLSX, XLS, HTML-as-`.xls` or CSV account history, MT940, camt.053, our CSV), then parsed.
pub fn statement_bank(data: &[u8]) {
    check_statement(StatementFormat::Auto, data);
}

/// Every line moves money on the statement's one account under an id unique in the file, and
/// reading the same file again gives the same statement, line ids included.
fn check_statement(format: StatementFormat, data: &[u8]) {
    let parsed = statement::parse(format, data);
    if let Ok(statement) = &parsed {
        let mut ids = HashSet::new();
        for line in &statement.lines {
            assert!(!line.amount.is_zero() && line.amount.dong() <= VND_MAX, "line amount {:?}", line.amount);
            assert_eq!(line.account_number, statement.account_number);
            assert!(ids.insert(line.line_id.as_str()), "line id {:?} is given twice", line.line_id);
        }
    }
    assert_eq!(statement::parse(format, data), parsed, "the same file must read the same way twice");
}

// ---------------------------------------------------------------------------------------------
// VietQR, codes and amounts
// ---------------------------------------------------------------------------------------------

/// A VietQR payload as a QR decoder hands it over (text).
pub fn vietqr(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(payload) = Payload::parse(&text) {
        let encoded = payload.encode();
        assert_eq!(Payload::parse(&encoded).as_ref(), Ok(&payload), "an encoded payload must parse back");
        // Parse then encode gives back the same text, except that the CRC may have been sent in
        // lower case. A verified CRC is four ASCII hex digits, so these splits are on characters.
        let (body, crc) = text.split_at(text.len() - 4);
        let (encoded_body, encoded_crc) = encoded.split_at(encoded.len() - 4);
        assert_eq!(encoded_body, body);
        assert!(encoded_crc.eq_ignore_ascii_case(crc), "CRC {crc:?} re-encoded as {encoded_crc:?}");
    }
    if let Ok(qr) = DynamicQr::parse(&text) {
        assert!(!qr.amount.is_zero(), "a dynamic QR for zero đồng");
        let purpose_kept = !qr.purpose.is_empty() && qr.purpose.trim() == qr.purpose;
        if qr.amount < NAPAS_TRANSFER_LIMIT && purpose_kept {
            let encoded = qr.encode().expect("a parsed dynamic QR below the NAPAS limit must encode");
            assert_eq!(DynamicQr::parse(&encoded).as_ref(), Ok(&qr), "a re-encoded dynamic QR must parse back");
        }
    }
}

/// The codes people type: case codes, agency e-IDs, fee codes, counters, BINs, accounts and
/// payment references. Whatever parses re-parses to itself from its text.
pub fn codes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(code) = reparses(CaseCode::parse, &text) {
        let agency = reparses(AgencyCode::parse, code.agency().as_str()).expect("a case code's agency parses");
        let date = &code.as_str()[agency.as_str().len() + 1..][..6];
        assert_eq!(code.received_on().format("%y%m%d").to_string(), date, "{code}: the YYMMDD part is not its day");
        reparses(PaymentReference::parse, PaymentReference::for_case(&code).as_str())
            .expect("a case's payment reference parses");
        assert!(
            bank_credit::case_codes_in(code.as_str(), std::slice::from_ref(&agency)).contains(&code),
            "{code} is not found in its own text"
        );
    }
    reparses(AgencyCode::parse, &text);
    reparses(FeeCode::parse, &text);
    reparses(CounterId::parse, &text);
    reparses(BankBin::parse, &text);
    reparses(AccountNumber::parse, &text);
    reparses(PaymentReference::parse, &text);
}

/// Parses `text`; when it is accepted, its text must be `text` and parse to the same value.
fn reparses<T>(parse: fn(&str) -> Result<T, CodeError>, text: &str) -> Option<T>
where
    T: AsRef<str> + PartialEq + std::fmt::Debug,
{
    let code = parse(text).ok()?;
    assert_eq!(code.as_ref(), text);
    assert_eq!(parse(code.as_ref()).as_ref(), Ok(&code));
    Some(code)
}

/// `Vnd::parse` and `parse_positive` (every amount typed or sent as text), and `Percent::parse`.
pub fn vnd(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Vnd::parse(&text) {
        Ok(amount) => {
            assert!((0..=VND_MAX).contains(&amount.dong()), "{amount:?} is out of range");
            let shown = amount.to_string();
            let digits = text.trim_start_matches('0');
            assert_eq!(shown, if digits.is_empty() { "0" } else { digits });
            assert_eq!(Vnd::parse(&shown), Ok(amount));
            assert_eq!(Vnd::new(amount.dong()), Ok(amount));
            assert_eq!(amount.grouped().replace('.', ""), shown);
            assert_eq!(Vnd::parse_positive(&text).is_ok(), !amount.is_zero());
        }
        Err(_) => assert!(Vnd::parse_positive(&text).is_err()),
    }
    if let Ok(percent) = Percent::parse(&text) {
        assert_eq!(Percent::parse(&percent.to_string()), Ok(percent));
    }
}

/// The GraphQL `Vnd` scalar, given the input as a JSON variable value.
pub fn vnd_scalar(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<async_graphql::Value>(data) else { return };
    let Ok(VndScalar(amount)) = VndScalar::parse(value.clone()) else { return };
    match &value {
        async_graphql::Value::String(text) => assert_eq!(Vnd::parse(text), Ok(amount)),
        async_graphql::Value::Number(number) => assert_eq!(number.as_i64(), Some(amount.dong())),
        other => panic!("the Vnd scalar accepted {other:?}"),
    }
    let output = VndScalar(amount).to_value();
    assert_eq!(VndScalar::parse(output).ok(), Some(VndScalar(amount)), "the scalar's output must be valid input");
}

// ---------------------------------------------------------------------------------------------
// Reading the input
// ---------------------------------------------------------------------------------------------

/// The mode (`0..modes`) from the first byte, and the rest; an empty input is mode 0.
fn mode(data: &[u8], modes: u8) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (first % modes, rest),
        None => (0, data),
    }
}

/// The first line (without its `\n`) and what follows it.
fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[]),
    }
}

/// A header value as the HTTP layer hands it over: absent unless it is text.
fn header(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}
