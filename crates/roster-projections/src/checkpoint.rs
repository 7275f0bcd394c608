//! Projection checkpoints: one row per projection in `projection_checkpoints` holding the last
//! position it applied (and the event it is stopped at, if any). Moving a checkpoint and the
//! read-model writes it covers commit together; the row's lock is what lets one server at a
//! time advance a projection; a notification after commit tells the other servers.

use crate::{Projection, ProjectionError, Stop};
use chrono::{DateTime, Utc};
use roster_store::reader::RawEvent;
use sqlx::{PgConnection, PgPool};

/// The channel the projector notifies on after a checkpoint moved (`notify_checkpoints`).
pub const CHECKPOINT_CHANNEL: &str = "roster_checkpoints";

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

/// One row of [`LOCK_AND_READ`]: a locked checkpoint (`name` set) or an event.
#[derive(sqlx::FromRow)]
pub(crate) struct LockedOrEvent {
    name: Option<String>,
    position: i64,
    recorded_at: Option<DateTime<Utc>>,
    account_id: Option<roster_domain::AccountId>,
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    sequence: Option<i64>,
    event_type: Option<String>,
    event_version: Option<String>,
    payload: Option<String>,
    metadata: Option<String>,
}

/// Locks the checkpoint rows of `$1` (the projections' names, `text[]`) that no other
/// transaction holds (`SKIP LOCKED`) and reads up to `$2` (`bigint`) events after the lowest
/// of them, in one statement (a round trip less on every command's path than locking, then
/// reading). Prepared by name on the projector loop's own connection (`projector::round`);
/// [`locked_and_read`] splits its rows.
pub(crate) const LOCK_AND_READ: &str = "WITH locked AS MATERIALIZED (
         SELECT name, position FROM projection_checkpoints
          WHERE name = ANY($1) ORDER BY name FOR UPDATE SKIP LOCKED)
     (SELECT name, position, NULL::timestamptz AS recorded_at, NULL::uuid AS account_id,
             NULL::text AS aggregate_type, NULL::text AS aggregate_id, NULL::bigint AS sequence,
             NULL::text AS event_type, NULL::text AS event_version, NULL::text AS payload,
             NULL::text AS metadata
        FROM locked ORDER BY name)
     UNION ALL
     (SELECT NULL, position, recorded_at, account_id, aggregate_type, aggregate_id, sequence,
             event_type, event_version, payload::text, metadata::text
        FROM events WHERE position > (SELECT min(position) FROM locked)
       ORDER BY position LIMIT $2)";

/// Splits the rows of [`LOCK_AND_READ`] into the locked `(name, position)` pairs in name order
/// and the events, upcast, in position order; each projection applies those after its own
/// position.
pub(crate) fn locked_and_read(rows: Vec<LockedOrEvent>) -> (Vec<(String, i64)>, Vec<RawEvent>) {
    let (mut locked, mut events) = (Vec::new(), Vec::new());
    for row in rows {
        match row.name {
            Some(name) => locked.push((name, row.position)),
            None => events.push(
                RawEvent {
                    position: row.position,
                    recorded_at: row.recorded_at.unwrap_or_default(),
                    account_id: row.account_id,
                    aggregate_type: row.aggregate_type.unwrap_or_default(),
                    aggregate_id: row.aggregate_id.unwrap_or_default(),
                    sequence: row.sequence.unwrap_or_default(),
                    event_type: row.event_type.unwrap_or_default(),
                    event_version: row.event_version.unwrap_or_default(),
                    payload: row.payload.unwrap_or_default(),
                    metadata: row.metadata.unwrap_or_default(),
                }
                .upcast(),
            ),
        }
    }
    // Each part is ordered by its own ORDER BY; sorting again costs nothing when it is.
    locked.sort();
    events.sort_by_key(|e| e.position);
    (locked, events)
}

/// Locks `projection`'s checkpoint row (creating it at 0), waiting for another holder, and
/// returns its position.
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

/// Moves `projection`'s checkpoint to `position` and records `stop` (or clears the failure).
/// A row already in that state is not touched, so a projection stopped at an event does not
/// notify anyone each time it is retried.
pub(crate) async fn set_checkpoint(conn: &mut PgConnection, projection: Projection, position: i64, stop: Option<&Stop>) -> Result<(), sqlx::Error> {
    set_checkpoints(conn, &[(projection, position, stop.cloned())]).await.map(|_| ())
}

