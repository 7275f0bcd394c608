//! A connection of its own for a long-running task (the group-commit writer, a notifier, the
//! projector loop), opened with the pool's settings but outside its count.
//!
//! **Why not the pool.** sqlx's pool sends a `Sync` to every connection it takes back (a round
//! trip, in a task of its own), so a statement on a pooled connection costs the database two
//! messages and a wake-up instead of one. A task that runs statements one after another, on
//! every command's path, keeps one connection instead: opened on first use, dropped after any
//! error (PostgreSQL then rolls back whatever it had open) and opened again on the next use.
//! Each such task adds one connection beyond `max_connections` of the pool.

use sqlx::{ConnectOptions, PgConnection, PgPool};
use std::time::Duration;

/// How long opening the connection may take, as the pool's acquire timeout (`db::connect`).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection to `pool`'s database with its settings, outside its count.
///
/// Errors: the database's, or [`sqlx::Error::PoolTimedOut`] after 10 s.
pub async fn open(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let options = pool.connect_options();
    tokio::time::timeout(OPEN_TIMEOUT, options.connect()).await.map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// A task's own connection: [`OwnConnection::get`] opens it when needed,
/// [`OwnConnection::discard`] drops it after an error.
pub struct OwnConnection {
    pool: PgPool,
    conn: Option<PgConnection>,
}

impl OwnConnection {
    /// No connection yet; the first [`OwnConnection::get`] opens one to `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, conn: None }
    }

    /// The connection, opened now if there is none.
    ///
    /// Errors: as [`open`].
    pub async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(open(&self.pool).await?);
        }
        Ok(self.conn.as_mut().expect("opened above"))
    }

    /// Drops the connection (after an error its state is unknown); the next use opens another.
    pub fn discard(&mut self) {
        self.conn = None;
    }
}
