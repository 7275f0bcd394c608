//! Loading aggregates and appending their events.
//!
//! Appends run inside the caller's transaction ([`EventStore::append`]) so one command can write
//! several streams and the credentials table atomically. Each stream's events carry sequences
//! `expected_version + 1 ..`; the primary key `(aggregate_type, aggregate_id, sequence)` turns a
//! concurrent append into [`StoreError::Conflict`] (optimistic concurrency) and the caller
//! retries with a fresh load.
//!
//! Snapshots: cqrs-es 0.5.0's snapshot store applies each new event twice, so snapshots are
//! kept here instead: after a command's commit, [`EventStore::save_snapshot`] stores the
//! aggregate's state every [`DEFAULT_SNAPSHOT_EVERY`] events; [`EventStore::load`] starts
//! from the snapshot and applies only the tail.

use crate::upcasting::to_current;
use crate::StoreError;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use postgres_es::PostgresEventRepository;
use roster_domain::EventMetadata;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use roster_domain::{AccountId, InvitationId};

/// The snapshot format stored in `snapshots.current_snapshot`; snapshots of another format are
/// ignored (the aggregate is replayed from its events instead). Bump when a state shape changes
/// (`tests/snapshot_format.rs` fails until you do). 2: `Invitation.last_sent_by` (format 1
/// snapshots predate it and would decode with a nil sender). 3: `Invitation.last_sent_at` (the
/// resend cooldown's start; format 2 snapshots lack it and are replayed).
pub const SNAPSHOT_FORMAT: i64 = 3;

/// Default number of events between two snapshots of one aggregate.
pub const DEFAULT_SNAPSHOT_EVERY: usize = 50;

/// An aggregate rebuilt from its stream, with the stream's version (its last sequence; 0 for a
/// stream with no events).
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The state after every event of the stream.
    pub aggregate: A,
    /// The stream's last sequence, the expected version for the next append.
    pub version: usize,
}

/// The events one command appends to one stream.
#[derive(Debug, Clone)]
pub struct Append {
    aggregate_type: &'static str,
    aggregate_id: String,
    expected_version: usize,
    events: Vec<(String, String, Value)>,
}

impl Append {
    /// Events for stream `(A::TYPE, aggregate_id)`, which must still be at `expected_version`
    /// when they are appended.
    pub fn new<A: Aggregate>(aggregate_id: impl Into<String>, expected_version: usize, events: &[A::Event]) -> Result<Self, StoreError> {
        let events = events
            .iter()
            .map(|e| Ok((e.event_type(), e.event_version(), serde_json::to_value(e)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Self { aggregate_type: A::TYPE, aggregate_id: aggregate_id.into(), expected_version, events })
    }

    /// Whether there is nothing to append (a no-op command).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The stream's version once these events are appended.
    pub fn new_version(&self) -> usize {
        self.expected_version + self.events.len()
    }

    /// The version the stream must be at for these events to be appended.
    pub fn expected_version(&self) -> usize {
        self.expected_version
    }

    pub(crate) fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    pub(crate) fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    /// (event type, event version, payload) of each event, in order.
    pub(crate) fn events(&self) -> &[(String, String, Value)] {
        &self.events
    }
}

/// The event store: a pool plus postgres-es's repository for reading streams.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    repo: Arc<PostgresEventRepository>,
    snapshot_every: usize,
}

fn persistence(err: PersistenceError) -> StoreError {
    match err {
        PersistenceError::OptimisticLockError => StoreError::Conflict,
        other => StoreError::Decode(other.to_string()),
    }
}

impl EventStore {
    /// A store on `pool` taking a snapshot every [`DEFAULT_SNAPSHOT_EVERY`] events.
    pub fn new(pool: PgPool) -> Self {
        let repo = Arc::new(PostgresEventRepository::new(pool.clone()));
        Self { pool, repo, snapshot_every: DEFAULT_SNAPSHOT_EVERY }
    }

    /// Loads aggregate `id`: its snapshot, if any, plus the events after it (upcast to current
    /// versions). A stream with no events loads as `A::default()` at version 0.
    ///
    /// Errors: database errors; [`StoreError::Decode`] for an event that is not an `A::Event`.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>, StoreError> {
        let start = self.snapshot::<A>(id).await?.unwrap_or(Loaded { aggregate: A::default(), version: 0 });
        self.apply_tail(id, start).await
    }

    /// Loads aggregate `id` from all its events, ignoring snapshots (for checks and tests).
    pub async fn load_from_events<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>, StoreError> {
        self.apply_tail(id, Loaded { aggregate: A::default(), version: 0 }).await
    }

    /// The stored version of aggregate `id`: its last sequence, 0 for a stream with no events
    /// (one probe of the primary key). A state cached at a lower version misses events another
    /// process appended.
    ///
    /// Errors: database errors.
    pub async fn version<A: Aggregate>(&self, id: &str) -> Result<usize, StoreError> {
        let version: i64 = sqlx::query_scalar("SELECT coalesce(max(sequence), 0) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(A::TYPE)
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(version).unwrap_or(0))
    }

    /// Brings `loaded` (aggregate `id` at some version) up to date with the events appended
    /// after its version: one indexed read of the tail, not a reload.
    ///
    /// Errors: as [`EventStore::load`].
    pub async fn catch_up<A: Aggregate>(&self, id: &str, loaded: Loaded<A>) -> Result<Loaded<A>, StoreError> {
        self.apply_tail(id, loaded).await
    }

