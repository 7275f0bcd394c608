//! The unit of work of every command: decide → append → wait.
//!
//! An aggregate decides on its state; the decided streams (and a new credential, for sign-up
//! and accept) go to the group-commit writer (`roster_store::Writer`), which appends them with
//! their expected versions in one transaction with other commands' appends; then the command
//! waits until the projections show its events (read-your-writes) — a wait on the projector's
//! published checkpoint, with no projection work in the request.
//!
//! Account commands decide on the account's cached state under its lock (see
//! [`super::account_cache`]), so commands on one account queue in decision order instead of
//! conflicting. An optimistic-concurrency conflict (another process appended to the stream
//! first) is retried with a fresh load up to [`MAX_ATTEMPTS`] times, with a short random
//! back-off; then the request answers `CONFLICT`. Because every rule is re-decided on the fresh
//! state, two Admins demoting each other at once cannot both succeed.

use super::account_cache::{current, Cached};
use super::{App, RequestContext};
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use roster_domain::aggregate::Decide;
use roster_domain::{Account, AccountCommand, AccountId, DomainError, User, UserId};
use roster_store::{Append, Commit, EventStore, Loaded, NewCredential, StoreError};
use serde_json::Value;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::Ordering;

/// Attempts per command before answering `CONFLICT`.
pub const MAX_ATTEMPTS: u32 = 12;

/// An aggregate's decision: its stream, the version it was decided at, its state after the
/// events (when the decision made a copy to snapshot), and the events.
pub(super) struct Decided<A: Aggregate> {
    id: String,
    version: usize,
    aggregate: Option<A>,
    events: Vec<A::Event>,
}

impl<A: Aggregate> Decided<A> {
    /// The append of these events at the version they were decided at.
    pub(super) fn append(&self) -> Result<Append, StoreError> {
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
async fn decide_loaded<A>(id: impl Display, loaded: Loaded<A>, command: A::Command) -> ApiResult<Decided<A>>
where
    A: Aggregate<Error = DomainError, Services = ()>,
{
    let mut aggregate = loaded.aggregate;
    let sink = EventSink::default();
    aggregate.handle(command, &(), &sink).await?;
    Ok(Decided { id: id.to_string(), version: loaded.version, aggregate: Some(aggregate), events: sink.collect().await })
}

/// What a multi-stream command (sign-up, accepting as a new user) writes, atomically.
#[derive(Default)]
pub(super) struct UnitOfWork<'a> {
    pub account: Option<&'a Decided<Account>>,
    pub user: Option<&'a Decided<User>>,
    pub credential: Option<NewCredential>,
}

/// A snapshot to store once its command has committed: stream id, version, state.
type DueSnapshot = (String, usize, Value);

/// The snapshot of `state` (account `id` moved from `old` to `new` version) if one is due: the
/// interval grows with the account's size (members + invitations), see
/// `EventStore::snapshot_due`.
fn due_snapshot(store: &EventStore, id: &str, old: usize, new: usize, state: &Account) -> Result<Option<DueSnapshot>, StoreError> {
    if !store.snapshot_due(old, new, state.members.len() + state.invitations.len()) {
        return Ok(None);
    }
    Ok(Some((id.to_string(), new, serde_json::to_value(state)?)))
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

    /// Appends `work` in one commit, stores a due snapshot, and waits for the projections.
    /// Returns the last position appended (`None`: nothing to write).
    ///
    /// Errors: `UNAUTHENTICATED` (the caller's session ended: nothing is appended), `CONFLICT`
    /// (a stream moved; retried by [`App::retry`]), `EmailTaken`, `INTERNAL`.
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
        ctx.confirm_session().await?;
        let commit = Commit { appends, credential: work.credential, metadata: ctx.metadata(Some(actor), now) };
        let positions = self.0.writer.submit(commit).await?;
        let mut snapshot = None;
        if let Some(a) = work.account {
            let account_id = a.id.parse().map_err(|_| ApiError::Internal("account id".into()))?;
            let version = a.version + a.events.len();
            match &a.aggregate {
                // Decided on the whole stream: the state after this commit is known.
                Some(state) => {
                    snapshot = due_snapshot(&self.0.store, &a.id, a.version, version, state)?;
                    self.0.accounts.remember(account_id, Loaded { aggregate: state.clone(), version }).await;
                }
                // Decided on the cached state, which the commit moved past.
                None => self.0.accounts.mark_behind(account_id).await,
            }
        }
        self.settle(&positions, snapshot).await;
        Ok(positions.last().copied())
    }

