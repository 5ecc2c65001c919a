//! payOS (payment links and virtual accounts, by Casso): POSTs
//! `{code, desc, success, data:{…}, signature}`.
//!
//! `signature = hex(HMAC-SHA256(checksumKey, "k1=v1&k2=v2…"))` over the keys of `data` sorted
//! alphabetically. Values are written as payOS's reference SDK writes them: `null`, `"null"` and
//! `"undefined"` as the empty string, booleans as `true`/`false`, numbers as JSON prints them,
//! strings raw (neither quoted nor escaped, so `"Thành công"` is signed as UTF-8 text), arrays and
//! objects as compact JSON with sorted keys. Nothing outside `data` is signed, so the credit is
//! read from `data` only; the unsigned top-level `code` can only turn a credit into Ignored.
//! The duplicate key is `paymentLinkId:reference`.

use hmac::Hmac;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::{
    BankCredit, FeedError, JsonFields, LocalTimeFormat, Notification, Outcome, Provider, Secret, check_hex_tag,
    configured_key, hex_tag, keyed_mac, parse_json_object, success_flag_reply, vietnam_local_time, write_sorted_json,
};

type HmacSha256 = Hmac<Sha256>;

/// The `k=v&…` text payOS signs for `data`.
fn signed_text(data: &Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = data.iter().collect();
    // Sorted here, not by trusting `serde_json::Map`'s iteration order (see `write_sorted_json`).
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::new();
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            text.push('&');
        }
        text.push_str(key);
        text.push('=');
        match value {
            Value::Null => {}
            Value::String(s) if s == "null" || s == "undefined" => {}
            Value::String(s) => text.push_str(s),
            Value::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => text.push_str(&n.to_string()),
            Value::Array(_) | Value::Object(_) => write_sorted_json(value, false, &mut text),
        }
    }
    text
}

/// Checks the `signature` field of the body against its `data`.
pub fn verify(raw_body: &[u8], key: &Secret) -> Result<(), FeedError> {
    let key = configured_key(key)?;
    let map = parse_json_object(raw_body)?;
    let body = JsonFields::top(&map);
    let signature = match map.get("signature") {
        None | Some(Value::Null) => return Err(FeedError::MissingSignature),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(FeedError::MissingSignature),
        Some(Value::String(s)) => s,
        Some(_) => return Err(FeedError::BadSignature),
    };
    let data = body.object("data", "data.")?;
    let mac = keyed_mac::<HmacSha256>(key, &[signed_text(data.map).as_bytes()]);
    check_hex_tag(mac, signature)
}

/// Reads a payOS webhook.
///
/// A credit needs top-level `code == "00"` and `data.code == "00"`; otherwise Ignored. In
/// `data`: `paymentLinkId` and `reference` (together the duplicate key), `amount` (positive
/// integer), `transactionDateTime` (UTC+7), `description`, `currency` (`VND` when present);
/// `accountNumber`, `virtualAccountNumber`, `counterAccountNumber`, `counterAccountName`
/// when given.
pub fn parse(raw_body: &[u8]) -> Result<Notification, FeedError> {
    let map = parse_json_object(raw_body)?;
    let body = JsonFields::top(&map);
    let code = body.string("code")?;
    let data = body.object("data", "data.")?;
    let data_code = data.string("code")?;
    let link = data.optional_string("paymentLinkId")?;
    let reference = data.optional_string("reference")?;
    if code != "00" || data_code != "00" {
        let provider_transaction_id = link.as_deref().zip(reference.as_deref()).map(|(l, r)| format!("{l}:{r}"));
        return Ok(Notification::Ignored {
            provider_transaction_id,
            reason: format!("payOS reported code {code:?} / data.code {data_code:?}"),
        });
    }
    if map.contains_key("success") && !body.boolean("success")? {
        return Err(body.malformed("success", "is false although code is \"00\""));
    }
    let link = data.non_empty_string("paymentLinkId")?;
    let reference = data.non_empty_string("reference")?;
    let amount = data.amount("amount")?;
    match data.optional_string("currency")? {
        None => {}
        Some(currency) if currency == "VND" => {}
        Some(other) => return Err(data.malformed("currency", format_args!("must be \"VND\", got {other:?}"))),
    }
    let credited_at =
        vietnam_local_time(data.string("transactionDateTime")?, LocalTimeFormat::Dashed, "data.transactionDateTime")?;
    Ok(Notification::credit(BankCredit {
        provider: Provider::Payos,
        provider_transaction_id: format!("{link}:{reference}"),
        bank_reference: Some(reference.to_owned()),
        amount,
        credited_at,
        account_number: data.optional_string("accountNumber")?,
        virtual_account: data.optional_string("virtualAccountNumber")?,
        content: data.text("description")?,
        match_hint: Some(link.to_owned()),
        payer_account: data.optional_string("counterAccountNumber")?,
        payer_name: data.optional_string("counterAccountName")?,
    }))
}

