//! The event feed (`Query.events`, `Subscription.events`) and the audit log.
//!
//! Who may read what is the domain's permission matrix: the rows "Event stream (account
//! scope)" and "Audit log". The operator token reads every account's events.

use super::{AccountView, App, RequestContext};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use futures::{Stream, StreamExt};
use roster_domain::{AccountId, DomainError, Text, UserId};
use roster_projections::queries::{self, AuditRow};
use roster_store::{reader, EventFilter, StoredEvent};

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
    /// A subscription outlives the check made when it started, so a user's access is checked
    /// again before each event: one who lost it (including by the event itself) gets one
    /// `FORBIDDEN` and the stream ends.
    ///
    /// Errors: as [`App::event_filter`], before the stream starts.
    pub async fn follow(&self, ctx: &RequestContext, account_id: Option<AccountId>, after: i64) -> ApiResult<impl Stream<Item = ApiResult<StoredEvent>> + Send + 'static> {
        let filter = self.event_filter(ctx, account_id).await?;
        let guard = match (&ctx.caller, filter.account_id) {
            (Caller::User { id, .. }, Some(account)) => Some((*id, account)),
            _ => None,
        };
        let app = self.clone();
        let events = reader::follow(self.0.pool.clone(), after, filter).then(move |item| {
            let app = app.clone();
            async move {
                let event = item?;
                if let Some((user_id, account_id)) = guard {
                    app.still_may_read(user_id, account_id, event.position).await?;
                }
                Ok(event)
            }
        });
        // The first error is delivered, then the stream ends.
        Ok(events.scan(false, |failed, item| {
            let next = if *failed {
                None
            } else {
                *failed = item.is_err();
                Some(item)
            };
            futures::future::ready(next)
        }))
    }

    /// Whether `user_id` may still read `account_id`'s events as of `position` (the read models
    /// are first brought up to it).
    async fn still_may_read(&self, user_id: UserId, account_id: AccountId, position: i64) -> ApiResult<()> {
        if !self.0.projector.wait_for(position, self.0.config.read_your_writes_timeout).await {
            return Err(ApiError::Internal("read models are behind the event stream".into()));
        }
        match queries::member_role(&self.0.pool, account_id, user_id).await? {
            Some(role) if role.may_read_event_stream() => Ok(()),
            _ => Err(DomainError::Forbidden.into()),
        }
    }

    /// `Account.auditLog`: a page of the account's audit log in position order, optionally one
    /// `action` only (parsed by the caller); and the filtered total.
    ///
    /// Errors: `FORBIDDEN` when the viewer's role may not read the audit log.
    pub async fn audit_log(&self, account: &AccountView, action: Option<&Text>, offset: i64, limit: i64) -> ApiResult<(Vec<AuditRow>, i64)> {
        if !account.viewer_role.may_read_audit_log() {
            return Err(DomainError::Forbidden.into());
        }
        Ok(queries::audit_log(&self.0.pool, account.row.id, action.map(Text::as_str), offset, limit).await?)
    }
}
