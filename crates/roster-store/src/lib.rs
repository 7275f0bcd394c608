//! Roster's PostgreSQL event store.
//!
//! - [`db`]: connecting and applying `migrations/`.
//! - [`event_store`]: loading an aggregate (snapshot + tail, upcast) and appending its events
//!   with an expected version, inside a caller's transaction so several streams and the
//!   credentials table change atomically.
//! - [`reader`]: reading every event in global order after a position, and following new ones.
//! - [`upcasting`]: turning stored old event versions into current ones on read.
//! - [`writer`]: group commit: one task per process appends many commands' events in one
//!   transaction, each command checked against its expected versions.
//! - [`notifier`]: `NOTIFY` after commit (not inside it), coalesced.
//! - [`own_connection`]: a connection of its own for the writer, a notifier, the projector loop.
//! - [`credentials`]: password hashes, kept outside the event log.
//!
//! The table layout extends postgres-es 0.5's; its `PostgresEventRepository` reads streams here.

#![warn(missing_docs)]

pub mod credentials;
pub mod db;
pub mod error;
pub mod event_store;
pub mod notifier;
pub mod own_connection;
pub mod reader;
pub mod upcasting;
pub mod writer;

pub use error::StoreError;
pub use event_store::{Append, EventStore, Loaded};
pub use reader::{EventFilter, StoredEvent};
pub use notifier::Notifier;
pub use writer::{Commit, NewCredential, Writer};
