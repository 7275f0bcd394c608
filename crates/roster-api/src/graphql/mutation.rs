//! `Mutation`. Each resolver parses its input and makes one call to the application layer
//! (`crate::app`), whose answer the read models already show (read-your-writes).

use super::types::{Account, GqlRole, Invitation, InvitePayload, Member, RemoveMemberPayload, SessionPayload};
use super::observe::command;
use super::parse_id;
use async_graphql::{Context, InputObject, Object, Result, ID};

/// The root of all commands.
pub struct MutationRoot;

#[derive(InputObject)]
pub struct SignUpInput {
    /// Trimmed, lower-cased, NFC; a valid address with an IDNA-valid domain (docs/inputs.md).
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    /// 1 to 100 characters after NFC and trimming; no control or bidi characters (docs/inputs.md).
    pub display_name: String,
    /// 1 to 100 characters after NFC and trimming; no control or bidi characters (docs/inputs.md).
    pub account_name: String,
}

#[derive(InputObject)]
pub struct LogInInput {
    pub email: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    /// 1 to 100 characters after NFC and trimming; no control or bidi characters (docs/inputs.md).
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
    /// 1 to 100 characters after NFC and trimming; no control or bidi characters (docs/inputs.md).
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

#[Object]
impl MutationRoot {
    /// A new user and a new account in which the user is the only `ADMIN`.
    ///
    /// Errors: `VALIDATION` (`email`, `password`, `displayName`, `accountName`; `email` also
    /// when already registered, where verification is not required); `EMAIL_NOT_VERIFIED` where
    /// verification is required: the user and account exist, and a verification email is on
    /// its way. There an already registered email gets the same answer, nothing is created,
    /// and its owner is emailed instead; `RATE_LIMITED` (password attempts per client IP).
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<SessionPayload> {
        command(ctx, |app, req| async move {
            let session = app.sign_up(req, &input.email, input.password, &input.display_name, &input.account_name).await?;
            Ok(session.into())
        })
        .await
    }

    /// A session for an existing user.
    ///
    /// Errors: `UNAUTHENTICATED` (wrong email or password), `RATE_LIMITED` (too many attempts
    /// from the client IP, or too many failures for the email from that IP or from anywhere:
    /// README, "Limits"), `EMAIL_NOT_VERIFIED` (right password, email not verified where that
    /// is required).
    async fn log_in(&self, ctx: &Context<'_>, input: LogInInput) -> Result<SessionPayload> {
        command(ctx, |app, req| async move { Ok(app.log_in(req, &input.email, input.password).await?.into()) }).await
    }

    /// The signed-in user opens another account, as its only `ADMIN`.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION` (`name`).
    async fn create_account(&self, ctx: &Context<'_>, input: CreateAccountInput) -> Result<Account> {
        command(ctx, |app, req| async move { Ok(Account(app.create_account(req, &input.name).await?)) }).await
    }

    /// Invites an email with a role. The link is in this answer only.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION` (`email`, `accountId`, `role`), `NOT_FOUND`,
    /// `FORBIDDEN`, `ALREADY_MEMBER`, `INVITATION_PENDING`, `CONFLICT`.
    async fn invite_user(&self, ctx: &Context<'_>, input: InviteUserInput) -> Result<InvitePayload> {
        command(ctx, |app, req| async move {
            let account_id = parse_id(&input.account_id, "accountId")?;
            Ok(app.invite(req, account_id, &input.email, input.role.into()).await?.into())
        })
        .await
    }

    /// Sends a pending or expired invitation again with a new link and expiry.
    ///
    /// Errors: `UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN`, `INVITATION_NOT_PENDING`,
    /// `ALREADY_MEMBER`, `INVITATION_PENDING`, `CONFLICT`, `RATE_LIMITED` (with email on: within
    /// the resend cooldown of the last send; `retryAfterSeconds` says when).
    async fn resend_invite(&self, ctx: &Context<'_>, input: ResendInviteInput) -> Result<InvitePayload> {
        command(ctx, |app, req| async move { Ok(app.resend(req, parse_id(&input.invitation_id, "invitationId")?).await?.into()) }).await
    }

