//! SePay: a bank-account watcher that POSTs one JSON object per transaction.
//!
//! Authentication is either a shared API key (`Authorization: Apikey <KEY>`) or, in the HMAC
//! variant, `X-SePay-Signature: hex(HMAC-SHA256(secret, timestamp + "." + raw body))` with
//! `X-SePay-Timestamp` in unix seconds. The HMAC covers the raw bytes, so nothing is
//! re-serialised. SePay retries failed deliveries (up to 7 times) and the duplicate key is `id`.
//! Only `transferType == "in"` is money arriving.

use chrono::{DateTime, Utc};
use hmac::Hmac;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    BankCredit, FeedError, JsonFields, LocalTimeFormat, Notification, Outcome, Provider, Secret, check_hex_tag,
    configured_key, hex_tag, keyed_mac, parse_json_object, success_flag_reply, vietnam_local_time,
};

type HmacSha256 = Hmac<Sha256>;

pub const AUTHORIZATION_HEADER: &str = "Authorization";
pub const SIGNATURE_HEADER: &str = "X-SePay-Signature";
pub const TIMESTAMP_HEADER: &str = "X-SePay-Timestamp";

/// How far a signed timestamp may be from our clock, either way: 5 minutes. Older requests
/// could be replays; ones from the future mean a wrong clock or a forgery attempt.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// Checks `Authorization: Apikey <KEY>`. The scheme is matched case-insensitively (RFC 9110);
/// any other scheme (`Bearer …`) is refused. Both keys are hashed before the constant-time
/// comparison so that not even the key's length leaks through timing.
pub fn verify_api_key(authorization_header: Option<&str>, key: &Secret) -> Result<(), FeedError> {
    let expected = configured_key(key)?;
    let header = authorization_header.map(str::trim).filter(|h| !h.is_empty()).ok_or(FeedError::MissingSignature)?;
    let (scheme, given) = header.split_once(' ').ok_or(FeedError::BadSignature)?;
    if !scheme.eq_ignore_ascii_case("apikey") {
        return Err(FeedError::BadSignature);
    }
    let given = Sha256::digest(given.trim().as_bytes());
    let expected = Sha256::digest(expected);
    if bool::from(given.as_slice().ct_eq(expected.as_slice())) { Ok(()) } else { Err(FeedError::BadSignature) }
}

/// What the inbox keeps of an `Authorization` header: its scheme and a SHA-256 fingerprint of
/// the credential (`Apikey sha256:<hex>`), never the credential itself. Enough to verify the
/// request again after an interruption (see [`verify_api_key_fingerprint`]); useless as a key,
/// because only that check accepts it.
pub fn credential_fingerprint(authorization_header: &str) -> String {
    let header = authorization_header.trim();
    let (scheme, given) = header.split_once(' ').unwrap_or((header, ""));
    format!("{scheme} sha256:{}", hex::encode(Sha256::digest(given.trim().as_bytes())))
}

/// Checks a stored [`credential_fingerprint`] against the configured API key. For requests
/// read back from the inbox only: a live request must carry the key itself.
pub fn verify_api_key_fingerprint(stored: Option<&str>, key: &Secret) -> Result<(), FeedError> {
    let expected = configured_key(key)?;
    let stored = stored.map(str::trim).filter(|h| !h.is_empty()).ok_or(FeedError::MissingSignature)?;
    let (scheme, fingerprint) = stored.split_once(' ').ok_or(FeedError::BadSignature)?;
    let fingerprint = fingerprint.trim().strip_prefix("sha256:").ok_or(FeedError::BadSignature)?;
    if !scheme.eq_ignore_ascii_case("apikey") {
        return Err(FeedError::BadSignature);
    }
    let given = hex::decode(fingerprint).map_err(|_| FeedError::BadSignature)?;
    let expected = Sha256::digest(expected);
    if bool::from(given.as_slice().ct_eq(expected.as_slice())) { Ok(()) } else { Err(FeedError::BadSignature) }
}

