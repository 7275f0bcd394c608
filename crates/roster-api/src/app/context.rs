//! What the application knows about one request.

use crate::auth::Caller;
use chrono::{DateTime, Utc};
use roster_domain::{EventMetadata, UserId};

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
    pub caller: Caller,
}

impl RequestContext {
    /// Event metadata for an action by `actor` at `now`.
    pub fn metadata(&self, actor: Option<UserId>, now: DateTime<Utc>) -> EventMetadata {
        let mut metadata = EventMetadata::new(actor, self.request_id.clone(), now);
        metadata.ip = self.ip.clone();
        metadata.user_agent = self.user_agent.clone();
        metadata
    }

    /// The client IP as a rate-limit key (`unknown` when there is none).
    pub(crate) fn ip_key(&self) -> &str {
        self.ip.as_deref().unwrap_or("unknown")
    }
}
