//! The unit of work of every command: decide → append → wait.
//!
//! An aggregate decides on its loaded state; the decided streams (and a new credential, for
//! sign-up and accept) are appended in one transaction with their expected versions; then the
//! command waits until the projections show its events (read-your-writes).
//!
//! An optimistic-concurrency conflict (another request appended to the same stream first) is
//! retried with a fresh load up to [`MAX_ATTEMPTS`] times, with a short random back-off; then
//! the request answers `CONFLICT`. Because every rule is re-decided on the fresh state, two
//! Admins demoting each other at once cannot both succeed: the second sees the first's change.

use super::{App, RequestContext};
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use roster_domain::{Account, AccountCommand, AccountId, DomainError, Email, User, UserId};
use roster_store::{credentials, Append, EventStore, Loaded, StoreError};
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::Ordering;

/// Attempts per command before answering `CONFLICT`.
pub const MAX_ATTEMPTS: u32 = 12;

/// An aggregate's decision: its stream, the version it was decided at, its state after the
/// events, and the events.
pub(super) struct Decided<A: Aggregate> {
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

/// Loads aggregate `id` and lets it decide `command`.
pub(super) async fn decide<A>(store: &EventStore, id: impl Display, command: A::Command) -> ApiResult<Decided<A>>
where
    A: Aggregate<Error = DomainError, Services = ()>,
{
    let id = id.to_string();
    let loaded = store.load::<A>(&id).await?;
    decide_loaded(id, loaded, command).await
}

/// Lets an already loaded aggregate decide `command` (cqrs-es's `handle` writes the events to
/// the sink and applies them to the aggregate, once).
pub(super) async fn decide_loaded<A>(id: impl Display, loaded: Loaded<A>, command: A::Command) -> ApiResult<Decided<A>>
where
    A: Aggregate<Error = DomainError, Services = ()>,
{
    let mut aggregate = loaded.aggregate;
    let sink = EventSink::default();
    aggregate.handle(command, &(), &sink).await?;
    Ok(Decided { id: id.to_string(), version: loaded.version, aggregate, events: sink.collect().await })
}


/// A new user's credential, written in the same transaction as their `UserRegistered`.
pub(super) struct NewCredential<'a> {
    pub user_id: UserId,
    pub email: &'a Email,
    /// argon2id PHC string.
    pub hash: &'a str,
}

/// What one command writes, atomically.
#[derive(Default)]
pub(super) struct UnitOfWork<'a> {
    pub account: Option<&'a Decided<Account>>,
    pub user: Option<&'a Decided<User>>,
    pub credential: Option<NewCredential<'a>>,
}

impl App {
    /// Runs `attempt` until it does not fail with a conflict, at most [`MAX_ATTEMPTS`] times,
    /// counting each retry (see [`App::conflict_retries`]).
    pub(super) async fn retry<T, F, Fut>(&self, mut attempt: F) -> ApiResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Err(ApiError::Conflict) if tries < MAX_ATTEMPTS => {
                    self.0.conflict_retries.fetch_add(1, Ordering::Relaxed);
                    let mut jitter = [0u8; 1];
                    let _ = getrandom::fill(&mut jitter);
                    let cap = 2u64.pow(tries.min(6));
                    tokio::time::sleep(std::time::Duration::from_millis(1 + u64::from(jitter[0]) % cap)).await;
                }
                result => return result,
            }
        }
    }

    /// How many times commands were retried after an optimistic-concurrency conflict since
    /// start (a command that finally answers `CONFLICT` counts `MAX_ATTEMPTS - 1`).
    pub fn conflict_retries(&self) -> u64 {
        self.0.conflict_retries.load(Ordering::Relaxed)
    }

    /// Appends `work` in one transaction (credential first), snapshots what is due, and waits
    /// for the projections. Returns the last position appended (`None`: nothing to write).
    ///
    /// Errors: `CONFLICT` (a stream moved; retried by [`retry`]), `EmailTaken`, `INTERNAL`.
    pub(super) async fn commit(&self, work: UnitOfWork<'_>, ctx: &RequestContext, actor: UserId, now: DateTime<Utc>) -> ApiResult<Option<i64>> {
        let mut appends = Vec::new();
        if let Some(user) = work.user {
            appends.push(user.append()?);
        }
        if let Some(account) = work.account {
            appends.push(account.append()?);
        }
        if appends.iter().all(Append::is_empty) && work.credential.is_none() {
            return Ok(None);
        }
        let mut tx = self.0.pool.begin().await?;
        if let Some(c) = &work.credential {
            credentials::insert(&mut tx, c.user_id, c.email.as_str(), c.hash).await?;
        }
        let positions = EventStore::append(&mut tx, &appends, &ctx.metadata(Some(actor), now)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if let Some(a) = work.account {
            let new_version = a.version + a.events.len();
            if let Err(err) = self.0.store.snapshot_if_due(&a.id, &a.aggregate, a.version, new_version).await {
                tracing::warn!(%err, "snapshot failed");
            }
        }
        let last = positions.last().copied();
        if let Some(position) = last {
            if !self.0.projector.wait_for(position, self.0.config.read_your_writes_timeout).await {
                tracing::warn!(position, "read models did not catch up in time");
            }
        }
        Ok(last)
    }

    /// Decides one account command built by `command` and commits it, retrying on conflict.
    /// `now` is the time the command carries, so event payloads and `metadata.occurred_at` agree.
    pub(super) async fn execute(&self, ctx: &RequestContext, account_id: AccountId, actor: UserId, now: DateTime<Utc>, command: impl Fn() -> AccountCommand) -> ApiResult<()> {
        self.retry(|| async {
            let decided = decide::<Account>(&self.0.store, account_id, command()).await?;
            self.commit(UnitOfWork { account: Some(&decided), ..Default::default() }, ctx, actor, now).await?;
            Ok(())
        })
        .await
    }
}