/// Checks the HMAC-SHA256 variant over `timestamp + "." + raw_body`, using the timestamp text
/// exactly as sent. The timestamp must be unix seconds within [`MAX_CLOCK_SKEW_SECONDS`] of `now`;
/// the freshness check comes after the signature check so that an unsigned request cannot learn
/// anything about our clock.
pub fn verify_hmac(
    signature_header: Option<&str>,
    timestamp_header: Option<&str>,
    raw_body: &[u8],
    secret: &Secret,
    now: DateTime<Utc>,
) -> Result<(), FeedError> {
    let key = configured_key(secret)?;
    let signature = signature_header.map(str::trim).filter(|s| !s.is_empty()).ok_or(FeedError::MissingSignature)?;
    let timestamp = timestamp_header.map(str::trim).filter(|t| !t.is_empty()).ok_or(FeedError::MissingSignature)?;
    if timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FeedError::BadSignature);
    }
    let mac = keyed_mac::<HmacSha256>(key, &[timestamp.as_bytes(), b".", raw_body]);
    check_hex_tag(mac, signature)?;
    let sent_at: i64 = timestamp.parse().map_err(|_| FeedError::BadSignature)?;
    if (now.timestamp() - sent_at).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(FeedError::StaleTimestamp);
    }
    Ok(())
}

/// Reads a SePay notification.
///
/// Required: `id` (integer, the duplicate key), `transactionDate` (UTC+7), `content`,
/// `transferType` (`"in"` or `"out"`) and, for credits, `transferAmount` (positive integer).
/// `accumulated`, when present, must be an integer too: a float balance means a broken sender.
pub fn parse(raw_body: &[u8]) -> Result<Notification, FeedError> {
    let map = parse_json_object(raw_body)?;
    let body = JsonFields::top(&map);
    let id = body.integer_id("id")?;
    match body.string("transferType")? {
        "in" => {}
        "out" => {
            return Ok(Notification::Ignored {
                provider_transaction_id: Some(id),
                reason: "outgoing transfer (transferType \"out\")".to_owned(),
            });
        }
        other => return Err(body.malformed("transferType", format_args!("must be \"in\" or \"out\", got {other:?}"))),
    }
    let amount = body.amount("transferAmount")?;
    body.optional_integer("accumulated")?;
    let credited_at = vietnam_local_time(body.string("transactionDate")?, LocalTimeFormat::Dashed, "transactionDate")?;
    Ok(Notification::credit(BankCredit {
        provider: Provider::Sepay,
        provider_transaction_id: id,
        bank_reference: body.optional_string("referenceCode")?,
        amount,
        credited_at,
        account_number: body.optional_string("accountNumber")?,
        virtual_account: body.optional_string("subAccount")?,
        content: body.text("content")?,
        match_hint: body.optional_string("code")?,
        payer_account: None,
        payer_name: None,
    }))
}

/// SePay's answer: 200 `{"success":true}` when it must stop retrying, otherwise
/// `{"success":false,"message":…}` with 4xx (or 5xx to ask for a retry).
pub fn reply(outcome: &Outcome) -> (u16, Value) {
    success_flag_reply(outcome)
}

/// The `Authorization` header value SePay sends in API-key mode.
pub fn api_key_header(key: &Secret) -> String {
    format!("Apikey {}", key.expose())
}

