//! HTTP: the web pages ([`crate::pages`]), `POST /graphql`, GraphiQL on `GET /graphql`, `graphql-transport-ws` on `GET /graphql/ws`
//! (or an upgrade on `/graphql`), `GET /healthz`, `GET /readyz`.
//!
//! `POST /graphql` follows GraphQL over HTTP ([`crate::media`]): the answer's media type
//! follows `Accept`, and the body must be `application/json` (415 otherwise).
//!
//! Every route: a body limit (`ROSTER_MAX_BODY_BYTES`, 413 beyond it), a time limit
//! (`ROSTER_REQUEST_TIMEOUT`, 408 beyond it; an upgraded websocket is no longer a request, so
//! subscriptions outlive it), and a server-made request id echoed in `x-request-id`.

use crate::app::{App, ConnectionSubscriptions, RequestContext, SessionCheck};
use crate::auth::Caller;
use crate::client_ip::client_ip;
use crate::graphql::{self, Gate};
use async_graphql::Executor;
use crate::media::{answer, Media};
use crate::websocket::{self, Sockets};
use async_graphql::http::MultipartOptions;
use async_graphql::{Data, ServerError};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};
use std::net::SocketAddr;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

const REQUEST_ID: &str = "x-request-id";

#[derive(Clone)]
struct Shared {
    app: App,
    gate: Gate,
    sockets: Sockets,
}

/// The `x-request-id` a client sent, when short and plain; kept apart from the server's id.
#[derive(Clone, Debug)]
struct ClientRequestId(Option<String>);

/// The router with every route, limits, request ids and tracing; its websockets close when
/// `sockets`' [`crate::websocket::Closer`] says. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so client IPs reach the event
/// metadata.
pub fn router(app: App, sockets: Sockets) -> Router {
    let gate = graphql::gate(app.clone());
    let config = app.config();
    let (max_body, timeout) = (config.max_body_bytes, config.request_timeout);
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::pages::routes())
        .with_state(Shared { app, gate, sockets })
        // Both: the layer refuses a too-long `Content-Length` up front and caps streamed
        // bodies; the extractor's limit makes a capped read answer 413 rather than 400.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(middleware::map_request(server_request_id))
}

/// The pages whose last path segment is a one-time token.
const TOKEN_PAGES: [&str; 3] = ["/invite/", "/verify/", "/reset/"];

/// The tracing span of a request: method and path, with a link's token left out (a token is a
/// credential, and logs are no place for one). No query string: none of the routes takes one,
/// and a client could put anything there.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = request.uri().path();
    let path = TOKEN_PAGES.iter().find(|p| path.starts_with(**p)).map_or(path.to_string(), |p| format!("{p}…"));
    tracing::debug_span!("request", method = %request.method(), path = %path)
}

/// Replaces the request's `x-request-id` with a fresh UUID (so logs, the response header and
/// the event metadata share one id no client chose) and keeps the client's aside.
async fn server_request_id(mut request: Request) -> Request {
    let client = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(str::to_string);
    let id = uuid::Uuid::new_v4().to_string();
    request.headers_mut().insert(REQUEST_ID, HeaderValue::from_str(&id).expect("a UUID is a header value"));
    request.extensions_mut().insert(ClientRequestId(client));
    request
}

/// The token of an `Authorization: Bearer` header, if any.
fn header_bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
}

fn request_context(app: &App, headers: &HeaderMap, client: ClientRequestId, peer: SocketAddr, bearer: Option<&str>) -> RequestContext {
    let request_id = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let (caller, session) = app.identify(bearer.or_else(|| header_bearer(headers)));
    RequestContext {
        request_id,
        client_request_id: client.0,
        ip: Some(client_ip(peer.ip(), headers, &app.config().trusted_proxies).to_string()),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect()),
        caller,
        session,
    }
}

/// Gives every error without a code one: errors async-graphql raises before any resolver runs
/// (unknown enum values such as role `"OWNER"`, missing or mistyped arguments, syntax) are
/// malformed input, so `VALIDATION`, naming the input field where the message does.
fn classify(error: &mut ServerError) {
    let has_code = error.extensions.as_ref().and_then(|e| e.get("code")).is_some();
    if has_code {
        return;
    }
    let field = field_of(&error.message);
    let ext = error.extensions.get_or_insert_with(Default::default);
    ext.set("code", "VALIDATION");
    if let Some(field) = field {
        ext.set("field", field);
    }
}

/// The text between the quotes that follow `marker` in `message`.
fn quoted_after<'a>(message: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &message[message.find(marker)? + marker.len()..];
    rest.split('"').next()
}

/// The innermost input field a validation message names: `role` from both
/// `Invalid value for argument "input.role", …` and
/// `Invalid value for argument "input", field "role" of type "Role!" is required …`.
fn field_of(message: &str) -> Option<String> {
    let name = quoted_after(message, ", field \"")
        .or_else(|| quoted_after(message, "argument \"").and_then(|path| path.rsplit('.').next()))
        .or_else(|| quoted_after(message, "Variable \"$"))?;
    Some(name.to_string())
}

