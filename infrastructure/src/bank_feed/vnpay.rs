//! VNPAY IPN: a GET whose query string carries `vnp_*` parameters.
//!
//! `vnp_SecureHash = hex(HMAC-SHA512(secret, "k=v&…"))` over every `vnp_*` parameter except
//! `vnp_SecureHash` and `vnp_SecureHashType`, sorted by (decoded) key, keys and values
//! form-urlencoded with a space as `+` (what VNPAY's Java sample's `URLEncoder` produces). We
//! decode the query we received and re-encode it canonically, so `%20` versus `+`, or upper
//! versus lower-case percent escapes on the wire, do not matter.
//!
//! `vnp_Amount` is VND × 100 and must be a whole number of đồng. A payment succeeded only when
//! both `vnp_ResponseCode` and `vnp_TransactionStatus` are `"00"`.
//!
//! Duplicate key: `vnp_TransactionNo`, VNPAY's own number for the transaction, because it is the
//! provider's identity of the money movement. `vnp_TxnRef` is *our* reference (the order the QR
//! was made for) and goes to `match_hint`: deciding that an order is already paid ("02") is the
//! ledger's job on the order, not the feed's duplicate check on the notification.

use std::collections::BTreeMap;

use feeledger_domain::money::Vnd;
use hmac::Hmac;
use serde_json::Value;
use sha2::Sha512;

use super::{
    BankCredit, FeedError, LocalTimeFormat, Notification, Outcome, Provider, Secret, check_hex_tag, configured_key,
    hex_tag, keyed_mac, money_problem, vietnam_local_time,
};

type HmacSha512 = Hmac<Sha512>;

const HASH_PARAM: &str = "vnp_SecureHash";
const HASH_TYPE_PARAM: &str = "vnp_SecureHashType";

/// The query's parameters, decoded. A repeated parameter is refused: which copy was signed and
/// which one would be read could differ.
fn parse_query(raw_query: &str) -> Result<BTreeMap<String, String>, FeedError> {
    let raw_query = raw_query.strip_prefix('?').unwrap_or(raw_query);
    let mut params = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        if key.is_empty() {
            continue;
        }
        if params.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(FeedError::Malformed(format!("{key} appears more than once")));
        }
    }
    Ok(params)
}

/// The text VNPAY signs. Sorted here explicitly: the caller's parameters may come in any order.
fn hash_data<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut signed: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, _)| k.starts_with("vnp_") && *k != HASH_PARAM && *k != HASH_TYPE_PARAM)
        .collect();
    signed.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::new();
    for (i, (key, value)) in signed.into_iter().enumerate() {
        if i > 0 {
            text.push('&');
        }
        text.extend(form_urlencoded::byte_serialize(key.as_bytes()));
        text.push('=');
        text.extend(form_urlencoded::byte_serialize(value.as_bytes()));
    }
    text
}

/// Checks `vnp_SecureHash` against the other `vnp_*` parameters. A leading `?` is allowed.
pub fn verify(raw_query: &str, secret: &Secret) -> Result<(), FeedError> {
    let key = configured_key(secret)?;
    // A repeated parameter cannot carry a valid signature: whichever copy was signed, the
    // other could be read. VNPAY is told "invalid checksum" (97), not "invalid amount" (04).
    let params = parse_query(raw_query).map_err(|_| FeedError::BadSignature)?;
    let signature =
        params.get(HASH_PARAM).map(|s| s.trim()).filter(|s| !s.is_empty()).ok_or(FeedError::MissingSignature)?;
    let text = hash_data(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    check_hex_tag(keyed_mac::<HmacSha512>(key, &[text.as_bytes()]), signature)
}

fn required<'a>(params: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, FeedError> {
    params.get(key).map(String::as_str).ok_or_else(|| FeedError::Malformed(format!("{key} is missing")))
}

fn non_empty<'a>(params: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, FeedError> {
    let value = required(params, key)?;
    if value.trim().is_empty() { Err(FeedError::Malformed(format!("{key} must not be empty"))) } else { Ok(value) }
}

/// `vnp_Amount` (VND × 100, digits only) as whole đồng: it must end in `00` and be above zero.
fn amount(text: &str) -> Result<Vnd, FeedError> {
    let malformed = |why: String| FeedError::Malformed(format!("vnp_Amount {why}"));
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("must be digits only (VND × 100), got {text:?}")));
    }
    let Some(dong) = text.strip_suffix("00") else {
        return Err(malformed(format!("must be a multiple of 100 (VND × 100), got {text}")));
    };
    let dong = if dong.is_empty() { "0" } else { dong };
    Vnd::parse(dong).and_then(Vnd::require_positive).map_err(|err| malformed(money_problem(&err, text)))
}

