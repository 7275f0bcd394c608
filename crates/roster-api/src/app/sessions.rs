//! Sessions: sign-up, log-in, and who the viewer is.

use super::unit_of_work::{decide, UnitOfWork};
use roster_store::NewCredential;
use super::{AccountView, App, RequestContext};
use crate::auth::{self, Caller};
use crate::config::Config;
use crate::rate_limit::Limiter;
use crate::error::{ApiError, ApiResult};
use roster_domain::account::UserRef;
use roster_domain::{Account, AccountCommand, AccountId, DomainError, Email, User, UserCommand, UserId};
use roster_projections::queries::{self, UserRow};
use roster_store::credentials;
use uuid::Uuid;

/// The failed log-ins `logIn` counts (issue 10, "the per-email limiter lets anyone lock a
/// victim out"): per email and client IP, so one source's guesses limit that source only, and
/// per email from anywhere, a much higher ceiling on distributed guessing. Both limiters keep
/// at most [`crate::rate_limit::DEFAULT_MAX_KEYS`] keys.
pub(super) struct LoginFailures {
    per_source: Limiter,
    per_email: Limiter,
}

impl LoginFailures {
    /// At `config`'s rates ([`Config::login_failures_per_source`],
    /// [`Config::login_failures_per_email`]).
    pub(super) fn new(config: &Config) -> Self {
        Self { per_source: Limiter::new(config.login_failures_per_source), per_email: Limiter::new(config.login_failures_per_email) }
    }

    /// The per-source key: the IP first (it has no space), so no two pairs share a key.
    fn source(email: &Email, ip_key: &str) -> String {
        format!("{ip_key} {}", email.as_str())
    }

    /// Whether `email` may try a password from `ip_key` now, without counting.
    ///
    /// Errors: `RATE_LIMITED` when either limiter is out of attempts.
    fn check(&self, email: &Email, ip_key: &str) -> ApiResult<()> {
        self.per_source.check(&Self::source(email, ip_key))?;
        self.per_email.check(email.as_str())
    }

    /// Counts a failure in both. At most a race's worth past a limit: the check before the
    /// password and this count are not one step.
    fn failed(&self, email: &Email, ip_key: &str) {
        let _ = self.per_source.attempt(&Self::source(email, ip_key));
        let _ = self.per_email.attempt(email.as_str());
    }

    /// A success clears this source's failures only: the per-email ceiling drains with time,
    /// so the owner logging in does not hand distributed guessers a fresh allowance.
    fn succeeded(&self, email: &Email, ip_key: &str) {
        self.per_source.reset(&Self::source(email, ip_key));
    }
}

/// A signed-in session as its payload shows it: the token, the user, and the account it was
/// opened for (sign-up, accept).
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The bearer token (HS256 JWT).
    pub token: String,
    /// The signed-in user's profile.
    pub user: UserRow,
    /// The account the session was opened for, if any.
    pub account: Option<AccountView>,
}

impl App {
    /// A session token for `user_id`, and the payload's read-model views.
    pub(super) async fn open_session(&self, user_id: UserId, email: &Email, account_id: Option<AccountId>) -> ApiResult<SessionView> {
        let token = auth::issue_session(&self.0.config.jwt_secret, user_id, email, self.0.config.session_ttl)?;
        let user = self.user(user_id).await?;
        let account = match account_id {
            Some(id) => Some(self.account_for(user_id, id).await?),
            None => None,
        };
        Ok(SessionView { token, user, account })
    }

    /// `signUp`: a new user and a new account in which the user is the only Admin.
    ///
    /// On a server that sends email, the sign-up owes a verification link (see
    /// [`super::ownership`]); where verification is required, the user and account are
    /// committed and the answer is `EMAIL_NOT_VERIFIED` instead of a session.
    ///
    /// An email that is already registered (issue 10, "`signUp` reveals registered emails"):
    /// where verification is required, the answer is the same `EMAIL_NOT_VERIFIED`, after the
    /// same checks and the same password hash, nothing is written, and the address's owner is
    /// emailed a reset link saying someone tried to sign up (see
    /// [`App::tell_owner_of_sign_up_attempt`]). Where it is not (`--dev`, mail off, or
    /// `ROSTER_REQUIRE_VERIFIED_EMAIL=false`), a fresh sign-up answers with a session, which a
    /// taken email cannot fake, so it is a `VALIDATION` error on `email` ([`ApiError::EmailTaken`]).
    ///
    /// Errors: `VALIDATION` on `email`, `password`, `displayName` or `accountName` (and on
    /// `email` when taken, see above); `EMAIL_NOT_VERIFIED` (see above); `RATE_LIMITED`
    /// (password attempts per client IP).
    pub async fn sign_up(&self, ctx: &RequestContext, email: &str, password: String, display_name: &str, account_name: &str) -> ApiResult<SessionView> {
        let email = Email::parse(email)?;
        roster_domain::password::check_password(&password)?;
        let now = self.now();
        let (user_id, account_id) = (UserId::from(Uuid::new_v4()), AccountId::from(Uuid::new_v4()));
        let check = self.sign_up_check(user_id, now)?;
        let held_back = self.held_back(&check);
        let register = UserCommand::Register { email: email.clone(), display_name: display_name.to_string(), now, check };
        let user = decide::<User>(&self.0.store, user_id, register).await?;
        let founder = UserRef { id: user_id, email: email.clone() };
        let create = AccountCommand::Create { name: account_name.to_string(), founder, now };
        let account = decide::<Account>(&self.0.store, account_id, create)
            .await
            .map_err(|e| rename_field(e, "name", "accountName"))?;
        self.0.password_limiter.attempt(&ctx.ip_key())?;
        let hash = self.0.hasher.hash(password).await?;
        let credential = NewCredential { user_id, email: email.to_string(), password_hash: hash };
        let work = UnitOfWork { account: Some(&account), user: Some(&user), credential: Some(credential) };
        match self.commit(work, ctx, user_id, now).await {
            // The store refused the credential, so nothing of this sign-up was written.
            Err(ApiError::EmailTaken) if held_back => {
                self.tell_owner_of_sign_up_attempt(ctx, email);
                return Err(DomainError::EmailNotVerified.into());
            }
            committed => committed?,
        };
        if held_back {
            // Registered, but no session until the emailed link proves the address.
            return Err(DomainError::EmailNotVerified.into());
        }
        self.open_session(user_id, &email, Some(account_id)).await
    }

