//! Rebuilding projections from position 0 while the server keeps serving the old tables.
//!
//! Copy the projections' table definitions into a fresh schema (columns and primary keys only:
//! the secondary indexes would only slow the bulk writes down, and the live tables keep
//! theirs), then replay the whole log into those shadow tables — reading the log once for
//! every projection being rebuilt, [`REBUILD_BATCH`] events per committed transaction, with the
//! next batch read while the current one is written, and with the same set-based projection
//! code (the connection's `search_path` points it at the shadow schema). Then, in one
//! transaction that holds the projections' checkpoint locks (so the live projector skips
//! them), apply the last events, replace the live tables' rows with the shadow rows and set
//! the checkpoints.
//!
//! The swap replaces rows (`DELETE` + `INSERT … SELECT`) rather than dropping and renaming
//! tables: a query that waits on a dropped table's lock fails with "could not open relation",
//! whereas row changes need no lock that blocks readers. Under MVCC, readers see the old rows
//! until the swap commits and the new rows after it, never a mix.

use crate::audit_log::Memo;
use crate::projector::{apply_events, lock_checkpoint, set_checkpoint};
use crate::{Projection, ProjectionError};
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

/// The primary key a shadow table needs for the projection's `UPDATE`s and `DELETE`s.
fn shadow_key(table: &str) -> Option<&'static str> {
    match table {
        "members" => Some("account_id, user_id"),
        "invitations" => Some("id"),
        _ => None,
    }
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

async fn rebuild_into(pool: &PgPool, projections: &[Projection], schema: &str) -> Result<Vec<RebuildReport>, ProjectionError> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut *tx).await?;
    for table in projections.iter().flat_map(|p| p.tables()) {
        sqlx::query(&format!("CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING DEFAULTS)")).execute(&mut *tx).await?;
        if let Some(key) = shadow_key(table) {
            sqlx::query(&format!("ALTER TABLE {schema}.{table} ADD PRIMARY KEY ({key})")).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;

    // The audit log's target look-ups are answered from memory: the shadow table starts empty
    // and every entry it gets passes through this memo.
    let mut memo = Memo::default();
    memo.complete = true;
    // Read the next batch (on its own connection) while this one is written.
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
    let mut position = 0;
    let replayed = async {
        while let Some(batch) = incoming.recv().await {
            let events = batch?;
            if events.is_empty() {
                break;
            }
            let mut tx = pool.begin().await?;
            use_schema(&mut tx, schema).await?;
            position = apply_all(&mut tx, projections, position, &events, &mut memo).await?;
            tx.commit().await?;
        }
        Ok::<(), ProjectionError>(())
    }
    .await;
    reader.abort();
    replayed?;

    // Swap: pause the live projector, apply the tail, replace the live rows.
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
    for table in projections.iter().flat_map(|p| p.tables()) {
        sqlx::query(&format!("DELETE FROM public.{table}")).execute(&mut *tx).await?;
        sqlx::query(&format!("INSERT INTO public.{table} SELECT * FROM {schema}.{table}")).execute(&mut *tx).await?;
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut *tx).await?;
    for &projection in projections {
        set_checkpoint(&mut tx, projection, position, None).await?;
    }
    tx.commit().await?;
    Ok(projections.iter().map(|p| RebuildReport { name: p.name(), position }).collect())
}