/// Reads a VNPAY IPN query.
///
/// Always required: `vnp_ResponseCode`, `vnp_TransactionStatus`. A payment that did not
/// succeed is Ignored. For a credit: `vnp_TransactionNo` (not `0`), `vnp_TxnRef`, `vnp_Amount`,
/// `vnp_PayDate` (`yyyyMMddHHmmss`, UTC+7), `vnp_OrderInfo`; `vnp_BankTranNo` when given.
pub fn parse(raw_query: &str) -> Result<Notification, FeedError> {
    let params = parse_query(raw_query)?;
    let response_code = required(&params, "vnp_ResponseCode")?;
    let status = required(&params, "vnp_TransactionStatus")?;
    let transaction_no = params.get("vnp_TransactionNo").map(|s| s.trim()).filter(|s| !s.is_empty());
    if response_code != "00" || status != "00" {
        return Ok(Notification::Ignored {
            provider_transaction_id: transaction_no
                .filter(|n| !n.trim_start_matches('0').is_empty())
                .map(str::to_owned),
            reason: format!("VNPAY vnp_ResponseCode {response_code:?}, vnp_TransactionStatus {status:?}"),
        });
    }
    let transaction_no = non_empty(&params, "vnp_TransactionNo")?;
    if transaction_no.trim_start_matches('0').is_empty() {
        return Err(FeedError::Malformed("vnp_TransactionNo must identify the transaction, got 0".to_owned()));
    }
    let amount = amount(required(&params, "vnp_Amount")?)?;
    if let Some(currency) = params.get("vnp_CurrCode")
        && currency != "VND"
    {
        return Err(FeedError::Malformed(format!("vnp_CurrCode must be \"VND\", got {currency:?}")));
    }
    let credited_at = vietnam_local_time(required(&params, "vnp_PayDate")?, LocalTimeFormat::Compact, "vnp_PayDate")?;
    let bank_reference = params.get("vnp_BankTranNo").filter(|s| !s.trim().is_empty()).cloned();
    Ok(Notification::credit(BankCredit {
        provider: Provider::Vnpay,
        provider_transaction_id: transaction_no.to_owned(),
        bank_reference,
        amount,
        credited_at,
        account_number: None,
        virtual_account: None,
        content: required(&params, "vnp_OrderInfo")?.to_owned(),
        match_hint: Some(non_empty(&params, "vnp_TxnRef")?.to_owned()),
        payer_account: None,
        payer_name: None,
    }))
}

/// VNPAY's answer: always HTTP 200 with `{"RspCode", "Message"}`. VNPAY stops retrying on
/// `"00"` and `"02"`. A failed payment that was Ignored is answered with [`Outcome::Accepted`].
pub fn reply(outcome: &Outcome) -> (u16, Value) {
    let (code, message) = match outcome {
        Outcome::Accepted => ("00", "Confirm Success"),
        Outcome::Duplicate => ("02", "Order already confirmed"),
        Outcome::BadSignature => ("97", "Invalid signature"),
        Outcome::AmountMismatch => ("04", "Invalid amount"),
        Outcome::NotFound => ("01", "Order not found"),
        Outcome::Malformed(_) | Outcome::NotConfigured | Outcome::Internal => ("99", "Unknown error"),
    };
    (200, serde_json::json!({ "RspCode": code, "Message": message }))
}

