//! JSON from outside, read strictly where ambiguity could move money: an object that repeats a
//! key is refused (which copy did the sender sign, which one would be read?), at any depth.
//! serde_json keeps the last copy silently, so the check is a visitor of our own.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

/// Parses `text`, refusing an object with a repeated key anywhere in it.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<UniqueKeys>(text).map(|UniqueKeys(value)| value)
}

/// `text` with every `\uXXXX` escape of half a surrogate pair (one that is not part of a
/// high-low pair) replaced by `\uFFFD`, so that such text parses. Only escapes inside strings
/// are touched; everything else is kept byte for byte.
pub fn without_lone_surrogates(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let surrogate_at = |at: usize| -> Option<u16> {
        let hex = bytes.get(at + 2..at + 6)?;
        if bytes.get(at) != Some(&b'\\') || bytes.get(at + 1) != Some(&b'u') {
            return None;
        }
        let code = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        (0xD800..=0xDFFF).contains(&code).then_some(code)
    };
    let mut out: Option<String> = None;
    let (mut in_string, mut i, mut copied) = (false, 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if let Some(code) = surrogate_at(i) {
                    let paired = (0xD800..=0xDBFF).contains(&code)
                        && surrogate_at(i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                    if paired {
                        i += 12;
                        continue;
                    }
                    let fixed = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    fixed.push_str(&text[copied..i]);
                    fixed.push_str("\\uFFFD");
                    i += 6;
                    copied = i;
                    continue;
                }
                // Any other escape: skip the escaped character.
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut fixed) => {
            fixed.push_str(&text[copied..]);
            Cow::Owned(fixed)
        }
    }
}

/// A JSON value whose objects have no repeated key, at any depth.
struct UniqueKeys(Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // Only to be refused later with the number shown: amounts must be integers.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let UniqueKeys(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("the key {key:?} appears more than once")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        assert!(parse(r#"{"a":1,"a":2}"#).is_err());
        assert!(parse(r#"{"data":{"amount":1,"amount":2}}"#).is_err());
        assert!(parse(r#"[{"k":1},{"k":1,"k":1}]"#).is_err());
        assert_eq!(parse(r#"{"a":1,"b":{"a":2}}"#).unwrap(), serde_json::json!({"a":1,"b":{"a":2}}));
    }

    #[test]
    fn half_a_surrogate_pair_becomes_a_replacement_character_and_pairs_are_kept() {
        let lone = r#"{"content":"H34 \ud800 x \udc00","k":"\\ud800"}"#;
        let value = parse(&without_lone_surrogates(lone)).unwrap();
        assert_eq!(value["content"], "H34 \u{fffd} x \u{fffd}");
        assert_eq!(value["k"], "\\ud800", "an escaped backslash is not an escape");
        let pair = r#"{"emoji":"\ud83d\ude00"}"#;
        assert!(matches!(without_lone_surrogates(pair), Cow::Borrowed(_)));
        assert_eq!(parse(pair).unwrap()["emoji"], "\u{1f600}");
    }
}
