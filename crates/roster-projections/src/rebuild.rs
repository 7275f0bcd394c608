//! Rebuilding projections from position 0 while the server keeps serving the old tables.
//!
//! 1. **Shadow tables.** A fresh schema gets tables like the live ones (columns, defaults,
//!    `NOT NULL`/`CHECK`), without indexes: they are built once, after the load.
//! 2. **Bulk load.** The log is read once for every projection being rebuilt, [`REBUILD_BATCH`]
//!    events at a time on its own connection, while the previous batch is folded (members and
//!    invitations on a second thread) and the audit log's rows stream into its shadow table
//!    with one binary `COPY … FREEZE`. Members and invitations (one row per member or
//!    invitation) are folded in memory over the whole log with the projections' own folds
//!    (`members::Fold`, `invitations::Fold`: no second copy of what an event means), and
//!    copied in once at the end. Each shadow table is created, loaded, given the live table's
//!    indexes, primary key, grants and owner under the same names (indexes built after the
//!    load), and analysed in one transaction of its own; the audit log's indexes are built
//!    while the other tables load. A failure drops the shadow schema; a crash leaves a
//!    `rebuild_…` schema for the operator to drop. The live tables are untouched until the
//!    swap.
//! 3. **Swap.** One transaction locks the projections' checkpoint rows (so the live projector
//!    skips them), applies the events appended since the load with the live projection code
//!    (the connection's `search_path` points it at the shadow schema), moves the live tables
//!    out to a retired schema and the shadow tables (with their indexes) into `public`, drops
//!    the retired tables, and sets the checkpoints.
//!
//! Readers see the old rows until the swap commits and the new rows after it, never a mix or
//! an error: a statement waiting on a live table's lock re-resolves the table's name once it
//! gets the lock (PostgreSQL retries the name look-up when invalidations arrived while it
//! waited, and replans prepared statements), so it reads the new table. The swap takes all the
//! tables' locks at once with a short `lock_timeout` and retries, so readers wait for it at
//! most a few tens of milliseconds.
//!
//! Everything is WAL-logged (durable, no `UNLOGGED` tables): once the swap commits, the rebuilt
//! tables survive a crash like any other. Memory: the member and invitation folds hold one
//! entry per member and invitation of the whole log.
//!
//! The shadow tables copy the live tables' definitions when the rebuild starts: a migration
//! that changes a read-model table must not run while a rebuild is under way (its change would
//! be swapped out).

mod shadow;

use crate::audit_log::{self, Memo};
use crate::copy::{Rows, HEADER, TRAILER};
use crate::checkpoint::{lock_checkpoint, notify_checkpoints, set_checkpoint};
use crate::projector::apply_events;
use crate::{invitations, members, Projection, ProjectionError, Stop};
use futures::{StreamExt, TryStreamExt};
use roster_store::reader::{read_raw_after, RawEvent};
use roster_store::EventFilter;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc::{self, Receiver, Sender};

/// Events read and applied per transaction of a rebuild.
pub const REBUILD_BATCH: i64 = 20_000;

/// Member and invitation tables loaded (copied and indexed) at once, each on its own
/// connection, beside the audit log's: index builds are CPU work in PostgreSQL, and one table
/// after another left a core idle (measured on 2 cores: 4.3 s of loading for 1M events).
/// With the reader done, a rebuild then holds at most this many + 1 connections.
const LOAD_CONCURRENCY: usize = 2;

/// What a rebuild did for one projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The projection's name.
    pub name: &'static str,
    /// The checkpoint the rebuilt tables were swapped in at.
    pub position: i64,
}

async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public")).execute(conn).await?;
    Ok(())
}

/// Rebuilds `projections` (all of them when empty) from one read of the log, and swaps them
/// in together.
///
/// Errors: the first event a projection cannot apply, or a database error; the shadow schema
/// is dropped and the live tables are left as they were.
pub async fn rebuild(pool: &PgPool, projections: &[Projection]) -> Result<Vec<RebuildReport>, ProjectionError> {
    let asked = if projections.is_empty() { &Projection::ALL[..] } else { projections };
    // Each once, in the order asked: a table created twice would fail the rebuild.
    let mut projections: Vec<Projection> = Vec::new();
    for &projection in asked {
        if !projections.contains(&projection) {
            projections.push(projection);
        }
    }
    let schema = format!("rebuild_{}", uuid::Uuid::new_v4().simple());
    let result = rebuild_into(pool, &projections, &schema).await;
    if result.is_err() {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(pool).await;
    }
    result
}

