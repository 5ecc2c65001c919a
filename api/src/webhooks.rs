//! `/webhooks/*`: payment notifications from SePay, Casso, payOS and VNPAY.
//!
//! Every request goes the same way: (1) the raw request is stored in the inbox, before anything
//! reads it; (2) size, content type and the provider's key are checked; (3) the provider's own
//! signature is verified, in constant time; (4) the body is parsed strictly into one credit
//! shape; (5) payment intake records it on its case or in the unmatched queue, exactly once;
//! (6) the inbox row gets its outcome; (7) the provider gets the answer in its own format.
//! Webhooks are authenticated by signatures, never by bearer tokens.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use feeledger_infrastructure::bank_feed::{self, FeedError, Notification, Outcome, Provider, Secret};
use feeledger_infrastructure::inbox::{InboxOutcome, ReceivedRequest};
use feeledger_infrastructure::payment_intake::{Intake, IntakeError};
use feeledger_infrastructure::settings::ProviderSecrets;
use futures::StreamExt;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::app::AppState;

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
    let verify_and_parse = |secrets: &ProviderSecrets, headers: &HeaderMap, raw: &[u8]| {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let now = chrono::Utc::now();
        match (header(bank_feed::sepay::SIGNATURE_HEADER), &secrets.sepay_hmac_secret, &secrets.sepay_api_key) {
            (Some(_), Some(secret), _) => bank_feed::sepay::verify_hmac(
                header(bank_feed::sepay::SIGNATURE_HEADER),
                header(bank_feed::sepay::TIMESTAMP_HEADER),
                raw,
                secret,
                now,
            )?,
            (_, _, Some(key)) => bank_feed::sepay::verify_api_key(header(bank_feed::sepay::AUTHORIZATION_HEADER), key)?,
            (_, Some(_), None) => return Err(FeedError::MissingSignature),
            (_, None, None) => return Err(FeedError::NotConfigured),
        }
        bank_feed::sepay::parse(raw)
    };
    handle(state, Provider::Sepay, method, uri, headers, body, verify_and_parse).await
}

