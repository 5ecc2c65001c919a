//! Hostile input, as a table. Each case is the bytes a client puts on the wire and what the
//! node must do with them: the HTTP status, the error code, nothing appended (or, for money a
//! provider really sent, the credit recorded exactly once), an answer within seconds that
//! neither echoes the request nor runs long, and `/healthz` still answering right after.
//! One runner, both backends; every failing case is listed, not just the first.

use std::time::{Duration, Instant};

use feeledger_api::auth::{Role, TokenRequest};
use feeledger_infrastructure::bank_feed::{self, Secret};
use feeledger_infrastructure::codec;
use feeledger_infrastructure::settings::ProviderSecrets;
use feeledger_tests::wire::{self, Framing, WireRequest};
use feeledger_tests::{TestApp, spawn_each_backend_with};
use serde_json::{Value, json};

const AGENCY: &str = "H34.22.6";
const ACCOUNT: &str = "113366668888";
const TOKEN_SECRET: &str = "hostile-input-token-secret-0123456789abcdef";
const SEPAY_KEY: &str = "sepay-hostile-api-key-2026";
const SEPAY_HMAC: &str = "sepay-hostile-hmac-secret-2026";
const VNPAY_SECRET: &str = "VNPAYHOSTILEHASHSECRET0123456789AB";
/// Published sample keys (vectors/webhooks.md), not secrets.
const CASSO_KEY: &str = "mgExMrjj4i7a1p8Cs6LmFbpCd8lbw4sSX4LZXPag7TKazeIogtR90tvWYTkwQbvs";
const PAYOS_KEY: &str = "1a54716c8f0efb2744fb28b6e38b25da7f67a925d98bc1c18bd8faaecadd7675";

/// A refused request is answered at once, not after seconds of CPU.
const ANSWER_FAST: Duration = Duration::from_secs(2);
/// Past this a case has hung; the runner gives up on it and says so.
const ANSWER_PATIENCE: Duration = Duration::from_secs(10);
const HEALTH_DEADLINE: Duration = Duration::from_millis(100);
/// A one-off scheduling hiccup on a loaded machine is forgiven; a stalled node is not.
const HEALTH_ATTEMPTS: u32 = 3;
const MESSAGE_MAX_CHARS: usize = 300;
const ROLE_NAMES: [&str; 4] = ["officer", "auditor", "finance", "admin"];
const GRAPHQL_LIMIT_BYTES: usize = 256 * 1024;
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The table's vocabulary
// ---------------------------------------------------------------------------------------------

struct Case {
    name: String,
    request: WireRequest,
    expect: Expect,
}

#[derive(Clone)]
struct Expect {
    status: u16,
    answer: Answer,
    effect: Effect,
    /// Must not appear anywhere in the answer (the request is never echoed back).
    marker: Option<String>,
}

#[derive(Clone)]
enum Answer {
    /// GraphQL refused the request or document: this code first, and no `data` for it.
    Refused(&'static str),
    /// A resolver refused: this code first, and nothing but nulls in `data`.
    Error(&'static str),
    /// Answered with data and no error.
    Data,
    /// SePay, Casso, payOS: `{"success": flag, …}`.
    Success(bool),
    /// VNPAY: `RspCode` is one of these.
    RspCode(&'static [&'static str]),
    /// A transport-level refusal: only the status is promised.
    StatusOnly,
}

#[derive(Clone)]
enum Effect {
    /// The log is unchanged.
    Nothing,
    /// The log is unchanged and the provider's newest inbox row has this outcome.
    NothingInbox { provider: &'static str, outcome: &'static str },
    /// The money is kept exactly once: one BankCreditObserved, and one payment on the case or
    /// a place in the unmatched queue. The inbox keeps the raw body when one is given.
    Credit { provider: &'static str, credit_id: String, landing: Landing, stored_body: Option<Vec<u8>> },
}

#[derive(Clone)]
enum Landing {
    Case(String),
    Unmatched,
    /// On a case or in the queue, but once.
    Either,
}

fn refused(status: u16, code: &'static str) -> Expect {
    Expect { status, answer: Answer::Refused(code), effect: Effect::Nothing, marker: None }
}

/// A GraphQL document refused by GraphQL itself: 200, VALIDATION, no data.
fn invalid_document() -> Expect {
    refused(200, "VALIDATION")
}

fn resolver_error(code: &'static str) -> Expect {
    Expect { status: 200, answer: Answer::Error(code), effect: Effect::Nothing, marker: None }
}

fn answered() -> Expect {
    Expect { status: 200, answer: Answer::Data, effect: Effect::Nothing, marker: None }
}

fn status_only(status: u16) -> Expect {
    Expect { status, answer: Answer::StatusOnly, effect: Effect::Nothing, marker: None }
}

/// A JSON provider's refusal in its own format, kept in the inbox as `rejected`.
fn provider_refused(status: u16, provider: &'static str) -> Expect {
    Expect {
        status,
        answer: Answer::Success(false),
        effect: Effect::NothingInbox { provider, outcome: "rejected" },
        marker: None,
    }
}

fn vnpay_refused(code: &'static str) -> Expect {
    let codes: &'static [&'static str] = match code {
        "97" => &["97"],
        "04" => &["04"],
        _ => &["99"],
    };
    Expect {
        status: 200,
        answer: Answer::RspCode(codes),
        effect: Effect::NothingInbox { provider: "vnpay", outcome: "rejected" },
        marker: None,
    }
}

fn credit(provider: &'static str, credit_id: String, landing: Landing, stored_body: Option<Vec<u8>>) -> Expect {
    let answer = if provider == "vnpay" {
        match landing {
            Landing::Case(_) => Answer::RspCode(&["00"]),
            Landing::Unmatched => Answer::RspCode(&["01"]),
            Landing::Either => Answer::RspCode(&["00", "01"]),
        }
    } else {
        Answer::Success(true)
    };
    Expect { status: 200, answer, effect: Effect::Credit { provider, credit_id, landing, stored_body }, marker: None }
}

impl Expect {
    fn marker(mut self, marker: &str) -> Expect {
        self.marker = Some(marker.to_owned());
        self
    }
}

fn case(name: impl Into<String>, request: WireRequest, expect: Expect) -> Case {
    Case { name: name.into(), request, expect }
}

/// A long marker no server would invent: if it shows up in an answer, the request was echoed.
fn marker(tag: &str) -> String {
    format!("{tag}{}", "Zq".repeat(500))
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

/// Runs every case in order on `app` and returns the failures, one line each. A node that
/// stops answering ends the run: every later case would only wait out its patience.
async fn run_table(app: &TestApp, cases: Vec<Case>) -> Vec<String> {
    let health = reqwest::Client::builder().timeout(HEALTH_DEADLINE).build().unwrap();
    let mut failures = Vec::new();
    let total = cases.len();
    let mut slowest = (Duration::ZERO, String::new());
    for (index, case) in cases.into_iter().enumerate() {
        let before = app.event_count().await;
        let sent = wire::send(&app.address, &case.request, ANSWER_PATIENCE).await;
        if let Ok(response) = &sent
            && response.elapsed > slowest.0
        {
            slowest = (response.elapsed, case.name.clone());
        }
        let hung = matches!(sent, Err(wire::WireError::NoAnswer(_)));
        let mut problems = match sent {
            Ok(response) => check_answer(&case.expect, &response),
            Err(error) => vec![error.to_string()],
        };
        problems.extend(check_effect(app, &case.expect.effect, before).await);
        let health = healthy(&health, app).await;
        if let Err(problem) = &health {
            problems.push(problem.clone());
        }
        if !problems.is_empty() {
            failures.push(format!("[{}] {}: {}", app.backend(), case.name, problems.join("; ")));
        }
        if hung || health.is_err() {
            failures.push(format!(
                "[{}] the node is stalled: {} later cases not run",
                app.backend(),
                total - index - 1
            ));
            break;
        }
    }
    eprintln!("[{}] slowest answer: {} ms ({})", app.backend(), slowest.0.as_millis(), slowest.1);
    failures
}

fn check_answer(expect: &Expect, response: &wire::WireResponse) -> Vec<String> {
    let mut problems = Vec::new();
    let body = response.json();
    let shown = || {
        let text = response.text();
        let cut: String = text.chars().take(300).collect();
        if cut.len() < text.len() { format!("{cut}…") } else { cut }
    };
    if response.status != expect.status {
        problems.push(format!("HTTP {} (expected {}): {}", response.status, expect.status, shown()));
    }
    if response.elapsed > ANSWER_FAST {
        problems.push(format!("answered after {} ms", response.elapsed.as_millis()));
    }
    let first_code = body["errors"][0]["extensions"]["code"].as_str();
    match &expect.answer {
        Answer::Refused(code) => {
            if first_code != Some(code) {
                problems.push(format!("code {first_code:?} (expected {code}): {}", shown()));
            }
            if !body["data"].is_null() {
                problems.push(format!("data for a refused request: {}", body["data"]));
            }
        }
        Answer::Error(code) => {
            if first_code != Some(code) {
                problems.push(format!("code {first_code:?} (expected {code}): {}", shown()));
            }
            let leaked = body["data"].as_object().is_some_and(|fields| fields.values().any(|v| !v.is_null()));
            if leaked {
                problems.push(format!("data beside the error: {}", shown()));
            }
        }
        Answer::Data => {
            if !body["errors"].is_null() || !body["data"].is_object() {
                problems.push(format!("expected data and no errors: {}", shown()));
            }
        }
        Answer::Success(flag) => {
            if body["success"] != *flag {
                problems.push(format!("success {} (expected {flag}): {}", body["success"], shown()));
            }
        }
        Answer::RspCode(codes) => {
            if !body["RspCode"].as_str().is_some_and(|code| codes.contains(&code)) {
                problems.push(format!("RspCode {} (expected one of {codes:?})", body["RspCode"]));
            }
        }
        Answer::StatusOnly => {}
    }
    let mut messages: Vec<(&str, Option<&str>)> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["message"].as_str().unwrap_or_default(), e["extensions"]["code"].as_str()))
        .collect();
    messages.extend(body["message"].as_str().map(|m| (m, None)));
    for (message, code) in messages {
        let length = message.chars().count();
        if length > MESSAGE_MAX_CHARS {
            problems.push(format!("a {length}-character message"));
        }
        let lower = message.to_lowercase();
        if code == Some("UNAUTHENTICATED") && ROLE_NAMES.iter().any(|role| lower.contains(role)) {
            problems.push(format!("a token error lists role names: {message:?}"));
        }
    }
    if let Some(marker) = &expect.marker
        && response.text().contains(marker.as_str())
    {
        problems.push("the answer echoes the request".to_owned());
    }
    problems
}