/// Applies `events` to every projection in `projections` (shadow tables via `search_path`).
async fn apply_all(conn: &mut PgConnection, projections: &[Projection], after: i64, events: &[RawEvent], memo: &mut Memo) -> Result<i64, ProjectionError> {
    let mut reached = after;
    for &projection in projections {
        let (position, stop) = apply_events(conn, projection, after, events, memo).await?;
        if let Some(stop) = stop {
            return Err(ProjectionError::Stopped { name: projection.name(), position: stop.position, error: stop.error });
        }
        reached = position;
    }
    Ok(reached)
}

/// Stops a rebuild at the event `projection` cannot apply.
fn stopped(projection: Projection, stop: Stop) -> ProjectionError {
    ProjectionError::Stopped { name: projection.name(), position: stop.position, error: stop.error }
}

/// The in-memory state of the bulk load: the folds of the projections with one row per
/// member or invitation, and the audit log's memo (its rows are streamed out as they come).
struct Load {
    members: Option<members::Fold>,
    invitations: Option<invitations::Fold>,
    audit: Option<Memo>,
}

impl Load {
    /// Folds `events` in; the audit log's tuples go to `rows`. Members and invitations are
    /// folded on a second thread while this one makes the audit log's tuples: the folds are
    /// independent, and one thread alone would bound the replay.
    fn events(&mut self, events: &[RawEvent], rows: &mut Rows) -> Result<(), ProjectionError> {
        let Load { members, invitations, audit } = self;
        std::thread::scope(|scope| {
            let folds = scope.spawn(|| {
                if let Some(stop) = members.as_mut().and_then(|fold| fold.events(events)) {
                    return Err(stopped(Projection::Members, stop));
                }
                if let Some(stop) = invitations.as_mut().and_then(|fold| fold.events(events)) {
                    return Err(stopped(Projection::Invitations, stop));
                }
                Ok(())
            });
            let audit = match audit.as_mut().and_then(|memo| audit_log::copy_rows(memo, events, rows)) {
                Some(stop) => Err(stopped(Projection::AuditLog, stop)),
                None => Ok(()),
            };
            folds.join().expect("the folds do not panic").and(audit)
        })
    }
}

/// Creates `{schema}.{table}`, loads the binary `COPY` tuples `chunks` brings into it (handing
/// each sent buffer back through `spare`), then gives it the live table's indexes, grants and
/// owner: one transaction, so `COPY … FREEZE` may write the rows frozen (no reader has to set
/// hint bits on them later).
async fn load_table(pool: PgPool, schema: String, table: &'static str, columns: &'static str, mut chunks: Receiver<Vec<u8>>, spare: Option<Sender<Vec<u8>>>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    shadow::create(&mut tx, &schema, table).await?;
    let mut copy = tx.copy_in_raw(&format!("COPY {schema}.{table} ({columns}) FROM STDIN (FORMAT binary, FREEZE)")).await?;
    copy.send(HEADER).await?;
    while let Some(mut chunk) = chunks.recv().await {
        copy.send(&chunk[..]).await?;
        chunk.clear();
        if let Some(spare) = &spare {
            let _ = spare.try_send(chunk);
        }
    }
    copy.send(TRAILER).await?;
    copy.finish().await?;
    shadow::finish(&mut tx, &schema, table).await?;
    tx.commit().await
}

/// A channel that brings `rows` and closes.
fn once(rows: Rows) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(rows.0).expect("room for one");
    rx
}