    /// `logIn`.
    ///
    /// Errors: `UNAUTHENTICATED` for an unknown email or a wrong password (the same answer for
    /// both); `RATE_LIMITED` after too many attempts from one IP, after 10 quick failures for
    /// one email from one IP (a success from there clears those; other IPs are not held back),
    /// after 100 failures for one email from anywhere (even for the right password, see
    /// [`Config::login_failures_per_email`]), or while too many passwords are being checked;
    /// `EMAIL_NOT_VERIFIED` for the right password of an unverified user where verification
    /// is required.
    pub async fn log_in(&self, ctx: &RequestContext, email: &str, password: String) -> ApiResult<SessionView> {
        let ip_key = ctx.ip_key();
        self.0.password_limiter.attempt(&ip_key)?;
        let email = Email::parse(email).map_err(|_| ApiError::Unauthenticated("wrong email or password"))?;
        // Only failures count, so nobody is limited by logging in correctly.
        self.0.login_failures.check(&email, &ip_key)?;
        let credential = credentials::find_by_email(&self.0.pool, email.as_str()).await?;
        let user_id = credential.as_ref().map(|c| c.user_id);
        // An unknown email is checked against a dummy hash, so both refusals take as long.
        let verified = self.0.hasher.verify(password, credential.map(|c| c.password_hash)).await?;
        match user_id.filter(|_| verified) {
            Some(user_id) => {
                self.0.login_failures.succeeded(&email, &ip_key);
                // Only after the right password: a guesser learns nothing of the address.
                self.ensure_verified(user_id).await?;
                self.open_session(user_id, &email, None).await
            }
            None => {
                self.0.login_failures.failed(&email, &ip_key);
                Err(ApiError::Unauthenticated("wrong email or password"))
            }
        }
    }

    /// `viewer`: the signed-in user and every account they belong to; `None` without a valid
    /// session (or for a user the read model does not show yet).
    ///
    /// Errors: `INTERNAL` (database).
    pub async fn viewer(&self, ctx: &RequestContext) -> ApiResult<Option<(UserRow, Vec<AccountView>)>> {
        let Caller::User { id, .. } = ctx.caller else { return Ok(None) };
        let Some(user) = queries::user(&self.0.pool, id).await? else { return Ok(None) };
        let accounts = queries::accounts_of(&self.0.pool, id)
            .await?
            .into_iter()
            .map(|(row, viewer_role)| AccountView { row, viewer_role })
            .collect();
        Ok(Some((user, accounts)))
    }

    /// The profiles of the users among `ids`, in one read (the GraphQL loader batches
    /// per-row lookups into this).
    ///
    /// Errors: `INTERNAL` (database).
    pub async fn users(&self, ids: &[UserId]) -> ApiResult<std::collections::HashMap<UserId, UserRow>> {
        self.0.user_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(queries::users(&self.0.pool, ids).await?.into_iter().map(|u| (u.id, u)).collect())
    }

    /// A user's public profile. A user id that an event names always has a row, so its absence
    /// means the read model is behind or broken.
    ///
    /// Errors: `INTERNAL` when the user is missing from the read model.
    pub async fn user(&self, id: UserId) -> ApiResult<UserRow> {
        self.0.user_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        queries::user(&self.0.pool, id)
            .await?
            .ok_or_else(|| ApiError::Internal(format!("user {id} missing from read model")))
    }
}

/// Renames the field of a validation error (the domain says `name`, `signUp` says `accountName`).
fn rename_field(err: ApiError, from: &str, to: &str) -> ApiError {
    match err {
        ApiError::Domain(DomainError::Validation { field, message }) if field == from => ApiError::validation(to, message),
        other => other,
    }
}
