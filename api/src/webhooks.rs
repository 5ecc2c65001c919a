//! `/webhooks/*`: payment notifications from SePay, Casso, payOS and VNPAY.
//!
//! Every request is checked once, before anything is stored: (1) size, content type and the
//! provider's key, (2) the provider's own signature, verified in constant time, (3) the body,
//! parsed strictly into one credit shape. A signed credit seen for the first time then takes
//! the short way: (4) payment intake records it on its case or in the unmatched queue, together
//! with the other new credits that arrive meanwhile (`payment_intake`'s group commit), and the
//! same commit stores the raw request in the inbox with its outcome — one commit for the
//! notification, shared with its group; (5) the provider gets the answer in its own format.
//! Every other request (refused, not a credit, a credit or case seen before, a group that
//! could not record it) goes the long way: the raw request is stored in the inbox first, then
//! its credit, if any, is recorded as above, and its row gets its outcome (in the same commit
//! as the money, when there is money).
//! No sender is answered before its request is stored; a request cut off before that (a crash)
//! was not answered, so its provider sends it again.
//! Webhooks are authenticated by signatures, never by bearer tokens.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use feeledger_infrastructure::bank_feed::{self, BankCredit, FeedError, Notification, Outcome, Provider, Secret};
use feeledger_infrastructure::inbox::{InboxOutcome, InboxResolution, InboxRow, ReceivedRequest, UnfinishedRequest};
use feeledger_infrastructure::ledger::LedgerError;
use feeledger_infrastructure::payment_intake::{Intake, IntakeError, Resolver};
use feeledger_infrastructure::settings::ProviderSecrets;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::app::AppState;
use crate::http::read_limited;

/// Notifications are small JSON documents; a larger body is stored (its first bytes) and refused.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Headers kept with a stored request. Secrets are redacted before storage.
const KEPT_HEADERS: [&str; 8] = [
    "content-type",
    "content-length",
    "user-agent",
    "x-forwarded-for",
    "x-request-id",
    "x-casso-signature",
    "x-sepay-signature",
    "x-sepay-timestamp",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/sepay", post(sepay))
        .route("/webhooks/casso", post(casso))
        .route("/webhooks/payos", post(payos))
        .route("/webhooks/vnpay", get(vnpay))
        // The body is read below with its own limit, so that an oversized one is still stored.
        .layer(DefaultBodyLimit::disable())
}

async fn sepay(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle(state, Provider::Sepay, method, uri, headers, body).await
}

async fn casso(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle(state, Provider::Casso, method, uri, headers, body).await
}

async fn payos(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle(state, Provider::Payos, method, uri, headers, body).await
}

async fn vnpay(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle(state, Provider::Vnpay, method, uri, headers, body).await
}

/// What a request says, once its provider's signature is verified: the one place that knows
/// how each provider signs. `now` is when the request arrived, so a request finished later by
/// the inbox recovery is judged as fresh as it was then.
fn verify_and_parse(
    provider: Provider,
    secrets: &ProviderSecrets,
    request: &RequestParts<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Notification, FeedError> {
    let RequestParts { headers, uri, raw, stored } = *request;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::Sepay => {
            match (header(bank_feed::sepay::SIGNATURE_HEADER), &secrets.sepay_hmac_secret, &secrets.sepay_api_key) {
                (Some(_), Some(secret), _) => bank_feed::sepay::verify_hmac(
                    header(bank_feed::sepay::SIGNATURE_HEADER),
                    header(bank_feed::sepay::TIMESTAMP_HEADER),
                    raw,
                    secret,
                    now,
                )?,
                (_, _, Some(key)) if stored => {
                    bank_feed::sepay::verify_api_key_fingerprint(header(bank_feed::sepay::AUTHORIZATION_HEADER), key)?;
                }
                (_, _, Some(key)) => {
                    bank_feed::sepay::verify_api_key(header(bank_feed::sepay::AUTHORIZATION_HEADER), key)?;
                }
                (_, Some(_), None) => return Err(FeedError::MissingSignature),
                (_, None, None) => return Err(FeedError::NotConfigured),
            }
            bank_feed::sepay::parse(raw)
        }
        Provider::Casso => {
            let key = configured(secrets.casso_checksum_key.as_ref())?;
            bank_feed::casso::verify(header(bank_feed::casso::SIGNATURE_HEADER), raw, key)?;
            bank_feed::casso::parse(raw)
        }
        Provider::Payos => {
            let key = configured(secrets.payos_checksum_key.as_ref())?;
            bank_feed::payos::verify(raw, key)?;
            bank_feed::payos::parse(raw)
        }
        Provider::Vnpay => {
            let key = configured(secrets.vnpay_hash_secret.as_ref())?;
            let query = uri.query().unwrap_or_default();
            bank_feed::vnpay::verify(query, key)?;
            bank_feed::vnpay::parse(query)
        }
    }
}