/// The `X-SePay-Signature` value for `raw_body` sent at `timestamp` (unix seconds); send
/// `timestamp.to_string()` as `X-SePay-Timestamp`.
pub fn sign(raw_body: &[u8], timestamp: i64, secret: &Secret) -> String {
    let timestamp = timestamp.to_string();
    hex_tag(keyed_mac::<HmacSha256>(secret.expose().as_bytes(), &[timestamp.as_bytes(), b".", raw_body]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use feeledger_domain::money::Vnd;

    /// The sample from SePay's documentation (webhooks.md).
    const SAMPLE: &str = r#"{"id":92704,"gateway":"Vietcombank","transactionDate":"2023-03-25 14:02:37","accountNumber":"0123499999",
 "code":null,"content":"chuyen tien mua iphone","transferType":"in","transferAmount":2277000,
 "accumulated":19077000,"subAccount":null,"referenceCode":"MBVCB.3278907687"}"#;

    fn key() -> Secret {
        Secret::new("sepay-test-key-7f3a".to_owned())
    }

    fn now() -> DateTime<Utc> {
        "2025-06-01T03:00:00Z".parse().expect("valid instant")
    }

    fn malformed(body: &str) -> String {
        match parse(body.as_bytes()) {
            Err(FeedError::Malformed(message)) => message,
            other => panic!("expected Malformed for {body}, got {other:?}"),
        }
    }

    #[test]
    fn the_published_sample_parses_into_a_credit() {
        let Ok(Notification::Credit(credit)) = parse(SAMPLE.as_bytes()) else { panic!("sample must be a credit") };
        assert_eq!(
            credit,
            BankCredit {
                provider: Provider::Sepay,
                provider_transaction_id: "92704".to_owned(),
                bank_reference: Some("MBVCB.3278907687".to_owned()),
                amount: Vnd::new(2_277_000).expect("valid"),
                credited_at: "2023-03-25T07:02:37Z".parse().expect("valid instant"),
                account_number: Some("0123499999".to_owned()),
                virtual_account: None,
                content: "chuyen tien mua iphone".to_owned(),
                match_hint: None,
                payer_account: None,
                payer_name: None,
            }
        );
    }

    #[test]
    fn a_code_and_sub_account_become_the_match_hint_and_virtual_account() {
        let body = SAMPLE
            .replace(r#""code":null"#, r#""code":"HS2025ABC""#)
            .replace(r#""subAccount":null"#, r#""subAccount":"VQR001""#);
        let Ok(Notification::Credit(credit)) = parse(body.as_bytes()) else { panic!("must be a credit") };
        assert_eq!(credit.match_hint.as_deref(), Some("HS2025ABC"));
        assert_eq!(credit.virtual_account.as_deref(), Some("VQR001"));
    }

    #[test]
    fn an_outgoing_transfer_is_ignored_with_its_id() {
        let body = SAMPLE.replace(r#""transferType":"in""#, r#""transferType":"out""#);
        match parse(body.as_bytes()) {
            Ok(Notification::Ignored { provider_transaction_id, .. }) => {
                assert_eq!(provider_transaction_id.as_deref(), Some("92704"))
            }
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    #[test]
    fn float_negative_zero_string_and_missing_amounts_are_malformed() {
        for (bad, why) in [
            ("2277000.5", "whole"),
            ("2277000.0", "whole"),
            ("-2277000", "negative"),
            ("0", "zero"),
            ("\"2277000\"", "integer"),
        ] {
            let message = malformed(&SAMPLE.replace("2277000", bad));
            assert!(message.contains("transferAmount") && message.contains(why), "{message}");
        }
        assert!(malformed(&SAMPLE.replace(r#""transferAmount":2277000,"#, "")).contains("transferAmount is missing"));
    }

    #[test]
    fn missing_or_mistyped_fields_are_malformed_and_named() {
        assert!(malformed(&SAMPLE.replace(r#""id":92704,"#, "")).contains("id is missing"));
        assert!(malformed(&SAMPLE.replace(r#""id":92704"#, r#""id":"92704""#)).contains("id must be"));
        assert!(
            malformed(&SAMPLE.replace(r#""transferType":"in""#, r#""transferType":"sideways""#))
                .contains("transferType")
        );
        assert!(malformed(&SAMPLE.replace("2023-03-25 14:02:37", "25/03/2023 14:02")).contains("transactionDate"));
        assert!(malformed(&SAMPLE.replace("19077000", "19077000.5")).contains("accumulated"));
        assert!(malformed("[1,2]").contains("JSON object"));
        assert!(malformed("{not json").contains("not valid JSON"));
    }

    #[test]
    fn api_key_mode_accepts_the_right_key_only() {
        assert_eq!(verify_api_key(Some(&api_key_header(&key())), &key()), Ok(()));
        assert_eq!(verify_api_key(Some("apikey sepay-test-key-7f3a"), &key()), Ok(()));
        assert_eq!(verify_api_key(Some("Apikey sepay-test-key-7f3b"), &key()), Err(FeedError::BadSignature));
        assert_eq!(verify_api_key(Some("Apikey sepay-test-key-7f3"), &key()), Err(FeedError::BadSignature));
        assert_eq!(verify_api_key(Some("Bearer sepay-test-key-7f3a"), &key()), Err(FeedError::BadSignature));
        assert_eq!(verify_api_key(Some("sepay-test-key-7f3a"), &key()), Err(FeedError::BadSignature));
        assert_eq!(verify_api_key(None, &key()), Err(FeedError::MissingSignature));
        assert_eq!(verify_api_key(Some(""), &key()), Err(FeedError::MissingSignature));
    }

    #[test]
    fn an_empty_configured_key_accepts_nothing() {
        let empty = Secret::new(String::new());
        assert_eq!(verify_api_key(Some("Apikey "), &empty), Err(FeedError::NotConfigured));
        let signature = sign(SAMPLE.as_bytes(), now().timestamp(), &empty);
        let timestamp = now().timestamp().to_string();
        assert_eq!(
            verify_hmac(Some(&signature), Some(&timestamp), SAMPLE.as_bytes(), &empty, now()),
            Err(FeedError::NotConfigured)
        );
    }

    #[test]
    fn hmac_mode_accepts_a_fresh_signature_in_either_hex_case() {
        let sent = now() - TimeDelta::seconds(30);
        let signature = sign(SAMPLE.as_bytes(), sent.timestamp(), &key());
        let timestamp = sent.timestamp().to_string();
        assert_eq!(verify_hmac(Some(&signature), Some(&timestamp), SAMPLE.as_bytes(), &key(), now()), Ok(()));
        let upper = signature.to_uppercase();
        assert_eq!(verify_hmac(Some(&upper), Some(&timestamp), SAMPLE.as_bytes(), &key(), now()), Ok(()));
    }

    #[test]
    fn hmac_mode_rejects_a_six_minute_old_or_future_timestamp() {
        for sent in [now() - TimeDelta::minutes(6), now() + TimeDelta::minutes(6)] {
            let signature = sign(SAMPLE.as_bytes(), sent.timestamp(), &key());
            let timestamp = sent.timestamp().to_string();
            assert_eq!(
                verify_hmac(Some(&signature), Some(&timestamp), SAMPLE.as_bytes(), &key(), now()),
                Err(FeedError::StaleTimestamp)
            );
        }
    }

    #[test]
    fn hmac_mode_rejects_missing_headers_a_wrong_key_and_a_moved_timestamp() {
        let timestamp = now().timestamp().to_string();
        let signature = sign(SAMPLE.as_bytes(), now().timestamp(), &key());
        let body = SAMPLE.as_bytes();
        assert_eq!(verify_hmac(None, Some(&timestamp), body, &key(), now()), Err(FeedError::MissingSignature));
        assert_eq!(verify_hmac(Some(&signature), None, body, &key(), now()), Err(FeedError::MissingSignature));
        let other = Secret::new("another-key".to_owned());
        assert_eq!(verify_hmac(Some(&signature), Some(&timestamp), body, &other, now()), Err(FeedError::BadSignature));
        let moved = (now().timestamp() - 1).to_string();
        assert_eq!(verify_hmac(Some(&signature), Some(&moved), body, &key(), now()), Err(FeedError::BadSignature));
        assert_eq!(verify_hmac(Some("not hex"), Some(&timestamp), body, &key(), now()), Err(FeedError::BadSignature));
    }

    #[test]
    fn changing_any_single_byte_of_the_body_or_signature_fails_hmac_verification() {
        let timestamp = now().timestamp().to_string();
        let signature = sign(SAMPLE.as_bytes(), now().timestamp(), &key());
        for i in 0..SAMPLE.len() {
            let mut body = SAMPLE.as_bytes().to_vec();
            body[i] ^= 0x01;
            assert!(verify_hmac(Some(&signature), Some(&timestamp), &body, &key(), now()).is_err(), "byte {i}");
        }
        for i in 0..signature.len() {
            let mut tampered = signature.clone().into_bytes();
            tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(tampered).expect("ASCII");
            assert!(
                verify_hmac(Some(&tampered), Some(&timestamp), SAMPLE.as_bytes(), &key(), now()).is_err(),
                "hex digit {i}"
            );
        }
    }

    #[test]
    fn replies_use_the_success_flag() {
        assert_eq!(reply(&Outcome::Accepted), (200, serde_json::json!({"success": true})));
        assert_eq!(reply(&Outcome::Duplicate), (200, serde_json::json!({"success": true})));
        let (status, body) = reply(&Outcome::BadSignature);
        assert_eq!((status, &body["success"]), (401, &Value::Bool(false)));
        let (status, body) = reply(&Outcome::Malformed("transferAmount must not be negative".into()));
        assert_eq!((status, body["message"].as_str()), (400, Some("transferAmount must not be negative")));
        assert_eq!(reply(&Outcome::NotConfigured).0, 503);
        assert_eq!(reply(&Outcome::Internal).0, 500);
        assert_eq!(reply(&Outcome::NotFound).0, 200);
        assert_eq!(reply(&Outcome::AmountMismatch).0, 200);
    }
}
