//! Command handling: load the aggregate, let it decide, append its events with the expected
//! version, then wait until the projections show them (read-your-writes).
//!
//! An optimistic-concurrency conflict (another request appended to the same stream first) is
//! retried with a fresh load up to [`MAX_ATTEMPTS`] times, with a short random back-off; then
//! the request answers `CONFLICT`. Because every rule is re-decided on the fresh state, two
//! Admins demoting each other at once cannot both succeed: the second sees the first's change.

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, RequestContext};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use roster_domain::account::UserRef;
use roster_domain::{
    Account, AccountCommand, DomainError, Email, EventMetadata, InviteToken, Role, User, UserCommand,
};
use roster_store::{credentials, Append, EventStore, Loaded, StoreError};
use std::future::Future;
use uuid::Uuid;

/// Attempts per command before answering `CONFLICT`.
pub const MAX_ATTEMPTS: u32 = 12;

/// A signed-in session: the token and whom it is for.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token (HS256 JWT).
    pub token: String,
    /// Whom the session is for.
    pub user_id: Uuid,
    /// The account the session was opened for (sign-up, accept), if any.
    pub account_id: Option<Uuid>,
}

/// An issued invitation: its id and the one-time link.
#[derive(Debug, Clone)]
pub struct IssuedInvite {
    /// The invitation's id (unchanged by resends).
    pub invitation_id: Uuid,
    /// `<public url>/invite/<token>`; the token is never stored, so this is its only copy.
    pub link: String,
}

/// An aggregate's decision: its stream, the version it was decided at, its state after the
/// events, and the events.
struct Decided<A: Aggregate> {
    id: String,
    version: usize,
    aggregate: A,
    events: Vec<A::Event>,
}

impl<A: Aggregate> Decided<A> {
    fn append(&self) -> Result<Append, StoreError> {
        Append::new::<A>(self.id.clone(), self.version, &self.events)
    }
}

async fn decide<A>(store: &EventStore, id: Uuid, command: A::Command) -> ApiResult<Decided<A>>
where
    A: Aggregate<Error = DomainError, Services = ()>,
{
    let loaded = store.load::<A>(&id.to_string()).await?;
    decide_loaded(id, loaded, command).await
}

/// Lets an already loaded aggregate decide `command` (cqrs-es's `handle` writes the events to
/// the sink and applies them to the aggregate, once).
async fn decide_loaded<A>(id: Uuid, loaded: Loaded<A>, command: A::Command) -> ApiResult<Decided<A>>
where
    A: Aggregate<Error = DomainError, Services = ()>,
{
    let mut aggregate = loaded.aggregate;
    let sink = EventSink::default();
    aggregate.handle(command, &(), &sink).await?;
    Ok(Decided { id: id.to_string(), version: loaded.version, aggregate, events: sink.collect().await })
}

/// Runs `attempt` until it does not fail with a conflict, at most [`MAX_ATTEMPTS`] times.
async fn retry<T, F, Fut>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(ApiError::Conflict) if tries < MAX_ATTEMPTS => {
                let mut jitter = [0u8; 1];
                let _ = getrandom::fill(&mut jitter);
                let cap = 2u64.pow(tries.min(6));
                tokio::time::sleep(std::time::Duration::from_millis(1 + u64::from(jitter[0]) % cap)).await;
            }
            result => return result,
        }
    }
}

impl AppState {
    fn ttl(&self) -> Duration {
        Duration::from_std(self.config.invite_ttl).unwrap_or(Duration::days(7))
    }

