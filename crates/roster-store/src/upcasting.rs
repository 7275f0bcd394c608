//! Upcasters: stored events of an old version are read as the current version, so aggregates,
//! projections and the audit feed only ever see current shapes. Built on cqrs-es's
//! [`EventUpcaster`]; the catalogue of versions is `docs/events.md`.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster, SerializedEvent};
use serde_json::Value;

/// The TTL every invitation had before `MemberInvited` 2.0 recorded its own expiry (7 days,
/// Akto's one week).
pub const V1_INVITE_TTL_DAYS: i64 = 7;

/// `MemberInvited` 1.0 → 2.0: 1.0 had `invited_at` and no expiry; 2.0 names it `sent_at` and
/// records `expires_at` (= `invited_at` + 7 days, the only TTL 1.0 knew).
fn member_invited_v2(mut payload: Value) -> Value {
    if let Some(body) = payload.get_mut("MemberInvited").and_then(Value::as_object_mut) {
        if let Some(invited_at) = body.remove("invited_at") {
            let expires_at = invited_at
                .as_str()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                .map(|t| t + Duration::days(V1_INVITE_TTL_DAYS))
                // The same spelling serde gives every other timestamp.
                .map(|t| Value::String(roster_domain::rfc3339(t)));
            body.insert("sent_at".into(), invited_at);
            if let Some(expires_at) = expires_at {
                body.entry("expires_at").or_insert(expires_at);
            }
        }
    }
    payload
}

/// Every upcaster, oldest change first.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        "MemberInvited",
        "2.0.0",
        Box::new(member_invited_v2),
    ))]
}

/// Applies every upcaster that accepts `event`, in order.
pub fn upcast(upcasters: &[Box<dyn EventUpcaster>], mut event: SerializedEvent) -> SerializedEvent {
    for upcaster in upcasters {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    event
}

static UPCASTERS: std::sync::LazyLock<Vec<Box<dyn EventUpcaster>>> = std::sync::LazyLock::new(upcasters);

/// Upcasts `event` with every registered upcaster (see [`upcasters`]).
pub fn to_current(event: SerializedEvent) -> SerializedEvent {
    upcast(&UPCASTERS, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_invited_one_becomes_two_with_a_seven_day_expiry() {
        let old = SerializedEvent::new(
            "a".into(),
            3,
            "Account".into(),
            "MemberInvited".into(),
            "1.0".into(),
            json!({ "MemberInvited": { "email": "x@example.com", "invited_at": "2025-01-11T10:00:00Z" } }),
            json!({}),
        );
        let current = to_current(old);
        assert_eq!(current.event_version, "2.0.0");
        assert_eq!(
            current.payload,
            json!({ "MemberInvited": { "email": "x@example.com", "sent_at": "2025-01-11T10:00:00Z", "expires_at": "2025-01-18T10:00:00Z" } })
        );
        // Current versions pass through untouched.
        let again = to_current(current.clone());
        assert_eq!(again.payload, current.payload);
    }
}
