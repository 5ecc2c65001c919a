//! Sorted JSON: compact, every object's keys sorted at every depth. The one writer behind the
//! event hashes ([`crate::storage::hash_chain`]) and the bank notifications' signatures
//! (Casso and payOS sign a sorted re-serialisation of the parsed body).
//!
//! Keys are sorted here explicitly rather than by trusting `serde_json::Map`'s iteration order:
//! that holds only while no crate in the final binary turns on serde_json's `preserve_order`
//! feature, and PostgreSQL's `jsonb` returns keys in an order of its own. Keys sort by Unicode
//! scalar value (byte-wise UTF-8). Strings are escaped exactly as serde_json escapes them
//! (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other controls as lower-case `\u00xx`); numbers
//! are printed as serde_json prints them.
//!
//! [`write_text`] writes the same bytes from JSON *text* without building a `serde_json::Value`
//! tree first: the audit recomputes every stored event's hash from its payload's text.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;

/// How characters above U+007F are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonAscii {
    /// As they are (serde_json, JavaScript's `JSON.stringify`): the event hashes.
    Raw,
    /// As `\uXXXX` (lower-case hex, UTF-16 surrogate pairs beyond the BMP), as Python's
    /// `json.dumps` and PHP's `json_encode` do.
    Escaped,
}

/// The sorted JSON of `value`.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, NonAscii::Raw, &mut out);
    out
}