async fn check_effect(app: &TestApp, effect: &Effect, before: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let after = app.event_count().await;
    let newest_inbox = |provider: &'static str| async move {
        app.state.inbox.recent(Some(provider), 1).await.unwrap().into_iter().next()
    };
    match effect {
        Effect::Nothing => {
            if after != before {
                problems.push(format!("{} events appended", after - before));
            }
        }
        Effect::NothingInbox { provider, outcome } => {
            if after != before {
                problems.push(format!("{} events appended", after - before));
            }
            let row = newest_inbox(provider).await;
            if row.as_ref().map(|r| r.outcome.as_str()) != Some(*outcome) {
                problems.push(format!("inbox row {:?} (expected {outcome})", row.map(|r| r.outcome)));
            }
        }
        Effect::Credit { provider, credit_id, landing, stored_body } => {
            if after <= before {
                problems.push("nothing appended for a signed credit".to_owned());
            }
            let store = app.state.ledger.store();
            let observed = store
                .read_stream(&codec::bank_credit_stream(credit_id))
                .await
                .unwrap()
                .iter()
                .filter(|e| e.event_type == "BankCreditObserved")
                .count();
            if observed != 1 {
                problems.push(format!("{observed} BankCreditObserved for {credit_id}"));
            }
            let payments = match landing {
                Landing::Case(code) => {
                    store.read_stream(&format!("{}{code}", codec::CASE_STREAM_PREFIX)).await.unwrap()
                }
                Landing::Unmatched | Landing::Either => store.events_of_type("PaymentReceived").await.unwrap(),
            }
            .iter()
            .filter(|e| e.event_type == "PaymentReceived" && e.payload["idempotency_key"] == credit_id.as_str())
            .count();
            let queued = unmatched(app).await.contains(credit_id);
            let placed = match landing {
                Landing::Case(_) => payments == 1 && !queued,
                Landing::Unmatched => payments == 0 && queued,
                Landing::Either => payments + usize::from(queued) == 1,
            };
            if !placed {
                problems.push(format!("{credit_id}: {payments} payments, in the unmatched queue: {queued}"));
            }
            let row = newest_inbox(provider).await;
            let outcome = row.as_ref().map(|r| r.outcome.clone()).unwrap_or_default();
            if outcome != "recorded" && outcome != "unmatched" {
                problems.push(format!("inbox row {outcome:?} (expected recorded or unmatched)"));
            }
            if let Some(body) = stored_body
                && row.as_ref().is_none_or(|r| &r.body != body)
            {
                problems.push("the inbox does not hold the raw request body".to_owned());
            }
        }
    }
    problems
}

/// The ids waiting in the unmatched queues: the agency's, and the one for money whose agency is
/// unknown (a VNPAY payment names no receiving account).
async fn unmatched(app: &TestApp) -> Vec<String> {
    let finance = app.token(Role::Finance, None, None);
    let mut ids = Vec::new();
    for agency in [AGENCY, ""] {
        let data = app
            .graphql(
                Some(&finance),
                "query($a: String!) { unmatchedCredits(agencyCode: $a) { id } }",
                json!({ "a": agency }),
            )
            .await;
        let queue = data["data"]["unmatchedCredits"].as_array().cloned().unwrap_or_default();
        ids.extend(queue.iter().filter_map(|c| c["id"].as_str().map(str::to_owned)));
    }
    ids
}

/// `GET /healthz` answers 200 within [`HEALTH_DEADLINE`], in at most [`HEALTH_ATTEMPTS`] tries.
async fn healthy(client: &reqwest::Client, app: &TestApp) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..HEALTH_ATTEMPTS {
        let started = Instant::now();
        match client.get(format!("{}/healthz", app.address)).send().await {
            Ok(response) if response.status() == 200 && started.elapsed() <= HEALTH_DEADLINE => return Ok(()),
            Ok(response) => last = format!("HTTP {} after {} ms", response.status(), started.elapsed().as_millis()),
            Err(error) => last = error.to_string(),
        }
    }
    Err(format!("/healthz did not answer within {} ms ({last})", HEALTH_DEADLINE.as_millis()))
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

fn secrets() -> ProviderSecrets {
    ProviderSecrets {
        sepay_api_key: Some(Secret::new(SEPAY_KEY)),
        sepay_hmac_secret: Some(Secret::new(SEPAY_HMAC)),
        casso_checksum_key: Some(Secret::new(CASSO_KEY)),
        payos_checksum_key: Some(Secret::new(PAYOS_KEY)),
        vnpay_hash_secret: Some(Secret::new(VNPAY_SECRET)),
    }
}

async fn apps() -> Vec<TestApp> {
    spawn_each_backend_with(|settings| {
        settings.providers = secrets();
        settings.token_secret = Some(Secret::new(TOKEN_SECRET));
    })
    .await
}

/// Case codes of the tables: each case that could append gets its own.
fn case_code(n: u32) -> String {
    format!("{AGENCY}-261129-{n:04}")
}

/// A case that exists, with P-SAOY × `quantity` (1,000 đ each) outstanding.
async fn assess(app: &TestApp, n: u32, quantity: u32) {
    app.graphql_ok(
        &app.officer(AGENCY),
        "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }",
        json!({ "input": {
            "caseCode": case_code(n), "agencyCode": AGENCY, "procedureName": "Chứng thực",
            "payer": { "name": "NGUYỄN VĂN A" }, "lines": [{ "feeCode": "P-SAOY", "quantity": quantity }]
        }}),
    )
    .await;
}

/// A JWT signed with the node's own key but claiming whatever `claims` say.
fn signed_token(claims: &Value, key: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

fn claims(role: &str, agency: Option<&str>) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims =
        json!({ "sub": "mallory", "role": role, "iss": "feeledger", "iat": now, "exp": now + 3600, "jti": "x" });
    if let Some(agency) = agency {
        claims["agency"] = json!(agency);
    }
    claims
}

// ---------------------------------------------------------------------------------------------
// GraphQL requests
// ---------------------------------------------------------------------------------------------

