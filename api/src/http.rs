//! The HTTP surface: GraphQL (HTTP and WebSocket), QR images, health checks. Each route states
//! who may call it.

use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::graphql::RequestId;
use crate::graphql::errors::ApiError;
use crate::rate_limit::ClientAddress;

/// GraphQL documents are small; anything bigger is a mistake or an attack. The same bound holds
/// for every other route that takes a body (webhooks have a smaller one of their own) and for
/// one WebSocket message.
pub const BODY_LIMIT_BYTES: usize = 256 * 1024;
/// How much of a framework's plain-text error is kept when it is turned into JSON.
const PLAIN_ERROR_LIMIT_BYTES: usize = 4 * 1024;
const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn router(state: AppState) -> Router {
    let request_id = header::HeaderName::from_static(REQUEST_ID_HEADER);
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/qr/{file}", get(qr_image))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::screens::routes())
        .merge(crate::display_feed::routes())
        .merge(crate::webhooks::routes())
        .merge(crate::downloads::routes())
        .merge(crate::pay_page::routes())
        .merge(crate::oversight_reports::routes())
        .merge(crate::office_pages::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(refuse_oversized_bodies))
        .layer(middleware::from_fn_with_state(state.clone(), client_address))
        .layer(middleware::map_response(errors_as_json))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", http.method = %request.method(), http.path = %request.uri().path(), request.id = id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Records where the request came from ([`ClientAddress`]) for the public rate limits: the TCP
/// peer, or behind our own proxy (`trust_forwarded_for`) the last `X-Forwarded-For` entry, the
/// one that proxy appended.
async fn client_address(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    let forwarded = state
        .trust_forwarded_for
        .then(|| {
            let header = request.headers().get("x-forwarded-for")?.to_str().ok()?;
            header.rsplit(',').next()?.trim().parse::<std::net::IpAddr>().ok()
        })
        .flatten();
    let address = forwarded.or(peer).unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    request.extensions_mut().insert(ClientAddress(address));
    next.run(request).await
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish())
}

/// GraphQL over HTTP: a JSON body `{"query", "operationName", "variables"}` of at most
/// [`BODY_LIMIT_BYTES`]. A body that is too large, not JSON or not one request is refused here
/// with a JSON error and a code; the document itself is checked by the schema's limits
/// (`graphql::limits`). An answer with an UNAVAILABLE error (the database cannot be reached) is
/// sent as 503 with `Retry-After`, so load balancers and clients see the outage for what it is.
async fn graphql(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddress>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match graphql_request(&headers, body).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let authentication = state.tokens.authenticate(authorization);
    let request_id = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let request = request.data(authentication).data(RequestId(request_id)).data(client);
    let response = state.schema.execute(request).await;
    // A public field refused by the rate limit: 429 with Retry-After, the body still GraphQL's.
    let rate_limited = response.errors.iter().find_map(|error| {
        let extensions = error.extensions.as_ref()?;
        match (extensions.get("code"), extensions.get("retryAfter")) {
            (Some(async_graphql::Value::String(code)), Some(async_graphql::Value::Number(seconds)))
                if code == "RATE_LIMITED" =>
            {
                seconds.as_u64()
            }
            _ => None,
        }
    });
    let unavailable_code = ApiError::Unavailable.code();
    let unavailable = response.errors.iter().any(|error| {
        let code = error.extensions.as_ref().and_then(|e| e.get("code"));
        matches!(code, Some(async_graphql::Value::String(code)) if code == unavailable_code)
    });
    let mut http = GraphQLResponse::from(response).into_response();
    if let Some(seconds) = rate_limited {
        *http.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            http.headers_mut().insert(header::RETRY_AFTER, value);
        }
    } else if unavailable {
        *http.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        http.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    http
}

/// Reads one GraphQL request from an HTTP body, or the error response that refuses it.
async fn graphql_request(headers: &HeaderMap, body: Body) -> Result<async_graphql::Request, Response> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or_default());
    let is_json = content_type.is_none_or(|value| {
        let mime = value.split(';').next().unwrap_or_default().trim();
        mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("application/graphql+json")
    });
    if !is_json {
        let message = "a GraphQL request is a JSON body: send Content-Type: application/json";
        return Err(graphql_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "VALIDATION", message));
    }
    let (bytes, too_large) = read_limited(body, BODY_LIMIT_BYTES).await;
    if too_large {
        return Err(too_large_response(true));
    }
    let invalid =
        |why: String| graphql_error(StatusCode::BAD_REQUEST, "VALIDATION", &crate::graphql::limits::short(&why));
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("the body is not UTF-8".into()))?;
    // A repeated key ("query" or an amount in "variables" twice) is ambiguous: refused.
    let value = feeledger_infrastructure::strict_json::parse(text)
        .map_err(|error| invalid(format!("the body is not valid JSON: {error}")))?;
    match &value {
        Value::Object(fields) if fields.get("query").is_some_and(Value::is_string) => {}
        Value::Object(_) => return Err(invalid("the body has no \"query\" string".into())),
        Value::Array(_) => return Err(invalid("send one request per HTTP request; batches are not accepted".into())),
        _ => return Err(invalid("the body must be a JSON object with a \"query\"".into())),
    }
    serde_json::from_value(value).map_err(|error| invalid(format!("the request is not a GraphQL request: {error}")))
}

/// Reads at most `limit` bytes of a body; `true` when it was longer (the rest is not read). A
/// body that breaks off is taken as it came: parsing it will fail.
pub(crate) async fn read_limited(body: Body, limit: usize) -> (Vec<u8>, bool) {
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

/// A GraphQL-shaped error: `{"errors": [{"message", "extensions": {"code"}}]}`.
fn graphql_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))).into_response()
}

