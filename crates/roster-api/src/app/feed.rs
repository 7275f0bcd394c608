//! The event feed (`Query.events`, `Subscription.events`) and the audit log.
//!
//! Who may read what is the domain's permission matrix: the rows "Event stream (account
//! scope)" and "Audit log". The operator token reads every account's events.

use super::subscriptions::{ConnectionSubscriptions, SubscriptionSlot};
use super::{AccountView, App, RequestContext};
use crate::auth::Caller;
use crate::error::ApiResult;
use futures::{Stream, StreamExt};
use roster_domain::account::AccountEvent;
use roster_domain::{AccountId, DomainError, Text, UserId};
use roster_projections::queries::{self, AuditRow, Window};
use roster_store::{reader, EventFilter, StoredEvent};
use std::sync::Arc;

/// A user subscriber's access to an account's events, kept current by the events themselves:
/// they may read it as of `as_of`, and only an event about their own membership changes that.
struct Access {
    user: UserId,
    /// The members read model's position when the start check read the role: later events
    /// may change it.
    as_of: i64,
}

impl Access {
    /// `event`, or `FORBIDDEN` when it takes away the subscriber's read access.
    fn check(&self, event: Arc<StoredEvent>) -> ApiResult<Arc<StoredEvent>> {
        if event.position <= self.as_of || event.aggregate_type != "Account" || !AccountEvent::may_change_membership(&event.event_type) {
            return Ok(event);
        }
        // An event this server cannot decode is about nobody's membership it knows of.
        let change = event.decode::<AccountEvent>().ok().and_then(|e| e.membership_of(self.user));
        match change {
            None => Ok(event),
            Some(Some(role)) if role.may_read_event_stream() => Ok(event),
            Some(_) => Err(DomainError::Forbidden.into()),
        }
    }
}

/// A page of the event feed.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, in position order.
    pub events: Vec<StoredEvent>,
    /// Whether more events follow the last one.
    pub has_next: bool,
    /// How many events the filter matches in all.
    pub total: i64,
}

impl App {
    /// Which events `ctx`'s caller may read: the operator token reads every account (or the one
    /// named); a member whose role may read the account's event stream reads that account's.
    ///
    /// Errors: `UNAUTHENTICATED`; `FORBIDDEN` (no `account_id` without the operator token, or a
    /// role without access); `NOT_FOUND`.
    async fn event_filter(&self, ctx: &RequestContext, account_id: Option<AccountId>) -> ApiResult<EventFilter> {
        if ctx.caller == Caller::Operator {
            return Ok(EventFilter { account_id });
        }
        let (user_id, _) = ctx.caller.user()?;
        let account_id = account_id.ok_or(DomainError::Forbidden)?;
        let account = self.account_for(user_id, account_id).await?;
        if !account.viewer_role.may_read_event_stream() {
            return Err(DomainError::Forbidden.into());
        }
        Ok(EventFilter { account_id: Some(account_id) })
    }

    /// `Query.events`: up to `limit` events after position `after`, in global order.
    ///
    /// Errors: as [`App::event_filter`]; `INTERNAL` (database).
    pub async fn events(&self, ctx: &RequestContext, account_id: Option<AccountId>, after: i64, limit: i64) -> ApiResult<EventPage> {
        let filter = self.event_filter(ctx, account_id).await?;
        let mut events = reader::read_after(&self.0.pool, after, limit + 1, filter).await?;
        let has_next = events.len() as i64 > limit;
        events.truncate(limit as usize);
        let total = reader::count(&self.0.pool, filter).await?;
        Ok(EventPage { events, has_next, total })
    }

    /// `Subscription.events`: every event after `after`, then each new one as it commits.
    /// Holds a [`SubscriptionSlot`] on `connection` and for the user while it runs.
    ///
    /// A subscription outlives the check made when it started, so a user's access follows the
    /// stream itself: an event about their own membership of the account (`MemberRoleChanged`,
    /// `MemberRemoved`) later than what the start check saw decides it, with no read-model
    /// query and no wait for projections. One who loses access gets one `FORBIDDEN` error
    /// instead of that event (they may not read it), and the stream ends. So does a session a
    /// password reset ends meanwhile ([`App::session_end`]): one `UNAUTHENTICATED` error, then
    /// the end. Database outages do not end it: the reader retries and resumes after the last
    /// delivered event.
    ///
    /// Errors: as [`App::event_filter`], and `RATE_LIMITED` beyond a cap, before the stream
    /// starts.
    pub async fn follow(
        &self,
        ctx: &RequestContext,
        account_id: Option<AccountId>,
        after: i64,
        connection: Option<&ConnectionSubscriptions>,
    ) -> ApiResult<impl Stream<Item = ApiResult<Arc<StoredEvent>>> + Send + 'static> {
        let filter = self.event_filter(ctx, account_id).await?;
        let config = &self.0.config;
        let user = match &ctx.caller {
            Caller::User { id, .. } => Some(*id),
            _ => None,
        };
        let slot = SubscriptionSlot::take(&self.0.subscriptions, connection, config.max_subscriptions_per_connection, user, config.max_subscriptions_per_user)?;
        let access = match (&ctx.caller, filter.account_id) {
            (Caller::User { id, .. }, Some(account)) => {
                let (role, as_of) = queries::member_role_as_of(&self.0.pool, account, *id).await?;
                if !role.is_some_and(|r| r.may_read_event_stream()) {
                    return Err(DomainError::Forbidden.into());
                }
                Some(Access { user: *id, as_of })
            }
            _ => None,
        };
        let events = reader::follow(&self.0.tail, self.0.pool.clone(), after, filter).map(move |event| {
            let _held = &slot;
            match access.as_ref() {
                Some(access) => access.check(event),
                None => Ok(event),
            }
        });
        let session_end = match &ctx.caller {
            Caller::User { id, issued_ms, .. } => Some(self.session_end(*id, *issued_ms)),
            _ => None,
        };
        let ended = futures::stream::once(async move {
            match session_end {
                Some(end) => end.await,
                None => std::future::pending().await,
            }
            Err(super::context::session_ended())
        });
        let events = futures::stream::select(events, ended);
        // The first error is delivered, then the stream ends at once (not at the next event).
        Ok(futures::stream::unfold(Some(Box::pin(events)), |events| async move {
            let mut events = events?;
            let item = events.next().await?;
            let more = item.is_ok().then_some(events);
            Some((item, more))
        }))
    }

    /// `Account.auditLog`: a page (`window`, at most `limit` entries) of the account's audit
    /// log in position order, optionally one `action` only (parsed by the caller); and the
    /// filtered total.
    ///
    /// Errors: `FORBIDDEN` when the viewer's role may not read the audit log.
    pub async fn audit_log(&self, account: &AccountView, action: Option<&Text>, window: Window<i64>, limit: i64) -> ApiResult<(Vec<AuditRow>, i64)> {
        if !account.viewer_role.may_read_audit_log() {
            return Err(DomainError::Forbidden.into());
        }
        Ok(queries::audit_log(&self.0.pool, account.row.id, action.map(Text::as_str), window, limit).await?)
    }
}
