//! Tamper evidence: every event's hash is `SHA-256(previous hash in its stream || canonical
//! bytes of the event)`, the first event of a stream chaining from 32 zero bytes.
//!
//! The canonical bytes are a JSON object with keys sorted at every depth and no whitespace,
//! built from the stored columns. Sorting is done here explicitly rather than trusting a map's
//! iteration order: PostgreSQL's jsonb returns keys in its own order, and serde_json's order
//! depends on a feature flag any dependency can switch on.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The "previous hash" of a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// JSON with object keys sorted recursively and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The stored facts of one event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub stream_id: &'a str,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub payload: &'a Value,
    pub metadata: &'a Value,
    pub recorded_at: DateTime<Utc>,
}

/// The timestamp as hashed: RFC 3339, UTC, always six fractional digits.
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn canonical_bytes(facts: &EventFacts<'_>) -> Vec<u8> {
    let object = serde_json::json!({
        "stream_id": facts.stream_id,
        "stream_version": facts.stream_version,
        "event_id": facts.event_id.to_string(),
        "event_type": facts.event_type,
        "schema_version": facts.schema_version,
        "payload": facts.payload,
        "metadata": facts.metadata,
        "recorded_at": timestamp_text(facts.recorded_at),
    });
    canonical_json(&object).into_bytes()
}

pub fn event_hash(previous: &[u8], facts: &EventFacts<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical_bytes(facts));
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_whatever_the_input_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[{"z":1,"y":"é"}],"c":null}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"c":null,"d":[{"y":"é","z":1}]},"b":1}"#);
    }

    #[test]
    fn any_changed_fact_changes_the_hash() {
        let payload = json!({"amount": "3000"});
        let metadata = json!({});
        let facts = EventFacts {
            stream_id: "case-H34.22.6-240426-0002",
            stream_version: 1,
            event_id: Uuid::nil(),
            event_type: "PaymentReceived",
            schema_version: 1,
            payload: &payload,
            metadata: &metadata,
            recorded_at: "2024-04-26T02:15:00Z".parse().unwrap(),
        };
        let original = event_hash(&GENESIS, &facts);
        let other_payload = json!({"amount": "3001"});
        assert_ne!(original, event_hash(&GENESIS, &EventFacts { payload: &other_payload, ..facts }));
        assert_ne!(original, event_hash(&GENESIS, &EventFacts { stream_version: 2, ..facts }));
        assert_ne!(original, event_hash(&[1; 32], &facts));
        assert_eq!(original, event_hash(&GENESIS, &facts));
    }
}
