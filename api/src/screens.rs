//! The two screens of a counter, served by the binary itself (assets embedded at compile time):
//! `/counter/{counter_id}` for the officer and `/display/{counter_id}` facing the citizen. Both
//! take their token from `?token=…` once, keep it in the tab's session storage, and talk to the
//! GraphQL API like any other client.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

const COUNTER_HTML: &str = include_str!("../web/counter.html");
const DISPLAY_HTML: &str = include_str!("../web/display.html");
const SCREENS_JS: &str = include_str!("../web/screens.js");
const SCREENS_CSS: &str = include_str!("../web/screens.css");
/// Our own graphql-transport-ws client: the screens are live with nothing but the binary.
const GRAPHQL_WS_JS: &str = include_str!("../web/graphql-transport-ws.js");

/// Scripts only from here; images only from here, so the QR a citizen scans can only be one this
/// service rendered.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    connect-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/counter/{counter_id}", get(|| async { page(COUNTER_HTML) }))
        .route("/display/{counter_id}", get(|| async { page(DISPLAY_HTML) }))
        .route("/assets/screens.js", get(|| async { asset("text/javascript; charset=utf-8", SCREENS_JS.as_bytes()) }))
        .route("/assets/labels.js", get(|| async { asset("text/javascript; charset=utf-8", LABELS_JS.as_bytes()) }))
        .route("/assets/screens.css", get(|| async { asset("text/css; charset=utf-8", SCREENS_CSS.as_bytes()) }))
        .route(
            "/assets/graphql-transport-ws.js",
            get(|| async { asset("text/javascript; charset=utf-8", GRAPHQL_WS_JS.as_bytes()) }),
        )
}

/// The Vietnamese labels for the scripts, generated once from `crate::labels`.
static LABELS_JS: std::sync::LazyLock<String> = std::sync::LazyLock::new(crate::labels::labels_js);

/// A page of the binary (the screens, the office pages) under the strict policy above.
pub(crate) fn page(html: &'static str) -> Response {
    page_with_policy(html, CONTENT_SECURITY_POLICY)
}

/// A page of the binary under its own content security policy; never cached, never referred.
pub(crate) fn page_with_policy(html: &'static str, policy: &'static str) -> Response {
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// A script, style sheet or image embedded in the binary.
pub(crate) fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
