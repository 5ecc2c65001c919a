//! The office pages, served by the binary: `/finance`, `/oversight` and `/admin`. Each is a
//! static page and a small script (`/assets/office.js`) that takes the token from `?token=…`
//! once, keeps it in the tab's session storage, and calls the GraphQL API like any client.

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::screens::{asset, page};

const FINANCE_HTML: &str = include_str!("../web/finance.html");
const OVERSIGHT_HTML: &str = include_str!("../web/oversight.html");
const ADMIN_HTML: &str = include_str!("../web/admin.html");
const OFFICE_JS: &str = include_str!("../web/office.js");
const OFFICE_CSS: &str = include_str!("../web/office.css");

// The charts are SVG served by this binary: the screens' policy (everything from here) fits.

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/finance", get(|| async { page(FINANCE_HTML) }))
        .route("/oversight", get(|| async { page(OVERSIGHT_HTML) }))
        .route("/admin", get(|| async { page(ADMIN_HTML) }))
        .route("/assets/office.js", get(|| async { asset("text/javascript; charset=utf-8", OFFICE_JS.as_bytes()) }))
        .route("/assets/office.css", get(|| async { asset("text/css; charset=utf-8", OFFICE_CSS.as_bytes()) }))
}
