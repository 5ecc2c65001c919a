//! Between domain events and stored rows: the stream names, the event type names, the schema
//! versions, and the upcasting of old payloads when they are read.

use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::bank_credit::CreditEvent;
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::fee_schedule::FeeSchedulePublished;
use feeledger_domain::oversight::TargetSet;
use feeledger_domain::receipt::ReceiptNumberAssigned;
use feeledger_domain::reconciliation::ItemResolved;
use feeledger_domain::remittance::RemittanceRecorded;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;

use serde_json::Value;
use uuid::Uuid;

use crate::storage::{EventMetadata, LeanEvent, NewEvent, RecordedEvent};

/// Schema version written for every event type today. When a payload's shape changes, bump the
/// type's version here and teach [`upcast`] to turn the old shape into the new one.
pub const CURRENT_SCHEMA_VERSION: i32 = 1;

pub const CASE_STREAM_PREFIX: &str = "case-";
pub const AGENCY_STREAM_PREFIX: &str = "agency-";
pub const FEE_SCHEDULE_STREAM_PREFIX: &str = "fee-schedule-";
pub const BANK_CREDIT_STREAM_PREFIX: &str = "bank-credit-";
pub const REMITTANCE_STREAM_PREFIX: &str = "remittance-";
pub const RECONCILIATION_STREAM_PREFIX: &str = "reconciliation-";

/// The event types and payload fields the store looks events up by (on expression indexes,
/// migrations `0002_lookup_indexes` and `0004`), named once beside the codec that writes them.
/// Renaming one of these fields in its domain struct needs a migration of the index and of the
/// stored payloads (an upcast cannot help an index); the test
/// `the_fields_the_store_looks_events_up_by_are_the_fields_the_codec_writes` fails if the two
/// drift apart.
pub mod lookup {
    pub const QR_ISSUED: &str = "QrIssued";
    pub const FEE_ASSESSED: &str = "FeeAssessed";
    pub const RECEIPT_ISSUED: &str = "ReceiptIssued";
    pub const CREDIT_UNMATCHED: &str = "CreditUnmatched";
    /// The events after which an unmatched credit no longer waits in the queue.
    pub const CREDIT_RESOLVED: &[&str] = &["CreditMatched", "CreditRefundRequested"];
    /// A credit marked to be paid back, and paid back.
    pub const CREDIT_REFUND_REQUESTED: &str = "CreditRefundRequested";
    pub const CREDIT_REFUNDED: &str = "CreditRefunded";

    /// `QrIssued.qr_id`.
    pub const QR_ID: &str = "qr_id";
    /// `QrIssued.expires_at` (RFC 3339, UTC).
    pub const EXPIRES_AT: &str = "expires_at";
    /// `QrIssued.reference`: the payment reference a transfer's description carries.
    pub const REFERENCE: &str = "reference";
    /// `ReceiptIssued.receipt_id`.
    pub const RECEIPT_ID: &str = "receipt_id";
    /// `agency_code` of `QrIssued`, `FeeAssessed` and `CreditUnmatched`.
    pub const AGENCY_CODE: &str = "agency_code";
    /// `counter_id` of `QrIssued` and `FeeAssessed`.
    pub const COUNTER_ID: &str = "counter_id";
}

pub fn case_stream(code: &CaseCode) -> String {
    format!("{CASE_STREAM_PREFIX}{code}")
}

pub fn agency_stream(code: &AgencyCode) -> String {
    format!("{AGENCY_STREAM_PREFIX}{code}")
}

pub fn fee_schedule_stream(agency: &AgencyCode) -> String {
    format!("{FEE_SCHEDULE_STREAM_PREFIX}{agency}")
}

/// `bank-credit-sepay:92704`: one stream per credit, keyed by the provider's duplicate key.
pub fn bank_credit_stream(credit_id: &str) -> String {
    format!("{BANK_CREDIT_STREAM_PREFIX}{credit_id}")
}

/// `remittance-<id>`: one stream per deposit voucher (the id is derived from the agency and
/// the voucher number, see `feeledger_domain::remittance`).
pub fn remittance_stream(remittance_id: Uuid) -> String {
    format!("{REMITTANCE_STREAM_PREFIX}{remittance_id}")
}

