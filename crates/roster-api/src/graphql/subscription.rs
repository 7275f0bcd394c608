//! `Subscription`.

use super::connection::cursor;
use super::query::event_filter;
use super::types::Event;
use super::{env, gql_err};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;
use async_graphql::{Context, Result, Subscription, ID};
use futures::{Stream, StreamExt};
use roster_domain::{DomainError, Role};
use roster_projections::queries;
use roster_store::reader;
use uuid::Uuid;

/// The root of all subscriptions.
pub struct SubscriptionRoot;

/// Whether `user_id` may still read `account_id`'s events as of `position`: a subscription
/// outlives the check made when it started, so an Admin who is demoted or removed stops
/// receiving events, including the one that demoted or removed them. The read models are first
/// brought up to `position`.
async fn still_admin(state: &AppState, user_id: Uuid, account_id: Uuid, position: i64) -> Result<(), ApiError> {
    if !state.projector.wait_for(position, state.config.read_your_writes_timeout).await {
        return Err(ApiError::Internal("read models are behind the event stream".into()));
    }
    match queries::member_role(&state.pool, account_id, user_id).await? {
        Some(Role::Admin) => Ok(()),
        _ => Err(DomainError::Forbidden.into()),
    }
}

#[Subscription]
impl SubscriptionRoot {
    /// Every event after position `after` (default: from the start), then each new one as it
    /// commits: catch-up and live come from one reader, so there is no gap and no duplicate
    /// at the seam. Authorisation as `Query.events` (token in `connection_init`'s
    /// `Authorization` or `token`), re-checked before each event: a user who is no longer an
    /// Admin of the account gets one `FORBIDDEN` error and the stream ends.
    async fn events(&self, ctx: &Context<'_>, after: Option<String>, account_id: Option<ID>) -> Result<impl Stream<Item = Result<Event>>> {
        let (state, req) = env(ctx);
        let filter = event_filter(state, &req.caller, account_id.as_ref()).await.map_err(|e| gql_err(ctx, e))?;
        let after = cursor(after.as_deref()).map_err(|e| gql_err(ctx, e))?.unwrap_or(0);
        let guard = match (&req.caller, filter.account_id) {
            (Caller::User { id, .. }, Some(account)) => Some((*id, account)),
            _ => None,
        };
        let (state, request_id) = (state.clone(), req.request_id.clone());
        let events = reader::follow(state.pool.clone(), after, filter).then(move |item| {
            let state = state.clone();
            async move {
                let event = item?;
                if let Some((user_id, account_id)) = guard {
                    still_admin(&state, user_id, account_id, event.position).await?;
                }
                Ok::<_, ApiError>(Event(event))
            }
        });
        // The first error is delivered, then the stream ends.
        Ok(events.scan(false, move |failed, item| {
            let next = if *failed {
                None
            } else {
                *failed = item.is_err();
                Some(item.map_err(|e| e.into_graphql(&request_id)))
            };
            futures::future::ready(next)
        }))
    }
}
