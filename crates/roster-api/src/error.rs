//! API errors: every refused request answers with a GraphQL error whose `extensions.code` is one
//! of the contract's codes (`shared/api-contract.md`, "Errors").

use async_graphql::ErrorExtensions;
use roster_domain::DomainError;
use roster_store::StoreError;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain rule refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// No or bad token, wrong password, or a session required.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many attempts; retry after the given number of seconds.
    #[error("too many attempts; retry in {0} s")]
    RateLimited(u64),
    /// The email already has a user. Answers as `VALIDATION` on `email` unless a command maps
    /// it to something more fitting.
    #[error("a user with this email already exists")]
    EmailTaken,
    /// Optimistic-concurrency retries ran out.
    #[error("the account changed concurrently; please retry")]
    Conflict,
    /// Anything else. Details are logged with the request id, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The contract's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Domain(e) => e.code(),
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::EmailTaken => "VALIDATION",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Conflict => "CONFLICT",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// Shorthand for a validation error on `field`.
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Domain(DomainError::validation(field, message))
    }

    /// Converts to a GraphQL error carrying `code` (and `field` or `retryAfterSeconds`). For
    /// `INTERNAL`, the message names `request_id` and the cause is only logged.
    pub fn into_graphql(self, request_id: &str) -> async_graphql::Error {
        let code = self.code();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(request_id, cause, "internal error");
                format!("internal error (request id {request_id})")
            }
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            match &self {
                ApiError::Domain(DomainError::Validation { field, .. }) => ext.set("field", field.as_str()),
                ApiError::EmailTaken => ext.set("field", "email"),
                ApiError::RateLimited(seconds) | ApiError::Domain(DomainError::ResendTooSoon { retry_after_seconds: seconds }) => {
                    ext.set("retryAfterSeconds", *seconds)
                }
                _ => {}
            }
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => ApiError::Conflict,
            StoreError::EmailTaken => ApiError::EmailTaken,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::Internal(err.to_string())
    }
}

/// Result of an API operation.
pub type ApiResult<T> = Result<T, ApiError>;
