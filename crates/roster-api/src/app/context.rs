//! What the application knows about one request.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use roster_domain::{EventMetadata, UserId};

/// Whether a signed-in caller's session still counts: a session issued before the user's
/// last password reset does not (see `App::identify`). The check is one read, started when
/// the request arrives and run beside a query instead of before it; whatever depends on it
/// waits for its answer: every command before any resolver runs (`graphql::session`), every
/// append ([`RequestContext::confirm_session`], in the unit of work) and every response (the
/// HTTP handler answers a request whose session ended as one with no session). So a query
/// may run twice, once as the ended session: one that changes anything (`invitationPreview`
/// counts a token attempt) confirms the session first. Clones share one check.
#[derive(Clone)]
pub struct SessionCheck(Option<Shared<BoxFuture<'static, bool>>>);

impl SessionCheck {
    /// Nothing to check: no session (anonymous, operator), or already checked.
    pub fn settled() -> Self {
        Self(None)
    }

    /// A check under way: `check` resolves to whether the session counts.
    pub fn pending(check: BoxFuture<'static, bool>) -> Self {
        Self(Some(check.shared()))
    }

    /// Whether the session counts, once the check has answered (`true` when there is none).
    pub async fn holds(&self) -> bool {
        match &self.0 {
            None => true,
            Some(check) => check.clone().await,
        }
    }
}

impl std::fmt::Debug for SessionCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "SessionCheck(pending)" } else { "SessionCheck(settled)" })
    }
}

/// The error of a request or subscription whose session a password reset ended.
pub(crate) fn session_ended() -> ApiError {
    ApiError::Unauthenticated("the session has ended: sign in again")
}

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
    /// Who is calling, from the bearer token's signature; a `User` whose session may still
    /// be refused by `session`.
    pub caller: Caller,
    /// Whether `caller`'s session still counts.
    pub session: SessionCheck,
}

impl RequestContext {
    /// Waits for the session check; `UNAUTHENTICATED` when the session ended. Called before
    /// anything is appended for this request.
    pub(crate) async fn confirm_session(&self) -> ApiResult<()> {
        if self.session.holds().await {
            Ok(())
        } else {
            Err(session_ended())
        }
    }

    /// This context once its session check has answered: the caller as it was, or nobody
    /// when the session ended (for connections that keep their context, e.g. websockets).
    pub async fn settled(self) -> Self {
        if self.session.holds().await {
            Self { session: SessionCheck::settled(), ..self }
        } else {
            Self { caller: Caller::Anonymous, session: SessionCheck::settled(), ..self }
        }
    }

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
