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
//! credentials' unique email. Only accepted commands are inserted: one multi-row statement for
//! all their events, one for their credentials.

use crate::event_store::Append;
use crate::StoreError;
use roster_domain::{EventMetadata, UserId};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};

/// The advisory lock key every append takes (trigger `events_serialise_appends`).
const APPEND_LOCK: i64 = 7_262_351_400_137_791_001;

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
}

impl Writer {
    /// Starts the writer task on the current tokio runtime, writing through `pool`.
    pub fn spawn(pool: PgPool) -> Self {
        let (requests, mut inbox) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let outcomes = write_batch(&pool, batch.iter().map(|r| &r.commit).collect()).await;
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    // A caller that went away (request cancelled) no longer needs the answer.
                    let _ = request.reply.send(outcome);
                }
            }
        });
        Self { requests }
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
async fn write_batch(pool: &PgPool, commits: Vec<&Commit>) -> Vec<Result<Vec<i64>, StoreError>> {
    match try_write_batch(pool, &commits).await {
        Ok(outcomes) => outcomes,
        Err(err) if commits.len() == 1 => vec![Err(err)],
        Err(err) => {
            tracing::warn!(%err, commits = commits.len(), "append batch failed; writing its commits one by one");
            let mut outcomes = Vec::with_capacity(commits.len());
            for commit in commits {
                outcomes.push(try_write_batch(pool, &[commit]).await.and_then(|mut one| one.remove(0)));
            }
            outcomes
        }
    }
}

type StreamKey = (&'static str, String);

async fn try_write_batch(pool: &PgPool, commits: &[&Commit]) -> Result<Vec<Result<Vec<i64>, StoreError>>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(APPEND_LOCK).execute(&mut *tx).await?;
    // From here to commit no other appender runs: what we read stays true.
    let mut versions = stream_versions(&mut tx, commits).await?;
    let mut emails = taken_emails(&mut tx, commits).await?;
    let mut outcomes: Vec<Result<Vec<i64>, StoreError>> = Vec::with_capacity(commits.len());
    let mut accepted = Vec::new();
    for (i, commit) in commits.iter().enumerate() {
        let fits = commit.appends.iter().all(|a| versions.get(&a.key()).copied().unwrap_or(0) == a.expected_version());
        let email_free = commit.credential.as_ref().is_none_or(|c| !emails.contains(&c.email));
        outcomes.push(match (fits, email_free) {
            (false, _) => Err(StoreError::Conflict),
            (true, false) => Err(StoreError::EmailTaken),
            (true, true) => {
                for append in &commit.appends {
                    versions.insert(append.key(), append.new_version());
                }
                if let Some(c) = &commit.credential {
                    emails.insert(c.email.clone());
                }
                accepted.push(i);
                Ok(Vec::new())
            }
        });
    }
    let positions = insert_events(&mut tx, commits, &accepted).await?;
    insert_credentials(&mut tx, commits, &accepted).await?;
    tx.commit().await?;
    for (i, position) in positions {
        if let Ok(list) = &mut outcomes[i] {
            list.push(position);
        }
    }
    Ok(outcomes)
}

/// The current version of every stream the batch appends to (absent: no events yet).
async fn stream_versions(conn: &mut PgConnection, commits: &[&Commit]) -> Result<HashMap<StreamKey, usize>, StoreError> {
    let keys: HashSet<StreamKey> = commits.iter().flat_map(|c| c.appends.iter().map(Append::key)).collect();
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().map(|(t, id)| (*t, id.as_str())).unzip();
    // One index probe per stream (the primary key's last entry), whatever the table's size.
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT k.t, k.id, (SELECT max(e.sequence) FROM events e WHERE e.aggregate_type = k.t AND e.aggregate_id = k.id)
           FROM unnest($1::text[], $2::text[]) AS k(t, id)",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut versions = HashMap::new();
    for (t, id, version) in rows {
        if let (Some(key), Some(version)) = (keys.iter().find(|(kt, kid)| *kt == t && *kid == id), version) {
            versions.insert(key.clone(), version as usize);
        }
    }
    Ok(versions)
}

