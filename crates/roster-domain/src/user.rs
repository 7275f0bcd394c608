//! The user aggregate: a person's profile and the proof of their email (issue 12, "Email
//! ownership"). Credentials are not here: passwords live in the credentials table, outside the
//! event log (rule "Events"); the events say only that a password changed.
//!
//! One-time links (verification, password reset) are recorded as a nonce and a token digest
//! ([`crate::user_token`]), never as the token.

use crate::aggregate::{self, Decide};
use crate::{DomainError, Email, SendNonce, Text, TokenDigest};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// Longest display name, in characters (rule "Accept").
pub const MAX_DISPLAY_NAME_LEN: usize = 100;

/// An emailed one-time link a command owes: the nonce the mailer derives the token from, the
/// token's digest, and when the link stops working (all drawn or computed by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwedLink {
    /// The per-request nonce (see [`crate::UserToken::derive`]).
    pub mail_nonce: SendNonce,
    /// SHA-256 of the token.
    pub token_digest: TokenDigest,
    /// When the link stops working (UTC).
    pub expires_at: DateTime<Utc>,
}

/// How a registration stands on the email's ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailCheck {
    /// A verification link is owed; the user is unverified until it is opened.
    Owed(OwedLink),
    /// The user registered through an invitation link sent to this email: already proven.
    ProvenByInvitation,
    /// Nothing to check (the server sends no email): the user is not held back.
    NotChecked,
}

/// What proved an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailProof {
    /// The verification link (`verifyEmail`).
    VerificationLink,
    /// An invitation link (accepting as a new user).
    Invitation,
    /// A password-reset link (`resetPassword`).
    PasswordReset,
}

/// Why a password-reset email is owed: the templates word it by this (`reason` in `reset.*`).
/// Events written before this existed have no `reason` and decode as [`ResetReason::Requested`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResetReason {
    /// Someone asked for it (`requestPasswordReset`).
    #[default]
    Requested,
    /// Someone tried to sign up with this registered email where verification is required:
    /// instead of telling them the address is taken, its owner is told, with a reset link
    /// (issue 10, "`signUp` reveals registered emails").
    SignUpAttempt,
}

impl ResetReason {
    /// The name events and the mail outbox use: `REQUESTED` or `SIGN_UP_ATTEMPT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::Requested => "REQUESTED",
            ResetReason::SignUpAttempt => "SIGN_UP_ATTEMPT",
        }
    }
}

/// What can be asked of a user.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Registers a new user; emits `UserRegistered`, then `EmailVerificationRequested` or
    /// `EmailVerified` as `check` says. Email uniqueness is guarded by the store's credentials
    /// table. Refused with `VALIDATION` (`email` if this user is already registered;
    /// `displayName` unless a clean [`Text`] of 1–100 characters).
    Register {
        /// The user's normalised email; for an invitee, the invited email.
        email: Email,
        /// Display name as typed; parsed by `decide` as a [`Text`] of 1–100 characters
        /// ([`MAX_DISPLAY_NAME_LEN`], rule "Accept"; NFC, trimmed, no control or bidi characters).
        display_name: String,
        /// Current UTC instant; becomes `registered_at`.
        now: DateTime<Utc>,
        /// Whether a verification link is owed.
        check: EmailCheck,
    },
    /// Opens the verification link: emits `EmailVerified`. Refused with `INVALID_TOKEN` unless
    /// the digest is the pending request's (constant-time; a used link has none), and
    /// `TOKEN_EXPIRED` past its expiry.
    VerifyEmail {
        /// Digest of the presented token.
        token_digest: TokenDigest,
        /// Current UTC instant.
        now: DateTime<Utc>,
    },
    /// Asks for a password-reset link: emits `PasswordResetRequested`, which replaces any
    /// earlier request (its link stops working). Refused with `NOT_FOUND` for an unregistered
    /// user.
    RequestPasswordReset {
        /// The link owed.
        link: OwedLink,
        /// Why (the email's wording).
        reason: ResetReason,
        /// Current UTC instant.
        now: DateTime<Utc>,
    },
    /// Uses the reset link: emits `PasswordChanged`, and `EmailVerified` if the email was not
    /// verified yet (the link proved it). The caller checks the new password's rule and writes
    /// its hash in the same commit. Refused with `INVALID_TOKEN` unless the digest is the
    /// latest request's (a used or superseded link has none), `TOKEN_EXPIRED` past its expiry.
    ResetPassword {
        /// Digest of the presented token.
        token_digest: TokenDigest,
        /// Current UTC instant.
        now: DateTime<Utc>,
    },
}

