//! The feed's read path ([`RawEvent`]): events with payload and metadata as JSON text, for the
//! projections, rebuilds and `roster events`.

use super::{EventFilter, StoredEvent};
use crate::StoreError;
use chrono::{DateTime, Utc};
use futures::Stream;
use roster_domain::rfc3339;
use roster_domain::{AccountId, UserId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};

/// One event as the projections and `roster events` read it: payload and metadata as JSON text
/// of the current version. Reading text skips building a `serde_json::Value` only to decode it
/// again; only events of an old version go through the upcasters (as `Value`s).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RawEvent {
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
    /// The payload, JSON text (externally tagged, current version).
    pub payload: String,
    /// The metadata, JSON text.
    pub metadata: String,
}

/// The metadata fields the read side uses, as [`StoredEvent`]'s accessors read them.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMetadata {
    /// `metadata.occurred_at`, else the recorded time.
    pub occurred_at: DateTime<Utc>,
    /// The acting user, when the actor is a user rather than the system.
    pub actor_id: Option<UserId>,
    /// The request that caused the event.
    pub request_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct MetadataFields {
    // `Value`, not `String`: a non-string entry reads as absent, as in `StoredEvent`.
    occurred_at: Option<Value>,
    actor_user_id: Option<Value>,
    request_id: Option<Value>,
}

static UPCASTERS: std::sync::LazyLock<Vec<Box<dyn cqrs_es::persist::EventUpcaster>>> =
    std::sync::LazyLock::new(crate::upcasting::upcasters);

impl RawEvent {
    /// Decodes the payload as a domain event type (e.g. `AccountEvent`).
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, StoreError> {
        Ok(serde_json::from_str(&self.payload)?)
    }

    /// The metadata fields projections use; malformed metadata reads as empty (as in
    /// [`StoredEvent`]).
    pub fn meta(&self) -> RawMetadata {
        let fields: Option<MetadataFields> = serde_json::from_str(&self.metadata).ok();
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let (occurred_at, actor, request_id) = match fields {
            Some(f) => (text(f.occurred_at), text(f.actor_user_id), text(f.request_id)),
            None => (None, None, None),
        };
        RawMetadata {
            occurred_at: occurred_at.and_then(|s| s.parse().ok()).unwrap_or(self.recorded_at),
            actor_id: actor.and_then(|s| s.parse().ok()),
            request_id,
        }
    }

    /// Appends this event's feed line (exactly `to_feed_json().to_string()` of the same event
    /// read as a [`StoredEvent`], without the newline) to `out`. Keys are written in the order
    /// `serde_json`'s map keeps them (alphabetical); payload and metadata are re-serialised so
    /// their keys are sorted and compact as well.
    pub fn write_feed_line(&self, out: &mut Vec<u8>) -> Result<(), StoreError> {
        let payload: Value = serde_json::from_str(&self.payload)?;
        let metadata: Value = serde_json::from_str(&self.metadata)?;
        let occurred_at = metadata
            .get("occurred_at")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.recorded_at);
        let string = |out: &mut Vec<u8>, s: &str| serde_json::to_writer(&mut *out, s);
        out.extend_from_slice(b"{\"accountId\":");
        serde_json::to_writer(&mut *out, &self.account_id)?;
        out.extend_from_slice(b",\"aggregateId\":");
        string(out, &self.aggregate_id)?;
        out.extend_from_slice(b",\"aggregateType\":");
        string(out, &self.aggregate_type)?;
        out.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(&mut *out, &metadata)?;
        out.extend_from_slice(b",\"occurredAt\":");
        string(out, &rfc3339(occurred_at))?;
        out.extend_from_slice(b",\"payload\":");
        serde_json::to_writer(&mut *out, &payload)?;
        out.extend_from_slice(b",\"position\":\"");
        out.extend_from_slice(self.position.to_string().as_bytes());
        out.extend_from_slice(b"\",\"recordedAt\":");
        string(out, &rfc3339(self.recorded_at))?;
        out.extend_from_slice(b",\"sequence\":");
        out.extend_from_slice(self.sequence.to_string().as_bytes());
        out.extend_from_slice(b",\"type\":");
        string(out, &self.event_type)?;
        out.extend_from_slice(b",\"version\":");
        string(out, &self.event_version)?;
        out.push(b'}');
        Ok(())
    }

    /// This event upcast to its current version (unchanged when no upcaster applies). For
    /// readers with statements of their own; [`read_raw_after`] applies it already.
    pub fn upcast(self) -> Self {
        if !UPCASTERS.iter().any(|u| u.can_upcast(&self.event_type, &self.event_version)) {
            return self;
        }
        let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let stored = StoredEvent {
            position: self.position,
            recorded_at: self.recorded_at,
            account_id: self.account_id,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: parsed(&self.payload),
            metadata: parsed(&self.metadata),
        }
        .upcast();
        Self {
            position: stored.position,
            recorded_at: stored.recorded_at,
            account_id: stored.account_id,
            aggregate_type: stored.aggregate_type,
            aggregate_id: stored.aggregate_id,
            sequence: stored.sequence,
            event_type: stored.event_type,
            event_version: stored.event_version,
            payload: stored.payload.to_string(),
            metadata: stored.metadata.to_string(),
        }
    }
}

