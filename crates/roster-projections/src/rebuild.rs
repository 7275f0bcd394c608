//! Rebuilding projections from position 0 while the server keeps serving the old tables.
//!
//! 1. **Shadow tables.** A fresh schema gets tables like the live ones (columns, defaults,
//!    `NOT NULL`/`CHECK`), without indexes: they are built once, after the load.
//! 2. **Bulk load.** The log is read once for every projection being rebuilt, [`REBUILD_BATCH`]
//!    events at a time on its own connection, while the previous batch is folded here and the
//!    audit log's rows stream into its shadow table with one binary `COPY … FREEZE`. Members and
//!    invitations (one row per member or invitation) are folded in memory over the whole log
//!    with the projections' own folds, and written once at the end. Then each shadow table
//!    gets the live table's indexes, primary key, grants and owner, under the same names, and
//!    statistics (`ANALYZE`). One transaction does all this, so a failure or crash leaves at
//!    most an empty schema `rebuild_…` behind (dropped on failure; a crash leaves it to the
//!    operator), and the live tables untouched.
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
//! Everything is WAL-logged (durable): once the swap commits, the rebuilt tables survive a
//! crash like any other.

mod shadow;

use crate::audit_log::{self, Memo};
use crate::copy::{Rows, HEADER, TRAILER};
use crate::projector::{apply_events, lock_checkpoint, set_checkpoint};
use crate::{invitations, members, Projection, ProjectionError, Stop};
use roster_store::reader::{read_raw_after, RawEvent};
use roster_store::EventFilter;
use sqlx::{PgConnection, PgPool};

/// Events read and applied per transaction of a rebuild.
pub const REBUILD_BATCH: i64 = 20_000;

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
    let mut projections = if projections.is_empty() { Projection::ALL.to_vec() } else { projections.to_vec() };
    projections.dedup();
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
    /// Folds `events` in; the audit log's tuples go to `rows`.
    fn events(&mut self, events: &[RawEvent], rows: &mut Rows) -> Result<(), ProjectionError> {
        if let Some(fold) = &mut self.members {
            fold.events(events).map_or(Ok(()), |stop| Err(stopped(Projection::Members, stop)))?;
        }
        if let Some(fold) = &mut self.invitations {
            fold.events(events).map_or(Ok(()), |stop| Err(stopped(Projection::Invitations, stop)))?;
        }
        if let Some(memo) = &mut self.audit {
            audit_log::copy_rows(memo, events, rows).map_or(Ok(()), |stop| Err(stopped(Projection::AuditLog, stop)))?;
        }
        Ok(())
    }
}

async fn rebuild_into(pool: &PgPool, projections: &[Projection], schema: &str) -> Result<Vec<RebuildReport>, ProjectionError> {
    let tables: Vec<&str> = projections.iter().flat_map(|p| p.tables()).copied().collect();
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(pool).await?;
    // One transaction creates and loads every shadow table: COPY … FREEZE (rows written
    // frozen, so no reader has to set hint bits on them later) needs the table created in it.
    let mut load = pool.begin().await?;
    for table in &tables {
        shadow::create(&mut load, schema, table).await?;
    }
    let mut state = Load {
        members: projections.contains(&Projection::Members).then(members::Fold::default),
        invitations: projections.contains(&Projection::Invitations).then(invitations::Fold::default),
        // The shadow audit log starts empty and every entry it gets passes through this memo,
        // so the memo answers every target look-up.
        audit: projections.contains(&Projection::AuditLog).then(Memo::complete),
    };

    // Three tasks overlap: reading the log (its own connection), folding it (here), and
    // streaming the audit log's rows into the shadow table (the load transaction).
    let (batches, mut incoming) = tokio::sync::mpsc::channel::<Result<Vec<RawEvent>, ProjectionError>>(1);
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
    let (chunks, mut outgoing) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let copy = state.audit.is_some().then(|| format!("COPY {schema}.audit_log ({}) FROM STDIN (FORMAT binary, FREEZE)", audit_log::COPY_COLUMNS));
    let writer = tokio::spawn(async move {
        if let Some(copy) = copy {
            let mut copy = load.copy_in_raw(&copy).await?;
            copy.send(HEADER).await?;
            while let Some(chunk) = outgoing.recv().await {
                copy.send(chunk).await?;
            }
            copy.send(TRAILER).await?;
            copy.finish().await?;
        }
        Ok::<_, sqlx::Error>(load)
    });
    let mut position = 0;
    let replayed = async {
        while let Some(batch) = incoming.recv().await {
            let events = batch?;
            let Some(last) = events.last() else { break };
            let mut rows = Rows::with_capacity(if state.audit.is_some() { events.len() * 400 } else { 0 });
            state.events(&events, &mut rows)?;
            position = last.position;
            // A closed channel means the COPY failed: its error comes from the writer below.
            if state.audit.is_some() && chunks.send(rows.0).await.is_err() {
                break;
            }
        }
        Ok::<(), ProjectionError>(())
    }
    .await;
    reader.abort();
    drop(chunks);
    let written = writer.await.expect("the COPY writer does not panic");
    replayed?;
    let mut load = written?;

    // Members and invitations: one row each, written once; then every index, after the load.
    use_schema(&mut load, schema).await?;
    if let Some(fold) = state.members.take() {
        fold.write(&mut load).await?;
    }
    if let Some(fold) = state.invitations.take() {
        fold.write(&mut load).await?;
    }
    for table in &tables {
        shadow::finish(&mut load, schema, table).await?;
    }
    load.commit().await?;

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
    Ok(projections.iter().map(|p| RebuildReport { name: p.name(), position }).collect())
}
