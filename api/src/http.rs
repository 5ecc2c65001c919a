//! The HTTP surface: GraphQL, health checks. Each route states who may call it.

use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::graphql::RequestId;

/// GraphQL documents are small; anything bigger is a mistake or an attack.
const GRAPHQL_BODY_LIMIT_BYTES: usize = 256 * 1024;
const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn router(state: AppState) -> Router {
    let request_id = header::HeaderName::from_static(REQUEST_ID_HEADER);
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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

async fn graphql(State(state): State<AppState>, headers: HeaderMap, request: GraphQLRequest) -> GraphQLResponse {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let authentication = state.tokens.authenticate(authorization);
    let request_id = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let request = request.into_inner().data(authentication).data(RequestId(request_id));
    state.schema.execute(request).await.into()
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers within a second.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(1), state.ledger.store().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: database check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database" })))
        }
        Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database timeout" })))
        }
    }
}
