//! `Subscription`.

use super::connection::Cursor;
use super::renders::{Renders, SharedEvent};
use super::types::Event;
use super::{env, gql_err, parse_id};
use crate::app::ConnectionSubscriptions;
use async_graphql::{Context, Result, Subscription, ID};
use futures::{Stream, StreamExt};

/// The root of all subscriptions.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every event after position `after` (default: from the start), then each new one as it
    /// commits: catch-up and live come from one reader, so there is no gap and no duplicate
    /// at the seam, and a database outage only delays it. Authorisation as `Query.events`
    /// (token in `connection_init`'s `Authorization` or `token`), kept current by the events
    /// about the subscriber's own membership: a user who may no longer read the account's
    /// events gets one `FORBIDDEN` error (not that event) and the stream ends. At most 10
    /// subscriptions per connection and 20 per user by default; more answer `RATE_LIMITED`.
    async fn events(&self, ctx: &Context<'_>, after: Option<String>, account_id: Option<ID>) -> Result<impl Stream<Item = Result<SharedEvent>>> {
        let (app, req) = env(ctx);
        let start = async {
            let account_id = account_id.map(|id| parse_id(&id, "accountId")).transpose()?;
            let after = Cursor::parse_optional(after.as_deref(), "after")?.map_or(0, Cursor::get);
            app.follow(req, account_id, after, ctx.data_opt::<ConnectionSubscriptions>()).await
        };
        let started = chrono::Utc::now();
        let events = start.await.map_err(|e| gql_err(ctx, e))?;
        let request_id = req.request_id.clone();
        let deliveries = app.telemetry().deliveries();
        // Subscriptions selecting the same fields resolve each event once (graphql::renders).
        let subscriber = req.caller.user().ok().map(|(id, _)| id);
        let recent = ctx.data_unchecked::<Renders>().for_field(&ctx.item.node, subscriber);
        Ok(events.map(move |item| {
            // Live events only: catch-up events are as old as the history asked for.
            if let Ok(event) = &item {
                if event.recorded_at >= started {
                    let waited = (chrono::Utc::now() - event.recorded_at).to_std().unwrap_or_default();
                    deliveries.observe(waited.as_secs_f64());
                }
            }
            item.map(|event| SharedEvent { event: Event(event), recent: recent.clone() }).map_err(|e| e.into_graphql(&request_id))
        }))
    }
}
