//! Email ownership (issue 12, "Email ownership"): the verification link a sign-up owes,
//! `verifyEmail`, `requestPasswordReset`, `resetPassword`, and the check that logging in and
//! accepting an invitation with a session make.
//!
//! Links are derived like invitation links ([`roster_domain::user_token`]): the user's stream
//! records a nonce and the token's digest, the mailer rebuilds the link after commit, and no
//! table, event or log line holds the token.

use super::unit_of_work::{decide, UnitOfWork};
use super::{App, RequestContext, SessionCheck};
use crate::auth::{self, Caller};
use crate::config::OwnershipSettings;
use crate::error::{ApiError, ApiResult};
use crate::rate_limit::{Limiter, Rate};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use roster_domain::{DomainError, Email, EmailCheck, OwedLink, Purpose, ResetReason, SendNonce, User, UserCommand, UserId, UserToken};
use roster_store::{credentials, EventStore, StoreError};
use sqlx::PgPool;
use std::time::Duration;

/// The limiters of this module: `requestPasswordReset` per IP and per email, and link tokens
/// presented (`verifyEmail`, `resetPassword`) per IP.
pub(super) struct ResetLimits {
    per_ip: Limiter,
    per_email: Limiter,
    tokens: Limiter,
}

impl ResetLimits {
    pub(super) fn new(settings: &OwnershipSettings) -> Self {
        Self {
            per_ip: Limiter::new(settings.reset_rate_per_ip),
            per_email: Limiter::new(settings.reset_rate_per_email),
            // As invite tokens: 30 at once, then one per 2 s (a 256-bit secret is not guessed).
            tokens: Limiter::new(Rate::new(30, Duration::from_secs(2))),
        }
    }
}

/// Whether `user_id`'s session issued at `issued_ms` (ms since the Unix epoch) still counts:
/// not when the user's password was reset after it (`credentials.sessions_valid_after`).
///
/// Errors: the store's.
pub(super) async fn session_counts(pool: &PgPool, user_id: UserId, issued_ms: i64) -> Result<bool, StoreError> {
    let after = credentials::sessions_valid_after(pool, user_id).await?;
    Ok(after.is_none_or(|after| issued_ms >= after.timestamp_millis()))
}

