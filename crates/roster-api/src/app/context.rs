//! What the application knows about one request.

use crate::auth::Caller;
use chrono::{DateTime, Utc};
use roster_domain::{EventMetadata, UserId};

/// Facts about one request: who, from where, and its id (for event metadata and errors).
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request's id: a UUID the server made (echoed in the response's `x-request-id`).
    pub request_id: String,
    /// The `x-request-id` the client sent, when short and plain.
    pub client_request_id: Option<String>,
    /// The client's IP address: the TCP peer's, or the one a trusted proxy forwarded.
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
        metadata.client_request_id = self.client_request_id.clone();
        metadata.ip = self.ip.clone();
        metadata.user_agent = self.user_agent.clone();
        metadata
    }

    /// The client IP as a rate-limit key (`unknown` when there is none). An IPv6 client is
    /// keyed by its /64, the block one subscriber usually holds whole.
    pub(crate) fn ip_key(&self) -> String {
        match self.ip.as_deref().map(str::parse::<std::net::IpAddr>) {
            Some(Ok(std::net::IpAddr::V6(ip))) => ipnet::Ipv6Net::new(ip, 64).map_or_else(|_| ip.to_string(), |net| net.trunc().to_string()),
            Some(Ok(ip)) => ip.to_string(),
            _ => self.ip.clone().unwrap_or_else(|| "unknown".to_string()),
        }
    }
}
