//! Tamper evidence: every event's hash is `SHA-256(previous hash in its stream || canonical
//! bytes of the event)`, the first event of a stream chaining from 32 zero bytes.
//!
//! The canonical bytes are a JSON object with keys sorted at every depth and no whitespace,
//! built from the stored columns. Sorting is done here explicitly rather than trusting a map's
//! iteration order: PostgreSQL's jsonb returns keys in its own order, and serde_json's order
//! depends on a feature flag any dependency can switch on.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::canonical_json::{self, Malformed, NonAscii};

/// The "previous hash" of a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// JSON with object keys sorted recursively and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    canonical_json::to_string(value)
}

fn write_canonical(value: &Value, out: &mut String) {
    canonical_json::write_value(value, NonAscii::Raw, out);
}

/// A JSON string literal, escaped exactly as serde_json escapes it.
fn write_string(text: &str, out: &mut String) {
    canonical_json::write_string(text, NonAscii::Raw, out);
}

/// The stored facts of one event that its hash covers, payload and metadata as JSON values
/// (`J = Value`) or as stored JSON text ([`StoredFacts`]).
#[derive(Debug)]
pub struct EventFacts<'a, J: ?Sized = Value> {
    pub stream_id: &'a str,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub payload: &'a J,
    pub metadata: &'a J,
    pub recorded_at: DateTime<Utc>,
}

impl<J: ?Sized> Clone for EventFacts<'_, J> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<J: ?Sized> Copy for EventFacts<'_, J> {}

impl<'a> EventFacts<'a> {
    /// The facts of an event as read back from the log.
    pub fn of(event: &'a super::RecordedEvent) -> Self {
        EventFacts {
            stream_id: &event.stream_id,
            stream_version: event.stream_version,
            event_id: event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: &event.payload,
            metadata: &event.metadata,
            recorded_at: event.recorded_at,
        }
    }
}

/// An event's facts as stored: payload and metadata as JSON text (PostgreSQL's `jsonb::text`,
/// SQLite's column), as the audit reads them.
pub type StoredFacts<'a> = EventFacts<'a, str>;

/// The timestamp as hashed: RFC 3339, UTC, always six fractional digits.
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The canonical JSON of an event's facts: an object with the keys in sorted order, written
/// directly (the same bytes as [`canonical_json`] of that object, without building it).
pub fn canonical_bytes(facts: &EventFacts<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    // Writing a tree cannot fail.
    let _ = write_facts(
        facts,
        |json: &Value, out: &mut String| {
            write_canonical(json, out);
            Ok(())
        },
        &mut out,
    );
    out.into_bytes()
}

/// [`canonical_bytes`] of the facts the text parses to, written straight from the text into
/// `out` (cleared first): the same bytes, with no `serde_json::Value` tree built on the way.
pub fn canonical_bytes_of_stored(facts: &StoredFacts<'_>, out: &mut String) -> Result<(), Malformed> {
    out.clear();
    write_facts(facts, canonical_json::write_text, out)
}

