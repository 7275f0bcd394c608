//! The GraphQL schema: names and shapes from `shared/api-contract.md`; the committed SDL is
//! `schema/roster.graphql` (`roster schema` prints it).

mod connection;
mod delivery;
mod gate;
pub mod limits;
mod loader;
mod mutation;
mod observe;
mod order;
mod query;
mod renders;
pub mod splices;
mod session;
mod subscription;
mod types;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use gate::Gate;
pub use loader::row_loader;
pub use session::ConnectionBearer;
pub use subscription::SubscriptionRoot;

use crate::error::ApiError;
use crate::app::{App, RequestContext};
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition};
use async_graphql::{Context, Positioned, Schema};

/// The schema type.
pub type RosterSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with `app` available to resolvers, and validation's limits on cost and
/// depth ([`limits::MAX_COMPLEXITY`], [`limits::MAX_DEPTH`]). Serve it through [`gate`]: the
/// other limits, the session check, the answer's order and the metrics are there, not in
/// schema extensions (see [`Gate`] for why).
pub fn schema(app: Option<App>) -> RosterSchema {
    let builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot).limit_complexity(limits::MAX_COMPLEXITY).limit_depth(limits::MAX_DEPTH);
    match app {
        Some(app) => builder.data(app).data(renders::Renders::default()).finish(),
        None => builder.finish(),
    }
}

/// The schema for `app` behind its [`Gate`]: what HTTP and websockets execute.
pub fn gate(app: App) -> Gate {
    Gate::new(schema(Some(app.clone())), app)
}

/// The SDL of the schema, as committed in `schema/roster.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

/// The application and request context of a resolver.
pub(crate) fn env<'a>(ctx: &Context<'a>) -> (&'a App, &'a RequestContext) {
    (ctx.data_unchecked::<App>(), ctx.data_unchecked::<RequestContext>())
}

/// Runs a resolver body with the application and request context, mapping its errors for
/// this request.
pub(crate) async fn run<'a, T, F, Fut>(ctx: &Context<'a>, body: F) -> async_graphql::Result<T>
where
    F: FnOnce(&'a App, &'a RequestContext) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let (app, req) = env(ctx);
    body(app, req).await.map_err(|e| gql_err(ctx, e))
}

/// Converts an API error for this request.
pub(crate) fn gql_err(ctx: &Context<'_>, err: ApiError) -> async_graphql::Error {
    err.into_graphql(&ctx.data_unchecked::<RequestContext>().request_id)
}

/// The operation called `name` in `document` (without a name: its only one), as async-graphql
/// chooses the one to run; `None` when there is no such operation.
pub(super) fn operation<'a>(document: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a Positioned<OperationDefinition>> {
    let mut operations = document.operations.iter();
    let (_, operation) = match name {
        Some(name) => operations.find(|(n, _)| n.is_some_and(|n| n.as_str() == name))?,
        None => operations.next().filter(|_| document.operations.iter().count() == 1)?,
    };
    Some(operation)
}

/// Parses an `ID` argument as a typed id (`AccountId`, `UserId`, `InvitationId`).
///
/// Errors: `VALIDATION` on `field`.
pub(crate) fn parse_id<T: std::str::FromStr>(id: &async_graphql::ID, field: &str) -> Result<T, ApiError> {
    id.parse().map_err(|_| ApiError::validation(field, "is not a valid id"))
}
