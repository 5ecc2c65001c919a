//! The office pages, served by the binary: `/finance`, `/oversight` and `/admin`. Each is a
//! static page and a small script (`/assets/office.js`) that takes the token from `?token=…`
//! once, keeps it in the tab's session storage, and calls the GraphQL API like any client.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

const FINANCE_HTML: &str = include_str!("../web/finance.html");
const OVERSIGHT_HTML: &str = include_str!("../web/oversight.html");
const ADMIN_HTML: &str = include_str!("../web/admin.html");
const OFFICE_JS: &str = include_str!("../web/office.js");
const OFFICE_CSS: &str = include_str!("../web/office.css");

/// Scripts, styles and images only from here (the charts are SVG served by this binary).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    connect-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/finance", get(|| async { page(FINANCE_HTML) }))
        .route("/oversight", get(|| async { page(OVERSIGHT_HTML) }))
        .route("/admin", get(|| async { page(ADMIN_HTML) }))
        .route("/assets/office.js", get(|| async { asset("text/javascript; charset=utf-8", OFFICE_JS) }))
        .route("/assets/office.css", get(|| async { asset("text/css; charset=utf-8", OFFICE_CSS) }))
}

fn page(html: &'static str) -> Response {
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
