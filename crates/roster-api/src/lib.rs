//! Roster's GraphQL API on axum.
//!
//! Requests flow one way: [`http`] extracts the caller and request metadata, the resolvers in
//! [`graphql`] call [`commands`] (load aggregate → decide → append → wait for the projections)
//! for mutations and read the read models (`roster_projections::queries`) for queries.
//!
//! Start a server with [`AppState::new`] and [`http::router`]; see `src/main.rs` of the `roster`
//! binary and the black-box tests in `tests/`.

#![warn(missing_docs)]

pub mod auth;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod graphql;
pub mod http;
pub mod rate_limit;

pub use config::Config;
pub use error::{ApiError, ApiResult};

use clock::Clock;
use rate_limit::Limiter;
use roster_domain::EventMetadata;
use roster_projections::Projector;
use roster_store::EventStore;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Shared server state, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// Connections to the database.
    pub pool: PgPool,
    /// Loads aggregates and appends their events.
    pub store: EventStore,
    /// Keeps the read models current; mutations wait on it (read-your-writes).
    pub projector: Projector,
    /// Deployment settings.
    pub config: Config,
    /// The time source for commands and expiry.
    pub clock: Arc<dyn Clock>,
    /// Log-in attempts per email: 10 at once, then one per 6 s.
    pub login_limiter: Limiter,
    /// Invite-token attempts per client IP: 30 at once, then one per 2 s.
    pub token_limiter: Limiter,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// State over `pool` (migrated) with `config`, reading time from `clock`.
    pub fn new(pool: PgPool, config: Config, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner {
            store: EventStore::new(pool.clone()),
            projector: Projector::new(pool.clone()),
            pool,
            config,
            clock,
            login_limiter: Limiter::new(10, Duration::from_secs(6)),
            token_limiter: Limiter::new(30, Duration::from_secs(2)),
        }))
    }
}

/// Facts about one request: who, from where, and its id (for event metadata and errors).
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The `x-request-id` (the client's when short and plain, else a fresh UUID).
    pub request_id: String,
    /// The TCP peer's IP address.
    pub ip: Option<String>,
    /// The `User-Agent` header, cut to 512 characters.
    pub user_agent: Option<String>,
    /// Who is calling, from the bearer token.
    pub caller: auth::Caller,
}

impl RequestContext {
    /// A context for `caller` with a fresh request id and no client details (CLI, tests).
    pub fn new(caller: auth::Caller) -> Self {
        Self { request_id: Uuid::new_v4().to_string(), ip: None, user_agent: None, caller }
    }

    /// Event metadata for an action by `actor` at `now`.
    pub fn metadata(&self, actor: Option<Uuid>, now: chrono::DateTime<chrono::Utc>) -> EventMetadata {
        let mut metadata = EventMetadata::new(actor, self.request_id.clone(), now);
        metadata.ip = self.ip.clone();
        metadata.user_agent = self.user_agent.clone();
        metadata
    }
}
