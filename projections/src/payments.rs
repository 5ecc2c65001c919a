//! The ledger side of reconciliation: every payment by agency and Vietnamese day, and which
//! statement line it was reconciled with.
//!
//! Documents, one per event applied (a rebuild writes one row per event, and reads none):
//! - `pay/<agency>/<YYYY-MM-DD>/<payment id>`: the payment as received, without what its key
//!   says (its day and id: a rebuild inserts a row per payment, and smaller rows are cheaper);
//! - `rec/<payment id>`: the statement line it was reconciled with, read beside the payment by
//!   [`payments_between`] (the reconciliation event does not carry the day the payment was
//!   received, so it cannot name the payment's own document without reading an index of them).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use feeledger_domain::case_fees::{PaymentChannel, Reconciled};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::money::Vnd;
use feeledger_domain::reconciliation::LedgerPayment;
use feeledger_domain::vietnam_time;
use feeledger_infrastructure::codec::{self, CASE_STREAM_PREFIX};
use feeledger_infrastructure::storage::LeanEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::documents::DocumentStore;
use crate::runner::{Documents, Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentsProjection;

impl Projection for PaymentsProjection {
    const NAME: &'static str = "payments";
    const VERSION: u32 = 3;

    const EVENT_TYPES: &'static [&'static str] = &["PaymentReceived", "Reconciled"];

    async fn apply(&self, docs: &mut Documents, event: &LeanEvent) -> Result<(), ProjectionError> {
        let Some(code) = event.stream_id.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok()) else {
            return Ok(());
        };
        match event.event_type.as_str() {
            "PaymentReceived" => {
                let payment: PaymentSeen = codec::decode_lean_as(event)?;
                let received_on = vietnam_time::date_of(payment.received_at);
                let key = format!("pay/{}/{received_on}/{}", code.agency(), payment.payment_id);
                let doc = StoredPayment {
                    case_code: code,
                    amount: payment.amount,
                    channel: payment.channel,
                    reference: payment.reference,
                    bank_reference: payment.bank_reference,
                };
                docs.put(&key, doc)
            }
            "Reconciled" => {
                let reconciled: Reconciled = codec::decode_lean_as(event)?;
                docs.put(&reconciled_key(reconciled.payment_id), reconciled.statement_line_id)
            }
            _ => Ok(()),
        }
    }
}

/// What this projection reads of a `PaymentReceived` (the domain's `PaymentReceived`, less its
/// allocation, keys and payer: decoding the whole event was 13% of a payments rebuild's CPU).
/// The test `a_payments_view_of_an_event_reads_what_the_whole_event_holds` keeps the two in step.
#[derive(Debug, Deserialize)]
struct PaymentSeen {
    payment_id: Uuid,
    amount: Vnd,
    channel: PaymentChannel,
    reference: String,
    bank_reference: Option<String>,
    received_at: DateTime<Utc>,
}

/// A payment's document: what its key (`pay/<agency>/<day>/<payment id>`) does not say.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPayment {
    case_code: CaseCode,
    amount: Vnd,
    channel: PaymentChannel,
    reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bank_reference: Option<String>,
}

fn reconciled_key(payment_id: impl std::fmt::Display) -> String {
    format!("rec/{payment_id}")
}

