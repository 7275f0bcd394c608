//! `Mutation`. Each resolver validates input, runs a command (`crate::commands`), and answers
//! from the read models, which already show the command's events (read-your-writes).

use super::query::visible_account;
use super::types::{Account, GqlRole, Invitation, InvitePayload, RemoveMemberPayload, SessionPayload, User};
use super::{env, gql_err, parse_id};
use crate::commands::{IssuedInvite, Session};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, RequestContext};
use async_graphql::{Context, InputObject, Object, Result, ID};
use roster_domain::DomainError;
use roster_projections::queries;

/// The root of all commands.
pub struct MutationRoot;

#[derive(InputObject)]
pub struct SignUpInput {
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    /// 1 to 100 characters after trimming.
    pub display_name: String,
    /// 1 to 100 characters after trimming.
    pub account_name: String,
}

#[derive(InputObject)]
pub struct LogInInput {
    pub email: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    pub name: String,
}

#[derive(InputObject)]
pub struct InviteUserInput {
    pub account_id: ID,
    pub email: String,
    pub role: GqlRole,
}

#[derive(InputObject)]
pub struct ResendInviteInput {
    pub invitation_id: ID,
}

#[derive(InputObject)]
pub struct CancelInviteInput {
    pub invitation_id: ID,
}

/// Without a session, `displayName` and `password` create the invitee's user.
#[derive(InputObject)]
pub struct AcceptInviteInput {
    pub token: String,
    pub display_name: Option<String>,
    pub password: Option<String>,
}

#[derive(InputObject)]
pub struct ChangeRoleInput {
    pub account_id: ID,
    pub user_id: ID,
    pub role: GqlRole,
}

#[derive(InputObject)]
pub struct RemoveMemberInput {
    pub account_id: ID,
    pub user_id: ID,
}

async fn session_payload(state: &AppState, session: Session) -> ApiResult<SessionPayload> {
    let user = queries::user(&state.pool, session.user_id)
        .await?
        .ok_or_else(|| ApiError::Internal("user missing from read model".into()))?;
    let account = match session.account_id {
        Some(id) => Some(visible_account(state, session.user_id, id).await?),
        None => None,
    };
    Ok(SessionPayload { token: session.token, user: User::from(user), account })
}

/// The invitation a command just changed, from the read model. Its absence means the
/// projection is stopped or behind (`roster projections status`), not a missing invitation.
async fn invitation(state: &AppState, id: uuid::Uuid) -> ApiResult<Invitation> {
    let row = queries::invitation(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("invitation {id} is not in the read model yet")))?;
    Ok(Invitation { row, now: state.clock.now() })
}

async fn invite_payload(state: &AppState, issued: IssuedInvite) -> ApiResult<InvitePayload> {
    Ok(InvitePayload { invitation: invitation(state, issued.invitation_id).await?, invite_link: issued.link })
}

/// Runs a resolver body with the state and request context, mapping errors for this request.
async fn run<'a, T, F, Fut>(ctx: &Context<'a>, body: F) -> Result<T>
where
    F: FnOnce(&'a AppState, &'a RequestContext) -> Fut,
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let (state, req) = env(ctx);
    body(state, req).await.map_err(|e| gql_err(ctx, e))
}

#[Object]
impl MutationRoot {
    /// A new user and a new account in which the user is the only `ADMIN`.
    ///
    /// Errors: `VALIDATION` (`email` — also when already registered —, `password`,
    /// `displayName`, `accountName`).
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<SessionPayload> {
        run(ctx, |state, req| async move {
            let session = state
                .sign_up(req, &input.email, input.password, &input.display_name, &input.account_name)
                .await?;
            session_payload(state, session).await
        })
        .await
    }

    /// A session for an existing user.
    ///
    /// Errors: `UNAUTHENTICATED` (wrong email or password), `RATE_LIMITED`.
    async fn log_in(&self, ctx: &Context<'_>, input: LogInInput) -> Result<SessionPayload> {
        run(ctx, |state, _| async move {
            let session = state.log_in(&input.email, input.password).await?;
            session_payload(state, session).await
        })
        .await
    }