/// `reconciliation-H34.22.6`: what finance resolved by hand in an agency's reconciliations.
pub fn reconciliation_stream(agency: &AgencyCode) -> String {
    format!("{RECONCILIATION_STREAM_PREFIX}{agency}")
}

/// Any event of the ledger, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEvent {
    Case(CaseEvent),
    Credit(CreditEvent),
    AgencyConfigured(AgencyConfigured),
    FeeSchedulePublished(FeeSchedulePublished),
    ReceiptNumberAssigned(ReceiptNumberAssigned),
    RemittanceRecorded(RemittanceRecorded),
    /// A cashless and online target for a level of agencies, from a month on.
    TargetSet(TargetSet),
    /// A reconciliation item (a statement line, a payment) finance resolved by hand.
    ReconciliationItemResolved(ItemResolved),
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("event at position {position} has unknown type {event_type:?}")]
    UnknownType { position: i64, event_type: String },
    #[error(
        "event at position {position} ({event_type} v{schema_version}) has a schema version this build cannot read"
    )]
    UnknownSchemaVersion { position: i64, event_type: String, schema_version: i32 },
    #[error("event at position {position} ({event_type}) does not match its schema: {source}")]
    Payload {
        position: i64,
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("event at position {position} ({event_type}) does not belong in stream {stream_id}")]
    WrongStream { position: i64, event_type: String, stream_id: String },
    #[error("event could not be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
}