    async fn apply_tail<A: Aggregate>(&self, id: &str, mut loaded: Loaded<A>) -> Result<Loaded<A>, StoreError> {
        let events = self.repo.get_last_events::<A>(id, loaded.version).await.map_err(persistence)?;
        for event in events {
            let event: SerializedEvent = to_current(event);
            loaded.version = event.sequence;
            loaded.aggregate.apply(serde_json::from_value(event.payload)?);
        }
        Ok(loaded)
    }

    async fn snapshot<A: Aggregate>(&self, id: &str) -> Result<Option<Loaded<A>>, StoreError> {
        let row: Option<(i64, Value)> = sqlx::query_as(
            "SELECT last_sequence, payload FROM snapshots
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND current_snapshot = $3",
        )
        .bind(A::TYPE)
        .bind(id)
        .bind(SNAPSHOT_FORMAT)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(version, payload)| {
            // A snapshot that no longer decodes is only a cache: replay instead.
            let aggregate = serde_json::from_value(payload).ok()?;
            Some(Loaded { aggregate, version: version as usize })
        }))
    }

    /// The account an invitation belongs to: the stream of its `MemberInvited` event, found
    /// through the index `events_member_invited` on the log itself (written in the append's
    /// transaction, so it never lags). `None` for an unknown invitation.
    ///
    /// Errors: database errors.
    pub async fn account_of_invitation(&self, invitation_id: InvitationId) -> Result<Option<AccountId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT account_id FROM events
              WHERE event_type = 'MemberInvited' AND payload #>> '{MemberInvited,invitation_id}' = $1
              LIMIT 1",
        )
        .bind(invitation_id.to_string())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether a command that moved a stream from `old_version` to `new_version` crossed a
    /// multiple of the snapshot interval, so its state should be stored as the snapshot.
    /// `entries` is the state's size (e.g. members + invitations): the interval is
    /// [`DEFAULT_SNAPSHOT_EVERY`] events or a quarter of the size rounded up to a power of two,
    /// whichever is larger, so writing a snapshot costs O(1) per event however large the state
    /// grows, while a load still replays at most a quarter of the state's size in events.
    pub fn snapshot_due(&self, old_version: usize, new_version: usize, entries: usize) -> bool {
        let every = snapshot_interval(self.snapshot_every, entries);
        new_version / every != old_version / every
    }

    /// Stores `state` (an `A` serialised as JSON, at stream `version`) as the snapshot of `id`.
    /// An older snapshot never replaces a newer one.
    ///
    /// Errors: database errors.
    pub async fn save_snapshot<A: Aggregate>(&self, id: &str, version: usize, state: &Value) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
               SET last_sequence = EXCLUDED.last_sequence, current_snapshot = EXCLUDED.current_snapshot,
                   payload = EXCLUDED.payload
             WHERE snapshots.last_sequence < EXCLUDED.last_sequence
                OR snapshots.current_snapshot <> EXCLUDED.current_snapshot",
        )
        .bind(A::TYPE)
        .bind(id)
        .bind(version as i64)
        .bind(SNAPSHOT_FORMAT)
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends every stream's events with `metadata`, in the caller's transaction, and returns
    /// the global positions given to them, in order. Call it last in the transaction: from here
    /// to commit, other appenders wait (see the migration's `events_serialise_appends`).
    ///
    /// Errors: [`StoreError::Conflict`] when a stream is no longer at its expected version (the
    /// transaction is then aborted and must be rolled back).
    pub async fn append(conn: &mut PgConnection, appends: &[Append], metadata: &EventMetadata) -> Result<Vec<i64>, StoreError> {
        let metadata = serde_json::to_value(metadata.to_map())?;
        let mut positions = Vec::new();
        for append in appends.iter().filter(|a| !a.events.is_empty()) {
            let n = append.events.len();
            let sequences: Vec<i64> = (1..=n).map(|i| (append.expected_version + i) as i64).collect();
            let types: Vec<&str> = append.events.iter().map(|e| e.0.as_str()).collect();
            let versions: Vec<&str> = append.events.iter().map(|e| e.1.as_str()).collect();
            let payloads: Vec<Value> = append.events.iter().map(|e| e.2.clone()).collect();
            let mut inserted: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 SELECT $1, $2, s, t, v, p, $7
                   FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[]) AS x(s, t, v, p)
                 ORDER BY s
                 RETURNING position",
            )
            .bind(append.aggregate_type)
            .bind(&append.aggregate_id)
            .bind(&sequences)
            .bind(&types)
            .bind(&versions)
            .bind(&payloads)
            .bind(&metadata)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
            inserted.sort_unstable();
            positions.extend(inserted);
        }
        Ok(positions)
    }
}

/// Events between snapshots of a state with `entries` entries (see [`EventStore::snapshot_due`]).
fn snapshot_interval(every: usize, entries: usize) -> usize {
    every.max(entries.next_power_of_two() / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::snapshot_interval;

    #[test]
    fn snapshots_of_big_states_are_spaced_by_a_quarter_of_their_size() {
        assert_eq!(snapshot_interval(50, 0), 50);
        assert_eq!(snapshot_interval(50, 100), 50);
        assert_eq!(snapshot_interval(50, 150), 64);
        // 20,000 entries: every 8,192 events, i.e. serialising costs ~2.4 entries per event.
        assert_eq!(snapshot_interval(50, 20_000), 8_192);
        // Stable while the state grows within a power of two (the "crossed a multiple" test
        // needs a steady interval).
        assert_eq!(snapshot_interval(50, 16_385), snapshot_interval(50, 32_768));
    }
}
