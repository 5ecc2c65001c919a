//! Limits on a GraphQL document, checked before async-graphql parses or validates it, in time
//! linear in the document's size, for every transport (HTTP and WebSocket).
//!
//! Why here and not in the schema's own limits: the parser recurses once per nesting level of a
//! value (`[[[[…]]]]`), so a few kilobytes of brackets overflow the stack before any limit of
//! the schema is looked at; and validation expands fragment spreads, so a document where each
//! fragment spreads the next one twice costs 2^N before the complexity limit refuses it. So:
//! (1) count the nesting of `{ [ (` on the raw text; (2) parse; (3) count the fields each
//! operation and fragment selects, fragment spreads included, computing each fragment's count
//! once (memoised), so a fragment bomb is measured without being expanded.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Request, ServerError, ServerResult, Value as ConstValue};

use crate::auth::Authentication;

/// The deepest nesting of `{`, `[` and `(` taken together. A real query nests a selection 16
/// deep at most (the schema's depth limit) and its input objects a few levels more.
pub const MAX_NESTING: usize = 64;
/// Fields one operation (or one fragment) may select, with its fragment spreads expanded.
/// The GraphiQL introspection query selects about 150.
pub const MAX_FIELDS_PER_OPERATION: u64 = 500;
/// Fields the whole document may select (every operation and every fragment, expanded).
pub const MAX_FIELDS_PER_DOCUMENT: u64 = 2_000;
/// Top-level fields of one operation, aliases included: 100 aliases of one report would
/// multiply one request's answer a hundredfold.
pub const MAX_ROOT_FIELDS: u64 = 20;
/// Fragments one document may define.
pub const MAX_FRAGMENTS: usize = 50;
/// How much of an error message is returned; the rest is dropped, so no message ever echoes a
/// large document back.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 200;

/// Why a document is refused, and the code the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// VALIDATION: too deep, too costly, a fragment cycle, unparsable.
    Invalid(String),
    /// UNAUTHENTICATED: introspection without a valid token.
    Unauthenticated(String),
}

impl Refusal {
    fn into_server_error(self) -> ServerError {
        let (code, message) = match self {
            Refusal::Invalid(message) => ("VALIDATION", message),
            Refusal::Unauthenticated(message) => ("UNAUTHENTICATED", message),
        };
        let mut error = ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", code);
        error
    }
}

/// The deepest nesting of brackets in a GraphQL document, skipping strings, block strings and
/// comments. Stops counting as soon as `limit` is passed.
pub fn nesting_exceeds(query: &str, limit: usize) -> bool {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped triple quote inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// What the field count found in a document.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    asks_introspection: bool,
}

/// Counts the fields of every operation and fragment without expanding a spread more than
/// once, and refuses what is over the limits.
fn check_document(document: &ExecutableDocument) -> Result<Counts, Refusal> {
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(Refusal::Invalid(format!("a document may define at most {MAX_FRAGMENTS} fragments")));
    }
    let mut counter =
        FieldCounter { document, memo: HashMap::new(), root_memo: HashMap::new(), counts: Counts::default() };
    let mut total: u64 = 0;
    for name in document.fragments.keys() {
        total = total.saturating_add(counter.fragment(name)?);
    }
    for (_, operation) in document.operations.iter() {
        let mut defaults = operation.node.variable_definitions.iter().filter_map(|v| v.node.default_value.as_ref());
        if defaults.any(|default| const_has_control_text(&default.node)) {
            return Err(control_text_refusal());
        }
        let selection = &operation.node.selection_set.node;
        let fields = counter.selection_set(selection)?;
        if fields > MAX_FIELDS_PER_OPERATION {
            return Err(too_many_fields(MAX_FIELDS_PER_OPERATION, "an operation"));
        }
        if counter.root_fields(selection) > MAX_ROOT_FIELDS {
            return Err(Refusal::Invalid(format!(
                "an operation may ask for at most {MAX_ROOT_FIELDS} top-level fields (aliases included)"
            )));
        }
        total = total.saturating_add(fields);
    }
    if total > MAX_FIELDS_PER_DOCUMENT {
        return Err(too_many_fields(MAX_FIELDS_PER_DOCUMENT, "a document"));
    }
    Ok(counter.counts)
}

fn too_many_fields(limit: u64, what: &str) -> Refusal {
    Refusal::Invalid(format!("the query is too costly: {what} may select at most {limit} fields, fragments expanded"))
}

/// The count of one fragment, once computed; `None` while it is being computed (a cycle).
struct FieldCounter<'d> {
    document: &'d ExecutableDocument,
    memo: HashMap<&'d Name, Option<u64>>,
    root_memo: HashMap<&'d Name, u64>,
    counts: Counts,
}