fn graphql_bytes(token: Option<&str>, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> WireRequest {
    let mut request = WireRequest::new("POST", "/graphql").body(body);
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    request
}

fn graphql_json(token: Option<&str>, body: &Value) -> WireRequest {
    graphql_bytes(token, Some("application/json"), body.to_string())
}

fn query(token: Option<&str>, document: &str) -> WireRequest {
    graphql_json(token, &json!({ "query": document }))
}

fn query_with(token: Option<&str>, document: &str, variables: Value) -> WireRequest {
    graphql_json(token, &json!({ "query": document, "variables": variables }))
}

fn nested_list(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

fn nested_object(levels: usize) -> String {
    format!("{}1{}", "{a: ".repeat(levels), "}".repeat(levels))
}

/// A GraphQL body whose variable `v` is nested `levels` deep, written as text: a `Value` that
/// deep would overflow the test's own stack when serialised or dropped.
fn nested_variables(token: Option<&str>, document: &str, levels: usize) -> WireRequest {
    let body = format!(r#"{{"query":{},"variables":{{"v":{}}}}}"#, json!(document), nested_list(levels));
    graphql_bytes(token, Some("application/json"), body)
}

/// `query { a0: FIELD a1: FIELD … }`
fn aliases(count: usize, field: &str) -> String {
    format!("query {{ {} }}", aliases_of(count, field))
}

fn aliases_of(count: usize, field: &str) -> String {
    (0..count).map(|i| format!("a{i}: {field}")).collect::<Vec<_>>().join(" ")
}

/// `levels` fragments, each spreading the next twice: 2^levels leaves once expanded.
fn fragment_bomb(levels: usize, leaf: &str, inline: bool) -> String {
    let mut document = String::from("query { ...F0 }\n");
    for level in 0..levels {
        let next = level + 1;
        let spreads = if inline {
            format!("... on QueryRoot {{ ...F{next} }} ...F{next}")
        } else {
            format!("...F{next} ...F{next}")
        };
        document.push_str(&format!("fragment F{level} on QueryRoot {{ {spreads} }}\n"));
    }
    document.push_str(&format!("fragment F{levels} on QueryRoot {{ {leaf} }}\n"));
    document
}

const RECORD_PAYMENT: &str = "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { paid } }";
const ASSESS: &str = "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }";

fn assess_input(n: u32, payer: &str, procedure: &str) -> Value {
    json!({ "input": {
        "caseCode": case_code(n), "agencyCode": AGENCY, "procedureName": procedure,
        "payer": { "name": payer, "idNumber": "079201008870" }, "lines": [{ "feeCode": "P-SAOY", "quantity": 1 }]
    }})
}

fn payment_input(n: u32, amount: Value, key: &str) -> Value {
    json!({ "input": { "caseCode": case_code(n), "amount": amount, "channel": "CASH", "reference": "BL-1", "idempotencyKey": key } })
}

/// The identities used by the GraphQL table.
struct Callers {
    officer: String,
    admin: String,
    expired: String,
    forged: String,
    unknown_role: String,
    other_key: String,
    bad_agency: String,
    wrong_issuer: String,
    alg_none: String,
}

impl Callers {
    fn new(app: &TestApp) -> Callers {
        let officer = app.officer(AGENCY);
        let mut expired = TokenRequest::new(Role::Officer, Some(AGENCY.parse().unwrap()), None);
        expired.ttl = chrono::Duration::hours(1);
        let expired = app.state.tokens.issue(&expired, chrono::Utc::now() - chrono::Duration::hours(3)).unwrap();
        let forged = format!("{}{}", &officer[..officer.len() - 2], if officer.ends_with("AA") { "BB" } else { "AA" });
        let mut wrong_issuer = claims("officer", Some(AGENCY));
        wrong_issuer["iss"] = json!("someone-else");
        // {"alg":"none"} with officer claims and no signature.
        let alg_none = {
            let payload = officer.split('.').nth(1).unwrap();
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")
        };
        Callers {
            admin: app.admin(),
            expired,
            forged,
            unknown_role: signed_token(&claims("superuser", Some(AGENCY)), TOKEN_SECRET),
            other_key: signed_token(&claims("officer", Some(AGENCY)), "another-key-of-32-characters-or-more!!"),
            bad_agency: signed_token(&claims("officer", Some("<script>alert(1)</script>")), TOKEN_SECRET),
            wrong_issuer: signed_token(&wrong_issuer, TOKEN_SECRET),
            alg_none,
            officer,
        }
    }
}

#[allow(clippy::too_many_lines, reason = "a table reads best in one place")]
fn graphql_cases(who: &Callers) -> Vec<Case> {
    let officer = Some(who.officer.as_str());
    let admin = Some(who.admin.as_str());
    let read_case = format!("query {{ case(code: \"{}\") {{ code }} }}", case_code(1));
    let mut cases = vec![
        // Nesting: 2,000 levels wherever a value or selection can nest.
        case(
            "an argument nested 2,000 levels as lists",
            query(officer, &format!("query {{ case(code: {}) {{ code }} }}", nested_list(2000))),
            invalid_document(),
        ),
        case(
            "an argument nested 2,000 levels as objects",
            query(officer, &format!("query {{ case(code: {}) {{ code }} }}", nested_object(2000))),
            invalid_document(),
        ),
        case(
            "an unknown field's argument nested 2,000 levels",
            query(officer, &format!("query {{ nope(x: {}) }}", nested_list(2000))),
            invalid_document(),
        ),
        case(
            "a variable default nested 2,000 levels",
            query(None, &format!("query($v: String = {}) {{ __typename }}", nested_list(2000))),
            invalid_document(),
        ),
        case(
            "a directive argument nested 2,000 levels",
            query(None, &format!("query {{ __typename @include(if: {}) }}", nested_object(2000))),
            invalid_document(),
        ),
        case(
            "selections nested 2,000 levels",
            query(None, &format!("query {}{}", "{ a ".repeat(2000), "}".repeat(2000))),
            invalid_document(),
        ),
        case(
            "inline fragments nested 2,000 levels",
            query(None, &format!("query {{ {}__typename{} }}", "... on QueryRoot { ".repeat(2000), " }".repeat(2000))),
            invalid_document(),
        ),
        case(
            "a mutation input nested 2,000 levels",
            query(officer, &format!("mutation {{ assessFees(input: {}) {{ code }} }}", nested_object(2000))),
            invalid_document(),
        ),
        case(
            "variables JSON nested 2,000 levels (beyond any JSON reader's depth)",
            nested_variables(None, "query($v: String) { __typename }", 2000),
            refused(400, "VALIDATION"),
        ),
        case(
            "variables JSON nested 100 levels where a string is declared",
            nested_variables(None, "query($v: String) { __typename }", 100),
            invalid_document(),
        ),
        // Fragment bombs and cycles.
        case("a fragment bomb of 26 levels", query(None, &fragment_bomb(26, "__typename", false)), invalid_document()),
        case("a fragment bomb of 30 levels", query(None, &fragment_bomb(30, "__typename", false)), invalid_document()),
        case(
            "a fragment bomb of 26 levels ending in a resolver, with a token",
            query(officer, &fragment_bomb(26, "me { role }", false)),
            invalid_document(),
        ),
        case(
            "a fragment bomb of 30 levels ending in a case read, with a token",
            query(officer, &fragment_bomb(30, &format!("case(code: \"{}\") {{ code }}", case_code(1)), false)),
            invalid_document(),
        ),
        case(
            "a fragment bomb of 30 levels through inline fragments",
            query(None, &fragment_bomb(30, "__typename", true)),
            invalid_document(),
        ),
        case(
            "a fragment cycle of two",
            query(None, "query { ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }"),
            invalid_document(),
        ),
        case(
            "a fragment spreading itself",
            query(None, "query { ...A } fragment A on QueryRoot { __typename ...A }"),
            invalid_document(),
        ),
        case(
            "a fragment cycle of three",
            query(
                None,
                "query { ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...C } fragment C on QueryRoot { __typename ...A }",
            ),
            invalid_document(),
        ),
        // Aliases: at most 20 top-level fields (docs/OPERATIONS.md#limits); a hundred aliases
        // inside one field are cheap; thousands are too costly anywhere.
        case("100 top-level aliases of __typename", query(None, &aliases(100, "__typename")), invalid_document()),
        case(
            "100 top-level aliases of a case read with its events",
            query(officer, &aliases(100, &format!("case(code: \"{}\") {{ code events {{ type }} }}", case_code(1)))),
            invalid_document(),
        ),
        case(
            "20 top-level aliases of a case read with its events",
            query(officer, &aliases(20, &format!("case(code: \"{}\") {{ code events {{ type }} }}", case_code(1)))),
            answered(),
        ),
        case(
            "100 aliases of a field inside a case read",
            query(officer, &format!("query {{ case(code: \"{}\") {{ {} }} }}", case_code(1), aliases_of(100, "code"))),
            answered(),
        ),
        case(
            "3,000 aliases of a field inside a case read",
            query(officer, &format!("query {{ case(code: \"{}\") {{ {} }} }}", case_code(1), aliases_of(3000, "code"))),
            invalid_document(),
        ),
        // Huge bodies, whatever the framing.
        case(
            "a 300 KB body with Content-Length",
            graphql_json(officer, &json!({ "query": format!("query {{ __typename }} #{}", "x".repeat(300 * KIB)) })),
            refused(413, "PAYLOAD_TOO_LARGE"),
        ),
        case(
            "a 300 KB body, chunked",
            graphql_json(officer, &json!({ "query": format!("query {{ __typename }} #{}", "x".repeat(300 * KIB)) }))
                .framing(Framing::Chunked),
            refused(413, "PAYLOAD_TOO_LARGE"),
        ),
        case(
            "a 10 MB body with Content-Length",
            graphql_bytes(officer, Some("application/json"), vec![b' '; 10 * MIB]),
            refused(413, "PAYLOAD_TOO_LARGE"),
        ),
        case(
            "a 10 MB body, chunked",
            graphql_bytes(officer, Some("application/json"), vec![b' '; 10 * MIB]).framing(Framing::Chunked),
            refused(413, "PAYLOAD_TOO_LARGE"),
        ),
        case(
            "a 10 MB Content-Length announced and never sent",
            graphql_bytes(officer, Some("application/json"), Vec::new())
                .framing(Framing::DeclaredLength(10 * MIB as u64)),
            refused(413, "PAYLOAD_TOO_LARGE"),
        ),
        case(
            "a 250 KB document just under the limit",
            query(None, &format!("query {{ __typename }} #{}", "x".repeat(GRAPHQL_LIMIT_BYTES - 6 * KIB))),
            answered(),
        ),
    ];

    // Errors never echo the request: a long marker in every place a message could quote.
    let echo: Vec<(&str, WireRequest, Expect, String)> = {
        let m = |tag: &str| marker(tag);
        let (m1, m2, m3, m4, m5, m6, m7, m8, m9, m10) = (
            m("SYNTAX"),
            m("FIELD"),
            m("ARGUMENT"),
            m("VARIABLE"),
            m("FRAGMENT"),
            m("CASECODE"),
            m("OPERATION"),
            m("TYPENAME"),
            m("JSONTEXT"),
            m("ENUMVALUE"),
        );
        vec![
            (
                "a syntax error after a long string",
                query(officer, &format!("query {{ case(code: \"{m1}\") {{ code ")),
                invalid_document(),
                m1,
            ),
            ("an unknown field with a long name", query(officer, &format!("query {{ {m2} }}")), invalid_document(), m2),
            (
                "an unknown argument with a long name",
                query(officer, &format!("query {{ case(code: \"x\", {m3}: 1) {{ code }} }}")),
                invalid_document(),
                m3,
            ),
            (
                "an undefined variable with a long name",
                query(officer, &format!("query {{ case(code: ${m4}) {{ code }} }}")),
                invalid_document(),
                m4,
            ),
            (
                "an unknown fragment with a long name",
                query(officer, &format!("query {{ ...{m5} }}")),
                invalid_document(),
                m5,
            ),
            (
                "a malformed case code that is long",
                query(officer, &format!("query {{ case(code: \"{m6}\") {{ code }} }}")),
                resolver_error("VALIDATION"),
                m6,
            ),
            (
                "an operation name that names no operation",
                graphql_json(officer, &json!({ "query": "query A { __typename }", "operationName": m7 })),
                invalid_document(),
                m7.clone(),
            ),
            (
                "a variable of an unknown type with a long name",
                query(officer, &format!("query($v: {m8}) {{ __typename }}")),
                invalid_document(),
                m8,
            ),
            (
                "invalid JSON after a long text",
                graphql_bytes(officer, Some("application/json"), format!("{{\"query\": \"{m9}")),
                refused(400, "VALIDATION"),
                m9,
            ),
            (
                "an enum value that does not exist, long",
                query(
                    officer,
                    &format!(
                        "mutation {{ recordPayment(input: {{ caseCode: \"{}\", amount: \"1000\", channel: {m10}, reference: \"x\", idempotencyKey: \"k\" }}) {{ paid }} }}",
                        case_code(1)
                    ),
                ),
                invalid_document(),
                m10,
            ),
        ]
    };
    cases.extend(echo.into_iter().map(|(name, request, expect, m)| case(name, request, expect.marker(&m))));

    // NUL and invalid UTF-8 in text that would be stored.
    cases.extend([
        case(
            "NUL in the payer's name (variables)",
            query_with(officer, ASSESS, assess_input(201, "NGUYỄN\u{0}VĂN A", "Chứng thực")),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in the procedure name (variables)",
            query_with(officer, ASSESS, assess_input(202, "NGUYỄN VĂN A", "Chứng\u{0}thực")),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in the payer's name (GraphQL escape)",
            query(
                officer,
                &format!(
                    "mutation {{ assessFees(input: {{ caseCode: \"{}\", agencyCode: \"{AGENCY}\", procedureName: \"x\", payer: {{ name: \"A\\u0000B\" }}, lines: [{{ feeCode: \"P-SAOY\", quantity: 1 }}] }}) {{ code }} }}",
                    case_code(203)
                ),
            ),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in the procedure name (GraphQL escape)",
            query(
                officer,
                &format!(
                    "mutation {{ assessFees(input: {{ caseCode: \"{}\", agencyCode: \"{AGENCY}\", procedureName: \"x\\u0000y\", payer: {{ name: \"A\" }}, lines: [{{ feeCode: \"P-SAOY\", quantity: 1 }}] }}) {{ code }} }}",
                    case_code(204)
                ),
            ),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in the payer's identity number",
            query_with(officer, ASSESS, {
                let mut input = assess_input(205, "A", "x");
                input["input"]["payer"]["idNumber"] = json!("0792010\u{0}08870");
                input
            }),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in the case code",
            query_with(officer, ASSESS, {
                let mut input = assess_input(206, "A", "x");
                input["input"]["caseCode"] = json!(format!("{}\u{0}", case_code(206)));
                input
            }),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in a payment's reference",
            query_with(officer, RECORD_PAYMENT, {
                let mut input = payment_input(1, json!("1000"), "nul-reference");
                input["input"]["reference"] = json!("BL\u{0}1");
                input
            }),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in a payment's idempotency key",
            query_with(officer, RECORD_PAYMENT, payment_input(1, json!("1000"), "nul\u{0}key")),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in a cancellation reason",
            query_with(
                officer,
                "mutation($c: String!, $r: String!) { cancelAssessment(caseCode: $c, reason: $r) { status } }",
                json!({ "c": case_code(2), "r": "nhầm\u{0}hồ sơ" }),
            ),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in an agency's name",
            query_with(
                admin,
                "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
                json!({ "input": { "code": "H34.22.9", "name": "UBND\u{0}X", "bankBin": "970415", "accountNumber": "1133666699",
                    "accountName": "UBND X", "retainsFees": true, "counters": ["quay-1"] } }),
            ),
            resolver_error("VALIDATION"),
        ),
        case(
            "NUL in a fee's name",
            query_with(
                admin,
                "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }",
                json!({ "input": { "agencyCode": AGENCY, "effectiveFrom": "2027-01-01", "fees": [
                    { "feeCode": "P-SAOY", "name": "Phí\u{0}sao y", "kind": "PHI", "unitAmount": "1000", "retentionPercent": "90" }
                ]}}),
            ),
            resolver_error("VALIDATION"),
        ),
        case(
            "a raw NUL inside a string of the document",
            query(officer, &format!("query {{ case(code: \"{}\u{0}\") {{ code }} }}", case_code(1))),
            invalid_document(),
        ),
        case("a raw NUL between tokens of the document", query(None, "query { __typename \u{0} }"), invalid_document()),
        case(
            "raw invalid UTF-8 in the document",
            graphql_bytes(officer, Some("application/json"), {
                let mut body = br#"{"query":"query { case(code: \""#.to_vec();
                body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
                body.extend_from_slice(br#"\") { code } }"}"#);
                body
            }),
            refused(400, "VALIDATION"),
        ),
        case(
            "raw invalid UTF-8 in the variables",
            graphql_bytes(officer, Some("application/json"), {
                let mut body = format!(r#"{{"query":"{}","variables":{{"input":{{"caseCode":"{}","agencyCode":"{AGENCY}","procedureName":"x","payer":{{"name":""#, ASSESS, case_code(207)).into_bytes();
                body.extend_from_slice(&[0x80, 0xbf, 0xff]);
                body.extend_from_slice(br#""},"lines":[{"feeCode":"P-SAOY","quantity":1}]}}}"#);
                body
            }),
            refused(400, "VALIDATION"),
        ),
        case(
            "an overlong UTF-8 NUL (C0 80) in the variables",
            graphql_bytes(officer, Some("application/json"), {
                let mut body = format!(r#"{{"query":"{}","variables":{{"input":{{"caseCode":"{}","agencyCode":"{AGENCY}","procedureName":"x","payer":{{"name":"A"#, ASSESS, case_code(208)).into_bytes();
                body.extend_from_slice(&[0xc0, 0x80]);
                body.extend_from_slice(br#""},"lines":[{"feeCode":"P-SAOY","quantity":1}]}}}"#);
                body
            }),
            refused(400, "VALIDATION"),
        ),
        case(
            "a lone surrogate escape in the variables",
            graphql_bytes(
                officer,
                Some("application/json"),
                format!(r#"{{"query":"{}","variables":{{"input":{{"caseCode":"{}","agencyCode":"{AGENCY}","procedureName":"x","payer":{{"name":"A\ud800B"}},"lines":[{{"feeCode":"P-SAOY","quantity":1}}]}}}}}}"#, ASSESS, case_code(209)),
            ),
            refused(400, "VALIDATION"),
        ),
    ]);

    // Amounts that are not a positive whole number of đồng.
    let variable_amounts = [
        ("the string \"2000.5\"", json!("2000.5")),
        ("the float 2000.5", json!(2000.5)),
        ("1e30", serde_json::from_str::<Value>("1e30").unwrap()),
        ("the integer 99999999999999999999", serde_json::from_str::<Value>("99999999999999999999").unwrap()),
        ("the string \"99999999999999999999\"", json!("99999999999999999999")),
        ("-3000", json!(-3000)),
        ("the string \"-3000\"", json!("-3000")),
        ("the string \"0\"", json!("0")),
        ("0", json!(0)),
        ("the string \"1e3\"", json!("1e3")),
        ("the string \"+3000\"", json!("+3000")),
        ("the string \"3,000\"", json!("3,000")),
        ("the string \"NaN\"", json!("NaN")),
        ("3000.0", serde_json::from_str::<Value>("3000.0").unwrap()),
    ];
    for (i, (what, amount)) in variable_amounts.into_iter().enumerate() {
        cases.push(case(
            format!("a payment of {what} (variables)"),
            query_with(officer, RECORD_PAYMENT, payment_input(1, amount, &format!("amount-variable-{i}"))),
            resolver_error("VALIDATION"),
        ));
    }
    for (i, literal) in ["2000.5", "1e30", "99999999999999999999", "-3000", "0"].into_iter().enumerate() {
        cases.push(case(
            format!("a payment of {literal} (literal in the document)"),
            query(
                officer,
                &format!(
                    "mutation {{ recordPayment(input: {{ caseCode: \"{}\", amount: {literal}, channel: CASH, reference: \"x\", idempotencyKey: \"amount-literal-{i}\" }}) {{ paid }} }}",
                    case_code(1)
                ),
            ),
            resolver_error("VALIDATION"),
        ));
    }
    cases.extend([
        case(
            "a fee schedule with a unit amount of 1000.5",
            query_with(
                admin,
                "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }",
                json!({ "input": { "agencyCode": AGENCY, "effectiveFrom": "2027-02-01", "fees": [
                    { "feeCode": "P-SAOY", "name": "Phí sao y", "kind": "PHI", "unitAmount": 1000.5, "retentionPercent": "90" }
                ]}}),
            ),
            resolver_error("VALIDATION"),
        ),
        case(
            "an assessment with a quantity of 1e30",
            query_with(officer, ASSESS, {
                let mut input = assess_input(210, "A", "x");
                input["input"]["lines"][0]["quantity"] = serde_json::from_str("1e30").unwrap();
                input
            }),
            resolver_error("VALIDATION"),
        ),
        case(
            "an assessment with a quantity of 99999999999",
            query_with(officer, ASSESS, {
                let mut input = assess_input(211, "A", "x");
                input["input"]["lines"][0]["quantity"] = json!(99_999_999_999_u64);
                input
            }),
            resolver_error("VALIDATION"),
        ),
    ]);

    // Duplicate JSON keys: which one counts is ambiguous, so neither does.
    cases.extend([
        case(
            "a body with \"query\" twice",
            graphql_bytes(
                admin,
                Some("application/json"),
                r#"{"query":"{ __typename }","query":"mutation { rebuildProjection(name: \"treasury\") { name } }"}"#,
            ),
            refused(400, "VALIDATION"),
        ),
        case(
            "a payment whose amount is given twice",
            graphql_bytes(
                officer,
                Some("application/json"),
                format!(
                    r#"{{"query":"{RECORD_PAYMENT}","variables":{{"input":{{"caseCode":"{}","amount":"1000","amount":"999000","channel":"CASH","reference":"x","idempotencyKey":"dup-amount"}}}}}}"#,
                    case_code(1)
                ),
            ),
            refused(400, "VALIDATION"),
        ),
        case(
            "a body with \"variables\" twice",
            graphql_bytes(
                officer,
                Some("application/json"),
                format!(
                    r#"{{"query":"{RECORD_PAYMENT}","variables":{{"input":{{"caseCode":"{0}","amount":"1000","channel":"CASH","reference":"x","idempotencyKey":"dup-variables"}}}},"variables":{{"input":{{"caseCode":"{0}","amount":"5000","channel":"CASH","reference":"x","idempotencyKey":"dup-variables"}}}}}}"#,
                    case_code(1)
                ),
            ),
            refused(400, "VALIDATION"),
        ),
    ]);

    // Content types: JSON only (a missing one is taken as JSON).
    let typename = json!({ "query": "{ __typename }" }).to_string();
    cases.extend([
        case(
            "a form-encoded body",
            graphql_bytes(None, Some("application/x-www-form-urlencoded"), "query=%7B__typename%7D"),
            refused(415, "VALIDATION"),
        ),
        case("a text/plain body", graphql_bytes(None, Some("text/plain"), typename.clone()), refused(415, "VALIDATION")),
        case(
            "a multipart body",
            graphql_bytes(
                None,
                Some("multipart/form-data; boundary=XyZ"),
                "--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{ __typename }\"}\r\n--XyZ--\r\n",
            ),
            refused(415, "VALIDATION"),
        ),
        case(
            "an application/graphql body",
            graphql_bytes(None, Some("application/graphql"), "{ __typename }"),
            refused(415, "VALIDATION"),
        ),
        case("a text/html body", graphql_bytes(None, Some("text/html"), typename.clone()), refused(415, "VALIDATION")),
        case("JSON without a Content-Type", graphql_bytes(None, None, typename.clone()), answered()),
        case(
            "JSON with a charset parameter",
            graphql_bytes(None, Some("application/json; charset=utf-8"), typename.clone()),
            answered(),
        ),
        case("JSON with an upper-case media type", graphql_bytes(None, Some("Application/JSON"), typename), answered()),
    ]);

    // Malformed requests.
    let malformed_bodies: [(&str, &str); 9] = [
        ("invalid JSON", r#"{"query": "#),
        ("a batch array", r#"[{"query":"{ __typename }"},{"query":"{ __typename }"}]"#),
        ("a number", "42"),
        ("null", "null"),
        ("a JSON string", r#""{ __typename }""#),
        ("an empty body", ""),
        ("an object without a query", r#"{"variables":{}}"#),
        ("a query that is a number", r#"{"query":42}"#),
        ("a query that is null", r#"{"query":null}"#),
    ];
    for (what, body) in malformed_bodies {
        cases.push(case(
            format!("{what} as the body"),
            graphql_bytes(officer, Some("application/json"), body),
            refused(400, "VALIDATION"),
        ));
    }
    cases.extend([
        case(
            "variables that are an array",
            graphql_bytes(None, Some("application/json"), r#"{"query":"{ __typename }","variables":[1,2]}"#),
            refused(400, "VALIDATION"),
        ),
        case(
            "two operations and no operation name",
            query(None, "query A { __typename } query B { __typename }"),
            invalid_document(),
        ),
        case(
            "a Content-Length shorter than the body",
            graphql_bytes(None, Some("application/json"), r#"{"query":"{ __typename }"}"#)
                .framing(Framing::DeclaredLength(10)),
            refused(400, "VALIDATION"),
        ),
        case(
            "broken chunked framing",
            graphql_bytes(None, Some("application/json"), "zz\r\n{\"query\"\r\n0\r\n\r\n")
                .header("Transfer-Encoding", "chunked")
                .framing(Framing::Unframed),
            status_only(400),
        ),
        case(
            "a request line that is not HTTP",
            WireRequest::new("GARBAGE", "\u{1}\u{2} /graphql HTTP/9.9 extra").framing(Framing::Unframed),
            status_only(400),
        ),
        case(
            "PUT instead of POST",
            WireRequest::new("PUT", "/graphql").body(r#"{"query":"{ __typename }"}"#),
            status_only(405),
        ),
    ]);

    // Tokens: each wrong in its own way, none answered with the list of roles.
    let token_cases: Vec<(&str, Vec<u8>)> = vec![
        ("a forged signature", format!("Bearer {}", who.forged).into_bytes()),
        ("an expired token", format!("Bearer {}", who.expired).into_bytes()),
        ("a token that is not a JWT", b"Bearer abc".to_vec()),
        ("a validly signed token with an unknown role", format!("Bearer {}", who.unknown_role).into_bytes()),
        ("a token signed with another key", format!("Bearer {}", who.other_key).into_bytes()),
        ("a validly signed token for an impossible agency", format!("Bearer {}", who.bad_agency).into_bytes()),
        ("a validly signed token from another issuer", format!("Bearer {}", who.wrong_issuer).into_bytes()),
        ("an unsigned token (alg none)", format!("Bearer {}", who.alg_none).into_bytes()),
        ("an empty bearer token", b"Bearer ".to_vec()),
        ("a Basic authorization", b"Basic YWRtaW46YWRtaW4=".to_vec()),
        ("an authorization header of invalid UTF-8", b"Bearer \xff\xfe\xfd".to_vec()),
    ];
    for (what, authorization) in token_cases {
        cases.push(case(
            what,
            WireRequest::new("POST", "/graphql")
                .header("Content-Type", "application/json")
                .header("Authorization", authorization)
                .body(json!({ "query": read_case }).to_string()),
            resolver_error("UNAUTHENTICATED"),
        ));
    }
    let long_token = format!("eyJ{}", marker("TOKEN").repeat(100));
    cases.push(case(
        "a 100 KB token",
        WireRequest::new("POST", "/graphql")
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Bearer {long_token}"))
            .body(json!({ "query": read_case }).to_string()),
        resolver_error("UNAUTHENTICATED").marker(&marker("TOKEN")),
    ));
    cases.push(case(
        "`me` with a forged token",
        query(Some(&who.forged), "query { me { role } }"),
        resolver_error("UNAUTHENTICATED"),
    ));

    // Introspection is for callers with a token; __typename is for anyone.
    cases.extend([
        case(
            "__schema without a token",
            query(None, "query { __schema { types { name } } }"),
            resolver_error("UNAUTHENTICATED"),
        ),
        case(
            "__type without a token",
            query(None, "query { __type(name: \"QueryRoot\") { name fields { name } } }"),
            resolver_error("UNAUTHENTICATED"),
        ),
        case(
            "__schema with a forged token",
            query(Some(&who.forged), "query { __schema { queryType { name } } }"),
            resolver_error("UNAUTHENTICATED"),
        ),
        case(
            "__schema inside a fragment, without a token",
            query(None, "query { ...F } fragment F on QueryRoot { __schema { types { name } } }"),
            resolver_error("UNAUTHENTICATED"),
        ),
        case(
            "__schema under an alias, without a token",
            query(None, "query { s: __schema { types { name } } }"),
            resolver_error("UNAUTHENTICATED"),
        ),
        case("__schema with a valid token", query(officer, "query { __schema { queryType { name } } }"), answered()),
        case("__typename without a token", query(None, "query { __typename }"), answered()),
    ]);
    cases
}

// ---------------------------------------------------------------------------------------------
// Webhook requests
// ---------------------------------------------------------------------------------------------

fn sepay_json(id: u64, amount: &str, content: &str) -> String {
    format!(
        r#"{{"id":{id},"gateway":"VietinBank","transactionDate":"2026-11-22 09:15:00","accountNumber":"{ACCOUNT}","code":null,"content":{},"transferType":"in","transferAmount":{amount},"accumulated":19077000,"subAccount":null,"referenceCode":"FT{id}"}}"#,
        json!(content)
    )
}

/// A SePay body whose `content` holds `raw` bytes exactly as given (not JSON-escaped).
fn sepay_raw_content(id: u64, raw: &[u8]) -> Vec<u8> {
    let text = sepay_json(id, "1000", "@@CONTENT@@");
    let (before, after) = text.split_once("@@CONTENT@@").unwrap();
    [before.as_bytes(), raw, after.as_bytes()].concat()
}

fn sepay_with_key(body: impl Into<Vec<u8>>) -> WireRequest {
    WireRequest::new("POST", "/webhooks/sepay")
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Apikey {SEPAY_KEY}"))
        .body(body)
}

fn sepay_signed(body: impl Into<Vec<u8>>, timestamp: i64, secret: &str) -> WireRequest {
    let body = body.into();
    let signature = bank_feed::sepay::sign(&body, timestamp, &Secret::new(secret));
    WireRequest::new("POST", "/webhooks/sepay")
        .header("Content-Type", "application/json")
        .header(bank_feed::sepay::SIGNATURE_HEADER, signature)
        .header(bank_feed::sepay::TIMESTAMP_HEADER, timestamp.to_string())
        .body(body)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn casso_json(id: u64, amount: &str, description: &str) -> String {
    format!(
        r#"{{"error":0,"data":{{"id":{id},"reference":"CS{id}","description":{},"amount":{amount},"runningBalance":25000000,"transactionDateTime":"2026-11-22 09:20:00","accountNumber":"{ACCOUNT}","bankName":"VietinBank","bankAbbreviation":"ICB","virtualAccountNumber":"","virtualAccountName":"","counterAccountName":"NGUYEN VAN A","counterAccountNumber":"8888888888","counterAccountBankId":"970415","counterAccountBankName":"VietinBank"}}}}"#,
        json!(description)
    )
}

/// Casso signs the parsed body; for a body that does not parse, any header will do.
fn casso_signed(body: impl Into<Vec<u8>>) -> WireRequest {
    let body = body.into();
    let header = bank_feed::casso::sign(&body, 1_763_780_400_000, &Secret::new(CASSO_KEY))
        .unwrap_or_else(|_| "t=1763780400000,v1=00".to_owned());
    WireRequest::new("POST", "/webhooks/casso")
        .header("Content-Type", "application/json")
        .header(bank_feed::casso::SIGNATURE_HEADER, header)
        .body(body)
}

fn payos_data(link: &str, amount: Value, description: &str) -> serde_json::Map<String, Value> {
    let data = json!({
        "orderCode": 123, "amount": amount, "description": description, "accountNumber": ACCOUNT,
        "reference": format!("TF{link}"), "transactionDateTime": "2026-11-22 09:25:00", "currency": "VND",
        "paymentLinkId": link, "code": "00", "desc": "Thành công", "counterAccountBankId": "",
        "counterAccountBankName": "", "counterAccountName": "", "counterAccountNumber": "",
        "virtualAccountName": "", "virtualAccountNumber": ""
    });
    data.as_object().unwrap().clone()
}

/// A payOS body signed over its `data`, serialised as payOS does.
fn payos_signed_body(data: &serde_json::Map<String, Value>, key: &str) -> String {
    let signature = bank_feed::payos::sign(data, &Secret::new(key));
    json!({ "code": "00", "desc": "success", "success": true, "data": data, "signature": signature }).to_string()
}

fn payos(body: impl Into<Vec<u8>>) -> WireRequest {
    WireRequest::new("POST", "/webhooks/payos").header("Content-Type", "application/json").body(body)
}

fn vnpay_params<'a>(
    txn: &'a str,
    amount_x100: &'a str,
    txn_ref: &'a str,
    order_info: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("vnp_Amount", amount_x100),
        ("vnp_BankCode", "NCB"),
        ("vnp_BankTranNo", "VNP14422574"),
        ("vnp_CardType", "ATM"),
        ("vnp_OrderInfo", order_info),
        ("vnp_PayDate", "20261122091500"),
        ("vnp_ResponseCode", "00"),
        ("vnp_TmnCode", "FEELEDG1"),
        ("vnp_TransactionNo", txn),
        ("vnp_TransactionStatus", "00"),
        ("vnp_TxnRef", txn_ref),
    ]
}

fn vnpay_signed(txn: &str, amount_x100: &str, txn_ref: &str, order_info: &str) -> String {
    bank_feed::vnpay::sign(&vnpay_params(txn, amount_x100, txn_ref, order_info), &Secret::new(VNPAY_SECRET))
}

fn vnpay(query: &str) -> WireRequest {
    WireRequest::new("GET", format!("/webhooks/vnpay?{query}")).framing(Framing::Unframed)
}

#[allow(clippy::too_many_lines, reason = "a table reads best in one place")]
fn webhook_cases() -> Vec<Case> {
    let paid = |n: u32| format!("MBVCB.3278907687.{}.CT tu 0123", case_code(n));
    let mut cases = Vec::new();

    // SePay: free text holding anything is still money, kept once.
    let body = sepay_json(7001, "1000", &format!("{}\u{0}", paid(101)));
    cases.push(case(
        "SePay content with a NUL escape, naming a case",
        sepay_with_key(body.clone()),
        credit("sepay", "sepay:7001".into(), Landing::Case(case_code(101)), Some(body.into_bytes())),
    ));
    let body = sepay_json(7002, "1000", "chuyen tien\u{0}le phi");
    cases.push(case(
        "SePay content with a NUL escape, naming no case",
        sepay_with_key(body.clone()),
        credit("sepay", "sepay:7002".into(), Landing::Unmatched, Some(body.into_bytes())),
    ));
    let raw = [b"MBVCB \xff\xfe ".as_slice(), case_code(102).as_bytes(), b" CT \xc3\x28"].concat();
    let body = sepay_raw_content(7003, &raw);
    let signed_raw_utf8 = sepay_signed(body.clone(), now(), SEPAY_HMAC);
    cases.push(case(
        "SePay content with raw invalid UTF-8, HMAC-signed, naming a case",
        signed_raw_utf8.clone(),
        credit("sepay", "sepay:7003".into(), Landing::Case(case_code(102)), Some(body)),
    ));
    let body = sepay_raw_content(7004, b"chuyen \xff tien \xc0\x80 le phi");
    cases.push(case(
        "SePay content with raw invalid UTF-8 and an overlong NUL, naming no case",
        sepay_with_key(body.clone()),
        credit("sepay", "sepay:7004".into(), Landing::Unmatched, Some(body)),
    ));
    let body = sepay_json(7005, "1000", &paid(103))
        .replace(r#""referenceCode":"FT7005""#, r#""referenceCode":"FT\u0000 7005""#);
    cases.push(case(
        "SePay reference code with a NUL escape",
        sepay_with_key(body.clone()),
        credit("sepay", "sepay:7005".into(), Landing::Case(case_code(103)), Some(body.into_bytes())),
    ));
    let body = sepay_json(7006, "1000", &paid(104)).replace(r#""code":null"#, r#""code":"\u0000""#);
    cases.push(case(
        "SePay detected code holding a NUL escape",
        sepay_with_key(body.clone()),
        credit("sepay", "sepay:7006".into(), Landing::Case(case_code(104)), Some(body.into_bytes())),
    ));
    let body = sepay_json(7007, "1000", "@@").replace(r#""@@""#, r#""le phi \ud800 ho so""#);
    cases.push(case(
        "SePay content with a lone surrogate escape",
        sepay_with_key(body.clone()),
        credit("sepay", "sepay:7007".into(), Landing::Unmatched, Some(body.into_bytes())),
    ));

    // SePay: a key given twice is ambiguous, even when signed.
    let duplicated = [
        ("transferAmount", r#""transferAmount":1000"#, r#""transferAmount":999000,"transferAmount":1000"#),
        ("id", r#""id":7101"#, r#""id":7101,"id":7199"#),
        ("content", r#""content":"x""#, r#""content":"x","content":"H34.22.6-261129-0105""#),
        (
            "accountNumber",
            r#""accountNumber":"113366668888""#,
            r#""accountNumber":"999","accountNumber":"113366668888""#,
        ),
        ("transferType", r#""transferType":"in""#, r#""transferType":"out","transferType":"in""#),
    ];
    for (i, (key, once, twice)) in duplicated.into_iter().enumerate() {
        let id = if key == "id" { 7101 } else { 7110 + i as u64 };
        let body = sepay_json(id, "1000", "x").replacen(once, twice, 1);
        assert!(body.contains(twice), "the duplicate was spliced in");
        cases.push(case(
            format!("a signed SePay body with {key} twice"),
            sepay_signed(body, now(), SEPAY_HMAC),
            provider_refused(400, "sepay"),
        ));
    }

    // SePay: amounts that are not a positive whole number of đồng.
    let amounts =
        ["2000.5", "1e30", "99999999999999999999", "-3000", "\"0\"", "0", "\"3000\"", "3000.0", "2e3", "null", "true"];
    for (i, amount) in amounts.into_iter().enumerate() {
        cases.push(case(
            format!("a SePay transferAmount of {amount}"),
            sepay_with_key(sepay_json(7200 + i as u64, amount, &paid(105))),
            provider_refused(400, "sepay"),
        ));
    }

    // SePay: framing, size, content type.
    let good = |id: u64| sepay_json(id, "1000", &paid(105));
    cases.extend([
        case(
            "a SePay body as text/plain",
            sepay_with_key(good(7301)).replace_header("Content-Type", "text/plain"),
            provider_refused(415, "sepay"),
        ),
        case(
            "a SePay body form-encoded",
            WireRequest::new("POST", "/webhooks/sepay")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Authorization", format!("Apikey {SEPAY_KEY}"))
                .body("id=7302&transferAmount=1000"),
            provider_refused(415, "sepay"),
        ),
        case("a 300 KB SePay body", sepay_with_key(vec![b' '; 300 * KIB]), provider_refused(413, "sepay")),
        case(
            "a 300 KB SePay body, chunked",
            sepay_with_key(vec![b' '; 300 * KIB]).framing(Framing::Chunked),
            provider_refused(413, "sepay"),
        ),
        case("a 10 MB SePay body", sepay_with_key(vec![b' '; 10 * MIB]), provider_refused(413, "sepay")),
        case(
            "a 10 MB SePay body, chunked",
            sepay_with_key(vec![b' '; 10 * MIB]).framing(Framing::Chunked),
            provider_refused(413, "sepay"),
        ),
    ]);

    // SePay: signatures.
    let wrong_secret = "not-the-sepay-hmac-secret-at-all";
    cases.extend([
        case(
            "a SePay signature an hour old",
            sepay_signed(good(7401), now() - 3600, SEPAY_HMAC),
            provider_refused(401, "sepay"),
        ),
        case(
            "a SePay signature an hour ahead",
            sepay_signed(good(7402), now() + 3600, SEPAY_HMAC),
            provider_refused(401, "sepay"),
        ),
        case(
            "a SePay signature of another body",
            {
                let mut request = sepay_signed(good(7403), now(), SEPAY_HMAC);
                request.body = good(7404).into_bytes();
                request
            },
            provider_refused(401, "sepay"),
        ),
        case(
            "a SePay signature made with another secret",
            sepay_signed(good(7405), now(), wrong_secret),
            provider_refused(401, "sepay"),
        ),
        case(
            "a SePay body with no signature or key",
            WireRequest::new("POST", "/webhooks/sepay").header("Content-Type", "application/json").body(good(7406)),
            provider_refused(401, "sepay"),
        ),
        case(
            "a SePay body with a wrong API key",
            WireRequest::new("POST", "/webhooks/sepay")
                .header("Content-Type", "application/json")
                .header("Authorization", "Apikey sepay-guessed-key")
                .body(good(7407)),
            provider_refused(401, "sepay"),
        ),
        case(
            "the SePay API key as a Bearer token",
            WireRequest::new("POST", "/webhooks/sepay")
                .header("Content-Type", "application/json")
                .header("Authorization", format!("Bearer {SEPAY_KEY}"))
                .body(good(7408)),
            provider_refused(401, "sepay"),
        ),
        case(
            "a SePay timestamp that is not a number",
            {
                let mut request = sepay_signed(good(7409), now(), SEPAY_HMAC);
                for (name, value) in &mut request.headers {
                    if name == bank_feed::sepay::TIMESTAMP_HEADER {
                        *value = b"yesterday".to_vec();
                    }
                }
                request
            },
            provider_refused(401, "sepay"),
        ),
        case(
            "a SePay signature that is not hex",
            {
                let mut request = sepay_signed(good(7410), now(), SEPAY_HMAC);
                for (name, value) in &mut request.headers {
                    if name == bank_feed::sepay::SIGNATURE_HEADER {
                        *value = b"zz-not-hex-\xff".to_vec();
                    }
                }
                request
            },
            provider_refused(401, "sepay"),
        ),
        case("a SePay body of invalid JSON", sepay_with_key(r#"{"id": 7411, "#), provider_refused(400, "sepay")),
        case("a SePay batch array", sepay_with_key(format!("[{}]", good(7412))), provider_refused(400, "sepay")),
        case(
            "a SePay body nested 2,000 levels",
            sepay_signed(format!(r#"{{"id":7413,"x":{}}}"#, "[".repeat(2000) + &"]".repeat(2000)), now(), SEPAY_HMAC),
            provider_refused(400, "sepay"),
        ),
        case(
            "a replay of a recorded SePay notification, same bytes and signature",
            signed_raw_utf8,
            Expect {
                status: 200,
                answer: Answer::Success(true),
                effect: Effect::NothingInbox { provider: "sepay", outcome: "duplicate" },
                marker: None,
            },
        ),
    ]);

    // Casso.
    let body = casso_json(8001, "1000", &format!("IBFT {}\u{0}", case_code(106)));
    cases.push(case(
        "Casso description with a NUL escape, naming a case",
        casso_signed(body.clone()),
        credit("casso", "casso:8001".into(), Landing::Case(case_code(106)), Some(body.into_bytes())),
    ));
    let body = casso_json(8002, "1000", "chuyen\u{0}tien");
    cases.push(case(
        "Casso description with a NUL escape, naming no case",
        casso_signed(body.clone()),
        credit("casso", "casso:8002".into(), Landing::Unmatched, Some(body.into_bytes())),
    ));
    let casso_good = |id: u64| casso_json(id, "1000", &case_code(105));
    cases.extend([
        case(
            "a Casso signature made with another key",
            {
                let body = casso_good(8101);
                let header =
                    bank_feed::casso::sign(body.as_bytes(), 1_763_780_400_000, &Secret::new("another-casso-key"))
                        .unwrap();
                WireRequest::new("POST", "/webhooks/casso")
                    .header("Content-Type", "application/json")
                    .header(bank_feed::casso::SIGNATURE_HEADER, header)
                    .body(body)
            },
            provider_refused(401, "casso"),
        ),
        case(
            "a Casso body without a signature",
            WireRequest::new("POST", "/webhooks/casso")
                .header("Content-Type", "application/json")
                .body(casso_good(8102)),
            provider_refused(401, "casso"),
        ),
        case(
            "a Casso signature of another body",
            {
                let mut request = casso_signed(casso_good(8103));
                request.body = casso_json(8103, "900000", &case_code(105)).into_bytes();
                request
            },
            provider_refused(401, "casso"),
        ),
        case(
            "a signed Casso body with data.amount twice",
            casso_signed(casso_good(8104).replacen(r#""amount":1000"#, r#""amount":999000,"amount":1000"#, 1)),
            provider_refused(400, "casso"),
        ),
        case(
            "a signed Casso body with data.id twice",
            casso_signed(casso_good(8105).replacen(r#""id":8105"#, r#""id":8199,"id":8105"#, 1)),
            provider_refused(400, "casso"),
        ),
    ]);
    for (i, amount) in ["2000.5", "1e30", "99999999999999999999", "\"3000\""].into_iter().enumerate() {
        cases.push(case(
            format!("a Casso amount of {amount}"),
            casso_signed(casso_json(8200 + i as u64, amount, &case_code(105))),
            provider_refused(400, "casso"),
        ));
    }
    cases.extend([
        case(
            "a Casso body as text/plain",
            casso_signed(casso_good(8301)).replace_header("Content-Type", "text/plain"),
            provider_refused(415, "casso"),
        ),
        case("a 300 KB Casso body", casso_signed(vec![b' '; 300 * KIB]), provider_refused(413, "casso")),
    ]);

    // payOS.
    let data = payos_data("link9001", json!(1000), &format!("{}\u{0}", case_code(107)));
    let body = payos_signed_body(&data, PAYOS_KEY);
    cases.push(case(
        "payOS description with a NUL escape, naming a case",
        payos(body.clone()),
        credit("payos", "payos:link9001:TFlink9001".into(), Landing::Case(case_code(107)), Some(body.into_bytes())),
    ));
    let data = payos_data("link9002", json!(1000), "VQR\u{0}IO123");
    let body = payos_signed_body(&data, PAYOS_KEY);
    cases.push(case(
        "payOS description with a NUL escape, naming no case",
        payos(body.clone()),
        credit("payos", "payos:link9002:TFlink9002".into(), Landing::Unmatched, Some(body.into_bytes())),
    ));
    let payos_good = |link: &str| payos_data(link, json!(1000), &case_code(105));
    cases.extend([
        case(
            "a payOS signature made with another key",
            payos(payos_signed_body(&payos_good("link9101"), "another-payos-checksum-key")),
            provider_refused(401, "payos"),
        ),
        case(
            "a payOS body without a signature",
            payos(
                json!({ "code": "00", "desc": "success", "success": true, "data": payos_good("link9102") }).to_string(),
            ),
            provider_refused(401, "payos"),
        ),
        case(
            "a signed payOS body with data.amount twice",
            payos(payos_signed_body(&payos_good("link9103"), PAYOS_KEY).replacen(
                r#""amount":1000"#,
                r#""amount":999000,"amount":1000"#,
                1,
            )),
            provider_refused(400, "payos"),
        ),
    ]);
    let payos_amounts: [(&str, Value); 5] = [
        ("2000.5", json!(2000.5)),
        ("1e30", serde_json::from_str("1e30").unwrap()),
        ("99999999999999999999", serde_json::from_str("99999999999999999999").unwrap()),
        ("-3000", json!(-3000)),
        ("\"3000\"", json!("3000")),
    ];
    for (i, (what, amount)) in payos_amounts.into_iter().enumerate() {
        let link = format!("link92{i:02}");
        cases.push(case(
            format!("a signed payOS amount of {what}"),
            payos(payos_signed_body(&payos_data(&link, amount, &case_code(105)), PAYOS_KEY)),
            provider_refused(400, "payos"),
        ));
    }
    cases.push(case(
        "a payOS body as text/plain",
        WireRequest::new("POST", "/webhooks/payos")
            .header("Content-Type", "text/plain")
            .body(payos_signed_body(&payos_good("link9301"), PAYOS_KEY)),
        provider_refused(415, "payos"),
    ));

    // VNPAY.
    let order_nul = vnpay_signed("9000101", "100000", &case_code(108), "Thanh toan\u{0}le phi");
    cases.extend([
        case(
            "a VNPAY vnp_TxnRef with %00",
            vnpay(&vnpay_signed("9000100", "100000", &format!("{}\u{0}", case_code(109)), "Thanh toan le phi")),
            credit("vnpay", "vnpay:9000100".into(), Landing::Either, None),
        ),
        case(
            "a VNPAY vnp_OrderInfo with %00",
            vnpay(&order_nul),
            credit("vnpay", "vnpay:9000101".into(), Landing::Case(case_code(108)), None),
        ),
        case(
            "a VNPAY notification with %00 in both, naming no case",
            vnpay(&vnpay_signed("9000102", "100000", "KHONG\u{0}CO", "le\u{0}phi")),
            credit("vnpay", "vnpay:9000102".into(), Landing::Unmatched, None),
        ),
        case(
            "a replay of a recorded VNPAY notification",
            vnpay(&order_nul),
            Expect {
                status: 200,
                answer: Answer::RspCode(&["02"]),
                effect: Effect::NothingInbox { provider: "vnpay", outcome: "duplicate" },
                marker: None,
            },
        ),
    ]);
    let signed = vnpay_signed("9000200", "100000", &case_code(105), "Thanh toan");
    let unsigned: String =
        signed.split('&').filter(|p| !p.starts_with("vnp_SecureHash=")).collect::<Vec<_>>().join("&");
    let forged = {
        let code = case_code(105);
        let params = vnpay_params("9000201", "100000", &code, "Thanh toan");
        bank_feed::vnpay::sign(&params, &Secret::new("ANOTHERVNPAYSECRET0123456789ABCDEF"))
    };
    cases.extend([
        case("a VNPAY notification without vnp_SecureHash", vnpay(&unsigned), vnpay_refused("97")),
        case("a VNPAY notification hashed with another secret", vnpay(&forged), vnpay_refused("97")),
        case(
            "a VNPAY notification with vnp_Amount repeated",
            vnpay(&format!("{signed}&vnp_Amount=90000000")),
            vnpay_refused("97"),
        ),
        case(
            "a VNPAY notification with vnp_Amount repeated first",
            vnpay(&format!("vnp_Amount=90000000&{signed}")),
            vnpay_refused("97"),
        ),
        case(
            "a VNPAY notification with vnp_SecureHash repeated",
            vnpay(&format!("{signed}&vnp_SecureHash=00")),
            vnpay_refused("97"),
        ),
        case(
            "a VNPAY notification with vnp_TxnRef repeated",
            vnpay(&format!("{signed}&vnp_TxnRef={}", case_code(106))),
            vnpay_refused("97"),
        ),
    ]);
    for (i, amount) in ["100000.5", "1e30", "9999999999999999999999", "-100000", "0"].into_iter().enumerate() {
        cases.push(case(
            format!("a signed VNPAY vnp_Amount of {amount}"),
            vnpay(&vnpay_signed(&format!("90003{i:02}"), amount, &case_code(105), "Thanh toan")),
            vnpay_refused("04"),
        ));
    }
    cases.push(case(
        "a POST to the VNPAY route",
        WireRequest::new("POST", "/webhooks/vnpay").body("{}"),
        status_only(405),
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_graphql_requests_are_refused_fast_with_a_code_and_append_nothing() {
    let mut failures = Vec::new();
    let mut count = 0;
    for app in apps().await {
        app.configure_agency(AGENCY).await;
        assess(&app, 1, 3).await;
        assess(&app, 2, 1).await;
        let cases = graphql_cases(&Callers::new(&app));
        count = cases.len();
        let started = Instant::now();
        failures.extend(run_table(&app, cases).await);
        eprintln!("[{}] {count} GraphQL cases in {} ms", app.backend(), started.elapsed().as_millis());
    }
    assert!(count >= 100, "the table has {count} cases");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webhook_requests_are_refused_in_the_providers_format_or_their_money_kept_once() {
    let mut failures = Vec::new();
    let mut count = 0;
    for app in apps().await {
        app.configure_agency(AGENCY).await;
        for n in 101..=109 {
            assess(&app, n, 1).await;
        }
        let cases = webhook_cases();
        count = cases.len();
        let started = Instant::now();
        failures.extend(run_table(&app, cases).await);
        eprintln!("[{}] {count} webhook cases in {} ms", app.backend(), started.elapsed().as_millis());
    }
    assert!(count >= 60, "the table has {count} cases");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The same document limits hold over `/graphql/ws`: a hostile subscription is refused at once
/// with a code, and the node keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_subscriptions_over_websocket_are_refused_fast_with_a_code() {
    let status = |code: &str| format!("caseStatus(code: \"{code}\") {{ status }}");
    let documents: Vec<(&str, String)> = vec![
        (
            "an argument nested 2,000 levels",
            format!("subscription {{ caseStatus(code: {}) {{ status }} }}", nested_list(2000)),
        ),
        ("selections nested 2,000 levels", format!("subscription {}{}", "{ a ".repeat(2000), "}".repeat(2000))),
        (
            "a fragment bomb of 30 levels",
            fragment_bomb(30, &status(&case_code(1)), false).replace("QueryRoot", "SubscriptionRoot").replacen(
                "query",
                "subscription",
                1,
            ),
        ),
        (
            "a fragment cycle",
            format!(
                "subscription {{ ...A }} fragment A on SubscriptionRoot {{ ...B }} fragment B on SubscriptionRoot {{ {} ...A }}",
                status(&case_code(1))
            ),
        ),
        ("a NUL in a string", format!("subscription {{ caseStatus(code: \"{}\u{0}\") {{ status }} }}", case_code(1))),
    ];
    let mut failures = Vec::new();
    for app in apps().await {
        app.configure_agency(AGENCY).await;
        assess(&app, 1, 1).await;
        let health = reqwest::Client::builder().timeout(HEALTH_DEADLINE).build().unwrap();
        for (what, document) in &documents {
            let started = Instant::now();
            let mut subscription =
                feeledger_tests::ws::Subscription::start(&app.address, &app.officer(AGENCY), document, json!({})).await;
            let answer = subscription.next(ANSWER_PATIENCE).await;
            let elapsed = started.elapsed();
            let code = answer.as_ref().and_then(|a| a["errors"][0]["extensions"]["code"].as_str());
            if code != Some("VALIDATION") || elapsed > ANSWER_FAST {
                failures.push(format!("[{}] {what}: {answer:?} after {} ms", app.backend(), elapsed.as_millis()));
            }
            if let Err(problem) = healthy(&health, &app).await {
                failures.push(format!("[{}] {what}: {problem}", app.backend()));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
