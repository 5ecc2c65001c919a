//! Between domain events and stored rows: the stream names, the event type names, the schema
//! versions, and the upcasting of old payloads when they are read.

use feeledger_domain::agency::AgencyConfigured;
use feeledger_domain::bank_credit::CreditEvent;
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::fee_schedule::FeeSchedulePublished;
use feeledger_domain::receipt::ReceiptNumberAssigned;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::event_store::{EventMetadata, NewEvent, RecordedEvent};

/// Schema version written for every event type today. When a payload's shape changes, bump the
/// type's version here and teach [`upcast`] to turn the old shape into the new one.
pub const CURRENT_SCHEMA_VERSION: i32 = 1;

pub const CASE_STREAM_PREFIX: &str = "case-";
pub const AGENCY_STREAM_PREFIX: &str = "agency-";
pub const FEE_SCHEDULE_STREAM_PREFIX: &str = "fee-schedule-";
pub const BANK_CREDIT_STREAM_PREFIX: &str = "bank-credit-";

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

/// Any event of the ledger, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEvent {
    Case(CaseEvent),
    Credit(CreditEvent),
    AgencyConfigured(AgencyConfigured),
    FeeSchedulePublished(FeeSchedulePublished),
    ReceiptNumberAssigned(ReceiptNumberAssigned),
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
        }
    }

    /// Decodes a stored event, upcasting an older schema version first.
    pub fn decode(event: &RecordedEvent) -> Result<LedgerEvent, CodecError> {
        let payload = upcast(event)?;
        let fail =
            |source| CodecError::Payload { position: event.position, event_type: event.event_type.clone(), source };
        let ty = event.event_type.as_str();
        if CaseEvent::TYPES.contains(&ty) {
            let tagged = json!({ "type": ty, "data": payload });
            return serde_json::from_value(tagged).map(LedgerEvent::Case).map_err(fail);
        }
        if CreditEvent::TYPES.contains(&ty) {
            let tagged = json!({ "type": ty, "data": payload });
            return serde_json::from_value(tagged).map(LedgerEvent::Credit).map_err(fail);
        }
        match ty {
            "AgencyConfigured" => serde_json::from_value(payload).map(LedgerEvent::AgencyConfigured).map_err(fail),
            "FeeSchedulePublished" => {
                serde_json::from_value(payload).map(LedgerEvent::FeeSchedulePublished).map_err(fail)
            }
            _ => Err(CodecError::UnknownType { position: event.position, event_type: event.event_type.clone() }),
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

/// Brings a stored payload to the current schema of its type. Version 1 is current for every
/// type; a future version 2 adds its conversion here, so old events stay readable forever.
fn upcast(event: &RecordedEvent) -> Result<Value, CodecError> {
    match event.schema_version {
        CURRENT_SCHEMA_VERSION => Ok(event.payload.clone()),
        other => Err(CodecError::UnknownSchemaVersion {
            position: event.position,
            event_type: event.event_type.clone(),
            schema_version: other,
        }),
    }
}

/// Decodes a stored event that must be of one family (e.g. a case stream's events).
pub fn decode_as<T: DeserializeOwned>(event: &RecordedEvent) -> Result<T, CodecError> {
    let payload = upcast(event)?;
    serde_json::from_value(payload).map_err(|source| CodecError::Payload {
        position: event.position,
        event_type: event.event_type.clone(),
        source,
    })
}
