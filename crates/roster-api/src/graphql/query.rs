//! `Query`.

use super::connection::{cursor, page_size, Page, TotalCount};
use super::types::{Account, Event, InvitationPreview, Permission, RoleInfo, User, Viewer};
use super::{env, gql_err, parse_id};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, Result, ID};
use roster_domain::role::FEATURES;
use roster_domain::{Account as AccountAggregate, DomainError, InviteToken, Role};
use roster_projections::queries;
use roster_store::{reader, EventFilter};
use uuid::Uuid;

/// The root of all reads.
pub struct QueryRoot;

/// The account `id` as the signed-in `user_id` may see it.
///
/// Errors: `NOT_FOUND` (no such account); `FORBIDDEN` (not a member).
pub(crate) async fn visible_account(state: &AppState, user_id: Uuid, id: Uuid) -> ApiResult<Account> {
    let row = queries::account(&state.pool, id).await?.ok_or(DomainError::NotFound("account"))?;
    let viewer_role = queries::member_role(&state.pool, id, user_id).await?.ok_or(DomainError::Forbidden)?;
    Ok(Account { row, viewer_role })
}

/// Which events `caller` may read: the operator token reads every account (or the one named);
/// an Admin reads their account's (matrix row "Event stream (account scope)").
///
/// Errors: `UNAUTHENTICATED`; `FORBIDDEN` (no `accountId` without the operator token, or not an
/// Admin of it); `NOT_FOUND`; `VALIDATION` (`accountId`).
pub(crate) async fn event_filter(state: &AppState, caller: &Caller, account_id: Option<&ID>) -> ApiResult<EventFilter> {
    let account_id = account_id.map(|id| parse_id(id, "accountId")).transpose()?;
    if *caller == Caller::Operator {
        return Ok(EventFilter { account_id });
    }
    let (user_id, _) = caller.user()?;
    let account_id = account_id.ok_or(DomainError::Forbidden)?;
    let account = visible_account(state, user_id, account_id).await?;
    if account.viewer_role != Role::Admin {
        return Err(DomainError::Forbidden.into());
    }
    Ok(EventFilter { account_id: Some(account_id) })
}

#[Object]
impl QueryRoot {
    /// The signed-in user and their accounts; `null` without a valid token.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<Viewer>> {
        let (state, req) = env(ctx);
        let Caller::User { id, .. } = req.caller else { return Ok(None) };
        let Some(user) = queries::user(&state.pool, id).await.map_err(|e| gql_err(ctx, e.into()))? else {
            return Ok(None);
        };
        let accounts = queries::accounts_of(&state.pool, id)
            .await
            .map_err(|e| gql_err(ctx, e.into()))?
            .into_iter()
            .map(|(row, viewer_role)| Account { row, viewer_role })
            .collect();
        Ok(Some(Viewer { user: User::from(user), accounts }))
    }

    /// An account the viewer belongs to.
    ///
    /// Errors: `UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN` (another tenant's), `VALIDATION`.
    async fn account(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Account>> {
        let (state, req) = env(ctx);
        let account = async {
            let (user_id, _) = req.caller.user()?;
            visible_account(state, user_id, parse_id(&id, "id")?).await
        };
        account.await.map(Some).map_err(|e| gql_err(ctx, e))
    }

    /// What an invite link is for, for the accept page. Public: the token is the credential.
    ///
    /// Errors: `INVALID_TOKEN` (malformed, unknown, rotated); `RATE_LIMITED`.
    async fn invitation_preview(&self, ctx: &Context<'_>, token: String) -> Result<Option<InvitationPreview>> {
        let (state, req) = env(ctx);
        preview(state, req.ip.as_deref(), &token).await.map(Some).map_err(|e| gql_err(ctx, e))
    }

    /// Every role with its permissions and the roles it may grant (the permission matrix).
    async fn roles(&self) -> Vec<RoleInfo> {
        Role::ALL
            .into_iter()
            .map(|role| RoleInfo {
                role: role.into(),
                display_name: role.display_name().to_string(),
                permissions: FEATURES
                    .iter()
                    .zip(role.permissions())
                    .map(|(feature, access)| Permission { feature: feature.to_string(), access: access.as_str().to_string() })
                    .collect(),
                can_grant: role.can_grant().iter().map(|r| (*r).into()).collect(),
            })
            .collect()
    }

    /// Events in global order after the position `after` (a cursor: `endCursor` of the last
    /// page), `first` of them (default 50, at most 500). Admins read their account's
    /// (`accountId` required); the operator token reads all.
    ///
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, `VALIDATION` (`after`, `first`, `accountId`).
    async fn events(&self, ctx: &Context<'_>, after: Option<String>, first: Option<i32>, account_id: Option<ID>) -> Result<Page<Event>> {
        let (state, req) = env(ctx);
        let page = async {
            let filter = event_filter(state, &req.caller, account_id.as_ref()).await?;
            let limit = page_size(first)?;
            let after = cursor(after.as_deref())?.unwrap_or(0);
            let mut events = reader::read_after(&state.pool, after, limit + 1, filter).await?;
            let has_next = events.len() as i64 > limit;
            events.truncate(limit as usize);
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE $1::uuid IS NULL OR account_id = $1")
                .bind(filter.account_id)
                .fetch_one(&state.pool)
                .await?;
            let mut page = Connection::with_additional_fields(after > 0, has_next, TotalCount { total_count: total });
            page.edges.extend(events.into_iter().map(|e| Edge::new(e.position.to_string(), Event(e))));
            Ok::<_, ApiError>(page)
        };
        page.await.map_err(|e| gql_err(ctx, e))
    }
}

async fn preview(state: &AppState, ip: Option<&str>, token: &str) -> ApiResult<InvitationPreview> {
    state.token_limiter.attempt(ip.unwrap_or("unknown"))?;
    let token = InviteToken::parse(token)?;
    // Verify against the aggregate: the read model holds no token digest.
    let account = state.store.load::<AccountAggregate>(&token.account_id.to_string()).await?.aggregate;
    let invitation = account.invitations.get(&token.invitation_id).ok_or(DomainError::InvalidToken)?;
    if !invitation.token_digest.verifies(&token.digest()) {
        return Err(DomainError::InvalidToken.into());
    }
    let inviter = queries::user(&state.pool, invitation.invited_by).await?;
    Ok(InvitationPreview {
        account_name: account.name.clone(),
        invited_by_name: inviter.map(|u| u.display_name).unwrap_or_default(),
        role: invitation.role.into(),
        email: invitation.email.to_string(),
        status: invitation.status(state.clock.now()).into(),
        expires_at: invitation.expires_at,
    })
}