    /// Cancels a pending or expired invitation; it stays listed as `CANCELLED`.
    ///
    /// Errors: `UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN`, `INVITATION_NOT_PENDING`, `CONFLICT`.
    async fn cancel_invite(&self, ctx: &Context<'_>, input: CancelInviteInput) -> Result<Invitation> {
        command(ctx, |app, req| async move { Ok(Invitation(app.cancel(req, parse_id(&input.invitation_id, "invitationId")?).await?, Default::default())) }).await
    }

    /// Accepts an invitation: as the signed-in user, or as a new user (with `displayName` and
    /// `password`).
    ///
    /// Errors: `INVALID_TOKEN`, `INVITATION_NOT_PENDING`, `INVITATION_EXPIRED`, `EMAIL_MISMATCH`,
    /// `ALREADY_MEMBER`, `UNAUTHENTICATED`, `VALIDATION`, `RATE_LIMITED`, `CONFLICT`,
    /// `EMAIL_NOT_VERIFIED` (with the session of an unverified user, where that is required).
    /// Accepting as a new user verifies the email (the link reached it).
    async fn accept_invite(&self, ctx: &Context<'_>, input: AcceptInviteInput) -> Result<SessionPayload> {
        command(ctx, |app, req| async move {
            Ok(app.accept(req, &input.token, input.display_name.as_deref(), input.password).await?.into())
        })
        .await
    }

    /// Opens the link of the verification email sign-up sent (`<public url>/verify/<token>`);
    /// the user may then log in. Returns `true`.
    ///
    /// Errors: `INVALID_TOKEN` (malformed, unknown, already used), `TOKEN_EXPIRED` (after 24 h:
    /// `requestPasswordReset` also proves the email), `RATE_LIMITED`.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        command(ctx, |app, req| async move {
            app.verify_email(req, &token).await?;
            Ok(true)
        })
        .await
    }

    /// Emails a password-reset link (`<public url>/reset/<token>`, valid 1 h; a newer request
    /// replaces it) if `email` is registered. Answers `true` at once, whether or not it is.
    ///
    /// Errors: `VALIDATION` (`email` not an address), `RATE_LIMITED` (per client IP, per email).
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        command(ctx, |app, req| async move {
            app.request_password_reset(req, &email).await?;
            Ok(true)
        })
        .await
    }

    /// Sets a new password with the emailed reset link (once); also verifies the email. The old
    /// password stops working. Returns `true`; log in with the new password.
    ///
    /// Errors: `INVALID_TOKEN` (malformed, unknown, used, superseded), `TOKEN_EXPIRED`,
    /// `VALIDATION` (`password`: 8 to 128 characters), `RATE_LIMITED`.
    async fn reset_password(&self, ctx: &Context<'_>, token: String, password: String) -> Result<bool> {
        command(ctx, |app, req| async move {
            app.reset_password(req, &token, password).await?;
            Ok(true)
        })
        .await
    }

    /// Changes a member's role (Admins only); the same role again changes nothing.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `LAST_ADMIN`,
    /// `SELF_CHANGE`, `CONFLICT`.
    async fn change_role(&self, ctx: &Context<'_>, input: ChangeRoleInput) -> Result<Member> {
        command(ctx, |app, req| async move {
            let (account_id, user_id) = (parse_id(&input.account_id, "accountId")?, parse_id(&input.user_id, "userId")?);
            Ok(app.change_role(req, account_id, user_id, input.role.into()).await?.into())
        })
        .await
    }

    /// Removes a member (Admins only) and cancels the invitations they sent.
    ///
    /// Errors: `UNAUTHENTICATED`, `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `LAST_ADMIN`,
    /// `SELF_CHANGE`, `CONFLICT`.
    async fn remove_member(&self, ctx: &Context<'_>, input: RemoveMemberInput) -> Result<RemoveMemberPayload> {
        command(ctx, |app, req| async move {
            let (account_id, user_id) = (parse_id(&input.account_id, "accountId")?, parse_id(&input.user_id, "userId")?);
            app.remove_member(req, account_id, user_id).await?;
            Ok(RemoveMemberPayload { user_id: input.user_id, account_id: input.account_id })
        })
        .await
    }
}
