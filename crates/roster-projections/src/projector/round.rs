//! One round of the projector loop ([`Projector::run_round`]) on the loop's own connection.
//!
//! **Why its own connection.** A round is on every command's path (a command is answered once
//! its events are projected), and a round on a pooled connection cost two round trips beyond
//! its work: `BEGIN` with the round's settings, and `COMMIT`. The loop keeps one connection
//! (outside the pool's count), set up once: the settings for the session ([`ROUND_SETTINGS`]) and its
//! two fixed statements prepared by name. A round then sends `BEGIN` together with the locking
//! read, and the checkpoints' move together with `COMMIT`, each pair in one simple-query message
//! (one round trip each). The only values written into those messages are projection names
//! (fixed identifiers) and integers; a round that records a failure (an error's text) moves
//! its checkpoints with a bound statement and commits after it.
//!
//! Any error leaves the connection's transaction in an unknown state: the connection is
//! dropped (PostgreSQL rolls its transaction back) and the next round opens a new one.

use super::{apply_events, knobs, stopped, Projector};
use crate::audit_log::Memo;
use crate::checkpoint::{locked_and_read, lowest_of, set_checkpoints, LockedOrEvent, CHECKPOINT_CHANNEL, LOCK_AND_READ, SET_CHECKPOINTS};
use crate::{Projection, ProjectionError, Stop};
use roster_store::reader::{read_raw_after, RawEvent};
use roster_store::EventFilter;
use sqlx::{Executor, FromRow, PgConnection, Row};

/// The settings of every projection transaction: for the session of the loop's connection,
/// for each transaction (`SET LOCAL`) of a batch on a pooled one ([`settings`]). Its statements take arrays (`UNNEST`), for which
/// PostgreSQL's default keeps re-planning every execution (planning the invitations statement
/// took 0.3 ms of its 0.4 ms for one event): generic plans, made once per connection. One made
/// while a table is small would keep scanning it whole (the per-account counters: 0.2 ms per
/// batch at 1,000 accounts, growing); every statement of a round finds its rows by a key, so
/// sequential scans are off.
///
/// **Asynchronous commit.** A round's commit does not wait for its WAL flush: everything it
/// writes is derived from events that are already durable, and its checkpoints are in the same
/// transaction as its read-model rows. If the database crashes before the flush, both roll
/// back together and the next round applies the same events again, from the durable log —
/// nothing is lost or applied twice, and a command is still answered only after its own events
/// were flushed (the writer's commits stay synchronous). What this saves is a second WAL flush
/// on every command's path and the rounds' flushes competing with the appends' for the WAL.
const ROUND_SETTINGS: [&str; 3] = ["plan_cache_mode = force_generic_plan", "enable_seqscan = off", "synchronous_commit = off"];

/// The statements that make [`ROUND_SETTINGS`]: `SET {scope}…` each (`scope` `""` for the
/// session, `"LOCAL "` for one transaction), `;`-separated.
pub(super) fn settings(scope: &str) -> String {
    ROUND_SETTINGS.iter().map(|setting| format!("SET {scope}{setting}")).collect::<Vec<_>>().join("; ")
}

/// The loop's connection and the messages of a round that carry no data of their own.
pub(super) struct RoundConnection {
    conn: PgConnection,
    /// Every projection's name, as an array literal.
    all: String,
    /// `BEGIN` and the locking read of every projection's checkpoint and the events after.
    begin_and_read: String,
    /// Tells every server's loop that checkpoints moved, then commits. The notification is
    /// sent inside the round's transaction: its commit is asynchronous, so the database-wide
    /// lock a notifying commit takes is not held through a WAL flush (`roster_store::notifier`).
    notify_and_commit: String,
}

/// `'{a,b}'`: a PostgreSQL array literal of `items`, which must need no quoting (names of
/// projections, integers, `NULL`).
fn array_literal(items: impl IntoIterator<Item = String>) -> String {
    format!("'{{{}}}'", items.into_iter().collect::<Vec<_>>().join(","))
}

/// `origin` if it is a UUID (as `Notifier` makes them), else a fixed one: it is written into a
/// statement.
fn uuid_only(origin: &str) -> String {
    uuid::Uuid::parse_str(origin).unwrap_or_default().to_string()
}

impl RoundConnection {
    async fn open(projector: &Projector, origin: &str) -> Result<Self, sqlx::Error> {
        let mut conn = roster_store::own_connection::open(&projector.pool).await?;
        let prepare = format!(
            "{}; PREPARE roster_round_read(text[], bigint) AS {LOCK_AND_READ}; \
             PREPARE roster_round_checkpoints(text[], bigint[], bigint[], text[], text[]) AS {SET_CHECKPOINTS}",
            settings("")
        );
        conn.execute(prepare.as_str()).await?;
        let all = array_literal(Projection::ALL.iter().map(|p| p.name().to_string()));
        let begin_and_read = format!("BEGIN; EXECUTE roster_round_read({all}, {})", knobs().batch_size);
        // The origin is a UUID the loop compares notifications with (`Wake::of`).
        let notify_and_commit = format!("NOTIFY {CHECKPOINT_CHANNEL}, '{origin}'; COMMIT", origin = uuid_only(origin));
        Ok(Self { conn, all, begin_and_read, notify_and_commit })
    }

