//! The metadata every event carries (rule "Events" of `domain-rules.md`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use crate::UserId;

/// Who caused an event, when, and through which request. Stored in the event's `metadata`
/// column as a JSON object of strings (cqrs-es's metadata shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The acting user's id, or `"system"` for changes nobody asked for directly.
    pub actor_user_id: String,
    /// The id the server gave the HTTP request (or CLI run) that caused the event.
    pub request_id: String,
    /// The `x-request-id` the client sent, if short and plain: the client's own correlation
    /// id, never trusted as the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// When the command was decided, RFC 3339 UTC.
    pub occurred_at: DateTime<Utc>,
    /// The client's IP address, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's `User-Agent`, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl EventMetadata {
    /// Metadata for an action of `actor` (`None` means the system) at `occurred_at`.
    pub fn new(actor: Option<UserId>, request_id: impl Into<String>, occurred_at: DateTime<Utc>) -> Self {
        Self {
            actor_user_id: actor.map_or_else(|| "system".to_string(), |id| id.to_string()),
            request_id: request_id.into(),
            client_request_id: None,
            occurred_at,
            ip: None,
            user_agent: None,
        }
    }

    /// The metadata as cqrs-es's string map.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            ("actor_user_id".to_string(), self.actor_user_id.clone()),
            ("request_id".to_string(), self.request_id.clone()),
            ("occurred_at".to_string(), crate::rfc3339(self.occurred_at)),
        ]);
        if let Some(id) = &self.client_request_id {
            map.insert("client_request_id".to_string(), id.clone());
        }
        if let Some(ip) = &self.ip {
            map.insert("ip".to_string(), ip.clone());
        }
        if let Some(ua) = &self.user_agent {
            map.insert("user_agent".to_string(), ua.clone());
        }
        map
    }
}