/// What happened to a user. No event holds a password or a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    /// A user registered; emitted by `Register` (sign-up, or accepting an invitation without an
    /// account). Holds no password (rule "Events").
    UserRegistered {
        /// The user's normalised email.
        email: Email,
        /// Display name, trimmed, 1–100 characters.
        display_name: String,
        /// When they registered (UTC instant).
        registered_at: DateTime<Utc>,
    },
    /// A verification email is owed (sign-up on a server that sends email); until
    /// `EmailVerified` the user is unverified.
    EmailVerificationRequested {
        /// The link: nonce, token digest, expiry.
        #[serde(flatten)]
        link: OwedLink,
        /// When (UTC).
        requested_at: DateTime<Utc>,
    },
    /// The user proved they receive mail at their email.
    EmailVerified {
        /// What proved it.
        proof: EmailProof,
        /// When (UTC).
        verified_at: DateTime<Utc>,
    },
    /// A password-reset email is owed; earlier reset links stop working.
    PasswordResetRequested {
        /// The link: nonce, token digest, expiry.
        #[serde(flatten)]
        link: OwedLink,
        /// Why it is owed; absent in events written before it existed (then `REQUESTED`).
        #[serde(default)]
        reason: ResetReason,
        /// When (UTC).
        requested_at: DateTime<Utc>,
    },
    /// The password was replaced through a reset link (the hash is in the credentials table,
    /// written in the same commit).
    PasswordChanged {
        /// When (UTC).
        changed_at: DateTime<Utc>,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered",
            UserEvent::EmailVerificationRequested { .. } => "EmailVerificationRequested",
            UserEvent::EmailVerified { .. } => "EmailVerified",
            UserEvent::PasswordResetRequested { .. } => "PasswordResetRequested",
            UserEvent::PasswordChanged { .. } => "PasswordChanged",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0.0".to_string()
    }
}

/// A pending one-time link: its digest and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLink {
    /// SHA-256 of the token.
    pub token_digest: TokenDigest,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl PendingLink {
    /// The one check of a presented link: the digest must be this one (constant time), and
    /// `now` before the expiry.
    ///
    /// Errors: `INVALID_TOKEN` with nothing pending or another digest; `TOKEN_EXPIRED`.
    fn check(pending: Option<&Self>, presented: &TokenDigest, now: DateTime<Utc>) -> Result<(), DomainError> {
        crate::token::verify(pending.map(|p| &p.token_digest), presented)?;
        match pending {
            Some(p) if now < p.expires_at => Ok(()),
            _ => Err(DomainError::TokenExpired),
        }
    }
}

/// The user aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    /// The user's normalised email; `None` until `UserRegistered`.
    pub email: Option<Email>,
    /// The user's display name; empty until `UserRegistered`.
    pub display_name: String,
    /// Whether the user may log in where verification is required: true from `UserRegistered`
    /// (users registered before verification existed, or where no email is sent, are not held
    /// back), false from `EmailVerificationRequested` until `EmailVerified`.
    pub email_verified: bool,
    /// The verification link not used yet.
    pub verification: Option<PendingLink>,
    /// The latest reset link not used yet.
    pub reset: Option<PendingLink>,
    /// When the password last changed through a reset.
    pub password_changed_at: Option<DateTime<Utc>>,
}

impl Decide for User {
    /// Decides `command`: the events to append, or why not (see each [`UserCommand`]).
    ///
    /// Errors: `VALIDATION` (`displayName`, `email`), `INVALID_TOKEN`, `TOKEN_EXPIRED`,
    /// `NOT_FOUND` (`user`).
    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, DomainError> {
        use UserCommand as C;
        if !matches!(command, C::Register { .. }) && self.email.is_none() {
            return Err(match command {
                C::RequestPasswordReset { .. } => DomainError::NotFound("user"),
                _ => DomainError::InvalidToken,
            });
        }
        match command {
            C::Register { email, display_name, now, check } => {
                if self.email.is_some() {
                    return Err(DomainError::validation("email", "user already registered"));
                }
                let display_name = Text::parse(&display_name, "displayName", MAX_DISPLAY_NAME_LEN)?.into_string();
                let mut events = vec![UserEvent::UserRegistered { email, display_name, registered_at: now }];
                match check {
                    EmailCheck::Owed(link) => events.push(UserEvent::EmailVerificationRequested { link, requested_at: now }),
                    EmailCheck::ProvenByInvitation => events.push(UserEvent::EmailVerified { proof: EmailProof::Invitation, verified_at: now }),
                    EmailCheck::NotChecked => {}
                }
                Ok(events)
            }
            C::VerifyEmail { token_digest, now } => {
                PendingLink::check(self.verification.as_ref(), &token_digest, now)?;
                Ok(vec![UserEvent::EmailVerified { proof: EmailProof::VerificationLink, verified_at: now }])
            }
            C::RequestPasswordReset { link, reason, now } => Ok(vec![UserEvent::PasswordResetRequested { link, reason, requested_at: now }]),
            C::ResetPassword { token_digest, now } => {
                PendingLink::check(self.reset.as_ref(), &token_digest, now)?;
                let mut events = vec![UserEvent::PasswordChanged { changed_at: now }];
                if !self.email_verified {
                    events.push(UserEvent::EmailVerified { proof: EmailProof::PasswordReset, verified_at: now });
                }
                Ok(events)
            }
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: UserCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        aggregate::handle(self, command, sink).await
    }

    fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserRegistered { email, display_name, .. } => {
                self.email = Some(email);
                self.display_name = display_name;
                self.email_verified = true;
            }
            UserEvent::EmailVerificationRequested { link, .. } => {
                self.email_verified = false;
                self.verification = Some(PendingLink { token_digest: link.token_digest, expires_at: link.expires_at });
            }
            UserEvent::EmailVerified { .. } => {
                self.email_verified = true;
                self.verification = None;
            }
            UserEvent::PasswordResetRequested { link, .. } => {
                self.reset = Some(PendingLink { token_digest: link.token_digest, expires_at: link.expires_at });
            }
            UserEvent::PasswordChanged { changed_at } => {
                self.reset = None;
                self.password_changed_at = Some(changed_at);
            }
        }
    }
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