/// Up to `limit` events after `after` matching `filter`, in position order, upcast, with
/// payload and metadata as text ([`RawEvent`]): the read path of projections and rebuilds.
pub async fn read_raw_after<'e>(db: impl PgExecutor<'e>, after: i64, limit: i64, filter: EventFilter) -> Result<Vec<RawEvent>, StoreError> {
    let rows: Vec<RawEvent> = sqlx::query_as(filter.read_sql(true)).bind(after).bind(limit).bind(filter.account_id).fetch_all(db).await?;
    Ok(rows.into_iter().map(RawEvent::upcast).collect())
}

/// Like [`read_raw_after`], but streams the rows as PostgreSQL sends them, so the caller works
/// on the first rows while the server still produces the rest (`roster events`).
pub fn stream_raw_after(pool: &PgPool, after: i64, limit: i64, filter: EventFilter) -> impl Stream<Item = Result<RawEvent, StoreError>> + Send + '_ {
    use futures::StreamExt;
    sqlx::query_as::<_, RawEvent>(filter.read_sql(true))
        .bind(after)
        .bind(limit)
        .bind(filter.account_id)
        .fetch(pool)
        .map(|row| row.map(RawEvent::upcast).map_err(StoreError::from))
}

#[cfg(test)]
mod raw_tests {
    use super::*;
    use serde_json::json;

    fn sample(event_type: &str, version: &str, payload: Value, metadata: Value, account: bool) -> RawEvent {
        RawEvent {
            position: 42,
            recorded_at: "2026-11-30T09:15:00.000412873Z".parse().unwrap(),
            account_id: account.then(|| "3d4e5f60-7182-4394-a5b6-c7d8e9f0a1b2".parse().unwrap()),
            aggregate_type: if account { "Account" } else { "User" }.into(),
            aggregate_id: "3d4e5f60-7182-4394-a5b6-c7d8e9f0a1b2".into(),
            sequence: 7,
            event_type: event_type.into(),
            event_version: version.into(),
            // jsonb's own text spelling: keys by length, ", " and ": " separators.
            payload: payload.to_string().replace("\":", "\": ").replace(",\"", ", \""),
            metadata: metadata.to_string().replace("\":", "\": ").replace(",\"", ", \""),
        }
    }

    fn as_stored(raw: &RawEvent) -> StoredEvent {
        StoredEvent {
            position: raw.position,
            recorded_at: raw.recorded_at,
            account_id: raw.account_id,
            aggregate_type: raw.aggregate_type.clone(),
            aggregate_id: raw.aggregate_id.clone(),
            sequence: raw.sequence,
            event_type: raw.event_type.clone(),
            event_version: raw.event_version.clone(),
            payload: serde_json::from_str(&raw.payload).unwrap(),
            metadata: serde_json::from_str(&raw.metadata).unwrap(),
        }
    }

    #[test]
    fn feed_line_is_byte_for_byte_the_feed_json() {
        let meta = json!({"actor_user_id": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e", "request_id": "r\"1\n", "occurred_at": "2026-11-30T09:15:00.000412Z", "user_agent": "Mozilla/5.0 ü"});
        let cases = [
            sample("MemberInvited", "2.0.0", json!({"MemberInvited": {"invitation_id": "x", "email": "a@b.c", "role": "GUEST", "send_count": 3, "reason": null}}), meta.clone(), true),
            sample("UserRegistered", "1.0.0", json!({"UserRegistered": {"email": "a@b.c", "display_name": "Zoë \u{1}"}}), json!({"occurred_at": 5}), false),
            sample("MemberInvited", "1.0", json!({"MemberInvited": {"email": "x@example.com", "invited_at": "2025-01-11T10:00:00Z"}}), meta, true),
        ];
        for raw in cases {
            let expected = as_stored(&raw).upcast().to_feed_json().to_string();
            let mut line = Vec::new();
            raw.clone().upcast().write_feed_line(&mut line).unwrap();
            assert_eq!(String::from_utf8(line).unwrap(), expected);
        }
    }

    #[test]
    fn raw_metadata_reads_as_stored_event_accessors() {
        let raw = sample("X", "1.0.0", json!({}), json!({"actor_user_id": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e", "request_id": "r1", "occurred_at": "2026-11-30T09:15:00.000412Z"}), true);
        let stored = as_stored(&raw);
        let meta = raw.meta();
        assert_eq!((meta.occurred_at, meta.actor_id, meta.request_id.as_deref()), (stored.occurred_at(), stored.actor_id(), stored.request_id()));
        let system = sample("X", "1.0.0", json!({}), json!({"actor_user_id": "system"}), true);
        assert_eq!((system.meta().occurred_at, system.meta().actor_id), (system.recorded_at, None));
    }
}
