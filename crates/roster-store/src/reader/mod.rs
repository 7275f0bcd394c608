//! Reading the whole log in global order, and following it.
//!
//! **Why "position > P" is gap-free here.** Catch-up readers fail when transactions commit out of
//! position order: a reader sees position 8, checkpoints it, and position 7 commits afterwards.
//! Marten handles this with a high-water mark and gap time-outs; the xid8 method reads only
//! below `pg_snapshot_xmin(pg_current_snapshot())`, which lets any long write transaction stall
//! every reader. Roster uses Message DB's method instead: every insert into `events` first takes
//! one transaction-scoped advisory lock (trigger `events_serialise_appends`), so positions are
//! handed out only to one transaction at a time and become visible in increasing order. A reader
//! that has seen position P has seen every committed event below P, and can resume from P.
//! Rolled-back appends leave unused numbers, never hidden events.

mod raw;
mod tail;

pub use raw::{read_raw_after, stream_raw_after, RawEvent, RawMetadata};
pub use tail::{Batch, Tail};

use crate::upcasting::to_current;
use roster_domain::rfc3339;
use crate::StoreError;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use futures::Stream;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use sqlx::{PgExecutor, PgPool};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use roster_domain::{AccountId, UserId};

/// The channel every committed append is announced on: by the group-commit writer right after
/// its commit, by the `events_serialise_appends` trigger for any other insert.
pub const NOTIFY_CHANNEL: &str = "roster_events";

/// How long the [`Tail`] waits for a notification before it reads the head anyway (a safety
/// net; the notification normally arrives at once).
const FOLLOW_POLL: Duration = Duration::from_secs(5);

/// Events a follower reads per page.
const FOLLOW_PAGE: i64 = 500;

/// One stored event, upcast to its current version.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    /// Global position, increasing in commit order.
    pub position: i64,
    /// When the store recorded it (database clock).
    pub recorded_at: DateTime<Utc>,
    /// The tenant, for account events; `None` for user events.
    pub account_id: Option<AccountId>,
    /// `Account` or `User`.
    pub aggregate_type: String,
    /// The stream's id (a UUID).
    pub aggregate_id: String,
    /// Position within its stream, from 1.
    pub sequence: i64,
    /// The event's name, e.g. `MemberInvited`.
    pub event_type: String,
    /// Semantic version of the payload shape, after upcasting.
    pub event_version: String,
    /// The event, externally tagged: `{"MemberInvited": {...}}`.
    pub payload: Value,
    /// [`roster_domain::EventMetadata`] as a JSON object of strings.
    pub metadata: Value,
}

impl StoredEvent {
    /// When the command was decided (`metadata.occurred_at`), else when it was recorded.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.metadata
            .get("occurred_at")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.recorded_at)
    }

    /// The acting user, when the actor is a user rather than the system.
    pub fn actor_id(&self) -> Option<UserId> {
        self.metadata.get("actor_user_id").and_then(Value::as_str).and_then(|s| s.parse().ok())
    }

    /// The request that caused the event.
    pub fn request_id(&self) -> Option<&str> {
        self.metadata.get("request_id").and_then(Value::as_str)
    }

    /// Decodes the payload as a domain event type (e.g. `AccountEvent`).
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, StoreError> {
        Ok(serde_json::from_value(self.payload.clone())?)
    }

    /// The audit-feed shape (one JSON Lines record of `roster events`, and GraphQL's `Event`):
    /// `position` (string), `occurredAt`, `recordedAt`, `accountId`, `aggregateType`,
    /// `aggregateId`, `sequence`, `type`, `version`, `payload`, `metadata`.
    pub fn to_feed_json(&self) -> Value {
        json!({
            "position": self.position.to_string(),
            "occurredAt": rfc3339(self.occurred_at()),
            "recordedAt": rfc3339(self.recorded_at),
            "accountId": self.account_id,
            "aggregateType": self.aggregate_type,
            "aggregateId": self.aggregate_id,
            "sequence": self.sequence,
            "type": self.event_type,
            "version": self.event_version,
            "payload": self.payload,
            "metadata": self.metadata,
        })
    }

    fn upcast(self) -> Self {
        let serialized = SerializedEvent::new(
            self.aggregate_id,
            self.sequence as usize,
            self.aggregate_type,
            self.event_type,
            self.event_version,
            self.payload,
            self.metadata,
        );
        let current = to_current(serialized);
        Self {
            aggregate_id: current.aggregate_id,
            aggregate_type: current.aggregate_type,
            event_type: current.event_type,
            event_version: current.event_version,
            payload: current.payload,
            metadata: current.metadata,
            ..self
        }
    }
}

/// Which events a reader wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this account's events, when set.
    pub account_id: Option<AccountId>,
}

impl EventFilter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        self.account_id.is_none_or(|account| event.account_id == Some(account))
    }
}

/// The columns every read selects; `payload` and `metadata` as jsonb (`$cast` empty) or as
/// their text spelling (`$cast` = `::text`).
macro_rules! event_columns {
    ($cast:literal) => {
        concat!(
            "SELECT position, recorded_at, account_id, aggregate_type, aggregate_id, sequence,
                    event_type, event_version, payload", $cast, " AS payload, metadata", $cast, " AS metadata
               FROM events "
        )
    };
}