impl App {
    /// A new link for `purpose` owed to `user_id`: a fresh nonce, its token's digest, expiry.
    fn owed_link(&self, purpose: Purpose, user_id: UserId, ttl: Duration, now: DateTime<Utc>) -> ApiResult<OwedLink> {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&auth::random_secret()?[..16]);
        let mail_nonce = SendNonce::new(bytes);
        let token = UserToken::derive(&self.0.config.token_key(), purpose, user_id, &mail_nonce);
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(OwedLink { mail_nonce, token_digest: token.digest(), expires_at: now + ttl })
    }

    /// What a sign-up owes: a verification link where verification is required and the
    /// server sends email, else nothing (the user is not held back).
    pub(super) fn sign_up_check(&self, user_id: UserId, now: DateTime<Utc>) -> ApiResult<EmailCheck> {
        let ownership = &self.0.config.ownership;
        if !(ownership.require_verified_email && self.0.config.mail.is_on()) {
            return Ok(EmailCheck::NotChecked);
        }
        Ok(EmailCheck::Owed(self.owed_link(Purpose::Verify, user_id, self.0.config.ownership.verify_ttl, now)?))
    }

    /// Whether sign-up answers `EMAIL_NOT_VERIFIED` (after committing) for `check`.
    pub(super) fn held_back(&self, check: &EmailCheck) -> bool {
        matches!(check, EmailCheck::Owed(_))
    }

    /// Refuses an unverified user where verification is required.
    ///
    /// Errors: `EMAIL_NOT_VERIFIED`; store errors.
    pub(super) async fn ensure_verified(&self, user_id: UserId) -> ApiResult<()> {
        if !self.0.config.ownership.require_verified_email {
            return Ok(());
        }
        let user = self.0.store.load::<User>(&user_id.to_string()).await?.aggregate;
        if user.email_verified {
            Ok(())
        } else {
            Err(DomainError::EmailNotVerified.into())
        }
    }

    /// Who presents `bearer` (the operator token, a session whose signature verifies, or
    /// nobody), and the check of one more rule for a session, started here and answered
    /// beside the request: a session issued before the user's password was last reset does
    /// not count, so the owner who reclaims an address ends the other person's sessions. The
    /// check is one primary-key read; when it fails, the session does not count (fail closed).
    /// See [`SessionCheck`] for who waits for it.
    pub fn identify(&self, bearer: Option<&str>) -> (Caller, SessionCheck) {
        let config = &self.0.config;
        let caller = auth::identify_session(&config.jwt_secret, config.operator_token.as_deref(), bearer);
        let Caller::User { id, issued_ms, .. } = &caller else { return (caller, SessionCheck::settled()) };
        let (pool, id, issued_ms) = (self.0.pool.clone(), *id, *issued_ms);
        let check = tokio::spawn(async move {
            session_counts(&pool, id, issued_ms).await.unwrap_or_else(|err| {
                tracing::warn!(%err, "session check failed: treating the caller as signed out");
                false
            })
        });
        (caller, SessionCheck::pending(check.map(|counts| counts.unwrap_or(false)).boxed()))
    }

    /// `verifyEmail`: opens the verification link.
    ///
    /// Errors: `INVALID_TOKEN` (malformed, unknown, already used), `TOKEN_EXPIRED`,
    /// `RATE_LIMITED` (link tokens presented per IP: 30, then one per 2 s).
    pub async fn verify_email(&self, ctx: &RequestContext, token: &str) -> ApiResult<()> {
        self.0.reset_limits.tokens.attempt(&ctx.ip_key())?;
        let token = UserToken::parse(token)?;
        let digest = token.digest();
        let now = self.now();
        self.retry(|| async {
            let user = decide::<User>(&self.0.store, token.user_id, UserCommand::VerifyEmail { token_digest: digest.clone(), now }).await?;
            self.commit(UnitOfWork { user: Some(&user), ..Default::default() }, ctx, token.user_id, now).await
        })
        .await?;
        Ok(())
    }

    /// `requestPasswordReset`: answers at once and the same whether or not `email` is
    /// registered; the look-up and the `PasswordResetRequested` (when it is) happen after the
    /// answer, so neither the payload nor the time tells. With email off nothing is sent.
    ///
    /// Errors: `VALIDATION` (`email` not an address); `RATE_LIMITED` per client IP or per
    /// email (registered or not).
    pub async fn request_password_reset(&self, ctx: &RequestContext, email: &str) -> ApiResult<()> {
        self.0.reset_limits.per_ip.attempt(&ctx.ip_key())?;
        let email = Email::parse(email)?;
        self.0.reset_limits.per_email.attempt(email.as_str())?;
        self.reset_after_answer(ctx, email, ResetReason::Requested);
        Ok(())
    }

    /// Tells the owner of `email` (registered) that someone tried to sign up with it, with a
    /// reset link: a `PasswordResetRequested` with reason `SIGN_UP_ATTEMPT`, recorded after
    /// the answer. The per-email reset limit applies, silently (the sign-up's answer must not
    /// differ): past it nothing is sent, so a flood of sign-ups does not flood the owner.
    pub(super) fn tell_owner_of_sign_up_attempt(&self, ctx: &RequestContext, email: Email) {
        if self.0.reset_limits.per_email.attempt(email.as_str()).is_err() {
            tracing::info!(request_id = %ctx.request_id, "sign-up with a registered email: the owner was told recently, nothing sent");
            return;
        }
        self.reset_after_answer(ctx, email, ResetReason::SignUpAttempt);
    }

    /// Records a reset request for `email` (if registered) in a task of its own, so the
    /// answer neither waits for it nor tells by its time whether the email is registered.
    fn reset_after_answer(&self, ctx: &RequestContext, email: Email, reason: ResetReason) {
        let (app, ctx) = (self.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Err(err) = app.record_reset_request(&ctx, &email, reason).await {
                tracing::warn!(%err, request_id = %ctx.request_id, "password reset request not recorded");
            }
        });
    }

    async fn record_reset_request(&self, ctx: &RequestContext, email: &Email, reason: ResetReason) -> ApiResult<()> {
        if !self.0.config.mail.is_on() {
            tracing::info!(request_id = %ctx.request_id, "password reset requested, but email is off: nothing sent");
            return Ok(());
        }
        let Some(credential) = credentials::find_by_email(&self.0.pool, email.as_str()).await? else { return Ok(()) };
        let user_id = credential.user_id;
        let now = self.now();
        let link = self.owed_link(Purpose::Reset, user_id, self.0.config.ownership.reset_ttl, now)?;
        self.retry(|| async {
            let user = decide::<User>(&self.0.store, user_id, UserCommand::RequestPasswordReset { link: link.clone(), reason, now }).await?;
            self.commit(UnitOfWork { user: Some(&user), ..Default::default() }, ctx, user_id, now).await
        })
        .await?;
        Ok(())
    }

    /// `resetPassword`: replaces the password through a reset link, in one commit with
    /// `PasswordChanged` (and `EmailVerified` when the email was not verified yet). The old
    /// password stops working at once, and so do sessions issued before (see
    /// [`App::identify`]).
    ///
    /// Errors: `INVALID_TOKEN` (malformed, unknown, used, superseded), `TOKEN_EXPIRED`,
    /// `VALIDATION` (`password`), `RATE_LIMITED` (token attempts or password hashes per IP).
    pub async fn reset_password(&self, ctx: &RequestContext, token: &str, password: String) -> ApiResult<()> {
        self.0.reset_limits.tokens.attempt(&ctx.ip_key())?;
        let token = UserToken::parse(token)?;
        let (user_id, digest) = (token.user_id, token.digest());
        roster_domain::password::check_password(&password)?;
        let now = self.now();
        let hash = tokio::sync::OnceCell::<String>::new();
        self.retry(|| async {
            let decided = decide::<User>(&self.0.store, user_id, UserCommand::ResetPassword { token_digest: digest.clone(), now }).await?;
            // Hashed only once the link is known good, and once across conflict retries.
            let hash = hash
                .get_or_try_init(|| async {
                    self.0.password_limiter.attempt(&ctx.ip_key())?;
                    self.0.hasher.hash(password.clone()).await
                })
                .await?;
            let mut tx = self.0.pool.begin().await.map_err(roster_store::StoreError::from)?;
            // Sessions issued until now end (by the real clock: sessions carry real time).
            sqlx::query("UPDATE credentials SET password_hash = $2, sessions_valid_after = $3 WHERE user_id = $1")
                .bind(user_id)
                .bind(hash)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await
                .map_err(roster_store::StoreError::from)?;
            // Last in the transaction: from the append to commit, other appenders wait.
            EventStore::append(&mut tx, &[decided.append()?], &ctx.metadata(Some(user_id), now)).await?;
            tx.commit().await.map_err(roster_store::StoreError::from)?;
            Ok(())
        })
        .await
    }
}