/// The full query string VNPAY would send: `params` form-urlencoded in the given order, then
/// `vnp_SecureHash`.
pub fn sign(params: &[(&str, &str)], secret: &Secret) -> String {
    let text = hash_data(params.iter().copied());
    let hash = hex_tag(keyed_mac::<HmacSha512>(secret.expose().as_bytes(), &[text.as_bytes()]));
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(params.iter().copied());
    query.append_pair(HASH_PARAM, &hash);
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "VNPAYTESTSECRETFEELEDGER0123456789";

    fn secret() -> Secret {
        Secret::new(SECRET.to_owned())
    }

    fn params_with<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut params = vec![
            ("vnp_Amount", "300000"),
            ("vnp_BankCode", "NCB"),
            ("vnp_BankTranNo", "VNP14226112"),
            ("vnp_CardType", "ATM"),
            ("vnp_OrderInfo", "Thanh toan le phi ho so HS2025-0001"),
            ("vnp_PayDate", "20240425193000"),
            ("vnp_ResponseCode", "00"),
            ("vnp_TmnCode", "FEELEDG1"),
            ("vnp_TransactionNo", "14226112"),
            ("vnp_TransactionStatus", "00"),
            ("vnp_TxnRef", "HS2025-0001"),
        ];
        for (key, value) in overrides {
            match params.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => params.push((key, value)),
            }
        }
        params.retain(|(_, v)| *v != "<absent>");
        params
    }

    fn signed(overrides: &[(&str, &str)]) -> String {
        sign(&params_with(overrides), &secret())
    }

    fn malformed(query: &str) -> String {
        match parse(query) {
            Err(FeedError::Malformed(message)) => message,
            other => panic!("expected Malformed for {query}, got {other:?}"),
        }
    }

    #[test]
    fn a_query_signed_by_sign_verifies() {
        let query = signed(&[]);
        assert_eq!(verify(&query, &secret()), Ok(()));
        assert_eq!(verify(&format!("?{query}"), &secret()), Ok(()));
    }

    #[test]
    fn the_hash_matches_an_independent_implementation() {
        // Computed outside Rust: HMAC-SHA512 over the sorted pairs encoded like Java's URLEncoder
        // (space as '+', '*' '-' '.' '_' kept), i.e. "vnp_Amount=300000&vnp_BankCode=NCB&…".
        let query = signed(&[("vnp_OrderInfo", "Thanh toán lệ phí HS/2025*01 & ~x")]);
        let hash = query.rsplit_once("vnp_SecureHash=").map(|(_, h)| h.to_owned()).expect("hash appended");
        assert_eq!(hash, EXPECTED_INDEPENDENT_HASH);
    }

    const EXPECTED_INDEPENDENT_HASH: &str = "b89023fe79aaad80bbc5b42dd5bc817ceff04ba0eee5f7422b0c34d0d00cd59607919e2e1e67f24e0b8aa5138f84697105f675f58fa5496810e17c85672cc2cd";

    #[test]
    fn percent_twenty_and_plus_for_a_space_are_the_same_signed_value() {
        let query = signed(&[]);
        assert!(query.contains("Thanh+toan+le+phi"));
        let with_percent = query.replace("Thanh+toan+le+phi", "Thanh%20toan%20le%20phi");
        assert_eq!(verify(&with_percent, &secret()), Ok(()));
    }

    #[test]
    fn parameter_order_and_non_vnp_parameters_do_not_matter() {
        let query = signed(&[]);
        let (body, hash) = query.rsplit_once('&').expect("hash is last");
        let mut pairs: Vec<&str> = body.split('&').collect();
        pairs.reverse();
        let shuffled = format!("{hash}&utm_source=x&{}", pairs.join("&"));
        assert_eq!(verify(&shuffled, &secret()), Ok(()));
        let with_type = format!("{query}&vnp_SecureHashType=HmacSHA512");
        assert_eq!(verify(&with_type, &secret()), Ok(()));
    }

    #[test]
    fn the_hash_is_accepted_in_upper_case() {
        let query = signed(&[]);
        let (body, hash) = query.rsplit_once("vnp_SecureHash=").expect("hash appended");
        assert_eq!(verify(&format!("{body}vnp_SecureHash={}", hash.to_uppercase()), &secret()), Ok(()));
    }

    #[test]
    fn a_tampered_amount_or_any_changed_hex_digit_fails_verification() {
        let query = signed(&[]);
        let richer = query.replace("vnp_Amount=300000", "vnp_Amount=30000000");
        assert_eq!(verify(&richer, &secret()), Err(FeedError::BadSignature));
        let (body, hash) = query.rsplit_once("vnp_SecureHash=").expect("hash appended");
        for i in 0..hash.len() {
            let mut tampered = hash.as_bytes().to_vec();
            tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
            let tampered = format!("{body}vnp_SecureHash={}", String::from_utf8(tampered).expect("ASCII"));
            assert_eq!(verify(&tampered, &secret()), Err(FeedError::BadSignature), "hex digit {i}");
        }
        for i in 0..body.len() {
            let mut changed = body.as_bytes().to_vec();
            changed[i] ^= 0x01;
            let changed = format!("{}vnp_SecureHash={hash}", String::from_utf8(changed).expect("ASCII"));
            assert!(verify(&changed, &secret()).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_missing_hash_a_wrong_secret_or_an_empty_secret_is_refused() {
        let query = signed(&[]);
        let (body, _) = query.rsplit_once("&vnp_SecureHash=").expect("hash appended");
        assert_eq!(verify(body, &secret()), Err(FeedError::MissingSignature));
        assert_eq!(verify(&query, &Secret::new("other")), Err(FeedError::BadSignature));
        assert_eq!(verify(&query, &Secret::new(String::new())), Err(FeedError::NotConfigured));
        let doubled = format!("{query}&vnp_Amount=300000");
        assert_eq!(verify(&doubled, &secret()), Err(FeedError::BadSignature), "a repeated parameter is answered 97");
    }

    #[test]
    fn an_amount_of_300000_is_3000_dong() {
        let Ok(Notification::Credit(credit)) = parse(&signed(&[])) else { panic!("must be a credit") };
        assert_eq!(
            credit,
            BankCredit {
                provider: Provider::Vnpay,
                provider_transaction_id: "14226112".to_owned(),
                bank_reference: Some("VNP14226112".to_owned()),
                amount: Vnd::new(3000).expect("valid"),
                credited_at: "2024-04-25T12:30:00Z".parse().expect("valid instant"),
                account_number: None,
                virtual_account: None,
                content: "Thanh toan le phi ho so HS2025-0001".to_owned(),
                match_hint: Some("HS2025-0001".to_owned()),
                payer_account: None,
                payer_name: None,
            }
        );
    }

    #[test]
    fn an_amount_that_is_not_whole_dong_or_not_positive_is_malformed() {
        for bad in ["300050", "300001", "0", "00", "50", "3000.00", "-300000", "abc", "", "+300000", "3e5"] {
            let message = malformed(&signed(&[("vnp_Amount", bad)]));
            assert!(message.contains("vnp_Amount"), "{bad}: {message}");
        }
        let Ok(Notification::Credit(credit)) = parse(&signed(&[("vnp_Amount", "200")])) else {
            panic!("2 dong is a credit")
        };
        assert_eq!(credit.amount, Vnd::new(2).expect("valid"));
    }

    #[test]
    fn an_unsuccessful_payment_is_ignored() {
        match parse(&signed(&[("vnp_ResponseCode", "24"), ("vnp_TransactionNo", "0")])) {
            Ok(Notification::Ignored { provider_transaction_id, reason }) => {
                assert_eq!(provider_transaction_id, None);
                assert!(reason.contains("24"), "{reason}");
            }
            other => panic!("expected Ignored, got {other:?}"),
        }
        match parse(&signed(&[("vnp_TransactionStatus", "02")])) {
            Ok(Notification::Ignored { provider_transaction_id, .. }) => {
                assert_eq!(provider_transaction_id.as_deref(), Some("14226112"))
            }
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    #[test]
    fn missing_or_malformed_parameters_are_malformed_and_named() {
        for field in [
            "vnp_ResponseCode",
            "vnp_TransactionStatus",
            "vnp_TransactionNo",
            "vnp_TxnRef",
            "vnp_Amount",
            "vnp_PayDate",
            "vnp_OrderInfo",
        ] {
            let message = malformed(&signed(&[(field, "<absent>")]));
            assert!(message.contains(field), "{field}: {message}");
        }
        assert!(malformed(&signed(&[("vnp_TransactionNo", "0")])).contains("vnp_TransactionNo"));
        assert!(malformed(&signed(&[("vnp_PayDate", "2024-04-25 19:30")])).contains("vnp_PayDate"));
        assert!(malformed(&signed(&[("vnp_PayDate", "20240231193000")])).contains("vnp_PayDate"));
        assert!(malformed(&signed(&[("vnp_CurrCode", "USD")])).contains("vnp_CurrCode"));
    }

    #[test]
    fn replies_are_always_http_200_with_vnpay_codes() {
        let code = |outcome: Outcome| {
            let (status, body) = reply(&outcome);
            assert_eq!(status, 200);
            (body["RspCode"].as_str().map(str::to_owned), body["Message"].as_str().map(str::to_owned))
        };
        let pair = |c: &str, m: &str| (Some(c.to_owned()), Some(m.to_owned()));
        assert_eq!(code(Outcome::Accepted), pair("00", "Confirm Success"));
        assert_eq!(code(Outcome::Duplicate), pair("02", "Order already confirmed"));
        assert_eq!(code(Outcome::BadSignature), pair("97", "Invalid signature"));
        assert_eq!(code(Outcome::AmountMismatch), pair("04", "Invalid amount"));
        assert_eq!(code(Outcome::NotFound), pair("01", "Order not found"));
        assert_eq!(code(Outcome::Internal), pair("99", "Unknown error"));
        assert_eq!(code(Outcome::Malformed("x".into())), pair("99", "Unknown error"));
        assert_eq!(code(Outcome::NotConfigured), pair("99", "Unknown error"));
    }
}
