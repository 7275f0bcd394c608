//! Invitations: invite, resend, cancel, preview, accept, and the list an account shows.

use super::unit_of_work::{decide, UnitOfWork};
use super::{AccountView, App, RequestContext, SessionView};
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Duration, Utc};
use roster_domain::account::UserRef;
use roster_domain::{token, AccountCommand, AccountId, DomainError, Email, InvitationId, InvitationStatus, InviteToken, Permission, Role, SendNonce, TokenDigest, User, UserCommand, UserId};
use roster_projections::queries::{self, InvitationKey, InvitationRow, Window};
use roster_store::NewCredential;
use uuid::Uuid;

/// An invitation as a query shows it: the read-model row and the instant its status is
/// derived at (rule "Expiry").
#[derive(Debug, Clone)]
pub struct InvitationView {
    /// The read-model row.
    pub row: InvitationRow,
    /// The instant the status is derived at.
    pub now: DateTime<Utc>,
}

impl InvitationView {
    /// The status at [`InvitationView::now`].
    pub fn status(&self) -> InvitationStatus {
        self.row.status(self.now)
    }
}

/// An issued (or re-issued) invitation and its one-time link.
#[derive(Debug, Clone)]
pub struct InviteIssued {
    /// The invitation, as the read model now shows it.
    pub invitation: InvitationView,
    /// `<public url>/invite/<token>`; the token is never stored, so this is its only copy.
    pub link: String,
}

/// What the accept page shows for a link, before the invitee accepts.
#[derive(Debug, Clone)]
pub struct PreviewView {
    /// The inviting account's name.
    pub account_name: String,
    /// The original inviter's display name (empty if unknown).
    pub invited_by_name: String,
    /// The role granted on acceptance.
    pub role: Role,
    /// The invited, normalised email.
    pub email: String,
    /// The status now.
    pub status: InvitationStatus,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// What every send of a link decides with: who, the new token's digest, when, for how long,
/// and the nonce the mailer needs (`None`: email delivery is off).
#[derive(Clone)]
struct Issue {
    actor: UserId,
    token: TokenDigest,
    now: DateTime<Utc>,
    ttl: Duration,
    mail_nonce: Option<SendNonce>,
}

impl App {
    fn ttl(&self) -> Duration {
        Duration::from_std(self.0.config.invite_ttl).unwrap_or(Duration::days(7))
    }

    /// A fresh token for one send, derived from a new nonce and the server's token key (see
    /// `roster_domain::token`), and the nonce to record when the email is owed.
    fn new_token(&self, account_id: AccountId, invitation_id: InvitationId) -> ApiResult<(InviteToken, Option<SendNonce>)> {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&auth::random_secret()?[..16]);
        let nonce = SendNonce::new(bytes);
        let token = InviteToken::derive(&self.0.config.token_key(), account_id, invitation_id, &nonce);
        Ok((token, self.0.config.mail.is_on().then_some(nonce)))
    }

    /// The invitation `id` as the read model shows it after a command. Its absence means the
    /// projection is stopped or behind (`roster projections status`), not a missing invitation.
    async fn invitation_after_command(&self, id: InvitationId) -> ApiResult<InvitationView> {
        let row = queries::invitation(&self.0.pool, id)
            .await?
            .ok_or_else(|| ApiError::Internal(format!("invitation {id} is not in the read model yet")))?;
        Ok(InvitationView { row, now: self.now() })
    }

    /// Sends the one-time link: `invitation_id`'s new token is issued, `command` records its
    /// digest (and its nonce when the mailer is to email it), and the answer carries the link.
    async fn issue(&self, ctx: &RequestContext, account_id: AccountId, invitation_id: InvitationId, command: impl Fn(Issue) -> AccountCommand) -> ApiResult<InviteIssued> {
        let (actor, _) = ctx.caller.user()?;
        let (token, mail_nonce) = self.new_token(account_id, invitation_id)?;
        let issue = Issue { actor, token: token.digest(), now: self.now(), ttl: self.ttl(), mail_nonce };
        self.execute(ctx, account_id, Some(actor), issue.now, || command(issue.clone())).await?;
        let invitation = self.invitation_after_command(invitation_id).await?;
        Ok(InviteIssued { invitation, link: self.0.config.invite_link(&token.encode()) })
    }