impl<'d> FieldCounter<'d> {
    fn fragment(&mut self, name: &'d Name) -> Result<u64, Refusal> {
        match self.memo.get(name) {
            Some(Some(count)) => return Ok(*count),
            Some(None) => return Err(Refusal::Invalid(format!("fragment {name} spreads itself"))),
            None => {}
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            // Unknown fragments are reported by validation; they select nothing here.
            return Ok(0);
        };
        self.memo.insert(name, None);
        let count = self.selection_set(&fragment.node.selection_set.node)?;
        if count > MAX_FIELDS_PER_OPERATION {
            return Err(too_many_fields(MAX_FIELDS_PER_OPERATION, "a fragment"));
        }
        self.memo.insert(name, Some(count));
        Ok(count)
    }

    fn selection_set(&mut self, set: &'d SelectionSet) -> Result<u64, Refusal> {
        let mut count: u64 = 0;
        for item in &set.items {
            let selected = match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        self.counts.asks_introspection = true;
                    }
                    // Variables read as null here: they are checked in the request's variables.
                    let has_control_text = field.node.arguments.iter().any(|(_, value)| {
                        let written = value.node.clone().into_const_with(|_| Ok::<_, ()>(ConstValue::Null));
                        written.is_ok_and(|value| const_has_control_text(&value))
                    });
                    if has_control_text {
                        return Err(control_text_refusal());
                    }
                    1u64.saturating_add(self.selection_set(&field.node.selection_set.node)?)
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node)?,
                Selection::InlineFragment(inline) => self.selection_set(&inline.node.selection_set.node)?,
            };
            count = count.saturating_add(selected);
            if count > MAX_FIELDS_PER_OPERATION {
                // No need to count further: this is refused whatever the rest adds.
                return Ok(count);
            }
        }
        Ok(count)
    }

    /// Top-level fields, looking through fragments. Runs after every fragment was counted, so
    /// there is no cycle left; each fragment's own count is computed once.
    fn root_fields(&mut self, set: &'d SelectionSet) -> u64 {
        let mut count: u64 = 0;
        for item in &set.items {
            let fields = match &item.node {
                Selection::Field(_) => 1,
                Selection::FragmentSpread(spread) => self.root_fields_of_fragment(&spread.node.fragment_name.node),
                Selection::InlineFragment(inline) => self.root_fields(&inline.node.selection_set.node),
            };
            count = count.saturating_add(fields);
        }
        count
    }

    fn root_fields_of_fragment(&mut self, name: &'d Name) -> u64 {
        if let Some(count) = self.root_memo.get(name) {
            return *count;
        }
        let count = match self.document.fragments.get(name) {
            Some(fragment) => self.root_fields(&fragment.node.selection_set.node),
            None => 0,
        };
        self.root_memo.insert(name, count);
        count
    }
}

/// Text that no field of ours takes: C0 control characters other than tab and line breaks.
/// U+0000 in particular cannot be stored in PostgreSQL's jsonb, so it is refused at the door
/// for every input, on both backends alike.
pub fn has_control_text(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'))
}

fn control_text_refusal() -> Refusal {
    Refusal::Invalid("text must not contain control characters such as U+0000".into())
}

fn const_has_control_text(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(text) => has_control_text(text),
        ConstValue::Enum(name) => has_control_text(name),
        ConstValue::List(items) => items.iter().any(const_has_control_text),
        ConstValue::Object(fields) => fields.iter().any(|(key, v)| has_control_text(key) || const_has_control_text(v)),
        ConstValue::Null | ConstValue::Number(_) | ConstValue::Boolean(_) | ConstValue::Binary(_) => false,
    }
}

/// Checks a request's document against the limits, parsing it once (async-graphql reuses the
/// parsed document). `authenticated` says whether a valid token came with it.
pub fn check_request(request: &mut Request, authenticated: bool) -> Result<(), Refusal> {
    if nesting_exceeds(&request.query, MAX_NESTING) {
        return Err(Refusal::Invalid(format!("the query nests brackets more than {MAX_NESTING} levels deep")));
    }
    if request.variables.iter().any(|(name, value)| has_control_text(name) || const_has_control_text(value)) {
        return Err(control_text_refusal());
    }
    let document = request
        .parsed_query()
        .map_err(|error| Refusal::Invalid(format!("the query cannot be parsed: {}", short(&error.message))))?;
    let counts = check_document(document)?;
    if counts.asks_introspection && !authenticated {
        return Err(Refusal::Unauthenticated(
            "introspection needs a bearer token (Authorization: Bearer <token>)".into(),
        ));
    }
    Ok(())
}

/// At most [`MAX_ERROR_MESSAGE_CHARS`] characters of a message, marked when cut.
pub fn short(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        None => message.to_owned(),
        Some((cut, _)) => format!("{}…", &message[..cut]),
    }
}