async fn rebuild_into(pool: &PgPool, projections: &[Projection], schema: &str) -> Result<Vec<RebuildReport>, ProjectionError> {
    let tables: Vec<&str> = projections.iter().flat_map(|p| p.tables()).copied().collect();
    let started = std::time::Instant::now();
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(pool).await?;
    let mut state = Load {
        members: projections.contains(&Projection::Members).then(members::Fold::default),
        invitations: projections.contains(&Projection::Invitations).then(invitations::Fold::default),
        // The shadow audit log starts empty and every entry it gets passes through this memo,
        // so the memo answers every target look-up.
        audit: projections.contains(&Projection::AuditLog).then(Memo::complete),
    };

    // Three tasks overlap: reading the log (its own connection), folding it (here), and
    // streaming the audit log's rows into its shadow table (a third connection).
    let (batches, mut incoming) = mpsc::channel::<Result<Vec<RawEvent>, ProjectionError>>(1);
    let reader_pool = pool.clone();
    let reader = tokio::spawn(async move {
        let mut after = 0;
        loop {
            let batch = read_raw_after(&reader_pool, after, REBUILD_BATCH, EventFilter::default()).await.map_err(ProjectionError::from);
            let last = batch.as_ref().ok().and_then(|b| b.last().map(|e| e.position));
            if batches.send(batch).await.is_err() {
                return;
            }
            match last {
                Some(last) => after = last,
                None => return,
            }
        }
    });
    let (chunks, outgoing) = mpsc::channel::<Vec<u8>>(2);
    // Sent buffers come back for reuse: fresh multi-megabyte buffers cost page faults.
    let (spare, mut spares) = mpsc::channel::<Vec<u8>>(4);
    let audit = state.audit.is_some().then(|| {
        tokio::spawn(load_table(pool.clone(), schema.to_string(), "audit_log", audit_log::COPY_COLUMNS, outgoing, Some(spare)))
    });
    let mut position = 0;
    let replayed = async {
        while let Some(batch) = incoming.recv().await {
            let events = batch?;
            let Some(last) = events.last() else { break };
            let mut rows = Rows(spares.try_recv().unwrap_or_default());
            state.events(&events, &mut rows)?;
            position = last.position;
            // A closed channel means the COPY failed: its error comes from the task below.
            if audit.is_some() && chunks.send(rows.0).await.is_err() {
                break;
            }
        }
        Ok::<(), ProjectionError>(())
    }
    .await;
    // The tasks stop on their own, never cancelled mid-statement (a query or COPY cut short
    // returned its connection to the pool out of step with the server: "expected
    // ParseComplete, got ReadyForQuery" on the next use): the reader's next send fails, the
    // audit log's load ends with the closed channel.
    drop(incoming);
    drop(chunks);
    let _ = reader.await;
    if let Err(err) = replayed {
        if let Some(audit) = audit {
            let _ = audit.await;
        }
        return Err(err);
    }
    let replayed_at = started.elapsed();

    // Members and invitations (one row each, written once, then indexed) while the audit log's
    // indexes are built, [`LOAD_CONCURRENCY`] tables at a time.
    let mut loads = state.members.take().map(members::Fold::copy_rows).unwrap_or_default();
    loads.extend(state.invitations.take().map(invitations::Fold::copy_rows).into_iter().flatten());
    loads.extend(state.audit.as_mut().map(Memo::take_counts));
    let written = futures::stream::iter(loads)
        .map(|crate::copy::Load { table, columns, rows }| load_table(pool.clone(), schema.to_string(), table, columns, once(rows), None))
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect::<()>()
        .await;
    if let Some(audit) = audit {
        audit.await.expect("the audit log's load does not panic")?;
    }
    written?;
    let loaded_at = started.elapsed();

    // Swap: pause the live projector, apply the tail with the live code, move the tables.
    let mut memo = state.audit.take().unwrap_or_default();
    let mut tx = pool.begin().await?;
    for &projection in projections {
        lock_checkpoint(&mut tx, projection).await?;
    }
    use_schema(&mut tx, schema).await?;
    loop {
        let events = read_raw_after(&mut *tx, position, REBUILD_BATCH, EventFilter::default()).await?;
        if events.is_empty() {
            break;
        }
        position = apply_all(&mut tx, projections, position, &events, &mut memo).await?;
    }
    shadow::swap(&mut tx, schema, &tables).await?;
    for &projection in projections {
        set_checkpoint(&mut tx, projection, position, None).await?;
    }
    tx.commit().await?;
    notify_checkpoints(pool).await;
    tracing::info!(?replayed_at, ?loaded_at, swapped_at = ?started.elapsed(), position, "rebuild swapped in");
    Ok(projections.iter().map(|p| RebuildReport { name: p.name(), position }).collect())
}
