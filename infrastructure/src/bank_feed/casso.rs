//! Casso (webhook v2): a bank-account watcher that POSTs `{error, data:{id, amount, …}}`.
//!
//! `X-Casso-Signature: t=<unix ms>,v1=<hex>` where
//! `v1 = hex(HMAC-SHA512(key, t + "." + canonical JSON of the parsed body))`. Casso signs a
//! re-serialisation, not the bytes it sends: keys sorted recursively, no spaces, non-ASCII
//! escaped as `\uXXXX`. We therefore parse the body and rebuild that text with
//! `write_sorted_json` (which sorts explicitly rather than trusting `serde_json::Map`'s order).
//! The duplicate key is `data.id`.
//!
//! Casso reports withdrawals too, as a negative `data.amount`; those are ignored, not refused.

use hmac::Hmac;
use serde_json::Value;
use sha2::Sha512;

use super::{
    BankCredit, FeedError, JsonFields, LocalTimeFormat, Notification, Outcome, Provider, Secret, check_hex_tag,
    configured_key, hex_tag, keyed_mac, parse_json_object, success_flag_reply, vietnam_local_time, write_sorted_json,
};

type HmacSha512 = Hmac<Sha512>;

pub const SIGNATURE_HEADER: &str = "X-Casso-Signature";

/// The text Casso signs: `t + "." + canonical JSON of the body`.
fn signed_message(timestamp_ms: u64, body: &Value) -> String {
    let mut message = format!("{timestamp_ms}.");
    write_sorted_json(body, true, &mut message);
    message
}

/// `t` and the `v1` signatures of an `X-Casso-Signature` header. Parts are comma-separated
/// `name=value` pairs; unknown parts are skipped so that a future `v2` does not break us, and
/// several `v1` values (key rotation) are all tried.
fn parse_header(header: &str) -> Result<(u64, Vec<&str>), FeedError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((name, value)) = part.split_once('=') else { continue };
        match name.trim() {
            "t" => {
                let value = value.trim();
                if value.is_empty() || value.len() > 15 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(FeedError::BadSignature);
                }
                timestamp = Some(value.parse::<u64>().map_err(|_| FeedError::BadSignature)?);
            }
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    match (timestamp, signatures.is_empty()) {
        (Some(t), false) => Ok((t, signatures)),
        (None, true) => Err(FeedError::MissingSignature),
        _ => Err(FeedError::BadSignature),
    }
}

/// Checks `X-Casso-Signature` against the body.
///
/// There is no freshness check on `t`: the signature covers it, replays carry the same
/// `data.id` and are deduplicated, and Casso re-sends failed deliveries long after signing.
pub fn verify(header: Option<&str>, raw_body: &[u8], key: &Secret) -> Result<(), FeedError> {
    let key = configured_key(key)?;
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(FeedError::MissingSignature)?;
    let (timestamp_ms, signatures) = parse_header(header)?;
    let body: Value = serde_json::from_slice(raw_body)
        .map_err(|err| FeedError::Malformed(format!("the body is not valid JSON: {err}")))?;
    let message = signed_message(timestamp_ms, &body);
    let mac = keyed_mac::<HmacSha512>(key, &[message.as_bytes()]);
    if signatures.iter().any(|signature| check_hex_tag(mac.clone(), signature).is_ok()) {
        Ok(())
    } else {
        Err(FeedError::BadSignature)
    }
}