    /// The signed-in user opens another account, as its only `ADMIN`.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION` (`name`).
    async fn create_account(&self, ctx: &Context<'_>, input: CreateAccountInput) -> Result<Account> {
        run(ctx, |state, req| async move {
            let id = state.create_account(req, &input.name).await?;
            visible_account(state, req.caller.user()?.0, id).await
        })
        .await
    }

    /// Invites an email with a role. The link is in this answer only.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION` (`email`, `accountId`, `role`), `NOT_FOUND`,
    /// `FORBIDDEN`, `ALREADY_MEMBER`, `INVITATION_PENDING`, `CONFLICT`.
    async fn invite_user(&self, ctx: &Context<'_>, input: InviteUserInput) -> Result<InvitePayload> {
        run(ctx, |state, req| async move {
            let account_id = parse_id(&input.account_id, "accountId")?;
            let issued = state.invite(req, account_id, &input.email, input.role.into()).await?;
            invite_payload(state, issued).await
        })
        .await
    }

    /// Sends a pending or expired invitation again with a new link and expiry.
    ///
    /// Errors: `UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN`, `INVITATION_NOT_PENDING`,
    /// `ALREADY_MEMBER`, `INVITATION_PENDING`, `CONFLICT`.
    async fn resend_invite(&self, ctx: &Context<'_>, input: ResendInviteInput) -> Result<InvitePayload> {
        run(ctx, |state, req| async move {
            let id = parse_id(&input.invitation_id, "invitationId")?;
            let issued = state.resend(req, id).await?;
            invite_payload(state, issued).await
        })
        .await
    }

    /// Cancels a pending or expired invitation; it stays listed as `CANCELLED`.
    ///
    /// Errors: `UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN`, `INVITATION_NOT_PENDING`, `CONFLICT`.
    async fn cancel_invite(&self, ctx: &Context<'_>, input: CancelInviteInput) -> Result<Invitation> {
        run(ctx, |state, req| async move {
            let id = parse_id(&input.invitation_id, "invitationId")?;
            state.cancel(req, id).await?;
            invitation(state, id).await
        })
        .await
    }

    /// Accepts an invitation: as the signed-in user, or as a new user (with `displayName` and
    /// `password`).
    ///
    /// Errors: `INVALID_TOKEN`, `INVITATION_NOT_PENDING`, `INVITATION_EXPIRED`, `EMAIL_MISMATCH`,
    /// `ALREADY_MEMBER`, `UNAUTHENTICATED`, `VALIDATION`, `RATE_LIMITED`, `CONFLICT`.
    async fn accept_invite(&self, ctx: &Context<'_>, input: AcceptInviteInput) -> Result<SessionPayload> {
        run(ctx, |state, req| async move {
            let session = state
                .accept(req, &input.token, input.display_name.as_deref(), input.password)
                .await?;
            session_payload(state, session).await
        })
        .await
    }

    /// Changes a member's role (Admins only); the same role again changes nothing.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `LAST_ADMIN`,
    /// `SELF_CHANGE`, `CONFLICT`.
    async fn change_role(&self, ctx: &Context<'_>, input: ChangeRoleInput) -> Result<super::types::Member> {
        run(ctx, |state, req| async move {
            let account_id = parse_id(&input.account_id, "accountId")?;
            let user_id = parse_id(&input.user_id, "userId")?;
            state.change_role(req, account_id, user_id, input.role.into()).await?;
            let (rows, _) = queries::members(&state.pool, account_id, None, None, 0, i64::MAX).await?;
            let member = rows.into_iter().find(|m| m.user.id == user_id).ok_or(DomainError::NotFound("member"))?;
            Ok(super::types::Member { user: member.user.into(), role: member.role.into(), joined_at: member.joined_at })
        })
        .await
    }

    /// Removes a member (Admins only) and cancels the invitations they sent.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `LAST_ADMIN`,
    /// `SELF_CHANGE`, `CONFLICT`.
    async fn remove_member(&self, ctx: &Context<'_>, input: RemoveMemberInput) -> Result<RemoveMemberPayload> {
        run(ctx, |state, req| async move {
            let account_id = parse_id(&input.account_id, "accountId")?;
            let user_id = parse_id(&input.user_id, "userId")?;
            state.remove_member(req, account_id, user_id).await?;
            Ok(RemoveMemberPayload { user_id: input.user_id, account_id: input.account_id })
        })
        .await
    }
}
