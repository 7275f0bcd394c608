//! Which operations wait for the session check ([`crate::app::SessionCheck`]: a session
//! issued before the user's last password reset does not count).
//!
//! - **Commands** (any document holding a mutation) run only once the check has answered;
//!   a session that ended gets `UNAUTHENTICATED` before any resolver runs, and the HTTP
//!   handler then answers the request as one without a session. A command does things on the
//!   way to its append that the unit of work's wait cannot take back: a per-user rate limit
//!   (`createAccount`'s, which an ended session could otherwise use up for the owner), a
//!   password hash, a reset email; run twice (as the ended session, then without one) they
//!   would count twice. Only the parsed document tells a command from a query, hence a parse
//!   hook. Queries still run beside the check: they change nothing.
//! - **Websocket operations** are each identified again from the connection's bearer token
//!   ([`ConnectionBearer`]; one primary-key read) and run with the settled answer: a
//!   connection outlives the check its `connection_init` made, and a reset after it ends its
//!   session too.

use crate::app::{App, RequestContext};
use crate::auth::Caller;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, ServerError, ServerResult, Variables};
use std::any::TypeId;
use std::sync::Arc;

/// The bearer token a websocket connection was opened with, kept in its connection data so
/// each of its operations is identified again.
pub struct ConnectionBearer(pub Option<String>);

/// The extension that makes commands wait for the session check and checks each websocket
/// operation afresh.
pub struct Sessions;

impl ExtensionFactory for Sessions {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SessionsExtension)
    }
}

struct SessionsExtension;

/// `request` with a context of its own when it runs on a websocket connection whose session
/// was signed in: the connection's, identified again from its bearer token and settled.
/// An HTTP request carries its own context already.
async fn on_connection(ctx: &ExtensionContext<'_>, request: Request) -> Request {
    if request.data.contains_key(&TypeId::of::<RequestContext>()) {
        return request;
    }
    let (Some(connection), Some(ConnectionBearer(Some(bearer))), Some(app)) =
        (ctx.data_opt::<RequestContext>(), ctx.data_opt::<ConnectionBearer>(), ctx.data_opt::<App>())
    else {
        return request;
    };
    if !matches!(connection.caller, Caller::User { .. }) {
        return request;
    }
    let (caller, session) = app.identify(Some(bearer));
    let fresh = RequestContext { caller, session, ..connection.clone() }.settled().await;
    request.data(fresh)
}

#[async_graphql::async_trait::async_trait]
impl Extension for SessionsExtension {
    async fn prepare_request(&self, ctx: &ExtensionContext<'_>, request: Request, next: NextPrepareRequest<'_>) -> ServerResult<Request> {
        let request = on_connection(ctx, request).await;
        next.run(ctx, request).await
    }

    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let command = document.operations.iter().any(|(_, operation)| operation.node.ty == OperationType::Mutation);
        if let (true, Some(request)) = (command, ctx.data_opt::<RequestContext>()) {
            if let Err(err) = request.confirm_session().await {
                let err = err.into_graphql(&request.request_id);
                let mut refused = ServerError::new(err.message, None);
                refused.extensions = err.extensions;
                return Err(refused);
            }
        }
        Ok(document)
    }
}
