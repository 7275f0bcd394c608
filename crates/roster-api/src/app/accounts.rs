//! Accounts (tenants): opening one, and seeing one as a member.

use super::{App, RequestContext};
use crate::error::ApiResult;
use roster_domain::account::UserRef;
use roster_domain::{AccountCommand, AccountId, DomainError, Permission, Role, UserId};
use roster_projections::queries::{self, AccountRow};
use uuid::Uuid;

/// An account as one of its members sees it. Holding one is the proof that the viewer is a
/// member: the application hands it out only after checking.
#[derive(Debug, Clone)]
pub struct AccountView {
    /// The account's read-model row.
    pub row: AccountRow,
    /// The viewer's role in it.
    pub viewer_role: Role,
}

impl AccountView {
    /// `Ok` when the viewer's role may at least read `feature` ([`Role::may_read`]).
    ///
    /// Errors: `FORBIDDEN`.
    pub fn require_read(&self, feature: Permission) -> ApiResult<()> {
        if self.viewer_role.may_read(feature) {
            Ok(())
        } else {
            Err(DomainError::Forbidden.into())
        }
    }
}

impl App {
    /// The account `id` as the signed-in `user_id` may see it (one statement).
    ///
    /// Errors: `NOT_FOUND` (no such account); `FORBIDDEN` (not a member).
    pub(super) async fn account_for(&self, user_id: UserId, id: AccountId) -> ApiResult<AccountView> {
        let (row, role) = queries::account_as_member(&self.0.pool, id, user_id).await?.ok_or(DomainError::NotFound("account"))?;
        Ok(AccountView { row, viewer_role: role.ok_or(DomainError::Forbidden)? })
    }

    /// `account(id)`: an account the signed-in caller belongs to.
    ///
    /// Errors: `UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN` (another tenant's).
    pub async fn account(&self, ctx: &RequestContext, id: AccountId) -> ApiResult<AccountView> {
        let (user_id, _) = ctx.caller.user()?;
        self.account_for(user_id, id).await
    }

    /// `createAccount`: the signed-in user opens another account and is its only Admin.
    ///
    /// Errors: `UNAUTHENTICATED`; `VALIDATION` on `name`; `RATE_LIMITED` beyond 10 accounts at
    /// once per user, then one per 6 minutes.
    pub async fn create_account(&self, ctx: &RequestContext, name: &str) -> ApiResult<AccountView> {
        let (user_id, email) = ctx.caller.user()?;
        self.0.account_creations.attempt(&user_id.to_string())?;
        let account_id = AccountId::from(Uuid::new_v4());
        let founder = UserRef { id: user_id, email: email.clone() };
        let now = self.now();
        self.execute(ctx, account_id, Some(user_id), now, || AccountCommand::Create { name: name.to_string(), founder: founder.clone(), now })
            .await?;
        self.account_for(user_id, account_id).await
    }
}