/// Reads a Casso v2 notification.
///
/// `error != 0` is Ignored. In `data`: `id` (integer ≥ 0, the duplicate key), `amount`
/// (integer; negative = withdrawal, Ignored; zero or fractional = Malformed),
/// `transactionDateTime` (UTC+7), `description`; `reference`, `accountNumber`,
/// `virtualAccountNumber`, `counterAccountNumber`, `counterAccountName` when given.
pub fn parse(raw_body: &[u8]) -> Result<Notification, FeedError> {
    let map = parse_json_object(raw_body)?;
    let body = JsonFields::top(&map);
    let error = body.integer("error")?;
    let data = body.object("data", "data.")?;
    let id = data.integer_id("id")?;
    if error != 0 {
        return Ok(Notification::Ignored {
            provider_transaction_id: Some(id),
            reason: format!("Casso reported error {error}"),
        });
    }
    if let Some(Value::Number(n)) = data.map.get("amount")
        && n.as_i64().is_some_and(|amount| amount < 0)
    {
        return Ok(Notification::Ignored {
            provider_transaction_id: Some(id),
            reason: format!("outgoing transfer (data.amount {n})"),
        });
    }
    let amount = data.amount("amount")?;
    data.optional_integer("runningBalance")?;
    let credited_at =
        vietnam_local_time(data.string("transactionDateTime")?, LocalTimeFormat::Dashed, "data.transactionDateTime")?;
    Ok(Notification::credit(BankCredit {
        provider: Provider::Casso,
        provider_transaction_id: id,
        bank_reference: data.optional_string("reference")?,
        amount,
        credited_at,
        account_number: data.optional_string("accountNumber")?,
        virtual_account: data.optional_string("virtualAccountNumber")?,
        content: data.text("description")?,
        match_hint: None,
        payer_account: data.optional_string("counterAccountNumber")?,
        payer_name: data.optional_string("counterAccountName")?,
    }))
}

/// Casso's answer: any 2xx stops its retries; errors get a 4xx (5xx to ask for a retry) with
/// `{"success":false,"message":…}`.
pub fn reply(outcome: &Outcome) -> (u16, Value) {
    success_flag_reply(outcome)
}

