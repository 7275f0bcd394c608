//! Group commit: one writer task per process appends the commits of many concurrent commands in
//! one transaction, so one WAL flush (`fsync`) serves them all.
//!
//! **Why.** Positions must become visible in increasing order (see [`crate::reader`]), so every
//! append transaction holds one global advisory lock from its first insert through `COMMIT`.
//! With one transaction per command, every command waits for the previous one's flush and the
//! store does one command per flush. Batching is the way around it that keeps the guarantee:
//! the lock is still held through commit, but each hold carries every command that arrived
//! while the previous batch was flushing.
//!
//! **Per-command outcomes.** Inside the batch, under the lock, the writer reads each stream's
//! current version and checks every append's expected version against it *in arrival order*
//! (an append accepted earlier in the batch moves its stream on), so a conflict fails only its
//! own command, and a command decided on top of an earlier one still in flight (see the
//! application's aggregate cache) succeeds when that one does. The same holds for the
//! credentials' unique email. Only accepted commands are inserted.
//!
//! **One round trip.** All of that is one call of the SQL function `roster_append` (migration
//! `20261201000005_append_batch.sql`), autocommitted: lock, version probes, checks and inserts
//! run inside PostgreSQL, so the lock is held for the statement and its WAL flush only, never
//! while the transaction waits for a busy application between statements.

use crate::event_store::Append;
use crate::StoreError;
use roster_domain::{EventMetadata, UserId};
use serde_json::Value;
use crate::own_connection::OwnConnection;
use sqlx::PgPool;
use crate::notifier::Notifier;
use crate::reader::NOTIFY_CHANNEL;
use tokio::sync::{mpsc, oneshot, watch};

/// Most commands in one batch; more wait for the next one.
pub const MAX_BATCH: usize = 256;

/// A new user's credential, written atomically with their events.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// The new user.
    pub user_id: UserId,
    /// Normalised email; must not have a credential yet.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Everything one command writes, atomically: its streams' appends (each with its expected
/// version), an optional credential, and the metadata of its events.
#[derive(Debug, Clone)]
pub struct Commit {
    /// One append per stream the command changes.
    pub appends: Vec<Append>,
    /// The credential of a user the command registers.
    pub credential: Option<NewCredential>,
    /// Who, when, which request.
    pub metadata: EventMetadata,
}

struct Request {
    commit: Commit,
    reply: oneshot::Sender<Result<Vec<i64>, StoreError>>,
}

/// The handle of the writer task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    requests: mpsc::UnboundedSender<Request>,
    committed: watch::Receiver<i64>,
    origin: String,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime, writing on a connection of its own
    /// to `pool`'s database (see [`crate::own_connection`]). After each
    /// batch that appended events it sends `NOTIFY roster_events` (outside the batch's
    /// transaction, see [`crate::notifier`]) and publishes the last position on
    /// [`Writer::committed`].
    pub fn spawn(pool: PgPool) -> Self {
        let (requests, mut inbox) = mpsc::unbounded_channel::<Request>();
        let (published, committed) = watch::channel(0i64);
        let notifier = Notifier::spawn(pool.clone(), NOTIFY_CHANNEL);
        let origin = notifier.origin().to_string();
        tokio::spawn(async move {
            let mut own = OwnConnection::new(pool);
            let mut batch = Vec::new();
            while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let outcomes = write_batch(&mut own, batch.iter().map(|r| &r.commit).collect()).await;
                let last = outcomes.iter().filter_map(|o| o.as_ref().ok()?.last().copied()).max();
                if let Some(last) = last {
                    notifier.notify();
                    published.send_modify(|p| *p = (*p).max(last));
                }
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    // A caller that went away (request cancelled) no longer needs the answer.
                    let _ = request.reply.send(outcome);
                }
            }
        });
        Self { requests, committed, origin }
    }

    /// The payload of this writer's `NOTIFY roster_events` (see [`Notifier::origin`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The last global position this writer committed (0 before its first append); changes
    /// wake the projector of this process without a round trip through the database.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.committed.clone()
    }

    /// Queues `commit` at once (so commits queued one after another are checked and written
    /// in that order) and returns a future of the global positions of its events, in order
    /// (empty when it has none), which resolves once the batch holding it has committed.
    ///
    /// Errors: [`StoreError::Conflict`] when a stream is not at its expected version;
    /// [`StoreError::EmailTaken`] when the credential's email already has one; database errors
    /// (then nothing of the batch was written).
    pub fn submit(&self, commit: Commit) -> impl std::future::Future<Output = Result<Vec<i64>, StoreError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self.requests.send(Request { commit, reply }).is_ok();
        async move {
            let stopped = || StoreError::Decode("the writer task has stopped".into());
            if !queued {
                return Err(stopped());
            }
            answer.await.map_err(|_| stopped())?
        }
    }
}

