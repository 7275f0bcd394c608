//! Members: the list an account shows, role changes and removals.

use super::{AccountView, App, RequestContext};
use crate::error::ApiResult;
use roster_domain::{AccountCommand, AccountId, DomainError, Permission, Role, Text, UserId};
use roster_projections::queries::{self, MemberKey, MemberRow, Window};

impl App {
    /// `Account.members`: up to `limit` members by join time from `window`, filtered by `role`
    /// and by `search` (case-insensitive substring of email or display name; parsed by the
    /// caller, so it holds no NUL that PostgreSQL would refuse); and the filtered total.
    ///
    /// Errors: `FORBIDDEN` when the viewer's role may not read the Members feature
    /// ([`Role::may_read`], permission matrix); `INTERNAL` (database).
    pub async fn members(&self, account: &AccountView, role: Option<Role>, search: Option<&Text>, window: Window<MemberKey>, limit: i64) -> ApiResult<(Vec<MemberRow>, i64)> {
        account.require_read(Permission::Members)?;
        Ok(queries::members_in(&self.0.pool, account.row.id, role, search.map(Text::as_str), window, limit).await?)
    }

    /// `changeRole`. Changing to the current role is a no-op that appends nothing. Returns the
    /// member as the read model now shows them.
    ///
    /// Errors: `UNAUTHENTICATED`; `NOT_FOUND`; `FORBIDDEN` (may not change roles); `LAST_ADMIN`;
    /// `SELF_CHANGE`.
    pub async fn change_role(&self, ctx: &RequestContext, account_id: AccountId, user_id: UserId, role: Role) -> ApiResult<MemberRow> {
        let (actor, _) = ctx.caller.user()?;
        self.execute(ctx, account_id, Some(actor), self.now(), || AccountCommand::ChangeRole { actor, user_id, role }).await?;
        Ok(queries::member(&self.0.pool, account_id, user_id).await?.ok_or(DomainError::NotFound("member"))?)
    }

    /// `removeMember`: also cancels the invitations the member sent (reason "inviter removed").
    ///
    /// Errors: as [`App::change_role`].
    pub async fn remove_member(&self, ctx: &RequestContext, account_id: AccountId, user_id: UserId) -> ApiResult<()> {
        let (actor, _) = ctx.caller.user()?;
        let now = self.now();
        self.execute(ctx, account_id, Some(actor), now, || AccountCommand::RemoveMember { actor, user_id, now }).await
    }
}
