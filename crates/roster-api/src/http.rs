//! HTTP: `POST /graphql`, GraphiQL on `GET /graphql`, `graphql-transport-ws` on `GET /graphql/ws`
//! (or an upgrade on `/graphql`), `GET /healthz`, `GET /readyz`.

use crate::app::{App, RequestContext};
use crate::graphql::{self, RosterSchema};
use async_graphql::http::GraphiQLSource;
use async_graphql::{Data, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: &str = "x-request-id";

#[derive(Clone)]
struct Shared {
    app: App,
    schema: RosterSchema,
}

/// The router with every route, request ids (`x-request-id`, generated when absent) and
/// tracing. Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so client
/// IPs reach the event metadata.
pub fn router(app: App) -> Router {
    let schema = graphql::schema(Some(app.clone()));
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Shared { app, schema })
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

fn request_context(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>, bearer: Option<&str>) -> RequestContext {
    // A client-supplied request id is kept only when it is short and plain.
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let header_bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let caller = app.identify(bearer.or(header_bearer));
    RequestContext {
        request_id,
        ip: peer.map(|p| p.ip().to_string()),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect()),
        caller,
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

async fn graphql_post(State(shared): State<Shared>, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap, request: GraphQLRequest) -> GraphQLResponse {
    let ctx = request_context(&shared.app, &headers, Some(peer), None);
    let mut response = shared.schema.execute(request.into_inner().data(ctx)).await;
    response.errors.iter_mut().for_each(classify);
    response.into()
}

async fn graphql_get(State(shared): State<Shared>, request: Request) -> Response {
    let upgrade = request.headers().get(header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        return Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish()).into_response();
    }
    let (mut parts, _) = request.into_parts();
    let protocol = GraphQLProtocol::from_request_parts(&mut parts, &shared).await;
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &shared).await;
    let peer = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &shared).await;
    match (protocol, upgrade, peer) {
        (Ok(protocol), Ok(upgrade), Ok(peer)) => graphql_ws(State(shared), peer, parts.headers, protocol, upgrade).await,
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn graphql_ws(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Shared { app, schema } = shared;
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    // The token may come in the payload (`Authorization` or `token`) or the
                    // upgrade request's header.
                    let bearer = ["Authorization", "authorization", "token"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_string());
                    let ctx = request_context(&app, &headers, Some(peer), bearer.as_deref());
                    let mut data = Data::default();
                    data.insert(ctx);
                    Ok(data)
                })
                .serve()
        })
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
