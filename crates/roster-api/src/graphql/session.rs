//! Which operations wait for the session check ([`crate::app::SessionCheck`]: a session
//! issued before the user's last password reset does not count).
//!
//! - **Commands** (any document holding a mutation) run only once the check has answered;
//!   a session that ended gets `UNAUTHENTICATED` before any resolver runs, and the HTTP
//!   handler then answers the request as one without a session. A command does things on the
//!   way to its append that the unit of work's wait cannot take back: a per-user rate limit
//!   (`createAccount`'s, which an ended session could otherwise use up for the owner), a
//!   password hash, a reset email; run twice (as the ended session, then without one) they
//!   would count twice. Only the parsed document tells a command from a query, hence a check
//!   between parsing and execution ([`holds_command`], in `graphql::gate`). Queries still run
//!   beside the check: they change nothing.
//! - **Websocket operations** are each identified again from the connection's bearer token
//!   ([`ConnectionBearer`]; one primary-key read; [`on_connection`]) and run with the settled answer: a
//!   connection outlives the check its `connection_init` made, and a reset after it ends its
//!   session too.

use crate::app::{App, RequestContext};
use crate::auth::Caller;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Data, Request, ServerError, ServerResult};
use std::any::TypeId;

/// The bearer token a websocket connection was opened with, kept in its connection data so
/// each of its operations is identified again.
pub struct ConnectionBearer(pub Option<String>);

/// `request` with a context of its own when it runs on a websocket connection whose session
/// was signed in (`connection`: the connection's data, from its `connection_init`): the
/// connection's, identified again from its bearer token and settled. An HTTP request carries
/// its own context already.
pub(super) async fn on_connection(app: &App, connection: Option<&Data>, request: Request) -> Request {
    if request.data.contains_key(&TypeId::of::<RequestContext>()) {
        return request;
    }
    let Some(connection) = connection else { return request };
    let get = |id: TypeId| connection.get(&id);
    let context = get(TypeId::of::<RequestContext>()).and_then(|d| d.downcast_ref::<RequestContext>());
    let bearer = get(TypeId::of::<ConnectionBearer>()).and_then(|d| d.downcast_ref::<ConnectionBearer>());
    let (Some(context), Some(ConnectionBearer(Some(bearer)))) = (context, bearer) else {
        return request;
    };
    if !matches!(context.caller, Caller::User { .. }) {
        return request;
    }
    let (caller, session) = app.identify(Some(bearer));
    let fresh = RequestContext { caller, session, ..context.clone() }.settled().await;
    request.data(fresh)
}

/// Whether `document` holds a command (a mutation), which must wait for the session check.
pub(super) fn holds_command(document: &ExecutableDocument) -> bool {
    document.operations.iter().any(|(_, operation)| operation.node.ty == OperationType::Mutation)
}

/// Waits for the session check of `request`'s context, if it has one (a document that
/// [`holds_command`]); a session that ended is refused with `UNAUTHENTICATED`.
pub(super) async fn wait_for_check(request: &Request) -> ServerResult<()> {
    let context = request.data.get(&TypeId::of::<RequestContext>()).and_then(|d| d.downcast_ref::<RequestContext>());
    if let Some(context) = context {
        if let Err(err) = context.confirm_session().await {
            let err = err.into_graphql(&context.request_id);
            let mut refused = ServerError::new(err.message, None);
            refused.extensions = err.extensions;
            return Err(refused);
        }
    }
    Ok(())
}
