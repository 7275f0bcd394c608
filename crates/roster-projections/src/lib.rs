//! Roster's projections: they turn events into the read models the API queries.
//!
//! - [`Projection`] names each projection and the tables it owns: `members` (users, accounts,
//!   members), `invitations`, `audit_log`.
//! - [`projector::Projector`] applies events in global order, each projection from its own
//!   checkpoint, advancing the checkpoint in the same transaction as the writes.
//! - [`rebuild`] rebuilds projections from position 0 into shadow tables and swaps them in.
//! - [`queries`] reads the read models for the API.

#![warn(missing_docs)]

pub(crate) mod audit_log;
pub mod checkpoint;
mod copy;
mod invitations;
mod members;
pub mod projector;
pub mod queries;
pub mod rebuild;

pub use projector::{ProjectionError, ProjectionStatus, Projector};

use roster_store::reader::RawEvent;
use sqlx::PgConnection;

/// One projection: a name (its checkpoint's key) and the read-model tables it alone writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// Tables `users`, `accounts`, `members`, `member_counts` (members per account and role).
    Members,
    /// Tables `invitations`, `invitation_counts` (invitations per account and stored state).
    Invitations,
    /// Tables `audit_log`, `audit_counts` (entries per account and action).
    AuditLog,
}

impl Projection {
    /// Every projection.
    pub const ALL: [Projection; 3] = [Projection::Members, Projection::Invitations, Projection::AuditLog];

    /// The name used by the CLI and as checkpoint key.
    pub fn name(self) -> &'static str {
        match self {
            Projection::Members => "members",
            Projection::Invitations => "invitations",
            Projection::AuditLog => "audit_log",
        }
    }

    /// The projection called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The tables this projection writes, and only it.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Projection::Members => &["users", "accounts", "members", "member_counts"],
            Projection::Invitations => &["invitations", "invitation_counts"],
            Projection::AuditLog => &["audit_log", "audit_counts"],
        }
    }

    /// Applies `events` (position order, all after the projection's checkpoint) to this
    /// projection's tables with a few multi-row statements, resolved through the connection's
    /// `search_path` (which lets a rebuild write shadow tables with the same code). Returns the
    /// first event it could not apply, if any: the events before it are written, it and those
    /// after it are not.
    ///
    /// Errors: what the database reports; the transaction is then unusable and the caller
    /// finds the failing event by applying one event at a time.
    pub(crate) async fn apply(self, conn: &mut PgConnection, events: &[RawEvent], memo: &mut audit_log::Memo) -> Result<Option<Stop>, sqlx::Error> {
        match self {
            Projection::Members => members::apply(conn, events).await,
            Projection::Invitations => invitations::apply(conn, events).await,
            Projection::AuditLog => audit_log::apply(conn, events, memo).await,
        }
    }
}

/// The event a projection could not apply, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stop {
    pub position: i64,
    pub error: String,
}

/// The message of an event that does not decode (as [`ProjectionError::Decode`] words it).
pub(crate) fn decode_error(err: impl std::fmt::Display) -> String {
    ProjectionError::decode(err).to_string()
}

/// The message of a second row for a key within one batch (as PostgreSQL words it).
pub(crate) fn duplicate(constraint: &str) -> String {
    format!("error returned from database: duplicate key value violates unique constraint \"{constraint}\"")
}

/// One SQL statement: `ctes` (a `WITH` list without the `WITH`, whose last entry is
/// `changes(account_id, k, d)`: one row per counted row added (`d` = 1) or removed (`d` = -1)
/// under key `k`), then the net change per `(account_id, k)` applied to the counter table
/// `table` (columns `account_id`, `key_column`, `n`). Counters that reach 0 are deleted, so the
/// counter rows depend only on the counted rows, not on how the events were batched. Needs no
/// unique index (a rebuild's shadow tables have none): the projection is the only writer.
pub(crate) fn counted(ctes: &str, table: &str, key_column: &str) -> String {
    format!(
        "WITH {ctes},
         delta AS (SELECT account_id, k, sum(d)::bigint AS n FROM changes GROUP BY account_id, k HAVING sum(d) <> 0),
         bumped AS (UPDATE {table} c SET n = c.n + delta.n FROM delta
                     WHERE c.account_id = delta.account_id AND c.{key_column} = delta.k AND c.n + delta.n <> 0
                 RETURNING c.account_id, c.{key_column} AS k),
         dropped AS (DELETE FROM {table} c USING delta
                      WHERE c.account_id = delta.account_id AND c.{key_column} = delta.k AND c.n + delta.n = 0
                  RETURNING c.account_id, c.{key_column} AS k)
         INSERT INTO {table} (account_id, {key_column}, n)
         SELECT account_id, k, n FROM delta
          WHERE NOT EXISTS (SELECT 1 FROM bumped b WHERE b.account_id = delta.account_id AND b.k = delta.k)
            AND NOT EXISTS (SELECT 1 FROM dropped x WHERE x.account_id = delta.account_id AND x.k = delta.k)"
    )
}

/// Splits rows into columns, for `UNNEST`.
pub(crate) fn unzip4<A, B, C, D>(rows: Vec<(A, B, C, D)>) -> (Vec<A>, Vec<B>, Vec<C>, Vec<D>) {
    let mut out = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for (a, b, c, d) in rows {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
    }
    out
}