    /// `inviteUser`: invites `email` to `account_id` with `role`; the link is returned once.
    ///
    /// Errors: `UNAUTHENTICATED`; `VALIDATION` (`email`); `NOT_FOUND` (account); `FORBIDDEN`
    /// (not a member, may not invite, may not grant `role`); `ALREADY_MEMBER`; `INVITATION_PENDING`.
    pub async fn invite(&self, ctx: &RequestContext, account_id: AccountId, email: &str, role: Role) -> ApiResult<InviteIssued> {
        ctx.caller.user()?;
        let email = Email::parse(email)?;
        let invitation_id = InvitationId::from(Uuid::new_v4());
        self.issue(ctx, account_id, invitation_id, |Issue { actor, token, now, ttl, mail_nonce }| AccountCommand::Invite {
            actor,
            invitation_id,
            email: email.clone(),
            role,
            token,
            now,
            ttl,
            mail_nonce,
        })
        .await
    }

    /// The account an invitation belongs to, from the event log itself (never a read model, so
    /// a stopped projection cannot hide it).
    ///
    /// Errors: `NOT_FOUND` for an unknown invitation.
    async fn account_of_invitation(&self, invitation_id: InvitationId) -> ApiResult<AccountId> {
        self.0.store.account_of_invitation(invitation_id).await?.ok_or(ApiError::Domain(DomainError::NotFound("invitation")))
    }

    /// `resendInvite`: new token (the old link stops working), new expiry, same id,
    /// `sendCount` + 1.
    ///
    /// Errors: `UNAUTHENTICATED`; `NOT_FOUND`; `FORBIDDEN` (neither the inviter nor an Admin);
    /// `INVITATION_NOT_PENDING`; `ALREADY_MEMBER`; `INVITATION_PENDING` (a newer one exists);
    /// `RATE_LIMITED` with `retryAfterSeconds` when it would email within the resend cooldown
    /// (`ROSTER_RESEND_COOLDOWN`) of the last send.
    pub async fn resend(&self, ctx: &RequestContext, invitation_id: InvitationId) -> ApiResult<InviteIssued> {
        ctx.caller.user()?;
        let account_id = self.account_of_invitation(invitation_id).await?;
        let cooldown = Duration::from_std(self.0.config.mail.resend_cooldown).unwrap_or(Duration::seconds(60));
        self.issue(ctx, account_id, invitation_id, |Issue { actor, token, now, ttl, mail_nonce }| AccountCommand::Resend {
            actor,
            invitation_id,
            token,
            now,
            ttl,
            mail_nonce,
            cooldown,
        })
        .await
    }

    /// `cancelInvite`. Errors as [`App::resend`], less the last two.
    pub async fn cancel(&self, ctx: &RequestContext, invitation_id: InvitationId) -> ApiResult<InvitationView> {
        let (actor, _) = ctx.caller.user()?;
        let account_id = self.account_of_invitation(invitation_id).await?;
        let now = self.now();
        self.execute(ctx, account_id, Some(actor), now, || AccountCommand::Cancel { actor, invitation_id, now }).await?;
        self.invitation_after_command(invitation_id).await
    }

    /// `invitationPreview`: what a link is for. Public: the token is the credential. Reads the
    /// read model; the token is checked by the domain's one token check (rule "Token").
    ///
    /// Errors: `INVALID_TOKEN` (malformed, unknown, rotated); `RATE_LIMITED`; `UNAUTHENTICATED`
    /// for a session that ended (the HTTP handler then answers without one: the attempt
    /// counts once, in that run).
    pub async fn preview(&self, ctx: &RequestContext, token: &str) -> ApiResult<PreviewView> {
        ctx.confirm_session().await?;
        self.0.token_limiter.attempt(&ctx.ip_key())?;
        let token = InviteToken::parse(token)?;
        let row = queries::invitation(&self.0.pool, token.invitation_id).await?.filter(|r| r.account_id == token.account_id);
        token::verify(row.as_ref().map(|r| &r.token_digest), &token.digest())?;
        let row = row.expect("verified");
        let account = queries::account(&self.0.pool, row.account_id).await?.ok_or(DomainError::InvalidToken)?;
        let inviter = queries::user(&self.0.pool, row.invited_by).await?;
        Ok(PreviewView {
            account_name: account.name,
            invited_by_name: inviter.map(|u| u.display_name).unwrap_or_default(),
            role: row.role,
            status: row.status(self.now()),
            email: row.email,
            expires_at: row.expires_at,
        })
    }