async fn casso(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let verify_and_parse = |secrets: &ProviderSecrets, headers: &HeaderMap, raw: &[u8]| {
        let key = configured(secrets.casso_checksum_key.as_ref())?;
        let signature = headers.get(bank_feed::casso::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        bank_feed::casso::verify(signature, raw, key)?;
        bank_feed::casso::parse(raw)
    };
    handle(state, Provider::Casso, method, uri, headers, body, verify_and_parse).await
}

async fn payos(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let verify_and_parse = |secrets: &ProviderSecrets, _: &HeaderMap, raw: &[u8]| {
        let key = configured(secrets.payos_checksum_key.as_ref())?;
        bank_feed::payos::verify(raw, key)?;
        bank_feed::payos::parse(raw)
    };
    handle(state, Provider::Payos, method, uri, headers, body, verify_and_parse).await
}

async fn vnpay(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let query = uri.query().unwrap_or_default().to_owned();
    let verify_and_parse = move |secrets: &ProviderSecrets, _: &HeaderMap, _: &[u8]| {
        let key = configured(secrets.vnpay_hash_secret.as_ref())?;
        bank_feed::vnpay::verify(&query, key)?;
        bank_feed::vnpay::parse(&query)
    };
    handle(state, Provider::Vnpay, method, uri, headers, body, verify_and_parse).await
}

fn configured(secret: Option<&Secret>) -> Result<&Secret, FeedError> {
    secret.filter(|s| !s.is_empty()).ok_or(FeedError::NotConfigured)
}

/// Why a request was refused before its signature was looked at.
enum Refusal {
    TooLarge,
    WrongContentType,
}

async fn handle(
    state: AppState,
    provider: Provider,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    verify_and_parse: impl FnOnce(&ProviderSecrets, &HeaderMap, &[u8]) -> Result<Notification, FeedError>,
) -> Response {
    let received_at = state.clock.now();
    let (raw, truncated) = read_limited(body, BODY_LIMIT_BYTES).await;
    let request = ReceivedRequest {
        provider: provider.as_str(),
        method: method.to_string(),
        uri: uri.to_string(),
        headers: kept_headers(&headers),
        body: raw.clone(),
        body_truncated: truncated,
        received_at,
    };
    // Inbox first: if the request cannot be stored, it is not accepted (the provider retries).
    let inbox_id = match state.inbox.record(&request).await {
        Ok(id) => id,
        Err(error) => {
            tracing::error!(%error, provider = provider.as_str(), "cannot store a bank notification");
            return answer(provider, &Outcome::Internal, None);
        }
    };
    let span = tracing::info_span!("webhook", provider = provider.as_str(), inbox.id = inbox_id);
    process(state, provider, inbox_id, received_at, headers, raw, truncated, verify_and_parse).instrument(span).await
}

#[allow(clippy::too_many_arguments, reason = "one request's parts, passed once")]
async fn process(
    state: AppState,
    provider: Provider,
    inbox_id: i64,
    received_at: chrono::DateTime<chrono::Utc>,
    headers: HeaderMap,
    raw: Vec<u8>,
    truncated: bool,
    verify_and_parse: impl FnOnce(&ProviderSecrets, &HeaderMap, &[u8]) -> Result<Notification, FeedError>,
) -> Response {
    let refusal = if truncated {
        Some(Refusal::TooLarge)
    } else if provider != Provider::Vnpay && !is_json(&headers) {
        Some(Refusal::WrongContentType)
    } else {
        None
    };
    let (outcome, inbox_outcome, detail, credit_id, status_override) = match refusal {
        Some(Refusal::TooLarge) => {
            let why = format!("the body is larger than {BODY_LIMIT_BYTES} bytes");
            (
                Outcome::Malformed(why.clone()),
                InboxOutcome::Rejected,
                Some(why),
                None,
                Some(StatusCode::PAYLOAD_TOO_LARGE),
            )
        }
        Some(Refusal::WrongContentType) => {
            let why = "the body must be application/json".to_owned();
            (
                Outcome::Malformed(why.clone()),
                InboxOutcome::Rejected,
                Some(why),
                None,
                Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            )
        }
        None => match verify_and_parse(&state.providers, &headers, &raw) {
            Err(error) => {
                tracing::warn!(%error, "notification refused");
                let outcome = vnpay_amount_outcome(provider, &error).unwrap_or_else(|| error.outcome());
                let status = matches!(error, FeedError::NotConfigured).then_some(StatusCode::SERVICE_UNAVAILABLE);
                (outcome, InboxOutcome::Rejected, Some(error.to_string()), None, status)
            }
            Ok(Notification::Ignored { provider_transaction_id, reason }) => {
                (Outcome::Accepted, InboxOutcome::Ignored, Some(reason), provider_transaction_id, None)
            }
            Ok(Notification::Credit(credit)) => {
                let credit_id = credit.credit_id();
                match state.intake.receive(credit, received_at).await {
                    Ok(Intake::Recorded { case_code, .. }) => (
                        Outcome::Accepted,
                        InboxOutcome::Recorded,
                        Some(format!("case {case_code}")),
                        Some(credit_id),
                        None,
                    ),
                    Ok(Intake::Unmatched { reason, .. }) => {
                        // The money is kept in the unmatched queue; VNPAY is told the order is unknown.
                        let outcome = if provider == Provider::Vnpay { Outcome::NotFound } else { Outcome::Accepted };
                        (outcome, InboxOutcome::Unmatched, Some(reason), Some(credit_id), None)
                    }
                    Ok(Intake::Duplicate { .. }) => {
                        (Outcome::Duplicate, InboxOutcome::Duplicate, None, Some(credit_id), None)
                    }
                    Err(IntakeError::UnknownAccount(account)) => {
                        let why = format!("account {account} is not a collection account of this service");
                        (Outcome::Malformed(why.clone()), InboxOutcome::Rejected, Some(why), Some(credit_id), None)
                    }
                    Err(error) => {
                        tracing::error!(%error, "payment intake failed; the provider will retry");
                        (Outcome::Internal, InboxOutcome::Failed, Some(error.to_string()), Some(credit_id), None)
                    }
                }
            }
        },
    };
    let response = answer(provider, &outcome, status_override);
    let status = response.status().as_u16();
    let resolved = state.inbox.resolve(
        inbox_id,
        inbox_outcome,
        detail.as_deref(),
        credit_id.as_deref(),
        status,
        state.clock.now(),
    );
    if let Err(error) = resolved.await {
        tracing::error!(%error, "cannot record a notification's outcome");
    }
    crate::metrics::notification(provider.as_str(), inbox_outcome.as_str());
    tracing::info!(outcome = inbox_outcome.as_str(), http.status = status, "notification handled");
    response
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
    (status, Json(body)).into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads at most `limit` bytes; `true` when the body was longer (the rest is not read).
async fn read_limited(body: Body, limit: usize) -> (Vec<u8>, bool) {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        let room = limit.saturating_sub(bytes.len());
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return (bytes, true);
        }
        bytes.extend_from_slice(&chunk);
    }
    (bytes, false)
}

/// The headers worth keeping, with the API key replaced by its scheme.
fn kept_headers(headers: &HeaderMap) -> Value {
    let mut kept = Map::new();
    for name in KEPT_HEADERS {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            kept.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
    if let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let scheme = authorization.split_whitespace().next().unwrap_or_default();
        kept.insert("authorization".into(), Value::String(format!("{scheme} ***")));
    }
    Value::Object(kept)
}