/// `POST /graphql`. The body is read through axum's limited `Bytes` extractor: async-graphql's
/// own extractor reads bodies whole, and parses multipart uploads, which no operation takes.
/// Only `Content-Type: application/json` is read (GraphQL over HTTP's one required type);
/// anything else, none and multipart uploads included, is 415 rather than guessed at.
async fn graphql_post(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(client): Extension<ClientRequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence != "application/json" {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type must be application/json").into_response();
    }
    let parse = || async_graphql::http::receive_body(Some(content_type), body.as_ref(), MultipartOptions::default());
    let request = match parse().await {
        Ok(request) => request,
        Err(e) => return malformed(&e, Media::negotiate(&headers)),
    };
    let ctx = request_context(&shared.app, &headers, client, peer, None);
    let session = ctx.session.clone();
    let mut response = shared.gate.execute(request.data(ctx.clone()).data(graphql::row_loader(shared.app.clone()))).await;
    if !session.holds().await {
        // The session ended (a password reset since it was issued): no command ran (commands
        // wait for the check: `graphql::session`), and the answer is the one for no session.
        let nobody = RequestContext { caller: Caller::Anonymous, session: SessionCheck::settled(), ..ctx };
        let Ok(request) = parse().await else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
        response = shared.gate.execute(request.data(nobody).data(graphql::row_loader(shared.app.clone()))).await;
    }
    response.errors.iter_mut().for_each(classify);
    answer(response, Media::negotiate(&headers))
}

/// A body that is not one GraphQL request (not JSON, a batch, wrong types): 400 in the media
/// type the client asked for, one error with `extensions.code` `VALIDATION` and the parser's
/// words (never a debug dump).
fn malformed(error: &async_graphql::ParseRequestError, media: Media) -> Response {
    let message = match error {
        async_graphql::ParseRequestError::InvalidRequest(cause) => format!("the body is not a GraphQL request: {cause}"),
        async_graphql::ParseRequestError::UnsupportedBatch => "batched requests are not supported: send one operation per request".to_string(),
        other => format!("the body is not a GraphQL request: {other}"),
    };
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": "VALIDATION" } }] });
    let mut answer = (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    answer
}

async fn graphql_get(State(shared): State<Shared>, request: Request) -> Response {
    let upgrade = request.headers().get(header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        return crate::pages::graphiql();
    }
    let (mut parts, _) = request.into_parts();
    let protocol = websocket::protocol(&parts.headers).ok_or(());
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &shared).await;
    let peer = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &shared).await;
    let client = Extension::<ClientRequestId>::from_request_parts(&mut parts, &shared).await;
    match (protocol, upgrade, peer, client) {
        (Ok(_), Ok(upgrade), Ok(peer), Ok(client)) => graphql_ws(State(shared), peer, client, parts.headers, upgrade).await,
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn graphql_ws(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(client): Extension<ClientRequestId>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = websocket::protocol(&headers) else {
        return (StatusCode::BAD_REQUEST, "Sec-WebSocket-Protocol must name graphql-transport-ws or graphql-ws").into_response();
    };
    let Shared { app, gate, sockets } = shared;
    // A websocket message is bounded like a request body.
    let max = app.config().max_body_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        // tungstenite zeroes the free read buffer before every read attempt, and the protocol
        // loop tries a read each time it is polled, i.e. for every outgoing message: 128 KiB
        // (the default) per event per subscriber. Clients send little; larger frames still fit
        // (the buffer grows to the frame's length).
        .read_buffer_size(websocket::READ_BUFFER)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let timeouts = websocket::Timeouts { init: app.config().connection_init_timeout, slow_consumer: app.config().slow_consumer_timeout };
            let on_init = move |payload: serde_json::Value| async move {
                    // The token may come in the payload (`Authorization` or `token`) or the
                    // upgrade request's header.
                    let bearer = ["Authorization", "authorization", "token"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_string())
                        .or_else(|| header_bearer(&headers).map(str::to_string));
                    // A connection keeps its context: its session is checked before it starts,
                    // and again for each operation (from the bearer: see `graphql::ConnectionBearer`).
                    let ctx = request_context(&app, &headers, client, peer, bearer.as_deref()).settled().await;
                    let mut data = Data::default();
                    data.insert(ctx);
                    data.insert(graphql::ConnectionBearer(bearer));
                    data.insert(graphql::row_loader(app.clone()));
                    data.insert(ConnectionSubscriptions::default());
                    Ok(data)
            };
            sockets.serve(socket, gate, protocol, on_init, timeouts)
        })
}

/// `GET /metrics`: Prometheus text (`crate::telemetry`) for a bearer of `ROSTER_METRICS_TOKEN`
/// or `ROSTER_OPERATOR_TOKEN`; 401 for anyone else (counts and lag reveal activity).
async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !shared.app.may_read_metrics(bearer) {
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
        return (StatusCode::UNAUTHORIZED, challenge, "set Authorization: Bearer <ROSTER_METRICS_TOKEN or ROSTER_OPERATOR_TOKEN>").into_response();
    }
    match shared.app.metrics_text().await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

async fn readyz(State(shared): State<Shared>) -> Response {
    match shared.app.migrations_applied().await {
        Ok(true) => "ready".into_response(),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn validation_messages_name_the_innermost_field() {
        let cases = [
            (r#"Invalid value for argument "input.role", enumeration type "Role" does not contain the value "OWNER""#, Some("role")),
            (r#"Invalid value for argument "input", field "role" of type "Role!" is required but not provided"#, Some("role")),
            (r#"Invalid value for argument "first", expected type "Int""#, Some("first")),
            ("Unknown field \"nope\" on type \"Query\".", None),
        ];
        for (message, field) in cases {
            assert_eq!(field_of(message).as_deref(), field, "{message}");
        }
    }
}
