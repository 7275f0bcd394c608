//! The application layer: one method per use case, between the doors (GraphQL, the CLI, the
//! tests) and the write side (aggregates, event store) and the read side (read models).
//!
//! Commands go through [`unit_of_work`]: load the aggregate, let the domain decide, append the
//! events with the expected version, then wait until the projections show them
//! (read-your-writes). Queries read the read models only. Every rule is the domain's; this layer
//! only asks it (e.g. `Role::allows(Permission::AuditLog)`) and never writes one itself.
//!
//! Use cases by group: [`sessions`] (sign-up, log-in, the viewer), [`accounts`],
//! [`invitations`] (invite, resend, cancel, preview, accept), [`members`] (change role, remove),
//! [`feed`] (the event feed and the audit log).

mod account_cache;
mod accounts;
mod context;
mod deliveries;
mod feed;
mod invitations;
mod members;
mod ownership;
mod session_end;
mod sessions;
mod subscriptions;
mod unit_of_work;

pub use accounts::AccountView;
pub use context::{RequestContext, SessionCheck};
pub use invitations::{InvitationView, InviteIssued, PreviewView};
pub use crate::config::OwnershipSettings;
pub use sessions::SessionView;
pub use subscriptions::{ConnectionSubscriptions, SubscriptionSlot, RETRY_AFTER_SECONDS};

use crate::auth::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ApiResult;
use crate::rate_limit::{Limiter, Rate};
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use roster_projections::Projector;
use account_cache::AccountCache;
use roster_store::reader::Tail;
use roster_store::{EventStore, Writer};
use sqlx::PgPool;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// The application: every use case of Roster. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    pool: PgPool,
    store: EventStore,
    /// Appends commands' events, many per transaction.
    writer: Writer,
    /// Recently used accounts' states, one lock each.
    accounts: AccountCache,
    projector: Projector,
    /// The one `LISTEN` of this process, waking every subscription.
    tail: Tail,
    /// Open subscriptions, in all and per user (the per-user cap).
    subscriptions: subscriptions::OpenSubscriptions,
    config: Config,
    clock: Arc<dyn Clock>,
    /// Every password hash and check: bounded concurrency.
    hasher: PasswordHasher,
    /// Password attempts (sign-up, log-in, accepting as a new user) per client IP.
    password_limiter: Limiter,
    /// Failed log-ins per email and client IP ([`Config::login_failures_per_source`]) and per
    /// email ([`Config::login_failures_per_email`]).
    login_failures: sessions::LoginFailures,
    /// Invite-token attempts per client IP: 30 at once, then one per 2 s.
    token_limiter: Limiter,
    /// Accounts created per user: 10 at once, then one per 6 minutes (every account a user
    /// belongs to is listed by `viewer.accounts`, whose cost the limits assume is modest).
    account_creations: Limiter,
    /// `requestPasswordReset` per client IP and per email.
    reset_limits: ownership::ResetLimits,
    /// Reads of users by id (for tests: per-row lookups are batched).
    user_reads: AtomicU64,
    /// Conflict retries since start (for the benchmark and operators).
    conflict_retries: AtomicU64,
    /// This server's metrics (`GET /metrics`).
    telemetry: Telemetry,
}

impl App {
    /// The application over `pool` (already migrated) with `config`, reading time from `clock`.
    /// Starts the group-commit writer task (so call it inside a tokio runtime); the projector is
    /// created here but not started: [`crate::startup::Application`] runs it.
    pub fn new(pool: PgPool, config: Config, clock: Arc<dyn Clock>) -> Self {
        let writer = Writer::spawn(pool.clone());
        Self(Arc::new(Inner {
            store: EventStore::new(pool.clone()),
            projector: Projector::new(pool.clone()).woken_by(writer.committed(), writer.origin()),
            writer,
            tail: Tail::spawn(pool.clone()),
            subscriptions: Default::default(),
            accounts: AccountCache::default(),
            pool,
            hasher: PasswordHasher::new(config.hash_concurrency),
            password_limiter: Limiter::new(config.password_rate_per_ip),
            login_failures: sessions::LoginFailures::new(&config),
            token_limiter: Limiter::new(Rate::new(30, Duration::from_secs(2))),
            account_creations: Limiter::new(Rate::new(10, Duration::from_secs(360))),
            reset_limits: ownership::ResetLimits::new(&config.ownership),
            user_reads: AtomicU64::new(0),
            config,
            clock,
            conflict_retries: AtomicU64::new(0),
            telemetry: Telemetry::new(),
        }))
    }

    /// How many subscriptions are open in this process now.
    pub fn open_subscriptions(&self) -> usize {
        self.0.subscriptions.count()
    }

    /// The deployment's configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// How many times users were read by id since start: one per batch, however many users
    /// it holds.
    pub fn user_reads(&self) -> u64 {
        self.0.user_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most password hashes and checks that ever ran at once.
    pub fn peak_password_jobs(&self) -> usize {
        self.0.hasher.peak()
    }

    /// The current instant by the application's clock (UTC).
    pub fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    /// The projector that keeps the read models current (started by the startup path; tests
    /// arm its fail point).
    pub fn projector(&self) -> &Projector {
        &self.0.projector
    }

    /// This server's metrics: GraphQL outcomes, command latency, open subscriptions.
    pub fn telemetry(&self) -> &Telemetry {
        &self.0.telemetry
    }

    /// Whether `bearer` may read `GET /metrics`: it must equal `ROSTER_METRICS_TOKEN` or
    /// `ROSTER_OPERATOR_TOKEN` (compared in constant time); with neither set, nobody may.
    pub fn may_read_metrics(&self, bearer: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let Some(bearer) = bearer.map(str::trim).filter(|b| !b.is_empty()) else { return false };
        let config = &self.0.config;
        [&config.metrics_token, &config.operator_token]
            .into_iter()
            .flatten()
            .any(|token| bool::from(token.as_bytes().ct_eq(bearer.as_bytes())))
    }

    /// The Prometheus text of `GET /metrics`, with the pool's usage and the projections'
    /// checkpoints and lag read now.
    ///
    /// Errors: `INTERNAL` when the projections' status cannot be read.
    pub async fn metrics_text(&self) -> ApiResult<String> {
        let projections = self.0.projector.status().await.map_err(|e| crate::error::ApiError::Internal(e.to_string()))?;
        Ok(self.0.telemetry.render(&self.0.pool, &projections, self.open_subscriptions()))
    }

    /// Whether the database is reachable and every migration is applied (`/readyz`).
    ///
    /// Errors: `INTERNAL` when the database cannot be reached.
    pub async fn migrations_applied(&self) -> ApiResult<bool> {
        Ok(roster_store::db::migrations_applied(&self.0.pool).await?)
    }
}