/// The emails among the batch's credentials that already have one.
async fn taken_emails(conn: &mut PgConnection, commits: &[&Commit]) -> Result<HashSet<String>, StoreError> {
    let emails: Vec<&str> = commits.iter().filter_map(|c| c.credential.as_ref()).map(|c| c.email.as_str()).collect();
    if emails.is_empty() {
        return Ok(HashSet::new());
    }
    let taken: Vec<String> = sqlx::query_scalar("SELECT email FROM credentials WHERE email = ANY($1)").bind(&emails).fetch_all(conn).await?;
    Ok(taken.into_iter().collect())
}

/// Inserts the accepted commits' events in one statement, in batch order (so positions follow
/// it); returns (commit index, position) pairs in position order.
async fn insert_events(conn: &mut PgConnection, commits: &[&Commit], accepted: &[usize]) -> Result<Vec<(usize, i64)>, StoreError> {
    let mut columns = EventColumns::default();
    for &i in accepted {
        let metadata = serde_json::to_value(commits[i].metadata.to_map())?;
        for append in &commits[i].appends {
            columns.push(i, append, &metadata);
        }
    }
    if columns.owner.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t, a, s, e, v, p, m
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
                WITH ORDINALITY AS x(t, a, s, e, v, p, m, n)
          ORDER BY n
         RETURNING position, aggregate_type, aggregate_id, sequence",
    )
    .bind(&columns.types)
    .bind(&columns.ids)
    .bind(&columns.sequences)
    .bind(&columns.event_types)
    .bind(&columns.versions)
    .bind(&columns.payloads)
    .bind(&columns.metadata)
    .fetch_all(conn)
    .await
    .map_err(StoreError::from_write)?;
    // RETURNING's order is not guaranteed: find each row's commit by its stream and sequence.
    let owners: HashMap<(&str, &str, i64), usize> = (0..columns.owner.len())
        .map(|n| ((columns.types[n], columns.ids[n].as_str(), columns.sequences[n]), columns.owner[n]))
        .collect();
    let mut positions: Vec<(usize, i64)> = rows
        .iter()
        .map(|(position, t, id, sequence)| (owners[&(t.as_str(), id.as_str(), *sequence)], *position))
        .collect();
    positions.sort_unstable_by_key(|(_, position)| *position);
    Ok(positions)
}

/// The events of a batch as column arrays (what `unnest` takes), with the commit each row
/// belongs to.
#[derive(Default)]
struct EventColumns {
    owner: Vec<usize>,
    types: Vec<&'static str>,
    ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<Value>,
    metadata: Vec<Value>,
}

impl EventColumns {
    fn push(&mut self, commit: usize, append: &Append, metadata: &Value) {
        for (k, (event_type, version, payload)) in append.events().iter().enumerate() {
            self.owner.push(commit);
            self.types.push(append.aggregate_type());
            self.ids.push(append.aggregate_id().to_string());
            self.sequences.push((append.expected_version() + k + 1) as i64);
            self.event_types.push(event_type.clone());
            self.versions.push(version.clone());
            self.payloads.push(payload.clone());
            self.metadata.push(metadata.clone());
        }
    }
}

async fn insert_credentials(conn: &mut PgConnection, commits: &[&Commit], accepted: &[usize]) -> Result<(), StoreError> {
    let credentials: Vec<&NewCredential> = accepted.iter().filter_map(|&i| commits[i].credential.as_ref()).collect();
    if credentials.is_empty() {
        return Ok(());
    }
    let ids: Vec<UserId> = credentials.iter().map(|c| c.user_id).collect();
    let emails: Vec<&str> = credentials.iter().map(|c| c.email.as_str()).collect();
    let hashes: Vec<&str> = credentials.iter().map(|c| c.password_hash.as_str()).collect();
    sqlx::query("INSERT INTO credentials (user_id, email, password_hash) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])")
        .bind(&ids)
        .bind(&emails)
        .bind(&hashes)
        .execute(conn)
        .await
        .map_err(StoreError::from_write)?;
    Ok(())
}
