//! The GraphQL schema: names and shapes from `shared/api-contract.md`; the committed SDL is
//! `schema/roster.graphql` (`roster schema` prints it).

mod connection;
mod mutation;
mod query;
mod subscription;
mod types;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use crate::error::ApiError;
use crate::{AppState, RequestContext};
use async_graphql::{Context, Schema};

/// The schema type.
pub type RosterSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with `state` available to resolvers. Queries are limited in depth and
/// complexity so no request can make the server do unbounded work.
pub fn schema(state: Option<AppState>) -> RosterSchema {
    let builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot).limit_depth(16).limit_complexity(5_000);
    match state {
        Some(state) => builder.data(state).finish(),
        None => builder.finish(),
    }
}

/// The SDL of the schema, as committed in `schema/roster.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

/// The state and request context of a resolver.
pub(crate) fn env<'a>(ctx: &Context<'a>) -> (&'a AppState, &'a RequestContext) {
    (ctx.data_unchecked::<AppState>(), ctx.data_unchecked::<RequestContext>())
}

/// Converts an API error for this request.
pub(crate) fn gql_err(ctx: &Context<'_>, err: ApiError) -> async_graphql::Error {
    err.into_graphql(&ctx.data_unchecked::<RequestContext>().request_id)
}

/// Parses an `ID` argument as a UUID.
///
/// Errors: `VALIDATION` on `field`.
pub(crate) fn parse_id(id: &async_graphql::ID, field: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::validation(field, "is not a valid id"))
}
