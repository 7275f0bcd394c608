//! Roster's projections: they turn events into the read models the API queries.
//!
//! - [`Projection`] names each projection and the tables it owns: `members` (users, accounts,
//!   members), `invitations`, `audit_log`.
//! - [`projector::Projector`] applies events in global order, each projection from its own
//!   checkpoint, advancing the checkpoint in the same transaction as the writes.
//! - [`rebuild`] rebuilds projections from position 0 into shadow tables and swaps them in.
//! - [`queries`] reads the read models for the API.

#![warn(missing_docs)]

mod audit_log;
mod invitations;
mod members;
pub mod projector;
pub mod queries;
pub mod rebuild;

pub use projector::{ProjectionError, ProjectionStatus, Projector};

use roster_store::StoredEvent;
use sqlx::PgConnection;

/// One projection: a name (its checkpoint's key) and the read-model tables it alone writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// Tables `users`, `accounts`, `members`.
    Members,
    /// Table `invitations`.
    Invitations,
    /// Table `audit_log`.
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
            Projection::Members => &["users", "accounts", "members"],
            Projection::Invitations => &["invitations"],
            Projection::AuditLog => &["audit_log"],
        }
    }

    /// Applies one event to this projection's tables (resolved through the connection's
    /// `search_path`, which lets a rebuild write shadow tables with the same code).
    pub(crate) async fn apply(self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
        match self {
            Projection::Members => members::apply(conn, event).await,
            Projection::Invitations => invitations::apply(conn, event).await,
            Projection::AuditLog => audit_log::apply(conn, event).await,
        }
    }
}