/// The schema extension that applies [`check_request`] to every request, over HTTP and
/// WebSocket alike, before async-graphql parses it.
#[derive(Debug)]
pub struct DocumentLimits;

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentLimitsExtension)
    }
}

struct DocumentLimitsExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentLimitsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // HTTP puts the caller in the request's data; WebSocket in the connection's.
        let authentication = [&request.data, ctx.session_data]
            .into_iter()
            .find_map(|data| data.get(&TypeId::of::<Authentication>()).and_then(|any| any.downcast_ref()));
        let authenticated = matches!(authentication, Some(Authentication::Authenticated(_)));
        check_request(&mut request, authenticated).map_err(Refusal::into_server_error)?;
        next.run(ctx, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str) -> Result<(), Refusal> {
        check_request(&mut Request::new(query), true)
    }

    fn fragment_bomb(levels: usize) -> String {
        let mut query = String::from("query { ...F0 }\n");
        for level in 0..levels {
            query.push_str(&format!("fragment F{level} on QueryRoot {{ ...F{next} ...F{next} }}\n", next = level + 1));
        }
        query.push_str(&format!("fragment F{levels} on QueryRoot {{ __typename }}\n"));
        query
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count_as_nesting() {
        let deep = "[".repeat(100);
        assert!(nesting_exceeds(&format!("{{ a(x: {deep}) }}"), MAX_NESTING));
        assert!(!nesting_exceeds(&format!("{{ a(x: \"{deep}\") }}"), MAX_NESTING));
        assert!(!nesting_exceeds(&format!("{{ a(x: \"\"\"{deep}\"\"\") }}"), MAX_NESTING));
        assert!(!nesting_exceeds(&format!("# {deep}\n{{ a }}"), MAX_NESTING));
        assert!(!nesting_exceeds(&format!("{{ a(x: \"\\\"{deep}\") }}"), MAX_NESTING));
    }

    #[test]
    fn a_value_nested_two_thousand_levels_is_refused_before_parsing() {
        let query = format!("{{ case(code: {}1{}) {{ status }} }}", "[".repeat(2_000), "]".repeat(2_000));
        assert!(matches!(check(&query), Err(Refusal::Invalid(message)) if message.contains("nests")));
    }

    #[test]
    fn a_fragment_bomb_is_measured_without_expanding_it() {
        let started = std::time::Instant::now();
        assert!(matches!(check(&fragment_bomb(30)), Err(Refusal::Invalid(message)) if message.contains("too costly")));
        assert!(matches!(check(&fragment_bomb(200)), Err(Refusal::Invalid(_))));
        // A bound on a broken (exponential) count, not a performance target.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // 2^4 = 16 top-level __typename fields: a small document of the same shape is fine.
        assert_eq!(check(&fragment_bomb(4)), Ok(()));
    }

    #[test]
    fn a_fragment_that_spreads_itself_is_refused() {
        let query = "query { ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }";
        assert!(matches!(check(query), Err(Refusal::Invalid(message)) if message.contains("spreads itself")));
    }

    #[test]
    fn a_hundred_aliases_are_refused_and_twenty_are_not() {
        let aliases =
            |n: usize| format!("{{ {} }}", (0..n).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
        assert_eq!(check(&aliases(20)), Ok(()));
        assert!(matches!(check(&aliases(100)), Err(Refusal::Invalid(message)) if message.contains("top-level")));
    }

    #[test]
    fn introspection_needs_a_token_but_typename_does_not() {
        let introspection = "{ __schema { queryType { name } } }";
        assert!(matches!(check_request(&mut Request::new(introspection), false), Err(Refusal::Unauthenticated(_))));
        assert_eq!(check_request(&mut Request::new(introspection), true), Ok(()));
        assert_eq!(check_request(&mut Request::new("{ __typename }"), false), Ok(()));
    }

    #[test]
    fn control_characters_are_refused_in_arguments_defaults_and_variables() {
        assert!(check(r#"{ case(code: "H34.22.6-240426-0002\u0000") { status } }"#).is_err());
        assert!(check(r#"query($c: String = "a\u0001") { case(code: $c) { status } }"#).is_err());
        let mut request = Request::new("query($c: String!) { case(code: $c) { status } }")
            .variables(async_graphql::Variables::from_json(serde_json::json!({ "c": "x\u{0}y" })));
        assert_eq!(check_request(&mut request, true), Err(control_text_refusal()));
        assert_eq!(check(r#"{ case(code: "line one\nline two\ttab") { status } }"#), Ok(()));
    }

    #[test]
    fn a_parse_error_is_reported_in_a_short_message() {
        let query = format!("{{ {} !!! }}", "x".repeat(10_000));
        let Err(Refusal::Invalid(message)) = check(&query) else { panic!("a syntax error must be refused") };
        assert!(message.chars().count() <= MAX_ERROR_MESSAGE_CHARS + 40, "{message}");
    }
}