    /// `acceptInvite`. With a session, the signed-in user joins (their email must be the
    /// invited one). Without, a new user is registered with the invited email, `display_name`
    /// and `password`, and a session for them is returned.
    ///
    /// Errors: `INVALID_TOKEN`; `INVITATION_NOT_PENDING`; `INVITATION_EXPIRED`;
    /// `EMAIL_MISMATCH`; `ALREADY_MEMBER`; `EMAIL_NOT_VERIFIED` (a session of an unverified
    /// user where verification is required); `UNAUTHENTICATED` (no session, but the invited email
    /// already has a user); `VALIDATION` (`displayName`, `password`); `RATE_LIMITED` (too many
    /// token attempts from one IP).
    pub async fn accept(&self, ctx: &RequestContext, token: &str, display_name: Option<&str>, password: Option<String>) -> ApiResult<SessionView> {
        self.0.token_limiter.attempt(&ctx.ip_key())?;
        let token = InviteToken::parse(token)?;
        let digest = token.digest();
        let account_id = token.account_id;
        let now = self.now();
        if let Caller::User { id, email, .. } = &ctx.caller {
            self.ensure_verified(*id).await?;
            let user = UserRef { id: *id, email: email.clone() };
            let accept = || AccountCommand::Accept { invitation_id: token.invitation_id, token: digest.clone(), user: user.clone(), now };
            self.execute(ctx, account_id, Some(*id), now, accept).await?;
            return self.open_session(*id, email, Some(account_id)).await;
        }
        let user_id = UserId::from(Uuid::new_v4());
        let hash = tokio::sync::OnceCell::<String>::new();
        let email = self.retry(|| async {
            // The new user's email is the invited one, so read it before deciding.
            let (invited_email, account) = self
                .decide_on_cached(account_id, |account| {
                    let invited_email = account.invitation_for_token(token.invitation_id, &digest)?.email.clone();
                    let user = UserRef { id: user_id, email: invited_email.clone() };
                    Ok((invited_email, AccountCommand::Accept { invitation_id: token.invitation_id, token: digest.clone(), user, now }))
                })
                .await?;
            if roster_store::credentials::find_by_email(&self.0.pool, invited_email.as_str()).await?.is_some() {
                return Err(ApiError::Unauthenticated("a user with this email exists: sign in to accept"));
            }
            let display_name = display_name.ok_or_else(|| ApiError::validation("displayName", "is required"))?;
            let password = password.clone().ok_or_else(|| ApiError::validation("password", "is required"))?;
            roster_domain::password::check_password(&password)?;
            // The invitation link reached this address: that proves it.
            let check = roster_domain::EmailCheck::ProvenByInvitation;
            let register = UserCommand::Register { email: invited_email.clone(), display_name: display_name.to_string(), now, check };
            let user = decide::<User>(&self.0.store, user_id, register).await?;
            let hash = hash
                .get_or_try_init(|| async {
                    self.0.password_limiter.attempt(&ctx.ip_key())?;
                    self.0.hasher.hash(password).await
                })
                .await?;
            let credential = NewCredential { user_id, email: invited_email.to_string(), password_hash: hash.clone() };
            let work = UnitOfWork { account: Some(&account), user: Some(&user), credential: Some(credential) };
            self.commit(work, ctx, user_id, now).await.map_err(|e| match e {
                ApiError::EmailTaken => ApiError::Unauthenticated("a user with this email exists: sign in to accept"),
                other => other,
            })?;
            Ok(invited_email)
        })
        .await?;
        self.open_session(user_id, &email, Some(account_id)).await
    }

    /// `Account.invitations`: up to `limit` of the account's invitations, newest first, from
    /// `window`, filtered by the status now; and the filtered total.
    ///
    /// Errors: `FORBIDDEN` when the viewer's role may not read the Members feature
    /// ([`Role::may_read`], permission matrix); `INTERNAL` (database).
    pub async fn invitations(&self, account: &AccountView, status: Option<InvitationStatus>, window: Window<InvitationKey>, limit: i64) -> ApiResult<(Vec<InvitationView>, i64)> {
        account.require_read(Permission::Members)?;
        let now = self.now();
        let (rows, total) = queries::invitations_in(&self.0.pool, account.row.id, status, now, window, limit).await?;
        Ok((rows.into_iter().map(|row| InvitationView { row, now }).collect(), total))
    }
}
