//! The projector: applies events to each projection in global order from its own checkpoint.
//!
//! A batch is one transaction: lock the projection's checkpoint row (`FOR UPDATE`), read up to
//! [`BATCH_SIZE`] events after it, apply them, move the checkpoint, commit. So a crash anywhere
//! loses nothing and applies nothing twice, and when several servers share a database only one
//! of them works on a projection at a time (the others wait on the row lock and then see the
//! advanced checkpoint). An event a projection cannot apply stops that projection there: the
//! batch rolls back and the checkpoint row records the failing position and error (see
//! `roster projections status`) until a later attempt succeeds.

use crate::Projection;
use chrono::{DateTime, Utc};
use roster_store::reader::{listen, read_after};
use roster_store::{EventFilter, StoreError};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events read and applied per transaction.
pub const BATCH_SIZE: i64 = 500;

/// Why a projection could not advance.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// An event's payload did not decode as the projection expects.
    #[error("cannot decode event: {0}")]
    Decode(String),
    /// The projection failed on the event at `position`; it stays there until it succeeds.
    #[error("projection {name} stopped at position {position}: {error}")]
    Stopped {
        /// The projection's name.
        name: &'static str,
        /// The global position of the event it could not apply.
        position: i64,
        /// Why.
        error: String,
    },
    /// A failure injected by [`Projector::fail_next_batch_before_commit`].
    #[error("injected failure before commit")]
    Injected,
    /// Anything the database reported.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ProjectionError {
    pub(crate) fn decode(err: impl std::fmt::Display) -> Self {
        Self::Decode(err.to_string())
    }
}

impl From<StoreError> for ProjectionError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Database(e) => Self::Database(e),
            other => Self::Decode(other.to_string()),
        }
    }
}

/// One projection's progress, as `roster projections status` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    /// `members`, `invitations` or `audit_log`.
    pub name: &'static str,
    /// The last position applied (0: none).
    pub checkpoint: i64,
    /// Events committed after the checkpoint.
    pub lag: i64,
    /// When the checkpoint last moved (or a failure was recorded); `None` before the first run.
    pub updated_at: Option<DateTime<Utc>>,
    /// The position of the event the projection is stopped at, if it failed.
    pub failed_position: Option<i64>,
    /// The error it stopped with, if it failed.
    pub last_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    position: i64,
    updated_at: DateTime<Utc>,
    failed_position: Option<i64>,
    last_error: Option<String>,
}

/// Runs the projections. Cheap to clone; clones share the fail point.
#[derive(Clone)]
pub struct Projector {
    pool: PgPool,
    fail_point: Arc<Mutex<Option<Projection>>>,
}

/// Locks `projection`'s checkpoint row (creating it at 0) and returns its position.
pub(crate) async fn lock_checkpoint(conn: &mut PgConnection, projection: Projection) -> Result<i64, sqlx::Error> {
    sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(projection.name())
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(projection.name())
        .fetch_one(conn)
        .await
}

/// Moves `projection`'s checkpoint to `position` and clears any recorded failure.
pub(crate) async fn set_checkpoint(conn: &mut PgConnection, projection: Projection, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints
            SET position = $2, updated_at = now(), failed_position = NULL, last_error = NULL
          WHERE name = $1",
    )
    .bind(projection.name())
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies up to one batch of events after `after` to `projection` on `conn`; returns the
/// position reached and how many events were applied.
pub(crate) async fn apply_batch(conn: &mut PgConnection, projection: Projection, after: i64) -> Result<(i64, usize), ProjectionError> {
    let events = read_after(&mut *conn, after, BATCH_SIZE, EventFilter::default()).await?;
    let mut position = after;
    for event in &events {
        projection.apply(conn, event).await.map_err(|e| ProjectionError::Stopped {
            name: projection.name(),
            position: event.position,
            error: e.to_string(),
        })?;
        position = event.position;
    }
    Ok((position, events.len()))
}