/// Tells every server's projector loop (`LISTEN roster_checkpoints`) that a checkpoint moved;
/// sent after a batch's transaction on a pooled connection committed (`Projector::run_batch`;
/// the loop's rounds notify inside theirs, see `projector/round.rs`). A failure only delays the
/// others until they look on their own.
pub(crate) async fn notify_checkpoints(pool: &PgPool) {
    roster_store::notifier::send(pool, CHECKPOINT_CHANNEL, "").await;
}

/// The statement of [`set_checkpoints`]: `$1` names, `$2` positions reached, `$3` failed
/// positions, `$4` errors (one per moved projection), `$5` every projection's name; answers
/// how many of those have a row and their lowest checkpoint (see [`lowest_of`]). Also prepared
/// by name on the projector loop's own connection (`projector::round`).
pub(crate) const SET_CHECKPOINTS: &str = "WITH moved AS (
             UPDATE projection_checkpoints c
                SET position = m.position, updated_at = now(), failed_position = m.failed, last_error = m.error
               FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS m(name, position, failed, error)
              WHERE c.name = m.name
                AND (c.position <> m.position OR c.failed_position IS DISTINCT FROM m.failed
                     OR c.last_error IS DISTINCT FROM m.error)
             RETURNING c.name, c.position)
         SELECT count(*), min(coalesce(moved.position, c.position))
           FROM projection_checkpoints c LEFT JOIN moved USING (name)
          WHERE c.name = ANY($5)";

/// [`set_checkpoint`] for several projections in one statement; returns the lowest checkpoint
/// of every projection after the change (what `Projector::wait_for` waits on).
pub(crate) async fn set_checkpoints(conn: &mut PgConnection, moves: &[(Projection, i64, Option<Stop>)]) -> Result<i64, sqlx::Error> {
    let names: Vec<&str> = moves.iter().map(|(p, ..)| p.name()).collect();
    let positions: Vec<i64> = moves.iter().map(|(_, reached, _)| *reached).collect();
    let failed: Vec<Option<i64>> = moves.iter().map(|(.., stop)| stop.as_ref().map(|s| s.position)).collect();
    let errors: Vec<Option<&str>> = moves.iter().map(|(.., stop)| stop.as_ref().map(|s| s.error.as_str())).collect();
    let all: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
    let (count, lowest): (i64, Option<i64>) = sqlx::query_as(SET_CHECKPOINTS)
    .bind(&names)
    .bind(&positions)
    .bind(&failed)
    .bind(&errors)
    .bind(&all)
    .fetch_one(conn)
    .await?;
    for (projection, _, stop) in moves {
        if let Some(stop) = stop {
            tracing::error!(projection = projection.name(), position = stop.position, error = stop.error, "projection stopped");
        }
    }
    Ok(lowest_of(count, lowest))
}

/// The lowest checkpoint from `count` rows with minimum `min`: 0 until every projection has
/// its row (one without a row has applied nothing).
pub(crate) fn lowest_of(count: i64, min: Option<i64>) -> i64 {
    if count as usize == Projection::ALL.len() { min.unwrap_or(0) } else { 0 }
}

/// The lowest checkpoint over every projection (0 while one has no row yet).
pub(crate) async fn min_checkpoint(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let names: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
    let (count, min): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), min(position) FROM projection_checkpoints WHERE name = ANY($1)",
    )
    .bind(&names)
    .fetch_one(pool)
    .await?;
    Ok(lowest_of(count, min))
}


/// Every projection's checkpoint, lag and failure, in [`Projection::ALL`] order.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    let mut out = Vec::new();
    for projection in Projection::ALL {
        let row: Option<CheckpointRow> = sqlx::query_as(
            "SELECT position, updated_at, failed_position, last_error FROM projection_checkpoints WHERE name = $1",
        )
        .bind(projection.name())
        .fetch_optional(pool)
        .await?;
        let (checkpoint, updated_at, failed_position, last_error) = match row {
            Some(r) => (r.position, Some(r.updated_at), r.failed_position, r.last_error),
            None => (0, None, None, None),
        };
        let lag: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position > $1")
            .bind(checkpoint)
            .fetch_one(pool)
            .await?;
        out.push(ProjectionStatus { name: projection.name(), checkpoint, lag, updated_at, failed_position, last_error });
    }
    Ok(out)
}
