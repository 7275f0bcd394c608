//! The errors a command can be refused with. Each maps to one `extensions.code` of the API
//! contract (`shared/api-contract.md`, table "Errors").

/// Why an aggregate refused a command. A refused command emits no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The actor is signed in but its role may not do this, or the account is not theirs.
    #[error("you may not do this in this account")]
    Forbidden,
    /// No such account, invitation or member.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Malformed input; `field` names the input field (camelCase, as in the GraphQL input).
    #[error("{field}: {message}")]
    Validation {
        /// The input field at fault, e.g. `email`, `displayName` or `role`.
        field: String,
        /// What is wrong with it, in words for people, e.g. "must be 1 to 100 characters".
        message: String,
    },
    /// The invited email already belongs to a member of the account.
    #[error("this email already belongs to a member of the account")]
    AlreadyMember,
    /// A pending invitation for this email already exists in the account.
    #[error("a pending invitation for this email already exists")]
    InvitationPending,
    /// The invitation is past its `expiresAt`.
    #[error("the invitation has expired")]
    InvitationExpired,
    /// The invitation was accepted or cancelled.
    #[error("the invitation is no longer pending")]
    InvitationNotPending,
    /// The invite token does not verify (malformed, unknown, rotated by a resend).
    #[error("the invite token is not valid")]
    InvalidToken,
    /// A signed-in user accepted an invitation sent to another email.
    #[error("this invitation was sent to another email address")]
    EmailMismatch,
    /// The change would leave the account without an admin.
    #[error("the account must keep at least one admin")]
    LastAdmin,
    /// A one-time email link (verification, password reset) is past its expiry.
    #[error("this link has expired: ask for a new one")]
    TokenExpired,
    /// Logging in or accepting before the email is verified (issue 12).
    #[error("verify your email first: open the link we sent to it")]
    EmailNotVerified,
    /// Changing one's own role or removing oneself.
    #[error("you cannot change your own role or remove yourself")]
    SelfChange,
    /// An emailed resend of an invitation came within the resend cooldown of its last send
    /// (`ROSTER_RESEND_COOLDOWN`); answered as `RATE_LIMITED` with `retryAfterSeconds`.
    #[error("this invitation was sent moments ago; resend it in {retry_after_seconds} s")]
    ResendTooSoon {
        /// Whole seconds until a resend is allowed, at least 1.
        retry_after_seconds: u64,
    },
}

impl DomainError {
    /// Shorthand for a [`DomainError::Validation`].
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The contract's `extensions.code` for this error, e.g. `"LAST_ADMIN"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Validation { .. } => "VALIDATION",
            Self::AlreadyMember => "ALREADY_MEMBER",
            Self::InvitationPending => "INVITATION_PENDING",
            Self::InvitationExpired => "INVITATION_EXPIRED",
            Self::InvitationNotPending => "INVITATION_NOT_PENDING",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::EmailMismatch => "EMAIL_MISMATCH",
            Self::LastAdmin => "LAST_ADMIN",
            Self::SelfChange => "SELF_CHANGE",
            Self::ResendTooSoon { .. } => "RATE_LIMITED",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
        }
    }
}