impl LedgerEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            LedgerEvent::Case(event) => event.event_type(),
            LedgerEvent::Credit(event) => event.event_type(),
            LedgerEvent::AgencyConfigured(_) => "AgencyConfigured",
            LedgerEvent::FeeSchedulePublished(_) => "FeeSchedulePublished",
            LedgerEvent::ReceiptNumberAssigned(_) => "ReceiptNumberAssigned",
            LedgerEvent::RemittanceRecorded(_) => "RemittanceRecorded",
            LedgerEvent::TargetSet(_) => "TargetSet",
            LedgerEvent::ReconciliationItemResolved(_) => "ReconciliationItemResolved",
        }
    }

    /// Decodes a stored event, upcasting an older schema version first. The payload is
    /// deserialised straight into its type's struct, without copying it.
    pub fn decode(event: &RecordedEvent) -> Result<LedgerEvent, CodecError> {
        let payload = upcast(event.position, &event.event_type, event.schema_version, Cow::Borrowed(&event.payload))?;
        Self::decode_from(event.position, &event.event_type, &*payload)
    }

    /// Decodes an event read without its metadata: its payload is parsed from the stored JSON
    /// text straight into its type's struct (no intermediate JSON tree) when it is of the
    /// current schema version, and upcast through a JSON tree otherwise.
    pub fn decode_lean(event: &LeanEvent) -> Result<LedgerEvent, CodecError> {
        if event.schema_version == CURRENT_SCHEMA_VERSION {
            return Self::decode_from(event.position, &event.event_type, event.payload.as_str());
        }
        Self::decode_from(event.position, &event.event_type, &upcast_lean(event)?)
    }

    fn decode_from(position: i64, event_type: &str, payload: impl Payload) -> Result<LedgerEvent, CodecError> {
        let fail = |source| CodecError::Payload { position, event_type: event_type.to_owned(), source };
        let case = |e: Result<CaseEvent, serde_json::Error>| e.map(LedgerEvent::Case).map_err(fail);
        let credit = |e: Result<CreditEvent, serde_json::Error>| e.map(LedgerEvent::Credit).map_err(fail);
        match event_type {
            "FeeAssessed" => case(payload.parse().map(CaseEvent::FeeAssessed)),
            "QrIssued" => case(payload.parse().map(CaseEvent::QrIssued)),
            "QrSuperseded" => case(payload.parse().map(CaseEvent::QrSuperseded)),
            "QrExpired" => case(payload.parse().map(CaseEvent::QrExpired)),
            "PaymentReceived" => case(payload.parse().map(CaseEvent::PaymentReceived)),
            "PartiallyPaid" => case(payload.parse().map(CaseEvent::PartiallyPaid)),
            "FullyPaid" => case(payload.parse().map(CaseEvent::FullyPaid)),
            "Overpaid" => case(payload.parse().map(CaseEvent::Overpaid)),
            "AssessmentCancelled" => case(payload.parse().map(CaseEvent::AssessmentCancelled)),
            "Reconciled" => case(payload.parse().map(CaseEvent::Reconciled)),
            "RemittedToTreasury" => case(payload.parse().map(CaseEvent::RemittedToTreasury)),
            "ReceiptIssued" => case(payload.parse().map(CaseEvent::ReceiptIssued)),
            "ReceiptCancelled" => case(payload.parse().map(CaseEvent::ReceiptCancelled)),
            "OverpaymentRefunded" => case(payload.parse().map(CaseEvent::OverpaymentRefunded)),
            "BankCreditObserved" => credit(payload.parse().map(CreditEvent::BankCreditObserved)),
            "CreditMatched" => credit(payload.parse().map(CreditEvent::CreditMatched)),
            "CreditUnmatched" => credit(payload.parse().map(CreditEvent::CreditUnmatched)),
            "CreditRefundRequested" => credit(payload.parse().map(CreditEvent::CreditRefundRequested)),
            "CreditRefunded" => credit(payload.parse().map(CreditEvent::CreditRefunded)),
            "AgencyConfigured" => payload.parse().map(LedgerEvent::AgencyConfigured).map_err(fail),
            "FeeSchedulePublished" => payload.parse().map(LedgerEvent::FeeSchedulePublished).map_err(fail),
            "ReceiptNumberAssigned" => payload.parse().map(LedgerEvent::ReceiptNumberAssigned).map_err(fail),
            "RemittanceRecorded" => payload.parse().map(LedgerEvent::RemittanceRecorded).map_err(fail),
            "TargetSet" => payload.parse().map(LedgerEvent::TargetSet).map_err(fail),
            "ReconciliationItemResolved" => payload.parse().map(LedgerEvent::ReconciliationItemResolved).map_err(fail),
            _ => Err(CodecError::UnknownType { position, event_type: event_type.to_owned() }),
        }
    }

    /// The row to append for this event.
    pub fn to_new_event(&self, metadata: &EventMetadata) -> Result<NewEvent, CodecError> {
        let payload = match self {
            // Adjacently tagged: {"type": ..., "data": {...}}; the store keeps the two apart.
            LedgerEvent::Case(event) => untag(serde_json::to_value(event)?),
            LedgerEvent::Credit(event) => untag(serde_json::to_value(event)?),
            LedgerEvent::AgencyConfigured(event) => to_payload(event)?,
            LedgerEvent::FeeSchedulePublished(event) => to_payload(event)?,
            LedgerEvent::ReceiptNumberAssigned(event) => to_payload(event)?,
            LedgerEvent::RemittanceRecorded(event) => to_payload(event)?,
            LedgerEvent::TargetSet(event) => to_payload(event)?,
            LedgerEvent::ReconciliationItemResolved(event) => to_payload(event)?,
        };
        Ok(NewEvent {
            event_id: Uuid::now_v7(),
            event_type: self.event_type().to_owned(),
            schema_version: CURRENT_SCHEMA_VERSION,
            payload,
            metadata: metadata.clone(),
        })
    }
}

fn untag(mut tagged: Value) -> Value {
    tagged.get_mut("data").map(Value::take).unwrap_or(Value::Null)
}

fn to_payload(event: &impl Serialize) -> Result<Value, CodecError> {
    Ok(serde_json::to_value(event)?)
}

/// A stored payload in one of the two forms the stores hand out: a JSON tree or JSON text.
trait Payload: Copy {
    fn parse<T: DeserializeOwned>(self) -> Result<T, serde_json::Error>;
}

impl Payload for &Value {
    fn parse<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        T::deserialize(self)
    }
}

impl Payload for &str {
    fn parse<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self)
    }
}

/// Brings a stored payload to the current schema of its type. Version 1 is current for every
/// type (borrowed as it is); a future version 2 adds its conversion here, returning an owned,
/// converted payload, so old events stay readable forever.
fn upcast<'a>(
    position: i64,
    event_type: &str,
    schema_version: i32,
    payload: Cow<'a, Value>,
) -> Result<Cow<'a, Value>, CodecError> {
    match schema_version {
        CURRENT_SCHEMA_VERSION => Ok(payload),
        other => {
            Err(CodecError::UnknownSchemaVersion { position, event_type: event_type.to_owned(), schema_version: other })
        }
    }
}