/// One request as the signature checks see it.
#[derive(Debug, Clone, Copy)]
struct RequestParts<'a> {
    headers: &'a HeaderMap,
    uri: &'a Uri,
    raw: &'a [u8],
    /// Read back from the inbox (its `Authorization` is a fingerprint), not live.
    stored: bool,
}

fn configured(secret: Option<&Secret>) -> Result<&Secret, FeedError> {
    secret.filter(|s| !s.is_empty()).ok_or(FeedError::NotConfigured)
}

async fn handle(
    state: AppState,
    provider: Provider,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received_at = state.clock.now();
    let (raw, truncated) = read_limited(body, BODY_LIMIT_BYTES).await;
    let request = ReceivedRequest {
        provider: provider.as_str(),
        method: method.to_string(),
        uri: uri.to_string(),
        headers: kept_headers(&headers),
        body: raw,
        body_truncated: truncated,
        received_at,
    };
    let request = Arc::new(request);
    let parts = RequestParts { headers: &headers, uri: &uri, raw: &request.body, stored: false };
    // Checked once, before anything is stored: a new credit takes the short way.
    let checked = match checked(&state, provider, received_at, &parts, truncated) {
        Ok(credit) => match recorded_with_its_row(&state, provider, &request, credit).await {
            Ok(response) => return response,
            Err(credit) => Ok(credit),
        },
        refused => refused,
    };
    // Inbox first: if the request cannot be stored, it is not accepted (the provider retries).
    let stored = match state.inbox.record(&request).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(%error, provider = provider.as_str(), "cannot store a bank notification");
            let unavailable = error.is_unavailable().then_some(StatusCode::SERVICE_UNAVAILABLE);
            return answer(provider, &Outcome::Internal, unavailable);
        }
    };
    let inbox_id = stored.id;
    let span = tracing::info_span!("webhook", provider = provider.as_str(), inbox.id = inbox_id);
    let inbox = InboxTarget { id: inbox_id, answered: true, agency_configurations: Some(stored.agency_configurations) };
    let handled = match checked {
        Ok(credit) => recording(&state, provider, received_at, credit, inbox).instrument(span.clone()).await,
        Err(refused) => refused,
    };
    let response = answer(provider, &handled.outcome, handled.status_override);
    let status = response.status().as_u16();
    finish(&state, provider, Some(inbox_id), &handled, Some(status)).instrument(span).await;
    response
}

/// The short way, for a signed credit seen for the first time (checked and parsed before it is
/// stored): its inbox row written with its outcome by the commit that records its money
/// (payment intake's group commit: one commit for the notification, shared with the others of
/// its group). The credit back, with nothing stored, when it does not take that way: the
/// request goes the long way, stored first. The sender is answered only once the row and the
/// money are stored, so a request cut off before that is retried by its provider.
async fn recorded_with_its_row(
    state: &AppState,
    provider: Provider,
    request: &Arc<ReceivedRequest>,
    credit: BankCredit,
) -> Result<Response, BankCredit> {
    let credit_id = credit.credit_id();
    let row = resolver(state, provider, &credit_id, InboxRow::Arriving(request.clone()), true);
    let span = tracing::info_span!("webhook", provider = provider.as_str(), credit.id = %credit_id);
    let intake = state.intake.receive_with_row(credit, request.received_at, row).instrument(span.clone()).await?;
    let handled = Handled { stored: true, ..Handled::from_intake(provider, &intake, credit_id) };
    let response = answer(provider, &handled.outcome, handled.status_override);
    finish(state, provider, None, &handled, Some(response.status().as_u16())).instrument(span).await;
    Ok(response)
}

/// What to write in the inbox for each outcome of credit `credit_id`, on `row`; `answered`:
/// whether its sender waits for the answer (not when the recovery finishes it).
fn resolver(state: &AppState, provider: Provider, credit_id: &str, row: InboxRow, answered: bool) -> Resolver {
    let (credit_id, clock) = (credit_id.to_owned(), state.clock.clone());
    Arc::new(move |intake: &Intake| {
        let handled = Handled::from_intake(provider, intake, credit_id.clone());
        let status = answered.then(|| answer(provider, &handled.outcome, handled.status_override).status().as_u16());
        Some(InboxResolution {
            row: row.clone(),
            outcome: handled.inbox_outcome,
            detail: handled.detail,
            credit_id: handled.credit_id,
            http_status: status,
            at: clock.now(),
        })
    })
}

