//! `Subscription`.

use super::query::event_filter;
use super::types::Event;
use super::{env, gql_err};
use super::connection::cursor;
use async_graphql::{Context, Result, Subscription, ID};
use futures::{Stream, StreamExt};
use roster_store::reader;

/// The root of all subscriptions.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every event after position `after` (default: from the start), then each new one as it
    /// commits: catch-up and live come from one reader, so there is no gap and no duplicate
    /// at the seam. Authorisation as `Query.events` (token in `connection_init`'s
    /// `Authorization` or `token`).
    async fn events(&self, ctx: &Context<'_>, after: Option<String>, account_id: Option<ID>) -> Result<impl Stream<Item = Result<Event>>> {
        let (state, req) = env(ctx);
        let filter = event_filter(state, &req.caller, account_id.as_ref()).await.map_err(|e| gql_err(ctx, e))?;
        let after = cursor(after.as_deref()).map_err(|e| gql_err(ctx, e))?.unwrap_or(0);
        let request_id = req.request_id.clone();
        Ok(reader::follow(state.pool.clone(), after, filter).map(move |item| {
            item.map(Event).map_err(|e| crate::ApiError::from(e).into_graphql(&request_id))
        }))
    }
}