    /// After a commit: stores the due snapshot (in the background: a big account's snapshot
    /// is megabytes, which no request should wait for) and waits until the read models show
    /// the last position. Neither failure fails the command: its events are in the log.
    async fn settle(&self, positions: &[i64], snapshot: Option<DueSnapshot>) {
        if let Some((id, version, state)) = snapshot {
            let store = self.0.store.clone();
            tokio::spawn(async move {
                if let Err(err) = store.save_snapshot::<Account>(&id, version, &state).await {
                    tracing::warn!(%err, "snapshot failed");
                }
            });
        }
        if let Some(&position) = positions.last() {
            if !self.0.projector.wait_for(position, self.0.config.read_your_writes_timeout).await {
                tracing::warn!(position, "read models did not catch up in time");
            }
        }
    }

    /// The account as stored, when the store holds events `loaded` lacks: another replica
    /// appended them (this process's own appends are in `loaded` before they are stored).
    /// A refusal decided on such a state is decided again on this one, since no version
    /// conflict would ever tell (an invitation another replica created is no `NOT_FOUND`).
    /// Costs a refusal one probe of the stream's last sequence.
    ///
    /// Errors: store errors.
    async fn stored_if_newer(&self, account_id: AccountId, loaded: &Loaded<Account>) -> ApiResult<Option<Loaded<Account>>> {
        let id = account_id.to_string();
        if self.0.store.version::<Account>(&id).await? <= loaded.version {
            return Ok(None);
        }
        Ok(Some(self.0.store.load(&id).await?))
    }

    /// Decides the account command that `command` builds from the account's current state
    /// (with a result of its own, e.g. a value read from the state), on the cached state and
    /// without changing it: for commands that write other streams too and commit through
    /// [`App::commit`], which marks the cached state behind.
    ///
    /// Errors: what `command` or the domain refuses with; store errors.
    pub(super) async fn decide_on_cached<T>(&self, account_id: AccountId, command: impl Fn(&Account) -> ApiResult<(T, AccountCommand)>) -> ApiResult<(T, Decided<Account>)> {
        let slot = self.0.accounts.slot(account_id);
        let mut cached = slot.lock().await;
        let mut loaded = current(&self.0.store, account_id, &mut cached).await?;
        let decide = |account: &Account| command(account).and_then(|(out, command)| Ok((out, Decide::decide(account, command)?)));
        let mut decided = decide(&loaded.aggregate);
        if decided.is_err() {
            if let Some(fresh) = self.stored_if_newer(account_id, &loaded).await? {
                loaded = fresh;
                decided = decide(&loaded.aggregate);
            }
        }
        let version = loaded.version;
        *cached = Some(Cached { loaded, behind: false });
        let (out, events) = decided?;
        Ok((out, Decided { id: account_id.to_string(), version, aggregate: None, events }))
    }

    /// Decides one account command built by `command` on the account's cached state and
    /// commits it, retrying on conflict. `now` is the time the command carries, so event
    /// payloads and `metadata.occurred_at` agree; `actor` is `None` for the system (the mailer).
    ///
    /// Errors: `UNAUTHENTICATED` (the caller's session ended: nothing is decided); what the
    /// domain refuses with; `CONFLICT`; store errors.
    pub(super) async fn execute(&self, ctx: &RequestContext, account_id: AccountId, actor: Option<UserId>, now: DateTime<Utc>, command: impl Fn() -> AccountCommand) -> ApiResult<()> {
        // Before the decision: it changes the cached state, and its events are queued at once.
        ctx.confirm_session().await?;
        self.retry(|| async {
            let slot = self.0.accounts.slot(account_id);
            let (pending, snapshot) = {
                let mut cached = slot.lock().await;
                let mut loaded = current(&self.0.store, account_id, &mut cached).await?;
                let mut sink = EventSink::default();
                let mut decided = loaded.aggregate.handle(command(), &(), &sink).await;
                if decided.is_err() {
                    if let Some(fresh) = self.stored_if_newer(account_id, &loaded).await? {
                        loaded = fresh;
                        sink = EventSink::default();
                        decided = loaded.aggregate.handle(command(), &(), &sink).await;
                    }
                }
                let events = sink.collect().await;
                if decided.is_err() || events.is_empty() {
                    // Refused or a no-op: the state is as it was (events are applied only after
                    // the whole decision).
                    *cached = Some(Cached { loaded, behind: false });
                    return decided.map_err(ApiError::from);
                }
                let append = Append::new::<Account>(account_id.to_string(), loaded.version, &events)?;
                let old_version = loaded.version;
                loaded.version = append.new_version();
                let snapshot = due_snapshot(&self.0.store, &account_id.to_string(), old_version, loaded.version, &loaded.aggregate)?;
                *cached = Some(Cached { loaded, behind: false });
                let commit = Commit { appends: vec![append], credential: None, metadata: ctx.metadata(actor, now) };
                // Queued while the lock is held, so this account's commits keep decision order.
                (self.0.writer.submit(commit), snapshot)
            };
            match pending.await {
                Ok(positions) => {
                    self.settle(&positions, snapshot).await;
                    Ok(())
                }
                Err(err) => {
                    self.0.accounts.invalidate(account_id).await;
                    Err(err.into())
                }
            }
        })
        .await
    }
}