/// What became of one request: the answer for its sender and the row for the inbox.
#[derive(Debug)]
struct Handled {
    outcome: Outcome,
    inbox_outcome: InboxOutcome,
    detail: Option<String>,
    credit_id: Option<String>,
    status_override: Option<StatusCode>,
    /// Already written on the inbox row, in the transaction that recorded the money.
    stored: bool,
}

/// The inbox row of the request being handled, whether its sender waits for the answer (not
/// when the recovery finishes it), and how many agency configurations the log held when the
/// row was stored (read with it; none for the recovery).
#[derive(Debug, Clone, Copy)]
struct InboxTarget {
    id: i64,
    answered: bool,
    agency_configurations: Option<i64>,
}

impl Handled {
    /// Writes this outcome on inbox row `inbox_id`.
    async fn store(
        &self,
        state: &AppState,
        inbox_id: i64,
        http_status: Option<u16>,
    ) -> Result<(), feeledger_infrastructure::storage::StoreError> {
        let (detail, credit_id) = (self.detail.as_deref(), self.credit_id.as_deref());
        state.inbox.resolve(inbox_id, self.inbox_outcome, detail, credit_id, http_status, state.clock.now()).await
    }

    fn new(outcome: Outcome, inbox_outcome: InboxOutcome, detail: Option<String>, credit_id: Option<String>) -> Self {
        Handled { outcome, inbox_outcome, detail, credit_id, status_override: None, stored: false }
    }

    /// What payment intake's answer means for the sender and the inbox.
    fn from_intake(provider: Provider, intake: &Intake, credit_id: String) -> Self {
        match intake {
            Intake::Recorded { case_code, .. } => Handled::new(
                Outcome::Accepted,
                InboxOutcome::Recorded,
                Some(format!("case {case_code}")),
                Some(credit_id),
            ),
            Intake::Unmatched { reason, .. } => {
                // The money is kept in the unmatched queue; VNPAY is told the order is unknown.
                let outcome = if provider == Provider::Vnpay { Outcome::NotFound } else { Outcome::Accepted };
                Handled::new(outcome, InboxOutcome::Unmatched, Some(reason.clone()), Some(credit_id))
            }
            Intake::Duplicate { .. } => {
                Handled::new(Outcome::Duplicate, InboxOutcome::Duplicate, None, Some(credit_id))
            }
        }
    }
}

