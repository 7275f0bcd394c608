//! The projector: applies events to each projection in global order from its own checkpoint,
//! off the request path.
//!
//! **One loop per process** ([`Projector::spawn`]) does the projection work. Each round is one
//! transaction: lock the checkpoint rows of the projections no other process is working on
//! (`FOR UPDATE SKIP LOCKED`) and read up to [`BATCH_SIZE`] events after the lowest of them, in
//! one statement; apply each projection's share with a few multi-row statements, move the
//! checkpoints and notify, commit (asynchronously; on the loop's own connection, see `round.rs`).
//! So a crash anywhere loses nothing and applies nothing twice, and when several servers share a
//! database each projection advances on exactly one of them at a time, while the others skip
//! it instead of queueing behind it. The loop sleeps until `LISTEN roster_events` (an append)
//! or `LISTEN roster_checkpoints` (a checkpoint moved, here or on another server) wakes it.
//!
//! **Read-your-writes.** After each round and each checkpoint notification the loop publishes
//! the lowest checkpoint on a `tokio::sync::watch` channel; [`Projector::wait_for`] waits on
//! that channel for "checkpoint ≥ my position" — no polling, no projection work in the request,
//! and it wakes too when another server advanced the projection.
//!
//! **Failures.** An event a projection cannot apply stops that projection there: the events
//! before it are committed, and the checkpoint row records the failing position and error (see
//! `roster projections status`); later rounds retry it. When the database refuses a batch's
//! statements, the batch is rolled back and re-applied one event per transaction, which
//! finds the event to stop at.

mod round;
mod run;

use crate::audit_log::Memo;
use crate::checkpoint::{lock_checkpoint, min_checkpoint, notify_checkpoints, set_checkpoint, status};
pub use crate::checkpoint::{ProjectionStatus, CHECKPOINT_CHANNEL};
use crate::{Projection, Stop};
use roster_store::reader::{read_raw_after, RawEvent};
use roster_store::{EventFilter, StoreError};
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Events read and applied per transaction.
pub const BATCH_SIZE: i64 = 2_000;

/// Ops knob: events per projection per round of the loop ([`Projector::spawn`]) instead of
/// [`BATCH_SIZE`] (shorter transactions; tests use it to make many small rounds).
pub const BATCH_SIZE_VAR: &str = "ROSTER_PROJECTOR_BATCH_SIZE";

/// Test knob: milliseconds the loop sleeps in each round after writing the read models and
/// before committing, so a crash test can kill the process mid-batch. Never set it in
/// production: the round holds its checkpoint locks while it sleeps.
pub const PAUSE_VAR: &str = "ROSTER_PROJECTOR_PAUSE_BEFORE_COMMIT_MS";

/// Ops knob: `false` (or `0`) and this process's loop projects nothing; it only follows the
/// checkpoints other processes move (`LISTEN roster_checkpoints`), so its commands still wait
/// for their events to show. For API-only replicas next to projecting ones.
pub const ENABLED_VAR: &str = "ROSTER_PROJECTOR_ENABLED";

/// The loop's knobs ([`ENABLED_VAR`], [`BATCH_SIZE_VAR`], [`PAUSE_VAR`]), read once from the
/// environment.
struct Knobs {
    enabled: bool,
    batch_size: i64,
    pause_before_commit: Duration,
}

fn knobs() -> &'static Knobs {
    static KNOBS: std::sync::OnceLock<Knobs> = std::sync::OnceLock::new();
    KNOBS.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Knobs {
            enabled: !matches!(std::env::var(ENABLED_VAR).as_deref(), Ok("false" | "0")),
            batch_size: var(BATCH_SIZE_VAR).filter(|n| *n > 0).map_or(BATCH_SIZE, |n| n as i64),
            pause_before_commit: Duration::from_millis(var(PAUSE_VAR).unwrap_or(0)),
        }
    })
}

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

/// Runs the projections. Cheap to clone; clones share the fail point, the published
/// checkpoint and the loop.
#[derive(Clone)]
pub struct Projector {
    pool: PgPool,
    fail_point: Arc<Mutex<Option<Projection>>>,
    /// The lowest checkpoint over every projection, as last seen.
    checkpoint: Arc<watch::Sender<i64>>,
    running: Arc<AtomicBool>,
    /// Appends of this process's writer and the origin of its notifications (see
    /// [`Projector::woken_by`]).
    appended: Option<(watch::Receiver<i64>, String)>,
}

/// Applies `events` (all after `after`) to `projection` on `conn`; returns the position
/// reached and the event it stopped at, if any.
pub(crate) async fn apply_events(conn: &mut PgConnection, projection: Projection, after: i64, events: &[RawEvent], memo: &mut Memo) -> Result<(i64, Option<Stop>), sqlx::Error> {
    let stop = projection.apply(conn, events, memo).await?;
    let reached = match &stop {
        Some(s) => events.iter().take_while(|e| e.position < s.position).last().map_or(after, |e| e.position),
        None => events.last().map_or(after, |e| e.position),
    };
    Ok((reached, stop))
}

fn stopped(projection: Projection, stop: Stop) -> ProjectionError {
    ProjectionError::Stopped { name: projection.name(), position: stop.position, error: stop.error }
}