/// The `X-Casso-Signature` value Casso would send for `raw_body` at `timestamp_ms`.
/// The body must be JSON, since the signature covers its canonical form.
pub fn sign(raw_body: &[u8], timestamp_ms: u64, key: &Secret) -> Result<String, FeedError> {
    let body: Value = serde_json::from_slice(raw_body)
        .map_err(|err| FeedError::Malformed(format!("the body is not valid JSON: {err}")))?;
    let message = signed_message(timestamp_ms, &body);
    let v1 = hex_tag(keyed_mac::<HmacSha512>(key.expose().as_bytes(), &[message.as_bytes()]));
    Ok(format!("t={timestamp_ms},v1={v1}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use feeledger_domain::money::Vnd;

    /// The published sample body, key and signature (webhooks.md), pasted as published.
    const SAMPLE: &str = r#"{"error":0,"data":{"id":0,"reference":"MA_GIAO_DICH_THU_NGHIEM","description":"giao dich thu nghiem","amount":599000,
 "runningBalance":25000000,"transactionDateTime":"2024-10-03 15:06:37","accountNumber":"88888888","bankName":"VPBank",
 "bankAbbreviation":"VPB","virtualAccountNumber":"","virtualAccountName":"","counterAccountName":"NGUYEN VAN A",
 "counterAccountNumber":"8888888888","counterAccountBankId":"970415","counterAccountBankName":"VietinBank"}}"#;
    const SAMPLE_KEY: &str = "mgExMrjj4i7a1p8Cs6LmFbpCd8lbw4sSX4LZXPag7TKazeIogtR90tvWYTkwQbvs";
    const SAMPLE_HEADER: &str = "t=1727948258788,v1=ed0a4bd2e826d5cb69988cdb141e6c1a080e21f3b57eb72cd78192220042b9e7dde0868fc667faea8e224900fa7904e7c88dfa098032fb2d6b6996856e8b7ff3";

    fn key() -> Secret {
        Secret::new(SAMPLE_KEY.to_owned())
    }

    fn malformed(body: &str) -> String {
        match parse(body.as_bytes()) {
            Err(FeedError::Malformed(message)) => message,
            other => panic!("expected Malformed for {body}, got {other:?}"),
        }
    }

    #[test]
    fn the_published_sample_verifies_with_its_published_key() {
        assert_eq!(verify(Some(SAMPLE_HEADER), SAMPLE.as_bytes(), &key()), Ok(()));
        assert_eq!(
            verify(
                Some(&SAMPLE_HEADER.to_uppercase().replace("T=", "t=").replace("V1=", "v1=")),
                SAMPLE.as_bytes(),
                &key()
            ),
            Ok(())
        );
    }

    #[test]
    fn the_published_sample_parses_into_a_credit() {
        let Ok(Notification::Credit(credit)) = parse(SAMPLE.as_bytes()) else { panic!("sample must be a credit") };
        assert_eq!(
            credit,
            BankCredit {
                provider: Provider::Casso,
                provider_transaction_id: "0".to_owned(),
                bank_reference: Some("MA_GIAO_DICH_THU_NGHIEM".to_owned()),
                amount: Vnd::new(599_000).expect("valid"),
                credited_at: "2024-10-03T08:06:37Z".parse().expect("valid instant"),
                account_number: Some("88888888".to_owned()),
                virtual_account: None,
                content: "giao dich thu nghiem".to_owned(),
                match_hint: None,
                payer_account: Some("8888888888".to_owned()),
                payer_name: Some("NGUYEN VAN A".to_owned()),
            }
        );
    }

    #[test]
    fn changing_any_single_byte_of_the_body_fails_verification() {
        for i in 0..SAMPLE.len() {
            let mut body = SAMPLE.as_bytes().to_vec();
            body[i] ^= 0x01;
            assert!(
                verify(Some(SAMPLE_HEADER), &body, &key()).is_err(),
                "byte {i} ({:?})",
                SAMPLE.as_bytes()[i] as char
            );
        }
        let cheaper = SAMPLE.replace("599000", "599001");
        assert_eq!(verify(Some(SAMPLE_HEADER), cheaper.as_bytes(), &key()), Err(FeedError::BadSignature));
    }

    #[test]
    fn changing_any_hex_digit_of_the_signature_or_the_timestamp_fails_verification() {
        let start = SAMPLE_HEADER.find("v1=").expect("has v1") + 3;
        for i in start..SAMPLE_HEADER.len() {
            let mut header = SAMPLE_HEADER.as_bytes().to_vec();
            header[i] = if header[i] == b'0' { b'1' } else { b'0' };
            let header = String::from_utf8(header).expect("ASCII");
            assert_eq!(verify(Some(&header), SAMPLE.as_bytes(), &key()), Err(FeedError::BadSignature), "hex digit {i}");
        }
        let moved = SAMPLE_HEADER.replace("t=1727948258788", "t=1727948258789");
        assert_eq!(verify(Some(&moved), SAMPLE.as_bytes(), &key()), Err(FeedError::BadSignature));
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter_because_the_body_is_canonicalised() {
        let reordered = r#"{ "data": {"counterAccountBankName":"VietinBank","counterAccountBankId":"970415","counterAccountNumber":"8888888888",
            "counterAccountName":"NGUYEN VAN A","virtualAccountName":"","virtualAccountNumber":"","bankAbbreviation":"VPB",
            "bankName":"VPBank","accountNumber":"88888888","transactionDateTime":"2024-10-03 15:06:37","runningBalance":25000000,
            "amount":599000,"description":"giao dich thu nghiem","reference":"MA_GIAO_DICH_THU_NGHIEM","id":0}, "error": 0 }"#;
        assert_eq!(verify(Some(SAMPLE_HEADER), reordered.as_bytes(), &key()), Ok(()));
    }

    #[test]
    fn sign_reproduces_the_published_signature_and_escapes_non_ascii() {
        assert_eq!(sign(SAMPLE.as_bytes(), 1_727_948_258_788, &key()).as_deref(), Ok(SAMPLE_HEADER));
        let body = SAMPLE.replace("giao dich thu nghiem", "Thành công 😀");
        let header = sign(body.as_bytes(), 1_727_948_258_788, &key()).expect("JSON body");
        assert_eq!(verify(Some(&header), body.as_bytes(), &key()), Ok(()));
        let value: Value = serde_json::from_str(&body).expect("valid JSON");
        assert!(signed_message(1, &value).contains(r#""description":"Th\u00e0nh c\u00f4ng \ud83d\ude00""#));
    }

    #[test]
    fn missing_or_unreadable_headers_and_empty_keys_are_refused() {
        assert_eq!(verify(None, SAMPLE.as_bytes(), &key()), Err(FeedError::MissingSignature));
        assert_eq!(verify(Some("  "), SAMPLE.as_bytes(), &key()), Err(FeedError::MissingSignature));
        assert_eq!(verify(Some("garbage"), SAMPLE.as_bytes(), &key()), Err(FeedError::MissingSignature));
        assert_eq!(verify(Some("t=1727948258788"), SAMPLE.as_bytes(), &key()), Err(FeedError::BadSignature));
        assert_eq!(verify(Some("t=abc,v1=00"), SAMPLE.as_bytes(), &key()), Err(FeedError::BadSignature));
        assert_eq!(verify(Some("v1=00"), SAMPLE.as_bytes(), &key()), Err(FeedError::BadSignature));
        assert_eq!(
            verify(Some(SAMPLE_HEADER), SAMPLE.as_bytes(), &Secret::new(String::new())),
            Err(FeedError::NotConfigured)
        );
        assert_eq!(verify(Some(SAMPLE_HEADER), SAMPLE.as_bytes(), &Secret::new("wrong")), Err(FeedError::BadSignature));
    }

    #[test]
    fn a_provider_error_or_a_withdrawal_is_ignored() {
        let failed = SAMPLE.replace(r#""error":0"#, r#""error":1"#);
        assert!(matches!(parse(failed.as_bytes()), Ok(Notification::Ignored { .. })));
        let withdrawal = SAMPLE.replace("599000", "-599000");
        match parse(withdrawal.as_bytes()) {
            Ok(Notification::Ignored { provider_transaction_id, reason }) => {
                assert_eq!(provider_transaction_id.as_deref(), Some("0"));
                assert!(reason.contains("outgoing"), "{reason}");
            }
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    #[test]
    fn float_zero_string_and_missing_amounts_are_malformed() {
        for bad in ["599000.5", "599000.0", "0", "\"599000\"", "null", "-599000.5"] {
            assert!(malformed(&SAMPLE.replace("599000", bad)).contains("data.amount"), "{bad}");
        }
        assert!(malformed(&SAMPLE.replace(r#""amount":599000,"#, "")).contains("data.amount is missing"));
        assert!(malformed(&SAMPLE.replace("25000000", "25000000.5")).contains("data.runningBalance"));
    }

    #[test]
    fn missing_or_mistyped_fields_are_malformed_and_named() {
        assert!(malformed(&SAMPLE.replace(r#""id":0,"#, "")).contains("data.id is missing"));
        assert!(malformed(&SAMPLE.replace(r#""id":0"#, r#""id":-3"#)).contains("data.id"));
        assert!(malformed(&SAMPLE.replace(r#""error":0"#, r#""error":"0""#)).contains("error must be"));
        assert!(malformed(r#"{"error":0}"#).contains("data is missing"));
        assert!(malformed(r#"{"error":0,"data":[]}"#).contains("data must be an object"));
        assert!(malformed(&SAMPLE.replace("2024-10-03 15:06:37", "2024-10-03")).contains("data.transactionDateTime"));
        assert!(
            malformed(&SAMPLE.replace(r#""description":"giao dich thu nghiem","#, "")).contains("data.description")
        );
    }

    #[test]
    fn replies_are_two_hundred_on_success_and_four_hundred_on_refusal() {
        assert_eq!(reply(&Outcome::Accepted), (200, serde_json::json!({"success": true})));
        assert_eq!(reply(&Outcome::Duplicate).0, 200);
        assert_eq!(reply(&Outcome::BadSignature).0, 401);
        assert_eq!(reply(&Outcome::Malformed("x".into())).0, 400);
        assert_eq!(reply(&Outcome::NotConfigured).0, 503);
    }
}