/// Checks a request's size, content type and signature and parses it: its credit, or what it
/// gets instead (refused, or verified but not a credit).
fn checked(
    state: &AppState,
    provider: Provider,
    received_at: chrono::DateTime<chrono::Utc>,
    request: &RequestParts<'_>,
    truncated: bool,
) -> Result<BankCredit, Handled> {
    let refused = |why: String, status: StatusCode| Handled {
        status_override: Some(status),
        ..Handled::new(Outcome::Malformed(why.clone()), InboxOutcome::Rejected, Some(why), None)
    };
    if truncated {
        return Err(refused(
            format!("the body is larger than {BODY_LIMIT_BYTES} bytes"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ));
    }
    if provider != Provider::Vnpay && !is_json(request.headers) {
        return Err(refused("the body must be application/json".to_owned(), StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    match verify_and_parse(provider, &state.providers, request, received_at) {
        Err(error) => {
            tracing::warn!(%error, provider = provider.as_str(), "notification refused");
            let outcome = vnpay_amount_outcome(provider, &error).unwrap_or_else(|| error.outcome());
            let status = matches!(error, FeedError::NotConfigured).then_some(StatusCode::SERVICE_UNAVAILABLE);
            Err(Handled {
                status_override: status,
                ..Handled::new(outcome, InboxOutcome::Rejected, Some(error.to_string()), None)
            })
        }
        Ok(Notification::Ignored { provider_transaction_id, reason }) => {
            Err(Handled::new(Outcome::Accepted, InboxOutcome::Ignored, Some(reason), provider_transaction_id))
        }
        Ok(Notification::Credit(credit)) => Ok(credit),
    }
}

/// Records a checked credit whose request is stored (row `inbox`); its outcome is written in
/// the transaction that records the money, when there is one.
async fn recording(
    state: &AppState,
    provider: Provider,
    received_at: chrono::DateTime<chrono::Utc>,
    credit: BankCredit,
    inbox: InboxTarget,
) -> Handled {
    let credit_id = credit.credit_id();
    let resolution = resolver(state, provider, &credit_id, InboxRow::Stored(inbox.id), inbox.answered);
    match state.intake.receive_resolving(credit, received_at, inbox.agency_configurations, resolution).await {
        Ok((intake, stored)) => Handled { stored, ..Handled::from_intake(provider, &intake, credit_id) },
        Err(IntakeError::UnknownAccount(account)) => {
            let why = format!("account {account} is not a collection account of this service");
            Handled::new(Outcome::Malformed(why.clone()), InboxOutcome::Rejected, Some(why), Some(credit_id))
        }
        Err(error) => {
            tracing::error!(%error, "payment intake failed; the provider will retry");
            let unavailable =
                matches!(&error, IntakeError::Ledger(LedgerError::Store(store)) if store.is_unavailable());
            Handled {
                status_override: unavailable.then_some(StatusCode::SERVICE_UNAVAILABLE),
                ..Handled::new(Outcome::Internal, InboxOutcome::Failed, Some(error.to_string()), Some(credit_id))
            }
        }
    }
}

/// Stores the request's outcome (and what its sender was answered, if anyone was) on its row
/// `inbox_id`, unless it was written with the money.
async fn finish(
    state: &AppState,
    provider: Provider,
    inbox_id: Option<i64>,
    handled: &Handled,
    http_status: Option<u16>,
) {
    if handled.stored {
        // Written with the money, in one commit.
    } else if let Some(inbox_id) = inbox_id
        && let Err(error) = handled.store(state, inbox_id, http_status).await
    {
        tracing::error!(%error, "cannot record a notification's outcome");
    }
    crate::metrics::notification(provider.as_str(), handled.inbox_outcome.as_str());
    tracing::info!(outcome = handled.inbox_outcome.as_str(), http.status = http_status, "notification handled");
}

/// VNPAY has its own code for a bad amount ("04").
fn vnpay_amount_outcome(provider: Provider, error: &FeedError) -> Option<Outcome> {
    match error {
        FeedError::Malformed(message) if provider == Provider::Vnpay && message.contains("vnp_Amount") => {
            Some(Outcome::AmountMismatch)
        }
        _ => None,
    }
}

fn answer(provider: Provider, outcome: &Outcome, status_override: Option<StatusCode>) -> Response {
    let (status, body) = match provider {
        Provider::Sepay => bank_feed::sepay::reply(outcome),
        Provider::Casso => bank_feed::casso::reply(outcome),
        Provider::Payos => bank_feed::payos::reply(outcome),
        Provider::Vnpay => bank_feed::vnpay::reply(outcome),
    };
    let status =
        status_override.unwrap_or_else(|| StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // The database is unreachable (a failover) or the provider is not configured: retry.
        response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
    }
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The headers worth keeping, with the API key replaced by its fingerprint.
fn kept_headers(headers: &HeaderMap) -> Value {
    let mut kept = Map::new();
    for name in KEPT_HEADERS {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            kept.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
    if let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let fingerprint = bank_feed::sepay::credential_fingerprint(authorization);
        kept.insert("authorization".into(), Value::String(fingerprint));
    }
    Value::Object(kept)
}

// ---------------------------------------------------------------------------------------------
// Recovery of interrupted requests
// ---------------------------------------------------------------------------------------------

/// Unfinished requests examined in one pass (a pass reads at most this many batches).
const RECOVERY_BATCH: i64 = 100;
const RECOVERY_BATCHES_PER_PASS: usize = 10;
/// How often a node looks for unfinished requests after its first look at start-up.
const RECOVERY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Finishes requests whose handling was interrupted (a crash between storing a request and
/// storing its outcome leaves it `received`): at start-up, then every 30 s, each request left
/// `received` for longer than `after`. Every node may run it: recording is idempotent. It runs
/// among the service's tasks (`AppState::tasks`).
pub fn start_inbox_recovery(state: AppState, after: std::time::Duration) {
    let tasks = state.tasks.clone();
    tasks.spawn("inbox_recovery", async move {
        let mut interval = tokio::time::interval(RECOVERY_INTERVAL);
        loop {
            interval.tick().await;
            match recover_unfinished(&state, after).await {
                Ok(0) => {}
                Ok(finished) => tracing::info!(inbox.recovered = finished, "finished interrupted notifications"),
                Err(error) => tracing::warn!(%error, "inbox recovery failed; retrying later"),
            }
        }
    });
}

/// One pass of the recovery; returns how many requests it finished.
pub async fn recover_unfinished(
    state: &AppState,
    after: std::time::Duration,
) -> Result<usize, feeledger_infrastructure::storage::StoreError> {
    let before = state.clock.now() - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    let mut finished = 0;
    for _ in 0..RECOVERY_BATCHES_PER_PASS {
        let unfinished = state.inbox.unfinished(before, RECOVERY_BATCH).await?;
        let batch_len = unfinished.len();
        for request in unfinished {
            let span = tracing::info_span!("inbox_recovery", provider = %request.provider, inbox.id = request.id);
            recover(state, request).instrument(span).await;
            finished += 1;
        }
        if i64::try_from(batch_len).unwrap_or(i64::MAX) < RECOVERY_BATCH {
            break;
        }
    }
    Ok(finished)
}

/// Finishes one interrupted request from its stored bytes. If the provider's retry of the same
/// money was handled meanwhile, the request is `superseded`; otherwise it is handled as it
/// would have been, judged fresh as of when it arrived. Its sender is long gone, so nobody is
/// answered.
async fn recover(state: &AppState, request: UnfinishedRequest) {
    let Some(provider) = Provider::ALL.into_iter().find(|p| p.as_str() == request.provider) else {
        let why = format!("unknown provider {:?}", request.provider);
        let handled = Handled::new(Outcome::Malformed(why.clone()), InboxOutcome::Rejected, Some(why), None);
        return finish_recovered(state, None, request.id, &handled).await;
    };
    let headers = stored_headers(&request.headers);
    let uri: Uri = request.uri.parse().unwrap_or_default();
    let parts = RequestParts { headers: &headers, uri: &uri, raw: &request.body, stored: true };
    let credit_id = match verify_and_parse(provider, &state.providers, &parts, request.received_at) {
        Ok(Notification::Credit(credit)) => Some(credit.credit_id()),
        _ => None,
    };
    if let Some(credit_id) = &credit_id {
        match state.inbox.handled_elsewhere(credit_id, request.id).await {
            Ok(true) => {
                let detail = Some("interrupted; the provider's retry of the same credit was handled".to_owned());
                let handled =
                    Handled::new(Outcome::Duplicate, InboxOutcome::Superseded, detail, Some(credit_id.clone()));
                return finish_recovered(state, Some(provider), request.id, &handled).await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot look for a retry; the request stays unfinished for now");
                return;
            }
        }
    }
    let inbox = InboxTarget { id: request.id, answered: false, agency_configurations: None };
    let mut handled = match checked(state, provider, request.received_at, &parts, request.body_truncated) {
        Ok(credit) => recording(state, provider, request.received_at, credit, inbox).await,
        Err(refused) => refused,
    };
    if handled.inbox_outcome == InboxOutcome::Failed {
        // Still failing: leave it for the next pass, as the provider's retry would be.
        return;
    }
    if handled.inbox_outcome == InboxOutcome::Duplicate {
        // No other request carried it, so this one recorded it before the interruption.
        handled.inbox_outcome = InboxOutcome::Recorded;
        handled.detail = Some("recorded before an interruption".to_owned());
    }
    finish_recovered(state, Some(provider), request.id, &handled).await;
}

async fn finish_recovered(state: &AppState, provider: Option<Provider>, inbox_id: i64, handled: &Handled) {
    let provider_name = provider.map_or("unknown", Provider::as_str);
    let stored = if handled.stored { Ok(()) } else { handled.store(state, inbox_id, None).await };
    match stored {
        Ok(()) => {
            crate::metrics::inbox_recovered(provider_name, handled.inbox_outcome.as_str());
            tracing::info!(outcome = handled.inbox_outcome.as_str(), "interrupted notification finished");
        }
        Err(error) => tracing::warn!(%error, "cannot record a recovered notification's outcome"),
    }
}

/// The headers kept with a stored request, back as a header map.
fn stored_headers(kept: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Value::Object(fields) = kept {
        for (name, value) in fields {
            let (Ok(name), Some(Ok(value))) = (
                header::HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(axum::http::HeaderValue::from_str),
            ) else {
                continue;
            };
            headers.insert(name, value);
        }
    }
    headers
}