/// Writes what it can of `commits` in one transaction; one outcome per commit, in order. When
/// the batch fails as a whole (an error the checks did not foresee, e.g. a constraint), each
/// commit is written on its own, so the error is only the failing command's.
async fn write_batch(own: &mut OwnConnection, commits: Vec<&Commit>) -> Vec<Result<Vec<i64>, StoreError>> {
    match try_write_batch(own, &commits).await {
        Ok(outcomes) => outcomes,
        Err(err) if commits.len() == 1 => vec![Err(err)],
        Err(err) => {
            tracing::warn!(%err, commits = commits.len(), "append batch failed; writing its commits one by one");
            let mut outcomes = Vec::with_capacity(commits.len());
            for commit in commits {
                outcomes.push(try_write_batch(own, &[commit]).await.and_then(|mut one| one.remove(0)));
            }
            outcomes
        }
    }
}

/// One call of `roster_append` on the writer's connection, which is dropped after a database
/// error (its state is then unknown).
async fn try_write_batch(own: &mut OwnConnection, commits: &[&Commit]) -> Result<Vec<Result<Vec<i64>, StoreError>>, StoreError> {
    let batch = BatchColumns::of(commits)?;
    let conn = own.get().await.map_err(StoreError::from_write)?;
    // One statement, autocommitted: the append lock is held for one round trip and the flush.
    let rows: Vec<(i32, String, Option<i64>)> = sqlx::query_as(
        "SELECT commit_no, outcome, event_position
           FROM roster_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(&batch.a_commit)
    .bind(&batch.a_type)
    .bind(&batch.a_id)
    .bind(&batch.a_expected)
    .bind(&batch.a_new)
    .bind(&batch.c_commit)
    .bind(&batch.c_user)
    .bind(&batch.c_email)
    .bind(&batch.c_hash)
    .bind(&batch.e_commit)
    .bind(&batch.e_type)
    .bind(&batch.e_id)
    .bind(&batch.e_seq)
    .bind(&batch.e_event_type)
    .bind(&batch.e_version)
    .bind(&batch.e_payload)
    .bind(&batch.metadata)
    .fetch_all(conn)
    .await
    .map_err(|err| {
        own.discard();
        StoreError::from_write(err)
    })?;
    let mut outcomes: Vec<Result<Vec<i64>, StoreError>> = commits.iter().map(|_| Ok(Vec::new())).collect();
    for (commit, outcome, position) in rows {
        let slot = &mut outcomes[commit as usize];
        match (outcome.as_str(), position) {
            ("ok", Some(position)) => {
                if let Ok(list) = slot {
                    list.push(position);
                }
            }
            ("email_taken", _) => *slot = Err(StoreError::EmailTaken),
            _ => *slot = Err(StoreError::Conflict),
        }
    }
    for list in outcomes.iter_mut().flatten() {
        list.sort_unstable();
    }
    Ok(outcomes)
}

/// A batch as the column arrays `roster_append` takes (migration `…_append_batch.sql`):
/// appends, credentials and events, each tagged with its commit's index in the batch.
#[derive(Default)]
struct BatchColumns {
    a_commit: Vec<i32>,
    a_type: Vec<&'static str>,
    a_id: Vec<String>,
    a_expected: Vec<i64>,
    a_new: Vec<i64>,
    c_commit: Vec<i32>,
    c_user: Vec<UserId>,
    c_email: Vec<String>,
    c_hash: Vec<String>,
    e_commit: Vec<i32>,
    e_type: Vec<&'static str>,
    e_id: Vec<String>,
    e_seq: Vec<i64>,
    e_event_type: Vec<String>,
    e_version: Vec<String>,
    e_payload: Vec<Value>,
    metadata: Vec<Value>,
}

impl BatchColumns {
    fn of(commits: &[&Commit]) -> Result<Self, StoreError> {
        let mut columns = Self::default();
        for (i, commit) in commits.iter().enumerate() {
            let i = i as i32;
            columns.metadata.push(serde_json::to_value(commit.metadata.to_map())?);
            for append in &commit.appends {
                columns.a_commit.push(i);
                columns.a_type.push(append.aggregate_type());
                columns.a_id.push(append.aggregate_id().to_string());
                columns.a_expected.push(append.expected_version() as i64);
                columns.a_new.push(append.new_version() as i64);
                for (k, (event_type, version, payload)) in append.events().iter().enumerate() {
                    columns.e_commit.push(i);
                    columns.e_type.push(append.aggregate_type());
                    columns.e_id.push(append.aggregate_id().to_string());
                    columns.e_seq.push((append.expected_version() + k + 1) as i64);
                    columns.e_event_type.push(event_type.clone());
                    columns.e_version.push(version.clone());
                    columns.e_payload.push(payload.clone());
                }
            }
            if let Some(c) = &commit.credential {
                columns.c_commit.push(i);
                columns.c_user.push(c.user_id);
                columns.c_email.push(c.email.clone());
                columns.c_hash.push(c.password_hash.clone());
            }
        }
        Ok(columns)
    }
}