impl EventFilter {
    /// The statement of a page read (`$1` after, `$2` limit, `$3` account): all events, or one
    /// account's. Separate statement texts rather than `($3 IS NULL OR account_id = $3)`,
    /// because a prepared statement's generic plan cannot know which branch holds and
    /// sequentially scans the whole log (measured: most of PostgreSQL's CPU under load); each
    /// of these has one plan on its index.
    fn read_sql(&self, raw: bool) -> &'static str {
        match (raw, self.account_id.is_some()) {
            (false, false) => concat!(event_columns!(""), "WHERE position > $1 AND $3::uuid IS NULL ORDER BY position LIMIT $2"),
            (false, true) => concat!(event_columns!(""), "WHERE account_id = $3 AND position > $1 ORDER BY position LIMIT $2"),
            (true, false) => concat!(event_columns!("::text"), "WHERE position > $1 AND $3::uuid IS NULL ORDER BY position LIMIT $2"),
            (true, true) => concat!(event_columns!("::text"), "WHERE account_id = $3 AND position > $1 ORDER BY position LIMIT $2"),
        }
    }
}

/// Up to `limit` events with position greater than `after`, in position order, upcast.
pub async fn read_after<'e>(db: impl PgExecutor<'e>, after: i64, limit: i64, filter: EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
    let rows: Vec<StoredEvent> = sqlx::query_as(filter.read_sql(false))
        .bind(after)
        .bind(limit)
        .bind(filter.account_id)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(StoredEvent::upcast).collect())
}

/// How many events match `filter`.
pub async fn count<'e>(db: impl PgExecutor<'e>, filter: EventFilter) -> Result<i64, StoreError> {
    let count = match filter.account_id {
        Some(account_id) => sqlx::query_scalar("SELECT count(*) FROM events WHERE account_id = $1").bind(account_id).fetch_one(db).await?,
        None => sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(db).await?,
    };
    Ok(count)
}

/// A connection listening on [`NOTIFY_CHANNEL`]: wakes whoever waits on it when an append
/// commits. It keeps one of `pool`'s connections for as long as it lives (sqlx's `PgListener`
/// takes it from the pool), so a process should have one ([`Tail`]).
pub async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

/// Every event after `after` matching `filter`, then every new one as it commits, without end.
/// Events taken from the tail's batches are shared with every other follower (an `Arc`, not a
/// copy per follower).
/// Wakes when `tail`'s head moves past what it has read (no connection held while waiting, no
/// busy polling); takes new events from the tail's batches when they continue where it is, and
/// reads pages from `pool` otherwise (catching up, or after falling behind the batches). The head is published only after the events
/// up to it are visible, so a read made after seeing head H misses nothing at or below H.
///
/// A failed read (a database outage) is logged and retried with a back-off (20 ms doubling up
/// to 5 s) from the last delivered position: nothing is skipped or repeated, and the stream
/// never ends by itself.
pub fn follow(tail: &Tail, pool: PgPool, after: i64, filter: EventFilter) -> impl Stream<Item = Arc<StoredEvent>> + Send {
    struct State {
        pool: PgPool,
        head: tokio::sync::watch::Receiver<i64>,
        batches: tokio::sync::broadcast::Receiver<Arc<Batch>>,
        _tail: Tail,
        buffered: VecDeque<Arc<StoredEvent>>,
        /// The last position delivered (or the start).
        after: i64,
        /// Every event at or below this has been read into `buffered` (or delivered).
        read_to: i64,
        filter: EventFilter,
        backoff: Duration,
    }
    let state = State {
        pool,
        head: tail.head(),
        batches: tail.batches(),
        _tail: tail.clone(),
        buffered: VecDeque::new(),
        after,
        read_to: after,
        filter,
        backoff: tail::MIN_BACKOFF,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.buffered.pop_front() {
                s.after = event.position;
                return Some((event, s));
            }
            loop {
                match s.batches.try_recv() {
                    // A batch that continues exactly where this follower has read to.
                    Ok(batch) if batch.after <= s.read_to && batch.upto > s.read_to => {
                        let read_to = s.read_to;
                        s.buffered.extend(batch.events.iter().filter(|e| e.position > read_to && s.filter.matches(e)).cloned());
                        s.read_to = batch.upto;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            if !s.buffered.is_empty() {
                continue;
            }
            let head = *s.head.borrow_and_update();
            if head <= s.read_to {
                // The tail ends only when the runtime does.
                s.head.changed().await.ok()?;
                continue;
            }
            match read_after(&s.pool, s.after, FOLLOW_PAGE, s.filter).await {
                Ok(events) => {
                    if s.backoff > tail::MIN_BACKOFF {
                        tracing::info!(after = s.after, "follower reading again");
                    }
                    s.backoff = tail::MIN_BACKOFF;
                    // A short page reached the head seen before the read; a full one may not.
                    // A short page may also hold events committed after `head` was seen.
                    s.read_to = match events.last() {
                        Some(last) if events.len() as i64 == FOLLOW_PAGE => last.position,
                        Some(last) => head.max(last.position),
                        None => head,
                    };
                    s.buffered.extend(events.into_iter().map(Arc::new));
                }
                Err(err) => {
                    tracing::warn!(%err, after = s.after, retry_in_ms = s.backoff.as_millis() as u64, "follower cannot read events; retrying");
                    tokio::time::sleep(s.backoff).await;
                    s.backoff = (s.backoff * 2).min(tail::MAX_BACKOFF);
                }
            }
        }
    })
}