    /// Moves the checkpoints, notifies and commits, in one message when no projection stopped;
    /// returns the lowest checkpoint after the commit.
    async fn move_and_commit(&mut self, moves: &[(Projection, i64, Option<Stop>)]) -> Result<i64, sqlx::Error> {
        if moves.iter().any(|(.., stop)| stop.is_some()) {
            let lowest = set_checkpoints(&mut self.conn, moves).await?;
            self.conn.execute(self.notify_and_commit.as_str()).await?;
            return Ok(lowest);
        }
        let names = array_literal(moves.iter().map(|(p, ..)| p.name().to_string()));
        let positions = array_literal(moves.iter().map(|(_, reached, _)| reached.to_string()));
        let nulls = array_literal(moves.iter().map(|_| "NULL".to_string()));
        let sql = format!("EXECUTE roster_round_checkpoints({names}, {positions}, {nulls}, {nulls}, {}); {}", self.all, self.notify_and_commit);
        let rows = self.conn.fetch_all(sql.as_str()).await?;
        let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
        Ok(lowest_of(row.try_get(0)?, row.try_get(1)?))
    }
}

impl Projector {
    /// One round of the loop: every projection no other process holds advances by up to one
    /// batch, in one transaction (one commit for all) on the loop's connection `own` (opened
    /// when `None`, dropped after an error). Returns the largest number of events one
    /// projection applied and the lowest checkpoint as of the round's commit (`None`: the
    /// round moved nothing, ask the table).
    pub(super) async fn run_round(&self, own: &mut Option<RoundConnection>, origin: &str) -> Result<(usize, Option<i64>), ProjectionError> {
        if !knobs().enabled {
            return Ok((0, None));
        }
        let mut round = match own.take() {
            Some(round) => round,
            None => RoundConnection::open(self, origin).await?,
        };
        let result = self.round_on(&mut round).await;
        // Kept unless the round failed before or during its commit (see the module's doc); a
        // projection stopped at an event was recorded and committed.
        if let Ok(_) | Err(ProjectionError::Stopped { .. }) = &result {
            *own = Some(round);
        }
        result
    }

    async fn round_on(&self, round: &mut RoundConnection) -> Result<(usize, Option<i64>), ProjectionError> {
        let batch_size = knobs().batch_size;
        let rows = round.conn.fetch_all(round.begin_and_read.as_str()).await?;
        let rows = rows.iter().map(LockedOrEvent::from_row).collect::<Result<Vec<_>, _>>()?;
        let (locked, read) = locked_and_read(rows);
        let conn = &mut round.conn;
        let (mut applied, mut moves, mut stops, mut starts) = (0, Vec::new(), Vec::new(), Vec::new());
        for (name, after) in locked {
            let projection = Projection::from_name(&name).expect("selected by name");
            // The events were read after the lowest checkpoint; this one applies those after
            // its own. One far ahead of a full window (the lowest is stopped at an event, say)
            // reads its own, so a stopped projection holds no other back.
            let own: Vec<RawEvent>;
            let mut events = &read[read.partition_point(|e| e.position <= after)..];
            if events.is_empty() && read.len() as i64 >= batch_size {
                own = read_raw_after(&mut *conn, after, batch_size, EventFilter::default()).await?;
                events = &own;
            }
            if events.is_empty() {
                continue;
            }
            let (reached, stop) = match apply_events(conn, projection, after, events, &mut Memo::default()).await {
                Ok(done) => done,
                Err(err) => {
                    // Find the event the database refuses, one projection at a time.
                    tracing::warn!(%err, projection = name, "batch refused; retrying event by event");
                    conn.execute("ROLLBACK").await?;
                    return self.catch_up().await.map(|()| (0, None));
                }
            };
            applied = applied.max(events.len());
            starts.push(after);
            moves.push((projection, reached, stop));
        }
        if moves.is_empty() {
            conn.execute("COMMIT").await?;
            return Ok((0, None));
        }
        if self.fire_fail_point(&moves.iter().map(|(p, ..)| *p).collect::<Vec<_>>()) {
            conn.execute("ROLLBACK").await?;
            return Err(ProjectionError::Injected);
        }
        if !knobs().pause_before_commit.is_zero() {
            tokio::time::sleep(knobs().pause_before_commit).await;
        }
        let lowest = round.move_and_commit(&moves).await?;
        for ((projection, reached, _), after) in moves.iter().zip(starts) {
            // Tests read these lines to show each range was applied once, by one process.
            tracing::debug!(projection = projection.name(), after, reached, "projection batch committed");
        }
        for (projection, _, stop) in moves {
            stops.extend(stop.map(|s| stopped(projection, s)));
        }
        stops.into_iter().next().map_or(Ok((applied, Some(lowest))), Err)
    }
}