/// Decodes a stored event that must be of one family (e.g. a case stream's events).
pub fn decode_as<T: DeserializeOwned>(event: &RecordedEvent) -> Result<T, CodecError> {
    let payload = upcast(event.position, &event.event_type, event.schema_version, Cow::Borrowed(&event.payload))?;
    (&*payload).parse().map_err(|source| CodecError::Payload {
        position: event.position,
        event_type: event.event_type.clone(),
        source,
    })
}

/// Decodes an event read without its metadata as `T`: its type's struct, or a reader's
/// narrower view of it — only the fields the reader needs, the others skipped without being
/// allocated (a projection replaying a million payments reads six fields of each). Like
/// [`LedgerEvent::decode_lean`], straight from the stored text when it is of the current schema
/// version, upcast through a JSON tree otherwise.
pub fn decode_lean_as<T: DeserializeOwned>(event: &LeanEvent) -> Result<T, CodecError> {
    let fail = |source| CodecError::Payload { position: event.position, event_type: event.event_type.clone(), source };
    if event.schema_version == CURRENT_SCHEMA_VERSION {
        return serde_json::from_str(&event.payload).map_err(fail);
    }
    T::deserialize(&upcast_lean(event)?).map_err(fail)
}

/// The payload of an event read without its metadata, parsed and brought to the current schema.
fn upcast_lean(event: &LeanEvent) -> Result<Value, CodecError> {
    let tree: Value = serde_json::from_str(&event.payload).map_err(|source| CodecError::Payload {
        position: event.position,
        event_type: event.event_type.clone(),
        source,
    })?;
    Ok(upcast(event.position, &event.event_type, event.schema_version, Cow::Owned(tree))?.into_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(event_type: &str, payload: Value) -> RecordedEvent {
        RecordedEvent {
            position: 1,
            transaction_id: 1,
            stream_id: "x".into(),
            stream_version: 1,
            event_id: Uuid::nil(),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: json!({}),
            recorded_at: chrono::Utc::now(),
            hash: Vec::new(),
        }
    }

    /// The store finds events by these payload fields (`codec::lookup`); a field renamed in its
    /// domain struct would make those lookups find nothing. Each sample is written with the
    /// lookup names, must decode into its struct, and must encode back with the same field.
    #[test]
    fn the_fields_the_store_looks_events_up_by_are_the_fields_the_codec_writes() {
        let at = "2026-11-29T08:00:00Z";
        let account = json!({ "bin": "970415", "number": "113366668888", "name": "UBND" });
        let samples = [
            (
                lookup::QR_ISSUED,
                json!({ lookup::QR_ID: Uuid::nil(), lookup::AGENCY_CODE: "H34.22.6", lookup::REFERENCE: "FLH3422260001",
                        "amount": "2000", "payload": "000201", "beneficiary": account,
                        lookup::COUNTER_ID: "quay-1", "issued_at": at, "expires_at": at }),
                &[lookup::QR_ID, lookup::AGENCY_CODE, lookup::REFERENCE, lookup::COUNTER_ID][..],
            ),
            (
                lookup::FEE_ASSESSED,
                json!({ "case_code": "H34.22.6-240426-0002", lookup::AGENCY_CODE: "H34.22.6", "procedure_name": "x",
                        "payer": { "name": "NGUYỄN VĂN A", "id_number": null }, "lines": [], "total": "0",
                        "schedule_version": 1, "schedule_effective_from": "2026-01-01",
                        lookup::COUNTER_ID: "quay-1", "assessed_at": at }),
                &[lookup::AGENCY_CODE, lookup::COUNTER_ID][..],
            ),
            (
                lookup::RECEIPT_ISSUED,
                json!({ lookup::RECEIPT_ID: Uuid::nil(), lookup::AGENCY_CODE: "H34.22.6", "template_symbol": "01BLP0-001",
                        "serial": "AA-26E", "number": 1, "payer_name": "NGUYỄN VĂN A", "payer_masked_id": null,
                        "lines": [], "amount": "0", "amount_in_words": "Không đồng", "issued_at": at, "replaces": null }),
                &[lookup::RECEIPT_ID][..],
            ),
            (
                lookup::CREDIT_UNMATCHED,
                json!({ lookup::AGENCY_CODE: "H34.22.6", "reason": "no case", "at": at }),
                &[lookup::AGENCY_CODE][..],
            ),
        ];
        for (event_type, payload, fields) in samples {
            let decoded = LedgerEvent::decode(&stored(event_type, payload))
                .unwrap_or_else(|e| panic!("{event_type} written with the lookup names: {e}"));
            assert_eq!(decoded.event_type(), event_type);
            let encoded = decoded.to_new_event(&EventMetadata::default()).unwrap().payload;
            for field in fields {
                assert!(encoded.get(*field).is_some_and(Value::is_string), "{event_type}.{field} in {encoded}");
            }
        }
    }

    #[test]
    fn events_recorded_before_the_budget_classification_existed_stay_readable_and_say_not_configured() {
        let agency = stored(
            "AgencyConfigured",
            json!({ "agency_code": "H34.22.6", "name": "UBND", "retains_fees": true, "counters": ["quay-1"],
                    "bank_account": { "bin": "970415", "number": "113366668888", "name": "UBND" },
                    "configured_at": "2025-01-01T00:00:00Z" }),
        );
        let LedgerEvent::AgencyConfigured(agency) = LedgerEvent::decode(&agency).unwrap() else { panic!() };
        assert_eq!(agency.treasury, feeledger_domain::agency::TreasuryIdentity::default());

        let schedule = stored(
            "FeeSchedulePublished",
            json!({ "agency_code": "H34.22.6", "version": 1, "effective_from": "2025-01-01",
                    "published_at": "2025-01-01T00:00:00Z",
                    "fees": [{ "fee_code": "P-SAOY", "name": "x", "kind": "PHI", "unit_amount": "2000",
                               "retention_percent": "90" }] }),
        );
        let LedgerEvent::FeeSchedulePublished(published) = LedgerEvent::decode(&schedule).unwrap() else { panic!() };
        let rule = &published.schedule.fees[0];
        assert_eq!((rule.budget_sub_item.as_ref(), rule.deposit_schedule), (None, None));

        let remitted = stored(
            "RemittedToTreasury",
            json!({ "remittance_id": Uuid::nil(), "voucher_number": "GNT-1", "remitted_on": "2025-02-01",
                    "up_to": "2025-01-31", "to_budget": "800", "retained": "0",
                    "lines": [{ "collected_on": "2025-01-02", "fee_code": "LP-A", "kind": "LE_PHI",
                                "to_budget": "800", "retained": "0" }] }),
        );
        let LedgerEvent::Case(CaseEvent::RemittedToTreasury(remitted)) = LedgerEvent::decode(&remitted).unwrap() else {
            panic!()
        };
        assert_eq!(remitted.lines[0].budget_chapter, None);
        assert_eq!(remitted.lines[0].budget_sub_item, None);
    }

    #[test]
    fn a_new_agency_configuration_round_trips_with_its_treasury_identity() {
        use feeledger_domain::budget::TaxCode;
        let agency = stored(
            "AgencyConfigured",
            json!({ "agency_code": "H34.22.6", "name": "UBND", "retains_fees": true, "counters": ["quay-1"],
                    "bank_account": { "bin": "970415", "number": "113366668888", "name": "UBND" },
                    "tax_code": "0108888888", "budget_chapter": "800",
                    "configured_at": "2025-01-01T00:00:00Z" }),
        );
        let LedgerEvent::AgencyConfigured(agency) = LedgerEvent::decode(&agency).unwrap() else { panic!() };
        assert_eq!(agency.treasury.tax_code, Some(TaxCode::parse("0108888888").unwrap()));
        let row = LedgerEvent::AgencyConfigured(agency.clone()).to_new_event(&EventMetadata::default()).unwrap();
        assert_eq!(row.payload["tax_code"], "0108888888", "flattened next to the other fields");
        let bad = stored("AgencyConfigured", json!({ "tax_code": "0108888889" }));
        assert!(LedgerEvent::decode(&bad).is_err(), "a stored tax code is re-validated");
    }
}
