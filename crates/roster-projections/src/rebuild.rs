//! Rebuilding projections from position 0 while the server keeps serving the old tables.
//!
//! For each projection: copy its tables' definitions into a fresh schema, replay the whole log
//! into those shadow tables in batches (the projection code is the same; the connection's
//! `search_path` points it at the shadow schema), then in one transaction that holds the
//! projection's checkpoint lock (so the live projector pauses), apply the last events, replace
//! the live tables' rows with the shadow rows and set the checkpoint.
//!
//! The swap replaces rows (`DELETE` + `INSERT … SELECT`) rather than dropping and renaming
//! tables: a query that waits on a dropped table's lock fails with "could not open relation",
//! whereas row changes need no lock that blocks readers. Under MVCC, readers see the old rows
//! until the swap commits and the new rows after it, never a mix.

use crate::projector::{apply_batch, lock_checkpoint, set_checkpoint};
use crate::{Projection, ProjectionError};
use sqlx::{PgConnection, PgPool};

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

/// Rebuilds `projections` one after another (all of them when empty).
///
/// Errors: the first projection that fails to rebuild; its shadow schema is dropped and its
/// live tables are left as they were.
pub async fn rebuild(pool: &PgPool, projections: &[Projection]) -> Result<Vec<RebuildReport>, ProjectionError> {
    let projections = if projections.is_empty() { &Projection::ALL[..] } else { projections };
    let mut reports = Vec::new();
    for &projection in projections {
        let schema = format!("rebuild_{}_{}", projection.name(), uuid::Uuid::new_v4().simple());
        let result = rebuild_one(pool, projection, &schema).await;
        if result.is_err() {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(pool).await;
        }
        reports.push(result?);
    }
    Ok(reports)
}

async fn rebuild_one(pool: &PgPool, projection: Projection, schema: &str) -> Result<RebuildReport, ProjectionError> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut *tx).await?;
    for table in projection.tables() {
        sqlx::query(&format!("CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;

    // Replay into the shadow tables, one committed batch at a time.
    let mut position = 0;
    loop {
        let mut tx = pool.begin().await?;
        use_schema(&mut tx, schema).await?;
        let (reached, applied) = apply_batch(&mut tx, projection, position).await?;
        tx.commit().await?;
        position = reached;
        if applied == 0 {
            break;
        }
    }

    // Swap: pause the live projector, apply the tail, replace the live rows.
    let mut tx = pool.begin().await?;
    lock_checkpoint(&mut tx, projection).await?;
    use_schema(&mut tx, schema).await?;
    loop {
        let (reached, applied) = apply_batch(&mut tx, projection, position).await?;
        position = reached;
        if applied == 0 {
            break;
        }
    }
    for table in projection.tables() {
        sqlx::query(&format!("DELETE FROM public.{table}")).execute(&mut *tx).await?;
        sqlx::query(&format!("INSERT INTO public.{table} SELECT * FROM {schema}.{table}")).execute(&mut *tx).await?;
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut *tx).await?;
    set_checkpoint(&mut tx, projection, position).await?;
    tx.commit().await?;
    Ok(RebuildReport { name: projection.name(), position })
}