impl Projector {
    /// A projector over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, fail_point: Arc::default(), checkpoint: Arc::new(watch::channel(0).0), running: Arc::default(), appended: None }
    }

    /// Lets the loop also wake when `appended` (this process's writer's last committed
    /// position, `roster_store::Writer::committed`) changes, without waiting for the
    /// notification's round trip through the database; that writer's notifications (payload
    /// `origin`, `roster_store::Writer::origin`) are then ignored.
    pub fn woken_by(mut self, appended: watch::Receiver<i64>, origin: &str) -> Self {
        self.appended = Some((appended, origin.to_string()));
        self
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

    /// Disarms and reports the fail point if it is armed for one of `projections`.
    fn fire_fail_point(&self, projections: &[Projection]) -> bool {
        let mut fail_point = self.fail_point.lock().expect("fail point lock");
        let armed = fail_point.is_some_and(|p| projections.contains(&p));
        if armed {
            *fail_point = None;
        }
        armed
    }

    /// Applies one batch to `projection`, waiting for another process working on it; returns
    /// how many events it applied (0: caught up).
    ///
    /// Errors: [`ProjectionError::Stopped`] when an event cannot be applied (recorded in the
    /// checkpoint row; the events before it are applied); database errors.
    pub async fn run_batch(&self, projection: Projection) -> Result<usize, ProjectionError> {
        self.run_batch_of(projection, BATCH_SIZE).await
    }

    /// [`Projector::run_batch`] with batches of `size` events (tests compare sizes).
    pub async fn run_batch_of(&self, projection: Projection, size: i64) -> Result<usize, ProjectionError> {
        match self.try_batch(projection, size).await? {
            Ok(applied) => Ok(applied),
            // The database refused the batch: one event per transaction finds the culprit.
            Err(_) => {
                let mut applied = 0;
                for _ in 0..size {
                    match self.try_batch(projection, 1).await? {
                        Ok(0) => break,
                        Ok(n) => applied += n,
                        Err((position, err)) => {
                            let stop = Stop { position, error: err.to_string() };
                            let mut conn = self.pool.acquire().await?;
                            let after = position - 1;
                            set_checkpoint(&mut conn, projection, after.max(0), Some(&stop)).await.ok();
                            return Err(stopped(projection, stop));
                        }
                    }
                }
                Ok(applied)
            }
        }
    }

    /// One transaction of up to `limit` events; the inner error is a write the database
    /// refused, with the first position of the batch.
    async fn try_batch(&self, projection: Projection, limit: i64) -> Result<Result<usize, (i64, sqlx::Error)>, ProjectionError> {
        // The settings the loop's connection has for its session, for this transaction only.
        let mut tx = self.pool.begin_with(format!("BEGIN; {}", round::settings("LOCAL "))).await?;
        let after = lock_checkpoint(&mut tx, projection).await?;
        let events = read_raw_after(&mut *tx, after, limit, EventFilter::default()).await?;
        let Some(first) = events.first().map(|e| e.position) else { return Ok(Ok(0)) };
        let (reached, stop) = match apply_events(&mut tx, projection, after, &events, &mut Memo::default()).await {
            Ok(done) => done,
            Err(err) => {
                // Roll back now, not when the pool reuses the connection: the next attempt
                // needs this checkpoint row's lock.
                let _ = tx.rollback().await;
                return Ok(Err((first, err)));
            }
        };
        if self.fire_fail_point(&[projection]) {
            tx.rollback().await?;
            return Err(ProjectionError::Injected);
        }
        set_checkpoint(&mut tx, projection, reached, stop.as_ref()).await?;
        tx.commit().await?;
        tracing::debug!(projection = projection.name(), after, reached, "projection batch committed");
        notify_checkpoints(&self.pool).await;
        match stop {
            Some(stop) => Err(stopped(projection, stop)),
            None => Ok(Ok(events.len())),
        }
    }

    /// Brings every projection up to the end of the log. Every projection is tried; the first
    /// error is returned after all have run.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        self.catch_up_in_batches_of(BATCH_SIZE).await
    }

    /// [`Projector::catch_up`] with batches of `size` events (tests compare sizes).
    pub async fn catch_up_in_batches_of(&self, size: i64) -> Result<(), ProjectionError> {
        let mut first_error = None;
        for projection in Projection::ALL {
            loop {
                match self.run_batch_of(projection, size).await {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(err) => {
                        first_error.get_or_insert(err);
                        break;
                    }
                }
            }
        }
        self.publish().await;
        first_error.map_or(Ok(()), Err)
    }

    /// Catches up until every projection has applied `position` (read-your-writes after a
    /// command), for at most `timeout`. Returns whether it got there. Waits for the loop of
    /// [`Projector::spawn`] (of this process or, through checkpoint notifications, another's);
    /// a projector whose loop was never started catches up once itself first.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> bool {
        let mut seen = self.checkpoint.subscribe();
        if !self.running.load(Ordering::Relaxed) && *seen.borrow() < position {
            if let Err(err) = self.catch_up().await {
                tracing::warn!(%err, "projection catch-up failed");
            }
        }
        let reached = matches!(tokio::time::timeout(timeout, seen.wait_for(|c| *c >= position)).await, Ok(Ok(_)));
        reached
    }

    /// Reads the lowest checkpoint and publishes it to [`Projector::wait_for`].
    async fn publish(&self) {
        match min_checkpoint(&self.pool).await {
            Ok(min) => self.publish_seen(min),
            Err(err) => tracing::warn!(%err, "cannot read checkpoints"),
        }
    }

    /// Publishes `min`, a lowest checkpoint read from the table, unless a later one was.
    fn publish_seen(&self, min: i64) {
        self.checkpoint.send_if_modified(|c| {
            let moved = min > *c;
            *c = (*c).max(min);
            moved
        });
    }

    /// Every projection's checkpoint, lag and failure, in [`Projection::ALL`] order.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, ProjectionError> {
        status(&self.pool).await
    }
}
