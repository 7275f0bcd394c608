//! The shadow tables of a rebuild: created like the live tables but without indexes, given the
//! live tables' indexes, constraints, grants and owner (same names) once loaded, and swapped in
//! by moving tables between schemas.

use sqlx::PgConnection;
use std::time::Duration;

/// How long the swap waits for the live tables' locks before it lets go of them and tries
/// again: less than `deadlock_timeout` (1 s by default), so a reader holding one of the tables
/// while it waits for another is never the one a deadlock check cancels.
const LOCK_WAIT: &str = "50ms";

/// How many times the swap tries to lock the live tables before the rebuild gives up.
const LOCK_ATTEMPTS: u32 = 200;

/// Creates `{schema}.{table}` with the columns, defaults and `NOT NULL`/`CHECK` constraints of
/// `public.{table}` and no index, for a fast bulk load.
pub(super) async fn create(conn: &mut PgConnection, schema: &str, table: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES EXCLUDING STATISTICS)"
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// The statements that give `{$2}.{table}` the columns' statistics targets of the live table
/// `$1` (`LIKE` does not copy them; `users` collects none for the searched columns), its
/// indexes and index-backed constraints under the same names, then its grants and owner.
const FINISH: &str = "
SELECT stmt FROM (
    SELECT 0 AS step, a.attname::text AS name,
           format('ALTER TABLE %I.%I ALTER COLUMN %I SET STATISTICS %s', $2, c.relname, a.attname, a.attstattarget) AS stmt
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
     WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
    UNION ALL
    SELECT 1, i.relname::text,
           CASE WHEN con.oid IS NOT NULL
                THEN format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', $2, t.relname, con.conname, pg_get_constraintdef(con.oid))
                ELSE format('CREATE %sINDEX %I ON %I.%I %s', CASE WHEN x.indisunique THEN 'UNIQUE ' END, i.relname, $2, t.relname,
                            substr(pg_get_indexdef(x.indexrelid), strpos(pg_get_indexdef(x.indexrelid), ' USING ') + 1))
           END
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x')
     WHERE x.indrelid = $1::regclass
    UNION ALL
    SELECT 2, '', format('GRANT %s ON %I.%I TO %s%s', a.privilege_type, $2, c.relname,
                         CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                         CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
      FROM pg_class c, aclexplode(c.relacl) a
     WHERE c.oid = $1::regclass AND a.grantee <> c.relowner
    UNION ALL
    SELECT 3, '', format('ALTER TABLE %I.%I OWNER TO %I', $2, c.relname, pg_get_userbyid(c.relowner))
      FROM pg_class c
     WHERE c.oid = $1::regclass AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
) s
ORDER BY step, name";

/// Gives the loaded `{schema}.{table}` what the live table has beyond columns: its columns'
/// statistics targets, its indexes and primary key (built now, after the load), grants and
/// owner; then gathers its statistics, so
/// the first queries after the swap are planned as well as before.
pub(super) async fn finish(conn: &mut PgConnection, schema: &str, table: &str) -> Result<(), sqlx::Error> {
    let statements: Vec<String> =
        sqlx::query_scalar(FINISH).bind(format!("public.{table}")).bind(schema).fetch_all(&mut *conn).await?;
    for statement in statements {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    sqlx::query(&format!("ANALYZE {schema}.{table}")).execute(conn).await?;
    Ok(())
}

/// Replaces each live `public.{table}` by `{schema}.{table}` (in the caller's transaction):
/// locks the live tables, moves them to a retired schema, moves the shadow tables (with their
/// indexes and constraints) into `public`, and drops the retired tables and both schemas.
///
/// The locks are taken all together with a short `lock_timeout`, and let go of and retried
/// while readers hold them, so a reader waits at most about [`LOCK_WAIT`] behind the swap.
/// The drops are `RESTRICT`: an object depending on a live table (a view) stops the rebuild
/// rather than being dropped with the table.
pub(super) async fn swap(conn: &mut PgConnection, schema: &str, tables: &[&str]) -> Result<(), sqlx::Error> {
    let live: Vec<String> = tables.iter().map(|t| format!("public.{t}")).collect();
    let lock = format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", live.join(", "));
    let mut attempt = 0;
    loop {
        sqlx::query("SAVEPOINT rebuild_swap_locks").execute(&mut *conn).await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_WAIT}'")).execute(&mut *conn).await?;
        match sqlx::query(&lock).execute(&mut *conn).await {
            Ok(_) => break,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") && attempt < LOCK_ATTEMPTS => {
                sqlx::query("ROLLBACK TO SAVEPOINT rebuild_swap_locks").execute(&mut *conn).await?;
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
    sqlx::query("RELEASE SAVEPOINT rebuild_swap_locks").execute(&mut *conn).await?;
    sqlx::query("SET LOCAL lock_timeout = 0").execute(&mut *conn).await?;
    let retired = format!("{schema}_retired");
    sqlx::query(&format!("CREATE SCHEMA {retired}")).execute(&mut *conn).await?;
    for table in tables {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {retired}")).execute(&mut *conn).await?;
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public")).execute(&mut *conn).await?;
    }
    for table in tables {
        sqlx::query(&format!("DROP TABLE {retired}.{table} RESTRICT")).execute(&mut *conn).await?;
    }
    sqlx::query(&format!("DROP SCHEMA {retired} RESTRICT")).execute(&mut *conn).await?;
    sqlx::query(&format!("DROP SCHEMA {schema} RESTRICT")).execute(conn).await?;
    Ok(())
}