/// The payments of an agency received from `from` to `to` (inclusive), each with the statement
/// line it was reconciled with, if any.
pub async fn payments_between(
    docs: &DocumentStore,
    agency: &AgencyCode,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<LedgerPayment>, ProjectionError> {
    // A payment's key ends with its id.
    let marks_of = |rows: &[(String, serde_json::Value)]| {
        rows.iter().filter_map(|(key, _)| key.rsplit('/').next()).map(reconciled_key).collect()
    };
    let (rows, mut marks) = docs
        .range_with_related(
            PaymentsProjection::NAME,
            &format!("pay/{agency}/{from}"),
            &format!("pay/{agency}/{to}~"),
            marks_of,
        )
        .await?;
    let unreadable = |key: String, e: serde_json::Error| ProjectionError::Document {
        projection: PaymentsProjection::NAME,
        key,
        reason: e.to_string(),
    };
    rows.into_iter()
        .map(|(key, value)| {
            // `pay/<agency>/<day>/<payment id>`
            let mut parts = key.rsplit('/');
            let (id, day) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            let (payment_id, received_on) = match (id.parse(), day.parse()) {
                (Ok(id), Ok(day)) => (id, day),
                _ => {
                    return Err(ProjectionError::Document {
                        projection: PaymentsProjection::NAME,
                        reason: "the key does not end with a day and a payment id".into(),
                        key,
                    });
                }
            };
            let stored: StoredPayment = serde_json::from_value(value).map_err(|e| unreadable(key.clone(), e))?;
            let mark = reconciled_key(payment_id);
            let reconciled_line_id = match marks.remove(&mark) {
                Some(line) => Some(serde_json::from_value(line).map_err(|e| unreadable(mark, e))?),
                None => None,
            };
            Ok(LedgerPayment {
                payment_id,
                case_code: stored.case_code,
                amount: stored.amount,
                channel: stored.channel,
                received_on,
                reference: stored.reference,
                bank_reference: stored.bank_reference,
                reconciled_line_id,
            })
        })
        .collect()
}

/// A day and its neighbours, the date window of reconciliation.
pub fn window(date: NaiveDate) -> (NaiveDate, NaiveDate) {
    let days = Duration::days(feeledger_domain::reconciliation::DATE_WINDOW_DAYS);
    (date - days, date + days)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use feeledger_domain::case_fees::{CaseEvent, PaidLine, PaymentReceived};
    use feeledger_domain::codes::FeeCode;
    use feeledger_domain::fee_schedule::FeeKind;
    use feeledger_infrastructure::codec::{CURRENT_SCHEMA_VERSION, CodecError, LedgerEvent};
    use feeledger_infrastructure::storage::EventMetadata;

    use super::*;

    fn stored(payment: PaymentReceived) -> LeanEvent {
        let new =
            LedgerEvent::Case(CaseEvent::PaymentReceived(payment)).to_new_event(&EventMetadata::default()).unwrap();
        LeanEvent {
            position: 7,
            transaction_id: 3,
            stream_id: "case-H34.22.6-240426-0002".into(),
            event_type: new.event_type,
            schema_version: new.schema_version,
            payload: new.payload.to_string(),
            recorded_at: Utc::now(),
        }
    }

    fn payment(bank_reference: Option<&str>) -> PaymentReceived {
        let dong = |n| Vnd::new(n).unwrap();
        PaymentReceived {
            payment_id: Uuid::now_v7(),
            idempotency_key: "sepay:92704".into(),
            amount: dong(150_000),
            channel: PaymentChannel::Vietqr,
            reference: "FL H34226 2404260002".into(),
            provider: Some("sepay".into()),
            bank_reference: bank_reference.map(Into::into),
            qr_id: Some(Uuid::now_v7()),
            payer_account: Some("0071000123456".into()),
            // 23:30 in Hà Nội on 26 April, 16:30 UTC: the day is the Vietnamese one.
            received_at: Utc.with_ymd_and_hms(2024, 4, 26, 16, 30, 0).unwrap(),
            allocation: vec![PaidLine {
                line: 0,
                fee_code: FeeCode::parse("LP_HO_TICH").unwrap(),
                kind: FeeKind::LePhi,
                amount: dong(100_000),
            }],
            excess: dong(50_000),
        }
    }

    #[test]
    fn a_payments_view_of_an_event_reads_what_the_whole_event_holds() {
        for bank_reference in [Some("FT24117123456"), None] {
            let event = stored(payment(bank_reference));
            let LedgerEvent::Case(CaseEvent::PaymentReceived(whole)) = LedgerEvent::decode_lean(&event).unwrap() else {
                panic!("not a payment");
            };
            let seen: PaymentSeen = codec::decode_lean_as(&event).unwrap();
            assert_eq!(seen.payment_id, whole.payment_id);
            assert_eq!(seen.amount, whole.amount);
            assert_eq!(seen.channel, whole.channel);
            assert_eq!(seen.reference, whole.reference);
            assert_eq!(seen.bank_reference, whole.bank_reference);
            assert_eq!(seen.received_at, whole.received_at);
        }
    }

    #[test]
    fn a_payments_view_refuses_what_the_whole_event_refuses() {
        let mut event = stored(payment(None));
        // A schema version this build cannot read: neither decoding guesses.
        event.schema_version = CURRENT_SCHEMA_VERSION + 1;
        assert!(matches!(LedgerEvent::decode_lean(&event), Err(CodecError::UnknownSchemaVersion { .. })));
        assert!(matches!(codec::decode_lean_as::<PaymentSeen>(&event), Err(CodecError::UnknownSchemaVersion { .. })));
        // A payment without an amount is not a payment.
        let mut event = stored(payment(None));
        event.schema_version = CURRENT_SCHEMA_VERSION;
        event.payload = event.payload.replace("\"amount\"", "\"amount_missing\"");
        let error = codec::decode_lean_as::<PaymentSeen>(&event).unwrap_err();
        assert!(matches!(error, CodecError::Payload { position: 7, .. }), "{error}");
    }
}