/// payOS's answer: any 2xx confirms delivery (it also checks the URL this way when the webhook
/// is registered); refusals get a 4xx (5xx to ask for a retry) with `{"success":false,…}`.
pub fn reply(outcome: &Outcome) -> (u16, Value) {
    success_flag_reply(outcome)
}

/// The `signature` payOS would put beside `data`.
pub fn sign(data: &Map<String, Value>, key: &Secret) -> String {
    hex_tag(keyed_mac::<HmacSha256>(key.expose().as_bytes(), &[signed_text(data).as_bytes()]))
}

/// A complete signed webhook body: `body` (which must be an object with an object `data`) with
/// its `signature` field set.
pub fn sign_body(body: &Value, key: &Secret) -> Result<Vec<u8>, FeedError> {
    let mut body = body.clone();
    let Some(object) = body.as_object_mut() else {
        return Err(FeedError::Malformed("the body must be a JSON object".to_owned()));
    };
    let Some(Value::Object(data)) = object.get("data") else {
        return Err(FeedError::Malformed("data must be an object".to_owned()));
    };
    let signature = sign(data, key);
    object.insert("signature".to_owned(), Value::String(signature));
    serde_json::to_vec(&body).map_err(|err| FeedError::Malformed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use feeledger_domain::money::Vnd;

    /// The published sample body and checksum key (webhooks.md), pasted as published.
    const SAMPLE: &str = r#"{"code":"00","desc":"success","success":true,
 "data":{"orderCode":123,"amount":3000,"description":"VQRIO123","accountNumber":"12345678",
         "reference":"TF230204212323","transactionDateTime":"2023-02-04 18:25:00","currency":"VND",
         "paymentLinkId":"124c33293c43417ab7879e14c8d9eb18","code":"00","desc":"Thành công",
         "counterAccountBankId":"","counterAccountBankName":"","counterAccountName":"",
         "counterAccountNumber":"","virtualAccountName":"","virtualAccountNumber":""},
 "signature":"412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03"}"#;
    const SAMPLE_KEY: &str = "1a54716c8f0efb2744fb28b6e38b25da7f67a925d98bc1c18bd8faaecadd7675";

    fn key() -> Secret {
        Secret::new(SAMPLE_KEY.to_owned())
    }

    fn sample() -> Value {
        serde_json::from_str(SAMPLE).expect("valid JSON")
    }

    /// Re-signs an edited sample so that parsing, not verification, is what the test exercises.
    fn edited(edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        let mut body = sample();
        if let Some(Value::Object(data)) = body.get_mut("data") {
            edit(data);
        }
        sign_body(&body, &key()).expect("signable")
    }

    fn malformed(body: &[u8]) -> String {
        match parse(body) {
            Err(FeedError::Malformed(message)) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn the_published_sample_verifies_with_its_published_key() {
        assert_eq!(verify(SAMPLE.as_bytes(), &key()), Ok(()));
        let upper = SAMPLE.replace(
            "412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03",
            "412E915D2871504ED31BE63C8F62A149A4410D34C4C42AFFC9006EF9917EAA03",
        );
        assert_eq!(verify(upper.as_bytes(), &key()), Ok(()));
    }

    #[test]
    fn the_published_sample_parses_into_a_credit() {
        let Ok(Notification::Credit(credit)) = parse(SAMPLE.as_bytes()) else { panic!("sample must be a credit") };
        assert_eq!(
            credit,
            BankCredit {
                provider: Provider::Payos,
                provider_transaction_id: "124c33293c43417ab7879e14c8d9eb18:TF230204212323".to_owned(),
                bank_reference: Some("TF230204212323".to_owned()),
                amount: Vnd::new(3000).expect("valid"),
                credited_at: "2023-02-04T11:25:00Z".parse().expect("valid instant"),
                account_number: Some("12345678".to_owned()),
                virtual_account: None,
                content: "VQRIO123".to_owned(),
                match_hint: Some("124c33293c43417ab7879e14c8d9eb18".to_owned()),
                payer_account: None,
                payer_name: None,
            }
        );
    }

    #[test]
    fn changing_any_single_byte_of_the_signed_data_fails_verification() {
        let start = SAMPLE.find(r#""data":"#).expect("has data") + 7;
        let end = SAMPLE.find(r#", "signature""#).or_else(|| SAMPLE.find(",\n \"signature\"")).expect("has signature");
        for i in start..end {
            let mut body = SAMPLE.as_bytes().to_vec();
            body[i] ^= 0x01;
            assert!(verify(&body, &key()).is_err(), "byte {i}");
        }
        let richer = SAMPLE.replace(r#""amount":3000"#, r#""amount":3001"#);
        assert_eq!(verify(richer.as_bytes(), &key()), Err(FeedError::BadSignature));
        let other_desc = SAMPLE.replace("Thành công", "Thanh cong");
        assert_eq!(verify(other_desc.as_bytes(), &key()), Err(FeedError::BadSignature));
    }

    #[test]
    fn changing_any_hex_digit_of_the_signature_fails_verification() {
        let signature = "412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03";
        for i in 0..signature.len() {
            let mut tampered = signature.as_bytes().to_vec();
            tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
            let body = SAMPLE.replace(signature, std::str::from_utf8(&tampered).expect("ASCII"));
            assert_eq!(verify(body.as_bytes(), &key()), Err(FeedError::BadSignature), "hex digit {i}");
        }
    }

    #[test]
    fn a_missing_signature_or_empty_key_is_refused() {
        let unsigned = SAMPLE.replace(
            r#""signature":"412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03""#,
            r#""signature":null"#,
        );
        assert_eq!(verify(unsigned.as_bytes(), &key()), Err(FeedError::MissingSignature));
        assert_eq!(verify(SAMPLE.as_bytes(), &Secret::new(String::new())), Err(FeedError::NotConfigured));
        assert!(matches!(verify(b"not json", &key()), Err(FeedError::Malformed(_))));
    }

    #[test]
    fn values_are_written_as_the_reference_sdk_writes_them() {
        let data: Value = serde_json::from_str(
            r#"{"b":null,"a":"null","c":"undefined","d":true,"e":false,"f":12,"g":"x&y=z \"q\"","h":[{"z":1,"y":"é"}],"i":{"k":2,"j":1}}"#,
        )
        .expect("valid JSON");
        let Value::Object(data) = data else { panic!("object") };
        assert_eq!(
            signed_text(&data),
            r#"a=&b=&c=&d=true&e=false&f=12&g=x&y=z "q"&h=[{"y":"é","z":1}]&i={"j":1,"k":2}"#
        );
    }

    #[test]
    fn a_body_made_by_sign_body_verifies() {
        let body = edited(|data| {
            data.insert("amount".into(), Value::from(150_000));
        });
        assert_eq!(verify(&body, &key()), Ok(()));
        let Ok(Notification::Credit(credit)) = parse(&body) else { panic!("must be a credit") };
        assert_eq!(credit.amount, Vnd::new(150_000).expect("valid"));
    }

    #[test]
    fn a_failed_payment_is_ignored() {
        let body = edited(|data| {
            data.insert("code".into(), Value::from("01"));
        });
        match parse(&body) {
            Ok(Notification::Ignored { provider_transaction_id, .. }) => {
                assert_eq!(provider_transaction_id.as_deref(), Some("124c33293c43417ab7879e14c8d9eb18:TF230204212323"));
            }
            other => panic!("expected Ignored, got {other:?}"),
        }
        let top = SAMPLE.replacen(r#""code":"00""#, r#""code":"20""#, 1);
        assert!(matches!(parse(top.as_bytes()), Ok(Notification::Ignored { .. })));
    }

    #[test]
    fn float_negative_zero_string_and_missing_amounts_are_malformed() {
        for bad in [
            Value::from(3000.5),
            Value::from(3000.0),
            Value::from(-3000),
            Value::from(0),
            Value::from("3000"),
            Value::Null,
        ] {
            let body = edited(|data| {
                data.insert("amount".into(), bad.clone());
            });
            assert!(malformed(&body).contains("data.amount"), "{bad}");
        }
        let body = edited(|data| {
            data.remove("amount");
        });
        assert!(malformed(&body).contains("data.amount is missing"));
        assert!(malformed(SAMPLE.replace(r#""amount":3000"#, r#""amount":3000.0"#).as_bytes()).contains("data.amount"));
    }

    #[test]
    fn missing_or_mistyped_fields_are_malformed_and_named() {
        let without = |field: &'static str| {
            edited(move |data| {
                data.remove(field);
            })
        };
        assert!(malformed(&without("paymentLinkId")).contains("data.paymentLinkId"));
        assert!(malformed(&without("reference")).contains("data.reference"));
        assert!(malformed(&without("transactionDateTime")).contains("data.transactionDateTime"));
        assert!(malformed(&without("description")).contains("data.description"));
        assert!(malformed(&without("code")).contains("data.code"));
        let usd = edited(|data| {
            data.insert("currency".into(), Value::from("USD"));
        });
        assert!(malformed(&usd).contains("data.currency"));
        let not_success = SAMPLE.replace(r#""success":true"#, r#""success":false"#);
        assert!(malformed(not_success.as_bytes()).contains("success"));
    }

    #[test]
    fn replies_are_two_hundred_on_success_and_four_hundred_on_refusal() {
        assert_eq!(reply(&Outcome::Accepted), (200, serde_json::json!({"success": true})));
        assert_eq!(reply(&Outcome::Duplicate).0, 200);
        assert_eq!(reply(&Outcome::BadSignature).0, 401);
        assert_eq!(reply(&Outcome::Malformed("x".into())).0, 400);
        assert_eq!(reply(&Outcome::NotConfigured).0, 503);
        assert_eq!(reply(&Outcome::Internal).0, 500);
    }
}