/// The facts object, keys in sorted order, payload and metadata written by `json`.
fn write_facts<J: ?Sized>(
    facts: &EventFacts<'_, J>,
    json: impl Fn(&J, &mut String) -> Result<(), Malformed>,
    out: &mut String,
) -> Result<(), Malformed> {
    out.push_str("{\"event_id\":");
    write_string(facts.event_id.as_hyphenated().encode_lower(&mut Uuid::encode_buffer()), out);
    out.push_str(",\"event_type\":");
    write_string(facts.event_type, out);
    out.push_str(",\"metadata\":");
    json(facts.metadata, out)?;
    out.push_str(",\"payload\":");
    json(facts.payload, out)?;
    out.push_str(",\"recorded_at\":");
    write_string(&timestamp_text(facts.recorded_at), out);
    let _ = write!(out, ",\"schema_version\":{}", facts.schema_version);
    out.push_str(",\"stream_id\":");
    write_string(facts.stream_id, out);
    let _ = write!(out, ",\"stream_version\":{}}}", facts.stream_version);
    Ok(())
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

    /// Hashes already stored must stay verifiable: the direct writer produces exactly the bytes
    /// of the canonical JSON of the facts as an object (how they were first defined).
    #[test]
    fn canonical_bytes_are_the_canonical_json_of_the_facts_object() {
        let payloads = [
            json!({"amount": "3000", "payer": {"name": "VÕ ĐẶNG NGỌC GIÀ", "id_number": "079201008870"}}),
            json!({"z": [3, {"b": null, "a": true}], "quote\"d": "line\nbreak\t\u{1}", "n": -12.5, "big": 12345678901234_i64}),
            json!({}),
        ];
        let metadata = [json!({"actor": "officer-1", "request_id": "abc"}), json!({}), json!({"x": {"y": [1, "é"]}})];
        for (payload, metadata) in payloads.iter().zip(&metadata) {
            let facts = EventFacts {
                stream_id: "case-H34.22.6-240426-0002",
                stream_version: 42,
                event_id: Uuid::from_u128(0x0191_d3a0_0000_7000_8000_0000_0000_0001),
                event_type: "PaymentReceived",
                schema_version: 1,
                payload,
                metadata,
                recorded_at: "2024-04-26T02:15:00.123456Z".parse().unwrap(),
            };
            let reference = canonical_json(&json!({
                "stream_id": facts.stream_id,
                "stream_version": facts.stream_version,
                "event_id": facts.event_id.to_string(),
                "event_type": facts.event_type,
                "schema_version": facts.schema_version,
                "payload": facts.payload,
                "metadata": facts.metadata,
                "recorded_at": timestamp_text(facts.recorded_at),
            }));
            assert_eq!(String::from_utf8(canonical_bytes(&facts)).unwrap(), reference);
        }
    }

    /// The bytes hashed, pinned: one canonical writer serves the hashes and the bank feed, and
    /// neither the tree path nor the stored-text path may change what existing hashes cover.
    #[test]
    fn the_hashed_bytes_are_pinned_and_the_stored_text_gives_the_same() {
        let payload = json!({"b": "é\n", "a": 1.50});
        let metadata = json!({"actor": "officer-1"});
        let facts = EventFacts {
            stream_id: "case-H34.22.6-240426-0002",
            stream_version: 42,
            event_id: Uuid::from_u128(0x0191_d3a0_0000_7000_8000_0000_0000_0001),
            event_type: "PaymentReceived",
            schema_version: 1,
            payload: &payload,
            metadata: &metadata,
            recorded_at: "2024-04-26T02:15:00.123456Z".parse().unwrap(),
        };
        let pinned = r#"{"event_id":"0191d3a0-0000-7000-8000-000000000001","event_type":"PaymentReceived","metadata":{"actor":"officer-1"},"payload":{"a":1.5,"b":"é\n"},"recorded_at":"2024-04-26T02:15:00.123456Z","schema_version":1,"stream_id":"case-H34.22.6-240426-0002","stream_version":42}"#;
        assert_eq!(String::from_utf8(canonical_bytes(&facts)).unwrap(), pinned);
        assert_eq!(
            hex::encode(event_hash(&GENESIS, &facts)),
            "42fca36229fcb66eeaeb78fc0d5e96cab9add372a353a064ccf60f3b9bd545a4"
        );
        // As PostgreSQL's jsonb prints it back: keys by length, spaces, the number as written.
        let stored = StoredFacts {
            stream_id: facts.stream_id,
            stream_version: facts.stream_version,
            event_id: facts.event_id,
            event_type: facts.event_type,
            schema_version: facts.schema_version,
            payload: r#"{"a": 1.50, "b": "\u00e9\n"}"#,
            metadata: r#"{"actor": "officer-1"}"#,
            recorded_at: facts.recorded_at,
        };
        let mut out = String::from("left over");
        canonical_bytes_of_stored(&stored, &mut out).unwrap();
        assert_eq!(out, pinned);
        assert!(canonical_bytes_of_stored(&StoredFacts { payload: "{\"a\":", ..stored }, &mut out).is_err());
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