/// The error shape of the other routes: `{"error": CODE, "message"}`.
fn route_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn too_large_response(graphql: bool) -> Response {
    let message = format!("the request body is larger than {BODY_LIMIT_BYTES} bytes");
    let status = StatusCode::PAYLOAD_TOO_LARGE;
    if graphql {
        graphql_error(status, "PAYLOAD_TOO_LARGE", &message)
    } else {
        route_error(status, "PAYLOAD_TOO_LARGE", &message)
    }
}

/// Refuses a body announced larger than the limit before anything reads it. Webhooks are left
/// to their own smaller limit, because they store the first bytes of what they refuse.
async fn refuse_oversized_bodies(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let path = request.uri().path();
    let limit = u64::try_from(BODY_LIMIT_BYTES).unwrap_or(u64::MAX);
    if announced.is_some_and(|length| length > limit) && !path.starts_with("/webhooks/") {
        return too_large_response(path == "/graphql");
    }
    next.run(request).await
}

/// Every error leaves as JSON with a code: the framework's own rejections (a malformed query
/// string, a wrong method, a body over the limit) come as plain text and are wrapped here.
async fn errors_as_json(uri: axum::http::Uri, response: Response) -> Response {
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !is_error || content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let text = match axum::body::to_bytes(response.into_body(), PLAIN_ERROR_LIMIT_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let message = crate::graphql::limits::short(&message);
    let code = match status {
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
        StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
        status if status.is_client_error() => "VALIDATION",
        _ => "INTERNAL",
    };
    let mut wrapped = if uri.path() == "/graphql" {
        graphql_error(status, code, &message)
    } else {
        route_error(status, code, &message)
    };
    if let Some(retry_after) = retry_after {
        wrapped.headers_mut().insert(header::RETRY_AFTER, retry_after);
    }
    wrapped
}

async fn not_found() -> Response {
    route_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such page or endpoint")
}

async fn method_not_allowed() -> Response {
    route_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "this endpoint does not take that method")
}

/// Each WebSocket's read buffer to start with (see `graphql_ws`): a screen sends a handful of
/// messages of a few hundred bytes (`connection_init`, `subscribe`, `pong`), so 1 KiB; a
/// larger message still arrives, the buffer growing to it. Measured with 10,000 open screens
/// (docs/BENCHMARKS.md, "10,000 screens").
pub(crate) const WS_READ_BUFFER_BYTES: usize = 1024;

/// GraphQL subscriptions over WebSocket (graphql-transport-ws, and the legacy
/// subscriptions-transport-ws). The token comes in the `connection_init` payload as
/// `{"authorization": "Bearer <token>"}`; resolvers answer UNAUTHENTICATED without one.
async fn graphql_ws(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddress>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let tokens = state.tokens.clone();
    let schema = state.schema.clone();
    upgrade
        .max_message_size(BODY_LIMIT_BYTES)
        .max_frame_size(BODY_LIMIT_BYTES)
        // tungstenite zero-fills its whole read buffer (128 KiB by default) on the first read,
        // so each open screen would hold 128 KiB: 1.3 GB for 10,000 screens. A screen sends a
        // few small messages; a larger one still arrives (the buffer grows to the message).
        // The write buffer is not preallocated: it grows to the largest message sent (a
        // display, ~1–2 KiB) and is written out at once.
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let authorization = ["authorization", "Authorization"]
                        .iter()
                        .find_map(|key| payload.get(*key).and_then(|v| v.as_str()));
                    let mut data = async_graphql::Data::default();
                    data.insert(tokens.authenticate(authorization));
                    data.insert(client);
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

/// `GET /qr/{qr_id}.svg` and `.png`. Unauthenticated on purpose: the citizen's screen shows the
/// image with a plain `<img>`, and the id is a random UUID, known only to whoever saw the QR.
/// A QR never changes, so it may be cached for its whole life.
async fn qr_image(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let not_found =
        || (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found", "message": "no such QR" }))).into_response();
    let Some((id, extension)) = file.rsplit_once('.') else { return not_found() };
    let Ok(qr_id) = id.parse::<uuid::Uuid>() else { return not_found() };
    let event = match state.ledger.store().qr_issued(qr_id).await {
        Ok(Some(event)) => event,
        Ok(None) => return not_found(),
        Err(error) => {
            tracing::warn!(%error, qr.id = %qr_id, "QR lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "unavailable" }))).into_response();
        }
    };
    let Some(payload) = event.payload.get("payload").and_then(|p| p.as_str()) else { return not_found() };
    let rendered = match extension {
        "svg" => crate::qr_image::svg(payload).map(|svg| ("image/svg+xml", svg.into_bytes())),
        "png" => crate::qr_image::png(payload, 8).map(|png| ("image/png", png)),
        _ => return not_found(),
    };
    match rendered {
        Ok((content_type, body)) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400, immutable"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{qr_id}-{extension}\"")) {
                headers.insert(header::ETAG, etag);
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, qr.id = %qr_id, "QR rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "internal" }))).into_response()
        }
    }
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Prometheus metrics (text format). Unauthenticated like the health checks, and like them
/// not for the public: the reverse proxy serves it to the internal network only.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = crate::metrics::render(&state).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

/// Readiness: the database answers within a second. With several PostgreSQL hosts, also which
/// one is the primary, and 503 while none accepts writes (a failover under way).
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.ledger.store();
    let primary = store.primary_host();
    if store.backend() == feeledger_infrastructure::storage::Backend::Postgres && primary.is_none() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "no primary" })));
    }
    match tokio::time::timeout(Duration::from_secs(1), store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready", "primary": primary }))),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: database check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database" })))
        }
        Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database timeout" })))
        }
    }
}