/// Writes `value` as compact JSON with every object's keys sorted, recursively.
pub fn write_value(value: &Value, non_ascii: NonAscii, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, non_ascii, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, non_ascii, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, non_ascii, out);
                out.push(':');
                write_value(item, non_ascii, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal, escaped as serde_json escapes it (plus non-ASCII, when asked).
pub fn write_string(s: &str, non_ascii: NonAscii, out: &mut String) {
    out.push('"');
    let mut clean = 0;
    for (at, ch) in s.char_indices() {
        let escape = match ch {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if u32::from(c) < 0x20 || (non_ascii == NonAscii::Escaped && u32::from(c) > 0x7f) => "",
            _ => continue,
        };
        out.push_str(&s[clean..at]);
        clean = at + ch.len_utf8();
        if escape.is_empty() {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[clean..]);
    out.push('"');
}

/// JSON text that is not valid JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {at}: {reason}")]
pub struct Malformed {
    pub at: usize,
    pub reason: &'static str,
}

/// Deeper nesting is refused (as serde_json refuses it).
const MAX_DEPTH: usize = 128;

/// Writes the sorted JSON of the JSON `text`, with non-ASCII raw: the same bytes as
/// [`write_value`] of `serde_json::from_str(text)`, without building that tree. Strings without
/// escapes are copied as they are; numbers go through serde_json's own number type, so they
/// print as the tree would print them.
pub fn write_text(text: &str, out: &mut String) -> Result<(), Malformed> {
    let mut scanner = Scanner { text, at: 0 };
    scanner.value(out, 0)?;
    scanner.skip_space();
    if scanner.at != text.len() {
        return Err(scanner.error("trailing characters"));
    }
    Ok(())
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn error(&self, reason: &'static str) -> Malformed {
        Malformed { at: self.at, reason }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), Malformed> {
        self.skip_space();
        if self.peek() != Some(byte) {
            return Err(self.error(reason));
        }
        self.at += 1;
        Ok(())
    }

    /// Writes the value at the cursor in sorted form and moves past it.
    fn value(&mut self, out: &mut String, depth: usize) -> Result<(), Malformed> {
        self.skip_space();
        match self.peek() {
            Some(b'{') => self.object(out, depth + 1),
            Some(b'[') => self.array(out, depth + 1),
            Some(b'"') => {
                match self.string()? {
                    // Without an escape the literal is already as serde_json writes it: a JSON
                    // string holds no raw quote or control character.
                    (raw, false) => out.push_str(raw),
                    (raw, true) => write_string(&decode_string(raw, self.at)?, NonAscii::Raw, out),
                }
                Ok(())
            }
            Some(b't') => self.literal("true", out),
            Some(b'f') => self.literal("false", out),
            Some(b'n') => self.literal("null", out),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.at += 1;
                }
                let number: serde_json::Number =
                    serde_json::from_str(&self.text[start..self.at]).map_err(|_| self.error("invalid number"))?;
                let _ = write!(out, "{number}");
                Ok(())
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn literal(&mut self, word: &'static str, out: &mut String) -> Result<(), Malformed> {
        if !self.text[self.at..].starts_with(word) {
            return Err(self.error("invalid literal"));
        }
        self.at += word.len();
        out.push_str(word);
        Ok(())
    }

    /// The string literal at the cursor, quotes included, and whether it holds an escape.
    fn string(&mut self) -> Result<(&'a str, bool), Malformed> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None => {
                    self.at = i;
                    return Err(self.error("unterminated string"));
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(byte) if *byte < 0x20 => {
                    self.at = i;
                    return Err(self.error("control character in a string"));
                }
                Some(_) => i += 1,
            }
        }
        self.at = i + 1;
        Ok((&self.text[start..self.at], escaped))
    }

    fn array(&mut self, out: &mut String, depth: usize) -> Result<(), Malformed> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1;
        out.push('[');
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            out.push(']');
            return Ok(());
        }
        loop {
            self.value(out, depth)?;
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    out.push(',');
                }
                Some(b']') => {
                    self.at += 1;
                    out.push(']');
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// Reads the members' keys and where their values start, then writes them sorted, each
    /// value written from its own place in the text.
    fn object(&mut self, out: &mut String, depth: usize) -> Result<(), Malformed> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1;
        let mut members: Vec<(Cow<'a, str>, usize)> = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            out.push_str("{}");
            return Ok(());
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key = match self.string()? {
                (raw, false) => Cow::Borrowed(&raw[1..raw.len() - 1]),
                (raw, true) => Cow::Owned(decode_string(raw, self.at)?),
            };
            self.expect(b':', "expected ':'")?;
            self.skip_space();
            members.push((key, self.at));
            self.skip_value(depth)?;
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        let end = self.at;
        // Stable, so that of repeated keys the last is kept, as serde_json keeps it.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        out.push('{');
        let mut first = true;
        for (i, (key, start)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            write_string(key, NonAscii::Raw, out);
            out.push(':');
            self.at = *start;
            self.value(out, depth)?;
        }
        out.push('}');
        self.at = end;
        Ok(())
    }

    /// Moves past the value at the cursor (checked when it is written).
    fn skip_value(&mut self, depth: usize) -> Result<(), Malformed> {
        let bytes = self.text.as_bytes();
        let mut nesting = 0usize;
        loop {
            match self.peek() {
                None => return Err(self.error("unexpected end")),
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{' | b'[') => {
                    nesting += 1;
                    if depth + nesting > MAX_DEPTH {
                        return Err(self.error("nested too deeply"));
                    }
                    self.at += 1;
                }
                Some(b'}' | b']') => {
                    if nesting == 0 {
                        return Err(self.error("unexpected close"));
                    }
                    nesting -= 1;
                    self.at += 1;
                }
                Some(_) => {
                    // A scalar, or a separator inside a container.
                    if nesting == 0 {
                        while self.at < bytes.len() && !matches!(bytes[self.at], b',' | b'}' | b']') {
                            self.at += 1;
                        }
                        return Ok(());
                    }
                    self.at += 1;
                }
            }
            if nesting == 0 {
                return Ok(());
            }
        }
    }
}

fn decode_string(raw: &str, at: usize) -> Result<String, Malformed> {
    serde_json::from_str(raw).map_err(|_| Malformed { at, reason: "invalid string escape" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_text(text: &str) -> String {
        let mut out = String::new();
        write_text(text, &mut out).unwrap();
        out
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut every: String = (0u32..0x80).filter_map(char::from_u32).collect();
        every.push_str("é Thành 😀 \u{2028} \u{feff} \u{7f}");
        for text in [every.as_str(), "", "plain", "\"\\"] {
            let mut out = String::new();
            write_string(text, NonAscii::Raw, &mut out);
            assert_eq!(out, serde_json::to_string(text).unwrap());
        }
    }

    #[test]
    fn non_ascii_can_be_escaped_as_python_does() {
        let mut out = String::new();
        write_string("Thành 😀\n\"", NonAscii::Escaped, &mut out);
        assert_eq!(out, r#""Th\u00e0nh \ud83d\ude00\n\"""#);
    }

    #[test]
    fn values_are_written_sorted_at_every_depth() {
        let value: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[{"z":1,"y":"é"}],"c":null}}"#).unwrap();
        assert_eq!(to_string(&value), r#"{"a":{"c":null,"d":[{"y":"é","z":1}]},"b":1}"#);
    }

    /// The text path writes the bytes the tree path writes, whatever the input's spacing, key
    /// order (jsonb's is by length), escapes and number spellings.
    #[test]
    fn text_is_written_as_its_parsed_tree_would_be() {
        let texts = [
            r#"{"b": 1, "a": {"d": [{"z": 1, "y": "é"}], "c": null}}"#,
            r#"{"id": "x", "amount": "3000", "payer": {"name": "VÕ ĐẶNG NGỌC GIÀ", "id_number": "079201008870"}}"#,
            r#"{"z": [3, {"b": null, "a": true}], "quote\"d": "line\nbreak\t\u0001", "n": -12.50, "big": 12345678901234}"#,
            r#"{"esc": "\u00e9\/\ud83d\ude00", "e": 1e5, "f": 1.0, "g": 0.1, "h": -0, "i": 18446744073709551616, "j": 1E-7}"#,
            r#"{"dup": 1, "a": [], "dup": 2, "b": {}, "ke\u0079": false}"#,
            " [ 1 , \"two\" , { \"b\" : [ ] , \"a\" : { } } , null ]\n",
            r#""just a string""#,
            "42",
            "{}",
            r#"{"lines": [{"fee_code": "LP-1", "quantity": 2, "unit_amount": "1000"}], "agency_code": "H34.22.6"}"#,
        ];
        for text in texts {
            let tree: Value = serde_json::from_str(text).unwrap();
            assert_eq!(from_text(text), to_string(&tree), "{text}");
        }
    }

    #[test]
    fn invalid_text_is_refused() {
        for text in ["", "{", r#"{"a" 1}"#, r#"{"a":1,}"#, "[1,]", "tru", "\"open", "{\"a\":\"\u{1}\"}", "1 2", "-"] {
            assert!(write_text(text, &mut String::new()).is_err(), "{text:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(write_text(&deep, &mut String::new()).is_err());
    }

    #[test]
    fn a_tree_and_its_text_agree_for_generated_payloads() {
        let value = json!({"payment_id": "0191d3a0-0000-7000-8000-000000000001", "amount": "3000",
            "channel": "VIETQR", "reference": "H34.22.6-240426-0002", "qr_id": null, "n": [1, 2.5, -3],
            "nested": {"y": {"b": "x", "a": "y"}, "x": []}});
        assert_eq!(from_text(&value.to_string()), to_string(&value));
        assert_eq!(from_text(&serde_json::to_string_pretty(&value).unwrap()), to_string(&value));
    }
}