    /// Appends the decided streams (after `credential`, if any) in one transaction, snapshots
    /// what is due, and waits for the projections. Returns the last position appended.
    async fn commit(
        &self,
        account: Option<&Decided<Account>>,
        user: Option<&Decided<User>>,
        credential: Option<(Uuid, &Email, &str)>,
        metadata: &EventMetadata,
    ) -> ApiResult<Option<i64>> {
        let mut appends = Vec::new();
        if let Some(user) = user {
            appends.push(user.append()?);
        }
        if let Some(account) = account {
            appends.push(account.append()?);
        }
        if appends.iter().all(Append::is_empty) && credential.is_none() {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        if let Some((user_id, email, hash)) = credential {
            credentials::insert(&mut tx, user_id, email.as_str(), hash).await?;
        }
        let positions = EventStore::append(&mut tx, &appends, metadata).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if let Some(a) = account {
            let new_version = a.version + a.events.len();
            if let Err(err) = self.store.snapshot_if_due(&a.id, &a.aggregate, a.version, new_version).await {
                tracing::warn!(%err, "snapshot failed");
            }
        }
        let last = positions.last().copied();
        if let Some(position) = last {
            if !self.projector.wait_for(position, self.config.read_your_writes_timeout).await {
                tracing::warn!(position, "read models did not catch up in time");
            }
        }
        Ok(last)
    }

    /// Decides one account command and commits it, retrying on conflict.
    /// `now` is the time the command carries, so event payloads and `metadata.occurred_at` agree.
    async fn execute(&self, ctx: &RequestContext, account_id: Uuid, actor: Uuid, now: DateTime<Utc>, command: impl Fn() -> AccountCommand) -> ApiResult<()> {
        retry(|| async {
            let decided = decide::<Account>(&self.store, account_id, command()).await?;
            let metadata = ctx.metadata(Some(actor), now);
            self.commit(Some(&decided), None, None, &metadata).await?;
            Ok(())
        })
        .await
    }

    fn session(&self, user_id: Uuid, email: &Email, account_id: Option<Uuid>) -> ApiResult<Session> {
        let token = auth::issue_session(&self.config.jwt_secret, user_id, email, self.config.session_ttl)?;
        Ok(Session { token, user_id, account_id })
    }

    /// `signUp`: a new user and a new account in which the user is the only Admin.
    ///
    /// Errors: `VALIDATION` on `email`, `password`, `displayName` or `accountName` (an email
    /// that is already registered is a `VALIDATION` error on `email`, via [`ApiError::EmailTaken`]).
    pub async fn sign_up(&self, ctx: &RequestContext, email: &str, password: String, display_name: &str, account_name: &str) -> ApiResult<Session> {
        let email = Email::parse(email)?;
        auth::check_password(&password)?;
        let now = self.clock.now();
        let (user_id, account_id) = (Uuid::new_v4(), Uuid::new_v4());
        let user = decide::<User>(
            &self.store,
            user_id,
            UserCommand::Register { email: email.clone(), display_name: display_name.to_string(), now },
        )
        .await?;
        let founder = UserRef { id: user_id, email: email.clone() };
        let account = decide::<Account>(&self.store, account_id, AccountCommand::Create { name: account_name.to_string(), founder, now })
            .await
            .map_err(|e| rename_field(e, "name", "accountName"))?;
        let hash = auth::hash_password(password).await?;
        let metadata = ctx.metadata(Some(user_id), now);
        self.commit(Some(&account), Some(&user), Some((user_id, &email, &hash)), &metadata).await?;
        self.session(user_id, &email, Some(account_id))
    }

    /// `logIn`.
    ///
    /// Errors: `UNAUTHENTICATED` for an unknown email or a wrong password (the same answer for
    /// both); `RATE_LIMITED` after 10 quick attempts for one email.
    pub async fn log_in(&self, email: &str, password: String) -> ApiResult<Session> {
        let email = Email::parse(email).map_err(|_| ApiError::Unauthenticated("wrong email or password"))?;
        self.login_limiter.attempt(email.as_str())?;
        let credential = credentials::find_by_email(&self.pool, email.as_str()).await?;
        let user_id = credential.as_ref().map(|c| c.user_id);
        if !auth::verify_password(password, credential.map(|c| c.password_hash)).await {
            return Err(ApiError::Unauthenticated("wrong email or password"));
        }
        self.session(user_id.expect("verified"), &email, None)
    }

    /// `createAccount`: the signed-in user opens another account and is its only Admin.
    ///
    /// Errors: `UNAUTHENTICATED`; `VALIDATION` on `name`.
    pub async fn create_account(&self, ctx: &RequestContext, name: &str) -> ApiResult<Uuid> {
        let (user_id, email) = ctx.caller.user()?;
        let account_id = Uuid::new_v4();
        let founder = UserRef { id: user_id, email: email.clone() };
        let now = self.clock.now();
        self.execute(ctx, account_id, user_id, now, || AccountCommand::Create { name: name.to_string(), founder: founder.clone(), now })
            .await?;
        Ok(account_id)
    }

    fn new_token(&self, account_id: Uuid, invitation_id: Uuid) -> ApiResult<InviteToken> {
        Ok(InviteToken::new(account_id, invitation_id, auth::random_secret()?))
    }

    /// `inviteUser`: invites `email` to `account_id` with `role`; the link is returned once.
    ///
    /// Errors: `UNAUTHENTICATED`; `VALIDATION` (`email`); `NOT_FOUND` (account); `FORBIDDEN`
    /// (not a member, may not invite, may not grant `role`); `ALREADY_MEMBER`; `INVITATION_PENDING`.
    pub async fn invite(&self, ctx: &RequestContext, account_id: Uuid, email: &str, role: Role) -> ApiResult<IssuedInvite> {
        let (actor, _) = ctx.caller.user()?;
        let email = Email::parse(email)?;
        let invitation_id = Uuid::new_v4();
        let token = self.new_token(account_id, invitation_id)?;
        let digest = token.digest();
        let (now, ttl) = (self.clock.now(), self.ttl());
        self.execute(ctx, account_id, actor, now, || AccountCommand::Invite {
            actor,
            invitation_id,
            email: email.clone(),
            role,
            token: digest.clone(),
            now,
            ttl,
        })
        .await?;
        Ok(IssuedInvite { invitation_id, link: self.config.invite_link(&token.encode()) })
    }

    async fn account_of_invitation(&self, invitation_id: Uuid) -> ApiResult<Uuid> {
        roster_projections::queries::invitation(&self.pool, invitation_id)
            .await?
            .map(|i| i.account_id)
            .ok_or(ApiError::Domain(DomainError::NotFound("invitation")))
    }

    /// `resendInvite`: new token (the old link stops working), new expiry, same id,
    /// `sendCount` + 1.
    ///
    /// Errors: `UNAUTHENTICATED`; `NOT_FOUND`; `FORBIDDEN` (neither the inviter nor an Admin);
    /// `INVITATION_NOT_PENDING`; `ALREADY_MEMBER`; `INVITATION_PENDING` (a newer one exists).
    pub async fn resend(&self, ctx: &RequestContext, invitation_id: Uuid) -> ApiResult<IssuedInvite> {
        let (actor, _) = ctx.caller.user()?;
        let account_id = self.account_of_invitation(invitation_id).await?;
        let token = self.new_token(account_id, invitation_id)?;
        let digest = token.digest();
        let (now, ttl) = (self.clock.now(), self.ttl());
        self.execute(ctx, account_id, actor, now, || AccountCommand::Resend {
            actor,
            invitation_id,
            token: digest.clone(),
            now,
            ttl,
        })
        .await?;
        Ok(IssuedInvite { invitation_id, link: self.config.invite_link(&token.encode()) })
    }

    /// `cancelInvite`. Errors as [`AppState::resend`], less the last two.
    pub async fn cancel(&self, ctx: &RequestContext, invitation_id: Uuid) -> ApiResult<()> {
        let (actor, _) = ctx.caller.user()?;
        let account_id = self.account_of_invitation(invitation_id).await?;
        let now = self.clock.now();
        self.execute(ctx, account_id, actor, now, || AccountCommand::Cancel { actor, invitation_id, now }).await
    }

    /// `acceptInvite`. With a session, the signed-in user joins (their email must be the
    /// invited one). Without, a new user is registered with the invited email, `display_name`
    /// and `password`, and a session for them is returned.
    ///
    /// Errors: `INVALID_TOKEN`; `INVITATION_NOT_PENDING`; `INVITATION_EXPIRED`;
    /// `EMAIL_MISMATCH`; `ALREADY_MEMBER`; `UNAUTHENTICATED` (no session, but the invited email
    /// already has a user); `VALIDATION` (`displayName`, `password`); `RATE_LIMITED` (too many
    /// token attempts from one IP).
    pub async fn accept(&self, ctx: &RequestContext, token: &str, display_name: Option<&str>, password: Option<String>) -> ApiResult<Session> {
        self.token_limiter.attempt(ctx.ip.as_deref().unwrap_or("unknown"))?;
        let token = InviteToken::parse(token)?;
        let digest = token.digest();
        let account_id = token.account_id;
        let now = self.clock.now();
        if let Caller::User { id, email } = &ctx.caller {
            let user = UserRef { id: *id, email: email.clone() };
            self.execute(ctx, account_id, *id, now, || AccountCommand::Accept {
                invitation_id: token.invitation_id,
                token: digest.clone(),
                user: user.clone(),
                now,
            })
            .await?;
            return self.session(*id, email, Some(account_id));
        }
        let user_id = Uuid::new_v4();
        let hash = tokio::sync::OnceCell::<String>::new();
        let email = retry(|| async {
            // The new user's email is the invited one, so read it before deciding.
            let loaded = self.store.load::<Account>(&account_id.to_string()).await?;
            let invited_email = loaded
                .aggregate
                .invitations
                .get(&token.invitation_id)
                .map(|i| i.email.clone())
                .ok_or(DomainError::InvalidToken)?;
            let user = UserRef { id: user_id, email: invited_email.clone() };
            let accept = AccountCommand::Accept { invitation_id: token.invitation_id, token: digest.clone(), user, now };
            let account = decide_loaded(account_id, loaded, accept).await?;
            if credentials::find_by_email(&self.pool, invited_email.as_str()).await?.is_some() {
                return Err(ApiError::Unauthenticated("a user with this email exists: sign in to accept"));
            }
            let display_name = display_name.ok_or_else(|| ApiError::validation("displayName", "is required"))?;
            let password = password.clone().ok_or_else(|| ApiError::validation("password", "is required"))?;
            auth::check_password(&password)?;
            let register = UserCommand::Register { email: invited_email.clone(), display_name: display_name.to_string(), now };
            let user = decide::<User>(&self.store, user_id, register).await?;
            let hash = hash.get_or_try_init(|| auth::hash_password(password)).await?;
            let credential = (user_id, &invited_email, hash.as_str());
            let metadata = ctx.metadata(Some(user_id), now);
            self.commit(Some(&account), Some(&user), Some(credential), &metadata)
                .await
                .map_err(|e| match e {
                    ApiError::EmailTaken => ApiError::Unauthenticated("a user with this email exists: sign in to accept"),
                    other => other,
                })?;
            Ok(invited_email)
        })
        .await?;
        self.session(user_id, &email, Some(account_id))
    }

    /// `changeRole`. Changing to the current role is a no-op that appends nothing.
    ///
    /// Errors: `UNAUTHENTICATED`; `NOT_FOUND`; `FORBIDDEN` (not an Admin); `LAST_ADMIN`;
    /// `SELF_CHANGE`.
    pub async fn change_role(&self, ctx: &RequestContext, account_id: Uuid, user_id: Uuid, role: Role) -> ApiResult<()> {
        let (actor, _) = ctx.caller.user()?;
        self.execute(ctx, account_id, actor, self.clock.now(), || AccountCommand::ChangeRole { actor, user_id, role }).await
    }

    /// `removeMember`: also cancels the invitations the member sent (reason "inviter removed").
    ///
    /// Errors: as [`AppState::change_role`].
    pub async fn remove_member(&self, ctx: &RequestContext, account_id: Uuid, user_id: Uuid) -> ApiResult<()> {
        let (actor, _) = ctx.caller.user()?;
        let now = self.clock.now();
        self.execute(ctx, account_id, actor, now, || AccountCommand::RemoveMember { actor, user_id, now }).await
    }
}

/// Renames the field of a validation error (the domain says `name`, `signUp` says `accountName`).
fn rename_field(err: ApiError, from: &str, to: &str) -> ApiError {
    match err {
        ApiError::Domain(DomainError::Validation { field, message }) if field == from => {
            ApiError::validation(to, message)
        }
        other => other,
    }
}
