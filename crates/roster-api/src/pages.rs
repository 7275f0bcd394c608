//! The web pages `roster serve` serves itself (docs/web.md): the app at `/`, the page an invite
//! link opens at `/invite/<token>`, the email-verification and password-reset pages at
//! `/verify/<token>` and `/reset/<token>`, GraphiQL at `GET /graphql` (see [`graphiql`]), and their
//! static files under `/assets/`. Everything comes from `crates/roster-api/web/`, embedded in
//! the binary, vendored libraries included: no page loads anything from another origin.
//!
//! Every answer here carries a strict Content-Security-Policy (scripts and styles from this
//! origin only, no inline code, no framing), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer` (the invite, verify and reset pages' URLs hold a credential).

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

/// The files under `crates/roster-api/web/`, embedded at build time.
#[derive(RustEmbed)]
#[folder = "web/"]
struct Web;

/// The policy every page gets. `connect-src 'self'` covers `ws:`/`wss:` to the same host
/// (CSP Level 3), which the `events` subscription needs.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes of the web app; merge them into the API's router (state-free, so any state).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route("/invite/{token}", get(|_: Path<String>| async { page("invite.html") }))
        .route("/verify/{token}", get(|_: Path<String>| async { page("verify.html") }))
        .route("/reset/{token}", get(|_: Path<String>| async { page("reset.html") }))
        .route("/assets/{*path}", get(asset))
}

/// GraphiQL, served offline from the vendored React and GraphiQL builds.
pub fn graphiql() -> Response {
    page("graphiql.html")
}

fn page(name: &str) -> Response {
    file(name).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

async fn asset(Path(path): Path<String>) -> Response {
    // Only files under `assets/` and `vendor/`; the HTML pages have their own routes.
    let found = path.strip_prefix("vendor/").map_or_else(|| file(&format!("assets/{path}")), |rest| file(&format!("vendor/{rest}")));
    found.unwrap_or_else(|| secured(StatusCode::NOT_FOUND.into_response()))
}

fn file(name: &str) -> Option<Response> {
    let found = Web::get(name)?;
    let mime = HeaderValue::from_str(found.metadata.mimetype()).ok()?;
    let response = ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))], found.data.into_owned()).into_response();
    Some(secured(response))
}

/// Adds the security headers every page and asset carries.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set: [(HeaderName, &'static str); 3] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
