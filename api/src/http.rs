//! The HTTP surface: GraphQL (HTTP and WebSocket), QR images, health checks. Each route states
//! who may call it.

use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::graphql::RequestId;
use crate::graphql::errors::ApiError;

/// GraphQL documents are small; anything bigger is a mistake or an attack.
const GRAPHQL_BODY_LIMIT_BYTES: usize = 256 * 1024;
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
        .merge(crate::webhooks::routes())
        .merge(crate::downloads::routes())
        .layer(DefaultBodyLimit::max(GRAPHQL_BODY_LIMIT_BYTES))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", http.method = %request.method(), http.path = %request.uri().path(), request.id = id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish())
}

/// GraphQL over HTTP. An answer with an UNAVAILABLE error (the database cannot be reached) is
/// sent as 503 with `Retry-After`, so load balancers and clients see the outage for what it is.
async fn graphql(State(state): State<AppState>, headers: HeaderMap, request: GraphQLRequest) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let authentication = state.tokens.authenticate(authorization);
    let request_id = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let request = request.into_inner().data(authentication).data(RequestId(request_id));
    let response = state.schema.execute(request).await;
    let unavailable_code = ApiError::Unavailable.code();
    let unavailable = response.errors.iter().any(|error| {
        let code = error.extensions.as_ref().and_then(|e| e.get("code"));
        matches!(code, Some(async_graphql::Value::String(code)) if code == unavailable_code)
    });
    let mut http = GraphQLResponse::from(response).into_response();
    if unavailable {
        *http.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        http.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    http
}

/// GraphQL subscriptions over WebSocket (graphql-transport-ws, and the legacy
/// subscriptions-transport-ws). The token comes in the `connection_init` payload as
/// `{"authorization": "Bearer <token>"}`; resolvers answer UNAUTHENTICATED without one.
async fn graphql_ws(State(state): State<AppState>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    let tokens = state.tokens.clone();
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let authorization = ["authorization", "Authorization"]
                        .iter()
                        .find_map(|key| payload.get(*key).and_then(|v| v.as_str()));
                    let mut data = async_graphql::Data::default();
                    data.insert(tokens.authenticate(authorization));
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
    if store.backend() == feeledger_infrastructure::event_store::Backend::Postgres && primary.is_none() {
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