impl Projector {
    /// A projector over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, fail_point: Arc::default() }
    }

    /// Test hook: the next batch of `projection` fails after writing its read models and
    /// before committing, as a crash there would.
    pub fn fail_next_batch_before_commit(&self, projection: Projection) {
        *self.fail_point.lock().expect("fail point lock") = Some(projection);
    }

    /// Whether a failure armed by [`Projector::fail_next_batch_before_commit`] is still waiting.
    pub fn failure_armed(&self) -> bool {
        self.fail_point.lock().expect("fail point lock").is_some()
    }

    /// Applies one batch to `projection`; returns how many events it applied (0: caught up).
    ///
    /// Errors: [`ProjectionError::Stopped`] when an event cannot be applied (recorded in the
    /// checkpoint row, checkpoint unchanged); database errors.
    pub async fn run_batch(&self, projection: Projection) -> Result<usize, ProjectionError> {
        let mut tx = self.pool.begin().await?;
        let after = lock_checkpoint(&mut tx, projection).await?;
        let (position, applied) = match apply_batch(&mut tx, projection, after).await {
            Ok(done) => done,
            Err(err) => {
                tx.rollback().await?;
                if let ProjectionError::Stopped { position, error, .. } = &err {
                    self.record_failure(projection, *position, error).await?;
                }
                return Err(err);
            }
        };
        if applied == 0 {
            return Ok(0);
        }
        // One-shot: disarm the fail point as it fires.
        let injected = {
            let mut fail_point = self.fail_point.lock().expect("fail point lock");
            let armed = *fail_point == Some(projection);
            if armed {
                *fail_point = None;
            }
            armed
        };
        if injected {
            tx.rollback().await?;
            return Err(ProjectionError::Injected);
        }
        set_checkpoint(&mut tx, projection, position).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn record_failure(&self, projection: Projection, position: i64, error: &str) -> Result<(), sqlx::Error> {
        tracing::error!(projection = projection.name(), position, error, "projection stopped");
        sqlx::query(
            "UPDATE projection_checkpoints SET failed_position = $2, last_error = $3, updated_at = now()
              WHERE name = $1",
        )
        .bind(projection.name())
        .bind(position)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Brings every projection up to the end of the log. Every projection is tried; the first
    /// error is returned after all have run.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        let mut first_error = None;
        for projection in Projection::ALL {
            loop {
                match self.run_batch(projection).await {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(err) => {
                        first_error.get_or_insert(err);
                        break;
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Catches up until every projection has applied `position` (read-your-writes after a
    /// command), for at most `timeout`. Returns whether it got there.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> bool {
        let started = Instant::now();
        loop {
            if let Err(err) = self.catch_up().await {
                tracing::warn!(%err, "projection catch-up failed");
            }
            match self.min_checkpoint().await {
                Ok(reached) if reached >= position => return true,
                _ if started.elapsed() >= timeout => return false,
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    async fn min_checkpoint(&self) -> Result<i64, sqlx::Error> {
        let names: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
        let (count, min): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), min(position) FROM projection_checkpoints WHERE name = ANY($1)",
        )
        .bind(&names)
        .fetch_one(&self.pool)
        .await?;
        Ok(if count as usize == names.len() { min.unwrap_or(0) } else { 0 })
    }

    /// Every projection's checkpoint, lag and failure, in [`Projection::ALL`] order.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, ProjectionError> {
        let mut out = Vec::new();
        for projection in Projection::ALL {
            let row: Option<CheckpointRow> = sqlx::query_as(
                "SELECT position, updated_at, failed_position, last_error FROM projection_checkpoints WHERE name = $1",
            )
            .bind(projection.name())
            .fetch_optional(&self.pool)
            .await?;
            let (checkpoint, updated_at, failed_position, last_error) = match row {
                Some(r) => (r.position, Some(r.updated_at), r.failed_position, r.last_error),
                None => (0, None, None, None),
            };
            let lag: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position > $1")
                .bind(checkpoint)
                .fetch_one(&self.pool)
                .await?;
            out.push(ProjectionStatus { name: projection.name(), checkpoint, lag, updated_at, failed_position, last_error });
        }
        Ok(out)
    }

    /// Runs the projections in the background until the task is aborted: catches up, then
    /// sleeps until `LISTEN roster_events` wakes it (or 5 s pass, to retry a failed projection).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut listener: Option<PgListener> = None;
            loop {
                if listener.is_none() {
                    match listen(&self.pool).await {
                        Ok(l) => listener = Some(l),
                        Err(err) => tracing::warn!(%err, "projector cannot LISTEN; polling"),
                    }
                }
                if let Err(err) = self.catch_up().await {
                    tracing::warn!(%err, "projection catch-up failed");
                }
                let woken = match listener.as_mut() {
                    Some(l) => tokio::time::timeout(Duration::from_secs(5), l.recv()).await,
                    None => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Ok(Err(_)) = woken {
                    listener = None;
                }
            }
        })
    }
}
